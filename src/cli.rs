//! Command-line interface: clap definitions, dispatch, and the one place errors are
//! printed (one line on stderr; exit code 2 for bad input, 1 for other failures; a closed
//! stdout pipe exits quietly). The value parsers here refuse numbers that would overflow
//! later (a deadline `now + duration`, a byte count), so no command panics on its flags.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::cmd;
use crate::error::{ReadError, UsageError, usage};
use crate::roots::{DEFAULT_PROC, DEFAULT_ROOT, DEFAULT_SYS, Roots};
use crate::source::{Collector, Origin};

const ABOUT: &str = "Why is this Linux machine stalling on I/O? Finds the disk, the process, the file and the safe next step.";

const LONG_ABOUT: &str = "\
Why is this Linux machine stalling on I/O? In one run of a few seconds, iowhy does what
`iostat -xz 1`, `iotop -o`, `strace -fp`, `lsof -p`, `df -h` and `du -sh` do by hand:
which disk is saturated (and whether it is queueing or slow), who writes to it, to which
file, on which filesystem, and what is safe to do now.

Run without a command, it diagnoses this machine for 5 seconds:
    iowhy                              # = iowhy diagnose --duration 5s
    iowhy diagnose --format json       # the stable JSON contract, for scripts
    iowhy diagnose --format markdown   # an incident note for a ticket

Run as root to see every process; as a normal user the report is partial and says what
it could not see. Read a host mounted elsewhere (a DaemonSet) with
--proc-root /host/proc --sys-root /host/sys --root /host.";

const AFTER_HELP: &str = "\
Durations (--duration, --for, --timeout, INTERVAL, ...) take 5s, 500ms, 2m, 1h or plain
seconds, up to 7 days. Sizes take 4096, 512k, 10M, 1G, 2T (powers of 1024).

Exit status: 0 success; 1 the run failed (a kernel file could not be read or parsed, an
action did not complete); 2 bad input (an unknown flag, a value out of range, a PID or
path that does not exist, a root that is not procfs/sysfs).";

#[derive(Parser, Debug)]
#[command(name = "iowhy", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
#[command(disable_help_subcommand = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `diagnose`, the default command.
    #[command(flatten)]
    pub diagnose: cmd::diagnose::DiagnoseArgs,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Where procfs is mounted (node_exporter's --path.procfs).
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_PROC, env = "IOWHY_PROC_ROOT")]
    pub proc_root: PathBuf,
    /// Where sysfs is mounted.
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_SYS, env = "IOWHY_SYS_ROOT")]
    pub sys_root: PathBuf,
    /// Where the host's / is mounted (for mountpoints and files).
    #[arg(long, global = true, value_name = "DIR", default_value = DEFAULT_ROOT, env = "IOWHY_ROOT")]
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
}

/// A read deadline: long enough for a loaded machine, short enough not to stall a report.
fn parse_read_timeout(s: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(60) {
        return Err(format!("{s:?}: a read timeout is between 10ms and 60s"));
    }
    Ok(d)
}

impl Global {
    pub fn roots(&self) -> Roots {
        Roots::new(&self.proc_root, &self.sys_root, &self.root)
    }

