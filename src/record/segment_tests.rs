use super::*;
use proptest::prelude::*;

use crate::record::Sample;

fn header() -> Header {
    Header {
        format_version: FORMAT_VERSION,
        iowhy_version: "test".into(),
        hostname: "h".into(),
        boot_id: Some("b0".into()),
        kernel: "k".into(),
        started_unix_ms: 1_000,
        interval_s: 10.0,
        tz: Some("UTC".into()),
        utc_offset_s: 0,
        zstd_level: 3,
        key_every: 4,
    }
}

/// Samples that change a little each time, like counters do: random values, a few of
/// which move from one sample to the next.
fn samples(n: usize) -> Vec<Vec<u8>> {
    let rnd = |x: u64| {
        x.wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
            >> 20
    };
    (0..n)
        .map(|i| {
            let counters: Vec<u64> = (0..300u64)
                .map(|k| {
                    rnd(k)
                        + if k % 20 == 0 {
                            i as u64 * rnd(k + 7) % 1000
                        } else {
                            0
                        }
                })
                .collect();
            serde_json::to_vec(&serde_json::json!({"i": i, "counters": counters})).unwrap()
        })
        .collect()
}

/// A file, where each sample record starts and ends, and the samples' JSON.
type Made = (Vec<u8>, Vec<(usize, usize)>, Vec<Vec<u8>>);

/// A file of `n` samples (a gap record after the third) and where each sample record
/// starts and ends.
fn file(n: usize, key_every: u32) -> Made {
    let mut buf = Encoder::file_header(&header()).unwrap();
    let mut enc = Encoder::new(3, key_every);
    let mut spans = Vec::new();
    let js = samples(n);
    for (i, j) in js.iter().enumerate() {
        if i == 3 {
            buf.extend(enc.gap(
                3_500,
                350,
                br#"{"dropped":1,"first_unix_ms":3500,"last_unix_ms":3500,"reason":"r"}"#,
            ));
        }
        let start = buf.len();
        buf.extend(
            enc.sample(i as i64 * 1_000, i as u64 * 100, j.clone())
                .unwrap(),
        );
        spans.push((start, buf.len()));
    }
    (buf, spans, js)
}

fn samples_of(r: &Read) -> Vec<(i64, Vec<u8>)> {
    r.records
        .iter()
        .filter(|(_, d)| d.kind != Kind::Gap)
        .map(|(_, d)| (d.wall_unix_ms, d.json.clone()))
        .collect()
}

#[test]
fn samples_read_back_as_written_and_deltas_are_smaller_than_keys() {
    let (buf, spans, js) = file(10, 4);
    let r = read(&buf).unwrap();
    assert_eq!(r.headers, vec![Some(header())]);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    let got = samples_of(&r);
    assert_eq!(got.len(), 10);
    for (i, (t, j)) in got.iter().enumerate() {
        assert_eq!((*t, j), (i as i64 * 1_000, &js[i]));
    }
    assert!(r.records.iter().any(|(_, d)| d.kind == Kind::Gap));
    // Record 0 is a key, 1 a delta against it: much smaller.
    let len = |i: usize| spans[i].1 - spans[i].0;
    assert!(len(1) * 3 < len(0), "key {} delta {}", len(0), len(1));
    let kinds: Vec<Kind> = r
        .records
        .iter()
        .map(|(_, d)| d.kind)
        .filter(|k| *k != Kind::Gap)
        .collect();
    assert_eq!(
        kinds[..5],
        [Kind::Key, Kind::Delta, Kind::Delta, Kind::Delta, Kind::Key]
    );
}

