//! Live (root): acting safely. Rotations under load lose no line; a writer that ignores
//! the signal is reported and loses nothing; a paused process is always resumed, even when
//! iowhy is killed with SIGKILL; a throttled writer falls under its limit and recovers;
//! reclaim frees a deleted file's space; unsafe targets are refused.

mod common;
#[path = "live_act/guardian.rs"]
mod guardian;
#[path = "live_act/hostile.rs"]
mod hostile;
#[path = "live_act/pause.rs"]
mod pause;
#[path = "live_act/rotate.rs"]
mod rotate;
#[path = "live_act/stanza.rs"]
mod stanza;
#[path = "live_act/throttle.rs"]
mod throttle;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, Reap, bin, iowhy, live_lock, live_ready, ok};

/// A worker started by this test (its parent), killed by pid on drop.
struct Worker(Child);

impl Worker {
    fn start(args: &[&str]) -> Worker {
        Worker(
            Command::new(bin())
                .arg("lab-worker")
                .args(args)
                .stdout(Stdio::null())
                .spawn()
                .expect("worker"),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    /// SIGTERM, and wait: a numbered-logger finishes every line it took a number for.
    fn term(&mut self) {
        // Only while it is unreaped: its pid is still ours, not someone else's.
        if let (Ok(None), Some(p)) = (
            self.0.try_wait(),
            rustix::process::Pid::from_raw(self.0.id() as i32),
        ) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
        }
        let _ = self.0.wait();
    }
    fn stop(&mut self) {
        // std's kill does nothing once the child was reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn state(pid: u32) -> char {
    let t = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    t.rsplit(") ")
        .next()
        .and_then(|r| r.chars().next())
        .unwrap_or('?')
}

/// Every thread of `pid` is stopped (T) — what a freeze must reach.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let states: Vec<char> = rd
        .flatten()
        .map(|t| {
            let s = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            s.rsplit(") ")
                .next()
                .and_then(|r| r.chars().next())
                .unwrap_or('?')
        })
        .collect();
    !states.is_empty() && states.iter().all(|c| *c == 'T')
}

/// Wait until `cond` holds, at most `within`; true if it did.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < within {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Every number in every file of the rotation set, in file order.
fn numbers(dir: &Path, base: &str) -> Vec<u64> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(base))
        .collect();
    files.sort();
    let mut v = Vec::new();
    for f in files {
        let mut text = String::new();
        if f.extension().is_some_and(|e| e == "gz") {
            flate2::read::GzDecoder::new(std::fs::File::open(&f).unwrap())
                .read_to_string(&mut text)
                .unwrap();
        } else {
            text = std::fs::read_to_string(&f).unwrap();
        }
        v.extend(text.lines().filter(|l| !l.is_empty()).map(|l| {
            l.parse::<u64>()
                .unwrap_or_else(|_| panic!("garbage {l:?} in {}", f.display()))
        }));
    }
    v
}

fn assert_each_once(v: Vec<u64>) {
    assert_each_once_from(v, 0);
}

/// Every number from `first` on appears exactly once, none missing up to the largest.
fn assert_each_once_from(v: Vec<u64>, first: u64) {
    let mut v: Vec<u64> = v.into_iter().map(|x| x - first).collect();
    let n = v.len() as u64;
    v.sort_unstable();
    let dups = v.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dups, 0, "{dups} numbers appear twice");
    assert_eq!(v.first().copied(), Some(0));
    assert_eq!(
        v.last().copied(),
        Some(n - 1),
        "{} numbers, so the last must be {}: some are missing",
        n,
        n - 1
    );
}

fn holds(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let want = std::fs::metadata(path).unwrap();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .any(|f| {
            std::fs::metadata(f.path())
                .is_ok_and(|m| m.ino() == want.ino() && m.dev() == want.dev())
        })
}

#[test]
fn rotating_under_load_loses_no_line() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("app.log");
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        log.to_str().unwrap(),
        "--on-hup",
        "reopen",
        "--name",
        "hup-logger",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..15 {
        let compress = if i % 5 == 4 {
            "--compress"
        } else {
            "--dry-run"
        };
        let args = ["rotate", log.to_str().unwrap(), "-f", "json", compress];
        let v: serde_json::Value =
            serde_json::from_str(&ok(&args[..if compress == "--dry-run" { 4 } else { 5 }]))
                .unwrap();
        assert_eq!(v["all_reopened"], true, "rotation {i}: {v:#}");
        assert_eq!(v["writers"][0]["pid"], w.pid());
        std::thread::sleep(Duration::from_millis(60));
    }
    assert!(holds(w.pid(), &log), "the writer holds the new file");
    w.stop();
    let v = numbers(dir.path(), "app.log");
    assert!(
        v.len() > 10_000,
        "the writer wrote as fast as it could: {} lines",
        v.len()
    );
    assert_each_once(v);
    // Every rotated file is there: nothing deleted without --keep.
    let n = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(n, 16, "15 rotations + the live log");
}

