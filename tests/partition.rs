//! Partition safety in the netns lab (issue 11): faults that leave every
//! server up while the cluster cannot hear one of them, or not both ways:
//! a switch that isolates a server whose links keep carrier, a one-way cut,
//! a frozen daemon. With partition resolution by majority (`partition:
//! (methods: [Majority], ...)`), the side without a majority releases its
//! groups at once, a daemon frozen past its lease is ended by its guardian,
//! and the majority takes the groups over only after timeout + lease +
//! margin (or at once on the guardian's death notice).
//!
//! Throughout every test two checkers run: the address checker (the
//! floating IP never on two servers at once) and the application checker
//! (the group's responder never running on two servers at once). Each test
//! goes through its whole fault schedule even when the cluster does not
//! answer as it should, and then fails listing first what the checkers saw
//! on two servers, then what else went wrong.
//!
//! `PARTITION_OFF=1` in the environment runs the same schedules without the
//! `partition` field: the behaviour without partition resolution, to see
//! what the tests catch then (a debugging switch: every fault test but the
//! short freeze fails with it).

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    etcd_unavailable, nft_unavailable, own_alerts, try_wait_whole, web_group, web_lab_on,
    web_on_n1, web_view, whole, Checkers, Lab, FORM_WAIT,
};
use common::pid_alive;

/// The lab's heartbeat timeout (interval 100 ms; see `lab_config`).
const TIMEOUT_MS: u64 = 300;
/// The partition lease and the survivors' margin of the configuration.
const LEASE_MS: u64 = 300;
const MARGIN_MS: u64 = 1000;
/// How long the survivors wait before they take a silent server's groups:
/// timeout + lease + margin.
const TAKEOVER_MS: u64 = TIMEOUT_MS + LEASE_MS + MARGIN_MS;
const TAKEOVER: Duration = Duration::from_millis(TAKEOVER_MS);
/// The bound of every wait for the cluster's answer to a fault (a release,
/// a takeover), from the fault's start: three times [`TAKEOVER`].
const BOUND: Duration = Duration::from_millis(3 * TAKEOVER_MS);
/// The bound of the cluster's return to wholeness once a fault is over:
/// [`BOUND`] plus a start of the group (its scripts, the floating IP's
/// duplicate check, a retry) on a loaded machine.
const BACK: Duration = Duration::from_millis(3 * TAKEOVER_MS + 5000);
/// Once whole, the cluster must stay so for this long: nothing left over
/// may undo it.
const STABLE: Duration = Duration::from_secs(2);
/// How long the switch isolates a server, or cuts it one way (the fault
/// itself).
const CUT: Duration = Duration::from_secs(5);

/// Whether `PARTITION_OFF` asks for the schedules without partition
/// resolution (set, and neither "" nor "0").
fn partition_off() -> bool {
    std::env::var("PARTITION_OFF").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The `partition` field of every test's configuration: majority, the
/// tie-breaker n1 (it decides the even split of two servers), the lease
/// and margin above, and no action besides the release (the default would
/// shut the OS down). Empty with `PARTITION_OFF`.
fn partition() -> String {
    if partition_off() {
        eprintln!("PARTITION_OFF: without partition resolution");
        return String::new();
    }
    format!(
        r#"partition: (methods: [Majority], tie_breaker: "n1", lease_ms: {LEASE_MS},
                   margin_ms: {MARGIN_MS}, action: None),"#
    )
}

/// What a test found wrong besides the checkers' verdict, and when its
/// faults began and ended. The schedule goes on after a finding, so that
/// the checkers see the whole of it.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    /// (time from the start of the checkers, what happened).
    marks: Vec<(Duration, String)>,
}

impl Findings {
    /// Notes that `what` happens now, on the checkers' clock.
    fn mark(&mut self, checkers: &Checkers, what: &str) {
        self.marks
            .push((checkers.started.elapsed(), what.to_string()));
    }

