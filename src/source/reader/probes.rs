//! Syscalls that are not file reads: stat through an fd link, statvfs of a mount, stat
//! by path, the tail of a log, the fill level of a pipe. Each is recorded in a capture and
//! answered from a replay's `meta.json`.

use std::borrow::Cow;
use std::ffi::CStr;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags};

use super::{DirHandle, Kept, Reader, errno};
use crate::error::ReadError;
use crate::snapshot::{FileStat, FsSpace, PipeFill};

/// What stat through an fd needs. `AT_STATX_DONT_SYNC` answers from cached attributes:
/// on NFS it sends no GETATTR, on FUSE it asks no daemon, so a hung server cannot block it.
fn statx_at(dir: &DirHandle, name: &CStr) -> rustix::io::Result<FileStat> {
    let st = rustix::fs::statx(
        dir.fd(),
        name,
        AtFlags::STATX_DONT_SYNC,
        StatxFlags::TYPE
            | StatxFlags::MODE
            | StatxFlags::NLINK
            | StatxFlags::UID
            | StatxFlags::GID
            | StatxFlags::INO
            | StatxFlags::SIZE
            | StatxFlags::BLOCKS,
    )?;
    Ok(FileStat {
        dev_major: st.stx_dev_major,
        dev_minor: st.stx_dev_minor,
        ino: st.stx_ino,
        mode: st.stx_mode as u32,
        nlink: st.stx_nlink as u64,
        size_bytes: st.stx_size,
        alloc_bytes: st.stx_blocks.saturating_mul(512),
        uid: st.stx_uid,
        gid: Some(st.stx_gid),
    })
}

pub(crate) fn file_stat(st: &rustix::fs::Stat) -> FileStat {
    FileStat {
        dev_major: rustix::fs::major(st.st_dev),
        dev_minor: rustix::fs::minor(st.st_dev),
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink,
        size_bytes: st.st_size.max(0) as u64,
        alloc_bytes: (st.st_blocks.max(0) as u64).saturating_mul(512),
        uid: st.st_uid,
        gid: Some(st.st_gid),
    }
}

impl Reader {
    /// stat through `/proc/PID/fd/N` (follows the magic link to the open file), from
    /// cached attributes.
    pub fn stat_fd(
        &mut self,
        pid: u32,
        fd_dir: &DirHandle,
        fd: &CStr,
    ) -> Result<FileStat, ReadError> {
        let key = || format!("{pid}/{}", fd.to_string_lossy());
        let path = || fd_dir.path.join(fd.to_string_lossy().as_ref());
        if let Some(meta) = self.backend.recorded() {
            return meta
                .fd_stat
                .get(&key())
                .copied()
                .ok_or_else(|| ReadError::NotFound { path: path() });
        }
        self.begin(&fd_dir.path, &fd.to_string_lossy())?;
        let res = statx_at(fd_dir, fd);
        self.end();
        let fs = res.map_err(|e| errno(&path(), e))?;
        if self.backend.keeps() {
            self.backend.keep(Kept::FdStat {
                key: key(),
                stat: fs,
            });
        }
        Ok(fs)
    }

    /// statvfs(2) of a mountpoint (host spelling), through `--root`. Not handed off: the
    /// caller runs all mounts on watched workers at once (`system::mounts`).
    pub fn statvfs(&mut self, mountpoint: &str) -> Result<FsSpace, ReadError> {
        if let Some(meta) = self.backend.recorded() {
            return meta
                .statvfs
                .get(mountpoint)
                .cloned()
                .ok_or_else(|| ReadError::NotFound {
                    path: PathBuf::from(mountpoint),
                });
        }
        let path = self.roots.host(Path::new(mountpoint));
        self.begin(&path, "")?;
        let v = rustix::fs::statvfs(&path);
        self.end();
        let v = v.map_err(|e| errno(&path, e))?;
        // A FUSE daemon can report anything: never overflow on its numbers.
        let fr = v.f_frsize.max(1);
        let space = FsSpace {
            size_bytes: v.f_blocks.saturating_mul(fr),
            used_bytes: v.f_blocks.saturating_sub(v.f_bfree).saturating_mul(fr),
            avail_bytes: v.f_bavail.saturating_mul(fr),
            inodes_total: v.f_files,
            inodes_free: v.f_ffree,
        };
        if self.backend.keeps() {
            self.backend.keep(Kept::Statvfs {
                mountpoint,
                space: space.clone(),
            });
        }
        Ok(space)
    }

    /// stat(2) by path, following links (a container log, `/var/log/containers/*`).
    pub fn stat_path(&mut self, path: &Path) -> Result<FileStat, ReadError> {
        let key = self.rel_key(path);
        if let Some(meta) = self.backend.recorded() {
            return meta
                .path_stat
                .get(&key)
                .copied()
                .ok_or_else(|| ReadError::NotFound {
                    path: path.to_path_buf(),
                });
        }
        if !self.watched() {
            let p = path.to_path_buf();
            return self.hand_off(move |r| r.stat_path(&p));
        }
        self.begin(path, "")?;
        let res = rustix::fs::stat(path).map_err(|e| errno(path, e));
        self.end();
        if let Err(e) = &res {
            self.note_refusal(path, e);
        }
        let fs = file_stat(&res?);
        if self.backend.keeps() {
            self.backend.keep(Kept::PathStat { key, stat: fs });
        }
        Ok(fs)
    }

