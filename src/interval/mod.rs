//! An Interval: two snapshots and the rates between them. All rate math lives here,
//! once: iostat's columns (`disk`), per-process bytes/s and I/O wait (`process`),
//! filesystem and file growth (`fs`), sync rates and block latency from tracing
//! (`trace`). A counter that went backwards gives `None`.

pub mod container;
pub mod disk;
pub mod fs;
pub mod pipe;
pub mod process;
pub mod trace;

use serde::Serialize;

use crate::snapshot::Snapshot;

pub use disk::DeviceRates;
pub use fs::FsRates;
pub use process::{FileRates, ProcessRates};
pub use trace::{BlockLatency, SyncRates, TraceRates};

/// Pressure over the window, from the cumulative `total` counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PressureRates {
    /// Share of the window in which at least one task waited on I/O.
    pub some_pct: f64,
    /// Share of the window in which every non-idle task waited on I/O.
    pub full_pct: Option<f64>,
    pub some_avg10: f64,
    pub some_avg60: f64,
    pub full_avg10: Option<f64>,
}

/// Dirty page cache and the kernel's throttling thresholds, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemoryState {
    pub dirty_bytes: u64,
    pub writeback_bytes: u64,
    /// Writers are throttled in balance_dirty_pages() above this (vm.dirty_ratio / bytes).
    pub dirty_threshold_bytes: Option<u64>,
    /// Background writeback starts above this (vm.dirty_background_ratio / bytes).
    pub dirty_background_threshold_bytes: Option<u64>,
    /// Pages written back per second over the window, in bytes.
    pub written_bytes_per_s: Option<f64>,
    pub dirtied_bytes_per_s: Option<f64>,
}

/// Delay accounting turned on by iowhy itself at this uptime: tasks that started later
/// have valid delay data.
#[derive(Clone, Copy, Debug, Default)]
pub struct IntervalOptions {
    pub delayacct_enabled_at_uptime_s: Option<f64>,
}

pub struct Interval {
    pub before: Snapshot,
    pub after: Snapshot,
    /// Seconds between the two snapshots, from `/proc/uptime`.
    pub elapsed_s: f64,
    /// The same interval in centiseconds, as sysstat uses it.
    pub itv_cs: u64,
    /// Whole devices with any I/O since boot, plus partitions, as iostat -p would list.
    pub devices: Vec<DeviceRates>,
    pub processes: Vec<ProcessRates>,
    pub filesystems: Vec<FsRates>,
    pub pressure: Option<PressureRates>,
    pub memory: Option<MemoryState>,
    /// Processes seen in the first snapshot and gone in the second: their last I/O is
    /// not attributed to anyone.
    pub exited: usize,
    /// Tasks blocked writing into a full pipe, with the pipe's readers.
    pub pipes: Vec<pipe::BlockedPipe>,
    /// Containers, pods and shims, with their I/O and logs.
    pub containers: container::Containers,
    /// What tracing saw between the two snapshots, when it ran. Set it with
    /// `set_trace`, which computes `trace_rates` from it.
    pub trace: Option<crate::trace::TraceData>,
    /// Sync rates and block latency from `trace`.
    pub trace_rates: Option<TraceRates>,
}

impl Interval {
    pub fn new(before: Snapshot, after: Snapshot) -> Interval {
        Interval::with_options(before, after, IntervalOptions::default())
    }

    fn with_options(before: Snapshot, after: Snapshot, opts: IntervalOptions) -> Interval {
        Interval::with_trace(before, after, opts, None)
    }

