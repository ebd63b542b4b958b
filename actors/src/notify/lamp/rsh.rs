//! `alert RYGBCZ` to an NH-series lamp over the BSD rsh protocol.
//!
//! The digits are red, yellow, green, blue, white (0 off, 1 on, 2 flashing)
//! and the buzzer (0 stop). The rsh exchange: connect to TCP 514 from a
//! privileged source port (512-1023, which is how rshd trusts the client
//! host, so the daemon needs root or CAP_NET_BIND_SERVICE), send
//! `"\0"` (no separate error channel), the local user, the remote user and
//! the command, each ended by NUL. The lamp answers one status byte: `0`
//! then the command's output (the lamp's state), or `1` then an error text.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::config::Lamp;
use super::net::{bounded, excerpt, io_text, read_reply, resolve, Failure};
use super::LampState;

/// The privileged source ports rshd accepts, tried from the top down like
/// `rresvport`.
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 512..=1023;
/// Enough for the lamp's status line or an error text.
const MAX_ANSWER: usize = 4096;

/// `alert 001000`
pub fn command(state: LampState) -> String {
    format!("alert {}", state.digits())
}

/// The bytes sent after connecting.
pub fn handshake(local_user: &str, remote_user: &str, command: &str) -> Vec<u8> {
    let mut out = Vec::new();
    // An empty port: no separate channel for the command's errors.
    out.push(0);
    for field in [local_user, remote_user, command] {
        out.extend_from_slice(field.as_bytes());
        out.push(0);
    }
    out
}

/// The name of the user the daemon runs as ("root" when it has none).
pub fn local_user() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| "root".into())
    })
}

/// What the answer (status byte and text) means; the lamp's output on
/// success.
pub(super) fn judge(answer: &[u8]) -> Result<String, Failure> {
    match answer.split_first() {
        Some((0, output)) => Ok(excerpt(output, 60)),
        Some((1, message)) => {
            let text = excerpt(message, 100);
            Err(Failure::Refused(if text.is_empty() {
                "the lamp answered with rsh status 1".into()
            } else {
                format!("the lamp answered \"{text}\"")
            }))
        }
        Some((b, _)) => Err(Failure::Refused(format!(
            "unexpected answer: status byte 0x{b:02x} ({})",
            excerpt(answer, 40)
        ))),
        None => Err(Failure::Unreachable(
            "the lamp closed the connection without an answer".into(),
        )),
    }
}

/// Binds the next free privileged port and connects from it.
async fn connect_privileged(addr: SocketAddr, step: Duration) -> Result<TcpStream, Failure> {
    let unspecified = match addr.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    for port in SOURCE_PORTS.rev() {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| Failure::Unreachable(format!("socket: {}", io_text(&e))))?;
        match socket.bind(SocketAddr::new(unspecified, port)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                return Err(Failure::Unreachable(format!(
                    "cannot bind a privileged source port ({}-{}): {}; rsh needs root or CAP_NET_BIND_SERVICE",
                    SOURCE_PORTS.start(),
                    SOURCE_PORTS.end(),
                    io_text(&e)
                )))
            }
            Err(e) => {
                return Err(Failure::Unreachable(format!(
                    "bind source port {port}: {}",
                    io_text(&e)
                )))
            }
        }
        match tokio::time::timeout(step, socket.connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            // The same four-tuple is still in use (TIME_WAIT): next port.
            Ok(Err(e))
                if e.kind() == io::ErrorKind::AddrInUse
                    || e.kind() == io::ErrorKind::AddrNotAvailable =>
            {
                continue
            }
            Ok(Err(e)) => {
                return Err(Failure::Connect(format!(
                    "connect to {addr}: {}",
                    io_text(&e)
                )))
            }
            Err(_) => {
                return Err(Failure::Connect(format!(
                    "connect to {addr}: no answer within {}",
                    super::net::secs(step)
                )))
            }
        }
    }
    Err(Failure::Unreachable(format!(
        "no free privileged source port ({}-{})",
        SOURCE_PORTS.start(),
        SOURCE_PORTS.end()
    )))
}

/// Connects, runs `alert ...` for `state`, reads the status byte.
pub(super) async fn send(lamp: &Lamp, state: LampState, step: Duration) -> Result<(), Failure> {
    let mut last = None;
    let mut stream = None;
    for addr in resolve(lamp, step).await? {
        match connect_privileged(addr, step).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(Failure::Connect(e)) => last = Some(Failure::Connect(e)),
            Err(other) => return Err(other),
        }
    }
    let Some(mut stream) = stream else {
        return Err(last.unwrap_or_else(|| Failure::Connect("no address".into())));
    };
    let local = local_user();
    let remote = lamp.user.as_deref().unwrap_or(local);
    let request = handshake(local, remote, &command(state));
    bounded(step, "send the command", stream.write_all(&request))
        .await
        .map_err(Failure::Unreachable)?;
    let output = answer(&mut stream, step, lamp).await?;
    tracing::debug!("rsh {}: lamp answered \"{output}\"", lamp.label());
    Ok(())
}

/// Reads and judges the answer: the lamp's output on success (generic, for
/// the fuzz target `lamp_reply`).
pub(crate) async fn answer<S: AsyncRead + Unpin>(
    stream: &mut S,
    step: Duration,
    lamp: &Lamp,
) -> Result<String, Failure> {
    // The status byte first: that is the verdict.
    let (first, _) = read_reply(stream, step, 1, |b| !b.is_empty())
        .await
        .map_err(Failure::Unreachable)?;
    // Then the text that follows, until the lamp closes. A lamp that keeps
    // the connection open after its answer has still answered.
    let rest = if first.is_empty() {
        Vec::new()
    } else {
        match read_reply(stream, step, MAX_ANSWER, |_| false).await {
            Ok((rest, _)) => rest,
            Err(e) => {
                tracing::debug!("rsh {}: {e} after the status byte", lamp.label());
                Vec::new()
            }
        }
    };
    let mut answer = first;
    answer.extend_from_slice(&rest);
    judge(&answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(command(LampState::Green), "alert 001000");
        assert_eq!(command(LampState::Off), "alert 000000");
        assert_eq!(command(LampState::RedBlinking), "alert 200000");
        assert_eq!(
            handshake("root", "patlite", "alert 001000"),
            b"\0root\0patlite\0alert 001000\0"
        );
        assert!(!local_user().is_empty());
    }

    #[test]
    fn answers() {
        assert_eq!(judge(b"\x00001000\n"), Ok("001000".into()));
        assert_eq!(judge(b"\0"), Ok(String::new()));
        assert_eq!(
            judge(b"\x01Permission denied.\n"),
            Err(Failure::Refused(
                "the lamp answered \"Permission denied.\"".into()
            ))
        );
        assert!(matches!(judge(b"\x01"), Err(Failure::Refused(_))));
        assert!(matches!(judge(b"X"), Err(Failure::Refused(e)) if e.contains("0x58")));
        assert!(matches!(judge(b""), Err(Failure::Unreachable(_))));
    }
}
