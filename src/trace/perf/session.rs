//! The perf session: one event per CPU and tracepoint, their rings, the pid filter (in
//! the kernel when it fits, else here), the raised fd limit, and closing it all.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use perf_event_open_sys as sys;

use super::decode::{self, TpInfo};
use crate::roots::Roots;
use crate::trace::TraceRequest;
use crate::trace::model::TraceData;
use crate::trace::ring::Ring;
use crate::trace::tracefs_mount::{Tracefs, online_cpus};

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
fn pid_expr(tids: &[u32]) -> String {
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
pub(super) enum Filter {
    /// All processes but ourselves.
    None,
    /// In the kernel, these threads.
    Kernel(Vec<u32>),
    /// Here: these processes (tgids), because the kernel filter did not fit or failed.
    User(BTreeSet<u32>),
}

pub struct PerfSession {
    pub(super) roots: Roots,
    pub(super) _tracefs: Tracefs,
    pub(super) rings: Vec<Ring>,
    /// Rings of the open events (woken on every event).
    pub(super) fast: Vec<Ring>,
    pub(super) followers: Vec<OwnedFd>,
    /// Every event fd with its own filter (ANDed with the pid filter).
    pub(super) filters: Vec<(i32, Option<&'static str>)>,
    pub(super) tps: HashMap<u16, TpInfo>,
    pub(super) filter: Filter,
    pub(super) notes: Vec<crate::trace::Note>,
    /// The fd limit as it was, put back once the events are closed (in `drop`).
    pub(super) nofile: Option<crate::trace::rlimit::Raised>,
}

impl PerfSession {
    pub fn open(roots: &Roots, ring_bytes: usize) -> Result<PerfSession> {
        let tracefs = Tracefs::find_or_mount(roots)?;
        let mut tps = HashMap::new();
        let mut ids = Vec::new();
        // The first event of a ring makes it (its wakeup settings are the ring's): an open
        // entry for the open rings, so they wake us on every open for writing.
        for (group, name, tp) in decode::tracepoints() {
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
        let (soft, hard, nofile) = crate::trace::rlimit::raise_nofile(cpus.len() * ids.len());
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
    pub(super) fn apply_filter(&mut self, roots: &Roots, req: &TraceRequest) {
        let me = format!("common_pid != {}", std::process::id());
        let Some(tids) = req.target_tids(roots) else {
            if let Err(e) = self.set_filters(&me) {
                self.notes.push(crate::trace::Note::new(
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
            self.notes.push(crate::trace::Note::new(
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

    pub(super) fn enable(&self, on: bool) {
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
        super::super::close_in_parallel(std::mem::take(&mut self.rings));
        super::super::close_in_parallel(std::mem::take(&mut self.fast));
        super::super::close_in_parallel(std::mem::take(&mut self.followers));
        drop(self.nofile.take());
    }
}

impl crate::trace::Session for PerfSession {
    fn detachable(&self) -> bool {
        !self._tracefs.mounted_by_us()
    }

    fn collect(
        &mut self,
        req: &TraceRequest,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<TraceData> {
        super::collect::collect(self, req, stop, tick)
    }
}

/// Open the events and set the filter; nothing is recorded until `collect` enables them.
pub fn open(req: &TraceRequest, roots: &Roots) -> Result<PerfSession> {
    let mut s = PerfSession::open(roots, req.ring_bytes)?;
    s.apply_filter(roots, req);
    Ok(s)
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
            let (soft, h, g) = crate::trace::rlimit::raise_nofile(hard as usize);
            assert_eq!((soft, h), (hard, hard));
            assert!(g.changed());
            assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
        }
        assert_eq!(
            getrlimit(Resource::Nofile),
            low,
            "the guard restores at drop"
        );
        let (_, _, g) = crate::trace::rlimit::raise_nofile(10);
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
