//! Find tasks blocked writing into a full pipe, and measure the pipe.
//!
//! A writer blocked on a full pipe sleeps in the kernel's pipe-write path: its wchan
//! reads `pipe_write` from 5.6 on, `anon_pipe_write` on recent 6.x (also for FIFOs, through
//! `fifo_pipe_write`), and `pipe_wait` before 5.6, where readers sleep too: there the
//! stack or the system call must say it is a write. Only processes that hold a pipe or FIFO open for writing
//! are looked at, and for multi-threaded ones each thread's wchan (the main thread of a
//! Go program is rarely the one writing). For each blocked task, `syscall` says which fd
//! it writes to and `stack` confirms the path (both root only), and FIONREAD /
//! F_GETPIPE_SZ through `/proc/PID/fd/N` say how full the pipe is.

use std::fmt::Write as _;

use crate::parse::fdinfo;
use crate::parse::fdlink::FdKind;
use crate::parse::stack;
use crate::snapshot::{OpenFile, PipeFill, PipeWait, Process};

use super::reader::Reader;

/// At most this many threads of one process are looked at.
const MAX_THREADS: usize = 256;

fn is_pipe(f: &OpenFile) -> bool {
    f.kind == FdKind::Pipe || f.stat.is_some_and(|s| s.is_fifo())
}

/// Writable pipe or FIFO fds of a process.
fn writable_pipes(p: &Process) -> Vec<&OpenFile> {
    p.fds
        .iter()
        .flatten()
        .filter(|f| is_pipe(f) && f.flags.is_some_and(fdinfo::is_writable))
        .collect()
}

