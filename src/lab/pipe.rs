//! `iowhy lab pipe-block`: a writer whose stdout is a pipe, and a reader holding the read
//! end that is stopped (SIGSTOP, sent by the lab to its own child) or never reads. The
//! writer fills the pipe's 64 KiB and blocks in the kernel's pipe write: the seed's
//! "stdout nobody reads". Both are lab workers, stopped by pid at the end (the reader
//! is resumed first, or SIGTERM would wait for it).

use std::os::fd::AsFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::ValueEnum;

use super::worker::WorkerKind;
use super::{LabOptions, Worker, spawn_with};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReaderMode {
    /// The reader drains the pipe for a moment, then the lab stops it (SIGSTOP).
    Stopped,
    /// The reader is alive but never reads.
    Idle,
}

/// Start the reader and the writer; returns them (writer first) and the pipe's name.
pub(super) fn start(dir: &Path, a: &LabOptions) -> Result<(Vec<Worker>, String)> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("pipe(2)")?;
    let ino = rustix::fs::fstat(w.as_fd())
        .context("fstat of the pipe")?
        .st_ino;
    let name = format!("pipe:[{ino}]");
    let path = dir.join("pipe");
    let mut extra = Vec::new();
    if a.reader == ReaderMode::Idle {
        extra.push("--idle".to_string());
    }
    let reader = spawn_with(
        WorkerKind::PipeReader,
        &path,
        "lab-pipe-read",
        &extra,
        Stdio::from(r),
        Stdio::null(),
    )?;
    let writer = spawn_with(
        WorkerKind::PipeWriter,
        &path,
        "lab-pipe-write",
        &[],
        Stdio::null(),
        Stdio::from(w),
    )?;
    if a.reader == ReaderMode::Stopped {
        // Let it read for a moment (it is a working reader), then stop it.
        std::thread::sleep(Duration::from_millis(300));
        if let Some(p) = rustix::process::Pid::from_raw(reader.child.id() as i32) {
            rustix::process::kill_process(p, rustix::process::Signal::STOP)
                .context("stopping the lab's reader")?;
        }
    }
    Ok((vec![writer, reader], name))
}
