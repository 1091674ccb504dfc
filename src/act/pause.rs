//! `iowhy pause PID --for DURATION`: the seed's `kill -STOP` experiment, measured and
//! safe. Device util, await, w/s and PSI are measured before, during and after the pause,
//! and the verdict printed ("util 99% → 8% while paused: this process is the cause").
//! The process is always resumed: at the end, on Ctrl-C, SIGTERM or SIGHUP, and — through the
//! guardian — even if iowhy itself is killed with SIGKILL. A signal during the measurement
//! *before* the pause aborts it: nothing is stopped.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::error::usage;
use crate::interval::Interval;
use crate::interval::disk::{self, DeviceRates};
use crate::roots::Roots;
use crate::snapshot::Snapshot;
use crate::source::{Collector, Origin, SnapshotOptions};
pub use crate::wire::act::{DeviceEffect, PauseReport, Phase};
use crate::wire::{r2, r2n};

use super::guardian::{Guardian, Undo};
use super::proc_handle::ProcHandle;
use super::{Target, confirm, depended_on, refuse_unsafe, target};

/// What to pause, for how long, and how to ask.
#[derive(Debug, Clone)]
pub struct PauseOptions {
    pub pid: u32,
    /// How long to keep it stopped (at most [`MAX_PAUSE`]).
    pub for_: Duration,
    /// How long to measure before and after the pause.
    pub measure: Duration,
    /// Pause a process others depend on without asking.
    pub yes: bool,
    /// Say what would be done, and do nothing.
    pub dry_run: bool,
}

/// Longest pause allowed: an experiment, not a way to park a process.
const MAX_PAUSE: Duration = Duration::from_secs(600);
/// The guardian resumes on its own this long after the pause should have ended.
const GUARD_MARGIN: Duration = Duration::from_secs(3);

fn state_of(roots: &Roots, pid: u32) -> Option<char> {
    super::read_pid_stat(roots, pid).ok().map(|s| s.state)
}

