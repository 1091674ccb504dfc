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
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::render::{self, Diagnosis};
use crate::roots::Roots;
use crate::sampler::{Consumer, Sampler, SamplerOptions, Tee};
use crate::trace::TracingChoice;
use exporter::{CollectorRun, ExportOptions, Exporter, Family, Value};
use http::{Request, Response};

pub use crate::sampler::Collectors;

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
    /// `--record DIR`: the flight recorder on the same sampler.
    pub record: Option<crate::record::RecordOptions>,
    /// With `record`: incidents captured as they happen, in its store.
    pub incidents: Option<crate::record::incident::IncidentOptions>,
}

impl ServeOptions {
    pub fn sampler(&self) -> SamplerOptions {
        SamplerOptions {
            interval: self.interval,
            tracing: self.tracing,
            collectors: self.collectors,
            fds_refresh: self.fds_refresh,
            burst: None,
        }
    }
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

/// The sampler's consumer for the server: the exporter's accounts and the reports.
struct Publisher {
    exporter: Exporter,
    latest: Arc<Mutex<Latest>>,
    /// With `--record`: the incidents opened so far, by kind.
    incidents: Option<crate::record::incident::Counts>,
}

impl Publisher {
    fn reports(d: &Diagnosis) -> Result<Reports> {
        Ok(Reports {
            json: serde_json::to_string_pretty(&render::build_report(d))? + "\n",
            markdown: render::markdown::render(d),
            text: render::text::render(d),
        })
    }
}

impl Consumer for Publisher {
    fn window(&mut self, d: &Diagnosis, runs: &[CollectorRun]) {
        self.exporter
            .observe(&d.interval, &d.findings, runs.to_vec());
        let mut families = self
            .exporter
            .families(env!("CARGO_PKG_VERSION"), build_revision());
        if let Some(f) = self.incidents.as_ref().and_then(incidents_family) {
            families.push(f);
        }
        match Publisher::reports(d) {
            Ok(reports) => {
                if let Ok(mut l) = self.latest.lock() {
                    l.families = Arc::new(families);
                    l.reports = Some(Arc::new(reports));
                    l.published = Some(Instant::now());
                    l.error = None;
                }
            }
            Err(e) => set_error(&self.latest, format!("rendering the report failed: {e:#}")),
        }
    }

    fn failed(&mut self, why: String) {
        set_error(&self.latest, why);
    }
}

/// `iowhy_incidents_total{kind}`, once there is one.
fn incidents_family(c: &crate::record::incident::Counts) -> Option<Family> {
    let counts = c.lock().unwrap_or_else(|e| e.into_inner());
    (!counts.is_empty()).then(|| Family {
        field: crate::fields::INCIDENTS,
        samples: counts
            .iter()
            .map(|(k, n)| (vec![k.clone()], Value::Num(*n as f64)))
            .collect(),
    })
}

fn set_error(latest: &Mutex<Latest>, e: String) {
    if let Ok(mut l) = latest.lock() {
        l.error = Some(e);
    }
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
    let mut publisher = Publisher {
        exporter: Exporter::new(opts.export),
        latest: latest.clone(),
        incidents: None,
    };
    let mut rest: Vec<Box<dyn Consumer + Send>> = Vec::new();
    let mut sopts = opts.sampler();
    if let Some(r) = &opts.record {
        rest.push(Box::new(crate::record::Recorder::start(r, roots)?));
        if let Some(io) = &opts.incidents {
            let burst = Arc::new(crate::record::incident::Burst::default());
            let inc = crate::record::incident::Incidents::new(&r.dir, io.clone(), burst.clone())?;
            if let Err(e) = inc.watch_psi(roots) {
                eprintln!(
                    "iowhy serve: no PSI trigger ({e:#}): stalls are seen per --interval only"
                );
            }
            sopts.burst = Some(burst);
            publisher.incidents = Some(inc.counts.clone());
            rest.push(Box::new(inc));
        }
    }
    let mut consumers: Vec<Box<dyn Consumer + Send>> = vec![Box::new(publisher)];
    consumers.extend(rest);
    let (st, r2, o1) = (stop.clone(), roots.clone(), sopts);
    // The sampler (its collector and tracing session) lives on its own thread; whether
    // it could open comes back before anything is served.
    let (opened, ok) = std::sync::mpsc::channel::<Result<()>>();
    let sampler_thread = std::thread::Builder::new()
        .name("iowhy-sampler".into())
        .spawn(move || match Sampler::open(&r2, &o1) {
            Ok(s) => {
                let _ = opened.send(Ok(()));
                let mut tee = Tee(consumers);
                s.run(&mut tee, &st);
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
    fn the_recorders_incidents_are_counted_in_the_metrics_by_kind() {
        let iv = crate::findings::fixture_interval("fsync-logger");
        let found = crate::findings::run_all(&iv);
        let d = Diagnosis::new(iv, found, "perf");
        let counts: crate::record::incident::Counts = Default::default();
        let latest = Arc::new(Mutex::new(Latest::default()));
        let mut p = Publisher {
            exporter: Exporter::new(crate::serve::exporter::ExportOptions {
                top_n: 20,
                files_top_n: 10,
                linger_s: 600.0,
            }),
            latest: latest.clone(),
            incidents: Some(counts.clone()),
        };
        let text = |l: &Mutex<Latest>| expo::render((*l.lock().unwrap().families).clone());
        p.window(&d, &[]);
        // None yet: no series (a counter appears with its first incident).
        assert!(!text(&latest).contains("iowhy_incidents_total"));
        counts.lock().unwrap().insert("fsync_storm".into(), 2);
        p.window(&d, &[]);
        let out = text(&latest);
        assert!(
            out.contains("# TYPE iowhy_incidents_total counter\n"),
            "{out}"
        );
        assert!(
            out.contains("iowhy_incidents_total{kind=\"fsync_storm\"} 2\n"),
            "{out}"
        );
        assert_eq!(expo::lint(&out), Vec::<String>::new());
    }
}
