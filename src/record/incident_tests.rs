use super::*;

fn diagnosis(fixture: &str) -> Diagnosis {
    let iv = crate::findings::fixture_interval(fixture);
    let found = crate::findings::run_all(&iv);
    Diagnosis::new(iv, found, "none")
}

const MIN: i64 = 60_000;

#[test]
fn a_stall_opens_one_incident_that_grows_while_it_lasts_and_is_rate_limited() {
    let d = tempfile::tempdir().unwrap();
    let burst = Arc::new(Burst::default());
    let opts = IncidentOptions {
        psi_full_pct: 10.0,
        burst: Duration::from_secs(60),
        cooldown: Duration::from_secs(1800),
    };
    let mut inc = Incidents::new(d.path(), opts, burst.clone()).unwrap();
    let stall = diagnosis("fsync-logger");
    let quiet = diagnosis("quiet");
    assert_eq!(trigger(&quiet, false, 10.0), None);
    let kind = trigger(&stall, false, 10.0).expect("the fixture's stall is critical");
    let t0 = stall.interval.after.wall_unix_ms;
    inc.observe(&stall, t0);
    assert!(burst.active(t0 + 30_000) && !burst.active(t0 + 61_000));
    // All night long: one incident, growing.
    for k in 1..=100 {
        inc.observe(&stall, t0 + k * MIN);
    }
    inc.observe(&quiet, t0 + 101 * MIN);
    let all = list(d.path()).unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let i = &all[0];
    assert_eq!((i.kind.as_str(), i.windows), (kind.as_str(), 101));
    assert!(
        (i.duration_s - (100 * 60) as f64).abs() < 5.0,
        "{}",
        i.duration_s
    );
    assert!(
        i.markdown.contains("fsync") || i.markdown.contains("I/O"),
        "{}",
        i.markdown
    );
    assert_eq!(
        i.culprit.as_ref().and_then(|c| c.pid),
        Some(crate::findings::fixture_lab_pids("fsync-logger")[0])
    );
    assert_eq!(inc.counts.lock().unwrap().get(&kind), Some(&1));
    // The same stall again soon after: not a new incident; after the cooldown, one.
    inc.observe(&stall, t0 + 110 * MIN);
    inc.observe(&quiet, t0 + 112 * MIN);
    assert_eq!(list(d.path()).unwrap().len(), 1);
    inc.observe(&stall, t0 + 200 * MIN);
    assert_eq!(list(d.path()).unwrap().len(), 2);
    assert_eq!(inc.counts.lock().unwrap().get(&kind), Some(&2));
}

#[test]
fn psi_alone_is_a_stall_when_the_trigger_fired_or_the_window_was_full_enough() {
    let mut quiet = diagnosis("quiet");
    assert_eq!(trigger(&quiet, true, 10.0).as_deref(), Some("psi_io_full"));
    if let Some(p) = quiet.interval.pressure.as_mut() {
        p.full_pct = Some(25.0);
        assert_eq!(trigger(&quiet, false, 10.0).as_deref(), Some("psi_io_full"));
        assert_eq!(trigger(&quiet, false, 30.0), None);
    }
}
