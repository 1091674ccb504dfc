//! `--enable-delayacct`: turn `kernel.task_delayacct` on for one run and put it back
//! afterwards — only when asked. Tasks that started before it was turned on have no delay
//! record at all, so their I/O wait stays unknown (null); the report says so.
//!
//! Putting it back is shared work: runs can overlap, and a run can be killed (SIGKILL runs
//! no Drop). So the original value and the runs that want the switch on are kept in a
//! state file, `/run/iowhy/delayacct.json` (directory made 0700, obeyed only when root
//! owns both and no one else can write to the directory): every run first drops the entries of runs that are gone and, if none is left,
//! puts the original back; the last live run to finish puts it back too. `/run` is a
//! tmpfs, so a reboot forgets the state along with the sysctl.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::roots::Roots;
use crate::source::reader::Reader;

/// Where the shared state lives, under the root.
const STATE_DIR: &str = "run/iowhy";
const STATE_FILE: &str = "delayacct.json";
const LOCK_FILE: &str = "delayacct.lock";
/// The lock is held for a few reads and writes: a run that cannot get it within this has
/// met a stopped iowhy, and gives up rather than wait on it.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// One run, identified across pid reuse by its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub pid: u32,
    pub start_ticks: u64,
}

/// What the state file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The value before the first run turned it on ("0").
    pub original: String,
    /// Uptime (s) when it was turned on.
    pub enabled_at_uptime_s: Option<f64>,
    /// The runs that want it on.
    pub runs: Vec<Run>,
}

/// What to do to the sysctl and the state file.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Write this value to the sysctl.
    pub write: Option<String>,
    /// The state to save (`None`: remove the file).
    pub state: Option<State>,
}

/// At the start of a run: drop dead runs, put the original back if no live run is left,
/// then, if `me` wants it on, register and turn it on. `now` is the sysctl's value.
fn plan_start(
    state: Option<State>,
    now: &str,
    me: Option<Run>,
    uptime_s: Option<f64>,
    alive: impl Fn(&Run) -> bool,
) -> Plan {
    let mut state = state.map(|mut s| {
        s.runs.retain(|r| alive(r));
        s
    });
    let mut value = now.to_string();
    let mut write = None;
    if state.as_ref().is_some_and(|s| s.runs.is_empty()) {
        // Every run that wanted it is gone (killed before it could put it back).
        let s = state.take();
        if let Some(s) = s {
            if s.original != value {
                write = Some(s.original.clone());
                value = s.original;
            }
        }
    }
    let Some(me) = me else {
        return Plan { write, state };
    };
    match &mut state {
        Some(s) => {
            if !s.runs.contains(&me) {
                s.runs.push(me);
            }
            if value != "1" {
                // Someone turned it off under the live runs: on again.
                write = Some("1".into());
            }
        }
        // Already on and nobody of ours did it: not ours to put back.
        None if value == "1" => {}
        None => {
            state = Some(State {
                original: value,
                enabled_at_uptime_s: uptime_s,
                runs: vec![me],
            });
            write = Some("1".into());
        }
    }
    Plan { write, state }
}

/// At the end of a run: unregister `me`; the last live run puts the original back.
fn plan_finish(state: Option<State>, me: Run, alive: impl Fn(&Run) -> bool) -> Plan {
    let Some(mut s) = state else {
        return Plan {
            write: None,
            state: None,
        };
    };
    s.runs.retain(|r| *r != me && alive(r));
    if s.runs.is_empty() {
        Plan {
            write: Some(s.original),
            state: None,
        }
    } else {
        Plan {
            write: None,
            state: Some(s),
        }
    }
}

/// The state directory, the sysctl and the process table of one machine.
struct Shared {
    dir: PathBuf,
    sysctl: PathBuf,
    reader: Reader,
}

