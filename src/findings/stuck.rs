//! `filesystem_unresponsive` and `filesystem_frozen`: a filesystem that does not answer,
//! and one that was frozen. Both stop every writer on them while the disks stay idle, so
//! neither shows in iostat; the tasks waiting on them show in D state.

use crate::interval::Interval;
use crate::parse::fdinfo;
use crate::snapshot::{Mount, Process, Snapshot};
use crate::units::shell_quote;

use super::{Finding, Kind, Severity, remedy::step};

/// Where a task sleeps while a filesystem is frozen: `sb_start_write()` and
/// `sb_start_pagefault()` take the superblock's per-CPU rwsem for reading, and `freeze_super()`
/// holds it for writing until the thaw. 6.x kernels show `percpu_rwsem_wait`; older ones
/// `__percpu_down_read` or `__sb_start_write`.
const FREEZE_WAITS: &[&str] = &[
    "percpu_rwsem_wait",
    "__percpu_down_read",
    "percpu_down_read",
    "__sb_start_write",
    "sb_start_write",
    "sb_start_pagefault",
];

fn is_freeze_wait(wchan: &str) -> bool {
    FREEZE_WAITS.contains(&wchan)
}

/// "comm:pid" for up to `n` processes, the way `d_state_tasks` lists them.
fn list(procs: &[&Process], n: usize) -> String {
    procs
        .iter()
        .take(n)
        .map(|p| format!("{}:{}", p.comm, p.pid))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Processes with an open file on mount `m`.
fn holders<'a>(s: &'a Snapshot, m: &Mount) -> Vec<&'a Process> {
    s.processes
        .iter()
        .filter(|p| {
            p.fds
                .iter()
                .flatten()
                .any(|f| s.mount_of(f).is_some_and(|fm| fm.mount_id == m.mount_id))
        })
        .collect()
}

pub fn filesystem_unresponsive(iv: &Interval) -> Vec<Finding> {
    let s = &iv.after;
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for st in iv.before.stuck.iter().chain(&s.stuck) {
        let Some(mp) = st.mountpoint.as_deref() else {
            continue;
        };
        if !seen.insert(mp.to_string()) {
            continue;
        }
        let mount = s
            .mounts
            .iter()
            .chain(&iv.before.mounts)
            .find(|m| m.mountpoint == mp);
        let (source, fstype) = mount
            .map(|m| (m.source.as_str(), m.fstype.as_str()))
            .unwrap_or(("?", "?"));
        let holders = mount.map(|m| holders(s, m)).unwrap_or_default();
        let waiting: Vec<&Process> = holders
            .iter()
            .copied()
            .filter(|p| !p.d_tasks.is_empty())
            .collect();
        let mut f = Finding::new(
            Kind::FilesystemUnresponsive,
            Severity::Critical,
            format!(
                "{mp} ({fstype} from {source}) does not answer: statfs gave up after {} ms{}",
                st.waited_ms,
                if waiting.is_empty() {
                    String::new()
                } else {
                    format!("; {} task(s) with files on it wait in D", waiting.len())
                }
            ),
        );
        f.subject.mountpoint = Some(mp.to_string());
        if let Some(p) = waiting.first().or(holders.first()) {
            f.subject.pid = Some(p.pid);
            f.subject.comm = Some(p.comm.clone());
        }
        f.evidence
            .text("source", source)
            .text("fstype", fstype)
            .num("waited_ms", st.waited_ms as f64)
            .num("waiting_tasks", waiting.len() as f64)
            .text("waiting", list(&waiting, 8))
            .text("holders", list(&holders, 8));
        let remote = fstype.starts_with("nfs") || fstype == "cifs" || fstype.starts_with("smb");
        let fuse = fstype.starts_with("fuse");
        f.explanation = format!(
            "Every call that needs an answer from {mp} waits, and most of those waits cannot be \
             interrupted: ls, df, a shell's tab completion and any process that opens a file there \
             hang behind it. {} iowhy skipped the mount from then on (no stat through files on it).",
            if remote {
                "The server (or the network to it) does not answer."
            } else if fuse {
                "Its FUSE daemon does not answer: it may be stopped, deadlocked or dead."
            } else {
                "The device under it does not complete requests, or its driver is stuck."
            }
        );
        let q = shell_quote(mp);
        f.remediation.push(step(
            format!("findmnt -T {q}"),
            "which mount, from where, with which options (hard/soft, timeo)",
        ));
        if let Some(p) = waiting.first() {
            f.remediation.push(step(
                format!("cat /proc/{}/stack", p.pid),
                "where a waiting task is stuck in the kernel",
            ));
        }
        if remote {
            f.remediation.push(step(
                format!(
                    "rpcinfo -p {}",
                    shell_quote(source.split(':').next().unwrap_or(source))
                ),
                "does the server answer at all",
            ));
        } else if fuse {
            f.remediation.push(step(
                format!(
                    "ps -eo pid,stat,wchan:32,cmd | grep -i {}",
                    shell_quote(fstype.trim_start_matches("fuse."))
                ),
                "the FUSE daemon: state T (stopped) means someone stopped it; kill -CONT it",
            ));
        }
        f.remediation.push(step(
            format!("umount -l {q}"),
            "last resort, when nothing needs it: detaches it so new lookups stop hanging (tasks already waiting stay stuck)",
        ));
        out.push(f);
    }
    out
}

