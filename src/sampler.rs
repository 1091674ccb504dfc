//! The sampler: the pipeline in a loop (DESIGN.md "Watching"), shared by `serve` and
//! `record` (and both at once with `serve --record`).
//!
//! One thread takes a snapshot every interval, with tracing draining in between (the
//! wait *is* the trace window), builds the interval of the last two samples, runs the
//! rules on it and hands the diagnosis to its [`Consumer`]s: the exporter and
//! `/diagnosis` of `serve`, the flight recorder of `record`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::findings;
use crate::interval::{Interval, IntervalOptions};
use crate::render::Diagnosis;
use crate::roots::Roots;
use crate::serve::exporter::CollectorRun;
use crate::snapshot::Snapshot;
use crate::source::process::{FdPolicy, ProcessOptions};
use crate::source::{Collector, Origin, SnapshotOptions};
use crate::trace::{self, TraceRequest, TracingChoice};

/// What can be turned off with `--no-collector.NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collectors {
    /// Per-process counters (`/proc/PID/io`, delay accounting, D state).
    pub process: bool,
    /// fd tables: deleted-open bytes, the rules' view of files.
    pub fds: bool,
    /// Container runtimes and pod logs.
    pub containers: bool,
    /// Sync calls and per-file writes (perf or eBPF).
    pub tracing: bool,
    /// The rules over each window (`iowhy_findings`, `/diagnosis`).
    pub findings: bool,
}

impl Collectors {
    pub const ALL: Collectors = Collectors {
        process: true,
        fds: true,
        containers: true,
        tracing: true,
        findings: true,
    };
}

#[derive(Clone, Debug)]
pub struct SamplerOptions {
    pub interval: Duration,
    pub tracing: TracingChoice,
    pub collectors: Collectors,
    /// Every fd table is read again this often (between, only those of processes that
    /// did I/O).
    pub fds_refresh: Duration,
    /// While active (an incident's capture), 1 s windows with every fd table read.
    pub burst: Option<Arc<crate::record::incident::Burst>>,
}

impl SamplerOptions {
    /// The next window's length: the interval, or 1 s during a burst.
    pub fn window(&self) -> Duration {
        if self.bursting() {
            self.interval.min(Duration::from_secs(1))
        } else {
            self.interval
        }
    }

    fn bursting(&self) -> bool {
        self.burst
            .as_ref()
            .is_some_and(|b| b.active(crate::source::wall_ms()))
    }
}

/// Who gets each sample. Called on the sampler thread: a consumer must not block (the
/// recorder hands its samples to its own writer thread through a bounded queue).
pub trait Consumer {
    /// The first snapshot, which opens the first window.
    fn first(&mut self, _s: &Snapshot) {}
    /// One window: its diagnosis (the interval inside) and what each collector cost.
    fn window(&mut self, d: &Diagnosis, runs: &[CollectorRun]);
    /// A sample could not be taken.
    fn failed(&mut self, _why: String) {}
}

/// Several consumers of one sampler (`serve --record`).
pub struct Tee(pub Vec<Box<dyn Consumer + Send>>);

impl Consumer for Tee {
    fn first(&mut self, s: &Snapshot) {
        self.0.iter_mut().for_each(|c| c.first(s));
    }
    fn window(&mut self, d: &Diagnosis, runs: &[CollectorRun]) {
        self.0.iter_mut().for_each(|c| c.window(d, runs));
    }
    fn failed(&mut self, why: String) {
        self.0.iter_mut().for_each(|c| c.failed(why.clone()));
    }
}

/// Which processes' fd tables and cgroups to read in the next sample.
///
/// fd tables cost three or four syscalls per open file: a sample re-reads them only for
/// processes that did I/O (or waited on it) in the last window, and for everyone every
/// `refresh`; the others keep the table of their last read (an idle process's files do
/// not grow). A process's cgroup is read once per life, and again at each refresh (an
/// `iowhy throttle` moves it).
pub(crate) struct Reuse {
    pub(crate) refresh: Duration,
    pub(crate) last_full: Option<Instant>,
    pub(crate) active: std::collections::BTreeSet<u32>,
}

impl Reuse {
    pub(crate) fn new(refresh: Duration) -> Reuse {
        Reuse {
            refresh,
            last_full: None,
            active: Default::default(),
        }
    }

