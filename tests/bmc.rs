//! The BMC heartbeat path and the forced stop by BMC against real BMCs:
//! Debian `openipmi`'s `ipmi_sim`, one per lab server (see
//! `common/bmc.rs`: its chassis control powers "the host" off by taking
//! that server's links and addresses away and ending its processes), with
//! `ipmitool` cross-checking the power state.
//!
//! - power off through the BMC: the survivor takes over well before the
//!   LAN heartbeat timeout;
//! - the cluster's traffic cut at the switch while the BMC says "on": no
//!   blind failover; after the heal the group runs once;
//! - a whole stack killed, the BMC saying "on": the forced stop by BMC
//!   powers the server off, confirms it, and only then is the group taken
//!   over;
//! - seed 003's sample cluster as written in docs/bmc.md passes `config
//!   check`.
//!
//! Every multi-server test runs the address and application checkers.
//! Every wait polls for something observable, with a deadline.

mod common;

use std::time::{Duration, Instant};

use common::bmc::*;
use common::cluster::*;
use common::*;
use serde_json::Value;

/// `(state, takeover_held)` of server `of`'s BMC path in a status.
fn bmc_view(status: &Value, of: &str) -> Option<(String, bool)> {
    let b = &server_of(status, of)?["bmc"];
    Some((
        b["state"].as_str()?.to_string(),
        b["takeover_held"].as_bool().unwrap_or(false),
    ))
}

/// A two-server lab with a BMC per server, `web` on n1, both checkers
/// running; `None` (skipped) when the machine cannot host it.
fn bmc_lab(
    tag: &str,
    extra: &str,
    interval_ms: u32,
    timeout_ms: u32,
) -> Option<(Lab, Checkers, Bmcs)> {
    if let Some(missing) = bmc_unavailable() {
        missing.skip();
        return None;
    }
    let lab = Lab::new(tag, 2)?;
    let bmcs = Bmcs::start(&lab);
    let text = with_bmcs(
        &lab,
        &lab.config(&web_group(&lab, ""), extra),
        interval_ms,
        timeout_ms,
    );
    let (lab, checkers) = start_web(lab, &text, 1);
    // n2 polls n1's BMC: it says on.
    lab.wait_status(2, "n1's BMC polled: on", FORM_WAIT, |s| {
        bmc_view(s, "n1").is_some_and(|(state, _)| state == "on")
    });
    Some((lab, checkers, bmcs))
}