    pub fn collector(&self) -> Result<Collector> {
        match &self.fixture {
            Some(dir) => Collector::fixture(dir),
            None => Collector::new(Origin::Live(self.roots())),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Find the disk, the process and the file behind an I/O stall (the default command).
    Diagnose(cmd::diagnose::DiagnoseArgs),
    /// Device statistics like sysstat's `iostat -dx`, with the same formulas and JSON keys.
    Iostat(cmd::iostat::IostatArgs),
    /// Processes doing I/O, like `iotop -o` / `pidstat -d`.
    Top(cmd::top::TopArgs),
    /// Write and sync calls per process and file, sync latency, block latency — like
    /// `strace -c -f`, without stopping the process.
    Trace(cmd::trace::TraceArgs),
    /// Every open file of a process, with size, growth, offset and open flags (a better `lsof -p`).
    Files(cmd::files::FilesArgs),
    /// Filesystems, the biggest files under PATH, and space held by deleted open files.
    Space(cmd::space::SpaceArgs),
    /// Containers and pods: write rate, I/O wait, log rate and size, rotation, blocked pipes.
    Containers(cmd::containers::ContainersArgs),
    /// Rotate a live log without losing a line: rename, recreate, signal the writers, and
    /// verify by inode that each reopened (or copytruncate for O_APPEND writers).
    Rotate(crate::act::rotate::RotateArgs),
    /// Free the space of a deleted file a process still holds open (truncate via /proc/PID/fd).
    Reclaim(crate::act::reclaim::ReclaimArgs),
    /// Stop a process for a moment and measure whether the disk calms down (always resumed).
    Pause(crate::act::pause::PauseArgs),
    /// Limit a process's disk bandwidth or IOPS with a cgroup instead of killing it.
    Throttle(crate::act::throttle::ThrottleArgs),
    /// Reproduce an incident on purpose, bounded and self-cleaning (for training and tests).
    Lab(crate::lab::LabArgs),
    /// Print the I/O-stall checklist as Markdown.
    Playbook,
    /// Print one raw snapshot (every counter read, nothing computed) as JSON.
    Snapshot(cmd::snapshot::SnapshotArgs),
    /// Copy the kernel files iowhy reads (two time points) into DIR, for offline diagnosis
    /// with --fixture DIR or to attach to a bug report.
    Capture(cmd::capture::CaptureArgs),
    #[command(name = "lab-worker", hide = true)]
    LabWorker(crate::lab::worker::WorkerArgs),
    #[command(hide = true)]
    Guardian(crate::act::guardian::GuardianArgs),
}

/// The longest duration any flag accepts. Every command that waits turns its duration into
/// a deadline (`Instant::now() + d`), and a run of a week is already far past any incident
/// window; beyond it a typo like `1e19` would overflow or run until killed.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parse a duration: `5s`, `500ms`, `2m`, `1h`, or a plain number of seconds; at most
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let d = if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("{s:?} is not a duration"));
        }
        // Compare as seconds first: `from_secs_f64` panics above u64::MAX seconds.
        if secs > MAX_DURATION.as_secs_f64() {
            return Err(too_long(s));
        }
        Duration::from_secs_f64(secs)
    } else {
        humantime::parse_duration(s)
            .map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 5s, 500ms, 2m"))?
    };
    if d > MAX_DURATION {
        return Err(too_long(s));
    }
    Ok(d)
}

fn too_long(s: &str) -> String {
    format!("{s:?} is too long: durations are at most 7 days (7d)")
}

/// Parse a byte size: `10M`, `512k`, `1G`, `4096` (powers of 1024); it must fit in 64 bits.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = t[i..].to_ascii_lowercase();
            let m: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                "t" => 1 << 40,
                _ => return Err(format!("{s:?}: unknown unit (use k, M, G, T)")),
            };
            (&t[..i], m)
        }
        None => (t, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size; use e.g. 10M, 512k, 1G"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{s:?} is not a size"));
    }
    let bytes = v * mult as f64;
    // `u64::MAX as f64` rounds up to 2^64, so `<` keeps the cast below exact, not saturated.
    if bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large (at most 16 EiB)"));
    }
    Ok(bytes as u64)
}

/// Write to stdout; a closed pipe (`iowhy ... | head`) is not an error.
pub fn emit(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Exit 2 for what the user can fix: a bad value, a PID or path that does not exist, a
/// file only root may read. A kernel file that fails to read (EIO, a timeout) or to parse is
/// a failure of the run, exit 1.
fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<UsageError>()
            || c.downcast_ref::<ReadError>()
                .is_some_and(|r| r.is_not_found() || r.is_permission())
    })
}

