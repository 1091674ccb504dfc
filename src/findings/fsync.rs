//! `fsync_storm`: a process that syncs after (nearly) every write. One observation in the
//! seed — `strace -fp` showing fsync after each 40-byte line — explained the whole stall;
//! here it comes from tracing, without stopping the process.

use std::collections::{BTreeMap, HashMap};

use crate::interval::trace::{SyncCounts, SyncRates};
use crate::interval::{DeviceRates, Interval};
use crate::trace::hist::Hist;
use crate::trace::model::{FileTrace, ProcTrace, SyncKind};

use super::{Finding, Kind, Severity, device, remedy::step};

/// Syncing this often with this few writes in between is a sync per write.
pub const MIN_SYNCS_PER_S: f64 = 20.0;
const MAX_WRITES_PER_SYNC: f64 = 4.0;
/// Syncing this often is a storm whatever the batching: each sync is a device flush.
const HEAVY_SYNCS_PER_S: f64 = 200.0;
/// A sync that takes this long at p99 is felt by everything waiting behind it.
const SLOW_SYNC_P99_MS: f64 = 50.0;
/// Sampling layer: a process spending this share of its time in sync calls.
const SAMPLED_SHARE: f64 = 0.30;

/// The disks behind a traced file: from the process's fd table when it was read, else by
/// the mount its path is on.
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
    match iv.after.mount_by_path(path) {
        Some(m) if m.major != 0 => (
            iv.after.disks_behind(m.major, m.minor),
            Some(m.mountpoint.clone()),
        ),
        Some(m) => (Vec::new(), Some(m.mountpoint.clone())),
        None => (Vec::new(), None),
    }
}

/// Up to this many writes per sync is "every write is followed by a sync" (a line and its
/// newline written apart still reads as one write per sync).
const ONE_WRITE_PER_SYNC: f64 = 1.5;
/// Processes of one program (same comm) taken together: at least this many, none a storm
/// on its own (a shell loop of `dd conv=fsync`, a cron job that syncs each run).
const MIN_GROUP: usize = 2;

/// A process's (or a program's) sync calls and synchronous writes, all files together.
#[derive(Default)]
struct Syncs<'a> {
    pids: Vec<u32>,
    comm: String,
    /// The counts the rates are made of (interval/trace.rs).
    n: SyncCounts,
    all: Hist,
    kinds: BTreeMap<SyncKind, u64>,
    /// The file with the most syncs: the subject.
    top: Option<(u32, &'a FileTrace)>,
    /// Is one file alone a storm (the per-file rule)?
    file_storm: bool,
}

impl<'a> Syncs<'a> {
    fn add(&mut self, p: &'a ProcTrace, r: &SyncRates, secs: f64) {
        self.pids.push(p.pid);
        if self.comm.is_empty() {
            self.comm = p.comm.clone();
        }
        self.n.add(&r.counts);
        for (f, fr) in p.files.values().zip(&r.files) {
            let c = &fr.counts;
            if c.files == 0 {
                continue;
            }
            self.all.merge(&f.all_syncs());
            for (k, h) in &f.syncs {
                *self.kinds.entry(*k).or_default() += h.count;
            }
            if self
                .top
                .is_none_or(|(_, t)| c.calls + c.osync > SyncCounts::of_file(t).waits())
            {
                self.top = Some((p.pid, f));
            }
            let wps = fr.writes_per_sync.unwrap_or(1.0);
            self.file_storm |= is_storm(c.rate(secs), wps);
        }
    }

    fn storm(&self, secs: f64) -> bool {
        self.file_storm || is_storm(self.n.rate(secs), self.n.writes_per_sync())
    }
}

fn is_storm(rate: f64, writes_per_sync: f64) -> bool {
    rate >= HEAVY_SYNCS_PER_S || (rate >= MIN_SYNCS_PER_S && writes_per_sync <= MAX_WRITES_PER_SYNC)
}

