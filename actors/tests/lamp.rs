//! The warning lamp notifier against `tools/lamp-sim` on loopback: for each
//! protocol the right bytes, URL or command reach the lamp and leave it in
//! the right state; refusals, dead lamps and servers without a lamp.
//!
//! Needs python3 (otherwise each test skips, tests/common/skip.rs); the
//! rsh cases need root for the privileged source port. Every wait polls the
//! record file or the alert log with a deadline; nothing sleeps to
//! synchronise.

#[path = "../../tests/common/skip.rs"]
mod skip;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde_json::Value;

use understudy_actors::model::catalog::Alert;
use understudy_actors::notify::alert_log::{AlertLog, AlertLogHandle, Alerter, DEFAULT_MAX_BYTES};
use understudy_actors::notify::lamp::{
    Drain, Lamp, LampConfig, LampNotifier, LampOutcome, LampProtocol, LampState, LampTiming,
    SendTest, SetLamp,
};

const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// environment

fn python_missing() -> Option<skip::Missing> {
    skip::need_program("python3", "python3")
}

fn not_root() -> Option<skip::Missing> {
    skip::need_root("rsh binds a privileged source port, 512-1023")
}

macro_rules! require {
    ($($missing:expr),+) => {
        $(if let Some(missing) = $missing {
            return missing.skip();
        })+
    };
}

/// A scratch folder, removed when the test ends (also on panic).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmpdir(tag: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("us-lamp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

// ---------------------------------------------------------------------------
// the simulator

struct Sim {
    child: Child,
    record: PathBuf,
    pns: u16,
    http: u16,
    rsh: u16,
}

