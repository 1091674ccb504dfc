//! The perf layer's events paired: sys_enter with its sys_exit, per thread, in time
//! order; opens as soon as they are read, so an fd is named while it is open.

use std::collections::{HashMap, HashSet};

use crate::trace::{Name, Resolver};

use super::decode::{Ev, OpenRes, Tp};

/// Bound on opens in progress (threads between sys_enter and sys_exit of an open).
const MAX_OPENS_IN_FLIGHT: usize = 65_536;

/// Pairs the enter and exit of opens as soon as they are read, so the fd is named while
/// it is open: the exit carries the result to the time-ordered pairing.
#[derive(Default)]
pub struct FastOpens {
    /// Enters waiting for their exit, with when their path was read from memory.
    pending: HashMap<u32, (Ev, u64)>,
}

impl FastOpens {
    /// An enter is held until its exit comes; an exit comes out named. `None`: nothing to
    /// queue (yet).
    pub fn take(&mut self, e: Ev, res: &Resolver, now_ns: impl Fn() -> u64) -> Option<Ev> {
        match e.tp {
            Tp::EnterOpen(_) => {
                if self.pending.len() >= MAX_OPENS_IN_FLIGHT {
                    // Exits lost: start again rather than grow.
                    self.pending.clear();
                }
                // The enter was decoded (its path read) just now. A bare copy goes on to
                // the time-ordered buffer, where it tells later opens' names apart (see
                // `CloseIndex::opened_between`).
                let at = now_ns();
                let bare = Ev {
                    ts: e.ts,
                    pid: e.pid,
                    tid: e.tid,
                    tp: e.tp,
                    arg: e.arg,
                    flags: None,
                    text: None,
                    open: None,
                };
                self.pending.insert(e.tid, (e, at));
                Some(bare)
            }
            Tp::ExitOpen => {
                let enter = self.pending.remove(&e.tid);
                if e.arg < 0 {
                    return None;
                }
                let mut e = e;
                if let Some((enter, mem_read_at)) = enter {
                    let proc_name = res.name_from_proc(e.pid, e.arg as i32);
                    e.open = Some(Box::new(OpenRes {
                        proc_name,
                        read_at: now_ns(),
                        mem_path: enter.text.map(String::from),
                        mem_read_at,
                        flags: enter.flags,
                    }));
                }
                Some(e)
            }
            _ => Some(e),
        }
    }

    /// Is an open waiting for its exit (read again soon)?
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }
}

struct Pending {
    tp: Tp,
    fd: i32,
    ts: u64,
}

/// Pairs sys_enter with sys_exit per thread, in time order, and feeds the resolver.
#[derive(Default)]
pub struct Pairer {
    pending: HashMap<u32, Pending>,
    /// Threads seen entering a traced call: an exit of theirs without an entry is a loss,
    /// where the first exit of a thread may be a call that was in flight at the start.
    seen: HashSet<u32>,
    pub unpaired: u64,
}

/// When fds were closed and processes ended, over the events buffered this round: a
/// name read from /proc after the fd was closed may be another file's.
#[derive(Default)]
pub struct CloseIndex {
    closed: HashMap<(u32, i32), Vec<u64>>,
    exited: HashMap<u32, u64>,
    /// When each thread entered an open.
    opens: HashMap<u32, Vec<u64>>,
}

impl CloseIndex {
    pub fn of<'a>(evs: impl Iterator<Item = &'a Ev>) -> CloseIndex {
        let mut l = CloseIndex::default();
        for e in evs {
            match e.tp {
                Tp::EnterClose => l
                    .closed
                    .entry((e.pid, e.arg as i32))
                    .or_default()
                    .push(e.ts),
                Tp::Exit if e.flags == Some(1) => {
                    l.exited.entry(e.pid).or_insert(e.ts);
                }
                Tp::EnterOpen(_) => l.opens.entry(e.tid).or_default().push(e.ts),
                _ => {}
            }
        }
        l
    }

    /// Did thread `tid` enter another open between `from` and `to` (ns)? A path read
    /// from its memory after that may be the next open's: programs reuse the buffer.
    pub fn opened_between(&self, tid: u32, from: u64, to: u64) -> bool {
        self.opens
            .get(&tid)
            .is_some_and(|v| v.iter().any(|t| *t > from && *t < to))
    }

    /// Was (pid, fd) closed, or the process gone, between `from` and `to` (ns)?
    pub fn closed_between(&self, pid: u32, fd: i32, from: u64, to: u64) -> bool {
        let inside = |t: u64| t > from && t < to;
        self.closed
            .get(&(pid, fd))
            .is_some_and(|v| v.iter().any(|t| inside(*t)))
            || self.exited.get(&pid).is_some_and(|t| inside(*t))
    }
}

