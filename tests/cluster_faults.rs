//! Regression tests for faults a fault campaign found in the netns lab:
//! short link flaps, a takeover refused during a cut of the cluster
//! traffic, a whole stack killed and restarted, two servers dying in quick
//! succession. Each test injects the fault, then waits (with generous
//! bounds, never assuming speeds) for the cluster to be whole again: the
//! group Online on exactly one server, every server agreeing, and the
//! client answered through the floating IP. Throughout, two checkers run:
//! the address checker (the floating IP never on two servers at once) and
//! the application checker (the group's responder never running on two
//! servers at once).

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    nft_unavailable, own_alerts, stays_whole, wait_own_alerts, wait_whole, web_lab_with_mail,
    web_on_n1, Checkers,
};

/// The cluster ports (the configuration's defaults): heartbeats (UDP) and
/// the peer link (TCP).
const HEARTBEAT_PORT: u16 = 29170;
const PEER_PORT: u16 = 29171;
/// For events that come quickly on a healthy cluster (a server declared
/// down, a group started at startup); long enough for a slow CI machine.
const WAIT: Duration = Duration::from_secs(20);
/// How long the cluster gets to be whole again after a fault: a few
/// heartbeat timeouts (300 ms in the lab) to notice, plus a start of the
/// group that may include the floating IP's duplicate check with its grace
/// (3 s by default) and a retry after a refused start. Generous on purpose:
/// the tests wait for events and assert no speed.
const BACK: Duration = Duration::from_secs(15);
/// Once whole, the cluster must stay so for this long (about seven
/// heartbeat timeouts): nothing left over may undo it.
const STABLE: Duration = Duration::from_secs(2);

/// At most this many flaps in test 1 (see there).
const FLAPS: usize = 5;

/// 1. Every interconnect link of the active server goes down for 0.2 s, less
///    than the heartbeat timeout (300 ms): the server sees its own links
///    down and stops its group, while the other never declares it down.
///    Somebody must run the group again.
///
///    Heartbeats go out every 100 ms, so the silence the other server sees
///    is the flap plus up to two intervals: now and then it does declare
///    the flapping server down, and that flap tests something else (a
///    failover). The cluster must be whole after every flap; the flaps go
///    on (on whichever server runs the group) until one was shorter than
///    the timeout for the other server too, at most [`FLAPS`] times.
#[test]
fn a_short_link_flap_of_the_active_server_does_not_stop_its_group_for_good() {
    let Some((lab, checkers)) = web_on_n1("flap", 2, "") else {
        return;
    };

    let mut active = 1;
    for flap in 1..=FLAPS {
        let peer = 3 - active;
        let down = [&format!("server n{active} is down")[..], "nm 1310"];
        let (downs_before, backs_before) = (
            own_alerts(&lab, peer, &down),
            own_alerts(&lab, active, &["nm 1306"]),
        );
        lab.links(active, false);
        // The fault itself (a flap shorter than the timeout), not a wait.
        std::thread::sleep(Duration::from_millis(200));
        lab.links(active, true);
        // The flapping server saw its links come back (nm 1306; it had
        // seen them go, nm 1305).
        wait_own_alerts(&lab, active, &["nm 1306"], backs_before, WAIT);

        let what = format!("after flap {flap}, of n{active}'s links for 0.2 s");
        let holder = wait_whole(&lab, &[1, 2], BACK, &what);
        stays_whole(&lab, &[1, 2], &holder, STABLE, &what);
        if own_alerts(&lab, peer, &down) == downs_before {
            // n{peer} never declared n{active} down: the case of the bug.
            checkers.assert_never_double();
            return;
        }
        eprintln!("flap {flap}: n{peer} declared n{active} down (the silence exceeded the timeout); once more");
        active = holder[1..].parse().expect("holder is nI");
    }
    panic!("none of {FLAPS} flaps of 0.2 s stayed shorter than the heartbeat timeout for the other server");
}

