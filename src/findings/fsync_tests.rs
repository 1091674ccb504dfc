//! Tests of `fsync_storm` on the fsync-logger fixture with synthetic traces.
use super::*;
use crate::parse::fdinfo::O_DSYNC;
use crate::trace::model::{Layer, TraceData};

/// The fsync-logger fixture (real snapshots) with a synthetic trace of its writer.
fn interval_with(trace: TraceData) -> Interval {
    let mut iv = crate::findings::fixture_interval("fsync-logger");
    iv.set_trace(Some(trace));
    iv
}

fn writer_pid() -> u32 {
    crate::findings::fixture_lab_pids("fsync-logger")[0]
}

fn trace(pid: u32, writes: u64, syncs: u64, flags: u32, layer: Layer) -> TraceData {
    let mut d = TraceData::new(layer);
    d.duration_s = 2.0;
    let mut f = FileTrace {
        fd: 3,
        path: Some("/var/log/app/output.log".into()),
        flags: Some(flags),
        ..Default::default()
    };
    f.writes = writes;
    f.write_bytes = writes * 40;
    let h = f
        .syncs
        .entry(crate::trace::model::SyncKind::Fsync)
        .or_default();
    for i in 0..syncs {
        h.record(300_000 + i % 1000);
    }
    let mut p = ProcTrace {
        pid,
        comm: "logger".into(),
        ..Default::default()
    };
    p.files.insert((3, "/var/log/app/output.log".into()), f);
    d.procs.insert(pid, p);
    d
}

/// The writer's real log (fd 3 in the fixture's fd table, on loop0).
const LOG: &str = "/var/tmp/iowhy-lab-10205/mnt/app/output.log";

fn file(fd: i32, path: &str, writes: u64, bytes: u64, k: SyncKind, syncs: u64) -> FileTrace {
    let mut f = FileTrace {
        fd,
        path: Some(path.into()),
        flags: Some(0o2001),
        writes,
        write_bytes: bytes,
        ..Default::default()
    };
    if syncs > 0 {
        let h = f.syncs.entry(k).or_default();
        for i in 0..syncs {
            h.record(300_000 + i % 1000);
        }
    }
    f
}

fn proc_with(pid: u32, comm: &str, files: Vec<FileTrace>) -> ProcTrace {
    let mut p = ProcTrace {
        pid,
        comm: comm.into(),
        ..Default::default()
    };
    for f in files {
        p.files.insert((f.fd, f.path.clone().unwrap()), f);
    }
    p
}

fn traced(procs: Vec<ProcTrace>) -> TraceData {
    let mut d = TraceData::new(Layer::Ebpf);
    d.duration_s = 2.0;
    for p in procs {
        d.procs.insert(p.pid, p);
    }
    d
}

#[test]
fn shares_are_attributions_not_rate_ratios() {
    let pid = writer_pid();
    let w = |n| file(3, LOG, n, n * 40, SyncKind::Fsync, n);
    // The writer alone makes every sync on loop0: 100%, whatever the device's flush
    // count (ext4 makes ~2 flushes per fsync; rate / flushes would say ~50%).
    let iv = interval_with(traced(vec![proc_with(pid, "logger", vec![w(4000)])]));
    let found = fsync_storm(&iv);
    let f = &found[0];
    assert_eq!(f.subject.device.as_deref(), Some("loop0"));
    assert_eq!(f.evidence.get_num("share_of_device_syncs_pct"), Some(100.0));
    assert!(f.evidence.get("share_of_device_flushes_pct").is_none());
    let d = iv.device("loop0").unwrap();
    assert!(d.f_s > 0.0, "the fixture's device flushes");
    assert_eq!(f.evidence.get_num("device_flushes_per_s"), Some(d.f_s));
    // Its written bytes against the device's (the journal's are jbd2's, so < 100%).
    let mine = iv.process(pid).unwrap().write_bytes_per_s.unwrap();
    let want = (mine / (d.wkb_s * 1024.0) * 100.0).min(100.0);
    let got = f.evidence.get_num("share_of_device_writes_pct").unwrap();
    assert!(
        (got - want).abs() < 1e-9 && got > 0.0 && got < 100.0,
        "{got} vs {want}"
    );
    // Another process on the same filesystem with a quarter as many syncs: 80 / 20.
    let other = proc_with(
        999_999,
        "other",
        vec![file(
            5,
            "/var/tmp/iowhy-lab-10205/mnt/app/other.log",
            1000,
            40_000,
            SyncKind::Fdatasync,
            1000,
        )],
    );
    let found = fsync_storm(&interval_with(traced(vec![
        proc_with(pid, "logger", vec![w(4000)]),
        other,
    ])));
    let share = |p: u32| {
        found
            .iter()
            .find(|f| f.subject.pid == Some(p))
            .and_then(|f| f.evidence.get_num("share_of_device_syncs_pct"))
    };
    assert_eq!(share(pid), Some(80.0));
    assert_eq!(share(999_999), Some(20.0));
}

