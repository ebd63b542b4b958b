//! What the protocol backends share: bounded steps, name resolution,
//! connecting, and short texts for errors and replies.

pub(super) use crate::model::host::{excerpt, io_text};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use super::config::Lamp;

/// Why one attempt to drive a lamp failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection came about (resolve, connect, connect timeout): worth
    /// one more try.
    Connect(String),
    /// The lamp answered, and not with success.
    Refused(String),
    /// Connected, but the command's fate is unknown (write or read failed,
    /// timed out, connection closed early), or it could not even be tried.
    Unreachable(String),
}

/// Runs `fut` for at most `limit`; `what` names the step in the error.
pub(super) async fn bounded<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {}", io_text(&e))),
        Err(_) => Err(format!("{what}: no answer within {}", secs(limit))),
    }
}

/// The lamp's socket addresses: the literal, or the names' addresses.
pub(super) async fn resolve(lamp: &Lamp, step: Duration) -> Result<Vec<SocketAddr>, Failure> {
    let port = lamp.port();
    if let Some(ip) = lamp.ip() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let what = format!("resolve {}", lamp.address);
    let addrs: Vec<SocketAddr> = bounded(
        step,
        &what,
        tokio::net::lookup_host((lamp.address.as_str(), port)),
    )
    .await
    .map_err(Failure::Connect)?
    .collect();
    if addrs.is_empty() {
        return Err(Failure::Connect(format!("{what}: no address")));
    }
    Ok(addrs)
}

/// A plain TCP connection to the lamp, trying each address in turn.
pub(super) async fn connect(lamp: &Lamp, step: Duration) -> Result<TcpStream, Failure> {
    let mut last = String::new();
    for addr in resolve(lamp, step).await? {
        match bounded(
            step,
            &format!("connect to {addr}"),
            TcpStream::connect(addr),
        )
        .await
        {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(Failure::Connect(last))
}

/// Reads until the peer closes, `max` bytes have come, or `done` says the
/// reply is complete. Each read is bounded by `step`.
pub(super) async fn read_reply<S: AsyncRead + Unpin>(
    stream: &mut S,
    step: Duration,
    max: usize,
    mut done: impl FnMut(&[u8]) -> bool,
) -> Result<(Vec<u8>, bool), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while buf.len() < max && !done(&buf) {
        // Never more than `max`: what is not read stays for the next call.
        let want = (max - buf.len()).min(chunk.len());
        let n = bounded(step, "read the answer", stream.read(&mut chunk[..want])).await?;
        if n == 0 {
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((buf, false))
}

/// `5 s`, `250 ms`.
pub(super) fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(secs(Duration::from_secs(5)), "5 s");
        assert_eq!(secs(Duration::from_millis(250)), "250 ms");
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_text(&e), "connection refused");
        assert_eq!(excerpt(b"\r\nError.\r\nmore", 40), "Error.");
        assert_eq!(excerpt(b"a\x01b\xff", 40), "a?b?");
        assert_eq!(excerpt(b"abcdef", 3), "abc...");
        assert_eq!(excerpt(b"", 3), "");
    }
}
