//! The guardian does not share iowhy's fate: a kill of iowhy's whole cgroup (what an OOM
//! group kill, `systemctl kill` or a pod deletion does) leaves it to resume the target;
//! and should the guardian die as well, the next iowhy run resumes it from the record.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{bin, live_lock, live_ready, ok};
use super::{Worker, all_threads_stopped, state, wait_for};

const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// A cgroup v2 group of the test's own, removed on drop (once its processes are gone).
struct Group(PathBuf);

impl Group {
    fn new(name: &str) -> Option<Group> {
        let root = Path::new(UNIFIED);
        if !root.join("cgroup.procs").exists() {
            eprintln!("SKIPPED: no cgroup v2 hierarchy at {UNIFIED}");
            return None;
        }
        let g = root.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&g).unwrap();
        Some(Group(g))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = wait_for(Duration::from_secs(5), || {
            std::fs::remove_dir(&self.0).is_ok()
        });
    }
}

/// `iowhy pause PID --for 60s`, started inside `group`.
fn pause_in(group: &Path, pid: u32) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && exec {} pause {pid} --for 60s --measure 200ms",
            group.display(),
            bin()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The pid of the guardian of `target` whose parent is `iowhy`.
fn guardian_of(iowhy: u32, target: u32) -> Option<u32> {
    let kids = std::fs::read_to_string(format!("/proc/{iowhy}/task/{iowhy}/children")).ok()?;
    kids.split_whitespace()
        .filter_map(|k| k.parse::<u32>().ok())
        .find(|k| {
            std::fs::read(format!("/proc/{k}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                c.contains(" guardian ") && c.contains(&format!("--pid {target} "))
            })
        })
}

fn logger(dir: &Path, name: &str) -> Worker {
    let w = Worker::start(&[
        "numbered-logger",
        "--path",
        dir.join(format!("{name}.log")).to_str().unwrap(),
        "--rate",
        "1000",
        "--name",
        name,
    ]);
    std::thread::sleep(Duration::from_millis(200));
    w
}

#[test]
fn killing_iowhys_whole_cgroup_leaves_the_guardian_to_resume_the_target() {
    if !live_ready(&["sh"]) {
        return;
    }
    let _l = live_lock();
    let Some(g) = Group::new("iowhy-test-pause") else {
        return;
    };
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let w = logger(dir.path(), "grouped-logger");
    let mut p = pause_in(&g.0, w.pid());
    assert!(
        wait_for(Duration::from_secs(10), || all_threads_stopped(w.pid())),
        "paused"
    );
    let guardian = guardian_of(p.id(), w.pid()).expect("a guardian");
    let cg = std::fs::read_to_string(format!("/proc/{guardian}/cgroup")).unwrap();
    assert!(
        cg.contains("0::/iowhy-guardian\n"),
        "the guardian left iowhy's group: {cg}"
    );
    // Lowering it needs CAP_SYS_RESOURCE, which a sandbox may withhold even from root.
    let can_lower = Command::new("sh")
        .args(["-c", "echo -1000 > /proc/self/oom_score_adj"])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    let adj = std::fs::read_to_string(format!("/proc/{guardian}/oom_score_adj")).unwrap();
    if can_lower {
        assert_eq!(
            adj.trim(),
            "-1000",
            "the OOM killer takes anything else first"
        );
    } else {
        eprintln!("note: oom_score_adj cannot be lowered here (no CAP_SYS_RESOURCE): not checked");
    }
    // What an OOM group kill or `systemctl kill -s KILL` does to iowhy's group.
    std::fs::write(g.0.join("cgroup.kill"), "1").unwrap();
    let killed = Instant::now();
    let _ = p.wait();
    assert!(
        wait_for(Duration::from_secs(2), || state(w.pid()) != 'T'),
        "still stopped 2 s after iowhy's group was killed"
    );
    assert!(killed.elapsed() < Duration::from_secs(2));
    // The guardian finished its job and removed its record.
    assert!(wait_for(Duration::from_secs(2), || !Path::new(&format!(
        "/proc/{guardian}"
    ))
    .exists()
        || state(guardian) == 'Z'));
}

#[test]
fn a_target_left_stopped_by_a_dead_guardian_is_resumed_by_the_next_run() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let w = logger(dir.path(), "orphaned-logger");
    let other = logger(dir.path(), "other-logger");
    let mut p = Command::new(bin())
        .args([
            "pause",
            &w.pid().to_string(),
            "--for",
            "60s",
            "--measure",
            "200ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || all_threads_stopped(w.pid())),
        "paused"
    );
    let guardian = guardian_of(p.id(), w.pid()).expect("a guardian");
    let kill = |pid: u32| {
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap()
    };
    // The double failure: the guardian dies first, then iowhy.
    kill(guardian);
    std::thread::sleep(Duration::from_millis(200));
    p.kill().unwrap();
    p.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        state(w.pid()),
        'T',
        "left stopped: nobody is left to resume it"
    );
    let records: Vec<_> = std::fs::read_dir("/run/iowhy/paused")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{}-", w.pid()))
        })
        .collect();
    assert_eq!(
        records.len(),
        1,
        "the guardian recorded what it kept stopped"
    );
    // Any later pause (of another process) resumes it first.
    ok(&[
        "pause",
        &other.pid().to_string(),
        "--for",
        "100ms",
        "--measure",
        "100ms",
    ]);
    assert!(
        wait_for(Duration::from_secs(2), || state(w.pid()) != 'T'),
        "resumed by the next run"
    );
    assert!(!records[0].path().exists(), "the record is gone");
}
