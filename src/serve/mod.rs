//! `iowhy serve`: the pipeline in a loop (DESIGN.md "Watching").
//!
//! One sampler thread takes a snapshot every interval, with tracing draining in between
//! (the wait *is* the trace window), builds the interval of the last two samples, runs
//! the rules on it, and hands the result to the exporter (counters by delta accounting)
//! and to `/diagnosis`. Scrapes never read the kernel: they serve the latest sample at
//! once, so a scrape answers even while a read of the sampler is stuck on a hung mount
//! (the sample then ages, and `iowhy_scrape_collector_success{collector="sampler"}` says
//! so after `--collector.timeout`).

pub mod account;
pub mod expo;
pub mod exporter;
pub mod http;

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
}

/// What the sampler publishes for the server.
#[derive(Default)]
struct Latest {
    families: Arc<Vec<Family>>,
    diagnosis: Option<Arc<Diagnosis>>,
    /// When the last sample was published, and when the sampler began the one after.
    published: Option<Instant>,
    error: Option<String>,
}

fn snapshot_options(c: &Collectors) -> SnapshotOptions {
    SnapshotOptions {
        processes: c.process.then_some(ProcessOptions {
            fds: if c.fds { FdPolicy::All } else { FdPolicy::None },
            threads: true,
            details: true,
            only: None,
        }),
        mounts: true,
        block: true,
        containers: c.containers && c.process,
    }
}

/// The version and git revision this binary was built from.
pub fn build_revision() -> &'static str {
    option_env!("IOWHY_GIT_REVISION").unwrap_or("unknown")
}

struct Sampler {
    collector: Collector,
    session: Option<Box<dyn trace::Session>>,
    notes: Vec<trace::Note>,
    exporter: Exporter,
    opts: ServeOptions,
    snap: SnapshotOptions,
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
            snap: snapshot_options(&opts.collectors),
            opts: opts.clone(),
        })
    }

    /// Sample until `stop`, publishing each interval.
    fn run(mut self, latest: &Mutex<Latest>, stop: &AtomicBool) {
        let mut prev = loop {
            match self.collector.snapshot(&self.snap) {
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
            let traced = match self.session.as_mut() {
                Some(s) => {
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
                None => {
                    if sleep_or_stop(self.opts.interval, stop) {
                        return;
                    }
                    None
                }
            };
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let t1 = Instant::now();
            let s = match self.collector.snapshot(&self.snap) {
                Ok(s) => s,
                Err(e) => {
                    set_error(latest, format!("snapshot failed: {e:#}"));
                    continue;
                }
            };
            let took = t1.elapsed().as_secs_f64();
            let stuck_proc = s.stuck.iter().any(|r| r.pid.is_some());
            let stuck_fs = s.stuck.iter().any(|r| r.mountpoint.is_some());
            runs.push(CollectorRun {
                name: "process",
                success: !stuck_proc,
                seconds: took,
            });
            runs.push(CollectorRun {
                name: "filesystem",
                success: !stuck_fs,
                seconds: took,
            });
            let next = s.clone();
            let iv = Interval::with_trace(prev, s, IntervalOptions::default(), traced);
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
            if let Ok(mut l) = latest.lock() {
                l.families = Arc::new(families);
                l.diagnosis = Some(Arc::new(d));
                l.published = Some(Instant::now());
                l.error = None;
            }
            prev = next;
        }
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
    let (families, diagnosis, published, error) = match latest.lock() {
        Ok(l) => (
            l.families.clone(),
            l.diagnosis.clone(),
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
            let Some(d) = diagnosis else {
                let why = error.unwrap_or_else(|| {
                    format!(
                        "no diagnosis yet: the first window ends {} s after start",
                        opts.interval.as_secs_f64()
                    )
                });
                return Response::text(503, why + "\n");
            };
            match req.param("format").unwrap_or("json") {
                "json" => match serde_json::to_string_pretty(&render::build_report(&d)) {
                    Ok(s) => Response::new(200, "application/json", s + "\n"),
                    Err(e) => Response::text(500, format!("{e}\n")),
                },
                "markdown" => Response::new(
                    200,
                    "text/markdown; charset=utf-8",
                    render::markdown::render(&d),
                ),
                "text" => Response::text(200, render::text::render(&d)),
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
