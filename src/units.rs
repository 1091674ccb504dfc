//! Human-readable numbers: bytes in IEC units, rates, durations, and shell quoting for
//! the commands we print; and their inverses, the duration and size parsers every flag
//! uses, which refuse numbers that would overflow later (a deadline `now + duration`, a
//! byte count), so no command panics on its flags.

use std::time::Duration;

/// `2.2 GiB`, `512 B`.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let neg = v < 0.0;
    let mut x = v.abs();
    let mut i = 0;
    while x >= 1024.0 && i + 1 < UNITS.len() {
        x /= 1024.0;
        i += 1;
    }
    let s = if i == 0 || x >= 100.0 {
        format!("{x:.0} {}", UNITS[i])
    } else {
        format!("{x:.1} {}", UNITS[i])
    };
    if neg { format!("-{s}") } else { s }
}

pub fn bytes_u(v: u64) -> String {
    bytes(v as f64)
}

/// `2.5 MiB/s`.
pub fn rate(v: f64) -> String {
    format!("{}/s", bytes(v))
}

/// `45s`, `12m`, `3h 20m`, `2d 4h`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    if secs < 1.0 {
        return "<1s".into();
    }
    let s = secs.round() as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Quote a word for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// RFC 3339 UTC from milliseconds since the epoch.
pub fn rfc3339(unix_ms: i64) -> String {
    let t = std::time::UNIX_EPOCH
        .checked_add(std::time::Duration::from_millis(unix_ms.max(0) as u64))
        .unwrap_or(std::time::UNIX_EPOCH);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The longest duration any flag accepts. Every command that waits turns its duration into
/// a deadline (`Instant::now() + d`), and a run of a week is already far past any incident
/// window; beyond it a typo like `1e19` would overflow or run until killed.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parse a duration: `5s`, `500ms`, `2m`, `1h`, or a plain number of seconds; at most
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let d = if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("{s:?} is not a duration"));
        }
        // Compare as seconds first: `from_secs_f64` panics above u64::MAX seconds.
        if secs > MAX_DURATION.as_secs_f64() {
            return Err(too_long(s));
        }
        Duration::from_secs_f64(secs)
    } else {
        humantime::parse_duration(s)
            .map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 5s, 500ms, 2m"))?
    };
    if d > MAX_DURATION {
        return Err(too_long(s));
    }
    Ok(d)
}

fn too_long(s: &str) -> String {
    format!("{s:?} is too long: durations are at most 7 days (7d)")
}

/// Parse a byte size: `10M`, `512k`, `1G`, `4096` (powers of 1024); it must fit in 64 bits.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = t[i..].to_ascii_lowercase();
            let m: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                "t" => 1 << 40,
                _ => return Err(format!("{s:?}: unknown unit (use k, M, G, T)")),
            };
            (&t[..i], m)
        }
        None => (t, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size; use e.g. 10M, 512k, 1G"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{s:?} is not a size"));
    }
    let bytes = v * mult as f64;
    // `u64::MAX as f64` rounds up to 2^64, so `<` keeps the cast below exact, not saturated.
    if bytes >= u64::MAX as f64 {
        return Err(format!("{s:?} is too large (at most 16 EiB)"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(2.2 * 1024.0 * 1024.0 * 1024.0), "2.2 GiB");
        assert_eq!(bytes(-2048.0), "-2.0 KiB");
        assert_eq!(rate(2.5 * 1048576.0), "2.5 MiB/s");
        assert_eq!(duration(45.0), "45s");
        assert_eq!(duration(0.2), "<1s");
        assert_eq!(duration(3600.0 * 3.0 + 1200.0), "3h 20m");
        assert_eq!(duration(f64::INFINITY), "-");
        assert_eq!(shell_quote("/var/log/app.log"), "/var/log/app.log");
        assert_eq!(shell_quote("/tmp/my file"), "'/tmp/my file'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-1").is_err());
        assert_eq!(parse_bytes("10M").unwrap(), 10 << 20);
        assert_eq!(parse_bytes("512k").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("10Q").is_err());
        assert!(parse_bytes("x").is_err());
    }

    #[test]
    fn absurd_durations_and_sizes_are_refused_not_panicked_on() {
        // Bare numbers at and past u64::MAX seconds used to panic in from_secs_f64.
        for s in [
            "99999999999999999999",
            "1e19",
            "1.8e19",
            "1e300",
            "99999999999999999s",
            "604801",
            "8d",
        ] {
            let e = parse_duration(s).expect_err(s);
            assert!(
                e.contains("7 days") || e.contains("not a duration"),
                "{s}: {e}"
            );
        }
        assert_eq!(parse_duration("7d").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("604800").unwrap(), MAX_DURATION);
        for s in [
            "99999999999999999999T",
            "16777216T",
            "1e30",
            "18446744073709551616",
        ] {
            assert!(parse_bytes(s).is_err(), "{s}");
        }
        assert_eq!(parse_bytes("16777215T").unwrap(), 16777215 << 40);
    }
}
