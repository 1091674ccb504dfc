//! `iowhy incidents`: the stalls the recorder caught as they happened, and each one's note.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::cmd::{OutputFormat, TEXT_JSON, emit, format_parser};
use crate::error::usage;
use crate::record::{self as rec, incident, when};

#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct IncidentsArgs {
    #[command(subcommand)]
    pub sub: Option<IncidentsSub>,
    /// The recorder's store (iowhy record --dir, serve --record).
    #[arg(long, value_name = "DIR", default_value = rec::DEFAULT_DIR)]
    pub dir: PathBuf,
    #[arg(long, short = 'f', default_value = "text", value_parser = format_parser(TEXT_JSON))]
    pub format: OutputFormat,
}

#[derive(Subcommand, Debug, Clone)]
pub enum IncidentsSub {
    /// One incident's note: the report of its worst window.
    Show {
        id: String,
        #[arg(long, value_name = "DIR", default_value = rec::DEFAULT_DIR)]
        dir: PathBuf,
        #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

fn local(rfc: &str) -> String {
    humantime::parse_rfc3339(rfc)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| when::show(d.as_millis() as i64))
        .unwrap_or_else(|| rfc.to_string())
}

pub fn run(a: &IncidentsArgs) -> Result<()> {
    if let Some(IncidentsSub::Show { id, dir, format }) = &a.sub {
        let all = incident::list(dir)?;
        let Some(i) = all.into_iter().find(|i| i.id == *id) else {
            return Err(usage(format!(
                "{id}: no such incident in {}",
                dir.display()
            )));
        };
        return emit(&match format {
            OutputFormat::Json => serde_json::to_string_pretty(&i)? + "\n",
            OutputFormat::Markdown => i.markdown,
            OutputFormat::Text => i.text,
        });
    }
    let mut all = incident::list(&a.dir)?;
    if a.format == OutputFormat::Json {
        for i in &mut all {
            i.text.clear();
            i.markdown.clear();
        }
        return emit(&(serde_json::to_string_pretty(&all)? + "\n"));
    }
    let mut o = String::new();
    if all.is_empty() {
        o.push_str("no incidents recorded\n");
    }
    for i in &all {
        let culprit = i
            .culprit
            .as_ref()
            .map(crate::render::replay::subject)
            .unwrap_or_default();
        o.push_str(&format!(
            "{}  {}  {}  {}  {}\n    {}\n",
            i.id,
            local(&i.started_at),
            crate::units::duration(i.duration_s),
            i.worst_severity
                .map(|s| s.as_str().to_uppercase())
                .unwrap_or_default(),
            culprit,
            i.summary
        ));
    }
    emit(&o)
}
