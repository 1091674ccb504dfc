//! The processes a lab starts (`iowhy lab-worker KIND ...`, hidden). Each is a separate
//! process with its own name (comm), so that diagnose sees a writer other than itself;
//! each dies with its lab (PR_SET_PDEATHSIG) and bounds what it writes.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::units::parse_bytes;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkerKind {
    /// Append a ~40-byte log line and sync it, forever.
    FsyncLogger,
    /// Append 1 MiB chunks until the filesystem is full, then hold the file open.
    DiskFill,
    /// Write a file, delete it, keep it open.
    DeletedOpen,
    /// Buffered writes as fast as possible, never synced.
    BufferedFlood,
    /// Log lines to stdout (a pipe), forever: blocks when nobody drains it.
    PipeWriter,
    /// Hold stdin (a pipe's read end) and drain it, or with --idle never read it.
    PipeReader,
    /// O_DIRECT writes of 1 MiB as fast as possible, rewinding at --max-bytes (a `dd
    /// oflag=direct` that never ends, for the throttle tests).
    DirectWriter,
    /// Numbered lines ("0", "1", ...) as fast as possible with O_APPEND; what SIGHUP does
    /// is set by --on-hup (for the rotate tests: every number must survive rotations).
    NumberedLogger,
    /// Map --path (MAP_SHARED) and write to it from one thread while the filesystem is
    /// frozen, then change the mapping from a second thread: the process's mmap_lock is
    /// then held behind a page fault that waits for the thaw (frozen-fs).
    MmapStuck,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnHup {
    /// Reopen the log by name, like a well-behaved daemon.
    Reopen,
    /// Ignore the signal (SIG_IGN): keeps writing to the file it has.
    Ignore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    Fsync,
    Fdatasync,
    SyncFileRange,
    /// Open with O_DSYNC: every write is synchronous, no explicit sync call.
    ODsync,
    /// No sync at all (a buffered writer).
    None,
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    #[arg(value_enum)]
    pub kind: WorkerKind,
    #[arg(long)]
    pub path: PathBuf,
    /// Bytes per second (disk-fill, deleted-open growth) or lines per second (fsync-logger); 0 = unlimited.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Size cap: fsync-logger truncates its log (O_APPEND keeps that safe), buffered-flood
    /// rewinds, deleted-open writes this much before deleting.
    #[arg(long, default_value = "64M", value_parser = parse_bytes)]
    pub max_bytes: u64,
    #[arg(long, value_enum, default_value_t = SyncMode::Fsync)]
    pub sync: SyncMode,
    /// disk-fill stops writing at this use % of its filesystem.
    #[arg(long, default_value_t = 99.0)]
    pub fill_to_pct: f64,
    /// The process name (comm) to take.
    #[arg(long)]
    pub name: Option<String>,
    /// pipe-reader: hold the read end but never read.
    #[arg(long)]
    pub idle: bool,
    /// fsync-logger: write exactly this many lines, then idle with the file open (0 = forever).
    #[arg(long, default_value_t = 0)]
    pub lines: u64,
    /// numbered-logger: what to do on SIGHUP.
    #[arg(long, value_enum, default_value_t = OnHup::Reopen)]
    pub on_hup: OnHup,
    /// numbered-logger: the first number (two loggers on one file count apart).
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    /// numbered-logger: write from this many threads, sharing one counter and one file.
    #[arg(long, default_value_t = 1)]
    pub threads: u32,
    /// Wait this long before the first write (lets tracers attach first).
    #[arg(long, default_value = "0s", value_parser = crate::units::parse_duration)]
    pub start_after: Duration,
}

