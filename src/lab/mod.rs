//! `iowhy lab SCENARIO`: reproduce the seed's incidents on purpose, bounded in size and
//! time, and self-cleaning — for onboarding, and for the live tests that prove detection.
//!
//! Each scenario prints what it started and where, runs until `--duration` passes or
//! Ctrl-C/SIGTERM, then stops its own processes (by pid) and removes what it made.

pub(crate) mod container;
pub(crate) mod frozen;
pub(crate) mod orphans;
pub(crate) mod pipe;
pub(crate) mod stage;
pub(crate) mod worker;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use std::os::unix::fs::MetadataExt;

use crate::units;
use crate::wire::lab::LabEvent;
use stage::Stage;
use worker::{SyncMode, WorkerKind};

/// Set (to anything), a running lab fails on purpose after its started event: the live
/// tests check that an error path leaves nothing behind.
pub const TEST_FAIL_ENV: &str = "IOWHY_LAB_TEST_FAIL";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// A logger that appends a 40-byte line and fsyncs it, forever (the seed's logger.py).
    FsyncLogger,
    /// A small loop-device filesystem filling up with a growing log (root).
    DiskFill,
    /// Space held by a deleted file that a process keeps open.
    DeletedOpen,
    /// Heavy buffered writes: dirty pages and writers throttled in balance_dirty_pages.
    BufferedFlood,
    /// A real containerd container (busybox, via ctr) whose stdout the shim writes into a
    /// log file at --rate (default 4M) bytes/s (root, a running containerd).
    ContainerLogFlood,
    /// A writer blocked on a full pipe whose reader is stopped, or never reads (--reader).
    PipeBlock,
    /// A disk that answers slowly: a loop device whose own writes to its backing disk are
    /// limited (for the lab's processes only), with writers queueing on it (root).
    SlowDisk,
    /// The lab's filesystem frozen (fsfreeze): a writer stuck in D, and a process whose
    /// mmap_lock is held behind a page fault, so that reading its /proc/PID/cmdline (ps)
    /// blocks; thawed at the end (root).
    FrozenFs,
    /// Remove what labs killed with SIGKILL left behind.
    Cleanup,
}

impl Scenario {
    /// disk-fill wants to fill up quickly; the others want room so that they do not.
    fn default_size(self) -> u64 {
        match self {
            Scenario::DiskFill => 256 << 20,
            Scenario::ContainerLogFlood => 512 << 20,
            // Nothing is written to it once frozen.
            Scenario::FrozenFs => 64 << 20,
            _ => 1 << 30,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::FsyncLogger => "fsync-logger",
            Scenario::DiskFill => "disk-fill",
            Scenario::DeletedOpen => "deleted-open",
            Scenario::BufferedFlood => "buffered-flood",
            Scenario::ContainerLogFlood => "container-log-flood",
            Scenario::PipeBlock => "pipe-block",
            Scenario::SlowDisk => "slow-disk",
            Scenario::FrozenFs => "frozen-fs",
            Scenario::Cleanup => "cleanup",
        }
    }
}

/// A lab to run (the flags of `iowhy lab`, see `cmd::lab`).
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub scenario: Scenario,
    /// Stop after this long.
    pub duration: Duration,
    /// Work in a new directory under this one instead of a loop-device filesystem.
    pub dir: Option<PathBuf>,
    /// Size of the lab's own filesystem (default: [`Scenario::default_size`]).
    pub size: Option<u64>,
    /// fsync-logger: how many writer processes.
    pub writers: u32,
    /// fsync-logger: lines per second per writer; disk-fill, slow-disk: bytes per second.
    pub rate: u64,
    /// fsync-logger: how each line is made durable.
    pub sync: SyncMode,
    /// fsync-logger: lines per writer, then idle (0 = no limit).
    pub lines: u64,
    /// Let the writers wait this long before their first write.
    pub start_after: Duration,
    /// pipe-block: what the reader does.
    pub reader: pipe::ReaderMode,
}

