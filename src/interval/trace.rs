//! Rates from what tracing saw, computed once: sync calls per second, writes and bytes
//! per sync and the time spent syncing, per process and per file; traced block latency
//! per device (queue vs device time). `fsync_storm`, `device_saturated`, `iowhy trace` and
//! the diagnose JSON all read these.

use std::collections::BTreeMap;

use crate::parse::fdinfo::O_DSYNC;
use crate::trace::hist::Hist;
use crate::trace::model::{BlockOp, FileTrace, ProcTrace, SyncKind, TraceData};

/// The rates of one trace.
#[derive(Clone, Debug, Default)]
pub struct TraceRates {
    /// The window the rates are over: the trace's duration, at least 1 ms.
    pub window_s: f64,
    /// Per process, by pid.
    pub syncs: BTreeMap<u32, SyncRates>,
    /// Per device (major, minor).
    pub block: BTreeMap<(u32, u32), BlockLatency>,
}

impl TraceRates {
    pub fn new(t: &TraceData) -> TraceRates {
        let window_s = t.duration_s.max(1e-3);
        TraceRates {
            window_s,
            syncs: t
                .procs
                .iter()
                .map(|(&pid, p)| (pid, SyncRates::new(p, t, window_s)))
                .collect(),
            block: t
                .block
                .iter()
                .map(|(&dev, ops)| (dev, BlockLatency::new(ops, window_s)))
                .collect(),
        }
    }
}

/// A process's (or a program's) sync calls and synchronous writes, the counts the rates
/// are made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Sync calls: on fds, and fd-less (sync, msync).
    pub calls: u64,
    pub fdless: u64,
    /// Writes on O_DSYNC/O_SYNC fds, each a wait for the disk.
    pub osync: u64,
    /// Writes and bytes on the files that were synced (or are synchronous), fd-less
    /// entries excluded.
    pub writes: u64,
    pub bytes: u64,
    /// Files with a sync call or a synchronous write.
    pub files: usize,
}

impl SyncCounts {
    /// The counts of one file; zero when it was neither synced nor written synchronously.
    pub fn of_file(f: &FileTrace) -> SyncCounts {
        let calls = f.sync_count();
        let osync = sync_writes(f);
        if calls == 0 && osync == 0 {
            return SyncCounts::default();
        }
        let fdless = f.fd < 0;
        SyncCounts {
            calls,
            fdless: if fdless { calls } else { 0 },
            osync,
            writes: if fdless { 0 } else { f.writes },
            bytes: if fdless { 0 } else { f.write_bytes },
            files: 1,
        }
    }

    pub fn add(&mut self, o: &SyncCounts) {
        self.calls += o.calls;
        self.fdless += o.fdless;
        self.osync += o.osync;
        self.writes += o.writes;
        self.bytes += o.bytes;
        self.files += o.files;
    }

    /// Waits for the disk: sync calls and synchronous writes.
    pub fn waits(&self) -> u64 {
        self.calls + self.osync
    }

    /// Waits for the disk per second: sync calls and synchronous writes.
    pub fn rate(&self, secs: f64) -> f64 {
        self.waits() as f64 / secs
    }

    /// Writes per sync on the synced files (1 for synchronous writes: each is its own).
    pub fn writes_per_sync(&self) -> f64 {
        let fd_syncs = self.calls - self.fdless;
        if fd_syncs > 0 {
            self.writes as f64 / fd_syncs as f64
        } else {
            1.0
        }
    }

    pub fn bytes_per_sync(&self) -> f64 {
        let fd_syncs = self.calls - self.fdless;
        if fd_syncs > 0 {
            self.bytes as f64 / fd_syncs as f64
        } else {
            self.bytes as f64 / self.writes.max(1) as f64
        }
    }
}

/// Writes on an fd opened with O_SYNC/O_DSYNC: each one waits for the disk.
fn sync_writes(f: &FileTrace) -> u64 {
    if f.flags.is_some_and(|fl| fl & O_DSYNC != 0) {
        f.writes
    } else {
        0
    }
}

