//! The flight recorder: raw snapshots (and each window's trace counters) kept on disk,
//! so that the diagnosis of a past stall runs through the same pipeline as a live one.
//!
//! `segment` is the file format, `store` a directory of segments (listing, retention,
//! reading a time range, export), `writer` the low-priority thread behind a bounded
//! queue, `when` the times users type and the times we print.

pub mod incident;
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

/// Files of the trace data kept per sample: a busy build machine traces thousands of
/// files a window (700 KB of JSON here), and the rules need the busiest (research note A,
/// recommendation 4: the top 64 `(pid, file)` pairs).
pub const TRACE_FILES_KEPT: usize = 64;

/// The trace data to record: all of it when it is small, else the files with the most
/// sync calls (then bytes written), with the processes they belong to and a note saying
/// how many were left out.
pub fn bounded_trace(t: &TraceData, max_files: usize) -> std::borrow::Cow<'_, TraceData> {
    use std::borrow::Cow;
    let total: usize = t.procs.values().map(|p| p.files.len()).sum();
    if total <= max_files {
        return Cow::Borrowed(t);
    }
    // (syncs, bytes, writes) first, then where the file is.
    type Busy = (u64, u64, u64);
    let mut ranked: Vec<(Busy, u32, &(i32, String))> = t
        .procs
        .iter()
        .flat_map(|(pid, p)| {
            p.files
                .iter()
                .map(move |(k, f)| ((f.sync_count(), f.write_bytes, f.writes), *pid, k))
        })
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out = TraceData {
        procs: Default::default(),
        notes: t.notes.clone(),
        block: t.block.clone(),
        ..TraceData::new(t.layer)
    };
    out.estimate = t.estimate;
    out.duration_s = t.duration_s;
    out.events = t.events;
    out.lost_events = t.lost_events;
    out.dropped_keys = t.dropped_keys;
    out.unpaired_events = t.unpaired_events;
    out.consumer_cpu_s = t.consumer_cpu_s;
    for (_, pid, key) in ranked.into_iter().take(max_files) {
        let src = &t.procs[&pid];
        let p = out
            .procs
            .entry(pid)
            .or_insert_with(|| src.clone_without_files());
        p.files.insert(key.clone(), src.files[key].clone());
    }
    out.note(
        format!(
            "the recording kept the {max_files} busiest of {total} traced files of this interval"
        ),
        "",
    );
    Cow::Owned(out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::{FileTrace, SyncKind, WriteKind};

    #[test]
    fn a_big_trace_keeps_the_busiest_files_and_says_so() {
        let mut t = TraceData::new(crate::trace::Layer::Perf);
        for i in 0..100 {
            let mut f = FileTrace::default();
            f.record_write(WriteKind::Write, 10 + i, 1_000);
            t.procs
                .entry(1)
                .or_default()
                .files
                .insert((i as i32, format!("/f{i}")), f);
        }
        let mut syncer = FileTrace::default();
        syncer.record_write(WriteKind::Write, 1, 1_000);
        syncer
            .syncs
            .entry(SyncKind::Fsync)
            .or_default()
            .record(5_000);
        t.procs
            .entry(2)
            .or_default()
            .files
            .insert((3, "/log".into()), syncer);
        let small = bounded_trace(&t, 200);
        assert!(matches!(small, std::borrow::Cow::Borrowed(_)));
        let b = bounded_trace(&t, 10);
        let kept: usize = b.procs.values().map(|p| p.files.len()).sum();
        assert_eq!(kept, 10);
        // The syncing file first, then the biggest writers.
        assert!(b.procs[&2].files.contains_key(&(3, "/log".to_string())));
        assert!(b.procs[&1].files.contains_key(&(99, "/f99".to_string())));
        assert!(!b.procs[&1].files.contains_key(&(0, "/f0".to_string())));
        assert!(b.notes.iter().any(|n| n.what.contains("10 busiest of 101")));
    }
}
