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

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::cli::{Global, emit, parse_duration};
use crate::error::usage;
use crate::roots::Roots;
use crate::units;

use super::holders::{self, Holder, Unknown};
use super::pause::ActFormat;
use super::proc_handle::ProcHandle;
use super::rotated::{self, Gzipped, Rotated, existing, plan, rename_noreplace};
use super::{SignalFate, parse_signal, refuse_unsafe, signal_fate};

#[derive(Args, Debug, Clone)]
pub struct RotateArgs {
    /// The log to rotate (as the host names it).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The signal that makes the writers reopen their log: HUP, USR1 or USR2.
    #[arg(long, default_value = "HUP", value_parser = parse_signal)]
    pub signal: rustix::process::Signal,
    /// Copy and truncate in place instead of renaming (for O_APPEND writers that cannot reopen).
    #[arg(long)]
    pub copytruncate: bool,
    /// If no writer reopens, undo the rename and copytruncate instead (O_APPEND writers only).
    #[arg(long)]
    pub fallback_copytruncate: bool,
    /// Keep N rotated files, like logrotate's `rotate N`: rotations beyond N are removed —
    /// except one still open in a process or whose holders cannot all be checked. This is
    /// the only thing a rotate ever deletes (--compress replaces PATH.N by PATH.N.gz).
    /// Default: keep all.
    #[arg(long, value_name = "N")]
    pub keep: Option<u32>,
    /// gzip rotated files once no process holds them (owner and mode kept).
    #[arg(long)]
    pub compress: bool,
    /// How long to wait for the writers to reopen.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short = 'f', value_enum, default_value_t = ActFormat::Text)]
    pub format: ActFormat,
}

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

fn fd_of(roots: &Roots, pid: u32, dev: u64, ino: u64) -> Option<i32> {
    let rd = std::fs::read_dir(roots.pid_dir(pid).join("fd")).ok()?;
    for f in rd.flatten() {
        if let Ok(m) = std::fs::metadata(f.path()) {
            if m.dev() == dev && m.ino() == ino {
                return f.file_name().to_string_lossy().parse().ok();
            }
        }
    }
    None
}

fn fate_name(f: SignalFate) -> &'static str {
    match f {
        SignalFate::Handled => "handled",
        SignalFate::Ignored => "ignored",
        SignalFate::Default => "default",
    }
}

fn signame(s: rustix::process::Signal) -> &'static str {
    use rustix::process::Signal;
    match s {
        Signal::HUP => "SIGHUP",
        Signal::USR1 => "SIGUSR1",
        Signal::USR2 => "SIGUSR2",
        _ => "the signal",
    }
}

/// PATH is the root of a mount of its own (a bind-mounted file): a rename cannot move it.
fn is_mount_root(path: &Path, md: &std::fs::Metadata, dir_md: &std::fs::Metadata) -> bool {
    if dir_md.dev() != md.dev() {
        return true;
    }
    // A file bind-mounted from the same filesystem has the same st_dev: statx says.
    rustix::fs::statx(
        rustix::fs::CWD,
        path,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        rustix::fs::StatxFlags::BASIC_STATS,
    )
    .is_ok_and(|x| {
        x.stx_attributes_mask
            .contains(rustix::fs::StatxAttributes::MOUNT_ROOT)
            && x.stx_attributes
                .contains(rustix::fs::StatxAttributes::MOUNT_ROOT)
    })
}

pub fn run(g: &Global, a: &RotateArgs) -> Result<()> {
    if g.fixture.is_some() {
        return Err(usage(
            "rotate acts on the live machine; it cannot use --fixture",
        ));
    }
    let roots = g.roots();
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
    let base = path
        .file_name()
        .context("file name")?
        .to_string_lossy()
        .into_owned();
    let dev = (rustix::fs::major(md.dev()), rustix::fs::minor(md.dev()));
    let held = holders::scan(&roots, dev, md.ino(), &host.display().to_string())?;
    let ws = held.writers();
    for w in &ws {
        refuse_unsafe(&roots, &w.target)?;
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
            signal_fate: fate_name(signal_fate(&w.target, signo)),
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
        refuse_truncate(&roots, a, dev, md.ino(), &held)?;
        report
            .notes
            .extend(unreadable_maps_note(&roots, dev, md.ino()));
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
        return dry_run(&roots, a, &dir, &md, &plan, ws.len(), report);
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
        copy_truncate(&roots, &ws, &path, &rotated, &mut report)?;
    } else {
        rename_and_reopen(&roots, a, &path, &rotated, &md, &ws, &mut report)?;
        if !report.all_reopened
            && a.fallback_copytruncate
            && report.writers.iter().all(|w| !w.reopened)
        {
            fallback(&roots, &ws, &path, &rotated, &mut report)?;
        }
    }
    old_files(&roots, a, &dir, &base, &plan.removals, &mut report);
    print(a, &report)
}

