//! `container_log_flood` and `log_rotation_missing`: the container half of the seed —
//! a container spamming stdout through its shim into a log file that grows faster than
//! anything rotates it.

use crate::container::Runtime;
use crate::container::attribute::ContainerRef;
use crate::container::rotation::{self, LogKind, RotatedBy, RotationState};
use crate::interval::Interval;
use crate::interval::container::{ContainerRates, LogRates};
use crate::units::{self, shell_quote};

use super::{Finding, Kind, Severity, remedy::step};

/// A container log growing this fast is a flood: it is the kubelet's default
/// `containerLogMaxSize` (10 MiB) per `containerLogMonitorInterval` (10 s), the rate past
/// which the kubelet's rotation cannot keep a log under its limit; and it fills 84 GiB a
/// day.
pub const FLOOD_BYTES_PER_S: f64 = 1024.0 * 1024.0;
/// Critical when the filesystem would be full within the hour at this rate, or is
/// already this full (the same thresholds as `filesystem_full`).
pub const FLOOD_CRITICAL_TTF_S: f64 = super::space::FULL_SOON_S;
pub const FLOOD_CRITICAL_USE_PCT: f64 = super::space::FULL_PCT;
/// A log without rotation is worth a finding once it is this big (runaway_log's floor)...
pub const UNROTATED_LARGE_BYTES: u64 = super::space::RUNAWAY_MIN_BYTES;
/// ...or will be this big within the hour at its current rate.
pub const UNROTATED_HOUR_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;
/// Plain (non-container) logs are only judged under /var/log, where logrotate is
/// expected to be in charge.
pub const PLAIN_LOG_DIR: &str = "/var/log/";

fn label(r: &ContainerRef) -> String {
    let mut s = format!("{} {}", r.runtime_str(), r.short());
    if let Some(p) = r.pod_label() {
        s.push_str(&format!(" (pod {p})"));
    } else if let Some(ns) = &r.runtime_namespace {
        s.push_str(&format!(" (namespace {ns})"));
    }
    s
}

fn subject(f: &mut Finding, c: &ContainerRates, l: &LogRates) {
    f.subject.container_id = Some(c.info.r.id.clone());
    f.subject.pod = c.info.r.pod.clone();
    f.subject.namespace = c.info.r.namespace.clone();
    f.subject.path = Some(l.path.clone());
    f.subject.mountpoint = l.mountpoint.clone();
    f.subject.device = l.device.clone();
    // The container's first process: the one the runtime started.
    if let Some(pid) = c.info.pids.first() {
        f.subject.pid = Some(*pid);
    }
}

/// Is this file a container log that `container_log_flood` reports (so that
/// `runaway_log` does not tell the same story without the container)?
pub fn reported_as_flood(iv: &Interval, path: &str) -> bool {
    iv.containers.containers.iter().any(|c| {
        c.logs
            .iter()
            .any(|l| l.path == path && l.growth_bytes_per_s.unwrap_or(0.0) >= FLOOD_BYTES_PER_S)
    })
}

pub fn container_log_flood(iv: &Interval) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in &iv.containers.containers {
        for l in &c.logs {
            let g = l.growth_bytes_per_s.unwrap_or(0.0);
            if g < FLOOD_BYTES_PER_S {
                continue;
            }
            out.push(flood(iv, c, l, g));
        }
    }
    out
}

