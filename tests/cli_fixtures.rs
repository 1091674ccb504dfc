//! The binary on fixture trees captured from real incidents on a kernel 6.18 machine
//! (`tests/fixtures/capture.sh`): each lab scenario is diagnosed with the right kind, pid,
//! path and mountpoint; the JSON follows the contract and matches its golden file.

mod common;

use common::{fixture, golden, iowhy, lab_event, ok, wire, wire_lines};
use iowhy::wire::diagnose::{FindingJson, Report};
use iowhy::wire::files::FilesReport;
use iowhy::wire::iostat::{IostatBasic, IostatSample};
use iowhy::wire::space::SpaceReport;

fn diagnose(name: &str) -> Report {
    let dir = fixture(name);
    let text = ok(&[
        "--fixture",
        dir.to_str().unwrap(),
        "diagnose",
        "--format",
        "json",
    ]);
    golden(&format!("{name}.diagnose.json"), &text);
    wire(&text)
}

fn find<'a>(r: &'a Report, kind: &str) -> &'a FindingJson {
    r.findings
        .iter()
        .find(|f| f.kind == kind)
        .unwrap_or_else(|| {
            panic!(
                "expected a {kind} finding; got: {:?}",
                r.findings
                    .iter()
                    .map(|f| (&f.kind, &f.severity, &f.summary))
                    .collect::<Vec<_>>()
            )
        })
}

#[test]
fn quiet_machine_has_no_critical_or_warning() {
    let r = diagnose("quiet");
    assert_eq!(r.version, 1);
    assert!(
        r.window_seconds > 1.5 && r.window_seconds < 3.0,
        "window {}",
        r.window_seconds
    );
    let serious: Vec<_> = r.findings.iter().filter(|f| f.severity != "info").collect();
    assert!(serious.is_empty(), "quiet machine got {serious:?}");
    assert!(r.capabilities.fixture);
    assert!(r.devices.iter().any(|d| d.disk_device == "vda"));
    assert!(r.filesystems.iter().any(|f| f.mountpoint == "/"));
    // Delay accounting is off on that machine: said so, and io_wait_pct is null, never 0.
    assert!(!r.capabilities.delayacct);
    assert!(r.processes.iter().all(|p| p.io_wait_pct.is_none()));
    assert!(
        r.blind_spots
            .iter()
            .any(|b| b.how_to_see.contains("task_delayacct"))
    );
}

#[test]
fn fsync_logger_is_the_top_writer_with_its_file_and_mount() {
    let lab = lab_event("fsync-logger");
    let r = diagnose("fsync-logger");
    let f = find(&r, "top_io_writer");
    assert_eq!(f.subject.pid, Some(lab.pids[0]));
    assert_eq!(f.subject.path.as_deref(), Some(lab.paths[0].as_str()));
    assert_eq!(f.subject.mountpoint, lab.mountpoint);
    assert_eq!(f.subject.device, lab.device);
    // 40-byte writes that each cost a 4 KiB page: the sync-per-write signature.
    let per_call = f.evidence["bytes_per_write_call"].as_f64().unwrap();
    let storage = f.evidence["storage_bytes_per_write_call"].as_f64().unwrap();
    assert!(
        per_call < 64.0 && storage > 3500.0,
        "per call {per_call}, storage {storage}"
    );
    assert!(f.explanation.contains("sync"), "{}", f.explanation);
    // The writer's own entry: its log, open O_APPEND, growing.
    let p = r
        .processes
        .iter()
        .find(|p| p.pid == lab.pids[0])
        .expect("writer listed");
    let log = p
        .files
        .iter()
        .find(|x| x.path == lab.paths[0])
        .expect("log listed");
    assert!(log.flags.contains(&"O_APPEND".to_string()));
    assert!(log.growth_bytes_per_s.unwrap() > 0.0);
    assert!(p.write_bytes_per_s.unwrap() > p.wchar_per_s.unwrap() * 10.0);
}

