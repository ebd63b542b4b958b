//! The doors of the fuzz targets (`actors/fuzz/`): for each door through
//! which bytes from outside come in, one function that hands them to the
//! product's own parsing and checking code, as the daemon does. Not an
//! interface of the product: the targets are its only callers (and the
//! regression tests of what they found).
//!
//! Replies of servers and lamps are played from memory by [`Script`]: the
//! same code that reads a `TcpStream` reads it, in pieces of a size the
//! input chooses, so that the fuzzer also tries replies cut anywhere.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::coordinator::peer::PeerRequest;
use crate::heartbeat::lan::Receiver;
use crate::model::config::{self, ClusterConfig};
use crate::model::traps::TrapListeners;
use crate::wire::replay::ReplayGuard;
use crate::wire::{seal, ClusterKey};

/// The cluster key the `heartbeat` and `peer` targets use, so that they
/// can seal what they want read past the authentication code.
pub const KEY: [u8; 32] = *b"understudy fuzzing cluster key!!";

/// The servers of the targets' cluster; the receiver is the first.
pub const SERVERS: [&str; 3] = ["server1", "server2", "server3"];

/// The nonce of the `peer` target's connection.
pub const PEER_NONCE: &str = "00112233445566778899aabbccddeeff";

/// `payload` sealed with [`KEY`].
pub fn sealed(payload: &[u8]) -> Vec<u8> {
    seal(&ClusterKey::from_bytes(KEY), payload)
}

/// Configuration text through `config check`'s checks: parsing, the
/// semantic validation, then what `config check` shows of a valid file
/// (warnings, digest, activation orders, servers of each group, trap
/// endpoints). `true` when the text is a valid configuration.
pub fn config(text: &str) -> bool {
    let Ok(c) = config::parse("fuzz.ron", text) else {
        return false;
    };
    let _ = crate::model::partition::warnings(&c);
    let _ = crate::model::watchdog::warnings(&c);
    let _ = crate::model::traps::warnings(&c);
    let _ = c.digest();
    for g in &c.groups {
        let _ = crate::model::plan::activation_order(g);
        let _ = c.group_servers(g);
    }
    for s in &c.servers {
        let _ = crate::model::traps::plan(&c, &s.name);
    }
    true
}

/// Datagrams as one heartbeat path (path 0 of [`SERVERS`]`[0]`) receives
/// them one after another, with its replay guard: how many were heard.
pub fn heartbeat(datagrams: &[Vec<u8>]) -> usize {
    let mut receiver = Receiver {
        key: Arc::new(ClusterKey::from_bytes(KEY)),
        path: 0,
        local: SERVERS[0].into(),
        peers: SERVERS.iter().map(|s| s.to_string()).collect(),
        guard: ReplayGuard::new(),
    };
    let source: SocketAddr = ([192, 0, 2, 2], 29001).into();
    datagrams
        .iter()
        .filter_map(|d| receiver.judge(d, source))
        .filter(|e| matches!(e, crate::heartbeat::HeartbeatEvent::Heard { .. }))
        .count()
}

/// Bytes on a peer-link connection: read frame by frame as the server and
/// the client read them (header, size limit, then the rest), and each frame
/// checked as a request from a peer (for a connection whose nonce is
/// [`PEER_NONCE`]), as a greeting and as an answer. How many frames were
/// authentic requests.
pub fn peer(stream: &[u8]) -> usize {
    let key = ClusterKey::from_bytes(KEY);
    let peers: Vec<String> = SERVERS.iter().map(|s| s.to_string()).collect();
    let mut reader = stream;
    let mut requests = 0;
    while !reader.is_empty() {
        let Ok(frame) = run(crate::wire::peer::read_frame(&mut reader)) else {
            break;
        };
        if crate::wire::peer::check_request::<PeerRequest>(&key, &peers, PEER_NONCE, &frame).is_ok()
        {
            requests += 1;
        }
        let _ = crate::wire::peer::greeting(&key, &frame);
        let _ = crate::wire::peer::check_answer::<crate::control::protocol::Response>(
            &key, PEER_NONCE, &frame,
        );
    }
    requests
}

/// One line read from the control socket, as the server judges it, then
/// what the server asks of a request before handing it on. `true` when it
/// would reach the coordinator.
pub fn control(line: &[u8]) -> bool {
    match crate::control::server::read_request(line) {
        Ok(request) => {
            let _ = request.command.is_mutating();
            let _ = request.command.spelled();
            true
        }
        Err(_) => false,
    }
}

