//! `/proc/PID/maps`: one mapping per line, `start-end perms offset MAJ:MIN inode path`
//! (device numbers in hex). iowhy asks one question of it: does this process map a given
//! file? Truncating a mapped file makes the next access to the cut pages raise SIGBUS.

/// The (major, minor, inode) of every file-backed mapping, each once, in order of first
/// mapping. (A JVM or Elasticsearch has up to `vm.max_map_count` = 262144 lines: the
/// duplicate check is a set, not a scan of the list.)
pub fn mapped_files(text: &str) -> Vec<(u32, u32, u64)> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(_range), Some(_perms), Some(_off), Some(dev), Some(ino)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let Some((ma, mi)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(ma), Ok(mi), Ok(ino)) = (
            u32::from_str_radix(ma, 16),
            u32::from_str_radix(mi, 16),
            ino.parse::<u64>(),
        ) else {
            continue;
        };
        // Anonymous memory has inode 0.
        if ino != 0 && seen.insert((ma, mi, ino)) {
            out.push((ma, mi, ino));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_maps() {
        // The first three lines captured on kernel 6.18 (`cat /proc/self/maps`; vda is
        // 254:0 = fe:00); the last one as a shared mapping of a deleted file reads.
        let t = "5555a7834000-5555a7836000 r--p 00000000 fe:00 247030                     /usr/bin/cat\n\
                 5555a7836000-5555a783b000 r-xp 00002000 fe:00 247030                     /usr/bin/cat\n\
                 7ffd1c9e4000-7ffd1ca05000 rw-p 00000000 00:00 0                          [stack]\n\
                 7f1e2a000000-7f1e2a100000 rw-s 00000000 07:03 12 /mnt/lab/data.log (deleted)\n";
        assert_eq!(mapped_files(t), vec![(254, 0, 247030), (7, 3, 12)]);
        assert!(mapped_files("garbage\n1-2 r 0 zz:00 5\n").is_empty());
    }

    #[test]
    fn a_huge_maps_file_is_linear() {
        // 100k distinct file mappings (a big JVM): the old `Vec::contains` took ~5e9 steps.
        let t: String = (0..100_000u64)
            .map(|i| format!("7f00-7f01 r--p 00000000 fe:00 {} /x\n", i + 1))
            .chain(std::iter::once(
                "7f00-7f01 r--p 00000000 fe:00 1 /x\n".to_string(),
            ))
            .collect();
        let started = std::time::Instant::now();
        let m = mapped_files(&t);
        assert_eq!(m.len(), 100_000);
        assert_eq!(m[0], (254, 0, 1));
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }
}