    /// Keeps `r`'s error, if any, under `what`; its value otherwise.
    fn note<T>(&mut self, what: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|e| {
            eprintln!("FINDING: {what}: {e}");
            self.problems.push(format!("{what}: {e}"));
        })
        .ok()
    }

    /// Keeps `problem` when `ok` is false.
    fn expect(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.note::<()>("expected", Err(problem()));
        }
    }

    /// Stops the checkers; fails the test with every double holding they
    /// saw, then every finding.
    fn finish(self, checkers: Checkers) {
        let marks: Vec<String> = self
            .marks
            .iter()
            .map(|(at, what)| format!("{:.3}s {what}", at.as_secs_f64()))
            .collect();
        let timeline = format!(
            "faults: {}\naddress holders: {:?}\napplication holders: {:?}",
            marks.join(", "),
            checkers.address.changes(),
            checkers.app.changes()
        );
        let mut problems = Vec::new();
        if let Err(e) = checkers.check_never_double() {
            problems.push(format!("CHECKERS: {e}"));
        }
        problems.extend(self.problems);
        assert!(
            problems.is_empty(),
            "{}\n(times from the start of the checkers)\n{timeline}",
            problems.join("\n")
        );
        eprintln!("(times from the start of the checkers)\n{timeline}");
    }
}

/// Polls `check` until it holds or `deadline` passes; how long it took,
/// or that `what` did not happen.
fn until(
    what: &str,
    deadline: Instant,
    mut check: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if check() {
            return Ok(start.elapsed());
        }
        if Instant::now() >= deadline {
            return Err(format!("{what}: not within {:?}", start.elapsed()));
        }
        std::thread::sleep(common::POLL);
    }
}

/// Whether server i's status says it runs `web` (names itself as current,
/// not Offline). `false` when it does not answer.
fn runs_web(lab: &Lab, i: usize) -> bool {
    lab.try_status(i).is_some_and(|s| {
        let (state, current) = web_view(&s);
        current == format!("n{i}") && state != "Offline"
    })
}

/// Waits until server i holds neither the address nor the responder (as the
/// checkers see it) and its status no longer shows it running `web`.
fn wait_released(
    lab: &Lab,
    checkers: &Checkers,
    i: usize,
    deadline: Instant,
) -> Result<Duration, String> {
    until(&format!("n{i} to release web"), deadline, || {
        !checkers.address.holders().contains(&i)
            && !checkers.app.holders().contains(&i)
            && !runs_web(lab, i)
    })
    .map_err(|e| {
        format!(
            "{e} (address on {:?}, responder on {:?}, n{i} runs it by its status: {})",
            checkers.address.holders(),
            checkers.app.holders(),
            runs_web(lab, i)
        )
    })
}

/// Waits until `servers` agree that `web` runs on one of them, the client
/// gets its answer from it, and the checkers see the address and the
/// responder there and nowhere else; returns that server.
fn wait_taken(
    lab: &Lab,
    checkers: &Checkers,
    servers: &[usize],
    deadline: Instant,
) -> Result<usize, String> {
    let mut last = String::new();
    let mut taker = 0;
    until("web whole on the majority", deadline, || {
        match whole(lab, servers) {
            Ok(holder) => {
                let k: usize = holder[1..].parse().expect("holder is nI");
                let (address, app) = (checkers.address.holders(), checkers.app.holders());
                if address == [k] && app == [k] {
                    taker = k;
                    return true;
                }
                last =
                    format!("{holder} runs it, but address on {address:?}, responder on {app:?}");
            }
            Err(e) => last = e,
        }
        false
    })
    .map_err(|e| format!("{e}: {last}"))?;
    Ok(taker)
}

/// Starts again, as a service manager would, every server whose guardian
/// has exited; returns them. Then waits (within [`BACK`]) until the cluster
/// of all servers is whole and stays so; returns who runs `web`.
fn restart_dead_and_settle(lab: &mut Lab, f: &mut Findings, what: &str) -> Option<String> {
    let all: Vec<usize> = (1..=lab.servers()).collect();
    for &i in &all {
        if let Some(status) = lab.try_exit(i) {
            eprintln!("{what}: n{i}'s guardian exited ({status}); started again");
            lab.start(i);
        }
    }
    let holder = f.note(
        &format!("{what}: the cluster whole again"),
        try_wait_whole(lab, &all, BACK),
    )?;
    f.note(
        &format!("{what}: the cluster stays whole"),
        common::cluster::check_stays_whole(lab, &all, &holder, STABLE),
    );
    Some(holder)
}

