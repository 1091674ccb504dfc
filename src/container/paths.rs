//! Where container runtimes keep their state, as the host spells it. These are joined
//! onto `--root` through [`Roots::host`](crate::roots::Roots::host), never read directly,
//! so that a DaemonSet with the host at `/host` and the fixture trees work the same.

/// containerd's v2 task bundles: `NS/ID/{config.json,init.pid,...}`. (`log` in there is a
/// FIFO: never open it.)
pub const CONTAINERD_TASKS: &str = "/run/containerd/io.containerd.runtime.v2.task";
/// containerd's own state (task bundles, FIFOs, sockets): never a container's log.
pub const CONTAINERD_STATE: &str = "/run/containerd/";
/// containers/storage's per-container directories (`ID/userdata/config.json`): CRI-O's
/// run root, and Podman's (rootful) graph root.
pub const STORAGE_CONTAINERS: &[&str] = &[
    "/run/containers/storage/overlay-containers",
    "/var/lib/containers/storage/overlay-containers",
];
/// The kubelet's per-pod log tree: `NS_POD_UID/CONTAINER/N.log`.
pub const POD_LOGS: &str = "/var/log/pods";
/// The kubelet's links `POD_NS_CONTAINER-ID.log` -> `/var/log/pods/.../N.log`.
pub const CONTAINER_LOG_LINKS: &str = "/var/log/containers";
/// Docker's per-container directories (`ID/config.v2.json`, `ID/hostconfig.json`,
/// `ID/ID-json.log`).
pub const DOCKER_CONTAINERS: &str = "/var/lib/docker/containers";
pub const DOCKER_DAEMON_JSON: &str = "/etc/docker/daemon.json";
/// The kubeadm default for `kubelet --config`.
pub const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";
pub const LOGROTATE_CONF: &str = "/etc/logrotate.conf";
/// Present when cron runs logrotate every hour instead of every day.
pub const LOGROTATE_HOURLY: &str = "/etc/cron.hourly/logrotate";
