//! Times for `--at`, `--from`, `--to`: what a person types at 3 am, and how we print one.
//!
//! Recordings store UTC (plus uptime); people think in local time. Accepted: RFC 3339
//! with `Z` or an offset (`2026-03-08T03:00:00-04:00`), the same without an offset (local
//! time), `YYYY-MM-DD`, `HH:MM[:SS]` (the last such local time), `yesterday HH:MM`,
//! `10m ago` (any humantime duration), `now`, and epoch seconds (`1767225600` or
//! `@1767225600`). A local time that a DST change makes ambiguous (it happens twice) or
//! that does not exist is refused: give an offset. The local zone is the C library's
//! (`TZ`, else `/etc/localtime`).

use crate::error::usage;

/// Now, in ms since the epoch; `IOWHY_NOW` (a time in any accepted form but relative)
/// fixes it, for tests.
pub fn now_ms() -> i64 {
    if let Ok(s) = std::env::var("IOWHY_NOW") {
        if let Ok(t) = parse_at(&s, 0) {
            return t;
        }
    }
    crate::source::wall_ms()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// A broken-down time and the zone it is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub offset_s: i64,
    pub zone: String,
}

unsafe extern "C" {
    fn tzset();
}

/// A time in the local zone.
pub fn local(ms: i64) -> Civil {
    let t = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: tzset reads TZ; localtime_r fills the tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe {
        tzset();
        !libc::localtime_r(&t, &mut tm).is_null()
    };
    if !ok {
        return utc(ms);
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: tm_zone points at a NUL-terminated static string of the C library.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    Civil {
        year: i64::from(tm.tm_year) + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        offset_s: tm.tm_gmtoff,
        zone,
    }
}

/// A time in UTC.
pub fn utc(ms: i64) -> Civil {
    let s = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(s.div_euclid(86_400));
    let sod = s.rem_euclid(86_400);
    Civil {
        year,
        month,
        day,
        hour: (sod / 3600) as u32,
        minute: (sod / 60 % 60) as u32,
        second: (sod % 60) as u32,
        offset_s: 0,
        zone: "UTC".into(),
    }
}

/// `2026-03-08 03:00:04 EDT (07:00:04Z)`: local time, with UTC beside it.
pub fn show(ms: i64) -> String {
    let l = local(ms);
    let u = utc(ms);
    let date = if (l.year, l.month, l.day) == (u.year, u.month, u.day) {
        String::new()
    } else {
        format!("{:04}-{:02}-{:02}T", u.year, u.month, u.day)
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {} ({date}{:02}:{:02}:{:02}Z)",
        l.year, l.month, l.day, l.hour, l.minute, l.second, l.zone, u.hour, u.minute, u.second
    )
}

/// Seconds since the epoch of a local wall-clock time; refused when the zone's DST change
/// skips it or makes it happen twice.
pub fn from_local(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> anyhow::Result<i64> {
    let mut found = Vec::new();
    for isdst in [0, 1] {
        // SAFETY: mktime normalises the tm we own.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        tm.tm_year = (y - 1900) as i32;
        tm.tm_mon = mo as i32 - 1;
        tm.tm_mday = d as i32;
        tm.tm_hour = h as i32;
        tm.tm_min = mi as i32;
        tm.tm_sec = s as i32;
        tm.tm_isdst = isdst;
        let t = unsafe {
            tzset();
            libc::mktime(&mut tm)
        };
        let back = local(t as i64 * 1000);
        if (
            back.year,
            back.month,
            back.day,
            back.hour,
            back.minute,
            back.second,
        ) == (y, mo, d, h, mi, s)
            && !found.contains(&(t as i64))
        {
            found.push(t as i64);
        }
    }
    let when = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    match found[..] {
        [t] => Ok(t),
        [] => Err(usage(format!(
            "{when} does not exist in the local time zone (a DST change skips it); give an offset, e.g. {y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"
        ))),
        _ => Err(usage(format!(
            "{when} happens twice in the local time zone (DST ends); give an offset, e.g. {y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}-04:00"
        ))),
    }
}

fn num(s: &str, what: &str, max: u32) -> anyhow::Result<u32> {
    match s.parse::<u32>() {
        Ok(n) if n <= max && !s.is_empty() && s.len() <= 4 => Ok(n),
        _ => Err(usage(format!("{s:?}: not a valid {what}"))),
    }
}

/// `HH:MM[:SS]`.
fn clock(s: &str) -> anyhow::Result<(u32, u32, u32)> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return Err(usage(format!("{s:?}: want HH:MM or HH:MM:SS")));
    }
    let sec = parts.get(2).map_or(Ok(0), |p| num(p, "second", 59))?;
    Ok((
        num(parts[0], "hour", 23)?,
        num(parts[1], "minute", 59)?,
        sec,
    ))
}

