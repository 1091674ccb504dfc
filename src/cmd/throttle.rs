//! `iowhy throttle PID --write-bps RATE [--for DURATION]` and `iowhy throttle --undo PID`:
//! the arguments and the printing; the cgroup limit, its saved intent and its undo are
//! [`crate::act::throttle`].

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::{Global, OutputFormat, TEXT_JSON, emit, format_parser, stop_flag};
use crate::act::cgroup::{Hierarchy, Limits};
use crate::act::throttle::{ThrottleOptions, ThrottleReport, throttle};
use crate::units;
use crate::units::{parse_bytes, parse_duration};

#[derive(Args, Debug, Clone)]
pub struct ThrottleArgs {
    #[arg(value_name = "PID")]
    pub pid: u32,
    /// Lift a throttle set earlier.
    #[arg(long, conflicts_with_all = ["write_bps", "read_bps", "write_iops", "read_iops", "for_"])]
    pub undo: bool,
    /// Write bandwidth limit, e.g. 10M (bytes per second).
    #[arg(long, value_parser = parse_bytes)]
    pub write_bps: Option<u64>,
    #[arg(long, value_parser = parse_bytes)]
    pub read_bps: Option<u64>,
    #[arg(long)]
    pub write_iops: Option<u64>,
    #[arg(long)]
    pub read_iops: Option<u64>,
    /// Lift the limit after this long (iowhy waits; a guardian lifts it if iowhy dies).
    /// Without it, the limit stays until `iowhy throttle --undo PID`.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub for_: Option<Duration>,
    /// Limit on this disk instead of the ones behind the process's files (repeatable).
    #[arg(long = "device", value_name = "NAME")]
    pub devices: Vec<String>,
    /// How long to measure the process's I/O rate before and after.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub measure: Duration,
    /// Throttle a process others depend on without asking.
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

pub fn run(g: &Global, a: &ThrottleArgs) -> Result<()> {
    g.live_only("throttle")?;
    let o = ThrottleOptions {
        pid: a.pid,
        undo: a.undo,
        limits: Limits {
            read_bps: a.read_bps,
            write_bps: a.write_bps,
            read_iops: a.read_iops,
            write_iops: a.write_iops,
        },
        for_: a.for_,
        devices: a.devices.clone(),
        measure: a.measure,
        yes: a.yes,
        dry_run: a.dry_run,
    };
    let r = throttle(&g.roots(), &o, &stop_flag)?;
    print(a, &r)
}

fn print(a: &ThrottleArgs, r: &ThrottleReport) -> Result<()> {
    match a.format {
        OutputFormat::Json => emit(&(serde_json::to_string_pretty(r)? + "\n")),
        OutputFormat::Text | OutputFormat::Markdown => {
            let mut o = String::new();
            if r.action == "undo" {
                o.push_str(&format!(
                    "lifted the throttle on pid {}{}\n",
                    r.pid,
                    if r.comm.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", r.comm)
                    }
                ));
                for n in &r.notes {
                    o.push_str(&format!("  note: {n}\n"));
                }
                return emit(&o);
            }
            let l = r.limits.unwrap_or_default();
            let lim: Vec<String> = [
                ("write", l.write_bps.map(|v| units::rate(v as f64))),
                ("read", l.read_bps.map(|v| units::rate(v as f64))),
                ("write IOPS", l.write_iops.map(|v| v.to_string())),
                ("read IOPS", l.read_iops.map(|v| v.to_string())),
            ]
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| format!("{n} {v}")))
            .collect();
            o.push_str(&format!(
                "{}throttle pid {} ({}) to {} on {} ({:?}, group {})\n",
                if r.dry_run { "dry run: " } else { "" },
                r.pid,
                r.comm,
                lim.join(", "),
                r.devices.join(", "),
                r.hierarchy.unwrap_or(Hierarchy::V1),
                r.group.clone().unwrap_or_default()
            ));
            for (n, x) in [
                ("before", &r.before),
                ("limited", &r.during),
                ("after", &r.after),
            ] {
                if let Some(x) = x {
                    o.push_str(&format!(
                        "  {n:8} writes {}, reads {} (over {:.1} s)\n",
                        units::rate(x.write_bytes_per_s),
                        units::rate(x.read_bytes_per_s),
                        x.seconds
                    ));
                }
            }
            if r.lifted {
                o.push_str("  the limit is lifted\n");
            }
            for n in &r.notes {
                o.push_str(&format!("  note: {n}\n"));
            }
            emit(&o)
        }
    }
}
