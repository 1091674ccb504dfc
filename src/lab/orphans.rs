//! `iowhy lab cleanup`: finish labs whose owner died (SIGKILL), from their `lab.json`.
//!
//! Root acts on what that file says (unmount, rm -rf, sysfs writes, containers), so a file
//! is obeyed only if a lab of ours could have written it: owned by us (root, or the
//! invoking user), mode 0600, not a link, in a directory owned by us with mode 0700 that
//! is the `base` it names; and every path in it is one a lab makes — inside that base, the
//! sysfs files of the lab's own loop device, the lab's own cgroup and container. Anything
//! else is ignored as a whole, and said so.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::container::NAMESPACE;
use super::stage::{LAB_PARENT, LAB_PREFIX, Stage, loop_backs};

/// Larger than any lab.json a lab writes.
const MAX_STATE_BYTES: u64 = 1 << 20;
/// The sysfs files of a bdi that a lab changes (buffered-flood).
const BDI_FILES: &[&str] = &["strict_limit", "max_bytes", "max_ratio"];

#[derive(Debug, Default)]
pub struct Outcome {
    /// What was undone.
    pub done: Vec<String>,
    /// `lab.json` files not obeyed, each with the reason.
    pub ignored: Vec<String>,
}

/// Clean up every dead lab found in /var/tmp and in `$TMPDIR` (non-root labs).
pub fn cleanup_orphans() -> Outcome {
    let mut out = Outcome::default();
    let mut parents = vec![PathBuf::from(LAB_PARENT)];
    let tmp = std::env::temp_dir();
    if tmp != parents[0] {
        parents.push(tmp);
    }
    for parent in parents {
        let Ok(rd) = std::fs::read_dir(&parent) else {
            continue;
        };
        for e in rd.flatten() {
            if !e.file_name().to_string_lossy().starts_with(LAB_PREFIX) {
                continue;
            }
            let dir = e.path();
            match load(&dir) {
                Ok(Some(mut st)) => out.done.extend(st.cleanup()),
                Ok(None) => {}
                Err(why) => out
                    .ignored
                    .push(format!("{}/lab.json: ignored: {why}", dir.display())),
            }
        }
    }
    out
}

/// The lab state in `dir`, if it is ours and its lab is dead; `Ok(None)`: nothing to do
/// (no lab.json, or its lab still runs); `Err`: why it is not obeyed.
fn load(dir: &Path) -> Result<Option<Stage>, String> {
    let me = rustix::process::geteuid().as_raw();
    let md = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !md.file_type().is_dir() {
        return Err("not a directory (a symlink?)".into());
    }
    if md.uid() != me {
        return Err(format!(
            "its directory belongs to uid {}, not to us (uid {me})",
            md.uid()
        ));
    }
    if md.mode() & 0o7777 != 0o700 {
        return Err(format!(
            "its directory has mode {:o}, not 700",
            md.mode() & 0o7777
        ));
    }
    let path = dir.join("lab.json");
    // O_NONBLOCK: a FIFO planted there must not hang us (it is refused below anyway).
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("it is a symbolic link".into());
        }
        Err(e) => return Err(e.to_string()),
    };
    let fmd = f.metadata().map_err(|e| e.to_string())?;
    if !fmd.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if fmd.uid() != me {
        return Err(format!("owned by uid {}, not by us (uid {me})", fmd.uid()));
    }
    if fmd.mode() & 0o7777 != 0o600 {
        return Err(format!("mode {:o}, not 600", fmd.mode() & 0o7777));
    }
    if fmd.len() > MAX_STATE_BYTES {
        return Err(format!("{} bytes: too large", fmd.len()));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut &f, &mut text).map_err(|e| e.to_string())?;
    let st: Stage = serde_json::from_str(&text).map_err(|e| format!("does not parse: {e}"))?;
    if st.base != dir {
        return Err(format!(
            "its base {} is not the directory it was read from",
            st.base.display()
        ));
    }
    let alive = rustix::process::Pid::from_raw(st.owner_pid as i32)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
    if alive && st.owner_pid != std::process::id() {
        return Ok(None);
    }
    vet(&st, &Facts::live(&st))?;
    let mut st = st;
    st.arm();
    Ok(Some(st))
}

/// What the checks need from the machine, gathered apart so that `vet` stays pure.
struct Facts {
    /// `MAJ:MIN` of the loop device, when it is backed by the lab's disk.img.
    loop_devno: Option<String>,
    /// `<cgroup mount>/iowhy-lab-<owner pid>`: the only cgroup a lab makes.
    lab_cgroup: Option<PathBuf>,
    sys_root: PathBuf,
}

impl Facts {
    fn live(st: &Stage) -> Facts {
        let roots = crate::roots::Roots::default();
        let loop_devno = match (&st.loop_dev, &st.image) {
            (Some(dev), Some(img)) if loop_backs(dev, img) => dev
                .strip_prefix("/dev/")
                .and_then(|n| std::fs::read_to_string(roots.sys(&format!("block/{n}/dev"))).ok())
                .map(|s| s.trim().to_string()),
            _ => None,
        };
        let lab_cgroup = crate::act::cgroup::detect(&roots)
            .ok()
            .map(|(_, m)| m.join(format!("{LAB_PREFIX}{}", st.owner_pid)));
        Facts {
            loop_devno,
            lab_cgroup,
            sys_root: roots.sys(""),
        }
    }
}

