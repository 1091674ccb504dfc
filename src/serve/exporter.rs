//! What `/metrics` serves: counters accumulated sample after sample (delta accounting,
//! `account.rs`), gauges of the latest sample, each family named and documented by
//! `crate::fields`.

use std::collections::{BTreeMap, HashMap};

use super::account::{Accounts, Counters, Group, Raw, Sample};
use crate::fields::{self, Field};
use crate::findings::{Finding, Kind, Severity};
use crate::interval::Interval;
use crate::interval::process::deleted_by_inode;
use crate::snapshot::{DelayAcct, Snapshot};
use crate::trace::TraceData;

/// The samples of one family: label values and the value.
type Samples = Vec<(Vec<String>, Value)>;

/// A sample value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Num(f64),
    /// Non-cumulative bucket counts by upper bound, the sum and the count.
    Hist {
        buckets: Vec<(f64, u64)>,
        sum: f64,
        count: u64,
    },
}

/// One family: its definition and its samples (label values in `field.labels` order).
#[derive(Clone, Debug)]
pub struct Family {
    pub field: Field,
    pub samples: Vec<(Vec<String>, Value)>,
}

/// The part of a sample one collector read, for `iowhy_scrape_collector_*`.
#[derive(Clone, Debug, PartialEq)]
pub struct CollectorRun {
    pub name: &'static str,
    pub success: bool,
    pub seconds: f64,
}

#[derive(Clone, Copy, Debug)]
pub struct ExportOptions {
    pub top_n: usize,
    pub files_top_n: usize,
    pub linger_s: f64,
}

/// Upper bounds of `iowhy_fsync_duration_seconds`: 1 µs to ~67 s in powers of two, as
/// ebpf_exporter's biolatency.
fn fsync_bounds() -> Vec<f64> {
    (0..=26).map(|k| 1e-6 * f64::from(1u32 << k)).collect()
}

#[derive(Clone, Debug, Default)]
struct CumHist {
    counts: Vec<u64>,
    sum_s: f64,
    count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FileKey {
    path: String,
    device: String,
    mountpoint: String,
    comm: String,
}

#[derive(Clone, Debug, Default)]
struct FileSeries {
    bytes: u64,
    member_until: f64,
    last_bytes: u64,
}

type ContainerKey = (String, String, String);

pub struct Exporter {
    opts: ExportOptions,
    accounts: Accounts,
    files: BTreeMap<FileKey, FileSeries>,
    fsync: BTreeMap<String, CumHist>,
    /// Per log path: (inode, size) at the last sample.
    log_last: HashMap<String, (u64, u64)>,
    log_appended: BTreeMap<ContainerKey, u64>,
    // Gauges of the latest sample.
    blocked: BTreeMap<(Group, &'static str), u64>,
    deleted: BTreeMap<(String, String), u64>,
    logs: BTreeMap<ContainerKey, (u64, Option<u64>)>,
    queue: BTreeMap<String, u64>,
    findings: BTreeMap<(Kind, Severity), u64>,
    sources: BTreeMap<&'static str, bool>,
    collectors: Vec<CollectorRun>,
    sample_unix_s: f64,
    delayacct: bool,
    tracing: Option<String>,
    /// The unit of delay accounting ticks.
    clk_tck: f64,
    /// Whether the accounts have their baseline (the first interval's start).
    seeded: bool,
}

/// The group of a process: its container (a shim: the pod it serves), and its comm.
pub fn group_of(iv: &Interval, pid: u32, comm: &str) -> Group {
    use crate::container::attribute::Role;
    let Some((info, role)) = iv.containers.attribution.of(pid) else {
        return Group::host(comm);
    };
    let r = &info.r;
    Group {
        namespace: r.namespace.clone().unwrap_or_default(),
        pod: r.pod.clone().unwrap_or_default(),
        container: match role {
            Role::Container => r.short(),
            Role::Shim | Role::Monitor => String::new(),
        },
        comm: comm.to_string(),
    }
}

/// Sync calls of one traced process, by call, and the time spent in them.
fn traced_counters(t: &TraceData, pid: u32) -> Counters {
    let mut c = Counters::default();
    let Some(p) = t.procs.get(&pid) else {
        return c;
    };
    if t.estimate {
        // The sampling layer estimates shares, it does not count calls.
        return c;
    }
    for f in p.files.values() {
        for (k, h) in &f.syncs {
            *c.sync_calls.entry(k.name()).or_default() += h.count;
            c.sync_ns = c.sync_ns.saturating_add(h.total_ns);
        }
        if f.flags.is_some_and(|fl| fl & libc::O_DSYNC as u32 != 0) && f.writes > 0 {
            *c.sync_calls.entry("o_sync").or_default() += f.writes;
            let ns: u64 = f.write_calls.values().map(|w| w.total_ns).sum();
            c.sync_ns = c.sync_ns.saturating_add(ns);
        }
    }
    c
}

/// The block device and mountpoint of a path, node_exporter's way (`vda1`, `/`).
fn place_of(s: &Snapshot, path: &str) -> (String, String) {
    match s.mount_by_path(path) {
        Some(m) => {
            let dev = s
                .disks_behind(m.major, m.minor)
                .into_iter()
                .next()
                .unwrap_or_default();
            (dev, m.mountpoint.clone())
        }
        None => (String::new(), String::new()),
    }
}

impl Exporter {
    pub fn new(opts: ExportOptions) -> Exporter {
        Exporter {
            opts,
            accounts: Accounts::new(opts.top_n, opts.linger_s),
            files: BTreeMap::new(),
            fsync: BTreeMap::new(),
            log_last: HashMap::new(),
            log_appended: BTreeMap::new(),
            blocked: BTreeMap::new(),
            deleted: BTreeMap::new(),
            logs: BTreeMap::new(),
            queue: BTreeMap::new(),
            findings: BTreeMap::new(),
            sources: BTreeMap::new(),
            collectors: Vec::new(),
            sample_unix_s: 0.0,
            delayacct: false,
            tracing: None,
            clk_tck: 100.0,
            seeded: false,
        }
    }

