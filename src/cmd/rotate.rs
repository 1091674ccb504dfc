//! `iowhy rotate PATH`: the arguments and the printing; the rotation itself (checks,
//! rename and reopen, copytruncate, --keep) is [`crate::act::rotate`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::{Global, OutputFormat, TEXT_JSON, emit, format_parser};
use crate::act::parse_signal;
use crate::act::rotate::{RotateOptions, RotateReport, rotate};
use crate::units;
use crate::units::parse_duration;

#[derive(Args, Debug, Clone)]
pub struct RotateArgs {
    /// The log to rotate (as the host names it).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The signal that makes the writers reopen their log: HUP, USR1 or USR2.
    #[arg(long, default_value = "HUP", value_parser = parse_signal)]
    pub signal: rustix::process::Signal,
    /// Copy and truncate in place instead of renaming (for O_APPEND writers that cannot reopen).
    #[arg(long)]
    pub copytruncate: bool,
    /// If no writer reopens, undo the rename and copytruncate instead (O_APPEND writers only).
    #[arg(long)]
    pub fallback_copytruncate: bool,
    /// Keep N rotated files, like logrotate's `rotate N`: rotations beyond N are removed —
    /// except one still open in a process or whose holders cannot all be checked. This is
    /// the only thing a rotate ever deletes (--compress replaces PATH.N by PATH.N.gz).
    /// Default: keep all.
    #[arg(long, value_name = "N")]
    pub keep: Option<u32>,
    /// gzip rotated files once no process holds them (owner and mode kept).
    #[arg(long)]
    pub compress: bool,
    /// How long to wait for the writers to reopen.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Say what would be done, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

pub fn run(g: &Global, a: &RotateArgs) -> Result<()> {
    g.live_only("rotate")?;
    let o = RotateOptions {
        path: a.path.clone(),
        signal: a.signal,
        copytruncate: a.copytruncate,
        fallback_copytruncate: a.fallback_copytruncate,
        keep: a.keep,
        compress: a.compress,
        timeout: a.timeout,
        dry_run: a.dry_run,
    };
    let r = rotate(&g.roots(), &o)?;
    print(a, &r)
}

fn print(a: &RotateArgs, r: &RotateReport) -> Result<()> {
    match a.format {
        OutputFormat::Json => emit(&(serde_json::to_string_pretty(r)? + "\n")),
        OutputFormat::Text | OutputFormat::Markdown => {
            let mut o = String::new();
            if r.dry_run {
                o.push_str(&format!("dry run: {}\n", r.path));
            } else {
                o.push_str(&format!(
                    "rotated {} → {} ({}, {})\n",
                    r.path,
                    r.rotated_to.clone().unwrap_or_default(),
                    r.mode,
                    units::bytes_u(r.bytes_rotated)
                ));
            }
            for (f, t) in &r.renamed {
                o.push_str(&format!("  renamed {f} → {t}\n"));
            }
            for w in &r.writers {
                o.push_str(&format!(
                    "  writer pid {} ({}) fd {}{}: {}\n",
                    w.pid,
                    w.comm,
                    w.fd,
                    if w.append { " O_APPEND" } else { "" },
                    if w.note.is_empty() {
                        format!("signal {}", w.signal_fate)
                    } else {
                        w.note.clone()
                    }
                ));
            }
            if r.writers.is_empty() {
                o.push_str("  no process has it open for writing\n");
            }
            if let Some(b) = r.written_during_copy_bytes {
                o.push_str(&format!(
                    "  written during the copy: {}\n",
                    units::bytes_u(b)
                ));
            }
            if let Some(b) = r.at_risk_bytes.filter(|b| *b > 0) {
                o.push_str(&format!(
                    "  written between the last copy and the truncate (lost): {}\n",
                    units::bytes_u(b)
                ));
            }
            if !r.unknown_holders.is_empty() {
                o.push_str(&format!(
                    "  {} process(es) may hold it unseen (their open files could not be read)\n",
                    r.unknown_holders.len()
                ));
            }
            for x in &r.removed {
                o.push_str(&format!(
                    "  {} {x}\n",
                    if r.dry_run { "would remove" } else { "removed" }
                ));
            }
            for x in &r.compressed {
                o.push_str(&format!("  compressed {x}\n"));
            }
            for x in &r.kept_open {
                o.push_str(&format!("  kept {x}: still open in a process\n"));
            }
            for x in &r.kept_unknown {
                o.push_str(&format!("  kept {x}: who holds it cannot all be known\n"));
            }
            for n in &r.notes {
                o.push_str(&format!("  note: {n}\n"));
            }
            emit(&o)
        }
    }
}