/// Every path and name in `st` is one a lab of ours makes, given `facts`.
fn vet(st: &Stage, facts: &Facts) -> Result<(), String> {
    let base = &st.base;
    if st.dir != *base && st.dir != base.join("mnt") {
        return Err(format!("its dir {} is not in its base", st.dir.display()));
    }
    if st
        .image
        .as_ref()
        .is_some_and(|i| *i != base.join("disk.img"))
    {
        return Err("its image is not the base's disk.img".into());
    }
    if st.frozen.as_ref().is_some_and(|f| *f != st.dir) {
        return Err("the frozen path is not the lab's mountpoint".into());
    }
    if let Some(dev) = &st.loop_dev {
        let n = dev.strip_prefix("/dev/loop").unwrap_or("");
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{dev} is not a loop device"));
        }
    }
    for (p, v) in &st.restore {
        let allowed = facts.loop_devno.as_ref().is_some_and(|devno| {
            BDI_FILES
                .iter()
                .any(|f| *p == facts.sys_root.join(format!("class/bdi/{devno}/{f}")))
        });
        if !allowed {
            return Err(format!(
                "{} is not a setting of the lab's own loop device",
                p.display()
            ));
        }
        if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{v:?} is not a value a lab restores"));
        }
    }
    for cg in &st.cgroups {
        if facts.lab_cgroup.as_ref() != Some(cg) {
            return Err(format!("{} is not the lab's cgroup", cg.display()));
        }
    }
    for c in &st.ctr {
        if c.namespace != NAMESPACE || c.id != format!("iowhy-flood-{}", st.owner_pid) {
            return Err(format!(
                "container {}/{} is not the lab's",
                c.namespace, c.id
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(json: &str) -> Stage {
        serde_json::from_str(json).expect("stage json")
    }

    fn facts() -> Facts {
        Facts {
            loop_devno: Some("7:3".into()),
            lab_cgroup: Some(PathBuf::from("/sys/fs/cgroup/iowhy-lab-42")),
            sys_root: PathBuf::from("/sys"),
        }
    }

    const BASE: &str = r#""base":"/var/tmp/iowhy-lab-42-ab","owner_pid":42,"mounted":true"#;

    #[test]
    fn a_stage_read_from_a_file_does_nothing_when_dropped() {
        // Refused files are dropped: their Drop must not undo what they name.
        let victim = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(victim.path(), "precious").unwrap();
        let st = stage(&format!(
            r#"{{{BASE},"dir":"/nonexistent","restore":[["{}","pwned"]]}}"#,
            victim.path().display()
        ));
        drop(st);
        assert_eq!(std::fs::read_to_string(victim.path()).unwrap(), "precious");
    }

    #[test]
    fn what_a_lab_writes_passes() {
        let st = stage(&format!(
            r#"{{{BASE},"dir":"/var/tmp/iowhy-lab-42-ab/mnt","loop_dev":"/dev/loop3",
            "image":"/var/tmp/iowhy-lab-42-ab/disk.img","frozen":"/var/tmp/iowhy-lab-42-ab/mnt",
            "restore":[["/sys/class/bdi/7:3/max_bytes","0"],["/sys/class/bdi/7:3/strict_limit","0"]],
            "cgroups":["/sys/fs/cgroup/iowhy-lab-42"],
            "ctr":[{{"namespace":"iowhy-lab","id":"iowhy-flood-42","shim_pid":null}}]}}"#
        ));
        assert_eq!(vet(&st, &facts()), Ok(()));
    }

    #[test]
    fn the_audit_forgery_is_refused() {
        // §8 #1: restore a victim file, and a base elsewhere.
        let st = stage(
            r#"{"base":"/var/tmp/iowhy-lab-42-ab","dir":"/var/tmp/scratch","mounted":false,
            "owner_pid":999999,"restore":[["/var/tmp/victim","pwned"]]}"#,
        );
        assert!(vet(&st, &facts()).unwrap_err().contains("not in its base"));
    }

    #[test]
    fn paths_outside_what_labs_change_are_refused() {
        let cases = [
            (r#""restore":[["/var/tmp/victim","1"]]"#, "not a setting"),
            (
                r#""restore":[["/sys/class/bdi/8:0/max_bytes","1"]]"#,
                "not a setting",
            ),
            (
                r#""restore":[["/sys/class/bdi/7:3/max_bytes","1; rm"]]"#,
                "not a value",
            ),
            (
                r#""cgroups":["/sys/fs/cgroup/system.slice"]"#,
                "not the lab's cgroup",
            ),
            (r#""loop_dev":"/dev/sda""#, "not a loop device"),
            (r#""image":"/etc/shadow""#, "disk.img"),
            (r#""frozen":"/""#, "frozen"),
            (
                r#""ctr":[{"namespace":"k8s.io","id":"etcd","shim_pid":1}]"#,
                "not the lab's",
            ),
        ];
        for (extra, why) in cases {
            let st = stage(&format!(
                r#"{{{BASE},"dir":"/var/tmp/iowhy-lab-42-ab/mnt",{extra}}}"#
            ));
            let got = vet(&st, &facts());
            assert!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{extra}: expected an error with {why:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn bdi_settings_need_the_labs_own_attached_loop_device() {
        let st = stage(&format!(
            r#"{{{BASE},"dir":"/var/tmp/iowhy-lab-42-ab/mnt","restore":[["/sys/class/bdi/7:3/max_bytes","0"]]}}"#
        ));
        let detached = Facts {
            loop_devno: None,
            ..facts()
        };
        assert!(vet(&st, &detached).is_err());
    }
}