    pub(crate) fn options(&mut self, c: &Collectors, prev: &Snapshot) -> SnapshotOptions {
        let full = self.last_full.is_none_or(|t| t.elapsed() >= self.refresh);
        if full {
            self.last_full = Some(Instant::now());
        }
        let fds = match (c.fds, full) {
            (false, _) => FdPolicy::None,
            (true, true) => FdPolicy::All,
            (true, false) => FdPolicy::Pids(std::mem::take(&mut self.active)),
        };
        let known = (!full).then(|| {
            Arc::new(
                prev.processes
                    .iter()
                    .filter(|p| p.cgroups.is_some())
                    .map(|p| p.key())
                    .collect(),
            )
        });
        SnapshotOptions {
            processes: c.process.then_some(ProcessOptions {
                fds,
                threads: true,
                details: true,
                only: None,
                known,
            }),
            mounts: true,
            block: true,
            containers: c.containers && c.process,
            // The processes not re-read keep what the last sample had for them.
            carry: (!full).then(|| {
                Arc::new(
                    prev.processes
                        .iter()
                        .map(|p| (p.key(), (p.fds.clone(), p.cgroups.clone())))
                        .collect(),
                )
            }),
        }
    }

    /// The processes to re-read next time: those that did I/O in this window.
    pub(crate) fn learn(&mut self, iv: &Interval) {
        self.active = iv
            .processes
            .iter()
            .filter(|p| {
                p.rchar_per_s.unwrap_or(0.0) > 0.0
                    || p.wchar_per_s.unwrap_or(0.0) > 0.0
                    || p.syscw_per_s.unwrap_or(0.0) > 0.0
                    || p.d_tasks > 0
                    || p.started_in_window
            })
            .map(|p| p.pid)
            .chain(iv.after.pipe_waits.iter().map(|w| w.pid))
            .collect();
    }
}

pub struct Sampler {
    collector: Collector,
    session: Option<Box<dyn trace::Session>>,
    notes: Vec<trace::Note>,
    opts: SamplerOptions,
    reuse: Reuse,
}

impl Sampler {
    /// A sampler of the live machine, with its tracing session open.
    pub fn open(roots: &Roots, opts: &SamplerOptions) -> Result<Sampler> {
        let collector = Collector::new(Origin::Live(roots.clone()))?;
        let (session, notes) = if opts.collectors.tracing && opts.tracing != TracingChoice::Off {
            let req = TraceRequest {
                duration: opts.interval,
                ..Default::default()
            };
            match trace::open(&req, roots, opts.tracing) {
                Ok((s, why)) => (Some(s), why),
                Err(e) => (
                    None,
                    vec![trace::Note::new(
                        format!("tracing unavailable: {e:#}"),
                        "run as root",
                    )],
                ),
            }
        } else {
            (None, Vec::new())
        };
        Ok(Sampler::with_collector(collector, session, notes, opts))
    }

    /// A sampler of any origin (a fixture replays its time points without waiting, and
    /// the sampler stops when they run out).
    pub fn with_collector(
        collector: Collector,
        session: Option<Box<dyn trace::Session>>,
        notes: Vec<trace::Note>,
        opts: &SamplerOptions,
    ) -> Sampler {
        Sampler {
            collector,
            session,
            notes,
            reuse: Reuse::new(opts.fds_refresh),
            opts: opts.clone(),
        }
    }

    /// Sample until `stop` (or, for a fixture, until its time points run out).
    pub fn run(mut self, consumer: &mut dyn Consumer, stop: &AtomicBool) {
        let live = self.collector.is_live();
        let empty = Snapshot::default();
        let mut prev = loop {
            let o = self.reuse.options(&self.opts.collectors, &empty);
            match self.collector.snapshot(&o) {
                Ok(s) => break s,
                Err(e) => {
                    consumer.failed(format!("first snapshot failed: {e:#}"));
                    if !live || sleep_or_stop(self.opts.interval, stop) {
                        return;
                    }
                }
            }
        };
        consumer.first(&prev);
        while !stop.load(Ordering::Relaxed) {
            let mut runs = Vec::new();
            let traced = if live {
                self.watch(stop, &mut runs)
            } else {
                None
            };
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let before = std::mem::take(&mut prev);
            match self.sample(before, traced, runs) {
                Ok((d, runs)) => {
                    consumer.window(&d, &runs);
                    // The snapshot that closed this window opens the next one.
                    prev = d.interval.after;
                }
                Err(e) if !live => {
                    let _ = e;
                    return;
                }
                Err(e) => {
                    // The window is lost; the next one starts from a fresh snapshot.
                    consumer.failed(format!("snapshot failed: {e:#}"));
                    let o = self.reuse.options(&self.opts.collectors, &prev);
                    if let Ok(s) = self.collector.snapshot(&o) {
                        prev = s;
                    }
                }
            }
        }
    }

    /// One window: tracing drains for `interval` (or a plain wait without it).
    fn watch(
        &mut self,
        stop: &AtomicBool,
        runs: &mut Vec<CollectorRun>,
    ) -> Option<trace::TraceData> {
        let window = self.opts.window();
        let Some(s) = self.session.as_mut() else {
            sleep_or_stop(window, stop);
            return None;
        };
        let req = TraceRequest {
            duration: window,
            ..Default::default()
        };
        let r = s.collect(&req, stop, &mut |_| {});
        let ok = r.is_ok();
        let d = r.ok().map(|mut d| {
            d.notes.extend(self.notes.iter().cloned());
            d
        });
        runs.push(CollectorRun {
            name: "tracing",
            success: ok,
            seconds: d.as_ref().map(|d| d.consumer_cpu_s).unwrap_or(0.0),
        });
        d
    }

