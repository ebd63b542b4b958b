//! End-to-end tests of one `understudy` daemon (a one- or two-server
//! configuration, only this server running): the real binary, real scripts,
//! the real control socket. Every test has its own folder, state directory,
//! socket and configuration; every daemon is stopped by a drop guard.
//!
//! No test synchronises with a sleep or asserts on timing: each waits for
//! something observable (a status answer, a file, an exit) with a deadline.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use common::*;

/// A configuration file from `tests/fixtures`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The ids of the `rc` alerts among `ids`, in the order they were raised.
fn rc_sequence(alerts: &[serde_json::Value], ids: &[u64]) -> Vec<u64> {
    alerts
        .iter()
        .filter(|a| a["module"] == "rc")
        .filter_map(|a| a["event_id"].as_u64())
        .filter(|id| ids.contains(id))
        .collect()
}

/// Start script appending `start NAME` to `events.log`; stop script appending
/// `stop NAME FACTOR`. Shared by every resource: they tell themselves apart
/// by `CLP_RESOURCENAME`.
fn event_scripts(t: &TestDir) {
    t.script(
        "start.sh",
        r#"echo "start $CLP_RESOURCENAME" >> "$DIR/events.log""#,
    );
    t.script(
        "stop.sh",
        r#"echo "stop $CLP_RESOURCENAME $CLP_FACTOR" >> "$DIR/events.log""#,
    );
}

// 1 -------------------------------------------------------------------------

#[test]
fn group_start_stop_and_start_again() {
    let t = TestDir::new("grp");
    for r in ["a", "b"] {
        t.script(
            &format!("{r}-start.sh"),
            &format!(r#"echo "hello from {r}"; echo start >> "$DIR/{r}.marker""#),
        );
        t.script(
            &format!("{r}-stop.sh"),
            &format!(r#"echo stop >> "$DIR/{r}.marker""#),
        );
    }
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "a", kind: Exec(start: "a-start.sh", stop: "a-stop.sh"), depends: []),
            Resource(name: "b", kind: Exec(start: "b-start.sh", stop: "b-stop.sh"), depends: ["a"]),
        ]),
        Group(name: "db", startup: Manual),
    "#;
    let d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");

    // A manual group waits for the operator.
    let g = d.group("web");
    assert_eq!(g["state"], "Offline", "{g}");
    assert!(g["current"].is_null(), "{g}");
    assert!(t.lines("a.marker").is_empty());

    let out = d.ok(&["group", "start", "web"]);
    assert!(out.contains("group web is online on s1"), "{out}");
    let g = d.group("web");
    assert_eq!(g["state"], "Online", "{g}");
    assert_eq!(g["current"], "s1", "{g}");
    for r in ["a", "b"] {
        assert_eq!(d.resource("web", r)["state"], "Online");
        assert_eq!(t.lines(&format!("{r}.marker")), ["start"], "{r}");
    }
    // The script's output is in its log, with a timestamp.
    let log = std::fs::read_to_string(d.state_dir.join("log/a.log")).expect("log/a.log");
    let line = log
        .lines()
        .find(|l| l.ends_with("hello from a"))
        .unwrap_or_else(|| panic!("no script output in log/a.log:\n{log}"));
    // `2026-11-22T00:00:00.000Z [start pid N] hello from a`
    let b = line.as_bytes();
    assert!(
        b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T',
        "no timestamp: {line}"
    );
    assert!(line.contains(" [start pid "), "{line}");

    let again = d.cli(&["group", "start", "web"]);
    assert!(!again.success(), "{again:?}");
    assert!(again.stderr.contains("already online"), "{again:?}");

    let out = d.ok(&["group", "stop", "web"]);
    assert!(out.contains("group web is offline"), "{out}");
    let g = d.group("web");
    assert_eq!(g["state"], "Offline", "{g}");
    assert!(g["current"].is_null(), "{g}");
    for r in ["a", "b"] {
        assert_eq!(d.resource("web", r)["state"], "Offline");
        assert_eq!(t.lines(&format!("{r}.marker")), ["start", "stop"], "{r}");
    }

    // A stopped group starts again.
    d.ok(&["group", "start", "web"]);
    assert_eq!(d.group_state("web"), "Online");
    for r in ["a", "b"] {
        assert_eq!(
            t.lines(&format!("{r}.marker")),
            ["start", "stop", "start"],
            "{r}"
        );
    }
    d.ok(&["group", "stop", "web"]);
    assert_eq!(d.group_state("web"), "Offline");

    // Stopping it again is done, not an error (and runs nothing).
    let out = d.cli(&["group", "stop", "web"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("already offline"), "{out:?}");

    let out = d.cli(&["group", "start", "nope"]);
    assert!(!out.success(), "{out:?}");
    for needle in ["\"nope\"", "web", "db"] {
        assert!(out.stderr.contains(needle), "{needle}: {out:?}");
    }
    // Nothing ran for the refused commands.
    assert_eq!(t.lines("a.marker"), ["start", "stop", "start", "stop"]);
}

// 2 -------------------------------------------------------------------------

