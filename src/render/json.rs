//! The JSON wire types: the stable contract of `DESIGN.md`. Scripts and tests depend on
//! these names; add fields, never rename one. Device keys are sysstat's own
//! (`iostat -o JSON`), so scripts written for sysstat read ours.

use serde::{Deserialize, Serialize};

use crate::interval::DeviceRates;

pub const VERSION: u32 = 1;

pub use crate::units::{r2, r2o};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub version: u32,
    pub host: String,
    pub kernel: String,
    pub started_at: String,
    pub window_seconds: f64,
    pub capabilities: Capabilities,
    pub devices: Vec<IostatDevice>,
    pub filesystems: Vec<Filesystem>,
    pub processes: Vec<ProcessJson>,
    pub findings: Vec<FindingJson>,
    /// What this run could not see, and how to see it.
    pub blind_spots: Vec<BlindSpot>,
    /// Containers with their I/O and logs (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerJson>,
    /// Log size by pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<PodJson>,
    /// I/O by shim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shims: Vec<ShimJson>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Capabilities {
    pub root: bool,
    /// "perf" | "ebpf" | "sampling" | "none"
    pub tracing: String,
    pub delayacct: bool,
    /// "on_since_boot" | "on_at_runtime" | "off" | "unknown"
    pub delayacct_state: String,
    pub psi: bool,
    /// Every process's /proc/PID/io and fd table could be read.
    pub all_processes_visible: bool,
    /// Read from a captured fixture instead of the live machine.
    pub fixture: bool,
    /// How host strings (paths, comm, cmdline, container names) that are not UTF-8 appear
    /// in this JSON: [`crate::hoststr::PATH_ENCODING`]; decode with `hoststr::to_bytes`.
    #[serde(default)]
    pub path_encoding: String,
}

/// One device, one interval, with sysstat's keys and units (kB = 1024 bytes, ms, %).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IostatDevice {
    pub disk_device: String,
    #[serde(rename = "r/s")]
    pub r_s: f64,
    #[serde(rename = "w/s")]
    pub w_s: f64,
    #[serde(rename = "d/s")]
    pub d_s: f64,
    #[serde(rename = "f/s")]
    pub f_s: f64,
    #[serde(rename = "rkB/s")]
    pub rkb_s: f64,
    #[serde(rename = "wkB/s")]
    pub wkb_s: f64,
    #[serde(rename = "dkB/s")]
    pub dkb_s: f64,
    #[serde(rename = "rrqm/s")]
    pub rrqm_s: f64,
    #[serde(rename = "wrqm/s")]
    pub wrqm_s: f64,
    #[serde(rename = "drqm/s")]
    pub drqm_s: f64,
    pub rrqm: f64,
    pub wrqm: f64,
    pub drqm: f64,
    pub r_await: f64,
    pub w_await: f64,
    pub d_await: f64,
    pub f_await: f64,
    #[serde(rename = "rareq-sz")]
    pub rareq_sz: f64,
    #[serde(rename = "wareq-sz")]
    pub wareq_sz: f64,
    #[serde(rename = "dareq-sz")]
    pub dareq_sz: f64,
    #[serde(rename = "aqu-sz")]
    pub aqu_sz: f64,
    pub util: f64,
    /// Ours, beyond sysstat: busy time per completed request (see `svctm_est_ms` in the
    /// interval docs), requests in flight, and the queue's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svctm_est_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotational: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    /// With eBPF tracing: measured mean time in the device (issue → complete) and in the
    /// scheduler queue (insert → issue), all request kinds together, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_device_time_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_device_time_p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_queue_time_ms: Option<f64>,
}

impl IostatDevice {
    /// Exactly sysstat's columns (for `iowhy iostat --format json`).
    pub fn sysstat(d: &DeviceRates) -> Self {
        IostatDevice {
            disk_device: d.name.clone(),
            r_s: r2(d.r_s),
            w_s: r2(d.w_s),
            d_s: r2(d.d_s),
            f_s: r2(d.f_s),
            rkb_s: r2(d.rkb_s),
            wkb_s: r2(d.wkb_s),
            dkb_s: r2(d.dkb_s),
            rrqm_s: r2(d.rrqm_s),
            wrqm_s: r2(d.wrqm_s),
            drqm_s: r2(d.drqm_s),
            rrqm: r2(d.rrqm_pct),
            wrqm: r2(d.wrqm_pct),
            drqm: r2(d.drqm_pct),
            r_await: r2(d.r_await_ms),
            w_await: r2(d.w_await_ms),
            d_await: r2(d.d_await_ms),
            f_await: r2(d.f_await_ms),
            rareq_sz: r2(d.rareq_sz_kb),
            wareq_sz: r2(d.wareq_sz_kb),
            dareq_sz: r2(d.dareq_sz_kb),
            aqu_sz: r2(d.aqu_sz),
            util: r2(d.util_pct),
            ..Default::default()
        }
    }

