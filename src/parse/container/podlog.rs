//! The kubelet's log layout (kubelet ≥ 1.14): `/var/log/pods/<ns>_<pod>_<uid>/<container>/<N>.log`,
//! where N counts the container's restarts; rotated files are `<N>.log.<YYYYMMDD-HHMMSS>`
//! (older ones gzip'ed); and the links `/var/log/containers/<pod>_<ns>_<container>-<id>.log`
//! that point into that tree. Namespace, pod and container names are DNS labels and
//! cannot contain `_`, which is what makes these names parseable.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDir {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
}

/// `<ns>_<pod>_<uid>`.
pub fn pod_dir(name: &str) -> Option<PodDir> {
    let mut it = name.split('_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || ns.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    Some(PodDir {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        uid: uid.to_string(),
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFileName {
    /// `N.log`: written by the runtime now (for the highest N).
    Active { restart: u32 },
    /// `N.log.<timestamp>[.gz]`: rotated by the kubelet.
    Rotated { restart: u32, compressed: bool },
}

pub fn log_file_name(name: &str) -> Option<LogFileName> {
    let (n, rest) = name.split_once(".log")?;
    let restart: u32 = n.parse().ok()?;
    if rest.is_empty() {
        return Some(LogFileName::Active { restart });
    }
    let stamp = rest.strip_prefix('.')?;
    let (stamp, compressed) = match stamp.strip_suffix(".gz") {
        Some(s) => (s, true),
        None => (stamp, false),
    };
    // The kubelet's rotation stamp is `20060102-150405`; a `.tmp` is a rotation in flight.
    let ok = stamp.len() == 15
        && stamp.as_bytes()[8] == b'-'
        && stamp
            .bytes()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit());
    ok.then_some(LogFileName::Rotated {
        restart,
        compressed,
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkName {
    pub pod: String,
    pub namespace: String,
    pub container: String,
    pub id: String,
}

/// `<pod>_<ns>_<container>-<id>.log` (the id is the runtime's 64-hex container id).
pub fn link_name(name: &str) -> Option<LinkName> {
    let stem = name.strip_suffix(".log")?;
    let (head, id) = stem.rsplit_once('-')?;
    if !super::cgroup::is_hex_id(id) {
        return None;
    }
    let mut it = head.split('_');
    let (pod, ns, ctr) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || pod.is_empty() || ns.is_empty() || ctr.is_empty() {
        return None;
    }
    Some(LinkName {
        pod: pod.to_string(),
        namespace: ns.to_string(),
        container: ctr.to_string(),
        id: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let d =
            pod_dir("kube-system_coredns-5d78c9869d-8xk2p_0f6f5b0e-8a3c-4f7e-9a51-2d4c8e1b7a90")
                .unwrap();
        assert_eq!(d.namespace, "kube-system");
        assert_eq!(d.pod, "coredns-5d78c9869d-8xk2p");
        assert!(pod_dir("a_b").is_none());
        assert!(pod_dir("a_b_c_d").is_none());
        assert!(pod_dir("__").is_none());
        assert_eq!(
            log_file_name("0.log"),
            Some(LogFileName::Active { restart: 0 })
        );
        assert_eq!(
            log_file_name("3.log.20240521-101112"),
            Some(LogFileName::Rotated {
                restart: 3,
                compressed: false
            })
        );
        assert_eq!(
            log_file_name("3.log.20240521-101112.gz"),
            Some(LogFileName::Rotated {
                restart: 3,
                compressed: true
            })
        );
        for bad in [
            "x.log",
            "0.log.tmp",
            "0.logx",
            "0.log.2024",
            "",
            ".log",
            "-1.log",
        ] {
            assert_eq!(log_file_name(bad), None, "{bad}");
        }
        let id = "4f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";
        let l = link_name(&format!(
            "coredns-5d78c9869d-8xk2p_kube-system_coredns-{id}.log"
        ))
        .unwrap();
        assert_eq!(l.pod, "coredns-5d78c9869d-8xk2p");
        assert_eq!(l.container, "coredns");
        assert_eq!(l.id, id);
        assert!(link_name("a_b_c-123.log").is_none());
        assert!(link_name(&format!("a_b-{id}.log")).is_none());
    }
}