/// 2. The switch drops every heartbeat and peer-link packet between the two
///    servers for 3.5 s while both stay up with carrier. n2 declares n1 down
///    and tries to take the group over; its floating IP's duplicate check
///    sees n1's address (ARP still passes) and refuses. Once the cut heals
///    no "Online Failure" may stay behind, the group runs on one server,
///    and high availability is back: kill -9 of that server's daemon makes
///    the other take over.
#[test]
fn a_takeover_refused_during_a_cut_leaves_no_failure_and_failover_works_again() {
    if let Some(missing) = nft_unavailable() {
        return missing.skip();
    }
    let Some((mut lab, checkers)) = web_on_n1("refused", 2, "") else {
        return;
    };

    let refused_before = own_alerts(&lab, 2, &["rc 32", "resource vip"]);
    let cut = Instant::now();
    lab.cut_cluster_traffic(true, HEARTBEAT_PORT, PEER_PORT);
    // The cut works: n2 hears nothing of n1 and declares it down.
    lab.wait_server_state(2, "n1", "Offline", WAIT);
    // The fault lasts 3.5 s in all (long enough for the duplicate check's
    // grace to run out and refuse the takeover).
    std::thread::sleep(Duration::from_millis(3500).saturating_sub(cut.elapsed()));
    lab.cut_cluster_traffic(false, HEARTBEAT_PORT, PEER_PORT);
    lab.wait_server_state(2, "n1", "Online", WAIT);
    lab.wait_server_state(1, "n2", "Online", WAIT);
    // n2's takeover was refused (rc 32: n1's address answered for the
    // whole grace of the duplicate check), during the cut or just after.
    wait_own_alerts(&lab, 2, &["rc 32", "resource vip"], refused_before, WAIT);

    let holder = wait_whole(&lab, &[1, 2], BACK, "after the cut healed");
    stays_whole(&lab, &[1, 2], &holder, STABLE, "after the cut healed");

    // High availability is back: the holder's daemon dies (its guardian
    // lives and says so), the other server takes over.
    let (dead, survivor) = if holder == "n1" { (1, 2) } else { (2, 1) };
    lab.kill9_daemon(dead);
    let survivor_name = format!("n{survivor}");
    let holder = wait_whole(
        &lab,
        &[survivor],
        BACK,
        &format!("after kill -9 of {holder}'s daemon"),
    );
    assert_eq!(holder, survivor_name, "the survivor took web over");
    checkers.assert_never_double();
}

/// 3. The active server's whole stack (guardian and daemon) is killed: its
///    floating IP stays on its interface (and its responder runs on), so
///    n2's takeover is refused as a duplicate. 3.3 s later n1's daemon
///    starts again and removes those leftovers. The service must come back.
#[test]
fn a_whole_stack_killed_and_restarted_does_not_leave_the_service_down() {
    let Some((mut lab, checkers)) = web_on_n1("restart", 2, "") else {
        return;
    };

    let refused_before = own_alerts(&lab, 2, &["rc 32", "resource vip"]);
    lab.kill9_all(1);
    let killed = Instant::now();
    lab.wait_server_state(2, "n1", "Offline", WAIT);
    // n2's takeover is refused: its duplicate check keeps seeing n1's
    // address for its grace (3 s), then gives up (rc 32). Waiting for it
    // keeps the order of the fault: the refusal, then the restart (they
    // are a few tens of ms apart otherwise).
    wait_own_alerts(&lab, 2, &["rc 32", "resource vip"], refused_before, WAIT);
    // The fault: n1 stays dead for 3.3 s, then its daemon is started again.
    std::thread::sleep(Duration::from_millis(3300).saturating_sub(killed.elapsed()));
    lab.start(1);

    let holder = wait_whole(&lab, &[1, 2], BACK, "after n1's daemon was started again");
    stays_whole(&lab, &[1, 2], &holder, STABLE, "after n1's restart");
    checkers.assert_never_double();
}

