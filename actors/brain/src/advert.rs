//! What a server tells the others about itself in every heartbeat: the
//! groups it holds, the groups it is moving away, what the cluster wants of
//! each group as far as it knows, and the server-down reports it has made.
//! Every field defaults, so fields added later do not break older peers.

use serde::{Deserialize, Serialize};

use crate::state::RunState;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Advert {
    /// Grows with every change of the advert within a daemon's life (0: an
    /// older sender that does not count): beats on several paths may
    /// overtake one another, and only a newer advert replaces an older one.
    pub version: u64,
    pub groups: Vec<GroupAdvert>,
    /// The cluster service is stopping here.
    pub stopping: bool,
    /// This server considers itself cut off from the others.
    pub isolated: bool,
    /// Automatic recovery is suspended here.
    pub suspended: bool,
    /// Groups this server is handing to another server: stopped (or being
    /// stopped) here, not yet accepted there. Nobody else starts them.
    pub moving: Vec<String>,
    /// Groups this server stopped because every link of its own went down;
    /// it takes them back when a link returns. Nobody else starts them
    /// while this server is up: it is declared down first.
    pub fenced: Vec<String>,
    /// What the cluster wants of each group, as this server knows it.
    pub intents: Vec<IntentAdvert>,
    /// Server-down events this server has reported (mail, lamp), so the
    /// others do not report them again.
    pub reported: Vec<ReportAdvert>,
    /// The servers this server hears (Online in its view): a peer counts
    /// it towards its quorum only while it is named here.
    pub sees: Vec<String>,
    /// The incarnation of each server named in `sees`, in the same order:
    /// a server known to have died (or been stopped by force) holds
    /// nothing only until anybody hears a newer incarnation of it.
    pub sees_incarnations: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupAdvert {
    pub name: String,
    pub state: RunState,
}

/// Whether a group should run, with the stamp that orders the decisions of
/// different servers: the highest `(stamp, by)` wins everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentAdvert {
    pub group: String,
    pub run: bool,
    pub stamp: u64,
    pub by: String,
}

/// "The down of `server`'s incarnation `incarnation` has been reported";
/// `last_ms`: the send time (the down server's clock) of its last beat the
/// reporter heard, which tells this down from an earlier one of the same
/// incarnation (a server back from a cut, then down again).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReportAdvert {
    pub server: String,
    pub incarnation: u64,
    #[serde(default)]
    pub last_ms: u64,
}

impl ReportAdvert {
    /// Whether this report covers a down of the same server and
    /// incarnation whose last beat heard here was sent at `last_ms`: the
    /// reporter may have missed beats for up to a timeout before it gave
    /// up, no more, or the server came back in between.
    pub fn covers(&self, server: &str, incarnation: u64, last_ms: u64, timeout_ms: u64) -> bool {
        self.server == server
            && self.incarnation == incarnation
            && self.last_ms.saturating_add(timeout_ms) >= last_ms
    }
}
