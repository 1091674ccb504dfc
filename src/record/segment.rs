//! One segment file of the flight recorder: a header, then records, append-only.
//!
//! ```text
//! file   = "IOWHYREC" | version u16 | header_len u32 | header JSON | crc32(header) u32 | record*
//! record = 0xA5 0x5A | kind u8 | flags u8 | len u32 | wall_unix_ms i64 | uptime_cs u64
//!          | crc32(kind..uptime_cs, payload) u32 | payload[len]          (little endian)
//! ```
//!
//! A sample's payload is its JSON ([`super::Sample`]) compressed with zstd: a *key*
//! record alone, a *delta* record with the previous sample's JSON as the zstd prefix
//! (research note A7: 5 KB instead of 80 KB a sample at 500 processes). A file is written
//! by one process only, and never appended to by another (a new recorder starts a new
//! file), so a crash leaves at most one torn record at the end of one file.
//!
//! Reading never fails on damage: a record whose CRC does not match, or that is cut off,
//! is skipped with a note; the reader looks for the next record magic, and deltas resume
//! at the next key record (their prefix was lost).

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter};

pub const FILE_MAGIC: &[u8; 8] = b"IOWHYREC";
/// Bumped when the byte layout changes; a reader reads every version up to its own.
pub const FORMAT_VERSION: u16 = 1;
pub const RECORD_MAGIC: [u8; 2] = [0xA5, 0x5A];
/// Magic, kind, flags, len, wall, uptime, crc.
pub const RECORD_HEADER: usize = 2 + 1 + 1 + 4 + 8 + 8 + 4;
/// A record longer than this is damage (a flipped length), not a sample.
const MAX_PAYLOAD: usize = 256 << 20;
/// A decompressed sample larger than this is damage too.
const MAX_SAMPLE: u64 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A sample compressed on its own.
    Key = 1,
    /// A sample compressed against the previous sample.
    Delta = 2,
    /// Samples the writer could not keep (the queue was full): JSON [`super::Gap`].
    Gap = 3,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Key),
            2 => Some(Kind::Delta),
            3 => Some(Kind::Gap),
            _ => None,
        }
    }
}

/// The header of a segment: what a reader on another machine needs to know.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format_version: u16,
    pub iowhy_version: String,
    pub hostname: String,
    /// `/proc/sys/kernel/random/boot_id`: rates are never computed across two boots.
    #[serde(default)]
    pub boot_id: Option<String>,
    pub kernel: String,
    pub started_unix_ms: i64,
    pub interval_s: f64,
    /// The recorder's time zone (TZ, or /etc/localtime) and its UTC offset then.
    #[serde(default)]
    pub tz: Option<String>,
    pub utc_offset_s: i64,
    pub zstd_level: i32,
    pub key_every: u32,
}

/// Encodes records for one file: the key/delta chain and the zstd contexts.
pub struct Encoder {
    level: i32,
    key_every: u32,
    since_key: u32,
    prev: Option<Vec<u8>>,
}

impl Encoder {
    pub fn new(level: i32, key_every: u32) -> Encoder {
        Encoder {
            level,
            key_every: key_every.max(1),
            since_key: 0,
            prev: None,
        }
    }

    /// The file's first bytes.
    pub fn file_header(h: &Header) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(h)?;
        let mut out = Vec::with_capacity(json.len() + 18);
        out.extend_from_slice(FILE_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        Ok(out)
    }

    /// One sample (its JSON) as a record: a key every `key_every` records, else a delta.
    pub fn sample(&mut self, wall_unix_ms: i64, uptime_cs: u64, json: Vec<u8>) -> Result<Vec<u8>> {
        let key = self.prev.is_none() || self.since_key + 1 >= self.key_every;
        let payload = compress(
            self.level,
            &json,
            if key { None } else { self.prev.as_deref() },
        )?;
        self.since_key = if key { 0 } else { self.since_key + 1 };
        self.prev = Some(json);
        let kind = if key { Kind::Key } else { Kind::Delta };
        Ok(record(kind, wall_unix_ms, uptime_cs, &payload))
    }

    /// A gap record: not part of the chain (the next delta refers to the last sample).
    pub fn gap(&self, wall_unix_ms: i64, uptime_cs: u64, json: &[u8]) -> Vec<u8> {
        record(Kind::Gap, wall_unix_ms, uptime_cs, json)
    }
}

