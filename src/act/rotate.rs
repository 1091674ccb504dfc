//! `iowhy rotate PATH`: rotate a live log without losing a line — the seed's `mv` +
//! `touch` + `kill -HUP`, checked at every step:
//! - the writers are found by inode (every process with PATH open for writing);
//! - a writer that does not handle the signal would be *killed* by SIGHUP: refused;
//! - rename (same directory, so same filesystem: the data never moves), create a new PATH
//!   with the old owner and mode, signal the writers, then verify by inode that each now
//!   holds the new file, and report per writer;
//! - `--copytruncate` (only for O_APPEND writers: a writer with its own offset would leave a
//!   sparse file) copies the log while the writers run, then stops them for the final
//!   milliseconds — copy what they added, truncate, resume — so that, unlike logrotate's
//!   copytruncate, no line written during the copy is lost; it reports those bytes.
//!
//! No data is deleted by a rotate; `--keep N` removes rotated files beyond N, never one a
//! process still has open.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::cli::{Global, emit, parse_duration};
use crate::error::usage;
use crate::parse::fdinfo;
use crate::roots::Roots;
use crate::source::{Collector, FdPolicy, Origin, ProcessOptions, SnapshotOptions};
use crate::units;

use super::pause::ActFormat;
use super::{SignalFate, parse_signal, refuse_unsafe, signal_fate, target};

#[derive(Args, Debug, Clone)]
pub struct RotateArgs {
    /// The log to rotate (as the host names it).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The signal that makes the writers reopen their log.
    #[arg(long, default_value = "HUP", value_parser = parse_signal)]
    pub signal: rustix::process::Signal,
    /// Copy and truncate in place instead of renaming (for O_APPEND writers that cannot reopen).
    #[arg(long)]
    pub copytruncate: bool,
    /// If a writer does not reopen, undo the rename and copytruncate instead (O_APPEND writers only).
    #[arg(long)]
    pub fallback_copytruncate: bool,
    /// Keep this many rotated files; older ones not held open are removed (default: keep all).
    #[arg(long)]
    pub keep: Option<u32>,
    /// gzip rotated files once no process holds them.
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
    /// copytruncate: bytes the writers added while the copy ran.
    pub written_during_copy_bytes: Option<u64>,
    /// copytruncate: bytes written between the last copy and the truncate, which the
    /// truncate discarded (0 when the writers could be stopped for it).
    pub at_risk_bytes: Option<u64>,
    pub renamed: Vec<(String, String)>,
    pub removed: Vec<String>,
    pub compressed: Vec<String>,
    pub kept_open: Vec<String>,
    pub writers: Vec<WriterReport>,
    pub all_reopened: bool,
    pub notes: Vec<String>,
}

/// One rotated file: `base.N` or `base.N.gz`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rotated {
    pub n: u32,
    pub gz: bool,
}

impl Rotated {
    pub fn name(&self, base: &str) -> String {
        format!("{base}.{}{}", self.n, if self.gz { ".gz" } else { "" })
    }
}

/// Which rotated files exist, from the names in the log's directory.
pub fn existing(base: &str, names: &[String]) -> Vec<Rotated> {
    let mut v: Vec<Rotated> = names
        .iter()
        .filter_map(|n| {
            let rest = n.strip_prefix(base)?.strip_prefix('.')?;
            let (num, gz) = match rest.strip_suffix(".gz") {
                Some(x) => (x, true),
                None => (rest, false),
            };
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(Rotated {
                n: num.parse().ok()?,
                gz,
            })
        })
        .collect();
    v.sort();
    v
}

/// The renames that make room for `base.1` (highest number first, so nothing is
/// overwritten), and the files beyond `keep` after the shift.
pub fn plan(
    base: &str,
    existing: &[Rotated],
    keep: Option<u32>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut renames = Vec::new();
    let mut after = Vec::new();
    for r in existing.iter().rev() {
        let to = Rotated {
            n: r.n + 1,
            gz: r.gz,
        };
        renames.push((r.name(base), to.name(base)));
        after.push(to);
    }
    let removals = match keep {
        Some(k) => after
            .iter()
            .filter(|r| r.n > k)
            .map(|r| r.name(base))
            .collect(),
        None => Vec::new(),
    };
    (renames, removals)
}

struct Writer {
    pid: u32,
    fd: i32,
    append: bool,
    target: super::Target,
}

