//! Multi-server clusters on network-namespace hosts: real daemons, two
//! interconnect networks, a client namespace probing the floating IP, and
//! an invariant checker that fails a test the moment the floating IP is
//! configured on two servers at once.

mod common;

use std::time::Duration;

use common::cluster::{
    in_netns, web_group, web_lab_with_mail, Checkers, Lab, WEB_PORT as PORT, WEB_VIP as VIP,
};
use serde_json::Value;

/// Long enough for a slow CI machine; the tests wait for events, not for
/// this much time.
const WAIT: Duration = Duration::from_secs(20);

/// A two-server lab running group `web` (with `attrs`, and `extra`
/// top-level fields) on n1, with the address checker watching; `None` when
/// the machine cannot host the lab (the reason is printed).
fn running_lab(
    tag: &str,
    attrs: &str,
    extra: &str,
) -> Option<(Lab, common::cluster::AddressWatch)> {
    let mut lab = Lab::new(tag, 2)?;
    let text = lab.config(&web_group(&lab, attrs), extra);
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(2, "web", "n1", WAIT);
    Some((lab, watch))
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

fn alerts(lab: &Lab, i: usize) -> String {
    lab.ctl(i, &["alerts", "-n", "300"]).stdout
}

/// Sends one UDP datagram from the client namespace.
fn client_udp_send(lab: &Lab, to: &str, port: u16, packet: &[u8]) {
    let to: std::net::SocketAddr = format!("{to}:{port}").parse().unwrap();
    let packet = packet.to_vec();
    in_netns(&lab.client_ns(), move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
        s.send_to(&packet, to).expect("send");
    });
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
    lab.wait_fetch(VIP, PORT, Some("n1"), WAIT);

    // Asked on the server that does not run it.
    lab.ctl_ok(2, &["group", "move", "web"]);
    lab.wait_group_on(1, "web", "n2", WAIT);
    lab.wait_fetch(VIP, PORT, Some("n2"), WAIT);
    assert_eq!(watch.holders(), vec![2]);

    lab.ctl_ok(1, &["group", "move", "web", "--to", "n1"]);
    lab.wait_group_on(2, "web", "n1", WAIT);
    lab.wait_fetch(VIP, PORT, Some("n1"), WAIT);
    watch.assert_never_double();
}