#[test]
fn the_wording_follows_writes_per_sync() {
    let pid = writer_pid();
    let one = |writes, syncs| {
        fsync_storm(&interval_with(traced(vec![proc_with(
            pid,
            "logger",
            vec![file(3, LOG, writes, writes * 40, SyncKind::Fsync, syncs)],
        )])))
        .remove(0)
    };
    let f = one(4000, 4000);
    assert!(
        f.explanation
            .starts_with("Every 40-byte write is followed by a sync"),
        "{}",
        f.explanation
    );
    assert!(
        f.summary.contains("after every 40-byte write"),
        "{}",
        f.summary
    );
    // Three writes per sync, 2000 syncs a second: a storm, but not "every write".
    let f = one(12_000, 4000);
    assert!(
        !f.explanation.contains("write is followed"),
        "{}",
        f.explanation
    );
    assert!(
        f.explanation
            .starts_with("A sync every 3 writes (120 bytes per sync"),
        "{}",
        f.explanation
    );
    assert!(
        f.summary.contains("every 3 writes (120 bytes)"),
        "{}",
        f.summary
    );
    // sync(2) and msync(2) have no fd: say what they are.
    for (k, says) in [
        (
            SyncKind::Sync,
            "sync(2) asks the kernel to write back every dirty page",
        ),
        (
            SyncKind::Msync,
            "msync(2) writes a memory-mapped range back",
        ),
    ] {
        let f = fsync_storm(&interval_with(traced(vec![proc_with(
            pid,
            "logger",
            vec![file(-1, crate::trace::NO_FD, 0, 0, k, 1000)],
        )])))
        .remove(0);
        assert!(f.explanation.starts_with(says), "{}", f.explanation);
        assert!(
            f.summary.contains(&format!("calls {}", k.name())),
            "{}",
            f.summary
        );
    }
}

#[test]
fn a_storm_spread_over_files_is_flagged_on_the_process() {
    let pid = writer_pid();
    // Ten logs, each synced after every write 15 times a second: no file alone
    // reaches MIN_SYNCS_PER_S, the process makes 150 a second.
    let files = |n: i32, each: u64| {
        (0..n)
            .map(|i| {
                file(
                    10 + i,
                    &format!("/var/tmp/iowhy-lab-10205/mnt/app/{i}.log"),
                    each,
                    each * 40,
                    SyncKind::Fsync,
                    each,
                )
            })
            .collect::<Vec<_>>()
    };
    const { assert!(15.0 < MIN_SYNCS_PER_S) };
    let found = fsync_storm(&interval_with(traced(vec![proc_with(
        pid,
        "logger",
        files(10, 30),
    )])));
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.evidence.get_num("syncs_per_s"), Some(150.0));
    assert_eq!(f.evidence.get_num("files_synced"), Some(10.0));
    assert!(f.summary.contains("10 files"), "{}", f.summary);
    // Three such files: 15 a second in all, not a storm.
    assert!(
        fsync_storm(&interval_with(traced(vec![proc_with(
            pid,
            "logger",
            files(3, 10)
        )])))
        .is_empty()
    );
}