/// An SMTP server's side of a session, played to the mail notifier (with
/// a login when `login`) and to the smtp monitor.
pub fn smtp_reply(script: &Script, login: bool) {
    use crate::notify::mail::smtp;
    let delivery = smtp::Delivery {
        primary: smtp::Endpoint {
            host: "mail.test".into(),
            port: 25,
        },
        alternative: None,
        login: login.then(|| smtp::Login {
            mode: crate::notify::mail::SmtpAuth::Auto,
            user: "alerts".into(),
            password: crate::notify::mail::Secret::new("secret"),
        }),
        wait: Duration::from_secs(1),
        helo: "server1".into(),
    };
    let mail = crate::notify::mail::compose::Rendered {
        from: "understudy@server1.test".into(),
        to: vec!["ops@example.test".into(), "oncall@example.test".into()],
        data: b"Subject: fuzz\r\n\r\nbody\r\n".to_vec(),
    };
    // Two mails over one connection, as a session sends them.
    let _ = run(smtp::converse(
        script.stream(),
        &delivery.primary.label(),
        delivery.login.as_ref(),
        &delivery,
        &[mail.clone(), mail],
    ));
    let step = Cell::new(crate::monitor::tcp::Step::Receive);
    let _ = run(crate::monitor::smtp::converse(&mut script.stream(), &step));
}

/// An HTTP server's reply, as the http monitor reads and judges its status
/// line (for `/` and for another path), as the HTTP target of partition
/// resolution judges it, and as the lamp's HTTP client reads its answer.
pub fn http_status(script: &Script) {
    let mut buf = [0u8; 1024];
    let endpoint = "web.test:80";
    if let Ok((len, closed)) = run(crate::monitor::http::read_status(
        &mut script.stream(),
        &mut buf,
        &endpoint,
    )) {
        let reply = buf.get(..len).unwrap_or_default();
        let _ = crate::monitor::http::judge(reply, closed, "/");
        let _ = crate::monitor::http::judge(reply, closed, "/health");
        let _ = crate::np_target::http::judge(reply, "http://web.test/health");
    }
    let _ = run(crate::notify::lamp::http::answer(
        &mut script.stream(),
        LAMP_STEP,
    ));
}

/// A lamp's answer, as each of the lamp protocols reads and judges it.
pub fn lamp_reply(script: &Script) {
    use crate::notify::lamp;
    let _ = run(lamp::pns::answer(&mut script.stream(), LAMP_STEP));
    let _ = run(lamp::http::answer(&mut script.stream(), LAMP_STEP));
    let rsh = lamp::Lamp {
        server: SERVERS[0].into(),
        address: "198.51.100.50".into(),
        protocol: lamp::LampProtocol::Rsh,
        port: None,
        user: Some("lamp".into()),
    };
    let _ = run(lamp::rsh::answer(&mut script.stream(), LAMP_STEP, &rsh));
}

const LAMP_STEP: Duration = Duration::from_secs(1);

/// The cluster of the `snmp_trap` target: seed 003's sample, where
/// server1's `mrw1` takes any community and `mrw2` only "bmc".
const TRAP_CLUSTER: &str = r#"Cluster(
    name: "cluster",
    servers: [
        Server(name: "server1", interconnects: ["198.51.100.1"]),
        Server(name: "server2", interconnects: ["198.51.100.2"]),
    ],
    heartbeat: (key_file: "/etc/understudy/cluster.key"),
    groups: [Group(name: "failover1", resources: [
        Resource(name: "app", kind: Exec(start: "/bin/true")),
    ])],
    monitors: [
        Monitor(name: "mrw1", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1"),
            recovery: (target: Group("failover1"))),
        Monitor(name: "mrw2",
            kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1", community: "bmc"),
            recovery: (target: Group("failover1"))),
    ],
)"#;

/// One datagram at a trap receiver: decoded as the receiver task does,
/// then judged by the brain for the endpoint's monitors. How many
/// monitors it reaches.
pub fn snmp_trap(datagram: &[u8]) -> usize {
    static CONFIG: OnceLock<ClusterConfig> = OnceLock::new();
    // Invalid, the target would fuzz nothing: better it fails at once.
    let c = CONFIG.get_or_init(|| {
        config::parse("trap.ron", TRAP_CLUSTER).expect("the trap cluster is valid")
    });
    let mut listeners = TrapListeners::default();
    let (open, _) = listeners.reconfigure(crate::model::traps::plan(c, SERVERS[0]));
    let packet = crate::monitor::message::trap::decode(datagram);
    let mut reached = 0;
    for endpoint in open {
        if let crate::model::traps::Verdict::Deliver(monitors) = listeners.judge(endpoint, &packet)
        {
            reached += monitors.len();
        }
    }
    reached
}

