//! tracefs, where tracepoint ids and record layouts live: found, or mounted for the run
//! (and unmounted after) when root needs to; and the online CPUs to open events on.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

use crate::parse::tracefs::{self, Format};
use crate::roots::Roots;

/// Where tracefs is, mounting it (and unmounting at the end) when root needs to.
pub struct Tracefs {
    pub path: PathBuf,
    mounted_by_us: bool,
}

impl Tracefs {
    pub fn find_or_mount(roots: &Roots) -> Result<Tracefs> {
        for p in roots.tracefs_candidates() {
            if p.join("events").is_dir() {
                return Ok(Tracefs {
                    path: p,
                    mounted_by_us: false,
                });
            }
        }
        let p = roots.tracefs_candidates().remove(0);
        rustix::mount::mount(
            "nodev",
            &p,
            "tracefs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .with_context(|| {
            format!(
                "tracefs is not mounted and mounting it on {} failed",
                p.display()
            )
        })?;
        Ok(Tracefs {
            path: p,
            mounted_by_us: true,
        })
    }

    /// Whether this run mounted it (and so must unmount it at the end).
    pub fn mounted_by_us(&self) -> bool {
        self.mounted_by_us
    }

    pub fn format(&self, group: &str, name: &str) -> Result<Format> {
        let p = self.path.join(format!("events/{group}/{name}/format"));
        let text = std::fs::read_to_string(&p).with_context(|| p.display().to_string())?;
        tracefs::parse(&text).map_err(|e| anyhow!("{}: {e}", p.display()))
    }
}

/// Unmounted with the session: normal ends and SIGINT/SIGTERM/SIGHUP alike, as those
/// only set the stop flag and the session is dropped on the way out. After SIGKILL (no
/// Drop runs) it stays mounted, and that is harmless: it is the standard mount point the
/// kernel documents, where any tracing tool would mount it, and the next iowhy finds it
/// there instead of mounting again.
impl Drop for Tracefs {
    fn drop(&mut self) {
        if self.mounted_by_us {
            let _ = rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// Online CPUs from `/sys/devices/system/cpu/online` (`0-3,8-11`).
pub fn online_cpus(roots: &Roots) -> Vec<i32> {
    let text = std::fs::read_to_string(roots.sys("devices/system/cpu/online"))
        .unwrap_or_else(|_| "0".into());
    let mut v = Vec::new();
    for part in text.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    v.extend((a..=b).take(8192usize.saturating_sub(v.len()))); // a fake `0-2147483647` must not allocate 8 GiB
                }
            }
            None => {
                if let Ok(a) = part.parse() {
                    v.push(a);
                }
            }
        }
    }
    v
}
