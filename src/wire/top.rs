//! `iowhy top -b --format json`: one object per refresh (JSON Lines), iotop's view.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopSample {
    pub timestamp: String,
    pub interval_seconds: f64,
    pub total_read_bytes_per_s: f64,
    pub total_write_bytes_per_s: f64,
    pub device_read_bytes_per_s: f64,
    pub device_write_bytes_per_s: f64,
    pub processes: Vec<TopProcess>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopProcess {
    pub pid: u32,
    pub uid: Option<u32>,
    pub comm: String,
    pub cmdline: String,
    pub state: String,
    pub read_bytes_per_s: Option<f64>,
    pub write_bytes_per_s: Option<f64>,
    pub cancelled_write_bytes_per_s: Option<f64>,
    pub io_wait_pct: Option<f64>,
    pub d_state_threads: usize,
    pub wchan: Option<String>,
    /// With `-a`: bytes read since the first report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulated_read_bytes: Option<f64>,
    /// With `-a`: bytes written since the first report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulated_write_bytes: Option<f64>,
}
