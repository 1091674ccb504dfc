//! `iowhy record` (the flight recorder), `record ls`, `record export`, `record when`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cmd::{Global, OutputFormat, TEXT_JSON, Tracing, emit, format_parser};
use crate::error::usage;
use crate::record::store::{self, Source};
use crate::record::{self as rec, RecordOptions, Recorder, Retention, when};
use crate::sampler::{Collectors, Sampler, SamplerOptions};
use crate::units::{parse_bytes, parse_duration};

/// Retention, whichever bites first (shared with `serve --record`).
#[derive(Args, Debug, Clone)]
pub struct RetentionArgs {
    /// Remove segments older than this (0: keep by age forever).
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_retain)]
    pub retain: Duration,
    /// Remove the oldest segments while the store is bigger than this (0: no limit).
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_bytes)]
    pub max_size: u64,
    /// Remove the oldest segments while its filesystem has less free than this.
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = parse_pct)]
    pub min_free: f64,
}

impl RetentionArgs {
    pub fn retention(&self) -> Retention {
        Retention {
            max_age: (!self.retain.is_zero()).then_some(self.retain),
            max_bytes: (self.max_size > 0).then_some(self.max_size),
            min_free_pct: (self.min_free > 0.0).then_some(self.min_free),
        }
    }
}

/// Retention is counted in days: up to ten years, beyond the 7-day cap of other durations.
fn parse_retain(s: &str) -> std::result::Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .or_else(|_| parse_duration(s))
        .map_err(|e| format!("{s:?}: {e}"))?;
    if d > Duration::from_secs(3650 * 86_400) {
        return Err(format!("{s:?}: at most 10 years"));
    }
    Ok(d)
}

fn parse_pct(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?}: want a percentage like 5%"))?;
    if !(0.0..=90.0).contains(&v) {
        return Err(format!("{s:?}: between 0% and 90%"));
    }
    Ok(v)
}

#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true, after_help = AFTER_HELP)]
pub struct RecordArgs {
    #[command(subcommand)]
    pub sub: Option<RecordSub>,
    /// The store: one segment file per start and per UTC hour.
    #[arg(long, value_name = "DIR", default_value = rec::DEFAULT_DIR)]
    pub dir: PathBuf,
    /// How often to sample.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub interval: Duration,
    #[command(flatten)]
    pub retention: RetentionArgs,
    /// The tracing layer for sync calls and per-file writes (auto = perf: it costs
    /// writers nothing measurable).
    #[arg(long, value_enum, default_value_t = Tracing::Auto)]
    pub tracing: Tracing,
    /// zstd level of the samples.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// A sample compressed on its own every N (the others against the previous one).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub key_every: u32,
    #[command(flatten)]
    pub incidents: IncidentArgs,
}

/// Incidents captured as they happen (shared with `serve --record`).
#[derive(Args, Debug, Clone)]
pub struct IncidentArgs {
    /// Do not capture incidents (a stall's 1 s samples and its note).
    #[arg(long)]
    pub no_incidents: bool,
    /// PSI io `full` share (of a window, or of any second with a kernel trigger) that
    /// starts an incident; a critical finding starts one too.
    #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_pct)]
    pub incident_psi_full: f64,
}

impl IncidentArgs {
    pub fn options(&self) -> Option<crate::record::incident::IncidentOptions> {
        (!self.no_incidents).then(|| crate::record::incident::IncidentOptions {
            psi_full_pct: self.incident_psi_full.max(0.1),
            ..Default::default()
        })
    }
}

#[derive(Subcommand, Debug, Clone)]
pub enum RecordSub {
    /// What the store holds: segments, coverage, gaps, reboots, bytes per day.
    Ls {
        #[arg(long, value_name = "DIR", default_value = rec::DEFAULT_DIR)]
        dir: PathBuf,
        #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
        format: OutputFormat,
    },
    /// Write the samples between two times into one file that `iowhy diagnose --file`
    /// reads on any machine (attach it to a ticket).
    Export {
        #[arg(long, value_name = "DIR", default_value = rec::DEFAULT_DIR)]
        dir: PathBuf,
        #[arg(long, value_name = "TIME")]
        from: String,
        #[arg(long, value_name = "TIME", default_value = "now")]
        to: String,
        #[arg(long, short = 'o', value_name = "FILE")]
        output: PathBuf,
    },
    /// Print what a TIME means (local time and UTC), as --at reads it.
    When { time: String },
}

const AFTER_HELP: &str = "\
Records raw snapshots (every counter, not rates) and each interval's trace counters,
compressed (zstd, each sample against the previous one), in append-only segment files:
a new file at each start and each UTC hour, so a crash or kill -9 loses at most the
sample being written. The writer runs at nice 10 and idle-ish I/O priority behind a
bounded queue (a full queue drops the sample and records the gap), never fsyncs per
sample, and warns when the store is on the busiest disk.

Read it back with the usual commands:
    iowhy diagnose --at 03:00 [--window 5m]     # the worst moment and a timeline
    iowhy iostat -x --at '10m ago' 10 5
    iowhy top -b --at 2026-03-08T03:00:00Z
    iowhy record ls
    iowhy record export --from 02:50 --to 03:10 -o incident.iowhyrec
    iowhy diagnose --file incident.iowhyrec     # on another machine

A critical finding or PSI io full above --incident-psi-full opens an incident: a minute
of 1 s samples with every fd table, and the worst window's report (iowhy incidents).

With --fixture DIR, records the fixture's time points (and stops).";

