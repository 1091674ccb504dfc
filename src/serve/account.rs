//! Bounded cardinality by delta accounting (research/fleet.md §7).
//!
//! Each sample, every process's counters are compared with the previous sample's; the
//! delta is added to the series of its *group* (namespace, pod, container, comm) when the
//! group is a member (one of the top N by I/O, I/O wait or sync rate, or was within
//! `linger`), else to the `comm="other"` series of its container (or of the host). So
//! every exported counter only goes up, the series sum to what the node's processes did
//! since iowhy started, and the series count is bounded by 2N + containers + 1 whatever
//! the process churn. Pids, command lines and paths are never labels.

use std::collections::{BTreeMap, HashMap, HashSet};

/// The comm of a container's (or the host's) remainder series.
const OTHER: &str = "other";

/// Who a process is, for the metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Group {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub comm: String,
}

impl Group {
    pub fn host(comm: &str) -> Group {
        Group {
            comm: comm.to_string(),
            ..Default::default()
        }
    }

    /// The remainder series of this group's container (or of the host).
    pub fn other(&self) -> Group {
        Group {
            comm: OTHER.to_string(),
            ..self.clone()
        }
    }

    fn is_other(&self) -> bool {
        self.comm == OTHER
    }

    /// The label values, in `fields::GROUP` order.
    pub fn values(&self) -> [&str; 4] {
        [&self.namespace, &self.pod, &self.container, &self.comm]
    }
}

/// Counters of one series (or one process's deltas): all only go up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
    /// Block I/O delay in clock ticks; `None` while delay accounting cannot be trusted.
    pub io_wait_ticks: Option<u64>,
    /// Sync calls by call name (fsync, fdatasync, ..., o_sync).
    pub sync_calls: BTreeMap<&'static str, u64>,
    pub sync_ns: u64,
}

impl Counters {
    pub fn add(&mut self, d: &Counters) {
        self.read_bytes = self.read_bytes.saturating_add(d.read_bytes);
        self.write_bytes = self.write_bytes.saturating_add(d.write_bytes);
        self.cancelled_write_bytes = self
            .cancelled_write_bytes
            .saturating_add(d.cancelled_write_bytes);
        if let Some(t) = d.io_wait_ticks {
            self.io_wait_ticks = Some(self.io_wait_ticks.unwrap_or(0).saturating_add(t));
        }
        for (k, v) in &d.sync_calls {
            let e = self.sync_calls.entry(k).or_default();
            *e = e.saturating_add(*v);
        }
        self.sync_ns = self.sync_ns.saturating_add(d.sync_ns);
    }

    fn sync_count(&self) -> u64 {
        self.sync_calls.values().sum()
    }
}

/// A process's cumulative counters as the kernel reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Raw {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
    pub io_wait_ticks: Option<u64>,
}

/// One process in one sample.
#[derive(Clone, Debug)]
pub struct Sample {
    /// pid and start time: a reused pid is another process.
    pub key: (u32, u64),
    pub group: Group,
    /// `None` when `/proc/PID/io` could not be read.
    pub raw: Option<Raw>,
    /// Started after the previous sample: all its counters are new.
    pub new: bool,
    /// Already deltas (tracing counts within the window).
    pub traced: Counters,
    /// Its threads blocked now (D state, or writing into a full pipe): a stuck process
    /// does no I/O, and is the one to see by name.
    pub blocked: u64,
}

/// One exported series.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub counters: Counters,
    /// Until when (sample clock, seconds) the group stays a member.
    member_until: f64,
    /// When a process of this series' container was last seen (for `other` series).
    last_seen: f64,
}

#[derive(Debug)]
pub struct Accounts {
    top_n: usize,
    linger_s: f64,
    last: HashMap<(u32, u64), Raw>,
    series: BTreeMap<Group, Series>,
}

fn delta(now: Raw, then: Option<Raw>) -> Counters {
    let z = Raw::default();
    let t = then.unwrap_or(z);
    // A counter that went down (it cannot for one process; a wrong pairing could) adds
    // nothing rather than wrapping.
    let d = |a: u64, b: u64| a.saturating_sub(b);
    Counters {
        read_bytes: d(now.read_bytes, t.read_bytes),
        write_bytes: d(now.write_bytes, t.write_bytes),
        cancelled_write_bytes: d(now.cancelled_write_bytes, t.cancelled_write_bytes),
        io_wait_ticks: match (now.io_wait_ticks, then) {
            (Some(n), None) => Some(n),
            (Some(n), Some(t)) => t.io_wait_ticks.map(|o| n.saturating_sub(o)),
            (None, _) => None,
        },
        sync_calls: BTreeMap::new(),
        sync_ns: 0,
    }
}

impl Accounts {
    pub fn new(top_n: usize, linger_s: f64) -> Accounts {
        Accounts {
            top_n,
            linger_s,
            last: HashMap::new(),
            series: BTreeMap::new(),
        }
    }

    pub fn series(&self) -> &BTreeMap<Group, Series> {
        &self.series
    }

