//! Live: `iowhy iostat` agrees with sysstat's `iostat -dx` on the same load, sampled over
//! the same interval (both started together), within a few percent.

mod common;

use std::process::{Command, Stdio};

use common::{Lab, bin, live_lock, live_ready};

/// (key, absolute tolerance); the relative tolerance is 5% of the larger value.
const KEYS: &[(&str, f64)] = &[
    ("r/s", 2.0),
    ("w/s", 2.0),
    ("f/s", 2.0),
    ("d/s", 2.0),
    ("rkB/s", 20.0),
    ("wkB/s", 20.0),
    ("dkB/s", 20.0),
    ("rrqm/s", 2.0),
    ("wrqm/s", 2.0),
    ("drqm/s", 2.0),
    ("rrqm", 1.0),
    ("wrqm", 1.0),
    ("drqm", 1.0),
    ("r_await", 0.05),
    ("w_await", 0.05),
    ("d_await", 0.05),
    ("f_await", 0.05),
    ("rareq-sz", 1.0),
    ("wareq-sz", 1.0),
    ("dareq-sz", 1.0),
    ("aqu-sz", 0.05),
    ("util", 2.0),
];

/// sysstat's `iostat THEIRS -o JSON 2 2` and `iowhy iostat OURS -f json 2 2`, started
/// together: sysstat's two statistics objects and our two JSON lines.
fn both(theirs: &[&str], ours: &[&str]) -> (serde_json::Value, Vec<serde_json::Value>) {
    let t = Command::new("iostat")
        .args(theirs)
        .args(["-o", "JSON", "2", "2"])
        .env("LC_ALL", "C")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = Command::new(bin())
        .arg("iostat")
        .args(ours)
        .args(["-f", "json", "2", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (t, o) = (t.wait_with_output().unwrap(), o.wait_with_output().unwrap());
    let t: serde_json::Value = serde_json::from_slice(&t.stdout).expect("sysstat JSON");
    let ours = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (t["sysstat"]["hosts"][0]["statistics"].clone(), ours)
}

fn close(a: f64, b: f64, abs: f64) -> bool {
    (a - b).abs() <= abs.max(0.05 * a.abs().max(b.abs()))
}

/// The two tools start a few milliseconds apart, so their interval windows differ by that
/// much at each end: another process's burst (a binary paged in, a journal write) can land
/// in one window and not the other. The interval report allows one such burst, 32
/// requests or 128 KiB over the 2 s window, on top of the tolerance; since boot, both read
/// the same counters and no allowance is given.
const BURST_REQS_PER_S: f64 = 16.0;
const BURST_KB_PER_S: f64 = 64.0;
/// Per-request figures (await, request size, merge share) are compared in the interval
/// only where both tools saw at least this many requests of the kind per second: a burst
/// of a few incidental requests must not decide a mean.
const MIN_REQS_PER_S: f64 = 50.0;

/// Whether `k` agrees; `None` when the interval has too few requests for a mean.
fn agrees(
    k: &str,
    abs: f64,
    theirs: &serde_json::Value,
    ours: &serde_json::Value,
    interval: bool,
) -> Option<bool> {
    let (a, b) = (theirs[k].as_f64().unwrap(), ours[k].as_f64().unwrap());
    if !interval {
        return Some(close(a, b, abs));
    }
    let per_request =
        k.contains("await") || k.contains("areq-sz") || matches!(k, "rrqm" | "wrqm" | "drqm");
    if per_request {
        let rate = format!("{}/s", &k[..1]);
        let few = |d: &serde_json::Value| d[rate.as_str()].as_f64().unwrap_or(0.0) < MIN_REQS_PER_S;
        if few(theirs) || few(ours) {
            return None;
        }
        return Some(close(a, b, abs));
    }
    let burst = if k.starts_with("kB_") && !k.ends_with("/s") {
        2.0 * BURST_KB_PER_S
    } else if k.contains("kB") {
        BURST_KB_PER_S
    } else if k.ends_with("/s") || k == "tps" {
        BURST_REQS_PER_S
    } else {
        0.0
    };
    Some(close(a, b, abs + burst))
}

#[test]
fn iostat_agrees_with_sysstat_under_load() {
    if !live_ready(&["iostat", "losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    // A steady load: 1500 fsync'd lines per second on a loop device over vda, direct
    // reads of the loop device, and discards from fstrim on its filesystem, so that every
    // column family (r, w, d, f) has numbers to compare.
    let lab = Lab::start(&["fsync-logger", "--duration", "30s", "--rate", "1500"]);
    let dev = lab.event.device.clone().expect("the lab's loop device");
    let mnt = lab.event.mountpoint.clone().expect("the lab's mountpoint");
    let _load = Load::start(&dev, &mnt);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (stats, ours) = both(&["-dx"], &["-x"]);
    let stats = &stats;
    drop(lab);
    assert_eq!(ours.len(), 2);
    let mut compared = 0;
    let mut means = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for (report, label) in [(0, "since boot"), (1, "interval")] {
        let their_disks = stats[report]["disk"].as_array().unwrap();
        let our_disks = ours[report]["disk"].as_array().unwrap();
        for td in their_disks {
            let name = td["disk_device"].as_str().unwrap();
            let od = our_disks
                .iter()
                .find(|d| d["disk_device"] == name)
                .unwrap_or_else(|| panic!("{name} missing in ours"));
            for (k, abs) in KEYS {
                let Some(ok) = agrees(k, *abs, td, od, report == 1) else {
                    continue;
                };
                compared += 1;
                if report == 1 {
                    means.insert(*k);
                }
                if !ok {
                    failures.push(format!(
                        "{label} {name} {k}: sysstat {} vs iowhy {}",
                        td[k], od[k]
                    ));
                }
            }
        }
        assert_eq!(
            their_disks.len(),
            our_disks.len(),
            "{label}: same devices shown"
        );
    }
    // The interval report must have seen the load, of every kind.
    let busy = |k: &str, min: f64| {
        stats[1]["disk"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d[k].as_f64().unwrap() > min)
    };
    assert!(
        busy("w/s", 500.0),
        "the writes did not show up: {}",
        stats[1]
    );
    assert!(busy("r/s", 10.0), "the reads did not show up: {}", stats[1]);
    assert!(
        busy("f/s", 100.0),
        "the flushes did not show up: {}",
        stats[1]
    );
    assert!(
        busy("d/s", 0.0),
        "the discards did not show up: {}",
        stats[1]
    );
    // The load makes enough requests of each kind for the per-request means to count.
    for k in ["r_await", "w_await", "f_await", "rareq-sz", "wareq-sz"] {
        assert!(
            means.contains(k),
            "{k} was not compared in the interval: {means:?}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} values differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Reads of the lab's loop device (O_DIRECT, bounded by count) and a trim of its
/// filesystem every half second, for as long as the value lives.
struct Load {
    reader: std::process::Child,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    trimmer: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(dev: &str, mnt: &str) -> Load {
        // dd itself, so that the kill on drop reaches it (killing a `timeout` wrapper
        // leaves its dd reading); the count bounds it: at most the whole device.
        let reader = Command::new("dd")
            .args([&format!("if=/dev/{dev}"), "of=/dev/null", "bs=16k"])
            .args(["iflag=direct", "count=100000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dd");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, m) = (stop.clone(), mnt.to_string());
        let trimmer = std::thread::spawn(move || {
            // ext4 trims a block group once until something is freed in it again:
            // free 4 MiB before each trim so that every trim discards.
            let tmp = std::path::Path::new(&m).join("trim.tmp");
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::write(&tmp, vec![1u8; 4 << 20]);
                let _ = Command::new("sync").arg(&tmp).output();
                let _ = std::fs::remove_file(&tmp);
                let _ = Command::new("fstrim").arg(&m).output();
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        });
        Load {
            reader,
            stop,
            trimmer: Some(trimmer),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.reader.kill();
        let _ = self.reader.wait();
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.trimmer.take() {
            let _ = t.join();
        }
    }
}

/// The basic report (`iostat -d`, no -x) has sysstat's own keys and values, and
/// `-p` lists the same devices as `iostat -p ALL`.
#[test]
fn basic_report_and_device_list_agree_with_sysstat() {
    if !live_ready(&["iostat", "losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["fsync-logger", "--duration", "30s", "--rate", "1500"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (stats, ours) = both(&["-d"], &[]);
    let stats = &stats;
    drop(lab);
    let mut failures = Vec::new();
    for report in 0..2 {
        for td in stats[report]["disk"].as_array().unwrap() {
            let name = td["disk_device"].as_str().unwrap();
            let od = ours[report]["disk"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["disk_device"] == name)
                .unwrap_or_else(|| panic!("{name} missing in ours"));
            let keys: Vec<&String> = td.as_object().unwrap().keys().collect();
            let our_keys: Vec<&String> = od.as_object().unwrap().keys().collect();
            assert_eq!(keys, our_keys, "sysstat's keys, in sysstat's order");
            for (k, abs) in [
                ("tps", 2.0),
                ("kB_read/s", 20.0),
                ("kB_wrtn/s", 20.0),
                ("kB_dscd/s", 20.0),
                ("kB_read", 40.0),
                ("kB_wrtn", 40.0),
                ("kB_dscd", 40.0),
            ] {
                if agrees(k, abs, td, od, report == 1) == Some(false) {
                    failures.push(format!(
                        "report {report} {name} {k}: sysstat {} vs iowhy {}",
                        td[k], od[k]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let names = |out: std::process::Output| -> Vec<String> {
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip_while(|l| !l.starts_with("Device"))
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    let theirs = names(
        Command::new("iostat")
            .args(["-d", "-p", "ALL"])
            .output()
            .unwrap(),
    );
    let ours = names(Command::new(bin()).args(["iostat", "-p"]).output().unwrap());
    assert!(!theirs.is_empty());
    assert_eq!(
        theirs, ours,
        "iostat -p ALL lists every device, idle ones too"
    );
}
