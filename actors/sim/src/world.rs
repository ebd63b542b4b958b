//! One simulated cluster: the real brains of several servers on one thread,
//! with virtual time, a network that loses, delays, duplicates and reorders
//! packets and can be cut, and hosts whose addresses and processes are what
//! the invariants look at.
//!
//! The shell around each brain is modelled on what the daemon does:
//! heartbeats at a fixed rate and at once on an advert change, link polling,
//! a group actor that runs one operation at a time (the floating IP's
//! duplicate-address check with its grace, then the processes), the
//! guardian that releases and tells the peers when the daemon dies, the
//! start that removes leftovers, moves over the peer link, the orderly stop.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use understudy_brain::advert::Advert;
use understudy_brain::bmc::BmcReading;
use understudy_brain::cluster::{Brain, Command, Input};
use understudy_brain::config::{ClusterConfig, StartupAttribute};
use understudy_brain::partition::{NpAction, PartitionConfig};
use understudy_brain::resource::ResourceKind;
use understudy_brain::state::{RunState, ServerState};

use crate::rng::Rng;
use crate::schedule::{FaultKind, Schedule};

type Time = Duration;

const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);
/// Packets a link queues while its carrier is down.
const TX_QUEUE: usize = 32;
/// Inputs a frozen daemon's sockets hold.
const FROZEN_QUEUE: usize = 256;
/// A peer request that cannot be delivered fails after this.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);
/// After its guardian killed a daemon that missed its lease, the service
/// manager starts the cluster service again after this.
const RESTART_AFTER: Duration = Duration::from_secs(1);
/// An OS reboot, from the action to the daemon's start.
const REBOOT_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
enum Msg {
    Beat {
        from: usize,
        incarnation: u64,
        sent_ms: u64,
        advert: Rc<Advert>,
        /// The sender runs another configuration (an OtherConfig fault).
        other_config: bool,
    },
    Leaving {
        from: usize,
        incarnation: u64,
        died: bool,
    },
    StartGroup {
        from: usize,
        from_inc: u64,
        group: usize,
    },
    StartReply {
        group: usize,
    },
}

#[derive(Debug, Clone)]
enum Ev {
    Packet {
        to: usize,
        path: usize,
        msg: Msg,
    },
    Tick {
        host: usize,
        inc: u64,
    },
    Beat {
        host: usize,
        inc: u64,
    },
    Op {
        host: usize,
        inc: u64,
        group: usize,
        id: u64,
    },
    Link {
        host: usize,
        inc: u64,
        path: usize,
        up: bool,
    },
    FaultStart(usize),
    FaultEnd(usize),
    Boot {
        host: usize,
    },
    /// A peer request that got no answer.
    PeerTimeout {
        host: usize,
        inc: u64,
        group: usize,
    },
    /// A host that rebooted starts its daemon, once the old one is gone.
    Reboot {
        host: usize,
    },
    /// A server's driver of the etcd witness renews its lease and tries to
    /// hold the vote.
    WitnessRound {
        host: usize,
        inc: u64,
        /// The daemon's round series: a change of campaign starts a new
        /// one at once (the driver's wake-up), the old one ends.
        series: u64,
    },
    /// A daemon whose orderly stop is over hands the witness's vote on
    /// before it leaves (see [`World::hand_over`]).
    HandOver {
        host: usize,
        inc: u64,
    },
    /// The check that hosts cut off from their targets let go in time.
    GateCheck,
    /// A server's probes of its gates (ping, HTTP targets) send a round.
    TargetRound {
        host: usize,
        inc: u64,
    },
    /// The end of a forced stop `by` asked for against `target`.
    ForcedStop {
        by: usize,
        inc: u64,
        target: usize,
        ok: bool,
    },
    /// A daemon's poller asks `peer`'s BMC for its chassis status.
    BmcPoll {
        host: usize,
        inc: u64,
        peer: usize,
    },
    /// The answer (or the timeout) of a BMC poll asked at `asked` (the
    /// daemon's clock).
    BmcAnswer {
        host: usize,
        inc: u64,
        peer: usize,
        asked: Duration,
        answered: bool,
    },
    /// The watchdog device (`guardian.watchdog`) of a box whose whole
    /// stack died while the device was armed fires: the box resets.
    DeviceReset {
        host: usize,
    },
    /// The guardian's watchdog deadline of a daemon (its lease ran out and
    /// it still held groups) may have come.
    Watchdog {
        host: usize,
        inc: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Start,
    Stop,
}

#[derive(Debug, Clone)]
struct Op {
    kind: OpKind,
    /// Ordered by the brain: its end is reported with `Done`.
    brain: bool,
    /// A peer that asked for it (a move), answered at the end.
    reply_to: Option<(usize, u64)>,
    id: u64,
    began: Time,
    /// Start: the address is up, the processes are next.
    addressed: bool,
}

struct Daemon {
    brain: Brain,
    inc: u64,
    epoch: Time,
    frozen: bool,
    queued: VecDeque<Input>,
    next_tick: Option<Time>,
    ops: BTreeMap<usize, VecDeque<Op>>,
    /// Orderly stop in progress.
    leaving: bool,
    /// Moves waiting for the peer's answer: group -> destination.
    moves: BTreeMap<usize, usize>,
    /// Operation steps that fell due while frozen.
    deferred: Vec<(usize, u64)>,
    /// The deadline the daemon last gave its guardian (the guardian is
    /// not frozen with it): at that instant the guardian kills the daemon
    /// and releases what it held.
    watchdog: Option<Time>,
    /// Whether its witness driver holds on to the vote (the brain's
    /// `WitnessCampaign`).
    campaign: bool,
    /// Its witness driver's current round series.
    series: u64,
    /// When its driver last deleted the vote it held (a give-up round).
    released_at: Option<Time>,
    /// When its orderly stop was over and the hand-over of the vote began.
    handing_over: Option<Time>,
}

struct Host {
    name: String,
    daemon: Option<Daemon>,
    /// Addresses and processes of each group present on the machine.
    address: Vec<bool>,
    process: Vec<bool>,
    carrier: Vec<bool>,
    txq: Vec<VecDeque<(usize, Msg)>>,
    boots: u64,
    /// The chassis has power (what its BMC says).
    powered: bool,
    /// A PowerOff fault keeps it off: nothing boots it meanwhile.
    held_off: bool,
    /// Its BMC does not answer (a BmcLoss fault).
    bmc_lost: bool,
    /// Its daemon runs another configuration (an OtherConfig fault).
    other_config: bool,
}

/// A group's address or process on two hosts at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub at: Duration,
    pub group: String,
    pub what: &'static str,
    pub hosts: (String, String),
    pub class: Class,
}

/// Why two copies happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Both servers were up and at least one did not see the other: a
    /// network partition or a frozen daemon, in a cluster without partition
    /// resolution.
    SplitView,
    /// The same with gates alone (ping or HTTP targets, no votes), while
    /// both servers reached their targets and neither daemon was frozen:
    /// a cut of the interconnect alone, which gates cannot decide.
    GatesUndecided,
    /// The first copy belongs to a server whose whole stack died: only a
    /// forced stop that works can remove it.
    Leftovers,
    /// Anything else: a bug of the brain.
    Other,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::SplitView => "split view (needs partition resolution)",
            Class::GatesUndecided => {
                "interconnect cut with both sides reaching their targets (gates alone cannot decide)"
            }
            Class::Leftovers => "dead stack's leftovers (needs forced stop)",
            Class::Other => "brain",
        }
    }

    pub fn known(self) -> bool {
        self != Class::Other
    }
}

