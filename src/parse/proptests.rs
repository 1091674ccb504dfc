//! Every parser on arbitrary bytes: it returns a value or a `ParseError`, never panics.
//! The bytes come in both as the lossy text a reader used to give and as a lossless host
//! string (`crate::hoststr::from_bytes`, which can hold chars up to U+10FFFF). Where the
//! kernel's format allows a round trip (comm inside parens, octal-escaped mountpoints,
//! diskstats counters), the parsed value must be the one written.

use proptest::prelude::*;

use super::*;
use crate::hoststr;

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..4096)
}

/// The same bytes as the two kinds of text a parser may be handed.
fn texts(b: &[u8]) -> [String; 2] {
    [
        String::from_utf8_lossy(b).into_owned(),
        hoststr::from_bytes(b),
    ]
}

/// Every text parser of this module, on one text.
fn all_parsers(t: &str) {
    let _ = cgroup::parse(t);
    let _ = diskstats::parse(t);
    let _ = diskstats::parse_line(t);
    let _ = fdinfo::parse(t);
    let _ = fdlink::parse(t);
    let _ = kv::parse_io(t);
    let _ = kv::parse_status(t);
    let _ = kv::parse_meminfo(t);
    let _ = kv::parse_vmstat(t);
    let _ = kv::parse_loadavg(t);
    let _ = kv::parse_uptime(t);
    let _ = maps::mapped_files(t);
    let _ = mountinfo::parse(t);
    let _ = mountinfo::parse_line(t);
    let _ = pid_stat::parse(t);
    let _ = psi::parse(t);
    let _ = stack::parse_stack(t);
    let _ = stack::parse_syscall(t);
    let _ = sysblock::parse_dev(t);
    let _ = sysblock::parse_scheduler(t);
    let _ = sysblock::parse_u64(t);
    let _ = unescape_octal(t);
    if let Ok(f) = tracefs::parse(t) {
        // Field offsets and sizes come from the text: reading a record must stay in bounds.
        let raw = t.as_bytes();
        for field in f.fields.values() {
            let _ = tracefs::read_u64(raw, field);
            let _ = tracefs::read_i64(raw, field);
            let _ = tracefs::read_str(raw, field);
        }
    }
}

/// The kernel's escaping of a mountinfo path (fs/proc_namespace.c `mangle`: space, tab,
/// newline and backslash as octal).
fn mangle(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in path {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

const STAT_TAIL: &str = " R 2768 3343 2768 34816 3343 4194304 97 0 0 0 0 0 0 0 20 0 1 0 \
344378 8368128 254 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";

proptest! {
    #[test]
    fn no_parser_panics_on_any_bytes(b in bytes()) {
        for t in texts(&b) {
            all_parsers(&t);
        }
    }

    /// Real files with a few bytes overwritten: closer to what a parser can mistake for
    /// its format than noise is.
    #[test]
    fn no_parser_panics_on_damaged_real_files(
        pos in proptest::collection::vec((0usize..600, any::<u8>()), 1..8)
    ) {
        for real in [
            "259       0 nvme0n1 14919 3916 1370158 4402 150553 88290 5694794 68318 0 79276 115108 0 0 0 0 8271 42387\n",
            "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
            "some avg10=1.00 avg60=2.00 avg300=3.00 total=123456\nfull avg10=0.50 avg60=1.00 avg300=1.50 total=65432\n",
            "pos:\t0\nflags:\t0102001\nmnt_id:\t29\nino:\t1234\n",
            "Name:\tcat\nState:\tR (running)\nUid:\t0\t0\t0\t0\nvoluntary_ctxt_switches:\t1\n",
            "MemTotal: 24684084 kB\nDirty: 60 kB\nWriteback: 0 kB\n",
            "name: sys_enter_write\nID: 312\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n",
            "12 (cat) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n",
            "0::/system.slice/docker-abc.scope\n1:name=systemd:/user.slice\n",
        ] {
            let mut b = real.as_bytes().to_vec();
            for &(p, v) in &pos {
                if let Some(x) = b.get_mut(p % real.len()) {
                    *x = v;
                }
            }
            for t in texts(&b) {
                all_parsers(&t);
            }
        }
    }

    /// `comm` is any 1-15 bytes but NUL, parentheses and newlines included: the parser
    /// finds it by the last `)`, and the lossless text gives back its exact bytes.
    #[test]
    fn pid_stat_comm_round_trips_any_bytes(
        comm in proptest::collection::vec(1u8..=255, 0..16)
    ) {
        let mut line = b"4242 (".to_vec();
        line.extend_from_slice(&comm);
        line.push(b')');
        line.extend_from_slice(STAT_TAIL.as_bytes());
        line.push(b'\n');
        let s = pid_stat::parse(&hoststr::from_bytes(&line)).unwrap();
        prop_assert_eq!(hoststr::to_bytes(&s.comm), comm);
        prop_assert_eq!(s.pid, 4242);
        prop_assert_eq!(s.state, 'R');
        prop_assert_eq!(s.start_ticks, 344378);
    }

    /// A mountpoint of any bytes, escaped the kernel's way, parses back to those bytes.
    #[test]
    fn mountinfo_mountpoint_round_trips_any_bytes(
        path in proptest::collection::vec(1u8..=255, 1..64)
    ) {
        let mut line = b"36 35 98:0 / /".to_vec();
        line.extend_from_slice(&mangle(&path));
        line.extend_from_slice(b" rw,noatime shared:1 - ext4 /dev/vda rw\n");
        let m = mountinfo::parse_line(hoststr::from_bytes(&line).trim_end()).unwrap();
        let mut want = b"/".to_vec();
        want.extend_from_slice(&path);
        prop_assert_eq!(hoststr::to_bytes(&m.mountpoint), want);
        prop_assert_eq!(m.fstype, "ext4");
    }

    /// Counters of any size come back as written (sectors are not multiplied here).
    #[test]
    fn diskstats_counters_round_trip(v in proptest::collection::vec(any::<u64>(), 17)) {
        let line = format!(
            "259 0 nvme0n1 {}",
            v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ")
        );
        let d = diskstats::parse_line(&line).unwrap();
        prop_assert_eq!(d.rd_ios, v[0]);
        prop_assert_eq!(d.wr_sectors, v[6]);
        prop_assert_eq!(d.rd_ticks_ms, v[3] as u32);
    }

    /// meminfo in bytes, or no value when kB * 1024 would not fit.
    #[test]
    fn meminfo_kib_is_bytes_or_none(kb in any::<u64>()) {
        let m = kv::parse_meminfo(&format!("MemTotal: 1 kB\nDirty: {kb} kB\n")).unwrap();
        prop_assert_eq!(m.dirty_bytes, kb.checked_mul(1024));
    }

    /// A file-link path of any bytes, deleted or not.
    #[test]
    fn fdlink_path_round_trips(path in proptest::collection::vec(1u8..=255, 0..64), del in any::<bool>()) {
        let mut t = b"/".to_vec();
        t.extend_from_slice(&path);
        let want = t.clone();
        if del {
            t.extend_from_slice(b" (deleted)");
        }
        let l = fdlink::parse(&hoststr::from_bytes(&t));
        prop_assert_eq!(l.kind, fdlink::FdKind::Path);
        prop_assert!(l.deleted_suffix || !del);
        if del || !l.deleted_suffix {
            prop_assert_eq!(hoststr::to_bytes(&l.path), want);
        }
    }
}
