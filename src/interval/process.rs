//! Per-process rates over an interval: bytes/s from `/proc/PID/io`, I/O wait from delay
//! accounting, D-state threads, and the growth of each open file.

use std::collections::HashMap;

use serde::Serialize;

use crate::parse::fdinfo;
use crate::parse::fdlink::FdKind;
use crate::snapshot::{DelayAcct, OpenFile, Process, Snapshot};

use super::IntervalOptions;

#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcessRates {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub cmdline: String,
    pub state: char,
    pub uid: Option<u32>,
    pub kthread: bool,
    pub wchan: Option<String>,
    /// `None` when `/proc/PID/io` was unreadable.
    pub read_bytes_per_s: Option<f64>,
    /// Net of cancelled writes (a file truncated while dirty).
    pub write_bytes_per_s: Option<f64>,
    pub cancelled_write_bytes_per_s: Option<f64>,
    pub rchar_per_s: Option<f64>,
    pub wchar_per_s: Option<f64>,
    pub syscr_per_s: Option<f64>,
    pub syscw_per_s: Option<f64>,
    /// Share of the window the process's threads spent waiting for block I/O (summed over
    /// threads, so a process with several waiting threads can exceed 100). `None` when
    /// delay accounting is off or cannot be trusted for this process.
    pub io_wait_pct: Option<f64>,
    /// Threads in D state in either snapshot.
    pub d_tasks: usize,
    pub d_wchans: Vec<String>,
    pub files: Vec<FileRates>,
    /// Started during the window: its rates cover its lifetime, not the whole window.
    pub started_in_window: bool,
    pub cgroups: Option<Vec<crate::parse::cgroup::CgroupEntry>>,
    pub nspid: Vec<u32>,
    /// Has a SIGHUP handler (`None`: status unreadable).
    pub handles_hup: Option<bool>,
}

impl ProcessRates {
    /// Bytes per second read + written (0 when unknown), for sorting.
    pub fn io_bytes_per_s(&self) -> f64 {
        self.read_bytes_per_s.unwrap_or(0.0) + self.write_bytes_per_s.unwrap_or(0.0)
    }

    pub fn is_active(&self) -> bool {
        self.io_bytes_per_s() > 0.0 || self.d_tasks > 0
    }

    /// The regular file this process most likely writes: the writable one that grew the
    /// most, else the largest writable one.
    pub fn main_written_file(&self) -> Option<&FileRates> {
        self.files
            .iter()
            .filter(|f| f.regular && f.writable && !f.path.starts_with("/dev/"))
            .max_by(|a, b| {
                let ka = (
                    a.growth_bytes_per_s.unwrap_or(0.0),
                    a.size_bytes.unwrap_or(0) as f64,
                );
                let kb = (
                    b.growth_bytes_per_s.unwrap_or(0.0),
                    b.size_bytes.unwrap_or(0) as f64,
                );
                ka.partial_cmp(&kb).unwrap_or(std::cmp::Ordering::Equal)
            })
    }
}

/// One open file over the window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FileRates {
    pub fd: i32,
    pub path: String,
    pub kind: Option<FdKind>,
    pub deleted: bool,
    pub size_bytes: Option<u64>,
    pub alloc_bytes: Option<u64>,
    /// `None` when the file was not open at both ends of the window, or was replaced.
    pub growth_bytes_per_s: Option<f64>,
    pub pos_bytes: Option<u64>,
    pub flags: Option<u32>,
    pub writable: bool,
    pub regular: bool,
    pub ino: Option<u64>,
    pub mountpoint: Option<String>,
    pub fstype: Option<String>,
    /// The block devices behind the file's filesystem: its own, then the disks under it.
    pub devices: Vec<String>,
}

/// Which inode an open file is: the same file open twice, or in two processes, has one key.
pub type InodeKey = (Option<String>, Option<u64>);

impl FileRates {
    pub fn inode_key(&self) -> InodeKey {
        (self.mountpoint.clone(), self.ino)
    }

