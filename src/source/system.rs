//! System-wide kernel files: diskstats, `/sys/block`, mounts and their space, pressure,
//! memory, load, uptime and the host's identity.

use std::path::Path;

use crate::error::ReadError;
use crate::parse::{self, diskstats, kv, mountinfo, psi, sysblock};
use std::time::Duration;

use crate::snapshot::{BlockDevice, DelayAcct, FsSpace, GapKind, Gaps, Mount, StuckRead};

use super::reader::{Outcome, Reader};

/// Filesystems that hold no user data and whose statvfs means nothing to df.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "mqueue",
    "pstore",
    "configfs",
    "fusectl",
    "binfmt_misc",
    "autofs",
    "hugetlbfs",
    "rpc_pipefs",
    "nsfs",
    "efivarfs",
    "selinuxfs",
    "ramfs",
];

pub fn is_pseudo_fs(fstype: &str) -> bool {
    PSEUDO_FS.contains(&fstype)
}

/// A missing or unreadable optional file becomes a gap; a present but garbled one too.
fn optional<T>(
    r: &mut Reader,
    gaps: &mut Gaps,
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, parse::ParseError>,
) -> Option<T> {
    match r.read_path(path) {
        Ok(text) => match parse(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                gaps.record(GapKind::Parse, r.spell(path), e.to_string());
                None
            }
        },
        Err(e) => {
            let reason = if e.is_permission() {
                "permission denied"
            } else {
                "not available on this kernel"
            };
            gaps.record(GapKind::SystemFile, r.spell(path), reason);
            None
        }
    }
}

pub fn uptime(r: &mut Reader) -> Result<f64, ReadError> {
    let p = r.roots.proc("uptime");
    let text = r.read_path(&p)?;
    kv::parse_uptime(&text).map_err(|e| ReadError::parse(&p, e))
}

pub fn diskstats(r: &mut Reader) -> Result<Vec<diskstats::DiskStats>, ReadError> {
    let p = r.roots.proc("diskstats");
    let text = r.read_path(&p)?;
    diskstats::parse(&text).map_err(|e| ReadError::parse(&p, e))
}