    /// The last `max_bytes` of a regular file, and the offset they start at. Never reads
    /// anything but a regular file (opened `O_NONBLOCK`, checked with fstat). A capture
    /// keeps only this tail, plus the offset in its meta.
    pub fn read_tail(
        &mut self,
        path: &Path,
        max_bytes: u64,
    ) -> Result<(u64, Cow<'_, str>), ReadError> {
        self.check_refused(path)?;
        let key = self.rel_key(path);
        if let Some(meta) = self.backend.recorded() {
            let off = meta.tail_offset.get(&key).copied().unwrap_or(0);
            let cap = usize::try_from(max_bytes).unwrap_or(usize::MAX);
            self.read_path_capped(path, cap.max(1))?;
            return Ok((off, super::text(&self.buf)));
        }
        if !self.watched() {
            let p = path.to_path_buf();
            let (off, bytes) = self.hand_off(move |r| {
                let (off, _) = r.read_tail(&p, max_bytes)?;
                Ok((off, r.take_buf()))
            })?;
            self.buf = bytes;
            return Ok((off, super::text(&self.buf)));
        }
        self.begin(path, "")?;
        let res = self.tail_into_buf(path, max_bytes);
        self.end();
        if let Err(e) = &res {
            self.note_refusal(path, e);
        }
        let off = res?;
        if self.backend.keeps() {
            self.backend.keep(Kept::File {
                path,
                bytes: &self.buf,
            });
            self.backend.keep(Kept::TailOffset { key, offset: off });
        }
        Ok((off, super::text(&self.buf)))
    }

    fn tail_into_buf(&mut self, path: &Path, max_bytes: u64) -> Result<u64, ReadError> {
        let fd = rustix::fs::open(path, Self::open_flags(), Mode::empty())
            .map_err(|e| errno(path, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| errno(path, e))?;
        if !file_stat(&st).is_regular() {
            return Err(ReadError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("not a regular file"),
            });
        }
        let size = st.st_size.max(0) as u64;
        let off = size.saturating_sub(max_bytes);
        let want = usize::try_from(max_bytes.min(size)).unwrap_or(super::MAX_READ_BYTES);
        self.buf.clear();
        self.buf.resize(want.min(super::MAX_READ_BYTES), 0);
        let mut got = 0;
        while got < self.buf.len() {
            match rustix::io::pread(&fd, &mut self.buf[got..], off.saturating_add(got as u64)) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(errno(path, e)),
            }
        }
        self.buf.truncate(got);
        Ok(off)
    }

    /// How full a pipe is, through `/proc/PID/fd/N`: FIONREAD (bytes queued) and
    /// F_GETPIPE_SZ (capacity).
    ///
    /// Opening the link adds a reader to the pipe for a moment. That is harmless only
    /// because callers probe pipes whose writer is blocked in pipe_write, which implies a
    /// reader already exists (without one the write fails with EPIPE): our extra reader
    /// neither wakes a writer waiting in open(2) nor leaves one to SIGPIPE when we close.
    /// The link is checked to be a pipe *before* the open (stat through the link, from
    /// cached attributes), so a device the fd was swapped for is never opened, and again
    /// on the opened fd, which must be the same inode. `O_NONBLOCK` keeps the open from
    /// waiting for a writer.
    pub fn pipe_fill(&mut self, pid: u32, fd: i32) -> Result<PipeFill, ReadError> {
        let key = format!("{pid}/{fd}");
        if let Some(meta) = self.backend.recorded() {
            return meta
                .pipe_fill
                .get(&key)
                .copied()
                .ok_or_else(|| ReadError::NotFound {
                    path: self.roots.fd_link(pid, fd),
                });
        }
        let path = self.roots.fd_link(pid, fd);
        let not_a_pipe = |path: PathBuf| ReadError::Io {
            path,
            source: std::io::Error::other("not a pipe"),
        };
        self.begin(&path, "")?;
        let res = (|| {
            let before = rustix::fs::statx(
                rustix::fs::CWD,
                &path,
                AtFlags::STATX_DONT_SYNC,
                StatxFlags::TYPE | StatxFlags::INO,
            )
            .map_err(|e| errno(&path, e))?;
            if u32::from(before.stx_mode) & libc::S_IFMT != libc::S_IFIFO {
                return Err(not_a_pipe(path.clone()));
            }
            let f = rustix::fs::open(
                &path,
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
                Mode::empty(),
            )
            .map_err(|e| errno(&path, e))?;
            let st = rustix::fs::fstat(&f).map_err(|e| errno(&path, e))?;
            if !file_stat(&st).is_fifo() || st.st_ino != before.stx_ino {
                return Err(not_a_pipe(path.clone()));
            }
            Ok(PipeFill {
                fd,
                ino: Some(st.st_ino),
                queued_bytes: rustix::io::ioctl_fionread(&f).ok(),
                capacity_bytes: rustix::pipe::fcntl_getpipe_size(&f).ok().map(|v| v as u64),
            })
        })();
        self.end();
        let fill = res?;
        if self.backend.keeps() {
            self.backend.keep(Kept::PipeFill { key, fill });
        }
        Ok(fill)
    }
}
