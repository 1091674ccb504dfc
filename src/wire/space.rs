//! `iowhy space --format json`: filesystems (diagnose's [`Filesystem`]), the bytes held by
//! deleted files that processes keep open, and the biggest files and directories under a
//! path.

use serde::{Deserialize, Serialize};

use super::diagnose::{BlindSpot, Filesystem};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpaceReport {
    pub window_seconds: f64,
    pub filesystems: Vec<Filesystem>,
    pub deleted_open: Vec<DeletedOpen>,
    /// The same bytes summed per holding process (an inode shared by a parent and its
    /// children counts for each holder).
    pub deleted_open_by_process: Vec<DeletedByProcess>,
    pub walk: Option<Walk>,
    /// What this run could not see (another user's open files, a refused statvfs): the
    /// deleted-open list is complete only when this is empty.
    pub blind_spots: Vec<BlindSpot>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeletedByProcess {
    pub pid: u32,
    pub comm: String,
    pub files: usize,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeletedOpen {
    pub pid: u32,
    pub comm: String,
    pub fd: i32,
    pub path: String,
    pub size_bytes: u64,
    pub mountpoint: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Walk {
    pub path: String,
    pub mountpoint: Option<String>,
    /// Allocated bytes (du's default), counting hard links once.
    pub total_bytes: u64,
    pub files: u64,
    pub dirs: u64,
    /// Entries we could not read (permission denied, vanished).
    pub errors: u64,
    pub biggest_files: Vec<Entry>,
    pub biggest_dirs: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub bytes: u64,
    pub path: String,
}
