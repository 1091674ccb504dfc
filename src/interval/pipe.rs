//! Blocked pipes over an interval: each task asleep writing into a full pipe, who holds
//! the read end, what that reader is doing, and whether the pipe moved at all.

use serde::Serialize;

use crate::parse::fdinfo::{O_ACCMODE, O_WRONLY};
use crate::parse::fdlink;
use crate::parse::stack;
use crate::snapshot::{OpenFile, PipeFill, PipeWait, Process, Snapshot};

use super::ProcessRates;

/// A process holding the read end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PipeReader {
    pub pid: u32,
    pub comm: String,
    pub fd: i32,
    pub state: char,
    pub wchan: Option<String>,
    /// What it is doing, for a person: `stopped`, `traced`, `disk_wait`, `zombie`,
    /// `running`, `reading` (waiting for data in some pipe), `not_reading`.
    pub activity: &'static str,
}

impl PipeReader {
    pub fn describe(&self) -> String {
        let w = self.wchan.as_deref().unwrap_or("?");
        match self.activity {
            "stopped" => "stopped (state T: SIGSTOP or job control), so it never reads".into(),
            "traced" => "stopped by a debugger or tracer (state t)".into(),
            "disk_wait" => format!("in uninterruptible sleep (D) in {w}"),
            "zombie" => "a zombie: it exited, its parent has not reaped it".into(),
            "running" => "running, but not draining the pipe fast enough".into(),
            "reading" => format!("waiting for data in {w} (on another pipe?)"),
            _ => format!("alive but not reading: asleep in {w}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockedPipe {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub cmdline: String,
    /// The writer's fd of the pipe.
    pub fd: i32,
    /// `pipe:[INODE]`, or a FIFO's path.
    pub pipe: String,
    pub ino: Option<u64>,
    pub queued_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    /// FIONREAD at the start of the window, when the writer was blocked then too.
    pub queued_bytes_before: Option<u64>,
    /// The same task was blocked on the same pipe at both ends of the window.
    pub blocked_whole_window: bool,
    pub wchan: Option<String>,
    pub stack: Option<Vec<String>>,
    /// The fd came from `/proc/PID/task/TID/syscall` (else it is the fullest pipe the
    /// writer holds).
    pub fd_from_syscall: bool,
    /// Other processes holding the read end.
    pub readers: Vec<PipeReader>,
    /// The writer holds a read end itself (it would never get EPIPE).
    pub writer_holds_read_end: bool,
    /// Bytes the writer passed to write calls per second (0: it made no progress).
    pub writer_wchar_per_s: Option<f64>,
}

impl BlockedPipe {
    pub fn fill_pct(&self) -> Option<f64> {
        let (q, c) = (self.queued_bytes?, self.capacity_bytes?);
        (c > 0).then(|| (q as f64 * 100.0 / c as f64).min(100.0))
    }

    /// No byte moved through the pipe during the window.
    pub fn stalled(&self) -> bool {
        self.blocked_whole_window
            && (self.writer_wchar_per_s == Some(0.0)
                || (self.queued_bytes.is_some() && self.queued_bytes == self.queued_bytes_before))
    }
}

fn activity(state: char, wchan: Option<&str>) -> &'static str {
    match state {
        'T' => "stopped",
        't' => "traced",
        'D' => "disk_wait",
        'Z' | 'X' => "zombie",
        'R' => "running",
        _ if wchan.is_some_and(stack::is_pipe_read_wait) => "reading",
        _ => "not_reading",
    }
}

fn same_pipe(f: &OpenFile, ino: u64, writer: &OpenFile) -> bool {
    let fino = f
        .stat
        .map(|s| s.ino)
        .or_else(|| fdlink::parse(&f.target).inode);
    let dev_ok = match (f.stat, writer.stat) {
        (Some(a), Some(b)) => a.dev_major == b.dev_major && a.dev_minor == b.dev_minor,
        _ => true,
    };
    fino == Some(ino) && dev_ok
}

fn reads(f: &OpenFile) -> bool {
    f.flags.is_some_and(|fl| fl & O_ACCMODE != O_WRONLY)
}

/// The pipe a wait is about: the syscall's fd, else the fullest.
fn chosen(w: &PipeWait) -> Option<&PipeFill> {
    if let Some(fd) = w.fd {
        if let Some(f) = w.pipes.iter().find(|p| p.fd == fd) {
            return Some(f);
        }
    }
    w.pipes.iter().max_by(|a, b| {
        let r = |p: &PipeFill| match (p.queued_bytes, p.capacity_bytes) {
            (Some(q), Some(c)) if c > 0 => q as f64 / c as f64,
            (Some(q), _) => q as f64,
            _ => -1.0,
        };
        r(a).partial_cmp(&r(b))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.fd.cmp(&a.fd))
    })
}

pub fn blocked(before: &Snapshot, after: &Snapshot, rates: &[ProcessRates]) -> Vec<BlockedPipe> {
    let mut out = Vec::new();
    for w in &after.pipe_waits {
        let Some(p) = after.process(w.pid) else {
            continue;
        };
        let Some(fill) = chosen(w) else { continue };
        let Some(wf) = p.fds.iter().flatten().find(|f| f.fd == fill.fd) else {
            continue;
        };
        let ino = fill.ino.or(wf.stat.map(|s| s.ino));
        let was = before.pipe_waits.iter().find(|b| {
            b.pid == w.pid
                && b.tid == w.tid
                && before
                    .process(b.pid)
                    .is_some_and(|q| q.start_ticks == p.start_ticks)
                && b.pipes.iter().any(|x| x.ino.is_some() && x.ino == ino)
        });
        let queued_before = was.and_then(|b| {
            b.pipes
                .iter()
                .find(|x| x.ino == ino)
                .and_then(|x| x.queued_bytes)
        });
        let (readers, own) = match ino {
            Some(i) => readers_of(after, p, i, wf),
            None => (Vec::new(), false),
        };
        out.push(BlockedPipe {
            pid: p.pid,
            tid: w.tid,
            comm: p.comm.clone(),
            cmdline: p.cmdline_string(),
            fd: wf.fd,
            pipe: wf.target.clone(),
            ino,
            queued_bytes: fill.queued_bytes,
            capacity_bytes: fill.capacity_bytes,
            queued_bytes_before: queued_before,
            blocked_whole_window: was.is_some(),
            wchan: w.wchan.clone(),
            stack: w.stack.clone(),
            fd_from_syscall: w.fd == Some(wf.fd),
            readers,
            writer_holds_read_end: own,
            writer_wchar_per_s: rates
                .iter()
                .find(|r| r.pid == p.pid)
                .and_then(|r| r.wchar_per_s),
        });
    }
    out
}

fn readers_of(s: &Snapshot, writer: &Process, ino: u64, wf: &OpenFile) -> (Vec<PipeReader>, bool) {
    let mut v = Vec::new();
    let mut own = false;
    for q in &s.processes {
        for f in q.fds.iter().flatten() {
            if !(same_pipe(f, ino, wf) && reads(f)) {
                continue;
            }
            if q.pid == writer.pid {
                own = true;
                continue;
            }
            v.push(PipeReader {
                pid: q.pid,
                comm: q.comm.clone(),
                fd: f.fd,
                state: q.state,
                wchan: q.wchan.clone(),
                activity: activity(q.state, q.wchan.as_deref()),
            });
        }
    }
    (v, own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_fd(fd: i32, ino: u64, flags: u32) -> OpenFile {
        OpenFile {
            mnt_id: Some(16),
            ..OpenFile::test_pipe(fd, ino, flags)
        }
    }

    fn snap(writer_state: char, reader_state: char, queued: u64) -> Snapshot {
        let w = Process {
            pid: 100,
            comm: "yes".into(),
            state: 'S',
            start_ticks: 5,
            wchan: Some("anon_pipe_write".into()),
            fds: Some(vec![pipe_fd(1, 59125, 0o1)]),
            ..Default::default()
        };
        let _ = writer_state;
        let r = Process {
            pid: 101,
            comm: "sleep".into(),
            state: reader_state,
            wchan: Some("do_signal_stop".into()),
            fds: Some(vec![pipe_fd(0, 59125, 0o0), pipe_fd(1, 777, 0o1)]),
            ..Default::default()
        };
        Snapshot {
            processes: vec![w, r],
            pipe_waits: vec![PipeWait {
                pid: 100,
                tid: 100,
                wchan: Some("anon_pipe_write".into()),
                stack: Some(vec!["anon_pipe_write".into(), "vfs_write".into()]),
                fd: Some(1),
                pipes: vec![PipeFill {
                    fd: 1,
                    ino: Some(59125),
                    queued_bytes: Some(queued),
                    capacity_bytes: Some(65536),
                }],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn writer_blocked_on_a_stopped_reader() {
        let b = snap('S', 'T', 65536);
        let a = snap('S', 'T', 65536);
        let v = blocked(&b, &a, &[]);
        assert_eq!(v.len(), 1);
        let x = &v[0];
        assert_eq!((x.pid, x.fd, x.ino), (100, 1, Some(59125)));
        assert!(x.blocked_whole_window && x.fd_from_syscall && x.stalled());
        assert_eq!(x.fill_pct(), Some(100.0));
        assert_eq!(x.readers.len(), 1);
        assert_eq!((x.readers[0].pid, x.readers[0].activity), (101, "stopped"));
        assert!(!x.writer_holds_read_end);
        // Seen once only: not the whole window.
        let v = blocked(&Snapshot::default(), &a, &[]);
        assert!(!v[0].blocked_whole_window && !v[0].stalled());
    }

    #[test]
    fn reader_activities() {
        assert_eq!(activity('S', Some("do_nanosleep")), "not_reading");
        assert_eq!(activity('S', Some("anon_pipe_read")), "reading");
        assert_eq!(activity('D', Some("folio_wait_bit")), "disk_wait");
        assert_eq!(activity('t', None), "traced");
        let b = snap('S', 'S', 100);
        let mut a = snap('S', 'S', 65536);
        a.processes[1].fds = Some(vec![]);
        a.processes[0]
            .fds
            .as_mut()
            .unwrap()
            .push(pipe_fd(7, 59125, 0o0));
        let v = blocked(&b, &a, &[]);
        assert!(v[0].readers.is_empty());
        assert!(v[0].writer_holds_read_end);
        assert!(!v[0].stalled(), "the pipe moved: 100 -> 65536 bytes");
    }
}
