//! `iowhy containers`: every container and pod with its write rate, I/O wait, log rate,
//! log size, rotation state and blocked pipes — what `crictl`/`ctr`, `du /var/log/pods`
//! and a look at the shim's pipes give by hand.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cmd::{Global, OutputFormat, TEXT_JSON, emit, format_parser};
use crate::error::usage;
use crate::render::containers;
use crate::units::parse_duration;

#[derive(Args, Debug, Clone)]
pub struct ContainersArgs {
    /// How long to watch (rates are averages over it).
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
    /// Turn kernel.task_delayacct on for this run (and back off after) to see I/O wait per
    /// container and shim. Processes started before it stay unknown.
    #[arg(long)]
    pub enable_delayacct: bool,
}

pub fn run(g: &Global, a: &ContainersArgs) -> Result<()> {
    if a.duration < Duration::from_millis(200) {
        return Err(usage("--duration must be at least 200 ms"));
    }
    // The same window as diagnose, without syscall tracing: containers need none.
    let da = super::diagnose::DiagnoseArgs {
        duration: a.duration,
        format: OutputFormat::Json,
        tracing: crate::cmd::Tracing::Off,
        enable_delayacct: a.enable_delayacct,
        exit_code: false,
        window: Duration::from_secs(300),
    };
    let d = super::diagnose::diagnose(g, &da)?;
    let out = match a.format {
        OutputFormat::Text | OutputFormat::Markdown => containers::text(&d),
        OutputFormat::Json => serde_json::to_string_pretty(&containers::report(&d))? + "\n",
    };
    emit(&out)
}