/// The held lock of the state directory (released when dropped).
struct Lock(#[allow(dead_code)] std::fs::File);

impl Shared {
    fn new(roots: &Roots) -> Shared {
        Shared {
            dir: roots.root.join(STATE_DIR),
            sysctl: roots.proc("sys/kernel/task_delayacct"),
            reader: Reader::live(roots.clone()),
        }
    }

    /// Create the directory (0700) or check that it is root's and that no one else can
    /// write to it (`iowhy throttle` keeps its state there too, and may have made it
    /// 0755).
    fn trusted_dir(&self) -> Result<()> {
        match std::fs::symlink_metadata(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .with_context(|| format!("creating {}", self.dir.display()))?;
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
                Ok(())
            }
            Err(e) => Err(e).with_context(|| self.dir.display().to_string()),
            Ok(m) => {
                if !m.is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0 {
                    bail!(
                        "{}: not a directory of root's that only root can write to: its delay accounting state is not trusted",
                        self.dir.display()
                    );
                }
                Ok(())
            }
        }
    }

    fn lock(&self) -> Result<Lock> {
        self.trusted_dir()?;
        let p = self.dir.join(LOCK_FILE);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .with_context(|| p.display().to_string())?;
        let t = Instant::now();
        loop {
            match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Lock(f)),
                Err(_) if t.elapsed() < LOCK_WAIT => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => bail!(
                    "{}: held by another iowhy for over {} s ({e})",
                    p.display(),
                    LOCK_WAIT.as_secs()
                ),
            }
        }
    }

    /// The saved state; a file root does not own, or that does not parse, is ignored.
    fn load(&self) -> Option<State> {
        let p = self.dir.join(STATE_FILE);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .ok()?;
        let m = f.metadata().ok()?;
        if !m.is_file() || m.uid() != 0 {
            return None;
        }
        serde_json::from_reader(f).ok()
    }

    fn save(&self, s: &Option<State>) -> Result<()> {
        let p = self.dir.join(STATE_FILE);
        match s {
            None => match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).with_context(|| p.display().to_string())
                }
                _ => Ok(()),
            },
            Some(s) => {
                let tmp = self
                    .dir
                    .join(format!("{STATE_FILE}.{}", std::process::id()));
                std::fs::write(&tmp, serde_json::to_vec(s)?)
                    .with_context(|| tmp.display().to_string())?;
                std::fs::rename(&tmp, &p).with_context(|| p.display().to_string())
            }
        }
    }

    fn read_sysctl(&mut self) -> Result<String> {
        let p = self.sysctl.clone();
        let v = self.reader.read_path(&p).with_context(|| {
            format!(
                "{}: this kernel has no delay accounting switch (needs 5.14+)",
                p.display()
            )
        })?;
        Ok(v.trim().to_string())
    }

    fn apply(&self, plan: &Plan) -> Result<()> {
        if let Some(v) = &plan.write {
            std::fs::write(&self.sysctl, v).with_context(|| {
                format!("setting {} to {v} (needs root)", self.sysctl.display())
            })?;
        }
        self.save(&plan.state)
    }

    /// Is `r` still running (same pid, same start time)?
    fn alive(&mut self, r: &Run) -> bool {
        match self.start_ticks(r.pid) {
            Some(t) => t == r.start_ticks,
            None => false,
        }
    }

    fn start_ticks(&mut self, pid: u32) -> Option<u64> {
        let p = self.reader.roots.pid_dir(pid).join("stat");
        let text = self.reader.read_path(&p).ok()?;
        let s = crate::parse::pid_stat::parse(&text).ok()?;
        (s.state != 'Z' && s.state != 'X').then_some(s.start_ticks)
    }

    fn uptime_s(&mut self) -> Option<f64> {
        let p = self.reader.roots.proc("uptime");
        let text = self.reader.read_path(&p).ok()?;
        crate::parse::kv::parse_uptime(&text).ok()
    }

    /// Under the lock: read, plan, apply.
    fn start(&mut self, me: Option<Run>) -> Result<Option<State>> {
        let _l = self.lock()?;
        let state = self.load();
        let now = self.read_sysctl()?;
        let up = self.uptime_s();
        let alive: Vec<Run> = state
            .iter()
            .flat_map(|s| s.runs.iter().copied())
            .filter(|r| self.alive(r))
            .collect();
        let plan = plan_start(state, &now, me, up, |r| alive.contains(r));
        self.apply(&plan)?;
        Ok(plan.state)
    }

    fn finish(&mut self, me: Run) -> Result<()> {
        let _l = self.lock()?;
        let state = self.load();
        let alive: Vec<Run> = state
            .iter()
            .flat_map(|s| s.runs.iter().copied())
            .filter(|r| *r != me && self.alive(r))
            .collect();
        let plan = plan_finish(state, me, |r| alive.contains(r));
        self.apply(&plan)
    }
}

