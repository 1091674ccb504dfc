//! A log directory owned by someone else is hostile ground: its owner can swap a file
//! for a symlink, a FIFO or another file between iowhy's check and its action. Each test
//! makes the swap at the worst moment (through the debug-build hook `IOWHY_TEST_SYNC_DIR`,
//! which holds iowhy between its check and its act) and shows that nothing but the file
//! that was checked is ever truncated, copied or compressed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{bin, iowhy, live_lock, live_ready};
use super::{Worker, wait_for};

/// Run iowhy with the sync hook in `sync`; returns the running child.
fn spawn_synced(args: &[&str], sync: &Path) -> Child {
    Command::new(bin())
        .args(args)
        .env("IOWHY_TEST_SYNC_DIR", sync)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait for iowhy to reach `point`, do `act`, and let it go on.
fn at(sync: &Path, point: &str, act: impl FnOnce()) {
    assert!(
        wait_for(Duration::from_secs(20), || sync
            .join(format!("{point}.reached"))
            .exists()),
        "iowhy never reached {point}"
    );
    act();
    std::fs::write(sync.join(format!("{point}.go")), b"").unwrap();
}

fn finish(p: Child) -> (Option<i32>, String) {
    let out = p.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn copytruncate_never_truncates_what_a_swapped_in_symlink_points_to() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let sync = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "root:secret:19000::::::\n").unwrap();
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        log.to_str().unwrap(),
        "--on-hup",
        "ignore",
        "--name",
        "swap-logger",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    for flag in ["--copytruncate", "--fallback-copytruncate"] {
        let p = spawn_synced(
            &["rotate", log.to_str().unwrap(), flag, "--timeout", "1s"],
            sync.path(),
        );
        // After the holder scan, the directory's owner swaps the log for a symlink.
        at(sync.path(), "rotate-scanned", || {
            std::fs::rename(&log, dir.path().join("app.log.real")).unwrap();
            std::os::unix::fs::symlink(&victim, &log).unwrap();
        });
        let (code, out) = finish(p);
        assert_ne!(code, Some(0), "{flag}: refused: {out}");
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "root:secret:19000::::::\n",
            "{flag}: the victim keeps its bytes ({out})"
        );
        assert!(
            !dir.path().join("app.log.1").exists()
                || std::fs::symlink_metadata(dir.path().join("app.log.1"))
                    .unwrap()
                    .is_file(),
            "{flag}: no copy of the victim"
        );
        // Put the world back for the next round.
        std::fs::remove_file(&log).unwrap();
        for n in ["app.log.1", "app.log.2"] {
            let _ = std::fs::remove_file(dir.path().join(n));
        }
        std::fs::rename(dir.path().join("app.log.real"), &log).unwrap();
        for f in std::fs::read_dir(sync.path()).unwrap().flatten() {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    w.term();
}

#[test]
fn compress_refuses_fifos_and_symlinks_promptly() {
    if !live_ready(&["mkfifo"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("app.log");
    let other = dir.path().join("private");
    std::fs::write(&other, "private data\n").unwrap();
    let l = log.to_str().unwrap();
    for (what, plant) in [
        ("a FIFO", 0),
        ("a symlink to /dev/zero", 1),
        ("a symlink to another file", 2),
    ] {
        std::fs::write(&log, "a line\n").unwrap();
        let old = dir.path().join("app.log.1");
        match plant {
            0 => assert!(Command::new("mkfifo").arg(&old).status().unwrap().success()),
            1 => std::os::unix::fs::symlink("/dev/zero", &old).unwrap(),
            _ => std::os::unix::fs::symlink(&other, &old).unwrap(),
        }
        let t0 = Instant::now();
        let mut p = Command::new(bin())
            .args(["rotate", l, "--compress", "-f", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let done = wait_for(Duration::from_secs(10), || p.try_wait().unwrap().is_some());
        if !done {
            // Hung (FIFO) or filling the disk (/dev/zero): stop it before asserting.
            let _ = p.kill();
        }
        let out = p.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(done, "{what}: rotate --compress did not finish: {text}");
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "{what}: took {:?}",
            t0.elapsed()
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{what}: the rotation itself is done: {text}"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let notes = v["notes"].to_string();
        assert!(
            notes.contains("not a regular file") || notes.contains("symlink"),
            "{what}: a clear refusal in the notes: {v:#}"
        );
        assert!(
            !dir.path().join("app.log.2.gz").exists(),
            "{what}: nothing compressed from it"
        );
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "private data\n");
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if f.file_name() != "private" {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
    }
}

#[test]
fn reclaim_refuses_a_live_file_dup2ed_onto_the_fd_after_the_check() {
    if !live_ready(&["bash"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let sync = tempfile::tempdir().unwrap();
    let deleted = dir.path().join("deleted.tmp");
    let live = dir.path().join("live.db");
    std::fs::write(&live, "precious rows\n").unwrap();
    // A child holds a deleted file on fd 3; on SIGUSR1 it puts live.db on fd 3 instead.
    let mut child = Command::new("bash")
        .args([
            "-c",
            r#"exec 3>"$1"; echo data >&3; rm "$1"; trap 'exec 3>>"$2"' USR1; while :; do sleep 0.05; done"#,
            "holder",
            deleted.to_str().unwrap(),
            live.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let fd3 = format!("/proc/{pid}/fd/3");
    assert!(wait_for(Duration::from_secs(5), || std::fs::read_link(
        &fd3
    )
    .is_ok_and(|l| l.to_string_lossy().ends_with("(deleted)"))));
    let p = spawn_synced(&["reclaim", &pid.to_string(), "3", "--yes"], sync.path());
    at(sync.path(), "reclaim-confirmed", || {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::USR1,
        )
        .unwrap();
        assert!(wait_for(Duration::from_secs(5), || std::fs::read_link(
            &fd3
        )
        .is_ok_and(|l| l.ends_with("live.db"))));
    });
    let (code, out) = finish(p);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, Some(2), "refused: {out}");
    assert!(out.contains("another file"), "says why: {out}");
    assert_eq!(std::fs::read_to_string(&live).unwrap(), "precious rows\n");
    // And the ordinary case still works (the hook only waits).
    assert_eq!(
        iowhy(&["reclaim", "1", "0", "--dry-run"]).status.code(),
        Some(2),
        "PID 1 is refused"
    );
}

#[test]
fn a_permission_error_is_said_as_such_not_as_a_missing_process() {
    if !live_ready(&["setpriv", "sleep"]) {
        return;
    }
    let _l = live_lock();
    let as_nobody = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A proc root where pid 42 exists but is closed to others (hidepid does this).
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    let perm = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    perm(d.path(), 0o755);
    let pid_dir = d.path().join("proc/42");
    std::fs::create_dir_all(&pid_dir).unwrap();
    perm(&d.path().join("proc"), 0o755);
    std::fs::write(
        pid_dir.join("stat"),
        "42 (app) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n",
    )
    .unwrap();
    perm(&pid_dir, 0o700);
    let proc_root = d.path().join("proc");
    let (code, err) = as_nobody(&[
        "pause",
        "42",
        "--for",
        "1s",
        "--proc-root",
        proc_root.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("may not read"), "a permission error: {err}");
    assert!(!err.contains("no process"), "not a missing process: {err}");
    // Another user's fds: reclaim says it may not read them, not that there is no fd.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let (code, err) = as_nobody(&["reclaim", &sleeper.id().to_string(), "0", "--dry-run"]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("may not be read"), "{err}");
}
