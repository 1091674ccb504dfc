//! Shell completions (clap_complete) for bash, zsh and fish, with one addition clap has
//! no completer for: an argument named PID completes to the live processes, with their
//! comm where the shell shows descriptions (zsh, fish; bash lists bare pids, and a word
//! that is not a number completes to the pids whose comm starts with it).

use std::io::Write;

use clap::{Command, ValueEnum};
use clap_complete::Shell as ClapShell;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// Where a package installs the script (Debian's paths).
    pub fn install_path(self) -> &'static str {
        match self {
            Shell::Bash => "usr/share/bash-completion/completions/iowhy",
            Shell::Zsh => "usr/share/zsh/vendor-completions/_iowhy",
            Shell::Fish => "usr/share/fish/vendor_completions.d/iowhy.fish",
        }
    }

    /// The name of the checked-in copy in docs/completions.
    pub fn file_name(self) -> &'static str {
        match self {
            Shell::Bash => "iowhy.bash",
            Shell::Zsh => "_iowhy",
            Shell::Fish => "iowhy.fish",
        }
    }
}

/// A PID argument of a subcommand: positional (its flag is None) or an option.
struct PidArg {
    sub: String,
    long: Option<String>,
    short: Option<char>,
}

fn pid_args(cli: &Command) -> Vec<PidArg> {
    let mut out = Vec::new();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        for a in sub.get_arguments() {
            let is_pid = a
                .get_value_names()
                .is_some_and(|v| v.iter().any(|n| n.as_str() == "PID"));
            if is_pid && !a.is_hide_set() {
                out.push(PidArg {
                    sub: sub.get_name().to_string(),
                    long: a.get_long().map(str::to_string),
                    short: a.get_short(),
                });
            }
        }
    }
    out
}

/// The completion script for `shell`.
pub fn generate(cli: Command, shell: Shell) -> String {
    let mut cli = cli;
    cli.build();
    let pids = pid_args(&cli);
    let subs: Vec<String> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    let mut buf: Vec<u8> = Vec::new();
    let clap_shell = match shell {
        Shell::Bash => ClapShell::Bash,
        Shell::Zsh => ClapShell::Zsh,
        Shell::Fish => ClapShell::Fish,
    };
    clap_complete::generate(clap_shell, &mut cli, "iowhy", &mut buf);
    let script = String::from_utf8_lossy(&buf).into_owned();
    match shell {
        Shell::Bash => bash(script, &pids, &subs),
        Shell::Zsh => zsh(script, &pids),
        Shell::Fish => fish(script, &pids),
    }
}

fn bash(script: String, pids: &[PidArg], subs: &[String]) -> String {
    let positional: Vec<&str> = pids
        .iter()
        .filter(|p| p.long.is_none())
        .map(|p| p.sub.as_str())
        .collect();
    let mut flags: Vec<String> = Vec::new();
    for p in pids {
        if let Some(l) = &p.long {
            flags.push(format!("{}:--{l}", p.sub));
        }
        if let (Some(s), Some(_)) = (p.short, &p.long) {
            flags.push(format!("{}:-{s}", p.sub));
        }
    }
    // clap's script registers `_iowhy`; registering ours after it replaces that, and
    // ours calls `_iowhy` for everything but a PID.
    let mut s = script;
    s.push_str(&format!(
        r#"

# Added by iowhy: PID arguments complete to live processes (a number: the pids that
# start with it; a name: the pids whose comm starts with it).
_iowhy_pids() {{
    local cur=$1 d p comm
    COMPREPLY=()
    for d in /proc/[0-9]*; do
        p=${{d#/proc/}}
        if [[ $cur == "" || $cur =~ ^[0-9]+$ ]]; then
            [[ $p == "$cur"* ]] && COMPREPLY+=("$p")
        else
            read -r comm 2>/dev/null <"$d/comm" || continue
            [[ $comm == "$cur"* ]] && COMPREPLY+=("$p")
        fi
    done
}}

_iowhy_with_pids() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local positional=" {positional} " flags=" {flags} " sub="" w i seen=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${{COMP_WORDS[i]}}
        if [[ -z $sub ]]; then
            case " $(_iowhy_subcommands) " in *" $w "*) sub=$w ;; esac
        elif [[ $w =~ ^[0-9]+$ && ${{COMP_WORDS[i-1]}} != -* ]]; then
            seen=1
        fi
    done
    if [[ -n $sub && $flags == *" $sub:$prev "* ]]; then
        _iowhy_pids "$cur"
        return 0
    fi
    if [[ -n $sub && $seen == 0 && $cur != -* && $positional == *" $sub "* ]]; then
        _iowhy_pids "$cur"
        [[ ${{#COMPREPLY[@]}} -gt 0 ]] && return 0
    fi
    _iowhy "$@"
}}

_iowhy_subcommands() {{
    echo "{subs}"
}}

if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _iowhy_with_pids -o nosort -o bashdefault -o default iowhy
else
    complete -F _iowhy_with_pids -o bashdefault -o default iowhy
fi
"#,
        positional = positional.join(" "),
        flags = flags.join(" "),
        subs = subs.join(" "),
    ));
    s
}

/// zsh: clap leaves a PID to `_default` (file names); zsh's own `_pids` lists the
/// processes with their command lines.
fn zsh(script: String, _pids: &[PidArg]) -> String {
    script
        .lines()
        .map(|l| {
            let positional = l.starts_with("':pid:") || l.starts_with("':pid -- ");
            if (positional || l.contains("]:PID:_default'")) && l.contains(":_default'") {
                l.replacen(":_default'", ":_pids'", 1)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// fish: `__fish_complete_pids` prints each pid with its comm as the description.
fn fish(script: String, pids: &[PidArg]) -> String {
    let mut out: Vec<String> = Vec::new();
    for l in script.lines() {
        let flag = pids.iter().find(|p| {
            p.long.as_ref().is_some_and(|long| {
                l.starts_with(&format!(
                    "complete -c iowhy -n \"__fish_iowhy_using_subcommand {}\"",
                    p.sub
                )) && l.contains(&format!(" -l {long} "))
            })
        });
        match flag {
            Some(_) if l.ends_with(" -r") => out.push(format!(
                "{} -x -a \"(__fish_complete_pids)\"",
                l.trim_end_matches(" -r")
            )),
            _ => out.push(l.to_string()),
        }
    }
    out.push(String::new());
    out.push("# Added by iowhy: a positional PID completes to the live processes.".into());
    for p in pids.iter().filter(|p| p.long.is_none()) {
        out.push(format!(
            "complete -c iowhy -n \"__fish_iowhy_using_subcommand {}\" -f -a \"(__fish_complete_pids)\"",
            p.sub
        ));
    }
    out.join("\n") + "\n"
}

/// Print the script for `shell` on stdout.
pub fn print(cli: Command, shell: Shell) -> anyhow::Result<()> {
    let s = generate(cli, shell);
    std::io::stdout().lock().write_all(s.as_bytes())?;
    Ok(())
}
