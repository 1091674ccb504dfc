//! Drawing the `iowhy top` screen from the app state; it decides nothing. Header, one
//! line per disk with a sparkline of its utilisation, PSI, the top finding, the table of
//! the current view, the footer; the detail pane, help and the ionice dialog on top.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row as TRow, Table, Wrap};

use super::app::{Amounts, App, COLS, Col, Prompt, Row, View};
use super::model::{Disk, Sample};
use crate::findings::Severity;
use crate::units;

/// Disks shown in the strip at most (the devices view has them all).
const MAX_DISKS: usize = 4;
/// A sparkline covers this many samples (a minute at the default 1 s).
const SPARK: usize = 60;
/// util at or above this is saturation (red), above WARN_UTIL yellow.
const SAT_UTIL: f64 = 90.0;
const WARN_UTIL: f64 = 60.0;

pub fn render(app: &App, f: &mut Frame) {
    let area = f.area();
    let s = app.current();
    let disks = s.map(|s| s.disks.len().min(MAX_DISKS)).unwrap_or(0) as u16;
    let [head, strip, psi, finding, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(disks),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(header(app)), head);
    let Some(s) = s else {
        f.render_widget(
            Paragraph::new(format!(
                "waiting for the first sample ({:.1} s)…",
                app.delay_s
            )),
            body,
        );
        f.render_widget(Paragraph::new(footer(app)), foot);
        return;
    };
    let lines: Vec<Line> = s
        .disks
        .iter()
        .take(MAX_DISKS)
        .map(|d| disk_line(app, d, strip.width))
        .collect();
    f.render_widget(Paragraph::new(lines), strip);
    f.render_widget(Paragraph::new(psi_line(s)), psi);
    f.render_widget(Paragraph::new(finding_line(s)), finding);
    let (table, detail) = if app.detail && app.view == View::Processes {
        let [t, d] =
            Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);
        (t, Some(d))
    } else {
        (body, None)
    };
    match app.view {
        View::Processes => processes(app, f, table),
        View::Files => files(s, f, table),
        View::Devices => devices(app, s, f, table),
        View::Containers => containers(s, f, table),
    }
    if let Some(d) = detail {
        self::detail(app, f, d);
    }
    f.render_widget(Paragraph::new(footer(app)), foot);
    match &app.prompt {
        Some(Prompt::Help) => help(f, area),
        Some(Prompt::Ionice {
            pid,
            comm,
            class,
            level,
        }) => {
            let r = centered(area, 64, 7);
            f.render_widget(Clear, r);
            let text = vec![
                Line::from(format!("Set the I/O priority of {pid} ({comm}):")),
                Line::from(format!(
                    "  ionice -c {} -n {level} -p {pid}   (class {}, level {level})",
                    class.number(),
                    class.name()
                )),
                Line::from("c/Tab: class   0-7: level"),
                Line::from(Span::styled(
                    "y: apply    Esc/n: cancel",
                    Style::new().add_modifier(Modifier::BOLD),
                )),
            ];
            f.render_widget(
                Paragraph::new(text).block(Block::bordered().title(" ionice ")),
                r,
            );
        }
        _ => {}
    }
}

