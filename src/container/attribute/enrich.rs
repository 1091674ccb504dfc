//! Names and log files from the runtimes' records: the task's bundle, CRI-O's storage
//! bundle, Docker's container directory, the `/var/log/containers` links, the
//! `/var/log/pods` tree, and the files a shim itself writes.

use std::collections::HashMap;

use super::logs::{active_log, push_log};
use super::names::{apply_names, apply_runtime_name};
use super::{Builder, ContainerInfo, shim_runtime};
use crate::container::paths;
use crate::container::rotation::LogKind;
use crate::container::scan::RuntimeScan;
use crate::parse::container::cgroup::Runtime;
use crate::parse::container::{cmdline, oci};
use crate::parse::fdinfo;
use crate::snapshot::{Process, Snapshot};

/// Names and logs from the runtimes' records.
pub(super) fn enrich(b: &mut Builder<'_>, s: &Snapshot) {
    let scan = b.scan;
    // Regular files held open for writing, by path: who writes each log.
    let mut writers: Writers = HashMap::new();
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
        from_task(c, scan, &id);
        from_storage_bundle(c, scan, &id);
        from_docker(c, scan, &id, &writers);
        from_pod_link(c, scan, &id, &writers);
        from_pod_dir(c, scan, &writers);
        from_shim(c, &procs, &id);
        c.pids.sort_unstable();
        c.pids.dedup();
    }
}
/// Who writes each log: the first (pid, fd) holding a regular file open for writing, by path.
type Writers<'a> = HashMap<&'a str, (u32, i32)>;

/// The task's bundle (containerd): its namespace, the Kubernetes names, the runtime.
fn from_task(c: &mut ContainerInfo, scan: &RuntimeScan, id: &str) {
    let task = match &c.r.runtime_namespace {
        Some(ns) => scan.task(ns, id),
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
}

/// CRI-O's or Podman's storage bundle: the names, and which of them manages it.
fn from_storage_bundle(c: &mut ContainerInfo, scan: &RuntimeScan, id: &str) {
    if let Some(sb) = scan.storage_bundle(id) {
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
}

/// Docker's container directory: the name (dockershim's too), labels, the json log.
fn from_docker(c: &mut ContainerInfo, scan: &RuntimeScan, id: &str, writers: &Writers) {
    if let Some(d) = scan.docker_container(id) {
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
}

/// The `/var/log/containers` link: pod, namespace, container, its log.
fn from_pod_link(c: &mut ContainerInfo, scan: &RuntimeScan, id: &str, writers: &Writers) {
    if let Some(l) = scan.link_by_id(id) {
        c.sources.insert("pod_logs");
        c.r.pod.get_or_insert(l.pod.clone());
        c.r.namespace.get_or_insert(l.namespace.clone());
        c.r.name.get_or_insert(l.container.clone());
        if let Some(t) = &l.target {
            let w = writers.get(t.as_str()).copied();
            push_log(c, t, LogKind::Cri, w.map(|x| x.0), w.map(|x| x.1));
        }
    }
}

/// The `/var/log/pods` directory of the pod: names, and the active log when no link gave one.
fn from_pod_dir(c: &mut ContainerInfo, scan: &RuntimeScan, writers: &Writers) {
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
}

/// A file the shim itself writes: `ctr run --log-uri file://...`.
fn from_shim(c: &mut ContainerInfo, procs: &HashMap<u32, &Process>, id: &str) {
    if let Some(shim) = c.shim_pid.and_then(|p| procs.get(&p)) {
        let own_task = shim
            .cmdline
            .as_deref()
            .and_then(cmdline::shim)
            .is_some_and(|a| a.id.as_deref() == Some(id));
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
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Role, attribute};
    use crate::container::rotation::LogKind;
    use crate::container::scan::RuntimeScan;
    use crate::parse::container::cgroup::Runtime;
    use crate::snapshot::Snapshot;

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
            tasks: vec![crate::container::scan::Task {
                namespace: "k8s.io".into(),
                id: ID.into(),
                init_pid: Some(901),
                annotations: ann,
            }],
            pods: vec![crate::container::scan::PodLogs {
                namespace: "prod".into(),
                pod: "flood-7d9".into(),
                uid: "7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b".into(),
                dir: "prod_flood-7d9_7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b".into(),
                containers: vec![crate::container::scan::PodContainerLogs {
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
            storage: vec![crate::container::scan::StorageBundle {
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
}
