//! Per-process files: `stat`, `status`, `io`, `cmdline`, `wchan`, `cgroup`, the threads
//! under `task/`, and the fd table (`fd/` links, `fdinfo/`, stat through the link).
//!
//! Every process can vanish between two reads, and another user's process may refuse
//! some files: a vanished process is dropped, a refused file becomes a recorded gap.

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::fmt::Write as _;

use crate::error::ReadError;
use crate::parse::{cgroup, fdinfo, fdlink, kv, pid_stat};
use crate::snapshot::{GapKind, Gaps, OpenFile, Process, TaskWait};

use super::reader::{DirHandle, Outcome, Reader};

/// At most this many fds of one process are read (a connection-pooling server can hold
/// hundreds of thousands); the rest are counted in a gap. Memory stays bounded: two
/// snapshots of such a process cost a few MiB, not hundreds.
const MAX_FDS_PER_PROCESS: usize = 20_000;
/// At most this many threads of one process are looked at for D state and blkio delay.
const MAX_THREADS_PER_PROCESS: usize = 10_000;

/// Which fd tables to read: they cost a few syscalls per open file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FdPolicy {
    #[default]
    None,
    All,
    Pids(BTreeSet<u32>),
}

impl FdPolicy {
    fn wants(&self, pid: u32) -> bool {
        match self {
            FdPolicy::None => false,
            FdPolicy::All => true,
            FdPolicy::Pids(s) => s.contains(&pid),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ProcessOptions {
    pub fds: FdPolicy,
    /// Read `task/*/stat` of multi-threaded processes (D-state threads, blkio per thread).
    pub threads: bool,
    /// Read cmdline, wchan and cgroup too (the light scan reads stat, status and io).
    pub details: bool,
    /// Only these pids (all when `None`).
    pub only: Option<BTreeSet<u32>>,
    /// Processes (pid, start time) whose cgroup the caller already has from an earlier
    /// snapshot (a sampler): their `cgroup` is not read again (`cgroups` stays `None`).
    pub known: Option<std::sync::Arc<std::collections::HashSet<(u32, u64)>>>,
}

impl ProcessOptions {
    pub fn full() -> Self {
        ProcessOptions {
            fds: FdPolicy::All,
            threads: true,
            details: true,
            only: None,
            known: None,
        }
    }
}

/// Read every process under the proc root, on a watched worker (see `reader/guard.rs`): a
/// process one of whose files does not answer within the deadline is read again without
/// that file, and the run goes on.
pub fn scan(
    r: &mut Reader,
    opts: &ProcessOptions,
    gaps: &mut Gaps,
) -> Result<Vec<Process>, ReadError> {
    let proc_path = r.roots.proc.clone();
    let proc_dir = r.open_dir(&proc_path)?;
    let mut pids = Vec::with_capacity(512);
    r.for_each_entry(&proc_dir, |n| {
        if let Ok(pid) = std::str::from_utf8(n.to_bytes())
            .unwrap_or("x")
            .parse::<u32>()
        {
            pids.push(pid);
        }
    })?;
    pids.sort_unstable();
    if let Some(only) = &opts.only {
        pids.retain(|p| only.contains(p));
    }
    let proc_dir = std::sync::Arc::new(proc_dir);
    let shared_opts = std::sync::Arc::new(opts.clone());
    let outcomes = r.guarded(pids.clone(), 1, move |r, &pid| {
        let mut g = Gaps::default();
        let res = read_process(r, &proc_dir, &pid.to_string(), pid, &shared_opts, &mut g);
        (res, g)
    });
    let mut out = Vec::with_capacity(pids.len());
    for (pid, o) in pids.into_iter().zip(outcomes) {
        match o {
            Outcome::Done((res, g)) => {
                gaps.merge(g);
                match res {
                    Ok(p) => out.push(p),
                    // Exited between the listing and the read: not an error.
                    Err(e) if e.is_not_found() => {}
                    Err(ReadError::Parse { path, source }) => {
                        gaps.record(GapKind::Parse, r.spell(&path), source.to_string());
                    }
                    Err(e) if e.is_timed_out() => {
                        gaps.record(GapKind::Blocked, r.spell(e.path()), e.to_string())
                    }
                    Err(e) => gaps.record(GapKind::SystemFile, r.spell(e.path()), e.to_string()),
                }
            }
            Outcome::Stuck(s) => gaps.record(
                GapKind::Blocked,
                r.spell(&s.path),
                format!(
                    "did not answer within {} ms (blocked in the kernel); pid {pid} left out",
                    s.since.elapsed().as_millis()
                ),
            ),
            Outcome::NotRun => gaps.record(
                GapKind::Blocked,
                format!("pid {pid}"),
                "not read: interrupted, or too many reads already stuck",
            ),
        }
    }
    let alive: std::collections::HashSet<(u32, u64)> = out.iter().map(|p| p.key()).collect();
    r.forget_except(&alive);
    Ok(out)
}

/// Read one process by pid (for `iowhy files PID`), with the same deadlines.
#[cfg(test)]
fn read_one(
    r: &mut Reader,
    pid: u32,
    opts: &ProcessOptions,
    gaps: &mut Gaps,
) -> Result<Process, ReadError> {
    let proc_path = r.roots.proc.clone();
    let proc_dir = std::sync::Arc::new(r.open_dir(&proc_path)?);
    let shared_opts = std::sync::Arc::new(opts.clone());
    match r.guarded_one(move |r| {
        let mut g = Gaps::default();
        let res = read_process(r, &proc_dir, &pid.to_string(), pid, &shared_opts, &mut g);
        (res, g)
    }) {
        Outcome::Done((res, g)) => {
            gaps.merge(g);
            res
        }
        Outcome::Stuck(s) => Err(ReadError::TimedOut {
            path: s.path,
            waited: s.since.elapsed(),
        }),
        Outcome::NotRun => Err(ReadError::Io {
            path: r.roots.pid_dir(pid),
            source: std::io::Error::from(std::io::ErrorKind::Interrupted),
        }),
    }
}

fn read_process(
    r: &mut Reader,
    proc_dir: &DirHandle,
    name: &str,
    pid: u32,
    opts: &ProcessOptions,
    gaps: &mut Gaps,
) -> Result<Process, ReadError> {
    let pd = r.open_dir_at(proc_dir, name)?;
    let st = {
        let text = r.read_at(&pd, "stat")?;
        pid_stat::parse(&text).map_err(|e| ReadError::parse(&pd.path.join("stat"), e))?
    };
    let status = match r.read_at(&pd, "status") {
        Ok(text) => kv::parse_status(&text).ok(),
        Err(e) if e.is_not_found() => return Err(e),
        Err(_) => None,
    };
    let ctxt_switches = status.as_ref().and_then(|s| s.ctxt_switches);
    let kthread = status
        .as_ref()
        .and_then(|s| s.kthread)
        .unwrap_or_else(|| st.is_kthread());
    let mut blocked_reads = Vec::new();
    let io = read_io(r, &pd, kthread, &mut blocked_reads, gaps)?;
    let mut p = Process {
        pid,
        ppid: st.ppid,
        comm: st.comm.clone(),
        state: st.state,
        kthread,
        uid: status.as_ref().and_then(|s| s.uid),
        num_threads: st.num_threads,
        start_ticks: st.start_ticks,
        utime_ticks: st.utime_ticks,
        stime_ticks: st.stime_ticks,
        io,
        blkio_ticks: st.delayacct_blkio_ticks,
        sig_caught: status.as_ref().and_then(|s| s.sig_caught),
        sig_ignored: status.as_ref().and_then(|s| s.sig_ignored),
        nspid: status.map(|s| s.nspid).unwrap_or_default(),
        blocked_reads,
        ..Default::default()
    };
    if opts.details {
        let known = opts
            .known
            .as_ref()
            .is_some_and(|k| k.contains(&(pid, st.start_ticks)));
        read_details(r, &pd, &mut p, !known)?;
    }
    if opts.threads && st.num_threads > 1 && !kthread {
        read_threads(r, &pd, &mut p);
    } else if st.state == 'D' {
        let wchan = if opts.details {
            p.wchan.clone()
        } else {
            read_wchan(r, &pd, "wchan")
        };
        let syscall_fd = syscall_fd(r, &pd, "syscall");
        p.d_tasks.push(TaskWait {
            tid: pid,
            wchan,
            ctxt_switches,
            syscall_fd,
        });
    }
    if opts.fds.wants(pid) && !kthread {
        p.fds = match read_fds(r, &pd, pid, gaps) {
            Ok(f) => Some(f),
            Err(e) if e.is_not_found() => Some(Vec::new()),
            Err(e) => {
                gaps.record(
                    GapKind::ProcessFds,
                    r.spell(e.path()),
                    gap_reason(&e, r.euid()),
                );
                None
            }
        };
    }
    Ok(p)
}

/// `/proc/PID/io`: `None` when refused (a gap, except for kernel threads, which have
/// none to show) or blocked (noted in `blocked`); a vanished process is an error.
fn read_io(
    r: &mut Reader,
    pd: &DirHandle,
    kthread: bool,
    blocked: &mut Vec<String>,
    gaps: &mut Gaps,
) -> Result<Option<crate::parse::kv::ProcIo>, ReadError> {
    match r.read_at(pd, "io") {
        Ok(text) => Ok(kv::parse_io(&text).ok()),
        Err(e) if e.is_not_found() => Err(e),
        Err(e) if e.is_timed_out() => {
            blocked.push("io".to_string());
            Ok(None)
        }
        Err(e) => {
            if !kthread {
                gaps.record(
                    GapKind::ProcessIo,
                    r.spell(e.path()),
                    gap_reason(&e, r.euid()),
                );
            }
            Ok(None)
        }
    }
}

/// cmdline (cached per process life; a blocked read is noted, the process kept), wchan
/// and cgroup.
fn read_details(
    r: &mut Reader,
    pd: &DirHandle,
    p: &mut Process,
    cgroup: bool,
) -> Result<(), ReadError> {
    p.cmdline = match r.cmdline(pd, p.pid, p.start_ticks) {
        Ok(v) => Some(v),
        Err(e) if e.is_not_found() => return Err(e),
        Err(e) => {
            if e.is_timed_out() {
                p.blocked_reads.push("cmdline".to_string());
            }
            None
        }
    };
    p.wchan = read_wchan(r, pd, "wchan");
    if cgroup {
        p.cgroups = r
            .read_at(pd, "cgroup")
            .ok()
            .and_then(|t| cgroup::parse(&t).ok());
    }
    Ok(())
}

fn gap_reason(e: &ReadError, euid: u32) -> String {
    if e.is_permission() && euid == 0 {
        "permission denied even to root (a non-dumpable process, or one in another user namespace)"
            .to_string()
    } else if e.is_permission() {
        "permission denied (another user's process; run as root)".to_string()
    } else {
        e.to_string()
    }
}

/// The fd a task in D is writing or syncing, from its `syscall` file (root only; on a
/// watched worker, like every read of the scan).
fn syscall_fd(r: &mut Reader, dir: &DirHandle, name: &str) -> Option<i32> {
    let text = r.read_at(dir, name).ok()?;
    crate::parse::stack::parse_syscall(&text)
        .ok()
        .flatten()
        .as_ref()
        .and_then(crate::parse::stack::file_fd)
}

fn read_wchan(r: &mut Reader, dir: &DirHandle, name: &str) -> Option<String> {
    // "0" (or nothing) means the task is not sleeping in the kernel, or that we may not
    // see where (wchan needs ptrace-read access).
    let w = r.read_at(dir, name).ok()?;
    let w = w.trim();
    (!w.is_empty() && w != "0").then(|| w.to_string())
}

/// Sum block I/O delay over the threads and find the ones in D state. `/proc/PID/stat`
/// reports the delay of the main thread only (fs/proc/array.c sums utime/stime for the
/// whole group, not delays).
fn read_threads(r: &mut Reader, pd: &DirHandle, p: &mut Process) {
    let Ok(task) = r.open_dir_at(pd, "task") else {
        return;
    };
    let mut tids = Vec::new();
    let _ = r.for_each_entry(&task, |n| {
        if let Ok(t) = std::str::from_utf8(n.to_bytes())
            .unwrap_or("x")
            .parse::<u32>()
        {
            tids.push(t);
        }
    });
    tids.sort_unstable();
    tids.truncate(MAX_THREADS_PER_PROCESS);
    let mut blkio_sum: Option<u64> = None;
    let mut rel = String::with_capacity(24);
    for tid in tids {
        rel.clear();
        let _ = write!(rel, "{tid}/stat");
        let Ok(text) = r.read_at(&task, &rel) else {
            continue;
        };
        let Ok(ts) = pid_stat::parse(&text) else {
            continue;
        };
        if let Some(b) = ts.delayacct_blkio_ticks {
            blkio_sum = Some(blkio_sum.unwrap_or(0) + b);
        }
        if ts.state == 'D' {
            rel.clear();
            let _ = write!(rel, "{tid}/wchan");
            let wchan = read_wchan(r, &task, &rel);
            rel.clear();
            let _ = write!(rel, "{tid}/status");
            let ctxt_switches = r
                .read_at(&task, &rel)
                .ok()
                .and_then(|t| kv::parse_status(&t).ok())
                .and_then(|s| s.ctxt_switches);
            rel.clear();
            let _ = write!(rel, "{tid}/syscall");
            let syscall_fd = syscall_fd(r, &task, &rel);
            p.d_tasks.push(TaskWait {
                tid,
                wchan,
                ctxt_switches,
                syscall_fd,
            });
        }
    }
    if blkio_sum.is_some() {
        p.blkio_ticks = blkio_sum;
    }
}

fn read_fds(
    r: &mut Reader,
    pd: &DirHandle,
    pid: u32,
    gaps: &mut Gaps,
) -> Result<Vec<OpenFile>, ReadError> {
    let fd_dir = r.open_dir_at(pd, "fd")?;
    let mut fds: Vec<i32> = Vec::new();
    r.for_each_entry(&fd_dir, |n| {
        if let Ok(fd) = std::str::from_utf8(n.to_bytes())
            .unwrap_or("x")
            .parse::<i32>()
        {
            fds.push(fd);
        }
    })?;
    fds.sort_unstable();
    if fds.len() > MAX_FDS_PER_PROCESS {
        gaps.record(
            GapKind::ProcessFds,
            r.spell(&fd_dir.path),
            format!(
                "{} open fds: only the first {MAX_FDS_PER_PROCESS} were read",
                fds.len()
            ),
        );
        fds.truncate(MAX_FDS_PER_PROCESS);
    }
    let fdinfo_dir = r.open_dir_at(pd, "fdinfo").ok();
    let mut out = Vec::with_capacity(fds.len());
    let mut name = String::with_capacity(12);
    for fd in fds {
        name.clear();
        let _ = write!(name, "{fd}\0");
        let cname =
            CStr::from_bytes_with_nul(name.as_bytes()).expect("no interior NUL in a number");
        // The fd may be closed between the listing and now: skip it. A refused link
        // (a non-dumpable process: the listing works, the links do not) is a gap for the
        // whole table, never an empty one that would hide a deleted file held open.
        let target = match r.readlink_at(&fd_dir, cname) {
            Ok(t) => t,
            Err(e) if e.is_permission() => return Err(e),
            Err(_) => continue,
        };
        let link = fdlink::parse(&target);
        let info = match &fdinfo_dir {
            Some(d) => r
                .read_at(d, &name[..name.len() - 1])
                .ok()
                .and_then(|t| fdinfo::parse(&t).ok()),
            None => None,
        };
        let on_stuck_mount = info
            .as_ref()
            .and_then(|i| i.mnt_id)
            .is_some_and(|m| r.is_stuck_mount(m));
        let stat = match link.kind {
            fdlink::FdKind::Path | fdlink::FdKind::Pipe if !on_stuck_mount => {
                r.stat_fd(pid, &fd_dir, cname).ok()
            }
            _ => None,
        };
        // A link text ending in " (deleted)" is deleted unless stat shows it still has a
        // name (a file literally called "x (deleted)").
        let deleted = link.deleted_suffix && stat.map(|s| s.nlink == 0).unwrap_or(true);
        let target = if link.deleted_suffix && !deleted {
            target
        } else {
            link.path
        };
        out.push(OpenFile {
            fd,
            kind: link.kind,
            target,
            deleted,
            pos: info.as_ref().map(|i| i.pos),
            flags: info.as_ref().map(|i| i.flags),
            mnt_id: info.as_ref().and_then(|i| i.mnt_id),
            stat,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process_live() {
        let mut r = Reader::live(crate::roots::Roots::default());
        let mut gaps = Gaps::default();
        let me = std::process::id();
        let f = std::fs::File::create(std::env::temp_dir().join(format!("iowhy-selftest-{me}")))
            .unwrap();
        let p = read_one(&mut r, me, &ProcessOptions::full(), &mut gaps).unwrap();
        assert_eq!(p.pid, me);
        assert!(p.io.is_some());
        let fds = p.fds.unwrap();
        let ours = fds
            .iter()
            .find(|o| o.target.contains("iowhy-selftest"))
            .expect("our temp file is listed");
        assert!(ours.stat.unwrap().is_regular());
        assert!(fdinfo::is_writable(ours.flags.unwrap()));
        drop(f);
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("iowhy-selftest-{me}")));
        assert!(
            read_one(&mut r, u32::MAX - 1, &ProcessOptions::full(), &mut gaps)
                .unwrap_err()
                .is_not_found()
        );
    }
}
