//! The careful reader: every byte iowhy takes from the kernel goes through here.
//!
//! Why not the `procfs` crate: it allocates per file and re-resolves the full path for
//! every read; `benches/scan.rs` measures it at about twice the cost of this reader
//! (openat relative to an open `/proc/PID` directory, one reused buffer, no per-entry
//! allocation in directory listings). The scan runs over every process every interval on
//! a machine that is already in trouble, so that difference is worth the code.
//!
//! One reader, three backends behind [`Backend`]:
//! - live: read the roots;
//! - capture (`capture.rs`): read live and copy each file, link and syscall result into a
//!   fixture tree, so a fixture holds exactly what the reader read;
//! - replay (`replay.rs`): read a captured tree, with the syscall results (stat through
//!   fd links, statvfs, clock) from its `meta.json`.
//!
//! Reads that can block behind someone else's trouble run with a deadline (`guard.rs`):
//! the big loops (processes, mounts, container records) run on watched worker threads,
//! and a lone read of a file that can block (`cmdline`, `maps`, `io`, a config file under
//! `--root`, ...) is handed to one. A read that misses its deadline fails with
//! [`ReadError::TimedOut`]. Every file is opened `O_NONBLOCK` and read only after `fstat`
//! on the opened fd says it is a regular file (a FIFO planted where a config file was
//! expected would block an open or read forever), and no read returns more than a cap.
//! `probes.rs` holds the syscalls that are not file reads (stat through fd links, statvfs,
//! a log's tail, a pipe's fill level).

mod capture;
pub mod guard;
mod probes;
mod replay;

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::fs::{Mode, OFlags};

use crate::error::ReadError;
use crate::roots::Roots;
use crate::snapshot::{FileStat, FsSpace, PipeFill};

pub use guard::{Guard, Outcome, Stuck};
pub use replay::{FixtureMeta, KEEP, META_FILE};

/// No single read returns more than this: a `maps` of a process with the largest
/// `max_map_count` is ~20 MiB, nothing iowhy reads legitimately comes near.
pub const MAX_READ_BYTES: usize = 64 << 20;

/// Container runtime records and config files (kubelet, dockerd, logrotate) are read up to
/// this size: real ones are a few KiB, a Docker `config.v2.json` with a large environment
/// some hundreds.
pub const MAX_CONFIG_BYTES: usize = 4 << 20;

