//! iowhy: why is this Linux machine stalling on I/O?
//!
//! The code is one pipeline (see `DESIGN.md`):
//! `source` (read the kernel) → `snapshot` (plain data, one instant) → `interval` (two
//! snapshots → rates) → `findings` (rules) → `render` (text, JSON, Markdown); `cmd` wires
//! the commands, `lab` reproduces incidents. `parse` holds the pure parsers of kernel
//! files and `roots` the only knowledge of where those files live.

pub mod act;
pub mod cli;
pub mod cmd;
pub mod container;
pub mod error;
pub mod fields;
pub mod findings;
pub mod hoststr;
pub mod interval;
pub mod lab;
pub mod parse;
pub mod record;
pub mod render;
pub mod roots;
pub mod sampler;
pub mod serve;
pub mod snapshot;
pub mod source;
pub mod trace;
pub mod units;
pub mod wire;
