//! Container log lines, for what the bytes are: lines per second, stdout versus stderr.
//!
//! - CRI (containerd, CRI-O, what `/var/log/pods` holds):
//!   `2016-10-06T00:17:09.669794202Z stdout F the line` — an RFC 3339 time (containerd
//!   writes local time, so the offset may be `+08:00`), the stream, a tag (`F` a full line,
//!   `P` a partial one: the runtime split a long line), then the text.
//! - Docker's json-file: `{"log":"the line\n","stream":"stdout","time":"2024-...Z"}`.
//! - Anything else (a `ctr run --log-uri file://` log is the raw stdout) counts lines only.
//!
//! Only the tail of a log is read (a bounded chunk, see `source::containers`), so its
//! first line may be cut: callers say whether the chunk starts at offset 0.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Cri,
    DockerJson,
    #[default]
    Raw,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriLine<'a> {
    pub time: &'a str,
    pub stderr: bool,
    pub partial: bool,
    pub text: &'a str,
}

/// One CRI log line (without its newline).
pub fn parse_cri_line(line: &str) -> Option<CriLine<'_>> {
    let mut it = line.splitn(4, ' ');
    let (time, stream, tag) = (it.next()?, it.next()?, it.next()?);
    let text = it.next().unwrap_or("");
    let stderr = match stream {
        "stdout" => false,
        "stderr" => true,
        _ => return None,
    };
    // Tags are `:`-separated; the first says full or partial.
    let partial = match tag.split(':').next() {
        Some("F") => false,
        Some("P") => true,
        _ => return None,
    };
    unix_seconds(time)?;
    Some(CriLine {
        time,
        stderr,
        partial,
        text,
    })
}

/// An RFC 3339 time with any fraction and a `Z` or `±HH:MM` offset, as seconds since the
/// epoch. (humantime reads the date and clock but only `Z`; the offset is applied here.)
pub fn unix_seconds(t: &str) -> Option<f64> {
    if t.len() < 20 || !t.is_ascii() {
        return None;
    }
    let (clock, offset_s) = if let Some(c) = t.strip_suffix('Z') {
        (c, 0i64)
    } else {
        let (c, off) = t.split_at(t.len() - 6);
        let sign = match off.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = off[1..].split_once(':')?;
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        (c, sign * (h * 3600 + m * 60))
    };
    let st = humantime::parse_rfc3339_weak(clock).ok()?;
    let d = st.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(d.as_secs_f64() - offset_s as f64)
}

/// What a log's tail says about how it is written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TailStats {
    pub format: LogFormat,
    /// Bytes of the file that hold the complete lines counted in `lines`, framing
    /// included: `bytes / lines` is what one line of output costs on disk.
    pub bytes: u64,
    /// Complete lines of output: a CRI `F` record, with the `P` records before it (one
    /// long line the runtime split); a json-file record ending in `\n`, with the partial
    /// ones before it; a newline in a raw log.
    pub lines: u64,
    /// CRI `P` (or json-file partial) records: pieces of lines longer than the runtime's
    /// buffer.
    pub partial_lines: u64,
    /// Bytes of the log's text (without the CRI/JSON framing) per stream.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Seconds between the first and the last timestamp seen (CRI, Docker).
    pub span_s: Option<f64>,
}

impl TailStats {
    /// Lines per second by the log's own timestamps, when they span some time. This is
    /// the rate of the tail's last burst only; over a window, growth / `avg_line_bytes`
    /// is the rate that agrees with the bytes (see `interval::container`).
    pub fn lines_per_s(&self) -> Option<f64> {
        let span = self.span_s.filter(|s| *s >= 0.001)?;
        (self.lines > 1).then(|| (self.lines - 1) as f64 / span)
    }

    pub fn avg_line_bytes(&self) -> Option<f64> {
        (self.lines > 0).then(|| self.bytes as f64 / self.lines as f64)
    }

    pub fn stderr_pct(&self) -> Option<f64> {
        let t = self.stdout_bytes + self.stderr_bytes;
        (t > 0 && self.format != LogFormat::Raw)
            .then(|| self.stderr_bytes as f64 * 100.0 / t as f64)
    }
}

