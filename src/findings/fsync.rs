//! `fsync_storm`: a process that syncs after (nearly) every write. One observation in the
//! seed — `strace -fp` showing fsync after each 40-byte line — explained the whole stall;
//! here it comes from tracing, without stopping the process.

use crate::interval::Interval;
use crate::parse::fdinfo::O_DSYNC;
use crate::trace::model::{FileTrace, ProcTrace};

use super::{Finding, Kind, Severity, device, remedy::step};

/// Syncing this often with this few writes in between is a sync per write.
pub const MIN_SYNCS_PER_S: f64 = 20.0;
pub const MAX_WRITES_PER_SYNC: f64 = 4.0;
/// Syncing this often is a storm whatever the batching: each sync is a device flush.
pub const HEAVY_SYNCS_PER_S: f64 = 200.0;
/// A sync that takes this long at p99 is felt by everything waiting behind it.
pub const SLOW_SYNC_P99_MS: f64 = 50.0;
/// Sampling layer: a process spending this share of its time in sync calls.
pub const SAMPLED_SHARE: f64 = 0.30;

/// The disks behind a traced file: from the process's fd table when it was read, else by
/// the longest mountpoint that prefixes the path.
fn devices_of(iv: &Interval, pid: u32, f: &FileTrace) -> (Vec<String>, Option<String>) {
    if let Some(p) = iv.process(pid) {
        if let Some(fr) = p
            .files
            .iter()
            .find(|x| x.fd == f.fd && Some(&x.path) == f.path.as_ref())
        {
            return (fr.devices.clone(), fr.mountpoint.clone());
        }
    }
    let Some(path) = &f.path else {
        return (Vec::new(), None);
    };
    let m = iv
        .after
        .mounts
        .iter()
        .filter(|m| {
            path.starts_with(&m.mountpoint)
                && (m.mountpoint == "/" || path[m.mountpoint.len()..].starts_with('/'))
        })
        .max_by_key(|m| m.mountpoint.len());
    match m {
        Some(m) if m.major != 0 => (
            iv.after.disks_behind(m.major, m.minor),
            Some(m.mountpoint.clone()),
        ),
        Some(m) => (Vec::new(), Some(m.mountpoint.clone())),
        None => (Vec::new(), None),
    }
}

pub fn fsync_storm(iv: &Interval) -> Vec<Finding> {
    let Some(t) = &iv.trace else {
        return Vec::new();
    };
    let secs = t.duration_s.max(1e-3);
    let mut out = Vec::new();
    for p in t.procs.values() {
        if Some(p.pid) == iv.after.self_pid {
            continue;
        }
        if t.estimate {
            if let Some(f) = sampled(iv, p) {
                out.push(f);
            }
            continue;
        }
        // The file with the most syncs (or synchronous writes) names the storm.
        let Some(file) = p
            .files
            .values()
            .max_by_key(|f| f.sync_count() + sync_writes(f))
        else {
            continue;
        };
        let syncs = file.sync_count() as f64;
        let osync = sync_writes(file) as f64;
        let rate = (syncs + osync) / secs;
        let writes_per_sync = if syncs > 0.0 {
            file.writes as f64 / syncs
        } else {
            1.0
        };
        let storm = rate >= HEAVY_SYNCS_PER_S
            || (rate >= MIN_SYNCS_PER_S && writes_per_sync <= MAX_WRITES_PER_SYNC);
        if !storm {
            continue;
        }
        out.push(finding(iv, p, file, secs));
    }
    out
}

/// Writes on an fd opened with O_SYNC/O_DSYNC: each one waits for the disk.
fn sync_writes(f: &FileTrace) -> u64 {
    if f.flags.is_some_and(|fl| fl & O_DSYNC != 0) {
        f.writes
    } else {
        0
    }
}

