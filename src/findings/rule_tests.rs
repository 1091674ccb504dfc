//! Each rule of the space, pressure and memory families shown firing and not firing on
//! real kernel data: the intervals of fixtures captured from lab incidents, with one
//! number moved where a case needs it (a test says which and why).

use super::{Finding, Kind, Severity, fixture_interval, fixture_lab_pids};
use super::{memory, pressure, space};
use crate::snapshot::TaskWait;

fn only(f: Vec<Finding>, k: Kind) -> Vec<Finding> {
    assert!(f.iter().all(|x| x.kind == k), "{f:#?}");
    f
}

/// Remediation never removes a file that a process holds open: the space would stay
/// used and the writer's lines would go to a deleted inode.
fn assert_no_rm(f: &Finding) {
    for r in &f.remediation {
        let cmd = r.split('#').next().unwrap_or("");
        assert!(
            !cmd.trim_start().starts_with("rm ") && !cmd.contains("&& rm "),
            "unsafe remediation {r:?} in {f:#?}"
        );
    }
}

#[test]
fn a_filling_filesystem_is_full_and_names_the_log_that_fills_it() {
    let iv = fixture_interval("disk-fill");
    let pid = fixture_lab_pids("disk-fill")[0];
    let f = only(space::filesystem_full(&iv), Kind::FilesystemFull);
    assert_eq!(f.len(), 1, "{f:#?}");
    let f = &f[0];
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.subject.mountpoint.as_deref().unwrap().ends_with("/mnt"));
    assert_eq!(f.subject.device.as_deref(), Some("loop0"));
    assert!(f.evidence.get_num("use_pct").unwrap() >= space::FULL_PCT);
    assert!(f.evidence.get_num("time_to_full_s").unwrap() < 60.0);
    assert_eq!(f.subject.pid, Some(pid), "the writer that fills it");
    assert_no_rm(f);

    let r = only(space::runaway_log(&iv), Kind::RunawayLog);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].subject.pid, Some(pid));
    assert!(
        r[0].subject
            .path
            .as_deref()
            .unwrap()
            .ends_with("/app/big.log")
    );
    assert!(r[0].remediation.iter().any(|s| s.contains("iowhy rotate")));
    assert_no_rm(&r[0]);
}

#[test]
fn a_filesystem_that_fills_within_the_hour_is_reported_below_95_pct() {
    let mut iv = fixture_interval("quiet");
    assert!(space::filesystem_full(&iv).is_empty());
    let fs = &mut iv.filesystems[0];
    fs.use_pct = Some(60.0);
    fs.growth_bytes_per_s = Some(1e6);
    fs.time_to_full_s = Some(1800.0);
    let f = space::filesystem_full(&iv);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    // Three hours away is not an incident.
    iv.filesystems[0].time_to_full_s = Some(3.0 * 3600.0);
    assert!(space::filesystem_full(&iv).is_empty());
}

#[test]
fn inode_exhaustion_fires_by_inode_use_only() {
    let mut iv = fixture_interval("quiet");
    assert!(space::inode_exhaustion(&iv).is_empty());
    let i = iv
        .filesystems
        .iter()
        .position(|f| f.mountpoint == "/")
        .unwrap();
    for (pct, want) in [
        (90.0, None),
        (96.0, Some(Severity::Warning)),
        (99.5, Some(Severity::Critical)),
    ] {
        iv.filesystems[i].inodes_use_pct = Some(pct);
        let f = only(space::inode_exhaustion(&iv), Kind::InodeExhaustion);
        assert_eq!(f.first().map(|f| f.severity), want, "{pct}%: {f:#?}");
        if let Some(f) = f.first() {
            assert_eq!(f.subject.mountpoint.as_deref(), Some("/"));
        }
    }
    // Bytes are fine meanwhile: filesystem_full says nothing.
    assert!(space::filesystem_full(&iv).is_empty());
}

