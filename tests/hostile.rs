//! Hostile names on the live machine. Anyone who can start a process or create a file
//! chooses its comm, argv and file names, and root reads them in iowhy's report. Here a
//! process of ours is named `a) (b\nc`, runs with a non-UTF-8 argv, and writes a file whose
//! name holds a newline, an ESC sequence and the byte 0xff; then every read-only command
//! runs in every format it has. Each must exit 0, print JSON that parses, and print text in
//! which the name can neither split a table row nor send an escape sequence to the
//! terminal. The JSON must give back the name's real bytes (`iowhy::hoststr::to_bytes`).

mod common;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

use common::{Reap, bin, live_lock, live_ready};
use iowhy::hoststr;

/// The comm we give our process (15 bytes at most: the kernel's TASK_COMM_LEN - 1).
const COMM: &[u8] = b"a) (b\nc";
/// The file name: a newline, a colour escape, and a byte that is not UTF-8.
const FILE: &[u8] = b"a\nb\x1b[31mRED\xff.log";
/// An argv word that is not UTF-8.
const ARG: &[u8] = b"--name=\xff\xfe-x";
/// The file name as text output shows it. The 0xff is `\xff` once the reader keeps bytes
/// (hoststr); a lossy reader turns it into U+FFFD first, which prints as itself.
const SHOWN: [&str; 2] = [r"a\nb\e[31mRED\xff.log", "a\\nb\\e[31mRED\u{FFFD}.log"];

/// Sets its comm with prctl(PR_SET_NAME) (exec -a sets only argv[0]), opens the file and
/// writes 64 KiB every 50 ms, back at offset 0 past 4 MiB, with an fsync each time.
const WRITER: &str = r#"
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(15, b"a) (b\nc", 0, 0, 0)
fd = os.open(os.fsencode(sys.argv[1]), os.O_WRONLY | os.O_CREAT, 0o600)
print("ready", flush=True)
while True:
    if os.lseek(fd, 0, os.SEEK_CUR) > (4 << 20):
        os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"x" * 65536)
    os.fsync(fd)
    time.sleep(0.05)
"#;

struct Hostile {
    proc_: Reap,
    dir: tempfile::TempDir,
    path: Vec<u8>,
}

impl Hostile {
    fn start() -> Hostile {
        let dir = tempfile::Builder::new()
            .prefix("iowhy-hostile-")
            .tempdir_in("/var/tmp")
            .expect("temp dir");
        let mut path = dir.path().as_os_str().as_bytes().to_vec();
        path.push(b'/');
        path.extend_from_slice(FILE);
        let mut child = Reap(
            Command::new("python3")
                .arg("-c")
                .arg(WRITER)
                .arg(OsStr::from_bytes(&path))
                .arg(OsStr::from_bytes(ARG))
                .stdout(Stdio::piped())
                .spawn()
                .expect("start python3"),
        );
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the writer did not start");
        let pid = child.id();
        let comm = std::fs::read(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(&comm[..comm.len() - 1], COMM, "prctl set the comm");
        Hostile {
            proc_: child,
            dir,
            path,
        }
    }

    fn pid(&self) -> String {
        self.proc_.id().to_string()
    }
}

fn run(args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run iowhy");
    assert!(
        out.status.success(),
        "iowhy {args:?} exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.stdout,
    )
}

/// Text output: no ESC byte at all, no line that starts with a piece of the split name,
/// and where the name appears it appears escaped, whole, on one line.
fn assert_safe_text(args: &[&str], text: &str, raw: &[u8]) {
    assert!(
        !raw.contains(&0x1b),
        "iowhy {args:?} printed a raw ESC:\n{text}"
    );
    for line in text.lines() {
        if line.contains("RED") {
            assert!(
                SHOWN.iter().any(|s| line.contains(s)),
                "iowhy {args:?}: the file name is not escaped whole on its line: {line:?}"
            );
        }
        assert!(
            !line.starts_with("b\u{1b}") && !line.starts_with("c pid") && !line.starts_with("c "),
            "iowhy {args:?}: a name split a line: {line:?}\n{text}"
        );
        // (The writer's own argv is a script that spells the comm with `\\n`: that line is
        // its command line, escaped, not the comm.)
        if line.contains("(b") && line.contains("a) ") && !line.contains("prctl(") {
            assert!(
                line.contains(r"a) (b\nc"),
                "iowhy {args:?}: the comm is not escaped: {line:?}"
            );
        }
    }
}

fn json(args: &[&str]) -> Vec<serde_json::Value> {
    let (text, _) = run(args);
    // iostat prints JSON Lines; the others one document.
    match serde_json::from_str(&text) {
        Ok(v) => vec![v],
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("iowhy {args:?}: bad JSON line {l:?}: {e}"))
            })
            .collect(),
    }
}

