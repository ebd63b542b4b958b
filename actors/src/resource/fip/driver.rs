//! Netlink + ARP side of the floating IP resource.
//!
//! - Address add/remove/list goes through rtnetlink; every public call opens
//!   its own netlink connection (spawned on the current tokio runtime) and
//!   drops it when done.
//! - ARP (the duplicate-address probe before adding, the gratuitous ARP
//!   announcements after) goes through an `AF_PACKET` socket from
//!   `pnet_datalink`. All socket work runs in `tokio::task::spawn_blocking`
//!   with read/write timeouts, so the calling executor thread (an actix
//!   `System`, i.e. a current-thread runtime) is never blocked.
//!
//! Nothing here is namespace-aware: the driver acts on the network namespace
//! of the thread that calls it (and the blocking threads it spawns).
//!
//! Every address the driver adds is written down first in the ownership
//! records ([`crate::resource::owned`]) and struck off once it has been
//! removed, so that the guardian can take it away should the daemon die.
//!
//! Needs `CAP_NET_ADMIN` (netlink changes) and `CAP_NET_RAW` (ARP frames).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use netlink_packet_route::AddressFamily;
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender};

use super::config::{FipConfig, DUPLICATE_CHECK_MS, DUPLICATE_GRACE_MS};
pub use crate::model::host::valid_ifname;
use crate::resource::owned;

/// Upper bound for one netlink operation (a dump or a change request).
const NETLINK_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two gratuitous ARP frames.
const GARP_INTERVAL: Duration = Duration::from_millis(100);
/// Most gratuitous ARP frames sent (the config validation allows 0-10).
const GARP_MAX: u32 = 10;
/// Pause between two probing rounds while another host still answers
/// during the duplicate grace (keeps the probe rate at most ~20 per second).
const GRACE_REPROBE_PAUSE: Duration = Duration::from_millis(50);
/// How long one blocking `recv` on the packet socket may wait.
const ARP_READ_TICK: Duration = Duration::from_millis(50);
/// Write timeout of the packet socket.
const ARP_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

const ETHERTYPE_ARP: u16 = 0x0806;
const ARP_OP_REQUEST: u16 = 1;
const ARP_OP_REPLY: u16 = 2;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
const ZERO_MAC: [u8; 6] = [0; 6];
/// Ethernet header (14) + ARP for IPv4 over Ethernet (28).
const ARP_FRAME_LEN: usize = 42;
/// Frames are zero-padded to the Ethernet minimum (without FCS).
const ETH_MIN_FRAME_LEN: usize = 60;

/// Result of a successful [`activate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FipActivation {
    /// The interface the address is on.
    pub interface: String,
    /// The address (with the same prefix) was already there; nothing was
    /// changed and no ARP was sent.
    pub already_present: bool,
}

