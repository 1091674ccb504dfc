//! Deadlines for reads that can block.
//!
//! Some kernel files block the reader behind someone else's trouble: `cmdline`, `environ`
//! and `maps` take the target's `mmap_lock` (a thread stuck in a page fault on a frozen or
//! hung filesystem holds it, and a second thread waiting to write-lock it makes every
//! reader queue), `io`, `stack` and `syscall` take its `exec_update_lock`, statfs and stat
//! of a hung NFS or FUSE mount wait for a server that does not answer. A thread blocked in
//! such a read cannot be interrupted short of a fatal signal, so the work runs on worker
//! threads that the caller watches:
//!
//! - every read a worker makes stamps a heartbeat (the time and the path);
//! - the caller waits on the results with a timeout and looks at the heartbeats; a worker
//!   whose current read is older than the deadline is *abandoned*: its item is reported as
//!   stuck, the path goes into the stuck registry, and a fresh worker takes over the rest of
//!   the items (and retries the stuck item, which now skips the stuck path);
//! - a read of a path in the stuck registry fails at once with `TimedOut` instead of
//!   blocking a second thread, so a process or mount that stays stuck costs one thread in
//!   total, not one per snapshot; when the abandoned read finally returns, its thread
//!   removes the path from the registry and ends;
//! - abandoned threads are capped: past the cap the guarded work stops early and reports
//!   what it did not do.
//!
//! `exit_group` kills abandoned threads in killable waits (mmap_lock, NFS, FUSE), so the
//! process still ends at once when the command is done or interrupted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long one read may take before it counts as stuck. A /proc read takes microseconds
/// and a statfs of a healthy local filesystem well under a millisecond; a loaded machine
/// can stretch that to tens of milliseconds, never to hundreds.
const DEFAULT_DEADLINE: Duration = Duration::from_millis(300);

/// The deadline of readers made from now on (`--read-timeout`), in milliseconds.
static DEADLINE_MS: AtomicU64 = AtomicU64::new(DEFAULT_DEADLINE.as_millis() as u64);

pub fn set_default_deadline(d: Duration) {
    DEADLINE_MS.store(
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1),
        Ordering::Relaxed,
    );
}

/// The deadline of one read, as set by `--read-timeout`.
pub fn default_deadline() -> Duration {
    Duration::from_millis(DEADLINE_MS.load(Ordering::Relaxed))
}

/// Once the command is interrupted, no read is waited for longer than this: a signal
/// ends a command well within a second even when `--read-timeout` is long.
const STOP_DEADLINE: Duration = Duration::from_millis(50);

/// At most this many abandoned threads at once. Each stuck path costs one thread for as
/// long as it stays stuck (the registry keeps later snapshots from adding more).
const MAX_ABANDONED: usize = 32;

/// Set by SIGINT/SIGTERM/SIGHUP (see `cmd::stop_flag`): guarded work then waits for no
/// read longer than `STOP_DEADLINE`, so a command ends at once even while a read is stuck
/// (and its report still covers every process that answers).
pub static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// A read that has not returned.
#[derive(Clone, Debug)]
pub struct Stuck {
    pub path: PathBuf,
    pub since: Instant,
}

