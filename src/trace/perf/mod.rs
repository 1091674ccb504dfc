//! The perf layer: syscall tracepoints (`syscalls:sys_enter_fsync`, ...) opened with
//! perf_event_open, system-wide, one ring buffer per CPU, sample_period 1: exact call
//! counts without stopping anyone (strace stops its target on every syscall).
//!
//! Measured on the development VM: counts match the writer's own (5000/5000), ~0.2 µs of
//! consumer CPU per event, no loss with 1 MiB rings per CPU at 1M events/s. Given pids,
//! a tracepoint filter (`common_pid == TID || ...`) drops other processes in the kernel;
//! when the filter would not fit (the kernel takes one page) they are dropped here.
//! Block request latency is not taken from here: perf sampling silently misses most
//! `block:block_rq_complete` events while the CPU is idle (see the eBPF layer).
//!
//! Opens are traced too, so an fd is named by the open that made it: a syscall tracepoint
//! has the path's address only, so opens go to rings of their own that wake us on every
//! event, and the path is read from the process's memory right away (`usermem`). Events
//! of all rings are merged in time order before enter and exit are paired (a thread that
//! migrates enters on one CPU and leaves on another).

mod collect;
pub mod decode;
pub mod pair;
mod session;

pub use session::open;
