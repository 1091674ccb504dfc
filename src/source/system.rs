//! System-wide kernel files: diskstats, `/sys/block`, mounts and their space, pressure,
//! memory, load, uptime and the host's identity.

use std::path::Path;

use crate::error::ReadError;
use crate::parse::{self, diskstats, kv, mountinfo, psi, sysblock};
use crate::snapshot::{BlockDevice, DelayAcct, GapKind, Gaps, Mount};

use super::reader::Reader;

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

/// Network and FUSE filesystems: statvfs can block for minutes on a dead server, so it
/// runs on a helper thread with a deadline.
const REMOTE_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "9p",
    "fuse",
    "lustre",
];

pub fn is_pseudo_fs(fstype: &str) -> bool {
    PSEUDO_FS.contains(&fstype)
}

fn is_remote_fs(fstype: &str) -> bool {
    REMOTE_FS.contains(&fstype) || fstype.starts_with("fuse.")
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
    let on = match r.read_path(&r.roots.proc("sys/kernel/task_delayacct")) {
        Ok(s) => s.trim() == "1",
        // Kernels before 5.14 have no sysctl; delay accounting then follows the boot
        // parameter (on by default before 5.14).
        Err(_) => return DelayAcct::Unknown,
    };
    if !on {
        return DelayAcct::Off;
    }
    let boot = r
        .read_path(&r.roots.proc("cmdline"))
        .map(|c| c.split_ascii_whitespace().any(|w| w == "delayacct"))
        .unwrap_or(false);
    if boot {
        DelayAcct::OnSinceBoot
    } else {
        DelayAcct::OnAtRuntime
    }
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

/// The mount table and, for each real filesystem, its space.
pub fn mounts(r: &mut Reader, gaps: &mut Gaps) -> Result<Vec<Mount>, ReadError> {
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
    let entries = match entries {
        Some(e) => e,
        None => return Err(last_err.expect("at least one mountinfo candidate")),
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let space = if is_pseudo_fs(&e.fstype) {
            None
        } else if is_remote_fs(&e.fstype) && !r.is_fixture() {
            statvfs_with_deadline(r, &e.mountpoint, gaps)
        } else {
            match r.statvfs(&e.mountpoint) {
                Ok(s) => Some(s),
                Err(err) => {
                    if !err.is_not_found() || !r.is_fixture() {
                        gaps.record(GapKind::Statvfs, e.mountpoint.clone(), err.to_string());
                    }
                    None
                }
            }
        };
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
    Ok(out)
}

/// statvfs on a network filesystem, giving up after a second: a hung NFS server must not
/// hang the diagnosis of the machine it is hurting. The helper thread is left behind if
/// the call never returns.
fn statvfs_with_deadline(
    r: &mut Reader,
    mountpoint: &str,
    gaps: &mut Gaps,
) -> Option<crate::snapshot::FsSpace> {
    let path = r.roots.host(Path::new(mountpoint));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(rustix::fs::statvfs(&path).ok());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(1)) {
        Ok(Some(_)) => r.statvfs(mountpoint).ok(),
        Ok(None) => {
            gaps.record(GapKind::Statvfs, mountpoint.to_string(), "statvfs failed");
            None
        }
        Err(_) => {
            gaps.record(
                GapKind::Statvfs,
                mountpoint.to_string(),
                "statvfs did not answer within 1 s (hung network filesystem?)",
            );
            None
        }
    }
}
