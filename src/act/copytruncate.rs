//! Copytruncate without losing a line: copy the log while the writers run, then freeze
//! every writer (SIGSTOP, each guarded by a guardian that resumes it if iowhy dies) for
//! the few milliseconds it takes to copy what they added, make the copy durable, give it
//! its rotated name and truncate — so no line written during the copy is lost and none
//! is split (a stopped process is never inside a write(2)).
//!
//! It refuses, and truncates nothing, whenever that guarantee does not hold: a writer
//! that cannot be guarded or does not stop within a second (a thread in uninterruptible
//! I/O), a writer resumed by someone else meanwhile, a log that changes under the freeze.
//! Every writer iowhy stopped is resumed first; a writer that was already stopped (by
//! someone's SIGSTOP, a debugger, `iowhy pause`) is neither stopped nor resumed by it.
//!
//! The copy is made as an anonymous file (O_TMPFILE) and linked to its name only once it
//! is complete and synced: if iowhy dies on the way, no partial or duplicate copy is left.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::process::Signal;

use crate::error::usage;
use crate::roots::Roots;
use crate::units;

use super::guardian::{Guardian, Undo};
use super::holders::Holder;
use super::proc_handle::ProcHandle;
use super::rotated::{same_owner_and_mode, sync_dir};
use super::safe_open::{Identity, open_checked};

/// How long a writer gets to stop. A writer that is not stopped by then is inside a
/// system call that does not take signals (uninterruptible I/O, D state): waiting longer
/// would freeze the others for as long, so the rotation is refused instead.
const STOP_WITHIN: Duration = Duration::from_secs(1);
/// The guardian resumes a writer on its own this long after the freeze began, in case
/// iowhy hangs. The freeze lasts milliseconds (the bulk is copied and synced before it).
const GUARD_DEADLINE: Duration = Duration::from_secs(10);
/// The truncate is never attempted closer than this to the guardians' deadline.
const GUARD_MARGIN: Duration = Duration::from_secs(2);
/// Tests only, in debug builds: hold the writers frozen this many milliseconds before the
/// final copy, so that a test can kill iowhy inside the window.
#[cfg(debug_assertions)]
const TEST_HOLD_ENV: &str = "IOWHY_TEST_HOLD_FROZEN_MS";

#[derive(Debug, Default)]
pub struct Outcome {
    /// Bytes in the rotated copy (all the log held at the truncate).
    pub copied_bytes: u64,
    /// Of those, bytes the writers added after the copy began.
    pub written_during_copy_bytes: u64,
    /// How long the writers were stopped.
    pub frozen_ms: f64,
    pub notes: Vec<String>,
}

/// The copy being made: anonymous until linked (O_TMPFILE), or a named temporary file
/// where the filesystem has no O_TMPFILE or linking one needs a privilege we lack.
enum Copy {
    Anon(File),
    Named(tempfile::NamedTempFile),
}

impl Copy {
    fn create(dir: &Path) -> Result<Copy> {
        // Linking an O_TMPFILE by fd (AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH.
        if rustix::process::geteuid().is_root() {
            if let Ok(f) = OpenOptions::new()
                .write(true)
                .read(true)
                .custom_flags(libc::O_TMPFILE)
                .mode(0o600)
                .open(dir)
            {
                return Ok(Copy::Anon(f));
            }
        }
        Ok(Copy::Named(
            tempfile::Builder::new()
                .prefix(".iowhy-copytruncate.")
                .tempfile_in(dir)
                .with_context(|| format!("a temporary file in {}", dir.display()))?,
        ))
    }

    fn file(&self) -> &File {
        match self {
            Copy::Anon(f) => f,
            Copy::Named(t) => t.as_file(),
        }
    }

    /// Give the copy its name; fails if the name exists (nothing is replaced).
    fn link(self, to: &Path) -> Result<()> {
        match self {
            Copy::Anon(f) => rustix::fs::linkat(
                f.as_fd(),
                "",
                rustix::fs::CWD,
                to,
                rustix::fs::AtFlags::EMPTY_PATH,
            )
            .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
            .with_context(|| format!("linking the copy as {}", to.display())),
            Copy::Named(t) => t
                .persist_noclobber(to)
                .map(drop)
                .map_err(|e| e.error)
                .with_context(|| format!("naming the copy {}", to.display())),
        }
    }
}