pub fn run(a: &WorkerArgs) -> Result<()> {
    // Die with the lab that started us, even if it is killed with SIGKILL.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if rustix::process::getppid().is_none_or(|p| p.as_raw_nonzero().get() == 1) {
        return Ok(());
    }
    if let Some(n) = &a.name {
        let _ = rustix::thread::set_name(&std::ffi::CString::new(
            n.as_bytes().iter().take(15).copied().collect::<Vec<u8>>(),
        )?);
    }
    if let Some(parent) = a.path.parent() {
        // Only when missing: mkdir(2) waits for a frozen filesystem even if the directory
        // exists (it takes write access to the mount before looking the name up).
        if !parent.is_dir() {
            std::fs::create_dir_all(parent)?;
        }
    }
    std::thread::sleep(a.start_after);
    match a.kind {
        WorkerKind::FsyncLogger => fsync_logger(a),
        WorkerKind::DiskFill => disk_fill(a),
        WorkerKind::DeletedOpen => deleted_open(a),
        WorkerKind::BufferedFlood => buffered_flood(a),
        WorkerKind::PipeWriter => pipe_writer(),
        WorkerKind::PipeReader => pipe_reader(a),
        WorkerKind::NumberedLogger => numbered_logger(a),
        WorkerKind::DirectWriter => direct_writer(a),
        WorkerKind::MmapStuck => mmap_stuck(a),
    }
}

/// Sleep so that `done` items take at least `done / rate` seconds.
fn pace(start: Instant, done: u64, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(done as f64 / rate as f64);
    let el = start.elapsed();
    if due > el {
        std::thread::sleep(due - el);
    }
}

fn utc_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

fn fsync_logger(a: &WorkerArgs) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.append(true).create(true).mode(0o644);
    if a.sync == SyncMode::ODsync {
        opts.custom_flags(libc::O_DSYNC);
    }
    let mut f = opts
        .open(&a.path)
        .with_context(|| a.path.display().to_string())?;
    let start = Instant::now();
    let mut n: u64 = 0;
    let mut size: u64 = f.metadata()?.len();
    loop {
        // The seed's line: "[2025-05-06T10:04:31Z] Processed 1234 rows\n".
        let line = format!("[{}] Processed {} rows\n", utc_now(), n % 10000);
        f.write_all(line.as_bytes())?;
        size += line.len() as u64;
        match a.sync {
            SyncMode::Fsync => rustix::fs::fsync(&f)?,
            SyncMode::Fdatasync => rustix::fs::fdatasync(&f)?,
            SyncMode::SyncFileRange => {
                // SAFETY: plain syscall on a valid fd.
                let r = unsafe {
                    libc::sync_file_range(
                        std::os::fd::AsRawFd::as_raw_fd(&f),
                        0,
                        0,
                        libc::SYNC_FILE_RANGE_WAIT_BEFORE
                            | libc::SYNC_FILE_RANGE_WRITE
                            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                    )
                };
                if r != 0 {
                    return Err(std::io::Error::last_os_error().into());
                }
            }
            SyncMode::ODsync | SyncMode::None => {}
        }
        n += 1;
        if a.lines > 0 && n >= a.lines {
            // Done: keep the file open and idle, so tracers can be stopped at leisure.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if size >= a.max_bytes {
            // O_APPEND writes always go to the end, so truncating cannot leave a hole.
            f.set_len(0)?;
            size = 0;
        }
        pace(start, n, a.rate);
    }
}

fn use_pct(path: &std::path::Path) -> f64 {
    match rustix::fs::statvfs(path) {
        Ok(v) if v.f_blocks > 0 => {
            let used = v.f_blocks - v.f_bfree;
            used as f64 * 100.0 / (used + v.f_bavail).max(1) as f64
        }
        _ => 0.0,
    }
}

fn disk_fill(a: &WorkerArgs) -> Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(&a.path)?;
    let dir = a
        .path
        .parent()
        .unwrap_or(std::path::Path::new("/"))
        .to_path_buf();
    let chunk = vec![b'x'; 1 << 20];
    let rate = if a.rate == 0 { 16 << 20 } else { a.rate };
    let start = Instant::now();
    let mut written: u64 = 0;
    loop {
        if use_pct(&dir) < a.fill_to_pct {
            match f.write_all(&chunk) {
                Ok(()) => written += chunk.len() as u64,
                // Full: hold the file open and keep trying slowly, like a real logger.
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(e) => return Err(e.into()),
            }
            pace(start, written, rate);
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn deleted_open(a: &WorkerArgs) -> Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(&a.path)?;
    let chunk = vec![b'y'; 1 << 20];
    let mut written = 0;
    while written < a.max_bytes {
        f.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    rustix::fs::fsync(&f)?;
    std::fs::remove_file(&a.path)?;
    // Keep it open, still writing a little: the space stays allocated and grows.
    let per_s = if a.rate == 0 { 4096 } else { a.rate } as usize;
    let small = vec![b'z'; per_s];
    loop {
        std::thread::sleep(Duration::from_secs(1));
        f.write_all(&small)?;
    }
}

fn buffered_flood(a: &WorkerArgs) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&a.path)?;
    let chunk = vec![b'f'; 1 << 20];
    let start = Instant::now();
    let mut pos: u64 = 0;
    let mut total: u64 = 0;
    loop {
        f.write_all(&chunk)?;
        pos += chunk.len() as u64;
        total += chunk.len() as u64;
        if pos >= a.max_bytes {
            // Rewrite from the start: keeps dirtying pages without growing past the cap.
            f.seek(SeekFrom::Start(0))?;
            pos = 0;
        }
        pace(start, total, a.rate);
    }
}

