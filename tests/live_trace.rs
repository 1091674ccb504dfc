//! Live (root): tracing sees the syscalls behind the I/O without stopping anyone. The
//! fsync-logger lab is traced with each layer in turn; counts are checked against the
//! writer's own (lines it appended) and against bpftrace; a buffered writer is not an
//! fsync storm; Ctrl-C leaves no perf or BPF object behind.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, bin, live_lock, live_ready, ok};
use iowhy::render::json::Report;

fn lines(path: &str) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
        .unwrap_or(0)
}

/// `iowhy trace` on one pid; returns the JSON and the writer's own line rate over a
/// window that brackets the trace.
fn trace_pid(pid: u32, path: &str, layer: &str, secs: u32) -> (serde_json::Value, f64) {
    let (l0, t0) = (lines(path), Instant::now());
    let out = ok(&[
        "trace",
        "--pid",
        &pid.to_string(),
        "--tracing",
        layer,
        "--duration",
        &format!("{secs}s"),
        "-f",
        "json",
    ]);
    let (l1, t1) = (lines(path), t0.elapsed());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (v, (l1 - l0) as f64 / t1.as_secs_f64())
}

fn file_of<'a>(v: &'a serde_json::Value, pid: u32, path: &str) -> &'a serde_json::Value {
    let p = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} not traced: {v:#}"));
    p["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in {p:#}"))
}

fn within(a: f64, b: f64, pct: f64) -> bool {
    (a - b).abs() <= pct / 100.0 * a.max(b)
}

#[test]
fn each_layer_counts_the_fsync_logger() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    // A steady writer: 1000 lines a second, each fsync'd.
    let lab = Lab::start(&["fsync-logger", "--duration", "60s", "--rate", "1000"]);
    let (pid, path) = (lab.event.pids[0], lab.event.paths[0].clone());
    std::thread::sleep(Duration::from_secs(1));
    let mut rates = Vec::new();
    let mut traced_share = 0.0;
    for layer in ["ebpf", "perf"] {
        let (v, own) = trace_pid(pid, &path, layer, 3);
        assert_eq!(v["layer"], layer);
        assert_eq!(v["lost_events"], 0, "{layer} lost events");
        let f = file_of(&v, pid, &path);
        let syncs = f["syncs"]["fsync"]["per_s"].as_f64().unwrap();
        let writes = f["writes_per_s"].as_f64().unwrap();
        assert!(
            within(syncs, own, 5.0),
            "{layer}: {syncs} fsync/s traced vs {own} lines/s written"
        );
        assert!(
            within(writes, syncs, 2.0),
            "{layer}: one write per sync ({writes} vs {syncs})"
        );
        assert!(f["sync_p99_ms"].as_f64().unwrap() > 0.0);
        assert!(f["bytes_per_sync"].as_f64().unwrap() < 64.0);
        assert!(
            f["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == "O_APPEND")
        );
        rates.push(syncs);
        traced_share = f["sync_time_share"].as_f64().unwrap();
    }
    assert!(
        within(rates[0], rates[1], 5.0),
        "ebpf and perf disagree: {rates:?}"
    );
    // Sampling: an estimate of the time share, no counts.
    let (v, _) = trace_pid(pid, &path, "sampling", 2);
    assert_eq!(v["estimate"], true);
    let p = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap();
    assert!(p["sync_per_s"].is_null(), "sampling must not invent counts");
    let share = p["sampled_sync_share"].as_f64().unwrap();
    // The estimate against the share measured by tracing a moment before.
    assert!(
        (share - traced_share).abs() < 0.15,
        "sampled {share} vs traced {traced_share}"
    );
}

#[test]
fn diagnose_finds_the_fsync_storm_with_every_layer() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["fsync-logger", "--duration", "60s"]);
    let (pid, path) = (lab.event.pids[0], lab.event.paths[0].clone());
    std::thread::sleep(Duration::from_secs(1));
    for layer in ["ebpf", "perf", "sampling"] {
        let r: Report = serde_json::from_str(&ok(&[
            "diagnose",
            "-d",
            "3",
            "--tracing",
            layer,
            "-f",
            "json",
        ]))
        .unwrap();
        assert_eq!(r.capabilities.tracing, layer);
        let f = r
            .findings
            .iter()
            .find(|f| f.kind == "fsync_storm" && f.subject.pid == Some(pid))
            .unwrap_or_else(|| panic!("{layer}: no fsync_storm for {pid}: {:#?}", r.findings));
        assert_eq!(f.subject.path.as_deref(), Some(path.as_str()), "{layer}");
        assert_eq!(f.subject.mountpoint, lab.event.mountpoint, "{layer}");
        let proc = r.processes.iter().find(|p| p.pid == pid).unwrap();
        if layer == "sampling" {
            assert!(proc.fsync_per_s.is_none());
        } else {
            let n = proc.fsync_per_s.unwrap();
            assert!(n > 100.0, "{layer}: fsync_per_s {n}");
            assert!(f.evidence["writes_per_sync"].as_f64().unwrap() <= 1.1);
            assert!(f.explanation.contains("-byte write is followed by a sync"));
        }
    }
}

