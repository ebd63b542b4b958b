//! Cluster membership: turns heartbeat facts into path and server states.
//! Pure: no I/O and no clock. Every call takes `now`, a monotonic
//! [`Duration`] since an epoch the caller chooses; the heartbeat actor feeds
//! it authentic packets, leave notices and link changes, calls [`Membership::tick`]
//! at [`Membership::next_deadline`], and carries out what it returns.
//!
//! Rules:
//! - a path is Up from an authentic beat on it, and Down once it has been
//!   silent for `timeout_ms`: at exactly `last beat + timeout` it is Down, so
//!   `next_deadline` is the very instant `tick` acts. A path never heard stays
//!   Unknown until its server is first heard; from then on its silence counts
//!   as well;
//! - a server is Online while any path to it is Up; when the last one goes
//!   Down it is Offline (down, cause Silent);
//! - a leave notice (orderly stop, or the guardian reporting the daemon's
//!   death) for the current incarnation takes it down at once; beats of that
//!   incarnation still in flight are ignored afterwards, as are beats and
//!   notices of older incarnations (incarnations grow with each daemon start);
//! - a beat of a newer incarnation from a server that is up means its daemon
//!   restarted faster than the timeout: it goes down (cause Restarted) and
//!   returns in the same call, because whatever it ran is gone;
//! - a server that comes back after being declared down returns Online with
//!   recovery Auto; with Manual it is Isolated (tracked, given nothing) until
//!   an operator recovers it. An Isolated server that goes silent is Offline
//!   again and, never having been recovered, is Isolated again when it
//!   returns. Exception: a server that went silent while this server had cut
//!   itself off (every local interconnect down) and returns in the same
//!   incarnation did nothing wrong: the silence was ours, it returns Online;
//! - a peer whose configuration digest differs from ours is flagged (once per
//!   digest it sends) and is not eligible for groups until it matches again;
//! - the cluster is formed once every other server has been heard, or when
//!   the startup wait since [`Membership::new`] is over, whichever comes first.
//!
//! The local server is always Online in [`Membership::state`]; whether it has
//! cut itself off is [`Membership::locally_isolated`].

use std::time::Duration;

use super::config::{ClusterConfig, ServerRecovery};
use super::state::{PathState, PathStatus, ServerState};

/// Two loss warnings on one path are at least this far apart.
pub const LOSS_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Why a server was declared down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownCause {
    /// No heartbeat on any path within the timeout.
    Silent,
    /// It announced an orderly stop.
    Left,
    /// Its guardian reported that the daemon died.
    Died,
    /// A beat of a new incarnation: the daemon restarted within the timeout.
    Restarted,
    /// Its BMC says the chassis has no power.
    PoweredOff,
}

impl DownCause {
    pub fn as_str(self) -> &'static str {
        match self {
            DownCause::Silent => "no heartbeat within the timeout",
            DownCause::Left => "stopped its cluster service",
            DownCause::Died => "its daemon died",
            DownCause::Restarted => "its daemon restarted",
            DownCause::PoweredOff => "its BMC reports the power off",
        }
    }
}

/// What changed, for the caller to act on and alert about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    PathUp {
        server: String,
        path: usize,
    },
    PathDown {
        server: String,
        path: usize,
    },
    /// Heartbeats were lost on a path: at most one warning per path every
    /// [`LOSS_WARNING_INTERVAL`], carrying the loss since the previous one.
    PathLoss {
        server: String,
        path: usize,
        lost: u64,
    },
    /// `returned`: it had been declared down before.
    ServerUp {
        server: String,
        returned: bool,
    },
    ServerDown {
        server: String,
        cause: DownCause,
    },
    /// Came back after being declared down, with Manual recovery: it stays
    /// out until `recover`.
    ServerIsolated {
        server: String,
    },
    ServerRecovered {
        server: String,
    },
    ConfigMismatch {
        server: String,
        digest: String,
    },
    ConfigMatch {
        server: String,
    },
    /// Every local interconnect interface is down: this server has cut
    /// itself off.
    LocalIsolated,
    LocalRejoined,
    /// The cluster has formed (once); `missing`: servers not heard by then.
    Formed {
        missing: Vec<String>,
    },
}

#[derive(Debug, Clone)]
struct Path {
    address: String,
    state: PathState,
    /// Where its silence is counted from: the last beat on it, or for a path
    /// never heard, the first beat of its server. None: nothing expected.
    since: Option<Duration>,
    received: u64,
    lost: u64,
    /// Lost since the last warning, not reported yet.
    unwarned: u64,
    warned_at: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Peer {
    name: String,
    state: ServerState,
    paths: Vec<Path>,
    incarnation: Option<u64>,
    /// The current incarnation announced its end: its late beats are ignored.
    ended: bool,
    /// The digest it sends, while it differs from ours.
    mismatch: Option<String>,
    /// It went silent while this server was cut off, in this incarnation.
    silent_by_us: Option<u64>,
}

impl Peer {
    fn any_up(&self) -> bool {
        self.paths.iter().any(|p| p.state == PathState::Up)
    }

