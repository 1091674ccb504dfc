//! Incidents captured as they happen: while recording (or serving with `--record`), a
//! stall starts a short high-resolution capture and is kept as an incident with its
//! diagnosis, to read without knowing when to look (`iowhy incidents`).
//!
//! A stall is PSI io `full` above a threshold (the kernel's PSI trigger wakes a poll()ing
//! thread within its 1 s window, so a stall between two samples is not missed; each
//! window's `full` share is checked too, for kernels or users without triggers), or a
//! critical finding. The capture: 1 s samples with every fd table read, for `burst`
//! (tracing stays as configured). Rate-limited: while the stall goes on, the incident
//! grows (a stall that lasts all night is one incident); a new one of the same kind opens
//! only `cooldown` after the last ended.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::findings::Severity;
use crate::render::{self, Diagnosis};
use crate::sampler::Consumer;
use crate::serve::exporter::CollectorRun;
use crate::units::rfc3339;
use crate::wire::record::Incident;

/// Until when the sampler takes 1 s samples with full fd tables (ms since the epoch).
#[derive(Debug, Default)]
pub struct Burst {
    until_ms: AtomicI64,
}

impl Burst {
    pub fn start(&self, now_ms: i64, d: Duration) {
        let until = now_ms + d.as_millis() as i64;
        self.until_ms.fetch_max(until, Ordering::Relaxed);
    }
    pub fn active(&self, now_ms: i64) -> bool {
        now_ms < self.until_ms.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Debug)]
pub struct IncidentOptions {
    /// PSI io `full` share of a window (or of the trigger's 1 s) that is a stall.
    pub psi_full_pct: f64,
    /// How long the 1 s capture lasts.
    pub burst: Duration,
    /// No new incident of the same kind sooner than this after the last ended.
    pub cooldown: Duration,
}

impl Default for IncidentOptions {
    fn default() -> Self {
        IncidentOptions {
            psi_full_pct: 10.0,
            burst: Duration::from_secs(60),
            cooldown: Duration::from_secs(1800),
        }
    }
}

/// Incidents opened since start, by kind: `iowhy_incidents_total{kind}`.
pub type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

struct Open {
    inc: Incident,
    worst: (u8, usize),
}

/// The sampler consumer that opens, grows and closes incidents.
pub struct Incidents {
    dir: PathBuf,
    opts: IncidentOptions,
    burst: Arc<Burst>,
    /// Set by the PSI trigger thread.
    psi_fired: Arc<AtomicBool>,
    open: Option<Open>,
    /// When the last incident of each kind ended.
    ended: BTreeMap<String, i64>,
    pub counts: Counts,
}

fn rank(s: Severity) -> u8 {
    match s {
        Severity::Critical => 3,
        Severity::Warning => 2,
        Severity::Info => 1,
    }
}

/// What makes this window a stall, if anything: the critical finding's kind, else PSI.
pub fn trigger(d: &Diagnosis, psi_fired: bool, psi_full_pct: f64) -> Option<String> {
    if let Some(f) = d
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .min_by_key(|f| f.kind.story_rank())
    {
        return Some(f.kind.as_str().to_string());
    }
    let full = d
        .interval
        .pressure
        .as_ref()
        .and_then(|p| p.full_pct)
        .unwrap_or(0.0);
    (psi_fired || full >= psi_full_pct).then(|| "psi_io_full".to_string())
}

