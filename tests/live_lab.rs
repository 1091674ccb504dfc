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
    assert_eq!(stopped.event, "stopped", "{stopped:?}");
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

/// Run a shell script as user nobody (the unprivileged attacker).
fn as_nobody(script: &str) {
    let st = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .status()
        .expect("run setpriv");
    assert!(st.success(), "as nobody: {script}: {st}");
}

/// Removes the given paths when dropped (planted directories hold only links: removing
/// them never follows one).
struct RemoveOnDrop(Vec<String>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
}

/// Audit §8 #2: nobody pre-creates the lab directories of the next pids, with disk.img
/// and lab.json linked to a victim and mnt linked to a directory. A root lab must create
/// a directory of its own instead, and the victim stays intact.
#[test]
fn planted_lab_directories_and_links_are_never_followed() {
    if !live_ready(&["losetup", "mkfs.ext4", "setpriv"]) {
        return;
    }
    let _l = live_lock();
    let me = std::process::id();
    let victim = format!("/var/tmp/iowhy-test-victim-{me}");
    let victim_dir = format!("/var/tmp/iowhy-test-victim-dir-{me}");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::create_dir(&victim_dir).unwrap();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (from, to) = (last + 1, last + 300);
    let mut planted: Vec<String> = (from..to)
        .map(|n| format!("/var/tmp/iowhy-lab-{n}"))
        .collect();
    planted.extend([victim.clone(), victim_dir.clone()]);
    let _rm = RemoveOnDrop(planted);
    as_nobody(&format!(
        "n={from}; while [ $n -lt {to} ]; do d=/var/tmp/iowhy-lab-$n; \
         mkdir -m 777 $d && ln -s {victim} $d/disk.img && ln -s {victim} $d/lab.json \
         && ln -s {victim_dir} $d/mnt; n=$((n+1)); done"
    ));
    let lab = Lab::start(&["fsync-logger", "--duration", "2s", "--size", "32M"]);
    let base = lab.base.clone().expect("a base");
    let lab_pid = lab.child.as_ref().map(|c| c.id()).unwrap_or(0);
    let trap = format!("/var/tmp/iowhy-lab-{lab_pid}");
    assert_ne!(base, trap, "the lab adopted a planted directory");
    if (from..to).contains(&lab_pid) {
        let link = std::fs::symlink_metadata(format!("{trap}/disk.img")).unwrap();
        assert!(
            link.file_type().is_symlink(),
            "the planted link was replaced"
        );
    }
    let md = std::fs::symlink_metadata(&base).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((md.uid(), md.mode() & 0o777), (0, 0o700), "{base}");
    let stopped = lab.stop();
    assert_eq!(stopped.event, "stopped");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0);
    assert!(!Path::new(&base).exists(), "the lab left {base}");
}

/// Audit §8 #1: nobody writes a lab.json that tells root to restore a victim file and to
/// remove a scratch directory. `lab cleanup` obeys none of it and says why, with a
/// failing exit status; so does a root-owned file whose base is another directory.
#[test]
fn lab_cleanup_ignores_state_it_did_not_write() {
    if !live_ready(&["setpriv"]) {
        return;
    }
    let _l = live_lock();
    let me = std::process::id();
    let victim = format!("/var/tmp/iowhy-test-victim-{me}");
    let scratch = format!("/var/tmp/iowhy-test-scratch-{me}");
    let forged = format!("/var/tmp/iowhy-lab-1-forged-{me}");
    let misplaced = format!("/var/tmp/iowhy-lab-2-misplaced-{me}");
    let _rm = RemoveOnDrop(vec![
        victim.clone(),
        scratch.clone(),
        forged.clone(),
        misplaced.clone(),
    ]);
    std::fs::write(&victim, "precious\n").unwrap();
    let json = format!(
        r#"{{"base":"{scratch}","dir":"{scratch}","mounted":false,"owner_pid":999999,"restore":[["{victim}","pwned"]]}}"#
    );
    as_nobody(&format!(
        "mkdir -m 700 {scratch} && echo keep > {scratch}/file && mkdir -m 700 {forged} \
         && printf '%s' '{json}' > {forged}/lab.json && chmod 600 {forged}/lab.json"
    ));
    // Root's own file and directory, modes right, but the base is not where it was read.
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&misplaced)
            .unwrap();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(format!("{misplaced}/lab.json"))
            .unwrap();
        std::io::Write::write_all(&mut f, json.as_bytes()).unwrap();
    }
    let out = Command::new("timeout")
        .args(["20", bin(), "lab", "cleanup"])
        .output()
        .expect("run lab cleanup");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        err.contains(&format!(
            "{forged}/lab.json: ignored: its directory belongs to uid 65534"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{misplaced}/lab.json: ignored: its base {scratch} is not the directory"
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::read_to_string(format!("{scratch}/file")).unwrap(),
        "keep\n"
    );
}

/// Audit §5: an error inside a running lab (any `?`) used to drop its live workers, so
/// the cgroup could not be removed and the mount was only lazily detached. Now the
/// workers are stopped and reaped first, and nothing is left.
#[test]
fn a_lab_failing_midway_stops_its_workers_and_leaves_nothing() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    use std::io::BufRead;
    let mut child = common::Reap(
        Command::new(bin())
            .args([
                "lab",
                "slow-disk",
                "--duration",
                "20s",
                "--size",
                "64M",
                "--format",
                "json",
            ])
            .env(iowhy::lab::TEST_FAIL_ENV, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lab"),
    );
    let lab_pid = child.id();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the started event");
    let ev: common::LabEvent = common::wire(&line);
    let status = child.wait().expect("the lab exits");
    assert_eq!(status.code(), Some(1), "the lab fails on purpose");
    for pid in &ev.pids {
        assert!(
            wait_gone(*pid, Duration::from_secs(2)),
            "worker {pid} still runs"
        );
    }
    assert_nothing_left(
        lab_pid,
        ev.base.as_deref(),
        ev.mountpoint.as_deref(),
        ev.device.as_deref(),
    );
}
