//! A Snapshot: everything iowhy reads from the kernel at one instant, as plain data.
//!
//! It holds raw counters only (no rates): rates need two snapshots and live in
//! `interval`. Snapshots serialise with serde, so a capture or a recording can be replayed
//! through the same pipeline.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::parse::cgroup::CgroupEntry;
use crate::parse::diskstats::DiskStats;
use crate::parse::fdlink::FdKind;
use crate::parse::kv::{LoadAvg, MemInfo, ProcIo, VmStat};
use crate::parse::psi::Psi;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Seconds since boot from `/proc/uptime` when the snapshot began (10 ms resolution):
    /// the clock all rates are computed against, as sysstat does.
    pub uptime_s: f64,
    /// Wall clock, milliseconds since the Unix epoch.
    pub wall_unix_ms: i64,
    pub hostname: String,
    pub kernel: String,
    /// `sysconf(_SC_CLK_TCK)`, the unit of `/proc/PID/stat` times.
    pub clk_tck: u64,
    /// The unit of `/proc/vmstat` page counts.
    pub page_size: u64,
    pub disks: Vec<DiskStats>,
    pub block: Vec<BlockDevice>,
    pub mounts: Vec<Mount>,
    pub psi_io: Option<Psi>,
    pub meminfo: Option<MemInfo>,
    pub vmstat: Option<VmStat>,
    pub loadavg: Option<LoadAvg>,
    pub delayacct: DelayAcct,
    pub processes: Vec<Process>,
    /// What could not be read, and why.
    pub gaps: Gaps,
    /// Our own pid in this proc root, to leave ourselves out of the report.
    pub self_pid: Option<u32>,
    pub euid: u32,
    /// Container runtimes' records under `--root`; `None` when not read.
    #[serde(default)]
    pub runtime: Option<crate::container::RuntimeScan>,
    /// Tasks blocked writing into a pipe, with the pipe's fill level.
    #[serde(default)]
    pub pipe_waits: Vec<PipeWait>,
    /// Reads that did not answer within the deadline: a gap in this snapshot, and the
    /// evidence for `filesystem_unresponsive`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stuck: Vec<StuckRead>,
}

/// A read that did not return within its deadline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StuckRead {
    /// The file or mountpoint that did not answer, as the host spells it.
    pub path: String,
    /// The process the file belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// The mount whose statfs did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
    /// How long it had been stuck when the snapshot was taken.
    pub waited_ms: u64,
    /// Why, as far as iowhy can tell.
    pub reason: String,
}

/// A whole disk or partition from `/sys/block`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BlockDevice {
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// For a partition, the disk it belongs to.
    pub parent: Option<String>,
    pub rotational: Option<bool>,
    /// `queue/nr_requests`: how many requests the block layer queues per hardware queue.
    pub nr_requests: Option<u64>,
    pub scheduler: Option<String>,
    pub size_bytes: Option<u64>,
    /// Devices this one is built on (`slaves/`: dm, md).
    pub slaves: Vec<String>,
    /// For a loop device, the file behind it.
    pub loop_backing_file: Option<String>,
    /// Device-mapper name (`dm/name`), e.g. `vg0-root`.
    pub dm_name: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Mount {
    pub mount_id: u32,
    pub major: u32,
    pub minor: u32,
    pub mountpoint: String,
    pub source: String,
    pub fstype: String,
    pub options: String,
    /// From statvfs(2); `None` when the call failed (stale NFS, permission).
    pub space: Option<FsSpace>,
}

/// statvfs(2) of one mount, in bytes and inodes, with df's meaning of used and available.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsSpace {
    pub size_bytes: u64,
    /// size - free: what df prints as Used.
    pub used_bytes: u64,
    /// Available to unprivileged users (free minus the reserved blocks).
    pub avail_bytes: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

impl FsSpace {
    /// df's Use%: used / (used + avail), rounded up.
    pub fn use_pct(&self) -> Option<f64> {
        let denom = self.used_bytes + self.avail_bytes;
        (denom > 0).then(|| {
            (self.used_bytes as f64 * 100.0 / denom as f64)
                .ceil()
                .min(100.0)
        })
    }

    /// df -i's IUse%. Filesystems without fixed inodes (btrfs) report 0 total: `None`.
    pub fn inodes_use_pct(&self) -> Option<f64> {
        (self.inodes_total > 0).then(|| {
            let used = self.inodes_total.saturating_sub(self.inodes_free);
            (used as f64 * 100.0 / self.inodes_total as f64)
                .ceil()
                .min(100.0)
        })
    }
}

/// Delay accounting (`kernel.task_delayacct`), which gives per-task block I/O wait.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayAcct {
    /// On from boot (`delayacct` on the kernel command line): every task has data.
    OnSinceBoot,
    /// Turned on at run time: tasks started before that have no data, and the kernel
    /// cannot tell us which ones they are.
    OnAtRuntime,
    Off,
    #[default]
    Unknown,
}

