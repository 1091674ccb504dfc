//! Files made of `key value` lines: `/proc/PID/io`, `/proc/PID/status`, `/proc/meminfo`,
//! `/proc/vmstat`. Each has its own typed view; unknown keys are ignored and missing keys
//! are `None`, because the set of keys changes between kernel versions.

use serde::{Deserialize, Serialize};

use super::ParseError;

/// Iterate `key: value` (or `key value`) lines, trimming the separator.
fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| {
        let (k, v) = match l.split_once(':') {
            Some((k, v)) => (k, v),
            None => l.split_once(' ')?,
        };
        Some((k.trim(), v.trim()))
    })
}

fn first_u64(v: &str) -> Option<u64> {
    v.split_ascii_whitespace().next()?.parse().ok()
}

/// `/proc/PID/io` (Documentation/filesystems/proc.rst, section "<pid>/io"). For a process
/// (not a task) the kernel sums all its threads, live and exited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcIo {
    /// Bytes passed to read()-like syscalls, whether or not they hit the disk.
    pub rchar: u64,
    /// Bytes passed to write()-like syscalls.
    pub wchar: u64,
    pub syscr: u64,
    pub syscw: u64,
    /// Bytes this process caused to be fetched from storage.
    pub read_bytes: u64,
    /// Bytes this process caused to be sent to storage: counted when a page cache page
    /// becomes dirty, so a 40-byte write to a clean page counts 4096.
    pub write_bytes: u64,
    /// Dirty bytes this process truncated away before writeback.
    pub cancelled_write_bytes: u64,
}

pub fn parse_io(text: &str) -> Result<ProcIo, ParseError> {
    let mut io = ProcIo::default();
    let mut seen = 0;
    for (k, v) in pairs(text) {
        let slot = match k {
            "rchar" => &mut io.rchar,
            "wchar" => &mut io.wchar,
            "syscr" => &mut io.syscr,
            "syscw" => &mut io.syscw,
            "read_bytes" => &mut io.read_bytes,
            "write_bytes" => &mut io.write_bytes,
            "cancelled_write_bytes" => &mut io.cancelled_write_bytes,
            _ => continue,
        };
        *slot = v
            .parse()
            .map_err(|_| ParseError::new("io", format!("{k}: not a number: {v:?}")))?;
        seen += 1;
    }
    if seen < 7 {
        return Err(ParseError::new(
            "io",
            format!("only {seen} of 7 counters present"),
        ));
    }
    Ok(io)
}

/// The parts of `/proc/PID/status` iowhy uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub name: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub threads: Option<u32>,
    /// The pid in each nested pid namespace, outermost first (NSpid, 4.1+).
    pub nspid: Vec<u32>,
    /// `Kthread: 1` (6.x) marks kernel threads.
    pub kthread: Option<bool>,
    /// voluntary_ctxt_switches + nonvoluntary_ctxt_switches.
    pub ctxt_switches: Option<u64>,
    /// Signals with a handler (SigCgt) and ignored ones (SigIgn): bit n-1 for signal n.
    pub sig_caught: Option<u64>,
    pub sig_ignored: Option<u64>,
}

pub fn parse_status(text: &str) -> Result<Status, ParseError> {
    let mut s = Status::default();
    for (k, v) in pairs(text) {
        match k {
            "Name" => s.name = Some(v.to_string()),
            // Real, effective, saved, filesystem: the real id is the owner.
            "Uid" => s.uid = first_u64(v).map(|x| x as u32),
            "Gid" => s.gid = first_u64(v).map(|x| x as u32),
            "Threads" => s.threads = first_u64(v).map(|x| x as u32),
            "NSpid" => {
                s.nspid = v
                    .split_ascii_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            }
            "Kthread" => s.kthread = first_u64(v).map(|x| x == 1),
            "SigCgt" => s.sig_caught = u64::from_str_radix(v, 16).ok(),
            "SigIgn" => s.sig_ignored = u64::from_str_radix(v, 16).ok(),
            "voluntary_ctxt_switches" | "nonvoluntary_ctxt_switches" => {
                if let Some(n) = first_u64(v) {
                    s.ctxt_switches = Some(s.ctxt_switches.unwrap_or(0).saturating_add(n));
                }
            }
            _ => {}
        }
    }
    if s.name.is_none() && s.uid.is_none() {
        return Err(ParseError::new("status", "no Name or Uid line"));
    }
    Ok(s)
}

/// The parts of `/proc/meminfo` that tell about dirty data, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemInfo {
    pub mem_total_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    pub dirty_bytes: Option<u64>,
    pub writeback_bytes: Option<u64>,
}

pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let mut m = MemInfo::default();
    // Values are in kB (really KiB); convert once, here. A value past 16 EiB is not
    // memory, it is a broken or fake file: no value rather than a wrapped one.
    let kib = |v: &str| first_u64(v).and_then(|x| x.checked_mul(1024));
    for (k, v) in pairs(text) {
        match k {
            "MemTotal" => m.mem_total_bytes = kib(v),
            "MemAvailable" => m.mem_available_bytes = kib(v),
            "Dirty" => m.dirty_bytes = kib(v),
            "Writeback" => m.writeback_bytes = kib(v),
            _ => {}
        }
    }
    if m.mem_total_bytes.is_none() {
        return Err(ParseError::new("meminfo", "no MemTotal line"));
    }
    Ok(m)
}

