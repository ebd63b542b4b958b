//! Semantic validation of the monitor resources (part of
//! [`super::validate::validate`]).

use std::collections::HashSet;

use super::config::ClusterConfig;
use super::monitoring::{
    MonitorConfig, MonitorFinalAction, RecoveryTarget, Timing, MAX_MS, MIN_MS,
};
use super::problems::Problems;
use super::validate::{check_name, label, MAX_COUNT};
use crate::monitor::{FixedTiming, MonitorKind};
use crate::resource::exec::StartMode;
use crate::resource::ResourceKind;

pub fn validate_monitors(config: &ClusterConfig, problems: &mut Problems) {
    let servers: HashSet<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
    let mut names = HashSet::new();
    let mut userspace = 0;
    for (i, m) in config.monitors.iter().enumerate() {
        let path = format!("monitors[{}]", label(&m.name, i));
        check_name(&format!("{path}.name"), &m.name, problems);
        if !names.insert(m.name.as_str()) {
            problems.push(
                format!("{path}.name"),
                format!("duplicate monitor name \"{}\"", m.name),
            );
        }
        if matches!(m.kind, MonitorKind::Userspace(_)) {
            if m.recovery_target() != Some(RecoveryTarget::LocalServer) {
                problems.push(
                    format!("{path}.recovery.target"),
                    "a userspace monitor acts on the whole server: use LocalServer",
                );
            }
            if m.interval_duration() >= m.timeout_duration() {
                problems.push(
                    format!("{path}.{}", interval_field(m)),
                    format!(
                        "must be shorter than the timeout ({}), or every check would look like a stall",
                        timeout_text(m)
                    ),
                );
            }
            userspace += 1;
            if userspace == 2 {
                problems.push(
                    format!("{path}.kind"),
                    "only one userspace monitor is possible (there is one supervisor to watch)",
                );
            }
        }
        if let Some(list) = &m.servers {
            if list.is_empty() {
                problems.push(
                    format!("{path}.servers"),
                    "no server runs this monitor (leave the field out for every server)",
                );
            }
            for s in list {
                if !servers.contains(s.as_str()) {
                    problems.push(format!("{path}.servers"), format!("unknown server \"{s}\""));
                }
            }
        }
        for s in m.per_server.keys() {
            if !servers.contains(s.as_str()) {
                problems.push(
                    format!("{path}.per_server"),
                    format!("unknown server \"{s}\""),
                );
            }
        }
        check_settings(config, &path, m, problems);
        // A server's override must give a valid monitor too.
        for s in m.per_server.keys() {
            let merged = m.for_server(s);
            let mut own = Problems::default();
            check_settings(
                config,
                &format!("{path}.per_server[{s}]"),
                &merged,
                &mut own,
            );
            // Report only what the override itself got wrong.
            let mut base = Problems::default();
            check_settings(config, &format!("{path}.per_server[{s}]"), m, &mut base);
            for p in own.0 {
                if !base.0.contains(&p) {
                    problems.0.push(p);
                }
            }
        }
    }
}

