//! The deterministic simulator of the cluster brain: several real
//! [`understudy_brain::cluster::Brain`]s on one thread, virtual time, a
//! simulated network and hosts, faults drawn from a seed. Every run is
//! replayed exactly from its seed; a failing run is shrunk to the shortest
//! schedule that still fails.
//!
//! Invariants, checked as the run goes and at its end:
//! - a group's address, or its processes, never on two hosts at once;
//! - once every fault is over, every wanted group runs on exactly one
//!   server, whole;
//! - a server that dies while another runs is reported (mailed) by exactly
//!   one server.
//!
//! Without partition resolution in the configuration, both servers up but
//! not seeing each other (a cut, a frozen daemon) is a known limit: such
//! double activations are counted apart, but the copies must still be one
//! once the fault heals. With it (`partition`), they fail the run, except
//! with gates alone (ping targets, no votes) when both servers still
//! reached their targets: a cut of the interconnect alone, which gates
//! cannot decide. The leftovers of a server whose whole stack died (the
//! brain cannot see them) stay a known limit without a working forced
//! stop. Everything else fails a run.

pub mod replay;
pub mod rng;
pub mod schedule;
pub mod world;

use std::time::{Duration, Instant};

use understudy_brain::cluster::retry_cap;
use understudy_brain::config::ClusterConfig;

use rng::Rng;
use schedule::{FaultKind, Schedule, Shape};
use world::{Class, Outcome, World};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    pub first_seed: u64,
    pub runs: u64,
    /// Servers of the built-in configuration (each run draws 2 or 3 when
    /// not set); ignored with `config`.
    pub servers: Option<usize>,
    pub kinds: Vec<FaultKind>,
    pub faults: std::ops::RangeInclusive<usize>,
    /// The operator's configuration instead of the built-in one.
    pub config: Option<ClusterConfig>,
    pub threads: usize,
    /// Partition resolution of the built-in configuration.
    pub partition: Partition,
    /// Forced stop in the built-in configuration (a script that fails one
    /// time in ten); `None`: each run draws.
    pub forced_stop: Option<bool>,
    /// A watchdog device (`guardian.watchdog`, timeout 1 s, with a margin
    /// of 2 s) in the built-in configuration, where it has partition
    /// resolution; `None`: each run draws.
    pub watchdog: Option<bool>,
    /// A BMC for every server of the built-in configuration (polled every
    /// 100 ms, answer within 100 ms): add [`FaultKind::BMC`] to `kinds`.
    pub bmc: bool,
}

/// Whether the built-in cluster resolves partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// No `partition`: split views are a known limit.
    None,
    /// `partition: (methods: [Majority], action: None)`.
    Majority,
    /// A majority with an etcd witness (one more vote).
    Witness,
    /// A ping target alone (a gate, no votes): a cut of the interconnect
    /// that both sides survive reaching the target is its known limit.
    Ping,
    /// A majority and a ping target (both must hold).
    MajorityPing,
    /// Each run draws one of the five.
    Mixed,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            first_seed: 1,
            runs: 1000,
            servers: None,
            kinds: FaultKind::ALL.to_vec(),
            faults: 1..=4,
            config: None,
            threads: 2,
            partition: Partition::Mixed,
            forced_stop: Some(false),
            watchdog: Some(false),
            bmc: false,
        }
    }
}

/// Group `web` of the built-in cluster: a floating IP (duplicate check
/// 100 ms, grace 3 s) and a process that depends on it.
pub const WEB_GROUP: &str = r#"Group(
            name: "web",
            resources: [
                Resource(name: "vip", kind: Fip(address: "198.51.100.50/24", duplicate_check_ms: 100)),
                Resource(name: "app", kind: Exec(start: "/bin/true", start_mode: Async)),
            ],
        )"#;