/// a. Three servers, majority. The switch isolates n1, which runs `web`,
///    for 5 s; its links keep their carrier. n1 has lost its majority: it
///    must release `web` at once. n2 and n3 still hear each other: one of
///    them must take it over within 3 x (timeout + lease + margin), the
///    client reaching it through the floating IP. After n1 rejoins, the
///    cluster must be whole (the group Online on exactly one server, its
///    address and its process there, every server agreeing, the client
///    answered) and stay so. The checkers: never two copies.
#[test]
fn a_server_isolated_by_the_switch_releases_and_the_majority_takes_over() {
    if let Some(missing) = nft_unavailable() {
        return missing.skip();
    }
    let Some((mut lab, checkers)) = web_on_n1("iso3", 3, &partition()) else {
        return;
    };
    let mut f = Findings::default();

    let cut = Instant::now();
    lab.isolate(1, true);
    f.mark(&checkers, "n1 isolated");
    let deadline = cut + BOUND;
    if let Some(after) = f.note(
        "while isolated",
        wait_released(&lab, &checkers, 1, deadline),
    ) {
        eprintln!("n1 released web {:?} after the isolation", after);
    }
    if let Some(k) = f.note(
        "while n1 is isolated",
        wait_taken(&lab, &checkers, &[2, 3], deadline),
    ) {
        eprintln!(
            "n{k} took web over {:?} after the isolation (timeout + lease + margin: {TAKEOVER:?})",
            cut.elapsed()
        );
    }
    // The fault lasts CUT in all.
    std::thread::sleep(CUT.saturating_sub(cut.elapsed()));
    lab.isolate(1, false);
    f.mark(&checkers, "n1 rejoined");

    restart_dead_and_settle(&mut lab, &mut f, "after n1 rejoined");
    f.finish(checkers);
}

/// b. Three servers, majority. n1's daemon (not its guardian), which runs
///    `web`, is frozen (SIGSTOP) for 2 s, then thawed. That is past its
///    lease: its guardian must end it, which releases what it held and tells
///    the others, and n2 or n3 must run `web` within 3 x (timeout + lease +
///    margin) of the freeze, both agreeing and the client answered. n1's
///    guardian exits after a death; it is started again as a service
///    manager would, and the cluster must be whole and stay so. The
///    checkers: never two copies.
#[test]
fn a_daemon_frozen_past_its_lease_is_ended_by_its_guardian_and_the_majority_takes_over() {
    let Some((mut lab, checkers)) = web_on_n1("freeze2s", 3, &partition()) else {
        return;
    };
    let mut f = Findings::default();

    let frozen = Instant::now();
    let pid = lab.freeze(1, true);
    f.mark(&checkers, "n1's daemon frozen");
    let deadline = frozen + BOUND;
    // The fault: frozen for 2 s. Meanwhile, when did the daemon die?
    let mut died = None;
    while frozen.elapsed() < Duration::from_secs(2) {
        if died.is_none() && !pid_alive(pid) {
            died = Some(frozen.elapsed());
        }
        std::thread::sleep(common::POLL);
    }
    lab.freeze(1, false);
    f.mark(&checkers, "n1's daemon thawed");
    if f.note(
        "the frozen daemon",
        until(
            &format!("n1's frozen daemon (pid {pid}) to be ended by its guardian"),
            deadline,
            || !pid_alive(pid),
        ),
    )
    .is_some()
    {
        let died = died.unwrap_or_else(|| frozen.elapsed());
        eprintln!("n1's daemon was gone {died:?} after the freeze began");
    }
    if let Some(k) = f.note(
        "after n1's freeze",
        wait_taken(&lab, &checkers, &[2, 3], deadline),
    ) {
        eprintln!("n{k} ran web {:?} after the freeze", frozen.elapsed());
    }
    // What the user sees of n1: its guardian's exit (a death, not an
    // orderly end), as with any dead daemon.
    let exit = until("n1's guardian to exit", deadline, || {
        lab.try_exit(1).is_some()
    })
    .ok()
    .and_then(|_| lab.try_exit(1));
    match exit {
        Some(status) => f.expect(!status.success(), || {
            format!("n1's guardian exited with {status}, an orderly end, not a death")
        }),
        None if pid_alive(pid) => {}
        None => eprintln!("n1's guardian runs on after its daemon's death"),
    }

    restart_dead_and_settle(&mut lab, &mut f, "after n1's freeze");
    f.finish(checkers);
}

/// At most this many short freezes in test b2 (see there).
const SHORT_FREEZES: usize = 5;

