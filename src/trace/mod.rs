//! Tracing: see the syscalls behind the I/O without stopping anyone (strace stops its
//! target on every syscall). Three layers, chosen at run time and reported:
//! - `ebpf`: in-kernel aggregation of write/sync calls per process and fd, plus block
//!   request latency (queue vs device time) — needs root and a BPF-capable kernel;
//! - `perf`: syscall tracepoints through perf_event_open — exact counts, root or
//!   CAP_PERFMON;
//! - `sampling`: reading `/proc/PID/task/*/syscall` at ~100 Hz — an estimate of the share
//!   of time spent in sync calls, for when tracing is not allowed.

pub mod delayacct;
pub mod ebpf;
pub mod hist;
pub mod model;
pub mod perf;
pub mod ring;
pub mod sampling;
pub mod syscalls;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;

use crate::roots::Roots;
use model::{FileTrace, ProcTrace, SyncKind};
pub use model::{Layer, TraceData};

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
        let Ok(rd) = std::fs::read_dir(&roots.proc) else {
            return t;
        };
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if self.comms.iter().any(|c| c == comm.trim()) {
                t.insert(pid);
            }
        }
        t
    }
}

/// Which layer to use: forced, or the best available.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
    fn layer(&self) -> Layer;
    /// Watch for `req.duration` (or until `stop`), calling `tick` now and then.
    fn collect(
        &mut self,
        req: &TraceRequest,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<TraceData>;
}

struct OffSession;

impl Session for OffSession {
    fn layer(&self) -> Layer {
        Layer::Off
    }
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
) -> Result<(Box<dyn Session>, Vec<String>)> {
    let mut why = Vec::new();
    let s: Box<dyn Session> = match choice {
        TracingChoice::Ebpf => Box::new(ebpf::open(req, roots)?),
        TracingChoice::Perf => Box::new(perf::open(req, roots)?),
        TracingChoice::Sampling => Box::new(sampling::open(req, roots)?),
        TracingChoice::Off => Box::new(OffSession),
        TracingChoice::Auto => match ebpf::open(req, roots) {
            Ok(s) => Box::new(s),
            Err(e) => {
                why.push(format!("eBPF unavailable: {e:#}"));
                match perf::open(req, roots) {
                    Ok(s) => Box::new(s),
                    Err(e) => {
                        why.push(format!("perf unavailable: {e:#}"));
                        Box::new(sampling::open(req, roots)?)
                    }
                }
            }
        },
    };
    Ok((s, why))
}

/// Open, watch one window, close.
pub fn run(
    req: &TraceRequest,
    roots: &Roots,
    stop: &AtomicBool,
    choice: TracingChoice,
) -> Result<TraceData> {
    let (mut s, why) = open(req, roots, choice)?;
    let mut d = s.collect(req, stop, &mut |_| {})?;
    d.notes.extend(why);
    Ok(d)
}

/// CPU time of the calling thread, in seconds.
pub fn thread_cpu_s() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// Names what events refer to: (pid, fd) → path and open flags, resolved through
/// `/proc/PID/fd` when first seen and forgotten when the fd is closed; and aggregates
/// per process and file, in bounded tables.
pub struct Resolver {
    roots: Roots,
    current: HashMap<(u32, i32), (String, Option<u32>)>,
    /// Paths learnt from traced opens: kept after the process exits, because in-kernel
    /// counts are read at the end of the window, when short-lived processes are gone.
    learnt: HashMap<(u32, i32), String>,
    procs: BTreeMap<u32, ProcTrace>,
    keys: usize,
    pub dropped_keys: u64,
}

/// Bound on (process, file) entries: beyond it, new files are counted as dropped.
pub const MAX_KEYS: usize = 20_000;
pub const UNRESOLVED: &str = "(closed before its path could be read)";
pub const NO_FD: &str = "(no fd: sync or msync)";

impl Resolver {
    pub fn new(roots: Roots) -> Self {
        Resolver {
            roots,
            current: HashMap::new(),
            learnt: HashMap::new(),
            procs: BTreeMap::new(),
            keys: 0,
            dropped_keys: 0,
        }
    }

