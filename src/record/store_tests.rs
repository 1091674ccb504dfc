use super::*;
use crate::record::segment::Encoder;

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_772_938_800_000; // 2026-03-08T03:00:00Z

#[test]
fn segment_names_sort_by_time_and_give_it_back() {
    let n = segment_name(T0 + 250, Some("1a2b3c4d-aaaa"), 0);
    assert_eq!(n, "iowhy-20260308T030000.250Z-1a2b3c4d.iowhyrec");
    assert_eq!(start_of_name(&n), Some(T0 + 250));
    assert_eq!(start_of_name(&segment_name(T0, None, 2)), Some(T0));
    assert!(segment_name(T0, None, 0) < segment_name(T0 + HOUR, None, 0));
    assert_eq!(start_of_name("notes.txt"), None);
}

fn write_segment(dir: &Path, start: i64, samples: &[(i64, u64, &str)], boot: &str) -> PathBuf {
    let h = segment::Header {
        format_version: segment::FORMAT_VERSION,
        hostname: "h".into(),
        boot_id: Some(boot.into()),
        started_unix_ms: start,
        interval_s: 10.0,
        zstd_level: 3,
        key_every: 32,
        ..Default::default()
    };
    let mut buf = Encoder::file_header(&h).unwrap();
    let mut enc = Encoder::new(3, 32);
    for (t, up, host) in samples {
        let s = crate::snapshot::Snapshot {
            wall_unix_ms: *t,
            uptime_s: *up as f64 / 100.0,
            hostname: host.to_string(),
            ..Default::default()
        };
        let j = serde_json::to_vec(&Sample {
            snapshot: s,
            trace: None,
        })
        .unwrap();
        buf.extend(enc.sample(*t, *up, j).unwrap());
    }
    let p = dir.join(segment_name(start, Some(boot), 0));
    std::fs::write(&p, buf).unwrap();
    p
}

/// Hourly segments of 1 MB each, made without writing a megabyte.
fn fake_store(dir: &Path, hours: i64) -> Vec<PathBuf> {
    (0..hours)
        .map(|h| {
            let p = dir.join(segment_name(T0 + h * HOUR, Some("b"), 0));
            let f = std::fs::File::create(&p).unwrap();
            f.set_len(1 << 20).unwrap();
            p
        })
        .collect()
}

#[test]
fn retention_by_age_removes_whole_files_older_than_it_with_a_fake_clock() {
    let d = tempfile::tempdir().unwrap();
    let segs = fake_store(d.path(), 10);
    let r = Retention {
        max_age: Some(Duration::from_secs(3 * 3600)),
        max_bytes: None,
        min_free_pct: None,
    };
    // At the start of hour 10, segments ending before hour 7 are too old: hours 0..6.
    let now = T0 + 10 * HOUR;
    let gone = enforce(d.path(), &r, now, None, &mut || None).unwrap();
    assert_eq!(gone, segs[..6].to_vec());
    assert_eq!(list(d.path()).unwrap().len(), 4);
    // Nothing more on a second pass, and never the newest (current) one, however old.
    assert!(
        enforce(d.path(), &r, now, None, &mut || None)
            .unwrap()
            .is_empty()
    );
    let gone = enforce(d.path(), &r, now + 1000 * HOUR, None, &mut || None).unwrap();
    assert_eq!(gone.len(), 3);
    assert_eq!(list(d.path()).unwrap()[0].path, segs[9]);
}

#[test]
fn retention_by_size_and_by_free_space_removes_the_oldest_first() {
    let d = tempfile::tempdir().unwrap();
    let segs = fake_store(d.path(), 6);
    let r = Retention {
        max_age: None,
        max_bytes: Some(3 << 20),
        min_free_pct: None,
    };
    let gone = enforce(d.path(), &r, T0, None, &mut || None).unwrap();
    assert_eq!(gone, segs[..3].to_vec());
    // Free space: the fake filesystem gains 10% per segment removed; 5% free, want 25%.
    let mut free = 5.0;
    let r = Retention {
        max_age: None,
        max_bytes: None,
        min_free_pct: Some(25.0),
    };
    let mut fs = || {
        let f = free;
        free += 10.0;
        Some(f)
    };
    let gone = enforce(d.path(), &r, T0, None, &mut fs).unwrap();
    assert_eq!(gone, segs[3..5].to_vec());
    // The file being written is never removed, even when the disk stays full.
    let d2 = tempfile::tempdir().unwrap();
    let segs = fake_store(d2.path(), 3);
    let gone = enforce(d2.path(), &r, T0, Some(&segs[1]), &mut || Some(0.0)).unwrap();
    assert_eq!(gone, segs[..1].to_vec());
}

