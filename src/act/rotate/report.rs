//! What a rotate did, or with `--dry-run` would do: the report (its JSON is the
//! `--format json` output); `cmd::rotate` renders it as text.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::RotateOptions;
use super::checks::signame;
use super::keep::{Kept, keep_reason};
use crate::act::SignalFate;
use crate::act::holders::Unknown;
use crate::act::rotated;
use crate::roots::Roots;

#[derive(Serialize, Debug, Clone)]
pub struct WriterReport {
    pub pid: u32,
    pub comm: String,
    pub fd: i32,
    pub append: bool,
    /// "handled" | "ignored" | "default"
    pub signal_fate: &'static str,
    pub signalled: bool,
    pub reopened: bool,
    pub new_fd: Option<i32>,
    pub note: String,
}

#[derive(Serialize, Debug, Default)]
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

pub(super) fn fate_name(f: SignalFate) -> &'static str {
    match f {
        SignalFate::Handled => "handled",
        SignalFate::Ignored => "ignored",
        SignalFate::Default => "default",
    }
}

pub(super) fn dry_run(
    roots: &Roots,
    a: &RotateOptions,
    dir: &Path,
    md: &std::fs::Metadata,
    plan: &rotated::Plan,
    writers: usize,
    mut report: RotateReport,
) -> Result<RotateReport> {
    report.mode = if a.copytruncate {
        "copytruncate"
    } else {
        "rename"
    }
    .into();
    let host = |p: &Path| roots.host_path_of(p).display().to_string();
    report.renamed = plan
        .renames
        .iter()
        .map(|(f, t)| (host(&dir.join(f)), host(&dir.join(t))))
        .collect();
    // The same held-open check as a real run, on the file as it is named now.
    for r in &plan.removals {
        let now = dir.join(plan.before_shift(r));
        match keep_reason(roots, &now) {
            None => report.removed.push(host(&dir.join(r))),
            Some(Kept::Open(_)) => report.kept_open.push(host(&dir.join(r))),
            Some(Kept::Unknown(_)) => report.kept_unknown.push(host(&dir.join(r))),
        }
    }
    report.bytes_rotated = md.len();
    report.notes.push(if a.copytruncate {
        "would copy the log to its .1, then stop the writers for the final copy and the truncate (a guardian resumes them)".into()
    } else {
        format!(
            "would rename the log to its .1, create a new one ({:o}, uid {}, gid {}), send {} to {writers} writer(s) and check each reopened",
            md.mode() & 0o7777,
            md.uid(),
            md.gid(),
            signame(a.signal)
        )
    });
    Ok(report)
}
