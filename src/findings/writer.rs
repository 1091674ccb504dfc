//! `top_io_writer`: who is writing, how much, to which file on which disk.
//!
//! The kernel gives per-process bytes (`/proc/PID/io`) and per-device bytes
//! (`/proc/diskstats`) but nothing per process and device; we join a writer to the disks
//! behind the files it has open for writing.

use crate::interval::{Interval, ProcessRates};
use crate::units;

use super::{Finding, Kind, Severity, device, pressure, remedy::step};

/// Below 512 KiB/s nobody is drowning a disk; keep the report for the ones that matter.
const MIN_WRITE_BYTES_PER_S: f64 = 512.0 * 1024.0;
/// Report at most this many writers, and only those within this share of the top one.
const MAX_WRITERS: usize = 3;
const SHARE_OF_TOP: f64 = 0.25;
/// A write() of at most this many bytes that still costs a full page on disk suggests the
/// page was cleaned (synced) between two writes.
const SMALL_WRITE_BYTES: f64 = 1024.0;
const PAGE: f64 = 4096.0;

pub fn top_io_writer(iv: &Interval) -> Vec<Finding> {
    let mut writers: Vec<&ProcessRates> = iv
        .processes
        .iter()
        // Kernel threads (loop workers, writeback flushers) write on behalf of others:
        // the cause is whoever dirtied the pages or issued the requests.
        .filter(|p| !p.kthread && p.write_bytes_per_s.unwrap_or(0.0) >= MIN_WRITE_BYTES_PER_S)
        .collect();
    writers.sort_by(|a, b| {
        b.write_bytes_per_s
            .partial_cmp(&a.write_bytes_per_s)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let Some(top) = writers.first().and_then(|p| p.write_bytes_per_s) else {
        return Vec::new();
    };
    // The machine feels an I/O stall (PSI) even when no single disk is flagged (a small
    // sync-bound loop device, a throttled writer): then the biggest writer is the first
    // suspect and belongs in the story, not only in the tables.
    let stalled = iv
        .pressure
        .as_ref()
        .is_some_and(|p| p.some_pct >= pressure::PSI_SOME_WARN_PCT);
    // A writer to a saturated disk is reported even when a bigger one writes elsewhere
    // (a build filling the page cache on another disk must not hide the cause).
    let mut out: Vec<Finding> = writers
        .iter()
        .filter(|p| p.write_bytes_per_s.unwrap_or(0.0) >= SHARE_OF_TOP * top)
        .take(MAX_WRITERS)
        .enumerate()
        .map(|(i, p)| finding(iv, p, stalled && i == 0))
        .collect();
    for p in writers.iter().filter(|p| writes_to_saturated(iv, p)) {
        if out.len() >= 2 * MAX_WRITERS {
            break;
        }
        if !out.iter().any(|f| f.subject.pid == Some(p.pid)) {
            out.push(finding(iv, p, false));
        }
    }
    out
}

/// The whole disk behind the process's main written file, if it has one.
fn disk_of<'a>(iv: &'a Interval, p: &ProcessRates) -> Option<&'a crate::interval::DeviceRates> {
    p.main_written_file()?
        .devices
        .iter()
        .filter_map(|d| iv.device(d))
        .find(|x| !x.is_partition)
}

fn writes_to_saturated(iv: &Interval, p: &ProcessRates) -> bool {
    disk_of(iv, p)
        .and_then(|d| device::classify(d, device::traced(iv, d)))
        .is_some_and(|(s, _)| s != Severity::Info)
}

fn finding(iv: &Interval, p: &ProcessRates, top_under_pressure: bool) -> Finding {
    let w = p.write_bytes_per_s.unwrap_or(0.0);
    let file = p.main_written_file();
    // The disk the writer's file lives on; the whole disk if it is a partition.
    let dev = disk_of(iv, p);
    let disk = dev.map(|d| d.name.clone());
    let saturated = writes_to_saturated(iv, p);
    let severity = if saturated || top_under_pressure {
        Severity::Warning
    } else {
        Severity::Info
    };
    let mut summary = format!("{} (pid {}) writes {}", p.comm, p.pid, units::rate(w));
    if let Some(f) = file {
        summary.push_str(&format!(" to {}", f.path));
    }
    if let Some(d) = &disk {
        summary.push_str(&format!(" on {d}"));
    }
    let mut f = Finding::new(Kind::TopIoWriter, severity, summary);
    f.subject.pid = Some(p.pid);
    f.subject.comm = Some(p.comm.clone());
    f.subject.device = disk.clone();
    f.subject.path = file.map(|x| x.path.clone());
    f.subject.mountpoint = file.and_then(|x| x.mountpoint.clone());
    f.evidence
        .num("write_bytes_per_s", w)
        .opt("read_bytes_per_s", p.read_bytes_per_s)
        .opt("wchar_per_s", p.wchar_per_s)
        .opt("syscw_per_s", p.syscw_per_s)
        .opt("io_wait_pct", p.io_wait_pct);
    if let Some(d) = dev {
        if d.wkb_s > 0.0 {
            f.evidence.num(
                "share_of_device_writes_pct",
                (w / (d.wkb_s * 1024.0) * 100.0).min(100.0),
            );
        }
    }
    if let Some(file) = file {
        f.evidence
            .opt("file_growth_bytes_per_s", file.growth_bytes_per_s)
            .opt("file_size_bytes", file.size_bytes.map(|v| v as f64));
        let flags = file.flag_names();
        if !flags.is_empty() {
            f.evidence.text("open_flags", flags.join("|"));
        }
    }
    let mut why = format!(
        "{} has written {} to storage over the window",
        p.cmdline,
        units::rate(w)
    );
    if let (Some(wchar), Some(syscw)) = (p.wchar_per_s, p.syscw_per_s) {
        if syscw > 0.0 {
            let per_call = wchar / syscw;
            let disk_per_call = w / syscw;
            f.evidence
                .num("bytes_per_write_call", per_call)
                .num("storage_bytes_per_write_call", disk_per_call);
            why.push_str(&format!(
                " in {syscw:.0} write calls/s of ~{per_call:.0} bytes each"
            ));
            if per_call <= SMALL_WRITE_BYTES && disk_per_call >= 0.8 * PAGE {
                why.push_str(&format!(
                    ". Each small write costs a whole {PAGE:.0}-byte page on disk: the page is written out between \
                     writes, which is what a sync (fsync/fdatasync/O_SYNC) after every write does. \
                     `iowhy trace --pid {}` counts the syncs",
                    p.pid
                ));
            }
        }
    }
    if let (Some(file), Some(d)) = (file, &disk) {
        why.push_str(&format!(". Its file {} lives on {d}", file.path));
        if let Some(m) = &file.mountpoint {
            why.push_str(&format!(" (mounted at {m})"));
        }
    }
    why.push('.');
    if top_under_pressure && !saturated {
        if let Some(p) = &iv.pressure {
            why.push_str(&format!(
                " No disk is saturated, yet tasks waited on I/O {:.0}% of the window: the biggest writer is the first suspect \
                 (`iowhy pause` tells for sure).",
                p.some_pct
            ));
        }
    }
    f.explanation = why;
    f.remediation = remedies(p.pid);
    f
}

