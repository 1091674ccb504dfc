//! cglimit against directories laid out like cgroupfs, with the kernel's semantics for
//! the files iowhy writes modelled by `Fake`: `io.max` merges per device and key (a line
//! with every key at `max` disappears), writing a pid to `cgroup.procs` moves it out of
//! every other group, `mkdir` populates the interface files, `rmdir` of a group with
//! processes fails with EBUSY. Any write can be made to fail, to test the rollbacks.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

struct Fake {
    mount: PathBuf,
    /// Fail the Nth (1-based) write to the file of this name.
    fail: Option<(&'static str, usize)>,
    counts: RefCell<BTreeMap<String, usize>>,
    /// The start time /proc shows for pid 42 now (`target()` started at 4242).
    start_ticks_now: u64,
}

impl Fake {
    fn new(mount: &Path, fail: Option<(&'static str, usize)>) -> Fake {
        Fake {
            mount: mount.to_path_buf(),
            fail,
            counts: RefCell::new(BTreeMap::new()),
            start_ticks_now: 4242,
        }
    }

    fn all_procs_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let p = dir.join("cgroup.procs");
        if p.exists() {
            out.push(p);
        }
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                Fake::all_procs_files(&e.path(), out);
            }
        }
    }
}

impl CgroupFs for Fake {
    fn still_target(&self, _pid: u32, start_ticks: u64) -> Result<(), String> {
        if start_ticks == self.start_ticks_now {
            Ok(())
        } else {
            Err("pid 42 is now another process (its start time changed)".into())
        }
    }

    fn write(&self, file: &Path, value: &str) -> std::io::Result<()> {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let n = {
            let mut c = self.counts.borrow_mut();
            let n = c.entry(name.clone()).or_insert(0);
            *n += 1;
            *n
        };
        if self.fail == Some((name.as_str(), n)) || self.fail == Some(("*", n)) {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        match name.as_str() {
            "io.max" => {
                let mut lines: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
                for l in std::fs::read_to_string(file)?.lines() {
                    let mut it = l.split_whitespace();
                    let dev = it.next().unwrap().to_string();
                    let kv = it
                        .map(|x| {
                            let (k, v) = x.split_once('=').unwrap();
                            (k.to_string(), v.to_string())
                        })
                        .collect();
                    lines.insert(dev, kv);
                }
                let mut it = value.split_whitespace();
                let dev = it.next().unwrap().to_string();
                let e = lines.entry(dev.clone()).or_insert_with(|| {
                    ["rbps", "wbps", "riops", "wiops"]
                        .iter()
                        .map(|k| (k.to_string(), "max".to_string()))
                        .collect()
                });
                for x in it {
                    let (k, v) = x.split_once('=').unwrap();
                    e.insert(k.to_string(), v.to_string());
                }
                if e.values().all(|v| v == "max") {
                    lines.remove(&dev);
                }
                let text: String = lines
                    .iter()
                    .map(|(d, kv)| {
                        format!(
                            "{d} rbps={} wbps={} riops={} wiops={}\n",
                            kv["rbps"], kv["wbps"], kv["riops"], kv["wiops"]
                        )
                    })
                    .collect();
                std::fs::write(file, text)
            }
            "cgroup.procs" => {
                let pid: u32 = value.trim().parse().unwrap();
                let mut files = Vec::new();
                Fake::all_procs_files(&self.mount, &mut files);
                for f in files {
                    let kept: String = cgroup::procs(f.parent().unwrap())
                        .into_iter()
                        .filter(|p| *p != pid)
                        .map(|p| format!("{p}\n"))
                        .collect();
                    std::fs::write(&f, kept)?;
                }
                let mut now = std::fs::read_to_string(file)?;
                now.push_str(&format!("{pid}\n"));
                std::fs::write(file, now)
            }
            _ => std::fs::write(file, value),
        }
    }

    fn mkdir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir(dir)?;
        std::fs::write(dir.join("cgroup.procs"), "")?;
        std::fs::write(dir.join("io.max"), "")
    }

    fn rmdir(&self, dir: &Path) -> std::io::Result<()> {
        if !cgroup::procs(dir).is_empty() {
            return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
        }
        std::fs::remove_dir_all(dir)
    }
}

