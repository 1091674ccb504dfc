//! What a rotate did, or with `--dry-run` would do: the report (its JSON is the
//! `--format json` output); `cmd::rotate` renders it as text.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Result;

use super::RotateOptions;
use super::checks::signame;
use super::keep::{Kept, keep_reason};
use crate::act::SignalFate;
use crate::act::rotated;
use crate::roots::Roots;
pub use crate::wire::act::{RotateReport, WriterReport};

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
