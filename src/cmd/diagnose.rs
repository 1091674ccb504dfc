//! `iowhy diagnose` (the default command): two full snapshots `--duration` apart with
//! tracing in between, every rule, one report.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::act::delayacct::DelayAcctGuard;
use crate::cmd::{Global, OutputFormat, Tracing, emit};
use crate::error::usage;
use crate::findings;
use crate::interval::{Interval, IntervalOptions};
use crate::render::{self, Diagnosis};
use crate::source::SnapshotOptions;
use crate::trace::{self, TraceRequest};
use crate::units::parse_duration;
use crate::wire::diagnose::BlindSpot;

#[derive(Args, Debug, Clone)]
#[command(after_help = AFTER_HELP)]
pub struct DiagnoseArgs {
    /// How long to watch the machine (e.g. 5s, 500ms, 1m). Rates are averages over it.
    #[arg(long, short = 'd', value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// text: the story for a person; json: the stable contract (DESIGN.md); markdown: an
    /// incident note for a ticket.
    #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// How to see syscalls during the window: auto picks the best allowed (ebpf, perf,
    /// then sampling /proc); off skips tracing.
    #[arg(long, value_enum, default_value_t = Tracing::Auto)]
    pub tracing: Tracing,
    /// Turn kernel.task_delayacct on for this run (and back off after) to see I/O wait per
    /// process. Processes started before it stay unknown.
    #[arg(long)]
    pub enable_delayacct: bool,
    /// Exit by the worst finding, for monitoring checks and cron (the Nagios/Icinga plugin
    /// convention): 0 none or only info, 1 warning, 2 critical, 3 could not diagnose.
    #[arg(long)]
    pub exit_code: bool,
    /// With --at: the recorded window around TIME whose intervals are replayed (the
    /// report is the worst one, with a timeline of every finding).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_window)]
    pub window: Duration,
}

/// A replay window: from one interval to a week.
fn parse_window(s: &str) -> std::result::Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!("{s:?}: a window is at least 1s"));
    }
    Ok(d)
}

/// The `--exit-code` status of a diagnosis that ran: its worst finding, as a Nagios plugin
/// reports it (OK 0, WARNING 1, CRITICAL 2). [`COULD_NOT_DIAGNOSE`] is UNKNOWN.
fn exit_code_of(findings: &[findings::Finding]) -> i32 {
    findings
        .iter()
        .map(|f| match f.severity {
            findings::Severity::Critical => 2,
            findings::Severity::Warning => 1,
            findings::Severity::Info => 0,
        })
        .max()
        .unwrap_or(0)
}

/// `--exit-code` when the run failed (a bad root, an unreadable kernel file): Nagios'
/// UNKNOWN.
pub const COULD_NOT_DIAGNOSE: i32 = 3;

/// What `--exit-code` means, for `iowhy diagnose --help`.
pub const AFTER_HELP: &str = "\
With --exit-code, the exit status is the worst finding (the Nagios/Icinga plugin
convention): 0 none or only info, 1 warning, 2 critical, 3 could not diagnose (the run
failed: a root that is not procfs, a kernel file that cannot be read). A command line
that cannot be parsed still exits 2.";

/// The shortest window that gives meaningful rates (/proc/uptime has 10 ms resolution).
const MIN_WINDOW: Duration = Duration::from_millis(200);

/// Diagnose and print; returns the exit status (0, or the worst finding with
/// `--exit-code`).
pub fn run(g: &Global, a: &DiagnoseArgs) -> Result<i32> {
    if a.duration < MIN_WINDOW {
        return Err(usage(format!(
            "--duration must be at least {} ms",
            MIN_WINDOW.as_millis()
        )));
    }
    if let Some(src) = g.recording() {
        return replay(g, a, &src);
    }
    let (d, session) = diagnose_keep(g, a)?;
    let out = match a.format {
        OutputFormat::Text => render::text::render(&d),
        OutputFormat::Markdown => render::markdown::render(&d),
        OutputFormat::Json => serde_json::to_string_pretty(&render::build_report(&d))? + "\n",
    };
    let code = if a.exit_code {
        exit_code_of(&d.findings)
    } else {
        0
    };
    let r = emit(&out);
    // Closing perf events and BPF links waits for RCU grace periods: after the report
    // is out, and by a child that outlives us (`trace::release`).
    if let Some((s, _)) = session {
        trace::release(s);
    }
    r.map(|()| code)
}