    fn is_up(&self) -> bool {
        matches!(self.state, ServerState::Online | ServerState::Isolated)
    }
}

#[derive(Debug, Clone)]
pub struct Membership {
    local: String,
    local_digest: String,
    local_addresses: Vec<String>,
    /// Link state of this server's interface per path; None: not reported.
    local_links: Vec<Option<bool>>,
    locally_isolated: bool,
    /// Every other server, in configuration order.
    peers: Vec<Peer>,
    /// Every server's name, in configuration order (for messages).
    servers: Vec<String>,
    timeout: Duration,
    recovery: ServerRecovery,
    startup_end: Duration,
    formed: bool,
    /// The Formed event was returned.
    formed_reported: bool,
}

impl Membership {
    /// `local` is this server's name (one of the configuration's servers);
    /// the local digest is `config.digest()`. With no other server the
    /// cluster is formed at once; the Formed event comes from the first tick.
    pub fn new(config: &ClusterConfig, local: &str, now: Duration) -> Self {
        let hb = &config.heartbeat;
        let count = config.path_count();
        let local_addresses = config
            .server(local)
            .map(|s| s.interconnects.clone())
            .unwrap_or_default();
        let peers: Vec<Peer> = config
            .servers
            .iter()
            .filter(|s| s.name != local)
            .map(|s| Peer {
                name: s.name.clone(),
                state: ServerState::Unknown,
                paths: (0..count)
                    .map(|i| Path {
                        address: s.interconnects.get(i).cloned().unwrap_or_default(),
                        state: PathState::Unknown,
                        since: None,
                        received: 0,
                        lost: 0,
                        unwarned: 0,
                        warned_at: None,
                    })
                    .collect(),
                incarnation: None,
                ended: false,
                mismatch: None,
                silent_by_us: None,
            })
            .collect();
        let alone = peers.is_empty();
        Membership {
            local: local.to_string(),
            local_digest: config.digest(),
            local_links: vec![None; local_addresses.len()],
            local_addresses,
            locally_isolated: false,
            peers,
            servers: config.server_names(),
            timeout: Duration::from_millis(hb.timeout_ms.into()),
            recovery: hb.recovery,
            startup_end: if alone {
                now
            } else {
                now + Duration::from_secs(hb.startup_wait_secs.into())
            },
            formed: alone,
            formed_reported: false,
        }
    }

    /// The configuration digest this server compares its peers' with.
    pub fn digest(&self) -> &str {
        &self.local_digest
    }

    /// A configuration change applied online: peers are compared with the
    /// new digest from their next heartbeat on.
    pub fn set_digest(&mut self, digest: String) {
        self.local_digest = digest;
    }

    fn peer_index(&self, server: &str) -> Option<usize> {
        self.peers.iter().position(|p| p.name == server)
    }

    /// Whether a beat or notice of `incarnation` is older than what is known.
    fn stale(peer: &Peer, incarnation: u64) -> bool {
        peer.incarnation
            .is_some_and(|k| incarnation < k || (incarnation == k && peer.ended))
    }

    /// An authentic Alive heartbeat from `server` on `path`; `lost`: sequence
    /// numbers skipped since the previous beat on that path. Beats from
    /// unknown servers, the local one, or a path out of range are ignored.
    pub fn heard(
        &mut self,
        now: Duration,
        server: &str,
        path: usize,
        incarnation: u64,
        config_digest: &str,
        lost: u64,
    ) -> Vec<MemberEvent> {
        let mut out = Vec::new();
        let Some(i) = self.peer_index(server) else {
            return out;
        };
        let recovery = self.recovery;
        let peer = &mut self.peers[i];
        if path >= peer.paths.len() || Self::stale(peer, incarnation) {
            return out;
        }
        let name = peer.name.clone();
        let restarted = peer.incarnation.is_some_and(|k| k != incarnation);
        if restarted && peer.is_up() {
            // Whatever the old daemon ran is gone: down first, then back.
            peer.state = ServerState::Offline;
            out.push(MemberEvent::ServerDown {
                server: name.clone(),
                cause: DownCause::Restarted,
            });
        }
        peer.incarnation = Some(incarnation);
        peer.ended = false;

        let p = &mut peer.paths[path];
        let was_up = p.state == PathState::Up;
        p.received += 1;
        p.since = Some(now);
        // A gap across an outage or a restart is not loss: the outage was
        // reported as PathDown, and a new daemon numbers afresh.
        if was_up && !restarted && lost > 0 {
            p.lost += lost;
            p.unwarned += lost;
        }
        if !was_up {
            p.state = PathState::Up;
            out.push(MemberEvent::PathUp {
                server: name.clone(),
                path,
            });
        }
        // The other paths are expected from now on too.
        for q in &mut peer.paths {
            if q.state == PathState::Unknown && q.since.is_none() {
                q.since = Some(now);
            }
        }

        match peer.state {
            ServerState::Unknown => {
                peer.state = ServerState::Online;
                out.push(MemberEvent::ServerUp {
                    server: name.clone(),
                    returned: false,
                });
            }
            ServerState::Offline => {
                let ours = peer.silent_by_us == Some(incarnation);
                peer.silent_by_us = None;
                if recovery == ServerRecovery::Auto || ours {
                    peer.state = ServerState::Online;
                    out.push(MemberEvent::ServerUp {
                        server: name.clone(),
                        returned: true,
                    });
                } else {
                    peer.state = ServerState::Isolated;
                    out.push(MemberEvent::ServerIsolated {
                        server: name.clone(),
                    });
                }
            }
            ServerState::Online | ServerState::Isolated => {}
        }

        if config_digest == self.local_digest {
            if peer.mismatch.take().is_some() {
                out.push(MemberEvent::ConfigMatch {
                    server: name.clone(),
                });
            }
        } else if peer.mismatch.as_deref() != Some(config_digest) {
            peer.mismatch = Some(config_digest.to_string());
            out.push(MemberEvent::ConfigMismatch {
                server: name.clone(),
                digest: config_digest.to_string(),
            });
        }

        if let Some(e) = Self::loss_warning(&name, path, &mut peer.paths[path], now) {
            out.push(e);
        }
        if !self.formed && self.peers.iter().all(|p| p.state != ServerState::Unknown) {
            self.formed = true;
            self.formed_reported = true;
            out.push(MemberEvent::Formed {
                missing: Vec::new(),
            });
        }
        out
    }

