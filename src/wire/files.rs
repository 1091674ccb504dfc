//! `iowhy files PID --format json`: lsof's view of one process, with each file's size,
//! growth, offset, mount and device.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FilesReport {
    pub pid: u32,
    pub comm: String,
    pub cmdline: String,
    pub window_seconds: f64,
    pub files: Vec<FileEntry>,
}

/// One open file (`files[]`): lsof's FD, TYPE and mode columns and ours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub fd: i32,
    /// lsof's TYPE: "REG" | "DIR" | "FIFO" | "sock" | "CHR" | "BLK" | "a_inode" | ...
    #[serde(rename = "type")]
    pub kind: String,
    /// lsof's mode letter: "r" | "w" | "u" (" " when unknown)
    pub mode: String,
    pub path: String,
    pub deleted: bool,
    pub size_bytes: Option<u64>,
    pub growth_bytes_per_s: Option<f64>,
    pub pos_bytes: Option<u64>,
    pub flags: Vec<String>,
    pub inode: Option<u64>,
    pub mountpoint: Option<String>,
    pub fstype: Option<String>,
    pub device: Option<String>,
}
