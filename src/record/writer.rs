//! The recorder: a sampler consumer that hands each sample, as JSON, to a writer thread
//! through a bounded queue, so the sampler never waits on the disk it is diagnosing. A
//! full queue drops the sample and the next record says so (a gap). The writer runs at
//! low CPU and I/O priority, never fsyncs per sample (every `sync_every` and when a
//! segment closes), and starts a new segment at each UTC hour and at each start.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Instant;

use anyhow::{Context, Result};

use super::segment::{Encoder, FORMAT_VERSION, Header};
use super::store::{self, segment_name};
use super::{Gap, RecordOptions, SampleRef};
use crate::render::Diagnosis;
use crate::roots::Roots;
use crate::sampler::Consumer;
use crate::serve::exporter::CollectorRun;
use crate::snapshot::Snapshot;

struct Msg {
    wall_unix_ms: i64,
    uptime_cs: u64,
    /// `None`: only the gap (the last samples before the recorder stopped were dropped).
    json: Option<Vec<u8>>,
    hostname: String,
    kernel: String,
    /// Samples dropped just before this one.
    gap: Option<Gap>,
}

pub struct Recorder {
    tx: Option<SyncSender<Msg>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pending_gap: Option<Gap>,
    dir: PathBuf,
    /// When the store-on-the-busy-disk warning was last printed.
    warned: Option<Instant>,
}

/// What the writer knows of the machine, for each segment's header.
#[derive(Clone)]
struct Machine {
    boot_id: Option<String>,
    tz: Option<String>,
}

impl Recorder {
    /// Create the directory, remove what is past retention, start the writer.
    pub fn start(opts: &RecordOptions, roots: &Roots) -> Result<Recorder> {
        std::fs::create_dir_all(&opts.dir)
            .with_context(|| format!("creating the store {}", opts.dir.display()))?;
        let probe = opts.dir.join(".iowhy-write-test");
        std::fs::write(&probe, b"")
            .with_context(|| format!("the store {} is not writable", opts.dir.display()))?;
        let _ = std::fs::remove_file(&probe);
        let machine = Machine {
            boot_id: std::fs::read_to_string(roots.proc("sys/kernel/random/boot_id"))
                .ok()
                .map(|s| s.trim().to_string()),
            tz: std::env::var("TZ").ok().or_else(|| {
                std::fs::read_link("/etc/localtime").ok().map(|p| {
                    p.to_string_lossy()
                        .trim_start_matches("/usr/share/zoneinfo/")
                        .to_string()
                })
            }),
        };
        let dir = opts.dir.clone();
        store::enforce(
            &dir,
            &opts.retention,
            super::when::now_ms(),
            None,
            &mut || store::free_pct(&dir),
        )?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(opts.queue.max(1));
        let o = opts.clone();
        let thread = std::thread::Builder::new()
            .name("iowhy-recorder".into())
            .spawn(move || {
                lower_priority();
                let mut w = Writer::new(o, machine);
                w.run(rx);
            })?;
        Ok(Recorder {
            tx: Some(tx),
            thread: Some(thread),
            pending_gap: None,
            dir,
            warned: None,
        })
    }

