//! The SNMP trap receiver of the message receive monitors (category
//! `BMCNOTICE`, keyword `IP[:port]`) against a real sender: net-snmp's
//! `snmptrap` (Debian package `snmp`) sends v1 and v2c traps.
//!
//! - one server on loopback: traps with the right community reach their
//!   monitor, a trap for another keyword changes nothing for it, a wrong
//!   community, garbage and an oversized datagram are counted in status
//!   and dropped, and the community never shows;
//! - seed 003's sample cluster in the lab (two servers, `mrw1` with a
//!   keyword per server, recovery: fail over `failover1`): a trap to the
//!   other server's keyword moves nothing, garbage is counted, and a trap
//!   to server 1's keyword moves `failover1` to server 2 (the address and
//!   application checkers see it on one server at a time);
//! - a pushed configuration that moves a keyword opens the new receiver and
//!   lets the old port go;
//! - the trap notifier against net-snmp's `snmptrapd`;
//! - `config check`: warnings about keywords, an unusable community file.
//!
//! Every wait polls for something observable, with a deadline.

mod common;

use std::net::UdpSocket;
use std::process::Command;

use common::cluster::*;
use common::*;
use serde_json::Value;

/// A v2c trap's OID (net-snmp's example notification).
const TRAP_OID: &str = "1.3.6.1.4.1.8072.2.3.0.1";

fn need_snmptrap() -> Option<skip::Missing> {
    skip::need_program("snmptrap", "snmp")
}

/// `snmptrap` arguments for a trap of `version` ("1" or "2c").
fn trap_args(version: &str, community: &str, to: &str) -> Vec<String> {
    let mut a: Vec<String> = ["-v", version, "-c", community, to]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if version == "1" {
        // enterprise, agent address (this host), generic 6, specific 1, uptime.
        a.extend(["1.3.6.1.4.1.8072.2.3", "", "6", "1", ""].map(String::from));
    } else {
        a.extend(["", TRAP_OID].map(String::from));
    }
    // A variable such as a BMC's event text.
    a.extend(["1.3.6.1.2.1.1.5.0", "s", "bmc event"].map(String::from));
    a
}

/// Sends one trap with `snmptrap` (which must succeed).
fn snmptrap(version: &str, community: &str, to: &str) {
    let out = run_cmd(Command::new("snmptrap").args(trap_args(version, community, to)));
    assert!(out.success(), "snmptrap: {out:?}");
}

/// A UDP port free on `ip` now (the daemon binds it next).
fn free_port(ip: &str) -> u16 {
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port()
}

/// The status entry of trap endpoint `address`.
fn endpoint<'a>(status: &'a Value, address: &str) -> Option<&'a Value> {
    status["traps"]
        .as_array()?
        .iter()
        .find(|t| t["address"] == address)
}

fn counter(status: &Value, address: &str, name: &str) -> u64 {
    endpoint(status, address)
        .and_then(|t| t[name].as_u64())
        .unwrap_or(0)
}

/// Waits until endpoint `address` of `d` shows `name` == `want`.
fn wait_counter(d: &Daemon, address: &str, name: &str, want: u64) {
    let mut last = Value::Null;
    let end = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < end {
        last = d.status_json();
        if counter(&last, address, name) == want {
            return;
        }
        std::thread::sleep(POLL);
    }
    panic!(
        "trap endpoint {address}: {name} did not reach {want}; status: {last}\ndaemon log:\n{}",
        d.log_text()
    );
}

