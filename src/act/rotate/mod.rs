//! `iowhy rotate PATH`: rotate a live log without losing a line — the seed's `mv` +
//! `touch` + `kill -HUP`, checked at every step:
//! - the writers are found by inode (every process with PATH open for writing); a process
//!   whose open files cannot be read is an unknown holder, and reported;
//! - a writer that does not handle the signal would be *killed* by SIGHUP: refused;
//! - rename (same directory, so same filesystem: the data never moves), create a new PATH
//!   with the old owner and mode, signal the writers, then verify by inode that each now
//!   holds the new file, and report per writer;
//! - `--copytruncate` (only for O_APPEND writers: a writer with its own offset would leave a
//!   sparse file; only when every holder is known) copies the log while the writers run,
//!   then freezes them for the final milliseconds — see `copytruncate` — so that, unlike
//!   logrotate's copytruncate, no line written during the copy is lost.
//!
//! Nothing is deleted by a rotate except, with `--keep N`, rotations beyond N — and never
//! one a process still has open or whose holders cannot all be known.
//!
//! The parts: `checks` refuses what cannot be done safely, `reopen` renames and waits
//! for the writers to reopen, `truncate` copytruncates (directly or as the fallback),
//! `keep` applies `--keep` and `--compress` to the old rotations, and `report` says
//! what was (or would be) done (`cmd::rotate` prints it). The numbering of rotated names is in `rotated`.

mod checks;
mod keep;
mod reopen;
mod report;
mod truncate;

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::error::usage;
use crate::roots::Roots;

use super::holders;
use super::rotated::{existing, plan, rename_noreplace};
use super::safe_open::Identity;
use super::{refuse_unsafe, signal_fate};
use checks::{is_mount_root, refuse_signal, refuse_truncate, unreadable_maps_note};
use keep::old_files;
use reopen::rename_and_reopen;
pub use report::{RotateReport, WriterReport};
use report::{dry_run, fate_name};
use truncate::{copy_truncate, fallback};

/// What to rotate and how (the flags of `iowhy rotate`, see `cmd::rotate`).
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// The log to rotate (as the host names it).
    pub path: PathBuf,
    /// The signal that makes the writers reopen their log.
    pub signal: rustix::process::Signal,
    /// Copy and truncate in place instead of renaming.
    pub copytruncate: bool,
    /// If no writer reopens, undo the rename and copytruncate instead.
    pub fallback_copytruncate: bool,
    /// Keep this many rotated files (default: all).
    pub keep: Option<u32>,
    /// gzip rotated files once no process holds them.
    pub compress: bool,
    /// How long to wait for the writers to reopen.
    pub timeout: Duration,
    /// Say what would be done, and do nothing.
    pub dry_run: bool,
}

