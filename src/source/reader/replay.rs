//! The replay backend: read a captured fixture time point, answering the syscall results
//! (stat through fd links, statvfs, pipe fill, where a tail began) and the refusals from
//! the capture's `meta.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Backend;
use crate::error::ReadError;
use crate::snapshot::{FileStat, FsSpace, PipeFill};

/// Syscall results a fixture time point carries beside its files.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FixtureMeta {
    pub wall_unix_ms: i64,
    pub clk_tck: u64,
    pub euid: u32,
    pub self_pid: Option<u32>,
    /// statvfs per mountpoint (as the host spells it).
    pub statvfs: BTreeMap<String, FsSpace>,
    /// stat through `/proc/PID/fd/N`, keyed `"PID/N"`.
    pub fd_stat: BTreeMap<String, FileStat>,
    /// Paths (relative to the time point) that were denied when captured.
    pub denied: BTreeSet<String>,
    /// stat(2) by path (container logs), keyed by the path relative to the time point.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub path_stat: BTreeMap<String, FileStat>,
    /// FIONREAD / F_GETPIPE_SZ through `/proc/PID/fd/N`, keyed `"PID/N"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pipe_fill: BTreeMap<String, PipeFill>,
    /// Where a tail read began in the live file (the capture holds only the tail),
    /// keyed by the path relative to the time point.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tail_offset: BTreeMap<String, u64>,
    /// When the capturer turned `kernel.task_delayacct` on, in seconds of uptime (what
    /// `diagnose --enable-delayacct` knows of its own run): a task forked after it has
    /// delay accounting, so its I/O wait is real even when it is 0. Written by
    /// `tests/fixtures/capture.sh`, which turns it on before a lab starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayacct_enabled_at_uptime_s: Option<f64>,
}

pub const META_FILE: &str = "meta.json";

/// A directory entry that was listed but never read is kept in a capture as an empty
/// directory holding this marker, because git does not keep empty directories; listings
/// ignore the marker.
pub const KEEP: &str = ".iowhy-keep";

pub(super) struct Replay {
    pub(super) meta: FixtureMeta,
}

impl Replay {
    /// Load the meta of the time point `dir`.
    pub(super) fn load(dir: &Path) -> Result<Self, ReadError> {
        let meta_path = dir.join(META_FILE);
        let text =
            std::fs::read_to_string(&meta_path).map_err(|e| ReadError::from_io(&meta_path, e))?;
        let meta: FixtureMeta = serde_json::from_str(&text).map_err(|e| {
            ReadError::parse(
                &meta_path,
                crate::parse::ParseError::new("fixture meta", e.to_string()),
            )
        })?;
        Ok(Replay { meta })
    }
}

impl Backend for Replay {
    fn refused(&self, key: &str) -> bool {
        !self.meta.denied.is_empty() && self.meta.denied.contains(key)
    }

    fn recorded(&self) -> Option<&FixtureMeta> {
        Some(&self.meta)
    }
}
