//! The notifier against plain sockets of the test itself (no syslog daemon
//! needed; `actors/tests/syslog_rsyslogd.rs` has the real one).

use std::future::Future;
use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket, UnixDatagram};

use super::*;
use crate::model::catalog::{Alert, Level};
use crate::notify::alert_log::{AlertLog, AlertLogHandle, DEFAULT_MAX_BYTES};

/// How long any awaited outcome may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(15);

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("us-syslog-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn alerter(dir: &std::path::Path) -> (Alerter, AlertLogHandle) {
    let log = AlertLogHandle::spawn(AlertLog::open(dir, DEFAULT_MAX_BYTES).unwrap()).unwrap();
    (
        Alerter {
            log: log.clone(),
            server: "n1".into(),
            router: None,
        },
        log,
    )
}

fn notify(i: u32, message: &str) -> Notify {
    Notify {
        alert: Alert {
            time: "2026-11-22T09:05:01.250Z".into(),
            server: "n1".into(),
            module: "rc".into(),
            event_id: i,
            level: Level::Error,
            message: message.into(),
        },
        cluster: "c1".into(),
    }
}

fn remote(port: u16, transport: Transport) -> Remote {
    Remote {
        address: "127.0.0.1".into(),
        port,
        transport,
    }
}

/// Polls `probe` until it gives a value; fails the test after [`DEADLINE`].
async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting for {what}"))
}

/// A port nothing listens on (bound, then let go).
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn syslog_failed(log: &AlertLogHandle, destination: &str) -> Vec<Alert> {
    log.newest(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.module == "alert" && a.event_id == 1010)
        .filter(|a| a.message.contains(destination))
        .collect()
}

async fn stats_of(addr: &Addr<SyslogNotifier>, destination: &str) -> DestinationStats {
    addr.send(SyslogStats)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.destination == destination)
        .unwrap()
}

#[test]
fn rate_limit_lets_one_through_per_period() {
    let mut r = RateLimit::new(Duration::from_secs(60));
    let t0 = Instant::now();
    assert!(r.allow(t0));
    assert!(!r.allow(t0 + Duration::from_secs(1)));
    assert!(!r.allow(t0 + Duration::from_secs(59)));
    assert!(r.allow(t0 + Duration::from_secs(60)));
    assert!(!r.allow(t0 + Duration::from_secs(61)));
    // A clock read earlier than the last event lets nothing through.
    assert!(!r.allow(t0));
}