/// What a capture keeps of each operation.
pub(crate) enum Kept<'a> {
    File { path: &'a Path, bytes: &'a [u8] },
    Denied { key: String },
    Listing { dir: &'a Path, names: Vec<String> },
    Link { path: &'a Path, target: &'a str },
    FdStat { key: String, stat: FileStat },
    Statvfs { mountpoint: &'a str, space: FsSpace },
    PathStat { key: String, stat: FileStat },
    PipeFill { key: String, fill: PipeFill },
    TailOffset { key: String, offset: u64 },
}

/// Where reads come from and where their results go, beside the kernel calls every
/// backend shares. The live backend is all defaults.
pub(crate) trait Backend: Send + Sync {
    /// Replay: the capture was refused this path (a key from [`Reader::rel_key`]).
    fn refused(&self, _key: &str) -> bool {
        false
    }
    /// Replay: the syscall results recorded by the capture, answered instead of calling
    /// the kernel.
    fn recorded(&self) -> Option<&FixtureMeta> {
        None
    }
    /// Capture: keep what was read.
    fn keep(&self, _what: Kept<'_>) {}
    /// Whether `keep` wants listings (building the names costs an allocation each).
    fn keeps(&self) -> bool {
        false
    }
    /// Capture: write `meta.json`.
    fn finish(
        &self,
        _wall_unix_ms: i64,
        _clk_tck: u64,
        _euid: u32,
        _self_pid: Option<u32>,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

struct Live;
impl Backend for Live {}

/// Per-process facts that do not change for the life of a process, kept across snapshots
/// of one reader: a `cmdline` read once need not be read (and risk blocking) again.
#[derive(Default)]
struct Cache {
    cmdline: HashMap<(u32, u64), Vec<String>>,
    /// Mount ids whose statfs did not answer in the last snapshot: no stat through an fd
    /// on them, even from cached attributes (a stuck filesystem is best left alone).
    stuck_mounts: std::collections::BTreeSet<u32>,
}

pub struct Reader {
    pub roots: Roots,
    buf: Vec<u8>,
    backend: Arc<dyn Backend>,
    guard: Arc<Guard>,
    cache: Arc<Mutex<Cache>>,
    /// Set on a watched worker: every read stamps it.
    beat: Option<Arc<guard::Heartbeat>>,
}

/// A directory opened for relative reads (`/proc`, `/proc/PID`, `/proc/PID/fd`).
pub struct DirHandle {
    fd: OwnedFd,
    pub path: PathBuf,
}

impl DirHandle {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn try_clone(&self) -> Result<DirHandle, ReadError> {
        Ok(DirHandle {
            fd: self
                .fd
                .try_clone()
                .map_err(|e| ReadError::from_io(&self.path, e))?,
            path: self.path.clone(),
        })
    }
}

fn errno(path: &Path, e: rustix::io::Errno) -> ReadError {
    ReadError::from_errno(path, e)
}

/// Files whose read takes a lock another task can hold indefinitely: the target's
/// `mmap_lock` (cmdline, environ, maps, smaps), its `exec_update_lock` (io, stack,
/// syscall), the mount namespace's lock (mountinfo, mounts, held by a umount of a hung
/// NFS mount).
fn can_block(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    matches!(
        last,
        "cmdline"
            | "environ"
            | "maps"
            | "smaps"
            | "smaps_rollup"
            | "stack"
            | "syscall"
            | "io"
            | "mountinfo"
            | "mounts"
    )
}

impl Reader {
    fn with_backend(roots: Roots, backend: Arc<dyn Backend>) -> Self {
        Reader {
            roots,
            buf: Vec::with_capacity(8192),
            backend,
            guard: Arc::new(Guard::default()),
            cache: Arc::default(),
            beat: None,
        }
    }

    pub fn live(roots: Roots) -> Self {
        Self::with_backend(roots, Arc::new(Live))
    }

    /// Read live and copy everything read into `dir` (a fixture time point).
    pub fn tee(roots: Roots, dir: PathBuf) -> Self {
        Self::with_backend(roots.clone(), Arc::new(capture::Capture::new(roots, dir)))
    }

    /// Read a captured fixture time point `dir` (holding proc/, sys/, root/, meta.json).
    pub fn fixture(dir: &Path) -> Result<Self, ReadError> {
        let replay = replay::Replay::load(dir)?;
        Ok(Self::with_backend(Roots::under(dir), Arc::new(replay)))
    }

    /// A reader for a watched worker: same roots, backend, deadline and caches.
    fn for_worker(&self, beat: Arc<guard::Heartbeat>) -> Reader {
        Reader {
            roots: self.roots.clone(),
            buf: Vec::with_capacity(8192),
            backend: Arc::clone(&self.backend),
            guard: Arc::clone(&self.guard),
            cache: Arc::clone(&self.cache),
            beat: Some(beat),
        }
    }

    /// The deadline and the stuck registry this reader shares with its workers.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }

    /// Run `f` on each item on watched worker threads (see `guard.rs`): a read that does
    /// not return within the deadline is abandoned and the rest goes on. `f` gets a reader
    /// of its own. Outcomes come back in the items' order.
    pub fn guarded<I, T>(
        &self,
        items: Vec<I>,
        workers: usize,
        f: impl Fn(&mut Reader, &I) -> T + Send + Sync + 'static,
    ) -> Vec<Outcome<T>>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
    {
        guard::run(&self.guard, items, workers, |hb| self.for_worker(hb), f)
    }

    /// Run one piece of work on a watched worker.
    pub fn guarded_one<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Reader) -> T + Send + Sync + 'static,
    ) -> Outcome<T> {
        self.guarded(vec![()], 1, move |r, _| f(r))
            .pop()
            .unwrap_or(Outcome::NotRun)
    }

    /// Whether this reader runs on a watched worker (its reads need no handing off).
    fn watched(&self) -> bool {
        self.beat.is_some()
    }

    /// The effective uid the files were read with (the capture's, for a fixture).
    pub fn euid(&self) -> u32 {
        match self.backend.recorded() {
            Some(meta) => meta.euid,
            None => rustix::process::geteuid().as_raw(),
        }
    }

    /// A path as the host spells it, for reports.
    pub fn spell(&self, p: &Path) -> String {
        self.roots.host_spelling(p)
    }

    pub fn is_fixture(&self) -> bool {
        self.backend.recorded().is_some()
    }

    pub fn fixture_meta(&self) -> Option<&FixtureMeta> {
        self.backend.recorded()
    }

    /// Finish a capture: write meta.json.
    pub fn finish_tee(
        &mut self,
        wall_unix_ms: i64,
        clk_tck: u64,
        euid: u32,
        self_pid: Option<u32>,
    ) -> std::io::Result<()> {
        self.backend.finish(wall_unix_ms, clk_tck, euid, self_pid)
    }

    /// A path relative to the roots (`proc/42/stat`), the key of a capture's tables.
    fn rel_key(&self, path: &Path) -> String {
        let r = &self.roots;
        for (root, sub) in [(&r.proc, "proc"), (&r.sys, "sys"), (&r.root, "root")] {
            if let Ok(rel) = path.strip_prefix(root) {
                return format!("{sub}/{}", rel.display());
            }
        }
        path.display().to_string()
    }

    /// Before a call that may block: fail at once if the path is known stuck (or this
    /// worker was given up on), else stamp the heartbeat.
    fn begin(&self, dir: &Path, name: &str) -> Result<(), ReadError> {
        let joined = || {
            if name.is_empty() {
                dir.to_path_buf()
            } else {
                dir.join(name)
            }
        };
        if self.guard.any_stuck() {
            if let Some(since) = self.guard.stuck_since(&joined()) {
                return Err(ReadError::TimedOut {
                    path: joined(),
                    waited: since.elapsed(),
                });
            }
        }
        if let Some(hb) = &self.beat {
            if !hb.start(dir, name) {
                return Err(ReadError::TimedOut {
                    path: joined(),
                    waited: self.guard.deadline(),
                });
            }
        }
        Ok(())
    }

    fn end(&self) {
        if let Some(hb) = &self.beat {
            hb.done();
        }
    }

    /// A replay refuses what the capture was refused; a capture records refusals.
    fn check_refused(&self, path: &Path) -> Result<(), ReadError> {
        if self.backend.recorded().is_some() && self.backend.refused(&self.rel_key(path)) {
            return Err(ReadError::PermissionDenied {
                path: path.to_path_buf(),
            });
        }
        Ok(())
    }

    fn note_refusal(&self, path: &Path, e: &ReadError) {
        if e.is_permission() && self.backend.keeps() {
            self.backend.keep(Kept::Denied {
                key: self.rel_key(path),
            });
        }
    }

    /// Read an opened fd into the buffer: only a regular file, at most `cap` bytes.
    ///
    /// `check_type`: fstat the fd first and refuse anything but a regular file. The live
    /// scan of procfs skips that syscall (a few per process per snapshot): procfs holds no
    /// FIFOs or devices, and even a bogus `--proc-root` cannot hang or flood the read
    /// (`O_NONBLOCK` and the cap).
    fn fill(
        &mut self,
        fd: OwnedFd,
        path: &Path,
        cap: usize,
        check_type: bool,
    ) -> Result<(), ReadError> {
        let st = match check_type {
            true => Some(rustix::fs::fstat(&fd).map_err(|e| errno(path, e))?),
            false => None,
        };
        if let Some(st) = st.filter(|st| st.st_mode & libc::S_IFMT != libc::S_IFREG) {
            return Err(ReadError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(format!(
                    "not a regular file ({}): not read",
                    file_type_name(st.st_mode)
                )),
            });
        }
        self.buf.clear();
        loop {
            if self.buf.len() > cap {
                return Err(ReadError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::other(format!("larger than {} bytes: not read", cap)),
                });
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(self.buf.capacity().max(4096));
            }
            let room = (cap + 1 - self.buf.len()).min(self.buf.capacity() - self.buf.len());
            match rustix::io::read(&fd, &mut self.buf.spare_capacity_mut()[..room]) {
                Ok(([], _)) => return Ok(()),
                Ok((filled, _)) => {
                    let n = filled.len();
                    // SAFETY: read(2) initialised the first n bytes of the spare capacity.
                    unsafe { self.buf.set_len(self.buf.len() + n) };
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(errno(path, e)),
            }
        }
    }

    fn open_flags() -> OFlags {
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
    }

    /// Read a whole file by path.
    pub fn read_path(&mut self, path: &Path) -> Result<Cow<'_, str>, ReadError> {
        self.read_path_capped(path, MAX_READ_BYTES)
    }

    /// Read a whole file by path, refusing one larger than `cap` bytes (a config file
    /// another user may have pointed us at).
    pub fn read_path_capped(&mut self, path: &Path, cap: usize) -> Result<Cow<'_, str>, ReadError> {
        self.check_refused(path)?;
        let outside_kernel =
            !path.starts_with(&self.roots.proc) && !path.starts_with(&self.roots.sys);
        if !self.watched() && (outside_kernel || can_block(&path.to_string_lossy())) {
            let p = path.to_path_buf();
            let bytes = self.hand_off(move |r| {
                r.read_path_capped(&p, cap)?;
                Ok(r.take_buf())
            })?;
            self.buf = bytes;
            return Ok(text(&self.buf));
        }
        self.begin(path, "")?;
        let res = rustix::fs::open(path, Self::open_flags(), Mode::empty())
            .map_err(|e| errno(path, e))
            .and_then(|fd| self.fill(fd, path, cap, true));
        self.end();
        if let Err(e) = &res {
            self.note_refusal(path, e);
        }
        res?;
        if self.backend.keeps() {
            self.backend.keep(Kept::File {
                path,
                bytes: &self.buf,
            });
        }
        Ok(text(&self.buf))
    }

    fn take_buf(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Do one read on a watched worker and wait for it, at most the deadline.
    fn hand_off<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Reader) -> Result<T, ReadError> + Send + Sync + 'static,
    ) -> Result<T, ReadError> {
        match self.guarded_one(f) {
            Outcome::Done(r) => r,
            Outcome::Stuck(s) => Err(ReadError::TimedOut {
                path: s.path,
                waited: s.since.elapsed(),
            }),
            Outcome::NotRun => Err(ReadError::Io {
                path: PathBuf::new(),
                source: std::io::Error::from(std::io::ErrorKind::Interrupted),
            }),
        }
    }

    /// Read a file relative to an open directory. `name` is relative (`stat`, `fd/3`).
    pub fn read_at(&mut self, dir: &DirHandle, name: &str) -> Result<Cow<'_, str>, ReadError> {
        self.read_at_bytes(dir, name)?;
        Ok(text(&self.buf))
    }

    fn read_at_bytes(&mut self, dir: &DirHandle, name: &str) -> Result<(), ReadError> {
        let replaying = self.backend.recorded().is_some();
        if replaying {
            self.check_refused(&dir.path.join(name))?;
        }
        if !self.watched() && can_block(name) {
            let d = dir.try_clone()?;
            let n = name.to_string();
            self.buf = self.hand_off(move |r| {
                r.read_at_bytes(&d, &n)?;
                Ok(r.take_buf())
            })?;
            return Ok(());
        }
        self.begin(&dir.path, name)?;
        let res = match rustix::fs::openat(dir.fd(), name, Self::open_flags(), Mode::empty()) {
            Ok(fd) => self.fill(
                fd,
                &dir.path,
                MAX_READ_BYTES,
                self.backend.keeps() || replaying,
            ),
            Err(e) => Err(errno(&dir.path, e)),
        }
        // Errors carry the directory path; name the file.
        .map_err(|e| e.with_path(dir.path.join(name)));
        self.end();
        if self.backend.keeps() {
            let p = dir.path.join(name);
            match &res {
                Ok(()) => self.backend.keep(Kept::File {
                    path: &p,
                    bytes: &self.buf,
                }),
                Err(e) => self.note_refusal(&p, e),
            }
        }
        res
    }

    /// The raw bytes of the last read (for NUL-separated files like cmdline).
    pub fn last_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn open_dir(&mut self, path: &Path) -> Result<DirHandle, ReadError> {
        self.check_refused(path)?;
        self.begin(path, "")?;
        let res = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| errno(path, e));
        self.end();
        if let Err(e) = &res {
            self.note_refusal(path, e);
        }
        Ok(DirHandle {
            fd: res?,
            path: path.to_path_buf(),
        })
    }

    pub fn open_dir_at(&mut self, dir: &DirHandle, name: &str) -> Result<DirHandle, ReadError> {
        let path = dir.path.join(name);
        self.check_refused(&path)?;
        self.begin(&dir.path, name)?;
        let res = rustix::fs::openat(
            dir.fd(),
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| errno(&path, e));
        self.end();
        if let Err(e) = &res {
            self.note_refusal(&path, e);
        }
        Ok(DirHandle { fd: res?, path })
    }

    /// Call `f` with each entry name of an open directory (no `.`/`..`), without
    /// allocating per entry.
    pub fn for_each_entry(
        &mut self,
        dir: &DirHandle,
        mut f: impl FnMut(&CStr),
    ) -> Result<(), ReadError> {
        self.begin(&dir.path, "")?;
        let res = (|| {
            let mut d = rustix::fs::Dir::read_from(dir.fd()).map_err(|e| errno(&dir.path, e))?;
            let keeps = self.backend.keeps();
            let mut names = Vec::new();
            while let Some(ent) = d.read() {
                let ent = ent.map_err(|e| errno(&dir.path, e))?;
                let name = ent.file_name();
                let b = name.to_bytes();
                if b == b"." || b == b".." || b == KEEP.as_bytes() {
                    continue;
                }
                if keeps {
                    names.push(String::from_utf8_lossy(b).into_owned());
                }
                f(name);
            }
            if keeps {
                self.backend.keep(Kept::Listing {
                    dir: &dir.path,
                    names,
                });
            }
            Ok(())
        })();
        self.end();
        res
    }

    /// readlink relative to an open directory (the `fd/` directory of a process).
    pub fn readlink_at(&mut self, dir: &DirHandle, name: &CStr) -> Result<String, ReadError> {
        let path = || dir.path.join(name.to_string_lossy().as_ref());
        if self.backend.recorded().is_some() {
            self.check_refused(&path())?;
        }
        self.begin(&dir.path, &name.to_string_lossy())?;
        let target = rustix::fs::readlinkat(dir.fd(), name, Vec::new());
        self.end();
        let target = target.map_err(|e| errno(&path(), e))?;
        let s = crate::hoststr::from_bytes(target.as_bytes());
        if self.backend.keeps() {
            self.backend.keep(Kept::Link {
                path: &path(),
                target: &s,
            });
        }
        Ok(s)
    }

    /// readlink by path.
    pub fn readlink(&mut self, path: &Path) -> Result<String, ReadError> {
        self.check_refused(path)?;
        self.begin(path, "")?;
        let target = std::fs::read_link(path);
        self.end();
        let target = target.map_err(|e| ReadError::from_io(path, e))?;
        let s =
            crate::hoststr::from_bytes(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()));
        if self.backend.keeps() {
            self.backend.keep(Kept::Link { path, target: &s });
        }
        Ok(s)
    }

    /// A process's command line, read once per process life (pid and start time) and then
    /// served from the cache: it is the read most likely to block (the target's
    /// `mmap_lock`), and it does not change for most processes. `Ok(None)`: not cached and
    /// not to be read now.
    pub fn cmdline(
        &mut self,
        pd: &DirHandle,
        pid: u32,
        start_ticks: u64,
    ) -> Result<Vec<String>, ReadError> {
        let key = (pid, start_ticks);
        if let Some(v) = lock(&self.cache).cmdline.get(&key) {
            return Ok(v.clone());
        }
        self.read_at_bytes(pd, "cmdline")?;
        let v = split_cmdline(&self.buf);
        // A process that has not yet exec'd (or a kernel thread) shows an empty
        // cmdline that may still change: do not keep it.
        if !v.is_empty() && self.backend.recorded().is_none() {
            lock(&self.cache).cmdline.insert(key, v.clone());
        }
        Ok(v)
    }

    /// Record the mounts whose statfs did not answer (mount ids).
    pub fn set_stuck_mounts(&self, ids: std::collections::BTreeSet<u32>) {
        lock(&self.cache).stuck_mounts = ids;
    }

    pub fn is_stuck_mount(&self, id: u32) -> bool {
        let c = lock(&self.cache);
        !c.stuck_mounts.is_empty() && c.stuck_mounts.contains(&id)
    }

    /// Forget cached facts of processes that are gone (`alive` holds (pid, start ticks)).
    pub fn forget_except(&self, alive: &std::collections::HashSet<(u32, u64)>) {
        lock(&self.cache).cmdline.retain(|k, _| alive.contains(k));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `cmdline` is NUL-separated; an argument may be any bytes.
pub fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(crate::hoststr::from_bytes)
        .collect()
}

