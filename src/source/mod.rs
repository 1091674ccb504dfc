//! Sources: read the kernel (live roots, or a captured fixture) into a [`Snapshot`].

pub(crate) mod containers;
pub(crate) mod pipes;
pub mod process;
pub mod reader;
pub(crate) mod system;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::error::{ReadError, usage};
use crate::roots::Roots;
use crate::snapshot::{GapKind, Process, Snapshot, StuckRead};

pub use process::{FdPolicy, ProcessOptions};
use reader::Reader;

/// What one snapshot reads beyond the system-wide files.
#[derive(Clone, Debug, Default)]
pub struct SnapshotOptions {
    pub processes: Option<ProcessOptions>,
    pub mounts: bool,
    pub block: bool,
    /// Container runtimes' records under `--root` and blocked pipe writers (needs the
    /// processes' cmdline, cgroup and fds).
    pub containers: bool,
    /// fd tables and cgroups from an earlier snapshot, by (pid, start time), for the
    /// processes this one does not read them for (a sampler's idle processes): filled in
    /// before the container and pipe scans, which need them.
    pub carry: Option<std::sync::Arc<Carry>>,
}

/// What a process had in an earlier snapshot: its fd table and cgroups.
pub type Carry = std::collections::HashMap<
    (u32, u64),
    (
        Option<Vec<crate::snapshot::OpenFile>>,
        Option<Vec<crate::parse::cgroup::CgroupEntry>>,
    ),
>;

impl SnapshotOptions {
    /// Everything: what `diagnose` reads.
    pub fn full() -> Self {
        SnapshotOptions {
            processes: Some(ProcessOptions::full()),
            mounts: true,
            block: true,
            containers: true,
            carry: None,
        }
    }

    /// Devices only: what `iostat` reads every interval.
    pub fn devices() -> Self {
        SnapshotOptions {
            processes: None,
            mounts: false,
            block: true,
            containers: false,
            carry: None,
        }
    }

    /// One process with its open files, the mounts and block devices they are on (what
    /// `files` and the actions read); `details` adds its status and cmdline.
    pub fn one_process(pid: u32, details: bool) -> Self {
        let one = std::collections::BTreeSet::from([pid]);
        SnapshotOptions {
            processes: Some(ProcessOptions {
                fds: FdPolicy::Pids(one.clone()),
                threads: false,
                details,
                only: Some(one),
                known: None,
            }),
            mounts: true,
            block: true,
            containers: false,
            carry: None,
        }
    }
}

/// Where snapshots come from.
pub enum Origin {
    Live(Roots),
    /// A captured fixture: `DIR/t0`, `DIR/t1`, ... read in turn.
    Fixture {
        points: Vec<PathBuf>,
        next: usize,
    },
    /// Samples of a flight recording (`--at`), read in turn.
    Recording {
        samples: Vec<Snapshot>,
        next: usize,
    },
    /// Capture while reading live: each snapshot is also written to `DIR/tN`.
    Capture {
        roots: Roots,
        dir: PathBuf,
        next: usize,
    },
}

pub struct Collector {
    origin: Origin,
    live: Option<Reader>,
}

impl Collector {
    pub fn new(origin: Origin) -> Result<Self> {
        let live = match &origin {
            Origin::Live(roots) => {
                check_proc_root(roots)?;
                Some(Reader::live(roots.clone()))
            }
            Origin::Capture { roots, .. } => {
                check_proc_root(roots)?;
                None
            }
            Origin::Recording { samples, .. } => {
                if samples.is_empty() {
                    return Err(usage("the recording holds no sample at that time"));
                }
                None
            }
            Origin::Fixture { points, .. } => {
                if points.is_empty() {
                    return Err(usage(
                        "the fixture directory holds no time points (t0, t1, ...)",
                    ));
                }
                None
            }
        };
        Ok(Collector { origin, live })
    }

