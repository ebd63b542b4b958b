//! Placement: which server runs a group. Deterministic, so every server that
//! computes it gets the same answer: the survivors of a failure each decide
//! alone, from the same membership and the same last-known locations, and
//! exactly one of them (the destination) acts.

use std::collections::BTreeMap;

use super::config::{ClusterConfig, FailbackAttribute, StartupAttribute};
use super::state::RunState;

/// First server of the group's `order` for which `eligible` holds.
pub fn startup_server(order: &[String], eligible: impl Fn(&str) -> bool) -> Option<&str> {
    order.iter().map(|s| s.as_str()).find(|s| eligible(s))
}

/// Failover destination: the first eligible server in the group's order
/// other than the one it is leaving.
pub fn failover_destination<'a>(
    order: &'a [String],
    leaving: &str,
    eligible: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    startup_server(order, |s| s != leaving && eligible(s))
}

/// `CLP_PRIORITY`: 1-based position of `server` in the group's order.
pub fn priority(order: &[String], server: &str) -> Option<usize> {
    order.iter().position(|s| s == server).map(|i| i + 1)
}

/// Where groups are active, server by server: this server's own view plus
/// what every peer's heartbeat says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupLocations {
    /// server -> group -> state (only states other than Offline).
    by_server: BTreeMap<String, BTreeMap<String, RunState>>,
}

impl GroupLocations {
    /// Replaces what is known of `server` with `groups`.
    pub fn set_server(
        &mut self,
        server: &str,
        groups: impl IntoIterator<Item = (String, RunState)>,
    ) {
        let map: BTreeMap<String, RunState> = groups
            .into_iter()
            .filter(|(_, s)| s.may_be_active())
            .collect();
        if map.is_empty() {
            self.by_server.remove(server);
        } else {
            self.by_server.insert(server.to_string(), map);
        }
    }

    /// Forgets that `group` runs on `server` (it said it stopped it: a move
    /// reaches the destination before the source's next advert).
    pub fn forget(&mut self, server: &str, group: &str) {
        if let Some(m) = self.by_server.get_mut(server) {
            m.remove(group);
            if m.is_empty() {
                self.by_server.remove(server);
            }
        }
    }

    /// Forgets `server` (it is down: nothing of it is active any more).
    pub fn clear_server(&mut self, server: &str) {
        self.by_server.remove(server);
    }

