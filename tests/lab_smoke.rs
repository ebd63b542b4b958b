//! The multi-server lab itself (tests/common/cluster.rs, tools/lab,
//! tools/lab-responder.py): the network reaches every server on both paths,
//! the address watch sees a floating IP on two servers when it is, and the
//! lab runs, controls and stops one daemon per server. The namespace tests
//! need root and skip with a printed reason elsewhere.

mod common;

use common::cluster::{group_of, lab_config, Lab};
use common::{understudy, TestDir, DEADLINE};

const PORT: u16 = 8080;
const VIP: &str = "198.51.100.50";

const GROUP_WEB: &str = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "vip", kind: Fip(address: "198.51.100.50/24", duplicate_check_ms: 100)),
        ]),"#;

#[test]
fn lab_config_merges_heartbeat_overrides_and_passes_config_check() {
    let dir = TestDir::new("labcfg");
    let text = lab_config(
        &dir,
        3,
        GROUP_WEB,
        "heartbeat: (timeout_ms: 1000, recovery: Manual),\n    guardian: (action: ReleaseResources),",
    );
    for wanted in [
        "interval_ms: 100",
        "timeout_ms: 1000",
        "recovery: Manual",
        "startup_wait_secs: 10",
        r#"Server(name: "n3", interconnects: ["198.51.100.13", "203.0.113.13"])"#,
        "guardian: (action: ReleaseResources),",
    ] {
        assert!(text.contains(wanted), "no {wanted:?} in:\n{text}");
    }
    assert_eq!(text.matches("heartbeat:").count(), 1, "{text}");
    assert!(!text.contains("timeout_ms: 300"), "{text}");

    let path = dir.write("lab.ron", &text);
    let out = understudy(&["config", "check", path.to_str().unwrap()]);
    assert!(out.success(), "{out:?}\n{text}");

    // Without overrides: the defaults.
    let text = lab_config(&dir, 2, GROUP_WEB, "");
    assert!(text.contains("interval_ms: 100, timeout_ms: 300"), "{text}");
    let path = dir.write("lab2.ron", &text);
    let out = understudy(&["config", "check", path.to_str().unwrap()]);
    assert!(out.success(), "{out:?}\n{text}");
}

#[test]
fn lab_network_reaches_every_server_and_the_watch_sees_doubles() {
    let Some(mut lab) = Lab::new("smoke", 2) else {
        return;
    };
    for i in 1..=2 {
        lab.start_responder(i, PORT);
    }
    // The client reaches both servers on both networks, and the responder
    // tells which server answered.
    for i in 1..=2 {
        for path in 0..2 {
            let name = lab.server_name(i);
            lab.wait_fetch(&lab.addr(i, path), PORT, Some(&name), DEADLINE);
        }
    }
    let (n1, n2) = (lab.ns(1), lab.ns(2));
    let vip = format!("{VIP}/24");
    let add = |ns: &str| lab.must_ip(ns, &["addr", "add", &vip, "dev", "eth0"]);
    let del = |ns: &str| lab.must_ip(ns, &["addr", "del", &vip, "dev", "eth0"]);

    // The address on n1, then on n2 as well: the watch must catch it.
    let watch = lab.watch_address(VIP);
    assert_eq!(watch.holders(), Vec::<usize>::new());
    add(&n1);
    watch.wait_holders(&[1], DEADLINE);
    lab.wait_fetch(VIP, PORT, Some("n1"), DEADLINE);
    add(&n2);
    watch.wait_holders(&[1, 2], DEADLINE);
    let doubles = watch.doubles();
    assert!(
        doubles.iter().any(|d| d.holders == [1, 2]),
        "the watch missed n1 and n2 holding {VIP}: {doubles:?}"
    );
    del(&n1);
    del(&n2);
    watch.wait_holders(&[], DEADLINE);
    let verdict = watch.check_never_double();
    assert!(
        verdict
            .as_ref()
            .is_err_and(|e| e.contains("on n1 and n2 from")),
        "{verdict:?}"
    );

    // A clean move (off n1, then onto n2): a fresh watch stays clean.
    let watch = lab.watch_address(VIP);
    add(&n1);
    watch.wait_holders(&[1], DEADLINE);
    del(&n1);
    watch.wait_holders(&[], DEADLINE);
    add(&n2);
    watch.wait_holders(&[2], DEADLINE);
    // No gratuitous ARP was sent: the client forgets n1's MAC by hand.
    lab.must_ip(&lab.client_ns(), &["neigh", "flush", "to", VIP]);
    lab.wait_fetch(VIP, PORT, Some("n2"), DEADLINE);
    assert!(watch.samples() >= 3);
    let changes: Vec<Vec<usize>> = watch.changes().into_iter().map(|(_, h)| h).collect();
    assert_eq!(changes, [vec![1], vec![], vec![2]]);
    watch.assert_never_double();
}