    /// Account one interval (the previous sample to this one), with the rules' findings
    /// over it. `now` is the sample's clock (uptime, seconds).
    pub fn observe(&mut self, iv: &Interval, found: &[Finding], collectors: Vec<CollectorRun>) {
        let now = iv.after.uptime_s;
        let a = &iv.after;
        self.clk_tck = a.clk_tck.max(1) as f64;
        self.delayacct = matches!(a.delayacct, DelayAcct::OnSinceBoot | DelayAcct::OnAtRuntime);
        self.tracing = iv
            .trace
            .as_ref()
            .filter(|t| !t.estimate)
            .map(|t| t.layer.name().to_string());
        self.observe_processes(iv, now);
        if let Some(t) = &iv.trace {
            self.observe_files(iv, t, now);
            self.observe_fsync(a, t);
        }
        self.observe_gauges(iv, now);
        self.observe_logs(iv);
        self.findings.clear();
        for f in found {
            *self.findings.entry((f.kind, f.severity)).or_default() += 1;
        }
        self.sources = BTreeMap::from([
            ("delayacct", self.delayacct),
            ("tracing", self.tracing.is_some()),
            ("psi", a.psi_io.is_some()),
            ("ptrace", a.euid == 0),
            ("containers", a.runtime.is_some()),
        ]);
        self.collectors = collectors;
        self.sample_unix_s = a.wall_unix_ms as f64 / 1000.0;
    }

    /// The processes of a snapshot as samples (raw counters only).
    fn samples_of(&self, iv: &Interval, s: &Snapshot, since: f64) -> Vec<Sample> {
        let trusted: HashMap<u32, bool> = iv
            .processes
            .iter()
            .map(|p| (p.pid, p.io_wait_pct.is_some()))
            .collect();
        let tck = s.clk_tck.max(1) as f64;
        s.processes
            .iter()
            .map(|p| Sample {
                key: (p.pid, p.start_ticks),
                group: group_of(iv, p.pid, &p.comm),
                raw: p.io.as_ref().map(|io| Raw {
                    read_bytes: io.read_bytes,
                    write_bytes: io.write_bytes,
                    cancelled_write_bytes: io.cancelled_write_bytes,
                    io_wait_ticks: p
                        .blkio_ticks
                        .filter(|_| self.delayacct && trusted.get(&p.pid) == Some(&true)),
                }),
                new: p.start_ticks as f64 / tck > since,
                traced: Counters::default(),
                blocked: p.d_tasks.len() as u64
                    + s.pipe_waits.iter().filter(|w| w.pid == p.pid).count() as u64,
            })
            .collect()
    }

