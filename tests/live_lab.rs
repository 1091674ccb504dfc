//! Live (root): the labs themselves — what a scenario sets up is really there, and
//! whatever way a lab ends (its duration, a signal, SIGKILL and `lab cleanup`), nothing
//! of it is left: no frozen filesystem, no mount, no loop device, no cgroup, no directory.
//!
//! Careful: while frozen-fs runs, anything on the machine that reads every process's
//! cmdline (ps, pgrep, top) hangs until the thaw. These tests never do; each lab runs a
//! few seconds and is thawed by its own Drop if an assertion fails first.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, bin, live_lock, live_ready};

/// The state letter of /proc/PID/stat (stat never waits for the mmap_lock).
fn state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(") ")?.1.chars().next()
}

fn wchan(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

/// Gone, or a zombie waiting for init to reap it.
fn is_gone(pid: u32) -> bool {
    matches!(state(pid), None | Some('Z') | Some('X'))
}

fn wait_gone(pid: u32, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while !is_gone(pid) {
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Does `timeout 2 cat /proc/PID/cmdline` time out (exit 124)?
fn cmdline_blocks(pid: u32) -> bool {
    let st = Command::new("timeout")
        .args(["2", "cat", &format!("/proc/{pid}/cmdline")])
        .stdout(Stdio::null())
        .status()
        .expect("run timeout");
    st.code() == Some(124)
}

fn mounted(mountpoint: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(mountpoint))
}

/// Nothing of the lab is left: mount, loop device, base directory, lab cgroups.
fn assert_nothing_left(lab_pid: u32, base: Option<&str>, mnt: Option<&str>, dev: Option<&str>) {
    if let Some(m) = mnt {
        assert!(!mounted(m), "{m} is still mounted");
    }
    if let Some(d) = dev {
        let backing = std::fs::read_to_string(format!("/sys/block/{d}/loop/backing_file"))
            .unwrap_or_default();
        assert!(
            !base.is_some_and(|b| backing.starts_with(b)),
            "{d} is still attached to {backing}"
        );
    }
    if let Some(b) = base {
        assert!(!Path::new(b).exists(), "the lab left {b} behind");
    }
    let cg = format!("/sys/fs/cgroup/iowhy-lab-{lab_pid}");
    assert!(!Path::new(&cg).exists(), "the lab left its cgroup {cg}");
}

/// Runs `iowhy lab cleanup` when dropped: a test that fails after killing a lab must not
/// leave a frozen filesystem behind.
struct CleanupOnDrop;

impl Drop for CleanupOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("timeout")
            .args(["20", bin(), "lab", "cleanup"])
            .stdout(Stdio::null())
            .status();
    }
}

/// The story: a frozen filesystem stops a writer (D, in sb_start_write) and, through a page
/// fault, the mmap_lock of another process — reading its cmdline (what ps does) hangs.
/// Stopped (SIGTERM), the lab thaws first and then removes everything.
#[test]
fn frozen_fs_blocks_a_writer_and_a_cmdline_read_then_thaws() {
    if !live_ready(&["losetup", "mkfs.ext4", "timeout"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["frozen-fs", "--duration", "20s"]);
    let lab_pid = lab.child.as_ref().map(|c| c.id()).unwrap_or(0);
    let writer = lab
        .event
        .writer_pid
        .expect("writer_pid in the started event");
    let stuck = lab
        .event
        .mmap_stuck_pid
        .expect("mmap_stuck_pid in the started event");
    assert_eq!(lab.event.pids, vec![writer, stuck]);
    let mnt = lab.event.mountpoint.clone().expect("a mountpoint");
    assert!(mounted(&mnt), "{mnt} is not mounted");

    assert_eq!(state(writer), Some('D'), "the writer ({})", wchan(writer));
    assert!(
        cmdline_blocks(stuck),
        "reading /proc/{stuck}/cmdline did not block"
    );
    // The process itself is fine to look at otherwise: stat does not take the mmap_lock.
    assert_eq!(state(stuck), Some('S'));

    let (base, dev) = (lab.base.clone(), lab.event.device.clone());
    let stopped = lab.stop();
    assert_eq!(stopped["event"], "stopped", "{stopped}");
    assert!(
        wait_gone(writer, Duration::from_secs(2)),
        "writer {writer} still there"
    );
    assert!(
        wait_gone(stuck, Duration::from_secs(2)),
        "pid {stuck} still there"
    );
    assert_nothing_left(lab_pid, base.as_deref(), Some(&mnt), dev.as_deref());
}

/// SIGKILL leaves the filesystem frozen (and the workers unkillable in D); `lab cleanup`
/// reads lab.json, thaws, and removes the rest.
#[test]
fn a_killed_frozen_fs_lab_is_thawed_and_removed_by_lab_cleanup() {
    if !live_ready(&["losetup", "mkfs.ext4", "timeout"]) {
        return;
    }
    let _l = live_lock();
    let mut lab = Lab::start(&["frozen-fs", "--duration", "30s"]);
    let writer = lab.event.writer_pid.expect("writer_pid");
    let stuck = lab.event.mmap_stuck_pid.expect("mmap_stuck_pid");
    let mnt = lab.event.mountpoint.clone().expect("a mountpoint");
    let (base, dev) = (lab.base.clone(), lab.event.device.clone());
    let mut child = lab.child.take().expect("the lab runs");
    let lab_pid = child.id();
    let _cleanup = CleanupOnDrop;
    child.kill().expect("SIGKILL the lab");
    child.wait().expect("reap the lab");
    // Killed, its workers got SIGKILL too (PDEATHSIG) but cannot die while frozen.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(writer), Some('D'), "the writer should still wait");
    assert!(mounted(&mnt));

    let out = Command::new("timeout")
        .args(["20", bin(), "lab", "cleanup"])
        .output()
        .expect("run lab cleanup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "lab cleanup: {out:?}");
    assert!(text.contains(&format!("thawed {mnt}")), "{text}");
    assert!(
        wait_gone(writer, Duration::from_secs(3)),
        "writer {writer} still there"
    );
    assert!(
        wait_gone(stuck, Duration::from_secs(3)),
        "pid {stuck} still there"
    );
    assert_nothing_left(lab_pid, base.as_deref(), Some(&mnt), dev.as_deref());
}

/// A dropped ssh session: SIGHUP makes a lab clean up, within 2 s.
#[test]
fn sighup_stops_a_lab_and_it_cleans_up() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let mut lab = Lab::start(&["fsync-logger", "--duration", "30s"]);
    let mnt = lab.event.mountpoint.clone().expect("a mountpoint");
    let (base, dev) = (lab.base.clone(), lab.event.device.clone());
    let mut child = lab.child.take().expect("the lab runs");
    let lab_pid = child.id();
    let pid = rustix::process::Pid::from_raw(lab_pid as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(2) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the lab did not exit within 2 s of SIGHUP");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "lab exited with {status}");
    assert_nothing_left(lab_pid, base.as_deref(), Some(&mnt), dev.as_deref());
}