    /// `server` announced it is leaving (orderly stop, `died` false) or its
    /// guardian reported that its daemon died (`died` true), for
    /// `incarnation`. A server that is up (Online or Isolated) goes down with
    /// all its paths; one already down or never heard only has that
    /// incarnation's late beats ignored. Stale notices change nothing.
    pub fn leaving(
        &mut self,
        _now: Duration,
        server: &str,
        incarnation: u64,
        died: bool,
    ) -> Vec<MemberEvent> {
        let Some(i) = self.peer_index(server) else {
            return Vec::new();
        };
        let cause = if died {
            DownCause::Died
        } else {
            DownCause::Left
        };
        self.end(i, incarnation, cause)
    }

    /// The BMC of `server` says its chassis has no power: its current
    /// incarnation is over, as with a death notice (its beats still in
    /// flight are ignored), cause PoweredOff. A server never heard has
    /// nothing to end.
    pub fn powered_off(&mut self, _now: Duration, server: &str) -> Vec<MemberEvent> {
        let Some(i) = self.peer_index(server) else {
            return Vec::new();
        };
        let Some(incarnation) = self.peers[i].incarnation else {
            return Vec::new();
        };
        self.end(i, incarnation, DownCause::PoweredOff)
    }

    fn end(&mut self, i: usize, incarnation: u64, cause: DownCause) -> Vec<MemberEvent> {
        let mut out = Vec::new();
        let peer = &mut self.peers[i];
        if Self::stale(peer, incarnation) {
            return out;
        }
        peer.incarnation = Some(incarnation);
        peer.ended = true;
        peer.silent_by_us = None;
        if !peer.is_up() {
            return out;
        }
        for (path, p) in peer.paths.iter_mut().enumerate() {
            p.since = None;
            if p.state != PathState::Down {
                p.state = PathState::Down;
                out.push(MemberEvent::PathDown {
                    server: peer.name.clone(),
                    path,
                });
            }
        }
        peer.state = ServerState::Offline;
        out.push(MemberEvent::ServerDown {
            server: peer.name.clone(),
            cause,
        });
        out
    }

    /// This server's own interface for `path` is up or down (link state).
    /// When every one is down, this server has cut itself off; any coming
    /// back ends that. A server alone in its cluster is never cut off.
    pub fn local_link(&mut self, _now: Duration, path: usize, up: bool) -> Vec<MemberEvent> {
        let mut out = Vec::new();
        let Some(link) = self.local_links.get_mut(path) else {
            return out;
        };
        *link = Some(up);
        let isolated = !self.peers.is_empty() && self.local_links.iter().all(|l| *l == Some(false));
        if isolated != self.locally_isolated {
            self.locally_isolated = isolated;
            out.push(if isolated {
                MemberEvent::LocalIsolated
            } else {
                MemberEvent::LocalRejoined
            });
        }
        out
    }

    /// This server did not run for `gap` (frozen, paused, starved): the
    /// peers' silence is counted only while it listened, so every path's
    /// silence starts `gap` later. Their beats queued meanwhile come next.
    pub fn paused(&mut self, gap: Duration) {
        for peer in &mut self.peers {
            for p in &mut peer.paths {
                if let Some(s) = p.since.as_mut() {
                    *s += gap;
                }
            }
        }
        self.startup_end += gap;
    }

    /// Time passes: paths silent for the timeout go Down (and servers left
    /// with none Up go Offline), held-back loss warnings are due, the
    /// startup wait may end.
    pub fn tick(&mut self, now: Duration) -> Vec<MemberEvent> {
        let mut out = Vec::new();
        let timeout = self.timeout;
        let cut_off = self.locally_isolated;
        for peer in &mut self.peers {
            for (path, p) in peer.paths.iter_mut().enumerate() {
                if p.state != PathState::Down && p.since.is_some_and(|s| now >= s + timeout) {
                    p.state = PathState::Down;
                    p.since = None;
                    out.push(MemberEvent::PathDown {
                        server: peer.name.clone(),
                        path,
                    });
                }
            }
            if peer.is_up() && !peer.any_up() {
                peer.state = ServerState::Offline;
                peer.silent_by_us = peer.incarnation.filter(|_| cut_off);
                out.push(MemberEvent::ServerDown {
                    server: peer.name.clone(),
                    cause: DownCause::Silent,
                });
            }
        }
        for peer in &mut self.peers {
            for (path, p) in peer.paths.iter_mut().enumerate() {
                if let Some(e) = Self::loss_warning(&peer.name, path, p, now) {
                    out.push(e);
                }
            }
        }
        if !self.formed_reported && (self.formed || now >= self.startup_end) {
            self.formed = true;
            self.formed_reported = true;
            out.push(MemberEvent::Formed {
                missing: self
                    .peers
                    .iter()
                    .filter(|p| p.state == ServerState::Unknown)
                    .map(|p| p.name.clone())
                    .collect(),
            });
        }
        out
    }

