//! Remediation steps shared by several rules. Each step is a command with its reason as a
//! trailing comment, so that a person can paste it and a script can read it.
//!
//! The safety rules from the seed incident live here, once: never `rm` a file that a
//! process holds open (the space is not freed until the last fd closes); rename and make
//! the writer reopen, or truncate through `/proc/PID/fd/N`, and say why.

use crate::units::shell_quote;

pub fn step(cmd: impl AsRef<str>, why: &str) -> String {
    format!("{}  # {why}", cmd.as_ref())
}

/// Rotate a live log without losing lines: rename (same filesystem, keeps the inode
/// and its data), create the new file, ask the writer to reopen.
/// What we know about a log's writer, for choosing how to rotate it.
#[derive(Clone, Copy, Debug)]
pub struct LogWriter<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub fd: i32,
    /// Opened with O_APPEND: safe to truncate in place.
    pub append: bool,
    /// Has a SIGHUP handler; `Some(false)` means a HUP would kill it; `None` unknown.
    pub handles_hup: Option<bool>,
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
        v.push(step(
            format!("mv {q} {q}.1 && install -m 0640 /dev/null {q} && kill -HUP {pid}"),
            "by hand: the rename keeps every line; HUP asks the writer to reopen — only if it handles SIGHUP (iowhy rotate checks)",
        ));
    } else {
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

/// A logrotate stanza for the lasting fix: `create` + a SIGHUP in postrotate when the
/// writer reopens on SIGHUP, `copytruncate` only for an O_APPEND writer that cannot.
pub fn logrotate_stanza(path: &str, w: LogWriter<'_>) -> String {
    let tail = if w.handles_hup != Some(false) || !w.append {
        format!(
            "    create 0640\n    postrotate\n        pkill -HUP -x {} || true\n    endscript\n",
            shell_quote(w.comm)
        )
    } else {
        "    copytruncate\n".to_string()
    };
    let why = if w.handles_hup != Some(false) || !w.append {
        "# the writer reopens its log on SIGHUP"
    } else {
        "# the writer cannot reopen but uses O_APPEND: copy then truncate (lines written during the copy can be lost)"
    };
    format!(
        "{why}\n{path} {{\n    size 100M\n    rotate 5\n    compress\n    delaycompress\n    missingok\n    notifempty\n{tail}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(append: bool, hup: Option<bool>) -> LogWriter<'static> {
        LogWriter {
            pid: 7,
            comm: "logger",
            fd: 3,
            append,
            handles_hup: hup,
        }
    }

    #[test]
    fn rotation_advice_follows_what_the_writer_can_do() {
        let s = rotate_steps("/var/log/a.log", w(true, Some(false)));
        assert!(s.iter().any(|x| x.starts_with("# do not: kill -HUP 7")));
        assert!(!s.iter().any(|x| x.starts_with("mv ")));
        assert!(s.iter().any(|x| x.contains("--copytruncate")));
        let s = rotate_steps("/var/log/a.log", w(false, Some(true)));
        assert!(s.iter().any(|x| x.starts_with("mv ")));
        assert!(
            !s.iter().any(|x| x.contains("truncate -s 0")),
            "never truncate a non-append writer's file"
        );
        assert!(logrotate_stanza("/var/log/a.log", w(true, Some(false))).contains("copytruncate"));
        let st = logrotate_stanza("/var/log/a.log", w(true, Some(true)));
        assert!(st.contains("create 0640") && st.contains("pkill -HUP -x logger"));
        assert!(!st.contains("copytruncate"));
    }
}
