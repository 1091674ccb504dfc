//! `iowhy diagnose --format json`: the report, its processes, files, filesystems,
//! findings and blind spots. Its devices are [`super::iostat::IostatDevice`] (sysstat's
//! keys, so scripts written for sysstat read ours); its containers are
//! [`super::containers`]'s.

use serde::{Deserialize, Serialize};

pub use crate::findings::{Kind, Severity, Subject};

use super::containers::{ContainerJson, PodJson, ProcessContainerJson, ShimJson};
use super::iostat::IostatDevice;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub version: u32,
    pub host: String,
    pub kernel: String,
    pub started_at: String,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub window_seconds: f64,
    pub capabilities: Capabilities,
    pub devices: Vec<IostatDevice>,
    pub filesystems: Vec<Filesystem>,
    pub processes: Vec<ProcessJson>,
    pub findings: Vec<FindingJson>,
    /// What this run could not see, and how to see it.
    pub blind_spots: Vec<BlindSpot>,
    /// Containers with their I/O and logs (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerJson>,
    /// Log size by pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodJson>,
    /// I/O by shim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shims: Vec<ShimJson>,
    /// `diagnose --at`: the recorded window this report comes from, and its timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<super::record::Replay>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Capabilities {
    pub root: bool,
    /// "perf" | "ebpf" | "sampling" | "none"
    pub tracing: String,
    pub delayacct: bool,
    /// "on_since_boot" | "on_at_runtime" | "off" | "unknown"
    pub delayacct_state: String,
    pub psi: bool,
    /// Every process's /proc/PID/io and fd table could be read.
    pub all_processes_visible: bool,
    /// Read from a captured fixture instead of the live machine.
    pub fixture: bool,
    /// How host strings (paths, comm, cmdline, container names) that are not UTF-8 appear
    /// in this JSON: [`crate::hoststr::PATH_ENCODING`]; decode with `hoststr::to_bytes`.
    #[serde(default)]
    pub path_encoding: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Filesystem {
    pub mountpoint: String,
    pub source: String,
    pub fstype: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub avail_bytes: u64,
    pub use_pct: Option<f64>,
    pub inodes_use_pct: Option<f64>,
    pub growth_bytes_per_s: Option<f64>,
    pub time_to_full_s: Option<f64>,
    #[serde(default)]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_mounted_at: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessJson {
    pub pid: u32,
    pub comm: String,
    pub cmdline: String,
    pub state: String,
    pub wchan: Option<String>,
    pub read_bytes_per_s: Option<f64>,
    pub write_bytes_per_s: Option<f64>,
    /// null when delay accounting is off or cannot be trusted for this process.
    pub io_wait_pct: Option<f64>,
    /// null without syscall tracing.
    pub fsync_per_s: Option<f64>,
    pub container: Option<ProcessContainerJson>,
    pub files: Vec<FileJson>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub cancelled_write_bytes_per_s: Option<f64>,
    #[serde(default)]
    pub rchar_per_s: Option<f64>,
    #[serde(default)]
    pub wchar_per_s: Option<f64>,
    #[serde(default)]
    pub syscr_per_s: Option<f64>,
    #[serde(default)]
    pub syscw_per_s: Option<f64>,
    /// Threads in D state (either end of the window).
    #[serde(default)]
    pub d_state_threads: usize,
    /// The disks its writable files live on.
    #[serde(default)]
    pub devices: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FileJson {
    pub fd: i32,
    pub path: String,
    pub size_bytes: Option<u64>,
    pub growth_bytes_per_s: Option<f64>,
    pub deleted: bool,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub pos_bytes: Option<u64>,
    #[serde(default)]
    pub mountpoint: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FindingJson {
    pub kind: Kind,
    pub severity: Severity,
    pub summary: String,
    pub subject: Subject,
    pub evidence: serde_json::Map<String, serde_json::Value>,
    pub remediation: Vec<String>,
    #[serde(default)]
    pub explanation: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlindSpot {
    /// What could not be seen.
    pub what: String,
    /// Why, and how to see it.
    pub how_to_see: String,
}
