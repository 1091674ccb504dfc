//! What one refresh of `iowhy top` shows, as plain data: built from an interval and its
//! findings on the sampler thread, so the screen keeps no snapshot (a minute of history
//! is a minute of these, not of two full process tables each).

use std::collections::HashMap;

use crate::findings::{Finding, Severity, story};
use crate::interval::{Interval, ProcessRates};

/// One refresh.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub host: String,
    pub wall_unix_ms: i64,
    pub elapsed_s: f64,
    pub disks: Vec<Disk>,
    /// PSI io over the window: some, full (%).
    pub psi: Option<(f64, Option<f64>)>,
    /// The finding that is the cause, else the most severe one.
    pub headline: Option<Headline>,
    pub findings: usize,
    pub processes: Vec<Proc>,
    pub containers: Vec<Container>,
    /// Delay accounting is on (IO-WAIT% is known).
    pub delayacct: bool,
    /// A counting trace layer ran (FSYNC/s is known).
    pub traced: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Headline {
    pub severity: Severity,
    pub kind: &'static str,
    pub summary: String,
    pub pid: Option<u32>,
}

/// One whole disk, iostat -x's numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Disk {
    pub name: String,
    pub util_pct: f64,
    pub aqu_sz: f64,
    /// The queue depth the scheduler allows (`queue/nr_requests`).
    pub nr_requests: Option<u64>,
    pub r_await_ms: f64,
    pub w_await_ms: f64,
    pub f_await_ms: f64,
    pub iops: f64,
    pub bytes_per_s: f64,
}

/// One process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Proc {
    pub pid: u32,
    /// pid + start time: the same process across refreshes.
    pub key: (u32, u64),
    pub user: String,
    /// `namespace/pod/container`, or the container's name outside Kubernetes.
    pub container: Option<String>,
    pub read_bytes_per_s: Option<f64>,
    pub write_bytes_per_s: Option<f64>,
    pub io_wait_pct: Option<f64>,
    pub fsync_per_s: Option<f64>,
    pub fsync_avg_ms: Option<f64>,
    pub top_file: Option<String>,
    pub device: Option<String>,
    pub comm: String,
    pub command: String,
    pub state: char,
    pub d_tasks: usize,
    pub wchan: Option<String>,
    pub d_wchans: Vec<String>,
    pub cgroup: Option<String>,
    pub files: Vec<File>,
    pub active: bool,
    pub kthread: bool,
    /// Remediation commands of the findings about this process.
    pub remedies: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    pub fd: i32,
    pub path: String,
    pub size_bytes: Option<u64>,
    pub growth_bytes_per_s: Option<f64>,
    pub flags: String,
    pub deleted: bool,
    pub device: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Container {
    pub name: String,
    pub runtime: &'static str,
    pub id: String,
    pub read_bytes_per_s: Option<f64>,
    pub write_bytes_per_s: Option<f64>,
    pub io_wait_pct: Option<f64>,
    pub processes: usize,
    pub log: Option<String>,
    pub log_bytes_per_s: Option<f64>,
}

/// At most this many open files of a process are kept for the detail pane.
const MAX_FILES: usize = 32;

impl Sample {
    /// The screen's view of an interval. `users` names uids (from the host's
    /// `/etc/passwd`); a uid it lacks is shown as a number.
    pub fn new(iv: &Interval, found: &[Finding], users: &HashMap<u32, String>) -> Sample {
        let st = story::story(found);
        let headline = st.cause.or(found.first()).map(|f| Headline {
            severity: f.severity,
            kind: f.kind.as_str(),
            summary: f.summary.clone(),
            pid: f.subject.pid,
        });
        let traced = iv
            .trace_rates
            .as_ref()
            .is_some_and(|t| t.syncs.values().any(|s| s.syncs_per_s.is_some()))
            || iv.trace.as_ref().is_some_and(|t| !t.estimate);
        Sample {
            host: iv.after.hostname.clone(),
            wall_unix_ms: iv.after.wall_unix_ms,
            elapsed_s: iv.elapsed_s,
            disks: iv
                .whole_devices()
                .map(|d| Disk {
                    name: d.name.clone(),
                    util_pct: d.util_pct,
                    aqu_sz: d.aqu_sz,
                    nr_requests: d.nr_requests,
                    r_await_ms: d.r_await_ms,
                    w_await_ms: d.w_await_ms,
                    f_await_ms: d.f_await_ms,
                    iops: d.r_s + d.w_s,
                    bytes_per_s: (d.rkb_s + d.wkb_s) * 1024.0,
                })
                .collect(),
            psi: iv.pressure.as_ref().map(|p| (p.some_pct, p.full_pct)),
            headline,
            findings: found.len(),
            processes: iv
                .processes
                .iter()
                .map(|p| proc_of(iv, p, found, users))
                .collect(),
            containers: containers(iv),
            delayacct: iv.after.delayacct.is_on(),
            traced,
        }
    }
}

