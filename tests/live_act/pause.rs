//! Pause interrupted by Ctrl-C or SIGTERM still resumes; interrupted (INT, TERM, HUP)
//! before the pause, it stops nothing; a process others depend on is
//! not paused without --yes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{bin, iowhy, live_lock, live_ready};
use super::{Worker, all_threads_stopped, state, wait_for};

#[test]
fn a_pause_interrupted_by_sigint_or_sigterm_resumes_the_target() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("p.log");
    let w = Worker::start(&[
        "numbered-logger",
        "--path",
        log.to_str().unwrap(),
        "--rate",
        "2000",
        "--name",
        "paused-logger",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    for sig in [rustix::process::Signal::INT, rustix::process::Signal::TERM] {
        let mut p = Command::new(bin())
            .args([
                "pause",
                &w.pid().to_string(),
                "--for",
                "60s",
                "--measure",
                "200ms",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_for(Duration::from_secs(5), || all_threads_stopped(w.pid())),
            "{sig:?}: paused"
        );
        let sent = Instant::now();
        rustix::process::kill_process(rustix::process::Pid::from_raw(p.id() as i32).unwrap(), sig)
            .unwrap();
        assert!(
            wait_for(Duration::from_secs(2), || state(w.pid()) != 'T'),
            "{sig:?}: still stopped 2 s after the signal"
        );
        assert!(
            wait_for(Duration::from_secs(10), || p.try_wait().unwrap().is_some()),
            "{sig:?}: iowhy ends instead of waiting out the 60 s"
        );
        assert!(sent.elapsed() < Duration::from_secs(10));
        let _ = p.wait();
        std::thread::sleep(Duration::from_millis(100));
        assert_ne!(state(w.pid()), 'T', "{sig:?}: running after iowhy ended");
    }
}

#[test]
fn a_signal_during_the_measurement_before_the_pause_stops_nothing() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("p.log");
    let w = Worker::start(&[
        "numbered-logger",
        "--path",
        log.to_str().unwrap(),
        "--rate",
        "2000",
        "--name",
        "unpaused-logger",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    for sig in [
        rustix::process::Signal::INT,
        rustix::process::Signal::TERM,
        rustix::process::Signal::HUP,
    ] {
        let mut p = Command::new(bin())
            .args([
                "pause",
                &w.pid().to_string(),
                "--for",
                "5s",
                "--measure",
                "30s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Well inside the 30 s "before" measurement (iowhy has set up its handlers).
        std::thread::sleep(Duration::from_millis(1500));
        assert_ne!(state(w.pid()), 'T', "{sig:?}: not stopped yet");
        let sent = Instant::now();
        rustix::process::kill_process(rustix::process::Pid::from_raw(p.id() as i32).unwrap(), sig)
            .unwrap();
        let mut ever_stopped = false;
        let ended = wait_for(Duration::from_secs(5), || {
            ever_stopped |= state(w.pid()) == 'T';
            p.try_wait().unwrap().is_some()
        });
        assert!(ended, "{sig:?}: iowhy ends at once");
        assert!(sent.elapsed() < Duration::from_secs(5));
        let out = p.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sig:?}: an abort, not a report");
        assert!(err.contains("was not stopped"), "{sig:?}: says so: {err}");
        assert!(!ever_stopped, "{sig:?}: the target was never stopped");
    }
}

#[test]
fn pausing_a_process_others_depend_on_warns_and_needs_yes() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("pg.log");
    // comm "postgres": what the depended-on list recognizes a database by.
    let w = Worker::start(&[
        "numbered-logger",
        "--path",
        log.to_str().unwrap(),
        "--rate",
        "1000",
        "--name",
        "postgres",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    let pid = w.pid().to_string();
    let dry = iowhy(&["pause", &pid, "--for", "1s", "--dry-run"]);
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success());
    assert!(
        text.contains(&format!("warning: pid {pid} (postgres) is a database")),
        "{text}"
    );
    // No terminal to ask on, no --yes: refused, and the process never stopped.
    let size = std::fs::metadata(&log).unwrap().len();
    let out = Command::new(bin())
        .args(["pause", &pid, "--for", "3s", "--measure", "100ms"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("a database") && err.contains("--yes"), "{err}");
    assert_ne!(state(w.pid()), 'T');
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::fs::metadata(&log).unwrap().len() > size,
        "it kept writing: never paused"
    );
    // The same for throttle.
    let out = Command::new(bin())
        .args(["throttle", &pid, "--write-bps", "1M", "--measure", "100ms"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("a database") && err.contains("--yes"), "{err}");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(!cg.contains("iowhy-throttle"), "{cg}");
}
