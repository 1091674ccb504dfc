//! `iowhy lab container-log-flood`: a real containerd container (a busybox rootfs run with
//! `ctr run --rootfs`) whose stdout the shim writes into a file (`--log-uri file://`) on
//! the lab's own loop-device filesystem, at a bounded rate.
//!
//! Bounded and self-cleaning: the container's own script stops after the lab's duration
//! (plus a margin) even if the lab is killed; the lab kills the task through containerd,
//! deletes the task and the container (there is no snapshot: the rootfs is a plain
//! directory), waits for the shim to exit, and only then unmounts. The container is
//! recorded in the lab's `lab.json` so that `iowhy lab cleanup` can remove it too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::LabOptions;
use super::stage::Stage;
use crate::parse::container::cmdline;
use crate::roots::Roots;
use crate::wire::lab::LabEvent;

/// The containerd namespace every lab container lives in.
pub const NAMESPACE: &str = "iowhy-lab";
/// The container's script outlives the lab's duration by at most this much.
const SELF_STOP_MARGIN_S: u64 = 30;
/// Busybox applets the script uses, linked in the rootfs's /bin.
const APPLETS: &[&str] = &["sh", "yes", "head", "sleep", "date", "cat", "ls"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtrContainer {
    pub namespace: String,
    pub id: String,
    /// The shim containerd started for it (checked by command line before any signal).
    pub shim_pid: Option<u32>,
}

fn ctr(args: &[&str]) -> Result<String> {
    let out = Command::new("ctr")
        .arg("--connect-timeout")
        .arg("3s")
        .args(args)
        .output()
        .context("running ctr")?;
    if !out.status.success() {
        bail!(
            "ctr {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

/// A statically linked busybox: no `PT_INTERP` program header (a dynamic one would not
/// start in an empty rootfs). Reads the ELF64 little-endian header by hand: 20 lines
/// instead of an ELF crate for one question.
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    if bytes.get(..4) != Some(b"\x7fELF") || bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).all(|i| {
        let at = phoff as usize + i * phentsize as usize;
        u32_at(at).is_some_and(|t| t != 3)
    })
}

/// Check containerd, ctr and a static busybox before touching anything.
pub fn preflight() -> Result<PathBuf> {
    if which("ctr").is_none() {
        bail!(
            "containerd is not available: no `ctr` command. Install it (apt-get install containerd runc busybox-static) and start containerd"
        );
    }
    if let Err(e) = ctr(&["version"]) {
        bail!(
            "containerd is not running or not reachable ({}). Start it: systemctl start containerd (or `containerd &`)",
            e.to_string().lines().last().unwrap_or("")
        );
    }
    let bb = which("busybox").context("no busybox: apt-get install busybox-static")?;
    let bytes = std::fs::read(&bb).with_context(|| bb.display().to_string())?;
    if !is_static_elf(&bytes) {
        bail!(
            "{} is dynamically linked and cannot run in an empty rootfs: apt-get install busybox-static",
            bb.display()
        );
    }
    Ok(bb)
}

fn make_rootfs(dir: &Path, busybox: &Path) -> Result<()> {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).context("copying busybox into the rootfs")?;
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a))?;
    }
    Ok(())
}

/// The container's program: `rate` bytes a second (a tenth on stderr), in one burst per
/// second, until `stop_after_s` have passed.
fn script(rate: u64, stop_after_s: u64) -> String {
    let err = (rate / 10).max(1);
    let out = rate.saturating_sub(err).max(1);
    format!(
        "end=$(( $(date +%s) + {stop_after_s} )); \
         while [ \"$(date +%s)\" -lt \"$end\" ]; do \
         yes 'GET /api/v1/items?page=1 200 3ms user=42 handled by worker-7 (iowhy lab container-log-flood)' | head -c {out}; \
         yes 'WARN upstream slow, retrying request id=7 (iowhy lab container-log-flood)' | head -c {err} >&2; \
         sleep 1; done"
    )
}

