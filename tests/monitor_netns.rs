//! The network monitor kinds end to end: the daemon runs inside a network
//! namespace holding a veth pair, with a floating IP resource on one end, a
//! `fip` monitor on that resource and a `link` monitor on that end. The test
//! takes the address away and pulls the "cable" (sets the peer end down), as
//! an operator or a failing switch would. Needs root and `ip`; skips with a
//! printed reason elsewhere.
//!
//! Every wait is for something observable, with a deadline; nothing sleeps to
//! synchronise and nothing asserts on timing.

mod common;

use std::process::Command;

use common::*;

/// The floating address (a documentation network).
const FIP: &str = "203.0.113.10/24";

fn skip_reason() -> Option<skip::Missing> {
    skip::need_root("network namespaces need root").or_else(|| skip::need_program("ip", "iproute2"))
}

/// `ip ARGS...`, which must succeed; returns its stdout.
fn ip(args: &[&str]) -> String {
    let out = run_cmd(Command::new("ip").args(args));
    assert!(
        out.success(),
        "ip {}: {}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// A network namespace with a veth pair inside: `v0` (203.0.113.1/24, the
/// server's side) and its peer `v1`, both up. Removed on drop, which also
/// removes the pair.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("us{tag}{}", std::process::id());
        // A namespace left by an earlier run with the same pid.
        let _ = run_cmd(Command::new("ip").args(["netns", "del", &name]));
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ns.ip(&["addr", "add", "203.0.113.1/24", "dev", "v0"]);
        ns.ip(&["link", "set", "v0", "up"]);
        ns.ip(&["link", "set", "v1", "up"]);
        ns
    }

    /// `ip -n NS ARGS...`
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Whether `v0` holds the floating address.
    fn has_fip(&self) -> bool {
        self.ip(&["-4", "-o", "addr", "show", "dev", "v0"])
            .split_whitespace()
            .any(|w| w == FIP)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run_cmd(Command::new("ip").args(["netns", "del", &self.name]));
    }
}

#[test]
fn fip_and_link_monitors_in_a_network_namespace() {
    if let Some(missing) = skip_reason() {
        return missing.skip();
    }
    let t = TestDir::new("mnetns");
    let ns = Netns::new("mk");
    let groups = format!(
        r#"Group(name: "web", resources: [
           Resource(name: "vip", kind: Fip(address: "{FIP}", interface: "v0")),
       ]),"#
    );
    let monitors = r#"monitors: [
        Monitor(name: "fipw", kind: Fip(), target: "vip", interval: 1, timeout: 10, retry: 0,
                recovery: (reactivation_threshold: 1, failover_threshold: 0)),
        Monitor(name: "linkw", kind: Link(interface: "v0"), interval: 1, timeout: 10, retry: 0,
                recovery: (target: LocalServer)),
    ],"#;
    let config = t.config(&["s1"], monitors, &groups);
    let d = Daemon::start_in_netns(&t, &config, "s1", &ns.name);
    d.wait_group_state("web", "Online");
    assert!(ns.has_fip(), "{}", ns.ip(&["addr"]));
    d.wait_monitor_state("fipw", "Normal");
    d.wait_monitor_state("linkw", "Normal");

    // The address disappears: the monitor notices, the resource is
    // activated again and the address is back.
    ns.ip(&["addr", "del", FIP, "dev", "v0"]);
    d.wait_monitor_alert("fipw", 9, 1);
    d.wait_monitor_alert("fipw", 13, 1);
    wait_for("the floating address to be back on v0", DEADLINE, || {
        ns.has_fip()
    });
    d.wait_monitor_state("fipw", "Normal");
    let m = d.monitor("fipw");
    assert_eq!(m["reactivations"], 1, "{m}");
    let alerts = d.alerts_json(1000);
    let error = alerts
        .iter()
        .find(|a| {
            a["module"] == "rm"
                && a["event_id"] == 9
                && a["message"].as_str().is_some_and(|s| s.contains("fipw"))
        })
        .and_then(|a| a["message"].as_str())
        .unwrap_or_default();
    assert!(
        error.contains("203.0.113.10/24 is no longer on v0"),
        "{}",
        describe_alerts(&alerts)
    );
    assert_eq!(d.group_state("web"), "Online");

    // The peer end goes down: v0 has no carrier. The address is still
    // there, so only the link monitor turns Error.
    ns.ip(&["link", "set", "v1", "down"]);
    d.wait_monitor_state("linkw", "Error");
    d.wait_monitor_alert("linkw", 9, 1);
    let why = d.monitor("linkw")["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("v0"), "last_error: {why}");
    assert_eq!(d.monitor_state("fipw"), "Normal");

    ns.ip(&["link", "set", "v1", "up"]);
    d.wait_monitor_state("linkw", "Normal");
    d.wait_monitor_alert("linkw", 26, 1);
    let alerts = d.alerts_json(1000);
    assert_eq!(
        count_monitor_alerts(&alerts, "fipw", 9),
        1,
        "{}",
        describe_alerts(&alerts)
    );
}
