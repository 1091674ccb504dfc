//! `iowhy files PID`: a better `lsof -p`: every fd with its full path, type, size, growth
//! over the window, offset, open flags (O_APPEND, O_SYNC, O_DSYNC, O_DIRECT), and the
//! mount and device it lives on; deleted files marked.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::cmd::{Global, OutputFormat, TEXT_JSON, emit, format_parser};
use crate::error::usage;
use crate::hoststr::for_terminal as esc;
use crate::interval::{FileRates, Interval, ProcessRates};
use crate::parse::fdinfo::{O_ACCMODE, O_RDWR, O_WRONLY};
use crate::parse::fdlink::FdKind;
use crate::render::table::Table;
use crate::snapshot::GapKind;
use crate::source::SnapshotOptions;
use crate::units;
use crate::units::parse_duration;
use crate::wire::files::{FileEntry, FilesReport};
use crate::wire::r2o;

#[derive(Args, Debug, Clone)]
pub struct FilesArgs {
    /// The process to inspect.
    #[arg(value_name = "PID")]
    pub pid: u32,
    /// Window for the growth of each file (0 for a single look, without growth).
    #[arg(long, short = 'd', default_value = "1s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

/// lsof's TYPE column.
pub fn type_name(f: &FileRates, mode: Option<u32>) -> &'static str {
    match f.kind {
        Some(FdKind::Pipe) => "FIFO",
        Some(FdKind::Socket) => "sock",
        Some(FdKind::AnonInode) => "a_inode",
        _ => match mode.map(|m| m & libc::S_IFMT) {
            Some(libc::S_IFREG) => "REG",
            Some(libc::S_IFDIR) => "DIR",
            Some(libc::S_IFCHR) => "CHR",
            Some(libc::S_IFBLK) => "BLK",
            Some(libc::S_IFIFO) => "FIFO",
            Some(libc::S_IFSOCK) => "sock",
            Some(libc::S_IFLNK) => "LINK",
            _ => "?",
        },
    }
}

/// lsof's access mode letter: r, w or u (read and write).
fn mode_letter(flags: Option<u32>) -> &'static str {
    match flags.map(|f| f & O_ACCMODE) {
        Some(O_WRONLY) => "w",
        Some(O_RDWR) => "u",
        Some(_) => "r",
        None => " ",
    }
}

pub fn run(g: &Global, a: &FilesArgs) -> Result<()> {
    let mut c = g.collector()?;
    let opts = SnapshotOptions::one_process(a.pid, true);
    let s0 = c.snapshot(&opts)?;
    // The interval leaves iowhy's own process out of every table (its reads would top the
    // list), so there would be nothing to show: say so instead.
    if s0.self_pid == Some(a.pid) {
        return Err(usage(format!(
            "pid {} is this iowhy process itself; its files are iowhy's own reads",
            a.pid
        )));
    }
    if s0.process(a.pid).is_none() {
        return Err(usage(format!(
            "no process with pid {} (under {})",
            a.pid,
            c.roots().proc.display()
        )));
    }
    let stop = super::stop_flag();
    let s1 = if a.duration.is_zero() {
        s0.clone()
    } else {
        c.wait(a.duration, &stop, |_| {});
        c.snapshot(&opts)?
    };
    let Some(after) = s1.process(a.pid) else {
        return Err(anyhow::anyhow!(
            "process {} exited during the window",
            a.pid
        ));
    };
    if after.kthread {
        return emit(&kthread(a, &after.comm)?);
    }
    if after.fds.is_none() {
        let why = s1
            .gaps
            .by_kind
            .get(&GapKind::ProcessFds)
            .map(|g| g.reason.clone())
            .unwrap_or_else(|| "permission denied".into());
        return Err(usage(format!(
            "cannot read the open files of pid {}: {why}",
            a.pid
        )));
    }
    let modes: Vec<(i32, Option<u32>)> = after
        .fds
        .iter()
        .flatten()
        .map(|f| (f.fd, f.stat.map(|s| s.mode)))
        .collect();
    let iv = Interval::new(s0, s1);
    let p = iv
        .process(a.pid)
        .ok_or_else(|| anyhow::anyhow!("process {} exited during the window", a.pid))?;
    let out = match a.format {
        OutputFormat::Json => json(a, &iv, p, &modes)?,
        OutputFormat::Text | OutputFormat::Markdown => text(a, &iv, p, &modes),
    };
    emit(&out)
}

