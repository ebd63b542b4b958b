//! End-to-end tests of monitor resources with the real binary: the recovery
//! ladder driven by a pid monitor, final actions, pre-action scripts, operator
//! control (suspend / resume / clear) and message receive monitors.
//!
//! Every wait is for something observable (a state, an alert, a file), with a
//! deadline; nothing sleeps to synchronise and nothing asserts on timing.

mod common;

use common::*;

/// An asynchronous exec resource running `sleep`, writing its pid to
/// `app.pid` each time it starts.
fn sleeper_group(t: &TestDir) -> &'static str {
    t.script("app.sh", r#"echo $$ > "$DIR/app.pid"; exec sleep 600"#);
    r#"Group(name: "web", resources: [
           Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
       ]),"#
}

/// Kills the app's current process and returns its pid.
fn kill_app(t: &TestDir) -> u32 {
    let pid = t.wait_pid_file("app.pid");
    std::fs::remove_file(t.join("app.pid")).expect("remove app.pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the app");
    pid
}

#[test]
fn pid_monitor_climbs_the_ladder_restart_failover_then_stop_group() {
    let t = TestDir::new("ladder");
    let groups = sleeper_group(&t);
    t.script(
        "pre.sh",
        r#"env | grep ^CLP_ | sort > "$DIR/pre-$CLP_ACTION.env""#,
    );
    let monitors = r#"monitors: [
        Monitor(name: "appw", kind: Pid(), target: "app", interval: 1, retry: 0,
                recovery: (reactivation_threshold: 1, failover_threshold: 1, final_action: StopGroup,
                           script: (path: "pre.sh", before_reactivation: true, before_final_action: true))),
    ],"#;
    let d = Daemon::start(&t, &t.config(&["s1"], monitors, groups), "s1");
    d.wait_group_state("web", "Online");
    d.wait_monitor_state("appw", "Normal");

    // First error: the resource is restarted (a new process).
    let first = kill_app(&t);
    d.wait_alert_count("rm", 13, 1);
    let second = t.wait_pid_file("app.pid");
    assert_ne!(first, second);
    d.wait_monitor_state("appw", "Normal");
    let m = d.monitor("appw");
    assert_eq!(m["reactivations"], 1, "{m}");
    assert_eq!(m["failovers"], 0, "{m}");
    let env = t.env_file("pre-RESTART.env");
    assert_eq!(env["CLP_MONITORNAME"], "appw");
    assert_eq!(env["CLP_ACTION"], "RESTART");
    assert_eq!(env["CLP_RESTARTCOUNT"], "1");
    assert_eq!(env["CLP_FAILOVERCOUNT"], "0");

    // Second error: a failover, which finds no other server, so the final
    // action stops the group.
    kill_app(&t);
    d.wait_group_state("web", "Offline");
    d.wait_alert_count("rm", 12, 1);
    let alerts = d.alerts_json(1000);
    let all = describe_alerts(&alerts);
    assert!(has_alert(&alerts, "rm", 20), "failover impossible: {all}");
    assert!(!has_alert(&alerts, "rm", 14), "no failover happened: {all}");
    assert_eq!(count_alerts(&alerts, "rm", 9), 2, "{all}");
    let env = t.env_file("pre-FINALACTION.env");
    assert_eq!(env["CLP_RESTARTCOUNT"], "1");
    assert_eq!(env["CLP_FAILOVERCOUNT"], "1");
    assert!(
        t.read("pre-FAILOVER.env").is_empty(),
        "no script before failover"
    );
    let m = d.monitor("appw");
    assert_eq!(m["state"], "Offline", "its target is stopped: {m}");
    assert_eq!(m["reactivations"], 1, "{m}");
    assert_eq!(m["failovers"], 1, "{m}");

    // The counters survive until an operator clears them.
    d.ok(&["group", "start", "web"]);
    d.wait_monitor_state("appw", "Normal");
    assert_eq!(d.monitor("appw")["reactivations"], 1);
    d.ok(&["monitor", "clear", "appw"]);
    let m = d.monitor("appw");
    assert_eq!(
        (m["reactivations"].as_u64(), m["failovers"].as_u64()),
        (Some(0), Some(0))
    );
    // With fresh counters the next error restarts again.
    kill_app(&t);
    d.wait_alert_count("rm", 13, 2);
    d.wait_monitor_state("appw", "Normal");
    assert_eq!(d.group_state("web"), "Online");
}

#[test]
fn final_action_reboot_stops_the_cluster_service_and_reboots() {
    let t = TestDir::new("mreboot");
    let groups = sleeper_group(&t);
    let monitors = r#"monitors: [
        Monitor(name: "appw", kind: Pid(), target: "app", interval: 1, retry: 1,
                recovery: (reactivation_threshold: 0, failover_threshold: 0,
                           final_action: StopClusterServiceAndRebootOs)),
    ],"#;
    let mut d = Daemon::start(&t, &t.config(&["s1"], monitors, groups), "s1");
    d.wait_monitor_state("appw", "Normal");
    kill_app(&t);
    let status = d.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{status}; log:\n{}", d.log_text());
    assert_eq!(t.lines("os-actions.log"), ["reboot"]);
    let alerts = alerts_file(&d.state_dir);
    let all = describe_alerts(&alerts);
    assert!(has_alert(&alerts, "rm", 9), "{all}");
    assert!(has_alert(&alerts, "rm", 17), "{all}");
    assert!(has_alert(&alerts, "pm", 25), "{all}");
}

