//! A throw-away Prometheus for tests: Debian's binary (on PATH or where `.ci/run` unpacks
//! it), a temporary TSDB, 127.0.0.1 on a free port, scraping the given targets every
//! second; killed by its PID when dropped. Queries go through the HTTP API.
//!
//! ```ignore
//! let Some(prom) = Prometheus::start(&[Scrape::new("iowhy", &addr)]) else { return };
//! let up = prom.wait_for("up{job=\"iowhy\"} == 1", Duration::from_secs(20));
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Reap;

/// One series of a query's answer: its labels (with `__name__` when the result keeps it)
/// and its value.
pub type Series = (BTreeMap<String, String>, f64);

/// One scrape target: its job name, `host:port`, and optionally the `instance` label to
/// give it (so that two targets can stand for one node, as node_exporter and iowhy do).
#[derive(Clone, Debug)]
pub struct Scrape {
    pub job: String,
    pub target: String,
    pub instance: Option<String>,
    pub path: String,
}

impl Scrape {
    pub fn new(job: &str, target: &str) -> Scrape {
        Scrape {
            job: job.into(),
            target: target.into(),
            instance: None,
            path: "/metrics".into(),
        }
    }

    pub fn instance(mut self, instance: &str) -> Scrape {
        self.instance = Some(instance.into());
        self
    }
}

pub struct Prometheus {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// `http://127.0.0.1:PORT`, as promtool takes it.
    pub url: String,
    pub promtool: Option<PathBuf>,
    child: Reap,
    dir: tempfile::TempDir,
}

/// The scrape config: 1 s interval, a sample limit so that a runaway exporter fails the
/// scrape (as it would in a real fleet) instead of filling the test's disk.
pub fn config(scrapes: &[Scrape]) -> String {
    let mut s = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
    );
    if scrapes.is_empty() {
        s.push_str("  []\n");
    }
    for sc in scrapes {
        s.push_str(&format!(
            "  - job_name: {job:?}\n    honor_labels: true\n    sample_limit: 20000\n    metrics_path: {path:?}\n    static_configs:\n      - targets: [{target:?}]\n",
            job = sc.job,
            path = sc.path,
            target = sc.target
        ));
        if let Some(i) = &sc.instance {
            s.push_str(&format!("        labels:\n          instance: {i:?}\n"));
        }
    }
    s
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

impl Prometheus {
    /// Start one scraping `scrapes` (none: an empty scrape config), ready to answer
    /// queries; None after a skip when the binary is missing.
    pub fn start(scrapes: &[Scrape]) -> Option<Prometheus> {
        let bin = super::need_tool("prometheus")?;
        Some(Prometheus::start_with(&bin, scrapes))
    }

