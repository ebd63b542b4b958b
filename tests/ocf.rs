//! OCF resource agents as a resource kind and a monitor kind, run from
//! Debian's `resource-agents` (`ocf:heartbeat:Dummy`, `IPaddr2`): start,
//! monitor, stop, a failure found by the agent's monitor and recovered,
//! the guardian's stop of an instance a dead daemon held, `config check`
//! against the agents' meta-data, our parameters checked by `ocf-tester`,
//! and an IPaddr2 group moving between two lab servers with the address
//! and application checkers watching.

mod common;

use common::cluster::{start_web, Lab, FORM_WAIT, WEB_PORT, WEB_VIP};
use common::skip::{self, Missing};
use common::*;

const DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";
const IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";

fn agents_missing() -> Option<Missing> {
    if std::path::Path::new(DUMMY).is_file() && std::path::Path::new(IPADDR2).is_file() {
        None
    } else {
        Some(skip::missing(
            "resource-agents",
            "OCF agents are not installed (Debian package resource-agents)",
        ))
    }
}

/// A group `app` holding a Dummy instance whose state file is `state`,
/// watched by an ocf monitor of it (restart once, then nothing).
fn dummy_config(t: &TestDir, state: &std::path::Path) -> String {
    let groups = format!(
        r#"Group(name: "app", startup: Manual, resources: [
            Resource(name: "dummy", kind: Ocf(agent: "heartbeat:Dummy",
                     params: {{"state": "{}"}})),
        ])"#,
        state.display()
    );
    let monitors = r#"monitors: [Monitor(name: "dummyw", kind: Ocf(), target: "dummy",
        interval: 1, timeout: 10, retry: 0,
        recovery: (target: Group("app"), reactivation_threshold: 1, failover_threshold: 0,
                   final_action: NoOperation))],"#;
    t.config(&["s1"], monitors, &groups)
}