pub fn filesystem_frozen(iv: &Interval) -> Vec<Finding> {
    let s = &iv.after;
    // Processes with a thread waiting for a thaw, and the mounts they point at: the file
    // a stuck write or sync names (its syscall's fd) is sure evidence; otherwise every
    // writable file the process holds is a candidate.
    let mut procs: Vec<&Process> = Vec::new();
    let mut sure: Vec<u32> = Vec::new();
    let mut candidates: Option<Vec<u32>> = None;
    let mut union: Vec<u32> = Vec::new();
    for p in &s.processes {
        let waits: Vec<_> = p
            .d_tasks
            .iter()
            .filter(|t| t.wchan.as_deref().is_some_and(is_freeze_wait))
            .collect();
        if waits.is_empty() {
            continue;
        }
        procs.push(p);
        let fds = p.fds.as_deref().unwrap_or(&[]);
        sure.extend(
            waits
                .iter()
                .filter_map(|t| t.syscall_fd)
                .filter_map(|fd| fds.iter().find(|f| f.fd == fd))
                .filter_map(|f| s.mount_of(f))
                .map(|m| m.mount_id),
        );
        let mut mounts: Vec<u32> = fds
            .iter()
            // Writable regular files: a frozen filesystem holds data (never /dev/null's).
            .filter(|f| f.flags.is_some_and(fdinfo::is_writable))
            .filter(|f| f.stat.is_none_or(|st| st.is_regular()))
            .filter_map(|f| s.mount_of(f))
            .filter(|m| !crate::source::system::is_pseudo_fs(&m.fstype))
            .map(|m| m.mount_id)
            .collect();
        mounts.sort_unstable();
        mounts.dedup();
        if mounts.is_empty() {
            continue;
        }
        union.extend(&mounts);
        // The frozen mount is one every waiter writes on, when there is such a mount.
        candidates = Some(match candidates {
            None => mounts,
            Some(c) => c.into_iter().filter(|m| mounts.contains(m)).collect(),
        });
    }
    if procs.is_empty() {
        return Vec::new();
    }
    let mut ids = match candidates {
        _ if !sure.is_empty() => sure,
        Some(c) if !c.is_empty() => c,
        _ => union,
    };
    ids.sort_unstable();
    ids.dedup();
    let mounts: Vec<&Mount> = ids
        .iter()
        .filter_map(|id| s.mounts.iter().find(|m| m.mount_id == *id))
        .collect();
    vec![frozen_finding(s, &procs, &mounts)]
}