#[test]
fn fdatasync_and_sync_file_range_are_counted() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    for (mode, key) in [
        ("fdatasync", "fdatasync"),
        ("sync-file-range", "sync_file_range"),
    ] {
        let lab = Lab::start(&[
            "fsync-logger",
            "--duration",
            "30s",
            "--rate",
            "500",
            "--sync",
            mode,
        ]);
        let (pid, path) = (lab.event.pids[0], lab.event.paths[0].clone());
        std::thread::sleep(Duration::from_secs(1));
        for layer in ["ebpf", "perf"] {
            let (v, own) = trace_pid(pid, &path, layer, 2);
            let f = file_of(&v, pid, &path);
            let n = f["syncs"][key]["per_s"].as_f64().unwrap_or(0.0);
            assert!(
                within(n, own, 6.0),
                "{layer} {key}: {n}/s traced vs {own}/s written ({f:#})"
            );
            assert!(
                f["syncs"].get("fsync").is_none(),
                "{layer}: {key} is not fsync"
            );
        }
        drop(lab);
    }
}

#[test]
fn a_buffered_writer_is_not_an_fsync_storm() {
    if !live_ready(&["losetup", "mkfs.ext4"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["buffered-flood", "--duration", "30s", "--size", "512M"]);
    let pid = lab.event.pids[0];
    std::thread::sleep(Duration::from_secs(1));
    let r: Report = serde_json::from_str(&ok(&[
        "diagnose",
        "-d",
        "3",
        "--tracing",
        "ebpf",
        "-f",
        "json",
    ]))
    .unwrap();
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == "top_io_writer" && f.subject.pid == Some(pid)),
        "{:#?}",
        r.findings
    );
    assert!(
        !r.findings
            .iter()
            .any(|f| f.kind == "fsync_storm" && f.subject.pid == Some(pid)),
        "{:#?}",
        r.findings
    );
    let p = r.processes.iter().find(|p| p.pid == pid).unwrap();
    assert_eq!(p.fsync_per_s, Some(0.0));
    drop(lab);
    // A small-line logger that never syncs is not one either.
    let lab = Lab::start(&["fsync-logger", "--duration", "30s", "--sync", "none"]);
    let pid = lab.event.pids[0];
    std::thread::sleep(Duration::from_secs(1));
    let r: Report = serde_json::from_str(&ok(&[
        "diagnose",
        "-d",
        "2",
        "--tracing",
        "perf",
        "-f",
        "json",
    ]))
    .unwrap();
    assert!(
        !r.findings
            .iter()
            .any(|f| f.kind == "fsync_storm" && f.subject.pid == Some(pid)),
        "{:#?}",
        r.findings
    );
}