/// Look at its files and calls, then the experiments: pause it, throttle it.
fn remedies(pid: u32) -> Vec<String> {
    vec![
        step(
            format!("iowhy files {}", pid),
            "every file it has open, with size, growth and open flags",
        ),
        step(
            format!("iowhy trace --pid {} --duration 5s", pid),
            "its write and sync calls per file, without stopping it",
        ),
        step(
            format!("iowhy pause {} --for 10s", pid),
            "the kill -STOP experiment, measured: does the stall go away? (always resumed)",
        ),
        step(
            format!("iowhy throttle {} --write-bps 10M --for 10m", pid),
            "limit its writes instead of killing it",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{fixture_interval, fixture_lab_pids};

    #[test]
    fn the_lab_writer_is_named_with_its_file_and_disk() {
        let iv = fixture_interval("disk-fill");
        let pid = fixture_lab_pids("disk-fill")[0];
        let f = top_io_writer(&iv);
        let top = f.first().expect("a writer");
        assert_eq!(top.subject.pid, Some(pid), "{f:#?}");
        assert!(
            top.subject
                .path
                .as_deref()
                .unwrap()
                .ends_with("/app/big.log")
        );
        assert_eq!(top.subject.device.as_deref(), Some("loop0"));
        let w = top.evidence.get_num("write_bytes_per_s").unwrap();
        assert!(w > 8.0 * 1024.0 * 1024.0, "the lab writes 16 MiB/s: {w}");
        // Kernel threads write on behalf of others and are never the top writer.
        assert!(f.iter().all(|x| !x.summary.starts_with("kworker")));
    }

    #[test]
    fn under_io_pressure_the_top_writer_is_a_suspect_not_a_footnote() {
        let mut iv = fixture_interval("fsync-logger");
        let psi = iv.pressure.as_ref().unwrap().some_pct;
        assert!(
            psi >= pressure::PSI_SOME_WARN_PCT,
            "the fixture stalled: {psi}"
        );
        let f = top_io_writer(&iv);
        assert_eq!(f[0].severity, Severity::Warning, "{f:#?}");
        assert!(f[0].explanation.contains("first suspect"));
        // The same writer on a machine without pressure is for the record only.
        iv.pressure.as_mut().unwrap().some_pct = 1.0;
        let f = top_io_writer(&iv);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(f.iter().skip(1).all(|x| x.severity == Severity::Info));
    }

    #[test]
    fn a_writer_to_a_saturated_disk_is_named_beside_a_bigger_one_elsewhere() {
        let mut iv = fixture_interval("disk-fill");
        let pid = fixture_lab_pids("disk-fill")[0];
        let w = iv.process(pid).unwrap().write_bytes_per_s.unwrap();
        // Someone else writes ten times more, to another disk.
        let mut big = iv.process(pid).unwrap().clone();
        big.pid = 999_999;
        big.comm = "cargo".into();
        big.write_bytes_per_s = Some(10.0 * w);
        big.files.clear();
        iv.processes.push(big);
        assert!(
            !top_io_writer(&iv)
                .iter()
                .any(|f| f.subject.pid == Some(pid)),
            "below a quarter of the top writer and its disk is fine: left out"
        );
        // Now the lab's disk is saturated: its writer is named anyway.
        let loop0 = iv.devices.iter_mut().find(|d| d.name == "loop0").unwrap();
        loop0.util_pct = 99.0;
        loop0.aqu_sz = 12.0;
        loop0.await_ms = 250.0;
        let f = top_io_writer(&iv);
        let lab = f
            .iter()
            .find(|f| f.subject.pid == Some(pid))
            .expect("named");
        assert_eq!(lab.severity, Severity::Warning);
        assert_eq!(lab.subject.device.as_deref(), Some("loop0"));
    }

    #[test]
    fn a_quiet_machine_has_no_top_writer() {
        assert!(top_io_writer(&fixture_interval("quiet")).is_empty());
    }
}
