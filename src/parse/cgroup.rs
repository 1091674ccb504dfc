//! `/proc/PID/cgroup`: `hierarchy-ID:controller-list:cgroup-path` per line. The cgroup v2
//! line is `0::/path`; v1 lines name their controllers (`7:blkio:/docker/abc`).

use serde::{Deserialize, Serialize};

use super::ParseError;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupEntry {
    pub hierarchy: u32,
    /// Empty for the v2 line; `name=systemd` style names are kept as they are.
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse(text: &str) -> Result<Vec<CgroupEntry>, ParseError> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut it = line.splitn(3, ':');
        let (Some(h), Some(c), Some(p)) = (it.next(), it.next(), it.next()) else {
            return Err(ParseError::new("cgroup line", line.to_string()));
        };
        out.push(CgroupEntry {
            hierarchy: super::num(Some(h), "cgroup hierarchy id")?,
            controllers: if c.is_empty() {
                vec![]
            } else {
                c.split(',').map(str::to_string).collect()
            },
            path: p.to_string(),
        });
    }
    Ok(out)
}

/// The v2 path (`0::/...`), if the process has one.
pub fn unified_path(entries: &[CgroupEntry]) -> Option<&str> {
    entries
        .iter()
        .find(|e| e.hierarchy == 0 && e.controllers.is_empty())
        .map(|e| e.path.as_str())
}

/// The v1 path for one controller (`blkio`, `freezer`).
pub fn v1_path<'a>(entries: &'a [CgroupEntry], controller: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|e| e.controllers.iter().any(|c| c == controller))
        .map(|e| e.path.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_host() {
        // Captured on the development VM (cgroup v1 controllers + cgroup2 at unified).
        let t = "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n0::/\n";
        let e = parse(t).unwrap();
        assert_eq!(e.len(), 5);
        assert_eq!(unified_path(&e), Some("/"));
        assert_eq!(v1_path(&e, "blkio"), Some("/"));
        assert_eq!(e[0].controllers, vec!["name=systemd"]);
    }

    #[test]
    fn path_with_colons_and_bad_lines() {
        let e = parse("0::/kubepods/pod1:x/cri-containerd-abc.scope\n").unwrap();
        assert_eq!(e[0].path, "/kubepods/pod1:x/cri-containerd-abc.scope");
        assert!(parse("garbage\n").is_err());
        assert!(parse("x::/\n").is_err());
    }
}