#[test]
fn traps_reach_their_monitor_and_everything_else_is_counted() {
    if let Some(missing) = need_snmptrap() {
        return missing.skip();
    }
    let t = TestDir::new("traps");
    t.script("app.sh", r#"echo $$ > "$DIR/app.pid"; exec sleep 600"#);
    let ip = "127.0.84.1";
    let (pa, pb) = (free_port(ip), free_port(ip));
    let (a, b) = (format!("{ip}:{pa}"), format!("{ip}:{pb}"));
    let community = "tr4p-s3cret";
    let groups = r#"Group(name: "web", resources: [
           Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
       ]),"#;
    let monitors = format!(
        r#"monitors: [
        Monitor(name: "mrw", kind: Message(category: "BMCNOTICE", keyword: "{a}", community: "{community}"),
                interval: 60, recovery: (target: Group("web"), reactivation_threshold: 0, failover_threshold: 0)),
        Monitor(name: "mrw-other", kind: Message(category: "BMCNOTICE", keyword: "{b}"),
                interval: 60, recovery: (target: Group("web"), reactivation_threshold: 0, failover_threshold: 0)),
    ],"#
    );
    let d = Daemon::start(&t, &t.config(&["s1"], &monitors, groups), "s1");
    d.wait_group_state("web", "Online");
    for ep in [&a, &b] {
        wait_for(&format!("the receiver on {ep}"), DEADLINE, || {
            endpoint(&d.status_json(), ep).is_some_and(|e| e["listening"] == true)
        });
    }
    d.wait_monitor_state("mrw", "Normal");
    d.wait_monitor_state("mrw-other", "Normal");

    // Garbage, an oversized datagram, and a well-formed trap with the
    // wrong community: counted, nothing else.
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.send_to(b"not an SNMP message at all", &a).unwrap();
    wait_counter(&d, &a, "garbled", 1);
    // A v2c trap cut short.
    s.send_to(&[0x30, 0x5d, 0x02, 0x01, 0x01, 0x04, 0x06, b'p'], &a)
        .unwrap();
    wait_counter(&d, &a, "garbled", 2);
    s.send_to(&vec![0x30u8; 5000], &a).unwrap();
    wait_counter(&d, &a, "oversized", 1);
    snmptrap("2c", "public", &a);
    wait_counter(&d, &a, "wrong_community", 1);
    snmptrap("1", "public", &a);
    wait_counter(&d, &a, "wrong_community", 2);

    // A trap for the other keyword: only that monitor turns Error.
    snmptrap("2c", "public", &b);
    d.wait_monitor_state("mrw-other", "Error");
    wait_counter(&d, &b, "traps", 1);
    let status = d.status_json();
    assert_eq!(counter(&status, &a, "traps"), 0, "{status}");
    assert_eq!(d.monitor_state("mrw"), "Normal");
    let alerts = d.alerts_json(1000);
    assert_eq!(
        count_monitor_alerts(&alerts, "mrw", 9),
        0,
        "{}",
        describe_alerts(&alerts)
    );

    // A v1 trap with the community: an error notice for mrw.
    snmptrap("1", community, &a);
    d.wait_monitor_state("mrw", "Error");
    d.wait_monitor_alert("mrw", 9, 1);
    let why = d.monitor("mrw")["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("SNMPv1 trap") && why.contains(&a), "{why}");
    // Cleared by hand, then a v2c trap: Error again.
    d.ok(&[
        "message",
        "send",
        "--category",
        "BMCNOTICE",
        "--keyword",
        &a,
        "--clear",
    ]);
    d.wait_monitor_state("mrw", "Normal");
    snmptrap("2c", community, &a);
    d.wait_monitor_state("mrw", "Error");
    wait_counter(&d, &a, "traps", 2);

    let status = d.status_json();
    let e = endpoint(&status, &a).unwrap();
    assert_eq!(e["monitors"], serde_json::json!(["mrw"]), "{e}");
    assert_eq!(
        (
            &e["garbled"],
            &e["oversized"],
            &e["wrong_community"],
            &e["other"]
        ),
        (&2.into(), &1.into(), &2.into(), &0.into()),
        "{e}"
    );
    let text = d.ok(&["status"]);
    assert!(text.contains("snmp traps"), "{text}");
    assert!(
        text.contains("traps 2, dropped: 2 wrong community, 2 garbled, 1 oversized, 0 other"),
        "{text}"
    );
    // The community is a secret: not in status, alerts or the log.
    let alerts = d.ok(&["alerts", "-n", "1000", "--json"]);
    for (what, seen) in [
        ("status", text),
        ("status --json", status.to_string()),
        ("alerts", alerts),
        ("the daemon's log", d.log_text()),
    ] {
        assert!(
            !seen.contains(community),
            "{what} shows the community:\n{seen}"
        );
    }
}