    /// Is `g` exported under its own name (else it adds to its container's `other`)?
    fn is_member(&self, g: &Group, now: f64) -> bool {
        !g.is_other() && self.series.get(g).is_some_and(|s| s.member_until >= now)
    }

    /// The series a group's numbers go to now.
    pub fn series_of(&self, g: &Group, now: f64) -> Group {
        if self.is_member(g, now) {
            g.clone()
        } else {
            g.other()
        }
    }

    /// Account one sample taken at `now` (seconds on any monotonic clock). Returns each
    /// group's delta of this sample (before membership), for the caller's checks.
    pub fn update(&mut self, now: f64, samples: &[Sample]) -> BTreeMap<Group, Counters> {
        let mut by_group: BTreeMap<Group, Counters> = BTreeMap::new();
        let mut blocked: HashMap<Group, u64> = HashMap::new();
        let mut seen = HashSet::with_capacity(samples.len());
        for s in samples {
            seen.insert(s.key);
            let mut d = match s.raw {
                Some(raw) => {
                    let then = self.last.insert(s.key, raw);
                    match (then, s.new) {
                        (Some(t), _) => delta(raw, Some(t)),
                        (None, true) => delta(raw, None),
                        // Seen for the first time but older than the last sample (iowhy
                        // just started, or its io was unreadable): a baseline only.
                        (None, false) => Counters::default(),
                    }
                }
                None => Counters::default(),
            };
            d.add(&s.traced);
            if s.blocked > 0 {
                *blocked.entry(s.group.clone()).or_default() += s.blocked;
            }
            match by_group.get_mut(&s.group) {
                Some(c) => c.add(&d),
                None => {
                    by_group.insert(s.group.clone(), d);
                }
            }
        }
        // Every container (and the host) has its remainder series.
        let mut others: Vec<Group> = by_group.keys().map(Group::other).collect();
        others.dedup();
        for o in others {
            self.series.entry(o).or_default().last_seen = now;
        }
        self.last.retain(|k, _| seen.contains(k));
        self.elect(now, &by_group, &blocked);
        for (g, d) in &by_group {
            let to = self.series_of(g, now);
            self.series.entry(to).or_default().counters.add(d);
        }
        // Members past their linger, and remainders of containers gone for as long, end
        // (Prometheus marks them stale).
        let linger = self.linger_s;
        self.series.retain(|g, s| {
            if g.is_other() {
                g.namespace.is_empty() && g.pod.is_empty() && g.container.is_empty()
                    || now - s.last_seen <= linger
            } else {
                s.member_until >= now
            }
        });
        by_group
    }

