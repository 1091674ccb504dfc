//! `io_pressure` (PSI) and `d_state_tasks`: the symptoms everyone feels, whatever the cause.

use std::collections::BTreeMap;

use crate::interval::Interval;

use super::{Finding, Kind, Severity, remedy::step};

/// Share of the window with at least one task stalled on I/O. PSI has no official
/// thresholds; 20% means one task in five seconds lost a full second.
pub const PSI_SOME_WARN_PCT: f64 = 20.0;
/// Share of the window in which *every* runnable task waited on I/O: the machine did no
/// work at all. 10% is a second lost out of every ten.
const PSI_FULL_CRITICAL_PCT: f64 = 10.0;
/// D-state threads at one instant that are worth a finding (a few come and go normally).
const D_TASKS_WARN: usize = 3;
pub const D_TASKS_CRITICAL: usize = 10;

pub fn io_pressure(iv: &Interval) -> Vec<Finding> {
    let Some(p) = &iv.pressure else {
        return Vec::new();
    };
    let full = p.full_pct.unwrap_or(0.0);
    let severity = if full >= PSI_FULL_CRITICAL_PCT {
        Severity::Critical
    } else if p.some_pct >= PSI_SOME_WARN_PCT {
        Severity::Warning
    } else {
        return Vec::new();
    };
    let mut f = Finding::new(
        Kind::IoPressure,
        severity,
        format!(
            "tasks waited on I/O {:.0}% of the window; all work stopped on I/O {:.0}% of it",
            p.some_pct, full
        ),
    );
    f.evidence
        .num("some_pct", p.some_pct)
        .opt("full_pct", p.full_pct)
        .num("some_avg10", p.some_avg10)
        .num("some_avg60", p.some_avg60)
        .opt("full_avg10", p.full_avg10);
    f.explanation = "Pressure stall information (/proc/pressure/io) measures the time tasks could have run but waited for I/O. \
        'full' means no task made progress at all: that is the hang users feel, with the CPU idle."
        .into();
    f.remediation = vec![step(
        "cat /proc/pressure/io",
        "the kernel's own 10 s / 60 s / 300 s averages",
    )];
    vec![f]
}

pub fn d_state_tasks(iv: &Interval) -> Vec<Finding> {
    let count =
        |s: &crate::snapshot::Snapshot| s.processes.iter().map(|p| p.d_tasks.len()).sum::<usize>();
    let (before, after) = (count(&iv.before), count(&iv.after));
    // Threads in D at both ends of the window that never ran in between (same context
    // switch count): stuck for the whole window, not merely passing through D twice.
    let mut stuck = Vec::new();
    // By key, not a scan per process: quadratic in the process count otherwise.
    let before_by_key: std::collections::HashMap<_, _> =
        iv.before.processes.iter().map(|q| (q.key(), q)).collect();
    for p in &iv.after.processes {
        if let Some(q) = before_by_key.get(&p.key()) {
            for t in &p.d_tasks {
                let same = q.d_tasks.iter().any(|u| {
                    u.tid == t.tid
                        && u.ctxt_switches.is_some()
                        && u.ctxt_switches == t.ctxt_switches
                });
                if same {
                    stuck.push((p.pid, p.comm.clone(), t.tid));
                }
            }
        }
    }
    let peak = before.max(after);
    if peak < D_TASKS_WARN && stuck.is_empty() {
        return Vec::new();
    }
    let severity = if peak >= D_TASKS_CRITICAL {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut wchans: BTreeMap<String, usize> = BTreeMap::new();
    let mut holders: BTreeMap<u32, (String, usize)> = BTreeMap::new();
    for s in [&iv.before, &iv.after] {
        for p in &s.processes {
            for t in &p.d_tasks {
                *wchans
                    .entry(t.wchan.clone().unwrap_or_else(|| "?".into()))
                    .or_default() += 1;
                holders
                    .entry(p.pid)
                    .or_insert_with(|| (p.comm.clone(), 0))
                    .1 += 1;
            }
        }
    }
    let mut top_wchan: Vec<(String, usize)> = wchans.into_iter().collect();
    top_wchan.sort_by_key(|w| std::cmp::Reverse(w.1));
    let mut top_proc: Vec<(u32, (String, usize))> = holders.into_iter().collect();
    top_proc.sort_by_key(|p| std::cmp::Reverse(p.1.1));
    let mut f = Finding::new(
        Kind::DStateTasks,
        severity,
        format!(
            "{peak} task(s) in uninterruptible I/O sleep (D){}",
            if stuck.is_empty() {
                String::new()
            } else {
                format!(", {} stuck for the whole window", stuck.len())
            }
        ),
    );
    if let Some((pid, (comm, _))) = top_proc.first() {
        f.subject.pid = Some(*pid);
        f.subject.comm = Some(comm.clone());
    }
    f.evidence
        .num("d_tasks_before", before as f64)
        .num("d_tasks_after", after as f64)
        .num("stuck_whole_window", stuck.len() as f64)
        .text(
            "wchans",
            top_wchan
                .iter()
                .take(5)
                .map(|(w, n)| format!("{w}×{n}"))
                .collect::<Vec<_>>()
                .join(" "),
        )
        .text(
            "processes",
            top_proc
                .iter()
                .take(8)
                .map(|(pid, (c, _))| format!("{c}:{pid}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    if let Some(l) = &iv.after.loadavg {
        f.evidence.num("loadavg_1m", l.one);
    }
    f.explanation = "Tasks in D state wait for I/O and cannot be interrupted, not even by kill -9. The load average counts \
        them, so a high load with idle CPUs points at I/O. Where they sleep (wchan) tells what they wait for: \
        balance_dirty_pages = throttled for writing too fast, jbd2/ext4 = journal commits behind a sync, \
        folio_wait/io_schedule = a read or write to a busy disk."
        .into();
    f.remediation = vec![step(
        "cat /proc/<pid>/stack",
        "the kernel stack of a stuck task (root): what exactly it waits for",
    )];
    vec![f]
}