    fn observe_processes(&mut self, iv: &Interval, now: f64) {
        let (b, a) = (&iv.before, &iv.after);
        if !self.seeded {
            // The first interval's start is the baseline: its window counts.
            let seed = self.samples_of(iv, b, f64::INFINITY);
            self.accounts.update(b.uptime_s, &seed);
            self.seeded = true;
        }
        let mut samples = self.samples_of(iv, a, b.uptime_s);
        if let Some(t) = &iv.trace {
            for s in &mut samples {
                s.traced = traced_counters(t, s.key.0);
            }
        }
        // Traced processes that exited before the sample: their syncs still count, on
        // the host's remainder (no container is known for them any more).
        if let Some(t) = &iv.trace {
            let alive: std::collections::HashSet<u32> = a.processes.iter().map(|p| p.pid).collect();
            for (pid, p) in &t.procs {
                if !alive.contains(pid) {
                    samples.push(Sample {
                        key: (*pid, u64::MAX),
                        group: Group::host(&p.comm),
                        raw: None,
                        new: false,
                        traced: traced_counters(t, *pid),
                        blocked: 0,
                    });
                }
            }
        }
        self.accounts.update(now, &samples);
    }

    fn observe_files(&mut self, iv: &Interval, t: &TraceData, now: f64) {
        let mut this: BTreeMap<FileKey, u64> = BTreeMap::new();
        for p in t.procs.values() {
            for f in p.files.values() {
                let Some(path) = &f.path else { continue };
                if f.write_bytes == 0 || !path.starts_with('/') || path.starts_with("/dev/") {
                    continue;
                }
                let (device, mountpoint) = place_of(&iv.after, path);
                let k = FileKey {
                    path: path.clone(),
                    device,
                    mountpoint,
                    comm: p.comm.clone(),
                };
                *this.entry(k).or_default() += f.write_bytes;
            }
        }
        let mut ranked: Vec<(&FileKey, &u64)> = this.iter().collect();
        ranked.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        let until = now + self.opts.linger_s;
        let cap = self.opts.files_top_n;
        for s in self.files.values_mut() {
            s.last_bytes = 0;
        }
        for (k, bytes) in ranked {
            if let Some(s) = self.files.get_mut(k) {
                s.bytes = s.bytes.saturating_add(*bytes);
                s.member_until = until;
                s.last_bytes = *bytes;
                continue;
            }
            if self.files.len() >= cap {
                // Full: a new file takes the place of the quietest one, if it writes more.
                let quiet = self
                    .files
                    .iter()
                    .filter(|(_, s)| s.last_bytes < *bytes)
                    .min_by(|a, b| {
                        a.1.last_bytes
                            .cmp(&b.1.last_bytes)
                            .then(a.1.member_until.total_cmp(&b.1.member_until))
                    })
                    .map(|(k, _)| k.clone());
                match quiet {
                    Some(q) => {
                        self.files.remove(&q);
                    }
                    None => continue,
                }
            }
            self.files.insert(
                k.clone(),
                FileSeries {
                    bytes: *bytes,
                    member_until: until,
                    last_bytes: *bytes,
                },
            );
        }
        self.files.retain(|_, s| s.member_until >= now);
    }