/// A process the lab started. Dropped, it is stopped and reaped: a `?` on the way
/// out of a scenario leaves no process behind to keep the mount busy or the cgroup full.
struct Worker {
    child: Child,
    path: PathBuf,
    /// Once reaped its pid may belong to someone else: never signal it again.
    reaped: bool,
}

impl Worker {
    /// CONT (a stopped worker acts on nothing else), TERM, KILL after 2 s, and reap —
    /// our own child, by its pid. Bounded: a worker that has not died 5 s after SIGKILL
    /// (a task in D, waiting for a filesystem or a device) is reported and left to init.
    fn stop(&mut self) -> String {
        let pid = self.child.id();
        if self.reaped {
            return format!("pid {pid} had exited");
        }
        if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::CONT);
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
        if !self.reaped_within(Duration::from_secs(2)) {
            let _ = self.child.kill();
            if !self.reaped_within(Duration::from_secs(5)) {
                return format!("pid {pid} did not exit (uninterruptible?)");
            }
        }
        format!("stopped pid {pid}")
    }

    fn reaped_within(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => {
                    self.reaped = true;
                    return true;
                }
                Ok(None) if Instant::now() >= until => return false,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.stop();
        }
    }
}

fn spawn(kind: WorkerKind, path: &std::path::Path, name: &str, extra: &[String]) -> Result<Worker> {
    spawn_with(kind, path, name, extra, Stdio::null(), Stdio::null())
}