/// The `ipmi_reply` target's BMC: its answers, one datagram per request
/// of the session, in order, each as the input gives it (`raw`) or an IPMI
/// v1.5 message without authentication whose headers and checksums this
/// side writes (so that the fuzzer gets past them into what the answer
/// holds). Once they run out, every request gets an empty datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BmcAnswer {
    Raw(Vec<u8>),
    /// The IPMB message: requester address, NetFn/LUN, (checksum), responder
    /// address, sequence/LUN, command, completion code, data, (checksum).
    V15 {
        session_seq: u32,
        session_id: u32,
        ipmb: Vec<u8>,
    },
}

impl BmcAnswer {
    /// The datagram the BMC sends.
    pub fn datagram(&self) -> Vec<u8> {
        match self {
            BmcAnswer::Raw(bytes) => bytes.clone(),
            BmcAnswer::V15 {
                session_seq,
                session_id,
                ipmb,
            } => {
                // RMCP header (version 1.0, no ACK, class IPMI), then the
                // v1.5 session header with authentication type "none".
                let mut d = vec![0x06, 0x00, 0xff, 0x07, 0x00];
                d.extend_from_slice(&session_seq.to_le_bytes());
                d.extend_from_slice(&session_id.to_le_bytes());
                let mut msg = ipmb.clone();
                msg.truncate(250);
                // Room for both checksums (bytes 2 and last).
                if msg.len() >= 3 {
                    msg[2] = checksum(&msg[..2]);
                    let body = checksum(&msg[3..]);
                    msg.push(body);
                }
                d.push(msg.len() as u8);
                d.extend_from_slice(&msg);
                d
            }
        }
    }
}

impl BmcAnswer {
    /// A fuzz input's answers: each a tag byte (even: raw; odd: v1.5,
    /// whose bytes start with the session sequence number and id, 4 bytes
    /// each, little-endian), a length byte, then that many bytes.
    pub fn from_input(mut data: &[u8]) -> Vec<BmcAnswer> {
        let mut answers = Vec::new();
        while let [tag, len, rest @ ..] = data {
            let n = (*len as usize).min(rest.len());
            let (bytes, after) = rest.split_at(n);
            data = after;
            answers.push(if tag % 2 == 0 {
                BmcAnswer::Raw(bytes.to_vec())
            } else {
                let word = |at: usize| {
                    let mut w = [0u8; 4];
                    for (i, b) in bytes.iter().skip(at).take(4).enumerate() {
                        w[i] = *b;
                    }
                    u32::from_le_bytes(w)
                };
                BmcAnswer::V15 {
                    session_seq: word(0),
                    session_id: word(4),
                    ipmb: bytes.get(8..).unwrap_or_default().to_vec(),
                }
            });
        }
        answers
    }

    /// The inverse of [`BmcAnswer::from_input`], for seeds.
    pub fn to_input(answers: &[BmcAnswer]) -> Vec<u8> {
        let mut out = Vec::new();
        for a in answers {
            let (tag, bytes) = match a {
                BmcAnswer::Raw(b) => (0u8, b.clone()),
                BmcAnswer::V15 {
                    session_seq,
                    session_id,
                    ipmb,
                } => {
                    let mut b = session_seq.to_le_bytes().to_vec();
                    b.extend_from_slice(&session_id.to_le_bytes());
                    b.extend_from_slice(ipmb);
                    (1u8, b)
                }
            };
            out.push(tag);
            out.push(bytes.len().min(255) as u8);
            out.extend(bytes.iter().take(255));
        }
        out
    }
}

/// IPMB's two's-complement checksum.
fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, b| sum.wrapping_add(*b))
        .wrapping_neg()
}

