//! The capture backend ("tee"): read live and copy each file, listing, link and syscall
//! result into a fixture tree, so that a fixture holds exactly what the reader read.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::replay::{FixtureMeta, KEEP, META_FILE};
use super::{Backend, Kept};
use crate::roots::Roots;

pub(super) struct Capture {
    roots: Roots,
    dir: PathBuf,
    meta: Mutex<FixtureMeta>,
}

impl Capture {
    pub(super) fn new(roots: Roots, dir: PathBuf) -> Self {
        Capture {
            roots,
            dir,
            meta: Mutex::new(FixtureMeta::default()),
        }
    }

    /// Where a live path lands inside the capture directory.
    fn dst(&self, path: &Path) -> Option<PathBuf> {
        let r = &self.roots;
        for (root, sub) in [(&r.proc, "proc"), (&r.sys, "sys"), (&r.root, "root")] {
            if let Ok(rel) = path.strip_prefix(root) {
                return Some(self.dir.join(sub).join(rel));
            }
        }
        None
    }

    fn meta(&self) -> std::sync::MutexGuard<'_, FixtureMeta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backend for Capture {
    fn keeps(&self) -> bool {
        true
    }

    fn keep(&self, what: Kept<'_>) {
        match what {
            Kept::File { path, bytes } => {
                if let Some(dst) = self.dst(path) {
                    write_capture_file(&dst, bytes);
                }
            }
            Kept::Denied { key } => {
                self.meta().denied.insert(key);
            }
            Kept::Listing { dir, names } => {
                // Listings matter for their names: make sure each entry exists in the
                // capture (as an empty directory unless a later read or readlink fills it).
                if let Some(dst) = self.dst(dir) {
                    for n in names {
                        let p = dst.join(n);
                        if std::fs::symlink_metadata(&p).is_err() {
                            let _ = std::fs::create_dir_all(&p);
                            let _ = std::fs::write(p.join(KEEP), b"");
                        }
                    }
                }
            }
            Kept::Link { path, target } => {
                if let Some(dst) = self.dst(path) {
                    if let Some(parent) = dst.parent() {
                        let _ = std::fs::create_dir_all(parent);
                        let _ = std::fs::remove_file(parent.join(KEEP));
                    }
                    clear_placeholder(&dst);
                    // The link's real bytes, not their encoding in a String.
                    let raw = crate::hoststr::to_bytes(target);
                    let _ = std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&raw), &dst);
                }
            }
            Kept::FdStat { key, stat } => {
                self.meta().fd_stat.insert(key, stat);
            }
            Kept::Statvfs { mountpoint, space } => {
                self.meta().statvfs.insert(mountpoint.to_string(), space);
            }
            Kept::PathStat { key, stat } => {
                self.meta().path_stat.insert(key, stat);
            }
            Kept::PipeFill { key, fill } => {
                self.meta().pipe_fill.insert(key, fill);
            }
            Kept::TailOffset { key, offset } => {
                self.meta().tail_offset.insert(key, offset);
            }
        }
    }

    fn finish(
        &self,
        wall_unix_ms: i64,
        clk_tck: u64,
        euid: u32,
        self_pid: Option<u32>,
    ) -> std::io::Result<()> {
        let mut meta = self.meta();
        meta.wall_unix_ms = wall_unix_ms;
        meta.clk_tck = clk_tck;
        meta.euid = euid;
        meta.self_pid = self_pid;
        std::fs::write(self.dir.join(META_FILE), serde_json::to_vec_pretty(&*meta)?)
    }
}

/// Make room for a file or link where a listing left a placeholder directory.
fn clear_placeholder(dst: &Path) {
    if dst.is_dir() {
        let _ = std::fs::remove_file(dst.join(KEEP));
        let _ = std::fs::remove_dir(dst);
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
