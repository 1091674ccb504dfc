use super::*;
use crate::record::store::Entry;
use crate::record::{Gap, Sample};

fn entry(s: crate::snapshot::Snapshot) -> Entry {
    Entry {
        wall_unix_ms: s.wall_unix_ms,
        uptime_cs: (s.uptime_s * 100.0) as u64,
        boot_id: Some("b".into()),
        sample: Sample {
            snapshot: s,
            trace: None,
        },
    }
}

/// The fsync-logger fixture's two snapshots as recorded samples, then `idle` more samples
/// 10 s apart in which nothing moved.
fn entries(idle: usize) -> Vec<Entry> {
    let iv = crate::findings::fixture_interval("fsync-logger");
    let mut v = vec![entry(iv.before), entry(iv.after.clone())];
    for k in 1..=idle {
        let mut s = iv.after.clone();
        s.uptime_s += 10.0 * k as f64;
        s.wall_unix_ms += 10_000 * k as i64;
        v.push(entry(s));
    }
    v
}

fn loaded(e: Vec<Entry>, gaps: Vec<Gap>) -> Loaded {
    Loaded {
        entries: e,
        gaps,
        ..Default::default()
    }
}

#[test]
fn every_interval_is_replayed_and_the_timeline_spans_the_findings() {
    let e = entries(2);
    let (from, end, to) = (e[0].wall_unix_ms, e[1].wall_unix_ms, e[3].wall_unix_ms);
    let out = replay(loaded(e, Vec::new()), from, from, to);
    assert_eq!(out.replay.intervals, 3);
    assert_eq!(out.replay.traced_intervals, 0);
    let d = out.worst.expect("a worst interval");
    assert!(
        d.findings
            .iter()
            .any(|f| f.kind == findings::Kind::TopIoWriter)
    );
    // The writer is found in the first interval only: it stopped after.
    let t = out
        .replay
        .timeline
        .iter()
        .find(|t| t.kind == findings::Kind::TopIoWriter)
        .unwrap();
    assert_eq!(t.intervals, 1);
    assert_eq!(t.began_at, rfc3339(from));
    assert_eq!(t.ended_at, rfc3339(end));
    assert_eq!(out.replay.worst_at, Some(rfc3339(end)));
    assert!(
        d.blind_spots
            .iter()
            .any(|b| b.what.contains("without trace data")),
        "{:?}",
        d.blind_spots
    );
}

#[test]
fn no_interval_spans_a_reboot_or_dropped_samples() {
    let mut e = entries(2);
    for x in &mut e[2..] {
        x.boot_id = Some("other".into());
    }
    let out = replay(loaded(e, Vec::new()), 0, 0, i64::MAX);
    assert_eq!((out.replay.intervals, out.replay.reboots), (2, 1));
    assert!(
        out.replay.notes[0].starts_with("reboot between"),
        "{:?}",
        out.replay.notes
    );

    let e = entries(0);
    let g = Gap {
        dropped: 2,
        first_unix_ms: e[0].wall_unix_ms + 1,
        last_unix_ms: e[1].wall_unix_ms - 1,
        reason: "full".into(),
    };
    let out = replay(loaded(e, vec![g]), 0, 0, i64::MAX);
    assert_eq!(out.replay.intervals, 0);
    assert_eq!(out.replay.dropped_samples, 2);
    assert!(out.worst.is_none());

    // Uptime going down without a boot id is a reboot too.
    let mut e = entries(0);
    for x in &mut e {
        x.boot_id = None;
    }
    e[1].uptime_cs = 100;
    assert_eq!(
        replay(loaded(e, Vec::new()), 0, 0, i64::MAX).replay.reboots,
        1
    );

    // A disk counter that went down (the same boot): that pair is left out too.
    let mut e = entries(1);
    e[2].sample.snapshot.disks[0].wr_ios = 0;
    let out = replay(loaded(e, Vec::new()), 0, 0, i64::MAX);
    assert_eq!(out.replay.intervals, 1);
    assert!(
        out.replay
            .notes
            .iter()
            .any(|n| n.starts_with("disk counters went down"))
    );
}
