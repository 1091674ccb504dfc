//! The perf layer's events, decoded from the raw tracepoint records as they are read from
//! the rings (the pairing is `pair`).

use std::collections::HashMap;

use perf_event_open_sys as sys;

use crate::parse::fdinfo::{O_ACCMODE, O_CREAT, O_TRUNC, O_WRONLY};
use crate::parse::tracefs::{self, Field, Format};

use crate::trace::model::{SyncKind, TraceData, WriteKind};
use crate::trace::usermem::{self, ReadErr};
use crate::trace::{AT_FDCWD, Name, Resolver};

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
    rec: crate::trace::ring::Record<'_>,
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
