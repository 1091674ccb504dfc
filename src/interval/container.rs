//! Containers over an interval: each container's I/O (summed over its processes), its
//! shim's, and for each of its logs the size, growth, lines per second, time until its
//! filesystem is full, and who rotates it. Also the log size by pod and the I/O by shim —
//! the seed's `$log_size_by_pod` and `$io_wait_by_shim`.

use std::collections::HashMap;

use serde::Serialize;

use crate::container::attribute::{self, Attribution, ContainerInfo, Role};
use crate::container::rotation::{self, LogKind, Rotation, RotationState};
use crate::container::scan::RuntimeScan;
use crate::parse::container::crilog::LogFormat;
use crate::snapshot::Snapshot;

use super::pipe::BlockedPipe;
use super::{FsRates, ProcessRates};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRates {
    pub path: String,
    pub kind: LogKind,
    pub writer_pid: Option<u32>,
    pub size_bytes: Option<u64>,
    /// This file plus its rotated siblings (`/var/log/pods`).
    pub total_bytes: Option<u64>,
    /// `None` when the file was not there at both ends of the window, or was replaced.
    pub growth_bytes_per_s: Option<f64>,
    /// Growth / the tail's bytes per complete line, so that lines/s x bytes/line is the
    /// growth over the same window; by the tail's own timestamps (CRI, Docker) only when
    /// the growth is unknown (the file was replaced during the window).
    pub lines_per_s: Option<f64>,
    pub stderr_pct: Option<f64>,
    pub avg_line_bytes: Option<f64>,
    pub format: Option<LogFormat>,
    pub mountpoint: Option<String>,
    pub device: Option<String>,
    pub fs_avail_bytes: Option<u64>,
    pub fs_use_pct: Option<f64>,
    /// Seconds until the filesystem is full if this log alone keeps growing like this.
    pub time_to_full_s: Option<f64>,
    pub rotation: Rotation,
    pub rotation_state: RotationState,
    /// The writer opened it with O_APPEND (truncating it in place is then safe).
    pub append: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContainerRates {
    pub info: ContainerInfo,
    pub write_bytes_per_s: Option<f64>,
    pub read_bytes_per_s: Option<f64>,
    /// Summed over its processes (a process with several waiting threads counts each).
    pub io_wait_pct: Option<f64>,
    pub shim_write_bytes_per_s: Option<f64>,
    pub shim_io_wait_pct: Option<f64>,
    pub logs: Vec<LogRates>,
    /// Its processes blocked writing into a full pipe.
    pub blocked_pipes: usize,
    pub d_state_threads: usize,
}

impl ContainerRates {
    /// The log that matters most: the fastest-growing, else the biggest.
    pub fn main_log(&self) -> Option<&LogRates> {
        self.logs.iter().max_by(|a, b| {
            let k = |l: &LogRates| {
                (
                    l.growth_bytes_per_s.unwrap_or(0.0),
                    l.size_bytes.unwrap_or(0) as f64,
                )
            };
            k(a).partial_cmp(&k(b)).unwrap_or(std::cmp::Ordering::Equal)
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PodRates {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// Every file under the pod's `/var/log/pods` directory, rotated ones included.
    pub log_bytes: u64,
    pub log_bytes_per_s: Option<f64>,
    pub containers: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShimRates {
    pub pid: u32,
    pub comm: String,
    pub role: Role,
    pub runtime_namespace: Option<String>,
    /// The task id on its command line (for Kubernetes: the pod's sandbox).
    pub id: String,
    /// Containers whose processes it parents.
    pub containers: usize,
    pub write_bytes_per_s: Option<f64>,
    pub io_wait_pct: Option<f64>,
    /// Growth of the logs it writes itself.
    pub log_bytes_per_s: Option<f64>,
}

#[derive(Clone, Debug, Default)]
pub struct Containers {
    pub attribution: Attribution,
    pub containers: Vec<ContainerRates>,
    pub pods: Vec<PodRates>,
    pub shims: Vec<ShimRates>,
}

impl Containers {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.pods.is_empty()
    }

    pub fn of_pid(&self, pid: u32) -> Option<(&ContainerRates, Role)> {
        let (i, role) = self.attribution.by_pid.get(&pid)?;
        Some((&self.containers[*i], *role))
    }
}

fn sum(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    v.fold(None, |acc, x| match (acc, x) {
        (a, None) => a,
        (None, Some(x)) => Some(x),
        (Some(a), Some(x)) => Some(a + x),
    })
}

pub fn rates(
    before: &Snapshot,
    after: &Snapshot,
    elapsed_s: f64,
    procs: &[ProcessRates],
    filesystems: &[FsRates],
    pipes: &[BlockedPipe],
) -> Containers {
    let attribution = attribute::attribute(after);
    let by_pid: HashMap<u32, &ProcessRates> = procs.iter().map(|p| (p.pid, p)).collect();
    let empty = RuntimeScan::default();
    let scan_after = after.runtime.as_ref().unwrap_or(&empty);
    let scan_before = before.runtime.as_ref().unwrap_or(&empty);
    let log = |l: &attribute::LogRef, info: &ContainerInfo| {
        log_rates(
            l,
            info,
            scan_before,
            scan_after,
            elapsed_s,
            &by_pid,
            filesystems,
        )
    };
    let containers: Vec<ContainerRates> = attribution
        .containers
        .iter()
        .map(|c| {
            let members = || c.pids.iter().filter_map(|p| by_pid.get(p));
            let shim = c.shim_pid.and_then(|p| by_pid.get(&p));
            ContainerRates {
                info: c.clone(),
                write_bytes_per_s: sum(members().map(|p| p.write_bytes_per_s)),
                read_bytes_per_s: sum(members().map(|p| p.read_bytes_per_s)),
                io_wait_pct: sum(members().map(|p| p.io_wait_pct)),
                shim_write_bytes_per_s: shim.and_then(|s| s.write_bytes_per_s),
                shim_io_wait_pct: shim.and_then(|s| s.io_wait_pct),
                logs: c.logs.iter().map(|l| log(l, c)).collect(),
                blocked_pipes: pipes.iter().filter(|b| c.pids.contains(&b.pid)).count(),
                d_state_threads: members().map(|p| p.d_tasks).sum(),
            }
        })
        .collect();
    let pods = scan_after
        .pods
        .iter()
        .map(|pod| {
            let mut bytes = 0;
            let mut growth = None;
            for ctr in &pod.containers {
                for f in &ctr.files {
                    let path = pod.path(&ctr.name, f);
                    bytes += scan_after
                        .logs
                        .get(&path)
                        .and_then(|l| l.stat)
                        .map_or(0, |s| s.size_bytes);
                    if let Some(g) = growth_of(&path, scan_before, scan_after, elapsed_s) {
                        growth = Some(growth.unwrap_or(0.0) + g);
                    }
                }
            }
            PodRates {
                namespace: pod.namespace.clone(),
                pod: pod.pod.clone(),
                uid: pod.uid.clone(),
                log_bytes: bytes,
                log_bytes_per_s: growth,
                containers: pod.containers.len(),
            }
        })
        .collect();
    let mut shims: Vec<ShimRates> = Vec::new();
    for (pid, (i, role)) in &attribution.by_pid {
        if *role == Role::Container {
            continue;
        }
        let c = &attribution.containers[*i];
        let p = by_pid.get(pid);
        let served = attribution
            .containers
            .iter()
            .filter(|x| x.shim_pid == Some(*pid) && !x.pids.is_empty())
            .count();
        let own_logs = containers
            .iter()
            .flat_map(|x| x.logs.iter())
            .filter(|l| l.writer_pid == Some(*pid));
        shims.push(ShimRates {
            pid: *pid,
            comm: p.map(|p| p.comm.clone()).unwrap_or_default(),
            role: *role,
            runtime_namespace: c.r.runtime_namespace.clone(),
            id: c.r.id.clone(),
            containers: served,
            write_bytes_per_s: p.and_then(|p| p.write_bytes_per_s),
            io_wait_pct: p.and_then(|p| p.io_wait_pct),
            log_bytes_per_s: sum(own_logs.map(|l| l.growth_bytes_per_s)),
        });
    }
    shims.sort_by_key(|s| s.pid);
    Containers {
        attribution,
        containers,
        pods,
        shims,
    }
}

fn growth_of(path: &str, b: &RuntimeScan, a: &RuntimeScan, elapsed_s: f64) -> Option<f64> {
    let (o, n) = (b.logs.get(path)?.stat?, a.logs.get(path)?.stat?);
    (o.ino == n.ino && o.dev_major == n.dev_major && o.dev_minor == n.dev_minor && elapsed_s > 0.0)
        .then(|| (n.size_bytes as f64 - o.size_bytes as f64) / elapsed_s)
}

fn log_rates(
    l: &attribute::LogRef,
    info: &ContainerInfo,
    before: &RuntimeScan,
    after: &RuntimeScan,
    elapsed_s: f64,
    procs: &HashMap<u32, &ProcessRates>,
    filesystems: &[FsRates],
) -> LogRates {
    let rec = after.logs.get(&l.path);
    let stat = rec.and_then(|r| r.stat);
    // The writer's fd tracks the file even when it is renamed or deleted.
    let writer_file = l.writer_pid.and_then(|p| procs.get(&p)).and_then(|p| {
        p.files
            .iter()
            .find(|f| Some(f.fd) == l.writer_fd || f.path == l.path)
    });
    let growth = growth_of(&l.path, before, after, elapsed_s)
        .or_else(|| writer_file.and_then(|f| f.growth_bytes_per_s));
    let size = stat
        .map(|s| s.size_bytes)
        .or(writer_file.and_then(|f| f.size_bytes));
    let total = if l.kind == LogKind::Cri {
        let dir = l.path.rsplit_once('/').map(|(d, _)| format!("{d}/"));
        dir.map(|d| {
            after
                .logs
                .iter()
                // Its own directory only: a CRI-O sandbox's log sits in the pod's
                // directory, above the containers' ones.
                .filter(|(p, _)| p.strip_prefix(&d).is_some_and(|f| !f.contains('/')))
                .filter_map(|(_, r)| r.stat)
                .map(|s| s.size_bytes)
                .sum()
        })
    } else {
        size
    };
    let tail = rec.and_then(|r| r.tail.as_ref());
    let avg = tail.and_then(|t| t.avg_line_bytes());
    let lines_per_s = match (growth.filter(|g| *g >= 0.0), avg) {
        (Some(g), Some(avg)) => Some(g / avg),
        (None, _) => tail.and_then(|t| t.lines_per_s()),
        (Some(_), None) => None,
    };
    let fs = stat
        .and_then(|s| {
            filesystems
                .iter()
                .find(|f| f.major == s.dev_major && f.minor == s.dev_minor)
        })
        .or_else(|| {
            let m = writer_file?.mountpoint.as_deref()?;
            filesystems.iter().find(|f| f.mountpoint == m)
        });
    let rotation = rotation::resolve(
        l.kind,
        &l.path,
        info.docker_log.as_ref(),
        info.conmon_log_size_max,
        after,
    );
    let rotation_state = rotation::state(&rotation, size);
    LogRates {
        path: l.path.clone(),
        kind: l.kind,
        writer_pid: l.writer_pid,
        size_bytes: size,
        total_bytes: total,
        growth_bytes_per_s: growth,
        lines_per_s,
        stderr_pct: tail.and_then(|t| t.stderr_pct()),
        avg_line_bytes: avg,
        format: tail.map(|t| t.format),
        mountpoint: fs.map(|f| f.mountpoint.clone()),
        device: fs.and_then(|f| f.devices.first().cloned()),
        fs_avail_bytes: fs.map(|f| f.avail_bytes),
        fs_use_pct: fs.and_then(|f| f.use_pct),
        time_to_full_s: fs.and_then(|f| super::fs::time_to_full_s(f.avail_bytes, growth)),
        rotation,
        rotation_state,
        append: writer_file
            .and_then(|f| f.flags)
            .map(|fl| fl & crate::parse::fdinfo::O_APPEND != 0),
    }
}
