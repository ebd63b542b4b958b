//! Integration tests of the floating IP driver against real network
//! namespaces (no mocks).
//!
//! Topology per test: namespace "srv" and namespace "cli" joined by a veth
//! pair; srv has 198.51.100.1/24, cli has 198.51.100.2/24. The driver runs in
//! a thread that has joined the srv namespace (`setns`), on its own
//! current-thread tokio runtime. Only 198.51.100.0/24 (TEST-NET-2) is used.
//!
//! Needs root and `ip` (iproute2); otherwise each test skips
//! (tests/common/skip.rs). Reachability is checked with an ICMP echo sent from a raw socket
//! inside the cli namespace (no dependency on a `ping` binary).

#[path = "../../tests/common/skip.rs"]
mod skip;

use std::fs::File;
use std::future::Future;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use understudy_actors::resource::fip::driver::{self, FipActivation};
use understudy_actors::resource::fip::FipConfig;

const SRV_IF: &str = "usfsrv";
const CLI_IF: &str = "usfcli";
const FIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

// ---------------------------------------------------------------------------
// environment

macro_rules! require_env {
    () => {
        if let Some(missing) = skip::need_root("network namespaces need root")
            .or_else(|| skip::need_program("ip", "iproute2"))
        {
            return missing.skip();
        }
    };
}

