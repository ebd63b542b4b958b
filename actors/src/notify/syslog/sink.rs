//! Sending lines to one destination: the local Unix datagram socket, a UDP
//! collector, or a TCP collector over a connection kept open.
//!
//! Every step has a time limit, so a destination that stops reading costs
//! its own queue some time and nothing else. Sockets are opened lazily on
//! first use and thrown away after an error; the next line opens them anew.

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};
use tokio::time::timeout;

use super::config::{Remote, SyslogConfig, Transport};
pub use crate::model::host::io_text;
use crate::model::host::parse_ip;

/// Limit for resolving a name and opening a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Limit for handing one line to the kernel (a receiver that stopped reading
/// fills the buffers, and a write then waits).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Local(PathBuf),
    Udp { host: String, port: u16 },
    Tcp { host: String, port: u16 },
}

impl Target {
    /// Every destination of a configuration, the local socket first.
    pub fn all(config: &SyslogConfig) -> Vec<Target> {
        let mut out: Vec<Target> = config
            .local_socket()
            .map(|p| Target::Local(p.into()))
            .into_iter()
            .collect();
        out.extend(config.remote.iter().map(Target::remote));
        out
    }

    fn remote(r: &Remote) -> Target {
        let host = r.address.clone();
        match r.transport {
            Transport::Udp => Target::Udp { host, port: r.port },
            Transport::Tcp => Target::Tcp { host, port: r.port },
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Target::Local(_))
    }

    /// A stream keeps a failed line for the next attempt; a datagram
    /// destination loses it (datagrams may be lost anyway).
    pub fn retries(&self) -> bool {
        matches!(self, Target::Tcp { .. })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host_port = |f: &mut fmt::Formatter<'_>, host: &str, port: u16| match parse_ip(host) {
            Some(ip) => write!(f, "{}", SocketAddr::new(ip, port)),
            None => write!(f, "{host}:{port}"),
        };
        match self {
            Target::Local(p) => write!(f, "unix {}", p.display()),
            Target::Udp { host, port } => {
                f.write_str("udp ")?;
                host_port(f, host, *port)
            }
            Target::Tcp { host, port } => {
                f.write_str("tcp ")?;
                host_port(f, host, *port)
            }
        }
    }
}

enum Conn {
    Closed,
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// One destination and its open socket, if any. Must be used on the thread
/// (arbiter) that created it: tokio sockets belong to their runtime.
pub struct Sink {
    target: Target,
    conn: Conn,
}

impl Sink {
    pub fn new(target: Target) -> Sink {
        Sink {
            target,
            conn: Conn::Closed,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Sends one line (without framing; TCP adds its LF here). The error
    /// text is short and fit for an alert.
    pub async fn send(&mut self, line: &str) -> Result<(), String> {
        let result = self.try_send(line).await;
        if result.is_err() {
            self.conn = Conn::Closed;
        }
        result
    }

    async fn try_send(&mut self, line: &str) -> Result<(), String> {
        if let Conn::Tcp(stream) = &self.conn {
            if peer_closed(stream) {
                // The collector went away (restart): reconnect instead of
                // writing into a connection that will only answer RST.
                self.conn = Conn::Closed;
            }
        }
        if matches!(self.conn, Conn::Closed) {
            self.conn = self.open().await?;
        }
        let sent = match &mut self.conn {
            Conn::Closed => return Err("no socket".into()),
            Conn::Unix(sock) => {
                let Target::Local(path) = &self.target else {
                    return Err("no socket".into());
                };
                limited(sock.send_to(line.as_bytes(), path)).await
            }
            Conn::Udp(sock) => limited(sock.send(line.as_bytes())).await,
            Conn::Tcp(stream) => {
                // One buffer, so line and LF normally leave in one segment.
                let mut framed = Vec::with_capacity(line.len() + 1);
                framed.extend_from_slice(line.as_bytes());
                framed.push(b'\n');
                limited(async { stream.write_all(&framed).await.map(|_| framed.len()) }).await
            }
        };
        sent.map(|_| ())
    }

    async fn open(&self) -> Result<Conn, String> {
        match &self.target {
            Target::Local(_) => UnixDatagram::unbound()
                .map(Conn::Unix)
                .map_err(|e| format!("socket: {}", io_text(&e))),
            Target::Udp { host, port } => {
                let addr = resolve(host, *port).await?;
                let local: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let sock = UdpSocket::bind(local)
                    .await
                    .map_err(|e| format!("socket: {}", io_text(&e)))?;
                // Connected, so an ICMP "port unreachable" shows up as an
                // error of a later send instead of vanishing.
                sock.connect(addr)
                    .await
                    .map_err(|e| format!("connect to {addr}: {}", io_text(&e)))?;
                Ok(Conn::Udp(sock))
            }
            Target::Tcp { host, port } => {
                let addr = resolve(host, *port).await?;
                match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => Ok(Conn::Tcp(stream)),
                    Ok(Err(e)) => Err(format!("connect to {addr}: {}", io_text(&e))),
                    Err(_) => Err(format!(
                        "connect to {addr}: no answer within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )),
                }
            }
        }
    }
}

/// `op` under [`SEND_TIMEOUT`], errors as short text.
async fn limited(
    op: impl std::future::Future<Output = io::Result<usize>>,
) -> Result<usize, String> {
    match timeout(SEND_TIMEOUT, op).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(io_text(&e)),
        Err(_) => Err(format!(
            "not accepting data (send took over {} s)",
            SEND_TIMEOUT.as_secs()
        )),
    }
}

/// The first address of `host` (an IP literal is used as it is).
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Some(ip) = parse_ip(host) {
        return Ok(SocketAddr::new(ip, port));
    }
    match timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| format!("resolve {host}: no address")),
        Ok(Err(e)) => Err(format!("resolve {host}: {}", io_text(&e))),
        Err(_) => Err(format!(
            "resolve {host}: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// Whether the collector has closed the connection (or reset it). A syslog
/// collector never sends anything, so readable data means an end of stream
/// or an error. Peeks with a direct, non-blocking call, not through tokio's
/// readiness cache, so the answer is current.
fn peer_closed(stream: &TcpStream) -> bool {
    let mut buf = [MaybeUninit::<u8>::uninit(); 1];
    match socket2::SockRef::from(stream).peek(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        let t = |host: &str, transport| {
            Target::remote(&Remote {
                address: host.into(),
                port: 514,
                transport,
            })
            .to_string()
        };
        assert_eq!(t("10.0.0.5", Transport::Udp), "udp 10.0.0.5:514");
        assert_eq!(t("::1", Transport::Tcp), "tcp [::1]:514");
        assert_eq!(t("[::1]", Transport::Tcp), "tcp [::1]:514");
        assert_eq!(t("collector", Transport::Tcp), "tcp collector:514");
        let c = SyslogConfig::default();
        assert_eq!(Target::all(&c)[0].to_string(), "unix /dev/log");
    }
}
