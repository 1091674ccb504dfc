//! A store: a directory of segment files, one per recorder start and UTC hour, named by
//! the time of their first record so that names sort by time.
//!
//! Retention removes whole files, oldest first, by age, total size and free space,
//! whichever bites first; the file being written is never removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::segment::{self, Decoded, Header, Kind};
use super::when;
use super::{Gap, Sample};

pub const EXT: &str = "iowhyrec";

/// `iowhy-20260308T030000.000Z-1a2b3c4d.iowhyrec`.
pub fn segment_name(start_ms: i64, boot_id: Option<&str>, seq: u32) -> String {
    let u = when::utc(start_ms);
    let boot: String = boot_id
        .unwrap_or("noboot")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    let seq = if seq == 0 {
        String::new()
    } else {
        format!("-{seq}")
    };
    format!(
        "iowhy-{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{boot}{seq}.{EXT}",
        u.year,
        u.month,
        u.day,
        u.hour,
        u.minute,
        u.second,
        start_ms.rem_euclid(1000)
    )
}

/// The start time a segment's name says.
pub fn start_of_name(name: &str) -> Option<i64> {
    let t = name.strip_prefix("iowhy-")?.get(..19)?;
    let n = |a: usize, b: usize| t.get(a..b)?.parse::<u32>().ok();
    let days = when::days_from_civil(i64::from(n(0, 4)?), n(4, 6)?, n(6, 8)?);
    let (h, mi, s, ms) = (n(9, 11)?, n(11, 13)?, n(13, 15)?, n(16, 19)?);
    Some((days * 86_400 + i64::from(h * 3600 + mi * 60 + s)) * 1000 + i64::from(ms))
}

#[derive(Clone, Debug, PartialEq)]
pub struct SegmentFile {
    pub path: PathBuf,
    pub start_ms: i64,
    pub bytes: u64,
}

/// The segments of a directory, oldest first (files that are not segments are left alone).
pub fn list(dir: &Path) -> Result<Vec<SegmentFile>> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut v: Vec<SegmentFile> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(&format!(".{EXT}")) {
                return None;
            }
            Some(SegmentFile {
                start_ms: start_of_name(&name)?,
                bytes: e.metadata().ok()?.len(),
                path: e.path(),
            })
        })
        .collect();
    v.sort_by(|a, b| (a.start_ms, &a.path).cmp(&(b.start_ms, &b.path)));
    Ok(v)
}

/// How much to keep: whichever limit bites first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_bytes: Option<u64>,
    /// Remove old segments while the filesystem has less than this share free.
    pub min_free_pct: Option<f64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age: Some(Duration::from_secs(7 * 86_400)),
            max_bytes: Some(1 << 30),
            min_free_pct: Some(5.0),
        }
    }
}

/// Free space of the filesystem holding `dir`, in percent.
pub fn free_pct(dir: &Path) -> Option<f64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    (st.f_blocks > 0).then(|| st.f_bavail as f64 * 100.0 / st.f_blocks as f64)
}

/// Remove segments beyond the retention; `now_ms` and `free` are the clock and the free
/// space (fakes in tests). Returns what was removed.
pub fn enforce(
    dir: &Path,
    r: &Retention,
    now_ms: i64,
    active: Option<&Path>,
    free: &mut dyn FnMut() -> Option<f64>,
) -> Result<Vec<PathBuf>> {
    let segs = list(dir)?;
    let mut removed = Vec::new();
    let mut total: u64 = segs.iter().map(|s| s.bytes).sum();
    for (i, s) in segs.iter().enumerate() {
        if Some(s.path.as_path()) == active {
            break;
        }
        // A segment ends where the next begins; the last one is still current.
        let Some(end) = segs.get(i + 1).map(|n| n.start_ms) else {
            break;
        };
        let old = r
            .max_age
            .is_some_and(|a| end < now_ms - a.as_millis() as i64);
        let big = r.max_bytes.is_some_and(|m| total > m);
        let full = r
            .min_free_pct
            .is_some_and(|m| free().is_some_and(|f| f < m));
        if !(old || big || full) {
            break;
        }
        std::fs::remove_file(&s.path).with_context(|| format!("removing {}", s.path.display()))?;
        total -= s.bytes;
        removed.push(s.path.clone());
    }
    Ok(removed)
}

/// A recorded sample, with the segment header it came from.
#[derive(Clone, Debug)]
pub struct Entry {
    pub wall_unix_ms: i64,
    pub uptime_cs: u64,
    pub boot_id: Option<String>,
    pub sample: Sample,
}

/// What a time range of a recording held.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The samples in the range, plus the last one before it (it opens the first
    /// interval), oldest first.
    pub entries: Vec<Entry>,
    pub gaps: Vec<Gap>,
    pub headers: Vec<Header>,
    /// Damage skipped, samples that did not parse.
    pub notes: Vec<String>,
}

