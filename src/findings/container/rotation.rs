//! `log_rotation_missing`: a big, growing log with nothing rotating it, or far past the
//! size its rotator should keep it under.

use crate::container::rotation::{self, LogKind, RotationState};
use crate::interval::Interval;
use crate::interval::container::{ContainerRates, LogRates};
use crate::units;

use super::remedy::rotation_remedies;
use super::{PLAIN_LOG_DIR, UNROTATED_HOUR_BYTES, UNROTATED_LARGE_BYTES};
use super::{kubelet_config_place, label, subject};
use crate::findings::{Finding, Kind, Severity};

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
pub(super) fn judge(
    l: &LogRates,
    c: Option<&ContainerRates>,
    kubelet_config: &str,
) -> Option<Finding> {
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
    f.remediation = rotation_remedies(l, kubelet_config);
    Some(f)
}