#[test]
fn sync_and_async_exec_get_their_environment() {
    let t = TestDir::new("env");
    t.script(
        "dump-start.sh",
        r#"env | grep '^CLP_' > "$DIR/$CLP_RESOURCENAME.start.env""#,
    );
    t.script(
        "dump-stop.sh",
        r#"env | grep '^CLP_' > "$DIR/$CLP_RESOURCENAME.stop.env""#,
    );
    t.script(
        "svc-start.sh",
        r#"echo "async service running"
env | grep '^CLP_' > "$DIR/svc.start.env"
echo $$ > "$DIR/svc.pid.tmp" && mv "$DIR/svc.pid.tmp" "$DIR/svc.pid"
exec sleep 300"#,
    );
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "app", kind: Exec(start: "dump-start.sh", stop: "dump-stop.sh"), depends: []),
            Resource(name: "svc", kind: Exec(start: "svc-start.sh", stop: "dump-stop.sh", start_mode: Async),
                     depends: ["app"]),
        ]),
    "#;
    let d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");
    d.ok(&["group", "start", "web"]);
    assert_eq!(d.group_state("web"), "Online");

    let env = t.env_file("app.start.env");
    for (k, v) in [
        ("CLP_EVENT", "START"),
        ("CLP_SERVER", "HOME"),
        ("CLP_DISK", "SUCCESS"),
        ("CLP_GROUPNAME", "web"),
        ("CLP_RESOURCENAME", "app"),
        ("CLP_PRIORITY", "1"),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k} in {env:?}");
    }
    assert!(
        !env.contains_key("CLP_FACTOR"),
        "a start has no factor: {env:?}"
    );
    assert!(!env.contains_key("CLP_PID"), "{env:?}");

    // The asynchronous start script keeps running; status shows its pid.
    let pid = t.wait_pid_file("svc.pid");
    let svc = d.resource("web", "svc");
    assert_eq!(svc["state"], "Online", "{svc}");
    assert_eq!(svc["pid"].as_u64(), Some(pid as u64), "{svc}");
    assert!(
        pid_alive(pid),
        "the async start script {pid} should run while the group is online"
    );
    let env = t.env_file("svc.start.env");
    assert_eq!(
        env.get("CLP_RESOURCENAME").map(String::as_str),
        Some("svc"),
        "{env:?}"
    );
    assert_eq!(
        env.get("CLP_EVENT").map(String::as_str),
        Some("START"),
        "{env:?}"
    );
    assert!(
        d.resource("web", "app")["pid"].is_null(),
        "a sync resource has no pid"
    );

    d.ok(&["group", "stop", "web"]);
    assert_eq!(d.group_state("web"), "Offline");
    let env = t.env_file("app.stop.env");
    assert_eq!(
        env.get("CLP_FACTOR").map(String::as_str),
        Some("GROUPSTOP"),
        "{env:?}"
    );
    assert_eq!(
        env.get("CLP_RESOURCENAME").map(String::as_str),
        Some("app"),
        "{env:?}"
    );
    assert!(
        !env.contains_key("CLP_PID"),
        "a sync resource has no CLP_PID: {env:?}"
    );
    let env = t.env_file("svc.stop.env");
    assert_eq!(
        env.get("CLP_FACTOR").map(String::as_str),
        Some("GROUPSTOP"),
        "{env:?}"
    );
    assert_eq!(env.get("CLP_PID"), Some(&pid.to_string()), "{env:?}");
    // The stop is complete only once the async process is gone.
    assert!(
        !pid_alive(pid),
        "async start script {pid} survived the group stop"
    );
    assert!(d.resource("web", "svc")["pid"].is_null());
}

#[test]
fn exec_environment_on_a_lower_priority_server() {
    let t = TestDir::new("env2");
    t.script("dump-start.sh", r#"env | grep '^CLP_' > "$DIR/start.env""#);
    t.script("dump-stop.sh", r#"env | grep '^CLP_' > "$DIR/stop.env""#);
    // The group prefers alpha; this daemon is beta (alpha is not running).
    let groups = r#"
        Group(name: "web", servers: ["alpha", "beta"], startup: Manual, resources: [
            Resource(name: "app", kind: Exec(start: "dump-start.sh", stop: "dump-stop.sh")),
        ]),
    "#;
    let d = Daemon::start(&t, &t.config(&["alpha", "beta"], "", groups), "beta");
    let status = d.status_json();
    assert_eq!(status["server"], "beta", "{status}");
    d.ok(&["group", "start", "web"]);
    let g = d.group("web");
    assert_eq!(g["state"], "Online", "{g}");
    assert_eq!(g["current"], "beta", "{g}");
    assert_eq!(g["servers"], serde_json::json!(["alpha", "beta"]), "{g}");
    let env = t.env_file("start.env");
    for (k, v) in [
        ("CLP_EVENT", "START"),
        ("CLP_SERVER", "OTHER"),
        ("CLP_PRIORITY", "2"),
        ("CLP_DISK", "SUCCESS"),
        ("CLP_GROUPNAME", "web"),
        ("CLP_RESOURCENAME", "app"),
    ] {
        assert_eq!(env.get(k).map(String::as_str), Some(v), "{k} in {env:?}");
    }
    d.ok(&["group", "stop", "web"]);
    let env = t.env_file("stop.env");
    assert_eq!(
        env.get("CLP_SERVER").map(String::as_str),
        Some("OTHER"),
        "{env:?}"
    );
    assert_eq!(
        env.get("CLP_PRIORITY").map(String::as_str),
        Some("2"),
        "{env:?}"
    );
    assert_eq!(
        env.get("CLP_FACTOR").map(String::as_str),
        Some("GROUPSTOP"),
        "{env:?}"
    );
}

// 3 -------------------------------------------------------------------------

#[test]
fn resources_start_in_dependency_order_and_stop_in_reverse() {
    let t = TestDir::new("order");
    event_scripts(&t);
    // Listed in the opposite order of their dependencies.
    let groups = r#"
        Group(name: "stack", startup: Manual, resources: [
            Resource(name: "web", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: ["app"]),
            Resource(name: "app", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: ["db"]),
            Resource(name: "db", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: []),
        ]),
    "#;
    let text = t.config(&["s1"], "", groups);
    let config = t.write("cluster.ron", &text);
    let check = understudy(&["config", "check", config.to_str().unwrap()]);
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(check.stdout.contains("configuration is valid"), "{check:?}");
    assert!(
        check.stdout.contains("start order: db -> app -> web"),
        "{check:?}"
    );

    let d = Daemon::start(&t, &text, "s1");
    d.ok(&["group", "start", "stack"]);
    assert_eq!(
        t.lines("events.log"),
        ["start db", "start app", "start web"]
    );
    d.ok(&["group", "stop", "stack"]);
    assert_eq!(
        t.lines("events.log"),
        [
            "start db",
            "start app",
            "start web",
            "stop web GROUPSTOP",
            "stop app GROUPSTOP",
            "stop db GROUPSTOP"
        ]
    );
}

// 4 -------------------------------------------------------------------------

#[test]
fn a_hanging_start_script_is_killed_with_its_process_group() {
    let t = TestDir::new("hang");
    t.script(
        "hang.sh",
        r#"sleep 300 &
echo $! > "$DIR/child.pid"
echo $$ > "$DIR/script.pid"
sleep 300"#,
    );
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "hang", kind: Exec(start: "hang.sh", start_timeout: 2), depends: [],
                     activation: (failover_threshold: 0)),
        ]),
    "#;
    let d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");
    let out = d.cli(&["group", "start", "web"]);
    assert!(!out.success(), "{out:?}");

    let r = d.resource("web", "hang");
    assert_eq!(r["state"], "OnlineFailure", "{r}");
    let error = r["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("timed out"), "last_error: {r}");
    assert_eq!(d.group_state("web"), "OnlineFailure");

    let alerts = d.alerts_json(100);
    let failed: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["module"] == "rc" && a["event_id"] == 32)
        .collect();
    assert_eq!(failed.len(), 1, "{}", describe_alerts(&alerts));
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{}",
        failed[0]
    );
    assert_eq!(failed[0]["level"], "Error", "{}", failed[0]);

    // The script and the child it left in the background are both gone.
    let script = t.wait_pid_file("script.pid");
    let child = t.wait_pid_file("child.pid");
    for (what, pid) in [("start script", script), ("its background child", child)] {
        wait_for(
            &format!("{what} (pid {pid}) to be killed"),
            DEADLINE,
            || !pid_alive(pid),
        );
    }
    let log = std::fs::read_to_string(d.state_dir.join("log/hang.log")).unwrap_or_default();
    assert!(log.contains("timed out"), "log/hang.log:\n{log}");
}

