//! Reading a traced process's memory (`process_vm_readv(2)`): syscall tracepoints give the
//! *address* of an open's path, not the path. Read right after the event, while the
//! process still runs, the string is there (the kernel has just read it from the same
//! place). Needs the right to ptrace the process (root, CAP_SYS_PTRACE); without it the
//! caller falls back to /proc. Hand-written on libc: no maintained crate wraps this call.
//!
//! The call takes the target's `mmap_lock` for reading, and not killably: when a writer
//! of that lock waits behind a page fault that never ends (a frozen or dead filesystem),
//! the caller sleeps in D with it and no signal wakes it. So [`MemReader`] never reads a
//! task the kernel shows in D on its memory map, and makes the calls on a worker thread
//! it waits for only
//! [`READ_DEADLINE`]: a worker that misses it is abandoned, and while it is stuck no
//! other read is tried. The window and the report go on; what cannot be helped is that a
//! thread in D holds up the end of the process (exit waits for every thread) until the
//! stuck I/O ends.

use std::sync::mpsc;
use std::time::Duration;

use crate::roots::Roots;
use crate::source::reader::Reader;

/// PATH_MAX from the kernel's limits.h: no path an open accepts is longer.
const PATH_MAX: usize = 4096;

/// How long a read of another process's memory may take before it is given up. A read
/// that is not blocked takes a few µs; an open's exit comes within tens of µs, so a path
/// not read by then is of little use anyway.
pub const READ_DEADLINE: Duration = Duration::from_millis(300);

/// Make the reads on the worker, with the deadline. Off for now: on the loaded 2-CPU VM,
/// with the worker, the live test `files_that_reuse_an_fd_number...` named 7 and 2 of 20
/// opens of a tight open/write/fsync/close loop under perf (it needs 15); reading here
/// it passed once and named 12 once, so the test is also load-sensitive, and the cause
/// is not found yet. Until it is, the reads are made here, after the check for a task
/// in D on its memory map; the worker and its deadline are tested as units.
const READ_ON_WORKER: bool = false;

/// Why a read failed, as far as the caller cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadErr {
    /// Not allowed (EPERM): no read of any process will work.
    Denied,
    /// The process is gone, or the address is not mapped.
    Gone,
    /// The task was in uninterruptible sleep (D): reading its memory could block us.
    Uninterruptible,
    /// The read of this pid's memory did not finish within [`READ_DEADLINE`] (or an
    /// earlier one has not yet): not tried.
    Blocked { pid: u32 },
}

/// Read up to `buf.len()` bytes at `addr` of process (or thread) `pid`: how many were read.
/// Can block without end (see the module doc): [`MemReader`] calls it.
pub fn read(pid: u32, addr: u64, buf: &mut [u8]) -> Result<usize, ReadErr> {
    if addr == 0 || buf.is_empty() {
        return Err(ReadErr::Gone);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes our own writable buffer; the kernel checks `remote`.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EPERM) => ReadErr::Denied,
            _ => ReadErr::Gone,
        });
    }
    Ok(n as usize)
}

