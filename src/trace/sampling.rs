//! The sampling layer, for when tracing is not allowed: read each target thread's
//! `/proc/PID/task/TID/syscall` about 100 times a second and count where it is. This
//! estimates the share of time spent in sync calls (measured here: 60-68% against 67%
//! true for a fsync-per-line writer) but gives no call counts or latencies: it is
//! reported as an estimate.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::error::ReadError;
use crate::roots::Roots;
use crate::source::reader::Reader;

use super::model::{Layer, TraceData};
use super::syscalls::{Call, State, classify, parse_syscall_file};
use super::{Resolver, TraceRequest};

/// Without targets, sample this many of the processes making the most write calls.
const AUTO_TARGETS: usize = 8;

/// Processes to sample: the requested ones, or the busiest writers right now; and how
/// many processes could not be looked at (their `io` refused).
fn targets(roots: &Roots, req: &TraceRequest) -> (Vec<u32>, usize) {
    if req.is_filtered() {
        return (req.target_pids(roots).into_iter().collect(), 0);
    }
    let me = std::process::id();
    let mut r = Reader::live(roots.clone());
    let all = super::numbered_entries(&mut r, &roots.proc).unwrap_or_default();
    let mut denied = BTreeSet::new();
    let mut syscw = |p: u32| match r.read_path(&roots.pid_dir(p).join("io")) {
        Ok(t) => crate::parse::kv::parse_io(&t).ok().map(|io| io.syscw),
        Err(e) => {
            if e.is_permission() {
                denied.insert(p);
            }
            None
        }
    };
    let before: HashMap<u32, u64> = all
        .iter()
        .filter(|&&p| p != me)
        .filter_map(|&p| Some((p, syscw(p)?)))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut busy: Vec<(u64, u32)> = before
        .iter()
        .filter_map(|(&p, &b)| syscw(p).map(|a| (a.saturating_sub(b), p)))
        .filter(|(d, _)| *d > 0)
        .collect();
    busy.sort_unstable_by(|a, b| b.cmp(a));
    let picked = busy
        .into_iter()
        .take(AUTO_TARGETS)
        .map(|(_, p)| p)
        .collect();
    (picked, denied.len())
}

struct Thread {
    pid: u32,
    file: File,
}

/// Open the `syscall` file of every thread of `pids` (kept open: each read at offset 0
/// is a new sample). Processes whose files were refused go into `denied`.
fn open_threads(roots: &Roots, pids: &[u32], denied: &mut BTreeSet<u32>) -> Vec<Thread> {
    let mut r = Reader::live(roots.clone());
    let mut v = Vec::new();
    for &pid in pids {
        let task = roots.pid_dir(pid).join("task");
        let tids = match super::numbered_entries(&mut r, &task) {
            Ok(t) => t,
            Err(e) => {
                if e.is_permission() {
                    denied.insert(pid);
                }
                continue;
            }
        };
        for tid in tids {
            let p = task.join(format!("{tid}/syscall"));
            match File::open(&p) {
                Ok(f) => v.push(Thread { pid, file: f }),
                Err(e) => {
                    if ReadError::from_io(&p, e).is_permission() {
                        denied.insert(pid);
                    }
                }
            }
        }
    }
    v
}

pub struct SamplingSession {
    roots: Roots,
    pids: Vec<u32>,
    /// Processes left out of the choice of targets because their `io` was refused.
    io_denied: usize,
}

/// Pick the processes to sample (a short look at who writes when none are named).
pub fn open(req: &TraceRequest, roots: &Roots) -> Result<SamplingSession> {
    let (pids, io_denied) = targets(roots, req);
    Ok(SamplingSession {
        roots: roots.clone(),
        pids,
        io_denied,
    })
}

