//! `iowhy top` on a terminal: a sampler thread (snapshots through the deadline-bounded
//! reader, perf tracing in between, the rules on each window) sends [`model::Sample`]s;
//! the UI thread turns keys, resizes and samples into [`app::Msg`]s, updates the state and
//! draws it ([`view`]). The UI thread never reads the kernel, so keys answer while a read
//! is stuck; nothing but the UI writes to the terminal (stderr goes to /dev/null while the
//! screen is up, and comes back before a panic message is printed).

pub mod app;
pub mod model;
pub mod view;

use std::collections::{BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event, KeyEventKind};

use crate::interval::{Interval, IntervalOptions};
use crate::source::process::{FdPolicy, ProcessOptions};
use crate::source::{Collector, SnapshotOptions};
use crate::trace::{self, TraceRequest, TracingChoice};
use app::{App, Effect, Msg};
use model::Sample;

/// How the screen is fed.
pub struct Options {
    pub delay: Duration,
    pub tracing: TracingChoice,
    /// Every fd table is read again this often; in between only those of processes that
    /// did I/O (an idle process's files do not grow).
    pub fds_refresh: Duration,
}

/// Run the screen until `q`, Ctrl-C or a signal (SIGTERM, SIGHUP, SIGINT set `stop`).
pub fn run(c: Collector, o: Options, stop: Arc<AtomicBool>) -> Result<()> {
    let live = c.is_live();
    let users = read_users(&c);
    let (tx, rx) = std::sync::mpsc::channel::<Msg>();
    let done = Arc::new(Mutex::new(false));
    let sampler = Sampler {
        collector: c,
        tracing: if live { o.tracing } else { TracingChoice::Off },
        delay: o.delay,
        refresh: o.fds_refresh,
        users,
    };
    let (st, d2, tx2) = (stop.clone(), done.clone(), tx.clone());
    let handle = std::thread::Builder::new()
        .name("iowhy-top-sampler".into())
        .spawn(move || {
            sampler.run(&tx2, &st);
            if let Ok(mut d) = d2.lock() {
                *d = true;
            }
        })?;
    // The sampler holds the only sender: when it ends, the screen says so.
    drop(tx);
    let result = ui(&rx, o.delay, &stop, live);
    // The sampler stops at its next check (a wait polls every 100 ms, a stuck read
    // gives up at its deadline); a sampler stuck longer is not waited for.
    stop.store(true, Ordering::Relaxed);
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until && !done.lock().map(|d| *d).unwrap_or(true) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if done.lock().map(|d| *d).unwrap_or(false) {
        let _ = handle.join();
    }
    result
}

fn read_users(c: &Collector) -> HashMap<u32, String> {
    let p = c.roots().host(std::path::Path::new("/etc/passwd"));
    std::fs::read_to_string(p)
        .map(|t| model::parse_passwd(&t))
        .unwrap_or_default()
}

/// The screen: set up, loop, and put the terminal back however the loop ends.
fn ui(rx: &Receiver<Msg>, delay: Duration, stop: &AtomicBool, live: bool) -> Result<()> {
    let (_screen, mut term) = Screen::enter()?;
    let size = term.size().map(|s| (s.width, s.height)).unwrap_or((80, 24));
    let mut app = App::new(delay.as_secs_f64(), size);
    app.no_renice = std::env::var_os("IOWHY_NO_RENICE").is_some();
    app.live = live;
    // tests/live_top.rs proves that a panic gives the terminal back: with this set, `!`
    // panics.
    let panic_key = std::env::var_os("IOWHY_TEST_PANIC_KEY").is_some();
    let mut dirty = true;
    // Every second a Tick: the clock of an idle screen (a fixture) still moves.
    let mut last_tick = Instant::now();
    loop {
        if dirty {
            term.draw(|f| view::render(&app, f))?;
            dirty = false;
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut msgs = Vec::new();
        // The header's clock moves once a second even when no sample comes.
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            msgs.push(Msg::Tick);
        }
        if event::poll(Duration::from_millis(100))? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    if panic_key && k.code == event::KeyCode::Char('!') {
                        panic!("IOWHY_TEST_PANIC_KEY: a panic on request");
                    }
                    msgs.push(Msg::Key(k))
                }
                Event::Resize(w, h) => msgs.push(Msg::Resize(w, h)),
                _ => {}
            }
        }
        loop {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    if !app.ended {
                        app.ended = true;
                        dirty = true;
                    }
                    break;
                }
            }
        }
        for m in msgs {
            dirty = true;
            match app.update(m) {
                Effect::None => {}
                Effect::Quit => return Ok(()),
                Effect::Redraw => term.clear()?,
                Effect::Ionice { pid, class, level } => {
                    app.status = Some(match crate::act::ionice::set(pid, class.number(), level) {
                        Ok(()) => format!("done: ionice -c {} -n {level} -p {pid}", class.number()),
                        Err(e) => format!("ionice {pid} failed: {e}"),
                    });
                }
            }
        }
    }
}

