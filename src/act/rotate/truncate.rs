//! The copytruncate path, asked for or as the fallback when no writer reopened after a
//! rename: the copy itself is `act::copytruncate`; here, putting the log back and
//! reporting.

use std::path::Path;

use anyhow::{Context, Result};

use super::RotateReport;
use crate::act::holders::{self, Holder};
use crate::act::safe_open::Identity;
use crate::error::usage;
use crate::roots::Roots;

/// No writer reopened: put the log back under its name (RENAME_EXCHANGE swaps the two
/// names atomically) and copytruncate it instead — unless someone holds the new file
/// (a slow writer that reopened after the timeout) or holders cannot all be known: then
/// the rename stands, and the new file is never removed.
pub(super) fn fallback(
    roots: &Roots,
    ws: &[Holder],
    path: &Path,
    rotated: &Path,
    checked: Identity,
    report: &mut RotateReport,
) -> Result<()> {
    if let Some(w) = ws.iter().find(|w| !w.append) {
        report.notes.push(format!(
            "no fallback: pid {} does not write with O_APPEND",
            w.pid
        ));
        return Ok(());
    }
    let exchange = || {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            rotated,
            rustix::fs::CWD,
            path,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
    };
    let spelled = roots.host_path_of(path).display().to_string();
    if let Err(why) = holders::free(roots, path, &spelled) {
        report.notes.push(format!(
            "no fallback: the new log is {why} (a writer reopened after the timeout?): the rename stands"
        ));
        return Ok(());
    }
    exchange().context("putting the log back for copytruncate")?;
    // Whoever opened the new file before the swap holds it now under the rotated name.
    let spelled_rot = roots.host_path_of(rotated).display().to_string();
    let empty = std::fs::metadata(rotated).is_ok_and(|m| m.len() == 0);
    let free = holders::free(roots, rotated, &spelled_rot);
    if !empty || free.is_err() {
        exchange().context("swapping the names back")?;
        report.notes.push(format!(
            "no fallback: the new log was {} meanwhile: the rename stands",
            match free {
                Err(why) => why,
                Ok(()) => "written to".into(),
            }
        ));
        return Ok(());
    }
    // Empty, and nobody holds it: removing it loses nothing.
    std::fs::remove_file(rotated)?;
    report
        .notes
        .push("no writer reopened: the rename was undone and the log copytruncated instead".into());
    for w in &mut report.writers {
        w.note.clear();
    }
    copy_truncate(roots, ws, path, rotated, checked, report)
}

pub(super) fn copy_truncate(
    roots: &Roots,
    ws: &[Holder],
    path: &Path,
    rotated: &Path,
    checked: Identity,
    report: &mut RotateReport,
) -> Result<()> {
    let renamed = if report.renamed.is_empty() {
        String::new()
    } else {
        format!(
            " (the older rotations were renumbered: {})",
            report
                .renamed
                .iter()
                .map(|(f, t)| format!("{f} → {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let out = crate::act::copytruncate::run(roots, ws, path, rotated, checked).map_err(|e| {
        match e.downcast::<crate::error::UsageError>() {
            Ok(u) => usage(format!("{}{renamed}", u.0)),
            Err(e) if renamed.is_empty() => e,
            Err(e) => e.context(renamed.trim().to_string()),
        }
    })?;
    report.mode = "copytruncate".into();
    report.bytes_rotated = out.copied_bytes;
    report.written_during_copy_bytes = Some(out.written_during_copy_bytes);
    report.at_risk_bytes = Some(0);
    report.frozen_ms = crate::wire::round(out.frozen_ms, 2);
    report.rotated_to = Some(roots.host_path_of(rotated).display().to_string());
    report.notes.extend(out.notes);
    Ok(())
}