/// One process's sync rates, all files together and per file.
#[derive(Clone, Debug, Default)]
pub struct SyncRates {
    pub counts: SyncCounts,
    /// Sync calls per second, all files; counting layers only (`None` for sampling, or
    /// when the trace has no duration).
    pub syncs_per_s: Option<f64>,
    /// In the order of `ProcTrace.files`.
    pub files: Vec<FileSyncRates>,
}

impl SyncRates {
    fn new(p: &ProcTrace, t: &TraceData, secs: f64) -> SyncRates {
        let files: Vec<FileSyncRates> = p
            .files
            .values()
            .map(|f| FileSyncRates::new(f, secs))
            .collect();
        let mut counts = SyncCounts::default();
        for f in &files {
            counts.add(&f.counts);
        }
        SyncRates {
            counts,
            syncs_per_s: (!t.estimate && t.duration_s > 0.0).then(|| p.sync_count() as f64 / secs),
            files,
        }
    }
}

/// One file's sync rates.
#[derive(Clone, Debug, Default)]
pub struct FileSyncRates {
    pub counts: SyncCounts,
    pub writes_per_s: f64,
    /// Sync calls of every kind per second.
    pub syncs_per_s: f64,
    /// Per kind of sync call, per second.
    pub kind_per_s: BTreeMap<SyncKind, f64>,
    /// Writes and bytes per sync call; `None` without sync calls.
    pub writes_per_sync: Option<f64>,
    pub bytes_per_sync: Option<f64>,
    /// Share of the window spent inside sync calls (0..1); `None` without sync calls.
    pub sync_time_share: Option<f64>,
}

impl FileSyncRates {
    fn new(f: &FileTrace, secs: f64) -> FileSyncRates {
        let n = f.sync_count();
        let total_ns: u64 = f.syncs.values().map(|h| h.total_ns).sum();
        FileSyncRates {
            counts: SyncCounts::of_file(f),
            writes_per_s: f.writes as f64 / secs,
            syncs_per_s: n as f64 / secs,
            kind_per_s: f
                .syncs
                .iter()
                .map(|(k, h)| (*k, h.count as f64 / secs))
                .collect(),
            writes_per_sync: (n > 0).then(|| f.writes as f64 / n as f64),
            bytes_per_sync: (n > 0).then(|| f.write_bytes as f64 / n as f64),
            sync_time_share: (n > 0).then(|| total_ns as f64 / 1e9 / secs),
        }
    }
}

/// Traced block latency of one device: per kind of request, and all kinds together.
#[derive(Clone, Debug, Default)]
pub struct BlockLatency {
    pub ops: BTreeMap<BlockOp, OpLatency>,
    /// All kinds together: mean time in the device and in the queue, device p99.
    pub device_mean_ms: Option<f64>,
    pub queue_mean_ms: Option<f64>,
    pub device_p99_ms: Option<f64>,
}

/// Requests of one kind on one device: queue (insert → issue) vs device (issue →
/// complete) time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpLatency {
    pub count: u64,
    pub per_s: f64,
    pub queue_p50_ms: Option<f64>,
    pub queue_p99_ms: Option<f64>,
    pub device_p50_ms: Option<f64>,
    pub device_p99_ms: Option<f64>,
    pub device_max_ms: f64,
}

fn ms(ns: Option<u64>) -> Option<f64> {
    ns.map(|v| v as f64 / 1e6)
}

