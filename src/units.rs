//! Human-readable numbers: bytes in IEC units, rates, durations, and shell quoting for
//! the commands we print.

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
}
