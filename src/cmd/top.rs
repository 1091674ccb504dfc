//! `iowhy top`: processes doing I/O, like `iotop -o` and `pidstat -d`. Batch mode (`-b`)
//! prints `-n` reports; on a terminal it redraws until Ctrl-C.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cmd::{Global, OutputFormat, TEXT_JSON, emit, format_parser};
use crate::error::usage;
use crate::interval::{Interval, ProcessRates};
use crate::render::table::Table;
use crate::source::{ProcessOptions, SnapshotOptions};
use crate::units;
use crate::units::parse_duration;
use crate::wire::r2o;
use crate::wire::top::{TopProcess, TopSample};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    Write,
    Read,
    Io,
    Wait,
}

#[derive(Args, Debug, Clone)]
pub struct TopArgs {
    /// Batch mode: print reports one after another instead of redrawing the screen.
    #[arg(short = 'b', long)]
    pub batch: bool,
    /// Number of reports (default: until interrupted; 1 in batch mode without a terminal).
    #[arg(short = 'n', long = "iterations", value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
    /// Seconds between reports.
    #[arg(short = 'd', long = "delay", default_value = "1s", value_parser = parse_duration)]
    pub delay: Duration,
    /// Show every process, not only those doing I/O (iotop without -o).
    #[arg(long)]
    pub all: bool,
    /// Sort by write, read, io (read + write) or wait (I/O wait %).
    #[arg(long, value_enum, default_value_t = SortKey::Io)]
    pub sort: SortKey,
    /// Show at most this many processes per report.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

pub fn run(g: &Global, a: &TopArgs) -> Result<()> {
    if a.delay < Duration::from_millis(100) {
        return Err(usage("--delay must be at least 0.1 s"));
    }
    let mut c = g.collector()?;
    let stop = super::stop_flag();
    let opts = SnapshotOptions {
        processes: Some(ProcessOptions {
            threads: true,
            details: true,
            ..Default::default()
        }),
        mounts: false,
        block: true,
        containers: false,
    };
    let redraw = !a.batch && std::io::stdout().is_terminal() && a.format == OutputFormat::Text;
    let total = a
        .iterations
        .unwrap_or(if redraw || c.is_live() { u64::MAX } else { 1 });
    let mut prev = c.snapshot(&opts)?;
    for i in 0..total {
        if !c.wait(a.delay, &stop, |_| {}) || c.exhausted() {
            break;
        }
        let s = c.snapshot(&opts)?;
        let iv = Interval::new(prev, s);
        let out = match a.format {
            OutputFormat::Json => serde_json::to_string(&sample(&iv, a))? + "\n",
            OutputFormat::Text | OutputFormat::Markdown => {
                let mut o = String::new();
                if redraw {
                    o.push_str("\x1b[H\x1b[2J");
                } else if i > 0 {
                    o.push('\n');
                }
                o.push_str(&text(&iv, a));
                o
            }
        };
        emit(&out)?;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        prev = iv.after;
    }
    Ok(())
}

fn pick<'a>(iv: &'a Interval, a: &TopArgs) -> Vec<&'a ProcessRates> {
    let mut v: Vec<&ProcessRates> = iv
        .processes
        .iter()
        .filter(|p| a.all || p.is_active())
        .collect();
    let key = |p: &ProcessRates| match a.sort {
        SortKey::Write => p.write_bytes_per_s.unwrap_or(0.0),
        SortKey::Read => p.read_bytes_per_s.unwrap_or(0.0),
        SortKey::Io => p.io_bytes_per_s(),
        SortKey::Wait => p.io_wait_pct.unwrap_or(0.0),
    };
    v.sort_by(|x, y| {
        key(y)
            .partial_cmp(&key(x))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(x.pid.cmp(&y.pid))
    });
    v.truncate(a.limit);
    v
}

fn totals(iv: &Interval) -> (f64, f64, f64, f64) {
    let r: f64 = iv.processes.iter().filter_map(|p| p.read_bytes_per_s).sum();
    let w: f64 = iv
        .processes
        .iter()
        .filter_map(|p| p.write_bytes_per_s)
        .sum();
    let dr: f64 = iv.whole_devices().map(|d| d.rkb_s * 1024.0).sum();
    let dw: f64 = iv.whole_devices().map(|d| d.wkb_s * 1024.0).sum();
    (r, w, dr, dw)
}

fn text(iv: &Interval, a: &TopArgs) -> String {
    let (r, w, dr, dw) = totals(iv);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Total DISK READ: {:>11} | Total DISK WRITE: {:>11}   (processes, {:.1} s)",
        units::rate(r),
        units::rate(w),
        iv.elapsed_s
    );
    let _ = writeln!(
        o,
        "Actual DISK READ: {:>10} | Actual DISK WRITE: {:>10}  (devices)",
        units::rate(dr),
        units::rate(dw)
    );
    let mut t = Table::new(&[
        "PID",
        "UID",
        "DISK READ",
        "DISK WRITE",
        "IO-WAIT%",
        "STATE",
        "COMMAND",
    ])
    .text_columns(&[5, 6]);
    for p in pick(iv, a) {
        t.row(vec![
            p.pid.to_string(),
            p.uid.map(|u| u.to_string()).unwrap_or_else(|| "?".into()),
            p.read_bytes_per_s
                .map(units::rate)
                .unwrap_or_else(|| "?".into()),
            p.write_bytes_per_s
                .map(units::rate)
                .unwrap_or_else(|| "?".into()),
            p.io_wait_pct
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "-".into()),
            if p.d_tasks > 0 {
                format!(
                    "D×{} {}",
                    p.d_tasks,
                    p.d_wchans.first().cloned().unwrap_or_default()
                )
            } else {
                p.state.to_string()
            },
            p.cmdline.chars().take(80).collect(),
        ]);
    }
    o.push_str(&t.render());
    if !iv.after.delayacct.is_on() {
        o.push_str("IO-WAIT% needs delay accounting: sysctl kernel.task_delayacct=1\n");
    }
    o
}

fn sample(iv: &Interval, a: &TopArgs) -> TopSample {
    let (r, w, dr, dw) = totals(iv);
    TopSample {
        timestamp: units::rfc3339(iv.after.wall_unix_ms),
        interval_seconds: iv.elapsed_s,
        total_read_bytes_per_s: r,
        total_write_bytes_per_s: w,
        device_read_bytes_per_s: dr,
        device_write_bytes_per_s: dw,
        processes: pick(iv, a)
            .into_iter()
            .map(|p| TopProcess {
                pid: p.pid,
                uid: p.uid,
                comm: p.comm.clone(),
                cmdline: p.cmdline.clone(),
                state: p.state.to_string(),
                read_bytes_per_s: r2o(p.read_bytes_per_s),
                write_bytes_per_s: r2o(p.write_bytes_per_s),
                cancelled_write_bytes_per_s: r2o(p.cancelled_write_bytes_per_s),
                io_wait_pct: r2o(p.io_wait_pct),
                d_state_threads: p.d_tasks,
                wchan: p.wchan.clone(),
            })
            .collect(),
    }
}
