//! `iowhy trace`: the figures `strace -c` would give — write and sync calls per process
//! and per file, sync latency, writes and bytes per sync — without ptrace, so the traced
//! process keeps its speed; and block request latency per device (eBPF layer).

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cmd::Tracing;
use crate::cmd::{Global, emit};
use crate::cmd::{OutputFormat, TEXT_JSON, format_parser};
use crate::error::usage;
use crate::interval::trace::{FileSyncRates, TraceRates};
use crate::parse::fdinfo;
use crate::render::table::Table;
use crate::trace::model::{FileTrace, ProcTrace, TraceData};
use crate::trace::{self, TraceRequest};
use crate::units;
use crate::units::{parse_bytes, parse_duration};
use crate::wire::trace::{
    SyncJson, SyscallJson, TraceDeviceJson, TraceFileJson, TraceJson, TraceProcessJson,
};
use crate::wire::{self, r2n};

#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    /// Trace only this process (repeatable); the kernel filters out the others.
    #[arg(long = "pid", short = 'p', value_name = "PID")]
    pub pids: Vec<u32>,
    /// Trace processes with this name (comm, repeatable).
    #[arg(long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,
    #[arg(long, short = 'd', default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Force a tracing layer (default: the best available: ebpf, then perf, then sampling).
    #[arg(long, value_enum, default_value_t = Tracing::Auto)]
    pub tracing: Tracing,
    /// perf ring buffer per CPU.
    #[arg(long, default_value = "1M", value_parser = parse_bytes)]
    pub ring_size: u64,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

fn ms(ns: Option<u64>) -> Option<f64> {
    ms4(ns.map(|v| v as f64 / 1e6))
}

/// Milliseconds to four decimals.
fn ms4(v: Option<f64>) -> Option<f64> {
    v.and_then(|v| wire::round(v, 4))
}

fn file_json(f: &FileTrace, r: &FileSyncRates) -> TraceFileJson {
    let all = f.all_syncs();
    let n = all.count;
    TraceFileJson {
        fd: f.fd,
        path: f.path.clone(),
        flags: f
            .flags
            .map(fdinfo::flag_names)
            .unwrap_or_default()
            .into_iter()
            .map(String::from)
            .collect(),
        writes: f.writes,
        write_bytes: f.write_bytes,
        writes_per_s: r2n(r.writes_per_s),
        syncs: f
            .syncs
            .iter()
            .map(|(k, h)| {
                (
                    k.name().to_string(),
                    SyncJson {
                        count: h.count,
                        per_s: r2n(r.kind_per_s.get(k).copied().unwrap_or(0.0)),
                        p50_ms: ms(h.quantile_ns(0.5)),
                        p99_ms: ms(h.quantile_ns(0.99)),
                        max_ms: h.max_ns as f64 / 1e6,
                    },
                )
            })
            .collect(),
        sync_per_s: r2n(r.syncs_per_s),
        writes_per_sync: wire::r2o(r.writes_per_sync),
        bytes_per_sync: wire::r2o(r.bytes_per_sync),
        sync_p50_ms: ms(all.quantile_ns(0.5)),
        sync_p99_ms: ms(all.quantile_ns(0.99)),
        sync_max_ms: (n > 0).then(|| all.max_ns as f64 / 1e6),
        sync_time_share: r.sync_time_share.and_then(|v| wire::round(v, 4)),
        sampled_sync_share: f.sampled_sync_share,
    }
}

fn syscalls_json(p: &ProcTrace, secs: f64) -> std::collections::BTreeMap<String, SyscallJson> {
    p.syscalls()
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                SyscallJson {
                    calls: v.calls,
                    per_s: r2n(v.calls as f64 / secs),
                    bytes: v.bytes,
                    total_ms: r2n(v.total_ns as f64 / 1e6),
                    us_per_call: r2n(v.total_ns as f64 / 1e3 / v.calls.max(1) as f64),
                    max_ms: v.max_ns.and_then(|m| wire::r2(m as f64 / 1e6)),
                },
            )
        })
        .collect()
}

/// Device names for block statistics, from diskstats; the error when they cannot be
/// read (the devices are then shown as major:minor).
fn dev_names(g: &Global) -> Result<std::collections::HashMap<(u32, u32), String>> {
    let roots = g.roots();
    let path = roots.proc("diskstats");
    let mut r = crate::source::reader::Reader::live(roots.clone());
    let text = r.read_path(&path)?;
    let devs = crate::parse::diskstats::parse(&text)
        .map_err(|e| crate::error::ReadError::parse(&path, e))?;
    Ok(devs
        .into_iter()
        .map(|d| ((d.major, d.minor), d.name))
        .collect())
}