/// The state of monitor mrw1 in a status.
fn mrw1_state(status: &Value) -> String {
    status["monitors"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == "mrw1"))
        .and_then(|m| m["state"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Seed 003's sample cluster in the lab (server1 = n1, server2 = n2, each
/// receiving its BMC's traps on its path-0 address, port 162).
#[test]
fn a_trap_to_server1s_keyword_fails_failover1_over_to_server2() {
    if let Some(missing) = need_snmptrap() {
        return missing.skip();
    }
    let Some(mut lab) = Lab::new("traps", 2) else {
        return;
    };
    let (k1, k2) = (lab.addr(1, 0), lab.addr(2, 0));
    let group = web_group(&lab, "").replacen(r#"name: "web""#, r#"name: "failover1""#, 1);
    let monitors = format!(
        r#"monitors: [
        Monitor(name: "mrw1",
            kind: Message(category: "BMCNOTICE", keyword: "{k1}"),
            interval: 60,
            recovery: (target: Group("failover1"), reactivation_threshold: 0, failover_threshold: 1),
            per_server: {{
                "n1": (kind: Message(category: "BMCNOTICE", keyword: "{k1}")),
                "n2": (kind: Message(category: "BMCNOTICE", keyword: "{k2}")),
            }}),
    ],"#
    );
    let text = lab.config(&group, &monitors);
    lab.write_config(&text);
    let checkers = Checkers::start(&lab);
    lab.start_all();
    for i in 1..=2 {
        lab.wait_group_on(i, "failover1", "n1", FORM_WAIT);
    }
    checkers.wait_holders(&[1], FORM_WAIT);
    let (e1, e2) = (format!("{k1}:162"), format!("{k2}:162"));
    for (i, ep) in [(1, &e1), (2, &e2)] {
        lab.wait_status(
            i,
            &format!("the receiver on {ep}, mrw1 Normal"),
            FORM_WAIT,
            |s| {
                endpoint(s, ep)
                    .is_some_and(|e| e["listening"] == true && e["monitors"][0] == "mrw1")
                    && s["traps"].as_array().map(Vec::len) == Some(1)
                    && mrw1_state(s) == "Normal"
            },
        );
    }
    let client = lab.client_ns();

    // Garbage to server 1's trap port: counted there, nothing else.
    let out = lab.exec(
        &client,
        &[
            "python3",
            "-c",
            &format!(
                "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'\\x30\\x82garbage', ('{k1}', 162))"
            ),
        ],
    );
    assert!(out.success(), "{out:?}");
    lab.wait_status(1, "the garbage counted", FORM_WAIT, |s| {
        counter(s, &e1, "garbled") == 1
    });

    // A trap to server 2's keyword: server 2's mrw1 turns Error, but
    // failover1 does not run there (rm 25); nothing moves.
    let before = own_alerts(&lab, 2, &["rm 25", "mrw1"]);
    let mut args = vec!["snmptrap".to_string()];
    args.extend(trap_args("2c", "public", &k2));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.exec(&client, &args);
    assert!(out.success(), "{out:?}");
    wait_own_alerts(&lab, 2, &["rm 25", "mrw1"], before, FORM_WAIT);
    let s1 = lab.status(1);
    assert_eq!(counter(&s1, &e1, "traps"), 0, "{s1}");
    assert_eq!(
        group_of(&s1, "failover1").map(|g| g["current"].clone()),
        Some("n1".into())
    );
    assert_eq!(mrw1_state(&s1), "Normal", "{s1}");
    checkers.wait_holders(&[1], FORM_WAIT);

    // A v1 trap to server 1's keyword (port 162 by default): failover1
    // moves to server 2.
    let mut args = vec!["snmptrap".to_string()];
    args.extend(trap_args("1", "public", &k1));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.exec(&client, &args);
    assert!(out.success(), "{out:?}");
    for i in 1..=2 {
        lab.wait_group_on(i, "failover1", "n2", FORM_WAIT);
    }
    checkers.wait_holders(&[2], FORM_WAIT);
    lab.wait_fetch(WEB_VIP, WEB_PORT, Some("n2"), FORM_WAIT);
    let s1 = lab.status(1);
    assert_eq!(counter(&s1, &e1, "traps"), 1, "{s1}");
    assert!(own_alerts(&lab, 1, &["rm 9", "mrw1", "SNMPv1 trap"]) >= 1);
    // The monitor's failover step (rm 14) on server 1.
    wait_own_alerts(&lab, 1, &["rm 14", "mrw1"], 0, FORM_WAIT);
    checkers.assert_never_double();
}

#[test]
fn config_check_warns_about_keywords_that_receive_no_trap() {
    let t = TestDir::new("trapw");
    let monitors = r#"monitors: [
        Monitor(name: "mrw1", kind: Message(category: "BMCNOTICE", keyword: "bmc-of-s1"),
                recovery: (target: Group("web"))),
    ],"#;
    let groups = r#"Group(name: "web", resources: [
           Resource(name: "app", kind: Exec(start: "/bin/true")),
       ]),"#;
    let path = t.write("c.ron", &t.config(&["s1", "s2"], monitors, groups));
    let out = understudy(&["config", "check", path.to_str().unwrap()]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout
            .contains("warning: monitors[mrw1] on s1: keyword \"bmc-of-s1\" is not IP[:port]"),
        "{}",
        out.stdout
    );

    // The notifier's community file must be the owner's alone.
    let file = t.write("community", "s3cret-c\n");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let extra = format!(
        r#"alerts: (snmp: (managers: [Manager(address: "127.0.84.3")], community_file: "{}")),"#,
        file.display()
    );
    let path = t.write("n.ron", &t.config(&["s1"], &extra, groups));
    let out = understudy(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("alerts.snmp.community_file: community file")
            && out.stderr.contains("mode 0644")
            && !out.stderr.contains("s3cret-c"),
        "{out:?}"
    );
}

