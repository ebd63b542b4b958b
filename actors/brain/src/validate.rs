//! Semantic validation of a parsed configuration. Every problem is recorded
//! with its field path; nothing stops at the first one.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use super::config::{ClusterConfig, FinalAction, GroupConfig};
use super::plan::{activation_order, PlanError};
use super::problems::Problems;
use crate::resource::ResourceKind;

/// Longest server, group or resource name, in bytes (as in the product).
pub const MAX_NAME_LEN: usize = 31;
/// Highest retry count / threshold.
pub const MAX_COUNT: u32 = 99;

pub fn validate(config: &ClusterConfig, problems: &mut Problems) {
    check_name("name", &config.name, problems);

    if config.servers.is_empty() {
        problems.push("servers", "at least one server is required");
    }
    let mut server_names = HashSet::new();
    for (i, server) in config.servers.iter().enumerate() {
        let path = format!("servers[{}]", label(&server.name, i));
        check_name(&format!("{path}.name"), &server.name, problems);
        if !server_names.insert(server.name.as_str()) {
            problems.push(
                format!("{path}.name"),
                format!("duplicate server name \"{}\"", server.name),
            );
        }
        for (j, addr) in server.interconnects.iter().enumerate() {
            if addr.parse::<IpAddr>().is_err() {
                problems.push(
                    format!("{path}.interconnects[{j}]"),
                    format!("\"{addr}\" is not an IP address"),
                );
            }
        }
    }

    check_heartbeat(config, problems);
    crate::partition::validate(config, problems);
    crate::forced_stop::validate(config, problems);
    crate::metrics::validate(config, problems);
    crate::bmc::validate(config, problems);
    crate::web::validate(config, problems);
    crate::watchdog::validate(config, problems);

    let mut group_names = HashSet::new();
    // resource name -> group it was first seen in; names are cluster-wide so
    // that monitors can name a resource without its group.
    let mut resource_owner: BTreeMap<&str, &str> = BTreeMap::new();
    let mut fip_owner: BTreeMap<String, String> = BTreeMap::new();
    // A device or a mount point of two disk resources: both could never be
    // active at once, and one would unmount the other's filesystem.
    let mut device_owner: BTreeMap<String, String> = BTreeMap::new();
    let mut mount_owner: BTreeMap<String, String> = BTreeMap::new();
    for (i, group) in config.groups.iter().enumerate() {
        let gpath = format!("groups[{}]", label(&group.name, i));
        check_name(&format!("{gpath}.name"), &group.name, problems);
        if !group_names.insert(group.name.as_str()) {
            problems.push(
                format!("{gpath}.name"),
                format!("duplicate group name \"{}\"", group.name),
            );
        }
        check_group_servers(&gpath, group, &server_names, problems);

        for (j, res) in group.resources.iter().enumerate() {
            let rpath = format!("{gpath}.resources[{}]", label(&res.name, j));
            check_name(&format!("{rpath}.name"), &res.name, problems);
            match resource_owner.get(res.name.as_str()) {
                Some(owner) if *owner == group.name => problems.push(
                    format!("{rpath}.name"),
                    format!("duplicate resource name \"{}\"", res.name),
                ),
                Some(owner) => problems.push(
                    format!("{rpath}.name"),
                    format!(
                        "duplicate resource name \"{}\" (also in group \"{owner}\"); resource names are cluster-wide",
                        res.name
                    ),
                ),
                None => {
                    resource_owner.insert(&res.name, &group.name);
                }
            }
            res.kind.validate(&format!("{rpath}.kind"), problems);
            if let ResourceKind::Fip(fip) = &res.kind {
                if let Some((ip, _)) = fip.parsed() {
                    let here = format!("{}/{}", group.name, res.name);
                    if let Some(prev) = fip_owner.insert(ip.to_string(), here) {
                        problems.push(
                            format!("{rpath}.kind.address"),
                            format!("address {ip} is already used by resource {prev}"),
                        );
                    }
                }
            }
            if let ResourceKind::Disk(disk) = &res.kind {
                let here = format!("{}/{}", group.name, res.name);
                if let Some(prev) = device_owner.insert(disk.device.clone(), here.clone()) {
                    problems.push(
                        format!("{rpath}.kind.device"),
                        format!("device {} is already used by resource {prev}", disk.device),
                    );
                }
                let mount_point = disk.mount_point_clean().to_string();
                if let Some(prev) = mount_owner.insert(mount_point.clone(), here) {
                    problems.push(
                        format!("{rpath}.kind.mount_point"),
                        format!("mount point {mount_point} is already used by resource {prev}"),
                    );
                }
            }
            problems.range(
                &format!("{rpath}.activation.retry"),
                res.activation.retry,
                0,
                MAX_COUNT,
            );
            problems.range(
                &format!("{rpath}.activation.failover_threshold"),
                res.activation.failover_threshold,
                0,
                MAX_COUNT,
            );
            problems.range(
                &format!("{rpath}.deactivation.retry"),
                res.deactivation.retry,
                0,
                MAX_COUNT,
            );
            if res.deactivation.final_action == FinalAction::StopGroup {
                problems.push(
                    format!("{rpath}.deactivation.final_action"),
                    "StopGroup is only possible at activation failure (the group is already stopping)",
                );
            }
            if let Some(deps) = &res.depends {
                let mut seen = HashSet::new();
                for dep in deps {
                    let dpath = format!("{rpath}.depends");
                    if dep == &res.name {
                        problems.push(dpath, format!("resource \"{dep}\" depends on itself"));
                    } else if !group.resources.iter().any(|r| &r.name == dep) {
                        problems.push(
                            dpath,
                            format!(
                                "unknown resource \"{dep}\" (not in group \"{}\")",
                                group.name
                            ),
                        );
                    } else if !seen.insert(dep) {
                        problems.push(dpath, format!("\"{dep}\" is listed twice"));
                    }
                }
            }
        }
        // Unknown names and self-dependencies are reported above; only a real
        // cycle is worth a second message.
        if let Err(PlanError::Cycle(cycle)) = activation_order(group) {
            if cycle.len() > 2 {
                problems.push(
                    format!("{gpath}.resources"),
                    format!("dependency cycle: {}", cycle.join(" -> ")),
                );
            }
        }
    }

    super::validate_monitors::validate_monitors(config, problems);
    super::routing::validate_routes("alerts.routes", &config.alerts.routes, problems);
    if let Some(mail) = &config.alerts.mail {
        mail.validate("alerts.mail", problems);
    }
    if let Some(syslog) = &config.alerts.syslog {
        syslog.validate("alerts.syslog", problems);
    }
    if let Some(snmp) = &config.alerts.snmp {
        snmp.validate("alerts.snmp", problems);
    }
    if let Some(lamps) = &config.alerts.lamps {
        lamps.validate("alerts.lamps", problems);
        for (path, server) in lamps.servers("alerts.lamps") {
            if !config.servers.iter().any(|s| s.name == server) {
                problems.push(path, format!("unknown server \"{server}\""));
            }
        }
    }

    for (name, argv) in [
        ("shutdown", &config.os_actions.shutdown),
        ("reboot", &config.os_actions.reboot),
    ] {
        if argv.is_empty() || argv[0].trim().is_empty() {
            problems.push(
                format!("os_actions.{name}"),
                "the command is empty (give a program and its arguments)",
            );
        }
    }
    for (field, value) in [
        ("admin_group", &config.control.admin_group),
        ("socket_group", &config.control.socket_group),
    ] {
        if let Some(g) = value {
            if g.is_empty() || g.contains([':', ' ', '/']) {
                problems.push(
                    format!("control.{field}"),
                    format!("\"{g}\" is not a valid group name"),
                );
            }
        }
    }
}