/// Runs `ip ARGS`, panicking with its stderr on failure; returns stdout.
fn ip(args: &[&str]) -> String {
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
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("usfip{}{tag}", std::process::id());
        // Left over from a crashed run with the same pid: ignore errors.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS`
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    fn mac(&self, ifname: &str) -> String {
        let out = self.ip(&["link", "show", "dev", ifname]);
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no MAC in: {out}"))
            .to_string()
    }

    fn ipv4_addrs(&self, ifname: &str) -> String {
        self.ip(&["-4", "addr", "show", "dev", ifname])
    }

    /// Runs `make()` to completion on a current-thread tokio runtime in a
    /// thread that has joined this namespace.
    fn run<F, Fut, T>(&self, make: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{}", self.name);
        let thread = std::thread::spawn(move || {
            enter_netns(&path);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(make())
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

/// Moves the calling thread into the network namespace at `path`.
fn enter_netns(path: &str) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: setns on a valid namespace fd; only affects the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// srv <-veth-> cli, 198.51.100.1/24 and 198.51.100.2/24.
struct Topology {
    srv: Netns,
    cli: Netns,
}

impl Topology {
    fn new(tag: &str) -> Topology {
        let srv = Netns::new(&format!("{tag}s"));
        let cli = Netns::new(&format!("{tag}c"));
        srv.ip(&[
            "link", "add", SRV_IF, "type", "veth", "peer", "name", CLI_IF, "netns", &cli.name,
        ]);
        srv.ip(&["addr", "add", "198.51.100.1/24", "dev", SRV_IF]);
        cli.ip(&["addr", "add", "198.51.100.2/24", "dev", CLI_IF]);
        srv.ip(&["link", "set", SRV_IF, "up"]);
        cli.ip(&["link", "set", CLI_IF, "up"]);
        let t = Topology { srv, cli };
        assert!(
            poll(Duration::from_secs(3), || t
                .ping(Ipv4Addr::new(198, 51, 100, 1))),
            "the veth pair never came up"
        );
        t
    }

    /// ICMP echo from cli to `dst`.
    fn ping(&self, dst: Ipv4Addr) -> bool {
        self.cli
            .run(move || async move { icmp_echo(dst, Duration::from_secs(1)) })
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
fn poll(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends one ICMP echo request to `dst` from a raw socket in the current
/// thread's namespace; true when the matching echo reply arrives in time.
fn icmp_echo(dst: Ipv4Addr, timeout: Duration) -> bool {
    // SAFETY: plain socket syscalls on a fd we own; buffers outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
        let sock = OwnedFd::from_raw_fd(fd);
        let tick = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tick as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        let id = (std::process::id() & 0xffff) as u16;
        let seq: u16 = 7;
        let mut pkt = vec![8u8, 0, 0, 0];
        pkt.extend_from_slice(&id.to_be_bytes());
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(b"understudy-fip-test");
        let sum = checksum(&pkt);
        pkt[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(dst).to_be();
        let sent = libc::sendto(
            sock.as_raw_fd(),
            pkt.as_ptr() as *const libc::c_void,
            pkt.len(),
            0,
            &addr as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if sent < 0 {
            return false; // e.g. no route / host unreachable
        }
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            let n = libc::recv(
                sock.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            );
            if n < 20 {
                continue; // timeout tick, error or runt
            }
            let n = n as usize;
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            if n < ihl + 8 {
                continue;
            }
            let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
            let icmp = &buf[ihl..n];
            if src == dst
                && icmp[0] == 0
                && icmp[4..6] == id.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes()
            {
                return true;
            }
        }
        false
    }
}

fn fip(interface: Option<&str>) -> FipConfig {
    FipConfig {
        address: "198.51.100.10/24".to_string(),
        interface: interface.map(str::to_string),
        gratuitous_arp: 3,
        duplicate_check: true,
        duplicate_check_ms: 300,
        // Refuse at once: these tests are about the probe, not the grace.
        duplicate_grace_ms: 0,
    }
}

// ---------------------------------------------------------------------------
// tests

/// Activate (explicit interface, then auto-resolved), reach it from cli,
/// deactivate, no longer reachable; every step idempotent.
#[test]
fn activate_reach_deactivate() {
    require_env!();
    let net = Topology::new("a");
    assert!(!net.ping(FIP), "198.51.100.10 answers before activation");

    for interface in [Some(SRV_IF), None] {
        let cfg = fip(interface);
        let c = cfg.clone();
        let (resolved, first, second, present) = net.srv.run(move || async move {
            let resolved = driver::resolve_interface(&c).await;
            let first = driver::activate(&c).await;
            let second = driver::activate(&c).await;
            let present = driver::is_present(&c).await;
            (resolved, first, second, present)
        });
        assert_eq!(resolved, Ok(SRV_IF.to_string()), "interface {interface:?}");
        assert_eq!(
            first,
            Ok(FipActivation {
                interface: SRV_IF.to_string(),
                already_present: false
            }),
            "interface {interface:?}"
        );
        assert_eq!(
            second,
            Ok(FipActivation {
                interface: SRV_IF.to_string(),
                already_present: true
            }),
            "second activate with interface {interface:?}"
        );
        assert_eq!(present, Ok(true));
        assert!(net.srv.ipv4_addrs(SRV_IF).contains("198.51.100.10/24"));
        assert!(
            net.ping(FIP),
            "198.51.100.10 unreachable from cli after activation"
        );

        let c = cfg.clone();
        let (removed, present, again) = net.srv.run(move || async move {
            let removed = driver::deactivate(&c).await;
            let present = driver::is_present(&c).await;
            let again = driver::deactivate(&c).await;
            (removed, present, again)
        });
        assert_eq!(removed, Ok(true), "interface {interface:?}");
        assert_eq!(present, Ok(false));
        assert_eq!(
            again,
            Ok(false),
            "second deactivate with interface {interface:?}"
        );
        assert!(!net.srv.ipv4_addrs(SRV_IF).contains("198.51.100.10"));
        assert!(
            net.srv.ipv4_addrs(SRV_IF).contains("198.51.100.1/24"),
            "deactivate touched the interface's own address"
        );
        assert!(
            !net.ping(FIP),
            "198.51.100.10 still answers after deactivation"
        );
    }
}

/// Another host (cli) already owns the address: activation is refused and
/// nothing is added; with the check disabled it goes ahead.
#[test]
fn duplicate_address_is_refused() {
    require_env!();
    let net = Topology::new("d");
    net.cli
        .ip(&["addr", "add", "198.51.100.10/24", "dev", CLI_IF]);
    let cli_mac = net.cli.mac(CLI_IF);

    let cfg = FipConfig {
        duplicate_check_ms: 1000,
        ..fip(Some(SRV_IF))
    };
    let c = cfg.clone();
    let (res, present) = net
        .srv
        .run(move || async move { (driver::activate(&c).await, driver::is_present(&c).await) });
    let err = res.expect_err("activation must be refused");
    assert!(err.contains("already answers"), "{err}");
    assert!(err.contains("duplicate"), "{err}");
    assert!(err.contains("198.51.100.10"), "{err}");
    assert!(err.contains(SRV_IF), "{err}");
    assert!(err.contains(&cli_mac), "{err} (cli MAC {cli_mac})");
    assert_eq!(present, Ok(false));
    assert!(
        !net.srv.ipv4_addrs(SRV_IF).contains("198.51.100.10"),
        "address added despite the duplicate: {}",
        net.srv.ipv4_addrs(SRV_IF)
    );

    // Same with the auto-resolved interface.
    let c = fip(None);
    let res = net
        .srv
        .run(move || async move { driver::activate(&c).await });
    assert!(
        res.as_ref().is_err_and(|e| e.contains("duplicate")),
        "{res:?}"
    );
    assert!(!net.srv.ipv4_addrs(SRV_IF).contains("198.51.100.10"));

    // duplicate_check: false skips the probe.
    let c = FipConfig {
        duplicate_check: false,
        ..cfg
    };
    let (res, removed) = net
        .srv
        .run(move || async move { (driver::activate(&c).await, driver::deactivate(&c).await) });
    assert_eq!(
        res.map(|a| a.already_present),
        Ok(false),
        "activation without duplicate check"
    );
    assert_eq!(removed, Ok(true));
}

/// With a grace, an address that another host never lets go of is refused
/// once the grace has passed, and not much later (grace + one round).
#[test]
fn duplicate_grace_is_bounded() {
    require_env!();
    let net = Topology::new("r");
    net.cli
        .ip(&["addr", "add", "198.51.100.10/24", "dev", CLI_IF]);
    let c = FipConfig {
        duplicate_check_ms: 100,
        duplicate_grace_ms: 600,
        ..fip(Some(SRV_IF))
    };
    let (res, took) = net.srv.run(move || async move {
        let started = Instant::now();
        (driver::activate(&c).await, started.elapsed())
    });
    let err = res.expect_err("activation must be refused");
    assert!(
        err.contains("duplicate") && err.contains("still after"),
        "{err}"
    );
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(!net.srv.ipv4_addrs(SRV_IF).contains("198.51.100.10"));
}

/// The gratuitous ARP after activation rewrites a stale neighbour entry at
/// the peer.
#[test]
fn gratuitous_arp_updates_peer_neighbour() {
    require_env!();
    let net = Topology::new("g");
    let srv_mac = net.srv.mac(SRV_IF);
    let bogus = "02:00:00:00:00:99";
    net.cli.ip(&[
        "neigh",
        "replace",
        "198.51.100.10",
        "lladdr",
        bogus,
        "dev",
        CLI_IF,
        "nud",
        "stale",
    ]);
    let neigh = || {
        net.cli
            .ip(&["neigh", "show", "198.51.100.10", "dev", CLI_IF])
    };
    assert!(neigh().contains(bogus), "seeded entry: {}", neigh());

    let c = fip(Some(SRV_IF));
    let res = net
        .srv
        .run(move || async move { driver::activate(&c).await });
    assert_eq!(res.map(|a| a.already_present), Ok(false));

    assert!(
        poll(Duration::from_secs(3), || neigh().contains(&srv_mac)),
        "cli neighbour entry for 198.51.100.10 not updated to srv MAC {srv_mac}: {}",
        neigh()
    );
}

/// Bad input gives errors, never panics, and changes nothing.
#[test]
fn bad_input_is_rejected() {
    require_env!();
    let net = Topology::new("b");

    // Missing interface, for every entry point but deactivate, which has
    // nothing to remove there and must not fail a stop over it.
    let c = fip(Some("nosuch0"));
    let (results, deactivated) = net.srv.run(move || async move {
        (
            vec![
                driver::activate(&c).await.map(|_| ()),
                driver::is_present(&c).await.map(|_| ()),
                driver::resolve_interface(&c).await.map(|_| ()),
            ],
            driver::deactivate(&c).await,
        )
    });
    for r in results {
        let err = r.expect_err("nosuch0 must be an error");
        assert!(err.contains("interface nosuch0 not found"), "{err}");
    }
    assert_eq!(deactivated, Ok(false));

    // Invalid interface names and addresses.
    for (address, interface, expect) in [
        ("198.51.100.10/24", Some("no/such"), "not found"),
        ("198.51.100.10/24", Some(""), "not found"),
        (
            "198.51.100.10/24",
            Some("waytoolonginterfacename"),
            "not found",
        ),
        ("not-an-ip", Some(SRV_IF), "not-an-ip"),
        ("198.51.100.10/33", Some(SRV_IF), "198.51.100.10/33"),
        ("", None, "not an IPv4 address"),
        ("0.0.0.0/24", Some(SRV_IF), "cannot be a floating IP"),
    ] {
        let c = FipConfig {
            address: address.to_string(),
            interface: interface.map(str::to_string),
            ..fip(None)
        };
        let (a, d) = net
            .srv
            .run(move || async move { (driver::activate(&c).await, driver::deactivate(&c).await) });
        if expect == "not found" {
            assert_eq!(d, Ok(false), "{interface:?}: nothing to remove");
        }
        let results = if expect == "not found" {
            vec![a.map(|_| ())]
        } else {
            vec![a.map(|_| ()), d.map(|_| ())]
        };
        for r in results {
            let err = r.expect_err("must be an error");
            assert!(
                err.contains(expect),
                "{address:?} on {interface:?}: {err:?} lacks {expect:?}"
            );
        }
    }

    // Out-of-range settings are tolerated (clamped), not a panic.
    let c = FipConfig {
        gratuitous_arp: u32::MAX,
        duplicate_check_ms: 0,
        ..fip(Some(SRV_IF))
    };
    let (a, d) = net
        .srv
        .run(move || async move { (driver::activate(&c).await, driver::deactivate(&c).await) });
    assert_eq!(a.map(|a| a.already_present), Ok(false));
    assert_eq!(d, Ok(true));

    // No interface has a network containing the address.
    let lone = Netns::new("bl");
    let c = fip(None);
    let res = lone.run(move || async move { driver::resolve_interface(&c).await });
    assert!(
        res.as_ref().is_err_and(|e| e.contains("no interface")),
        "{res:?}"
    );

    // Two interfaces have such a network: ambiguous.
    lone.ip(&[
        "link", "add", "usfx0", "type", "veth", "peer", "name", "usfx1",
    ]);
    lone.ip(&["addr", "add", "198.51.100.1/24", "dev", "usfx0"]);
    lone.ip(&["addr", "add", "198.51.100.2/24", "dev", "usfx1"]);
    let c = fip(None);
    let (resolved, activated) = lone.run(move || async move {
        (
            driver::resolve_interface(&c).await,
            driver::activate(&c).await,
        )
    });
    for r in [resolved.map(|_| ()), activated.map(|_| ())] {
        let err = r.expect_err("ambiguous interface must be an error");
        assert!(err.contains("ambiguous"), "{err}");
        assert!(err.contains("usfx0") && err.contains("usfx1"), "{err}");
    }
    assert!(!lone.ipv4_addrs("usfx0").contains("198.51.100.10"));
    assert!(!lone.ipv4_addrs("usfx1").contains("198.51.100.10"));
}
