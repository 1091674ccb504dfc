//! The past through the live pipeline: recorded samples become intervals (pairs of
//! consecutive samples of one boot), the rules run on each, and `diagnose --at` reports
//! the worst moment with a timeline of when each finding began and ended.
//!
//! Rates are never computed across a reboot (a new boot id, or uptime going down) nor
//! across samples the recorder dropped (the trace of the later sample covers only its
//! own window); a counter that went down is the interval module's business (`None`).

use std::collections::BTreeMap;

use crate::findings::{self, Severity};
use crate::interval::{Interval, IntervalOptions};
use crate::render::Diagnosis;
use crate::wire::diagnose::BlindSpot;
use crate::wire::record::{Replay, TimelineEntry};

use super::store::{Entry, Loaded};
use super::when;

/// RFC 3339 of any ms (humantime cannot print years past 9999).
fn rfc3339(ms: i64) -> String {
    crate::units::rfc3339(ms.clamp(0, 253_402_300_799_000))
}

fn rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 3,
        Severity::Warning => 2,
        Severity::Info => 1,
    }
}

/// How bad an interval was: its worst severity, then how many findings had it.
fn badness(found: &[findings::Finding]) -> (u8, usize, usize) {
    let worst = found.iter().map(|f| rank(f.severity)).max().unwrap_or(0);
    let at_worst = found.iter().filter(|f| rank(f.severity) == worst).count();
    (worst, at_worst, found.len())
}

/// Whether `b` may be paired with `a`: same boot, the clock went forward, and nothing
/// was dropped in between. `Err` says why not, for the notes.
fn pairable(a: &Entry, b: &Entry, gaps: &[crate::record::Gap]) -> Result<(), &'static str> {
    if a.boot_id.is_some() && b.boot_id.is_some() && a.boot_id != b.boot_id {
        return Err("reboot");
    }
    // The record's uptime, as the recorder stamped it (the snapshot's, in centiseconds).
    if b.uptime_cs <= a.uptime_cs {
        return Err("reboot");
    }
    if counters_went_down(&a.sample.snapshot, &b.sample.snapshot) {
        return Err("down");
    }
    if gaps
        .iter()
        .any(|g| g.last_unix_ms > a.wall_unix_ms && g.first_unix_ms < b.wall_unix_ms)
    {
        return Err("gap");
    }
    Ok(())
}

/// A disk's cumulative counters lower in the later sample (a device re-created, a
/// recording stitched from two machines): no rate over such a pair.
fn counters_went_down(a: &crate::snapshot::Snapshot, b: &crate::snapshot::Snapshot) -> bool {
    b.disks.iter().any(|n| {
        a.disks.iter().find(|o| o.name == n.name).is_some_and(|o| {
            n.rd_ios < o.rd_ios
                || n.wr_ios < o.wr_ios
                || n.rd_sectors < o.rd_sectors
                || n.wr_sectors < o.wr_sectors
                || n.flush.as_ref().map_or(0, |f| f.ios) < o.flush.as_ref().map_or(0, |f| f.ios)
        })
    })
}

struct Span {
    entry: TimelineEntry,
    rank: u8,
}

/// Extend the timeline with one interval's findings.
fn track(spans: &mut BTreeMap<String, Span>, found: &[findings::Finding], began: i64, ended: i64) {
    for f in found {
        let key = format!(
            "{:?}{}",
            f.kind,
            serde_json::to_string(&f.subject).unwrap_or_default()
        );
        let s = spans.entry(key).or_insert_with(|| Span {
            entry: TimelineEntry {
                kind: f.kind,
                severity: f.severity,
                subject: f.subject.clone(),
                summary: f.summary.clone(),
                began_at: rfc3339(began),
                ended_at: rfc3339(ended),
                intervals: 0,
            },
            rank: 0,
        });
        s.entry.intervals += 1;
        s.entry.ended_at = rfc3339(ended);
        if rank(f.severity) > s.rank {
            s.rank = rank(f.severity);
            s.entry.severity = f.severity;
            s.entry.summary = f.summary.clone();
        }
    }
}

/// The outcome of a replay: the worst interval's diagnosis (None when no interval could
/// be made) and the replay summary for the report.
pub struct Outcome {
    pub worst: Option<Diagnosis>,
    pub replay: Replay,
}