    /// The interval with what tracing saw in it.
    pub fn with_trace(
        before: Snapshot,
        after: Snapshot,
        opts: IntervalOptions,
        trace: Option<crate::trace::TraceData>,
    ) -> Interval {
        let itv_cs = disk::itv_cs(before.uptime_s, after.uptime_s);
        let elapsed_s = itv_cs as f64 / 100.0;
        let devices = disk::all(
            Some(&before.disks),
            &after.disks,
            itv_cs,
            &after.block,
            disk::Listing::Used,
        );
        let (processes, exited) = process::rates(&before, &after, elapsed_s, opts);
        let filesystems = fs::rates(&before, &after, elapsed_s);
        let pressure = pressure(&before, &after, elapsed_s);
        let memory = memory(&before, &after, elapsed_s);
        let pipes = pipe::blocked(&before, &after, &processes);
        let containers =
            container::rates(&before, &after, elapsed_s, &processes, &filesystems, &pipes);
        let mut iv = Interval {
            before,
            after,
            elapsed_s,
            itv_cs,
            devices,
            processes,
            filesystems,
            pressure,
            memory,
            exited,
            pipes,
            containers,
            trace: None,
            trace_rates: None,
        };
        iv.set_trace(trace);
        iv
    }

    /// Attach what tracing saw, and compute its rates once.
    pub fn set_trace(&mut self, trace: Option<crate::trace::TraceData>) {
        self.trace_rates = trace.as_ref().map(TraceRates::new);
        self.trace = trace;
    }

    /// Sync rates of a traced process.
    pub fn sync_rates(&self, pid: u32) -> Option<&SyncRates> {
        self.trace_rates.as_ref()?.syncs.get(&pid)
    }

    /// Traced block latency of a device.
    pub fn block_latency(&self, d: &DeviceRates) -> Option<&BlockLatency> {
        self.trace_rates.as_ref()?.block.get(&(d.major, d.minor))
    }

    pub fn device(&self, name: &str) -> Option<&DeviceRates> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// Whole devices as iostat shows them (no partitions).
    pub fn whole_devices(&self) -> impl Iterator<Item = &DeviceRates> {
        self.devices.iter().filter(|d| !d.is_partition)
    }

    pub fn process(&self, pid: u32) -> Option<&ProcessRates> {
        self.processes.iter().find(|p| p.pid == pid)
    }
}

fn pressure(before: &Snapshot, after: &Snapshot, elapsed_s: f64) -> Option<PressureRates> {
    let (b, a) = (before.psi_io.as_ref()?, after.psi_io.as_ref()?);
    let pct = |old: u64, new: u64| {
        (new >= old && elapsed_s > 0.0)
            .then(|| ((new - old) as f64 / (elapsed_s * 1e6) * 100.0).min(100.0))
    };
    Some(PressureRates {
        some_pct: pct(b.some.total_us, a.some.total_us)?,
        full_pct: match (&b.full, &a.full) {
            (Some(x), Some(y)) => pct(x.total_us, y.total_us),
            _ => None,
        },
        some_avg10: a.some.avg10,
        some_avg60: a.some.avg60,
        full_avg10: a.full.as_ref().map(|f| f.avg10),
    })
}

fn memory(before: &Snapshot, after: &Snapshot, elapsed_s: f64) -> Option<MemoryState> {
    let m = after.meminfo.as_ref()?;
    let page = if after.page_size > 0 {
        after.page_size
    } else {
        4096
    };
    let v = after.vmstat.as_ref();
    let per_s = |f: fn(&crate::parse::kv::VmStat) -> Option<u64>| {
        let (o, n) = (f(before.vmstat.as_ref()?)?, f(v?)?);
        (n >= o && elapsed_s > 0.0).then(|| (n - o) as f64 * page as f64 / elapsed_s)
    };
    Some(MemoryState {
        dirty_bytes: m.dirty_bytes.unwrap_or(0),
        writeback_bytes: m.writeback_bytes.unwrap_or(0),
        dirty_threshold_bytes: v.and_then(|v| v.nr_dirty_threshold).map(|p| p * page),
        dirty_background_threshold_bytes: v
            .and_then(|v| v.nr_dirty_background_threshold)
            .map(|p| p * page),
        written_bytes_per_s: per_s(|v| v.nr_written),
        dirtied_bytes_per_s: per_s(|v| v.nr_dirtied),
    })
}
