//! The status page (`web.listen`) with the real binary: who may read it and
//! act on it, checked with a plain HTTP client; and the page itself in
//! headless Chromium following a failover in a two-server lab, with the
//! latency from the takeover in status to the page's change.
//!
//! Every wait is for something observable with a deadline; nothing sleeps
//! to synchronise.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::chromium::{chromium_unavailable, Chromium};
use common::cluster::{web_on_n1, FORM_WAIT};
use common::nginx::free_port;
use common::*;
use serde_json::Value;

/// One HTTP/1.0 exchange with 127.0.0.1:`port`: (status line, lower-cased
/// headers, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    req += body;
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_string(),
        headers.to_ascii_lowercase(),
        body.to_string(),
    )
}

fn basic(password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
    )
}

fn one_server(t: &TestDir, web: &str) -> String {
    t.script("app.sh", "exec sleep 600");
    t.config(
        &["s1"],
        &format!("web: {web},"),
        r#"Group(name: "web", resources: [
           Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
       ]),"#,
    )
}

#[test]
fn loopback_reads_freely_and_actions_need_the_administrator() {
    let t = TestDir::new("webacc");
    let password = "correct horse";
    let file = t.write("web.password", &format!("{password}\n"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let d = Daemon::start(
        &t,
        &one_server(
            &t,
            &format!(
                "(listen: \"127.0.0.1:{port}\", password_file: {:?})",
                file.display().to_string()
            ),
        ),
        "s1",
    );

    // Reading on loopback needs nothing; the page and its script are the
    // embedded ones.
    let (status, headers, body) = http(port, "GET", "/", &[], "");
    assert!(status.contains(" 200 "), "{status}");
    assert!(headers.contains("content-type: text/html"), "{headers}");
    assert!(
        body.contains("/page.js") && body.contains("id=\"headline\""),
        "{body}"
    );
    let (status, _, body) = http(port, "GET", "/page.js", &[], "");
    assert!(
        status.contains(" 200 ") && body.contains("EventSource"),
        "{status}"
    );
    wait_for("the snapshot shows web Online", DEADLINE, || {
        let (_, _, body) = http(port, "GET", "/api/status", &[], "");
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["status"]["groups"][0]["state"] == "Online" && v["headline"]["state"] == "normal"
    });
    // The live stream begins with the snapshot.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("event: snapshot\ndata: {") {
        let n = s.read(&mut buf).expect("the event stream");
        assert!(n > 0, "stream ended: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("text/event-stream"));
    drop(s);

    // The administrator's page and actions need the password; the secret is
    // never echoed.
    let (status, headers, _) = http(port, "GET", "/admin/", &[], "");
    assert!(status.contains(" 401 "), "{status}");
    assert!(headers.contains("www-authenticate: basic"), "{headers}");
    let wrong = basic("wrong");
    let right = basic(password);
    let (status, _, _) = http(port, "GET", "/admin/", &[("Authorization", &wrong)], "");
    assert!(status.contains(" 401 "), "{status}");
    let (status, _, _) = http(port, "GET", "/admin/", &[("Authorization", &right)], "");
    assert!(status.contains(" 200 "), "{status}");
    let (status, _, body) = http(
        port,
        "GET",
        "/admin/alert-settings",
        &[("Authorization", &right)],
        "",
    );
    assert!(status.contains(" 200 "), "{status}: {body}");

    // A cross-site form cannot add our header: refused, nothing done.
    let suspend = r#"{"suspend": true}"#;
    let (status, _, _) = http(
        port,
        "POST",
        "/admin/reporting",
        &[("Authorization", &right)],
        suspend,
    );
    assert!(status.contains(" 403 "), "{status}");
    let (status, _, _) = http(
        port,
        "POST",
        "/admin/reporting",
        &[
            ("Authorization", &right),
            ("X-Understudy-Action", "1"),
            ("Origin", "http://evil.example"),
        ],
        suspend,
    );
    assert!(status.contains(" 403 "), "{status}");
    let action = [
        ("Authorization", right.as_str()),
        ("X-Understudy-Action", "1"),
    ];
    let (status, _, body) = http(port, "POST", "/admin/reporting", &action, suspend);
    assert!(
        status.contains(" 200 ") && body.contains("suspended"),
        "{status}: {body}"
    );
    // The same path as `alert suspend`: the router's own answer and alert.
    wait_for("alert 4 (notification suspended)", DEADLINE, || {
        alerts_file(&d.state_dir).iter().any(|a| {
            a["module"] == "alert"
                && a["event_id"] == 4
                && a["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("status page"))
        })
    });
    let (status, _, body) = http(
        port,
        "POST",
        "/admin/reporting",
        &action,
        r#"{"suspend": false}"#,
    );
    assert!(
        status.contains(" 200 ") && body.contains("resumed"),
        "{status}: {body}"
    );
    // A shutdown needs the cluster's name.
    let (status, _, body) = http(
        port,
        "POST",
        "/admin/shutdown",
        &action,
        r#"{"confirm": "nope"}"#,
    );
    assert!(status.contains(" 400 "), "{status}: {body}");
    assert!(d.status_json()["stopping"] == false);
    let log = d.log_text();
    assert!(
        !log.contains(password),
        "the password is in the log:\n{log}"
    );
}

#[test]
fn config_check_refuses_an_open_page_without_a_password() {
    let t = TestDir::new("webchk");
    let text = one_server(&t, "(listen: \"0.0.0.0:9665\")");
    let file = t.write("open.ron", &text);
    let out = understudy(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("web.password_file: required"),
        "{out:?}"
    );
    // A password file others may read is refused too.
    let pw = t.write("web.password", "secret\n");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = one_server(
        &t,
        &format!(
            "(listen: \"0.0.0.0:9665\", password_file: {:?})",
            pw.display().to_string()
        ),
    );
    let file = t.write("open.ron", &text);
    let out = understudy(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("web.password_file: password file") && out.stderr.contains("chmod 600"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("secret"), "{out:?}");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = understudy(&["config", "check", file.to_str().unwrap()]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains("status page: http://0.0.0.0:9665/"),
        "{out:?}"
    );
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// What the test reads of the page: the headline, group `web`'s row, the
/// notice.
const READ_PAGE: &str = r#"JSON.stringify((() => {
  // Until the page has loaded, the document is about:blank's.
  const $ = (id) => document.getElementById(id);
  const g = $("group-web");
  const n = $("notice");
  return {
    headline: $("headline")?.dataset.state ?? null,
    link: $("link")?.textContent ?? null,
    current: g ? g.dataset.current : null,
    state: g ? g.dataset.state : null,
    changed_at: g ? Number(g.dataset.changedAt) : null,
    notice: n && !n.hidden ? $("notice-text").textContent : null,
    favicon: $("favicon")?.href ?? null,
  };
})())"#;

fn read_page(browser: &mut Chromium) -> Value {
    let text = browser.eval(READ_PAGE);
    serde_json::from_str(text.as_str().expect("a JSON string")).expect("page JSON")
}

#[test]
fn the_page_in_chromium_follows_a_failover() {
    if let Some(missing) = chromium_unavailable() {
        return missing.skip();
    }
    let port = 9665;
    let Some((mut lab, checkers)) =
        web_on_n1("web", 2, &format!("web: (listen: \"127.0.0.1:{port}\"),"))
    else {
        return;
    };
    // n2's page, from inside n2's namespace (its loopback).
    let profile = lab.dir().join("chromium-profile");
    let mut browser = Chromium::open(
        Some(&lab.ns(2)),
        &profile,
        &format!("http://127.0.0.1:{port}/"),
    );
    let end = Instant::now() + FORM_WAIT;
    let before = loop {
        let p = read_page(&mut browser);
        if p["current"] == "n1"
            && p["state"] == "Online"
            && p["headline"] == "normal"
            && p["link"] == "live"
        {
            break p;
        }
        assert!(
            Instant::now() < end,
            "n2's page never showed web Online on n1, all well: {p}"
        );
        std::thread::sleep(POLL);
    };
    assert!(
        before["favicon"]
            .as_str()
            .unwrap_or_default()
            .starts_with("data:image/svg+xml"),
        "{before}"
    );
    assert_eq!(before["notice"], Value::Null);

    // The takeover as `status` shows it, watched on a thread of its own
    // while the page is watched here.
    let kill_at = epoch_ms();
    lab.kill9_daemon(1);
    let socket = lab.socket(2);
    let status_watch = std::thread::spawn(move || {
        let end = Instant::now() + FORM_WAIT;
        let mut polls = 0u32;
        loop {
            let out = understudy(&["--socket", socket.to_str().unwrap(), "status", "--json"]);
            polls += 1;
            let seen_at = epoch_ms();
            if let Ok(v) = serde_json::from_str::<Value>(&out.stdout) {
                let web = v["groups"]
                    .as_array()
                    .and_then(|g| g.iter().find(|g| g["name"] == "web"))
                    .cloned();
                if web.is_some_and(|g| g["current"] == "n2" && g["state"] == "Online") {
                    return (seen_at, polls);
                }
            }
            assert!(
                Instant::now() < end,
                "status on n2 never showed web Online on n2: {}",
                out.stdout
            );
        }
    });
    let end = Instant::now() + FORM_WAIT;
    let after = loop {
        let p = read_page(&mut browser);
        if p["current"] == "n2" && p["state"] == "Online" {
            break p;
        }
        assert!(
            Instant::now() < end,
            "n2's page never showed web Online on n2: {p}"
        );
        std::thread::sleep(POLL);
    };
    let (status_at, polls) = status_watch.join().expect("status watch");
    let page_at = after["changed_at"].as_f64().expect("changed_at");
    // When the takeover entered n2's status, to the millisecond: its
    // "activation completed" alert (the coordinator's view changes with
    // it). The status poll above is only as fine as one CLI run.
    let online_at = alerts_file(&lab.state_dir(2))
        .iter()
        .filter(|a| {
            a["module"] == "rc"
                && a["event_id"] == 11
                && a["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("group web"))
        })
        .filter_map(|a| humantime::parse_rfc3339(a["time"].as_str()?).ok())
        .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0)
        .rfind(|t| *t >= kill_at)
        .expect("n2's alert rc 11 for web after the kill");
    let latency_ms = page_at - online_at;
    eprintln!(
        "web page: after kill -9 of n1: web Online on n2 at +{:.0} ms (n2's rc 11), seen by `status --json` at +{:.0} ms ({polls} polls), \
         in n2's page (DOM, headless Chromium) at +{:.0} ms: page update latency {latency_ms:.0} ms",
        online_at - kill_at,
        status_at - kill_at,
        page_at - kill_at,
    );
    assert!(
        latency_ms < 10_000.0,
        "the page showed the takeover {latency_ms:.0} ms after status"
    );

    // The headline: n1 is down, and the notice says so.
    let end = Instant::now() + FORM_WAIT;
    let trouble = loop {
        let p = read_page(&mut browser);
        if p["headline"] == "trouble" && p["notice"].as_str().is_some_and(|n| n.contains("n1")) {
            break p;
        }
        assert!(
            Instant::now() < end,
            "the headline never said n1 is down: {p}"
        );
        std::thread::sleep(POLL);
    };
    assert_ne!(
        trouble["favicon"], before["favicon"],
        "the favicon kept its colour"
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("web")
        .join(format!("failover-{}.png", std::process::id()));
    browser.screenshot(&shot);
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 1000, "{}: {size} bytes", shot.display());
    eprintln!("web page: screenshot {}", shot.display());
    drop(browser);
    checkers.assert_never_double();
}

#[test]
fn the_page_and_the_metrics_share_one_address() {
    let t = TestDir::new("webshare");
    let port = free_port();
    let text = one_server(
        &t,
        &format!("(listen: \"127.0.0.1:{port}\"), metrics: (listen: \"127.0.0.1:{port}\")"),
    );
    let _d = Daemon::start(&t, &text, "s1");
    let (status, _, body) = http(port, "GET", "/metrics", &[], "");
    assert!(
        status.contains(" 200 ") && body.ends_with("# EOF\n"),
        "{status}\n{body}"
    );
    let (status, _, body) = http(port, "GET", "/", &[], "");
    assert!(
        status.contains(" 200 ") && body.contains("id=\"headline\""),
        "{status}"
    );
    // Without a password file there is no administrator.
    let (status, _, _) = http(port, "GET", "/admin/", &[], "");
    assert!(status.contains(" 403 "), "{status}");
}