#[test]
fn a_range_reads_the_sample_before_it_across_files_and_skips_a_bad_file() {
    let d = tempfile::tempdir().unwrap();
    let a = write_segment(
        d.path(),
        T0,
        &[(T0, 100, "a"), (T0 + 10_000, 1_100, "b")],
        "b1",
    );
    write_segment(
        d.path(),
        T0 + HOUR,
        &[
            (T0 + HOUR, 360_100, "c"),
            (T0 + HOUR + 10_000, 361_100, "d"),
        ],
        "b1",
    );
    // A third file that is not a recording at all.
    std::fs::write(
        d.path().join(segment_name(T0 + 2 * HOUR, None, 0)),
        b"garbage",
    )
    .unwrap();
    let src = Source::Dir(d.path().to_path_buf());
    let l = load(&src, T0 + HOUR, T0 + 2 * HOUR).unwrap();
    let hosts: Vec<&str> = l
        .entries
        .iter()
        .map(|e| e.sample.snapshot.hostname.as_str())
        .collect();
    assert_eq!(hosts, ["b", "c", "d"]);
    assert_eq!(l.entries[0].boot_id.as_deref(), Some("b1"));
    assert!(
        l.notes.iter().any(|n| n.contains("not an iowhy recording")),
        "{:?}",
        l.notes
    );
    // One file asked for by name that is not a recording is an error.
    let bad = d.path().join("x.iowhyrec");
    std::fs::write(&bad, b"garbage").unwrap();
    assert!(load(&Source::File(bad), 0, i64::MAX).is_err());
    // The listing: 4 samples, a gap of an hour between the files, no reboot.
    let ls = listing(&src, "d").unwrap();
    assert_eq!(ls.samples, 4);
    assert_eq!(ls.gaps.len(), 1, "{:?}", ls.gaps);
    assert!(ls.reboots.is_empty());
    assert_eq!(
        ls.segments[0].file,
        a.file_name().unwrap().to_string_lossy()
    );
}

#[test]
fn an_export_holds_exactly_the_range_and_reads_back_elsewhere() {
    let d = tempfile::tempdir().unwrap();
    write_segment(
        d.path(),
        T0,
        &[
            (T0, 100, "a"),
            (T0 + 10_000, 1_100, "b"),
            (T0 + 20_000, 2_100, "c"),
        ],
        "b1",
    );
    // A reboot: a new boot id, uptime from zero.
    write_segment(
        d.path(),
        T0 + HOUR,
        &[(T0 + HOUR, 500, "d"), (T0 + HOUR + 10_000, 1_500, "e")],
        "b2",
    );
    let out = d.path().join("bundle.iowhyrec");
    let src = Source::Dir(d.path().to_path_buf());
    let n = export(&src, T0 + 10_000, T0 + HOUR, &out).unwrap();
    assert_eq!(n, 3);
    let l = load(&Source::File(out.clone()), i64::MIN, i64::MAX).unwrap();
    let got: Vec<(&str, Option<&str>)> = l
        .entries
        .iter()
        .map(|e| (e.sample.snapshot.hostname.as_str(), e.boot_id.as_deref()))
        .collect();
    assert_eq!(
        got,
        [("b", Some("b1")), ("c", Some("b1")), ("d", Some("b2"))]
    );
    let ls = listing(&Source::File(out), "bundle").unwrap();
    assert_eq!(ls.reboots.len(), 1, "{ls:?}");
}

#[test]
fn an_empty_store_or_a_file_with_only_its_header_lists_as_empty() {
    let d = tempfile::tempdir().unwrap();
    let src = Source::Dir(d.path().to_path_buf());
    let l = listing(&src, "d").unwrap();
    assert_eq!((l.samples, l.segments.len()), (0, 0));
    write_segment(d.path(), T0, &[], "b");
    let l = listing(&src, "d").unwrap();
    assert_eq!((l.samples, l.segments.len()), (0, 1));
    assert!(l.bytes_per_day.is_nan() && l.first.is_none());
}
