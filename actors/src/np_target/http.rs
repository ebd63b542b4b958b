//! `Http(url: "http://...")`: a round sends `HEAD <path> HTTP/1.1` (with
//! `Host` and `Connection: close`) and reads the status line. Reached: a
//! 2xx or 3xx status. Any other status, a reply that is not HTTP, a
//! refused or silent connection is not: a 502 or 503 typically comes from
//! a gateway whose witness behind it is gone, and a 404 from a wrong URL,
//! neither of which proves that the witness saw this server.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{RoundFuture, TargetProbe};
use crate::model::host::{excerpt, io_text};
use crate::model::partition::{parse_http_url, HttpTarget};
use crate::monitor::http::status_code;

/// Bytes of the reply read at most: the status line fits.
const REPLY_BUF: usize = 1024;

pub struct HttpProbe {
    /// `host:port` to connect to (a name is resolved at every round).
    address: String,
    request: std::sync::Arc<[u8]>,
    url: std::sync::Arc<str>,
}

impl HttpProbe {
    pub fn new(config: &HttpTarget) -> Result<HttpProbe, String> {
        let (host, port, path) = parse_http_url(&config.url)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let address = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        let host_header = if port == 80 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let request = format!(
            "HEAD {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: understudy\r\nConnection: close\r\n\r\n"
        );
        Ok(HttpProbe {
            address,
            request: request.into_bytes().into(),
            url: config.url.as_str().into(),
        })
    }
}

impl TargetProbe for HttpProbe {
    fn round(&mut self, _timeout: Duration) -> RoundFuture {
        let address = self.address.clone();
        let request = self.request.clone();
        let url = self.url.clone();
        Box::pin(async move {
            let mut stream = TcpStream::connect(&address)
                .await
                .map_err(|e| format!("connect to {address}: {}", io_text(&e)))?;
            stream
                .write_all(&request)
                .await
                .map_err(|e| format!("send to {address}: {}", io_text(&e)))?;
            let mut buf = vec![0u8; REPLY_BUF];
            let mut len = 0;
            while len < buf.len() && !buf[..len].contains(&b'\n') {
                match stream.read(&mut buf[len..]).await {
                    Ok(0) => break,
                    Ok(n) => len += n,
                    Err(e) => return Err(format!("read from {address}: {}", io_text(&e))),
                }
            }
            judge(&buf[..len], &url)
        })
    }
}

/// The verdict on a reply's start: reached on a 2xx or 3xx status line.
pub(crate) fn judge(reply: &[u8], url: &str) -> Result<(), String> {
    if reply.is_empty() {
        return Err(format!("{url}: connection closed without a reply"));
    }
    let line = reply.split(|&b| b == b'\n').next().unwrap_or_default();
    if !line.starts_with(b"HTTP/") {
        return Err(format!(
            "{url}: reply is not HTTP: \"{}\"",
            excerpt(line, 60)
        ));
    }
    match status_code(line) {
        Some(code) if (200..400).contains(&code) => Ok(()),
        Some(code) => Err(format!("{url}: status {code}")),
        None => Err(format!(
            "{url}: malformed status line \"{}\"",
            excerpt(line, 60)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn only_a_2xx_or_3xx_status_counts_as_reached() {
        assert!(judge(b"HTTP/1.1 200 OK\r\n", "u").is_ok());
        assert!(judge(b"HTTP/1.0 302 Found\r\n", "u").is_ok());
        for bad in [
            &b"HTTP/1.1 404 Not Found\r\n"[..],
            b"HTTP/1.1 503 Service Unavailable\r\n",
            b"SSH-2.0-OpenSSH\r\n",
            b"",
            b"HTTP/1.1 abc\r\n",
        ] {
            assert!(judge(bad, "u").is_err(), "{bad:?}");
        }
    }

    /// One HEAD against a local server answering `reply`.
    async fn round_against(reply: &'static [u8]) -> (Result<(), String>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let mut len = 0;
            while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                len += s.read(&mut buf[len..]).await.unwrap();
            }
            s.write_all(reply).await.unwrap();
            String::from_utf8_lossy(&buf[..len]).into_owned()
        });
        let mut probe = HttpProbe::new(&HttpTarget {
            url: format!("http://127.0.0.1:{port}/np"),
            interval_ms: None,
            timeout_ms: None,
        })
        .unwrap();
        let r = probe.round(Duration::from_secs(1)).await;
        (r, server.await.unwrap())
    }

    #[tokio::test]
    async fn a_head_request_reaches_a_web_server() {
        let (r, request) = round_against(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        assert_eq!(r, Ok(()));
        assert!(request.starts_with("HEAD /np HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("\r\nHost: 127.0.0.1:"), "{request}");
        let (r, _) = round_against(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        assert!(r.unwrap_err().contains("status 502"));
    }

    #[tokio::test]
    async fn a_closed_port_is_not_reached() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut probe = HttpProbe::new(&HttpTarget {
            url: format!("http://127.0.0.1:{port}/"),
            interval_ms: None,
            timeout_ms: None,
        })
        .unwrap();
        let e = probe.round(Duration::from_secs(1)).await.unwrap_err();
        assert!(e.contains("connection refused"), "{e}");
    }
}