/// 4. Three servers; n1 and, 0.2 s later, n2 die silently (daemon and
///    guardian killed, as in a power loss): n2, the server that should
///    report n1's death (the first survivor in configuration order), dies
///    before it has noticed it, the heartbeat timeout being 0.3 s. Each
///    death must still be reported by exactly one server-down mail. Group
///    `web` runs on n3, first in its order, and must stay there.
#[test]
fn two_servers_dying_in_quick_succession_are_each_reported_by_mail() {
    let Some((mut lab, smtp)) =
        web_lab_with_mail("mail2dead", 3, r#"servers: ["n3", "n1", "n2"],"#)
    else {
        return;
    };
    let checkers = Checkers::start(&lab);
    lab.start_all();
    for i in 1..=3 {
        lab.wait_group_on(i, "web", "n3", WAIT);
    }
    checkers.address.wait_holders(&[3], WAIT);
    checkers.app.wait_holders(&[3], WAIT);

    lab.kill9_all(1);
    let first = Instant::now();
    // The fault: the second death 0.2 s after the first, less than the
    // heartbeat timeout (0.3 s).
    std::thread::sleep(Duration::from_millis(200).saturating_sub(first.elapsed()));
    lab.kill9_all(2);

    lab.wait_server_state(3, "n1", "Offline", WAIT);
    lab.wait_server_state(3, "n2", "Offline", WAIT);
    let holder = wait_whole(&lab, &[3], BACK, "after n1 and n2 died");
    assert_eq!(holder, "n3", "web stayed on n3");
    // The reports are mailed within a bound: wait for both (a missing one
    // fails here, with every mail received).
    for dead in ["n1", "n2"] {
        smtp.wait_mail(&["nm 1310", &format!("server {dead} is down")]);
    }
    // n3's mails go out in order: its test mail, once arrived, proves that
    // nothing else of n3's is still on the way. n1 and n2 are dead.
    lab.ctl_ok(3, &["alert", "test", "--mail"]);
    smtp.wait_mail(&["INFO alert 1011", "on server n3"]);
    let mails = smtp.mails();
    for dead in ["n1", "n2"] {
        let reports: Vec<&String> = mails
            .iter()
            .filter(|m| m.contains("nm 1310") && m.contains(&format!("server {dead} is down")))
            .collect();
        let from = |sender: &str| {
            reports
                .iter()
                .filter(|m| m.contains(&format!("Sent by server {sender} ")))
                .count()
        };
        // Exactly one report, from the survivor or from n2 before it died.
        // Both only when n2 lived past the heartbeat timeout (the 0.2 s
        // gap stretched by a loaded machine), reported n1 and died before
        // n3 heard of its report: the documented limit of a reporter that
        // dies right after reporting (the simulator counts such runs).
        let known_limit = dead == "n1" && from("n2") == 1 && from("n3") == 1;
        assert!(
            reports.len() == 1 || (known_limit && reports.len() == 2),
            "one server-down mail for {dead}; the mails:\n{}",
            mails.join("\n----\n")
        );
    }
    checkers.assert_never_double();
}

/// 5. Chaos campaign (tools/chaos, 8 of 60 runs): after a kill -9 of the
///    daemon, its guardian told the other servers it had died as soon as
///    the floating IPs were gone, before the group's processes had ended.
///    The survivor started the group at once on that notice, and its
///    process ran on two servers for 8 to 49 ms, up to the 2 s of SIGTERM
///    grace for an application slow to end. Here the application ignores
///    SIGTERM and has no floating IP in front of it. Three servers resolve
///    partitions by majority, so a silent server is taken over only after
///    timeout + lease + margin, or on the guardian's notice: the guardian
///    must end the application (by SIGKILL once its grace would pass the
///    daemon's fence deadline) before it tells the others, and before that
///    wait is over. The application never runs on two servers.
#[test]
fn after_a_daemon_death_its_group_never_runs_twice_while_its_process_ends() {
    let Some(mut lab) = common::cluster::Lab::new("slowend", 3) else {
        return;
    };
    let marker = format!("deaf-to-sigterm-{}", std::process::id());
    let script = lab.dir().path().join("deaf.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             # Ignores SIGTERM: only SIGKILL ends it.\n\
             exec sh -c 'trap \"\" TERM; while :; do sleep 1; done' {marker}\n"
        ),
    )
    .expect("write the application");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the application");
    let group = format!(
        r#"Group(name: "deaf", resources: [Resource(name: "app", kind: Exec(start: "{}", start_mode: Async))]),"#,
        script.display()
    );
    let text = lab.config(&group, "partition: (methods: [Majority], action: None),");
    lab.write_config(&text);
    let app = lab.watch_process(&marker);
    lab.start_all();
    for i in 1..=3 {
        lab.wait_group_on(i, "deaf", "n1", WAIT);
    }
    app.wait_holders(&[1], WAIT);

    let killed = Instant::now();
    lab.kill9_daemon(1);
    app.wait_holders(&[2], WAIT);
    eprintln!("n2 runs it {:?} after the kill", killed.elapsed());
    eprintln!("application holders: {:?}", app.changes());
    app.assert_never_double();
}
