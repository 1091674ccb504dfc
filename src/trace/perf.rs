//! The perf layer: syscall tracepoints (`syscalls:sys_enter_fsync`, ...) opened with
//! perf_event_open, system-wide, one ring buffer per CPU, sample_period 1: exact call
//! counts without stopping anyone (strace stops its target on every syscall).
//!
//! Measured on the development VM: counts match the writer's own (5000/5000), ~0.2 µs of
//! consumer CPU per event, no loss with 1 MiB rings per CPU at 1M events/s. Given pids,
//! a tracepoint filter (`common_pid == TID || ...`) drops other processes in the kernel;
//! when the filter would not fit (the kernel takes one page) they are dropped here.
//! Block request latency is not taken from here: perf sampling silently misses most
//! `block:block_rq_complete` events while the CPU is idle (see the eBPF layer).
//!
//! Opens are traced too, so an fd is named by the open that made it: a syscall tracepoint
//! has the path's address only, so opens go to rings of their own that wake us on every
//! event, and the path is read from the process's memory right away (`usermem`). Events
//! of all rings are merged in time order before enter and exit are paired (a thread that
//! migrates enters on one CPU and leaves on another).

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use perf_event_open_sys as sys;

use crate::roots::Roots;

use super::model::{Layer, TraceData};
use super::perfev::{self, CloseIndex, DecodeStats, Ev, FastOpens, Pairer, TpInfo};
use super::ring::Ring;
pub use super::tracefs_mount::{Tracefs, online_cpus};
use super::{Resolver, TraceRequest};

/// How often the main rings are read and their events paired (the open rings are read
/// as soon as they have anything).
const ROUND: Duration = Duration::from_millis(200);
/// After an open's entry without its exit: how soon to look again (an open takes tens of
/// µs; a short-lived process closes its file within a few ms).
const OPEN_EXIT_WAIT: Duration = Duration::from_millis(1);
/// The kernel copies a filter string of at most one page (perf_event_set_filter:
/// strndup_user(arg, PAGE_SIZE)), NUL included.
fn max_filter_len() -> usize {
    rustix::param::page_size() - 1
}

