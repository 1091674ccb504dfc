//! Tracing: see the syscalls behind the I/O without stopping anyone (strace stops its
//! target on every syscall). Three layers, chosen at run time and reported:
//! - `ebpf`: in-kernel aggregation of write/sync calls per process and fd, plus block
//!   request latency (queue vs device time) — needs root and a BPF-capable kernel;
//! - `perf`: syscall tracepoints through perf_event_open — exact counts, root or
//!   CAP_PERFMON;
//! - `sampling`: reading `/proc/PID/task/*/syscall` at ~100 Hz — an estimate of the share
//!   of time spent in sync calls, for when tracing is not allowed.

pub mod ebpf;
pub mod hist;
pub mod model;
pub mod perf;
pub mod resolve;
pub mod ring;
pub mod rlimit;
pub mod sampling;
pub mod syscalls;
pub mod tracefs_mount;
pub mod usermem;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;

use crate::roots::Roots;
use crate::source::reader::Reader;
pub use model::{Layer, Note, TraceData};
pub use resolve::{AT_FDCWD, NO_FD, Name, Resolver, UNRESOLVED};

#[derive(Clone, Debug)]
pub struct TraceRequest {
    /// Only these processes (all when empty and no comms).
    pub pids: Vec<u32>,
    pub comms: Vec<String>,
    pub duration: Duration,
    /// Per-CPU ring buffer size for perf (1 MiB loses nothing at 1M events/s here).
    pub ring_bytes: usize,
    /// Sampling rate of the sampling layer.
    pub sample_hz: u32,
}

impl Default for TraceRequest {
    fn default() -> Self {
        TraceRequest {
            pids: Vec::new(),
            comms: Vec::new(),
            duration: Duration::from_secs(5),
            ring_bytes: 1 << 20,
            sample_hz: 100,
        }
    }
}

impl TraceRequest {
    /// Does the request name processes (so the kernel can filter for them)?
    pub fn is_filtered(&self) -> bool {
        !self.pids.is_empty() || !self.comms.is_empty()
    }

    /// The processes asked for: the pids given, and those whose name (comm) matches.
    pub fn target_pids(&self, roots: &Roots) -> std::collections::BTreeSet<u32> {
        let mut t: std::collections::BTreeSet<u32> = self.pids.iter().copied().collect();
        if self.comms.is_empty() {
            return t;
        }
        let mut r = Reader::live(roots.clone());
        // /proc itself unreadable: only the pids given (the layer's other reads say why).
        let Ok(all) = numbered_entries(&mut r, &roots.proc) else {
            return t;
        };
        for pid in all {
            // Gone since the listing, or refused: not a match.
            let Ok(comm) = r.read_path(&roots.pid_dir(pid).join("comm")) else {
                continue;
            };
            if self.comms.iter().any(|c| c == comm.trim()) {
                t.insert(pid);
            }
        }
        t
    }

    /// All threads of the target processes (pids given, or processes whose comm matches).
    pub fn target_tids(&self, roots: &Roots) -> Option<Vec<u32>> {
        if !self.is_filtered() {
            return None;
        }
        let pids = self.target_pids(roots);
        let mut r = crate::source::reader::Reader::live(roots.clone());
        let mut tids = Vec::new();
        for pid in pids {
            // A process gone has no threads to watch; task/ is readable by anyone.
            if let Ok(t) = numbered_entries(&mut r, &roots.pid_dir(pid).join("task")) {
                tids.extend(t);
            }
        }
        tids.sort_unstable();
        Some(tids)
    }
}

/// The numeric entries of a directory (pids in `/proc`, tids in `/proc/PID/task`).
pub fn numbered_entries(
    r: &mut Reader,
    dir: &std::path::Path,
) -> Result<Vec<u32>, crate::error::ReadError> {
    let d = r.open_dir(dir)?;
    let mut out = Vec::new();
    r.for_each_entry(&d, |name| {
        if let Some(n) = name.to_str().ok().and_then(|s| s.parse::<u32>().ok()) {
            out.push(n);
        }
    })?;
    Ok(out)
}

/// Which layer to use: forced, or the best available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TracingChoice {
    Auto,
    Ebpf,
    Perf,
    Sampling,
    Off,
}