    /// sysstat's columns plus ours (for `diagnose`).
    pub fn extended(d: &DeviceRates) -> Self {
        IostatDevice {
            svctm_est_ms: r2o(d.svctm_est_ms),
            in_flight: Some(d.in_flight),
            rotational: d.rotational,
            queue_depth: d.nr_requests,
            scheduler: d.scheduler.clone(),
            ..IostatDevice::sysstat(d)
        }
    }
}

/// `iowhy iostat --format json`: one object per interval (JSON Lines).
/// `disk` holds `IostatDevice` with `-x`, `IostatBasic` without, as sysstat's
/// `iostat -dx -o JSON` and `iostat -d -o JSON` do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IostatSample<D = IostatDevice> {
    pub timestamp: String,
    /// Seconds this sample covers (since boot for the first).
    pub interval_seconds: f64,
    pub disk: Vec<D>,
}

/// sysstat's basic device report (`iostat -d -o JSON`), with its keys: transfers per
/// second, kB/s, and kB over the interval (sectors / 2, truncated as sysstat does).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct IostatBasic {
    pub disk_device: String,
    pub tps: f64,
    #[serde(rename = "kB_read/s")]
    pub kb_read_s: f64,
    #[serde(rename = "kB_wrtn/s")]
    pub kb_wrtn_s: f64,
    #[serde(rename = "kB_dscd/s")]
    pub kb_dscd_s: f64,
    #[serde(rename = "kB_read")]
    pub kb_read: u64,
    #[serde(rename = "kB_wrtn")]
    pub kb_wrtn: u64,
    #[serde(rename = "kB_dscd")]
    pub kb_dscd: u64,
}