/// A cgroup2 tree at `sys/fs/cgroup/unified` (the hybrid layout of this host) with pid
/// 42 in `group`. `groups`: (group, cgroup.procs, io.max).
fn tree(
    group: &str,
    root_subtree: &str,
    groups: &[(&str, &str, &str)],
) -> (tempfile::TempDir, Roots) {
    let d = tempfile::tempdir().unwrap();
    let roots = Roots::new(d.path().join("proc"), d.path().join("sys"), d.path());
    let mount = d.path().join("sys/fs/cgroup/unified");
    std::fs::create_dir_all(&mount).unwrap();
    std::fs::write(mount.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
    std::fs::write(mount.join("cgroup.subtree_control"), root_subtree).unwrap();
    std::fs::write(mount.join("cgroup.procs"), "1\n").unwrap();
    for (g, procs, io_max) in groups {
        let dir = cgroup::join(&mount, g).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.procs"), procs).unwrap();
        if *g != "/" {
            std::fs::write(dir.join("io.max"), io_max).unwrap();
        }
    }
    std::fs::create_dir_all(d.path().join("proc/42")).unwrap();
    std::fs::write(d.path().join("proc/42/cgroup"), format!("0::{group}\n")).unwrap();
    (d, roots)
}

fn target() -> Target {
    Target {
        pid: 42,
        comm: "writer".into(),
        state: 'S',
        kthread: false,
        start_ticks: 4242,
        sig_caught: 0,
        sig_ignored: 0,
    }
}

fn wbps(n: u64) -> Limits {
    Limits {
        write_bps: Some(n),
        ..Default::default()
    }
}

const SVC: &str = "/system.slice/app.service";
const BEFORE: &str = "8:0 rbps=1048576 wbps=max riops=max wiops=max\n";

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn v2_own_group_apply_and_undo_are_exact() {
    let (d, roots) = tree(SVC, "io memory", &[(SVC, "42\n", BEFORE)]);
    let io_max = d
        .path()
        .join("sys/fs/cgroup/unified/system.slice/app.service/io.max");
    let st = prepare(&roots, &target(), &[(8, 0), (8, 16)], wbps(10 << 20)).unwrap();
    assert_eq!(st.hierarchy, Hierarchy::V2);
    assert_eq!(st.created_group, None);
    assert_eq!(read(&io_max), BEFORE, "prepare changes nothing");
    let fs = Fake::new(&d.path().join("sys/fs/cgroup/unified"), None);
    apply(&fs, &st).unwrap();
    assert_eq!(
        read(&io_max),
        "8:0 rbps=1048576 wbps=10485760 riops=max wiops=max\n\
         8:16 rbps=max wbps=10485760 riops=max wiops=max\n",
        "the write limit is added; the existing read limit stays"
    );
    undo(&fs, &st).unwrap();
    assert_eq!(read(&io_max), BEFORE, "undo restores exactly");
    undo(&fs, &st).unwrap();
    assert_eq!(read(&io_max), BEFORE, "and twice is harmless");
}

#[test]
fn v2_a_limit_someone_set_tighter_is_not_loosened() {
    let tight = "8:0 rbps=max wbps=4096 riops=max wiops=max\n";
    let (d, roots) = tree(SVC, "io", &[(SVC, "42\n", tight)]);
    let io_max = d
        .path()
        .join("sys/fs/cgroup/unified/system.slice/app.service/io.max");
    let st = prepare(&roots, &target(), &[(8, 0)], wbps(10 << 20)).unwrap();
    let fs = Fake::new(&d.path().join("sys/fs/cgroup/unified"), None);
    apply(&fs, &st).unwrap();
    assert_eq!(read(&io_max), tight);
    undo(&fs, &st).unwrap();
    assert_eq!(read(&io_max), tight);
}

#[test]
fn v2_a_failed_write_rolls_back() {
    let (d, roots) = tree(SVC, "io", &[(SVC, "42\n", BEFORE)]);
    let io_max = d
        .path()
        .join("sys/fs/cgroup/unified/system.slice/app.service/io.max");
    let st = prepare(&roots, &target(), &[(8, 0), (8, 16)], wbps(10 << 20)).unwrap();
    // The first device's line is written, the second's fails.
    let fs = Fake::new(&d.path().join("sys/fs/cgroup/unified"), Some(("io.max", 2)));
    let e = apply(&fs, &st).unwrap_err();
    assert!(format!("{e:#}").contains("was restored"), "{e:#}");
    assert_eq!(read(&io_max), BEFORE, "rolled back exactly");
}

#[test]
fn v2_an_intent_never_applied_undoes_to_nothing() {
    // iowhy saved its intent and died before applying: undo must change nothing.
    let (d, roots) = tree(SVC, "io", &[(SVC, "42\n", BEFORE)]);
    let io_max = d
        .path()
        .join("sys/fs/cgroup/unified/system.slice/app.service/io.max");
    let st = prepare(&roots, &target(), &[(8, 0), (8, 16)], wbps(1 << 20)).unwrap();
    undo(
        &Fake::new(&d.path().join("sys/fs/cgroup/unified"), None),
        &st,
    )
    .unwrap();
    assert_eq!(read(&io_max), BEFORE);
}

#[test]
fn v2_a_shared_group_is_refused_with_the_rule() {
    let (_d, roots) = tree(SVC, "io", &[(SVC, "42\n43\n", "")]);
    let e = prepare(&roots, &target(), &[(8, 0)], wbps(1 << 20)).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("no-internal-processes"), "{msg}");
    assert!(msg.contains("8:0 rbps=max wbps=1048576"), "{msg}");
}

