//! Fault schedules: what happens to which server when, drawn from a seed.

use std::fmt;
use std::time::Duration;

use crate::rng::Rng;

/// The kinds of fault the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// kill -9 of the daemon; its guardian releases and tells the peers.
    Crash,
    /// The whole stack killed (daemon and guardian): addresses and
    /// processes stay behind until the server's next start removes them.
    Kill,
    /// Orderly stop of the server (its groups go to the others).
    Stop,
    /// Carrier loss on one or every interconnect of a server.
    Flap,
    /// Random loss on every link.
    Loss,
    /// Extra delay on every link.
    Delay,
    /// A switch cuts a server off from the others; carrier stays up.
    Partition,
    /// Traffic from one server to another is dropped; the reverse flows.
    OneWay,
    /// The daemon stops running (SIGSTOP, a paused VM), then thaws.
    Freeze,
    /// The box loses its power (everything on it gone, its BMC says
    /// "off"); it boots when the power returns. Only with BMCs.
    PowerOff,
    /// The server's BMC does not answer (its polls are "unreachable").
    /// Only with BMCs.
    BmcLoss,
    /// The server's daemon runs another configuration (started with an
    /// old file, or a push that reached it late) until the push reaches
    /// it: its heartbeats carry another digest, and it sees the others'
    /// as other.
    OtherConfig,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Crash,
        FaultKind::Kill,
        FaultKind::Stop,
        FaultKind::Flap,
        FaultKind::Loss,
        FaultKind::Delay,
        FaultKind::Partition,
        FaultKind::OneWay,
        FaultKind::Freeze,
    ];

    /// The faults of servers with BMCs (not in [`FaultKind::ALL`], so that
    /// the schedules of every seed stay what they were).
    pub const BMC: [FaultKind; 2] = [FaultKind::PowerOff, FaultKind::BmcLoss];

    /// The faults of configuration (not in [`FaultKind::ALL`] either).
    pub const CONFIG: [FaultKind; 1] = [FaultKind::OtherConfig];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Kill => "kill",
            FaultKind::Stop => "stop",
            FaultKind::Flap => "flap",
            FaultKind::Loss => "loss",
            FaultKind::Delay => "delay",
            FaultKind::Partition => "partition",
            FaultKind::OneWay => "oneway",
            FaultKind::Freeze => "freeze",
            FaultKind::PowerOff => "power-off",
            FaultKind::BmcLoss => "bmc-loss",
            FaultKind::OtherConfig => "other-config",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .chain(FaultKind::BMC)
            .chain(FaultKind::CONFIG)
            .find(|k| k.name() == s)
    }

    /// Faults in which two servers that both stay up stop hearing each
    /// other: deciding them needs partition resolution (quorum, a witness,
    /// leases, forced stop), which the brain does not have yet.
    pub fn splits(self) -> bool {
        matches!(
            self,
            FaultKind::Partition | FaultKind::OneWay | FaultKind::Freeze | FaultKind::Loss
        )
    }
}

/// One fault: `kind` on `server` (or `peer` for one-way cuts) from `at`
/// for `length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub at: Duration,
    pub length: Duration,
    pub kind: FaultKind,
    pub server: usize,
    /// OneWay: the server whose traffic to `server` is dropped. Flap: the
    /// path (`usize::MAX`: every path).
    pub other: usize,
    /// Loss: percent.
    pub amount: u32,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at {:>6} ms for {:>5} ms: {}",
            self.at.as_millis(),
            self.length.as_millis(),
            self.kind.name()
        )?;
        match self.kind {
            FaultKind::Loss => write!(f, " {} %", self.amount),
            FaultKind::Delay => write!(f, " +{} ms", self.amount),
            FaultKind::OneWay => write!(
                f,
                " server {} -> server {}",
                self.other + 1,
                self.server + 1
            ),
            FaultKind::Flap if self.other == usize::MAX => {
                write!(f, " server {} every path", self.server + 1)
            }
            FaultKind::Flap => write!(f, " server {} path {}", self.server + 1, self.other),
            _ => write!(f, " server {}", self.server + 1),
        }
    }
}

/// A run's faults, in time order; every one is over by `heal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub faults: Vec<Fault>,
    pub heal: Duration,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for fault in &self.faults {
            writeln!(f, "  {fault}")?;
        }
        write!(f, "  every fault over by {} ms", self.heal.as_millis())
    }
}

/// What a schedule may contain.
#[derive(Debug, Clone)]
pub struct Shape {
    pub servers: usize,
    pub paths: usize,
    pub kinds: Vec<FaultKind>,
    pub faults: std::ops::RangeInclusive<usize>,
    /// Faults start between `warmup` and `warmup + span`.
    pub warmup: Duration,
    pub span: Duration,
    pub timeout: Duration,
}

impl Schedule {
    pub fn draw(rng: &mut Rng, shape: &Shape) -> Schedule {
        let n = rng.range(*shape.faults.start() as u64, *shape.faults.end() as u64) as usize;
        let t = shape.timeout.as_millis() as u64;
        let mut faults = Vec::new();
        for _ in 0..n {
            if shape.kinds.is_empty() {
                break;
            }
            let kind = shape.kinds[rng.below(shape.kinds.len() as u64) as usize];
            let at = shape.warmup + Duration::from_millis(rng.below(shape.span.as_millis() as u64));
            // Lengths around the timeout matter most: shorter than it,
            // about it, and well past it.
            let length = Duration::from_millis(match rng.below(3) {
                0 => rng.range(t / 10, t),
                1 => rng.range(t / 2, 2 * t),
                _ => rng.range(2 * t, 12 * t),
            });
            let server = rng.below(shape.servers as u64) as usize;
            let mut other = 0;
            let mut amount = 0;
            match kind {
                FaultKind::OneWay => {
                    other =
                        (server + 1 + rng.below(shape.servers as u64 - 1) as usize) % shape.servers;
                }
                FaultKind::Flap => {
                    other = if shape.paths > 1 && rng.chance(50) {
                        rng.below(shape.paths as u64) as usize
                    } else {
                        usize::MAX
                    };
                }
                FaultKind::Loss => amount = rng.range(5, 60) as u32,
                FaultKind::Delay => amount = rng.range(1, (t / 2).max(2)) as u32,
                _ => {}
            }
            faults.push(Fault {
                at,
                length,
                kind,
                server,
                other,
                amount,
            });
        }
        faults.sort_by_key(|f| f.at);
        let heal = faults
            .iter()
            .map(|f| f.at + f.length)
            .max()
            .unwrap_or(shape.warmup);
        Schedule { faults, heal }
    }

    pub fn without(&self, index: usize) -> Schedule {
        let mut faults = self.faults.clone();
        faults.remove(index);
        let heal = faults
            .iter()
            .map(|f| f.at + f.length)
            .max()
            .unwrap_or(Duration::ZERO)
            .max(self.faults.first().map_or(Duration::ZERO, |f| f.at));
        Schedule { faults, heal }
    }

    pub fn has_split(&self) -> bool {
        self.faults.iter().any(|f| f.kind.splits())
    }
}