/// Adds the address (idempotent: if it is already on the chosen interface,
/// succeed with `already_present = true`).
///
/// Before adding, when `cfg.duplicate_check` is set, an RFC 5227 style ARP
/// probe (who-has FIP, sender IP 0.0.0.0, sender MAC = ours) is sent on the
/// interface and the driver listens for up to `cfg.duplicate_check_ms` for an
/// ARP frame whose sender IP is the floating IP from a MAC that is not ours.
/// If one arrives, the driver keeps probing (a fresh listening window each
/// round) until `cfg.duplicate_grace_ms` have passed since the first probe:
/// at a takeover the old owner is usually letting go of the address at that
/// very moment. A round that hears nobody lets the activation go ahead; when
/// the grace ends with the address still answered for, activation is
/// refused and nothing is changed. With a grace of 0 the first answer
/// refuses at once. The wait is bounded by grace + one listening window.
///
/// After adding, `cfg.gratuitous_arp` gratuitous ARP frames are broadcast
/// (alternating request and reply, sender = target = FIP), ~100 ms apart.
/// A failure to send them is logged, not returned: the address is up.
///
/// Interfaces without ARP (no Ethernet address, e.g. loopback, tun,
/// wireguard, or flagged NOARP) get no duplicate check and no announcements;
/// a warning is logged instead.
pub async fn activate(cfg: &FipConfig) -> Result<FipActivation, String> {
    let nl = Netlink::open()?;
    let target = nl.target(cfg).await?;
    if nl.present(&target).await? {
        tracing::info!(
            address = %target.cidr(),
            interface = %target.ifname,
            "floating IP already present"
        );
        // Ours from now on: deactivation removes it, and so must the
        // guardian should the daemon die.
        owned::record_address(target.ip, target.prefix, &target.ifname).await;
        return Ok(FipActivation {
            interface: target.ifname,
            already_present: true,
        });
    }

    if cfg.duplicate_check {
        let window = Duration::from_millis(u64::from(
            cfg.duplicate_check_ms
                .clamp(DUPLICATE_CHECK_MS.0, DUPLICATE_CHECK_MS.1),
        ));
        let grace = Duration::from_millis(u64::from(
            cfg.duplicate_grace_ms
                .clamp(DUPLICATE_GRACE_MS.0, DUPLICATE_GRACE_MS.1),
        ));
        match target.mac {
            Some(mac) => duplicate_check(&target, mac, window, grace).await?,
            None => tracing::warn!(
                address = %target.ip,
                interface = %target.ifname,
                "interface does not use ARP; duplicate address check skipped"
            ),
        }
    }

    // Written down before the address exists: a daemon killed during the
    // add must not leave an address nobody knows about.
    owned::record_address(target.ip, target.prefix, &target.ifname).await;
    let added = match nl.add(&target).await {
        Ok(added) => added,
        Err(e) => {
            owned::forget_address(target.ip, target.prefix).await;
            return Err(e);
        }
    };
    if !added {
        // Appeared between the presence check and the add.
        return Ok(FipActivation {
            interface: target.ifname,
            already_present: true,
        });
    }
    tracing::info!(
        address = %target.cidr(),
        interface = %target.ifname,
        "floating IP added"
    );

    let count = cfg.gratuitous_arp.min(GARP_MAX);
    if count > 0 {
        match target.mac {
            Some(mac) => {
                // The first announcement before the activation counts as
                // done; the others follow in the background, so a failover
                // does not wait for the spacing between them.
                if let Err(e) = announce(&target, mac, 0, 1).await {
                    tracing::warn!(
                        address = %target.ip,
                        interface = %target.ifname,
                        "gratuitous ARP failed: {e}"
                    );
                } else if count > 1 {
                    let target = target.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(GARP_INTERVAL).await;
                        if let Err(e) = announce(&target, mac, 1, count).await {
                            tracing::warn!(
                                address = %target.ip,
                                interface = %target.ifname,
                                "gratuitous ARP failed: {e}"
                            );
                        }
                    });
                }
            }
            None => tracing::warn!(
                address = %target.ip,
                interface = %target.ifname,
                "interface does not use ARP; gratuitous ARP skipped"
            ),
        }
    }

    Ok(FipActivation {
        interface: target.ifname,
        already_present: false,
    })
}

/// Removes the address (matched on address + prefix) from its interface.
/// `Ok(true)` if removed, `Ok(false)` if it was not present.
pub async fn deactivate(cfg: &FipConfig) -> Result<bool, String> {
    let removed = remove(cfg).await?;
    // Only once it is gone: a failed removal stays on record.
    if let Some((ip, prefix)) = cfg.parsed() {
        owned::forget_address(ip, prefix).await;
    }
    Ok(removed)
}

/// Removes `ip/prefix` from the interface `interface` (for the ownership
/// records, which keep the interface the address was added to). Leaves the
/// records alone. `Ok(false)` when the address (or the interface) is gone.
pub async fn remove_address(ip: Ipv4Addr, prefix: u8, interface: &str) -> Result<bool, String> {
    let cfg = FipConfig {
        address: format!("{ip}/{prefix}"),
        interface: Some(interface.to_string()),
        gratuitous_arp: 0,
        duplicate_check: false,
        duplicate_check_ms: DUPLICATE_CHECK_MS.0,
        duplicate_grace_ms: 0,
    };
    remove(&cfg).await
}