// 5 -------------------------------------------------------------------------

#[test]
fn activation_failure_walks_the_ladder_to_stop_group() {
    let t = TestDir::new("ladder");
    event_scripts(&t);
    t.script(
        "bad.sh",
        r#"echo attempt >> "$DIR/bad.attempts"; echo "cannot start" >&2; exit 1"#,
    );
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "first", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: []),
            Resource(name: "bad", kind: Exec(start: "bad.sh"), depends: ["first"],
                     activation: (retry: 2, failover_threshold: 1, final_action: StopGroup)),
        ]),
    "#;
    let d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");
    let out = d.cli(&["group", "start", "web"]);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("bad"), "{out:?}");

    // One try and two retries.
    assert_eq!(
        t.lines("bad.attempts").len(),
        3,
        "{:?}",
        t.lines("bad.attempts")
    );
    let alerts = d.alerts_json(200);
    let all = describe_alerts(&alerts);
    // Failed, retry, failed, retry, failed, no destination, continue here,
    // final action "stop the group".
    assert_eq!(
        rc_sequence(&alerts, &[32, 200, 65, 206, 202]),
        [32, 200, 32, 200, 32, 65, 206, 202],
        "{all}"
    );
    assert_eq!(count_alerts(&alerts, "rc", 200), 2, "{all}");
    assert!(has_alert(&alerts, "rc", 12), "{all}");
    assert!(has_alert(&alerts, "rc", 21), "the group was stopped: {all}");

    // The group was stopped, with the resource started before the failing one.
    assert_eq!(d.group_state("web"), "Offline");
    for (name, state) in d.resource_states("web") {
        assert_eq!(state, "Offline", "{name}");
    }
    assert_eq!(
        t.lines("events.log"),
        ["start first", "stop first GROUPSTOP"]
    );
    assert!(t.lines("os-actions.log").is_empty());
}

#[test]
fn activation_final_action_reboot_stops_the_cluster_and_reboots() {
    let t = TestDir::new("reboot");
    event_scripts(&t);
    t.script("bad.sh", "exit 1");
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "first", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: []),
            Resource(name: "bad", kind: Exec(start: "bad.sh"), depends: ["first"],
                     activation: (failover_threshold: 0, final_action: StopClusterServiceAndRebootOs)),
        ]),
    "#;
    let mut d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");
    let out = d.cli(&["group", "start", "web"]);
    assert!(!out.success(), "{out:?}");

    // The daemon stops the cluster service and exits by itself.
    let status = d.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{status}; log:\n{}", d.log_text());
    assert_eq!(t.lines("os-actions.log"), ["reboot"]);
    assert_eq!(
        t.lines("events.log"),
        ["start first", "stop first CLUSTERSHUTDOWN"]
    );
    assert!(!d.socket.exists(), "the socket is removed on exit");

    let alerts = alerts_file(&d.state_dir);
    let all = describe_alerts(&alerts);
    assert!(has_alert(&alerts, "rc", 205), "{all}");
    assert!(has_alert(&alerts, "pm", 2), "{all}");
    assert!(has_alert(&alerts, "pm", 25), "{all}");
    assert!(!has_alert(&alerts, "pm", 23), "no shutdown: {all}");
}

#[test]
fn activation_final_action_next_resource_goes_on() {
    let t = TestDir::new("next");
    event_scripts(&t);
    t.script("bad.sh", "exit 1");
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "bad", kind: Exec(start: "bad.sh"), depends: [],
                     activation: (failover_threshold: 0, final_action: NoOperationNextResource)),
            Resource(name: "after", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: ["bad"]),
        ]),
    "#;
    let d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");
    let out = d.cli(&["group", "start", "web"]);
    assert!(
        !out.success(),
        "a partly started group is reported: {out:?}"
    );
    assert!(out.stderr.contains("with failures"), "{out:?}");

    assert_eq!(t.lines("events.log"), ["start after"]);
    let g = d.group("web");
    assert_eq!(g["state"], "OnlineFailure", "{g}");
    assert_eq!(g["current"], "s1", "{g}");
    assert_eq!(d.resource("web", "bad")["state"], "OnlineFailure");
    assert_eq!(d.resource("web", "after")["state"], "Online");
    let alerts = d.alerts_json(100);
    assert_eq!(
        count_alerts(&alerts, "rc", 32),
        1,
        "{}",
        describe_alerts(&alerts)
    );
    assert!(has_alert(&alerts, "rc", 12), "{}", describe_alerts(&alerts));
    assert!(
        !has_alert(&alerts, "rc", 202),
        "{}",
        describe_alerts(&alerts)
    );
}

// 6 -------------------------------------------------------------------------

