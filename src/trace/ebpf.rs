//! The eBPF layer: `bpf/iowhy.bpf.c` (compiled object checked in as `bpf/iowhy.bpf.o`,
//! rebuilt by `bpf/build.sh`) loaded with aya, a pure-Rust loader, so the default build
//! needs only cargo. Write and sync calls are aggregated in the kernel per (process, fd,
//! generation, call) with latency histograms — no per-event work in user space — and block
//! requests are timed insert → issue → complete per device, keyed by the request pointer.
//! Only the paths and flags of files opened for writing, dups, closes of named fds and
//! exec/exit events come up through a ring buffer.
//!
//! The generation: every open, dup target and close gives the (process, fd) a new one, so
//! two files that used the same fd number in one window stay two entries. Generation 0 is
//! the file the fd had before we saw it opened; it is named through /proc at the end,
//! unless the fd was closed in the window (then it is reported as unresolved, not given
//! the name of whatever holds the number now).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aya::maps::{Array, HashMap as BpfHash, MapData, RingBuf};
use aya::programs::{Program, RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader, Pod};

use crate::roots::Roots;

use super::hist::Hist;
use super::model::{BlockOp, Layer, SyncKind, TraceData, WriteKind};
use super::{Name, Resolver, TraceRequest};

/// The compiled program (see bpf/build.sh).
static OBJECT: &[u8] = include_bytes!("../../bpf/iowhy.bpf.o");

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FileKey {
    tgid: u32,
    fd: i32,
    kind: u32,
    gen_: u32,
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
    gen_: u32,
    bucket: u32,
}
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FdState {
    gen_: u32,
    used: u8,
    named: u8,
    pad: u16,
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
    /// EV_DUP: the old fd.
    pad: u32,
    gen_: u32,
    old_gen: u32,
    flags: u32,
    dfd: i32,
    comm: [u8; 16],
    path: [u8; 256],
}

// SAFETY: plain repr(C) integers with no padding holes beyond explicit fields.
unsafe impl Pod for FileKey {}
unsafe impl Pod for FileVal {}
unsafe impl Pod for HistKey {}
unsafe impl Pod for BlkKey {}
unsafe impl Pod for BlkSumKey {}
unsafe impl Pod for FdState {}

const EV_OPEN: u32 = 1;
const EV_EXEC: u32 = 2;
const EV_EXIT: u32 = 3;
const EV_DUP: u32 = 4;
const EV_CLOSE: u32 = 5;

/// The call behind a `kind` of the program's keys (KIND_* in bpf/iowhy.bpf.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Write(WriteKind),
    Sync(SyncKind),
}

