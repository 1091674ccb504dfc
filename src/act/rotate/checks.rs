//! What `rotate` refuses before touching anything: a bind-mounted log, a truncate that
//! would hurt a mapper or miss an unseen writer, a signal that would kill a writer.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Result;

use super::RotateOptions;
use crate::act::holders::{self, Holder};
use crate::act::{SignalFate, signal_fate};
use crate::error::usage;
use crate::roots::Roots;

pub(super) fn signame(s: rustix::process::Signal) -> &'static str {
    use rustix::process::Signal;
    match s {
        Signal::HUP => "SIGHUP",
        Signal::USR1 => "SIGUSR1",
        Signal::USR2 => "SIGUSR2",
        _ => "the signal",
    }
}

/// PATH is the root of a mount of its own (a bind-mounted file): a rename cannot move it.
pub(super) fn is_mount_root(
    path: &Path,
    md: &std::fs::Metadata,
    dir_md: &std::fs::Metadata,
) -> bool {
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

/// A truncate in place is only safe when nothing maps the file and every holder is known.
pub(super) fn refuse_truncate(
    roots: &Roots,
    a: &RotateOptions,
    dev: (u32, u32),
    ino: u64,
    held: &holders::Holders,
) -> Result<()> {
    let mapped = crate::act::mappers(roots, dev, ino);
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
pub(super) fn unreadable_maps_note(roots: &Roots, dev: (u32, u32), ino: u64) -> Option<String> {
    let m = crate::act::mappers(roots, dev, ino);
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
pub(super) fn refuse_signal(a: &RotateOptions, ws: &[Holder]) -> Result<()> {
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