/// A BMC on loopback answering with `answers` the IPMI session the BMC
/// heartbeat path opens (`heartbeat/bmc.rs` `Session`, through ipmi-rs):
/// one poll (ping, channel authentication, RMCP+ or v1.5 activation, Get
/// Chassis Status), then a forced stop (Set Session Privilege, Chassis
/// Control, Get Chassis Status once). What the poll read, and whether the
/// power off was confirmed.
pub fn ipmi_reply(answers: &[BmcAnswer]) -> (crate::heartbeat::bmc::BmcReading, bool) {
    use crate::heartbeat::bmc::{BmcConfig, Secret, Session};
    // One BMC for the process, serving one input at a time: a thread per
    // input would cost more than the input (and leave LeakSanitizer a
    // thread's exit to report).
    static BMC: OnceLock<std::sync::Mutex<LoopbackBmc>> = OnceLock::new();
    let bmc = BMC.get_or_init(|| std::sync::Mutex::new(LoopbackBmc::start()));
    let bmc = bmc
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    bmc.serve(answers.iter().map(BmcAnswer::datagram).collect());
    let config = BmcConfig {
        address: "127.0.0.1".into(),
        port: bmc.address.port(),
        user: "fuzz".into(),
        password: None,
        password_file: None,
        interval_ms: 1000,
        timeout_ms: 2000,
    };
    // Every request is answered at once: the timeout is never reached.
    let mut session = Session::new(config, Secret::new("fuzz"), Duration::from_secs(20));
    let reading = session.read();
    let stopped = session
        .power_off_confirmed(std::time::Instant::now())
        .is_ok();
    drop(session);
    bmc.finish();
    (reading, stopped)
}

/// The `ipmi_reply` target's BMC on loopback: a thread answering each
/// request with the next of the current input's answers (an empty
/// datagram once they run out).
struct LoopbackBmc {
    address: SocketAddr,
    answers: std::sync::mpsc::Sender<Vec<Vec<u8>>>,
    /// A datagram from this socket ends the current input.
    stop: std::net::UdpSocket,
    done: std::sync::mpsc::Receiver<()>,
}

impl LoopbackBmc {
    fn start() -> LoopbackBmc {
        use std::net::UdpSocket;
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
        let address = socket.local_addr().expect("its address");
        let stop = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
        let stop_address = stop.local_addr().expect("its address");
        let (answers, inputs) = std::sync::mpsc::channel::<Vec<Vec<u8>>>();
        let (finished, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            for input in inputs {
                let mut next = input.iter();
                while let Ok((_, from)) = socket.recv_from(&mut buf) {
                    if from == stop_address {
                        break;
                    }
                    let answer = next.next().map(Vec::as_slice).unwrap_or_default();
                    let _ = socket.send_to(answer, from);
                }
                let _ = finished.send(());
            }
        });
        LoopbackBmc {
            address,
            answers,
            stop,
            done,
        }
    }

    fn serve(&self, answers: Vec<Vec<u8>>) {
        self.answers.send(answers).expect("the BMC thread runs");
    }

    /// Ends the current input, once the session is over (every request
    /// it sent has been answered: none is left for the next input).
    fn finish(&self) {
        let _ = self.stop.send_to(b"", self.address);
        self.done.recv().expect("the BMC thread runs");
    }
}

/// A BMC that speaks IPMI v1.5 without authentication, answering a
/// poll (power on), then a forced stop (power off confirmed): the
/// `ipmi_reply` target's first seed.
pub fn v15_session() -> Vec<BmcAnswer> {
    // RMCP header, class ASF; ASF pong (IANA 4542, tag 0xC8, 16 bytes
    // of data: IANA, OEM, entities "IPMI", interactions none).
    let mut pong = vec![
        0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x40, 0xc8, 0x00,
    ];
    pong.extend([0x10, 0x00, 0x00, 0x11, 0xbe, 0, 0, 0, 0, 0x80, 0x00]);
    pong.extend([0u8; 6]);
    // requester, NetFn (response) << 2, checksum, responder, sequence,
    // command, completion code, data.
    let answer = |netfn: u8, cmd: u8, data: &[u8]| {
        let mut m = vec![0x81, netfn << 2, 0, 0x20, 0x00, cmd, 0x00];
        m.extend_from_slice(data);
        m
    };
    let v15 = |session_id: u32, ipmb: Vec<u8>| BmcAnswer::V15 {
        session_seq: 0,
        session_id,
        ipmb,
    };
    vec![
        BmcAnswer::Raw(pong),
        // Get Channel Authentication Capabilities: channel 1, auth
        // "none", IPMI v1.5 connections only.
        v15(0, answer(0x07, 0x38, &[0x01, 0x81, 0x00, 0x01, 0, 0, 0, 0])),
        // Get Session Challenge: temporary session 0x11, challenge.
        v15(
            0,
            answer(0x07, 0x39, &[&0x11u32.to_le_bytes()[..], &[7; 16]].concat()),
        ),
        // Activate Session: auth none, session 0x22, sequence 1,
        // privilege Administrator.
        v15(
            0x11,
            answer(0x07, 0x3a, &[0x00, 0x22, 0, 0, 0, 0x01, 0, 0, 0, 0x04]),
        ),
        // Get Chassis Status: power on.
        v15(0x22, answer(0x01, 0x01, &[0x01, 0x00, 0x00])),
        // Set Session Privilege Level: Operator.
        v15(0x22, answer(0x07, 0x3b, &[0x03])),
        // Chassis Control.
        v15(0x22, answer(0x01, 0x02, &[])),
        // Get Chassis Status: power off.
        v15(0x22, answer(0x01, 0x01, &[0x00, 0x00, 0x00])),
    ]
}

