//! Setting and lifting a throttle in cgroupfs, in three steps that make it undoable at
//! every instant: `prepare` decides and records what will change (no change yet), the
//! caller saves that as the intent, `apply` changes it — rolling back on its own if any
//! write fails — and `undo` restores it from the intent, whether `apply` ran fully,
//! partly or not at all.
//!
//! Modes:
//! - v1 `blkio`: a child group made for the process under its own, with
//!   `blkio.throttle.*_device` limits (v1 has no rule against processes in inner groups);
//! - v2, the process alone in its group: `io.max` on that group, previous lines restored;
//! - v2, the process in the root group: a child group made for it under the root (the
//!   root is exempt from the no-internal-processes rule), if the root's
//!   `cgroup.subtree_control` already enables `io`;
//! - v2, the process sharing a non-root group: refused, with the reason (a child would
//!   need `io` in that group's subtree_control, which the kernel refuses while the group
//!   has processes; a sibling would take the process out of its group's memory and CPU
//!   limits).
//!
//! The writes go through [`CgroupFs`], so that the v2 logic — not available on every
//! host — is tested against a directory laid out like a cgroup2 hierarchy.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::usage;
use crate::roots::Roots;

use super::Target;
use super::cgroup::{self, Hierarchy, Limits};

/// The changes iowhy makes to cgroupfs.
pub trait CgroupFs {
    fn write(&self, file: &Path, value: &str) -> std::io::Result<()>;
    fn mkdir(&self, dir: &Path) -> std::io::Result<()>;
    fn rmdir(&self, dir: &Path) -> std::io::Result<()>;
    /// Is `pid` still the process that started at `start_ticks`? Asked right before its
    /// pid *number* is written to `cgroup.procs`: the measurement and the prompt before
    /// it take seconds, and a reused pid would be throttled in its place.
    fn still_target(&self, pid: u32, start_ticks: u64) -> Result<(), String>;
}

/// The real cgroupfs, and the real processes under `roots`.
#[derive(Default)]
pub struct Kernel {
    pub roots: Roots,
}

impl CgroupFs for Kernel {
    fn still_target(&self, pid: u32, start_ticks: u64) -> Result<(), String> {
        super::proc_handle::ProcHandle::open(&self.roots, pid, start_ticks).map(drop)
    }
    fn write(&self, file: &Path, value: &str) -> std::io::Result<()> {
        std::fs::write(file, value)
    }
    fn mkdir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir(dir)
    }
    fn rmdir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::remove_dir(dir)
    }
}

/// What a throttle changes, saved before the change (`/run/iowhy/throttle-PID.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ThrottleState {
    pub pid: u32,
    pub start_ticks: u64,
    pub hierarchy: Hierarchy,
    pub mount: PathBuf,
    pub original_group: String,
    /// The group made for the process (v1, or v2 under the root), removed on undo.
    pub created_group: Option<PathBuf>,
    pub devices: Vec<(u32, u32)>,
    pub limits: Limits,
    /// v2 on the process's own group: its io.max lines before, restored on undo.
    pub previous_io_max: Vec<(String, String)>,
}

const CHILD_PREFIX: &str = "iowhy-throttle-";

fn wr(fs: &dyn CgroupFs, file: &Path, v: &str) -> Result<()> {
    fs.write(file, v)
        .with_context(|| format!("writing {v:?} to {}", file.display()))
}

/// Processes in the groups below `dir` (io.max on `dir` would limit them too).
fn descendant_procs(dir: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(cgroup::procs(&e.path()));
            out.extend(descendant_procs(&e.path()));
        }
    }
    out
}

/// Decide how to limit the process and record what will change; changes nothing.
pub fn prepare(
    roots: &Roots,
    t: &Target,
    devices: &[(u32, u32)],
    limits: Limits,
) -> Result<ThrottleState> {
    let (h, mount) = cgroup::detect(roots)?;
    let group = cgroup::group_of(roots, t.pid, h)?;
    let dir = cgroup::join(&mount, &group)?;
    let mut st = ThrottleState {
        pid: t.pid,
        start_ticks: t.start_ticks,
        hierarchy: h,
        mount: mount.clone(),
        original_group: group.clone(),
        created_group: None,
        devices: devices.to_vec(),
        limits,
        previous_io_max: Vec::new(),
    };
    let child = dir.join(format!("{CHILD_PREFIX}{}", t.pid));
    let exists = |child: &Path| -> Result<()> {
        if child.exists() {
            return Err(usage(format!(
                "pid {} already has a throttle group ({}): lift it first with --undo",
                t.pid,
                child.display()
            )));
        }
        Ok(())
    };
    match h {
        Hierarchy::V1 => {
            exists(&child)?;
            st.created_group = Some(child);
        }
        Hierarchy::V2 if dir == mount => {
            let sc =
                std::fs::read_to_string(mount.join("cgroup.subtree_control")).unwrap_or_default();
            if !sc.split_whitespace().any(|c| c == "io") {
                return Err(usage(format!(
                    "pid {} is in the root cgroup, and the io controller is not enabled for the root's children ({}): \
                     iowhy does not turn it on for the whole machine. Enable it yourself (echo +io > {}) or run the \
                     process in a group of its own",
                    t.pid,
                    mount.join("cgroup.subtree_control").display(),
                    mount.join("cgroup.subtree_control").display()
                )));
            }
            exists(&child)?;
            st.created_group = Some(child);
        }
        Hierarchy::V2 => {
            let others: Vec<u32> = cgroup::procs(&dir)
                .into_iter()
                .filter(|p| *p != t.pid)
                .collect();
            if !others.is_empty() {
                return Err(usage(format!(
                    "pid {} shares its cgroup ({group}) with {} other process(es). cgroup v2 limits whole groups: a child \
                     group for it alone would need io enabled in {}/cgroup.subtree_control, which the kernel refuses while \
                     the group has processes of its own (the no-internal-processes rule); moving it to a sibling group \
                     would take it out of its group's memory and CPU limits. Limit the whole group instead: echo '{}' > {}",
                    t.pid,
                    others.len(),
                    dir.display(),
                    devices
                        .first()
                        .map(|d| cgroup::io_max_line(d.0, d.1, &limits))
                        .unwrap_or_default(),
                    dir.join("io.max").display()
                )));
            }
            let below = descendant_procs(&dir);
            if !below.is_empty() {
                return Err(usage(format!(
                    "pid {} is alone in {group}, but {} process(es) run in groups below it, and io.max on {group} would \
                     limit them too",
                    t.pid,
                    below.len()
                )));
            }
            let io_max = dir.join("io.max");
            let prev = std::fs::read_to_string(&io_max).with_context(|| {
                format!(
                    "{}: the io controller is not enabled for this group (parent's cgroup.subtree_control)",
                    io_max.display()
                )
            })?;
            st.previous_io_max = cgroup::parse_io_max(&prev);
        }
    }
    Ok(st)
}