    pub fn start_with(bin: &Path, scrapes: &[Scrape]) -> Prometheus {
        let mut dir = tempfile::Builder::new()
            .prefix("iowhy-prometheus-")
            .tempdir()
            .expect("temp dir");
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config(scrapes)).expect("write prometheus.yml");
        // Another process may take the port between our probe and Prometheus' bind: try
        // a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let log = dir.path().join("prometheus.log");
            let child = Command::new(bin)
                .arg(format!("--config.file={}", cfg.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
            let mut p = Prometheus {
                url: format!("http://{addr}"),
                addr,
                promtool: super::find_tool("promtool"),
                child: Reap(child),
                dir,
            };
            if p.wait_ready(Duration::from_secs(30)) {
                return p;
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            drop(p.child);
            dir = p.dir;
        }
        panic!("prometheus did not become ready; its log:\n{last_log}");
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http(&self.addr, "GET", "/-/ready", "").is_ok_and(|(code, _)| code == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Its log so far (for a failure message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query through /api/v1/query: the series of a vector, or one unlabelled
    /// series for a scalar; Err with Prometheus' message when it refuses the query.
    pub fn query(&self, expr: &str) -> Result<Vec<Series>, String> {
        let body = format!("query={}", urlencode(expr));
        let (code, text) = http(&self.addr, "POST", "/api/v1/query", &body)?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("HTTP {code}: not JSON ({e}): {text}"))?;
        if v["status"] != "success" {
            return Err(format!(
                "HTTP {code}: {}: {}",
                v["errorType"].as_str().unwrap_or("?"),
                v["error"].as_str().unwrap_or(&text)
            ));
        }
        let data = &v["data"];
        let value = |pair: &serde_json::Value| -> f64 {
            pair[1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN)
        };
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    let labels = r["metric"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                                .collect()
                        })
                        .unwrap_or_default();
                    (labels, value(&r["value"]))
                })
                .collect()),
            Some("scalar") => Ok(vec![(BTreeMap::new(), value(&data["result"]))]),
            other => Err(format!("unexpected result type {other:?}: {text}")),
        }
    }

    /// Poll `expr` until it returns at least one series; panics with the last answer and
    /// Prometheus' log after `timeout`.
    pub fn wait_for(&self, expr: &str, timeout: Duration) -> Vec<Series> {
        let end = Instant::now() + timeout;
        let mut last = Ok(Vec::new());
        while Instant::now() < end {
            last = self.query(expr);
            if let Ok(v) = &last {
                if !v.is_empty() {
                    return v.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "{expr} returned nothing within {timeout:?}: last answer {last:?}\nprometheus log:\n{}",
            self.log()
        );
    }

    /// `promtool query instant URL expr`: Ok(stdout), or Err(stderr) when promtool exits
    /// non-zero (a parse error, an unknown function, a type error).
    pub fn promtool_query(&self, expr: &str) -> Result<String, String> {
        let promtool = self.promtool.as_ref().ok_or("promtool not found")?;
        let out = Command::new(promtool)
            .args(["query", "instant", &self.url, expr])
            .output()
            .map_err(|e| format!("run promtool: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "promtool exited {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// One HTTP/1.0 request on loopback (the answer is not chunked, the connection closes):
/// (status, body).
pub fn http(addr: &str, method: &str, path: &str, form: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let req = if method == "POST" {
        format!(
            "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
    } else {
        format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")
    };
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header in {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    Ok((code, body.to_string()))
}

/// application/x-www-form-urlencoded: everything but unreserved characters as %XX.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A scrape target on 127.0.0.1 that answers every request with `body(n)`, n counting
/// the requests from 1: a stand-in exporter. Stopped (and its thread joined) on drop.
pub struct TextTarget {
    pub addr: String,
    pub requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TextTarget {
    pub fn start(body: impl Fn(u64) -> String + Send + 'static) -> TextTarget {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = l.local_addr().expect("local addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (st, rq) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = conn else { continue };
                c.set_read_timeout(Some(Duration::from_secs(5))).ok();
                // Read the request head (a GET has no body); its content does not matter.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let n = rq.fetch_add(1, Ordering::SeqCst) + 1;
                let text = body(n);
                let _ = c.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    )
                    .as_bytes(),
                );
            }
        });
        TextTarget {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TextTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A text exposition whose counters grow: every sample of a counter family (`_total`)
/// and of a histogram (`_bucket`, `_sum`, `_count`) is multiplied by `n`, gauges stay.
/// Buckets scaled alike stay cumulative, and counters stay monotonic across scrapes.
pub fn grow_counters(exposition: &str, n: u64) -> String {
    let mut out = String::with_capacity(exposition.len());
    for line in exposition.lines() {
        let scaled = (|| {
            if line.starts_with('#') {
                return None;
            }
            let name_end = line.find(['{', ' '])?;
            let name = &line[..name_end];
            let grows = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name.ends_with(s));
            if !grows {
                return None;
            }
            let (series, value) = line.rsplit_once(' ')?;
            let v: f64 = value.parse().ok()?;
            Some(format!("{series} {}", v * n as f64))
        })();
        out.push_str(scaled.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}