/// This process as a [`Run`].
fn me(reader: &mut Shared) -> Result<Run> {
    let pid = std::process::id();
    let start_ticks = reader
        .start_ticks(pid)
        .context("reading our own start time")?;
    Ok(Run { pid, start_ticks })
}

/// Put kernel.task_delayacct back if runs that turned it on were killed before they
/// could: every live run does this first, with or without `--enable-delayacct`. Only
/// root can change the sysctl; others have nothing to recover.
pub fn recover(roots: &Roots) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let mut sh = Shared::new(roots);
    if !sh.dir.exists() {
        return Ok(());
    }
    sh.start(None).map(|_| ())
}

pub struct DelayAcctGuard {
    shared: Option<(Shared, Run)>,
    /// Uptime (s) when it was turned on (by us or a run still going); `None` when it was
    /// already on.
    pub enabled_at_uptime_s: Option<f64>,
}

impl DelayAcctGuard {
    pub fn enable(roots: &Roots) -> Result<DelayAcctGuard> {
        let mut sh = Shared::new(roots);
        let now = sh.read_sysctl()?;
        if !rustix::process::geteuid().is_root() {
            if now == "1" {
                return Ok(DelayAcctGuard {
                    shared: None,
                    enabled_at_uptime_s: None,
                });
            }
            bail!(
                "turning on {} needs root",
                roots.proc("sys/kernel/task_delayacct").display()
            );
        }
        let run = me(&mut sh)?;
        let state = sh.start(Some(run))?;
        let Some(s) = state else {
            // It was on before any run of ours: nothing to put back.
            return Ok(DelayAcctGuard {
                shared: None,
                enabled_at_uptime_s: None,
            });
        };
        Ok(DelayAcctGuard {
            enabled_at_uptime_s: s.enabled_at_uptime_s,
            shared: Some((sh, run)),
        })
    }

    /// For tests: the state directory and sysctl under `dir`.
    #[cfg(test)]
    fn finish_now(&mut self) -> Result<()> {
        match self.shared.take() {
            Some((mut sh, run)) => sh.finish(run),
            None => Ok(()),
        }
    }
}

impl Drop for DelayAcctGuard {
    fn drop(&mut self) {
        if let Some((sh, run)) = &mut self.shared {
            let _ = sh.finish(*run);
        }
    }
}

