//! The LAN heartbeat of one path: a UDP socket on this server's address of
//! the path, beats to the same port on every peer's address of the path.
//!
//! Sending runs at a fixed rate (the first beat at once); a changed advert
//! goes out at once as an extra beat, so state changes need not wait for the
//! next tick. Every beat of a path gets the next sequence number, the same
//! for all peers, so each receiver can count what it missed. Receiving runs
//! as its own loop: open the frame, check the sender and the path, pass the
//! replay guard, report. Every tick also looks at the local interface that
//! holds the path's address and reports when it goes up or down.
//!
//! Intervals go down to 50 ms, so a tick only seals one small frame, sends
//! it to each peer without waiting, and reads the interface list.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use nix::ifaddrs::InterfaceAddress;
use nix::net::if_::InterfaceFlags;
use tokio::net::UdpSocket;
use tokio::time::MissedTickBehavior;

use super::HeartbeatEvent;
use crate::wire::heartbeat::{Advert, Beat, BeatKind, LEAVING_SEQ};
use crate::wire::replay::ReplayGuard;
use crate::wire::{open_json, seal_json, ClusterKey, Refusal, Rejection};

/// Send failures are logged at most this often (per path).
const SEND_LOG_EVERY: Duration = Duration::from_secs(10);
/// Larger than any UDP datagram: nothing arrives truncated.
const RECEIVE_BUFFER: usize = 65_536;

#[derive(Debug, Clone)]
pub struct LanSettings {
    /// Index of the path (the interconnect's position in the server lists).
    pub path: usize,
    /// This server's address on the path.
    pub local_addr: IpAddr,
    /// Heartbeat UDP port, the same on every server.
    pub port: u16,
    /// The other servers and their addresses on this path.
    pub peers: Vec<(String, IpAddr)>,
    pub interval: Duration,
    pub key: Arc<ClusterKey>,
    /// This server's name.
    pub local: String,
    pub incarnation: u64,
    pub config_digest: String,
    /// How late each fixed-rate beat left (shared by every path; read by
    /// `monitor stats`).
    pub lateness: Arc<std::sync::Mutex<crate::monitor::actor::Lateness>>,
    /// The same lateness, for the metrics.
    pub metrics: crate::metrics::Metrics,
}

/// Store a new advert and send it to every peer at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetAdvert(pub Advert);

/// Send `Leaving` now (orderly stop); answered once sent. No `Alive` beat
/// follows: the peers would drop it as a replay.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendLeaving {
    pub died: bool,
}

/// The configuration changed online: beats carry its new digest.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetConfigDigest(pub String);

/// A fixed-rate tick, with the instant it was due.
#[derive(Message)]
#[rtype(result = "()")]
struct Tick(tokio::time::Instant);

pub struct LanHeartbeat {
    settings: LanSettings,
    events: Recipient<HeartbeatEvent>,
    /// Bound in `new`, handed to tokio once the actor runs.
    unregistered: Option<std::net::UdpSocket>,
    socket: Option<Arc<UdpSocket>>,
    targets: Vec<SocketAddr>,
    advert: Advert,
    /// Sequence number of the last beat sent.
    seq: u64,
    /// `Leaving` was sent: no more beats.
    left: bool,
    link_up: Option<bool>,
    send_log: SendLog,
}

impl LanHeartbeat {
    /// Binds the path's UDP socket. The address need not be present yet
    /// (IP_FREEBIND): a path whose interface is down at start comes up later
    /// by itself. Fails on a taken port or on settings no path can have.
    pub fn new(
        settings: LanSettings,
        events: Recipient<HeartbeatEvent>,
    ) -> Result<LanHeartbeat, String> {
        let path = settings.path;
        if u8::try_from(path).is_err() {
            return Err(format!("heartbeat path {path}: at most 256 paths"));
        }
        if settings.interval.is_zero() {
            return Err(format!("heartbeat path {path}: interval must not be zero"));
        }
        let bind_addr = SocketAddr::new(settings.local_addr, settings.port);
        let socket = bind(bind_addr)
            .map_err(|e| format!("heartbeat path {path}: cannot bind UDP {bind_addr}: {e}"))?;
        let targets = settings
            .peers
            .iter()
            .map(|(_, ip)| SocketAddr::new(*ip, settings.port))
            .collect();
        Ok(LanHeartbeat {
            settings,
            events,
            unregistered: Some(socket),
            socket: None,
            targets,
            advert: Advert::default(),
            seq: 0,
            left: false,
            link_up: None,
            send_log: SendLog::default(),
        })
    }

