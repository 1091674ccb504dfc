//! Syscall numbers the sampling layer needs to name what `/proc/PID/task/TID/syscall`
//! shows (the file gives the number only). From the kernel's syscall tables
//! (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h).

use super::model::{SyncKind, WriteKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Write(WriteKind),
    Sync(SyncKind),
    Other,
}

#[cfg(target_arch = "x86_64")]
pub fn classify(nr: i64) -> Call {
    match nr {
        1 => Call::Write(WriteKind::Write),
        18 => Call::Write(WriteKind::Pwrite64),
        20 => Call::Write(WriteKind::Writev),
        296 => Call::Write(WriteKind::Pwritev),
        328 => Call::Write(WriteKind::Pwritev2),
        74 => Call::Sync(SyncKind::Fsync),
        75 => Call::Sync(SyncKind::Fdatasync),
        277 => Call::Sync(SyncKind::SyncFileRange),
        26 => Call::Sync(SyncKind::Msync),
        162 => Call::Sync(SyncKind::Sync),
        306 => Call::Sync(SyncKind::Syncfs),
        _ => Call::Other,
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub fn classify(nr: i64) -> Call {
    // The generic table (arm64, riscv64, loongarch64).
    match nr {
        64 => Call::Write(WriteKind::Write),
        68 => Call::Write(WriteKind::Pwrite64),
        66 => Call::Write(WriteKind::Writev),
        70 => Call::Write(WriteKind::Pwritev),
        287 => Call::Write(WriteKind::Pwritev2),
        82 => Call::Sync(SyncKind::Fsync),
        83 => Call::Sync(SyncKind::Fdatasync),
        84 => Call::Sync(SyncKind::SyncFileRange),
        227 => Call::Sync(SyncKind::Msync),
        81 => Call::Sync(SyncKind::Sync),
        267 => Call::Sync(SyncKind::Syncfs),
        _ => Call::Other,
    }
}

/// `/proc/PID/task/TID/syscall`: `NR a0 a1 a2 a3 a4 a5 sp pc` while in a syscall,
/// `-1 sp pc` when blocked outside one, `running` when on a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    In { nr: i64, arg0: u64 },
    Blocked,
    Running,
}

pub fn parse_syscall_file(text: &str) -> Option<State> {
    let t = text.trim();
    if t == "running" {
        return Some(State::Running);
    }
    let mut it = t.split_ascii_whitespace();
    let nr: i64 = it.next()?.parse().ok()?;
    if nr < 0 {
        return Some(State::Blocked);
    }
    let a0 = it.next()?;
    let arg0 = u64::from_str_radix(a0.trim_start_matches("0x"), 16).ok()?;
    Some(State::In { nr, arg0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_lines() {
        // Captured from a fsync-logger thread on kernel 6.18.
        assert_eq!(
            parse_syscall_file("74 0x3 0x7ffd1c2a 0x0 0x0 0x0 0x0 0x7ffd1c2a8e38 0x7f2b1a3f1e5b\n"),
            Some(State::In { nr: 74, arg0: 3 })
        );
        assert_eq!(parse_syscall_file("running\n"), Some(State::Running));
        assert_eq!(
            parse_syscall_file("-1 0x7ffd 0x7f2b\n"),
            Some(State::Blocked)
        );
        assert_eq!(parse_syscall_file(""), None);
        assert_eq!(parse_syscall_file("x 0x1"), None);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn names() {
        assert_eq!(classify(74), Call::Sync(SyncKind::Fsync));
        assert_eq!(classify(1), Call::Write(WriteKind::Write));
        assert_eq!(classify(0), Call::Other);
    }
}