/// Checks one monitor's settings as they apply on some server.
fn check_settings(config: &ClusterConfig, path: &str, m: &MonitorConfig, problems: &mut Problems) {
    m.kind.validate(&format!("{path}.kind"), problems);
    problems.range(&format!("{path}.interval"), m.interval, 1, 999);
    problems.range(&format!("{path}.timeout"), m.timeout, 1, 999);
    if let Some(ms) = m.interval_ms {
        problems.range(&format!("{path}.interval_ms"), ms, MIN_MS, MAX_MS);
    }
    if let Some(ms) = m.timeout_ms {
        problems.range(&format!("{path}.timeout_ms"), ms, MIN_MS, MAX_MS);
    }
    problems.range(&format!("{path}.retry"), m.retry, 0, 999);
    problems.range(&format!("{path}.first_wait"), m.first_wait, 0, 9999);
    problems.range(&format!("{path}.delay_warning"), m.delay_warning, 0, 100);
    let r = &m.recovery;
    problems.range(
        &format!("{path}.recovery.reactivation_threshold"),
        r.reactivation_threshold,
        0,
        MAX_COUNT,
    );
    problems.range(
        &format!("{path}.recovery.failover_threshold"),
        r.failover_threshold,
        0,
        MAX_COUNT,
    );
    if let Some(s) = &r.script {
        if s.path.trim().is_empty() {
            problems.push(format!("{path}.recovery.script.path"), "the path is empty");
        }
        problems.range(
            &format!("{path}.recovery.script.timeout"),
            s.timeout,
            1,
            9999,
        );
    }

    if let MonitorKind::Ip(ip) = &m.kind {
        if u128::from(ip.wait_ms) >= m.timeout_duration().as_millis() {
            problems.push(
                format!("{path}.kind.wait_ms"),
                format!(
                    "{} ms is not shorter than the monitor's timeout ({})",
                    ip.wait_ms,
                    timeout_text(m)
                ),
            );
        }
    }

    // The target resource: must exist; some kinds need a particular kind.
    let target = m.target.as_deref().map(|t| (t, config.resource(t)));
    if let Some((name, None)) = target {
        problems.push(
            format!("{path}.target"),
            format!("unknown resource \"{name}\""),
        );
    }
    match m.kind.fixed_timing() {
        FixedTiming::Active { resource_kind } => match target {
            None => problems.push(
                format!("{path}.target"),
                format!(
                    "a {} monitor needs a target ({resource_kind} resource)",
                    m.kind.type_name()
                ),
            ),
            Some((name, Some((_, res)))) => {
                if res.kind.type_name() != resource_kind {
                    problems.push(
                        format!("{path}.target"),
                        format!(
                            "resource \"{name}\" is a {} resource; a {} monitor watches a {resource_kind} resource",
                            res.kind.type_name(),
                            m.kind.type_name()
                        ),
                    );
                } else if let ResourceKind::Exec(e) = &res.kind {
                    if matches!(m.kind, MonitorKind::Pid(_)) && e.start_mode != StartMode::Async {
                        problems.push(
                            format!("{path}.target"),
                            format!("resource \"{name}\" starts synchronously, so there is no process to watch (use start_mode: Async)"),
                        );
                    }
                }
            }
            Some((_, None)) => {}
        },
        FixedTiming::Always => {
            if m.timing == Timing::Active {
                problems.push(
                    format!("{path}.timing"),
                    format!("a {} monitor always checks", m.kind.type_name()),
                );
            }
        }
        FixedTiming::Free => {
            if m.timing == Timing::Active && m.target.is_none() {
                problems.push(
                    format!("{path}.target"),
                    "timing Active needs a target resource",
                );
            }
        }
    }

    // The recovery target.
    match m.recovery_target() {
        None => problems.push(
            format!("{path}.recovery.target"),
            "no recovery target: give one, or a target resource",
        ),
        Some(RecoveryTarget::Resource(name)) => {
            if config.resource(&name).is_none() {
                problems.push(
                    format!("{path}.recovery.target"),
                    format!("unknown resource \"{name}\""),
                );
            }
        }
        Some(RecoveryTarget::Group(name)) => {
            if config.group(&name).is_none() {
                problems.push(
                    format!("{path}.recovery.target"),
                    format!("unknown group \"{name}\""),
                );
            }
            if r.final_action == MonitorFinalAction::StopResource {
                problems.push(
                    format!("{path}.recovery.final_action"),
                    "StopResource needs a resource as the recovery target",
                );
            }
        }
        Some(RecoveryTarget::LocalServer) => {
            if matches!(
                r.final_action,
                MonitorFinalAction::StopResource | MonitorFinalAction::StopGroup
            ) {
                problems.push(
                    format!("{path}.recovery.final_action"),
                    "with the local server as recovery target, the final action must act on the cluster service or the OS",
                );
            }
        }
    }
}

