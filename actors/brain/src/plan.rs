//! Activation plans: the order in which a group's resources start (every
//! resource after the ones it depends on) and stop (the exact reverse).

use std::collections::BTreeMap;

use super::config::{GroupConfig, ResourceConfig};

/// The resolved dependencies of one resource: explicit ones, or the kind's
/// default (every resource of the group whose kind is in the default list).
pub fn dependencies(group: &GroupConfig, resource: &ResourceConfig) -> Vec<String> {
    match &resource.depends {
        Some(list) => list.clone(),
        None => {
            let kinds = resource.kind.default_dependency_kinds();
            group
                .resources
                .iter()
                .filter(|r| r.name != resource.name && kinds.contains(&r.kind.type_name()))
                .map(|r| r.name.clone())
                .collect()
        }
    }
}

/// Every resource `resource` depends on, directly or through the resources
/// it depends on (each once, nearest first). Unknown names and cycles are
/// tolerated: a name is followed once.
pub fn all_dependencies(group: &GroupConfig, resource: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next: Vec<String> = group
        .resources
        .iter()
        .find(|r| r.name == resource)
        .map(|r| dependencies(group, r))
        .unwrap_or_default();
    while !next.is_empty() {
        let mut further = Vec::new();
        for name in next {
            if name == resource || out.contains(&name) {
                continue;
            }
            if let Some(r) = group.resources.iter().find(|r| r.name == name) {
                further.extend(dependencies(group, r));
            }
            out.push(name);
        }
        next = further;
    }
    out
}

/// Why no order exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Names a dependency that is not a resource of the group.
    Unknown { resource: String, missing: String },
    /// A cycle, listed in order and closed (`a -> b -> a`).
    Cycle(Vec<String>),
}

/// Activation order: a topological order of the group's resources; among
/// resources whose dependencies are met, the one listed first in the config
/// goes first, so the order is deterministic.
pub fn activation_order(group: &GroupConfig) -> Result<Vec<String>, PlanError> {
    // Duplicate names are a validation error; plan with the first of each.
    let mut names: Vec<&str> = Vec::with_capacity(group.resources.len());
    for r in &group.resources {
        if !names.contains(&r.name.as_str()) {
            names.push(r.name.as_str());
        }
    }
    let mut deps: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in &group.resources {
        if deps.contains_key(r.name.as_str()) {
            continue;
        }
        let d = dependencies(group, r);
        for dep in &d {
            if !names.contains(&dep.as_str()) {
                return Err(PlanError::Unknown {
                    resource: r.name.clone(),
                    missing: dep.clone(),
                });
            }
        }
        deps.insert(r.name.as_str(), d);
    }
    let mut done: Vec<String> = Vec::with_capacity(names.len());
    while done.len() < names.len() {
        let next = names
            .iter()
            .find(|n| !done.iter().any(|d| d == *n) && deps[*n].iter().all(|d| done.contains(d)));
        match next {
            Some(n) => done.push(n.to_string()),
            None => {
                let rest: Vec<&str> = names
                    .iter()
                    .copied()
                    .filter(|n| !done.iter().any(|d| d == n))
                    .collect();
                return Err(PlanError::Cycle(find_cycle(&rest, &deps)));
            }
        }
    }
    Ok(done)
}

/// Deactivation order: the reverse of the activation order.
pub fn deactivation_order(group: &GroupConfig) -> Result<Vec<String>, PlanError> {
    let mut order = activation_order(group)?;
    order.reverse();
    Ok(order)
}

/// The resources a restart of `resource` touches: itself and every resource
/// that depends on it, directly or not (they must stop before it and start
/// after it).
pub fn with_dependents(group: &GroupConfig, resource: &str) -> Vec<String> {
    let mut set = vec![resource.to_string()];
    let mut grew = true;
    while grew {
        grew = false;
        for r in &group.resources {
            if set.contains(&r.name) {
                continue;
            }
            if dependencies(group, r).iter().any(|d| set.contains(d)) {
                set.push(r.name.clone());
                grew = true;
            }
        }
    }
    set
}