#[test]
fn a_real_snapshot_with_trace_round_trips_equal() {
    let iv = crate::findings::fixture_interval("fsync-logger");
    let mut t = crate::trace::TraceData::new(crate::trace::Layer::Perf);
    let mut f = crate::trace::model::FileTrace::default();
    f.record_write(crate::trace::model::WriteKind::Write, 40, 1_000);
    f.syncs
        .entry(crate::trace::model::SyncKind::Fsync)
        .or_default()
        .record(2_000_000);
    t.procs
        .entry(7)
        .or_default()
        .files
        .insert((3, "/x".into()), f);
    let s = crate::record::SampleRef {
        snapshot: &iv.after,
        trace: Some(&t),
    };
    let json = serde_json::to_vec(&s).unwrap();
    let mut buf = Encoder::file_header(&header()).unwrap();
    let mut enc = Encoder::new(3, 32);
    buf.extend(enc.sample(1, 2, json.clone()).unwrap());
    buf.extend(enc.sample(3, 4, json.clone()).unwrap());
    let r = read(&buf).unwrap();
    let back: Sample = serde_json::from_slice(&r.records[1].1.json).unwrap();
    // Equal: the same JSON again, and the histogram's percentiles survive.
    assert_eq!(
        serde_json::to_vec(&crate::record::SampleRef {
            snapshot: &back.snapshot,
            trace: back.trace.as_ref()
        })
        .unwrap(),
        json
    );
    let tr = back.trace.unwrap();
    let h =
        &tr.procs[&7].files[&(3, "/x".to_string())].syncs[&crate::trace::model::SyncKind::Fsync];
    assert_eq!(
        h,
        &t.procs[&7].files[&(3, "/x".to_string())].syncs[&crate::trace::model::SyncKind::Fsync]
    );
    assert_eq!(back.snapshot.processes.len(), iv.after.processes.len());
}

#[test]
fn not_a_recording_is_an_error_and_a_newer_format_says_upgrade() {
    assert!(read(b"hello world, not a recording").is_err());
    let mut buf = Encoder::file_header(&header()).unwrap();
    buf[8] = 99;
    let e = read(&buf).unwrap_err().to_string();
    assert!(e.contains("upgrade iowhy"), "{e}");
}

#[test]
fn parts_put_end_to_end_read_as_one_file() {
    let (a, _, ja) = file(3, 4);
    let (b, _, jb) = file(2, 4);
    let mut both = a.clone();
    both.extend(&b);
    let r = read(&both).unwrap();
    assert_eq!(r.headers.len(), 2);
    let got: Vec<Vec<u8>> = samples_of(&r).into_iter().map(|x| x.1).collect();
    assert_eq!(got, [ja, jb].concat());
    assert_eq!(r.records.last().unwrap().0, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A file cut anywhere reads back exactly the samples wholly before the cut.
    #[test]
    fn truncation_keeps_exactly_the_records_before_it(cut in 0usize..100_000) {
        let (buf, spans, js) = file(8, 4);
        let cut = cut % (buf.len() + 1);
        let r = read(&buf[..cut]).unwrap();
        let want: Vec<(i64, Vec<u8>)> = spans
            .iter()
            .enumerate()
            .filter(|(_, s)| s.1 <= cut)
            .map(|(i, _)| (i as i64 * 1_000, js[i].clone()))
            .collect();
        prop_assert_eq!(samples_of(&r), want);
    }

    /// A flipped byte loses the record it hits (and the deltas after it until the next
    /// key); everything before comes back, and whatever comes back is what was written.
    #[test]
    fn a_flipped_byte_loses_only_from_its_record_to_the_next_key(pos in 0usize..100_000, bit in 0u8..8) {
        let (mut buf, spans, js) = file(12, 4);
        let hdr_end = spans[0].0;
        let pos = pos % buf.len();
        buf[pos] ^= 1 << bit;
        let r = match read(&buf) {
            Ok(r) => r,
            // The file magic itself: not a recording any more.
            Err(_) => { prop_assert!(pos < 10); return Ok(()); }
        };
        let got = samples_of(&r);
        for (t, j) in &got {
            prop_assert_eq!(j, &js[(*t / 1_000) as usize]);
        }
        let times: Vec<i64> = got.iter().map(|g| g.0).collect();
        for (i, s) in spans.iter().enumerate() {
            if s.1 <= pos || pos < hdr_end && pos >= 18 {
                prop_assert!(times.contains(&(i as i64 * 1_000)), "sample {} lost (flip at {})", i, pos);
            }
        }
        if pos >= hdr_end {
            prop_assert!(!r.notes.is_empty() || got.len() == 12);
        }
    }
}
