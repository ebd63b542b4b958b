//! `link` monitor (the product's NIC link up/down monitor): a network
//! interface is enabled and its link is up.
//!
//! A check asks the kernel for the interface over rtnetlink (no privilege
//! needed) and reads its flags:
//!
//! - `IFF_UP`: the interface is enabled (`ip link set X up`);
//! - `IFF_LOWER_UP`: the driver reports a carrier (cable in, peer up);
//! - `IFF_RUNNING`: the operational state (RFC 2863) is UP or UNKNOWN.
//!
//! All three must be set. Drivers that do not track an operational state
//! (loopback, dummy, tun) report UNKNOWN, which the kernel counts as running:
//! `lo` shows `UP,LOWER_UP` with state UNKNOWN and is Normal. DORMANT (e.g.
//! waiting for 802.1X) and LOWERLAYERDOWN links are not.
//!
//! The probe keeps one netlink connection, opened at its first check on the
//! current tokio runtime and opened again after a failure or timeout; it
//! closes when the probe is dropped.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};

pub use understudy_brain::monitor::link::LinkConfig;

pub use crate::model::host::valid_ifname;

use super::{BuildProbe, Check, CheckFuture, Probe, ProbeBuild, ProbeEnv};

/// Upper bound for one netlink lookup.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);

impl BuildProbe for LinkConfig {
    fn probe(&self, _build: &ProbeBuild) -> Result<Box<dyn Probe>, String> {
        Ok(Box::new(LinkProbe::new(&self.interface)))
    }
}

/// Checks the link of one interface.
pub struct LinkProbe {
    interface: Rc<str>,
    conn: NetlinkConn,
}

impl LinkProbe {
    pub fn new(interface: &str) -> Self {
        LinkProbe {
            interface: interface.into(),
            conn: NetlinkConn::default(),
        }
    }
}

impl Probe for LinkProbe {
    fn check(&mut self, _env: &ProbeEnv) -> CheckFuture {
        let interface = self.interface.clone();
        let conn = self.conn.clone();
        Box::pin(async move { link_state(&conn, &interface).await })
    }
}

/// A rtnetlink connection opened on first use, shared by the checks of one
/// probe, and opened again after it failed. The connection task runs on the
/// tokio runtime of the first check and ends when the last clone is dropped.
#[derive(Clone, Default)]
pub struct NetlinkConn {
    handle: Rc<RefCell<Option<rtnetlink::Handle>>>,
}

impl NetlinkConn {
    fn handle(&self) -> Result<rtnetlink::Handle, String> {
        if let Some(handle) = self.handle.borrow().as_ref() {
            return Ok(handle.clone());
        }
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| format!("cannot open a netlink socket: {e}"))?;
        tokio::spawn(conn);
        *self.handle.borrow_mut() = Some(handle.clone());
        Ok(handle)
    }

    /// Drops the connection; the next lookup opens a new one.
    fn reset(&self) {
        self.handle.borrow_mut().take();
    }
}

/// Looks up `ifname` and judges its link (see the module comment).
pub async fn link_state(conn: &NetlinkConn, ifname: &str) -> Check {
    if !valid_ifname(ifname) {
        return Check::Error(format!(
            "interface \"{}\" does not exist (not a valid name)",
            ifname.escape_debug()
        ));
    }
    let handle = match conn.handle() {
        Ok(h) => h,
        Err(e) => return Check::Error(e),
    };
    let req = handle.link().get().match_name(ifname).execute();
    let found = tokio::time::timeout(NETLINK_TIMEOUT, async move {
        futures_util::pin_mut!(req);
        req.try_next().await
    })
    .await;
    match found {
        Err(_) => {
            conn.reset();
            Check::Error(format!(
                "looking up interface {ifname} timed out after {} s",
                NETLINK_TIMEOUT.as_secs()
            ))
        }
        Ok(Ok(Some(link))) => judge(ifname, &link),
        Ok(Ok(None)) => Check::Error(format!("interface {ifname} does not exist")),
        Ok(Err(rtnetlink::Error::NetlinkError(m)))
            if m.code.map(|c| c.get().abs()) == Some(libc::ENODEV) =>
        {
            Check::Error(format!("interface {ifname} does not exist"))
        }
        Ok(Err(rtnetlink::Error::NetlinkError(m))) => {
            Check::Error(format!("cannot look up interface {ifname}: {}", m.to_io()))
        }
        Ok(Err(e)) => {
            // The connection itself failed: start afresh next time.
            conn.reset();
            Check::Error(format!("cannot look up interface {ifname}: {e}"))
        }
    }
}