fn check_heartbeat(config: &ClusterConfig, problems: &mut Problems) {
    let hb = &config.heartbeat;
    problems.range("heartbeat.interval_ms", hb.interval_ms, 50, 60_000);
    problems.range("heartbeat.timeout_ms", hb.timeout_ms, 200, 3_600_000);
    if hb.timeout_ms < hb.interval_ms.saturating_mul(2) {
        problems.push(
            "heartbeat.timeout_ms",
            format!(
                "{} ms is less than twice the interval ({} ms): one late packet would declare a path down",
                hb.timeout_ms, hb.interval_ms
            ),
        );
    }
    problems.range("heartbeat.startup_wait_secs", hb.startup_wait_secs, 0, 3600);
    if hb.port == 0 {
        problems.push("heartbeat.port", "0 is not a port (1-65535)");
    }
    if hb.peer_port == 0 {
        problems.push("heartbeat.peer_port", "0 is not a port (1-65535)");
    }
    if config.servers.len() < 2 {
        return;
    }
    if hb.key_file.as_deref().is_none_or(|k| k.trim().is_empty()) {
        problems.push(
            "heartbeat.key_file",
            "a cluster of several servers needs a key file (write one with `understudy keygen FILE`)",
        );
    }
    let paths = config.path_count();
    let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for (i, server) in config.servers.iter().enumerate() {
        let path = format!("servers[{}].interconnects", label(&server.name, i));
        if server.interconnects.is_empty() {
            problems.push(
                path,
                "a cluster of several servers needs at least one interconnect address per server",
            );
        } else if server.interconnects.len() != paths {
            problems.push(
                path,
                format!(
                    "{} addresses, but another server lists {paths}: every server needs one address per heartbeat path",
                    server.interconnects.len()
                ),
            );
        } else {
            for (j, a) in server.interconnects.iter().enumerate() {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    if let Some(other) = seen.insert(ip, &server.name) {
                        problems.push(
                            format!("{path}[{j}]"),
                            format!("address {ip} is also an interconnect of server \"{other}\""),
                        );
                    }
                }
            }
        }
    }
}

