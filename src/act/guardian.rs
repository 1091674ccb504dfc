//! The guardian: a small process that outlives iowhy to undo what an action did — resume a
//! paused process, lift a throttle — if iowhy dies before doing it itself, even by
//! SIGKILL. It leaves iowhy's session (so Ctrl-C on the terminal does not reach it), ignores
//! the usual termination signals, holds a pidfd of the target (no pid-reuse accident), and
//! undoes on the first of: iowhy's end of the pipe closing (iowhy died) or the deadline.
//! When iowhy finishes normally it undoes itself and tells the guardian "done".
//!
//! It must not share iowhy's fate, so before saying "ready" it leaves iowhy's cgroup for a
//! group of its own, `iowhy-guardian` under the cgroup v2 root (and under the root of the
//! v1 `name=systemd` and `freezer` hierarchies): an OOM group kill (`memory.oom.group`),
//! `cgroup.kill`, `systemctl kill` or a frozen cgroup that takes iowhy down leaves the
//! guardian to undo. v1 resource hierarchies (memory, cpu, ...) are left as they are:
//! they kill no group, and moving it would take it out of limits its operator set. It sets
//! its `oom_score_adj` to -1000, so the OOM killer picks anything else first.
//!
//! A guardian that keeps a process stopped also records it, in
//! `/run/iowhy/paused/PID-START-GUARDIAN.json`, removed once it resumed it or iowhy did.
//! Should the guardian die too (a SIGKILL aimed at it), the next `iowhy pause`,
//! `throttle` or `rotate` finds the record with no guardian alive and resumes the target
//! ([`resume_stale`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use super::proc_handle::{ProcHandle, start_ticks_of};
use super::rundir;
use crate::roots::Roots;
use crate::source::reader::Reader;

fn paused_dir(roots: &Roots) -> PathBuf {
    rundir::dir(roots).join("paused")
}

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
    #[arg(long, default_value = "/sys")]
    pub sys_root: PathBuf,
    /// Where to record the stopped target (`Undo::Cont`), for a later run to resume it
    /// should this guardian die as well.
    #[arg(long)]
    pub record_dir: Option<PathBuf>,
}

/// A guardian's record of a process it keeps stopped.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Eq)]
pub struct PauseRecord {
    pub pid: u32,
    pub start_ticks: u64,
    pub guardian_pid: u32,
    pub guardian_start_ticks: u64,
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
        roots: &Roots,
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
            .arg(&roots.proc)
            .arg("--sys-root")
            .arg(&roots.sys)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(s) = state {
            cmd.arg("--state").arg(s);
        }
        if undo == Undo::Cont {
            // Without a private record directory the guardian still guards; only the
            // second line of defence (a later run resuming) is missing.
            let rec = paused_dir(roots);
            if rundir::ensure(&rec).is_ok() {
                cmd.arg("--record-dir").arg(rec);
            }
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

/// Move this process into `<hierarchy>/iowhy-guardian`; a group that another guardian's
/// cleanup removed meanwhile is made again.
fn move_to_own_group(hierarchy: &Path) -> std::io::Result<()> {
    let g = hierarchy.join("iowhy-guardian");
    let me = std::process::id().to_string();
    let mut last = None;
    for _ in 0..3 {
        match std::fs::create_dir(&g) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        match std::fs::write(g.join("cgroup.procs"), &me) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT)))
}

/// Leave iowhy's cgroups (see the module doc); the problems, if any, for a warning.
fn leave_iowhy_cgroups(roots: &Roots) -> Vec<String> {
    let mut problems = Vec::new();
    let own = roots.proc("self/cgroup");
    let entries = match Reader::live(roots.clone())
        .read_path(&own)
        .map(|t| t.into_owned())
        .map_err(|e| e.to_string())
        .and_then(|t| crate::parse::cgroup::parse(&t).map_err(|e| e.to_string()))
    {
        Ok(e) => e,
        Err(e) => return vec![format!("{}: {e}", own.display())],
    };
    if crate::parse::cgroup::unified_path(&entries).is_some() {
        match roots
            .cgroup2_candidates()
            .into_iter()
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.controllers").exists())
        {
            Some(m) => {
                if let Err(e) = move_to_own_group(&m) {
                    problems.push(format!("cgroup v2 ({}): {e}", m.display()));
                }
            }
            None => problems.push("the cgroup v2 hierarchy is not mounted where expected".into()),
        }
    }
    for (controller, dir) in [("name=systemd", "systemd"), ("freezer", "freezer")] {
        let inside = entries
            .iter()
            .any(|e| e.controllers.iter().any(|c| c == controller));
        let h = roots.cgroup1(dir);
        if inside && h.join("cgroup.procs").exists() {
            if let Err(e) = move_to_own_group(&h) {
                problems.push(format!("cgroup v1 {controller}: {e}"));
            }
        }
    }
    problems
}

