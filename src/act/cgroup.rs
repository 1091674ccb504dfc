//! cgroup files for throttling: which hierarchy controls block I/O here (cgroup v2 `io`
//! or v1 `blkio`), a process's group in it, and the limit files' formats. Paths go
//! through `Roots` (`--sys-root`), so the logic is tested on fake cgroupfs trees.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::parse::cgroup;
use crate::roots::Roots;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hierarchy {
    /// cgroup v2 with the `io` controller: `io.max`.
    V2,
    /// cgroup v1 `blkio`: `blkio.throttle.*_device`.
    V1,
}

/// Where I/O can be limited on this host: v2 when its root offers `io`, else v1 `blkio`.
pub fn detect(roots: &Roots) -> Result<(Hierarchy, PathBuf)> {
    for p in roots.cgroup2_candidates() {
        if let Ok(c) = std::fs::read_to_string(p.join("cgroup.controllers")) {
            if c.split_whitespace().any(|x| x == "io") {
                return Ok((Hierarchy::V2, p));
            }
        }
    }
    let v1 = roots.cgroup1("blkio");
    if v1.join("blkio.throttle.write_bps_device").exists() {
        return Ok((Hierarchy::V1, v1));
    }
    bail!(
        "no cgroup hierarchy with I/O limits here: neither a cgroup v2 `io` controller nor cgroup v1 blkio throttling"
    )
}

/// The process's group in that hierarchy (`/`, `/system.slice/x.service`, ...).
pub fn group_of(roots: &Roots, pid: u32, h: Hierarchy) -> Result<String> {
    let p = roots.pid_dir(pid).join("cgroup");
    let text = super::read_pid_file(roots, pid, "cgroup")?;
    let entries = cgroup::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    let g = match h {
        Hierarchy::V2 => cgroup::unified_path(&entries),
        Hierarchy::V1 => cgroup::v1_path(&entries, "blkio"),
    };
    g.map(str::to_string)
        .with_context(|| format!("pid {pid} is in no {h:?} group"))
}

/// The limits to set, per device. `None` leaves a direction unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    pub read_bps: Option<u64>,
    pub write_bps: Option<u64>,
    pub read_iops: Option<u64>,
    pub write_iops: Option<u64>,
}

/// A line of v2 `io.max`: `8:16 rbps=2097152 wbps=max riops=max wiops=120`.
pub fn io_max_line(major: u32, minor: u32, l: &Limits) -> String {
    let v = |x: Option<u64>| x.map(|n| n.to_string()).unwrap_or_else(|| "max".into());
    format!(
        "{major}:{minor} rbps={} wbps={} riops={} wiops={}",
        v(l.read_bps),
        v(l.write_bps),
        v(l.read_iops),
        v(l.write_iops)
    )
}

/// A v2 `io.max` line that sets only the given limits (the kernel keeps the device's
/// other keys), and of those only the ones that tighten what `prev` (the device's current
/// `rbps=... wbps=...`) allows: a throttle never loosens a limit someone else set.
/// `None` when nothing would change.
pub fn io_max_tighten(major: u32, minor: u32, l: &Limits, prev: Option<&str>) -> Option<String> {
    let current = |key: &str| -> Option<u64> {
        prev?
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    };
    let set: Vec<String> = [
        ("rbps", l.read_bps),
        ("wbps", l.write_bps),
        ("riops", l.read_iops),
        ("wiops", l.write_iops),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        let v = v?;
        match current(k) {
            Some(c) if c <= v => None,
            _ => Some(format!("{k}={v}")),
        }
    })
    .collect();
    (!set.is_empty()).then(|| format!("{major}:{minor} {}", set.join(" ")))
}

/// The v2 `io.max` lines as they are (to restore them on undo), keyed by device.
pub fn parse_io_max(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (dev, rest) = l.trim().split_once(' ')?;
            Some((dev.to_string(), rest.trim().to_string()))
        })
        .collect()
}

/// v1 files and values: one `MAJ:MIN VALUE` line per file; 0 removes the limit.
pub fn v1_lines(major: u32, minor: u32, l: &Limits) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    for (file, val) in [
        ("blkio.throttle.read_bps_device", l.read_bps),
        ("blkio.throttle.write_bps_device", l.write_bps),
        ("blkio.throttle.read_iops_device", l.read_iops),
        ("blkio.throttle.write_iops_device", l.write_iops),
    ] {
        if let Some(x) = val {
            v.push((file, format!("{major}:{minor} {x}")));
        }
    }
    v
}