fn judge(ifname: &str, link: &LinkMessage) -> Check {
    let oper = link.attributes.iter().find_map(|a| match a {
        LinkAttribute::OperState(s) => Some(*s),
        _ => None,
    });
    link_verdict(ifname, link.header.flags, oper)
}

/// Normal when `IFF_UP`, `IFF_LOWER_UP` and `IFF_RUNNING` are all set; else
/// an Error saying which is missing.
pub fn link_verdict(ifname: &str, flags: LinkFlags, oper: Option<State>) -> Check {
    if !flags.contains(LinkFlags::Up) {
        Check::Error(format!("link of {ifname} is down (interface is set down)"))
    } else if !flags.contains(LinkFlags::LowerUp) {
        Check::Error(format!("link of {ifname} is down (no carrier)"))
    } else if !flags.contains(LinkFlags::Running) {
        Check::Error(format!(
            "link of {ifname} is down (operational state {})",
            oper.map(state_name).unwrap_or_else(|| "not running".into())
        ))
    } else {
        Check::Normal
    }
}

fn state_name(s: State) -> String {
    match s {
        State::Unknown => "unknown".into(),
        State::NotPresent => "not present".into(),
        State::Down => "down".into(),
        State::LowerLayerDown => "lower layer down".into(),
        State::Testing => "testing".into(),
        State::Dormant => "dormant".into(),
        State::Up => "up".into(),
        State::Other(n) => format!("{n}"),
        _ => format!("{s:?}").to_lowercase(),
    }
}

/// Network namespaces for tests that need root and `ip` (iproute2).
#[cfg(test)]
pub(crate) mod netns {
    use std::fs::File;
    use std::future::Future;
    use std::os::fd::AsRawFd;
    use std::process::Command;

    /// What the namespace tests lack here, if anything.
    pub fn skip_reason() -> Option<crate::skip::Missing> {
        crate::skip::need_root("network namespaces need root")
            .or_else(|| crate::skip::need_program("ip", "iproute2"))
    }