#[test]
fn a_dummy_agent_is_started_monitored_restarted_and_stopped() {
    if let Some(m) = agents_missing() {
        return m.skip();
    }
    let t = TestDir::new("ocf-dummy");
    let state = t.path().join("dummy.state");
    let text = dummy_config(&t, &state);
    let file = t.write("cluster.ron", &text);
    let check = understudy(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(check.code, Some(0), "{check:?}");

    // ocf-tester runs the agent through every action with the parameters
    // the configuration gives it: our invocation is one it accepts.
    if let Some(m) = skip::need_program_in("ocf-tester", "resource-agents", &["/usr/sbin"])
        .or_else(|| skip::need_program("xmllint", "libxml2-utils"))
    {
        return m.skip();
    }
    let tester_state = t.path().join("tester.state");
    let tester = std::process::Command::new("/usr/sbin/ocf-tester")
        .args(["-n", "dummy", "-o"])
        .arg(format!("state={}", tester_state.display()))
        .arg(DUMMY)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&tester.stdout);
    assert!(tester.status.success(), "ocf-tester: {said}");
    assert!(said.contains("passed all tests"), "{said}");

    let d = Daemon::start(&t, &text, "s1");
    d.ok(&["group", "start", "app"]);
    assert!(state.exists(), "Dummy started: its state file is there");
    assert_eq!(d.group_state("app"), "Online");
    wait_for("the ocf monitor Normal", FORM_WAIT, || {
        d.monitor("dummyw")["state"] == "Normal"
    });

    // The agent's monitor answers OCF_NOT_RUNNING once its state file is
    // gone: the monitor errs and its recovery starts the group again.
    std::fs::remove_file(&state).unwrap();
    wait_for("the group restarted by the monitor", FORM_WAIT, || {
        state.exists()
            && d.alerts_json(100).iter().any(|a| {
                a["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("OCF_NOT_RUNNING (7)"))
            })
    });
    wait_for("the group Online again", FORM_WAIT, || {
        d.group_state("app") == "Online"
    });

    d.ok(&["group", "stop", "app"]);
    assert!(!state.exists(), "Dummy stopped: its state file is gone");

    // A daemon killed while it holds the instance: its guardian runs the
    // agent's stop action.
    d.ok(&["group", "start", "app"]);
    assert!(state.exists());
    d.kill9_daemon();
    // The guardian's alert (pm 1200) counts what it released.
    let alerts = || std::fs::read_to_string(t.state_dir().join("alerts.jsonl")).unwrap_or_default();
    wait_for(
        "the guardian stopping the Dummy instance",
        FORM_WAIT,
        || !state.exists() && alerts().contains("1 OCF agent instance"),
    );
}

#[test]
fn config_check_holds_the_parameters_against_the_agents_meta_data() {
    if let Some(m) = agents_missing() {
        return m.skip();
    }
    let t = TestDir::new("ocf-check");
    let groups = r#"Group(name: "g", startup: Manual, resources: [
        Resource(name: "vip", kind: Ocf(agent: "heartbeat:IPaddr2", params: {"netmask": "24"})),
        Resource(name: "nope", kind: Ocf(agent: "heartbeat:NoSuchAgent")),
        Resource(name: "bad", kind: Ocf(agent: "../../bin/sh")),
    ])"#;
    let text = t.config(&["s1"], "", groups);
    let file = t.write("cluster.ron", &text);
    let out = understudy(&["config", "check", "--json", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let problems: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p["path"].as_str().unwrap(),
                p["message"].as_str().unwrap()
            )
        })
        .collect();
    // The name is refused by the validation, before any agent runs.
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("groups[g].resources[bad].kind.agent: "),
        "{problems:?}"
    );

    let groups = groups.replace(
        r#"Resource(name: "bad", kind: Ocf(agent: "../../bin/sh")),"#,
        "",
    );
    let text = t.config(&["s1"], "", &groups);
    let file = t.write("cluster.ron", &text);
    let out = understudy(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    for line in [
        "groups[g].resources[vip].kind.params[netmask]: heartbeat:IPaddr2 has no parameter \"netmask\"",
        "groups[g].resources[vip].kind.params: heartbeat:IPaddr2 requires the parameter \"ip\"",
        "groups[g].resources[nope].kind.agent: agent heartbeat:NoSuchAgent is not installed",
    ] {
        assert!(
            out.stderr.lines().any(|l| l.starts_with(line)),
            "`{line}` missing: {out:?}"
        );
    }
}

#[test]
fn an_ipaddr2_group_moves_and_survives_a_killed_daemon_with_one_address() {
    if let Some(m) = agents_missing() {
        return m.skip();
    }
    let Some(lab) = Lab::new("ocf", 2) else {
        return;
    };
    // Group `web` as the checkers know it, its address held by IPaddr2.
    let groups = format!(
        r#"Group(name: "web", resources: [
            Resource(name: "vip", kind: Ocf(agent: "heartbeat:IPaddr2",
                     params: {{"ip": "{WEB_VIP}", "cidr_netmask": "24", "nic": "eth0"}})),
            Resource(name: "app", kind: Exec(start: "{responder}", stop: "/bin/true",
                     start_mode: Async), depends: ["vip"]),
        ])"#,
        responder = lab.responder_script(WEB_PORT).display()
    );
    let text = lab.config(&groups, "");
    let (mut lab, checkers) = start_web(lab, &text, 1);

    lab.ctl_ok(1, &["group", "move", "web", "--to", "n2"]);
    lab.wait_group_on(1, "web", "n2", FORM_WAIT);
    lab.wait_fetch(WEB_VIP, WEB_PORT, Some("n2"), FORM_WAIT);
    checkers.wait_holders(&[2], FORM_WAIT);

    // n2's daemon dies holding the address: its guardian stops the
    // IPaddr2 instance (the address leaves n2) and n1 takes over.
    lab.kill9_daemon(2);
    lab.wait_group_on(1, "web", "n1", FORM_WAIT);
    lab.wait_fetch(WEB_VIP, WEB_PORT, Some("n1"), FORM_WAIT);
    checkers.wait_holders(&[1], FORM_WAIT);
    checkers.assert_never_double();
}