/// `diagnose --at TIME` (or `--file F`): the rules on every recorded interval of the
/// window; the report of the worst, with the timeline.
fn replay(g: &Global, a: &DiagnoseArgs, src: &crate::record::store::Source) -> Result<i32> {
    use crate::record::{replay, store, when};
    if g.fixture.is_some() {
        return Err(usage(
            "--at/--file read a recording; do not combine them with --fixture",
        ));
    }
    let half = i64::try_from(a.window.as_millis() / 2).unwrap_or(i64::MAX / 4);
    let (at, from, to) = match &g.at {
        Some(t) => {
            let at = when::parse(t)?;
            (Some(at), at - half, at + half)
        }
        None => (None, i64::MIN / 2, i64::MAX / 2),
    };
    let loaded = store::load(src, from, to)?;
    let at = at.unwrap_or_else(|| loaded.entries.first().map_or(0, |e| e.wall_unix_ms));
    let (from, to) = match &g.at {
        Some(_) => (from, to),
        None => (
            loaded.entries.first().map_or(0, |e| e.wall_unix_ms),
            loaded.entries.last().map_or(0, |e| e.wall_unix_ms),
        ),
    };
    let out = replay::replay(loaded, at, from, to);
    let Some(d) = out.worst else {
        return Err(usage(format!(
            "no recorded interval between {} and {} ({})",
            when::show(from),
            when::show(to),
            store::coverage(src).unwrap_or_else(|| "the recording is empty".into())
        )));
    };
    let r = out.replay;
    let text = match a.format {
        OutputFormat::Text => render::replay::text(&r) + &render::text::render(&d),
        OutputFormat::Markdown => render::replay::markdown(&r) + &render::markdown::render(&d),
        OutputFormat::Json => {
            let mut report = render::build_report(&d);
            report.replay = Some(r);
            serde_json::to_string_pretty(&report)? + "\n"
        }
    };
    emit(&text)?;
    Ok(if a.exit_code {
        exit_code_of(&d.findings)
    } else {
        0
    })
}

/// Take the two snapshots, trace in between, run the rules. Ctrl-C during the window
/// ends it early and reports on what was seen so far.
pub fn diagnose(g: &Global, a: &DiagnoseArgs) -> Result<Diagnosis> {
    diagnose_keep(g, a).map(|(d, _)| d)
}

type OpenSession = Option<(Box<dyn trace::Session>, Vec<trace::Note>)>;

