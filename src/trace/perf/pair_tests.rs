//! Pairing and naming of the perf layer's events, against this process's real fds.
use super::*;
use crate::roots::Roots;
use crate::trace::AT_FDCWD;
use crate::trace::model::{SyncKind, WriteKind};
use crate::trace::perf::decode::OpenKind;
use std::os::fd::AsRawFd;

fn ev(ts: u64, pid: u32, tid: u32, tp: Tp, arg: i64) -> Ev {
    Ev {
        ts,
        pid,
        tid,
        tp,
        arg,
        flags: None,
        text: None,
        open: None,
    }
}

fn opened(
    ts: u64,
    pid: u32,
    fd: i32,
    proc_path: Option<&str>,
    read_at: u64,
    mem: Option<&str>,
) -> Ev {
    let mut e = ev(ts, pid, pid, Tp::ExitOpen, fd as i64);
    e.open = Some(Box::new(OpenRes {
        proc_name: proc_path.map(|p| Name {
            path: p.into(),
            flags: None,
        }),
        read_at,
        mem_path: mem.map(String::from),
        // Read at the enter, promptly: before anything else the thread did.
        mem_read_at: ts,
        flags: Some(0o2101),
    }));
    e
}

/// Our own process and a real open file: the resolver reads /proc for what it was
/// not told.
fn setup() -> (Resolver, u32, std::fs::File, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("real.log")).unwrap();
    (Resolver::new(Roots::default()), std::process::id(), f, dir)
}

#[test]
fn pairs_calls_and_counts_the_unpaired() {
    let (mut res, me, f, _d) = setup();
    let fd = f.as_raw_fd() as i64;
    let mut p = Pairer::default();
    let none = CloseIndex::default();
    let w = WriteKind::Write;
    // An exit whose entry came before the window: not a loss.
    p.handle(ev(1, me, 77, Tp::ExitWrite(w), 40), &mut res, &none);
    assert_eq!(p.unpaired, 0);
    p.handle(ev(2, me, 77, Tp::EnterWrite(w), fd), &mut res, &none);
    p.handle(ev(5, me, 77, Tp::ExitWrite(w), 40), &mut res, &none);
    // The same thread's next exit without its entry: lost or out of order.
    p.handle(ev(9, me, 77, Tp::ExitWrite(w), 40), &mut res, &none);
    assert_eq!(p.unpaired, 1);
    // Two entries in a row: the first one's exit never came.
    p.handle(
        ev(10, me, 77, Tp::EnterSync(SyncKind::Fsync), fd),
        &mut res,
        &none,
    );
    p.handle(
        ev(11, me, 77, Tp::EnterSync(SyncKind::Fsync), fd),
        &mut res,
        &none,
    );
    p.handle(
        ev(20, me, 77, Tp::ExitSync(SyncKind::Fsync), 0),
        &mut res,
        &none,
    );
    assert_eq!(p.unpaired, 2);
    let procs = res.into_procs();
    let file = procs[&me].files.values().next().unwrap();
    assert!(
        file.path.as_deref().unwrap().ends_with("/real.log"),
        "{file:?}"
    );
    assert_eq!((file.writes, file.write_bytes), (1, 40));
    assert_eq!(file.write_calls[&w].total_ns, 3);
    assert_eq!(file.syncs[&SyncKind::Fsync].count, 1);
    assert_eq!(file.syncs[&SyncKind::Fsync].max_ns, 9);
}

