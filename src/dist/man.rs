//! Manual pages from the clap definitions (clap_mangen): iowhy(1) and one page per
//! visible subcommand, iowhy-NAME(1), each with EXIT STATUS, EXAMPLES and SEE ALSO from
//! `examples.rs`. `iowhy generate-docs` writes them into docs/man; a test keeps the
//! checked-in pages current.

use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use super::examples::{Extras, extras};

/// The statuses every command shares (the text of `iowhy --help`'s "Exit status").
const COMMON_EXIT: &[(&str, &str)] = &[
    ("0", "success"),
    (
        "1",
        "the run failed: a kernel file could not be read or parsed, an action did not complete",
    ),
    (
        "2",
        "bad input: an unknown flag, a value out of range, a PID or path that does not exist, a root that is not procfs/sysfs",
    ),
];

/// Every page: (file name, roff source).
pub fn pages(cli: Command) -> Vec<(String, String)> {
    // The pages carry the version only, not the revision: they are checked in, and
    // would otherwise change with every commit.
    let mut cli = cli.long_version(None::<&str>).disable_help_subcommand(true);
    cli.build();
    let subs: Vec<Command> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let names: Vec<String> = subs.iter().map(|s| s.get_name().to_string()).collect();
    let mut out = vec![page(&cli, "", &names)];
    for sub in subs {
        let name = sub.get_name().to_string();
        out.push(page(&sub, &name, &[]));
    }
    out
}

fn page(cmd: &Command, name: &str, subcommands: &[String]) -> (String, String) {
    let man = Man::new(cmd.clone())
        .date("")
        .manual("iowhy manual")
        .source(format!("iowhy {}", env!("CARGO_PKG_VERSION")));
    let file = man.get_filename();
    let mut buf: Vec<u8> = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut buf);
    let _ = man.render_name_section(&mut buf);
    let _ = man.render_synopsis_section(&mut buf);
    let _ = man.render_description_section(&mut buf);
    let _ = man.render_options_section(&mut buf);
    if !subcommands.is_empty() {
        let _ = man.render_subcommands_section(&mut buf);
    }
    let ex = extras(name);
    let mut roff = Roff::new();
    notes(&mut roff, cmd);
    exit_status(&mut roff, ex);
    examples(&mut roff, ex);
    see_also(&mut roff, name, subcommands, ex);
    roff.control("SH", ["VERSION"]);
    roff.text([roman(env!("CARGO_PKG_VERSION"))]);
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    text.push_str(&roff.render());
    (file, text)
}

/// The command's after-help, paragraph by paragraph (clap_mangen would title it EXTRA and
/// run the paragraphs together). Its "Exit status" paragraph has its own section.
fn notes(roff: &mut Roff, cmd: &Command) {
    let Some(after) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) else {
        return;
    };
    let text = after.to_string();
    let paras: Vec<&str> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty() && !p.starts_with("Exit status"))
        .collect();
    if paras.is_empty() {
        return;
    }
    roff.control("SH", ["NOTES"]);
    for p in paras {
        roff.control("PP", []);
        roff.text([roman(p.split_whitespace().collect::<Vec<_>>().join(" "))]);
    }
}

fn exit_status(roff: &mut Roff, ex: &Extras) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in COMMON_EXIT.iter().chain(ex.exit) {
        roff.control("TP", []);
        roff.text([bold(*code)]);
        roff.text([roman(*what)]);
    }
}

fn examples(roff: &mut Roff, ex: &Extras) {
    if ex.examples.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for (what, line) in ex.examples {
        roff.control("PP", []);
        roff.text([roman(*what)]);
        roff.control("PP", []);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        roff.text([roman(*line)]);
        roff.control("fi", []);
        roff.control("RE", []);
    }
}

fn see_also(roff: &mut Roff, name: &str, subcommands: &[String], ex: &Extras) {
    let mut refs: Vec<String> = Vec::new();
    if name.is_empty() {
        refs.extend(subcommands.iter().map(|s| format!("iowhy-{s}(1)")));
    } else {
        refs.push("iowhy(1)".to_string());
    }
    refs.extend(ex.see_also.iter().map(|s| s.to_string()));
    roff.control("SH", ["SEE ALSO"]);
    let mut inl = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let (page, sect) = r.split_once('(').unwrap_or((r, ""));
        if i > 0 {
            inl.push(roman(", "));
        }
        inl.push(bold(page));
        inl.push(roman(format!("({sect}")));
    }
    roff.text(inl);
}
