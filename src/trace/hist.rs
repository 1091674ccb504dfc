//! A latency histogram with bounded memory: log2 buckets, each split in 16 linear
//! sub-buckets (so a percentile is within ~6% of the true value), from 1 ns to ~18 min.
//! The eBPF program computes the same bucket index in the kernel (`bpf/iowhy.bpf.c`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Exponents 0..=40 (2^40 ns ≈ 18 min); values above land in the last bucket.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (MAX_EXP as usize + 1) * SUB;

/// The bucket of a value in nanoseconds.
pub fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // floor(log2 ns) >= SUB_BITS
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = (ns >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// The smallest value of a bucket, and the first value of the next one.
pub fn bounds(b: usize) -> (u64, u64) {
    if b < SUB {
        return (b as u64, b as u64 + 1);
    }
    let exp = (b / SUB) as u32 + SUB_BITS - 1;
    let sub = (b % SUB) as u64;
    let step = 1u64 << (exp - SUB_BITS);
    let lo = (1u64 << exp) + sub * step;
    (lo, lo + step)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hist {
    /// Stored (by the flight recorder) as `[bucket, count]` pairs of the non-empty buckets.
    #[serde(
        default,
        serialize_with = "sparse_counts",
        deserialize_with = "dense_counts"
    )]
    counts: Vec<u32>,
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
}

fn sparse_counts<S: Serializer>(counts: &[u32], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(
        counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| (b, *n)),
    )
}

/// Bucket indexes out of range (a damaged or foreign recording) are an error, not a panic.
fn dense_counts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    let pairs = Vec::<(usize, u32)>::deserialize(d)?;
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let mut counts = vec![0; BUCKETS];
    for (b, n) in pairs {
        let slot = counts.get_mut(b).ok_or_else(|| {
            serde::de::Error::custom(format!("histogram bucket {b} out of range"))
        })?;
        *slot = n;
    }
    Ok(counts)
}

impl Hist {
    pub fn record(&mut self, ns: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let b = bucket(ns);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.count += 1;
        self.total_ns = self.total_ns.saturating_add(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    /// Add `n` values that fell in bucket `b` (from an in-kernel histogram).
    pub fn add_bucket(&mut self, b: usize, n: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        if b < BUCKETS {
            self.counts[b] = self.counts[b].saturating_add(n.min(u32::MAX as u64) as u32);
        }
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding it, never
    /// above the maximum seen.
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        let total: u64 = self.counts.iter().map(|&c| c as u64).sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut acc = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            acc += c as u64;
            if acc >= rank {
                let (lo, hi) = bounds(b);
                let mid = lo + (hi - lo) / 2;
                return Some(if self.max_ns > 0 {
                    mid.min(self.max_ns)
                } else {
                    mid
                });
            }
        }
        Some(self.max_ns)
    }

    pub fn merge(&mut self, o: &Hist) {
        if o.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a = a.saturating_add(*b);
        }
        self.count += o.count;
        self.total_ns = self.total_ns.saturating_add(o.total_ns);
        self.max_ns = self.max_ns.max(o.max_ns);
    }

    /// Each non-empty bucket as (its smallest value in ns, how many values fell in it).
    pub fn nonzero_buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| (bounds(b).0, *c as u64))
    }

    pub fn mean_ns(&self) -> Option<f64> {
        (self.count > 0).then(|| self.total_ns as f64 / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_contain_their_values() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 20, (1 << 30) + 12345, u64::MAX / 2]) {
            let b = bucket(v);
            assert!(b >= last || v < 100_000, "non-monotonic at {v}");
            last = b;
            let (lo, hi) = bounds(b);
            if b < BUCKETS - 1 {
                assert!(lo <= v && v < hi, "{v} not in [{lo},{hi}) of bucket {b}");
            }
        }
    }

    #[test]
    fn percentiles_within_resolution() {
        let mut h = Hist::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000); // 1 µs .. 10 ms, uniform
        }
        let p50 = h.quantile_ns(0.5).unwrap() as f64;
        let p99 = h.quantile_ns(0.99).unwrap() as f64;
        assert!((p50 / 5_000_000.0 - 1.0).abs() < 0.07, "p50 {p50}");
        assert!((p99 / 9_900_000.0 - 1.0).abs() < 0.07, "p99 {p99}");
        assert_eq!(h.quantile_ns(1.0).unwrap(), 10_000_000);
        assert_eq!(h.max_ns, 10_000_000);
        assert!(Hist::default().quantile_ns(0.5).is_none());
    }
}