#[test]
fn many_short_lived_processes_of_one_program_are_one_storm() {
    // 60 processes of one program in 2 s, each writing a line and syncing it once:
    // 30 syncs a second together, none anything alone.
    let procs = |n: u32, comm: &str| {
        (0..n)
            .map(|i| {
                let mut p = proc_with(
                    500_000 + i,
                    comm,
                    vec![file(1, LOG, 1, 40, SyncKind::Fsync, 1)],
                );
                p.exited_in_window = true;
                p
            })
            .collect::<Vec<_>>()
    };
    let found = fsync_storm(&interval_with(traced(procs(60, "stamp"))));
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.subject.pid, None);
    assert_eq!(f.subject.comm.as_deref(), Some("stamp"));
    assert_eq!(f.evidence.get_num("processes"), Some(60.0));
    assert_eq!(f.evidence.get_num("syncs_per_s"), Some(30.0));
    assert!(f.summary.starts_with("60 stamp processes"), "{}", f.summary);
    assert!(f.remediation.iter().any(|r| r.contains("--comm stamp")));
    assert!(!f.remediation.iter().any(|r| r.contains("iowhy pause")));
    // Different programs are not added together.
    let mut mixed = procs(30, "a");
    mixed.extend(procs(30, "b").into_iter().map(|mut p| {
        p.pid += 1000;
        p
    }));
    assert!(fsync_storm(&interval_with(traced(mixed))).is_empty());
}

#[test]
fn a_sync_per_write_is_a_storm() {
    let pid = writer_pid();
    let found = fsync_storm(&interval_with(trace(pid, 4000, 4000, 0o2001, Layer::Perf)));
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.subject.pid, Some(pid));
    assert_eq!(f.evidence.get_num("syncs_per_s"), Some(2000.0));
    assert_eq!(f.evidence.get_num("writes_per_sync"), Some(1.0));
    assert_eq!(f.evidence.get_num("bytes_per_sync"), Some(40.0));
    assert!(
        f.summary.contains("after every 40-byte write"),
        "{}",
        f.summary
    );
}

#[test]
fn batched_syncs_and_buffered_writers_are_not() {
    let pid = writer_pid();
    // Group commit: 10 syncs a second, 100 writes each.
    assert!(fsync_storm(&interval_with(trace(pid, 2000, 20, 0o2001, Layer::Ebpf))).is_empty());
    // A buffered writer: many writes, no sync.
    assert!(fsync_storm(&interval_with(trace(pid, 100_000, 0, 0o2001, Layer::Ebpf))).is_empty());
}

#[test]
fn odsync_writes_count_as_syncs() {
    let pid = writer_pid();
    let found = fsync_storm(&interval_with(trace(
        pid,
        1000,
        0,
        0o2001 | O_DSYNC,
        Layer::Perf,
    )));
    assert_eq!(found.len(), 1);
    assert!(found[0].summary.contains("synchronously"));
}

#[test]
fn sampling_reports_an_estimate() {
    let pid = writer_pid();
    let mut d = trace(pid, 0, 0, 0o2001, Layer::Sampling);
    d.procs.get_mut(&pid).unwrap().sampled_sync_share = Some(0.6);
    d.procs.get_mut(&pid).unwrap().samples = 200;
    let found = fsync_storm(&interval_with(d.clone()));
    assert_eq!(found.len(), 1);
    assert!(found[0].summary.contains("estimate"));
    d.procs.get_mut(&pid).unwrap().sampled_sync_share = Some(0.1);
    assert!(fsync_storm(&interval_with(d)).is_empty());
}