/// As [`diagnose`], also handing back the tracing session so the caller can close it
/// after printing.
fn diagnose_keep(g: &Global, a: &DiagnoseArgs) -> Result<(Diagnosis, OpenSession)> {
    let mut c = g.collector()?;
    let live = c.is_live();
    let roots = c.roots();
    let opts = SnapshotOptions::full();
    let stop = super::stop_flag();
    let delayacct = match (a.enable_delayacct, live) {
        (true, true) => Some(DelayAcctGuard::enable(&roots)?),
        (true, false) => {
            return Err(usage(
                "--enable-delayacct acts on the live kernel; it cannot be used with --fixture",
            ));
        }
        _ => None,
    };
    // A run killed while it had delay accounting on could not put it back: do it now.
    let recover_failed = (live && !a.enable_delayacct)
        .then(|| crate::act::delayacct::recover(&roots).err())
        .flatten();
    // Open tracing before the first snapshot: loading and attaching take a moment that
    // must not count as part of the window.
    let req = TraceRequest {
        duration: a.duration,
        ..Default::default()
    };
    let mut session = if live && a.tracing != Tracing::Off {
        Some(trace::open(&req, &roots, a.tracing.into())?)
    } else {
        None
    };
    let s0 = c.snapshot(&opts)?;
    let pb = (super::progress_wanted() && live).then(|| {
        let pb = indicatif::ProgressBar::new(a.duration.as_millis() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template("watching I/O {bar:30} {elapsed}/{msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_message(format!("{}s", a.duration.as_secs_f64()));
        pb
    });
    let mut tick = |el: Duration| {
        if let Some(pb) = &pb {
            pb.set_position(el.as_millis() as u64);
        }
    };
    let traced = match session.as_mut() {
        Some((s, why)) => {
            let mut d = s.collect(&req, &stop, &mut tick)?;
            d.notes.append(why);
            Some(d)
        }
        None => {
            c.wait(a.duration, &stop, tick);
            None
        }
    };
    // The second snapshot closes the window; the perf events and BPF programs are
    // released after that (see `run`).
    let s1 = c.snapshot(&opts)?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if stop.load(Ordering::Relaxed) && s1.uptime_s - s0.uptime_s < MIN_WINDOW.as_secs_f64() {
        return Err(anyhow::anyhow!(
            "interrupted before the window was long enough to measure"
        ));
    }
    let iopts = IntervalOptions {
        delayacct_enabled_at_uptime_s: delayacct
            .as_ref()
            .and_then(|d| d.enabled_at_uptime_s)
            .or_else(|| c.fixture_delayacct_enabled_at_uptime_s()),
    };
    let iv = Interval::with_trace(s0, s1, iopts, traced);
    let found = findings::run_all(&iv);
    let layer = iv.trace.as_ref().map(|t| t.layer.name()).unwrap_or("none");
    let mut d = Diagnosis::new(iv, found, layer);
    d.capabilities.fixture = !live && !c.is_recording();
    if let Some(t) = &d.interval.trace {
        d.blind_spots.extend(trace_blind_spots(t));
    }
    if let Some(e) = recover_failed {
        d.blind_spots.push(BlindSpot {
            what: format!("kernel.task_delayacct may have been left on by a killed run: {e:#}"),
            how_to_see: "sysctl kernel.task_delayacct=0 if you did not turn it on".into(),
        });
    }
    if let Some(g) = &delayacct {
        if g.enabled_at_uptime_s.is_some() {
            d.blind_spots.push(BlindSpot {
                what: "delay accounting was turned on for this run only: processes started before it have no I/O wait data (null)".into(),
                how_to_see: "leave kernel.task_delayacct=1 on, or boot with `delayacct`".into(),
            });
        }
    }
    Ok((d, session))
}

/// What tracing could not see, for the report: losses, full tables, unpaired calls and
/// the layer's own notes, each with how to see it (empty when there is no better way).
pub fn trace_blind_spots(t: &trace::TraceData) -> Vec<BlindSpot> {
    let mut out = Vec::new();
    if t.lost_events > 0 {
        out.push(BlindSpot {
            what: format!(
                "{} trace events were lost (the consumer fell behind); counts are lower bounds",
                t.lost_events
            ),
            how_to_see:
                "trace specific processes (iowhy trace --pid PID), which the kernel filters".into(),
        });
    }
    if t.dropped_keys > 0 {
        out.push(BlindSpot {
            what: format!(
                "{} traced files or names were not tracked (the bounded tables were full); per-file counts miss them",
                t.dropped_keys
            ),
            how_to_see:
                "trace specific processes (iowhy trace --pid PID), so the tables hold only theirs"
                    .into(),
        });
    }
    if t.unpaired_events > 0 {
        out.push(BlindSpot {
            what: format!(
                "{} syscall exits had no matching entry (an event lost or out of order): those calls are not counted",
                t.unpaired_events
            ),
            how_to_see: "--tracing ebpf pairs them in the kernel".into(),
        });
    }
    for n in &t.notes {
        out.push(BlindSpot {
            what: format!("tracing ({}): {}", t.layer.name(), n.what),
            how_to_see: n.hint.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Layer, TraceData};

    #[test]
    fn hidden_losses_are_blind_spots() {
        let mut t = TraceData::new(Layer::Perf);
        assert!(trace_blind_spots(&t).is_empty());
        t.lost_events = 7;
        t.dropped_keys = 3;
        t.unpaired_events = 2;
        t.note(
            "block request latency needs the eBPF layer",
            "--tracing ebpf",
        );
        t.note("no hint for this one", "");
        let b = trace_blind_spots(&t);
        let what: Vec<&str> = b.iter().map(|b| b.what.as_str()).collect();
        assert!(what[0].starts_with("7 trace events were lost"), "{what:?}");
        assert!(
            what[1].starts_with("3 traced files or names were not tracked"),
            "{what:?}"
        );
        assert!(
            what[2].starts_with("2 syscall exits had no matching entry"),
            "{what:?}"
        );
        assert_eq!(
            what[3],
            "tracing (perf): block request latency needs the eBPF layer"
        );
        assert_eq!(b[3].how_to_see, "--tracing ebpf");
        assert_eq!(b[4].how_to_see, "");
        assert!(b[..4].iter().all(|b| !b.how_to_see.is_empty()));
    }

    #[test]
    fn a_blind_spot_without_a_hint_has_no_arrow() {
        let iv = findings::fixture_interval("fsync-logger");
        let found = findings::run_all(&iv);
        let mut d = Diagnosis::new(iv, found, "perf");
        let mut t = TraceData::new(Layer::Perf);
        t.note("seen only in part", "");
        t.note("not seen at all", "--tracing ebpf");
        d.blind_spots.extend(trace_blind_spots(&t));
        let text = render::text::render(&d);
        assert!(
            text.contains("  - tracing (perf): seen only in part\n"),
            "{text}"
        );
        assert!(text.contains("  - tracing (perf): not seen at all → --tracing ebpf\n"));
        assert!(!text.contains("→ \n"), "{text}");
        let md = render::markdown::render(&d);
        assert!(md.contains("- tracing (perf): seen only in part\n"), "{md}");
        assert!(!md.contains("()"), "{md}");
    }
}
