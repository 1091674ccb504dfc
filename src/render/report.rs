//! A diagnosis: an interval, its findings, what this run could and could not see; and its
//! conversion to the JSON contract.

use std::collections::BTreeSet;

use crate::findings::Finding;
use crate::interval::{Interval, ProcessRates};
use crate::snapshot::{DelayAcct, GapKind};
use crate::units;

use crate::wire::diagnose::{
    BlindSpot, Capabilities, FileJson, Filesystem, FindingJson, ProcessJson, Report,
};
use crate::wire::iostat::IostatDevice;
use crate::wire::{self, r2n, r2o};

/// At most this many processes in the report: the ones with I/O, in D state, or named by
/// a finding.
const MAX_PROCESSES: usize = 40;

pub struct Diagnosis {
    pub interval: Interval,
    pub findings: Vec<Finding>,
    pub capabilities: Capabilities,
    pub blind_spots: Vec<BlindSpot>,
    /// Per-process container objects, when known.
    pub containers: std::collections::HashMap<u32, wire::containers::ProcessContainerJson>,
}

impl Diagnosis {
    pub fn new(interval: Interval, findings: Vec<Finding>, tracing: &str) -> Self {
        let capabilities = capabilities(&interval, tracing);
        let blind_spots = blind_spots(&interval, &capabilities);
        let containers = super::containers::by_pid(&interval);
        Diagnosis {
            interval,
            findings,
            capabilities,
            blind_spots,
            containers,
        }
    }

    /// A process's sync calls per second, when a counting layer traced it.
    pub fn fsync_per_s(&self, pid: u32) -> Option<f64> {
        self.interval.sync_rates(pid)?.syncs_per_s
    }

    /// The processes worth showing, busiest first.
    pub fn shown_processes(&self) -> Vec<&ProcessRates> {
        let named: BTreeSet<u32> = self.findings.iter().filter_map(|f| f.subject.pid).collect();
        let mut v: Vec<&ProcessRates> = self
            .interval
            .processes
            .iter()
            .filter(|p| {
                named.contains(&p.pid)
                    || p.is_active()
                    || p.files
                        .iter()
                        .any(|f| f.is_deleted_open() && f.size_bytes.unwrap_or(0) > 0)
            })
            .collect();
        v.sort_by(|a, b| {
            let ka = (named.contains(&a.pid), a.io_bytes_per_s());
            let kb = (named.contains(&b.pid), b.io_bytes_per_s());
            kb.partial_cmp(&ka).unwrap_or(std::cmp::Ordering::Equal)
        });
        v.truncate(MAX_PROCESSES);
        v
    }
}

fn capabilities(iv: &Interval, tracing: &str) -> Capabilities {
    let s = &iv.after;
    let denied =
        |k: GapKind| s.gaps.by_kind.contains_key(&k) || iv.before.gaps.by_kind.contains_key(&k);
    Capabilities {
        root: s.euid == 0,
        tracing: tracing.to_string(),
        delayacct: s.delayacct.is_on(),
        delayacct_state: match s.delayacct {
            DelayAcct::OnSinceBoot => "on_since_boot",
            DelayAcct::OnAtRuntime => "on_at_runtime",
            DelayAcct::Off => "off",
            DelayAcct::Unknown => "unknown",
        }
        .into(),
        psi: s.psi_io.is_some(),
        all_processes_visible: !denied(GapKind::ProcessIo) && !denied(GapKind::ProcessFds),
        fixture: false,
        path_encoding: crate::hoststr::PATH_ENCODING.into(),
    }
}

