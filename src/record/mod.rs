//! The flight recorder: raw snapshots (and each window's trace counters) kept on disk,
//! so that the diagnosis of a past stall runs through the same pipeline as a live one.
//!
//! `segment` is the file format, `store` a directory of segments (listing, retention,
//! reading a time range, export), `writer` the low-priority thread behind a bounded
//! queue, `when` the times users type and the times we print.

pub mod replay;
pub mod segment;
pub mod store;
pub mod when;
pub mod writer;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;
use crate::trace::TraceData;

pub use store::Retention;
pub use writer::Recorder;

/// Where `iowhy record` keeps its segments unless told otherwise.
pub const DEFAULT_DIR: &str = "/var/log/iowhy/rec";

/// What one record holds: the raw snapshot that closed a window, and what tracing saw in
/// that window (absent for the first sample, and when tracing was off).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sample {
    pub snapshot: Snapshot,
    #[serde(default)]
    pub trace: Option<TraceData>,
}

/// The same, borrowed, to serialise without copying a snapshot.
#[derive(Serialize)]
pub struct SampleRef<'a> {
    pub snapshot: &'a Snapshot,
    pub trace: Option<&'a TraceData>,
}

/// Samples the writer did not keep.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub dropped: u64,
    pub first_unix_ms: i64,
    pub last_unix_ms: i64,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub dir: PathBuf,
    pub interval: Duration,
    pub retention: Retention,
    pub zstd_level: i32,
    /// A key record (compressed alone) every this many samples: a damaged record costs
    /// at most this many.
    pub key_every: u32,
    /// Samples waiting for the writer; more are dropped (and the gap recorded).
    pub queue: usize,
    /// fdatasync at least this often (and when a segment closes); never per sample.
    pub sync_every: Duration,
}

impl RecordOptions {
    pub fn new(dir: PathBuf, interval: Duration) -> RecordOptions {
        RecordOptions {
            dir,
            interval,
            retention: Retention::default(),
            zstd_level: 3,
            key_every: 32,
            queue: 8,
            sync_every: Duration::from_secs(300),
        }
    }
}
