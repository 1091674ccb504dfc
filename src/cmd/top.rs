//! `iowhy top`: processes doing I/O, like `iotop -o` and `pidstat -d`. On a terminal, the
//! interactive screen (`crate::tui`); batch mode (`-b`, or stdout not a terminal) prints
//! `-n` reports with iotop's batch flags (`-o -P -a -k -t -q`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cmd::{Global, OutputFormat, TEXT_JSON, Tracing, emit, format_parser};
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

/// How `iowhy top` differs from iotop, for `--help`.
const DIFFERENCES: &str = "\
Differences from iotop:
  - Only processes doing I/O are listed by default (iotop -o); --all, or `o` on the
    screen, shows every process. -o is accepted.
  - Processes, never threads (iotop -P is the only mode; -P is accepted): per-thread
    I/O counters are not read; D-state threads show in the detail pane.
  - IO-WAIT% is delay accounting over the window, like iotop's IO>; it needs
    kernel.task_delayacct=1. There is no SWAPIN or PRIO column.
  - The screen adds the disks (util, aqu-sz against queue depth, awaits, IOPS, MB/s,
    a sparkline of the last minute), PSI io, the top finding of the rules, and per
    process its container, fsync rate (perf tracing, root), the file it writes most
    and that file's device.
  - Keys: space (and z) pause, not reverse as in iotop-c (r reverses); t/T step
    through samples while paused; / filters on PID, command, user, container and
    file (a substring, not a regex); Enter opens the detail pane (open files with
    growth and flags, fsync latency, cgroup, wchan, and the pause/throttle/rotate
    commands to copy: nothing runs from a key press); Tab cycles processes, files,
    devices, containers; ? help. `i` (ionice) asks first and applies only on `y`;
    IOWHY_NO_RENICE=1 disables it. `a` cycles rate, accumulated and average, as
    iotop-c's does.
  - -t prints UTC times. -k prints K/s (KiB). --format json (JSON Lines) in batch.
  - No replay yet (--at/--file need the flight recorder).";

#[derive(Args, Debug, Clone)]
#[command(after_long_help = DIFFERENCES)]
pub struct TopArgs {
    /// Batch mode: print reports one after another instead of the interactive screen
    /// (also when stdout is not a terminal).
    #[arg(short = 'b', long)]
    pub batch: bool,
    /// Number of reports (default: until interrupted; 1 in batch mode without a terminal).
    #[arg(short = 'n', long = "iterations", value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,
    /// Seconds between reports.
    #[arg(short = 'd', long = "delay", default_value = "1s", value_parser = parse_duration)]
    pub delay: Duration,
    /// Show every process, not only those doing I/O (iotop without -o).
    #[arg(long, conflicts_with = "only")]
    pub all: bool,
    /// Only processes doing I/O (the default; iotop's -o).
    #[arg(short = 'o', long)]
    pub only: bool,
    /// Processes, not threads (the only mode; iotop's -P, accepted).
    #[arg(short = 'P', long)]
    pub processes: bool,
    /// Accumulated bytes since the start instead of rates (iotop's -a).
    #[arg(short = 'a', long)]
    pub accumulated: bool,
    /// Kilobytes (K/s, KiB) instead of human units, batch mode (iotop's -k).
    #[arg(short = 'k', long)]
    pub kilobytes: bool,
    /// Prefix each line with the time, UTC (implies -b; iotop's -t).
    #[arg(short = 't', long)]
    pub time: bool,
    /// -q: column names only in the first report; -qq: never; -qqq: no summary lines
    /// either (implies -b; iotop's -q).
    #[arg(short = 'q', long, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// Sort by write, read, io (read + write) or wait (I/O wait %).
    #[arg(long, value_enum, default_value_t = SortKey::Io)]
    pub sort: SortKey,
    /// Show at most this many processes per report.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
    /// The screen's tracing layer for FSYNC/s (auto means perf: it costs writers
    /// nothing measurable; off: no tracing). Batch mode does not trace.
    #[arg(long, value_enum, default_value_t = Tracing::Auto)]
    pub tracing: Tracing,
}