impl super::Session for SamplingSession {
    fn collect(
        &mut self,
        req: &TraceRequest,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<TraceData> {
        let mut d = collect(&self.roots, &self.pids, req, stop, tick)?;
        if self.io_denied > 0 {
            d.note(
                format!(
                    "{} processes' /proc/PID/io could not be read (permission denied): they were not considered when picking the busiest writers",
                    self.io_denied
                ),
                "run as root, or name the process: iowhy trace --pid PID",
            );
        }
        Ok(d)
    }
}

fn collect(
    roots: &Roots,
    pids: &[u32],
    req: &TraceRequest,
    stop: &AtomicBool,
    tick: &mut dyn FnMut(Duration),
) -> Result<TraceData> {
    let start = Instant::now();
    let pids = pids.to_vec();
    let mut data = TraceData::new(Layer::Sampling);
    data.note(
        format!(
            "sampling /proc/PID/task/*/syscall at {} Hz: shares of time are estimates; no call counts, no latencies",
            req.sample_hz
        ),
        "run as root (or with CAP_PERFMON) for exact counts: --tracing perf or ebpf",
    );
    if pids.is_empty() {
        data.note(
            "no process was writing: nothing to sample",
            "iowhy trace --pid PID samples a process you name",
        );
    }
    let cpu0 = super::thread_cpu_s();
    let mut res = Resolver::new(roots.clone());
    let mut denied = BTreeSet::new();
    let mut threads = open_threads(roots, &pids, &mut denied);
    let period = Duration::from_secs_f64(1.0 / req.sample_hz.max(1) as f64);
    // Per pid: samples; per (pid, fd): samples in a sync call on it.
    let mut samples: HashMap<u32, u64> = HashMap::new();
    let mut sync_samples: HashMap<(u32, i32), u64> = HashMap::new();
    let mut buf = [0u8; 256];
    let mut n_tick = 0u32;
    let mut rng: u64 =
        0x9E37_79B9_7F4A_7C15 ^ start.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let mut last_refresh = Instant::now();
    while start.elapsed() < req.duration && !stop.load(Ordering::Relaxed) {
        for t in &threads {
            // The kernel regenerates the file on every read at offset 0.
            let Ok(n) = t.file.read_at(&mut buf, 0) else {
                continue;
            };
            let Some(state) = parse_syscall_file(&String::from_utf8_lossy(&buf[..n])) else {
                continue;
            };
            *samples.entry(t.pid).or_default() += 1;
            if let State::In { nr, arg0 } = state {
                if let Call::Sync(k) = classify(nr) {
                    let fd = if k.has_fd() { arg0 as i32 } else { -1 };
                    *sync_samples.entry((t.pid, fd)).or_default() += 1;
                    // Name the file while it is open.
                    res.file(t.pid, fd);
                }
            }
            data.events += 1;
        }
        if last_refresh.elapsed() >= Duration::from_millis(500) {
            threads = open_threads(roots, &pids, &mut denied);
            last_refresh = Instant::now();
        }
        n_tick += 1;
        if n_tick % 10 == 0 {
            tick(start.elapsed());
        }
        // Jitter each gap (0.5 to 1.5 periods): a fixed 10 ms period phase-locks with a
        // writer paced at a multiple of 100 Hz and keeps sampling the same point of its
        // cycle (seen here: 18% in fsync measured against 44% true).
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let jitter = 0.5 + (rng % 1000) as f64 / 1000.0;
        std::thread::sleep(period.mul_f64(jitter));
    }
    for &pid in &pids {
        let n = samples.get(&pid).copied().unwrap_or(0);
        let Some(p) = res.process(pid) else {
            continue;
        };
        p.samples = n;
        let in_sync: u64 = sync_samples
            .iter()
            .filter(|((q, _), _)| *q == pid)
            .map(|(_, c)| c)
            .sum();
        p.sampled_sync_share = (n > 0).then(|| in_sync as f64 / n as f64);
        for ((fd, _), f) in p.files.iter_mut() {
            let c = sync_samples.get(&(pid, *fd)).copied().unwrap_or(0);
            f.sampled_sync_share = (n > 0).then(|| c as f64 / n as f64);
        }
    }
    if !denied.is_empty() {
        let list: Vec<String> = denied.iter().map(|p| p.to_string()).collect();
        data.note(
            format!(
                "the threads' syscall files of pids {} could not be read (permission denied): not sampled",
                list.join(", ")
            ),
            "run as the processes' owner or as root",
        );
    }
    data.duration_s = start.elapsed().as_secs_f64();
    data.consumer_cpu_s = super::thread_cpu_s() - cpu0;
    res.finish_into(&mut data);
    Ok(data)
}
