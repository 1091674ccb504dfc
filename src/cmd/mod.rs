//! The commands: each takes its clap arguments, wires a source, the pipeline (or a
//! mechanism from `act/` or `lab/`) and a renderer, and prints. What every command shares
//! lives here: the global flags, printing to stdout, the stop flag and progress.

pub mod capture;
pub mod containers;
pub mod diagnose;
pub mod files;
pub mod incidents;
pub mod iostat;
pub mod lab;
pub mod pause;
pub mod playbook;
pub mod reclaim;
pub mod record;
pub mod rotate;
pub mod serve;
pub mod snapshot;
pub mod space;
pub mod throttle;
pub mod top;
pub mod trace;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};

use crate::roots::{DEFAULT_PROC, DEFAULT_ROOT, DEFAULT_SYS, Roots};
use crate::source::{Collector, Origin};

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Where procfs is mounted (node_exporter's --path.procfs).
    #[arg(long, global = true, visible_alias = "path.procfs", value_name = "DIR", default_value = DEFAULT_PROC, env = "IOWHY_PROC_ROOT")]
    pub proc_root: PathBuf,
    /// Where sysfs is mounted.
    #[arg(long, global = true, visible_alias = "path.sysfs", value_name = "DIR", default_value = DEFAULT_SYS, env = "IOWHY_SYS_ROOT")]
    pub sys_root: PathBuf,
    /// Where the host's / is mounted (for mountpoints and files).
    #[arg(long, global = true, visible_alias = "path.rootfs", value_name = "DIR", default_value = DEFAULT_ROOT, env = "IOWHY_ROOT")]
    pub root: PathBuf,
    /// Read a captured fixture (DIR/t0, DIR/t1, ... from `iowhy capture`) instead of the live
    /// machine: offline diagnosis of a capture, and the tests.
    #[arg(long, global = true, value_name = "DIR")]
    pub fixture: Option<PathBuf>,
    /// How long one kernel read may take before it counts as stuck and is given up on
    /// (a `cmdline` behind a stuck page fault, statfs of a hung mount); the report then
    /// says what did not answer.
    #[arg(long, global = true, value_name = "DURATION", default_value = "300ms", value_parser = parse_read_timeout, env = "IOWHY_READ_TIMEOUT")]
    pub read_timeout: Duration,
    /// Read the flight recorder's samples from TIME on instead of the machine
    /// (diagnose: the --window around TIME). TIME: 2026-03-08T03:00:00Z (or with an
    /// offset, or none for local time), 03:00 (the last such local time), yesterday 03:00,
    /// 10m ago, epoch seconds.
    #[arg(long, global = true, value_name = "TIME")]
    pub at: Option<String>,
    /// The store --at reads (iowhy record --dir).
    #[arg(long, global = true, value_name = "DIR", default_value = crate::record::DEFAULT_DIR)]
    pub store: PathBuf,
    /// One recording file to read instead of the store: a segment, or the bundle of
    /// `iowhy record export` (from another machine).
    #[arg(long, global = true, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// A read deadline: long enough for a loaded machine, short enough not to stall a report.
fn parse_read_timeout(s: &str) -> std::result::Result<Duration, String> {
    let d = crate::units::parse_duration(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(60) {
        return Err(format!("{s:?}: a read timeout is between 10ms and 60s"));
    }
    Ok(d)
}

impl Global {
    /// The actions change the live machine: a fixture is refused with one line.
    pub fn live_only(&self, command: &str) -> anyhow::Result<()> {
        match self.fixture {
            Some(_) => Err(crate::error::usage(format!(
                "{command} acts on the live machine; it cannot use --fixture"
            ))),
            None => Ok(()),
        }
    }

    pub fn roots(&self) -> Roots {
        Roots::new(&self.proc_root, &self.sys_root, &self.root)
    }

    /// The recording `--at` reads, when one is asked for.
    pub fn recording(&self) -> Option<crate::record::store::Source> {
        use crate::record::store::Source;
        match (&self.file, &self.at) {
            (Some(f), _) => Some(Source::File(f.clone())),
            (None, Some(_)) => Some(Source::Dir(self.store.clone())),
            (None, None) => None,
        }
    }

    pub fn collector(&self) -> Result<Collector> {
        if let Some(src) = self.recording() {
            if self.fixture.is_some() {
                return Err(crate::error::usage(
                    "--at/--file read a recording; do not combine them with --fixture",
                ));
            }
            let at = match &self.at {
                Some(t) => Some(crate::record::when::parse(t)?),
                None => None,
            };
            return crate::record::replay::collector(&src, at);
        }
        match &self.fixture {
            Some(dir) => Collector::fixture(dir),
            None => Collector::new(Origin::Live(self.roots())),
        }
    }
}

/// Write to stdout; a closed pipe (`iowhy ... | head`) is not an error.
pub fn emit(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// A flag set by SIGINT, SIGTERM or SIGHUP, for commands that stop cleanly (finish the
/// report, undo an action, clean up a lab). SIGHUP is what an ssh session that drops
/// sends: without it, iowhy would die mid-action instead of undoing. Commands that do not
/// ask keep the default behaviour (exit at once).
///
/// The flag is the reader's own stop flag (`reader::guard::STOP`): reads stuck in the
/// kernel are given up on as soon as it is set, so a signal ends a command within the
/// readers' polling interval even while a read hangs.
pub fn stop_flag() -> Arc<AtomicBool> {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    let flag = Arc::clone(&crate::source::reader::guard::STOP);
    REGISTER.call_once(|| {
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
    });
    flag
}

/// Progress goes to stderr, and only when a person is watching.
pub fn progress_wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// How a command prints its result. Each command accepts the formats it can render: a
/// `--format` of `text|json` uses [`format_parser`] with [`TEXT_JSON`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Markdown,
}

/// The formats of a command that has no Markdown rendering.
pub const TEXT_JSON: &[OutputFormat] = &[OutputFormat::Text, OutputFormat::Json];

/// A `--format` parser that accepts only `accepted`.
pub fn format_parser(
    accepted: &'static [OutputFormat],
) -> impl TypedValueParser<Value = OutputFormat> {
    PossibleValuesParser::new(accepted.iter().filter_map(ValueEnum::to_possible_value))
        // The parser above accepted only these names, so the fallback is never taken.
        .map(|s| OutputFormat::from_str(&s, false).unwrap_or(OutputFormat::Text))
}

/// `--tracing`: which layer sees the syscalls (mapped to [`crate::trace::TracingChoice`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Tracing {
    Auto,
    Ebpf,
    Perf,
    Sampling,
    Off,
}

impl From<Tracing> for crate::trace::TracingChoice {
    fn from(t: Tracing) -> Self {
        use crate::trace::TracingChoice as C;
        match t {
            Tracing::Auto => C::Auto,
            Tracing::Ebpf => C::Ebpf,
            Tracing::Perf => C::Perf,
            Tracing::Sampling => C::Sampling,
            Tracing::Off => C::Off,
        }
    }
}
