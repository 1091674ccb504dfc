//! Live (root): the flight recorder through a real incident. `iowhy record` runs while
//! the fsync-logger lab stalls its loop device, the lab ends, and afterwards
//! `diagnose --at` a time inside the incident finds the fsync storm with the lab's pid,
//! file and mount, and the timeline says it ended. `serve --record` keeps a recording
//! while it serves.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::prom::http;
use common::{Lab, Reap, bin, live_lock, live_ready, ok, wire};
use iowhy::wire::diagnose::Report;
use iowhy::wire::record::Listing;

fn samples(store: &Path) -> u64 {
    if !store.is_dir() {
        return 0;
    }
    let l: Listing = wire(&ok(&[
        "record",
        "ls",
        "--dir",
        store.to_str().unwrap(),
        "--format",
        "json",
    ]));
    l.samples
}

/// Stop a recorder as systemd would (SIGTERM): it writes what is queued and closes.
fn stop(mut r: Reap) {
    let pid = rustix::process::Pid::from_raw(r.id() as i32).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let st = r.wait().unwrap();
    assert!(st.success(), "the recorder exited with {st}");
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn diagnose_at_a_time_inside_a_recorded_fsync_storm_finds_it() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("rec");
    let s = store.to_str().unwrap().to_string();
    // At full speed, as the fixture was captured: the loop device saturates.
    let lab = Lab::start(&["fsync-logger", "--duration", "60s", "--rate", "0"]);
    let (pid, path, mnt) = (
        lab.event.pids[0],
        lab.event.paths[0].clone(),
        lab.event.mountpoint.clone(),
    );
    let rec = Reap(
        Command::new(bin())
            .args([
                "record",
                "--dir",
                &s,
                "--interval",
                "2s",
                "--incident-psi-full",
                "2%",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // ~15 s of the storm, then the lab ends and the recorder sees it quiet.
    std::thread::sleep(Duration::from_secs(8));
    let inside = now_s();
    std::thread::sleep(Duration::from_secs(7));
    drop(lab.stop());
    std::thread::sleep(Duration::from_secs(6));
    stop(rec);
    assert!(samples(&store) >= 8, "{} samples", samples(&store));

    let at = inside.to_string();
    let r: Report = wire(&ok(&[
        "diagnose", "--store", &s, "--at", &at, "--window", "40s", "--format", "json",
    ]));
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == "fsync_storm" && f.subject.pid == Some(pid))
        .unwrap_or_else(|| panic!("no fsync_storm for {pid}: {:#?}", r.findings));
    assert_eq!(f.subject.path.as_deref(), Some(path.as_str()));
    assert_eq!(f.subject.mountpoint, mnt);
    assert_eq!(r.capabilities.tracing, "perf");
    let rp = r.replay.expect("replay");
    assert!(rp.traced_intervals >= 1 && rp.intervals >= rp.traced_intervals);
    // The timeline: the storm began and ended inside the window (the lab stopped).
    let t = rp
        .timeline
        .iter()
        .find(|t| t.kind == "fsync_storm" && t.subject.pid == Some(pid))
        .expect("fsync_storm in the timeline");
    assert!(t.intervals >= 3, "{t:?}");
    assert!(t.ended_at < rp.to, "{t:?} should end before {}", rp.to);
    // Caught as it happened: an incident (the PSI trigger, or the storm's critical
    // findings) whose note names the writer's file, with 1 s samples while it lasted.
    // (Its culprit is the first finding's process: on a loaded machine a build may be
    // named first, so the note is what is checked.)
    let incidents: Vec<iowhy::wire::record::Incident> =
        wire(&ok(&["incidents", "--dir", &s, "--format", "json"]));
    let notes: Vec<iowhy::wire::record::Incident> = incidents
        .iter()
        .map(|i| {
            wire(&ok(&[
                "incidents",
                "show",
                &i.id,
                "--dir",
                &s,
                "--format",
                "json",
            ]))
        })
        .collect();
    let i = notes
        .iter()
        .find(|i| i.text.contains(&path))
        .unwrap_or_else(|| panic!("no incident's note names {path}: {incidents:#?}"));
    assert!(i.windows >= 3, "{i:?}");
}

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[test]
fn serve_record_keeps_a_recording_while_it_serves() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("rec");
    let addr = free_addr();
    let serve = Reap(
        Command::new(bin())
            .args(["serve", "--interval", "1s", "--web.listen-address", &addr])
            .args([
                "--no-collector.tracing",
                "--record",
                store.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let end = Instant::now() + Duration::from_secs(30);
    while samples(&store) < 3 {
        assert!(Instant::now() < end, "serve --record wrote no samples");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, body) = http(&addr, "GET", "/diagnosis", "").unwrap();
    assert_eq!(code, 200, "{body}");
    stop(serve);
    let r: Report = wire(&ok(&[
        "diagnose",
        "--store",
        store.to_str().unwrap(),
        "--at",
        "now",
        "--window",
        "1m",
        "--format",
        "json",
    ]));
    assert!(r.replay.unwrap().intervals >= 2);
}
