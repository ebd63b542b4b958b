//! `tcp` monitor: a TCP connection to a port succeeds.
//!
//! The check connects and closes at once. The file also holds what the
//! TCP-based kinds (`http`, `smtp`) share: the [`Endpoint`] they connect to,
//! and short texts for I/O errors and peer replies.

use std::cell::Cell;
use std::fmt;

use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::TcpStream;

pub use understudy_brain::monitor::tcp::TcpConfig;

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};
pub(crate) use crate::model::host::{excerpt, io_text, parse_ip};

impl BuildProbe for TcpConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(TcpProbe::new(self)))
    }
}

/// Connects to the endpoint at each check.
pub struct TcpProbe {
    endpoint: Endpoint,
}

impl TcpProbe {
    pub fn new(config: &TcpConfig) -> TcpProbe {
        TcpProbe {
            endpoint: Endpoint::new(&config.host, config.port),
        }
    }
}

impl Probe for TcpProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            match endpoint.open(&Cell::new(Step::Resolve)).await {
                // Dropping the connection closes it.
                Ok(_connection) => Check::Normal,
                Err(e) => Check::Error(e.text),
            }
        })
    }
}

/// Where a TCP-based probe connects: an IP literal is parsed once, a host
/// name is resolved at each check. Cheap to clone.
#[derive(Debug, Clone)]
pub(super) enum Endpoint {
    Addr(SocketAddr),
    Name(Rc<str>, u16),
}

impl Endpoint {
    pub(super) fn new(host: &str, port: u16) -> Endpoint {
        match parse_ip(host) {
            Some(ip) => Endpoint::Addr(SocketAddr::new(ip, port)),
            None => Endpoint::Name(host.into(), port),
        }
    }

    pub(super) fn port(&self) -> u16 {
        match self {
            Endpoint::Addr(a) => a.port(),
            Endpoint::Name(_, port) => *port,
        }
    }

    /// The host as it goes into an HTTP `Host` header (IPv6 in brackets).
    pub(super) fn host_for_header(&self) -> String {
        match self {
            Endpoint::Addr(SocketAddr::V6(a)) => format!("[{}]", a.ip()),
            Endpoint::Addr(a) => a.ip().to_string(),
            Endpoint::Name(name, _) => name.to_string(),
        }
    }

    /// Opens a fresh connection; the error text names the endpoint.
    /// `step` follows the work (resolving, connecting).
    pub(super) async fn connect(&self, step: &Cell<Step>) -> Result<TcpStream, Failure> {
        self.open(step)
            .await?
            .into_stream()
            .map_err(|e| Failure::io(Step::Connect, &e, format!("connect to {self}")))
    }

    /// Opens a fresh connection, which the caller may only close (the tcp
    /// monitor): one answered at once never meets the reactor.
    pub(super) async fn open(&self, step: &Cell<Step>) -> Result<Opened, Failure> {
        match self {
            Endpoint::Addr(addr) => {
                step.set(Step::Connect);
                open_addr(*addr)
                    .await
                    .map_err(|e| Failure::io(Step::Connect, &e, format!("connect to {addr}")))
            }
            Endpoint::Name(name, port) => {
                step.set(Step::Resolve);
                let addrs = tokio::net::lookup_host((&**name, *port))
                    .await
                    .map_err(|e| Failure::io(Step::Resolve, &e, format!("resolve {name}")))?;
                step.set(Step::Connect);
                let mut last = None;
                for addr in addrs {
                    match open_addr(addr).await {
                        Ok(opened) => return Ok(opened),
                        Err(e) => last = Some(e),
                    }
                }
                Err(match last {
                    Some(e) => Failure::io(Step::Connect, &e, format!("connect to {self}")),
                    None => Failure {
                        fault: Fault::Io {
                            step: Step::Resolve,
                            code: None,
                        },
                        text: format!("resolve {name}: no address"),
                    },
                })
            }
        }
    }
}

/// An open connection: `Settled` when the peer had answered before the
/// non-blocking connect returned (a peer on this machine, whose handshake
/// the kernel completes inside the call), else `Waited`, registered with
/// the reactor and awaited.
pub(super) enum Opened {
    Settled(std::net::TcpStream),
    Waited(TcpStream),
}

impl Opened {
    /// The connection as a stream of the reactor, to read and write.
    fn into_stream(self) -> std::io::Result<TcpStream> {
        match self {
            Opened::Settled(s) => TcpStream::from_std(s),
            Opened::Waited(s) => Ok(s),
        }
    }
}

