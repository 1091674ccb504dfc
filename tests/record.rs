//! The flight recorder through the binary: a fixture recorded, then replayed by
//! `diagnose --at`/`--file` (the same findings as the fixture's own diagnosis; a golden),
//! `--at` on the other commands, `record ls`/`export` (read on a root with nothing of this
//! machine), times under two time zones across DST and midnight, and `kill -9` of a live
//! recorder.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Reap, bin, fixture, golden, lab_event, ok, wire};
use iowhy::wire::diagnose::Report;
use iowhy::wire::record::{Incident, Listing};

/// Run with TZ set (and the rest of the environment).
fn run_tz(tz: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .env("TZ", tz)
        .args(args)
        .output()
        .expect("run iowhy")
}

fn ok_tz(tz: &str, args: &[&str]) -> String {
    let out = run_tz(tz, args);
    assert!(
        out.status.success(),
        "iowhy {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The fsync-logger fixture recorded into a fresh store.
fn recorded(name: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    let fx = fixture(name);
    ok(&[
        "--fixture",
        fx.to_str().unwrap(),
        "record",
        "--dir",
        store.to_str().unwrap(),
    ]);
    (d, store)
}

fn only_segment(store: &Path) -> PathBuf {
    let v: Vec<PathBuf> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "iowhyrec"))
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v[0].clone()
}

