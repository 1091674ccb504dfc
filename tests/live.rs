//! Live (root): each lab scenario is a real incident on this machine; `iowhy diagnose`
//! must name the right kind, pid, path and mountpoint, and the lab must clean up after
//! itself. Bounded: each lab runs at most 40 s on a loop-device filesystem of its own.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Lab, live_lock, live_ready, ok};
use iowhy::wire::diagnose::{FindingJson, Report};

fn diagnose(secs: u32) -> Report {
    let d = format!("{secs}s");
    serde_json::from_str(&ok(&["diagnose", "--duration", &d, "--format", "json"]))
        .expect("contract JSON")
}

fn find<'a>(r: &'a Report, kind: &str, pid: u32) -> &'a FindingJson {
    r.findings
        .iter()
        .find(|f| f.kind == kind && f.subject.pid == Some(pid))
        .unwrap_or_else(|| {
            panic!(
                "expected {kind} for pid {pid}; got {:#?}",
                r.findings
                    .iter()
                    .map(|f| (&f.kind, &f.severity, &f.subject, &f.summary))
                    .collect::<Vec<_>>()
            )
        })
}

fn assert_cleaned(lab_base: Option<&str>, stopped: &common::LabEvent, device: Option<&str>) {
    assert_eq!(stopped.event, "stopped", "{stopped:?}");
    if let Some(b) = lab_base {
        assert!(!Path::new(b).exists(), "lab left {b} behind");
    }
    if let Some(dev) = device {
        let backing = format!("/sys/block/{dev}/loop/backing_file");
        let still = std::fs::read_to_string(&backing).unwrap_or_default();
        assert!(
            !still.contains("iowhy-lab-"),
            "{dev} still attached to {still}"
        );
    }
}

#[test]
fn fsync_logger_is_diagnosed() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["fsync-logger", "--duration", "40s"]);
    std::thread::sleep(Duration::from_secs(2));
    let r = diagnose(3);
    let pid = lab.event.pids[0];
    let f = find(&r, "top_io_writer", pid);
    assert_eq!(f.subject.path.as_deref(), Some(lab.event.paths[0].as_str()));
    assert_eq!(f.subject.mountpoint, lab.event.mountpoint);
    assert_eq!(f.subject.device, lab.event.device);
    let (base, dev) = (lab.base.clone(), lab.event.device.clone());
    let stopped = lab.stop();
    assert_cleaned(base.as_deref(), &stopped, dev.as_deref());
}

#[test]
fn disk_fill_is_diagnosed() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["disk-fill", "--duration", "40s", "--size", "256M"]);
    // 256 MiB at 16 MiB/s: a few seconds in, it is filling with seconds to go.
    std::thread::sleep(Duration::from_secs(4));
    let r = diagnose(2);
    let pid = lab.event.pids[0];
    let full = find(&r, "filesystem_full", pid);
    assert_eq!(full.subject.mountpoint, lab.event.mountpoint);
    assert_eq!(full.severity, "critical");
    let log = find(&r, "runaway_log", pid);
    assert_eq!(
        log.subject.path.as_deref(),
        Some(lab.event.paths[0].as_str())
    );
    let (base, dev) = (lab.base.clone(), lab.event.device.clone());
    let stopped = lab.stop();
    assert_cleaned(base.as_deref(), &stopped, dev.as_deref());
}

#[test]
fn deleted_open_is_diagnosed() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["deleted-open", "--duration", "40s", "--size", "256M"]);
    std::thread::sleep(Duration::from_secs(3));
    let r = diagnose(2);
    let pid = lab.event.pids[0];
    let f = find(&r, "deleted_file_held_open", pid);
    assert_eq!(f.subject.path.as_deref(), Some(lab.event.paths[0].as_str()));
    assert_eq!(f.subject.mountpoint, lab.event.mountpoint);
    let (base, dev) = (lab.base.clone(), lab.event.device.clone());
    let stopped = lab.stop();
    assert_cleaned(base.as_deref(), &stopped, dev.as_deref());
}

#[test]
fn buffered_flood_is_diagnosed_and_device_limits_restored() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["buffered-flood", "--duration", "40s", "--size", "512M"]);
    let dev = lab.event.device.clone().expect("a loop device");
    let (maj_min, before) = {
        let d = std::fs::read_to_string(format!("/sys/block/{dev}/dev")).unwrap();
        let mm = d.trim().to_string();
        (
            mm.clone(),
            std::fs::read_to_string(format!("/sys/class/bdi/{mm}/strict_limit")).unwrap(),
        )
    };
    assert_eq!(
        before.trim(),
        "1",
        "the lab caps its own device while it runs"
    );
    std::thread::sleep(Duration::from_secs(2));
    let r = diagnose(3);
    let pid = lab.event.pids[0];
    find(&r, "dirty_writeback_pressure", pid);
    let w = find(&r, "top_io_writer", pid);
    assert_eq!(w.subject.mountpoint, lab.event.mountpoint);
    let base = lab.base.clone();
    let stopped = lab.stop();
    assert_cleaned(base.as_deref(), &stopped, Some(&dev));
    let after = std::fs::read_to_string(format!("/sys/class/bdi/{maj_min}/strict_limit")).unwrap();
    assert_eq!(after.trim(), "0", "strict_limit restored");
    // The byte cap is undone through the ratio (a byte value may be refused on the way
    // back, which used to leave the device capped at 16 MiB).
    let ratio = std::fs::read_to_string(format!("/sys/class/bdi/{maj_min}/max_ratio")).unwrap();
    assert_eq!(
        ratio.trim(),
        "100",
        "max_ratio restored; cleaned: {:?}",
        stopped.cleaned
    );
}

