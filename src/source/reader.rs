//! The careful reader: every byte iowhy takes from the kernel goes through here.
//!
//! Why not the `procfs` crate: it allocates per file and re-resolves the full path for
//! every read; `benches/scan.rs` measures it at about twice the cost of this reader
//! (openat relative to an open `/proc/PID` directory, one reused buffer, no per-entry
//! allocation in directory listings). The scan runs over every process every interval on
//! a machine that is already in trouble, so that difference is worth the ~300 lines.
//!
//! Three modes share the code paths:
//! - live: read the roots;
//! - capture ("tee"): read live and copy each file, link and syscall result into a
//!   fixture tree, so a fixture holds exactly what the reader read;
//! - fixture: read a captured tree, with the syscall results (stat through fd links,
//!   statvfs, clock) from its `meta.json`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};

use crate::error::ReadError;
use crate::roots::Roots;
use crate::snapshot::{FileStat, FsSpace, PipeFill};

/// Syscall results a fixture time point carries beside its files.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FixtureMeta {
    pub wall_unix_ms: i64,
    pub clk_tck: u64,
    pub euid: u32,
    pub self_pid: Option<u32>,
    /// statvfs per mountpoint (as the host spells it).
    pub statvfs: BTreeMap<String, FsSpace>,
    /// stat through `/proc/PID/fd/N`, keyed `"PID/N"`.
    pub fd_stat: BTreeMap<String, FileStat>,
    /// Paths (relative to the time point) that were denied when captured.
    pub denied: BTreeSet<String>,
    /// stat(2) by path (container logs), keyed by the path relative to the time point.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub path_stat: BTreeMap<String, FileStat>,
    /// FIONREAD / F_GETPIPE_SZ through `/proc/PID/fd/N`, keyed `"PID/N"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pipe_fill: BTreeMap<String, PipeFill>,
    /// Where a tail read began in the live file (the capture holds only the tail),
    /// keyed by the path relative to the time point.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tail_offset: BTreeMap<String, u64>,
    /// When the capturer turned `kernel.task_delayacct` on, in seconds of uptime (what
    /// `diagnose --enable-delayacct` knows of its own run): a task forked after it has
    /// delay accounting, so its I/O wait is real even when it is 0. Written by
    /// `tests/fixtures/capture.sh`, which turns it on before a lab starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayacct_enabled_at_uptime_s: Option<f64>,
}

pub const META_FILE: &str = "meta.json";

/// A directory entry that was listed but never read is kept in a capture as an empty
/// directory holding this marker, because git does not keep empty directories; listings
/// ignore the marker.
pub const KEEP: &str = ".iowhy-keep";

/// Make room for a file or link where a listing left a placeholder directory.
fn clear_placeholder(dst: &Path) {
    if dst.is_dir() {
        let _ = std::fs::remove_file(dst.join(KEEP));
        let _ = std::fs::remove_dir(dst);
    }
}

enum Mode_ {
    Live,
    Tee { dir: PathBuf, meta: FixtureMeta },
    Fixture { meta: FixtureMeta },
}

pub struct Reader {
    pub roots: Roots,
    buf: Vec<u8>,
    mode: Mode_,
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
}

fn errno(path: &Path, e: rustix::io::Errno) -> ReadError {
    ReadError::from_errno(path, e)
}

impl Reader {
    pub fn live(roots: Roots) -> Self {
        Reader {
            roots,
            buf: Vec::with_capacity(8192),
            mode: Mode_::Live,
        }
    }

    /// Read live and copy everything read into `dir` (a fixture time point).
    pub fn tee(roots: Roots, dir: PathBuf) -> Self {
        Reader {
            roots,
            buf: Vec::with_capacity(8192),
            mode: Mode_::Tee {
                dir,
                meta: FixtureMeta::default(),
            },
        }
    }

    /// Read a captured fixture time point `dir` (holding proc/, sys/, root/, meta.json).
    pub fn fixture(dir: &Path) -> Result<Self, ReadError> {
        let meta_path = dir.join(META_FILE);
        let text =
            std::fs::read_to_string(&meta_path).map_err(|e| ReadError::from_io(&meta_path, e))?;
        let meta: FixtureMeta = serde_json::from_str(&text).map_err(|e| {
            ReadError::parse(
                &meta_path,
                crate::parse::ParseError::new("fixture meta", e.to_string()),
            )
        })?;
        Ok(Reader {
            roots: Roots::under(dir),
            buf: Vec::with_capacity(8192),
            mode: Mode_::Fixture { meta },
        })
    }