    fn observe_fsync(&mut self, a: &Snapshot, t: &TraceData) {
        if t.estimate {
            return;
        }
        let bounds = fsync_bounds();
        for p in t.procs.values() {
            for f in p.files.values() {
                if f.syncs.is_empty() {
                    continue;
                }
                let (device, _) = f
                    .path
                    .as_deref()
                    .map(|path| place_of(a, path))
                    .unwrap_or_default();
                let h = self.fsync.entry(device).or_insert_with(|| CumHist {
                    counts: vec![0; bounds.len() + 1],
                    ..Default::default()
                });
                for s in f.syncs.values() {
                    for (lo_ns, n) in s.nonzero_buckets() {
                        let v = lo_ns as f64 / 1e9;
                        let i = bounds.partition_point(|le| *le < v);
                        h.counts[i] += n;
                        h.count += n;
                    }
                    h.sum_s += s.total_ns as f64 / 1e9;
                }
            }
        }
    }

    fn observe_gauges(&mut self, iv: &Interval, now: f64) {
        let a = &iv.after;
        self.blocked.clear();
        for p in &a.processes {
            let n = p.d_tasks.len() as u64;
            if n > 0 {
                let g = self.accounts.series_of(&group_of(iv, p.pid, &p.comm), now);
                *self.blocked.entry((g, "io")).or_default() += n;
            }
        }
        for w in &a.pipe_waits {
            let comm = a
                .processes
                .iter()
                .find(|p| p.pid == w.pid)
                .map(|p| p.comm.as_str())
                .unwrap_or("");
            let g = self.accounts.series_of(&group_of(iv, w.pid, comm), now);
            *self.blocked.entry((g, "pipe_write")).or_default() += 1;
        }
        self.deleted.clear();
        if iv.processes.iter().any(|p| !p.files.is_empty()) {
            let files = iv
                .processes
                .iter()
                .flat_map(|p| p.files.iter().map(|f| ((), f)));
            for group in deleted_by_inode(files) {
                let f = group[0].1;
                let mp = f.mountpoint.clone().unwrap_or_default();
                let source = a
                    .mounts
                    .iter()
                    .find(|m| m.mountpoint == mp)
                    .map(|m| m.source.clone())
                    .unwrap_or_default();
                *self.deleted.entry((source, mp)).or_default() += f.held_bytes();
            }
        }
        self.queue = a
            .block
            .iter()
            .filter_map(|d| Some((d.name.clone(), d.nr_requests?)))
            .collect();
    }

    fn observe_logs(&mut self, iv: &Interval) {
        self.logs.clear();
        let scan = iv.after.runtime.as_ref();
        let mut seen = std::collections::HashSet::new();
        for c in &iv.containers.containers {
            let r = &c.info.r;
            if r.sandbox || c.logs.is_empty() {
                continue;
            }
            let key = (
                r.namespace.clone().unwrap_or_default(),
                r.pod.clone().unwrap_or_default(),
                r.short(),
            );
            let size: u64 = c
                .logs
                .iter()
                .filter_map(|l| l.total_bytes.or(l.size_bytes))
                .sum();
            let limit = c.main_log().and_then(|l| l.rotation.max_size_bytes);
            self.logs.insert(key.clone(), (size, limit));
            let appended = self.log_appended.entry(key).or_default();
            for l in &c.logs {
                let Some(st) = scan.and_then(|s| s.logs.get(&l.path)).and_then(|f| f.stat) else {
                    continue;
                };
                seen.insert(l.path.clone());
                let grew = match self
                    .log_last
                    .insert(l.path.clone(), (st.ino, st.size_bytes))
                {
                    // The same file: what it grew by (truncated: what was written since).
                    Some((ino, size)) if ino == st.ino => {
                        if st.size_bytes >= size {
                            st.size_bytes - size
                        } else {
                            st.size_bytes
                        }
                    }
                    // Rotated: the new file holds only what came after.
                    Some(_) => st.size_bytes,
                    None => 0,
                };
                *appended = appended.saturating_add(grew);
            }
        }
        self.log_last.retain(|p, _| seen.contains(p));
        let live: std::collections::HashSet<&ContainerKey> = self.logs.keys().collect();
        self.log_appended.retain(|k, _| live.contains(k));
    }