/// Statistics of a chunk of log. `cut_start`: the chunk does not begin at the start of
/// the file, so its first line is probably a fragment and is skipped. A last line
/// without its newline is being written and is skipped too.
pub fn tail_stats(chunk: &str, cut_start: bool) -> TailStats {
    let mut body = chunk;
    if cut_start {
        match body.find('\n') {
            Some(i) => body = &body[i + 1..],
            None => return TailStats::default(),
        }
    }
    let body = match body.rfind('\n') {
        Some(i) => &body[..=i],
        None => "",
    };
    let mut st = TailStats::default();
    let first = body.lines().find(|l| !l.is_empty()).unwrap_or("");
    st.format = if parse_cri_line(first).is_some() {
        LogFormat::Cri
    } else if docker_line(first).is_some() {
        LogFormat::DockerJson
    } else {
        LogFormat::Raw
    };
    let (mut t0, mut t1): (Option<f64>, Option<f64>) = (None, None);
    let mut stamp = |t: &str| {
        if let Some(s) = unix_seconds(t) {
            t0 = Some(t0.map_or(s, |x: f64| x.min(s)));
            t1 = Some(t1.map_or(s, |x: f64| x.max(s)));
        }
    };
    // Bytes of the records of a line still being continued (partial records so far).
    let mut pending: u64 = 0;
    for line in body.lines() {
        let record = line.len() as u64 + 1;
        // (stderr, text bytes, the record ends a line), when the record parses.
        let parsed = match st.format {
            LogFormat::Cri => parse_cri_line(line).map(|l| {
                stamp(l.time);
                (
                    l.stderr,
                    l.text.len() as u64 + u64::from(!l.partial),
                    !l.partial,
                )
            }),
            LogFormat::DockerJson => docker_line(line).map(|(stderr, time, n, full)| {
                stamp(&time);
                (stderr, n, full)
            }),
            LogFormat::Raw => Some((false, record, true)),
        };
        // A record that does not parse counts as a line of its own.
        let (stderr, n, full) = parsed.unwrap_or((false, 0, true));
        if stderr {
            st.stderr_bytes += n;
        } else {
            st.stdout_bytes += n;
        }
        if full {
            st.lines += 1;
            st.bytes += pending + record;
            pending = 0;
        } else {
            st.partial_lines += 1;
            pending += record;
        }
    }
    st.span_s = match (t0, t1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    st
}

/// One json-file record: (is stderr, time, text bytes, it ends a line). Docker splits a
/// line longer than 16 KiB into records whose `log` lacks the final `\n`.
fn docker_line(line: &str) -> Option<(bool, String, u64, bool)> {
    if !line.starts_with('{') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let log = v.get("log")?.as_str()?;
    let stderr = v.get("stream")?.as_str()? == "stderr";
    let time = v.get("time")?.as_str()?.to_string();
    Some((stderr, time, log.len() as u64, log.ends_with('\n')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines() {
        // The format as containerd's CRI plugin writes it (pkg/cri/io/logger.go).
        let l = parse_cri_line("2016-10-06T00:17:09.669794202Z stdout F log content 1").unwrap();
        assert_eq!(l.text, "log content 1");
        assert!(!l.stderr && !l.partial);
        let l = parse_cri_line("2016-10-06T00:17:09.669794203Z stderr P part").unwrap();
        assert!(l.stderr && l.partial);
        // An empty line is `... stdout F ` or even without the trailing space.
        assert_eq!(
            parse_cri_line("2016-10-06T00:17:09Z stdout F")
                .unwrap()
                .text,
            ""
        );
        assert!(parse_cri_line("2016-10-06T00:17:09Z stdin F x").is_none());
        assert!(parse_cri_line("2016-10-06T00:17:09Z stdout X x").is_none());
        assert!(parse_cri_line("yesterday stdout F x").is_none());
        assert!(parse_cri_line("").is_none());
    }

    #[test]
    fn times_with_offsets() {
        let z = unix_seconds("2024-05-06T02:04:31.5Z").unwrap();
        let cst = unix_seconds("2024-05-06T10:04:31.5+08:00").unwrap();
        assert!((z - cst).abs() < 1e-6);
        let neg = unix_seconds("2024-05-05T21:04:31.500000000-05:00").unwrap();
        assert!((z - neg).abs() < 1e-6);
        for bad in [
            "",
            "2024-05-06",
            "2024-05-06T02:04:31.5+0800",
            "2024-13-06T02:04:31Z",
        ] {
            assert!(unix_seconds(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn stats_of_a_cri_tail() {
        let chunk = "t stdout F cut line\n\
            2024-05-06T10:00:00.000000000Z stdout F GET /a 200\n\
            2024-05-06T10:00:00.500000000Z stderr F error: boom\n\
            2024-05-06T10:00:01.000000000Z stdout P a very long li\n\
            2024-05-06T10:00:01.000000001Z stdout F ne\n\
            2024-05-06T10:00:01.1Z stdout F being writ";
        let s = tail_stats(chunk, true);
        assert_eq!(s.format, LogFormat::Cri);
        // Three lines: the P record and the F after it are one.
        assert_eq!(s.lines, 3);
        assert_eq!(s.partial_lines, 1);
        let framed: u64 = chunk
            .lines()
            .skip(1)
            .take(4)
            .map(|l| l.len() as u64 + 1)
            .sum();
        assert_eq!(s.bytes, framed);
        assert_eq!(s.stderr_bytes, "error: boom\n".len() as u64);
        assert!((s.span_s.unwrap() - 1.0).abs() < 1e-6);
        assert!((s.lines_per_s().unwrap() - 2.0).abs() < 1e-3);
        assert!(s.stderr_pct().unwrap() > 10.0);
    }

    #[test]
    fn partial_records_make_one_line() {
        // A 40 KiB line as containerd's CRI logger splits it (16 KiB buffer): P P F.
        let p = "x".repeat(16 * 1024);
        let chunk = format!(
            "2024-05-06T10:00:00.000000000Z stdout P {p}\n\
             2024-05-06T10:00:00.000000001Z stdout P {p}\n\
             2024-05-06T10:00:00.000000002Z stdout F {}\n\
             2024-05-06T10:00:00.100000000Z stdout F short\n\
             2024-05-06T10:00:00.200000000Z stdout P the start of one not finished\n",
            "x".repeat(8 * 1024)
        );
        let s = tail_stats(&chunk, false);
        assert_eq!((s.lines, s.partial_lines), (2, 3));
        // The unfinished line's record is not in the bytes of complete lines.
        let last = chunk.lines().last().unwrap().len() as u64 + 1;
        assert_eq!(s.bytes, chunk.len() as u64 - last);
        // json-file splits long lines the same way: records without the final newline.
        let s = tail_stats(
            "{\"log\":\"aaaa\",\"stream\":\"stdout\",\"time\":\"2024-05-06T10:00:00Z\"}\n{\"log\":\"bb\\n\",\"stream\":\"stdout\",\"time\":\"2024-05-06T10:00:00Z\"}\n",
            false,
        );
        assert_eq!((s.lines, s.partial_lines), (1, 1));
    }

    #[test]
    fn docker_and_raw_and_hostile() {
        let s = tail_stats(
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2024-05-06T10:00:00Z\"}\n{\"log\":\"bb\\n\",\"stream\":\"stderr\",\"time\":\"2024-05-06T10:00:02Z\"}\n",
            false,
        );
        assert_eq!(s.format, LogFormat::DockerJson);
        assert_eq!((s.stdout_bytes, s.stderr_bytes), (2, 3));
        assert_eq!(s.span_s, Some(2.0));
        let s = tail_stats("line 1 hello world\nline 2 hello world\n", false);
        assert_eq!((s.format, s.lines, s.span_s), (LogFormat::Raw, 2, None));
        assert_eq!(s.lines_per_s(), None);
        assert_eq!(s.stderr_pct(), None);
        assert_eq!(tail_stats("", false), TailStats::default());
        assert_eq!(tail_stats("no newline at all", true), TailStats::default());
        let _ = tail_stats("\u{0}\u{ffff}\n{\"log\":1}\n2024 stdout F\n", false);
    }
}
