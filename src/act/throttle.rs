//! `iowhy throttle PID --write-bps RATE [--for DURATION]` and `iowhy throttle --undo PID`:
//! limit a writer's I/O on the disks behind its files instead of killing it, with a cgroup
//! (how, per hierarchy, and when it is refused: see `cglimit`):
//! - cgroup v1 `blkio` (this hybrid host): a child group made for the process under its
//!   own. v1 throttles the I/O a process issues itself (direct and synchronous writes,
//!   reads); its buffered writes are written back by kernel flusher threads outside the
//!   group and are not limited — the report says so;
//! - cgroup v2 `io.max` on the process's own group when it is alone there, or on a child
//!   group made for it when it runs in the root group.
//!
//! What will change is saved in `/run/iowhy/throttle-PID.json` *before* the change, so
//! that iowhy dying at any instant leaves a limit that `--undo` (from any shell) or the
//! guardian (with `--for`) lifts. Expiry, Ctrl-C, SIGTERM and SIGHUP restore the previous
//! state; one during the measurement before the limit aborts it, with nothing changed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::error::usage;
use crate::roots::Roots;
pub use crate::wire::act::{ThrottleRates, ThrottleReport};
use crate::wire::r2n;

use super::cglimit::{self, Kernel, ThrottleState};
use super::cgroup::{self, Hierarchy, Limits};
use super::guardian::{Guardian, Undo};
use super::rundir;
use super::{Target, confirm, depended_on, refuse_unsafe, target};

/// What to throttle (or undo), the limits, and for how long.
#[derive(Debug, Clone, Default)]
pub struct ThrottleOptions {
    pub pid: u32,
    /// Lift a throttle set earlier instead.
    pub undo: bool,
    pub limits: Limits,
    /// Lift the limit after this long; without it, the limit stays until undone.
    pub for_: Option<Duration>,
    /// Limit on these disks instead of the ones behind the process's files.
    pub devices: Vec<String>,
    /// How long to measure the process's I/O rate before and after.
    pub measure: Duration,
    /// Throttle a process others depend on without asking.
    pub yes: bool,
    pub dry_run: bool,
}

fn state_dir(roots: &Roots) -> PathBuf {
    rundir::dir(roots)
}

fn state_path(roots: &Roots, pid: u32) -> PathBuf {
    state_dir(roots).join(format!("throttle-{pid}.json"))
}

/// The whole disks (MAJ:MIN, name) behind the process's writable files.
fn disks_of(roots: &Roots, pid: u32, names: &[String]) -> Result<Vec<((u32, u32), String)>> {
    let (s, devices) = super::pause::writable_devices(roots, pid)?;
    let whole = |n: &str| {
        s.block
            .iter()
            .find(|b| b.name == n && b.parent.is_none())
            .map(|b| ((b.major, b.minor), b.name.clone()))
    };
    let mut out = Vec::new();
    if !names.is_empty() {
        for n in names {
            let n = n.trim_start_matches("/dev/");
            out.push(whole(n).ok_or_else(|| {
                usage(format!(
                    "{n}: not a whole disk in /sys/block (limits apply to disks, not partitions)"
                ))
            })?);
        }
        return Ok(out);
    }
    for d in devices
        .iter()
        .filter_map(|names| names.iter().find_map(|n| whole(n)))
    {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

fn io_bytes(roots: &Roots, pid: u32) -> Option<(u64, u64)> {
    let t = super::read_pid_file(roots, pid, "io").ok()?;
    let io = crate::parse::kv::parse_io(&t).ok()?;
    Some((io.read_bytes, io.write_bytes))
}

fn rates(roots: &Roots, pid: u32, d: Duration, stop: &AtomicBool) -> Option<ThrottleRates> {
    let t0 = std::time::Instant::now();
    let a = io_bytes(roots, pid)?;
    while t0.elapsed() < d && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let b = io_bytes(roots, pid)?;
    let s = t0.elapsed().as_secs_f64();
    Some(ThrottleRates {
        seconds: r2n(s),
        write_bytes_per_s: r2n(b.1.saturating_sub(a.1) as f64 / s),
        read_bytes_per_s: r2n(b.0.saturating_sub(a.0) as f64 / s),
    })
}

/// Undo from a saved state file (the guardian and `--undo` use this), then remove it.
/// The file is obeyed only if root wrote it where only root can (see `rundir`). An undo
/// that fails because the group it restores is gone (removed with its processes, or
/// with the container) has nothing left to restore: the stale file is removed all the
/// same, and the returned note says so — else `--undo` would fail, and the pid be
/// refused a throttle, forever.
pub fn undo_state_file(path: &Path) -> Result<(ThrottleState, Option<String>)> {
    let text = rundir::read_trusted(path)?
        .ok_or_else(|| anyhow::anyhow!("{}: no such state file", path.display()))?;
    let st: ThrottleState =
        serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let note = match cglimit::undo(&Kernel::default(), &st) {
        Ok(()) => None,
        Err(e) => {
            let group = cgroup::join(&st.mount, &st.original_group)?;
            if group.exists() {
                return Err(e);
            }
            Some(format!(
                "{} no longer exists (removed with its processes?), so there was no limit left to lift ({e:#}); removed the \
                 stale state file {}",
                group.display(),
                path.display()
            ))
        }
    };
    let _ = std::fs::remove_file(path);
    Ok((st, note))
}

/// Save the intent before changing anything: if iowhy dies at any point after, the state
/// file says what to restore (`--undo`, or the guardian).
fn save_intent(path: &Path, st: &ThrottleState) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&serde_json::to_vec_pretty(st)?)?;
    f.sync_all()?;
    Ok(())
}

