//! Where a lab scenario runs: a loop-device ext4 filesystem of its own (root), or a
//! directory the user names. Everything it creates lives under one base directory that is
//! removed at the end; the loop device is detached and any device setting restored. A
//! `lab.json` in the base directory lets `iowhy lab cleanup` finish the job if the lab
//! was killed with SIGKILL.
//!
//! Nothing here may be turned against the host by someone who can write to /var/tmp:
//! the base directory is created fresh (mode 0700, an unpredictable name, never an
//! existing one), and every file in it is created exclusively or opened without
//! following links. What `lab cleanup` trusts is checked in [`super::orphans`].

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
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
    #[serde(default)]
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
    /// True once undone. A Stage read from a lab.json starts disarmed (true): its Drop
    /// must not act on a file nobody has vetted; `lab cleanup` arms it after the checks.
    #[serde(skip, default = "disarmed")]
    cleaned: bool,
}

fn disarmed() -> bool {
    true
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

    /// A new directory `iowhy-lab-PID-RANDOM` in `parent`, mode 0700, that we created:
    /// an existing one (planted by another user, say) is never adopted.
    fn new_base(parent: &Path) -> Result<PathBuf> {
        for _ in 0..8 {
            let base = parent.join(format!(
                "{LAB_PREFIX}{}-{:016x}",
                std::process::id(),
                random_u64()?
            ));
            match private_dir(&base) {
                Ok(()) => return Ok(base),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", base.display())),
            }
        }
        bail!(
            "could not create a new lab directory in {}",
            parent.display()
        )
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
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&image)
            .with_context(|| format!("creating {}", image.display()))?;
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
        private_dir(&st.dir).with_context(|| format!("creating {}", st.dir.display()))?;
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

    /// Restore `path` to `value` at cleanup, whatever it holds now.
    pub fn restore_sysfs_to(&mut self, path: &Path, value: &str) {
        self.restore.push((path.to_path_buf(), value.to_string()));
        self.save();
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

    /// lab.json: mode 0600, never through a link (what `lab cleanup` requires).
    pub(super) fn save(&self) {
        use std::io::Write;
        let Ok(j) = serde_json::to_vec_pretty(self) else {
            return;
        };
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.base.join("lab.json"));
        if let Ok(mut f) = opened {
            let _ = rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(0o600));
            let _ = f.write_all(&j);
        }
    }

    /// Make a Stage read from a vetted lab.json undo things (at `cleanup` or drop).
    pub(super) fn arm(&mut self) {
        self.cleaned = false;
    }

    /// Undo everything, in reverse order. Safe to call twice. lab.json is rewritten after
    /// each step, so that a later `lab cleanup` never repeats one (a loop device number
    /// detached here may belong to someone else by then); whatever could not be undone
    /// stays in it, and the base directory is kept for `lab cleanup` to find.
    pub fn cleanup(&mut self) -> Vec<String> {
        let mut done = Vec::new();
        if self.cleaned {
            return done;
        }
        self.cleaned = true;
        if let Some(dir) = self.frozen.clone() {
            match super::frozen::thaw(&dir) {
                Ok(thawed) => {
                    if thawed {
                        done.push(format!("thawed {}", dir.display()));
                    }
                    self.frozen = None;
                }
                Err(e) => done.push(format!("could not thaw {}: {e}", dir.display())),
            }
            self.save();
        }
        if self.frozen.is_some() {
            // Everything below would wait for the frozen filesystem.
            done.push(format!(
                "kept {} for `iowhy lab cleanup`",
                self.base.display()
            ));
            return done;
        }
        for c in std::mem::take(&mut self.ctr) {
            done.extend(super::container::remove(&c));
            self.save();
        }
        while let Some((p, v)) = self.restore.pop() {
            match std::fs::write(&p, &v) {
                Ok(()) => done.push(format!("restored {} = {v}", p.display())),
                Err(e) => done.push(format!("could not restore {} = {v}: {e}", p.display())),
            }
            self.save();
        }
        let mut left = Vec::new();
        for cg in std::mem::take(&mut self.cgroups).into_iter().rev() {
            match remove_cgroup(&cg) {
                Ok(()) => done.push(format!("removed cgroup {}", cg.display())),
                Err(e) => {
                    done.push(format!("could not remove cgroup {}: {e}", cg.display()));
                    left.push(cg);
                }
            }
        }
        self.cgroups = left;
        self.save();
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
            if self.is_mountpoint() {
                done.push(format!("could not unmount {}", self.dir.display()));
            } else {
                self.mounted = false;
                done.push(format!("unmounted {}", self.dir.display()));
            }
            self.save();
        }
        if let (Some(dev), false) = (self.loop_dev.clone(), self.mounted) {
            if self.image.as_deref().is_some_and(|i| loop_backs(&dev, i)) {
                match run(Command::new("losetup").arg("-d").arg(&dev)) {
                    Ok(_) => {
                        done.push(format!("detached {dev}"));
                        self.loop_dev = None;
                    }
                    Err(e) => done.push(format!("could not detach {dev}: {e}")),
                }
            } else {
                // Detached already (or never attached): the number may be someone else's now.
                self.loop_dev = None;
            }
            self.save();
        }
        if self.mounted
            || self.loop_dev.is_some()
            || !self.cgroups.is_empty()
            || self.is_mountpoint()
        {
            // Removing the tree could descend into the filesystem: keep it, and lab.json.
            done.push(format!(
                "kept {} for `iowhy lab cleanup`",
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

/// Is `dev` (`/dev/loopN`) backed by `image`? Its sysfs `backing_file` says, by path.
pub(super) fn loop_backs(dev: &str, image: &Path) -> bool {
    let Some(name) = dev.strip_prefix("/dev/") else {
        return false;
    };
    let p = crate::roots::Roots::default().sys(&format!("block/{name}/loop/backing_file"));
    let Ok(backing) = std::fs::read_to_string(p) else {
        return false;
    };
    let backing = Path::new(backing.trim_end_matches('\n'));
    backing == image || std::fs::canonicalize(image).is_ok_and(|c| c == backing)
}

/// rmdir a cgroup, retrying for a moment: just after its last process was reaped the
/// kernel may still answer EBUSY.
fn remove_cgroup(cg: &Path) -> std::io::Result<()> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match std::fs::remove_dir(cg) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if std::time::Instant::now() >= until => return Err(e),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// Eight random bytes from the kernel (getrandom(2)), for names nobody can guess.
fn random_u64() -> Result<u64> {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        return Err(std::io::Error::last_os_error()).context("getrandom");
    }
    Ok(u64::from_ne_bytes(b))
}

/// mkdir(2) with mode 0700, failing if anything exists at `p`; then check that what is
/// there is a directory we own that nobody else may enter.
pub(super) fn private_dir(p: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(p)?;
    let md = std::fs::symlink_metadata(p)?;
    if !md.file_type().is_dir()
        || md.uid() != rustix::process::geteuid().as_raw()
        || md.mode() & 0o077 != 0
    {
        return Err(std::io::Error::other(format!(
            "{} is not a private directory of ours",
            p.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_dir_is_never_an_existing_one_nor_a_link() {
        let t = tempfile::tempdir().unwrap();
        let fresh = t.path().join("fresh");
        private_dir(&fresh).unwrap();
        let md = std::fs::symlink_metadata(&fresh).unwrap();
        assert_eq!(md.mode() & 0o777, 0o700);
        // Planted first: refused, not adopted.
        let planted = t.path().join("planted");
        std::fs::create_dir(&planted).unwrap();
        assert!(private_dir(&planted).is_err());
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        assert!(private_dir(&link).is_err());
    }

    #[test]
    fn lab_names_are_not_predictable() {
        let t = tempfile::tempdir().unwrap();
        let a = Stage::new_base(t.path()).unwrap();
        let b = Stage::new_base(t.path()).unwrap();
        assert_ne!(a, b, "two labs of one pid get different names");
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        let prefix = format!("{LAB_PREFIX}{}-", std::process::id());
        assert!(name.starts_with(&prefix), "{name}");
        assert_eq!(name.len(), prefix.len() + 16, "{name}");
    }

    #[test]
    fn lab_json_is_written_0600_and_never_through_a_link() {
        let t = tempfile::tempdir().unwrap();
        let base = Stage::new_base(t.path()).unwrap();
        let mut st = Stage::empty(base.clone(), base.clone());
        st.save();
        let md = std::fs::symlink_metadata(base.join("lab.json")).unwrap();
        assert_eq!(md.mode() & 0o777, 0o600);
        let victim = t.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::remove_file(base.join("lab.json")).unwrap();
        std::os::unix::fs::symlink(&victim, base.join("lab.json")).unwrap();
        st.save();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        st.cleaned = true;
    }
}
