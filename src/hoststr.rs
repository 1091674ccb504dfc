//! Host strings: file names, `comm`, `cmdline` and container names come from the host as
//! bytes, and anyone who can create a file or start a process chooses them. Two problems
//! follow, and this module answers both.
//!
//! 1. They need not be UTF-8. A lossy conversion (U+FFFD) would print, and put in JSON, a
//!    path that does not exist. [`from_bytes`] instead keeps every byte: valid UTF-8 stays
//!    as it is, and each byte that is not part of valid UTF-8 becomes the private-use char
//!    U+10FF00 + byte (plane 16, which no real name uses). A real char in that range is
//!    itself stored as its four bytes, so [`to_bytes`] always gives back the exact input.
//!    JSON carries this encoding; its readers decode with the same rule.
//! 2. They may hold control characters. A name with `\n` splits a table row, and one with
//!    `ESC [` sends commands to the terminal of the root user reading the report.
//!    [`for_terminal`] escapes them (and the encoded bytes) for text output.

use std::borrow::Cow;

/// What the JSON reports say about this encoding (`capabilities.path_encoding`).
pub const PATH_ENCODING: &str = "utf-8; invalid bytes as U+10FF00+byte";

/// The first char of the range that stands for raw bytes: U+10FF00 + byte.
const BASE: u32 = 0x10FF00;

/// The byte a char stands for, if it is one of the encoded bytes.
fn encoded_byte(c: char) -> Option<u8> {
    let v = c as u32;
    (v >= BASE).then(|| (v - BASE) as u8)
}

fn byte_char(b: u8) -> char {
    // BASE + 0..=255 is U+10FF00..=U+10FFFF: valid scalar values, never surrogates.
    char::from_u32(BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Host bytes as a String that loses nothing (see the module docs).
pub fn from_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if encoded_byte(c).is_some() {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    out.push(byte_char(byte));
                }
            } else {
                out.push(c);
            }
        }
        for &byte in chunk.invalid() {
            out.push(byte_char(byte));
        }
    }
    out
}

/// The host bytes a [`from_bytes`] String stands for.
pub fn to_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match encoded_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

/// True when the String is its own bytes: nothing in it was encoded.
fn is_lossless_plain(s: &str) -> bool {
    !s.chars().any(|c| encoded_byte(c).is_some())
}

/// Bidirectional and zero-width format chars: they reorder or hide what a terminal shows
/// ("Trojan Source"), so a path could display as another path.
fn is_deceptive_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || encoded_byte(c).is_some() || is_deceptive_format(c)
}

/// A host string made safe to print on a terminal, one line, readable: `\n`, `\t`, `\r`,
/// ESC as `\e`, other C0/C1 controls and DEL as `\xNN`, encoded raw bytes as `\xNN`,
/// bidi/zero-width format chars as `\u{NNNN}`, and the backslash itself as `\\` (so an
/// escape in the output always means an escape). For text output only: JSON keeps the
/// lossless encoding.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            c if encoded_byte(c).is_some() => {
                out.push_str(&format!("\\x{:02x}", encoded_byte(c).unwrap_or(0)))
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_deceptive_format(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`for_terminal`] on each line of a text that is meant to have several (a remediation
/// command, a wrapped explanation): the line breaks stay, everything else is escaped.
pub fn for_terminal_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.split('\n')
            .map(|l| for_terminal(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// The human reading of a host string: encoded bytes become U+FFFD, as a lossy UTF-8
/// conversion of the real bytes would give. For JSON fields meant for people (a summary),
/// not for paths a script will open.
pub fn lossy(s: &str) -> Cow<'_, str> {
    if is_lossless_plain(s) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(String::from_utf8_lossy(&to_bytes(s)).into_owned())
}

/// The first `max_bytes` bytes of `s`, cut back to a char boundary (host strings may hold
/// any char; slicing `&s[..n]` panics inside one).
pub fn prefix(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utf8_stays_and_bad_bytes_are_kept() {
        assert_eq!(from_bytes(b"/var/log/app.log"), "/var/log/app.log");
        assert_eq!(from_bytes("caf\u{e9}".as_bytes()), "caf\u{e9}");
        let s = from_bytes(b"a\xffb");
        assert_eq!(s, "a\u{10FFFF}b");
        assert_eq!(to_bytes(&s), b"a\xffb");
        assert!(!is_lossless_plain(&s));
        assert!(is_lossless_plain("caf\u{e9}"));
        // A lone continuation byte and a truncated sequence, each byte kept.
        assert_eq!(to_bytes(&from_bytes(b"\x80\xe2\x82")), b"\x80\xe2\x82");
    }

    #[test]
    fn a_real_char_in_the_escape_range_is_itself_escaped() {
        let real = "x\u{10FF41}y";
        let s = from_bytes(real.as_bytes());
        assert_ne!(s, real, "it must not be read back as the byte 0x41");
        assert_eq!(to_bytes(&s), real.as_bytes());
        assert_eq!(lossy(&s), real);
    }

    #[test]
    fn terminal_output_has_no_controls_and_no_raw_bytes() {
        let name = from_bytes(b"a\nb\xff\x1b[31mRED\t\\x\r\x7f\x01.log");
        let t = for_terminal(&name);
        assert_eq!(t, "a\\nb\\xff\\e[31mRED\\t\\\\x\\r\\x7f\\x01.log");
        assert!(!t.chars().any(|c| c.is_control()));
        assert_eq!(for_terminal("\u{9b}31m"), "\\x9b31m");
        assert_eq!(for_terminal("a\u{202e}b"), "a\\u{202e}b");
        assert!(matches!(for_terminal("/var/log/ok.log"), Cow::Borrowed(_)));
        assert_eq!(for_terminal("日本語 ok"), "日本語 ok");
    }

    #[test]
    fn lossy_is_for_people() {
        assert_eq!(lossy(&from_bytes(b"a\xffb")), "a\u{FFFD}b");
        assert!(matches!(lossy("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn prefix_never_cuts_a_char() {
        let id = format!("aaaaaaaaaaa\u{e9}{}", "a".repeat(51));
        assert_eq!(id.len(), 64);
        assert_eq!(prefix(&id, 12), "aaaaaaaaaaa");
        assert_eq!(prefix(&id, 13), "aaaaaaaaaaa\u{e9}");
        assert_eq!(prefix("abc", 12), "abc");
        assert_eq!(prefix("", 0), "");
    }

    proptest! {
        #[test]
        fn bytes_round_trip(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let s = from_bytes(&b);
            prop_assert_eq!(to_bytes(&s), b.clone());
            prop_assert_eq!(is_lossless_plain(&s), s.as_bytes() == b.as_slice());
            prop_assert_eq!(lossy(&s).into_owned(), String::from_utf8_lossy(&b).into_owned());
            let t = for_terminal(&s);
            prop_assert!(!t.chars().any(|c| c.is_control() || encoded_byte(c).is_some()));
        }

        #[test]
        fn strings_round_trip(s in any::<String>()) {
            prop_assert_eq!(to_bytes(&from_bytes(s.as_bytes())), s.as_bytes().to_vec());
        }

        #[test]
        fn prefix_is_a_prefix(s in any::<String>(), n in 0usize..64) {
            let p = prefix(&s, n);
            prop_assert!(s.starts_with(p) && p.len() <= n);
        }
    }
}
