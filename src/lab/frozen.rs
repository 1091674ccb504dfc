//! `iowhy lab frozen-fs`: the lab's own loop-device filesystem frozen (the `FIFREEZE`
//! ioctl, which is what `fsfreeze -f` does), with a writer blocked on it and a process
//! whose mmap_lock is held behind a page fault on it — reading that process's
//! `/proc/PID/cmdline` then blocks, the classic `ps` hang.
//!
//! Bounded: a [`Thaw`] guard thaws the filesystem when it goes, on every way out of the
//! scenario (the end of the duration, a signal, an error), before any worker is stopped
//! (a task waiting for a frozen filesystem cannot die, not even of SIGKILL). `lab.json`
//! records the freeze so that `iowhy lab cleanup` thaws after a SIGKILL of the lab.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::stage::Stage;
use super::worker::WorkerKind;
use super::{Worker, spawn, spawn_with};

/// `_IOWR('X', 119, int)` and `_IOWR('X', 120, int)` from include/uapi/linux/fs.h (the
/// libc crate does not define them). The ioctl needs no util-linux and no child process,
/// which matters on the cleanup paths.
const FIFREEZE: libc::c_ulong = 0xC004_5877;
const FITHAW: libc::c_ulong = 0xC004_5878;

/// How long each step may take before the scenario gives up (and thaws).
const STEP_LIMIT: Duration = Duration::from_secs(5);
/// The writer's pace: enough to be caught in the act, little enough to freeze quickly.
const WRITER_LINES_PER_S: u64 = 50;
/// The mapped file: a few pages.
const MAPPED_BYTES: usize = 64 << 10;

fn ioctl_dir(dir: &Path, request: libc::c_ulong) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    // Never through a symlink: the lab names its own mountpoint.
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut arg: libc::c_int = 0;
    // SAFETY: FIFREEZE/FITHAW take an int argument (unused) on a valid descriptor.
    let r = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), request as _, &mut arg) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Freeze the filesystem mounted on `dir` (syncs it first; new writes then wait).
pub fn freeze(dir: &Path) -> std::io::Result<()> {
    ioctl_dir(dir, FIFREEZE)
}

/// Thaw it. `Ok(false)`: it was not frozen (the kernel answers EINVAL).
pub fn thaw(dir: &Path) -> std::io::Result<bool> {
    match ioctl_dir(dir, FITHAW) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Thaws the lab's filesystem when dropped.
pub(super) struct Thaw(PathBuf);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = thaw(&self.0);
    }
}

/// What the scenario started. `thaw` is declared first so that it is dropped first.
pub(super) struct Started {
    pub thaw: Thaw,
    pub workers: Vec<Worker>,
    pub writer_pid: u32,
    pub mmap_pid: u32,
    pub note: String,
}

fn state_of(pid: u32) -> Option<char> {
    let p = crate::roots::Roots::default().pid_dir(pid).join("stat");
    let mut r = crate::source::reader::Reader::live(crate::roots::Roots::default());
    let text = r.read_path(&p).ok()?;
    crate::parse::pid_stat::parse(&text).ok().map(|s| s.state)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let until = Instant::now() + STEP_LIMIT;
    while !done() {
        if Instant::now() > until {
            bail!("frozen-fs: {what} did not happen within {STEP_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// One line from a worker's stdout, or an error after `limit`.
fn read_line_within(out: &mut ChildStdout, limit: Duration) -> Result<String> {
    use rustix::event::{PollFd, PollFlags};
    let until = Instant::now() + limit;
    let mut buf = Vec::new();
    while !buf.contains(&b'\n') {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no word from the worker within {limit:?}");
        }
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        let fd = out.as_fd();
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let mut chunk = [0u8; 256];
        match out.read(&mut chunk)? {
            0 => bail!("the worker exited"),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(String::from_utf8_lossy(&buf).trim().to_string())
}

/// Start the writer in `files` (on the lab's filesystem), freeze the filesystem, start
/// the mmap-stuck process; return once both are blocked.
pub(super) fn start(st: &mut Stage, files: &Path) -> Result<Started> {
    let dir = st.dir.clone();
    if st.loop_dev.is_none() {
        bail!("frozen-fs freezes only a loop-device filesystem of the lab's own");
    }
    let log = files.join("output.log");
    let mapped = files.join("mapped.bin");
    // The mapped file is made now: nothing can be created once the filesystem is frozen.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&mapped)
        .with_context(|| mapped.display().to_string())?;
    f.write_all(&[b'm'; MAPPED_BYTES])?;
    f.sync_all()?;
    drop(f);
    // Declared before the guard: on an error below, the thaw comes before the workers go.
    let mut workers = Vec::new();
    let extra = vec![
        "--rate".into(),
        WRITER_LINES_PER_S.to_string(),
        "--max-bytes".into(),
        "16M".into(),
    ];
    workers.push(spawn(
        WorkerKind::FsyncLogger,
        &log,
        "lab-frozen-wr",
        &extra,
    )?);
    let writer_pid = workers[0].child.id();
    // Freeze once the writer has its file open and is writing, so that it is caught in
    // write(2), not in open(2).
    wait_for("the writer's first line", || {
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0)
    })?;
    st.frozen = Some(dir.clone());
    st.persist();
    freeze(&dir).with_context(|| format!("freezing {}", dir.display()))?;
    let thaw = Thaw(dir.clone());
    wait_for("the writer blocking (D)", || {
        state_of(writer_pid) == Some('D')
    })?;
    let mut mm = spawn_with(
        WorkerKind::MmapStuck,
        &mapped,
        "lab-mmap-stuck",
        &[],
        Stdio::null(),
        Stdio::piped(),
    )?;
    let mmap_pid = mm.child.id();
    let out = mm.child.stdout.take();
    workers.push(mm);
    let line = read_line_within(&mut out.context("the worker's stdout")?, STEP_LIMIT)
        .context("frozen-fs: waiting for the mmap_lock to be held")?;
    if !line.starts_with("stuck ") {
        bail!("frozen-fs: the mmap worker said {line:?}");
    }
    let note = format!(
        "{} is frozen (FIFREEZE, as fsfreeze -f): pid {writer_pid} waits in write(2) \
         (sb_start_write); pid {mmap_pid} has a page fault on a MAP_SHARED mapping of {} \
         waiting for the thaw and an mprotect holding its mmap_lock behind it, so reading \
         /proc/{mmap_pid}/cmdline blocks (ps, top, pgrep); thawed at the end",
        dir.display(),
        mapped.display()
    );
    Ok(Started {
        thaw,
        workers,
        writer_pid,
        mmap_pid,
        note,
    })
}