#[test]
fn quiet_machine_gets_no_critical_finding() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let r = diagnose(2);
    let critical: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.severity == "critical")
        .collect();
    assert!(critical.is_empty(), "a quiet machine got {critical:#?}");
    assert!(r.capabilities.root);
}

#[test]
fn a_normal_user_gets_a_partial_report_that_says_what_it_could_not_see() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(common::bin())
        .args(["diagnose", "--duration", "1s", "--format", "json"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    assert!(
        out.status.success(),
        "as nobody: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Report =
        serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).expect("contract JSON");
    assert!(!r.capabilities.root);
    assert!(!r.capabilities.all_processes_visible);
    assert_ne!(r.capabilities.tracing, "ebpf");
    assert_ne!(r.capabilities.tracing, "perf");
    // It says what it could not see, and how to see it.
    let said = r
        .blind_spots
        .iter()
        .map(|b| format!("{} {}", b.what, b.how_to_see))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(said.contains("permission denied"), "{said}");
    assert!(said.contains("run as root"), "{said}");
    // Unreadable counters are unknown (null), not zero.
    for p in r.processes.iter().filter(|p| p.uid != Some(65534)) {
        assert!(
            p.write_bytes_per_s.is_none(),
            "pid {} of another user has a write rate",
            p.pid
        );
    }
    // The system-wide parts are all there.
    assert!(!r.devices.is_empty());
    assert!(r.filesystems.iter().any(|f| f.mountpoint == "/"));

    // `files` of another user's process: one clear line and exit 2, not an empty table.
    let mut root_proc = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let as_nobody = |args: &[&str]| {
        std::process::Command::new(common::bin())
            .args(args)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("run as nobody")
    };
    let pid = root_proc.id().to_string();
    let out = as_nobody(&["files", &pid, "-d", "0"]);
    let _ = root_proc.kill();
    let _ = root_proc.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("cannot read the open files of pid {pid}"))
            && err.contains("run as root"),
        "{err}"
    );
    // `space` says that its deleted-open list is incomplete.
    let out = as_nobody(&["space", "-d", "0", "-f", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let spots = v["blind_spots"].to_string();
    assert!(spots.contains("open files of"), "{spots}");
    let text = String::from_utf8(as_nobody(&["space", "-d", "0"]).stdout).unwrap();
    assert!(!text.contains("df and du agree"), "{text}");
}

fn proc_io_write_bytes(pid: u32) -> u64 {
    let t = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    t.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn per_process_rates_agree_with_proc_io_deltas() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    // A steady buffered writer: disk-fill at 8 MiB/s on a roomy filesystem.
    let lab = Lab::start(&[
        "disk-fill",
        "--duration",
        "40s",
        "--size",
        "512M",
        "--rate",
        "8M",
    ]);
    let pid = lab.event.pids[0];
    std::thread::sleep(Duration::from_secs(1));
    let (b0, t0) = (proc_io_write_bytes(pid), std::time::Instant::now());
    let out = ok(&["top", "-b", "-n", "1", "-d", "3", "-f", "json", "--all"]);
    let (b1, el) = (proc_io_write_bytes(pid), t0.elapsed().as_secs_f64());
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let ours = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .expect("the writer")["write_bytes_per_s"]
        .as_f64()
        .unwrap();
    let direct = (b1 - b0) as f64 / el;
    assert!(
        (ours - direct).abs() <= 0.05 * direct,
        "iowhy top {ours} B/s vs /proc/{pid}/io delta {direct} B/s"
    );
    assert!(
        (ours - 8.0 * 1048576.0).abs() <= 0.1 * 8.0 * 1048576.0,
        "the lab writes 8 MiB/s; got {ours}"
    );
}

#[test]
fn files_agree_with_lsof() {
    if !live_ready(&["losetup", "mkfs.ext4", "lsof"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["deleted-open", "--duration", "40s", "--size", "256M"]);
    let pid = lab.event.pids[0];
    std::thread::sleep(Duration::from_secs(2));
    let ours: serde_json::Value =
        serde_json::from_str(&ok(&["files", &pid.to_string(), "-d", "0", "-f", "json"])).unwrap();
    // lsof -F: f<fd> then n<name> per open file.
    let out = std::process::Command::new("lsof")
        .args(["-p", &pid.to_string(), "-a", "-d", "0-999", "-F", "fn"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut theirs = Vec::new();
    let mut fd = None;
    for l in text.lines() {
        if let Some(f) = l.strip_prefix('f') {
            fd = f.parse::<i32>().ok();
        } else if let (Some(n), Some(f)) = (l.strip_prefix('n'), fd) {
            theirs.push((f, n.to_string()));
        }
    }
    assert!(!theirs.is_empty(), "lsof printed {text}");
    let files = ours["files"].as_array().unwrap();
    for (f, name) in &theirs {
        let o = files
            .iter()
            .find(|x| x["fd"] == *f)
            .unwrap_or_else(|| panic!("fd {f} ({name}) missing from iowhy files"));
        let path = o["path"].as_str().unwrap();
        // lsof prints "PATH (deleted)" for deleted files, pipes as "pipe".
        let their = name.trim_end_matches(" (deleted)");
        if their.starts_with('/') {
            assert_eq!(path, their, "fd {f}");
            assert_eq!(
                o["deleted"].as_bool().unwrap(),
                name.ends_with("(deleted)"),
                "fd {f}"
            );
        }
    }
    assert_eq!(
        files.len(),
        theirs.len(),
        "same number of fds: ours {files:#?} lsof {theirs:?}"
    );
}

#[test]
fn space_walk_agrees_with_du() {
    if !live_ready(&["du"]) {
        return;
    }
    let _l = live_lock();
    let d = tempfile::tempdir_in("/var/tmp").unwrap();
    for i in 0..50 {
        let sub = d.path().join(format!("d{}", i % 5));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i}")), vec![7u8; 1000 * (i + 1)]).unwrap();
    }
    std::fs::hard_link(d.path().join("d0/f0"), d.path().join("d1/link")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "space",
        d.path().to_str().unwrap(),
        "-d",
        "0",
        "-f",
        "json",
        "--depth",
        "1",
    ]))
    .unwrap();
    let du = std::process::Command::new("du")
        .args(["-sx", "--block-size=1"])
        .arg(d.path())
        .output()
        .unwrap();
    let du: u64 = String::from_utf8_lossy(&du.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ours = v["walk"]["total_bytes"].as_u64().unwrap();
    let root_dir = std::fs::metadata(d.path())
        .map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512)
        .unwrap();
    // du counts the starting directory itself; the walk counts what is below it.
    assert_eq!(
        ours + root_dir,
        du,
        "walk {ours} + root {root_dir} vs du {du}"
    );
    assert_eq!(
        v["walk"]["files"].as_u64(),
        Some(50),
        "a hard link counts once"
    );
    let biggest = &v["walk"]["biggest_files"][0];
    assert!(biggest["path"].as_str().unwrap().ends_with("/f49"));
}

#[test]
fn a_slow_disk_is_diagnosed_as_saturated_with_traced_device_time() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["slow-disk", "--duration", "40s"]);
    let dev = lab.event.device.clone().expect("a loop device");
    std::thread::sleep(Duration::from_secs(3));
    let r: Report = serde_json::from_str(&ok(&[
        "diagnose",
        "--duration",
        "3s",
        "--tracing",
        "ebpf",
        "--format",
        "json",
    ]))
    .unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == "device_saturated" && f.subject.device.as_deref() == Some(dev.as_str()))
        .unwrap_or_else(|| panic!("no device_saturated for {dev}: {:#?}", r.findings));
    assert_eq!(f.severity, "critical", "{f:#?}");
    assert!(f.evidence["util_pct"].as_f64().unwrap() > 90.0);
    assert!(f.evidence["await_ms"].as_f64().unwrap() > 50.0);
    assert!(
        f.evidence["traced_device_time_ms"].as_f64().unwrap() > 20.0,
        "measured in the device: {f:#?}"
    );
    let d = r.devices.iter().find(|d| d.disk_device == dev).unwrap();
    assert!(d.traced_device_time_ms.is_some());
    // The lab's writers are the ones loading it, and the files do not grow.
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == "top_io_writer"
                && lab.event.pids.contains(&f.subject.pid.unwrap_or(0)))
    );
    assert!(
        !r.findings
            .iter()
            .any(|f| f.kind == "filesystem_full" && f.subject.mountpoint == lab.event.mountpoint)
    );
    let (base, dev) = (lab.base.clone(), lab.event.device.clone());
    let stopped = lab.stop();
    assert_cleaned(base.as_deref(), &stopped, dev.as_deref());
    let left: Vec<_> = std::fs::read_dir("/sys/fs/cgroup/blkio")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mine = format!(
        "iowhy-lab-{}",
        base.as_deref().unwrap().rsplit('-').next().unwrap()
    );
    assert!(!left.contains(&mine), "the lab's cgroup {mine} was removed");
}
