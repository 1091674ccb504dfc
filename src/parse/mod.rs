//! Pure parsers of kernel text files (and, in `container`, of the container runtimes'
//! files): `fn parse(&str) -> Result<T, ParseError>`.
//!
//! Nothing here opens a file; the readers in `source` do the I/O and hand the text in.
//! Each parser is tested on files captured from a real kernel 6.x machine
//! (`tests/fixtures/`) and on hostile input.

pub mod cgroup;
pub mod container;
pub mod diskstats;
pub mod fdinfo;
pub mod fdlink;
pub mod kv;
pub mod maps;
pub mod mountinfo;
pub mod pid_stat;
pub mod psi;
pub mod stack;
pub mod sysblock;
pub mod tracefs;

#[cfg(test)]
mod proptests;

use std::fmt;

/// What was wrong with a kernel file's text. The reader adds the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub what: &'static str,
    pub detail: String,
}

impl ParseError {
    pub fn new(what: &'static str, detail: impl Into<String>) -> Self {
        ParseError {
            what,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "cannot parse {}", self.what)
        } else {
            write!(f, "cannot parse {}: {}", self.what, self.detail)
        }
    }
}

impl std::error::Error for ParseError {}

/// Parse one whitespace-separated unsigned field, naming it in the error.
pub(crate) fn num<T: std::str::FromStr>(
    s: Option<&str>,
    what: &'static str,
) -> Result<T, ParseError> {
    let s = s.ok_or_else(|| ParseError::new(what, "missing field"))?;
    s.parse()
        .map_err(|_| ParseError::new(what, format!("not a number: {s:?}")))
}

/// Undo the octal escapes the kernel uses in paths (`\040` for a space, `\012` for a
/// newline, `\134` for a backslash) in mountinfo and similar files. The result is a host
/// string (`crate::hoststr`): an escaped byte that is not UTF-8 (`\377`) is kept, not
/// replaced by U+FFFD.
pub fn unescape_octal(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    // The bytes the text stands for, so raw bytes already encoded by the reader stay
    // single bytes and are not encoded twice.
    let b = crate::hoststr::to_bytes(s);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
            && b[i + 1] <= b'3'
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    crate::hoststr::from_bytes(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_unescape() {
        assert_eq!(unescape_octal(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_octal(r"/x\134y"), "/x\\y");
        assert_eq!(unescape_octal(r"/trailing\04"), r"/trailing\04");
        assert_eq!(unescape_octal(r"\"), r"\");
        assert_eq!(unescape_octal("plain"), "plain");
        let s = unescape_octal(r"/mnt/\377x");
        assert_eq!(crate::hoststr::to_bytes(&s), b"/mnt/\xffx");
    }
}