/// b2. Three servers, majority. The daemon running `web` is frozen for
///     0.2 s, less than the heartbeat timeout (0.3 s) and the lease: nothing
///     may move. The group stays where it runs, its address and process
///     never leave that server, the daemon is not ended, and the cluster
///     stays whole.
///
///     Heartbeats go out every 100 ms, so the silence the others see is
///     the freeze plus up to an interval: now and then they do declare the
///     frozen server down, and that freeze tests something else (test b).
///     The cluster must be whole after every freeze (a daemon ended by its
///     guardian is started again); the freezes go on (on whichever server
///     runs the group) until one stayed shorter than the timeout for the
///     others too, at most [`SHORT_FREEZES`] times. The checkers: never two
///     copies.
#[test]
fn a_daemon_frozen_shorter_than_the_timeout_moves_nothing() {
    let Some((mut lab, checkers)) = web_on_n1("freeze02", 3, &partition()) else {
        return;
    };
    let mut f = Findings::default();

    let mut active = 1;
    let mut quiet = false;
    for attempt in 1..=SHORT_FREEZES {
        let others: Vec<usize> = (1..=3).filter(|&i| i != active).collect();
        let down = format!("server n{active} is down");
        let downs = |lab: &Lab| -> usize {
            others
                .iter()
                .map(|&i| own_alerts(lab, i, &[&down, "nm 1310"]))
                .sum()
        };
        let downs_before = downs(&lab);
        let changes_before = (
            checkers.address.changes().len(),
            checkers.app.changes().len(),
        );

        let frozen = Instant::now();
        let pid = lab.freeze(active, true);
        f.mark(&checkers, &format!("n{active}'s daemon frozen"));
        // The fault: 0.2 s, shorter than the timeout.
        std::thread::sleep(Duration::from_millis(200).saturating_sub(frozen.elapsed()));
        lab.freeze(active, false);
        f.mark(&checkers, &format!("n{active}'s daemon thawed"));

        let what = format!("after freeze {attempt}, of n{active}'s daemon for 0.2 s");
        let Some(holder) = restart_dead_and_settle(&mut lab, &mut f, &what) else {
            break;
        };
        if downs(&lab) != downs_before {
            eprintln!(
                "{what}: n{active} was declared down (the silence exceeded the timeout); once more"
            );
            active = holder[1..].parse().expect("holder is nI");
            continue;
        }
        // Nobody declared it down: nothing may have moved.
        quiet = true;
        f.expect(holder == format!("n{active}"), || {
            format!("{what}: web moved to {holder}")
        });
        f.expect(pid_alive(pid) && lab.daemon_pid(active) == pid, || {
            format!("{what}: n{active}'s daemon (pid {pid}) was ended")
        });
        let changes_after = (
            checkers.address.changes().len(),
            checkers.app.changes().len(),
        );
        f.expect(changes_after == changes_before, || {
            format!(
                "{what}: the address or the responder left n{active} for a while (changes of the holders: address {:?}, responder {:?})",
                checkers.address.changes(),
                checkers.app.changes()
            )
        });
        break;
    }
    f.expect(quiet, || {
        format!("none of {SHORT_FREEZES} freezes of 0.2 s stayed shorter than the timeout for the others")
    });
    f.finish(checkers);
}

/// c. Three servers, majority. The switch drops n1's traffic to n2 and n3
///    (both networks) for 5 s, while theirs reaches n1: n2 and n3 no longer
///    hear n1, n1 still hears them. `web` must end up on exactly one
///    server, and on the majority's side: n1 is not heard, so it cannot
///    keep the group without the others taking it too. Within 3 x
///    (timeout + lease + margin) n2 or n3 must run it, both agreeing, the
///    client answered from there and the checkers seeing the address and
///    the responder there only. After the cut, the cluster must be whole
///    and stay so. The checkers: never two copies.
#[test]
fn a_one_way_cut_from_the_active_server_leaves_the_group_on_one_server() {
    if let Some(missing) = nft_unavailable() {
        return missing.skip();
    }
    let Some((mut lab, checkers)) = web_on_n1("oneway", 3, &partition()) else {
        return;
    };
    let mut f = Findings::default();

    let cut = Instant::now();
    lab.oneway(1, 2, true);
    lab.oneway(1, 3, true);
    f.mark(&checkers, "n1 to n2 and n3 cut");
    if let Some(k) = f.note(
        "during the one-way cut",
        wait_taken(&lab, &checkers, &[2, 3], cut + BOUND),
    ) {
        eprintln!(
            "web whole on n{k} for n2 and n3 {:?} after the cut",
            cut.elapsed()
        );
        f.expect(!runs_web(&lab, 1) || k == 1, || {
            format!("n1 says it runs web while n2 and n3 see it on n{k}")
        });
    }
    // The fault lasts CUT in all.
    std::thread::sleep(CUT.saturating_sub(cut.elapsed()));
    lab.oneway(1, 2, false);
    lab.oneway(1, 3, false);
    f.mark(&checkers, "n1 to n2 and n3 flows");

    restart_dead_and_settle(&mut lab, &mut f, "after the one-way cut");
    f.finish(checkers);
}

