//! Acting on what was found — rotate, reclaim, pause, throttle — so that the seed's
//! mitigations (`mv` + `touch` + `kill -HUP`, `kill -STOP`, limiting the writer) cannot
//! make things worse. Every action is explicit (iowhy never acts on its own), prints what
//! it would do with `--dry-run`, and refuses unsafe targets with a clear reason.

pub mod cglimit;
pub mod cgroup;
pub mod copytruncate;
pub mod delayacct;
pub mod guardian;
pub mod holders;
pub mod ionice;
pub mod pause;
pub mod proc_handle;
pub mod reclaim;
pub mod rotate;
pub mod rotated;
pub mod rundir;
pub mod safe_open;
pub mod throttle;

use std::io::{IsTerminal, Write};

use anyhow::Result;

use crate::error::{ReadError, usage};
use crate::parse::{kv, pid_stat};
use crate::roots::Roots;
use crate::source::reader::Reader;

/// What an action needs to know about its target process.
#[derive(Clone, Debug)]
pub struct Target {
    pub pid: u32,
    pub comm: String,
    pub state: char,
    pub kthread: bool,
    pub start_ticks: u64,
    pub sig_caught: u64,
    pub sig_ignored: u64,
}

/// A file of `/proc/PID`, through the reader: its errors stay typed (`ReadError`), so a
/// process that is gone and one iowhy may not read are told apart.
pub fn read_pid_file(roots: &Roots, pid: u32, name: &str) -> Result<String, ReadError> {
    let mut r = Reader::live(roots.clone());
    let dir = r.open_dir(&roots.pid_dir(pid))?;
    Ok(r.read_at(&dir, name)?.into_owned())
}

/// `/proc/PID/stat`, parsed.
pub fn read_pid_stat(roots: &Roots, pid: u32) -> Result<pid_stat::PidStat, ReadError> {
    let text = read_pid_file(roots, pid, "stat")?;
    pid_stat::parse(&text).map_err(|e| ReadError::parse(&roots.pid_dir(pid).join("stat"), e))
}

/// A failed read of the target's files, said as what it is.
fn unreadable(pid: u32, e: ReadError) -> anyhow::Error {
    if e.is_not_found() {
        usage(format!("no process with pid {pid}"))
    } else if e.is_permission() {
        usage(format!(
            "pid {pid} exists but iowhy may not read it ({e}): run as root"
        ))
    } else {
        anyhow::Error::new(e).context(format!("reading pid {pid}"))
    }
}

pub fn target(roots: &Roots, pid: u32) -> Result<Target> {
    let mut r = Reader::live(roots.clone());
    let dir = r
        .open_dir(&roots.pid_dir(pid))
        .map_err(|e| unreadable(pid, e))?;
    let st = {
        let text = r.read_at(&dir, "stat").map_err(|e| unreadable(pid, e))?;
        pid_stat::parse(&text)
            .map_err(|e| anyhow::Error::new(ReadError::parse(&dir.path.join("stat"), e)))?
    };
    // status only refines the picture (signal masks): a process without it (exiting
    // meanwhile) is still the one whose stat was read.
    let status = r
        .read_at(&dir, "status")
        .ok()
        .and_then(|t| kv::parse_status(&t).ok())
        .unwrap_or_default();
    Ok(Target {
        pid,
        comm: st.comm.clone(),
        state: st.state,
        kthread: status.kthread.unwrap_or_else(|| st.is_kthread()),
        start_ticks: st.start_ticks,
        sig_caught: status.sig_caught.unwrap_or(0),
        sig_ignored: status.sig_ignored.unwrap_or(0),
    })
}

