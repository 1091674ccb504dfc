//! `iowhy pause PID --for DURATION`: the arguments and the printing; the experiment itself
//! (stop, measure, always resume) is [`crate::act::pause`].

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::{Global, OutputFormat, TEXT_JSON, emit, format_parser, stop_flag};
use crate::act::pause::{PauseOptions, PauseReport, check_resumed, pause};
use crate::units::parse_duration;

#[derive(Args, Debug, Clone)]
pub struct PauseArgs {
    /// The process to stop for a moment.
    #[arg(value_name = "PID")]
    pub pid: u32,
    /// How long to keep it stopped (at most 10 minutes).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub for_: std::time::Duration,
    /// How long to measure before and after the pause.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub measure: Duration,
    /// Pause a process others depend on (a shim, a database) without asking.
    #[arg(long)]
    pub yes: bool,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

pub fn run(g: &Global, a: &PauseArgs) -> Result<()> {
    g.live_only("pause")?;
    let roots = g.roots();
    let o = PauseOptions {
        pid: a.pid,
        for_: a.for_,
        measure: a.measure,
        yes: a.yes,
        dry_run: a.dry_run,
    };
    let r = pause(&roots, &o, &stop_flag)?;
    print(a, &r)?;
    check_resumed(&roots, &r)
}

fn print(a: &PauseArgs, r: &PauseReport) -> Result<()> {
    match a.format {
        OutputFormat::Json => emit(&(serde_json::to_string_pretty(r)? + "\n")),
        OutputFormat::Text | OutputFormat::Markdown => {
            let mut o = String::new();
            for w in &r.warnings {
                o.push_str(&format!("warning: {w}\n"));
            }
            if r.dry_run {
                o.push_str(&format!("dry run: {}\n", r.summary));
                return emit(&o);
            }
            o.push_str(&format!(
                "paused pid {} ({}) for {:.1} s; {}\n",
                r.pid,
                r.comm,
                r.paused_s,
                if r.resumed {
                    "resumed"
                } else {
                    "NOT confirmed resumed"
                }
            ));
            let mut t = crate::render::table::Table::new(&[
                "DEVICE", "PHASE", "%util", "await ms", "w/s", "wkB/s", "f/s",
            ])
            .text_columns(&[1]);
            for d in &r.devices {
                for (n, p) in [
                    ("before", &d.before),
                    ("paused", &d.during),
                    ("after", &d.after),
                ] {
                    t.row(vec![
                        d.device.clone(),
                        n.into(),
                        format!("{:.1}", p.util_pct),
                        format!("{:.2}", p.await_ms),
                        format!("{:.1}", p.w_per_s),
                        format!("{:.1}", p.wkb_per_s),
                        format!("{:.1}", p.f_per_s),
                    ]);
                }
            }
            o.push_str(&t.render());
            if let Some([b, d, af]) = r.psi_some_pct {
                o.push_str(&format!(
                    "I/O pressure (some): {b:.0}% → {d:.0}% → {af:.0}%\n"
                ));
            }
            o.push_str(&format!("{}\n", r.summary));
            emit(&o)
        }
    }
}
