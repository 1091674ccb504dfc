//! Read the container runtimes' records under `--root` into a [`RuntimeScan`]: containerd
//! task bundles, the kubelet's `/var/log/pods` tree and links, Docker's container
//! directories and `daemon.json`, the kubelet's config, logrotate's config, and the size
//! and tail of every container log found.
//!
//! All of it is optional: a machine without containers has none of these files, and a
//! user without root may not read `/run/containerd`. A file that vanished is skipped; one
//! that was refused or did not parse is listed in `problems`.

use std::collections::BTreeSet;
use std::path::Path;

use crate::container::paths;
use crate::container::rotation;
use crate::container::scan::{
    ContainerLink, DockerContainer, LogFile, PodContainerLogs, PodLogs, RuntimeScan, StorageBundle,
    Task,
};
use crate::error::ReadError;
use crate::parse::container::cmdline;
use crate::parse::container::crilog;
use crate::parse::container::logrotate;
use crate::parse::container::oci;
use crate::parse::container::podlog;
use crate::parse::fdinfo;
use crate::snapshot::Process;

use super::reader::{MAX_CONFIG_BYTES, Reader};

/// How much of a log's end to read for line statistics: enough for hundreds of lines,
/// small enough to cost nothing per log per snapshot.
const TAIL_BYTES: u64 = 64 * 1024;
/// Bounds on what one scan looks at (a node runs at most a few hundred pods).
const MAX_PODS: usize = 2000;
const MAX_STORAGE: usize = 2000;
const MAX_FILES_PER_DIR: usize = 200;
const MAX_LOGROTATE_FILES: usize = 300;

struct Ctx<'a> {
    r: &'a mut Reader,
    out: RuntimeScan,
}

impl Ctx<'_> {
    fn host(&self, p: &str) -> std::path::PathBuf {
        self.r.roots.host(Path::new(p))
    }

    fn problem(&mut self, e: &ReadError) {
        if !e.is_not_found() {
            let p = self.r.roots.host_path_of(e.path()).display().to_string();
            let why = if e.is_permission() {
                "permission denied".to_string()
            } else {
                e.to_string()
            };
            self.out.problems.push((p, why));
        }
    }

    fn list(&mut self, host: &str) -> Vec<String> {
        let path = self.host(host);
        let res = self.r.open_dir(&path).and_then(|d| {
            let mut v = Vec::new();
            self.r
                .for_each_entry(&d, |n| v.push(n.to_string_lossy().into_owned()))?;
            Ok(v)
        });
        match res {
            Ok(mut v) => {
                v.sort();
                v
            }
            Err(e) => {
                self.problem(&e);
                Vec::new()
            }
        }
    }

    fn read(&mut self, host: &str) -> Option<String> {
        let path = self.host(host);
        match self.r.read_path_capped(&path, MAX_CONFIG_BYTES) {
            Ok(t) => Some(t.into_owned()),
            Err(e) => {
                self.problem(&e);
                None
            }
        }
    }

    fn parse_problem(&mut self, host: &str, e: impl std::fmt::Display) {
        self.out.problems.push((host.to_string(), e.to_string()));
    }
}

/// Whether a process's command line may name files for us to read. Any user can start a
/// process called `kubelet --config /some/fifo`; only root can start a root-owned one,
/// and the real kubelet and dockerd run as root.
fn trusted(p: &Process) -> bool {
    p.uid == Some(0)
}

pub fn scan(r: &mut Reader, processes: &[Process]) -> RuntimeScan {
    let mut c = Ctx {
        r,
        out: RuntimeScan::default(),
    };
    tasks(&mut c);
    storage(&mut c, processes);
    pods(&mut c);
    links(&mut c);
    docker(&mut c, processes);
    kubelet(&mut c, processes);
    logrotate_config(&mut c);
    logs(&mut c, processes);
    c.out
}

