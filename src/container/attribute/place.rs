//! Which container one process (not a shim or conmon) is in, by the strongest trace it
//! leaves: a runtime's cgroup scope, conmon's `-c ID`, a plain containerd cgroup that a
//! task or shim confirms, the parent shim, a task's `init.pid`, Docker's recorded pid.

use super::shim_runtime;
use crate::container::scan::RuntimeScan;
use crate::parse::container::cgroup::{self, Runtime};
use crate::parse::container::cmdline::{ConmonArgs, ShimArgs};
use crate::snapshot::Process;

pub(super) type Placement = (
    String,
    Option<String>,
    Option<Runtime>,
    Option<String>,
    &'static str,
);

/// Which container one (non-shim) process is in, by the strongest trace.
pub(super) fn place(
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
#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Role, attribute};
    use crate::container::rotation::LogKind;
    use crate::parse::container::cgroup::Runtime;
    use crate::snapshot::Snapshot;

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
}