#[test]
fn kill_9_of_the_active_daemon_fails_the_group_over_and_leaves_one_address() {
    let Some((mut lab, watch)) = running_lab("kill", "", "") else {
        return;
    };

    lab.kill9_daemon(1);
    lab.wait_group_on(2, "web", "n2", WAIT);
    lab.wait_fetch(VIP, PORT, Some("n2"), WAIT);
    watch.wait_holders(&[2], WAIT);
    let log = alerts(&lab, 2);
    assert!(log.contains("rc 60"), "failover started: {log}");
    assert!(log.contains("rc 61"), "failover completed: {log}");
    watch.assert_never_double();

    // "Why did it fail over?": n2's decision journal, replayed on the same
    // configuration, shows the takeover and what n2 knew, and decides
    // exactly as n2 did.
    let journal = lab.state_dir(2).join("journal.jsonl");
    let config = lab.config_path();
    let out = lab.ctl(
        2,
        &[
            "simulate",
            "--replay",
            journal.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout
            .contains(r#"Start { group: "web", failover_from: Some("n1")"#)
            && out.stdout.contains("because group web: wanted true")
            && out
                .stdout
                .contains("the replay decided exactly as the server did"),
        "{}",
        out.stdout
    );
}

/// The actors' thread of the active server blocked for more than three
/// heartbeat timeouts (a slow disk, a long handler): its heartbeats run on
/// a thread of their own and keep going, so nobody declares it down and
/// nothing fails over; and once it runs again it does not take its own
/// stall for the others' silence.
#[test]
fn a_blocked_actor_thread_is_not_a_dead_server() {
    let Some((lab, watch)) = running_lab("stall", "", "") else {
        return;
    };
    let before2 = alerts(&lab, 2);
    let before1 = alerts(&lab, 1);
    let out = lab.ctl(1, &["debug", "stall", "1"]);
    assert!(out.success(), "{out:?}");
    // Both servers answer again: what did they make of the second?
    lab.wait_group_on(2, "web", "n1", WAIT);
    lab.wait_group_on(1, "web", "n1", WAIT);
    let after2 = alerts(&lab, 2);
    let after1 = alerts(&lab, 1);
    assert_eq!(
        after2.matches("nm 1310").count(),
        before2.matches("nm 1310").count(),
        "n2 declared n1 down: {after2}"
    );
    assert_eq!(
        after1.matches("nm 1310").count(),
        before1.matches("nm 1310").count(),
        "n1 took its own stall for n2's silence: {after1}"
    );
    assert_eq!(server(&lab.status(2), "n1")["state"], "Online");
    watch.assert_never_double();
}

/// A move asks the destination first: one that cannot answer (its peer
/// link blocked while its heartbeats flow) leaves the group running where
/// it is, instead of stopping it there and leaving it to chance.
#[test]
fn a_move_to_a_server_that_cannot_answer_leaves_the_group_running() {
    if let Some(missing) = common::cluster::nft_unavailable() {
        return missing.skip();
    }
    let Some((lab, watch)) = running_lab("nomove", "", "") else {
        return;
    };
    // n2 drops every peer-link request; heartbeats still pass.
    lab.nft(
        &lab.ns(2),
        "table inet understudy_nomove {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 29171 drop
    }
}
",
    );
    let out = lab.ctl(1, &["group", "move", "web", "--to", "n2"]);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("keeps running here"), "{out:?}");
    let status = lab.status(1);
    assert_eq!(group(&status, "web")["state"], "Online", "{status}");
    assert_eq!(group(&status, "web")["current"], "n1", "{status}");
    let log = alerts(&lab, 1);
    assert!(!log.contains("rc 20"), "the group was never stopped: {log}");
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
    lab.wait_fetch(VIP, PORT, Some("n3"), WAIT);

    lab.kill9_daemon(3);
    lab.wait_group_on(2, "web", "n2", WAIT);
    lab.wait_fetch(VIP, PORT, Some("n2"), WAIT);
    watch.assert_never_double();
}

#[test]
fn one_interconnect_down_is_a_path_alert_not_a_failover() {
    let Some((lab, watch)) = running_lab("path", "", "") else {
        return;
    };

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
    lab.wait_fetch(VIP, PORT, Some("n1"), WAIT);
    watch.assert_never_double();
}

#[test]
fn a_monitor_error_moves_the_group_and_a_second_one_ends_in_the_final_action() {
    let Some(mut lab) = Lab::new("mon", 2) else {
        return;
    };
    let monitors = r#"monitors: [Monitor(name: "appw", kind: Pid(), target: "app", interval: 1, timeout: 5, retry: 0,
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
    lab.wait_fetch(VIP, PORT, Some("n2"), WAIT);
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
    let Some((mut lab, watch)) = running_lab("fback", "failback: Auto,", "") else {
        return;
    };

    // An orderly stop of n1 hands its group to n2.
    lab.stop(1);
    lab.wait_group_on(2, "web", "n2", WAIT);
    assert!(alerts(&lab, 2).contains("nm 2"), "left, not died");

    lab.start(1);
    lab.wait_group_on(2, "web", "n1", WAIT);
    lab.wait_fetch(VIP, PORT, Some("n1"), WAIT);
    watch.assert_never_double();
}