    /// The loss warning of a path, if one is due: some loss not reported
    /// yet, and none reported within the interval.
    fn loss_warning(server: &str, path: usize, p: &mut Path, now: Duration) -> Option<MemberEvent> {
        if p.unwarned == 0 || p.warned_at.is_some_and(|w| now < w + LOSS_WARNING_INTERVAL) {
            return None;
        }
        let lost = std::mem::take(&mut p.unwarned);
        p.warned_at = Some(now);
        Some(MemberEvent::PathLoss {
            server: server.to_string(),
            path,
            lost,
        })
    }

    /// Operator: take an Isolated server back. It is Online again at once
    /// (an Isolated server always has a path Up; if it has gone silent since
    /// the last tick, the next tick declares it down as any other).
    pub fn recover(&mut self, _now: Duration, server: &str) -> Result<Vec<MemberEvent>, String> {
        let Some(i) = self.peer_index(server) else {
            if server == self.local {
                return Err(format!(
                    "server \"{server}\" is this server (Online): only an Isolated server can be recovered"
                ));
            }
            return Err(format!(
                "no server \"{server}\" in the cluster (servers: {})",
                self.servers.join(", ")
            ));
        };
        let peer = &mut self.peers[i];
        if peer.state != ServerState::Isolated {
            return Err(format!(
                "server \"{server}\" is {}: only an Isolated server can be recovered",
                peer.state.as_str()
            ));
        }
        let mut out = vec![MemberEvent::ServerRecovered {
            server: peer.name.clone(),
        }];
        if peer.any_up() {
            peer.state = ServerState::Online;
            // The same event as an automatic return, so that whatever
            // follows a return (failback) hangs on one event.
            out.push(MemberEvent::ServerUp {
                server: peer.name.clone(),
                returned: true,
            });
        } else {
            peer.state = ServerState::Offline;
        }
        Ok(out)
    }

    /// The local server is always Online; a name not in the cluster is Unknown.
    pub fn state(&self, server: &str) -> ServerState {
        if server == self.local {
            return ServerState::Online;
        }
        self.peer_index(server)
            .map_or(ServerState::Unknown, |i| self.peers[i].state)
    }

    /// The last incarnation heard from (or announced by) a peer.
    pub fn incarnation(&self, server: &str) -> Option<u64> {
        self.peer_index(server)
            .and_then(|i| self.peers[i].incarnation)
    }

    /// May be given groups: Online with our configuration digest; the local
    /// server unless it has cut itself off.
    pub fn eligible(&self, server: &str) -> bool {
        if server == self.local {
            return !self.locally_isolated;
        }
        self.peer_index(server).is_some_and(|i| {
            let p = &self.peers[i];
            p.state == ServerState::Online && p.mismatch.is_none()
        })
    }

    /// The server whose configuration goes first, when it is not ours:
    /// the Online servers are ranked by their start (incarnation, then
    /// name), this server (of `local_incarnation`) among them, and the
    /// earliest one's configuration is the one whose servers start groups
    /// that nobody holds. Every server ranks the same servers the same way,
    /// so two that run different configurations never both start a group
    /// (each counts the other ineligible: without this, both would be the
    /// first eligible server of its order). The configuration that ran
    /// first keeps the cluster; a server started with another one waits.
    pub fn preceding_configuration(&self, local_incarnation: u64) -> Option<&str> {
        let mut ours = (local_incarnation, self.local.as_str());
        let mut other: Option<(u64, &str)> = None;
        for p in &self.peers {
            let (ServerState::Online, Some(inc)) = (p.state, p.incarnation) else {
                continue;
            };
            let rank = (inc, p.name.as_str());
            if p.mismatch.is_none() {
                ours = ours.min(rank);
            } else if other.is_none_or(|o| rank < o) {
                other = Some(rank);
            }
        }
        other.filter(|o| *o < ours).map(|o| o.1)
    }

    /// Its heartbeats carry another configuration digest.
    pub fn mismatch(&self, server: &str) -> bool {
        self.peer_index(server)
            .is_some_and(|i| self.peers[i].mismatch.is_some())
    }

    pub fn locally_isolated(&self) -> bool {
        self.locally_isolated
    }

    /// Every other server was heard at least once since start, or the
    /// startup wait is over (as of the last call). Stays true.
    pub fn formed(&self) -> bool {
        self.formed
    }

    /// The paths to a server in the order of its interconnects; for this
    /// server, its own interfaces (Up/Down by link state, no counters).
    pub fn paths(&self, server: &str) -> Vec<PathStatus> {
        if server == self.local {
            return self
                .local_addresses
                .iter()
                .zip(&self.local_links)
                .map(|(address, link)| PathStatus {
                    address: address.clone(),
                    state: match link {
                        None => PathState::Unknown,
                        Some(true) => PathState::Up,
                        Some(false) => PathState::Down,
                    },
                    received: 0,
                    lost: 0,
                })
                .collect();
        }
        self.peer_index(server).map_or_else(Vec::new, |i| {
            self.peers[i]
                .paths
                .iter()
                .map(|p| PathStatus {
                    address: p.address.clone(),
                    state: p.state,
                    received: p.received,
                    lost: p.lost,
                })
                .collect()
        })
    }

