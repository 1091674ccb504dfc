//! The state of the `iowhy top` screen and how messages change it. No I/O here: a key,
//! a resize, a sample or a tick goes in, the state changes, and what the loop must do
//! (quit, redraw, run an ionice the user confirmed) comes out.

use std::collections::{HashMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::model::{Proc, Sample};

/// Samples kept: stepping back with `T`, and the disks' sparklines.
pub const HISTORY: usize = 300;

pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    Sample(Box<Sample>),
    /// The sampler could not take a sample (shown in the footer).
    SampleError(String),
    Tick,
}

/// What the loop does after an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    Quit,
    /// Clear the screen and draw everything again (Ctrl-L).
    Redraw,
    /// Set a process's I/O priority: the user confirmed it with `y`.
    Ionice {
        pid: u32,
        class: IoClass,
        level: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoClass {
    Realtime,
    BestEffort,
    Idle,
}

impl IoClass {
    pub fn name(self) -> &'static str {
        match self {
            IoClass::Realtime => "realtime",
            IoClass::BestEffort => "best-effort",
            IoClass::Idle => "idle",
        }
    }
    /// ionice's `-c` number.
    pub fn number(self) -> u8 {
        match self {
            IoClass::Realtime => 1,
            IoClass::BestEffort => 2,
            IoClass::Idle => 3,
        }
    }
    fn next(self) -> IoClass {
        match self {
            IoClass::Realtime => IoClass::BestEffort,
            IoClass::BestEffort => IoClass::Idle,
            IoClass::Idle => IoClass::Realtime,
        }
    }
}

/// The process table's columns, in screen order (`←`/`→` walk them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Col {
    Pid,
    User,
    Container,
    Read,
    Write,
    IoWait,
    Fsync,
    File,
    Device,
    Command,
}

pub const COLS: [Col; 10] = [
    Col::Pid,
    Col::User,
    Col::Container,
    Col::Read,
    Col::Write,
    Col::IoWait,
    Col::Fsync,
    Col::File,
    Col::Device,
    Col::Command,
];

impl Col {
    pub fn header(self) -> &'static str {
        use crate::fields;
        match self {
            Col::Pid => "PID",
            Col::User => "USER",
            Col::Container => "POD/CONTAINER",
            Col::Read => fields::PROCESS_READ_BYTES.column(),
            Col::Write => fields::PROCESS_WRITE_BYTES.column(),
            Col::IoWait => fields::PROCESS_IO_WAIT.column(),
            Col::Fsync => fields::PROCESS_FSYNC_CALLS.column(),
            Col::File => "TOP-FILE",
            Col::Device => "DEVICE",
            Col::Command => "COMMAND",
        }
    }
    /// Numbers sort biggest first, names in alphabetical order.
    fn numeric(self) -> bool {
        matches!(self, Col::Read | Col::Write | Col::IoWait | Col::Fsync)
    }
}

/// What the read and write columns show (`a` cycles, as iotop-c's does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amounts {
    /// Bytes per second over the last refresh.
    Rate,
    /// Bytes since `iowhy top` started.
    Accumulated,
    /// Accumulated bytes over the seconds watched: the average rate.
    Average,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Processes,
    Files,
    Devices,
    Containers,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Processes => "processes",
            View::Files => "files",
            View::Devices => "devices",
            View::Containers => "containers",
        }
    }
    fn next(self, back: bool) -> View {
        const ALL: [View; 4] = [
            View::Processes,
            View::Files,
            View::Devices,
            View::Containers,
        ];
        let i = ALL.iter().position(|v| *v == self).unwrap_or(0);
        ALL[(i + if back { 3 } else { 1 }) % 4]
    }
}

/// A dialog that takes the keys until it closes.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// Typing the filter (`/`).
    Filter,
    /// ionice of one process: class and level chosen, `y` applies.
    Ionice {
        pid: u32,
        comm: String,
        class: IoClass,
        level: u8,
    },
    Help,
}