/// Group `batch` of the built-in cluster: only a process (nothing on the
/// network refuses a second copy of it).
pub const BATCH_GROUP: &str = r#"Group(
            name: "batch",
            resources: [
                Resource(name: "worker", kind: Exec(start: "/bin/true", start_mode: Async)),
            ],
        )"#;

/// The built-in cluster: `servers` servers on two interconnects, heartbeat
/// 100 / 300 ms as in the lab, groups [`WEB_GROUP`] and [`BATCH_GROUP`].
pub fn sample_config(servers: usize) -> ClusterConfig {
    sample_config_with(servers, &[WEB_GROUP, BATCH_GROUP])
}

/// The built-in cluster's servers and heartbeat (as [`sample_config`]) with
/// `groups` (the text of each `Group(...)`) instead of its groups.
pub fn sample_config_with(servers: usize, groups: &[&str]) -> ClusterConfig {
    sample_config_full(servers, groups, Partition::None, false)
}

/// The built-in cluster with partition resolution by majority (the first
/// server breaks an even split; the losing side only releases).
pub fn sample_config_majority(servers: usize, groups: &[&str]) -> ClusterConfig {
    sample_config_full(servers, groups, Partition::Majority, false)
}

/// The built-in cluster's servers and heartbeat with `groups`, partition
/// resolution (`Mixed` counts as `None`), a forced stop script or none.
pub fn sample_config_full(
    servers: usize,
    groups: &[&str],
    resolution: Partition,
    forced_stop: bool,
) -> ClusterConfig {
    let mut partition = String::new();
    match resolution {
        Partition::Majority => {
            partition.push_str("\n    partition: (methods: [Majority], action: None),")
        }
        Partition::Witness => partition.push_str(
            "\n    partition: (methods: [Majority, Etcd(endpoints: [\"http://198.51.100.100:2379\"])], action: None),",
        ),
        Partition::Ping => partition.push_str(
            "\n    partition: (methods: [Ping(targets: [\"198.51.100.254\"])], action: None),",
        ),
        Partition::MajorityPing => partition.push_str(
            "\n    partition: (methods: [Majority, Ping(targets: [\"198.51.100.254\"])], action: None),",
        ),
        Partition::None | Partition::Mixed => {}
    }
    if forced_stop {
        partition
            .push_str("\n    forced_stop: (method: Script(path: \"/usr/local/sbin/fence-peer\")),");
    }
    let list: String = (1..=servers)
        .map(|i| {
            format!(
                "Server(name: \"n{i}\", interconnects: [\"198.51.100.{}\", \"203.0.113.{}\"]),",
                10 + i,
                10 + i
            )
        })
        .collect();
    let groups: String = groups.iter().map(|g| format!("\n        {g},")).collect();
    let text = format!(
        r#"Cluster(
    name: "sim",
    servers: [{list}],
    heartbeat: (interval_ms: 100, timeout_ms: 300, startup_wait_secs: 10, key_file: "/etc/understudy/cluster.key"),{partition}
    groups: [{groups}
    ],
)"#
    );
    understudy_brain::config::parse("sim.ron", &text).expect("the built-in configuration is valid")
}

/// One run: its schedule and what it found.
#[derive(Debug, Clone)]
pub struct Run {
    pub seed: u64,
    /// Seeds the network and hosts of the run (what `shrink` replays).
    pub world_seed: u64,
    pub servers: usize,
    /// How the built-in configuration resolved partitions.
    pub partition: Partition,
    /// The built-in configuration had a forced stop.
    pub forced_stop: bool,
    /// The built-in configuration had a watchdog device.
    pub watchdog: bool,
    /// The built-in configuration had a BMC per server.
    pub bmc: bool,
    pub schedule: Schedule,
    pub outcome: Outcome,
}

impl Run {
    /// The configuration the run used.
    pub fn config(&self, opts: &Options) -> ClusterConfig {
        opts.config.clone().unwrap_or_else(|| {
            let mut c = sample_config_full(
                self.servers,
                &[WEB_GROUP, BATCH_GROUP],
                self.partition,
                self.forced_stop,
            );
            if self.watchdog {
                with_watchdog(&mut c);
            }
            if self.bmc {
                with_bmc(&mut c);
            }
            c
        })
    }
}