fn proc_of(
    iv: &Interval,
    p: &ProcessRates,
    found: &[Finding],
    users: &HashMap<u32, String>,
) -> Proc {
    let sync = iv.sync_rates(p.pid);
    let fsync_avg_ms = sync.and_then(|s| {
        let calls: f64 = s.files.iter().map(|f| f.syncs_per_s).sum();
        let share: f64 = s.files.iter().filter_map(|f| f.sync_time_share).sum();
        (calls > 0.0).then(|| share / calls * 1000.0)
    });
    let top = p.main_written_file();
    let container = iv.containers.of_pid(p.pid).map(|(c, _)| {
        let r = &c.info.r;
        match (&r.namespace, &r.pod) {
            (Some(ns), Some(pod)) => {
                format!("{ns}/{pod}/{}", r.name.as_deref().unwrap_or("?"))
            }
            _ => r
                .name
                .clone()
                .unwrap_or_else(|| r.id.chars().take(12).collect()),
        }
    });
    let mut files: Vec<File> = p
        .files
        .iter()
        .map(|f| File {
            fd: f.fd,
            path: f.path.clone(),
            size_bytes: f.size_bytes,
            growth_bytes_per_s: f.growth_bytes_per_s,
            flags: f.flag_names().join("|"),
            deleted: f.deleted,
            device: f.devices.first().cloned(),
        })
        .collect();
    // The growing files first, then the big ones: what the detail pane is for.
    files.sort_by(|a, b| {
        let k = |f: &File| {
            (
                f.growth_bytes_per_s.unwrap_or(0.0),
                f.size_bytes.unwrap_or(0) as f64,
            )
        };
        k(b).partial_cmp(&k(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.fd.cmp(&b.fd))
    });
    files.truncate(MAX_FILES);
    Proc {
        pid: p.pid,
        key: iv
            .after
            .processes
            .iter()
            .find(|s| s.pid == p.pid)
            .map(|s| s.key())
            .unwrap_or((p.pid, 0)),
        user: match p.uid {
            Some(u) => users.get(&u).cloned().unwrap_or_else(|| u.to_string()),
            None => "?".into(),
        },
        container,
        read_bytes_per_s: p.read_bytes_per_s,
        write_bytes_per_s: p.write_bytes_per_s,
        io_wait_pct: p.io_wait_pct,
        fsync_per_s: sync.and_then(|s| s.syncs_per_s),
        fsync_avg_ms,
        top_file: top.map(|f| f.path.clone()),
        device: top.and_then(|f| f.devices.first().cloned()),
        comm: p.comm.clone(),
        command: p.cmdline.clone(),
        state: p.state,
        d_tasks: p.d_tasks,
        wchan: p.wchan.clone(),
        d_wchans: p.d_wchans.clone(),
        cgroup: p
            .cgroups
            .as_ref()
            .and_then(|v| v.iter().find(|c| c.hierarchy == 0).or(v.first()))
            .map(|c| c.path.clone()),
        files,
        active: p.is_active(),
        kthread: p.kthread,
        remedies: found
            .iter()
            .filter(|f| f.subject.pid == Some(p.pid))
            .flat_map(|f| f.remediation.iter().cloned())
            .collect(),
    }
}

fn containers(iv: &Interval) -> Vec<Container> {
    iv.containers
        .containers
        .iter()
        .map(|c| {
            let r = &c.info.r;
            let log = c.main_log();
            Container {
                name: match (&r.namespace, &r.pod) {
                    (Some(ns), Some(pod)) => {
                        format!("{ns}/{pod}/{}", r.name.as_deref().unwrap_or("?"))
                    }
                    _ => r.name.clone().unwrap_or_default(),
                },
                runtime: r.runtime_str(),
                id: r.id.chars().take(12).collect(),
                read_bytes_per_s: c.read_bytes_per_s,
                write_bytes_per_s: c.write_bytes_per_s,
                io_wait_pct: c.io_wait_pct,
                processes: c.info.pids.len(),
                log: log.map(|l| l.path.clone()),
                log_bytes_per_s: log.and_then(|l| l.growth_bytes_per_s),
            }
        })
        .collect()
}

/// uid → name from an `/etc/passwd` text.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split(':');
            let name = it.next()?;
            let uid = it.nth(1)?.parse().ok()?;
            Some((uid, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fsync_logger_sample_names_its_writer_its_file_and_the_finding() {
        let iv = crate::findings::fixture_interval("fsync-logger");
        let found = crate::findings::run_all(&iv);
        let pid = crate::findings::fixture_lab_pids("fsync-logger")[0];
        let s = Sample::new(&iv, &found, &parse_passwd("root:x:0:0::/root:/bin/sh\n"));
        let p = s.processes.iter().find(|p| p.pid == pid).expect("writer");
        assert!(
            p.active && p.write_bytes_per_s.unwrap_or(0.0) > 0.0,
            "{p:?}"
        );
        assert!(
            p.top_file.as_deref().is_some_and(|f| f.ends_with(".log")),
            "{p:?}"
        );
        assert_eq!(p.user, "root");
        assert!(!p.files.is_empty());
        let h = s.headline.expect("a headline");
        assert_ne!(h.severity, Severity::Info, "{h:?}");
        assert!(!s.disks.is_empty());
    }

    #[test]
    fn passwd_lines_without_a_numeric_uid_are_skipped() {
        let m = parse_passwd(
            "root:x:0:0::/:/bin/sh\nbad line\nx:x:notanumber:0::/:\nbob:x:1000:1000::/:\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[&1000], "bob");
    }
}