    /// The earliest `now` at which `tick` could return something (a path
    /// timeout, a held-back loss warning, the end of the startup wait), so
    /// the caller can sleep exactly until then. None: nothing is pending.
    pub fn next_deadline(&self) -> Option<Duration> {
        let formed = (!self.formed_reported).then_some(self.startup_end);
        let paths = self.peers.iter().flat_map(|peer| {
            peer.paths.iter().flat_map(|p| {
                let silence = p
                    .since
                    .filter(|_| p.state != PathState::Down)
                    .map(|s| s + self.timeout);
                let warning = p
                    .warned_at
                    .filter(|_| p.unwarned > 0)
                    .map(|w| w + LOSS_WARNING_INTERVAL);
                [silence, warning]
            })
        });
        formed.into_iter().chain(paths.flatten()).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const MS: Duration = Duration::from_millis(1);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// `servers` servers s1.. with `paths` interconnects each; timeout 5 s,
    /// startup wait 30 s.
    fn config(servers: usize, paths: usize, recovery: &str) -> ClusterConfig {
        let list: Vec<String> = (1..=servers)
            .map(|s| {
                let addrs: Vec<String> = (1..=paths).map(|p| format!("\"10.0.{p}.{s}\"")).collect();
                format!(
                    r#"Server(name: "s{s}", interconnects: [{}])"#,
                    addrs.join(", ")
                )
            })
            .collect();
        let text = format!(
            r#"Cluster(name: "c", servers: [{}],
                 heartbeat: (key_file: "/k", interval_ms: 500, timeout_ms: 5000,
                             startup_wait_secs: 30, recovery: {recovery}))"#,
            list.join(", ")
        );
        parse("c.ron", &text).unwrap()
    }

    /// s1 (local) and s2 with two paths, s2 heard on both at 0.
    fn pair(recovery: &str) -> (Membership, String) {
        let mut m = Membership::new(&config(2, 2, recovery), "s1", Duration::ZERO);
        let d = m.digest().to_string();
        m.heard(Duration::ZERO, "s2", 0, 7, &d, 0);
        m.heard(Duration::ZERO, "s2", 1, 7, &d, 0);
        (m, d)
    }

    fn path_down(path: usize) -> MemberEvent {
        MemberEvent::PathDown {
            server: "s2".into(),
            path,
        }
    }

    fn down(cause: DownCause) -> MemberEvent {
        MemberEvent::ServerDown {
            server: "s2".into(),
            cause,
        }
    }

    fn up(returned: bool) -> MemberEvent {
        MemberEvent::ServerUp {
            server: "s2".into(),
            returned,
        }
    }

    #[test]
    fn first_beat_brings_a_server_up() {
        let mut m = Membership::new(&config(2, 2, "Auto"), "s1", Duration::ZERO);
        let d = m.digest().to_string();
        assert_eq!(m.state("s1"), ServerState::Online);
        assert_eq!(m.state("s2"), ServerState::Unknown);
        assert!(!m.eligible("s2"));
        let e = m.heard(ms(100), "s2", 0, 7, &d, 0);
        assert_eq!(
            e,
            vec![
                MemberEvent::PathUp {
                    server: "s2".into(),
                    path: 0
                },
                up(false),
                MemberEvent::Formed { missing: vec![] },
            ]
        );
        assert_eq!(m.state("s2"), ServerState::Online);
        assert!(m.eligible("s2"));
        assert_eq!(m.incarnation("s2"), Some(7));
        let paths = m.paths("s2");
        assert_eq!(paths[0].address, "10.0.1.2");
        assert_eq!(paths[0].state, PathState::Up);
        assert_eq!(paths[0].received, 1);
        assert_eq!(paths[1].address, "10.0.2.2");
        assert_eq!(paths[1].state, PathState::Unknown);
    }

    #[test]
    fn one_path_down_is_not_a_server_down() {
        let (mut m, d) = pair("Auto");
        // Path 0 keeps beating, path 1 falls silent.
        m.heard(secs(3), "s2", 0, 7, &d, 0);
        assert_eq!(m.tick(secs(5)), vec![path_down(1)]);
        assert_eq!(m.state("s2"), ServerState::Online);
        assert!(m.eligible("s2"));
        assert_eq!(m.paths("s2")[1].state, PathState::Down);
    }

    #[test]
    fn every_path_down_is_a_silent_server_down() {
        let (mut m, _) = pair("Auto");
        assert_eq!(
            m.tick(secs(5)),
            vec![path_down(0), path_down(1), down(DownCause::Silent)]
        );
        assert_eq!(m.state("s2"), ServerState::Offline);
        assert!(!m.eligible("s2"));
        assert!(m.tick(secs(10)).is_empty());
    }

    #[test]
    fn a_path_is_down_at_exactly_the_timeout() {
        let (mut m, _) = pair("Auto");
        assert_eq!(m.next_deadline(), Some(secs(5)));
        assert!(m.tick(secs(5) - MS).is_empty());
        assert_eq!(m.state("s2"), ServerState::Online);
        assert!(!m.tick(secs(5)).is_empty());
        assert_eq!(m.state("s2"), ServerState::Offline);
    }

    #[test]
    fn a_path_never_heard_goes_down_once_its_server_is_heard() {
        let mut m = Membership::new(&config(2, 2, "Auto"), "s1", Duration::ZERO);
        let d = m.digest().to_string();
        // Nothing is expected of a server not heard yet.
        assert_eq!(m.next_deadline(), Some(secs(30)));
        m.heard(secs(1), "s2", 0, 7, &d, 0);
        m.heard(secs(4), "s2", 0, 7, &d, 0);
        assert_eq!(m.next_deadline(), Some(secs(6)));
        assert_eq!(m.tick(secs(6)), vec![path_down(1)]);
        assert_eq!(m.state("s2"), ServerState::Online);
    }

