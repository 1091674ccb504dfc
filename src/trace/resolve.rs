//! Naming what events refer to ((pid, fd) → path and flags) and aggregating per process
//! and file, in bounded tables.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::ReadError;
use crate::roots::Roots;
use crate::source::reader::Reader;

use super::model::{FileTrace, ProcTrace, SyncKind, WriteKind};

/// What an fd points at: its path and open flags (when known).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    pub path: String,
    pub flags: Option<u32>,
}

/// What we know of a process before it has made a traced call: its name, seen at exec or
/// exit, when `/proc` may no longer have it.
#[derive(Clone, Debug, Default)]
struct ProcInfo {
    comm: Option<String>,
    exec: Option<String>,
    exited: bool,
}

/// Names what events refer to and aggregates per process and file, in bounded tables.
///
/// Two ways of naming, one per kind of layer:
/// - `current` (perf, sampling: events are aggregated as they come): (pid, fd) → what it
///   points at now, from a traced open or from `/proc/PID/fd` when first seen; forgotten
///   at close, dup onto it, exec (close-on-exec fds) and exit.
/// - `learnt` (eBPF: counts are read from the kernel at the end of the window): (pid, fd,
///   generation) → the name from the traced open, kept after close and exit because
///   short-lived files and processes are gone by then.
pub struct Resolver {
    roots: Roots,
    /// /proc reads (a `RefCell`: naming happens behind shared references while decoding).
    proc_reads: RefCell<ProcReads>,
    current: HashMap<u32, HashMap<i32, Name>>,
    current_len: usize,
    learnt: HashMap<(u32, i32, u32), Name>,
    info: HashMap<u32, ProcInfo>,
    procs: BTreeMap<u32, ProcTrace>,
    keys: usize,
    /// perf aggregates as events come: a process that exits without a traced call has
    /// nothing to report, so its entries go at exit.
    prune_on_exit: bool,
    pub dropped_keys: u64,
}

/// The reader of /proc, and the processes whose entries it was refused (a gap to
/// report, not a file that does not exist).
struct ProcReads {
    reader: Reader,
    denied: BTreeSet<u32>,
}

/// Bound on the pids kept for the report of refused reads.
const MAX_DENIED: usize = 16;

/// Bound on (process, file) entries: beyond it, new files are counted as dropped.
const MAX_KEYS: usize = 20_000;
/// Bound on remembered fd names (each a path of up to a few hundred bytes): the size of
/// the eBPF program's fd table (`fdgen`), so it never holds names for more fds than that.
const MAX_NAMES: usize = 65_536;
/// Bound on processes remembered without a traced call yet (exec and exit seen).
const MAX_INFO: usize = 20_000;
pub const UNRESOLVED: &str = "(closed before its path could be read)";
pub const NO_FD: &str = "(no fd: sync or msync)";
/// `AT_FDCWD` from the kernel's fcntl.h: "relative to the working directory".
pub const AT_FDCWD: i32 = -100;

/// `base/rel` without `.` and with `..` folded lexically: the kernel's /proc links give
/// canonical paths, and a name learnt from an open must compare equal to them. (`..`
/// after a symlink would be resolved differently by the kernel; rare in log paths.)
fn join_clean(base: &std::path::Path, rel: &str) -> String {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c.as_os_str()),
        }
    }
    out.to_string_lossy().into_owned()
}

impl Resolver {
    pub fn new(roots: Roots) -> Self {
        Resolver {
            proc_reads: RefCell::new(ProcReads {
                reader: Reader::live(roots.clone()),
                denied: BTreeSet::new(),
            }),
            roots,
            current: HashMap::new(),
            current_len: 0,
            learnt: HashMap::new(),
            info: HashMap::new(),
            procs: BTreeMap::new(),
            keys: 0,
            prune_on_exit: false,
            dropped_keys: 0,
        }
    }

    /// For layers that aggregate as events come (perf).
    pub fn pruning_on_exit(mut self) -> Self {
        self.prune_on_exit = true;
        self
    }

