//! `container_log_flood` and `log_rotation_missing`: the container half of the seed —
//! a container spamming stdout through its shim into a log file that grows faster than
//! anything rotates it.

use crate::container::attribute::ContainerRef;
use crate::interval::Interval;
use crate::interval::container::{ContainerRates, LogRates};

use super::Finding;

mod flood;
mod remedy;
mod rotation;

pub use flood::{container_log_flood, reported_as_flood};
pub use remedy::logrotate_cmd;
pub use rotation::log_rotation_missing;

/// A container log growing this fast is a flood: it is the kubelet's default
/// `containerLogMaxSize` (10 MiB) per `containerLogMonitorInterval` (10 s), the rate past
/// which the kubelet's rotation cannot keep a log under its limit; and it fills 84 GiB a
/// day.
pub const FLOOD_BYTES_PER_S: f64 = 1024.0 * 1024.0;
/// Critical when the filesystem would be full within the hour at this rate, or is
/// already this full (the same thresholds as `filesystem_full`).
pub const FLOOD_CRITICAL_TTF_S: f64 = super::space::FULL_SOON_S;
pub const FLOOD_CRITICAL_USE_PCT: f64 = super::space::FULL_PCT;
/// A log without rotation is worth a finding once it is this big (runaway_log's floor)...
pub const UNROTATED_LARGE_BYTES: u64 = super::space::RUNAWAY_MIN_BYTES;
/// ...or will be this big within the hour at its current rate.
pub const UNROTATED_HOUR_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;
/// Plain (non-container) logs are only judged under /var/log, where logrotate is
/// expected to be in charge.
pub const PLAIN_LOG_DIR: &str = "/var/log/";

fn label(r: &ContainerRef) -> String {
    let mut s = format!("{} {}", r.runtime_str(), r.short());
    if let Some(p) = r.pod_label() {
        s.push_str(&format!(" (pod {p})"));
    } else if let Some(ns) = &r.runtime_namespace {
        s.push_str(&format!(" (namespace {ns})"));
    }
    s
}

fn subject(f: &mut Finding, c: &ContainerRates, l: &LogRates) {
    f.subject.container_id = Some(c.info.r.id.clone());
    f.subject.pod = c.info.r.pod.clone();
    f.subject.namespace = c.info.r.namespace.clone();
    f.subject.path = Some(l.path.clone());
    f.subject.mountpoint = l.mountpoint.clone();
    f.subject.device = l.device.clone();
    // The container's first process: the one the runtime started.
    if let Some(pid) = c.info.pids.first() {
        f.subject.pid = Some(*pid);
    }
}

/// Where the kubelet's log settings live on this node (the file it read, or its flags).
fn kubelet_config_place(iv: &Interval) -> String {
    iv.after
        .runtime
        .as_ref()
        .and_then(|s| s.kubelet.as_ref())
        .map(|k| k.where_to_change())
        .unwrap_or_else(|| crate::container::paths::KUBELET_CONFIG.to_string())
}

#[cfg(test)]
mod tests {
    use super::flood::rotation_sentence;
    use super::remedy::flood_remedies;
    use super::rotation::judge;
    use super::*;
    use crate::container::Runtime;
    use crate::container::attribute::ContainerInfo;
    use crate::container::rotation::Rotation;
    use crate::container::rotation::{self, LogKind, RotatedBy};

    const K: &str = "/var/lib/kubelet/config.yaml";

    fn log(size: u64, growth: f64, by: RotatedBy, max: Option<u64>) -> LogRates {
        let rotation = Rotation {
            by,
            max_size_bytes: max,
            max_files: Some(5),
            check_interval_s: Some(10.0),
            detail: "test".into(),
        };
        LogRates {
            path: "/var/log/pods/prod_web_u/app/0.log".into(),
            kind: LogKind::Cri,
            writer_pid: Some(300),
            size_bytes: Some(size),
            total_bytes: Some(size),
            growth_bytes_per_s: Some(growth),
            lines_per_s: Some(1000.0),
            stderr_pct: Some(0.0),
            avg_line_bytes: Some(80.0),
            format: None,
            mountpoint: Some("/".into()),
            device: Some("vda".into()),
            fs_avail_bytes: Some(1 << 30),
            fs_use_pct: Some(50.0),
            time_to_full_s: Some((1u64 << 30) as f64 / growth.max(1.0)),
            rotation_state: rotation::state(&rotation, Some(size)),
            rotation,
            append: Some(true),
        }
    }

    fn ctr(l: LogRates) -> ContainerRates {
        let mut info = ContainerInfo::default();
        info.r.id = "abc".into();
        info.r.pod = Some("web".into());
        info.r.namespace = Some("prod".into());
        info.r.name = Some("app".into());
        info.r.runtime = Some(Runtime::Containerd);
        info.pids = vec![901];
        ContainerRates {
            info,
            write_bytes_per_s: Some(0.0),
            read_bytes_per_s: Some(0.0),
            io_wait_pct: None,
            shim_write_bytes_per_s: None,
            shim_io_wait_pct: None,
            logs: vec![l],
            blocked_pipes: 0,
            d_state_threads: 0,
        }
    }

    #[test]
    fn judging_rotation() {
        // 4 MiB/s into a kubelet-rotated 10 MiB log that is 45 MiB: not keeping up.
        let l = log(
            45 << 20,
            4.0 * 1048576.0,
            RotatedBy::Kubelet,
            Some(10 << 20),
        );
        let f = judge(&l, Some(&ctr(l.clone())), K).unwrap();
        assert!(f.summary.contains("not keeping up"), "{}", f.summary);
        assert_eq!(f.subject.pod.as_deref(), Some("web"));
        // Within its limit: nothing to say.
        let l = log(5 << 20, 4.0 * 1048576.0, RotatedBy::Kubelet, Some(10 << 20));
        assert!(judge(&l, None, K).is_none());
        // Unrotated, small, slow: nothing yet; unrotated and 1 GiB within the hour: yes.
        let l = log(1 << 20, 10.0, RotatedBy::Nothing, None);
        assert!(judge(&l, None, K).is_none());
        let l = log(1 << 20, 1048576.0, RotatedBy::Nothing, None);
        assert!(
            judge(&l, None, K)
                .unwrap()
                .summary
                .starts_with("nothing rotates")
        );
        // Unrotated but not growing: no finding.
        let l = log(500 << 20, 0.0, RotatedBy::Nothing, None);
        assert!(judge(&l, None, K).is_none());
    }

    #[test]
    fn flood_sentence_says_rotation_cannot_keep_up() {
        let l = log(
            45 << 20,
            4.0 * 1048576.0,
            RotatedBy::Kubelet,
            Some(10 << 20),
        );
        let s = rotation_sentence(&l, 4.0 * 1048576.0);
        assert!(s.contains("cannot keep up"), "{s}");
        let r = flood_remedies(&ctr(l.clone()), &l, "/etc/kubernetes/kubelet-config.yaml");
        assert!(
            r.iter().any(
                |x| x.starts_with("# /etc/kubernetes/kubelet-config.yaml: containerLogMaxSize")
            ),
            "{r:?}"
        );
        assert!(r[0].starts_with("kubectl -n prod logs web -c app"));
        assert!(r.iter().any(|x| x.contains("containerLogMaxSize")));
        assert!(r.iter().any(|x| x.starts_with("# never: rm")));
    }
}
