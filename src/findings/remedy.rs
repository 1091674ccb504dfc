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
pub fn rotate_steps(path: &str, pid: u32, fd: i32, append: bool) -> Vec<String> {
    let q = shell_quote(path);
    let mut v = vec![
        step(
            format!("iowhy rotate {q} --dry-run"),
            "see which processes hold it and what rotating would do",
        ),
        step(
            format!("iowhy rotate {q}"),
            "rename + create + signal the writers, then verify by inode that each reopened",
        ),
        step(
            format!("mv {q} {q}.1 && install -m 0640 /dev/null {q} && kill -HUP {pid}"),
            "by hand: the rename keeps every line; HUP asks the writer to reopen — only if it handles SIGHUP (the default action kills it; iowhy rotate checks)",
        ),
    ];
    if append {
        v.push(step(
            format!("iowhy rotate {q} --copytruncate"),
            "if it cannot reopen: it uses O_APPEND, so copy then truncate, with the writer stopped for the final instant (nothing lost)",
        ));
        v.push(step(
            format!("truncate -s 0 /proc/{pid}/fd/{fd}"),
            "only if the old lines are expendable: the writer uses O_APPEND, so it continues at the new end without a hole",
        ));
    }
    v.push(step(
        format!("# never: rm {q}"),
        "the writer keeps the deleted inode open and the space is not freed",
    ));
    v
}

/// A logrotate stanza for the lasting fix.
pub fn logrotate_stanza(path: &str, comm: &str, append: bool) -> String {
    let tail = if append {
        "    copytruncate   # the writer uses O_APPEND: truncating in place is safe\n".to_string()
    } else {
        format!(
            "    create 0640\n    postrotate\n        pkill -HUP -x {} || true   # the writer must reopen its log on SIGHUP\n    endscript\n",
            shell_quote(comm)
        )
    };
    format!(
        "{path} {{\n    size 100M\n    rotate 5\n    compress\n    delaycompress\n    missingok\n    notifempty\n{tail}}}"
    )
}
