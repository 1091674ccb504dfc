//! Typed errors at the kernel boundary.
//!
//! A read of a kernel file can fail in ways that are expected on a machine in trouble: the
//! process exited (`NotFound`), we lack the privilege (`PermissionDenied`), or the text is
//! not what we expected (`Parse`). Callers match on the kind: a vanished process is
//! dropped, a permission error becomes a recorded gap, a parse error names the file.

use std::io;
use std::path::{Path, PathBuf};

use crate::parse::ParseError;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// ENOENT or ESRCH: the file, or the process it belonged to, is gone.
    #[error("{}: not found", path.display())]
    NotFound { path: PathBuf },
    /// EACCES or EPERM: the file exists but we may not read it.
    #[error("{}: permission denied", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Parse { path: PathBuf, source: ParseError },
    /// The read did not return within its deadline: the kernel holds it behind someone
    /// else's lock (a stuck page fault's `mmap_lock`) or a server that does not answer.
    #[error("{}: did not answer within {} ms (blocked in the kernel)", path.display(), waited.as_millis())]
    TimedOut {
        path: PathBuf,
        waited: std::time::Duration,
    },
}

impl ReadError {
    pub fn from_io(path: &Path, err: io::Error) -> Self {
        let path = path.to_path_buf();
        match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => ReadError::NotFound { path },
            Some(libc::EACCES) | Some(libc::EPERM) => ReadError::PermissionDenied { path },
            _ => match err.kind() {
                io::ErrorKind::NotFound => ReadError::NotFound { path },
                io::ErrorKind::PermissionDenied => ReadError::PermissionDenied { path },
                _ => ReadError::Io { path, source: err },
            },
        }
    }

    pub fn from_errno(path: &Path, err: rustix::io::Errno) -> Self {
        Self::from_io(path, io::Error::from_raw_os_error(err.raw_os_error()))
    }

    pub fn parse(path: &Path, source: ParseError) -> Self {
        ReadError::Parse {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::NotFound { .. })
    }

    pub fn is_permission(&self) -> bool {
        matches!(self, ReadError::PermissionDenied { .. })
    }

    pub fn is_timed_out(&self) -> bool {
        matches!(self, ReadError::TimedOut { .. })
    }

    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotFound { path }
            | ReadError::PermissionDenied { path }
            | ReadError::Io { path, .. }
            | ReadError::Parse { path, .. }
            | ReadError::TimedOut { path, .. } => path,
        }
    }

    /// The same error, naming `path` (an error from read(2) knows only the directory).
    pub fn with_path(self, path: PathBuf) -> Self {
        match self {
            ReadError::NotFound { .. } => ReadError::NotFound { path },
            ReadError::PermissionDenied { .. } => ReadError::PermissionDenied { path },
            ReadError::Io { source, .. } => ReadError::Io { path, source },
            ReadError::Parse { source, .. } => ReadError::Parse { path, source },
            ReadError::TimedOut { waited, .. } => ReadError::TimedOut { path, waited },
        }
    }
}

/// An error the user caused (bad PID, a root that is not procfs, a bad interval): printed
/// as one line on stderr, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}
