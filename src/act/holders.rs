//! Who holds a file open, by inode — and who might without iowhy being able to tell. A
//! process whose fd table (or an fd's open mode) cannot be read is an *unknown* holder:
//! a truncate or a removal must not assume it is not writing the file. Without root,
//! other users' processes are all unknown.

use anyhow::Result;

use crate::parse::fdinfo;
use crate::parse::fdlink::FdKind;
use crate::roots::Roots;
use crate::source::{Collector, FdPolicy, Origin, ProcessOptions, SnapshotOptions};
pub use crate::wire::act::Unknown;

use super::{Target, target};

/// A process with the file open, and how.
#[derive(Clone, Debug)]
pub struct Holder {
    pub pid: u32,
    pub fd: i32,
    pub writable: bool,
    pub append: bool,
    pub target: Target,
}

#[derive(Clone, Debug, Default)]
pub struct Holders {
    pub open: Vec<Holder>,
    pub unknown: Vec<Unknown>,
}

/// How many unknown holders a message names before "and N more".
const NAMED_UNKNOWN: usize = 5;

impl Holders {
    pub fn writers(&self) -> Vec<Holder> {
        self.open.iter().filter(|h| h.writable).cloned().collect()
    }

    #[cfg(test)]
    /// Nobody has it open, as far as anyone can tell.
    fn is_free(&self) -> bool {
        self.open.is_empty() && self.unknown.is_empty()
    }

    /// The unknown holders that iowhy could see by running as root: these must stop a
    /// truncate or a removal. Those refused even to root stay unknown however iowhy runs;
    /// callers note them and rely on their own checks (the size under the freeze).
    pub fn blocking(&self) -> Holders {
        Holders {
            open: self.open.clone(),
            unknown: self
                .unknown
                .iter()
                .filter(|u| !u.denied_to_root)
                .cloned()
                .collect(),
        }
    }

    /// "pid 12 (app): its open files could not be read, ..." for a message.
    pub fn unknown_summary(&self) -> String {
        let mut v: Vec<String> = self
            .unknown
            .iter()
            .take(NAMED_UNKNOWN)
            .map(|u| format!("pid {} ({}): {}", u.pid, u.comm, u.why))
            .collect();
        if self.unknown.len() > NAMED_UNKNOWN {
            v.push(format!("and {} more", self.unknown.len() - NAMED_UNKNOWN));
        }
        v.join("; ")
    }
}

/// The process that held the file at scan time, read again for acting on it — or `None`
/// when it is gone, or when its pid now has another start time: a pid reused during the
/// machine-wide scan is another process, which must not get the SIGHUP or the SIGSTOP.
/// (From here on, `ProcHandle` pins it by pidfd against this same start time.)
fn same_process(roots: &Roots, pid: u32, scanned_start_ticks: u64) -> Option<Target> {
    target(roots, pid)
        .ok()
        .filter(|t| t.start_ticks == scanned_start_ticks)
}

/// Every process holding (dev, ino) open, and those that might. `path` is the file's name
/// as processes spell it: an fd that names it but cannot be stat'ed is unknown.
pub fn scan(roots: &Roots, dev: (u32, u32), ino: u64, path: &str) -> Result<Holders> {
    let mut c = Collector::new(Origin::Live(roots.clone()))?;
    let s = c.snapshot(&SnapshotOptions {
        processes: Some(ProcessOptions {
            fds: FdPolicy::All,
            threads: false,
            details: false,
            only: None,
            known: None,
        }),
        mounts: false,
        block: false,
        containers: false,
        carry: None,
    })?;
    let me = std::process::id();
    let root = s.euid == 0;
    let mut h = Holders::default();
    for p in &s.processes {
        // Kernel threads hold no files; a zombie has closed all of its own; iowhy knows
        // what it holds itself.
        if p.kthread || matches!(p.state, 'Z' | 'X') || p.pid == me {
            continue;
        }
        let Some(fds) = &p.fds else {
            h.unknown.push(Unknown {
                pid: p.pid,
                comm: p.comm.clone(),
                why: if root {
                    "its open files cannot be read even by root (non-dumpable, or another user namespace)".into()
                } else {
                    "its open files could not be read (run as root to see them)".into()
                },
                denied_to_root: root,
            });
            continue;
        };
        for f in fds {
            match f.stat {
                Some(st) if (st.dev_major, st.dev_minor) == dev && st.ino == ino => {
                    let Some(flags) = f.flags else {
                        h.unknown.push(Unknown {
                            pid: p.pid,
                            comm: p.comm.clone(),
                            why: format!(
                                "has it open as fd {}, but how (read or write) could not be read",
                                f.fd
                            ),
                            denied_to_root: false,
                        });
                        continue;
                    };
                    let Some(t) = same_process(roots, p.pid, p.start_ticks) else {
                        continue;
                    };
                    h.open.push(Holder {
                        pid: p.pid,
                        fd: f.fd,
                        writable: fdinfo::is_writable(flags),
                        append: flags & fdinfo::O_APPEND != 0,
                        target: t,
                    });
                }
                None if f.kind == FdKind::Path && f.target == path => {
                    h.unknown.push(Unknown {
                        pid: p.pid,
                        comm: p.comm.clone(),
                        why: format!("fd {} names it but could not be stat'ed", f.fd),
                        denied_to_root: false,
                    });
                }
                _ => {}
            }
        }
    }
    Ok(h)
}