/// Wait until every thread is stopped (`want_stopped`) or the main thread runs again.
/// False if the process is gone or the time runs out.
fn wait_state(roots: &Roots, pid: u32, want_stopped: bool, within: Duration) -> bool {
    let t = Instant::now();
    loop {
        let Some(s) = state_of(roots, pid) else {
            return false;
        };
        let done = if want_stopped {
            super::running_thread(roots, pid).is_none()
        } else {
            s != 'T'
        };
        if done {
            return true;
        }
        if t.elapsed() >= within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The devices behind each of the process's writable files, as `FileRates.devices` has
/// them (the filesystem's device, then the disks under it), with the snapshot they come
/// from. Pause and throttle both act on these disks.
pub(super) fn writable_devices(roots: &Roots, pid: u32) -> Result<(Snapshot, Vec<Vec<String>>)> {
    let mut c = Collector::new(Origin::Live(roots.clone()))?;
    let s = c.snapshot(&SnapshotOptions::one_process(pid, false))?;
    let devices = s
        .process(pid)
        .into_iter()
        .flat_map(|p| p.fds.iter().flatten())
        .filter(|f| f.flags.is_some_and(crate::parse::fdinfo::is_writable))
        .map(|f| s.devices_behind_file(f))
        .collect();
    Ok((s, devices))
}

/// The disks behind the process's writable files.
fn devices_of(roots: &Roots, pid: u32) -> Result<BTreeSet<String>> {
    Ok(writable_devices(roots, pid)?
        .1
        .into_iter()
        .flatten()
        .collect())
}

/// Device rates and PSI over `d` (or until `stop`).
fn measure(
    c: &mut Collector,
    d: Duration,
    stop: &AtomicBool,
) -> Result<(Vec<DeviceRates>, Option<f64>, f64)> {
    let a = c.snapshot(&SnapshotOptions::devices())?;
    c.wait(d, stop, |_| {});
    let b = c.snapshot(&SnapshotOptions::devices())?;
    let itv = disk::itv_cs(a.uptime_s, b.uptime_s);
    let devs = disk::all(
        Some(&a.disks),
        &b.disks,
        itv,
        &b.block,
        disk::Listing::Default,
    );
    let iv = Interval::new(a, b);
    Ok((devs, iv.pressure.as_ref().map(|p| p.some_pct), iv.elapsed_s))
}

fn phase(devs: &[DeviceRates], name: &str, secs: f64) -> Phase {
    devs.iter()
        .find(|d| d.name == name)
        .map(|d| Phase {
            seconds: r2n(secs),
            util_pct: r2n(d.util_pct),
            await_ms: r2n(d.await_ms),
            w_per_s: r2n(d.w_s),
            wkb_per_s: r2n(d.wkb_s),
            f_per_s: r2n(d.f_s),
        })
        .unwrap_or_default()
}

/// Pause the process, measure its disks before, during and after, and say whether it is
/// the cause. It is always resumed (see the module doc). `stop_on_signal` (the command's
/// stop flag) is called once the experiment starts; a signal on it ends the measurement
/// early. The caller prints the report, then [`check_resumed`].
pub fn pause(
    roots: &Roots,
    a: &PauseOptions,
    stop_on_signal: &dyn Fn() -> Arc<AtomicBool>,
) -> Result<PauseReport> {
    let (t, mut warnings) = preflight(roots, a)?;
    let mut names: Vec<String> = devices_of(roots, t.pid)?.into_iter().collect();
    if a.dry_run {
        return Ok(dry_run_report(&t, &names, a, warnings));
    }
    // Only now, after any prompt: until here a signal ends iowhy at once (a prompt
    // waiting on the terminal must not outlive a Ctrl-C); from here it sets the flag.
    let stop = stop_on_signal();
    let stop: &AtomicBool = &stop;
    let mut c = Collector::new(Origin::Live(roots.clone()))?;
    let before = measure(&mut c, a.measure, stop)?;
    if stop.load(Ordering::Relaxed) {
        bail!(
            "interrupted during the measurement before the pause: pid {} was not stopped",
            t.pid
        );
    }
    if names.is_empty() {
        // Nothing written to a disk we know of: watch the busiest one.
        if let Some(d) = before.0.iter().max_by(|x, y| {
            x.util_pct
                .partial_cmp(&y.util_pct)
                .unwrap_or(std::cmp::Ordering::Equal)
        }) {
            names.push(d.name.clone());
        }
    }
    let paused = stop_and_measure(roots, &t, a, &mut c, stop, &mut warnings)?;
    let quiet = AtomicBool::new(false);
    let after = measure(
        &mut c,
        a.measure,
        if stop.load(Ordering::Relaxed) {
            &quiet
        } else {
            stop
        },
    )?;
    Ok(report(&t, &names, before, paused, after, warnings))
}

/// Device rates, PSI some % and the seconds measured, of one phase.
type Measured = (Vec<DeviceRates>, Option<f64>, f64);

/// The stopped phase: its measurement, and whether the process was seen to stop and to
/// resume.
struct Paused {
    during: Measured,
    stopped: bool,
    resumed: bool,
}

/// The checks before anything is touched: the duration, stale pauses, the target, the
/// refusals, and a confirmation when something depends on the process. Returns the
/// target and the warnings so far.
fn preflight(roots: &Roots, a: &PauseOptions) -> Result<(Target, Vec<String>)> {
    if a.for_.is_zero() || a.for_ > MAX_PAUSE {
        return Err(usage(format!(
            "--for must be between 1 ms and {} s",
            MAX_PAUSE.as_secs()
        )));
    }
    if !a.dry_run {
        super::resume_stale_pauses(roots);
    }
    let t = target(roots, a.pid)?;
    refuse_unsafe(roots, &t)?;
    if super::running_thread(roots, t.pid).is_none() {
        return Err(usage(format!(
            "pid {} is already stopped (state {}: by a signal or a debugger): not touching it",
            t.pid, t.state
        )));
    }
    let mut warnings = Vec::new();
    if let Some(why) = depended_on(&t) {
        warnings.push(format!("pid {} ({}) is {why}", t.pid, t.comm));
        if !a.dry_run {
            confirm(
                &format!(
                    "pid {} ({}) is {why}. Pause it for {:?} anyway?",
                    t.pid, t.comm, a.for_
                ),
                a.yes,
            )?;
        }
    }
    Ok((t, warnings))
}

/// What `--dry-run` says it would do.
fn dry_run_report(
    t: &Target,
    names: &[String],
    a: &PauseOptions,
    warnings: Vec<String>,
) -> PauseReport {
    PauseReport {
        pid: t.pid,
        comm: t.comm.clone(),
        dry_run: true,
        paused_s: 0.0,
        stopped: false,
        resumed: false,
        devices: Vec::new(),
        psi_some_pct: None,
        verdict: "unclear".into(),
        summary: format!(
            "would measure {} for {:?}, SIGSTOP pid {} ({}) for {:?} with a guardian that resumes it even if iowhy dies, SIGCONT it, and measure {:?} after",
            if names.is_empty() {
                "the busiest disk".to_string()
            } else {
                names.join(", ")
            },
            a.measure,
            t.pid,
            t.comm,
            a.for_,
            a.measure
        ),
        warnings,
    }
}

/// SIGSTOP the process under a guardian, measure for `--for`, SIGCONT it whatever the
/// measurement did.
fn stop_and_measure(
    roots: &Roots,
    t: &Target,
    a: &PauseOptions,
    c: &mut Collector,
    stop: &AtomicBool,
    warnings: &mut Vec<String>,
) -> Result<Paused> {
    let guardian = Guardian::spawn(
        Undo::Cont,
        t.pid,
        t.start_ticks,
        a.for_ + a.measure + GUARD_MARGIN,
        None,
        roots,
    )?;
    // Signals go through a pidfd of the process iowhy checked, never to a reused pid.
    let handle = match ProcHandle::open(roots, t.pid, t.start_ticks) {
        Ok(h) => h,
        Err(why) => {
            guardian.done();
            bail!("{why}: nothing paused");
        }
    };
    if stop.load(Ordering::Relaxed) {
        guardian.done();
        bail!(
            "interrupted before the pause: pid {} was not stopped",
            t.pid
        );
    }
    if let Err(e) = handle.signal(rustix::process::Signal::STOP) {
        guardian.done();
        bail!("could not stop pid {}: {e}", t.pid);
    }
    let stopped = wait_state(roots, t.pid, true, Duration::from_secs(1));
    if !stopped {
        warnings.push(format!(
            "pid {} did not stop within 1 s (a task in uninterruptible I/O wait stops only when its request completes)",
            t.pid
        ));
    }
    let m = measure(c, a.for_, stop);
    // Resume first, whatever the measurement did.
    let _ = handle.signal(rustix::process::Signal::CONT);
    let resumed = wait_state(roots, t.pid, false, Duration::from_secs(2));
    guardian.done();
    Ok(Paused {
        during: m?,
        stopped,
        resumed,
    })
}

/// The report of the three phases and the verdict on them.
fn report(
    t: &Target,
    names: &[String],
    before: Measured,
    paused: Paused,
    after: Measured,
    warnings: Vec<String>,
) -> PauseReport {
    let (before, psi_b, sb) = before;
    let (during, psi_d, sd) = paused.during;
    let (after, psi_a, sa) = after;
    let devices: Vec<DeviceEffect> = names
        .iter()
        .filter(|n| before.iter().any(|d| &d.name == *n))
        .map(|n| DeviceEffect {
            device: n.clone(),
            before: phase(&before, n, sb),
            during: phase(&during, n, sd),
            after: phase(&after, n, sa),
        })
        .collect();
    let r = |v: Option<f64>| v.and_then(r2);
    let psi = match (r(psi_b), r(psi_d), r(psi_a)) {
        (Some(b), Some(d), Some(a)) => Some([b, d, a]),
        _ => None,
    };
    let (verdict, summary) = verdict(t, &devices, psi);
    PauseReport {
        pid: t.pid,
        comm: t.comm.clone(),
        dry_run: false,
        paused_s: r2n(sd),
        stopped: paused.stopped,
        resumed: paused.resumed,
        devices,
        psi_some_pct: psi,
        verdict: verdict.into(),
        summary,
        warnings,
    }
}

/// After the report is printed: an error if the process was not seen to resume and is
/// still there.
pub fn check_resumed(roots: &Roots, r: &PauseReport) -> Result<()> {
    if !r.dry_run && !r.resumed && state_of(roots, r.pid).is_some() {
        bail!(
            "pid {} may still be stopped: run `kill -CONT {}`",
            r.pid,
            r.pid
        );
    }
    Ok(())
}

/// A device counts as busy from this %util; below it, I/O pressure or the request rate
/// decide (a VM's virtual disk can report ~0% util under thousands of requests a second).
const BUSY_UTIL_PCT: f64 = 20.0;
const BUSY_PSI_PCT: f64 = 10.0;
const BUSY_IOPS: f64 = 100.0;

/// Is the process the cause? Its disk calms down while it is stopped, and comes back after.
pub fn verdict(
    t: &Target,
    devices: &[DeviceEffect],
    psi: Option<[f64; 3]>,
) -> (&'static str, String) {
    let Some(d) = devices.iter().max_by(|a, b| {
        a.before
            .util_pct
            .partial_cmp(&b.before.util_pct)
            .unwrap_or(std::cmp::Ordering::Equal)
    }) else {
        return (
            "unclear",
            format!("no disk activity could be attributed to pid {}", t.pid),
        );
    };
    let iops = |p: &Phase| p.w_per_s + p.f_per_s;
    // (what, before, during, after)
    let (what, b, du, af) = if d.before.util_pct >= BUSY_UTIL_PCT {
        (
            format!("{}: util", d.device),
            d.before.util_pct,
            d.during.util_pct,
            d.after.util_pct,
        )
    } else if let Some([pb, pd, pa]) = psi.filter(|p| p[0] >= BUSY_PSI_PCT) {
        ("I/O pressure".to_string(), pb, pd, pa)
    } else if iops(&d.before) >= BUSY_IOPS {
        (
            format!("{}: writes+flushes per second", d.device),
            iops(&d.before),
            iops(&d.during),
            iops(&d.after),
        )
    } else {
        return (
            "device_not_busy",
            format!(
                "{}: util {:.0}%, the disk was not busy to begin with",
                d.device, d.before.util_pct
            ),
        );
    };
    let unit = if what.contains("per second") {
        "/s"
    } else {
        "%"
    };
    let line = format!("{what} {b:.0}{unit} → {du:.0}{unit} while paused → {af:.0}{unit} after");
    if du <= 0.5 * b {
        (
            "cause",
            format!("{line}: pid {} ({}) is the cause", t.pid, t.comm),
        )
    } else {
        (
            "not_the_cause",
            format!(
                "{line}: the load stayed without pid {} ({}); look elsewhere",
                t.pid, t.comm
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(b: f64, d: f64, a: f64) -> DeviceEffect {
        let p = |u| Phase {
            util_pct: u,
            ..Default::default()
        };
        DeviceEffect {
            device: "nvme0n1".into(),
            before: p(b),
            during: p(d),
            after: p(a),
        }
    }

    #[test]
    fn verdicts() {
        let t = Target {
            pid: 7,
            comm: "logger".into(),
            state: 'S',
            kthread: false,
            start_ticks: 0,
            sig_caught: 0,
            sig_ignored: 0,
        };
        assert_eq!(verdict(&t, &[eff(99.0, 8.0, 97.0)], None).0, "cause");
        assert!(
            verdict(&t, &[eff(99.0, 8.0, 97.0)], None)
                .1
                .contains("util 99% → 8% while paused")
        );
        assert_eq!(
            verdict(&t, &[eff(99.0, 95.0, 98.0)], None).0,
            "not_the_cause"
        );
        assert_eq!(
            verdict(&t, &[eff(5.0, 1.0, 4.0)], None).0,
            "device_not_busy"
        );
        assert_eq!(verdict(&t, &[], None).0, "unclear");
        // A virtual disk at ~0% util: I/O pressure decides.
        assert_eq!(
            verdict(&t, &[eff(0.0, 0.0, 0.0)], Some([60.0, 2.0, 58.0])).0,
            "cause"
        );
        let mut busy = eff(1.0, 1.0, 1.0);
        busy.before.w_per_s = 6000.0;
        busy.during.w_per_s = 5900.0;
        assert_eq!(verdict(&t, &[busy], None).0, "not_the_cause");
    }
}