impl BlockLatency {
    fn new(ops: &BTreeMap<BlockOp, crate::trace::model::BlockLat>, secs: f64) -> BlockLatency {
        let mut dev = Hist::default();
        let mut queue = Hist::default();
        for l in ops.values() {
            dev.merge(&l.device);
            queue.merge(&l.queue);
        }
        BlockLatency {
            ops: ops
                .iter()
                .map(|(op, l)| {
                    let o = OpLatency {
                        count: l.device.count,
                        per_s: l.device.count as f64 / secs,
                        queue_p50_ms: ms(l.queue.quantile_ns(0.5)),
                        queue_p99_ms: ms(l.queue.quantile_ns(0.99)),
                        device_p50_ms: ms(l.device.quantile_ns(0.5)),
                        device_p99_ms: ms(l.device.quantile_ns(0.99)),
                        device_max_ms: l.device.max_ns as f64 / 1e6,
                    };
                    (*op, o)
                })
                .collect(),
            device_mean_ms: dev.mean_ns().map(|v| v / 1e6),
            queue_mean_ms: queue.mean_ns().map(|v| v / 1e6),
            device_p99_ms: ms(dev.quantile_ns(0.99)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::Layer;

    fn file(fd: i32, writes: u64, syncs: u64, flags: u32) -> FileTrace {
        let mut f = FileTrace {
            fd,
            flags: Some(flags),
            writes,
            write_bytes: writes * 40,
            ..Default::default()
        };
        let h = f.syncs.entry(SyncKind::Fsync).or_default();
        for _ in 0..syncs {
            h.record(1_000_000);
        }
        f
    }

    fn trace_of(files: Vec<FileTrace>) -> TraceData {
        let mut d = TraceData::new(Layer::Perf);
        d.duration_s = 2.0;
        let mut p = ProcTrace {
            pid: 7,
            ..Default::default()
        };
        for f in files {
            p.files.insert((f.fd, String::new()), f);
        }
        d.procs.insert(7, p);
        d
    }

    #[test]
    fn a_sync_per_write_is_one_write_per_sync_at_the_call_rate() {
        let r = TraceRates::new(&trace_of(vec![file(3, 200, 200, 0)]));
        let p = &r.syncs[&7];
        assert_eq!(p.syncs_per_s, Some(100.0));
        assert_eq!(p.counts.rate(r.window_s), 100.0);
        assert_eq!(p.counts.writes_per_sync(), 1.0);
        assert_eq!(p.counts.bytes_per_sync(), 40.0);
        let f = &p.files[0];
        assert_eq!(f.writes_per_sync, Some(1.0));
        assert_eq!(f.bytes_per_sync, Some(40.0));
        // 200 syncs of 1 ms in 2 s: a tenth of the window.
        assert!((f.sync_time_share.unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn synchronous_writes_count_as_waits_without_sync_calls() {
        let r = TraceRates::new(&trace_of(vec![file(3, 100, 0, O_DSYNC)]));
        let p = &r.syncs[&7];
        assert_eq!(p.counts.osync, 100);
        assert_eq!(p.counts.rate(r.window_s), 50.0);
        assert_eq!(p.counts.writes_per_sync(), 1.0);
        assert_eq!(p.files[0].writes_per_sync, None);
    }

    #[test]
    fn sampling_gives_no_sync_rate() {
        let mut t = trace_of(vec![file(3, 10, 10, 0)]);
        t.estimate = true;
        assert_eq!(TraceRates::new(&t).syncs[&7].syncs_per_s, None);
    }

    #[test]
    fn block_latency_splits_queue_and_device_time() {
        let mut t = TraceData::new(Layer::Ebpf);
        t.duration_s = 1.0;
        let mut l = crate::trace::model::BlockLat::default();
        l.queue.record(2_000_000);
        l.device.record(4_000_000);
        t.block.entry((8, 0)).or_default().insert(BlockOp::Write, l);
        let b = &TraceRates::new(&t).block[&(8, 0)];
        assert_eq!(b.device_mean_ms, Some(4.0));
        assert_eq!(b.queue_mean_ms, Some(2.0));
        assert_eq!(b.ops[&BlockOp::Write].count, 1);
        assert_eq!(b.ops[&BlockOp::Write].per_s, 1.0);
    }
}
