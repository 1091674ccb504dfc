//! Installing iowhy like a Linux tool (issue 15): the checked-in man pages and completion
//! scripts are what the clap definitions generate; each page renders without warnings and
//! has EXAMPLES and EXIT STATUS; the completions load in bash, zsh and fish and complete
//! PIDs; `--version` names the revision and the tracing layers; every systemd unit
//! verifies; and the Debian package (`cargo deb`, which .ci/run builds) holds what it
//! should, passes lintian, and its binary runs. A missing tool or package skips (a failure
//! under IOWHY_REQUIRE_LIVE=1).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;

fn docs() -> PathBuf {
    common::root_dir().join("docs")
}

fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn man_pages() -> Vec<PathBuf> {
    let dir = docs().join("man");
    files_in(&dir).into_iter().map(|f| dir.join(f)).collect()
}

fn sh(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run command");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn checked_in_man_pages_and_completions_are_current() {
    let dir = tempfile::tempdir().unwrap();
    common::ok(&["generate-docs", "--out", dir.path().to_str().unwrap()]);
    for sub in ["man", "completions"] {
        let fresh = files_in(&dir.path().join(sub));
        let kept = files_in(&docs().join(sub));
        assert_eq!(
            fresh, kept,
            "docs/{sub} differs from what `iowhy generate-docs` writes; run it"
        );
        for f in fresh {
            let want = std::fs::read_to_string(dir.path().join(sub).join(&f)).unwrap();
            let have = std::fs::read_to_string(docs().join(sub).join(&f)).unwrap();
            assert!(
                want == have,
                "docs/{sub}/{f} is stale: run `cargo run -- generate-docs`"
            );
        }
    }
}

/// One page per visible subcommand, each with the sections an SRE looks for.
#[test]
fn every_command_has_a_page_with_examples_and_exit_status() {
    let help = common::ok(&["--help"]);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Not the wrapped second lines of a description.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.contains(&"diagnose") && commands.contains(&"rotate"));
    let pages = files_in(&docs().join("man"));
    for c in &commands {
        assert!(pages.contains(&format!("iowhy-{c}.1")), "no page for {c}");
    }
    assert_eq!(pages.len(), commands.len() + 1, "pages: {pages:?}");
    for p in man_pages() {
        let text = std::fs::read_to_string(&p).unwrap();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH \"EXIT STATUS\"",
            ".SH EXAMPLES",
        ] {
            assert!(text.contains(section), "{}: no {section}", p.display());
        }
    }
    let diagnose = std::fs::read_to_string(docs().join("man/iowhy-diagnose.1")).unwrap();
    assert!(
        diagnose.contains("could not run (UNKNOWN)"),
        "diagnose's --exit-code statuses"
    );
}

/// Every example in the pages is a command line the clap definitions accept.
#[test]
fn every_example_parses() {
    use clap::CommandFactory;
    let mut names: Vec<String> = vec![String::new()];
    names.extend(
        iowhy::cli::Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string()),
    );
    for name in names {
        let ex = iowhy::dist::examples::extras(&name);
        assert!(!ex.examples.is_empty(), "{name:?} has no examples");
        for (_, line) in ex.examples {
            let words: Vec<&str> = line
                .split(" > ")
                .next()
                .unwrap()
                .split_whitespace()
                .skip_while(|w| *w == "sudo")
                .collect();
            assert_eq!(words[0], "iowhy", "{line}");
            if let Err(e) = iowhy::cli::Cli::try_parse_from(&words) {
                panic!("example {line:?} does not parse: {e}");
            }
        }
    }
}

#[test]
fn man_pages_render_without_warnings() {
    let Some(man) = common::need_tool("man") else {
        return;
    };
    for p in man_pages() {
        let (ok, out, err) = sh(Command::new(&man)
            .env("MANWIDTH", "80")
            .env_remove("MAN_KEEP_FORMATTING")
            .args(["--warnings", "-l"])
            .arg(&p));
        assert!(ok, "man -l {}: {err}", p.display());
        assert!(
            err.trim().is_empty(),
            "man --warnings -l {}:\n{err}",
            p.display()
        );
        assert!(
            out.contains("EXAMPLES") && out.contains("EXIT STATUS"),
            "{}",
            p.display()
        );
        // MANWIDTH=80: nothing wider (groff's own layout keeps to it unless a word cannot
        // be broken).
        for l in out.lines() {
            assert!(l.chars().count() <= 80, "{}: {l:?}", p.display());
        }
    }
}

