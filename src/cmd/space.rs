//! `iowhy space [PATH]`: where the space went. Filesystems with use %, inode use %,
//! growth and time to full (df, plus a window); the bytes held by deleted files that
//! processes keep open (the df/du gap `du` cannot see); and with PATH, the biggest files
//! and directories under it (a parallel walk that stays on PATH's filesystem, like
//! `du -x`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::cmd::{Global, emit};
use crate::cmd::{OutputFormat, TEXT_JSON, format_parser};
use crate::error::usage;
use crate::interval::process::deleted_by_inode;
use crate::interval::{FsRates, Interval};
use crate::render::table::Table;
use crate::source::SnapshotOptions;
use crate::source::reader::guard;
use crate::units;
use crate::units::parse_duration;
use crate::wire::diagnose::{BlindSpot, Filesystem};
use crate::wire::space::{DeletedByProcess, DeletedOpen, Entry, SpaceReport, Walk};

#[derive(Args, Debug, Clone)]
pub struct SpaceArgs {
    /// Walk this directory (on its filesystem only) for the biggest files and directories.
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// How many of the biggest files and directories to list.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// Directory totals down to this depth below PATH (like du --max-depth).
    #[arg(long, default_value_t = 3)]
    pub depth: usize,
    /// Window for growth and time-to-full (0 to skip).
    #[arg(long, short = 'd', default_value = "2s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

pub fn run(g: &Global, a: &SpaceArgs) -> Result<()> {
    if a.path.is_some() && g.recording().is_some() {
        return Err(usage(
            "a recording holds no directory tree: use iowhy space --at without PATH (filesystems and deleted-open files)",
        ));
    }
    let roots = g.roots();
    let walk_root = match &a.path {
        Some(p) => {
            let under = if g.fixture.is_some() {
                p.clone()
            } else {
                roots.host(&absolute(p)?)
            };
            // The path may be on a hung mount: stat it with a deadline.
            let u = under.clone();
            let md = guard::call(guard::default_deadline(), move || std::fs::symlink_metadata(&u))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: stat did not answer within {} ms: its filesystem does not respond (see `iowhy diagnose`)",
                        p.display(),
                        guard::default_deadline().as_millis()
                    )
                })?
                .map_err(|e| usage(format!("{}: {e}", p.display())))?;
            if !md.is_dir() {
                return Err(usage(format!("{}: not a directory", p.display())));
            }
            Some(under)
        }
        None => None,
    };
    let mut c = g.collector()?;
    let opts = SnapshotOptions::full();
    let s0 = c.snapshot(&opts)?;
    let stop = super::stop_flag();
    let iv = if a.duration.is_zero() {
        let s1 = s0.clone();
        Interval::new(s0, s1)
    } else {
        c.wait(a.duration, &stop, |_| {});
        let s1 = c.snapshot(&opts)?;
        Interval::new(s0, s1)
    };
    let mut report = SpaceReport {
        window_seconds: if a.duration.is_zero() {
            0.0
        } else {
            iv.elapsed_s
        },
        filesystems: fs_json(&iv.filesystems, !a.duration.is_zero()),
        deleted_open: deleted_open(&iv),
        deleted_open_by_process: deleted_by_process(&iv),
        walk: None,
        blind_spots: crate::render::report::gap_spots(&iv.after.gaps, iv.after.euid == 0),
    };
    if let Some(root) = walk_root {
        let host_path = roots.host_path_of(&root).display().to_string();
        let mountpoint = iv
            .after
            .mount_by_path(&host_path)
            .map(|m| m.mountpoint.clone());
        // Never walk into a filesystem that does not answer, nor stat a mountpoint below
        // the root (du -x would stat it, and a hung mount's root blocks that stat).
        let stuck = |mp: &str| {
            iv.after
                .stuck
                .iter()
                .any(|s| s.mountpoint.as_deref() == Some(mp))
        };
        if let Some(mp) = mountpoint.as_deref().filter(|mp| stuck(mp)) {
            report.blind_spots.push(BlindSpot {
                what: format!("the walk of {host_path}: {mp} does not answer (statfs timed out), so it was not walked"),
                how_to_see: "see `iowhy diagnose` for the stuck filesystem; walk it once it answers".into(),
            });
            return print_space(&report, a);
        }
        let below: HashSet<PathBuf> = iv
            .after
            .mounts
            .iter()
            .filter(|m| Some(&m.mountpoint) != mountpoint.as_ref())
            .map(|m| roots.host(Path::new(&m.mountpoint)))
            .filter(|p| p.starts_with(&root) && p != &root)
            .collect();
        let mut w = walk(&root, a.top, a.depth, super::progress_wanted(), below)?;
        w.path = host_path;
        w.mountpoint = mountpoint;
        for e in w.biggest_files.iter_mut().chain(w.biggest_dirs.iter_mut()) {
            e.path = roots.host_path_of(Path::new(&e.path)).display().to_string();
        }
        report.walk = Some(w);
    }
    print_space(&report, a)
}