fn frozen_finding(s: &Snapshot, procs: &[&Process], mounts: &[&Mount]) -> Finding {
    let blocked_reads: Vec<String> = s
        .stuck
        .iter()
        .filter(|st| st.pid.is_some_and(|pid| procs.iter().any(|p| p.pid == pid)))
        .map(|st| format!("{} ({})", st.path, st.reason))
        .collect();
    let what = match mounts {
        [] => "a filesystem".to_string(),
        [m] => format!("{} ({} on {})", m.mountpoint, m.fstype, m.source),
        ms => format!(
            "one of {}",
            ms.iter()
                .map(|m| m.mountpoint.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mp = (mounts.len() == 1).then(|| mounts[0].mountpoint.clone());
    let mut f = Finding::new(
        Kind::FilesystemFrozen,
        Severity::Critical,
        format!(
            "{what} looks frozen: {} task(s) wait for it to be thawed ({})",
            procs.len(),
            list(procs, 4)
        ),
    );
    f.subject.mountpoint = mp.clone();
    f.subject.pid = procs.first().map(|p| p.pid);
    f.subject.comm = procs.first().map(|p| p.comm.clone());
    f.evidence
        .num("waiting_tasks", procs.len() as f64)
        .text("waiting", list(procs, 8))
        .text(
            "wchan",
            procs
                .iter()
                .flat_map(|p| p.d_tasks.iter())
                .filter_map(|t| t.wchan.as_deref())
                .find(|w| is_freeze_wait(w))
                .unwrap_or("?"),
        );
    if !blocked_reads.is_empty() {
        f.evidence.text("blocked_reads", blocked_reads.join("; "));
    }
    f.explanation = "Writers sleep in the superblock's freeze lock (sb_start_write / sb_start_pagefault), \
            which fsfreeze (FIFREEZE) holds until the thaw. Reads still work, so the disk looks idle; every write, \
            every page fault on a shared mapping and, behind those, every reader of the stuck processes' memory \
            (ps, top reading their cmdline) hangs. A snapshot backup (LVM or cloud snapshot agent, \
            `virsh domfsfreeze`, qemu-guest-agent's fsfreeze) may have frozen it and not thawed it."
            .into();
    match mounts {
        [] => {
            if let Some(p) = procs.first() {
                f.remediation.push(step(
                    format!("cat /proc/{}/stack", p.pid),
                    "the stack names the filesystem's functions (ext4_, xfs_ ...)",
                ));
            }
            f.remediation.push(step(
                "findmnt -o TARGET,SOURCE,FSTYPE",
                "then `fsfreeze -u MOUNT` for the frozen one",
            ));
        }
        ms => {
            f.remediation.push(step(
                    "pgrep -l 'fsfreeze|snapshot|backup|agent'",
                    "who froze it (a backup still running: wait, or ask its owner); not ps, which reads every cmdline and hangs behind the stuck tasks",
                ));
            for m in ms {
                f.remediation.push(step(
                        format!("fsfreeze -u {}", shell_quote(&m.mountpoint)),
                        if ms.len() == 1 {
                            "thaws it: every waiting writer goes on at once (a freeze holds no data back)"
                        } else {
                            "thaws it if it is the frozen one (on a filesystem that is not frozen it only fails with EINVAL)"
                        },
                    ));
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{fixture_interval, fixture_lab_pids};
    use crate::snapshot::{StuckRead, TaskWait};

    #[test]
    fn a_mount_whose_statfs_timed_out_is_unresponsive_and_names_its_writer() {
        let mut iv = fixture_interval("fsync-logger");
        assert!(
            filesystem_unresponsive(&iv).is_empty(),
            "nothing stuck in the capture"
        );
        let pid = fixture_lab_pids("fsync-logger")[0];
        let p = iv.after.process(pid).unwrap();
        let f = p
            .fds
            .iter()
            .flatten()
            .find(|f| f.target.ends_with(".log"))
            .unwrap();
        let mp = iv.after.mount_of(f).unwrap().mountpoint.clone();
        iv.after.stuck.push(StuckRead {
            path: mp.clone(),
            mountpoint: Some(mp.clone()),
            waited_ms: 300,
            reason: "statfs did not answer".into(),
            ..Default::default()
        });
        let pi = iv
            .after
            .processes
            .iter()
            .position(|p| p.pid == pid)
            .unwrap();
        iv.after.processes[pi].d_tasks.push(TaskWait {
            tid: pid,
            wchan: Some("request_wait_answer".into()),
            ctxt_switches: None,
            syscall_fd: None,
        });
        let v = filesystem_unresponsive(&iv);
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(v[0].severity, Severity::Critical);
        assert_eq!(v[0].subject.mountpoint.as_deref(), Some(mp.as_str()));
        assert_eq!(v[0].subject.pid, Some(pid));
        assert_eq!(v[0].evidence.get_num("waiting_tasks"), Some(1.0));
        assert!(v[0].remediation.iter().any(|r| r.starts_with("findmnt -T")));
    }

    #[test]
    fn writers_asleep_in_the_freeze_lock_name_the_frozen_mount_and_the_thaw() {
        let mut iv = fixture_interval("fsync-logger");
        assert!(filesystem_frozen(&iv).is_empty());
        let pid = fixture_lab_pids("fsync-logger")[0];
        let pi = iv
            .after
            .processes
            .iter()
            .position(|p| p.pid == pid)
            .unwrap();
        // D, but somewhere else: not a freeze.
        iv.after.processes[pi].d_tasks = vec![TaskWait {
            tid: pid,
            wchan: Some("io_schedule".into()),
            ctxt_switches: None,
            syscall_fd: None,
        }];
        assert!(filesystem_frozen(&iv).is_empty());
        iv.after.processes[pi].d_tasks[0].wchan = Some("percpu_rwsem_wait".into());
        let p = iv.after.processes[pi].clone();
        let log = p
            .fds
            .iter()
            .flatten()
            .find(|f| f.target.ends_with(".log"))
            .unwrap();
        let mp = iv.after.mount_of(log).unwrap().mountpoint.clone();
        // The writer also holds a file on /: with one waiter, both mounts are candidates.
        let one = filesystem_frozen(&iv);
        assert_eq!(one.len(), 1);
        assert!(one[0].summary.contains("one of"), "{}", one[0].summary);
        // Unless its syscall says which file it is stuck writing.
        iv.after.processes[pi].d_tasks[0].syscall_fd = Some(log.fd);
        let sure = filesystem_frozen(&iv);
        assert_eq!(sure[0].subject.mountpoint.as_deref(), Some(mp.as_str()));
        iv.after.processes[pi].d_tasks[0].syscall_fd = None;
        // A second waiter that writes only the log settles it.
        let mut q = p.clone();
        q.pid = 999_999;
        q.fds = Some(vec![log.clone()]);
        iv.after.processes.push(q);
        let v = filesystem_frozen(&iv);
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(v[0].subject.mountpoint.as_deref(), Some(mp.as_str()));
        assert_eq!(v[0].subject.pid, Some(pid));
        assert!(
            v[0].remediation
                .iter()
                .any(|r| r.starts_with(&format!("fsfreeze -u {}", shell_quote(&mp)))),
            "{:?}",
            v[0].remediation
        );
        assert!(v[0].explanation.contains("snapshot backup"));
    }
}