fn header(app: &App) -> Line<'static> {
    let s = app.current();
    let host = s.map(|s| s.host.clone()).unwrap_or_default();
    let clock = s
        .map(|s| units::rfc3339(s.wall_unix_ms).replace('T', " "))
        .unwrap_or_default();
    let mode = if app.paused() {
        Span::styled(" PAUSED ", Style::new().fg(Color::Black).bg(Color::Yellow))
    } else if !app.live {
        Span::styled(" FIXTURE ", Style::new().fg(Color::Black).bg(Color::Gray))
    } else if app.ended {
        Span::styled(" ENDED ", Style::new().fg(Color::Black).bg(Color::Gray))
    } else {
        Span::styled(
            format!(" LIVE {}s ", trim(app.delay_s)),
            Style::new().fg(Color::Black).bg(Color::Green),
        )
    };
    let arrow = if app.reverse { "↑" } else { "↓" };
    let mut v = vec![
        Span::styled(
            format!("iowhy top {host} "),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("{clock} ")),
        mode,
        Span::raw(format!(
            " {} sort:{}{arrow}",
            app.view.name(),
            app.sort.header()
        )),
    ];
    match app.amounts {
        Amounts::Rate => {}
        Amounts::Accumulated => v.push(Span::raw(" accumulated")),
        Amounts::Average => v.push(Span::raw(" average")),
    }
    if !app.only_active {
        v.push(Span::raw(" all"));
    }
    if !app.filter.is_empty() || app.prompt == Some(Prompt::Filter) {
        v.push(Span::styled(
            format!(" filter:{}", app.filter),
            Style::new().fg(Color::Cyan),
        ));
    }
    Line::from(v)
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn util_style(u: f64) -> Style {
    if u >= SAT_UTIL {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else if u >= WARN_UTIL {
        Style::new().fg(Color::Yellow)
    } else {
        Style::new()
    }
}

/// `▁▂▃▄▅▆▇█` of the disk's util over the samples up to the one on screen.
fn sparkline(app: &App, name: &str, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let v: Vec<f64> = app
        .past()
        .map(|s| {
            s.disks
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.util_pct)
                .unwrap_or(0.0)
        })
        .collect();
    let tail = &v[v.len().saturating_sub(width)..];
    tail.iter()
        .map(|u| BARS[((u.clamp(0.0, 100.0) / 100.0) * 7.0).round() as usize])
        .collect()
}

fn disk_line(app: &App, d: &Disk, width: u16) -> Line<'static> {
    let depth = d.nr_requests.map(|n| format!("/{n}")).unwrap_or_default();
    let (stats, head) = if width >= 100 {
        (
            format!(
                "aqu {:>5.1}{depth:<5} await r {:>5.1} w {:>5.1} f {:>5.1} ms {:>6.0} IOPS {:>11} ",
                d.aqu_sz,
                d.r_await_ms,
                d.w_await_ms,
                d.f_await_ms,
                d.iops,
                units::rate(d.bytes_per_s)
            ),
            format!("{:<8} util {:>5.1}% ", d.name, d.util_pct),
        )
    } else {
        // 80 columns: the same numbers, fewer words.
        (
            format!(
                "aqu {:.1}{depth} r/w/f {:.1}/{:.1}/{:.1}ms {:.0}IOPS {} ",
                d.aqu_sz,
                d.r_await_ms,
                d.w_await_ms,
                d.f_await_ms,
                d.iops,
                units::rate(d.bytes_per_s)
            ),
            format!("{:<6}{:>5.1}% ", d.name, d.util_pct),
        )
    };
    let room = (width as usize).saturating_sub(head.chars().count() + stats.chars().count());
    let spark = sparkline(app, &d.name, room.min(SPARK));
    let style = util_style(d.util_pct);
    Line::from(vec![
        Span::styled(head, style),
        Span::raw(stats),
        Span::styled(spark, style),
    ])
}

fn psi_line(s: &Sample) -> Line<'static> {
    let total_r: f64 = s.processes.iter().filter_map(|p| p.read_bytes_per_s).sum();
    let total_w: f64 = s.processes.iter().filter_map(|p| p.write_bytes_per_s).sum();
    let psi = match s.psi {
        Some((some, full)) => format!(
            "PSI io some {some:.1}% full {}",
            full.map(|f| format!("{f:.1}%"))
                .unwrap_or_else(|| "-".into())
        ),
        None => "PSI io -".into(),
    };
    let style = match s.psi {
        Some((some, _)) if some >= 20.0 => Style::new().fg(Color::Red),
        Some((some, _)) if some >= 5.0 => Style::new().fg(Color::Yellow),
        _ => Style::new(),
    };
    Line::from(vec![
        Span::styled(psi, style),
        Span::raw(format!(
            "   Total {} {} | {} {}",
            crate::fields::PROCESS_READ_BYTES.column(),
            units::rate(total_r),
            crate::fields::PROCESS_WRITE_BYTES.column(),
            units::rate(total_w)
        )),
    ])
}

