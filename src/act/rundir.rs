//! iowhy's own state in `/run/iowhy`: what a throttle changed (`throttle-PID.json`) and
//! what a guardian keeps stopped (`paused/`). Root acts on what these files say — writes
//! the cgroup paths a throttle state names, resumes the pid a pause record names — so they
//! are obeyed only from a directory iowhy made itself (0700, owned by root, not writable
//! by group or others) and only when the file is a regular root-owned one, not writable
//! by group or others, reached without following a symlink.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use rustix::fs::{Mode, OFlags};

use crate::roots::Roots;

/// A state file larger than this is not iowhy's.
const MAX_STATE_BYTES: u64 = 1 << 20;

pub fn dir(roots: &Roots) -> PathBuf {
    roots.host(Path::new("/run/iowhy"))
}

/// Why a directory or file cannot be trusted, if it cannot: not root's, or writable by
/// group or others (anyone could have put what it says there).
fn untrusted(md: &std::fs::Metadata) -> Option<String> {
    if md.uid() != 0 {
        return Some(format!("owned by uid {}, not root", md.uid()));
    }
    if md.mode() & 0o022 != 0 {
        return Some(format!(
            "writable by group or others (mode {:o})",
            md.mode() & 0o7777
        ));
    }
    None
}

/// Make `p` (and its parents up to /run) as 0700 directories, or check the existing
/// ones: each must be a real directory (not a symlink), root's, and not writable by group
/// or others.
pub fn ensure(p: &Path) -> Result<()> {
    if let Some(parent) = p.parent().filter(|q| q.ends_with("iowhy")) {
        ensure(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => bail!("creating {}: {e}", p.display()),
    }
    let md = std::fs::symlink_metadata(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    if !md.is_dir() {
        bail!(
            "refusing to use {}: it is not a directory (a symlink?)",
            p.display()
        );
    }
    if let Some(why) = untrusted(&md) {
        bail!("refusing to use {}: {why}", p.display());
    }
    Ok(())
}

/// The text of a state file, if it may be obeyed (see the module doc); the error says why
/// not. A file that does not exist is `Ok(None)`.
pub fn read_trusted(p: &Path) -> Result<Option<String>> {
    if let Some(d) = p.parent() {
        match std::fs::symlink_metadata(d) {
            Ok(md) if !md.is_dir() => bail!("refusing {}: its directory is not one", p.display()),
            Ok(md) => {
                if let Some(why) = untrusted(&md) {
                    bail!("refusing {}: its directory is {why}", p.display());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => bail!("{}: {e}", d.display()),
        }
    }
    let fd = match rustix::fs::open(
        p,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(rustix::io::Errno::LOOP) => bail!("refusing {}: it is a symlink", p.display()),
        Err(e) => bail!("{}: {e}", p.display()),
    };
    let f = std::fs::File::from(fd);
    let md = f.metadata()?;
    if !md.is_file() {
        bail!("refusing {}: not a regular file", p.display());
    }
    if let Some(why) = untrusted(&md) {
        bail!("refusing {}: {why}", p.display());
    }
    let mut text = String::new();
    f.take(MAX_STATE_BYTES).read_to_string(&mut text)?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_roots_own_files_in_a_private_dir_are_obeyed() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("iowhy");
        let paused = run.join("paused");
        ensure(&paused).unwrap();
        for p in [&run, &paused] {
            let md = std::fs::metadata(p).unwrap();
            assert_eq!(md.mode() & 0o7777, 0o700, "{}", p.display());
        }
        let f = run.join("throttle-42.json");
        assert!(read_trusted(&f).unwrap().is_none(), "absent");
        std::fs::write(&f, "{}").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_trusted(&f).unwrap().as_deref(), Some("{}"));
        // Another user's file: refused.
        std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
        let e = read_trusted(&f).unwrap_err().to_string();
        assert!(e.contains("uid 65534"), "{e}");
        std::os::unix::fs::chown(&f, Some(0), None).unwrap();
        // Writable by others: refused.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o602)).unwrap();
        assert!(read_trusted(&f).is_err());
        // A symlink to a root-owned file: refused.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let l = run.join("throttle-43.json");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        assert!(
            read_trusted(&l)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
        // A directory others may write to is not used at all.
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(ensure(&paused).is_err());
        assert!(read_trusted(&f).is_err());
    }
}
