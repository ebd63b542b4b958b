//! Multi-server clusters on network-namespace hosts: real daemons, two
//! interconnect networks, a client namespace probing the floating IP, and
//! an invariant checker that fails a test the moment the floating IP is
//! configured on two servers at once.

mod common;

use std::time::Duration;

use common::cluster::Lab;
use serde_json::Value;

const VIP: &str = "198.51.100.50";
const PORT: u16 = 8080;
/// Long enough for a slow CI machine; the tests wait for events, not for
/// this much time.
const WAIT: Duration = Duration::from_secs(20);

/// A group with a floating IP and a responder that answers with the name of
/// the server it runs on (the exec resource's `CLP_SERVER`).
fn web_group(lab: &Lab, attrs: &str) -> String {
    format!(
        r#"Group(name: "web", {attrs} resources: [
            Resource(name: "vip", kind: Fip(address: "{VIP}/24", duplicate_check_ms: 50)),
            Resource(name: "app", kind: Exec(
                start: "{responder}",
                stop: "/bin/true",
                start_mode: Async)),
        ])"#,
        responder = lab.responder_script(PORT).display()
    )
}

fn group<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["name"] == name))
        .unwrap_or_else(|| panic!("no group {name} in {status}"))
}

fn server<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["servers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no server {name} in {status}"))
}

fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "command failed: {text}");
    text
}

