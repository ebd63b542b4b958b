//! Seed 002 chapter 4 ("Settings for ExpressCluster X Internet Server
//! Agent") as an administrator follows it, on two lab servers (n1, n2 in
//! network namespaces, tools/lab) sharing one disk, with nginx as the HTTP
//! daemon and the commands under ExpressCluster's names (`clpgrp`,
//! `clpstat`, `clpcfctrl`, `clpcl`, `clpdown`, `clp_httpmon`: symlinks to
//! the binary under test, as `tools/install` makes them).
//!
//! What maps to which step of the seed:
//!
//! - **Step 1**: group `failover1` on servers n1, n2 in this order (1-1),
//!   a floating IP `fip1` (1-2) and a disk resource `disk1` (1-3). The disk
//!   is an ext4 filesystem with multi-mount protection on one image file,
//!   attached to one loop device per server, each server's daemon in a
//!   mount namespace of its own (as `tests/disk_cluster.rs`).
//! - **Step 2**: exec 1 `HTTP` runs `config/templates/http/start.sh` and
//!   `stop.sh` (synchronous), copied with only their settings block
//!   changed: nginx with its document root on the shared disk. Each
//!   server's nginx configuration adds a header naming its server, so the
//!   client sees who answered; the page itself comes from the disk.
//! - **Step 3**: the configuration is what the daemons start with; the
//!   verifications 1-4 run through `clpgrp -s` / `-t` / `-m` and `clpstat`,
//!   each checked as a user would (status on both servers, the page through
//!   the floating IP from the right server, the filesystem mounted there
//!   only). Verification 4, "Reboot OS", is a crash of the active server:
//!   every process of it is stopped and killed at once, the floating IP
//!   goes with the OS, its `/run` is emptied, and its cluster service is
//!   started again; the group must fail over and serve the same page.
//! - **Step 4**: exec 2 `httpmon` runs `config/templates/http-mon/start.sh`
//!   (asynchronous) / `stop.sh` with `clp_httpmon httpwatch -s 127.0.0.1
//!   -i 1 -c 1 -r 2`, depending on exec 1, activation failover threshold 0
//!   and final action "stop group".
//! - **Step 5**: pid monitor `httpmonw` on exec 2, recovery target the
//!   group, reactivation threshold 0, failover threshold 0 and final action
//!   "stop cluster daemon" (`StopClusterService`), as the seed recommends.
//!   The configuration goes to the running cluster with `clpcfctrl --push`;
//!   a group change waits for the cluster service's restart (`clpcl -t -a`,
//!   then each daemon started again), as the product's push asks for a
//!   restart.
//! - **Step 6**: verifications 1-4 again, now also checking
//!   `clp_httpmon`'s messages in the servers' alert logs: ids 1 and 2 on
//!   the server that starts it, 3 on the server that stops it.
//!   Verification 4 is done twice: the seed's "Reboot OS" (`clpdown -r`,
//!   an orderly stop with handover: 3 on the old server, 1 and 2 on the
//!   new), then the crash as in step 3 (1 and 2 on the new server).
//!   Then the error path the whole setup is for: nginx stopped by hand on
//!   the active server, so `clp_httpmon` exits (messages 72 and 6), the pid
//!   monitor turns Error (rm 9), its final action stops that server's
//!   cluster service (rm 15), the group fails over to the other server,
//!   where the page answers, and the stopped server's daemon has exited.
//!
//! Throughout, three checkers sample every server: the floating IP, nginx's
//! master process and the shared filesystem must each never be on two
//! servers at once. Nothing sleeps to synchronise: every wait polls with a
//! deadline.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::agent::templates;
use common::cluster::{group_of, in_netns, server_of, AddressWatch, Lab, MountWatch, ProcessWatch};
use common::disk::*;
use common::nginx::{need_nginx, NGINX};
use common::{alerts_file, count_alerts, run_cmd, wait_for, CmdOut, TestDir, BIN, POLL};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

