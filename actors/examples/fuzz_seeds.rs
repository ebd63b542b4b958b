//! Writes seed inputs for the fuzz targets (`actors/fuzz/`) made by the
//! product's own encoders: heartbeats and peer-link frames sealed as the
//! daemon seals them, control requests as the client writes them, an
//! alert trap as the SNMP notifier sends it. FUZZING.md says how the
//! committed corpora were made from these (`cargo fuzz cmin`).
//!
//! `cargo run -p understudy-actors --example fuzz_seeds -- DIR [BMC]`
//! writes DIR/TARGET/NAME for the targets heartbeat, peer, control,
//! snmp_trap and ipmi_reply (with BMC, `HOST:PORT` of an ipmi_sim, also
//! its answers to the target's session).

use std::path::Path;

use serde::Serialize;
use understudy_actors::control::protocol::{Command, Request, Response, PROTOCOL_VERSION};
use understudy_actors::coordinator::peer::PeerRequest;
use understudy_actors::fuzzing::{sealed, PEER_NONCE, SERVERS};
use understudy_actors::model::catalog::{Alert, Level};
use understudy_actors::model::state::RunState;
use understudy_actors::wire::heartbeat::{Advert, Beat, BeatKind, GroupAdvert, LEAVING_SEQ};

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let folder = dir.join(target);
    std::fs::create_dir_all(&folder).expect("create the seed folder");
    std::fs::write(folder.join(name), bytes).expect("write a seed");
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("encode")
}

/// Payloads joined by 0xFF, behind the mode byte (see the targets).
fn joined(mode: u8, payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![mode];
    for (i, p) in payloads.iter().enumerate() {
        if i > 0 {
            out.push(0xff);
        }
        out.extend_from_slice(p);
    }
    out
}

fn beat(from: &str, incarnation: u64, seq: u64, path: u8, kind: BeatKind) -> Beat {
    Beat {
        from: from.into(),
        incarnation,
        seq,
        path,
        config_digest: "3f2a9c".into(),
        sent_ms: 12_345,
        kind,
    }
}

fn heartbeats(dir: &Path) {
    let advert = Advert {
        version: 3,
        groups: vec![GroupAdvert {
            name: "failover1".into(),
            state: RunState::Online,
        }],
        sees: vec![SERVERS[0].into(), SERVERS[1].into()],
        sees_incarnations: vec![1_700_000_000_000_001, 1_700_000_000_000_002],
        ..Advert::default()
    };
    let inc = 1_700_000_000_000_002;
    let alive = |seq| beat(SERVERS[1], inc, seq, 0, BeatKind::Alive(advert.clone()));
    let leaving = |died| beat(SERVERS[1], inc, LEAVING_SEQ, 0, BeatKind::Leaving { died });
    // As they come off the wire.
    let mut raw = vec![0];
    raw.extend(sealed(&json(&alive(1))));
    write(dir, "heartbeat", "wire-alive", &raw);
    let mut raw = vec![0];
    raw.extend(sealed(&json(&leaving(true))));
    write(dir, "heartbeat", "wire-leaving", &raw);
    // Payloads: in order, a gap, a copy, an older daemon, leaving twice.
    let older = beat(
        SERVERS[1],
        inc - 1,
        9,
        0,
        BeatKind::Alive(Advert::default()),
    );
    write(
        dir,
        "heartbeat",
        "sealed-sequence",
        &joined(
            1,
            &[
                json(&alive(1)),
                json(&alive(2)),
                json(&alive(5)),
                json(&alive(5)),
                json(&older),
                json(&leaving(false)),
                json(&leaving(false)),
            ],
        ),
    );
    // Misrouted, from a stranger, from itself.
    write(
        dir,
        "heartbeat",
        "sealed-strangers",
        &joined(
            1,
            &[
                json(&beat(
                    SERVERS[2],
                    inc,
                    1,
                    1,
                    BeatKind::Alive(Advert::default()),
                )),
                json(&beat(
                    "mallory",
                    inc,
                    1,
                    0,
                    BeatKind::Alive(Advert::default()),
                )),
                json(&beat(
                    SERVERS[0],
                    inc,
                    1,
                    0,
                    BeatKind::Alive(Advert::default()),
                )),
            ],
        ),
    );
    // Beats drawn by `arbitrary` (any bytes do).
    write(
        dir,
        "heartbeat",
        "drawn",
        &[2, 1, 0, 1, 0, 0, 0, 1, 1, 0, 2, 0, 0, 0, 1, 3, 0, 1, 0, 1],
    );
}

fn peer_frames(dir: &Path) {
    let requests = [
        PeerRequest::Status,
        PeerRequest::Alerts { count: 20 },
        PeerRequest::StopService {
            by: "root".into(),
            os_action: None,
        },
        PeerRequest::Suspend {
            suspend: true,
            by: "root".into(),
        },
        PeerRequest::Recover {
            server: SERVERS[2].into(),
            by: "root".into(),
        },
        PeerRequest::ConfirmDown {
            server: SERVERS[2].into(),
            by: "root".into(),
        },
        PeerRequest::PushConfig {
            text: "Cluster(name: \"c\", servers: [Server(name: \"server1\")])".into(),
            by: "root".into(),
        },
        PeerRequest::AlertNotification {
            suspend: false,
            by: "root".into(),
        },
        PeerRequest::CanStart {
            group: "failover1".into(),
        },
        PeerRequest::MoveGroup {
            group: "failover1".into(),
            to: Some(SERVERS[1].into()),
            by: "root".into(),
        },
    ];
    let envelope = |req: &PeerRequest| {
        json(&serde_json::json!({"from": SERVERS[1], "nonce": PEER_NONCE, "body": req}))
    };
    let hello = json(&serde_json::json!({ "nonce": PEER_NONCE }));
    let answer = |resp: &Response| json(&serde_json::json!({"nonce": PEER_NONCE, "body": resp}));
    let done = Response::Done {
        message: "group failover1 started on server2".into(),
    };
    // A whole connection as it came: greeting, request, answer.
    let mut raw = vec![0];
    raw.extend(sealed(&hello));
    raw.extend(sealed(&envelope(&requests[0])));
    raw.extend(sealed(&answer(&done)));
    write(dir, "peer", "wire-exchange", &raw);
    for (i, req) in requests.iter().enumerate() {
        write(
            dir,
            "peer",
            &format!("request-{i}"),
            &joined(1, &[envelope(req)]),
        );
    }
    write(
        dir,
        "peer",
        "greeting-and-answers",
        &joined(
            1,
            &[
                hello,
                answer(&done),
                answer(&Response::Error {
                    message: "no such group".into(),
                }),
                answer(&Response::Alerts { alerts: vec![] }),
            ],
        ),
    );
}