fn shape(
    config: &ClusterConfig,
    kinds: &[FaultKind],
    faults: std::ops::RangeInclusive<usize>,
) -> Shape {
    Shape {
        servers: config.servers.len(),
        paths: config.path_count().max(1),
        kinds: kinds.to_vec(),
        faults,
        warmup: Duration::from_secs(2),
        span: Duration::from_secs(10),
        timeout: Duration::from_millis(config.heartbeat.timeout_ms.into()),
    }
}

/// How long the cluster is given after the last fault to settle: a retry
/// at the longest backoff, plus time to notice and to start.
pub fn settle_time(config: &ClusterConfig) -> Duration {
    let timeout = Duration::from_millis(config.heartbeat.timeout_ms.into());
    let lease = config
        .partition
        .as_ref()
        .map_or(Duration::ZERO, |p| p.lease(config) + p.margin(config));
    retry_cap(config) + 10 * timeout + 2 * lease + Duration::from_secs(4)
}

/// Runs one schedule on a configuration with the world seeded by `seed`.
pub fn replay(config: &ClusterConfig, schedule: &Schedule, seed: u64) -> Outcome {
    World::new(config, schedule, seed).run(settle_time(config))
}

/// The same, keeping the trace of what happened.
pub fn replay_traced(config: &ClusterConfig, schedule: &Schedule, seed: u64) -> Outcome {
    World::new(config, schedule, seed)
        .traced()
        .run(settle_time(config))
}

/// Adds a watchdog device to a configuration with partition resolution:
/// timeout 1 s, the margin raised to 2 s (the device must fire within half
/// of it). Without partition resolution the device is never armed: nothing
/// to add.
pub fn with_watchdog(config: &mut ClusterConfig) {
    let Some(p) = config.partition.as_mut() else {
        return;
    };
    p.margin_ms = Some(p.margin_ms.unwrap_or(0).max(2000));
    config.guardian.watchdog = Some(understudy_brain::watchdog::WatchdogConfig {
        device: "/dev/watchdog".into(),
        timeout_secs: 1,
    });
}

/// Gives every server a BMC, polled every 100 ms with a timeout of
/// 100 ms (the simulator answers for it).
pub fn with_bmc(config: &mut ClusterConfig) {
    for (i, s) in config.servers.iter_mut().enumerate() {
        s.bmc = Some(understudy_brain::bmc::BmcConfig {
            address: format!("192.0.2.{}", 10 + i),
            port: 623,
            user: "understudy".into(),
            password: Some(understudy_brain::bmc::Secret::new("sim")),
            password_file: None,
            interval_ms: 100,
            timeout_ms: 100,
        });
    }
}

/// Draws and runs the schedule of `seed`.
pub fn run_seed(opts: &Options, seed: u64) -> Run {
    let mut rng = Rng::new(seed);
    let servers = opts.servers.unwrap_or_else(|| 2 + rng.below(2) as usize);
    let partition = match opts.partition {
        Partition::Mixed => [
            Partition::None,
            Partition::Majority,
            Partition::Witness,
            Partition::Ping,
            Partition::MajorityPing,
        ][rng.below(5) as usize],
        fixed => fixed,
    };
    let forced_stop = opts.forced_stop.unwrap_or_else(|| rng.below(2) == 1);
    let mut config = opts.config.clone().unwrap_or_else(|| {
        sample_config_full(servers, &[WEB_GROUP, BATCH_GROUP], partition, forced_stop)
    });
    let mut srng = rng.fork();
    let schedule = Schedule::draw(&mut srng, &shape(&config, &opts.kinds, opts.faults.clone()));
    let world_seed = rng.next_u64();
    // Drawn from the world's seed, so that the schedule of every seed stays
    // what it was before the device was modelled.
    let watchdog = opts.config.is_none()
        && config.partition.is_some()
        && opts.watchdog.unwrap_or(world_seed >> 63 == 1);
    if watchdog {
        with_watchdog(&mut config);
    }
    let bmc = opts.bmc && opts.config.is_none();
    if bmc {
        with_bmc(&mut config);
    }
    let outcome = replay(&config, &schedule, world_seed);
    Run {
        seed,
        world_seed,
        servers: config.servers.len(),
        partition,
        forced_stop,
        watchdog,
        bmc,
        schedule,
        outcome,
    }
}

