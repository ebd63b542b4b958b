//! Text rendering of status and alerts for people.

use std::fmt::Write;

use understudy_actors::model::catalog::Alert;
use understudy_actors::model::state::{ClusterStatus, PartitionStatus};

pub fn status(s: &ClusterStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {}    server {}    config {}{}",
        s.cluster,
        s.server,
        s.config_digest,
        if s.stopping {
            "    (stopping)"
        } else if s.suspended {
            "    (suspended: no automatic recovery or failover)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "servers");
    for srv in &s.servers {
        let state = srv.state.as_str();
        let mut notes = Vec::new();
        if srv.local {
            notes.push("this server".to_string());
        }
        if srv.config_mismatch {
            notes.push("OTHER CONFIGURATION: gets no groups".to_string());
        }
        let _ = writeln!(
            out,
            "  {:<20} {:<16}{}",
            srv.name,
            state,
            if notes.is_empty() {
                String::new()
            } else {
                format!("({})", notes.join(", "))
            }
        );
        if !srv.local {
            for (i, p) in srv.paths.iter().enumerate() {
                let mut line = format!(
                    "    path {i} {:<39} {:<8} received {}",
                    p.address,
                    format!("{:?}", p.state),
                    p.received
                );
                if p.lost > 0 {
                    let _ = write!(line, ", lost {}", p.lost);
                }
                let _ = writeln!(out, "{line}");
            }
            if let Some(b) = &srv.bmc {
                let mut line = format!("    bmc    {:<39} {}", b.address, b.state);
                if let Some(e) = &b.error {
                    let _ = write!(line, " ({e})");
                }
                if b.takeover_held {
                    line.push_str(": silent with the power on, no takeover until confirmed off");
                }
                let _ = writeln!(out, "{line}");
            }
        }
    }
    if let Some(p) = &s.partition {
        partition(&mut out, p);
    }
    let _ = writeln!(out, "groups");
    for g in &s.groups {
        let _ = writeln!(
            out,
            "  {:<20} {:<16} current: {}",
            g.name,
            g.state.as_str(),
            g.current.as_deref().unwrap_or("-")
        );
        for r in &g.resources {
            let mut line = format!("    {:<18} {:<5} {:<16}", r.name, r.kind, r.state.as_str());
            if let Some(pid) = r.pid {
                let _ = write!(line, " pid {pid}");
            }
            if let Some(e) = &r.last_error {
                let _ = write!(line, " error: {e}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if !s.monitors.is_empty() {
        let _ = writeln!(out, "monitors");
    }
    for m in &s.monitors {
        let mut line = format!(
            "  {:<20} {:<9} {:<10} recovery: {} (reactivations {}, failovers {})",
            m.name,
            m.kind,
            if m.runs_here { m.state.as_str() } else { "-" },
            m.recovery_target,
            m.reactivations,
            m.failovers
        );
        if !m.runs_here {
            line.push_str(" not run on this server");
        }
        if let Some(e) = &m.last_error {
            let _ = write!(line, " error: {e}");
        }
        let _ = writeln!(out, "{line}");
    }
    if !s.traps.is_empty() {
        let _ = writeln!(out, "snmp traps");
    }
    for t in &s.traps {
        let state = match (&t.error, t.listening) {
            (_, true) => "listening".to_string(),
            (Some(e), false) => format!("NOT LISTENING ({e})"),
            (None, false) => "not listening yet".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<21} {state}    monitors: {}",
            t.address,
            t.monitors.join(", ")
        );
        let _ = writeln!(
            out,
            "    traps {}, dropped: {} wrong community, {} garbled, {} oversized, {} other",
            t.traps, t.wrong_community, t.garbled, t.oversized, t.other
        );
    }
    let r = &s.rejected;
    if r.garbled + r.forged + r.replayed + r.unknown_version > 0 {
        let _ = writeln!(
            out,
            "cluster traffic dropped: {} forged, {} replayed, {} garbled, {} of an unknown protocol version",
            r.forged, r.replayed, r.garbled, r.unknown_version
        );
    }
    if s.malformed_requests > 0 {
        let _ = writeln!(
            out,
            "malformed control requests dropped: {}",
            s.malformed_requests
        );
    }
    if !s.restart_pending.is_empty() {
        let _ = writeln!(
            out,
            "restart pending: the configuration file changes {}; restart the cluster service to apply",
            s.restart_pending.join(", ")
        );
    }
    out
}

/// The partition section: this server's quorum, then every silent server
/// and when its groups may be taken over.
fn partition(out: &mut String, p: &PartitionStatus) {
    let quorum = match (p.quorate, p.lease_ms_left) {
        (false, _) => "NOT QUORATE: this server starts no group and releases what it holds".into(),
        (true, Some(ms)) => format!("quorate, lease ends in {ms} ms unless renewed"),
        (true, None) => "quorate".into(),
    };
    let _ = writeln!(out, "partition {}: {quorum}", p.methods.join(" + "));
    if let Some(w) = &p.witness {
        let vote = match (w.holds, w.reachable, &w.error) {
            (true, _, _) => "this server holds its vote".to_string(),
            (false, true, _) => "another server holds its vote".to_string(),
            (false, false, Some(e)) => format!("unreachable ({e})"),
            (false, false, None) => "unreachable".to_string(),
        };
        let _ = writeln!(out, "  witness (etcd): {vote}");
    }
    for t in &p.targets {
        let state = match (t.verdict_ms_left, t.reachable, &t.error) {
            (Some(ms), true, _) => format!("reached (counts {ms} ms more)"),
            (Some(ms), false, e) => format!(
                "last round failed ({}); the last answer counts {ms} ms more",
                e.as_deref().unwrap_or("no answer")
            ),
            (None, _, Some(e)) => format!("UNREACHABLE ({e})"),
            (None, _, None) => "UNREACHABLE".to_string(),
        };
        let _ = writeln!(out, "  target {}: {state}", t.target);
    }
    for s in &p.silent {
        let wait = if s.cleared {
            "confirmed down, left, died or stopped by force: no wait for its lease".to_string()
        } else if !p.quorate {
            "its groups wait for this server's quorum".to_string()
        } else {
            match s.takeover_ms_left {
                Some(0) => "its groups may be taken over now".to_string(),
                Some(ms) => format!("its groups may be taken over in {ms} ms (lease + margin)"),
                None => {
                    "its groups wait until every server of this quorum stops hearing it".to_string()
                }
            }
        };
        let wait = match s.forced_stop.as_deref() {
            None => wait,
            Some("failed") => format!("its forced stop failed; {wait}"),
            Some(state) => {
                format!("its groups wait for its forced stop ({state}); should it fail, {wait}")
            }
        };
        let _ = writeln!(out, "  {:<20} silent: {wait}", s.name);
    }
}

pub fn alert(a: &Alert) -> String {
    format!(
        "{}  {:<10} {:<5} {} {:<4} {}",
        a.time,
        a.server,
        a.level.as_str(),
        a.module,
        a.event_id,
        a.message
    )
}

/// The one-line state a service manager shows (systemd's `STATUS=`, in
/// `systemctl status`): this server, how many groups are online (and how
/// many of them here), how many servers are up; then what is wrong or
/// special, if anything (groups failed, monitors in error, suspended,
/// stopping). Short on purpose; `understudy status` has the rest.
pub fn service_line(s: &ClusterStatus) -> String {
    use understudy_actors::model::detection::MonitorState;
    use understudy_actors::model::state::{RunState, ServerState};
    let online = s
        .groups
        .iter()
        .filter(|g| g.state == RunState::Online)
        .count();
    let here = s
        .groups
        .iter()
        .filter(|g| g.state == RunState::Online && g.current.as_deref() == Some(&s.server))
        .count();
    let up = s
        .servers
        .iter()
        .filter(|v| v.state == ServerState::Online)
        .count();
    let mut line = format!(
        "{}: {online} of {} groups online ({here} here), {up} of {} servers up",
        s.server,
        s.groups.len(),
        s.servers.len()
    );
    let failed = s
        .groups
        .iter()
        .filter(|g| matches!(g.state, RunState::OnlineFailure | RunState::OfflineFailure))
        .count();
    if failed > 0 {
        let _ = write!(line, ", {failed} failed");
    }
    let errors = s
        .monitors
        .iter()
        .filter(|m| m.state == MonitorState::Error)
        .count();
    if errors > 0 {
        let _ = write!(line, ", {errors} monitors in error");
    }
    if s.stopping {
        line.push_str(", stopping");
    } else if s.suspended {
        line.push_str(", suspended");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use understudy_actors::model::state::{RejectedTraffic, SilentServer, TargetStatus};

    fn status(partition: Option<PartitionStatus>) -> ClusterStatus {
        ClusterStatus {
            cluster: "c".into(),
            server: "n2".into(),
            pid: 1,
            config_digest: "d".into(),
            stopping: false,
            suspended: false,
            servers: Vec::new(),
            groups: Vec::new(),
            monitors: Vec::new(),
            malformed_requests: 0,
            rejected: RejectedTraffic::default(),
            partition: partition.map(Box::new),
            restart_pending: Vec::new(),
            traps: Vec::new(),
        }
    }

    fn silent(name: &str, cleared: bool, takeover_ms_left: Option<u64>) -> SilentServer {
        SilentServer {
            name: name.into(),
            cleared,
            takeover_ms_left,
            forced_stop: None,
        }
    }

    #[test]
    fn the_service_line_counts_groups_and_servers_and_says_what_is_wrong() {
        use understudy_actors::model::state::{GroupStatus, RunState, ServerState, ServerStatus};
        let server = |name: &str, state| ServerStatus {
            name: name.into(),
            state,
            local: name == "n2",
            paths: Vec::new(),
            config_mismatch: false,
            bmc: None,
        };
        let group = |name: &str, state, on: Option<&str>| GroupStatus {
            name: name.into(),
            state,
            current: on.map(str::to_string),
            servers: Vec::new(),
            resources: Vec::new(),
        };
        let mut s = status(None);
        s.servers = vec![
            server("n1", ServerState::Online),
            server("n2", ServerState::Online),
            server("n3", ServerState::Offline),
        ];
        s.groups = vec![
            group("web", RunState::Online, Some("n2")),
            group("db", RunState::Online, Some("n1")),
            group("batch", RunState::Offline, None),
        ];
        assert_eq!(
            service_line(&s),
            "n2: 2 of 3 groups online (1 here), 2 of 3 servers up"
        );
        s.groups[2].state = RunState::OnlineFailure;
        s.suspended = true;
        assert_eq!(
            service_line(&s),
            "n2: 2 of 3 groups online (1 here), 2 of 3 servers up, 1 failed, suspended"
        );
        s.stopping = true;
        assert!(service_line(&s).ends_with(", 1 failed, stopping"));
    }

    #[test]
    fn the_partition_section_shows_the_quorum_and_each_silent_servers_wait() {
        let text = status(Some(PartitionStatus {
            methods: vec!["Majority".into()],
            quorate: true,
            lease_ms_left: Some(240),
            silent: vec![
                silent("n1", false, Some(1260)),
                silent("n3", true, None),
                silent("n4", false, None),
                silent("n5", false, Some(0)),
            ],
            witness: None,
            targets: Vec::new(),
        }));
        let text = super::status(&text);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("partition "))
            .unwrap_or_else(|| panic!("no partition line:\n{text}"));
        assert_eq!(
            lines[at],
            "partition Majority: quorate, lease ends in 240 ms unless renewed"
        );
        let rest = &lines[at + 1..at + 5];
        for (line, name, wait) in [
            (rest[0], "n1", "may be taken over in 1260 ms"),
            (rest[1], "n3", "confirmed down"),
            (
                rest[2],
                "n4",
                "until every server of this quorum stops hearing it",
            ),
            (rest[3], "n5", "may be taken over now"),
        ] {
            assert!(line.trim_start().starts_with(name), "{line}");
            assert!(line.contains("silent: "), "{line}");
            assert!(line.contains(wait), "{line}");
        }
        assert_eq!(lines[at + 5], "groups", "{text}");
    }

    #[test]
    fn a_server_without_quorum_says_so_and_one_quorate_alone_has_no_lease() {
        let lost = super::status(&status(Some(PartitionStatus {
            methods: vec!["Majority".into()],
            quorate: false,
            lease_ms_left: None,
            silent: vec![silent("n1", false, Some(500))],
            witness: None,
            targets: Vec::new(),
        })));
        assert!(
            lost.contains("partition Majority: NOT QUORATE: this server starts no group"),
            "{lost}"
        );
        assert!(
            lost.contains("silent: its groups wait for this server's quorum"),
            "{lost}"
        );
        let alone = super::status(&status(Some(PartitionStatus {
            methods: vec!["Majority".into()],
            quorate: true,
            lease_ms_left: None,
            silent: Vec::new(),
            witness: None,
            targets: Vec::new(),
        })));
        assert!(
            alone.lines().any(|l| l == "partition Majority: quorate"),
            "{alone}"
        );
    }

    #[test]
    fn a_forced_stop_to_wait_for_is_named_with_its_state() {
        let fenced = |state: &str| {
            let mut n1 = silent("n1", false, Some(900));
            n1.forced_stop = Some(state.into());
            super::status(&status(Some(PartitionStatus {
                methods: vec!["Majority".into()],
                quorate: true,
                lease_ms_left: Some(200),
                silent: vec![n1],
                witness: None,
                targets: Vec::new(),
            })))
        };
        let running = fenced("running");
        assert!(
            running.contains(
                "silent: its groups wait for its forced stop (running); should it fail, its groups may be taken over in 900 ms"
            ),
            "{running}"
        );
        let failed = fenced("failed");
        assert!(
            failed
                .contains("silent: its forced stop failed; its groups may be taken over in 900 ms"),
            "{failed}"
        );
    }

    #[test]
    fn trap_receivers_show_their_state_and_counters_and_are_absent_without_any() {
        use understudy_actors::model::state::TrapListenerStatus;
        let mut s = status(None);
        assert!(!super::status(&s).contains("snmp traps"));
        assert!(serde_json::to_value(&s).unwrap().get("traps").is_none());
        s.traps = vec![
            TrapListenerStatus {
                address: "198.51.100.11:162".into(),
                monitors: vec!["mrw1".into()],
                listening: true,
                traps: 1,
                garbled: 2,
                ..Default::default()
            },
            TrapListenerStatus {
                address: "198.51.100.99:162".into(),
                monitors: vec!["mrw2".into()],
                error: Some("cannot assign requested address".into()),
                ..Default::default()
            },
        ];
        let text = super::status(&s);
        assert!(
            text.contains("snmp traps\n  198.51.100.11:162     listening    monitors: mrw1\n    traps 1, dropped: 0 wrong community, 2 garbled, 0 oversized, 0 other\n"),
            "{text}"
        );
        assert!(
            text.contains("198.51.100.99:162     NOT LISTENING (cannot assign requested address)"),
            "{text}"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["traps"][0]["garbled"], 2, "{json}");
        assert!(json["traps"][0].get("error").is_none(), "{json}");
    }

    #[test]
    fn without_partition_resolution_there_is_no_section_and_no_json_field() {
        let s = status(None);
        assert!(!super::status(&s).contains("partition"));
        let json = serde_json::to_value(&s).unwrap();
        assert!(json.get("partition").is_none(), "{json}");
        // A status without the field (an older daemon) still reads.
        let back: ClusterStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back.partition, None);
    }

    #[test]
    fn the_partition_section_shows_each_target_and_its_last_error() {
        let target = |name: &str, reachable, left, error: Option<&str>| TargetStatus {
            method: "Ping".into(),
            target: name.into(),
            reachable,
            verdict_ms_left: left,
            error: error.map(String::from),
        };
        let text = super::status(&status(Some(PartitionStatus {
            methods: vec!["Ping".into(), "Http".into()],
            quorate: false,
            lease_ms_left: None,
            silent: Vec::new(),
            witness: None,
            targets: vec![
                target("ping 198.51.100.254", true, Some(180), None),
                target(
                    "HTTP http://203.0.113.254/",
                    false,
                    None,
                    Some("status 503"),
                ),
            ],
        })));
        assert!(
            text.contains("  target ping 198.51.100.254: reached (counts 180 ms more)"),
            "{text}"
        );
        assert!(
            text.contains("  target HTTP http://203.0.113.254/: UNREACHABLE (status 503)"),
            "{text}"
        );
    }
}