#[test]
fn a_reused_fd_number_gets_the_new_files_name() {
    let (mut res, me, _f, _d) = setup();
    let mut p = Pairer::default();
    let none = CloseIndex::default();
    let w = WriteKind::Write;
    // fd 900 is not open in this process: only the traced opens name it.
    p.handle(
        opened(1, me, 900, Some("/logs/a.log"), 2, None),
        &mut res,
        &none,
    );
    p.handle(ev(3, me, me, Tp::EnterWrite(w), 900), &mut res, &none);
    p.handle(ev(4, me, me, Tp::ExitWrite(w), 10), &mut res, &none);
    p.handle(ev(5, me, me, Tp::EnterClose, 900), &mut res, &none);
    p.handle(
        opened(6, me, 900, None, 7, Some("/logs/b.log")),
        &mut res,
        &none,
    );
    p.handle(ev(8, me, me, Tp::EnterWrite(w), 900), &mut res, &none);
    p.handle(ev(9, me, me, Tp::ExitWrite(w), 20), &mut res, &none);
    let procs = res.into_procs();
    let names: Vec<(Option<&str>, u64, Option<u32>)> = procs[&me]
        .files
        .values()
        .map(|f| (f.path.as_deref(), f.write_bytes, f.flags))
        .collect();
    assert_eq!(
        names,
        vec![
            (Some("/logs/a.log"), 10, Some(0o2101)),
            (Some("/logs/b.log"), 20, Some(0o2101))
        ]
    );
}

#[test]
fn a_proc_name_read_after_a_close_is_not_trusted() {
    let (mut res, me, _f, _d) = setup();
    let w = WriteKind::Write;
    // Opened at 10, /proc read at 100, but the fd was closed at 50 (and the number
    // maybe reused): the path the process passed is used instead.
    let later = [ev(50, me, me, Tp::EnterClose, 901)];
    let idx = CloseIndex::of(later.iter());
    assert!(idx.closed_between(me, 901, 10, 100));
    assert!(!idx.closed_between(me, 901, 60, 100));
    assert!(!idx.closed_between(me, 902, 10, 100));
    let mut p = Pairer::default();
    p.handle(
        opened(
            10,
            me,
            901,
            Some("/now/other"),
            100,
            Some("/logs/short.log"),
        ),
        &mut res,
        &idx,
    );
    p.handle(ev(20, me, me, Tp::EnterWrite(w), 901), &mut res, &idx);
    p.handle(ev(21, me, me, Tp::ExitWrite(w), 5), &mut res, &idx);
    // Neither name trustworthy: unresolved, not guessed.
    p.handle(ev(50, me, me, Tp::EnterClose, 901), &mut res, &idx);
    p.handle(
        opened(60, me, 901, Some("/now/other"), 100, None),
        &mut res,
        &CloseIndex::of([ev(70, me, me, Tp::EnterClose, 901)].iter()),
    );
    p.handle(ev(61, me, me, Tp::EnterWrite(w), 901), &mut res, &idx);
    p.handle(ev(62, me, me, Tp::ExitWrite(w), 6), &mut res, &idx);
    let procs = res.into_procs();
    let paths: Vec<Option<&str>> = procs[&me]
        .files
        .values()
        .map(|f| f.path.as_deref())
        .collect();
    assert_eq!(paths, vec![None, Some("/logs/short.log")]);
}

#[test]
fn a_path_read_from_memory_after_the_close_is_not_trusted() {
    // The reader lagged: the process opened a.log as fd 901, wrote, closed it and opened
    // b.log as fd 901 before its memory and /proc were read; both now say b.log. The
    // first file is unresolved, never named b.log.
    let (mut res, me, _f, _d) = setup();
    let w = WriteKind::Write;
    let later = [
        ev(30, me, me, Tp::EnterClose, 901),
        ev(80, me, me, Tp::EnterClose, 901),
    ];
    let idx = CloseIndex::of(later.iter());
    let mut p = Pairer::default();
    let mut a = opened(10, me, 901, Some("/logs/b.log"), 100, Some("/logs/b.log"));
    a.open.as_mut().unwrap().mem_read_at = 100;
    p.handle(a, &mut res, &idx);
    p.handle(ev(20, me, me, Tp::EnterWrite(w), 901), &mut res, &idx);
    p.handle(ev(21, me, me, Tp::ExitWrite(w), 10), &mut res, &idx);
    p.handle(ev(30, me, me, Tp::EnterClose, 901), &mut res, &idx);
    let mut b = opened(40, me, 901, Some("/logs/b.log"), 100, Some("/logs/b.log"));
    b.open.as_mut().unwrap().mem_read_at = 100;
    p.handle(b, &mut res, &idx);
    p.handle(ev(50, me, me, Tp::EnterWrite(w), 901), &mut res, &idx);
    p.handle(ev(51, me, me, Tp::ExitWrite(w), 20), &mut res, &idx);
    p.handle(ev(80, me, me, Tp::EnterClose, 901), &mut res, &idx);
    let procs = res.into_procs();
    let files: Vec<(Option<&str>, u64)> = procs[&me]
        .files
        .values()
        .map(|f| (f.path.as_deref(), f.write_bytes))
        .collect();
    assert!(
        files.iter().all(|(p, _)| p.is_none()),
        "unresolved, not guessed: {files:?}"
    );
    assert_eq!(
        files.iter().map(|f| f.1).sum::<u64>(),
        30,
        "every byte still counted"
    );
}