/// The text of a read, losing no byte: valid UTF-8 as it is (borrowed, the common case),
/// anything else through [`crate::hoststr::from_bytes`] (a file name or a `comm` may be any
/// bytes; the reports escape them for terminals, JSON keeps them exactly).
fn text(buf: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(buf) {
        // 0xF4 starts every char at or past U+100000, where the encoded bytes live.
        Ok(s) if !buf.contains(&0xF4) => Cow::Borrowed(s),
        _ => Cow::Owned(crate::hoststr::from_bytes(buf)),
    }
}

fn file_type_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        _ => "not a regular file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_files_larger_than_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let content = "x".repeat(100_000);
        std::fs::write(&p, &content).unwrap();
        let mut r = Reader::live(Roots::default());
        assert_eq!(r.read_path(&p).unwrap().len(), 100_000);
        assert!(
            r.read_path(&dir.path().join("missing"))
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn a_fifo_or_device_is_never_read_and_a_cap_holds() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("config.yaml");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
        let mut r = Reader::live(Roots::default());
        let t0 = std::time::Instant::now();
        let e = r.read_path(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert!(t0.elapsed() < std::time::Duration::from_secs(2));
        let e = r.read_path(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 5000]).unwrap();
        let e = r.read_path_capped(&big, 4096).unwrap_err();
        assert!(e.to_string().contains("larger than 4096"), "{e}");
        assert_eq!(r.read_path_capped(&big, 5000).unwrap().len(), 5000);
    }

    #[test]
    fn a_fifo_cmdline_in_a_fixture_is_a_gap_not_a_hang() {
        let src = tempfile::tempdir().unwrap();
        let pd = src.path().join("proc/42");
        std::fs::create_dir_all(&pd).unwrap();
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            pd.join("cmdline"),
            Mode::from_raw_mode(0o600),
        )
        .unwrap();
        std::fs::write(src.path().join(META_FILE), "{\"wall_unix_ms\":0,\"clk_tck\":100,\"euid\":0,\"self_pid\":null,\"statvfs\":{},\"fd_stat\":{},\"denied\":[]}").unwrap();
        let mut r = Reader::fixture(src.path()).unwrap();
        let d = r.open_dir(&r.roots.pid_dir(42)).unwrap();
        assert!(r.cmdline(&d, 42, 1).is_err());
    }

    #[test]
    fn tee_then_fixture_round_trip() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("proc/42")).unwrap();
        std::fs::write(src.path().join("proc/42/stat"), "hello").unwrap();
        let roots = Roots::under(src.path());
        let mut tee = Reader::tee(roots.clone(), out.path().to_path_buf());
        let d = tee.open_dir(&roots.pid_dir(42)).unwrap();
        assert_eq!(tee.read_at(&d, "stat").unwrap(), "hello");
        tee.finish_tee(1, 100, 0, None).unwrap();
        // A name listed but never read survives in the capture, marked for git.
        std::fs::write(src.path().join("proc/42/listed-only"), "x").unwrap();
        let names = |r: &mut Reader, d: &DirHandle| {
            let mut v = Vec::new();
            r.for_each_entry(d, |n| v.push(n.to_string_lossy().into_owned()))
                .unwrap();
            v.sort();
            v
        };
        assert_eq!(names(&mut tee, &d), vec!["listed-only", "stat"]);
        tee.finish_tee(1, 100, 0, None).unwrap();
        assert!(out.path().join("proc/42/listed-only").join(KEEP).exists());
        let mut fx = Reader::fixture(out.path()).unwrap();
        let d = fx.open_dir(&fx.roots.pid_dir(42)).unwrap();
        assert_eq!(fx.read_at(&d, "stat").unwrap(), "hello");
        assert!(fx.read_at(&d, "io").unwrap_err().is_not_found());
        assert_eq!(names(&mut fx, &d), vec!["listed-only", "stat"]);
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(
            split_cmdline(b"/usr/bin/python3\0/opt/log-agent/logger.py\0"),
            vec!["/usr/bin/python3", "/opt/log-agent/logger.py"]
        );
        assert!(split_cmdline(b"").is_empty());
    }
}