    /// Queue one sample; never blocks.
    pub fn offer(&mut self, s: &Snapshot, trace: Option<&crate::trace::TraceData>) {
        let Some(tx) = &self.tx else { return };
        let trace = trace.map(|t| super::bounded_trace(t, super::TRACE_FILES_KEPT));
        let trace = trace.as_deref();
        let json = match serde_json::to_vec(&SampleRef { snapshot: s, trace }) {
            Ok(j) => j,
            Err(_) => return,
        };
        let msg = Msg {
            wall_unix_ms: s.wall_unix_ms,
            uptime_cs: (s.uptime_s * 100.0).round().max(0.0) as u64,
            json: Some(json),
            hostname: s.hostname.clone(),
            kernel: s.kernel.clone(),
            gap: self.pending_gap.take(),
        };
        match tx.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(m)) => {
                let mut g = m.gap.unwrap_or(Gap {
                    dropped: 0,
                    first_unix_ms: m.wall_unix_ms,
                    last_unix_ms: m.wall_unix_ms,
                    reason: "the writer fell behind (its queue was full): samples dropped".into(),
                });
                g.dropped += 1;
                g.last_unix_ms = m.wall_unix_ms;
                self.pending_gap = Some(g);
            }
            Err(TrySendError::Disconnected(_)) => self.tx = None,
        }
    }

    /// Stop: the writer writes what is queued, syncs and closes its segment.
    pub fn finish(&mut self) {
        if let (Some(tx), Some(g)) = (&self.tx, self.pending_gap.take()) {
            // Blocking is fine now: the sampler is done.
            let _ = tx.send(Msg {
                wall_unix_ms: g.last_unix_ms,
                uptime_cs: 0,
                json: None,
                hostname: String::new(),
                kernel: String::new(),
                gap: Some(g),
            });
        }
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Consumer for Recorder {
    fn first(&mut self, s: &Snapshot) {
        self.offer(s, None);
    }

    fn window(&mut self, d: &Diagnosis, _runs: &[CollectorRun]) {
        self.offer(&d.interval.after, d.interval.trace.as_ref());
        if let Some(w) = busy_store_warning(&d.interval, &self.dir) {
            if self.warned.is_none_or(|t| t.elapsed().as_secs() >= 3600) {
                self.warned = Some(Instant::now());
                eprintln!("iowhy record: warning: {w}");
            }
        }
    }
}

/// The store is on the busiest disk of the window, and that disk is busy: recording adds
/// to the load it is meant to explain.
pub fn busy_store_warning(iv: &crate::interval::Interval, dir: &Path) -> Option<String> {
    let m = iv.after.mount_by_path(&dir.to_string_lossy())?;
    let disks = iv.after.disks_behind(m.major, m.minor);
    let busiest = iv
        .whole_devices()
        .filter(|d| d.util_pct >= 60.0)
        .max_by(|a, b| {
            a.util_pct
                .partial_cmp(&b.util_pct)
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
    disks.contains(&busiest.name).then(|| {
        format!(
            "the store {} is on {}, the busiest disk ({:.0}% utilised): move it with --dir to another disk",
            dir.display(),
            busiest.name,
            busiest.util_pct
        )
    })
}

/// The writer thread at nice 10 and best-effort I/O priority 7 (the lowest of its class),
/// like the unit files of atop and below should have had. Failure to lower is harmless.
fn lower_priority() {
    // SAFETY: plain syscalls on our own thread id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        const IOPRIO_WHO_PROCESS: libc::c_int = 1;
        const IOPRIO_CLASS_BE: libc::c_int = 2;
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_int,
            (IOPRIO_CLASS_BE << 13) | 7,
        );
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

struct Open {
    file: std::fs::File,
    path: PathBuf,
    hour: i64,
    enc: Encoder,
    synced: Instant,
}

struct Writer {
    opts: RecordOptions,
    machine: Machine,
    open: Option<Open>,
    failed: bool,
}

impl Writer {
    fn new(opts: RecordOptions, machine: Machine) -> Writer {
        Writer {
            opts,
            machine,
            open: None,
            failed: false,
        }
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        for m in rx {
            if let Err(e) = self.write(m) {
                if !self.failed {
                    eprintln!("iowhy record: {e:#} (samples are dropped until it works again)");
                }
                self.failed = true;
                // A new segment after a write error: never append after bytes in doubt.
                self.open = None;
                continue;
            }
            self.failed = false;
        }
        self.close();
    }

    fn close(&mut self) {
        if let Some(o) = self.open.take() {
            let _ = o.file.sync_data();
        }
    }

    fn write(&mut self, m: Msg) -> Result<()> {
        let hour = m.wall_unix_ms.div_euclid(3_600_000);
        if m.json.is_none() && self.open.is_none() {
            // A gap alone does not open a segment.
            return Ok(());
        }
        if m.json.is_some() && self.open.as_ref().is_some_and(|o| o.hour != hour) {
            self.close();
        }
        if self.open.is_none() {
            self.open = Some(self.create(&m, hour)?);
        }
        let o = self.open.as_mut().expect("opened");
        let mut bytes = Vec::new();
        if let Some(g) = &m.gap {
            bytes.extend(
                o.enc
                    .gap(g.last_unix_ms, m.uptime_cs, &serde_json::to_vec(g)?),
            );
        }
        if let Some(j) = m.json {
            bytes.extend(o.enc.sample(m.wall_unix_ms, m.uptime_cs, j)?);
        }
        // One write per record: a crash cuts at most this one.
        o.file
            .write_all(&bytes)
            .with_context(|| format!("writing {}", o.path.display()))?;
        if o.synced.elapsed() >= self.opts.sync_every {
            o.file.sync_data()?;
            o.synced = Instant::now();
        }
        Ok(())
    }

    fn create(&mut self, m: &Msg, hour: i64) -> Result<Open> {
        let dir = &self.opts.dir;
        let (path, file) = (0..1000)
            .find_map(|seq| {
                let p = dir.join(segment_name(
                    m.wall_unix_ms,
                    self.machine.boot_id.as_deref(),
                    seq,
                ));
                std::fs::OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(&p)
                    .ok()
                    .map(|f| (p, f))
            })
            .with_context(|| format!("creating a segment in {}", dir.display()))?;
        let h = Header {
            format_version: FORMAT_VERSION,
            iowhy_version: env!("CARGO_PKG_VERSION").into(),
            hostname: m.hostname.clone(),
            boot_id: self.machine.boot_id.clone(),
            kernel: m.kernel.clone(),
            started_unix_ms: m.wall_unix_ms,
            interval_s: self.opts.interval.as_secs_f64(),
            tz: self.machine.tz.clone(),
            utc_offset_s: super::when::local(m.wall_unix_ms).offset_s,
            zstd_level: self.opts.zstd_level,
            key_every: self.opts.key_every,
        };
        let mut f = file;
        f.write_all(&Encoder::file_header(&h)?)?;
        let dir2 = dir.clone();
        store::enforce(
            dir,
            &self.opts.retention,
            m.wall_unix_ms,
            Some(&path),
            &mut || store::free_pct(&dir2),
        )?;
        Ok(Open {
            file: f,
            path,
            hour,
            enc: Encoder::new(self.opts.zstd_level, self.opts.key_every),
            synced: Instant::now(),
        })
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
