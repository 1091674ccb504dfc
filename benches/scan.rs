//! The per-process scan, ours against the procfs crate, in the same run: stat + io +
//! status of every process. This is the benchmark behind the decision (in
//! src/source/reader.rs) to keep a careful reader of our own for the every-interval scan.
//!
//!   cargo bench --bench scan            (more processes: bench/run.sh starts 2000)

use std::time::Instant;

use iowhy::roots::Roots;
use iowhy::snapshot::Gaps;
use iowhy::source::ProcessOptions;
use iowhy::source::process::scan;
use iowhy::source::reader::Reader;

fn ours(rounds: u32) -> (f64, usize) {
    let mut r = Reader::live(Roots::default());
    let mut n = 0;
    let t = Instant::now();
    for _ in 0..rounds {
        let mut g = Gaps::default();
        n = scan(&mut r, &ProcessOptions::default(), &mut g)
            .expect("scan")
            .len();
    }
    (t.elapsed().as_secs_f64() / rounds as f64, n)
}

fn theirs(rounds: u32) -> (f64, usize) {
    let mut n = 0;
    let t = Instant::now();
    for _ in 0..rounds {
        n = 0;
        for p in procfs::process::all_processes().expect("procfs").flatten() {
            let _ = p.stat();
            let _ = p.io();
            let _ = p.status();
            n += 1;
        }
    }
    (t.elapsed().as_secs_f64() / rounds as f64, n)
}

fn main() {
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    // Warm the dentry cache for both, then interleave.
    ours(2);
    theirs(2);
    let mut o = Vec::new();
    let mut p = Vec::new();
    for _ in 0..3 {
        o.push(ours(rounds));
        p.push(theirs(rounds));
    }
    let best = |v: &[(f64, usize)]| {
        v.iter()
            .cloned()
            .fold((f64::MAX, 0), |a, b| if b.0 < a.0 { b } else { a })
    };
    let (to, no) = best(&o);
    let (tp, np) = best(&p);
    println!("processes: {no} (ours) / {np} (procfs)");
    println!(
        "iowhy reader : {:8.1} µs per process (stat+status+io)",
        to * 1e6 / no as f64
    );
    println!(
        "procfs crate : {:8.1} µs per process (stat+status+io)",
        tp * 1e6 / np as f64
    );
    println!(
        "ratio procfs/iowhy: {:.2}",
        (tp / np as f64) / (to / no as f64)
    );
}
