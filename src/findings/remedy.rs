//! Remediation steps shared by several rules. Each step is a command with its reason as a
//! trailing comment, so that a person can paste it and a script can read it.
//!
//! The safety rules from the seed incident live here, once: never `rm` a file that a
//! process holds open (the space is not freed until the last fd closes); rename and make
//! the writer reopen, or truncate through `/proc/PID/fd/N`, and say why; never send SIGHUP
//! to a process without a handler for it (its default action terminates the process).

use crate::interval::Interval;
use crate::interval::process::{FileRates, ProcessRates};
use crate::units::shell_quote;

pub fn step(cmd: impl AsRef<str>, why: &str) -> String {
    format!("{}  # {why}", cmd.as_ref())
}

/// What we know about a log's writer, for choosing how to rotate it.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter<'a> {
    pub pid: u32,
    pub comm: &'a str,
    /// The full command line (args joined by spaces, as `pkill -f` matches it); empty
    /// when unknown.
    pub cmdline: &'a str,
    pub fd: i32,
    /// Opened with O_APPEND: safe to truncate in place.
    pub append: bool,
    /// Has a SIGHUP handler; `Some(false)` means a HUP would kill it; `None` unknown.
    pub handles_hup: Option<bool>,
    /// The systemd service whose main process it is (`nginx.service`).
    pub unit: Option<&'a str>,
    /// The log's permission bits, owner and group, when known.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The systemd service a process runs in: the last `.service` component of its cgroup
/// (v2, or v1 `name=systemd` on hybrid hosts).
fn service_of(p: &ProcessRates) -> Option<&str> {
    let entries = p.cgroups.as_deref()?;
    let path = crate::parse::cgroup::unified_path(entries)
        .filter(|p| *p != "/")
        .or_else(|| crate::parse::cgroup::v1_path(entries, "name=systemd"))?;
    path.rsplit('/').find(|c| c.ends_with(".service"))
}

impl<'a> LogWriter<'a> {
    /// The facts about `file`'s writer `p` in the interval.
    pub fn of(iv: &'a Interval, p: &'a ProcessRates, file: &FileRates) -> LogWriter<'a> {
        let stat = iv
            .after
            .process(p.pid)
            .and_then(|s| s.fds.as_ref())
            .and_then(|fds| fds.iter().find(|f| f.fd == file.fd))
            .and_then(|f| f.stat);
        // The unit's main process, not one of its workers: its parent is outside the unit.
        let unit = service_of(p).filter(|u| {
            iv.processes
                .iter()
                .find(|q| q.pid == p.ppid)
                .and_then(service_of)
                != Some(*u)
        });
        LogWriter {
            pid: p.pid,
            comm: &p.comm,
            cmdline: &p.cmdline,
            fd: file.fd,
            append: file
                .flags
                .is_some_and(|fl| fl & crate::parse::fdinfo::O_APPEND != 0),
            handles_hup: p.handles_hup,
            unit,
            mode: stat.map(|s| s.mode & 0o7777),
            uid: stat.map(|s| s.uid),
            gid: stat.and_then(|s| s.gid),
        }
    }
}

pub fn rotate_steps(path: &str, w: LogWriter<'_>) -> Vec<String> {
    let q = shell_quote(path);
    let pid = w.pid;
    let mut v = vec![step(
        format!("iowhy rotate {q} --dry-run"),
        "see which processes hold it and what rotating would do",
    )];
    if w.handles_hup != Some(false) {
        v.push(step(
            format!("iowhy rotate {q}"),
            "rename + create + signal the writers, then verify by inode that each reopened",
        ));
    }
    if w.handles_hup == Some(true) {
        let mut install = format!("install -m {:04o}", w.mode.unwrap_or(0o640));
        if let Some(u) = w.uid {
            install.push_str(&format!(" -o {u}"));
        }
        if let Some(g) = w.gid {
            install.push_str(&format!(" -g {g}"));
        }
        v.push(step(
            format!("mv {q} {q}.1 && {install} /dev/null {q} && kill -HUP {pid}"),
            "by hand: the rename keeps every line; it handles SIGHUP, which makes it reopen its log",
        ));
    } else if w.handles_hup == Some(false) {
        v.push(step(
            format!("# do not: kill -HUP {pid}"),
            "it has no SIGHUP handler: the signal would terminate it instead of making it reopen its log",
        ));
    }
    if w.append {
        v.push(step(
            format!("iowhy rotate {q} --copytruncate"),
            "it uses O_APPEND: copy, then truncate with the writer stopped for the final instant (nothing lost)",
        ));
        v.push(step(
            format!("truncate -s 0 /proc/{pid}/fd/{}", w.fd),
            "only if the old lines are expendable: an O_APPEND writer continues at the new end without a hole",
        ));
    }
    v.push(step(
        format!("# never: rm {q}"),
        "the writer keeps the deleted inode open and the space is not freed",
    ));
    v
}

