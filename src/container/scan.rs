//! What one snapshot read of the container runtimes under `--root`: plain data, stored in
//! the [`Snapshot`](crate::snapshot::Snapshot) (so captures and recordings replay it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rotation::{DockerLogConfig, KubeletLogConfig};
use crate::parse::container::crilog::TailStats;
use crate::parse::container::logrotate;
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
    /// CRI-O's and Podman's OCI bundles (containers/storage), by container id.
    #[serde(default)]
    pub storage: Vec<StorageBundle>,
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

/// A container's `userdata/config.json` in containers/storage, as CRI-O and Podman keep
/// it (CRI-O under its run root `/run/containers/storage`, Podman under its graph root
/// `/var/lib/containers/storage`, both in `overlay-containers/<id>/userdata`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageBundle {
    pub id: String,
    /// Host path of the `config.json` read.
    pub config: String,
    /// Its kept annotations (`io.kubernetes.pod.name`, `io.container.manager`, ...).
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

impl DockerContainer {
    /// The file Docker writes this container's output to, if its log driver writes one
    /// iowhy can read: json-file's `<id>-json.log` (or `LogPath`), the `local` driver's
    /// `local-logs/container.log` (moby `container.StartLogger`, which keeps it out of
    /// `LogPath` on purpose). The container's own driver wins; without it (no readable
    /// `hostconfig.json`) the daemon's applies, and json-file is Docker's default.
    pub fn log_file(&self, daemon: Option<&DockerLogConfig>) -> Option<String> {
        let dir = format!("{}/{}", super::paths::DOCKER_CONTAINERS, self.id);
        match self.log.as_ref().or(daemon).map(|l| l.driver.as_str()) {
            None | Some("json-file") => Some(
                self.log_path
                    .clone()
                    .unwrap_or_else(|| format!("{dir}/{}-json.log", self.id)),
            ),
            Some("local") => Some(format!("{dir}/local-logs/container.log")),
            // journald, syslog, fluentd, none, ...: no file on this machine.
            Some(_) => None,
        }
    }

    /// The `local` driver's file is length-prefixed protobuf, not lines.
    pub fn log_is_binary(&self, daemon: Option<&DockerLogConfig>) -> bool {
        self.log
            .as_ref()
            .or(daemon)
            .is_some_and(|l| l.driver == "local")
    }
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

    pub fn storage_bundle(&self, id: &str) -> Option<&StorageBundle> {
        self.storage.iter().find(|b| b.id == id)
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
