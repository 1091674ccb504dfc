//! What tracing saw, whatever the layer: per process and per file, write and sync calls
//! with their latency; per device, block request latency split into queue and device time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hist::Hist;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    Fsync,
    Fdatasync,
    SyncFileRange,
    Msync,
    Sync,
    Syncfs,
}

impl SyncKind {
    pub const ALL: [SyncKind; 6] = [
        SyncKind::Fsync,
        SyncKind::Fdatasync,
        SyncKind::SyncFileRange,
        SyncKind::Msync,
        SyncKind::Sync,
        SyncKind::Syncfs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SyncKind::Fsync => "fsync",
            SyncKind::Fdatasync => "fdatasync",
            SyncKind::SyncFileRange => "sync_file_range",
            SyncKind::Msync => "msync",
            SyncKind::Sync => "sync",
            SyncKind::Syncfs => "syncfs",
        }
    }

    /// Does the syscall take an fd as its first argument?
    pub fn has_fd(self) -> bool {
        !matches!(self, SyncKind::Msync | SyncKind::Sync)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    Write,
    Pwrite64,
    Writev,
    Pwritev,
    Pwritev2,
}

impl WriteKind {
    pub const ALL: [WriteKind; 5] = [
        WriteKind::Write,
        WriteKind::Pwrite64,
        WriteKind::Writev,
        WriteKind::Pwritev,
        WriteKind::Pwritev2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WriteKind::Write => "write",
            WriteKind::Pwrite64 => "pwrite64",
            WriteKind::Writev => "writev",
            WriteKind::Pwritev => "pwritev",
            WriteKind::Pwritev2 => "pwritev2",
        }
    }
}

/// Write calls of one kind: how many, the bytes they returned, and the time spent in them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteStat {
    pub calls: u64,
    pub bytes: u64,
    pub total_ns: u64,
}

/// One file of one process (an fd number while it pointed at one path).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FileTrace {
    pub fd: i32,
    /// `None` when the fd was closed before its path could be resolved.
    pub path: Option<String>,
    pub flags: Option<u32>,
    /// All write calls together (the sum of `write_calls`).
    pub writes: u64,
    pub write_bytes: u64,
    /// Per write syscall (write, pwrite64, writev, ...), as `strace -c` splits them.
    pub write_calls: BTreeMap<WriteKind, WriteStat>,
    pub syncs: BTreeMap<SyncKind, Hist>,
    /// Sampling layer only: share of samples spent in sync calls on this fd (0..1).
    pub sampled_sync_share: Option<f64>,
}

impl FileTrace {
    /// Count one write call of kind `k` that returned `bytes` after `ns`.
    pub fn record_write(&mut self, k: WriteKind, bytes: u64, ns: u64) {
        self.add_writes(k, 1, bytes, ns);
    }

    /// Add `calls` write calls of kind `k` (from an in-kernel aggregate).
    pub fn add_writes(&mut self, k: WriteKind, calls: u64, bytes: u64, ns: u64) {
        self.writes += calls;
        self.write_bytes += bytes;
        let w = self.write_calls.entry(k).or_default();
        w.calls += calls;
        w.bytes += bytes;
        w.total_ns = w.total_ns.saturating_add(ns);
    }

    pub fn sync_count(&self) -> u64 {
        self.syncs.values().map(|h| h.count).sum()
    }

    pub fn all_syncs(&self) -> Hist {
        let mut h = Hist::default();
        for s in self.syncs.values() {
            h.merge(s);
        }
        h
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProcTrace {
    pub pid: u32,
    pub comm: String,
    /// Seen starting (exec) or exiting during the window.
    pub exec_in_window: Option<String>,
    pub exited_in_window: bool,
    /// Keyed by (fd, path): an fd reused for another file is another entry.
    #[serde(with = "pairs")]
    pub files: BTreeMap<(i32, String), FileTrace>,
    /// Sampling layer: samples taken and the share spent in any sync call.
    pub samples: u64,
    pub sampled_sync_share: Option<f64>,
}

/// One syscall of one process, all its files together: the line `strace -c` prints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyscallStat {
    pub calls: u64,
    /// Bytes written (write calls only).
    pub bytes: Option<u64>,
    pub total_ns: u64,
    /// Sync calls only: the slowest one.
    pub max_ns: Option<u64>,
}

impl ProcTrace {
    /// The process without its files (the flight recorder keeps only the busiest).
    pub fn clone_without_files(&self) -> ProcTrace {
        ProcTrace {
            pid: self.pid,
            comm: self.comm.clone(),
            exec_in_window: self.exec_in_window.clone(),
            exited_in_window: self.exited_in_window,
            files: BTreeMap::new(),
            samples: self.samples,
            sampled_sync_share: self.sampled_sync_share,
        }
    }

    pub fn sync_count(&self) -> u64 {
        self.files.values().map(|f| f.sync_count()).sum()
    }