/// Throttle the process (or, with `undo`, lift an earlier throttle) and measure its I/O
/// rate before, while and after limited. `stop_on_signal` (the command's stop flag) is
/// called once the action starts; a signal on it ends the wait and lifts the limit. The caller prints the report.
pub fn throttle(
    roots: &Roots,
    a: &ThrottleOptions,
    stop_on_signal: &dyn Fn() -> Arc<AtomicBool>,
) -> Result<ThrottleReport> {
    if !a.dry_run {
        super::resume_stale_pauses(roots);
    }
    if a.undo {
        return undo_cmd(roots, a.pid);
    }
    check_limits(a.limits)?;
    let t = target(roots, a.pid)?;
    refuse_unsafe(roots, &t)?;
    let sp = state_path(roots, t.pid);
    let earlier_notes = clear_stale_throttle(&t, &sp)?;
    let disks = disks_of(roots, t.pid, &a.devices)?;
    if disks.is_empty() {
        return Err(usage(format!(
            "pid {} has no file open for writing on a disk; name one with --device",
            t.pid
        )));
    }
    // Decide (and refuse) before measuring or asking anything.
    let st = cglimit::prepare(
        roots,
        &t,
        &disks.iter().map(|d| d.0).collect::<Vec<_>>(),
        a.limits,
    )?;
    let mut r = planned(&t, a, &st, &disks, earlier_notes);
    if let Some(why) = depended_on(&t) {
        r.notes.push(format!("pid {} ({}) is {why}", t.pid, t.comm));
        if !a.dry_run {
            confirm(
                &format!("pid {} ({}) is {why}. Throttle it anyway?", t.pid, t.comm),
                a.yes,
            )?;
        }
    }
    if a.dry_run {
        return Ok(r);
    }
    // Only now, after any prompt: until here a signal ends iowhy at once (a prompt
    // waiting on the terminal must not outlive a Ctrl-C); from here it sets the flag.
    let stop = stop_on_signal();
    let stop: &AtomicBool = &stop;
    r.before = rates(roots, t.pid, a.measure, stop);
    if stop.load(Ordering::Relaxed) {
        anyhow::bail!(
            "interrupted during the measurement before the limit: pid {} was not throttled",
            t.pid
        );
    }
    limit_and_measure(roots, &t, a, &st, stop, &mut r)?;
    Ok(r)
}

/// At least one limit, and none of 0.
fn check_limits(limits: Limits) -> Result<()> {
    if limits == Limits::default() {
        return Err(usage(
            "give at least one limit: --write-bps, --read-bps, --write-iops or --read-iops (or --undo)",
        ));
    }
    if [
        limits.read_bps,
        limits.write_bps,
        limits.read_iops,
        limits.write_iops,
    ]
    .contains(&Some(0))
    {
        return Err(usage(
            "a limit of 0 would stop the process's I/O entirely; use iowhy pause for that",
        ));
    }
    Ok(())
}

