//! The floating IP resource end to end: the daemon runs inside a server
//! network namespace, a client namespace on the same link checks what a user
//! would check (does the address answer?). Needs root and `ip`; skips with a
//! printed reason elsewhere.

#[path = "common/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_understudy");

fn skip_reason() -> Option<skip::Missing> {
    skip::need_root("network namespaces need root")
        .or_else(|| skip::need_program("ip", "iproute2"))
        .or_else(|| skip::need_program("ping", "iputils-ping"))
}

fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("sh runs")
}

fn must(cmd: &str) {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair: `srv` (198.51.100.1/24 on `vs`) and
/// `cli` (198.51.100.2/24 on `vc`). Removed on drop.
struct Lab {
    srv: String,
    cli: String,
    dir: PathBuf,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let id = format!("{}{}", tag, std::process::id());
        let lab = Lab {
            srv: format!("usfs{id}"),
            cli: format!("usfc{id}"),
            dir: std::env::temp_dir().join(format!("us-fipd-{id}")),
        };
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(&lab.dir).unwrap();
        let (s, c) = (&lab.srv, &lab.cli);
        must(&format!("ip netns add {s} && ip netns add {c}"));
        must(&format!(
            "ip link add vs netns {s} type veth peer name vc netns {c} && \
             ip -n {s} link set lo up && ip -n {c} link set lo up && \
             ip -n {s} link set vs up && ip -n {c} link set vc up && \
             ip -n {s} addr add 198.51.100.1/24 dev vs && ip -n {c} addr add 198.51.100.2/24 dev vc"
        ));
        lab
    }

    fn client_reaches(&self, addr: &str) -> bool {
        sh(&format!("ip netns exec {} ping -c1 -W1 {addr}", self.cli))
            .status
            .success()
    }

    fn srv_has(&self, addr: &str) -> bool {
        let out = sh(&format!("ip -n {} -4 addr show dev vs", self.srv));
        String::from_utf8_lossy(&out.stdout).contains(&format!("{addr}/"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip netns del {}; ip netns del {}",
            self.srv, self.cli
        ));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    fn start(lab: &Lab, config: &str) -> Daemon {
        let cfg = lab.dir.join("cluster.ron");
        std::fs::write(&cfg, config).unwrap();
        let socket = lab.dir.join("understudy.sock");
        let log = std::fs::File::create(lab.dir.join("daemon.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.srv, BIN, "run", "--server", "s1"])
            .arg("--config")
            .arg(&cfg)
            .arg("--state-dir")
            .arg(lab.dir.join("state"))
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let d = Daemon { child, socket };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !d.cli(&["status"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "daemon did not answer: {}",
                d.log(lab)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    /// Waits for the daemon (its guardian: `ip netns exec` execs it) to exit.
    fn wait_exit(&mut self, lab: &Lab) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit: {}",
                self.log(lab)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self, lab: &Lab) -> String {
        std::fs::read_to_string(lab.dir.join("daemon.log")).unwrap_or_default()
    }

    fn alerts(&self) -> String {
        String::from_utf8_lossy(&self.cli(&["alerts", "-n", "100"]).stdout).into_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.cli(&["cluster", "stop"]);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(interface: &str) -> String {
    format!(
        r#"Cluster(name: "fiplab", servers: [Server(name: "s1", interconnects: ["198.51.100.1"])],
            os_actions: (shutdown: ["/bin/true"], reboot: ["/bin/true"]),
            groups: [Group(name: "web", startup: Manual, resources: [
                Resource(name: "vip", kind: Fip(address: "198.51.100.10/24"{interface}),
                         activation: (failover_threshold: 0, final_action: NoOperation)),
            ])])"#
    )
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn path_exists(p: &Path) -> bool {
    p.exists()
}

#[test]
fn floating_ip_follows_the_group() {
    if let Some(missing) = skip_reason() {
        return missing.skip();
    }
    let lab = Lab::new("a");
    // The interface is found from the address's network.
    let mut d = Daemon::start(&lab, &config(""));
    assert!(!lab.client_reaches("198.51.100.10"), "nobody holds it yet");

    let out = d.cli(&["group", "start", "web"]);
    assert!(out.status.success(), "{}\n{}", text(&out), d.log(&lab));
    assert!(lab.srv_has("198.51.100.10"));
    assert!(lab.client_reaches("198.51.100.10"));

    let out = d.cli(&["group", "stop", "web"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!lab.srv_has("198.51.100.10"));
    assert!(!lab.client_reaches("198.51.100.10"));

    // SIGTERM with the group online leaves no address behind.
    assert!(d.cli(&["group", "start", "web"]).status.success());
    assert!(lab.srv_has("198.51.100.10"));
    let out = d.cli(&["cluster", "stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!lab.srv_has("198.51.100.10"));
    // The daemon exits once it has answered the connections in flight
    // (until then it may still answer `status`), removing its socket.
    let status = d.wait_exit(&lab);
    assert!(status.success(), "{status}: {}", d.log(&lab));
    assert!(!path_exists(&d.socket));
}

#[test]
fn activation_refused_when_another_host_holds_the_address() {
    if let Some(missing) = skip_reason() {
        return missing.skip();
    }
    let lab = Lab::new("b");
    must(&format!(
        "ip -n {} addr add 198.51.100.10/24 dev vc",
        lab.cli
    ));
    let d = Daemon::start(&lab, &config(r#", interface: "vs""#));
    let out = d.cli(&["group", "start", "web"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        !lab.srv_has("198.51.100.10"),
        "the address must not be added"
    );
    let alerts = d.alerts();
    assert!(alerts.contains("rc 32"), "{alerts}");
    assert!(
        alerts.contains("duplicate") || alerts.contains("already answers"),
        "{alerts}"
    );
    let status = String::from_utf8_lossy(&d.cli(&["status"]).stdout).into_owned();
    assert!(status.contains("Online Failure"), "{status}");
}