async fn remove(cfg: &FipConfig) -> Result<bool, String> {
    let nl = Netlink::open()?;
    let target = match nl.target(cfg).await {
        Ok(t) => t,
        // An interface that is gone cannot hold the address: nothing to
        // remove, and a stop must not fail (and escalate) over it.
        Err(e) if e.contains("not found") => {
            tracing::warn!(address = %cfg.address, "floating IP not removed: {e}");
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let found = nl.matching(&target).await?;
    let mut removed = false;
    for msg in found {
        if nl.del(&target, msg).await? {
            removed = true;
        }
    }
    if removed {
        tracing::info!(
            address = %target.cidr(),
            interface = %target.ifname,
            "floating IP removed"
        );
    }
    Ok(removed)
}

/// Whether the address (with its prefix) is currently configured on the
/// interface.
pub async fn is_present(cfg: &FipConfig) -> Result<bool, String> {
    let nl = Netlink::open()?;
    let target = nl.target(cfg).await?;
    nl.present(&target).await
}

/// Which interface would be used: `cfg.interface`, or, when `None`, the
/// interface that has an IPv4 address whose network contains the floating IP
/// (error if none or ambiguous). When several interfaces qualify but exactly
/// one of them already holds the floating IP, that one is used.
pub async fn resolve_interface(cfg: &FipConfig) -> Result<String, String> {
    let nl = Netlink::open()?;
    Ok(nl.target(cfg).await?.ifname)
}

// ---------------------------------------------------------------------------
// netlink

/// The floating IP and the interface it goes on.
#[derive(Debug, Clone)]
struct Target {
    ip: Ipv4Addr,
    prefix: u8,
    ifname: String,
    index: u32,
    /// Ethernet address; `None` for links without ARP (no MAC or NOARP).
    mac: Option<[u8; 6]>,
}

impl Target {
    fn cidr(&self) -> String {
        format!("{}/{}", self.ip, self.prefix)
    }
}

struct Netlink {
    handle: rtnetlink::Handle,
}

impl Netlink {
    fn open() -> Result<Self, String> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| {
            if is_perm(e.raw_os_error()) {
                "cannot open netlink socket: permission denied (needs root / CAP_NET_ADMIN)"
                    .to_string()
            } else {
                format!("cannot open netlink socket: {e}")
            }
        })?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Resolves the address and interface of `cfg`.
    async fn target(&self, cfg: &FipConfig) -> Result<Target, String> {
        let (ip, prefix) = parse_address(cfg)?;
        let link = match &cfg.interface {
            Some(name) => self.link_by_name(name).await?,
            None => {
                let index = self.auto_interface(ip).await?;
                self.link_by_index(index).await?
            }
        };
        let index = link.header.index;
        let ifname = link_name(&link).unwrap_or_else(|| format!("#{index}"));
        Ok(Target {
            ip,
            prefix,
            ifname,
            index,
            mac: link_mac(&link),
        })
    }

    async fn link_by_name(&self, name: &str) -> Result<LinkMessage, String> {
        if !valid_ifname(name) {
            return Err(format!(
                "interface \"{}\" not found (not a valid interface name)",
                name.escape_debug()
            ));
        }
        let req = self.handle.link().get().match_name(name).execute();
        let found = with_timeout(&format!("looking up interface {name}"), async move {
            futures_util::pin_mut!(req);
            req.try_next().await
        })
        .await?;
        match found {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(format!("interface {name} not found")),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Err(format!("interface {name} not found")),
            Err(e) => Err(describe(&format!("cannot look up interface {name}"), &e)),
        }
    }

    async fn link_by_index(&self, index: u32) -> Result<LinkMessage, String> {
        let req = self.handle.link().get().match_index(index).execute();
        let found = with_timeout(&format!("looking up interface #{index}"), async move {
            futures_util::pin_mut!(req);
            req.try_next().await
        })
        .await?;
        match found {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(format!("interface #{index} not found")),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                Err(format!("interface #{index} not found"))
            }
            Err(e) => Err(describe(&format!("cannot look up interface #{index}"), &e)),
        }
    }

    async fn links(&self) -> Result<Vec<LinkMessage>, String> {
        let req = self.handle.link().get().execute();
        with_timeout("listing interfaces", req.try_collect::<Vec<_>>())
            .await?
            .map_err(|e| describe("cannot list interfaces", &e))
    }

    /// IPv4 addresses, of one interface or of all.
    async fn ipv4_addresses(&self, index: Option<u32>) -> Result<Vec<AddressMessage>, String> {
        let mut req = self.handle.address().get();
        req.message_mut().header.family = AddressFamily::Inet;
        if let Some(index) = index {
            req = req.set_link_index_filter(index);
        }
        let stream = req.execute();
        let all = with_timeout("listing addresses", stream.try_collect::<Vec<_>>())
            .await?
            .map_err(|e| describe("cannot list addresses", &e))?;
        Ok(all
            .into_iter()
            .filter(|m| m.header.family == AddressFamily::Inet)
            .collect())
    }

    /// The interface whose IPv4 networks contain `ip`.
    async fn auto_interface(&self, ip: Ipv4Addr) -> Result<u32, String> {
        let addrs = self.ipv4_addresses(None).await?;
        let mut candidates: Vec<u32> = Vec::new();
        let mut holders: Vec<u32> = Vec::new();
        for msg in &addrs {
            let Some(local) = local_ipv4(msg) else {
                continue;
            };
            if !in_network(local, msg.header.prefix_len, ip) {
                continue;
            }
            let index = msg.header.index;
            if !candidates.contains(&index) {
                candidates.push(index);
            }
            if local == ip && !holders.contains(&index) {
                holders.push(index);
            }
        }
        match candidates.as_slice() {
            [] => Err(format!(
                "no interface has an IPv4 network containing {ip}; set the interface explicitly"
            )),
            [one] => Ok(*one),
            _ if holders.len() == 1 => Ok(holders[0]),
            _ => {
                let links = self.links().await.unwrap_or_default();
                let names: Vec<String> = candidates
                    .iter()
                    .map(|index| {
                        links
                            .iter()
                            .find(|l| l.header.index == *index)
                            .and_then(link_name)
                            .unwrap_or_else(|| format!("#{index}"))
                    })
                    .collect();
                Err(format!(
                    "{ip} is in the networks of several interfaces ({}); interface is ambiguous, set it explicitly",
                    names.join(", ")
                ))
            }
        }
    }

    /// The address messages on the target interface matching address + prefix.
    async fn matching(&self, t: &Target) -> Result<Vec<AddressMessage>, String> {
        let addrs = self
            .ipv4_addresses(Some(t.index))
            .await
            .map_err(|e| format!("{} on {}: {e}", t.cidr(), t.ifname))?;
        Ok(addrs
            .into_iter()
            .filter(|m| {
                m.header.index == t.index
                    && m.header.prefix_len == t.prefix
                    && local_ipv4(m) == Some(t.ip)
            })
            .collect())
    }

    async fn present(&self, t: &Target) -> Result<bool, String> {
        Ok(!self.matching(t).await?.is_empty())
    }

    /// Adds the address; `Ok(false)` when it already existed.
    async fn add(&self, t: &Target) -> Result<bool, String> {
        let req = self
            .handle
            .address()
            .add(t.index, IpAddr::V4(t.ip), t.prefix)
            .execute();
        let what = format!("adding {} to {}", t.cidr(), t.ifname);
        match with_timeout(&what, req).await? {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(describe(
                &format!("cannot add {} to {}", t.cidr(), t.ifname),
                &e,
            )),
        }
    }

    /// Deletes one address message; `Ok(false)` when it was already gone.
    async fn del(&self, t: &Target, msg: AddressMessage) -> Result<bool, String> {
        let req = self.handle.address().del(msg).execute();
        let what = format!("removing {} from {}", t.cidr(), t.ifname);
        match with_timeout(&what, req).await? {
            Ok(()) => Ok(true),
            Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV)) => {
                Ok(false)
            }
            Err(e) => Err(describe(
                &format!("cannot remove {} from {}", t.cidr(), t.ifname),
                &e,
            )),
        }
    }
}