/// A process this test started, to complete to.
struct Sleeper(std::process::Child);
impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
fn sleeper() -> Sleeper {
    Sleeper(
        Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("start sleep"),
    )
}

#[test]
fn bash_completion_loads_and_completes_pids() {
    let Some(bash) = common::need_tool("bash") else {
        return;
    };
    let s = sleeper();
    let pid = s.0.id();
    let script = format!(
        r#"source <("{bin}" completions bash) || exit 1
complete -p iowhy
t() {{ COMP_WORDS=("$@"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=()
      _iowhy_with_pids iowhy "${{COMP_WORDS[-1]}}" "${{COMP_WORDS[-2]}}"; echo "$1 ${{COMP_WORDS[1]}}: ${{COMPREPLY[*]}}"; }}
t iowhy fil
t iowhy files {pid}
t iowhy pause sle
t iowhy trace --pid {pid}
t iowhy rotate --sig
"#,
        bin = common::bin()
    );
    let (ok, out, err) = sh(Command::new(bash).args(["--norc", "-c", &script]));
    assert!(ok, "bash: {err}\n{out}");
    let line = |p: &str| {
        out.lines()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("no {p:?} in\n{out}"))
            .to_string()
    };
    assert!(out.contains("-F _iowhy_with_pids iowhy\n"), "{out}");
    assert!(line("iowhy fil:").contains("files"), "{out}");
    assert!(
        line("iowhy files:")
            .split_whitespace()
            .any(|w| w == pid.to_string()),
        "{out}"
    );
    // By comm: "sle" offers this test's sleep.
    assert!(
        line("iowhy pause:")
            .split_whitespace()
            .any(|w| w == pid.to_string()),
        "{out}"
    );
    assert!(
        line("iowhy trace:")
            .split_whitespace()
            .any(|w| w == pid.to_string()),
        "{out}"
    );
    assert!(line("iowhy rotate:").contains("--signal"), "{out}");
}

#[test]
fn zsh_completion_loads_with_pids() {
    let Some(zsh) = common::need_tool("zsh") else {
        return;
    };
    let script = format!(
        r#"autoload -Uz compinit && compinit -u -D
source <("{bin}" completions zsh) || exit 1
(( $+functions[_iowhy] )) || {{ echo "no _iowhy"; exit 1; }}
(( $+functions[_pids] )) || autoload -Uz _pids
echo loaded"#,
        bin = common::bin()
    );
    let (ok, out, err) = sh(Command::new(zsh).args(["-f", "-c", &script]));
    assert!(ok && out.contains("loaded"), "zsh: {err}\n{out}");
    let text = common::ok(&["completions", "zsh"]);
    assert!(
        text.contains("':pid -- The process to inspect:_pids'"),
        "files PID -> _pids"
    );
    assert!(
        text.contains("--pid=[Trace only this process"),
        "trace --pid"
    );
}

#[test]
fn fish_completion_lists_pids_with_comm() {
    let Some(fish) = common::need_tool("fish") else {
        return;
    };
    let s = sleeper();
    let pid = s.0.id();
    let script = format!(
        r#"source ("{bin}" completions fish | psub); or exit 1
complete -C "iowhy dia"
complete -C "iowhy files {pid}""#,
        bin = common::bin()
    );
    let (ok, out, err) = sh(Command::new(fish).args(["--no-config", "-c", &script]));
    assert!(ok, "fish: {err}\n{out}");
    assert!(out.lines().any(|l| l.starts_with("diagnose\t")), "{out}");
    assert!(
        out.lines().any(|l| l == format!("{pid}\tsleep")),
        "pid with comm:\n{out}"
    );
}

#[test]
fn version_names_revision_and_tracing_layers() {
    let out = common::ok(&["--version"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("iowhy {}", env!("CARGO_PKG_VERSION")),
        "{out}"
    );
    let rev = lines
        .iter()
        .find_map(|l| l.strip_prefix("revision: "))
        .unwrap_or_else(|| panic!("no revision line:\n{out}"));
    let layers = lines
        .iter()
        .find_map(|l| l.strip_prefix("tracing layers: "))
        .unwrap_or_else(|| panic!("no tracing layers line:\n{out}"));
    assert_eq!(layers, "ebpf perf sampling");
    // In a git checkout (CI's included) the revision is HEAD's, else "unknown".
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(common::root_dir())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) => assert_eq!(rev, h, "built from another commit? rebuild"),
        None => assert_eq!(rev, "unknown"),
    }
    // -V stays the bare version, for scripts.
    assert_eq!(common::ok(&["-V"]).trim(), lines[0]);
}