/// State shared by a reader and every worker it starts: the deadline, the stuck registry
/// and the count of abandoned threads.
#[derive(Debug)]
pub struct Guard {
    deadline: Mutex<Duration>,
    stuck: Mutex<HashMap<PathBuf, Instant>>,
    n_stuck: AtomicUsize,
    abandoned: AtomicUsize,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            deadline: Mutex::new(default_deadline()),
            stuck: Mutex::new(HashMap::new()),
            n_stuck: AtomicUsize::new(0),
            abandoned: AtomicUsize::new(0),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A worker that panicked while holding a lock leaves valid data behind (plain maps
    // and numbers): keep going rather than poison every later read.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Guard {
    pub fn deadline(&self) -> Duration {
        *lock(&self.deadline)
    }

    #[cfg(test)]
    fn set_deadline(&self, d: Duration) {
        *lock(&self.deadline) = d.max(Duration::from_millis(1));
    }

    /// Whether any path is stuck now (one atomic load: the common answer is no).
    pub fn any_stuck(&self) -> bool {
        self.n_stuck.load(Ordering::Relaxed) != 0
    }

    /// Since when `path` has been stuck, if it is.
    pub fn stuck_since(&self, path: &Path) -> Option<Instant> {
        if !self.any_stuck() {
            return None;
        }
        lock(&self.stuck).get(path).copied()
    }

    /// Every path stuck now.
    pub fn stuck(&self) -> Vec<Stuck> {
        let mut v: Vec<Stuck> = lock(&self.stuck)
            .iter()
            .map(|(p, t)| Stuck {
                path: p.clone(),
                since: *t,
            })
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    fn mark_stuck(&self, path: PathBuf, since: Instant) {
        let mut m = lock(&self.stuck);
        if m.insert(path, since).is_none() {
            self.n_stuck.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn unmark_stuck(&self, path: &Path) {
        let mut m = lock(&self.stuck);
        if m.remove(path).is_some() {
            self.n_stuck.fetch_sub(1, Ordering::Relaxed);
        }
    }

    pub fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::Relaxed)
    }
}

/// Run one call that may block (a stat outside the reader, e.g. of a path the user named)
/// on its own thread, and wait for it at most `deadline`. `None`: it did not return in
/// time (the thread is left to finish on its own), or the command was interrupted.
pub fn call<T: Send + 'static>(
    deadline: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("iowhy-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    let end = Instant::now().checked_add(deadline)?;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || stopping() {
            return None;
        }
        match rx.recv_timeout(left.min(Duration::from_millis(100))) {
            Ok(v) => return Some(v),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// What a worker is doing now, for its watcher.
#[derive(Debug, Default)]
pub struct Heartbeat {
    inner: Mutex<Beat>,
    /// Set by the watcher when it gives up on this worker.
    abandoned: AtomicBool,
}

#[derive(Debug)]
struct Beat {
    /// When the read under way began (`None` between reads), and its path.
    started: Option<Instant>,
    path: PathBuf,
    /// The item being worked on.
    item: Option<usize>,
    /// The path the watcher found stuck, to take out of the registry when it returns.
    stuck: Option<PathBuf>,
}

impl Default for Beat {
    fn default() -> Self {
        Beat {
            started: None,
            path: PathBuf::new(),
            item: None,
            stuck: None,
        }
    }
}

impl Heartbeat {
    /// A read of `path` starts now. False once the watcher gave up on this worker: the
    /// caller then fails the read at once, so the worker winds down as soon as its stuck
    /// read returns. The path buffer is reused (no allocation per read once grown).
    pub fn start(&self, dir: &Path, name: &str) -> bool {
        if self.is_abandoned() {
            return false;
        }
        let mut b = lock(&self.inner);
        b.started = Some(Instant::now());
        b.path.clear();
        b.path.push(dir);
        if !name.is_empty() {
            b.path.push(name);
        }
        true
    }

    /// The read returned.
    pub fn done(&self) {
        lock(&self.inner).started = None;
    }

    fn item(&self, i: Option<usize>) {
        lock(&self.inner).item = i;
    }

    /// Give up on this worker if its read under way is older than `deadline`: its item
    /// and the stuck read.
    fn abandon_if_overdue(&self, deadline: Duration) -> Option<(Option<usize>, Stuck)> {
        let mut b = lock(&self.inner);
        let t = b.started?;
        if t.elapsed() <= deadline {
            return None;
        }
        let stuck = Stuck {
            path: b.path.clone(),
            since: t,
        };
        b.stuck = Some(stuck.path.clone());
        self.abandoned.store(true, Ordering::Relaxed);
        Some((b.item, stuck))
    }

    fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }
}

/// The result of one item of guarded work.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    /// A read for this item did not return within the deadline, and retrying the item
    /// without that read did not help.
    Stuck(Stuck),
    /// Not attempted: too many threads are already stuck.
    NotRun,
}

struct Work<I, T> {
    items: Vec<I>,
    next: AtomicUsize,
    results: Mutex<Vec<Option<Outcome<T>>>>,
    /// Items given back for a retry after a stall.
    retry: Mutex<Vec<usize>>,
    finished: Mutex<usize>,
    cv: Condvar,
}

/// How many times an item is retried after one of its reads got stuck (each retry skips
/// the paths stuck so far).
const MAX_RETRIES: u8 = 3;

/// Run `f` on each item on up to `workers` threads, watching every read they make. Each
/// worker gets its own state from `make` (a reader sharing this guard and stamping the
/// heartbeat it is given). The outcomes come back in the items' order.
pub fn run<I, T, S>(
    guard: &Arc<Guard>,
    items: Vec<I>,
    workers: usize,
    make: impl Fn(Arc<Heartbeat>) -> S,
    f: impl Fn(&mut S, &I) -> T + Send + Sync + 'static,
) -> Vec<Outcome<T>>
where
    I: Send + Sync + 'static,
    T: Send + 'static,
    S: Send + 'static,
{
    let n = items.len();
    if n == 0 {
        return Vec::new();
    }
    let work = Arc::new(Work {
        items,
        next: AtomicUsize::new(0),
        results: Mutex::new((0..n).map(|_| None).collect()),
        retry: Mutex::new(Vec::new()),
        finished: Mutex::new(0),
        cv: Condvar::new(),
    });
    let f = Arc::new(f);
    let deadline = guard.deadline();
    let mut tries = vec![0u8; n];
    let mut beats: Workers = Vec::new();
    let spawn = |beats: &mut Workers| {
        if guard.abandoned() >= MAX_ABANDONED {
            return false;
        }
        let hb = Arc::new(Heartbeat::default());
        let state = make(Arc::clone(&hb));
        let (w, f, g, h) = (
            Arc::clone(&work),
            Arc::clone(&f),
            Arc::clone(guard),
            Arc::clone(&hb),
        );
        match std::thread::Builder::new()
            .name("iowhy-read".into())
            .spawn(move || worker(w, f, g, h, state))
        {
            Ok(j) => {
                beats.push((hb, j));
                true
            }
            Err(_) => false,
        }
    };
    for _ in 0..workers.clamp(1, n) {
        if !spawn(&mut beats) {
            break;
        }
    }
    let poll = (deadline / 4).clamp(Duration::from_millis(5), Duration::from_millis(100));
    while !wait_done(&work, n, poll) {
        // Interrupted (SIGINT, SIGTERM, SIGHUP): the work goes on, so that the report
        // is whole, but no read is waited for longer than `STOP_DEADLINE`.
        let deadline = if stopping() {
            deadline.min(STOP_DEADLINE)
        } else {
            deadline
        };
        let replace = abandon_overdue(guard, &work, &beats, &mut tries, deadline);
        for _ in 0..replace {
            if !spawn(&mut beats) {
                break;
            }
        }
        if beats.iter().all(|b| b.0.is_abandoned()) {
            // Nobody left to do the rest (too many stuck threads): give up on it.
            break;
        }
    }
    release_workers(beats, *lock(&work.finished) >= n);
    let mut results = lock(&work.results);
    results
        .iter_mut()
        .map(|r| r.take().unwrap_or(Outcome::NotRun))
        .collect()
}

type Workers = Vec<(Arc<Heartbeat>, std::thread::JoinHandle<()>)>;

/// Wait up to `poll` for the work to be done; whether it is.
fn wait_done<I, T>(work: &Work<I, T>, n: usize, poll: Duration) -> bool {
    let done = lock(&work.finished);
    if *done >= n {
        return true;
    }
    let (done, _) = work
        .cv
        .wait_timeout(done, poll)
        .unwrap_or_else(|e| e.into_inner());
    *done >= n
}

/// Give up on every worker whose read is older than `deadline`: register the stuck path,
/// and hand its item back for a retry (or report it stuck after `MAX_RETRIES`). Returns
/// how many workers were given up on, for the caller to replace.
fn abandon_overdue<I, T>(
    guard: &Guard,
    work: &Work<I, T>,
    beats: &Workers,
    tries: &mut [u8],
    deadline: Duration,
) -> usize {
    let mut given_up = 0;
    for (hb, _) in beats.iter().filter(|b| !b.0.is_abandoned()) {
        let Some((item, stuck)) = hb.abandon_if_overdue(deadline) else {
            continue;
        };
        guard.abandoned.fetch_add(1, Ordering::Relaxed);
        guard.mark_stuck(stuck.path.clone(), stuck.since);
        given_up += 1;
        if let Some(i) = item {
            tries[i] += 1;
            if tries[i] <= MAX_RETRIES {
                lock(&work.retry).push(i);
            } else {
                finish(work, i, Outcome::Stuck(stuck));
            }
        }
    }
    given_up
}

/// The workers that were not given up on are done, or about to be: wait for them, so
/// that nothing they hold (the items, the closure) outlives the run. Any other worker is
/// stuck in a read; it finds itself abandoned when that returns, and drops its result.
fn release_workers(beats: Workers, all_done: bool) {
    let until = Instant::now().checked_add(Duration::from_millis(100));
    for (hb, j) in beats {
        if all_done && !hb.is_abandoned() {
            // Bounded all the same: a join must never become the hang this module exists
            // to prevent.
            while !j.is_finished() && until.is_some_and(|u| Instant::now() < u) {
                std::thread::sleep(Duration::from_micros(200));
            }
            if j.is_finished() {
                let _ = j.join();
                continue;
            }
        }
        hb.abandoned.store(true, Ordering::Relaxed);
    }
}

fn finish<I, T>(work: &Work<I, T>, i: usize, o: Outcome<T>) {
    let mut r = lock(&work.results);
    if r[i].is_none() {
        r[i] = Some(o);
        let n = r.len();
        drop(r);
        let mut done = lock(&work.finished);
        *done += 1;
        // Wake the watcher only for the last item: it polls for stalls anyway, and a
        // wake-up per item would cost two futex calls per process scanned.
        if *done >= n {
            work.cv.notify_all();
        }
    }
}

fn worker<I, T, S>(
    work: Arc<Work<I, T>>,
    f: Arc<impl Fn(&mut S, &I) -> T>,
    guard: Arc<Guard>,
    hb: Arc<Heartbeat>,
    mut state: S,
) {
    loop {
        if hb.is_abandoned() {
            break;
        }
        let i = match lock(&work.retry).pop() {
            Some(i) => i,
            None => {
                let i = work.next.fetch_add(1, Ordering::Relaxed);
                if i >= work.items.len() {
                    break;
                }
                i
            }
        };
        hb.item(Some(i));
        let out = f(&mut state, &work.items[i]);
        hb.item(None);
        if hb.is_abandoned() {
            break;
        }
        finish(&work, i, Outcome::Done(out));
    }
    if hb.is_abandoned() {
        // The watcher gave up on us; our stuck read has returned by now, so the path is
        // no longer stuck. (A worker abandoned only because the command stopped waiting
        // has no stuck path.)
        if let Some(p) = lock(&hb.inner).stuck.take() {
            guard.unmark_stuck(&p);
            guard.abandoned.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake "reader": sleeps for the item's milliseconds inside a stamped read.
    fn slow(hb: &Arc<Heartbeat>, guard: &Guard, ms: &u64) -> Result<u64, &'static str> {
        let path = PathBuf::from(format!("/fake/{ms}"));
        if guard.stuck_since(&path).is_some() {
            return Err("skipped: stuck");
        }
        if !hb.start(&path, "") {
            return Err("abandoned");
        }
        std::thread::sleep(Duration::from_millis(*ms));
        hb.done();
        Ok(*ms)
    }

    #[test]
    fn a_stuck_item_is_reported_and_the_rest_go_on() {
        let g = Arc::new(Guard::default());
        g.set_deadline(Duration::from_millis(50));
        let g2 = Arc::clone(&g);
        let t0 = Instant::now();
        let out = run(
            &g,
            vec![1u64, 2, 1000, 3],
            1,
            move |hb| (hb, Arc::clone(&g2)),
            |(hb, g), ms| slow(hb, g, ms),
        );
        // Well before the stuck item's second: the watcher moved on.
        assert!(
            t0.elapsed() < Duration::from_millis(800),
            "{:?}",
            t0.elapsed()
        );
        assert!(matches!(out[0], Outcome::Done(Ok(1))));
        assert!(matches!(out[1], Outcome::Done(Ok(2))));
        // Retried: the retry skips the stuck path and finishes without it.
        assert!(
            matches!(out[2], Outcome::Done(Err("skipped: stuck"))),
            "{:?}",
            out[2]
        );
        assert!(matches!(out[3], Outcome::Done(Ok(3))));
        assert_eq!(g.stuck().len(), 1);
        assert_eq!(g.abandoned(), 1);
        // When the stuck read returns, its thread clears the registry and ends.
        std::thread::sleep(Duration::from_millis(1200));
        assert!(g.stuck().is_empty());
        assert_eq!(g.abandoned(), 0);
    }

    #[test]
    fn a_path_still_stuck_costs_no_second_thread() {
        let g = Arc::new(Guard::default());
        g.set_deadline(Duration::from_millis(30));
        for _ in 0..3 {
            let g2 = Arc::clone(&g);
            let out = run(
                &g,
                vec![700u64],
                1,
                move |hb| (hb, Arc::clone(&g2)),
                |(hb, g), ms| slow(hb, g, ms),
            );
            assert!(matches!(out[0], Outcome::Done(Err("skipped: stuck"))));
        }
        assert_eq!(g.abandoned(), 1, "one thread for the one stuck path");
    }

    #[test]
    fn outcomes_keep_the_items_order_with_several_workers() {
        let g = Arc::new(Guard::default());
        let g2 = Arc::clone(&g);
        let items: Vec<u64> = (0..40).map(|i| i % 3).collect();
        let out = run(
            &g,
            items.clone(),
            4,
            move |hb| (hb, Arc::clone(&g2)),
            |(hb, g), ms| slow(hb, g, ms),
        );
        for (i, o) in items.iter().zip(out) {
            assert!(matches!(o, Outcome::Done(Ok(v)) if v == *i));
        }
    }
}
