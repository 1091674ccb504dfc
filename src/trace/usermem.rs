//! Reading a traced process's memory (`process_vm_readv(2)`): syscall tracepoints give the
//! *address* of an open's path, not the path. Read right after the event, while the
//! process still runs, the string is there (the kernel has just read it from the same
//! place). Needs the right to ptrace the process (root, CAP_SYS_PTRACE); without it the
//! caller falls back to /proc. Hand-written on libc: no maintained crate wraps this call.

/// PATH_MAX from the kernel's limits.h: no path an open accepts is longer.
pub const PATH_MAX: usize = 4096;

/// Why a read failed, as far as the caller cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadErr {
    /// Not allowed (EPERM): no read of any process will work.
    Denied,
    /// The process is gone, or the address is not mapped.
    Gone,
}

/// Read up to `buf.len()` bytes at `addr` of process (or thread) `pid`: how many were read.
pub fn read(pid: u32, addr: u64, buf: &mut [u8]) -> Result<usize, ReadErr> {
    if addr == 0 || buf.is_empty() {
        return Err(ReadErr::Gone);
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes our own writable buffer; the kernel checks `remote`.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return Err(match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EPERM) => ReadErr::Denied,
            _ => ReadErr::Gone,
        });
    }
    Ok(n as usize)
}

/// A NUL-terminated string at `addr`, read page by page (a read that crosses into an
/// unmapped page fails as a whole, and a path may end just before one).
pub fn read_cstr(pid: u32, addr: u64) -> Result<String, ReadErr> {
    let page = rustix::param::page_size() as u64;
    let mut out: Vec<u8> = Vec::new();
    let mut at = addr;
    while out.len() < PATH_MAX {
        let to_page_end = (page - at % page) as usize;
        let mut chunk = vec![0u8; to_page_end.min(PATH_MAX - out.len())];
        let n = read(pid, at, &mut chunk)?;
        if n == 0 {
            return Err(ReadErr::Gone);
        }
        if let Some(end) = chunk[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    Err(ReadErr::Gone)
}

/// A u64 at `addr` (openat2's `struct open_how` starts with the flags).
pub fn read_u64(pid: u32, addr: u64) -> Result<u64, ReadErr> {
    let mut b = [0u8; 8];
    match read(pid, addr, &mut b)? {
        8 => Ok(u64::from_ne_bytes(b)),
        _ => Err(ReadErr::Gone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_strings_across_pages() {
        let me = std::process::id();
        let s = std::ffi::CString::new("/var/log/app/output.log").unwrap();
        assert_eq!(
            read_cstr(me, s.as_ptr() as u64).as_deref(),
            Ok("/var/log/app/output.log")
        );
        // A string that straddles a page boundary.
        let page = rustix::param::page_size();
        let mut buf = vec![b'x'; 3 * page];
        let to_boundary = page - buf.as_ptr() as usize % page;
        let start = if to_boundary >= 5 {
            to_boundary - 5
        } else {
            to_boundary + page - 5
        };
        buf[start..start + 10].copy_from_slice(b"/abcdefgh/");
        buf[start + 10] = 0;
        assert_eq!(
            read_cstr(me, buf[start..].as_ptr() as u64).as_deref(),
            Ok("/abcdefgh/")
        );
        let v: u64 = 0o2101;
        assert_eq!(read_u64(me, &v as *const u64 as u64), Ok(0o2101));
        assert_eq!(read_cstr(me, 0), Err(ReadErr::Gone));
    }
}
