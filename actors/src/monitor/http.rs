//! `http` monitor: an HTTP server answers a `HEAD` request (as the product's
//! HTTP monitor does).
//!
//! Each check connects, sends `HEAD <uri> HTTP/1.0` (or HTTP/1.1 with `Host`
//! and `Connection: close`) and reads the status line. It fails on a
//! connection error, when the server closes without a status line, or when
//! the reply does not start with `HTTP/`; and, only when the URI is not `/`,
//! on a 4xx or 5xx status. For `/` any HTTP reply counts as Normal.

use std::cell::Cell;
use std::rc::Rc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

pub use understudy_brain::monitor::http::{HttpConfig, HttpVersion};

use super::tcp::{excerpt, Endpoint};
pub use super::tcp::{Failure, Fault, Step};
use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

/// Bytes of the reply read at most: the status line fits with room to spare.
const REPLY_BUF: usize = 1024;
/// Characters of a bad reply quoted in an error.
const QUOTE: usize = 60;

impl BuildProbe for HttpConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(HttpProbe::new(self)))
    }
}

/// Sends a `HEAD` request at each check.
pub struct HttpProbe {
    inner: Rc<Inner>,
}

struct Inner {
    endpoint: Endpoint,
    /// The whole request, built once.
    request: Box<[u8]>,
    uri: Box<str>,
}

impl HttpProbe {
    pub fn new(config: &HttpConfig) -> HttpProbe {
        let endpoint = Endpoint::new(&config.host, config.port);
        let host = config.host_header.clone().or_else(|| {
            (config.version == HttpVersion::Http11).then(|| {
                let host = endpoint.host_for_header();
                match endpoint.port() {
                    80 => host,
                    port => format!("{host}:{port}"),
                }
            })
        });
        let version = match config.version {
            HttpVersion::Http10 => "1.0",
            HttpVersion::Http11 => "1.1",
        };
        let mut request = format!("HEAD {} HTTP/{version}\r\n", config.uri);
        if let Some(host) = host {
            request.push_str(&format!("Host: {host}\r\n"));
        }
        if config.version == HttpVersion::Http11 {
            request.push_str("Connection: close\r\n");
        }
        request.push_str("\r\n");
        HttpProbe {
            inner: Rc::new(Inner {
                endpoint,
                request: request.into_bytes().into(),
                uri: config.uri.as_str().into(),
            }),
        }
    }
}

impl Probe for HttpProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let inner = self.inner.clone();
        Box::pin(async move { to_check(run(&inner, &Cell::new(Step::Resolve)).await) })
    }
}

impl HttpProbe {
    /// One check with its cause told apart (the Internet Server Agent's
    /// `clp_httpmon`); `step` follows the work, for a caller's timeout.
    pub async fn attempt(&self, step: &Cell<Step>) -> Result<(), Failure> {
        run(&self.inner, step).await
    }

    /// `host:port` of the server, for messages.
    pub fn target(&self) -> String {
        self.inner.endpoint.to_string()
    }
}

fn to_check(result: Result<(), Failure>) -> Check {
    match result {
        Ok(()) => Check::Normal,
        Err(f) => Check::Error(f.text),
    }
}

