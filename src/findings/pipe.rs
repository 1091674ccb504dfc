//! `pipe_blocked`: a process asleep writing into a full pipe or FIFO — the seed's
//! "stdout nobody reads", and containerd's failure mode when a shim stops copying a
//! container's output. Names the pipe, how full it is, who holds the read end and what
//! that reader is doing.

use crate::container::{ContainerInfo, Role};
use crate::interval::Interval;
use crate::interval::pipe::BlockedPipe;
use crate::units;

use super::{Finding, Kind, Severity, remedy::step};

pub fn pipe_blocked(iv: &Interval) -> Vec<Finding> {
    iv.pipes.iter().map(|b| finding(iv, b)).collect()
}

fn finding(iv: &Interval, b: &BlockedPipe) -> Finding {
    // A writer stuck for the whole window with nothing moving is an outage for it; one
    // that moved is a slow consumer; one seen once may be ordinary back-pressure.
    let severity = if b.stalled() {
        Severity::Critical
    } else if b.blocked_whole_window {
        Severity::Warning
    } else {
        Severity::Info
    };
    let fill = b
        .fill_pct()
        .map(|p| format!(", {p:.0}% full"))
        .unwrap_or_default();
    let window = if b.blocked_whole_window {
        format!(" for the whole {:.1} s window", iv.elapsed_s)
    } else {
        String::new()
    };
    let reader = match b.readers.first() {
        Some(r) => format!(
            "; its reader {} (pid {}) is {}",
            r.comm,
            r.pid,
            short_activity(r.activity)
        ),
        None if b.writer_holds_read_end => {
            "; only the writer itself holds the read end".to_string()
        }
        None => "; no other process holds the read end".to_string(),
    };
    let mut f = Finding::new(
        Kind::PipeBlocked,
        severity,
        format!(
            "{} (pid {}) is blocked writing to {} (fd {}){fill}{window}{reader}",
            b.comm, b.pid, b.pipe, b.fd
        ),
    );
    f.subject.pid = Some(b.pid);
    f.subject.comm = Some(b.comm.clone());
    f.subject.path = Some(b.pipe.clone());
    if let Some((c, _)) = iv.containers.of_pid(b.pid) {
        f.subject.container_id = Some(c.info.r.id.clone());
        f.subject.pod = c.info.r.pod.clone();
        f.subject.namespace = c.info.r.namespace.clone();
    }
    evidence(&mut f, b);
    f.explanation = explanation(iv, b);
    f.remediation = remedies(iv, b);
    f
}

/// The pipe's fill, the writer's thread and stack, the first reader.
fn evidence(f: &mut Finding, b: &BlockedPipe) {
    f.evidence
        .num("fd", f64::from(b.fd))
        .opt("pipe_inode", b.ino.map(|i| i as f64))
        .opt("queued_bytes", b.queued_bytes.map(|v| v as f64))
        .opt("capacity_bytes", b.capacity_bytes.map(|v| v as f64))
        .opt("fill_pct", b.fill_pct())
        .opt(
            "queued_bytes_before",
            b.queued_bytes_before.map(|v| v as f64),
        )
        .num(
            "blocked_whole_window",
            f64::from(u8::from(b.blocked_whole_window)),
        )
        .opt("writer_wchar_per_s", b.writer_wchar_per_s)
        .num("tid", f64::from(b.tid))
        .num("readers", b.readers.len() as f64);
    if let Some(w) = &b.wchan {
        f.evidence.text("wchan", w.clone());
    }
    if let Some(st) = &b.stack {
        f.evidence.text(
            "stack",
            st.iter().take(4).cloned().collect::<Vec<_>>().join(" < "),
        );
    }
    if let Some(r) = b.readers.first() {
        f.evidence
            .num("reader_pid", f64::from(r.pid))
            .text("reader_comm", r.comm.clone())
            .text("reader_state", r.activity)
            .text("reader_wchan", r.wchan.clone().unwrap_or_default());
    }
}

/// Where the writer sleeps, how full the pipe is, and who holds the read end doing what.
fn explanation(iv: &Interval, b: &BlockedPipe) -> String {
    let mut why = format!(
        "{} sleeps in {} ({}): the pipe has no room, so every write waits until someone reads",
        b.cmdline,
        b.wchan.as_deref().unwrap_or("the pipe write path"),
        if b.fd_from_syscall {
            format!(
                "write(2) on fd {}, from /proc/{}/task/{}/syscall",
                b.fd, b.pid, b.tid
            )
        } else {
            format!("fd {} is the fullest pipe it writes", b.fd)
        }
    );
    if let (Some(q), Some(c)) = (b.queued_bytes, b.capacity_bytes) {
        why.push_str(&format!(
            ". {} of its {} are waiting to be read",
            units::bytes_u(q),
            units::bytes_u(c)
        ));
    }
    if b.stalled() {
        why.push_str(". Nothing moved through it during the window");
    }
    for r in &b.readers {
        why.push_str(&format!(
            ". The read end is held by {} (pid {}, fd {}), {}",
            r.comm,
            r.pid,
            r.fd,
            r.describe()
        ));
        if let Some((c, role)) = served_by(iv, b, r.pid) {
            let pod =
                c.r.pod_label()
                    .map(|p| format!(" (pod {p})"))
                    .unwrap_or_default();
            why.push_str(&format!(
                " — it is the {} of container {}{pod}: its copy loop is not draining the container's output",
                if role == Role::Shim { "shim" } else { "monitor" },
                c.r.short(),
            ));
        }
    }
    if b.readers.is_empty() {
        why.push_str(if b.writer_holds_read_end {
            ". The writer holds the read end itself, so it never gets EPIPE and waits forever"
        } else {
            ". No process visible here holds the read end (one in another pid namespace, or one we may not inspect)"
        });
    }
    why.push('.');
    why
}

