//! `iowhy lab --format json`: JSON Lines, a "started" event (pids, paths, mountpoint,
//! device) and, at the end, a "stopped" one with what was cleaned up.

use serde::{Deserialize, Serialize};

/// What a lab started (`event: "started"`) and, at the end, what it cleaned up
/// (`"stopped"`): the `--format json` lines.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabEvent {
    /// "started" | "stopped"
    pub event: String,
    pub scenario: String,
    pub pids: Vec<u32>,
    pub paths: Vec<String>,
    pub mountpoint: Option<String>,
    pub device: Option<String>,
    pub base: Option<String>,
    pub duration_s: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleaned: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_pid: Option<u32>,
    /// frozen-fs: the process blocked in write(2) on the frozen filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_pid: Option<u32>,
    /// frozen-fs: the process whose mmap_lock is held (its /proc/PID/cmdline blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmap_stuck_pid: Option<u32>,
}
