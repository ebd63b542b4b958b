//! The guardian and the ownership records end to end: `understudy run` is
//! the guardian, the daemon its child. A daemon killed with SIGKILL must
//! leave no floating IP and no process group behind; leftovers of a run
//! whose guardian died too are released at the next start; SIGTERM still
//! stops everything in order; a takeover waits (a bounded time) for the old
//! owner of an address to let go of it.
//!
//! The tests with a floating IP run the daemon in a network namespace joined
//! by a veth pair to a peer namespace; they need root and `ip` and skip with
//! a printed reason elsewhere.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

const FIP: &str = "198.51.100.10";

fn netns_skip_reason() -> Option<skip::Missing> {
    skip::need_root("network namespaces need root")
        .or_else(|| skip::need_program("ip", "iproute2"))
        .or_else(|| skip::need_program("setsid", "util-linux"))
}

macro_rules! require_netns {
    () => {
        if let Some(missing) = netns_skip_reason() {
            return missing.skip();
        }
    };
}

fn sh(cmd: &str) -> CmdOut {
    run_cmd(Command::new("sh").args(["-c", cmd]))
}

fn must(cmd: &str) {
    let out = sh(cmd);
    assert!(out.success(), "{cmd}: {out:?}");
}

/// Two namespaces joined by a veth pair: the server `srv` (198.51.100.1/24
/// on `vs`) and a peer (198.51.100.2/24 on `vc`) that can hold addresses
/// of its own. Removed on drop.
struct Lab {
    srv: String,
    peer: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let id = format!("{tag}{}", std::process::id());
        let lab = Lab {
            srv: format!("usgs{id}"),
            peer: format!("usgp{id}"),
        };
        let (s, p) = (&lab.srv, &lab.peer);
        let _ = sh(&format!("ip netns del {s}; ip netns del {p}"));
        must(&format!("ip netns add {s} && ip netns add {p}"));
        must(&format!(
            "ip link add vs netns {s} type veth peer name vc netns {p} && \
             ip -n {s} link set lo up && ip -n {p} link set lo up && \
             ip -n {s} link set vs up && ip -n {p} link set vc up && \
             ip -n {s} addr add 198.51.100.1/24 dev vs && ip -n {p} addr add 198.51.100.2/24 dev vc"
        ));
        lab
    }

    fn srv_has(&self, addr: &str) -> bool {
        let out = sh(&format!("ip -n {} -4 addr show dev vs", self.srv));
        out.stdout.contains(&format!("inet {addr}/"))
    }

    fn peer(&self, args: &str) {
        must(&format!("ip -n {} {args}", self.peer));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip netns del {}; ip netns del {}",
            self.srv, self.peer
        ));
    }
}

/// A group with a floating IP and an asynchronous exec resource (a `sleep`
/// in a process group of its own) whose stop script leaves a mark.
fn vip_and_app(t: &TestDir, startup: &str, extra: &str) -> String {
    t.script("app.sh", r#"echo $$ > "$DIR/app.pid"; exec sleep 1000"#);
    t.script("app-stop.sh", r#"echo stopped >> "$DIR/app.stopped""#);
    let groups = format!(
        r#"Group(name: "web", startup: {startup}, resources: [
            Resource(name: "vip", kind: Fip(address: "{FIP}/24", interface: "vs")),
            Resource(name: "app", kind: Exec(start: "app.sh", stop: "app-stop.sh", start_mode: Async)),
        ]),"#
    );
    t.config(&["s1"], extra, &groups)
}