/// Walks dependencies from the first stuck resource until a name repeats.
fn find_cycle(stuck: &[&str], deps: &BTreeMap<&str, Vec<String>>) -> Vec<String> {
    let mut path: Vec<String> = vec![stuck[0].to_string()];
    loop {
        let last = path.last().unwrap().clone();
        let next = deps[last.as_str()]
            .iter()
            .find(|d| stuck.contains(&d.as_str()))
            .cloned();
        let Some(next) = next else { return path };
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle = path.split_off(pos);
            cycle.push(next);
            return cycle;
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::read;

    #[test]
    fn a_restart_touches_the_resource_and_everything_above_it() {
        let text = r#"Cluster(name: "c", servers: [Server(name: "s1")], groups: [Group(name: "g", resources: [
            Resource(name: "vip", kind: Fip(address: "198.51.100.10/24")),
            Resource(name: "db", kind: Exec(start: "/a"), depends: ["vip"]),
            Resource(name: "app", kind: Exec(start: "/a"), depends: ["db"]),
            Resource(name: "side", kind: Exec(start: "/a"), depends: []),
        ])])"#;
        let (c, _) = read("c.ron", text).unwrap();
        let g = &c.groups[0];
        let mut v = with_dependents(g, "vip");
        v.sort();
        assert_eq!(v, ["app", "db", "vip"]);
        assert_eq!(with_dependents(g, "app"), ["app"]);
        assert_eq!(with_dependents(g, "side"), ["side"]);
    }

    fn group(resources: &str) -> GroupConfig {
        let text = format!(
            r#"Cluster(name: "t", servers: [Server(name: "s1")],
               groups: [Group(name: "g", resources: [{resources}])])"#
        );
        read("t.ron", &text).unwrap().0.groups[0].clone()
    }

    #[test]
    fn exec_depends_on_floating_ips_by_default() {
        let g = group(
            r#"Resource(name: "app", kind: Exec(start: "/a")),
               Resource(name: "vip", kind: Fip(address: "198.51.100.10/24")),
               Resource(name: "vip2", kind: Fip(address: "198.51.100.11/24"))"#,
        );
        assert_eq!(dependencies(&g, &g.resources[0]), vec!["vip", "vip2"]);
        assert_eq!(activation_order(&g).unwrap(), vec!["vip", "vip2", "app"]);
        assert_eq!(deactivation_order(&g).unwrap(), vec!["app", "vip2", "vip"]);
    }

    #[test]
    fn exec_depends_on_disks_too_and_a_disk_on_nothing() {
        // The seed's group: a floating IP, a disk, two exec resources.
        let g = group(
            r#"Resource(name: "exec1", kind: Exec(start: "/a")),
               Resource(name: "fip1", kind: Fip(address: "198.51.100.10/24")),
               Resource(name: "disk1", kind: Disk(device: "/dev/sdb2", mount_point: "/mnt/sdb2", fs_type: "ext3")),
               Resource(name: "exec2", kind: Exec(start: "/b"))"#,
        );
        assert_eq!(dependencies(&g, &g.resources[0]), vec!["fip1", "disk1"]);
        assert!(dependencies(&g, &g.resources[2]).is_empty());
        assert_eq!(
            activation_order(&g).unwrap(),
            vec!["fip1", "disk1", "exec1", "exec2"]
        );
        assert_eq!(
            deactivation_order(&g).unwrap(),
            vec!["exec2", "exec1", "disk1", "fip1"]
        );
        // A restart of the disk restarts the exec resources on it.
        let mut v = with_dependents(&g, "disk1");
        v.sort();
        assert_eq!(v, ["disk1", "exec1", "exec2"]);
    }

    #[test]
    fn all_dependencies_follow_the_chain_once() {
        let g = group(
            r#"Resource(name: "a", kind: Exec(start: "/a"), depends: ["b"]),
               Resource(name: "b", kind: Exec(start: "/b"), depends: ["c", "d"]),
               Resource(name: "c", kind: Exec(start: "/c"), depends: ["d"]),
               Resource(name: "d", kind: Disk(device: "/dev/x", mount_point: "/m", fs_type: "ext4")),
               Resource(name: "e", kind: Exec(start: "/e"), depends: ["e", "zz"])"#,
        );
        assert_eq!(all_dependencies(&g, "a"), vec!["b", "c", "d"]);
        assert_eq!(all_dependencies(&g, "d"), Vec::<String>::new());
        assert_eq!(all_dependencies(&g, "e"), vec!["zz"]);
        assert_eq!(all_dependencies(&g, "nobody"), Vec::<String>::new());
    }

    #[test]
    fn explicit_dependencies_override_the_default() {
        let g = group(
            r#"Resource(name: "app", kind: Exec(start: "/a"), depends: []),
               Resource(name: "db", kind: Exec(start: "/d"), depends: ["app"]),
               Resource(name: "vip", kind: Fip(address: "198.51.100.10"))"#,
        );
        assert_eq!(activation_order(&g).unwrap(), vec!["app", "db", "vip"]);
    }

    #[test]
    fn config_order_breaks_ties() {
        let g = group(
            r#"Resource(name: "c", kind: Exec(start: "/c"), depends: ["a"]),
               Resource(name: "b", kind: Exec(start: "/b"), depends: []),
               Resource(name: "a", kind: Exec(start: "/a"), depends: [])"#,
        );
        assert_eq!(activation_order(&g).unwrap(), vec!["b", "a", "c"]);
        assert_eq!(deactivation_order(&g).unwrap(), vec!["c", "a", "b"]);
    }

    #[test]
    fn cycles_are_named() {
        let g = group(
            r#"Resource(name: "a", kind: Exec(start: "/a"), depends: ["b"]),
               Resource(name: "b", kind: Exec(start: "/b"), depends: ["c"]),
               Resource(name: "c", kind: Exec(start: "/c"), depends: ["a"]),
               Resource(name: "d", kind: Exec(start: "/d"), depends: [])"#,
        );
        assert_eq!(
            activation_order(&g),
            Err(PlanError::Cycle(vec![
                "a".into(),
                "b".into(),
                "c".into(),
                "a".into()
            ]))
        );
    }

    #[test]
    fn unknown_dependency_is_reported() {
        let g = group(r#"Resource(name: "a", kind: Exec(start: "/a"), depends: ["db"])"#);
        assert_eq!(
            activation_order(&g),
            Err(PlanError::Unknown {
                resource: "a".into(),
                missing: "db".into()
            })
        );
    }
}
