//! One definition per output field: its name, unit, help text and whether it is a counter
//! or a gauge (below's `render` habit; DESIGN.md "Watching").
//!
//! The Prometheus exporter (`serve`) takes every family's name, type and HELP from here;
//! the JSON contract and the text tables name the same quantity as a rate or a value over
//! a window, and say so in [`Field::json`] and [`Field::header`]: a field is renamed or
//! re-documented here, and the tests check that the JSON keys named here exist in the
//! output.

/// How Prometheus treats a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// Only goes up (resets when the exporter restarts); the name ends in `_total`.
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// The base unit of a field, as its name spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Seconds,
    /// A count of things (calls, tasks, findings).
    Count,
    /// 0 or 1.
    Bool,
    /// Constant 1 with the value in labels (`_info`).
    Info,
}

/// One output field.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The Prometheus family name (counters end in `_total`).
    pub name: &'static str,
    pub kind: MetricType,
    pub unit: Unit,
    /// Label names, in the order they are printed.
    pub labels: &'static [&'static str],
    pub help: &'static str,
    /// The key of the same quantity in the JSON contract (`diagnose`'s `processes[]`,
    /// `devices[]`, ...), where it exists there, as a rate or a value over the window.
    pub json: Option<&'static str>,
    /// The column header of the same quantity in the text tables, where there is one.
    pub header: Option<&'static str>,
}

impl Field {
    /// The header of this field's column in the text tables (its name when it has none).
    pub const fn column(&self) -> &'static str {
        match self.header {
            Some(h) => h,
            None => self.name,
        }
    }
}

/// The labels of a per-process group (cAdvisor's names, so that joins work). Host
/// processes have empty `namespace`, `pod` and `container`; a container runtime's shim has
/// the namespace and pod it serves and an empty `container`.
pub const GROUP: &[&str] = &["namespace", "pod", "container", "comm"];