#[test]
fn every_read_only_command_survives_hostile_names() {
    if !live_ready(&["python3"]) {
        return;
    }
    let _lock = live_lock();
    let h = Hostile::start();
    let pid = h.pid();
    let dir = h.dir.path().to_str().unwrap().to_string();
    let text_runs: Vec<Vec<&str>> = vec![
        vec!["diagnose", "-d", "1s"],
        vec!["diagnose", "-d", "1s", "--format", "markdown"],
        vec!["top", "-b", "-n", "2", "-d", "0.5"],
        vec!["top", "-b", "-n", "2", "-d", "0.5", "--all"],
        vec!["files", &pid],
        vec!["space", &dir, "-d", "0.5s"],
        vec!["containers", "-d", "0.5s"],
        vec!["iostat", "1", "1"],
    ];
    for args in &text_runs {
        let (text, raw) = run(args);
        assert_safe_text(args, &text, &raw);
    }
    // The comm and the file are in the report where it lists them.
    let (files_text, _) = run(&["files", &pid]);
    assert!(files_text.contains(r"a) (b\nc"), "{files_text}");
    assert!(SHOWN.iter().any(|s| files_text.contains(s)), "{files_text}");
    let (space_text, _) = run(&["space", &dir, "-d", "0.5s"]);
    assert!(SHOWN.iter().any(|s| space_text.contains(s)), "{space_text}");

    let json_runs: Vec<Vec<&str>> = vec![
        vec!["diagnose", "-d", "1s", "--format", "json"],
        vec!["top", "-b", "-n", "2", "-d", "0.5", "-f", "json", "--all"],
        vec!["files", &pid, "-f", "json"],
        vec!["space", &dir, "-d", "0.5s", "-f", "json"],
        vec!["containers", "-d", "0.5s", "-f", "json"],
        vec!["iostat", "1", "1", "-f", "json"],
        vec!["snapshot", "--light"],
        vec!["snapshot"],
    ];
    for args in &json_runs {
        assert!(!json(args).is_empty(), "iowhy {args:?} printed no JSON");
    }
    let d = &json(&["diagnose", "-d", "1s", "--format", "json"])[0];
    assert_eq!(
        d["capabilities"]["path_encoding"],
        hoststr::PATH_ENCODING,
        "{}",
        d["capabilities"]
    );
}

/// The JSON gives back the real bytes of the path, the comm and the argv once the reader
/// encodes host strings losslessly (`hoststr::from_bytes`).
#[test]
fn json_gives_back_the_real_bytes_of_hostile_names() {
    if !live_ready(&["python3"]) {
        return;
    }
    let _lock = live_lock();
    let h = Hostile::start();
    let pid = h.pid();
    let v = &json(&["files", &pid, "-f", "json"])[0];
    assert_eq!(hoststr::to_bytes(v["comm"].as_str().unwrap()), COMM);
    let cmdline = hoststr::to_bytes(v["cmdline"].as_str().unwrap());
    assert!(
        cmdline.windows(ARG.len()).any(|w| w == ARG),
        "cmdline {:?} lacks the argv bytes {:?}",
        v["cmdline"],
        ARG
    );
    let paths: Vec<Vec<u8>> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .map(hoststr::to_bytes)
        .collect();
    assert!(
        paths.contains(&h.path),
        "no file with the real bytes {:?} in {:?}",
        String::from_utf8_lossy(&h.path),
        v["files"]
    );
    let (files_text, _) = run(&["files", &pid]);
    assert!(files_text.contains(SHOWN[0]), "{files_text}");
    let dir = h.dir.path().to_str().unwrap().to_string();
    let s = &json(&["space", &dir, "-d", "0.5s", "-f", "json"])[0];
    let text = s.to_string();
    assert!(
        !text.contains('\u{FFFD}'),
        "space JSON replaced a byte: {text}"
    );
}

/// rotate builds the rotated names from the file name as text: a name that is not UTF-8
/// is refused with one line, and nothing is renamed.
#[test]
fn rotate_refuses_a_name_that_is_not_utf8_and_renames_nothing() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"app\xff.log");
    let log = dir.path().join(name);
    std::fs::write(&log, b"line\n").unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("rotate")
        .arg(&log)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not UTF-8"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![name.to_os_string()]);
    assert_eq!(std::fs::read(&log).unwrap(), b"line\n");
}