/// What one run found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// What happened, line by line (when asked for with [`World::traced`]).
    pub trace: Vec<String>,
    pub violations: Vec<Violation>,
    /// Groups not on exactly one server after every fault healed.
    pub not_converged: Vec<String>,
    /// Server-downs never mailed / mailed more than once.
    pub reports_lost: Vec<String>,
    pub reports_twice: Vec<String>,
    pub events: u64,
    pub virtual_time: Duration,
}

impl Outcome {
    /// A failure that is not explained by a known, not yet built, limit.
    pub fn failed(&self) -> bool {
        self.violations.iter().any(|v| !v.class.known())
            || (!self.not_converged.is_empty()
                && !self.violations.iter().any(|v| v.class == Class::Leftovers))
            || !self.reports_lost.is_empty()
    }

    /// Two copies at some instant, of any class.
    pub fn double(&self) -> bool {
        !self.violations.is_empty()
    }
}

pub struct World<'a> {
    config: &'a ClusterConfig,
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<(Time, u64, usize)>>,
    events: Vec<Option<Ev>>,
    free: Vec<usize>,
    hosts: Vec<Host>,
    rng: Rng,
    schedule: &'a Schedule,
    loss: Vec<(usize, u32)>,
    delay: Vec<(usize, u32)>,
    /// (from, to) cuts: fault index -> pairs.
    cuts: Vec<(usize, usize, usize)>,
    /// Per group: has a floating IP with the duplicate check (grace,
    /// window), has processes.
    fip: Vec<Option<(Duration, Duration)>>,
    exec: Vec<bool>,
    interval: Duration,
    timeout: Duration,
    op_id: u64,
    outcome: Outcome,
    /// Mail reports of server-downs: (time, reporter, down server).
    reports: Vec<(Time, usize, String)>,
    /// Per host: intervals [from, to) during which its daemon ran unfrozen.
    alive_log: Vec<Vec<(Time, Option<Time>)>>,
    tracing: bool,
    digest: String,
    /// (host, group) -> which servers the host saw up when it decided to
    /// start the group.
    views: BTreeMap<(usize, usize), Vec<bool>>,
    /// Per host: a forced stop against it failed since it last booted.
    fence_failed: Vec<bool>,
    /// Per host: its whole stack died with the watchdog device armed, which
    /// resets the box at most a device timeout after the last keepalive
    /// (never later than the fence deadline): until then its leftovers are
    /// not a known limit, and nobody may take its groups over.
    device_armed: Vec<bool>,
    /// The etcd witness, when the configuration has one.
    witness: Option<WitnessModel>,
    /// The gates of the configuration (index in `partition.methods`),
    /// their round interval, and the lease a reached round counts for.
    gates: Vec<usize>,
    gate_interval: Duration,
    lease: Duration,
    /// Per host: since when it has been cut off from its targets (and so,
    /// in this model, from every peer too).
    cut_off_since: Vec<Option<Time>>,
}

/// An etcd witness as its drivers see it: each daemon holds an etcd lease
/// of `ttl`, renewed every third of it while it reaches the witness; the
/// vote is a key bound to one of those leases, taken by the first driver
/// that finds it free (never held, or its lease expired).
struct WitnessModel {
    ttl: Duration,
    holder: Option<(usize, u64)>,
    /// Per daemon (host, incarnation): when its etcd lease expires.
    leases: BTreeMap<(usize, u64), Time>,
}

