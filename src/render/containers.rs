//! Containers as the JSON contract and as a table: `processes[].container`, diagnose's
//! `containers`/`pods`/`shims`, and `iowhy containers`.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::findings::Kind;
use crate::interval::Interval;
use crate::interval::container::{ContainerRates, LogRates};
use crate::units;

use super::report::{Diagnosis, finding_json};
use super::table::Table;
use crate::wire::containers::{
    ContainerIdJson, ContainerJson, ContainerLogJson, ContainersReport, PodJson,
    ProcessContainerJson, RotationJson, ShimJson,
};
use crate::wire::diagnose::BlindSpot;
use crate::wire::{r2n, r2o};

/// The finding kinds `iowhy containers` shows.
const KINDS: &[Kind] = &[
    Kind::ContainerLogFlood,
    Kind::LogRotationMissing,
    Kind::PipeBlocked,
];

fn id_json(c: &ContainerRates) -> ContainerIdJson {
    let r = &c.info.r;
    ContainerIdJson {
        runtime: r.runtime_str().to_string(),
        id: r.id.clone(),
        name: r.name.clone(),
        runtime_namespace: r.runtime_namespace.clone(),
        pod: r.pod.clone(),
        namespace: r.namespace.clone(),
        pod_uid: r.pod_uid.clone(),
        sandbox: r.sandbox,
        sources: c.info.sources.iter().map(|s| s.to_string()).collect(),
    }
}

/// `processes[].container` for every attributed pid.
pub fn by_pid(iv: &Interval) -> HashMap<u32, ProcessContainerJson> {
    iv.containers
        .attribution
        .by_pid
        .iter()
        .map(|(pid, (i, role))| {
            let c = &iv.containers.containers[*i];
            let j = ProcessContainerJson {
                container: id_json(c),
                role: role.as_str().to_string(),
                shim_pid: c.info.shim_pid,
            };
            (*pid, j)
        })
        .collect()
}

fn log_json(l: &LogRates) -> ContainerLogJson {
    ContainerLogJson {
        path: l.path.clone(),
        kind: l.kind.as_str().to_string(),
        writer_pid: l.writer_pid,
        size_bytes: l.size_bytes,
        total_bytes: l.total_bytes,
        growth_bytes_per_s: r2o(l.growth_bytes_per_s),
        lines_per_s: r2o(l.lines_per_s),
        stderr_pct: r2o(l.stderr_pct),
        avg_line_bytes: r2o(l.avg_line_bytes),
        mountpoint: l.mountpoint.clone(),
        device: l.device.clone(),
        filesystem_avail_bytes: l.fs_avail_bytes,
        time_to_full_s: r2o(l.time_to_full_s),
        rotation: RotationJson {
            by: l.rotation.by.as_str().to_string(),
            state: l.rotation_state.as_str().to_string(),
            max_size_bytes: l.rotation.max_size_bytes,
            max_files: l.rotation.max_files,
            check_interval_s: l.rotation.check_interval_s,
            detail: l.rotation.detail.clone(),
        },
    }
}

