//! `ip` monitor: at least one of a list of IPv4 addresses answers ping.
//!
//! Each check opens an ICMP socket, sends one echo request to every address
//! and waits up to `wait_ms` for a matching echo reply; the first reply makes
//! the check Normal. The socket is an unprivileged ping socket
//! (`SOCK_DGRAM`/`IPPROTO_ICMP`) where `net.ipv4.ping_group_range` allows
//! it, else a raw socket (needs `CAP_NET_RAW`) with a socket filter that
//! lets in only echo replies carrying the probe's identifier. Which of the
//! two works is learned at the first check.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio::net::UdpSocket;

pub use understudy_brain::monitor::ip::{parse_address, IpConfig, MAX_WAIT_MS, MIN_WAIT_MS};

use super::tcp::io_text;
use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
/// Payload of our echo requests (8 bytes, so the packet is 16).
const PAYLOAD: &[u8; 8] = b"undrstdy";
const ECHO_LEN: usize = 8 + PAYLOAD.len();
/// Received bytes looked at: IPv4 header (at most 60) and ICMP header.
const RECV_BUF: usize = 128;

impl BuildProbe for IpConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(IpProbe::new(self)?))
    }
}

/// Which ICMP socket a probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketKind {
    /// Ping socket: the kernel sets the identifier and hands over only
    /// replies to it, without IP header.
    Dgram,
    /// Raw socket: sees IP headers; replies are matched here.
    Raw,
}

/// Pings the addresses at each check.
pub struct IpProbe {
    inner: Rc<Inner>,
    /// Sequence number of the next check's first request; each address
    /// takes the next one.
    next_seq: u16,
}

struct Inner {
    addresses: Box<[Ipv4Addr]>,
    wait: Duration,
    /// Echo identifier (raw sockets; a ping socket picks its own).
    ident: u16,
    /// The socket kind that worked, once known.
    kind: Cell<Option<SocketKind>>,
}

/// Gives each probe of the process its own identifier.
static NEXT_IDENT: AtomicU16 = AtomicU16::new(0);

impl IpProbe {
    pub fn new(config: &IpConfig) -> Result<IpProbe, String> {
        let addresses = config
            .addresses
            .iter()
            .map(|a| parse_address(a))
            .collect::<Result<Box<[_]>, _>>()?;
        if addresses.is_empty() {
            return Err("no address to ping".into());
        }
        let count = NEXT_IDENT.fetch_add(1, Ordering::Relaxed);
        let ident = (std::process::id() as u16) ^ count.wrapping_mul(0x9e37);
        Ok(IpProbe {
            inner: Rc::new(Inner {
                addresses,
                wait: Duration::from_millis(config.wait_ms.into()),
                ident,
                kind: Cell::new(None),
            }),
            next_seq: 0,
        })
    }
}

impl Probe for IpProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let first_seq = self.next_seq;
        self.next_seq = first_seq.wrapping_add(self.inner.addresses.len() as u16);
        Box::pin(ping(self.inner.clone(), first_seq))
    }
}

async fn ping(inner: Rc<Inner>, first_seq: u16) -> Check {
    let (socket, kind) = match inner.open() {
        Ok(s) => s,
        Err(e) => return Check::Error(e),
    };
    // Tokio's datagram socket drives any datagram-like socket: it only
    // sends, receives and waits for readiness, all alike for ICMP.
    let socket = match UdpSocket::from_std(socket.into()) {
        Ok(s) => s,
        Err(e) => return Check::Error(format!("register ICMP socket: {}", io_text(&e))),
    };
    // Addresses a request could not go to, with why (rarely any).
    let mut failed: Vec<(usize, io::Error)> = Vec::new();
    let mut packet = [0u8; ECHO_LEN];
    for (i, addr) in inner.addresses.iter().enumerate() {
        echo_request(&mut packet, inner.ident, first_seq.wrapping_add(i as u16));
        let dest = SocketAddr::V4(SocketAddrV4::new(*addr, 0));
        if let Err(e) = socket.send_to(&packet, dest).await {
            failed.push((i, e));
        }
    }
    if failed.len() < inner.addresses.len() {
        let deadline = tokio::time::sleep(inner.wait);
        tokio::pin!(deadline);
        let mut buf = [0u8; RECV_BUF];
        // Receive errors (an ICMP error reported on the socket) are
        // one-shot; a bound keeps a stuck one from spinning.
        let mut errors = 0;
        while errors < 64 {
            tokio::select! {
                got = socket.recv(&mut buf) => match got {
                    Ok(n) => {
                        if inner.is_answer(kind, &buf[..n], first_seq) {
                            return Check::Normal;
                        }
                    }
                    Err(_) => errors += 1,
                },
                _ = &mut deadline => break,
            }
        }
    }
    Check::Error(no_answer(&inner.addresses, &failed))
}

