use super::*;
use crate::record::store::{Source, load};

fn opts(dir: &Path) -> RecordOptions {
    let mut o = RecordOptions::new(dir.to_path_buf(), std::time::Duration::from_secs(10));
    o.queue = 2;
    o
}

fn snap(i: i64) -> Snapshot {
    Snapshot {
        wall_unix_ms: 1_772_938_800_000 + i * 10_000,
        uptime_s: 100.0 + i as f64 * 10.0,
        hostname: format!("h{i}"),
        ..Default::default()
    }
}

#[test]
fn a_full_queue_drops_samples_and_the_recording_says_how_many() {
    let d = tempfile::tempdir().unwrap();
    let o = opts(d.path());
    // A recorder whose writer has not started: the queue (2) fills at once.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(o.queue);
    let mut r = Recorder {
        tx: Some(tx),
        thread: None,
        pending_gap: None,
        dir: o.dir.clone(),
        warned: None,
    };
    for i in 0..5 {
        r.offer(&snap(i), None);
    }
    assert_eq!(r.pending_gap.as_ref().map(|g| g.dropped), Some(3));
    // The writer catches up; the next sample carries the gap before it.
    let machine = Machine {
        boot_id: Some("b".into()),
        tz: None,
    };
    let mut w = Writer::new(o.clone(), machine.clone());
    for m in rx.try_iter() {
        w.write(m).unwrap();
    }
    r.offer(&snap(5), None);
    // Two more dropped at the end are written as a gap when the recorder stops.
    r.offer(&snap(6), None);
    r.offer(&snap(7), None);
    r.offer(&snap(8), None);
    let (tx2, rx2) = std::sync::mpsc::sync_channel::<Msg>(8);
    let old = r.tx.replace(tx2).unwrap();
    drop(old);
    // Move what the old queue held, then let finish() send the last gap on the new one.
    r.finish();
    let mut w2 = Writer::new(o, machine);
    for m in rx.try_iter().chain(rx2.try_iter()) {
        w2.write(m).unwrap();
    }
    w.close();
    w2.close();
    let l = load(&Source::Dir(d.path().to_path_buf()), i64::MIN, i64::MAX).unwrap();
    let hosts: Vec<&str> = l
        .entries
        .iter()
        .map(|e| e.sample.snapshot.hostname.as_str())
        .collect();
    assert_eq!(hosts, ["h0", "h1", "h5", "h6"]);
    let dropped: Vec<u64> = l.gaps.iter().map(|g| g.dropped).collect();
    assert_eq!(dropped, [3, 2]);
    assert_eq!(l.gaps[0].first_unix_ms, snap(2).wall_unix_ms);
    assert_eq!(l.gaps[0].last_unix_ms, snap(4).wall_unix_ms);
}

fn nice_and_ioprio_of(thread: &str) -> Option<(i64, i64)> {
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let t = t.ok()?.path();
        if std::fs::read_to_string(t.join("comm")).ok()?.trim() != thread {
            continue;
        }
        let stat = std::fs::read_to_string(t.join("stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        // Field 19 (nice) is the 17th after the comm.
        let nice: i64 = after.split(' ').nth(16)?.parse().ok()?;
        let tid: i64 = t.file_name()?.to_str()?.parse().ok()?;
        // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, tid) only reads.
        let io = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, tid as libc::c_int) };
        return Some((nice, io));
    }
    None
}

#[test]
fn the_writer_runs_at_nice_10_and_the_lowest_best_effort_io_priority() {
    let d = tempfile::tempdir().unwrap();
    let mut r = Recorder::start(&opts(d.path()), &Roots::default()).unwrap();
    let end = Instant::now() + std::time::Duration::from_secs(5);
    let got = loop {
        match nice_and_ioprio_of("iowhy-recorder") {
            Some(g) if g.0 == 10 || Instant::now() > end => break Some(g),
            None if Instant::now() > end => break None,
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    r.finish();
    assert_eq!(got, Some((10, (2 << 13) | 7)));
}

#[test]
fn the_store_on_the_busiest_disk_is_warned_about() {
    let iv = crate::findings::fixture_interval("fsync-logger");
    let lab = std::path::Path::new("/var/tmp/iowhy-lab-10205/mnt/rec");
    let w = busy_store_warning(&iv, lab).expect("a warning for a store on loop0");
    assert!(w.contains("loop0") && w.contains("--dir"), "{w}");
    assert_eq!(
        busy_store_warning(&iv, std::path::Path::new("/var/log/iowhy/rec")),
        None
    );
}