    #[test]
    fn leaving_and_dying() {
        let (mut m, _) = pair("Manual");
        assert_eq!(
            m.leaving(secs(1), "s2", 7, false),
            vec![path_down(0), path_down(1), down(DownCause::Left)]
        );
        assert_eq!(m.state("s2"), ServerState::Offline);
        // Nothing left to time out.
        assert_eq!(m.next_deadline(), None);
        assert!(m.tick(secs(10)).is_empty());

        let (mut m, _) = pair("Manual");
        assert_eq!(
            m.leaving(secs(1), "s2", 7, true),
            vec![path_down(0), path_down(1), down(DownCause::Died)]
        );
    }

    #[test]
    fn late_beats_of_a_stopped_incarnation_are_ignored() {
        let (mut m, d) = pair("Manual");
        m.leaving(secs(1), "s2", 7, false);
        assert!(m.heard(secs(1), "s2", 1, 7, &d, 0).is_empty());
        assert_eq!(m.state("s2"), ServerState::Offline);
        // Its next start is a return.
        let e = m.heard(secs(20), "s2", 0, 8, &d, 0);
        assert!(e.contains(&MemberEvent::ServerIsolated {
            server: "s2".into()
        }));
    }

    #[test]
    fn a_stale_leave_notice_is_ignored() {
        let (mut m, d) = pair("Auto");
        m.heard(secs(1), "s2", 0, 9, &d, 0);
        assert!(m.leaving(secs(2), "s2", 7, false).is_empty());
        assert_eq!(m.state("s2"), ServerState::Online);
        // The same notice twice counts once.
        assert!(!m.leaving(secs(2), "s2", 9, false).is_empty());
        assert!(m.leaving(secs(2), "s2", 9, false).is_empty());
        // Beats of an older incarnation are stale as well.
        assert!(m.heard(secs(3), "s2", 0, 8, &d, 0).is_empty());
        assert_eq!(m.incarnation("s2"), Some(9));
    }

    #[test]
    fn a_restart_within_the_timeout_is_a_down_and_a_return() {
        let (mut m, d) = pair("Auto");
        assert_eq!(
            m.heard(secs(2), "s2", 0, 8, &d, 40),
            vec![down(DownCause::Restarted), up(true)]
        );
        assert_eq!(m.state("s2"), ServerState::Online);
        assert_eq!(m.incarnation("s2"), Some(8));
        // The sequence gap across the restart is not loss.
        assert_eq!(m.paths("s2")[0].lost, 0);

        let (mut m, d) = pair("Manual");
        assert_eq!(
            m.heard(secs(2), "s2", 0, 8, &d, 0),
            vec![
                down(DownCause::Restarted),
                MemberEvent::ServerIsolated {
                    server: "s2".into()
                }
            ]
        );
    }

    #[test]
    fn return_with_auto_recovery() {
        let (mut m, d) = pair("Auto");
        m.tick(secs(5));
        let e = m.heard(secs(8), "s2", 1, 7, &d, 0);
        assert_eq!(
            e,
            vec![
                MemberEvent::PathUp {
                    server: "s2".into(),
                    path: 1
                },
                up(true)
            ]
        );
        assert!(m.eligible("s2"));
        // The other path stays Down until it is heard.
        assert_eq!(m.paths("s2")[0].state, PathState::Down);
    }

    #[test]
    fn return_with_manual_recovery_waits_for_the_operator() {
        let (mut m, d) = pair("Manual");
        m.tick(secs(5));
        let e = m.heard(secs(8), "s2", 0, 7, &d, 0);
        assert!(e.contains(&MemberEvent::ServerIsolated {
            server: "s2".into()
        }));
        assert_eq!(m.state("s2"), ServerState::Isolated);
        assert!(!m.eligible("s2"));
        // Still tracked.
        m.heard(secs(9), "s2", 1, 7, &d, 0);
        assert_eq!(m.paths("s2")[1].state, PathState::Up);
        assert_eq!(
            m.recover(secs(10), "s2").unwrap(),
            vec![
                MemberEvent::ServerRecovered {
                    server: "s2".into()
                },
                up(true)
            ]
        );
        assert_eq!(m.state("s2"), ServerState::Online);
        assert!(m.eligible("s2"));
    }

    #[test]
    fn an_isolated_server_going_silent_must_still_be_recovered() {
        let (mut m, d) = pair("Manual");
        m.tick(secs(5));
        m.heard(secs(8), "s2", 0, 7, &d, 0);
        assert_eq!(m.state("s2"), ServerState::Isolated);
        assert_eq!(
            m.tick(secs(13)),
            vec![path_down(0), down(DownCause::Silent)]
        );
        assert_eq!(m.state("s2"), ServerState::Offline);
        let e = m.heard(secs(20), "s2", 0, 7, &d, 0);
        assert!(e.contains(&MemberEvent::ServerIsolated {
            server: "s2".into()
        }));
        assert!(!m.eligible("s2"));
    }