/// The file type a mode says, from the fd's stat.
fn mode_of(modes: &[(i32, Option<u32>)], fd: i32) -> Option<u32> {
    modes.iter().find(|(f, _)| *f == fd).and_then(|(_, m)| *m)
}

/// A kernel thread has no files of its own: an empty report, or a sentence.
fn kthread(a: &FilesArgs, comm: &str) -> Result<String> {
    Ok(match a.format {
        OutputFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&FilesReport {
                pid: a.pid,
                comm: comm.to_string(),
                cmdline: String::new(),
                window_seconds: 0.0,
                files: Vec::new(),
            })?
        ),
        OutputFormat::Text | OutputFormat::Markdown => format!(
            "pid {} {} is a kernel thread: it has no open files of its own\n",
            a.pid,
            esc(comm)
        ),
    })
}

/// The JSON report of the process's open files.
fn json(
    a: &FilesArgs,
    iv: &Interval,
    p: &ProcessRates,
    modes: &[(i32, Option<u32>)],
) -> Result<String> {
    let mode_of = |fd: i32| mode_of(modes, fd);
    let r = FilesReport {
        pid: p.pid,
        comm: p.comm.clone(),
        cmdline: p.cmdline.clone(),
        window_seconds: if a.duration.is_zero() {
            0.0
        } else {
            iv.elapsed_s
        },
        files: p
            .files
            .iter()
            .map(|f| FileEntry {
                fd: f.fd,
                kind: type_name(f, mode_of(f.fd)).into(),
                mode: mode_letter(f.flags).into(),
                path: f.path.clone(),
                deleted: f.deleted,
                size_bytes: f.size_bytes,
                growth_bytes_per_s: if a.duration.is_zero() {
                    None
                } else {
                    r2o(f.growth_bytes_per_s)
                },
                pos_bytes: f.pos_bytes,
                flags: f.flag_names().into_iter().map(String::from).collect(),
                inode: f.ino,
                mountpoint: f.mountpoint.clone(),
                fstype: f.fstype.clone(),
                device: f.devices.first().cloned(),
            })
            .collect(),
    };
    Ok(serde_json::to_string_pretty(&r)? + "\n")
}

/// The table of the process's open files.
fn text(a: &FilesArgs, iv: &Interval, p: &ProcessRates, modes: &[(i32, Option<u32>)]) -> String {
    let mode_of = |fd: i32| mode_of(modes, fd);
    let mut o = format!("pid {} {} — {}", p.pid, esc(&p.comm), esc(&p.cmdline));
    if !a.duration.is_zero() {
        o.push_str(&format!(" ({:.1} s window)", iv.elapsed_s));
    }
    o.push('\n');
    let mut t = Table::new(&[
        "FD", "TYPE", "MODE", "FLAGS", "SIZE", "GROWTH/s", "OFFSET", "MOUNT", "DEVICE", "PATH",
    ])
    .text_columns(&[1, 2, 3, 7, 8, 9]);
    for f in &p.files {
        t.row(vec![
            f.fd.to_string(),
            type_name(f, mode_of(f.fd)).into(),
            mode_letter(f.flags).into(),
            f.flag_names()
                .into_iter()
                .filter(|n| !n.starts_with("O_RD") && *n != "O_WRONLY")
                .collect::<Vec<_>>()
                .join("|"),
            f.size_bytes
                .filter(|_| f.regular)
                .map(units::bytes_u)
                .unwrap_or_default(),
            f.growth_bytes_per_s
                .filter(|g| *g != 0.0)
                .map(units::rate)
                .unwrap_or_default(),
            f.pos_bytes.map(|v| v.to_string()).unwrap_or_default(),
            f.mountpoint.clone().unwrap_or_default(),
            f.devices.first().cloned().unwrap_or_default(),
            if f.deleted {
                format!("{} (deleted)", f.path)
            } else {
                f.path.clone()
            },
        ]);
    }
    o.push_str(&t.render());
    o
}