fn finding_line(s: &Sample) -> Line<'static> {
    match &s.headline {
        None => Line::from(Span::styled(
            "no finding: nothing stalls on I/O in this window",
            Style::new().fg(Color::Green),
        )),
        Some(h) => {
            let (tag, style) = match h.severity {
                Severity::Critical => ("CRITICAL", Style::new().fg(Color::White).bg(Color::Red)),
                Severity::Warning => ("WARNING", Style::new().fg(Color::Black).bg(Color::Yellow)),
                Severity::Info => ("info", Style::new().fg(Color::Cyan)),
            };
            let more = if s.findings > 1 {
                format!(" (+{} more)", s.findings - 1)
            } else {
                String::new()
            };
            Line::from(vec![
                Span::styled(format!(" {tag} "), style),
                Span::raw(format!(" {}: {}{more}", h.kind, h.summary)),
            ])
        }
    }
}

/// Column widths, minimum and whether it takes spare room; and the order in which columns
/// are dropped when the terminal is narrow (the first of `DROP` goes first).
fn col_width(c: Col) -> (u16, bool) {
    match c {
        Col::Pid => (7, false),
        Col::User => (8, false),
        Col::Container => (20, false),
        Col::Read | Col::Write => (11, false),
        Col::IoWait => (8, false),
        Col::Fsync => (7, false),
        Col::File => (16, true),
        Col::Device => (7, false),
        Col::Command => (12, true),
    }
}

const DROP: [Col; 7] = [
    Col::User,
    Col::Device,
    Col::Container,
    Col::Fsync,
    Col::IoWait,
    Col::File,
    Col::Read,
];

