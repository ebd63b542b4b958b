//! `fip` monitor (the product's floating IP monitor): the address of the
//! monitor's target floating IP resource is still on its interface, and,
//! with `check_link`, that interface's link is up.
//!
//! The interface is the resource's `interface`, or, when the resource picks
//! it by network, the one [`driver::resolve_interface`] finds at each check.
//! When that lookup fails (e.g. the address and the interface's other
//! addresses are gone) the interface found last is used, so the message still
//! names it. Presence is asked with [`driver::is_present`] (one netlink
//! connection per call); the link is judged as the `link` monitor does, over
//! a connection kept by the probe.

use std::cell::RefCell;
use std::rc::Rc;

pub use understudy_brain::monitor::fip::FipMonitorConfig;

use super::link::{link_state, NetlinkConn};
use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};
use crate::model::config::ClusterConfig;
use crate::resource::fip::{driver, FipConfig};
use crate::resource::ResourceKind;

impl BuildProbe for FipMonitorConfig {
    fn probe(&self, build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        let fip = fip_of(&build.config, build.target.as_deref())?;
        Ok(Box::new(FipProbe::new(fip, self.check_link)))
    }
}

/// The settings of the floating IP resource named `target`.
fn fip_of(config: &ClusterConfig, target: Option<&str>) -> Result<FipConfig, String> {
    let name = target.ok_or("a fip monitor needs a target (fip resource)")?;
    let (_, resource) = config
        .resource(name)
        .ok_or_else(|| format!("unknown resource \"{name}\""))?;
    match &resource.kind {
        ResourceKind::Fip(fip) => Ok(fip.clone()),
        other => Err(format!(
            "resource \"{name}\" is of kind {}, not fip",
            other.type_name()
        )),
    }
}

/// Checks one floating IP.
pub struct FipProbe {
    fip: Rc<FipConfig>,
    check_link: bool,
    conn: NetlinkConn,
    /// The interface the last check used (for resources without one).
    last_interface: Rc<RefCell<Option<String>>>,
}

impl FipProbe {
    pub fn new(fip: FipConfig, check_link: bool) -> Self {
        FipProbe {
            fip: Rc::new(fip),
            check_link,
            conn: NetlinkConn::default(),
            last_interface: Rc::new(RefCell::new(None)),
        }
    }
}