    /// The snapshot that closes the window and the rules over it.
    fn sample(
        &mut self,
        prev: Snapshot,
        traced: Option<trace::TraceData>,
        mut runs: Vec<CollectorRun>,
    ) -> Result<(Diagnosis, Vec<CollectorRun>)> {
        let t1 = Instant::now();
        if self.opts.bursting() {
            // An incident's capture reads every fd table.
            self.reuse.last_full = None;
        }
        let o = self.reuse.options(&self.opts.collectors, &prev);
        let s = self.collector.snapshot(&o)?;
        drop(o);
        let took = t1.elapsed().as_secs_f64();
        runs.push(CollectorRun {
            name: "process",
            success: !s.stuck.iter().any(|r| r.pid.is_some()),
            seconds: took,
        });
        runs.push(CollectorRun {
            name: "filesystem",
            success: !s.stuck.iter().any(|r| r.mountpoint.is_some()),
            seconds: took,
        });
        let iv = Interval::with_trace(prev, s, IntervalOptions::default(), traced);
        self.reuse.learn(&iv);
        let t2 = Instant::now();
        let found = if self.opts.collectors.findings {
            findings::run_all(&iv)
        } else {
            Vec::new()
        };
        runs.push(CollectorRun {
            name: "findings",
            success: true,
            seconds: t2.elapsed().as_secs_f64(),
        });
        let layer = iv.trace.as_ref().map(|t| t.layer.name()).unwrap_or("none");
        let mut d = Diagnosis::new(iv, found, layer);
        d.capabilities.fixture = !self.collector.is_live();
        if let Some(t) = &d.interval.trace {
            d.blind_spots
                .extend(crate::cmd::diagnose::trace_blind_spots(t));
        }
        Ok((d, runs))
    }
}

/// Sleep `d`, waking early on `stop`; true when stopped.
pub fn sleep_or_stop(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    stop.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_processes_keep_their_fd_table_and_writers_are_read_again() {
        let iv = crate::findings::fixture_interval("fsync-logger");
        let writer = crate::findings::fixture_lab_pids("fsync-logger")[0];
        let mut reuse = Reuse::new(Duration::from_secs(60));
        let c = Collectors::ALL;
        // The first sample reads everything.
        let o = reuse.options(&c, &iv.before);
        let p = o.processes.unwrap();
        assert_eq!(p.fds, FdPolicy::All);
        assert!(p.known.is_none());
        // After a window, only the writer (it did I/O) is read again, and cgroups of the
        // processes already seen are not.
        reuse.learn(&iv);
        assert!(reuse.active.contains(&writer), "{:?}", reuse.active);
        let o = reuse.options(&c, &iv.after);
        let p = o.processes.unwrap();
        match &p.fds {
            FdPolicy::Pids(s) => assert!(s.contains(&writer) && s.len() < iv.after.processes.len()),
            other => panic!("{other:?}"),
        }
        assert!(p.known.unwrap().contains(&iv.after.processes[0].key()));
        // What is not read is carried from the last snapshot.
        let carry = o.carry.expect("a carry table");
        let idle = iv
            .after
            .processes
            .iter()
            .find(|p| p.pid != writer && p.fds.as_ref().is_some_and(|f| !f.is_empty()))
            .unwrap();
        let (fds, cgroups) = &carry[&idle.key()];
        assert_eq!(
            fds.as_ref().map(|f| f.len()),
            idle.fds.as_ref().map(|f| f.len())
        );
        assert!(cgroups.is_some());
    }

    struct Count(usize, usize);
    impl Consumer for Count {
        fn first(&mut self, _s: &Snapshot) {
            self.0 += 1;
        }
        fn window(&mut self, d: &Diagnosis, runs: &[CollectorRun]) {
            assert!(d.capabilities.fixture);
            assert!(runs.iter().any(|r| r.name == "findings"));
            self.1 += 1;
        }
    }

    #[test]
    fn a_fixture_is_sampled_once_through_and_the_sampler_stops() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fsync-logger");
        let opts = SamplerOptions {
            interval: Duration::from_secs(3600),
            tracing: TracingChoice::Off,
            collectors: Collectors::ALL,
            fds_refresh: Duration::from_secs(60),
            burst: None,
        };
        let s = Sampler::with_collector(Collector::fixture(&dir).unwrap(), None, Vec::new(), &opts);
        let mut c = Count(0, 0);
        s.run(&mut c, &AtomicBool::new(false));
        assert_eq!((c.0, c.1), (1, 1));
    }
}