#[test]
fn disk_fill_is_a_full_filesystem_and_a_runaway_log() {
    let lab = lab_event("disk-fill");
    let r = diagnose("disk-fill");
    let full = find(&r, "filesystem_full");
    assert_eq!(full.severity, "critical");
    assert_eq!(full.subject.mountpoint, lab.mountpoint);
    assert_eq!(full.subject.pid, Some(lab.pids[0]));
    assert!(full.evidence["use_pct"].as_f64().unwrap() >= 95.0);
    let log = find(&r, "runaway_log");
    assert_eq!(log.subject.pid, Some(lab.pids[0]));
    assert_eq!(log.subject.path.as_deref(), Some(lab.paths[0].as_str()));
    // Never rm a file that is held open: the remediation renames and reopens.
    assert!(
        log.remediation
            .iter()
            .any(|c| c.starts_with("iowhy rotate"))
    );
    assert!(!log.remediation.iter().any(|c| c.starts_with("rm ")));
    let fs = r
        .filesystems
        .iter()
        .find(|f| Some(&f.mountpoint) == lab.mountpoint.as_ref())
        .unwrap();
    assert!(fs.growth_bytes_per_s.unwrap() > 1e6);
    assert!(fs.time_to_full_s.is_some());
}

#[test]
fn deleted_open_file_is_found_with_its_holder() {
    let lab = lab_event("deleted-open");
    let r = diagnose("deleted-open");
    let f = find(&r, "deleted_file_held_open");
    assert_eq!(f.subject.pid, Some(lab.pids[0]));
    assert_eq!(f.subject.path.as_deref(), Some(lab.paths[0].as_str()));
    assert_eq!(f.subject.mountpoint, lab.mountpoint);
    assert!(f.evidence["held_bytes"].as_f64().unwrap() >= 16.0 * 1048576.0);
    assert!(
        f.remediation
            .iter()
            .any(|c| c.contains(&format!("iowhy reclaim {}", lab.pids[0])))
    );
    let p = r.processes.iter().find(|p| p.pid == lab.pids[0]).unwrap();
    assert!(p.files.iter().any(|x| x.deleted && x.path == lab.paths[0]));
}

#[test]
fn buffered_flood_shows_dirty_pressure_and_the_writer() {
    let lab = lab_event("buffered-flood");
    let r = diagnose("buffered-flood");
    let d = find(&r, "dirty_writeback_pressure");
    assert_eq!(d.subject.pid, Some(lab.pids[0]));
    assert!(d.evidence["throttled_tasks"].as_f64().unwrap() >= 1.0);
    let w = find(&r, "top_io_writer");
    assert_eq!(w.subject.pid, Some(lab.pids[0]));
    assert_eq!(w.subject.mountpoint, lab.mountpoint);
}

#[test]
fn text_and_markdown_tell_the_story() {
    let dir = fixture("disk-fill");
    let text = ok(&["--fixture", dir.to_str().unwrap()]);
    // The story order: device tables, then what to do now, then later.
    let i_what = text.find("What is happening").expect("findings first");
    let i_dev = text.find("Devices (iostat").expect("device table");
    let i_fs = text.find("Filesystems").expect("filesystem table");
    let i_now = text.find("What to do now").expect("actions");
    let i_later = text.find("Later").expect("lasting fixes");
    assert!(
        i_what < i_dev && i_dev < i_fs && i_fs < i_now && i_now < i_later,
        "{text}"
    );
    assert!(text.contains("never: rm"));
    let md = ok(&[
        "--fixture",
        dir.to_str().unwrap(),
        "diagnose",
        "-f",
        "markdown",
    ]);
    assert!(md.starts_with("# I/O incident note"));
    assert!(md.contains("## filesystem_full"));
    assert!(md.contains("```sh"));
    assert!(md.contains("| evidence | value |"));
}

/// The story paragraph names the device, the process and the file, in that order of
/// importance, even when no disk is saturated but the machine stalls (PSI): the seed's
/// walk-through in three lines.
#[test]
fn the_story_names_the_culprit_its_file_and_its_disk() {
    for name in ["fsync-logger", "disk-fill"] {
        let dir = fixture(name);
        let lab = lab_event(name);
        let text = ok(&["--fixture", dir.to_str().unwrap()]);
        // The paragraph under the "What is happening" heading and its underline.
        let story = text
            .split_once("What is happening\n")
            .and_then(|(_, t)| t.split_once('\n'))
            .and_then(|(_, t)| t.split("\n\n").next())
            .unwrap_or_else(|| panic!("no story in:\n{text}"))
            .replace('\n', " ");
        let pid = lab.pids[0].to_string();
        assert!(story.contains(&format!("pid {pid}")), "{name}: {story}");
        assert!(story.contains(&lab.paths[0]), "{name}: {story}");
        if name == "fsync-logger" {
            assert!(
                story.contains(lab.device.as_deref().unwrap()),
                "{name}: {story}"
            );
        }
        // What to do now starts with the culprit, not only with a PSI file to read.
        let now = text.split("What to do now").nth(1).expect("actions");
        assert!(
            now.contains(&format!("iowhy pause {pid}")) || now.contains("iowhy rotate"),
            "{now}"
        );
    }
}