/// Bytes read and written by one process since `iowhy top` started.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Accum {
    pub read_bytes: f64,
    pub write_bytes: f64,
    pub seconds: f64,
}

pub struct App {
    pub history: VecDeque<Sample>,
    /// The sample shown when paused (an index into `history`); `None`: the newest.
    pub cursor: Option<usize>,
    pub sort: Col,
    pub reverse: bool,
    pub only_active: bool,
    pub amounts: Amounts,
    pub filter: String,
    pub view: View,
    /// The selected process, by pid: it stays selected when the rows move.
    pub selected: Option<u32>,
    pub detail: bool,
    pub prompt: Option<Prompt>,
    /// One line for the footer: an error, or what a key did.
    pub status: Option<String>,
    pub accum: HashMap<(u32, u64), Accum>,
    pub size: (u16, u16),
    pub delay_s: f64,
    /// `IOWHY_NO_RENICE` is set: `i` does nothing.
    pub no_renice: bool,
    /// The sampler is done (a fixture has no more time points).
    pub ended: bool,
    /// The live machine, not a fixture.
    pub live: bool,
}

/// A row of the process table: the process and what its read and write columns show.
pub struct Row<'a> {
    pub p: &'a Proc,
    pub read: Option<f64>,
    pub write: Option<f64>,
}

impl App {
    pub fn new(delay_s: f64, size: (u16, u16)) -> App {
        App {
            history: VecDeque::new(),
            cursor: None,
            sort: Col::Write,
            reverse: false,
            only_active: true,
            amounts: Amounts::Rate,
            filter: String::new(),
            view: View::Processes,
            selected: None,
            detail: false,
            prompt: None,
            status: None,
            accum: HashMap::new(),
            size,
            delay_s,
            no_renice: false,
            ended: false,
            live: true,
        }
    }

    pub fn paused(&self) -> bool {
        self.cursor.is_some()
    }

    /// The sample on screen.
    pub fn current(&self) -> Option<&Sample> {
        match self.cursor {
            Some(i) => self.history.get(i),
            None => self.history.back(),
        }
    }

    /// The samples up to the one on screen (for sparklines), oldest first.
    pub fn past(&self) -> impl Iterator<Item = &Sample> {
        let end = self.cursor.map(|i| i + 1).unwrap_or(self.history.len());
        self.history.iter().take(end)
    }

    pub fn update(&mut self, m: Msg) -> Effect {
        match m {
            Msg::Key(k) => self.key(k),
            Msg::Resize(w, h) => {
                self.size = (w, h);
                Effect::None
            }
            Msg::Sample(s) => {
                self.sample(*s);
                Effect::None
            }
            Msg::SampleError(e) => {
                self.status = Some(e);
                Effect::None
            }
            Msg::Tick => Effect::None,
        }
    }

    fn sample(&mut self, s: Sample) {
        for p in &s.processes {
            let a = self.accum.entry(p.key).or_default();
            a.read_bytes += p.read_bytes_per_s.unwrap_or(0.0) * s.elapsed_s;
            a.write_bytes += p.write_bytes_per_s.unwrap_or(0.0) * s.elapsed_s;
            a.seconds += s.elapsed_s;
        }
        self.history.push_back(s);
        if self.history.len() > HISTORY {
            self.history.pop_front();
            // A paused screen keeps showing the same sample while history moves on.
            if let Some(c) = self.cursor.as_mut() {
                *c = c.saturating_sub(1);
            }
        }
    }

