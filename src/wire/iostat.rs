//! `iowhy iostat --format json`, and the device objects of `diagnose`: sysstat's own keys
//! and units (`iostat -o JSON`), so scripts written for sysstat read ours. A column that
//! is not a number (an interval of zero centiseconds) is null, not 0.

use serde::{Deserialize, Serialize};

/// One device, one interval, with sysstat's keys and units (kB = 1024 bytes, ms, %).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IostatDevice {
    pub disk_device: String,
    #[serde(rename = "r/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub r_s: f64,
    #[serde(rename = "w/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub w_s: f64,
    #[serde(rename = "d/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub d_s: f64,
    #[serde(rename = "f/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub f_s: f64,
    #[serde(rename = "rkB/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub rkb_s: f64,
    #[serde(rename = "wkB/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub wkb_s: f64,
    #[serde(rename = "dkB/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub dkb_s: f64,
    #[serde(rename = "rrqm/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub rrqm_s: f64,
    #[serde(rename = "wrqm/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub wrqm_s: f64,
    #[serde(rename = "drqm/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub drqm_s: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub rrqm: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub wrqm: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub drqm: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub r_await: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub w_await: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub d_await: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub f_await: f64,
    #[serde(rename = "rareq-sz")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub rareq_sz: f64,
    #[serde(rename = "wareq-sz")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub wareq_sz: f64,
    #[serde(rename = "dareq-sz")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub dareq_sz: f64,
    #[serde(rename = "aqu-sz")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub aqu_sz: f64,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub util: f64,
    /// Ours, beyond sysstat: busy time per completed request (see `svctm_est_ms` in the
    /// interval docs), requests in flight, and the queue's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svctm_est_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    /// With eBPF tracing: measured mean time in the device (issue → complete) and in the
    /// scheduler queue (insert → issue), all request kinds together, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_device_time_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_device_time_p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_queue_time_ms: Option<f64>,
}

/// `iowhy iostat --format json`: one object per interval (JSON Lines).
/// `disk` holds `IostatDevice` with `-x`, `IostatBasic` without, as sysstat's
/// `iostat -dx -o JSON` and `iostat -d -o JSON` do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IostatSample<D = IostatDevice> {
    pub timestamp: String,
    /// Seconds this sample covers (since boot for the first).
    #[serde(deserialize_with = "super::nan_if_null")]
    pub interval_seconds: f64,
    pub disk: Vec<D>,
}

/// sysstat's basic device report (`iostat -d -o JSON`), with its keys: transfers per
/// second, kB/s, and kB over the interval (sectors / 2, truncated as sysstat does).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IostatBasic {
    pub disk_device: String,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub tps: f64,
    #[serde(rename = "kB_read/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub kb_read_s: f64,
    #[serde(rename = "kB_wrtn/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub kb_wrtn_s: f64,
    #[serde(rename = "kB_dscd/s")]
    #[serde(deserialize_with = "super::nan_if_null")]
    pub kb_dscd_s: f64,
    #[serde(rename = "kB_read")]
    pub kb_read: u64,
    #[serde(rename = "kB_wrtn")]
    pub kb_wrtn: u64,
    #[serde(rename = "kB_dscd")]
    pub kb_dscd: u64,
}
