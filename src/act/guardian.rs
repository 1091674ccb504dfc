//! The guardian: a small process that outlives iowhy to undo what an action did — resume a
//! paused process, lift a throttle — if iowhy dies before doing it itself, even by
//! SIGKILL. It leaves iowhy's session (so Ctrl-C on the terminal does not reach it), ignores
//! the usual termination signals, holds a pidfd of the target (no pid-reuse accident), and
//! undoes on the first of: iowhy's end of the pipe closing (iowhy died) or the deadline.
//! When iowhy finishes normally it undoes itself and tells the guardian "done".

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Undo {
    /// SIGCONT the target (after `pause`).
    Cont,
    /// Restore the cgroup state saved in --state (after `throttle`).
    Unthrottle,
}

#[derive(Args, Debug, Clone)]
pub struct GuardianArgs {
    #[arg(long, value_enum)]
    pub undo: Undo,
    #[arg(long)]
    pub pid: u32,
    /// The target's start time (stat field 22): refuse to act on a reused pid.
    #[arg(long)]
    pub start_ticks: u64,
    /// Undo after this many milliseconds even if iowhy is still alive (stuck or stopped).
    #[arg(long)]
    pub deadline_ms: u64,
    #[arg(long)]
    pub state: Option<PathBuf>,
    #[arg(long, default_value = crate::roots::DEFAULT_PROC)]
    pub proc_root: PathBuf,
}

pub struct Guardian {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Guardian {
    /// Start the guardian and wait until it holds the target.
    pub fn spawn(
        undo: Undo,
        pid: u32,
        start_ticks: u64,
        deadline: Duration,
        state: Option<&std::path::Path>,
        proc_root: &std::path::Path,
    ) -> Result<Guardian> {
        let exe = std::env::current_exe().context("finding our own executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg("guardian")
            .arg("--undo")
            .arg(undo.to_possible_value().expect("named").get_name())
            .arg("--pid")
            .arg(pid.to_string())
            .arg("--start-ticks")
            .arg(start_ticks.to_string())
            .arg("--deadline-ms")
            .arg(deadline.as_millis().to_string())
            .arg("--proc-root")
            .arg(proc_root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(s) = state {
            cmd.arg("--state").arg(s);
        }
        // SAFETY: setsid is async-signal-safe: the guardian leaves our session and process
        // group so a Ctrl-C aimed at iowhy does not reach it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().context("starting the guardian")?;
        let mut line = String::new();
        let out = child.stdout.take().expect("piped");
        BufReader::new(out).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.wait();
            bail!("the guardian did not start: {}", line.trim());
        }
        let stdin = child.stdin.take();
        Ok(Guardian { child, stdin })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// iowhy undid the action itself: the guardian can go.
    pub fn done(mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"done\n");
        }
        let _ = self.child.wait();
    }
}

fn ignore_signals() {
    for s in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ] {
        // SAFETY: setting a signal's disposition to SIG_IGN.
        unsafe {
            libc::signal(s, libc::SIG_IGN);
        }
    }
}

/// The guardian process itself (`iowhy guardian`, hidden).
pub fn run(a: &GuardianArgs) -> Result<()> {
    ignore_signals();
    let pid = rustix::process::Pid::from_raw(a.pid as i32).context("pid")?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .context("pidfd_open")?;
    // The pidfd now pins this process: check it is the one iowhy meant.
    if super::proc_handle::start_ticks_of(&a.proc_root, a.pid) != Some(a.start_ticks) {
        println!("target changed");
        bail!("pid {} is not the process iowhy meant", a.pid);
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let deadline = Instant::now()
        .checked_add(Duration::from_millis(a.deadline_ms))
        .unwrap_or_else(Instant::now);
    let stdin = std::io::stdin();
    let mut buf = [0u8; 16];
    let reason = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break "deadline";
        }
        let mut fds = [rustix::event::PollFd::new(
            &stdin,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => break "deadline",
            Ok(_) => match stdin.lock().read(&mut buf) {
                Ok(0) => break "iowhy exited",
                Ok(n) if buf[..n].starts_with(b"done") => return Ok(()),
                Ok(_) => continue,
                Err(_) => break "iowhy exited",
            },
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break "iowhy exited",
        }
    };
    match a.undo {
        Undo::Cont => {
            let _ =
                rustix::process::pidfd_send_signal(pidfd.as_fd(), rustix::process::Signal::CONT);
            eprintln!("iowhy guardian: resumed pid {} ({reason})", a.pid);
        }
        Undo::Unthrottle => {
            if let Some(state) = &a.state {
                match super::throttle::undo_state_file(state) {
                    Ok(_) => eprintln!(
                        "iowhy guardian: lifted the throttle on pid {} ({reason})",
                        a.pid
                    ),
                    Err(e) => eprintln!(
                        "iowhy guardian: could not lift the throttle on pid {}: {e:#}",
                        a.pid
                    ),
                }
            }
        }
    }
    Ok(())
}