    fn key(&mut self, k: KeyEvent) -> Effect {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && k.code == KeyCode::Char('c') {
            return Effect::Quit;
        }
        if ctrl && k.code == KeyCode::Char('l') {
            return Effect::Redraw;
        }
        match self.prompt.clone() {
            Some(Prompt::Filter) => return self.filter_key(k),
            Some(Prompt::Ionice {
                pid,
                comm,
                class,
                level,
            }) => return self.ionice_key(k, pid, comm, class, level),
            Some(Prompt::Help) => {
                self.prompt = None;
                return if k.code == KeyCode::Char('q') {
                    Effect::Quit
                } else {
                    Effect::None
                };
            }
            None => {}
        }
        self.status = None;
        match k.code {
            KeyCode::Char('q') | KeyCode::Char('Q') => return Effect::Quit,
            KeyCode::Left => self.sort = step_col(self.sort, -1),
            KeyCode::Right => self.sort = step_col(self.sort, 1),
            KeyCode::Home => self.sort = COLS[0],
            KeyCode::End => self.sort = COLS[COLS.len() - 1],
            KeyCode::Char('r') => self.reverse = !self.reverse,
            KeyCode::Char('o') => self.only_active = !self.only_active,
            KeyCode::Char('p') => {
                self.status = Some(
                    "iowhy shows processes (iotop -P); D-state threads are in the detail pane"
                        .into(),
                )
            }
            KeyCode::Char('a') => {
                self.amounts = match self.amounts {
                    Amounts::Rate => Amounts::Accumulated,
                    Amounts::Accumulated => Amounts::Average,
                    Amounts::Average => Amounts::Rate,
                }
            }
            KeyCode::Char('i') => self.open_ionice(),
            KeyCode::Char('/') => self.prompt = Some(Prompt::Filter),
            KeyCode::Esc => {
                if self.detail {
                    self.detail = false;
                } else {
                    self.filter.clear();
                }
            }
            KeyCode::Char(' ') | KeyCode::Char('z') => {
                self.cursor = match self.cursor {
                    Some(_) => None,
                    None => self.history.len().checked_sub(1),
                }
            }
            KeyCode::Char('t') => self.step(1),
            KeyCode::Char('T') => self.step(-1),
            KeyCode::Enter => {
                if self.selected_proc().is_none() {
                    self.move_selection(1);
                }
                self.detail = !self.detail && self.selected.is_some();
            }
            KeyCode::Tab => self.view = self.view.next(false),
            KeyCode::BackTab => self.view = self.view.next(true),
            KeyCode::Char('?') | KeyCode::Char('h') => self.prompt = Some(Prompt::Help),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(10),
            KeyCode::PageUp => self.move_selection(-10),
            _ => {}
        }
        Effect::None
    }