/// A truncate in place is only safe when nothing maps the file and every holder is known.
fn refuse_truncate(
    roots: &Roots,
    a: &RotateArgs,
    dev: (u32, u32),
    ino: u64,
    held: &holders::Holders,
) -> Result<()> {
    let mapped = super::mappers(roots, dev, ino);
    if !mapped.pids.is_empty() {
        return Err(usage(format!(
            "{} is mapped into memory by pid(s) {:?}: a truncate would crash them with SIGBUS; rotate by rename",
            a.path.display(),
            mapped.pids
        )));
    }
    // Another user's process (iowhy is not root) could write the log unseen: refuse, root
    // would see it. One that even root cannot read (non-dumpable, another user namespace)
    // stays unknown however iowhy runs; refusing would rule copytruncate out on every such
    // host, so it goes on, and the size check under the freeze refuses the truncate if
    // any byte appears that a frozen writer cannot have written.
    let blocking = held.blocking();
    if !blocking.unknown.is_empty() {
        return Err(usage(format!(
            "{}: copytruncate needs to see every process that holds the log, so that each writer can be stopped for \
             the truncate; these could not be read: {}. Run as root, or rotate by rename",
            a.path.display(),
            blocking.unknown_summary()
        )));
    }
    Ok(())
}

/// Memory maps that could not be read are a caveat, not a refusal: even root may be
/// denied another process's maps (a PID 1 with capabilities iowhy lacks), while its fds
/// show it does not hold the log; a process that maps a log and closes its fd is rare.
fn unreadable_maps_note(roots: &Roots, dev: (u32, u32), ino: u64) -> Option<String> {
    let m = super::mappers(roots, dev, ino);
    (!m.unreadable.is_empty()).then(|| {
        format!(
            "the memory maps of pid(s) {:?} could not be read: if one of them maps the log, the truncate makes its next \
             access to it fail with SIGBUS",
            m.unreadable
        )
    })
}

/// A rename rotation needs writers that handle the signal (the default action of SIGHUP
/// is to terminate), and at least one that will reopen.
fn refuse_signal(a: &RotateArgs, ws: &[Holder]) -> Result<()> {
    let signo = a.signal.as_raw();
    if let Some(w) = ws
        .iter()
        .find(|w| signal_fate(&w.target, signo) == SignalFate::Default)
    {
        return Err(usage(format!(
            "pid {} ({}) does not handle {}: sending it would terminate the process. {}",
            w.pid,
            w.target.comm,
            signame(a.signal),
            if w.append {
                "It writes with O_APPEND: use --copytruncate."
            } else {
                "Restart it yourself after moving the log."
            }
        )));
    }
    if !ws.is_empty()
        && ws
            .iter()
            .all(|w| signal_fate(&w.target, signo) == SignalFate::Ignored)
        && !a.fallback_copytruncate
    {
        return Err(usage(format!(
            "no writer handles {} (they ignore it), so none would reopen the log; use --copytruncate{}",
            signame(a.signal),
            if ws.iter().all(|w| w.append) {
                ""
            } else {
                " (only safe for O_APPEND writers)"
            }
        )));
    }
    Ok(())
}

fn dry_run(
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

enum Kept {
    Open(String),
    Unknown(String),
}

/// Why an old rotation must stay (held open, or holders unknown); `None`: free to go.
fn keep_reason(roots: &Roots, p: &Path) -> Option<Kept> {
    let spelled = roots.host_path_of(p).display().to_string();
    match holders::free(roots, p, &spelled) {
        Ok(()) => None,
        Err(why) if why.starts_with("still open") => Some(Kept::Open(why)),
        Err(why) => Some(Kept::Unknown(why)),
    }
}

/// `--keep` and `--compress` on the old rotations. Problems become notes: the rotation
/// itself is done by now and must not be reported as failed.
fn old_files(
    roots: &Roots,
    a: &RotateArgs,
    dir: &Path,
    base: &str,
    removals: &[String],
    report: &mut RotateReport,
) {
    let host = |p: &Path| roots.host_path_of(p).display().to_string();
    for r in removals {
        let p = dir.join(r);
        match keep_reason(roots, &p) {
            Some(Kept::Open(why)) => {
                report.notes.push(format!("kept {}: {why}", host(&p)));
                report.kept_open.push(host(&p));
            }
            Some(Kept::Unknown(why)) => {
                report.notes.push(format!("kept {}: {why}", host(&p)));
                report.kept_unknown.push(host(&p));
            }
            None => match std::fs::remove_file(&p) {
                Ok(()) => report.removed.push(host(&p)),
                Err(e) => report
                    .notes
                    .push(format!("could not remove {}: {e}", host(&p))),
            },
        }
    }
    if !a.compress {
        return;
    }
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            report.notes.push(format!("not compressing: {e}"));
            return;
        }
    };
    for r in existing(base, &names).into_iter().filter(|r| !r.gz) {
        let p = dir.join(r.name(base));
        match keep_reason(roots, &p) {
            Some(Kept::Open(_)) => {
                report.kept_open.push(host(&p));
                continue;
            }
            Some(Kept::Unknown(_)) => {
                report.kept_unknown.push(host(&p));
                continue;
            }
            None => {}
        }
        let gz = dir.join(Rotated { n: r.n, gz: true }.name(base));
        match rotated::gzip(&p, &gz) {
            Ok(Gzipped::Done(to)) => report.compressed.push(host(&to)),
            Ok(Gzipped::Skipped(why)) => report
                .notes
                .push(format!("not compressed {}: {why}", host(&p))),
            Err(e) => report
                .notes
                .push(format!("not compressed {}: {e:#}", host(&p))),
        }
    }
}

