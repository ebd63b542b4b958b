//! Prometheus metrics (`metrics.listen`) with the real binary: the
//! exposition read with a plain HTTP client as groups start and stop, a
//! monitor recovers its target and alerts are raised; the listener's
//! startup error and `config check`'s word on the address; and a real
//! Prometheus (Debian's) scraping the daemon.
//!
//! Every wait is for something observable with a deadline; nothing sleeps
//! to synchronise.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::nginx::free_port;
use common::prometheus::{self as prom, Sample};
use common::*;

/// An asynchronous exec resource running `sleep` (its pid in `app.pid`),
/// watched by a pid monitor that restarts it once, then does nothing.
fn watched_sleeper(t: &TestDir, port: u16) -> String {
    t.script("app.sh", r#"echo $$ > "$DIR/app.pid"; exec sleep 600"#);
    let extra = format!(
        r#"metrics: (listen: "127.0.0.1:{port}"),
    monitors: [
        Monitor(name: "appw", kind: Pid(), target: "app", interval: 1, retry: 0,
                recovery: (reactivation_threshold: 1, failover_threshold: 0, final_action: NoOperation)),
    ],"#
    );
    t.config(
        &["s1"],
        &extra,
        r#"Group(name: "web", resources: [
           Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
       ]),"#,
    )
}

/// Scrapes until `check` accepts the samples; panics with the last
/// exposition at the deadline.
fn wait_samples(port: u16, what: &str, check: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let end = Instant::now() + DEADLINE;
    loop {
        let text = prom::scrape(port);
        let samples = prom::parse(&text);
        if check(&samples) {
            return samples;
        }
        if Instant::now() >= end {
            panic!("{what}: not seen within {DEADLINE:?}; last scrape:\n{text}");
        }
        std::thread::sleep(POLL);
    }
}

fn group_state(s: &[Sample], state: &str) -> Option<f64> {
    prom::value(
        s,
        "understudy_group_state",
        &[("group", "web"), ("state", state)],
    )
}

/// Alerts by (module, id) as the alert log holds them.
fn alert_counts(d: &Daemon) -> BTreeMap<(String, String), f64> {
    let mut counts = BTreeMap::new();
    for a in alerts_file(&d.state_dir) {
        let key = (
            a["module"].as_str().unwrap_or_default().to_string(),
            a["event_id"].to_string(),
        );
        *counts.entry(key).or_insert(0.0) += 1.0;
    }
    counts
}

/// Alerts by (module, id) as the metrics count them.
fn counted_alerts(s: &[Sample]) -> BTreeMap<(String, String), f64> {
    let mut counts = BTreeMap::new();
    for x in s.iter().filter(|x| x.name == "understudy_alerts_total") {
        *counts
            .entry((x.labels["module"].clone(), x.labels["id"].clone()))
            .or_insert(0.0) += x.value;
    }
    counts
}

#[test]
fn metrics_follow_groups_monitors_and_alerts() {
    let t = TestDir::new("metrics");
    let port = free_port();
    let d = Daemon::start(&t, &watched_sleeper(&t, port), "s1");

    // The exposition: OpenMetrics text, ending as the format says.
    let (status, headers, body) = prom::http_get(port, "/metrics").expect("GET /metrics");
    assert!(status.contains(" 200 "), "{status}\n{body}");
    assert!(
        headers.contains("content-type: application/openmetrics-text"),
        "{headers}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    let s = wait_samples(port, "group web Online, monitor appw Normal", |s| {
        group_state(s, "Online") == Some(1.0)
            && prom::value(
                s,
                "understudy_monitor_state",
                &[("monitor", "appw"), ("state", "Normal")],
            ) == Some(1.0)
    });
    assert_eq!(group_state(&s, "Offline"), Some(0.0));
    let on = |s: &[Sample], server| {
        prom::value(
            s,
            "understudy_group_active_server",
            &[("group", "web"), ("server", server)],
        )
    };
    assert_eq!(on(&s, "s1"), Some(1.0));
    assert_eq!(
        prom::value(
            &s,
            "understudy_server_state",
            &[("server", "s1"), ("state", "Online")]
        ),
        Some(1.0)
    );
    assert_eq!(
        prom::value(
            &s,
            "understudy_resource_state",
            &[("resource", "app"), ("kind", "exec"), ("state", "Online")]
        ),
        Some(1.0)
    );
    assert_eq!(
        prom::value(
            &s,
            "understudy_rejected_packets_total",
            &[("reason", "forged")]
        ),
        Some(0.0)
    );
    assert_eq!(
        prom::value(&s, "understudy_cluster_info", &[("server", "s1")]),
        Some(1.0)
    );

    // The group's state gauge follows `group stop` / `group start`.
    d.ok(&["group", "stop", "web"]);
    let s = wait_samples(port, "group web Offline", |s| {
        group_state(s, "Offline") == Some(1.0)
    });
    assert_eq!(group_state(&s, "Online"), Some(0.0));
    assert_eq!(on(&s, "s1"), Some(0.0));
    d.ok(&["group", "start", "web"]);
    wait_samples(port, "group web Online again", |s| {
        group_state(s, "Online") == Some(1.0) && on(s, "s1") == Some(1.0)
    });
    d.wait_monitor_state("appw", "Normal");

    // A monitor failure: the recovery ladder restarts the resource, and
    // the reactivation is counted.
    let reactivations = |s: &[Sample]| {
        prom::value(
            s,
            "understudy_monitor_reactivations_total",
            &[("monitor", "appw")],
        )
    };
    let before = reactivations(&prom::parse(&prom::scrape(port))).unwrap_or(0.0);
    let pid = t.wait_pid_file("app.pid");
    std::fs::remove_file(t.join("app.pid")).expect("remove app.pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the app");
    d.wait_alert_count("rm", 13, 1);
    let s = wait_samples(port, "one reactivation of appw counted", |s| {
        reactivations(s) == Some(before + 1.0)
    });
    assert!(
        prom::value(
            &s,
            "understudy_monitor_check_lateness_seconds_count",
            &[("monitor", "appw")]
        )
        .is_some_and(|n| n >= 1.0),
        "check lateness of appw"
    );
    d.wait_monitor_state("appw", "Normal");

    // Alerts by module and id: the same counts as the alert log's (the
    // log is written before it counts, so wait for the two to agree).
    let end = Instant::now() + DEADLINE;
    let (logged, counted) = loop {
        let logged = alert_counts(&d);
        let counted = counted_alerts(&prom::parse(&prom::scrape(port)));
        if logged == counted || Instant::now() >= end {
            break (logged, counted);
        }
        std::thread::sleep(POLL);
    };
    assert_eq!(counted, logged, "alerts counted vs the alert log");
    for (module, id) in [("rm", "9"), ("rm", "13"), ("rc", "10"), ("rc", "11")] {
        assert!(
            counted.contains_key(&(module.to_string(), id.to_string())),
            "{module} {id} counted: {counted:?}"
        );
    }
    // Nothing of an alert's text is exported.
    let text = prom::scrape(port);
    assert!(!text.contains("error detected"), "{text}");
}