pub fn run(g: &Global, a: &TopArgs) -> Result<()> {
    if a.delay < Duration::from_millis(100) {
        return Err(usage("--delay must be at least 0.1 s"));
    }
    let mut c = g.collector()?;
    let stop = super::stop_flag();
    let batch = a.batch || a.time || a.quiet > 0;
    if !batch && std::io::stdout().is_terminal() && a.format == OutputFormat::Text {
        let o = crate::tui::Options {
            delay: a.delay,
            tracing: match a.tracing {
                Tracing::Auto => crate::trace::TracingChoice::Perf,
                t => t.into(),
            },
            fds_refresh: Duration::from_secs(60),
        };
        return crate::tui::run(c, o, stop);
    }
    let opts = SnapshotOptions {
        processes: Some(ProcessOptions {
            threads: true,
            details: true,
            ..Default::default()
        }),
        mounts: false,
        block: true,
        containers: false,
        carry: None,
    };
    let total = a
        .iterations
        .unwrap_or(if c.is_live() { u64::MAX } else { 1 });
    let mut prev = c.snapshot(&opts)?;
    let mut acc = Accumulated::default();
    for i in 0..total {
        if !c.wait(a.delay, &stop, |_| {}) || c.exhausted() {
            break;
        }
        let s = c.snapshot(&opts)?;
        let iv = Interval::new(prev, s);
        acc.add(&iv);
        let out = match a.format {
            OutputFormat::Json => serde_json::to_string(&sample(&iv, a, &acc))? + "\n",
            OutputFormat::Text | OutputFormat::Markdown => {
                let mut o = String::new();
                if i > 0 && a.quiet == 0 {
                    o.push('\n');
                }
                o.push_str(&text(&iv, a, &acc, i == 0));
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

/// Bytes read and written per process since the first report (`-a`), by pid and start
/// time (a reused pid starts from zero).
#[derive(Default)]
struct Accumulated {
    bytes: HashMap<(u32, u64), (f64, f64)>,
    keys: HashMap<u32, (u32, u64)>,
}

impl Accumulated {
    fn add(&mut self, iv: &Interval) {
        self.keys = iv
            .after
            .processes
            .iter()
            .map(|p| (p.pid, p.key()))
            .collect();
        for p in &iv.processes {
            let k = self.keys.get(&p.pid).copied().unwrap_or((p.pid, 0));
            let e = self.bytes.entry(k).or_default();
            e.0 += p.read_bytes_per_s.unwrap_or(0.0) * iv.elapsed_s;
            e.1 += p.write_bytes_per_s.unwrap_or(0.0) * iv.elapsed_s;
        }
    }

    /// (read, write) bytes since the start.
    fn of(&self, pid: u32) -> (f64, f64) {
        self.keys
            .get(&pid)
            .and_then(|k| self.bytes.get(k))
            .copied()
            .unwrap_or_default()
    }
}

fn pick<'a>(iv: &'a Interval, a: &TopArgs, acc: &Accumulated) -> Vec<&'a ProcessRates> {
    let mut v: Vec<&ProcessRates> = iv
        .processes
        .iter()
        .filter(|p| a.all || p.is_active() || (a.accumulated && acc.of(p.pid) != (0.0, 0.0)))
        .collect();
    let key = |p: &ProcessRates| {
        let (r, w) = if a.accumulated {
            acc.of(p.pid)
        } else {
            (
                p.read_bytes_per_s.unwrap_or(0.0),
                p.write_bytes_per_s.unwrap_or(0.0),
            )
        };
        match a.sort {
            SortKey::Write => w,
            SortKey::Read => r,
            SortKey::Io => r + w,
            SortKey::Wait => p.io_wait_pct.unwrap_or(0.0),
        }
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

/// A rate (or, with `-a`, an amount) as `-k` or human units.
fn amount(v: f64, a: &TopArgs) -> String {
    match (a.kilobytes, a.accumulated) {
        (true, false) => format!("{:.2} K/s", v / 1024.0),
        (true, true) => format!("{:.2} K", v / 1024.0),
        (false, false) => units::rate(v),
        (false, true) => units::bytes(v),
    }
}

fn text(iv: &Interval, a: &TopArgs, acc: &Accumulated, first: bool) -> String {
    let (r, w, dr, dw) = totals(iv);
    let rate = |v: f64| {
        if a.kilobytes {
            format!("{:.2} K/s", v / 1024.0)
        } else {
            units::rate(v)
        }
    };
    let mut o = String::new();
    if a.quiet < 3 {
        let _ = writeln!(
            o,
            "Total DISK READ: {:>11} | Total DISK WRITE: {:>11}   (processes, {:.1} s)",
            rate(r),
            rate(w),
            iv.elapsed_s
        );
        let _ = writeln!(
            o,
            "Actual DISK READ: {:>10} | Actual DISK WRITE: {:>10}  (devices)",
            rate(dr),
            rate(dw)
        );
    }
    let mut t = Table::new(&[
        "PID",
        "UID",
        crate::fields::PROCESS_READ_BYTES.column(),
        crate::fields::PROCESS_WRITE_BYTES.column(),
        crate::fields::PROCESS_IO_WAIT.column(),
        "STATE",
        "COMMAND",
    ])
    .text_columns(&[5, 6]);
    for p in pick(iv, a, acc) {
        let (ar, aw) = acc.of(p.pid);
        let (rd, wr) = if a.accumulated {
            (Some(ar), Some(aw))
        } else {
            (p.read_bytes_per_s, p.write_bytes_per_s)
        };
        t.row(vec![
            p.pid.to_string(),
            p.uid.map(|u| u.to_string()).unwrap_or_else(|| "?".into()),
            rd.map(|v| amount(v, a)).unwrap_or_else(|| "?".into()),
            wr.map(|v| amount(v, a)).unwrap_or_else(|| "?".into()),
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
    let table = t.render();
    let names = a.quiet == 0 || (a.quiet == 1 && first);
    match table.split_once('\n') {
        Some((_, rows)) if !names => o.push_str(rows),
        _ => o.push_str(&table),
    }
    if !iv.after.delayacct.is_on() && a.quiet < 3 {
        o.push_str("IO-WAIT% needs delay accounting: sysctl kernel.task_delayacct=1\n");
    }
    if a.time {
        // iotop -t: every line starts with the time of the report.
        let clock = units::rfc3339(iv.after.wall_unix_ms);
        let hms = clock.get(11..19).unwrap_or("??:??:??");
        o = o.lines().map(|l| format!("{hms} {l}\n")).collect();
    }
    o
}

fn sample(iv: &Interval, a: &TopArgs, acc: &Accumulated) -> TopSample {
    let (r, w, dr, dw) = totals(iv);
    TopSample {
        timestamp: units::rfc3339(iv.after.wall_unix_ms),
        interval_seconds: iv.elapsed_s,
        total_read_bytes_per_s: r,
        total_write_bytes_per_s: w,
        device_read_bytes_per_s: dr,
        device_write_bytes_per_s: dw,
        processes: pick(iv, a, acc)
            .into_iter()
            .map(|p| {
                let (ar, aw) = acc.of(p.pid);
                TopProcess {
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
                    accumulated_read_bytes: a.accumulated.then_some(ar.round()),
                    accumulated_write_bytes: a.accumulated.then_some(aw.round()),
                }
            })
            .collect(),
    }
}
