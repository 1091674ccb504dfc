//! The perf layer's events: decoded from the raw tracepoint records as they are read
//! from the rings, then paired (sys_enter with its sys_exit, per thread) in time order.

use std::collections::{HashMap, HashSet};

use perf_event_open_sys as sys;

use crate::parse::fdinfo::{O_ACCMODE, O_CREAT, O_TRUNC, O_WRONLY};
use crate::parse::tracefs::{self, Field, Format};

use super::model::{SyncKind, TraceData, WriteKind};
use super::usermem::{self, ReadErr};
use super::{AT_FDCWD, Name, Resolver};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenKind {
    Openat,
    Open,
    Creat,
    Openat2,
}

impl OpenKind {
    pub const ALL: [OpenKind; 4] = [
        OpenKind::Openat,
        OpenKind::Open,
        OpenKind::Creat,
        OpenKind::Openat2,
    ];
    pub fn name(self) -> &'static str {
        match self {
            OpenKind::Openat => "openat",
            OpenKind::Open => "open",
            OpenKind::Creat => "creat",
            OpenKind::Openat2 => "openat2",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tp {
    EnterWrite(WriteKind),
    ExitWrite(WriteKind),
    EnterSync(SyncKind),
    ExitSync(SyncKind),
    EnterOpen(OpenKind),
    ExitOpen,
    EnterDup,
    ExitDup,
    EnterClose,
    Exec,
    Exit,
}

impl Tp {
    /// Opens go to their own rings, read as soon as one arrives: the fd's path is read
    /// from /proc (or the process's memory) while the fd and the process still exist.
    pub fn is_fast(self) -> bool {
        matches!(self, Tp::EnterOpen(_) | Tp::ExitOpen)
    }

    /// Wake the reader on every event of this kind (opens for writing: rare, and urgent);
    /// the exits of all opens only fill the ring.
    pub fn wakes(self) -> bool {
        matches!(self, Tp::EnterOpen(_))
    }

    /// A kernel-side filter of the event's own, ANDed with the pid filter: only opens for
    /// writing (O_WRONLY or O_RDWR) where the flags are a field of the record.
    pub fn base_filter(self) -> Option<&'static str> {
        match self {
            Tp::EnterOpen(OpenKind::Openat | OpenKind::Open) => Some("(flags & 3)"),
            _ => None,
        }
    }
}

/// Every tracepoint the layer wants: (group, name, what it is). Those the kernel lacks
/// (open and creat on arm64, pwritev2 before 4.6) are skipped when opening.
pub fn tracepoints() -> Vec<(&'static str, String, Tp)> {
    let mut v = Vec::new();
    let sc = |v: &mut Vec<_>, n: &str, a: Tp, b: Tp| {
        v.push(("syscalls", format!("sys_enter_{n}"), a));
        v.push(("syscalls", format!("sys_exit_{n}"), b));
    };
    for k in WriteKind::ALL {
        sc(&mut v, k.name(), Tp::EnterWrite(k), Tp::ExitWrite(k));
    }
    for k in SyncKind::ALL {
        sc(&mut v, k.name(), Tp::EnterSync(k), Tp::ExitSync(k));
    }
    for k in OpenKind::ALL {
        sc(&mut v, k.name(), Tp::EnterOpen(k), Tp::ExitOpen);
    }
    for n in ["dup", "dup2", "dup3"] {
        sc(&mut v, n, Tp::EnterDup, Tp::ExitDup);
    }
    v.push(("syscalls", "sys_enter_close".into(), Tp::EnterClose));
    v.push(("sched", "sched_process_exec".into(), Tp::Exec));
    v.push(("sched", "sched_process_exit".into(), Tp::Exit));
    v
}

/// Where the fields of one tracepoint are in its records.
pub struct TpInfo {
    pub tp: Tp,
    /// The fd argument (`fd`; dup: `fildes`/`oldfd`).
    fd: Option<Field>,
    ret: Option<Field>,
    /// sched events: the task's pid (a tid).
    pid: Option<Field>,
    /// exec: the file run; exit: comm; opens: the path's address.
    name: Option<Field>,
    flags: Option<Field>,
    dfd: Option<Field>,
    how: Option<Field>,
    group_dead: Option<Field>,
}

impl TpInfo {
    pub fn new(tp: Tp, fmt: &Format) -> TpInfo {
        let f = |n: &str| fmt.field(n).cloned();
        TpInfo {
            tp,
            fd: f("fd").or_else(|| f("fildes")).or_else(|| f("oldfd")),
            ret: f("ret"),
            pid: f("pid"),
            name: match tp {
                Tp::Exit => f("comm"),
                _ => f("filename").or_else(|| f("pathname")),
            },
            flags: f("flags"),
            dfd: f("dfd"),
            how: f("how"),
            group_dead: f("group_dead"),
        }
    }
}

/// How an open's fd was named, right after the open: from /proc (authoritative, unless
/// the fd was closed before `read_at`) and from the process's memory (the path it passed,
/// best effort: the buffer may have been reused).
pub struct OpenRes {
    pub proc_name: Option<Name>,
    /// CLOCK_MONOTONIC ns when /proc was read (the clock of the events).
    pub read_at: u64,
    pub mem_path: Option<String>,
    /// When the path was read from the process's memory (at the enter). Once the fd has
    /// been closed the program has moved on and the buffer may hold another path (the
    /// next open's: a reused fd number then gets the wrong name), so a path read after a
    /// close is not trusted either.
    pub mem_read_at: u64,
    pub flags: Option<u32>,
}

/// One decoded event.
pub struct Ev {
    pub ts: u64,
    pub pid: u32,
    pub tid: u32,
    pub tp: Tp,
    /// fd, dfd or ret, as the event has; sched events: the task's pid.
    pub arg: i64,
    /// Opens: the flags; exit: 1 when the whole process is gone.
    pub flags: Option<u32>,
    /// Opens: the absolute path; exec: the file run; exit: comm.
    pub text: Option<Box<str>>,
    /// Open exits: how the fd was named.
    pub open: Option<Box<OpenRes>>,
}

/// What decoding counts besides events: losses, and reads of process memory refused;
/// and the reader of process memory it uses.
#[derive(Default)]
pub struct DecodeStats {
    pub mem_denied: bool,
    pub open_paths_unread: u64,
    pub mem: usermem::MemReader,
}

/// Decode one record; `None` for what is not a sample of ours (losses are counted).
pub fn decode(
    rec: super::ring::Record<'_>,
    tps: &HashMap<u16, TpInfo>,
    res: &Resolver,
    data: &mut TraceData,
    st: &mut DecodeStats,
) -> Option<Ev> {
    use sys::bindings::{PERF_RECORD_LOST, PERF_RECORD_LOST_SAMPLES, PERF_RECORD_SAMPLE};
    let b = rec.body;
    match rec.kind {
        PERF_RECORD_SAMPLE => {}
        PERF_RECORD_LOST if b.len() >= 16 => {
            data.lost_events += u64::from_ne_bytes(b[8..16].try_into().unwrap_or_default());
            return None;
        }
        PERF_RECORD_LOST_SAMPLES if b.len() >= 8 => {
            data.lost_events += u64::from_ne_bytes(b[0..8].try_into().unwrap_or_default());
            return None;
        }
        _ => return None,
    }
    // PERF_SAMPLE_TID | TIME | RAW: u32 pid, u32 tid, u64 time, u32 size, raw[size].
    if b.len() < 20 {
        return None;
    }
    let pid = u32::from_ne_bytes(b[0..4].try_into().unwrap_or_default());
    let tid = u32::from_ne_bytes(b[4..8].try_into().unwrap_or_default());
    let ts = u64::from_ne_bytes(b[8..16].try_into().unwrap_or_default());
    let size = u32::from_ne_bytes(b[16..20].try_into().unwrap_or_default()) as usize;
    let raw = b.get(20..20 + size)?;
    if raw.len() < 2 {
        return None;
    }
    let info = tps.get(&u16::from_ne_bytes([raw[0], raw[1]]))?;
    data.events += 1;
    let int = |f: &Option<Field>| f.as_ref().and_then(|f| tracefs::read_i64(raw, f));
    let mut ev = Ev {
        ts,
        pid,
        tid,
        tp: info.tp,
        arg: -1,
        flags: None,
        text: None,
        open: None,
    };
    match info.tp {
        Tp::EnterWrite(_) | Tp::EnterSync(_) | Tp::EnterDup | Tp::EnterClose => {
            ev.arg = int(&info.fd).map(|v| v as i32 as i64).unwrap_or(-1);
        }
        Tp::ExitWrite(_) | Tp::ExitSync(_) | Tp::ExitOpen | Tp::ExitDup => {
            ev.arg = int(&info.ret).unwrap_or(-1);
        }
        Tp::EnterOpen(k) => {
            let dfd = int(&info.dfd).map(|v| v as i32).unwrap_or(AT_FDCWD);
            let flags = match k {
                OpenKind::Creat => Some(O_CREAT | O_WRONLY | O_TRUNC),
                OpenKind::Openat2 => int(&info.how).and_then(|a| {
                    {
                        let r = st.mem.read_u64(tid, a as u64);
                        remember(st, r)
                    }
                    .map(|f| f as u32)
                }),
                _ => int(&info.flags).map(|v| v as u32),
            };
            // Read-only opens (openat2 is not filtered in the kernel): the exit alone says
            // the fd now holds something else.
            if flags.is_some_and(|f| f & O_ACCMODE == 0) {
                return None;
            }
            ev.arg = dfd as i64;
            ev.flags = flags;
            let path = int(&info.name)
                .and_then(|a| {
                    let r = st.mem.read_cstr(tid, a as u64);
                    remember(st, r)
                })
                // Empty: the buffer was already reused (a stack buffer, as Rust's std uses).
                .filter(|p| !p.is_empty())
                .and_then(|p| res.absolute(pid, tid, dfd, &p));
            if path.is_none() {
                st.open_paths_unread += 1;
            }
            ev.text = path.map(String::into_boxed_str);
        }
        Tp::Exec => {
            ev.arg = int(&info.pid).unwrap_or(pid as i64);
            ev.text = info
                .name
                .as_ref()
                .and_then(|f| tracefs::read_str(raw, f))
                .map(String::into_boxed_str);
        }
        Tp::Exit => {
            ev.arg = int(&info.pid).unwrap_or(tid as i64);
            let dead = match &info.group_dead {
                Some(f) => tracefs::read_u64(raw, f).is_some_and(|v| v != 0),
                None => ev.arg == pid as i64,
            };
            ev.flags = Some(dead.into());
            ev.text = info
                .name
                .as_ref()
                .and_then(|f| tracefs::read_str(raw, f))
                .map(String::into_boxed_str);
        }
    }
    Some(ev)
}

fn remember<T>(st: &mut DecodeStats, r: Result<T, ReadErr>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(ReadErr::Denied) => {
            st.mem_denied = true;
            None
        }
        // Gone, or not read because it could block us: the path stays unresolved (the
        // reader keeps the pids for the report).
        Err(ReadErr::Gone | ReadErr::Uninterruptible | ReadErr::Blocked { .. }) => None,
    }
}

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
                    let proc_name = res.from_proc(e.pid, e.arg as i32);
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
                        path: super::UNRESOLVED.into(),
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
#[path = "perfev_tests.rs"]
mod tests;