    /// The fixture time points under `dir` (`t0`, `t1`, ...), in order.
    pub fn fixture(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(usage(format!(
                "{}: no such fixture directory",
                dir.display()
            )));
        }
        let mut points: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e
                    .file_name()
                    .to_string_lossy()
                    .strip_prefix('t')?
                    .parse()
                    .ok()?;
                Some((n, e.path()))
            })
            .collect();
        points.sort();
        Collector::new(Origin::Fixture {
            points: points.into_iter().map(|p| p.1).collect(),
            next: 0,
        })
    }

    /// For a fixture: when its capturer turned delay accounting on, if it says.
    pub fn fixture_delayacct_enabled_at_uptime_s(&self) -> Option<f64> {
        match &self.origin {
            Origin::Fixture { points, .. } => {
                Reader::fixture(points.first()?)
                    .ok()?
                    .fixture_meta()?
                    .delayacct_enabled_at_uptime_s
            }
            _ => None,
        }
    }

    pub fn is_live(&self) -> bool {
        !matches!(
            self.origin,
            Origin::Fixture { .. } | Origin::Recording { .. }
        )
    }

    /// A recording replayed to its last sample: commands that step through samples
    /// (iostat, top) stop there instead of failing.
    pub fn exhausted(&self) -> bool {
        matches!(&self.origin, Origin::Recording { samples, next } if *next >= samples.len())
    }

    /// Replaying a flight recording (`--at`)?
    pub fn is_recording(&self) -> bool {
        matches!(self.origin, Origin::Recording { .. })
    }

    /// The roots of the live machine, or of the fixture's first time point.
    pub fn roots(&self) -> Roots {
        match &self.origin {
            Origin::Live(r) | Origin::Capture { roots: r, .. } => r.clone(),
            Origin::Fixture { points, next } => {
                Roots::under(&points[(*next).min(points.len() - 1)])
            }
            // Nothing of a recording is on this machine's filesystems.
            Origin::Recording { .. } => Roots::under(Path::new("/nonexistent/iowhy-recording")),
        }
    }

    /// Take the next snapshot.
    pub fn snapshot(&mut self, opts: &SnapshotOptions) -> Result<Snapshot> {
        match &mut self.origin {
            Origin::Live(_) => {
                let r = self.live.as_mut().expect("live reader");
                take(r, opts, None)
            }
            Origin::Fixture { points, next } => {
                let Some(dir) = points.get(*next).cloned() else {
                    return Err(usage(format!(
                        "the fixture has {} time point(s); this command needs more",
                        points.len()
                    )));
                };
                *next += 1;
                let mut r = Reader::fixture(&dir)?;
                let meta = r.fixture_meta().cloned().unwrap_or_default();
                let mut s = take(&mut r, opts, Some(&meta))?;
                s.wall_unix_ms = meta.wall_unix_ms;
                Ok(s)
            }
            Origin::Recording { samples, next } => {
                let Some(s) = samples.get_mut(*next) else {
                    return Err(usage(format!(
                        "the recording has {} sample(s) from that time on; this command needs more",
                        samples.len()
                    )));
                };
                *next += 1;
                Ok(std::mem::take(s))
            }
            Origin::Capture { roots, dir, next } => {
                let out = dir.join(format!("t{next}"));
                *next += 1;
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                let mut r = Reader::tee(roots.clone(), out.clone());
                let s = take(&mut r, opts, None)?;
                r.finish_tee(s.wall_unix_ms, s.clk_tck, s.euid, s.self_pid)
                    .with_context(|| format!("writing {}", out.display()))?;
                Ok(s)
            }
        }
    }

    /// Wait between two snapshots: sleep when live, nothing for a fixture. Returns early
    /// (false) if `stop` becomes true (Ctrl-C).
    pub fn wait(
        &self,
        d: Duration,
        stop: &std::sync::atomic::AtomicBool,
        mut tick: impl FnMut(Duration),
    ) -> bool {
        if !self.is_live() {
            return true;
        }
        let start = std::time::Instant::now();
        while start.elapsed() < d {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return false;
            }
            let left = d.saturating_sub(start.elapsed());
            std::thread::sleep(left.min(Duration::from_millis(100)));
            tick(start.elapsed());
        }
        true
    }
}

/// A proc root that is not procfs (a typo, an empty directory) must fail with one clear
/// line, not produce an empty report.
fn check_proc_root(roots: &Roots) -> Result<()> {
    let probe = roots.proc("diskstats");
    if !roots.proc.is_dir() {
        return Err(usage(format!(
            "{}: proc root is not a directory",
            roots.proc.display()
        )));
    }
    if !roots.root.is_dir() {
        return Err(usage(format!(
            "{}: root is not a directory; check --root",
            roots.root.display()
        )));
    }
    if !probe.exists() || !roots.proc("uptime").exists() {
        return Err(usage(format!(
            "{}: does not look like procfs (no diskstats or uptime); check --proc-root",
            roots.proc.display()
        )));
    }
    Ok(())
}