pub fn run(g: &Global, a: &RecordArgs) -> Result<()> {
    match &a.sub {
        None => record(g, a),
        Some(RecordSub::Ls { dir, format }) => ls(dir, *format),
        Some(RecordSub::Export {
            dir,
            from,
            to,
            output,
        }) => {
            let (f, t) = (when::parse(from)?, when::parse(to)?);
            if f > t {
                return Err(usage("--from is after --to"));
            }
            let n = store::export(&Source::Dir(dir.clone()), f, t, output)?;
            if n == 0 {
                return Err(usage(format!(
                    "no samples between {} and {} ({})",
                    when::show(f),
                    when::show(t),
                    store::coverage(&Source::Dir(dir.clone()))
                        .unwrap_or_else(|| "the store is empty".into())
                )));
            }
            emit(&format!("{n} samples written to {}\n", output.display()))
        }
        Some(RecordSub::When { time }) => {
            let t = when::parse(time)?;
            emit(&format!(
                "{}\n{}\n",
                when::show(t),
                crate::units::rfc3339(t)
            ))
        }
    }
}

fn record(g: &Global, a: &RecordArgs) -> Result<()> {
    if a.interval < Duration::from_millis(500) {
        return Err(usage("--interval must be at least 500ms"));
    }
    let mut opts = RecordOptions::new(a.dir.clone(), a.interval);
    opts.retention = a.retention.retention();
    opts.zstd_level = a.level;
    opts.key_every = a.key_every;
    let burst = std::sync::Arc::new(crate::record::incident::Burst::default());
    let incidents = a.incidents.options();
    let sopts = SamplerOptions {
        burst: incidents.as_ref().map(|_| burst.clone()),
        interval: a.interval,
        tracing: match a.tracing {
            Tracing::Auto => crate::trace::TracingChoice::Perf,
            t => t.into(),
        },
        collectors: Collectors {
            tracing: a.tracing != Tracing::Off,
            ..Collectors::ALL
        },
        // A fixture's every time point is read whole, as `--fixture diagnose` reads it.
        fds_refresh: if g.fixture.is_some() {
            Duration::ZERO
        } else {
            Duration::from_secs(60)
        },
    };
    let (sampler, roots) = match &g.fixture {
        Some(_) => {
            let c = g.collector()?;
            let roots = c.roots();
            (Sampler::with_collector(c, None, Vec::new(), &sopts), roots)
        }
        None => (Sampler::open(&g.roots(), &sopts)?, g.roots()),
    };
    let recorder = Recorder::start(&opts, &roots)?;
    let mut consumers: Vec<Box<dyn crate::sampler::Consumer + Send>> = vec![Box::new(recorder)];
    if let Some(io) = incidents {
        let inc = crate::record::incident::Incidents::new(&a.dir, io, burst)?;
        if g.fixture.is_none() {
            if let Err(e) = inc.watch_psi(&roots) {
                eprintln!(
                    "iowhy record: no PSI trigger ({e:#}): stalls are seen per --interval only"
                );
            }
        }
        consumers.push(Box::new(inc));
    }
    let stop = super::stop_flag();
    let mut tee = crate::sampler::Tee(consumers);
    sampler.run(&mut tee, &stop);
    // Dropping the recorder writes what is queued and closes its segment.
    drop(tee);
    Ok(())
}

fn ls(dir: &std::path::Path, format: OutputFormat) -> Result<()> {
    if !dir.is_dir() {
        return Err(usage(format!("{}: no such store", dir.display())));
    }
    let l = store::listing(&Source::Dir(dir.to_path_buf()), &dir.to_string_lossy())?;
    if format == OutputFormat::Json {
        return emit(&(serde_json::to_string_pretty(&l)? + "\n"));
    }
    emit(&render_ls(&l))
}

fn local(t: &Option<String>) -> String {
    t.as_deref()
        .and_then(|s| humantime::parse_rfc3339(s).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| when::show(d.as_millis() as i64))
        .unwrap_or_else(|| "-".into())
}

fn render_ls(l: &crate::wire::record::Listing) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "iowhy record store {}", l.dir);
    let _ = writeln!(
        o,
        "{} samples, {} in {} segments, {} a day",
        l.samples,
        crate::units::bytes_u(l.bytes),
        l.segments.len(),
        if l.bytes_per_day.is_finite() {
            crate::units::bytes(l.bytes_per_day)
        } else {
            "-".into()
        }
    );
    let _ = writeln!(o, "from {}\nto   {}", local(&l.first), local(&l.last));
    let _ = writeln!(o, "\nSegments");
    for s in &l.segments {
        let _ = writeln!(
            o,
            "  {}  {:>9}  {:>5} samples  {}",
            s.file,
            crate::units::bytes_u(s.bytes),
            s.samples,
            s.host.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(o, "\nGaps{}", if l.gaps.is_empty() { ": none" } else { "" });
    for g in &l.gaps {
        let why = if g.dropped > 0 {
            format!("{} samples dropped (the writer fell behind)", g.dropped)
        } else {
            "not recording".into()
        };
        let _ = writeln!(
            o,
            "  {} .. {}  {}  {why}",
            local(&Some(g.from.clone())),
            local(&Some(g.to.clone())),
            crate::units::duration(g.seconds)
        );
    }
    let _ = writeln!(
        o,
        "\nReboots{}",
        if l.reboots.is_empty() { ": none" } else { "" }
    );
    for r in &l.reboots {
        let _ = writeln!(o, "  {}", local(&Some(r.clone())));
    }
    if !l.notes.is_empty() {
        let _ = writeln!(o, "\nDamage skipped");
        for n in &l.notes {
            let _ = writeln!(o, "  - {n}");
        }
    }
    o
}
