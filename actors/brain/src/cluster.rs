//! The cluster brain of one server: membership, where groups run, takeover,
//! startup, failback, self-fencing, the reports of dead servers and double
//! activity. Pure: inputs in ([`Input`], each at a monotonic instant the
//! caller gives), commands out ([`Command`]); no I/O and no clock. The
//! coordinator feeds it and carries out what it returns; the simulator
//! (`understudy-sim`) runs several of them on one thread.
//!
//! The rule it keeps, whatever the order of events: a group the cluster
//! wants running, that no up server holds, is started by the first eligible
//! server of its order, and only by that one. The rule is level-triggered:
//! it is applied again after every input, so a missed edge (a link flap
//! shorter than the timeout, a refused takeover, a peer that restarted)
//! cannot leave a group down for good.
//!
//! What the cluster wants of a group is an *intent* (run or not) with a
//! Lamport stamp, carried in every heartbeat: the highest `(stamp, server)`
//! wins on every server. Until anybody decided, a group with startup
//! attribute Auto is wanted. A server that holds a group wants it; a group
//! stopped here by anything but the brain itself (an operator, a final
//! action) is not wanted any more. Stops the brain orders (self-fencing, the
//! clean-up of a failed takeover) and hand-overs (moves, orderly shutdown)
//! keep the intent.
//!
//! Reports: every survivor logs a server-down; one of them (the first
//! eligible server of the cluster in its view) mails it and sets the dead
//! server's lamp, and says so in its heartbeats. The others keep the report
//! pending until they see that, and take it over when the reporter itself
//! goes down first.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::advert::{Advert, GroupAdvert, IntentAdvert, ReportAdvert};
use crate::bmc::BmcReading;
use crate::catalog::Event;
use crate::config::{ClusterConfig, FailbackAttribute, StartupAttribute};
use crate::forced_stop::ForcedStopConfig;
use crate::membership::{DownCause, MemberEvent, Membership};
use crate::partition::{self, NpAction, PartitionConfig};
use crate::placement;
use crate::state::{RunState, ServerState};

/// Shortest wait before the first retry of a group whose automatic start
/// failed; the wait doubles with each failure up to [`retry_cap`].
pub const RETRY_FLOOR: Duration = Duration::from_secs(1);

/// Longest wait between two tries: 30 heartbeat timeouts, between 1 and
/// 60 s (9 s at the lab's 300 ms): a cluster tuned to notice faults fast
/// also tries again fast.
pub fn retry_cap(config: &ClusterConfig) -> Duration {
    (Duration::from_millis(config.heartbeat.timeout_ms.into()) * 30)
        .clamp(RETRY_FLOOR, Duration::from_secs(60))
}
/// The shell calls [`Brain::handle`] (a [`Input::Tick`] if nothing else)
/// at least this often: a quarter of the heartbeat timeout. A longer gap
/// means this server did not run (frozen, a paused VM, starved), and the
/// brain does not count that time as its peers' silence.
pub fn tick_at_least_every(config: &ClusterConfig) -> Duration {
    Duration::from_millis(config.heartbeat.timeout_ms.into()) / 4
}

/// How long a reporter must stay up after saying it reported a down before
/// the others take its word for it: its mail needs that long to leave.
fn report_confirm(config: &ClusterConfig) -> Duration {
    2 * Duration::from_millis(config.heartbeat.timeout_ms.into()) + Duration::from_secs(1)
}

/// How long a report stays in this server's heartbeats.
const REPORT_KEPT: Duration = Duration::from_secs(600);

/// A fact for the brain, at the instant given with it.
// Inputs are handled one at a time and rarely queued (a frozen daemon's
// few hundred): the advert's size in `Heard` costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// Time passes: silent paths, retries and reports fall due.
    Tick,
    /// An authentic Alive heartbeat. `sent_ms`: the sender's monotonic
    /// clock when it sent the beat, ms since its daemon started (0:
    /// unknown, an older peer).
    Heard {
        from: String,
        path: usize,
        incarnation: u64,
        digest: String,
        lost: u64,
        sent_ms: u64,
        /// When the beat came off the socket, on this server's clock (ms;
        /// 0: at `now`): the time it then waited to be handled is not
        /// time on the network.
        #[serde(default)]
        arrived_ms: u64,
        advert: Advert,
    },
    /// An authentic leave notice (orderly stop, or the guardian reporting
    /// that the daemon died).
    Leaving {
        from: String,
        incarnation: u64,
        died: bool,
    },
    /// This server's own interface of a path is up or down.
    LocalLink {
        path: usize,
        up: bool,
    },
    /// A local group's state, as its group actor reports it.
    GroupState {
        group: String,
        state: RunState,
    },
    /// A Start or Stop the brain asked for has ended.
    Done {
        group: String,
        result: Result<(), String>,
    },
    /// The group is being handed over to another server (`on`), or that is
    /// over (accepted, refused or failed).
    Moving {
        group: String,
        on: bool,
    },
    /// A peer asks this server to start a group it has just stopped (a
    /// move or a ladder's failover).
    Accepting {
        group: String,
        from: String,
    },
    Suspend {
        by: String,
    },
    Resume {
        by: String,
    },
    /// `server recover NAME`.
    Recover {
        server: String,
        by: String,
    },
    /// The cluster service stops here; `handover`: the groups go to the
    /// other servers (server shutdown), not a stop of the whole cluster.
    Stopping {
        handover: bool,
    },
    /// The configuration digest changed (a push applied online).
    Digest(String),
    /// `understudy server confirm-down NAME`: an operator checked that a
    /// silent server is off; its groups need not wait for its lease.
    ConfirmDown {
        server: String,
        by: String,
    },
    /// The etcd witness: whether this server holds its vote, and until
    /// when that is surely true (this server's clock).
    Witness {
        holds: bool,
        until: Duration,
    },
    /// A gate of partition resolution (`partition.methods[method]`: Ping,
    /// Http) finished a round: `reached` (a ping target or the web server
    /// answered), and then until when that counts (the round's send
    /// instant plus the lease, this server's clock); `error`: why it was
    /// not reached.
    Target {
        method: usize,
        reached: bool,
        until: Duration,
        #[serde(default)]
        error: Option<String>,
    },
    /// A forced stop the brain asked for has ended (Ok: the server is off).
    ForcedStopDone {
        server: String,
        result: Result<(), String>,
    },
    /// A poll of `server`'s BMC (Get Chassis Status) ended: what it found,
    /// and when the question was sent (this server's clock): a beat that
    /// arrived after that instant was sent by a host that had power.
    Bmc {
        server: String,
        reading: BmcReading,
        asked: Duration,
    },
}