    fn resolve(&self, pid: u32, fd: i32) -> (String, Option<u32>) {
        if fd < 0 {
            return (NO_FD.to_string(), None);
        }
        if let Some(p) = self.learnt.get(&(pid, fd)) {
            return (p.clone(), None);
        }
        let path = std::fs::read_link(self.roots.fd_link(pid, fd))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| UNRESOLVED.to_string());
        let flags = std::fs::read_to_string(self.roots.pid_dir(pid).join(format!("fdinfo/{fd}")))
            .ok()
            .and_then(|t| crate::parse::fdinfo::parse(&t).ok())
            .map(|i| i.flags);
        (path, flags)
    }

    pub fn process(&mut self, pid: u32) -> &mut ProcTrace {
        let roots = &self.roots;
        self.procs.entry(pid).or_insert_with(|| ProcTrace {
            pid,
            comm: std::fs::read_to_string(roots.pid_dir(pid).join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| "?".into()),
            ..Default::default()
        })
    }

    /// Record a path learnt another way (eBPF saw the openat). A relative path is made
    /// absolute with the process's working directory while it can still be read.
    pub fn opened(&mut self, pid: u32, fd: i32, path: String) {
        let path = if path.starts_with('/') {
            path
        } else {
            match std::fs::read_link(self.roots.pid_dir(pid).join("cwd")) {
                Ok(cwd) => cwd.join(&path).to_string_lossy().into_owned(),
                Err(_) => path,
            }
        };
        self.learnt.insert((pid, fd), path.clone());
        self.current.insert((pid, fd), (path, None));
    }

    pub fn file(&mut self, pid: u32, fd: i32) -> Option<&mut FileTrace> {
        if !self.current.contains_key(&(pid, fd)) {
            let r = self.resolve(pid, fd);
            self.current.insert((pid, fd), r);
        }
        let (path, flags) = self.current.get(&(pid, fd)).cloned().unwrap_or_default();
        let full = self.keys >= MAX_KEYS;
        let p = self.process(pid);
        let key = (fd, path.clone());
        if !p.files.contains_key(&key) {
            if full {
                self.dropped_keys += 1;
                return None;
            }
            p.files.insert(
                key.clone(),
                FileTrace {
                    fd,
                    path: (path != UNRESOLVED).then_some(path),
                    flags,
                    ..Default::default()
                },
            );
            self.keys += 1;
        }
        self.procs.get_mut(&pid).and_then(|p| p.files.get_mut(&key))
    }

    pub fn write(&mut self, pid: u32, fd: i32, bytes: u64) {
        if let Some(f) = self.file(pid, fd) {
            f.writes += 1;
            f.write_bytes += bytes;
        }
    }

    pub fn sync(&mut self, pid: u32, fd: i32, k: SyncKind, ns: u64) {
        if let Some(f) = self.file(pid, fd) {
            f.syncs.entry(k).or_default().record(ns);
        }
    }

    /// `newfd` now refers to what `oldfd` did (dup, dup2, dup3).
    pub fn duplicated(&mut self, pid: u32, oldfd: i32, newfd: i32) {
        if let Some(p) = self.learnt.get(&(pid, oldfd)).cloned() {
            self.learnt.insert((pid, newfd), p.clone());
            self.current.insert((pid, newfd), (p, None));
        } else {
            self.current.remove(&(pid, newfd));
        }
    }

    pub fn closed(&mut self, pid: u32, fd: i32) {
        self.current.remove(&(pid, fd));
    }

    pub fn exec(&mut self, pid: u32, name: Option<String>) {
        let p = self.process(pid);
        if let Some(n) = &name {
            p.comm = n.rsplit('/').next().unwrap_or(n).chars().take(15).collect();
        }
        p.exec_in_window = name;
    }

    pub fn exited(&mut self, pid: u32) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.exited_in_window = true;
        }
        self.current.retain(|(p, _), _| *p != pid);
    }

    pub fn into_procs(self) -> BTreeMap<u32, ProcTrace> {
        self.procs
    }

    pub fn procs_mut(&mut self) -> &mut BTreeMap<u32, ProcTrace> {
        &mut self.procs
    }
}
