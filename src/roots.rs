//! The one place that knows where the kernel's files live.
//!
//! Every path iowhy reads is joined onto one of three roots: `--proc-root` (default
//! `/proc`), `--sys-root` (default `/sys`) and `--root` (default `/`), the node_exporter
//! convention (`--path.procfs`). The same code therefore runs on the host, in a DaemonSet
//! with the host mounted at `/host`, and in tests against fixture trees. No other module
//! spells `/proc` or `/sys`.

use std::path::{Component, Path, PathBuf};

pub const DEFAULT_PROC: &str = "/proc";
pub const DEFAULT_SYS: &str = "/sys";
pub const DEFAULT_ROOT: &str = "/";

/// Where procfs, sysfs and the host's `/` are mounted, as seen by iowhy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roots {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub root: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            proc: PathBuf::from(DEFAULT_PROC),
            sys: PathBuf::from(DEFAULT_SYS),
            root: PathBuf::from(DEFAULT_ROOT),
        }
    }
}

impl Roots {
    pub fn new(
        proc: impl Into<PathBuf>,
        sys: impl Into<PathBuf>,
        root: impl Into<PathBuf>,
    ) -> Self {
        Roots {
            proc: proc.into(),
            sys: sys.into(),
            root: root.into(),
        }
    }

    /// All three roots under one directory (`DIR/proc`, `DIR/sys`, `DIR/root`): the layout
    /// of a captured fixture time point.
    pub fn under(dir: &Path) -> Self {
        Roots::new(dir.join("proc"), dir.join("sys"), dir.join("root"))
    }

    /// True when iowhy reads the live kernel of the machine it runs on.
    #[cfg(test)]
    fn is_live_default(&self) -> bool {
        *self == Roots::default()
    }

    /// `<proc-root>/<rel>`, e.g. `proc("diskstats")`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.proc.join(rel)
    }

    /// `<proc-root>/<pid>`.
    pub fn pid_dir(&self, pid: u32) -> PathBuf {
        self.proc.join(pid.to_string())
    }

    /// `<proc-root>/<pid>/fd/<fd>`: the magic link through which a file can be stat'ed,
    /// read or truncated even after it was deleted.
    pub fn fd_link(&self, pid: u32, fd: i32) -> PathBuf {
        self.proc.join(format!("{pid}/fd/{fd}"))
    }

    /// The mount table of the host's mount namespace. With the default roots that is our
    /// own (`self`); with a foreign proc root (a DaemonSet's `/host/proc`) `self` would be
    /// the container's namespace, so PID 1's table is the one that describes the host.
    pub fn mountinfo_candidates(&self) -> Vec<PathBuf> {
        if self.proc == Path::new(DEFAULT_PROC) {
            vec![self.proc("self/mountinfo"), self.proc("1/mountinfo")]
        } else {
            vec![self.proc("1/mountinfo"), self.proc("self/mountinfo")]
        }
    }

    /// `<sys-root>/<rel>`, e.g. `sys("block")`.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sys.join(rel)
    }

    /// An absolute path of the host (a mountpoint, a log file) under `--root`.
    pub fn host(&self, abs: &Path) -> PathBuf {
        let mut out = self.root.clone();
        for c in abs.components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::ParentDir => out.push(".."),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        out
    }

    /// The inverse of [`Roots::host`]: a path under `--root` as the host spells it.
    pub fn host_path_of(&self, under_root: &Path) -> PathBuf {
        match under_root.strip_prefix(&self.root) {
            Ok(rel) => Path::new(DEFAULT_ROOT).join(rel),
            Err(_) => under_root.to_path_buf(),
        }
    }

    /// How the host spells a path under one of the roots (`<proc-root>/1/io` →
    /// `/proc/1/io`): reports name what the host has, not where a fixture or a DaemonSet
    /// mount happens to be.
    pub fn host_spelling(&self, p: &Path) -> String {
        for (root, canon) in [
            (&self.proc, DEFAULT_PROC),
            (&self.sys, DEFAULT_SYS),
            (&self.root, DEFAULT_ROOT),
        ] {
            if let Ok(rel) = p.strip_prefix(root) {
                return Path::new(canon).join(rel).display().to_string();
            }
        }
        p.display().to_string()
    }

    /// The cgroup v2 (unified) hierarchy: `/sys/fs/cgroup` on pure v2 hosts,
    /// `/sys/fs/cgroup/unified` on hybrid ones.
    pub fn cgroup2_candidates(&self) -> Vec<PathBuf> {
        vec![self.sys("fs/cgroup/unified"), self.sys("fs/cgroup")]
    }

    /// The cgroup v1 hierarchy of one controller (`blkio`, `freezer`, ...).
    pub fn cgroup1(&self, controller: &str) -> PathBuf {
        self.sys(&format!("fs/cgroup/{controller}"))
    }

    /// The tracefs mount, where tracepoint ids live.
    pub fn tracefs_candidates(&self) -> Vec<PathBuf> {
        vec![self.sys("kernel/tracing"), self.sys("kernel/debug/tracing")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_join_under_root() {
        let r = Roots::new("/host/proc", "/host/sys", "/host");
        assert_eq!(
            r.host(Path::new("/var/log/app.log")),
            PathBuf::from("/host/var/log/app.log")
        );
        assert_eq!(
            r.host_path_of(Path::new("/host/var/log")),
            PathBuf::from("/var/log")
        );
        assert_eq!(r.proc("diskstats"), PathBuf::from("/host/proc/diskstats"));
        assert_eq!(r.fd_link(7, 3), PathBuf::from("/host/proc/7/fd/3"));
        assert_eq!(r.host_spelling(Path::new("/host/proc/1/io")), "/proc/1/io");
        assert_eq!(r.host_spelling(Path::new("/host/var/log/x")), "/var/log/x");
        assert_eq!(
            r.mountinfo_candidates()[0],
            PathBuf::from("/host/proc/1/mountinfo")
        );
        assert!(!r.is_live_default());
        assert!(Roots::default().is_live_default());
        assert_eq!(
            Roots::default().mountinfo_candidates()[0],
            PathBuf::from("/proc/self/mountinfo")
        );
    }
}