    /// Every family, in `fields::ALL` order; a family with no sample is left out.
    pub fn families(&self, version: &str, revision: &str) -> Vec<Family> {
        [
            self.process_families(),
            self.file_families(),
            self.device_families(),
            self.own_families(version, revision),
        ]
        .into_iter()
        .flatten()
        .filter(|(_, samples)| !samples.is_empty())
        .map(|(field, samples)| Family { field, samples })
        .collect()
    }

    /// Per process group: bytes, I/O wait, sync calls and time, blocked tasks.
    fn process_families(&self) -> Vec<(Field, Samples)> {
        let mut out = Vec::new();
        let mut push = |field: Field, samples: Samples| out.push((field, samples));
        let series = self.accounts.series();
        let lv = |g: &Group| g.values().iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let per = |get: &dyn Fn(&Counters) -> Option<f64>| -> Vec<(Vec<String>, Value)> {
            series
                .iter()
                .filter_map(|(g, s)| Some((lv(g), Value::Num(get(&s.counters)?))))
                .collect()
        };
        push(
            fields::PROCESS_READ_BYTES,
            per(&|c| Some(c.read_bytes as f64)),
        );
        push(
            fields::PROCESS_WRITE_BYTES,
            per(&|c| Some(c.write_bytes as f64)),
        );
        push(
            fields::PROCESS_CANCELLED_WRITE_BYTES,
            per(&|c| Some(c.cancelled_write_bytes as f64)),
        );
        if self.delayacct {
            push(
                fields::PROCESS_IO_WAIT,
                per(&|c| Some(c.io_wait_ticks.unwrap_or(0) as f64 / self.clk_tck)),
            );
        }
        if self.tracing.is_some() {
            let mut calls = Vec::new();
            for (g, s) in series {
                for (call, n) in &s.counters.sync_calls {
                    let mut l = lv(g);
                    l.push(call.to_string());
                    calls.push((l, Value::Num(*n as f64)));
                }
            }
            push(fields::PROCESS_FSYNC_CALLS, calls);
            push(
                fields::PROCESS_FSYNC_SECONDS,
                per(&|c| Some(c.sync_ns as f64 / 1e9)),
            );
        }
        push(
            fields::PROCESS_BLOCKED_TASKS,
            self.blocked
                .iter()
                .map(|((g, reason), n)| {
                    let mut l = lv(g);
                    l.push(reason.to_string());
                    (l, Value::Num(*n as f64))
                })
                .collect(),
        );
        out
    }

    /// Per file, deleted-open space, and per container log.
    fn file_families(&self) -> Vec<(Field, Samples)> {
        let mut out = Vec::new();
        let mut push = |field: Field, samples: Samples| out.push((field, samples));
        push(
            fields::FILE_WRITE_BYTES,
            self.files
                .iter()
                .map(|(k, s)| {
                    (
                        vec![
                            k.path.clone(),
                            k.device.clone(),
                            k.mountpoint.clone(),
                            k.comm.clone(),
                        ],
                        Value::Num(s.bytes as f64),
                    )
                })
                .collect(),
        );
        push(
            fields::DELETED_OPEN_BYTES,
            self.deleted
                .iter()
                .map(|((d, m), b)| (vec![d.clone(), m.clone()], Value::Num(*b as f64)))
                .collect(),
        );
        let ckey = |k: &ContainerKey| vec![k.0.clone(), k.1.clone(), k.2.clone()];
        push(
            fields::CONTAINER_LOG_BYTES,
            self.logs
                .iter()
                .map(|(k, (b, _))| (ckey(k), Value::Num(*b as f64)))
                .collect(),
        );
        push(
            fields::CONTAINER_LOG_ROTATE_LIMIT,
            self.logs
                .iter()
                .filter_map(|(k, (_, l))| Some((ckey(k), Value::Num((*l)? as f64))))
                .collect(),
        );
        push(
            fields::CONTAINER_LOG_APPENDED,
            self.log_appended
                .iter()
                .map(|(k, b)| (ckey(k), Value::Num(*b as f64)))
                .collect(),
        );
        out
    }