/// Replay the loaded samples; `at`, `from`, `to` in ms.
pub fn replay(loaded: Loaded, at: i64, from: i64, to: i64) -> Outcome {
    let mut r = Replay {
        at: rfc3339(at),
        at_local: when::show(at),
        from: rfc3339(from),
        to: rfc3339(to),
        dropped_samples: loaded.gaps.iter().map(|g| g.dropped).sum(),
        notes: loaded.notes.clone(),
        ..Default::default()
    };
    let mut spans: BTreeMap<String, Span> = BTreeMap::new();
    let mut worst: Option<(Diagnosis, (u8, usize, usize))> = None;
    let mut entries = loaded.entries.into_iter();
    let Some(mut prev) = entries.next() else {
        return Outcome {
            worst: None,
            replay: r,
        };
    };
    for next in entries {
        match pairable(&prev, &next, &loaded.gaps) {
            Err("reboot") => {
                r.reboots += 1;
                r.notes.push(format!(
                    "reboot between {} and {}: no rates across it",
                    when::show(prev.wall_unix_ms),
                    when::show(next.wall_unix_ms)
                ));
                prev = next;
                continue;
            }
            Err(why) => {
                let what = if why == "down" {
                    "disk counters went down"
                } else {
                    "samples dropped"
                };
                r.notes.push(format!(
                    "{what} between {} and {}: that interval is left out",
                    when::show(prev.wall_unix_ms),
                    when::show(next.wall_unix_ms)
                ));
                prev = next;
                continue;
            }
            Ok(()) => {}
        }
        let (began, ended) = (prev.wall_unix_ms, next.wall_unix_ms);
        let traced = next.sample.trace.is_some();
        let iv = Interval::with_trace(
            prev.sample.snapshot,
            next.sample.snapshot,
            IntervalOptions::default(),
            next.sample.trace,
        );
        let found = findings::run_all(&iv);
        r.intervals += 1;
        r.traced_intervals += usize::from(traced);
        track(&mut spans, &found, began, ended);
        let b = badness(&found);
        let after = if worst.as_ref().is_none_or(|(_, w)| b > *w) {
            let keep = iv.after.clone();
            let layer = iv.trace.as_ref().map(|t| t.layer.name()).unwrap_or("none");
            worst = Some((Diagnosis::new(iv, found, layer), b));
            keep
        } else {
            iv.after
        };
        prev = Entry {
            sample: crate::record::Sample {
                snapshot: after,
                trace: None,
            },
            ..next
        };
    }
    let mut timeline: Vec<Span> = spans.into_values().collect();
    timeline.sort_by(|a, b| (&a.entry.began_at, 3 - a.rank).cmp(&(&b.entry.began_at, 3 - b.rank)));
    r.timeline = timeline.into_iter().map(|s| s.entry).collect();
    let worst = worst.map(|(mut d, _)| {
        r.worst_at = Some(rfc3339(d.interval.after.wall_unix_ms));
        r.worst_at_local = Some(when::show(d.interval.after.wall_unix_ms));
        if let Some(t) = &d.interval.trace {
            d.blind_spots.extend(crate::cmd::diagnose::trace_blind_spots(t));
        } else {
            d.blind_spots.push(BlindSpot {
                what: "replayed from a recording without trace data for this interval: no sync calls per file, no write sizes".into(),
                how_to_see: "record as root with tracing on (iowhy record --tracing perf, the default)".into(),
            });
        }
        d
    });
    Outcome { worst, replay: r }
}

/// How far past `--at` the other commands read (iostat and top step through the samples).
pub const AHEAD_MS: i64 = 10 * 60 * 1000;

/// A collector over the samples of a recording from `at` on (the last one at or before
/// `at` first), or of the whole file without `at`.
pub fn collector(
    src: &super::store::Source,
    at: Option<i64>,
) -> anyhow::Result<crate::source::Collector> {
    let (from, to) = match at {
        Some(t) => (t, t + AHEAD_MS),
        None => (i64::MIN, i64::MAX),
    };
    let loaded = super::store::load(src, from, to)?;
    for n in &loaded.notes {
        eprintln!("iowhy: recording: {n}");
    }
    if loaded.entries.is_empty() {
        return Err(crate::error::usage(format!(
            "the recording holds no sample at or after {} ({})",
            at.map(when::show).unwrap_or_else(|| "its start".into()),
            super::store::coverage(src).unwrap_or_else(|| "it is empty".into())
        )));
    }
    crate::source::Collector::new(crate::source::Origin::Recording {
        samples: loaded
            .entries
            .into_iter()
            .map(|e| e.sample.snapshot)
            .collect(),
        next: 0,
    })
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
