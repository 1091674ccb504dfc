//! `iowhy reclaim PID FD`: the arguments and the printing; the checks and the truncate
//! are [`crate::act::reclaim`].

use anyhow::Result;
use clap::Args;

use super::{Global, OutputFormat, TEXT_JSON, emit, format_parser};
use crate::act::reclaim::{ReclaimOptions, ReclaimReport, reclaim};
use crate::units;

#[derive(Args, Debug, Clone)]
pub struct ReclaimArgs {
    #[arg(value_name = "PID")]
    pub pid: u32,
    #[arg(value_name = "FD")]
    pub fd: i32,
    /// Truncate without asking (for scripts).
    #[arg(long)]
    pub yes: bool,
    /// Say what would be freed, and do nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

pub fn run(g: &Global, a: &ReclaimArgs) -> Result<()> {
    g.live_only("reclaim")?;
    let o = ReclaimOptions {
        pid: a.pid,
        fd: a.fd,
        yes: a.yes,
        dry_run: a.dry_run,
    };
    let r = reclaim(&g.roots(), &o)?;
    print(a, &r)
}

fn print(a: &ReclaimArgs, r: &ReclaimReport) -> Result<()> {
    match a.format {
        OutputFormat::Json => emit(&(serde_json::to_string_pretty(r)? + "\n")),
        OutputFormat::Text | OutputFormat::Markdown => {
            let verb = if r.dry_run { "would free" } else { "freed" };
            let amount = if r.dry_run {
                r.allocated_before_bytes
            } else {
                r.freed_bytes
            };
            let mut o = format!(
                "{verb} {} held by deleted {} (pid {} {}, fd {})\n",
                units::bytes_u(amount),
                r.path,
                r.pid,
                r.comm,
                r.fd
            );
            if let (Some(b), Some(af)) = (
                r.filesystem_avail_before_bytes,
                r.filesystem_avail_after_bytes,
            ) {
                o.push_str(&format!(
                    "filesystem available: {} → {}\n",
                    units::bytes_u(b),
                    units::bytes_u(af)
                ));
            }
            o.push_str(&format!("note: {}\n", r.warning));
            emit(&o)
        }
    }
}