fn control_requests(dir: &Path) {
    let commands = [
        Command::Status,
        Command::Alerts { count: 50 },
        Command::GroupStart {
            group: "failover1".into(),
            server: Some(SERVERS[1].into()),
        },
        Command::GroupMove {
            group: "failover1".into(),
            to: None,
        },
        Command::ClusterShutdown { reboot: true },
        Command::ServerRecover {
            server: SERVERS[1].into(),
        },
        Command::ConfigPush {
            text: "Cluster(name: \"c\", servers: [Server(name: \"server1\")])".into(),
        },
        Command::MonitorSuspend {
            monitors: vec!["userw".into(), "mrw1".into()],
        },
        Command::MessageSend {
            category: "BMCNOTICE".into(),
            keyword: "198.51.100.1".into(),
            clear: false,
        },
        Command::Log {
            level: Level::Warning,
            message: "disk nearly full".into(),
        },
        Command::LampOff {
            server: SERVERS[0].into(),
        },
    ];
    for (i, command) in commands.into_iter().enumerate() {
        let mut line = json(&Request {
            version: PROTOCOL_VERSION,
            command,
        });
        line.push(b'\n');
        write(dir, "control", &format!("request-{i}"), &line);
    }
}

fn notifier_trap(dir: &Path) {
    use understudy_actors::notify::snmp::{encode, Secret, TrapOids};
    let Ok(oids) = TrapOids::new(understudy_actors::notify::snmp::config::DEFAULT_ENTERPRISE)
    else {
        return;
    };
    let alert = Alert {
        time: "2026-11-22T00:00:00.000Z".into(),
        server: SERVERS[0].into(),
        module: "rm".into(),
        event_id: 9,
        level: Level::Error,
        message: "monitor mrw1: error detected".into(),
    };
    if let Ok(bytes) = encode(&oids, &Secret::new("bmc"), 7, 1234, "cluster", &alert) {
        write(dir, "snmp_trap", "notifier-v2c", &bytes);
    }
}

/// The `ipmi_reply` seeds: the v1.5 session of the target's unit test,
/// and, with `bmc` (`HOST:PORT` of a real BMC: ipmi_sim, user "admin",
/// password "fuzz"), what that BMC answers to the target's session
/// (RMCP+), recorded by a relay on loopback.
fn bmc_answers(dir: &Path, bmc: Option<&str>) {
    use understudy_actors::fuzzing::{v15_session, BmcAnswer};
    write(
        dir,
        "ipmi_reply",
        "v15-session",
        &BmcAnswer::to_input(&v15_session()),
    );
    let Some(bmc) = bmc else {
        return;
    };
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};
    use understudy_actors::heartbeat::bmc::{BmcConfig, Secret, Session};
    let relay = UdpSocket::bind("127.0.0.1:0").expect("relay socket");
    let upstream = UdpSocket::bind("127.0.0.1:0").expect("upstream socket");
    upstream.connect(bmc).expect("the BMC's address");
    upstream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    relay
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let port = relay.local_addr().expect("address").port();
    let recorded = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let mut answers = Vec::new();
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = relay.recv_from(&mut buf) {
                if n == 0 {
                    break;
                }
                upstream.send(&buf[..n]).expect("to the BMC");
                let m = upstream.recv(&mut buf).unwrap_or(0);
                answers.push(BmcAnswer::Raw(buf[..m].to_vec()));
                relay.send_to(&buf[..m], from).expect("to the session");
            }
            answers
        });
        let config = BmcConfig {
            address: "127.0.0.1".into(),
            port,
            user: "admin".into(),
            password: None,
            password_file: None,
            interval_ms: 1000,
            timeout_ms: 3000,
        };
        let mut session = Session::new(config, Secret::new("fuzz"), Duration::from_secs(3));
        eprintln!("poll: {:?}", session.read());
        eprintln!(
            "power off: {:?}",
            session.power_off_confirmed(Instant::now() + Duration::from_secs(2))
        );
        drop(session);
        let ender = UdpSocket::bind("127.0.0.1:0").expect("socket");
        ender.send_to(&[], ("127.0.0.1", port)).expect("end");
        worker.join().expect("the relay")
    });
    write(
        dir,
        "ipmi_reply",
        "rmcp-plus-session",
        &BmcAnswer::to_input(&recorded),
    );
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "seeds".into());
    let dir = Path::new(&dir);
    heartbeats(dir);
    peer_frames(dir);
    control_requests(dir);
    notifier_trap(dir);
    bmc_answers(dir, std::env::args().nth(2).as_deref());
}