    /// The effective uid the files were read with (the capture's, for a fixture).
    pub fn euid(&self) -> u32 {
        match &self.mode {
            Mode_::Fixture { meta } => meta.euid,
            _ => rustix::process::geteuid().as_raw(),
        }
    }

    /// A path as the host spells it, for reports.
    pub fn spell(&self, p: &Path) -> String {
        self.roots.host_spelling(p)
    }

    pub fn is_fixture(&self) -> bool {
        matches!(self.mode, Mode_::Fixture { .. })
    }

    pub fn fixture_meta(&self) -> Option<&FixtureMeta> {
        match &self.mode {
            Mode_::Fixture { meta } => Some(meta),
            _ => None,
        }
    }

    /// Finish a capture: write meta.json. `extra` fills the clock fields.
    pub fn finish_tee(
        &mut self,
        wall_unix_ms: i64,
        clk_tck: u64,
        euid: u32,
        self_pid: Option<u32>,
    ) -> std::io::Result<()> {
        if let Mode_::Tee { dir, meta } = &mut self.mode {
            meta.wall_unix_ms = wall_unix_ms;
            meta.clk_tck = clk_tck;
            meta.euid = euid;
            meta.self_pid = self_pid;
            std::fs::write(dir.join(META_FILE), serde_json::to_vec_pretty(meta)?)?;
        }
        Ok(())
    }

    /// Where a live path lands inside the capture directory.
    fn tee_path(&self, dir: &Path, path: &Path) -> Option<PathBuf> {
        let (base, sub) = if let Ok(r) = path.strip_prefix(&self.roots.proc) {
            (r, "proc")
        } else if let Ok(r) = path.strip_prefix(&self.roots.sys) {
            (r, "sys")
        } else if let Ok(r) = path.strip_prefix(&self.roots.root) {
            (r, "root")
        } else {
            return None;
        };
        Some(dir.join(sub).join(base))
    }

    fn rel_key(&self, path: &Path) -> String {
        let r = &self.roots;
        for (root, sub) in [(&r.proc, "proc"), (&r.sys, "sys"), (&r.root, "root")] {
            if let Ok(rel) = path.strip_prefix(root) {
                return format!("{sub}/{}", rel.display());
            }
        }
        path.display().to_string()
    }

    fn note_result(&mut self, path: &Path, res: &Result<(), ReadError>) {
        let key = match (&self.mode, res) {
            (Mode_::Tee { .. }, Err(e)) if e.is_permission() => self.rel_key(path),
            _ => return,
        };
        if let Mode_::Tee { meta, .. } = &mut self.mode {
            meta.denied.insert(key);
        }
    }