fn to_json(d: &TraceData, names: &std::collections::HashMap<(u32, u32), String>) -> TraceJson {
    let rates = TraceRates::new(d);
    let secs = rates.window_s;
    let mut procs: Vec<&ProcTrace> = d
        .procs
        .values()
        .filter(|p| p.writes() > 0 || p.sync_count() > 0 || p.samples > 0)
        .collect();
    procs.sort_by_key(|p| std::cmp::Reverse((p.sync_count(), p.write_bytes())));
    TraceJson {
        layer: d.layer.name().into(),
        estimate: d.estimate,
        duration_s: r2n(d.duration_s),
        events: d.events,
        lost_events: d.lost_events,
        dropped_keys: d.dropped_keys,
        unpaired_events: d.unpaired_events,
        consumer_cpu_s: d.consumer_cpu_s,
        notes: d
            .notes
            .iter()
            .map(|n| {
                if n.hint.is_empty() {
                    n.what.clone()
                } else {
                    format!("{}; to see it: {}", n.what, n.hint)
                }
            })
            .collect(),
        processes: procs
            .into_iter()
            .map(|p| {
                let r = rates.syncs.get(&p.pid).cloned().unwrap_or_default();
                let mut files: Vec<(&FileTrace, &FileSyncRates)> =
                    p.files.values().zip(&r.files).collect();
                files.sort_by_key(|(f, _)| std::cmp::Reverse((f.sync_count(), f.write_bytes)));
                TraceProcessJson {
                    pid: p.pid,
                    comm: p.comm.clone(),
                    exited_in_window: p.exited_in_window,
                    exec_in_window: p.exec_in_window.clone(),
                    syncs: p.sync_count(),
                    sync_per_s: wire::r2o(r.syncs_per_s),
                    writes: p.writes(),
                    write_bytes: p.write_bytes(),
                    sampled_sync_share: p.sampled_sync_share,
                    syscalls: if d.estimate {
                        Default::default()
                    } else {
                        syscalls_json(p, secs)
                    },
                    files: files.into_iter().map(|(f, r)| file_json(f, r)).collect(),
                }
            })
            .collect(),
        devices: rates
            .block
            .iter()
            .flat_map(|(dev, b)| {
                b.ops.iter().map(move |(op, l)| TraceDeviceJson {
                    device: names
                        .get(dev)
                        .cloned()
                        .unwrap_or_else(|| format!("{}:{}", dev.0, dev.1)),
                    op: op.name().into(),
                    count: l.count,
                    per_s: r2n(l.per_s),
                    queue_p50_ms: ms4(l.queue_p50_ms),
                    queue_p99_ms: ms4(l.queue_p99_ms),
                    device_p50_ms: ms4(l.device_p50_ms),
                    device_p99_ms: ms4(l.device_p99_ms),
                    device_max_ms: l.device_max_ms,
                })
            })
            .collect(),
    }
}

/// The per-syscall table of the text output covers this many processes (the busiest);
/// the JSON has them all.
const MAX_SYSCALL_PROCS: usize = 10;

fn text(j: &TraceJson) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "iowhy trace — {} layer{}, {:.1} s, {} events, {} lost{}{}",
        j.layer,
        if j.estimate { " (estimates)" } else { "" },
        j.duration_s,
        j.events,
        j.lost_events,
        if j.dropped_keys > 0 {
            format!(", {} files not tracked (table full)", j.dropped_keys)
        } else {
            String::new()
        },
        if j.unpaired_events > 0 {
            format!(", {} calls unpaired", j.unpaired_events)
        } else {
            String::new()
        }
    );
    for n in &j.notes {
        let _ = writeln!(o, "  note: {}", crate::hoststr::for_terminal(n));
    }
    o.push('\n');
    files_table(&mut o, j);
    syscalls_table(&mut o, j);
    devices_table(&mut o, j);
    o
}

