//! `container_log_flood`: a container log growing faster than its rotation can keep up.

use crate::container::rotation::RotatedBy;
use crate::interval::Interval;
use crate::interval::container::{ContainerRates, LogRates};
use crate::units;

use super::remedy::flood_remedies;
use super::{FLOOD_BYTES_PER_S, FLOOD_CRITICAL_TTF_S, FLOOD_CRITICAL_USE_PCT};
use super::{kubelet_config_place, label, subject};
use crate::findings::{Finding, Kind, Severity};

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

pub(super) fn rotation_sentence(l: &LogRates, g: f64) -> String {
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