fn tasks(c: &mut Ctx<'_>) {
    for ns in c.list(paths::CONTAINERD_TASKS) {
        for id in c.list(&format!("{}/{ns}", paths::CONTAINERD_TASKS)) {
            let dir = format!("{}/{ns}/{id}", paths::CONTAINERD_TASKS);
            let init_pid = c
                .read(&format!("{dir}/init.pid"))
                .and_then(|t| t.trim().parse().ok());
            let annotations = match c.read(&format!("{dir}/config.json")) {
                Some(t) => oci::bundle_annotations(&t).unwrap_or_else(|e| {
                    c.parse_problem(&format!("{dir}/config.json"), e);
                    Default::default()
                }),
                None => Default::default(),
            };
            c.out.tasks.push(Task {
                namespace: ns.clone(),
                id,
                init_pid,
                annotations,
            });
        }
    }
}

/// CRI-O's and Podman's bundles: every container directory in the storage roots, and
/// the bundle each running conmon names (`-b`, for a storage root elsewhere). The first
/// `config.json` found for an id wins (CRI-O keeps the same one in both roots).
fn storage(c: &mut Ctx<'_>, processes: &[Process]) {
    let mut bundles: Vec<(String, String)> = Vec::new();
    for root in paths::STORAGE_CONTAINERS {
        for id in c.list(root) {
            if crate::parse::container::cgroup::is_hex_id(&id) {
                bundles.push((id.clone(), format!("{root}/{id}/userdata")));
            }
        }
    }
    for p in processes {
        let cm = p.cmdline.as_deref().and_then(cmdline::conmon);
        if let Some((Some(id), Some(b))) = cm.map(|a| (a.cid, a.bundle)) {
            bundles.push((id, b));
        }
    }
    let mut seen = BTreeSet::new();
    for (id, dir) in bundles {
        if seen.contains(&id) || seen.len() >= MAX_STORAGE {
            continue;
        }
        let path = format!("{}/config.json", dir.trim_end_matches('/'));
        let Some(text) = c.read(&path) else { continue };
        match oci::bundle_annotations(&text) {
            Ok(annotations) => {
                seen.insert(id.clone());
                c.out.storage.push(StorageBundle {
                    id,
                    config: path,
                    annotations,
                });
            }
            Err(e) => c.parse_problem(&path, e),
        }
    }
}

fn pods(c: &mut Ctx<'_>) {
    for name in c.list(paths::POD_LOGS).into_iter().take(MAX_PODS) {
        let Some(d) = podlog::pod_dir(&name) else {
            continue;
        };
        let mut pod = PodLogs {
            namespace: d.namespace,
            pod: d.pod,
            uid: d.uid,
            dir: name.clone(),
            containers: Vec::new(),
        };
        for ctr in c.list(&format!("{}/{name}", paths::POD_LOGS)) {
            let mut files = c.list(&format!("{}/{name}/{ctr}", paths::POD_LOGS));
            files.retain(|f| podlog::log_file_name(f).is_some());
            files.truncate(MAX_FILES_PER_DIR);
            pod.containers.push(PodContainerLogs { name: ctr, files });
        }
        c.out.pods.push(pod);
    }
}

fn links(c: &mut Ctx<'_>) {
    for name in c.list(paths::CONTAINER_LOG_LINKS) {
        let Some(l) = podlog::link_name(&name) else {
            continue;
        };
        let path = c.host(&format!("{}/{name}", paths::CONTAINER_LOG_LINKS));
        let target = c.r.readlink(&path).ok();
        c.out.links.push(ContainerLink {
            pod: l.pod,
            namespace: l.namespace,
            container: l.container,
            id: l.id,
            target,
        });
    }
}

