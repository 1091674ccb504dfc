//! Space: `filesystem_full`, `inode_exhaustion`, `deleted_file_held_open` and
//! `runaway_log` — the df/du half of the seed incident.

use crate::interval::fs::time_to_full_s;
use crate::interval::process::deleted_by_inode;
use crate::interval::{FileRates, FsRates, Interval, ProcessRates};
use crate::parse::fdinfo::O_APPEND;
use crate::units::{self, shell_quote};

use super::{Finding, Kind, Severity, remedy};

/// The trigger: ≥ 95% used, or full within the hour.
pub const FULL_PCT: f64 = 95.0;
pub const FULL_SOON_S: f64 = 3600.0;
/// Critical when (nearly) nothing is left or it will be full within minutes.
const FULL_CRITICAL_PCT: f64 = 98.0;
const FULL_CRITICAL_S: f64 = 15.0 * 60.0;
const INODES_PCT: f64 = 95.0;
const INODES_CRITICAL_PCT: f64 = 99.0;
/// A deleted-but-open file smaller than this is noise (every process holds a few).
const DELETED_MIN_BYTES: u64 = 10 * 1024 * 1024;
/// Held space worth a warning even on a roomy filesystem: a tenth of it.
const DELETED_SHARE_WARN: f64 = 0.10;
/// A log is runaway when it grows at least this fast...
const RUNAWAY_MIN_GROWTH_BYTES_PER_S: f64 = 16.0 * 1024.0; // ~1.3 GiB a day
/// ...and is large: 1 GiB, or a tenth of its filesystem (a small /var), or at least
/// 100 MiB on a filesystem that will be full within a day at this rate.
const RUNAWAY_LARGE_BYTES: u64 = 1024 * 1024 * 1024;
const RUNAWAY_LARGE_SHARE: f64 = 0.10;
pub const RUNAWAY_MIN_BYTES: u64 = 100 * 1024 * 1024;
const RUNAWAY_FULL_WITHIN_S: f64 = 24.0 * 3600.0;

fn fs_of<'a>(iv: &'a Interval, mountpoint: Option<&str>) -> Option<&'a FsRates> {
    let m = mountpoint?;
    iv.filesystems
        .iter()
        .find(|f| f.mountpoint == m || f.also_mounted_at.iter().any(|a| a == m))
}

/// Read-only and image filesystems are full by construction.
fn ignorable(fs: &FsRates, iv: &Interval) -> bool {
    let ro = iv
        .after
        .mounts
        .iter()
        .any(|m| m.mountpoint == fs.mountpoint && m.options.split(',').any(|o| o == "ro"));
    ro || matches!(fs.fstype.as_str(), "squashfs" | "iso9660" | "udf" | "erofs")
}

pub fn filesystem_full(iv: &Interval) -> Vec<Finding> {
    iv.filesystems
        .iter()
        .filter(|fs| !ignorable(fs, iv))
        .filter_map(|fs| full(iv, fs))
        .collect()
}

/// A finding when the filesystem is nearly full or will be soon.
fn full(iv: &Interval, fs: &FsRates) -> Option<Finding> {
    let pct = fs.use_pct.unwrap_or(0.0);
    let ttf = fs.time_to_full_s;
    if pct < FULL_PCT && !ttf.is_some_and(|t| t <= FULL_SOON_S) {
        return None;
    }
    let severity = if pct >= FULL_CRITICAL_PCT || ttf.is_some_and(|t| t <= FULL_CRITICAL_S) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut summary = format!(
        "{} is {:.0}% full ({} left)",
        fs.mountpoint,
        pct,
        units::bytes_u(fs.avail_bytes)
    );
    if let Some(t) = ttf {
        summary.push_str(&format!(
            ", full in {} at {}",
            units::duration(t),
            units::rate(fs.growth_bytes_per_s.unwrap_or(0.0))
        ));
    }
    let mut f = Finding::new(Kind::FilesystemFull, severity, summary);
    f.subject.mountpoint = Some(fs.mountpoint.clone());
    f.subject.device = fs.devices.first().cloned();
    f.evidence
        .num("use_pct", pct)
        .num("size_bytes", fs.size_bytes as f64)
        .num("used_bytes", fs.used_bytes as f64)
        .num("avail_bytes", fs.avail_bytes as f64)
        .opt("growth_bytes_per_s", fs.growth_bytes_per_s)
        .opt("time_to_full_s", ttf)
        .text("source", fs.source.clone())
        .text("fstype", fs.fstype.clone());
    let mut why = who_fills(&mut f, iv, fs);
    why.push_str("Writes that need new blocks will fail with ENOSPC when it is full; a full root filesystem stalls logging, package managers and databases.");
    f.explanation = why;
    let q = shell_quote(&fs.mountpoint);
    f.remediation = vec![
        remedy::step(
            format!("iowhy space {q}"),
            "biggest files and directories on it, and space held by deleted open files",
        ),
        remedy::step(
            format!("du -xh --max-depth=2 {q} 2>/dev/null | sort -h | tail -20"),
            "the same by hand",
        ),
        remedy::step(
            "# never rm a log that a process holds open",
            "the space stays allocated until the last fd closes; rotate it instead",
        ),
    ];
    Some(f)
}