/// Busiest first: by log growth, then by writes.
fn ordered(iv: &Interval) -> Vec<&ContainerRates> {
    let mut v: Vec<&ContainerRates> = iv.containers.containers.iter().collect();
    let k = |c: &ContainerRates| {
        (
            c.main_log()
                .and_then(|l| l.growth_bytes_per_s)
                .unwrap_or(0.0),
            c.write_bytes_per_s.unwrap_or(0.0),
        )
    };
    v.sort_by(|a, b| {
        k(b).partial_cmp(&k(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.info.r.id.cmp(&b.info.r.id))
    });
    v
}

pub fn containers_json(iv: &Interval) -> Vec<ContainerJson> {
    ordered(iv)
        .into_iter()
        .map(|c| {
            let main = c.main_log();
            ContainerJson {
                container: id_json(c),
                pids: c.info.pids.clone(),
                shim_pid: c.info.shim_pid,
                write_bytes_per_s: r2o(c.write_bytes_per_s),
                read_bytes_per_s: r2o(c.read_bytes_per_s),
                io_wait_pct: r2o(c.io_wait_pct),
                shim_write_bytes_per_s: r2o(c.shim_write_bytes_per_s),
                shim_io_wait_pct: r2o(c.shim_io_wait_pct),
                log_bytes_per_s: r2o(main.and_then(|l| l.growth_bytes_per_s)),
                log_size_bytes: main.and_then(|l| l.size_bytes),
                blocked_pipes: c.blocked_pipes,
                d_state_threads: c.d_state_threads,
                logs: c.logs.iter().map(log_json).collect(),
            }
        })
        .collect()
}

pub fn pods_json(iv: &Interval) -> Vec<PodJson> {
    let mut v: Vec<PodJson> = iv
        .containers
        .pods
        .iter()
        .map(|p| PodJson {
            namespace: p.namespace.clone(),
            pod: p.pod.clone(),
            uid: p.uid.clone(),
            log_bytes: p.log_bytes,
            log_bytes_per_s: r2o(p.log_bytes_per_s),
            containers: p.containers,
        })
        .collect();
    v.sort_by(|a, b| {
        b.log_bytes
            .cmp(&a.log_bytes)
            .then_with(|| a.pod.cmp(&b.pod))
    });
    v
}

pub fn shims_json(iv: &Interval) -> Vec<ShimJson> {
    iv.containers
        .shims
        .iter()
        .map(|s| ShimJson {
            pid: s.pid,
            comm: s.comm.clone(),
            role: s.role.as_str().to_string(),
            runtime_namespace: s.runtime_namespace.clone(),
            id: s.id.clone(),
            containers: s.containers,
            write_bytes_per_s: r2o(s.write_bytes_per_s),
            io_wait_pct: r2o(s.io_wait_pct),
            log_bytes_per_s: r2o(s.log_bytes_per_s),
        })
        .collect()
}

fn blind_spots(d: &Diagnosis) -> Vec<BlindSpot> {
    let mut v: Vec<BlindSpot> = d
        .interval
        .after
        .runtime
        .iter()
        .flat_map(|s| s.problems.iter())
        .map(|(p, why)| BlindSpot {
            what: format!("{p}: {why}"),
            how_to_see: if why.contains("permission") {
                "run as root".into()
            } else {
                "check the file".into()
            },
        })
        .collect();
    v.extend(
        d.blind_spots
            .iter()
            .filter(|b| b.what.contains("I/O wait") || b.what.contains("open files"))
            .cloned(),
    );
    v
}

pub fn report(d: &Diagnosis) -> ContainersReport {
    let iv = &d.interval;
    ContainersReport {
        version: crate::wire::VERSION,
        host: iv.after.hostname.clone(),
        started_at: units::rfc3339(iv.before.wall_unix_ms),
        window_seconds: r2n(iv.elapsed_s),
        containers: containers_json(iv),
        pods: pods_json(iv),
        shims: shims_json(iv),
        findings: d
            .findings
            .iter()
            .filter(|f| KINDS.contains(&f.kind))
            .map(finding_json)
            .collect(),
        blind_spots: blind_spots(d),
    }
}

fn opt_rate(v: Option<f64>) -> String {
    v.map(units::rate).unwrap_or_else(|| "-".into())
}

fn opt_pct(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into())
}

pub fn text(d: &Diagnosis) -> String {
    let iv = &d.interval;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "iowhy containers — {}, {}, {:.1} s window\n",
        crate::hoststr::for_terminal(&iv.after.hostname),
        units::rfc3339(iv.before.wall_unix_ms),
        iv.elapsed_s
    );
    let shown: Vec<&ContainerRates> = ordered(iv)
        .into_iter()
        .filter(|c| !c.info.r.sandbox || c.write_bytes_per_s.unwrap_or(0.0) > 0.0)
        .collect();
    if shown.is_empty() {
        let _ = writeln!(
            o,
            "No containers found: no containerd shim or task, no conmon, no Docker or Kubernetes cgroup, nothing under /var/log/pods (paths under --root)."
        );
    } else {
        containers_table(&mut o, &shown);
    }
    shims_table(&mut o, iv);
    pods_table(&mut o, iv);
    findings(&mut o, d);
    let bs = blind_spots(d);
    if !bs.is_empty() {
        let _ = writeln!(o, "\nNot seen");
        for b in bs {
            let _ = writeln!(
                o,
                "  {} ({})",
                crate::hoststr::for_terminal(&b.what),
                crate::hoststr::for_terminal(&b.how_to_see)
            );
        }
    }
    o
}