const fn f(
    name: &'static str,
    kind: MetricType,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> Field {
    Field {
        name,
        kind,
        unit,
        labels,
        help,
        json: None,
        header: None,
    }
}

const fn with(mut fd: Field, json: Option<&'static str>, header: Option<&'static str>) -> Field {
    fd.json = json;
    fd.header = header;
    fd
}

use MetricType::{Counter, Gauge, Histogram};

pub const PROCESS_READ_BYTES: Field = with(
    f(
        "iowhy_process_read_bytes_total",
        Counter,
        Unit::Bytes,
        &["namespace", "pod", "container", "comm"],
        "Bytes the group's processes caused to be read from storage (/proc/PID/io read_bytes), summed over the processes of the group; the top groups by I/O keep their own series, the rest add to comm=\"other\" of their container or of the host.",
    ),
    Some("read_bytes_per_s"),
    Some("DISK READ"),
);

pub const PROCESS_WRITE_BYTES: Field = with(
    f(
        "iowhy_process_write_bytes_total",
        Counter,
        Unit::Bytes,
        &["namespace", "pod", "container", "comm"],
        "Bytes the group's processes caused to be written to storage (/proc/PID/io write_bytes: counted when a page becomes dirty, so a 40-byte write to a clean page counts 4096).",
    ),
    Some("write_bytes_per_s"),
    Some("DISK WRITE"),
);

pub const PROCESS_CANCELLED_WRITE_BYTES: Field = with(
    f(
        "iowhy_process_cancelled_write_bytes_total",
        Counter,
        Unit::Bytes,
        &["namespace", "pod", "container", "comm"],
        "Dirty bytes the group's processes truncated before they were written back (/proc/PID/io cancelled_write_bytes).",
    ),
    Some("cancelled_write_bytes_per_s"),
    None,
);

pub const PROCESS_IO_WAIT: Field = with(
    f(
        "iowhy_process_io_wait_seconds_total",
        Counter,
        Unit::Seconds,
        &["namespace", "pod", "container", "comm"],
        "Time the group's threads waited for block I/O (delay accounting, /proc/PID/stat field 42), summed over threads (iotop -P divides by the thread count). Absent when delay accounting is off: see iowhy_source_available{source=\"delayacct\"}.",
    ),
    Some("io_wait_pct"),
    Some("IO-WAIT%"),
);

pub const PROCESS_FSYNC_CALLS: Field = with(
    f(
        "iowhy_process_fsync_calls_total",
        Counter,
        Unit::Count,
        &["namespace", "pod", "container", "comm", "call"],
        "Sync calls of the group's processes seen by tracing, by call (fsync, fdatasync, sync_file_range, msync, sync, syncfs; o_sync: a write to a file opened O_SYNC or O_DSYNC).",
    ),
    Some("fsync_per_s"),
    Some("FSYNC/s"),
);

pub const PROCESS_FSYNC_SECONDS: Field = f(
    "iowhy_process_fsync_seconds_total",
    Counter,
    Unit::Seconds,
    &["namespace", "pod", "container", "comm"],
    "Time the group's processes spent in sync calls (and O_SYNC writes) seen by tracing; rate(seconds)/rate(calls) is their mean latency.",
);

pub const PROCESS_BLOCKED_TASKS: Field = with(
    f(
        "iowhy_process_blocked_tasks",
        Gauge,
        Unit::Count,
        &["namespace", "pod", "container", "comm", "reason"],
        "Threads of the group blocked at the last sample, by reason: io (uninterruptible sleep, D state) or pipe_write (writing into a full pipe nobody reads, e.g. a container's stdout).",
    ),
    Some("d_state_threads"),
    None,
);

pub const FILE_WRITE_BYTES: Field = f(
    "iowhy_file_write_bytes_total",
    Counter,
    Unit::Bytes,
    &["path", "device", "mountpoint", "comm"],
    "Bytes written into the file by processes of this comm, seen by tracing: the files with the highest write rate only (at most --collector.files.top-n series, kept for --collector.process.linger after they drop out).",
);

pub const DELETED_OPEN_BYTES: Field = with(
    f(
        "iowhy_deleted_open_bytes",
        Gauge,
        Unit::Bytes,
        &["device", "mountpoint"],
        "Space held by files deleted while still open (the df - du gap), per filesystem, from the processes' fd tables at the last sample; device and mountpoint as node_filesystem_* spells them.",
    ),
    None,
    None,
);

pub const CONTAINER_LOG_BYTES: Field = f(
    "iowhy_container_log_bytes",
    Gauge,
    Unit::Bytes,
    &["namespace", "pod", "container"],
    "Size of the container's log on disk, the current file plus its rotated siblings (/var/log/pods, Docker's json-file).",
);

pub const CONTAINER_LOG_ROTATE_LIMIT: Field = f(
    "iowhy_container_log_rotate_limit_bytes",
    Gauge,
    Unit::Bytes,
    &["namespace", "pod", "container"],
    "Size past which the container's log is rotated (the kubelet's containerLogMaxSize, Docker's max-size, conmon's log-size-max); absent when nothing rotates it.",
);

pub const CONTAINER_LOG_APPENDED: Field = f(
    "iowhy_container_log_appended_bytes_total",
    Counter,
    Unit::Bytes,
    &["namespace", "pod", "container"],
    "Bytes appended to the container's log, counted across rotations (a new file counts from its start).",
);

pub const FSYNC_DURATION: Field = f(
    "iowhy_fsync_duration_seconds",
    Histogram,
    Unit::Seconds,
    &["device"],
    "Latency of sync calls (fsync, fdatasync, ...) seen by tracing, by the block device of the file's filesystem.",
);

pub const DISK_QUEUE_CAPACITY: Field = with(
    f(
        "iowhy_disk_queue_capacity",
        Gauge,
        Unit::Count,
        &["device"],
        "Requests the device's queue holds (/sys/block/DEV/queue/nr_requests): compare node_disk_io_time_weighted_seconds_total's rate (aqu-sz) with it.",
    ),
    Some("queue_depth"),
    None,
);

pub const FINDINGS: Field = f(
    "iowhy_findings",
    Gauge,
    Unit::Count,
    &["kind", "severity"],
    "Findings of iowhy's rules over the last sampling window, by kind and severity (the full report: /diagnosis).",
);

pub const SOURCE_AVAILABLE: Field = f(
    "iowhy_source_available",
    Gauge,
    Unit::Bool,
    &["source"],
    "Whether iowhy can see this source (delayacct, tracing, psi, ptrace, containers); the series that need it are absent, not 0, when it cannot.",
);

pub const BUILD_INFO: Field = f(
    "iowhy_build_info",
    Gauge,
    Unit::Info,
    &["version", "revision", "tracing"],
    "Constant 1, labelled with iowhy's version, git revision and the tracing layer in use.",
);

pub const COLLECTOR_SUCCESS: Field = f(
    "iowhy_scrape_collector_success",
    Gauge,
    Unit::Bool,
    &["collector"],
    "Whether the collector's part of the last sample was read completely (0: a read failed or did not answer within --collector.timeout; the rest is still served).",
);

pub const COLLECTOR_DURATION: Field = f(
    "iowhy_scrape_collector_duration_seconds",
    Gauge,
    Unit::Seconds,
    &["collector"],
    "Time the collector's part of the last sample took.",
);

pub const SAMPLE_TIMESTAMP: Field = f(
    "iowhy_last_sample_timestamp_seconds",
    Gauge,
    Unit::Seconds,
    &[],
    "When the sample served was taken (Unix time): iowhy samples every --interval and serves the latest sample to every scrape.",
);

pub const INCIDENTS: Field = f(
    "iowhy_incidents_total",
    Counter,
    Unit::Count,
    &["kind"],
    "Incidents the flight recorder opened since iowhy started (serve --record), by the kind of the stall's worst finding (or psi_io_full): iowhy incidents lists them, iowhy incidents show ID prints one.",
);

/// Every family `serve` exports, in the order it prints them.
pub const ALL: &[Field] = &[
    PROCESS_READ_BYTES,
    PROCESS_WRITE_BYTES,
    PROCESS_CANCELLED_WRITE_BYTES,
    PROCESS_IO_WAIT,
    PROCESS_FSYNC_CALLS,
    PROCESS_FSYNC_SECONDS,
    PROCESS_BLOCKED_TASKS,
    FILE_WRITE_BYTES,
    DELETED_OPEN_BYTES,
    CONTAINER_LOG_BYTES,
    CONTAINER_LOG_ROTATE_LIMIT,
    CONTAINER_LOG_APPENDED,
    FSYNC_DURATION,
    DISK_QUEUE_CAPACITY,
    FINDINGS,
    SOURCE_AVAILABLE,
    BUILD_INFO,
    COLLECTOR_SUCCESS,
    COLLECTOR_DURATION,
    SAMPLE_TIMESTAMP,
    INCIDENTS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::BTreeSet::new();
        for fd in ALL {
            assert!(seen.insert(fd.name), "{} twice", fd.name);
            assert!(fd.name.starts_with("iowhy_"), "{}", fd.name);
            assert!(
                fd.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                fd.name
            );
            assert_eq!(
                fd.kind == MetricType::Counter,
                fd.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                fd.name
            );
            let base = fd.name.trim_end_matches("_total");
            match fd.unit {
                Unit::Bytes => assert!(base.ends_with("_bytes"), "{}", fd.name),
                Unit::Seconds => assert!(base.ends_with("_seconds"), "{}", fd.name),
                Unit::Info => assert!(base.ends_with("_info"), "{}", fd.name),
                Unit::Count | Unit::Bool => {
                    assert!(!base.ends_with("_bytes") && !base.ends_with("_seconds"))
                }
            }
            assert!(!fd.help.is_empty() && !fd.help.contains('\n'));
            assert!(!fd.labels.contains(&"le") && !fd.labels.contains(&"pid"));
        }
    }

    #[test]
    fn the_group_labels_are_spelled_once() {
        for fd in [
            PROCESS_READ_BYTES,
            PROCESS_WRITE_BYTES,
            PROCESS_CANCELLED_WRITE_BYTES,
            PROCESS_IO_WAIT,
            PROCESS_FSYNC_SECONDS,
        ] {
            assert_eq!(fd.labels, GROUP, "{}", fd.name);
        }
        assert_eq!(&PROCESS_FSYNC_CALLS.labels[..4], GROUP);
        assert_eq!(&PROCESS_BLOCKED_TASKS.labels[..4], GROUP);
    }
}
