//! `iowhy capture DIR`: copy exactly what iowhy reads into a fixture tree (DIR/t0, DIR/t1,
//! ...), for offline diagnosis (`iowhy --fixture DIR`), bug reports and tests.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cmd::{Global, emit};
use crate::error::usage;
use crate::source::{Collector, Origin, SnapshotOptions};
use crate::units::parse_duration;

#[derive(Args, Debug, Clone)]
pub struct CaptureArgs {
    /// An empty or new directory to write the capture into.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Time between the captured time points.
    #[arg(long, short = 'd', default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Number of time points.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub count: u32,
}

pub fn run(g: &Global, a: &CaptureArgs) -> Result<()> {
    if g.fixture.is_some() {
        return Err(usage("capture reads the live machine; drop --fixture"));
    }
    if a.dir.exists() && std::fs::read_dir(&a.dir)?.next().is_some() {
        return Err(usage(format!(
            "{}: exists and is not empty",
            a.dir.display()
        )));
    }
    std::fs::create_dir_all(&a.dir)?;
    let mut c = Collector::new(Origin::Capture {
        roots: g.roots(),
        dir: a.dir.clone(),
        next: 0,
    })?;
    let stop = super::stop_flag();
    for i in 0..a.count {
        if i > 0 && !c.wait(a.duration, &stop, |_| {}) {
            break;
        }
        c.snapshot(&SnapshotOptions::full())?;
    }
    emit(&format!(
        "captured {} time point(s) into {}\ndiagnose it with: iowhy --fixture {} diagnose\n",
        a.count,
        a.dir.display(),
        a.dir.display()
    ))
}
