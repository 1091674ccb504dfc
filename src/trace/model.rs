//! What tracing saw, whatever the layer: per process and per file, write and sync calls
//! with their latency; per device, block request latency split into queue and device time.

use std::collections::BTreeMap;

use serde::Serialize;

use super::hist::Hist;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

/// One file of one process (an fd number while it pointed at one path).
#[derive(Clone, Debug, Default, Serialize)]
pub struct FileTrace {
    pub fd: i32,
    /// `None` when the fd was closed before its path could be resolved.
    pub path: Option<String>,
    pub flags: Option<u32>,
    pub writes: u64,
    pub write_bytes: u64,
    pub syncs: BTreeMap<SyncKind, Hist>,
    /// Sampling layer only: share of samples spent in sync calls on this fd (0..1).
    pub sampled_sync_share: Option<f64>,
}

impl FileTrace {
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

#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcTrace {
    pub pid: u32,
    pub comm: String,
    /// Seen starting (exec) or exiting during the window.
    pub exec_in_window: Option<String>,
    pub exited_in_window: bool,
    /// Keyed by (fd, path): an fd reused for another file is another entry.
    pub files: BTreeMap<(i32, String), FileTrace>,
    /// Sampling layer: samples taken and the share spent in any sync call.
    pub samples: u64,
    pub sampled_sync_share: Option<f64>,
}

impl ProcTrace {
    pub fn sync_count(&self) -> u64 {
        self.files.values().map(|f| f.sync_count()).sum()
    }
    pub fn writes(&self) -> u64 {
        self.files.values().map(|f| f.writes).sum()
    }
    pub fn write_bytes(&self) -> u64 {
        self.files.values().map(|f| f.write_bytes).sum()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlockLat {
    /// Insert (into the scheduler) → issue (to the driver): waiting in the queue.
    pub queue: Hist,
    /// Issue → complete: the device's own time.
    pub device: Hist,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

#[derive(Clone, Debug, Serialize)]
pub struct TraceData {
    pub layer: Layer,
    /// Sampling gives estimates (shares of time), not counts.
    pub estimate: bool,
    pub duration_s: f64,
    pub procs: BTreeMap<u32, ProcTrace>,
    /// (major, minor) → op → latency.
    pub block: BTreeMap<(u32, u32), BTreeMap<BlockOp, BlockLat>>,
    pub events: u64,
    /// Events the kernel dropped because we did not read fast enough: reported, never hidden.
    pub lost_events: u64,
    /// Keys dropped because the bounded tables were full.
    pub dropped_keys: u64,
    /// What this layer could not see.
    pub notes: Vec<String>,
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
            notes: Vec::new(),
            consumer_cpu_s: 0.0,
        }
    }

    /// Sync calls per second of a process, from counting layers only.
    pub fn sync_per_s(&self, pid: u32) -> Option<f64> {
        if self.estimate || self.duration_s <= 0.0 {
            return None;
        }
        self.procs
            .get(&pid)
            .map(|p| p.sync_count() as f64 / self.duration_s)
    }
}