/// A tracing layer, opened (events attached, nothing counted yet) and ready to watch one
/// window. Dropping it releases every perf fd, BPF program and link, and unmounts tracefs
/// if it was mounted for us.
pub trait Session {
    /// Whether its kernel objects may be released by a child after this process exits
    /// (see [`release`]): not when the session mounted tracefs itself, which it must
    /// unmount once they are gone.
    fn detachable(&self) -> bool {
        false
    }
    /// Watch for `req.duration` (or until `stop`), calling `tick` now and then.
    fn collect(
        &mut self,
        req: &TraceRequest,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<TraceData>;
}

/// End a session without making the user wait for the kernel.
///
/// Closing the last perf event of a tracepoint waits for RCU grace periods under the
/// kernel's `event_mutex` (`perf_trace_event_unreg`): ~35 ms per tracepoint one after
/// another, ~1.4 s for the 39 iowhy attaches, however many threads close them. The report
/// is out by now; what is left is the wait for the prompt. So the last references go to a
/// child: after `fork` it holds a copy of every fd, closes its stdio (a pipe reading our
/// output sees its end when we exit), waits until we have exited (our own closes are then
/// not the last and cost nothing), and exits, the kernel releasing everything as its files
/// close. It runs no Rust code (a fork of a threaded process may only make
/// async-signal-safe calls: close, getppid, nanosleep, _exit), it gives up waiting after
/// 10 s, and nothing can outlive it: links and programs are fd-based and never pinned.
/// Where fork fails, or tracefs must be unmounted after, the session is dropped here.
pub fn release(session: Box<dyn Session>) {
    if !session.detachable() {
        drop(session);
        return;
    }
    let parent = rustix::process::getpid();
    // SAFETY: the child only calls async-signal-safe functions, then _exit.
    match unsafe { libc::fork() } {
        0 => unsafe {
            for fd in 0..3 {
                libc::close(fd);
            }
            let nap = libc::timespec {
                tv_sec: 0,
                tv_nsec: 5_000_000,
            };
            for _ in 0..2000 {
                if libc::getppid() != parent.as_raw_nonzero().get() {
                    break;
                }
                libc::nanosleep(&nap, std::ptr::null_mut());
            }
            libc::_exit(0)
        },
        -1 => drop(session),
        _ => {
            // The kernel releases the objects when the child's copies close; ours close
            // at our exit, cheaply. Drop would do the slow close here.
            std::mem::forget(session);
        }
    }
}

struct OffSession;

impl Session for OffSession {
    fn collect(
        &mut self,
        req: &TraceRequest,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<TraceData> {
        let mut d = TraceData::new(Layer::Off);
        let t = std::time::Instant::now();
        while t.elapsed() < req.duration && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(
                Duration::from_millis(100).min(req.duration.saturating_sub(t.elapsed())),
            );
            tick(t.elapsed());
        }
        d.duration_s = t.elapsed().as_secs_f64();
        Ok(d)
    }
}

/// Open the chosen layer. With `Auto`, try eBPF, then perf, then sampling; the notes say
/// why a better layer was not used.
pub fn open(
    req: &TraceRequest,
    roots: &Roots,
    choice: TracingChoice,
) -> Result<(Box<dyn Session>, Vec<Note>)> {
    let mut why: Vec<Note> = Vec::new();
    let s: Box<dyn Session> = match choice {
        TracingChoice::Ebpf => Box::new(ebpf::open(req, roots)?),
        TracingChoice::Perf => Box::new(perf::open(req, roots)?),
        TracingChoice::Sampling => Box::new(sampling::open(req, roots)?),
        TracingChoice::Off => Box::new(OffSession),
        TracingChoice::Auto => match ebpf::open(req, roots) {
            Ok(s) => Box::new(s),
            Err(e) => {
                why.push(Note::new(
                    format!("eBPF unavailable: {e:#}"),
                    "root on a kernel with BTF (/sys/kernel/btf/vmlinux) gives block latency and in-kernel counts",
                ));
                match perf::open(req, roots) {
                    Ok(s) => Box::new(s),
                    Err(e) => {
                        why.push(Note::new(
                            format!("perf unavailable: {e:#}"),
                            "root or CAP_PERFMON (or a lower kernel.perf_event_paranoid) gives exact counts",
                        ));
                        Box::new(sampling::open(req, roots)?)
                    }
                }
            }
        },
    };
    Ok((s, why))
}

/// As [`run`], also handing back the session, for the caller to [`release`] once its
/// report is out.
pub fn run_keep(
    req: &TraceRequest,
    roots: &Roots,
    stop: &AtomicBool,
    choice: TracingChoice,
) -> Result<(TraceData, Box<dyn Session>)> {
    let (mut s, why) = open(req, roots, choice)?;
    let mut d = s.collect(req, stop, &mut |_| {})?;
    d.notes.extend(why);
    Ok((d, s))
}

/// CPU time of the calling thread, in seconds.
pub fn thread_cpu_s() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// Drop the items on up to 16 threads at once.
pub fn close_in_parallel<T: Send>(items: Vec<T>) {
    if items.is_empty() {
        return;
    }
    let per = items.len().div_ceil(16);
    let mut items = items;
    std::thread::scope(|s| {
        while !items.is_empty() {
            let chunk: Vec<T> = items.drain(..per.min(items.len())).collect();
            s.spawn(move || drop(chunk));
        }
    });
}