impl DelayAcct {
    pub fn is_on(self) -> bool {
        matches!(self, DelayAcct::OnSinceBoot | DelayAcct::OnAtRuntime)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// `None` when unreadable; empty for kernel threads and zombies.
    pub cmdline: Option<Vec<String>>,
    pub state: char,
    pub kthread: bool,
    pub uid: Option<u32>,
    pub num_threads: u32,
    pub start_ticks: u64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    /// `None` when `/proc/PID/io` is not readable (another user's process).
    pub io: Option<ProcIo>,
    /// Block I/O delay summed over the threads, in clock ticks.
    pub blkio_ticks: Option<u64>,
    /// Where the main thread sleeps in the kernel (`0` or absent when running).
    pub wchan: Option<String>,
    pub cgroups: Option<Vec<CgroupEntry>>,
    /// Threads in uninterruptible sleep (D), with where they sleep.
    pub d_tasks: Vec<TaskWait>,
    /// `None` when the fd table was not read (not asked for, or permission denied).
    pub fds: Option<Vec<OpenFile>>,
    /// Pids in nested pid namespaces, outermost first (from status NSpid).
    pub nspid: Vec<u32>,
    /// Signal masks from status (SigCgt, SigIgn): what a signal would do to it.
    #[serde(default)]
    pub sig_caught: Option<u64>,
    #[serde(default)]
    pub sig_ignored: Option<u64>,
    /// Files of this process whose read did not answer within the deadline (`cmdline`,
    /// `io`, ...): the process is still listed, by `comm`, without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_reads: Vec<String>,
}

impl Process {
    /// The command line joined with spaces, or `[comm]` like ps for kernel threads; a
    /// process whose cmdline read blocked is named by its comm, and says so.
    pub fn cmdline_string(&self) -> String {
        match &self.cmdline {
            Some(v) if !v.is_empty() => v.join(" "),
            None if self.blocked_reads.iter().any(|f| f == "cmdline") => {
                format!("{} (cmdline blocked in the kernel)", self.comm)
            }
            _ => format!("[{}]", self.comm),
        }
    }

    /// pid + start time: identifies a process across snapshots even if the pid is reused.
    pub fn key(&self) -> (u32, u64) {
        (self.pid, self.start_ticks)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TaskWait {
    pub tid: u32,
    pub wchan: Option<String>,
    /// Voluntary + involuntary context switches: unchanged between two snapshots where
    /// the task is in D both times means it never ran in between — really stuck.
    pub ctxt_switches: Option<u64>,
    /// The fd of the write or sync it is stuck in (from `syscall`, root only): the file,
    /// and so the mount, it waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall_fd: Option<i32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpenFile {
    pub fd: i32,
    pub kind: FdKind,
    /// The path (without ` (deleted)`), or `pipe:[N]` etc.
    pub target: String,
    pub deleted: bool,
    pub pos: Option<u64>,
    pub flags: Option<u32>,
    pub mnt_id: Option<u32>,
    pub stat: Option<FileStat>,
}

/// Test support: an anonymous pipe's fd as the reader records it (pipefs, device 0:14).
#[cfg(test)]
impl OpenFile {
    pub fn test_pipe(fd: i32, ino: u64, flags: u32) -> OpenFile {
        OpenFile {
            fd,
            kind: crate::parse::fdlink::FdKind::Pipe,
            target: format!("pipe:[{ino}]"),
            deleted: false,
            pos: Some(0),
            flags: Some(flags),
            mnt_id: None,
            stat: Some(FileStat {
                mode: libc::S_IFIFO | 0o600,
                ino,
                nlink: 1,
                dev_major: 0,
                dev_minor: 14,
                ..Default::default()
            }),
        }
    }
}

/// stat(2) through the fd link: the open file itself, even when deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub dev_major: u32,
    pub dev_minor: u32,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub size_bytes: u64,
    /// Allocated bytes (st_blocks * 512): what the file really takes on disk.
    pub alloc_bytes: u64,
    pub uid: u32,
    /// `None` in fixtures captured before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl FileStat {
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    pub fn is_fifo(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFIFO
    }
}

/// What a snapshot could not see, counted by kind, with one example path each.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Gaps {
    pub by_kind: BTreeMap<GapKind, Gap>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// `/proc/PID/io` denied: another user's process without CAP_SYS_PTRACE / root.
    ProcessIo,
    /// `/proc/PID/fd` denied.
    ProcessFds,
    ProcessWchan,
    /// statvfs failed on a mount.
    Statvfs,
    /// A system-wide file missing (e.g. `/proc/pressure/io` without PSI).
    SystemFile,
    /// A file that exists but did not parse.
    Parse,
    /// A read that did not answer within its deadline (blocked in the kernel).
    Blocked,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Gap {
    pub count: u64,
    pub example: String,
    pub reason: String,
}

impl Gaps {
    pub fn record(&mut self, kind: GapKind, example: impl Into<String>, reason: impl Into<String>) {
        let g = self.by_kind.entry(kind).or_insert_with(|| Gap {
            count: 0,
            example: example.into(),
            reason: reason.into(),
        });
        g.count += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    /// Add the gaps recorded elsewhere (by a worker thread).
    pub fn merge(&mut self, other: Gaps) {
        for (kind, g) in other.by_kind {
            match self.by_kind.entry(kind) {
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().count += g.count,
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(g);
                }
            }
        }
    }
}

impl Snapshot {
    pub fn process(&self, pid: u32) -> Option<&Process> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    /// The mount a file lives on: by the fd's mount id when known, else by device number
    /// (several mounts can share a device; the shortest mountpoint is the filesystem's).
    pub fn mount_of(&self, f: &OpenFile) -> Option<&Mount> {
        if let Some(id) = f.mnt_id {
            if let Some(m) = self.mounts.iter().find(|m| m.mount_id == id) {
                return Some(m);
            }
        }
        let st = f.stat?;
        self.mounts
            .iter()
            .filter(|m| m.major == st.dev_major && m.minor == st.dev_minor)
            .min_by_key(|m| m.mountpoint.len())
    }