impl IostatBasic {
    pub fn sysstat(d: &DeviceRates, itv_cs: u64) -> Self {
        let secs = itv_cs as f64 / 100.0;
        // kB over the interval from the per-second rate: sysstat prints the delta of
        // sectors / 2 in integer arithmetic; the epsilon undoes float error before the floor.
        let total = |kb_s: f64| (kb_s * secs + 1e-6).floor() as u64;
        IostatBasic {
            disk_device: d.name.clone(),
            tps: r2(d.r_s + d.w_s + d.d_s),
            kb_read_s: r2(d.rkb_s),
            kb_wrtn_s: r2(d.wkb_s),
            kb_dscd_s: r2(d.dkb_s),
            kb_read: total(d.rkb_s),
            kb_wrtn: total(d.wkb_s),
            kb_dscd: total(d.dkb_s),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Filesystem {
    pub mountpoint: String,
    pub source: String,
    pub fstype: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub avail_bytes: u64,
    pub use_pct: Option<f64>,
    pub inodes_use_pct: Option<f64>,
    pub growth_bytes_per_s: Option<f64>,
    pub time_to_full_s: Option<f64>,
    #[serde(default)]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_mounted_at: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessJson {
    pub pid: u32,
    pub comm: String,
    pub cmdline: String,
    pub state: String,
    pub wchan: Option<String>,
    pub read_bytes_per_s: Option<f64>,
    pub write_bytes_per_s: Option<f64>,
    /// null when delay accounting is off or cannot be trusted for this process.
    pub io_wait_pct: Option<f64>,
    /// null without syscall tracing.
    pub fsync_per_s: Option<f64>,
    pub container: Option<serde_json::Value>,
    pub files: Vec<FileJson>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub cancelled_write_bytes_per_s: Option<f64>,
    #[serde(default)]
    pub rchar_per_s: Option<f64>,
    #[serde(default)]
    pub wchar_per_s: Option<f64>,
    #[serde(default)]
    pub syscr_per_s: Option<f64>,
    #[serde(default)]
    pub syscw_per_s: Option<f64>,
    /// Threads in D state (either end of the window).
    #[serde(default)]
    pub d_state_threads: usize,
    /// The disks its writable files live on.
    #[serde(default)]
    pub devices: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FileJson {
    pub fd: i32,
    pub path: String,
    pub size_bytes: Option<u64>,
    pub growth_bytes_per_s: Option<f64>,
    pub deleted: bool,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub pos_bytes: Option<u64>,
    #[serde(default)]
    pub mountpoint: Option<String>,
    #[serde(default)]
    pub device: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SubjectJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mountpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FindingJson {
    pub kind: String,
    /// "critical" | "warning" | "info"
    pub severity: String,
    pub summary: String,
    pub subject: SubjectJson,
    pub evidence: serde_json::Map<String, serde_json::Value>,
    pub remediation: Vec<String>,
    #[serde(default)]
    pub explanation: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BlindSpot {
    /// What could not be seen.
    pub what: String,
    /// Why, and how to see it.
    pub how_to_see: String,
}

// ---- Containers (issue 4): `processes[].container`, diagnose's `containers`, `pods`,
// `shims`, and `iowhy containers --format json`.

/// Who a container is.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerIdJson {
    /// "containerd" | "docker" | "cri-o" | "podman" | "unknown"
    pub runtime: String,
    pub id: String,
    /// Kubernetes container name, or Docker/Podman name.
    pub name: Option<String>,
    /// containerd namespace (`k8s.io`, `moby`, `default`, ...).
    pub runtime_namespace: Option<String>,
    pub pod: Option<String>,
    /// Kubernetes namespace.
    pub namespace: Option<String>,
    pub pod_uid: Option<String>,
    #[serde(default)]
    pub sandbox: bool,
    /// The traces that named it: cgroup, shim, conmon, bundle, docker, pod_logs.
    #[serde(default)]
    pub sources: Vec<String>,
}

/// `processes[].container`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessContainerJson {
    #[serde(flatten)]
    pub container: ContainerIdJson,
    /// "container" (a process of it) | "shim" | "monitor" (conmon).
    pub role: String,
    pub shim_pid: Option<u32>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RotationJson {
    /// "kubelet" | "docker" | "conmon" | "logrotate" | "none" | "unknown"
    pub by: String,
    /// "ok" | "missing" | "not_keeping_up" | "unknown"
    pub state: String,
    pub max_size_bytes: Option<u64>,
    pub max_files: Option<u32>,
    pub check_interval_s: Option<f64>,
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerLogJson {
    pub path: String,
    /// "cri" | "docker-json" | "shim-file" | "conmon" | "file"
    pub kind: String,
    pub writer_pid: Option<u32>,
    pub size_bytes: Option<u64>,
    /// With its rotated files.
    pub total_bytes: Option<u64>,
    pub growth_bytes_per_s: Option<f64>,
    pub lines_per_s: Option<f64>,
    pub stderr_pct: Option<f64>,
    pub avg_line_bytes: Option<f64>,
    pub mountpoint: Option<String>,
    pub device: Option<String>,
    pub filesystem_avail_bytes: Option<u64>,
    pub time_to_full_s: Option<f64>,
    pub rotation: RotationJson,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerJson {
    #[serde(flatten)]
    pub container: ContainerIdJson,
    pub pids: Vec<u32>,
    pub shim_pid: Option<u32>,
    pub write_bytes_per_s: Option<f64>,
    pub read_bytes_per_s: Option<f64>,
    pub io_wait_pct: Option<f64>,
    pub shim_write_bytes_per_s: Option<f64>,
    pub shim_io_wait_pct: Option<f64>,
    /// Of its main log (the fastest-growing).
    pub log_bytes_per_s: Option<f64>,
    pub log_size_bytes: Option<u64>,
    pub blocked_pipes: usize,
    pub d_state_threads: usize,
    pub logs: Vec<ContainerLogJson>,
}

/// Log size by pod (`/var/log/pods`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PodJson {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub log_bytes: u64,
    pub log_bytes_per_s: Option<f64>,
    pub containers: usize,
}

/// I/O by shim (or conmon).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ShimJson {
    pub pid: u32,
    pub comm: String,
    /// "shim" | "monitor"
    pub role: String,
    pub runtime_namespace: Option<String>,
    /// The task id on its command line.
    pub id: String,
    pub containers: usize,
    pub write_bytes_per_s: Option<f64>,
    pub io_wait_pct: Option<f64>,
    pub log_bytes_per_s: Option<f64>,
}

/// `iowhy containers --format json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ContainersReport {
    pub version: u32,
    pub host: String,
    pub started_at: String,
    pub window_seconds: f64,
    pub containers: Vec<ContainerJson>,
    pub pods: Vec<PodJson>,
    pub shims: Vec<ShimJson>,
    /// The container and pipe findings (`container_log_flood`, `log_rotation_missing`,
    /// `pipe_blocked`).
    pub findings: Vec<FindingJson>,
    /// Runtime files that could not be read or parsed, and other blind spots.
    pub blind_spots: Vec<BlindSpot>,
}
