//! `iowhy serve`: the pipeline in a loop (DESIGN.md "Watching").
//!
//! One sampler thread takes a snapshot every interval, with tracing draining in between
//! (the wait *is* the trace window), builds the interval of the last two samples, runs
//! the rules on it, and hands the result to the exporter (counters by delta accounting)
//! and to `/diagnosis`. Scrapes never read the kernel: they serve the latest sample at
//! once, so a scrape answers even while a read of the sampler is stuck on a hung mount
//! (the sample then ages, and `iowhy_scrape_collector_success{collector="sampler"}` says
//! so after `--collector.timeout`).

pub(crate) mod account;
pub mod expo;
pub(crate) mod exporter;
pub(crate) mod http;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::findings;
use crate::interval::{Interval, IntervalOptions};
use crate::render::{self, Diagnosis};
use crate::roots::Roots;
use crate::source::process::{FdPolicy, ProcessOptions};
use crate::source::{Collector, Origin, SnapshotOptions};
use crate::trace::{self, TraceRequest, TracingChoice};
use exporter::{CollectorRun, ExportOptions, Exporter, Family, Value};
use http::{Request, Response};

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

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: Vec<SocketAddr>,
    pub telemetry_path: String,
    pub max_requests: usize,
    pub interval: Duration,
    pub collector_timeout: Duration,
    pub export: ExportOptions,
    pub tracing: TracingChoice,
    pub collectors: Collectors,
    /// Every fd table is read again this often (between, only those of processes that
    /// did I/O).
    pub fds_refresh: Duration,
}

/// The latest window's report, rendered once per sample (the interval behind it is not
/// kept: two snapshots of every process would be most of the agent's memory).
#[derive(Clone, Debug, Default)]
struct Reports {
    json: String,
    markdown: String,
    text: String,
}

/// What the sampler publishes for the server.
#[derive(Default)]
struct Latest {
    families: Arc<Vec<Family>>,
    reports: Option<Arc<Reports>>,
    /// When the last sample was published.
    published: Option<Instant>,
    error: Option<String>,
}

/// The version and git revision this binary was built from.
pub(crate) fn build_revision() -> &'static str {
    option_env!("IOWHY_GIT_REVISION").unwrap_or("unknown")
}

/// Which processes' fd tables and cgroups to read in the next sample.
///
/// fd tables cost three or four syscalls per open file: a sample re-reads them only for
/// processes that did I/O (or waited on it) in the last window, and for everyone every
/// `refresh`; the others keep the table of their last read (an idle process's files do
/// not grow). A process's cgroup is read once per life, and again at each refresh (an
/// `iowhy throttle` moves it).
struct Reuse {
    refresh: Duration,
    last_full: Option<Instant>,
    active: std::collections::BTreeSet<u32>,
}