/// Every process holding (dev, ino) open for writing.
fn writers(roots: &Roots, dev: (u32, u32), ino: u64) -> Result<Vec<Writer>> {
    let mut c = Collector::new(Origin::Live(roots.clone()))?;
    let s = c.snapshot(&SnapshotOptions {
        processes: Some(ProcessOptions {
            fds: FdPolicy::All,
            threads: false,
            details: false,
            only: None,
        }),
        mounts: false,
        block: false,
        containers: false,
    })?;
    let mut v = Vec::new();
    for p in &s.processes {
        for f in p.fds.iter().flatten() {
            let Some(st) = f.stat else { continue };
            let Some(flags) = f.flags else { continue };
            if (st.dev_major, st.dev_minor) == dev && st.ino == ino && fdinfo::is_writable(flags) {
                if let Ok(t) = target(roots, p.pid) {
                    v.push(Writer {
                        pid: p.pid,
                        fd: f.fd,
                        append: flags & fdinfo::O_APPEND != 0,
                        target: t,
                    });
                }
            }
        }
    }
    Ok(v)
}

/// Is (dev, ino) open in any process (for writing or not)?
fn held_open(roots: &Roots, dev: u64, ino: u64) -> bool {
    let Ok(rd) = std::fs::read_dir(&roots.proc) else {
        return true;
    };
    for e in rd.flatten() {
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for f in fds.flatten() {
            if let Ok(m) = std::fs::metadata(f.path()) {
                if m.dev() == dev && m.ino() == ino {
                    return true;
                }
            }
        }
    }
    false
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
        Signal::INT => "SIGINT",
        Signal::TERM => "SIGTERM",
        _ => "the signal",
    }
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
    let dmd = std::fs::metadata(&dir)?;
    if dmd.dev() != md.dev() {
        return Err(usage(format!(
            "{} is a mount of its own (another filesystem than its directory): a rename cannot move it; rotate it where it is mounted from",
            a.path.display()
        )));
    }
    let base = path
        .file_name()
        .context("file name")?
        .to_string_lossy()
        .into_owned();
    let dev = (rustix::fs::major(md.dev()), rustix::fs::minor(md.dev()));
    let ws = writers(&roots, dev, md.ino())?;
    for w in &ws {
        refuse_unsafe(&roots, &w.target)?;
    }
    let signo = a.signal.as_raw();
    let mut report = RotateReport {
        path: host.display().to_string(),
        dry_run: a.dry_run,
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
    let (renames, removals) = plan(&base, &existing(&base, &names), a.keep);
    report.rotated_to = Some(dir.join(format!("{base}.1")).display().to_string());
    let copytruncate = a.copytruncate;
    if copytruncate || a.fallback_copytruncate {
        let mapped = super::mappers(&roots, dev, md.ino());
        if !mapped.is_empty() {
            return Err(usage(format!(
                "{} is mapped into memory by pid(s) {mapped:?}: a truncate would crash them with SIGBUS; rotate by rename",
                a.path.display()
            )));
        }
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
    }
    if a.dry_run {
        report.mode = if copytruncate {
            "copytruncate"
        } else {
            "rename"
        }
        .into();
        report.renamed = renames
            .iter()
            .map(|(f, t)| {
                (
                    dir.join(f).display().to_string(),
                    dir.join(t).display().to_string(),
                )
            })
            .collect();
        report.removed = removals
            .iter()
            .map(|r| dir.join(r).display().to_string())
            .collect();
        report.bytes_rotated = md.len();
        report.notes.push(if copytruncate {
            "would copy the log to its .1, then stop the writers for the final copy and the truncate (a guardian resumes them)".into()
        } else {
            format!("would rename the log to its .1, create a new one ({:o}, uid {}, gid {}), send {} to {} writer(s) and check each reopened",
                md.mode() & 0o7777, md.uid(), md.gid(), signame(a.signal), ws.len())
        });
        return print(a, &report);
    }
    for (f, t) in &renames {
        rename_noreplace(&dir.join(f), &dir.join(t))
            .with_context(|| format!("renaming {f} to {t}"))?;
        report.renamed.push((
            dir.join(f).display().to_string(),
            dir.join(t).display().to_string(),
        ));
    }
    let rotated = dir.join(format!("{base}.1"));
    if copytruncate {
        copy_truncate(&roots, &ws, &path, &rotated, &mut report)?;
    } else {
        rename_and_reopen(&roots, a, &path, &rotated, &md, &ws, &mut report)?;
        if !report.all_reopened
            && a.fallback_copytruncate
            && report.writers.iter().all(|w| !w.reopened)
        {
            if let Some(w) = ws.iter().find(|w| !w.append) {
                report.notes.push(format!(
                    "no fallback: pid {} does not write with O_APPEND",
                    w.pid
                ));
            } else {
                // Put the log back: swap the names atomically (RENAME_EXCHANGE), so the
                // writers' file is the log again and the new one sits at the rotated name;
                // drop that one only if nobody wrote to it, then copytruncate.
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &rotated,
                    rustix::fs::CWD,
                    &path,
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
                .context("putting the log back for copytruncate")?;
                if std::fs::metadata(&rotated).map(|m| m.len()).unwrap_or(1) == 0 {
                    std::fs::remove_file(&rotated)?;
                    report.notes.push("no writer reopened: the rename was undone and the log copytruncated instead".into());
                    copy_truncate(&roots, &ws, &path, &rotated, &mut report)?;
                } else {
                    report.notes.push(format!(
                        "no fallback: something wrote to the new log meanwhile; it is kept as {}",
                        rotated.display()
                    ));
                }
            }
        }
    }
    // Old files: remove beyond --keep and compress, never one still open.
    let still = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| held_open(&roots, m.dev(), m.ino()))
            .unwrap_or(false)
    };
    for r in &removals {
        let p = dir.join(r);
        if still(&p) {
            report.kept_open.push(p.display().to_string());
        } else if std::fs::remove_file(&p).is_ok() {
            report.removed.push(p.display().to_string());
        }
    }
    if a.compress {
        let names: Vec<String> = std::fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for r in existing(&base, &names).into_iter().filter(|r| !r.gz) {
            let p = dir.join(r.name(&base));
            if still(&p) {
                report.kept_open.push(p.display().to_string());
                continue;
            }
            let gz = dir.join(Rotated { n: r.n, gz: true }.name(&base));
            gzip(&p, &gz)?;
            report.compressed.push(gz.display().to_string());
        }
    }
    print(a, &report)
}