/// Who fills it: the fastest-growing open file on this filesystem (or, when nothing grows
/// any more, the biggest open for writing), and space held by deleted files that df counts
/// and du cannot see. Sets the subject and evidence; returns the sentences.
fn who_fills(f: &mut Finding, iv: &Interval, fs: &FsRates) -> String {
    let mut why = String::new();
    // Who fills it: the fastest-growing open files on this filesystem, and space held
    // by deleted files that df counts and du cannot see.
    let on_fs = files_on(iv, fs);
    let growing = on_fs
        .iter()
        .filter(|(_, f)| f.growth_bytes_per_s.unwrap_or(0.0) > 0.0)
        .max_by(|a, b| {
            a.1.growth_bytes_per_s
                .partial_cmp(&b.1.growth_bytes_per_s)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    // Nothing grows any more (it is full): name the biggest file open for writing.
    let biggest = on_fs
        .iter()
        .filter(|(_, f)| f.writable && !f.deleted)
        .max_by_key(|(_, f)| f.size_bytes.unwrap_or(0));
    if let (None, Some((p, file))) = (growing, biggest) {
        f.subject.pid = Some(p.pid);
        f.subject.comm = Some(p.comm.clone());
        f.subject.path = Some(file.path.clone());
        f.evidence.text("biggest_open_file", file.path.clone()).num(
            "biggest_open_file_bytes",
            file.size_bytes.unwrap_or(0) as f64,
        );
        why.push_str(&format!(
            "The biggest file open for writing on it is {} ({}), held by {} (pid {}). ",
            file.path,
            units::bytes_u(file.size_bytes.unwrap_or(0)),
            p.comm,
            p.pid
        ));
    }
    if let Some((p, file)) = growing {
        f.subject.pid = Some(p.pid);
        f.subject.comm = Some(p.comm.clone());
        f.subject.path = Some(file.path.clone());
        f.evidence
            .text("fastest_growing_file", file.path.clone())
            .opt("fastest_growing_file_bytes_per_s", file.growth_bytes_per_s);
        why.push_str(&format!(
            "The fastest-growing open file on it is {} ({}, {}), written by {} (pid {}). ",
            file.path,
            units::bytes_u(file.size_bytes.unwrap_or(0)),
            units::rate(file.growth_bytes_per_s.unwrap_or(0.0)),
            p.comm,
            p.pid
        ));
    }
    let deleted: u64 = dedup_deleted(on_fs.iter().map(|(_, f)| *f))
        .iter()
        .map(|f| f.held_bytes())
        .sum();
    if deleted > 0 {
        f.evidence.num("deleted_open_bytes", deleted as f64);
        why.push_str(&format!(
            "{} of it is held by deleted files that are still open: df counts them, du does not. ",
            units::bytes_u(deleted)
        ));
    }
    why
}

pub fn inode_exhaustion(iv: &Interval) -> Vec<Finding> {
    let mut out = Vec::new();
    for fs in &iv.filesystems {
        if ignorable(fs, iv) {
            continue;
        }
        let Some(pct) = fs.inodes_use_pct else {
            continue;
        };
        if pct < INODES_PCT {
            continue;
        }
        let severity = if pct >= INODES_CRITICAL_PCT {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let mut f = Finding::new(
            Kind::InodeExhaustion,
            severity,
            format!(
                "{} has used {:.0}% of its inodes ({} free)",
                fs.mountpoint, pct, fs.inodes_free
            ),
        );
        f.subject.mountpoint = Some(fs.mountpoint.clone());
        f.subject.device = fs.devices.first().cloned();
        f.evidence
            .num("inodes_use_pct", pct)
            .num("inodes_total", fs.inodes_total as f64)
            .num("inodes_free", fs.inodes_free as f64)
            .opt("use_pct", fs.use_pct);
        f.explanation = "Creating a file fails with ENOSPC when no inode is left, even with free space: usually millions of small files \
            (a cache, a mail spool, session files) in one directory tree."
            .into();
        let q = shell_quote(&fs.mountpoint);
        f.remediation = vec![remedy::step(
            format!("du --inodes -x {q} 2>/dev/null | sort -n | tail -20"),
            "the directories holding the most inodes",
        )];
        out.push(f);
    }
    out
}

/// Files of all processes that live on one filesystem.
fn files_on<'a>(iv: &'a Interval, fs: &FsRates) -> Vec<(&'a ProcessRates, &'a FileRates)> {
    iv.processes
        .iter()
        .flat_map(|p| p.files.iter().map(move |f| (p, f)))
        .filter(|(_, f)| {
            f.regular
                && f.mountpoint.as_deref().is_some_and(|m| {
                    m == fs.mountpoint || fs.also_mounted_at.iter().any(|a| a == m)
                })
        })
        .collect()
}

/// The same deleted inode held by several processes (or fds) counts once.
fn dedup_deleted<'a>(files: impl Iterator<Item = &'a FileRates>) -> Vec<&'a FileRates> {
    deleted_by_inode(files.map(|f| ((), f)))
        .into_iter()
        .map(|g| g[0].1)
        .collect()
}

