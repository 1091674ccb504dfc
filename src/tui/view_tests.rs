//! Whole screens drawn into ratatui's TestBackend from fixture intervals (real captures of
//! the lab incidents), compared with tests/golden/tui/*.txt (IOWHY_UPDATE_GOLDEN=1
//! rewrites them).

use std::collections::HashMap;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::tui::app::Msg;
use crate::tui::model::Sample;

/// The fsync-logger capture with what the perf layer would have counted for its writer
/// (50 fsyncs in the window), so FSYNC/s is shown.
fn fsync_logger() -> Sample {
    use crate::trace::model::{FileTrace, ProcTrace, SyncKind, WriteKind};
    use crate::trace::{Layer, TraceData};
    let mut iv = crate::findings::fixture_interval("fsync-logger");
    let pid = crate::findings::fixture_lab_pids("fsync-logger")[0];
    let path = iv
        .process(pid)
        .and_then(|p| p.main_written_file())
        .map(|f| f.path.clone())
        .expect("the writer's log");
    let mut t = TraceData::new(Layer::Perf);
    t.duration_s = iv.elapsed_s;
    let mut f = FileTrace {
        fd: 3,
        path: Some(path.clone()),
        ..Default::default()
    };
    for _ in 0..50 {
        f.record_write(WriteKind::Write, 40, 8_000);
        f.syncs
            .entry(SyncKind::Fsync)
            .or_default()
            .record(1_500_000);
    }
    let mut p = ProcTrace {
        pid,
        comm: iv.process(pid).unwrap().comm.clone(),
        ..Default::default()
    };
    p.files.insert((3, path), f);
    t.procs.insert(pid, p);
    iv.set_trace(Some(t));
    let found = crate::findings::run_all(&iv);
    Sample::new(&iv, &found, &HashMap::new())
}

fn fixture(name: &str) -> Sample {
    let iv = crate::findings::fixture_interval(name);
    let found = crate::findings::run_all(&iv);
    Sample::new(&iv, &found, &HashMap::new())
}

fn app_with(s: Sample, w: u16, h: u16) -> App {
    let mut a = App::new(1.0, (w, h));
    // Three refreshes of the same window: a sparkline of three bars.
    for _ in 0..3 {
        a.update(Msg::Sample(Box::new(s.clone())));
    }
    a
}

fn keys(a: &mut App, k: &[KeyCode]) {
    for c in k {
        a.update(Msg::Key(KeyEvent::new(*c, KeyModifiers::NONE)));
    }
}

/// The screen as text, one line per row, trailing spaces cut.
fn screen(a: &App) -> String {
    let (w, h) = a.size;
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(a, f)).unwrap();
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn golden(name: &str, got: &str) {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/tui")
        .join(name);
    if std::env::var_os("IOWHY_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, got).unwrap();
    }
    let want = std::fs::read_to_string(&p)
        .unwrap_or_else(|_| panic!("missing {}: IOWHY_UPDATE_GOLDEN=1", p.display()));
    assert!(
        want == got,
        "{} differs (IOWHY_UPDATE_GOLDEN=1 if intended); got:\n{got}",
        p.display()
    );
}

#[test]
fn the_fsync_logger_screen_shows_its_writer_file_fsyncs_and_the_verdict() {
    let s = fsync_logger();
    let fsyncs = format!(" {:.0} ", 50.0 / s.elapsed_s);
    let pid = crate::findings::fixture_lab_pids("fsync-logger")[0];
    let a = app_with(s, 120, 40);
    let got = screen(&a);
    let row = got
        .lines()
        .find(|l| l.trim_start().starts_with(&pid.to_string()))
        .expect("the writer's row");
    assert!(row.contains("output.log") && row.contains("loop0"), "{row}");
    assert!(row.contains(&fsyncs), "50 fsyncs over the window: {row}");
    assert!(got.contains("fsync_storm"), "{got}");
    golden("fsync-logger.120x40.txt", &got);
}

