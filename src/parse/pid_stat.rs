//! `/proc/PID/stat` and `/proc/PID/task/TID/stat` (proc(5)).
//!
//! The second field is the command name in parentheses, and the name itself may contain
//! spaces and parentheses (`(a) (b)`): the name runs from the first `(` to the *last* `)`.
//! Everything after it is space separated. Fields are numbered as in proc(5), 1-based.

use serde::{Deserialize, Serialize};

use super::{ParseError, num};

/// `PF_KTHREAD` in the `flags` field (include/linux/sched.h): a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidStat {
    pub pid: u32,
    pub comm: String,
    /// One letter: R S D T t Z X I ...
    pub state: char,
    pub ppid: u32,
    pub flags: u64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub num_threads: u32,
    /// Start time after boot, in clock ticks: with the pid it identifies one process
    /// across samples even if the pid is reused.
    pub start_ticks: u64,
    /// Aggregated block I/O delays in clock ticks (field 42). Only meaningful when delay
    /// accounting is on (`kernel.task_delayacct`); `None` on kernels that lack the field.
    pub delayacct_blkio_ticks: Option<u64>,
}

impl PidStat {
    pub fn is_kthread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

pub fn parse(text: &str) -> Result<PidStat, ParseError> {
    let text = text.trim_end_matches(['\n', '\0']);
    let open = text
        .find('(')
        .ok_or_else(|| ParseError::new("stat", "no '(' before comm"))?;
    let close = text
        .rfind(')')
        .ok_or_else(|| ParseError::new("stat", "no ')' after comm"))?;
    if close < open {
        return Err(ParseError::new("stat", "')' before '('"));
    }
    let pid = num(Some(text[..open].trim()), "stat pid")?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_ascii_whitespace().collect();
    // rest[0] is field 3 (state); field n is rest[n - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    let state = field(3)
        .and_then(|s| s.chars().next())
        .ok_or_else(|| ParseError::new("stat state", "missing field"))?;
    Ok(PidStat {
        pid,
        comm,
        state,
        ppid: num(field(4), "stat ppid")?,
        flags: num(field(9), "stat flags")?,
        utime_ticks: num(field(14), "stat utime")?,
        stime_ticks: num(field(15), "stat stime")?,
        num_threads: num(field(20), "stat num_threads")?,
        start_ticks: num(field(22), "stat starttime")?,
        delayacct_blkio_ticks: field(42).and_then(|s| s.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Captured on the development VM (kernel 6.18): `cat /proc/self/stat`.
    const REAL: &str = "2772 (cat) R 2768 2768 1038 0 -1 4194304 103 0 0 0 0 0 0 0 20 0 1 0 344378 3133440 397 18446744073709551615 94592808120320 94592808140201 140725597996016 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94592808156208 94592808157824 94592964009984 140725598001889 140725598001909 140725598001909 140725598003179 0\n";

    #[test]
    fn real_line() {
        let s = parse(REAL).unwrap();
        assert_eq!(s.pid, 2772);
        assert_eq!(s.comm, "cat");
        assert_eq!(s.state, 'R');
        assert_eq!(s.ppid, 2768);
        assert_eq!(s.num_threads, 1);
        assert_eq!(s.start_ticks, 344378);
        assert_eq!(s.delayacct_blkio_ticks, Some(0));
        assert!(!s.is_kthread());
    }

    #[test]
    fn kthread_flag() {
        let line = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 1 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert!(parse(line).unwrap().is_kthread());
    }

    #[test]
    fn hostile_comm_with_parentheses_and_spaces() {
        let line = REAL.replace("(cat)", "(a) (b)");
        let s = parse(&line).unwrap();
        assert_eq!(s.comm, "a) (b");
        assert_eq!(s.state, 'R');
        assert_eq!(s.ppid, 2768);
        let line = REAL.replace("(cat)", "(()) D 1 2 ()");
        let s = parse(&line).unwrap();
        assert_eq!(s.comm, "()) D 1 2 (");
        assert_eq!(s.state, 'R');
    }

    #[test]
    fn old_kernel_without_delayacct_field() {
        let short: Vec<&str> = REAL.split(' ').take(41).collect();
        let s = parse(&short.join(" ")).unwrap();
        assert_eq!(s.delayacct_blkio_ticks, None);
    }

    #[test]
    fn truncated_is_an_error_not_a_panic() {
        for cut in 0..REAL.len() {
            let _ = parse(&REAL[..cut]);
        }
        assert!(parse("12 (x").is_err());
        assert!(parse("12 (x) R 1").is_err());
        assert!(parse("").is_err());
    }

    proptest! {
        #[test]
        // Any char but NUL: parentheses, spaces, newlines, non-ASCII (the byte-level
        // round trip, with invalid UTF-8, is in `parse::proptests`).
        fn any_comm_round_trips(comm in "[^\\x00]{0,15}") {
            let line = REAL.replace("(cat)", &format!("({comm})"));
            let s = parse(&line).unwrap();
            prop_assert_eq!(s.comm, comm);
            prop_assert_eq!(s.start_ticks, 344378);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }
    }
}