fn rename_and_reopen(
    roots: &Roots,
    a: &RotateArgs,
    path: &Path,
    rotated: &Path,
    md: &std::fs::Metadata,
    ws: &[Holder],
    report: &mut RotateReport,
) -> Result<()> {
    report.mode = "rename".into();
    report.bytes_rotated = md.len();
    rename_noreplace(path, rotated)
        .with_context(|| format!("renaming {} to {}", path.display(), rotated.display()))?;
    // A fresh, empty log with the same owner and mode; O_EXCL: if a writer already
    // recreated it, use that one.
    let new = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(md.mode() & 0o7777)
        .open(path)
    {
        Ok(f) => {
            let _ = rustix::fs::fchown(
                f.as_fd(),
                Some(rustix::fs::Uid::from_raw(md.uid())),
                Some(rustix::fs::Gid::from_raw(md.gid())),
            );
            let _ = f.set_permissions(std::fs::Permissions::from_mode(md.mode() & 0o7777));
            f.metadata()?
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::metadata(path)?,
        Err(e) => return Err(e).with_context(|| format!("creating the new {}", path.display())),
    };
    let mut pids: BTreeSet<u32> = BTreeSet::new();
    for (w, r) in ws.iter().zip(report.writers.iter_mut()) {
        if signal_fate(&w.target, a.signal.as_raw()) != SignalFate::Handled {
            r.note = "ignores the signal: keeps writing to the rotated file".into();
            continue;
        }
        if pids.insert(w.pid) {
            // Through a pidfd, and only if the pid is still the writer iowhy found.
            let sent = ProcHandle::open(roots, w.pid, w.target.start_ticks)
                .and_then(|h| h.signal(a.signal).map_err(|e| e.to_string()));
            if let Err(e) = sent {
                r.note = format!("not signalled: {e}");
                continue;
            }
        }
        r.signalled = true;
    }
    // Verify by inode: each writer holds the new file and no longer the old one.
    let deadline = Instant::now() + a.timeout;
    loop {
        let mut all = true;
        for (w, r) in ws.iter().zip(report.writers.iter_mut()) {
            if r.reopened {
                continue;
            }
            if !roots.pid_dir(w.pid).exists() {
                r.note = "exited".into();
                continue;
            }
            match fd_of(roots, w.pid, new.dev(), new.ino()) {
                Some(fd) => {
                    r.reopened = true;
                    r.new_fd = Some(fd);
                    let still_old = fd_of(roots, w.pid, md.dev(), md.ino());
                    r.note = match still_old {
                        Some(o) => {
                            format!("holds the new log as fd {fd} (and the old one as fd {o})")
                        }
                        None => format!("reopened: now writes fd {fd} of the new log"),
                    };
                }
                None => all = false,
            }
        }
        if all || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let host_rotated = roots.host_path_of(rotated).display().to_string();
    for r in report
        .writers
        .iter_mut()
        .filter(|r| !r.reopened && r.note.is_empty())
    {
        // PATH is now the new, empty log and the writer holds the rotated one: a
        // copytruncate of PATH would do nothing for it.
        r.note = format!(
            "did not reopen within {:?}: it still writes to {host_rotated} (nothing is lost). {}",
            a.timeout,
            if r.append {
                "Restart it to make it write the new log; next time, --fallback-copytruncate puts the log back and \
                 copytruncates when no writer reopens (it uses O_APPEND)."
            } else {
                "Restart it to make it write the new log."
            }
        );
    }
    report.all_reopened = report.writers.iter().all(|w| w.reopened);
    Ok(())
}

/// No writer reopened: put the log back under its name (RENAME_EXCHANGE swaps the two
/// names atomically) and copytruncate it instead — unless someone holds the new file
/// (a slow writer that reopened after the timeout) or holders cannot all be known: then
/// the rename stands, and the new file is never removed.
fn fallback(
    roots: &Roots,
    ws: &[Holder],
    path: &Path,
    rotated: &Path,
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
    copy_truncate(roots, ws, path, rotated, report)
}

fn copy_truncate(
    roots: &Roots,
    ws: &[Holder],
    path: &Path,
    rotated: &Path,
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
    let out = super::copytruncate::run(roots, ws, path, rotated).map_err(|e| {
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
    report.frozen_ms = Some(out.frozen_ms);
    report.rotated_to = Some(roots.host_path_of(rotated).display().to_string());
    report.notes.extend(out.notes);
    Ok(())
}

fn print(a: &RotateArgs, r: &RotateReport) -> Result<()> {
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
