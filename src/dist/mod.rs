//! Installing iowhy like any Linux tool: the long `--version` (version, git revision,
//! tracing layers), man pages and shell completions generated from the clap definitions,
//! and the hidden `generate-docs` command that writes them into docs/ for the package.

pub mod completions;
pub mod examples;
pub mod man;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

use crate::trace::model::Layer;

/// The git revision this binary was built from (build.rs), "unknown" outside a checkout.
/// serve's `iowhy_build_info{revision}` says the same.
pub fn revision() -> &'static str {
    crate::serve::build_revision()
}

/// The tracing layers compiled into this build, best first (the eBPF object is embedded,
/// so every build carries all three; `--tracing` picks among them at run time).
pub const LAYERS: [Layer; 3] = [Layer::Ebpf, Layer::Perf, Layer::Sampling];

/// `iowhy --version`: the version, then one `key: value` line each for the revision and
/// the tracing layers.
pub fn long_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let layers: Vec<&str> = LAYERS.iter().map(|l| l.name()).collect();
        format!(
            "{}\nrevision: {}\ntracing layers: {}",
            env!("CARGO_PKG_VERSION"),
            revision(),
            layers.join(" ")
        )
    })
}

#[derive(Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: completions::Shell,
}

#[derive(Args, Debug, Clone)]
pub struct GenerateDocsArgs {
    /// The docs directory: pages go to DIR/man, completion scripts to DIR/completions.
    #[arg(long, value_name = "DIR", default_value = "docs")]
    pub out: PathBuf,
}

pub fn run_completions(a: &CompletionsArgs) -> Result<()> {
    completions::print(crate::cli::Cli::command(), a.shell)
}

/// Write every man page and completion script under `a.out` (replacing what is there).
pub fn run_generate_docs(a: &GenerateDocsArgs) -> Result<()> {
    write_docs(&a.out)
}

fn write_docs(out: &Path) -> Result<()> {
    let man_dir = out.join("man");
    let comp_dir = out.join("completions");
    for d in [&man_dir, &comp_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    for (name, text) in man::pages(crate::cli::Cli::command()) {
        let p = man_dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    for shell in [
        completions::Shell::Bash,
        completions::Shell::Zsh,
        completions::Shell::Fish,
    ] {
        let p = comp_dir.join(shell.file_name());
        let text = completions::generate(crate::cli::Cli::command(), shell);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
