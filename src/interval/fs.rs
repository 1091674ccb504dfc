//! Filesystems over an interval: space, inodes, growth and time until full, one entry per
//! filesystem (bind mounts of the same device are folded into the shortest mountpoint).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::snapshot::{FsSpace, Mount, Snapshot};

#[derive(Clone, Debug, Default, Serialize)]
pub struct FsRates {
    pub mountpoint: String,
    pub source: String,
    pub fstype: String,
    pub major: u32,
    pub minor: u32,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub avail_bytes: u64,
    pub use_pct: Option<f64>,
    pub inodes_total: u64,
    pub inodes_free: u64,
    pub inodes_use_pct: Option<f64>,
    /// Change of used bytes per second over the window (negative when space was freed).
    pub growth_bytes_per_s: Option<f64>,
    /// Seconds until `avail_bytes` reaches zero at the current growth; `None` when not
    /// growing.
    pub time_to_full_s: Option<f64>,
    /// Other mountpoints of the same filesystem (bind mounts).
    pub also_mounted_at: Vec<String>,
    /// Block devices behind it (its own, then the disks under it).
    pub devices: Vec<String>,
}

/// One entry per filesystem: mounts sharing a device number and a root are the same
/// filesystem; the shortest mountpoint names it.
pub fn distinct(mounts: &[Mount]) -> Vec<(&Mount, Vec<String>)> {
    // A mount over an existing mountpoint hides the one below it: keep the last per path.
    let visible: Vec<&Mount> = mounts
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            !mounts[i + 1..]
                .iter()
                .any(|later| later.mountpoint == m.mountpoint)
        })
        .map(|(_, m)| m)
        .collect();
    let mut by_dev: BTreeMap<(u32, u32, String), Vec<&Mount>> = BTreeMap::new();
    for m in visible
        .into_iter()
        .filter(|m| m.space.as_ref().is_some_and(|s| s.size_bytes > 0))
    {
        // tmpfs instances all have major 0 but distinct minors: the key keeps them apart.
        by_dev
            .entry((m.major, m.minor, m.fstype.clone()))
            .or_default()
            .push(m);
    }
    let mut out: Vec<(&Mount, Vec<String>)> = by_dev
        .into_values()
        .map(|mut v| {
            v.sort_by_key(|m| (m.mountpoint.len(), m.mountpoint.clone()));
            let others = v[1..].iter().map(|m| m.mountpoint.clone()).collect();
            (v[0], others)
        })
        .collect();
    out.sort_by(|a, b| a.0.mountpoint.cmp(&b.0.mountpoint));
    out
}

pub fn rates(before: &Snapshot, after: &Snapshot, elapsed_s: f64) -> Vec<FsRates> {
    distinct(&after.mounts)
        .into_iter()
        .map(|(m, others)| {
            let space = m.space.clone().unwrap_or_default();
            let prev: Option<&FsSpace> = before
                .mounts
                .iter()
                .find(|o| o.major == m.major && o.minor == m.minor && o.mountpoint == m.mountpoint)
                .and_then(|o| o.space.as_ref());
            let growth = prev
                .filter(|_| elapsed_s > 0.0)
                .map(|p| (space.used_bytes as f64 - p.used_bytes as f64) / elapsed_s);
            entry(m, &space, growth, others, after)
        })
        .collect()
}

/// Seconds until `avail_bytes` are used up at this growth; `None` when nothing grows.
pub fn time_to_full_s(avail_bytes: u64, growth_bytes_per_s: Option<f64>) -> Option<f64> {
    growth_bytes_per_s
        .filter(|g| *g > 0.0)
        .map(|g| avail_bytes as f64 / g)
}

fn entry(
    m: &Mount,
    space: &FsSpace,
    growth: Option<f64>,
    others: Vec<String>,
    s: &Snapshot,
) -> FsRates {
    let time_to_full_s = time_to_full_s(space.avail_bytes, growth);
    FsRates {
        mountpoint: m.mountpoint.clone(),
        source: m.source.clone(),
        fstype: m.fstype.clone(),
        major: m.major,
        minor: m.minor,
        size_bytes: space.size_bytes,
        used_bytes: space.used_bytes,
        avail_bytes: space.avail_bytes,
        use_pct: space.use_pct(),
        inodes_total: space.inodes_total,
        inodes_free: space.inodes_free,
        inodes_use_pct: space.inodes_use_pct(),
        growth_bytes_per_s: growth,
        time_to_full_s,
        also_mounted_at: others,
        devices: if m.major != 0 {
            s.disks_behind(m.major, m.minor)
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_growth_has_a_time_to_full() {
        assert_eq!(time_to_full_s(1000, Some(10.0)), Some(100.0));
        assert_eq!(time_to_full_s(1000, Some(0.0)), None);
        assert_eq!(time_to_full_s(1000, Some(-5.0)), None);
        assert_eq!(time_to_full_s(1000, None), None);
    }
}
