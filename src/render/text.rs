//! The text report: the seed's story in order — device → process → file → filesystem →
//! what to do now and later — then the tables behind it and what could not be seen.
//! Every host string (paths, comm, hostnames, the findings' text that quotes them) is
//! printed through `hoststr::for_terminal`; table cells are escaped by `Table` itself.

use std::fmt::Write as _;

use crate::findings::story::Story;
use crate::findings::{Finding, Severity};
use crate::hoststr::for_terminal as esc;
use crate::interval::Interval;
use crate::interval::process::ProcessRates;
use crate::units;

use super::report::{Diagnosis, interesting_files};
use super::table::Table;

fn sev_label(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING ",
        Severity::Info => "INFO    ",
    }
}

pub fn render(d: &Diagnosis) -> String {
    let story = crate::findings::story::story(&d.findings);
    let mut o = String::new();
    header(&mut o, d, &story);
    findings(&mut o, &story);
    devices(&mut o, &d.interval);
    let procs = d.shown_processes();
    if !procs.is_empty() {
        processes(&mut o, d, &procs);
        files(&mut o, &procs);
    }
    let _ = writeln!(o, "Filesystems");
    o.push_str(
        &super::table::filesystems(&super::report::filesystems_json(&d.interval.filesystems))
            .render(),
    );
    o.push('\n');
    what_to_do(&mut o, &story);
    blind_spots(&mut o, d);
    o
}