#[actix_rt::test]
async fn tcp_lines_are_framed_and_survive_a_collector_restart() {
    let dir = tmpdir("tcp");
    let (alerter, _log) = alerter(&dir);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = SyslogConfig {
        local: false,
        remote: vec![remote(port, Transport::Tcp)],
        ..SyslogConfig::default()
    };
    let addr = SyslogNotifier::new(config, alerter).start();
    addr.do_send(notify(1, "first"));
    addr.do_send(notify(2, "second"));
    let (conn, _) = within("a connection", listener.accept()).await.unwrap();
    let mut lines = BufReader::new(conn).lines();
    let first = within("line 1", lines.next_line()).await.unwrap().unwrap();
    let second = within("line 2", lines.next_line()).await.unwrap().unwrap();
    assert!(
        first.starts_with("<27>1 ") && first.ends_with("] first"),
        "{first}"
    );
    assert!(
        second.contains(" rc2 ") && second.ends_with("] second"),
        "{second}"
    );

    // The collector restarts: the next line goes over a new connection.
    drop(lines);
    addr.do_send(notify(3, "third"));
    let (conn, _) = within("a second connection", listener.accept())
        .await
        .unwrap();
    let mut lines = BufReader::new(conn).lines();
    let third = within("line 3", lines.next_line()).await.unwrap().unwrap();
    assert!(third.ends_with("] third"), "{third}");
    let s = stats_of(&addr, &format!("tcp 127.0.0.1:{port}")).await;
    assert_eq!((s.sent, s.failed, s.dropped), (3, 0, 0));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[actix_rt::test]
async fn a_dead_tcp_collector_holds_up_nothing_and_is_reported_once() {
    let dir = tmpdir("dead");
    let (alerter, log) = alerter(&dir);
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead = dead_port();
    let config = SyslogConfig {
        local: false,
        remote: vec![
            remote(dead, Transport::Tcp),
            remote(udp.local_addr().unwrap().port(), Transport::Udp),
        ],
        ..SyslogConfig::default()
    };
    let addr = SyslogNotifier::new(config, alerter).start();
    let tcp_name = format!("tcp 127.0.0.1:{dead}");
    let mut buf = vec![0u8; 4096];
    for i in 1..=3 {
        addr.do_send(notify(i, &format!("alert {i}")));
        let n = within("a datagram", udp.recv(&mut buf)).await.unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(got.ends_with(&format!("] alert {i}")), "{got}");
    }
    // The TCP task keeps trying (backoff) while UDP went on.
    wait_for("a retry of the dead collector", || async {
        (stats_of(&addr, &tcp_name).await.failed >= 2).then_some(())
    })
    .await;
    let raised = syslog_failed(&log, &tcp_name).await;
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert!(
        raised[0].message.contains("connection refused"),
        "{raised:#?}"
    );
    assert_eq!(raised[0].level, Level::Warning);
    let s = stats_of(&addr, &tcp_name).await;
    assert_eq!((s.sent, s.dropped), (0, 0));
    assert!(s.queued >= 2, "{s:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[actix_rt::test]
async fn a_full_queue_drops_new_lines_and_counts_them() {
    let dir = tmpdir("full");
    let (alerter, log) = alerter(&dir);
    let dead = dead_port();
    let config = SyslogConfig {
        local: false,
        remote: vec![remote(dead, Transport::Tcp)],
        ..SyslogConfig::default()
    };
    let addr = SyslogNotifier::new(config, alerter).start();
    let total = QUEUE + 5;
    for i in 0..total {
        addr.do_send(notify(i as u32, "x"));
    }
    let name = format!("tcp 127.0.0.1:{dead}");
    let s = stats_of(&addr, &name).await;
    // One line may be out of the queue, in the task's hands.
    assert!(s.queued == QUEUE, "{s:?}");
    assert!((4..=5).contains(&s.dropped), "{s:?}");
    // Refusals and drops share one limit: a single alert.
    let raised = wait_for("SyslogFailed", || async {
        let r = syslog_failed(&log, &name).await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(raised.len(), 1, "{raised:#?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[actix_rt::test]
async fn local_socket_gets_rfc3164_without_hostname() {
    let dir = tmpdir("unix");
    let (alerter, _log) = alerter(&dir);
    let path = dir.join("log.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let config = SyslogConfig {
        socket: Some(path.to_str().unwrap().into()),
        format: Format::Rfc3164,
        facility: Facility::Local0,
        ..SyslogConfig::default()
    };
    let addr = SyslogNotifier::new(config, alerter).start();
    addr.do_send(notify(32, "resource app failed"));
    let mut buf = vec![0u8; 4096];
    let n = within("a datagram", sock.recv(&mut buf)).await.unwrap();
    let got = String::from_utf8_lossy(&buf[..n]).into_owned();
    let pid = std::process::id();
    assert!(got.starts_with("<131>"), "{got}");
    assert!(
        got.ends_with(&format!(
            " understudy[{pid}]: rc32 cluster=c1: resource app failed"
        )),
        "{got}"
    );
    // Stamp (15 characters) and the tag, nothing between: no hostname.
    assert_eq!(got.find(" understudy["), Some(5 + 15), "{got}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[actix_rt::test]
async fn send_test_tells_each_destination_apart() {
    let dir = tmpdir("sendtest");
    let (alerter, _log) = alerter(&dir);
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead = dead_port();
    let config = SyslogConfig {
        socket: Some(dir.join("missing.sock").to_str().unwrap().into()),
        remote: vec![
            remote(udp.local_addr().unwrap().port(), Transport::Udp),
            remote(dead, Transport::Tcp),
        ],
        ..SyslogConfig::default()
    };
    let addr = SyslogNotifier::new(config, alerter).start();
    let outcomes = addr.send(SendTest(notify(0, "test"))).await.unwrap();
    let results: Vec<(String, Result<(), String>)> = outcomes
        .into_iter()
        .map(|o| (o.destination, o.result))
        .collect();
    let sock = dir.join("missing.sock");
    assert_eq!(
        results,
        [
            (
                format!("unix {}", sock.display()),
                Err("no such file or directory".to_string())
            ),
            (format!("udp {}", udp.local_addr().unwrap()), Ok(())),
            (
                format!("tcp 127.0.0.1:{dead}"),
                Err(format!("connect to 127.0.0.1:{dead}: connection refused"))
            ),
        ]
    );
    let mut buf = vec![0u8; 4096];
    let n = within("the test datagram", udp.recv(&mut buf))
        .await
        .unwrap();
    assert!(buf[..n].ends_with(b"] test"));
    std::fs::remove_dir_all(&dir).unwrap();
}