#[test]
fn suspended_monitor_recovers_nothing_until_resumed() {
    let t = TestDir::new("suspend");
    let groups = sleeper_group(&t);
    let monitors = r#"monitors: [
        Monitor(name: "appw", kind: Pid(), target: "app", interval: 1, retry: 0,
                recovery: (reactivation_threshold: 3)),
    ],"#;
    let d = Daemon::start(&t, &t.config(&["s1"], monitors, groups), "s1");
    d.wait_monitor_state("appw", "Normal");

    let out = d.cli(&["monitor", "suspend"]);
    assert!(!out.success() && out.stderr.contains("--all"), "{out:?}");
    let out = d.cli(&["monitor", "suspend", "nosuch"]);
    assert!(!out.success() && out.stderr.contains("appw"), "{out:?}");

    d.ok(&["monitor", "suspend", "appw"]);
    d.wait_monitor_state("appw", "Suspended");
    kill_app(&t);
    // The process is gone; the daemon has noticed its exit...
    d.wait_alert_count("rc", 1040, 1);
    // ...but the suspended monitor neither checks nor recovers.
    let alerts = d.alerts_json(1000);
    assert!(!has_alert(&alerts, "rm", 9), "{}", describe_alerts(&alerts));
    assert_eq!(d.monitor_state("appw"), "Suspended");

    d.ok(&["monitor", "resume", "--all"]);
    d.wait_alert_count("rm", 13, 1);
    d.wait_monitor_state("appw", "Normal");
    let alerts = d.alerts_json(1000);
    let all = describe_alerts(&alerts);
    for id in [29, 30, 32] {
        assert!(has_alert(&alerts, "rm", id), "rm {id}: {all}");
    }
}

#[test]
fn message_monitor_turns_error_on_a_notice_and_normal_on_a_clear() {
    let t = TestDir::new("mrw");
    let groups = sleeper_group(&t);
    let monitors = r#"monitors: [
        Monitor(name: "mrw", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1"),
                interval: 60, retry: 3,
                recovery: (target: Group("web"), reactivation_threshold: 1, failover_threshold: 0),
                per_server: {"s2": (kind: Message(category: "BMCNOTICE", keyword: "198.51.100.2"))}),
    ],"#;
    let d = Daemon::start(&t, &t.config(&["s1", "s2"], monitors, groups), "s1");
    d.wait_group_state("web", "Online");
    d.wait_monitor_state("mrw", "Normal");
    let first = t.wait_pid_file("app.pid");

    // The keyword of another server does not match here.
    let out = d.ok(&[
        "message",
        "send",
        "--category",
        "BMCNOTICE",
        "--keyword",
        "198.51.100.2",
    ]);
    assert!(out.contains("no message monitor"), "{out}");
    assert_eq!(d.monitor_state("mrw"), "Normal");

    // A matching notice is an error at once (no retries), and the group is
    // restarted as the recovery.
    std::fs::remove_file(t.join("app.pid")).expect("remove app.pid");
    let out = d.ok(&[
        "message",
        "send",
        "--category",
        "BMCNOTICE",
        "--keyword",
        "198.51.100.1",
    ]);
    assert!(out.contains("mrw"), "{out}");
    d.wait_alert_count("rm", 13, 1);
    assert_ne!(t.wait_pid_file("app.pid"), first, "the group was restarted");
    assert_eq!(d.monitor_state("mrw"), "Error");

    d.ok(&[
        "message",
        "send",
        "--category",
        "BMCNOTICE",
        "--keyword",
        "198.51.100.1",
        "--clear",
    ]);
    d.wait_monitor_state("mrw", "Normal");
    let alerts = d.alerts_json(1000);
    assert!(has_alert(&alerts, "rm", 26), "{}", describe_alerts(&alerts));
    assert!(
        has_alert(&alerts, "trnsv", 10),
        "{}",
        describe_alerts(&alerts)
    );
}

#[test]
fn a_monitor_of_an_inactive_target_is_offline_and_mutating_commands_need_rights() {
    let t = TestDir::new("moff");
    let groups = r#"Group(name: "web", startup: Manual, resources: [
           Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
       ]),"#;
    t.script("app.sh", "exec sleep 600");
    let extra = r#"control: (socket_group: Some("nogroup")),
        monitors: [Monitor(name: "appw", kind: Pid(), target: "app", interval: 1)],"#;
    let d = Daemon::start(&t, &t.config(&["s1"], extra, groups), "s1");
    assert_eq!(d.monitor_state("appw"), "Offline");
    // The unprivileged part.
    if let Some(missing) = need_switch_user() {
        return missing.skip();
    }
    let out = d.cli_as_nobody(&["monitor", "suspend", "--all"]);
    assert_eq!(out.code, Some(4), "{out:?}");
    let out = d.cli_as_nobody(&["monitor", "stats"]);
    assert!(out.success(), "reading stats is allowed: {out:?}");
}
