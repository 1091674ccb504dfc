//! The flight recorder's JSON: `diagnose --at` (the `replay` object of the report),
//! `record ls` and `record when`.

use serde::{Deserialize, Serialize};

pub use crate::findings::{Kind, Severity, Subject};

/// What `diagnose --at` looked at, and when each finding began and ended.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Replay {
    /// The time asked for (RFC 3339, UTC) and as the local clock showed it.
    pub at: String,
    pub at_local: String,
    pub from: String,
    pub to: String,
    /// Intervals (pairs of consecutive samples) replayed in the window.
    pub intervals: usize,
    /// The end of the worst interval: the report above is that interval's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_at_local: Option<String>,
    pub timeline: Vec<TimelineEntry>,
    /// Samples the recorder dropped in the window (its queue was full).
    pub dropped_samples: u64,
    /// Reboots in the window (no interval spans one).
    pub reboots: usize,
    /// Intervals with trace data (sync calls per file need it).
    pub traced_intervals: usize,
    /// Damage skipped, intervals left out, and why.
    pub notes: Vec<String>,
}

/// One finding (kind and subject) over the window: first and last interval it was in.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TimelineEntry {
    pub kind: Kind,
    /// The worst severity it reached.
    pub severity: Severity,
    pub subject: Subject,
    /// Its summary at its worst.
    pub summary: String,
    /// The start of the first interval it was found in, and the end of the last.
    pub began_at: String,
    pub ended_at: String,
    pub intervals: usize,
}

/// `iowhy record ls --format json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Listing {
    pub dir: String,
    pub segments: Vec<SegmentJson>,
    pub samples: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    pub bytes: u64,
    /// Bytes over the time covered, scaled to a day.
    #[serde(deserialize_with = "super::nan_if_null")]
    pub bytes_per_day: f64,
    /// Stretches without samples: longer than twice the interval, or dropped samples.
    pub gaps: Vec<GapJson>,
    /// Boots seen: a new boot id, or uptime going down.
    pub reboots: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SegmentJson {
    pub file: String,
    pub bytes: u64,
    pub samples: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GapJson {
    pub from: String,
    pub to: String,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub seconds: f64,
    /// Samples the recorder dropped (0: the recorder was not running).
    pub dropped: u64,
}

/// One incident (`iowhy incidents show ID --format json`; the list is of these without
/// `text` and `markdown`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Incident {
    /// `20260308T030004Z-fsync_storm`.
    pub id: String,
    /// What started it: a critical finding's kind, or `psi_io_full`.
    pub kind: String,
    pub started_at: String,
    pub started_unix_ms: i64,
    pub ended_at: String,
    #[serde(deserialize_with = "super::nan_if_null")]
    pub duration_s: f64,
    /// Sampler windows it spans.
    pub windows: u64,
    /// The worst window's worst finding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_severity: Option<Severity>,
    pub summary: String,
    /// The process a finding names (the first that names one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<Subject>,
    /// The end of the worst window.
    pub worst_at: String,
    /// The worst window's report, as `diagnose` prints it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub markdown: String,
}