    /// Runs `ip ARGS`, panicking with its stderr on failure.
    pub fn ip(args: &[&str]) -> String {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A network namespace, deleted on drop (also when the test panics).
    pub struct Netns {
        pub name: String,
    }

    impl Netns {
        /// `tag` must be unique among the tests of this binary.
        pub fn new(tag: &str) -> Netns {
            let name = format!("usmon{}{tag}", std::process::id());
            // Left over from a crashed run with the same pid: ignore errors.
            let _ = Command::new("ip").args(["netns", "del", &name]).output();
            ip(&["netns", "add", &name]);
            Netns { name }
        }

        /// `ip -n NAME ARGS`; usable from any thread.
        pub fn ip(&self, args: &[&str]) -> String {
            ns_ip(&self.name, args)
        }

        /// Runs `make()` to completion on a current-thread tokio runtime
        /// inside a `LocalSet`, in a thread that has joined this namespace.
        pub fn run<F, Fut, T>(&self, make: F) -> T
        where
            F: FnOnce() -> Fut + Send + 'static,
            Fut: Future<Output = T> + 'static,
            T: Send + 'static,
        {
            let path = format!("/run/netns/{}", self.name);
            let thread = std::thread::spawn(move || {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                // SAFETY: setns on a valid namespace fd; only affects the
                // calling thread.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, make())
            });
            match thread.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.name])
                .output();
        }
    }

    /// `ip -n NS ARGS`
    /// Skips the test (`crate::skip`) when namespaces are not available.
    macro_rules! require_env {
        () => {
            if let Some(missing) = $crate::monitor::link::netns::skip_reason() {
                return missing.skip();
            }
        };
    }
    pub(crate) use require_env;

    pub fn ns_ip(ns: &str, args: &[&str]) -> String {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        ip(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::netns::{ns_ip, require_env, Netns};
    use super::*;
    use std::time::Instant;

    /// Checks until the answer satisfies `want` (links change state
    /// asynchronously) or 5 s pass; returns the last answer.
    async fn settle(probe: &mut LinkProbe, want: impl Fn(&Check) -> bool) -> Check {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let c = probe.check(&ProbeEnv::default()).await;
            if want(&c) || Instant::now() >= deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn verdicts() {
        let up = LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp;
        assert_eq!(link_verdict("eth1", up, Some(State::Up)), Check::Normal);
        // Loopback: operational state UNKNOWN, yet running.
        assert_eq!(
            link_verdict("lo", up | LinkFlags::Loopback, Some(State::Unknown)),
            Check::Normal
        );
        assert_eq!(
            link_verdict("eth1", LinkFlags::Broadcast, Some(State::Down)),
            Check::Error("link of eth1 is down (interface is set down)".into())
        );
        assert_eq!(
            link_verdict("eth1", LinkFlags::Up, Some(State::LowerLayerDown)),
            Check::Error("link of eth1 is down (no carrier)".into())
        );
        assert_eq!(
            link_verdict(
                "wlan0",
                LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Dormant,
                Some(State::Dormant)
            ),
            Check::Error("link of wlan0 is down (operational state dormant)".into())
        );
        assert_eq!(
            link_verdict("x", LinkFlags::Up | LinkFlags::LowerUp, None),
            Check::Error("link of x is down (operational state not running)".into())
        );
    }

    #[test]
    fn host_loopback_and_a_missing_interface() {
        // No privilege needed: reading links is open to everyone.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let mut lo = LinkProbe::new("lo");
            let c = lo.check(&ProbeEnv::default()).await;
            if c != Check::Normal {
                eprintln!("skipping the lo check: lo here answers {c:?}");
            }
            // The connection is kept for the next checks.
            assert!(lo.conn.handle.borrow().is_some());
            let mut missing = LinkProbe::new("usnope0");
            assert_eq!(
                missing.check(&ProbeEnv::default()).await,
                Check::Error("interface usnope0 does not exist".into())
            );
            let mut bad = LinkProbe::new("a/b");
            assert!(matches!(
                bad.check(&ProbeEnv::default()).await,
                Check::Error(m) if m.contains("not a valid name")
            ));
        });
    }

    #[test]
    fn loopback_in_a_namespace() {
        require_env!();
        let ns = Netns::new("lo");
        let name = ns.name.clone();
        ns.run(move || async move {
            let mut p = LinkProbe::new("lo");
            // A fresh namespace's lo is down.
            assert_eq!(
                p.check(&ProbeEnv::default()).await,
                Check::Error("link of lo is down (interface is set down)".into())
            );
            ns_ip(&name, &["link", "set", "lo", "up"]);
            let c = settle(&mut p, |c| *c == Check::Normal).await;
            assert_eq!(c, Check::Normal);
        });
    }

    #[test]
    fn veth_link_goes_down_and_away() {
        require_env!();
        let ns = Netns::new("veth");
        ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ns.ip(&["link", "set", "v0", "up"]);
        ns.ip(&["link", "set", "v1", "up"]);
        let name = ns.name.clone();
        ns.run(move || async move {
            let mut p = LinkProbe::new("v0");
            assert_eq!(settle(&mut p, |c| *c == Check::Normal).await, Check::Normal);

            // The peer going down takes the carrier away (a pulled cable).
            ns_ip(&name, &["link", "set", "v1", "down"]);
            let no_carrier = Check::Error("link of v0 is down (no carrier)".into());
            assert_eq!(settle(&mut p, |c| *c == no_carrier).await, no_carrier);

            ns_ip(&name, &["link", "set", "v1", "up"]);
            assert_eq!(settle(&mut p, |c| *c == Check::Normal).await, Check::Normal);

            ns_ip(&name, &["link", "set", "v0", "down"]);
            let set_down = Check::Error("link of v0 is down (interface is set down)".into());
            assert_eq!(settle(&mut p, |c| *c == set_down).await, set_down);

            ns_ip(&name, &["link", "del", "v0"]);
            let gone = Check::Error("interface v0 does not exist".into());
            assert_eq!(settle(&mut p, |c| *c == gone).await, gone);
        });
    }
}