/// d. Two servers, majority with the tie-breaker n1; `web` runs on n2 (first
///    in its order). The switch isolates n2 for 5 s, carrier kept: an even
///    split, which goes to n1's side. n2 must release `web` at once, n1
///    must take it over within 3 x (timeout + lease + margin), the client
///    answered. After n2 rejoins, the cluster must be whole and stay so.
///    The checkers: never two copies.
#[test]
fn two_servers_split_by_the_switch_leave_the_group_to_the_tie_breaker() {
    if let Some(missing) = nft_unavailable() {
        return missing.skip();
    }
    let Some((mut lab, checkers)) =
        web_lab_on("iso2", 2, r#"servers: ["n2", "n1"],"#, &partition(), 2)
    else {
        return;
    };
    let mut f = Findings::default();

    let cut = Instant::now();
    lab.isolate(2, true);
    f.mark(&checkers, "n2 isolated");
    let deadline = cut + BOUND;
    if let Some(after) = f.note(
        "while n2 is isolated",
        wait_released(&lab, &checkers, 2, deadline),
    ) {
        eprintln!("n2 released web {:?} after the isolation", after);
    }
    if let Some(k) = f.note(
        "while n2 is isolated",
        wait_taken(&lab, &checkers, &[1], deadline),
    ) {
        eprintln!(
            "n{k} took web over {:?} after the isolation (timeout + lease + margin: {TAKEOVER:?})",
            cut.elapsed()
        );
    }
    // The fault lasts CUT in all.
    std::thread::sleep(CUT.saturating_sub(cut.elapsed()));
    lab.isolate(2, false);
    f.mark(&checkers, "n2 rejoined");

    restart_dead_and_settle(&mut lab, &mut f, "after n2 rejoined");
    f.finish(checkers);
}

/// The configuration the tests run is one the binary accepts: with the
/// `partition` field, a binary without partition resolution refuses it
/// ("unknown field"), which every test above would otherwise report as a
/// daemon that does not start.
#[test]
fn the_partition_configuration_passes_config_check() {
    let dir = common::TestDir::new("partcfg");
    let text = common::cluster::lab_config(
        &dir,
        3,
        r#"Group(name: "web", resources: [Resource(name: "vip", kind: Fip(address: "198.51.100.50/24"))])"#,
        &partition(),
    );
    let path = dir.write("cluster.ron", &text);
    let out = common::understudy(&["config", "check", path.to_str().expect("utf-8 path")]);
    assert!(
        out.success(),
        "config check refused the partition configuration:\n{}{}\n{text}",
        out.stdout,
        out.stderr
    );
}

/// e. Three servers, majority, and a forced stop. The whole stack of n1,
///    which runs `web`, is killed (guardian included): its address and its
///    responder stay behind, as after a hang of the box. The forced stop is
///    a stand-in for a power switch (there is no BMC or hypervisor here): a
///    script that records its call, takes the silent server's links down,
///    removes its addresses and ends every process of its namespace. n2 (first in `web`'s order among
///    the survivors) must stop n1 by force, once, then take `web` over
///    within 3 x (timeout + lease + margin): never two copies. Without the
///    forced stop the leftover address refuses the takeover (or, without a
///    floating IP, the group runs twice).
#[test]
fn a_whole_stack_kill_is_stopped_by_force_before_the_takeover() {
    let Some(mut lab) = Lab::new("fence3", 3) else {
        return;
    };
    let marker = lab.dir().path().join("forced-stops");
    let script = lab.dir().path().join("fence.sh");
    let namespaces: String = (1..=3)
        .map(|i| format!("    n{i}) ns={} ;;\n", lab.ns(i)))
        .collect();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             # Stand-in for a power switch: the silent server's links down and\n\
             # its addresses gone, every process of its namespace ended.\n\
             echo \"$CLP_SERVER_DOWN $CLP_SERVER_LOCAL $CLP_FORCESTOP_MODE\" >>'{}'\n\
             case \"$CLP_SERVER_DOWN\" in\n{namespaces}    *) exit 1 ;;\nesac\n\
             ip -n \"$ns\" link set eth0 down || exit 1\n\
             ip -n \"$ns\" link set eth1 down || exit 1\n\
             ip -n \"$ns\" address flush dev eth0 || exit 1\n\
             ip -n \"$ns\" address flush dev eth1 || exit 1\n\
             for p in $(ip netns pids \"$ns\"); do kill -9 \"$p\"; done\n\
             exit 0\n",
            marker.display()
        ),
    )
    .expect("write the forced stop script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the script");
    let extra = format!(
        "{}\n    forced_stop: (method: Script(path: \"{}\"), timeout_secs: 10),",
        partition(),
        script.display()
    );
    let text = lab.config(&web_group(&lab, ""), &extra);
    lab.write_config(&text);
    let checkers = Checkers::start(&lab);
    lab.start_all();
    for i in 1..=3 {
        lab.wait_group_on(i, "web", "n1", FORM_WAIT);
    }
    checkers.wait_holders(&[1], FORM_WAIT);
    let mut f = Findings::default();

    let killed = Instant::now();
    lab.kill9_all(1);
    f.mark(&checkers, "n1's whole stack killed");
    if let Some(k) = f.note(
        "after the kill",
        wait_taken(&lab, &checkers, &[2, 3], killed + BOUND),
    ) {
        eprintln!("n{k} took web over {:?} after the kill", killed.elapsed());
    }
    let calls = std::fs::read_to_string(&marker).unwrap_or_default();
    let lines: Vec<&str> = calls.lines().collect();
    f.expect(lines == ["n1 n2 1"], || {
        format!("one forced stop of n1 by n2 in mode 1, found: {lines:?}")
    });
    let fenced = own_alerts(&lab, 2, &["rc 1431", "n1"]);
    f.expect(fenced == 1, || {
        format!("n2 reports the forced stop once (rc 1431), found {fenced}")
    });
    f.finish(checkers);
}