impl Reuse {
    fn options(&mut self, c: &Collectors, prev: &crate::snapshot::Snapshot) -> SnapshotOptions {
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
    fn learn(&mut self, iv: &Interval) {
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

struct Sampler {
    collector: Collector,
    session: Option<Box<dyn trace::Session>>,
    notes: Vec<trace::Note>,
    exporter: Exporter,
    opts: ServeOptions,
    reuse: Reuse,
}

impl Sampler {
    fn open(roots: &Roots, opts: &ServeOptions) -> Result<Sampler> {
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
        Ok(Sampler {
            collector,
            session,
            notes,
            exporter: Exporter::new(opts.export),
            reuse: Reuse {
                refresh: opts.fds_refresh,
                last_full: None,
                active: Default::default(),
            },
            opts: opts.clone(),
        })
    }

    /// Sample until `stop`, publishing each interval.
    fn run(mut self, latest: &Mutex<Latest>, stop: &AtomicBool) {
        let empty = crate::snapshot::Snapshot::default();
        let mut prev = loop {
            let o = self.reuse.options(&self.opts.collectors, &empty);
            match self.collector.snapshot(&o) {
                Ok(s) => break s,
                Err(e) => {
                    set_error(latest, format!("first snapshot failed: {e:#}"));
                    if sleep_or_stop(self.opts.interval, stop) {
                        return;
                    }
                }
            }
        };
        while !stop.load(Ordering::Relaxed) {
            let mut runs = Vec::new();
            let traced = self.watch(stop, &mut runs);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let before = std::mem::take(&mut prev);
            match self.sample(before, traced, runs) {
                Ok((next, families, reports)) => {
                    if let Ok(mut l) = latest.lock() {
                        l.families = Arc::new(families);
                        l.reports = Some(Arc::new(reports));
                        l.published = Some(Instant::now());
                        l.error = None;
                    }
                    prev = next;
                }
                Err(e) => {
                    // The window is lost; the next one starts from a fresh snapshot.
                    set_error(latest, format!("snapshot failed: {e:#}"));
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
        let Some(s) = self.session.as_mut() else {
            sleep_or_stop(self.opts.interval, stop);
            return None;
        };
        let req = TraceRequest {
            duration: self.opts.interval,
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

    /// The snapshot that closes the window, the rules over it, the metrics and reports.
    fn sample(
        &mut self,
        prev: crate::snapshot::Snapshot,
        traced: Option<trace::TraceData>,
        mut runs: Vec<CollectorRun>,
    ) -> Result<(crate::snapshot::Snapshot, Vec<Family>, Reports)> {
        let t1 = Instant::now();
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
        self.exporter.observe(&iv, &found, runs);
        let families = self
            .exporter
            .families(env!("CARGO_PKG_VERSION"), build_revision());
        let layer = iv.trace.as_ref().map(|t| t.layer.name()).unwrap_or("none");
        let mut d = Diagnosis::new(iv, found, layer);
        if let Some(t) = &d.interval.trace {
            d.blind_spots
                .extend(crate::cmd::diagnose::trace_blind_spots(t));
        }
        let reports = Reports {
            json: serde_json::to_string_pretty(&render::build_report(&d))? + "\n",
            markdown: render::markdown::render(&d),
            text: render::text::render(&d),
        };
        // The snapshot that closed this window opens the next one.
        Ok((d.interval.after, families, reports))
    }
}

fn set_error(latest: &Mutex<Latest>, e: String) {
    if let Ok(mut l) = latest.lock() {
        l.error = Some(e);
    }
}

/// Sleep `d`, waking early on `stop`; true when stopped.
fn sleep_or_stop(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    stop.load(Ordering::Relaxed)
}

const LANDING: &str = "<html><head><title>iowhy</title></head><body>
<h1>iowhy serve</h1>
<p>Why is this machine stalling on I/O, who does it, to which file, on which disk or container.</p>
<ul>
<li><a href=\"METRICS\">METRICS</a>: Prometheus metrics (text format 0.0.4)</li>
<li><a href=\"/diagnosis\">/diagnosis</a>: the latest diagnosis, JSON (<a href=\"/diagnosis?format=markdown\">markdown</a>, <a href=\"/diagnosis?format=text\">text</a>)</li>
<li><a href=\"/healthz\">/healthz</a>: liveness</li>
</ul>
</body></html>
";

fn route(req: &Request, latest: &Mutex<Latest>, opts: &ServeOptions) -> Response {
    let (families, reports, published, error) = match latest.lock() {
        Ok(l) => (
            l.families.clone(),
            l.reports.clone(),
            l.published,
            l.error.clone(),
        ),
        Err(_) => return Response::text(500, "internal error\n"),
    };
    match req.path.as_str() {
        p if p == opts.telemetry_path => {
            let age = published.map(|p| p.elapsed());
            let fresh = age.is_some_and(|a| a <= opts.interval * 2 + opts.collector_timeout);
            let mut fams: Vec<Family> = (*families).clone();
            let sampler = [(
                vec!["sampler".to_string()],
                Value::Num(f64::from(u8::from(fresh))),
            )];
            match fams
                .iter_mut()
                .find(|f| f.field.name == crate::fields::COLLECTOR_SUCCESS.name)
            {
                Some(f) => f.samples.extend(sampler),
                None => fams.push(Family {
                    field: crate::fields::COLLECTOR_SUCCESS,
                    samples: sampler.to_vec(),
                }),
            }
            Response::new(200, expo::CONTENT_TYPE, expo::render(fams))
        }
        "/diagnosis" => {
            let Some(d) = reports else {
                let why = error.unwrap_or_else(|| {
                    format!(
                        "no diagnosis yet: the first window ends {} s after start",
                        opts.interval.as_secs_f64()
                    )
                });
                return Response::text(503, why + "\n");
            };
            match req.param("format").unwrap_or("json") {
                "json" => Response::new(200, "application/json", d.json.clone()),
                "markdown" => {
                    Response::new(200, "text/markdown; charset=utf-8", d.markdown.clone())
                }
                "text" => Response::text(200, d.text.clone()),
                other => Response::text(
                    400,
                    format!("format={other:?}: one of json, markdown, text\n"),
                ),
            }
        }
        "/healthz" => Response::text(200, "ok\n"),
        "/" => Response::new(
            200,
            "text/html; charset=utf-8",
            LANDING.replace("METRICS", &opts.telemetry_path),
        ),
        _ => Response::text(404, "not found: try /metrics, /diagnosis, /healthz\n"),
    }
}

/// Serve until `stop` (SIGINT/SIGTERM): bind first (a bad address fails at once), then
/// sample and answer.
pub fn run(roots: &Roots, opts: ServeOptions, stop: Arc<AtomicBool>) -> Result<()> {
    let listeners = http::bind(&opts.listen)?;
    let latest = Arc::new(Mutex::new(Latest::default()));
    let (l2, st, r2, o1) = (latest.clone(), stop.clone(), roots.clone(), opts.clone());
    // The sampler (its collector and tracing session) lives on its own thread; whether
    // it could open comes back before anything is served.
    let (opened, ok) = std::sync::mpsc::channel::<Result<()>>();
    let sampler_thread = std::thread::Builder::new()
        .name("iowhy-sampler".into())
        .spawn(move || match Sampler::open(&r2, &o1) {
            Ok(s) => {
                let _ = opened.send(Ok(()));
                s.run(&l2, &st);
            }
            Err(e) => {
                let _ = opened.send(Err(e));
            }
        })?;
    ok.recv()
        .map_err(|_| anyhow::anyhow!("the sampler thread ended before it started"))??;
    let o2 = opts.clone();
    let handler: http::Handler = Arc::new(move |r: &Request| route(r, &latest, &o2));
    http::run(listeners, handler, opts.max_requests, stop);
    let _ = sampler_thread.join();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_processes_keep_their_fd_table_and_writers_are_read_again() {
        let iv = crate::findings::fixture_interval("fsync-logger");
        let writer = crate::findings::fixture_lab_pids("fsync-logger")[0];
        let mut reuse = Reuse {
            refresh: Duration::from_secs(60),
            last_full: None,
            active: Default::default(),
        };
        let c = Collectors {
            process: true,
            fds: true,
            containers: true,
            tracing: true,
            findings: true,
        };
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
}
