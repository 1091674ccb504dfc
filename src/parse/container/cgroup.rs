//! Which container a cgroup path names.
//!
//! Each runtime spells its cgroups its own way (cgroup v2 `0::` line, or any v1 line):
//!
//! | layout | example |
//! |---|---|
//! | Kubernetes, systemd driver | `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope` (`crio-<id>.scope`, `docker-<id>.scope`) |
//! | Kubernetes, cgroupfs driver | `/kubepods/burstable/pod<uid>/<id>` (guaranteed pods sit directly under `/kubepods`); CRI-O names its own `crio-<id>` and `crio-conmon-<id>` there (cri-o `internal/config/cgmgr/cgroupfs_linux.go`) |
//! | Docker | `/system.slice/docker-<id>.scope`, or `/docker/<id>` with cgroupfs |
//! | Podman | `/machine.slice/libpod-<id>.scope[/container]`, rootless under `user@UID.service`, cgroupfs `/libpod_parent/libpod-<id>`; conmon in `libpod-conmon-<id>.scope` |
//! | CRI-O's conmon | `crio-conmon-<id>.scope` |
//! | plain containerd (`ctr run`) | `/<namespace>/<id>`, e.g. `/default/web` |
//!
//! The last one is weak: any two-level path looks like it (this VM's own memory cgroup is
//! `/process_api/<hex>`), so attribution only believes it when a containerd task or shim
//! with that namespace and id exists.

use serde::{Deserialize, Serialize};

use crate::parse::cgroup::CgroupEntry;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    Containerd,
    Docker,
    CriO,
    Podman,
    /// A Kubernetes container whose runtime the cgroup path does not say (cgroupfs driver)
    /// and no other trace settled.
    Unknown,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Containerd => "containerd",
            Runtime::Docker => "docker",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupHint {
    pub runtime: Runtime,
    pub id: String,
    /// The pod's uid, with dashes, when the path is under `kubepods`.
    pub pod_uid: Option<String>,
    /// `guaranteed`, `burstable` or `besteffort`.
    pub qos: Option<String>,
    /// The runtime's monitor (conmon) scope, not the container itself.
    pub monitor: bool,
    /// Set for the weak plain-containerd shape `/<namespace>/<id>`: needs confirming.
    pub weak_namespace: Option<String>,
}

/// Scope prefixes, longest first where one is a prefix of another.
const SCOPES: &[(&str, Runtime, bool)] = &[
    ("cri-containerd-", Runtime::Containerd, false),
    ("crio-conmon-", Runtime::CriO, true),
    ("crio-", Runtime::CriO, false),
    ("libpod-conmon-", Runtime::Podman, true),
    ("libpod-", Runtime::Podman, false),
    ("docker-", Runtime::Docker, false),
];

const QOS: &[&str] = &["burstable", "besteffort", "guaranteed"];

/// containerd's identifier rule (`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`, at most 76
/// characters), which also covers the 64-hex ids of every runtime.
pub fn is_identifier(s: &str) -> bool {
    if s.is_empty() || s.len() > 76 {
        return false;
    }
    let b = s.as_bytes();
    let sep = |c: u8| matches!(c, b'.' | b'_' | b'-');
    if sep(b[0]) || sep(b[b.len() - 1]) {
        return false;
    }
    b.iter().all(|c| c.is_ascii_alphanumeric() || sep(*c))
        && !b.windows(2).any(|w| sep(w[0]) && sep(w[1]))
}

pub fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// A pod uid: a UUID, or the 32-hex config hash of a static pod.
fn is_pod_uid(s: &str) -> bool {
    (32..=36).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-')
}

/// `pod<uid>` (cgroupfs) or `kubepods[-qos]-pod<uid_underscored>.slice` (systemd).
fn pod_uid_of(c: &str) -> Option<String> {
    if let Some(u) = c.strip_prefix("pod") {
        return is_pod_uid(u).then(|| u.to_string());
    }
    let s = c.strip_suffix(".slice")?;
    if !s.starts_with("kubepods") {
        return None;
    }
    let u = &s[s.rfind("-pod")? + 4..];
    let u = u.replace('_', "-");
    is_pod_uid(&u).then_some(u)
}

fn qos_of(c: &str) -> Option<&'static str> {
    let base = c.strip_suffix(".slice").unwrap_or(c);
    let base = base.strip_prefix("kubepods-").unwrap_or(base);
    QOS.iter().copied().find(|q| *q == base)
}