async fn with_timeout<T>(what: &str, fut: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(NETLINK_TIMEOUT, fut)
        .await
        .map_err(|_| format!("{what}: netlink request timed out after {NETLINK_TIMEOUT:?}"))
}

fn parse_address(cfg: &FipConfig) -> Result<(Ipv4Addr, u8), String> {
    let (ip, prefix) = cfg.parsed().ok_or_else(|| {
        format!(
            "\"{}\" is not an IPv4 address with an optional /prefix (0-32)",
            cfg.address.escape_debug()
        )
    })?;
    if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
        return Err(format!(
            "{ip} cannot be a floating IP (unspecified, multicast or broadcast address)"
        ));
    }
    Ok((ip, prefix))
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// The Ethernet address of an Ethernet link that does ARP, if it has a
/// usable one.
fn link_mac(link: &LinkMessage) -> Option<[u8; 6]> {
    if link.header.link_layer_type != LinkLayerType::Ether
        || link.header.flags.contains(LinkFlags::Noarp)
    {
        return None;
    }
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice())
            .ok()
            .filter(|m| *m != ZERO_MAC),
        _ => None,
    })
}

/// The local IPv4 address of an address message (`IFA_LOCAL`, falling back to
/// `IFA_ADDRESS`, which differ only on point-to-point links).
fn local_ipv4(msg: &AddressMessage) -> Option<Ipv4Addr> {
    let pick = |want_local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) if want_local => Some(*ip),
            AddressAttribute::Address(IpAddr::V4(ip)) if !want_local => Some(*ip),
            _ => None,
        })
    };
    pick(true).or_else(|| pick(false))
}

