//! Attribution: for every process, the container it belongs to (or the shim/monitor that
//! serves one), merged from every trace a snapshot holds. A pure function of a Snapshot.
//!
//! Order of belief, strongest first: a runtime-specific cgroup scope; conmon's `-c ID`
//! for its children; the plain containerd cgroup `/<ns>/<id>` when a task or shim with
//! that namespace and id confirms it; the shim that parents the process (for Kubernetes
//! that is the pod's shim, so its `-id` is the sandbox's); a task's `init.pid`; Docker's
//! recorded pid. Names come afterwards from the bundle annotations, Docker's config, the
//! `/var/log/containers` links and the `/var/log/pods` tree.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::cgroup::{self, Runtime};
use super::cmdline::{self, ConmonArgs, ShimArgs};
use super::oci;
use super::paths;
use super::podlog::{self, LogFileName};
use super::rotation::{DockerLogConfig, LogKind};
use super::scan::RuntimeScan;
use crate::parse::fdinfo;
use crate::snapshot::{Process, Snapshot};

/// Who a container is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ContainerRef {
    pub runtime: Option<Runtime>,
    pub id: String,
    /// Kubernetes container name, Docker/Podman name, or conmon's `-n`.
    pub name: Option<String>,
    /// containerd namespace (`k8s.io`, `moby`, `default`, ...).
    pub runtime_namespace: Option<String>,
    pub pod: Option<String>,
    /// Kubernetes namespace of the pod.
    pub namespace: Option<String>,
    pub pod_uid: Option<String>,
    /// The pod's sandbox (pause) container.
    pub sandbox: bool,
}

impl ContainerRef {
    pub fn runtime_str(&self) -> &'static str {
        self.runtime.unwrap_or(Runtime::Unknown).as_str()
    }

    /// `ns/pod` when in a pod.
    pub fn pod_label(&self) -> Option<String> {
        match (&self.namespace, &self.pod) {
            (Some(n), Some(p)) => Some(format!("{n}/{p}")),
            (None, Some(p)) => Some(p.clone()),
            _ => None,
        }
    }

    /// The container's name, else its id shortened like `docker ps` does.
    pub fn short(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None if cgroup::is_hex_id(&self.id) => self.id[..12].to_string(),
            None => self.id.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A process of the container itself.
    Container,
    /// The containerd shim that holds the container's stdio.
    Shim,
    /// conmon, CRI-O's and Podman's equivalent of the shim.
    Monitor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Container => "container",
            Role::Shim => "shim",
            Role::Monitor => "monitor",
        }
    }
}

