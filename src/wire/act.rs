//! The actions' `--format json` reports: `pause`, `throttle`, `rotate`, `reclaim`. Each
//! is also the typed report its mechanism in `act/` returns. A measured number that is
//! not a number is null.

use serde::{Deserialize, Serialize};

use crate::act::cgroup::{Hierarchy, Limits};

// ---- pause

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    #[serde(deserialize_with = "super::nan_if_null")]
    pub seconds: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub util_pct: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub await_ms: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub w_per_s: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub wkb_per_s: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub f_per_s: f64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceEffect {
    pub device: String,
    pub before: Phase,
    pub during: Phase,
    pub after: Phase,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseReport {
    pub pid: u32,
    pub comm: String,
    pub dry_run: bool,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub paused_s: f64,
    pub stopped: bool,
    pub resumed: bool,
    pub devices: Vec<DeviceEffect>,
    pub psi_some_pct: Option<[f64; 3]>,
    /// "cause" | "not_the_cause" | "device_not_busy" | "unclear"
    pub verdict: String,
    pub summary: String,
    pub warnings: Vec<String>,
}

// ---- throttle

/// A process's own I/O over one measuring window (from `/proc/PID/io`).
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThrottleRates {
    #[serde(deserialize_with = "super::nan_if_null")]
    pub seconds: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub write_bytes_per_s: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub read_bytes_per_s: f64,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThrottleReport {
    pub pid: u32,
    pub comm: String,
    pub action: String,
    pub dry_run: bool,
    pub hierarchy: Option<Hierarchy>,
    pub group: Option<String>,
    pub devices: Vec<String>,
    pub limits: Option<Limits>,
    pub before: Option<ThrottleRates>,
    pub during: Option<ThrottleRates>,
    pub after: Option<ThrottleRates>,
    pub lifted: bool,
    pub notes: Vec<String>,
}

// ---- rotate

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterReport {
    pub pid: u32,
    pub comm: String,
    pub fd: i32,
    pub append: bool,
    /// "handled" | "ignored" | "default"
    pub signal_fate: String,
    pub signalled: bool,
    pub reopened: bool,
    pub new_fd: Option<i32>,
    pub note: String,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RotateReport {
    pub path: String,
    /// "rename" | "copytruncate"
    pub mode: String,
    pub dry_run: bool,
    pub rotated_to: Option<String>,
    pub bytes_rotated: u64,
    /// copytruncate: bytes the writers added while the copy ran (all kept).
    pub written_during_copy_bytes: Option<u64>,
    /// copytruncate: how long the writers were stopped.
    pub frozen_ms: Option<f64>,
    /// copytruncate: bytes written between the last copy and the truncate. Always 0: a
    /// copytruncate that cannot freeze every writer is refused.
    pub at_risk_bytes: Option<u64>,
    pub renamed: Vec<(String, String)>,
    pub removed: Vec<String>,
    pub compressed: Vec<String>,
    /// Old rotations kept although beyond --keep (or not compressed): a process holds them.
    pub kept_open: Vec<String>,
    /// Kept because who holds them cannot be known (processes iowhy may not read).
    pub kept_unknown: Vec<String>,
    pub writers: Vec<WriterReport>,
    /// Processes that may hold the log but whose open files iowhy could not read.
    pub unknown_holders: Vec<Unknown>,
    pub all_reopened: bool,
    pub notes: Vec<String>,
}

// ---- reclaim

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct ReclaimReport {
    pub pid: u32,
    pub comm: String,
    pub fd: i32,
    pub path: String,
    pub dry_run: bool,
    pub size_bytes: u64,
    /// Allocated bytes before and after the truncation.
    pub allocated_before_bytes: u64,
    pub allocated_after_bytes: u64,
    pub freed_bytes: u64,
    pub filesystem_avail_before_bytes: Option<u64>,
    pub filesystem_avail_after_bytes: Option<u64>,
    pub warning: String,
}

// ---- who may hold a file (rotate, reclaim)

/// A process that may hold the file: iowhy could not see.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unknown {
    pub pid: u32,
    pub comm: String,
    pub why: String,
    /// Refused even to root (a non-dumpable process in another user namespace, say):
    /// running as root would not help, unlike another user's process seen by a user.
    pub denied_to_root: bool,
}
