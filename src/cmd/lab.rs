//! `iowhy lab SCENARIO` and the hidden `iowhy lab-worker`: the arguments and the printing;
//! the scenarios, their workers and their cleanup are [`crate::lab`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use super::{Global, OutputFormat, TEXT_JSON, emit, format_parser, stop_flag};
use crate::lab::pipe::ReaderMode;
use crate::lab::worker::SyncMode;
use crate::lab::{LabOptions, Scenario, orphans};
use crate::units;
use crate::units::{parse_bytes, parse_duration};
use crate::wire::lab::LabEvent;

#[derive(Args, Debug, Clone)]
pub struct LabArgs {
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Stop after this long.
    #[arg(long, short = 'd', default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Work in a new directory under DIR instead of a loop-device filesystem of the lab's own.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Size of the lab's own filesystem [default: 256M for disk-fill, 1G otherwise].
    #[arg(long, value_parser = parse_bytes)]
    pub size: Option<u64>,
    /// fsync-logger: how many writer processes (each with its own log).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub writers: u32,
    /// fsync-logger: lines per second per writer; disk-fill: bytes per second (e.g. 8M). 0 = as fast as possible.
    #[arg(long, default_value = "0", value_parser = parse_bytes)]
    pub rate: u64,
    /// fsync-logger: how each line is made durable.
    #[arg(long, value_enum, default_value_t = SyncMode::Fsync)]
    pub sync: SyncMode,
    /// fsync-logger: write exactly this many lines per writer, then idle (0 = no limit).
    #[arg(long, default_value_t = 0)]
    pub lines: u64,
    /// Let the writers wait this long before their first write (for tracers to attach).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub start_after: Duration,
    /// json: JSON Lines, a "started" event (pids, paths, mountpoint, device) and a "stopped" one.
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
    /// pipe-block: what the reader does.
    #[arg(long, value_enum, default_value_t = ReaderMode::Stopped)]
    pub reader: ReaderMode,
}

pub fn run(_g: &Global, a: &LabArgs) -> Result<()> {
    if a.scenario == Scenario::Cleanup {
        let out = orphans::cleanup_orphans();
        emit(&if out.done.is_empty() {
            "nothing left behind by earlier labs\n".to_string()
        } else {
            out.done.join("\n") + "\n"
        })?;
        if !out.ignored.is_empty() {
            bail!(
                "{} lab state file(s) not obeyed:\n  {}",
                out.ignored.len(),
                out.ignored.join("\n  ")
            );
        }
        return Ok(());
    }
    let busybox = crate::lab::preflight(a.scenario)?;
    let o = LabOptions {
        scenario: a.scenario,
        duration: a.duration,
        dir: a.dir.clone(),
        size: a.size,
        writers: a.writers,
        rate: a.rate,
        sync: a.sync,
        lines: a.lines,
        start_after: a.start_after,
        reader: a.reader,
    };
    let format = a.format;
    crate::lab::run(&o, busybox, &stop_flag(), &mut |ev| print_event(format, ev))
}

fn print_event(format: OutputFormat, ev: &LabEvent) -> Result<()> {
    let started = ev.event == "started";
    match format {
        OutputFormat::Json => emit(&(serde_json::to_string(ev)? + "\n")),
        OutputFormat::Text | OutputFormat::Markdown if started => {
            let mut o = format!("lab {}: started\n", ev.scenario);
            for (pid, p) in ev.pids.iter().zip(&ev.paths) {
                o.push_str(&format!("  pid {pid} writes {p}\n"));
            }
            if let Some(m) = &ev.mountpoint {
                o.push_str(&format!(
                    "  filesystem {m}{}\n",
                    ev.device
                        .as_ref()
                        .map(|d| format!(" (ext4 on /dev/{d})"))
                        .unwrap_or_default()
                ));
            }
            if let Some(n) = &ev.note {
                o.push_str(&format!("  {n}\n"));
            }
            o.push_str(&format!(
                "  stops in {} or on Ctrl-C and removes all of it; meanwhile try: iowhy diagnose\n",
                units::duration(ev.duration_s)
            ));
            emit(&o)
        }
        OutputFormat::Text | OutputFormat::Markdown => emit(&format!(
            "lab {}: stopped; {}\n",
            ev.scenario,
            ev.cleaned.join("; ")
        )),
    }
}