/// Per process and file: writes, syncs, writes per sync and sync latency.
fn files_table(o: &mut String, j: &TraceJson) {
    let mut t = Table::new(&[
        "PID", "COMM", "FD", "FILE", "WRITES/s", "BYTES/s", "SYNCS/s", "W/SYNC", "B/SYNC",
        "SYNC p50", "p99", "max", "FLAGS",
    ])
    .text_columns(&[1, 3, 12]);
    for p in &j.processes {
        for f in p.files.iter().take(8) {
            let secs = j.duration_s.max(1e-3);
            let sync_col = if j.estimate {
                f.sampled_sync_share
                    .map(|s| format!("~{:.0}% time", s * 100.0))
                    .unwrap_or_default()
            } else {
                format!("{:.1}", f.sync_per_s)
            };
            t.row(vec![
                p.pid.to_string(),
                p.comm.clone(),
                if f.fd >= 0 {
                    f.fd.to_string()
                } else {
                    "-".into()
                },
                f.path.clone().unwrap_or_else(|| trace::UNRESOLVED.into()),
                format!("{:.1}", f.writes_per_s),
                units::rate(f.write_bytes as f64 / secs),
                sync_col,
                f.writes_per_sync
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_default(),
                f.bytes_per_sync.map(units::bytes).unwrap_or_default(),
                f.sync_p50_ms
                    .map(|v| format!("{v:.2}ms"))
                    .unwrap_or_default(),
                f.sync_p99_ms
                    .map(|v| format!("{v:.2}ms"))
                    .unwrap_or_default(),
                f.sync_max_ms
                    .map(|v| format!("{v:.2}ms"))
                    .unwrap_or_default(),
                f.flags
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !n.starts_with("O_RD") && *n != "O_WRONLY")
                    .collect::<Vec<_>>()
                    .join("|"),
            ]);
        }
    }
    if t.is_empty() {
        o.push_str("No write or sync calls seen.\n");
    } else {
        o.push_str(&t.render());
    }
}

/// The strace -c view of the busiest processes.
fn syscalls_table(o: &mut String, j: &TraceJson) {
    let counted: Vec<&TraceProcessJson> = j
        .processes
        .iter()
        .filter(|p| !p.syscalls.is_empty())
        .take(MAX_SYSCALL_PROCS)
        .collect();
    if !counted.is_empty() {
        o.push_str("\nSyscalls per process (as strace -c counts them)\n");
        let mut t = Table::new(&[
            "PID", "COMM", "SYSCALL", "CALLS", "CALLS/s", "BYTES", "TIME", "us/call", "max",
        ])
        .text_columns(&[1, 2]);
        for p in counted {
            for (name, c) in &p.syscalls {
                t.row(vec![
                    p.pid.to_string(),
                    p.comm.clone(),
                    name.to_string(),
                    c.calls.to_string(),
                    format!("{:.1}", c.per_s),
                    c.bytes.map(|b| units::bytes(b as f64)).unwrap_or_default(),
                    format!("{:.2}ms", c.total_ms),
                    format!("{:.1}", c.us_per_call),
                    c.max_ms.map(|v| format!("{v:.2}ms")).unwrap_or_default(),
                ]);
            }
        }
        o.push_str(&t.render());
    }
}

/// Block request latency per device and op, queue vs device.
fn devices_table(o: &mut String, j: &TraceJson) {
    if !j.devices.is_empty() {
        o.push_str("\nBlock requests: queue (insert → issue) vs device (issue → complete)\n");
        let mut t = Table::new(&[
            "DEVICE",
            "OP",
            "REQ/s",
            "QUEUE p50",
            "p99",
            "DEVICE p50",
            "p99",
            "max",
        ])
        .text_columns(&[1]);
        for d in &j.devices {
            let f = |v: Option<f64>| v.map(|x| format!("{x:.3}ms")).unwrap_or_else(|| "-".into());
            t.row(vec![
                d.device.clone(),
                d.op.clone(),
                format!("{:.1}", d.per_s),
                f(d.queue_p50_ms),
                f(d.queue_p99_ms),
                f(d.device_p50_ms),
                f(d.device_p99_ms),
                format!("{:.3}ms", d.device_max_ms),
            ]);
        }
        o.push_str(&t.render());
    }
}

pub fn run(g: &Global, a: &TraceArgs) -> Result<()> {
    if g.fixture.is_some() {
        return Err(usage(
            "trace watches the live kernel; it cannot read a fixture",
        ));
    }
    for &pid in &a.pids {
        if !g.roots().pid_dir(pid).exists() {
            return Err(usage(format!("no process with pid {pid}")));
        }
    }
    let req = TraceRequest {
        pids: a.pids.clone(),
        comms: a.comms.clone(),
        duration: a.duration,
        ring_bytes: a.ring_size as usize,
        ..Default::default()
    };
    let stop = super::stop_flag();
    let (mut data, session) = trace::run_keep(&req, &g.roots(), &stop, a.tracing.into())?;
    let names = if data.block.is_empty() {
        Default::default()
    } else {
        dev_names(g).unwrap_or_else(|e| {
            data.note(
                format!("device names could not be read ({e}): devices are shown as major:minor"),
                "",
            );
            Default::default()
        })
    };
    let j = to_json(&data, &names);
    let r = emit(&match a.format {
        OutputFormat::Json => serde_json::to_string_pretty(&j)? + "\n",
        OutputFormat::Text | OutputFormat::Markdown => text(&j),
    });
    // The kernel's slow part of detaching, after the report and by a child.
    trace::release(session);
    r
}