/// Tests only, in debug builds: at a named point between a check and the action it
/// guards, create `$IOWHY_TEST_SYNC_DIR/<point>.reached` and wait (at most 20 s) for
/// `<point>.go`, so that a live test can change the world exactly there (swap a log for a
/// symlink, dup2 another file onto an fd) and show that the action notices.
pub fn test_sync(point: &str) {
    #[cfg(debug_assertions)]
    if let Some(dir) = std::env::var_os("IOWHY_TEST_SYNC_DIR") {
        let dir = std::path::PathBuf::from(dir);
        let _ = std::fs::write(dir.join(format!("{point}.reached")), b"");
        let go = dir.join(format!("{point}.go"));
        let t0 = std::time::Instant::now();
        while !go.exists() && t0.elapsed() < std::time::Duration::from_secs(20) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Resume what an earlier iowhy left stopped when it died along with its guardian, and
/// say so (see `guardian::resume_stale`).
pub fn resume_stale_pauses(roots: &Roots) {
    for s in guardian::resume_stale(roots) {
        eprintln!("iowhy: {s}");
    }
}

/// Our own pid and our ancestors': stopping or throttling them would stop us.
fn ours(roots: &Roots) -> Vec<u32> {
    let mut v = vec![std::process::id()];
    let mut p = std::process::id();
    for _ in 0..64 {
        let Ok(st) = read_pid_stat(roots, p) else {
            break;
        };
        if st.ppid <= 1 {
            break;
        }
        v.push(st.ppid);
        p = st.ppid;
    }
    v
}

/// Refuse targets no action may touch: PID 1, kernel threads, iowhy itself and the shell
/// that runs it.
pub fn refuse_unsafe(roots: &Roots, t: &Target) -> Result<()> {
    if t.pid == 1 {
        return Err(usage(
            "refusing to act on PID 1 (init): the whole machine depends on it",
        ));
    }
    if t.kthread {
        return Err(usage(format!(
            "refusing to act on pid {} ({}): it is a kernel thread",
            t.pid, t.comm
        )));
    }
    if t.pid == std::process::id() {
        return Err(usage("refusing to act on iowhy itself"));
    }
    if ours(roots).contains(&t.pid) {
        return Err(usage(format!(
            "refusing to act on pid {} ({}): it is iowhy's own parent (the shell running it)",
            t.pid, t.comm
        )));
    }
    Ok(())
}

/// Processes that map the file (dev, ino) into memory: truncating it under them makes
/// their next access to the cut pages raise SIGBUS. `unreadable` are the processes whose
/// maps could not be read (another user's, without root): they might map it too.
#[derive(Debug, Default)]
pub struct Mappers {
    pub pids: Vec<u32>,
    pub unreadable: Vec<u32>,
}

pub fn mappers(roots: &Roots, dev: (u32, u32), ino: u64) -> Mappers {
    let mut m = Mappers::default();
    let mut r = Reader::live(roots.clone());
    let Ok(proc_dir) = r.open_dir(&roots.proc) else {
        return m;
    };
    let mut pids = Vec::new();
    let _ = r.for_each_entry(&proc_dir, |n| {
        if let Some(pid) = n.to_str().ok().and_then(|s| s.parse::<u32>().ok()) {
            pids.push(pid);
        }
    });
    for pid in pids {
        match r.read_at(&proc_dir, &format!("{pid}/maps")) {
            Ok(t) => {
                if crate::parse::maps::mapped_files(&t).contains(&(dev.0, dev.1, ino)) {
                    m.pids.push(pid);
                }
            }
            // Gone meanwhile: it maps nothing.
            Err(e) if e.is_not_found() => {}
            Err(_) => m.unreadable.push(pid),
        }
    }
    m
}

/// How a process is matched against the list of processes others depend on.
enum Match {
    /// comm starts with the name (comm is cut at 15 bytes: `containerd-shim-runc-v2`
    /// shows as `containerd-shim`).
    Prefix,
    /// comm is exactly the name (`java`, not `javac`).
    Exact,
}

const DATABASE: &str = "a database: its clients stall and may time out";

/// Processes others depend on, by comm: pausing or throttling them stalls more than
/// themselves. Order matters for prefixes: `containerd-shim` before `containerd`.
const DEPENDED_ON: &[(&str, Match, &str)] = &[
    (
        "containerd-shim",
        Match::Prefix,
        "a containerd shim: its container's stdout/stderr and lifecycle go through it",
    ),
    (
        "containerd",
        Match::Prefix,
        "the container runtime: every container on this host depends on it",
    ),
    (
        "dockerd",
        Match::Prefix,
        "the Docker daemon: every container on this host depends on it",
    ),
    (
        "conmon",
        Match::Exact,
        "a CRI-O/Podman container monitor: its container's stdout/stderr and exit status go through it",
    ),
    (
        "crio",
        Match::Exact,
        "CRI-O, the container runtime: every pod on this node depends on it",
    ),
    (
        "kubelet",
        Match::Prefix,
        "the kubelet: the node's pods depend on it",
    ),
    (
        "kube-apiserver",
        Match::Prefix,
        "the Kubernetes API server: the whole cluster's control plane depends on it",
    ),
    (
        "etcd",
        Match::Prefix,
        "etcd: a cluster's state store; stalling it can trigger elections",
    ),
    ("postgres", Match::Prefix, DATABASE),
    ("mysqld", Match::Prefix, DATABASE),
    ("mariadbd", Match::Prefix, DATABASE),
    ("mongod", Match::Prefix, DATABASE),
    ("redis-server", Match::Prefix, DATABASE),
    (
        "memcached",
        Match::Exact,
        "a cache server: its clients stall and may time out",
    ),
    (
        "java",
        Match::Exact,
        "a JVM, usually a server (Kafka, Elasticsearch, ZooKeeper...): its clients and cluster peers may time out",
    ),
    (
        "sshd",
        Match::Prefix,
        "sshd: you may lose the way into this machine",
    ),
    (
        "systemd-journal",
        Match::Prefix,
        "journald: every service's logging blocks behind it",
    ),
    (
        "rsyslogd",
        Match::Prefix,
        "the syslog daemon: services logging to it may block",
    ),
    (
        "dbus-daemon",
        Match::Exact,
        "the D-Bus daemon: services that talk over the bus block behind it",
    ),
    (
        "multipathd",
        Match::Exact,
        "multipathd: storage path failover depends on it",
    ),
    (
        "iscsid",
        Match::Exact,
        "iscsid: iSCSI sessions (and the disks behind them) depend on it",
    ),
];

/// Why others depend on this process, if they do.
pub fn depended_on(t: &Target) -> Option<&'static str> {
    let c = t.comm.as_str();
    DEPENDED_ON
        .iter()
        .find(|(name, m, _)| match m {
            Match::Prefix => c.starts_with(name),
            Match::Exact => c == *name,
        })
        .map(|(_, _, why)| *why)
}

/// Ask on a terminal; without one, proceed only with `yes`.
pub fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(usage(format!(
            "{question} — not a terminal, so not asking: pass --yes to proceed"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut a = String::new();
    std::io::stdin().read_line(&mut a)?;
    if matches!(a.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(usage("not confirmed; nothing done"))
    }
}

/// What a signal will do to a process: run its handler, nothing (ignored), or its default
/// action (for SIGHUP: terminate it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalFate {
    Handled,
    Ignored,
    Default,
}

pub fn signal_fate(t: &Target, signo: i32) -> SignalFate {
    let bit = 1u64 << (signo - 1);
    if t.sig_caught & bit != 0 {
        SignalFate::Handled
    } else if t.sig_ignored & bit != 0 {
        SignalFate::Ignored
    } else {
        SignalFate::Default
    }
}

/// Parse `HUP`, `SIGHUP`, `usr1`, `1`: only the signals daemons use to reopen their logs.
/// INT and TERM are refused: a daemon's handler for them shuts it down, so "it handles
/// the signal" would not mean "it reopens".
pub fn parse_signal(s: &str) -> std::result::Result<rustix::process::Signal, String> {
    use rustix::process::Signal;
    let u = s.trim().to_ascii_uppercase();
    let name = u.strip_prefix("SIG").unwrap_or(&u);
    Ok(match name {
        "HUP" | "1" => Signal::HUP,
        "USR1" | "10" => Signal::USR1,
        "USR2" | "12" => Signal::USR2,
        _ => {
            return Err(format!(
                "{s:?}: use HUP, USR1 or USR2 (a signal that asks a daemon to reopen its logs; INT and TERM would stop it)"
            ));
        }
    })
}

/// The state of each thread of a process (`/proc/PID/task/*/stat`); an error when the
/// process is gone (or cannot be read). A thread that exits meanwhile is left out.
fn thread_states(roots: &Roots, pid: u32) -> Result<Vec<(u32, char)>, ReadError> {
    let mut r = Reader::live(roots.clone());
    let task = r.open_dir(&roots.pid_dir(pid).join("task"))?;
    let mut tids = Vec::new();
    r.for_each_entry(&task, |n| {
        if let Some(tid) = n.to_str().ok().and_then(|s| s.parse::<u32>().ok()) {
            tids.push(tid);
        }
    })?;
    let mut v = Vec::new();
    for tid in tids {
        if let Some(st) = r
            .read_at(&task, &format!("{tid}/stat"))
            .ok()
            .and_then(|t| pid_stat::parse(&t).ok())
        {
            v.push((tid, st.state));
        }
    }
    Ok(v)
}

/// A thread that cannot run: stopped by a signal (T), by a tracer (t), or dead (Z, X).
fn cannot_run(state: char) -> bool {
    matches!(state, 'T' | 't' | 'Z' | 'X')
}

/// The first thread of `pid` that can still run, or `None` when none can (or the
/// process is gone).
pub fn running_thread(roots: &Roots, pid: u32) -> Option<(u32, char)> {
    thread_states(roots, pid)
        .ok()?
        .into_iter()
        .find(|(_, s)| !cannot_run(*s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pid: u32, comm: &str, kthread: bool) -> Target {
        Target {
            pid,
            comm: comm.into(),
            state: 'S',
            kthread,
            start_ticks: 0,
            sig_caught: 1,
            sig_ignored: 1 << 12,
        }
    }

    #[test]
    fn refusals() {
        let r = Roots::default();
        assert!(
            refuse_unsafe(&r, &t(1, "init", false))
                .unwrap_err()
                .to_string()
                .contains("PID 1")
        );
        assert!(
            refuse_unsafe(&r, &t(2, "kthreadd", true))
                .unwrap_err()
                .to_string()
                .contains("kernel thread")
        );
        assert!(refuse_unsafe(&r, &t(std::process::id(), "iowhy", false)).is_err());
        assert!(refuse_unsafe(&r, &t(u32::MAX - 5, "logger", false)).is_ok());
    }

    #[test]
    fn who_others_depend_on() {
        assert!(depended_on(&t(10, "containerd-shim", false)).is_some());
        assert!(
            depended_on(&t(10, "containerd-shim", false))
                .unwrap()
                .contains("shim")
        );
        assert!(depended_on(&t(10, "postgres", false)).is_some());
        assert!(depended_on(&t(10, "conmon", false)).is_some());
        assert!(depended_on(&t(10, "crio", false)).is_some());
        assert!(depended_on(&t(10, "java", false)).is_some());
        assert!(depended_on(&t(10, "javac", false)).is_none());
        assert!(depended_on(&t(10, "redis-server", false)).is_some());
        assert!(depended_on(&t(10, "python3", false)).is_none());
    }

    #[test]
    fn signal_fates() {
        let x = t(10, "x", false);
        assert_eq!(signal_fate(&x, 1), SignalFate::Handled); // bit 0 = SIGHUP
        assert_eq!(signal_fate(&x, 13), SignalFate::Ignored); // SIGPIPE
        assert_eq!(signal_fate(&x, 15), SignalFate::Default);
        assert_eq!(
            parse_signal("sighup").unwrap(),
            rustix::process::Signal::HUP
        );
        assert!(parse_signal("KILL").is_err());
        assert_eq!(parse_signal("usr2").unwrap(), rustix::process::Signal::USR2);
        for s in ["TERM", "SIGTERM", "15", "INT", "2"] {
            assert!(parse_signal(s).is_err(), "{s} would stop a daemon");
        }
    }
}