fn rename_and_reopen(
    roots: &Roots,
    a: &RotateArgs,
    path: &Path,
    rotated: &Path,
    md: &std::fs::Metadata,
    ws: &[Writer],
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
            let pid = rustix::process::Pid::from_raw(w.pid as i32).expect("pid > 0");
            if let Err(e) = rustix::process::kill_process(pid, a.signal) {
                r.note = format!("could not signal: {e}");
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
    for r in report
        .writers
        .iter_mut()
        .filter(|r| !r.reopened && r.note.is_empty())
    {
        r.note = format!(
            "did not reopen within {:?}: it still writes to the rotated file (nothing is lost). {}",
            a.timeout,
            if r.append {
                "Retry with --copytruncate (it uses O_APPEND)."
            } else {
                "Restart it to make it reopen."
            }
        );
    }
    report.all_reopened = report.writers.iter().all(|w| w.reopened);
    Ok(())
}

/// Copy the log to `rotated` while the writers run, then stop them for the few
/// milliseconds it takes to copy what they added meanwhile and truncate — so no line
/// written during the copy is lost and none is split (a stopped process is never inside a
/// write). A guardian resumes each writer even if iowhy dies in between.
fn copy_truncate(
    roots: &Roots,
    ws: &[Writer],
    path: &Path,
    rotated: &Path,
    report: &mut RotateReport,
) -> Result<()> {
    let mut src = File::open(path)?;
    let live = OpenOptions::new().write(true).open(path)?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(src.metadata()?.mode() & 0o7777)
        .open(rotated)
        .with_context(|| format!("creating {}", rotated.display()))?;
    let size0 = src.metadata()?.len();
    copy_range(&mut src, &mut dst, 0, size0)?;
    // Freeze the writers for the tail and the truncate.
    let mut stopped = Vec::new();
    let mut guardians = Vec::new();
    let mut pids: BTreeSet<u32> = BTreeSet::new();
    for w in ws {
        if !pids.insert(w.pid) {
            continue;
        }
        match super::guardian::Guardian::spawn(
            super::guardian::Undo::Cont,
            w.pid,
            w.target.start_ticks,
            Duration::from_secs(10),
            None,
            &roots.proc,
        ) {
            Ok(g) => guardians.push(g),
            Err(e) => {
                report.notes.push(format!(
                    "could not guard pid {} ({e:#}): not stopping it",
                    w.pid
                ));
                continue;
            }
        }
        let pid = rustix::process::Pid::from_raw(w.pid as i32).expect("pid > 0");
        if rustix::process::kill_process(pid, rustix::process::Signal::STOP).is_ok() {
            stopped.push(pid);
        }
    }
    let all_stopped = wait_stopped(roots, &stopped, Duration::from_secs(1));
    let tail = (|| -> Result<(u64, u64)> {
        let mut copied = size0;
        loop {
            let size = src.metadata()?.len();
            if size <= copied {
                break;
            }
            copy_range(&mut src, &mut dst, copied, size)?;
            copied = size;
        }
        let before_truncate = src.metadata()?.len();
        live.set_len(0)?;
        Ok((copied, before_truncate))
    })();
    for pid in &stopped {
        let _ = rustix::process::kill_process(*pid, rustix::process::Signal::CONT);
    }
    for g in guardians {
        g.done();
    }
    let (copied, before_truncate) = tail?;
    report.mode = "copytruncate".into();
    report.bytes_rotated = copied;
    report.written_during_copy_bytes = Some(copied.saturating_sub(size0));
    report.at_risk_bytes = Some(before_truncate.saturating_sub(copied));
    report.rotated_to = Some(rotated.display().to_string());
    report.notes.push(if all_stopped {
        format!("the writers were stopped for the final copy and the truncate; {} written during the copy were kept", units::bytes_u(copied - size0))
    } else {
        "a writer could not be stopped in time (in uninterruptible I/O?): lines written between the last copy and the truncate may be lost".into()
    });
    Ok(())
}

fn wait_stopped(roots: &Roots, pids: &[rustix::process::Pid], within: Duration) -> bool {
    let t = Instant::now();
    loop {
        let all = pids.iter().all(|p| {
            std::fs::read_to_string(roots.pid_dir(p.as_raw_nonzero().get() as u32).join("stat"))
                .ok()
                .and_then(|s| crate::parse::pid_stat::parse(&s).ok())
                .is_none_or(|s| s.state == 'T')
        });
        if all || t.elapsed() >= within {
            return all;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// rename(2) that fails instead of replacing an existing file (RENAME_NOREPLACE): a file
/// that appeared in the meantime is never overwritten.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
}

fn copy_range(src: &mut File, dst: &mut File, from: u64, to: u64) -> Result<()> {
    src.seek(SeekFrom::Start(from))?;
    dst.seek(SeekFrom::Start(from))?;
    let mut left = to - from;
    let mut buf = vec![0u8; 1 << 20];
    let cap = buf.len() as u64;
    while left > 0 {
        let n = src.read(&mut buf[..left.min(cap) as usize])?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// gzip `from` into `to` (through a temporary name, synced before the original goes).
fn gzip(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("gz.tmp");
    let mut input = File::open(from)?;
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(input.metadata()?.mode() & 0o7777)
        .open(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    std::io::copy(&mut input, &mut enc)?;
    let out = enc.finish()?;
    out.sync_all()?;
    std::fs::rename(&tmp, to)?;
    std::fs::remove_file(from)?;
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
            if let Some(b) = r.at_risk_bytes {
                o.push_str(&format!(
                    "  written between the last copy and the truncate (lost): {}\n",
                    units::bytes_u(b)
                ));
            }
            for x in &r.removed {
                o.push_str(&format!("  removed {x}\n"));
            }
            for x in &r.compressed {
                o.push_str(&format!("  compressed {x}\n"));
            }
            for x in &r.kept_open {
                o.push_str(&format!("  kept {x}: still open in a process\n"));
            }
            for n in &r.notes {
                o.push_str(&format!("  note: {n}\n"));
            }
            emit(&o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names_and_shifts() {
        let names: Vec<String> = [
            "app.log",
            "app.log.1",
            "app.log.2.gz",
            "app.log.10",
            "app.log.x",
            "app.logs",
            "other.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let e = existing("app.log", &names);
        assert_eq!(
            e,
            vec![
                Rotated { n: 1, gz: false },
                Rotated { n: 2, gz: true },
                Rotated { n: 10, gz: false }
            ]
        );
        let (renames, removals) = plan("app.log", &e, Some(3));
        assert_eq!(
            renames,
            vec![
                ("app.log.10".to_string(), "app.log.11".to_string()),
                ("app.log.2.gz".to_string(), "app.log.3.gz".to_string()),
                ("app.log.1".to_string(), "app.log.2".to_string()),
            ]
        );
        assert_eq!(removals, vec!["app.log.11".to_string()]);
        let (_, none) = plan("app.log", &e, None);
        assert!(none.is_empty(), "nothing is removed without --keep");
    }
}
