//! The eBPF layer: `bpf/iowhy.bpf.c` (compiled object checked in as `bpf/iowhy.bpf.o`,
//! rebuilt by `bpf/build.sh`) loaded with aya, a pure-Rust loader, so the default build
//! needs only cargo. Write and sync calls are aggregated in the kernel per (process, fd,
//! call) with latency histograms — no per-event work in user space — and block requests
//! are timed insert → issue → complete per device, keyed by the request pointer. Only the
//! paths of files opened for writing and exec/exit events come up through a ring buffer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aya::maps::{Array, HashMap as BpfHash, MapData, RingBuf};
use aya::programs::{Program, RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader, Pod};

use crate::roots::Roots;

use super::hist::Hist;
use super::model::{BlockOp, Layer, SyncKind, TraceData};
use super::{Resolver, TraceRequest};

/// The compiled program (see bpf/build.sh).
static OBJECT: &[u8] = include_bytes!("../../bpf/iowhy.bpf.o");

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FileKey {
    tgid: u32,
    fd: i32,
    kind: u32,
    pad: u32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FileVal {
    count: u64,
    bytes: u64,
    total_ns: u64,
    max_ns: u64,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct HistKey {
    tgid: u32,
    fd: i32,
    kind: u32,
    bucket: u32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct BlkKey {
    dev: u32,
    op: u32,
    which: u32,
    bucket: u32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct BlkSumKey {
    dev: u32,
    op: u32,
    which: u32,
    pad: u32,
}
#[repr(C)]
#[derive(Clone, Copy)]
struct Event {
    kind: u32,
    tgid: u32,
    fd: i32,
    pad: u32,
    comm: [u8; 16],
    path: [u8; 256],
}

// SAFETY: plain repr(C) integers with no padding holes beyond explicit fields.
unsafe impl Pod for FileKey {}
unsafe impl Pod for FileVal {}
unsafe impl Pod for HistKey {}
unsafe impl Pod for BlkKey {}
unsafe impl Pod for BlkSumKey {}

const EV_OPEN: u32 = 1;
const EV_EXEC: u32 = 2;
const EV_EXIT: u32 = 3;
const EV_DUP: u32 = 4;

fn kind_of(k: u32) -> Option<SyncKind> {
    Some(match k {
        1 => SyncKind::Fsync,
        2 => SyncKind::Fdatasync,
        3 => SyncKind::SyncFileRange,
        4 => SyncKind::Msync,
        5 => SyncKind::Sync,
        6 => SyncKind::Syncfs,
        _ => return None,
    })
}

/// Program name → (tracepoint category, name), or raw tracepoint name (category "").
fn attach_points() -> Vec<(String, &'static str, String)> {
    let mut v = Vec::new();
    for s in [
        "write",
        "pwrite64",
        "writev",
        "pwritev",
        "pwritev2",
        "fsync",
        "fdatasync",
        "sync_file_range",
        "msync",
        "sync",
        "syncfs",
        "openat",
        "dup",
        "dup2",
        "dup3",
    ] {
        v.push((format!("enter_{s}"), "syscalls", format!("sys_enter_{s}")));
        v.push((format!("exit_{s}"), "syscalls", format!("sys_exit_{s}")));
    }
    v.push(("on_exec".into(), "sched", "sched_process_exec".into()));
    v.push(("on_exit".into(), "sched", "sched_process_exit".into()));
    for b in ["block_rq_insert", "block_rq_issue", "block_rq_complete"] {
        v.push((
            format!("on_rq_{}", b.trim_start_matches("block_rq_")),
            "",
            b.to_string(),
        ));
    }
    v
}

/// Root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF for CO-RE.
pub fn available(roots: &Roots) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("needs root (CAP_BPF and CAP_PERFMON)");
    }
    if !roots.sys("kernel/btf/vmlinux").exists() {
        bail!("the kernel has no BTF (/sys/kernel/btf/vmlinux), needed to relocate the program");
    }
    Ok(())
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

pub struct EbpfSession {
    roots: Roots,
    bpf: Ebpf,
    data: TraceData,
    _tracefs: super::perf::Tracefs,
}

/// Detaching a BPF program from a tracepoint waits for an RCU grace period: unload the
/// programs from several threads so the waits overlap (one after the other, 35 programs
/// take two seconds here).
impl Drop for EbpfSession {
    fn drop(&mut self) {
        std::thread::scope(|s| {
            for (_, p) in self.bpf.programs_mut() {
                s.spawn(move || match p {
                    Program::TracePoint(t) => {
                        let _ = t.unload();
                    }
                    Program::RawTracePoint(t) => {
                        let _ = t.unload();
                    }
                    _ => {}
                });
            }
        });
    }
}

impl super::Session for EbpfSession {
    fn layer(&self) -> Layer {
        Layer::Ebpf
    }

    fn collect(
        &mut self,
        req: &TraceRequest,
        stop: &AtomicBool,
        tick: &mut dyn FnMut(Duration),
    ) -> Result<TraceData> {
        collect(self, req, stop, tick)
    }
}

/// Load and attach everything (the verifier takes a moment); counting starts in `collect`.
pub fn open(req: &TraceRequest, roots: &Roots) -> Result<EbpfSession> {
    available(roots)?;
    let tracefs = super::perf::Tracefs::find_or_mount(roots)?;
    let filter = req.is_filtered();
    let filter_enabled: u32 = filter.into();
    let self_tgid: u32 = std::process::id();
    let mut bpf: Ebpf = EbpfLoader::new()
        .override_global("filter_enabled", &filter_enabled, true)
        .override_global("self_tgid", &self_tgid, true)
        .load(OBJECT)
        .context("loading the eBPF program")?;
    if filter {
        let targets_now = req.target_pids(roots);
        let mut t: BpfHash<&mut MapData, u32, u8> =
            BpfHash::try_from(bpf.map_mut("targets").context("targets map")?)?;
        for pid in &targets_now {
            t.insert(pid, 1, 0)?;
        }
    }
    let mut data = TraceData::new(Layer::Ebpf);
    for (prog, cat, tp) in attach_points() {
        let Some(p) = bpf.program_mut(&prog) else {
            continue;
        };
        let res = match p {
            Program::TracePoint(_) => {
                let t: &mut TracePoint = p.try_into()?;
                t.load().and_then(|_| t.attach(cat, &tp).map(|_| ()))
            }
            Program::RawTracePoint(_) => {
                let t: &mut RawTracePoint = p.try_into()?;
                t.load().and_then(|_| t.attach(&tp).map(|_| ()))
            }
            _ => continue,
        };
        if let Err(e) = res {
            // A syscall the kernel lacks (pwritev2 on old kernels) costs only that one.
            if prog.contains("fsync") || prog.contains("rq_") {
                return Err(anyhow!("attaching {prog} to {tp}: {e}"));
            }
            data.notes.push(format!("{tp} not traced: {e}"));
        }
    }
    Ok(EbpfSession {
        roots: roots.clone(),
        bpf,
        data,
        _tracefs: tracefs,
    })
}

fn collect(
    s: &mut EbpfSession,
    req: &TraceRequest,
    stop: &AtomicBool,
    tick: &mut dyn FnMut(Duration),
) -> Result<TraceData> {
    let roots = s.roots.clone();
    let roots = &roots;
    let bpf = &mut s.bpf;
    let mut data = std::mem::replace(&mut s.data, TraceData::new(Layer::Ebpf));
    let mut targets_now = req.target_pids(roots);
    let cpu0 = super::thread_cpu_s();
    let set_window = |bpf: &mut Ebpf, on: u32| -> Result<()> {
        let mut ctl: Array<&mut MapData, u32> =
            Array::try_from(bpf.map_mut("ctl").context("ctl map")?)?;
        ctl.set(0, on, 0)?;
        Ok(())
    };
    set_window(bpf, 1)?;
    let start = Instant::now();
    let mut res = Resolver::new(roots.clone());
    let mut ring = RingBuf::try_from(bpf.take_map("events").context("events ring")?)?;
    let mut last_refresh = Instant::now();
    loop {
        let left = req.duration.saturating_sub(start.elapsed());
        let stopping = left.is_zero() || stop.load(Ordering::Relaxed);
        if !stopping {
            let mut fds = [rustix::event::PollFd::new(
                &ring,
                rustix::event::PollFlags::IN,
            )];
            let t = left.min(Duration::from_millis(200));
            let ts = rustix::time::Timespec {
                tv_sec: t.as_secs() as i64,
                tv_nsec: t.subsec_nanos() as i64,
            };
            let _ = rustix::event::poll(&mut fds, Some(&ts));
        }
        while let Some(item) = ring.next() {
            if item.len() < std::mem::size_of::<Event>() {
                continue;
            }
            // SAFETY: the kernel wrote a struct event of this size (bpf/iowhy.bpf.c).
            let e: Event = unsafe { std::ptr::read_unaligned(item.as_ptr() as *const Event) };
            match e.kind {
                EV_OPEN => res.opened(e.tgid, e.fd, cstr(&e.path)),
                EV_EXEC => res.exec(e.tgid, Some(cstr(&e.comm))),
                EV_DUP => res.duplicated(e.tgid, e.pad as i32, e.fd),
                EV_EXIT => {
                    res.process(e.tgid).comm = cstr(&e.comm);
                    res.exited(e.tgid);
                }
                _ => {}
            }
        }
        tick(start.elapsed());
        if stopping {
            set_window(bpf, 0)?;
            break;
        }
        if !req.comms.is_empty() && last_refresh.elapsed() >= Duration::from_millis(500) {
            let now = req.target_pids(roots);
            let mut t: BpfHash<&mut MapData, u32, u8> =
                BpfHash::try_from(bpf.map_mut("targets").context("targets map")?)?;
            for pid in now.difference(&targets_now) {
                let _ = t.insert(pid, 1, 0);
            }
            targets_now = now;
            last_refresh = Instant::now();
        }
    }
    data.duration_s = start.elapsed().as_secs_f64();
    read_maps(bpf, &mut res, &mut data)?;
    drop(ring);
    data.consumer_cpu_s = super::thread_cpu_s() - cpu0;
    data.dropped_keys += res.dropped_keys;
    data.procs = res.into_procs();
    Ok(data)
}

fn read_maps(bpf: &mut Ebpf, res: &mut Resolver, data: &mut TraceData) -> Result<()> {
    let files: BpfHash<&MapData, FileKey, FileVal> =
        BpfHash::try_from(bpf.map("files").context("files map")?)?;
    let mut entries: Vec<(FileKey, FileVal)> = files.iter().filter_map(|r| r.ok()).collect();
    entries.sort_by_key(|(k, _)| (k.tgid, k.fd, k.kind));
    let hist: BpfHash<&MapData, HistKey, u64> =
        BpfHash::try_from(bpf.map("hist").context("hist map")?)?;
    let buckets: Vec<(HistKey, u64)> = hist.iter().filter_map(|r| r.ok()).collect();
    for (k, v) in &entries {
        data.events += v.count * 2;
        let Some(f) = res.file(k.tgid, k.fd) else {
            continue;
        };
        match kind_of(k.kind) {
            None => {
                f.writes += v.count;
                f.write_bytes += v.bytes;
            }
            Some(sk) => {
                let h: &mut Hist = f.syncs.entry(sk).or_default();
                h.count += v.count;
                h.total_ns += v.total_ns;
                h.max_ns = h.max_ns.max(v.max_ns);
                for (hk, n) in buckets
                    .iter()
                    .filter(|(hk, _)| hk.tgid == k.tgid && hk.fd == k.fd && hk.kind == k.kind)
                {
                    h.add_bucket(hk.bucket as usize, *n);
                }
            }
        }
    }
    let sums: BpfHash<&MapData, BlkSumKey, FileVal> =
        BpfHash::try_from(bpf.map("blk_sum").context("blk_sum map")?)?;
    let bh: BpfHash<&MapData, BlkKey, u64> =
        BpfHash::try_from(bpf.map("blk_hist").context("blk_hist map")?)?;
    let bbuckets: Vec<(BlkKey, u64)> = bh.iter().filter_map(|r| r.ok()).collect();
    for (k, v) in sums.iter().filter_map(|r| r.ok()) {
        let dev = (k.dev >> 20, k.dev & ((1 << 20) - 1));
        let lat = data
            .block
            .entry(dev)
            .or_default()
            .entry(BlockOp::from_req_op(k.op))
            .or_default();
        let h = if k.which == 0 {
            &mut lat.queue
        } else {
            &mut lat.device
        };
        h.count += v.count;
        h.total_ns += v.total_ns;
        h.max_ns = h.max_ns.max(v.max_ns);
        for (bk, n) in bbuckets
            .iter()
            .filter(|(bk, _)| bk.dev == k.dev && bk.op == k.op && bk.which == k.which)
        {
            h.add_bucket(bk.bucket as usize, *n);
        }
        if k.which == 1 {
            data.events += v.count * 2;
        }
    }
    let drops: Array<&MapData, u64> = Array::try_from(bpf.map("drops").context("drops map")?)?;
    for i in 0..drops.len() {
        data.lost_events += drops.get(&i, 0).unwrap_or(0);
    }
    Ok(())
}