fn units() -> Vec<PathBuf> {
    let dir = common::root_dir().join("deploy/systemd");
    files_in(&dir)
        .into_iter()
        .filter(|f| f.ends_with(".service"))
        .map(|f| dir.join(f))
        .collect()
}

/// Every unit verifies with its ExecStart pointed at the built binary, scores as
/// hardened (exposure <= 4.0) and has an agent's sandbox.
#[test]
fn every_systemd_unit_verifies_and_is_hardened() {
    let Some(sa) = common::need_tool("systemd-analyze") else {
        return;
    };
    let units = units();
    assert!(!units.is_empty());
    for u in units {
        let text = std::fs::read_to_string(&u).unwrap();
        let installed = "ExecStart=/usr/bin/iowhy ";
        assert!(
            text.contains(installed),
            "{}: runs {installed}",
            u.display()
        );
        for want in [
            "ProtectSystem=strict",
            "NoNewPrivileges=yes",
            "Restart=always",
            "Nice=",
            "IOSchedulingClass=",
            "MemoryMax=",
            "EnvironmentFile=-/etc/default/",
        ] {
            assert!(text.contains(want), "{}: lacks {want}", u.display());
        }
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(u.file_name().unwrap());
        std::fs::write(
            &copy,
            text.replace(installed, &format!("ExecStart={} ", common::bin())),
        )
        .unwrap();
        let (ok, out, err) = sh(Command::new(&sa).arg("verify").arg(&copy));
        assert!(
            ok && err.trim().is_empty(),
            "verify {}:\n{out}{err}",
            u.display()
        );
        let (ok, out, err) = sh(Command::new(&sa)
            .args(["security", "--offline=yes", "--threshold=40"])
            .arg(&copy));
        assert!(ok, "security {}:\n{out}{err}", u.display());
    }
}

/// The .deb that `cargo deb` built (.ci/run builds it before the tests), if any.
fn deb() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("IOWHY_DEB") {
        return Some(PathBuf::from(p));
    }
    // CARGO_BIN_EXE_iowhy is TARGET/debug/iowhy; cargo deb writes TARGET/debian/.
    let target = Path::new(common::bin()).parent()?.parent()?;
    let want = format!("iowhy_{}-1_", env!("CARGO_PKG_VERSION"));
    std::fs::read_dir(target.join("debian"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&want))
                && p.extension().is_some_and(|x| x == "deb")
        })
}

fn need_deb() -> Option<PathBuf> {
    let d = deb();
    if d.is_none() {
        common::skip("no .deb: run `cargo deb` (cargo install cargo-deb; .ci/run does both)");
    }
    d
}

#[test]
fn deb_holds_the_binary_pages_completions_units_and_docs() {
    let (Some(deb), Some(dpkg)) = (need_deb(), common::need_tool("dpkg-deb")) else {
        return;
    };
    let (ok, listing, err) = sh(Command::new(&dpkg).arg("-c").arg(&deb));
    assert!(ok, "dpkg-deb -c: {err}");
    let paths: BTreeSet<String> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect();
    let mut want: Vec<String> = [
        "/usr/bin/iowhy",
        "/usr/share/bash-completion/completions/iowhy",
        "/usr/share/zsh/vendor-completions/_iowhy",
        "/usr/share/fish/vendor_completions.d/iowhy.fish",
        "/etc/default/iowhy-serve",
        "/etc/default/iowhy-record",
        "/usr/share/doc/iowhy/copyright",
        "/usr/share/doc/iowhy/changelog.Debian.gz",
        "/usr/share/doc/iowhy/CHANGELOG.md",
    ]
    .map(String::from)
    .to_vec();
    for p in files_in(&docs().join("man")) {
        want.push(format!("/usr/share/man/man1/{p}.gz"));
    }
    for u in units() {
        let name = u.file_name().unwrap().to_string_lossy().into_owned();
        let unit =
            ["/lib/systemd/system/", "/usr/lib/systemd/system/"].map(|d| format!("{d}{name}"));
        assert!(
            unit.iter().any(|u| paths.contains(u)),
            "{name} not in the package:\n{listing}"
        );
    }
    for w in &want {
        assert!(paths.contains(w), "{w} not in the package:\n{listing}");
    }
    let (_, info, _) = sh(Command::new(&dpkg).args(["-f"]).arg(&deb).arg("Package"));
    assert_eq!(info.trim(), "iowhy");
    // /etc/default/iowhy-serve is the operator's: an upgrade must not overwrite it.
    let control = tempfile::tempdir().unwrap();
    let (ok, _, err) = sh(Command::new(&dpkg).arg("-e").arg(&deb).arg(control.path()));
    assert!(ok, "dpkg-deb -e: {err}");
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap_or_default();
    assert!(
        conffiles.lines().any(|l| l == "/etc/default/iowhy-serve"),
        "conffiles:\n{conffiles}"
    );
}

