//! Live (root): iowhy on a machine where reads block. Under `iowhy lab frozen-fs` (the
//! lab's loop filesystem frozen, a writer in D, a process whose `mmap_lock` is held behind
//! a stuck page fault, so that reading its `cmdline` blocks, as it does for `ps`), every
//! read-only command finishes within its window plus 2 s, exits 0, names the stuck
//! process by its comm, and reports the frozen filesystem; a signal ends a diagnose whose
//! read is stuck within 1 s.
//!
//! Careful: while the lab runs, anything that reads every process's cmdline (ps, pgrep,
//! top) hangs until the thaw. These tests never do.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, bin, live_lock, live_ready};
use iowhy::wire::diagnose::{FindingJson, Report};

/// Runs `iowhy lab cleanup` when dropped: a failing test must not leave the lab's
/// filesystem frozen.
struct CleanupOnDrop;

impl Drop for CleanupOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("timeout")
            .args(["20", bin(), "lab", "cleanup"])
            .stdout(Stdio::null())
            .status();
    }
}

/// Run iowhy with a hard limit (SIGKILL past it, so a hang fails the test instead of
/// hanging it), returning its output and how long it took.
fn run_bounded(args: &[&str], limit: Duration) -> (Output, Duration) {
    let t0 = Instant::now();
    let out = Command::new("timeout")
        .arg("-s")
        .arg("KILL")
        .arg(format!("{}", limit.as_secs() + 5))
        .arg(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run iowhy");
    (out, t0.elapsed())
}

fn check(args: &[&str], window: Duration) -> String {
    let limit = window + Duration::from_secs(2);
    let (out, took) = run_bounded(args, limit);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "iowhy {args:?} exited {:?} after {took:?}: {stderr}",
        out.status
    );
    assert!(
        took <= limit,
        "iowhy {args:?} took {took:?}, more than its window + 2 s"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `diagnose -d 1s --tracing off --format json`, bounded, read through the contract types.
fn diagnose() -> Report {
    let text = check(
        &[
            "diagnose",
            "-d",
            "1s",
            "--tracing",
            "off",
            "--format",
            "json",
        ],
        Duration::from_secs(1),
    );
    serde_json::from_str(&text).expect("diagnose JSON")
}

/// The finding of `kind` about `mountpoint`, or a failure listing what there was.
fn finding<'a>(r: &'a Report, kind: &str, mountpoint: &str) -> &'a FindingJson {
    r.findings
        .iter()
        .find(|f| f.kind == kind && f.subject.mountpoint.as_deref() == Some(mountpoint))
        .unwrap_or_else(|| {
            panic!(
                "no {kind} for {mountpoint}: {:#?}",
                r.findings.iter().map(|f| &f.summary).collect::<Vec<_>>()
            )
        })
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn every_read_only_command_finishes_under_a_frozen_filesystem_and_says_what_is_stuck() {
    if !live_ready(&["losetup", "mkfs.ext4", "timeout"]) {
        return;
    }
    let _l = live_lock();
    let _cleanup = CleanupOnDrop;
    let lab = Lab::start(&["frozen-fs", "--duration", "90s"]);
    let writer = lab.event.writer_pid.expect("writer_pid");
    let stuck = lab.event.mmap_stuck_pid.expect("mmap_stuck_pid");
    let mnt = lab.event.mountpoint.clone().expect("mountpoint");
    let stuck_comm = comm(stuck);
    let (w, s) = (writer.to_string(), stuck.to_string());

    // diagnose: the frozen filesystem is the finding, the blocked cmdline a blind spot,
    // and the stuck process is still listed, by its comm.
    let d = diagnose();
    let frozen = finding(&d, "filesystem_frozen", &mnt);
    assert_eq!(frozen.severity, "critical");
    assert!(
        frozen
            .remediation
            .iter()
            .any(|r| r.starts_with(&format!("fsfreeze -u {mnt}"))),
        "{frozen:#?}"
    );
    let waiting = frozen.evidence["waiting"].as_str().unwrap();
    assert!(waiting.contains(&format!(":{writer}")), "{waiting}");
    let spots: Vec<&str> = d.blind_spots.iter().map(|b| b.what.as_str()).collect();
    assert!(
        spots
            .iter()
            .any(|w| w.contains(&format!("/proc/{stuck}/cmdline")) && w.contains("mmap_lock")),
        "the blocked cmdline is not a blind spot: {spots:#?}"
    );
    if let Some(p) = d.processes.iter().find(|p| p.pid == stuck) {
        assert!(p.cmdline.contains(&stuck_comm), "{p:#?}");
    }

    // The text report names the thaw.
    let text = check(
        &["diagnose", "-d", "1s", "--tracing", "off"],
        Duration::from_secs(1),
    );
    assert!(text.contains("filesystem_frozen"), "{text}");
    assert!(text.contains(&format!("fsfreeze -u {mnt}")), "{text}");

    // top -b lists the stuck process by comm.
    let text = check(
        &[
            "top", "-b", "-n", "2", "-d", "0.5", "--all", "--limit", "100000",
        ],
        Duration::from_secs(1),
    );
    assert!(
        text.contains(&stuck_comm),
        "top does not list {stuck_comm}:\n{text}"
    );

    // files of the stuck process and of the writer.
    let text = check(&["files", &s, "--duration", "0s"], Duration::ZERO);
    assert!(!text.is_empty());
    let text = check(
        &["files", &w, "--duration", "0s", "--format", "json"],
        Duration::ZERO,
    );
    assert!(
        text.contains(&mnt),
        "the writer's file on {mnt} is not listed:\n{text}"
    );

    // containers and space (a walk of the frozen mount still reads: a freeze stops writes).
    check(&["containers", "--duration", "1s"], Duration::from_secs(1));
    let text = check(
        &["space", &mnt, "--duration", "1s", "--format", "json"],
        Duration::from_secs(1),
    );
    serde_json::from_str::<serde_json::Value>(&text).expect("space JSON");

    // pause and rotate, dry runs: they read every holder's fds and maps.
    check(
        &["pause", &w, "--for", "2s", "--dry-run"],
        Duration::from_secs(2),
    );
    let log = lab
        .event
        .paths
        .iter()
        .find(|p| p.starts_with(&mnt))
        .cloned()
        .unwrap_or_else(|| format!("{mnt}/missing"));
    let (out, took) = run_bounded(&["rotate", &log, "--dry-run"], Duration::from_secs(2));
    assert!(
        took <= Duration::from_secs(4),
        "rotate --dry-run took {took:?}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(lab);
}

/// With a read deadline far longer than the test, diagnose (and files) really sit in a
/// stuck read (the stuck process's cmdline); SIGTERM, SIGINT and SIGHUP must each end them
/// within 1 s.
#[test]
fn a_signal_ends_a_diagnose_stuck_on_a_read_within_a_second() {
    if !live_ready(&["losetup", "mkfs.ext4", "timeout"]) {
        return;
    }
    let _l = live_lock();
    let _cleanup = CleanupOnDrop;
    let lab = Lab::start(&["frozen-fs", "--duration", "60s"]);
    let stuck = lab.event.mmap_stuck_pid.expect("mmap_stuck_pid");
    let s = stuck.to_string();
    let diagnose: &[&str] = &["diagnose", "-d", "30s", "--tracing", "off"];
    let files: &[&str] = &["files", &s, "--duration", "0s"];
    for (cmd, sig) in [
        (diagnose, rustix::process::Signal::TERM),
        (diagnose, rustix::process::Signal::INT),
        (diagnose, rustix::process::Signal::HUP),
        (files, rustix::process::Signal::TERM),
        (files, rustix::process::Signal::INT),
        (files, rustix::process::Signal::HUP),
    ] {
        let mut child = Command::new(bin())
            .args(["--read-timeout", "60s"])
            .args(cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iowhy");
        // Long enough to be inside the stuck cmdline read.
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            child.try_wait().unwrap().is_none(),
            "it should be waiting on the read"
        );
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        let t0 = Instant::now();
        rustix::process::kill_process(pid, sig).unwrap();
        let mut ended = None;
        while t0.elapsed() < Duration::from_secs(5) {
            if let Some(st) = child.try_wait().unwrap() {
                ended = Some((st, t0.elapsed()));
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let Some((_, took)) = ended else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{sig:?} did not end iowhy within 5 s");
        };
        eprintln!("{cmd:?} {sig:?}: iowhy ended {took:?} after the signal");
        assert!(took < Duration::from_secs(1), "{cmd:?} {sig:?}: {took:?}");
    }
    drop(lab);
}

/// A FUSE filesystem whose daemon we stop (SIGSTOP), with a process of ours holding a file
/// on it: the audit's hung-mount reproduction. statfs of that mount never answers; diagnose
/// must still finish within its window + 2 s, say the mount does not answer, and exit 0.
const FUSE_FS: &str = r#"
import errno, os, stat, sys, time
from fusepy import FUSE, Operations
class One(Operations):
    def getattr(self, path, fh=None):
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        if path == "/f":
            return dict(st_mode=stat.S_IFREG | 0o644, st_nlink=1, st_size=5)
        raise OSError(errno.ENOENT, "")
    def readdir(self, path, fh):
        return [".", "..", "f"]
    def open(self, path, flags):
        return 0
    def read(self, path, size, offset, fh):
        return b"hello"[offset:offset + size]
    def statfs(self, path):
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=100, f_bfree=50, f_bavail=50)
FUSE(One(), sys.argv[1], foreground=True, nothreads=True, attr_timeout=0.1, entry_timeout=0.1)
"#;

struct Fuse {
    daemon: std::process::Child,
    holder: std::process::Child,
    mnt: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Fuse {
    fn drop(&mut self) {
        use rustix::process::{Pid, Signal, kill_process};
        for c in [&self.daemon, &self.holder] {
            if let Some(p) = Pid::from_raw(c.id() as i32) {
                let _ = kill_process(p, Signal::CONT);
            }
        }
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn start_fuse() -> Fuse {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("one.py");
    std::fs::write(&script, FUSE_FS).unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let daemon = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(&mnt)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the FUSE daemon");
    let until = Instant::now() + Duration::from_secs(10);
    while !mnt.join("f").exists() {
        assert!(
            Instant::now() < until,
            "the FUSE filesystem did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let holder = Command::new("sh")
        .arg("-c")
        .arg("exec 3<\"$1\"; exec sleep 120")
        .arg("sh")
        .arg(mnt.join("f"))
        .spawn()
        .expect("start the holder");
    std::thread::sleep(Duration::from_millis(300));
    Fuse {
        daemon,
        holder,
        mnt,
        _dir: dir,
    }
}

#[test]
fn a_hung_fuse_mount_is_reported_not_waited_for() {
    if !live_ready(&["/usr/bin/python3", "umount"]) {
        return;
    }
    let has_fusepy = Command::new("/usr/bin/python3")
        .args(["-c", "import fusepy"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_fusepy || !std::path::Path::new("/dev/fuse").exists() {
        assert!(
            std::env::var_os("IOWHY_REQUIRE_LIVE").is_none(),
            "python3-fusepy or /dev/fuse missing"
        );
        eprintln!("SKIPPED: python3-fusepy or /dev/fuse missing");
        return;
    }
    let _l = live_lock();
    let fuse = start_fuse();
    let mnt = fuse.mnt.display().to_string();
    let pid = rustix::process::Pid::from_raw(fuse.daemon.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    // Past the attribute timeout, so that anything asking the daemon waits for it.
    std::thread::sleep(Duration::from_millis(300));
    let d = diagnose();
    let f = finding(&d, "filesystem_unresponsive", &mnt);
    assert_eq!(f.severity, "critical");
    assert!(
        f.evidence["fstype"].as_str().unwrap().starts_with("fuse"),
        "{f:#?}"
    );
    let holders = f.evidence["holders"].as_str().unwrap();
    assert!(
        holders.contains(&format!(":{}", fuse.holder.id())),
        "{f:#?}"
    );
    // The other read-only commands do not wait for it either.
    check(
        &["top", "-b", "-n", "2", "-d", "0.5"],
        Duration::from_secs(1),
    );
    check(
        &["files", &fuse.holder.id().to_string(), "--duration", "0s"],
        Duration::ZERO,
    );
    check(&["space", "--duration", "0s"], Duration::ZERO);
    check(&["containers", "--duration", "1s"], Duration::from_secs(1));
    // A walk of the hung mount itself is refused with one line, promptly.
    let (out, took) = run_bounded(&["space", &mnt, "--duration", "0s"], Duration::from_secs(2));
    assert!(took < Duration::from_secs(3), "space {mnt} took {took:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(fuse);
}

/// The audit's §8 #5: any user can start a process named `kubelet` whose `--config` is a
/// FIFO (or /dev/zero). root's `containers` and `diagnose` must neither hang nor fill
/// memory: another user's kubelet is not trusted at all, and even root's config is read
/// only if it is a regular file.
#[test]
fn a_fake_kubelet_with_a_fifo_config_hangs_nothing() {
    if !live_ready(&["setpriv", "mkfifo"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut kids = Vec::new();
    for (user, config) in [
        ("nobody", fifo.display().to_string()),
        ("root", fifo.display().to_string()),
        ("root", "/dev/zero".into()),
    ] {
        let mut c = Command::new("setpriv");
        if user == "nobody" {
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        }
        c.args([
            "bash",
            "-c",
            "exec -a kubelet sh -c 'sleep 60; :' x --config \"$1\"",
            "x",
            &config,
        ]);
        kids.push(common::Reap(c.spawn().expect("start the fake kubelet")));
    }
    std::thread::sleep(Duration::from_millis(300));
    // Our three impostors are there, named kubelet.
    let n = kids
        .iter()
        .filter(|k| {
            std::fs::read(format!("/proc/{}/cmdline", k.id()))
                .is_ok_and(|c| c.starts_with(b"kubelet\0"))
        })
        .count();
    assert_eq!(n, 3);
    let text = check(
        &["containers", "--duration", "1s", "--format", "json"],
        Duration::from_secs(1),
    );
    serde_json::from_str::<serde_json::Value>(&text).expect("containers JSON");
    diagnose();
    drop(kids);
}