/// Connects to `addr`. Checking whether the connection has settled right
/// after `connect` spares most checks of a local service a registration
/// with the reactor, its removal and a wake-up (BENCHMARKS.md).
async fn open_addr(addr: SocketAddr) -> std::io::Result<Opened> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    match socket.connect(&addr.into()) {
        Ok(()) => return Ok(Opened::Settled(socket.into())),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    // Connected already, or refused already (loopback answers a SYN to a
    // closed port at once)?
    if socket.peer_addr().is_ok() {
        return Ok(Opened::Settled(socket.into()));
    }
    if let Some(e) = socket.take_error()? {
        return Err(e);
    }
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    Ok(Opened::Waited(stream))
}

/// Where a check of a TCP-based probe is: read after a timeout, it tells
/// which step took too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Resolve,
    Connect,
    Send,
    Receive,
}

/// Why a check of a TCP-based probe failed: `text` is the monitor's error
/// text; `fault` tells causes apart for callers that report them
/// separately (the Internet Server Agent's commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub fault: Fault,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A system call of `step` failed, with this error number when the
    /// system gave one.
    Io { step: Step, code: Option<i32> },
    /// The server closed the connection before a complete reply.
    Closed,
    /// The reply is not of the protocol (not HTTP, not an SMTP reply line).
    BadReply,
    /// The reply's status counts as an error: HTTP 4xx / 5xx off `/`, SMTP
    /// other than 2xx.
    Status(u16),
}

impl Failure {
    /// `what: error text` for an I/O error of `step`.
    pub(super) fn io(step: Step, e: &std::io::Error, what: String) -> Failure {
        Failure {
            fault: Fault::Io {
                step,
                code: e.raw_os_error(),
            },
            text: format!("{what}: {}", io_text(e)),
        }
    }

    pub(super) fn new(fault: Fault, text: impl Into<String>) -> Failure {
        Failure {
            fault,
            text: text.into(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(a) => write!(f, "{a}"),
            Endpoint::Name(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::io;
    use tokio::net::TcpListener;

    fn config(host: &str, port: u16) -> TcpConfig {
        TcpConfig {
            host: host.into(),
            port,
        }
    }

    async fn check(config: &TcpConfig) -> Check {
        TcpProbe::new(config).check(&ProbeEnv::default()).await
    }

    /// A port nothing listens on.
    async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn texts() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_text(&e), "connection refused");
        assert_eq!(excerpt(b"SSH-2.0-OpenSSH\r\nmore", 100), "SSH-2.0-OpenSSH");
        assert_eq!(excerpt(b"ab\x01\xffc", 100), "ab??c");
        assert_eq!(excerpt(b"abcdef", 3), "abc...");
    }

    #[tokio::test]
    async fn open_port_is_normal() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(check(&config("127.0.0.1", port)).await, Check::Normal);
        // The connection was made (and closed).
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1];
        let n = tokio::io::AsyncReadExt::read(&mut conn, &mut buf)
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_local_peer_is_reached_without_the_reactor() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(matches!(open_addr(addr).await, Ok(Opened::Settled(_))));
        let port = closed_port().await;
        let refused = open_addr(SocketAddr::from(([127, 0, 0, 1], port))).await;
        assert_eq!(
            refused.err().and_then(|e| e.raw_os_error()),
            Some(libc::ECONNREFUSED)
        );
    }

    /// A peer whose accept queue is full drops the SYN: the handshake ends
    /// later (the SYN is sent again after a second), through the reactor.
    #[tokio::test]
    async fn a_late_handshake_is_awaited() {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let listener = socket.listen(1).unwrap();
        // Fill the accept queue (backlog 1 holds two) without accepting.
        let mut queued = Vec::new();
        let opened = loop {
            match open_addr(addr).now_or_never() {
                Some(Ok(Opened::Settled(s))) => queued.push(s),
                Some(other) => panic!("{:?}", other.err()),
                None => break tokio::spawn(open_addr(addr)),
            }
            assert!(queued.len() < 10, "the accept queue never filled");
        };
        for _ in 0..=queued.len() {
            let _ = listener.accept().await.unwrap();
        }
        assert!(matches!(opened.await.unwrap(), Ok(Opened::Waited(_))));
    }

    #[tokio::test]
    async fn host_name_is_resolved() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(check(&config("localhost", port)).await, Check::Normal);
    }

    #[tokio::test]
    async fn closed_port_is_an_error() {
        let port = closed_port().await;
        assert_eq!(
            check(&config("127.0.0.1", port)).await,
            Check::Error(format!("connect to 127.0.0.1:{port}: connection refused"))
        );
    }
}