    /// This sample's top groups (by I/O bytes, I/O wait, sync calls and blocked threads,
    /// each ranked separately; a group's best rank counts) become members for `linger`;
    /// at most 2N members in all, the longest-idle lingering ones making room.
    fn elect(
        &mut self,
        now: f64,
        by_group: &BTreeMap<Group, Counters>,
        blocked: &HashMap<Group, u64>,
    ) {
        let stuck = |g: &Group| blocked.get(g).copied().unwrap_or(0);
        let keyed: Vec<(&Group, [u64; 4])> = by_group
            .iter()
            .filter(|(g, _)| !g.is_other())
            .map(|(g, c)| {
                let k = [
                    c.write_bytes + c.read_bytes,
                    c.io_wait_ticks.unwrap_or(0),
                    c.sync_count(),
                    stuck(g),
                ];
                (g, k)
            })
            .filter(|(_, k)| k.iter().any(|v| *v > 0))
            .collect();
        let mut best: HashMap<&Group, usize> = HashMap::new();
        for i in 0..4 {
            let mut v: Vec<&(&Group, [u64; 4])> = keyed.iter().filter(|(_, k)| k[i] > 0).collect();
            v.sort_by(|a, b| b.1[i].cmp(&a.1[i]).then(a.0.cmp(b.0)));
            for (rank, (g, _)) in v.iter().enumerate() {
                let e = best.entry(*g).or_insert(rank);
                *e = (*e).min(rank);
            }
        }
        let mut ranked: Vec<(&Group, usize)> = best.into_iter().collect();
        ranked.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
        let until = now + self.linger_s;
        for (g, _) in ranked.into_iter().take(self.top_n) {
            let s = self.series.entry(g.clone()).or_default();
            s.member_until = until;
        }
        let cap = 2 * self.top_n;
        let mut members: Vec<(Group, f64)> = self
            .series
            .iter()
            .filter(|(g, s)| !g.is_other() && s.member_until >= now)
            .map(|(g, s)| (g.clone(), s.member_until))
            .collect();
        if members.len() > cap {
            members.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            for (g, _) in members.iter().take(members.len() - cap) {
                self.series.remove(g);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(pid: u32, comm: &str, container: &str, w: u64, new: bool) -> Sample {
        Sample {
            key: (pid, 1),
            group: Group {
                container: container.to_string(),
                pod: if container.is_empty() {
                    String::new()
                } else {
                    format!("pod-{container}")
                },
                namespace: if container.is_empty() {
                    String::new()
                } else {
                    "default".into()
                },
                comm: comm.to_string(),
            },
            raw: Some(Raw {
                write_bytes: w,
                ..Default::default()
            }),
            new,
            traced: Counters::default(),
            blocked: 0,
        }
    }

    #[test]
    fn the_first_sample_is_a_baseline_and_new_processes_count_from_their_start() {
        let mut a = Accounts::new(2, 60.0);
        a.update(0.0, &[sample(1, "old", "", 1_000_000, false)]);
        let total: u64 = a.series().values().map(|s| s.counters.write_bytes).sum();
        assert_eq!(
            total, 0,
            "what a process did before iowhy started is not ours"
        );
        a.update(
            1.0,
            &[
                sample(1, "old", "", 1_000_100, false),
                sample(2, "new", "", 50, true),
            ],
        );
        let g = |c: &str| {
            a.series()
                .get(&Group::host(c))
                .map(|s| s.counters.write_bytes)
        };
        assert_eq!((g("old"), g("new")), (Some(100), Some(50)));
    }

    #[test]
    fn beyond_the_top_n_the_rest_goes_to_other_of_its_container() {
        let mut a = Accounts::new(1, 60.0);
        let first = [
            sample(1, "big", "web", 0, false),
            sample(2, "small", "web", 0, false),
            sample(3, "tiny", "", 0, false),
        ];
        a.update(0.0, &first);
        a.update(
            1.0,
            &[
                sample(1, "big", "web", 1000, false),
                sample(2, "small", "web", 10, false),
                sample(3, "tiny", "", 5, false),
            ],
        );
        let names: Vec<(String, String, u64)> = a
            .series()
            .iter()
            .map(|(g, s)| (g.container.clone(), g.comm.clone(), s.counters.write_bytes))
            .collect();
        assert_eq!(
            names,
            vec![
                ("".into(), "other".into(), 5),
                ("web".into(), "big".into(), 1000),
                ("web".into(), "other".into(), 10),
            ]
        );
    }

    #[test]
    fn a_blocked_process_is_seen_by_name_though_it_does_no_io() {
        let mut a = Accounts::new(1, 60.0);
        let mut stuck = sample(1, "stuck-writer", "", 0, false);
        a.update(0.0, &[stuck.clone()]);
        stuck.blocked = 1;
        a.update(1.0, &[stuck]);
        assert!(a.is_member(&Group::host("stuck-writer"), 1.0));
    }

    #[test]
    fn a_member_lingers_then_ends() {
        let mut a = Accounts::new(1, 10.0);
        a.update(0.0, &[sample(1, "burst", "", 0, false)]);
        a.update(1.0, &[sample(1, "burst", "", 100, false)]);
        assert!(a.is_member(&Group::host("burst"), 1.0));
        // Quiet, but still within linger: its series stays (and keeps its total).
        a.update(5.0, &[sample(1, "burst", "", 100, false)]);
        assert!(a.series().contains_key(&Group::host("burst")));
        a.update(12.0, &[sample(1, "burst", "", 100, false)]);
        assert!(!a.series().contains_key(&Group::host("burst")));
    }

    fn churn() -> impl Strategy<Value = Vec<Vec<(u32, u8, u8, u16)>>> {
        // Rounds of (pid, comm index, container index, bytes written this round).
        prop::collection::vec(
            prop::collection::vec((0u32..40, 0u8..12, 0u8..4, 0u16..5000), 0..30),
            1..25,
        )
    }

    proptest! {
        #[test]
        fn counters_stay_monotonic_and_sum_to_the_total_under_churn(rounds in churn(), n in 1usize..5) {
            let mut a = Accounts::new(n, 3.0);
            let mut cumulative: HashMap<u32, u64> = HashMap::new();
            let mut prev: BTreeMap<Group, u64> = BTreeMap::new();
            let mut dropped = 0u64;
            let mut accounted = 0u64;
            for (i, round) in rounds.iter().enumerate() {
                let mut samples = Vec::new();
                let mut pids = HashSet::new();
                for &(pid, comm, ctr, w) in round {
                    if !pids.insert(pid) {
                        continue;
                    }
                    let c = cumulative.entry(pid).or_insert(0);
                    *c += w as u64;
                    let container = if ctr == 0 { String::new() } else { format!("c{ctr}") };
                    samples.push(sample(pid, &format!("comm{comm}"), &container, *c, false));
                }
                // Processes not in this round exited: a pid seen again is a new process.
                cumulative.retain(|p, _| pids.contains(p));
                let deltas = a.update(i as f64, &samples);
                accounted += deltas.values().map(|d| d.write_bytes).sum::<u64>();
                let now: BTreeMap<Group, u64> = a
                    .series()
                    .iter()
                    .map(|(g, s)| (g.clone(), s.counters.write_bytes))
                    .collect();
                for (g, v) in &prev {
                    match now.get(g) {
                        Some(n) => prop_assert!(n >= v, "{g:?} went down: {v} -> {n}"),
                        None => dropped += v,
                    }
                }
                let sum: u64 = now.values().sum();
                prop_assert_eq!(sum + dropped, accounted);
                let members = now.keys().filter(|g| !g.is_other()).count();
                prop_assert!(members <= 2 * n, "{} members for n={}", members, n);
                prev = now;
            }
        }
    }
}
