//! The interactive `iowhy top` in a real terminal (tmux, headless): a lab writer appears
//! within two refreshes, ←/→ change the sort, / filters, Enter shows its file, q exits 0
//! and leaves the terminal as it was; at 80x24 columns drop by priority; SIGTERM and a
//! panic give the terminal back too. Each test runs its own tmux server (`-L`), killed
//! by name when the test ends; the only processes signalled are the lab and the iowhy
//! this test started.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, bin, live_lock, live_ready};

/// A tmux server of this test alone, killed on drop.
struct Tmux {
    socket: String,
    /// The server's socket file, removed with the server.
    path: Option<String>,
}

impl Tmux {
    /// A session running the shell script `cmd` in a `w`x`h` window.
    fn start(name: &str, w: u16, h: u16, cmd: &str) -> Tmux {
        let mut t = Tmux {
            socket: format!("iowhy-test-{name}-{}", std::process::id()),
            path: None,
        };
        let ok = t
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "top",
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                "sh",
            ])
            .status()
            .expect("tmux")
            .success();
        assert!(ok, "tmux new-session");
        t.path = Some(t.show("#{socket_path}"));
        t.run(&["respawn-pane", "-k", "-t", "top", cmd]);
        t
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().expect("tmux");
        assert!(o.status.success(), "tmux {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", "top", k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn show(&self, fmt: &str) -> String {
        self.run(&["display-message", "-p", "-t", "top", fmt])
            .trim()
            .to_string()
    }

    /// Wait until the screen satisfies `f`, at most `d`; the last screen either way.
    fn wait_for(&self, d: Duration, f: impl Fn(&str) -> bool) -> (bool, String) {
        let end = Instant::now() + d;
        loop {
            let s = self.screen();
            if f(&s) {
                return (true, s);
            }
            if Instant::now() > end {
                return (false, s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// iowhy ended (the shell after it printed `EXIT=status`): its status, once the
    /// terminal is seen as it was (no alternate screen, the cursor shown). The shell stays:
    /// a dead pane would not say what iowhy left.
    fn wait_exit(&self) -> String {
        let (ok, s) = self.wait_for(Duration::from_secs(10), |s| s.contains("EXIT="));
        assert!(ok, "iowhy top did not exit:\n{s}");
        assert_eq!(
            self.show("#{alternate_on}"),
            "0",
            "the alternate screen is still on"
        );
        assert_eq!(self.show("#{cursor_flag}"), "1", "the cursor is hidden");
        let at = s.find("EXIT=").unwrap() + 5;
        s[at..].split_whitespace().next().unwrap_or("").to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `iowhy top ARGS` in the pane, its pid written to `pidfile` (the inner shell execs it);
/// then its status, and a shell that keeps the pane (and its terminal state) alive.
fn top_cmd(env: &str, args: &str, pidfile: &std::path::Path) -> String {
    format!(
        "sh -c '{env} echo $$ > {}; exec {} top {args}'; echo EXIT=$?; exec sleep 600",
        pidfile.display(),
        bin()
    )
}

fn pidfile(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("iowhy-live-top-{name}-{}.pid", std::process::id()))
}

#[test]
fn a_lab_writer_appears_and_the_keys_sort_filter_detail_and_quit() {
    if !live_ready(&["tmux"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["fsync-logger", "--duration", "60s"]);
    let writer = lab.event.pids[0].to_string();
    let file = lab.event.paths[0].clone();
    let pf = pidfile("keys");
    let t = Tmux::start("keys", 120, 40, &top_cmd("", "-d 2", &pf));
    // Two refreshes of 2 s, and a second to start.
    let row = |s: &str| {
        s.lines()
            .any(|l| l.split_whitespace().next() == Some(writer.as_str()))
    };
    let (ok, s) = t.wait_for(Duration::from_secs(5), row);
    assert!(ok, "the lab writer {writer} is not on the screen:\n{s}");
    assert!(s.lines().next().unwrap().contains("sort:DISK WRITE"), "{s}");
    // While it runs: the alternate screen, no cursor (what q must undo).
    assert_eq!(t.show("#{alternate_on} #{cursor_flag}"), "1 0");
    t.keys(&["Left"]);
    let (ok, s) = t.wait_for(Duration::from_secs(2), |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains("sort:DISK READ"))
    });
    assert!(ok, "← did not change the sort:\n{s}");
    t.keys(&["Right", "/", "lab-fsync", "Enter"]);
    let (ok, s) = t.wait_for(Duration::from_secs(2), |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains("filter:lab-fsync"))
    });
    assert!(ok, "no filter in the header:\n{s}");
    let table: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.contains("COMMAND"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(!table.is_empty(), "{s}");
    // The filter matches the writers' comm (lab-fsync-log): only the lab's processes.
    let lab_pids: Vec<String> = lab.event.pids.iter().map(|p| p.to_string()).collect();
    assert!(
        table.iter().all(|l| l
            .split_whitespace()
            .next()
            .is_some_and(|p| lab_pids.iter().any(|x| x == p))),
        "rows that do not match the filter:\n{s}"
    );
    t.keys(&["Enter"]);
    let (ok, s) = t.wait_for(Duration::from_secs(2), |s| {
        s.contains("detail (Esc closes)") && s.contains(&file)
    });
    assert!(ok, "Enter did not show the writer's file {file}:\n{s}");
    t.keys(&["q"]);
    assert_eq!(t.wait_exit(), "0");
    let _ = std::fs::remove_file(&pf);
    lab.stop();
}

#[test]
fn at_80x24_columns_drop_and_sigterm_restores_the_terminal() {
    if !live_ready(&["tmux"]) {
        return;
    }
    let _l = live_lock();
    let lab = Lab::start(&["fsync-logger", "--duration", "60s"]);
    let writer = lab.event.pids[0].to_string();
    let pf = pidfile("term");
    let t = Tmux::start("term", 80, 24, &top_cmd("", "-d 1", &pf));
    let (ok, s) = t.wait_for(Duration::from_secs(4), |s| {
        s.lines()
            .any(|l| l.split_whitespace().next() == Some(writer.as_str()))
    });
    assert!(ok, "the lab writer {writer} is not on the screen:\n{s}");
    let head = s
        .lines()
        .find(|l| l.contains("PID") && l.contains("COMMAND"))
        .expect("the table header");
    assert!(
        head.contains("TOP-FILE") && head.contains("DISK WRITE"),
        "{head}"
    );
    assert!(!head.contains("USER"), "{head}");
    assert!(s.lines().all(|l| l.chars().count() <= 80), "{s}");
    // A resize redraws at the new size.
    t.run(&["resize-window", "-t", "top", "-x", "120", "-y", "40"]);
    let (ok, s) = t.wait_for(Duration::from_secs(3), |s| {
        s.lines()
            .any(|l| l.contains("USER") && l.contains("COMMAND"))
    });
    assert!(ok, "no USER column after the resize to 120x40:\n{s}");
    let pid: i32 = std::fs::read_to_string(&pf)
        .expect("pid file")
        .trim()
        .parse()
        .unwrap();
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(t.wait_exit(), "0");
    let _ = std::fs::remove_file(&pf);
    lab.stop();
}

#[test]
fn a_panic_restores_the_terminal_and_its_message_is_seen() {
    if !live_ready(&["tmux"]) {
        return;
    }
    let _l = live_lock();
    let pf = pidfile("panic");
    let cmd = top_cmd("export IOWHY_TEST_PANIC_KEY=1;", "-d 1", &pf);
    let t = Tmux::start("panic", 100, 30, &cmd);
    let (ok, s) = t.wait_for(Duration::from_secs(4), |s| s.contains("PID"));
    assert!(ok, "{s}");
    t.keys(&["!"]);
    assert_eq!(t.wait_exit(), "101", "a panic's exit status");
    let s = t.screen();
    assert!(s.contains("a panic on request"), "the panic message:\n{s}");
    let _ = std::fs::remove_file(&pf);
}