/// A NUL-terminated string at `addr`, read page by page (a read that crosses into an
/// unmapped page fails as a whole, and a path may end just before one).
pub fn read_cstr(pid: u32, addr: u64) -> Result<String, ReadErr> {
    let page = rustix::param::page_size() as u64;
    let mut out: Vec<u8> = Vec::new();
    let mut at = addr;
    while out.len() < PATH_MAX {
        let to_page_end = (page - at % page) as usize;
        let mut chunk = vec![0u8; to_page_end.min(PATH_MAX - out.len())];
        let n = read(pid, at, &mut chunk)?;
        if n == 0 {
            return Err(ReadErr::Gone);
        }
        if let Some(end) = chunk[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    Err(ReadErr::Gone)
}

/// A u64 at `addr` (openat2's `struct open_how` starts with the flags).
pub fn read_u64(pid: u32, addr: u64) -> Result<u64, ReadErr> {
    let mut b = [0u8; 8];
    match read(pid, addr, &mut b)? {
        8 => Ok(u64::from_ne_bytes(b)),
        _ => Err(ReadErr::Gone),
    }
}

/// One read for the worker: a string or a u64 at an address of a task.
#[derive(Clone, Copy, Debug)]
enum Want {
    Str,
    U64,
}

#[derive(Debug, PartialEq)]
enum Got {
    Str(String),
    U64(u64),
}

type Job = Box<dyn FnOnce() -> Result<Got, ReadErr> + Send>;

/// The worker thread and the read it was given last.
struct Worker {
    jobs: mpsc::Sender<(u64, Job)>,
    done: mpsc::Receiver<(u64, Result<Got, ReadErr>)>,
    /// The pid of the read that missed its deadline and has not come back yet.
    stuck: Option<u32>,
}

impl Worker {
    fn spawn() -> Option<Worker> {
        let (jobs, rx) = mpsc::channel::<(u64, Job)>();
        let (tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("iowhy-usermem".into())
            .spawn(move || {
                loop {
                    let Ok((seq, job)) = next_job(&rx) else {
                        return;
                    };
                    if tx.send((seq, job())).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Worker {
            jobs,
            done,
            stuck: None,
        })
    }
}

/// Opens come in bursts (a shell loop, a service starting), and a path must be read
/// before the process moves on: the worker keeps polling for the next job this long after
/// one, and the caller for the answer, rather than sleep (a sleeping thread is woken late
/// on a loaded machine).
const HOT_POLL: Duration = Duration::from_millis(5);

fn next_job(rx: &mpsc::Receiver<(u64, Job)>) -> Result<(u64, Job), mpsc::RecvError> {
    let t = std::time::Instant::now();
    while t.elapsed() < HOT_POLL {
        match rx.try_recv() {
            Ok(j) => return Ok(j),
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
        }
    }
    rx.recv()
}

/// Reads other processes' memory without ever blocking the caller for longer than
/// `deadline` (see the module doc). One worker thread, started at the first read.
pub struct MemReader {
    reader: Reader,
    deadline: Duration,
    worker: Option<Worker>,
    seq: u64,
    /// Tasks seen in D, whose memory was not read (a few, for the report).
    pub skipped_in_d: std::collections::BTreeSet<u32>,
    /// Pids whose memory read missed the deadline (a few, for the report).
    pub blocked: std::collections::BTreeSet<u32>,
}

/// Does a D task's `wchan` name a wait that can hold or queue on the mmap_lock: the
/// lock's rwsem, a VMA write lock, a page fault waiting for a frozen filesystem? ("0" or
/// nothing: it woke between the two reads.)
fn waits_on_memory(wchan: &str) -> bool {
    ["rwsem", "mmap", "vma", "fault"]
        .iter()
        .any(|k| wchan.contains(k))
}

/// Bound on the pids kept for the report.
const MAX_REPORTED: usize = 8;

impl Default for MemReader {
    fn default() -> Self {
        MemReader::new(Roots::default(), READ_DEADLINE)
    }
}

impl MemReader {
    /// `roots` is where the tasks' states are read (`/proc/TID/stat`).
    pub fn new(roots: Roots, deadline: Duration) -> Self {
        MemReader {
            reader: Reader::live(roots),
            deadline,
            worker: None,
            seq: 0,
            skipped_in_d: Default::default(),
            blocked: Default::default(),
        }
    }

    pub fn read_cstr(&mut self, pid: u32, addr: u64) -> Result<String, ReadErr> {
        match self.run(pid, addr, Want::Str)? {
            Got::Str(s) => Ok(s),
            Got::U64(_) => Err(ReadErr::Gone),
        }
    }

    pub fn read_u64(&mut self, pid: u32, addr: u64) -> Result<u64, ReadErr> {
        match self.run(pid, addr, Want::U64)? {
            Got::U64(v) => Ok(v),
            Got::Str(_) => Err(ReadErr::Gone),
        }
    }

    /// Is the task in D waiting on its memory map (the lock, a VMA, a page fault)? From
    /// `/proc/TID/stat` and, only for a task in D, `wchan`. A task in D elsewhere (in its
    /// fsync, on the write that follows its open: common, and seen here for most
    /// short-lived `dd`s) holds no memory lock, and its path is read.
    fn in_d_on_memory(&mut self, tid: u32) -> bool {
        let dir = self.reader.roots.pid_dir(tid);
        let state = match self.reader.read_path(&dir.join("stat")) {
            Ok(text) => crate::parse::pid_stat::parse(&text).ok().map(|s| s.state),
            Err(_) => None,
        };
        if state != Some('D') {
            return false;
        }
        match self.reader.read_path(&dir.join("wchan")) {
            Ok(w) => waits_on_memory(w.trim()),
            // Cannot tell where it waits: D is enough to keep away.
            Err(_) => true,
        }
    }

    fn run(&mut self, pid: u32, addr: u64, want: Want) -> Result<Got, ReadErr> {
        if addr == 0 {
            return Err(ReadErr::Gone);
        }
        if let Some(w) = &mut self.worker {
            if let Some(stuck) = w.stuck {
                // The abandoned read came back (its answer is stale): the worker is free.
                match w.done.try_recv() {
                    Ok(_) => w.stuck = None,
                    Err(mpsc::TryRecvError::Empty) => return Err(ReadErr::Blocked { pid: stuck }),
                    Err(mpsc::TryRecvError::Disconnected) => self.worker = None,
                }
            }
        }
        if self.in_d_on_memory(pid) {
            if self.skipped_in_d.len() < MAX_REPORTED {
                self.skipped_in_d.insert(pid);
            }
            return Err(ReadErr::Uninterruptible);
        }
        if !READ_ON_WORKER {
            return match want {
                Want::Str => read_cstr(pid, addr).map(Got::Str),
                Want::U64 => read_u64(pid, addr).map(Got::U64),
            };
        }
        let job: Job = match want {
            Want::Str => Box::new(move || read_cstr(pid, addr).map(Got::Str)),
            Want::U64 => Box::new(move || read_u64(pid, addr).map(Got::U64)),
        };
        self.submit(pid, job)
    }

    /// Hand `job` to the worker and wait for it until the deadline.
    fn submit(&mut self, pid: u32, job: Job) -> Result<Got, ReadErr> {
        if self.worker.is_none() {
            // No thread to be had: the path stays unresolved rather than risk blocking.
            self.worker = Some(Worker::spawn().ok_or(ReadErr::Gone)?);
        }
        let Some(w) = &mut self.worker else {
            return Err(ReadErr::Gone);
        };
        self.seq += 1;
        let seq = self.seq;
        if w.jobs.send((seq, job)).is_err() {
            self.worker = None;
            return Err(ReadErr::Gone);
        }
        let start = std::time::Instant::now();
        let until = start + self.deadline;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            // The answer takes µs: poll for it first (a sleeping caller is woken late on a
            // loaded machine), then sleep until the deadline.
            let got = if start.elapsed() < HOT_POLL {
                match w.done.try_recv() {
                    Ok(v) => Ok(v),
                    Err(mpsc::TryRecvError::Empty) => {
                        std::thread::yield_now();
                        continue;
                    }
                    Err(mpsc::TryRecvError::Disconnected) => {
                        Err(mpsc::RecvTimeoutError::Disconnected)
                    }
                }
            } else {
                w.done.recv_timeout(left)
            };
            match got {
                Ok((s, r)) if s == seq => return r,
                // An answer to an earlier read: skip it.
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    w.stuck = Some(pid);
                    if self.blocked.len() < MAX_REPORTED {
                        self.blocked.insert(pid);
                    }
                    return Err(ReadErr::Blocked { pid });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.worker = None;
                    return Err(ReadErr::Gone);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_strings_across_pages() {
        let me = std::process::id();
        let s = std::ffi::CString::new("/var/log/app/output.log").unwrap();
        assert_eq!(
            read_cstr(me, s.as_ptr() as u64).as_deref(),
            Ok("/var/log/app/output.log")
        );
        // A string that straddles a page boundary.
        let page = rustix::param::page_size();
        let mut buf = vec![b'x'; 3 * page];
        let to_boundary = page - buf.as_ptr() as usize % page;
        let start = if to_boundary >= 5 {
            to_boundary - 5
        } else {
            to_boundary + page - 5
        };
        buf[start..start + 10].copy_from_slice(b"/abcdefgh/");
        buf[start + 10] = 0;
        assert_eq!(
            read_cstr(me, buf[start..].as_ptr() as u64).as_deref(),
            Ok("/abcdefgh/")
        );
        let v: u64 = 0o2101;
        assert_eq!(read_u64(me, &v as *const u64 as u64), Ok(0o2101));
        assert_eq!(read_cstr(me, 0), Err(ReadErr::Gone));
    }

    #[test]
    fn the_worker_reads_what_the_call_reads() {
        let me = std::process::id();
        let mut m = MemReader::default();
        let s = std::ffi::CString::new("/srv/app/out.log").unwrap();
        assert_eq!(
            m.read_cstr(me, s.as_ptr() as u64).as_deref(),
            Ok("/srv/app/out.log")
        );
        let v: u64 = 0o101;
        assert_eq!(m.read_u64(me, &v as *const u64 as u64), Ok(0o101));
        assert_eq!(m.read_cstr(me, 0), Err(ReadErr::Gone));
        // A pid that does not exist: gone, not blocked.
        assert_eq!(
            m.read_cstr(u32::MAX - 1, s.as_ptr() as u64),
            Err(ReadErr::Gone)
        );
        assert!(m.blocked.is_empty() && m.skipped_in_d.is_empty());
    }

    #[test]
    fn a_read_past_its_deadline_is_abandoned_and_blocks_the_next_until_it_returns() {
        let mut m = MemReader::new(Roots::default(), Duration::from_millis(50));
        let (release, wait) = mpsc::channel::<()>();
        // A read that hangs like one behind a stuck mmap_lock, until released.
        let stuck: Job = Box::new(move || {
            let _ = wait.recv();
            Ok(Got::U64(1))
        });
        let t = std::time::Instant::now();
        assert_eq!(m.submit(4242, stuck), Err(ReadErr::Blocked { pid: 4242 }));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the caller was let go"
        );
        assert!(m.blocked.contains(&4242));
        // While it is stuck, no other read is tried: no second worker piles up.
        let me = std::process::id();
        let v: u64 = 7;
        assert_eq!(
            m.read_u64(me, &v as *const u64 as u64),
            Err(ReadErr::Blocked { pid: 4242 })
        );
        // Once it returns, reads work again, and its late answer is not taken for theirs.
        release.send(()).unwrap();
        let t = std::time::Instant::now();
        let got = loop {
            match m.read_u64(me, &v as *const u64 as u64) {
                Err(ReadErr::Blocked { .. }) if t.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                r => break r,
            }
        };
        assert_eq!(got, Ok(7));
    }

    #[test]
    fn a_task_in_d_on_its_memory_map_is_not_read() {
        // A fake /proc where pid 77 is in uninterruptible sleep.
        let dir = tempfile::tempdir().unwrap();
        let proc_ = dir.path().join("proc");
        std::fs::create_dir_all(proc_.join("77")).unwrap();
        let stat = |pid: u32| {
            format!("{pid} (app) D 1 {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n")
        };
        std::fs::write(proc_.join("77/stat"), stat(77)).unwrap();
        std::fs::write(proc_.join("77/wchan"), "rwsem_down_read_slowpath").unwrap();
        // In D in its fsync: no memory lock held, read as usual (here: no such process).
        std::fs::create_dir_all(proc_.join("78")).unwrap();
        std::fs::write(proc_.join("78/stat"), stat(78)).unwrap();
        std::fs::write(proc_.join("78/wchan"), "jbd2_log_wait_commit").unwrap();
        let roots = Roots {
            proc: proc_,
            ..Roots::default()
        };
        let mut m = MemReader::new(roots, READ_DEADLINE);
        let s = std::ffi::CString::new("/x").unwrap();
        assert_eq!(
            m.read_cstr(77, s.as_ptr() as u64),
            Err(ReadErr::Uninterruptible)
        );
        assert!(m.skipped_in_d.contains(&77));
        assert!(m.worker.is_none(), "no read was even handed to the worker");
        assert_eq!(m.read_cstr(78, s.as_ptr() as u64), Err(ReadErr::Gone));
        assert!(!m.skipped_in_d.contains(&78));
        assert!(waits_on_memory("__vma_start_write") && waits_on_memory("percpu_rwsem_wait"));
        assert!(!waits_on_memory("folio_wait_bit_common") && !waits_on_memory("io_schedule"));
        assert!(!waits_on_memory("0") && !waits_on_memory(""), "it woke up");
    }
}