fn take(
    r: &mut Reader,
    opts: &SnapshotOptions,
    meta: Option<&reader::FixtureMeta>,
) -> Result<Snapshot> {
    let mut s = Snapshot {
        clk_tck: clk_tck(),
        page_size: rustix::param::page_size() as u64,
        ..Default::default()
    };
    s.uptime_s = system::uptime(r).context("reading uptime")?;
    s.wall_unix_ms = wall_ms();
    s.euid = rustix::process::geteuid().as_raw();
    if let Some(m) = meta {
        s.clk_tck = if m.clk_tck > 0 { m.clk_tck } else { s.clk_tck };
        s.euid = m.euid;
        s.self_pid = m.self_pid;
    } else if r.roots.proc == Path::new(crate::roots::DEFAULT_PROC) {
        s.self_pid = Some(std::process::id());
    }
    let (host, kernel) = system::host(r);
    s.hostname = host;
    s.kernel = kernel;
    s.disks = system::diskstats(r).context("reading diskstats")?;
    if opts.block {
        s.block = system::block_devices(r, &mut s.gaps);
    }
    if opts.mounts {
        s.mounts =
            system::mounts(r, &mut s.gaps, &mut s.stuck).context("reading the mount table")?;
    }
    s.psi_io = system::psi_io(r, &mut s.gaps);
    s.meminfo = system::meminfo(r, &mut s.gaps);
    s.vmstat = system::vmstat(r, &mut s.gaps);
    s.loadavg = system::loadavg(r, &mut s.gaps);
    s.delayacct = system::delayacct(r);
    if let Some(popts) = &opts.processes {
        s.processes =
            process::scan(r, popts, &mut s.gaps).map_err(|e: ReadError| anyhow::Error::new(e))?;
        if let Some(c) = &opts.carry {
            for p in &mut s.processes {
                let Some((fds, cgroups)) = c.get(&p.key()) else {
                    continue;
                };
                if p.fds.is_none() {
                    p.fds = fds.clone();
                }
                if p.cgroups.is_none() {
                    p.cgroups = cgroups.clone();
                }
            }
        }
        for st in blocked_process_reads(r, &s.processes) {
            let what = format!(
                "{} of pid {} ({})",
                st.path,
                st.pid.unwrap_or(0),
                st.comm.as_deref().unwrap_or("?")
            );
            s.gaps.record(GapKind::Blocked, what, st.reason.clone());
            s.stuck.push(st);
        }
        if opts.containers {
            // Config files, logs and pipes named by other processes: on a watched worker,
            // so a log on a hung mount or a planted FIFO costs a deadline, not the run.
            let procs = std::sync::Arc::new(std::mem::take(&mut s.processes));
            let p2 = std::sync::Arc::clone(&procs);
            let scanned = r.guarded_one(move |r| (containers::scan(r, &p2), pipes::scan(r, &p2)));
            s.processes = std::sync::Arc::try_unwrap(procs).unwrap_or_else(|a| (*a).clone());
            match scanned {
                reader::Outcome::Done((runtime, pipe_waits)) => {
                    s.runtime = Some(runtime);
                    s.pipe_waits = pipe_waits;
                }
                reader::Outcome::Stuck(st) => {
                    let path = r.spell(&st.path);
                    s.gaps.record(
                        GapKind::Blocked,
                        path.clone(),
                        "the container and pipe scan did not finish within its deadlines",
                    );
                    s.stuck.push(StuckRead {
                        path,
                        waited_ms: ms(st.since.elapsed()),
                        reason: "container records or pipes: a read did not answer".into(),
                        ..Default::default()
                    });
                }
                reader::Outcome::NotRun => {}
            }
        }
    }
    Ok(s)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The process files that did not answer, each named by the process's `comm`, and why:
/// a `cmdline` or `maps` read blocks on the process's `mmap_lock`, which is held (or
/// queued for) behind one of its threads stuck in D.
fn blocked_process_reads(r: &Reader, processes: &[Process]) -> Vec<StuckRead> {
    let mut out = Vec::new();
    let deadline = r.guard().deadline();
    for p in processes.iter().filter(|p| !p.blocked_reads.is_empty()) {
        let stuck_thread = p
            .d_tasks
            .iter()
            .find(|t| t.tid != p.pid || p.state == 'D')
            .or(p.d_tasks.first());
        for file in &p.blocked_reads {
            let lock = match file.as_str() {
                "cmdline" | "environ" | "maps" => "mmap_lock",
                _ => "exec_update_lock",
            };
            let reason = match stuck_thread {
                Some(t) => format!(
                    "blocked: {lock} held behind a task stuck in D (tid {}{})",
                    t.tid,
                    t.wchan
                        .as_deref()
                        .map(|w| format!(" in {w}"))
                        .unwrap_or_default()
                ),
                None => format!(
                    "blocked: did not answer within {} ms (its {lock} is held)",
                    deadline.as_millis()
                ),
            };
            out.push(StuckRead {
                path: r.spell(&r.roots.pid_dir(p.pid).join(file)),
                pid: Some(p.pid),
                comm: Some(p.comm.clone()),
                mountpoint: None,
                waited_ms: ms(deadline),
                reason,
            });
        }
    }
    out
}

fn clk_tck() -> u64 {
    rustix::param::clock_ticks_per_second()
}

pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