/// Make the change recorded in `st`. If a step fails, what was done is undone before
/// the error is returned.
pub fn apply(fs: &dyn CgroupFs, st: &ThrottleState) -> Result<()> {
    let r = (|| -> Result<()> {
        match (&st.created_group, st.hierarchy) {
            (Some(child), h) => {
                fs.mkdir(child)
                    .with_context(|| format!("creating {}", child.display()))?;
                for &(ma, mi) in &st.devices {
                    match h {
                        Hierarchy::V1 => {
                            for (file, line) in cgroup::v1_lines(ma, mi, &st.limits) {
                                wr(fs, &child.join(file), &line)?;
                            }
                        }
                        Hierarchy::V2 => {
                            if let Some(line) = cgroup::io_max_tighten(ma, mi, &st.limits, None) {
                                wr(fs, &child.join("io.max"), &line)?;
                            }
                        }
                    }
                }
                fs.still_target(st.pid, st.start_ticks)
                    .map_err(|why| usage(format!("{why}: not throttled")))?;
                // Writing a pid to cgroup.procs moves all of its threads.
                wr(fs, &child.join("cgroup.procs"), &st.pid.to_string())
            }
            (None, _) => {
                let io_max = cgroup::join(&st.mount, &st.original_group)?.join("io.max");
                for &(ma, mi) in &st.devices {
                    let key = format!("{ma}:{mi}");
                    let prev = st
                        .previous_io_max
                        .iter()
                        .find(|(d, _)| *d == key)
                        .map(|(_, v)| v.as_str());
                    if let Some(line) = cgroup::io_max_tighten(ma, mi, &st.limits, prev) {
                        wr(fs, &io_max, &line)?;
                    }
                }
                Ok(())
            }
        }
    })();
    if let Err(e) = r {
        return Err(match undo(fs, st) {
            Ok(()) => e.context("the throttle was not set (what had been changed was restored)"),
            Err(u) => e.context(format!("and restoring failed too: {u:#}")),
        });
    }
    Ok(())
}

/// Restore what `apply` changed, or would have: safe after a partial apply, after none,
/// and twice. Moves no process but those in the group iowhy made.
pub fn undo(fs: &dyn CgroupFs, st: &ThrottleState) -> Result<()> {
    let mut first: Option<anyhow::Error> = None;
    let mut keep = |r: Result<()>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    match &st.created_group {
        Some(child)
            if !child.starts_with(&st.mount)
                || !child
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(CHILD_PREFIX)) =>
        {
            return Err(usage(format!(
                "{} is not a group iowhy makes ({CHILD_PREFIX}PID under {}): not touched",
                child.display(),
                st.mount.display()
            )));
        }
        Some(child) => {
            let orig = cgroup::join(&st.mount, &st.original_group)?;
            // The process, and anything it forked since, goes back where it was.
            for p in cgroup::procs(child) {
                keep(wr(fs, &orig.join("cgroup.procs"), &p.to_string()));
            }
            if child.exists() {
                keep(
                    fs.rmdir(child)
                        .with_context(|| format!("removing {}", child.display())),
                );
            }
        }
        None => {
            let io_max = cgroup::join(&st.mount, &st.original_group)?.join("io.max");
            for &(ma, mi) in &st.devices {
                let key = format!("{ma}:{mi}");
                let line = match st.previous_io_max.iter().find(|(d, _)| *d == key) {
                    Some((d, v)) => format!("{d} {v}"),
                    None => format!("{key} rbps=max wbps=max riops=max wiops=max"),
                };
                keep(wr(fs, &io_max, &line));
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "cglimit_tests.rs"]
mod tests;