fn check_group_servers(
    gpath: &str,
    group: &GroupConfig,
    servers: &HashSet<&str>,
    problems: &mut Problems,
) {
    let Some(list) = &group.servers else { return };
    if list.is_empty() {
        problems.push(
            format!("{gpath}.servers"),
            "no server may run this group (leave the field out to allow every server)",
        );
    }
    let mut seen = HashSet::new();
    for s in list {
        if !servers.contains(s.as_str()) {
            problems.push(
                format!("{gpath}.servers"),
                format!("unknown server \"{s}\""),
            );
        } else if !seen.insert(s) {
            problems.push(
                format!("{gpath}.servers"),
                format!("server \"{s}\" is listed twice"),
            );
        }
    }
}

/// Names are 1-31 bytes of letters, digits, `_`, `-` and `.`, and do not start
/// with `-` or `.` (they appear in paths, logs and command lines).
pub(super) fn check_name(path: &str, name: &str, problems: &mut Problems) {
    if name.is_empty() {
        problems.push(path, "name is empty");
        return;
    }
    if name.len() > MAX_NAME_LEN {
        problems.push(
            path,
            format!("\"{name}\" is longer than {MAX_NAME_LEN} bytes"),
        );
    }
    let bad = name
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
    if bad || name.starts_with(['-', '.']) {
        problems.push(
            path,
            format!("\"{name}\" may only hold letters, digits, '_', '-' and '.', and may not start with '-' or '.'"),
        );
    }
}

