//! A GET-only HTTP/1.1 server for `/metrics` and friends, on `std::net`.
//!
//! Hand-written rather than a crate: an exporter needs GET, a header size cap, a read
//! deadline, a concurrency limit and `Connection: close`, nothing more. hyper/axum would
//! bring an async runtime into a tool that must stay small on a sick machine, and
//! tiny_http (the synchronous choice of Rust exporters) has had no release since 2022
//! (research/fleet.md §4). Every connection has deadlines; a client that never sends its
//! request costs one thread for `READ_TIMEOUT`, and there are at most `max_requests`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The most a request line plus headers may take.
const MAX_HEAD: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bodies smaller than this are sent as they are even when gzip is accepted.
const GZIP_MIN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    pub accept_gzip: bool,
}

impl Request {
    /// The value of a query parameter (`format=markdown`), undecoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Parse a request head (up to the empty line).
fn parse_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?;
    if !first.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut accept_gzip = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("accept-encoding") {
                accept_gzip |= v.split(',').any(|e| {
                    let mut parts = e.trim().split(';');
                    let enc = parts.next().unwrap_or("").trim();
                    let q0 = parts.any(|p| p.trim().replace(' ', "") == "q=0");
                    enc.eq_ignore_ascii_case("gzip") && !q0
                });
            }
        }
    }
    Some(Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        accept_gzip,
    })
}

/// Read the head of a request: `Err(status)` when it is too big or malformed.
fn read_head(stream: &TcpStream) -> Result<Request, u16> {
    let mut r = BufReader::new(stream.take(MAX_HEAD as u64 + 1));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return Err(400),
            Ok(_) => {}
            Err(_) => return Err(400),
        }
        head.push_str(&line);
        if head.len() > MAX_HEAD {
            return Err(431);
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
    }
    let head = head.replace("\r\n", "\n").replace('\n', "\r\n");
    parse_head(head.trim_end()).ok_or(400)
}

fn write_response(mut stream: &TcpStream, req: Option<&Request>, resp: Response) {
    let head_only = req.is_some_and(|r| r.method == "HEAD");
    let (body, gz) = match req {
        Some(r) if r.accept_gzip && resp.body.len() >= GZIP_MIN => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            match e.write_all(&resp.body).and_then(|()| e.finish()) {
                Ok(b) => (b, true),
                Err(_) => (resp.body, false),
            }
        }
        _ => (resp.body, false),
    };
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        body.len()
    );
    if gz {
        head.push_str("Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
    }
    if resp.status == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    if !head_only {
        let _ = stream.write_all(&body);
    }
    let _ = stream.flush();
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

fn serve_one(stream: TcpStream, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    match read_head(&stream) {
        Ok(req) if req.method == "GET" || req.method == "HEAD" => {
            let resp = handler(&req);
            write_response(&stream, Some(&req), resp);
        }
        Ok(req) => write_response(
            &stream,
            Some(&req),
            Response::text(405, "only GET and HEAD\n"),
        ),
        Err(status) => write_response(&stream, None, Response::text(status, "bad request\n")),
    }
}

/// Bind every address first (so a bad one fails before anything is served).
pub fn bind(addrs: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    addrs
        .iter()
        .map(|a| {
            TcpListener::bind(a).map_err(|e| std::io::Error::new(e.kind(), format!("{a}: {e}")))
        })
        .collect()
}

/// Serve on the listeners until `stop` is set, at most `max_requests` at a time (more get
/// 503 at once, as node_exporter's --web.max-requests does).
pub fn run(
    listeners: Vec<TcpListener>,
    handler: Handler,
    max_requests: usize,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for l in listeners {
        let (handler, active, stop) = (handler.clone(), active.clone(), stop.clone());
        // Non-blocking accept, polled, so that a stop request ends the loop.
        let _ = l.set_nonblocking(true);
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let stream = match l.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    Err(_) => {
                        // EMFILE and friends: back off rather than spin.
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                };
                let _ = stream.set_nonblocking(false);
                if active.fetch_add(1, Ordering::AcqRel) >= max_requests {
                    active.fetch_sub(1, Ordering::AcqRel);
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                    write_response(&stream, None, Response::text(503, "too many requests\n"));
                    continue;
                }
                let (h, a) = (handler.clone(), active.clone());
                let spawned =
                    std::thread::Builder::new()
                        .name("iowhy-http".into())
                        .spawn(move || {
                            serve_one(stream, &h);
                            a.fetch_sub(1, Ordering::AcqRel);
                        });
                if spawned.is_err() {
                    active.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_with_their_query_and_encoding() {
        let r = parse_head(
            "GET /diagnosis?format=markdown&x=1 HTTP/1.1\r\nHost: a\r\nAccept-Encoding: deflate, gzip;q=0.8",
        )
        .unwrap();
        assert_eq!(
            (r.path.as_str(), r.param("format")),
            ("/diagnosis", Some("markdown"))
        );
        assert!(r.accept_gzip);
        let r = parse_head("GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip;q=0").unwrap();
        assert!(!r.accept_gzip, "q=0 refuses gzip");
        assert!(parse_head("GET /metrics").is_none());
        assert!(parse_head("garbage").is_none());
    }

    fn get(addr: SocketAddr, raw: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn serves_answers_refuses_and_caps_heads() {
        let ls = bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let addr = ls[0].local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let h: Handler = Arc::new(|r: &Request| {
            if r.path == "/big" {
                Response::text(200, "x".repeat(5000))
            } else {
                Response::text(200, format!("hello {}\n", r.path))
            }
        });
        let st = stop.clone();
        let t = std::thread::spawn(move || run(ls, h, 4, st));
        let ok = get(addr, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Connection: close\r\n") && ok.ends_with("hello /a\n"),
            "{ok}"
        );
        let post = get(addr, "POST /a HTTP/1.1\r\n\r\n");
        assert!(
            post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD"),
            "{post}"
        );
        let huge = format!("GET /a HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(10_000));
        assert!(get(addr, &huge).starts_with("HTTP/1.1 431 "));
        let gz = get(addr, "GET /big HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n");
        assert!(gz.contains("Content-Encoding: gzip\r\n"), "{gz}");
        let head = get(addr, "HEAD /big HTTP/1.1\r\n\r\n");
        assert!(
            head.contains("Content-Length: 5000\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }

    #[test]
    fn past_max_requests_a_request_gets_503_at_once() {
        let ls = bind(&["127.0.0.1:0".parse().unwrap()]).unwrap();
        let addr = ls[0].local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let h: Handler = Arc::new(|_: &Request| Response::text(200, "ok\n"));
        let st = stop.clone();
        let t = std::thread::spawn(move || run(ls, h, 1, st));
        // A client that connects and says nothing holds the only slot.
        let _silent = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let busy = get(addr, "GET /a HTTP/1.1\r\n\r\n");
        assert!(busy.starts_with("HTTP/1.1 503 "), "{busy}");
        assert!(started.elapsed() < Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }
}