    /// Per device: fsync latency buckets and queue capacity.
    fn device_families(&self) -> Vec<(Field, Samples)> {
        let mut out = Vec::new();
        let mut push = |field: Field, samples: Samples| out.push((field, samples));
        let bounds = fsync_bounds();
        push(
            fields::FSYNC_DURATION,
            self.fsync
                .iter()
                .map(|(dev, h)| {
                    let buckets = bounds
                        .iter()
                        .zip(&h.counts)
                        .map(|(le, c)| (*le, *c))
                        .collect();
                    (
                        vec![dev.clone()],
                        Value::Hist {
                            buckets,
                            sum: h.sum_s,
                            count: h.count,
                        },
                    )
                })
                .collect(),
        );
        push(
            fields::DISK_QUEUE_CAPACITY,
            self.queue
                .iter()
                .map(|(d, n)| (vec![d.clone()], Value::Num(*n as f64)))
                .collect(),
        );
        out
    }

    /// The findings, the sources and collectors, iowhy's build and the sample time.
    fn own_families(&self, version: &str, revision: &str) -> Vec<(Field, Samples)> {
        let mut out = Vec::new();
        let mut push = |field: Field, samples: Samples| out.push((field, samples));
        let mut findings = Vec::new();
        for k in Kind::ALL {
            for s in Severity::ALL {
                let n = self.findings.get(&(k, s)).copied().unwrap_or(0);
                findings.push((
                    vec![k.as_str().to_string(), s.as_str().to_string()],
                    Value::Num(n as f64),
                ));
            }
        }
        push(fields::FINDINGS, findings);
        push(
            fields::SOURCE_AVAILABLE,
            self.sources
                .iter()
                .map(|(s, ok)| (vec![s.to_string()], Value::Num(f64::from(u8::from(*ok)))))
                .collect(),
        );
        push(
            fields::BUILD_INFO,
            vec![(
                vec![
                    version.to_string(),
                    revision.to_string(),
                    self.tracing.clone().unwrap_or_else(|| "none".into()),
                ],
                Value::Num(1.0),
            )],
        );
        push(
            fields::COLLECTOR_SUCCESS,
            self.collectors
                .iter()
                .map(|c| {
                    (
                        vec![c.name.to_string()],
                        Value::Num(f64::from(u8::from(c.success))),
                    )
                })
                .collect(),
        );
        push(
            fields::COLLECTOR_DURATION,
            self.collectors
                .iter()
                .map(|c| (vec![c.name.to_string()], Value::Num(c.seconds)))
                .collect(),
        );
        if self.sample_unix_s > 0.0 {
            push(
                fields::SAMPLE_TIMESTAMP,
                vec![(Vec::new(), Value::Num(self.sample_unix_s))],
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::{FileTrace, ProcTrace, SyncKind, WriteKind};
    use crate::trace::{Layer, TraceData};

    fn opts() -> ExportOptions {
        ExportOptions {
            top_n: 20,
            files_top_n: 10,
            linger_s: 600.0,
        }
    }

    /// The fsync-logger fixture (a real capture), with what the perf layer would have
    /// counted for its writer: 50 lines, each written (40 bytes) and fsync'd.
    fn fsync_logger() -> (Interval, u32, String) {
        let mut iv = crate::findings::fixture_interval("fsync-logger");
        let pid = crate::findings::fixture_lab_pids("fsync-logger")[0];
        let path = iv
            .process(pid)
            .and_then(|p| p.main_written_file())
            .map(|f| f.path.clone())
            .expect("the writer's log");
        let mut t = TraceData::new(Layer::Perf);
        t.duration_s = iv.elapsed_s;
        let mut f = FileTrace {
            fd: 3,
            path: Some(path.clone()),
            ..Default::default()
        };
        for i in 0..50u64 {
            f.record_write(WriteKind::Write, 40, 8_000);
            f.syncs
                .entry(SyncKind::Fsync)
                .or_default()
                .record(1_500_000 + i * 10_000);
        }
        let comm = iv.process(pid).unwrap().comm.clone();
        let mut p = ProcTrace {
            pid,
            comm,
            ..Default::default()
        };
        p.files.insert((3, path.clone()), f);
        t.procs.insert(pid, p);
        iv.set_trace(Some(t));
        (iv, pid, path)
    }

    fn golden(name: &str, got: &str) {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("IOWHY_UPDATE_GOLDEN").is_some() {
            std::fs::write(&p, got).unwrap();
        }
        let want = std::fs::read_to_string(&p)
            .unwrap_or_else(|_| panic!("missing {}: IOWHY_UPDATE_GOLDEN=1", p.display()));
        assert!(want == got, "{} differs:\n{got}", p.display());
    }

    #[test]
    fn the_fsync_logger_fixture_exports_its_writer_its_file_and_its_finding() {
        let (iv, pid, path) = fsync_logger();
        let found = crate::findings::run_all(&iv);
        let mut e = Exporter::new(opts());
        e.observe(&iv, &found, Vec::new());
        let text = super::super::expo::render(e.families("0.1.0", "test"));
        assert_eq!(super::super::expo::lint(&text), Vec::<String>::new());
        golden("fsync-logger.metrics.prom", &text);
        // Numbers as the kernel counted them: the writer's write_bytes delta.
        let (b, a) = (&iv.before, &iv.after);
        let io = |s: &Snapshot| {
            s.processes
                .iter()
                .find(|p| p.pid == pid)
                .unwrap()
                .io
                .clone()
                .unwrap()
        };
        let comm = &iv.process(pid).unwrap().comm;
        let written = io(a).write_bytes - io(b).write_bytes;
        assert!(written > 0);
        let line = format!(
            "iowhy_process_write_bytes_total{{namespace=\"\",pod=\"\",container=\"\",comm=\"{comm}\"}} {written}\n"
        );
        assert!(text.contains(&line), "{line} in\n{text}");
        assert!(text.contains(&format!(
            "iowhy_process_fsync_calls_total{{namespace=\"\",pod=\"\",container=\"\",comm=\"{comm}\",call=\"fsync\"}} 50\n"
        )));
        assert!(
            text.contains(&format!(
                "iowhy_file_write_bytes_total{{path=\"{path}\",device=\"loop0\""
            )),
            "{text}"
        );
        assert!(
            text.contains("iowhy_fsync_duration_seconds_count{device=\"loop0\"} 50\n"),
            "{text}"
        );
        // 1.5-2 ms: all 50 below the 2.048 ms bound, none below 1.024 ms.
        assert!(
            text.contains(
                "iowhy_fsync_duration_seconds_bucket{device=\"loop0\",le=\"0.001024\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "iowhy_fsync_duration_seconds_bucket{device=\"loop0\",le=\"0.002048\"} 50\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("iowhy_findings{kind=\"fsync_storm\",severity="),
            "{text}"
        );
        // Delay accounting was off in this capture: I/O wait is absent, not 0.
        assert!(!text.contains("iowhy_process_io_wait_seconds_total"));
        assert!(text.contains("iowhy_source_available{source=\"delayacct\"} 0\n"));
    }

    #[test]
    fn a_second_identical_sample_adds_nothing_and_series_stay() {
        let (iv, _, _) = fsync_logger();
        let mut e = Exporter::new(opts());
        e.observe(&iv, &[], Vec::new());
        let first = super::super::expo::render(e.families("v", "r"));
        // The same end snapshot again, without tracing: no process did anything more.
        let mut again = Interval::new(iv.after.clone(), iv.after.clone());
        again.set_trace(None);
        e.observe(&again, &[], Vec::new());
        let second = super::super::expo::render(e.families("v", "r"));
        let counters = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.starts_with("iowhy_process_") && l.contains("_bytes_total"))
                .map(String::from)
                .collect()
        };
        assert_eq!(counters(&first), counters(&second));
    }

    #[test]
    fn the_json_keys_the_fields_name_exist_in_the_contract() {
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/golden/fsync-logger.diagnose.json"
        ))
        .unwrap();
        let p = &v["processes"][0];
        let d = &v["devices"][0];
        for f in fields::ALL {
            if let Some(k) = f.json {
                assert!(
                    p.get(k).is_some() || d.get(k).is_some(),
                    "{}: json key {k} is in no processes[] or devices[] entry",
                    f.name
                );
            }
        }
    }
}