    /// The mount a path is on: the longest mountpoint that prefixes it at a path-component
    /// boundary (`/var/log` holds `/var/log/x` but not `/var/logs`). Of a mountpoint
    /// mounted over, the last one (the one on top) wins.
    pub fn mount_by_path(&self, path: &str) -> Option<&Mount> {
        self.mounts
            .iter()
            .filter(|m| {
                let mp = m.mountpoint.trim_end_matches('/');
                mp.is_empty()
                    || path
                        .strip_prefix(mp)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
            .max_by_key(|m| m.mountpoint.trim_end_matches('/').len())
    }

    /// The block devices behind an open file (`FileRates.devices`): its mount's device,
    /// else the file's own device number, then the disks under it.
    pub fn devices_behind_file(&self, f: &OpenFile) -> Vec<String> {
        match (self.mount_of(f), f.stat) {
            (Some(m), _) if m.major != 0 => self.disks_behind(m.major, m.minor),
            (_, Some(s)) if s.dev_major != 0 => self.disks_behind(s.dev_major, s.dev_minor),
            _ => Vec::new(),
        }
    }

    /// The whole disk(s) behind a device number: a partition maps to its disk, a
    /// device-mapper or md device to the disks under it. Returns the device's own name
    /// first, then the disks under it.
    pub fn disks_behind(&self, major: u32, minor: u32) -> Vec<String> {
        let mut out = Vec::new();
        let Some(dev) = self
            .block
            .iter()
            .find(|b| b.major == major && b.minor == minor)
        else {
            return out;
        };
        out.push(dev.name.clone());
        let mut stack: Vec<String> = dev
            .parent
            .iter()
            .cloned()
            .chain(dev.slaves.iter().cloned())
            .collect();
        while let Some(name) = stack.pop() {
            if out.contains(&name) {
                continue;
            }
            if let Some(b) = self.block.iter().find(|b| b.name == name) {
                stack.extend(b.parent.iter().cloned());
                stack.extend(b.slaves.iter().cloned());
            }
            out.push(name);
        }
        out
    }

    pub fn block_device(&self, name: &str) -> Option<&BlockDevice> {
        self.block.iter().find(|b| b.name == name)
    }
}

/// A task asleep in the kernel's pipe-write path: the writer of a full pipe (or FIFO).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PipeWait {
    pub pid: u32,
    pub tid: u32,
    pub wchan: Option<String>,
    /// Kernel stack, function names innermost first (`/proc/PID/task/TID/stack`, root only).
    pub stack: Option<Vec<String>>,
    /// The fd of the write it is in (`/proc/PID/task/TID/syscall`, root only).
    pub fd: Option<i32>,
    /// Fill of the pipe(s) it may be blocked on: `fd` when known, else every pipe it has
    /// open for writing.
    pub pipes: Vec<PipeFill>,
}

/// How full a pipe is, read through one of its fds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipeFill {
    pub fd: i32,
    pub ino: Option<u64>,
    /// FIONREAD: bytes waiting to be read.
    pub queued_bytes: Option<u64>,
    /// F_GETPIPE_SZ: the pipe's capacity (64 KiB unless changed).
    pub capacity_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_on_the_longest_mountpoint_at_a_component_boundary() {
        let s = Snapshot {
            mounts: ["/", "/var/log", "/var", "/var/log"]
                .iter()
                .enumerate()
                .map(|(i, mp)| Mount {
                    mount_id: i as u32,
                    mountpoint: mp.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let on = |p: &str| s.mount_by_path(p).map(|m| m.mount_id);
        // Overmounted: the later mount is the one on top.
        assert_eq!(on("/var/log/app.log"), Some(3));
        assert_eq!(on("/var/log"), Some(3));
        assert_eq!(on("/var/logs/x"), Some(2));
        assert_eq!(on("/varnish"), Some(0));
        assert_eq!(on("/"), Some(0));
    }
}