    /// Read something of `pid` under /proc: `None` when it is gone or refused; a refusal
    /// is kept for the report (see [`Resolver::finish_into`]).
    fn proc_read<T>(
        &self,
        pid: u32,
        f: impl FnOnce(&mut Reader, &Roots) -> Result<T, ReadError>,
    ) -> Option<T> {
        let mut p = self.proc_reads.borrow_mut();
        match f(&mut p.reader, &self.roots) {
            Ok(v) => Some(v),
            Err(e) => {
                if e.is_permission() && p.denied.len() < MAX_DENIED {
                    p.denied.insert(pid);
                }
                None
            }
        }
    }

    /// The processes whose /proc entries could not be read (permission denied).
    pub fn denied(&self) -> Vec<u32> {
        self.proc_reads.borrow().denied.iter().copied().collect()
    }

    /// What `/proc/PID/fd/FD` points at now, with the flags from fdinfo.
    pub fn name_from_proc(&self, pid: u32, fd: i32) -> Option<Name> {
        let path = self.proc_read(pid, |r, roots| r.readlink(&roots.fd_link(pid, fd)))?;
        let flags = self
            .proc_read(pid, |r, roots| {
                let p = roots.pid_dir(pid).join(format!("fdinfo/{fd}"));
                let text = r.read_path(&p)?;
                crate::parse::fdinfo::parse(&text).map_err(|e| ReadError::parse(&p, e))
            })
            .map(|i| i.flags);
        Some(Name { path, flags })
    }

    /// Make the path of an open absolute while the process is alive: relative to its
    /// working directory for `AT_FDCWD`, else to the directory `dfd` points at. `tid` is
    /// the thread that opened (threads may have their own cwd). `None` when the base
    /// cannot be read: a relative path on its own would name the wrong file.
    pub fn absolute(&self, pid: u32, tid: u32, dfd: i32, path: &str) -> Option<String> {
        if path.starts_with('/') {
            return Some(join_clean(std::path::Path::new("/"), path));
        }
        let base = if dfd == AT_FDCWD {
            self.proc_read(pid, |r, roots| r.readlink(&roots.pid_dir(tid).join("cwd")))?
        } else {
            match self.current.get(&pid).and_then(|m| m.get(&dfd)) {
                Some(n) => n.path.clone(),
                None => self.proc_read(pid, |r, roots| r.readlink(&roots.fd_link(pid, dfd)))?,
            }
        };
        let base = std::path::PathBuf::from(base);
        if !base.is_absolute() {
            return None;
        }
        Some(join_clean(&base, path))
    }

    /// perf: `fd` now points at `name` (a traced open), or at something unknown (`None`:
    /// resolved through /proc when first used).
    pub fn opened(&mut self, pid: u32, fd: i32, name: Option<Name>) {
        self.closed(pid, fd);
        if let Some(n) = name {
            self.set_current(pid, fd, n);
        }
    }