/// Write log lines to stdout until it breaks (EPIPE) or we are stopped. Blocking in
/// write(2) when the pipe is full is the point.
fn pipe_writer() -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mut n: u64 = 0;
    loop {
        let line = format!(
            "[{}] request {n} handled (iowhy lab pipe-block)\n",
            utc_now()
        );
        if out.write_all(line.as_bytes()).is_err() {
            return Ok(());
        }
        n += 1;
    }
}

/// Drain stdin, or (--idle) hold it and never read.
fn pipe_reader(a: &WorkerArgs) -> Result<()> {
    use std::io::Read;
    if a.idle {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    let mut buf = vec![0u8; 4096];
    let mut input = std::io::stdin().lock();
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn numbered_logger(a: &WorkerArgs) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, RwLock};
    let hup = Arc::new(AtomicBool::new(false));
    // SIGTERM: every thread finishes the line it took a number for, then the process
    // exits — so that a test can check that no number is missing (SIGKILL would leave
    // one taken but unwritten per thread).
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&term))?;
    match a.on_hup {
        OnHup::Reopen => {
            signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
        }
        OnHup::Ignore => {
            // SAFETY: setting a disposition to SIG_IGN.
            unsafe {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
            }
        }
    }
    let open = || {
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&a.path)
    };
    let file = Arc::new(RwLock::new(open()?));
    let next = Arc::new(AtomicU64::new(a.first));
    let start = Instant::now();
    let rate = a.rate;
    let first = a.first;
    let write_lines = {
        let (file, next, hup, term) = (file.clone(), next.clone(), hup.clone(), term.clone());
        let open = &open;
        move || -> Result<()> {
            let mut line = String::with_capacity(24);
            while !term.load(Ordering::Relaxed) {
                if hup.swap(false, Ordering::Relaxed) {
                    // Reopen by name: after a rename the name is the new, empty file.
                    let f = open()?;
                    *file.write().expect("not poisoned") = f;
                }
                let f = file.read().expect("not poisoned");
                let n = next.fetch_add(1, Ordering::Relaxed);
                line.clear();
                use std::fmt::Write as _;
                let _ = writeln!(line, "{n}");
                // One write(2) per line: nothing sits in a user-space buffer, and with
                // O_APPEND lines from several threads never overlap.
                (&*f).write_all(line.as_bytes())?;
                drop(f);
                pace(start, n + 1 - first, rate);
            }
            Ok(())
        }
    };
    std::thread::scope(|s| {
        let extra: Vec<_> = (1..a.threads.max(1))
            .map(|_| s.spawn(write_lines.clone()))
            .collect();
        let r = write_lines();
        for t in extra {
            t.join().expect("writer thread")?;
        }
        r
    })
}