/// What the snapshot's reader was refused or could not parse, each with how to see it.
/// Shared by every report that reads processes (diagnose, space).
pub fn gap_spots(gaps: &crate::snapshot::Gaps, root: bool) -> Vec<BlindSpot> {
    let mut v = Vec::new();
    for (kind, g) in &gaps.by_kind {
        let (what, how) = match kind {
            GapKind::ProcessIo => (
                format!(
                    "I/O counters of {} process(es) (e.g. {}): {}",
                    g.count, g.example, g.reason
                ),
                if root {
                    "nothing more to do from here".to_string()
                } else {
                    "run as root (or with CAP_SYS_PTRACE) to see every process".to_string()
                },
            ),
            GapKind::ProcessFds => (
                format!(
                    "open files of {} process(es) (e.g. {}): {}",
                    g.count, g.example, g.reason
                ),
                if root {
                    "nothing more to do from here".to_string()
                } else {
                    "run as root to map every writer to its files".to_string()
                },
            ),
            GapKind::ProcessWchan => (
                format!("wait channels of {} process(es)", g.count),
                "run as root".to_string(),
            ),
            GapKind::Statvfs => (
                format!(
                    "space of {} filesystem(s) (e.g. {}): {}",
                    g.count, g.example, g.reason
                ),
                "check the mount".to_string(),
            ),
            GapKind::SystemFile => (
                format!("{} ({})", g.example, g.reason),
                if g.example.contains("pressure") {
                    "boot with psi=1 (CONFIG_PSI_DEFAULT_DISABLED kernels)".to_string()
                } else {
                    "a newer kernel, or a readable procfs".to_string()
                },
            ),
            GapKind::Parse => (
                format!("{} could not be parsed: {}", g.example, g.reason),
                "report this as a bug with the file attached".to_string(),
            ),
            GapKind::Blocked => (
                format!(
                    "{} read(s) did not answer and were given up on (e.g. {}): {}",
                    g.count, g.example, g.reason
                ),
                "see the stuck tasks and filesystems above; `cat /proc/PID/stack` of a D-state task shows where it waits".to_string(),
            ),
        };
        v.push(BlindSpot {
            what,
            how_to_see: how,
        });
    }
    v
}

fn blind_spots(iv: &Interval, caps: &Capabilities) -> Vec<BlindSpot> {
    let mut v = Vec::new();
    let s = &iv.after;
    match s.delayacct {
        DelayAcct::Off => v.push(BlindSpot {
            what: "per-process I/O wait (delay accounting is off): io_wait_pct is null".into(),
            how_to_see: "sysctl kernel.task_delayacct=1 (processes started before that stay unknown), or boot with `delayacct`".into(),
        }),
        DelayAcct::Unknown => v.push(BlindSpot {
            what: "per-process I/O wait: whether delay accounting is on could not be read (no kernel.task_delayacct), so io_wait_pct is null".into(),
            how_to_see: "on 5.14+ kernels: sysctl kernel.task_delayacct=1; before 5.14 it is on unless the kernel was booted with `nodelayacct`".into(),
        }),
        DelayAcct::OnAtRuntime => v.push(BlindSpot {
            what: "delay accounting was turned on at run time: processes started before that have no I/O wait data, \
                   and show null unless they have some"
                .into(),
            how_to_see: "boot with `delayacct` on the kernel command line to cover every process".into(),
        }),
        DelayAcct::OnSinceBoot => {}
    }
    v.extend(gap_spots(&s.gaps, caps.root));
    if caps.tracing == "none" {
        v.push(BlindSpot {
            what: "syscalls (fsync per file, write sizes): not traced in this run".into(),
            how_to_see: "iowhy trace (root or CAP_PERFMON), or diagnose --tracing perf".into(),
        });
    }
    if iv.exited > 0 {
        v.push(BlindSpot {
            what: format!(
                "{} process(es) exited during the window: their last I/O is not attributed",
                iv.exited
            ),
            how_to_see: "iowhy trace sees short-lived processes".into(),
        });
    }
    v
}

pub fn build_report(d: &Diagnosis) -> Report {
    let iv = &d.interval;
    Report {
        version: wire::VERSION,
        host: iv.after.hostname.clone(),
        kernel: iv.after.kernel.clone(),
        started_at: units::rfc3339(iv.before.wall_unix_ms),
        window_seconds: r2n(iv.elapsed_s),
        capabilities: d.capabilities.clone(),
        devices: iv
            .whole_devices()
            .map(|dev| {
                let mut j = IostatDevice::extended(dev);
                if let Some(t) = iv.block_latency(dev) {
                    if let Some(ms) = t.device_mean_ms {
                        j.traced_device_time_ms = wire::round(ms, 3);
                        j.traced_device_time_p99_ms =
                            t.device_p99_ms.and_then(|v| wire::round(v, 3));
                        j.traced_queue_time_ms = t.queue_mean_ms.and_then(|v| wire::round(v, 3));
                    }
                }
                j
            })
            .collect(),
        filesystems: filesystems_json(&iv.filesystems),
        processes: d
            .shown_processes()
            .into_iter()
            .map(|p| process_json(d, p))
            .collect(),
        findings: d.findings.iter().map(finding_json).collect(),
        blind_spots: d.blind_spots.clone(),
        containers: super::containers::containers_json(iv),
        pods: super::containers::pods_json(iv),
        shims: super::containers::shims_json(iv),
        replay: None,
    }
}