fn finding(iv: &Interval, p: &ProcTrace, file: &FileTrace, secs: f64) -> Finding {
    let all = file.all_syncs();
    let syncs = all.count as f64;
    let osync = file.flags.is_some_and(|fl| fl & O_DSYNC != 0);
    let rate = if syncs > 0.0 {
        syncs / secs
    } else {
        file.writes as f64 / secs
    };
    let bytes_per_sync = if syncs > 0.0 {
        file.write_bytes as f64 / syncs
    } else {
        file.write_bytes as f64 / file.writes.max(1) as f64
    };
    let writes_per_sync = if syncs > 0.0 {
        file.writes as f64 / syncs
    } else {
        1.0
    };
    let (devices, mountpoint) = devices_of(iv, p.pid, file);
    let disk = devices
        .iter()
        .rev()
        .find(|d| iv.device(d).is_some_and(|x| !x.is_partition))
        .cloned();
    let dev = disk.as_deref().and_then(|d| iv.device(d));
    let p99 = all.quantile_ns(0.99).map(|v| v as f64 / 1e6);
    let saturated = dev
        .and_then(|d| device::classify(d, device::traced(iv, d)))
        .is_some_and(|(s, _)| s != Severity::Info);
    let severity = if saturated || p99.is_some_and(|v| v >= SLOW_SYNC_P99_MS) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let path = file
        .path
        .clone()
        .unwrap_or_else(|| crate::trace::UNRESOLVED.into());
    let kinds: Vec<String> = file
        .syncs
        .iter()
        .map(|(k, h)| format!("{} {:.0}/s", k.name(), h.count as f64 / secs))
        .collect();
    let mut f = Finding::new(
        Kind::FsyncStorm,
        severity,
        if osync {
            format!(
                "{} (pid {}) writes {} synchronously (O_DSYNC/O_SYNC): {:.0} waits for the disk per second",
                p.comm, p.pid, path, rate
            )
        } else {
            format!(
                "{} (pid {}) syncs {} {:.0} times a second, after every {:.0}-byte write",
                p.comm, p.pid, path, rate, bytes_per_sync
            )
        },
    );
    f.subject.pid = Some(p.pid);
    f.subject.comm = Some(p.comm.clone());
    f.subject.path = file.path.clone();
    f.subject.mountpoint = mountpoint;
    f.subject.device = disk.clone();
    f.evidence
        .num("syncs_per_s", syncs / secs)
        .num("writes_per_s", file.writes as f64 / secs)
        .num("writes_per_sync", writes_per_sync)
        .num("bytes_per_sync", bytes_per_sync)
        .opt("sync_p50_ms", all.quantile_ns(0.5).map(|v| v as f64 / 1e6))
        .opt("sync_p99_ms", p99)
        .opt(
            "sync_max_ms",
            (all.count > 0).then(|| all.max_ns as f64 / 1e6),
        )
        .text("sync_calls", kinds.join(", "))
        .text(
            "tracing",
            iv.trace.as_ref().map(|t| t.layer.name()).unwrap_or("none"),
        );
    if let Some(fl) = file.flags {
        f.evidence
            .text("open_flags", crate::parse::fdinfo::flag_names(fl).join("|"));
    }
    if let Some(d) = dev {
        if d.f_s > 0.0 {
            f.evidence.num(
                "share_of_device_flushes_pct",
                (rate / d.f_s * 100.0).min(100.0),
            );
        }
        if d.w_s > 0.0 {
            f.evidence
                .num("device_writes_per_s", d.w_s)
                .num("device_flushes_per_s", d.f_s);
        }
    }
    f.explanation = if osync {
        format!(
            "{path} is open with O_DSYNC/O_SYNC, so every write(2) returns only when the data is on the disk: {:.0} writes a second, \
             each a round trip to {}. Unless each line must survive a power cut on its own, drop the flag and sync per batch.",
            rate,
            disk.as_deref().unwrap_or("the device")
        )
    } else {
        format!(
            "Every {:.0}-byte write is followed by a sync ({}): each one makes the filesystem commit its journal and the device flush its \
             cache, {} times a second, each waiting {} at p99. That is what keeps {} busy and every other task waiting behind it.",
            bytes_per_sync,
            kinds.join(", "),
            rate.round(),
            p99.map(|v| format!("{v:.2} ms"))
                .unwrap_or_else(|| "?".into()),
            disk.as_deref().unwrap_or("the disk")
        )
    };
    f.remediation = vec![
        step(
            format!("iowhy trace --pid {} --duration 5s", p.pid),
            "the per-file counts and latencies again, to confirm after a change",
        ),
        step(
            "# buffer and batch: write lines to a buffer and sync once per batch or per second (group commit)",
            "one sync for many lines instead of one per line",
        ),
        step(
            "# Python: logging.handlers.RotatingFileHandler, not write(); flush(); os.fsync() per record",
            "a logging handler that does not sync per record, and rotates",
        ),
        step(
            format!("iowhy pause {} --for 10s", p.pid),
            "confirm it is the cause: the device should calm down while it is paused",
        ),
    ];
    if osync {
        f.remediation.insert(
            1,
            step(
                "# open the file without O_DSYNC/O_SYNC",
                "synchronous writes make every write a disk round trip",
            ),
        );
    }
    if let Some(path) = &file.path {
        if !path.starts_with('(') {
            f.remediation.push(step(
                format!("iowhy rotate {} --dry-run", crate::units::shell_quote(path)),
                "if the file is also large: rotate it without losing a line",
            ));
        }
    }
    f
}