pub fn deleted_file_held_open(iv: &Interval) -> Vec<Finding> {
    // Group by inode: every holder is listed on one finding.
    let mut by_inode = deleted_by_inode(
        iv.processes
            .iter()
            .flat_map(|p| p.files.iter().map(move |f| (p, f)))
            .filter(|(_, f)| f.held_bytes() >= DELETED_MIN_BYTES),
    );
    by_inode.sort_by_key(|holders| holders[0].1.inode_key());
    let mut out = Vec::new();
    for holders in by_inode {
        let (p, file) = holders[0];
        let bytes = file.held_bytes();
        let fs = fs_of(iv, file.mountpoint.as_deref());
        let fs_pct = fs.and_then(|f| f.use_pct).unwrap_or(0.0);
        let fs_size = fs.map(|f| f.size_bytes).unwrap_or(0);
        let big_share = fs_size > 0 && bytes as f64 >= DELETED_SHARE_WARN * fs_size as f64;
        let severity = if fs_pct >= FULL_PCT {
            Severity::Critical
        } else if fs_pct >= FULL_PCT - 10.0 || bytes >= RUNAWAY_LARGE_BYTES || big_share {
            Severity::Warning
        } else {
            Severity::Info
        };
        let mut f = Finding::new(
            Kind::DeletedFileHeldOpen,
            severity,
            format!(
                "{} of deleted {} is still held open by {} (pid {}, fd {})",
                units::bytes_u(bytes),
                file.path,
                p.comm,
                p.pid,
                file.fd
            ),
        );
        f.subject.pid = Some(p.pid);
        f.subject.comm = Some(p.comm.clone());
        f.subject.path = Some(file.path.clone());
        f.subject.mountpoint = file.mountpoint.clone();
        f.subject.device = file.devices.first().cloned();
        f.evidence
            .num("held_bytes", bytes as f64)
            .num("fd", file.fd as f64)
            .opt("growth_bytes_per_s", file.growth_bytes_per_s)
            .opt("filesystem_use_pct", fs.and_then(|f| f.use_pct))
            .num("holders", holders.len() as f64);
        if holders.len() > 1 {
            let list: Vec<String> = holders
                .iter()
                .map(|(p, f)| format!("{}:{}", p.pid, f.fd))
                .collect();
            f.evidence.text("held_by", list.join(" "));
        }
        f.explanation = format!(
            "The file was removed from its directory, but {} still has it open, so its {} stay allocated: df counts them and \
             du cannot find them. The space returns only when the last holder closes it{}.",
            p.comm,
            units::bytes_u(bytes),
            if file.growth_bytes_per_s.unwrap_or(0.0) > 0.0 {
                format!(
                    ", and it is still growing at {}",
                    units::rate(file.growth_bytes_per_s.unwrap_or(0.0))
                )
            } else {
                String::new()
            }
        );
        f.remediation = vec![
            remedy::step(
                format!("iowhy reclaim {} {} --dry-run", p.pid, file.fd),
                "what truncating it would free (the file has no name: nobody else can read it)",
            ),
            remedy::step(
                format!("iowhy reclaim {} {}", p.pid, file.fd),
                "truncate it through /proc/PID/fd to free the space now, without stopping the process",
            ),
            remedy::restart_step(p.pid, p.handles_hup),
        ];
        out.push(f);
    }
    out
}