#[test]
fn a_returning_server_stays_out_until_recovered() {
    let Some((mut lab, watch)) = running_lab("recov", "", "heartbeat: (recovery: Manual),") else {
        return;
    };

    lab.kill9_daemon(1);
    lab.wait_group_on(2, "web", "n2", WAIT);
    lab.start(1);
    lab.wait_status(2, "n1 isolated", WAIT, |s| {
        server(s, "n1")["state"] == "Isolated"
    });
    let out = lab.ctl(2, &["group", "move", "web", "--to", "n1"]);
    assert!(!out.success(), "an isolated server takes no group: {out:?}");

    lab.ctl_ok(2, &["server", "recover", "n1"]);
    lab.wait_status(2, "n1 online", WAIT, |s| {
        server(s, "n1")["state"] == "Online"
    });
    lab.ctl_ok(2, &["group", "move", "web", "--to", "n1"]);
    lab.wait_group_on(2, "web", "n1", WAIT);
    watch.assert_never_double();
}

/// Three servers by majority with a ten-minute margin: n1, which runs
/// web, is cut off (both links down); it loses its quorum and lets web go,
/// but the others would wait its lease plus that margin before taking it.
/// An operator's confirm-down on n2 reaches n3 too, and web starts on n2
/// at once.
#[test]
fn confirm_down_on_one_server_lets_the_survivors_take_over_at_once() {
    let Some(mut lab) = Lab::new("confdown", 3) else {
        return;
    };
    let text = lab.config(
        &web_group(&lab, ""),
        "partition: (methods: [Majority], margin_ms: 600000, action: None),",
    );
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(2, "web", "n1", WAIT);
    let s2 = lab.status(2);
    let p = &s2["partition"];
    assert_eq!(p["methods"], serde_json::json!(["Majority"]), "{s2}");
    assert_eq!(p["quorate"], true, "{s2}");
    assert!(
        p["lease_ms_left"].as_u64().is_some_and(|ms| ms <= 300),
        "quorate with its peers, for at most the lease (300 ms): {s2}"
    );
    assert_eq!(p["silent"], serde_json::json!([]), "{s2}");

    lab.links(1, false);
    watch.wait_holders(&[], WAIT);
    let s2 = lab.wait_status(2, "n1 silent, its takeover waiting", WAIT, |s| {
        s["partition"]["silent"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["name"] == "n1" && x["takeover_ms_left"].is_u64())
        })
    });
    let wait = s2["partition"]["silent"][0]["takeover_ms_left"]
        .as_u64()
        .unwrap_or(0);
    assert!(wait > 500_000, "lease + ten minutes: {s2}");
    assert_ne!(group(&s2, "web")["state"], "Online", "{s2}");

    let out = lab.ctl(2, &["server", "confirm-down", "n1", "--yes"]);
    assert!(out.success(), "{out:?}");
    for server in ["n2", "n3"] {
        assert!(
            out.stdout
                .contains(&format!("{server}: server n1 confirmed down")),
            "{out:?}"
        );
    }
    lab.wait_group_on(2, "web", "n2", WAIT);
    lab.wait_fetch(VIP, PORT, Some("n2"), WAIT);
    let on_n3 = alerts(&lab, 3);
    assert!(
        on_n3
            .lines()
            .any(|l| l.contains("nm 34") && l.contains("(via n2)")),
        "{on_n3}"
    );
    let s3 = lab.status(3);
    assert_eq!(s3["partition"]["silent"][0]["name"], "n1", "{s3}");
    assert_eq!(s3["partition"]["silent"][0]["cleared"], true, "{s3}");
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
    let other = lab.dir().join("other.ron");
    std::fs::write(&other, text.replace("name: \"lab\"", "name: \"lab-other\"")).unwrap();
    let watch = lab.watch_address(VIP);
    lab.start(1);
    lab.start_with(2, &other);
    let s = lab.wait_status(1, "n2 reported with another config", WAIT, |s| {
        server(s, "n2")["config_mismatch"] == true
    });
    assert_eq!(server(&s, "n2")["state"], "Online");
    lab.wait_group_on(1, "web", "n1", WAIT);
    assert!(alerts(&lab, 1).contains("nm 1302"));
    let out = lab.ctl(1, &["group", "move", "web", "--to", "n2"]);
    assert!(!out.success(), "n2 must not be given the group: {out:?}");
    watch.assert_never_double();
}