fn flood(iv: &Interval, c: &ContainerRates, l: &LogRates, g: f64) -> Finding {
    let r = &c.info.r;
    let critical = l.time_to_full_s.is_some_and(|t| t <= FLOOD_CRITICAL_TTF_S)
        || l.fs_use_pct.is_some_and(|u| u >= FLOOD_CRITICAL_USE_PCT);
    let severity = if critical {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut summary = format!("{} logs {} to {}", label(r), units::rate(g), l.path);
    if let (Some(t), Some(m)) = (l.time_to_full_s, &l.mountpoint) {
        summary.push_str(&format!("; {m} full in {}", units::duration(t)));
    }
    let mut f = Finding::new(Kind::ContainerLogFlood, severity, summary);
    subject(&mut f, c, l);
    if let Some(pid) = f.subject.pid {
        f.subject.comm = iv.process(pid).map(|p| p.comm.clone());
    }
    let pod_bytes = iv
        .containers
        .pods
        .iter()
        .find(|p| Some(&p.pod) == r.pod.as_ref() && Some(&p.namespace) == r.namespace.as_ref())
        .map(|p| p.log_bytes as f64);
    f.evidence
        .num("log_bytes_per_s", g)
        .opt("log_size_bytes", l.size_bytes.map(|v| v as f64))
        .opt("log_total_bytes", l.total_bytes.map(|v| v as f64))
        .opt("pod_log_bytes", pod_bytes)
        .opt("lines_per_s", l.lines_per_s)
        .opt("avg_line_bytes", l.avg_line_bytes)
        .opt("stderr_pct", l.stderr_pct)
        .opt("time_to_full_s", l.time_to_full_s)
        .opt("filesystem_avail_bytes", l.fs_avail_bytes.map(|v| v as f64))
        .opt("filesystem_use_pct", l.fs_use_pct)
        .opt("container_write_bytes_per_s", c.write_bytes_per_s)
        .opt("container_io_wait_pct", c.io_wait_pct)
        .opt("shim_pid", c.info.shim_pid.map(f64::from))
        .opt("shim_write_bytes_per_s", c.shim_write_bytes_per_s)
        .opt("shim_io_wait_pct", c.shim_io_wait_pct)
        .opt("writer_pid", l.writer_pid.map(f64::from))
        .text("runtime", r.runtime_str())
        .text("log_kind", l.kind.as_str())
        .text("rotation", l.rotation.detail.clone());
    if let Some(ns) = &r.runtime_namespace {
        f.evidence.text("runtime_namespace", ns.clone());
    }
    let writer = l
        .writer_pid
        .and_then(|p| iv.process(p))
        .map(|p| format!("{} (pid {})", p.comm, p.pid));
    let mut why = format!(
        "The container's stdout and stderr go to {}{}, which grows {}",
        l.path,
        writer
            .map(|w| format!(", written by {w}"))
            .unwrap_or_default(),
        units::rate(g)
    );
    if let Some(lps) = l.lines_per_s {
        why.push_str(&format!(" ({lps:.0} lines/s"));
        if let Some(e) = l.stderr_pct {
            why.push_str(&format!(", {e:.0}% on stderr"));
        }
        why.push(')');
    }
    why.push_str(&format!(
        "; it is {}. {}.",
        units::bytes_u(l.size_bytes.unwrap_or(0)),
        rotation_sentence(l, g)
    ));
    if let (Some(t), Some(m)) = (l.time_to_full_s, &l.mountpoint) {
        why.push_str(&format!(
            " At this rate {m} ({} free) is full in {}.",
            units::bytes_u(l.fs_avail_bytes.unwrap_or(0)),
            units::duration(t)
        ));
    }
    f.explanation = why;
    f.remediation = flood_remedies(c, l, &kubelet_config_place(iv));
    f
}

/// Where the kubelet's log settings live on this node (the file it read, or its flags).
fn kubelet_config_place(iv: &Interval) -> String {
    iv.after
        .runtime
        .as_ref()
        .and_then(|s| s.kubelet.as_ref())
        .map(|k| k.where_to_change())
        .unwrap_or_else(|| crate::container::paths::KUBELET_CONFIG.to_string())
}

fn rotation_sentence(l: &LogRates, g: f64) -> String {
    let r = &l.rotation;
    match (r.by, r.max_size_bytes, r.check_interval_s) {
        (RotatedBy::Nothing, _, _) => format!("Nothing rotates it: {}", r.detail),
        (_, Some(max), Some(every)) if g * every > max as f64 => format!(
            "It is rotated at {} but only checked every {}, and grows {} in that time: rotation cannot keep up ({})",
            units::bytes_u(max),
            units::duration(every),
            units::bytes(g * every),
            r.detail
        ),
        _ => format!("Rotation: {}", r.detail),
    }
}

fn flood_remedies(c: &ContainerRates, l: &LogRates, kubelet_config: &str) -> Vec<String> {
    let r = &c.info.r;
    let q = shell_quote(&l.path);
    let mut v = Vec::new();
    let see = match (r.runtime, &r.pod, &r.namespace, &r.name) {
        (_, Some(pod), Some(ns), Some(name)) => format!(
            "kubectl -n {} logs {} -c {} --tail=20",
            shell_quote(ns),
            shell_quote(pod),
            shell_quote(name)
        ),
        (Some(Runtime::Docker), _, _, _) => {
            format!("docker logs --tail 20 {}", shell_quote(&r.short()))
        }
        _ => format!("tail -n 20 {q}"),
    };
    v.push(step(
        see,
        "what is it saying so often? usually a debug level or an error loop",
    ));
    v.push(step(
        "# lower the application's log level (or fix the error it repeats)",
        "the only fix that removes the I/O instead of moving it",
    ));
    match l.kind {
        LogKind::Cri => {
            v.push(step(
                format!("# {kubelet_config}: containerLogMaxSize: 50Mi, containerLogMaxFiles: 3; then systemctl restart kubelet"),
                "the kubelet rotates /var/log/pods; it checks every containerLogMonitorInterval (10s), so a faster log outgrows any max size",
            ));
            if let (Some(pod), Some(ns)) = (&r.pod, &r.namespace) {
                v.push(step(
                    format!("kubectl -n {} delete pod {}", shell_quote(ns), shell_quote(pod)),
                    "if it cannot wait: its controller recreates it, and the kubelet removes the old logs",
                ));
            }
        }
        LogKind::DockerJson => {
            v.push(step(
                r#"# /etc/docker/daemon.json: {"log-driver": "local"} or {"log-opts": {"max-size": "50m", "max-file": "3"}}"#,
                "applies to containers created after dockerd restarts",
            ));
            v.push(step(
                format!(
                    "docker run --log-opt max-size=50m --log-opt max-file=3 ...  # recreate {}",
                    r.short()
                ),
                "an existing container keeps the log options it was created with",
            ));
        }
        LogKind::Conmon => v.push(step(
            "# CRI-O: log_size_max in /etc/crio/crio.conf; Podman: --log-opt max-size=50m",
            "conmon truncates the log past that size",
        )),
        LogKind::ShimFile | LogKind::Plain => {
            match (l.writer_pid, l.append) {
                (Some(pid), Some(true)) => v.push(step(
                    format!("truncate -s 0 /proc/{pid}/fd/{}", l_fd(c, l)),
                    "frees the space now, if the old lines are expendable: the writer appends (O_APPEND), so it continues at the new end",
                )),
                (Some(_), Some(false)) => v.push(step(
                    "# do not truncate it in place",
                    "the writer does not use O_APPEND: it would keep writing at its old offset and leave a sparse file",
                )),
                _ => {}
            }
            v.push(step(
                logrotate_cmd(&l.path, 3, l.append != Some(false), "iowhy-container"),
                "containerd never rotates a --log-uri file; copytruncate because the shim cannot be told to reopen it",
            ));
        }
    }
    v.push(step(
        format!("# never: rm {q}"),
        "the writer keeps the deleted inode open and the space is not freed",
    ));
    v
}

/// A command that writes a logrotate stanza for `path`, one directive per line.
pub fn logrotate_cmd(path: &str, keep: u32, copytruncate: bool, file: &str) -> String {
    // logrotate takes a path with spaces in double quotes.
    let target = if path.contains(char::is_whitespace) {
        format!("\"{path}\"")
    } else {
        path.to_string()
    };
    let mut lines = vec![
        format!("{target} {{"),
        "    size 100M".to_string(),
        format!("    rotate {keep}"),
        "    missingok".to_string(),
        "    notifempty".to_string(),
    ];
    if copytruncate {
        lines.push("    copytruncate".to_string());
    }
    lines.push("}".to_string());
    format!(
        "printf '%s\\n' {} > /etc/logrotate.d/{file}",
        lines
            .iter()
            .map(|l| shell_quote(l))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn l_fd(c: &ContainerRates, l: &LogRates) -> String {
    c.info
        .logs
        .iter()
        .find(|x| x.path == l.path)
        .and_then(|x| x.writer_fd)
        .map(|fd| fd.to_string())
        .unwrap_or_else(|| "FD".into())
}

pub fn log_rotation_missing(iv: &Interval) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for c in &iv.containers.containers {
        for l in &c.logs {
            if !seen.insert(l.path.clone()) {
                continue;
            }
            if let Some(mut f) = judge(l, Some(c), &kubelet_config_place(iv)) {
                f.subject.comm = f
                    .subject
                    .pid
                    .and_then(|p| iv.process(p))
                    .map(|p| p.comm.clone());
                out.push(f);
            }
        }
    }
    // Logs of ordinary processes under /var/log (the seed's /var/log/app/output.log).
    // Without the runtime scan logrotate's config was not read either: say nothing.
    let scan = iv.after.runtime.as_ref();
    for p in &iv.processes {
        for file in p
            .files
            .iter()
            .filter(|f| f.regular && f.writable && !f.deleted)
        {
            if !file.path.starts_with(PLAIN_LOG_DIR)
                || file.path.starts_with(crate::container::paths::POD_LOGS)
                || !seen.insert(file.path.clone())
            {
                continue;
            }
            let Some(scan) = scan else { continue };
            let rotation = rotation::resolve(LogKind::Plain, &file.path, None, None, scan);
            let l = LogRates {
                path: file.path.clone(),
                kind: LogKind::Plain,
                writer_pid: Some(p.pid),
                size_bytes: file.size_bytes,
                total_bytes: file.size_bytes,
                growth_bytes_per_s: file.growth_bytes_per_s,
                lines_per_s: None,
                stderr_pct: None,
                avg_line_bytes: None,
                format: None,
                mountpoint: file.mountpoint.clone(),
                device: file.devices.first().cloned(),
                fs_avail_bytes: None,
                fs_use_pct: None,
                time_to_full_s: None,
                rotation_state: rotation::state(&rotation, file.size_bytes),
                rotation,
                append: file
                    .flags
                    .map(|fl| fl & crate::parse::fdinfo::O_APPEND != 0),
            };
            if let Some(mut f) = judge(&l, None, &kubelet_config_place(iv)) {
                f.subject.pid = Some(p.pid);
                f.subject.comm = Some(p.comm.clone());
                out.push(f);
            }
        }
    }
    out
}

/// A finding when the log is big and growing with nothing rotating it, or far past the
/// size its rotator should keep it under.
fn judge(l: &LogRates, c: Option<&ContainerRates>, kubelet_config: &str) -> Option<Finding> {
    let size = l.size_bytes?;
    let g = l.growth_bytes_per_s.unwrap_or(0.0);
    let who = c
        .map(|c| format!(" ({})", label(&c.info.r)))
        .unwrap_or_default();
    let summary = match l.rotation_state {
        RotationState::Missing => {
            let big =
                size >= UNROTATED_LARGE_BYTES || size as f64 + g * 3600.0 >= UNROTATED_HOUR_BYTES;
            if g <= 0.0 || !big {
                return None;
            }
            format!(
                "nothing rotates {}{who}: {} and growing {}",
                l.path,
                units::bytes_u(size),
                units::rate(g)
            )
        }
        RotationState::NotKeepingUp => format!(
            "{}{who} is {}, {:.0}x its rotation size {}: rotation is not keeping up",
            l.path,
            units::bytes_u(size),
            size as f64 / l.rotation.max_size_bytes.unwrap_or(1).max(1) as f64,
            units::bytes_u(l.rotation.max_size_bytes.unwrap_or(0))
        ),
        RotationState::Ok | RotationState::Unknown => return None,
    };
    let mut f = Finding::new(Kind::LogRotationMissing, Severity::Warning, summary);
    if let Some(c) = c {
        subject(&mut f, c, l);
    } else {
        f.subject.path = Some(l.path.clone());
        f.subject.mountpoint = l.mountpoint.clone();
        f.subject.device = l.device.clone();
    }
    f.evidence
        .num("size_bytes", size as f64)
        .opt("growth_bytes_per_s", l.growth_bytes_per_s)
        .opt(
            "max_size_bytes",
            l.rotation.max_size_bytes.map(|v| v as f64),
        )
        .opt("max_files", l.rotation.max_files.map(f64::from))
        .opt("check_interval_s", l.rotation.check_interval_s)
        .text("rotated_by", l.rotation.by.as_str())
        .text("rotation_state", l.rotation_state.as_str())
        .text("rotation", l.rotation.detail.clone())
        .text("log_kind", l.kind.as_str());
    f.explanation = match l.rotation_state {
        RotationState::Missing => format!(
            "{}. At {} it adds {} a day until its filesystem is full.",
            l.rotation.detail,
            units::rate(g),
            units::bytes(g * 86400.0)
        ),
        _ => format!(
            "{}. A log far past its maximum means rotations were missed: the rotator runs too seldom for this rate{}.",
            l.rotation.detail,
            if l.kind == LogKind::Cri {
                " (a known kubelet failure at high log rates: it rotates at most once per containerLogMonitorInterval per container)"
            } else {
                ""
            }
        ),
    };
    let q = shell_quote(&l.path);
    let append_safe = matches!(l.kind, LogKind::ShimFile | LogKind::Conmon | LogKind::Plain);
    f.remediation = match l.kind {
        LogKind::Cri => vec![
            step(
                format!(
                    "# {kubelet_config}: containerLogMaxSize, containerLogMaxFiles (and containerLogMonitorInterval where supported); systemctl restart kubelet"
                ),
                "size the limits for the rate, and lower the app's log level",
            ),
            step(
                format!(
                    "ls -la {}",
                    shell_quote(l.path.rsplit_once('/').map_or("", |x| x.0))
                ),
                "the rotated files beside it",
            ),
        ],
        LogKind::DockerJson => vec![step(
            r#"# /etc/docker/daemon.json: {"log-opts": {"max-size": "50m", "max-file": "3"}}, restart dockerd, recreate the container"#,
            "json-file grows forever without max-size",
        )],
        _ => {
            let mut v = vec![step(
                logrotate_cmd(&l.path, 5, l.append != Some(false), "iowhy-log"),
                "a logrotate stanza for it (copytruncate: the writer is not told to reopen)",
            )];
            if l.rotation.by == RotatedBy::Logrotate {
                v.push(step(
                    "# or run logrotate hourly: cp /etc/cron.daily/logrotate /etc/cron.hourly/",
                    "a daily run cannot keep a fast log under its size",
                ));
            }
            if append_safe {
                v.push(step(
                    format!("logrotate -d /etc/logrotate.conf 2>&1 | grep -F {q}"),
                    "check that the stanza now covers it",
                ));
            }
            v
        }
    };
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::attribute::ContainerInfo;
    use crate::container::rotation::Rotation;

    const K: &str = "/var/lib/kubelet/config.yaml";

    fn log(size: u64, growth: f64, by: RotatedBy, max: Option<u64>) -> LogRates {
        let rotation = Rotation {
            by,
            max_size_bytes: max,
            max_files: Some(5),
            check_interval_s: Some(10.0),
            detail: "test".into(),
        };
        LogRates {
            path: "/var/log/pods/prod_web_u/app/0.log".into(),
            kind: LogKind::Cri,
            writer_pid: Some(300),
            size_bytes: Some(size),
            total_bytes: Some(size),
            growth_bytes_per_s: Some(growth),
            lines_per_s: Some(1000.0),
            stderr_pct: Some(0.0),
            avg_line_bytes: Some(80.0),
            format: None,
            mountpoint: Some("/".into()),
            device: Some("vda".into()),
            fs_avail_bytes: Some(1 << 30),
            fs_use_pct: Some(50.0),
            time_to_full_s: Some((1u64 << 30) as f64 / growth.max(1.0)),
            rotation_state: rotation::state(&rotation, Some(size)),
            rotation,
            append: Some(true),
        }
    }

    fn ctr(l: LogRates) -> ContainerRates {
        let mut info = ContainerInfo::default();
        info.r.id = "abc".into();
        info.r.pod = Some("web".into());
        info.r.namespace = Some("prod".into());
        info.r.name = Some("app".into());
        info.r.runtime = Some(Runtime::Containerd);
        info.pids = vec![901];
        ContainerRates {
            info,
            write_bytes_per_s: Some(0.0),
            read_bytes_per_s: Some(0.0),
            io_wait_pct: None,
            shim_write_bytes_per_s: None,
            shim_io_wait_pct: None,
            logs: vec![l],
            blocked_pipes: 0,
            d_state_threads: 0,
        }
    }

    #[test]
    fn judging_rotation() {
        // 4 MiB/s into a kubelet-rotated 10 MiB log that is 45 MiB: not keeping up.
        let l = log(
            45 << 20,
            4.0 * 1048576.0,
            RotatedBy::Kubelet,
            Some(10 << 20),
        );
        let f = judge(&l, Some(&ctr(l.clone())), K).unwrap();
        assert!(f.summary.contains("not keeping up"), "{}", f.summary);
        assert_eq!(f.subject.pod.as_deref(), Some("web"));
        // Within its limit: nothing to say.
        let l = log(5 << 20, 4.0 * 1048576.0, RotatedBy::Kubelet, Some(10 << 20));
        assert!(judge(&l, None, K).is_none());
        // Unrotated, small, slow: nothing yet; unrotated and 1 GiB within the hour: yes.
        let l = log(1 << 20, 10.0, RotatedBy::Nothing, None);
        assert!(judge(&l, None, K).is_none());
        let l = log(1 << 20, 1048576.0, RotatedBy::Nothing, None);
        assert!(
            judge(&l, None, K)
                .unwrap()
                .summary
                .starts_with("nothing rotates")
        );
        // Unrotated but not growing: no finding.
        let l = log(500 << 20, 0.0, RotatedBy::Nothing, None);
        assert!(judge(&l, None, K).is_none());
    }

    #[test]
    fn flood_sentence_says_rotation_cannot_keep_up() {
        let l = log(
            45 << 20,
            4.0 * 1048576.0,
            RotatedBy::Kubelet,
            Some(10 << 20),
        );
        let s = rotation_sentence(&l, 4.0 * 1048576.0);
        assert!(s.contains("cannot keep up"), "{s}");
        let r = flood_remedies(&ctr(l.clone()), &l, "/etc/kubernetes/kubelet-config.yaml");
        assert!(
            r.iter().any(
                |x| x.starts_with("# /etc/kubernetes/kubelet-config.yaml: containerLogMaxSize")
            ),
            "{r:?}"
        );
        assert!(r[0].starts_with("kubectl -n prod logs web -c app"));
        assert!(r.iter().any(|x| x.contains("containerLogMaxSize")));
        assert!(r.iter().any(|x| x.starts_with("# never: rm")));
    }
}