    fn check_denied(&self, path: &Path) -> Result<(), ReadError> {
        if let Mode_::Fixture { meta } = &self.mode {
            if !meta.denied.is_empty() && meta.denied.contains(&self.rel_key(path)) {
                return Err(ReadError::PermissionDenied {
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    fn copy_out(&self, path: &Path, bytes: &[u8]) {
        if let Mode_::Tee { dir, .. } = &self.mode {
            if let Some(dst) = self.tee_path(dir, path) {
                write_capture_file(&dst, bytes);
            }
        }
    }

    fn fill(&mut self, fd: OwnedFd, path: &Path) -> Result<(), ReadError> {
        self.buf.clear();
        loop {
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(self.buf.capacity().max(4096));
            }
            match rustix::io::read(&fd, spare(&mut self.buf)) {
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

    /// Read a whole file by path.
    pub fn read_path(&mut self, path: &Path) -> Result<Cow<'_, str>, ReadError> {
        self.check_denied(path)?;
        let res = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| errno(path, e))
        .and_then(|fd| self.fill(fd, path));
        self.note_result(path, &res);
        res?;
        self.copy_out(path, &self.buf);
        Ok(String::from_utf8_lossy(&self.buf))
    }

    /// Read a file relative to an open directory. `name` is relative (`stat`, `fd/3`).
    pub fn read_at(&mut self, dir: &DirHandle, name: &str) -> Result<Cow<'_, str>, ReadError> {
        let tee_or_fixture = !matches!(self.mode, Mode_::Live);
        if tee_or_fixture {
            self.check_denied(&dir.path.join(name))?;
        }
        let res = match rustix::fs::openat(
            dir.fd(),
            name,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => self.fill(fd, &dir.path),
            Err(e) => Err(errno(&dir.path.join(name), e)),
        }
        .map_err(|e| match e {
            // Errors from read() carry the directory path; name the file.
            ReadError::NotFound { .. } => ReadError::NotFound {
                path: dir.path.join(name),
            },
            ReadError::PermissionDenied { .. } => ReadError::PermissionDenied {
                path: dir.path.join(name),
            },
            ReadError::Io { source, .. } => ReadError::Io {
                path: dir.path.join(name),
                source,
            },
            other => other,
        });
        if tee_or_fixture {
            let p = dir.path.join(name);
            self.note_result(&p, &res);
            if res.is_ok() {
                self.copy_out(&p, &self.buf);
            }
        }
        res?;
        Ok(String::from_utf8_lossy(&self.buf))
    }

    /// The raw bytes of the last read (for NUL-separated files like cmdline).
    pub fn last_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn open_dir(&mut self, path: &Path) -> Result<DirHandle, ReadError> {
        self.check_denied(path)?;
        let res = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno(path, e));
        self.note_result(path, &res.as_ref().map(|_| ()).map_err(clone_kind));
        Ok(DirHandle {
            fd: res?,
            path: path.to_path_buf(),
        })
    }

    pub fn open_dir_at(&mut self, dir: &DirHandle, name: &str) -> Result<DirHandle, ReadError> {
        let path = dir.path.join(name);
        self.check_denied(&path)?;
        let res = rustix::fs::openat(
            dir.fd(),
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno(&path, e));
        self.note_result(&path, &res.as_ref().map(|_| ()).map_err(clone_kind));
        Ok(DirHandle { fd: res?, path })
    }

    /// Call `f` with each entry name of an open directory (no `.`/`..`), without
    /// allocating per entry.
    pub fn for_each_entry(
        &mut self,
        dir: &DirHandle,
        mut f: impl FnMut(&CStr),
    ) -> Result<(), ReadError> {
        let mut d = rustix::fs::Dir::read_from(dir.fd()).map_err(|e| errno(&dir.path, e))?;
        let mut names_for_tee = Vec::new();
        let teeing = matches!(self.mode, Mode_::Tee { .. });
        while let Some(ent) = d.read() {
            let ent = ent.map_err(|e| errno(&dir.path, e))?;
            let name = ent.file_name();
            let b = name.to_bytes();
            if b == b"." || b == b".." || b == KEEP.as_bytes() {
                continue;
            }
            if teeing {
                names_for_tee.push(String::from_utf8_lossy(b).into_owned());
            }
            f(name);
        }
        if teeing {
            // Listings matter for their names: make sure each entry exists in the capture
            // (as an empty directory unless a later read or readlink fills it).
            if let Mode_::Tee { dir: out, .. } = &self.mode {
                if let Some(dst) = self.tee_path(out, &dir.path) {
                    for n in names_for_tee {
                        let p = dst.join(n);
                        if std::fs::symlink_metadata(&p).is_err() {
                            let _ = std::fs::create_dir_all(&p);
                            let _ = std::fs::write(p.join(KEEP), b"");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// readlink relative to an open directory (the `fd/` directory of a process).
    pub fn readlink_at(&mut self, dir: &DirHandle, name: &CStr) -> Result<String, ReadError> {
        let path = || dir.path.join(name.to_string_lossy().as_ref());
        if !matches!(self.mode, Mode_::Live) {
            self.check_denied(&path())?;
        }
        let target =
            rustix::fs::readlinkat(dir.fd(), name, Vec::new()).map_err(|e| errno(&path(), e))?;
        let s = target.to_string_lossy().into_owned();
        if let Mode_::Tee { dir: out, .. } = &self.mode {
            if let Some(dst) = self.tee_path(out, &path()) {
                if let Some(parent) = dst.parent() {
                    let _ = std::fs::create_dir_all(parent);
                    let _ = std::fs::remove_file(parent.join(KEEP));
                }
                clear_placeholder(&dst);
                let _ = std::os::unix::fs::symlink(&s, &dst);
            }
        }
        Ok(s)
    }

    /// readlink by path.
    pub fn readlink(&mut self, path: &Path) -> Result<String, ReadError> {
        self.check_denied(path)?;
        let target = std::fs::read_link(path).map_err(|e| ReadError::from_io(path, e))?;
        let s = target.to_string_lossy().into_owned();
        if let Mode_::Tee { dir: out, .. } = &self.mode {
            if let Some(dst) = self.tee_path(out, path) {
                if let Some(parent) = dst.parent() {
                    let _ = std::fs::create_dir_all(parent);
                    let _ = std::fs::remove_file(parent.join(KEEP));
                }
                clear_placeholder(&dst);
                let _ = std::os::unix::fs::symlink(&s, &dst);
            }
        }
        Ok(s)
    }

    /// stat(2) through `/proc/PID/fd/N` (follows the magic link to the open file).
    pub fn stat_fd(
        &mut self,
        pid: u32,
        fd_dir: &DirHandle,
        fd: &CStr,
    ) -> Result<FileStat, ReadError> {
        let key = || format!("{pid}/{}", fd.to_string_lossy());
        if let Mode_::Fixture { meta } = &self.mode {
            return meta
                .fd_stat
                .get(&key())
                .copied()
                .ok_or_else(|| ReadError::NotFound {
                    path: fd_dir.path.join(fd.to_string_lossy().as_ref()),
                });
        }
        let st = rustix::fs::statat(fd_dir.fd(), fd, AtFlags::empty())
            .map_err(|e| errno(&fd_dir.path.join(fd.to_string_lossy().as_ref()), e))?;
        let fs = file_stat(&st);
        if let Mode_::Tee { meta, .. } = &mut self.mode {
            meta.fd_stat.insert(key(), fs);
        }
        Ok(fs)
    }

    /// statvfs(2) of a mountpoint (host spelling), through `--root`.
    pub fn statvfs(&mut self, mountpoint: &str) -> Result<FsSpace, ReadError> {
        if let Mode_::Fixture { meta } = &self.mode {
            return meta
                .statvfs
                .get(mountpoint)
                .cloned()
                .ok_or_else(|| ReadError::NotFound {
                    path: PathBuf::from(mountpoint),
                });
        }
        let path = self.roots.host(Path::new(mountpoint));
        let v = rustix::fs::statvfs(&path).map_err(|e| errno(&path, e))?;
        let fr = v.f_frsize.max(1);
        let space = FsSpace {
            size_bytes: v.f_blocks * fr,
            used_bytes: v.f_blocks.saturating_sub(v.f_bfree) * fr,
            avail_bytes: v.f_bavail * fr,
            inodes_total: v.f_files,
            inodes_free: v.f_ffree,
        };
        if let Mode_::Tee { meta, .. } = &mut self.mode {
            meta.statvfs.insert(mountpoint.to_string(), space.clone());
        }
        Ok(space)
    }
}

fn file_stat(st: &rustix::fs::Stat) -> FileStat {
    FileStat {
        dev_major: rustix::fs::major(st.st_dev),
        dev_minor: rustix::fs::minor(st.st_dev),
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink,
        size_bytes: st.st_size.max(0) as u64,
        alloc_bytes: (st.st_blocks.max(0) as u64) * 512,
        uid: st.st_uid,
        gid: Some(st.st_gid),
    }
}

/// Reads added for containers and pipes (issue 4): stat by path, a file's tail, and a
/// pipe's fill level. Each is recorded in a capture and replayed from a fixture.
impl Reader {
    /// stat(2) by path, following links (a container log, `/var/log/containers/*`).
    pub fn stat_path(&mut self, path: &Path) -> Result<FileStat, ReadError> {
        let key = self.rel_key(path);
        if let Mode_::Fixture { meta } = &self.mode {
            return meta
                .path_stat
                .get(&key)
                .copied()
                .ok_or_else(|| ReadError::NotFound {
                    path: path.to_path_buf(),
                });
        }
        let res = rustix::fs::stat(path).map_err(|e| errno(path, e));
        self.note_result(path, &res.as_ref().map(|_| ()).map_err(clone_kind));
        let fs = file_stat(&res?);
        if let Mode_::Tee { meta, .. } = &mut self.mode {
            meta.path_stat.insert(key, fs);
        }
        Ok(fs)
    }

    /// The last `max_bytes` of a regular file, and the offset they start at. Never opens
    /// anything but a regular file (a FIFO would block, a device could be anything). A
    /// capture keeps only this tail, plus the offset in its meta.
    pub fn read_tail(
        &mut self,
        path: &Path,
        max_bytes: u64,
    ) -> Result<(u64, Cow<'_, str>), ReadError> {
        self.check_denied(path)?;
        let key = self.rel_key(path);
        if let Mode_::Fixture { meta } = &self.mode {
            let off = meta.tail_offset.get(&key).copied().unwrap_or(0);
            let bytes = std::fs::read(path).map_err(|e| ReadError::from_io(path, e))?;
            self.buf = bytes;
            return Ok((off, String::from_utf8_lossy(&self.buf)));
        }
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| errno(path, e));
        self.note_result(path, &fd.as_ref().map(|_| ()).map_err(clone_kind));
        let fd = fd?;
        let st = rustix::fs::fstat(&fd).map_err(|e| errno(path, e))?;
        if !file_stat(&st).is_regular() {
            return Err(ReadError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("not a regular file"),
            });
        }
        let size = st.st_size.max(0) as u64;
        let off = size.saturating_sub(max_bytes);
        self.buf.clear();
        self.buf.resize(max_bytes.min(size) as usize, 0);
        let mut got = 0;
        while got < self.buf.len() {
            match rustix::io::pread(&fd, &mut self.buf[got..], off + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(errno(path, e)),
            }
        }
        self.buf.truncate(got);
        if let Mode_::Tee { dir, .. } = &self.mode {
            if let Some(dst) = self.tee_path(dir, path) {
                write_capture_file(&dst, &self.buf);
            }
        }
        if let Mode_::Tee { meta, .. } = &mut self.mode {
            meta.tail_offset.insert(key, off);
        }
        Ok((off, String::from_utf8_lossy(&self.buf)))
    }

    /// How full a pipe is, through `/proc/PID/fd/N`: FIONREAD (bytes queued) and
    /// F_GETPIPE_SZ (capacity).
    ///
    /// Opening the link adds a reader to the pipe for a moment. That is harmless only
    /// because callers probe pipes whose writer is blocked in pipe_write, which implies a
    /// reader already exists (without one the write fails with EPIPE): our extra reader
    /// neither wakes a writer waiting in open(2) nor leaves one to SIGPIPE when we close.
    /// `O_NONBLOCK` keeps the open from waiting for a writer.
    pub fn pipe_fill(&mut self, pid: u32, fd: i32) -> Result<PipeFill, ReadError> {
        let key = format!("{pid}/{fd}");
        if let Mode_::Fixture { meta } = &self.mode {
            return meta
                .pipe_fill
                .get(&key)
                .copied()
                .ok_or_else(|| ReadError::NotFound {
                    path: self.roots.fd_link(pid, fd),
                });
        }
        let path = self.roots.fd_link(pid, fd);
        let f = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| errno(&path, e))?;
        let st = rustix::fs::fstat(&f).map_err(|e| errno(&path, e))?;
        if !file_stat(&st).is_fifo() {
            return Err(ReadError::Io {
                path,
                source: std::io::Error::other("not a pipe"),
            });
        }
        let fill = PipeFill {
            fd,
            ino: Some(st.st_ino),
            queued_bytes: rustix::io::ioctl_fionread(&f).ok(),
            capacity_bytes: rustix::pipe::fcntl_getpipe_size(&f).ok().map(|v| v as u64),
        };
        if let Mode_::Tee { meta, .. } = &mut self.mode {
            meta.pipe_fill.insert(key, fill);
        }
        Ok(fill)
    }
}

/// Write a file into a capture tree. A listing may have left an empty directory (or a
/// readlink a symlink) at that path: replace it, and never write through a symlink into
/// the live filesystem.
fn write_capture_file(dst: &Path, bytes: &[u8]) {
    if let Ok(md) = std::fs::symlink_metadata(dst) {
        if md.file_type().is_symlink() || md.is_file() {
            let _ = std::fs::remove_file(dst);
        } else if md.is_dir() {
            clear_placeholder(dst);
        }
    }
    if let Some(parent) = dst.parent() {
        let _ = std::fs::create_dir_all(parent);
        let _ = std::fs::remove_file(parent.join(KEEP));
    }
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes));
}

fn clone_kind(e: &ReadError) -> ReadError {
    match e {
        ReadError::NotFound { path } => ReadError::NotFound { path: path.clone() },
        ReadError::PermissionDenied { path } => ReadError::PermissionDenied { path: path.clone() },
        ReadError::Io { path, source } => ReadError::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        ReadError::Parse { path, source } => ReadError::Parse {
            path: path.clone(),
            source: source.clone(),
        },
    }
}

/// The uninitialised tail of a Vec as a byte slice for read(2).
fn spare(buf: &mut Vec<u8>) -> &mut [std::mem::MaybeUninit<u8>] {
    buf.spare_capacity_mut()
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
}