    /// Per syscall, over all files: at most one entry per write and sync syscall traced
    /// (11), so the table stays small whatever the process does.
    pub fn syscalls(&self) -> BTreeMap<&'static str, SyscallStat> {
        let mut m: BTreeMap<&'static str, SyscallStat> = BTreeMap::new();
        for f in self.files.values() {
            for (k, w) in &f.write_calls {
                let s = m.entry(k.name()).or_default();
                s.calls += w.calls;
                *s.bytes.get_or_insert(0) += w.bytes;
                s.total_ns = s.total_ns.saturating_add(w.total_ns);
            }
            for (k, h) in &f.syncs {
                let s = m.entry(k.name()).or_default();
                s.calls += h.count;
                s.total_ns = s.total_ns.saturating_add(h.total_ns);
                s.max_ns = Some(s.max_ns.unwrap_or(0).max(h.max_ns));
            }
        }
        m
    }
    pub fn writes(&self) -> u64 {
        self.files.values().map(|f| f.writes).sum()
    }
    pub fn write_bytes(&self) -> u64 {
        self.files.values().map(|f| f.write_bytes).sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockOp {
    Read,
    Write,
    Flush,
    Discard,
    Other,
}

impl BlockOp {
    /// From the kernel's REQ_OP (the low 8 bits of cmd_flags, include/linux/blk_types.h).
    pub fn from_req_op(op: u32) -> BlockOp {
        match op & 0xff {
            0 => BlockOp::Read,
            1 => BlockOp::Write,
            2 => BlockOp::Flush,
            3 => BlockOp::Discard,
            _ => BlockOp::Other,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BlockOp::Read => "read",
            BlockOp::Write => "write",
            BlockOp::Flush => "flush",
            BlockOp::Discard => "discard",
            BlockOp::Other => "other",
        }
    }
}

/// Block request latency for one device and one kind of request.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BlockLat {
    /// Insert (into the scheduler) → issue (to the driver): waiting in the queue.
    pub queue: Hist,
    /// Issue → complete: the device's own time.
    pub device: Hist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Ebpf,
    Perf,
    Sampling,
    Off,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Ebpf => "ebpf",
            Layer::Perf => "perf",
            Layer::Sampling => "sampling",
            Layer::Off => "none",
        }
    }
}

/// Something a layer could not see, and how to see it (empty when there is no better way).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub what: String,
    pub hint: String,
}

impl Note {
    pub fn new(what: impl Into<String>, hint: impl Into<String>) -> Note {
        Note {
            what: what.into(),
            hint: hint.into(),
        }
    }
}

impl From<String> for Note {
    fn from(what: String) -> Note {
        Note::new(what, "")
    }
}

impl From<&str> for Note {
    fn from(what: &str) -> Note {
        Note::new(what, "")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceData {
    pub layer: Layer,
    /// Sampling gives estimates (shares of time), not counts.
    pub estimate: bool,
    pub duration_s: f64,
    pub procs: BTreeMap<u32, ProcTrace>,
    /// (major, minor) → op → latency.
    #[serde(with = "pairs")]
    pub block: BTreeMap<(u32, u32), BTreeMap<BlockOp, BlockLat>>,
    pub events: u64,
    /// Events the kernel dropped because we did not read fast enough: reported, never hidden.
    pub lost_events: u64,
    /// Entries not tracked because a bounded table was full (files, names, processes):
    /// reported, never hidden.
    pub dropped_keys: u64,
    /// perf: syscall exits that had no matching entry although the thread was traced
    /// before (an event lost or out of order): those calls are not counted.
    pub unpaired_events: u64,
    /// What this layer could not see.
    pub notes: Vec<Note>,
    /// CPU time the consumer spent, for the record.
    pub consumer_cpu_s: f64,
}

impl TraceData {
    pub fn new(layer: Layer) -> Self {
        TraceData {
            layer,
            estimate: layer == Layer::Sampling,
            duration_s: 0.0,
            procs: BTreeMap::new(),
            block: BTreeMap::new(),
            events: 0,
            lost_events: 0,
            dropped_keys: 0,
            unpaired_events: 0,
            notes: Vec::new(),
            consumer_cpu_s: 0.0,
        }
    }

    pub fn note(&mut self, what: impl Into<String>, hint: impl Into<String>) {
        self.notes.push(Note::new(what, hint));
    }
}

/// Maps keyed by tuples as a list of `[key, value]` pairs: JSON object keys are strings
/// only, and the flight recorder stores trace data as JSON.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        m: &BTreeMap<K, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscalls_add_up_over_files_per_call() {
        let mut p = ProcTrace::default();
        let mut a = FileTrace::default();
        a.record_write(WriteKind::Write, 40, 1_000);
        a.record_write(WriteKind::Write, 40, 3_000);
        a.record_write(WriteKind::Pwrite64, 4096, 10_000);
        a.syncs.entry(SyncKind::Fsync).or_default().record(500_000);
        let mut b = FileTrace {
            fd: 4,
            ..Default::default()
        };
        b.record_write(WriteKind::Write, 10, 2_000);
        b.syncs.entry(SyncKind::Fsync).or_default().record(900_000);
        b.syncs
            .entry(SyncKind::Fdatasync)
            .or_default()
            .record(100_000);
        assert_eq!((a.writes, a.write_bytes), (3, 4176));
        p.files.insert((3, "/a".into()), a);
        p.files.insert((4, "/b".into()), b);
        let s = p.syscalls();
        assert_eq!(
            s.keys().copied().collect::<Vec<_>>(),
            vec!["fdatasync", "fsync", "pwrite64", "write"]
        );
        assert_eq!(
            s["write"],
            SyscallStat {
                calls: 3,
                bytes: Some(90),
                total_ns: 6_000,
                max_ns: None
            }
        );
        assert_eq!(s["pwrite64"].bytes, Some(4096));
        assert_eq!(
            s["fsync"],
            SyscallStat {
                calls: 2,
                bytes: None,
                total_ns: 1_400_000,
                max_ns: Some(900_000)
            }
        );
        assert_eq!(s["fdatasync"].calls, 1);
    }
}
