//! A plain aligned table: the first column left-aligned, the rest right-aligned (numbers),
//! unless a column is marked as text. Cells often hold host strings (paths, comm, container
//! names), so every cell goes through [`crate::hoststr::for_terminal`] when it is added: a
//! newline or an escape sequence in a file name cannot split a row or reach the terminal.

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    left: Vec<bool>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        let mut left = vec![false; headers.len()];
        if let Some(l) = left.first_mut() {
            *l = true;
        }
        Table {
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
            left,
        }
    }

    /// Mark columns (by index) as left-aligned text.
    pub fn text_columns(mut self, cols: &[usize]) -> Self {
        for &c in cols {
            if c < self.left.len() {
                self.left[c] = true;
            }
        }
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| match crate::hoststr::for_terminal(&c) {
                    std::borrow::Cow::Borrowed(_) => c,
                    std::borrow::Cow::Owned(e) => e,
                })
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut w = vec![0usize; n];
        for r in std::iter::once(&self.headers).chain(self.rows.iter()) {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.headers).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, width) in w.iter().enumerate() {
                let c = r.get(i).map(String::as_str).unwrap_or("");
                let pad = width.saturating_sub(c.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                if self.left[i] {
                    line.push_str(c);
                    if i + 1 < n {
                        line.push_str(&" ".repeat(pad));
                    }
                } else {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(c);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// As a Markdown table.
    pub fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        out.push_str(&format!(
            "|{}|\n",
            self.left
                .iter()
                .map(|l| if *l { " --- " } else { " ---: " })
                .collect::<Vec<_>>()
                .join("|")
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
            ));
        }
        out
    }
}

/// The filesystem table of every report (df's columns plus inode use, growth and time
/// to full); pseudo filesystems and tiny ones are left out.
pub fn filesystems(fs: &[crate::wire::diagnose::Filesystem]) -> Table {
    use crate::units;
    let mut t = Table::new(&[
        "Mountpoint",
        "Size",
        "Used",
        "Avail",
        "Use%",
        "IUse%",
        "Growth/s",
        "Full in",
        "Device",
    ])
    .text_columns(&[8]);
    let pct = |v: Option<f64>| v.map(|v| format!("{v:.0}%")).unwrap_or_else(|| "-".into());
    for f in fs
        .iter()
        .filter(|f| f.size_bytes > 64 * 1024 && f.fstype != "devtmpfs")
    {
        t.row(vec![
            f.mountpoint.clone(),
            units::bytes_u(f.size_bytes),
            units::bytes_u(f.used_bytes),
            units::bytes_u(f.avail_bytes),
            pct(f.use_pct),
            pct(f.inodes_use_pct),
            f.growth_bytes_per_s
                .map(units::rate)
                .unwrap_or_else(|| "-".into()),
            f.time_to_full_s
                .map(units::duration)
                .unwrap_or_else(|| "-".into()),
            f.devices
                .first()
                .cloned()
                .unwrap_or_else(|| f.source.clone()),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns() {
        let mut t = Table::new(&["Device", "r/s"]);
        t.row(vec!["vda".into(), "8.05".into()]);
        t.row(vec!["nvme0n1".into(), "120.00".into()]);
        assert_eq!(
            t.render(),
            "Device      r/s\nvda        8.05\nnvme0n1  120.00\n"
        );
        assert!(t.markdown().contains("| --- | ---: |"));
    }

    #[test]
    fn a_hostile_cell_cannot_split_a_row_or_reach_the_terminal() {
        let mut t = Table::new(&["PID", "FILE"]).text_columns(&[1]);
        let name = crate::hoststr::from_bytes(b"/tmp/a\nb\xff\x1b[31mRED.log");
        t.row(vec!["7".into(), name]);
        let out = t.render();
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(!out.contains('\x1b'));
        assert!(out.contains("/tmp/a\\nb\\xff\\e[31mRED.log"), "{out}");
    }
}