#[test]
fn deactivation_failure_retries_and_stops_the_rest() {
    let t = TestDir::new("deact");
    event_scripts(&t);
    t.script(
        "b-stop.sh",
        r#"echo attempt >> "$DIR/b.stop.attempts"; exit 1"#,
    );
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "a", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: []),
            Resource(name: "b", kind: Exec(start: "start.sh", stop: "b-stop.sh"), depends: ["a"],
                     deactivation: (retry: 1, final_action: NoOperationNextResource)),
            Resource(name: "c", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: ["b"]),
        ]),
    "#;
    let d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");
    d.ok(&["group", "start", "web"]);
    let out = d.cli(&["group", "stop", "web"]);
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("b"), "{out:?}");

    assert_eq!(t.lines("b.stop.attempts").len(), 2, "one try and one retry");
    assert_eq!(
        t.lines("events.log"),
        [
            "start a",
            "start b",
            "start c",
            "stop c GROUPSTOP",
            "stop a GROUPSTOP"
        ]
    );
    let alerts = d.alerts_json(200);
    let all = describe_alerts(&alerts);
    assert_eq!(count_alerts(&alerts, "rc", 220), 1, "{all}");
    assert_eq!(count_alerts(&alerts, "rc", 42), 2, "{all}");
    assert!(has_alert(&alerts, "rc", 22), "{all}");

    assert_eq!(d.group_state("web"), "OfflineFailure");
    let states = d.resource_states("web");
    assert_eq!(states["a"], "Offline", "{states:?}");
    assert_eq!(states["b"], "OfflineFailure", "{states:?}");
    assert_eq!(states["c"], "Offline", "{states:?}");
    assert!(t.lines("os-actions.log").is_empty());
}

// 7 -------------------------------------------------------------------------

