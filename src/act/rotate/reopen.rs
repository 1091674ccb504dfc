//! The rename path: move the log to its `.1`, create a new one with the old owner and
//! mode, signal the writers, and verify by inode that each reopened.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::{RotateOptions, RotateReport};
use crate::act::holders::Holder;
use crate::act::proc_handle::ProcHandle;
use crate::act::rotated::rename_noreplace;
use crate::act::{SignalFate, signal_fate};
use crate::roots::Roots;

/// The fd on which `pid` holds the file (dev, ino), through the reader: stat through
/// each fd link from cached attributes, so a holder with a file on a hung mount cannot
/// block the verification loop.
pub(super) fn fd_of(roots: &Roots, pid: u32, dev: u64, ino: u64) -> Option<i32> {
    let mut r = crate::source::reader::Reader::live(roots.clone());
    let fd_dir = r.open_dir(&roots.pid_dir(pid).join("fd")).ok()?;
    let mut fds = Vec::new();
    r.for_each_entry(&fd_dir, |n| fds.push(n.to_owned())).ok()?;
    fds.into_iter().find_map(|n| {
        let st = r.stat_fd(pid, &fd_dir, &n).ok()?;
        let same = rustix::fs::makedev(st.dev_major, st.dev_minor) == dev && st.ino == ino;
        same.then(|| n.to_str().ok()?.parse().ok()).flatten()
    })
}

pub(super) fn rename_and_reopen(
    roots: &Roots,
    a: &RotateOptions,
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
    let deadline = Instant::now()
        .checked_add(a.timeout)
        .unwrap_or_else(Instant::now);
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