/// `[+-]HH:MM`, `[+-]HHMM` or `Z`, in seconds east of UTC.
fn offset(s: &str) -> anyhow::Result<i64> {
    if s == "Z" || s == "z" {
        return Ok(0);
    }
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(usage(format!("{s:?}: not a UTC offset"))),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 {
        return Err(usage(format!("{s:?}: want an offset like +02:00")));
    }
    let h = num(&digits[..2], "offset hour", 23)?;
    let m = num(&digits[2..], "offset minute", 59)?;
    Ok(sign * i64::from(h * 3600 + m * 60))
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS[.fff]][offset]]`.
fn datetime(s: &str) -> anyhow::Result<i64> {
    let bad = || {
        usage(format!(
            "{s:?}: not a time (want e.g. 2026-03-08T03:00:00Z, 03:00, 10m ago or epoch seconds)"
        ))
    };
    let date = s.get(..10).ok_or_else(bad)?;
    let dp: Vec<&str> = date.split('-').collect();
    if dp.len() != 3 || dp[0].len() != 4 {
        return Err(bad());
    }
    let y = i64::from(num(dp[0], "year", 9999)?);
    let mo = num(dp[1], "month", 12)?;
    let d = num(dp[2], "day", 31)?;
    if mo == 0 || d == 0 {
        return Err(bad());
    }
    let rest = &s[10..];
    if rest.is_empty() {
        return Ok(from_local(y, mo, d, 0, 0, 0)? * 1000);
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    let split = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, off) = rest.split_at(split);
    let (time, frac_ms) = match time.split_once('.') {
        Some((t, f)) if !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()) => {
            let f3: String = f.chars().chain("000".chars()).take(3).collect();
            (t, i64::from(num(&f3, "fraction", 999)?))
        }
        Some(_) => return Err(bad()),
        None => (time, 0),
    };
    let (h, mi, sec) = clock(time)?;
    let secs = if off.is_empty() {
        from_local(y, mo, d, h, mi, sec)?
    } else {
        days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset(off)?
    };
    Ok(secs * 1000 + frac_ms)
}

/// The last time at or before `now_ms` that the local clock showed `h:m:s`, `days_back`
/// days further back.
fn last_local(now_ms: i64, (h, m, s): (u32, u32, u32), days_back: i64) -> anyhow::Result<i64> {
    let today = local(now_ms);
    let day = days_from_civil(today.year, today.month, today.day) - days_back;
    let at = |day: i64| {
        let (y, mo, d) = civil_from_days(day);
        from_local(y, mo, d, h, m, s).map(|t| t * 1000)
    };
    let t = at(day)?;
    if days_back == 0 && t > now_ms {
        return at(day - 1);
    }
    Ok(t)
}

/// Parse a time as ms since the epoch; relative forms are relative to `now_ms`.
pub fn parse_at(s: &str, now_ms: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ms);
    }
    if let Some(d) = s.strip_suffix(" ago") {
        let d = humantime::parse_duration(d.trim())
            .map_err(|e| usage(format!("{s:?}: {e} (want e.g. 10m ago, 2h30m ago)")))?;
        return Ok(now_ms - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
    }
    let epoch = s.strip_prefix('@').unwrap_or(s);
    if !epoch.is_empty() && epoch.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let secs: f64 = epoch
            .parse()
            .map_err(|_| usage(format!("{s:?}: not epoch seconds")))?;
        return Ok((secs * 1000.0).round() as i64);
    }
    for (word, back) in [("yesterday ", 1), ("today ", 0)] {
        if let Some(c) = s.strip_prefix(word) {
            return last_local(now_ms, clock(c.trim())?, back);
        }
    }
    if s.len() <= 8 && s.contains(':') {
        return last_local(now_ms, clock(s)?, 0);
    }
    datetime(s)
}

/// As [`parse_at`] relative to now.
pub fn parse(s: &str) -> anyhow::Result<i64> {
    parse_at(s, now_ms())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip_across_leap_years() {
        for (y, m, d, n) in [(1970, 1, 1, 0), (2000, 2, 29, 11_016), (2026, 3, 8, 20_520)] {
            assert_eq!(days_from_civil(y, m, d), n, "{y}-{m}-{d}");
            assert_eq!(civil_from_days(n), (y, m, d));
        }
        for n in -1000..30_000 {
            let (y, m, d) = civil_from_days(n);
            assert_eq!(days_from_civil(y, m, d), n);
        }
    }

    #[test]
    fn times_with_an_offset_or_epoch_do_not_depend_on_the_zone() {
        let t = 1_772_938_800_000; // 2026-03-08T03:00:00Z
        assert_eq!(parse_at("2026-03-08T03:00:00Z", 0).unwrap(), t);
        assert_eq!(parse_at("2026-03-08T03:00Z", 0).unwrap(), t);
        assert_eq!(parse_at("2026-03-07T22:00:00-05:00", 0).unwrap(), t);
        assert_eq!(parse_at("2026-03-08 05:00:00+0200", 0).unwrap(), t);
        assert_eq!(parse_at("2026-03-08T03:00:00.250Z", 0).unwrap(), t + 250);
        assert_eq!(parse_at("1772938800", 0).unwrap(), t);
        assert_eq!(parse_at("@1772938800", 0).unwrap(), t);
        assert_eq!(parse_at("10m ago", t).unwrap(), t - 600_000);
        assert_eq!(parse_at("1h 30m ago", t).unwrap(), t - 5_400_000);
        assert_eq!(parse_at("now", t).unwrap(), t);
        for bad in [
            "03:61",
            "25:00",
            "2026-13-01T00:00Z",
            "yesterday",
            "ten ago",
            "2026-03-08T03:00:00+2",
            "",
        ] {
            assert!(parse_at(bad, t).is_err(), "{bad:?} should be refused");
        }
    }
}