#[test]
fn non_admin_users_may_read_but_not_change() {
    if let Some(missing) = need_switch_user() {
        return missing.skip();
    }
    let t = TestDir::new("perm");
    t.script("app.sh", "echo started");
    let groups = r#"
        Group(name: "web", startup: Auto, resources: [
            Resource(name: "app", kind: Exec(start: "app.sh")),
        ]),
    "#;
    let mut d = Daemon::start(
        &t,
        &t.config(
            &["s1"],
            r#"control: (socket_group: Some("nogroup")),"#,
            groups,
        ),
        "s1",
    );
    d.wait_group_state("web", "Online");
    let meta = std::fs::metadata(&d.socket).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), 65534, "the socket belongs to nogroup");

    let out = d.cli_as_nobody(&["status"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("web"), "{out:?}");
    let out = d.cli_as_nobody(&["alerts", "-n", "5"]);
    assert_eq!(out.code, Some(0), "{out:?}");

    for cmd in [
        &["group", "stop", "web"][..],
        &["cluster", "stop"][..],
        &["server", "confirm-down", "s1", "--yes"][..],
    ] {
        let out = d.cli_as_nobody(cmd);
        assert_eq!(out.code, Some(4), "{cmd:?}: {out:?}");
        assert!(out.stderr.contains("permission denied"), "{cmd:?}: {out:?}");
    }
    assert_eq!(
        d.group_state("web"),
        "Online",
        "a refused command changes nothing"
    );
    assert_eq!(d.stop_with_sigterm().code(), Some(0));
    drop(d);

    // Members of the admin group may change the cluster.
    let d = Daemon::start(
        &t,
        &t.config(
            &["s1"],
            r#"control: (socket_group: Some("nogroup"), admin_group: Some("nogroup")),"#,
            groups,
        ),
        "s1",
    );
    d.wait_group_state("web", "Online");
    let out = d.cli_as_nobody(&["group", "stop", "web"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(d.group_state("web"), "Offline");
}

// 8 -------------------------------------------------------------------------

#[test]
fn a_config_with_a_syntax_error_is_rejected() {
    let file = fixture("syntax-error.ron");
    let shown = file.to_str().unwrap();
    let check = understudy(&["config", "check", shown]);
    assert_eq!(check.code, Some(2), "{check:?}");
    // `FILE:line:col: message`, the missing comma being on line 8.
    let problem = check
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("{shown}:8:")))
        .unwrap_or_else(|| panic!("no `{shown}:8:col:` line: {check:?}"))
        .to_string();
    let rest = &problem[shown.len() + ":8:".len()..];
    let (col, message) = rest.split_once(": ").unwrap_or_else(|| panic!("{problem}"));
    assert!(col.parse::<u32>().is_ok(), "column: {problem}");
    assert!(!message.is_empty(), "{problem}");

    let t = TestDir::new("badcfg");
    let run = understudy(&[
        "run",
        "--config",
        shown,
        "--server",
        "s1",
        "--state-dir",
        t.state_dir().to_str().unwrap(),
        "--socket",
        t.socket().to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.lines().any(|l| l == problem),
        "`{problem}` not in: {run:?}"
    );
    assert!(
        !t.socket().exists(),
        "no socket for a rejected configuration"
    );
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let file = fixture("three-problems.ron");
    let shown = file.to_str().unwrap();
    let t = TestDir::new("badcfg3");
    let state = t.state_dir();
    let socket = t.socket();
    let check = understudy(&["config", "check", shown]);
    let run = understudy(&[
        "run",
        "--config",
        shown,
        "--server",
        "s1",
        "--state-dir",
        state.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
    ]);
    for out in [&check, &run] {
        assert_eq!(out.code, Some(2), "{out:?}");
        for line in [
            r#"groups[web].resources[app].depends: unknown resource "db""#,
            "groups[web].resources[app].activation.retry: 100 is out of range (0-99)",
            "groups[web].resources[app].colour: unknown field",
        ] {
            assert!(
                out.stderr.lines().any(|l| l.starts_with(line)),
                "`{line}` missing: {out:?}"
            );
        }
        assert!(out.stderr.contains("3 problems found"), "{out:?}");
    }
    assert!(!socket.exists());
}

#[test]
fn config_check_json_gives_the_same_verdict_for_scripts() {
    // A bad file: every problem with its path and message, exit status 2,
    // nothing on stderr for a script to parse around.
    let file = fixture("three-problems.ron");
    let out = understudy(&["config", "check", "--json", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let report: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(report["valid"], false, "{report}");
    assert!(report.get("cluster").is_none(), "{report}");
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{report}");
    assert!(
        problems
            .iter()
            .any(|p| p["path"] == "groups[web].resources[app].depends"
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(r#"unknown resource "db""#))),
        "{report}"
    );

    // A syntax error: the path is FILE:line:col.
    let bad = fixture("syntax-error.ron");
    let shown = bad.to_str().unwrap();
    let out = understudy(&["config", "check", "--json", shown]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let path = report["problems"][0]["path"].as_str().unwrap();
    assert!(path.starts_with(&format!("{shown}:8:")), "{report}");

    // A valid file: what it sets up, in the order the text shows it.
    let t = TestDir::new("checkjson");
    event_scripts(&t);
    let groups = r#"
        Group(name: "stack", startup: Manual, resources: [
            Resource(name: "web", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: ["db"]),
            Resource(name: "db", kind: Exec(start: "start.sh", stop: "stop.sh"), depends: []),
        ]),
    "#;
    let text = t.config(&["s1", "s2"], "", groups);
    let config = t.write("cluster.ron", &text);
    let out = understudy(&["config", "check", "--json", config.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let cluster = &report["cluster"];
    assert_eq!(
        cluster["servers"],
        serde_json::json!(["s1", "s2"]),
        "{report}"
    );
    assert_eq!(
        cluster["groups"][0]["start_order"],
        serde_json::json!(["db", "web"]),
        "{report}"
    );
    let text_out = understudy(&["config", "check", config.to_str().unwrap()]);
    let digest = cluster["digest"].as_str().unwrap();
    assert!(text_out.stdout.contains(digest), "{text_out:?} / {report}");
}

#[test]
fn a_reader_that_hangs_up_ends_a_command_quietly() {
    // `understudy config check --json F | head -1`: the reader is gone
    // before the output is written; the command ends by the pipe signal,
    // as cat and ls do, and prints no panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(BIN)
        .args(["config", "check", "--json"])
        .arg(fixture("three-problems.ron"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{out:?}");
}

#[test]
fn config_check_names_scripts_that_are_missing_or_not_executable() {
    let t = TestDir::new("scripts");
    let ok = t.write("ok.sh", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.write("plain.sh", "#!/bin/sh\nexit 0\n");
    let groups = r#"Group(name: "web", startup: Manual, resources: [
            Resource(name: "app", kind: Exec(start: "ok.sh", stop: "gone.sh")),
            Resource(name: "db", kind: Exec(start: "plain.sh"))])"#;
    let monitors = r#"monitors: [Monitor(name: "chk", kind: Custom(script: "missing-check.sh"),
            recovery: (target: Group("web")))],"#;
    let text = t.config(&["s1"], monitors, groups);
    let file = t.write("cluster.ron", &text);
    let out = understudy(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let dir = file.parent().unwrap().canonicalize().unwrap();
    for line in [
        format!(
            "groups[web].resources[app].kind.stop: {}/gone.sh does not exist",
            dir.display()
        ),
        format!(
            "groups[web].resources[db].kind.start: {}/plain.sh is not executable",
            dir.display()
        ),
        format!(
            "monitors[chk].kind.script: {}/missing-check.sh does not exist",
            dir.display()
        ),
    ] {
        assert!(
            out.stderr.lines().any(|l| l.starts_with(&line)),
            "`{line}` missing: {out:?}"
        );
    }
    assert!(out.stderr.contains("3 problems found"), "{out:?}");
    assert!(!out.stderr.contains("ok.sh"), "{out:?}");

    // Once they are there and executable, the same file is valid.
    for name in ["gone.sh", "plain.sh", "missing-check.sh"] {
        let f = t.write(name, "#!/bin/sh\nexit 0\n");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = understudy(&["config", "check", file.to_str().unwrap()]);
    assert!(out.success(), "{out:?}");
}

#[test]
fn config_check_warns_about_partition_safety_and_run_logs_it() {
    let t = TestDir::new("npwarn");
    let groups = r#"Group(name: "web", startup: Manual),"#;
    let check = |name: &str, text: &str| {
        let file = t.write(name, text);
        let out = understudy(&["config", "check", file.to_str().unwrap()]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let lines: Vec<String> = out.stdout.lines().map(String::from).collect();
        assert!(lines[0].contains("configuration is valid"), "{out:?}");
        let warnings: Vec<String> = lines
            .iter()
            .skip(1)
            .take_while(|l| l.starts_with("warning: "))
            .cloned()
            .collect();
        // Only right after the OK line.
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("warning: ")).count(),
            warnings.len(),
            "{out:?}"
        );
        warnings
    };
    let none = "warning: partition: no network-partition resolution: if every path between the servers is cut while they stay up, both sides run the groups (add `partition: (methods: [Majority])`)";
    assert_eq!(
        check("one.ron", &t.config(&["s1"], "", groups)),
        Vec::<String>::new()
    );
    assert_eq!(
        check("two.ron", &t.config(&["s1", "s2"], "", groups)),
        [none]
    );
    assert_eq!(
        check(
            "two-majority.ron",
            &t.config(&["s1", "s2"], "partition: (methods: [Majority], margin_ms: 2500),", groups)
        ),
        ["warning: partition: with two servers a majority is the tie-breaker alone: when s1 is down or cut off, the other server takes nothing over (add a witness: Etcd(endpoints: [...]))"]
    );
    assert_eq!(
        check(
            "three-majority.ron",
            &t.config(
                &["s1", "s2", "s3"],
                "partition: (methods: [Majority], margin_ms: 2500),",
                groups
            )
        ),
        Vec::<String>::new()
    );

    // `run` logs them at startup, and runs.
    let d = Daemon::start(&t, &pair(&t, 86, ""), "beta");
    let log = d.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.ends_with(&none["warning: ".len()..])),
        "{log}"
    );
    d.ok(&["status"]);
}

// 9 -------------------------------------------------------------------------

/// An auto-start group with an asynchronous exec resource whose stop script
/// records its environment.
fn async_auto_group(t: &TestDir) -> String {
    t.script(
        "svc-start.sh",
        r#"echo $$ > "$DIR/svc.pid.tmp" && mv "$DIR/svc.pid.tmp" "$DIR/svc.pid"
exec sleep 300"#,
    );
    t.script("svc-stop.sh", r#"env | grep '^CLP_' > "$DIR/svc.stop.env""#);
    let groups = r#"
        Group(name: "web", startup: Auto, resources: [
            Resource(name: "svc", kind: Exec(start: "svc-start.sh", stop: "svc-stop.sh", start_mode: Async)),
        ]),
    "#;
    t.config(&["s1"], "", groups)
}

#[test]
fn sigterm_stops_the_groups_and_the_daemon() {
    let t = TestDir::new("sigterm");
    let mut d = Daemon::start(&t, &async_auto_group(&t), "s1");
    d.wait_group_state("web", "Online");
    let pid = t.wait_pid_file("svc.pid");
    assert!(pid_alive(pid));

    let status = d.stop_with_sigterm();
    assert_eq!(status.code(), Some(0), "{status}; log:\n{}", d.log_text());
    let env = assert_stopped_cleanly(&t, &d, pid, "SERVERSHUTDOWN");
    assert_eq!(env.get("CLP_PID"), Some(&pid.to_string()), "{env:?}");
}

/// After the daemon exited: the stop script saw `factor`, the asynchronous
/// process is gone, the alert log has the group stop (rc 21) and the cluster
/// stop (pm 2), and the socket is removed. Returns the stop script's env.
fn assert_stopped_cleanly(
    t: &TestDir,
    d: &Daemon,
    pid: u32,
    factor: &str,
) -> std::collections::BTreeMap<String, String> {
    let env = t.env_file("svc.stop.env");
    assert_eq!(
        env.get("CLP_FACTOR").map(String::as_str),
        Some(factor),
        "{env:?}"
    );
    assert!(
        !pid_alive(pid),
        "the async process {pid} outlived the daemon"
    );
    let alerts = alerts_file(&d.state_dir);
    let all = describe_alerts(&alerts);
    assert!(has_alert(&alerts, "rc", 21), "{all}");
    assert!(has_alert(&alerts, "pm", 2), "{all}");
    assert!(!d.socket.exists(), "the socket is removed on exit");
    env
}

#[test]
fn cluster_stop_stops_the_groups_and_the_daemon() {
    let t = TestDir::new("cstop");
    let mut d = Daemon::start(&t, &async_auto_group(&t), "s1");
    d.wait_group_state("web", "Online");
    let pid = t.wait_pid_file("svc.pid");

    let out = d.ok(&["cluster", "stop"]);
    assert!(out.contains("cluster service stopped"), "{out}");
    let status = d.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{status}; log:\n{}", d.log_text());
    assert_stopped_cleanly(&t, &d, pid, "CLUSTERSHUTDOWN");
}

// 10 ------------------------------------------------------------------------

#[test]
fn the_cli_says_when_the_daemon_is_not_running() {
    let t = TestDir::new("nodaemon");
    // No socket at all, and a socket left over by a dead daemon.
    let stale = t.join("stale.sock");
    drop(UnixListener::bind(&stale).expect("bind"));
    assert!(stale.exists());
    for socket in [t.socket(), stale] {
        for args in [&["status"][..], &["group", "stop", "web"][..]] {
            let mut all = vec!["--socket", socket.to_str().unwrap()];
            all.extend_from_slice(args);
            let out = understudy(&all);
            assert!(!out.success(), "{args:?}: {out:?}");
            assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {out:?}");
            assert!(out.stderr.contains("not running"), "{args:?}: {out:?}");
            assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
            assert_eq!(out.code, Some(5), "{args:?}: {out:?}");
        }
    }
}

#[test]
fn a_daemon_that_never_answers_gives_exit_status_6_after_the_timeout() {
    let t = TestDir::new("stuck");
    // A socket whose listener never accepts: the connection waits in its
    // backlog for ever, as with a stuck daemon.
    let socket = t.join("stuck.sock");
    let _listener = UnixListener::bind(&socket).expect("bind");
    let begun = std::time::Instant::now();
    let out = understudy(&[
        "--socket",
        socket.to_str().unwrap(),
        "--timeout",
        "1",
        "status",
    ]);
    let took = begun.elapsed();
    assert_eq!(out.code, Some(6), "{out:?}");
    assert!(
        out.stderr.contains("no answer from the daemon within 1 s"),
        "{out:?}"
    );
    // Taken within 3 x the timeout (and the start of a process).
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    // The same limit from the environment, for an operation.
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["--socket", socket.to_str().unwrap(), "group", "stop", "web"])
        .env("UNDERSTUDY_TIMEOUT", "1");
    let out = common::run_cmd(&mut cmd);
    assert_eq!(out.code, Some(6), "{out:?}");
}

#[test]
fn shutdown_commands_ask_first_and_do_nothing_unconfirmed() {
    let t = TestDir::new("askfirst");
    let d = Daemon::start(
        &t,
        &t.config(
            &["s1"],
            "",
            r#"Group(name: "web", startup: Manual, resources: [
                   Resource(name: "app", kind: Exec(start: "/bin/true"))])"#,
        ),
        "s1",
    );
    for args in [
        &["cluster", "shutdown"][..],
        &["cluster", "shutdown", "--reboot"][..],
        &["server", "shutdown"][..],
    ] {
        // No terminal to ask (stdin is /dev/null), no --yes.
        let out = d.cli(args);
        assert_eq!(out.code, Some(3), "{args:?}: {out:?}");
        assert!(out.stderr.contains("--yes"), "{args:?}: {out:?}");
    }
    // Nothing was done: the daemon still answers, nothing is stopping.
    let status = d.ok(&["status", "--json"]);
    assert!(!status.contains("Stopping"), "{status}");
}

#[test]
fn help_lists_the_exit_statuses() {
    let out = understudy(&["--help"]);
    assert!(out.success(), "{out:?}");
    for line in [
        "0  success",
        "2  the configuration or file given is not valid",
        "3  not confirmed",
        "4  permission denied",
        "5  the daemon is not running",
        "6  no answer within --timeout",
    ] {
        assert!(out.stdout.contains(line), "{line}: {out:?}");
    }
}

// 11 ------------------------------------------------------------------------

#[test]
fn a_garbled_request_is_answered_and_counted() {
    let t = TestDir::new("garbled");
    let mut d = Daemon::start(
        &t,
        &t.config(&["s1"], "", r#"Group(name: "web", startup: Manual),"#),
        "s1",
    );
    let status = d.status_json();
    assert_eq!(status["malformed_requests"], 0);
    assert!(
        status.get("partition").is_none(),
        "no partition resolution configured, no field: {status}"
    );

    let mut stream = UnixStream::connect(&d.socket).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"{not json\n").unwrap();
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .expect("a reply line");
    let reply: serde_json::Value =
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
    assert_eq!(reply["result"], "error", "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap_or_default()
            .contains("malformed"),
        "{reply}"
    );

    assert!(
        d.is_running(),
        "the daemon died on a garbled request:\n{}",
        d.log_text()
    );
    let status = d.status_json();
    assert!(
        status["malformed_requests"].as_u64().unwrap_or(0) >= 1,
        "{status}"
    );
    let out = d.ok(&["status"]);
    assert!(
        out.contains("malformed control requests dropped: 1"),
        "{out}"
    );

    // A second daemon on the same socket is refused. Its probe of the
    // socket (a connection closed without a byte) is no malformed request.
    let other = t.join("other-state");
    let second = understudy(&[
        "run",
        "--config",
        d.config.to_str().unwrap(),
        "--server",
        "s1",
        "--state-dir",
        other.to_str().unwrap(),
        "--socket",
        d.socket.to_str().unwrap(),
    ]);
    assert!(!second.success(), "{second:?}");
    assert!(second.stderr.contains("already running"), "{second:?}");
    drop(UnixStream::connect(&d.socket).expect("connect"));
    assert_eq!(d.status_json()["malformed_requests"], 1);
    d.ok(&["group", "start", "web"]);
}

// 12 ------------------------------------------------------------------------

#[test]
fn the_alert_log_survives_a_restart() {
    let t = TestDir::new("persist");
    t.script("app.sh", "true");
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "app", kind: Exec(start: "app.sh")),
        ]),
    "#;
    let mut d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");
    d.ok(&["group", "start", "web"]);
    let before: Vec<serde_json::Value> = d
        .alerts_json(100)
        .into_iter()
        .filter(|a| a["module"] == "rc" && a["event_id"] == 11)
        .collect();
    assert_eq!(before.len(), 1);
    assert_eq!(d.stop_with_sigterm().code(), Some(0));
    let config = d.config.clone();
    drop(d);

    let mut d = Daemon::spawn(&t, &config, "s1");
    d.wait_ready();
    assert_eq!(
        d.group_state("web"),
        "Offline",
        "a manual group does not start by itself"
    );
    let alerts = d.alerts_json(100);
    let all = describe_alerts(&alerts);
    let after: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["module"] == "rc" && a["event_id"] == 11)
        .collect();
    assert_eq!(after, [&before[0]], "{all}");
    assert_eq!(
        count_alerts(&alerts, "pm", 1),
        2,
        "one start alert per run: {all}"
    );
    assert!(has_alert(&alerts, "pm", 2), "{all}");
}