#[test]
fn deb_binary_runs() {
    let (Some(deb), Some(dpkg)) = (need_deb(), common::need_tool("dpkg-deb")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = sh(Command::new(&dpkg).arg("-x").arg(&deb).arg(dir.path()));
    assert!(ok, "dpkg-deb -x: {err}");
    let bin = dir.path().join("usr/bin/iowhy");
    let (ok, out, err) = sh(Command::new(&bin).arg("--version"));
    assert!(ok, "{err}");
    assert!(
        out.starts_with(&format!("iowhy {}\n", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(
        out.contains("\nrevision: ") && out.contains("\ntracing layers: "),
        "{out}"
    );
    let (ok, out, err) = sh(Command::new(&bin).args(["diagnose", "--duration", "1"]));
    assert!(
        ok,
        "iowhy diagnose --duration 1 from the package:\n{out}{err}"
    );
    assert!(!out.trim().is_empty());
}

#[test]
fn deb_passes_lintian() {
    let (Some(deb), Some(lintian)) = (need_deb(), common::need_tool("lintian")) else {
        return;
    };
    // Errors and warnings fail; the maintainer address is a placeholder.
    let (_, out, err) = sh(Command::new(lintian)
        .args(["--no-tag-display-limit", "--suppress-tags"])
        .arg(LINTIAN_ACCEPTED.join(","))
        .arg(&deb));
    eprintln!("{out}{err}");
    let bad: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .collect();
    assert!(bad.is_empty(), "lintian:\n{}", bad.join("\n"));
}

/// Tags that a package built outside Debian's archive carries by construction.
/// The project has no mail address yet: Maintainer is a placeholder at localhost.
/// (The package's own lintian-overrides cover the rest.)
const LINTIAN_ACCEPTED: &[&str] = &["bogus-mail-host", "bogus-mail-host-in-debian-changelog"];

/// The DaemonSet runs the image deploy/Containerfile builds, tagged with this version
/// (never "latest"); the image's entrypoint is iowhy, so the DaemonSet's args start at
/// the subcommand.
#[test]
fn daemonset_runs_the_containerfile_image_at_this_version() {
    let root = common::root_dir();
    let ds = std::fs::read_to_string(root.join("deploy/kubernetes/daemonset.yaml")).unwrap();
    let image = ds
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: "))
        .expect("an image line");
    assert_eq!(
        image,
        format!("ghcr.io/iowhy/iowhy:{}", env!("CARGO_PKG_VERSION"))
    );
    let cf = std::fs::read_to_string(root.join("deploy/Containerfile")).unwrap();
    assert!(cf.contains("ENTRYPOINT [\"/usr/bin/iowhy\"]"), "entrypoint");
    for from in cf.lines().filter(|l| l.starts_with("FROM ")) {
        assert!(!from.contains(":latest"), "unpinned base: {from}");
    }
    assert!(
        cf.contains("-t ghcr.io/iowhy/iowhy:"),
        "the build command names the image"
    );
    // The context leaves out the fixture trees (links into /proc) and the host's build.
    let ignore = std::fs::read_to_string(root.join(".containerignore")).unwrap();
    for p in ["target", "tests", ".git"] {
        assert!(ignore.lines().any(|l| l == p), ".containerignore lacks {p}");
    }
}