/// Lift a throttle left on an earlier process with this pid (it exited and the pid was
/// reused), and refuse when this process has one already. Returns what was lifted.
fn clear_stale_throttle(t: &Target, sp: &Path) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    if let Some(old) = rundir::read_trusted(sp)?
        .and_then(|text| serde_json::from_str::<ThrottleState>(&text).ok())
        .filter(|old| old.start_ticks != t.start_ticks)
    {
        let (_, note) = undo_state_file(sp)?;
        notes.push(format!(
            "lifted the throttle iowhy had set on an earlier process with pid {} (started at tick {})",
            t.pid, old.start_ticks
        ));
        notes.extend(note);
    }
    if sp.exists() {
        return Err(usage(format!(
            "pid {} has a throttle set by iowhy ({}): iowhy throttle --undo {} first",
            t.pid,
            sp.display(),
            t.pid
        )));
    }
    Ok(notes)
}

/// The report of what will be done, before anything is: group, devices, limits, and
/// notes on how the limit is set.
fn planned(
    t: &Target,
    a: &ThrottleOptions,
    st: &ThrottleState,
    disks: &[((u32, u32), String)],
    earlier_notes: Vec<String>,
) -> ThrottleReport {
    let mut r = ThrottleReport {
        pid: t.pid,
        comm: t.comm.clone(),
        action: "throttle".into(),
        dry_run: a.dry_run,
        hierarchy: Some(st.hierarchy),
        group: Some(st.original_group.clone()),
        devices: disks
            .iter()
            .map(|(d, n)| format!("{n} ({}:{})", d.0, d.1))
            .collect(),
        limits: Some(a.limits),
        notes: earlier_notes,
        ..Default::default()
    };
    match (&st.created_group, st.hierarchy) {
        (Some(c), _) => r.notes.push(format!(
            "the process is moved into a group made for it, {}, and back on undo",
            c.display()
        )),
        (None, _) => r.notes.push(format!(
            "io.max of its own group {} (it is alone there); the previous lines are restored on undo",
            st.original_group
        )),
    }
    if st.hierarchy == Hierarchy::V1 {
        r.notes.push(
            "cgroup v1 limits the I/O the process issues itself (direct and synchronous writes, reads); its buffered writes are \
             written back by kernel threads outside its group and are not limited"
                .into(),
        );
    }
    r
}

/// Save the intent, start the guardian, apply the limit and measure under it; with
/// `--for`, wait it out, lift the limit and measure after.
fn limit_and_measure(
    roots: &Roots,
    t: &Target,
    a: &ThrottleOptions,
    st: &ThrottleState,
    stop: &AtomicBool,
    r: &mut ThrottleReport,
) -> Result<()> {
    let sp = state_path(roots, t.pid);
    rundir::ensure(&state_dir(roots))?;
    save_intent(&sp, st)?;
    // The guardian first, then the change: from here on, iowhy dying at any instant
    // leaves nothing behind (the guardian restores from the intent, which is harmless if
    // nothing was applied yet).
    let guardian = match a.for_ {
        Some(d) => match Guardian::spawn(
            Undo::Unthrottle,
            t.pid,
            t.start_ticks,
            d + GUARD_MARGIN,
            Some(&sp),
            roots,
        ) {
            Ok(g) => Some(g),
            Err(e) => {
                let _ = std::fs::remove_file(&sp);
                return Err(e);
            }
        },
        None => None,
    };
    if let Err(e) = cglimit::apply(
        &Kernel {
            roots: roots.clone(),
        },
        st,
    ) {
        // apply restored what it had changed.
        let _ = std::fs::remove_file(&sp);
        if let Some(g) = guardian {
            g.done();
        }
        return Err(e);
    }
    let during_for = a.for_.map(|d| d.min(a.measure)).unwrap_or(a.measure);
    r.during = rates(roots, t.pid, during_for, stop);
    if let Some(d) = a.for_ {
        let t0 = std::time::Instant::now();
        while t0.elapsed() + during_for < d && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let lifted = undo_state_file(&sp);
        if let Some(g) = guardian {
            g.done();
        }
        r.notes.extend(lifted?.1);
        r.lifted = true;
        let quiet = AtomicBool::new(false);
        r.after = rates(roots, t.pid, a.measure, &quiet);
    } else if stop.load(Ordering::Relaxed) {
        // Interrupted while measuring: do not leave a limit behind unasked.
        r.notes.extend(undo_state_file(&sp)?.1);
        r.lifted = true;
    } else {
        r.notes.push(format!(
            "the limit stays until: iowhy throttle --undo {}",
            t.pid
        ));
    }
    Ok(())
}