fn open_tracepoint(id: u32, cpu: i32, wakes: bool) -> std::io::Result<OwnedFd> {
    let mut attr = sys::bindings::perf_event_attr {
        type_: sys::bindings::PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<sys::bindings::perf_event_attr>() as u32,
        config: id as u64,
        sample_type: (sys::bindings::PERF_SAMPLE_TID
            | sys::bindings::PERF_SAMPLE_TIME
            | sys::bindings::PERF_SAMPLE_RAW) as u64,
        ..Default::default()
    };
    attr.__bindgen_anon_1.sample_period = 1;
    if wakes {
        // Opens for writing: wake the reader on every one.
        attr.__bindgen_anon_2.wakeup_events = 1;
    } else {
        // Wake the reader when a quarter of the ring is full, not on every event.
        attr.set_watermark(1);
        attr.__bindgen_anon_2.wakeup_watermark = 256 * 1024;
    }
    attr.set_disabled(1);
    attr.set_use_clockid(1);
    attr.clockid = libc::CLOCK_MONOTONIC;
    // SAFETY: attr is a valid, fully initialised perf_event_attr.
    let fd = unsafe {
        sys::perf_event_open(
            &mut attr,
            -1,
            cpu,
            -1,
            sys::bindings::PERF_FLAG_FD_CLOEXEC as u64,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Keep these threads: `common_pid` tests, with runs of consecutive tids as ranges (the
/// threads of a JVM or mysqld are mostly consecutive, so hundreds fit in a page).
pub fn pid_expr(tids: &[u32]) -> String {
    if tids.is_empty() {
        // Nothing to watch (the process is gone): a filter that matches nothing.
        return "common_pid == -1".into();
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < tids.len() {
        let mut j = i;
        while j + 1 < tids.len() && tids[j + 1] == tids[j] + 1 {
            j += 1;
        }
        parts.push(if j - i >= 2 {
            format!("(common_pid >= {} && common_pid <= {})", tids[i], tids[j])
        } else if j == i {
            format!("common_pid == {}", tids[i])
        } else {
            format!("common_pid == {} || common_pid == {}", tids[i], tids[j])
        });
        i = j + 1;
    }
    parts.join(" || ")
}

fn with_base(base: Option<&str>, pids: &str) -> String {
    match base {
        Some(b) => format!("{b} && ({pids})"),
        None => pids.to_string(),
    }
}

/// Where the pid filter is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Filter {
    /// All processes but ourselves.
    None,
    /// In the kernel, these threads.
    Kernel(Vec<u32>),
    /// Here: these processes (tgids), because the kernel filter did not fit or failed.
    User(BTreeSet<u32>),
}

pub struct PerfSession {
    roots: Roots,
    _tracefs: Tracefs,
    rings: Vec<Ring>,
    /// Rings of the open events (woken on every event).
    fast: Vec<Ring>,
    followers: Vec<OwnedFd>,
    /// Every event fd with its own filter (ANDed with the pid filter).
    filters: Vec<(i32, Option<&'static str>)>,
    tps: HashMap<u16, TpInfo>,
    filter: Filter,
    notes: Vec<super::Note>,
    /// The fd limit as it was, put back once the events are closed (in `drop`).
    nofile: Option<super::rlimit::Raised>,
}

impl PerfSession {
    pub fn open(roots: &Roots, ring_bytes: usize) -> Result<PerfSession> {
        let tracefs = Tracefs::find_or_mount(roots)?;
        let mut tps = HashMap::new();
        let mut ids = Vec::new();
        // The first event of a ring makes it (its wakeup settings are the ring's): an open
        // entry for the open rings, so they wake us on every open for writing.
        for (group, name, tp) in perfev::tracepoints() {
            // A kernel without one of these (pwritev2 on old kernels, open on arm64) just
            // loses that one.
            let Ok(fmt) = tracefs.format(group, &name) else {
                continue;
            };
            tps.insert(fmt.id as u16, TpInfo::new(tp, &fmt));
            ids.push((fmt.id, tp));
        }
        if ids.is_empty() {
            bail!("no syscall tracepoints under {}", tracefs.path.display());
        }
        let page = rustix::param::page_size();
        let pages = (ring_bytes / page).next_power_of_two().max(2);
        // Opens are few (writable ones only, filtered in the kernel) and read at once.
        let fast_pages = (pages / 8).max(2);
        let cpus = online_cpus(roots);
        // One perf event per CPU and tracepoint: 1024 fds by default, and 64 CPUs × 40
        // tracepoints do not fit.
        let (soft, hard, nofile) = super::rlimit::raise_nofile(cpus.len() * ids.len());
        let mut rings = Vec::new();
        let mut fast = Vec::new();
        let mut followers = Vec::new();
        let mut filters = Vec::new();
        for cpu in &cpus {
            let mut leader: [Option<i32>; 2] = [None, None];
            for (id, tp) in &ids {
                let is_fast = tp.is_fast();
                let fd = open_tracepoint(*id, *cpu, tp.wakes()).map_err(|e| {
                    if e.raw_os_error() == Some(libc::EMFILE) {
                        anyhow!(
                            "perf_event_open: out of file descriptors: {} events are needed ({} CPUs × {} tracepoints) and RLIMIT_NOFILE is {soft} (hard limit {hard}); raise it (ulimit -n, LimitNOFILE=) or use --tracing ebpf",
                            cpus.len() * ids.len(),
                            cpus.len(),
                            ids.len()
                        )
                    } else {
                        anyhow!("perf_event_open on a tracepoint failed ({e}): needs root or CAP_PERFMON (kernel.perf_event_paranoid)")
                    }
                })?;
                let raw = fd.as_raw_fd();
                filters.push((raw, tp.base_filter()));
                match leader[is_fast as usize] {
                    None => {
                        leader[is_fast as usize] = Some(raw);
                        let r = Ring::new(fd, if is_fast { fast_pages } else { pages })
                            .context("mapping a perf ring buffer")?;
                        if is_fast {
                            fast.push(r);
                        } else {
                            rings.push(r);
                        }
                    }
                    Some(l) => {
                        // SAFETY: both fds are perf events on the same CPU.
                        if unsafe { sys::ioctls::SET_OUTPUT(raw, l) } != 0 {
                            bail!(
                                "PERF_EVENT_IOC_SET_OUTPUT: {}",
                                std::io::Error::last_os_error()
                            );
                        }
                        followers.push(fd);
                    }
                }
            }
        }
        Ok(PerfSession {
            roots: roots.clone(),
            _tracefs: tracefs,
            rings,
            fast,
            followers,
            filters,
            tps,
            filter: Filter::None,
            notes: Vec::new(),
            nofile: Some(nofile),
        })
    }

    /// Set one filter string per event fd: its own part AND `pids`.
    fn set_filters(&self, pids: &str) -> std::io::Result<()> {
        for (fd, base) in &self.filters {
            let expr = with_base(*base, pids);
            if expr.len() > max_filter_len() {
                return Err(std::io::Error::from_raw_os_error(libc::E2BIG));
            }
            let c =
                CString::new(expr).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
            // SAFETY: a valid NUL-terminated filter string and a perf tracepoint fd.
            if unsafe { sys::ioctls::SET_FILTER(*fd, c.as_ptr() as *mut _) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Keep only the targets: in the kernel when the filter fits and is accepted, else
    /// here (said in the notes). Never an error: a filter refused leaves the run going.
    fn apply_filter(&mut self, roots: &Roots, req: &TraceRequest) {
        let me = format!("common_pid != {}", std::process::id());
        let Some(tids) = target_tids(roots, req) else {
            if let Err(e) = self.set_filters(&me) {
                self.notes.push(super::Note::new(
                    format!("the kernel refused the filter that leaves out iowhy itself ({e}): our own calls are dropped here"),
                    "",
                ));
            }
            self.filter = Filter::None;
            return;
        };
        if Filter::Kernel(tids.clone()) == self.filter {
            return;
        }
        let pids = pid_expr(&tids);
        let err = if matches!(self.filter, Filter::User(_)) {
            // Once in user space, stay there: the set only grows.
            None
        } else {
            match self.set_filters(&pids) {
                Ok(()) => {
                    self.filter = Filter::Kernel(tids);
                    return;
                }
                Err(e) => Some(e),
            }
        };
        if let Some(e) = err {
            let why = if e.raw_os_error() == Some(libc::E2BIG) {
                format!(
                    "a kernel filter for {} threads would not fit in a page",
                    tids.len()
                )
            } else if e.raw_os_error() == Some(libc::EEXIST) {
                // The kernel takes one filter per perf event, for the event's life.
                "the targets started new threads or processes, and a perf event's filter cannot be changed once set"
                    .to_string()
            } else {
                format!("the kernel refused the pid filter ({e})")
            };
            self.notes.push(super::Note::new(
                format!("{why}: other processes' events are dropped in user space (more consumer CPU, same counts)"),
                "trace fewer processes, or --tracing ebpf (filters by process in the kernel)",
            ));
            let _ = self.set_filters(&me);
        }
        self.filter = Filter::User(req.target_pids(roots));
    }

    fn all_fds(&self) -> Vec<i32> {
        self.filters.iter().map(|(fd, _)| *fd).collect()
    }

    fn enable(&self, on: bool) {
        for fd in self.all_fds() {
            // SAFETY: perf event fds.
            unsafe {
                if on {
                    sys::ioctls::ENABLE(fd, 0);
                } else {
                    sys::ioctls::DISABLE(fd, 0);
                }
            }
        }
    }
}

/// Closing a tracepoint perf event waits for an RCU grace period (~10 ms here): closed
/// one after the other, 50 events take a second. Close them from several threads so the
/// waits overlap.
impl Drop for PerfSession {
    fn drop(&mut self) {
        self.enable(false);
        close_in_parallel(std::mem::take(&mut self.rings));
        close_in_parallel(std::mem::take(&mut self.fast));
        close_in_parallel(std::mem::take(&mut self.followers));
        drop(self.nofile.take());
    }
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

/// All threads of the target processes (pids given, or processes whose comm matches).
pub fn target_tids(roots: &Roots, req: &TraceRequest) -> Option<Vec<u32>> {
    if !req.is_filtered() {
        return None;
    }
    let pids = req.target_pids(roots);
    let mut r = crate::source::reader::Reader::live(roots.clone());
    let mut tids = Vec::new();
    for pid in pids {
        // A process gone has no threads to watch; task/ is readable by anyone.
        if let Ok(t) = super::numbered_entries(&mut r, &roots.pid_dir(pid).join("task")) {
            tids.extend(t);
        }
    }
    tids.sort_unstable();
    Some(tids)
}

impl super::Session for PerfSession {
    fn detachable(&self) -> bool {
        !self._tracefs.mounted_by_us()
    }

    fn layer(&self) -> Layer {
        Layer::Perf
    }

    fn collect(
        &mut self,
        req: &TraceRequest,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<TraceData> {
        collect(self, req, stop, tick)
    }
}

/// Open the events and set the filter; nothing is recorded until `collect` enables them.
pub fn open(req: &TraceRequest, roots: &Roots) -> Result<PerfSession> {
    let mut s = PerfSession::open(roots, req.ring_bytes)?;
    s.apply_filter(roots, req);
    Ok(s)
}

fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// What reading the rings needs besides them.
struct Reader<'a> {
    tps: &'a HashMap<u16, TpInfo>,
    keep: Option<&'a BTreeSet<u32>>,
}

/// Read every ring of `rings` into `buf`, decoded (and filtered in user space if so);
/// opens are paired and named on the way.
fn drain_into(
    rings: &mut [Ring],
    r: &Reader<'_>,
    res: &Resolver,
    opens: &mut FastOpens,
    data: &mut TraceData,
    st: &mut DecodeStats,
    buf: &mut Vec<Ev>,
) {
    for ring in rings {
        ring.drain(|rec| {
            // Filtering here: look at the sample's pid (its first field) before decoding,
            // which may read the process's memory.
            if let (Some(k), sys::bindings::PERF_RECORD_SAMPLE) = (r.keep, rec.kind) {
                let pid = rec
                    .body
                    .get(0..4)
                    .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                if pid.is_some_and(|p| !k.contains(&p)) {
                    return;
                }
            }
            let Some(e) = perfev::decode(rec, r.tps, res, data, st) else {
                return;
            };
            if let Some(e) = opens.take(e, res, monotonic_ns) {
                buf.push(e);
            }
        });
    }
}

fn collect(
    s: &mut PerfSession,
    req: &TraceRequest,
    stop: &AtomicBool,
    tick: &mut dyn FnMut(Duration),
) -> Result<TraceData> {
    let roots = s.roots.clone();
    let roots = &roots;
    let mut data = TraceData::new(Layer::Perf);
    data.note(
        "block request latency needs the eBPF layer (perf sampling misses completions)",
        "--tracing ebpf (root, a kernel with BTF)",
    );
    let mut res = Resolver::new(roots.clone()).pruning_on_exit();
    let mut pairer = Pairer::default();
    let mut opens = FastOpens::default();
    let mut st = DecodeStats {
        mem: super::usermem::MemReader::new(roots.clone(), super::usermem::READ_DEADLINE),
        ..Default::default()
    };
    let mut buf: Vec<Ev> = Vec::new();
    let cpu0 = super::thread_cpu_s();
    let start = Instant::now();
    // Events stamped before this were all in the rings when they were last read: they can
    // be paired. Later ones wait a round, in case an earlier one sits in another CPU's ring.
    let mut complete_before = 0u64;
    let mut last_round = Instant::now() - ROUND;
    let mut last_refresh = Instant::now();
    s.enable(true);
    loop {
        let left = req.duration.saturating_sub(start.elapsed());
        let stopping = left.is_zero() || stop.load(Ordering::Relaxed);
        let mut main_ready = false;
        if stopping {
            s.enable(false);
        } else {
            let mut wait = left.min(ROUND.saturating_sub(last_round.elapsed()));
            if opens.waiting() {
                // An open for writing was read without its exit: look again very soon, the
                // fd may be closed within milliseconds.
                wait = wait.min(OPEN_EXIT_WAIT);
            }
            main_ready = wait_readable(&s.rings, &s.fast, wait);
        }
        let reader = Reader {
            tps: &s.tps,
            keep: match &s.filter {
                Filter::User(t) => Some(t),
                _ => None,
            },
        };
        let mut drain = |rings: &mut [Ring]| {
            drain_into(
                rings, &reader, &res, &mut opens, &mut data, &mut st, &mut buf,
            )
        };
        // Opens first, and at once: the fd is named while it is open.
        drain(&mut s.fast);
        if !(stopping || main_ready || last_round.elapsed() >= ROUND) {
            continue;
        }
        // Read the clock before the rings: every event stamped before it is in them now.
        // (The open rings are not read again after it: names read later than `mark`
        // could postdate a close that is not in the buffer yet.)
        let mark = monotonic_ns();
        drain(&mut s.rings);
        if stopping {
            drain(&mut s.fast);
        }
        buf.sort_by_key(|e| e.ts);
        let cut = if stopping {
            buf.len()
        } else {
            buf.partition_point(|e| e.ts < complete_before)
        };
        let rest = buf.split_off(cut);
        let index = if buf.iter().any(|e| e.open.is_some()) {
            CloseIndex::of(buf.iter().chain(rest.iter()))
        } else {
            CloseIndex::default()
        };
        for e in buf.drain(..) {
            pairer.handle(e, &mut res, &index);
        }
        buf = rest;
        complete_before = mark;
        last_round = Instant::now();
        tick(start.elapsed());
        if stopping {
            break;
        }
        // New threads (and, with --comm, new processes) appear: widen the filter twice a
        // second.
        if req.is_filtered() && last_refresh.elapsed() >= Duration::from_millis(500) {
            s.apply_filter(roots, req);
            last_refresh = Instant::now();
        }
    }
    data.duration_s = start.elapsed().as_secs_f64();
    data.consumer_cpu_s = super::thread_cpu_s() - cpu0;
    data.unpaired_events = pairer.unpaired;
    // Unpaired calls are reported from the counter (trace's header, diagnose's blind
    // spots), not also as a note.
    data.notes.append(&mut s.notes);
    if st.mem_denied {
        data.note(
            "paths of opens could not be read from the processes' memory (needs CAP_SYS_PTRACE): they come from /proc, so files closed within a few hundred ms may be unresolved",
            "run as root",
        );
    }
    for n in mem_notes(&st.mem) {
        data.notes.push(n);
    }
    res.finish_into(&mut data);
    Ok(data)
}

/// Blind spots of the memory reads: tasks not read because they were in D, and reads
/// given up at the deadline (the paths of those opens are unresolved or from /proc).
fn mem_notes(m: &super::usermem::MemReader) -> Vec<super::Note> {
    let mut out = Vec::new();
    for pid in &m.blocked {
        out.push(super::Note::new(
            format!(
                "reading pid {pid}'s memory blocked (no answer within {} ms; its mmap_lock is likely held behind stuck I/O): the paths of its opens after that are unresolved",
                super::usermem::READ_DEADLINE.as_millis()
            ),
            "iowhy diagnose shows what it waits on (wchan, D state)",
        ));
    }
    if !m.skipped_in_d.is_empty() {
        let pids: Vec<String> = m.skipped_in_d.iter().map(|p| p.to_string()).collect();
        out.push(super::Note::new(
            format!(
                "the memory of tasks in uninterruptible sleep (D) on their memory map was not read, as that can block the reader: the paths of their opens come from /proc or stay unresolved (tids {})",
                pids.join(", ")
            ),
            "",
        ));
    }
    out
}

/// Wait until a ring has data or `timeout` passes; true when a main ring is readable
/// (a quarter full: read it now, before it overflows).
fn wait_readable(rings: &[Ring], fast: &[Ring], timeout: Duration) -> bool {
    let mut fds: Vec<rustix::event::PollFd<'_>> = rings
        .iter()
        .chain(fast)
        .map(|r| rustix::event::PollFd::new(&r.fd, rustix::event::PollFlags::IN))
        .collect();
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    let _ = rustix::event::poll(&mut fds, Some(&ts));
    fds[..rings.len()]
        .iter()
        .any(|f| f.revents().contains(rustix::event::PollFlags::IN))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test for all that touches the process's fd limit (tests share the process).
    #[test]
    fn the_fd_limit_raised_for_a_session_is_put_back() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let orig = getrlimit(Resource::Nofile);
        // Start from a soft limit below the hard one, so there is something to raise.
        let Some(hard) = orig.maximum else { return };
        let low = Rlimit {
            current: Some(hard.min(128) - 1),
            maximum: orig.maximum,
        };
        setrlimit(Resource::Nofile, low).unwrap();
        {
            let (soft, h, g) = super::super::rlimit::raise_nofile(hard as usize);
            assert_eq!((soft, h), (hard, hard));
            assert!(g.changed());
            assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
        }
        assert_eq!(
            getrlimit(Resource::Nofile),
            low,
            "the guard restores at drop"
        );
        let (_, _, g) = super::super::rlimit::raise_nofile(10);
        assert!(!g.changed(), "enough already: nothing to restore");
        drop(g);
        // A whole session, where perf is allowed: raised while open, back after.
        if rustix::process::geteuid().is_root() {
            let cpus = online_cpus(&Roots::default()).len();
            match PerfSession::open(&Roots::default(), 1 << 16) {
                Ok(s) => {
                    if cpus * 40 + 64 > low.current.unwrap_or(0) as usize {
                        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
                    }
                    drop(s);
                    assert_eq!(getrlimit(Resource::Nofile), low, "restored when it ends");
                }
                Err(e) => eprintln!("NOT CHECKED: a perf session ({e:#})"),
            }
        }
        setrlimit(Resource::Nofile, orig).unwrap();
    }

    #[test]
    fn pid_filters_use_ranges_and_fit_a_page() {
        assert_eq!(pid_expr(&[]), "common_pid == -1");
        assert_eq!(pid_expr(&[7]), "common_pid == 7");
        assert_eq!(
            pid_expr(&[7, 8, 20, 21, 22, 23, 40]),
            "common_pid == 7 || common_pid == 8 || (common_pid >= 20 && common_pid <= 23) || common_pid == 40"
        );
        // A JVM's 2000 threads, mostly consecutive: fits.
        let jvm: Vec<u32> = (100_000..102_000).chain([200_000, 300_000]).collect();
        assert!(with_base(Some("(flags & 3)"), &pid_expr(&jvm)).len() < 4095);
        // 400 scattered threads do not: the session falls back to user space.
        let scattered: Vec<u32> = (0..400).map(|i| 100_000 + i * 7).collect();
        assert!(pid_expr(&scattered).len() > 4095);
    }
}