// 13 ------------------------------------------------------------------------

/// Two servers, alpha and beta, on interconnects 127.0.`net`.1-2 (a test
/// of its own `net` can run beside the others: the ports are the
/// defaults), with `partition` (a top-level field, or nothing) and an Auto
/// group `web` on both, whose start appends to `app.log`.
fn pair(t: &TestDir, net: u8, partition: &str) -> String {
    t.script("app.sh", r#"echo started >> "$DIR/app.log""#);
    format!(
        r#"Cluster(
    name: "it",
    servers: [
        Server(name: "alpha", interconnects: ["127.0.{net}.1"]),
        Server(name: "beta", interconnects: ["127.0.{net}.2"]),
    ],
    {os_actions}
    heartbeat: (key_file: "{key}", startup_wait_secs: 0),
    {partition}
    groups: [
        Group(name: "web", servers: ["alpha", "beta"], startup: Auto, resources: [
            Resource(name: "app", kind: Exec(start: "app.sh")),
        ]),
    ],
)
"#,
        os_actions = t.os_actions(),
        key = t.key_file().display()
    )
}

/// [`pair`] by majority, beta breaking ties, and a margin of ten minutes:
/// beta, running alone, is quorate by itself, but would wait the lease
/// plus that margin before starting a group that silent alpha may hold.
/// Only an operator's confirm-down can start it sooner.
fn partition_pair(t: &TestDir, net: u8) -> String {
    pair(
        t,
        net,
        r#"partition: (methods: [Majority], tie_breaker: "beta", margin_ms: 600000, action: None),"#,
    )
}