/// Copy bytes [from, to) of `src` to the same offsets of `dst`; returns how many were
/// there to copy (fewer if the source shrank).
fn copy_range(src: &File, dst: &File, from: u64, to: u64) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = from;
    while pos < to {
        let want = ((to - pos) as usize).min(buf.len());
        let n = src.read_at(&mut buf[..want], pos)?;
        if n == 0 {
            break;
        }
        dst.write_all_at(&buf[..n], pos)?;
        pos += n as u64;
    }
    Ok(pos - from)
}

/// The writers iowhy stopped (each with its guardian), and those it left alone because
/// they were stopped already.
struct Frozen {
    stopped: Vec<(ProcHandle, Guardian)>,
    already: Vec<u32>,
    /// When the first guardian was started: its deadline (`GUARD_DEADLINE`) counts from
    /// then, and it resumes its writer on its own at that time.
    guards_since: Instant,
}

impl Frozen {
    /// Resume every writer iowhy stopped; the guardians can go.
    fn thaw(self) {
        for (h, g) in self.stopped {
            let _ = h.signal(Signal::CONT);
            g.done();
        }
    }

    /// A writer that can run again (resumed by someone else, or never stopped).
    fn running(&self, roots: &Roots) -> Option<String> {
        self.stopped
            .iter()
            .map(|(h, _)| h.pid)
            .chain(self.already.iter().copied())
            .find_map(|pid| {
                super::running_thread(roots, pid)
                    .map(|(tid, st)| format!("pid {pid} (thread {tid} in state {st}) is running"))
            })
    }
}

