//! Where a lab scenario runs: a loop-device ext4 filesystem of its own (root), or a
//! directory the user names. Everything it creates lives under one base directory that is
//! removed at the end; the loop device is detached and any device setting restored. A
//! `lab.json` in the base directory lets `iowhy lab cleanup` finish the job if the lab
//! was killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Labs live here: on disk (not tmpfs), and outside any project directory.
pub const LAB_PARENT: &str = "/var/tmp";
pub const LAB_PREFIX: &str = "iowhy-lab-";

#[derive(Debug, Serialize, Deserialize)]
pub struct Stage {
    /// The lab's own directory; removed at the end.
    pub base: PathBuf,
    /// Where the scenario's files go (the loop filesystem's mountpoint, or `base`).
    pub dir: PathBuf,
    /// `/dev/loopN` when the lab made its own filesystem.
    pub loop_dev: Option<String>,
    pub image: Option<PathBuf>,
    pub mounted: bool,
    pub owner_pid: u32,
    /// sysfs files changed (path, old value), restored at cleanup.
    pub restore: Vec<(PathBuf, String)>,
    /// containerd containers the lab started, removed at cleanup (before the unmount:
    /// their shims hold files on it).
    #[serde(default)]
    pub ctr: Vec<super::container::CtrContainer>,
    /// cgroups the lab made (removed once its processes are gone).
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// The mountpoint the lab froze (frozen-fs), thawed first at cleanup: nothing else
    /// can be undone while it is frozen (its writers cannot even die).
    #[serde(default)]
    pub frozen: Option<PathBuf>,
    #[serde(skip)]
    cleaned: bool,
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Stage {
    fn empty(base: PathBuf, dir: PathBuf) -> Stage {
        Stage {
            base,
            dir,
            loop_dev: None,
            image: None,
            mounted: false,
            owner_pid: std::process::id(),
            restore: Vec::new(),
            ctr: Vec::new(),
            cgroups: Vec::new(),
            frozen: None,
            cleaned: false,
        }
    }

    fn new_base(parent: &Path) -> Result<PathBuf> {
        let base = parent.join(format!("{LAB_PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
        Ok(base)
    }

    /// A fresh ext4 filesystem of `size` bytes on a loop device (root only).
    pub fn loop_fs(size: u64, direct_io: bool) -> Result<Stage> {
        if !is_root() {
            bail!(
                "a lab filesystem needs root (loop device + mount); run as root or pass --dir DIR"
            );
        }
        let base = Stage::new_base(Path::new(LAB_PARENT))?;
        let mut st = Stage::empty(base.clone(), base.join("mnt"));
        st.save();
        let image = base.join("disk.img");
        let f = std::fs::File::create(&image)?;
        f.set_len(size)?;
        drop(f);
        st.image = Some(image.clone());
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"])
            .arg(&image))
        .context("mkfs.ext4 (install e2fsprogs)")?;
        let mut losetup = Command::new("losetup");
        losetup.args(["--find", "--show"]);
        if direct_io {
            losetup.arg("--direct-io=on");
        }
        let dev = run(losetup.arg(&image)).context("losetup (install util-linux)")?;
        st.loop_dev = Some(dev.clone());
        st.save();
        std::fs::create_dir_all(&st.dir)?;
        rustix::mount::mount(
            dev.as_str(),
            &st.dir,
            "ext4",
            rustix::mount::MountFlags::NOATIME,
            None,
        )
        .with_context(|| format!("mounting {dev} on {}", st.dir.display()))?;
        st.mounted = true;
        st.save();
        Ok(st)
    }

    /// Use a directory the user chose: the lab makes its own subdirectory there.
    pub fn in_dir(parent: &Path) -> Result<Stage> {
        if !parent.is_dir() {
            bail!("{}: not a directory", parent.display());
        }
        let base = Stage::new_base(parent)?;
        let st = Stage::empty(base.clone(), base);
        st.save();
        Ok(st)
    }

    /// The loop device's name without `/dev/` (`loop3`).
    pub fn device_name(&self) -> Option<String> {
        self.loop_dev
            .as_ref()
            .map(|d| d.trim_start_matches("/dev/").to_string())
    }

    /// A cgroup for the lab's processes in the hierarchy that limits I/O, with `line`
    /// written to the limit file (`io.max` on v2, `blkio.throttle.write_bps_device` on v1).
    pub fn io_cgroup(
        &mut self,
        roots: &crate::roots::Roots,
        major: u32,
        minor: u32,
        write_bps: u64,
    ) -> Result<PathBuf> {
        use crate::act::cgroup::{self, Hierarchy, Limits};
        let (h, mount) = cgroup::detect(roots)?;
        let dir = mount.join(format!("{LAB_PREFIX}{}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        self.cgroups.push(dir.clone());
        self.save();
        let limits = Limits {
            write_bps: Some(write_bps),
            ..Default::default()
        };
        match h {
            Hierarchy::V1 => {
                for (file, line) in cgroup::v1_lines(major, minor, &limits) {
                    std::fs::write(dir.join(file), line)?;
                }
            }
            Hierarchy::V2 => std::fs::write(
                dir.join("io.max"),
                cgroup::io_max_line(major, minor, &limits),
            )?,
        }
        Ok(dir)
    }

    /// Change a sysfs value for the lab's lifetime (restored at cleanup).
    pub fn set_sysfs(&mut self, path: &Path, value: &str) -> Result<()> {
        let old = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        std::fs::write(path, value)
            .with_context(|| format!("writing {value} to {}", path.display()))?;
        self.restore
            .push((path.to_path_buf(), old.trim().to_string()));
        self.save();
        Ok(())
    }

    /// Write `lab.json` now (after recording something to undo).
    pub fn persist(&self) {
        self.save();
    }

    fn save(&self) {
        if let Ok(j) = serde_json::to_vec_pretty(self) {
            let _ = std::fs::write(self.base.join("lab.json"), j);
        }
    }

    /// Undo everything, in reverse order. Safe to call twice.
    pub fn cleanup(&mut self) -> Vec<String> {
        let mut done = Vec::new();
        if self.cleaned {
            return done;
        }
        self.cleaned = true;
        if let Some(dir) = self.frozen.take() {
            match super::frozen::thaw(&dir) {
                Ok(true) => done.push(format!("thawed {}", dir.display())),
                Ok(false) => {}
                Err(e) => done.push(format!("could not thaw {}: {e}", dir.display())),
            }
        }
        for c in std::mem::take(&mut self.ctr) {
            done.extend(super::container::remove(&c));
        }
        for (p, v) in self.restore.drain(..).rev() {
            let _ = std::fs::write(&p, &v);
            done.push(format!("restored {} = {v}", p.display()));
        }
        for cg in self.cgroups.drain(..).rev() {
            // Empty by now: the lab's workers were stopped first.
            if std::fs::remove_dir(&cg).is_ok() {
                done.push(format!("removed cgroup {}", cg.display()));
            }
        }
        if self.mounted {
            // Writers are gone or going (after `lab cleanup`, the killed lab's workers die
            // only now, once thawed): retry for a moment, then a lazy detach, not a leak.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
            while rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::empty())
                == Err(rustix::io::Errno::BUSY)
                && std::time::Instant::now() < until
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if self.is_mountpoint() {
                let _ = rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::DETACH);
            }
            self.mounted = false;
            done.push(format!("unmounted {}", self.dir.display()));
        }
        if let Some(dev) = self.loop_dev.take() {
            let _ = Command::new("losetup").arg("-d").arg(&dev).output();
            done.push(format!("detached {dev}"));
        }
        if self.is_mountpoint() {
            // Removing the tree would descend into the filesystem (and wait forever if it
            // is still frozen): leave it, with lab.json, for `lab cleanup`.
            done.push(format!(
                "{} is still mounted; kept {}",
                self.dir.display(),
                self.base.display()
            ));
        } else if std::fs::remove_dir_all(&self.base).is_ok() {
            done.push(format!("removed {}", self.base.display()));
        }
        done
    }

    /// True while a filesystem other than the base's is mounted on `dir`.
    fn is_mountpoint(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (
            std::fs::symlink_metadata(&self.dir),
            std::fs::symlink_metadata(&self.base),
        ) {
            (Ok(d), Ok(b)) => d.dev() != b.dev(),
            _ => false,
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Finish labs whose owner died (SIGKILL): their base directories under /var/tmp.
pub fn cleanup_orphans() -> Vec<String> {
    let mut done = Vec::new();
    let Ok(rd) = std::fs::read_dir(LAB_PARENT) else {
        return done;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(LAB_PREFIX) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path().join("lab.json")) else {
            continue;
        };
        let Ok(mut st) = serde_json::from_str::<Stage>(&text) else {
            continue;
        };
        let alive = rustix::process::test_kill_process(
            rustix::process::Pid::from_raw(st.owner_pid as i32)
                .unwrap_or(rustix::process::Pid::INIT),
        )
        .is_ok();
        if alive && st.owner_pid != std::process::id() {
            continue;
        }
        done.extend(st.cleanup());
    }
    done
}
