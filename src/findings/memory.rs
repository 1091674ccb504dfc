//! `dirty_writeback_pressure`: more dirty page cache than the disks can write back, so
//! the kernel throttles writers in balance_dirty_pages() — they stall in write(2) even
//! though they never call fsync.

use crate::interval::Interval;
use crate::units;

use super::{Finding, Kind, Severity, remedy::step};

/// Dirty + writeback at this share of the throttle threshold: writers are about to be
/// (or are being) throttled.
const NEAR_THRESHOLD: f64 = 0.8;
/// Above the background threshold with this much under writeback, the flusher is busy.
const WRITEBACK_BUSY_BYTES: u64 = 256 * 1024 * 1024;

fn throttled_tasks(iv: &Interval) -> Vec<(u32, String)> {
    let mut v = Vec::new();
    for s in [&iv.before, &iv.after] {
        for p in &s.processes {
            let in_bdp = |w: &Option<String>| {
                w.as_deref()
                    .is_some_and(|w| w.contains("balance_dirty_pages"))
            };
            if (in_bdp(&p.wchan) || p.d_tasks.iter().any(|t| in_bdp(&t.wchan)))
                && !v.iter().any(|(pid, _)| *pid == p.pid)
            {
                v.push((p.pid, p.comm.clone()));
            }
        }
    }
    v
}

pub fn dirty_writeback_pressure(iv: &Interval) -> Vec<Finding> {
    let Some(m) = &iv.memory else {
        return Vec::new();
    };
    let dirty = m.dirty_bytes + m.writeback_bytes;
    let near = m
        .dirty_threshold_bytes
        .is_some_and(|t| t > 0 && dirty as f64 >= NEAR_THRESHOLD * t as f64);
    let busy = m
        .dirty_background_threshold_bytes
        .is_some_and(|b| m.dirty_bytes >= b)
        && m.writeback_bytes >= WRITEBACK_BUSY_BYTES;
    let throttled = throttled_tasks(iv);
    if !near && !busy && throttled.is_empty() {
        return Vec::new();
    }
    let severity = if near || throttled.len() >= 2 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut summary = format!(
        "{} dirty and {} under writeback",
        units::bytes_u(m.dirty_bytes),
        units::bytes_u(m.writeback_bytes)
    );
    if let Some(t) = m.dirty_threshold_bytes {
        summary.push_str(&format!(
            " (global throttle threshold {})",
            units::bytes_u(t)
        ));
    }
    if !throttled.is_empty() {
        summary.push_str(&format!(
            "; {} task(s) throttled in balance_dirty_pages",
            throttled.len()
        ));
    }
    let mut f = Finding::new(Kind::DirtyWritebackPressure, severity, summary);
    if let Some((pid, comm)) = throttled.first() {
        f.subject.pid = Some(*pid);
        f.subject.comm = Some(comm.clone());
    }
    f.evidence
        .num("dirty_bytes", m.dirty_bytes as f64)
        .num("writeback_bytes", m.writeback_bytes as f64)
        .opt(
            "dirty_threshold_bytes",
            m.dirty_threshold_bytes.map(|v| v as f64),
        )
        .opt(
            "dirty_background_threshold_bytes",
            m.dirty_background_threshold_bytes.map(|v| v as f64),
        )
        .opt("dirtied_bytes_per_s", m.dirtied_bytes_per_s)
        .opt("written_bytes_per_s", m.written_bytes_per_s)
        .num("throttled_tasks", throttled.len() as f64);
    if !throttled.is_empty() {
        f.evidence.text(
            "throttled",
            throttled
                .iter()
                .map(|(p, c)| format!("{c}:{p}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    f.explanation = format!(
        "Buffered writes land in the page cache first; the kernel writes them back in the background and, once dirty data \
         passes the threshold (vm.dirty_ratio / dirty_bytes), or a device's own share of it (its bdi max_ratio, \
         max_bytes, strict_limit), makes the writers wait in balance_dirty_pages() until the disk catches up. Pages are dirtied at {} and written at {}.",
        m.dirtied_bytes_per_s
            .map(units::rate)
            .unwrap_or_else(|| "?".into()),
        m.written_bytes_per_s
            .map(units::rate)
            .unwrap_or_else(|| "?".into()),
    );
    f.remediation = vec![
        step(
            "iowhy top -b -n 3 -d 1",
            "who dirties the pages (write bytes/s per process)",
        ),
        step(
            "sysctl vm.dirty_background_bytes=268435456",
            "start background writeback earlier so bursts do not pile up (a tuning choice: check the workload first)",
        ),
    ];
    vec![f]
}