/// Record files (not the lock) left in the ownership folder.
fn records(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.state_dir.join("owned"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn alert_messages(d: &Daemon, module: &str, id: u64) -> Vec<String> {
    alerts_file(&d.state_dir)
        .iter()
        .filter(|a| a["module"] == module && a["event_id"].as_u64() == Some(id))
        .map(|a| a["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The daemon of `vip_and_app` (startup Auto) with group web online, and
/// the app's pid.
fn web_online(lab: &Lab, t: &TestDir) -> (Daemon, u32) {
    let d = Daemon::start_in_netns(t, &vip_and_app(t, "Auto", ""), "s1", &lab.srv);
    d.wait_group_state("web", "Online");
    let app = t.wait_pid_file("app.pid");
    (d, app)
}

/// The guardian gave everything back: the address, the app's process group.
fn wait_released(lab: &Lab, app: u32) {
    wait_for("the address to go", DEADLINE, || !lab.srv_has(FIP));
    wait_for("the app's process group to go", DEADLINE, || {
        !pid_alive(app)
    });
}

#[test]
fn a_killed_daemon_leaves_nothing_behind() {
    require_netns!();
    let lab = Lab::new("a");
    let t = TestDir::new("gkill");
    let (mut d, app) = web_online(&lab, &t);
    assert!(lab.srv_has(FIP));
    assert!(pid_alive(app));
    assert_eq!(records(&d).len(), 2, "{:?}", records(&d));

    let daemon = d.kill9_daemon();
    let killed = Instant::now();
    let status = d.wait_exit(DEADLINE);
    assert_eq!(
        status.code(),
        Some(128 + 9),
        "{status}; log:\n{}",
        d.log_text()
    );
    wait_released(&lab, app);
    eprintln!(
        "daemon {daemon} killed; guardian done after {:?}",
        killed.elapsed()
    );

    let died = alert_messages(&d, "pm", 1200);
    assert_eq!(
        died.len(),
        1,
        "{}",
        describe_alerts(&alerts_file(&d.state_dir))
    );
    assert!(
        died[0].contains("signal 9")
            && died[0].contains("1 address")
            && died[0].contains("1 process group"),
        "{died:?}"
    );
    let log = d.log_text();
    assert!(log.contains(&format!("removed {FIP}/24 from vs")), "{log}");
    assert!(log.contains(&format!("(pid {daemon}) died")), "{log}");
    // Killed, not stopped: the stop script never ran.
    assert!(t.read("app.stopped").is_empty());
    assert!(records(&d).is_empty(), "{:?}", records(&d));
}

/// A panic in an actor (here the coordinator's, through a test hook) must
/// not leave a half-dead daemon behind: it dies of it, and its guardian
/// releases everything and records the death.
#[test]
fn a_panic_in_the_daemon_is_a_death_the_guardian_cleans_up() {
    require_netns!();
    let lab = Lab::new("p");
    let t = TestDir::new("gpanic");
    let (mut d, app) = web_online(&lab, &t);
    assert!(lab.srv_has(FIP));

    let _ = d.cli(&["debug", "panic"]);
    let status = d.wait_exit(DEADLINE);
    assert_eq!(
        status.code(),
        Some(128 + 6),
        "died of the abort; {status}; log:\n{}",
        d.log_text()
    );
    wait_released(&lab, app);
    let died = alert_messages(&d, "pm", 1200);
    assert_eq!(
        died.len(),
        1,
        "{}",
        describe_alerts(&alerts_file(&d.state_dir))
    );
    let log = d.log_text();
    assert!(
        log.contains("test hook: a panic in the coordinator"),
        "{log}"
    );
    assert!(records(&d).is_empty(), "{:?}", records(&d));
}

#[test]
fn leftovers_are_released_at_the_next_start() {
    require_netns!();
    let lab = Lab::new("b");
    let t = TestDir::new("gleft");
    let wrapper = ["ip", "netns", "exec", lab.srv.as_str(), "setsid"];
    let mut d = Daemon::start_wrapped(&t, &vip_and_app(&t, "Auto", ""), "s1", &wrapper);
    d.wait_group_state("web", "Online");
    let app = t.wait_pid_file("app.pid");
    let guardian = d.pid();
    assert_ne!(d.daemon_pid(), guardian);

    // Guardian and daemon die together (their whole process group): nobody
    // is left to clean up.
    killpg(Pid::from_raw(guardian as i32), Signal::SIGKILL).expect("kill the process group");
    let status = d.wait_exit(DEADLINE);
    assert_eq!(status.code(), None, "{status}");
    assert!(lab.srv_has(FIP), "the address is left behind");
    assert!(pid_alive(app), "the app is left behind");
    assert_eq!(records(&d).len(), 2, "{:?}", records(&d));
    drop(d);

    // The next start (its group not started automatically) releases them
    // before the coordinator starts.
    std::fs::remove_file(t.join("app.pid")).expect("remove app.pid");
    let d = Daemon::start_in_netns(&t, &vip_and_app(&t, "Manual", ""), "s1", &lab.srv);
    assert!(!lab.srv_has(FIP), "log:\n{}", d.log_text());
    wait_for("the old app to go", DEADLINE, || !pid_alive(app));
    assert_eq!(d.group_state("web"), "Offline");
    assert!(records(&d).is_empty(), "{:?}", records(&d));

    let alerts = alerts_file(&d.state_dir);
    let all = describe_alerts(&alerts);
    let position = |module: &str, id: u64| {
        alerts
            .iter()
            .rposition(|a| a["module"] == module && a["event_id"].as_u64() == Some(id))
    };
    let cleanup = position("pm", 1201).unwrap_or_else(|| panic!("no pm 1201:\n{all}"));
    let started = position("pm", 1).unwrap_or_else(|| panic!("no pm 1:\n{all}"));
    assert!(cleanup < started, "cleanup after the start:\n{all}");
    let message = alerts[cleanup]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("address {FIP}/24 on vs"))
            && message.contains(&format!("process group {app}")),
        "{message}"
    );
    assert!(!has_alert(&alerts, "pm", 1200), "{all}");
}

#[test]
fn sigterm_to_the_guardian_is_an_orderly_stop() {
    require_netns!();
    let lab = Lab::new("c");
    let t = TestDir::new("gterm");
    let (mut d, app) = web_online(&lab, &t);

    let status = d.stop_with_sigterm();
    assert_eq!(status.code(), Some(0), "{status}; log:\n{}", d.log_text());
    assert_eq!(t.lines("app.stopped"), ["stopped"]);
    assert!(!lab.srv_has(FIP));
    wait_for("the app to go", DEADLINE, || !pid_alive(app));
    let alerts = alerts_file(&d.state_dir);
    let all = describe_alerts(&alerts);
    assert!(has_alert(&alerts, "rc", 21), "{all}");
    assert!(!has_alert(&alerts, "pm", 1200), "{all}");
    assert!(records(&d).is_empty(), "{:?}", records(&d));
}

#[test]
fn takeover_waits_for_the_old_owner_to_let_go() {
    require_netns!();
    let lab = Lab::new("d");
    let t = TestDir::new("ggrace");
    // The peer holds both addresses, as an old owner would.
    lab.peer(&format!("addr add {FIP}/24 dev vc"));
    lab.peer("addr add 198.51.100.11/24 dev vc");
    let groups = r#"
        Group(name: "web", startup: Manual, resources: [
            Resource(name: "vip", kind: Fip(address: "198.51.100.10/24", interface: "vs",
                     duplicate_check_ms: 200, duplicate_grace_ms: 20000),
                     activation: (failover_threshold: 0, final_action: NoOperation)),
        ]),
        Group(name: "strict", startup: Manual, resources: [
            Resource(name: "vip0", kind: Fip(address: "198.51.100.11/24", interface: "vs",
                     duplicate_check_ms: 200, duplicate_grace_ms: 0),
                     activation: (failover_threshold: 0, final_action: NoOperation)),
        ]),
    "#;
    let d = Daemon::start_in_netns(&t, &t.config(&["s1"], "", groups), "s1", &lab.srv);

    // Grace 0: refused at once.
    let asked = Instant::now();
    let out = d.cli(&["group", "start", "strict"]);
    assert!(!out.success(), "{out:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    assert!(!lab.srv_has("198.51.100.11"));
    let refused = alert_messages(&d, "rc", 32);
    assert!(
        refused.iter().any(|m| m.contains("duplicate")),
        "{refused:?}"
    );

    // With a grace: the activation waits while the peer answers, and goes
    // ahead once the peer has let go.
    let socket = d.socket.clone();
    let start = std::thread::spawn(move || {
        let started = Instant::now();
        let out = run_cmd(
            Command::new(BIN)
                .arg("--socket")
                .arg(&socket)
                .args(["group", "start", "web"]),
        );
        (out, started.elapsed())
    });
    wait_for("the daemon to wait for the peer", DEADLINE, || {
        d.log_text()
            .contains(&format!("{FIP} already answers from"))
    });
    assert!(!lab.srv_has(FIP));
    let released = Instant::now();
    lab.peer(&format!("addr del {FIP}/24 dev vc"));
    let (out, took) = start.join().expect("group start thread");
    assert!(out.success(), "{out:?}\nlog:\n{}", d.log_text());
    eprintln!(
        "activation took {took:?}, {:?} after the peer let go",
        released.elapsed()
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(lab.srv_has(FIP));
    assert_eq!(d.group_state("web"), "Online");
    assert!(
        d.log_text().contains("no longer answers"),
        "{}",
        d.log_text()
    );
}

// ---------------------------------------------------------------------------
// without network namespaces (no root needed)

#[test]
fn guardian_action_runs_after_the_release() {
    let t = TestDir::new("gshut");
    t.script("app.sh", r#"echo $$ > "$DIR/app.pid"; exec sleep 1000"#);
    let groups = r#"Group(name: "web", resources: [
        Resource(name: "app", kind: Exec(start: "app.sh", start_mode: Async)),
    ]),"#;
    let config = t.config(&["s1"], "guardian: (action: ShutdownOs),", groups);
    let mut d = Daemon::start(&t, &config, "s1");
    d.wait_group_state("web", "Online");
    let app = t.wait_pid_file("app.pid");

    d.kill9_daemon();
    let status = d.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(137), "{status}; log:\n{}", d.log_text());
    wait_for("the app to go", DEADLINE, || !pid_alive(app));
    assert_eq!(t.lines("os-actions.log"), ["shutdown"]);
    let alerts = alerts_file(&d.state_dir);
    let all = describe_alerts(&alerts);
    let died = alerts
        .iter()
        .position(|a| a["module"] == "pm" && a["event_id"] == 1200)
        .unwrap_or_else(|| panic!("no pm 1200:\n{all}"));
    let shutdown = alerts
        .iter()
        .position(|a| a["module"] == "pm" && a["event_id"] == 23)
        .unwrap_or_else(|| panic!("no pm 23:\n{all}"));
    assert!(died < shutdown, "{all}");
    assert!(
        alerts[died]["message"]
            .as_str()
            .is_some_and(|m| m.contains("0 addresses, 1 process group")),
        "{all}"
    );
}

#[test]
fn a_daemon_whose_guardian_dies_stops_in_order() {
    let t = TestDir::new("gorphan");
    t.script("app.sh", r#"echo $$ > "$DIR/app.pid"; exec sleep 1000"#);
    t.script("app-stop.sh", r#"echo stopped >> "$DIR/app.stopped""#);
    let groups = r#"Group(name: "web", resources: [
        Resource(name: "app", kind: Exec(start: "app.sh", stop: "app-stop.sh", start_mode: Async)),
    ]),"#;
    let mut d = Daemon::start(&t, &t.config(&["s1"], "", groups), "s1");
    d.wait_group_state("web", "Online");
    let app = t.wait_pid_file("app.pid");
    let daemon = d.daemon_pid();

    nix::sys::signal::kill(Pid::from_raw(d.pid() as i32), Signal::SIGKILL)
        .expect("kill -9 the guardian");
    assert_eq!(d.wait_exit(DEADLINE).code(), None);
    // The daemon gets SIGTERM from the kernel and stops the groups.
    wait_for("the daemon to stop", DEADLINE, || !pid_alive(daemon));
    assert_eq!(
        t.lines("app.stopped"),
        ["stopped"],
        "log:\n{}",
        d.log_text()
    );
    assert!(!pid_alive(app));
    let alerts = alerts_file(&d.state_dir);
    assert!(has_alert(&alerts, "pm", 2), "{}", describe_alerts(&alerts));
    assert!(records(&d).is_empty(), "{:?}", records(&d));
}

#[test]
fn a_daemon_that_cannot_start_is_not_a_death() {
    let t = TestDir::new("gbad");
    let config = t.write("cluster.ron", "Cluster(name: \"it\", servers: [])");
    let mut d = Daemon::spawn(&t, &config, "s1");
    let status = d.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(2), "{status}; log:\n{}", d.log_text());
    assert!(!d.log_text().contains("guardian"), "{}", d.log_text());
    assert!(!has_alert(&alerts_file(&d.state_dir), "pm", 1200));
}

#[test]
fn the_status_pid_is_the_daemon_not_the_guardian() {
    let t = TestDir::new("gpid");
    let d = Daemon::start(&t, &t.config(&["s1"], "", ""), "s1");
    let daemon = d.daemon_pid();
    assert_ne!(daemon, d.pid());
    let stat = std::fs::read_to_string(format!("/proc/{daemon}/stat")).expect("daemon stat");
    let ppid: u32 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        .expect("ppid");
    assert_eq!(ppid, d.pid(), "the daemon's parent is the guardian");
}