/// What a peer sends on a connection, and in what pieces it arrives:
/// turns (each as the peer sends it at once, a reply say), and the bytes
/// one read takes at most. A read never takes bytes of two turns, as a
/// client that waits for each reply before its next command never sees two
/// replies arrive together.
#[derive(Debug, Clone)]
pub struct Script {
    turns: Vec<Vec<u8>>,
    /// Bytes per read (0: as many as the reader takes).
    piece: usize,
}

impl Script {
    /// `bytes` holds the turns, separated by 0xFF (a byte of no reply in
    /// the text protocols).
    pub fn new(bytes: &[u8], piece: usize) -> Script {
        Script {
            turns: bytes.split(|&b| b == 0xff).map(<[u8]>::to_vec).collect(),
            piece,
        }
    }

    /// A fuzz input: the first byte is the piece size, the rest the turns.
    pub fn from_input(data: &[u8]) -> Script {
        match data.split_first() {
            Some((&piece, bytes)) => Script::new(bytes, piece as usize),
            None => Script::new(&[], 0),
        }
    }

    /// A stream that reads the script from its start (then its end: the
    /// peer closed) and takes in whatever is written to it.
    pub fn stream(&self) -> ScriptStream {
        ScriptStream {
            turns: self.turns.iter().cloned().collect(),
            at: 0,
            piece: self.piece,
        }
    }
}

impl crate::notify::mail::smtp::Link for ScriptStream {}

/// The reading end of a [`Script`].
#[derive(Debug)]
pub struct ScriptStream {
    turns: VecDeque<Vec<u8>>,
    /// How much of the front turn was read (an offset: moving the rest
    /// after each read would cost time quadratic in a turn's length).
    at: usize,
    piece: usize,
}