fn docker(c: &mut Ctx<'_>, processes: &[Process]) {
    let ids: Vec<String> = c
        .list(paths::DOCKER_CONTAINERS)
        .into_iter()
        .filter(|i| crate::parse::container::cgroup::is_hex_id(i))
        .collect();
    for id in ids {
        let dir = format!("{}/{id}", paths::DOCKER_CONTAINERS);
        let Some(text) = c.read(&format!("{dir}/config.v2.json")) else {
            continue;
        };
        let cfg = match oci::docker_config(&text) {
            Ok(x) => x,
            Err(e) => {
                c.parse_problem(&format!("{dir}/config.v2.json"), e);
                continue;
            }
        };
        let log = c
            .read(&format!("{dir}/hostconfig.json"))
            .and_then(|t| oci::docker_host_log_config(&t).ok().flatten())
            .map(|(d, o)| rotation::docker_log_config(&d, &o, &format!("{dir}/hostconfig.json")));
        c.out.docker.push(DockerContainer {
            id,
            name: cfg.name,
            log_path: cfg.log_path,
            running: cfg.running,
            pid: cfg.pid,
            log,
            labels: cfg.labels,
        });
    }
    let dockerd = processes
        .iter()
        .filter(|p| trusted(p))
        .find_map(|p| p.cmdline.as_deref().and_then(cmdline::dockerd));
    let file = dockerd
        .as_ref()
        .and_then(|d| d.config_file.clone())
        .unwrap_or_else(|| paths::DOCKER_DAEMON_JSON.to_string());
    let daemon = c
        .read(&file)
        .and_then(|t| match rotation::docker_daemon(&t, &file) {
            Ok(x) => Some(x),
            Err(e) => {
                c.parse_problem(&file, e);
                None
            }
        });
    c.out.docker_daemon = match (daemon, dockerd) {
        // Flags on dockerd's command line win over daemon.json (dockerd refuses both).
        (_, Some(d)) if d.log_driver.is_some() || !d.log_opts.is_empty() => {
            let opts = d.log_opts.iter().cloned().collect();
            Some(rotation::docker_log_config(
                d.log_driver.as_deref().unwrap_or(""),
                &opts,
                "dockerd flags",
            ))
        }
        (Some(x), _) => Some(x),
        (None, Some(_)) => Some(rotation::docker_log_config(
            "",
            &Default::default(),
            "Docker's defaults (no daemon.json)",
        )),
        (None, None) if !c.out.docker.is_empty() => Some(rotation::docker_log_config(
            "",
            &Default::default(),
            "Docker's defaults (no daemon.json)",
        )),
        (None, None) => None,
    };
}

fn kubelet(c: &mut Ctx<'_>, processes: &[Process]) {
    let flags = processes
        .iter()
        .filter(|p| trusted(p))
        .find_map(|p| p.cmdline.as_deref().and_then(cmdline::kubelet));
    let running = flags.is_some();
    let cfg_path = flags
        .as_ref()
        .and_then(|f| f.config.clone())
        .unwrap_or_else(|| paths::KUBELET_CONFIG.to_string());
    let file = c
        .read(&cfg_path)
        .and_then(|t| match rotation::kubelet_file(&t) {
            Ok(f) => Some(f),
            Err(e) => {
                c.parse_problem(&cfg_path, e);
                None
            }
        });
    if !running && file.is_none() && c.out.pods.is_empty() {
        return;
    }
    let mut k = rotation::kubelet_effective(
        file.as_ref().map(|f| (f, cfg_path.as_str())),
        flags
            .as_ref()
            .and_then(|f| f.container_log_max_size.as_deref()),
        flags
            .as_ref()
            .and_then(|f| f.container_log_max_files.as_deref()),
        running,
    );
    if k.config_file.is_none() {
        // Named by --config but unreadable: still the file to change.
        k.config_file = flags.as_ref().and_then(|f| f.config.clone());
    }
    if !running {
        k.source.push_str(" (kubelet not running)");
    }
    c.out.kubelet = Some(k);
}

/// logrotate's own list of file name endings it skips in an included directory.
const TABOO: &[&str] = &[
    ",v",
    ".cfsaved",
    ".disabled",
    ".dpkg-bak",
    ".dpkg-del",
    ".dpkg-dist",
    ".dpkg-new",
    ".dpkg-old",
    ".rpmnew",
    ".rpmorig",
    ".rpmsave",
    ".swp",
    ".ucf-dist",
    ".ucf-new",
    ".ucf-old",
    "~",
];