#[test]
fn a_taken_metrics_port_stops_the_start_naming_the_field() {
    let t = TestDir::new("metrics-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = t.write("cluster.ron", &watched_sleeper(&t, port));
    let mut d = Daemon::spawn(&t, &config, "s1");
    wait_for("the daemon to give up", START_DEADLINE, || !d.is_running());
    let log = d.log_text();
    assert!(
        log.contains(&format!(
            "metrics.listen: cannot listen on 127.0.0.1:{port}"
        )),
        "{log}"
    );
    drop(taken);
}

#[test]
fn config_check_names_the_field_and_warns_beyond_loopback() {
    let t = TestDir::new("metrics-check");
    let with = |listen: &str| {
        let file = t.write(
            "c.ron",
            &t.config(&["s1"], &format!(r#"metrics: (listen: "{listen}"),"#), ""),
        );
        understudy(&["config", "check", &file.display().to_string()])
    };
    let out = with("127.0.0.1:9664");
    assert!(out.success(), "{out:?}");
    assert!(!out.stdout.contains("warning: metrics"), "{out:?}");
    assert!(
        out.stdout
            .contains("metrics: http://127.0.0.1:9664/metrics"),
        "{out:?}"
    );
    let out = with("0.0.0.0:9664");
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains("warning: metrics.listen: 0.0.0.0:9664")
            && out.stdout.contains("no authentication"),
        "{out:?}"
    );
    let out = with("localhost:9664");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("metrics.listen: \"localhost:9664\" is not an IP address"),
        "{out:?}"
    );
}

#[test]
fn prometheus_scrapes_the_daemon() {
    if let Some(missing) = prom::need_prometheus() {
        return missing.skip();
    }
    let t = TestDir::new("metrics-prometheus");
    let port = free_port();
    let d = Daemon::start(&t, &watched_sleeper(&t, port), "s1");
    d.wait_group_state("web", "Online");
    let prom_port = free_port();
    let mut server = prom::start_prometheus(&t, prom_port, port);
    let log = || std::fs::read_to_string(t.join("prometheus.log")).unwrap_or_default();
    let end = Instant::now() + DEADLINE;
    let wait_query = |server: &mut common::Background, promql: &str, want: f64| {
        let mut last = Vec::new();
        while Instant::now() < end {
            server.assert_running();
            last = prom::query(prom_port, promql);
            if last == [want] {
                return;
            }
            std::thread::sleep(POLL * 10);
        }
        panic!(
            "{promql}: {last:?}, not [{want}]; Prometheus's log:\n{}",
            log()
        );
    };
    wait_query(&mut server, r#"up{job="understudy"}"#, 1.0);
    wait_query(
        &mut server,
        r#"understudy_group_state{group="web",state="Online"}"#,
        1.0,
    );
    // A change reaches Prometheus too.
    d.ok(&["group", "stop", "web"]);
    wait_query(
        &mut server,
        r#"understudy_group_state{group="web",state="Offline"}"#,
        1.0,
    );
    let duration = prom::query(prom_port, r#"scrape_duration_seconds{job="understudy"}"#);
    let samples = prom::query(prom_port, r#"scrape_samples_scraped{job="understudy"}"#);
    eprintln!(
        "Prometheus scraped the daemon in {:.2} ms ({} samples)",
        duration.first().copied().unwrap_or(f64::NAN) * 1000.0,
        samples.first().copied().unwrap_or(f64::NAN)
    );
    // A generous bound: the exposition is made from memory, without a word
    // to the actors.
    assert!(
        duration.len() == 1 && duration[0] < 0.5,
        "scrape_duration_seconds: {duration:?}"
    );
}
