//! Command-line interface: clap definitions, dispatch, and the one place errors are
//! printed (one line on stderr; exit code 2 for bad input, 1 for other failures; a closed
//! stdout pipe exits quietly).

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::cmd;
use crate::error::{ReadError, UsageError, usage};
use crate::roots::Roots;

use crate::cmd::{Global, emit};

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
path that does not exist, a root that is not procfs/sysfs). `iowhy diagnose --exit-code`
exits by its worst finding instead: 0 none or info, 1 warning, 2 critical, 3 could not
diagnose (see iowhy diagnose --help).";

#[derive(Parser, Debug)]
#[command(name = "iowhy", version, long_version = crate::dist::long_version(), about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
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
    Rotate(cmd::rotate::RotateArgs),
    /// Free the space of a deleted file a process still holds open (truncate via /proc/PID/fd).
    Reclaim(cmd::reclaim::ReclaimArgs),
    /// Stop a process for a moment and measure whether the disk calms down (always resumed).
    Pause(cmd::pause::PauseArgs),
    /// Limit a process's disk bandwidth or IOPS with a cgroup instead of killing it.
    Throttle(cmd::throttle::ThrottleArgs),
    /// Reproduce an incident on purpose, bounded and self-cleaning (for training and tests).
    Lab(cmd::lab::LabArgs),
    /// Print the I/O-stall checklist as Markdown.
    Playbook,
    /// Prometheus exporter and node agent: per-pod I/O, fsyncs, files, logs and the
    /// verdict, on /metrics; the latest diagnosis on /diagnosis (like node_exporter).
    Serve(cmd::serve::ServeArgs),
    /// The flight recorder: keep raw samples so that `diagnose --at 03:00` explains a
    /// stall after it is gone; `record ls`, `record export`.
    Record(cmd::record::RecordArgs),
    /// The stalls the recorder caught as they happened (time, duration, worst finding,
    /// culprit); `incidents show ID` prints one's note.
    Incidents(cmd::incidents::IncidentsArgs),
    /// Print one raw snapshot (every counter read, nothing computed) as JSON.
    Snapshot(cmd::snapshot::SnapshotArgs),
    /// Copy the kernel files iowhy reads (two time points) into DIR, for offline diagnosis
    /// with --fixture DIR or to attach to a bug report.
    Capture(cmd::capture::CaptureArgs),
    /// Print the shell completion script for bash, zsh or fish (the package installs them).
    Completions(crate::dist::CompletionsArgs),
    /// Regenerate the man pages and completion scripts into docs/ (for packaging).
    #[command(name = "generate-docs", hide = true)]
    GenerateDocs(crate::dist::GenerateDocsArgs),
    #[command(name = "lab-worker", hide = true)]
    LabWorker(crate::lab::worker::WorkerArgs),
    #[command(hide = true)]
    Guardian(crate::act::guardian::GuardianArgs),
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
    // `diagnose --exit-code` is a monitoring check: a run that fails is UNKNOWN to it.
    let check = match &cli.command {
        None => cli.diagnose.exit_code,
        Some(Command::Diagnose(a)) => a.exit_code,
        Some(_) => false,
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            let line = one_line(&msg);
            // Messages quote paths and names from the host: one line, no escape sequences.
            eprintln!("iowhy: {}", crate::hoststr::for_terminal(&line));
            if check {
                cmd::diagnose::COULD_NOT_DIAGNOSE
            } else if is_usage(&e) {
                2
            } else {
                1
            }
        }
    }
}

/// Run the command; the exit status when it did not fail (only `diagnose --exit-code`
/// returns other than 0).
fn run(cli: Cli) -> Result<i32> {
    let g = cli.global;
    crate::source::reader::guard::set_default_deadline(g.read_timeout);
    if g.fixture.is_some() && g.roots() != Roots::default() {
        return Err(usage(
            "--fixture reads its own roots; do not combine it with --proc-root/--sys-root/--root",
        ));
    }
    if g.fixture.is_none()
        && g.recording().is_none()
        && needs_roots(cli.command.as_ref())
        && !g.sys_root.is_dir()
    {
        // The proc root is checked where snapshots are taken; a missing sysfs would only
        // show up as an empty device list.
        return Err(usage(format!(
            "{}: sys root is not a directory; check --sys-root",
            g.sys_root.display()
        )));
    }
    match cli.command {
        None => return cmd::diagnose::run(&g, &cli.diagnose),
        Some(Command::Diagnose(a)) => return cmd::diagnose::run(&g, &a),
        Some(other) => run_command(&g, other)?,
    }
    Ok(0)
}

/// Every command but `diagnose`, which may exit by its findings.
fn run_command(g: &Global, command: Command) -> Result<()> {
    match command {
        Command::Diagnose(a) => cmd::diagnose::run(g, &a).map(|_| ()),
        Command::Iostat(a) => cmd::iostat::run(g, &a),
        Command::Top(a) => cmd::top::run(g, &a),
        Command::Trace(a) => cmd::trace::run(g, &a),
        Command::Files(a) => cmd::files::run(g, &a),
        Command::Space(a) => cmd::space::run(g, &a),
        Command::Containers(a) => cmd::containers::run(g, &a),
        Command::Lab(a) => cmd::lab::run(g, &a),
        Command::Playbook => emit(cmd::playbook::TEXT),
        Command::Serve(a) => cmd::serve::run(g, &a),
        Command::Record(a) => cmd::record::run(g, &a),
        Command::Incidents(a) => cmd::incidents::run(&a),
        Command::Snapshot(a) => cmd::snapshot::run(g, &a),
        Command::Capture(a) => cmd::capture::run(g, &a),
        Command::Completions(a) => crate::dist::run_completions(&a),
        Command::GenerateDocs(a) => crate::dist::run_generate_docs(&a),
        Command::LabWorker(a) => crate::lab::worker::run(&a),
        Command::Guardian(a) => crate::act::guardian::run(&a),
        Command::Rotate(a) => cmd::rotate::run(g, &a),
        Command::Reclaim(a) => cmd::reclaim::run(g, &a),
        Command::Pause(a) => cmd::pause::run(g, &a),
        Command::Throttle(a) => cmd::throttle::run(g, &a),
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
        Some(
            Command::Playbook
                | Command::Completions(_)
                | Command::GenerateDocs(_)
                | Command::LabWorker(_)
                | Command::Guardian(_)
                | Command::Incidents(_)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
