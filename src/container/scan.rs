//! What one snapshot read of the container runtimes under `--root`: plain data, stored in
//! the [`Snapshot`](crate::snapshot::Snapshot) (so captures and recordings replay it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::crilog::TailStats;
use super::logrotate;
use super::rotation::{DockerLogConfig, KubeletLogConfig};
use crate::snapshot::FileStat;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeScan {
    /// containerd v2 task bundles.
    pub tasks: Vec<Task>,
    /// The kubelet's `/var/log/pods` tree.
    pub pods: Vec<PodLogs>,
    /// The kubelet's `/var/log/containers` links.
    pub links: Vec<ContainerLink>,
    /// Docker's containers.
    pub docker: Vec<DockerContainer>,
    /// `daemon.json` (or dockerd's flags); `None` when neither exists.
    pub docker_daemon: Option<DockerLogConfig>,
    /// The kubelet's log settings, when a kubelet or its files were seen.
    pub kubelet: Option<KubeletLogConfig>,
    pub logrotate: logrotate::Config,
    /// Every container log file found, by host path.
    pub logs: BTreeMap<String, LogFile>,
    /// Runtime files that exist but could not be read or parsed (path, why).
    pub problems: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub namespace: String,
    pub id: String,
    /// `init.pid`: the container's first process, in the host's pid namespace.
    pub init_pid: Option<u32>,
    /// The bundle's `io.kubernetes.*` annotations.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodLogs {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// The directory's name under `/var/log/pods`.
    pub dir: String,
    pub containers: Vec<PodContainerLogs>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PodContainerLogs {
    pub name: String,
    /// File names in the container's directory (`0.log`, `0.log.20240521-101112.gz`).
    pub files: Vec<String>,
}

impl PodLogs {
    /// Host path of a file in this pod's tree.
    pub fn path(&self, container: &str, file: &str) -> String {
        format!("{}/{}/{container}/{file}", super::paths::POD_LOGS, self.dir)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerLink {
    pub pod: String,
    pub namespace: String,
    pub container: String,
    pub id: String,
    /// Where the link points (a `/var/log/pods` file).
    pub target: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerContainer {
    pub id: String,
    pub name: Option<String>,
    pub log_path: Option<String>,
    pub running: bool,
    pub pid: Option<u32>,
    /// The log driver and options it was created with.
    pub log: Option<DockerLogConfig>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFile {
    /// stat(2) by path; `None` when it vanished or was denied.
    pub stat: Option<FileStat>,
    /// Statistics of its last bytes (only for the file being written).
    pub tail: Option<TailStats>,
}

impl RuntimeScan {
    pub fn task(&self, namespace: &str, id: &str) -> Option<&Task> {
        self.tasks
            .iter()
            .find(|t| t.namespace == namespace && t.id == id)
    }

    pub fn docker_container(&self, id: &str) -> Option<&DockerContainer> {
        self.docker.iter().find(|d| d.id == id)
    }

    pub fn pod_by_uid(&self, uid: &str) -> Option<&PodLogs> {
        self.pods.iter().find(|p| p.uid == uid)
    }

    pub fn link_by_id(&self, id: &str) -> Option<&ContainerLink> {
        self.links.iter().find(|l| l.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.pods.is_empty() && self.docker.is_empty()
    }
}
