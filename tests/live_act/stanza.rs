//! Every branch of the logrotate stanza, validated by `logrotate -d`; the signal branch
//! and the copytruncate branch also run for real (`logrotate -f`) against live writers:
//! the writer survives, and the one that reopens on SIGHUP loses no line.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use iowhy::findings::remedy::{LogWriter, logrotate_stanza};

use super::common::{live_lock, live_ready};
use super::{Worker, assert_each_once, holds, numbers, wait_for};

/// Run logrotate on the stanza; returns its output after checking it accepted it.
fn logrotate(dir: &Path, stanza: &str, log: &Path, args: &[&str]) -> String {
    let conf = dir.join("iowhy.conf");
    std::fs::write(&conf, format!("{stanza}\n")).unwrap();
    let out = Command::new("logrotate")
        .args(args)
        .arg("-s")
        .arg(dir.join("state"))
        .arg(&conf)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "logrotate {args:?} failed:\n{stanza}\n{text}"
    );
    assert!(
        !text.contains("error"),
        "logrotate {args:?}:\n{stanza}\n{text}"
    );
    if args.contains(&"-d") {
        assert!(
            text.contains(&log.display().to_string()),
            "logrotate considered the log:\n{stanza}\n{text}"
        );
    }
    text
}

/// The facts iowhy's diagnose collects about a live writer, read the same way.
struct Facts {
    cmdline: String,
    hup: bool,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn facts(pid: u32, log: &Path) -> Facts {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let cgt = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let md = std::fs::metadata(log).unwrap();
    Facts {
        cmdline,
        hup: cgt & 1 != 0,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
    }
}

fn writer<'a>(f: &'a Facts, pid: u32, append: bool) -> LogWriter<'a> {
    LogWriter {
        pid,
        comm: "lr-writer",
        cmdline: &f.cmdline,
        fd: 3,
        append,
        handles_hup: Some(f.hup),
        unit: None,
        mode: Some(f.mode),
        uid: Some(f.uid),
        gid: Some(f.gid),
    }
}

#[test]
fn every_stanza_branch_validates_and_the_signal_branch_loses_no_line() {
    if !live_ready(&["logrotate", "pkill"]) {
        return;
    }
    let _l = live_lock();
    let dir = tempfile::tempdir().unwrap();
    // A name with a space: logrotate must read it quoted.
    let log = dir.path().join("my app.log");
    let mut w = Worker::start(&[
        "numbered-logger",
        "--path",
        log.to_str().unwrap(),
        "--on-hup",
        "reopen",
        "--name",
        "lr-hup",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let f = facts(w.pid(), &log);
    assert!(f.hup, "the worker handles SIGHUP");
    let path = log.to_str().unwrap();
    // create + a HUP through systemd, for a service's main process: -d only (no systemd here).
    let mut in_unit = writer(&f, w.pid(), false);
    in_unit.unit = Some("iowhy-test.service");
    let st = logrotate_stanza(path, in_unit).unwrap();
    assert!(st.contains("--kill-whom=main iowhy-test.service"), "{st}");
    logrotate(dir.path(), &st, &log, &["-d"]);
    // create + pkill on its exact command line: validated, then run for real.
    let st = logrotate_stanza(path, writer(&f, w.pid(), false)).unwrap();
    assert!(st.contains("pkill -HUP -x -f"), "{st}");
    assert!(
        st.contains(&format!("create {:04o} {} {}", f.mode, f.uid, f.gid)),
        "{st}"
    );
    logrotate(dir.path(), &st, &log, &["-d"]);
    logrotate(dir.path(), &st, &log, &["-f"]);
    assert!(
        wait_for(Duration::from_secs(3), || holds(w.pid(), &log)),
        "the writer reopened the new log after logrotate's SIGHUP"
    );
    let md = std::fs::metadata(&log).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (f.mode, f.uid, f.gid)
    );
    std::thread::sleep(Duration::from_millis(200));
    w.term();
    assert!(dir.path().join("my app.log.1").exists());
    assert_each_once(numbers(dir.path(), "my app.log"));

    // copytruncate, for an O_APPEND writer without a handler: validated and run.
    let log = dir.path().join("deaf.log");
    let mut d = Worker::start(&[
        "numbered-logger",
        "--path",
        log.to_str().unwrap(),
        "--on-hup",
        "ignore",
        "--name",
        "lr-deaf",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let f = facts(d.pid(), &log);
    assert!(!f.hup);
    let st = logrotate_stanza(log.to_str().unwrap(), writer(&f, d.pid(), true)).unwrap();
    assert!(
        st.contains("copytruncate") && !st.contains("postrotate"),
        "{st}"
    );
    logrotate(dir.path(), &st, &log, &["-d"]);
    let before = std::fs::metadata(&log).unwrap().len();
    logrotate(dir.path(), &st, &log, &["-f"]);
    assert!(
        std::fs::metadata(dir.path().join("deaf.log.1"))
            .unwrap()
            .len()
            >= before,
        "the copy has what the log had"
    );
    assert!(
        holds(d.pid(), &log),
        "the writer still writes the log, alive"
    );
    d.term();

    // Neither: no stanza, and the reason.
    let e = logrotate_stanza(log.to_str().unwrap(), writer(&f, d.pid(), false)).unwrap_err();
    assert!(e.contains("Fix the program"), "{e}");
}