/// The shortest schedule, made by leaving faults out one at a time, for
/// which `still` holds.
pub fn shrink(
    config: &ClusterConfig,
    schedule: &Schedule,
    world_seed: u64,
    still: impl Fn(&Outcome) -> bool,
) -> Schedule {
    let mut best = schedule.clone();
    loop {
        let mut smaller = None;
        for i in 0..best.faults.len() {
            let candidate = best.without(i);
            if still(&replay(config, &candidate, world_seed)) {
                smaller = Some(candidate);
                break;
            }
        }
        match smaller {
            Some(s) => best = s,
            None => return best,
        }
    }
}

/// Figures of many runs.
#[derive(Debug, Default)]
pub struct Summary {
    pub runs: u64,
    pub events: u64,
    pub virtual_time: Duration,
    pub wall: Duration,
    /// Runs with two copies of a known class, per class.
    pub known: std::collections::BTreeMap<Class, u64>,
    pub failed: Vec<Run>,
    /// Runs where a server-down was mailed twice.
    pub reports_twice: u64,
    /// Runs per fault kind present.
    pub by_kind: std::collections::BTreeMap<FaultKind, (u64, u64)>,
}

/// Runs `opts.runs` seeds from `opts.first_seed` on `opts.threads` threads.
pub fn run_many(opts: &Options) -> Summary {
    let started = Instant::now();
    let threads = opts.threads.max(1) as u64;
    let parts: Vec<Summary> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut s = Summary::default();
                    let mut seed = opts.first_seed + t;
                    while seed < opts.first_seed + opts.runs {
                        let run = run_seed(opts, seed);
                        s.add(run);
                        seed += threads;
                    }
                    s
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("simulation thread"))
            .collect()
    });
    let mut total = Summary::default();
    for p in parts {
        total.runs += p.runs;
        total.events += p.events;
        total.virtual_time += p.virtual_time;
        total.reports_twice += p.reports_twice;
        for (k, v) in p.known {
            *total.known.entry(k).or_default() += v;
        }
        for (k, (a, b)) in p.by_kind {
            let e = total.by_kind.entry(k).or_default();
            e.0 += a;
            e.1 += b;
        }
        total.failed.extend(p.failed);
    }
    total.failed.sort_by_key(|r| r.seed);
    total.wall = started.elapsed();
    total
}

impl Summary {
    fn add(&mut self, run: Run) {
        self.runs += 1;
        self.events += run.outcome.events;
        self.virtual_time += run.outcome.virtual_time;
        if !run.outcome.reports_twice.is_empty() {
            self.reports_twice += 1;
        }
        let mut classes: Vec<Class> = run
            .outcome
            .violations
            .iter()
            .map(|v| v.class)
            .filter(|c| c.known())
            .collect();
        classes.sort();
        classes.dedup();
        for c in classes {
            *self.known.entry(c).or_default() += 1;
        }
        let mut kinds: Vec<FaultKind> = run.schedule.faults.iter().map(|f| f.kind).collect();
        kinds.sort();
        kinds.dedup();
        for k in kinds {
            let e = self.by_kind.entry(k).or_default();
            e.0 += 1;
            if run.outcome.double() {
                e.1 += 1;
            }
        }
        if run.outcome.failed() {
            self.failed.push(run);
        }
    }
}
