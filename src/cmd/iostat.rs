//! `iowhy iostat`: sysstat's `iostat -d` / `-dx` device report with the same formulas,
//! the same columns and, with `--format json`, sysstat's own keys (one object per
//! interval, JSON Lines). The first report covers the time since boot, as sysstat's does.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use crate::cmd::{Global, OutputFormat, TEXT_JSON, emit, format_parser};
use crate::error::usage;
use crate::interval::disk::{self, DeviceRates};
use crate::snapshot::Snapshot;
use crate::source::SnapshotOptions;
use crate::units;
use crate::units::parse_duration;
use crate::wire::iostat::{IostatBasic, IostatDevice, IostatSample};
use crate::wire::r2n;

#[derive(Args, Debug, Clone)]
pub struct IostatArgs {
    /// Extended statistics (r/s w/s ... aqu-sz %util), like `iostat -x`.
    #[arg(short = 'x')]
    pub extended: bool,
    /// Leave out devices with no activity in the interval, like `iostat -z`.
    #[arg(short = 'z')]
    pub omit_idle: bool,
    /// Every device and partition, idle ones too, like `iostat -p ALL`.
    #[arg(short = 'p')]
    pub partitions: bool,
    /// Skip the first report (statistics since boot), like `iostat -y`.
    #[arg(short = 'y')]
    pub skip_since_boot: bool,
    /// Only these devices (repeatable).
    #[arg(long = "device", value_name = "NAME")]
    pub devices: Vec<String>,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
    /// Seconds between reports (e.g. 1, 0.5, 2s). Without it: one report since boot.
    #[arg(value_name = "INTERVAL", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Number of reports (default: until interrupted).
    #[arg(value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

pub fn run(g: &Global, a: &IostatArgs) -> Result<()> {
    if a.interval.is_some_and(|i| i < Duration::from_millis(100)) {
        return Err(usage("the interval must be at least 0.1 s"));
    }
    let mut c = g.collector()?;
    let stop = super::stop_flag();
    let opts = SnapshotOptions::devices();
    let mut prev: Option<Snapshot> = None;
    // Reports to print: one (since boot) without an interval; `count` with one; forever
    // without a count.
    let total = match (a.interval, a.count) {
        (None, _) => 1,
        (Some(_), Some(n)) => n,
        (Some(_), None) => u64::MAX,
    };
    let mut printed = 0u64;
    let mut next = Instant::now();
    let mut header_done = false;
    while printed < total && !c.exhausted() {
        let s = c.snapshot(&opts)?;
        if prev.is_some() || !a.skip_since_boot || a.interval.is_none() {
            let itv = match &prev {
                Some(p) => disk::itv_cs(p.uptime_s, s.uptime_s),
                None => disk::itv_cs(0.0, s.uptime_s),
            };
            let devs = select(a, prev.as_ref(), &s, itv);
            let out = match a.format {
                OutputFormat::Json => {
                    let timestamp = units::rfc3339(s.wall_unix_ms);
                    let interval_seconds = r2n(itv as f64 / 100.0);
                    let line = if a.extended {
                        serde_json::to_string(&IostatSample {
                            timestamp,
                            interval_seconds,
                            disk: devs.iter().map(IostatDevice::sysstat).collect(),
                        })?
                    } else {
                        serde_json::to_string(&IostatSample {
                            timestamp,
                            interval_seconds,
                            disk: devs.iter().map(|d| IostatBasic::sysstat(d, itv)).collect(),
                        })?
                    };
                    line + "\n"
                }
                OutputFormat::Text | OutputFormat::Markdown => {
                    let mut o = String::new();
                    if !header_done {
                        let _ = writeln!(
                            o,
                            "Linux {} ({})\t{}\n",
                            crate::hoststr::for_terminal(&s.kernel),
                            crate::hoststr::for_terminal(&s.hostname),
                            units::rfc3339(s.wall_unix_ms)
                        );
                        header_done = true;
                    }
                    o.push_str(&if a.extended {
                        table_x(&devs)
                    } else {
                        table_basic(&devs, itv)
                    });
                    o.push('\n');
                    o
                }
            };
            emit(&out)?;
            printed += 1;
        }
        prev = Some(s);
        let Some(interval) = a.interval else { break };
        if printed >= total {
            break;
        }
        // Keep a steady cadence like sysstat's alarm(): sleep to the next tick.
        // (The interval is at most MAX_DURATION; an Instant that cannot go further ends the run.)
        let Some(n) = next.checked_add(interval) else {
            break;
        };
        next = n;
        let now = Instant::now();
        if next > now && !c.wait(next - now, &stop, |_| {}) {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

fn select(a: &IostatArgs, prev: Option<&Snapshot>, s: &Snapshot, itv: u64) -> Vec<DeviceRates> {
    disk::all(
        prev.map(|p| p.disks.as_slice()),
        &s.disks,
        itv,
        &s.block,
        if a.partitions {
            disk::Listing::All
        } else {
            disk::Listing::Default
        },
    )
    .into_iter()
    .filter(|d| a.devices.is_empty() || a.devices.contains(&d.name))
    .filter(|d| !a.omit_idle || d.active)
    .collect()
}

/// sysstat's `iostat -dx` layout: `%-13s` then fixed-width columns.
const X_COLS: &[(&str, usize)] = &[
    ("r/s", 7),
    ("rkB/s", 9),
    ("rrqm/s", 8),
    ("%rrqm", 6),
    ("r_await", 7),
    ("rareq-sz", 8),
    ("w/s", 7),
    ("wkB/s", 9),
    ("wrqm/s", 8),
    ("%wrqm", 6),
    ("w_await", 7),
    ("wareq-sz", 8),
    ("d/s", 7),
    ("dkB/s", 9),
    ("drqm/s", 8),
    ("%drqm", 6),
    ("d_await", 7),
    ("dareq-sz", 8),
    ("f/s", 7),
    ("f_await", 7),
    ("aqu-sz", 7),
    ("%util", 6),
];

fn table_x(devs: &[DeviceRates]) -> String {
    let mut o = format!("{:<13}", "Device");
    for (h, w) in X_COLS {
        let _ = write!(o, " {h:>w$}");
    }
    o.push('\n');
    for d in devs {
        let vals = [
            d.r_s,
            d.rkb_s,
            d.rrqm_s,
            d.rrqm_pct,
            d.r_await_ms,
            d.rareq_sz_kb,
            d.w_s,
            d.wkb_s,
            d.wrqm_s,
            d.wrqm_pct,
            d.w_await_ms,
            d.wareq_sz_kb,
            d.d_s,
            d.dkb_s,
            d.drqm_s,
            d.drqm_pct,
            d.d_await_ms,
            d.dareq_sz_kb,
            d.f_s,
            d.f_await_ms,
            d.aqu_sz,
            d.util_pct,
        ];
        let _ = write!(o, "{:<13}", crate::hoststr::for_terminal(&d.name));
        for ((_, w), v) in X_COLS.iter().zip(vals) {
            let _ = write!(o, " {v:>w$.2}");
        }
        o.push('\n');
    }
    o
}

/// sysstat's basic `iostat -d` layout.
fn table_basic(devs: &[DeviceRates], itv: u64) -> String {
    let mut o = format!(
        "{:<13} {:>8} {:>12} {:>12} {:>12} {:>10} {:>10} {:>10}\n",
        "Device", "tps", "kB_read/s", "kB_wrtn/s", "kB_dscd/s", "kB_read", "kB_wrtn", "kB_dscd"
    );
    for d in devs {
        let b = IostatBasic::sysstat(d, itv);
        let _ = writeln!(
            o,
            "{:<13} {:>8.2} {:>12.2} {:>12.2} {:>12.2} {:>10} {:>10} {:>10}",
            crate::hoststr::for_terminal(&d.name),
            d.r_s + d.w_s + d.d_s,
            d.rkb_s,
            d.wkb_s,
            d.dkb_s,
            b.kb_read,
            b.kb_wrtn,
            b.kb_dscd
        );
    }
    o
}
