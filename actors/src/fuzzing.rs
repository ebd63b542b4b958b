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
    let _ = run(smtp::converse(
        script.stream(),
        &delivery.primary.label(),
        delivery.login.as_ref(),
        &delivery,
        &mail,
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
            piece: self.piece,
        }
    }
}

/// The reading end of a [`Script`].
#[derive(Debug)]
pub struct ScriptStream {
    turns: VecDeque<Vec<u8>>,
    piece: usize,
}

impl AsyncRead for ScriptStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // An empty turn sends nothing: the next one is what arrives.
        while this.turns.front().is_some_and(Vec::is_empty) {
            this.turns.pop_front();
        }
        if let Some(turn) = this.turns.front_mut() {
            let mut n = turn.len().min(buf.remaining());
            if this.piece > 0 {
                n = n.min(this.piece);
            }
            buf.put_slice(&turn[..n]);
            turn.drain(..n);
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
    fn a_script_is_read_turn_by_turn_in_pieces() {
        use tokio::io::AsyncReadExt;
        let script = Script::new(b"220 a\r\n\xff\xff250 b\r\n", 4);
        let mut stream = script.stream();
        let mut reads = Vec::new();
        run(async {
            let mut buf = [0u8; 64];
            loop {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                reads.push(buf[..n].to_vec());
            }
        });
        let expected: [&[u8]; 4] = [b"220 ", b"a\r\n", b"250 ", b"b\r\n"];
        assert_eq!(reads, expected);
    }
}