pub fn scan(r: &mut Reader, processes: &[Process]) -> Vec<PipeWait> {
    let mut out = Vec::new();
    for p in processes.iter().filter(|p| !p.kthread) {
        let pipes = writable_pipes(p);
        if pipes.is_empty() {
            continue;
        }
        let Ok(pd) = r.open_dir(&r.roots.pid_dir(p.pid)) else {
            continue;
        };
        // (tid, wchan) of every task in a pipe-write wait, or in the `pipe_wait` of
        // kernels before 5.6, which may be a read (sorted out below).
        let candidate = |w: &str| stack::is_pipe_write_wait(w) || w == stack::PIPE_WAIT_EITHER;
        let mut waiting: Vec<(u32, String)> = Vec::new();
        if let Some(w) = p.wchan.as_deref().filter(|w| candidate(w)) {
            waiting.push((p.pid, w.to_string()));
        }
        if p.num_threads > 1 {
            let mut tids = Vec::new();
            if let Ok(td) = r.open_dir_at(&pd, "task") {
                let _ = r.for_each_entry(&td, |n| {
                    if let Ok(t) = n.to_string_lossy().parse::<u32>() {
                        tids.push(t);
                    }
                });
            }
            tids.sort_unstable();
            let mut rel = String::new();
            for tid in tids.into_iter().filter(|t| *t != p.pid).take(MAX_THREADS) {
                rel.clear();
                let _ = write!(rel, "task/{tid}/wchan");
                if let Ok(w) = r.read_at(&pd, &rel) {
                    let w = w.trim();
                    if candidate(w) {
                        waiting.push((tid, w.to_string()));
                    }
                }
            }
        }
        for (tid, wchan) in waiting {
            let st = r
                .read_at(&pd, &format!("task/{tid}/stack"))
                .ok()
                .map(|t| stack::parse_stack(&t));
            let call = r
                .read_at(&pd, &format!("task/{tid}/syscall"))
                .ok()
                .and_then(|t| stack::parse_syscall(&t).ok().flatten());
            if wchan == stack::PIPE_WAIT_EITHER
                && !stack::pipe_wait_is_write(st.as_deref(), call.as_ref(), |n| {
                    pipes.iter().any(|f| f.fd == n)
                })
            {
                continue;
            }
            let fd = call.as_ref().and_then(stack::write_fd);
            let which: Vec<&OpenFile> = match fd.and_then(|n| pipes.iter().find(|f| f.fd == n)) {
                Some(f) => vec![*f],
                None => pipes.clone(),
            };
            let fills = which
                .into_iter()
                .map(|f| {
                    r.pipe_fill(p.pid, f.fd).unwrap_or(PipeFill {
                        fd: f.fd,
                        ino: f.stat.map(|s| s.ino),
                        queued_bytes: None,
                        capacity_bytes: None,
                    })
                })
                .collect();
            out.push(PipeWait {
                pid: p.pid,
                tid,
                wchan: Some(wchan),
                stack: st,
                fd,
                pipes: fills,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_fd(fd: i32, ino: u64, flags: u32) -> OpenFile {
        OpenFile::test_pipe(fd, ino, flags)
    }

    fn task(dir: &std::path::Path, pid: u32, stack: Option<&str>, syscall: &str) {
        let t = dir.join(format!("proc/{pid}/task/{pid}"));
        std::fs::create_dir_all(&t).unwrap();
        if let Some(s) = stack {
            std::fs::write(t.join("stack"), s).unwrap();
        }
        std::fs::write(t.join("syscall"), syscall).unwrap();
    }

    #[test]
    fn pipe_wait_writers_are_kept_and_readers_dropped() {
        // A 4.19-style time point: wchan `pipe_wait` for a writer (`yes | ...`) and for
        // a shell that holds a write end but sleeps reading another pipe.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("meta.json"),
            r#"{"wall_unix_ms":0,"clk_tck":100,"euid":0,"self_pid":null,"statvfs":{},"fd_stat":{},"denied":[]}"#,
        )
        .unwrap();
        let writer_stack = "[<0>] pipe_wait+0x6e/0xa0\n[<0>] pipe_write+0x1f6/0x430\n[<0>] __vfs_write+0x3a/0x190\n[<0>] vfs_write+0xab/0x190\n[<0>] ksys_write+0x5a/0xd0\n";
        let reader_stack = "[<0>] pipe_wait+0x6e/0xa0\n[<0>] pipe_read+0x21f/0x2c0\n[<0>] new_sync_read+0x10d/0x180\n[<0>] vfs_read+0x8e/0x130\n[<0>] ksys_read+0x5a/0xd0\n";
        let write1 = format!(
            "{} 0x1 0x55d0c1a2b000 0x2000 0x0 0x0 0x0 0x7ffd 0x7f3b\n",
            libc::SYS_write
        );
        let read0 = format!(
            "{} 0x0 0x55d0c1a2b000 0x2000 0x0 0x0 0x0 0x7ffd 0x7f3b\n",
            libc::SYS_read
        );
        task(dir.path(), 10, Some(writer_stack), &write1);
        task(dir.path(), 11, Some(reader_stack), &read0);
        // Stack unreadable: the syscall decides.
        task(dir.path(), 12, None, &write1);
        task(dir.path(), 13, None, &read0);
        let p = |pid: u32, fds: Vec<OpenFile>| Process {
            pid,
            comm: "t".into(),
            state: 'S',
            num_threads: 1,
            wchan: Some("pipe_wait".into()),
            fds: Some(fds),
            ..Default::default()
        };
        let procs = vec![
            p(10, vec![pipe_fd(1, 500, 0o1)]),
            p(11, vec![pipe_fd(0, 501, 0o0), pipe_fd(1, 502, 0o1)]),
            p(12, vec![pipe_fd(1, 503, 0o1)]),
            p(13, vec![pipe_fd(0, 504, 0o0), pipe_fd(1, 505, 0o1)]),
        ];
        let mut r = Reader::fixture(dir.path()).unwrap();
        let waits = scan(&mut r, &procs);
        let pids: Vec<u32> = waits.iter().map(|w| w.pid).collect();
        assert_eq!(pids, vec![10, 12], "{waits:#?}");
        assert_eq!(waits[0].fd, Some(1));
        assert_eq!(waits[0].wchan.as_deref(), Some("pipe_wait"));
        assert_eq!(waits[0].stack.as_ref().unwrap()[1], "pipe_write");
    }
}