const GROUP: &str = "failover1";
const VIP: &str = "198.51.100.50";
/// A group move or failover: stops and starts of nginx, a mount (MMP
/// makes one wait up to 2 x 11 s after an unclean end), an unmount.
const MOVE: Duration = Duration::from_secs(60);
/// nginx's master process: the application checker's marker.
const NGINX_MASTER: &str = "nginx: master process";

/// The three checkers of the "never on two servers" invariant.
struct Checkers {
    address: AddressWatch,
    app: ProcessWatch,
    mount: MountWatch,
}

impl Checkers {
    fn wait_holders(&self, want: &[usize], timeout: Duration) {
        self.address.wait_holders(want, timeout);
        self.app.wait_holders(want, timeout);
        self.mount.wait_holders(want, timeout);
    }

    fn assert_never_double(self) {
        let problems: Vec<String> = [
            self.address.check_never_double(),
            self.app.check_never_double(),
            self.mount.check_never_double(),
        ]
        .into_iter()
        .filter_map(Result::err)
        .collect();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

/// The administrator's command line on server i: `NAME ARGS...` through
/// its symlink in `bin`, talking to that server's daemon.
fn clp(lab: &Lab, bin: &Path, i: usize, name: &str, args: &[&str]) -> CmdOut {
    run_cmd(
        Command::new(bin.join(name))
            .args(args)
            .current_dir(lab.state_dir(i))
            .env("UNDERSTUDY_SOCKET", lab.socket(i)),
    )
}

fn clp_ok(lab: &Lab, bin: &Path, i: usize, name: &str, args: &[&str]) -> String {
    let out = clp(lab, bin, i, name, args);
    assert!(
        out.success(),
        "`{name} {}` on n{i} failed: {out:?}\nits log:\n{}",
        args.join(" "),
        lab.log_tail(i)
    );
    out.stdout
}

/// A template of `config/templates/DIR/NAME` as an administrator adjusts
/// it: each `VAR=` line of its settings block replaced by `VAR="VALUE"`,
/// `extra` lines added at the end of the block; nothing else changed.
fn adjusted_template(dir: &str, name: &str, settings: &[(&str, &str)], extra: &[&str]) -> String {
    let path = templates().join(dir).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let (head, rest) = text
        .split_once("# --- settings ---\n")
        .unwrap_or_else(|| panic!("{path:?} has no settings block"));
    let (block, tail) = rest
        .split_once("# --- end of settings ---\n")
        .unwrap_or_else(|| panic!("{path:?}: the settings block does not end"));
    let mut lines: Vec<String> = block.lines().map(str::to_string).collect();
    for (var, value) in settings {
        let at: Vec<usize> = (0..lines.len())
            .filter(|&n| lines[n].starts_with(&format!("{var}=")))
            .collect();
        assert_eq!(at.len(), 1, "{path:?}: setting {var} in {block}");
        lines[at[0]] = format!("{var}=\"{value}\"");
    }
    lines.extend(extra.iter().map(|l| l.to_string()));
    format!(
        "{head}# --- settings ---\n{}\n# --- end of settings ---\n{tail}",
        lines.join("\n")
    )
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `GET /` through `addr`:80 from the client: (the `X-Server` header, the
/// body) of a 200 answer; `None` otherwise.
fn fetch_page(lab: &Lab, addr: &str) -> Option<(String, String)> {
    let ip: Ipv4Addr = addr.parse().unwrap();
    let target = SocketAddr::from((ip, 80));
    in_netns(&lab.client_ns(), move || {
        let mut conn = TcpStream::connect_timeout(&target, Duration::from_millis(500)).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        conn.write_all(b"GET / HTTP/1.0\r\nHost: failover1\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        conn.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status = lines.next()?;
        if status.split_whitespace().nth(1) != Some("200") {
            return None;
        }
        let server = lines.find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-server")
                .then(|| v.trim().to_string())
        })?;
        Some((server, body.to_string()))
    })
}

/// Waits until the client gets `page` through the floating IP from
/// server `server`.
fn wait_page(lab: &Lab, server: &str, page: &str, timeout: Duration) {
    let end = Instant::now() + timeout;
    loop {
        let got = fetch_page(lab, VIP);
        if got
            .as_ref()
            .is_some_and(|(s, body)| s == server && body == page)
        {
            return;
        }
        assert!(
            Instant::now() < end,
            "the client asked {VIP}:80 for {timeout:?}: wanted {page:?} from {server}, last answer {got:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Waits until nobody answers on the floating IP.
fn wait_no_page(lab: &Lab, timeout: Duration) {
    wait_for("nobody to answer on the floating IP", timeout, || {
        fetch_page(lab, VIP).is_none()
    });
}

/// Every live server sees the group in `state` on `current` (`None`:
/// nowhere), and `clpstat` on server i says so in its own words.
fn wait_group(lab: &Lab, bin: &Path, live: &[usize], state: &str, current: Option<&str>) {
    for &i in live {
        lab.wait_status(i, &format!("{GROUP} {state} on {current:?}"), MOVE, |s| {
            group_of(s, GROUP).is_some_and(|g| {
                g["state"] == state
                    && match current {
                        Some(c) => g["current"] == c,
                        None => g["current"].is_null() || g["current"] == "",
                    }
            })
        });
        let text = clp_ok(lab, bin, i, "clpstat", &[]);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(GROUP))
            .unwrap_or_else(|| panic!("no {GROUP} in clpstat on n{i}:\n{text}"));
        assert!(line.contains(state), "clpstat on n{i}: {line}");
        if let Some(c) = current {
            assert!(
                line.contains(&format!("current: {c}")),
                "clpstat on n{i}: {line}"
            );
        }
    }
}

/// How many alerts with this module and id server i has raised itself.
fn own(lab: &Lab, i: usize, module: &str, id: u64) -> usize {
    count_alerts(&alerts_file(&lab.state_dir(i)), module, id)
}

/// `clp_httpmon`'s messages 1, 2, 3 raised by each server so far.
type Marks = [[usize; 3]; 2];

fn marks(lab: &Lab) -> Marks {
    let m = |i| [1, 2, 3].map(|id| own(lab, i, "httpmon", id));
    [m(1), m(2)]
}

/// Waits until, since `before`, `started` (if any) has raised messages 1
/// and 2 and `stopped` (if any) message 3, and checks no server raised any
/// other of the three (each counted once more at most).
fn wait_messages(lab: &Lab, before: Marks, started: Option<usize>, stopped: Option<usize>) {
    let mut want = before;
    if let Some(s) = started {
        want[s - 1][0] += 1;
        want[s - 1][1] += 1;
    }
    if let Some(s) = stopped {
        want[s - 1][2] += 1;
    }
    wait_for(
        &format!("clp_httpmon's messages: 1, 2 on {started:?}, 3 on {stopped:?}"),
        MOVE,
        || {
            let now = marks(lab);
            (0..2).all(|s| (0..3).all(|k| now[s][k] >= want[s][k]))
        },
    );
    assert_eq!(marks(lab), want, "clp_httpmon's messages 1, 2, 3 on n1, n2");
}

/// The pids of every process in network namespace `ns`.
fn ns_pids(ns: &str) -> Vec<i32> {
    run_cmd(Command::new("ip").args(["netns", "pids", ns]))
        .stdout
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// "Reboot OS" as a crash: every process of server i is stopped, then
/// killed (its daemon and guardian, nginx, clp_httpmon: its shared
/// filesystem goes with its mount namespace), the floating IP goes with
/// the OS's network, and `/run` (where clp_httpmon registers) is emptied,
/// as at boot. The caller starts the cluster service again.
fn crash(lab: &mut Lab, i: usize) {
    let ns = lab.ns(i);
    let stopped = ns_pids(&ns);
    for &p in &stopped {
        let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
    }
    if lab.addresses(i).iter().any(|a| a == VIP) {
        lab.must_ip(&ns, &["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    }
    if lab.is_running(i) {
        lab.kill9_all(i);
    }
    for &p in &stopped {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    wait_for(&format!("every process of n{i} to end"), MOVE, || {
        let left = ns_pids(&ns);
        for &p in &left {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        left.is_empty()
    });
    let run = lab.state_dir(i).join("run");
    if run.exists() {
        std::fs::remove_dir_all(&run).unwrap();
    }
}

/// The resource `name` of the group in server i's status.
fn resource(lab: &Lab, i: usize, name: &str) -> Value {
    let s = lab.status(i);
    group_of(&s, GROUP)
        .and_then(|g| g["resources"].as_array())
        .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no resource {name} in n{i}'s status: {s}"))
}

fn monitor_state(s: &Value, name: &str) -> String {
    s["monitors"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .and_then(|m| m["state"].as_str())
        .unwrap_or("")
        .to_string()
}

#[test]
fn chapter_4_workflow_with_nginx_a_shared_disk_and_clp_httpmon() {
    if let Some(missing) = disk_unavailable().or_else(need_nginx) {
        return missing.skip();
    }
    // What the Debian init script stops nginx with: it waits until the
    // process has ended.
    let Some(ssd) = SBIN_PATHS
        .iter()
        .map(|d| Path::new(d).join("start-stop-daemon"))
        .find(|p| p.is_file())
    else {
        return common::skip::missing(
            "start-stop-daemon",
            "start-stop-daemon is not installed (Debian package dpkg)",
        )
        .skip();
    };
    let shared = TestDir::new("c4disk");
    let mut disk = LoopDisk::ext4(shared.path(), "shared.img", 64, &["-O", "mmp"]);
    disk.attach();
    let nums = [dev_num(&disk.devices[0]), dev_num(&disk.devices[1])];
    let Some(mut lab) = Lab::new("ch4", 2) else {
        return;
    };
    lab.run_in_state_dirs();
    let dir = lab.dir().path().to_path_buf();
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();

    // The administrator's commands, by ExpressCluster's names.
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    for name in [
        "clpgrp",
        "clpstat",
        "clpcfctrl",
        "clpcl",
        "clpdown",
        "clp_httpmon",
    ] {
        std::os::unix::fs::symlink(BIN, bin.join(name)).unwrap();
    }

    // Each server: its device of the shared disk, and nginx's settings
    // (document root on the shared disk; the header names the server).
    for i in 1..=2 {
        let state = lab.state_dir(i);
        std::fs::create_dir_all(state.join("tmp")).unwrap();
        std::os::unix::fs::symlink(&disk.devices[i - 1], state.join("disk")).unwrap();
        let s = state.display();
        std::fs::write(
            state.join("nginx.conf"),
            format!(
                r#"user root;
worker_processes 1;
error_log {s}/nginx-error.log;
pid {s}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {s}/nginx-access.log;
    client_body_temp_path {s}/tmp/body;
    proxy_temp_path {s}/tmp/proxy;
    fastcgi_temp_path {s}/tmp/fastcgi;
    uwsgi_temp_path {s}/tmp/uwsgi;
    scgi_temp_path {s}/tmp/scgi;
    server {{
        listen 80;
        root {www};
        add_header X-Server n{i} always;
    }}
}}
"#,
                www = mnt.join("www").display()
            ),
        )
        .unwrap();
    }

    // ---- Step 1 and step 2: the group, with exec 1 from the templates.
    // The scripts run in their server's state folder ($PWD).
    let nginx = format!("{NGINX} -e $PWD/nginx-error.log -c $PWD/nginx.conf");
    let httpd_stop = format!(
        "{} --stop --quiet --retry TERM/10/KILL/5 --pidfile $PWD/nginx.pid --exec {NGINX}",
        ssd.display()
    );
    write_script(
        &dir.join("http-start.sh"),
        &adjusted_template("http", "start.sh", &[("HTTPD_START", &nginx)], &[]),
    );
    write_script(
        &dir.join("http-stop.sh"),
        &adjusted_template("http", "stop.sh", &[("HTTPD_STOP", &httpd_stop)], &[]),
    );
    let fip_disk = format!(
        r#"Resource(name: "fip1", kind: Fip(address: "{VIP}/24", duplicate_check_ms: 50)),
            Resource(name: "disk1", kind: Disk(device: "/proc/self/cwd/disk", mount_point: "{mnt}",
                                               fs_type: "ext4", fsck: Never, kill_grace: 1)),
            Resource(name: "HTTP", kind: Exec(start: "{d}/http-start.sh", stop: Some("{d}/http-stop.sh"))),"#,
        mnt = mnt.display(),
        d = dir.display()
    );
    let step2 = format!(
        r#"Group(name: "{GROUP}", servers: ["n1", "n2"], resources: [
            {fip_disk}
        ])"#
    );
    let text = lab.config(&step2, "");
    lab.write_config(&text);
    // Checked where the administrator works, on n1 (its device).
    let out = run_cmd(
        Command::new(BIN)
            .args(["config", "check"])
            .arg(lab.config_path())
            .current_dir(lab.state_dir(1)),
    );
    assert!(out.success(), "config check of step 2: {out:?}");

    let checkers = Checkers {
        address: lab.watch_address(VIP),
        app: lab.watch_process(NGINX_MASTER),
        mount: lab.watch_mount(&nums),
    };

    // ---- Step 3: the cluster runs it; the page is written on n1's disk.
    lab.start_all();
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n1"));
    checkers.wait_holders(&[1], MOVE);
    let pid1 = lab.daemon_pid(1);
    let www = seen_by(pid1, &mnt.join("www"));
    std::fs::create_dir(&www).unwrap();
    let page = "chapter 4: written on n1, served from the shared disk\n";
    std::fs::write(www.join("index.html"), page).unwrap();
    wait_page(&lab, "n1", page, MOVE);

    // Verification 2 (stop), then 1 (start), 3 (move both ways), 4 (crash).
    clp_ok(&lab, &bin, 1, "clpgrp", &["-t", GROUP]);
    wait_group(&lab, &bin, &[1, 2], "Offline", None);
    checkers.wait_holders(&[], MOVE);
    wait_no_page(&lab, MOVE);
    clp_ok(&lab, &bin, 1, "clpgrp", &["-s", GROUP]);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n1"));
    checkers.wait_holders(&[1], MOVE);
    wait_page(&lab, "n1", page, MOVE);
    clp_ok(&lab, &bin, 1, "clpgrp", &["-m", GROUP]);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n2"));
    checkers.wait_holders(&[2], MOVE);
    wait_page(&lab, "n2", page, MOVE);
    clp_ok(&lab, &bin, 2, "clpgrp", &["-m", GROUP]);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n1"));
    checkers.wait_holders(&[1], MOVE);
    wait_page(&lab, "n1", page, MOVE);

    crash(&mut lab, 1);
    wait_group(&lab, &bin, &[2], "Online", Some("n2"));
    checkers.wait_holders(&[2], MOVE);
    wait_page(&lab, "n2", page, MOVE);
    lab.start(1);
    lab.wait_server_state(2, "n1", "Online", MOVE);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n2"));
    checkers.wait_holders(&[2], MOVE);
    wait_page(&lab, "n2", page, MOVE);
    let history =
        std::fs::read_to_string(lab.state_dir(2).join("log").join("HTTP.log")).unwrap_or_default();
    assert!(
        history.contains("failover start on another server than its home"),
        "exec 1's script log on n2:\n{history}"
    );

    // ---- Step 4 and step 5: exec 2 with clp_httpmon, the pid monitor.
    let mon_settings: &[&str] = &[
        // clp_httpmon is installed in the lab's bin; its registry is in
        // the server's own /run.
        "PATH=\"BIN:$PATH\"",
        "export UNDERSTUDY_AGENT_DIR=\"$PWD/run/agents\"",
    ];
    let mon_settings: Vec<String> = mon_settings
        .iter()
        .map(|l| l.replace("BIN", &bin.display().to_string()))
        .collect();
    let mon_settings: Vec<&str> = mon_settings.iter().map(String::as_str).collect();
    write_script(
        &dir.join("httpmon-start.sh"),
        &adjusted_template(
            "http-mon",
            "start.sh",
            &[
                ("IDENTIFIER", "httpwatch"),
                ("OPTIONS", "-s 127.0.0.1 -n 80 -i 1 -c 1 -r 2"),
            ],
            &mon_settings,
        ),
    );
    write_script(
        &dir.join("httpmon-stop.sh"),
        &adjusted_template(
            "http-mon",
            "stop.sh",
            &[("IDENTIFIER", "httpwatch"), ("STOP_WAIT", "10")],
            &mon_settings,
        ),
    );
    let step5 = format!(
        r#"Group(name: "{GROUP}", servers: ["n1", "n2"], resources: [
            {fip_disk}
            Resource(name: "httpmon",
                kind: Exec(start: "{d}/httpmon-start.sh", stop: Some("{d}/httpmon-stop.sh"), start_mode: Async),
                depends: Some(["HTTP"]),
                activation: (failover_threshold: 0, final_action: StopGroup)),
        ])"#,
        d = dir.display()
    );
    let monitors = format!(
        r#"monitors: [Monitor(name: "httpmonw", kind: Pid(), target: "httpmon", interval: 1, retry: 0,
            recovery: (target: Group("{GROUP}"), reactivation_threshold: 0, failover_threshold: 0,
                       final_action: StopClusterService))],"#
    );
    let new = lab.dir().write("step5.ron", &lab.config(&step5, &monitors));
    clp_ok(
        &lab,
        &bin,
        1,
        "clpcfctrl",
        &["--push", new.to_str().unwrap()],
    );
    for i in 1..=2 {
        lab.wait_status(i, "a restart pending", MOVE, |s| {
            s["restart_pending"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        });
    }
    // The cluster service restarts with it (the seed reboots).
    clp_ok(&lab, &bin, 2, "clpcl", &["-t", "-a"]);
    for i in 1..=2 {
        let status = lab.wait_exit(i, MOVE);
        assert!(status.success(), "n{i} after clpcl -t -a: {status}");
    }
    checkers.wait_holders(&[], MOVE);
    for i in 1..=2 {
        let run = lab.state_dir(i).join("run");
        if run.exists() {
            std::fs::remove_dir_all(&run).unwrap();
        }
    }

    // ---- Step 6: the verifications again, with clp_httpmon's messages.
    let before = marks(&lab);
    lab.start_all();
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n1"));
    checkers.wait_holders(&[1], MOVE);
    wait_page(&lab, "n1", page, MOVE);
    wait_messages(&lab, before, Some(1), None);
    // Verification 2: stopped on n1 (3 there).
    let before = marks(&lab);
    clp_ok(&lab, &bin, 2, "clpgrp", &["-t", GROUP]);
    wait_group(&lab, &bin, &[1, 2], "Offline", None);
    checkers.wait_holders(&[], MOVE);
    wait_messages(&lab, before, None, Some(1));
    // Verification 1: started on n1 (1 and 2 there).
    let before = marks(&lab);
    clp_ok(&lab, &bin, 1, "clpgrp", &["-s", GROUP]);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n1"));
    checkers.wait_holders(&[1], MOVE);
    wait_page(&lab, "n1", page, MOVE);
    wait_messages(&lab, before, Some(1), None);
    // Verification 3: to n2 and back.
    let before = marks(&lab);
    clp_ok(&lab, &bin, 1, "clpgrp", &["-m", GROUP]);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n2"));
    checkers.wait_holders(&[2], MOVE);
    wait_page(&lab, "n2", page, MOVE);
    wait_messages(&lab, before, Some(2), Some(1));
    let before = marks(&lab);
    clp_ok(&lab, &bin, 1, "clpgrp", &["-m", GROUP, "-a", "n1"]);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n1"));
    checkers.wait_holders(&[1], MOVE);
    wait_page(&lab, "n1", page, MOVE);
    wait_messages(&lab, before, Some(1), Some(2));
    // Verification 4, the seed's "Reboot OS": n1 stops its cluster service
    // with handover, the group fails over to n2, then n1 reboots.
    let before = marks(&lab);
    clp_ok(&lab, &bin, 1, "clpdown", &["-r"]);
    wait_group(&lab, &bin, &[2], "Online", Some("n2"));
    checkers.wait_holders(&[2], MOVE);
    wait_page(&lab, "n2", page, MOVE);
    let status = lab.wait_exit(1, MOVE);
    assert!(status.success(), "n1 after clpdown -r: {status}");
    wait_messages(&lab, before, Some(2), Some(1));
    assert!(
        lab.os_actions()
            .contains(&("n1".to_string(), "reboot".to_string())),
        "the reboot was not asked for: {:?}",
        lab.os_actions()
    );
    crash(&mut lab, 1); // what the reboot ends (nothing should be left)
    lab.start(1);
    lab.wait_server_state(2, "n1", "Online", MOVE);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n2"));
    // Verification 4 again, as a crash of n2: n1 takes over (1 and 2
    // there; nothing stopped clp_httpmon on n2).
    let before = marks(&lab);
    crash(&mut lab, 2);
    wait_group(&lab, &bin, &[1], "Online", Some("n1"));
    checkers.wait_holders(&[1], MOVE);
    wait_page(&lab, "n1", page, MOVE);
    wait_messages(&lab, before, Some(1), None);
    lab.start(2);
    lab.wait_server_state(1, "n2", "Online", MOVE);
    wait_group(&lab, &bin, &[1, 2], "Online", Some("n1"));
    checkers.wait_holders(&[1], MOVE);

    // ---- The error path: nginx stopped by hand on n1.
    lab.wait_status(1, "httpmonw Normal", MOVE, |s| {
        monitor_state(s, "httpmonw") == "Normal"
    });
    let httpmon_pid = resource(&lab, 1, "httpmon")["pid"].as_u64();
    assert!(httpmon_pid.is_some(), "exec 2 has a process on n1");
    let (rm9, rm15) = (own(&lab, 1, "rm", 9), own(&lab, 1, "rm", 15));
    let (m72, m6) = (own(&lab, 1, "httpmon", 72), own(&lab, 1, "httpmon", 6));
    let before = marks(&lab);
    let out = lab.exec(
        &lab.ns(1),
        &[
            NGINX,
            "-c",
            lab.state_dir(1).join("nginx.conf").to_str().unwrap(),
            "-s",
            "stop",
        ],
    );
    assert!(out.success(), "nginx -s stop on n1: {out:?}");
    wait_for("clp_httpmon's error exit on n1 (72, then 6)", MOVE, || {
        own(&lab, 1, "httpmon", 72) > m72 && own(&lab, 1, "httpmon", 6) > m6
    });
    wait_for(
        "the pid monitor's error and final action on n1",
        MOVE,
        || own(&lab, 1, "rm", 9) > rm9 && own(&lab, 1, "rm", 15) > rm15,
    );
    let script_log = std::fs::read_to_string(lab.state_dir(1).join("log").join("httpmon.log"))
        .unwrap_or_default();
    assert!(
        script_log.contains("clp_httpmon httpwatch ended with exit status 1"),
        "exec 2's script log on n1:\n{script_log}"
    );
    wait_group(&lab, &bin, &[2], "Online", Some("n2"));
    checkers.wait_holders(&[2], MOVE);
    wait_page(&lab, "n2", page, MOVE);
    // The final action: n1's cluster service has stopped.
    let status = lab.wait_exit(1, MOVE);
    assert!(status.success(), "n1 after its final action: {status}");
    let out = clp(&lab, &bin, 1, "clpstat", &[]);
    assert!(!out.success(), "clpstat on n1 answered: {out:?}");
    assert!(
        out.stderr.contains("not running"),
        "clpstat on n1 says: {out:?}"
    );
    let s2 = lab.wait_server_state(2, "n1", "Offline", MOVE);
    assert!(server_of(&s2, "n1").is_some());
    // clp_httpmon ended by itself on n1 (no 3 there), started on n2.
    let mut want = before;
    want[1][0] += 1;
    want[1][1] += 1;
    wait_for("clp_httpmon's 1 and 2 on n2", MOVE, || {
        let now = marks(&lab);
        now[1][0] >= want[1][0] && now[1][1] >= want[1][1]
    });
    assert_eq!(
        marks(&lab),
        want,
        "clp_httpmon's messages 1, 2, 3 on n1, n2"
    );
    lab.wait_status(2, "httpmonw Normal on n2", MOVE, |s| {
        monitor_state(s, "httpmonw") == "Normal"
    });
    checkers.assert_never_double();
}