/// A context per frame: a prefix is referenced for one frame only, and borrowing the
/// previous sample for the life of a long-lived context would not let it be replaced.
fn compress(level: i32, src: &[u8], prefix: Option<&[u8]>) -> Result<Vec<u8>> {
    {
        let mut cc = CCtx::create();
        let c = &mut cc;
        let z = |e: usize| anyhow::anyhow!("zstd: {}", zstd_safe::get_error_name(e));
        c.set_parameter(CParameter::CompressionLevel(level))
            .map_err(z)?;
        // The window must reach back over the whole prefix.
        let span = src.len() + prefix.map_or(0, <[u8]>::len);
        let log = (usize::BITS - span.max(1).leading_zeros()).clamp(20, 30);
        c.set_parameter(CParameter::WindowLog(log)).map_err(z)?;
        c.set_parameter(CParameter::ContentSizeFlag(true))
            .map_err(z)?;
        let mut dst = Vec::with_capacity(zstd_safe::compress_bound(src.len()));
        match prefix {
            Some(p) => {
                c.ref_prefix(p).map_err(z)?;
                c.compress2(&mut dst, src).map_err(z)?;
            }
            None => {
                c.compress2(&mut dst, src).map_err(z)?;
            }
        }
        Ok(dst)
    }
}

fn record(kind: Kind, wall_unix_ms: i64, uptime_cs: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER + payload.len());
    out.extend_from_slice(&RECORD_MAGIC);
    out.push(kind as u8);
    out.push(0);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&wall_unix_ms.to_le_bytes());
    out.extend_from_slice(&uptime_cs.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[2..24]);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A record read back: a sample's JSON, or a gap's.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub kind: Kind,
    pub wall_unix_ms: i64,
    pub uptime_cs: u64,
    /// Where the record starts in the file.
    pub offset: usize,
    pub json: Vec<u8>,
}

/// What one file held: the header of each part (a segment is one part; an export is
/// segments put end to end), the records that read back (with the part they are in),
/// and a note for each piece of damage skipped.
#[derive(Debug, Default)]
pub struct Read {
    /// `None` for a part whose header is damaged.
    pub headers: Vec<Option<Header>>,
    pub records: Vec<(usize, Decoded)>,
    pub notes: Vec<String>,
}

struct RawRecord<'a> {
    kind: Kind,
    wall_unix_ms: i64,
    uptime_cs: u64,
    payload: &'a [u8],
    end: usize,
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// The record at `pos`, if one starts there whole and its CRC matches.
fn raw_at(buf: &[u8], pos: usize) -> Option<RawRecord<'_>> {
    let h = buf.get(pos..pos + RECORD_HEADER)?;
    if h[..2] != RECORD_MAGIC {
        return None;
    }
    let kind = Kind::from_u8(h[2])?;
    let len = le_u32(&h[4..8]) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    let payload = buf.get(pos + RECORD_HEADER..pos + RECORD_HEADER + len)?;
    let mut c = crc32fast::Hasher::new();
    c.update(&h[2..24]);
    c.update(payload);
    if c.finalize() != le_u32(&h[24..28]) {
        return None;
    }
    Some(RawRecord {
        kind,
        wall_unix_ms: le_u64(&h[8..16]) as i64,
        uptime_cs: le_u64(&h[16..24]),
        payload,
        end: pos + RECORD_HEADER + len,
    })
}

/// The header of a part at `pos`: the header (`None` when damaged) and where records
/// begin.
fn parse_header(
    buf: &[u8],
    pos: usize,
    notes: &mut Vec<String>,
) -> Result<(Option<Header>, usize)> {
    let b = &buf[pos..];
    if b.len() < 14 || &b[..8] != FILE_MAGIC {
        bail!("not an iowhy recording (no IOWHYREC magic)");
    }
    let version = u16::from_le_bytes([b[8], b[9]]);
    let len = le_u32(&b[10..14]) as usize;
    if version > FORMAT_VERSION {
        bail!(
            "recording format {version} is newer than this iowhy reads ({FORMAT_VERSION}): upgrade iowhy"
        );
    }
    let json = b.get(14..14 + len);
    let crc_ok = json.is_some_and(|j| {
        b.get(14 + len..18 + len)
            .is_some_and(|c| le_u32(c) == crc32fast::hash(j))
    });
    let header = json
        .filter(|_| crc_ok)
        .and_then(|j| serde_json::from_slice::<Header>(j).ok());
    if header.is_none() {
        notes.push(format!(
            "the header at byte {pos} is damaged: host, boot and time zone of its records are unknown"
        ));
        return Ok((None, pos + 14));
    }
    Ok((header, pos + 18 + len))
}

/// Does a part (a file header) start at `pos`?
fn part_at(buf: &[u8], pos: usize) -> bool {
    buf.get(pos..pos + 8) == Some(FILE_MAGIC.as_slice())
}

/// What a walk over a file meets, in order.
enum Event<'a> {
    /// A part begins (its header, `None` when damaged).
    Part(Option<Header>),
    /// Bytes skipped: the chain of deltas is broken.
    Damage,
    Record(usize, RawRecord<'a>),
}

