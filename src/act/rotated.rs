//! The rotated files of a log (`base.1`, `base.2.gz`, ...): their names, the renames that
//! make room for a new `base.1`, and `--keep` / `--compress`. Neither touches a file that
//! a process holds open or whose holders cannot all be known; each keeps the file's owner
//! and mode, and never replaces an existing name.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::safe_open::{Identity, open_checked};

/// One rotated file: `base.N` or `base.N.gz`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rotated {
    pub n: u32,
    pub gz: bool,
}

impl Rotated {
    pub fn name(&self, base: &str) -> String {
        format!("{base}.{}{}", self.n, if self.gz { ".gz" } else { "" })
    }
}

/// Which rotated files exist, from the names in the log's directory.
pub fn existing(base: &str, names: &[String]) -> Vec<Rotated> {
    let mut v: Vec<Rotated> = names
        .iter()
        .filter_map(|n| {
            let rest = n.strip_prefix(base)?.strip_prefix('.')?;
            let (num, gz) = match rest.strip_suffix(".gz") {
                Some(x) => (x, true),
                None => (rest, false),
            };
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(Rotated {
                n: num.parse().ok()?,
                gz,
            })
        })
        .collect();
    v.sort();
    v
}

/// What a rotation does to the old files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Renames that make room for `base.1`, highest number first so nothing is overwritten.
    pub renames: Vec<(String, String)>,
    /// Files beyond `--keep` after the shift (their new names).
    pub removals: Vec<String>,
}

impl Plan {
    /// The name a file to be removed has before the shift (what a dry run looks at).
    pub fn before_shift<'a>(&'a self, after: &'a str) -> &'a str {
        self.renames
            .iter()
            .find(|(_, to)| to == after)
            .map(|(from, _)| from.as_str())
            .unwrap_or(after)
    }
}

pub fn plan(base: &str, existing: &[Rotated], keep: Option<u32>) -> Plan {
    let mut renames = Vec::new();
    let mut after = Vec::new();
    for r in existing.iter().rev() {
        let to = Rotated {
            n: r.n + 1,
            gz: r.gz,
        };
        renames.push((r.name(base), to.name(base)));
        after.push(to);
    }
    let removals = match keep {
        Some(k) => after
            .iter()
            .filter(|r| r.n > k)
            .map(|r| r.name(base))
            .collect(),
        None => Vec::new(),
    };
    Plan { renames, removals }
}

/// rename(2) that fails instead of replacing an existing file (RENAME_NOREPLACE): a file
/// that appeared in the meantime is never overwritten.
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
}

/// Give `f` the owner and mode of `like` (a copy or a compressed file of a log keeps
/// who may read it). Owner first: chown clears set-id bits, the mode restores them.
pub fn same_owner_and_mode(f: &File, like: &std::fs::Metadata) -> std::io::Result<()> {
    rustix::fs::fchown(
        f.as_fd(),
        Some(rustix::fs::Uid::from_raw(like.uid())),
        Some(rustix::fs::Gid::from_raw(like.gid())),
    )
    .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))?;
    f.set_permissions(std::fs::Permissions::from_mode(like.mode() & 0o7777))
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What `gzip` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Gzipped {
    Done(PathBuf),
    /// Not compressed, and why; the plain file is untouched.
    Skipped(String),
}

