//! `iowhy serve` scraped by a real Prometheus (Debian's binary, on 127.0.0.1), with real
//! incidents: a fsync-per-line lab writer, a containerd container's log, a frozen
//! filesystem, and a storm of short-lived processes.

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::prom::{Prometheus, Scrape, http};
use common::{Lab, Reap, bin, live_lock, live_ready, need_tool};

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `iowhy serve` on a free port, sampling every second; killed by its pid on drop.
fn serve(extra: &[&str]) -> (Reap, String) {
    let addr = free_addr();
    let child = Command::new(bin())
        .args(["serve", "--interval", "1s", "--web.listen-address", &addr])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start iowhy serve");
    let serve = Reap(child);
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if http(&addr, "GET", "/healthz", "").is_ok_and(|(c, _)| c == 200) {
            return (serve, addr);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("iowhy serve did not answer /healthz on {addr}");
}

/// The metrics once the first window is in (the sampler publishes after one interval).
fn metrics(addr: &str) -> String {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = http(addr, "GET", "/metrics", "").expect("scrape");
        assert_eq!(code, 200, "{body}");
        if body.contains("iowhy_build_info") || Instant::now() > end {
            return body;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn comm_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn prometheus_sees_the_fsync_logger_at_its_real_rate_and_the_scrape_is_clean() {
    if !live_ready(&[]) {
        return;
    }
    let Some(promtool) = need_tool("promtool") else {
        return;
    };
    let _l = live_lock();
    let lab = Lab::start(&["fsync-logger", "--duration", "60s", "--rate", "200"]);
    let writer = lab.event.pids[0];
    let log = lab.event.paths[0].clone();
    // Room for the lab's file in the file list when other writers share the machine
    // (the default keeps the 10 fastest; a build writes faster than 200 lines/s).
    let (_serve, addr) = serve(&["--collector.files.top-n", "200"]);
    let Some(prom) = Prometheus::start(&[Scrape::new("iowhy", &addr)]) else {
        return;
    };
    let up = prom.wait_for("up{job=\"iowhy\"} == 1", Duration::from_secs(30));
    assert_eq!(up.len(), 1, "{}", prom.log());
    // The writer names itself once it runs.
    let comm = comm_of(writer);
    assert_ne!(comm, "iowhy");
    // Let the counter have 15 s of history, then compare the last 10 s with the file:
    // every line is 40 bytes and fsync'd once.
    std::thread::sleep(Duration::from_secs(15));
    let size = || std::fs::metadata(&log).unwrap().len();
    let (s0, t0) = (size(), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let (s1, t1) = (size(), Instant::now());
    let real = (s1 - s0) as f64 / 40.0 / (t1 - t0).as_secs_f64();
    let q = format!(
        "sum(rate(iowhy_process_fsync_calls_total{{comm=\"{comm}\",call=\"fsync\"}}[10s]))"
    );
    let got = prom.query(&q).expect("query");
    assert_eq!(got.len(), 1, "{q}: {got:?}");
    let seen = got[0].1;
    eprintln!("fsync/s: Prometheus {seen:.1}, the file {real:.1}");
    assert!(
        (seen / real - 1.0).abs() < 0.3,
        "Prometheus says {seen:.1} fsync/s, the file grew by {real:.1} lines/s"
    );
    // The file it writes, with node_exporter's device and mountpoint.
    let files = prom
        .query(&format!("iowhy_file_write_bytes_total{{comm=\"{comm}\"}}"))
        .expect("query");
    assert!(
        files.iter().any(|(l, _)| l.get("path") == Some(&log)
            && l.get("mountpoint") == lab.event.mountpoint.as_ref()
            && l.get("device") == lab.event.device.as_ref()),
        "{files:?}"
    );
    // The verdict as a series, and the latest report behind it.
    let storm = prom.wait_for(
        "iowhy_findings{kind=\"fsync_storm\"} > 0",
        Duration::from_secs(10),
    );
    assert!(!storm.is_empty());
    let (code, diag) = http(&addr, "GET", "/diagnosis", "").unwrap();
    assert_eq!(code, 200);
    // The DESIGN.md contract, read through its wire type.
    let r: iowhy::wire::diagnose::Report = common::wire(&diag);
    assert!(
        r.findings
            .iter()
            .any(|f| f.kind == "fsync_storm" && f.subject.pid == Some(writer)),
        "{diag}"
    );
    let (code, md) = http(&addr, "GET", "/diagnosis?format=markdown", "").unwrap();
    assert!(code == 200 && md.contains(&comm), "{md}");
    // A live scrape passes promtool's lint, and what promtool does not check.
    let body = metrics(&addr);
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(iowhy::serve::expo::lint(&body), Vec::<String>::new());
    drop(lab);
}

#[test]
fn a_containers_log_shows_in_iowhy_container_log_bytes() {
    if !live_ready(&[
        "ctr",
        "containerd",
        "runc",
        "busybox",
        "losetup",
        "mkfs.ext4",
    ]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["container-log-flood", "--duration", "40s"]);
    let id = format!("iowhy-flood-{}", lab.child.as_ref().unwrap().id());
    let path = lab.event.paths[0].clone();
    let (_serve, addr) = serve(&[]);
    let Some(prom) = Prometheus::start(&[Scrape::new("iowhy", &addr)]) else {
        return;
    };
    let q = format!("iowhy_container_log_bytes{{container=\"{id}\"}} > 0");
    let logs = prom.wait_for(&q, Duration::from_secs(30));
    assert_eq!(logs.len(), 1, "{q}: no such series");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 0 && logs[0].1 > 0.0,
        "{path}: {size} on disk, {logs:?}"
    );
    // It keeps growing: the appended counter moves.
    let grew = prom.wait_for(
        &format!(
            "increase(iowhy_container_log_appended_bytes_total{{container=\"{id}\"}}[5s]) > 0"
        ),
        Duration::from_secs(20),
    );
    assert!(!grew.is_empty(), "{}", prom.log());
}

#[test]
fn a_scrape_answers_at_once_while_a_filesystem_is_frozen() {
    if !live_ready(&["losetup", "mkfs.ext4", "timeout"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["frozen-fs", "--duration", "30s"]);
    let mp = lab.event.mountpoint.clone().expect("mountpoint");
    let (_serve, addr) = serve(&["--collector.timeout", "2s"]);
    let _ = metrics(&addr);
    for _ in 0..5 {
        let t = Instant::now();
        let (code, body) = http(&addr, "GET", "/metrics", "").unwrap();
        let took = t.elapsed();
        assert_eq!(code, 200);
        assert!(took < Duration::from_secs(2), "a scrape took {took:?}");
        assert!(body.contains("iowhy_build_info"));
        std::thread::sleep(Duration::from_millis(700));
    }
    // The frozen filesystem is named in the verdict the exporter serves.
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) = http(&addr, "GET", "/metrics", "").unwrap();
        let frozen = body.lines().any(|l| {
            (l.starts_with("iowhy_findings{kind=\"filesystem_frozen\"")
                || l.starts_with("iowhy_findings{kind=\"filesystem_unresponsive\""))
                && !l.ends_with(" 0")
        });
        if frozen {
            break;
        }
        assert!(
            Instant::now() < end,
            "no frozen-filesystem finding for {mp}: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(lab);
}

#[test]
fn a_thousand_process_starts_a_second_neither_crash_it_nor_grow_its_series() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let (mut serve, addr) = serve(&["--collector.process.top-n", "5"]);
    let _ = metrics(&addr);
    // Short-lived processes with ever-new names, as a fork-heavy build or a cron storm
    // makes them: ~1000 a second for 10 s, from a shell we started (and kill).
    let storm = Reap(
        Command::new("sh")
            .args([
                "-c",
                "end=$(($(date +%s)+10)); i=0; while [ $(date +%s) -lt $end ]; do \
                 for j in 1 2 3 4 5 6 7 8 9 10; do (exec -a w$i$j true) & done; wait; i=$((i+1)); done",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut most = 0;
    let end = Instant::now() + Duration::from_secs(12);
    while Instant::now() < end {
        let (code, body) = http(&addr, "GET", "/metrics", "").expect("scrape during the storm");
        assert_eq!(code, 200);
        let series = body.lines().filter(|l| !l.starts_with('#')).count();
        most = most.max(series);
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(storm);
    assert!(serve.try_wait().unwrap().is_none(), "iowhy serve died");
    // 5 groups (2x with linger) x 9 per-group families, host and containers' "other",
    // fixed families: far below the 1500 budget.
    assert!(most < 600, "{most} series");
}

#[test]
fn a_writer_blocked_on_a_pipe_nobody_reads_is_a_blocked_task() {
    if !live_ready(&[]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["pipe-block", "--duration", "30s", "--reader", "idle"]);
    let writer = lab.event.pids[0];
    std::thread::sleep(Duration::from_secs(1));
    let comm = comm_of(writer);
    let (_serve, addr) = serve(&[]);
    let want = format!("comm=\"{comm}\",reason=\"pipe_write\"}} 1");
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let body = metrics(&addr);
        if body
            .lines()
            .any(|l| l.starts_with("iowhy_process_blocked_tasks{") && l.ends_with(&want))
        {
            break;
        }
        assert!(Instant::now() < end, "no {want} in:\n{body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, body) = http(&addr, "GET", "/metrics", "").unwrap();
    assert!(
        body.lines()
            .any(|l| l.starts_with("iowhy_findings{kind=\"pipe_blocked\"") && !l.ends_with(" 0")),
        "{body}"
    );
    drop(lab);
}