#[test]
fn lab_runs_controls_and_stops_a_daemon_per_server() {
    let Some(mut lab) = Lab::new("daemons", 2) else {
        return;
    };
    // The floating IP and the responder as an exec resource: one start
    // script for every server, the responder names itself after its
    // namespace.
    let responder = lab.responder_script(PORT);
    let groups = format!(
        r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "vip", kind: Fip(address: "{VIP}/24", duplicate_check_ms: 100)),
            Resource(name: "app", kind: Exec(start: "{}", start_mode: Async)),
        ]),"#,
        responder.display()
    );
    lab.write_config(&lab.config(&groups, ""));
    lab.start_all();
    for i in 1..=2 {
        let status = lab.status(i);
        assert_eq!(status["server"], lab.server_name(i), "{status}");
        assert!(status["pid"].as_u64().unwrap_or(0) > 0, "{status}");
        assert_eq!(lab.daemon_pid(i), status["pid"].as_u64().unwrap() as u32);
    }

    let watch = lab.watch_address(VIP);
    lab.ctl_ok(1, &["group", "start", "web"]);
    let status = lab.wait_group_on(1, "web", "n1", DEADLINE);
    assert_eq!(group_of(&status, "web").unwrap()["state"], "Online");
    watch.wait_holders(&[1], DEADLINE);
    assert!(lab.addresses(1).contains(&VIP.to_string()));
    lab.wait_fetch(VIP, PORT, Some("n1"), DEADLINE);

    // SIGTERM: the daemon releases the address, hands the group to n2 and
    // exits cleanly.
    let exit = lab.stop(1);
    assert!(exit.success(), "{exit}\n{}", lab.log_tail(1));
    assert!(!lab.is_running(1));
    watch.wait_holders(&[2], DEADLINE);
    lab.wait_fetch(VIP, PORT, Some("n2"), DEADLINE);

    // kill -9 of the whole stack of n2.
    lab.kill9_all(2);
    assert!(!lab.is_running(2));
    assert!(lab.try_status(2).is_none());
    watch.assert_never_double();
}

#[test]
fn the_process_watch_sees_an_application_on_two_servers() {
    let Some(mut lab) = Lab::new("procwatch", 2) else {
        return;
    };
    let port = 9090;
    let watch = lab.watch_responder(port);
    // Another port's responder is not the watched application.
    let other = lab.watch_responder(port + 1);
    assert_eq!(watch.holders(), Vec::<usize>::new());
    lab.start_responder(1, port);
    watch.wait_holders(&[1], DEADLINE);
    lab.start_responder(2, port);
    watch.wait_holders(&[1, 2], DEADLINE);
    let doubles = watch.doubles();
    assert!(
        doubles.iter().any(|d| d.holders == [1, 2]),
        "the watch missed the responder on n1 and n2: {doubles:?}"
    );
    let verdict = watch.check_never_double();
    assert!(
        verdict
            .as_ref()
            .is_err_and(|e| e.contains("ran on two servers") && e.contains("on n1 and n2 from")),
        "{verdict:?}"
    );
    assert_eq!(other.holders(), Vec::<usize>::new());
    assert!(other.samples() >= 2);
    other.assert_never_double();
}