    /// Groups that may be active on `server`.
    pub fn groups_on(&self, server: &str) -> Vec<String> {
        self.by_server
            .get(server)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Servers where `group` may be active, in name order.
    pub fn holders(&self, group: &str) -> Vec<String> {
        self.by_server
            .iter()
            .filter(|(_, m)| m.contains_key(group))
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub fn state(&self, server: &str, group: &str) -> Option<RunState> {
        self.by_server
            .get(server)
            .and_then(|m| m.get(group))
            .copied()
    }
}

/// What this server should do about a group, decided by [`takeover`],
/// [`startup`] or [`failback`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start the group here: it failed over from `from`.
    Failover { group: String, from: String },
    /// Start the group here: startup attribute Auto, the cluster has formed.
    Start { group: String },
    /// The group runs here and should go back to `to` (failback Auto).
    Move { group: String, to: String },
    /// Nobody can take the group over.
    NoDestination { group: String, from: String },
}

/// `down` has gone: for each group it held (per `before`, the locations
/// just before it went), the destination is the first eligible server in the
/// group's order. Returns what concerns `local`: the groups to start here,
/// and, when `local` is the first eligible server of the cluster, the groups
/// nobody can take (so one survivor reports them, not every one).
pub fn takeover(
    config: &ClusterConfig,
    local: &str,
    down: &str,
    before: &GroupLocations,
    eligible: impl Fn(&str) -> bool,
) -> Vec<Decision> {
    let mut out = Vec::new();
    let reporter = config
        .server_names()
        .into_iter()
        .find(|s| s != down && eligible(s));
    for group in before.groups_on(down) {
        // Also active elsewhere: that copy stays, nothing to take over.
        if before.holders(&group).iter().any(|s| s != down) {
            continue;
        }
        let Some(g) = config.group(&group) else {
            continue;
        };
        let order = config.group_servers(g);
        match failover_destination(&order, down, &eligible) {
            Some(dest) if dest == local => out.push(Decision::Failover {
                group,
                from: down.to_string(),
            }),
            Some(_) => {}
            None if reporter.as_deref() == Some(local) => out.push(Decision::NoDestination {
                group,
                from: down.to_string(),
            }),
            None => {}
        }
    }
    out
}

/// The cluster has formed: groups with startup attribute Auto that are
/// active nowhere start on the first eligible server of their order.
pub fn startup(
    config: &ClusterConfig,
    local: &str,
    now: &GroupLocations,
    eligible: impl Fn(&str) -> bool,
) -> Vec<Decision> {
    config
        .groups
        .iter()
        .filter(|g| g.startup == StartupAttribute::Auto && now.holders(&g.name).is_empty())
        .filter(|g| startup_server(&config.group_servers(g), &eligible) == Some(local))
        .map(|g| Decision::Start {
            group: g.name.clone(),
        })
        .collect()
}

/// Groups with failback Auto running Online here, and only here, while a
/// server earlier in their order is eligible, go back to the first such one.
pub fn failback(
    config: &ClusterConfig,
    local: &str,
    now: &GroupLocations,
    eligible: impl Fn(&str) -> bool,
) -> Vec<Decision> {
    let mut out = Vec::new();
    for g in &config.groups {
        if g.failback != FailbackAttribute::Auto
            || now.state(local, &g.name) != Some(RunState::Online)
            || now.holders(&g.name).len() != 1
        {
            continue;
        }
        let order = config.group_servers(g);
        if let Some(best) = startup_server(&order, |s| s == local || eligible(s)) {
            if best != local {
                out.push(Decision::Move {
                    group: g.name.clone(),
                    to: best.to_string(),
                });
            }
        }
    }
    out
}

/// Groups active on two or more servers at once, with those servers.
pub fn double_active(
    locations: &GroupLocations,
    config: &ClusterConfig,
) -> Vec<(String, Vec<String>)> {
    config
        .groups
        .iter()
        .map(|g| (g.name.clone(), locations.holders(&g.name)))
        .filter(|(_, h)| h.len() > 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(groups: &str) -> ClusterConfig {
        let text = format!(
            r#"Cluster(name: "c", servers: [
                 Server(name: "a", interconnects: ["198.51.100.1"]),
                 Server(name: "b", interconnects: ["198.51.100.2"]),
                 Server(name: "c", interconnects: ["198.51.100.3"])],
               heartbeat: (key_file: "/k"),
               groups: [{groups}])"#
        );
        crate::config::parse("t.ron", &text).expect("valid")
    }

    fn locs(entries: &[(&str, &str, RunState)]) -> GroupLocations {
        let mut by: BTreeMap<&str, Vec<(String, RunState)>> = BTreeMap::new();
        for (s, g, st) in entries {
            by.entry(s).or_default().push((g.to_string(), *st));
        }
        let mut l = GroupLocations::default();
        for (s, gs) in by {
            l.set_server(s, gs);
        }
        l
    }

    fn fo(group: &str, from: &str) -> Decision {
        Decision::Failover {
            group: group.into(),
            from: from.into(),
        }
    }