/// Parse one cgroup path.
pub fn parse_path(path: &str) -> Option<CgroupHint> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let mut pod_uid = None;
    let mut qos = None;
    let mut kubepods = false;
    for (i, c) in comps.iter().enumerate() {
        if *c == "kubepods" || c.starts_with("kubepods.") || c.starts_with("kubepods-") {
            kubepods = true;
        }
        if let Some(q) = qos_of(c) {
            qos = Some(q.to_string());
        }
        if let Some(u) = pod_uid_of(c) {
            pod_uid = Some(u);
            continue;
        }
        let hint = |runtime, id: &str, monitor| CgroupHint {
            runtime,
            id: id.to_string(),
            pod_uid: pod_uid.clone(),
            qos: qos.clone(),
            monitor,
            weak_namespace: None,
        };
        if let Some(rest) = c.strip_suffix(".scope") {
            for (prefix, rt, monitor) in SCOPES {
                if let Some(id) = rest.strip_prefix(prefix) {
                    if is_identifier(id) {
                        return Some(hint(*rt, id, *monitor));
                    }
                }
            }
        }
        let parent = i.checked_sub(1).map(|p| comps[p]);
        if parent == Some("docker") && is_hex_id(c) {
            return Some(hint(Runtime::Docker, c, false));
        }
        if parent == Some("libpod_parent") {
            if let Some(id) = c.strip_prefix("libpod-") {
                if is_identifier(id) {
                    return Some(hint(Runtime::Podman, id, false));
                }
            }
        }
        if kubepods && pod_uid.is_some() {
            if is_hex_id(c) {
                return Some(hint(Runtime::Unknown, c, false));
            }
            // cgroupfs driver: the runtime's prefix without `.scope`. Only a full 64-hex id
            // counts here, since nothing else marks the name as the runtime's.
            for (prefix, rt, monitor) in SCOPES {
                if let Some(id) = c.strip_prefix(prefix) {
                    if is_hex_id(id) {
                        return Some(hint(*rt, id, *monitor));
                    }
                }
            }
        }
    }
    // Plain containerd: exactly `/<namespace>/<id>`, neither a systemd unit.
    if let [ns, id] = comps.as_slice() {
        let unit = |s: &str| {
            [".slice", ".scope", ".service", ".mount", ".socket"]
                .iter()
                .any(|u| s.ends_with(u))
        };
        if is_identifier(ns) && is_identifier(id) && !unit(ns) && !unit(id) {
            return Some(CgroupHint {
                runtime: Runtime::Containerd,
                id: id.to_string(),
                pod_uid: None,
                qos: None,
                monitor: false,
                weak_namespace: Some(ns.to_string()),
            });
        }
    }
    None
}