/// Stop every writer, each under a guardian. The guardians are all started first, so
/// that the writers are stopped together and none waits frozen while the others' guardians
/// start. On failure everything stopped so far is resumed and the reason returned.
fn freeze(roots: &Roots, writers: &[Holder], notes: &mut Vec<String>) -> Result<Frozen, String> {
    let mut f = Frozen {
        stopped: Vec::new(),
        already: Vec::new(),
        guards_since: Instant::now(),
    };
    let mut guarded: Vec<(ProcHandle, Guardian)> = Vec::new();
    let mut seen = BTreeSet::new();
    for w in writers {
        if !seen.insert(w.pid) {
            continue;
        }
        let h = match ProcHandle::open(roots, w.pid, w.target.start_ticks) {
            Ok(h) => h,
            Err(why) => {
                // Exited (or its pid is someone else's now): it writes no more.
                notes.push(format!("writer {why}"));
                continue;
            }
        };
        if super::running_thread(roots, w.pid).is_none() {
            notes.push(format!(
                "pid {} ({}) was already stopped (by a signal or a debugger): left stopped, as it was",
                w.pid, w.target.comm
            ));
            f.already.push(w.pid);
            continue;
        }
        match Guardian::spawn(
            Undo::Cont,
            w.pid,
            w.target.start_ticks,
            GUARD_DEADLINE,
            None,
            roots,
        ) {
            Ok(g) => guarded.push((h, g)),
            Err(e) => {
                for (_, g) in guarded {
                    g.done();
                }
                return Err(format!(
                    "could not start a guardian for pid {} ({e:#}), so no writer was stopped",
                    w.pid
                ));
            }
        }
    }
    let mut guarded = guarded.into_iter();
    while let Some((h, g)) = guarded.next() {
        if let Err(e) = h.signal(Signal::STOP) {
            let pid = h.pid;
            // The guardians of writers not stopped go without resuming anything.
            for (_, g) in std::iter::once((h, g)).chain(guarded) {
                g.done();
            }
            f.thaw();
            return Err(format!("could not stop pid {pid}: {e}"));
        }
        f.stopped.push((h, g));
    }
    let t0 = Instant::now();
    loop {
        match f.running(roots) {
            None => return Ok(f),
            Some(why) if t0.elapsed() >= STOP_WITHIN => {
                f.thaw();
                return Err(format!(
                    "{why} {} ms after SIGSTOP (a thread in uninterruptible I/O stops only when its request completes)",
                    STOP_WITHIN.as_millis()
                ));
            }
            Some(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn test_hold() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var(TEST_HOLD_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Refusal: nothing was truncated and every writer iowhy stopped runs again.
fn refuse(path: &Path, why: &str) -> anyhow::Error {
    usage(format!(
        "copytruncate of {} refused: {why}. Nothing was truncated: the log is as it was and every writer iowhy stopped was resumed",
        path.display()
    ))
}

/// Copy `path` to `rotated` and truncate it, with the writers frozen for the tail.
/// `checked` is the log iowhy examined (its holders, its mappers): the file opened must
/// be that one, never what a symlink swapped in by the directory's owner points to.
pub fn run(
    roots: &Roots,
    writers: &[Holder],
    path: &Path,
    rotated: &Path,
    checked: Identity,
) -> Result<Outcome> {
    let dir = path.parent().context("the log has no directory")?;
    let open = |write| open_checked(path, write, checked).map_err(|e| refuse(path, &e.to_string()));
    let src = open(false)?;
    let live = open(true)?;
    let md = src.metadata()?;
    let copy = Copy::create(dir)?;
    same_owner_and_mode(copy.file(), &md)?;
    let size0 = md.len();
    let mut copied = copy_range(&src, copy.file(), 0, size0)?;
    if copied < size0 {
        return Err(refuse(path, "the log shrank while it was copied"));
    }
    // Sync the bulk now, with the writers running: under the freeze only the tail is left
    // to sync, and the freeze stays milliseconds long.
    copy.file().sync_data()?;
    let mut out = Outcome::default();
    let frozen = freeze(roots, writers, &mut out.notes).map_err(|why| refuse(path, &why))?;
    let frozen_at = Instant::now();
    test_hold();
    let tail = (|| -> Result<(), String> {
        loop {
            let size = src.metadata().map_err(|e| e.to_string())?.len();
            if size < copied {
                return Err("the log shrank under the freeze (truncated by someone else?)".into());
            }
            if size == copied {
                break;
            }
            copied += copy_range(&src, copy.file(), copied, size).map_err(|e| format!("{e:#}"))?;
        }
        // One fsync of the copy, before the truncate: a crash right after it cannot lose
        // what was copied.
        copy.file().sync_all().map_err(|e| e.to_string())?;
        let len = copy.file().metadata().map_err(|e| e.to_string())?.len();
        if len != copied {
            return Err(format!("the copy has {len} bytes, the log {copied}"));
        }
        Ok(())
    })();
    if let Err(why) = tail {
        frozen.thaw();
        return Err(refuse(path, &why));
    }
    if let Err(e) = copy.link(rotated).and_then(|_| Ok(sync_dir(dir)?)) {
        frozen.thaw();
        return Err(refuse(path, &format!("{e:#}")));
    }
    // Last check, just before the truncate: still frozen, nothing added, and far enough
    // from the guardians' deadline that none can resume a writer between this check and
    // the truncate (lines written in that gap would be truncated with the rest).
    let left = GUARD_DEADLINE.saturating_sub(frozen.guards_since.elapsed());
    let last = if left < GUARD_MARGIN {
        Some(format!(
            "the freeze lasted too long ({} ms left before the guardians resume the writers)",
            left.as_millis()
        ))
    } else {
        None
    };
    let last = last.or_else(|| match frozen.running(roots) {
        Some(why) => Some(format!("{why}: it was resumed by someone else")),
        None => match src.metadata() {
            Ok(m) if m.len() == copied => None,
            Ok(m) => Some(format!(
                "{} bytes appeared under the freeze (a writer iowhy cannot see?)",
                m.len().saturating_sub(copied)
            )),
            Err(e) => Some(e.to_string()),
        },
    });
    if let Some(why) = last {
        // The copy is a duplicate of what the log still holds: take its name back.
        let _ = std::fs::remove_file(rotated);
        frozen.thaw();
        return Err(refuse(path, &why));
    }
    let truncated = live.set_len(0);
    if truncated.is_err() {
        let _ = std::fs::remove_file(rotated);
    }
    out.frozen_ms = frozen_at.elapsed().as_secs_f64() * 1e3;
    frozen.thaw();
    if let Err(e) = truncated {
        return Err(refuse(path, &format!("truncating failed: {e}")));
    }
    out.copied_bytes = copied;
    out.written_during_copy_bytes = copied - size0;
    out.notes.push(format!(
        "the writers were stopped for {:.1} ms for the final copy, an fsync and the truncate; {} written during the copy were kept",
        out.frozen_ms,
        units::bytes_u(out.written_during_copy_bytes)
    ));
    Ok(out)
}