/// Is the file at `p` free (no holder, none unknown that root could see)? `Err` says who
/// holds it or why that cannot be known. A file that does not exist is free.
pub fn free(roots: &Roots, p: &std::path::Path, host_spelling: &str) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return Ok(());
    };
    let dev = (rustix::fs::major(m.dev()), rustix::fs::minor(m.dev()));
    let h = scan(roots, dev, m.ino(), host_spelling)
        .map_err(|e| format!("{e:#}"))?
        .blocking();
    if let Some(o) = h.open.first() {
        return Err(format!(
            "still open in pid {} ({}) as fd {}",
            o.pid, o.target.comm, o.fd
        ));
    }
    if !h.unknown.is_empty() {
        return Err(format!(
            "its holders cannot all be known: {}",
            h.unknown_summary()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A real child process holding a real file: found by inode, with its open mode.
    #[test]
    fn finds_a_child_holding_the_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("held.log");
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdout(std::process::Stdio::from(f))
            .spawn()
            .unwrap();
        let m = std::fs::metadata(&path).unwrap();
        let dev = (rustix::fs::major(m.dev()), rustix::fs::minor(m.dev()));
        let roots = Roots::default();
        let h = scan(&roots, dev, m.ino(), path.to_str().unwrap()).unwrap();
        let w = h
            .writers()
            .into_iter()
            .find(|w| w.pid == child.id())
            .expect("the child holds it");
        assert_eq!(w.fd, 1);
        assert!(w.append && w.writable);
        assert!(free(&roots, &path, path.to_str().unwrap()).is_err_and(|e| e.contains("fd 1")));
        let _ = child.kill();
        let _ = child.wait();
        // Reaped: nobody holds it (as root, or when every process is ours to read).
        let h = scan(&roots, dev, m.ino(), path.to_str().unwrap()).unwrap();
        assert!(h.open.iter().all(|o| o.pid != child.id()));
        assert!(free(&roots, &d.path().join("absent"), "absent").is_ok());
    }

    /// A stat line as the kernel writes it, with the start time (field 22) given.
    fn stat_line(pid: u32, start_ticks: u64) -> String {
        let mut f: Vec<String> = vec![pid.to_string(), "(app (x))".into(), "S".into()];
        f.extend((4..=52).map(|i| {
            if i == 22 {
                start_ticks.to_string()
            } else {
                "0".into()
            }
        }));
        f.join(" ") + "\n"
    }

    #[test]
    fn a_pid_reused_since_the_scan_is_not_a_holder() {
        let d = tempfile::tempdir().unwrap();
        let roots = Roots::new(d.path().join("proc"), d.path().join("sys"), d.path());
        std::fs::create_dir_all(d.path().join("proc/42")).unwrap();
        std::fs::write(d.path().join("proc/42/stat"), stat_line(42, 5000)).unwrap();
        let t = same_process(&roots, 42, 5000).expect("the process the scan saw");
        assert_eq!((t.pid, t.comm.as_str()), (42, "app (x)"));
        // The scan saw pid 42 start at 4000; /proc now shows 5000: another process.
        assert!(same_process(&roots, 42, 4000).is_none());
        assert!(same_process(&roots, 43, 5000).is_none(), "gone");
    }

    #[test]
    fn summary_names_a_few() {
        let h = Holders {
            open: Vec::new(),
            unknown: (1..=7)
                .map(|pid| Unknown {
                    pid,
                    comm: "x".into(),
                    why: "its open files could not be read".into(),
                    denied_to_root: false,
                })
                .collect(),
        };
        let s = h.unknown_summary();
        assert!(s.starts_with("pid 1 (x): its open files"));
        assert!(s.ends_with("and 2 more"), "{s}");
        assert!(!h.is_free());
    }

    #[test]
    fn only_holders_root_could_see_block() {
        let u = |pid, denied_to_root| Unknown {
            pid,
            comm: "x".into(),
            why: "its open files could not be read".into(),
            denied_to_root,
        };
        let h = Holders {
            open: Vec::new(),
            unknown: vec![u(1, true), u(42, false)],
        };
        let b = h.blocking();
        assert_eq!(b.unknown.len(), 1);
        assert_eq!(b.unknown[0].pid, 42);
        assert!(!h.is_free());
        let h = Holders {
            open: Vec::new(),
            unknown: vec![u(1, true)],
        };
        assert!(
            h.blocking().is_free(),
            "refused even to root: noted, not blocking"
        );
    }
}
