//! Pressure stall information, `/proc/pressure/io` (Documentation/accounting/psi.rst):
//! `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and a `full` line. `total` is
//! cumulative stall time in microseconds.

use serde::{Deserialize, Serialize};

use super::ParseError;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PsiLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Psi {
    /// Some task was stalled on I/O.
    pub some: PsiLine,
    /// All non-idle tasks were stalled on I/O at once (absent before 5.13 for cpu; io has it).
    pub full: Option<PsiLine>,
}

fn parse_line(rest: &str) -> Result<PsiLine, ParseError> {
    let mut p = PsiLine::default();
    let mut seen = 0;
    for kv in rest.split_ascii_whitespace() {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let bad = || ParseError::new("psi", format!("{k}={v}"));
        match k {
            "avg10" => p.avg10 = v.parse().map_err(|_| bad())?,
            "avg60" => p.avg60 = v.parse().map_err(|_| bad())?,
            "avg300" => p.avg300 = v.parse().map_err(|_| bad())?,
            "total" => p.total_us = v.parse().map_err(|_| bad())?,
            _ => continue,
        }
        seen += 1;
    }
    if seen < 4 {
        return Err(ParseError::new("psi", "missing avg10/avg60/avg300/total"));
    }
    Ok(p)
}

pub fn parse(text: &str) -> Result<Psi, ParseError> {
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        if let Some(r) = line.strip_prefix("some ") {
            some = Some(parse_line(r)?);
        } else if let Some(r) = line.strip_prefix("full ") {
            full = Some(parse_line(r)?);
        }
    }
    Ok(Psi {
        some: some.ok_or_else(|| ParseError::new("psi", "no 'some' line"))?,
        full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_file() {
        let p = parse("some avg10=9.53 avg60=2.16 avg300=0.47 total=2091538\nfull avg10=9.28 avg60=2.07 avg300=0.45 total=1985904\n").unwrap();
        assert_eq!(p.some.avg10, 9.53);
        assert_eq!(p.some.total_us, 2091538);
        assert_eq!(p.full.unwrap().total_us, 1985904);
    }

    #[test]
    fn partial() {
        let p = parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert!(p.full.is_none());
        assert!(parse("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").is_err());
        assert!(parse("some avg10=x avg60=0.00 avg300=0.00 total=0\n").is_err());
        assert!(parse("some avg10=0.00\n").is_err());
    }
}
