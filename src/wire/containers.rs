//! Containers: `processes[].container`, diagnose's `containers`, `pods` and `shims`, and
//! `iowhy containers --format json`.

use serde::{Deserialize, Serialize};

use super::diagnose::{BlindSpot, FindingJson};

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
    #[serde(deserialize_with = "super::nan_if_null")]
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