    fn filter_key(&mut self, k: KeyEvent) -> Effect {
        match k.code {
            KeyCode::Enter => self.prompt = None,
            KeyCode::Esc => {
                self.prompt = None;
                self.filter.clear();
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            _ => {}
        }
        self.selected = None;
        Effect::None
    }

    fn open_ionice(&mut self) {
        if self.no_renice {
            self.status = Some("ionice is disabled (IOWHY_NO_RENICE)".into());
            return;
        }
        if self.paused() {
            self.status = Some("ionice acts on the live machine: resume first (space)".into());
            return;
        }
        let Some(p) = self.selected_proc() else {
            self.status = Some("select a process first (↑/↓)".into());
            return;
        };
        self.prompt = Some(Prompt::Ionice {
            pid: p.pid,
            comm: p.comm.clone(),
            class: IoClass::Idle,
            level: 7,
        });
    }

    fn ionice_key(
        &mut self,
        k: KeyEvent,
        pid: u32,
        comm: String,
        mut class: IoClass,
        mut level: u8,
    ) -> Effect {
        match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                self.prompt = None;
                return Effect::Ionice { pid, class, level };
            }
            KeyCode::Tab | KeyCode::Char('c') => class = class.next(),
            KeyCode::Char(d @ '0'..='7') => level = d as u8 - b'0',
            KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('q') => {
                self.prompt = None;
                self.status = Some("ionice cancelled".into());
                return Effect::None;
            }
            _ => {}
        }
        self.prompt = Some(Prompt::Ionice {
            pid,
            comm,
            class,
            level,
        });
        Effect::None
    }

    /// `t` (+1, newer) and `T` (-1, older) while paused.
    fn step(&mut self, by: i64) {
        let Some(c) = self.cursor else {
            self.status = Some("t/T step through samples when paused (space)".into());
            return;
        };
        let last = self.history.len().saturating_sub(1) as i64;
        self.cursor = Some((c as i64 + by).clamp(0, last) as usize);
    }

    fn move_selection(&mut self, by: i64) {
        let pids: Vec<u32> = self.rows().iter().map(|r| r.p.pid).collect();
        if pids.is_empty() {
            self.selected = None;
            return;
        }
        let at = self
            .selected
            .and_then(|s| pids.iter().position(|p| *p == s));
        let next = match at {
            None if by > 0 => 0,
            None => pids.len() - 1,
            Some(i) => (i as i64 + by).clamp(0, pids.len() as i64 - 1) as usize,
        };
        self.selected = Some(pids[next]);
    }

    pub fn selected_proc(&self) -> Option<&Proc> {
        let s = self.selected?;
        self.current()?.processes.iter().find(|p| p.pid == s)
    }

    /// The process table as shown: filtered, with the chosen amounts, sorted.
    pub fn rows(&self) -> Vec<Row<'_>> {
        let Some(s) = self.current() else {
            return Vec::new();
        };
        let needle = self.filter.to_lowercase();
        let mut v: Vec<Row> = s
            .processes
            .iter()
            .filter(|p| !self.only_active || p.active || Some(p.pid) == self.selected)
            .filter(|p| needle.is_empty() || matches(p, &needle))
            .map(|p| {
                let a = self.accum.get(&p.key).copied().unwrap_or_default();
                let (read, write) = match self.amounts {
                    Amounts::Rate => (p.read_bytes_per_s, p.write_bytes_per_s),
                    Amounts::Accumulated => (Some(a.read_bytes), Some(a.write_bytes)),
                    Amounts::Average if a.seconds > 0.0 => (
                        Some(a.read_bytes / a.seconds),
                        Some(a.write_bytes / a.seconds),
                    ),
                    Amounts::Average => (None, None),
                };
                Row { p, read, write }
            })
            .collect();
        let col = self.sort;
        v.sort_by(|x, y| {
            let o = if col.numeric() {
                num(y, col)
                    .partial_cmp(&num(x, col))
                    .unwrap_or(std::cmp::Ordering::Equal)
            } else {
                text(x, col).cmp(&text(y, col))
            };
            o.then(x.p.pid.cmp(&y.p.pid))
        });
        if self.reverse {
            v.reverse();
        }
        v
    }
}

fn step_col(c: Col, by: i64) -> Col {
    let i = COLS.iter().position(|x| *x == c).unwrap_or(0) as i64;
    COLS[(i + by).clamp(0, COLS.len() as i64 - 1) as usize]
}

fn matches(p: &Proc, needle: &str) -> bool {
    p.pid.to_string() == needle
        || [
            Some(&p.command),
            Some(&p.comm),
            Some(&p.user),
            p.container.as_ref(),
            p.top_file.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|s| s.to_lowercase().contains(needle))
}

fn num(r: &Row, c: Col) -> f64 {
    match c {
        Col::Read => r.read,
        Col::Write => r.write,
        Col::IoWait => r.p.io_wait_pct,
        Col::Fsync => r.p.fsync_per_s,
        _ => None,
    }
    .unwrap_or(-1.0)
}

fn text(r: &Row, c: Col) -> String {
    match c {
        Col::Pid => format!("{:010}", r.p.pid),
        Col::User => r.p.user.clone(),
        Col::Container => r.p.container.clone().unwrap_or_default(),
        Col::File => r.p.top_file.clone().unwrap_or_default(),
        Col::Device => r.p.device.clone().unwrap_or_default(),
        _ => r.p.command.clone(),
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