/// The guardian lifts the limit on its own this long after `--for` should have ended.
const GUARD_MARGIN: Duration = Duration::from_secs(3);

/// `--undo`: restore the saved state. The pid may be another process by now (the
/// throttled one exited and its pid was reused): the cgroup state is restored all the
/// same — that moves only the processes in the group iowhy made — and nothing is done to
/// the process that has the pid now.
fn undo_cmd(roots: &Roots, pid: u32) -> Result<ThrottleReport> {
    let p = state_path(roots, pid);
    if !p.exists() {
        return Err(usage(format!(
            "pid {} has no throttle set by iowhy ({} does not exist)",
            pid,
            p.display()
        )));
    }
    let (st, stale) = undo_state_file(&p)?;
    let now = target(roots, pid).ok();
    let mut r = ThrottleReport {
        pid,
        comm: now
            .as_ref()
            .filter(|t| t.start_ticks == st.start_ticks)
            .map(|t| t.comm.clone())
            .unwrap_or_default(),
        action: "undo".into(),
        hierarchy: Some(st.hierarchy),
        group: Some(st.original_group.clone()),
        lifted: true,
        ..Default::default()
    };
    r.notes.extend(stale);
    match now {
        Some(t) if t.start_ticks == st.start_ticks => {}
        Some(_) => r.notes.push(format!(
            "pid {} is another process now (the throttled one exited): restored the cgroup state only, and left that process alone",
            pid
        )),
        None => r.notes.push(format!(
            "pid {} has exited: restored the cgroup state",
            pid
        )),
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn state_in(mount: &Path, group: &str) -> ThrottleState {
        ThrottleState {
            pid: 42,
            start_ticks: 4242,
            hierarchy: Hierarchy::V2,
            mount: mount.to_path_buf(),
            original_group: group.into(),
            created_group: None,
            devices: vec![(8, 0)],
            limits: Limits {
                write_bps: Some(1 << 20),
                ..Default::default()
            },
            previous_io_max: Vec::new(),
        }
    }

    fn save(p: &Path, st: &ThrottleState, mode: u32) {
        std::fs::write(p, serde_json::to_vec(st).unwrap()).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_state_whose_group_is_gone_is_removed_and_said() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("iowhy");
        rundir::ensure(&run).unwrap();
        let mount = d.path().join("cgroup");
        std::fs::create_dir(&mount).unwrap();
        let p = run.join("throttle-42.json");
        // The service's group was removed with its processes: io.max cannot be restored.
        save(&p, &state_in(&mount, "/system.slice/gone.service"), 0o600);
        let (_, note) = undo_state_file(&p).unwrap();
        let note = note.expect("says what happened");
        assert!(note.contains("no longer exists"), "{note}");
        assert!(!p.exists(), "the stale file is gone: --undo is not stuck");
        // A group that exists but cannot be written: an error, and the file stays.
        let g = mount.join("kept");
        std::fs::create_dir_all(g.join("io.max")).unwrap();
        save(&p, &state_in(&mount, "/kept"), 0o600);
        assert!(undo_state_file(&p).is_err());
        assert!(p.exists());
    }

    #[test]
    fn a_state_file_others_could_write_is_not_obeyed() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("iowhy");
        rundir::ensure(&run).unwrap();
        let mount = d.path().join("cgroup");
        std::fs::create_dir_all(mount.join("victim")).unwrap();
        std::fs::write(mount.join("victim/io.max"), "").unwrap();
        let p = run.join("throttle-42.json");
        save(&p, &state_in(&mount, "/victim"), 0o666);
        let e = undo_state_file(&p).unwrap_err().to_string();
        assert!(e.contains("writable by group or others"), "{e}");
        assert_eq!(
            std::fs::read_to_string(mount.join("victim/io.max")).unwrap(),
            "",
            "nothing written"
        );
    }
}
