//! The collect loop: enable the events, drain the rings (opens first, at once), merge
//! the CPUs' events in time order, pair and count them, disable and finish.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use perf_event_open_sys as sys;

use super::decode::{self, DecodeStats, Ev, TpInfo};
use super::pair::{CloseIndex, FastOpens, Pairer};
use crate::trace::model::{Layer, TraceData};
use crate::trace::ring::Ring;
use crate::trace::{Resolver, TraceRequest};

use super::session::{Filter, PerfSession};

/// How often the main rings are read and their events paired (the open rings are read
/// as soon as they have anything).
const ROUND: Duration = Duration::from_millis(200);
/// After an open's entry without its exit: how soon to look again (an open takes tens of
/// µs; a short-lived process closes its file within a few ms).
const OPEN_EXIT_WAIT: Duration = Duration::from_millis(1);

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
            let Some(e) = decode::decode(rec, r.tps, res, data, st) else {
                return;
            };
            if let Some(e) = opens.take(e, res, monotonic_ns) {
                buf.push(e);
            }
        });
    }
}

pub(super) fn collect(
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
        mem: crate::trace::usermem::MemReader::new(
            roots.clone(),
            crate::trace::usermem::READ_DEADLINE,
        ),
        ..Default::default()
    };
    let mut buf: Vec<Ev> = Vec::new();
    let cpu0 = crate::trace::thread_cpu_s();
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
    data.consumer_cpu_s = crate::trace::thread_cpu_s() - cpu0;
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
fn mem_notes(m: &crate::trace::usermem::MemReader) -> Vec<crate::trace::Note> {
    let mut out = Vec::new();
    for pid in &m.blocked {
        out.push(crate::trace::Note::new(
            format!(
                "reading pid {pid}'s memory blocked (no answer within {} ms; its mmap_lock is likely held behind stuck I/O): the paths of its opens after that are unresolved",
                crate::trace::usermem::READ_DEADLINE.as_millis()
            ),
            "iowhy diagnose shows what it waits on (wchan, D state)",
        ));
    }
    if !m.skipped_in_d.is_empty() {
        let pids: Vec<String> = m.skipped_in_d.iter().map(|p| p.to_string()).collect();
        out.push(crate::trace::Note::new(
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