#[test]
fn counts_agree_with_bpftrace() {
    if !live_ready(&["losetup", "mkfs.ext4", "bpftrace"]) {
        return;
    }
    let _l = live_lock();
    // A known workload: exactly 3000 fsync'd lines, starting once every tracer is attached.
    const N: u64 = 3000;
    let lab = Lab::start(&[
        "fsync-logger",
        "--duration",
        "60s",
        "--lines",
        &N.to_string(),
        "--start-after",
        "6s",
        "--rate",
        "1000",
    ]);
    let pid = lab.event.pids[0];
    let prog = format!(
        "tracepoint:syscalls:sys_enter_fsync /pid == {pid}/ {{ @n = count(); }} interval:s:12 {{ exit(); }}"
    );
    let bt = Command::new("bpftrace")
        .args(["-e", &prog])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let spawn = |layer: &str| {
        Command::new(bin())
            .args([
                "trace",
                "--pid",
                &pid.to_string(),
                "--tracing",
                layer,
                "--duration",
                "10s",
                "-f",
                "json",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The same window for all three: the writer starts 6 s in and needs 3 s.
    let ebpf = spawn("ebpf");
    let perf = spawn("perf");
    let count = |c: std::process::Child| -> u64 {
        let out = c.wait_with_output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let p = v["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == pid)
            .cloned()
            .unwrap_or_default();
        p["syncs"].as_u64().unwrap_or(0)
    };
    let (e, p) = (count(ebpf), count(perf));
    let out = bt.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let b: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("@n: "))
        .and_then(|x| x.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "bpftrace printed {text:?} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(b, N, "bpftrace saw every fsync of the known workload");
    assert_eq!(e, N, "eBPF layer count");
    assert_eq!(p, N, "perf layer count");
}

#[test]
fn ctrl_c_releases_everything() {
    if !live_ready(&["bpftool"]) {
        return;
    }
    let _l = live_lock();
    for layer in ["ebpf", "perf"] {
        let child = Command::new(bin())
            .args([
                "trace",
                "--tracing",
                layer,
                "--duration",
                "60s",
                "-f",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(3));
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        let t = Instant::now();
        let out = child.wait_with_output().unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{layer}: slow to stop"
        );
        assert!(
            out.status.success(),
            "{layer}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("a report after Ctrl-C");
        assert!(v["duration_s"].as_f64().unwrap() < 30.0);
        let progs = Command::new("bpftool")
            .args(["prog", "show"])
            .output()
            .unwrap();
        let progs = String::from_utf8_lossy(&progs.stdout);
        for name in ["enter_fsync", "on_rq_complete", "exit_openat"] {
            assert!(
                !progs.contains(name),
                "{layer}: BPF program {name} still loaded:\n{progs}"
            );
        }
        // No perf event of ours: the process is gone, and nothing else holds its fds.
        assert!(!std::path::Path::new(&format!("/proc/{}", child_pid(&pid))).exists());
    }
}

fn child_pid(p: &rustix::process::Pid) -> i32 {
    p.as_raw_nonzero().get()
}

#[test]
fn delay_accounting_is_restored_after_the_run() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let before = std::fs::read_to_string("/proc/sys/kernel/task_delayacct").unwrap();
    let r: Report = serde_json::from_str(&ok(&[
        "diagnose",
        "-d",
        "1",
        "--tracing",
        "off",
        "--enable-delayacct",
        "-f",
        "json",
    ]))
    .unwrap();
    let after = std::fs::read_to_string("/proc/sys/kernel/task_delayacct").unwrap();
    assert_eq!(before, after, "kernel.task_delayacct restored");
    assert!(r.capabilities.delayacct, "on during the run");
    if before.trim() == "0" {
        assert!(
            r.blind_spots
                .iter()
                .any(|b| b.what.contains("turned on for this run"))
        );
    }
}

#[test]
fn short_lived_processes_and_fds_keep_their_path() {
    if !live_ready(&["dd"]) {
        return;
    }
    let _l = live_lock();
    for layer in ["ebpf", "perf"] {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let target = dir.path().join("short.log");
        let t = target.clone();
        // 30 dd processes, each: close its stdout, open the file (it lands on fd 1, which
        // held another file a moment before), write 4 KiB, fsync, close, exit — gone long
        // before the trace ends, and before perf's consumer reads its events.
        let spawner = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            for _ in 0..30 {
                let of = format!("of={}", t.display());
                Command::new("dd")
                    .args(["if=/dev/zero", &of, "bs=4k", "count=1", "conv=fsync"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let out = ok(&[
            "trace",
            "--tracing",
            layer,
            "--duration",
            "5s",
            "-f",
            "json",
        ]);
        spawner.join().unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let dds: Vec<&serde_json::Value> = v["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["comm"] == "dd")
            .collect();
        assert!(
            dds.len() >= 25,
            "{layer}: most of the 30 short-lived dd processes are seen: {}",
            dds.len()
        );
        let of_target = |p: &&&serde_json::Value| {
            p["files"].as_array().unwrap().iter().any(|f| {
                f["path"] == target.to_str().unwrap()
                    && f["syncs"]["fsync"]["count"] == 1
                    && f["writes"] == 1
                    && f["write_bytes"] == 4096
            })
        };
        let named = dds.iter().filter(of_target).count();
        assert!(
            named >= 25,
            "{layer}: the fd of a process that already exited still has its path: {named} of {}",
            dds.len()
        );
        // The 4 KiB block went to the file, never to what fd 1 held before (/dev/null
        // here): a reused fd number is not given the old name.
        for p in &dds {
            for f in p["files"].as_array().unwrap() {
                if f["path"] != target.to_str().unwrap() {
                    assert_ne!(f["write_bytes"], 4096, "{layer}: {p:#}");
                    assert!(f["syncs"]["fsync"].is_null(), "{layer}: {p:#}");
                }
            }
        }
        // The open flags come from the traced open (O_WRONLY|O_CREAT|O_TRUNC): write-only.
        let flagged = dds
            .iter()
            .filter(of_target)
            .filter(|p| {
                p["files"].as_array().unwrap().iter().any(|f| {
                    f["path"] == target.to_str().unwrap()
                        && f["flags"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|x| x == "O_WRONLY")
                })
            })
            .count();
        assert_eq!(flagged, named, "{layer}: flags of short-lived files");
        assert!(dds.iter().all(|p| p["exited_in_window"] == true), "{layer}");
    }
}
