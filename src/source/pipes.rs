//! Find tasks blocked writing into a full pipe, and measure the pipe.
//!
//! A writer blocked on a full pipe sleeps in the kernel's pipe-write path: its wchan
//! reads `pipe_write` on older kernels and `anon_pipe_write` on 6.x (also for FIFOs,
//! through `fifo_pipe_write`). Only processes that hold a pipe or FIFO open for writing
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
pub fn writable_pipes(p: &Process) -> Vec<&OpenFile> {
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
        // (tid, wchan) of every task in a pipe-write wait.
        let mut waiting: Vec<(u32, String)> = Vec::new();
        if let Some(w) = p.wchan.as_deref().filter(|w| stack::is_pipe_write_wait(w)) {
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
                    if stack::is_pipe_write_wait(w) {
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
            let fd = r
                .read_at(&pd, &format!("task/{tid}/syscall"))
                .ok()
                .and_then(|t| stack::parse_syscall(&t).ok().flatten())
                .and_then(|s| stack::write_fd(&s));
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