/// The interval's field as written: `interval_ms` when set.
fn interval_field(m: &MonitorConfig) -> &'static str {
    if m.interval_ms.is_some() {
        "interval_ms"
    } else {
        "interval"
    }
}

/// The timeout as written ("3 s", "800 ms").
fn timeout_text(m: &MonitorConfig) -> String {
    match m.timeout_ms {
        Some(ms) => format!("{ms} ms"),
        None => format!("{} s", m.timeout),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn problems(monitors: &str) -> Vec<String> {
        let text = format!(
            r#"Cluster(name: "c", servers: [Server(name: "s1", interconnects: ["198.51.100.1"]),
                                          Server(name: "s2", interconnects: ["198.51.100.2"])],
               heartbeat: (key_file: "/etc/understudy/cluster.key"),
               groups: [Group(name: "web", resources: [
                 Resource(name: "app", kind: Exec(start: "/a", start_mode: Async)),
                 Resource(name: "sync", kind: Exec(start: "/a")),
               ])],
               monitors: [{monitors}])"#
        );
        match parse("c.ron", &text) {
            Ok(_) => vec![],
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_good_monitor_passes() {
        let p = problems(
            r#"Monitor(name: "appw", kind: Pid(), target: "app", interval: 5, retry: 0,
                       recovery: (reactivation_threshold: 1, failover_threshold: 1, final_action: StopGroup)),
               Monitor(name: "mrw", kind: Message(category: "BMCNOTICE", keyword: "198.51.100.1"),
                       recovery: (target: Group("web")),
                       per_server: {"s2": (kind: Message(category: "BMCNOTICE", keyword: "198.51.100.2"))})"#,
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn sub_second_intervals_down_to_100_ms() {
        let p = problems(
            r#"Monitor(name: "fast", kind: Pid(), target: "app", interval_ms: 100, timeout_ms: 400)"#,
        );
        assert!(p.is_empty(), "{p:?}");
        let p = problems(
            r#"Monitor(name: "a", kind: Pid(), target: "app", interval_ms: 99),
               Monitor(name: "b", kind: Pid(), target: "app", timeout_ms: 1000000),
               Monitor(name: "c", kind: Pid(), target: "app", per_server: {"s2": (interval_ms: 50)})"#,
        );
        assert_eq!(
            p,
            vec![
                "monitors[a].interval_ms: 99 is out of range (100-999000)",
                "monitors[b].timeout_ms: 1000000 is out of range (100-999000)",
                "monitors[c].per_server[s2].interval_ms: 50 is out of range (100-999000)",
            ]
        );
    }

    #[test]
    fn problems_are_named_by_path() {
        let p = problems(
            r#"Monitor(name: "a", kind: Pid(), target: "sync", interval: 0),
               Monitor(name: "b", kind: Pid()),
               Monitor(name: "c", kind: Message(category: "X"), recovery: (target: Group("db"))),
               Monitor(name: "d", kind: Message(category: "X"), recovery: (target: LocalServer, final_action: StopGroup),
                       per_server: {"s3": (retry: 1), "s2": (interval: 5000)})"#,
        );
        let want = [
            "monitors[a].interval: 0 is out of range (1-999)",
            "monitors[a].target: resource \"sync\" starts synchronously",
            "monitors[b].target: a pid monitor needs a target (exec resource)",
            "monitors[b].recovery.target: no recovery target",
            "monitors[c].recovery.target: unknown group \"db\"",
            "monitors[d].recovery.final_action: with the local server",
            "monitors[d].per_server: unknown server \"s3\"",
            "monitors[d].per_server[s2].interval: 5000 is out of range",
        ];
        for w in want {
            assert!(p.iter().any(|l| l.contains(w)), "missing {w:?} in {p:?}");
        }
        assert_eq!(p.len(), want.len(), "{p:?}");
    }
}
