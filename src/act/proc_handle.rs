//! A process iowhy acts on across time (stops, resumes, signals), pinned by a pidfd so
//! that no signal reaches another process that reused its pid meanwhile. The handle is
//! opened only if the pid still has the start time iowhy saw when it chose the target:
//! the pidfd then refers to that very process for as long as iowhy holds it.

use std::os::fd::{AsFd, OwnedFd};

use rustix::process::{Pid, PidfdFlags, Signal};

use crate::error::ReadError;
use crate::roots::Roots;

pub struct ProcHandle {
    pub pid: u32,
    start_ticks: u64,
    roots: Roots,
    /// `None` on kernels without pidfd_open (before 5.3): the start time is then checked
    /// before each signal, which leaves only the instant between check and kill.
    fd: Option<OwnedFd>,
}

/// The start time (stat field 22) of `pid`; `is_not_found()` when it is gone.
pub fn start_ticks_of(roots: &Roots, pid: u32) -> Result<u64, ReadError> {
    super::read_pid_stat(roots, pid).map(|s| s.start_ticks)
}

impl ProcHandle {
    /// Hold `pid` if it is still the process that started at `start_ticks`; the error
    /// says why not (gone, or another process now).
    pub fn open(roots: &Roots, pid: u32, start_ticks: u64) -> Result<ProcHandle, String> {
        let raw = Pid::from_raw(pid as i32).ok_or_else(|| format!("{pid} is not a pid"))?;
        let fd = match rustix::process::pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => Some(fd),
            Err(rustix::io::Errno::NOSYS) => None,
            Err(rustix::io::Errno::SRCH) => return Err(format!("pid {pid} has exited")),
            Err(e) => return Err(format!("pid {pid}: pidfd_open: {e}")),
        };
        // Checked after pidfd_open: if the pid was reused before it, the start time differs.
        match start_ticks_of(roots, pid) {
            Ok(s) if s == start_ticks => Ok(ProcHandle {
                pid,
                start_ticks,
                roots: roots.clone(),
                fd,
            }),
            Ok(_) => Err(format!(
                "pid {pid} is now another process (its start time changed)"
            )),
            Err(e) if e.is_not_found() => Err(format!("pid {pid} has exited")),
            Err(e) => Err(format!("pid {pid}: its start time cannot be read: {e}")),
        }
    }

    pub fn signal(&self, sig: Signal) -> std::io::Result<()> {
        let r = match &self.fd {
            Some(fd) => rustix::process::pidfd_send_signal(fd.as_fd(), sig),
            None => {
                if start_ticks_of(&self.roots, self.pid).ok() != Some(self.start_ticks) {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                let pid = Pid::from_raw(self.pid as i32).expect("checked in open");
                rustix::process::kill_process(pid, sig)
            }
        };
        r.map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_a_live_child_and_refuses_a_wrong_start_time() {
        let roots = Roots::default();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        let ticks = start_ticks_of(&roots, pid).expect("running");
        let wrong = ProcHandle::open(&roots, pid, ticks + 1);
        assert!(wrong.is_err_and(|e| e.contains("another process")));
        let h = ProcHandle::open(&roots, pid, ticks).expect("same process");
        h.signal(Signal::KILL).expect("signalled through the pidfd");
        let st = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGKILL));
        // Reaped: the pidfd still refers to it, and a signal no longer reaches anything.
        assert!(h.signal(Signal::CONT).is_err());
        assert!(ProcHandle::open(&roots, pid, ticks).is_err());
    }
}
