//! `diagnose --at`: the recorded window and its timeline, before the report of the worst
//! moment (text and Markdown; the JSON is the report's `replay` object).

use std::fmt::Write;

use crate::findings::Subject;
use crate::record::when;
use crate::wire::record::Replay;

fn local(rfc: &str) -> String {
    humantime::parse_rfc3339(rfc)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| when::show(d.as_millis() as i64))
        .unwrap_or_else(|| rfc.to_string())
}

/// pid 123 (comm) /path on /mount, device sda
pub fn subject(s: &Subject) -> String {
    let mut parts = Vec::new();
    if let Some(p) = s.pid {
        parts.push(match &s.comm {
            Some(c) => format!("pid {p} ({c})"),
            None => format!("pid {p}"),
        });
    } else if let Some(c) = &s.comm {
        parts.push(c.clone());
    }
    if let Some(p) = &s.path {
        parts.push(p.clone());
    }
    if let Some(m) = &s.mountpoint {
        parts.push(format!("on {m}"));
    }
    if let Some(d) = &s.device {
        parts.push(format!("device {d}"));
    }
    if let Some(p) = &s.pod {
        parts.push(format!("pod {p}"));
    }
    parts.join(" ")
}

fn lines(r: &Replay, bullet: &str) -> String {
    let mut o = String::new();
    for t in &r.timeline {
        let _ = writeln!(
            o,
            "{bullet}{} .. {}  {} [{}] {}{} ({} interval{})",
            local(&t.began_at),
            local(&t.ended_at),
            t.severity.as_str().to_uppercase(),
            t.kind.as_str(),
            match subject(&t.subject) {
                s if s.is_empty() => String::new(),
                s => format!("{s}: "),
            },
            t.summary,
            t.intervals,
            if t.intervals == 1 { "" } else { "s" }
        );
    }
    if r.timeline.is_empty() {
        let _ = writeln!(o, "{bullet}no finding in any recorded interval");
    }
    o
}

fn header(r: &Replay) -> String {
    let mut o = format!(
        "Replayed from the flight recording: {} .. {}, {} interval(s), {} with trace data\n",
        local(&r.from),
        local(&r.to),
        r.intervals,
        r.traced_intervals
    );
    if let Some(w) = &r.worst_at_local {
        let _ = writeln!(
            o,
            "The report below is the worst moment: the interval ending {w}."
        );
    }
    if r.dropped_samples > 0 {
        let _ = writeln!(
            o,
            "{} sample(s) were dropped by the recorder in this window.",
            r.dropped_samples
        );
    }
    if r.reboots > 0 {
        let _ = writeln!(o, "{} reboot(s) in this window.", r.reboots);
    }
    o
}

pub fn text(r: &Replay) -> String {
    let mut o = format!("iowhy diagnose --at {}\n", r.at_local);
    o.push_str(&header(r));
    o.push_str("\nTimeline\n--------\n");
    o.push_str(&lines(r, "  "));
    if !r.notes.is_empty() {
        o.push_str("\nRecording notes\n---------------\n");
        for n in &r.notes {
            let _ = writeln!(o, "  - {n}");
        }
    }
    o.push('\n');
    o
}

pub fn markdown(r: &Replay) -> String {
    let mut o = format!("# Replay of {}\n\n", r.at_local);
    o.push_str(&header(r));
    o.push_str("\n## Timeline\n\n");
    o.push_str(&lines(r, "- "));
    if !r.notes.is_empty() {
        o.push_str("\n## Recording notes\n\n");
        for n in &r.notes {
            let _ = writeln!(o, "- {n}");
        }
    }
    o.push('\n');
    o
}
