//! Throttle a real `dd oflag=direct` writer: its rate, measured from /proc/PID/io, falls
//! within the limit while limited and comes back after --undo, after --for expires, and
//! when iowhy is killed with SIGKILL during --for (the guardian lifts the limit).
//!
//! dd runs in a blkio group of the test's own capped at `CAP` (so that its unthrottled
//! phases do not write gigabytes a second to the shared disk); iowhy's group for it is
//! made under that one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{bin, live_lock, live_ready, ok};
use super::wait_for;

const LIMIT: f64 = 20.0 * 1048576.0;
/// The test group's own cap: 5 × LIMIT, so "back above the limit" is unmistakable.
const CAP: u64 = 100 << 20;
const BLKIO: &str = "/sys/fs/cgroup/blkio";

/// dd in the capped group, bounded by its count and by `timeout`; killed on drop, and
/// the groups removed.
struct Dd {
    sh: Child,
    pid: u32,
    group: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dd {
    fn start() -> Dd {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let d = std::fs::metadata(dir.path()).unwrap().dev();
        let dev = format!("{}:{}", rustix::fs::major(d), rustix::fs::minor(d));
        let group = Path::new(BLKIO).join(format!("iowhy-test-dd-{}", std::process::id()));
        std::fs::create_dir(&group).unwrap();
        std::fs::write(
            group.join("blkio.throttle.write_bps_device"),
            format!("{dev} {CAP}"),
        )
        .unwrap();
        // 4 GiB at CAP takes 40 s: longer than any case; `timeout` bounds it anyway.
        let sh = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec timeout 90 dd if=/dev/zero of={}/dd.bin bs=1M count=4096 oflag=direct",
                group.display(),
                dir.path().display()
            ))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = sh.id();
        let mut pid = 0;
        assert!(wait_for(Duration::from_secs(5), || {
            pid = std::fs::read_to_string(format!("/proc/{t}/task/{t}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            pid != 0
        }));
        std::thread::sleep(Duration::from_millis(300));
        Dd {
            sh,
            pid,
            group,
            _dir: dir,
        }
    }

    fn in_iowhy_group(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid))
            .unwrap()
            .contains("iowhy-throttle")
    }

    fn iowhy_group(&self) -> PathBuf {
        self.group.join(format!("iowhy-throttle-{}", self.pid))
    }

    /// Bytes per second written, from write_bytes in /proc/PID/io.
    fn rate(&self, d: Duration) -> f64 {
        let wb = || -> u64 {
            let t = std::fs::read_to_string(format!("/proc/{}/io", self.pid)).unwrap();
            t.lines()
                .find_map(|l| l.strip_prefix("write_bytes: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let (a, t) = (wb(), Instant::now());
        std::thread::sleep(d);
        (wb() - a) as f64 / t.elapsed().as_secs_f64()
    }

    fn assert_limited(&self, what: &str) {
        let r = self.rate(Duration::from_secs(2));
        assert!(
            (LIMIT * 0.5..=LIMIT * 1.2).contains(&r),
            "{what}: limited to {r:.0} B/s, want {:.0}..{:.0}",
            LIMIT * 0.5,
            LIMIT * 1.2
        );
    }

    fn assert_free(&self, what: &str) {
        let r = self.rate(Duration::from_secs(1));
        assert!(
            r > 2.0 * LIMIT,
            "{what}: {r:.0} B/s, not back above the limit"
        );
        assert!(!self.in_iowhy_group(), "{what}: moved back");
        assert!(
            !self.iowhy_group().exists(),
            "{what}: iowhy's group removed"
        );
        assert!(
            !Path::new(&format!("/run/iowhy/throttle-{}.json", self.pid)).exists(),
            "{what}: state file removed"
        );
    }
}

impl Drop for Dd {
    fn drop(&mut self) {
        // dd is ours while its parent is our unreaped `timeout`: never signal a reused pid.
        let ppid = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|t| {
                t.rsplit(") ")
                    .next()?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            });
        if ppid == Some(self.sh.id()) {
            if let Some(p) = rustix::process::Pid::from_raw(self.pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        let _ = self.sh.wait();
        let _ = std::fs::remove_dir(self.iowhy_group());
        let _ = wait_for(Duration::from_secs(5), || {
            std::fs::remove_dir(&self.group).is_ok()
        });
    }
}

#[test]
fn throttle_holds_dd_under_its_limit_until_undo() {
    if !live_ready(&["dd", "timeout", "sh"]) {
        return;
    }
    let _l = live_lock();
    let dd = Dd::start();
    let free = dd.rate(Duration::from_secs(1));
    assert!(free > 2.0 * LIMIT, "unthrottled dd is fast: {free:.0} B/s");
    let pid = dd.pid.to_string();
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "throttle",
        &pid,
        "--write-bps",
        "20M",
        "--measure",
        "1s",
        "-f",
        "json",
    ]))
    .unwrap();
    assert_eq!(v["lifted"], false, "{v:#}");
    assert!(dd.in_iowhy_group());
    dd.assert_limited("until --undo");
    let u: serde_json::Value =
        serde_json::from_str(&ok(&["throttle", &pid, "--undo", "-f", "json"])).unwrap();
    assert_eq!(u["lifted"], true);
    assert_eq!(u["notes"], serde_json::json!([]), "the same process: {u:#}");
    dd.assert_free("after --undo");
}

