//! Log files of a container: recorded once per path, and the one being written in a
//! kubelet log directory.

use super::{ContainerInfo, LogRef};
use crate::container::rotation::LogKind;
use crate::parse::container::podlog::{self, LogFileName};

pub(super) fn push_log(
    c: &mut ContainerInfo,
    path: &str,
    kind: LogKind,
    pid: Option<u32>,
    fd: Option<i32>,
) {
    if let Some(l) = c.logs.iter_mut().find(|l| l.path == path) {
        if l.writer_pid.is_none() {
            l.writer_pid = pid;
            l.writer_fd = fd;
        }
        return;
    }
    c.logs.push(LogRef {
        path: path.to_string(),
        kind,
        writer_pid: pid,
        writer_fd: fd,
    });
}

/// The file being written in a container's log directory: the highest restart's `N.log`.
pub fn active_log(files: &[String]) -> Option<String> {
    files
        .iter()
        .filter_map(|f| match podlog::log_file_name(f) {
            Some(LogFileName::Active { restart }) => Some((restart, f)),
            _ => None,
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, f)| f.clone())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_log_is_the_highest_restart() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            active_log(&f(&["0.log", "1.log", "0.log.20240101-000000"])).as_deref(),
            Some("1.log")
        );
        assert_eq!(active_log(&f(&["x"])), None);
    }
}