/// Whether `ip` is in the network `net/prefix`.
fn in_network(net: Ipv4Addr, prefix: u8, ip: Ipv4Addr) -> bool {
    let mask = match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - u32::from(p)),
    };
    (u32::from(net) & mask) == (u32::from(ip) & mask)
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

fn is_perm(code: Option<i32>) -> bool {
    matches!(code, Some(libc::EPERM) | Some(libc::EACCES))
}

fn describe(context: &str, e: &rtnetlink::Error) -> String {
    match e {
        rtnetlink::Error::NetlinkError(_) if is_perm(errno(e)) => {
            format!("{context}: permission denied (needs root / CAP_NET_ADMIN)")
        }
        rtnetlink::Error::NetlinkError(m) => format!("{context}: {}", m.to_io()),
        other => format!("{context}: {other}"),
    }
}

// ---------------------------------------------------------------------------
// ARP

struct Mac([u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Builds an Ethernet + ARP (IPv4 over Ethernet) frame, zero-padded to 60 bytes.
fn arp_frame(
    op: u16,
    eth_dst: [u8; 6],
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> [u8; ETH_MIN_FRAME_LEN] {
    let mut f = [0u8; ETH_MIN_FRAME_LEN];
    f[0..6].copy_from_slice(&eth_dst);
    f[6..12].copy_from_slice(&sha);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // htype: Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // ptype: IPv4
    f[18] = 6; // hlen
    f[19] = 4; // plen
    f[20..22].copy_from_slice(&op.to_be_bytes());
    f[22..28].copy_from_slice(&sha);
    f[28..32].copy_from_slice(&spa.octets());
    f[32..38].copy_from_slice(&tha);
    f[38..42].copy_from_slice(&tpa.octets());
    f
}

/// RFC 5227 probe: who-has `ip`, sender IP 0.0.0.0.
fn probe_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; ETH_MIN_FRAME_LEN] {
    arp_frame(
        ARP_OP_REQUEST,
        BROADCAST_MAC,
        mac,
        Ipv4Addr::UNSPECIFIED,
        ZERO_MAC,
        ip,
    )
}

/// Gratuitous ARP: request (target MAC zero) or reply (target MAC = sender
/// MAC, which Linux requires to treat a reply as gratuitous); sender IP =
/// target IP = `ip`; Ethernet broadcast.
fn garp_frame(mac: [u8; 6], ip: Ipv4Addr, reply: bool) -> [u8; ETH_MIN_FRAME_LEN] {
    if reply {
        arp_frame(ARP_OP_REPLY, BROADCAST_MAC, mac, ip, mac, ip)
    } else {
        arp_frame(ARP_OP_REQUEST, BROADCAST_MAC, mac, ip, ZERO_MAC, ip)
    }
}

/// Sender MAC and IP of an ARP request/reply (IPv4 over Ethernet) frame.
fn arp_sender(frame: &[u8]) -> Option<([u8; 6], Ipv4Addr)> {
    if frame.len() < ARP_FRAME_LEN
        || frame[12..14] != ETHERTYPE_ARP.to_be_bytes()
        || frame[14..16] != 1u16.to_be_bytes()
        || frame[16..18] != 0x0800u16.to_be_bytes()
        || frame[18] != 6
        || frame[19] != 4
    {
        return None;
    }
    let op = u16::from_be_bytes([frame[20], frame[21]]);
    if op != ARP_OP_REQUEST && op != ARP_OP_REPLY {
        return None;
    }
    let sha: [u8; 6] = frame[22..28].try_into().ok()?;
    let spa: [u8; 4] = frame[28..32].try_into().ok()?;
    Some((sha, Ipv4Addr::from(spa)))
}

/// The MAC of another host claiming `ip` in this frame, if it does.
fn conflicting_mac(frame: &[u8], ip: Ipv4Addr, ours: [u8; 6]) -> Option<[u8; 6]> {
    let (sha, spa) = arp_sender(frame)?;
    (spa == ip && sha != ours && sha != ZERO_MAC).then_some(sha)
}

fn packet_err(what: &str, t: &Target, e: &io::Error) -> String {
    if is_perm(e.raw_os_error()) {
        format!(
            "{what} for {} on {}: permission denied (needs root / CAP_NET_RAW)",
            t.ip, t.ifname
        )
    } else {
        format!("{what} for {} on {}: {e}", t.ip, t.ifname)
    }
}

type PacketChannel = (Box<dyn DataLinkSender>, Box<dyn DataLinkReceiver>);

/// Opens an `AF_PACKET` channel on the interface (blocking; call it from
/// `spawn_blocking`).
fn open_channel(t: &Target) -> Result<PacketChannel, String> {
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.index == t.index)
        .ok_or_else(|| format!("interface {} not found (for ARP)", t.ifname))?;
    let config = pnet_datalink::Config {
        read_timeout: Some(ARP_READ_TICK),
        write_timeout: Some(ARP_WRITE_TIMEOUT),
        promiscuous: false,
        ..Default::default()
    };
    match pnet_datalink::channel(&iface, config) {
        Ok(Channel::Ethernet(tx, rx)) => Ok((tx, rx)),
        Ok(_) => Err(format!(
            "cannot open a packet socket on {}: unsupported channel type",
            t.ifname
        )),
        Err(e) => Err(packet_err("cannot open a packet socket", t, &e)),
    }
}

fn send_frame(tx: &mut dyn DataLinkSender, frame: &[u8]) -> io::Result<()> {
    tx.send_to(frame, None)
        .unwrap_or_else(|| Err(io::Error::other("packet socket sender is closed")))
}

/// Probes for `t.ip` and listens for `window`; returns the MAC of another
/// host answering for it, if any. Blocking.
fn probe_blocking(t: &Target, mac: [u8; 6], window: Duration) -> Result<Option<[u8; 6]>, String> {
    let (mut tx, mut rx) = open_channel(t)?;
    let probe = probe_frame(mac, t.ip);
    let start = Instant::now();
    let deadline = start + window;
    // A second probe half-way through the window, in case the first is lost.
    let mut reprobe_at = Some(start + window / 2);
    send_frame(tx.as_mut(), &probe).map_err(|e| packet_err("cannot send ARP probe", t, &e))?;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        if reprobe_at.is_some_and(|at| now >= at) {
            reprobe_at = None;
            send_frame(tx.as_mut(), &probe)
                .map_err(|e| packet_err("cannot send ARP probe", t, &e))?;
        }
        match rx.next() {
            Ok(frame) => {
                if let Some(other) = conflicting_mac(frame, t.ip, mac) {
                    return Ok(Some(other));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => return Err(packet_err("cannot receive ARP", t, &e)),
        }
    }
}

/// Probing rounds until one hears nobody (`Ok`), or until `grace` has
/// passed with another host still answering (`Err`).
async fn duplicate_check(
    t: &Target,
    mac: [u8; 6],
    window: Duration,
    grace: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let mut seen: Option<[u8; 6]> = None;
    loop {
        let target = t.clone();
        let answer = tokio::task::spawn_blocking(move || probe_blocking(&target, mac, window))
            .await
            .map_err(|e| format!("ARP probe for {} on {} failed: {e}", t.ip, t.ifname))??;
        let Some(other) = answer else {
            if let Some(old) = seen {
                tracing::info!(
                    address = %t.ip,
                    interface = %t.ifname,
                    "{} no longer answers from {} after {} ms; going ahead",
                    t.ip,
                    Mac(old),
                    started.elapsed().as_millis()
                );
            }
            return Ok(());
        };
        let waited = started.elapsed();
        if waited >= grace {
            let after = if grace.is_zero() {
                String::new()
            } else {
                format!(" (still after {} ms)", waited.as_millis())
            };
            return Err(format!(
                "{} already answers on {} from {}{after}; refusing to activate (duplicate address)",
                t.ip,
                t.ifname,
                Mac(other)
            ));
        }
        if seen.is_none() {
            tracing::info!(
                address = %t.ip,
                interface = %t.ifname,
                "{} already answers from {}; waiting up to {} ms for it to let go",
                t.ip,
                Mac(other),
                grace.as_millis()
            );
        }
        seen = Some(other);
        // The last round starts before the grace ends (and may listen past it).
        tokio::time::sleep(GRACE_REPROBE_PAUSE.min(grace - waited)).await;
    }
}

/// Sends `count` gratuitous ARP frames, alternating request and reply,
/// `GARP_INTERVAL` apart.
/// Sends gratuitous ARP frames number `from` to `to - 1` (requests and
/// replies alternate), `GARP_INTERVAL` apart.
async fn announce(t: &Target, mac: [u8; 6], from: u32, to: u32) -> Result<(), String> {
    let join_err = |e: tokio::task::JoinError| {
        format!("gratuitous ARP for {} on {} failed: {e}", t.ip, t.ifname)
    };
    let target = t.clone();
    let mut tx = tokio::task::spawn_blocking(move || open_channel(&target).map(|(tx, _rx)| tx))
        .await
        .map_err(join_err)??;
    for i in from..to {
        if i > from {
            tokio::time::sleep(GARP_INTERVAL).await;
        }
        let frame = garp_frame(mac, t.ip, i % 2 == 1);
        let (back, sent) = tokio::task::spawn_blocking(move || {
            let sent = send_frame(tx.as_mut(), &frame);
            (tx, sent)
        })
        .await
        .map_err(join_err)?;
        tx = back;
        sent.map_err(|e| packet_err("cannot send gratuitous ARP", t, &e))?;
    }
    tracing::debug!(address = %t.ip, interface = %t.ifname, from, to, "gratuitous ARP sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    const OTHER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x99];
    const FIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

    #[test]
    fn probe_frame_layout() {
        let f = probe_frame(MAC, FIP);
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &BROADCAST_MAC);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[14..22], &[0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &MAC);
        assert_eq!(&f[28..32], &[0, 0, 0, 0]);
        assert_eq!(&f[32..38], &ZERO_MAC);
        assert_eq!(&f[38..42], &FIP.octets());
        assert!(f[42..].iter().all(|b| *b == 0));
    }

    #[test]
    fn garp_frames() {
        let req = garp_frame(MAC, FIP, false);
        assert_eq!(&req[20..22], &[0, 1]);
        assert_eq!(&req[28..32], &FIP.octets());
        assert_eq!(&req[38..42], &FIP.octets());
        assert_eq!(&req[32..38], &ZERO_MAC);
        let rep = garp_frame(MAC, FIP, true);
        assert_eq!(&rep[0..6], &BROADCAST_MAC);
        assert_eq!(&rep[20..22], &[0, 2]);
        assert_eq!(&rep[32..38], &MAC);
    }

    #[test]
    fn conflict_detection() {
        // Someone else replying for the FIP.
        let reply = arp_frame(ARP_OP_REPLY, MAC, OTHER, FIP, MAC, Ipv4Addr::UNSPECIFIED);
        assert_eq!(conflicting_mac(&reply, FIP, MAC), Some(OTHER));
        // Someone else announcing it.
        assert_eq!(
            conflicting_mac(&garp_frame(OTHER, FIP, false), FIP, MAC),
            Some(OTHER)
        );
        // Our own frames, our own probe, other addresses, junk.
        assert_eq!(conflicting_mac(&garp_frame(MAC, FIP, true), FIP, MAC), None);
        assert_eq!(conflicting_mac(&probe_frame(OTHER, FIP), FIP, MAC), None);
        let other_ip = garp_frame(OTHER, Ipv4Addr::new(198, 51, 100, 11), false);
        assert_eq!(conflicting_mac(&other_ip, FIP, MAC), None);
        assert_eq!(conflicting_mac(&reply[..41], FIP, MAC), None);
        assert_eq!(conflicting_mac(&[], FIP, MAC), None);
        let mut not_arp = reply;
        not_arp[12] = 0x08;
        not_arp[13] = 0x00;
        assert_eq!(conflicting_mac(&not_arp, FIP, MAC), None);
    }

    #[test]
    fn networks() {
        let net = Ipv4Addr::new(198, 51, 100, 1);
        assert!(in_network(net, 24, FIP));
        assert!(!in_network(net, 24, Ipv4Addr::new(198, 51, 101, 10)));
        assert!(in_network(net, 0, Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!in_network(net, 32, FIP));
        assert!(in_network(FIP, 32, FIP));
        assert!(in_network(net, 200, net));
    }

    #[test]
    fn mac_display() {
        assert_eq!(Mac(OTHER).to_string(), "02:00:00:00:00:99");
    }

    #[test]
    fn bad_addresses() {
        let cfg = |a: &str| FipConfig {
            address: a.to_string(),
            interface: None,
            gratuitous_arp: 0,
            duplicate_check: false,
            duplicate_check_ms: 100,
            duplicate_grace_ms: 0,
        };
        assert!(parse_address(&cfg("nope")).unwrap_err().contains("nope"));
        assert!(parse_address(&cfg("198.51.100.10/33")).is_err());
        assert!(parse_address(&cfg("0.0.0.0/24")).is_err());
        assert!(parse_address(&cfg("224.0.0.1")).is_err());
        assert_eq!(parse_address(&cfg("198.51.100.10")), Ok((FIP, 32)));
    }
}