/// The terminal in raw mode on the alternate screen, with stderr sent to /dev/null; put
/// back on drop, on a panic (before its message prints) and so on every way out.
struct Screen;

/// The real stderr while the screen is up.
static SAVED_STDERR: Mutex<Option<OwnedFd>> = Mutex::new(None);

fn restore_stderr() {
    if let Ok(mut s) = SAVED_STDERR.lock() {
        if let Some(fd) = s.take() {
            let _ = rustix::stdio::dup2_stderr(&fd);
        }
    }
}

impl Screen {
    fn enter() -> Result<(Screen, ratatui::DefaultTerminal)> {
        // ratatui's init installs a panic hook that restores the terminal and then calls
        // the previous hook; ours, installed after it, first gives stderr back.
        let term = ratatui::try_init().context("setting up the terminal")?;
        let term_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_stderr();
            term_hook(info);
        }));
        if let (Ok(saved), Ok(null)) = (
            rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stderr(), 3),
            rustix::fs::open(
                "/dev/null",
                rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ),
        ) {
            if rustix::stdio::dup2_stderr(&null).is_ok() {
                if let Ok(mut s) = SAVED_STDERR.lock() {
                    *s = Some(saved);
                }
            }
        }
        Ok((Screen, term))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
        // restore() leaves the alternate screen; the cursor is shown by the terminal's
        // drop, which a signal or a panic may not reach: show it here too.
        let _ = ratatui::crossterm::execute!(std::io::stdout(), ratatui::crossterm::cursor::Show);
        restore_stderr();
    }
}

/// Samples for the screen, on its own thread.
struct Sampler {
    collector: Collector,
    /// Opened on the sampler's thread (a session is not Send).
    tracing: TracingChoice,
    delay: Duration,
    refresh: Duration,
    users: HashMap<u32, String>,
}

impl Sampler {
    fn run(mut self, tx: &Sender<Msg>, stop: &AtomicBool) {
        let mut session = None;
        if self.tracing != TracingChoice::Off {
            let req = TraceRequest {
                duration: self.delay,
                ..Default::default()
            };
            match trace::open(&req, &self.collector.roots(), self.tracing) {
                Ok((s, _)) => session = Some(s),
                Err(e) => {
                    let _ = tx.send(Msg::SampleError(format!(
                        "no tracing, FSYNC/s unknown: {e:#}"
                    )));
                }
            }
        }
        let mut fds = FdTables {
            refresh: self.refresh,
            last_full: None,
            active: BTreeSet::new(),
        };
        let empty = crate::snapshot::Snapshot::default();
        let mut prev = match self.collector.snapshot(&fds.options(&empty)) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Msg::SampleError(format!("first snapshot failed: {e:#}")));
                return;
            }
        };
        let live = self.collector.is_live();
        while !stop.load(Ordering::Relaxed) {
            let traced = self.watch(session.as_mut(), stop);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let s = match self.collector.snapshot(&fds.options(&prev)) {
                Ok(s) => s,
                Err(e) if live => {
                    let _ = tx.send(Msg::SampleError(format!("snapshot failed: {e:#}")));
                    continue;
                }
                // A fixture has no more time points.
                Err(_) => return,
            };
            let before = std::mem::take(&mut prev);
            let iv = Interval::with_trace(before, s, IntervalOptions::default(), traced);
            fds.learn(&iv);
            let found = crate::findings::run_all(&iv);
            let sample = Sample::new(&iv, &found, &self.users);
            if tx.send(Msg::Sample(Box::new(sample))).is_err() {
                return;
            }
            prev = iv.after;
        }
    }

    /// The window: tracing drains for the delay, or a plain wait without it.
    fn watch(
        &mut self,
        session: Option<&mut Box<dyn trace::Session>>,
        stop: &AtomicBool,
    ) -> Option<trace::TraceData> {
        let Some(s) = session else {
            self.collector.wait(self.delay, stop, |_| {});
            return None;
        };
        let req = TraceRequest {
            duration: self.delay,
            ..Default::default()
        };
        s.collect(&req, stop, &mut |_| {}).ok()
    }
}