/// gzip `from` into `to` through a temporary file of a unique name in the same directory
/// (removed if anything fails), synced, put in place with RENAME_NOREPLACE (an existing
/// `to` is never replaced), and only then is `from` removed. Skipped if `from` changed
/// while it was compressed (a late writer): removing it would lose what it added.
///
/// `from` must still be the regular file `checked` (the one whose holders were
/// examined): a symlink is not followed, a FIFO or device is not opened for its data (an
/// endless /dev/zero, a FIFO that never ends), and the owner and mode are taken from the
/// opened fd, so a link to a file behind a private directory yields no readable copy.
pub fn gzip(from: &Path, to: &Path, checked: Identity) -> Result<Gzipped> {
    let dir = from.parent().context("no directory")?;
    if to.exists() {
        return Ok(Gzipped::Skipped(format!("{} already exists", to.display())));
    }
    let mut input = match open_checked(from, false, checked) {
        Ok(f) => f,
        Err(e) => return Ok(Gzipped::Skipped(e.to_string())),
    };
    let md = input.metadata()?;
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("a temporary file in {}", dir.display()))?;
    same_owner_and_mode(tmp.as_file(), &md)?;
    let mut enc = flate2::write::GzEncoder::new(tmp.as_file(), flate2::Compression::default());
    std::io::copy(&mut input, &mut enc)?;
    enc.finish()?.flush()?;
    tmp.as_file().sync_all()?;
    let now = input.metadata()?;
    if now.len() != md.len() || now.mtime_nsec() != md.mtime_nsec() || now.mtime() != md.mtime() {
        return Ok(Gzipped::Skipped(format!(
            "{} changed while it was compressed (written to?): left as it is",
            from.display()
        )));
    }
    match tmp.persist_noclobber(to) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok(Gzipped::Skipped(format!(
                "{} appeared meanwhile",
                to.display()
            )));
        }
        Err(e) => return Err(e.error).with_context(|| format!("putting {}", to.display())),
    }
    sync_dir(dir)?;
    std::fs::remove_file(from).with_context(|| from.display().to_string())?;
    Ok(Gzipped::Done(to.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn rotated_names_and_shifts() {
        let names: Vec<String> = [
            "app.log",
            "app.log.1",
            "app.log.2.gz",
            "app.log.10",
            "app.log.x",
            "app.logs",
            "other.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let e = existing("app.log", &names);
        assert_eq!(
            e,
            vec![
                Rotated { n: 1, gz: false },
                Rotated { n: 2, gz: true },
                Rotated { n: 10, gz: false }
            ]
        );
        let p = plan("app.log", &e, Some(3));
        assert_eq!(
            p.renames,
            vec![
                ("app.log.10".to_string(), "app.log.11".to_string()),
                ("app.log.2.gz".to_string(), "app.log.3.gz".to_string()),
                ("app.log.1".to_string(), "app.log.2".to_string()),
            ]
        );
        assert_eq!(p.removals, vec!["app.log.11".to_string()]);
        assert_eq!(p.before_shift("app.log.11"), "app.log.10");
        assert!(
            plan("app.log", &e, None).removals.is_empty(),
            "nothing is removed without --keep"
        );
    }

    #[test]
    fn gzip_keeps_owner_and_mode_and_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let from = d.path().join("a.log.1");
        std::fs::write(&from, "line 1\nline 2\n").unwrap();
        std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o604)).unwrap();
        let root = rustix::process::geteuid().is_root();
        if root {
            std::os::unix::fs::chown(&from, Some(65534), Some(65534)).unwrap();
        }
        let to = d.path().join("a.log.1.gz");
        // A stale temporary file from an earlier run does not get in the way.
        std::fs::write(d.path().join("a.log.1.gz.tmp"), "stale").unwrap();
        let id = |p: &Path| Identity::of(&std::fs::symlink_metadata(p).unwrap());
        assert_eq!(
            gzip(&from, &to, id(&from)).unwrap(),
            Gzipped::Done(to.clone())
        );
        assert!(!from.exists());
        let md = std::fs::metadata(&to).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o604);
        if root {
            assert_eq!((md.uid(), md.gid()), (65534, 65534), "owner kept");
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&to).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "line 1\nline 2\n");
        // An existing .gz is never replaced; the plain file stays.
        std::fs::write(&from, "newer\n").unwrap();
        assert!(matches!(
            gzip(&from, &to, id(&from)).unwrap(),
            Gzipped::Skipped(_)
        ));
        assert_eq!(std::fs::read_to_string(&from).unwrap(), "newer\n");
        let left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".a.log"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    #[test]
    fn gzip_follows_no_symlink_and_compresses_only_the_file_checked() {
        let d = tempfile::tempdir().unwrap();
        let private = d.path().join("private");
        std::fs::write(&private, "secret\n").unwrap();
        let from = d.path().join("a.log.1");
        std::os::unix::fs::symlink(&private, &from).unwrap();
        let to = d.path().join("a.log.1.gz");
        // Whether judged by the link or by its target, a symlink is not compressed.
        for checked in [&from, &private] {
            let id = Identity::of(&std::fs::symlink_metadata(checked).unwrap());
            let r = gzip(&from, &to, id).unwrap();
            assert!(
                matches!(&r, Gzipped::Skipped(why) if why.contains("symlink")),
                "{r:?}"
            );
        }
        assert!(!to.exists());
        assert!(from.exists() && private.exists(), "nothing removed");
    }
}