#[test]
fn a_deleted_file_held_open_is_reclaimed_through_its_fd_not_removed() {
    let iv = fixture_interval("deleted-open");
    let pid = fixture_lab_pids("deleted-open")[0];
    let f = only(
        space::deleted_file_held_open(&iv),
        Kind::DeletedFileHeldOpen,
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    let f = &f[0];
    assert_eq!(f.subject.pid, Some(pid));
    assert!(f.subject.path.as_deref().unwrap().ends_with("/app/old.log"));
    // The lab wrote 256 MiB before deleting the file.
    let held = f
        .evidence
        .get_num("size_bytes")
        .or_else(|| f.evidence.get_num("held_bytes"))
        .unwrap();
    assert!(held >= 250.0 * 1024.0 * 1024.0, "{held}");
    assert!(
        f.remediation
            .iter()
            .any(|r| r.contains(&format!("{pid}/fd/")) || r.contains("iowhy reclaim")),
        "{f:#?}"
    );
    assert_no_rm(f);
    // A deleted file is not a runaway log, and other fixtures hold no deleted file.
    assert!(space::runaway_log(&iv).is_empty());
    assert!(space::deleted_file_held_open(&fixture_interval("disk-fill")).is_empty());
}

#[test]
fn io_pressure_by_psi_share() {
    let mut iv = fixture_interval("fsync-logger");
    let f = only(pressure::io_pressure(&iv), Kind::IoPressure);
    assert_eq!(f[0].severity, Severity::Critical, "full stalls of 38%");
    let p = iv.pressure.as_mut().unwrap();
    p.full_pct = Some(0.0);
    p.some_pct = 25.0;
    assert_eq!(pressure::io_pressure(&iv)[0].severity, Severity::Warning);
    iv.pressure.as_mut().unwrap().some_pct = 5.0;
    assert!(pressure::io_pressure(&iv).is_empty());
    assert!(pressure::io_pressure(&fixture_interval("quiet")).is_empty());
}

#[test]
fn tasks_stuck_in_d_for_the_whole_window_are_named() {
    let mut iv = fixture_interval("fsync-logger");
    let pid = fixture_lab_pids("fsync-logger")[0];
    // The capture caught the writer passing through D; make it stuck: the same thread in
    // D at both ends with the same context-switch count (it never ran in between).
    let stuck = TaskWait {
        tid: pid,
        wchan: Some("jbd2_log_wait_commit".into()),
        ctxt_switches: Some(4242),
        syscall_fd: None,
    };
    for s in [&mut iv.before, &mut iv.after] {
        for p in s.processes.iter_mut() {
            p.d_tasks.clear();
        }
        let p = s.processes.iter_mut().find(|p| p.pid == pid).unwrap();
        p.d_tasks = vec![stuck.clone()];
    }
    let f = only(pressure::d_state_tasks(&iv), Kind::DStateTasks);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].evidence.get_num("stuck_whole_window"), Some(1.0));
    assert!(f[0].summary.contains("stuck"), "{}", f[0].summary);
    assert_eq!(f[0].subject.pid, Some(pid));
    // Passing through D (it ran in between) is not a finding with one task.
    let p = iv
        .after
        .processes
        .iter_mut()
        .find(|p| p.pid == pid)
        .unwrap();
    p.d_tasks[0].ctxt_switches = Some(4300);
    assert!(pressure::d_state_tasks(&iv).is_empty());
    // Ten threads in D at once are critical, stuck or not.
    let p = iv
        .after
        .processes
        .iter_mut()
        .find(|p| p.pid == pid)
        .unwrap();
    p.d_tasks = (0..pressure::D_TASKS_CRITICAL as u32)
        .map(|i| TaskWait {
            tid: pid + i,
            wchan: Some("io_schedule".into()),
            ctxt_switches: None,
            syscall_fd: None,
        })
        .collect();
    assert_eq!(pressure::d_state_tasks(&iv)[0].severity, Severity::Critical);
}

#[test]
fn dirty_pages_near_the_threshold_throttle_writers() {
    let iv = fixture_interval("buffered-flood");
    let pid = fixture_lab_pids("buffered-flood")[0];
    let f = only(
        memory::dirty_writeback_pressure(&iv),
        Kind::DirtyWritebackPressure,
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].subject.pid, Some(pid), "the throttled writer");
    assert!(f[0].evidence.get_num("dirty_bytes").is_some());
    // The same machine with little dirty data and nobody in balance_dirty_pages: quiet.
    let mut iv = fixture_interval("quiet");
    assert!(memory::dirty_writeback_pressure(&iv).is_empty());
    let m = iv.memory.as_mut().unwrap();
    let t = m.dirty_threshold_bytes.unwrap();
    m.dirty_bytes = t;
    let f = memory::dirty_writeback_pressure(&iv);
    assert_eq!(
        f[0].severity,
        Severity::Critical,
        "at the threshold: {f:#?}"
    );
}