#[test]
fn confirm_down_of_a_silent_server_starts_its_groups_without_the_wait() {
    let t = TestDir::new("confdown");
    let d = Daemon::start(&t, &partition_pair(&t, 84), "beta");

    // Status: quorate alone (no lease), alpha silent, its groups waiting
    // for lease + margin.
    let status = d.status_json();
    let p = &status["partition"];
    assert_eq!(p["methods"], serde_json::json!(["Majority"]), "{status}");
    assert_eq!(p["quorate"], true, "{status}");
    assert!(p["lease_ms_left"].is_null(), "{status}");
    let silent = p["silent"].as_array().expect("silent servers");
    assert_eq!(silent.len(), 1, "{status}");
    assert_eq!(silent[0]["name"], "alpha", "{status}");
    assert_eq!(silent[0]["cleared"], false, "{status}");
    let wait = silent[0]["takeover_ms_left"].as_u64().unwrap_or(0);
    assert!(
        (500_000..=605_000).contains(&wait),
        "lease 5 s + margin 600 s: {status}"
    );
    assert_eq!(d.group_state("web"), "Offline", "{status}");
    let text = d.ok(&["status"]);
    assert!(
        text.contains("partition Majority: quorate\n"),
        "status text:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("alpha") && l.contains("silent: its groups may be taken over in")),
        "status text:\n{text}"
    );

    // Without a terminal to ask and without --yes: nothing is done.
    let out = d.cli(&["server", "confirm-down", "alpha"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("not a terminal"), "{out:?}");
    assert!(out.stderr.contains("--yes"), "{out:?}");
    assert!(!has_alert(&d.alerts_json(100), "nm", 34));

    // Nobody confirms the server answering, nor a server that does not exist.
    let out = d.cli(&["server", "confirm-down", "beta", "--yes"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("it is up"), "{out:?}");
    let out = d.cli(&["server", "confirm-down", "gamma", "--yes"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no server named \"gamma\""), "{out:?}");

    let out = d.ok(&["server", "confirm-down", "alpha", "--yes"]);
    assert_eq!(out.trim(), "beta: server alpha confirmed down");
    d.wait_group_state("web", "Online");
    assert_eq!(t.lines("app.log"), ["started"]);
    let alerts = d.alerts_json(100);
    assert_eq!(
        count_alerts(&alerts, "nm", 34),
        1,
        "{}",
        describe_alerts(&alerts)
    );
    let status = d.status_json();
    let alpha = &status["partition"]["silent"][0];
    assert_eq!(alpha["name"], "alpha", "{status}");
    assert_eq!(alpha["cleared"], true, "{status}");
    assert!(alpha["takeover_ms_left"].is_null(), "{status}");
    let text = d.ok(&["status"]);
    assert!(text.contains("silent: confirmed down"), "{text}");
}

#[test]
fn confirm_down_on_a_terminal_asks_and_does_nothing_without_a_yes() {
    if let Some(missing) = common::skip::need_program("script", "util-linux") {
        return missing.skip();
    }
    let t = TestDir::new("confask");
    let d = Daemon::start(&t, &partition_pair(&t, 85), "beta");
    // `script` gives the command a terminal and types `answer` into it.
    let ask = |answer: &str| {
        let command = format!(
            "{BIN} --socket {} server confirm-down alpha",
            d.socket.display()
        );
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "printf '{answer}\\n' | script -qec \"$0\" /dev/null"
            ))
            .arg(command)
            .env_remove("UNDERSTUDY_SOCKET");
        run_cmd(&mut cmd)
    };
    let out = ask("n");
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.contains("two servers at once"), "{out:?}");
    assert!(out.stdout.contains("[y/N]"), "{out:?}");
    assert!(
        out.stdout.contains("not confirmed: nothing was done"),
        "{out:?}"
    );
    assert_eq!(d.group_state("web"), "Offline");
    assert!(!has_alert(&d.alerts_json(100), "nm", 34));

    let out = ask("y");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("beta: server alpha confirmed down"),
        "{out:?}"
    );
    d.wait_group_state("web", "Online");
}

