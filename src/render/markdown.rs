//! The Markdown report: an incident note a person can paste into a ticket. It is text for
//! a terminal first (`iowhy diagnose -f markdown` prints it), so host strings are escaped
//! as in the text report.

use std::fmt::Write as _;

use crate::findings::story::Story;
use crate::findings::{Severity, Value};
use crate::hoststr::{for_terminal as esc, for_terminal_lines as esc_lines};
use crate::interval::Interval;
use crate::units;

use super::report::Diagnosis;
use super::table::Table;
use super::text::{num, subject_line};

pub fn render(d: &Diagnosis) -> String {
    let iv = &d.interval;
    let story = crate::findings::story::story(&d.findings);
    let mut o = String::new();
    let _ = writeln!(o, "# I/O incident note: {}", esc(&iv.after.hostname));
    o.push('\n');
    let _ = writeln!(
        o,
        "Observed by `iowhy diagnose` at {} over {:.1} s, Linux {}.",
        units::rfc3339(iv.before.wall_unix_ms),
        iv.elapsed_s,
        esc(&iv.after.kernel)
    );
    o.push('\n');
    let _ = writeln!(o, "## Summary");
    o.push('\n');
    if d.findings.iter().all(|f| f.severity == Severity::Info) {
        let _ = writeln!(
            o,
            "Nothing wrong found: no disk saturated, no filesystem near full, no task stuck on I/O."
        );
    }
    for f in &d.findings {
        let _ = writeln!(
            o,
            "- **{}** `{}`: {}",
            f.severity.as_str(),
            f.kind.as_str(),
            esc(&f.summary)
        );
    }
    o.push('\n');
    sections(&mut o, &story);
    devices(&mut o, iv);
    processes(&mut o, d);
    let _ = writeln!(o, "## Filesystems");
    o.push('\n');
    o.push_str(
        &super::table::filesystems(&super::report::filesystems_json(&iv.filesystems)).markdown(),
    );
    o.push('\n');
    let _ = writeln!(o, "## Follow-up");
    o.push('\n');
    for l in &story.lasting_fixes {
        let _ = writeln!(o, "- [ ] {}", esc(l));
    }
    o.push('\n');
    blind_spots(&mut o, d);
    o
}

/// A section per serious finding: explanation, evidence table, what to do.
fn sections(o: &mut String, story: &Story) {
    for f in story.order.iter().filter(|f| f.severity != Severity::Info) {
        let _ = writeln!(o, "## {} — {}", f.kind.as_str(), subject_line(f));
        o.push('\n');
        if !f.explanation.is_empty() {
            let _ = writeln!(o, "{}", esc_lines(&f.explanation));
            o.push('\n');
        }
        let mut t = Table::new(&["evidence", "value"]).text_columns(&[1]);
        for (k, v) in &f.evidence.0 {
            t.row(vec![
                k.to_string(),
                match v {
                    Value::Num(x) => num(*x),
                    Value::Text(s) => s.clone(),
                },
            ]);
        }
        o.push_str(&t.markdown());
        o.push('\n');
        if !f.remediation.is_empty() {
            let _ = writeln!(o, "What to do:");
            o.push('\n');
            let _ = writeln!(o, "```sh");
            for r in &f.remediation {
                let _ = writeln!(o, "{}", esc_lines(r));
            }
            let _ = writeln!(o, "```");
            o.push('\n');
        }
    }
}

/// The whole disks, iostat style.
fn devices(o: &mut String, iv: &Interval) {
    let _ = writeln!(o, "## Devices");
    o.push('\n');
    let mut t = Table::new(&[
        "device", "r/s", "w/s", "rkB/s", "wkB/s", "f/s", "await ms", "aqu-sz", "%util",
    ]);
    for dev in iv.whole_devices() {
        t.row(vec![
            dev.name.clone(),
            format!("{:.2}", dev.r_s),
            format!("{:.2}", dev.w_s),
            format!("{:.2}", dev.rkb_s),
            format!("{:.2}", dev.wkb_s),
            format!("{:.2}", dev.f_s),
            format!("{:.2}", dev.await_ms),
            format!("{:.2}", dev.aqu_sz),
            format!("{:.2}", dev.util_pct),
        ]);
    }
    o.push_str(&t.markdown());
    o.push('\n');
}

/// The processes doing I/O, at most 10.
fn processes(o: &mut String, d: &Diagnosis) {
    let procs = d.shown_processes();
    if !procs.is_empty() {
        let _ = writeln!(o, "## Processes");
        o.push('\n');
        let mut t = Table::new(&[
            "pid",
            "command",
            "read/s",
            "write/s",
            "io wait %",
            "main file",
        ])
        .text_columns(&[1, 5]);
        for p in procs.iter().take(10) {
            t.row(vec![
                p.pid.to_string(),
                format!("`{}`", p.cmdline.chars().take(60).collect::<String>()),
                p.read_bytes_per_s
                    .map(units::rate)
                    .unwrap_or_else(|| "?".into()),
                p.write_bytes_per_s
                    .map(units::rate)
                    .unwrap_or_else(|| "?".into()),
                p.io_wait_pct
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_else(|| "n/a".into()),
                p.main_written_file()
                    .map(|f| format!("`{}`", f.path))
                    .unwrap_or_default(),
            ]);
        }
        o.push_str(&t.markdown());
        o.push('\n');
    }
}

/// What this run could not see, and how to see it.
fn blind_spots(o: &mut String, d: &Diagnosis) {
    if !d.blind_spots.is_empty() {
        let _ = writeln!(o, "## Not visible in this run");
        o.push('\n');
        for b in &d.blind_spots {
            if b.how_to_see.is_empty() {
                let _ = writeln!(o, "- {}", esc(&b.what));
            } else {
                let _ = writeln!(o, "- {} ({})", esc(&b.what), esc(&b.how_to_see));
            }
        }
    }
}