    #[test]
    fn a_server_silent_while_we_were_cut_off_returns_without_recovery() {
        let (mut m, d) = pair("Manual");
        m.local_link(secs(1), 0, false);
        m.local_link(secs(1), 1, false);
        m.tick(secs(5));
        assert_eq!(m.state("s2"), ServerState::Offline);
        m.local_link(secs(6), 0, true);
        assert_eq!(
            m.heard(secs(6), "s2", 0, 7, &d, 0),
            vec![
                MemberEvent::PathUp {
                    server: "s2".into(),
                    path: 0
                },
                up(true)
            ]
        );
        // A new incarnation did go down for real.
        m.local_link(secs(7), 0, false);
        m.tick(secs(11));
        m.local_link(secs(12), 0, true);
        let e = m.heard(secs(12), "s2", 0, 8, &d, 0);
        assert!(e.contains(&MemberEvent::ServerIsolated {
            server: "s2".into()
        }));
    }

    #[test]
    fn the_configuration_of_the_earliest_started_server_goes_first() {
        // s1 (incarnation 5) with s2 (7) on another configuration: ours
        // goes first; on s2's side the same ranking makes it wait.
        let (mut m, _) = pair("Auto");
        assert_eq!(m.preceding_configuration(5), None);
        m.heard(secs(1), "s2", 0, 7, "other", 0);
        assert!(m.mismatch("s2"));
        assert_eq!(m.preceding_configuration(5), None);
        assert_eq!(m.preceding_configuration(9), Some("s2"));
        // The same start: the name decides (s1 before s2 here, so s2's
        // configuration goes first only for a server named after it).
        assert_eq!(m.preceding_configuration(7), None);
        // Three servers: s2 on ours, started before the stranger s3.
        let mut m = Membership::new(&config(3, 1, "Auto"), "s1", Duration::ZERO);
        let d = m.digest().to_string();
        m.heard(secs(1), "s2", 0, 3, &d, 0);
        m.heard(secs(1), "s3", 0, 4, "other", 0);
        assert_eq!(m.preceding_configuration(9), None);
        // s2 goes down: s3's configuration started first of those left.
        m.leaving(secs(2), "s2", 3, false);
        assert_eq!(m.preceding_configuration(9), Some("s3"));
        // Once s3 runs ours, nothing goes before it.
        m.heard(secs(3), "s3", 0, 4, &d, 0);
        assert_eq!(m.preceding_configuration(9), None);
    }

    #[test]
    fn config_mismatch_and_match() {
        let (mut m, d) = pair("Auto");
        let e = m.heard(secs(1), "s2", 0, 7, "other", 0);
        assert_eq!(
            e,
            vec![MemberEvent::ConfigMismatch {
                server: "s2".into(),
                digest: "other".into()
            }]
        );
        assert!(m.mismatch("s2"));
        assert!(!m.eligible("s2"));
        assert_eq!(m.state("s2"), ServerState::Online);
        // Once per digest.
        assert!(m.heard(secs(1), "s2", 1, 7, "other", 0).is_empty());
        assert_eq!(m.heard(secs(2), "s2", 0, 7, "third", 0).len(), 1);
        assert_eq!(
            m.heard(secs(3), "s2", 0, 7, &d, 0),
            vec![MemberEvent::ConfigMatch {
                server: "s2".into()
            }]
        );
        assert!(!m.mismatch("s2"));
        assert!(m.eligible("s2"));
    }

    #[test]
    fn loss_warnings_are_rate_limited() {
        let (mut m, d) = pair("Auto");
        let loss = |lost| MemberEvent::PathLoss {
            server: "s2".into(),
            path: 0,
            lost,
        };
        assert_eq!(m.heard(secs(1), "s2", 0, 7, &d, 2), vec![loss(2)]);
        assert!(m.heard(secs(2), "s2", 0, 7, &d, 3).is_empty());
        assert!(m.heard(secs(30), "s2", 0, 7, &d, 1).is_empty());
        // Keep the paths up; the held-back loss is due 60 s after the warning.
        for t in (34..=58).step_by(3) {
            m.heard(secs(t), "s2", 0, 7, &d, 0);
            m.heard(secs(t), "s2", 1, 7, &d, 0);
        }
        assert_eq!(m.next_deadline(), Some(secs(61)));
        assert_eq!(m.tick(secs(61)), vec![loss(4)]);
        assert_eq!(m.paths("s2")[0].lost, 6);
        // Next warning no sooner than 121 s, even with a beat carrying loss.
        assert!(m.heard(secs(62), "s2", 0, 7, &d, 1).is_empty());
        assert_eq!(m.heard(secs(121), "s2", 0, 7, &d, 0), vec![loss(1)]);
    }

    #[test]
    fn a_gap_across_an_outage_is_not_loss() {
        let (mut m, d) = pair("Auto");
        m.heard(secs(4), "s2", 0, 7, &d, 0);
        m.tick(secs(5));
        assert_eq!(m.paths("s2")[1].state, PathState::Down);
        let e = m.heard(secs(6), "s2", 1, 7, &d, 11);
        assert_eq!(
            e,
            vec![MemberEvent::PathUp {
                server: "s2".into(),
                path: 1
            }]
        );
        assert_eq!(m.paths("s2")[1].lost, 0);
    }

    #[test]
    fn local_isolation_and_rejoin() {
        let (mut m, _) = pair("Auto");
        assert!(m.local_link(secs(1), 0, false).is_empty());
        assert!(m.eligible("s1"));
        assert_eq!(
            m.local_link(secs(1), 1, false),
            vec![MemberEvent::LocalIsolated]
        );
        assert!(m.locally_isolated());
        assert!(!m.eligible("s1"));
        assert_eq!(m.state("s1"), ServerState::Online);
        assert!(m.local_link(secs(2), 1, false).is_empty());
        let states: Vec<PathState> = m.paths("s1").iter().map(|p| p.state).collect();
        assert_eq!(states, vec![PathState::Down, PathState::Down]);
        assert_eq!(
            m.local_link(secs(3), 0, true),
            vec![MemberEvent::LocalRejoined]
        );
        assert!(!m.locally_isolated());
        assert!(m.eligible("s1"));
        assert!(m.local_link(secs(3), 1, true).is_empty());
        assert_eq!(m.paths("s1")[0].address, "10.0.1.1");
    }