impl Incidents {
    pub fn new(store: &Path, opts: IncidentOptions, burst: Arc<Burst>) -> Result<Incidents> {
        let dir = store.join("incidents");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Incidents {
            dir,
            opts,
            burst,
            psi_fired: Arc::new(AtomicBool::new(false)),
            open: None,
            ended: BTreeMap::new(),
            counts: Default::default(),
        })
    }

    /// Watch PSI io with a kernel trigger (root; `full` stall of `psi_full_pct` of 1 s):
    /// it starts the 1 s capture at once, before the sample that will show it.
    pub fn watch_psi(&self, roots: &crate::roots::Roots) -> Result<()> {
        let path = roots.proc("pressure/io");
        // A 1 s window needs CAP_SYS_RESOURCE; without it the kernel takes only multiples
        // of 2 s (Documentation/accounting/psi.rst).
        let mut last = None;
        let mut armed = None;
        for window_us in [1_000_000u64, 2_000_000] {
            let stall_us = (self.opts.psi_full_pct / 100.0 * window_us as f64) as u64;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .with_context(|| format!("opening {} for a PSI trigger", path.display()))?;
            match std::io::Write::write_all(
                &mut &f,
                format!("full {} {window_us}\0", stall_us.max(1)).as_bytes(),
            ) {
                Ok(()) => {
                    armed = Some(f);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(f) = armed else {
            let e = last.map(|e| e.to_string()).unwrap_or_default();
            anyhow::bail!("setting a PSI trigger on {}: {e}", path.display());
        };
        let (fired, burst, d) = (self.psi_fired.clone(), self.burst.clone(), self.opts.burst);
        std::thread::Builder::new()
            .name("iowhy-psi".into())
            .spawn(move || psi_loop(f, &fired, &burst, d))?;
        Ok(())
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn save(&self, inc: &Incident) {
        let write = || -> Result<()> {
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            serde_json::to_writer_pretty(&mut tmp, inc)?;
            tmp.persist(self.path(&inc.id))?;
            Ok(())
        };
        if let Err(e) = write() {
            eprintln!("iowhy record: saving incident {}: {e:#}", inc.id);
        }
    }

    /// One window: open, grow or close.
    pub fn observe(&mut self, d: &Diagnosis, now_ms: i64) {
        let fired = self.psi_fired.swap(false, Ordering::Relaxed);
        let kind = trigger(d, fired, self.opts.psi_full_pct);
        let badness = |d: &Diagnosis| {
            let w = d
                .findings
                .iter()
                .map(|f| rank(f.severity))
                .max()
                .unwrap_or(0);
            (
                w,
                d.findings.iter().filter(|f| rank(f.severity) == w).count(),
            )
        };
        if let Some(o) = &mut self.open {
            if kind.is_some() || self.burst.active(now_ms) {
                o.inc.ended_at = rfc3339(now_ms);
                o.inc.windows += 1;
                o.inc.duration_s = (now_ms - o.inc.started_unix_ms) as f64 / 1000.0;
                if badness(d) > o.worst {
                    o.worst = badness(d);
                    fill(&mut o.inc, d);
                }
                let inc = o.inc.clone();
                self.save(&inc);
                return;
            }
            let o = self.open.take().expect("open");
            self.ended.insert(o.inc.kind.clone(), now_ms);
            return;
        }
        let Some(kind) = kind else { return };
        let cool = self.opts.cooldown.as_millis() as i64;
        if self.ended.get(&kind).is_some_and(|t| now_ms - t < cool) {
            return;
        }
        self.burst.start(now_ms, self.opts.burst);
        // The window's start, on the clock `now_ms` is on.
        let start = now_ms - (d.interval.after.wall_unix_ms - d.interval.before.wall_unix_ms);
        let mut inc = Incident {
            id: id_of(start, &kind),
            kind: kind.clone(),
            started_at: rfc3339(start),
            started_unix_ms: start,
            ended_at: rfc3339(now_ms),
            duration_s: (now_ms - start) as f64 / 1000.0,
            windows: 1,
            ..Default::default()
        };
        fill(&mut inc, d);
        self.save(&inc);
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_insert(0) += 1;
        self.open = Some(Open {
            inc,
            worst: badness(d),
        });
    }
}

/// `20260308T030004Z-fsync_storm`: sorts by time, says what.
fn id_of(start_ms: i64, kind: &str) -> String {
    let u = crate::record::when::utc(start_ms);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{kind}",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

/// The incident's worst window: its worst finding, culprit and note.
fn fill(inc: &mut Incident, d: &Diagnosis) {
    let worst = d
        .findings
        .iter()
        .min_by_key(|f| (3 - rank(f.severity), f.kind.story_rank()));
    inc.worst_kind = worst.map(|f| f.kind);
    inc.worst_severity = worst.map(|f| f.severity);
    inc.summary = worst.map(|f| f.summary.clone()).unwrap_or_else(|| {
        "I/O pressure: tasks stalled on I/O with no finding naming a cause".into()
    });
    inc.culprit = d
        .findings
        .iter()
        .find(|f| f.subject.pid.is_some())
        .map(|f| f.subject.clone());
    inc.worst_at = rfc3339(d.interval.after.wall_unix_ms);
    inc.markdown = render::markdown::render(d);
    inc.text = render::text::render(d);
}

fn psi_loop(f: std::fs::File, fired: &AtomicBool, burst: &Burst, d: Duration) {
    let stop = &crate::source::reader::guard::STOP;
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [rustix::event::PollFd::new(
            &f,
            rustix::event::PollFlags::PRI,
        )];
        let timeout = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 500_000_000,
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => {
                let ev = fds[0].revents();
                if ev.contains(rustix::event::PollFlags::ERR) {
                    return;
                }
                if ev.contains(rustix::event::PollFlags::PRI) {
                    fired.store(true, Ordering::Relaxed);
                    burst.start(crate::record::when::now_ms(), d);
                }
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

impl Consumer for Incidents {
    fn window(&mut self, d: &Diagnosis, _runs: &[CollectorRun]) {
        self.observe(d, d.interval.after.wall_unix_ms);
    }
}

/// The incidents of a store, oldest first.
pub fn list(store: &Path) -> Result<Vec<Incident>> {
    let dir = store.join("incidents");
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(v);
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        match std::fs::read(&p).map(|b| serde_json::from_slice::<Incident>(&b)) {
            Ok(Ok(i)) => v.push(i),
            _ => eprintln!("iowhy: {}: not an incident; skipped", p.display()),
        }
    }
    v.sort_by_key(|i| i.started_unix_ms);
    Ok(v)
}

#[cfg(test)]
#[path = "incident_tests.rs"]
mod tests;
