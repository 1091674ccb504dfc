//! `/proc/PID/task/TID/stack` and `/proc/PID/task/TID/syscall`: where a sleeping task is
//! in the kernel, and which system call (with which arguments) it is in. Both need root
//! (ptrace-read access).

use super::ParseError;

/// Function names of a kernel stack, innermost first: `[<0>] anon_pipe_write+0x332/0x6c0`
/// → `anon_pipe_write`. (The addresses read `<0>` without kptr access.)
pub fn parse_stack(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = if l.starts_with('[') {
                l[l.find(']')? + 1..].trim()
            } else {
                l
            };
            let name = rest.split(['+', ' ']).next()?.trim();
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// A system call in progress: its number and the first arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    pub nr: i64,
    pub args: Vec<u64>,
}

/// `1 0x1 0x564ed07f3b60 0x2000 ...` (number, six args, sp, pc); `running` when the task
/// runs, `-1 sp pc` when it sleeps outside a system call. Those two give `Ok(None)`.
pub fn parse_syscall(text: &str) -> Result<Option<Syscall>, ParseError> {
    let t = text.trim();
    if t == "running" || t.is_empty() {
        return Ok(None);
    }
    let mut it = t.split_ascii_whitespace();
    let nr: i64 = super::num(it.next(), "syscall number")?;
    if nr < 0 {
        return Ok(None);
    }
    let args = it
        .take(6)
        .map(|a| {
            u64::from_str_radix(a.trim_start_matches("0x"), 16)
                .map_err(|_| ParseError::new("syscall argument", a.to_string()))
        })
        .collect::<Result<Vec<u64>, _>>()?;
    Ok(Some(Syscall { nr, args }))
}

/// The fd a write-family call is writing to (write, writev, pwrite64, pwritev, pwritev2):
/// all take it as their first argument. Numbers are this architecture's (libc's `SYS_*`),
/// the architecture the capture was made on.
pub fn write_fd(s: &Syscall) -> Option<i32> {
    let is_write = [
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_pwrite64,
        libc::SYS_pwritev,
        libc::SYS_pwritev2,
    ]
    .contains(&s.nr);
    let fd = *s.args.first()?;
    (is_write && fd <= i32::MAX as u64).then_some(fd as i32)
}

/// Functions a task blocked writing into a full pipe sleeps in. The kernel split
/// `pipe_write` into `anon_pipe_write` (6.x) with `fifo_pipe_write` wrapping it for named
/// pipes; `pipe_wait_writable` is the splice path. wchan names the innermost.
pub const PIPE_WRITE_WAITS: &[&str] = &[
    "pipe_write",
    "anon_pipe_write",
    "fifo_pipe_write",
    "pipe_wait_writable",
];
/// And a task waiting for data in a pipe.
pub const PIPE_READ_WAITS: &[&str] = &[
    "pipe_read",
    "anon_pipe_read",
    "fifo_pipe_read",
    "pipe_wait_readable",
];

pub fn is_pipe_write_wait(f: &str) -> bool {
    PIPE_WRITE_WAITS.contains(&f)
}

pub fn is_pipe_read_wait(f: &str) -> bool {
    PIPE_READ_WAITS.contains(&f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_stack_and_syscall() {
        // Captured on this VM (kernel 6.18): `yes > fifo` with a reader that never reads.
        let st = parse_stack(
            "[<0>] anon_pipe_write+0x332/0x6c0\n[<0>] fifo_pipe_write+0x12/0x130\n[<0>] vfs_write+0x398/0x450\n[<0>] ksys_write+0xba/0xe0\n[<0>] do_syscall_64+0x71/0x280\n[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e\n",
        );
        assert_eq!(st[0], "anon_pipe_write");
        assert_eq!(st[1], "fifo_pipe_write");
        assert_eq!(st.len(), 6);
        assert!(is_pipe_write_wait(&st[0]));
        let sc = parse_syscall(
            "1 0x1 0x564ed07f3b60 0x2000 0x7f1e1ab2d4f0 0x0 0x0 0x7ffe8b944838 0x7f1e1ac0c350\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(sc.nr, libc::SYS_write);
        assert_eq!(write_fd(&sc), Some(1));
    }

    #[test]
    fn not_in_a_write() {
        assert_eq!(parse_syscall("running\n").unwrap(), None);
        assert_eq!(parse_syscall("-1 0x7ffe 0x7f1e\n").unwrap(), None);
        let sc = parse_syscall(&format!("{} 0x3 0x0 0x0", libc::SYS_read))
            .unwrap()
            .unwrap();
        assert_eq!(write_fd(&sc), None);
        assert!(parse_syscall("x 0x1").is_err());
        assert!(parse_syscall("1 0xzz").is_err());
        assert_eq!(parse_stack(""), Vec::<String>::new());
        assert_eq!(parse_stack("garbage\n[<0>] \n"), vec!["garbage"]);
        assert!(!is_pipe_write_wait("do_nanosleep"));
        assert!(is_pipe_read_wait("anon_pipe_read"));
    }
}
