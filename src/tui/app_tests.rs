use super::*;
use crate::tui::model::{Proc, Sample};

fn key(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn ch(c: char) -> Msg {
    key(KeyCode::Char(c))
}

fn proc(pid: u32, comm: &str, read: f64, write: f64) -> Proc {
    Proc {
        pid,
        key: (pid, 1),
        user: "root".into(),
        comm: comm.into(),
        command: format!("/usr/bin/{comm}"),
        read_bytes_per_s: Some(read),
        write_bytes_per_s: Some(write),
        active: read + write > 0.0,
        state: 'S',
        ..Default::default()
    }
}

fn sample(ms: i64, procs: Vec<Proc>) -> Msg {
    Msg::Sample(Box::new(Sample {
        wall_unix_ms: ms,
        elapsed_s: 1.0,
        processes: procs,
        ..Default::default()
    }))
}

fn app() -> App {
    let mut a = App::new(1.0, (120, 40));
    a.update(sample(
        1000,
        vec![
            proc(10, "logger", 0.0, 4096.0),
            proc(20, "reader", 8192.0, 0.0),
            proc(30, "idle", 0.0, 0.0),
        ],
    ));
    a
}

fn pids(a: &App) -> Vec<u32> {
    a.rows().iter().map(|r| r.p.pid).collect()
}

#[test]
fn the_table_starts_sorted_by_write_with_only_active_processes() {
    let a = app();
    assert_eq!(a.sort, Col::Write);
    assert_eq!(pids(&a), vec![10, 20]);
}

#[test]
fn arrows_walk_the_columns_and_r_reverses() {
    let mut a = app();
    a.update(key(KeyCode::Left));
    assert_eq!(a.sort, Col::Read);
    assert_eq!(pids(&a), vec![20, 10]);
    a.update(ch('r'));
    assert_eq!(pids(&a), vec![10, 20]);
    a.update(key(KeyCode::Home));
    a.update(key(KeyCode::Left));
    assert_eq!(a.sort, Col::Pid, "the first column stays the first");
    a.update(key(KeyCode::End));
    assert_eq!(a.sort, Col::Command);
}

#[test]
fn o_shows_the_idle_ones_too() {
    let mut a = app();
    a.update(ch('o'));
    assert_eq!(pids(&a).len(), 3);
}

#[test]
fn slash_filters_on_the_command_and_esc_clears_it() {
    let mut a = app();
    a.update(ch('/'));
    for c in "read".chars() {
        a.update(ch(c));
    }
    assert_eq!(a.prompt, Some(Prompt::Filter));
    assert_eq!(pids(&a), vec![20]);
    a.update(key(KeyCode::Enter));
    assert_eq!(a.prompt, None);
    assert_eq!(a.filter, "read");
    // Outside the prompt, keys are commands again.
    a.update(ch('q'));
    a.update(key(KeyCode::Esc));
    assert_eq!(a.filter, "");
    assert_eq!(pids(&a), vec![10, 20]);
}

#[test]
fn q_typed_into_the_filter_does_not_quit() {
    let mut a = app();
    a.update(ch('/'));
    assert_eq!(a.update(ch('q')), Effect::None);
    assert_eq!(a.update(key(KeyCode::Esc)), Effect::None);
    assert_eq!(a.update(ch('q')), Effect::Quit);
}

#[test]
fn ctrl_c_quits_from_anywhere() {
    let mut a = app();
    a.update(ch('/'));
    let e = a.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(e, Effect::Quit);
}

#[test]
fn space_pauses_and_t_steps_through_the_samples() {
    let mut a = app();
    a.update(sample(2000, vec![proc(10, "logger", 0.0, 1.0)]));
    a.update(ch(' '));
    assert!(a.paused());
    // A sample arriving while paused does not move the screen.
    a.update(sample(3000, vec![proc(10, "logger", 0.0, 2.0)]));
    assert_eq!(a.current().unwrap().wall_unix_ms, 2000);
    a.update(ch('T'));
    assert_eq!(a.current().unwrap().wall_unix_ms, 1000);
    a.update(ch('T'));
    assert_eq!(a.current().unwrap().wall_unix_ms, 1000, "no older sample");
    a.update(ch('t'));
    a.update(ch('t'));
    assert_eq!(a.current().unwrap().wall_unix_ms, 3000);
    a.update(ch(' '));
    assert!(!a.paused());
}

#[test]
fn t_when_live_says_what_it_is_for() {
    let mut a = app();
    a.update(ch('t'));
    assert!(!a.paused());
    assert!(a.status.as_deref().unwrap().contains("paused"));
}

#[test]
fn a_cycles_rate_accumulated_and_average() {
    let mut a = app();
    a.update(sample(2000, vec![proc(10, "logger", 0.0, 1000.0)]));
    a.update(ch('a'));
    assert_eq!(a.amounts, Amounts::Accumulated);
    let r = &a.rows()[0];
    assert_eq!((r.p.pid, r.write), (10, Some(5096.0)));
    a.update(ch('a'));
    assert_eq!(a.rows()[0].write, Some(2548.0));
    a.update(ch('a'));
    assert_eq!(a.amounts, Amounts::Rate);
}

#[test]
fn the_selection_follows_the_pid_when_the_rows_move() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    a.update(key(KeyCode::Down));
    assert_eq!(a.selected, Some(20));
    a.update(sample(
        2000,
        vec![proc(10, "logger", 0.0, 1.0), proc(20, "reader", 0.0, 9.0)],
    ));
    assert_eq!(pids(&a), vec![20, 10]);
    assert_eq!(a.selected_proc().unwrap().pid, 20);
}

