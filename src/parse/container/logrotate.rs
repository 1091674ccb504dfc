//! logrotate's configuration: which stanza covers a file, and what triggers it.
//!
//! Hand-written because no maintained crate parses logrotate's format. The grammar we
//! need is small (logrotate(8)): `#` comments; global directives; `include PATH` (read in
//! place); stanzas
//! of one or more glob patterns (quotes allowed) followed by `{ directives }`; script
//! blocks (`postrotate` ... `endscript`) skipped whole. Patterns use glob(3) semantics
//! without brace expansion: `*` does not cross `/`.

use serde::{Deserialize, Serialize};

use crate::parse::ParseError;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stanza {
    pub patterns: Vec<String>,
    /// `size N`: rotate when bigger than N, whatever the period.
    pub size_bytes: Option<u64>,
    /// `maxsize N`: rotate when bigger than N even before the period is over.
    pub maxsize_bytes: Option<u64>,
    /// `hourly`, `daily`, `weekly`, `monthly`, `yearly` (inherited from the globals).
    pub frequency: Option<String>,
    pub rotate: Option<u32>,
    pub copytruncate: bool,
    /// The file it was read from.
    pub source: String,
}

impl Stanza {
    pub fn covers(&self, path: &str) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        self.patterns.iter().any(|p| {
            p == path
                || glob::Pattern::new(p)
                    .map(|g| g.matches_with(path, opts))
                    .unwrap_or(false)
        })
    }

    /// The size past which it rotates, if any.
    pub fn size_trigger_bytes(&self) -> Option<u64> {
        self.size_bytes.or(self.maxsize_bytes)
    }

    /// One line for a report: `size 100M, rotate 5, daily (from /etc/logrotate.d/app)`.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if let Some(s) = self.size_bytes {
            v.push(format!("size {}", crate::units::bytes_u(s)));
        }
        if let Some(s) = self.maxsize_bytes {
            v.push(format!("maxsize {}", crate::units::bytes_u(s)));
        }
        if let Some(f) = &self.frequency {
            v.push(f.clone());
        }
        if let Some(r) = self.rotate {
            v.push(format!("rotate {r}"));
        }
        if self.copytruncate {
            v.push("copytruncate".into());
        }
        format!("logrotate: {} (from {})", v.join(", "), self.source)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub stanzas: Vec<Stanza>,
    /// cron runs logrotate hourly (`/etc/cron.hourly/logrotate`); otherwise daily.
    pub runs_hourly: bool,
    /// The files that were read.
    pub files: Vec<String>,
}

impl Config {
    /// The stanza that rotates `path`: logrotate uses the first that matches.
    pub fn covering(&self, path: &str) -> Option<&Stanza> {
        self.stanzas.iter().find(|s| s.covers(path))
    }

    /// How often logrotate looks at its files, in seconds.
    pub fn run_interval_s(&self) -> f64 {
        if self.runs_hourly { 3600.0 } else { 86400.0 }
    }
}

/// Global settings that stanzas inherit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Defaults {
    pub size_bytes: Option<u64>,
    pub maxsize_bytes: Option<u64>,
    pub frequency: Option<String>,
    pub rotate: Option<u32>,
}

/// What one file holds, without reading its includes: its stanzas and the paths it
/// `include`s, in order. `defaults` carries the globals from earlier files and is updated.
#[cfg(test)]
pub fn parse(
    text: &str,
    source: &str,
    defaults: &mut Defaults,
) -> Result<(Vec<Stanza>, Vec<String>), ParseError> {
    let mut stanzas = Vec::new();
    let mut includes = Vec::new();
    parse_with(text, source, defaults, &mut stanzas, &mut |p, _, _| {
        includes.push(p.to_string())
    })?;
    Ok((stanzas, includes))
}