/// Rotate the log (or, with `dry_run`, say how it would be rotated) and report per writer
/// whether it reopened. The caller prints the report.
pub fn rotate(roots: &Roots, a: &RotateOptions) -> Result<RotateReport> {
    if !a.dry_run {
        super::resume_stale_pauses(roots);
    }
    let Log {
        host,
        path,
        md,
        dir,
        base,
    } = the_log(roots, a)?;
    let dev = (rustix::fs::major(md.dev()), rustix::fs::minor(md.dev()));
    let held = holders::scan(roots, dev, md.ino(), &host.display().to_string())?;
    super::test_sync("rotate-scanned");
    let ws = held.writers();
    for w in &ws {
        refuse_unsafe(roots, &w.target)?;
    }
    let signo = a.signal.as_raw();
    let mut report = RotateReport {
        path: host.display().to_string(),
        dry_run: a.dry_run,
        unknown_holders: held.unknown.clone(),
        ..Default::default()
    };
    report.writers = ws
        .iter()
        .map(|w| WriterReport {
            pid: w.pid,
            comm: w.target.comm.clone(),
            fd: w.fd,
            append: w.append,
            signal_fate: fate_name(signal_fate(&w.target, signo)).into(),
            signalled: false,
            reopened: false,
            new_fd: None,
            note: String::new(),
        })
        .collect();
    let names: Vec<String> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let plan = plan(&base, &existing(&base, &names), a.keep);
    let rotated = dir.join(format!("{base}.1"));
    report.rotated_to = Some(roots.host_path_of(&rotated).display().to_string());
    let copytruncate = a.copytruncate;
    if copytruncate || a.fallback_copytruncate {
        refuse_truncate(roots, a, dev, md.ino(), &held)?;
        report
            .notes
            .extend(unreadable_maps_note(roots, dev, md.ino()));
    }
    if copytruncate {
        if let Some(w) = ws.iter().find(|w| !w.append) {
            return Err(usage(format!(
                "pid {} ({}) writes {} without O_APPEND: after a truncate it would keep writing at its old offset and leave a \
                 sparse file with a hole; rotate by rename (it must reopen on a signal) or restart it",
                w.pid,
                w.target.comm,
                a.path.display()
            )));
        }
    } else {
        refuse_signal(a, &ws)?;
    }
    if !held.unknown.is_empty() {
        report.notes.push(format!(
            "{} process(es) may also hold the log but their open files could not be read, so they were not checked or \
             signalled: {}",
            held.unknown.len(),
            held.unknown_summary()
        ));
    }
    if a.dry_run {
        return dry_run(roots, a, &dir, &md, &plan, ws.len(), report);
    }
    for (f, t) in &plan.renames {
        rename_noreplace(&dir.join(f), &dir.join(t))
            .with_context(|| format!("renaming {f} to {t}"))?;
        report.renamed.push((
            roots.host_path_of(&dir.join(f)).display().to_string(),
            roots.host_path_of(&dir.join(t)).display().to_string(),
        ));
    }
    if copytruncate {
        copy_truncate(roots, &ws, &path, &rotated, Identity::of(&md), &mut report)?;
    } else {
        rename_and_reopen(roots, a, &path, &rotated, &md, &ws, &mut report)?;
        if !report.all_reopened
            && a.fallback_copytruncate
            && report.writers.iter().all(|w| !w.reopened)
        {
            fallback(roots, &ws, &path, &rotated, Identity::of(&md), &mut report)?;
        }
    }
    old_files(roots, a, &dir, &base, &plan.removals, &mut report);
    Ok(report)
}

/// The log to rotate, checked: its host path, its path under the roots, its metadata, its
/// directory and its UTF-8 base name.
struct Log {
    host: PathBuf,
    path: PathBuf,
    md: std::fs::Metadata,
    dir: PathBuf,
    base: String,
}

/// Find the log and refuse what cannot be rotated by rename: not a regular file, a mount
/// of its own, a name that is not UTF-8.
fn the_log(roots: &Roots, a: &RotateOptions) -> Result<Log> {
    let host = if a.path.is_absolute() {
        a.path.clone()
    } else {
        std::env::current_dir()?.join(&a.path)
    };
    let path = roots.host(&host);
    let md = std::fs::symlink_metadata(&path)
        .map_err(|e| usage(format!("{}: {e}", a.path.display())))?;
    if !md.is_file() {
        return Err(usage(format!("{}: not a regular file", a.path.display())));
    }
    let dir = path
        .parent()
        .context("the log has no directory")?
        .to_path_buf();
    if is_mount_root(&path, &md, &std::fs::metadata(&dir)?) {
        return Err(usage(format!(
            "{} is a mount of its own (bind-mounted onto its directory): a rename cannot move it to its rotated name; \
             rotate it where it is mounted from",
            a.path.display()
        )));
    }
    // The rotated names (`base.1`, `base.2.gz`, ...) are built from the name as text: a
    // name that is not UTF-8 would come out as another file's name. Refuse it instead.
    let base = path
        .file_name()
        .context("file name")?
        .to_str()
        .ok_or_else(|| {
            usage(format!(
                "{}: the file name is not UTF-8; iowhy does not rotate it (rename it with mv, then signal the writer)",
                crate::hoststr::for_terminal(&a.path.display().to_string())
            ))
        })?
        .to_string();
    Ok(Log {
        host,
        path,
        md,
        dir,
        base,
    })
}
