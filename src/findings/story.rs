//! The story the findings tell: which one is the cause, the order a person reads them in,
//! and the lasting fixes for what was found. Renderers format it; they decide nothing.

use super::{Finding, Kind, Severity};

/// What the report says, as plain data.
#[derive(Debug, Default)]
pub struct Story<'a> {
    /// The finding that explains the others (a storm of syncs, the top writer, a blocked
    /// pipe), when one is serious: what `iowhy top`'s banner names.
    pub cause: Option<&'a Finding>,
    /// Two or three sentences that tie the findings together, the way an engineer would
    /// say it after the walk-through; `None` when nothing is wrong.
    pub summary: Option<String>,
    /// Findings in the order of the story (device → process → file → filesystem → system
    /// symptoms), the ones only "for the record" last. This is not `sort`'s order (most
    /// severe first, for the JSON and exit codes): the walk-through starts at the device
    /// even when a process finding is more severe.
    pub order: Vec<&'a Finding>,
    /// Lasting fixes, by what was found.
    pub lasting_fixes: Vec<&'static str>,
}

pub fn story(findings: &[Finding]) -> Story<'_> {
    // The cause: a storm of syncs, the top writer, a blocked pipe, when one is serious.
    let cause = [Kind::FsyncStorm, Kind::TopIoWriter, Kind::PipeBlocked]
        .into_iter()
        .find_map(|k| serious(findings, k));
    Story {
        cause,
        summary: summary(findings, cause),
        order: order(findings),
        lasting_fixes: lasting_fixes(findings),
    }
}

/// The first finding of kind `k` that is more than "for the record".
fn serious(findings: &[Finding], k: Kind) -> Option<&Finding> {
    findings
        .iter()
        .find(|f| f.kind == k && f.severity != Severity::Info)
}

fn order(findings: &[Finding]) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = findings.iter().collect();
    v.sort_by_key(|f| {
        (
            f.severity == Severity::Info,
            f.kind.story_rank(),
            f.severity,
        )
    });
    v
}

fn summary(findings: &[Finding], cause: Option<&Finding>) -> Option<String> {
    let mut s = Vec::new();
    match (serious(findings, Kind::DeviceSaturated), cause) {
        (Some(d), Some(c)) => s.push(format!("{}; the cause: {}.", d.summary, c.summary)),
        (Some(d), None) => s.push(format!("{}.", d.summary)),
        (None, Some(c)) => s.push(format!("{}.", c.summary)),
        (None, None) => {}
    }
    if let Some(f) = [
        Kind::RunawayLog,
        Kind::ContainerLogFlood,
        Kind::FilesystemFull,
        Kind::DeletedFileHeldOpen,
        Kind::DirtyWritebackPressure,
    ]
    .into_iter()
    .find_map(|k| serious(findings, k))
    {
        s.push(format!("{}.", f.summary));
    }
    if let Some(p) = serious(findings, Kind::IoPressure) {
        s.push(format!("Everyone feels it: {}.", p.summary));
    }
    let any_serious = findings.iter().any(|f| f.severity != Severity::Info);
    (any_serious && !s.is_empty()).then(|| s.join(" "))
}

fn lasting_fixes(findings: &[Finding]) -> Vec<&'static str> {
    let mut v = Vec::new();
    let has = |k: Kind| serious(findings, k).is_some();
    if has(Kind::RunawayLog) || has(Kind::FilesystemFull) {
        v.push("rotate logs by size (logrotate `size`, or the app's rotating handler, e.g. Python's RotatingFileHandler)");
        v.push("put /var/log on its own filesystem so a runaway log cannot fill /");
    }
    if has(Kind::TopIoWriter) || has(Kind::DeviceSaturated) || has(Kind::FsyncStorm) {
        v.push("buffer and batch writes; sync once per batch (group commit), not after every line");
        v.push("cap a noisy writer's bandwidth with a cgroup (`iowhy throttle`, or systemd IOWriteBandwidthMax=)");
    }
    if has(Kind::DeletedFileHeldOpen) {
        v.push("make daemons reopen their logs on SIGHUP, and rotate with rename + signal instead of rm");
    }
    if has(Kind::DirtyWritebackPressure) {
        v.push("lower vm.dirty_background_bytes so writeback starts before writers are throttled");
    }
    v.push("alert on disk await, filesystem time-to-full and PSI io \"full\" to see the next stall coming");
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_is_told_first_and_the_writer_is_its_cause() {
        let found = vec![
            Finding::new(Kind::FsyncStorm, Severity::Critical, "logger syncs 300/s"),
            Finding::new(Kind::DeviceSaturated, Severity::Warning, "vda is saturated"),
            Finding::new(Kind::DStateTasks, Severity::Info, "2 tasks in D"),
        ];
        let s = story(&found);
        assert_eq!(
            s.summary.as_deref(),
            Some("vda is saturated; the cause: logger syncs 300/s.")
        );
        let kinds: Vec<Kind> = s.order.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [Kind::DeviceSaturated, Kind::FsyncStorm, Kind::DStateTasks]
        );
        assert!(s.lasting_fixes[0].starts_with("buffer and batch writes"));
    }

    #[test]
    fn nothing_serious_tells_no_story() {
        let found = vec![Finding::new(Kind::DStateTasks, Severity::Info, "1 task")];
        let s = story(&found);
        assert!(s.summary.is_none());
        assert_eq!(s.lasting_fixes.len(), 1);
    }
}