#[test]
fn iostat_json_on_a_fixture_uses_sysstat_keys() {
    let dir = fixture("fsync-logger");
    let out = ok(&[
        "--fixture",
        dir.to_str().unwrap(),
        "iostat",
        "-x",
        "-f",
        "json",
    ]);
    let samples: Vec<IostatSample> = wire_lines(&out);
    let vda = samples[0]
        .disk
        .iter()
        .find(|d| d.disk_device == "vda")
        .expect("vda");
    assert!(vda.util >= 0.0 && vda.w_s >= 0.0);
    // sysstat's keys, every one a number.
    let vda = serde_json::to_value(vda).unwrap();
    for k in [
        "r/s", "w/s", "d/s", "f/s", "rkB/s", "wkB/s", "dkB/s", "rrqm/s", "wrqm/s", "drqm/s",
        "rrqm", "wrqm", "drqm", "r_await", "w_await", "d_await", "f_await", "rareq-sz", "wareq-sz",
        "dareq-sz", "aqu-sz", "util",
    ] {
        assert!(
            vda.get(k).is_some_and(|x| x.is_number()),
            "missing {k} in {vda}"
        );
    }
    // Since boot: the interval is the uptime.
    assert!(samples[0].interval_seconds > 60.0);
    // Without -x: sysstat's basic report, through its own type.
    let basic: Vec<IostatSample<IostatBasic>> = wire_lines(&ok(&[
        "--fixture",
        dir.to_str().unwrap(),
        "iostat",
        "-f",
        "json",
    ]));
    assert!(basic[0].disk.iter().any(|d| d.disk_device == "vda"));
}

#[test]
fn files_of_the_deleted_open_writer() {
    let lab = lab_event("deleted-open");
    let dir = fixture("deleted-open");
    let pid = lab.pids[0].to_string();
    let out = ok(&[
        "--fixture",
        dir.to_str().unwrap(),
        "files",
        &pid,
        "-f",
        "json",
    ]);
    let r: FilesReport = wire(&out);
    assert_eq!(r.pid, lab.pids[0]);
    let f = r
        .files
        .iter()
        .find(|f| f.path == lab.paths[0])
        .expect("the file");
    assert!(f.deleted);
    assert_eq!(f.kind, "REG");
    assert_eq!(f.mode, "w");
    assert_eq!(f.mountpoint.as_deref(), lab.mountpoint.as_deref());
    assert!(f.flags.iter().any(|x| x == "O_APPEND"));
    let text = ok(&["--fixture", dir.to_str().unwrap(), "files", &pid]);
    assert!(text.contains("(deleted)"));
}