/// The columns that fit in `width`, with their widths; POD/CONTAINER only when some
/// process is in a container.
pub fn fit_columns(width: u16, containers: bool) -> Vec<(Col, u16)> {
    let mut cols: Vec<Col> = COLS.to_vec();
    if !containers {
        cols.retain(|c| *c != Col::Container);
    }
    let need = |cols: &[Col]| -> u16 {
        cols.iter().map(|c| col_width(*c).0).sum::<u16>() + cols.len() as u16 - 1
    };
    for d in DROP {
        if need(&cols) <= width {
            break;
        }
        cols.retain(|c| *c != d);
    }
    let spare = width.saturating_sub(need(&cols));
    let flex: Vec<Col> = cols.iter().copied().filter(|c| col_width(*c).1).collect();
    let share = spare / flex.len().max(1) as u16;
    let mut out: Vec<(Col, u16)> = cols.iter().map(|c| (*c, col_width(*c).0)).collect();
    for (c, w) in out.iter_mut() {
        if col_width(*c).1 {
            *w += share;
        }
    }
    out
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

/// The end of a path when it is too long: the file name is what matters.
fn tail(s: &str, w: u16) -> String {
    let n = s.chars().count();
    let w = w as usize;
    if n <= w || w < 2 {
        return s.to_string();
    }
    let keep: String = s.chars().skip(n - (w - 1)).collect();
    format!("…{keep}")
}

fn cell(app: &App, r: &Row, c: Col, w: u16) -> String {
    let p = r.p;
    let bytes = |v: Option<f64>| match app.amounts {
        Amounts::Accumulated => opt(v, units::bytes),
        _ => opt(v, units::rate),
    };
    match c {
        Col::Pid => p.pid.to_string(),
        Col::User => p.user.clone(),
        Col::Container => tail(p.container.as_deref().unwrap_or("-"), w),
        Col::Read => bytes(r.read),
        Col::Write => bytes(r.write),
        Col::IoWait => opt(p.io_wait_pct, |v| format!("{v:.1}")),
        Col::Fsync => opt(p.fsync_per_s, |v| format!("{v:.0}")),
        Col::File => tail(p.top_file.as_deref().unwrap_or("-"), w),
        Col::Device => p.device.clone().unwrap_or_else(|| "-".into()),
        Col::Command => {
            if p.d_tasks > 0 {
                format!("[D×{}] {}", p.d_tasks, p.command)
            } else {
                p.command.clone()
            }
        }
    }
}

fn right_aligned(c: Col) -> bool {
    matches!(
        c,
        Col::Pid | Col::Read | Col::Write | Col::IoWait | Col::Fsync
    )
}

fn pad(s: String, w: u16, right: bool) -> String {
    let n = s.chars().count();
    let w = w as usize;
    if n >= w {
        return s.chars().take(w).collect();
    }
    if right {
        format!("{}{s}", " ".repeat(w - n))
    } else {
        s
    }
}

fn processes(app: &App, f: &mut Frame, area: Rect) {
    let in_containers = app
        .current()
        .is_some_and(|s| s.processes.iter().any(|p| p.container.is_some()));
    let cols = fit_columns(area.width, in_containers);
    let head = TRow::new(cols.iter().map(|(c, w)| {
        let mut h = c.header().to_string();
        if *c == app.sort {
            h.push_str(if app.reverse { "↑" } else { "↓" });
        }
        let style = if *c == app.sort {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        };
        ratatui::text::Text::styled(pad(h, *w, right_aligned(*c)), style)
    }));
    let rows = app.rows();
    let sel = app
        .selected
        .and_then(|s| rows.iter().position(|r| r.p.pid == s));
    // Keep the selected row on screen.
    let visible = area.height.saturating_sub(1) as usize;
    let skip = match sel {
        Some(i) if i >= visible => i + 1 - visible,
        _ => 0,
    };
    let body: Vec<TRow> = rows
        .iter()
        .enumerate()
        .skip(skip)
        .take(visible)
        .map(|(i, r)| {
            let style = if Some(i) == sel {
                Style::new().add_modifier(Modifier::REVERSED)
            } else if r.p.d_tasks > 0 {
                Style::new().fg(Color::Red)
            } else if !r.p.active {
                Style::new().fg(Color::DarkGray)
            } else {
                Style::new()
            };
            TRow::new(
                cols.iter()
                    .map(|(c, w)| pad(cell(app, r, *c, *w), *w, right_aligned(*c))),
            )
            .style(style)
        })
        .collect();
    let widths: Vec<Constraint> = cols.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let empty = rows.is_empty();
    f.render_widget(
        Table::new(body, widths).header(head).column_spacing(1),
        area,
    );
    if empty && area.height > 1 {
        let msg = if app.filter.is_empty() {
            "no process did I/O in this window (o: show all)"
        } else {
            "no process matches the filter (Esc clears it)"
        };
        f.render_widget(
            Paragraph::new(msg),
            Rect::new(area.x, area.y + 1, area.width, 1),
        );
    }
}

fn simple_table(f: &mut Frame, area: Rect, heads: &[(&str, u16)], rows: Vec<Vec<String>>) {
    let widths: Vec<Constraint> = heads.iter().map(|(_, w)| Constraint::Length(*w)).collect();
    let head = TRow::new(heads.iter().map(|(h, _)| h.to_string()))
        .style(Style::new().add_modifier(Modifier::BOLD));
    let body: Vec<TRow> = rows.into_iter().map(TRow::new).collect();
    f.render_widget(
        Table::new(body, widths).header(head).column_spacing(1),
        area,
    );
}

fn files(s: &Sample, f: &mut Frame, area: Rect) {
    let mut v: Vec<(&super::model::Proc, &super::model::File)> = s
        .processes
        .iter()
        .flat_map(|p| p.files.iter().map(move |x| (p, x)))
        .filter(|(_, x)| x.growth_bytes_per_s.unwrap_or(0.0) > 0.0 || x.deleted)
        .collect();
    v.sort_by(|a, b| {
        b.1.growth_bytes_per_s
            .unwrap_or(0.0)
            .partial_cmp(&a.1.growth_bytes_per_s.unwrap_or(0.0))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.pid.cmp(&b.0.pid))
    });
    let pw = area.width.saturating_sub(11 + 10 + 7 + 7 + 14 + 5).max(12);
    let rows = v
        .into_iter()
        .map(|(p, x)| {
            vec![
                pad(opt(x.growth_bytes_per_s, units::rate), 11, true),
                pad(opt(x.size_bytes.map(|b| b as f64), units::bytes), 10, true),
                pad(p.pid.to_string(), 7, true),
                x.device.clone().unwrap_or_else(|| "-".into()),
                p.comm.clone(),
                tail(
                    &format!("{}{}", x.path, if x.deleted { " (deleted)" } else { "" }),
                    pw,
                ),
            ]
        })
        .collect();
    simple_table(
        f,
        area,
        &[
            ("     GROWTH", 11),
            ("      SIZE", 10),
            ("    PID", 7),
            ("DEVICE", 7),
            ("COMMAND", 14),
            ("PATH", pw),
        ],
        rows,
    );
}