fn logrotate_config(c: &mut Ctx<'_>) {
    let mut defaults = logrotate::Defaults::default();
    let mut seen = BTreeSet::new();
    let mut stanzas = Vec::new();
    read_logrotate(
        c,
        paths::LOGROTATE_CONF,
        &mut defaults,
        &mut seen,
        &mut stanzas,
        0,
    );
    c.out.logrotate.stanzas = stanzas;
    c.out.logrotate.runs_hourly = c.r.stat_path(&c.host(paths::LOGROTATE_HOURLY)).is_ok();
}

/// logrotate's own limit on nested includes (config.c `MAX_NESTING`).
const MAX_INCLUDE_DEPTH: usize = 10;

/// Read one logrotate path (a file, or a directory's files in name order), its includes
/// in place: see [`logrotate::parse_with`].
fn read_logrotate(
    c: &mut Ctx<'_>,
    p: &str,
    defaults: &mut logrotate::Defaults,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<logrotate::Stanza>,
    depth: usize,
) {
    if depth > MAX_INCLUDE_DEPTH || seen.len() >= MAX_LOGROTATE_FILES || !seen.insert(p.to_string())
    {
        return;
    }
    if c.host(p).is_dir() {
        let mut names = c.list(p);
        names.retain(|n| !TABOO.iter().any(|t| n.ends_with(t)) && !n.starts_with('.'));
        for n in names {
            let child = format!("{}/{n}", p.trim_end_matches('/'));
            read_logrotate(c, &child, defaults, seen, out, depth + 1);
        }
        return;
    }
    let Some(text) = c.read(p) else { return };
    c.out.logrotate.files.push(p.to_string());
    let res = logrotate::parse_with(&text, p, defaults, out, &mut |inc, d, o| {
        read_logrotate(c, inc, d, seen, o, depth + 1)
    });
    if let Err(e) = res {
        c.parse_problem(p, e);
    }
}

/// Stat every container log found, and read the tail of the ones being written.
fn logs(c: &mut Ctx<'_>, processes: &[Process]) {
    // Files being written get their tail read; rotated and binary ones only a stat.
    let mut active: Vec<String> = Vec::new();
    let mut rotated: Vec<String> = Vec::new();
    for pod in &c.out.pods {
        for ctr in &pod.containers {
            let newest = crate::container::attribute::active_log(&ctr.files);
            for f in &ctr.files {
                let p = pod.path(&ctr.name, f);
                if Some(f) == newest.as_ref() {
                    active.push(p);
                } else {
                    rotated.push(p);
                }
            }
        }
    }
    let daemon = c.out.docker_daemon.as_ref();
    for d in &c.out.docker {
        if let Some(f) = d.log_file(daemon) {
            if d.log_is_binary(daemon) {
                rotated.push(f);
            } else {
                active.push(f);
            }
        }
    }
    for p in processes {
        let Some(argv) = &p.cmdline else { continue };
        if let Some(cm) = cmdline::conmon(argv) {
            active.extend(cm.log_path);
        } else if cmdline::shim(argv).is_some() {
            for f in p.fds.iter().flatten() {
                let writable = f.flags.is_some_and(fdinfo::is_writable);
                if writable
                    && !f.deleted
                    && f.stat.is_some_and(|s| s.is_regular())
                    && !f.target.starts_with(paths::CONTAINERD_STATE)
                {
                    active.push(f.target.clone());
                }
            }
        }
    }
    for (paths, tail) in [(rotated, false), (active, true)] {
        for p in paths {
            if c.out.logs.contains_key(&p) {
                continue;
            }
            let host = c.host(&p);
            let stat = c.r.stat_path(&host).ok();
            let tail = if tail && stat.is_some_and(|s| s.is_regular()) {
                c.r.read_tail(&host, TAIL_BYTES)
                    .ok()
                    .map(|(off, text)| crilog::tail_stats(&text, off > 0))
            } else {
                None
            };
            c.out.logs.insert(p, LogFile { stat, tail });
        }
    }
}