/// Run the CLI; returns the process exit code.
pub fn main() -> i32 {
    // Rust ignores SIGPIPE; we handle EPIPE as a quiet exit instead.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = e.print();
                    return 0;
                }
                _ => {
                    // One line: clap's first line, without its "error: " prefix.
                    let text = e.render().to_string();
                    let first = text
                        .lines()
                        .next()
                        .unwrap_or("invalid arguments")
                        .trim_start_matches("error: ");
                    eprintln!("iowhy: {first} (see iowhy --help)");
                    return 2;
                }
            }
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            let line = one_line(&msg);
            // Messages quote paths and names from the host: one line, no escape sequences.
            eprintln!("iowhy: {}", crate::hoststr::for_terminal(&line));
            if is_usage(&e) { 2 } else { 1 }
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let g = cli.global;
    crate::source::reader::guard::set_default_deadline(g.read_timeout);
    if g.fixture.is_some() && g.roots() != Roots::default() {
        return Err(usage(
            "--fixture reads its own roots; do not combine it with --proc-root/--sys-root/--root",
        ));
    }
    if g.fixture.is_none() && needs_roots(cli.command.as_ref()) && !g.sys_root.is_dir() {
        // The proc root is checked where snapshots are taken; a missing sysfs would only
        // show up as an empty device list.
        return Err(usage(format!(
            "{}: sys root is not a directory; check --sys-root",
            g.sys_root.display()
        )));
    }
    match cli.command {
        None => cmd::diagnose::run(&g, &cli.diagnose),
        Some(Command::Diagnose(a)) => cmd::diagnose::run(&g, &a),
        Some(Command::Iostat(a)) => cmd::iostat::run(&g, &a),
        Some(Command::Top(a)) => cmd::top::run(&g, &a),
        Some(Command::Trace(a)) => cmd::trace::run(&g, &a),
        Some(Command::Files(a)) => cmd::files::run(&g, &a),
        Some(Command::Space(a)) => cmd::space::run(&g, &a),
        Some(Command::Containers(a)) => cmd::containers::run(&g, &a),
        Some(Command::Lab(a)) => crate::lab::run(&g, &a),
        Some(Command::Playbook) => emit(cmd::playbook::TEXT),
        Some(Command::Snapshot(a)) => cmd::snapshot::run(&g, &a),
        Some(Command::Capture(a)) => cmd::capture::run(&g, &a),
        Some(Command::LabWorker(a)) => crate::lab::worker::run(&a),
        Some(Command::Guardian(a)) => crate::act::guardian::run(&a),
        Some(Command::Rotate(a)) => crate::act::rotate::run(&g, &a),
        Some(Command::Reclaim(a)) => crate::act::reclaim::run(&g, &a),
        Some(Command::Pause(a)) => crate::act::pause::run(&g, &a),
        Some(Command::Throttle(a)) => crate::act::throttle::run(&g, &a),
    }
}

/// The error chain as one line. Contexts often repeat the error below them (`PATH: not
/// found` under `PATH: not found`): a message already present as whole `: `-separated
/// parts is left out; one that merely shares a substring is kept.
fn one_line(msg: &[String]) -> String {
    let mut line = String::new();
    for m in msg {
        if m.is_empty() || format!(": {line}: ").contains(&format!(": {m}: ")) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(m);
    }
    line
}

/// Commands that read the machine through the roots (all but the text and helper ones).
fn needs_roots(c: Option<&Command>) -> bool {
    !matches!(
        c,
        Some(Command::Playbook | Command::LabWorker(_) | Command::Guardian(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-1").is_err());
        assert_eq!(parse_bytes("10M").unwrap(), 10 << 20);
        assert_eq!(parse_bytes("512k").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("10Q").is_err());
        assert!(parse_bytes("x").is_err());
    }

    #[test]
    fn absurd_durations_and_sizes_are_refused_not_panicked_on() {
        // Bare numbers at and past u64::MAX seconds used to panic in from_secs_f64.
        for s in [
            "99999999999999999999",
            "1e19",
            "1.8e19",
            "1e300",
            "99999999999999999s",
            "604801",
            "8d",
        ] {
            let e = parse_duration(s).expect_err(s);
            assert!(
                e.contains("7 days") || e.contains("not a duration"),
                "{s}: {e}"
            );
        }
        assert_eq!(parse_duration("7d").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("604800").unwrap(), MAX_DURATION);
        for s in [
            "99999999999999999999T",
            "16777216T",
            "1e30",
            "18446744073709551616",
        ] {
            assert!(parse_bytes(s).is_err(), "{s}");
        }
        assert_eq!(parse_bytes("16777215T").unwrap(), 16777215 << 40);
    }

    #[test]
    fn error_chain_is_one_line_with_each_part_once() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            one_line(&v(&[
                "/proc/diskstats: Is a directory",
                "/proc/diskstats: Is a directory"
            ])),
            "/proc/diskstats: Is a directory"
        );
        assert_eq!(
            one_line(&v(&[
                "reading /x",
                "/x: permission denied",
                "permission denied"
            ])),
            "reading /x: /x: permission denied"
        );
        // A distinct message that is only a substring of an earlier one stays.
        assert_eq!(
            one_line(&v(&["cannot rotate app.log.1", "app.log"])),
            "cannot rotate app.log.1: app.log"
        );
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