    #[test]
    fn exactly_the_next_eligible_server_takes_a_group_over() {
        let c = cluster(r#"Group(name: "web"), Group(name: "db", servers: ["a", "c", "b"])"#);
        let before = locs(&[
            ("a", "web", RunState::Online),
            ("a", "db", RunState::Online),
        ]);
        let up = |s: &str| s != "a";
        assert_eq!(takeover(&c, "b", "a", &before, up), vec![fo("web", "a")]);
        assert_eq!(takeover(&c, "c", "a", &before, up), vec![fo("db", "a")]);
        // c is not eligible (say, another config digest): b takes both.
        let only_b = |s: &str| s == "b";
        assert_eq!(takeover(&c, "b", "a", &before, only_b).len(), 2);
        assert!(takeover(&c, "c", "a", &before, only_b).is_empty());
    }

    #[test]
    fn a_group_nobody_can_take_is_reported_by_one_survivor() {
        let c = cluster(r#"Group(name: "web", servers: ["a"])"#);
        let before = locs(&[("a", "web", RunState::Online)]);
        let up = |s: &str| s != "a";
        assert_eq!(
            takeover(&c, "b", "a", &before, up),
            vec![Decision::NoDestination {
                group: "web".into(),
                from: "a".into()
            }]
        );
        assert!(takeover(&c, "c", "a", &before, up).is_empty());
    }

    #[test]
    fn a_group_also_active_elsewhere_is_not_taken_over() {
        let c = cluster(r#"Group(name: "web")"#);
        let before = locs(&[
            ("a", "web", RunState::Online),
            ("c", "web", RunState::OnlinePending),
        ]);
        assert!(takeover(&c, "b", "a", &before, |s| s != "a").is_empty());
    }

    #[test]
    fn offline_groups_are_not_locations() {
        let mut l = GroupLocations::default();
        l.set_server("a", vec![("web".to_string(), RunState::Offline)]);
        assert!(l.holders("web").is_empty());
        l.set_server("a", vec![("web".to_string(), RunState::OfflineFailure)]);
        assert_eq!(l.holders("web"), vec!["a".to_string()]);
        l.clear_server("a");
        assert!(l.groups_on("a").is_empty());
    }

    #[test]
    fn startup_starts_auto_groups_on_the_first_eligible_server_only() {
        let c = cluster(
            r#"Group(name: "web"), Group(name: "db", servers: ["b", "a"]), Group(name: "man", startup: Manual)"#,
        );
        let none = GroupLocations::default();
        let start = |g: &str| Decision::Start { group: g.into() };
        assert_eq!(startup(&c, "a", &none, |_| true), vec![start("web")]);
        assert_eq!(startup(&c, "b", &none, |_| true), vec![start("db")]);
        // a is missing: b starts web too.
        assert_eq!(startup(&c, "b", &none, |s| s != "a").len(), 2);
        // Already running somewhere: nothing to start.
        let running = locs(&[("c", "web", RunState::Online)]);
        assert!(startup(&c, "a", &running, |_| true).is_empty());
    }

    #[test]
    fn failback_returns_a_group_to_the_first_server_of_its_order() {
        let c = cluster(r#"Group(name: "web", failback: Auto), Group(name: "db")"#);
        let on_b = locs(&[
            ("b", "web", RunState::Online),
            ("b", "db", RunState::Online),
        ]);
        assert_eq!(
            failback(&c, "b", &on_b, |_| true),
            vec![Decision::Move {
                group: "web".into(),
                to: "a".into()
            }]
        );
        // a not eligible (isolated, not recovered): the group stays.
        assert!(failback(&c, "b", &on_b, |s| s != "a").is_empty());
        // Not Online here yet: no move.
        let pending = locs(&[("b", "web", RunState::OnlinePending)]);
        assert!(failback(&c, "b", &pending, |_| true).is_empty());
        // Already on the first server.
        let on_a = locs(&[("a", "web", RunState::Online)]);
        assert!(failback(&c, "a", &on_a, |_| true).is_empty());
    }

    #[test]
    fn double_activity_is_found() {
        let c = cluster(r#"Group(name: "web"), Group(name: "db")"#);
        let l = locs(&[
            ("a", "web", RunState::Online),
            ("b", "web", RunState::Online),
            ("b", "db", RunState::Online),
        ]);
        assert_eq!(
            double_active(&l, &c),
            vec![("web".to_string(), vec!["a".to_string(), "b".to_string()])]
        );
    }

    fn order() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    #[test]
    fn first_eligible_in_order() {
        assert_eq!(startup_server(&order(), |_| true), Some("a"));
        assert_eq!(startup_server(&order(), |s| s != "a"), Some("b"));
        assert_eq!(startup_server(&order(), |_| false), None);
    }

    #[test]
    fn failover_skips_the_server_being_left() {
        assert_eq!(failover_destination(&order(), "a", |_| true), Some("b"));
        assert_eq!(failover_destination(&order(), "b", |_| true), Some("a"));
        assert_eq!(failover_destination(&order(), "a", |s| s == "c"), Some("c"));
        // Single server: nowhere to go.
        assert_eq!(
            failover_destination(&["a".to_string()], "a", |_| true),
            None
        );
    }

    #[test]
    fn priority_is_one_based() {
        assert_eq!(priority(&order(), "a"), Some(1));
        assert_eq!(priority(&order(), "c"), Some(3));
        assert_eq!(priority(&order(), "z"), None);
    }
}