impl Sim {
    /// Starts the simulator with every listener on a free loopback port and
    /// waits for its "ready" line.
    fn start(dir: &Path, extra: &[&str]) -> Sim {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/lamp-sim");
        let record = dir.join("lamp.jsonl");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--record")
            .arg(&record)
            .args(["--pns", "0", "--http", "0", "--rsh", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start tools/lamp-sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("lamp-sim did not start ({e}): {line:?}"));
        let port = |k: &str| ready[k].as_u64().unwrap() as u16;
        Sim {
            pns: port("pns"),
            http: port("http"),
            rsh: port("rsh"),
            child,
            record,
        }
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Polls the record file until it holds `n` records.
    async fn wait_records(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let records = self.records();
            if records.len() >= n {
                return records;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "lamp-sim recorded {} of {n} requests: {records:?}",
                records.len()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn lamp(&self, server: &str, protocol: LampProtocol) -> Lamp {
        let port = match protocol {
            LampProtocol::PnsNh | LampProtocol::PnsLa6 => self.pns,
            LampProtocol::Http => self.http,
            LampProtocol::Rsh => self.rsh,
        };
        Lamp {
            server: server.into(),
            address: "127.0.0.1".into(),
            protocol,
            port: Some(port),
            user: None,
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SIGTERM: the simulator's clean exit path.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// the notifier and its alerts

struct Harness {
    addr: Addr<LampNotifier>,
    log: AlertLogHandle,
}

fn notifier(dir: &Path, lamps: Vec<Lamp>, timing: LampTiming) -> Harness {
    let log = AlertLogHandle::spawn(AlertLog::open(&dir.join("state"), DEFAULT_MAX_BYTES).unwrap())
        .unwrap();
    let alerter = Alerter {
        log: log.clone(),
        server: "s1".into(),
        router: None,
    };
    let config = LampConfig {
        enabled: true,
        lamps,
    };
    let addr = LampNotifier::new(config, alerter)
        .with_timing(timing)
        .start();
    Harness { addr, log }
}

/// Short retry pause; the step bound stays as in production.
fn quick() -> LampTiming {
    LampTiming {
        step: Duration::from_secs(5),
        retry_pause: Duration::from_millis(10),
    }
}

impl Harness {
    /// The lamp alerts so far.
    async fn lamp_alerts(&self) -> Vec<Alert> {
        let all = self.log.newest(1000).await.unwrap();
        all.into_iter().filter(|a| a.module == "lamp").collect()
    }

    /// Polls the alert log until it holds `n` lamp alerts.
    async fn wait_alerts(&self, n: usize) -> Vec<Alert> {
        let start = Instant::now();
        loop {
            let alerts = self.lamp_alerts().await;
            if alerts.len() >= n {
                return alerts;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{} of {n} lamp alerts: {alerts:?}",
                alerts.len()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    fn set(&self, server: &str, state: LampState) {
        self.addr.do_send(SetLamp {
            server: server.into(),
            state,
        });
    }
}

fn state_of(record: &Value) -> (String, String, String, String, String, String) {
    let s = &record["state"];
    let t = |k: &str| s[k].as_str().unwrap().to_string();
    (
        t("red"),
        t("amber"),
        t("green"),
        t("blue"),
        t("white"),
        t("buzzer"),
    )
}

fn shown(state: LampState) -> (String, String, String, String, String, String) {
    let (red, green) = match state {
        LampState::Green => ("off", "on"),
        LampState::Off => ("off", "off"),
        LampState::RedBlinking => ("flash1", "off"),
    };
    let o = || "off".to_string();
    (red.into(), o(), green.into(), o(), o(), o())
}

/// What the record of `state` must show as request, per protocol.
fn expected_request(protocol: LampProtocol, state: LampState) -> Value {
    let codes = match state {
        LampState::Green => "00 00 01 00 00 00",
        LampState::Off => "00 00 00 00 00 00",
        LampState::RedBlinking => "02 00 00 00 00 00",
    };
    match protocol {
        LampProtocol::PnsNh => serde_json::json!({
            "bytes": format!("58 58 53 00 00 06 {codes}"), "identifier": "S"
        }),
        LampProtocol::PnsLa6 => serde_json::json!({
            "bytes": format!("41 42 53 00 00 06 {codes}"), "identifier": "S"
        }),
        LampProtocol::Http => serde_json::json!({
            "method": "GET",
            "target": format!("/api/control?alert={}", state.digits())
        }),
        LampProtocol::Rsh => serde_json::json!(format!("alert {}", state.digits())),
    }
}

/// Green, red blinking, off: each reaches the simulator as it should, the
/// lamp shows it, and lamp 5 is raised.
async fn three_states(protocol: LampProtocol, sim_args: &[&str], user: Option<&str>) {
    let dir = tmpdir(&format!("states-{protocol}"));
    let sim = Sim::start(&dir, sim_args);
    let mut lamp = sim.lamp("s2", protocol);
    lamp.user = user.map(String::from);
    let label = format!("127.0.0.1:{}", lamp.port());
    let h = notifier(&dir, vec![lamp], quick());
    let wire = match protocol {
        LampProtocol::PnsNh => "pns-nh",
        LampProtocol::PnsLa6 => "pns-la6",
        LampProtocol::Http => "http",
        LampProtocol::Rsh => "rsh",
    };
    let states = [LampState::Green, LampState::RedBlinking, LampState::Off];
    for (i, state) in states.into_iter().enumerate() {
        h.set("s2", state);
        let records = sim.wait_records(i + 1).await;
        let alerts = h.wait_alerts(i + 1).await;
        let r = &records[i];
        assert_eq!(r["protocol"], wire, "{r}");
        assert_eq!(r["accepted"], true, "{r}");
        let request = if protocol == LampProtocol::Rsh {
            r["request"]["command"].clone()
        } else {
            r["request"].clone()
        };
        assert_eq!(request, expected_request(protocol, state), "{r}");
        assert_eq!(state_of(r), shown(state), "{r}");
        assert_eq!(r["digits"], state.digits());
        let a = &alerts[i];
        assert_eq!((a.module.as_str(), a.event_id), ("lamp", 5), "{a:?}");
        assert_eq!(
            a.message,
            format!("warning lamp {label} of server s2 set to {state}")
        );
    }
    if protocol == LampProtocol::Rsh {
        let r = &sim.records()[0]["request"];
        let port = r["source_port"].as_u64().unwrap();
        assert!((512..=1023).contains(&port), "{r}");
        assert_eq!(r["stderr_port"], "");
        assert_eq!(r["remote_user"], user.unwrap_or("root"));
    }
    h.addr.send(Drain).await.unwrap();
    assert_eq!(sim.records().len(), 3);
    assert_eq!(h.lamp_alerts().await.len(), 3);
}

// ---------------------------------------------------------------------------
// tests

#[actix_rt::test]
async fn pns_nh_states() {
    require!(python_missing());
    three_states(LampProtocol::PnsNh, &[], None).await;
}

#[actix_rt::test]
async fn pns_la6_states() {
    require!(python_missing());
    three_states(LampProtocol::PnsLa6, &[], None).await;
}

#[actix_rt::test]
async fn http_states() {
    require!(python_missing());
    three_states(LampProtocol::Http, &[], None).await;
}

#[actix_rt::test]
async fn rsh_states() {
    require!(python_missing(), not_root());
    three_states(
        LampProtocol::Rsh,
        &["--rsh-privileged", "--rsh-user", "patlite"],
        Some("patlite"),
    )
    .await;
}

#[actix_rt::test]
async fn nak_is_refused() {
    require!(python_missing());
    let dir = tmpdir("nak");
    let sim = Sim::start(&dir, &["--nak"]);
    let mut lamps = vec![
        sim.lamp("s1", LampProtocol::PnsNh),
        sim.lamp("s2", LampProtocol::PnsLa6),
        sim.lamp("s3", LampProtocol::Http),
    ];
    match not_root() {
        None => lamps.push(sim.lamp("s4", LampProtocol::Rsh)),
        Some(missing) => missing.skip(),
    }
    let n = lamps.len();
    let servers: Vec<String> = lamps.iter().map(|l| l.server.clone()).collect();
    let h = notifier(&dir, lamps, quick());
    for s in &servers {
        h.set(s, LampState::Green);
    }
    let alerts = h.wait_alerts(n).await;
    for a in &alerts {
        assert_eq!(a.event_id, 6, "{a:?}");
    }
    let text: Vec<&str> = alerts.iter().map(|a| a.message.as_str()).collect();
    assert!(
        text.iter()
            .any(|m| m.contains("of server s1 refused the command: the lamp answered NAK")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|m| m.contains("of server s3 refused the command: the lamp answered \"Error.\"")),
        "{text:?}"
    );
    if n == 4 {
        assert!(text.iter().any(|m| m.contains("of server s4 refused the command: the lamp answered \"told to refuse everything (--nak)\"")), "{text:?}");
    }
    // The lamp itself stayed dark.
    for r in sim.wait_records(n).await {
        assert_eq!(r["accepted"], false, "{r}");
        assert_eq!(r["digits"], "000000");
    }
}

#[actix_rt::test]
async fn nothing_listening_is_unreachable_after_the_retry() {
    // No simulator: a port nothing listens on.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tmpdir("unreachable");
    let mut protocols = vec![
        LampProtocol::PnsNh,
        LampProtocol::PnsLa6,
        LampProtocol::Http,
    ];
    match not_root() {
        None => protocols.push(LampProtocol::Rsh),
        Some(missing) => missing.skip(),
    }
    let lamps: Vec<Lamp> = protocols
        .iter()
        .enumerate()
        .map(|(i, p)| Lamp {
            server: format!("s{}", i + 1),
            address: "127.0.0.1".into(),
            protocol: *p,
            port: Some(port),
            user: None,
        })
        .collect();
    let h = notifier(&dir, lamps, quick());
    for i in 0..protocols.len() {
        h.set(&format!("s{}", i + 1), LampState::RedBlinking);
    }
    let alerts = h.wait_alerts(protocols.len()).await;
    for a in &alerts {
        assert_eq!((a.event_id, a.level.as_str()), (7, "ERROR"), "{a:?}");
        assert!(
            a.message.ends_with(&format!(
                "could not be driven: connect to 127.0.0.1:{port}: connection refused (2 attempts)"
            )),
            "{a:?}"
        );
    }
}

#[actix_rt::test]
async fn silent_lamp_times_out() {
    // Accepts, reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let dir = tmpdir("silent");
    let lamp = Lamp {
        server: "s2".into(),
        address: "127.0.0.1".into(),
        protocol: LampProtocol::PnsNh,
        port: Some(port),
        user: None,
    };
    let timing = LampTiming {
        step: Duration::from_millis(200),
        retry_pause: Duration::from_millis(10),
    };
    let h = notifier(&dir, vec![lamp], timing);
    h.set("s2", LampState::Green);
    let alerts = h.wait_alerts(1).await;
    assert_eq!(alerts[0].event_id, 7);
    assert!(
        alerts[0]
            .message
            .ends_with("read the answer: no answer within 200 ms"),
        "{:?}",
        alerts[0]
    );
}

#[actix_rt::test]
async fn server_without_lamp_is_ignored() {
    require!(python_missing());
    let dir = tmpdir("nolamp");
    let sim = Sim::start(&dir, &[]);
    let h = notifier(&dir, vec![sim.lamp("s1", LampProtocol::PnsNh)], quick());
    h.set("s9", LampState::RedBlinking);
    h.set("s1", LampState::Green);
    h.wait_alerts(1).await;
    h.addr.send(Drain).await.unwrap();
    let records = sim.records();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["digits"], "001000");
    let alerts = h.lamp_alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].message.contains("of server s1 set to green"));
}

#[actix_rt::test]
async fn disabled_lamps_are_left_alone() {
    require!(python_missing());
    let dir = tmpdir("disabled");
    let sim = Sim::start(&dir, &[]);
    let log = AlertLogHandle::spawn(AlertLog::open(&dir.join("state"), DEFAULT_MAX_BYTES).unwrap())
        .unwrap();
    let alerter = Alerter {
        log: log.clone(),
        server: "s1".into(),
        router: None,
    };
    let config = LampConfig {
        enabled: false,
        lamps: vec![sim.lamp("s1", LampProtocol::PnsNh)],
    };
    let addr = LampNotifier::new(config, alerter).start();
    addr.send(SetLamp {
        server: "s1".into(),
        state: LampState::Green,
    })
    .await
    .unwrap();
    addr.send(Drain).await.unwrap();
    let test = addr
        .send(SendTest {
            server: None,
            state: LampState::Green,
        })
        .await
        .unwrap();
    assert!(test.unwrap_err().contains("not enabled"));
    assert!(sim.records().is_empty());
}

#[actix_rt::test]
async fn one_lamp_in_order_latest_wins() {
    require!(python_missing());
    let dir = tmpdir("latest");
    let sim = Sim::start(&dir, &[]);
    let h = notifier(&dir, vec![sim.lamp("s2", LampProtocol::Http)], quick());
    // All four are in the mailbox before the actor runs: the first starts,
    // the others wait, and only the newest of those is sent.
    h.set("s2", LampState::RedBlinking);
    h.set("s2", LampState::Off);
    h.set("s2", LampState::Off);
    h.set("s2", LampState::Green);
    h.addr.send(Drain).await.unwrap();
    let digits: Vec<String> = sim
        .records()
        .iter()
        .map(|r| r["digits"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(digits, ["200000", "001000"]);
    let alerts = h.wait_alerts(2).await;
    assert!(
        alerts[0].message.ends_with("set to red blinking"),
        "{alerts:?}"
    );
    assert!(alerts[1].message.ends_with("set to green"), "{alerts:?}");
}

#[actix_rt::test]
async fn test_command_reports_each_lamp() {
    require!(python_missing());
    let dir = tmpdir("test");
    let sim = Sim::start(&dir, &[]);
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut broken = sim.lamp("s3", LampProtocol::PnsNh);
    broken.port = Some(dead);
    let h = notifier(
        &dir,
        vec![
            sim.lamp("s1", LampProtocol::PnsNh),
            sim.lamp("s2", LampProtocol::Http),
            broken,
        ],
        quick(),
    );
    let reports = h
        .addr
        .send(SendTest {
            server: None,
            state: LampState::Green,
        })
        .await
        .unwrap()
        .unwrap();
    let got: Vec<(&str, &LampOutcome)> = reports
        .iter()
        .map(|r| (r.server.as_str(), &r.outcome))
        .collect();
    assert_eq!(got[0], ("s1", &LampOutcome::Done));
    assert_eq!(got[1], ("s2", &LampOutcome::Done));
    assert_eq!(got[2].0, "s3");
    assert!(matches!(got[2].1, LampOutcome::Unreachable(_)), "{got:?}");
    assert_eq!(reports[1].lamp, format!("127.0.0.1:{}", sim.http));
    // The same alerts as any other command.
    let alerts = h.wait_alerts(3).await;
    let mut ids: Vec<u32> = alerts.iter().map(|a| a.event_id).collect();
    ids.sort();
    assert_eq!(ids, [5, 5, 7]);

    let one = h
        .addr
        .send(SendTest {
            server: Some("s9".into()),
            state: LampState::Off,
        })
        .await
        .unwrap();
    assert_eq!(one.unwrap_err(), "server s9 has no warning lamp");

    // Without a daemon: the same drive, no alerts.
    let config = LampConfig {
        enabled: true,
        lamps: vec![sim.lamp("s1", LampProtocol::PnsLa6)],
    };
    let direct =
        understudy_actors::notify::lamp::send_test(&config, Some("s1"), LampState::Off, quick())
            .await
            .unwrap();
    assert_eq!(direct[0].outcome, LampOutcome::Done);
    let last = sim.wait_records(3).await;
    assert_eq!(last[2]["protocol"], "pns-la6");
    assert_eq!(last[2]["digits"], "000000");
}