fn sampled(iv: &Interval, p: &ProcTrace) -> Option<Finding> {
    let share = p.sampled_sync_share?;
    if share < SAMPLED_SHARE {
        return None;
    }
    let file = p.files.values().max_by(|a, b| {
        a.sampled_sync_share
            .partial_cmp(&b.sampled_sync_share)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let path = file.and_then(|f| f.path.clone());
    let (devices, mountpoint) = file.map(|f| devices_of(iv, p.pid, f)).unwrap_or_default();
    let mut f = Finding::new(
        Kind::FsyncStorm,
        Severity::Warning,
        format!(
            "{} (pid {}) spends ~{:.0}% of its time in sync calls{} (estimate from sampling)",
            p.comm,
            p.pid,
            share * 100.0,
            path.as_ref()
                .map(|x| format!(" on {x}"))
                .unwrap_or_default()
        ),
    );
    f.subject.pid = Some(p.pid);
    f.subject.comm = Some(p.comm.clone());
    f.subject.path = path;
    f.subject.mountpoint = mountpoint;
    f.subject.device = devices.last().cloned();
    f.evidence
        .num("sampled_sync_share_pct", share * 100.0)
        .num("samples", p.samples as f64)
        .text("tracing", "sampling");
    f.explanation = "Sampling /proc/PID/task/*/syscall shows where the threads are: this much of the time they were inside \
        fsync/fdatasync/sync_file_range. It is an estimate without call counts; `iowhy trace` as root gives exact numbers."
        .into();
    f.remediation = vec![step(
        format!("sudo iowhy trace --pid {} --duration 5s", p.pid),
        "exact sync counts and latencies",
    )];
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::{Layer, TraceData};

    /// The fsync-logger fixture (real snapshots) with a synthetic trace of its writer.
    fn interval_with(trace: TraceData) -> Interval {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fsync-logger");
        let mut c = crate::source::Collector::fixture(&dir).unwrap();
        let o = crate::source::SnapshotOptions::full();
        let (a, b) = (c.snapshot(&o).unwrap(), c.snapshot(&o).unwrap());
        let mut iv = Interval::new(a, b);
        iv.trace = Some(trace);
        iv
    }

    fn writer_pid() -> u32 {
        let t = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fsync-logger/lab.json"
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        v["pids"][0].as_u64().unwrap() as u32
    }

    fn trace(pid: u32, writes: u64, syncs: u64, flags: u32, layer: Layer) -> TraceData {
        let mut d = TraceData::new(layer);
        d.duration_s = 2.0;
        let mut f = FileTrace {
            fd: 3,
            path: Some("/var/log/app/output.log".into()),
            flags: Some(flags),
            ..Default::default()
        };
        f.writes = writes;
        f.write_bytes = writes * 40;
        let h = f
            .syncs
            .entry(crate::trace::model::SyncKind::Fsync)
            .or_default();
        for i in 0..syncs {
            h.record(300_000 + i % 1000);
        }
        let mut p = ProcTrace {
            pid,
            comm: "logger".into(),
            ..Default::default()
        };
        p.files.insert((3, "/var/log/app/output.log".into()), f);
        d.procs.insert(pid, p);
        d
    }

    #[test]
    fn a_sync_per_write_is_a_storm() {
        let pid = writer_pid();
        let found = fsync_storm(&interval_with(trace(pid, 4000, 4000, 0o2001, Layer::Perf)));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.subject.pid, Some(pid));
        assert_eq!(f.evidence.get_num("syncs_per_s"), Some(2000.0));
        assert_eq!(f.evidence.get_num("writes_per_sync"), Some(1.0));
        assert_eq!(f.evidence.get_num("bytes_per_sync"), Some(40.0));
        assert!(
            f.summary.contains("after every 40-byte write"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn batched_syncs_and_buffered_writers_are_not() {
        let pid = writer_pid();
        // Group commit: 10 syncs a second, 100 writes each.
        assert!(fsync_storm(&interval_with(trace(pid, 2000, 20, 0o2001, Layer::Ebpf))).is_empty());
        // A buffered writer: many writes, no sync.
        assert!(
            fsync_storm(&interval_with(trace(pid, 100_000, 0, 0o2001, Layer::Ebpf))).is_empty()
        );
    }

    #[test]
    fn odsync_writes_count_as_syncs() {
        let pid = writer_pid();
        let found = fsync_storm(&interval_with(trace(
            pid,
            1000,
            0,
            0o2001 | O_DSYNC,
            Layer::Perf,
        )));
        assert_eq!(found.len(), 1);
        assert!(found[0].summary.contains("synchronously"));
    }

    #[test]
    fn sampling_reports_an_estimate() {
        let pid = writer_pid();
        let mut d = trace(pid, 0, 0, 0o2001, Layer::Sampling);
        d.procs.get_mut(&pid).unwrap().sampled_sync_share = Some(0.6);
        d.procs.get_mut(&pid).unwrap().samples = 200;
        let found = fsync_storm(&interval_with(d.clone()));
        assert_eq!(found.len(), 1);
        assert!(found[0].summary.contains("estimate"));
        d.procs.get_mut(&pid).unwrap().sampled_sync_share = Some(0.1);
        assert!(fsync_storm(&interval_with(d)).is_empty());
    }
}
