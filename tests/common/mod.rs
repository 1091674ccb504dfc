//! Helpers shared by the integration tests: run the binary, read fixtures, compare with
//! golden files, and (for live tests) serialise incidents and skip or fail by policy.
#![allow(dead_code)]

pub mod prom;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_iowhy")
}

pub fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root_dir().join("tests/fixtures").join(name)
}

pub fn iowhy(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("run iowhy")
}

/// Run and require success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = iowhy(args);
    assert!(
        out.status.success(),
        "iowhy {args:?} failed with {}:\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Read a command's `--format json` output through its wire type, and insist the type
/// holds all of it: encoded again it must give back the same JSON, so a field added to the
/// output without its type (or a type that drops or invents a field) fails here.
#[track_caller]
pub fn wire<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str) -> T {
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| {
        panic!(
            "does not read as {} ({e}): {text}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&t).expect("encode");
    assert!(
        back == v,
        "{} does not round-trip:\noutput:  {v}\nthrough the type: {back}",
        std::any::type_name::<T>()
    );
    t
}

/// [`wire`] for JSON Lines: one value per line.
#[track_caller]
pub fn wire_lines<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str) -> Vec<T> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(wire)
        .collect()
}

/// The lab's "started" event (saved beside a fixture: the right answer), read through
/// its wire type.
pub use iowhy::wire::lab::LabEvent;

pub fn lab_event(name: &str) -> LabEvent {
    let p = fixture(name).join("lab.json");
    wire(&std::fs::read_to_string(&p).expect("lab.json"))
}

/// Compare `got` with the golden file; `IOWHY_UPDATE_GOLDEN=1` rewrites it. On a
/// difference, print the first lines that differ, expected and got.
pub fn golden(name: &str, got: &str) {
    let path = root_dir().join("tests/golden").join(name);
    if std::env::var_os("IOWHY_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing {}: run with IOWHY_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  expected: {a}\n  got:      {b}", i + 1))
            .collect();
        panic!(
            "{} differs from the golden file ({} vs {} lines):\n{}\n(rerun with IOWHY_UPDATE_GOLDEN=1 if the change is intended)",
            path.display(),
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Live tests need root and some tools. Without them they skip with a printed reason;
/// with `IOWHY_REQUIRE_LIVE=1` (CI) a skip is a failure.
pub fn live_ready(needs: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !rustix::process::geteuid().is_root() {
        missing.push("root".to_string());
    }
    for tool in needs {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            missing.push(format!("the `{tool}` command"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    skip(&format!("live test needs {}", missing.join(", ")))
}

/// Skip a test: print `SKIPPED: why` and return false; with `IOWHY_REQUIRE_LIVE=1` (CI) a
/// skip is a failure instead.
pub fn skip(why: &str) -> bool {
    if std::env::var("IOWHY_REQUIRE_LIVE").is_ok_and(|v| v == "1") {
        panic!("{why} (IOWHY_REQUIRE_LIVE=1: a skip is a failure)");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// Where `.ci/run` unpacks Debian's prometheus package (its binaries, no service).
pub const CI_PROMETHEUS_BIN: &str = "/opt/iowhy-ci/prometheus/usr/bin";

/// `name` on PATH, else in `CI_PROMETHEUS_BIN`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    });
    on_path.or_else(|| Some(Path::new(CI_PROMETHEUS_BIN).join(name)).filter(|f| f.is_file()))
}

/// A tool a test cannot run without (promtool, kubernetes-validate, systemd-analyze):
/// its path, or None after a skip (a failure under `IOWHY_REQUIRE_LIVE=1`). Root is not
/// required.
pub fn need_tool(name: &str) -> Option<PathBuf> {
    let found = find_tool(name);
    if found.is_none() {
        skip(&format!(
            "test needs the `{name}` command (on PATH or in {CI_PROMETHEUS_BIN}; .ci/run installs it)"
        ));
    }
    found
}

/// Live tests create incidents on the one machine: run them one at a time, across test
/// binaries and test threads (an exclusive flock).
///
/// The lock lives in a directory only root can enter (/run/iowhy-tests, mode 0700), opened
/// without following links: a fixed name in /tmp lets any user pre-create or hold it.
pub struct LiveLock(#[allow(dead_code)] Vec<std::fs::File>);

pub const LOCK_DIR: &str = "/run/iowhy-tests";

fn lock_dir() -> PathBuf {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let dir = PathBuf::from(LOCK_DIR);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("creating {LOCK_DIR}: {e}"),
    }
    let md = std::fs::symlink_metadata(&dir).expect("stat the lock dir");
    assert!(
        md.file_type().is_dir() && md.uid() == 0 && md.mode() & 0o077 == 0,
        "{LOCK_DIR} must be a directory of root's with mode 0700 (uid {}, mode {:o})",
        md.uid(),
        md.mode() & 0o7777
    );
    dir
}

fn flock(f: &std::fs::File) {
    rustix::fs::flock(f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
}

pub fn live_lock() -> LiveLock {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(lock_dir().join("live.lock"))
        .expect("lock file");
    flock(&f);
    let held = vec![f];
    LiveLock(held)
}

/// A lab scenario running in the background, stopped (SIGTERM to its pid) on drop.
pub struct Lab {
    pub child: Option<std::process::Child>,
    pub event: LabEvent,
    pub base: Option<String>,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Lab {
    pub fn start(args: &[&str]) -> Lab {
        use std::io::BufRead;
        let mut child = Command::new(bin())
            .arg("lab")
            .args(args)
            .args(["--format", "json"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start lab");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line)
            .expect("lab prints its started event");
        let ev: LabEvent = wire(&line);
        assert_eq!(ev.event, "started");
        Lab {
            child: Some(child),
            base: ev.base.clone(),
            event: ev,
            out,
        }
    }

    /// Stop it as a user would (SIGTERM to the pid we started) and return its last event.
    pub fn stop(mut self) -> LabEvent {
        use std::io::BufRead;
        let mut child = self.child.take().unwrap();
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let status = child.wait().expect("lab exits");
        assert!(status.success(), "lab exited with {status}");
        let mut line = String::new();
        self.out.read_line(&mut line).expect("stopped event");
        let ev: LabEvent = wire(&line);
        assert_eq!(ev.event, "stopped", "{line}");
        ev
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let _ = c.wait();
        }
    }
}

/// A process the test started, killed by its PID and reaped when the value goes, also when
/// an assertion fails first: a failing test must not leave a writer running.
pub struct Reap(pub std::process::Child);

impl std::ops::Deref for Reap {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reap {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