fn pid_alive(pid: u32) -> bool {
    rustix::process::Pid::from_raw(pid as i32)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(super) fn run(
    st: &mut Stage,
    a: &LabOptions,
    stop: &AtomicBool,
    busybox: &Path,
    event: &mut dyn FnMut(&LabEvent) -> Result<()>,
) -> Result<LabEvent> {
    let id = format!("iowhy-flood-{}", std::process::id());
    let rootfs = st.dir.join("rootfs");
    let log = st.dir.join("logs").join(format!("{id}.log"));
    std::fs::create_dir_all(log.parent().expect("has a parent"))?;
    make_rootfs(&rootfs, busybox)?;
    let rate = if a.rate == 0 {
        4 << 20
    } else {
        a.rate.min(64 << 20)
    };
    let stop_after = a.duration.as_secs() + SELF_STOP_MARGIN_S;
    // Record it before starting, so a lab killed right after still gets cleaned up.
    st.ctr.push(CtrContainer {
        namespace: NAMESPACE.into(),
        id: id.clone(),
        shim_pid: None,
    });
    st.persist();
    let log_uri = format!("file://{}", log.display());
    let cmd = script(rate, stop_after);
    ctr(&[
        "-n",
        NAMESPACE,
        "run",
        "-d",
        "--log-uri",
        &log_uri,
        "--label",
        "iowhy.lab=container-log-flood",
        "--rootfs",
        &rootfs.display().to_string(),
        &id,
        "/bin/sh",
        "-c",
        &cmd,
    ])?;
    let roots = Roots::default();
    let task_dir = roots
        .host(Path::new(crate::container::paths::CONTAINERD_TASKS))
        .join(NAMESPACE)
        .join(&id);
    let until = Instant::now() + Duration::from_secs(5);
    let init = loop {
        if let Some(p) = read_pid(&task_dir.join("init.pid")) {
            break p;
        }
        if Instant::now() > until {
            bail!(
                "the container started but containerd wrote no init.pid in {}",
                task_dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let shim = crate::source::reader::Reader::live(roots.clone())
        .read_path(&roots.pid_dir(init).join("stat"))
        .ok()
        .and_then(|t| crate::parse::pid_stat::parse(&t).ok())
        .map(|s| s.ppid);
    if let Some(c) = st.ctr.last_mut() {
        c.shim_pid = shim;
    }
    st.persist();
    let ev = LabEvent {
        event: "started".into(),
        scenario: a.scenario.name().into(),
        pids: vec![init],
        paths: vec![log.display().to_string()],
        mountpoint: st.loop_dev.as_ref().map(|_| st.dir.display().to_string()),
        device: st.device_name(),
        base: Some(st.base.display().to_string()),
        duration_s: a.duration.as_secs_f64(),
        note: Some(format!(
            "container {id} (containerd namespace {NAMESPACE}, shim pid {}) prints {}/s to stdout and stderr; the shim writes them to the log",
            shim.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
            crate::units::bytes_u(rate)
        )),
        container_id: Some(id.clone()),
        runtime_namespace: Some(NAMESPACE.into()),
        shim_pid: shim,
        ..Default::default()
    };
    event(&ev)?;
    let deadline = Instant::now()
        .checked_add(a.duration)
        .unwrap_or_else(Instant::now);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if !pid_alive(init) {
            bail!("the container {id} exited early; see `ctr -n {NAMESPACE} task ls`");
        }
    }
    Ok(ev)
}

/// Remove a lab container: kill its task through containerd, delete task and container,
/// and make sure its shim is gone. Returns what was done.
pub fn remove(c: &CtrContainer) -> Vec<String> {
    let mut done = Vec::new();
    let ns = c.namespace.as_str();
    let id = c.id.as_str();
    let _ = ctr(&["-n", ns, "task", "kill", "-s", "SIGKILL", id]);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match ctr(&["-n", ns, "task", "delete", "-f", id]) {
            Ok(_) => {
                done.push(format!("deleted task {ns}/{id}"));
                break;
            }
            // "not found": there is no task (it exited and was deleted, or never started).
            Err(e) if e.to_string().contains("not found") => break,
            Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => {
                done.push(format!("could not delete task {ns}/{id}: {e}"));
                break;
            }
        }
    }
    match ctr(&["-n", ns, "container", "delete", id]) {
        Ok(_) => done.push(format!("deleted container {ns}/{id}")),
        Err(e) if e.to_string().contains("not found") => {}
        Err(e) => done.push(format!("could not delete container {ns}/{id}: {e}")),
    }
    if let Some(pid) = c.shim_pid {
        let ours = || {
            // Through the reader: a cmdline read can block (the shim's mmap_lock).
            let mut r = crate::source::reader::Reader::live(Roots::default());
            let read = r
                .read_path(&Roots::default().pid_dir(pid).join("cmdline"))
                .is_ok();
            read.then(|| crate::source::reader::split_cmdline(r.last_bytes()))
                .and_then(|argv| cmdline::shim(&argv))
                .is_some_and(|s| s.namespace.as_deref() == Some(ns) && s.id.as_deref() == Some(id))
        };
        let until = Instant::now() + Duration::from_secs(5);
        while ours() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        if ours() {
            // Still this lab's shim (same namespace and id): it is ours to end.
            if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
            done.push(format!("killed shim pid {pid}"));
        } else {
            done.push(format!("shim pid {pid} exited"));
        }
    }
    // Succeeds only when no other lab uses the namespace.
    let _ = ctr(&["namespace", "remove", ns]);
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_is_static_here_or_not() {
        assert!(!is_static_elf(b"\x7fELF"));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        // Our own test binary is dynamically linked (it has PT_INTERP).
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me));
    }

    #[test]
    fn script_is_bounded() {
        let s = script(4 << 20, 90);
        assert!(s.contains("+ 90"));
        assert!(s.contains("head -c 3774874"));
        assert!(s.contains(">&2"));
    }
}