#[cfg(test)]
/// The state file path for a root (for tests and the report).
pub fn state_path(root: &std::path::Path) -> PathBuf {
    root.join(STATE_DIR).join(STATE_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pid: u32) -> Run {
        Run {
            pid,
            start_ticks: 100 + pid as u64,
        }
    }

    #[test]
    fn the_first_run_saves_the_original_and_turns_it_on() {
        let p = plan_start(None, "0", Some(run(1)), Some(5.0), |_| true);
        assert_eq!(p.write.as_deref(), Some("1"));
        let s = p.state.unwrap();
        assert_eq!(s.original, "0");
        assert_eq!(s.runs, vec![run(1)]);
        assert_eq!(s.enabled_at_uptime_s, Some(5.0));
    }

    #[test]
    fn already_on_without_a_run_of_ours_is_left_alone() {
        let p = plan_start(None, "1", Some(run(1)), None, |_| true);
        assert_eq!(p.write, None);
        assert_eq!(p.state, None);
    }

    #[test]
    fn a_second_run_joins_and_the_first_to_finish_leaves_it_on() {
        let p1 = plan_start(None, "0", Some(run(1)), Some(5.0), |_| true);
        let p2 = plan_start(p1.state, "1", Some(run(2)), Some(9.0), |_| true);
        assert_eq!(p2.write, None, "already on");
        let s = p2.state.clone().unwrap();
        assert_eq!(s.runs, vec![run(1), run(2)]);
        assert_eq!(s.enabled_at_uptime_s, Some(5.0), "when it really went on");
        let f1 = plan_finish(p2.state, run(1), |_| true);
        assert_eq!(f1.write, None, "run 2 still wants it");
        let f2 = plan_finish(f1.state, run(2), |_| true);
        assert_eq!(f2.write.as_deref(), Some("0"), "the last one puts it back");
        assert_eq!(f2.state, None);
    }

    #[test]
    fn runs_killed_before_they_finished_are_cleaned_by_the_next() {
        let p1 = plan_start(None, "0", Some(run(1)), None, |_| true);
        // Run 1 was killed; a run without the flag restores.
        let r = plan_start(p1.state.clone(), "1", None, None, |r| r.pid != 1);
        assert_eq!(r.write.as_deref(), Some("0"));
        assert_eq!(r.state, None);
        // A run with the flag: cleans, then turns it on as a first run.
        let r = plan_start(p1.state.clone(), "1", Some(run(3)), None, |r| r.pid != 1);
        assert_eq!(r.write.as_deref(), Some("1"));
        let s = r.state.unwrap();
        assert_eq!((s.original.as_str(), s.runs), ("0", vec![run(3)]));
        // A reused pid is another process: dead for us.
        let reused = Run {
            pid: 1,
            start_ticks: 999,
        };
        let f = plan_finish(p1.state, run(2), |r| *r == reused);
        assert_eq!(f.write.as_deref(), Some("0"));
    }

    #[test]
    fn without_state_nothing_is_touched() {
        assert_eq!(
            plan_start(None, "0", None, None, |_| true),
            Plan {
                write: None,
                state: None
            }
        );
        assert_eq!(
            plan_finish(None, run(1), |_| true),
            Plan {
                write: None,
                state: None
            }
        );
    }

    #[test]
    fn state_round_trips_through_a_trusted_dir_and_an_untrusted_one_is_refused() {
        // As root only: the trust check wants root's uid on the directory.
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let proc_ = tmp.path().join("proc");
        std::fs::create_dir_all(proc_.join("sys/kernel")).unwrap();
        std::fs::write(proc_.join("sys/kernel/task_delayacct"), "0\n").unwrap();
        let me_pid = std::process::id();
        std::fs::create_dir_all(proc_.join(me_pid.to_string())).unwrap();
        std::fs::copy(
            format!("/proc/{me_pid}/stat"),
            proc_.join(format!("{me_pid}/stat")),
        )
        .unwrap();
        std::fs::write(proc_.join("uptime"), "12.5 3.0\n").unwrap();
        let roots = Roots {
            proc: proc_.clone(),
            sys: tmp.path().join("sys"),
            root: tmp.path().to_path_buf(),
        };
        let mut g = DelayAcctGuard::enable(&roots).unwrap();
        let sysctl = || std::fs::read_to_string(proc_.join("sys/kernel/task_delayacct")).unwrap();
        assert_eq!(sysctl().trim(), "1");
        assert_eq!(g.enabled_at_uptime_s, Some(12.5));
        let mode = std::fs::metadata(tmp.path().join(STATE_DIR))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(state_path(tmp.path()).exists());
        g.finish_now().unwrap();
        assert_eq!(sysctl().trim(), "0");
        assert!(!state_path(tmp.path()).exists());
        // A directory root made 0755 (as `iowhy throttle` does) is fine; one that others
        // can write to is not obeyed.
        std::fs::set_permissions(
            tmp.path().join(STATE_DIR),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        DelayAcctGuard::enable(&roots)
            .unwrap()
            .finish_now()
            .unwrap();
        assert_eq!(sysctl().trim(), "0");
        // A directory others can write to is not obeyed.
        std::fs::set_permissions(
            tmp.path().join(STATE_DIR),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        assert!(DelayAcctGuard::enable(&roots).is_err());
        assert_eq!(sysctl().trim(), "0");
    }
}