impl Inner {
    /// A fresh ICMP socket: the kind that worked before, else a ping socket,
    /// else a raw one.
    fn open(&self) -> Result<(Socket, SocketKind), String> {
        if let Some(kind) = self.kind.get() {
            return open_socket(kind, self.ident)
                .map(|s| (s, kind))
                .map_err(|e| format!("open ICMP socket: {}", io_text(&e)));
        }
        let (socket, kind) = match open_socket(SocketKind::Dgram, self.ident) {
            Ok(s) => (s, SocketKind::Dgram),
            Err(_) => match open_socket(SocketKind::Raw, self.ident) {
                Ok(s) => (s, SocketKind::Raw),
                Err(e) => {
                    return Err(format!(
                        "cannot open an ICMP socket: {} (needs CAP_NET_RAW or net.ipv4.ping_group_range)",
                        io_text(&e)
                    ))
                }
            },
        };
        self.kind.set(Some(kind));
        Ok((socket, kind))
    }

    /// Whether `packet` (as read from a socket of `kind`) is an echo reply to
    /// this check's requests, from the address it went to.
    fn is_answer(&self, kind: SocketKind, packet: &[u8], first_seq: u16) -> bool {
        let (source, icmp) = match kind {
            SocketKind::Dgram => (None, packet),
            SocketKind::Raw => match strip_ipv4_header(packet) {
                Some((source, icmp)) => (Some(source), icmp),
                None => return false,
            },
        };
        let Some((ident, seq)) = echo_reply(icmp) else {
            return false;
        };
        let index = usize::from(seq.wrapping_sub(first_seq));
        let Some(&addr) = self.addresses.get(index) else {
            return false;
        };
        match source {
            // The kernel matched the ping socket's own identifier.
            None => true,
            Some(source) => ident == self.ident && source == addr,
        }
    }
}

fn open_socket(kind: SocketKind, ident: u16) -> io::Result<Socket> {
    let ty = match kind {
        SocketKind::Dgram => Type::DGRAM,
        SocketKind::Raw => Type::RAW,
    };
    let socket = Socket::new(Domain::IPV4, ty.nonblocking(), Some(Protocol::ICMPV4))?;
    if kind == SocketKind::Raw {
        // Best effort: replies are matched here anyway, the filter only
        // spares the wake-ups for other ICMP traffic.
        let _ = socket.attach_filter(&reply_filter(ident));
    }
    Ok(socket)
}

/// Classic BPF for a raw ICMP socket (packets start at the IPv4 header):
/// accept echo replies with identifier `ident`, drop the rest.
fn reply_filter(ident: u16) -> [SockFilter; 7] {
    use libc::{BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_LDX, BPF_MSH, BPF_RET};
    let op = |code: u32| code as u16;
    [
        // X = length of the IPv4 header.
        SockFilter::new(op(BPF_LDX | BPF_B | BPF_MSH), 0, 0, 0),
        // A = ICMP type; not an echo reply: drop.
        SockFilter::new(op(BPF_LD | BPF_B | BPF_IND), 0, 0, 0),
        SockFilter::new(op(BPF_JMP | BPF_JEQ | BPF_K), 0, 3, ICMP_ECHO_REPLY.into()),
        // A = identifier; not ours: drop.
        SockFilter::new(op(BPF_LD | BPF_H | BPF_IND), 0, 0, 4),
        SockFilter::new(op(BPF_JMP | BPF_JEQ | BPF_K), 0, 1, ident.into()),
        SockFilter::new(op(BPF_RET | BPF_K), 0, 0, u32::MAX),
        SockFilter::new(op(BPF_RET | BPF_K), 0, 0, 0),
    ]
}

