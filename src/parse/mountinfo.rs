//! `/proc/PID/mountinfo` (proc(5)):
//! `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
//! Optional fields before ` - ` vary in number; paths are octal-escaped.

use serde::{Deserialize, Serialize};

use super::{ParseError, num, unescape_octal};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem that is mounted here (for bind mounts, not `/`).
    pub root: String,
    pub mountpoint: String,
    pub options: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

pub fn parse_line(line: &str) -> Result<MountEntry, ParseError> {
    let (left, right) = line
        .split_once(" - ")
        .ok_or_else(|| ParseError::new("mountinfo line", "no ' - ' separator"))?;
    let mut l = left.split(' ');
    let mount_id = num(l.next(), "mount id")?;
    let parent_id = num(l.next(), "parent id")?;
    let (major, minor) = l
        .next()
        .and_then(|s| s.split_once(':'))
        .ok_or_else(|| ParseError::new("mountinfo major:minor", "missing"))?;
    let root = l
        .next()
        .ok_or_else(|| ParseError::new("mountinfo root", "missing"))?;
    let mountpoint = l
        .next()
        .ok_or_else(|| ParseError::new("mountinfo mountpoint", "missing"))?;
    let options = l.next().unwrap_or("");
    let mut r = right.split(' ');
    let fstype = r
        .next()
        .ok_or_else(|| ParseError::new("mountinfo fstype", "missing"))?;
    let source = r.next().unwrap_or("none");
    let super_options = r.next().unwrap_or("");
    Ok(MountEntry {
        mount_id,
        parent_id,
        major: num(Some(major), "mount major")?,
        minor: num(Some(minor), "mount minor")?,
        root: unescape_octal(root),
        mountpoint: unescape_octal(mountpoint),
        options: options.to_string(),
        fstype: fstype.to_string(),
        source: unescape_octal(source),
        super_options: super_options.to_string(),
    })
}

pub fn parse(text: &str) -> Result<Vec<MountEntry>, ParseError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_lines() {
        // Captured on kernel 6.18.
        let t = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n";
        let m = parse(t).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].major, m[0].minor), (254, 0));
        assert_eq!(m[0].mountpoint, "/");
        assert_eq!(m[0].source, "/dev/vda");
        assert_eq!(m[1].fstype, "cgroup2");
        assert_eq!(m[2].root, "/mnt1");
        assert_eq!(m[2].fstype, "ext3");
    }

    #[test]
    fn escaped_mountpoint() {
        let m = parse_line(r"50 27 7:0 / /tmp/my\040disk rw - ext4 /dev/loop0 rw").unwrap();
        assert_eq!(m.mountpoint, "/tmp/my disk");
    }

    #[test]
    fn malformed() {
        assert!(parse_line("27 1 254:0 / /").is_err());
        assert!(parse_line("x 1 254:0 / / rw - ext4 a b").is_err());
        assert!(parse_line("27 1 2540 / / rw - ext4 a b").is_err());
    }
}