#[test]
fn space_on_a_fixture_reports_the_df_du_gap() {
    let lab = lab_event("deleted-open");
    let dir = fixture("deleted-open");
    let out = ok(&["--fixture", dir.to_str().unwrap(), "space", "-f", "json"]);
    let r: SpaceReport = wire(&out);
    let d = &r.deleted_open[0];
    assert_eq!(d.pid, lab.pids[0]);
    assert!(d.size_bytes >= 16 << 20);
    assert!(
        r.deleted_open_by_process
            .iter()
            .any(|p| p.pid == lab.pids[0] && p.bytes >= 16 << 20)
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let cases: Vec<Vec<&str>> = vec![
        vec!["iostat", "abc"],
        vec!["iostat", "1", "0"],
        vec!["--proc-root", "/nonexistent-dir", "diagnose"],
        vec!["--proc-root", "/tmp", "iostat"],
        vec!["files", "4294967290", "-d", "0"],
        vec!["space", "/nonexistent/path"],
        vec!["diagnose", "--duration", "soon"],
        vec!["--fixture", "/nonexistent-fixture"],
        vec!["lab", "no-such-scenario"],
        vec!["--root", "/nonexistent-root", "space", "-d", "0"],
        vec!["--sys-root", "/nonexistent", "snapshot", "--light"],
        // Durations and sizes past what a deadline or a u64 can hold (these panicked, or
        // ran until killed).
        vec!["iostat", "99999999999999999999"],
        vec!["iostat", "1e20"],
        vec!["diagnose", "--duration", "99999999999999999s"],
        vec!["files", "1", "--duration", "1e19"],
        vec!["top", "-d", "8d"],
        vec!["throttle", "1", "--write-bps", "99999999999999999999T"],
        vec!["trace", "--duration", "18446744073709551616"],
    ];
    for args in cases {
        assert_one_line_exit(&args, 2);
    }
}

/// A kernel file that cannot be read is a failure of the run (exit 1), not bad input: the
/// user typed nothing wrong. Still one line.
#[test]
fn an_unreadable_kernel_file_is_one_line_and_exit_1() {
    // diskstats that cannot be read (a directory here: EISDIR).
    let bad = tempfile::tempdir().unwrap();
    std::fs::create_dir(bad.path().join("diskstats")).unwrap();
    std::fs::write(bad.path().join("uptime"), "100.00 150.00\n").unwrap();
    let bad_root = bad.path().to_str().unwrap().to_string();
    assert_one_line_exit(&["--proc-root", &bad_root, "iostat"], 1);
}

fn assert_one_line_exit(args: &[&str], code: i32) {
    let out = iowhy(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "iowhy {args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "iowhy {args:?} printed more than one line: {err}"
    );
    assert!(err.starts_with("iowhy: "), "{err}");
}

/// `diagnose --exit-code` is a monitoring check (the Nagios convention): the status is the
/// worst finding, and a run that cannot diagnose is UNKNOWN (3), not a usage error.
#[test]
fn exit_code_is_the_worst_finding() {
    let code = |args: &[&str]| iowhy(args).status.code();
    let on = |name: &str| {
        let dir = fixture(name);
        code(&[
            "--fixture",
            dir.to_str().unwrap(),
            "diagnose",
            "--exit-code",
            "-f",
            "json",
        ])
    };
    // No finding above info.
    assert_eq!(on("quiet"), Some(0));
    // A warning only: the deleted file holding space.
    assert_eq!(on("deleted-open"), Some(1));
    // A filesystem full.
    assert_eq!(on("disk-fill"), Some(2));
    // Without the flag, a critical finding is still a successful run.
    let dir = fixture("disk-fill");
    assert_eq!(
        code(&["--fixture", dir.to_str().unwrap(), "diagnose", "-f", "json"]),
        Some(0)
    );
    // Could not diagnose: a proc root that is not procfs (exit 2 without the flag).
    assert_one_line_exit(
        &["--proc-root", "/nonexistent-dir", "diagnose", "--exit-code"],
        3,
    );
    assert_one_line_exit(&["--proc-root", "/nonexistent-dir", "--exit-code"], 3);
    let h = ok(&["diagnose", "--help"]);
    assert!(
        h.contains("--exit-code") && h.contains("3 could not diagnose"),
        "{h}"
    );
}

/// `iowhy files <its own pid>`: the interval leaves iowhy out, which used to panic on an
/// `expect`. `exec` makes the shell's `$$` iowhy's pid.
#[test]
fn files_of_iowhy_itself_is_refused_not_a_panic() {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("exec {} files $$ -d 0", common::bin())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("iowhy process itself"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("exec {} files $$ -d 0.2s -f json", common::bin()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `rotate F --timeout 1e19` renamed F, signalled, and only then overflowed its deadline:
/// the flag must be refused before anything is touched.
#[test]
fn rotate_with_an_absurd_timeout_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("app.log");
    std::fs::write(&f, "line\n").unwrap();
    assert_one_line_exit(&["rotate", f.to_str().unwrap(), "--timeout", "1e19"], 2);
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "line\n");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "rotate left {names:?}");
}

#[test]
fn help_teaches() {
    let h = ok(&["--help"]);
    // Each command on its own line of the Commands list (the words alone also appear in
    // the prose above it, which would hide a command gone missing).
    for cmd in [
        "diagnose", "iostat", "top", "files", "space", "lab", "playbook", "capture",
    ] {
        assert!(
            h.lines().any(|l| l.starts_with(&format!("  {cmd} "))),
            "--help lacks {cmd}"
        );
    }
    assert!(h.contains("--proc-root"));
    assert!(
        h.contains("Exit status: 0 success; 1"),
        "--help lacks the exit codes"
    );
    let pb = ok(&["playbook"]);
    assert!(pb.starts_with("# I/O stall playbook"));
}

#[test]
fn snapshot_json_reads_back_as_the_snapshot_type() {
    let lab = lab_event("fsync-logger");
    let dir = fixture("fsync-logger");
    let s: iowhy::snapshot::Snapshot = wire(&ok(&["--fixture", dir.to_str().unwrap(), "snapshot"]));
    assert!(s.processes.iter().any(|p| p.pid == lab.pids[0]));
    assert!(s.disks.iter().any(|d| d.name == "vda"));
}

/// iotop's batch flags on the fsync-logger capture: -t prefixes the time, -qq drops the
/// column names, -qqq the summary too, -k prints K/s, -a accumulated bytes (and the JSON
/// says so); -o and -P are accepted.
#[test]
fn top_batch_takes_iotops_flags() {
    let dir = fixture("fsync-logger");
    let d = dir.to_str().unwrap();
    let writer = lab_event("fsync-logger").pids[0];
    let plain = ok(&["--fixture", d, "top", "-b", "-o", "-P"]);
    assert!(
        plain.contains("Total DISK READ") && plain.contains("PID"),
        "{plain}"
    );
    let row = |out: &str| {
        out.lines()
            .find(|l| l.split_whitespace().any(|w| w == writer.to_string()))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no row of {writer}:\n{out}"))
    };
    let t = ok(&["--fixture", d, "top", "-t"]);
    assert!(
        t.lines()
            .all(|l| l.len() > 9 && l.as_bytes()[2] == b':' && l.as_bytes()[8] == b' '),
        "-t: every line starts with HH:MM:SS\n{t}"
    );
    // -q: column names in the first report only (a fixture of two points has one).
    let q = ok(&["--fixture", d, "top", "-q"]);
    assert!(
        q.contains("Total DISK READ") && q.contains("COMMAND"),
        "-q: {q}"
    );
    let qq = ok(&["--fixture", d, "top", "-qq"]);
    assert!(
        qq.contains("Total DISK READ") && !qq.contains("COMMAND"),
        "-qq: {qq}"
    );
    let qqq = ok(&["--fixture", d, "top", "-qqq"]);
    assert!(!qqq.contains("Total") && !qqq.contains("COMMAND"), "{qqq}");
    row(&qqq);
    let k = ok(&["--fixture", d, "top", "-b", "-k"]);
    assert!(row(&k).contains(" K/s"), "{k}");
    let a = ok(&["--fixture", d, "top", "-b", "-a", "-f", "json"]);
    let s: Vec<iowhy::wire::top::TopSample> = wire_lines(&a);
    let p = s[0].processes.iter().find(|p| p.pid == writer).unwrap();
    let acc = p.accumulated_write_bytes.expect("-a: accumulated bytes");
    let rate = p.write_bytes_per_s.unwrap();
    assert!(
        (acc - rate * s[0].interval_seconds).abs() <= rate.max(1.0) * 0.01 + 1.0,
        "one report: accumulated = rate × interval ({acc} vs {rate} × {})",
        s[0].interval_seconds
    );
    let plain_json = ok(&["--fixture", d, "top", "-b", "-f", "json"]);
    assert!(!plain_json.contains("accumulated"), "{plain_json}");
    let both = iowhy(&["--fixture", d, "top", "-o", "--all"]);
    assert_eq!(both.status.code(), Some(2), "-o and --all conflict");
}

/// `iowhy top --help` says how it differs from iotop.
#[test]
fn top_help_lists_the_differences_from_iotop() {
    let h = ok(&["top", "--help"]);
    for s in [
        "Differences from iotop",
        "space (and z) pause",
        "IOWHY_NO_RENICE",
        "-P",
    ] {
        assert!(h.contains(s), "--help lacks {s:?}:\n{h}");
    }
}