fn direct_writer(a: &WorkerArgs) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    const CHUNK: usize = 1 << 20;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_DIRECT)
        .open(&a.path)?;
    // O_DIRECT needs a buffer aligned to the logical block size: 4096 covers every disk.
    let layout = std::alloc::Layout::from_size_align(CHUNK, 4096)?;
    // SAFETY: a fresh zeroed allocation of CHUNK bytes, freed never (the worker runs until killed).
    let buf = unsafe { std::slice::from_raw_parts(std::alloc::alloc_zeroed(layout), CHUNK) };
    let cap = a.max_bytes.max(CHUNK as u64);
    // Allocate the whole file first: the writes then rewrite blocks in place and the
    // filesystem does not grow (this worker loads a disk, it does not fill one).
    rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, cap)?;
    let start = Instant::now();
    let mut pos = 0u64;
    let mut total = 0u64;
    loop {
        f.write_all(buf)?;
        pos += CHUNK as u64;
        total += CHUNK as u64;
        if pos >= cap {
            f.seek(SeekFrom::Start(0))?;
            pos = 0;
        }
        pace(start, total, a.rate);
    }
}

/// One letter of `/proc/self/task/TID/stat` (R, S, D, ...). Reading a task's stat does
/// not take the mmap_lock, so it works while this process's lock is held.
fn task_state(tid: i32) -> Option<char> {
    let p = crate::roots::Roots::default().proc(&format!("self/task/{tid}/stat"));
    let mut r = crate::source::reader::Reader::live(crate::roots::Roots::default());
    let text = r.read_path(&p).ok()?;
    crate::parse::pid_stat::parse(&text).ok().map(|s| s.state)
}

/// Wait until thread `tid` sleeps uninterruptibly (D), for at most 5 s.
fn wait_until_d(tid: i32, what: &str) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(5);
    while task_state(tid) != Some('D') {
        if Instant::now() > until {
            anyhow::bail!(
                "thread {tid} ({what}) is not blocked after 5 s: is the filesystem frozen?"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The `ps` hang: a page fault waiting for a frozen filesystem, with the mmap_lock taken
/// for writing behind it.
///
/// On 6.18 a file page fault runs under the per-VMA lock, not the mmap_lock: the writing
/// thread sleeps in `ext4_page_mkwrite` → `sb_start_pagefault` (`percpu_rwsem_wait`)
/// holding only its VMA's read lock, so readers of the mmap_lock still pass. The second
/// thread's `mprotect(PROT_READ)` takes `mmap_write_lock` and then waits for that VMA
/// (`__vma_start_write`) while holding it; from then on every `mmap_read_lock` of this
/// process waits too, and `/proc/PID/cmdline` (`access_remote_vm`) blocks. `munmap`
/// blocks the same way, but the fault then retries on a hole and the process dies of
/// SIGSEGV at the thaw.
/// Checked with `timeout 2 cat /proc/PID/cmdline` (times out; `stat` and `status` do not).
/// With the thaw the fault finishes first, then the mprotect, and the process idles.
fn mmap_stuck(a: &WorkerArgs) -> Result<()> {
    use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
    // The lab made the file before freezing; opening it for writing (no O_CREAT, no
    // O_TRUNC, noatime) does not wait for the frozen filesystem.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&a.path)
        .with_context(|| a.path.display().to_string())?;
    let len = usize::try_from(f.metadata()?.len())?.clamp(1, 1 << 20);
    // SAFETY: a fresh shared mapping of a file we hold open; it is never unmapped, and the
    // only accesses are one volatile byte write below.
    let addr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            &f,
            0,
        )?
    } as usize;
    let (tx, rx) = std::sync::mpsc::channel();
    let fault_tx = tx.clone();
    std::thread::spawn(move || {
        let _ = fault_tx.send(rustix::thread::gettid().as_raw_nonzero().get());
        // SAFETY: `addr` is the start of the mapping above, which is never unmapped.
        unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
    });
    let faulting = rx.recv()?;
    wait_until_d(faulting, "page fault")?;
    std::thread::spawn(move || {
        let _ = tx.send(rustix::thread::gettid().as_raw_nonzero().get());
        // SAFETY: changes the protection of our own mapping; the only other access to it
        // is the faulting write, which the kernel lets finish first.
        let _ = unsafe { rustix::mm::mprotect(addr as *mut _, len, MprotectFlags::READ) };
    });
    let locker = rx.recv()?;
    wait_until_d(locker, "mprotect")?;
    // Tell the lab (stdout is a pipe to it) that the lock is now held.
    let mut out = std::io::stdout().lock();
    writeln!(out, "stuck {faulting} {locker}")?;
    out.flush()?;
    drop(out);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}