/// The pids in a group (`cgroup.procs`).
pub fn procs(dir: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// The directory of `group` (as `/proc/PID/cgroup` names it) under `mount`. A group that
/// climbs out (`/../..`: how a process outside a private cgroup namespace looks from
/// inside it, a DaemonSet's view of the host) is refused: joined as is, the writes would
/// land outside cgroupfs.
pub fn join(mount: &std::path::Path, group: &str) -> Result<PathBuf> {
    let mut p = mount.to_path_buf();
    for c in group.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if c == ".." {
            bail!(
                "cgroup {group:?} lies outside the hierarchy iowhy sees (a process outside iowhy's cgroup namespace?): \
                 not acting on it; run iowhy in the host's cgroup namespace"
            );
        }
        p.push(c);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let l = Limits {
            write_bps: Some(10 << 20),
            ..Default::default()
        };
        assert_eq!(
            io_max_line(7, 3, &l),
            "7:3 rbps=max wbps=10485760 riops=max wiops=max"
        );
        assert_eq!(
            v1_lines(254, 0, &l),
            vec![(
                "blkio.throttle.write_bps_device",
                "254:0 10485760".to_string()
            )]
        );
        assert_eq!(
            parse_io_max("8:16 rbps=2097152 wbps=max riops=max wiops=120\n"),
            vec![(
                "8:16".to_string(),
                "rbps=2097152 wbps=max riops=max wiops=120".to_string()
            )]
        );
        assert_eq!(io_max_tighten(7, 3, &l, None).unwrap(), "7:3 wbps=10485760");
        // An existing read limit is left alone; a tighter write limit is kept.
        assert_eq!(
            io_max_tighten(7, 3, &l, Some("rbps=100 wbps=max riops=max wiops=max")).unwrap(),
            "7:3 wbps=10485760"
        );
        assert_eq!(
            io_max_tighten(7, 3, &l, Some("rbps=max wbps=4096 riops=max wiops=max")),
            None
        );
        assert_eq!(
            join(std::path::Path::new("/cg/blkio"), "/a/b").unwrap(),
            PathBuf::from("/cg/blkio/a/b")
        );
        assert_eq!(
            join(std::path::Path::new("/x"), "/").unwrap(),
            PathBuf::from("/x")
        );
    }

    #[test]
    fn a_group_outside_the_namespace_is_refused() {
        // A private cgroup namespace shows the host's groups as `0::/../..`.
        let m = std::path::Path::new("/sys/fs/cgroup");
        for g in ["/../..", "/a/../../etc", ".."] {
            let e = join(m, g).unwrap_err().to_string();
            assert!(e.contains("outside the hierarchy"), "{g}: {e}");
        }
        assert_eq!(join(m, "/./a").unwrap(), m.join("a"));
    }

    #[test]
    fn detects_on_fake_trees() {
        let d = tempfile::tempdir().unwrap();
        let roots = Roots::new(d.path().join("proc"), d.path().join("sys"), d.path());
        assert!(detect(&roots).is_err());
        std::fs::create_dir_all(d.path().join("sys/fs/cgroup/blkio")).unwrap();
        std::fs::write(
            d.path()
                .join("sys/fs/cgroup/blkio/blkio.throttle.write_bps_device"),
            "",
        )
        .unwrap();
        assert_eq!(detect(&roots).unwrap().0, Hierarchy::V1);
        std::fs::create_dir_all(d.path().join("sys/fs/cgroup/unified")).unwrap();
        std::fs::write(
            d.path().join("sys/fs/cgroup/unified/cgroup.controllers"),
            "cpu io memory pids\n",
        )
        .unwrap();
        assert_eq!(detect(&roots).unwrap().0, Hierarchy::V2);
        std::fs::create_dir_all(d.path().join("proc/42")).unwrap();
        std::fs::write(
            d.path().join("proc/42/cgroup"),
            "7:blkio:/user/1\n0::/system.slice/x.service\n",
        )
        .unwrap();
        assert_eq!(group_of(&roots, 42, Hierarchy::V1).unwrap(), "/user/1");
        assert_eq!(
            group_of(&roots, 42, Hierarchy::V2).unwrap(),
            "/system.slice/x.service"
        );
    }
}