#[test]
fn at_80x24_the_columns_drop_by_priority_and_the_file_stays() {
    let a = app_with(fsync_logger(), 80, 24);
    let got = screen(&a);
    let head = got
        .lines()
        .find(|l| l.contains("PID") && l.contains("COMMAND"))
        .expect("the table header");
    assert!(
        head.contains("TOP-FILE") && head.contains("DISK WRITE"),
        "{head}"
    );
    assert!(
        !head.contains("USER") && !head.contains("POD/CONTAINER"),
        "{head}"
    );
    assert!(got.lines().all(|l| l.chars().count() <= 80));
    golden("fsync-logger.80x24.txt", &got);
}

#[test]
fn fit_columns_fill_the_width_and_keep_pid_write_and_command() {
    for w in [40u16, 60, 80, 100, 120, 200] {
        let cols = fit_columns(w, true);
        let used: u16 = cols.iter().map(|c| c.1).sum::<u16>() + cols.len() as u16 - 1;
        assert!(used <= w.max(31), "{w}: {used} {cols:?}");
        for c in [Col::Pid, Col::Write, Col::Command] {
            assert!(cols.iter().any(|x| x.0 == c), "{w}: {cols:?}");
        }
    }
    assert_eq!(fit_columns(120, true).len(), COLS.len());
    assert_eq!(fit_columns(120, false).len(), COLS.len() - 1);
}

#[test]
fn enter_shows_the_detail_pane_with_the_file_and_the_actions() {
    let s = fsync_logger();
    let fsyncs = format!("fsync {:.0}/s", 50.0 / s.elapsed_s);
    let mut a = app_with(s, 120, 40);
    keys(&mut a, &[KeyCode::Char('/')]);
    keys(
        &mut a,
        &"lab-fsync".chars().map(KeyCode::Char).collect::<Vec<_>>(),
    );
    keys(&mut a, &[KeyCode::Enter, KeyCode::Enter]);
    let got = screen(&a);
    assert!(got.contains("detail"), "{got}");
    assert!(got.contains("iowhy rotate "), "{got}");
    assert!(got.contains(&fsyncs), "{got}");
    golden("fsync-logger.detail.txt", &got);
}

#[test]
fn the_other_views_list_files_devices_and_containers() {
    let mut a = app_with(fsync_logger(), 120, 30);
    keys(&mut a, &[KeyCode::Tab]);
    let files = screen(&a);
    assert!(files.contains("output.log"), "{files}");
    golden("fsync-logger.files.txt", &files);
    keys(&mut a, &[KeyCode::Tab]);
    let devices = screen(&a);
    assert!(
        devices.contains("AQU-SZ/QD") && devices.contains("loop0"),
        "{devices}"
    );
    golden("fsync-logger.devices.txt", &devices);
    let mut c = app_with(fixture("container-log-flood"), 120, 30);
    keys(&mut c, &[KeyCode::BackTab]);
    let cont = screen(&c);
    assert!(cont.contains("POD/CONTAINER"), "{cont}");
    golden("container-log-flood.containers.txt", &cont);
}

#[test]
fn a_quiet_machine_says_so_and_help_lists_the_keys() {
    let mut a = app_with(fixture("quiet"), 80, 24);
    let got = screen(&a);
    assert!(got.contains("no finding") || got.contains("info"), "{got}");
    golden("quiet.80x24.txt", &got);
    keys(&mut a, &[KeyCode::Char('?')]);
    let h = screen(&a);
    assert!(h.contains("Differences from iotop"), "{h}");
    golden("quiet.help.80x24.txt", &h);
}

#[test]
fn paused_filtered_and_sorted_states_show_in_the_header() {
    let mut a = app_with(fsync_logger(), 120, 40);
    keys(
        &mut a,
        &[
            KeyCode::Char(' '),
            KeyCode::Left,
            KeyCode::Char('/'),
            KeyCode::Char('z'),
            KeyCode::Char('z'),
            KeyCode::Char('z'),
            KeyCode::Enter,
        ],
    );
    let got = screen(&a);
    let head = got.lines().next().unwrap();
    assert!(head.contains("PAUSED"), "{head}");
    assert!(head.contains("sort:DISK READ"), "{head}");
    assert!(head.contains("filter:zzz"), "{head}");
    assert!(got.contains("no process matches the filter"), "{got}");
}

#[test]
fn before_the_first_sample_the_screen_says_it_waits() {
    let a = App::new(2.0, (80, 24));
    assert!(screen(&a).contains("waiting for the first sample (2.0 s)"));
}