#[test]
fn enter_opens_the_detail_of_the_first_row_and_esc_closes_it() {
    let mut a = app();
    a.update(key(KeyCode::Enter));
    assert!(a.detail);
    assert_eq!(a.selected, Some(10));
    a.update(key(KeyCode::Esc));
    assert!(!a.detail);
}

#[test]
fn ionice_runs_only_after_y() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    assert_eq!(a.update(ch('i')), Effect::None);
    assert!(matches!(a.prompt, Some(Prompt::Ionice { pid: 10, .. })));
    a.update(ch('c'));
    a.update(ch('4'));
    assert_eq!(
        a.update(ch('y')),
        Effect::Ionice {
            pid: 10,
            class: IoClass::Realtime,
            level: 4
        }
    );
    assert_eq!(a.prompt, None);
    // Esc cancels.
    a.update(ch('i'));
    assert_eq!(a.update(key(KeyCode::Esc)), Effect::None);
    assert_eq!(a.prompt, None);
}

#[test]
fn ionice_is_refused_when_disabled_or_paused() {
    let mut a = app();
    a.update(key(KeyCode::Down));
    a.no_renice = true;
    a.update(ch('i'));
    assert_eq!(a.prompt, None);
    a.no_renice = false;
    a.update(ch(' '));
    a.update(ch('i'));
    assert_eq!(a.prompt, None);
}

#[test]
fn tab_cycles_the_views_and_help_closes_on_any_key() {
    let mut a = app();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(a.view);
        a.update(key(KeyCode::Tab));
    }
    assert_eq!(
        seen,
        vec![
            View::Processes,
            View::Files,
            View::Devices,
            View::Containers
        ]
    );
    assert_eq!(a.view, View::Processes);
    a.update(key(KeyCode::BackTab));
    assert_eq!(a.view, View::Containers);
    a.update(ch('?'));
    assert_eq!(a.prompt, Some(Prompt::Help));
    a.update(ch('x'));
    assert_eq!(a.prompt, None);
}

#[test]
fn history_is_bounded_and_a_paused_screen_keeps_its_sample() {
    let mut a = app();
    a.update(ch(' '));
    for i in 0..HISTORY as i64 + 5 {
        a.update(sample(10_000 + i, vec![]));
    }
    assert_eq!(a.history.len(), HISTORY);
    assert_eq!(a.cursor, Some(0));
}