/// f. Two servers with an etcd witness (in the client's namespace, behind
///    the switch). The switch isolates n1, which runs `web`: cut off from
///    n2 and from the witness, n1 keeps at most its own vote of three and
///    releases at once. n2 holds the witness's vote (at once, or when n1's
///    etcd lease has ended, `ttl_secs` later) and takes `web` over within
///    3 x (timeout + ttl + lease + margin). Never two copies; after the
///    rejoin the cluster is whole again.
#[test]
fn two_servers_with_a_witness_leave_the_group_to_the_side_with_its_vote() {
    if let Some(missing) = nft_unavailable().or_else(etcd_unavailable) {
        return missing.skip();
    }
    if partition_off() {
        eprintln!("PARTITION_OFF: this test is about the witness; nothing to compare");
        return;
    }
    let Some(mut lab) = Lab::new("wit2", 2) else {
        return;
    };
    lab.witness(true);
    let extra = format!(
        r#"partition: (methods: [Majority, Etcd(endpoints: ["http://198.51.100.100:2379"], ttl_secs: 2)],
                   lease_ms: {LEASE_MS}, margin_ms: {MARGIN_MS}, action: None),"#
    );
    let text = lab.config(&web_group(&lab, ""), &extra);
    lab.write_config(&text);
    let checkers = Checkers::start(&lab);
    lab.start_all();
    for i in 1..=2 {
        lab.wait_group_on(i, "web", "n1", FORM_WAIT);
    }
    checkers.wait_holders(&[1], FORM_WAIT);
    let mut f = Findings::default();

    let cut = Instant::now();
    lab.isolate(1, true);
    f.mark(&checkers, "n1 isolated (from n2 and the witness)");
    let bound = Duration::from_millis(3 * (TIMEOUT_MS + 2000 + LEASE_MS + MARGIN_MS));
    if let Some(after) = f.note(
        "while isolated",
        wait_released(&lab, &checkers, 1, cut + bound),
    ) {
        eprintln!("n1 released web {after:?} after the isolation");
    }
    if let Some(k) = f.note(
        "while n1 is isolated",
        wait_taken(&lab, &checkers, &[2], cut + bound),
    ) {
        eprintln!("n{k} took web over {:?} after the isolation", cut.elapsed());
    }
    std::thread::sleep(CUT.saturating_sub(cut.elapsed()));
    lab.isolate(1, false);
    f.mark(&checkers, "n1 rejoined");
    restart_dead_and_settle(&mut lab, &mut f, "after n1 rejoined");
    f.finish(checkers);
}