#[test]
fn a_writer_that_ignores_the_signal_is_reported_and_loses_nothing() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("deaf.log");
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        log.to_str().unwrap(),
        "--on-hup",
        "ignore",
        "--name",
        "deaf-logger",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    // A plain rotate is refused with the reason, and changes nothing.
    let out = iowhy(&["rotate", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ignore it"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // With the fallback, each rotation reports the writer did not reopen, then copytruncates.
    for _ in 0..10 {
        let v: serde_json::Value = serde_json::from_str(&ok(&[
            "rotate",
            log.to_str().unwrap(),
            "--fallback-copytruncate",
            "--timeout",
            "300ms",
            "-f",
            "json",
        ]))
        .unwrap();
        assert_eq!(v["writers"][0]["reopened"], false, "{v:#}");
        assert_eq!(v["writers"][0]["signal_fate"], "ignored");
        assert!(
            v["mode"].as_str().unwrap().starts_with("copytruncate"),
            "{v:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        holds(w.pid(), &log),
        "the writer still writes the same file"
    );
    w.stop();
    assert_each_once(numbers(dir.path(), "deaf.log"));
}

#[test]
fn a_writer_without_a_handler_is_not_killed_by_the_rotation() {
    if !live_ready(&["sh"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("plain.log");
    // `sh -c 'exec ...'` with the default SIGHUP action: a HUP would terminate it.
    let mut child = Reap(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 3>>{}; while :; do echo x >&3; sleep 0.01; done",
                log.display()
            ))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = iowhy(&["rotate", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("would terminate the process"));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the writer is still alive"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_logrotate_stanza_validates() {
    if !live_ready(&["logrotate", "losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["disk-fill", "--duration", "40s", "--size", "256M"]);
    std::thread::sleep(Duration::from_secs(4));
    let r: iowhy::wire::diagnose::Report = serde_json::from_str(&ok(&[
        "diagnose",
        "-d",
        "2",
        "--tracing",
        "off",
        "-f",
        "json",
    ]))
    .unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == "runaway_log")
        .expect("runaway_log");
    let heredoc = f
        .remediation
        .iter()
        .find(|c| c.contains("/etc/logrotate.d/"))
        .expect("a logrotate stanza");
    let stanza: String = heredoc
        .lines()
        .skip(1)
        .take_while(|l| *l != "EOF")
        .collect::<Vec<_>>()
        .join("\n");
    assert!(stanza.contains(&lab.event.paths[0]), "{stanza}");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("iowhy.conf");
    std::fs::write(&conf, format!("{stanza}\n")).unwrap();
    let out = Command::new("logrotate")
        .args(["-d", "-s"])
        .arg(dir.path().join("state"))
        .arg(&conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "logrotate -d rejected the stanza:\n{stanza}\n{text}"
    );
    assert!(!text.contains("error"), "{text}");
    assert!(
        text.contains(&lab.event.paths[0]),
        "logrotate considered the log: {text}"
    );
}

#[test]
fn reclaim_frees_a_deleted_file_and_refuses_others() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["deleted-open", "--duration", "40s", "--size", "256M"]);
    let pid = lab.event.pids[0].to_string();
    std::thread::sleep(Duration::from_secs(2));
    let files: serde_json::Value =
        serde_json::from_str(&ok(&["files", &pid, "-d", "0", "-f", "json"])).unwrap();
    let fd = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["deleted"] == true)
        .unwrap()["fd"]
        .as_i64()
        .unwrap()
        .to_string();
    let dry: serde_json::Value =
        serde_json::from_str(&ok(&["reclaim", &pid, &fd, "--dry-run", "-f", "json"])).unwrap();
    assert!(dry["allocated_before_bytes"].as_u64().unwrap() >= 60 << 20);
    assert_eq!(dry["freed_bytes"], 0);
    let out = iowhy(&["reclaim", &pid, &fd]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no terminal and no --yes: refused"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["reclaim", &pid, &fd, "--yes", "-f", "json"])).unwrap();
    assert!(v["freed_bytes"].as_u64().unwrap() >= 60 << 20, "{v:#}");
    assert!(
        v["filesystem_avail_after_bytes"].as_u64().unwrap()
            > v["filesystem_avail_before_bytes"].as_u64().unwrap()
    );
    // The process lives on and keeps writing to it.
    assert_ne!(state(lab.event.pids[0]), '?');
    // fd 1 is /dev/null: not a deleted regular file.
    assert_eq!(
        iowhy(&["reclaim", &pid, "1", "--yes"]).status.code(),
        Some(2)
    );
}

#[test]
fn pause_always_resumes_even_when_iowhy_is_killed() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let w = Worker::start(&[
        "direct-writer",
        "--path",
        dir.path().join("d.bin").to_str().unwrap(),
        "--max-bytes",
        "64M",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    // A normal pause: stopped during the window, running after.
    let p = Command::new(bin())
        .args([
            "pause",
            &w.pid().to_string(),
            "--for",
            "2s",
            "--measure",
            "1s",
            "-f",
            "json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1800));
    assert_eq!(state(w.pid()), 'T', "stopped while paused");
    let out = p.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["resumed"], true);
    assert_eq!(v["verdict"], "cause", "{v:#}");
    assert_ne!(state(w.pid()), 'T', "running after the pause");
    // SIGKILL iowhy in the middle of a long pause: the guardian resumes the target.
    let mut p = Command::new(bin())
        .args([
            "pause",
            &w.pid().to_string(),
            "--for",
            "60s",
            "--measure",
            "200ms",
        ])
        .spawn()
        .unwrap();
    let t = Instant::now();
    while state(w.pid()) != 'T' && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(state(w.pid()), 'T');
    p.kill().unwrap();
    p.wait().unwrap();
    let killed = Instant::now();
    while state(w.pid()) == 'T' && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(
        state(w.pid()),
        'T',
        "still stopped 5 s after iowhy was killed"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "resumed after {:?}",
        killed.elapsed()
    );
}

#[test]
fn unsafe_targets_are_refused() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    for (args, why) in [
        (vec!["pause", "1", "--for", "1s"], "PID 1"),
        (vec!["throttle", "2", "--write-bps", "1M"], "kernel thread"),
        (vec!["pause", "4294967", "--for", "1s"], "no process"),
        (vec!["throttle", "1", "--write-bps", "0"], "0 would stop"),
    ] {
        let out = iowhy(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(state(1), 'S');
}