/// Which fd tables the next snapshot reads: all every `refresh`, in between those of the
/// processes that did I/O; the others keep their last table (an idle process's files do
/// not grow), as `iowhy serve` does.
struct FdTables {
    refresh: Duration,
    last_full: Option<Instant>,
    active: BTreeSet<u32>,
}

impl FdTables {
    fn options(&mut self, prev: &crate::snapshot::Snapshot) -> SnapshotOptions {
        let full = self.last_full.is_none_or(|t| t.elapsed() >= self.refresh);
        if full {
            self.last_full = Some(Instant::now());
        }
        SnapshotOptions {
            processes: Some(ProcessOptions {
                fds: if full {
                    FdPolicy::All
                } else {
                    FdPolicy::Pids(std::mem::take(&mut self.active))
                },
                threads: true,
                details: true,
                only: None,
                known: None,
            }),
            mounts: true,
            block: true,
            containers: true,
            carry: (!full).then(|| {
                Arc::new(
                    prev.processes
                        .iter()
                        .map(|p| (p.key(), (p.fds.clone(), p.cgroups.clone())))
                        .collect(),
                )
            }),
        }
    }

    fn learn(&mut self, iv: &Interval) {
        self.active = iv
            .processes
            .iter()
            .filter(|p| {
                p.rchar_per_s.unwrap_or(0.0) > 0.0
                    || p.wchar_per_s.unwrap_or(0.0) > 0.0
                    || p.d_tasks > 0
                    || p.started_in_window
            })
            .map(|p| p.pid)
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_sampler_sends_one_sample_then_ends() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fsync-logger");
        let s = Sampler {
            collector: Collector::fixture(&dir).unwrap(),
            tracing: TracingChoice::Off,
            delay: Duration::from_millis(100),
            refresh: Duration::from_secs(60),
            users: HashMap::new(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        s.run(&tx, &AtomicBool::new(false));
        drop(tx);
        let got: Vec<Msg> = rx.iter().collect();
        assert_eq!(got.len(), 1);
        let Msg::Sample(s) = &got[0] else {
            panic!("not a sample")
        };
        let pid = crate::findings::fixture_lab_pids("fsync-logger")[0];
        assert!(
            s.processes
                .iter()
                .any(|p| p.pid == pid && p.top_file.is_some())
        );
    }

    #[test]
    fn fd_tables_are_read_for_everyone_first_then_for_the_active_ones() {
        let iv = crate::findings::fixture_interval("fsync-logger");
        let writer = crate::findings::fixture_lab_pids("fsync-logger")[0];
        let mut t = FdTables {
            refresh: Duration::from_secs(60),
            last_full: None,
            active: BTreeSet::new(),
        };
        let o = t.options(&iv.before);
        assert_eq!(o.processes.unwrap().fds, FdPolicy::All);
        assert!(o.carry.is_none());
        t.learn(&iv);
        let o = t.options(&iv.after);
        match o.processes.unwrap().fds {
            FdPolicy::Pids(s) => assert!(s.contains(&writer) && s.len() < iv.processes.len()),
            other => panic!("{other:?}"),
        }
        assert!(o.carry.is_some());
    }
}