/// The whole disk a traced file is on (not a partition), and its mountpoint.
fn disk_of(iv: &Interval, pid: u32, f: &FileTrace) -> (Option<String>, Option<String>) {
    let (devices, mountpoint) = devices_of(iv, pid, f);
    let disk = devices
        .iter()
        .rev()
        .find(|d| iv.device(d).is_some_and(|x| !x.is_partition))
        .cloned();
    (disk, mountpoint)
}

pub fn fsync_storm(iv: &Interval) -> Vec<Finding> {
    let (Some(t), Some(rates)) = (&iv.trace, &iv.trace_rates) else {
        return Vec::new();
    };
    let secs = rates.window_s;
    // Sync calls on each disk's files, every process: the whole of which each one's
    // share is taken.
    let mut disk_syncs: HashMap<String, u64> = HashMap::new();
    if !t.estimate {
        for p in t.procs.values() {
            for f in p.files.values().filter(|f| f.fd >= 0 && f.sync_count() > 0) {
                if let (Some(d), _) = disk_of(iv, p.pid, f) {
                    *disk_syncs.entry(d).or_default() += f.sync_count();
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut groups: BTreeMap<&str, Syncs> = BTreeMap::new();
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
        let Some(r) = rates.syncs.get(&p.pid) else {
            continue;
        };
        let mut s = Syncs::default();
        s.add(p, r, secs);
        if s.top.is_none() {
            continue;
        }
        if s.storm(secs) {
            out.push(finding(iv, &s, &disk_syncs, secs));
        } else {
            groups.entry(p.comm.as_str()).or_default().add(p, r, secs);
        }
    }
    for g in groups.values() {
        if g.pids.len() >= MIN_GROUP && g.top.is_some() && g.storm(secs) {
            out.push(finding(iv, g, &disk_syncs, secs));
        }
    }
    out
}

/// What the explanation says the syncs are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pattern {
    /// O_DSYNC/O_SYNC writes.
    SyncWrites,
    /// sync(2) or msync(2): no fd.
    Fdless(SyncKind),
    /// A sync after every write.
    EveryWrite,
    /// A sync every K writes.
    EveryK,
}

fn pattern(s: &Syncs) -> Pattern {
    if s.n.osync > s.n.calls {
        return Pattern::SyncWrites;
    }
    if s.n.fdless * 2 > s.n.calls {
        let k = if s.kinds.get(&SyncKind::Msync) > s.kinds.get(&SyncKind::Sync) {
            SyncKind::Msync
        } else {
            SyncKind::Sync
        };
        return Pattern::Fdless(k);
    }
    if s.n.writes_per_sync() <= ONE_WRITE_PER_SYNC {
        Pattern::EveryWrite
    } else {
        Pattern::EveryK
    }
}

fn finding(iv: &Interval, s: &Syncs, disk_syncs: &HashMap<String, u64>, secs: f64) -> Finding {
    let (top_pid, file) = s.top.expect("a storm has a file");
    let all = &s.all;
    let pat = pattern(s);
    let rate = s.n.rate(secs);
    let wps = s.n.writes_per_sync();
    let bytes_per_sync = s.n.bytes_per_sync();
    let (disk, mountpoint) = disk_of(iv, top_pid, file);
    let dev = disk.as_deref().and_then(|d| iv.device(d));
    let p99 = all.quantile_ns(0.99).map(|v| v as f64 / 1e6);
    let saturated = dev
        .and_then(|d| device::classify(d, device::traced(iv, d)))
        .is_some_and(|(sev, _)| sev != Severity::Info);
    let severity = if saturated || p99.is_some_and(|v| v >= SLOW_SYNC_P99_MS) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let path = file
        .path
        .clone()
        .unwrap_or_else(|| crate::trace::UNRESOLVED.into());
    let kinds: Vec<String> = s
        .kinds
        .iter()
        .map(|(k, n)| format!("{} {:.0}/s", k.name(), *n as f64 / secs))
        .collect();
    let group = s.pids.len() > 1;
    let who = if group {
        format!("{} {} processes", s.pids.len(), s.comm)
    } else {
        format!("{} (pid {})", s.comm, s.pids[0])
    };
    let what = if s.n.files > 1 {
        format!("{} files (most: {path})", s.n.files)
    } else {
        path.clone()
    };
    let summary = match pat {
        Pattern::SyncWrites => format!(
            "{who} writes {what} synchronously (O_DSYNC/O_SYNC): {rate:.0} waits for the disk per second"
        ),
        Pattern::Fdless(k) => format!("{who} calls {} {rate:.0} times a second", k.name()),
        Pattern::EveryWrite => format!(
            "{who} syncs {what} {rate:.0} times a second, after every {bytes_per_sync:.0}-byte write"
        ),
        Pattern::EveryK => format!(
            "{who} syncs {what} {rate:.0} times a second, every {wps:.0} writes ({bytes_per_sync:.0} bytes)"
        ),
    };
    let mut f = Finding::new(Kind::FsyncStorm, severity, summary);
    if !group {
        f.subject.pid = Some(s.pids[0]);
    }
    f.subject.comm = Some(s.comm.clone());
    f.subject.path = file.path.clone();
    f.subject.mountpoint = mountpoint;
    f.subject.device = disk.clone();
    f.evidence
        .num("syncs_per_s", s.n.calls as f64 / secs)
        .num("writes_per_s", s.n.writes as f64 / secs)
        .num("writes_per_sync", wps)
        .num("bytes_per_sync", bytes_per_sync)
        .opt("sync_p50_ms", all.quantile_ns(0.5).map(|v| v as f64 / 1e6))
        .opt("sync_p99_ms", p99)
        .opt(
            "sync_max_ms",
            (all.count > 0).then(|| all.max_ns as f64 / 1e6),
        )
        .text("sync_calls", kinds.join(", "))
        .num("files_synced", s.n.files as f64)
        .text(
            "tracing",
            iv.trace.as_ref().map(|t| t.layer.name()).unwrap_or("none"),
        );
    if group {
        f.evidence.num("processes", s.pids.len() as f64);
    }
    if let Some(fl) = file.flags {
        f.evidence
            .text("open_flags", crate::parse::fdinfo::flag_names(fl).join("|"));
    }
    if let (Some(d), Some(name)) = (dev, disk.as_deref()) {
        device_shares(&mut f, iv, s, d, name, disk_syncs);
    }
    f.explanation = explanation(s, pat, &path, secs, disk.as_deref(), p99, &kinds);
    f.remediation = remedies(s, file, pat);
    f
}

/// The shares of the device's syncs and writes this process (or program) made, and the
/// device's own write and flush rates.
fn device_shares(
    f: &mut Finding,
    iv: &Interval,
    s: &Syncs,
    d: &DeviceRates,
    name: &str,
    disk_syncs: &HashMap<String, u64>,
) {
    // Of the sync calls the tracer saw on this disk's files, the share this process (or
    // program) made. (A device flush count is no measure of it: ext4 makes about two
    // flushes per fsync, so one process causing all of them would show ~50%.)
    let mine: u64 = iv
        .trace
        .iter()
        .flat_map(|t| s.pids.iter().filter_map(|p| t.procs.get(p)))
        .flat_map(|p| {
            p.files
                .values()
                .filter(|f| f.fd >= 0 && f.sync_count() > 0)
                .filter(|f| disk_of(iv, p.pid, f).0.as_deref() == Some(name))
                .map(|f| f.sync_count())
        })
        .sum();
    if let Some(&total) = disk_syncs.get(name).filter(|t| **t > 0) {
        f.evidence.num(
            "share_of_device_syncs_pct",
            mine as f64 / total as f64 * 100.0,
        );
    }
    // Of the bytes the device wrote, the share this process made dirty or wrote
    // (/proc/PID/io write_bytes, all its files; the journal's own writes are jbd2's).
    let written: Option<f64> = s
        .pids
        .iter()
        .filter_map(|p| iv.process(*p).and_then(|r| r.write_bytes_per_s))
        .reduce(|a, b| a + b);
    if let Some(w) = written.filter(|_| d.wkb_s > 0.0) {
        f.evidence.num(
            "share_of_device_writes_pct",
            (w / (d.wkb_s * 1024.0) * 100.0).min(100.0),
        );
    }
    if d.w_s > 0.0 || d.f_s > 0.0 {
        f.evidence
            .num("device_writes_per_s", d.w_s)
            .num("device_flushes_per_s", d.f_s);
    }
}

/// Why this pattern of syncs costs what it does.
fn explanation(
    s: &Syncs,
    pat: Pattern,
    path: &str,
    secs: f64,
    disk: Option<&str>,
    p99: Option<f64>,
    kinds: &[String],
) -> String {
    let rate = s.n.rate(secs);
    let wps = s.n.writes_per_sync();
    let bytes_per_sync = s.n.bytes_per_sync();
    let disk_name = disk.unwrap_or("the disk");
    let p99_text = p99
        .map(|v| format!("{v:.2} ms"))
        .unwrap_or_else(|| "?".into());
    let cost = format!(
        "each one makes the filesystem commit its journal and the device flush its cache, {} times a second, each waiting {p99_text} at p99. \
         That is what keeps {disk_name} busy and every other task waiting behind it.",
        rate.round()
    );
    match pat {
        Pattern::SyncWrites => format!(
            "{path} is open with O_DSYNC/O_SYNC, so every write(2) returns only when the data is on the disk: {rate:.0} writes a second, \
             each a round trip to {disk_name}. Unless each line must survive a power cut on its own, drop the flag and sync per batch."
        ),
        Pattern::Fdless(SyncKind::Msync) => format!(
            "msync(2) writes a memory-mapped range back to its file and waits for the disk ({}): {cost}",
            kinds.join(", ")
        ),
        Pattern::Fdless(_) => format!(
            "sync(2) asks the kernel to write back every dirty page of every filesystem and waits for all of it ({}): {cost}",
            kinds.join(", ")
        ),
        Pattern::EveryWrite => format!(
            "Every {bytes_per_sync:.0}-byte write is followed by a sync ({}): {cost}",
            kinds.join(", ")
        ),
        Pattern::EveryK => format!(
            "A sync every {wps:.0} writes ({bytes_per_sync:.0} bytes per sync; {}): {cost}",
            kinds.join(", ")
        ),
    }
}

/// Confirm with a trace, batch the syncs, and (one process) pause it or rotate its file.
fn remedies(s: &Syncs, file: &FileTrace, pat: Pattern) -> Vec<String> {
    let group = s.pids.len() > 1;
    let mut v = vec![step(
        if group {
            format!(
                "iowhy trace --comm {} --duration 5s",
                crate::units::shell_quote(&s.comm)
            )
        } else {
            format!("iowhy trace --pid {} --duration 5s", s.pids[0])
        },
        "the per-file counts and latencies again, to confirm after a change",
    )];
    v.push(step(
        "# buffer and batch: write lines to a buffer and sync once per batch or per second (group commit)",
        "one sync for many lines instead of one per line",
    ));
    v.push(step(
        "# Python: logging.handlers.RotatingFileHandler, not write(); flush(); os.fsync() per record",
        "a logging handler that does not sync per record, and rotates",
    ));
    if !group {
        v.push(step(
            format!("iowhy pause {} --for 10s", s.pids[0]),
            "confirm it is the cause: the device should calm down while it is paused",
        ));
    }
    if pat == Pattern::SyncWrites {
        v.insert(
            1,
            step(
                "# open the file without O_DSYNC/O_SYNC",
                "synchronous writes make every write a disk round trip",
            ),
        );
    }
    if let Some(path) = &file.path {
        if !path.starts_with('(') {
            v.push(step(
                format!("iowhy rotate {} --dry-run", crate::units::shell_quote(path)),
                "if the file is also large: rotate it without losing a line",
            ));
        }
    }
    v
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
#[path = "fsync_tests.rs"]
mod tests;
