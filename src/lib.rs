//! iowhy: why is this Linux machine stalling on I/O?
//!
//! The code is one pipeline (see `DESIGN.md`):
//! `source` (read the kernel) → `snapshot` (plain data, one instant) → `interval` (two
//! snapshots → rates) → `findings` (rules) → `render` (text, JSON, Markdown); `cmd` wires
//! the commands, `lab` reproduces incidents. `parse` holds the pure parsers of kernel
//! files and `roots` the only knowledge of where those files live.

pub(crate) mod act;
pub mod cli;
pub(crate) mod cmd;
pub(crate) mod container;
pub mod dist;
pub(crate) mod error;
pub mod fields;
pub mod findings;
pub mod hoststr;
pub(crate) mod interval;
pub mod lab;
pub(crate) mod parse;
pub(crate) mod record;
pub(crate) mod render;
pub mod roots;
pub(crate) mod sampler;
pub mod serve;
pub mod snapshot;
pub mod source;
pub(crate) mod trace;
pub(crate) mod tui;
pub(crate) mod units;
pub mod wire;