/// The trap notifier against net-snmp's `snmptrapd` (Debian package
/// `snmptrapd`), which accepts only the configured community: a test
/// alert and a routed alert (rm 9 of a message monitor) arrive as v2c
/// traps with their fields; the community never shows.
#[test]
fn alerts_reach_snmptrapd_as_v2c_traps() {
    if let Some(missing) = need_snmptrap().or_else(|| skip::need_program("snmptrapd", "snmptrapd"))
    {
        return missing.skip();
    }
    let t = TestDir::new("trapn");
    let ip = "127.0.84.2";
    let port = free_port(ip);
    let manager = format!("{ip}:{port}");
    let community = "n0tify-s3cret";
    let conf = t.write(
        "snmptrapd.conf",
        &format!("authCommunity log {community}\n"),
    );
    let log = t.join("snmptrapd.log");
    let _trapd = Background::spawn(
        "snmptrapd",
        Command::new("snmptrapd")
            .args(["-f", "-C", "-m", "", "-n", "-On", "-c"])
            .arg(&conf)
            .arg("-Lf")
            .arg(&log)
            .args(["-F", "TRAP %v\n", &format!("udp:{manager}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let received = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("TRAP "))
            .map(str::to_string)
            .collect()
    };
    // snmptrapd is ready once a trap of our own gets through.
    wait_for("snmptrapd to log a trap", DEADLINE, || {
        snmptrap("2c", community, &manager);
        !received().is_empty()
    });
    let ready = received().len();

    let file = t.write("community", &format!("{community}\n"));
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    t.script("app.sh", r#"echo $$ > "$DIR/app.pid"; exec sleep 600"#);
    let groups = r#"Group(name: "web", resources: [
           Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
       ]),"#;
    let extra = format!(
        r#"alerts: (snmp: (managers: [Manager(address: "{ip}", port: {port})], community_file: "{}")),
    monitors: [
        Monitor(name: "nicw", kind: Message(category: "NIC", keyword: "eth9"),
                interval: 60, recovery: (target: Group("web"), reactivation_threshold: 0, failover_threshold: 0)),
    ],"#,
        file.display()
    );
    let d = Daemon::start(&t, &t.config(&["s1"], &extra, groups), "s1");
    d.wait_group_state("web", "Online");
    d.wait_monitor_state("nicw", "Normal");

    let var = |n: u32| format!(".1.3.6.1.4.1.8072.9999.9999.1.{n}");
    let out = d.ok(&["alert", "test", "--snmp"]);
    assert!(out.contains("snmp"), "{out}");
    wait_for("the test alert at snmptrapd", DEADLINE, || {
        received()
            .iter()
            .any(|l| l.contains(&format!("{} = INTEGER: 1011", var(4))))
    });
    let test = received()
        .into_iter()
        .find(|l| l.contains("INTEGER: 1011"))
        .unwrap();
    for want in [
        ".1.3.6.1.6.3.1.1.4.1.0 = OID: .1.3.6.1.4.1.8072.9999.9999.0.1".to_string(),
        format!("{} = STRING: \"it\"", var(1)),
        format!("{} = STRING: \"s1\"", var(2)),
        format!("{} = STRING: \"alert\"", var(3)),
    ] {
        assert!(test.contains(&want), "{want} not in {test}");
    }

    // A routed alert: rm 9 goes to the notifier by default.
    d.ok(&["message", "send", "--category", "NIC", "--keyword", "eth9"]);
    d.wait_monitor_alert("nicw", 9, 1);
    wait_for("rm 9 at snmptrapd", DEADLINE, || {
        received()
            .iter()
            .any(|l| l.contains(&format!("{} = INTEGER: 9", var(4))) && l.contains("monitor nicw"))
    });
    let rm9 = received()
        .into_iter()
        .find(|l| l.contains("monitor nicw"))
        .unwrap();
    assert!(
        rm9.contains(".0.3") && rm9.contains(&format!("{} = STRING: \"rm\"", var(3))),
        "{rm9}"
    );
    assert!(received().len() >= ready + 2);
    for (what, seen) in [
        ("status", d.ok(&["status", "--json"])),
        ("alerts", d.ok(&["alerts", "-n", "1000", "--json"])),
        ("the daemon's log", d.log_text()),
    ] {
        assert!(
            !seen.contains(community),
            "{what} shows the community:\n{seen}"
        );
    }
    let alerts = d.alerts_json(1000);
    assert_eq!(
        count_alerts(&alerts, "alert", 1013),
        0,
        "{}",
        describe_alerts(&alerts)
    );
}

/// A pushed configuration (monitors only: applied at once) moves a
/// keyword to another port: the new one is bound, the old one let go.
#[test]
fn a_pushed_keyword_opens_its_receiver_and_closes_the_old_one() {
    let t = TestDir::new("trapp");
    let ip = "127.0.84.4";
    let (p1, p2) = (free_port(ip), free_port(ip));
    let (old, new) = (format!("{ip}:{p1}"), format!("{ip}:{p2}"));
    let groups = r#"Group(name: "web", startup: Manual, resources: [
           Resource(name: "app", kind: Exec(start: "/bin/true")),
       ]),"#;
    let config = |keyword: &str| {
        t.config(
            &["s1"],
            &format!(
                r#"monitors: [
        Monitor(name: "mrw", kind: Message(category: "BMCNOTICE", keyword: "{keyword}"),
                recovery: (target: Group("web"), reactivation_threshold: 0, failover_threshold: 0)),
    ],"#
            ),
            groups,
        )
    };
    let d = Daemon::start(&t, &config(&old), "s1");
    wait_for(&format!("the receiver on {old}"), DEADLINE, || {
        endpoint(&d.status_json(), &old).is_some_and(|e| e["listening"] == true)
    });
    let file = t.write("pushed.ron", &config(&new));
    d.ok(&["config", "push", file.to_str().unwrap()]);
    wait_for(
        &format!("the receiver on {new}, none on {old}"),
        DEADLINE,
        || {
            let s = d.status_json();
            endpoint(&s, &new).is_some_and(|e| e["listening"] == true)
                && s["traps"].as_array().map(Vec::len) == Some(1)
        },
    );
    // The old port is free again.
    wait_for(&format!("{old} to be free"), DEADLINE, || {
        UdpSocket::bind(&old).is_ok()
    });
}