fn print_space(report: &SpaceReport, a: &SpaceArgs) -> Result<()> {
    let out = match a.format {
        OutputFormat::Json => serde_json::to_string_pretty(report)? + "\n",
        OutputFormat::Text | OutputFormat::Markdown => text(report),
    };
    emit(&out)
}

/// A path's bytes, losing none (see `hoststr`).
fn host_path_string(p: &Path) -> String {
    crate::hoststr::from_bytes(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

fn fs_json(fs: &[FsRates], with_growth: bool) -> Vec<Filesystem> {
    let mut v = crate::render::report::filesystems_json(fs);
    if !with_growth {
        for f in &mut v {
            f.growth_bytes_per_s = None;
            f.time_to_full_s = None;
        }
    }
    v
}

/// Deleted files still open, each inode once (the first holder named), biggest first.
pub fn deleted_open(iv: &Interval) -> Vec<DeletedOpen> {
    let mut v: Vec<DeletedOpen> = deleted_by_inode(
        iv.processes
            .iter()
            .flat_map(|p| p.files.iter().map(move |f| (p, f))),
    )
    .into_iter()
    .map(|g| g[0])
    .map(|(p, f)| DeletedOpen {
        pid: p.pid,
        comm: p.comm.clone(),
        fd: f.fd,
        path: f.path.clone(),
        size_bytes: f.held_bytes(),
        mountpoint: f.mountpoint.clone(),
    })
    .filter(|d| d.size_bytes > 0)
    .collect();
    v.sort_by_key(|d| std::cmp::Reverse(d.size_bytes));
    v
}

/// Bytes of deleted-but-open files per holding process, biggest first.
fn deleted_by_process(iv: &Interval) -> Vec<DeletedByProcess> {
    let mut v: Vec<DeletedByProcess> = iv
        .processes
        .iter()
        .filter_map(|p| {
            let held: Vec<u64> = deleted_by_inode(p.files.iter().map(|f| ((), f)))
                .into_iter()
                .map(|g| g[0].1.held_bytes())
                .filter(|&b| b > 0)
                .collect();
            (!held.is_empty()).then(|| DeletedByProcess {
                pid: p.pid,
                comm: p.comm.clone(),
                files: held.len(),
                bytes: held.iter().sum(),
            })
        })
        .collect();
    v.sort_by_key(|d| std::cmp::Reverse(d.bytes));
    v
}

#[derive(Debug, Default, Clone, Copy)]
struct Meta {
    alloc: u64,
    dev: u64,
    ino: u64,
    nlink: u64,
}

/// The jwalk walker of `root`'s filesystem: each entry carries its metadata, entries on
/// other filesystems are dropped and not descended into (du -x), failed stats counted in
/// `errs`.
fn one_filesystem(
    root: &Path,
    root_dev: u64,
    skip: HashSet<PathBuf>,
    errs: Arc<AtomicU64>,
) -> jwalk::WalkDirGeneric<((), Option<Meta>)> {
    jwalk::WalkDirGeneric::<((), Option<Meta>)>::new(root)
        .skip_hidden(false)
        .follow_links(false)
        .parallelism(jwalk::Parallelism::RayonNewPool(2))
        .process_read_dir(move |_, _, _, children| {
            if !skip.is_empty() {
                children.retain(|c| c.as_ref().is_ok_and(|e| !skip.contains(&e.path())));
            }
            for c in children.iter_mut() {
                match c {
                    Ok(e) => match e.metadata() {
                        Ok(m) => {
                            e.client_state = Some(Meta {
                                alloc: m.blocks().saturating_mul(512),
                                dev: m.dev(),
                                ino: m.ino(),
                                nlink: m.nlink(),
                            });
                            if m.dev() != root_dev {
                                // Another filesystem mounted below: do not descend (du -x).
                                e.read_children = None;
                            }
                        }
                        Err(_) => {
                            errs.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                    Err(_) => {
                        errs.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            children.retain(|c| {
                c.as_ref()
                    .is_ok_and(|e| e.client_state.is_some_and(|m| m.dev == root_dev))
            });
        })
}

/// The "walking …" spinner on stderr.
fn spinner() -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} walking {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    pb
}

/// Add `alloc` to every ancestor directory of `path` down to `depth` below the root (a
/// directory counts itself).
fn add_to_ancestors(
    dirs: &mut HashMap<PathBuf, u64>,
    root: &Path,
    path: &Path,
    is_dir: bool,
    depth: usize,
    alloc: u64,
) {
    if let Ok(rel) = path.strip_prefix(root) {
        let comps: Vec<_> = rel.components().collect();
        let upto = comps.len().saturating_sub(usize::from(!is_dir)).min(depth);
        let mut acc = root.to_path_buf();
        for c in comps.iter().take(upto) {
            acc.push(c);
            let d = dirs.entry(acc.clone()).or_default();
            *d = d.saturating_add(alloc);
        }
    }
}

/// Walk `root` like `du -x` (on its own filesystem, never stat'ing the paths in `skip`:
/// the mountpoints of other filesystems below it): allocated bytes per file (hard links
/// once), totals for directories down to `depth`, the `top` biggest of each.
pub fn walk(
    root: &Path,
    top: usize,
    depth: usize,
    progress: bool,
    skip: HashSet<PathBuf>,
) -> Result<Walk> {
    let root_dev = std::fs::symlink_metadata(root)
        .with_context(|| root.display().to_string())?
        .dev();
    let errors = Arc::new(AtomicU64::new(0));
    let walker = one_filesystem(root, root_dev, skip, Arc::clone(&errors));
    let pb = progress.then(spinner);
    let mut w = Walk::default();
    let mut files: BinaryHeap<Reverse<(u64, PathBuf)>> = BinaryHeap::new();
    let mut dirs: HashMap<PathBuf, u64> = HashMap::new();
    let mut links: HashSet<(u64, u64)> = HashSet::new();
    for entry in walker {
        let Ok(e) = entry else {
            w.errors += 1;
            continue;
        };
        let Some(m) = e.client_state else { continue };
        if e.depth == 0 {
            continue;
        }
        if m.nlink > 1 && !e.file_type.is_dir() && !links.insert((m.dev, m.ino)) {
            continue;
        }
        w.total_bytes = w.total_bytes.saturating_add(m.alloc);
        let path = e.path();
        if e.file_type.is_dir() {
            w.dirs += 1;
        } else {
            w.files += 1;
            files.push(Reverse((m.alloc, path.clone())));
            if files.len() > top {
                files.pop();
            }
        }
        add_to_ancestors(&mut dirs, root, &path, e.file_type.is_dir(), depth, m.alloc);
        if let Some(pb) = &pb {
            if w.files % 4096 == 0 {
                pb.set_message(format!(
                    "{} files, {}",
                    w.files,
                    units::bytes_u(w.total_bytes)
                ));
                pb.tick();
            }
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    w.errors += errors.load(Ordering::Relaxed);
    let mut fv: Vec<Entry> = files
        .into_iter()
        .map(|Reverse((b, p))| Entry {
            bytes: b,
            path: host_path_string(&p),
        })
        .collect();
    fv.sort_by(|a, b| b.cmp(a));
    let mut dv: Vec<Entry> = dirs
        .into_iter()
        .map(|(p, b)| Entry {
            bytes: b,
            path: host_path_string(&p),
        })
        .collect();
    dv.sort_by(|a, b| b.cmp(a));
    dv.truncate(top);
    w.biggest_files = fv;
    w.biggest_dirs = dv;
    Ok(w)
}

fn text(r: &SpaceReport) -> String {
    let mut o = String::new();
    o.push_str("Filesystems\n");
    o.push_str(&crate::render::table::filesystems(&r.filesystems).render());
    o.push('\n');
    let fds_unseen = r
        .blind_spots
        .iter()
        .any(|b| b.what.starts_with("open files of"));
    if r.deleted_open.is_empty() && fds_unseen {
        o.push_str(
            "No deleted files are held open by the processes this run could see; the open files of others \
             could not be read (below), so df and du may still disagree.\n\n",
        );
    } else if r.deleted_open.is_empty() {
        o.push_str("No deleted files are held open: df and du agree.\n\n");
    } else {
        let total: u64 = r.deleted_open.iter().map(|d| d.size_bytes).sum();
        o.push_str(&format!(
            "Deleted but still open: {} that df counts and du cannot see (freed when the holder closes it)\n",
            units::bytes_u(total)
        ));
        let mut t =
            Table::new(&["PID", "COMM", "FD", "SIZE", "MOUNT", "PATH"]).text_columns(&[1, 4, 5]);
        for d in &r.deleted_open {
            t.row(vec![
                d.pid.to_string(),
                d.comm.clone(),
                d.fd.to_string(),
                units::bytes_u(d.size_bytes),
                d.mountpoint.clone().unwrap_or_default(),
                format!("{} (deleted)", d.path),
            ]);
        }
        o.push_str(&t.render());
        if r.deleted_open_by_process.len() > 1 {
            o.push_str("By process\n");
            let mut t = Table::new(&["PID", "COMM", "FILES", "HELD"]).text_columns(&[1]);
            for d in &r.deleted_open_by_process {
                t.row(vec![
                    d.pid.to_string(),
                    d.comm.clone(),
                    d.files.to_string(),
                    units::bytes_u(d.bytes),
                ]);
            }
            o.push_str(&t.render());
        }
        o.push_str("  free one now without stopping its process: iowhy reclaim PID FD\n\n");
    }
    if let Some(w) = &r.walk {
        o.push_str(&format!(
            "{}: {} in {} files and {} directories{}{}\n",
            crate::hoststr::for_terminal(&w.path),
            units::bytes_u(w.total_bytes),
            w.files,
            w.dirs,
            w.mountpoint
                .as_ref()
                .map(|m| {
                    format!(
                        ", on the filesystem mounted at {}",
                        crate::hoststr::for_terminal(m)
                    )
                })
                .unwrap_or_default(),
            if w.errors > 0 {
                format!(" ({} entries unreadable)", w.errors)
            } else {
                String::new()
            }
        ));
        o.push_str("\nBiggest directories\n");
        let mut t = Table::new(&["Size", "Directory"]).text_columns(&[1]);
        for e in &w.biggest_dirs {
            t.row(vec![units::bytes_u(e.bytes), e.path.clone()]);
        }
        o.push_str(&t.render());
        o.push_str("\nBiggest files\n");
        let mut t = Table::new(&["Size", "File"]).text_columns(&[1]);
        for e in &w.biggest_files {
            t.row(vec![units::bytes_u(e.bytes), e.path.clone()]);
        }
        o.push_str(&t.render());
    }
    if !r.blind_spots.is_empty() {
        if r.walk.is_some() {
            o.push('\n');
        }
        o.push_str("Not visible in this run\n");
        for b in &r.blind_spots {
            o.push_str(&format!(
                "  - {} → {}\n",
                crate::hoststr::for_terminal(&b.what),
                crate::hoststr::for_terminal(&b.how_to_see)
            ));
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_counts_sizes_and_hard_links_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/big"), vec![1u8; 256 * 1024]).unwrap();
        std::fs::write(d.path().join("a/small"), vec![1u8; 8192]).unwrap();
        std::fs::hard_link(d.path().join("a/b/big"), d.path().join("a/big-link")).unwrap();
        let w = walk(d.path(), 5, 3, false, HashSet::new()).unwrap();
        assert_eq!(w.files, 2, "the hard link is counted once: {w:?}");
        assert_eq!(
            w.biggest_files[0].path,
            d.path().join("a/b/big").display().to_string()
        );
        assert!(w.biggest_files[0].bytes >= 256 * 1024);
        let a = w
            .biggest_dirs
            .iter()
            .find(|e| e.path.ends_with("/a"))
            .unwrap();
        assert!(a.bytes >= 256 * 1024 + 8192);
        assert!(w.total_bytes >= a.bytes);
    }
}