fn is_log_like(f: &FileRates) -> bool {
    let p = f.path.as_str();
    let name = p.rsplit('/').next().unwrap_or(p);
    f.flags.is_some_and(|fl| fl & O_APPEND != 0)
        || p.contains("/log/")
        || p.contains("/logs/")
        || name.contains(".log")
        || name.ends_with(".out")
        || name.ends_with(".err")
        || name.contains("stdout")
        || name.contains("stderr")
}

pub fn runaway_log(iv: &Interval) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in &iv.processes {
        for file in p
            .files
            .iter()
            .filter(|f| f.regular && f.writable && !f.deleted)
        {
            let growth = file.growth_bytes_per_s.unwrap_or(0.0);
            if growth < RUNAWAY_MIN_GROWTH_BYTES_PER_S || !is_log_like(file) {
                continue;
            }
            if !seen.insert(file.inode_key()) {
                continue;
            }
            // A container's log: container_log_flood tells it, with the container.
            if super::container::reported_as_flood(iv, &file.path) {
                continue;
            }
            let size = file.size_bytes.unwrap_or(0);
            let fs = fs_of(iv, file.mountpoint.as_deref());
            let fs_size = fs.map(|f| f.size_bytes).unwrap_or(0);
            let ttf = fs.and_then(|f| time_to_full_s(f.avail_bytes, Some(growth)));
            let large = size >= RUNAWAY_LARGE_BYTES
                || (fs_size > 0 && size as f64 >= RUNAWAY_LARGE_SHARE * fs_size as f64);
            let fills_soon =
                size >= RUNAWAY_MIN_BYTES && ttf.is_some_and(|t| t <= RUNAWAY_FULL_WITHIN_S);
            if !large && !fills_soon {
                continue;
            }
            let severity = if ttf.is_some_and(|t| t <= FULL_SOON_S) {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let writer = remedy::LogWriter::of(iv, p, file);
            let mut summary = format!(
                "{} is {} and grows {} (written by {}, pid {})",
                file.path,
                units::bytes_u(size),
                units::rate(growth),
                p.comm,
                p.pid
            );
            if let (Some(t), Some(fs)) = (ttf, fs) {
                summary.push_str(&format!(
                    "; {} full in {}",
                    fs.mountpoint,
                    units::duration(t)
                ));
            }
            let mut f = Finding::new(Kind::RunawayLog, severity, summary);
            f.subject.pid = Some(p.pid);
            f.subject.comm = Some(p.comm.clone());
            f.subject.path = Some(file.path.clone());
            f.subject.mountpoint = file.mountpoint.clone();
            f.subject.device = file.devices.first().cloned();
            f.evidence
                .num("size_bytes", size as f64)
                .num("growth_bytes_per_s", growth)
                .num("fd", file.fd as f64)
                .opt("filesystem_use_pct", fs.and_then(|f| f.use_pct))
                .opt("filesystem_time_to_full_s", ttf)
                .text("open_flags", file.flag_names().join("|"));
            f.explanation = format!(
                "{} grows {} a day and nothing rotates it. Removing it would not free the space while pid {} holds it open; \
                 renaming it keeps every line and lets the writer continue in a new file once it reopens.",
                file.path,
                units::bytes(growth * 86400.0),
                p.pid
            );
            f.remediation = remedy::rotate_steps(&file.path, writer);
            f.remediation
                .push(remedy::logrotate_step(&file.path, writer));
            out.push(f);
        }
    }
    out
}
