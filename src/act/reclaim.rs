//! `iowhy reclaim PID FD`: free the space of a deleted file that a process still holds
//! open — the df/du gap — by truncating it through `/proc/PID/fd/FD`, without stopping the
//! process. Refuses anything that is not a deleted regular file: a file that still has a
//! name is reached, and rotated, by its name.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::error::usage;
use crate::roots::Roots;
use crate::units;
pub use crate::wire::act::ReclaimReport;

use super::{confirm, refuse_unsafe, target};

/// Which fd of which process to truncate, and how to ask.
#[derive(Debug, Clone)]
pub struct ReclaimOptions {
    pub pid: u32,
    pub fd: i32,
    /// Truncate without asking.
    pub yes: bool,
    /// Say what would be freed, and do nothing.
    pub dry_run: bool,
}

/// Open the fd's file for the truncate — after the prompt, which may have taken minutes:
/// the process must still be the one shown (same start time, checked around the open so
/// a reused pid is caught) and the fd must still hold the very deleted file shown (same
/// dev and inode, no name): a process that dup2()ed a live file onto the fd meanwhile
/// would otherwise have it truncated by root.
fn reopen_checked(
    roots: &Roots,
    t: &super::Target,
    fd: i32,
    shown: &std::fs::Metadata,
) -> Result<std::fs::File> {
    let refused = |why: String| {
        usage(format!(
            "not truncated: {why}. Nothing was changed; run iowhy reclaim again to see what the fd holds now"
        ))
    };
    super::proc_handle::ProcHandle::open(roots, t.pid, t.start_ticks).map_err(refused)?;
    let link = roots.fd_link(t.pid, fd);
    // Opening the magic link opens the file itself, deleted or not; the holder keeps
    // its own fd and offset (an O_APPEND writer continues at the new end). O_NONBLOCK:
    // if the fd is a FIFO by now, the open must not wait for a reader.
    let f = rustix::fs::open(
        &link,
        rustix::fs::OFlags::WRONLY
            | rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::NOCTTY
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map(std::fs::File::from)
    .map_err(|e| refused(format!("opening {}: {e}", link.display())))?;
    if super::proc_handle::start_ticks_of(roots, t.pid).ok() != Some(t.start_ticks) {
        return Err(refused(format!(
            "pid {} exited or is another process now (its start time changed)",
            t.pid
        )));
    }
    let now = f.metadata()?;
    if !now.is_file() || (now.dev(), now.ino()) != (shown.dev(), shown.ino()) {
        return Err(refused(format!(
            "fd {fd} of pid {} holds another file than the one shown (it was replaced meanwhile, by dup2 or close and open)",
            t.pid
        )));
    }
    if now.nlink() > 0 {
        return Err(refused(format!(
            "the file on fd {fd} of pid {} has a name again ({} link(s)): rotate it by name",
            t.pid,
            now.nlink()
        )));
    }
    Ok(f)
}

/// Truncate the deleted file on the fd (after the checks and the prompt) and report what
/// was freed; with `dry_run`, only what would be. The caller prints the report.
pub fn reclaim(roots: &Roots, a: &ReclaimOptions) -> Result<ReclaimReport> {
    let t = target(roots, a.pid)?;
    refuse_unsafe(roots, &t)?;
    let link = roots.fd_link(a.pid, a.fd);
    let name = fd_target(roots, a)?;
    let md = deleted_unmapped(roots, a, &name, &link)?;
    let path = name.trim_end_matches(" (deleted)").to_string();
    let warning = format!(
        "the file has no name, so no other process can open it; but pid {} ({}) may still read its own data back (a database's \
         temporary file, say): truncating it then breaks that process. Log files are safe to truncate.",
        t.pid, t.comm
    );
    let avail = || {
        rustix::fs::fstatvfs(
            rustix::fs::open(
                &link,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok()?,
        )
        .ok()
        .map(|v| v.f_bavail.saturating_mul(v.f_frsize))
    };
    let mut r = ReclaimReport {
        pid: t.pid,
        comm: t.comm.clone(),
        fd: a.fd,
        path,
        dry_run: a.dry_run,
        size_bytes: md.len(),
        allocated_before_bytes: md.blocks() * 512,
        allocated_after_bytes: md.blocks() * 512,
        freed_bytes: 0,
        filesystem_avail_before_bytes: avail(),
        filesystem_avail_after_bytes: None,
        warning,
    };
    if !a.dry_run {
        confirm(
            &format!(
                "Truncate deleted {} ({}) held by pid {} ({}) fd {}?",
                r.path,
                units::bytes_u(r.allocated_before_bytes),
                t.pid,
                t.comm,
                a.fd
            ),
            a.yes,
        )?;
        super::test_sync("reclaim-confirmed");
        let f = reopen_checked(roots, &t, a.fd, &md)?;
        f.set_len(0).context("truncating")?;
        let after = f.metadata()?;
        r.allocated_after_bytes = after.blocks() * 512;
        r.freed_bytes = r
            .allocated_before_bytes
            .saturating_sub(r.allocated_after_bytes);
        r.filesystem_avail_after_bytes = avail();
    }
    Ok(r)
}

/// What the fd points at, as /proc/PID/fd/N reads.
fn fd_target(roots: &Roots, a: &ReclaimOptions) -> Result<String> {
    let name = {
        let mut r = crate::source::reader::Reader::live(roots.clone());
        let fd_name = std::ffi::CString::new(a.fd.to_string()).context("fd number")?;
        r.open_dir(&roots.pid_dir(a.pid).join("fd"))
            .and_then(|dir| r.readlink_at(&dir, &fd_name))
    }
    .map_err(|e| {
        if e.is_not_found() {
            usage(format!("pid {} has no fd {}", a.pid, a.fd))
        } else if e.is_permission() {
            usage(format!(
                "the fds of pid {} may not be read by iowhy ({e}): run as root",
                a.pid
            ))
        } else {
            anyhow::Error::new(e)
        }
    })?;
    Ok(name)
}

/// The file on the fd, after the refusals: a regular file, deleted, and mapped by no one.
fn deleted_unmapped(
    roots: &Roots,
    a: &ReclaimOptions,
    name: &str,
    link: &Path,
) -> Result<std::fs::Metadata> {
    let link = link.to_path_buf();
    // stat through the link with a deadline: a file on a hung mount must not hang us.
    let deadline = crate::source::reader::guard::default_deadline();
    let l = link.clone();
    let md = crate::source::reader::guard::call(deadline, move || std::fs::metadata(&l))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: stat did not answer within {} ms: the file's filesystem does not respond",
                link.display(),
                deadline.as_millis()
            )
        })?
        .with_context(|| link.display().to_string())?;
    if !md.is_file() {
        return Err(usage(format!(
            "fd {} of pid {} is {name}, not a regular file",
            a.fd, a.pid
        )));
    }
    if md.nlink() > 0 {
        return Err(usage(format!(
            "{name} is not deleted (it still has {} name(s)): rotate it by name instead (iowhy rotate PATH)",
            md.nlink()
        )));
    }
    let dev = (rustix::fs::major(md.dev()), rustix::fs::minor(md.dev()));
    let mapped = super::mappers(roots, dev, md.ino()).pids;
    if !mapped.is_empty() {
        return Err(usage(format!(
            "{name} is mapped into memory by pid(s) {mapped:?}: truncating it would crash them with SIGBUS on their next access"
        )));
    }
    Ok(md)
}