/// The end of the last time `changes` (a watch's timeline) shows two or
/// more holders, if they did: the instant of the next change.
fn last_double_ended(changes: &[(Duration, Vec<usize>)]) -> Option<Option<Duration>> {
    let last = changes.iter().rposition(|(_, h)| h.len() > 1)?;
    Some(changes.get(last + 1).map(|(at, _)| *at))
}

/// g. Two servers without partition resolution (a configuration that loads
///    as it always did; `config check` warns of what follows). The switch
///    isolates n1, which runs `web`, for 5 s: n2 takes it over while n1
///    keeps it, two copies that nothing can refuse without a method (the
///    checkers see them: this test expects them during the cut). When the
///    cut heals, the servers find the double activation: n1, the first of
///    the group's order, keeps its copy and reports it (rc 92, once, by n1
///    alone), and n2 stops its own at once. Within 3 x timeout plus a stop
///    of the group, the checkers must see one copy again, on n1; the
///    cluster must be whole on n1 and stay so.
#[test]
fn two_copies_after_a_cut_without_partition_resolution_become_one_when_it_heals() {
    if let Some(missing) = nft_unavailable() {
        return missing.skip();
    }
    let Some((lab, checkers)) = web_on_n1("dbl2", 2, "") else {
        return;
    };
    let mut f = Findings::default();
    let cut = Instant::now();
    lab.isolate(1, true);
    f.mark(&checkers, "n1 isolated");
    f.note(
        "n2 takes web over while n1 keeps it",
        until("web on both servers", cut + BOUND, || {
            runs_web(&lab, 2)
                && checkers.address.holders() == [1, 2]
                && checkers.app.holders() == [1, 2]
        }),
    );
    // The fault lasts CUT in all.
    std::thread::sleep(CUT.saturating_sub(cut.elapsed()));
    let healed = checkers.started.elapsed();
    lab.isolate(1, false);
    f.mark(&checkers, "n1 rejoined");
    let holder = f.note(
        "after the heal, the cluster whole",
        try_wait_whole(&lab, &[1, 2], BACK),
    );
    f.expect(holder.as_deref() == Some("n1"), || {
        format!("n1 (first of the order) keeps web, not {holder:?}")
    });
    if let Some(holder) = &holder {
        f.note(
            "after the heal, the cluster stays whole",
            common::cluster::check_stays_whole(&lab, &[1, 2], holder, STABLE),
        );
    }
    let reports = (
        own_alerts(&lab, 1, &["rc 92", "web"]),
        own_alerts(&lab, 2, &["rc 92"]),
    );
    f.expect(reports == (1, 0), || {
        format!(
            "rc 92 once, by n1: n1 raised it {} times, n2 {}",
            reports.0, reports.1
        )
    });
    // One copy again within 3 x timeout of the heal, plus the stop (the
    // responder's script, the address's removal) on a loaded machine.
    let bound = healed + Duration::from_millis(3 * TIMEOUT_MS) + Duration::from_secs(5);
    for (what, changes) in [
        ("address", checkers.address.changes()),
        ("responder", checkers.app.changes()),
    ] {
        match last_double_ended(&changes) {
            None => f.expect(false, || format!("the {what} was never on both servers")),
            Some(None) => f.expect(false, || format!("the {what} is still on both servers")),
            Some(Some(end)) => {
                eprintln!(
                    "the {what}'s second copy ended {:?} after the heal",
                    end.saturating_sub(healed)
                );
                f.expect(end <= bound && end >= healed, || {
                    format!(
                        "the {what} on both servers until {end:?}, healed at {healed:?}: {changes:?}"
                    )
                });
            }
        }
    }
    let marks = f.marks.clone();
    drop(checkers);
    assert!(
        f.problems.is_empty(),
        "{}\nfaults: {marks:?}",
        f.problems.join("\n")
    );
}
