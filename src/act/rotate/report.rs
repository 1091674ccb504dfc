//! What a rotate did, or with `--dry-run` would do: the report (its JSON is the
//! `--format json` output) and its text rendering.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::RotateArgs;
use super::checks::signame;
use super::keep::{Kept, keep_reason};
use crate::act::SignalFate;
use crate::act::holders::Unknown;
use crate::act::pause::ActFormat;
use crate::act::rotated;
use crate::cmd::emit;
use crate::roots::Roots;
use crate::units;

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
    a: &RotateArgs,
    dir: &Path,
    md: &std::fs::Metadata,
    plan: &rotated::Plan,
    writers: usize,
    mut report: RotateReport,
) -> Result<()> {
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
    print(a, &report)
}

pub(super) fn print(a: &RotateArgs, r: &RotateReport) -> Result<()> {
    match a.format {
        ActFormat::Json => emit(&(serde_json::to_string_pretty(r)? + "\n")),
        ActFormat::Text => {
            let mut o = String::new();
            if r.dry_run {
                o.push_str(&format!("dry run: {}\n", r.path));
            } else {
                o.push_str(&format!(
                    "rotated {} → {} ({}, {})\n",
                    r.path,
                    r.rotated_to.clone().unwrap_or_default(),
                    r.mode,
                    units::bytes_u(r.bytes_rotated)
                ));
            }
            for (f, t) in &r.renamed {
                o.push_str(&format!("  renamed {f} → {t}\n"));
            }
            for w in &r.writers {
                o.push_str(&format!(
                    "  writer pid {} ({}) fd {}{}: {}\n",
                    w.pid,
                    w.comm,
                    w.fd,
                    if w.append { " O_APPEND" } else { "" },
                    if w.note.is_empty() {
                        format!("signal {}", w.signal_fate)
                    } else {
                        w.note.clone()
                    }
                ));
            }
            if r.writers.is_empty() {
                o.push_str("  no process has it open for writing\n");
            }
            if let Some(b) = r.written_during_copy_bytes {
                o.push_str(&format!(
                    "  written during the copy: {}\n",
                    units::bytes_u(b)
                ));
            }
            if let Some(b) = r.at_risk_bytes.filter(|b| *b > 0) {
                o.push_str(&format!(
                    "  written between the last copy and the truncate (lost): {}\n",
                    units::bytes_u(b)
                ));
            }
            if !r.unknown_holders.is_empty() {
                o.push_str(&format!(
                    "  {} process(es) may hold it unseen (their open files could not be read)\n",
                    r.unknown_holders.len()
                ));
            }
            for x in &r.removed {
                o.push_str(&format!(
                    "  {} {x}\n",
                    if r.dry_run { "would remove" } else { "removed" }
                ));
            }
            for x in &r.compressed {
                o.push_str(&format!("  compressed {x}\n"));
            }
            for x in &r.kept_open {
                o.push_str(&format!("  kept {x}: still open in a process\n"));
            }
            for x in &r.kept_unknown {
                o.push_str(&format!("  kept {x}: who holds it cannot all be known\n"));
            }
            for n in &r.notes {
                o.push_str(&format!("  note: {n}\n"));
            }
            emit(&o)
        }
    }
}