    fn set_current(&mut self, pid: u32, fd: i32, n: Name) {
        let full = self.current_len >= MAX_NAMES;
        match self.current.entry(pid).or_default().entry(fd) {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                o.insert(n);
            }
            // The fd is named through /proc when used instead (late, maybe gone).
            std::collections::hash_map::Entry::Vacant(_) if full => self.dropped_keys += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(n);
                self.current_len += 1;
            }
        }
    }

    /// eBPF: the name of (pid, fd, generation), from a traced open.
    pub fn learn(&mut self, pid: u32, fd: i32, gen_: u32, n: Name) {
        if self.learnt.len() >= MAX_NAMES && !self.learnt.contains_key(&(pid, fd, gen_)) {
            self.dropped_keys += 1;
            return;
        }
        self.learnt.insert((pid, fd, gen_), n);
    }

    /// eBPF: the generation ended with no call counted under it: its name is not needed.
    pub fn forget(&mut self, pid: u32, fd: i32, gen_: u32) {
        self.learnt.remove(&(pid, fd, gen_));
    }

    pub fn learnt(&self, pid: u32, fd: i32, gen_: u32) -> Option<&Name> {
        self.learnt.get(&(pid, fd, gen_))
    }

    /// eBPF: `newfd` (generation `new_gen`) points at what `oldfd` did (dup, dup2, dup3).
    pub fn dup_learnt(&mut self, pid: u32, oldfd: i32, old_gen: u32, newfd: i32, new_gen: u32) {
        if let Some(n) = self.learnt.get(&(pid, oldfd, old_gen)).cloned() {
            self.learn(pid, newfd, new_gen, n);
        }
    }

    /// perf: `newfd` now points at what `oldfd` does (dup, dup2, dup3).
    pub fn duplicated(&mut self, pid: u32, oldfd: i32, newfd: i32) {
        let n = self.current.get(&pid).and_then(|m| m.get(&oldfd)).cloned();
        self.opened(pid, newfd, n);
    }

    pub fn closed(&mut self, pid: u32, fd: i32) {
        if let Some(m) = self.current.get_mut(&pid) {
            if m.remove(&fd).is_some() {
                self.current_len -= 1;
            }
        }
    }

    /// An entry for a process with a traced call. `None` when the table is full.
    fn proc_entry(&mut self, pid: u32) -> Option<&mut ProcTrace> {
        if !self.procs.contains_key(&pid) {
            if self.keys >= MAX_KEYS {
                return None;
            }
            let info = self.info.remove(&pid).unwrap_or_default();
            let comm = info.comm.clone().unwrap_or_else(|| {
                self.proc_read(pid, |r, roots| {
                    r.read_path(&roots.pid_dir(pid).join("comm"))
                        .map(|c| c.trim().to_string())
                })
                .unwrap_or_else(|| "?".into())
            });
            self.procs.insert(
                pid,
                ProcTrace {
                    pid,
                    comm,
                    exec_in_window: info.exec,
                    exited_in_window: info.exited,
                    ..Default::default()
                },
            );
        }
        self.procs.get_mut(&pid)
    }

    /// The entry of a process (sampling: every target gets one, even without a call).
    pub fn process(&mut self, pid: u32) -> Option<&mut ProcTrace> {
        self.proc_entry(pid)
    }

    /// The file `fd` of `pid` points at now (perf, sampling): the name learnt from its
    /// open, else /proc's.
    pub fn file(&mut self, pid: u32, fd: i32) -> Option<&mut FileTrace> {
        if fd < 0 {
            return self.file_named(
                pid,
                fd,
                Some(Name {
                    path: NO_FD.into(),
                    flags: None,
                }),
            );
        }
        let known = self.current.get(&pid).and_then(|m| m.get(&fd)).cloned();
        let name = match known {
            Some(n) => Some(n),
            None => {
                let n = self.name_from_proc(pid, fd);
                if let Some(n) = &n {
                    self.set_current(pid, fd, n.clone());
                }
                n
            }
        };
        self.file_named(pid, fd, name)
    }

    /// The entry of (pid, fd) under `name`; `None` for the name means the path could not
    /// be read (reported as such, never guessed).
    pub fn file_named(&mut self, pid: u32, fd: i32, name: Option<Name>) -> Option<&mut FileTrace> {
        let (path, flags) = match name {
            Some(n) => (n.path, n.flags),
            None => (UNRESOLVED.to_string(), None),
        };
        let key = (fd, path);
        let exists = self
            .procs
            .get(&pid)
            .is_some_and(|p| p.files.contains_key(&key));
        if !exists {
            if self.keys >= MAX_KEYS {
                self.dropped_keys += 1;
                return None;
            }
            let Some(p) = self.proc_entry(pid) else {
                self.dropped_keys += 1;
                return None;
            };
            p.files.insert(
                key.clone(),
                FileTrace {
                    fd,
                    path: (key.1 != UNRESOLVED).then(|| key.1.clone()),
                    flags,
                    ..Default::default()
                },
            );
            self.keys += 1;
        }
        self.procs.get_mut(&pid).and_then(|p| p.files.get_mut(&key))
    }

    pub fn write(&mut self, pid: u32, fd: i32, k: WriteKind, bytes: u64, ns: u64) {
        if let Some(f) = self.file(pid, fd) {
            f.record_write(k, bytes, ns);
        }
    }

    pub fn sync(&mut self, pid: u32, fd: i32, k: SyncKind, ns: u64) {
        if let Some(f) = self.file(pid, fd) {
            f.syncs.entry(k).or_default().record(ns);
        }
    }

    /// Remember something about a process that may have no traced call yet.
    fn with_info(&mut self, pid: u32, f: impl FnOnce(&mut ProcInfo)) {
        if !self.info.contains_key(&pid) && self.info.len() >= MAX_INFO {
            // Only names are lost: comm is read from /proc if the process shows up.
            return;
        }
        f(self.info.entry(pid).or_default());
    }

    /// The process's name as the kernel gave it in an event (exec, exit, open).
    pub fn comm(&mut self, pid: u32, comm: String) {
        if comm.is_empty() {
            return;
        }
        match self.procs.get_mut(&pid) {
            Some(p) => p.comm = comm,
            None => self.with_info(pid, |i| i.comm = Some(comm)),
        }
    }

    pub fn exec(&mut self, pid: u32, name: Option<String>) {
        // Close-on-exec fds are gone; the others keep their file. Names whose flags are
        // unknown are dropped too: /proc says again when they are used.
        if let Some(m) = self.current.get_mut(&pid) {
            let before = m.len();
            m.retain(|_, n| {
                n.flags
                    .is_some_and(|f| f & crate::parse::fdinfo::O_CLOEXEC == 0)
            });
            self.current_len -= before - m.len();
        }
        let comm = name.as_ref().map(|n| {
            n.rsplit('/')
                .next()
                .unwrap_or(n)
                .chars()
                .take(15)
                .collect::<String>()
        });
        match self.procs.get_mut(&pid) {
            Some(p) => {
                if let Some(c) = comm {
                    p.comm = c;
                }
                p.exec_in_window = name;
            }
            None => self.with_info(pid, |i| {
                if comm.is_some() {
                    i.comm = comm;
                }
                i.exec = name;
            }),
        }
    }

    pub fn exited(&mut self, pid: u32) {
        if let Some(m) = self.current.remove(&pid) {
            self.current_len -= m.len();
        }
        match self.procs.get_mut(&pid) {
            Some(p) => p.exited_in_window = true,
            None if self.prune_on_exit => {
                self.info.remove(&pid);
            }
            None => self.with_info(pid, |i| i.exited = true),
        }
    }

    #[cfg(test)]
    /// Sizes of the tables, for tests of the bounds.
    fn table_sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.current_len,
            self.learnt.len(),
            self.info.len(),
            self.procs.len(),
        )
    }

    pub fn into_procs(self) -> BTreeMap<u32, ProcTrace> {
        self.procs
    }

    /// End of a window: hand the tables to `data`, with what could not be seen (full
    /// tables, /proc entries refused) for the report.
    pub fn finish_into(self, data: &mut super::TraceData) {
        let denied = self.denied();
        if !denied.is_empty() {
            let pids: Vec<String> = denied.iter().map(|p| p.to_string()).collect();
            data.note(
                format!(
                    "the /proc entries (fd links, fdinfo, cwd, comm) of pids {} could not be read (permission denied): their files are unresolved and their names may be '?'",
                    pids.join(", ")
                ),
                "run as root (or with CAP_SYS_PTRACE)",
            );
        }
        data.dropped_keys += self.dropped_keys;
        data.procs = self.into_procs();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn paths_are_joined_and_cleaned() {
        let b = std::path::Path::new("/srv/app");
        assert_eq!(join_clean(b, "log/./out.log"), "/srv/app/log/out.log");
        assert_eq!(join_clean(b, "../other/x"), "/srv/other/x");
        assert_eq!(join_clean(b, "/abs/y"), "/abs/y");
    }

    #[test]
    fn relative_opens_use_the_dirfd_or_the_cwd() {
        // This process: a real directory fd and the real cwd, read through /proc.
        let dir = tempfile::tempdir().unwrap();
        let d = std::fs::File::open(dir.path()).unwrap();
        let me = std::process::id();
        let res = Resolver::new(Roots::default());
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            res.absolute(me, me, d.as_raw_fd(), "app/out.log"),
            Some(format!("{}/app/out.log", real.display()))
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            res.absolute(me, me, AT_FDCWD, "x.log"),
            Some(format!("{}/x.log", cwd.display()))
        );
        // A dirfd that is not open: no base, no guess.
        assert_eq!(res.absolute(me, me, 987_654, "x.log"), None);
        assert_eq!(
            res.absolute(me, me, 987_654, "/abs/x.log").as_deref(),
            Some("/abs/x.log")
        );
    }

    #[test]
    fn a_refused_proc_read_is_a_gap_in_the_report_not_a_missing_file() {
        let res = Resolver::new(Roots::default());
        let refused = |_: &mut Reader, _: &Roots| -> Result<String, ReadError> {
            Err(ReadError::PermissionDenied {
                path: "/proc/42/fd/3".into(),
            })
        };
        let gone = |_: &mut Reader, _: &Roots| -> Result<String, ReadError> {
            Err(ReadError::NotFound {
                path: "/proc/43/fd/3".into(),
            })
        };
        assert_eq!(res.proc_read(42, refused), None);
        assert_eq!(res.proc_read(43, gone), None);
        assert_eq!(res.denied(), vec![42], "a process gone is no gap");
        let mut d = crate::trace::TraceData::new(crate::trace::Layer::Perf);
        res.finish_into(&mut d);
        assert_eq!(d.notes.len(), 1);
        assert!(
            d.notes[0]
                .what
                .contains("pids 42 could not be read (permission denied)"),
            "{:?}",
            d.notes
        );
        // Our own fds, read through the reader: named as before.
        let f = tempfile::NamedTempFile::new().unwrap();
        let res = Resolver::new(Roots::default());
        let n = res
            .name_from_proc(std::process::id(), f.as_file().as_raw_fd())
            .unwrap();
        assert_eq!(
            std::path::Path::new(&n.path),
            std::fs::canonicalize(f.path()).unwrap()
        );
        assert!(n.flags.is_some());
        assert!(res.denied().is_empty());
    }

    #[test]
    fn tables_stay_bounded() {
        let mut res = Resolver::new(Roots::default()).pruning_on_exit();
        let n = |p: &str, f| Name {
            path: p.into(),
            flags: Some(f),
        };
        // Names go at close, at exit, and at exec for close-on-exec fds.
        res.opened(10, 3, Some(n("/a", 0o1)));
        res.opened(10, 4, Some(n("/b", 0o1 | crate::parse::fdinfo::O_CLOEXEC)));
        res.opened(11, 3, Some(n("/c", 0o1)));
        assert_eq!(res.table_sizes().0, 3);
        res.exec(10, Some("/usr/bin/x".into()));
        assert_eq!(res.table_sizes().0, 2);
        res.closed(10, 3);
        res.exited(11);
        assert_eq!(res.table_sizes().0, 0);
        // perf: a process that exits without a traced call leaves nothing behind.
        assert_eq!(res.table_sizes().2, 1, "exec info of pid 10");
        res.exited(10);
        assert_eq!(res.table_sizes(), (0, 0, 0, 0));
        // eBPF names: capped, with the overflow counted.
        let mut res = Resolver::new(Roots::default());
        for i in 0..MAX_NAMES as u32 + 5 {
            res.learn(i, 3, 1, n("/x", 1));
        }
        assert_eq!(res.table_sizes().1, MAX_NAMES);
        assert_eq!(res.dropped_keys, 5);
        res.forget(0, 3, 1);
        assert_eq!(res.table_sizes().1, MAX_NAMES - 1);
        // Per-file entries: capped, counted.
        let mut res = Resolver::new(Roots::default());
        for i in 0..MAX_KEYS as i32 + 3 {
            res.file_named(1, i, Some(n("/f", 1)));
        }
        assert_eq!(res.dropped_keys, 3);
        assert_eq!(res.into_procs()[&1].files.len(), MAX_KEYS);
    }
}
