//! Rotations with several writers, copytruncate's freeze (killed inside it, a writer that
//! cannot stop, one already stopped), --keep with a held rotation, and refusals.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{Reap, bin, iowhy, live_lock, live_ready, ok};
use super::{
    Worker, all_threads_stopped, assert_each_once, assert_each_once_from, holds, numbers, state,
    wait_for,
};

const RANGE: u64 = 1_000_000_000;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).unwrap()
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(p, sig).unwrap();
}

#[test]
fn two_writer_processes_and_a_multithreaded_one_lose_no_line() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("app.log");
    let l = log.to_str().unwrap();
    let (r1, r2) = (RANGE.to_string(), (2 * RANGE).to_string());
    let mut ws = [
        Worker::start(&["numbered-logger", "--path", l, "--name", "mw-a"]),
        Worker::start(&[
            "numbered-logger",
            "--path",
            l,
            "--first",
            &r1,
            "--name",
            "mw-b",
        ]),
        Worker::start(&[
            "numbered-logger",
            "--path",
            l,
            "--first",
            &r2,
            "--threads",
            "4",
            "--name",
            "mw-threads",
        ]),
    ];
    std::thread::sleep(Duration::from_millis(300));
    let threads = std::fs::read_dir(format!("/proc/{}/task", ws[2].pid()))
        .unwrap()
        .count();
    assert_eq!(threads, 4, "the third writer writes from 4 threads");
    let want: std::collections::BTreeSet<u64> = ws.iter().map(|w| w.pid() as u64).collect();
    for i in 0..8 {
        let v = if i % 4 == 3 {
            json(&["rotate", l, "-f", "json", "--compress"])
        } else {
            json(&["rotate", l, "-f", "json"])
        };
        assert_eq!(v["all_reopened"], true, "rotation {i}: {v:#}");
        let got: std::collections::BTreeSet<u64> = v["writers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["pid"].as_u64().unwrap())
            .collect();
        assert_eq!(got, want, "every writer found: {v:#}");
        std::thread::sleep(Duration::from_millis(60));
    }
    for w in &ws {
        assert!(holds(w.pid(), &log), "pid {} holds the new log", w.pid());
    }
    for w in &mut ws {
        w.term();
    }
    let all = numbers(dir.path(), "app.log");
    for k in 0..3 {
        let mine: Vec<u64> = all.iter().copied().filter(|n| n / RANGE == k).collect();
        assert!(mine.len() > 1000, "writer {k} wrote {} lines", mine.len());
        assert_each_once_from(mine, k * RANGE);
    }
}

#[test]
fn killing_iowhy_while_copytruncate_has_the_writer_frozen_resumes_it_and_loses_nothing() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("frozen.log");
    let l = log.to_str().unwrap();
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        l,
        "--on-hup",
        "ignore",
        "--threads",
        "2",
        "--name",
        "frozen-logger",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    // The test hook (debug builds only) holds the freeze for 30 s.
    let mut p = Command::new(bin())
        .args(["rotate", l, "--copytruncate"])
        .env("IOWHY_TEST_HOLD_FROZEN_MS", "30000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || all_threads_stopped(w.pid())),
        "both threads of the writer are frozen"
    );
    p.kill().unwrap();
    p.wait().unwrap();
    let killed = Instant::now();
    assert!(
        wait_for(Duration::from_secs(5), || state(w.pid()) != 'T'),
        "still stopped 5 s after iowhy was killed"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "resumed after {:?}",
        killed.elapsed()
    );
    // Killed before the truncate: the log is whole, and no partial copy is left behind
    // (the copy was an anonymous O_TMPFILE).
    assert_eq!(names(dir.path()), vec!["frozen.log"]);
    std::thread::sleep(Duration::from_millis(200));
    w.term();
    assert_each_once(numbers(dir.path(), "frozen.log"));
}

#[test]
fn copytruncate_leaves_a_writer_stopped_by_someone_else_stopped() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("stopped.log");
    let l = log.to_str().unwrap();
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        l,
        "--on-hup",
        "ignore",
        "--name",
        "stopped-logger",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    signal(w.pid(), rustix::process::Signal::STOP);
    assert!(wait_for(Duration::from_secs(5), || all_threads_stopped(
        w.pid()
    )));
    let v = json(&["rotate", l, "--copytruncate", "-f", "json"]);
    assert_eq!(v["mode"], "copytruncate", "{v:#}");
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("already stopped")),
        "{v:#}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        state(w.pid()),
        'T',
        "iowhy did not resume what it had not stopped"
    );
    signal(w.pid(), rustix::process::Signal::CONT);
    std::thread::sleep(Duration::from_millis(200));
    w.term();
    assert_eq!(
        std::fs::metadata(dir.path().join("stopped.log.1"))
            .unwrap()
            .len(),
        v["bytes_rotated"]
    );
    assert_each_once(numbers(dir.path(), "stopped.log"));
}