#[test]
fn a_path_read_from_memory_after_the_next_open_is_not_trusted() {
    // open a.log (fd 901) at 10, closed at 30 and gone from /proc; the thread entered
    // another open at 35 (b.log), and its memory was read at 40: the buffer may say b.log.
    let (mut res, me, _f, _d) = setup();
    let w = WriteKind::Write;
    let idx = CloseIndex::of(
        [
            ev(30, me, me, Tp::EnterClose, 901),
            ev(35, me, me, Tp::EnterOpen(OpenKind::Openat), AT_FDCWD as i64),
        ]
        .iter(),
    );
    assert!(idx.opened_between(me, 10, 40));
    assert!(!idx.opened_between(me, 36, 40));
    assert!(!idx.opened_between(me + 1, 10, 40));
    let mut p = Pairer::default();
    let mut a = opened(10, me, 901, None, 40, Some("/logs/b.log"));
    a.open.as_mut().unwrap().mem_read_at = 40;
    p.handle(a, &mut res, &idx);
    p.handle(ev(20, me, me, Tp::EnterWrite(w), 901), &mut res, &idx);
    p.handle(ev(21, me, me, Tp::ExitWrite(w), 10), &mut res, &idx);
    // Read before the next open: trusted.
    let mut c = opened(50, me, 902, None, 60, Some("/logs/c.log"));
    c.open.as_mut().unwrap().mem_read_at = 51;
    p.handle(c, &mut res, &idx);
    p.handle(ev(52, me, me, Tp::EnterWrite(w), 902), &mut res, &idx);
    p.handle(ev(53, me, me, Tp::ExitWrite(w), 5), &mut res, &idx);
    let procs = res.into_procs();
    let mut files: Vec<(i32, Option<&str>)> = procs[&me]
        .files
        .values()
        .map(|f| (f.fd, f.path.as_deref()))
        .collect();
    files.sort();
    assert_eq!(files, vec![(901, None), (902, Some("/logs/c.log"))]);
}

#[test]
fn fast_opens_name_the_fd_while_it_is_open() {
    let (res, me, f, _d) = setup();
    let fd = f.as_raw_fd();
    let mut fo = FastOpens::default();
    let mut enter = ev(1, me, me, Tp::EnterOpen(OpenKind::Openat), AT_FDCWD as i64);
    enter.text = Some("/from/memory".into());
    enter.flags = Some(0o1);
    // The enter passes on bare (for the index of opens); its path waits for the exit.
    let bare = fo.take(enter, &res, || 5).expect("a bare copy");
    assert!(bare.text.is_none() && bare.open.is_none());
    assert_eq!(bare.tp, Tp::EnterOpen(OpenKind::Openat));
    assert!(fo.waiting());
    let out = fo
        .take(ev(2, me, me, Tp::ExitOpen, fd as i64), &res, || 5)
        .unwrap();
    assert!(!fo.waiting());
    let o = out.open.unwrap();
    assert!(o.proc_name.unwrap().path.ends_with("/real.log"));
    assert_eq!(
        (o.mem_path.as_deref(), o.flags, o.read_at),
        (Some("/from/memory"), Some(1), 5)
    );
    // A failed open names nothing; an exit without entry (read-only) passes bare.
    assert!(
        fo.take(ev(3, me, me, Tp::ExitOpen, -2), &res, || 5)
            .is_none()
    );
    assert!(
        fo.take(ev(4, me, me, Tp::ExitOpen, 7), &res, || 5)
            .unwrap()
            .open
            .is_none()
    );
}