/// The title line, then either "no I/O stall" with the busiest disk or the story's summary.
fn header(o: &mut String, d: &Diagnosis, story: &Story) {
    let iv = &d.interval;
    let _ = writeln!(
        o,
        "iowhy diagnose — {} (Linux {}), {}, {:.1} s window",
        esc(&iv.after.hostname),
        esc(&iv.after.kernel),
        units::rfc3339(iv.before.wall_unix_ms),
        iv.elapsed_s
    );
    o.push('\n');
    let serious = d.findings.iter().any(|f| f.severity != Severity::Info);
    if !serious {
        let busiest = iv.whole_devices().max_by(|a, b| {
            a.util_pct
                .partial_cmp(&b.util_pct)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let _ = writeln!(
            o,
            "No I/O stall found: no disk saturated, no filesystem near full, no task stuck on I/O.{}{}",
            busiest
                .map(|b| format!(
                    " Busiest disk: {} at {:.1}% util, await {:.1} ms.",
                    esc(&b.name),
                    b.util_pct,
                    b.await_ms
                ))
                .unwrap_or_default(),
            if d.findings.is_empty() {
                ""
            } else {
                " For the record:"
            }
        );
        o.push('\n');
    } else {
        let _ = writeln!(o, "What is happening");
        let _ = writeln!(o, "-----------------");
        if let Some(summary) = &story.summary {
            for line in wrap(summary, 98) {
                let _ = writeln!(o, "{line}");
            }
            o.push('\n');
        }
    }
}

/// Each finding in the story's order: severity, kind, summary, explanation, evidence.
fn findings(o: &mut String, story: &Story) {
    for f in &story.order {
        let _ = writeln!(
            o,
            "{} [{}] {}",
            sev_label(f.severity),
            f.kind.as_str(),
            esc(&f.summary)
        );
        if !f.explanation.is_empty() {
            for line in wrap(&f.explanation, 88) {
                let _ = writeln!(o, "          {line}");
            }
        }
        let ev: Vec<String> = f
            .evidence
            .0
            .iter()
            .map(|(k, v)| match v {
                crate::findings::Value::Num(x) => format!("{k}={}", num(*x)),
                crate::findings::Value::Text(t) => format!("{k}={t}"),
            })
            .collect();
        if !ev.is_empty() {
            for line in wrap(&ev.join("  "), 88) {
                let _ = writeln!(o, "          · {line}");
            }
        }
        o.push('\n');
    }
}

/// The iostat -x table of whole disks.
fn devices(o: &mut String, iv: &Interval) {
    let _ = writeln!(o, "Devices (iostat -x over the window)");
    let mut t = Table::new(&[
        "Device", "r/s", "w/s", "rkB/s", "wkB/s", "f/s", "r_await", "w_await", "f_await", "aqu-sz",
        "%util", "svctm~",
    ]);
    for dev in iv.whole_devices() {
        t.row(vec![
            dev.name.clone(),
            format!("{:.2}", dev.r_s),
            format!("{:.2}", dev.w_s),
            format!("{:.2}", dev.rkb_s),
            format!("{:.2}", dev.wkb_s),
            format!("{:.2}", dev.f_s),
            format!("{:.2}", dev.r_await_ms),
            format!("{:.2}", dev.w_await_ms),
            format!("{:.2}", dev.f_await_ms),
            format!("{:.2}", dev.aqu_sz),
            format!("{:.2}", dev.util_pct),
            dev.svctm_est_ms
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    o.push_str(&t.render());
    o.push('\n');
}

/// The processes doing I/O, at most 15.
fn processes(o: &mut String, d: &Diagnosis, procs: &[&ProcessRates]) {
    let _ = writeln!(o, "Processes doing I/O");
    let mut t = Table::new(&[
        "PID",
        "COMM",
        "READ/s",
        "WRITE/s",
        crate::fields::PROCESS_IO_WAIT.column(),
        crate::fields::PROCESS_FSYNC_CALLS.column(),
        "STATE",
        "WCHAN",
        "MAIN FILE",
    ])
    .text_columns(&[1, 6, 7, 8]);
    for p in procs.iter().take(15) {
        t.row(vec![
            p.pid.to_string(),
            p.comm.clone(),
            p.read_bytes_per_s
                .map(units::rate)
                .unwrap_or_else(|| "?".into()),
            p.write_bytes_per_s
                .map(units::rate)
                .unwrap_or_else(|| "?".into()),
            p.io_wait_pct
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "-".into()),
            d.fsync_per_s(p.pid)
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into()),
            if p.d_tasks > 0 {
                format!("{} D×{}", p.state, p.d_tasks)
            } else {
                p.state.to_string()
            },
            p.wchan.clone().unwrap_or_default(),
            p.main_written_file()
                .map(|f| f.path.clone())
                .unwrap_or_default(),
        ]);
    }
    o.push_str(&t.render());
    o.push('\n');
}

/// The files the first eight processes write, at most six each.
fn files(o: &mut String, procs: &[&ProcessRates]) {
    let mut ft = Table::new(&[
        "PID", "FD", "FILE", "SIZE", "GROWTH/s", "FLAGS", "MOUNT", "DEVICE",
    ])
    .text_columns(&[2, 5, 6, 7]);
    for p in procs.iter().take(8) {
        for f in interesting_files(p).take(6) {
            ft.row(vec![
                p.pid.to_string(),
                f.fd.to_string(),
                if f.deleted {
                    format!("{} (deleted)", f.path)
                } else {
                    f.path.clone()
                },
                f.size_bytes
                    .map(units::bytes_u)
                    .unwrap_or_else(|| "?".into()),
                f.growth_bytes_per_s
                    .map(units::rate)
                    .unwrap_or_else(|| "-".into()),
                f.flag_names().join("|"),
                f.mountpoint.clone().unwrap_or_default(),
                f.devices.first().cloned().unwrap_or_default(),
            ]);
        }
    }
    if !ft.is_empty() {
        let _ = writeln!(o, "Files they write");
        o.push_str(&ft.render());
        o.push('\n');
    }
}

/// The remediation of every serious finding, then the lasting fixes.
fn what_to_do(o: &mut String, story: &Story) {
    let actionable: Vec<&Finding> = story
        .order
        .iter()
        .copied()
        .filter(|f| !f.remediation.is_empty() && f.severity != Severity::Info)
        .collect();
    if actionable.is_empty() {
        return;
    }
    let _ = writeln!(o, "What to do now");
    let _ = writeln!(o, "--------------");
    for f in &actionable {
        let _ = writeln!(o, "For {} ({}):", f.kind.as_str(), subject_line(f));
        for r in &f.remediation {
            for (i, line) in r.lines().enumerate() {
                let _ = writeln!(o, "  {}{}", if i == 0 { "$ " } else { "  " }, esc(line));
            }
        }
    }
    o.push('\n');
    let _ = writeln!(o, "Later");
    let _ = writeln!(o, "-----");
    for line in &story.lasting_fixes {
        let _ = writeln!(o, "  - {}", esc(line));
    }
    o.push('\n');
}

/// What this run could not see, and how to see it.
fn blind_spots(o: &mut String, d: &Diagnosis) {
    if d.blind_spots.is_empty() {
        return;
    }
    let _ = writeln!(o, "Not visible in this run");
    for b in &d.blind_spots {
        if b.how_to_see.is_empty() {
            let _ = writeln!(o, "  - {}", esc(&b.what));
        } else {
            let _ = writeln!(o, "  - {} → {}", esc(&b.what), esc(&b.how_to_see));
        }
    }
}

pub fn subject_line(f: &Finding) -> String {
    let s = &f.subject;
    let mut parts = Vec::new();
    if let (Some(c), Some(p)) = (&s.comm, s.pid) {
        parts.push(format!("{} pid {p}", esc(c)));
    }
    if let Some(d) = &s.device {
        parts.push(esc(d).into_owned());
    }
    if let Some(p) = &s.path {
        parts.push(esc(p).into_owned());
    } else if let Some(m) = &s.mountpoint {
        parts.push(esc(m).into_owned());
    }
    if let Some(c) = &s.container_id {
        parts.push(format!("container {}", esc(crate::hoststr::prefix(c, 12))));
    }
    if parts.is_empty() {
        "the machine".into()
    } else {
        parts.join(", ")
    }
}

pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

pub fn wrap(text: &str, width: usize) -> Vec<String> {
    // Escaped before it is cut: a newline inside a quoted path stays `\n` in one word.
    let text = esc(text);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{Finding, Kind, Severity};

    #[test]
    fn subject_line_survives_a_non_ascii_container_id_and_escapes_names() {
        // 64 bytes whose 12th byte is inside `é`: `&id[..12]` used to panic here.
        let id = format!("aaaaaaaaaaa\u{e9}{}", "a".repeat(51));
        assert_eq!(id.len(), 64);
        let mut f = Finding::new(Kind::TopIoWriter, Severity::Warning, "x");
        f.subject.container_id = Some(id);
        f.subject.comm = Some("a) (b\nc".into());
        f.subject.pid = Some(42);
        f.subject.path = Some("/tmp/\u{1b}[31mRED\n.log".into());
        let line = subject_line(&f);
        assert_eq!(
            line,
            "a) (b\\nc pid 42, /tmp/\\e[31mRED\\n.log, container aaaaaaaaaaa"
        );
    }

    #[test]
    fn wrap_keeps_an_escaped_newline_inside_its_word() {
        let lines = wrap("writes /tmp/a\nb\u{1b}c hard", 80);
        assert_eq!(lines, vec!["writes /tmp/a\\nb\\ec hard".to_string()]);
    }
}