    fn beat(&self, seq: u64, kind: BeatKind) -> Beat {
        Beat {
            from: self.settings.local.clone(),
            incarnation: self.settings.incarnation,
            seq,
            path: self.settings.path as u8,
            config_digest: self.settings.config_digest.clone(),
            sent_ms: super::monotonic_ms(),
            kind,
        }
    }

    /// Sends `beat` to every peer, `copies` times each, without waiting.
    fn send(&mut self, beat: &Beat, copies: usize) {
        let Some(socket) = self.socket.clone() else {
            return;
        };
        let packet = match seal_json(&self.settings.key, beat) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("heartbeat path {}: {e}", self.settings.path);
                return;
            }
        };
        for target in &self.targets {
            for _ in 0..copies {
                if let Err(e) = socket.try_send_to(&packet, *target) {
                    self.send_log.failed(self.settings.path, *target, &e);
                }
            }
        }
    }

    fn send_alive(&mut self) {
        if self.left {
            return;
        }
        self.seq += 1;
        let beat = self.beat(self.seq, BeatKind::Alive(self.advert.clone()));
        self.send(&beat, 1);
    }

    fn check_link(&mut self) {
        let up = match nix::ifaddrs::getifaddrs() {
            Ok(addrs) => addrs
                .into_iter()
                .any(|ifa| holds_up(&ifa, self.settings.local_addr)),
            Err(e) => {
                tracing::debug!(
                    "heartbeat path {}: cannot list interfaces: {e}",
                    self.settings.path
                );
                return;
            }
        };
        if self.link_up != Some(up) {
            self.link_up = Some(up);
            self.events.do_send(HeartbeatEvent::LocalLink {
                path: self.settings.path,
                up,
            });
        }
    }
}