#[test]
fn v2_processes_below_the_group_are_refused() {
    let (_d, roots) = tree(
        SVC,
        "io",
        &[
            (SVC, "42\n", ""),
            ("/system.slice/app.service/worker", "77\n", ""),
        ],
    );
    let e = prepare(&roots, &target(), &[(8, 0)], wbps(1 << 20)).unwrap_err();
    assert!(e.to_string().contains("groups below it"), "{e}");
}

#[test]
fn v2_in_the_root_group_a_child_is_made_and_removed() {
    let (d, roots) = tree("/", "io memory", &[]);
    let mount = d.path().join("sys/fs/cgroup/unified");
    std::fs::write(mount.join("cgroup.procs"), "1\n42\n").unwrap();
    let st = prepare(&roots, &target(), &[(8, 0)], wbps(10 << 20)).unwrap();
    let child = mount.join("iowhy-throttle-42");
    assert_eq!(st.created_group.as_deref(), Some(child.as_path()));
    assert!(!child.exists(), "prepare changes nothing");
    let fs = Fake::new(&mount, None);
    apply(&fs, &st).unwrap();
    assert_eq!(
        read(&child.join("io.max")),
        "8:0 rbps=max wbps=10485760 riops=max wiops=max\n"
    );
    assert_eq!(cgroup::procs(&child), vec![42]);
    assert_eq!(cgroup::procs(&mount), vec![1]);
    undo(&fs, &st).unwrap();
    assert!(!child.exists());
    assert_eq!(cgroup::procs(&mount), vec![1, 42], "moved back");
    // Moving the process fails: the child made for it goes again.
    let fs = Fake::new(&mount, Some(("cgroup.procs", 1)));
    assert!(apply(&fs, &st).is_err());
    assert!(!child.exists());
    assert_eq!(cgroup::procs(&mount), vec![1, 42]);
}

#[test]
fn v2_root_without_io_for_its_children_is_refused() {
    let (_d, roots) = tree("/", "memory pids", &[]);
    let e = prepare(&roots, &target(), &[(8, 0)], wbps(1 << 20)).unwrap_err();
    assert!(
        e.to_string()
            .contains("not enabled for the root's children"),
        "{e}"
    );
}

#[test]
fn v1_a_failed_move_removes_the_group() {
    let d = tempfile::tempdir().unwrap();
    let roots = Roots::new(d.path().join("proc"), d.path().join("sys"), d.path());
    let blkio = d.path().join("sys/fs/cgroup/blkio");
    std::fs::create_dir_all(blkio.join("user.slice")).unwrap();
    std::fs::write(blkio.join("blkio.throttle.write_bps_device"), "").unwrap();
    std::fs::write(blkio.join("user.slice/cgroup.procs"), "42\n").unwrap();
    std::fs::create_dir_all(d.path().join("proc/42")).unwrap();
    std::fs::write(
        d.path().join("proc/42/cgroup"),
        "7:blkio:/user.slice\n0::/\n",
    )
    .unwrap();
    let st = prepare(&roots, &target(), &[(254, 0)], wbps(1 << 20)).unwrap();
    let child = blkio.join("user.slice/iowhy-throttle-42");
    assert_eq!(st.created_group.as_deref(), Some(child.as_path()));
    let fs = Fake::new(&blkio, Some(("cgroup.procs", 1)));
    assert!(apply(&fs, &st).is_err());
    assert!(!child.exists());
    assert_eq!(cgroup::procs(&blkio.join("user.slice")), vec![42]);
    let fs = Fake::new(&blkio, None);
    apply(&fs, &st).unwrap();
    assert_eq!(
        read(&child.join("blkio.throttle.write_bps_device")),
        "254:0 1048576"
    );
    assert_eq!(cgroup::procs(&child), vec![42]);
    undo(&fs, &st).unwrap();
    assert!(!child.exists());
    assert_eq!(cgroup::procs(&blkio.join("user.slice")), vec![42]);
}

#[test]
fn a_pid_reused_before_the_move_is_not_throttled() {
    // The writer exited during the measurement or the prompt, and another process got
    // pid 42: its start time differs, so nothing is moved and the group made goes again.
    let (d, roots) = tree("/", "io memory", &[]);
    let mount = d.path().join("sys/fs/cgroup/unified");
    std::fs::write(mount.join("cgroup.procs"), "1\n42\n").unwrap();
    let st = prepare(&roots, &target(), &[(8, 0)], wbps(10 << 20)).unwrap();
    let mut fs = Fake::new(&mount, None);
    fs.start_ticks_now = 9999;
    let e = apply(&fs, &st).unwrap_err();
    assert!(format!("{e:#}").contains("another process"), "{e:#}");
    assert!(!mount.join("iowhy-throttle-42").exists());
    assert_eq!(
        cgroup::procs(&mount),
        vec![1, 42],
        "the new pid 42 stays put"
    );
}