/// Parse one file into `out`, calling `include(path, defaults, out)` where an `include`
/// directive stands, as logrotate does (config.c reads the included path on the spot):
/// the included files see only the globals set before the `include` ("global options do
/// not affect preceding include directives", Debian's logrotate.conf), and their stanzas
/// come before the ones after it. Stanzas parsed before an error stay in `out`; logrotate
/// too goes on with the rest of its configuration.
pub fn parse_with(
    text: &str,
    source: &str,
    defaults: &mut Defaults,
    out: &mut Vec<Stanza>,
    include: &mut dyn FnMut(&str, &mut Defaults, &mut Vec<Stanza>),
) -> Result<(), ParseError> {
    let stanzas = out;
    let mut pending: Vec<String> = Vec::new();
    let mut current: Option<Stanza> = None;
    let mut in_script = false;
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if in_script {
            if line == "endscript" {
                in_script = false;
            }
            continue;
        }
        let words = split_words(line);
        let Some(first) = words.first() else { continue };
        if let Some(st) = current.as_mut() {
            if first == "}" {
                stanzas.push(current.take().expect("in a stanza"));
                continue;
            }
            if is_script(first) {
                in_script = true;
                continue;
            }
            apply(st, &words, n, source)?;
            continue;
        }
        // Outside a stanza: a pattern list (possibly spanning lines) ending in `{`, or a
        // global directive.
        if line.ends_with('{') || first == "{" || !pending.is_empty() && line.contains('{') {
            let before = line.trim_end_matches('{').trim();
            pending.extend(split_words(before));
            if pending.is_empty() {
                return Err(ParseError::new(
                    "logrotate config",
                    format!("{source}:{}: `{{` without a file pattern", n + 1),
                ));
            }
            current = Some(Stanza {
                patterns: std::mem::take(&mut pending),
                size_bytes: defaults.size_bytes,
                maxsize_bytes: defaults.maxsize_bytes,
                frequency: defaults.frequency.clone(),
                rotate: defaults.rotate,
                copytruncate: false,
                source: source.to_string(),
            });
            continue;
        }
        if first.starts_with('/') || first.starts_with('"') || first.starts_with('\'') {
            pending.extend(words);
            continue;
        }
        if first == "include" {
            if let Some(p) = words.get(1) {
                include(p, defaults, stanzas);
            }
            continue;
        }
        let mut g = Stanza {
            size_bytes: defaults.size_bytes,
            maxsize_bytes: defaults.maxsize_bytes,
            frequency: defaults.frequency.clone(),
            rotate: defaults.rotate,
            ..Default::default()
        };
        apply(&mut g, &words, n, source)?;
        *defaults = Defaults {
            size_bytes: g.size_bytes,
            maxsize_bytes: g.maxsize_bytes,
            frequency: g.frequency,
            rotate: g.rotate,
        };
    }
    if current.is_some() {
        return Err(ParseError::new(
            "logrotate config",
            format!("{source}: a stanza is not closed with `}}`"),
        ));
    }
    Ok(())
}

fn is_script(w: &str) -> bool {
    matches!(
        w,
        "postrotate" | "prerotate" | "firstaction" | "lastaction" | "preremove"
    )
}

fn apply(st: &mut Stanza, words: &[String], n: usize, source: &str) -> Result<(), ParseError> {
    let arg = || words.get(1).map(String::as_str).unwrap_or("");
    let size = |v: &str| {
        parse_size(v).ok_or_else(|| {
            ParseError::new(
                "logrotate config",
                format!("{source}:{}: bad size {v:?}", n + 1),
            )
        })
    };
    match words[0].as_str() {
        "size" => st.size_bytes = Some(size(arg())?),
        "maxsize" => st.maxsize_bytes = Some(size(arg())?),
        "hourly" | "daily" | "weekly" | "monthly" | "yearly" => {
            st.frequency = Some(words[0].clone())
        }
        "rotate" => st.rotate = arg().parse().ok(),
        "copytruncate" => st.copytruncate = true,
        "nocopytruncate" => st.copytruncate = false,
        // Every other directive (compress, missingok, create, su, ...) does not change
        // when or whether a file is rotated.
        _ => {}
    }
    Ok(())
}