/// A regular expression matching `s` literally (POSIX ERE, as pkill reads it).
fn ere_literal(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.[](){}*+?^$|".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// The log's name as logrotate reads it: double quotes when it has spaces or other
/// characters logrotate's parser splits on. Glob characters cannot be made literal.
fn logrotate_path(path: &str) -> Result<String, String> {
    if path.contains(['*', '?', '[']) {
        return Err(format!(
            "{path} contains a glob character (* ? [), which logrotate would expand"
        ));
    }
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@%~".contains(&b));
    match (plain, path.contains('"'), path.contains('\'')) {
        (true, _, _) => Ok(path.to_string()),
        (false, false, _) => Ok(format!("\"{path}\"")),
        (false, true, false) => Ok(format!("'{path}'")),
        (false, true, true) => Err(format!(
            "{path} contains both kinds of quotes, which a logrotate config cannot spell"
        )),
    }
}

/// The postrotate command that makes exactly this writer reopen: systemd's own signal
/// to the unit's main process when it is one, else a pkill anchored on its whole command
/// line (`pkill -x COMM` would signal every process of that name on the host).
fn hup_command(w: &LogWriter<'_>) -> Option<String> {
    if let Some(u) = w.unit {
        return Some(format!(
            "systemctl kill -s HUP --kill-whom=main {}",
            shell_quote(u)
        ));
    }
    if w.cmdline.is_empty() || w.cmdline.starts_with('[') {
        return None;
    }
    Some(format!(
        "pkill -HUP -x -f {}",
        shell_quote(&ere_literal(w.cmdline))
    ))
}

const STANZA_COMMON: &str =
    "    size 100M\n    rotate 5\n    compress\n    delaycompress\n    missingok\n    notifempty\n";

/// A logrotate stanza for the lasting fix, chosen by what the writer can do:
/// - it handles SIGHUP: rename + `create` (with the file's own mode and owner) + a SIGHUP
///   to that one process in postrotate;
/// - it cannot reopen but writes with O_APPEND: `copytruncate`;
/// - neither: no stanza (`Err` says why): a HUP would kill it, and a truncate would
///   leave it writing at its old offset, a sparse file that keeps its apparent size.
pub fn logrotate_stanza(path: &str, w: LogWriter<'_>) -> Result<String, String> {
    let name = logrotate_path(path)?;
    let signal = if w.handles_hup == Some(true) {
        hup_command(&w)
    } else {
        None
    };
    let (why, tail) = if let Some(cmd) = signal {
        let mut create = "    create".to_string();
        if let Some(m) = w.mode {
            create.push_str(&format!(" {m:04o}"));
            // logrotate takes an owner only after a mode, a group only after an owner;
            // what is left out it copies from the log at rotation time.
            if let Some(u) = w.uid {
                create.push_str(&format!(" {u}"));
                if let Some(g) = w.gid {
                    create.push_str(&format!(" {g}"));
                }
            }
        }
        (
            format!(
                "# pid {} ({}) reopens its log on SIGHUP: rename, create a new one like it, signal that process alone",
                w.pid, w.comm
            ),
            format!("{create}\n    postrotate\n        {cmd} || true\n    endscript\n"),
        )
    } else if w.append {
        (
            format!(
                "# pid {} ({}) {} but writes with O_APPEND: copy then truncate. logrotate's copytruncate can lose the lines \
                 written between its copy and its truncate (iowhy rotate --copytruncate does not)",
                w.pid,
                w.comm,
                match w.handles_hup {
                    Some(true) => "handles SIGHUP, but its command line is unknown,",
                    Some(false) => "cannot be told to reopen (a SIGHUP would kill it)",
                    None => "may not reopen on SIGHUP (its signal handlers could not be read)",
                }
            ),
            "    copytruncate\n".to_string(),
        )
    } else {
        return Err(format!(
            "pid {} ({}) {} and does not write with O_APPEND, so logrotate has no safe way: create + a signal would {}, \
             and copytruncate would leave it writing at its old offset (a sparse file that keeps its size). Fix the \
             program: reopen the log on SIGHUP, or open it with O_APPEND (or log to stdout and let journald or the runtime \
             rotate)",
            w.pid,
            w.comm,
            match w.handles_hup {
                Some(true) =>
                    "handles SIGHUP but its command line is unknown (no way to signal it alone)",
                Some(false) => "has no SIGHUP handler",
                None => "may have no SIGHUP handler (its signal handlers could not be read)",
            },
            if w.handles_hup == Some(false) {
                "kill it"
            } else {
                "kill it or leave it writing the rotated file"
            }
        ));
    };
    Ok(format!("{why}\n{name} {{\n{STANZA_COMMON}{tail}}}"))
}

/// The remediation line with the stanza (a heredoc into /etc/logrotate.d), or a comment
/// saying why there is none.
pub fn logrotate_step(path: &str, w: LogWriter<'_>) -> String {
    let file = w.comm.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    match logrotate_stanza(path, w) {
        Ok(st) => format!(
            "cat > /etc/logrotate.d/iowhy-{file} <<'EOF'  # lasting fix: rotate by size\n{st}\nEOF"
        ),
        Err(why) => step("# no logrotate stanza", &format!("lasting fix: {why}")),
    }
}

/// The lasting fix for a process holding deleted files: restart it, or — only if it
/// handles SIGHUP — ask it to reopen its files.
pub fn restart_step(pid: u32, handles_hup: Option<bool>) -> String {
    match handles_hup {
        Some(true) => step(
            format!(
                "systemctl restart <unit of pid {pid}>  # or, since it handles SIGHUP: kill -HUP {pid}"
            ),
            "lasting: make the process close or reopen its files",
        ),
        Some(false) => step(
            format!("systemctl restart <unit of pid {pid}>"),
            "lasting: make the process close its files (not kill -HUP: it has no handler, the signal would terminate it)",
        ),
        None => step(
            format!("systemctl restart <unit of pid {pid}>"),
            "lasting: make the process close its files (kill -HUP only if it handles SIGHUP: iowhy rotate checks)",
        ),
    }
}

#[cfg(test)]
#[path = "remedy_tests.rs"]
mod tests;