pub fn host(r: &mut Reader) -> (String, String) {
    let mut one = |rel: &str| {
        r.read_path(&r.roots.proc(rel))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    (one("sys/kernel/hostname"), one("sys/kernel/osrelease"))
}

pub fn psi_io(r: &mut Reader, gaps: &mut Gaps) -> Option<psi::Psi> {
    let p = r.roots.proc("pressure/io");
    optional(r, gaps, &p, psi::parse)
}

pub fn meminfo(r: &mut Reader, gaps: &mut Gaps) -> Option<kv::MemInfo> {
    let p = r.roots.proc("meminfo");
    optional(r, gaps, &p, kv::parse_meminfo)
}

pub fn vmstat(r: &mut Reader, gaps: &mut Gaps) -> Option<kv::VmStat> {
    let p = r.roots.proc("vmstat");
    optional(r, gaps, &p, kv::parse_vmstat)
}

pub fn loadavg(r: &mut Reader, gaps: &mut Gaps) -> Option<kv::LoadAvg> {
    let p = r.roots.proc("loadavg");
    optional(r, gaps, &p, kv::parse_loadavg)
}

/// Whether delay accounting is on, and since when (boot or run time).
pub fn delayacct(r: &mut Reader) -> DelayAcct {
    let cmdline = r
        .read_path(&r.roots.proc("cmdline"))
        .ok()
        .map(|s| s.to_string());
    let on = match r.read_path(&r.roots.proc("sys/kernel/task_delayacct")) {
        Ok(s) => s.trim() == "1",
        // Kernels before 5.14 have no sysctl: delay accounting is on from boot unless the
        // kernel was booted with `nodelayacct` (5.14 turned the default off and added the
        // sysctl). On a newer kernel a missing sysctl means we cannot tell.
        Err(_) => {
            let osrelease = r
                .read_path(&r.roots.proc("sys/kernel/osrelease"))
                .map(|s| s.to_string())
                .unwrap_or_default();
            return match (kernel_before(&osrelease, (5, 14)), &cmdline) {
                (Some(true), Some(c)) if has_word(c, "nodelayacct") => DelayAcct::Off,
                (Some(true), Some(_)) => DelayAcct::OnSinceBoot,
                _ => DelayAcct::Unknown,
            };
        }
    };
    if !on {
        return DelayAcct::Off;
    }
    if cmdline.is_some_and(|c| has_word(&c, "delayacct")) {
        DelayAcct::OnSinceBoot
    } else {
        DelayAcct::OnAtRuntime
    }
}

fn has_word(cmdline: &str, w: &str) -> bool {
    cmdline.split_ascii_whitespace().any(|x| x == w)
}

/// Is the kernel release ("4.18.0-553.el8.x86_64", "6.18.44-fc") older than `v`?
/// `None` when it does not parse.
fn kernel_before(osrelease: &str, v: (u32, u32)) -> Option<bool> {
    let mut it = osrelease.trim().split(|c: char| !c.is_ascii_digit());
    let major: u32 = it.next()?.parse().ok()?;
    let minor: u32 = it.next()?.parse().ok()?;
    Some((major, minor) < v)
}

/// `/sys/block/*`: whole disks, their partitions, and what they are built on.
pub fn block_devices(r: &mut Reader, gaps: &mut Gaps) -> Vec<BlockDevice> {
    let mut out = Vec::new();
    let block = r.roots.sys("block");
    let dir = match r.open_dir(&block) {
        Ok(d) => d,
        Err(e) => {
            gaps.record(GapKind::SystemFile, r.spell(&block), e.to_string());
            return out;
        }
    };
    let mut names = Vec::new();
    let _ = r.for_each_entry(&dir, |n| names.push(n.to_string_lossy().into_owned()));
    names.sort();
    for name in names {
        let base = block.join(&name);
        let Some(mut disk) = read_block_dev(r, &base, &name) else {
            continue;
        };
        disk.rotational = r
            .read_path(&base.join("queue/rotational"))
            .ok()
            .and_then(|s| sysblock::parse_u64(&s).ok())
            .map(|v| v == 1);
        disk.nr_requests = r
            .read_path(&base.join("queue/nr_requests"))
            .ok()
            .and_then(|s| sysblock::parse_u64(&s).ok());
        disk.scheduler = r
            .read_path(&base.join("queue/scheduler"))
            .ok()
            .and_then(|s| sysblock::parse_scheduler(&s));
        disk.loop_backing_file = r
            .read_path(&base.join("loop/backing_file"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        disk.dm_name = r
            .read_path(&base.join("dm/name"))
            .ok()
            .map(|s| s.trim().to_string());
        if let Ok(sl) = r.open_dir(&base.join("slaves")) {
            let _ = r.for_each_entry(&sl, |n| disk.slaves.push(n.to_string_lossy().into_owned()));
            disk.slaves.sort();
        }
        // Partitions are subdirectories that have a `partition` file.
        let mut parts = Vec::new();
        if let Ok(d) = r.open_dir(&base) {
            let _ = r.for_each_entry(&d, |n| {
                let n = n.to_string_lossy();
                if n.starts_with(name.as_str()) && n.len() > name.len() {
                    parts.push(n.into_owned());
                }
            });
        }
        parts.sort();
        for p in parts {
            let pbase = base.join(&p);
            if r.read_path(&pbase.join("partition")).is_err() {
                continue;
            }
            if let Some(mut part) = read_block_dev(r, &pbase, &p) {
                part.parent = Some(name.clone());
                part.rotational = disk.rotational;
                out.push(part);
            }
        }
        out.push(disk);
    }
    out
}

fn read_block_dev(r: &mut Reader, base: &Path, name: &str) -> Option<BlockDevice> {
    let (major, minor) = r
        .read_path(&base.join("dev"))
        .ok()
        .and_then(|s| sysblock::parse_dev(&s).ok())?;
    let size_bytes = r
        .read_path(&base.join("size"))
        .ok()
        .and_then(|s| sysblock::parse_u64(&s).ok())
        .map(|s| s * 512);
    Some(BlockDevice {
        name: name.to_string(),
        major,
        minor,
        size_bytes,
        ..Default::default()
    })
}

/// How many statfs calls run at once: a few hung mounts are found in one deadline, not
/// one deadline each.
const STATFS_WORKERS: usize = 8;

/// The mount table and, for each real filesystem, its space.
///
/// statfs can block on any filesystem, not only the remote ones (FUSE, virtiofs, overlay
/// over NFS, a dead iSCSI disk): every mount gets the deadline, all at once, on watched
/// workers. A mount whose statfs does not answer is a gap and a [`StuckRead`]; while it
/// stays stuck, later snapshots skip it at once instead of blocking another thread.
pub fn mounts(
    r: &mut Reader,
    gaps: &mut Gaps,
    stuck: &mut Vec<StuckRead>,
) -> Result<Vec<Mount>, ReadError> {
    let mut last_err = None;
    let mut entries = None;
    for p in r.roots.mountinfo_candidates() {
        match r.read_path(&p) {
            Ok(text) => match mountinfo::parse(&text) {
                Ok(e) => {
                    entries = Some(e);
                    break;
                }
                Err(e) => last_err = Some(ReadError::parse(&p, e)),
            },
            Err(e) => last_err = Some(e),
        }
    }
    let Some(entries) = entries else {
        return Err(last_err.unwrap_or_else(|| ReadError::NotFound {
            path: r.roots.proc("self/mountinfo"),
        }));
    };
    let real: Vec<String> = entries
        .iter()
        .filter(|e| !is_pseudo_fs(&e.fstype))
        .map(|e| e.mountpoint.clone())
        .collect();
    let outcomes = r.guarded(real.clone(), STATFS_WORKERS, |r, mp: &String| r.statvfs(mp));
    let mut spaces: std::collections::HashMap<String, Option<FsSpace>> =
        std::collections::HashMap::with_capacity(real.len());
    let mut stuck_at: std::collections::HashMap<String, Duration> = Default::default();
    for (mp, o) in real.into_iter().zip(outcomes) {
        let space = match o {
            Outcome::Done(Ok(s)) => Some(s),
            Outcome::Done(Err(ReadError::TimedOut { waited, .. })) => {
                stuck_at.insert(mp.clone(), waited);
                None
            }
            Outcome::Stuck(st) => {
                stuck_at.insert(mp.clone(), st.since.elapsed());
                None
            }
            // A fixture records statfs only for the mounts the capture could stat.
            Outcome::Done(Err(e)) if e.is_not_found() && r.is_fixture() => None,
            Outcome::Done(Err(e)) => {
                gaps.record(GapKind::Statvfs, mp.clone(), e.to_string());
                None
            }
            Outcome::NotRun => {
                gaps.record(GapKind::Statvfs, mp.clone(), "not attempted (interrupted)");
                None
            }
        };
        spaces.insert(mp, space);
    }
    let mut stuck_ids = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if let Some(waited) = stuck_at.get(&e.mountpoint) {
            let reason = format!(
                "statfs did not answer within {} ms: the filesystem does not respond",
                r.guard().deadline().as_millis()
            );
            gaps.record(GapKind::Blocked, e.mountpoint.clone(), reason.clone());
            stuck_ids.insert(e.mount_id);
            stuck.push(StuckRead {
                path: e.mountpoint.clone(),
                mountpoint: Some(e.mountpoint.clone()),
                waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                reason,
                ..Default::default()
            });
        }
        let space = spaces.get(&e.mountpoint).cloned().flatten();
        out.push(Mount {
            mount_id: e.mount_id,
            major: e.major,
            minor: e.minor,
            mountpoint: e.mountpoint,
            source: e.source,
            fstype: e.fstype,
            options: e.options,
            space,
        });
    }
    r.set_stuck_mounts(stuck_ids);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_release_comparison() {
        assert_eq!(
            kernel_before("4.18.0-553.el8_10.x86_64", (5, 14)),
            Some(true)
        );
        assert_eq!(kernel_before("5.4.0-150-generic", (5, 14)), Some(true));
        assert_eq!(kernel_before("5.14.0-427.el9.x86_64", (5, 14)), Some(false));
        assert_eq!(kernel_before("6.18.44-fc-v669", (5, 14)), Some(false));
        assert_eq!(kernel_before("", (5, 14)), None);
    }

    /// A tree like the quiet fixture's, with only the files delay accounting reads.
    fn tree(osrelease: &str, cmdline: &str, sysctl: Option<&str>) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quiet/t0");
        std::fs::copy(src.join("meta.json"), d.path().join("meta.json")).unwrap();
        let k = d.path().join("proc/sys/kernel");
        std::fs::create_dir_all(&k).unwrap();
        std::fs::write(k.join("osrelease"), osrelease).unwrap();
        std::fs::write(d.path().join("proc/cmdline"), cmdline).unwrap();
        if let Some(v) = sysctl {
            std::fs::write(k.join("task_delayacct"), v).unwrap();
        }
        d
    }

    fn state(osrelease: &str, cmdline: &str, sysctl: Option<&str>) -> DelayAcct {
        let d = tree(osrelease, cmdline, sysctl);
        delayacct(&mut Reader::fixture(d.path()).unwrap())
    }

    #[test]
    fn delay_accounting_before_and_after_5_14() {
        let rhel8 = "4.18.0-553.el8_10.x86_64\n";
        // No sysctl before 5.14: on from boot unless booted with nodelayacct.
        assert_eq!(state(rhel8, "ro quiet\n", None), DelayAcct::OnSinceBoot);
        assert_eq!(state(rhel8, "ro nodelayacct\n", None), DelayAcct::Off);
        // 5.14 and later: the sysctl says, the boot parameter says since when.
        let new = "6.18.44-fc-v669\n";
        assert_eq!(state(new, "ro\n", Some("0\n")), DelayAcct::Off);
        assert_eq!(state(new, "ro\n", Some("1\n")), DelayAcct::OnAtRuntime);
        assert_eq!(
            state(new, "ro delayacct\n", Some("1\n")),
            DelayAcct::OnSinceBoot
        );
        assert_eq!(state(new, "ro\n", None), DelayAcct::Unknown);
    }
}