fn devices(app: &App, s: &Sample, f: &mut Frame, area: Rect) {
    let sw = area
        .width
        .saturating_sub(8 + 7 + 10 + 8 + 8 + 8 + 8 + 12 + 8)
        .min(SPARK as u16);
    let rows = s
        .disks
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                pad(format!("{:.1}", d.util_pct), 7, true),
                pad(
                    format!(
                        "{:.1}{}",
                        d.aqu_sz,
                        d.nr_requests.map(|n| format!("/{n}")).unwrap_or_default()
                    ),
                    10,
                    true,
                ),
                pad(format!("{:.1}", d.r_await_ms), 8, true),
                pad(format!("{:.1}", d.w_await_ms), 8, true),
                pad(format!("{:.1}", d.f_await_ms), 8, true),
                pad(format!("{:.0}", d.iops), 8, true),
                pad(units::rate(d.bytes_per_s), 12, true),
                sparkline(app, &d.name, sw as usize),
            ]
        })
        .collect();
    simple_table(
        f,
        area,
        &[
            ("DEVICE", 8),
            ("  UTIL%", 7),
            ("AQU-SZ/QD", 10),
            ("R_AWAIT", 8),
            ("W_AWAIT", 8),
            ("F_AWAIT", 8),
            ("    IOPS", 8),
            ("        MB/s", 12),
            ("UTIL (last minute)", sw),
        ],
        rows,
    );
}

fn containers(s: &Sample, f: &mut Frame, area: Rect) {
    if s.containers.is_empty() {
        f.render_widget(
            Paragraph::new("no containers found (containerd, Docker, CRI-O, Podman)"),
            area,
        );
        return;
    }
    let nw = area.width.saturating_sub(11 + 11 + 8 + 5 + 11 + 6).max(16);
    let rows = s
        .containers
        .iter()
        .map(|c| {
            vec![
                tail(
                    &if c.name.is_empty() {
                        format!("{} {}", c.runtime, c.id)
                    } else {
                        c.name.clone()
                    },
                    nw,
                ),
                pad(opt(c.read_bytes_per_s, units::rate), 11, true),
                pad(opt(c.write_bytes_per_s, units::rate), 11, true),
                pad(opt(c.io_wait_pct, |v| format!("{v:.1}")), 8, true),
                pad(c.processes.to_string(), 5, true),
                pad(opt(c.log_bytes_per_s, units::rate), 11, true),
            ]
        })
        .collect();
    simple_table(
        f,
        area,
        &[
            ("POD/CONTAINER", nw),
            (crate::fields::PROCESS_READ_BYTES.column(), 11),
            (crate::fields::PROCESS_WRITE_BYTES.column(), 11),
            (crate::fields::PROCESS_IO_WAIT.column(), 8),
            ("PROCS", 5),
            ("LOG GROWTH", 11),
        ],
        rows,
    );
}

/// The commands that act on the selected process: shown to copy, never run from here.
pub fn actions(p: &super::model::Proc) -> Vec<String> {
    if p.kthread {
        return Vec::new();
    }
    let mut v = vec![
        format!("iowhy pause {} --for 10s", p.pid),
        format!("iowhy throttle {} --write-bps 10M --for 10m", p.pid),
    ];
    if let Some(f) = &p.top_file {
        v.push(format!("iowhy rotate {}", units::shell_quote(f)));
    }
    v
}

