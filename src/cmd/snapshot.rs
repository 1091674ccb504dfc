//! `iowhy snapshot`: one raw snapshot (every counter iowhy read, nothing computed) as
//! JSON, for debugging, scripting, and for timing the reader (`bench/run.sh`).

use anyhow::Result;
use clap::Args;

use crate::cmd::{Global, emit};
use crate::source::{ProcessOptions, SnapshotOptions};

#[derive(Args, Debug, Clone)]
pub struct SnapshotArgs {
    /// Read only stat, status and io of each process (what `top` reads every interval),
    /// not cmdline, wchan, cgroup, threads and fd tables.
    #[arg(long)]
    pub light: bool,
    /// Take this many snapshots in a row and print only a summary line (for timing).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
}

pub fn run(g: &Global, a: &SnapshotArgs) -> Result<()> {
    let mut c = g.collector()?;
    let opts = if a.light {
        SnapshotOptions {
            processes: Some(ProcessOptions::default()),
            mounts: false,
            block: false,
            containers: false,
            carry: None,
        }
    } else {
        SnapshotOptions::full()
    };
    if a.repeat == 1 {
        let s = c.snapshot(&opts)?;
        return emit(&(serde_json::to_string(&s)? + "\n"));
    }
    let t = std::time::Instant::now();
    let mut procs = 0;
    for _ in 0..a.repeat {
        procs = c.snapshot(&opts)?.processes.len();
    }
    let per = t.elapsed().as_secs_f64() / a.repeat as f64;
    emit(&format!(
        "{} snapshots of {procs} processes: {:.1} ms each, {:.1} µs per process\n",
        a.repeat,
        per * 1e3,
        per * 1e6 / procs.max(1) as f64
    ))
}