impl Probe for FipProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let fip = self.fip.clone();
        let check_link = self.check_link;
        let conn = self.conn.clone();
        let last = self.last_interface.clone();
        Box::pin(async move {
            let cidr = match fip.parsed() {
                Some((ip, prefix)) => format!("{ip}/{prefix}"),
                None => fip.address.clone(),
            };
            let interface = match &fip.interface {
                Some(i) => i.clone(),
                None => match driver::resolve_interface(&fip).await {
                    Ok(i) => {
                        *last.borrow_mut() = Some(i.clone());
                        i
                    }
                    Err(e) => match last.borrow().clone() {
                        Some(i) => i,
                        None => return Check::Error(format!("{cidr}: {e}")),
                    },
                },
            };
            let on_interface = FipConfig {
                interface: Some(interface.clone()),
                ..(*fip).clone()
            };
            match driver::is_present(&on_interface).await {
                Ok(true) => {}
                Ok(false) => {
                    return Check::Error(format!("{cidr} is no longer on {interface}"));
                }
                Err(e) if e.contains("not found") => {
                    return Check::Error(format!(
                        "{cidr} is no longer on {interface} (interface {interface} does not exist)"
                    ));
                }
                Err(e) => {
                    return Check::Error(format!("cannot check {cidr} on {interface}: {e}"));
                }
            }
            if check_link {
                link_state(&conn, &interface).await
            } else {
                Check::Normal
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::link::netns::{ns_ip, require_env, Netns};
    use super::*;
    use crate::model::config::parse;
    use crate::monitor::MonitorKind;
    use std::time::{Duration, Instant};

    const CLUSTER: &str = r#"Cluster(name: "c", servers: [Server(name: "s1")],
        groups: [Group(name: "web", resources: [
          Resource(name: "vip", kind: Fip(address: "198.51.100.10/24", interface: "eth0")),
          Resource(name: "app", kind: Exec(start: "/a", start_mode: Async)),
        ])],
        monitors: [
          Monitor(name: "fipw", kind: Fip(), target: "vip"),
          Monitor(name: "fipw2", kind: Fip(check_link: true), target: "vip"),
          Monitor(name: "psw", kind: Process(name: "nginx", min_count: 2), recovery: (target: Group("web"))),
          Monitor(name: "sysw", kind: System(memory: (error: 90), disks: [(path: "/", warning: 80, error: 95, duration: 0)]), recovery: (target: Group("web"))),
          Monitor(name: "miiw", kind: Link(interface: "eth0"), recovery: (target: Group("web"))),
        ])"#;

    fn fip(interface: Option<&str>) -> FipConfig {
        FipConfig {
            address: "198.51.100.10/24".into(),
            interface: interface.map(str::to_string),
            gratuitous_arp: 0,
            duplicate_check: false,
            duplicate_check_ms: 100,
            duplicate_grace_ms: 0,
        }
    }

    /// Checks until the answer satisfies `want` or 5 s pass.
    async fn settle(probe: &mut FipProbe, want: impl Fn(&Check) -> bool) -> Check {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let c = probe.check(&ProbeEnv::default()).await;
            if want(&c) || Instant::now() >= deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A namespace with v0 <-veth-> v1, both up, v0 holding 198.51.100.1/24.
    fn topology(tag: &str) -> Netns {
        let ns = Netns::new(tag);
        ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ns.ip(&["addr", "add", "198.51.100.1/24", "dev", "v0"]);
        ns.ip(&["link", "set", "v0", "up"]);
        ns.ip(&["link", "set", "v1", "up"]);
        ns
    }

    #[test]
    fn a_cluster_with_every_new_kind_parses() {
        let config = parse("c.ron", CLUSTER).unwrap_or_else(|p| panic!("{p:?}"));
        let kinds: Vec<&MonitorKind> = config.monitors.iter().map(|m| &m.kind).collect();
        assert_eq!(
            *kinds[1],
            MonitorKind::Fip(FipMonitorConfig { check_link: true })
        );
        assert_eq!(*kinds[0], MonitorKind::Fip(FipMonitorConfig::default()));
        assert_eq!(
            fip_of(&config, Some("vip")).unwrap(),
            FipConfig {
                address: "198.51.100.10/24".into(),
                interface: Some("eth0".into()),
                gratuitous_arp: 3,
                duplicate_check: true,
                duplicate_check_ms: 1000,
                duplicate_grace_ms: 3000,
            }
        );
        assert_eq!(
            fip_of(&config, None).unwrap_err(),
            "a fip monitor needs a target (fip resource)"
        );
        assert_eq!(
            fip_of(&config, Some("db")).unwrap_err(),
            "unknown resource \"db\""
        );
        assert_eq!(
            fip_of(&config, Some("app")).unwrap_err(),
            "resource \"app\" is of kind exec, not fip"
        );
    }

    #[test]
    fn address_removed_and_link_down() {
        require_env!();
        let ns = topology("fip");
        ns.ip(&["addr", "add", "198.51.100.10/24", "dev", "v0"]);
        let name = ns.name.clone();
        ns.run(move || async move {
            let mut plain = FipProbe::new(fip(Some("v0")), false);
            let mut linked = FipProbe::new(fip(Some("v0")), true);
            assert_eq!(plain.check(&ProbeEnv::default()).await, Check::Normal);
            assert_eq!(
                settle(&mut linked, |c| *c == Check::Normal).await,
                Check::Normal
            );

            // Pulled cable: the address stays, the link goes.
            ns_ip(&name, &["link", "set", "v1", "down"]);
            let no_carrier = Check::Error("link of v0 is down (no carrier)".into());
            assert_eq!(settle(&mut linked, |c| *c == no_carrier).await, no_carrier);
            assert_eq!(plain.check(&ProbeEnv::default()).await, Check::Normal);
            ns_ip(&name, &["link", "set", "v1", "up"]);
            assert_eq!(
                settle(&mut linked, |c| *c == Check::Normal).await,
                Check::Normal
            );

            ns_ip(&name, &["addr", "del", "198.51.100.10/24", "dev", "v0"]);
            let gone = Check::Error("198.51.100.10/24 is no longer on v0".into());
            assert_eq!(plain.check(&ProbeEnv::default()).await, gone);
            assert_eq!(linked.check(&ProbeEnv::default()).await, gone);

            // The same address with another prefix is not the floating IP.
            ns_ip(&name, &["addr", "add", "198.51.100.10/25", "dev", "v0"]);
            assert_eq!(plain.check(&ProbeEnv::default()).await, gone);

            ns_ip(&name, &["link", "del", "v0"]);
            assert_eq!(
                plain.check(&ProbeEnv::default()).await,
                Check::Error(
                    "198.51.100.10/24 is no longer on v0 (interface v0 does not exist)".into()
                )
            );
        });
    }

    #[test]
    fn interface_found_by_network() {
        require_env!();
        let ns = topology("auto");
        ns.ip(&["addr", "add", "198.51.100.10/24", "dev", "v0"]);
        let name = ns.name.clone();
        ns.run(move || async move {
            let mut p = FipProbe::new(fip(None), false);
            assert_eq!(p.check(&ProbeEnv::default()).await, Check::Normal);
            ns_ip(&name, &["addr", "del", "198.51.100.10/24", "dev", "v0"]);
            let gone = Check::Error("198.51.100.10/24 is no longer on v0".into());
            assert_eq!(p.check(&ProbeEnv::default()).await, gone);
            // No address left in the network: the interface found last.
            ns_ip(&name, &["addr", "del", "198.51.100.1/24", "dev", "v0"]);
            assert_eq!(p.check(&ProbeEnv::default()).await, gone);
            // A probe that never found it says why.
            let mut fresh = FipProbe::new(fip(None), false);
            assert!(matches!(
                fresh.check(&ProbeEnv::default()).await,
                Check::Error(m) if m.starts_with("198.51.100.10/24: no interface has an IPv4 network containing 198.51.100.10")
            ));
        });
    }
}
