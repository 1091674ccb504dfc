//! Attribution: for every process, the container it belongs to (or the shim/monitor that
//! serves one), merged from every trace a snapshot holds. A pure function of a Snapshot.
//!
//! Order of belief, strongest first: a runtime-specific cgroup scope; conmon's `-c ID`
//! for its children; the plain containerd cgroup `/<ns>/<id>` when a task or shim with
//! that namespace and id confirms it; the shim that parents the process (for Kubernetes
//! that is the pod's shim, so its `-id` is the sandbox's); a task's `init.pid`; Docker's
//! recorded pid. Names come afterwards from the bundle annotations, Docker's config, the
//! `/var/log/containers` links and the `/var/log/pods` tree.
//!
//! The parts: `place` puts one process by the strongest trace (the cgroup first);
//! `monitor` recognises shims and conmons and finds the one serving a process by its
//! parents; `enrich` adds names and log files from the runtimes' records, with
//! `names` (Kubernetes names) and `logs` (log files) as its helpers.

mod enrich;
mod logs;
mod monitor;
mod names;
mod place;

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::rotation::{DockerLogConfig, LogKind};
use super::scan::RuntimeScan;
use crate::parse::container::cgroup::{self, Runtime};
use crate::snapshot::Snapshot;
use enrich::enrich;
pub use logs::active_log;
use monitor::{Monitor, Monitors};
use place::place;

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
            None if cgroup::is_hex_id(&self.id) => crate::hoststr::prefix(&self.id, 12).to_string(),
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
    let mons = Monitors::of(s);
    let mut b = Builder {
        scan,
        out: Attribution::default(),
        index: HashMap::new(),
    };
    for p in s.processes.iter().filter(|p| !p.kthread) {
        if let Some(a) = mons.shims.get(&p.pid) {
            b.shim(p.pid, a);
            continue;
        }
        if let Some(a) = mons.conmons.get(&p.pid) {
            b.conmon(p.pid, a);
            continue;
        }
        let hint = p.cgroups.as_deref().and_then(cgroup::from_entries);
        let mon = mons.serving(p.pid);
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

/// Processes and files shared by the tests of every part.
#[cfg(test)]
mod fixtures {
    use crate::parse::cgroup::CgroupEntry;
    use crate::parse::fdlink::FdKind;
    use crate::snapshot::Process;
    use crate::snapshot::{FileStat, OpenFile};

    pub fn proc_(pid: u32, ppid: u32, argv: &str, cg: &str) -> Process {
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

    pub fn file(fd: i32, path: &str) -> OpenFile {
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

    pub const ID: &str = "4f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
    pub const SB: &str = "9c1f2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
}