/// Where a recording is: a store directory, or one file (a segment or an export).
#[derive(Clone, Debug)]
pub enum Source {
    Dir(PathBuf),
    File(PathBuf),
}

impl Source {
    /// The files that may hold `[from, to]`, oldest first: those starting before `to`,
    /// from the one before the first that starts after `from`.
    fn files(&self, from_ms: i64, to_ms: i64) -> Result<Vec<PathBuf>> {
        match self {
            Source::File(p) => Ok(vec![p.clone()]),
            Source::Dir(d) => {
                let segs = list(d)?;
                let first = segs
                    .iter()
                    .rposition(|s| s.start_ms <= from_ms)
                    .unwrap_or(0)
                    .saturating_sub(1);
                Ok(segs
                    .into_iter()
                    .skip(first)
                    .filter(|s| s.start_ms <= to_ms)
                    .map(|s| s.path)
                    .collect())
            }
        }
    }
}

/// The records of the files that may hold `[from, to]`, with their headers.
pub fn read_range(src: &Source, from_ms: i64, to_ms: i64) -> Result<Vec<(PathBuf, segment::Read)>> {
    let mut out = Vec::new();
    for p in src.files(from_ms, to_ms)? {
        match segment::read_file(&p) {
            Ok(r) => out.push((p, r)),
            Err(e) if matches!(src, Source::Dir(_)) => {
                // One bad file in a store is skipped past; a file asked for by name is not.
                let mut r = segment::Read::default();
                r.notes.push(format!("{e:#}: skipped"));
                out.push((p, r));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The samples (parsed) and gaps in `[from, to]`, plus the sample just before `from`.
pub fn load(src: &Source, from_ms: i64, to_ms: i64) -> Result<Loaded> {
    let mut out = Loaded::default();
    let mut before: Option<(Option<String>, Decoded)> = None;
    let mut inside: Vec<(Option<String>, Decoded)> = Vec::new();
    for (path, r) in read_range(src, from_ms, to_ms)? {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        out.notes
            .extend(r.notes.iter().map(|n| format!("{name}: {n}")));
        for (part, d) in r.records.into_iter() {
            let boot = r
                .headers
                .get(part)
                .and_then(|h| h.as_ref()?.boot_id.clone());
            match d.kind {
                Kind::Gap if (from_ms..=to_ms).contains(&d.wall_unix_ms) => {
                    if let Ok(g) = serde_json::from_slice::<Gap>(&d.json) {
                        out.gaps.push(g);
                    }
                }
                Kind::Gap => {}
                _ if d.wall_unix_ms < from_ms => before = Some((boot, d)),
                _ if d.wall_unix_ms <= to_ms => inside.push((boot, d)),
                _ => {}
            }
        }
        out.headers.extend(r.headers.into_iter().flatten());
    }
    for (boot, d) in before.into_iter().chain(inside) {
        match serde_json::from_slice::<Sample>(&d.json) {
            Ok(sample) => out.entries.push(Entry {
                wall_unix_ms: d.wall_unix_ms,
                uptime_cs: d.uptime_cs,
                boot_id: boot,
                sample,
            }),
            Err(e) => out.notes.push(format!(
                "the sample of {} does not parse ({e}); skipped",
                when::show(d.wall_unix_ms)
            )),
        }
    }
    out.entries.sort_by_key(|e| e.wall_unix_ms);
    Ok(out)
}

/// Every record's time in the source (CRC-checked, not decompressed), with the header of
/// its part, oldest first; and the notes.
/// Each file with its scan.
type Scanned = Vec<(SegmentFile, segment::Scan)>;

fn metas(src: &Source) -> Result<(Scanned, Vec<String>)> {
    let files = match src {
        Source::Dir(d) => list(d)?,
        Source::File(p) => vec![SegmentFile {
            path: p.clone(),
            start_ms: 0,
            bytes: std::fs::metadata(p)
                .with_context(|| p.display().to_string())?
                .len(),
        }],
    };
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    for f in files {
        let name = f
            .path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let scanned = std::fs::read(&f.path)
            .with_context(|| format!("reading {}", f.path.display()))
            .and_then(|b| segment::scan(&b));
        match scanned {
            Ok(mut sc) => {
                notes.extend(sc.notes.drain(..).map(|n| format!("{name}: {n}")));
                out.push((f, sc));
            }
            Err(e) => notes.push(format!("{name}: {e:#}: skipped")),
        }
    }
    Ok((out, notes))
}

/// "it covers A to B", for a message about a time outside it.
pub fn coverage(src: &Source) -> Option<String> {
    let (files, _) = metas(src).ok()?;
    let times = files
        .iter()
        .flat_map(|f| f.1.metas.iter())
        .filter(|m| m.kind != Kind::Gap);
    let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), m| {
        (lo.min(m.wall_unix_ms), hi.max(m.wall_unix_ms))
    });
    (lo <= hi).then(|| format!("it covers {} to {}", when::show(lo), when::show(hi)))
}

/// `iowhy record ls`: coverage, gaps, reboots and bytes per day.
pub fn listing(src: &Source, label: &str) -> Result<crate::wire::record::Listing> {
    use crate::units::rfc3339;
    use crate::wire::record::{GapJson, Listing, SegmentJson};
    let (files, notes) = metas(src)?;
    let mut l = Listing {
        dir: label.into(),
        notes,
        ..Default::default()
    };
    // (wall, uptime_cs, boot) of the last sample, across files.
    let mut last: Option<(i64, u64, Option<String>, f64)> = None;
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for (f, sc) in &files {
        let (headers, ms) = (&sc.headers, &sc.metas);
        let samples: Vec<&segment::Meta> = ms.iter().filter(|m| m.kind != Kind::Gap).collect();
        let h0 = headers.iter().flatten().next();
        l.segments.push(SegmentJson {
            file: f
                .path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            bytes: f.bytes,
            samples: samples.len() as u64,
            first: samples.first().map(|m| rfc3339(m.wall_unix_ms)),
            last: samples.last().map(|m| rfc3339(m.wall_unix_ms)),
            host: h0.map(|h| h.hostname.clone()),
            boot_id: h0.and_then(|h| h.boot_id.clone()),
        });
        l.bytes += f.bytes;
        for m in ms {
            let h = headers.get(m.part).and_then(|h| h.as_ref());
            let boot = h.and_then(|h| h.boot_id.clone());
            let interval = h.map_or(10.0, |h| h.interval_s);
            if let Some(g) = m
                .gap
                .as_ref()
                .and_then(|j| serde_json::from_slice::<Gap>(j).ok())
            {
                l.gaps.push(GapJson {
                    from: rfc3339(g.first_unix_ms),
                    to: rfc3339(g.last_unix_ms),
                    seconds: (g.last_unix_ms - g.first_unix_ms) as f64 / 1000.0,
                    dropped: g.dropped,
                });
                continue;
            }
            l.samples += 1;
            lo = lo.min(m.wall_unix_ms);
            hi = hi.max(m.wall_unix_ms);
            if let Some((w, up, b, iv)) = &last {
                let rebooted = (b.is_some() && boot.is_some() && *b != boot) || m.uptime_cs < *up;
                if rebooted {
                    l.reboots
                        .push(rfc3339(m.wall_unix_ms - (m.uptime_cs as i64) * 10));
                }
                let secs = (m.wall_unix_ms - w) as f64 / 1000.0;
                if secs > 2.0 * iv.max(interval) {
                    l.gaps.push(GapJson {
                        from: rfc3339(*w),
                        to: rfc3339(m.wall_unix_ms),
                        seconds: secs,
                        dropped: 0,
                    });
                }
            }
            last = Some((m.wall_unix_ms, m.uptime_cs, boot, interval));
        }
    }
    if lo <= hi {
        l.first = Some(rfc3339(lo));
        l.last = Some(rfc3339(hi));
    }
    // An empty store (or a file with only its header yet) covers no time.
    let days = if lo <= hi {
        (hi - lo) as f64 / 86_400_000.0
    } else {
        0.0
    };
    l.bytes_per_day = if days > 0.0 {
        l.bytes as f64 / days
    } else {
        f64::NAN
    };
    Ok(l)
}

/// `iowhy record export`: the records of `[from, to]` as one self-contained file: each
/// source part re-encoded (a key record first) behind its own header, end to end.
pub fn export(src: &Source, from_ms: i64, to_ms: i64, out: &Path) -> Result<usize> {
    let mut bytes = Vec::new();
    let mut n = 0;
    for (_, r) in read_range(src, from_ms, to_ms)? {
        let mut part: Option<(usize, super::segment::Encoder)> = None;
        for (p, d) in r.records {
            if !(from_ms..=to_ms).contains(&d.wall_unix_ms) {
                continue;
            }
            if part.as_ref().is_none_or(|(q, _)| *q != p) {
                let mut h = r.headers.get(p).cloned().flatten().unwrap_or_default();
                h.format_version = segment::FORMAT_VERSION;
                bytes.extend(segment::Encoder::file_header(&h)?);
                part = Some((
                    p,
                    segment::Encoder::new(h.zstd_level.max(1), h.key_every.max(1)),
                ));
            }
            let enc = &mut part.as_mut().expect("part").1;
            match d.kind {
                Kind::Gap => bytes.extend(enc.gap(d.wall_unix_ms, d.uptime_cs, &d.json)),
                _ => {
                    bytes.extend(enc.sample(d.wall_unix_ms, d.uptime_cs, d.json)?);
                    n += 1;
                }
            }
        }
    }
    // Whole or nothing: a reader never sees half an export.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, &bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(n)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