fn key(r: &Report) -> Vec<(String, Option<u32>, Option<String>)> {
    let mut v: Vec<_> = r
        .findings
        .iter()
        .map(|f| {
            (
                f.kind.as_str().to_string(),
                f.subject.pid,
                f.subject.path.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_recorded_fixture_replays_to_the_fixtures_own_diagnosis() {
    let (_d, store) = recorded("fsync-logger");
    let seg = only_segment(&store);
    let text = ok_tz(
        "UTC",
        &[
            "diagnose",
            "--file",
            seg.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    golden("fsync-logger.replay.json", &text);
    let replayed: Report = wire(&text);
    let fx = fixture("fsync-logger");
    let live: Report = wire(&ok(&[
        "--fixture",
        fx.to_str().unwrap(),
        "diagnose",
        "--format",
        "json",
    ]));
    assert_eq!(key(&replayed), key(&live));
    let lab = lab_event("fsync-logger");
    assert!(
        replayed
            .findings
            .iter()
            .any(|f| f.subject.pid == Some(lab.pids[0]))
    );
    let r = replayed.replay.as_ref().expect("a replay object");
    assert_eq!((r.intervals, r.traced_intervals), (1, 0));
    assert!(
        replayed
            .blind_spots
            .iter()
            .any(|b| b.what.contains("without trace data"))
    );
    // The same through the store and a time: --at the fixture's second time point.
    let at = r.worst_at.clone().unwrap();
    let via_store: Report = wire(&ok_tz(
        "UTC",
        &[
            "diagnose",
            "--store",
            store.to_str().unwrap(),
            "--at",
            &at,
            "--format",
            "json",
        ],
    ));
    assert_eq!(key(&via_store), key(&live));
    // Text: the timeline, local time with UTC beside.
    let t = ok_tz(
        "America/New_York",
        &["diagnose", "--file", seg.to_str().unwrap()],
    );
    assert!(t.contains("Timeline\n--------\n"), "{t}");
    assert!(
        t.contains("2026-11-24 04:39:2") && t.contains(" EST (09:39:2"),
        "{t}"
    );
    // A time with nothing recorded says what the recording covers; exit 2.
    let out = run_tz(
        "UTC",
        &[
            "diagnose",
            "--store",
            store.to_str().unwrap(),
            "--at",
            "2020-01-01T00:00:00Z",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("it covers 2026-11-24 09:39:20 UTC"), "{err}");
}

#[test]
fn the_other_commands_read_a_recording_with_at() {
    let (_d, store) = recorded("fsync-logger");
    let s = store.to_str().unwrap();
    let lab = lab_event("fsync-logger");
    let pid = lab.pids[0].to_string();
    let at = "2026-11-24T09:39:20Z";
    let io = ok(&[
        "iostat", "-x", "--store", s, "--at", at, "1", "1", "--format", "json",
    ]);
    assert!(io.contains("\"loop0\""), "{io}");
    let top = ok(&["top", "-b", "--store", s, "--at", at]);
    assert!(top.contains(&pid), "{top}");
    let files = ok(&["files", &pid, "--store", s, "--at", at]);
    assert!(files.contains(&lab.paths[0]), "{files}");
    let space = ok(&["space", "--store", s, "--at", at]);
    assert!(
        space.contains(lab.mountpoint.as_deref().unwrap()),
        "{space}"
    );
    ok(&["containers", "--store", s, "--at", at]);
    // space PATH walks a tree a recording does not hold: refused with one line.
    let out = common::iowhy(&["space", "/", "--store", s, "--at", at]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ls_and_an_export_read_on_a_root_with_nothing_of_this_machine() {
    let (d, store) = recorded("fsync-logger");
    let s = store.to_str().unwrap();
    let l: Listing = wire(&ok(&["record", "ls", "--dir", s, "--format", "json"]));
    assert_eq!((l.samples, l.segments.len()), (2, 1));
    assert!(
        l.gaps.is_empty() && l.reboots.is_empty() && l.notes.is_empty(),
        "{l:?}"
    );
    assert_eq!(l.first.as_deref(), Some("2026-11-24T09:39:20Z"));
    let text = ok_tz("UTC", &["record", "ls", "--dir", s]);
    assert!(text.contains("2 samples"), "{text}");

    let bundle = d.path().join("incident.iowhyrec");
    let out = ok(&[
        "record",
        "export",
        "--dir",
        s,
        "--from",
        "2026-11-24T09:39:00Z",
        "--to",
        "2026-11-24T09:40:00Z",
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.starts_with("2 samples written"), "{out}");
    // Another machine: roots that hold nothing at all.
    let empty = tempfile::tempdir().unwrap();
    let e = empty.path().to_str().unwrap();
    let r: Report = wire(&ok(&[
        "--proc-root",
        e,
        "--sys-root",
        e,
        "--root",
        e,
        "diagnose",
        "--file",
        bundle.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == "fsync_storm" || f.kind == "top_io_writer")
    );
    assert_eq!(r.host, "vm");
    // An export of a range with nothing in it is refused.
    let out = common::iowhy(&[
        "record",
        "export",
        "--dir",
        s,
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        "2020-01-02T00:00:00Z",
        "-o",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// `record when` under a zone, "now" fixed: the first line (local, UTC beside).
fn when(tz: &str, now: &str, t: &str) -> Result<String, String> {
    let out = Command::new(bin())
        .env("TZ", tz)
        .env("IOWHY_NOW", now)
        .args(["record", "when", t])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap()
            .to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn times_read_the_same_under_utc_and_new_york_across_dst_and_midnight() {
    let ny = "America/New_York";
    // DST starts in New York on 2026-03-08 at 02:00 EST (clocks go to 03:00 EDT).
    let noon = "2026-03-08T12:00:00Z";
    assert_eq!(
        when(ny, noon, "03:00").unwrap(),
        "2026-03-08 03:00:00 EDT (07:00:00Z)"
    );
    assert_eq!(
        when(ny, noon, "01:30").unwrap(),
        "2026-03-08 01:30:00 EST (06:30:00Z)"
    );
    let e = when(ny, noon, "02:30").unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
    assert_eq!(
        when("UTC", noon, "02:30").unwrap(),
        "2026-03-08 02:30:00 UTC (02:30:00Z)"
    );
    // Later than now today: the last such time is yesterday's.
    assert_eq!(
        when(ny, noon, "10:00").unwrap(),
        "2026-03-07 10:00:00 EST (15:00:00Z)"
    );
    assert_eq!(
        when(ny, noon, "yesterday 03:00").unwrap(),
        "2026-03-07 03:00:00 EST (08:00:00Z)"
    );
    assert_eq!(
        when(ny, noon, "10m ago").unwrap(),
        "2026-03-08 07:50:00 EDT (11:50:00Z)"
    );
    assert_eq!(
        when("UTC", noon, "10m ago").unwrap(),
        "2026-03-08 11:50:00 UTC (11:50:00Z)"
    );
    // Around midnight: 04:30Z is 23:30 the day before in New York.
    let late = "2026-03-08T04:30:00Z";
    assert_eq!(
        when(ny, late, "23:00").unwrap(),
        "2026-03-07 23:00:00 EST (2026-03-08T04:00:00Z)"
    );
    assert_eq!(
        when(ny, late, "23:45").unwrap(),
        "2026-03-06 23:45:00 EST (2026-03-07T04:45:00Z)"
    );
    assert_eq!(
        when(ny, late, "00:15").unwrap(),
        "2026-03-07 00:15:00 EST (05:15:00Z)"
    );
    assert_eq!(
        when("UTC", late, "23:00").unwrap(),
        "2026-03-07 23:00:00 UTC (23:00:00Z)"
    );
    assert_eq!(
        when("UTC", late, "00:15").unwrap(),
        "2026-03-08 00:15:00 UTC (00:15:00Z)"
    );
    // DST ends on 2026-11-01: 01:30 happens twice, an offset says which.
    let nov = "2026-11-01T12:00:00Z";
    let e = when(ny, nov, "01:30").unwrap_err();
    assert!(e.contains("happens twice"), "{e}");
    assert_eq!(
        when(ny, nov, "2026-11-01T01:30:00-05:00").unwrap(),
        "2026-11-01 01:30:00 EST (06:30:00Z)"
    );
    assert_eq!(
        when(ny, nov, "2026-11-01T01:30:00-04:00").unwrap(),
        "2026-11-01 01:30:00 EDT (05:30:00Z)"
    );
    // Absolute times mean one instant in every zone.
    for (tz, want) in [
        ("UTC", "2026-03-08 03:00:00 UTC (03:00:00Z)"),
        (ny, "2026-03-07 22:00:00 EST (2026-03-08T03:00:00Z)"),
    ] {
        assert_eq!(when(tz, noon, "2026-03-08T03:00:00Z").unwrap(), want);
        assert_eq!(when(tz, noon, "1772938800").unwrap(), want);
    }
}

fn samples(store: &Path) -> u64 {
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

#[test]
fn kill_9_of_a_live_recorder_loses_at_most_the_sample_being_written() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("s");
    let s = store.to_str().unwrap();
    let start = || {
        Reap(
            Command::new(bin())
                .args([
                    "record",
                    "--dir",
                    s,
                    "--interval",
                    "500ms",
                    "--tracing",
                    "off",
                ])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let mut rec = start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(store.is_dir() && samples(&store) >= 4) {
        assert!(
            std::time::Instant::now() < deadline,
            "the recorder wrote no samples"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    rec.kill().unwrap();
    rec.wait().unwrap();
    let n = samples(&store);
    assert!(n >= 4);
    // A second recorder starts its own file: it never appends after a torn tail.
    let mut rec = start();
    while samples(&store) < n + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the second recorder wrote nothing"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    rec.kill().unwrap();
    rec.wait().unwrap();
    let l: Listing = wire(&ok(&["record", "ls", "--dir", s, "--format", "json"]));
    assert_eq!(l.segments.len(), 2, "{l:?}");
    // Cut the first file in the middle of a record: the rest still reads, with a note.
    let first = store.join(&l.segments[0].file);
    let len = std::fs::metadata(&first).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let l2: Listing = wire(&ok(&["record", "ls", "--dir", s, "--format", "json"]));
    assert_eq!(l2.samples, l.samples - 1);
    assert!(
        l2.notes.iter().any(|n| n.contains("torn")),
        "{:?}",
        l2.notes
    );
    let last = l.segments[1].last.clone().unwrap();
    let r: Report = wire(&ok(&[
        "diagnose", "--store", s, "--at", &last, "--window", "10s", "--format", "json",
    ]));
    assert!(r.replay.unwrap().intervals >= 1);
}

#[test]
fn a_recorded_stall_is_an_incident_with_its_note() {
    let (_d, store) = recorded("fsync-logger");
    let s = store.to_str().unwrap();
    let all: Vec<Incident> = wire(&ok(&["incidents", "--dir", s, "--format", "json"]));
    assert_eq!(all.len(), 1, "{all:?}");
    let i = &all[0];
    let lab = lab_event("fsync-logger");
    assert_eq!(i.culprit.as_ref().and_then(|c| c.pid), Some(lab.pids[0]));
    assert_eq!(i.started_at, "2026-11-24T09:39:20Z");
    assert!(
        i.text.is_empty() && i.markdown.is_empty(),
        "the list leaves the notes out"
    );
    let list = ok_tz("UTC", &["incidents", "--dir", s]);
    assert!(
        list.starts_with(&i.id) && list.contains("CRITICAL"),
        "{list}"
    );
    let md = ok(&[
        "incidents",
        "show",
        &i.id,
        "--dir",
        s,
        "--format",
        "markdown",
    ]);
    assert!(md.contains(&lab.paths[0]), "{md}");
    let one: Incident = wire(&ok(&[
        "incidents",
        "show",
        &i.id,
        "--dir",
        s,
        "--format",
        "json",
    ]));
    assert!(!one.text.is_empty());
    let out = common::iowhy(&["incidents", "show", "nope", "--dir", s]);
    assert_eq!(out.status.code(), Some(2));
    // --no-incidents records without them.
    let d2 = tempfile::tempdir().unwrap();
    let fx = fixture("fsync-logger");
    ok(&[
        "--fixture",
        fx.to_str().unwrap(),
        "record",
        "--no-incidents",
        "--dir",
        d2.path().to_str().unwrap(),
    ]);
    assert_eq!(
        ok(&["incidents", "--dir", d2.path().to_str().unwrap()]),
        "no incidents recorded\n"
    );
}