/// The parts of `/proc/vmstat` about dirty page throttling, in pages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmStat {
    pub nr_dirty: Option<u64>,
    pub nr_writeback: Option<u64>,
    /// Above this many dirty pages, writers are throttled in balance_dirty_pages().
    pub nr_dirty_threshold: Option<u64>,
    /// Above this, background writeback starts.
    pub nr_dirty_background_threshold: Option<u64>,
    pub nr_written: Option<u64>,
    pub nr_dirtied: Option<u64>,
    pub pgpgout: Option<u64>,
}

pub fn parse_vmstat(text: &str) -> Result<VmStat, ParseError> {
    let mut m = VmStat::default();
    for l in text.lines() {
        let mut it = l.split_ascii_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let v = v.parse().ok();
        match k {
            "nr_dirty" => m.nr_dirty = v,
            "nr_writeback" => m.nr_writeback = v,
            "nr_dirty_threshold" => m.nr_dirty_threshold = v,
            "nr_dirty_background_threshold" => m.nr_dirty_background_threshold = v,
            "nr_written" => m.nr_written = v,
            "nr_dirtied" => m.nr_dirtied = v,
            "pgpgout" => m.pgpgout = v,
            _ => {}
        }
    }
    if m.nr_dirty.is_none() {
        return Err(ParseError::new("vmstat", "no nr_dirty line"));
    }
    Ok(m)
}

/// `/proc/loadavg`: `0.15 0.08 0.02 1/78 2779`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub runnable: u32,
    pub total: u32,
}

pub fn parse_loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    let mut it = text.split_ascii_whitespace();
    let one = super::num(it.next(), "loadavg 1m")?;
    let five = super::num(it.next(), "loadavg 5m")?;
    let fifteen = super::num(it.next(), "loadavg 15m")?;
    let (r, t) = it
        .next()
        .and_then(|s| s.split_once('/'))
        .ok_or_else(|| ParseError::new("loadavg", "no runnable/total field"))?;
    Ok(LoadAvg {
        one,
        five,
        fifteen,
        runnable: super::num(Some(r), "loadavg runnable")?,
        total: super::num(Some(t), "loadavg total")?,
    })
}

/// `/proc/uptime`: seconds since boot, with centisecond resolution. sysstat's iostat
/// takes its interval from this file; so do we, so that our numbers match its.
pub fn parse_uptime(text: &str) -> Result<f64, ParseError> {
    let v: f64 = super::num(text.split_ascii_whitespace().next(), "uptime")?;
    if !v.is_finite() || v < 0.0 {
        return Err(ParseError::new("uptime", format!("{v}")));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_real() {
        let t = "rchar: 6976\nwchar: 0\nsyscr: 10\nsyscw: 0\nread_bytes: 0\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n";
        let io = parse_io(t).unwrap();
        assert_eq!(io.rchar, 6976);
        assert_eq!(io.write_bytes, 4096);
        assert!(parse_io("rchar: 1\n").is_err());
        assert!(parse_io(&t.replace("4096", "x")).is_err());
    }

    #[test]
    fn status_fields() {
        let t = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t10\nNgid:\t0\nPid:\t10\nPPid:\t1\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nNSpid:\t4242\t1\nThreads:\t3\nSigIgn:\t0000000000001000\nSigCgt:\t00000000000004e8\nKthread:\t0\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t545\n";
        let s = parse_status(t).unwrap();
        assert_eq!(s.name.as_deref(), Some("python3"));
        assert_eq!(s.uid, Some(1000));
        assert_eq!(s.threads, Some(3));
        assert_eq!(s.nspid, vec![4242, 1]);
        assert_eq!(s.kthread, Some(false));
        assert_eq!(s.ctxt_switches, Some(695));
        assert_eq!(s.sig_ignored, Some(0x1000)); // SIGPIPE (13)
        assert_eq!(s.sig_caught, Some(0x4e8));
        assert!(parse_status("garbage").is_err());
    }

    #[test]
    fn meminfo_in_bytes() {
        let t = "MemTotal:       24684084 kB\nMemFree:        24365440 kB\nMemAvailable:   24384492 kB\nDirty:                60 kB\nWriteback:             0 kB\n";
        let m = parse_meminfo(t).unwrap();
        assert_eq!(m.dirty_bytes, Some(60 * 1024));
        assert_eq!(m.writeback_bytes, Some(0));
        assert_eq!(m.mem_total_bytes, Some(24684084 * 1024));
        // A value that would wrap when made bytes is no value (it panicked in debug).
        let huge = parse_meminfo("MemTotal: 1 kB\nDirty: 18446744073709551615 kB\n").unwrap();
        assert_eq!(huge.dirty_bytes, None);
    }

    #[test]
    fn vmstat_and_loadavg_and_uptime() {
        let v = parse_vmstat("nr_dirty 15\nnr_writeback 0\nnr_dirty_threshold 1221794\nnr_dirty_background_threshold 610151\n").unwrap();
        assert_eq!(v.nr_dirty_threshold, Some(1221794));
        let l = parse_loadavg("0.15 0.08 0.02 1/78 2779\n").unwrap();
        assert_eq!((l.runnable, l.total), (1, 78));
        assert!(parse_loadavg("0.15 0.08").is_err());
        assert_eq!(parse_uptime("3389.88 6734.82\n").unwrap(), 3389.88);
        assert!(parse_uptime("").is_err());
        assert!(parse_uptime("-1 2").is_err());
    }
}
