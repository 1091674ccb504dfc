//! The target of a `/proc/PID/fd/N` link, as readlink(2) gives it.
//!
//! Regular paths are absolute. The kernel appends ` (deleted)` to a path whose last link
//! was removed; pipes, sockets and anonymous inodes read `pipe:[INODE]`,
//! `socket:[INODE]`, `anon_inode:[eventfd]` or `anon_inode:inotify`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    /// A path in the filesystem (a regular file, a device node, a directory, a FIFO).
    Path,
    Pipe,
    Socket,
    AnonInode,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdLink {
    pub kind: FdKind,
    /// The path without the ` (deleted)` suffix; for pipes and sockets the raw text.
    pub path: String,
    /// The inode number in `pipe:[N]` / `socket:[N]`.
    pub inode: Option<u64>,
    /// The link text ended in ` (deleted)`. A file literally named `x (deleted)` looks the
    /// same: callers confirm with the link count from stat when they have it.
    pub deleted_suffix: bool,
}

const DELETED: &str = " (deleted)";

pub fn parse(target: &str) -> FdLink {
    let bracket_inode = |prefix: &str| {
        target
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse().ok())
    };
    if target.starts_with('/') {
        let (path, deleted_suffix) = match target.strip_suffix(DELETED) {
            Some(p) => (p.to_string(), true),
            None => (target.to_string(), false),
        };
        return FdLink {
            kind: FdKind::Path,
            path,
            inode: None,
            deleted_suffix,
        };
    }
    let (kind, inode) = if target.starts_with("pipe:") {
        (FdKind::Pipe, bracket_inode("pipe:"))
    } else if target.starts_with("socket:") {
        (FdKind::Socket, bracket_inode("socket:"))
    } else if target.starts_with("anon_inode:") {
        (FdKind::AnonInode, None)
    } else {
        (FdKind::Other, None)
    };
    FdLink {
        kind,
        path: target.to_string(),
        inode,
        deleted_suffix: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let l = parse("/var/log/app/output.log");
        assert_eq!((l.kind, l.deleted_suffix), (FdKind::Path, false));
        let l = parse("/var/log/app/old.log (deleted)");
        assert_eq!(l.path, "/var/log/app/old.log");
        assert!(l.deleted_suffix);
        let l = parse("pipe:[6910]");
        assert_eq!((l.kind, l.inode), (FdKind::Pipe, Some(6910)));
        assert_eq!(parse("socket:[42]").inode, Some(42));
        assert_eq!(parse("anon_inode:[eventfd]").kind, FdKind::AnonInode);
        assert_eq!(parse("anon_inode:inotify").kind, FdKind::AnonInode);
        assert_eq!(parse("pipe:[x]").inode, None);
        assert_eq!(parse("").kind, FdKind::Other);
        assert_eq!(parse("/memfd:buf (deleted)").kind, FdKind::Path);
    }
}