#[test]
fn throttle_for_a_duration_lifts_itself() {
    if !live_ready(&["dd", "timeout", "sh"]) {
        return;
    }
    let _l = live_lock();
    let dd = Dd::start();
    let pid = dd.pid.to_string();
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "throttle",
        &pid,
        "--write-bps",
        "20M",
        "--for",
        "3s",
        "--measure",
        "1s",
        "-f",
        "json",
    ]))
    .unwrap();
    assert_eq!(v["lifted"], true);
    let during = v["during"]["write_bytes_per_s"].as_f64().unwrap();
    let after = v["after"]["write_bytes_per_s"].as_f64().unwrap();
    assert!(
        (LIMIT * 0.5..=LIMIT * 1.2).contains(&during),
        "iowhy measured {during:.0} B/s while limited"
    );
    assert!(after > 2.0 * LIMIT, "iowhy measured {after:.0} B/s after");
    dd.assert_free("after --for");
}

#[test]
fn the_guardian_lifts_the_throttle_when_iowhy_is_killed() {
    if !live_ready(&["dd", "timeout", "sh"]) {
        return;
    }
    let _l = live_lock();
    let dd = Dd::start();
    let mut p = Command::new(bin())
        .args([
            "throttle",
            &dd.pid.to_string(),
            "--write-bps",
            "20M",
            "--for",
            "60s",
            "--measure",
            "300ms",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || dd.in_iowhy_group()),
        "throttled"
    );
    dd.assert_limited("during --for");
    p.kill().unwrap();
    p.wait().unwrap();
    let killed = Instant::now();
    assert!(
        wait_for(Duration::from_secs(5), || !dd.in_iowhy_group()),
        "still throttled 5 s after iowhy was killed"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "lifted after {:?}",
        killed.elapsed()
    );
    dd.assert_free("after iowhy was killed");
}

#[test]
fn undo_after_the_process_exited_restores_the_cgroup_state() {
    if !live_ready(&["dd", "timeout", "sh"]) {
        return;
    }
    let _l = live_lock();
    let mut dd = Dd::start();
    let pid = dd.pid.to_string();
    ok(&["throttle", &pid, "--write-bps", "20M", "--measure", "200ms"]);
    assert!(dd.iowhy_group().exists());
    // dd exits (killed through its parent chain: our own `timeout`, then reaped).
    let timeout_pid = rustix::process::Pid::from_raw(dd.sh.id() as i32).unwrap();
    rustix::process::kill_process(timeout_pid, rustix::process::Signal::TERM).unwrap();
    let _ = dd.sh.wait();
    assert!(wait_for(Duration::from_secs(5), || !Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()));
    let u: serde_json::Value =
        serde_json::from_str(&ok(&["throttle", &pid, "--undo", "-f", "json"])).unwrap();
    assert_eq!(u["lifted"], true);
    assert!(
        u["notes"][0]
            .as_str()
            .unwrap_or_default()
            .contains("has exited"),
        "{u:#}"
    );
    assert!(!dd.iowhy_group().exists(), "iowhy's group removed");
}

#[test]
fn a_signal_during_the_measurement_before_the_limit_limits_nothing() {
    if !live_ready(&["dd", "timeout", "sh"]) {
        return;
    }
    let _l = live_lock();
    let dd = Dd::start();
    let pid = dd.pid.to_string();
    for sig in [
        rustix::process::Signal::INT,
        rustix::process::Signal::TERM,
        rustix::process::Signal::HUP,
    ] {
        let mut p = Command::new(bin())
            .args([
                "throttle",
                &pid,
                "--write-bps",
                "20M",
                "--for",
                "10s",
                "--measure",
                "30s",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        rustix::process::kill_process(rustix::process::Pid::from_raw(p.id() as i32).unwrap(), sig)
            .unwrap();
        let mut ever_limited = false;
        let ended = wait_for(Duration::from_secs(5), || {
            ever_limited |= dd.in_iowhy_group() || dd.iowhy_group().exists();
            p.try_wait().unwrap().is_some()
        });
        assert!(ended, "{sig:?}: iowhy ends at once");
        let out = p.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sig:?}: an abort");
        assert!(err.contains("was not throttled"), "{sig:?}: says so: {err}");
        assert!(!ever_limited, "{sig:?}: never moved into a throttle group");
        assert!(
            !Path::new(&format!("/run/iowhy/throttle-{pid}.json")).exists(),
            "{sig:?}: no state file left"
        );
    }
}