/// A non-blocking UDP socket on `addr`, allowed to bind an address the host
/// does not have (yet).
fn bind(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    match addr {
        SocketAddr::V4(_) => socket.set_freebind_v4(true)?,
        SocketAddr::V6(_) => socket.set_freebind_v6(true)?,
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Whether `ifa` is an up and running interface holding `addr`. Loopback
/// holds its whole prefix (Linux answers for all of 127/8 on `lo`).
fn holds_up(ifa: &InterfaceAddress, addr: IpAddr) -> bool {
    let running = InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING;
    if !ifa.flags.contains(running) {
        return false;
    }
    let Some(have) = ifa.address.as_ref() else {
        return false;
    };
    match addr {
        IpAddr::V4(want) => {
            let Some(have) = have.as_sockaddr_in().map(|s| s.ip()) else {
                return false;
            };
            if have == want {
                return true;
            }
            let mask = ifa
                .netmask
                .as_ref()
                .and_then(|m| m.as_sockaddr_in())
                .map(|m| u32::from(m.ip()));
            match mask {
                Some(mask) if ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK) => {
                    u32::from(have) & mask == u32::from(want) & mask
                }
                _ => false,
            }
        }
        IpAddr::V6(want) => have.as_sockaddr_in6().map(|s| s.ip()) == Some(want),
    }
}

#[derive(Default)]
struct SendLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl SendLog {
    fn failed(&mut self, path: usize, target: SocketAddr, e: &std::io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < SEND_LOG_EVERY)
        {
            self.suppressed += 1;
            return;
        }
        let more = match self.suppressed {
            0 => String::new(),
            n => format!(" ({n} more failures since the last report)"),
        };
        tracing::debug!("heartbeat path {path}: cannot send to {target}: {e}{more}");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// The receiving side's fixed facts, owned by the receive loop (and by
/// the fuzz target `heartbeat`).
pub(crate) struct Receiver {
    pub(crate) key: Arc<ClusterKey>,
    pub(crate) path: usize,
    pub(crate) local: String,
    pub(crate) peers: Vec<String>,
    pub(crate) guard: ReplayGuard,
}

impl Receiver {
    /// What one datagram means, if anything.
    pub(crate) fn judge(&mut self, bytes: &[u8], source: SocketAddr) -> Option<HeartbeatEvent> {
        let path = self.path;
        let rejected = |r: Refusal| HeartbeatEvent::Rejected {
            path,
            source,
            reason: r.reason,
            detail: r.detail,
        };
        let beat: Beat = match open_json(&self.key, bytes) {
            Ok(b) => b,
            Err(r) => return Some(rejected(r)),
        };
        if beat.from == self.local {
            return None;
        }
        if !self.peers.contains(&beat.from) {
            return Some(rejected(Refusal::new(
                Rejection::Garbled,
                format!("beat from {:?}, not a server of this cluster", beat.from),
            )));
        }
        if beat.path as usize != path {
            return Some(rejected(Refusal::new(
                Rejection::Garbled,
                format!(
                    "beat from {} for path {} arrived on path {path}",
                    beat.from, beat.path
                ),
            )));
        }
        let leaving = matches!(beat.kind, BeatKind::Leaving { .. });
        match self
            .guard
            .check(&beat.from, path, beat.incarnation, beat.seq)
        {
            // A gap before `Leaving` is its u64::MAX, not lost beats.
            Ok(lost) => Some(HeartbeatEvent::Heard {
                path,
                lost: if leaving { 0 } else { lost },
                beat,
                arrived_ms: super::monotonic_ms(),
            }),
            // `Leaving` goes out twice on purpose: the copy is no attack.
            Err(_) if leaving && beat.seq == LEAVING_SEQ => None,
            Err(r) => Some(rejected(r)),
        }
    }
}

async fn receive(socket: Arc<UdpSocket>, mut rx: Receiver, events: Recipient<HeartbeatEvent>) {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    loop {
        let (n, source) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("heartbeat path {}: receive failed: {e}", rx.path);
                // Never spin on a persistent error.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if let Some(event) = rx.judge(&buf[..n], source) {
            events.do_send(event);
        }
    }
}

impl Actor for LanHeartbeat {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let path = self.settings.path;
        let socket = match self.unregistered.take().map(UdpSocket::from_std) {
            Some(Ok(s)) => Arc::new(s),
            Some(Err(e)) => {
                tracing::error!("heartbeat path {path}: cannot use the socket: {e}");
                ctx.stop();
                return;
            }
            None => return,
        };
        self.socket = Some(socket.clone());
        let rx = Receiver {
            key: self.settings.key.clone(),
            path,
            local: self.settings.local.clone(),
            peers: self.settings.peers.iter().map(|(n, _)| n.clone()).collect(),
            guard: ReplayGuard::new(),
        };
        ctx.spawn(actix::fut::wrap_future(receive(
            socket,
            rx,
            self.events.clone(),
        )));
        // Fixed rate: a late tick does not shift the ones after it, and
        // ticks missed altogether are skipped rather than sent in a burst.
        let mut interval = tokio::time::interval(self.settings.interval);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        ctx.add_stream(futures_util::stream::unfold(
            interval,
            |mut iv| async move {
                let due = iv.tick().await;
                Some((Tick(due), iv))
            },
        ));
    }
}

impl StreamHandler<Tick> for LanHeartbeat {
    fn handle(&mut self, tick: Tick, _: &mut Context<Self>) {
        let late = tokio::time::Instant::now().saturating_duration_since(tick.0);
        if let Ok(mut l) = self.settings.lateness.lock() {
            l.record(late);
        }
        self.settings.metrics.beat_late(late);
        self.send_alive();
        self.check_link();
    }

