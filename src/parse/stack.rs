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

/// The fd a task works on, for the calls whose first argument is the fd they write or
/// sync: what a task stuck in D is stuck on.
pub fn file_fd(s: &Syscall) -> Option<i32> {
    let on_fd = [
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_pwrite64,
        libc::SYS_pwritev,
        libc::SYS_pwritev2,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        libc::SYS_sync_file_range,
        libc::SYS_ftruncate,
        libc::SYS_fallocate,
    ]
    .contains(&s.nr);
    let fd = *s.args.first()?;
    (on_fd && fd <= i32::MAX as u64).then_some(fd as i32)
}

/// Functions a task blocked writing into a full pipe sleeps in. The kernel split
/// `pipe_write` into `anon_pipe_write` (6.x) with `fifo_pipe_write` wrapping it for named
/// pipes; `pipe_wait_writable` is the splice path. wchan names the innermost.
const PIPE_WRITE_WAITS: &[&str] = &[
    "pipe_write",
    "anon_pipe_write",
    "fifo_pipe_write",
    "pipe_wait_writable",
];
/// And a task waiting for data in a pipe.
const PIPE_READ_WAITS: &[&str] = &[
    "pipe_read",
    "anon_pipe_read",
    "fifo_pipe_read",
    "pipe_wait_readable",
];

/// Before 5.6 ("pipe: use exclusive waits when reading or writing") both `pipe_read`
/// and `pipe_write` slept in `pipe_wait()`, so wchan reads `pipe_wait` for a writer
/// waiting for room and for a reader waiting for data alike (and for a FIFO `open`
/// waiting for its other end, through `wait_for_partner`).
pub const PIPE_WAIT_EITHER: &str = "pipe_wait";

pub fn is_pipe_write_wait(f: &str) -> bool {
    PIPE_WRITE_WAITS.contains(&f)
}

/// The reads of the read family (read, readv, pread64, preadv, preadv2).
fn is_read_call(nr: i64) -> bool {
    [
        libc::SYS_read,
        libc::SYS_readv,
        libc::SYS_pread64,
        libc::SYS_preadv,
        libc::SYS_preadv2,
    ]
    .contains(&nr)
}

/// Is a task whose wchan is [`PIPE_WAIT_EITHER`] writing? The stack says it when
/// readable (`pipe_write` above `pipe_wait`, or `pipe_read`); else the system call: a
/// write on one of its pipe fds (`is_pipe_fd`). Without either (no root) nothing tells a
/// writer from a reader, and a reader must not be reported: `false`.
pub fn pipe_wait_is_write(
    stack: Option<&[String]>,
    syscall: Option<&Syscall>,
    is_pipe_fd: impl Fn(i32) -> bool,
) -> bool {
    if let Some(st) = stack.filter(|s| !s.is_empty()) {
        if st.iter().any(|f| is_pipe_write_wait(f)) {
            return true;
        }
        if st
            .iter()
            .any(|f| is_pipe_read_wait(f) || f == "wait_for_partner")
        {
            return false;
        }
    }
    match syscall {
        Some(sc) if is_read_call(sc.nr) => false,
        Some(sc) => write_fd(sc).is_some_and(is_pipe_fd),
        None => false,
    }
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

    // /proc/PID/stack of a task in pipe_wait on a 4.19/5.4 kernel, in the format the
    // kernel prints (offsets as in such a kernel's stack; the call chain is the one of
    // fs/pipe.c before 5.6: pipe_write -> pipe_wait, pipe_read -> pipe_wait).
    const OLD_WRITER_STACK: &str = "[<0>] pipe_wait+0x6e/0xa0\n[<0>] pipe_write+0x1f6/0x430\n[<0>] __vfs_write+0x3a/0x190\n[<0>] vfs_write+0xab/0x190\n[<0>] ksys_write+0x5a/0xd0\n[<0>] do_syscall_64+0x55/0x110\n[<0>] entry_SYSCALL_64_after_hwframe+0x44/0xa9\n";
    const OLD_READER_STACK: &str = "[<0>] pipe_wait+0x6e/0xa0\n[<0>] pipe_read+0x21f/0x2c0\n[<0>] new_sync_read+0x10d/0x180\n[<0>] __vfs_read+0x29/0x40\n[<0>] vfs_read+0x8e/0x130\n[<0>] ksys_read+0x5a/0xd0\n[<0>] do_syscall_64+0x55/0x110\n[<0>] entry_SYSCALL_64_after_hwframe+0x44/0xa9\n";

    #[test]
    fn pipe_wait_before_5_6_is_told_apart() {
        let pipe_fd = |fd: i32| fd == 1 || fd == 0;
        let w = parse_stack(OLD_WRITER_STACK);
        let r = parse_stack(OLD_READER_STACK);
        assert_eq!(
            (w[0].as_str(), r[0].as_str()),
            (PIPE_WAIT_EITHER, PIPE_WAIT_EITHER)
        );
        // The stack alone decides, whatever the syscall file says.
        assert!(pipe_wait_is_write(Some(&w), None, pipe_fd));
        assert!(!pipe_wait_is_write(Some(&r), None, pipe_fd));
        // Without the stack: /proc/PID/task/TID/syscall, `write(1, ...)` vs `read(0, ...)`.
        let write = parse_syscall(&format!(
            "{} 0x1 0x55d0c1a2b000 0x2000 0x0 0x0 0x0 0x7ffd3c1e4a08 0x7f3b2c9e1504\n",
            libc::SYS_write
        ))
        .unwrap()
        .unwrap();
        let read = parse_syscall(&format!(
            "{} 0x0 0x55d0c1a2b000 0x20000 0x0 0x0 0x0 0x7ffd3c1e4a08 0x7f3b2c9e1461\n",
            libc::SYS_read
        ))
        .unwrap()
        .unwrap();
        assert!(pipe_wait_is_write(None, Some(&write), pipe_fd));
        assert!(!pipe_wait_is_write(None, Some(&read), pipe_fd));
        // A write to an fd that is not a pipe (a file) is not a pipe wait.
        assert!(!pipe_wait_is_write(None, Some(&write), |fd| fd == 5));
        // Nothing readable: a reader must not be reported.
        assert!(!pipe_wait_is_write(None, None, pipe_fd));
        assert!(!pipe_wait_is_write(Some(&[]), None, pipe_fd));
        // A FIFO open waiting for its other end.
        let open = parse_stack(
            "[<0>] pipe_wait+0x6e/0xa0\n[<0>] wait_for_partner+0x19/0x50\n[<0>] fifo_open+0x27b/0x2b0\n",
        );
        assert!(!pipe_wait_is_write(Some(&open), Some(&write), pipe_fd));
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
