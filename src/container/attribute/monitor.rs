//! The shim (containerd) or conmon (CRI-O, Podman) that serves a container: recognised by
//! its command line, and found for any other process by walking up its parents.

use std::collections::HashMap;

use super::logs::push_log;
use super::names::apply_runtime_name;
use super::{Builder, Role, shim_runtime};
use crate::container::paths;
use crate::container::rotation::LogKind;
use crate::parse::container::cgroup::Runtime;
use crate::parse::container::cmdline::{self, ConmonArgs, ShimArgs};
use crate::snapshot::{Process, Snapshot};

/// How far up the parent chain to look for a shim (a container's process tree is shallow;
/// the bound guards against a cycle in a torn snapshot).
const MAX_ANCESTRY: usize = 64;

pub(super) enum Monitor<'a> {
    Shim(&'a ShimArgs),
    Conmon(&'a ConmonArgs),
}

/// Every shim and conmon of a snapshot, by pid, and the parent links to find them.
pub(super) struct Monitors<'s> {
    procs: HashMap<u32, &'s Process>,
    pub(super) shims: HashMap<u32, ShimArgs>,
    pub(super) conmons: HashMap<u32, ConmonArgs>,
}

impl<'s> Monitors<'s> {
    pub(super) fn of(s: &'s Snapshot) -> Self {
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
        Monitors {
            procs,
            shims,
            conmons,
        }
    }

    /// The nearest shim or conmon among the ancestors of `pid`.
    pub(super) fn serving(&self, pid: u32) -> Option<(u32, Monitor<'_>)> {
        let (procs, shims, conmons) = (&self.procs, &self.shims, &self.conmons);
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
    }
}

impl Builder<'_> {
    /// A shim process: the entry of the task it serves (for Kubernetes, the pod's sandbox).
    pub(super) fn shim(&mut self, pid: u32, a: &ShimArgs) {
        if let Some(id) = &a.id {
            let i = self.entry(id, a.namespace.as_deref());
            self.out.containers[i].shim_pid = Some(pid);
            self.out.containers[i]
                .r
                .runtime
                .get_or_insert(shim_runtime(a.namespace.as_deref()));
            self.set(pid, i, Role::Shim, "shim");
        }
    }

    /// A conmon process: its container's entry, with what its arguments say.
    pub(super) fn conmon(&mut self, pid: u32, a: &ConmonArgs) {
        if let Some(id) = &a.cid {
            let i = self.entry(id, None);
            let c = &mut self.out.containers[i];
            c.shim_pid = Some(pid);
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
                push_log(c, l, kind, Some(pid), None);
            }
            self.set(pid, i, Role::Monitor, "conmon");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Role, attribute};
    use crate::container::rotation::LogKind;
    use crate::parse::container::cgroup::Runtime;
    use crate::snapshot::Snapshot;

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
}