fn detail(app: &App, f: &mut Frame, area: Rect) {
    let Some(p) = app.selected_proc() else {
        return;
    };
    let dim = Style::new().fg(Color::DarkGray);
    let mut l: Vec<Line> = Vec::new();
    l.push(Line::from(vec![
        Span::styled(
            format!("{} {} ", p.pid, p.comm),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "state {} user {} {}",
            p.state,
            p.user,
            p.container
                .as_ref()
                .map(|c| format!("container {c}"))
                .unwrap_or_default()
        )),
    ]));
    l.push(Line::from(format!(
        "fsync {}/s, mean {} ms   cgroup {}",
        opt(p.fsync_per_s, |v| format!("{v:.0}")),
        opt(p.fsync_avg_ms, |v| format!("{v:.2}")),
        p.cgroup.as_deref().unwrap_or("-")
    )));
    if p.d_tasks > 0 || p.wchan.is_some() {
        l.push(Line::from(format!(
            "D-state threads {}{}   wchan {}",
            p.d_tasks,
            if p.d_wchans.is_empty() {
                String::new()
            } else {
                format!(" in {}", p.d_wchans.join(", "))
            },
            p.wchan.as_deref().unwrap_or("-")
        )));
    }
    l.push(Line::from(Span::styled(
        format!(
            "{:>4} {:>11} {:>10} {:<7} {:<20} PATH",
            "FD", "GROWTH", "SIZE", "DEVICE", "FLAGS"
        ),
        Style::new().add_modifier(Modifier::BOLD),
    )));
    let pw = area.width.saturating_sub(58).max(16);
    for x in p.files.iter().take(6) {
        l.push(Line::from(format!(
            "{:>4} {:>11} {:>10} {:<7} {:<20} {}",
            x.fd,
            opt(x.growth_bytes_per_s, units::rate),
            opt(x.size_bytes.map(|b| b as f64), units::bytes),
            x.device.as_deref().unwrap_or("-"),
            x.flags.chars().take(20).collect::<String>(),
            tail(
                &format!("{}{}", x.path, if x.deleted { " (deleted)" } else { "" }),
                pw
            )
        )));
    }
    if p.files.is_empty() {
        l.push(Line::from(Span::styled(
            "  (no open files read: another user's process, or fds not read)",
            dim,
        )));
    }
    l.push(Line::from(Span::styled(
        "Actions (copy and run in a shell; nothing runs from here):",
        Style::new().add_modifier(Modifier::BOLD),
    )));
    // Ours first (short, always the same place), then the findings' own commands.
    let mut acts = actions(p);
    for r in &p.remedies {
        let cmd = r.split("  #").next().unwrap_or(r).trim();
        if !cmd.is_empty()
            && !cmd.starts_with('#')
            && !acts.iter().any(|a| a.split("  #").next() == Some(cmd))
        {
            acts.push(r.clone());
        }
    }
    if acts.is_empty() {
        l.push(Line::from(Span::styled("  (a kernel thread: none)", dim)));
    }
    for a in acts {
        l.push(Line::from(format!("  {a}")));
    }
    f.render_widget(
        Paragraph::new(l).wrap(Wrap { trim: false }).block(
            Block::new()
                .borders(Borders::TOP)
                .title(" detail (Esc closes) "),
        ),
        area,
    );
}

fn footer(app: &App) -> Line<'static> {
    if app.prompt == Some(Prompt::Filter) {
        return Line::from(vec![
            Span::styled("filter: ", Style::new().fg(Color::Cyan)),
            Span::raw(format!("{}▏", app.filter)),
            Span::styled(
                "  Enter keeps it, Esc clears it",
                Style::new().fg(Color::DarkGray),
            ),
        ]);
    }
    if let Some(s) = &app.status {
        return Line::from(Span::styled(s.clone(), Style::new().fg(Color::Yellow)));
    }
    let keys = [
        ("q", "quit"),
        ("←→", "sort"),
        ("r", "rev"),
        ("o", "active"),
        ("a", "accum"),
        ("/", "filter"),
        ("space", "pause"),
        ("t/T", "step"),
        ("Enter", "detail"),
        ("Tab", "view"),
        ("i", "ionice"),
        ("?", "help"),
    ];
    let mut v = Vec::new();
    for (k, what) in keys {
        v.push(Span::styled(
            k.to_string(),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        v.push(Span::raw(format!(" {what} ")));
    }
    Line::from(v)
}

pub const HELP: &str = "\
iowhy top keys (iotop's first)
  q Ctrl-C   quit                 ←/→ Home/End  sort column
  r          reverse the sort     o             only active / all
  a          rate → accumulated → average since start
  i          ionice the selected process (asks; y applies)
  p          processes (iowhy has no per-thread I/O: like iotop -P)
  /          filter (PID, command, user, container, file); Esc clears
  space z    pause / resume       t / T         next / previous sample
  ↑/↓ j/k    select               Enter         detail pane
  Tab        processes → files → devices → containers
  Ctrl-L     redraw               ?             this help
Differences from iotop: space pauses (iotop-c: reverse); only active
processes by default (iotop -o); DISK READ/WRITE are per process.
Any key closes this help.";

fn help(f: &mut Frame, area: Rect) {
    let r = centered(area, 78, HELP.lines().count() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(HELP).block(Block::bordered().title(" help ")),
        r,
    );
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
