//! `iowhy trace --format json`: write and sync calls per process and per file (what
//! `strace -c` would give), and block request latency per device. A rounded rate that is
//! not a number is null.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceJson {
    /// "ebpf" | "perf" | "sampling"
    pub layer: String,
    pub estimate: bool,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub duration_s: f64,
    pub events: u64,
    pub lost_events: u64,
    pub dropped_keys: u64,
    /// perf: syscall exits without their entry (lost or out of order), not counted.
    pub unpaired_events: u64,
    pub consumer_cpu_s: f64,
    pub notes: Vec<String>,
    pub processes: Vec<TraceProcessJson>,
    pub devices: Vec<TraceDeviceJson>,
}

/// One traced process (`processes[]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceProcessJson {
    pub pid: u32,
    pub comm: String,
    pub exited_in_window: bool,
    pub exec_in_window: Option<String>,
    pub syncs: u64,
    pub sync_per_s: Option<f64>,
    pub writes: u64,
    pub write_bytes: u64,
    pub sampled_sync_share: Option<f64>,
    /// Per syscall, all files together: what `strace -c` prints (counting layers).
    pub syscalls: BTreeMap<String, SyscallJson>,
    pub files: Vec<TraceFileJson>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SyscallJson {
    pub calls: u64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub per_s: f64,
    /// Write calls: the bytes they returned.
    pub bytes: Option<u64>,
    /// Time spent in the calls, all together.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub total_ms: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub us_per_call: f64,
    /// Sync calls: the slowest.
    pub max_ms: Option<f64>,
}

/// One traced file of a process (`processes[].files[]`); not diagnose's
/// [`super::diagnose::FileJson`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceFileJson {
    pub fd: i32,
    pub path: Option<String>,
    pub flags: Vec<String>,
    pub writes: u64,
    pub write_bytes: u64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub writes_per_s: f64,
    /// By sync call ("fsync", "fdatasync", ...).
    pub syncs: BTreeMap<String, SyncJson>,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub sync_per_s: f64,
    pub writes_per_sync: Option<f64>,
    pub bytes_per_sync: Option<f64>,
    pub sync_p50_ms: Option<f64>,
    pub sync_p99_ms: Option<f64>,
    pub sync_max_ms: Option<f64>,
    /// Share of the window spent inside sync calls on this file (counting layers).
    pub sync_time_share: Option<f64>,
    pub sampled_sync_share: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SyncJson {
    pub count: u64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub per_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: f64,
}

/// Block requests of one kind on one device (`devices[]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceDeviceJson {
    pub device: String,
    /// "read" | "write" | "discard" | "flush" | ...
    pub op: String,
    pub count: u64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub per_s: f64,
    pub queue_p50_ms: Option<f64>,
    pub queue_p99_ms: Option<f64>,
    pub device_p50_ms: Option<f64>,
    pub device_p99_ms: Option<f64>,
    pub device_max_ms: f64,
}
