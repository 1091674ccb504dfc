//! The remediation prose of the container rules: how to look at the flood, how to make
//! the runtime (kubelet, Docker, CRI-O) rotate it, and a logrotate stanza for the rest.

use crate::container::Runtime;
use crate::container::rotation::{LogKind, RotatedBy};
use crate::interval::container::{ContainerRates, LogRates};
use crate::units::shell_quote;

use crate::findings::remedy::step;

pub(super) fn flood_remedies(
    c: &ContainerRates,
    l: &LogRates,
    kubelet_config: &str,
) -> Vec<String> {
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

/// What to do about a log nothing rotates (or that outgrows its rotation): the kubelet's
/// limits for a CRI log, Docker's `max-size` for a json-file log, a logrotate stanza for
/// the rest.
pub(super) fn rotation_remedies(l: &LogRates, kubelet_config: &str) -> Vec<String> {
    let q = shell_quote(&l.path);
    let append_safe = matches!(l.kind, LogKind::ShimFile | LogKind::Conmon | LogKind::Plain);
    match l.kind {
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
    }
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
