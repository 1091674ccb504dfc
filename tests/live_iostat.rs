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
    ("rrqm/s", 2.0),
    ("wrqm/s", 2.0),
    ("r_await", 0.05),
    ("w_await", 0.05),
    ("f_await", 0.05),
    ("rareq-sz", 1.0),
    ("wareq-sz", 1.0),
    ("aqu-sz", 0.05),
    ("util", 2.0),
];

fn close(a: f64, b: f64, abs: f64) -> bool {
    (a - b).abs() <= abs.max(0.05 * a.abs().max(b.abs()))
}

#[test]
fn iostat_agrees_with_sysstat_under_load() {
    if !live_ready(&["iostat", "losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    // A steady load: 1500 fsync'd lines per second on a loop device over vda.
    let lab = Lab::start(&["fsync-logger", "--duration", "30s", "--rate", "1500"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let theirs = Command::new("iostat")
        .args(["-dx", "-o", "JSON", "2", "2"])
        .env("LC_ALL", "C")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ours = Command::new(bin())
        .args(["iostat", "-x", "-f", "json", "2", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let theirs = theirs.wait_with_output().unwrap();
    let ours = ours.wait_with_output().unwrap();
    drop(lab);
    let t: serde_json::Value = serde_json::from_slice(&theirs.stdout).expect("sysstat JSON");
    let stats = &t["sysstat"]["hosts"][0]["statistics"];
    let ours: Vec<serde_json::Value> = String::from_utf8(ours.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ours.len(), 2);
    let mut compared = 0;
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
                let (a, b) = (td[k].as_f64().unwrap(), od[k].as_f64().unwrap());
                compared += 1;
                if !close(a, b, *abs) {
                    failures.push(format!("{label} {name} {k}: sysstat {a} vs iowhy {b}"));
                }
            }
        }
        assert_eq!(
            their_disks.len(),
            our_disks.len(),
            "{label}: same devices shown"
        );
    }
    // The interval report must have seen the load.
    let busy = stats[1]["disk"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["w/s"].as_f64().unwrap() > 500.0);
    assert!(busy, "the load did not show up: {}", stats[1]);
    assert!(
        failures.is_empty(),
        "{} of {compared} values differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