/// The best hint among a process's cgroup lines: the v2 line first, then the v1 lines;
/// a strong layout beats the weak `/<namespace>/<id>` one.
pub fn from_entries(entries: &[CgroupEntry]) -> Option<CgroupHint> {
    let mut ordered: Vec<&CgroupEntry> = entries.iter().filter(|e| e.hierarchy == 0).collect();
    ordered.extend(entries.iter().filter(|e| e.hierarchy != 0));
    let mut weak = None;
    for e in ordered {
        match parse_path(&e.path) {
            Some(h) if h.weak_namespace.is_none() => return Some(h),
            Some(h) if weak.is_none() => weak = Some(h),
            _ => {}
        }
    }
    weak
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

    #[test]
    fn kubernetes_systemd_driver() {
        let p = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7b0c3f5e_1f2a_4a43_9b45_0d8d3e6c1a2b.slice/cri-containerd-{ID}.scope"
        );
        let h = parse_path(&p).unwrap();
        assert_eq!(h.runtime, Runtime::Containerd);
        assert_eq!(h.id, ID);
        assert_eq!(
            h.pod_uid.as_deref(),
            Some("7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b")
        );
        assert_eq!(h.qos.as_deref(), Some("burstable"));
        // Guaranteed pods sit right under kubepods.slice.
        let p = format!(
            "/kubepods.slice/kubepods-pod7b0c3f5e_1f2a_4a43_9b45_0d8d3e6c1a2b.slice/crio-{ID}.scope"
        );
        let h = parse_path(&p).unwrap();
        assert_eq!((h.runtime, h.monitor), (Runtime::CriO, false));
        assert!(h.pod_uid.is_some());
        let h = parse_path(&format!("/kubepods.slice/x.slice/crio-conmon-{ID}.scope")).unwrap();
        assert_eq!((h.runtime, h.monitor), (Runtime::CriO, true));
    }

    #[test]
    fn kubernetes_cgroupfs_driver() {
        let h = parse_path(&format!(
            "/kubepods/besteffort/pod7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b/{ID}"
        ))
        .unwrap();
        assert_eq!(h.runtime, Runtime::Unknown);
        assert_eq!(h.qos.as_deref(), Some("besteffort"));
        // A static pod's uid is a 32-hex config hash.
        let h = parse_path(&format!(
            "/kubepods/pod0123456789abcdef0123456789abcdef/{ID}"
        ))
        .unwrap();
        assert_eq!(
            h.pod_uid.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        // CRI-O with the cgroupfs driver prefixes its ids (crio-<id>, conmon in
        // crio-conmon-<id>), without the `.scope` of the systemd driver.
        let h = parse_path(&format!(
            "/kubepods/burstable/pod7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b/crio-{ID}"
        ))
        .unwrap();
        assert_eq!(
            (h.runtime, h.monitor, h.id.as_str()),
            (Runtime::CriO, false, ID)
        );
        assert_eq!(h.qos.as_deref(), Some("burstable"));
        let h = parse_path(&format!(
            "/kubepods/pod7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b/crio-conmon-{ID}"
        ))
        .unwrap();
        assert_eq!(
            (h.runtime, h.monitor, h.id.as_str()),
            (Runtime::CriO, true, ID)
        );
        // Outside a pod, or with a short id, a bare prefix is not believed.
        assert!(parse_path(&format!("/crio-{ID}")).is_none());
        assert!(
            parse_path("/kubepods/besteffort/pod7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b/crio-abc")
                .is_none()
        );
        // The pod's own cgroup is not a container.
        assert!(
            parse_path("/kubepods/burstable/pod7b0c3f5e-1f2a-4a43-9b45-0d8d3e6c1a2b").is_none()
        );
    }

    #[test]
    fn docker_and_podman() {
        let h = parse_path(&format!("/system.slice/docker-{ID}.scope")).unwrap();
        assert_eq!((h.runtime, h.pod_uid.clone()), (Runtime::Docker, None));
        assert_eq!(
            parse_path(&format!("/docker/{ID}")).unwrap().runtime,
            Runtime::Docker
        );
        let h = parse_path(&format!("/machine.slice/libpod-{ID}.scope/container")).unwrap();
        assert_eq!((h.runtime, h.monitor), (Runtime::Podman, false));
        let h = parse_path(&format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-{ID}.scope"
        ))
        .unwrap();
        assert_eq!((h.runtime, h.monitor), (Runtime::Podman, true));
        assert_eq!(
            parse_path(&format!("/libpod_parent/libpod-{ID}"))
                .unwrap()
                .id,
            ID
        );
    }

    #[test]
    fn plain_containerd_is_weak_and_the_host_is_nothing() {
        // Captured on this VM: `ctr -n iowhy-exp run ... exp1` puts every v1 and the v2
        // hierarchy at /iowhy-exp/exp1.
        let e = crate::parse::cgroup::parse(
            "9:name=systemd:/iowhy-exp/exp1\n4:memory:/iowhy-exp/exp1\n0::/iowhy-exp/exp1\n",
        )
        .unwrap();
        let h = from_entries(&e).unwrap();
        assert_eq!(h.weak_namespace.as_deref(), Some("iowhy-exp"));
        assert_eq!(h.id, "exp1");
        // This VM's own processes: only the memory controller is nested.
        let e = crate::parse::cgroup::parse(
            "9:name=systemd:/\n4:memory:/process_api/43f16bbfd6f80250bd12e3b2ee68f0ac\n0::/\n",
        )
        .unwrap();
        assert!(from_entries(&e).unwrap().weak_namespace.is_some());
        for p in [
            "/",
            "/system.slice/cron.service",
            "/user.slice/user-0.slice",
            "/init.scope",
            "/system.slice/docker-notanid!.scope",
        ] {
            assert!(parse_path(p).is_none(), "{p}");
        }
    }

    #[test]
    fn strong_beats_weak_across_lines() {
        let e = crate::parse::cgroup::parse(&format!(
            "4:memory:/a/b\n0::/system.slice/docker-{ID}.scope\n"
        ))
        .unwrap();
        assert_eq!(from_entries(&e).unwrap().runtime, Runtime::Docker);
    }

    #[test]
    fn hostile_paths() {
        for p in [
            "",
            "//",
            "/cri-containerd-.scope",
            "/kubepods.slice/kubepods-pod.slice/x",
            "/docker/short",
            &"/a".repeat(5000),
            "/\u{0}/\u{ffff}",
        ] {
            let _ = parse_path(p);
        }
        assert!(!is_identifier("a..b"));
        assert!(!is_identifier("-a"));
        assert!(is_identifier("iowhy-flood-123"));
    }
}
