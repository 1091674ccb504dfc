//! `iowhy diagnose` (the default command): two full snapshots `--duration` apart, every
//! rule, one report.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cli::{Global, emit, parse_duration};
use crate::error::usage;
use crate::findings;
use crate::interval::Interval;
use crate::render::{self, Diagnosis, Format};
use crate::source::SnapshotOptions;

#[derive(Args, Debug, Clone)]
pub struct DiagnoseArgs {
    /// How long to watch the machine (e.g. 5s, 500ms, 1m). Rates are averages over it.
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// text: the story for a person; json: the stable contract (DESIGN.md); markdown: an
    /// incident note for a ticket.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The shortest window that gives meaningful rates (/proc/uptime has 10 ms resolution).
const MIN_WINDOW: Duration = Duration::from_millis(200);

pub fn run(g: &Global, a: &DiagnoseArgs) -> Result<()> {
    if a.duration < MIN_WINDOW {
        return Err(usage(format!(
            "--duration must be at least {} ms",
            MIN_WINDOW.as_millis()
        )));
    }
    let d = diagnose(g, a.duration)?;
    let out = match a.format {
        Format::Text => render::text::render(&d),
        Format::Markdown => render::markdown::render(&d),
        Format::Json => serde_json::to_string_pretty(&render::build_report(&d))? + "\n",
    };
    emit(&out)
}

/// Take the two snapshots and run the rules. Ctrl-C during the window ends it early and
/// reports on what was seen so far.
pub fn diagnose(g: &Global, duration: Duration) -> Result<Diagnosis> {
    let mut c = g.collector()?;
    let opts = SnapshotOptions::full();
    let stop = super::stop_flag();
    let s0 = c.snapshot(&opts)?;
    let pb = (super::progress_wanted() && c.is_live()).then(|| {
        let pb = indicatif::ProgressBar::new(duration.as_millis() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("watching I/O {bar:30} {elapsed}/{msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_message(format!("{}s", duration.as_secs_f64()));
        pb
    });
    c.wait(duration, &stop, |el| {
        if let Some(pb) = &pb {
            pb.set_position(el.as_millis() as u64);
        }
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let s1 = c.snapshot(&opts)?;
    if stop.load(Ordering::Relaxed) && s1.uptime_s - s0.uptime_s < MIN_WINDOW.as_secs_f64() {
        return Err(anyhow::anyhow!(
            "interrupted before the window was long enough to measure"
        ));
    }
    let iv = Interval::new(s0, s1);
    let found = findings::run_all(&iv);
    let mut d = Diagnosis::new(iv, found, "none");
    d.capabilities.fixture = !c.is_live();
    Ok(d)
}