#[test]
fn confirm_down_help_warns_that_a_wrong_one_runs_groups_twice() {
    let out = understudy(&["server", "--help"]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("confirm-down"), "{out:?}");
    let out = understudy(&["server", "confirm-down", "--help"]);
    assert!(out.success(), "{out:?}");
    for wanted in ["--yes", "two servers at once", "exit status is 3"] {
        assert!(out.stdout.contains(wanted), "{wanted:?} missing: {out:?}");
    }
}

#[test]
fn a_push_that_needs_a_restart_is_marked_in_status_until_undone() {
    let t = TestDir::new("pending");
    let groups = r#"Group(name: "web", startup: Manual),"#;
    let text = t.config(&["s1"], "", groups);
    let d = Daemon::start(&t, &text, "s1");
    assert_eq!(d.status_json()["restart_pending"], serde_json::json!([]));

    // A new group applies only after a restart.
    let more = t.config(
        &["s1"],
        "",
        r#"Group(name: "web", startup: Manual), Group(name: "db", startup: Manual),"#,
    );
    let file = t.write("more.ron", &more);
    let out = d.ok(&["config", "push", file.to_str().unwrap()]);
    assert!(
        out.contains("restart the cluster service to apply"),
        "{out}"
    );
    let pending = d.status_json()["restart_pending"].clone();
    assert_eq!(pending, serde_json::json!(["groups"]), "{pending}");
    let text_status = d.ok(&["status"]);
    assert!(
        text_status.contains("restart pending: the configuration file changes groups"),
        "{text_status}"
    );

    // Pushing the configuration in force again: nothing waits any more.
    let file = t.write("same.ron", &text);
    d.ok(&["config", "push", file.to_str().unwrap()]);
    assert_eq!(d.status_json()["restart_pending"], serde_json::json!([]));
    assert!(!d.ok(&["status"]).contains("restart pending"));
}

#[test]
fn expresscluster_command_names_drive_the_daemon() {
    let t = TestDir::new("clpnames");
    t.script("app.sh", "true");
    let mut d = Daemon::start(
        &t,
        &t.config(
            &["s1"],
            "",
            r#"Group(name: "web", startup: Manual, resources: [
                   Resource(name: "app", kind: Exec(start: "app.sh"))])"#,
        ),
        "s1",
    );
    let bin = t.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["clpgrp", "clpstat", "clpstdn"] {
        std::os::unix::fs::symlink(common::BIN, bin.join(name)).unwrap();
    }
    let run = |name: &str, args: &[&str]| {
        let mut cmd = std::process::Command::new(bin.join(name));
        cmd.args(args).env("UNDERSTUDY_SOCKET", &d.socket);
        common::run_cmd(&mut cmd)
    };
    let out = run("clpgrp", &["-s", "web"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(d.group_state("web"), "Online");
    let out = run("clpstat", &[]);
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("web"), "{out:?}");
    // Not supported: one line naming the understudy equivalent, exit 2.
    let out = run("clpgrp", &["-n", "web"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("understudy status"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    let out = run("clpgrp", &["-t", "web"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(d.group_state("web"), "Offline");
    // clpstdn with a bad option does nothing (the cluster keeps running).
    let out = run("clpstdn", &["-x"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(d.is_running());
}

/// The brain's ticks in a journal: their instants (µs on the brain's clock).
fn journal_ticks(state_dir: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(state_dir.join("journal.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["input"]["input"] == "Tick")
        .filter_map(|v| v["input"]["t_us"].as_u64())
        .collect()
}

/// An idle server's brain is ticked at its next deadline, at least every
/// quarter of the heartbeat timeout, not at a fixed rate: with a 1 s
/// timeout, 4 or 5 ticks a second reach its journal, where the fixed rate
/// of a fiftieth of the timeout gave 50.
#[test]
fn an_idle_brain_is_ticked_at_its_deadlines() {
    let t = TestDir::new("idle-ticks");
    let config = t.config(
        &["s1"],
        "heartbeat: (interval_ms: 250, timeout_ms: 1000),",
        "",
    );
    let _d = Daemon::start(&t, &config, "s1");
    let state = t.state_dir();
    wait_for(
        "a dozen ticks in the journal",
        std::time::Duration::from_secs(30),
        || journal_ticks(&state).len() >= 12,
    );
    let ticks = journal_ticks(&state);
    // From the second tick on: the first comes at the start.
    let span_s = (ticks[ticks.len() - 1] - ticks[1]) as f64 / 1e6;
    let per_s = (ticks.len() - 2) as f64 / span_s;
    assert!(
        (3.0..10.0).contains(&per_s),
        "{per_s:.1} ticks a second: {ticks:?}"
    );
}