/// Start a worker with the given stdin and stdout (pipe-block passes a pipe's ends).
fn spawn_with(
    kind: WorkerKind,
    path: &std::path::Path,
    name: &str,
    extra: &[String],
    stdin: Stdio,
    stdout: Stdio,
) -> Result<Worker> {
    let exe = std::env::current_exe().context("finding our own executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("lab-worker")
        .arg(kind.to_possible_value().expect("named").get_name())
        .arg("--path")
        .arg(path)
        .arg("--name")
        .arg(name)
        .args(extra)
        .stdin(stdin)
        .stdout(stdout);
    // SAFETY: prctl is async-signal-safe; the worker also sets it itself.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().context("starting a lab worker")?;
    Ok(Worker {
        child,
        path: path.to_path_buf(),
        reaped: false,
    })
}

/// Check what a scenario needs before anything is made, so that a missing one is one clear
/// line: for container-log-flood, root and a running containerd (the busybox image to run).
pub fn preflight(scenario: Scenario) -> Result<Option<PathBuf>> {
    match scenario {
        Scenario::ContainerLogFlood => {
            if !stage::is_root() {
                bail!("container-log-flood starts a containerd container: run as root");
            }
            Ok(Some(container::preflight()?))
        }
        _ => Ok(None),
    }
}

/// Run the lab until its duration passes or `stop` is set (SIGINT, SIGTERM and SIGHUP, a
/// dropped ssh session: see `cmd::stop_flag`), then stop its workers and remove what it
/// made. `event` is called with the started event and, at the end, the stopped one.
/// `busybox` is what [`preflight`] returned.
pub fn run(
    a: &LabOptions,
    busybox: Option<PathBuf>,
    stop: &Arc<AtomicBool>,
    event: &mut dyn FnMut(&LabEvent) -> Result<()>,
) -> Result<()> {
    let size = a.size.unwrap_or(a.scenario.default_size());
    if size < (32 << 20) {
        bail!("--size must be at least 32M (ext4 needs room for its journal)");
    }
    let mut st = match (&a.dir, a.scenario) {
        (Some(_), Scenario::DiskFill) => bail!(
            "disk-fill only fills a loop-device filesystem of its own, never an existing one: drop --dir"
        ),
        (Some(_), Scenario::FrozenFs) => bail!(
            "frozen-fs only freezes a loop-device filesystem of its own, never an existing one: drop --dir"
        ),
        (Some(d), _) => Stage::in_dir(d)?,
        (None, Scenario::DiskFill) => Stage::loop_fs(size, false)?,
        // Nothing touches a disk: only the lab's directory, where cleanup finds it.
        (None, Scenario::PipeBlock) => Stage::in_dir(std::path::Path::new(stage::LAB_PARENT))?,
        (None, Scenario::BufferedFlood | Scenario::SlowDisk) if stage::is_root() => {
            Stage::loop_fs(size, true)?
        }
        (_, Scenario::SlowDisk) => {
            bail!("slow-disk needs root: it makes a loop device and a cgroup of its own")
        }
        (_, Scenario::FrozenFs) if !stage::is_root() => {
            bail!("frozen-fs needs root: it makes a loop device and freezes its filesystem")
        }
        (None, _) if stage::is_root() => Stage::loop_fs(size, false)?,
        (None, _) => Stage::in_dir(&std::env::temp_dir())?,
    };
    if let Some(bb) = busybox {
        let res = container::run(&mut st, a, stop, &bb, event);
        let cleaned = st.cleanup();
        let mut ev = res?;
        ev.event = "stopped".into();
        ev.cleaned = cleaned;
        return event(&ev);
    }
    let result = run_in(&mut st, a, size, stop, event);
    // Cleanup happens whatever run_in returned (workers first, then the stage).
    let (workers, mut ev) = match result {
        Ok(x) => x,
        Err(e) => {
            st.cleanup();
            return Err(e);
        }
    };
    let mut cleaned = stop_workers(workers);
    cleaned.extend(st.cleanup());
    ev.event = "stopped".into();
    ev.cleaned = cleaned;
    event(&ev)
}

fn run_in(
    st: &mut Stage,
    a: &LabOptions,
    size: u64,
    stop: &AtomicBool,
    event: &mut dyn FnMut(&LabEvent) -> Result<()>,
) -> Result<(Vec<Worker>, LabEvent)> {
    let dir = st.dir.join("app");
    std::fs::create_dir_all(&dir)?;
    let mut workers = Vec::new();
    // Declared after `workers`, so dropped before them: a frozen filesystem is thawed
    // before any worker is stopped, on every way out of this function.
    let mut thaw: Option<frozen::Thaw> = None;
    let (mut writer_pid, mut mmap_stuck_pid) = (None, None);
    let note;
    match a.scenario {
        Scenario::FsyncLogger => {
            note = Some(fsync_loggers(a, &dir, &mut workers)?);
        }
        Scenario::DiskFill => {
            let rate = if a.rate == 0 { 16 << 20 } else { a.rate };
            let extra = vec!["--rate".into(), rate.to_string()];
            workers.push(spawn(
                WorkerKind::DiskFill,
                &dir.join("big.log"),
                "lab-disk-fill",
                &extra,
            )?);
            note = Some(format!(
                "fills {} at {} and then holds the file open",
                units::bytes_u(size),
                units::rate(rate as f64)
            ));
        }
        Scenario::DeletedOpen => {
            let bytes = (size / 4).clamp(16 << 20, 256 << 20);
            let extra = vec!["--max-bytes".into(), bytes.to_string()];
            workers.push(spawn(
                WorkerKind::DeletedOpen,
                &dir.join("old.log"),
                "lab-deleted",
                &extra,
            )?);
            note = Some(format!(
                "writes {} to old.log, deletes it and keeps it open",
                units::bytes_u(bytes)
            ));
        }
        Scenario::SlowDisk => {
            note = Some(slow_writers(st, a, &dir, &mut workers)?);
        }
        Scenario::BufferedFlood => {
            note = buffered_flood(st, &dir, size, &mut workers)?;
        }
        Scenario::PipeBlock => {
            let (ws, pipe) = pipe::start(&dir, a)?;
            note = Some(format!(
                "pid {} writes its stdout into {pipe}; pid {} holds the read end and {}",
                ws[0].child.id(),
                ws[1].child.id(),
                match a.reader {
                    pipe::ReaderMode::Stopped => "is stopped (SIGSTOP)",
                    pipe::ReaderMode::Idle => "never reads",
                }
            ));
            workers.extend(ws);
        }
        Scenario::FrozenFs => {
            let s = frozen::start(st, &dir)?;
            thaw = Some(s.thaw);
            workers.extend(s.workers);
            writer_pid = Some(s.writer_pid);
            mmap_stuck_pid = Some(s.mmap_pid);
            note = Some(s.note);
        }
        Scenario::Cleanup | Scenario::ContainerLogFlood => unreachable!("handled before"),
    }
    let ev = started_event(st, a, &workers, note, writer_pid, mmap_stuck_pid);
    event(&ev)?;
    wait_out(a, stop, &mut workers, &ev)?;
    drop(thaw);
    Ok((workers, ev))
}

/// `fsync-logger`: each writer appends a line and syncs it.
fn fsync_loggers(
    a: &LabOptions,
    dir: &std::path::Path,
    workers: &mut Vec<Worker>,
) -> Result<String> {
    let sync = SyncMode::to_possible_value(&a.sync)
        .expect("named")
        .get_name()
        .to_string();
    for i in 0..a.writers {
        let path = if a.writers == 1 {
            dir.join("output.log")
        } else {
            dir.join(format!("output-{i}.log"))
        };
        let extra = vec![
            "--lines".into(),
            a.lines.to_string(),
            "--start-after".into(),
            format!("{}ms", a.start_after.as_millis()),
            "--sync".into(),
            sync.clone(),
            "--rate".into(),
            a.rate.to_string(),
            "--max-bytes".into(),
            "64M".into(),
        ];
        workers.push(spawn(
            WorkerKind::FsyncLogger,
            &path,
            "lab-fsync-log",
            &extra,
        )?);
    }
    Ok(format!(
        "each writer appends a 40-byte line and syncs it ({sync}) after every write"
    ))
}

/// `slow-disk`: direct writers in a cgroup whose I/O to the loop image's disk is limited.
fn slow_writers(
    st: &mut Stage,
    a: &LabOptions,
    dir: &std::path::Path,
    workers: &mut Vec<Worker>,
) -> Result<String> {
    // The loop device (direct I/O) writes to its backing file on behalf of the
    // process that issued each request, in that process's cgroup: limiting the
    // backing disk for the lab's cgroup makes the loop device itself slow, for the
    // lab's writers only.
    let image = st.image.clone().context("a loop image")?;
    let dev = std::fs::metadata(&image)?.dev();
    let (ma, mi) = whole_disk(rustix::fs::major(dev), rustix::fs::minor(dev));
    let bps = if a.rate == 0 { 2 << 20 } else { a.rate };
    let cg = st.io_cgroup(&crate::roots::Roots::default(), ma, mi, bps)?;
    for i in 0..a.writers.max(4) {
        let extra = vec!["--max-bytes".into(), (16u64 << 20).to_string()];
        let w = spawn(
            WorkerKind::DirectWriter,
            &dir.join(format!("data-{i}.bin")),
            "lab-slow-write",
            &extra,
        )?;
        std::fs::write(cg.join("cgroup.procs"), w.child.id().to_string())
            .context("moving a writer into the lab cgroup")?;
        workers.push(w);
    }
    Ok(format!(
        "{} reaches its backing disk ({ma}:{mi}) at {} for the lab's writers only; {} writers queue on it",
        st.loop_dev.clone().unwrap_or_default(),
        units::rate(bps as f64),
        workers.len()
    ))
}

/// `buffered-flood`: a buffered writer on the lab's device, with a small dirty cap when the
/// kernel has `max_bytes`.
fn buffered_flood(
    st: &mut Stage,
    dir: &std::path::Path,
    size: u64,
    workers: &mut Vec<Worker>,
) -> Result<Option<String>> {
    let mut note = None;
    // Give the lab's own device a small dirty limit so its writer is throttled
    // like a writer on a saturated disk, without touching the machine's settings.
    if let Some(dev) = st.loop_dev.clone() {
        let md = std::fs::metadata(&dev)?;
        let rdev = std::os::unix::fs::MetadataExt::rdev(&md);
        let bdi = crate::roots::Roots::default().sys(&format!(
            "class/bdi/{}:{}",
            rustix::fs::major(rdev),
            rustix::fs::minor(rdev)
        ));
        if bdi.join("max_bytes").exists() {
            // Restored last: max_bytes is kept as a ratio of a dirty limit that
            // moves with free memory, so writing its old byte value back can be
            // refused (EINVAL above 100%) and leave the cap; the ratio cannot.
            // Restored to the kernel's defaults for a new device, not to what the
            // files hold now: a loop device's bdi outlives its detach, so a value
            // found there is what an earlier user left (a killed lab's cap), not
            // this device's own.
            st.restore_sysfs_to(&bdi.join("max_ratio"), "100");
            st.set_sysfs(&bdi.join("strict_limit"), "1")?;
            st.restore_sysfs_to(&bdi.join("strict_limit"), "0");
            st.set_sysfs(&bdi.join("max_bytes"), &(16u64 << 20).to_string())?;
            note = Some(format!(
                "dirty data on {} is capped at 16 MiB (restored at the end)",
                dev
            ));
        }
    }
    let cap = (size / 2).max(16 << 20);
    let extra = vec!["--max-bytes".into(), cap.to_string()];
    workers.push(spawn(
        WorkerKind::BufferedFlood,
        &dir.join("data.bin"),
        "lab-flood",
        &extra,
    )?);
    Ok(note)
}

/// The `started` event: the workers' pids, the files (or the pipe) they write, where.
fn started_event(
    st: &Stage,
    a: &LabOptions,
    workers: &[Worker],
    note: Option<String>,
    writer_pid: Option<u32>,
    mmap_stuck_pid: Option<u32>,
) -> LabEvent {
    LabEvent {
        event: "started".into(),
        scenario: a.scenario.name().into(),
        pids: workers.iter().map(|w| w.child.id()).collect(),
        paths: match a.scenario {
            // The writer's pipe (the reader's is the same one).
            Scenario::PipeBlock => note
                .as_deref()
                .and_then(|n| n.split_whitespace().find(|w| w.starts_with("pipe:[")))
                .map(|p| vec![p.trim_end_matches(';').to_string()])
                .unwrap_or_default(),
            _ => workers
                .iter()
                .map(|w| w.path.display().to_string())
                .collect(),
        },
        mountpoint: st.loop_dev.as_ref().map(|_| st.dir.display().to_string()),
        device: st.device_name(),
        base: Some(st.base.display().to_string()),
        duration_s: a.duration.as_secs_f64(),
        note,
        writer_pid,
        mmap_stuck_pid,
        ..Default::default()
    }
}

/// Run for `--duration` or until a signal; a worker that exits early is an error.
fn wait_out(
    a: &LabOptions,
    stop: &AtomicBool,
    workers: &mut [Worker],
    ev: &LabEvent,
) -> Result<()> {
    let deadline = Instant::now()
        .checked_add(a.duration)
        .unwrap_or_else(Instant::now);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        // A test hook: fail here, with everything running, as any `?` could.
        if std::env::var_os(TEST_FAIL_ENV).is_some() {
            bail!("{TEST_FAIL_ENV} is set: failing on purpose");
        }
        for w in workers.iter_mut() {
            if let Ok(Some(status)) = w.child.try_wait() {
                w.reaped = true;
                bail!(
                    "lab worker for {} exited early ({status})",
                    ev.paths.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// The whole disk of a (possibly partition) device number, from `/sys/dev/block`.
fn whole_disk(major: u32, minor: u32) -> (u32, u32) {
    let link = crate::roots::Roots::default().sys(&format!("dev/block/{major}:{minor}"));
    if link.join("partition").exists() {
        if let Ok(p) = std::fs::canonicalize(&link) {
            if let Some(dev) = p
                .parent()
                .and_then(|d| std::fs::read_to_string(d.join("dev")).ok())
            {
                if let Ok(d) = crate::parse::sysblock::parse_dev(&dev) {
                    return d;
                }
            }
        }
    }
    (major, minor)
}

/// Stop each worker we started (see [`Worker::stop`]).
fn stop_workers(workers: Vec<Worker>) -> Vec<String> {
    workers.into_iter().map(|mut w| w.stop()).collect()
}