/// What the brain asks the shell to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Log the alert and route it; `mail`: this server may mail it.
    Alert { event: Event, mail: bool },
    /// Mail an alert already logged here: the server that should have
    /// reported it went down first.
    MailOnly(Event),
    /// Set a server's warning lamp.
    Lamp { server: String, state: Lamp },
    /// Start a group here; `failover_from`: it is taken over from that
    /// server (`CLP_EVENT=FAILOVER`).
    Start {
        group: String,
        failover_from: Option<String>,
        by: String,
    },
    /// Stop a group here, keeping what the cluster wants of it.
    Stop { group: String, by: String },
    /// Move a group that runs here to `to` (failback).
    Move {
        group: String,
        to: String,
        by: String,
    },
    /// Heartbeats carry this from now on.
    Advertise(Advert),
    /// The answer to an operator input (Recover, ConfirmDown).
    Reply(Result<String, String>),
    /// This server lost its quorum: carry out the action at NP
    /// occurrence (its groups are being released by Stop commands).
    NpAction(NpAction),
    /// Stop this silent server by force (`forced_stop`); its end comes as
    /// [`Input::ForcedStopDone`].
    ForcedStop { server: String },
    /// Whether the witness's driver is to hold its vote (`true`, the
    /// start) or give it up (`false`): a server that runs nothing gives it
    /// to a peer heard both ways that runs groups, so that a fault of the
    /// idle server never costs the active one its quorum.
    WitnessCampaign(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lamp {
    RedBlinking,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Intent {
    run: bool,
    stamp: u64,
    by: String,
}

impl Intent {
    fn beats(&self, other: &Intent) -> bool {
        (self.stamp, &self.by) > (other.stamp, &other.by)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// A start the brain ordered.
    Start,
    /// A stop the brain ordered; the intent stays.
    Stop,
    /// A start another server asked for (a move, a ladder's failover, an
    /// operator's `group start --server`); its end comes as `Done` too.
    Incoming,
}

#[derive(Debug, Clone, Default)]
struct LocalGroup {
    state: Option<RunState>,
    /// The brain's operations not finished yet, in order (the group
    /// actor runs one at a time, first come first served).
    pending: VecDeque<Pending>,
    moving: bool,
    /// The last start here was the brain's (takeover, startup, retry): a
    /// failure is cleaned up and tried again.
    automatic: bool,
    /// Stopped here by the self-fencing; taken back on rejoining.
    fenced: bool,
    /// The last stop here keeps what the cluster wants of the group (the
    /// brain ordered it, or the group is handed over): set until the next
    /// start, so the order in which the shell reports does not matter.
    keep_intent: bool,
    /// When a failed automatic start is cleaned up; then `cleanup` until
    /// it is.
    cleanup_at: Option<Duration>,
    cleanup: bool,
    /// Failed automatic starts in a row, and when the next may begin.
    attempts: u32,
    retry_at: Option<Duration>,
    /// Since when something of it may be active here: only a peer's advert
    /// sent after that instant shows a second copy of this one.
    active_since: Option<Duration>,
}

/// A server-down not yet known to be reported.
#[derive(Debug, Clone)]
struct PendingReport {
    event: Event,
    lamp: bool,
    /// Already logged here without mail.
    logged: bool,
    /// Send time of the down server's last beat heard here.
    last_ms: u64,
    /// The server that said it reported it: the report is retired once
    /// that server has stayed up for [`report_confirm`] (its mail had the
    /// time to go), and taken over if it goes down before.
    acked_by: Option<String>,
    /// Unless the reporter says it reported by then, this server does: the
    /// reporter may never have seen the server it should report (it had
    /// just started, or was cut off).
    deadline: Duration,
}

pub struct Brain {
    config: ClusterConfig,
    /// Each group's server order (the configuration never changes in a
    /// brain's life), so that deciding allocates nothing per input.
    orders: BTreeMap<String, Vec<String>>,
    local: String,
    /// This daemon's incarnation (its start): ranks its configuration
    /// against another one that peers run ([`Membership::preceding_configuration`]).
    incarnation: u64,
    membership: Membership,
    /// The last advert of every up peer.
    peers: BTreeMap<String, Advert>,
    /// Per peer: incarnation and the smallest (arrival - sent) seen, ms.
    offsets: BTreeMap<String, (u64, i128)>,
    /// Per peer: incarnation and version of the advert taken in last; an
    /// older one (reordered, or queued) does not replace it.
    advert_version: BTreeMap<String, (u64, u64)>,
    /// Per peer: send time of the newest beat heard (its clock, ms).
    last_sent: BTreeMap<String, (u64, u64)>,
    groups: BTreeMap<String, LocalGroup>,
    intents: BTreeMap<String, Intent>,
    clock: u64,
    suspended: bool,
    stopping: Option<bool>,
    /// Groups whose last holder went down, with that server: the next start
    /// is a failover.
    orphans: BTreeMap<String, String>,
    reports: BTreeMap<(String, u64), PendingReport>,
    /// Reports made here, advertised until the instant given.
    reported: BTreeMap<ReportAdvert, Duration>,
    /// Per group active here and on other servers: the holders, since
    /// when this server has seen that set, and whether it reported it
    /// (rc 92), so that a set is reported once.
    doubles: BTreeMap<String, (Vec<String>, Duration, bool)>,
    /// Paths declared down, so that only their return is news.
    down_paths: BTreeSet<(String, usize)>,
    advert: Advert,
    stale_beats: u64,
    /// The instant of the last input, to notice that this server stalled.
    last_input: Option<Duration>,
    /// After a stall this server starts nothing until it has listened for
    /// a timeout: what it holds of the others is old, and what queued
    /// while it did not run comes in meanwhile.
    listen_until: Option<Duration>,
    /// Peers heard since the listening began: once every up peer has been,
    /// the listening ends early.
    heard_since: BTreeSet<String>,
    listen_from: Duration,
    /// A daemon that just formed its view of the cluster starts nothing for
    /// two intervals: the adverts it formed it from may have been sent
    /// before a peer's own decision, which is still on its way.
    hold_until: Option<Duration>,
    /// Network-partition resolution, if configured.
    partition: Option<PartitionConfig>,
    /// Per peer: until when its last heartbeat saying it hears this server
    /// counts towards this server's quorum.
    support: BTreeMap<String, Duration>,
    /// Whether this server was quorate at the last input, and until when
    /// its quorum lasts (or lasted) without more support.
    quorate: bool,
    lease_end: Option<Duration>,
    /// Per server not heard: since when this server has been quorate with
    /// every member of its quorum not hearing it either.
    unseen_since: BTreeMap<String, Duration>,
    /// Servers known to hold nothing (left, died under their guardian,
    /// restarted, confirmed down), until heard again.
    /// (With the incarnation that died or was stopped: a newer one, heard
    /// by a member of the quorum, may hold groups again.)
    cleared: BTreeMap<String, u64>,
    /// Takeover waits already announced (server, instant of the wait's end).
    waits_told: BTreeSet<(String, Duration)>,
    /// Until when this server surely holds the witness's vote.
    witness_until: Option<Duration>,
    /// Per gate (index in `partition.methods`): its verdicts.
    targets: BTreeMap<usize, TargetVerdict>,
    /// Forced stop, if configured.
    forced_stop: Option<ForcedStopConfig>,
    /// Servers declared down because they went silent, not heard since:
    /// they may still run something.
    silent_down: BTreeSet<String>,
    /// Forced stops asked for and not succeeded.
    fencing: BTreeMap<String, Fence>,
    /// The action at NP occurrence, put off until then: with a witness,
    /// its vote may yet come to this server (it changes hands only when
    /// its etcd lease runs out). Dropped once quorate again.
    np_action_at: Option<Duration>,
    /// Whether the witness's driver holds on to the vote (see
    /// [`Command::WitnessCampaign`]); while not, the vote is not counted.
    campaign: bool,
    /// Per peer with a BMC: the last poll's reading and when it was asked.
    bmc: BTreeMap<String, (BmcReading, Duration)>,
    /// Per peer: when its last beat came off the socket (this server's
    /// clock).
    last_arrival: BTreeMap<String, Duration>,
    /// Silent peers whose BMC says the power is on, the hold told (nm 38).
    held_told: BTreeSet<String>,
}

/// What a gate (Ping, Http) told the brain.
#[derive(Debug, Clone, Default)]
struct TargetVerdict {
    /// Until when its last "reached" counts.
    until: Option<Duration>,
    /// Why its last round failed, if it did.
    error: Option<String>,
    /// Fresh at the last evaluation.
    fresh: bool,
    /// Its lapse was reported (nm 37): its return is (nm 36).
    lapse_told: bool,
}

/// A forced stop of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fence {
    Running {
        attempts: u32,
    },
    /// Failed `attempts` times; tried again from `retry_at` (without
    /// partition resolution: with it, the takeover waits out the lease).
    Failed {
        attempts: u32,
        retry_at: Duration,
    },
}

/// Why a group cannot be taken here now, as far as partitions go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Block {
    /// This server is not quorate.
    NotQuorate,
    /// Waiting for the members of the quorum to agree a server is silent.
    Agree,
    /// Waiting for a silent server's lease to surely end, until then.
    Wait(String, Duration),
    /// A silent server must be stopped by force first.
    Fence(String),
    /// A server of the group's order that this one hears does not hear it
    /// (a one-way cut): it may be taking this server's groups over.
    NotHeardBy(String),
    /// A silent server whose BMC says the power is on: no blind failover.
    PoweredOn(String),
}

impl Brain {
    /// The brain of server `local`, whose daemon is of `incarnation` (the
    /// number its heartbeats carry).
    pub fn new(config: ClusterConfig, local: &str, incarnation: u64, now: Duration) -> Brain {
        let membership = Membership::new(&config, local, now);
        let groups = config
            .groups
            .iter()
            .map(|g| (g.name.clone(), LocalGroup::default()))
            .collect();
        let orders = config
            .groups
            .iter()
            .map(|g| (g.name.clone(), config.group_servers(g)))
            .collect();
        Brain {
            orders,
            membership,
            local: local.to_string(),
            incarnation,
            peers: BTreeMap::new(),
            offsets: BTreeMap::new(),
            advert_version: BTreeMap::new(),
            last_sent: BTreeMap::new(),
            groups,
            intents: BTreeMap::new(),
            clock: 0,
            suspended: false,
            stopping: None,
            orphans: BTreeMap::new(),
            reports: BTreeMap::new(),
            reported: BTreeMap::new(),
            doubles: BTreeMap::new(),
            down_paths: BTreeSet::new(),
            advert: Advert::default(),
            stale_beats: 0,
            last_input: None,
            listen_until: None,
            heard_since: BTreeSet::new(),
            listen_from: Duration::ZERO,
            hold_until: None,
            partition: config.partition.clone(),
            support: BTreeMap::new(),
            quorate: false,
            lease_end: None,
            unseen_since: BTreeMap::new(),
            cleared: BTreeMap::new(),
            waits_told: BTreeSet::new(),
            witness_until: None,
            targets: BTreeMap::new(),
            forced_stop: config.forced_stop.clone(),
            silent_down: BTreeSet::new(),
            fencing: BTreeMap::new(),
            np_action_at: None,
            campaign: true,
            bmc: BTreeMap::new(),
            last_arrival: BTreeMap::new(),
            held_told: BTreeSet::new(),
            config,
        }
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn suspended(&self) -> bool {
        self.suspended
    }

    /// Beats dropped because they spent longer than the timeout on the way.
    pub fn stale_beats(&self) -> u64 {
        self.stale_beats
    }

    /// The advert this server sends now.
    pub fn advert(&self) -> &Advert {
        &self.advert
    }

    /// May `server` be given groups now?
    pub fn eligible(&self, server: &str) -> bool {
        if server == self.local {
            return self.stopping.is_none() && self.membership.eligible(server);
        }
        self.membership.eligible(server)
            && self
                .peers
                .get(server)
                .is_none_or(|a| !a.stopping && !a.isolated)
    }

    /// Servers that hold `group` (or hand it over) as this server knows it.
    pub fn holders(&self, group: &str) -> Vec<String> {
        self.config
            .servers
            .iter()
            .filter(|s| self.holds(&s.name, group))
            .map(|s| s.name.clone())
            .collect()
    }

    /// Whether any up server holds `group` (or hands it over).
    fn held(&self, group: &str) -> bool {
        self.config
            .servers
            .iter()
            .any(|s| self.holds(&s.name, group))
    }

    fn order(&self, group: &str) -> &[String] {
        self.orders.get(group).map_or(&[], |o| o.as_slice())
    }

    /// The state of `group` on a peer, from its advert.
    pub fn peer_state(&self, server: &str, group: &str) -> Option<RunState> {
        self.peers
            .get(server)?
            .groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| g.state)
    }

    /// What this server knows of a group, in one line (for logs and the
    /// decision journal).
    pub fn describe(&self, group: &str) -> String {
        let local = self.groups.get(group);
        let peers: Vec<String> = self
            .peers
            .iter()
            .map(|(s, a)| {
                let state = a
                    .groups
                    .iter()
                    .find(|g| g.name == group)
                    .map(|g| g.state.as_str());
                format!(
                    "{s}: {}{}{}{}",
                    state.unwrap_or("-"),
                    if a.moving.iter().any(|m| m == group) {
                        " moving"
                    } else {
                        ""
                    },
                    if a.fenced.iter().any(|m| m == group) {
                        " fenced"
                    } else {
                        ""
                    },
                    if self.eligible(s) {
                        ""
                    } else {
                        " (not eligible)"
                    },
                )
            })
            .collect();
        format!(
            "group {group}: wanted {}, here {:?} ops {:?}{}{}, peers [{}]",
            self.intent_run(group),
            local.and_then(|g| g.state),
            local.map(|g| g.pending.clone()).unwrap_or_default(),
            if local.is_some_and(|g| g.moving) {
                " moving"
            } else {
                ""
            },
            if local.is_some_and(|g| g.fenced) {
                " fenced"
            } else {
                ""
            },
            peers.join(", ")
        )
    }

    /// What a decision is worth recording, and why it was taken: for a
    /// start, stop or move what this server knew of the group, empty for
    /// other decisions; `None` for an advert (not a decision).
    pub fn reason(&self, command: &Command) -> Option<String> {
        match command {
            Command::Start { group, .. }
            | Command::Stop { group, .. }
            | Command::Move { group, .. } => Some(self.describe(group)),
            Command::Advertise(_) => None,
            _ => Some(String::new()),
        }
    }

    /// The group is being handed over from here.
    pub fn moving(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|g| g.moving)
    }

    /// Whether the cluster wants `group` running, as this server knows it.
    pub fn wanted(&self, group: &str) -> bool {
        self.intent_run(group)
    }

    /// The first eligible server of the group's order other than `leaving`.
    pub fn destination_from(&self, group: &str, leaving: &str) -> Result<String, String> {
        if !self.orders.contains_key(group) {
            return Err(format!("unknown group {group}"));
        }
        placement::failover_destination(self.order(group), leaving, |s| self.eligible(s))
            .map(str::to_string)
            .ok_or_else(|| "no other server of the group is up".to_string())
    }

    /// The earliest instant after the last input at which [`Input::Tick`]
    /// may have something to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        let last = self.last_input.unwrap_or_default();
        let awake = self
            .last_input
            .map(|t| t + tick_at_least_every(&self.config));
        let groups = self
            .groups
            .values()
            .flat_map(|g| [g.cleanup_at, g.retry_at])
            .flatten();
        self.membership
            .next_deadline()
            .into_iter()
            .chain(awake)
            .chain(groups)
            .chain(self.reported.values().copied())
            .chain(self.reports.values().map(|r| r.deadline))
            .chain(self.listen_until)
            .chain(self.hold_until)
            .chain(self.support.values().copied())
            .chain(self.witness_until)
            .chain(self.np_action_at)
            .chain(self.targets.values().filter_map(|t| t.until))
            .chain(self.fencing.values().filter_map(|f| match f {
                Fence::Failed { retry_at, .. } => Some(*retry_at),
                Fence::Running { .. } => None,
            }))
            .chain(self.partition.as_ref().into_iter().flat_map(|p| {
                let wait = p.lease(&self.config) + p.margin(&self.config);
                self.unseen_since.values().map(move |t| *t + wait)
            }))
            .filter(|t| *t > last)
            .min()
    }

    /// Handles one input at `now` and returns what to do, in order.
    pub fn handle(&mut self, now: Duration, input: Input) -> Vec<Command> {
        let mut out = Vec::new();
        if let Some(last) = self.last_input {
            let gap = now.saturating_sub(last);
            if gap > 2 * tick_at_least_every(&self.config) {
                self.membership.paused(gap);
                self.listen(now);
            }
        }
        self.last_input = Some(now);
        match input {
            Input::Tick => {
                let events = self.membership.tick(now);
                self.member_events(now, events, &mut out);
                self.reported.retain(|_, until| *until > now);
                self.waits_told.retain(|(_, at)| *at > now);
            }
            Input::Heard {
                from,
                path,
                incarnation,
                digest,
                lost,
                sent_ms,
                arrived_ms,
                advert,
            } => self.heard(
                now,
                arrived_ms,
                from,
                path,
                incarnation,
                digest,
                lost,
                sent_ms,
                advert,
                &mut out,
            ),
            Input::Leaving {
                from,
                incarnation,
                died,
            } => {
                if self.membership.incarnation(&from) == Some(incarnation) {
                    // Its guardian released everything, or it stopped in
                    // order: nothing of it runs any more.
                    self.cleared.insert(from.clone(), incarnation);
                    self.support.remove(&from);
                }
                let mut events = self.membership.leaving(now, &from, incarnation, died);
                // Its paths go quiet because it left: the server-down alert
                // says it all.
                events.retain(|e| match e {
                    MemberEvent::PathDown { server, path } => {
                        self.down_paths.insert((server.clone(), *path));
                        false
                    }
                    _ => true,
                });
                self.member_events(now, events, &mut out);
            }
            Input::LocalLink { path, up } => {
                let events = self.membership.local_link(now, path, up);
                self.member_events(now, events, &mut out);
            }
            Input::GroupState { group, state } => self.group_state(now, &group, state),
            Input::Done { group, result } => self.done(now, &group, result, &mut out),
            Input::Moving { group, on } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.moving = on;
                    g.keep_intent |= on;
                }
            }
            Input::Accepting { group, from } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.pending.push_back(Pending::Incoming);
                }
                // The source has stopped it: its next advert may come after
                // this request, and must not count as a second copy.
                if let Some(a) = self.peers.get_mut(&from) {
                    a.groups.retain(|g| g.name != group);
                    a.moving.retain(|g| *g != group);
                }
            }
            Input::Suspend { .. } => self.suspended = true,
            Input::Resume { .. } => {
                self.suspended = false;
                for g in self.groups.values_mut() {
                    g.retry_at = None;
                }
            }
            Input::Recover { server, by } => {
                let reply = self.recover(now, &server, &by, &mut out);
                out.push(Command::Reply(reply));
            }
            Input::Stopping { handover } => {
                self.stopping = Some(handover);
            }
            Input::Digest(d) => self.membership.set_digest(d),
            Input::ConfirmDown { server, by } => {
                let reply = if self.config.server(&server).is_none() {
                    Err(format!("no server named {server}"))
                } else if server == self.local || self.hears(&server) {
                    Err(format!(
                        "server {server} is heard: it is up, nothing to confirm"
                    ))
                } else {
                    let inc = self.membership.incarnation(&server).unwrap_or(0);
                    self.cleared.insert(server.clone(), inc);
                    Self::alert(
                        &mut out,
                        Event::ServerConfirmedDown {
                            server: server.clone(),
                            by,
                        },
                    );
                    Ok(format!("{}: server {server} confirmed down", self.local))
                };
                out.push(Command::Reply(reply));
            }
            Input::Witness { holds, until } => {
                // A report of a round before the vote was given up may
                // still say it is held: it is not counted any more.
                self.witness_until = (holds && self.campaign).then_some(until);
            }
            Input::Target {
                method,
                reached,
                until,
                error,
            } => {
                let is_gate = self
                    .partition
                    .as_ref()
                    .is_some_and(|p| p.gate(method).is_some());
                if is_gate {
                    let t = self.targets.entry(method).or_default();
                    // A failed round leaves the last verdict to lapse: it
                    // was true when its probe was answered.
                    if reached {
                        t.until = Some(t.until.map_or(until, |u| u.max(until)));
                        t.error = None;
                    } else {
                        t.error = error.or_else(|| Some("not reached".into()));
                    }
                }
            }
            Input::ForcedStopDone { server, result } => {
                self.forced_stop_done(now, &server, result, &mut out)
            }
            Input::Bmc {
                server,
                reading,
                asked,
            } => self.bmc_read(now, server, reading, asked, &mut out),
        }
        self.forget_heard();
        self.quorum(now, &mut out);
        self.reconcile(now, &mut out);
        self.campaign(now, &mut out);
        self.publish(now, &mut out);
        out
    }

    /// With a witness: the vote belongs with the groups. A server that
    /// holds none, while a peer heard both ways (a member of its quorum)
    /// holds some, gives the vote up; it stops counting it at once, before
    /// its driver lets it go, so that two servers never count it together.
    /// A server stopping its cluster service gives it up too once nothing
    /// of its groups is active here (those handed over included): its
    /// driver lets it go before the daemon leaves, so that the server that
    /// takes the groups over need not wait for the lease to run out.
    fn campaign(&mut self, now: Duration, out: &mut Vec<Command>) {
        if self.partition.as_ref().and_then(|p| p.witness()).is_none() {
            return;
        }
        let active = self
            .groups
            .values()
            .any(|g| g.state.is_some_and(|s| s.may_be_active()) || !g.pending.is_empty());
        let holding = active || self.groups.values().any(|g| g.moving);
        let members = self.members(now);
        let peer_active = members.keys().any(|m| {
            self.peers
                .get(m)
                .is_some_and(|a| self.hears(m) && a.groups.iter().any(|g| g.state.runs_or_starts()))
        });
        let leaving = self.stopping.is_some() && !active;
        let want = !leaving && (holding || !peer_active);
        if want != self.campaign {
            self.campaign = want;
            if !want {
                self.witness_until = None;
            }
            out.push(Command::WitnessCampaign(want));
        }
    }

    /// Starts nothing for a timeout, or until every up peer has been heard.
    fn listen(&mut self, now: Duration) {
        self.listen_from = now;
        self.listen_until =
            Some(now + Duration::from_millis(self.config.heartbeat.timeout_ms.into()));
        self.heard_since.clear();
    }

    fn listening(&mut self, now: Duration) -> bool {
        if self.hold_until.is_some_and(|t| now < t) {
            return true;
        }
        self.hold_until = None;
        let Some(until) = self.listen_until else {
            return false;
        };
        // Every other server, up or not in the old view: one that was down
        // may well be back, and about to decide the same thing.
        let all_heard = self
            .config
            .servers
            .iter()
            .all(|s| s.name == self.local || self.heard_since.contains(&s.name));
        if now >= until || all_heard {
            self.listen_until = None;
            return false;
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn heard(
        &mut self,
        now: Duration,
        arrived_ms: u64,
        from: String,
        path: usize,
        incarnation: u64,
        digest: String,
        lost: u64,
        sent_ms: u64,
        advert: Advert,
        out: &mut Vec<Command>,
    ) {
        let arrived = if arrived_ms == 0 {
            now
        } else {
            Duration::from_millis(arrived_ms)
        };
        if self.stale(arrived, &from, incarnation, sent_ms) {
            self.stale_beats += 1;
            return;
        }
        let last = self.last_arrival.entry(from.clone()).or_default();
        *last = (*last).max(arrived);
        let events = self
            .membership
            .heard(now, &from, path, incarnation, &digest, lost);
        if self.membership.incarnation(&from) == Some(incarnation) {
            let last = self
                .last_sent
                .entry(from.clone())
                .or_insert((incarnation, 0));
            if last.0 == incarnation {
                last.1 = last.1.max(sent_ms);
            } else {
                *last = (incarnation, sent_ms);
            }
        }
        // A restart (new incarnation) is a server-down: it must see the
        // groups the old daemon held, before the new advert replaces them.
        let (downs, rest): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| matches!(e, MemberEvent::ServerDown { .. }));
        self.member_events(now, downs, out);
        // Only a newer advert replaces the one kept; the same version of a
        // sender that counts them is the same advert, not worth comparing.
        let (newer, same) = match self.advert_version.get(&from) {
            Some(&(inc, version)) if inc == incarnation => (
                advert.version >= version,
                version != 0 && advert.version == version,
            ),
            _ => (true, false),
        };
        if self.listen_until.is_some() && self.sent_after(&from, sent_ms, self.listen_from) {
            self.heard_since.insert(from.clone());
        }
        let accept = newer
            && self.membership.state(&from) != ServerState::Offline
            && self.membership.incarnation(&from) == Some(incarnation);
        if accept {
            self.take_support(&from, sent_ms, arrived, &advert);
        }
        if accept && !(same && self.peers.contains_key(&from)) {
            self.advert_version
                .insert(from.clone(), (incarnation, advert.version));
            if self.peers.get(&from) != Some(&advert) {
                self.merge(now, &from, &advert);
                self.peers.insert(from, advert);
            }
        }
        self.member_events(now, rest, out);
    }

    /// A beat says whether its sender hears this server: while it does,
    /// the sender counts towards this server's quorum until the lease after
    /// the beat was sent (on this server's clock, as far as the fastest beat
    /// tells the clocks apart: never earlier than it really was sent).
    fn take_support(&mut self, from: &str, sent_ms: u64, arrived: Duration, advert: &Advert) {
        let Some(p) = &self.partition else {
            return;
        };
        if !advert.sees.contains(&self.local) {
            self.support.remove(from);
            return;
        }
        let sent = match self.offsets.get(from) {
            Some(&(_, min)) if sent_ms != 0 => {
                Duration::from_millis((sent_ms as i128 + min).max(0) as u64).min(arrived)
            }
            _ => arrived,
        };
        let until = sent + p.lease(&self.config);
        let e = self.support.entry(from.to_string()).or_default();
        *e = (*e).max(until);
    }

    /// Whether this server hears `server` (its beats arrive).
    pub fn hears(&self, server: &str) -> bool {
        matches!(
            self.membership.state(server),
            ServerState::Online | ServerState::Isolated
        )
    }

    /// Whether this server may keep and start groups: it is quorate, or
    /// the cluster has no partition resolution.
    pub fn is_quorate(&self) -> bool {
        self.partition.is_none() || self.quorate
    }

    /// Until when this server is surely quorate without hearing more
    /// (`None`: not quorate; `Duration::MAX`: quorate alone).
    pub fn lease_end(&self) -> Option<Duration> {
        if self.partition.is_none() {
            return Some(Duration::MAX);
        }
        self.lease_end.filter(|_| self.quorate)
    }

    /// The instant by which this server must have released every group if
    /// it heard nothing more: its watchdog (the guardian) releases at that
    /// instant what is still held. `None`: nothing to watch (no partition
    /// resolution, nothing held, or quorate alone).
    pub fn fence_deadline(&self) -> Option<Duration> {
        let p = self.partition.as_ref()?;
        let holding = self.groups.values().any(|g| {
            g.state.is_some_and(|s| s.may_be_active())
                || matches!(g.pending.back(), Some(Pending::Start | Pending::Incoming))
        });
        let end = self.lease_end?;
        (holding && end != Duration::MAX).then(|| end + p.margin(&self.config) / 2)
    }

    /// Until when the "reached" verdict of gate `method` counts (`None`: no
    /// such verdict yet).
    pub fn target_until(&self, method: usize) -> Option<Duration> {
        self.targets.get(&method).and_then(|t| t.until)
    }

    /// The gates' verdicts fresh at `now`: gate -> until.
    fn fresh_targets(&self, now: Duration) -> BTreeMap<usize, Duration> {
        self.targets
            .iter()
            .filter_map(|(i, t)| t.until.filter(|u| *u > now).map(|u| (*i, u)))
            .collect()
    }

    /// Reports each gate whose verdict lapsed (nm 37) or came back after
    /// a lapse (nm 36).
    fn gate_alerts(&mut self, now: Duration, out: &mut Vec<Command>) {
        let Some(p) = &self.partition else {
            return;
        };
        for (i, gate) in p.gates() {
            let t = self.targets.entry(i).or_default();
            let fresh = t.until.is_some_and(|u| u > now);
            if t.fresh && !fresh {
                t.lapse_told = true;
                out.push(Command::Alert {
                    event: Event::TargetLost {
                        target: gate.describe(),
                        error: t.error.clone().unwrap_or_else(|| "no answer".into()),
                    },
                    mail: true,
                });
            } else if fresh && t.lapse_told {
                t.lapse_told = false;
                Self::alert(
                    out,
                    Event::TargetReached {
                        target: gate.describe(),
                    },
                );
            }
            t.fresh = fresh;
        }
    }

    /// The peers counting towards this server's quorum at `now`, and the
    /// witness's vote ([`partition::WITNESS`]) while this server holds it.
    fn members(&self, now: Duration) -> BTreeMap<String, Duration> {
        let mut m: BTreeMap<String, Duration> = self
            .support
            .iter()
            .filter(|(s, until)| **until > now && self.hears(s))
            .map(|(s, until)| (s.clone(), *until))
            .collect();
        if let Some(until) = self.witness_until.filter(|u| *u > now) {
            m.insert(partition::WITNESS.to_string(), until);
        }
        m
    }

    /// Evaluates the quorum at `now`: a server that is not quorate releases
    /// what it holds; a server not heard is cleared for takeover once every
    /// member of this server's quorum has stopped hearing it, plus lease
    /// and margin.
    fn quorum(&mut self, now: Duration, out: &mut Vec<Command>) {
        let Some(p) = &self.partition else {
            return;
        };
        let members = self.members(now);
        let gates = self.fresh_targets(now);
        let lease = partition::lease_until(&self.config, p, &self.local, &members, &gates, now);
        let action = p.action;
        let was = self.quorate;
        self.quorate = lease.is_some();
        if lease.is_some() {
            self.lease_end = lease;
        }
        if self.quorate && !was {
            let mut names = vec![self.local.clone()];
            names.extend(members.keys().cloned());
            names.extend(p.gates().map(|(_, g)| g.describe()));
            Self::alert(out, Event::QuorumHeld { members: names });
        } else if !self.quorate && was && self.stopping.is_none() {
            // (A server stopping its cluster service loses its quorum as
            // the others leave too: no partition, nothing to do.)
            let heard = 1 + members.len();
            let voters = self.config.servers.len();
            let votes_hold = !p.counts_votes()
                || partition::votes_until(&self.config, p, &self.local, &members, now).is_some();
            let lapsed: Vec<String> = p
                .gates()
                .filter(|(i, _)| !gates.contains_key(i))
                .map(|(_, g)| g.describe())
                .collect();
            Self::alert(
                out,
                Event::QuorumLost {
                    reason: if votes_hold && !lapsed.is_empty() {
                        format!(
                            "no answer within the lease from its targets ({}), and it does not hear every other server",
                            lapsed.join("; ")
                        )
                    } else if p.witness().is_some() {
                        format!(
                            "it has {heard} of the {} votes (servers heard both ways, the witness)",
                            voters + 1
                        )
                    } else {
                        format!("it hears {heard} of the {voters} servers both ways")
                    },
                },
            );
            if action != NpAction::None {
                match p.handover(&self.config) {
                    Some(wait) => self.np_action_at = Some(now + wait),
                    None => out.push(Command::NpAction(action)),
                }
            }
        }
        if self.quorate {
            self.np_action_at = None;
        } else if self.np_action_at.is_some_and(|t| t <= now) {
            self.np_action_at = None;
            out.push(Command::NpAction(action));
        }
        self.gate_alerts(now, out);
        if !self.quorate {
            self.release(out);
        }
        for i in 0..self.config.servers.len() {
            let s = &self.config.servers[i].name;
            if *s == self.local {
                continue;
            }
            if self.hears(s) {
                continue;
            }
            // The witness's vote is this server's alone: it agrees.
            let agree = self.quorate
                && members.keys().all(|m| {
                    m == partition::WITNESS
                        || self
                            .peers
                            .get(m)
                            .is_some_and(|a| !a.sees.iter().any(|x| x == s))
                });
            if agree {
                self.unseen_since.entry(s.clone()).or_insert(now);
            } else {
                self.unseen_since.remove(s);
            }
        }
    }

    /// Whether `server` is known to hold nothing: it left, died under its
    /// guardian, was stopped by force or confirmed down, and no peer whose
    /// advert this server holds hears a newer incarnation of it (a restart
    /// this server could not hear, which may have started groups since).
    fn is_cleared(&self, server: &str) -> bool {
        let Some(&gone) = self.cleared.get(server) else {
            return false;
        };
        !self.peers.values().any(|a| {
            a.sees
                .iter()
                .zip(&a.sees_incarnations)
                .any(|(s, inc)| s == server && *inc > gone)
        })
    }

    /// A server heard again holds what its adverts say: whatever was known
    /// about its silence is over.
    fn forget_heard(&mut self) {
        for i in 0..self.config.servers.len() {
            let s = &self.config.servers[i].name;
            if *s != self.local && self.hears(s) {
                self.unseen_since.remove(s);
                self.cleared.remove(s);
                self.silent_down.remove(s);
                self.fencing.remove(s);
                self.held_told.remove(s);
            }
        }
    }

    /// Not quorate: every group held here stops (what the cluster wants of
    /// it stays: a quorate side takes it).
    fn release(&mut self, out: &mut Vec<Command>) {
        self.stop_active(
            "this server is not quorate (network partition): it releases its groups",
            false,
            out,
        );
    }

    /// Stops every group active (or starting) here that is not stopping
    /// already, keeping what the cluster wants of it; `fenced`: advertised
    /// as such until the links return.
    fn stop_active(&mut self, by: &str, fenced: bool, out: &mut Vec<Command>) {
        for (name, g) in &mut self.groups {
            let active = g.state.is_some_and(|s| s.may_be_active())
                || matches!(g.pending.back(), Some(Pending::Start | Pending::Incoming));
            if active && g.pending.back() != Some(&Pending::Stop) {
                g.pending.push_back(Pending::Stop);
                g.keep_intent = true;
                g.fenced |= fenced;
                out.push(Command::Stop {
                    group: name.clone(),
                    by: by.to_string(),
                });
            }
        }
    }

    /// Whether this server may start `group` as far as partitions go: it is
    /// quorate, and every other server of the group's order is heard, known
    /// to hold nothing (left, died under its guardian, stopped by force,
    /// confirmed down), or silent long enough that its lease surely ended.
    fn may_take(&self, group: &str, now: Duration) -> Result<(), Block> {
        if self.partition.is_some() && !self.quorate {
            return Err(Block::NotQuorate);
        }
        // Heard but not hearing us: that server counts us silent and, with
        // its own quorum, may take over what we would start (seed 859460:
        // two majorities meeting in a server whose word that we were
        // silent was a beat old).
        if self.partition.is_some() {
            for s in self.order(group) {
                if *s != self.local
                    && self.hears(s)
                    && self.support.get(s).is_none_or(|until| *until <= now)
                {
                    return Err(Block::NotHeardBy(s.clone()));
                }
            }
        }
        for s in self.order(group) {
            if *s == self.local || self.hears(s) || self.is_cleared(s) {
                continue;
            }
            // Without a forced stop or partition resolution to decide,
            // a silent server with power may still run what it held.
            if self.forced_stop.is_none() && self.partition.is_none() && self.powered_on(s) {
                return Err(Block::PoweredOn(s.clone()));
            }
            if self.forced_stop.is_some() && self.silent_down.contains(s) {
                let failed = matches!(self.fencing.get(s), Some(Fence::Failed { .. }));
                if !(failed && self.partition.is_some()) {
                    return Err(Block::Fence(s.clone()));
                }
            }
            if let Some(p) = &self.partition {
                let wait = p.lease(&self.config) + p.margin(&self.config);
                match self.unseen_since.get(s) {
                    Some(t) if *t + wait <= now => {}
                    Some(t) => return Err(Block::Wait(s.clone(), *t + wait)),
                    None => return Err(Block::Agree),
                }
            }
        }
        Ok(())
    }

    /// Why this server starts nothing while it is not quorate.
    pub fn not_quorate(&self) -> String {
        format!(
            "server {} is not quorate (network partition): it starts no group",
            self.local
        )
    }

    /// Whether this server may start `group` now (a move or an operator's
    /// start towards it): it is quorate and no silent server may hold it.
    pub fn may_start_here(&self, group: &str, now: Duration) -> Result<(), String> {
        match self.may_take(group, now) {
            Ok(()) => Ok(()),
            Err(Block::NotQuorate) => Err(self.not_quorate()),
            Err(Block::Agree) => Err(format!(
                "a silent server of group {group} may still hold it (waiting for the other servers to agree it is down)"
            )),
            Err(Block::Wait(s, at)) => Err(format!(
                "server {s} is silent and may still hold group {group} for {} ms more",
                at.saturating_sub(now).as_millis()
            )),
            Err(Block::Fence(s)) => Err(format!(
                "server {s} is silent and may still hold group {group}: it is to be stopped by force first"
            )),
            Err(Block::NotHeardBy(s)) => Err(format!(
                "server {s} does not hear this server and may be taking group {group} over"
            )),
            Err(Block::PoweredOn(s)) => Err(format!(
                "server {s} is silent but its BMC says the power is on: it may still hold group {group}"
            )),
        }
    }

    /// A takeover waits for a forced stop of `server`: asks for it when it
    /// is not running, and may run (with partition resolution, once the
    /// quorum agrees the server is silent: it is never stopped while
    /// others still hear it).
    fn fence_for(&mut self, server: &str, now: Duration, out: &mut Vec<Command>) {
        let Some(f) = &self.forced_stop else {
            return;
        };
        if self.partition.is_some() && !self.unseen_since.contains_key(server) {
            return;
        }
        let attempts = match self.fencing.get(server) {
            None => 0,
            Some(Fence::Failed { attempts, retry_at }) if *retry_at <= now => *attempts,
            Some(_) => return,
        };
        let method = f.method.describe();
        self.fencing
            .insert(server.to_string(), Fence::Running { attempts });
        Self::alert(
            out,
            Event::ForcedStopStarted {
                server: server.to_string(),
                method,
            },
        );
        out.push(Command::ForcedStop {
            server: server.to_string(),
        });
    }

    /// The latest reading of `server`'s BMC says the power is on.
    fn powered_on(&self, server: &str) -> bool {
        matches!(self.bmc.get(server), Some((BmcReading::On, _)))
    }

    /// nm 38, once per silence, and only once the BMC said "on" after the
    /// silence began (a reading from before may be followed by "off").
    fn tell_held(&mut self, server: &str, out: &mut Vec<Command>) {
        let since_silence = match (self.bmc.get(server), self.last_arrival.get(server)) {
            (Some((_, asked)), Some(last)) => asked > last,
            (Some(_), None) => true,
            _ => false,
        };
        if since_silence && self.held_told.insert(server.to_string()) {
            Self::alert(
                out,
                Event::TakeoverHeldPoweredOn {
                    server: server.to_string(),
                },
            );
        }
    }

    /// A poll of a peer's BMC ended. The path's state changes are alerts
    /// (nm 3 / nm 4, as a LAN path's). "Off" ends the peer's current
    /// incarnation at once: it is down without waiting for the LAN
    /// timeout, and holds nothing (no forced stop, no lease wait); unless
    /// a beat arrived after the question was sent, which only a host with
    /// power sends (the next poll tells again).
    fn bmc_read(
        &mut self,
        now: Duration,
        server: String,
        reading: BmcReading,
        asked: Duration,
        out: &mut Vec<Command>,
    ) {
        if server == self.local {
            return;
        }
        let Some(address) = self
            .config
            .server(&server)
            .and_then(|s| s.bmc.as_ref())
            .map(|b| b.endpoint())
        else {
            return;
        };
        if self.bmc.get(&server).is_some_and(|(_, at)| asked < *at) {
            // An older poll answered late: the newer reading stands.
            return;
        }
        let before = self.bmc.get(&server).map(|(r, _)| r.clone());
        match (&before, &reading) {
            (Some(BmcReading::Unreachable(_)), BmcReading::On | BmcReading::Off) => Self::alert(
                out,
                Event::BmcPathUp {
                    server: server.clone(),
                    address,
                },
            ),
            (None | Some(BmcReading::On | BmcReading::Off), BmcReading::Unreachable(error)) => {
                Self::alert(
                    out,
                    Event::BmcPathDown {
                        server: server.clone(),
                        address,
                        error: error.clone(),
                    },
                )
            }
            _ => {}
        }
        self.bmc.insert(server.clone(), (reading.clone(), asked));
        if reading != BmcReading::Off || self.last_arrival.get(&server).is_some_and(|t| *t > asked)
        {
            return;
        }
        let inc = self.membership.incarnation(&server).unwrap_or(0);
        if self.hears(&server) {
            self.cleared.insert(server.clone(), inc);
            self.support.remove(&server);
            let mut events = self.membership.powered_off(now, &server);
            // Its paths go quiet because it has no power: the server-down
            // alert says it all.
            events.retain(|e| match e {
                MemberEvent::PathDown { server, path } => {
                    self.down_paths.insert((server.clone(), *path));
                    false
                }
                _ => true,
            });
            self.member_events(now, events, out);
        } else if !self.is_cleared(&server) {
            // Silent already: now known to hold nothing. A forced stop
            // under way still reports its own end.
            self.cleared.insert(server.clone(), inc);
            self.silent_down.remove(&server);
            if matches!(self.fencing.get(&server), Some(Fence::Failed { .. })) {
                self.fencing.remove(&server);
            }
        }
    }

    fn forced_stop_done(
        &mut self,
        now: Duration,
        server: &str,
        result: Result<(), String>,
        out: &mut Vec<Command>,
    ) {
        let Some(Fence::Running { attempts }) = self.fencing.get(server).copied() else {
            return;
        };
        match result {
            Ok(()) => {
                self.fencing.remove(server);
                self.silent_down.remove(server);
                let inc = self.membership.incarnation(server).unwrap_or(0);
                self.cleared.insert(server.to_string(), inc);
                Self::alert(
                    out,
                    Event::ForcedStopDone {
                        server: server.to_string(),
                    },
                );
            }
            Err(_) if self.is_cleared(server) => {
                // Its BMC said it is off meanwhile: nothing failed.
                self.fencing.remove(server);
            }
            Err(error) => {
                let attempts = attempts + 1;
                let delay = self.retry_delay(attempts);
                self.fencing.insert(
                    server.to_string(),
                    Fence::Failed {
                        attempts,
                        retry_at: now + delay,
                    },
                );
                let then = if self.partition.is_some() {
                    "its groups are taken over once its lease has surely run out".to_string()
                } else {
                    format!(
                        "its groups are not taken over; tried again in {} s (or `understudy server confirm-down {server}` once checked that it is off)",
                        delay.as_secs()
                    )
                };
                out.push(Command::Alert {
                    event: Event::ForcedStopFailed {
                        server: server.to_string(),
                        error,
                        then,
                    },
                    mail: true,
                });
            }
        }
    }

    /// Whether a beat was sent at or after `t` (this server's clock), as
    /// far as the fastest beat of its sender tells the clocks apart. A
    /// beat that queued while this server did not run is not.
    fn sent_after(&self, from: &str, sent_ms: u64, t: Duration) -> bool {
        match self.offsets.get(from) {
            Some(&(_, min)) if sent_ms != 0 => sent_ms as i128 + min >= t.as_millis() as i128,
            _ => true,
        }
    }

    /// A beat that waited in a queue longer than the timeout (a switch
    /// port that had no carrier, a frozen sender's socket) tells of the
    /// past: its advert would undo what happened since.
    fn stale(&mut self, arrived: Duration, from: &str, incarnation: u64, sent_ms: u64) -> bool {
        if sent_ms == 0 {
            return false;
        }
        let offset = arrived.as_millis() as i128 - sent_ms as i128;
        let timeout = i128::from(self.config.heartbeat.timeout_ms);
        match self.offsets.get_mut(from) {
            Some((inc, min)) if *inc == incarnation => {
                if offset < *min {
                    *min = offset;
                }
                offset - *min > timeout
            }
            Some((inc, _)) if *inc > incarnation => true,
            _ => {
                self.offsets.insert(from.to_string(), (incarnation, offset));
                false
            }
        }
    }

    /// Takes in what a peer knows of the intents and of the reports.
    fn merge(&mut self, now: Duration, from: &str, advert: &Advert) {
        for i in &advert.intents {
            let theirs = Intent {
                run: i.run,
                stamp: i.stamp,
                by: i.by.clone(),
            };
            self.clock = self.clock.max(i.stamp);
            if !self.groups.contains_key(&i.group) {
                continue;
            }
            match self.intents.get(&i.group) {
                Some(ours) if !theirs.beats(ours) => {}
                _ => {
                    self.intents.insert(i.group.clone(), theirs);
                }
            }
        }
        let timeout = u64::from(self.config.heartbeat.timeout_ms);
        let confirm = now + report_confirm(&self.config);
        for ((server, inc), p) in self.reports.iter_mut() {
            if p.acked_by.is_none()
                && advert
                    .reported
                    .iter()
                    .any(|r| r.covers(server, *inc, p.last_ms, timeout))
            {
                p.acked_by = Some(from.to_string());
                p.deadline = confirm;
            }
        }
    }

    fn set_intent(&mut self, group: &str, run: bool) {
        if self.intents.get(group).is_some_and(|i| i.run == run) {
            return;
        }
        self.clock += 1;
        self.intents.insert(
            group.to_string(),
            Intent {
                run,
                stamp: self.clock,
                by: self.local.clone(),
            },
        );
    }

    fn default_run(&self, group: &str) -> bool {
        self.config
            .group(group)
            .is_some_and(|g| g.startup == StartupAttribute::Auto)
    }

    fn intent_run(&self, group: &str) -> bool {
        self.intents
            .get(group)
            .map_or_else(|| self.default_run(group), |i| i.run)
    }

    fn holds(&self, server: &str, group: &str) -> bool {
        if server == self.local {
            return self.groups.get(group).is_some_and(|g| {
                g.moving
                    || g.fenced
                    || matches!(g.pending.back(), Some(Pending::Start | Pending::Incoming))
                    || g.state.is_some_and(|s| s.may_be_active())
            });
        }
        self.peers.get(server).is_some_and(|a| {
            a.moving.iter().any(|m| m == group)
                || a.fenced.iter().any(|m| m == group)
                || a.groups
                    .iter()
                    .any(|g| g.name == group && g.state.may_be_active())
        })
    }

    fn group_state(&mut self, now: Duration, group: &str, state: RunState) {
        let stopping = self.stopping;
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let before = g.state;
        g.state = Some(state);
        if before == Some(state) {
            return;
        }
        if !state.may_be_active() {
            g.active_since = None;
        } else if g.active_since.is_none() {
            g.active_since = Some(now);
        }
        let keep = g.keep_intent || g.moving || stopping == Some(true);
        match state {
            RunState::OnlinePending | RunState::Online => {
                if !g.pending.contains(&Pending::Stop) {
                    g.keep_intent = false;
                }
                if g.pending.front() != Some(&Pending::Start) {
                    // Started by somebody else (an operator, a move here);
                    // the brain's own start reports its end at `Done`.
                    g.automatic = false;
                    self.orphans.remove(group);
                }
                if state == RunState::Online {
                    g.attempts = 0;
                    g.retry_at = None;
                }
                self.set_intent(group, true);
            }
            RunState::Offline => {
                g.cleanup_at = None;
                g.cleanup = false;
                if !keep {
                    self.set_intent(group, false);
                }
            }
            _ => {}
        }
    }

    fn done(
        &mut self,
        now: Duration,
        group: &str,
        result: Result<(), String>,
        out: &mut Vec<Command>,
    ) {
        let interval = Duration::from_millis(self.config.heartbeat.interval_ms.into());
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let was = g.pending.pop_front();
        if was == Some(Pending::Start) {
            if let Some(from) = self.orphans.get(group).cloned() {
                let _ = from;
                out.push(Command::Alert {
                    event: match &result {
                        Ok(()) => Event::FailoverCompleted {
                            group: group.to_string(),
                        },
                        Err(error) => Event::FailoverFailed {
                            group: group.to_string(),
                            error: error.clone(),
                        },
                    },
                    mail: true,
                });
            }
            if result.is_err() {
                // Give a ladder's own failover the time to begin before the
                // group is cleaned up here; the next try waits longer each
                // time.
                g.cleanup_at = Some(now + interval);
                g.attempts += 1;
                let attempts = g.attempts;
                let delay = self.retry_delay(attempts);
                self.groups.get_mut(group).expect("known group").retry_at = Some(now + delay);
            } else {
                self.orphans.remove(group);
            }
        }
    }

    fn retry_delay(&self, attempts: u32) -> Duration {
        let base = Duration::from_millis(self.config.heartbeat.timeout_ms.into()).max(RETRY_FLOOR);
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        (base * factor).min(retry_cap(&self.config))
    }

    fn member_events(&mut self, now: Duration, events: Vec<MemberEvent>, out: &mut Vec<Command>) {
        for ev in events {
            self.member_event(now, ev, out);
        }
    }

    fn path_address(&self, server: &str, path: usize) -> String {
        self.config
            .server(server)
            .and_then(|s| s.interconnects.get(path).cloned())
            .unwrap_or_else(|| "?".into())
    }

    fn alert(out: &mut Vec<Command>, event: Event) {
        out.push(Command::Alert { event, mail: true });
    }

    fn member_event(&mut self, now: Duration, ev: MemberEvent, out: &mut Vec<Command>) {
        match ev {
            MemberEvent::PathUp { server, path } => {
                // Only a path that had been down is news; the membership
                // says Up for the first beat as well.
                if self.down_paths.remove(&(server.clone(), path)) {
                    Self::alert(
                        out,
                        Event::PathUp {
                            address: self.path_address(&server, path),
                            server,
                            path,
                        },
                    );
                }
            }
            MemberEvent::PathDown { server, path } => {
                self.down_paths.insert((server.clone(), path));
                Self::alert(
                    out,
                    Event::PathDown {
                        address: self.path_address(&server, path),
                        server,
                        path,
                    },
                )
            }
            MemberEvent::PathLoss { server, path, lost } => Self::alert(
                out,
                Event::PathLoss {
                    address: self.path_address(&server, path),
                    server,
                    path,
                    lost,
                },
            ),
            MemberEvent::ServerUp { server, returned } => {
                Self::alert(
                    out,
                    Event::ServerJoined {
                        server: server.clone(),
                        returned,
                    },
                );
                // Whatever refused our tries may be gone with its restart.
                for g in self.groups.values_mut() {
                    g.retry_at = None;
                }
            }
            MemberEvent::ServerDown { server, cause } => self.server_down(now, &server, cause, out),
            MemberEvent::ServerIsolated { server } => {
                Self::alert(out, Event::ServerIsolated { server })
            }
            MemberEvent::ServerRecovered { .. } => {}
            MemberEvent::ConfigMismatch { server, digest } => {
                Self::alert(out, Event::ConfigMismatch { server, digest })
            }
            MemberEvent::ConfigMatch { server } => Self::alert(out, Event::ConfigMatch { server }),
            MemberEvent::LocalIsolated => {
                Self::alert(out, Event::LocalLinksDown);
                self.fence(out);
            }
            MemberEvent::LocalRejoined => {
                Self::alert(out, Event::LocalLinksBack);
                // What it knows of the others is as old as the cut: it
                // listens before it starts anything.
                self.listen(now);
                // From now on the fenced groups go to whoever comes first,
                // as any other (the advert says both things at once).
                for g in self.groups.values_mut() {
                    g.fenced = false;
                }
            }
            MemberEvent::Formed { missing } => {
                if self.config.servers.len() > 1 {
                    self.hold_until = Some(
                        now + 2 * Duration::from_millis(self.config.heartbeat.interval_ms.into()),
                    );
                }
                if self.config.servers.len() < 2 {
                    // One server: nothing to wait for, nothing to report.
                } else if missing.is_empty() {
                    Self::alert(out, Event::AllServersStarted);
                } else {
                    Self::alert(out, Event::StartupWaitOver { missing });
                }
            }
        }
    }

    /// Every local interconnect is down: nobody can reach this server's
    /// groups and the others will take them over, so they stop here first.
    /// What the cluster wants of them does not change.
    fn fence(&mut self, out: &mut Vec<Command>) {
        self.stop_active("every interconnect link of this server is down", true, out);
    }

    fn server_down(
        &mut self,
        now: Duration,
        server: &str,
        cause: DownCause,
        out: &mut Vec<Command>,
    ) {
        // Gone silent: it may still run what it held (cut off, frozen, its
        // whole stack dead). Left, died under its guardian, restarted: not.
        if matches!(cause, DownCause::Silent) {
            self.silent_down.insert(server.to_string());
        } else {
            self.silent_down.remove(server);
        }
        let held: Vec<String> = self
            .config
            .groups
            .iter()
            .map(|g| g.name.clone())
            .filter(|g| self.holds(server, g))
            .collect();
        self.peers.remove(server);
        for g in &held {
            if self.holders(g).is_empty() {
                self.orphans.insert(g.clone(), server.to_string());
            }
        }
        let event = match cause {
            DownCause::Left => Event::ServerLeft {
                server: server.to_string(),
            },
            other => Event::ServerDown {
                server: server.to_string(),
                cause: match other {
                    DownCause::Silent => "every heartbeat path is silent".into(),
                    DownCause::Died => {
                        "its daemon died; its guardian released its resources".into()
                    }
                    DownCause::Restarted => "its daemon restarted".into(),
                    DownCause::PoweredOff => {
                        "its BMC reports the power off; it holds nothing".into()
                    }
                    DownCause::Left => unreachable!(),
                },
            },
        };
        let incarnation = self.membership.incarnation(server).unwrap_or(0);
        let last_ms = self
            .last_sent
            .get(server)
            .filter(|l| l.0 == incarnation)
            .map_or(0, |l| l.1);
        let timeout = u64::from(self.config.heartbeat.timeout_ms);
        let acked_by = self
            .peers
            .iter()
            .find(|(_, a)| {
                a.reported
                    .iter()
                    .any(|r| r.covers(server, incarnation, last_ms, timeout))
            })
            .map(|(s, _)| s.clone());
        // A report another server has made already (it noticed first) is
        // confirmed as any other.
        let deadline = if acked_by.is_some() {
            now + report_confirm(&self.config)
        } else {
            now + Duration::from_millis(self.config.heartbeat.timeout_ms.into())
                + 3 * Duration::from_millis(self.config.heartbeat.interval_ms.into())
        };
        self.reports.insert(
            (server.to_string(), incarnation),
            PendingReport {
                last_ms,
                acked_by,
                event,
                // A server that left in order or restarted is not down in
                // the lamp's sense.
                lamp: matches!(
                    cause,
                    DownCause::Silent | DownCause::Died | DownCause::PoweredOff
                ),
                logged: false,
                deadline,
            },
        );
        if self.suspended && !held.is_empty() {
            Self::alert(
                out,
                Event::FailoverSkippedSuspended {
                    server: server.to_string(),
                },
            );
            return;
        }
        // Groups nobody can take: reported once, by the reporter.
        if self.reporter_for(server) == Some(self.local.as_str()) {
            for g in &held {
                if !self.intent_run(g) || !self.holders(g).is_empty() {
                    continue;
                }
                if self.destination_from(g, server).is_err() {
                    Self::alert(
                        out,
                        Event::NoDestination {
                            group: g.clone(),
                            reason: format!(
                                "server {server} is down and no other server of the group is up"
                            ),
                        },
                    );
                }
            }
        }
    }

    /// The server that reports the down of `down` in this server's part of
    /// the cluster: the first eligible one in configuration order, other
    /// than `down`.
    fn reporter_for(&self, down: &str) -> Option<&str> {
        self.config
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .find(|s| *s != down && self.eligible(s))
    }

    /// Pending reports: this server reports them when it is the reporter
    /// (the first eligible server other than the one reported), and logs
    /// them (without mail) as soon as it learns of them otherwise.
    fn settle_reports(&mut self, now: Duration, out: &mut Vec<Command>) {
        if self.reports.is_empty() {
            return;
        }
        let keys: Vec<(String, u64)> = self.reports.keys().cloned().collect();
        for key in keys {
            let me = self.reporter_for(&key.0) == Some(self.local.as_str());
            let Some(r) = self.reports.get_mut(&key) else {
                continue;
            };
            let acker_up = r
                .acked_by
                .as_ref()
                .is_some_and(|x| self.membership.state(x) == ServerState::Online);
            if acker_up {
                // Reported by another server: logged here, retired once
                // that server has stayed up long enough.
                if now >= r.deadline {
                    self.reports.remove(&key);
                } else if !r.logged {
                    r.logged = true;
                    out.push(Command::Alert {
                        event: r.event.clone(),
                        mail: false,
                    });
                }
                continue;
            }
            let late = now >= r.deadline;
            if me || late {
                let r = self.reports.remove(&key).expect("present");
                if r.logged {
                    out.push(Command::MailOnly(r.event));
                } else {
                    out.push(Command::Alert {
                        event: r.event,
                        mail: true,
                    });
                }
                if r.lamp {
                    out.push(Command::Lamp {
                        server: key.0.clone(),
                        state: Lamp::RedBlinking,
                    });
                }
                let ack = ReportAdvert {
                    server: key.0.clone(),
                    incarnation: key.1,
                    last_ms: r.last_ms,
                };
                self.reported.insert(ack, now + REPORT_KEPT);
            } else if let Some(r) = self.reports.get_mut(&key) {
                if !r.logged {
                    r.logged = true;
                    out.push(Command::Alert {
                        event: r.event.clone(),
                        mail: false,
                    });
                }
            }
        }
    }

    fn recover(
        &mut self,
        now: Duration,
        server: &str,
        by: &str,
        out: &mut Vec<Command>,
    ) -> Result<String, String> {
        let names: Vec<String> = if server == self.local {
            self.config
                .server_names()
                .into_iter()
                .filter(|s| self.membership.state(s) == ServerState::Isolated)
                .collect()
        } else {
            vec![server.to_string()]
        };
        let mut done = Vec::new();
        for name in &names {
            match self.membership.recover(now, name) {
                Ok(events) => {
                    done.push(name.clone());
                    Self::alert(
                        out,
                        Event::ServerRecovered {
                            server: name.clone(),
                            by: by.to_string(),
                        },
                    );
                    self.member_events(now, events, out);
                }
                Err(message) if server != self.local => {
                    return Err(format!("{}: {message}", self.local));
                }
                Err(_) => {}
            }
        }
        Ok(if done.is_empty() {
            format!("{}: nothing to recover", self.local)
        } else {
            format!("{}: recovered {}", self.local, done.join(", "))
        })
    }

    /// The level-triggered rule, for what concerns this server.
    fn reconcile(&mut self, now: Duration, out: &mut Vec<Command>) {
        self.settle_reports(now, out);
        if !self.membership.formed() || self.stopping.is_some() {
            return;
        }
        // A failed automatic start is cleaned up, so that nothing of it
        // stays here (a half-started group would be "active" and block
        // every other try), and tried again later.
        for (name, g) in self.groups.iter_mut() {
            if g.cleanup_at.is_some_and(|t| t <= now) {
                g.cleanup_at = None;
                g.cleanup = true;
            }
            if g.retry_at.is_some_and(|t| t <= now) {
                g.retry_at = None;
            }
            if g.cleanup && g.state != Some(RunState::OnlineFailure) {
                g.cleanup = false;
            }
            if !(g.cleanup && g.automatic && !g.moving && g.pending.is_empty()) {
                continue;
            }
            g.cleanup = false;
            g.pending.push_back(Pending::Stop);
            g.keep_intent = true;
            out.push(Command::Stop {
                group: name.clone(),
                by: "its automatic activation failed: what it started is stopped, and it is tried again later".into(),
            });
        }
        // Before the listening: a copy here and one there are facts, not
        // an old view (only adverts sent since the copy here began count).
        if !self.suspended {
            self.resolve_doubles(now, out);
        }
        if self.listening(now) {
            return;
        }
        if self.suspended {
            return;
        }
        let mut waits = Vec::new();
        // Another configuration goes first: it starts what nobody holds
        // (the same answer for every group, so asked once).
        let yields = self
            .membership
            .preceding_configuration(self.incarnation)
            .is_some();
        let starts: Vec<String> = self
            .config
            .groups
            .iter()
            .map(|g| g.name.as_str())
            .filter(|name| {
                let local = &self.groups[*name];
                let due = self.intent_run(name)
                    && local.pending.is_empty()
                    && !local.moving
                    && local.retry_at.is_none()
                    && !self.held(name)
                    && placement::startup_server(self.order(name), |s| self.eligible(s))
                        == Some(self.local.as_str())
                    && !yields;
                if !due {
                    return false;
                }
                match self.may_take(name, now) {
                    Ok(()) => true,
                    Err(block) => {
                        waits.push(block);
                        false
                    }
                }
            })
            .map(str::to_string)
            .collect();
        for block in waits {
            let (server, at) = match block {
                Block::Wait(server, at) => (server, at),
                Block::Fence(server) => {
                    self.fence_for(&server, now, out);
                    continue;
                }
                Block::PoweredOn(server) => {
                    self.tell_held(&server, out);
                    continue;
                }
                Block::NotQuorate | Block::Agree | Block::NotHeardBy(_) => continue,
            };
            if self.waits_told.insert((server.clone(), at)) {
                Self::alert(
                    out,
                    Event::TakeoverWaiting {
                        server,
                        wait_ms: at.saturating_sub(now).as_millis() as u64,
                    },
                );
            }
        }
        for name in &starts {
            let local = self.groups.get_mut(name).expect("known group");
            local.pending.push_back(Pending::Start);
            local.automatic = true;
            let from = self.orphans.get(name).cloned();
            if let Some(from) = &from {
                Self::alert(
                    out,
                    Event::DestinationChosen {
                        group: name.clone(),
                        server: self.local.clone(),
                        reason: format!("server {from} is down"),
                    },
                );
                Self::alert(
                    out,
                    Event::FailoverStarted {
                        group: name.clone(),
                        from: from.clone(),
                        to: self.local.clone(),
                    },
                );
            }
            let by = match (&from, local.attempts) {
                (Some(from), 0) => format!("failover from {from}"),
                (Some(from), n) => format!("failover from {from}, try {}", n + 1),
                (None, 0) => "startup attribute auto".to_string(),
                (None, n) => format!("no server runs it, try {}", n + 1),
            };
            self.set_intent(name, true);
            out.push(Command::Start {
                group: name.clone(),
                failover_from: from,
                by,
            });
        }
        self.failback(out);
    }

    /// Groups with failback Auto running Online here, and only here, while a
    /// server earlier in their order is eligible, go back to the first such.
    fn failback(&mut self, out: &mut Vec<Command>) {
        let moves: Vec<(String, String)> = self
            .config
            .groups
            .iter()
            .filter(|g| g.failback == FailbackAttribute::Auto)
            .filter_map(|g| {
                let local = &self.groups[&g.name];
                if local.state != Some(RunState::Online)
                    || !local.pending.is_empty()
                    || local.moving
                    || self.holders(&g.name) != [self.local.as_str()]
                {
                    return None;
                }
                let best = placement::startup_server(self.order(&g.name), |s| {
                    s == self.local || self.eligible(s)
                })?;
                (best != self.local).then(|| (g.name.clone(), best.to_string()))
            })
            .collect();
        for (group, best) in moves {
            self.groups.get_mut(&group).expect("known group").moving = true;
            Self::alert(
                out,
                Event::FailbackStarted {
                    group: group.clone(),
                    to: best.clone(),
                },
            );
            out.push(Command::Move {
                group,
                to: best,
                by: "failback".into(),
            });
        }
    }

    /// Builds this server's advert; sends it when it changed.
    fn publish(&mut self, _now: Duration, out: &mut Vec<Command>) {
        let mut advert = Advert {
            version: self.advert.version,
            groups: self
                .groups
                .iter()
                .filter_map(|(name, g)| {
                    let state = g.state.filter(|s| s.may_be_active()).or_else(|| {
                        (g.pending.back() == Some(&Pending::Start))
                            .then_some(RunState::OnlinePending)
                    })?;
                    Some(GroupAdvert {
                        name: name.clone(),
                        state,
                    })
                })
                .collect(),
            stopping: self.stopping.is_some(),
            isolated: self.membership.locally_isolated(),
            suspended: self.suspended,
            moving: self
                .groups
                .iter()
                .filter(|(_, g)| g.moving)
                .map(|(n, _)| n.clone())
                .collect(),
            fenced: self
                .groups
                .iter()
                .filter(|(_, g)| g.fenced)
                .map(|(n, _)| n.clone())
                .collect(),
            intents: self
                .intents
                .iter()
                .map(|(group, i)| IntentAdvert {
                    group: group.clone(),
                    run: i.run,
                    stamp: i.stamp,
                    by: i.by.clone(),
                })
                .collect(),
            reported: self.reported.keys().cloned().collect(),
            sees: if self.partition.is_some() {
                self.config
                    .servers
                    .iter()
                    .filter(|s| s.name != self.local && self.hears(&s.name))
                    .map(|s| s.name.clone())
                    .collect()
            } else {
                Vec::new()
            },
            sees_incarnations: Vec::new(),
        };
        advert.sees_incarnations = advert
            .sees
            .iter()
            .map(|s| self.membership.incarnation(s).unwrap_or(0))
            .collect();
        if advert != self.advert {
            advert.version += 1;
            self.advert = advert.clone();
            out.push(Command::Advertise(advert));
        }
    }

    /// A group active here and, by adverts sent since it became active
    /// here, on other servers too (a healed partition, a daemon thawed
    /// late): one copy stays. The holders all rank them the same way (an
    /// Online copy first, then the group's server order, then the name), so
    /// the first keeps its copy; every other stops its own at once, as soon
    /// as its own operation on the group is over, and reports the double
    /// activation (rc 92, once per set of holders; the first reports it
    /// only if it lasts two timeouts). The stop keeps what
    /// the cluster wants of the group: should the winner's copy go too, the
    /// usual rule starts it again.
    fn resolve_doubles(&mut self, now: Duration, out: &mut Vec<Command>) {
        // The winner reports only a double that lasts: its other holders
        // report when they stop theirs (they act first, or second, as the
        // adverts cross), so this is for one that cannot see the winner.
        let lasting = 2 * Duration::from_millis(self.config.heartbeat.timeout_ms.into());
        let mut seen = BTreeMap::new();
        let mut stops = Vec::new();
        let mut reports = Vec::new();
        for group in self.orders.keys() {
            let holders = self.contenders(group);
            if holders.len() < 2 {
                continue;
            }
            let names: Vec<String> = {
                let mut n: Vec<String> = holders.iter().map(|h| h.2.clone()).collect();
                n.sort();
                n
            };
            let (since, reported) = match self.doubles.get(group) {
                Some((n, since, reported)) if *n == names => (*since, *reported),
                _ => (now, false),
            };
            let winner = &holders[0].2;
            let report = if *winner == self.local {
                now >= since + lasting
            } else {
                let g = &self.groups[group];
                let settled = g.pending.is_empty()
                    && !g.moving
                    && matches!(g.state, Some(RunState::Online | RunState::OnlineFailure));
                if settled {
                    stops.push((group.clone(), winner.clone()));
                }
                settled
            };
            if report && !reported {
                reports.push((group.clone(), names.clone()));
            }
            seen.insert(group.clone(), (names, since, reported || report));
        }
        self.doubles = seen;
        for (group, servers) in reports {
            Self::alert(out, Event::DoubleActivity { group, servers });
        }
        for (group, winner) in stops {
            let g = self.groups.get_mut(&group).expect("known group");
            g.pending.push_back(Pending::Stop);
            g.keep_intent = true;
            out.push(Command::Stop {
                group,
                by: format!("the group is active on {winner} too, which keeps it"),
            });
        }
    }

    /// The servers where `group` runs or starts, this one first if it does,
    /// best ranked first: Online before the others, then by the group's
    /// order, then by name. A peer counts only while heard, and only by an
    /// advert sent after the group became active here (an older one may
    /// show a copy that has gone since); a group it hands over does not.
    fn contenders(&self, group: &str) -> Vec<(bool, usize, String)> {
        let Some(since) = self
            .groups
            .get(group)
            .and_then(|g| g.state.filter(|s| s.runs_or_starts()).and(g.active_since))
        else {
            return Vec::new();
        };
        let order = self.order(group);
        let rank = |server: &str, state: RunState| {
            (
                state != RunState::Online,
                order.iter().position(|s| s == server).unwrap_or(usize::MAX),
                server.to_string(),
            )
        };
        let mut out = vec![rank(&self.local, self.groups[group].state.expect("active"))];
        for (server, a) in &self.peers {
            if !self.hears(server) || a.moving.iter().any(|m| m == group) {
                continue;
            }
            let Some(state) = a
                .groups
                .iter()
                .find(|g| g.name == group && g.state.runs_or_starts())
                .map(|g| g.state)
            else {
                continue;
            };
            let fresh = self.last_sent.get(server).is_some_and(|&(inc, sent)| {
                self.membership.incarnation(server) == Some(inc)
                    && self.sent_after(server, sent, since)
            });
            if fresh {
                out.push(rank(server, state));
            }
        }
        out.sort();
        out
    }

    /// Read-only, for `status`: `server` is known to hold nothing (it left
    /// in order, died under its guardian, restarted, or an operator
    /// confirmed it down), until it is heard again.
    pub fn cleared(&self, server: &str) -> bool {
        self.is_cleared(server)
    }

    /// Read-only, for `status`: the instant from which the groups of the
    /// silent `server` may be taken over (every member of this server's
    /// quorum stopped hearing it; lease and margin after that). `None`: no
    /// partition resolution, `server` is heard, or not every member agrees
    /// yet.
    pub fn takeover_from(&self, server: &str) -> Option<Duration> {
        let p = self.partition.as_ref()?;
        let since = self.unseen_since.get(server)?;
        Some(*since + p.lease(&self.config) + p.margin(&self.config))
    }

    /// Read-only, for `status`: the last reading of `server`'s BMC (None:
    /// no BMC, or not polled yet).
    pub fn bmc_reading(&self, server: &str) -> Option<&BmcReading> {
        self.bmc.get(server).map(|(r, _)| r)
    }

    /// Read-only, for `status`: the takeover from the silent `server` is
    /// held because its BMC says the power is on.
    pub fn held_powered_on(&self, server: &str) -> bool {
        !self.hears(server)
            && !self.is_cleared(server)
            && self.forced_stop.is_none()
            && self.partition.is_none()
            && self.powered_on(server)
    }

    /// Read-only, for `status`: the forced stop that a takeover from the
    /// silent `server` waits for: "pending" (not asked for yet), "running",
    /// or "failed" (with partition resolution the takeover then waits out
    /// the lease instead). `None`: none needed (no `forced_stop`, or
    /// `server` is heard, cleared, or was not declared down by silence).
    pub fn forced_stop_state(&self, server: &str) -> Option<&'static str> {
        if self.forced_stop.is_none()
            || self.is_cleared(server)
            || !self.silent_down.contains(server)
        {
            return None;
        }
        Some(match self.fencing.get(server) {
            None => "pending",
            Some(Fence::Running { .. }) => "running",
            Some(Fence::Failed { .. }) => "failed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn config(servers: usize, group: &str) -> ClusterConfig {
        let list: String = (1..=servers)
            .map(|i| format!("Server(name: \"s{i}\", interconnects: [\"198.51.100.{i}\"]),"))
            .collect();
        let text = format!(
            "Cluster(name: \"t\", servers: [{list}], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, startup_wait_secs: 5, key_file: \"/etc/understudy/cluster.key\"), \
             groups: [Group(name: \"web\", {group} resources: [Resource(name: \"app\", kind: Exec(start: \"/bin/true\"))])])"
        );
        parse("t.ron", &text).expect("valid test configuration")
    }

    fn holding(groups: &[(&str, RunState)]) -> Advert {
        Advert {
            groups: groups
                .iter()
                .map(|(n, s)| GroupAdvert {
                    name: n.to_string(),
                    state: *s,
                })
                .collect(),
            ..Advert::default()
        }
    }

    fn heard(from: &str, inc: u64, sent_ms: u64, advert: Advert) -> Input {
        Input::Heard {
            from: from.into(),
            path: 0,
            incarnation: inc,
            digest: String::new(),
            lost: 0,
            sent_ms,
            arrived_ms: 0,
            advert,
        }
    }

    /// Delivers `input` at `ms`, after the ticks the shell makes on the way
    /// (at least every timeout / 4); returns every command of them all.
    fn at(b: &mut Brain, ms: u64, input: Input) -> Vec<Command> {
        let to = Duration::from_millis(ms);
        let step = tick_at_least_every(&b.config);
        let mut out = Vec::new();
        let mut t = b.last_input.unwrap_or_default();
        while t + step < to {
            t += step;
            out.extend(b.handle(t, Input::Tick));
        }
        out.extend(b.handle(to, input));
        out
    }

    /// Group `web`'s state as its group actor reports it.
    fn web(state: RunState) -> Input {
        Input::GroupState {
            group: "web".into(),
            state,
        }
    }

    /// The end of the brain's operation on `web`.
    fn done(ok: bool) -> Input {
        Input::Done {
            group: "web".into(),
            result: if ok { Ok(()) } else { Err("duplicate".into()) },
        }
    }

    /// A brain whose config digest peers share (tests send an empty one).
    fn brain(config: &ClusterConfig, local: &str) -> Brain {
        let mut b = Brain::new(config.clone(), local, 1, Duration::ZERO);
        b.handle(Duration::ZERO, Input::Digest(String::new()));
        b
    }

    fn starts(out: &[Command]) -> Vec<(String, Option<String>)> {
        out.iter()
            .filter_map(|c| match c {
                Command::Start {
                    group,
                    failover_from,
                    ..
                } => Some((group.clone(), failover_from.clone())),
                _ => None,
            })
            .collect()
    }

    fn stops(out: &[Command]) -> Vec<String> {
        out.iter()
            .filter_map(|c| match c {
                Command::Stop { group, .. } => Some(group.clone()),
                _ => None,
            })
            .collect()
    }

    fn id_text(e: &Event) -> String {
        let (module, id, _) = e.id();
        format!("{module} {id}")
    }

    fn alerts(out: &[Command]) -> Vec<(String, bool)> {
        out.iter()
            .filter_map(|c| match c {
                Command::Alert { event, mail } => Some((id_text(event), *mail)),
                Command::MailOnly(event) => Some((format!("{} (mail only)", id_text(event)), true)),
                _ => None,
            })
            .collect()
    }

    /// s2 of two servers, with s1 heard holding `web` Online.
    fn survivor() -> Brain {
        let c = config(2, "");
        let mut b = brain(&c, "s2");
        let out = at(
            &mut b,
            10,
            heard("s1", 1, 5, holding(&[("web", RunState::Online)])),
        );
        assert!(starts(&out).is_empty(), "s1 holds it: {out:?}");
        b
    }

    #[test]
    fn the_first_eligible_server_starts_an_auto_group_once_formed() {
        let c = config(2, "");
        let mut s1 = brain(&c, "s1");
        let mut s2 = brain(&c, "s2");
        // s2 hears s1 (nothing held): s1 comes first, s2 does nothing.
        let out = at(&mut s2, 5, heard("s1", 1, 5, Advert::default()));
        assert!(starts(&out).is_empty());
        let out = at(&mut s1, 5, heard("s2", 1, 5, Advert::default()));
        assert!(starts(&out).is_empty(), "it holds for two intervals first");
        let out = at(&mut s1, 205, heard("s2", 1, 205, Advert::default()));
        assert_eq!(starts(&out), vec![("web".to_string(), None)]);
        // Asked once: the pending start counts as held.
        let out = at(&mut s1, 6, Input::Tick);
        assert!(starts(&out).is_empty());
    }

    #[test]
    fn a_silent_holder_is_taken_over_by_the_next_server() {
        let mut b = survivor();
        let out = at(&mut b, 400, Input::Tick);
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
        let ids = alerts(&out);
        for id in ["nm 4", "nm 1310", "rc 64", "rc 60"] {
            assert!(ids.iter().any(|(i, _)| i == id), "{id} missing in {ids:?}");
        }
        at(&mut b, 401, web(RunState::OnlinePending));
        at(&mut b, 402, web(RunState::Online));
        let out = at(&mut b, 402, done(true));
        assert!(alerts(&out).iter().any(|(i, _)| i == "rc 61"));
    }

    #[test]
    fn a_refused_takeover_is_cleaned_up_and_tried_again() {
        let mut b = survivor();
        let out = at(&mut b, 400, Input::Tick);
        assert_eq!(starts(&out).len(), 1);
        at(&mut b, 401, web(RunState::OnlinePending));
        at(&mut b, 3400, web(RunState::OnlineFailure));
        let out = at(&mut b, 3400, done(false));
        assert!(alerts(&out).iter().any(|(i, _)| i == "rc 62"));
        assert!(
            stops(&out).is_empty(),
            "a ladder's failover may still begin"
        );
        // One interval later, what it started is stopped...
        let out = at(&mut b, 3500, Input::Tick);
        assert_eq!(stops(&out), vec!["web".to_string()]);
        at(&mut b, 3510, web(RunState::Offline));
        let out = at(&mut b, 3510, done(true));
        assert!(starts(&out).is_empty(), "the retry waits");
        assert!(b.wanted("web"), "the clean-up keeps the intent");
        assert!(
            !b.advert().groups.iter().any(|g| g.name == "web"),
            "not advertised as held"
        );
        // ... and it is tried again after the backoff (1 s floor).
        let out = at(&mut b, 4399, Input::Tick);
        assert!(starts(&out).is_empty());
        let out = at(&mut b, 4400, Input::Tick);
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
    }

    #[test]
    fn a_link_flap_on_the_holder_stops_then_restarts_its_group() {
        let c = config(2, "");
        let mut s1 = brain(&c, "s1");
        at(&mut s1, 0, Input::LocalLink { path: 0, up: true });
        at(&mut s1, 5, heard("s2", 1, 5, Advert::default()));
        // Two intervals after forming, in case a peer's decision is on its way.
        let out = at(&mut s1, 205, heard("s2", 1, 205, Advert::default()));
        assert_eq!(starts(&out).len(), 1);
        at(&mut s1, 6, web(RunState::OnlinePending));
        at(&mut s1, 7, web(RunState::Online));
        at(&mut s1, 7, done(true));
        at(&mut s1, 90, heard("s2", 1, 90, Advert::default()));
        // The only link goes down: the group stops here, intent kept.
        let out = at(&mut s1, 100, Input::LocalLink { path: 0, up: false });
        assert_eq!(stops(&out), vec!["web".to_string()]);
        at(&mut s1, 120, web(RunState::Offline));
        let out = at(&mut s1, 120, done(true));
        assert!(starts(&out).is_empty(), "cut off: not eligible");
        assert!(s1.wanted("web"));
        // 0.2 s later it is back, s2 never noticed. s1 first listens (what
        // it knows of s2 is as old as the cut), then starts it again.
        let out = at(&mut s1, 300, Input::LocalLink { path: 0, up: true });
        assert!(starts(&out).is_empty());
        let out = at(&mut s1, 302, heard("s2", 1, 302, Advert::default()));
        assert_eq!(starts(&out), vec![("web".to_string(), None)]);
    }

    #[test]
    fn the_peer_of_a_flapping_holder_leaves_the_restart_to_it() {
        let mut s2 = survivor();
        // s1 stopped it while cut off, and still wants it.
        let mut a = Advert::default();
        a.intents.push(IntentAdvert {
            group: "web".into(),
            run: true,
            stamp: 1,
            by: "s1".into(),
        });
        let out = at(&mut s2, 250, heard("s1", 1, 250, a));
        assert!(starts(&out).is_empty(), "s1 comes first in the order");
        assert!(s2.wanted("web"));
    }

    #[test]
    fn an_operator_stop_is_not_undone() {
        let c = config(2, "");
        let mut s1 = brain(&c, "s1");
        at(&mut s1, 5, heard("s2", 1, 5, Advert::default()));
        // Two intervals after forming, in case a peer's decision is on its way.
        let out = at(&mut s1, 205, heard("s2", 1, 205, Advert::default()));
        assert_eq!(starts(&out).len(), 1);
        at(&mut s1, 6, web(RunState::Online));
        at(&mut s1, 6, done(true));
        // An operator's stop (not the brain's): nobody wants it any more.
        at(&mut s1, 50, web(RunState::OfflinePending));
        let out = at(&mut s1, 60, web(RunState::Offline));
        assert!(starts(&out).is_empty());
        assert!(!s1.wanted("web"));
        // s2 learns it from the advert, and does not start it either.
        let mut s2 = brain(&c, "s2");
        let advert = s1.advert().clone();
        let out = at(&mut s2, 70, heard("s1", 1, 70, advert));
        assert!(starts(&out).is_empty());
        assert!(!s2.wanted("web"));
        // Nor when s1 goes down.
        let out = at(&mut s2, 500, Input::Tick);
        assert!(starts(&out).is_empty());
    }

    #[test]
    fn a_whole_stack_kill_then_restart_ends_with_the_group_on_one_server() {
        // s2 took over, was refused (the dead stack's address answered) and
        // cleaned up; then s1 restarts (new incarnation, leftovers removed).
        let mut s2 = survivor();
        at(&mut s2, 400, Input::Tick);
        at(&mut s2, 3400, web(RunState::OnlineFailure));
        at(&mut s2, 3400, done(false));
        at(&mut s2, 3500, Input::Tick);
        at(&mut s2, 3510, web(RunState::Offline));
        at(&mut s2, 3510, done(true));
        // s1's new daemon: it hears s2, learns that web is wanted, starts it.
        let c = config(2, "");
        let mut s1 = brain(&c, "s1");
        at(&mut s1, 5, heard("s2", 1, 3600, s2.advert().clone()));
        let out = at(&mut s1, 205, heard("s2", 1, 3800, s2.advert().clone()));
        assert_eq!(starts(&out), vec![("web".to_string(), None)]);
        // s2 hears the new s1 and leaves it to s1.
        let out = at(&mut s2, 3700, heard("s1", 2, 5, s1.advert().clone()));
        assert!(starts(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn an_older_advert_does_not_replace_a_newer_one() {
        let mut s2 = survivor();
        let newer = Advert {
            version: 3,
            ..Advert::default()
        };
        at(&mut s2, 100, heard("s1", 1, 100, newer));
        assert!(s2.holders("web").is_empty());
        // Sent earlier on the other path, or queued during a carrier loss.
        let older = Advert {
            version: 2,
            ..holding(&[("web", RunState::Online)])
        };
        at(&mut s2, 110, heard("s1", 1, 99, older));
        assert!(s2.holders("web").is_empty());
    }

    #[test]
    fn a_beat_delayed_past_the_timeout_is_dropped() {
        let mut s2 = survivor(); // offset 10 - 5 = 5 ms
        at(&mut s2, 1000, heard("s1", 1, 600, Advert::default()));
        assert_eq!(s2.stale_beats(), 1);
    }

    #[test]
    fn a_server_down_is_reported_by_the_first_eligible_survivor_only() {
        let c = config(3, "");
        let mut s2 = brain(&c, "s2");
        let mut s3 = brain(&c, "s3");
        for (b, other) in [(&mut s2, "s3"), (&mut s3, "s2")] {
            at(b, 5, heard("s1", 1, 5, Advert::default()));
            at(b, 5, heard(other, 1, 5, Advert::default()));
        }
        // s1 goes silent; s2 and s3 keep hearing each other.
        at(&mut s2, 200, heard("s3", 1, 200, Advert::default()));
        at(&mut s3, 200, heard("s2", 1, 200, Advert::default()));
        let out2 = at(&mut s2, 400, Input::Tick);
        let out3 = at(&mut s3, 400, Input::Tick);
        assert!(alerts(&out2).contains(&("nm 1310".to_string(), true)));
        assert!(out2
            .iter()
            .any(|c| matches!(c, Command::Lamp { server, .. } if server == "s1")));
        assert!(alerts(&out3).contains(&("nm 1310".to_string(), false)));
        assert!(!out3.iter().any(|c| matches!(c, Command::Lamp { .. })));
    }

    #[test]
    fn when_the_reporter_dies_first_the_next_survivor_reports_both() {
        let c = config(3, "");
        let mut s3 = brain(&c, "s3");
        at(&mut s3, 5, heard("s1", 1, 5, Advert::default()));
        at(&mut s3, 5, heard("s2", 1, 5, Advert::default()));
        // s1 dies; s2 (the reporter) dies 0.2 s later, before saying it
        // reported s1.
        at(&mut s3, 250, heard("s2", 1, 250, Advert::default()));
        let out = at(&mut s3, 400, Input::Tick);
        assert_eq!(
            alerts(&out),
            vec![("nm 4".into(), true), ("nm 1310".into(), false)]
        );
        let out = at(&mut s3, 600, Input::Tick);
        let ids = alerts(&out);
        assert!(
            ids.contains(&("nm 1310 (mail only)".to_string(), true)),
            "s1 reported late: {ids:?}"
        );
        assert!(
            ids.contains(&("nm 1310".to_string(), true)),
            "s2 reported: {ids:?}"
        );
        let lamps = out
            .iter()
            .filter(|c| matches!(c, Command::Lamp { .. }))
            .count();
        assert_eq!(lamps, 2, "both lamps");
    }

    #[test]
    fn a_report_seen_in_the_reporters_advert_is_not_repeated() {
        let c = config(3, "");
        let mut s3 = brain(&c, "s3");
        at(&mut s3, 5, heard("s1", 1, 5, Advert::default()));
        at(&mut s3, 5, heard("s2", 1, 5, Advert::default()));
        at(&mut s3, 250, heard("s2", 1, 250, Advert::default()));
        at(&mut s3, 400, Input::Tick);
        let mut a = Advert::default();
        a.reported.push(ReportAdvert {
            server: "s1".into(),
            incarnation: 1,
            last_ms: 5,
        });
        let mut all = Vec::new();
        // s2 stays up long enough for its mail to leave.
        for t in (450..=2200).step_by(100) {
            all.extend(at(&mut s3, t, heard("s2", 1, t, a.clone())));
        }
        assert!(alerts(&all).is_empty(), "{:?}", alerts(&all));
        // s2 goes down later: only its own down is s3's to report.
        let out = at(&mut s3, 2600, Input::Tick);
        assert_eq!(
            alerts(&out),
            vec![("nm 4".to_string(), true), ("nm 1310".to_string(), true)],
        );
    }

    #[test]
    fn a_reporter_that_dies_before_its_mail_could_leave_is_taken_over() {
        let c = config(3, "");
        let mut s3 = brain(&c, "s3");
        at(&mut s3, 5, heard("s1", 1, 5, Advert::default()));
        at(&mut s3, 5, heard("s2", 1, 5, Advert::default()));
        at(&mut s3, 250, heard("s2", 1, 250, Advert::default()));
        at(&mut s3, 400, Input::Tick);
        let mut a = Advert::default();
        a.reported.push(ReportAdvert {
            server: "s1".into(),
            incarnation: 1,
            last_ms: 5,
        });
        at(&mut s3, 450, heard("s2", 1, 450, a));
        // s2 said it reported s1, then died at once: its mail may never
        // have left. s3 mails s1's down (a second mail rather than none).
        let out = at(&mut s3, 800, Input::Tick);
        let ids = alerts(&out);
        assert!(
            ids.contains(&("nm 1310 (mail only)".to_string(), true)),
            "{ids:?}"
        );
        assert!(ids.contains(&("nm 1310".to_string(), true)), "{ids:?}");
    }

    #[test]
    fn a_group_nobody_can_take_is_reported_once_by_the_reporter() {
        // web may run on s1 and s2 only; s2 is down; s1 dies; s3 reports.
        let c = config(3, "servers: [\"s1\", \"s2\"],");
        let mut s3 = brain(&c, "s3");
        at(
            &mut s3,
            5,
            heard("s1", 1, 5, holding(&[("web", RunState::Online)])),
        );
        let out = at(&mut s3, 400, Input::Tick);
        let ids = alerts(&out);
        assert!(ids.contains(&("rc 65".to_string(), true)), "{ids:?}");
        assert!(starts(&out).is_empty());
        let out = at(&mut s3, 800, Input::Tick);
        assert!(!alerts(&out).iter().any(|(i, _)| i == "rc 65"), "once");
    }

    #[test]
    fn a_bystander_of_two_copies_starts_nothing_and_leaves_the_report_to_their_winner() {
        let mut s3 = brain(&config(3, ""), "s3");
        at(
            &mut s3,
            5,
            heard("s1", 1, 5, holding(&[("web", RunState::Online)])),
        );
        let out = at(
            &mut s3,
            6,
            heard("s2", 1, 6, holding(&[("web", RunState::Online)])),
        );
        assert!(!alerts(&out).iter().any(|(i, _)| i == "rc 92"), "{out:?}");
        // One of the two goes: the other copy stays, nothing to take over.
        let mut out = Vec::new();
        for ms in [100, 200, 300, 400] {
            out = at(
                &mut s3,
                ms,
                heard("s2", 1, ms, holding(&[("web", RunState::Online)])),
            );
        }
        assert!(alerts(&out).iter().any(|(i, _)| i == "nm 1310"), "s1 down");
        assert!(starts(&out).is_empty());
    }

    /// s1 and s2 of two servers, both running `web` since a cut (each took
    /// it while it did not hear the other), about to hear each other again.
    fn both_hold_web() -> (Brain, Brain) {
        let c = config(2, "");
        let mut s1 = brain(&c, "s1");
        let mut s2 = brain(&c, "s2");
        for b in [&mut s1, &mut s2] {
            at(b, 10, web(RunState::OnlinePending));
            at(b, 20, web(RunState::Online));
        }
        (s1, s2)
    }

    #[test]
    fn two_copies_found_leave_one_the_one_that_stops_reports_once() {
        let (mut s1, mut s2) = both_hold_web();
        let online = || holding(&[("web", RunState::Online)]);
        let out = at(&mut s1, 30, heard("s2", 1, 30, online()));
        assert!(stops(&out).is_empty(), "s1 keeps it: {out:?}");
        assert!(!alerts(&out).iter().any(|(i, _)| i == "rc 92"), "{out:?}");
        let out = at(&mut s2, 30, heard("s1", 1, 30, online()));
        assert_eq!(stops(&out), vec!["web".to_string()]);
        assert!(alerts(&out).contains(&("rc 92".to_string(), true)));
        // The winner hears the same copies again: no second report, and the
        // loser, stopping, does not stop twice.
        let out = at(&mut s1, 40, heard("s2", 1, 40, online()));
        assert!(alerts(&out).is_empty() && stops(&out).is_empty(), "{out:?}");
        let out = at(&mut s2, 40, heard("s1", 1, 40, online()));
        assert!(stops(&out).is_empty(), "{out:?}");
        at(&mut s2, 50, web(RunState::OfflinePending));
        at(&mut s2, 60, web(RunState::Offline));
        let out = at(&mut s2, 60, done(true));
        assert!(starts(&out).is_empty(), "s1 holds it: {out:?}");
        // The cluster still wants it: when s1's copy goes too (it dies),
        // s2 takes it over.
        let out = at(&mut s2, 500, Input::Tick);
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
    }

    #[test]
    fn the_first_reports_a_double_the_other_holder_does_not_end() {
        // s2 does not hear s1 (one way): it never stops its copy; s1, which
        // keeps its own, reports once it has lasted two timeouts.
        let (mut s1, _) = both_hold_web();
        let online = || holding(&[("web", RunState::Online)]);
        let out = at(&mut s1, 30, heard("s2", 1, 30, online()));
        assert!(!alerts(&out).iter().any(|(i, _)| i == "rc 92"), "{out:?}");
        let mut all = Vec::new();
        for ms in (130..=930).step_by(100) {
            all.extend(at(&mut s1, ms, heard("s2", 1, ms, online())));
        }
        let reports = alerts(&all).iter().filter(|(i, _)| i == "rc 92").count();
        assert_eq!(reports, 1, "{all:?}");
        assert!(stops(&all).is_empty(), "{all:?}");
    }

    #[test]
    fn a_copy_that_is_online_outranks_one_that_failed_or_is_starting() {
        let (mut s1, mut s2) = both_hold_web();
        at(&mut s1, 25, web(RunState::OnlineFailure));
        let out = at(
            &mut s1,
            30,
            heard("s2", 1, 30, holding(&[("web", RunState::Online)])),
        );
        assert_eq!(stops(&out), vec!["web".to_string()], "{out:?}");
        let out = at(
            &mut s2,
            30,
            heard("s1", 1, 30, holding(&[("web", RunState::OnlineFailure)])),
        );
        assert!(stops(&out).is_empty(), "{out:?}");
        // A copy still starting stops nothing and is not stopped before its
        // start is over.
        let (mut s1, _) = both_hold_web();
        let out = at(
            &mut s1,
            30,
            heard("s2", 1, 30, holding(&[("web", RunState::OnlinePending)])),
        );
        assert!(stops(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn an_advert_sent_before_the_copy_here_started_shows_no_double() {
        let c = config(2, "");
        let mut s2 = brain(&c, "s2");
        // s1's beats of 5 ms tell the clocks apart (they arrive at once).
        at(&mut s2, 5, heard("s1", 1, 5, Advert::default()));
        at(&mut s2, 100, web(RunState::OnlinePending));
        at(&mut s2, 110, web(RunState::Online));
        // A beat s1 sent at 90 ms, before s2's copy began, that arrives
        // late: s1's copy may have gone since.
        let out = at(
            &mut s2,
            120,
            heard("s1", 1, 90, holding(&[("web", RunState::Online)])),
        );
        assert!(stops(&out).is_empty(), "{out:?}");
        // Sent after: a real second copy, s1 keeps it.
        let out = at(
            &mut s2,
            130,
            heard("s1", 1, 125, holding(&[("web", RunState::Online)])),
        );
        assert_eq!(stops(&out), vec!["web".to_string()], "{out:?}");
    }

    #[test]
    fn failback_moves_the_group_home_when_its_first_server_returns() {
        let c = config(2, "failback: Auto,");
        let mut s2 = survivor();
        let _ = &c;
        let mut s2b = brain(&c, "s2");
        at(
            &mut s2b,
            5,
            heard("s1", 1, 5, holding(&[("web", RunState::Online)])),
        );
        at(&mut s2b, 400, Input::Tick);
        at(&mut s2b, 401, web(RunState::Online));
        at(&mut s2b, 401, done(true));
        let out = at(&mut s2b, 500, heard("s1", 2, 5, Advert::default()));
        assert!(
            out.iter()
                .any(|c| matches!(c, Command::Move { to, .. } if to == "s1")),
            "{out:?}"
        );
        // Without failback Auto nothing moves.
        at(&mut s2, 400, Input::Tick);
        at(&mut s2, 401, web(RunState::Online));
        let out = at(&mut s2, 500, heard("s1", 2, 5, Advert::default()));
        assert!(!out.iter().any(|c| matches!(c, Command::Move { .. })));
    }

    // ---- partition resolution ----

    fn majority(servers: usize, extra: &str) -> ClusterConfig {
        let list: String = (1..=servers)
            .map(|i| format!("Server(name: \"s{i}\", interconnects: [\"198.51.100.{i}\"]),"))
            .collect();
        let text = format!(
            "Cluster(name: \"t\", servers: [{list}], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, startup_wait_secs: 5, key_file: \"/etc/understudy/cluster.key\"), \
             partition: (methods: [Majority], action: None, {extra}), \
             groups: [Group(name: \"web\", resources: [Resource(name: \"app\", kind: Exec(start: \"/bin/true\"))])])"
        );
        parse("t.ron", &text).expect("valid test configuration")
    }

    fn seeing(mut a: Advert, sees: &[&str]) -> Advert {
        a.sees = sees.iter().map(|s| s.to_string()).collect();
        a
    }

    /// s2 of s1..s3: s1 holds web, everybody hears everybody, beats every
    /// 100 ms up to `until` ms.
    fn middle(until: u64) -> Brain {
        let c = majority(3, "");
        let mut b = brain(&c, "s2");
        let mut t = 10;
        while t <= until {
            let out = at(
                &mut b,
                t,
                heard(
                    "s1",
                    1,
                    t,
                    seeing(holding(&[("web", RunState::Online)]), &["s2", "s3"]),
                ),
            );
            assert!(starts(&out).is_empty(), "{out:?}");
            at(
                &mut b,
                t + 1,
                heard("s3", 1, t + 1, seeing(Advert::default(), &["s1", "s2"])),
            );
            t += 100;
        }
        assert!(b.is_quorate());
        b
    }

    /// s2 of two servers with an etcd witness (ttl 2 s) and the action at
    /// NP occurrence StopClusterService; s1 holds web, both hear each other
    /// up to 1010 ms.
    fn witnessed() -> Brain {
        let text = "Cluster(name: \"t\", servers: [Server(name: \"s1\", interconnects: [\"198.51.100.1\"]), \
             Server(name: \"s2\", interconnects: [\"198.51.100.2\"])], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, startup_wait_secs: 10, key_file: \"/etc/understudy/cluster.key\"), \
             partition: (methods: [Majority, Etcd(endpoints: [\"http://198.51.100.100:2379\"])], action: StopClusterService), \
             groups: [Group(name: \"web\", resources: [Resource(name: \"app\", kind: Exec(start: \"/bin/true\"))])])";
        let c = parse("t.ron", text).expect("valid test configuration");
        let mut b = brain(&c, "s2");
        let mut t = 10;
        while t <= 1010 {
            at(
                &mut b,
                t,
                heard(
                    "s1",
                    1,
                    t,
                    seeing(holding(&[("web", RunState::Online)]), &["s2"]),
                ),
            );
            t += 100;
        }
        assert!(b.is_quorate());
        b
    }

    fn np_actions(out: &[Command]) -> usize {
        out.iter()
            .filter(|c| matches!(c, Command::NpAction(_)))
            .count()
    }

    fn campaigns(out: &[Command]) -> Vec<bool> {
        out.iter()
            .filter_map(|c| match c {
                Command::WitnessCampaign(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_idle_server_gives_the_witness_vote_to_the_peer_that_runs_the_groups() {
        let c = witnessed().config.clone();
        let mut b = brain(&c, "s2");
        // Idle s2 wins the vote before it hears anybody.
        at(
            &mut b,
            5,
            Input::Witness {
                holds: true,
                until: Duration::from_millis(2005),
            },
        );
        assert!(b
            .members(Duration::from_millis(5))
            .contains_key(partition::WITNESS));
        // s1 runs web and hears s2: s2 gives the vote up and stops counting
        // it at once (s1's support keeps it quorate).
        let out = at(
            &mut b,
            10,
            heard(
                "s1",
                1,
                10,
                seeing(holding(&[("web", RunState::Online)]), &["s2"]),
            ),
        );
        assert_eq!(campaigns(&out), vec![false], "{out:?}");
        assert!(b.is_quorate());
        let members = b.members(Duration::from_millis(10));
        assert_eq!(members.keys().collect::<Vec<_>>(), ["s1"], "{members:?}");
        // A round's report from before the vote was let go is not counted.
        at(
            &mut b,
            20,
            Input::Witness {
                holds: true,
                until: Duration::from_millis(2005),
            },
        );
        assert!(!b
            .members(Duration::from_millis(20))
            .contains_key(partition::WITNESS));
        // s1 goes silent: s2 wants the vote again (to take web over).
        let out = at(&mut b, 600, Input::Tick);
        assert_eq!(campaigns(&out), vec![true], "{out:?}");
    }

    #[test]
    fn a_server_stopping_in_order_gives_the_witness_vote_up_once_its_groups_are_stopped() {
        // s1 holds the vote and starts web; s2 is up, idle.
        let c = witnessed().config.clone();
        let mut b = brain(&c, "s1");
        at(
            &mut b,
            5,
            Input::Witness {
                holds: true,
                until: Duration::from_millis(60_000),
            },
        );
        let mut started = Vec::new();
        let mut t = 10;
        while t <= 1010 {
            let out = at(
                &mut b,
                t,
                heard("s2", 1, t, seeing(Advert::default(), &["s1"])),
            );
            started.extend(starts(&out));
            t += 100;
        }
        assert_eq!(started, vec![("web".to_string(), None)]);
        at(&mut b, 1020, web(RunState::OnlinePending));
        at(&mut b, 1030, web(RunState::Online));
        let out = at(&mut b, 1031, done(true));
        assert!(campaigns(&out).is_empty(), "{out:?}");
        // The cluster service stops, web handed over to s2: the vote stays
        // while web is active here and goes once web is stopped, although
        // web is still moving (s2 has not answered yet).
        at(
            &mut b,
            1040,
            Input::Moving {
                group: "web".into(),
                on: true,
            },
        );
        let out = at(&mut b, 1041, Input::Stopping { handover: true });
        assert!(campaigns(&out).is_empty(), "{out:?}");
        let out = at(&mut b, 1050, web(RunState::OfflinePending));
        assert!(campaigns(&out).is_empty(), "{out:?}");
        assert!(b
            .members(Duration::from_millis(1050))
            .contains_key(partition::WITNESS));
        let out = at(&mut b, 1060, web(RunState::Offline));
        assert_eq!(campaigns(&out), vec![false], "{out:?}");
        // No longer counted; s2's support keeps the quorum: no action.
        let members = b.members(Duration::from_millis(1060));
        assert_eq!(members.keys().collect::<Vec<_>>(), ["s2"], "{members:?}");
        assert!(b.is_quorate());
        assert_eq!(np_actions(&out), 0, "{out:?}");
        // A report of a round before it was given up is not counted.
        let out = at(
            &mut b,
            1070,
            Input::Witness {
                holds: true,
                until: Duration::from_millis(60_000),
            },
        );
        assert!(campaigns(&out).is_empty(), "{out:?}");
        assert!(!b
            .members(Duration::from_millis(1070))
            .contains_key(partition::WITNESS));
    }

    #[test]
    fn the_survivor_runs_no_action_while_the_vote_of_a_server_that_left_changes_hands() {
        let mut b = witnessed();
        // s1, holder of the vote, stops in order: s2 counts one vote of
        // three and releases until the vote comes (a departed server's vote
        // is not counted: it might be back, cut off, with the witness's),
        // but runs no action meanwhile.
        let mut out = at(
            &mut b,
            1050,
            Input::Leaving {
                from: "s1".into(),
                incarnation: 1,
                died: false,
            },
        );
        out.extend(at(&mut b, 3000, Input::Tick));
        assert!(!b.is_quorate());
        assert_eq!(np_actions(&out), 0, "{out:?}");
        let mut out = at(
            &mut b,
            3100,
            Input::Witness {
                holds: true,
                until: Duration::from_millis(60_000),
            },
        );
        out.extend(at(&mut b, 8000, Input::Tick));
        assert!(b.is_quorate());
        assert_eq!(np_actions(&out), 0, "{out:?}");
        assert!(!starts(&out).is_empty(), "s2 takes web: {out:?}");
    }

    #[test]
    fn the_action_at_np_occurrence_waits_for_the_witness_vote_to_change_hands() {
        // s1 goes silent: s2 loses its quorum once s1's support runs out,
        // and releases at once; the action waits.
        let mut b = witnessed();
        let out = at(&mut b, 1500, Input::Tick);
        assert!(!b.is_quorate());
        assert!(alerts(&out).iter().any(|(i, _)| i == "nm 30"), "{out:?}");
        assert_eq!(np_actions(&out), 0, "{out:?}");
        // The vote comes within the hand-over: no action ever.
        at(
            &mut b,
            3500,
            Input::Witness {
                holds: true,
                until: Duration::from_millis(60_000),
            },
        );
        assert!(b.is_quorate());
        let out = at(&mut b, 9000, Input::Tick);
        assert_eq!(np_actions(&out), 0, "{out:?}");
        // Without it, the action comes once the hand-over (ttl + ttl/3 +
        // lease + margin: 3,966 ms) is over.
        let mut b = witnessed();
        let out = at(&mut b, 5000, Input::Tick);
        assert_eq!(np_actions(&out), 0, "{out:?}");
        let out = at(&mut b, 5400, Input::Tick);
        assert_eq!(np_actions(&out), 1, "{out:?}");
        let out = at(&mut b, 9000, Input::Tick);
        assert_eq!(np_actions(&out), 0, "once: {out:?}");
    }

    #[test]
    fn a_silent_holder_is_taken_over_only_once_its_lease_surely_ran_out() {
        let mut b = middle(1010);
        // s1 goes silent after 1010; s3 stops hearing it at 1310 too.
        let mut t = 1111;
        let mut first_start = None;
        let mut waited = false;
        while t < 4000 {
            let sees: &[&str] = if t < 1320 { &["s1", "s2"] } else { &["s2"] };
            let out = at(
                &mut b,
                t,
                heard("s3", 1, t, seeing(Advert::default(), sees)),
            );
            waited |= alerts(&out).iter().any(|(i, _)| i == "nm 33");
            if !starts(&out).is_empty() && first_start.is_none() {
                first_start = Some(t);
            }
            t += 100;
        }
        assert!(waited, "the wait is announced");
        // s3 said so at 1411 at the latest (its first beat after 1320):
        // lease 300 + margin 1000 later.
        let first = first_start.expect("taken over in the end");
        assert!((2700..=2820).contains(&first), "started at {first}");
    }

    #[test]
    fn a_death_notice_or_an_operators_word_needs_no_wait() {
        let mut b = middle(1010);
        let out = at(
            &mut b,
            1050,
            Input::Leaving {
                from: "s1".into(),
                incarnation: 1,
                died: true,
            },
        );
        let out = [
            out,
            at(
                &mut b,
                1060,
                heard("s3", 1, 1060, seeing(Advert::default(), &["s2"])),
            ),
        ]
        .concat();
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );

        let mut b = middle(1010);
        let out = at(
            &mut b,
            1400,
            Input::ConfirmDown {
                server: "s1".into(),
                by: "root".into(),
            },
        );
        assert!(out.contains(&Command::Reply(Ok("s2: server s1 confirmed down".into()))));
        assert!(alerts(&out).iter().any(|(i, _)| i == "nm 34"));
        let out = at(
            &mut b,
            1411,
            heard("s3", 1, 1411, seeing(Advert::default(), &["s2"])),
        );
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
        // A server that is heard cannot be confirmed down.
        let out = at(
            &mut b,
            1412,
            Input::ConfirmDown {
                server: "s3".into(),
                by: "root".into(),
            },
        );
        assert!(
            matches!(out.last(), Some(Command::Reply(Err(_)))),
            "{out:?}"
        );
    }

    #[test]
    fn a_holder_that_loses_its_majority_releases_and_its_watchdog_is_armed() {
        let c = majority(3, "");
        let mut b = brain(&c, "s1");
        let mut t = 10;
        let mut started = false;
        while t < 1000 {
            at(
                &mut b,
                t,
                heard("s2", 1, t, seeing(Advert::default(), &["s1", "s3"])),
            );
            let out = at(
                &mut b,
                t + 1,
                heard("s3", 1, t + 1, seeing(Advert::default(), &["s1", "s2"])),
            );
            if !starts(&out).is_empty() {
                started = true;
                at(&mut b, t + 2, web(RunState::Online));
                at(&mut b, t + 3, done(true));
            }
            t += 100;
        }
        assert!(started);
        // The last support came at 911 (sent 911): quorate until 1211.
        assert_eq!(b.lease_end(), Some(Duration::from_millis(1211)));
        assert_eq!(b.fence_deadline(), Some(Duration::from_millis(1711)));
        let out = at(&mut b, 1200, Input::Tick);
        assert!(stops(&out).is_empty());
        let out = at(&mut b, 1212, Input::Tick);
        assert_eq!(stops(&out), vec!["web".to_string()]);
        assert!(alerts(&out).iter().any(|(i, _)| i == "nm 30"));
        assert!(!b.is_quorate());
        // Still held while it stops: the guardian releases at the deadline.
        assert_eq!(b.fence_deadline(), Some(Duration::from_millis(1711)));
        at(&mut b, 1250, web(RunState::Offline));
        at(
            &mut b,
            1251,
            Input::Done {
                group: "web".into(),
                result: Ok(()),
            },
        );
        assert_eq!(b.fence_deadline(), None, "nothing held, nothing to watch");
        assert!(b
            .may_start_here("web", Duration::from_millis(1260))
            .is_err());
    }

    #[test]
    fn a_holder_that_its_peer_no_longer_hears_lets_go_at_once() {
        // Two servers, s2 breaks the tie: s1 holds web; the beats from s1 to
        // s2 are lost, s2's reach s1 and say it hears nobody.
        let c = majority(2, "tie_breaker: \"s2\"");
        let mut b = brain(&c, "s1");
        let mut t = 10;
        while t < 1000 {
            let out = at(
                &mut b,
                t,
                heard("s2", 1, t, seeing(Advert::default(), &["s1"])),
            );
            if !starts(&out).is_empty() {
                at(&mut b, t + 2, web(RunState::Online));
                at(&mut b, t + 3, done(true));
            }
            t += 100;
        }
        assert!(b.holds("s1", "web"));
        let out = at(&mut b, 1010, heard("s2", 1, 1010, Advert::default()));
        assert_eq!(stops(&out), vec!["web".to_string()]);
        assert!(!b.is_quorate());
    }

    // ---- gates: ping and HTTP targets ----

    /// Two servers resolving partitions by a ping target alone.
    fn pinged() -> ClusterConfig {
        let text = "Cluster(name: \"t\", servers: [\
             Server(name: \"s1\", interconnects: [\"198.51.100.1\"]), \
             Server(name: \"s2\", interconnects: [\"198.51.100.2\"])], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, startup_wait_secs: 5, key_file: \"/etc/understudy/cluster.key\"), \
             partition: (methods: [Ping(targets: [\"198.51.100.254\"])], action: StopClusterService), \
             groups: [Group(name: \"web\", resources: [Resource(name: \"app\", kind: Exec(start: \"/bin/true\"))])])";
        parse("t.ron", text).expect("valid test configuration")
    }

    /// A ping round of gate 0 sent at `ms`.
    fn pinged_at(ms: u64, reached: bool) -> Input {
        Input::Target {
            method: 0,
            reached,
            until: Duration::from_millis(ms + 300),
            error: (!reached).then(|| "no echo reply from 198.51.100.254".into()),
        }
    }

    /// s1 of s1, s2: both hear each other and reach the target every 100
    /// ms up to `until` ms; s1 holds web.
    fn pinged_holder(until: u64) -> Brain {
        let c = pinged();
        let mut b = brain(&c, "s1");
        let mut t = 10;
        while t <= until {
            at(&mut b, t, pinged_at(t, true));
            let out = at(
                &mut b,
                t + 1,
                heard("s2", 1, t + 1, seeing(Advert::default(), &["s1"])),
            );
            if !starts(&out).is_empty() {
                at(&mut b, t + 2, web(RunState::Online));
                at(&mut b, t + 3, done(true));
            }
            t += 100;
        }
        assert!(b.holds("s1", "web"));
        assert!(b.is_quorate());
        b
    }

    #[test]
    fn a_holder_cut_off_from_its_targets_and_its_peer_releases_in_its_lease() {
        let mut b = pinged_holder(910);
        // Cut off from everything after 911: the last verdict (sent 910)
        // and the last support (sent 911) end at 1210 and 1211.
        assert_eq!(b.lease_end(), Some(Duration::from_millis(1211)));
        assert_eq!(b.fence_deadline(), Some(Duration::from_millis(1711)));
        let mut t = 1010;
        let mut out = Vec::new();
        while t < 1400 {
            out.extend(at(&mut b, t, pinged_at(t, false)));
            t += 100;
        }
        let stopped_at = out.iter().position(|c| matches!(c, Command::Stop { .. }));
        assert!(stopped_at.is_some(), "{out:?}");
        assert!(!b.is_quorate());
        let ids = alerts(&out);
        assert!(ids.iter().any(|(i, _)| i == "nm 30"), "{ids:?}");
        assert!(ids.iter().any(|(i, _)| i == "nm 37"), "{ids:?}");
        assert!(out.contains(&Command::NpAction(NpAction::StopClusterService)));
        assert!(b
            .may_start_here("web", Duration::from_millis(1400))
            .is_err());
    }

    #[test]
    fn a_target_outage_alone_stops_nothing_while_every_server_is_heard() {
        let mut b = pinged_holder(910);
        let mut out = Vec::new();
        let mut t = 1010;
        while t < 3000 {
            out.extend(at(&mut b, t, pinged_at(t, false)));
            out.extend(at(
                &mut b,
                t + 1,
                heard("s2", 1, t + 1, seeing(Advert::default(), &["s1"])),
            ));
            t += 100;
        }
        assert!(stops(&out).is_empty(), "{out:?}");
        assert!(b.is_quorate());
        let ids = alerts(&out);
        assert_eq!(
            ids.iter().filter(|(i, _)| i == "nm 37").count(),
            1,
            "{ids:?}"
        );
        assert!(!ids.iter().any(|(i, _)| i == "nm 30"), "{ids:?}");
        let out = at(&mut b, 3010, pinged_at(3010, true));
        assert!(alerts(&out).iter().any(|(i, _)| i == "nm 36"));
    }

    #[test]
    fn the_server_that_still_reaches_its_targets_takes_over_after_lease_and_margin() {
        let c = pinged();
        let mut b = brain(&c, "s2");
        let mut t = 10;
        while t <= 1010 {
            at(
                &mut b,
                t,
                heard(
                    "s1",
                    1,
                    t,
                    seeing(holding(&[("web", RunState::Online)]), &["s2"]),
                ),
            );
            let out = at(&mut b, t + 1, pinged_at(t + 1, true));
            assert!(starts(&out).is_empty(), "{out:?}");
            t += 100;
        }
        // s1 goes silent after 1010 (isolated): s2 keeps reaching the target.
        let mut first = None;
        while t < 4000 {
            let out = at(&mut b, t, pinged_at(t, true));
            if first.is_none() && !starts(&out).is_empty() {
                first = Some(t);
            }
            t += 100;
        }
        // Silent from 1310 (timeout), then lease 300 + margin 1000.
        let first = first.expect("taken over");
        assert!((2610..=2720).contains(&first), "started at {first}");
    }

    #[test]
    fn a_server_that_never_reached_its_targets_starts_nothing_alone() {
        let c = pinged();
        let mut b = brain(&c, "s1");
        let mut out = Vec::new();
        let mut t = 10;
        while t < 8000 {
            out.extend(at(&mut b, t, pinged_at(t, false)));
            t += 100;
        }
        assert!(starts(&out).is_empty(), "{out:?}");
        assert!(!b.is_quorate());
        // Reports of a method that is no gate change nothing.
        at(
            &mut b,
            8000,
            Input::Target {
                method: 5,
                reached: true,
                until: Duration::from_millis(9000),
                error: None,
            },
        );
        assert!(!b.is_quorate());
    }

    // ---- forced stop ----

    fn forced_stops(out: &[Command]) -> Vec<String> {
        out.iter()
            .filter_map(|c| match c {
                Command::ForcedStop { server } => Some(server.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_silent_holder_is_stopped_by_force_before_its_groups_are_taken() {
        let list = "Server(name: \"s1\", interconnects: [\"198.51.100.1\"]), Server(name: \"s2\", interconnects: [\"198.51.100.2\"])";
        let text = format!(
            "Cluster(name: \"t\", servers: [{list}], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, startup_wait_secs: 5, key_file: \"/etc/understudy/cluster.key\"), \
             forced_stop: (method: Script(path: \"fence.sh\")), \
             groups: [Group(name: \"web\", resources: [Resource(name: \"app\", kind: Exec(start: \"/bin/true\"))])])"
        );
        let c = parse("t.ron", &text).expect("valid");
        let mut b = brain(&c, "s2");
        at(
            &mut b,
            10,
            heard("s1", 1, 5, holding(&[("web", RunState::Online)])),
        );
        let out = at(&mut b, 400, Input::Tick);
        assert!(
            starts(&out).is_empty(),
            "not before the forced stop: {out:?}"
        );
        assert_eq!(forced_stops(&out), vec!["s1".to_string()]);
        assert!(alerts(&out).iter().any(|(i, _)| i == "rc 1430"));
        // Asked once while it runs.
        assert!(forced_stops(&at(&mut b, 500, Input::Tick)).is_empty());
        // It fails: no takeover (nothing decides partitions here), rc 433,
        // tried again after the retry delay.
        let out = at(
            &mut b,
            600,
            Input::ForcedStopDone {
                server: "s1".into(),
                result: Err("exit status 1".into()),
            },
        );
        assert!(starts(&out).is_empty());
        assert!(alerts(&out).contains(&("rc 433".to_string(), true)));
        assert!(forced_stops(&at(&mut b, 1000, Input::Tick)).is_empty());
        let out = at(&mut b, 1700, Input::Tick);
        assert_eq!(forced_stops(&out), vec!["s1".to_string()], "tried again");
        let out = at(
            &mut b,
            1800,
            Input::ForcedStopDone {
                server: "s1".into(),
                result: Ok(()),
            },
        );
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
        assert!(alerts(&out).iter().any(|(i, _)| i == "rc 1431"));
    }

    // ---- BMC heartbeat path ----

    /// Two servers with BMCs (`extra`: more top-level fields), s2's brain
    /// with s1 heard at 10 ms holding `web` Online.
    fn bmc_survivor(extra: &str) -> Brain {
        let bmc = |i: u32| {
            format!("bmc: (address: \"192.0.2.{i}\", user: \"admin\", password: \"pw\", interval_ms: 100, timeout_ms: 100)")
        };
        let text = format!(
            "Cluster(name: \"t\", servers: [\
             Server(name: \"s1\", interconnects: [\"198.51.100.1\"], {}), \
             Server(name: \"s2\", interconnects: [\"198.51.100.2\"], {})], \
             heartbeat: (interval_ms: 100, timeout_ms: 300, startup_wait_secs: 5, key_file: \"/etc/understudy/cluster.key\"), \
             {extra} \
             groups: [Group(name: \"web\", resources: [Resource(name: \"app\", kind: Exec(start: \"/bin/true\"))])])",
            bmc(1),
            bmc(2)
        );
        let c = parse("t.ron", &text).expect("valid");
        let mut b = brain(&c, "s2");
        for ms in [10, 240] {
            let out = at(
                &mut b,
                ms,
                heard("s1", 1, ms - 5, holding(&[("web", RunState::Online)])),
            );
            assert!(starts(&out).is_empty(), "s1 holds it: {out:?}");
        }
        b
    }

    fn bmc(ms_asked: u64, reading: BmcReading) -> Input {
        Input::Bmc {
            server: "s1".into(),
            reading,
            asked: Duration::from_millis(ms_asked),
        }
    }

    #[test]
    fn a_peer_its_bmc_says_is_off_is_down_at_once_and_its_groups_taken() {
        let mut b = bmc_survivor("");
        at(&mut b, 245, bmc(242, BmcReading::On));
        // Powered off at 250 ms: the next poll (asked at 342 ms) says so,
        // long before the LAN timeout (540 ms).
        let out = at(&mut b, 350, bmc(342, BmcReading::Off));
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
        let down: Vec<String> = out
            .iter()
            .filter_map(|c| match c {
                Command::Alert {
                    event: Event::ServerDown { cause, .. },
                    ..
                } => Some(cause.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(down.len(), 1, "{out:?}");
        assert!(down[0].contains("BMC"), "{down:?}");
        assert!(
            !alerts(&out).iter().any(|(i, _)| i == "nm 4"),
            "no path-down alerts: the server-down says it"
        );
        assert_eq!(b.membership().state("s1"), ServerState::Offline);
        // Its late beats (same incarnation) are ignored.
        at(
            &mut b,
            360,
            heard("s1", 1, 245, holding(&[("web", RunState::Online)])),
        );
        assert_eq!(b.membership().state("s1"), ServerState::Offline);
    }

    #[test]
    fn off_asked_before_a_beat_arrived_is_not_taken() {
        let mut b = bmc_survivor("");
        // Asked at 230 ms, before the beat that arrived at 240 ms: that
        // host had power after the question; the reading is old.
        let out = at(&mut b, 250, bmc(230, BmcReading::Off));
        assert!(starts(&out).is_empty(), "{out:?}");
        assert_eq!(b.membership().state("s1"), ServerState::Online);
    }

    #[test]
    fn lan_silent_with_the_power_on_is_no_blind_failover() {
        let mut b = bmc_survivor("");
        at(&mut b, 100, bmc(90, BmcReading::On));
        // LAN timeout at 540 ms: down, but its BMC says on.
        let out = at(&mut b, 600, Input::Tick);
        assert!(starts(&out).is_empty(), "{out:?}");
        assert!(
            !alerts(&out).iter().any(|(i, _)| i == "nm 38"),
            "that reading is older than the last beat: {out:?}"
        );
        assert_eq!(b.membership().state("s1"), ServerState::Offline);
        // The hold is told once a reading after the silence says on.
        let out = at(&mut b, 650, bmc(640, BmcReading::On));
        assert!(starts(&out).is_empty());
        assert!(alerts(&out).iter().any(|(i, _)| i == "nm 38"), "{out:?}");
        assert!(b.held_powered_on("s1"));
        let out = at(&mut b, 2000, bmc(1990, BmcReading::On));
        assert!(starts(&out).is_empty());
        assert!(!alerts(&out).iter().any(|(i, _)| i == "nm 38"), "told once");
        assert!(b
            .may_start_here("web", Duration::from_millis(2000))
            .is_err());
        // Then it is off: taken over at once.
        let out = at(&mut b, 2100, bmc(2090, BmcReading::Off));
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
    }

    #[test]
    fn an_operator_confirming_the_down_ends_the_hold() {
        let mut b = bmc_survivor("");
        at(&mut b, 245, bmc(242, BmcReading::On));
        at(&mut b, 600, Input::Tick);
        let out = at(
            &mut b,
            700,
            Input::ConfirmDown {
                server: "s1".into(),
                by: "root".into(),
            },
        );
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
    }

    #[test]
    fn an_unreachable_bmc_is_as_no_bmc_and_its_path_state_is_told() {
        let mut b = bmc_survivor("");
        at(&mut b, 245, bmc(242, BmcReading::On));
        let out = at(
            &mut b,
            350,
            bmc(
                250,
                BmcReading::Unreachable("no answer within 100 ms".into()),
            ),
        );
        assert_eq!(alerts(&out), vec![("nm 4".to_string(), true)]);
        // Told once.
        let out = at(
            &mut b,
            450,
            bmc(
                350,
                BmcReading::Unreachable("no answer within 100 ms".into()),
            ),
        );
        assert!(alerts(&out).is_empty(), "{out:?}");
        // LAN timeout: taken over as without a BMC.
        let out = at(&mut b, 600, Input::Tick);
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
        let out = at(&mut b, 650, bmc(640, BmcReading::Off));
        assert_eq!(alerts(&out), vec![("nm 3".to_string(), true)]);
    }

    #[test]
    fn with_a_forced_stop_the_power_on_waits_for_the_forced_stop() {
        let mut b = bmc_survivor("forced_stop: (method: Bmc),");
        at(&mut b, 245, bmc(242, BmcReading::On));
        let out = at(&mut b, 600, Input::Tick);
        assert!(starts(&out).is_empty());
        assert_eq!(forced_stops(&out), vec!["s1".to_string()]);
        assert!(!alerts(&out).iter().any(|(i, _)| i == "nm 38"));
        let out = at(
            &mut b,
            800,
            Input::ForcedStopDone {
                server: "s1".into(),
                result: Ok(()),
            },
        );
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
    }

    #[test]
    fn a_bmc_saying_off_during_a_forced_stop_clears_the_server() {
        let mut b = bmc_survivor("forced_stop: (method: Bmc),");
        at(&mut b, 245, bmc(242, BmcReading::On));
        let out = at(&mut b, 600, Input::Tick);
        assert_eq!(forced_stops(&out), vec!["s1".to_string()]);
        let out = at(&mut b, 650, bmc(640, BmcReading::Off));
        assert_eq!(
            starts(&out),
            vec![("web".to_string(), Some("s1".to_string()))]
        );
        // The forced stop's end: no failure to report, it is off.
        let out = at(
            &mut b,
            800,
            Input::ForcedStopDone {
                server: "s1".into(),
                result: Err("timed out".into()),
            },
        );
        assert!(!alerts(&out).iter().any(|(i, _)| i == "rc 433"), "{out:?}");
    }
}
