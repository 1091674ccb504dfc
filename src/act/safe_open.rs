//! Opening a file an action is about to change (truncate, copy, compress) so that it is
//! the file that was checked, not whatever its name points to by then. The directory of a
//! log belongs to the app's user, who can swap the log for a symlink to `/etc/shadow`
//! or a FIFO between iowhy's check and its open; so the open never follows a symlink
//! (O_NOFOLLOW), never blocks on a FIFO (O_NONBLOCK), and the opened fd must be a regular
//! file with the (dev, ino) that was checked. Anything else is refused, and nothing is
//! written.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// The inode that was checked: `st_dev` and `st_ino` as `stat(2)` gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
}

impl Identity {
    pub fn of(md: &std::fs::Metadata) -> Identity {
        Identity {
            dev: md.dev(),
            ino: md.ino(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{} is now a symlink (swapped since it was checked?): not followed", path.display())]
    Symlink { path: std::path::PathBuf },
    #[error("{} is {kind}, not a regular file: not opened for writing or reading its data", path.display())]
    NotRegular {
        path: std::path::PathBuf,
        kind: &'static str,
    },
    #[error("{} is another file than the one checked (replaced meanwhile)", path.display())]
    Replaced { path: std::path::PathBuf },
}

/// What a file type is, for a refusal.
pub fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        "a symlink"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "a regular file"
    }
}

/// Open `path` (read-only, or read-write with `write`) only if it is still the regular
/// file `want`: no symlink is followed at the last component, no FIFO or device is
/// waited on, and the fd's own fstat decides.
pub fn open_checked(path: &Path, write: bool, want: Identity) -> Result<File, Refused> {
    let acc = if write { OFlags::RDWR } else { OFlags::RDONLY };
    let fd = rustix::fs::open(
        path,
        acc | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // O_NOFOLLOW on a symlink.
        rustix::io::Errno::LOOP => Refused::Symlink {
            path: path.to_path_buf(),
        },
        e => Refused::Io {
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(e.raw_os_error()),
        },
    })?;
    let f = File::from(fd);
    let md = f.metadata().map_err(|source| Refused::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !md.is_file() {
        return Err(Refused::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(md.file_type()),
        });
    }
    if Identity::of(&md) != want {
        return Err(Refused::Replaced {
            path: path.to_path_buf(),
        });
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_the_file_that_was_checked() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("app.log");
        let victim = d.path().join("victim");
        std::fs::write(&log, "log\n").unwrap();
        std::fs::write(&victim, "secret\n").unwrap();
        let checked = Identity::of(&std::fs::symlink_metadata(&log).unwrap());
        assert!(open_checked(&log, true, checked).is_ok());
        // Swapped for a symlink to the victim after the check.
        std::fs::rename(&log, d.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&victim, &log).unwrap();
        assert!(matches!(
            open_checked(&log, true, checked),
            Err(Refused::Symlink { .. })
        ));
        // Swapped for another regular file.
        std::fs::remove_file(&log).unwrap();
        std::fs::write(&log, "other\n").unwrap();
        assert!(matches!(
            open_checked(&log, false, checked),
            Err(Refused::Replaced { .. })
        ));
        // A FIFO: refused at once, not waited on.
        std::fs::remove_file(&log).unwrap();
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&log)
                .status()
                .unwrap()
                .success()
        );
        let e = open_checked(&log, false, checked).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret\n");
    }
}