/// `100`, `100k`, `100M`, `1G` (logrotate's units are powers of 1024).
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1u64 << 10),
        'M' => (&v[..v.len() - 1], 1 << 20),
        'G' => (&v[..v.len() - 1], 1 << 30),
        c if c.is_ascii_digit() => (v, 1),
        _ => return None,
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn strip_comment(line: &str) -> &str {
    // `#` starts a comment at the start of a line or after whitespace.
    let b = line.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// Words, honouring "double" and 'single' quotes.
fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Debian 12's /etc/logrotate.conf and a package stanza (rsyslog), as shipped.
    const CONF: &str = "# see \"man logrotate\" for details\n\n# global options do not affect preceding include directives\n\n# rotate log files weekly\nweekly\n\n# keep 4 weeks worth of backlogs\nrotate 4\n\n# create new (empty) log files after rotating old ones\ncreate\n\n# use date as a suffix of the rotated file\n#dateext\n\n# uncomment this if you want your log files compressed\n#compress\n\n# packages drop log rotation information into this directory\ninclude /etc/logrotate.d\n\n# system-specific logs may also be configured here.\n";
    const RSYSLOG: &str = "/var/log/syslog\n/var/log/mail.log\n/var/log/kern.log\n/var/log/auth.log\n/var/log/user.log\n/var/log/cron.log\n{\n\trotate 4\n\tweekly\n\tmissingok\n\tnotifempty\n\tcompress\n\tdelaycompress\n\tsharedscripts\n\tpostrotate\n\t\t/usr/lib/rsyslog/rsyslog-rotate\n\tendscript\n}\n";

    #[test]
    fn debian_defaults_and_a_package() {
        let mut d = Defaults::default();
        let (st, inc) = parse(CONF, "/etc/logrotate.conf", &mut d).unwrap();
        assert!(st.is_empty());
        assert_eq!(inc, vec!["/etc/logrotate.d"]);
        assert_eq!(d.frequency.as_deref(), Some("weekly"));
        assert_eq!(d.rotate, Some(4));
        let (st, _) = parse(RSYSLOG, "/etc/logrotate.d/rsyslog", &mut d).unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].patterns.len(), 6);
        assert!(st[0].covers("/var/log/syslog"));
        assert!(!st[0].covers("/var/log/app/output.log"));
        assert_eq!(st[0].size_trigger_bytes(), None);
    }

    #[test]
    fn includes_see_only_the_globals_before_them() {
        // logrotate.conf sets `weekly` and `rotate 4`, includes the directory, then sets
        // `daily`, `rotate 9` and `size 5M`: the included stanza keeps weekly/4; a stanza
        // after the include gets the later globals; the included one comes first.
        let conf = "weekly\nrotate 4\ninclude /etc/logrotate.d\ndaily\nrotate 9\nsize 5M\n/var/log/late.log {\n}\n";
        let inc = "/var/log/app/*.log {\n  copytruncate\n}\n";
        let mut d = Defaults::default();
        let mut out = Vec::new();
        let mut seen = Vec::new();
        parse_with(
            conf,
            "/etc/logrotate.conf",
            &mut d,
            &mut out,
            &mut |p, d, out| {
                seen.push(p.to_string());
                parse_with(inc, "/etc/logrotate.d/app", d, out, &mut |_, _, _| {}).unwrap();
            },
        )
        .unwrap();
        assert_eq!(seen, vec!["/etc/logrotate.d"]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].source, "/etc/logrotate.d/app");
        assert_eq!(out[0].frequency.as_deref(), Some("weekly"));
        assert_eq!((out[0].rotate, out[0].size_bytes), (Some(4), None));
        assert_eq!(out[1].frequency.as_deref(), Some("daily"));
        assert_eq!((out[1].rotate, out[1].size_bytes), (Some(9), Some(5 << 20)));
        // A global set inside the included file carries on after the include, as
        // logrotate shares one set of defaults.
        let mut d = Defaults::default();
        let mut out = Vec::new();
        parse_with(
            "include x\n/a {\n}\n",
            "c",
            &mut d,
            &mut out,
            &mut |_, d, out| {
                parse_with("rotate 2\n", "x", d, out, &mut |_, _, _| {}).unwrap();
            },
        )
        .unwrap();
        assert_eq!(out[0].rotate, Some(2));
    }

    #[test]
    fn globs_sizes_quotes() {
        let mut d = Defaults {
            frequency: Some("weekly".into()),
            ..Default::default()
        };
        let t = "\"/var/log/app/*.log\" /srv/log/x.log {  # app logs\n  size 100M\n  rotate 5\n  copytruncate\n}\n/var/log/pods/*/*/*.log {\n maxsize 1G\n daily\n}\n";
        let (st, _) = parse(t, "/etc/logrotate.d/app", &mut d).unwrap();
        assert_eq!(st[0].patterns, vec!["/var/log/app/*.log", "/srv/log/x.log"]);
        assert_eq!(st[0].size_bytes, Some(100 << 20));
        assert!(st[0].copytruncate);
        assert_eq!(st[0].frequency.as_deref(), Some("weekly"));
        assert!(st[0].covers("/var/log/app/output.log"));
        // `*` does not cross a `/`.
        assert!(!st[0].covers("/var/log/app/sub/output.log"));
        assert!(st[1].covers("/var/log/pods/ns_p_u/c/0.log"));
        assert_eq!(st[1].size_trigger_bytes(), Some(1 << 30));
        let c = Config {
            stanzas: st,
            runs_hourly: false,
            files: vec![],
        };
        assert_eq!(c.covering("/srv/log/x.log").unwrap().rotate, Some(5));
        assert!(c.describe_first().contains("size 100 MiB"));
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("10x"), None);
        assert_eq!(parse_size(""), None);
    }

    impl Config {
        fn describe_first(&self) -> String {
            self.stanzas[0].describe()
        }
    }

    #[test]
    fn hostile() {
        let mut d = Defaults::default();
        assert!(parse("/x {\n size 10\n", "f", &mut d).is_err());
        assert!(parse("{\n}\n", "f", &mut d).is_err());
        assert!(parse("/x {\n size lots\n}\n", "f", &mut d).is_err());
        // A script block may contain braces and keywords.
        let (st, _) = parse(
            "/x {\n postrotate\n  if [ 1 ]; then { echo }; fi\n  size 1\n endscript\n}\n",
            "f",
            &mut d,
        )
        .unwrap();
        assert_eq!(st[0].size_bytes, None);
        let _ = parse("\u{0}{{{}}}\"'\n", "f", &mut d);
        let s = Stanza {
            patterns: vec!["[".into()],
            ..Default::default()
        };
        assert!(!s.covers("/x"));
    }
}