impl AsyncRead for ScriptStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A turn read to its end (or empty, which sends nothing): the next
        // one is what arrives.
        while this.turns.front().is_some_and(|t| this.at >= t.len()) {
            this.turns.pop_front();
            this.at = 0;
        }
        if let Some(rest) = this.turns.front().and_then(|t| t.get(this.at..)) {
            let mut n = rest.len().min(buf.remaining());
            if this.piece > 0 {
                n = n.min(this.piece);
            }
            buf.put_slice(&rest[..n]);
            this.at += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ScriptStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs `fut` to its end on this thread's runtime (timers enabled: the
/// code under test bounds its waits, which never run out here).
fn run<F: Future>(fut: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| rt.block_on(fut))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        crate::wire::from_hex(s).unwrap()
    }

    #[test]
    fn the_trap_cluster_is_valid_and_traps_reach_its_monitors() {
        if let Err(problems) = config::parse("trap.ron", TRAP_CLUSTER) {
            panic!("{problems:?}");
        }
        // `snmptrap -v 2c -c public` (monitor/message/trap.rs): mrw1 only.
        let v2c = "305d02010104067075626c6963a750020442b2d7d10201000201003042300f06082b0601020101030043032fe85e3019060a2b060106030101040100060b2b06010401bf0802030001301406082b060102010105000408626d632073617973";
        assert_eq!(snmp_trap(&hex(v2c)), 1);
        assert_eq!(snmp_trap(b"not snmp"), 0);
    }

    #[test]
    fn the_doors_take_what_the_product_sends() {
        assert!(config(include_str!("../../config/understudy.ron")));
        assert!(!config("Cluster("));
        let beat = |seq: u64| {
            let b = crate::wire::heartbeat::Beat {
                from: SERVERS[1].into(),
                incarnation: 7,
                seq,
                path: 0,
                config_digest: "d".into(),
                sent_ms: 0,
                kind: crate::wire::heartbeat::BeatKind::Leaving { died: false },
            };
            sealed(&serde_json::to_vec(&b).unwrap())
        };
        // The copy of the second is a replay.
        assert_eq!(heartbeat(&[beat(1), beat(2), beat(2)]), 2);
        let request = serde_json::json!({
            "from": SERVERS[2], "nonce": PEER_NONCE, "body": {"request": "status"}
        });
        let frame = sealed(&serde_json::to_vec(&request).unwrap());
        assert_eq!(peer(&[frame.clone(), frame].concat()), 2);
        assert!(control(
            b"{\"version\":1,\"command\":{\"name\":\"status\"}}\n"
        ));
        assert!(!control(
            b"{\"version\":2,\"command\":{\"name\":\"status\"}}\n"
        ));
    }

    #[test]
    fn a_bmc_speaking_ipmi_v15_is_polled_and_powered_off() {
        use crate::heartbeat::bmc::BmcReading;
        let session = v15_session();
        assert_eq!(ipmi_reply(&session), (BmcReading::On, true));
        // The input encoding carries it whole.
        assert_eq!(
            BmcAnswer::from_input(&BmcAnswer::to_input(&session)),
            session
        );
        // Without the last answer the power off is not confirmed.
        assert_eq!(
            ipmi_reply(&session[..session.len() - 1]),
            (BmcReading::On, false)
        );
        // Nothing answering sensibly: unreachable, at once.
        let (reading, stopped) = ipmi_reply(&[]);
        assert!(matches!(reading, BmcReading::Unreachable(_)), "{reading:?}");
        assert!(!stopped);
    }

    /// Inputs on which the `ipmi_reply` target found ipmi-rs 0.6.0
    /// panicking (fixed in actors/vendor/ipmi-rs): each now reads as an
    /// answer refused by the library's own checks, never as its failure.
    #[test]
    fn bmc_answers_that_made_ipmi_rs_panic_are_refused() {
        use crate::heartbeat::bmc::BmcReading;
        let crashes: &[(&str, &[u8])] = &[
            // A pong cut short of the 16 data bytes its length byte
            // announces (asf.rs indexed past the end).
            (
                "short pong",
                &[
                    0x00, 0x0e, 0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x40, 0xc8, 0x00,
                    0x10, 0x00, 0x00,
                ],
            ),
            // A v1.5 answer with a payload length byte but no payload
            // (v1_5/message.rs subtracted 1 from 0).
            (
                "v1.5 without payload",
                &[
                    &BmcAnswer::to_input(&v15_session()[..1])[..],
                    &[
                        0x00, 0x0e, 0x06, 0x00, 0xff, 0x07, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,
                    ][..],
                ]
                .concat(),
            ),
        ];
        for (what, input) in crashes {
            let (reading, stopped) = ipmi_reply(&BmcAnswer::from_input(input));
            let BmcReading::Unreachable(why) = reading else {
                panic!("{what}: {reading:?}");
            };
            assert!(!why.contains("library failed"), "{what}: {why}");
            assert!(!stopped, "{what}");
        }
    }

    /// Every read of `script` with a buffer of `room` bytes, to the end.
    fn reads(script: &Script, room: usize) -> Vec<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut stream = script.stream();
        let mut reads = Vec::new();
        run(async {
            let mut buf = vec![0u8; room];
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                reads.push(buf[..n].to_vec());
            }
        });
        reads
    }

    #[test]
    fn a_script_is_read_turn_by_turn_in_pieces() {
        let script = Script::new(b"220 a\r\n\xff\xff250 b\r\n", 4);
        let expected: [&[u8]; 4] = [b"220 ", b"a\r\n", b"250 ", b"b\r\n"];
        assert_eq!(reads(&script, 64), expected);
        // Whole turns (piece 0), as far as the reader's buffer takes them.
        let script = Script::new(b"220 a\r\n\xff250 b\r\n", 0);
        let expected: [&[u8]; 6] = [b"220", b" a\r", b"\n", b"250", b" b\r", b"\n"];
        assert_eq!(reads(&script, 3), expected);
    }
}
