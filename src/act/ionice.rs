//! `i` in `iowhy top`: set a process's I/O priority, what `ionice -c CLASS -n LEVEL -p PID`
//! does. Only after the user confirmed it on the screen.

/// `IOPRIO_WHO_PROCESS` (linux/ioprio.h).
const WHO_PROCESS: libc::c_int = 1;
/// The class sits above the 13 bits of the level (`IOPRIO_CLASS_SHIFT`).
const CLASS_SHIFT: u32 = 13;

/// Set the I/O priority of `pid` (that thread, as `ionice -p` does): `class` 1 realtime,
/// 2 best-effort, 3 idle; `level` 0 (highest) to 7 (lowest), ignored for idle.
pub fn set(pid: u32, class: u8, level: u8) -> std::io::Result<()> {
    let prio = (libc::c_int::from(class) << CLASS_SHIFT) | libc::c_int::from(level.min(7));
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_set, WHO_PROCESS, pid as libc::c_int, prio) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