async fn run(inner: &Inner, step: &Cell<Step>) -> Result<(), Failure> {
    let mut stream = inner.endpoint.connect(step).await?;
    step.set(Step::Send);
    if let Err(e) = stream.write_all(&inner.request).await {
        return Err(Failure::io(
            Step::Send,
            &e,
            format!("send request to {}", inner.endpoint),
        ));
    }
    step.set(Step::Receive);
    let mut buf = [0u8; REPLY_BUF];
    let (len, closed) = read_status(&mut stream, &mut buf, &inner.endpoint).await?;
    let verdict = judge(&buf[..len], closed, &inner.uri);
    // Take in what else has arrived, so that closing does not reset the
    // connection for unread data.
    if !closed {
        for _ in 0..8 {
            match stream.try_read(&mut buf) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
    verdict
}

/// Reads into `buf` until the status line is complete, or the reply cannot
/// be HTTP: how many bytes came, and whether the server closed. Generic, so
/// that the fuzz target `http_status` can play the server from memory.
pub(crate) async fn read_status<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    endpoint: &impl std::fmt::Display,
) -> Result<(usize, bool), Failure> {
    let mut len = 0;
    let mut closed = false;
    while len < buf.len() && !buf[..len].contains(&b'\n') && could_be_http(&buf[..len]) {
        match stream.read(&mut buf[len..]).await {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => len += n,
            Err(e) => {
                return Err(Failure::io(
                    Step::Receive,
                    &e,
                    format!("read reply from {endpoint}"),
                ))
            }
        }
    }
    Ok((len, closed))
}

/// Whether `reply` may still turn into `HTTP/...`.
fn could_be_http(reply: &[u8]) -> bool {
    let n = reply.len().min(5);
    reply[..n] == b"HTTP/"[..n]
}

/// The verdict on the start of a reply. `closed`: the server closed the
/// connection after sending `reply`.
pub(crate) fn judge(reply: &[u8], closed: bool, uri: &str) -> Result<(), Failure> {
    let cut = || {
        Err(Failure::new(
            Fault::Closed,
            "connection closed before a status line",
        ))
    };
    if reply.is_empty() {
        return Err(Failure::new(
            Fault::Closed,
            "connection closed without a reply",
        ));
    }
    if !reply.starts_with(b"HTTP/") {
        return if closed && could_be_http(reply) {
            cut()
        } else {
            Err(Failure::new(
                Fault::BadReply,
                format!(
                    "reply does not start with HTTP/: \"{}\"",
                    excerpt(reply, QUOTE)
                ),
            ))
        };
    }
    let line = reply.split(|&b| b == b'\n').next().unwrap_or_default();
    let code = status_code(line);
    if closed && line.len() == reply.len() && code.is_none() {
        return cut();
    }
    if uri == "/" {
        return Ok(());
    }
    match code {
        None => Err(Failure::new(
            Fault::BadReply,
            format!("malformed status line \"{}\"", excerpt(line, QUOTE)),
        )),
        Some(code) if (400..600).contains(&code) => Err(Failure::new(
            Fault::Status(code),
            format!("status {code} for {uri}"),
        )),
        Some(_) => Ok(()),
    }
}

/// The status code of `HTTP/x.y NNN reason` (also read by the HTTP
/// target of partition resolution).
pub(crate) fn status_code(line: &[u8]) -> Option<u16> {
    let rest = &line[line.iter().position(|&b| b == b' ')? + 1..];
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !matches!(rest.get(3), None | Some(b' ' | b'\r')) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    fn config(port: u16, uri: &str) -> HttpConfig {
        HttpConfig {
            port,
            uri: uri.into(),
            ..HttpConfig::default()
        }
    }

    async fn check(config: &HttpConfig) -> Check {
        HttpProbe::new(config).check(&ProbeEnv::default()).await
    }

    /// A peer for one connection: reads the request head, then sends each
    /// chunk of `reply` in turn and closes. Hands back the request.
    async fn peer(reply: &'static [&'static str]) -> (SocketAddr, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 256];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(String::from_utf8(request).unwrap());
            for chunk in reply {
                conn.write_all(chunk.as_bytes()).await.unwrap();
                conn.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        (addr, rx)
    }

    fn judged(reply: &[u8], closed: bool, uri: &str) -> Check {
        to_check(judge(reply, closed, uri))
    }

    fn error(check: Check) -> String {
        match check {
            Check::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn requests() {
        let req =
            |c: &HttpConfig| String::from_utf8(HttpProbe::new(c).inner.request.to_vec()).unwrap();
        assert_eq!(req(&config(80, "/")), "HEAD / HTTP/1.0\r\n\r\n");
        let mut c = config(80, "/x");
        c.version = HttpVersion::Http11;
        assert_eq!(
            req(&c),
            "HEAD /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        );
        c.port = 8080;
        c.host = "::1".into();
        assert_eq!(
            req(&c),
            "HEAD /x HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n"
        );
        c.host_header = Some("www.example".into());
        assert_eq!(
            req(&c),
            "HEAD /x HTTP/1.1\r\nHost: www.example\r\nConnection: close\r\n\r\n"
        );
        c.version = HttpVersion::Http10;
        assert_eq!(req(&c), "HEAD /x HTTP/1.0\r\nHost: www.example\r\n\r\n");
    }

    #[test]
    fn causes_are_told_apart() {
        let fault = |reply: &[u8], closed, uri| judge(reply, closed, uri).unwrap_err().fault;
        assert_eq!(
            fault(b"HTTP/1.1 503 x\r\n", false, "/x"),
            Fault::Status(503)
        );
        assert_eq!(
            fault(b"HTTP/1.1 404 x\r\n", false, "/x"),
            Fault::Status(404)
        );
        assert_eq!(fault(b"", true, "/"), Fault::Closed);
        assert_eq!(fault(b"HTTP/1.", true, "/"), Fault::Closed);
        assert_eq!(fault(b"SSH-2.0\r\n", false, "/"), Fault::BadReply);
        assert_eq!(fault(b"HTTP/1.0 OK\r\n", false, "/x"), Fault::BadReply);
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r"), Some(200));
        assert_eq!(status_code(b"HTTP/1.0 404"), Some(404));
        assert_eq!(status_code(b"HTTP/1.0 2000 OK"), None);
        assert_eq!(status_code(b"HTTP/1.0 abc"), None);
        assert_eq!(status_code(b"HTTP/1.0"), None);
        assert_eq!(judged(b"HTTP/1.1 503 x\r\n", false, "/"), Check::Normal);
        assert_eq!(
            judged(b"HTTP/1.1 302 Found\r\n", false, "/x"),
            Check::Normal
        );
        assert_eq!(
            judged(b"HTTP/1.1 503 x\r\n", false, "/x"),
            Check::Error("status 503 for /x".into())
        );
        assert_eq!(
            judged(b"HTTP/1.1 5", true, "/x"),
            Check::Error("connection closed before a status line".into())
        );
        assert_eq!(
            judged(b"HTT", true, "/"),
            Check::Error("connection closed before a status line".into())
        );
        assert_eq!(
            judged(b"HTTP/1.", true, "/"),
            Check::Error("connection closed before a status line".into())
        );
        // A status line cut only before its line end still counts.
        assert_eq!(judged(b"HTTP/1.0 200 OK", true, "/x"), Check::Normal);
    }

    #[tokio::test]
    async fn ok_reply_is_normal() {
        let (addr, request) = peer(&["HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"]).await;
        assert_eq!(check(&config(addr.port(), "/")).await, Check::Normal);
        assert_eq!(request.await.unwrap(), "HEAD / HTTP/1.0\r\n\r\n");
    }

    #[tokio::test]
    async fn http11_request_carries_host() {
        let (addr, request) = peer(&["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]).await;
        let mut c = config(addr.port(), "/health");
        c.version = HttpVersion::Http11;
        assert_eq!(check(&c).await, Check::Normal);
        assert_eq!(
            request.await.unwrap(),
            format!(
                "HEAD /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                addr.port()
            )
        );
    }

    #[tokio::test]
    async fn status_line_in_pieces() {
        let (addr, _) = peer(&["HT", "TP/1.1 2", "00 OK\r", "\n\r\n"]).await;
        assert_eq!(check(&config(addr.port(), "/x")).await, Check::Normal);
    }

    #[tokio::test]
    async fn server_error_counts_only_off_root() {
        const REPLY: &[&str] = &["HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"];
        let (addr, _) = peer(REPLY).await;
        assert_eq!(
            check(&config(addr.port(), "/health")).await,
            Check::Error("status 500 for /health".into())
        );
        let (addr, _) = peer(REPLY).await;
        assert_eq!(check(&config(addr.port(), "/")).await, Check::Normal);
        let (addr, _) = peer(&["HTTP/1.1 404 Not Found\r\n\r\n"]).await;
        assert_eq!(
            check(&config(addr.port(), "/missing")).await,
            Check::Error("status 404 for /missing".into())
        );
    }

    #[tokio::test]
    async fn garbage_reply_is_an_error() {
        let (addr, _) = peer(&["SSH-2.0-OpenSSH_9.6\r\n"]).await;
        assert_eq!(
            check(&config(addr.port(), "/")).await,
            Check::Error("reply does not start with HTTP/: \"SSH-2.0-OpenSSH_9.6\"".into())
        );
        let (addr, _) = peer(&["HTTP/1.0 OK\r\n\r\n"]).await;
        assert_eq!(
            check(&config(addr.port(), "/x")).await,
            Check::Error("malformed status line \"HTTP/1.0 OK\"".into())
        );
    }

    #[tokio::test]
    async fn close_without_reply_is_an_error() {
        let (addr, _) = peer(&[]).await;
        assert_eq!(
            check(&config(addr.port(), "/")).await,
            Check::Error("connection closed without a reply".into())
        );
        let (addr, _) = peer(&["HTTP/1."]).await;
        assert_eq!(
            check(&config(addr.port(), "/")).await,
            Check::Error("connection closed before a status line".into())
        );
    }

    #[tokio::test]
    async fn close_at_once_is_an_error() {
        // Closes without reading the request: a reset or an end of stream.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = listener.accept().await.unwrap();
        });
        let e = error(check(&config(port, "/")).await);
        assert!(
            e == "connection closed without a reply"
                || e.ends_with("connection reset by peer")
                || e.ends_with("broken pipe"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn closed_port_is_an_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        assert_eq!(
            check(&config(port, "/")).await,
            Check::Error(format!("connect to 127.0.0.1:{port}: connection refused"))
        );
    }
}
