//! Live (root): a real containerd container flooding its log, and a writer blocked on a
//! pipe nobody drains. `iowhy containers` and `iowhy diagnose` must attribute the flood
//! to the container (id, containerd namespace, shim) and name the blocked pipe's reader;
//! the labs must remove their containers, tasks, shims and files. Also: a writer blocked
//! on a named pipe (FIFO) behind a stopped reader, and the container lab's message when
//! containerd is missing or unreachable (and that it then leaves nothing behind). Bounded: each lab runs
//! at most 40 s, the flood at 4 MiB/s on a 512 MiB loop-device filesystem of its own.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, Reap, live_lock, live_ready, ok};
use iowhy::wire::containers::ContainersReport;
use iowhy::wire::diagnose::{FindingJson, Report};

/// containerd must be running (`.ci/run` starts it); a skip under IOWHY_REQUIRE_LIVE=1
/// is a failure, like every other missing piece.
fn containerd_ready() -> bool {
    if !live_ready(&[
        "ctr",
        "containerd",
        "runc",
        "busybox",
        "losetup",
        "mkfs.ext4",
    ]) {
        return false;
    }
    let up = Command::new("ctr")
        .args(["--connect-timeout", "3s", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if up {
        return true;
    }
    let msg = "live test needs a running containerd (`ctr version` failed)";
    if std::env::var("IOWHY_REQUIRE_LIVE").is_ok_and(|v| v == "1") {
        panic!("{msg} (IOWHY_REQUIRE_LIVE=1: a skip is a failure)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

fn json<T: serde::de::DeserializeOwned>(args: &[&str]) -> T {
    serde_json::from_str(&ok(args)).expect("contract JSON")
}

fn find<'a>(
    fs: &'a [FindingJson],
    kind: &str,
    pred: impl Fn(&FindingJson) -> bool,
) -> &'a FindingJson {
    fs.iter()
        .find(|f| f.kind == kind && pred(f))
        .unwrap_or_else(|| {
            panic!(
                "expected {kind}; got {:#?}",
                fs.iter()
                    .map(|f| (&f.kind, &f.severity, &f.subject, &f.summary))
                    .collect::<Vec<_>>()
            )
        })
}

/// A process is gone (or a zombie waiting for init to reap it).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: u32) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn flooding_container_is_attributed_reported_and_removed() {
    if !containerd_ready() {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["container-log-flood", "--duration", "40s"]);
    let id = format!("iowhy-flood-{}", lab.child.as_ref().unwrap().id());
    let log = lab.event.paths[0].clone();
    std::thread::sleep(Duration::from_secs(3));
    let r: ContainersReport = json(&["containers", "--duration", "2s", "--format", "json"]);
    let c = r
        .containers
        .iter()
        .find(|c| c.container.id == id)
        .unwrap_or_else(|| panic!("container {id} not in {:#?}", r.containers));
    assert_eq!(c.container.runtime, "containerd");
    assert_eq!(c.container.runtime_namespace.as_deref(), Some("iowhy-lab"));
    assert!(
        c.pids.contains(&lab.event.pids[0]),
        "{:?} lacks {}",
        c.pids,
        lab.event.pids[0]
    );
    let shim = c.shim_pid.expect("its shim");
    let l = c
        .logs
        .iter()
        .find(|l| l.path == log)
        .expect("the shim's log file");
    assert_eq!(l.writer_pid, Some(shim));
    assert!(l.growth_bytes_per_s.unwrap() > 1e6, "{l:?}");
    assert_eq!(l.rotation.state, "missing");
    let f = find(&r.findings, "container_log_flood", |f| {
        f.subject.container_id.as_deref() == Some(id.as_str())
    });
    assert_eq!(f.subject.path.as_deref(), Some(log.as_str()));
    assert_eq!(f.subject.mountpoint, lab.event.mountpoint);
    let d: Report = json(&["diagnose", "--duration", "2s", "--format", "json"]);
    find(&d.findings, "container_log_flood", |f| {
        f.subject.container_id.as_deref() == Some(id.as_str())
    });
    let sp = d
        .processes
        .iter()
        .find(|p| p.pid == shim)
        .expect("the shim writes: it is listed");
    let cj = sp.container.as_ref().expect("the shim's container object");
    assert_eq!(
        (cj.container.id.as_str(), cj.role.as_str()),
        (id.as_str(), "shim")
    );
    let (base, dev) = (lab.base.clone(), lab.event.device.clone());
    let stopped = lab.stop();
    assert_eq!(stopped.event, "stopped", "{stopped:?}");
    // Task, container and shim are gone; so are the files and the loop device.
    let ls = Command::new("ctr")
        .args(["-n", "iowhy-lab", "containers", "ls", "-q"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ls.stdout).contains(&id),
        "container {id} left behind"
    );
    let ls = Command::new("ctr")
        .args(["-n", "iowhy-lab", "tasks", "ls", "-q"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ls.stdout).contains(&id),
        "task {id} left behind"
    );
    assert!(wait_gone(shim), "shim {shim} still running");
    if let Some(b) = base {
        assert!(!Path::new(&b).exists(), "lab left {b} behind");
    }
    if let Some(dev) = dev {
        let backing = std::fs::read_to_string(format!("/sys/block/{dev}/loop/backing_file"))
            .unwrap_or_default();
        assert!(
            !backing.contains("iowhy-lab-"),
            "{dev} still attached to {backing}"
        );
    }
}

fn pipe_lab(reader: &str, state: &str) {
    let lab = Lab::start(&["pipe-block", "--duration", "30s", "--reader", reader]);
    let (writer, rd) = (lab.event.pids[0], lab.event.pids[1]);
    std::thread::sleep(Duration::from_secs(1));
    let d: Report = json(&["diagnose", "--duration", "2s", "--format", "json"]);
    let f = find(&d.findings, "pipe_blocked", |f| {
        f.subject.pid == Some(writer)
    });
    assert_eq!(f.subject.path.as_deref(), Some(lab.event.paths[0].as_str()));
    assert_eq!(f.evidence["reader_pid"].as_u64(), Some(u64::from(rd)));
    assert_eq!(f.evidence["reader_state"], state);
    assert!(
        f.evidence["fill_pct"].as_f64().unwrap() > 90.0,
        "{:?}",
        f.evidence
    );
    assert_eq!(f.severity, "critical", "{}", f.summary);
    let base = lab.base.clone();
    let stopped = lab.stop();
    assert_eq!(stopped.event, "stopped", "{stopped:?}");
    assert!(
        wait_gone(writer) && wait_gone(rd),
        "lab workers left running"
    );
    if let Some(b) = base {
        assert!(!Path::new(&b).exists(), "lab left {b} behind");
    }
}

#[test]
fn blocked_pipe_is_reported_with_its_reader() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    pipe_lab("stopped", "stopped");
    pipe_lab("idle", "not_reading");
}

#[test]
fn logrotate_accepts_the_stanza_we_print() {
    if !live_ready(&["logrotate"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("my app.log");
    std::fs::write(&log, "x\n").unwrap();
    let conf = dir.path().join("stanza.conf");
    let cmd = iowhy::findings::container::logrotate_cmd(log.to_str().unwrap(), 3, true, "x");
    let cmd = cmd.replace("> /etc/logrotate.d/x", &format!("> '{}'", conf.display()));
    let st = Command::new("sh").arg("-c").arg(&cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
    let out = Command::new("logrotate")
        .arg("-d")
        .arg("-s")
        .arg(dir.path().join("state"))
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "logrotate -d rejected:\n{}\n{err}",
        std::fs::read_to_string(&conf).unwrap()
    );
    assert!(
        err.contains("my app.log") || String::from_utf8_lossy(&out.stdout).contains("my app.log"),
        "{err}"
    );
    assert!(!err.contains("error"), "{err}");
}

/// The state letter of a process (`/proc/PID/stat` after the comm), and its wchan.
fn state_of(pid: u32) -> Option<(char, String)> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let c = st.rsplit(')').next()?.trim_start().chars().next()?;
    let w = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    Some((c, w))
}

fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

#[test]
fn fifo_writer_blocked_behind_a_stopped_reader() {
    if !live_ready(&["mkfifo", "sh", "yes", "sleep"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("queue.fifo");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    // The reader opens the FIFO and then never reads; the writer fills it. Each shell
    // opens the FIFO (the two opens wait for each other) and execs, keeping its pid.
    let mut reader = Reap(
        Command::new("sh")
            .args(["-c", "exec sleep 120 < \"$0\""])
            .arg(&fifo)
            .spawn()
            .unwrap(),
    );
    let mut writer = Reap(
        Command::new("sh")
            .args(["-c", "exec yes iowhy-fifo-test > \"$0\""])
            .arg(&fifo)
            .spawn()
            .unwrap(),
    );
    let (rpid, wpid) = (reader.id(), writer.id());
    let until = Instant::now() + Duration::from_secs(10);
    while !state_of(wpid).is_some_and(|(_, w)| w.contains("pipe_write") || w == "pipe_wait") {
        assert!(
            Instant::now() < until,
            "writer never blocked: {:?}",
            state_of(wpid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&reader, rustix::process::Signal::STOP);
    while state_of(rpid).is_none_or(|(s, _)| s != 'T') {
        assert!(
            Instant::now() < until,
            "reader not stopped: {:?}",
            state_of(rpid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let d: Report = json(&["diagnose", "--duration", "2s", "--format", "json"]);
    // Clean up before asserting: both are ours, by pid.
    signal(&writer, rustix::process::Signal::KILL);
    signal(&reader, rustix::process::Signal::KILL);
    let _ = writer.wait();
    let _ = reader.wait();
    let f = find(&d.findings, "pipe_blocked", |f| f.subject.pid == Some(wpid));
    // The fd link of a FIFO is its path.
    assert_eq!(
        f.subject.path.as_deref(),
        Some(
            fifo.canonicalize()
                .unwrap_or(fifo.clone())
                .to_str()
                .unwrap()
        )
    );
    assert_eq!(f.evidence["reader_pid"].as_u64(), Some(u64::from(rpid)));
    assert_eq!(f.evidence["reader_state"], "stopped");
    assert!(
        f.evidence["fill_pct"].as_f64().unwrap() > 90.0,
        "{:?}",
        f.evidence
    );
    assert_eq!(f.severity, "critical", "{}", f.summary);
    assert!(f.remediation[0].starts_with(&format!("kill -CONT {rpid}")));
    assert!(gone(wpid) && gone(rpid));
}

/// What a container lab could leave behind: its directories, loop devices, containers.
fn lab_traces() -> Vec<String> {
    let mut v: Vec<String> = ["/var/tmp", "/tmp"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path().display().to_string())
        .filter(|p| p.contains("iowhy-lab-"))
        .collect();
    if let Ok(o) = Command::new("losetup").arg("-a").output() {
        v.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("iowhy-lab-"))
                .map(str::to_string),
        );
    }
    if let Ok(o) = Command::new("ctr")
        .args([
            "--connect-timeout",
            "3s",
            "-n",
            "iowhy-lab",
            "containers",
            "ls",
            "-q",
        ])
        .output()
    {
        v.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    v.sort();
    v
}

#[test]
fn container_lab_says_clearly_when_containerd_is_missing() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let before = lab_traces();
    let lab = |env: (&str, &std::ffi::OsStr)| {
        Command::new(common::bin())
            .args(["lab", "container-log-flood", "--duration", "5s"])
            .env(env.0, env.1)
            .output()
            .unwrap()
    };
    // No `ctr` on PATH.
    let empty = tempfile::tempdir().unwrap();
    let out = lab(("PATH", empty.path().as_os_str()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("containerd is not available: no `ctr` command"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // `ctr` there, containerd not reachable: ctr takes its socket from CONTAINERD_ADDRESS.
    if live_ready(&["ctr"]) {
        let sock = empty.path().join("no-containerd.sock");
        let out = lab(("CONTAINERD_ADDRESS", sock.as_os_str()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("containerd is not running or not reachable"),
            "{err}"
        );
        assert!(err.contains("systemctl start containerd"), "{err}");
    }
    assert_eq!(lab_traces(), before, "the failed lab left something behind");
}
