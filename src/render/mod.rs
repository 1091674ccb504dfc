//! Renderers only format: a [`Diagnosis`] becomes text, JSON or Markdown.

pub mod containers;
pub mod json;
pub mod markdown;
pub mod replay;
pub mod report;
pub mod table;
pub mod text;

pub use report::{Diagnosis, build_report};