    /// A regular file unlinked while still open: its space is freed at the last close.
    pub fn is_deleted_open(&self) -> bool {
        self.deleted && self.regular
    }

    /// The space the file holds: its allocated bytes (what df counts), else its size.
    pub fn held_bytes(&self) -> u64 {
        self.alloc_bytes.or(self.size_bytes).unwrap_or(0)
    }

    pub fn flag_names(&self) -> Vec<&'static str> {
        self.flags.map(fdinfo::flag_names).unwrap_or_default()
    }
}

/// Deleted files still open, one group per inode with every holder (each a `T`, e.g. the
/// process), groups and holders in the order first seen; other files are left out.
pub fn deleted_by_inode<'a, T>(
    files: impl IntoIterator<Item = (T, &'a FileRates)>,
) -> Vec<Vec<(T, &'a FileRates)>> {
    let mut index: HashMap<InodeKey, usize> = HashMap::new();
    let mut groups: Vec<Vec<(T, &'a FileRates)>> = Vec::new();
    for (t, f) in files.into_iter().filter(|(_, f)| f.is_deleted_open()) {
        let i = *index.entry(f.inode_key()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push((t, f));
    }
    groups
}

pub fn rates(
    before: &Snapshot,
    after: &Snapshot,
    elapsed_s: f64,
    opts: IntervalOptions,
) -> (Vec<ProcessRates>, usize) {
    let old: HashMap<(u32, u64), &Process> =
        before.processes.iter().map(|p| (p.key(), p)).collect();
    let mut seen = 0usize;
    let mut out = Vec::with_capacity(after.processes.len());
    for p in &after.processes {
        if Some(p.pid) == after.self_pid {
            continue;
        }
        let prev = old.get(&p.key()).copied();
        if prev.is_some() {
            seen += 1;
        }
        out.push(one(prev, p, before, after, elapsed_s, opts));
    }
    let exited = before
        .processes
        .len()
        .saturating_sub(seen + usize::from(before.self_pid.is_some()));
    (out, exited)
}

fn one(
    prev: Option<&Process>,
    p: &Process,
    before: &Snapshot,
    after: &Snapshot,
    elapsed_s: f64,
    opts: IntervalOptions,
) -> ProcessRates {
    let clk = after.clk_tck.max(1) as f64;
    // A process born in the window did all its I/O in (its lifetime), not in the window.
    let span = match prev {
        Some(_) => elapsed_s,
        None => (after.uptime_s - p.start_ticks as f64 / clk).clamp(0.01, elapsed_s.max(0.01)),
    };
    let rate = |f: fn(&crate::parse::kv::ProcIo) -> u64| -> Option<f64> {
        let new = f(p.io.as_ref()?);
        let old = match prev {
            Some(q) => f(q.io.as_ref()?),
            None => 0,
        };
        (new >= old).then(|| (new - old) as f64 / span)
    };
    let write = rate(|io| io.write_bytes);
    let cancelled = rate(|io| io.cancelled_write_bytes);
    let io_wait_pct = io_wait(prev, p, after, span, clk, opts);
    let mut d_wchans: Vec<String> = p.d_tasks.iter().filter_map(|t| t.wchan.clone()).collect();
    if let Some(q) = prev {
        d_wchans.extend(q.d_tasks.iter().filter_map(|t| t.wchan.clone()));
    }
    d_wchans.sort();
    d_wchans.dedup();
    ProcessRates {
        pid: p.pid,
        ppid: p.ppid,
        comm: p.comm.clone(),
        cmdline: p.cmdline_string(),
        state: p.state,
        uid: p.uid,
        kthread: p.kthread,
        wchan: p.wchan.clone(),
        read_bytes_per_s: rate(|io| io.read_bytes),
        write_bytes_per_s: write.map(|w| (w - cancelled.unwrap_or(0.0)).max(0.0)),
        cancelled_write_bytes_per_s: cancelled,
        rchar_per_s: rate(|io| io.rchar),
        wchar_per_s: rate(|io| io.wchar),
        syscr_per_s: rate(|io| io.syscr),
        syscw_per_s: rate(|io| io.syscw),
        io_wait_pct,
        d_tasks: p.d_tasks.len().max(prev.map_or(0, |q| q.d_tasks.len())),
        d_wchans,
        files: files(prev, p, before, after, span),
        started_in_window: prev.is_none(),
        cgroups: p.cgroups.clone(),
        nspid: p.nspid.clone(),
        handles_hup: p.sig_caught.map(|m| m & 1 != 0),
    }
}

/// Block I/O wait as a share of the window. Delay accounting turned on at run time gives
/// tasks that already existed no delay record at all, and they read as zero forever: a
/// zero is only believed when accounting was on from boot, or was switched on by iowhy
/// before this process started.
fn io_wait(
    prev: Option<&Process>,
    p: &Process,
    after: &Snapshot,
    span: f64,
    clk: f64,
    opts: IntervalOptions,
) -> Option<f64> {
    let new = p.blkio_ticks?;
    let old = match prev {
        Some(q) => q.blkio_ticks?,
        None => 0,
    };
    if new < old {
        return None;
    }
    let trusted = match after.delayacct {
        DelayAcct::OnSinceBoot => true,
        DelayAcct::OnAtRuntime => {
            let started_after = opts
                .delayacct_enabled_at_uptime_s
                .is_some_and(|t| p.start_ticks as f64 / clk >= t);
            started_after || new > 0
        }
        DelayAcct::Off | DelayAcct::Unknown => false,
    };
    trusted.then(|| (new - old) as f64 / clk / span * 100.0)
}

fn files(
    prev: Option<&Process>,
    p: &Process,
    before: &Snapshot,
    after: &Snapshot,
    span: f64,
) -> Vec<FileRates> {
    let Some(fds) = &p.fds else { return Vec::new() };
    let old: HashMap<i32, &OpenFile> = prev
        .and_then(|q| q.fds.as_ref())
        .map(|v| v.iter().map(|f| (f.fd, f)).collect())
        .unwrap_or_default();
    let _ = before;
    fds.iter()
        .map(|f| {
            let st = f.stat;
            let growth = match (old.get(&f.fd).and_then(|o| o.stat), st) {
                (Some(o), Some(n))
                    if o.ino == n.ino
                        && o.dev_major == n.dev_major
                        && o.dev_minor == n.dev_minor =>
                {
                    Some((n.size_bytes as f64 - o.size_bytes as f64) / span)
                }
                _ => None,
            };
            let mount = after.mount_of(f);
            let devices = after.devices_behind_file(f);
            FileRates {
                fd: f.fd,
                path: f.target.clone(),
                kind: Some(f.kind),
                deleted: f.deleted,
                size_bytes: st.map(|s| s.size_bytes),
                alloc_bytes: st.map(|s| s.alloc_bytes),
                growth_bytes_per_s: growth,
                pos_bytes: f.pos,
                flags: f.flags,
                writable: f.flags.is_some_and(fdinfo::is_writable),
                regular: st.is_some_and(|s| s.is_regular()),
                ino: st.map(|s| s.ino),
                mountpoint: mount.map(|m| m.mountpoint.clone()),
                fstype: mount.map(|m| m.fstype.clone()),
                devices,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(fd: i32, ino: u64, deleted: bool) -> FileRates {
        FileRates {
            fd,
            deleted,
            regular: true,
            ino: Some(ino),
            mountpoint: Some("/var".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_deleted_inode_held_twice_is_one_group_with_both_holders() {
        let files = [
            file(3, 9, true),
            file(4, 5, true),
            file(5, 9, true),
            file(6, 1, false),
        ];
        let groups = deleted_by_inode(files.iter().map(|f| (f.fd, f)));
        let fds: Vec<Vec<i32>> = groups
            .iter()
            .map(|g| g.iter().map(|(fd, _)| *fd).collect())
            .collect();
        assert_eq!(fds, [vec![3, 5], vec![4]]);
    }
}