/// One row per container: runtime, pod, I/O, its main log and how it is rotated.
fn containers_table(o: &mut String, shown: &[&ContainerRates]) {
    let mut t = Table::new(&[
        "CONTAINER",
        "RUNTIME",
        "POD",
        "PIDS",
        "WRITE/s",
        crate::fields::PROCESS_IO_WAIT.column(),
        "LOG/s",
        "LOG SIZE",
        "ROTATION",
        "PIPES",
        "LOG",
    ])
    .text_columns(&[1, 2, 8, 10]);
    for c in shown {
        let r = &c.info.r;
        let main = c.main_log();
        let runtime = match &r.runtime_namespace {
            Some(ns) => format!("{}/{ns}", r.runtime_str()),
            None => r.runtime_str().to_string(),
        };
        t.row(vec![
            r.short(),
            runtime,
            r.pod_label().unwrap_or_else(|| "-".into()),
            c.info.pids.len().to_string(),
            opt_rate(c.write_bytes_per_s),
            opt_pct(c.io_wait_pct),
            opt_rate(main.and_then(|l| l.growth_bytes_per_s)),
            main.and_then(|l| l.size_bytes)
                .map(units::bytes_u)
                .unwrap_or_else(|| "-".into()),
            main.map(|l| format!("{} ({})", l.rotation_state.as_str(), l.rotation.by.as_str()))
                .unwrap_or_else(|| "-".into()),
            c.blocked_pipes.to_string(),
            main.map(|l| l.path.clone()).unwrap_or_else(|| "-".into()),
        ]);
    }
    o.push_str(&t.render());
}

/// The shims' own I/O.
fn shims_table(o: &mut String, iv: &Interval) {
    if !iv.containers.shims.is_empty() {
        let _ = writeln!(o, "\nShims (I/O by shim)");
        let mut t = Table::new(&[
            "PID",
            "COMM",
            "NAMESPACE",
            "TASK",
            "CONTAINERS",
            "WRITE/s",
            crate::fields::PROCESS_IO_WAIT.column(),
            "LOG/s",
        ])
        .text_columns(&[1, 2, 3]);
        for s in &iv.containers.shims {
            t.row(vec![
                s.pid.to_string(),
                s.comm.clone(),
                s.runtime_namespace.clone().unwrap_or_else(|| "-".into()),
                shim_id(&s.id),
                s.containers.to_string(),
                opt_rate(s.write_bytes_per_s),
                opt_pct(s.io_wait_pct),
                opt_rate(s.log_bytes_per_s),
            ]);
        }
        o.push_str(&t.render());
    }
}

/// Log size and growth per pod.
fn pods_table(o: &mut String, iv: &Interval) {
    let pods = pods_json(iv);
    if !pods.is_empty() {
        let _ = writeln!(o, "\nLog size by pod (/var/log/pods)");
        let mut t = Table::new(&["POD", "LOG SIZE", "LOG/s", "CONTAINERS"]);
        for p in &pods {
            t.row(vec![
                format!("{}/{}", p.namespace, p.pod),
                units::bytes_u(p.log_bytes),
                opt_rate(p.log_bytes_per_s),
                p.containers.to_string(),
            ]);
        }
        o.push_str(&t.render());
    }
}

/// The container findings with their remediation.
fn findings(o: &mut String, d: &Diagnosis) {
    let fs: Vec<_> = d
        .findings
        .iter()
        .filter(|f| KINDS.contains(&f.kind))
        .collect();
    if !fs.is_empty() {
        let _ = writeln!(o, "\nFindings");
        for f in fs {
            let _ = writeln!(
                o,
                "{} [{}] {}",
                f.severity.as_str().to_uppercase(),
                f.kind.as_str(),
                crate::hoststr::for_terminal(&f.summary)
            );
            for step in &f.remediation {
                let _ = writeln!(o, "  $ {}", crate::hoststr::for_terminal_lines(step));
            }
        }
    }
}

/// A shim's task id as `docker ps` shortens one. The id is the shim's `-id` argument, which
/// whoever starts a process chooses: cut on a char boundary, never inside one.
fn shim_id(id: &str) -> String {
    if id.len() == 64 {
        crate::hoststr::prefix(id, 12).to_string()
    } else {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shim_id_with_a_multibyte_char_at_byte_12_is_cut_before_it() {
        let id = format!("aaaaaaaaaaa\u{e9}{}", "a".repeat(51));
        assert_eq!(id.len(), 64);
        assert_eq!(shim_id(&id), "aaaaaaaaaaa");
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(shim_id(&hex), "0123456789ab");
        assert_eq!(shim_id("pod-sandbox"), "pod-sandbox");
    }
}