/// A blkio v1 group of the test's own (removed on drop, after lifting its limits).
struct Slow {
    dir: std::path::PathBuf,
    dev: String,
}

impl Slow {
    fn new(dev: &str, write_bps: u64) -> Slow {
        let dir = Path::new("/sys/fs/cgroup/blkio")
            .join(format!("iowhy-test-slow-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("blkio.throttle.write_bps_device"),
            format!("{dev} {write_bps}"),
        )
        .unwrap();
        Slow {
            dir,
            dev: dev.to_string(),
        }
    }
    fn lift(&self) {
        let _ = std::fs::write(
            self.dir.join("blkio.throttle.write_bps_device"),
            format!("{} 0", self.dev),
        );
    }
}

impl Drop for Slow {
    fn drop(&mut self) {
        self.lift();
        let _ = wait_for(Duration::from_secs(10), || {
            std::fs::remove_dir(&self.dir).is_ok()
        });
    }
}

/// The whole disk under a directory, as MAJ:MIN.
fn disk_of(p: &Path) -> String {
    let d = std::fs::metadata(p).unwrap().dev();
    let (ma, mi) = (rustix::fs::major(d), rustix::fs::minor(d));
    let sys = Path::new("/sys/dev/block").join(format!("{ma}:{mi}"));
    if sys.join("partition").exists() {
        return std::fs::read_to_string(sys.join("../dev"))
            .unwrap()
            .trim()
            .to_string();
    }
    format!("{ma}:{mi}")
}

#[test]
fn copytruncate_refuses_and_truncates_nothing_when_a_writer_cannot_stop() {
    if !live_ready(&["sh", "dd"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "0\n1\n2\n").unwrap();
    // A writer holding the log with O_APPEND, stuck in uninterruptible I/O (D): its
    // O_DIRECT write to a disk limited to 4 KiB/s cannot complete for minutes.
    let slow = Slow::new(&disk_of(dir.path()), 4096);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec 3>>{} && exec dd if=/dev/zero of={}/slow.bin bs=1M count=2 oflag=direct",
            slow.dir.display(),
            log.display(),
            dir.path().display()
        ))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // dd itself (not the shell, nor dd being loaded), in D and staying there.
    let in_write = || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dd")
            && state(pid) == 'D'
    };
    assert!(
        wait_for(Duration::from_secs(10), || {
            in_write() && {
                std::thread::sleep(Duration::from_millis(300));
                in_write()
            }
        }),
        "dd is in uninterruptible I/O: {}",
        state(pid)
    );
    let out = iowhy(&["rotate", log.to_str().unwrap(), "--copytruncate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("uninterruptible") && err.contains("Nothing was truncated"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "0\n1\n2\n");
    assert_eq!(
        names(dir.path()),
        vec!["app.log", "slow.bin"],
        "no copy left"
    );
    // Its SIGSTOP was cancelled by the SIGCONT: once the I/O can complete, dd runs on
    // and exits instead of stopping.
    slow.lift();
    let done = wait_for(Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if !done {
        let _ = child.kill();
    }
    assert!(done, "dd finished (state {})", state(pid));
    assert!(child.wait().unwrap().success());
}

#[test]
fn keep_never_removes_a_rotation_that_is_held_open() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("k.log");
    let l = log.to_str().unwrap();
    let mut w = Worker::start(&["numbered-logger", "--path", l, "--name", "keep-logger"]);
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..2 {
        json(&["rotate", l, "--keep", "1", "-f", "json"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        names(dir.path()),
        vec!["k.log", "k.log.1"],
        "beyond 1 removed"
    );
    // Someone reads k.log.1, which the next rotation shifts beyond --keep.
    let held = std::fs::File::open(dir.path().join("k.log.1")).unwrap();
    let content = std::fs::read(dir.path().join("k.log.1")).unwrap();
    let p2 = dir.path().join("k.log.2").display().to_string();
    let dry = json(&["rotate", l, "--keep", "1", "--dry-run", "-f", "json"]);
    assert_eq!(dry["kept_open"], serde_json::json!([p2]), "{dry:#}");
    assert_eq!(dry["removed"], serde_json::json!([]), "{dry:#}");
    let v = json(&["rotate", l, "--keep", "1", "-f", "json"]);
    assert_eq!(v["kept_open"], serde_json::json!([p2]), "{v:#}");
    assert_eq!(
        std::fs::read(&p2).unwrap(),
        content,
        "the held file is intact"
    );
    drop(held);
    let v = json(&["rotate", l, "--keep", "1", "-f", "json"]);
    assert_eq!(v["removed"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(names(dir.path()), vec!["k.log", "k.log.1"]);
    w.term();
}

#[test]
fn copytruncate_is_refused_for_a_writer_without_o_append() {
    if !live_ready(&["sh"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("offset.log");
    let mut child = Reap(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec 3>{}; while :; do echo x >&3; sleep 0.01; done",
                log.display()
            ))
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = iowhy(&["rotate", log.to_str().unwrap(), "--copytruncate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("without O_APPEND") && err.contains("sparse"),
        "{err}"
    );
    assert_eq!(names(dir.path()), vec!["offset.log"]);
    assert!(child.try_wait().unwrap().is_none(), "the writer lives");
    let _ = child.kill();
    let _ = child.wait();
}

/// A bind mount made by the test, unmounted on drop.
struct Bind(std::path::PathBuf);

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_log_that_is_a_mount_of_its_own_is_refused() {
    if !live_ready(&["mount", "umount"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("mounted.log");
    std::fs::write(&log, "x\n").unwrap();
    // From another filesystem (tmpfs), and from the same one (same st_dev: statx tells).
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    let other_fs = shm.path().join("src.log");
    let same_fs = dir.path().join("src.log");
    for src in [&other_fs, &same_fs] {
        std::fs::write(src, "y\n").unwrap();
        assert!(
            Command::new("mount")
                .arg("--bind")
                .arg(src)
                .arg(&log)
                .status()
                .unwrap()
                .success()
        );
        let _b = Bind(log.clone());
        let out = iowhy(&["rotate", log.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{src:?}: {err}");
        assert!(err.contains("a mount of its own"), "{src:?}: {err}");
    }
    assert!(!dir.path().join("mounted.log.1").exists());
}

#[test]
fn holders_iowhy_cannot_see_make_copytruncate_refuse() {
    if !live_ready(&["setpriv"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = dir.path().join("shared.log");
    let l = log.to_str().unwrap();
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        l,
        "--on-hup",
        "ignore",
        "--name",
        "root-logger",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    std::os::unix::fs::chown(&log, Some(65534), Some(65534)).unwrap();
    // As nobody, the root writer's open files cannot be read: it is an unknown holder.
    let nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = nobody(&["rotate", l, "--copytruncate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("could not be read"), "{err}");
    assert_eq!(names(dir.path()), vec!["shared.log"], "nothing done");
    let out = nobody(&["rotate", l, "--dry-run", "-f", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["unknown_holders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["pid"] == w.pid()),
        "the writer is reported as unknown: {v:#}"
    );
    w.term();
}

#[test]
fn fallback_with_a_writer_that_reopens_late_loses_nothing() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("late.log");
    let l = log.to_str().unwrap();
    // 4 lines a second: it sees the SIGHUP only at its next line, after iowhy's timeout.
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        l,
        "--rate",
        "4",
        "--name",
        "late-logger",
    ]);
    std::thread::sleep(Duration::from_millis(600));
    let mut fell_back = 0;
    for _ in 0..4 {
        let v = json(&[
            "rotate",
            l,
            "--fallback-copytruncate",
            "--timeout",
            "20ms",
            "-f",
            "json",
        ]);
        if v["mode"] == "copytruncate" {
            fell_back += 1;
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(
        fell_back > 0,
        "the timeout was too short for it: it fell back"
    );
    assert!(holds(w.pid(), &log), "it writes the log");
    w.term();
    assert_each_once(numbers(dir.path(), "late.log"));
}

/// A freeze that lasts until the guardians' deadline is near (here held 8.5 s by the test
/// hook, on a 10 s deadline) must not truncate: a guardian could resume a writer between
/// the last check and the truncate, and its lines would be truncated with the rest.
/// copytruncate refuses, the writer runs again, and every line is still in the log.
#[test]
fn a_freeze_near_the_guardians_deadline_refuses_and_loses_nothing() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = dir.path().join("slow.log");
    let l = log.to_str().unwrap();
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        l,
        "--on-hup",
        "ignore",
        "--name",
        "slow-logger",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let out = Command::new(bin())
        .args(["rotate", l, "--copytruncate"])
        .env("IOWHY_TEST_HOLD_FROZEN_MS", "8500")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the freeze lasted too long"), "{err}");
    assert!(
        wait_for(Duration::from_secs(2), || state(w.pid()) != 'T'),
        "the writer was left stopped"
    );
    assert_eq!(
        names(dir.path()),
        vec!["slow.log"],
        "no rotated copy is left"
    );
    std::thread::sleep(Duration::from_millis(200));
    w.term();
    assert_each_once(numbers(dir.path(), "slow.log"));
}