/// The name to show in a path: the object's name, or its index when unnamed.
pub(super) fn label(name: &str, index: usize) -> String {
    if name.is_empty() {
        index.to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    /// Parses `text` and returns the problems as `path: message` lines.
    fn problems(text: &str) -> Vec<String> {
        match parse("c.ron", text) {
            Ok(_) => vec![],
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn with_groups(groups: &str) -> String {
        format!(
            r#"Cluster(name: "c", servers: [Server(name: "s1", interconnects: ["198.51.100.1"]),
                                          Server(name: "s2", interconnects: ["198.51.100.2"])],
               heartbeat: (key_file: "/etc/understudy/cluster.key"),
               groups: [{groups}])"#
        )
    }

    fn has(list: &[String], needle: &str) -> bool {
        list.iter().any(|l| l.contains(needle))
    }

    #[test]
    fn a_type_error_names_its_field_as_well_as_its_place() {
        let p = problems(&with_groups(
            r#"Group(name: "web", resources: [
                 Resource(name: "app", kind: Exec(start: "/bin/true", start_timeout: 4294967296))])"#,
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("c.ron:5:"), "{p:?}");
        assert!(
            p[0].contains("groups[0].resources[0].kind.Exec.start_timeout: "),
            "{p:?}"
        );
        let p = problems(&with_groups(
            r#"Group(name: "web", resources: [Resource(name: "vip", kind: Fip(address: 5))])"#,
        ));
        assert!(
            p[0].contains("groups[0].resources[0].kind.Fip.address: Expected string"),
            "{p:?}"
        );
    }

    #[test]
    fn a_good_config_passes() {
        let p = problems(&with_groups(
            r#"Group(name: "web", servers: ["s2", "s1"], startup: Manual, failback: Auto, resources: [
                 Resource(name: "vip", kind: Fip(address: "198.51.100.10/24", interface: "eth0")),
                 Resource(name: "app", kind: Exec(start: "/bin/true", stop: "/bin/true", start_mode: Async),
                          activation: (retry: 2, failover_threshold: 0, final_action: StopGroup),
                          deactivation: (retry: 1, final_action: StopClusterService)),
               ])"#,
        ));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let p = problems("Cluster(\n  name: \"c\",\n  servers: [Server(name: \"s1\"]\n)");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("c.ron:3:"), "{p:?}");
    }

    #[test]
    fn type_error_has_line_and_column() {
        let p = problems(&with_groups(
            r#"Group(name: "g", resources: [Resource(name: "a", kind: Exec(start: "/a"), activation: (retry: "x"))])"#,
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("c.ron:4:"), "{p:?}");
        assert!(p[0].contains("Expected integer"), "{p:?}");
    }

    #[test]
    fn every_unknown_field_is_reported_with_its_path() {
        let p = problems(&with_groups(
            r#"Group(name: "web", colour: "red", resources: [
                 Resource(name: "app", kind: Exec(start: "/a", strat_mode: Async), retries: 3)])"#,
        ));
        assert!(has(&p, "groups[web].colour: unknown field"), "{p:?}");
        assert!(
            has(&p, "groups[web].resources[app].retries: unknown field"),
            "{p:?}"
        );
        assert!(
            has(
                &p,
                "groups[web].resources[app].kind.strat_mode: unknown field"
            ) || has(&p, "strat_mode: unknown field"),
            "{p:?}"
        );
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn unknown_dependency() {
        let p = problems(&with_groups(
            r#"Group(name: "web", resources: [Resource(name: "app", kind: Exec(start: "/a"), depends: ["db"])])"#,
        ));
        assert_eq!(
            p,
            vec!["groups[web].resources[app].depends: unknown resource \"db\" (not in group \"web\")"]
        );
    }

    #[test]
    fn self_and_twice_listed_dependencies() {
        let p = problems(&with_groups(
            r#"Group(name: "g", resources: [
                 Resource(name: "a", kind: Exec(start: "/a"), depends: ["a"]),
                 Resource(name: "b", kind: Exec(start: "/b"), depends: ["c", "c"]),
                 Resource(name: "c", kind: Exec(start: "/c"), depends: [])])"#,
        ));
        assert!(
            has(
                &p,
                "groups[g].resources[a].depends: resource \"a\" depends on itself"
            ),
            "{p:?}"
        );
        assert!(
            has(&p, "groups[g].resources[b].depends: \"c\" is listed twice"),
            "{p:?}"
        );
    }

    #[test]
    fn dependency_cycle() {
        let p = problems(&with_groups(
            r#"Group(name: "g", resources: [
                 Resource(name: "a", kind: Exec(start: "/a"), depends: ["b"]),
                 Resource(name: "b", kind: Exec(start: "/b"), depends: ["a"])])"#,
        ));
        assert_eq!(
            p,
            vec!["groups[g].resources: dependency cycle: a -> b -> a"]
        );
    }

    #[test]
    fn duplicate_names() {
        let text = r#"Cluster(name: "c", servers: [Server(name: "s1"), Server(name: "s1")],
            groups: [
              Group(name: "g", resources: [Resource(name: "a", kind: Exec(start: "/a")), Resource(name: "a", kind: Exec(start: "/a"))]),
              Group(name: "g", resources: [Resource(name: "a", kind: Exec(start: "/a"))]),
            ])"#;
        let p = problems(text);
        assert!(
            has(&p, "servers[s1].name: duplicate server name \"s1\""),
            "{p:?}"
        );
        assert!(
            has(&p, "groups[g].name: duplicate group name \"g\""),
            "{p:?}"
        );
        assert!(
            has(
                &p,
                "groups[g].resources[a].name: duplicate resource name \"a\""
            ),
            "{p:?}"
        );
        assert!(
            has(&p, "(also in group \"g\")")
                || p.iter()
                    .filter(|l| l.contains("duplicate resource"))
                    .count()
                    == 2,
            "{p:?}"
        );
    }

    #[test]
    fn out_of_range_values() {
        let p = problems(&with_groups(
            r#"Group(name: "g", resources: [Resource(name: "a",
                 kind: Exec(start: "/a", start_timeout: 0, stop_timeout: 10000),
                 activation: (retry: 100, failover_threshold: 150),
                 deactivation: (retry: 1000))])"#,
        ));
        for field in [
            "kind.start_timeout: 0 is out of range (1-9999)",
            "kind.stop_timeout: 10000 is out of range (1-9999)",
            "activation.retry: 100 is out of range (0-99)",
            "activation.failover_threshold: 150 is out of range (0-99)",
            "deactivation.retry: 1000 is out of range (0-99)",
        ] {
            assert!(
                has(&p, &format!("groups[g].resources[a].{field}")),
                "{field}: {p:?}"
            );
        }
        assert_eq!(p.len(), 5, "{p:?}");
    }

    #[test]
    fn unknown_and_repeated_group_servers() {
        let p = problems(&with_groups(
            r#"Group(name: "g", servers: ["s1", "s9", "s1"])"#,
        ));
        assert!(has(&p, "groups[g].servers: unknown server \"s9\""), "{p:?}");
        assert!(
            has(&p, "groups[g].servers: server \"s1\" is listed twice"),
            "{p:?}"
        );
        let p = problems(&with_groups(r#"Group(name: "g", servers: [])"#));
        assert!(
            has(&p, "groups[g].servers: no server may run this group"),
            "{p:?}"
        );
    }

    #[test]
    fn bad_names_and_addresses() {
        let text = r#"Cluster(name: "my cluster", servers: [Server(name: "-s1", interconnects: ["300.1.1.1"])],
            groups: [Group(name: "a-very-long-group-name-that-goes-on", resources: [
               Resource(name: "vip", kind: Fip(address: "198.51.100.400/24", interface: "this-is-too-long0")),
               Resource(name: "vip2", kind: Fip(address: "198.51.100.7/33"))])])"#;
        let p = problems(text);
        assert!(has(&p, "name: \"my cluster\" may only hold"), "{p:?}");
        assert!(has(&p, "servers[-s1].name: \"-s1\" may only hold"), "{p:?}");
        assert!(
            has(
                &p,
                "servers[-s1].interconnects[0]: \"300.1.1.1\" is not an IP address"
            ),
            "{p:?}"
        );
        assert!(has(&p, "is longer than 31 bytes"), "{p:?}");
        assert!(
            has(
                &p,
                "resources[vip].kind.address: \"198.51.100.400/24\" is not an IPv4 address"
            ),
            "{p:?}"
        );
        assert!(has(&p, "resources[vip].kind.interface: \"this-is-too-long0\" is not a valid interface name"), "{p:?}");
        assert!(has(&p, "resources[vip2].kind.address"), "{p:?}");
    }

    #[test]
    fn duplicate_check_timing_ranges() {
        let p = problems(&with_groups(
            r#"Group(name: "g", resources: [
                Resource(name: "v1", kind: Fip(address: "198.51.100.10", duplicate_check_ms: 9, duplicate_grace_ms: 60001)),
                Resource(name: "v2", kind: Fip(address: "198.51.100.11", duplicate_check_ms: 10, duplicate_grace_ms: 0)),
                Resource(name: "v3", kind: Fip(address: "198.51.100.12", duplicate_check_ms: 10000, duplicate_grace_ms: 60000))])"#,
        ));
        assert_eq!(
            p,
            vec![
                "groups[g].resources[v1].kind.duplicate_check_ms: 9 is out of range (10-10000)",
                "groups[g].resources[v1].kind.duplicate_grace_ms: 60001 is out of range (0-60000)",
            ]
        );
    }

    #[test]
    fn duplicate_floating_ip() {
        let p = problems(&with_groups(
            r#"Group(name: "g1", resources: [Resource(name: "v1", kind: Fip(address: "198.51.100.10/24"))]),
               Group(name: "g2", resources: [Resource(name: "v2", kind: Fip(address: "198.51.100.10"))])"#,
        ));
        assert_eq!(
            p,
            vec!["groups[g2].resources[v2].kind.address: address 198.51.100.10 is already used by resource g1/v1"]
        );
    }

    #[test]
    fn a_disk_device_or_mount_point_belongs_to_one_resource() {
        let p = problems(&with_groups(
            r#"Group(name: "g1", resources: [Resource(name: "d1", kind: Disk(device: "/dev/sdb2", mount_point: "/mnt/a", fs_type: "ext4"))]),
               Group(name: "g2", resources: [Resource(name: "d2", kind: Disk(device: "/dev/sdb2", mount_point: "/mnt/a/", fs_type: "ext4")),
                                             Resource(name: "d3", kind: Disk(device: "/dev/sdb3", mount_point: "/mnt/c", fs_type: "ext4", mount_retry: 100))])"#,
        ));
        assert_eq!(
            p,
            vec![
                "groups[g2].resources[d2].kind.device: device /dev/sdb2 is already used by resource g1/d1",
                "groups[g2].resources[d2].kind.mount_point: mount point /mnt/a is already used by resource g1/d1",
                "groups[g2].resources[d3].kind.mount_retry: 100 is out of range (0-99)",
            ]
        );
    }

    #[test]
    fn stop_group_is_not_a_deactivation_action() {
        let p = problems(&with_groups(
            r#"Group(name: "g", resources: [Resource(name: "a", kind: Exec(start: "/a"), deactivation: (final_action: StopGroup))])"#,
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("groups[g].resources[a].deactivation.final_action: StopGroup"),
            "{p:?}"
        );
    }

    #[test]
    fn empty_things() {
        let p = problems(
            r#"Cluster(name: "", servers: [], os_actions: (shutdown: [], reboot: [""]),
                       control: (admin_group: "a b"),
                       groups: [Group(name: "g", resources: [Resource(name: "a", kind: Exec(start: " ", stop: ""))])])"#,
        );
        for needle in [
            "name: name is empty",
            "servers: at least one server is required",
            "os_actions.shutdown: the command is empty",
            "os_actions.reboot: the command is empty",
            "control.admin_group: \"a b\" is not a valid group name",
            "groups[g].resources[a].kind.start: script path is empty",
            "groups[g].resources[a].kind.stop: script path is empty",
            "groups[g].servers",
        ] {
            if needle == "groups[g].servers" {
                continue; // an absent list means every server; nothing to report
            }
            assert!(has(&p, needle), "{needle}: {p:?}");
        }
    }

    #[test]
    fn many_problems_are_reported_together() {
        let p = problems(&with_groups(
            r#"Group(name: "web", servers: ["nope"], resources: [
                 Resource(name: "app", kind: Exec(start: "/a", start_timeout: 0), depends: ["db"], bogus: 1)])"#,
        ));
        assert_eq!(p.len(), 4, "{p:?}");
    }
}