/// Filesystems in the JSON contract's shape (also what the tables print).
pub fn filesystems_json(fs: &[crate::interval::FsRates]) -> Vec<Filesystem> {
    fs.iter()
        .map(|f| Filesystem {
            mountpoint: f.mountpoint.clone(),
            source: f.source.clone(),
            fstype: f.fstype.clone(),
            size_bytes: f.size_bytes,
            used_bytes: f.used_bytes,
            avail_bytes: f.avail_bytes,
            use_pct: f.use_pct,
            inodes_use_pct: f.inodes_use_pct,
            growth_bytes_per_s: r2o(f.growth_bytes_per_s),
            time_to_full_s: r2o(f.time_to_full_s),
            devices: f.devices.clone(),
            also_mounted_at: f.also_mounted_at.clone(),
        })
        .collect()
}

/// The files worth listing: regular files open for writing, deleted ones, growing ones.
/// The files worth listing: regular files open for writing that hold or gain data,
/// deleted ones, and anything that grew.
pub fn interesting_files(p: &ProcessRates) -> impl Iterator<Item = &crate::interval::FileRates> {
    p.files.iter().filter(|f| {
        let grew = f.growth_bytes_per_s.is_some_and(|g| g != 0.0);
        f.is_deleted_open() || (f.regular && f.writable && f.size_bytes.unwrap_or(0) > 0) || grew
    })
}

fn process_json(d: &Diagnosis, p: &ProcessRates) -> ProcessJson {
    let mut devices: Vec<String> = interesting_files(p)
        .filter_map(|f| f.devices.last().cloned())
        .collect();
    devices.sort();
    devices.dedup();
    ProcessJson {
        pid: p.pid,
        comm: p.comm.clone(),
        cmdline: p.cmdline.clone(),
        state: p.state.to_string(),
        wchan: p.wchan.clone(),
        read_bytes_per_s: r2o(p.read_bytes_per_s),
        write_bytes_per_s: r2o(p.write_bytes_per_s),
        io_wait_pct: r2o(p.io_wait_pct),
        fsync_per_s: r2o(d.fsync_per_s(p.pid)),
        container: d.containers.get(&p.pid).cloned(),
        files: interesting_files(p)
            .map(|f| FileJson {
                fd: f.fd,
                path: f.path.clone(),
                size_bytes: f.size_bytes,
                growth_bytes_per_s: r2o(f.growth_bytes_per_s),
                deleted: f.deleted,
                flags: f.flag_names().into_iter().map(String::from).collect(),
                pos_bytes: f.pos_bytes,
                mountpoint: f.mountpoint.clone(),
                device: f.devices.first().cloned(),
            })
            .collect(),
        uid: p.uid,
        cancelled_write_bytes_per_s: r2o(p.cancelled_write_bytes_per_s),
        rchar_per_s: r2o(p.rchar_per_s),
        wchar_per_s: r2o(p.wchar_per_s),
        syscr_per_s: r2o(p.syscr_per_s),
        syscw_per_s: r2o(p.syscw_per_s),
        d_state_threads: p.d_tasks,
        devices,
    }
}

pub fn finding_json(f: &Finding) -> FindingJson {
    let evidence = match serde_json::to_value(&f.evidence) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => Default::default(),
    };
    FindingJson {
        kind: f.kind,
        severity: f.severity,
        summary: f.summary.clone(),
        subject: f.subject.clone(),
        evidence,
        remediation: f.remediation.clone(),
        explanation: f.explanation.clone(),
    }
}