/// Fills `packet` with an echo request.
fn echo_request(packet: &mut [u8; ECHO_LEN], ident: u16, seq: u16) {
    packet[0] = ICMP_ECHO_REQUEST;
    packet[1] = 0;
    packet[2..4].fill(0);
    packet[4..6].copy_from_slice(&ident.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    packet[8..].copy_from_slice(PAYLOAD);
    let sum = checksum(packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
}

/// The Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The source address and the ICMP message of an IPv4 packet carrying ICMP.
fn strip_ipv4_header(packet: &[u8]) -> Option<(Ipv4Addr, &[u8])> {
    let first = *packet.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || packet.len() < header_len || packet[9] != 1 {
        return None;
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    Some((source, &packet[header_len..]))
}

/// Identifier and sequence number of an echo reply.
fn echo_reply(icmp: &[u8]) -> Option<(u16, u16)> {
    if icmp.len() < 8 || icmp[0] != ICMP_ECHO_REPLY || icmp[1] != 0 {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

/// `no answer from 198.51.100.1, 198.51.100.2 (network is unreachable)`.
fn no_answer(addresses: &[Ipv4Addr], failed: &[(usize, io::Error)]) -> String {
    let mut text = String::from("no answer from ");
    for (i, addr) in addresses.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        let _ = write!(text, "{addr}");
        if let Some((_, e)) = failed.iter().find(|(j, _)| *j == i) {
            let _ = write!(text, " ({})", io_text(e));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn config(addresses: &[&str], wait_ms: u32) -> IpConfig {
        IpConfig {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            wait_ms,
        }
    }

    /// Runs a probe's check on a current-thread runtime of this thread.
    fn check(probe: &mut IpProbe) -> Check {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(probe.check(&ProbeEnv::default()))
    }

    /// `Some` unless this process may open some ICMP socket.
    fn icmp_missing() -> Option<crate::skip::Missing> {
        let result = open_socket(SocketKind::Dgram, 0).or_else(|_| open_socket(SocketKind::Raw, 0));
        result
            .err()
            .map(|e| crate::skip::missing("root", format!("cannot open an ICMP socket: {e}")))
    }

    /// Runs `f` on a thread of its own (named like the test's, for
    /// `crate::skip`) inside a new network namespace (only `lo`, down), or
    /// skips the test and answers `None`. Nothing sent there leaves the
    /// namespace.
    fn in_new_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let name = std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string();
        let result = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                // SAFETY: plain system call; it moves only this thread (and
                // what it spawns) into a new network namespace.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(f())
            })
            .unwrap()
            .join()
            .unwrap();
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                crate::skip::missing("root", format!("cannot create a network namespace: {e}"))
                    .skip();
                None
            }
        }
    }

    /// Runs `ip ARGS` (inheriting the calling thread's namespace).
    fn ip(args: &[&str]) -> Result<(), String> {
        match Command::new("ip").args(args).output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("ip {}: {e}", args.join(" "))),
        }
    }

    #[test]
    fn a_probe_needs_valid_addresses() {
        assert!(IpProbe::new(&config(&["x"], 1000)).is_err());
        assert!(IpProbe::new(&config(&[], 1000)).is_err());
    }

    #[test]
    fn checksums() {
        // The example of RFC 1071.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        assert_eq!(checksum(&[0x01]), !0x0100);
        let mut packet = [0u8; ECHO_LEN];
        echo_request(&mut packet, 0x1234, 0xfffe);
        assert_eq!(
            &packet[..8],
            &[8, 0, packet[2], packet[3], 0x12, 0x34, 0xff, 0xfe]
        );
        // A packet with its checksum in place sums to zero.
        assert_eq!(checksum(&packet), 0);
    }

    #[test]
    fn reply_matching() {
        let probe = IpProbe::new(&config(&["198.51.100.1", "203.0.113.9"], 1000)).unwrap();
        let inner = &probe.inner;
        let reply = |source: [u8; 4], ident: u16, seq: u16| {
            let mut p = vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0];
            p.extend_from_slice(&source);
            p.extend_from_slice(&[127, 0, 0, 1]);
            p.extend_from_slice(&[0, 0, 0, 0]);
            p.extend_from_slice(&ident.to_be_bytes());
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(PAYLOAD);
            p
        };
        let id = inner.ident;
        let raw = SocketKind::Raw;
        // Sequence numbers 65535 and 0 went to the two addresses.
        assert!(inner.is_answer(raw, &reply([198, 51, 100, 1], id, 65535), 65535));
        assert!(inner.is_answer(raw, &reply([203, 0, 113, 9], id, 0), 65535));
        // Wrong source for the sequence number, other identifier, old sequence.
        assert!(!inner.is_answer(raw, &reply([203, 0, 113, 9], id, 65535), 65535));
        assert!(!inner.is_answer(raw, &reply([198, 51, 100, 1], id ^ 1, 65535), 65535));
        assert!(!inner.is_answer(raw, &reply([198, 51, 100, 1], id, 65534), 65535));
        // An echo request is no answer; nor is a truncated packet.
        let mut request = reply([198, 51, 100, 1], id, 65535);
        request[20] = ICMP_ECHO_REQUEST;
        assert!(!inner.is_answer(raw, &request, 65535));
        assert!(!inner.is_answer(raw, &reply([198, 51, 100, 1], id, 65535)[..24], 65535));
        // A ping socket hands over the ICMP message alone, identifier set
        // by the kernel.
        let icmp = &reply([0; 4], 777, 1)[20..];
        assert!(inner.is_answer(SocketKind::Dgram, icmp, 0));
        assert!(!inner.is_answer(SocketKind::Dgram, icmp, 2));
    }

    #[test]
    fn sequence_numbers_advance_per_address() {
        let mut probe = IpProbe::new(&config(&["198.51.100.1", "203.0.113.9"], 1000)).unwrap();
        probe.next_seq = 65535;
        // The future is dropped unpolled: nothing is sent.
        drop(probe.check(&ProbeEnv::default()));
        assert_eq!(probe.next_seq, 1);
    }

    #[test]
    fn no_answer_text() {
        let addrs = [
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(198, 51, 100, 2),
        ];
        assert_eq!(
            no_answer(&addrs, &[]),
            "no answer from 198.51.100.1, 198.51.100.2"
        );
        let failed = [(1, io::Error::from_raw_os_error(libc::ENETUNREACH))];
        assert_eq!(
            no_answer(&addrs, &failed),
            "no answer from 198.51.100.1, 198.51.100.2 (network is unreachable)"
        );
    }

    #[test]
    fn loopback_answers() {
        if let Some(missing) = icmp_missing() {
            return missing.skip();
        }
        let mut probe = IpProbe::new(&config(&["127.0.0.1"], 1000)).unwrap();
        assert_eq!(check(&mut probe), Check::Normal);
        // Again, on the socket kind learned the first time.
        assert!(probe.inner.kind.get().is_some());
        assert_eq!(check(&mut probe), Check::Normal);
    }

    #[test]
    fn raw_socket_on_loopback() {
        if let Err(e) = open_socket(SocketKind::Raw, 0) {
            return crate::skip::missing("root", format!("cannot open a raw ICMP socket: {e}"))
                .skip();
        }
        let mut probe = IpProbe::new(&config(&["127.0.0.1"], 1000)).unwrap();
        probe.inner.kind.set(Some(SocketKind::Raw));
        assert_eq!(check(&mut probe), Check::Normal);
    }

    /// In a namespace of its own: with `lo` down nothing answers; with `lo`
    /// up 127.0.0.1 answers, and 198.51.100.1 (routed to `lo`, where no one
    /// has it) does not. Both socket kinds where possible.
    #[test]
    fn silent_addresses_in_a_namespace() {
        if let Some(missing) = icmp_missing() {
            return missing.skip();
        }
        in_new_netns(|| {
            let mut probe = IpProbe::new(&config(&["127.0.0.1"], 200)).unwrap();
            match check(&mut probe) {
                Check::Error(e) => assert!(e.starts_with("no answer from 127.0.0.1"), "{e}"),
                other => panic!("lo is down, yet {other:?}"),
            }

            let setup = [
                &["link", "set", "lo", "up"][..],
                &["addr", "add", "198.51.100.2/32", "dev", "lo"],
                &[
                    "route",
                    "add",
                    "198.51.100.0/24",
                    "dev",
                    "lo",
                    "src",
                    "198.51.100.2",
                ],
            ];
            for args in setup {
                if let Err(e) = ip(args) {
                    return crate::skip::missing("ip", format!("the rest: {e}")).skip();
                }
            }
            let mut kinds = vec![SocketKind::Raw];
            // Ping sockets are allowed per namespace.
            match std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647") {
                Ok(()) => kinds.push(SocketKind::Dgram),
                Err(e) => crate::skip::missing(
                    "root",
                    format!("ping sockets: cannot set ping_group_range: {e}"),
                )
                .skip(),
            }
            for kind in kinds {
                if let Err(e) = open_socket(kind, 0) {
                    crate::skip::missing("root", format!("{kind:?} sockets: {e}")).skip();
                    continue;
                }
                let probe = |addresses: &[&str]| {
                    let p = IpProbe::new(&config(addresses, 200)).unwrap();
                    p.inner.kind.set(Some(kind));
                    p
                };
                assert_eq!(check(&mut probe(&["127.0.0.1"])), Check::Normal, "{kind:?}");
                let started = std::time::Instant::now();
                assert_eq!(
                    check(&mut probe(&["198.51.100.1", "198.51.100.3"])),
                    Check::Error("no answer from 198.51.100.1, 198.51.100.3".into()),
                    "{kind:?}"
                );
                assert!(started.elapsed() >= Duration::from_millis(200));
                assert_eq!(
                    check(&mut probe(&["198.51.100.1", "127.0.0.1"])),
                    Check::Normal,
                    "{kind:?}"
                );
            }
        });
    }
}