    #[test]
    fn formed_when_every_server_is_heard() {
        let mut m = Membership::new(&config(3, 1, "Auto"), "s1", secs(100));
        let d = m.digest().to_string();
        assert!(!m.formed());
        assert!(!m
            .heard(secs(101), "s3", 0, 1, &d, 0)
            .iter()
            .any(|e| matches!(e, MemberEvent::Formed { .. })));
        assert!(!m.formed());
        let e = m.heard(secs(102), "s2", 0, 1, &d, 0);
        assert_eq!(e.last(), Some(&MemberEvent::Formed { missing: vec![] }));
        assert!(m.formed());
        // Once.
        m.tick(secs(130));
        assert!(!m
            .tick(secs(200))
            .iter()
            .any(|e| matches!(e, MemberEvent::Formed { .. })));
    }

    #[test]
    fn formed_by_the_startup_wait_lists_the_missing() {
        let mut m = Membership::new(&config(3, 1, "Auto"), "s2", secs(100));
        let d = m.digest().to_string();
        m.heard(secs(101), "s3", 0, 1, &d, 0);
        assert_eq!(m.next_deadline(), Some(secs(106)));
        m.heard(secs(126), "s3", 0, 1, &d, 0);
        assert_eq!(m.next_deadline(), Some(secs(130)));
        assert!(m.tick(secs(130) - MS).is_empty());
        assert_eq!(
            m.tick(secs(130)),
            vec![MemberEvent::Formed {
                missing: vec!["s1".into()]
            }]
        );
        assert!(m.formed());
        // A late server changes nothing about it.
        let e = m.heard(secs(131), "s1", 0, 1, &d, 0);
        assert!(!e.iter().any(|e| matches!(e, MemberEvent::Formed { .. })));
        assert!(m.formed());
    }

    #[test]
    fn a_single_server_is_formed_at_once() {
        let mut m = Membership::new(&config(1, 1, "Auto"), "s1", secs(5));
        assert!(m.formed());
        assert_eq!(m.next_deadline(), Some(secs(5)));
        assert_eq!(
            m.tick(secs(5)),
            vec![MemberEvent::Formed { missing: vec![] }]
        );
        assert_eq!(m.next_deadline(), None);
        // Alone, its links cannot cut it off from anyone.
        assert!(m.local_link(secs(6), 0, false).is_empty());
        assert!(!m.locally_isolated());
        assert!(m.eligible("s1"));
    }

    #[test]
    fn next_deadline_follows_the_earliest_silence() {
        let mut m = Membership::new(&config(3, 2, "Auto"), "s1", Duration::ZERO);
        let d = m.digest().to_string();
        assert_eq!(m.next_deadline(), Some(secs(30)));
        m.heard(secs(1), "s2", 0, 1, &d, 0);
        m.heard(secs(2), "s2", 1, 1, &d, 0);
        m.heard(secs(2), "s3", 0, 1, &d, 0);
        m.heard(secs(2), "s3", 1, 1, &d, 0);
        m.tick(secs(2));
        // Formed (all heard): only silences are left.
        assert_eq!(m.next_deadline(), Some(secs(6)));
        m.heard(secs(3), "s2", 0, 1, &d, 0);
        assert_eq!(m.next_deadline(), Some(secs(7)));
        m.tick(secs(7));
        assert_eq!(m.next_deadline(), Some(secs(8)));
        m.leaving(secs(7), "s2", 1, false);
        m.leaving(secs(7), "s3", 1, false);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn recover_errors() {
        let (mut m, _) = pair("Manual");
        assert_eq!(
            m.recover(secs(1), "s2").unwrap_err(),
            "server \"s2\" is Online: only an Isolated server can be recovered"
        );
        m.tick(secs(5));
        assert!(m.recover(secs(6), "s2").unwrap_err().contains("is Offline"));
        assert!(m
            .recover(secs(6), "s1")
            .unwrap_err()
            .contains("this server"));
        assert_eq!(
            m.recover(secs(6), "s9").unwrap_err(),
            "no server \"s9\" in the cluster (servers: s1, s2)"
        );
        let mut fresh = Membership::new(&config(2, 1, "Manual"), "s1", Duration::ZERO);
        assert!(fresh
            .recover(secs(0), "s2")
            .unwrap_err()
            .contains("is Unknown"));
    }

    #[test]
    fn unknown_servers_and_paths_are_ignored() {
        let (mut m, d) = pair("Auto");
        assert!(m.heard(secs(1), "s9", 0, 1, &d, 0).is_empty());
        assert!(m.heard(secs(1), "s2", 5, 7, &d, 0).is_empty());
        assert!(m.heard(secs(1), "s1", 0, 1, &d, 0).is_empty());
        assert!(m.leaving(secs(1), "s9", 1, false).is_empty());
        assert!(m.local_link(secs(1), 9, false).is_empty());
        assert_eq!(m.state("s9"), ServerState::Unknown);
        assert!(m.paths("s9").is_empty());
    }
}