fn alerts(lab: &Lab, i: usize) -> String {
    let out = lab.ctl(i, &["alerts", "-n", "200"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_group_moves_both_ways_and_the_address_follows() {
    let Some(mut lab) = Lab::new("move", 2) else {
        return;
    };
    let text = lab.config(&web_group(&lab, ""), "");
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(1, "web", "n1", WAIT);
    lab.wait_group_on(2, "web", "n1", WAIT);
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n1"));

    // Asked on the server that does not run it.
    ok(&lab.ctl(2, &["group", "move", "web"]));
    lab.wait_group_on(1, "web", "n2", WAIT);
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n2"));
    assert_eq!(watch.holders(), vec![2]);

    ok(&lab.ctl(1, &["group", "move", "web", "--to", "n1"]));
    lab.wait_group_on(2, "web", "n1", WAIT);
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n1"));
    watch.assert_never_double();
}

#[test]
fn kill_9_of_the_active_daemon_fails_the_group_over_and_leaves_one_address() {
    let Some(mut lab) = Lab::new("kill", 2) else {
        return;
    };
    let text = lab.config(&web_group(&lab, ""), "");
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(2, "web", "n1", WAIT);

    lab.kill9_daemon(1);
    lab.wait_group_on(2, "web", "n2", WAIT);
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n2"));
    watch.wait_holders(&[2], WAIT);
    let log = alerts(&lab, 2);
    assert!(log.contains("rc 60"), "failover started: {log}");
    assert!(log.contains("rc 61"), "failover completed: {log}");
    watch.assert_never_double();
}

#[test]
fn three_servers_fail_over_in_group_order() {
    let Some(mut lab) = Lab::new("three", 3) else {
        return;
    };
    let text = lab.config(&web_group(&lab, r#"servers: ["n1", "n3", "n2"],"#), "");
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(2, "web", "n1", WAIT);

    lab.kill9_daemon(1);
    lab.wait_group_on(2, "web", "n3", WAIT);
    lab.wait_group_on(3, "web", "n3", WAIT);
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n3"));

    lab.kill9_daemon(3);
    lab.wait_group_on(2, "web", "n2", WAIT);
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n2"));
    watch.assert_never_double();
}

#[test]
fn one_interconnect_down_is_a_path_alert_not_a_failover() {
    let Some(mut lab) = Lab::new("path", 2) else {
        return;
    };
    let text = lab.config(&web_group(&lab, ""), "");
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(2, "web", "n1", WAIT);

    lab.link(1, 1, false);
    let status = lab.wait_status(2, "path 1 to n1 down", WAIT, |s| {
        server(s, "n1")["paths"][1]["state"] == "Down"
    });
    assert_eq!(server(&status, "n1")["state"], "Online");
    assert_eq!(server(&status, "n1")["paths"][0]["state"], "Up");
    assert_eq!(group(&status, "web")["current"], "n1");
    let log = alerts(&lab, 2);
    assert!(log.contains("nm 4"), "path alert: {log}");
    assert!(!log.contains("rc 60"), "no failover: {log}");

    lab.link(1, 1, true);
    lab.wait_status(2, "path 1 to n1 up again", WAIT, |s| {
        server(s, "n1")["paths"][1]["state"] == "Up"
    });
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n1"));
    watch.assert_never_double();
}

#[test]
fn a_monitor_error_moves_the_group_and_a_second_one_ends_in_the_final_action() {
    let Some(mut lab) = Lab::new("mon", 2) else {
        return;
    };
    let monitors = r#"monitors: [Monitor(name: "appw", kind: Pid, target: "app", interval: 1, timeout: 5,
        recovery: (target: Group("web"), reactivation_threshold: 0, failover_threshold: 1,
                   final_action: StopGroup))],"#;
    let text = lab.config(&web_group(&lab, ""), monitors);
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(1, "web", "n1", WAIT);
    let app_pid = |lab: &Lab, i: usize| -> i32 {
        let s = lab.wait_status(i, "app has a pid", WAIT, |s| {
            group(s, "web")["resources"][1]["pid"].is_u64()
        });
        group(&s, "web")["resources"][1]["pid"].as_i64().unwrap() as i32
    };

    let pid = app_pid(&lab, 1);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    lab.wait_group_on(2, "web", "n2", WAIT);
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n2"));
    // The counters followed the monitor to the destination.
    let s = lab.wait_status(2, "failover counted on n2", WAIT, |s| {
        s["monitors"][0]["failovers"] == 1
    });
    assert_eq!(s["monitors"][0]["name"], "appw");

    let pid = app_pid(&lab, 2);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    lab.wait_status(2, "group stopped by the final action", WAIT, |s| {
        group(s, "web")["state"] == "Offline"
    });
    let s1 = lab.status(1);
    assert_eq!(
        group(&s1, "web")["state"],
        "Offline",
        "not moved back: {s1}"
    );
    assert!(alerts(&lab, 2).contains("final action"));
    watch.assert_never_double();
}

#[test]
fn failback_auto_returns_the_group_to_the_first_server() {
    let Some(mut lab) = Lab::new("fback", 2) else {
        return;
    };
    let text = lab.config(&web_group(&lab, "failback: Auto,"), "");
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(2, "web", "n1", WAIT);

    // An orderly stop of n1 hands its group to n2.
    lab.stop(1);
    lab.wait_group_on(2, "web", "n2", WAIT);
    assert!(alerts(&lab, 2).contains("nm 2"), "left, not died");

    lab.start(1);
    lab.wait_group_on(2, "web", "n1", WAIT);
    assert_eq!(lab.client_fetch(VIP, PORT).as_deref(), Some("n1"));
    watch.assert_never_double();
}

#[test]
fn a_returning_server_stays_out_until_recovered() {
    let Some(mut lab) = Lab::new("recov", 2) else {
        return;
    };
    let text = lab.config(&web_group(&lab, ""), "heartbeat_recovery: Manual");
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(2, "web", "n1", WAIT);

    lab.kill9_daemon(1);
    lab.wait_group_on(2, "web", "n2", WAIT);
    lab.start(1);
    lab.wait_status(2, "n1 isolated", WAIT, |s| {
        server(s, "n1")["state"] == "Isolated"
    });
    let out = lab.ctl(2, &["group", "move", "web", "--to", "n1"]);
    assert!(!out.status.success(), "an isolated server takes no group");

    ok(&lab.ctl(2, &["server", "recover", "n1"]));
    lab.wait_status(2, "n1 online", WAIT, |s| {
        server(s, "n1")["state"] == "Online"
    });
    ok(&lab.ctl(2, &["group", "move", "web", "--to", "n1"]));
    lab.wait_group_on(2, "web", "n1", WAIT);
    watch.assert_never_double();
}

#[test]
fn a_peer_with_another_configuration_gets_no_groups() {
    let Some(mut lab) = Lab::new("digest", 2) else {
        return;
    };
    // n2 comes first in the group's order, but runs another configuration.
    let text = lab.config(&web_group(&lab, r#"servers: ["n2", "n1"],"#), "");
    lab.write_config(&text);
    lab.write_config_for(2, &text.replace("name: \"lab\"", "name: \"lab-other\""));
    let watch = lab.watch_address(VIP);
    lab.start_all();
    let s = lab.wait_status(1, "n2 reported with another config", WAIT, |s| {
        server(s, "n2")["config_mismatch"] == true
    });
    assert_eq!(server(&s, "n2")["state"], "Online");
    lab.wait_group_on(1, "web", "n1", WAIT);
    assert!(alerts(&lab, 1).contains("nm 1302"));
    let out = lab.ctl(1, &["group", "move", "web", "--to", "n2"]);
    assert!(!out.status.success(), "n2 must not be given the group");
    watch.assert_never_double();
}

#[test]
fn config_push_reaches_every_server() {
    let Some(mut lab) = Lab::new("push", 3) else {
        return;
    };
    let text = lab.config(&web_group(&lab, "startup: Manual,"), "");
    lab.write_config(&text);
    lab.start_all();
    for i in 1..=3 {
        lab.wait_status(i, "every server heard", WAIT, |s| {
            s["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["state"] == "Online")
        });
    }
    let new_text = text.replace("startup: Manual,", "startup: Manual, failback: Auto,");
    let file = lab.dir().join("pushed.ron");
    std::fs::write(&file, &new_text).unwrap();
    let out = ok(&lab.ctl(2, &["config", "push", file.to_str().unwrap()]));
    for i in 1..=3 {
        assert_eq!(
            std::fs::read_to_string(lab.config_path(i)).unwrap(),
            new_text,
            "server n{i}: {out}"
        );
        assert!(out.contains(&format!("n{i}:")), "{out}");
    }
    // A bad file is refused before anything is sent.
    std::fs::write(&file, "Cluster(name: \"x\"").unwrap();
    let out = lab.ctl(2, &["config", "push", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(lab.config_path(1)).unwrap(),
        new_text
    );
}

#[test]
fn forged_and_replayed_heartbeats_are_rejected_and_counted() {
    use understudy_actors::wire::frame::seal_json;
    use understudy_actors::wire::heartbeat::{Advert, Beat, BeatKind};
    use understudy_actors::wire::key::ClusterKey;

    let Some(mut lab) = Lab::new("forge", 2) else {
        return;
    };
    let text = lab.config(&web_group(&lab, "startup: Manual,"), "");
    lab.write_config(&text);
    lab.start_all();
    lab.wait_status(1, "n2 heard", WAIT, |s| {
        server(s, "n2")["state"] == "Online"
    });

    // Forged: a well-formed beat "from n2", sealed with another key.
    let other = ClusterKey::from_bytes([7; 32]);
    let beat = Beat {
        from: "n2".into(),
        incarnation: u64::MAX / 2,
        seq: 1,
        path: 0,
        config_digest: String::new(),
        kind: BeatKind::Alive(Advert::default()),
    };
    let forged = seal_json(&other, &beat).unwrap();
    lab.client_udp_send("198.51.100.11", 29170, &forged);
    lab.wait_status(1, "forged packet counted", WAIT, |s| {
        s["rejected"]["forged"].as_u64().unwrap_or(0) >= 1
    });

    // Replayed: an authentic beat of n2, captured on its way and sent again.
    let captured = lab.capture_udp(2, 1, 29170, WAIT);
    let before = lab.status(1)["rejected"]["replayed"].as_u64().unwrap_or(0);
    lab.client_udp_send("198.51.100.11", 29170, &captured);
    lab.client_udp_send("198.51.100.11", 29170, &captured);
    lab.wait_status(1, "replayed packet counted", WAIT, |s| {
        s["rejected"]["replayed"].as_u64().unwrap_or(0) > before
    });
    let s = lab.status(1);
    assert_eq!(server(&s, "n2")["state"], "Online", "still trusted: {s}");
    assert!(alerts(&lab, 1).contains("nm 1304"));
}