/// Two servers started at the same moment on different configurations
/// (session 22: both started the group, 0.27 s, under load): each counts
/// the other ineligible, yet only the configuration of the earlier-started
/// daemon starts groups, so the group runs once; when that server stops,
/// the other, alone, takes the group.
#[test]
fn servers_started_at_once_on_different_configurations_run_a_group_once() {
    let Some(mut lab) = Lab::new("digest2", 2) else {
        return;
    };
    let text = lab.config(&web_group(&lab, r#"servers: ["n1", "n2"],"#), "");
    lab.write_config(&text);
    let other = lab.dir().join("other.ron");
    std::fs::write(&other, text.replace("name: \"lab\"", "name: \"lab-other\"")).unwrap();
    // The address and the application, each on one server at most.
    let checkers = Checkers::start(&lab);
    lab.spawn(1);
    lab.spawn_with(2, &other);
    lab.wait_ready(1);
    lab.wait_ready(2);
    for (i, peer) in [(1, "n2"), (2, "n1")] {
        lab.wait_status(i, "the other's configuration seen", WAIT, |s| {
            server(s, peer)["config_mismatch"] == true && server(s, peer)["state"] == "Online"
        });
    }
    let end = std::time::Instant::now() + WAIT;
    let holder = loop {
        match checkers.address.holders().as_slice() {
            [h] => break *h,
            [] if std::time::Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("the address on {other:?} (one server wanted)"),
        }
    };
    let waiting = 3 - holder;
    lab.wait_group_on(waiting, "web", &format!("n{holder}"), WAIT);
    checkers.wait_holders(&[holder], WAIT);
    // It never even tried (an address already up elsewhere can make a
    // second start fail before it adds it: not proof enough). Its own
    // alert file: `alerts` shows the whole cluster's.
    let log = std::fs::read_to_string(lab.dir().join(&format!("n{waiting}/alerts.jsonl")))
        .expect("the waiting server's alert file");
    assert!(
        !log.contains("group web: activation started"),
        "n{waiting} started web while n{holder} ran it:\n{log}"
    );
    // The server that yielded takes the group once it is alone.
    lab.stop(holder);
    checkers.wait_holders(&[waiting], WAIT);
    if let Err(e) = checkers.check_never_double() {
        panic!("{e}");
    }
}

#[test]
fn config_push_reaches_every_server() {
    let Some(mut lab) = Lab::new("push", 3) else {
        return;
    };
    let text = lab.config(&web_group(&lab, "startup: Manual,"), "");
    // Each server has its own copy, as on real machines.
    let dir = lab.dir().path().to_path_buf();
    let file_of = |i: usize| dir.join(format!("n{i}.ron"));
    for i in 1..=3 {
        std::fs::write(file_of(i), &text).unwrap();
    }
    let watch = lab.watch_address(VIP);
    for i in 1..=3 {
        let f = file_of(i);
        lab.start_with(i, &f);
    }
    for i in 1..=3 {
        lab.wait_status(i, "every server heard", WAIT, |s| {
            s["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["state"] == "Online")
        });
    }
    let file = lab.dir().join("pushed.ron");

    // A change of a group: written everywhere, applied at the next restart.
    let grouped = text.replace("startup: Manual,", "startup: Manual, failback: Auto,");
    std::fs::write(&file, &grouped).unwrap();
    let out = lab.ctl_ok(2, &["config", "push", file.to_str().unwrap()]);
    for i in 1..=3 {
        assert_eq!(
            std::fs::read_to_string(file_of(i)).unwrap(),
            grouped,
            "n{i}: {out}"
        );
        assert!(out.contains(&format!("n{i}:")), "{out}");
    }
    assert!(out.contains("restart"), "{out}");

    // A change of monitors only (against the running configuration):
    // applied at once on every server.
    let monitored = text.replace(
        "    groups: [",
        r#"    monitors: [Monitor(name: "vipw", kind: Fip(), target: "vip", interval: 1)],
    groups: ["#,
    );
    std::fs::write(&file, &monitored).unwrap();
    let out = lab.ctl_ok(1, &["config", "push", file.to_str().unwrap()]);
    assert!(out.contains("applied at once"), "{out}");
    for i in 1..=3 {
        assert_eq!(std::fs::read_to_string(file_of(i)).unwrap(), monitored);
        let s = lab.status(i);
        assert_eq!(s["monitors"][0]["name"], "vipw", "n{i}: {s}");
    }
    // The digests moved together: nobody reports another configuration.
    for i in 1..=3 {
        lab.wait_status(i, "digests agree again", WAIT, |s| {
            s["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["config_mismatch"] == false)
        });
    }

    // A bad file is refused before anything is sent.
    std::fs::write(&file, "Cluster(name: \"x\"").unwrap();
    let out = lab.ctl(2, &["config", "push", file.to_str().unwrap()]);
    assert!(!out.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(file_of(1)).unwrap(), monitored);
    watch.assert_never_double();
}

#[test]
fn forged_and_replayed_heartbeats_are_rejected_and_counted() {
    use understudy_actors::wire::frame::seal_json;
    use understudy_actors::wire::heartbeat::{Advert, Beat, BeatKind};
    use understudy_actors::wire::key::ClusterKey;

    let Some(mut lab) = Lab::new("forge", 2) else {
        return;
    };
    // A third server that never runs, whose addresses are the client's: the
    // others send it heartbeats, which lets the test capture an authentic one.
    let text = lab.config(&web_group(&lab, "startup: Manual,"), "").replace(
        "    ],\n    heartbeat:",
        "        Server(name: \"n3\", interconnects: [\"198.51.100.100\", \"203.0.113.100\"]),\n    ],\n    heartbeat:",
    );
    assert!(text.contains("\"n3\""), "{text}");
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
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
        sent_ms: 0,
        kind: BeatKind::Alive(Advert::default()),
    };
    let forged = seal_json(&other, &beat).unwrap();
    client_udp_send(&lab, "198.51.100.11", 29170, &forged);
    lab.wait_status(1, "forged packet counted", WAIT, |s| {
        s["rejected"]["forged"].as_u64().unwrap_or(0) >= 1
    });

    // Replayed: an authentic beat of n2 (meant for n3) sent again to n1.
    let captured = in_netns(&lab.client_ns(), || {
        let s = std::net::UdpSocket::bind("198.51.100.100:29170").expect("bind n3's port");
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, from) = s.recv_from(&mut buf).expect("a heartbeat for n3");
            if from.ip().to_string() == "198.51.100.12" {
                return buf[..n].to_vec();
            }
        }
    });
    let before = lab.status(1)["rejected"]["replayed"].as_u64().unwrap_or(0);
    client_udp_send(&lab, "198.51.100.11", 29170, &captured);
    client_udp_send(&lab, "198.51.100.11", 29170, &captured);
    lab.wait_status(1, "replayed packet counted", WAIT, |s| {
        s["rejected"]["replayed"].as_u64().unwrap_or(0) > before
    });
    let s = lab.status(1);
    assert_eq!(server(&s, "n2")["state"], "Online", "still trusted: {s}");
    assert!(alerts(&lab, 1).contains("nm 1304"));
    watch.assert_never_double();
}

#[test]
fn a_server_that_loses_every_link_stops_its_groups_and_the_other_takes_over() {
    let Some((lab, watch)) = running_lab("links", "", "") else {
        return;
    };

    lab.links(1, false);
    lab.wait_group_on(2, "web", "n2", WAIT);
    lab.wait_fetch(VIP, PORT, Some("n2"), WAIT);
    // n1 knows it is the one cut off: it stopped the group itself.
    let s1 = lab.wait_status(1, "n1 stopped its group", WAIT, |s| {
        group(s, "web")["state"] == "Offline" || group(s, "web")["current"] != "n1"
    });
    assert_eq!(server(&s1, "n1")["state"], "Isolated", "{s1}");
    assert!(alerts(&lab, 1).contains("nm 1305"));

    // Links back: n1 rejoins (recovery Auto) and takes nothing back.
    lab.links(1, true);
    lab.wait_status(2, "n1 back", WAIT, |s| server(s, "n1")["state"] == "Online");
    lab.wait_status(1, "n1 not cut off any more", WAIT, |s| {
        server(s, "n1")["state"] == "Online"
    });
    assert_eq!(group(&lab.status(2), "web")["current"], "n2");
    watch.assert_never_double();
}

#[test]
fn auto_groups_wait_for_the_other_servers_then_start_without_them() {
    let Some(mut lab) = Lab::new("wait", 2) else {
        return;
    };
    let text = lab.config(&web_group(&lab, ""), "heartbeat: (startup_wait_secs: 2),");
    lab.write_config(&text);
    let watch = lab.watch_address(VIP);
    // n1, first in the order, is not there: n2 waits, then starts the group.
    lab.start(2);
    lab.wait_group_on(2, "web", "n2", WAIT);
    let log = alerts(&lab, 2);
    assert!(log.contains("nm 5") && log.contains("nm 7"), "{log}");
    assert!(log.contains("n1"), "the missing server is named: {log}");

    // n1 joins a running cluster: the group stays where it runs.
    lab.start(1);
    lab.wait_status(1, "n1 sees n2", WAIT, |s| {
        server(s, "n2")["state"] == "Online"
    });
    lab.wait_group_on(1, "web", "n2", WAIT);
    watch.assert_never_double();
}

/// A lamp simulator in the client namespace; killed when dropped.
struct LampSim {
    child: std::process::Child,
    record: std::path::PathBuf,
}

impl LampSim {
    fn start(lab: &Lab, name: &str, port: u16) -> LampSim {
        let record = lab.dir().join(&format!("lamp-{name}.jsonl"));
        let sim = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/lamp-sim");
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", &lab.client_ns(), "python3", sim])
            .args(["--record", record.to_str().unwrap(), "--name", name])
            .args(["--bind", "198.51.100.100", "--pns", &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tools/lamp-sim");
        let mut sim = LampSim { child, record };
        // It prints its ports once it listens.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(sim.child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.contains(&port.to_string()), "lamp-sim: {line}");
        sim
    }

    /// The lamp's state (tiers + buzzer digits) after the last command.
    fn digits(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.record).ok()?;
        let last: Value = serde_json::from_str(text.lines().last()?).ok()?;
        last["digits"].as_str().map(str::to_string)
    }

    fn wait_digits(&self, want: &str, what: &str) {
        let end = std::time::Instant::now() + WAIT;
        while self.digits().as_deref() != Some(want) {
            assert!(
                std::time::Instant::now() < end,
                "{what}: lamp shows {:?}, wanted {want}",
                self.digits()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LampSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const GREEN: &str = "001000";
const OFF: &str = "000000";
const RED_BLINKING: &str = "200000";

#[test]
fn warning_lamps_show_green_running_red_for_a_dead_server_and_off_at_a_normal_stop() {
    let Some(mut lab) = Lab::new("lamps", 2) else {
        return;
    };
    let lamp1 = LampSim::start(&lab, "n1", 10001);
    let lamp2 = LampSim::start(&lab, "n2", 10002);
    let lamps = r#"alerts: (lamps: (enabled: true, lamps: [
        Lamp(server: "n1", address: "198.51.100.100", protocol: PnsNh, port: 10001),
        Lamp(server: "n2", address: "198.51.100.100", protocol: PnsNh, port: 10002)])),"#;
    let text = lab.config(&web_group(&lab, ""), lamps);
    lab.write_config(&text);
    lab.start_all();
    lamp1.wait_digits(GREEN, "n1 started");
    lamp2.wait_digits(GREEN, "n2 started");
    // n2 must know n1 before n1 can die in its eyes.
    lab.wait_server_state(2, "n1", "Online", WAIT);

    // n1's daemon dies: n2, the survivor, sets n1's lamp red blinking.
    lab.kill9_daemon(1);
    lamp1.wait_digits(RED_BLINKING, "n1 down");
    assert!(alerts(&lab, 2).contains("lamp 5"));
    // The lamp stays until an operator switches it off.
    lab.ctl_ok(2, &["lamp", "off", "--server", "n1"]);
    lamp1.wait_digits(OFF, "lamp off");

    // A normal stop: the server switches its own lamp off.
    lab.stop(2);
    lamp2.wait_digits(OFF, "n2 stopped");
}

#[test]
fn a_dead_server_is_reported_by_one_mail_from_one_survivor() {
    let Some((mut lab, smtp)) = web_lab_with_mail("mail3", 3, "") else {
        return;
    };
    let watch = lab.watch_address(VIP);
    lab.start_all();
    lab.wait_group_on(2, "web", "n1", WAIT);

    lab.kill9_daemon(1);
    lab.wait_group_on(3, "web", "n2", WAIT);
    // The destination reports the failover (started, as n1 is dead, and
    // completed).
    smtp.wait_mail(&["Alert:   INFO rc 61"]);
    // Every survivor's mails go out in order: a test mail from each, once
    // arrived, proves nothing else is still on its way from them.
    for i in [2, 3] {
        lab.ctl_ok(i, &["alert", "test", "--mail"]);
        smtp.wait_mail(&["INFO alert 1011", &format!("on server n{i}")]);
    }
    let mails = smtp.mails();
    let down: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("Alert:   ERROR nm 1310"))
        .collect();
    assert_eq!(
        down.len(),
        1,
        "one server-down mail:\n{}",
        mails.join("\n----\n")
    );
    assert!(down[0].contains("on server n2"), "{}", down[0]);
    let started = mails.iter().filter(|m| m.contains("rc 60")).count();
    assert_eq!(started, 1, "{}", mails.join("\n----\n"));
    watch.assert_never_double();
}

/// `heartbeat.realtime`: the daemon's memory is locked and one of its
/// threads (the heartbeat thread) runs with SCHED_RR, as corosync's does;
/// the cluster works as before.
#[test]
fn realtime_heartbeats_lock_memory_and_raise_the_heartbeat_thread() {
    let Some((lab, _)) = running_lab("realtime", "", "heartbeat: (realtime: true),") else {
        return;
    };
    for i in 1..=2 {
        let pid = lab.daemon_pid(i);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let locked: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmLck:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmLck in /proc/PID/status");
        assert!(locked > 0, "n{i}: no memory locked:\n{status}");
        // Field 41 of a task's stat is its scheduling policy (2: SCHED_RR).
        let policies: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("tasks")
            .filter_map(|t| {
                let stat = std::fs::read_to_string(t.ok()?.path().join("stat")).ok()?;
                let after = stat.rsplit_once(')')?.1;
                after.split_whitespace().nth(38)?.parse().ok()
            })
            .collect();
        assert_eq!(
            policies.iter().filter(|p| **p == 2).count(),
            1,
            "n{i}: one SCHED_RR thread expected, policies {policies:?}"
        );
    }
    let s = lab.status(2);
    assert_eq!(group(&s, "web")["current"], "n1", "{s}");
}