/// Write the record of the process this guardian keeps stopped; its path.
fn write_record(dir: &Path, pid: u32, start_ticks: u64, roots: &Roots) -> Result<PathBuf> {
    let me = std::process::id();
    let rec = PauseRecord {
        pid,
        start_ticks,
        guardian_pid: me,
        guardian_start_ticks: start_ticks_of(roots, me).context("our own start time")?,
    };
    let p = dir.join(format!("{pid}-{start_ticks}-{me}.json"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p)
        .with_context(|| format!("creating {}", p.display()))?;
    f.write_all(&serde_json::to_vec(&rec)?)?;
    f.sync_all()?;
    Ok(p)
}

/// The guardian process itself (`iowhy guardian`, hidden).
pub fn run(a: &GuardianArgs) -> Result<()> {
    ignore_signals();
    let roots = Roots::new(&a.proc_root, &a.sys_root, crate::roots::DEFAULT_ROOT);
    for p in leave_iowhy_cgroups(&roots) {
        eprintln!(
            "iowhy guardian: could not leave iowhy's cgroup ({p}): a kill of iowhy's whole group would take the guardian too"
        );
    }
    // The OOM killer takes anything else first: the guardian is a few hundred kB.
    let _ = std::fs::write(roots.proc("self/oom_score_adj"), "-1000");
    let pid = rustix::process::Pid::from_raw(a.pid as i32).context("pid")?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .context("pidfd_open")?;
    // The pidfd now pins this process: check it is the one iowhy meant.
    if start_ticks_of(&roots, a.pid).ok() != Some(a.start_ticks) {
        println!("target changed");
        bail!("pid {} is not the process iowhy meant", a.pid);
    }
    let record = match (&a.record_dir, a.undo) {
        (Some(d), Undo::Cont) => match write_record(d, a.pid, a.start_ticks, &roots) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("iowhy guardian: no record of the pause ({e:#})");
                None
            }
        },
        _ => None,
    };
    let forget = || {
        if let Some(p) = &record {
            let _ = std::fs::remove_file(p);
        }
    };
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
                Ok(n) if buf[..n].starts_with(b"done") => {
                    forget();
                    return Ok(());
                }
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
            forget();
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

/// Resume every process a guardian recorded as stopped whose guardian is gone (killed
/// along with iowhy): run at the start of `pause`, `throttle` and `rotate`. Returns what
/// it did, for the user. A record iowhy cannot trust (see `rundir`) is left alone.
pub fn resume_stale(roots: &Roots) -> Vec<String> {
    let dir = paused_dir(roots);
    let mut said = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return said;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let rec: PauseRecord = match rundir::read_trusted(&p) {
            Ok(Some(t)) => match serde_json::from_str(&t) {
                Ok(r) => r,
                Err(e) => {
                    said.push(format!("ignored {}: {e}", p.display()));
                    continue;
                }
            },
            Ok(None) => continue,
            Err(e) => {
                said.push(format!("ignored {e:#}"));
                continue;
            }
        };
        // Its guardian is alive and on it (a zombie, killed and not yet reaped, is not).
        let guardian = super::read_pid_stat(roots, rec.guardian_pid);
        if guardian.is_ok_and(|g| {
            g.start_ticks == rec.guardian_start_ticks && !matches!(g.state, 'Z' | 'X')
        }) {
            continue;
        }
        if let Ok(h) = ProcHandle::open(roots, rec.pid, rec.start_ticks) {
            if super::running_thread(roots, rec.pid).is_none()
                && h.signal(rustix::process::Signal::CONT).is_ok()
            {
                said.push(format!(
                    "resumed pid {}: an earlier iowhy stopped it and died along with its guardian",
                    rec.pid
                ));
            }
        }
        let _ = std::fs::remove_file(&p);
    }
    said
}