impl Pairer {
    fn enter(&mut self, e: &Ev) {
        self.seen.insert(e.tid);
        let old = self.pending.insert(
            e.tid,
            Pending {
                tp: e.tp,
                fd: e.arg as i32,
                ts: e.ts,
            },
        );
        if old.is_some() {
            // The exit of the previous call never came.
            self.unpaired += 1;
        }
    }

    fn take(
        &mut self,
        tid: u32,
        want: impl Fn(Tp) -> bool,
        count_missing: bool,
    ) -> Option<Pending> {
        match self.pending.remove(&tid) {
            Some(p) if want(p.tp) => Some(p),
            Some(_) => {
                self.unpaired += 1;
                None
            }
            None => {
                if count_missing && self.seen.contains(&tid) {
                    self.unpaired += 1;
                }
                None
            }
        }
    }

    /// Handle one event, in time order. `closes`: when the fds of the events buffered were
    /// closed (needed only for opens named from /proc).
    pub fn handle(&mut self, e: Ev, res: &mut Resolver, closes: &CloseIndex) {
        match e.tp {
            Tp::EnterWrite(_) | Tp::EnterSync(_) | Tp::EnterDup => self.enter(&e),
            // Paired as soon as read (FastOpens): only the exit comes here.
            Tp::EnterOpen(_) => {}
            Tp::ExitWrite(k) => {
                if let Some(p) = self.take(e.tid, |t| t == Tp::EnterWrite(k), true) {
                    if e.arg >= 0 {
                        res.write(e.pid, p.fd, k, e.arg as u64, e.ts.saturating_sub(p.ts));
                    }
                }
            }
            Tp::ExitSync(k) => {
                if let Some(p) = self.take(e.tid, |t| t == Tp::EnterSync(k), true) {
                    let fd = if k.has_fd() { p.fd } else { -1 };
                    res.sync(e.pid, fd, k, e.ts.saturating_sub(p.ts));
                }
            }
            Tp::ExitOpen => {
                if e.arg < 0 {
                    return;
                }
                let fd = e.arg as i32;
                // No entry: a read-only open (left out in the kernel). Either way the fd
                // holds something new: forget what it held.
                // A traced open whose name cannot be trusted stays unresolved for the
                // fd's life: looking it up in /proc when the fd is used would name whatever
                // holds that number by then.
                let name = e.open.map(|o| {
                    let flags = o.flags;
                    open_name(*o, (e.pid, e.tid), fd, e.ts, closes).unwrap_or(Name {
                        path: crate::trace::UNRESOLVED.into(),
                        flags,
                    })
                });
                res.opened(e.pid, fd, name);
            }
            Tp::ExitDup => {
                if let Some(p) = self.take(e.tid, |t| t == Tp::EnterDup, true) {
                    if e.arg >= 0 && e.arg as i32 != p.fd {
                        res.duplicated(e.pid, p.fd, e.arg as i32);
                    }
                }
            }
            Tp::EnterClose => res.closed(e.pid, e.arg as i32),
            Tp::Exec => res.exec(e.arg as u32, e.text.map(String::from)),
            Tp::Exit => {
                let task = e.arg as u32;
                self.pending.remove(&task);
                self.seen.remove(&task);
                if task == e.pid {
                    if let Some(c) = e.text {
                        res.comm(e.pid, c.into());
                    }
                }
                if e.flags == Some(1) {
                    res.exited(e.pid);
                }
            }
        }
    }
}

/// The name of a traced open: /proc's, unless the fd was closed before it was read; else
/// the path read from the process's memory, unless that is doubtful too; else `None`.
fn open_name(
    o: OpenRes,
    (pid, tid): (u32, u32),
    fd: i32,
    ts: u64,
    closes: &CloseIndex,
) -> Option<Name> {
    let proc_ok = o.proc_name.is_some() && !closes.closed_between(pid, fd, ts, o.read_at);
    // A path read from memory is doubtful once the thread has entered another open (the
    // buffer may hold the next path: open a, close, open b, and the read says b), or when
    // it was read after the fd was closed and /proc (read as late) shows the same path
    // on that fd. Otherwise (a different name on /proc, or none: closed, the process
    // gone) the buffer's path is the best witness.
    let late = closes.closed_between(pid, fd, ts, o.mem_read_at);
    let mem_ok = !closes.opened_between(tid, ts, o.mem_read_at)
        && (!late || o.proc_name.as_ref().map(|n| n.path.as_str()) != o.mem_path.as_deref());
    match (proc_ok, o.proc_name, mem_ok, o.mem_path) {
        (true, Some(mut n), _, _) => {
            n.flags = o.flags.or(n.flags);
            Some(n)
        }
        (_, _, true, Some(path)) => Some(Name {
            path,
            flags: o.flags,
        }),
        _ => None,
    }
}

#[cfg(test)]
#[path = "pair_tests.rs"]
mod tests;