/// n1 loses its power through its BMC (`ipmitool chassis power off`, as
/// a broken power supply would): n2 learns it from its next poll of n1's
/// BMC and takes `web` over at once, well before the LAN heartbeat timeout
/// (5 s here) would have declared n1 down.
#[test]
fn power_off_through_the_bmc_is_taken_over_before_the_lan_timeout() {
    const LAN_TIMEOUT_MS: u64 = 5000;
    const BMC_INTERVAL_MS: u32 = 200;
    const BMC_TIMEOUT_MS: u32 = 500;
    let extra = format!("heartbeat: (interval_ms: 500, timeout_ms: {LAN_TIMEOUT_MS}),");
    let Some((lab, checkers, bmcs)) = bmc_lab("bmcoff", &extra, BMC_INTERVAL_MS, BMC_TIMEOUT_MS)
    else {
        return;
    };
    let before = own_alerts(&lab, 2, &["nm 1310", "n1", "BMC"]);
    let off = Instant::now();
    let out = bmcs.ipmitool(1, &["chassis", "power", "off"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(bmcs.power(1), "off");
    let bound = Duration::from_millis(LAN_TIMEOUT_MS);
    lab.wait_group_on(2, "web", "n2", bound);
    checkers.wait_holders(&[2], bound.saturating_sub(off.elapsed()));
    let taken = off.elapsed();
    lab.wait_fetch(WEB_VIP, WEB_PORT, Some("n2"), FORM_WAIT);
    eprintln!(
        "BMC power off -> web taken over by n2 in {:.0} ms (LAN heartbeat timeout {LAN_TIMEOUT_MS} ms; BMC interval {BMC_INTERVAL_MS} ms, timeout {BMC_TIMEOUT_MS} ms)",
        taken.as_secs_f64() * 1000.0
    );
    assert!(
        taken < bound,
        "taken over after {taken:?}: not before the LAN timeout"
    );
    // Down because its BMC said so, reported once.
    wait_own_alerts(&lab, 2, &["nm 1310", "n1", "BMC"], before, FORM_WAIT);
    let s2 = lab.status(2);
    assert_eq!(
        server_of(&s2, "n1").and_then(|s| s["state"].as_str()),
        Some("Offline"),
        "{s2}"
    );
    assert_eq!(
        bmc_view(&s2, "n1"),
        Some(("off".to_string(), false)),
        "{s2}"
    );
    checkers.assert_never_double();
}

/// The switch drops every heartbeat and peer-link packet between n1 (which
/// runs `web`) and n2, while n1's BMC, on its own network, says the power
/// is on. Without forced stop or partition resolution, n2 must not take
/// `web` over on the LAN silence alone: during the observation window the
/// group stays on n1 alone (checkers), n2's status says the takeover is
/// held, and nm 38 says why. After the heal, exactly one copy.
#[test]
fn lan_cut_with_the_bmc_saying_on_is_no_blind_failover() {
    if let Some(missing) = nft_unavailable() {
        return missing.skip();
    }
    let Some((lab, checkers, _bmcs)) = bmc_lab("bmccut", "", 200, 500) else {
        return;
    };
    let hb = 29170;
    let peer = 29171;
    lab.cut_cluster_traffic(true, hb, peer);
    let cut = Instant::now();
    lab.wait_status(2, "n1 silent, its takeover held", FORM_WAIT, |s| {
        server_of(s, "n1").and_then(|x| x["state"].as_str()) == Some("Offline")
            && bmc_view(s, "n1") == Some(("on".to_string(), true))
    });
    wait_own_alerts(&lab, 2, &["nm 38", "n1"], 0, FORM_WAIT);
    eprintln!("n2 holds the takeover {:?} after the cut", cut.elapsed());
    // The observation window: many LAN timeouts (300 ms) and BMC polls.
    let window = Instant::now() + Duration::from_secs(4);
    while Instant::now() < window {
        let (a, p) = (checkers.address.holders(), checkers.app.holders());
        assert!(
            a == [1] && p == [1],
            "web must stay on n1 alone during the cut: address on {a:?}, responder on {p:?}"
        );
        std::thread::sleep(POLL);
    }
    let s2 = lab.status(2);
    let (state, current) = web_view(&s2);
    assert!(
        current != "n2" || state == "Offline",
        "n2 started web during the cut: {s2}"
    );
    lab.cut_cluster_traffic(false, hb, peer);
    let holder = wait_whole(&lab, &[1, 2], FORM_WAIT, "after the heal");
    assert_eq!(holder, "n1");
    stays_whole(
        &lab,
        &[1, 2],
        "n1",
        Duration::from_secs(2),
        "after the heal",
    );
    checkers.assert_never_double();
}

/// n1's whole stack is killed (daemon and guardian: nobody tells n2, and
/// its address and responder stay behind), the box still powered. With
/// `forced_stop: (method: Bmc)`, n2 powers n1 off through its BMC, confirms
/// it with Get Chassis Status, and only then takes `web` over: ipmitool
/// says off, one chassis power off, rc 1431 once, never two copies.
#[test]
fn the_forced_stop_by_bmc_powers_the_peer_off_and_confirms_it() {
    let Some((mut lab, checkers, bmcs)) = bmc_lab(
        "bmcfence",
        "forced_stop: (method: Bmc, timeout_secs: 10),",
        200,
        500,
    ) else {
        return;
    };
    let killed = Instant::now();
    lab.kill9_all(1);
    lab.wait_group_on(2, "web", "n2", FORM_WAIT);
    checkers.wait_holders(&[2], FORM_WAIT);
    lab.wait_fetch(WEB_VIP, WEB_PORT, Some("n2"), FORM_WAIT);
    eprintln!(
        "whole stack killed -> forced stop by BMC -> web on n2 in {:?}",
        killed.elapsed()
    );
    assert_eq!(bmcs.power(1), "off", "ipmitool: n1 is powered off");
    let log = Bmcs::chassis_log(&lab, 1);
    assert_eq!(
        log.iter().filter(|l| l.ends_with("power off")).count(),
        1,
        "one chassis power off: {log:?}"
    );
    wait_own_alerts(&lab, 2, &["rc 1431", "n1"], 0, FORM_WAIT);
    assert_eq!(own_alerts(&lab, 2, &["rc 1430", "n1", "BMC"]), 1);
    assert_eq!(own_alerts(&lab, 2, &["rc 433"]), 0);
    checkers.assert_never_double();
}

/// The first ```ron block after `heading` in a document of docs/.
fn ron_block(doc: &str, heading: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/docs/{doc}", env!("CARGO_MANIFEST_DIR")))
        .expect("read the document");
    let at = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in docs/{doc}"));
    let rest = &text[at..];
    let start = rest.find("```ron\n").expect("a ron block") + "```ron\n".len();
    let end = rest[start..].find("```").expect("end of the block");
    rest[start..start + end].to_string()
}

/// Seed 003's sample cluster as docs/bmc.md writes it (two LAN paths and a
/// BMC per server, `userw`, `mrw1` with BMCNOTICE and a keyword per
/// server, recovery: fail over `failover1`, forced stop by BMC) passes
/// `config check` once its files exist here.
#[test]
fn seed_003s_sample_cluster_passes_config_check() {
    let t = TestDir::new("bmcseed");
    let mut text = ron_block("bmc.md", "## Seed 003's sample cluster");
    assert!(text.contains("bmc: ("), "{text}");
    assert!(text.contains("BMCNOTICE"), "{text}");
    assert!(text.contains("method: Bmc"), "{text}");
    let key = t.key_file();
    text = text.replace("/etc/understudy/cluster.key", &key.display().to_string());
    for name in ["bmc-server1.password", "bmc-server2.password"] {
        let file = t.write(name, "secret\n");
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod 600");
        text = text.replace(
            &format!("/etc/understudy/{name}"),
            &file.display().to_string(),
        );
    }
    for script in ["start.sh", "stop.sh"] {
        let file = t.script(script, "exit 0");
        text = text.replace(&format!("/etc/app/{script}"), &file.display().to_string());
    }
    let config = t.write("seed003.ron", &text);
    let out = understudy(&["config", "check", &config.display().to_string()]);
    assert!(out.success(), "{out:?}\n{text}");
    assert!(!out.stdout.contains("secret") && !out.stderr.contains("secret"));

    // A BMC setting out of range is named by its field path.
    let bad = text.replacen("port: 623", "port: 0", 1);
    let config = t.write("bad.ron", &bad);
    let out = understudy(&["config", "check", &config.display().to_string()]);
    assert!(!out.success());
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("servers[server1].bmc.port"), "{all}");
}