impl<'a> World<'a> {
    pub fn new(config: &'a ClusterConfig, schedule: &'a Schedule, seed: u64) -> World<'a> {
        let paths = config.path_count().max(1);
        let groups = config.groups.len();
        let hosts = config
            .servers
            .iter()
            .map(|s| Host {
                name: s.name.clone(),
                daemon: None,
                address: vec![false; groups],
                process: vec![false; groups],
                carrier: vec![true; paths],
                txq: vec![VecDeque::new(); paths],
                boots: 0,
                powered: true,
                held_off: false,
                bmc_lost: false,
                other_config: false,
            })
            .collect::<Vec<_>>();
        let fip = config
            .groups
            .iter()
            .map(|g| {
                g.resources.iter().find_map(|r| match &r.kind {
                    ResourceKind::Fip(f) => Some(if f.duplicate_check {
                        (
                            Duration::from_millis(f.duplicate_grace_ms.into()),
                            Duration::from_millis(f.duplicate_check_ms.into()),
                        )
                    } else {
                        (Duration::ZERO, Duration::ZERO)
                    }),
                    _ => None,
                })
            })
            .collect();
        let exec = config
            .groups
            .iter()
            .map(|g| {
                g.resources
                    .iter()
                    .any(|r| matches!(r.kind, ResourceKind::Exec(_)))
            })
            .collect();
        let n = hosts.len();
        World {
            config,
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            free: Vec::new(),
            hosts,
            rng: Rng::new(seed),
            schedule,
            loss: Vec::new(),
            delay: Vec::new(),
            cuts: Vec::new(),
            fip,
            exec,
            interval: Duration::from_millis(config.heartbeat.interval_ms.into()),
            timeout: Duration::from_millis(config.heartbeat.timeout_ms.into()),
            op_id: 0,
            outcome: Outcome::default(),
            reports: Vec::new(),
            alive_log: vec![Vec::new(); n],
            tracing: false,
            digest: config.digest(),
            views: BTreeMap::new(),
            fence_failed: vec![false; n],
            device_armed: vec![false; n],
            witness: config
                .partition
                .as_ref()
                .and_then(|p| p.witness())
                .map(|w| WitnessModel {
                    ttl: Duration::from_secs(w.ttl_secs.into()),
                    holder: None,
                    leases: BTreeMap::new(),
                }),
            gates: config
                .partition
                .as_ref()
                .map(|p| p.gates().map(|(i, _)| i).collect())
                .unwrap_or_default(),
            gate_interval: config
                .partition
                .as_ref()
                .and_then(|p| p.gates().next().map(|(_, g)| p.timing(config, g).interval))
                .unwrap_or(Duration::from_millis(100)),
            lease: config
                .partition
                .as_ref()
                .map_or(Duration::ZERO, |p| p.lease(config)),
            cut_off_since: vec![None; n],
        }
    }

    /// Keeps a line for every fault, start, stop, alert and placement.
    pub fn traced(mut self) -> Self {
        self.tracing = true;
        self
    }

    fn trace(&mut self, host: Option<usize>, what: impl FnOnce() -> String) {
        if self.tracing {
            let who = host.map_or("--".to_string(), |h| self.hosts[h].name.clone());
            let line = format!("{:>7.3} {who:<4} {}", self.now.as_secs_f64(), what());
            self.outcome.trace.push(line);
        }
    }

    fn at(&mut self, t: Time, ev: Ev) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(i) => {
                self.events[i] = Some(ev);
                i
            }
            None => {
                self.events.push(Some(ev));
                self.events.len() - 1
            }
        };
        self.queue.push(Reverse((t, self.seq, slot)));
    }

    /// Runs the schedule, then lets the cluster settle for `settle`, and
    /// checks that every wanted group runs on exactly one server.
    pub fn run(mut self, settle: Duration) -> Outcome {
        for h in 0..self.hosts.len() {
            let t = Duration::from_micros(self.rng.below(50_000));
            self.at(t, Ev::Boot { host: h });
        }
        if !self.gates.is_empty() {
            self.at(Duration::ZERO, Ev::GateCheck);
        }
        for (i, f) in self.schedule.faults.iter().enumerate() {
            self.at(f.at, Ev::FaultStart(i));
            self.at(f.at + f.length, Ev::FaultEnd(i));
        }
        let end = self.schedule.heal + settle;
        while let Some(Reverse((t, _, slot))) = self.queue.pop() {
            if t > end {
                break;
            }
            self.now = t;
            let ev = self.events[slot].take().expect("queued event");
            self.free.push(slot);
            self.outcome.events += 1;
            self.step(ev);
        }
        self.now = end;
        self.finish();
        self.outcome.virtual_time = end;
        self.outcome
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Boot { host } => self.boot(host),
            Ev::Tick { host, inc } => {
                let now = self.now;
                let Some(d) = self.daemon(host, inc) else {
                    return;
                };
                if d.next_tick != Some(now) {
                    return;
                }
                d.next_tick = None;
                self.input(host, Input::Tick);
            }
            Ev::Beat { host, inc } => {
                let Some(d) = self.daemon(host, inc) else {
                    return;
                };
                if !d.frozen {
                    self.send_beats(host);
                }
                let next = self.now + self.interval;
                self.at(next, Ev::Beat { host, inc });
            }
            Ev::Packet { to, path, msg } => self.deliver(to, path, msg),
            Ev::Op {
                host,
                inc,
                group,
                id,
            } => {
                if let Some(d) = self.daemon(host, inc).filter(|d| d.frozen) {
                    // The group actor is part of the frozen daemon.
                    d.deferred.push((group, id));
                    return;
                }
                self.op_step(host, inc, group, id)
            }
            Ev::Link {
                host,
                inc,
                path,
                up,
            } => {
                if self.daemon(host, inc).is_some() {
                    self.input(host, Input::LocalLink { path, up });
                }
            }
            Ev::Watchdog { host, inc } => {
                let now = self.now;
                let due = self
                    .daemon(host, inc)
                    .is_some_and(|d| d.watchdog.is_some_and(|w| w <= now));
                if due {
                    self.trace(Some(host), || {
                        "guardian: the daemon's lease ran out with groups held: it is killed and everything released".into()
                    });
                    for g in 0..self.config.groups.len() {
                        self.hosts[host].address[g] = false;
                        self.hosts[host].process[g] = false;
                    }
                    self.leave(host, true);
                    let t = now + RESTART_AFTER;
                    self.at(t, Ev::Boot { host });
                }
            }
            Ev::ForcedStop {
                by,
                inc,
                target,
                ok,
            } => {
                if ok {
                    self.power_off(target, "stopped by force (power off)");
                } else {
                    self.fence_failed[target] = true;
                }
                if self.daemon(by, inc).is_some() {
                    let input = Input::ForcedStopDone {
                        server: self.hosts[target].name.clone(),
                        result: if ok {
                            Ok(())
                        } else {
                            Err("the forced stop script exited with status 1".into())
                        },
                    };
                    self.input(by, input);
                }
            }
            Ev::BmcPoll { host, inc, peer } => {
                let now = self.now;
                let Some(d) = self.daemon(host, inc) else {
                    return;
                };
                // A frozen daemon's poller thread is frozen with it.
                let frozen = d.frozen;
                let asked = now - d.epoch;
                let (interval, timeout) = self.bmc_timing(peer);
                self.at(now + interval, Ev::BmcPoll { host, inc, peer });
                if frozen {
                    return;
                }
                let answered = !self.hosts[peer].bmc_lost;
                let t = if answered {
                    now + Duration::from_millis(self.rng.range(1, 20))
                } else {
                    now + timeout
                };
                self.at(
                    t,
                    Ev::BmcAnswer {
                        host,
                        inc,
                        peer,
                        asked,
                        answered,
                    },
                );
            }
            Ev::BmcAnswer {
                host,
                inc,
                peer,
                asked,
                answered,
            } => {
                if self.daemon(host, inc).is_none() {
                    return;
                }
                // The chassis as it is when the BMC answers.
                let reading = if !answered {
                    BmcReading::Unreachable("no answer within the timeout".into())
                } else if self.hosts[peer].powered {
                    BmcReading::On
                } else {
                    BmcReading::Off
                };
                let server = self.hosts[peer].name.clone();
                self.input(
                    host,
                    Input::Bmc {
                        server,
                        reading,
                        asked,
                    },
                );
            }
            Ev::DeviceReset { host } => {
                self.device_armed[host] = false;
                self.power_off(host, "the watchdog device resets the box");
            }
            Ev::WitnessRound { host, inc, series } => self.witness_round(host, inc, series),
            Ev::HandOver { host, inc } => self.hand_over(host, inc),
            Ev::TargetRound { host, inc } => self.target_round(host, inc),
            Ev::GateCheck => self.check_gates(),
            Ev::Reboot { host } => {
                if self.hosts[host].daemon.is_some() {
                    let t = self.now + self.interval;
                    self.at(t, Ev::Reboot { host });
                } else {
                    self.boot(host);
                }
            }
            Ev::FaultStart(i) => self.fault(i, true),
            Ev::FaultEnd(i) => self.fault(i, false),
            Ev::PeerTimeout { host, inc, group } => {
                if let Some(d) = self.daemon(host, inc) {
                    if d.moves.remove(&group).is_some() {
                        self.input(
                            host,
                            Input::Moving {
                                group: self.config.groups[group].name.clone(),
                                on: false,
                            },
                        );
                    }
                }
            }
        }
    }

    /// The box goes down at once (powered off, reset): everything on it is
    /// gone, nobody is told; it comes back after a reboot.
    fn power_off(&mut self, host: usize, why: &'static str) {
        self.trace(Some(host), || why.into());
        self.hosts[host].powered = false;
        for g in 0..self.config.groups.len() {
            self.hosts[host].address[g] = false;
            self.hosts[host].process[g] = false;
        }
        if self.hosts[host].daemon.take().is_some() {
            self.close_life(host);
        }
        let t = self.now + REBOOT_AFTER;
        self.at(t, Ev::Reboot { host });
    }

    fn daemon(&mut self, host: usize, inc: u64) -> Option<&mut Daemon> {
        self.hosts[host].daemon.as_mut().filter(|d| d.inc == inc)
    }

    fn boot(&mut self, host: usize) {
        if self.hosts[host].daemon.is_some() || self.hosts[host].held_off {
            return;
        }
        self.hosts[host].powered = true;
        self.fence_failed[host] = false;
        // The start removes what an earlier daemon left behind.
        for g in 0..self.config.groups.len() {
            self.hosts[host].address[g] = false;
            self.hosts[host].process[g] = false;
        }
        self.trace(Some(host), || "daemon starts".into());
        let h = &mut self.hosts[host];
        h.boots += 1;
        let inc = h.boots;
        let brain = Brain::new(self.config.clone(), &h.name, inc, Duration::ZERO);
        h.daemon = Some(Daemon {
            brain,
            inc,
            epoch: self.now,
            frozen: false,
            queued: VecDeque::new(),
            next_tick: None,
            ops: BTreeMap::new(),
            leaving: false,
            moves: BTreeMap::new(),
            deferred: Vec::new(),
            watchdog: None,
            campaign: true,
            series: 0,
            released_at: None,
            handing_over: None,
        });
        self.alive_log[host].push((self.now, None));
        if self.hosts[host].other_config {
            self.input(host, Input::Digest(self.digest_of(true)));
        }
        let carriers = self.hosts[host].carrier.clone();
        for (path, up) in carriers.into_iter().enumerate() {
            self.input(host, Input::LocalLink { path, up });
        }
        self.input(host, Input::Tick);
        let first =
            self.now + Duration::from_micros(self.rng.below(self.interval.as_micros() as u64));
        self.at(first, Ev::Beat { host, inc });
        if let Some(w) = &self.witness {
            let round = w.ttl / 3;
            let t = self.now + Duration::from_micros(self.rng.below(round.as_micros() as u64));
            self.at(
                t,
                Ev::WitnessRound {
                    host,
                    inc,
                    series: 0,
                },
            );
        }
        if !self.gates.is_empty() {
            let t = self.now
                + Duration::from_micros(self.rng.below(self.gate_interval.as_micros() as u64));
            self.at(t, Ev::TargetRound { host, inc });
        }
        // A poller per peer BMC.
        for peer in 0..self.hosts.len() {
            if peer == host || self.config.servers[peer].bmc.is_none() {
                continue;
            }
            let (interval, _) = self.bmc_timing(peer);
            let t = self.now + Duration::from_micros(self.rng.below(interval.as_micros() as u64));
            self.at(t, Ev::BmcPoll { host, inc, peer });
        }
    }

    /// Poll interval and timeout of `peer`'s BMC.
    fn bmc_timing(&self, peer: usize) -> (Duration, Duration) {
        self.config.servers[peer]
            .bmc
            .as_ref()
            .map(|b| {
                (
                    Duration::from_millis(b.interval_ms.into()),
                    Duration::from_millis(b.timeout_ms.into()),
                )
            })
            .unwrap_or((Duration::from_secs(1), Duration::from_secs(1)))
    }

    /// Feeds one input to a host's brain (or queues it while frozen) and
    /// carries out what it returns.
    fn input(&mut self, host: usize, input: Input) {
        let now = self.now;
        let Some(d) = self.hosts[host].daemon.as_mut() else {
            return;
        };
        if d.frozen {
            if d.queued.len() < FROZEN_QUEUE || !matches!(input, Input::Heard { .. }) {
                d.queued.push_back(input);
            }
            return;
        }
        let t = now - d.epoch;
        let commands = d.brain.handle(t, input);
        let deadline = d.brain.next_deadline().map(|x| x + d.epoch);
        let inc = d.inc;
        let watchdog = d.brain.fence_deadline().map(|x| x + d.epoch);
        if watchdog != d.watchdog {
            d.watchdog = watchdog;
            if let Some(w) = watchdog {
                self.at(w.max(now), Ev::Watchdog { host, inc });
            }
        }
        let Some(d) = self.hosts[host].daemon.as_mut() else {
            return;
        };
        if let Some(dl) = deadline {
            let dl = dl.max(now);
            if d.next_tick.is_none_or(|t| dl < t) {
                d.next_tick = Some(dl);
                self.at(dl, Ev::Tick { host, inc });
            }
        }
        for c in commands {
            self.command(host, c);
        }
    }

    fn group_index(&self, name: &str) -> usize {
        self.config
            .groups
            .iter()
            .position(|g| g.name == name)
            .expect("configured group")
    }

    fn command(&mut self, host: usize, c: Command) {
        match &c {
            Command::Advertise(_) | Command::Reply(_) => {}
            Command::Alert { event, mail } => {
                let (m, id, _) = event.id();
                let text = event.message();
                let mail = *mail;
                self.trace(Some(host), || {
                    format!(
                        "alert {m} {id}{}: {text}",
                        if mail { "" } else { " (no mail)" }
                    )
                })
            }
            other => {
                let text = format!("{other:?}");
                self.trace(Some(host), || text)
            }
        }
        match c {
            Command::Alert { event, mail } => {
                if mail {
                    self.note_report(host, &event);
                }
            }
            Command::MailOnly(event) => self.note_report(host, &event),
            Command::Lamp { .. } | Command::Reply(_) => {}
            Command::WitnessCampaign(campaign) => {
                // The driver acts on a change at once: a round now, the
                // next ones a round interval after it.
                if let Some(d) = self.hosts[host].daemon.as_mut() {
                    if d.campaign != campaign {
                        d.campaign = campaign;
                        d.series += 1;
                        let (inc, series, t) = (d.inc, d.series, self.now);
                        self.at(t, Ev::WitnessRound { host, inc, series });
                    }
                }
            }
            Command::NpAction(action) => self.np_action(host, action),
            Command::ForcedStop { server } => {
                let target = self
                    .hosts
                    .iter()
                    .position(|h| h.name == server)
                    .expect("server");
                let inc = self.hosts[host].daemon.as_ref().map_or(0, |d| d.inc);
                let ok = !self.rng.chance(10);
                let t = self.now + Duration::from_millis(self.rng.range(50, 1500));
                self.at(
                    t,
                    Ev::ForcedStop {
                        by: host,
                        inc,
                        target,
                        ok,
                    },
                );
            }
            Command::Start { group, .. } => {
                let g = self.group_index(&group);
                self.note_view(host, g);
                self.enqueue(host, g, OpKind::Start, true, None);
            }
            Command::Stop { group, .. } => {
                let g = self.group_index(&group);
                self.enqueue(host, g, OpKind::Stop, true, None);
            }
            Command::Move { group, to, .. } => {
                let g = self.group_index(&group);
                let to = self
                    .hosts
                    .iter()
                    .position(|h| h.name == to)
                    .expect("server");
                if let Some(d) = self.hosts[host].daemon.as_mut() {
                    d.moves.insert(g, to);
                }
                self.enqueue(host, g, OpKind::Stop, false, None);
            }
            Command::Advertise(_) => {
                if !self.hosts[host].daemon.as_ref().is_some_and(|d| d.frozen) {
                    self.send_beats(host);
                }
            }
        }
    }

    /// Who the deciding server saw as up when it decided to start a group.
    fn note_view(&mut self, host: usize, g: usize) {
        let seen: Vec<bool> = (0..self.hosts.len())
            .map(|o| {
                self.hosts[host].daemon.as_ref().is_some_and(|d| {
                    o == host
                        || d.brain.membership().state(&self.hosts[o].name) == ServerState::Online
                })
            })
            .collect();
        self.views.insert((host, g), seen);
    }

    fn note_report(&mut self, host: usize, event: &understudy_brain::catalog::Event) {
        use understudy_brain::catalog::Event;
        if let Event::ServerDown { server, .. } | Event::ServerLeft { server } = event {
            self.reports.push((self.now, host, server.clone()));
        }
    }

    fn enqueue(
        &mut self,
        host: usize,
        g: usize,
        kind: OpKind,
        brain: bool,
        reply_to: Option<(usize, u64)>,
    ) {
        self.op_id += 1;
        let id = self.op_id;
        let now = self.now;
        let Some(d) = self.hosts[host].daemon.as_mut() else {
            return;
        };
        let inc = d.inc;
        let q = d.ops.entry(g).or_default();
        q.push_back(Op {
            kind,
            brain,
            reply_to,
            id,
            began: now,
            addressed: false,
        });
        if q.len() == 1 {
            self.begin_op(host, inc, g);
        }
    }

    fn begin_op(&mut self, host: usize, inc: u64, g: usize) {
        let now = self.now;
        let Some(op) = self
            .daemon(host, inc)
            .and_then(|d| d.ops.get_mut(&g))
            .and_then(|q| q.front_mut())
        else {
            return;
        };
        op.began = now;
        let (kind, id) = (op.kind, op.id);
        let name = self.config.groups[g].name.clone();
        let (state, wait) = match kind {
            OpKind::Start => {
                // The floating IP's probe window, or straight to the processes.
                let w = self.fip[g].map_or(MS, |(_, window)| window.max(MS));
                (RunState::OnlinePending, w)
            }
            OpKind::Stop => (
                RunState::OfflinePending,
                Duration::from_millis(self.rng.range(5, 60)),
            ),
        };
        self.input(host, Input::GroupState { group: name, state });
        self.op_at(now + wait, host, inc, g, id);
    }

    fn op_at(&mut self, t: Time, host: usize, inc: u64, group: usize, id: u64) {
        self.at(
            t,
            Ev::Op {
                host,
                inc,
                group,
                id,
            },
        );
    }

    fn op_step(&mut self, host: usize, inc: u64, g: usize, id: u64) {
        let now = self.now;
        let Some(op) = self
            .daemon(host, inc)
            .and_then(|d| d.ops.get(&g))
            .and_then(|q| q.front())
            .filter(|o| o.id == id)
            .cloned()
        else {
            return;
        };
        let name = self.config.groups[g].name.clone();
        let result: Result<(), String> = match op.kind {
            OpKind::Start if !op.addressed && self.fip[g].is_some() => {
                let (grace, window) = self.fip[g].expect("fip");
                let elsewhere = self
                    .hosts
                    .iter()
                    .enumerate()
                    .any(|(i, h)| i != host && h.address[g]);
                if elsewhere && window > Duration::ZERO {
                    if now - op.began < grace {
                        self.op_at(now + window, host, inc, g, id);
                        return;
                    }
                    Err("the address answers from another host".into())
                } else {
                    self.place(host, g, true);
                    if let Some(o) = self
                        .daemon(host, inc)
                        .and_then(|d| d.ops.get_mut(&g))
                        .and_then(|q| q.front_mut())
                    {
                        o.addressed = true;
                    }
                    let t = now + Duration::from_millis(self.rng.range(1, 40));
                    self.op_at(t, host, inc, g, id);
                    return;
                }
            }
            OpKind::Start => {
                if self.exec[g] {
                    self.place(host, g, false);
                }
                Ok(())
            }
            OpKind::Stop => {
                self.hosts[host].process[g] = false;
                self.hosts[host].address[g] = false;
                self.trace(Some(host), || format!("{name} stopped"));
                Ok(())
            }
        };
        if let Err(e) = &result {
            let e = e.clone();
            self.trace(Some(host), || format!("{name} not started: {e}"));
        }
        let state = match (op.kind, &result) {
            (OpKind::Start, Ok(())) => RunState::Online,
            (OpKind::Start, Err(_)) => RunState::OnlineFailure,
            (OpKind::Stop, _) => RunState::Offline,
        };
        if let Some(d) = self.daemon(host, inc) {
            if let Some(q) = d.ops.get_mut(&g) {
                q.pop_front();
            }
        }
        self.input(
            host,
            Input::GroupState {
                group: name.clone(),
                state,
            },
        );
        if op.brain {
            self.input(
                host,
                Input::Done {
                    group: name.clone(),
                    result: result.clone(),
                },
            );
        }
        if let Some((peer, _)) = op.reply_to {
            self.peer_send(host, peer, Msg::StartReply { group: g });
        }
        // A move: the group has stopped here; now the destination.
        if op.kind == OpKind::Stop {
            let to = self
                .daemon(host, inc)
                .and_then(|d| d.moves.get(&g).copied());
            if let Some(to) = to {
                self.peer_send(
                    host,
                    to,
                    Msg::StartGroup {
                        from: host,
                        from_inc: inc,
                        group: g,
                    },
                );
                let t = now + PEER_TIMEOUT;
                self.at(
                    t,
                    Ev::PeerTimeout {
                        host,
                        inc,
                        group: g,
                    },
                );
            }
        }
        self.after_op(host, inc);
        if self
            .daemon(host, inc)
            .and_then(|d| d.ops.get(&g))
            .is_some_and(|q| !q.is_empty())
        {
            self.begin_op(host, inc, g);
        }
    }

    /// Adds a group's address or process to a host, checking that no
    /// other host has it.
    fn place(&mut self, host: usize, g: usize, address: bool) {
        let other = self
            .hosts
            .iter()
            .enumerate()
            .find(|(i, h)| *i != host && if address { h.address[g] } else { h.process[g] });
        if let Some((other, _)) = other {
            let class = self.classify(host, other, g);
            self.outcome.violations.push(Violation {
                at: self.now,
                group: self.config.groups[g].name.clone(),
                what: if address { "address" } else { "process" },
                hosts: (
                    self.hosts[other].name.clone(),
                    self.hosts[host].name.clone(),
                ),
                class,
            });
        }
        let name = self.config.groups[g].name.clone();
        self.trace(Some(host), || {
            format!(
                "{} of {name} up",
                if address { "address" } else { "process" }
            )
        });
        if address {
            self.hosts[host].address[g] = true;
        } else {
            self.hosts[host].process[g] = true;
        }
    }

    /// `starter` adds a copy of group `g` that `holder` has.
    fn classify(&self, starter: usize, holder: usize, g: usize) -> Class {
        let saw = |a: usize, b: usize| {
            self.views
                .get(&(a, g))
                .is_none_or(|v| v.get(b).copied().unwrap_or(false))
        };
        let frozen = |h: usize| self.hosts[h].daemon.as_ref().is_some_and(|d| d.frozen);
        let split = !saw(starter, holder) || !saw(holder, starter);
        // Either decision taken without seeing the other server (a cut, one
        // way or both, or a frozen daemon) is a split view: a known limit
        // of a cluster without partition resolution, a failure with it.
        // With gates alone, a split while both servers reach their targets
        // (and both daemons run) is the cut gates cannot decide; a holder
        // cut off from its targets, or frozen, must have let go in time:
        // by the same deadline `check_gates` holds it to, since the last
        // answer it had still counts until then (seed 92187: a one-way cut
        // both sides' targets answered, then the holder lost its target
        // and was still letting go when the other's takeover came).
        // A daemon frozen may still rest on the verdict it had before the
        // freeze, for as long as one cut off from its targets may (the
        // same deadline: a lease, half the margin and a round); frozen
        // longer, its guardian must have released it (seed 359122: a
        // one-way cut both sides' targets answered, then the holder
        // frozen; the other's takeover came 410 ms into the freeze, its
        // guardian released within its deadline). (That a holder cut off
        // from its targets lets go in time is checked on its own:
        // `check_gates`.)
        let frozen_long = |h: usize| {
            frozen(h)
                && self.config.partition.as_ref().is_some_and(|p| {
                    let since = self.alive_log[h]
                        .last()
                        .and_then(|l| l.1)
                        .unwrap_or(self.now);
                    self.now.saturating_sub(since) > self.gate_deadline(p)
                })
        };
        let gates_undecided = self
            .config
            .partition
            .as_ref()
            .is_some_and(|p| !p.counts_votes())
            && split
            && !frozen_long(holder)
            && !frozen_long(starter)
            && self.reached_targets_lately(holder)
            && self.reached_targets_lately(starter);
        if self.hosts[holder].daemon.is_none() {
            // A dead stack's leftovers: forced stop removes them, unless it
            // failed. So does an armed watchdog device, before anybody may
            // take over, unless the takeover came of the split gates cannot
            // decide (seed 249278: a one-way cut both sides' targets
            // answered, so the holder kept its groups; its whole stack then
            // died, and the other's takeover came before the device fired).
            if self.device_armed[holder] {
                return if gates_undecided {
                    Class::GatesUndecided
                } else {
                    Class::Other
                };
            }
            return if self.config.forced_stop.is_none() || self.fence_failed[holder] {
                Class::Leftovers
            } else {
                Class::Other
            };
        }
        match &self.config.partition {
            None if split || frozen(holder) => Class::SplitView,
            Some(_) if gates_undecided => Class::GatesUndecided,
            _ => Class::Other,
        }
    }

    /// The cluster service stops on `s` (`handover`: its groups go to the
    /// others); it ends when no operation is left.
    fn orderly_stop(&mut self, s: usize, handover: bool) {
        self.input(s, Input::Stopping { handover });
        let busy = |g: usize| {
            self.hosts[s]
                .daemon
                .as_ref()
                .and_then(|d| d.ops.get(&g))
                .is_some_and(|q| !q.is_empty())
        };
        let active: Vec<usize> = (0..self.config.groups.len())
            .filter(|&g| self.hosts[s].address[g] || self.hosts[s].process[g] || busy(g))
            .collect();
        if let Some(d) = self.hosts[s].daemon.as_mut() {
            d.leaving = true;
        }
        for g in active {
            self.enqueue(s, g, OpKind::Stop, false, None);
        }
        let inc = self.hosts[s].daemon.as_ref().map_or(0, |d| d.inc);
        self.after_op(s, inc);
    }

    /// The action at NP occurrence, as the shell carries it out: the
    /// cluster service stops (and the OS goes down, and comes back after a
    /// reboot), or the kernel panics (everything gone at once, no notice;
    /// it reboots).
    fn np_action(&mut self, s: usize, action: NpAction) {
        match action {
            NpAction::None => {}
            NpAction::StopClusterService | NpAction::StopClusterServiceAndShutdownOs => {
                self.orderly_stop(s, false)
            }
            NpAction::StopClusterServiceAndRebootOs => {
                self.orderly_stop(s, false);
                let t = self.now + REBOOT_AFTER;
                self.at(t, Ev::Reboot { host: s });
            }
            NpAction::Panic => {
                for g in 0..self.config.groups.len() {
                    self.hosts[s].address[g] = false;
                    self.hosts[s].process[g] = false;
                }
                self.hosts[s].daemon = None;
                self.close_life(s);
                let t = self.now + REBOOT_AFTER;
                self.at(t, Ev::Reboot { host: s });
            }
        }
    }

    /// Whether `host` reaches the witness (in the lab, etcd runs behind the
    /// switch): a link with carrier, and no switch partition around it.
    fn reaches_witness(&self, host: usize) -> bool {
        let carrier = self.hosts[host].carrier.iter().any(|c| *c);
        let isolated = self.cuts.iter().any(|&(i, a, _)| {
            let f = &self.schedule.faults[i];
            a == host && f.kind == FaultKind::Partition && f.server == host
        });
        carrier && !isolated
    }

    /// Whether `host` reaches its ping and HTTP targets (in the lab, in
    /// the client namespace behind the switch, as etcd).
    fn reaches_targets(&self, host: usize) -> bool {
        self.reaches_witness(host)
    }

    /// How long after a host is cut off from its targets it may still
    /// hold groups: the last reached round was sent up to an interval
    /// before the cut and counts for a lease; then half the margin to let
    /// go, and a millisecond for the release to be carried out.
    fn gate_deadline(&self, p: &PartitionConfig) -> Duration {
        p.lease(self.config)
            + p.margin(self.config) / 2
            + self.gate_interval
            + Duration::from_millis(1)
    }

    /// Whether `host` reaches its targets, or lost them so recently that
    /// its last answer may still keep it quorate (`gate_deadline`).
    fn reached_targets_lately(&self, host: usize) -> bool {
        let Some(p) = &self.config.partition else {
            return self.reaches_targets(host);
        };
        self.cut_off_since[host].is_none_or(|c| self.now <= c + self.gate_deadline(p))
    }

    /// What gates promise: a host cut off from its targets (and its peers)
    /// holds nothing once its last verdict's lease and half the margin
    /// have passed (its own release, or its guardian's). A dead stack's
    /// leftovers are a class of their own.
    fn check_gates(&mut self) {
        let t = self.now + self.gate_interval / 2;
        self.at(t, Ev::GateCheck);
        let Some(p) = &self.config.partition else {
            return;
        };
        let deadline = self.gate_deadline(p);
        for h in 0..self.hosts.len() {
            let late = self.cut_off_since[h].is_some_and(|c| self.now > c + deadline);
            if !late || self.hosts[h].daemon.is_none() {
                continue;
            }
            for g in 0..self.config.groups.len() {
                let what = if self.hosts[h].address[g] {
                    "address (held while cut off from its targets)"
                } else if self.hosts[h].process[g] {
                    "process (held while cut off from its targets)"
                } else {
                    continue;
                };
                if self
                    .outcome
                    .violations
                    .iter()
                    .any(|v| v.what == what && v.hosts.0 == self.hosts[h].name)
                {
                    continue;
                }
                let name = self.hosts[h].name.clone();
                self.outcome.violations.push(Violation {
                    at: self.now,
                    group: self.config.groups[g].name.clone(),
                    what,
                    hosts: (name.clone(), name),
                    class: Class::Other,
                });
            }
        }
    }

    /// A round of every gate: reached (the answer comes back at once: the
    /// verdict counts from the send instant) unless the host is cut off
    /// from its targets or the round is lost. A frozen daemon sends none.
    fn target_round(&mut self, host: usize, inc: u64) {
        let now = self.now;
        let Some(d) = self.daemon(host, inc) else {
            return;
        };
        let (frozen, epoch) = (d.frozen, d.epoch);
        let next = now + self.gate_interval;
        self.at(next, Ev::TargetRound { host, inc });
        if frozen {
            return;
        }
        let loss = self.loss.iter().map(|l| l.1).max().unwrap_or(0);
        for i in 0..self.gates.len() {
            let reached = self.reaches_targets(host) && !(loss > 0 && self.rng.chance(loss));
            let input = Input::Target {
                method: self.gates[i],
                reached,
                until: now - epoch + self.lease,
                error: (!reached).then(|| "no echo reply".to_string()),
            };
            self.input(host, input);
        }
    }

    fn witness_round(&mut self, host: usize, inc: u64, series: u64) {
        let now = self.now;
        let Some(d) = self.daemon(host, inc).filter(|d| d.series == series) else {
            return;
        };
        let (frozen, epoch, campaign) = (d.frozen, d.epoch, d.campaign);
        let Some(ttl) = self.witness.as_ref().map(|w| w.ttl) else {
            return;
        };
        self.at(now + ttl / 3, Ev::WitnessRound { host, inc, series });
        let loss = self.loss.iter().map(|l| l.1).max().unwrap_or(0);
        if frozen || !self.reaches_witness(host) || (loss > 0 && self.rng.chance(loss)) {
            return;
        }
        let w = self.witness.as_mut().expect("witness");
        w.leases.insert((host, inc), now + ttl);
        if !campaign && w.holder == Some((host, inc)) {
            // Given up: the key deleted, free for the others at once.
            w.holder = None;
            self.trace(Some(host), || "gives the witness's vote up".into());
            if let Some(d) = self.daemon(host, inc) {
                d.released_at = Some(now);
                if d.handing_over.is_some() {
                    self.at(now, Ev::HandOver { host, inc });
                }
            }
        }
        let w = self.witness.as_mut().expect("witness");
        let free = w
            .holder
            .is_none_or(|h| w.leases.get(&h).is_none_or(|e| *e <= now));
        if campaign && free && w.holder != Some((host, inc)) {
            w.holder = Some((host, inc));
            self.trace(Some(host), || "holds the witness's vote".into());
        }
        let holds = self.witness.as_ref().and_then(|w| w.holder) == Some((host, inc));
        // Sent now, so etcd expires the lease no earlier than now + ttl.
        let until = now - epoch + ttl;
        self.input(host, Input::Witness { holds, until });
    }

    /// An orderly stop ends when no operation is left.
    fn after_op(&mut self, host: usize, inc: u64) {
        let done = self
            .daemon(host, inc)
            .is_some_and(|d| d.leaving && d.ops.values().all(|q| q.is_empty()));
        if done {
            self.hand_over(host, inc);
        }
    }

    /// The end of an orderly stop, as the shell's stop sequence ends: with
    /// a witness, a daemon that holds the vote waits for its driver to give
    /// it up (the brain asks once nothing is active here), for at most two
    /// round intervals; a vote given up less than one and a half round
    /// intervals ago is left that long to the others' drivers. Then the
    /// daemon leaves.
    fn hand_over(&mut self, host: usize, inc: u64) {
        let now = self.now;
        let Some(w) = &self.witness else {
            self.leave(host, false);
            return;
        };
        let interval = w.ttl / 3;
        let holds = w.holder == Some((host, inc));
        let Some(d) = self.daemon(host, inc) else {
            return;
        };
        if d.frozen {
            // The stop sequence is part of the frozen daemon.
            self.at(now + interval / 4, Ev::HandOver { host, inc });
            return;
        }
        let began = *d.handing_over.get_or_insert(now);
        let released = d.released_at;
        if holds && now < began + 2 * interval {
            // The give-up round, if it comes first, calls again.
            self.at(began + 2 * interval, Ev::HandOver { host, inc });
            return;
        }
        if let Some(r) = released.filter(|r| now < *r + interval * 3 / 2) {
            self.at(r + interval * 3 / 2, Ev::HandOver { host, inc });
            return;
        }
        self.leave(host, false);
    }

    fn leave(&mut self, host: usize, died: bool) {
        let Some(d) = self.hosts[host].daemon.take() else {
            return;
        };
        self.close_life(host);
        for peer in 0..self.hosts.len() {
            if peer != host {
                for path in 0..self.hosts[host].carrier.len() {
                    self.send(
                        host,
                        peer,
                        path,
                        Msg::Leaving {
                            from: host,
                            incarnation: d.inc,
                            died,
                        },
                    );
                }
            }
        }
    }

    fn close_life(&mut self, host: usize) {
        if let Some(last) = self.alive_log[host].last_mut() {
            if last.1.is_none() {
                last.1 = Some(self.now);
            }
        }
    }

    /// The configuration digest of a daemon, with another configuration
    /// (an OtherConfig fault) or the cluster's.
    fn digest_of(&self, other_config: bool) -> String {
        if other_config {
            format!("{}-other", self.digest)
        } else {
            self.digest.clone()
        }
    }

    fn send_beats(&mut self, host: usize) {
        let Some(d) = self.hosts[host].daemon.as_ref() else {
            return;
        };
        let advert = Rc::new(d.brain.advert().clone());
        let sent_ms = ((self.now - d.epoch).as_millis() as u64).max(1);
        let inc = d.inc;
        let other_config = self.hosts[host].other_config;
        for peer in 0..self.hosts.len() {
            if peer == host {
                continue;
            }
            for path in 0..self.hosts[host].carrier.len() {
                self.send(
                    host,
                    peer,
                    path,
                    Msg::Beat {
                        from: host,
                        incarnation: inc,
                        sent_ms,
                        advert: advert.clone(),
                        other_config,
                    },
                );
            }
        }
    }

    fn cut(&self, from: usize, to: usize) -> bool {
        self.cuts.iter().any(|&(_, a, b)| a == from && b == to)
    }

    /// One UDP datagram on a path.
    fn send(&mut self, from: usize, to: usize, path: usize, msg: Msg) {
        if !self.hosts[from].carrier[path] {
            let q = &mut self.hosts[from].txq[path];
            if q.len() < TX_QUEUE {
                q.push_back((to, msg));
            }
            return;
        }
        self.transmit(from, to, path, msg);
    }

    fn transmit(&mut self, from: usize, to: usize, path: usize, msg: Msg) {
        if self.cut(from, to) || !self.hosts[to].carrier[path] {
            return;
        }
        let loss = self.loss.iter().map(|l| l.1).max().unwrap_or(0);
        if loss > 0 && self.rng.chance(loss) {
            return;
        }
        let extra = self.delay.iter().map(|d| d.1).max().unwrap_or(0);
        let copies = if self.rng.chance(1) { 2 } else { 1 };
        for _ in 0..copies {
            let latency = US * (50 + self.rng.below(400) as u32)
                + MS * self.rng.below(u64::from(extra) + 1) as u32;
            let t = self.now + latency;
            self.at(
                t,
                Ev::Packet {
                    to,
                    path,
                    msg: msg.clone(),
                },
            );
        }
    }

    /// A peer-link request (TCP): delivered when some path is open.
    fn peer_send(&mut self, from: usize, to: usize, msg: Msg) {
        let open = (0..self.hosts[from].carrier.len())
            .any(|p| self.hosts[from].carrier[p] && self.hosts[to].carrier[p])
            && !self.cut(from, to);
        if open {
            let t = self.now + MS;
            self.at(
                t,
                Ev::Packet {
                    to,
                    path: usize::MAX,
                    msg,
                },
            );
        }
    }

    fn deliver(&mut self, to: usize, path: usize, msg: Msg) {
        if path != usize::MAX && !self.hosts[to].carrier[path] {
            return;
        }
        let Some(d) = self.hosts[to].daemon.as_ref() else {
            return;
        };
        let inc = d.inc;
        match msg {
            Msg::Beat {
                from,
                incarnation,
                sent_ms,
                advert,
                other_config,
            } => {
                let input = Input::Heard {
                    from: self.hosts[from].name.clone(),
                    path,
                    incarnation,
                    digest: self.digest_of(other_config),
                    lost: 0,
                    sent_ms,
                    arrived_ms: 0,
                    advert: (*advert).clone(),
                };
                self.input(to, input);
            }
            Msg::Leaving {
                from,
                incarnation,
                died,
            } => {
                let input = Input::Leaving {
                    from: self.hosts[from].name.clone(),
                    incarnation,
                    died,
                };
                self.input(to, input);
            }
            Msg::StartGroup {
                from,
                from_inc,
                group,
            } => {
                let name = self.config.groups[group].name.clone();
                self.note_view(to, group);
                self.input(
                    to,
                    Input::Accepting {
                        group: name,
                        from: self.hosts[from].name.clone(),
                    },
                );
                self.enqueue(to, group, OpKind::Start, true, Some((from, from_inc)));
            }
            Msg::StartReply { group, .. } => {
                let _ = inc;
                let Some(d) = self.hosts[to].daemon.as_mut() else {
                    return;
                };
                if d.moves.remove(&group).is_some() {
                    let name = self.config.groups[group].name.clone();
                    self.input(
                        to,
                        Input::Moving {
                            group: name,
                            on: false,
                        },
                    );
                }
            }
        }
    }

    fn fault(&mut self, i: usize, start: bool) {
        self.apply_fault(i, start);
        for h in 0..self.hosts.len() {
            if self.reaches_targets(h) {
                self.cut_off_since[h] = None;
            } else {
                self.cut_off_since[h].get_or_insert(self.now);
            }
        }
    }

    fn apply_fault(&mut self, i: usize, start: bool) {
        let f = self.schedule.faults[i].clone();
        self.trace(None, || {
            format!(
                "{} {f}",
                if start {
                    "fault begins:"
                } else {
                    "fault ends:"
                }
            )
        });
        let s = f.server;
        match f.kind {
            FaultKind::Crash | FaultKind::Kill | FaultKind::Stop if start => {
                if self.hosts[s].daemon.is_none() {
                    return;
                }
                match f.kind {
                    FaultKind::Crash => {
                        // The guardian releases, then tells the peers.
                        for g in 0..self.config.groups.len() {
                            self.hosts[s].address[g] = false;
                            self.hosts[s].process[g] = false;
                        }
                        self.leave(s, true);
                    }
                    FaultKind::Kill => {
                        // The device, armed while the daemon held groups,
                        // is kept alive up to its fence deadline at most:
                        // it fires a device timeout after that.
                        let device = self
                            .config
                            .guardian
                            .watchdog
                            .as_ref()
                            .map(|w| Duration::from_secs(w.timeout_secs.into()));
                        let deadline = self.hosts[s].daemon.as_ref().and_then(|d| d.watchdog);
                        if let (Some(timeout), Some(deadline)) = (device, deadline) {
                            self.device_armed[s] = true;
                            let t = self.now.min(deadline) + timeout;
                            self.at(t, Ev::DeviceReset { host: s });
                        }
                        self.hosts[s].daemon = None;
                        self.close_life(s);
                    }
                    _ => self.orderly_stop(s, true),
                }
            }
            FaultKind::Crash | FaultKind::Kill | FaultKind::Stop => {
                if self.hosts[s].daemon.is_some() {
                    // Still stopping (or frozen in its stop): start once
                    // it is over.
                    let t = self.now + self.interval;
                    self.at(t, Ev::Reboot { host: s });
                } else {
                    self.boot(s);
                }
            }
            FaultKind::Flap => {
                let paths: Vec<usize> = if f.other == usize::MAX {
                    (0..self.hosts[s].carrier.len()).collect()
                } else {
                    vec![f.other.min(self.hosts[s].carrier.len() - 1)]
                };
                for p in paths {
                    self.hosts[s].carrier[p] = !start;
                    if !start {
                        // What queued while the carrier was down goes out now.
                        let queued: Vec<(usize, Msg)> = self.hosts[s].txq[p].drain(..).collect();
                        for (to, msg) in queued {
                            self.transmit(s, to, p, msg);
                        }
                    }
                    if let Some(d) = self.hosts[s].daemon.as_ref() {
                        let inc = d.inc;
                        let poll = (self.timeout / 50).clamp(5 * MS, 100 * MS);
                        let t = self.now
                            + Duration::from_micros(self.rng.below(poll.as_micros() as u64));
                        self.at(
                            t,
                            Ev::Link {
                                host: s,
                                inc,
                                path: p,
                                up: !start,
                            },
                        );
                    }
                }
            }
            FaultKind::Loss => {
                if start {
                    self.loss.push((i, f.amount));
                } else {
                    self.loss.retain(|l| l.0 != i);
                }
            }
            FaultKind::Delay => {
                if start {
                    self.delay.push((i, f.amount));
                } else {
                    self.delay.retain(|l| l.0 != i);
                }
            }
            FaultKind::Partition => {
                if start {
                    for o in 0..self.hosts.len() {
                        if o != s {
                            self.cuts.push((i, s, o));
                            self.cuts.push((i, o, s));
                        }
                    }
                } else {
                    self.cuts.retain(|c| c.0 != i);
                }
            }
            FaultKind::OneWay => {
                if start {
                    self.cuts.push((i, f.other, s));
                } else {
                    self.cuts.retain(|c| c.0 != i);
                }
            }
            FaultKind::PowerOff => {
                if start {
                    self.hosts[s].held_off = true;
                    self.power_off(s, "the box loses its power");
                } else {
                    self.hosts[s].held_off = false;
                    self.boot(s);
                }
            }
            FaultKind::BmcLoss => self.hosts[s].bmc_lost = start,
            FaultKind::OtherConfig => {
                self.hosts[s].other_config = start;
                // A running daemon takes the other configuration (or, at
                // the end, the pushed one) online.
                if self.hosts[s].daemon.is_some() {
                    self.input(s, Input::Digest(self.digest_of(start)));
                }
            }
            FaultKind::Freeze => {
                let Some(d) = self.hosts[s].daemon.as_mut() else {
                    return;
                };
                if start {
                    if !d.frozen {
                        d.frozen = true;
                        self.close_life(s);
                    }
                } else if d.frozen {
                    d.frozen = false;
                    let queued: Vec<Input> = d.queued.drain(..).collect();
                    let deferred = std::mem::take(&mut d.deferred);
                    let inc = d.inc;
                    for (group, id) in deferred {
                        let t = self.now;
                        self.at(
                            t,
                            Ev::Op {
                                host: s,
                                inc,
                                group,
                                id,
                            },
                        );
                    }
                    self.alive_log[s].push((self.now, None));
                    for input in queued {
                        if self.daemon(s, inc).is_none() {
                            break;
                        }
                        self.input(s, input);
                    }
                    self.input(s, Input::Tick);
                }
            }
        }
    }

    /// After the settle time: every wanted group on exactly one server,
    /// whole (address and processes together); every server-down reported.
    fn finish(&mut self) {
        for (g, group) in self.config.groups.iter().enumerate() {
            if group.startup != StartupAttribute::Auto {
                continue;
            }
            let whole: Vec<usize> = (0..self.hosts.len())
                .filter(|&h| {
                    (self.fip[g].is_none() || self.hosts[h].address[g])
                        && (!self.exec[g] || self.hosts[h].process[g])
                })
                .collect();
            let parts = (0..self.hosts.len())
                .filter(|&h| self.hosts[h].address[g] || self.hosts[h].process[g])
                .count();
            if whole.len() != 1 || parts != 1 {
                self.outcome.not_converged.push(group.name.clone());
            }
        }
        self.check_reports();
    }

    /// Every crash or kill of a server, while another one ran throughout
    /// and no fault split the cluster, is mailed by exactly one server.
    fn check_reports(&mut self) {
        let window = 3 * self.timeout + 2 * self.interval;
        for f in &self.schedule.faults {
            if !matches!(f.kind, FaultKind::Crash | FaultKind::Kill) {
                continue;
            }
            let (from, to) = (f.at, f.at + window);
            // It was up when the fault came, long enough to have been
            // heard (a daemon killed right after its start was never up
            // for the others: there is no down to report).
            let was_up = self.alive_log[f.server]
                .iter()
                .any(|&(a, b)| a + 2 * self.interval < from && b.is_none_or(|b| b >= from));
            let disturbed = self.schedule.faults.iter().any(|o| {
                o != f
                    && o.at < to
                    && o.at + o.length + 2 * self.timeout > from
                    && (o.kind.splits()
                        || o.kind == FaultKind::Flap
                        || (o.server == f.server
                            && matches!(
                                o.kind,
                                FaultKind::Crash | FaultKind::Kill | FaultKind::Stop
                            )))
            });
            let witness = (0..self.hosts.len()).any(|h| {
                h != f.server
                    && self.alive_log[h]
                        .iter()
                        .any(|&(a, b)| a + self.timeout < from && b.is_none_or(|b| b >= to))
            });
            if !was_up || disturbed || !witness {
                continue;
            }
            let name = &self.hosts[f.server].name;
            let n = self
                .reports
                .iter()
                .filter(|(t, _, s)| *t >= from && *t <= to && s == name)
                .count();
            if n == 0 {
                self.outcome
                    .reports_lost
                    .push(format!("{name} at {} ms", from.as_millis()));
            } else if n > 1 {
                self.outcome
                    .reports_twice
                    .push(format!("{name} at {} ms", from.as_millis()));
            }
        }
    }
}