/// The container whose output the reader `reader` (a shim or conmon) copies, when it is
/// one: the blocked writer's own container if that reader is its shim. A pod's runc-v2
/// shim serves every container of the pod under the sandbox's task id, so the shim's own
/// entry would name the pause container instead of the writer's.
fn served_by<'a>(
    iv: &'a Interval,
    b: &BlockedPipe,
    reader: u32,
) -> Option<(&'a ContainerInfo, Role)> {
    let (rc, role) = iv.containers.of_pid(reader)?;
    if !matches!(role, Role::Shim | Role::Monitor) {
        return None;
    }
    match iv.containers.of_pid(b.pid) {
        Some((wc, Role::Container)) if wc.info.shim_pid == Some(reader) => Some((&wc.info, role)),
        _ => Some((&rc.info, role)),
    }
}

fn short_activity(a: &str) -> &str {
    match a {
        "stopped" => "stopped (T)",
        "traced" => "stopped by a tracer",
        "disk_wait" => "in D state",
        "zombie" => "a zombie",
        "running" => "running but not keeping up",
        "reading" => "waiting on another pipe",
        _ => "alive but not reading",
    }
}

fn remedies(iv: &Interval, b: &BlockedPipe) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(r) = b.readers.first() {
        match r.activity {
            "stopped" => v.push(step(
                format!("kill -CONT {}", r.pid),
                "the reader is stopped (SIGSTOP or Ctrl-Z): resume it, unless someone stopped it on purpose",
            )),
            "traced" => v.push(step(
                format!("grep TracerPid /proc/{}/status", r.pid),
                "a debugger or strace holds it stopped: detach it",
            )),
            "disk_wait" => v.push(step(
                format!("cat /proc/{}/stack; iowhy diagnose", r.pid),
                "the reader waits for the disk: the pipe is a symptom, the disk is the cause",
            )),
            _ => v.push(step(
                format!("cat /proc/{}/stack; iowhy trace --pid {} --duration 5s", r.pid, r.pid),
                "what the reader does instead of reading",
            )),
        }
        if let Some((c, Role::Shim)) = served_by(iv, b, r.pid) {
            let ns = c.r.runtime_namespace.as_deref().unwrap_or("default");
            v.push(step(
                format!("ctr -n {ns} task ls; ctr -n {ns} task metrics {}", c.r.id),
                "the shim's tasks: a shim that stopped copying cannot be fixed in place",
            ));
            v.push(step(
                "# restart the container (kubectl delete pod ..., or ctr task kill + start)",
                "a new shim gets new pipes; the blocked writes are lost with the old ones",
            ));
        }
    }
    v.push(step(
        format!(
            "ls -l /proc/{}/fd/{}; cat /proc/{}/fdinfo/{}",
            b.pid, b.fd, b.pid, b.fd
        ),
        "the pipe and the writer's end of it",
    ));
    v.push(step(
        "# start the writer with stdout to a file (or a logger that never blocks) instead of a pipe nobody drains",
        "the lasting fix when a process's output is not needed live",
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{OpenFile, PipeFill, PipeWait, Process, Snapshot};

    fn pipe_fd(fd: i32, flags: u32) -> OpenFile {
        OpenFile::test_pipe(fd, 59125, flags)
    }

    /// `app | gzip > /mnt/slow/out.gz` where gzip (the reader) is in D state writing to
    /// a stalled disk: the pipe fills and the app blocks behind it.
    fn snap(uptime_s: f64) -> Snapshot {
        let proc_ = |pid, comm: &str, state, wchan: &str, fds| Process {
            pid,
            comm: comm.into(),
            state,
            start_ticks: 5,
            wchan: Some(wchan.into()),
            fds: Some(fds),
            ..Default::default()
        };
        Snapshot {
            uptime_s,
            clk_tck: 100,
            processes: vec![
                proc_(100, "app", 'S', "anon_pipe_write", vec![pipe_fd(1, 0o1)]),
                proc_(
                    101,
                    "gzip",
                    'D',
                    "folio_wait_bit_common",
                    vec![pipe_fd(0, 0o0)],
                ),
            ],
            pipe_waits: vec![PipeWait {
                pid: 100,
                tid: 100,
                wchan: Some("anon_pipe_write".into()),
                stack: None,
                fd: Some(1),
                pipes: vec![PipeFill {
                    fd: 1,
                    ino: Some(59125),
                    queued_bytes: Some(65536),
                    capacity_bytes: Some(65536),
                }],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_reader_in_d_state_points_at_the_disk() {
        let iv = Interval::new(snap(100.0), snap(102.0));
        let v = pipe_blocked(&iv);
        assert_eq!(v.len(), 1);
        let f = &v[0];
        assert!(
            f.summary.contains("gzip (pid 101) is in D state"),
            "{}",
            f.summary
        );
        assert!(
            matches!(f.evidence.get("reader_state"), Some(super::super::Value::Text(t)) if t == "disk_wait")
        );
        assert!(
            f.explanation
                .contains("in uninterruptible sleep (D) in folio_wait_bit_common"),
            "{}",
            f.explanation
        );
        assert!(
            f.remediation[0].starts_with("cat /proc/101/stack; iowhy diagnose"),
            "{:?}",
            f.remediation
        );
        assert!(!f.remediation.iter().any(|r| r.starts_with("kill -CONT")));
    }

    #[test]
    fn activities_read_well() {
        assert_eq!(short_activity("stopped"), "stopped (T)");
        assert_eq!(short_activity("not_reading"), "alive but not reading");
    }
}
