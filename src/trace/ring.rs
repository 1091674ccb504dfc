//! One perf ring buffer (per CPU): mmap'ed pages the kernel fills with records, read
//! between `data_tail` (ours) and `data_head` (the kernel's). Hand-written because the
//! perf crates that wrap it (perf-event, perf-event2) do not read tracepoint samples from
//! per-CPU rings shared by several events (PERF_EVENT_IOC_SET_OUTPUT).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use perf_event_open_sys::bindings::perf_event_mmap_page;

pub struct Ring {
    pub fd: OwnedFd,
    base: *mut u8,
    map_len: usize,
    data_off: usize,
    data_size: usize,
    scratch: Vec<u8>,
    body: Vec<u8>,
}

// SAFETY: the mapping is owned by this value and only touched through &mut self.
unsafe impl Send for Ring {}

/// A record from the ring: its type and body (after the 8-byte header).
pub struct Record<'a> {
    pub kind: u32,
    pub body: &'a [u8],
}

impl Ring {
    /// Map `pages` data pages (a power of two) plus the header page.
    pub fn new(fd: OwnedFd, pages: usize) -> std::io::Result<Ring> {
        let page = rustix::param::page_size();
        let map_len = page * (pages + 1);
        // SAFETY: a fresh shared mapping of a perf fd, unmapped in Drop.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                map_len,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                fd.as_fd(),
                0,
            )?
        } as *mut u8;
        // SAFETY: the header page is mapped and laid out as perf_event_mmap_page.
        let hdr = unsafe { &*(base as *const perf_event_mmap_page) };
        let (data_off, data_size) = if hdr.data_size > 0 {
            (hdr.data_offset as usize, hdr.data_size as usize)
        } else {
            (page, page * pages)
        };
        Ok(Ring {
            fd,
            base,
            map_len,
            data_off,
            data_size,
            scratch: Vec::new(),
            body: Vec::new(),
        })
    }

    /// The shared head (written by the kernel) and tail (written by us) counters.
    fn counters(base: *mut u8) -> (&'static AtomicU64, &'static AtomicU64) {
        // SAFETY: data_head/data_tail are naturally aligned u64 fields of the mapped header,
        // valid while the mapping lives (callers do not keep them past a drain); the kernel
        // writes head, we write tail (perf_event_open(2), "mmap layout").
        unsafe {
            let hdr = base as *mut perf_event_mmap_page;
            (
                AtomicU64::from_ptr(std::ptr::addr_of_mut!((*hdr).data_head)),
                AtomicU64::from_ptr(std::ptr::addr_of_mut!((*hdr).data_tail)),
            )
        }
    }

    /// Call `f` for every record available now, then hand the space back to the kernel.
    pub fn drain(&mut self, mut f: impl FnMut(Record<'_>)) -> usize {
        let (head_a, tail_a) = Ring::counters(self.base);
        let head = head_a.load(Ordering::Acquire);
        let mut tail = tail_a.load(Ordering::Relaxed);
        let mut n = 0;
        while tail < head {
            let off = (tail % self.data_size as u64) as usize;
            let hdr = self.read(off, 8);
            let kind = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let size = u16::from_ne_bytes([hdr[6], hdr[7]]) as usize;
            if size < 8 {
                // Corrupt or unexpected: skip everything rather than loop forever.
                tail = head;
                break;
            }
            let body_off = (off + 8) % self.data_size;
            // Reuse one buffer: the hot path does not allocate.
            let mut body = std::mem::take(&mut self.body);
            body.clear();
            body.extend_from_slice(self.read(body_off, size - 8));
            f(Record { kind, body: &body });
            self.body = body;
            tail += size as u64;
            n += 1;
        }
        tail_a.store(tail, Ordering::Release);
        n
    }

    /// `len` bytes at `off` in the data area, copied out when they wrap.
    fn read(&mut self, off: usize, len: usize) -> &[u8] {
        // SAFETY: off < data_size and the data area is data_size bytes long.
        let data =
            unsafe { std::slice::from_raw_parts(self.base.add(self.data_off), self.data_size) };
        if off + len <= self.data_size {
            &data[off..off + len]
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(&data[off..]);
            self.scratch
                .extend_from_slice(&data[..len - (self.data_size - off)]);
            &self.scratch
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: base/map_len are the mapping made in new().
        unsafe {
            let _ = rustix::mm::munmap(self.base as *mut _, self.map_len);
        }
    }
}