/// Walk a file's parts and records, checking every CRC (nothing is decompressed).
fn walk<'a>(buf: &'a [u8], notes: &mut Vec<String>, mut f: impl FnMut(Event<'a>)) -> Result<()> {
    if buf.len() < 14 && FILE_MAGIC.starts_with(&buf[..buf.len().min(8)]) {
        // A recorder killed before its header was out.
        notes.push("the file is cut off inside its header: nothing recorded".into());
        return Ok(());
    }
    if !part_at(buf, 0) {
        bail!("not an iowhy recording (no IOWHYREC magic)");
    }
    let mut pos = 0;
    while pos < buf.len() {
        if part_at(buf, pos) {
            let (h, next) = parse_header(buf, pos, notes)?;
            f(Event::Part(h));
            pos = next;
            continue;
        }
        if let Some(r) = raw_at(buf, pos) {
            let end = r.end;
            f(Event::Record(pos, r));
            pos = end;
            continue;
        }
        let next = (pos + 1..buf.len()).find(|&p| part_at(buf, p) || raw_at(buf, p).is_some());
        match next {
            Some(n) => notes.push(format!("damaged bytes {pos}..{n} skipped")),
            None => notes.push(format!(
                "the last {} bytes are a torn or damaged record (skipped)",
                buf.len() - pos
            )),
        }
        f(Event::Damage);
        match next {
            Some(n) => pos = n,
            None => break,
        }
    }
    Ok(())
}

/// A record's place and time, without its payload decompressed.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub part: usize,
    pub kind: Kind,
    pub wall_unix_ms: i64,
    pub uptime_cs: u64,
    /// A gap's JSON (samples are not decompressed).
    pub gap: Option<Vec<u8>>,
}

/// A file scanned: the header of each part, its records' places and times, the notes.
#[derive(Debug, Default)]
pub struct Scan {
    pub headers: Vec<Option<Header>>,
    pub metas: Vec<Meta>,
    pub notes: Vec<String>,
}

/// The headers and records of a file, CRCs checked, nothing decompressed: what
/// `record ls` needs of a week of recording.
pub fn scan(buf: &[u8]) -> Result<Scan> {
    let (mut headers, mut metas, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    walk(buf, &mut notes, |e| match e {
        Event::Part(h) => headers.push(h),
        Event::Damage => {}
        Event::Record(_, r) => {
            if headers.is_empty() {
                headers.push(None);
            }
            metas.push(Meta {
                part: headers.len() - 1,
                kind: r.kind,
                wall_unix_ms: r.wall_unix_ms,
                uptime_cs: r.uptime_cs,
                gap: (r.kind == Kind::Gap).then(|| r.payload.to_vec()),
            });
        }
    })?;
    Ok(Scan {
        headers,
        metas,
        notes,
    })
}

/// Read a whole file's bytes back. Errors only when the bytes are not a recording at all
/// (or one newer than this iowhy); damage inside is skipped past with notes.
pub fn read(buf: &[u8]) -> Result<Read> {
    let mut out = Read::default();
    let mut notes = Vec::new();
    let mut prev: Option<Vec<u8>> = None;
    walk(buf, &mut notes, |e| {
        let (pos, r) = match e {
            Event::Part(h) => {
                out.headers.push(h);
                prev = None;
                return;
            }
            // The sample that was lost was the prefix of the next delta.
            Event::Damage => {
                prev = None;
                return;
            }
            Event::Record(pos, r) => (pos, r),
        };
        if out.headers.is_empty() {
            out.headers.push(None);
        }
        let json = match r.kind {
            Kind::Gap => Some(r.payload.to_vec()),
            Kind::Key => decompress(r.payload, None),
            Kind::Delta => prev.as_deref().and_then(|p| decompress(r.payload, Some(p))),
        };
        let Some(j) = json else {
            out.notes.push(if r.kind == Kind::Delta && prev.is_none() {
                format!("record at byte {pos}: its previous sample was lost; skipped until the next key record")
            } else {
                format!("record at byte {pos} does not decompress; skipped")
            });
            prev = None;
            return;
        };
        if r.kind != Kind::Gap {
            prev = Some(j.clone());
        }
        let d = Decoded {
            kind: r.kind,
            wall_unix_ms: r.wall_unix_ms,
            uptime_cs: r.uptime_cs,
            offset: pos,
            json: j,
        };
        out.records.push((out.headers.len() - 1, d));
    })?;
    // Damage first, in file order, then what did not decode.
    notes.append(&mut out.notes);
    out.notes = notes;
    Ok(out)
}

fn decompress(src: &[u8], prefix: Option<&[u8]>) -> Option<Vec<u8>> {
    let size = zstd_safe::get_frame_content_size(src).ok()??;
    if size > MAX_SAMPLE {
        return None;
    }
    let mut dctx = DCtx::create();
    dctx.set_parameter(DParameter::WindowLogMax(30)).ok()?;
    if let Some(p) = prefix {
        dctx.ref_prefix(p).ok()?;
    }
    let mut dst = Vec::with_capacity(size as usize);
    let n = dctx.decompress(&mut dst, src).ok()?;
    (n as u64 == size).then_some(dst)
}

/// Read a file from disk.
pub fn read_file(path: &std::path::Path) -> Result<Read> {
    let buf = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    read(&buf).with_context(|| path.display().to_string())
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