/// One log file of a container.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRef {
    /// Host path.
    pub path: String,
    pub kind: LogKind,
    /// The process that holds it open for writing (shim, conmon, containerd, dockerd).
    pub writer_pid: Option<u32>,
    pub writer_fd: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ContainerInfo {
    pub r: ContainerRef,
    /// Processes of the container.
    pub pids: Vec<u32>,
    /// Its shim (containerd) or conmon.
    pub shim_pid: Option<u32>,
    /// Which traces named it: `cgroup`, `shim`, `conmon`, `bundle`, `docker`, `pod_logs`.
    pub sources: BTreeSet<&'static str>,
    pub logs: Vec<LogRef>,
    /// Docker: the log driver it was created with.
    pub docker_log: Option<DockerLogConfig>,
    /// conmon's `--log-size-max`.
    pub conmon_log_size_max: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct Attribution {
    pub containers: Vec<ContainerInfo>,
    pub by_pid: HashMap<u32, (usize, Role)>,
}

impl Attribution {
    pub fn of(&self, pid: u32) -> Option<(&ContainerInfo, Role)> {
        self.by_pid
            .get(&pid)
            .map(|(i, role)| (&self.containers[*i], *role))
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }
}

/// How far up the parent chain to look for a shim (a container's process tree is shallow;
/// the bound guards against a cycle in a torn snapshot).
const MAX_ANCESTRY: usize = 64;

enum Monitor<'a> {
    Shim(&'a ShimArgs),
    Conmon(&'a ConmonArgs),
}

struct Builder<'a> {
    scan: &'a RuntimeScan,
    out: Attribution,
    index: HashMap<String, usize>,
}

fn key(id: &str, ns: Option<&str>) -> String {
    if cgroup::is_hex_id(id) {
        id.to_string()
    } else {
        format!("{}/{id}", ns.unwrap_or(""))
    }
}

fn shim_runtime(ns: Option<&str>) -> Runtime {
    if ns == Some("moby") {
        Runtime::Docker
    } else {
        Runtime::Containerd
    }
}

impl<'a> Builder<'a> {
    fn entry(&mut self, id: &str, ns: Option<&str>) -> usize {
        let k = key(id, ns);
        if let Some(i) = self.index.get(&k) {
            return *i;
        }
        let mut c = ContainerInfo::default();
        c.r.id = id.to_string();
        c.r.runtime_namespace = ns.map(str::to_string);
        self.out.containers.push(c);
        let i = self.out.containers.len() - 1;
        self.index.insert(k, i);
        i
    }

    fn set(&mut self, pid: u32, i: usize, role: Role, source: &'static str) {
        self.out.by_pid.insert(pid, (i, role));
        let c = &mut self.out.containers[i];
        c.sources.insert(source);
        if role == Role::Container {
            c.pids.push(pid);
        }
    }
}

/// Attribute every process of the snapshot.
pub fn attribute(s: &Snapshot) -> Attribution {
    let empty = RuntimeScan::default();
    let scan = s.runtime.as_ref().unwrap_or(&empty);
    let procs: HashMap<u32, &Process> = s.processes.iter().map(|p| (p.pid, p)).collect();
    let mut shims: HashMap<u32, ShimArgs> = HashMap::new();
    let mut conmons: HashMap<u32, ConmonArgs> = HashMap::new();
    for p in &s.processes {
        let Some(argv) = &p.cmdline else { continue };
        if let Some(a) = cmdline::shim(argv) {
            shims.insert(p.pid, a);
        } else if let Some(a) = cmdline::conmon(argv) {
            conmons.insert(p.pid, a);
        }
    }
    let monitor_of = |pid: u32| -> Option<(u32, Monitor<'_>)> {
        let mut cur = procs.get(&pid)?.ppid;
        for _ in 0..MAX_ANCESTRY {
            if cur <= 1 {
                return None;
            }
            if let Some(a) = shims.get(&cur) {
                return Some((cur, Monitor::Shim(a)));
            }
            if let Some(a) = conmons.get(&cur) {
                return Some((cur, Monitor::Conmon(a)));
            }
            cur = procs.get(&cur)?.ppid;
        }
        None
    };
    let mut b = Builder {
        scan,
        out: Attribution::default(),
        index: HashMap::new(),
    };
    for p in s.processes.iter().filter(|p| !p.kthread) {
        if let Some(a) = shims.get(&p.pid) {
            if let Some(id) = &a.id {
                let i = b.entry(id, a.namespace.as_deref());
                b.out.containers[i].shim_pid = Some(p.pid);
                b.out.containers[i]
                    .r
                    .runtime
                    .get_or_insert(shim_runtime(a.namespace.as_deref()));
                b.set(p.pid, i, Role::Shim, "shim");
            }
            continue;
        }
        if let Some(a) = conmons.get(&p.pid) {
            if let Some(id) = &a.cid {
                let i = b.entry(id, None);
                let c = &mut b.out.containers[i];
                c.shim_pid = Some(p.pid);
                c.r.runtime = Some(if a.podman {
                    Runtime::Podman
                } else {
                    Runtime::CriO
                });
                c.conmon_log_size_max = a.log_size_max;
                match a.name.as_deref().and_then(cmdline::k8s_runtime_name) {
                    // CRI-O: `-n k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
                    Some(k) => apply_runtime_name(c, &k),
                    None if c.r.name.is_none() && a.podman => c.r.name = a.name.clone(),
                    None => {}
                }
                if let Some(l) = &a.log_path {
                    let kind = if l.starts_with(paths::POD_LOGS) {
                        LogKind::Cri
                    } else {
                        LogKind::Conmon
                    };
                    push_log(c, l, kind, Some(p.pid), None);
                }
                b.set(p.pid, i, Role::Monitor, "conmon");
            }
            continue;
        }
        let hint = p.cgroups.as_deref().and_then(cgroup::from_entries);
        let mon = monitor_of(p.pid);
        let (mon_pid, shim_args, conmon_args) = match &mon {
            Some((pid, Monitor::Shim(a))) => (Some(*pid), Some(*a), None),
            Some((pid, Monitor::Conmon(a))) => (Some(*pid), None, Some(*a)),
            None => (None, None, None),
        };
        let placed = place(p, hint.as_ref(), shim_args, conmon_args, scan);
        let Some((id, ns, runtime, pod_uid, source)) = placed else {
            continue;
        };
        let i = b.entry(&id, ns.as_deref());
        {
            let c = &mut b.out.containers[i];
            if c.r.runtime.is_none() || c.r.runtime == Some(Runtime::Unknown) {
                c.r.runtime = runtime;
            }
            if c.r.runtime_namespace.is_none() {
                c.r.runtime_namespace = ns;
            }
            if c.r.pod_uid.is_none() {
                c.r.pod_uid = pod_uid;
            }
            if c.shim_pid.is_none() {
                c.shim_pid = mon_pid;
            }
            if let Some(a) = conmon_args {
                c.conmon_log_size_max = c.conmon_log_size_max.or(a.log_size_max);
            }
        }
        let role = if hint.as_ref().is_some_and(|h| h.monitor) {
            Role::Monitor
        } else {
            Role::Container
        };
        b.set(p.pid, i, role, source);
        if shim_args.is_some() {
            b.out.containers[i].sources.insert("shim");
        }
    }
    enrich(&mut b, s);
    b.out
}

type Placement = (
    String,
    Option<String>,
    Option<Runtime>,
    Option<String>,
    &'static str,
);

/// Which container one (non-shim) process is in, by the strongest trace.
fn place(
    p: &Process,
    hint: Option<&cgroup::CgroupHint>,
    shim: Option<&ShimArgs>,
    conmon: Option<&ConmonArgs>,
    scan: &RuntimeScan,
) -> Option<Placement> {
    let shim_ns = shim.and_then(|s| s.namespace.clone());
    if let Some(h) = hint.filter(|h| h.weak_namespace.is_none()) {
        let mut runtime = Some(h.runtime);
        if h.runtime == Runtime::Unknown {
            // cgroupfs kubepods layout: the parent or the runtime's records say which.
            runtime = if conmon.is_some() {
                Some(Runtime::CriO)
            } else if shim.is_some() {
                Some(shim_runtime(shim_ns.as_deref()))
            } else if scan.tasks.iter().any(|t| t.id == h.id) {
                Some(Runtime::Containerd)
            } else if scan.docker_container(&h.id).is_some() {
                Some(Runtime::Docker)
            } else {
                Some(Runtime::Unknown)
            };
        }
        let ns = shim_ns.or_else(|| {
            scan.tasks
                .iter()
                .find(|t| t.id == h.id)
                .map(|t| t.namespace.clone())
        });
        return Some((h.id.clone(), ns, runtime, h.pod_uid.clone(), "cgroup"));
    }
    if let Some(id) = conmon.and_then(|c| c.cid.clone()) {
        let rt = if conmon.is_some_and(|c| c.podman) {
            Runtime::Podman
        } else {
            Runtime::CriO
        };
        return Some((id, None, Some(rt), None, "conmon"));
    }
    if let Some(h) = hint {
        if let Some(ns) = &h.weak_namespace {
            let by_task = scan.task(ns, &h.id).is_some();
            let by_shim = shim.is_some_and(|s| {
                s.namespace.as_deref() == Some(ns) && s.id.as_deref() == Some(&h.id)
            });
            if by_task || by_shim {
                return Some((
                    h.id.clone(),
                    Some(ns.clone()),
                    Some(shim_runtime(Some(ns))),
                    None,
                    "cgroup",
                ));
            }
        }
    }
    if let Some(s) = shim {
        if let Some(id) = &s.id {
            return Some((
                id.clone(),
                s.namespace.clone(),
                Some(shim_runtime(s.namespace.as_deref())),
                None,
                "shim",
            ));
        }
    }
    if let Some(t) = scan.tasks.iter().find(|t| t.init_pid == Some(p.pid)) {
        return Some((
            t.id.clone(),
            Some(t.namespace.clone()),
            Some(shim_runtime(Some(&t.namespace))),
            None,
            "bundle",
        ));
    }
    if let Some(d) = scan.docker.iter().find(|d| d.pid == Some(p.pid)) {
        return Some((d.id.clone(), None, Some(Runtime::Docker), None, "docker"));
    }
    None
}

fn push_log(c: &mut ContainerInfo, path: &str, kind: LogKind, pid: Option<u32>, fd: Option<i32>) {
    if let Some(l) = c.logs.iter_mut().find(|l| l.path == path) {
        if l.writer_pid.is_none() {
            l.writer_pid = pid;
            l.writer_fd = fd;
        }
        return;
    }
    c.logs.push(LogRef {
        path: path.to_string(),
        kind,
        writer_pid: pid,
        writer_fd: fd,
    });
}

/// Names and logs from the runtimes' records.
fn enrich(b: &mut Builder<'_>, s: &Snapshot) {
    let scan = b.scan;
    // Regular files held open for writing, by path: who writes each log.
    let mut writers: HashMap<&str, (u32, i32)> = HashMap::new();
    for p in &s.processes {
        for f in p.fds.iter().flatten() {
            let writable = f.flags.is_some_and(fdinfo::is_writable);
            if writable && !f.deleted && f.stat.is_some_and(|st| st.is_regular()) {
                writers.entry(f.target.as_str()).or_insert((p.pid, f.fd));
            }
        }
    }
    let procs: HashMap<u32, &Process> = s.processes.iter().map(|p| (p.pid, p)).collect();
    for c in &mut b.out.containers {
        let id = c.r.id.clone();
        let task = match &c.r.runtime_namespace {
            Some(ns) => scan.task(ns, &id),
            None => scan.tasks.iter().find(|t| t.id == id),
        };
        if let Some(t) = task {
            c.sources.insert("bundle");
            c.r.runtime_namespace.get_or_insert(t.namespace.clone());
            apply_names(c, &oci::k8s_names(&t.annotations));
            if c.r.runtime.is_none() {
                c.r.runtime = Some(shim_runtime(Some(&t.namespace)));
            }
        }
        if let Some(sb) = scan.storage_bundle(&id) {
            c.sources.insert("bundle");
            apply_names(c, &oci::k8s_names(&sb.annotations));
            let by = match sb
                .annotations
                .get(oci::CONTAINER_MANAGER)
                .map(String::as_str)
            {
                Some("libpod") => Some(Runtime::Podman),
                Some("cri-o") => Some(Runtime::CriO),
                _ if sb
                    .annotations
                    .keys()
                    .any(|k| k.starts_with("io.kubernetes.cri-o.")) =>
                {
                    Some(Runtime::CriO)
                }
                _ => None,
            };
            if c.r.runtime.is_none() || c.r.runtime == Some(Runtime::Unknown) {
                c.r.runtime = by.or(c.r.runtime);
            }
        }
        if let Some(d) = scan.docker_container(&id) {
            c.sources.insert("docker");
            c.r.runtime = Some(Runtime::Docker);
            match d.name.as_deref().and_then(cmdline::k8s_runtime_name) {
                // dockershim / cri-dockerd: `k8s_<container>_<pod>_...`.
                Some(k) => apply_runtime_name(c, &k),
                None if c.r.name.is_none() => c.r.name = d.name.clone(),
                None => {}
            }
            apply_names(c, &oci::k8s_names(&d.labels));
            c.docker_log = d.log.clone();
            if let Some(path) = d.log_file(scan.docker_daemon.as_ref()) {
                let w = writers.get(path.as_str()).copied();
                push_log(
                    c,
                    &path,
                    LogKind::DockerJson,
                    w.map(|x| x.0),
                    w.map(|x| x.1),
                );
            }
        }
        if let Some(l) = scan.link_by_id(&id) {
            c.sources.insert("pod_logs");
            c.r.pod.get_or_insert(l.pod.clone());
            c.r.namespace.get_or_insert(l.namespace.clone());
            c.r.name.get_or_insert(l.container.clone());
            if let Some(t) = &l.target {
                let w = writers.get(t.as_str()).copied();
                push_log(c, t, LogKind::Cri, w.map(|x| x.0), w.map(|x| x.1));
            }
        }
        if let Some(pod) = c.r.pod_uid.as_deref().and_then(|u| scan.pod_by_uid(u)) {
            c.sources.insert("pod_logs");
            c.r.pod.get_or_insert(pod.pod.clone());
            c.r.namespace.get_or_insert(pod.namespace.clone());
            if c.r.name.is_none() && !c.r.sandbox && pod.containers.len() == 1 {
                c.r.name = Some(pod.containers[0].name.clone());
            }
            if !c.r.sandbox && !c.logs.iter().any(|l| l.kind == LogKind::Cri) {
                let dir =
                    c.r.name
                        .as_deref()
                        .and_then(|n| pod.containers.iter().find(|x| x.name == n));
                if let Some(d) = dir {
                    if let Some(f) = active_log(&d.files) {
                        let path = pod.path(&d.name, &f);
                        let w = writers.get(path.as_str()).copied();
                        push_log(c, &path, LogKind::Cri, w.map(|x| x.0), w.map(|x| x.1));
                    }
                }
            }
        }
        // A file the shim itself writes: `ctr run --log-uri file://...`.
        if let Some(shim) = c.shim_pid.and_then(|p| procs.get(&p)) {
            let own_task = shim
                .cmdline
                .as_deref()
                .and_then(cmdline::shim)
                .is_some_and(|a| a.id.as_deref() == Some(id.as_str()));
            if own_task {
                for f in shim.fds.iter().flatten() {
                    let writable = f.flags.is_some_and(fdinfo::is_writable);
                    let regular = f.stat.is_some_and(|st| st.is_regular());
                    // A file under /run is kept: tmpfs fills RAM as surely as a disk.
                    if writable
                        && regular
                        && !f.deleted
                        && !f.target.starts_with("/dev/")
                        && !f.target.starts_with(paths::CONTAINERD_STATE)
                    {
                        push_log(c, &f.target, LogKind::ShimFile, Some(shim.pid), Some(f.fd));
                    }
                }
            }
        }
        c.pids.sort_unstable();
        c.pids.dedup();
    }
}

/// Names from a runtime's `k8s_...` container name: weaker than annotations (which
/// overwrite them later), so only filled in where unknown.
fn apply_runtime_name(c: &mut ContainerInfo, k: &cmdline::K8sRuntimeName) {
    if k.is_sandbox() {
        c.r.sandbox = true;
    } else {
        c.r.name.get_or_insert_with(|| k.container.clone());
    }
    c.r.pod.get_or_insert_with(|| k.pod.clone());
    c.r.namespace.get_or_insert_with(|| k.namespace.clone());
    c.r.pod_uid.get_or_insert_with(|| k.uid.clone());
}

fn apply_names(c: &mut ContainerInfo, n: &oci::K8sNames) {
    if n.pod.is_some() {
        c.r.pod = n.pod.clone();
    }
    if n.namespace.is_some() {
        c.r.namespace = n.namespace.clone();
    }
    if n.pod_uid.is_some() {
        c.r.pod_uid = n.pod_uid.clone();
    }
    if n.container.is_some() {
        c.r.name = n.container.clone();
    }
    c.r.sandbox |= n.sandbox;
}

/// The file being written in a container's log directory: the highest restart's `N.log`.
pub fn active_log(files: &[String]) -> Option<String> {
    files
        .iter()
        .filter_map(|f| match podlog::log_file_name(f) {
            Some(LogFileName::Active { restart }) => Some((restart, f)),
            _ => None,
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, f)| f.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::cgroup::CgroupEntry;
    use crate::parse::fdlink::FdKind;
    use crate::snapshot::{FileStat, OpenFile};

    fn proc_(pid: u32, ppid: u32, argv: &str, cg: &str) -> Process {
        Process {
            pid,
            ppid,
            comm: argv
                .split(' ')
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap()
                .into(),
            cmdline: Some(argv.split(' ').map(str::to_string).collect()),
            cgroups: Some(vec![CgroupEntry {
                hierarchy: 0,
                controllers: vec![],
                path: cg.into(),
            }]),
            ..Default::default()
        }
    }

    fn file(fd: i32, path: &str) -> OpenFile {
        OpenFile {
            fd,
            kind: FdKind::Path,
            target: path.into(),
            deleted: false,
            pos: Some(0),
            flags: Some(0o102001),
            mnt_id: None,
            stat: Some(FileStat {
                mode: libc::S_IFREG | 0o644,
                nlink: 1,
                ..Default::default()
            }),
        }
    }

    const ID: &str = "4f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
    const SB: &str = "9c1f2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

    #[test]
    fn plain_ctr_container_and_its_shim_file() {
        // The layout `ctr -n iowhy-exp run -d --log-uri file:///tmp/flood.log ... exp1`
        // produced on this VM: shim parent, cgroup /iowhy-exp/exp1, the shim writes the log.
        let mut shim = proc_(
            2738,
            1,
            "/usr/bin/containerd-shim-runc-v2 -namespace iowhy-exp -id exp1 -address /run/containerd/containerd.sock",
            "/",
        );
        shim.fds = Some(vec![
            file(15, "/tmp/flood.log"),
            file(
                2,
                "/run/containerd/io.containerd.runtime.v2.task/iowhy-exp/exp1/log.json",
            ),
        ]);
        let app = proc_(2759, 2738, "/bin/busybox sh -c yes", "/iowhy-exp/exp1");
        let host = proc_(
            500,
            1,
            "/usr/sbin/cron",
            "/process_api/43f16bbfd6f80250bd12e3b2ee68f0ac",
        );
        let s = Snapshot {
            processes: vec![shim, app, host],
            ..Default::default()
        };
        let a = attribute(&s);
        let (c, role) = a.of(2759).unwrap();
        assert_eq!(role, Role::Container);
        assert_eq!(c.r.id, "exp1");
        assert_eq!(c.r.runtime, Some(Runtime::Containerd));
        assert_eq!(c.r.runtime_namespace.as_deref(), Some("iowhy-exp"));
        assert_eq!(c.shim_pid, Some(2738));
        assert_eq!(c.pids, vec![2759]);
        assert_eq!(c.logs.len(), 1);
        assert_eq!(c.logs[0].path, "/tmp/flood.log");
        assert_eq!(c.logs[0].kind, LogKind::ShimFile);
        assert_eq!(c.logs[0].writer_pid, Some(2738));
        assert_eq!(a.of(2738).unwrap().1, Role::Shim);
        // A host process whose v1 memory cgroup looks like /<ns>/<id> stays unattributed.
        assert!(a.of(500).is_none());
        assert_eq!(a.containers.len(), 1);
    }

    #[test]
    fn kubernetes_pod_via_bundle_and_pod_logs() {
        let cg = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7b0c3f5e_1f2a_4a43_9b45_0d8d3e6c1a2b.slice/cri-containerd-{ID}.scope"
        );
        let shim = proc_(
            900,
            1,
            &format!(
                "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id {SB} -address /run/containerd/containerd.sock"
            ),
            "/system.slice/containerd.service",
        );
        let app = proc_(901, 900, "/app --verbose", &cg);
        let mut containerd = proc_(
            300,
            1,
            "/usr/bin/containerd",
            "/system.slice/containerd.service",
        );
        let log = "/var/log/pods/prod_flood-7d9_7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b/logger/0.log"
            .to_string();
        containerd.fds = Some(vec![file(40, &log)]);
        let mut ann = std::collections::BTreeMap::new();
        ann.insert("io.kubernetes.cri.container-name".into(), "logger".into());
        ann.insert("io.kubernetes.cri.sandbox-name".into(), "flood-7d9".into());
        ann.insert("io.kubernetes.cri.sandbox-namespace".into(), "prod".into());
        let scan = RuntimeScan {
            tasks: vec![super::super::scan::Task {
                namespace: "k8s.io".into(),
                id: ID.into(),
                init_pid: Some(901),
                annotations: ann,
            }],
            pods: vec![super::super::scan::PodLogs {
                namespace: "prod".into(),
                pod: "flood-7d9".into(),
                uid: "7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b".into(),
                dir: "prod_flood-7d9_7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b".into(),
                containers: vec![super::super::scan::PodContainerLogs {
                    name: "logger".into(),
                    files: vec!["0.log".into(), "0.log.20240521-101112.gz".into()],
                }],
            }],
            ..Default::default()
        };
        let s = Snapshot {
            processes: vec![shim, app, containerd],
            runtime: Some(scan),
            ..Default::default()
        };
        let a = attribute(&s);
        let (c, _) = a.of(901).unwrap();
        assert_eq!(c.r.id, ID);
        assert_eq!(c.r.runtime, Some(Runtime::Containerd));
        assert_eq!(c.r.runtime_namespace.as_deref(), Some("k8s.io"));
        assert_eq!(c.r.pod.as_deref(), Some("flood-7d9"));
        assert_eq!(c.r.namespace.as_deref(), Some("prod"));
        assert_eq!(c.r.name.as_deref(), Some("logger"));
        assert_eq!(c.shim_pid, Some(900));
        assert_eq!(c.logs[0].path, log);
        assert_eq!(c.logs[0].kind, LogKind::Cri);
        assert_eq!(c.logs[0].writer_pid, Some(300));
        assert!(c.sources.contains("cgroup") && c.sources.contains("bundle"));
        // The shim is the sandbox's task: a different container entry, role shim.
        let (sb, role) = a.of(900).unwrap();
        assert_eq!((sb.r.id.as_str(), role), (SB, Role::Shim));
        assert!(a.of(300).is_none());
    }

    #[test]
    fn docker_crio_podman_by_cgroup_and_conmon() {
        let d = proc_(
            10,
            1,
            "nginx: master",
            &format!("/system.slice/docker-{ID}.scope"),
        );
        let conmon = proc_(
            20,
            1,
            &format!(
                "/usr/bin/conmon -c {SB} -n web -l k8s-file:/var/lib/containers/storage/overlay-containers/{SB}/userdata/ctr.log --exit-command /usr/bin/podman"
            ),
            &format!("/machine.slice/libpod-conmon-{SB}.scope"),
        );
        let pm = proc_(
            21,
            20,
            "/bin/sh",
            &format!("/machine.slice/libpod-{SB}.scope/container"),
        );
        let s = Snapshot {
            processes: vec![d, conmon, pm],
            ..Default::default()
        };
        let a = attribute(&s);
        let (c, _) = a.of(10).unwrap();
        assert_eq!(c.r.runtime, Some(Runtime::Docker));
        // No log is guessed when Docker's directory was not read.
        assert!(c.logs.is_empty());
        let (c, role) = a.of(21).unwrap();
        assert_eq!(
            (c.r.runtime, role),
            (Some(Runtime::Podman), Role::Container)
        );
        assert_eq!(c.r.name.as_deref(), Some("web"));
        assert_eq!(c.shim_pid, Some(20));
        assert_eq!(c.logs[0].kind, LogKind::Conmon);
        assert_eq!(a.of(20).unwrap().1, Role::Monitor);
    }

    #[test]
    fn crio_names_from_config_json_alone() {
        // A DaemonSet that sees the cgroup and CRI-O's run root but no conmon: the
        // bundle's annotations name the container (two in the pod: no single-container
        // guess from /var/log/pods).
        let uid = "6c5d4e3f-2a1b-4c0d-9e8f-7a6b5c4d3e2f";
        let app = proc_(
            7,
            1,
            "/bin/parser",
            &format!("/kubepods/besteffort/pod{uid}/crio-{ID}"),
        );
        let mut ann = std::collections::BTreeMap::new();
        for (k, v) in [
            ("io.container.manager", "cri-o"),
            ("io.kubernetes.container.name", "parser"),
            ("io.kubernetes.pod.name", "ingest-6f7b"),
            ("io.kubernetes.pod.namespace", "data"),
            ("io.kubernetes.pod.uid", uid),
        ] {
            ann.insert(k.to_string(), v.to_string());
        }
        let scan = RuntimeScan {
            storage: vec![super::super::scan::StorageBundle {
                id: ID.into(),
                config: format!(
                    "/run/containers/storage/overlay-containers/{ID}/userdata/config.json"
                ),
                annotations: ann,
            }],
            ..Default::default()
        };
        let s = Snapshot {
            processes: vec![app],
            runtime: Some(scan),
            ..Default::default()
        };
        let a = attribute(&s);
        let (c, _) = a.of(7).unwrap();
        assert_eq!(c.r.runtime, Some(Runtime::CriO));
        assert_eq!(c.r.name.as_deref(), Some("parser"));
        assert_eq!(c.r.pod.as_deref(), Some("ingest-6f7b"));
        assert_eq!(c.r.namespace.as_deref(), Some("data"));
        assert!(c.sources.contains("bundle"));
    }

    #[test]
    fn active_log_is_the_highest_restart() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            active_log(&f(&["0.log", "1.log", "0.log.20240101-000000"])).as_deref(),
            Some("1.log")
        );
        assert_eq!(active_log(&f(&["x"])), None);
    }
}