    // The ticks never end; the default would stop the actor if they did.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<SetAdvert> for LanHeartbeat {
    type Result = ();
    fn handle(&mut self, msg: SetAdvert, _: &mut Context<Self>) {
        self.advert = msg.0;
        self.send_alive();
    }
}

impl Handler<SetConfigDigest> for LanHeartbeat {
    type Result = ();
    fn handle(&mut self, msg: SetConfigDigest, _: &mut Context<Self>) {
        self.settings.config_digest = msg.0;
        self.send_alive();
    }
}

impl Handler<SendLeaving> for LanHeartbeat {
    type Result = ();
    fn handle(&mut self, msg: SendLeaving, _: &mut Context<Self>) {
        let beat = self.beat(LEAVING_SEQ, BeatKind::Leaving { died: msg.died });
        // Twice against loss; receivers drop the copy quietly.
        self.send(&beat, 2);
        self.left = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::heartbeat::send_leaving;
    use crate::wire::seal;
    use tokio::sync::mpsc;

    struct Collector(mpsc::UnboundedSender<HeartbeatEvent>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<HeartbeatEvent> for Collector {
        type Result = ();
        fn handle(&mut self, event: HeartbeatEvent, _: &mut Context<Self>) {
            let _ = self.0.send(event);
        }
    }

    type Events = mpsc::UnboundedReceiver<HeartbeatEvent>;

    fn collector() -> (Recipient<HeartbeatEvent>, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Collector(tx).start().recipient(), rx)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A UDP port free on all of `ips`.
    fn free_port(ips: &[IpAddr]) -> u16 {
        for _ in 0..50 {
            let first = std::net::UdpSocket::bind((ips[0], 0)).unwrap();
            let port = first.local_addr().unwrap().port();
            if ips[1..]
                .iter()
                .all(|ip| std::net::UdpSocket::bind((*ip, port)).is_ok())
            {
                return port;
            }
        }
        panic!("no common free port");
    }

    fn settings(
        local: &str,
        local_addr: IpAddr,
        port: u16,
        peers: &[(&str, IpAddr)],
        key: &Arc<ClusterKey>,
    ) -> LanSettings {
        LanSettings {
            path: 0,
            local_addr,
            port,
            peers: peers.iter().map(|(n, a)| (n.to_string(), *a)).collect(),
            interval: Duration::from_millis(50),
            key: key.clone(),
            local: local.into(),
            incarnation: crate::wire::replay::incarnation_now(),
            config_digest: "digest".into(),
            lateness: Default::default(),
            metrics: Default::default(),
        }
    }

    fn start(s: LanSettings) -> (Addr<LanHeartbeat>, Events) {
        let (recipient, rx) = collector();
        (LanHeartbeat::new(s, recipient).unwrap().start(), rx)
    }

    /// The next event that `pick` accepts; others are skipped. Bounded only
    /// so a broken build fails instead of hanging.
    async fn next<T>(rx: &mut Events, mut pick: impl FnMut(HeartbeatEvent) -> Option<T>) -> T {
        let wait = async {
            loop {
                let event = rx.recv().await.expect("events channel closed");
                if let Some(t) = pick(event) {
                    return t;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("the expected heartbeat event never came")
    }

    fn heard_from(from: &str) -> impl FnMut(HeartbeatEvent) -> Option<(Beat, u64)> + '_ {
        move |e| match e {
            HeartbeatEvent::Heard { beat, lost, .. } if beat.from == from => Some((beat, lost)),
            _ => None,
        }
    }

    fn rejected(e: HeartbeatEvent) -> Option<(SocketAddr, Rejection, String)> {
        match e {
            HeartbeatEvent::Rejected {
                source,
                reason,
                detail,
                ..
            } => Some((source, reason, detail)),
            _ => None,
        }
    }

    fn key(b: u8) -> Arc<ClusterKey> {
        Arc::new(ClusterKey::from_bytes([b; 32]))
    }

    #[actix_rt::test]
    async fn two_servers_hear_each_other() {
        let k = key(1);
        let (ip_a, ip_b) = (ip("127.0.0.2"), ip("127.0.0.3"));
        let port = free_port(&[ip_a, ip_b]);
        let (a, mut rx_a) = start(settings("a", ip_a, port, &[("b", ip_b)], &k));
        let (_b, mut rx_b) = start(settings("b", ip_b, port, &[("a", ip_a)], &k));

        // First, at start (loopback holds all of 127/8).
        let up = next(&mut rx_a, |e| match e {
            HeartbeatEvent::LocalLink { path: 0, up } => Some(up),
            _ => None,
        })
        .await;
        assert!(up);

        let (beat, _) = next(&mut rx_a, heard_from("b")).await;
        assert_eq!(beat.path, 0);
        assert_eq!(beat.config_digest, "digest");
        assert_eq!(beat.kind, BeatKind::Alive(Advert::default()));
        let (beat, _) = next(&mut rx_b, heard_from("a")).await;
        assert!(beat.seq >= 1);

        // A new advert reaches the peer.
        let advert = Advert {
            stopping: true,
            ..Advert::default()
        };
        a.send(SetAdvert(advert.clone())).await.unwrap();
        let mut after =
            |e| heard_from("a")(e).filter(|(b, _)| b.kind == BeatKind::Alive(advert.clone()));
        next(&mut rx_b, &mut after).await;

        // An orderly stop.
        a.send(SendLeaving { died: false }).await.unwrap();
        let (beat, lost) = next(&mut rx_b, |e| {
            heard_from("a")(e).filter(|(b, _)| matches!(b.kind, BeatKind::Leaving { .. }))
        })
        .await;
        assert_eq!(beat.kind, BeatKind::Leaving { died: false });
        assert_eq!(beat.seq, LEAVING_SEQ);
        assert_eq!(lost, 0);
    }

    #[actix_rt::test]
    async fn forged_foreign_and_misrouted_packets_are_rejected() {
        let k = key(1);
        let (ip_a, ip_b) = (ip("127.0.0.4"), ip("127.0.0.5"));
        let port = free_port(&[ip_a, ip_b]);
        let (_a, mut rx) = start(settings("a", ip_a, port, &[("b", ip_b)], &k));
        let target = SocketAddr::new(ip_a, port);
        let sender = std::net::UdpSocket::bind((ip_b, 0)).unwrap();
        let source = sender.local_addr().unwrap();
        let beat = |from: &str, path: u8| Beat {
            from: from.into(),
            incarnation: 1,
            seq: 1,
            path,
            config_digest: "digest".into(),
            sent_ms: 1,
            kind: BeatKind::Alive(Advert::default()),
        };

        let forged = seal_json(&key(2), &beat("b", 0)).unwrap();
        sender.send_to(&forged, target).unwrap();
        let (from, reason, _) = next(&mut rx, rejected).await;
        assert_eq!((from, reason), (source, Rejection::Forged));

        sender.send_to(b"hello", target).unwrap();
        let (_, reason, _) = next(&mut rx, rejected).await;
        assert_eq!(reason, Rejection::Garbled);

        // Authentic, but not a beat.
        sender.send_to(&seal(&k, b"[1,2]"), target).unwrap();
        let (_, reason, _) = next(&mut rx, rejected).await;
        assert_eq!(reason, Rejection::Garbled);

        let stranger = seal_json(&k, &beat("mallory", 0)).unwrap();
        sender.send_to(&stranger, target).unwrap();
        let (_, reason, detail) = next(&mut rx, rejected).await;
        assert_eq!(reason, Rejection::Garbled);
        assert!(detail.contains("mallory"), "{detail}");

        let misrouted = seal_json(&k, &beat("b", 1)).unwrap();
        sender.send_to(&misrouted, target).unwrap();
        let (_, reason, detail) = next(&mut rx, rejected).await;
        assert_eq!(reason, Rejection::Garbled);
        assert!(detail.contains("path 1"), "{detail}");

        // The genuine article is heard.
        sender
            .send_to(&seal_json(&k, &beat("b", 0)).unwrap(), target)
            .unwrap();
        let (_, lost) = next(&mut rx, heard_from("b")).await;
        assert_eq!(lost, 0);
    }

    #[actix_rt::test]
    async fn a_captured_beat_played_back_is_replayed() {
        let k = key(1);
        let (ip_a, ip_b, ip_c) = (ip("127.0.0.6"), ip("127.0.0.7"), ip("127.0.0.8"));
        let port = free_port(&[ip_a, ip_b, ip_c]);
        // "c" is an eavesdropper on b's traffic.
        let tap = UdpSocket::bind((ip_c, port)).await.unwrap();
        let (_a, mut rx_a) = start(settings("a", ip_a, port, &[("b", ip_b)], &k));
        let (_b, _rx_b) = start(settings("b", ip_b, port, &[("a", ip_a), ("c", ip_c)], &k));

        let mut buf = vec![0u8; RECEIVE_BUFFER];
        let (n, _) = tap.recv_from(&mut buf).await.unwrap();
        let captured = buf[..n].to_vec();
        let seq = open_json::<Beat>(&k, &captured).unwrap().seq;
        // Wait until a has taken that beat (or a later one) itself.
        next(&mut rx_a, |e| {
            heard_from("b")(e).filter(|(b, _)| b.seq >= seq)
        })
        .await;

        let replayer = std::net::UdpSocket::bind((ip_c, 0)).unwrap();
        replayer
            .send_to(&captured, SocketAddr::new(ip_a, port))
            .unwrap();
        let (source, reason, detail) = next(&mut rx_a, rejected).await;
        assert_eq!(source, replayer.local_addr().unwrap());
        assert_eq!(reason, Rejection::Replayed, "{detail}");
    }

    #[actix_rt::test]
    async fn the_guardians_leaving_is_heard_once() {
        let k = key(1);
        let (ip_a, ip_b) = (ip("127.0.0.9"), ip("127.0.0.10"));
        let port = free_port(&[ip_a, ip_b]);
        let (_a, mut rx) = start(settings("a", ip_a, port, &[("b", ip_b)], &k));
        let target = SocketAddr::new(ip_a, port);

        let errors = send_leaving(
            &k,
            "b",
            42,
            "digest",
            true,
            &[(0, SocketAddr::new(ip_b, 0), target)],
        );
        assert!(errors.is_empty(), "{errors:?}");
        let (beat, lost) = next(&mut rx, heard_from("b")).await;
        assert_eq!(beat.kind, BeatKind::Leaving { died: true });
        assert_eq!((beat.incarnation, lost), (42, 0));

        // The copy is dropped quietly: the next rejection reported is this
        // forged marker, sent after it.
        let marker = std::net::UdpSocket::bind((ip_b, 0)).unwrap();
        marker.send_to(&seal(&key(2), b"{}"), target).unwrap();
        let (source, reason, _) = next(&mut rx, rejected).await;
        assert_eq!(
            (source, reason),
            (marker.local_addr().unwrap(), Rejection::Forged)
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let k = key(1);
        let (recipient_tx, _) = mpsc::unbounded_channel::<HeartbeatEvent>();
        let sys = actix::System::new();
        sys.block_on(async move {
            let recipient = Collector(recipient_tx).start().recipient();
            let mut s = settings("a", ip("127.0.0.11"), 0, &[], &k);
            s.interval = Duration::ZERO;
            let e = LanHeartbeat::new(s.clone(), recipient.clone())
                .err()
                .unwrap();
            assert!(e.contains("interval"), "{e}");
            s.interval = Duration::from_millis(50);
            s.path = 300;
            assert!(LanHeartbeat::new(s, recipient).is_err());
        });
    }
}
