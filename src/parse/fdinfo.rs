//! `/proc/PID/fdinfo/FD`: `pos`, `flags` (octal), `mnt_id`, and since 5.x `ino`.
//! Further lines (eventfd counts, inotify watches, epoll items) are ignored.

use serde::{Deserialize, Serialize};

use super::ParseError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdInfo {
    pub pos: u64,
    /// The open flags, as given to open(2) (`O_APPEND`, `O_SYNC`, ...), plus `O_CLOEXEC`.
    pub flags: u32,
    pub mnt_id: Option<u32>,
    pub ino: Option<u64>,
}

pub fn parse(text: &str) -> Result<FdInfo, ParseError> {
    let mut pos = None;
    let mut flags = None;
    let mut out = FdInfo::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k {
            "pos" => pos = v.parse().ok(),
            "flags" => flags = u32::from_str_radix(v, 8).ok(),
            "mnt_id" => out.mnt_id = v.parse().ok(),
            "ino" => out.ino = v.parse().ok(),
            _ => {}
        }
    }
    out.pos = pos.ok_or_else(|| ParseError::new("fdinfo", "no pos line"))?;
    out.flags = flags.ok_or_else(|| ParseError::new("fdinfo", "no flags line"))?;
    Ok(out)
}

/// The open flags that matter for I/O diagnosis, by name. The values differ between
/// architectures (O_DIRECT is 0o40000 on x86-64 but 0o200000 on arm64), so they come from
/// the libc crate for the target; `O_SYNC` includes the `O_DSYNC` bit.
pub const O_ACCMODE: u32 = libc::O_ACCMODE as u32;
pub const O_WRONLY: u32 = libc::O_WRONLY as u32;
pub const O_RDWR: u32 = libc::O_RDWR as u32;
pub const O_APPEND: u32 = libc::O_APPEND as u32;
pub const O_DSYNC: u32 = libc::O_DSYNC as u32;
pub const O_DIRECT: u32 = libc::O_DIRECT as u32;
pub const O_SYNC: u32 = libc::O_SYNC as u32;
pub const O_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
pub const O_CREAT: u32 = libc::O_CREAT as u32;
pub const O_TRUNC: u32 = libc::O_TRUNC as u32;

pub fn is_writable(flags: u32) -> bool {
    matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR)
}

/// Names of the interesting flags set, in a stable order: access mode first.
pub fn flag_names(flags: u32) -> Vec<&'static str> {
    let mut v = vec![match flags & O_ACCMODE {
        O_WRONLY => "O_WRONLY",
        O_RDWR => "O_RDWR",
        _ => "O_RDONLY",
    }];
    if flags & O_APPEND != 0 {
        v.push("O_APPEND");
    }
    if flags & O_SYNC == O_SYNC {
        v.push("O_SYNC");
    } else if flags & O_DSYNC != 0 {
        v.push("O_DSYNC");
    }
    if flags & O_DIRECT != 0 {
        v.push("O_DIRECT");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_fdinfo() {
        // Captured on kernel 6.18: `cat /proc/self/fdinfo/0`.
        let f = parse("pos:\t0\nflags:\t0100000\nmnt_id:\t24\nino:\t3\n").unwrap();
        assert_eq!(f.pos, 0);
        assert_eq!(f.flags, 0o100000);
        assert_eq!(f.mnt_id, Some(24));
        assert_eq!(f.ino, Some(3));
        assert_eq!(flag_names(f.flags), vec!["O_RDONLY"]);
    }

    #[test]
    fn flag_values_are_the_targets() {
        // The kernel's own values for this architecture (include/uapi/asm-generic/fcntl.h,
        // arch/arm64/include/uapi/asm/fcntl.h).
        #[cfg(target_arch = "x86_64")]
        assert_eq!((O_DIRECT, O_DSYNC, O_SYNC), (0o40000, 0o10000, 0o4010000));
        #[cfg(target_arch = "aarch64")]
        assert_eq!((O_DIRECT, O_DSYNC, O_SYNC), (0o200000, 0o10000, 0o4010000));
        assert_eq!(O_SYNC & O_DSYNC, O_DSYNC);
        assert_eq!(O_CLOEXEC, 0o2000000);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn flags_decode() {
        let f = parse("pos:\t123\nflags:\t02102001\nmnt_id:\t27\n").unwrap();
        assert_eq!(f.ino, None);
        assert!(is_writable(f.flags));
        // 02102001 = O_CLOEXEC | O_LARGEFILE | O_APPEND | O_WRONLY
        assert_eq!(flag_names(f.flags), vec!["O_WRONLY", "O_APPEND"]);
        assert_eq!(flag_names(0o4010001), vec!["O_WRONLY", "O_SYNC"]);
        assert_eq!(flag_names(0o10002), vec!["O_RDWR", "O_DSYNC"]);
        assert_eq!(flag_names(0o40001), vec!["O_WRONLY", "O_DIRECT"]);
    }

    #[test]
    fn missing_lines_are_errors() {
        assert!(parse("flags:\t01\n").is_err());
        assert!(parse("pos:\t1\n").is_err());
        assert!(parse("").is_err());
    }
}