fn kind_of(k: u32) -> Option<Call> {
    Some(match k {
        0 => Call::Write(WriteKind::Write),
        1 => Call::Sync(SyncKind::Fsync),
        2 => Call::Sync(SyncKind::Fdatasync),
        3 => Call::Sync(SyncKind::SyncFileRange),
        4 => Call::Sync(SyncKind::Msync),
        5 => Call::Sync(SyncKind::Sync),
        6 => Call::Sync(SyncKind::Syncfs),
        7 => Call::Write(WriteKind::Pwrite64),
        8 => Call::Write(WriteKind::Writev),
        9 => Call::Write(WriteKind::Pwritev),
        10 => Call::Write(WriteKind::Pwritev2),
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
        "open",
        "creat",
        "openat2",
        "dup",
        "dup2",
        "dup3",
    ] {
        v.push((format!("enter_{s}"), "syscalls", format!("sys_enter_{s}")));
        v.push((format!("exit_{s}"), "syscalls", format!("sys_exit_{s}")));
    }
    v.push(("enter_close".into(), "syscalls", "sys_enter_close".into()));
    v.push(("on_exec".into(), "sched", "sched_process_exec".into()));
    v.push(("on_exit".into(), "sched", "sched_process_exit".into()));
    for b in [
        "block_rq_insert",
        "block_rq_issue",
        "block_rq_merge",
        "block_rq_complete",
    ] {
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
    _tracefs: super::tracefs_mount::Tracefs,
    /// RLIMIT_MEMLOCK as it was (raised on kernels before 5.11), put back after the maps
    /// are freed: fields drop in order, after `bpf`.
    _memlock: super::rlimit::Raised,
}

/// Detaching a BPF program from a tracepoint waits for RCU grace periods: unload the
/// programs from several threads so the waits overlap where the kernel lets them (one
/// after the other, 35 programs took two seconds here). Bounded: at most
/// `UNLOAD_THREADS` threads, each done when the kernel's waits are (on 6.18 the
/// perf-event part of each detach is serialized under event_mutex, ~35 ms a tracepoint).
impl Drop for EbpfSession {
    fn drop(&mut self) {
        let progs: Vec<&mut Program> = self.bpf.programs_mut().map(|(_, p)| p).collect();
        let per = progs.len().div_ceil(UNLOAD_THREADS).max(1);
        let mut progs = progs;
        std::thread::scope(|s| {
            while !progs.is_empty() {
                let chunk: Vec<&mut Program> = progs.drain(..per.min(progs.len())).collect();
                s.spawn(move || {
                    for p in chunk {
                        match p {
                            Program::TracePoint(t) => {
                                let _ = t.unload();
                            }
                            Program::RawTracePoint(t) => {
                                let _ = t.unload();
                            }
                            _ => {}
                        }
                    }
                });
            }
        });
    }
}

/// Threads unloading programs at the end of a session.
const UNLOAD_THREADS: usize = 16;

impl super::Session for EbpfSession {
    fn detachable(&self) -> bool {
        !self._tracefs.mounted_by_us()
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
    let tracefs = super::tracefs_mount::Tracefs::find_or_mount(roots)?;
    let filter = req.is_filtered();
    let filter_enabled: u32 = filter.into();
    let self_tgid: u32 = std::process::id();
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let memlock = super::rlimit::raise_memlock_for_bpf(&release)?;
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
        // A syscall this architecture does not have (open and creat on arm64): nothing to
        // miss, nothing to say.
        if cat == "syscalls" && !tracefs.path.join(format!("events/{cat}/{tp}")).exists() {
            continue;
        }
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
            // Only fsync and block timing are essential; anything else costs that one.
            if prog.contains("fsync") || (prog.contains("rq_") && !prog.contains("merge")) {
                return Err(anyhow!("attaching {prog} to {tp}: {e}"));
            }
            let hint = if prog.contains("merge") {
                "requests merged after insert stay in the request table until it ages them out (LRU)"
            } else {
                "a newer kernel has the tracepoint"
            };
            data.note(format!("{tp} not traced: {e}"), hint);
        }
    }
    Ok(EbpfSession {
        roots: roots.clone(),
        bpf,
        data,
        _tracefs: tracefs,
        _memlock: memlock,
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
    let mut unnamed_opens = 0u64;
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
                EV_OPEN => {
                    res.comm(e.tgid, cstr(&e.comm));
                    // While the process is alive: its cwd or dirfd gives a relative path
                    // its base. Without one the path stays unresolved, not guessed.
                    let path = cstr(&e.path);
                    // Empty: the kernel could not read it (the page was not resident).
                    let abs = (!path.is_empty())
                        .then(|| res.absolute(e.tgid, e.tgid, e.dfd, &path))
                        .flatten();
                    match abs {
                        Some(p) => res.learn(
                            e.tgid,
                            e.fd,
                            e.gen_,
                            Name {
                                path: p,
                                flags: Some(e.flags),
                            },
                        ),
                        None => unnamed_opens += 1,
                    }
                }
                EV_EXEC => res.exec(e.tgid, Some(cstr(&e.comm))),
                EV_DUP => res.dup_learnt(e.tgid, e.pad as i32, e.old_gen, e.fd, e.gen_),
                EV_CLOSE => res.forget(e.tgid, e.fd, e.gen_),
                EV_EXIT => {
                    res.comm(e.tgid, cstr(&e.comm));
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
    if unnamed_opens > 0 {
        data.note(
            format!("{unnamed_opens} paths of opens could not be read or made absolute (a page not resident, the process's directory gone): their files are named through /proc or unresolved"),
            "",
        );
    }
    read_maps(bpf, &mut res, &mut data)?;
    drop(ring);
    data.consumer_cpu_s = super::thread_cpu_s() - cpu0;
    res.finish_into(&mut data);
    Ok(data)
}

/// Group values by a key, one pass: the histogram buckets of each aggregate (linear in
/// the number of buckets, where filtering them per aggregate was quadratic).
fn group<K: std::hash::Hash + Eq, V>(items: impl Iterator<Item = (K, V)>) -> HashMap<K, Vec<V>> {
    let mut m: HashMap<K, Vec<V>> = HashMap::new();
    for (k, v) in items {
        m.entry(k).or_default().push(v);
    }
    m
}

/// The name of an in-kernel aggregate's file: learnt at its open, else /proc's if the fd
/// still points at that generation, else unresolved (the fd was closed and its number may
/// hold another file now).
fn name_of(res: &Resolver, current: &HashMap<(u32, i32), u32>, k: &FileKey) -> Option<Name> {
    if k.fd < 0 {
        return Some(Name {
            path: super::NO_FD.into(),
            flags: None,
        });
    }
    if let Some(n) = res.learnt(k.tgid, k.fd, k.gen_) {
        return Some(n.clone());
    }
    // Missing from the kernel's table (aged out): the entry is the fd's latest, at best.
    let now = current.get(&(k.tgid, k.fd)).copied().unwrap_or(k.gen_);
    if now == k.gen_ {
        res.name_from_proc(k.tgid, k.fd)
    } else {
        None
    }
}

fn read_maps(bpf: &mut Ebpf, res: &mut Resolver, data: &mut TraceData) -> Result<()> {
    let files: BpfHash<&MapData, FileKey, FileVal> =
        BpfHash::try_from(bpf.map("files").context("files map")?)?;
    let mut entries: Vec<(FileKey, FileVal)> = files.iter().filter_map(|r| r.ok()).collect();
    entries.sort_by_key(|(k, _)| (k.tgid, k.fd, k.gen_, k.kind));
    let hist: BpfHash<&MapData, HistKey, u64> =
        BpfHash::try_from(bpf.map("hist").context("hist map")?)?;
    let buckets = group(
        hist.iter()
            .filter_map(|r| r.ok())
            .map(|(k, n)| ((k.tgid, k.fd, k.kind, k.gen_), (k.bucket, n))),
    );
    let fdgen: BpfHash<&MapData, u64, FdState> =
        BpfHash::try_from(bpf.map("fdgen").context("fdgen map")?)?;
    let current: HashMap<(u32, i32), u32> = fdgen
        .iter()
        .filter_map(|r| r.ok())
        .map(|(k, v)| (((k >> 32) as u32, k as u32 as i32), v.gen_))
        .collect();
    for (k, v) in &entries {
        data.events += v.count * 2;
        let Some(call) = kind_of(k.kind) else {
            continue;
        };
        let name = name_of(res, &current, k);
        let Some(f) = res.file_named(k.tgid, k.fd, name) else {
            continue;
        };
        match call {
            Call::Write(wk) => f.add_writes(wk, v.count, v.bytes, v.total_ns),
            Call::Sync(sk) => {
                let h: &mut Hist = f.syncs.entry(sk).or_default();
                h.count += v.count;
                h.total_ns += v.total_ns;
                h.max_ns = h.max_ns.max(v.max_ns);
                for (b, n) in buckets
                    .get(&(k.tgid, k.fd, k.kind, k.gen_))
                    .into_iter()
                    .flatten()
                {
                    h.add_bucket(*b as usize, *n);
                }
            }
        }
    }
    let sums: BpfHash<&MapData, BlkSumKey, FileVal> =
        BpfHash::try_from(bpf.map("blk_sum").context("blk_sum map")?)?;
    let bh: BpfHash<&MapData, BlkKey, u64> =
        BpfHash::try_from(bpf.map("blk_hist").context("blk_hist map")?)?;
    let bbuckets = group(
        bh.iter()
            .filter_map(|r| r.ok())
            .map(|(k, n)| ((k.dev, k.op, k.which), (k.bucket, n))),
    );
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
        for (b, n) in bbuckets.get(&(k.dev, k.op, k.which)).into_iter().flatten() {
            h.add_bucket(*b as usize, *n);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_program() {
        // KIND_* in bpf/iowhy.bpf.c.
        assert_eq!(kind_of(0), Some(Call::Write(WriteKind::Write)));
        assert_eq!(kind_of(1), Some(Call::Sync(SyncKind::Fsync)));
        assert_eq!(kind_of(7), Some(Call::Write(WriteKind::Pwrite64)));
        assert_eq!(kind_of(10), Some(Call::Write(WriteKind::Pwritev2)));
        assert_eq!(kind_of(11), None);
        // struct event: 8 words, comm[16], path[256].
        assert_eq!(std::mem::size_of::<Event>(), 32 + 16 + 256);
        assert_eq!(std::mem::size_of::<HistKey>(), 20);
        assert_eq!(std::mem::size_of::<FdState>(), 8);
    }

    #[test]
    fn grouping_keeps_every_bucket() {
        let g = group([(1, 'a'), (2, 'b'), (1, 'c')].into_iter());
        assert_eq!(g[&1], vec!['a', 'c']);
        assert_eq!(g[&2], vec!['b']);
    }
}
