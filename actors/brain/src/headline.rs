//! The status page's headline: one state of the cluster as this server
//! sees it, shown as the page's colour and its favicon, with a notice when
//! it changes (the Linux counterpart of a notification-area icon and its
//! balloon). Decided here, from the status the coordinator publishes, so
//! that every viewer sees the same word and the rules are unit-tested.

use serde::Serialize;

use crate::detection::MonitorState;
use crate::state::{ClusterStatus, PathState, RunState, ServerState};

/// How long "resumed" stays up after a suspend ends, before the usual
/// state comes back: long enough for a viewer to notice it.
pub const RESUMED_FOR_MS: u64 = 10_000;

/// The headline states, most urgent first where several apply (see
/// [`headline`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No daemon answers (the page decides it alone, when its live stream
    /// is gone).
    NoService,
    /// The daemon runs, its cluster service has not published a status yet.
    ServiceStarting,
    /// The cluster service is stopping on this server.
    ServiceStopping,
    /// The cluster service has stopped on this server; the daemon exits.
    Stopped,
    /// A server came back after being declared down and waits to be
    /// recovered.
    Isolated,
    /// Something failed or is down: a server, a path, a group, a
    /// resource, a monitor, quorum.
    Trouble,
    /// Some server has not been heard since this daemon started.
    Forming,
    /// Automatic recovery and failover are suspended.
    Suspended,
    /// A suspend has just ended ([`RESUMED_FOR_MS`]).
    Resumed,
    /// All is as it should be.
    Normal,
}

/// The colour class the page paints the state in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tone {
    /// Nothing runs (grey).
    Idle,
    /// Going somewhere (blue).
    Busy,
    /// As it should be (green).
    Good,
    /// On purpose, but not everything works by itself (amber).
    Held,
    /// Someone should look (red).
    Bad,
}

impl State {
    /// Every state, for the page's table and the documentation.
    pub const ALL: [State; 10] = [
        State::NoService,
        State::ServiceStarting,
        State::ServiceStopping,
        State::Stopped,
        State::Isolated,
        State::Trouble,
        State::Forming,
        State::Suspended,
        State::Resumed,
        State::Normal,
    ];

    /// The headline's words.
    pub fn title(self) -> &'static str {
        match self {
            State::NoService => "Service not running",
            State::ServiceStarting => "Service starting",
            State::ServiceStopping => "Service stopping",
            State::Stopped => "Stopped",
            State::Isolated => "Server isolated",
            State::Trouble => "Needs attention",
            State::Forming => "Cluster forming",
            State::Suspended => "Recovery suspended",
            State::Resumed => "Recovery resumed",
            State::Normal => "All well",
        }
    }

    pub fn tone(self) -> Tone {
        match self {
            State::NoService | State::Stopped => Tone::Idle,
            State::ServiceStarting | State::ServiceStopping | State::Forming => Tone::Busy,
            State::Isolated | State::Trouble => Tone::Bad,
            State::Suspended => Tone::Held,
            State::Resumed | State::Normal => Tone::Good,
        }
    }

    /// The state's name in the page and its JSON (`trouble`).
    pub fn key(self) -> &'static str {
        match self {
            State::NoService => "no-service",
            State::ServiceStarting => "service-starting",
            State::ServiceStopping => "service-stopping",
            State::Stopped => "stopped",
            State::Isolated => "isolated",
            State::Trouble => "trouble",
            State::Forming => "forming",
            State::Suspended => "suspended",
            State::Resumed => "resumed",
            State::Normal => "normal",
        }
    }
}

/// As its [`State::key`].
impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

/// What the page shows: the state and what it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Headline {
    pub state: State,
    pub title: &'static str,
    pub tone: Tone,
    /// One sentence: what is wrong, or what to do.
    pub detail: String,
}

impl Headline {
    fn new(state: State, detail: impl Into<String>) -> Headline {
        Headline {
            state,
            title: state.title(),
            tone: state.tone(),
            detail: detail.into(),
        }
    }
}

/// What the page's feed knows of the daemon.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// Nothing answers.
    NoService,
    /// Started, no status published yet.
    Starting,
    /// The status the coordinator published.
    Running(&'a ClusterStatus),
    /// The cluster service has stopped on this server.
    Stopped,
}

/// The headline for what was seen; `resumed`: a suspend ended a moment
/// ago. Where several states apply, the first of [`State::ALL`] wins
/// (stopping before trouble, trouble before a suspend).
pub fn headline(seen: Seen<'_>, resumed: bool) -> Headline {
    let s = match seen {
        Seen::NoService => {
            return Headline::new(
                State::NoService,
                "No understudy daemon answers for this server.",
            )
        }
        Seen::Starting => {
            return Headline::new(
                State::ServiceStarting,
                "The daemon is starting its cluster service.",
            )
        }
        Seen::Stopped => {
            return Headline::new(
                State::Stopped,
                "The cluster service has stopped on this server.",
            )
        }
        Seen::Running(s) => s,
    };
    if s.stopping {
        return Headline::new(
            State::ServiceStopping,
            format!(
                "The cluster service is stopping on {}: its groups stop or move.",
                s.server
            ),
        );
    }
    let isolated: Vec<&str> = s
        .servers
        .iter()
        .filter(|v| v.state == ServerState::Isolated)
        .map(|v| v.name.as_str())
        .collect();
    if !isolated.is_empty() {
        return Headline::new(
            State::Isolated,
            format!(
                "{} came back after being declared down; recover it to give it groups again.",
                isolated.join(", ")
            ),
        );
    }
    let trouble = troubles(s);
    if !trouble.is_empty() {
        return Headline::new(State::Trouble, format!("{}.", trouble.join("; ")));
    }
    let unheard: Vec<&str> = s
        .servers
        .iter()
        .filter(|v| v.state == ServerState::Unknown)
        .map(|v| v.name.as_str())
        .collect();
    if !unheard.is_empty() {
        return Headline::new(
            State::Forming,
            format!("Not heard from yet: {}.", unheard.join(", ")),
        );
    }
    if s.suspended {
        return Headline::new(
            State::Suspended,
            "Automatic recovery and failover are suspended (cluster resume ends it).",
        );
    }
    if resumed {
        return Headline::new(
            State::Resumed,
            "Automatic recovery and failover work again.",
        );
    }
    Headline::new(
        State::Normal,
        "Every server, path, group, resource and monitor is as it should be.",
    )
}

fn failed(state: RunState) -> bool {
    matches!(state, RunState::OnlineFailure | RunState::OfflineFailure)
}

/// What is wrong, one phrase each, in the status's order.
fn troubles(s: &ClusterStatus) -> Vec<String> {
    let mut out = Vec::new();
    for v in &s.servers {
        match v.state {
            ServerState::Offline => out.push(format!("server {} is down", v.name)),
            ServerState::Online => {
                for p in v.paths.iter().filter(|p| p.state == PathState::Down) {
                    out.push(format!("path {} of {} is down", p.address, v.name));
                }
            }
            ServerState::Unknown | ServerState::Isolated => {}
        }
        if v.config_mismatch {
            out.push(format!("{} runs another configuration", v.name));
        }
    }
    for g in &s.groups {
        if failed(g.state) {
            out.push(format!("group {} is {}", g.name, g.state.as_str()));
        }
        for r in g.resources.iter().filter(|r| failed(r.state)) {
            if !failed(g.state) {
                out.push(format!("resource {} is {}", r.name, r.state.as_str()));
            }
        }
    }
    for m in &s.monitors {
        if m.runs_here && m.state == MonitorState::Error {
            out.push(format!("monitor {} finds an error", m.name));
        }
    }
    if s.partition.as_ref().is_some_and(|p| !p.quorate) {
        out.push(format!("{} has no quorum", s.server));
    }
    out
}

/// The headline over time: remembers a suspend to say "resumed" for a
/// while after it ends.
#[derive(Debug, Clone, Default)]
pub struct Indicator {
    was_suspended: bool,
    resumed_until_ms: Option<u64>,
}

impl Indicator {
    /// The headline at `now_ms` (any monotonic clock).
    pub fn observe(&mut self, now_ms: u64, seen: Seen<'_>) -> Headline {
        if let Seen::Running(s) = seen {
            if self.was_suspended && !s.suspended {
                self.resumed_until_ms = Some(now_ms + RESUMED_FOR_MS);
            }
            if s.suspended {
                self.resumed_until_ms = None;
            }
            self.was_suspended = s.suspended;
        }
        if self.resumed_until_ms.is_some_and(|t| now_ms >= t) {
            self.resumed_until_ms = None;
        }
        headline(seen, self.resumed_until_ms.is_some())
    }

    /// When the headline changes without news ("resumed" ends), if ever.
    pub fn next_change_ms(&self) -> Option<u64> {
        self.resumed_until_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{
        GroupStatus, MonitorStatus, PartitionStatus, PathStatus, ResourceStatus, ServerStatus,
    };

    fn server(name: &str, state: ServerState) -> ServerStatus {
        ServerStatus {
            name: name.into(),
            state,
            local: name == "n1",
            paths: vec![PathStatus {
                address: format!("198.51.100.{}", &name[1..]),
                state: PathState::Up,
                received: 1,
                lost: 0,
            }],
            config_mismatch: false,
            bmc: None,
        }
    }

    /// Two servers, both heard, group `web` Online on n1, monitor `appw`
    /// Normal.
    fn healthy() -> ClusterStatus {
        ClusterStatus {
            cluster: "lab".into(),
            server: "n1".into(),
            pid: 1,
            config_digest: "d".into(),
            stopping: false,
            suspended: false,
            servers: vec![
                server("n1", ServerState::Online),
                server("n2", ServerState::Online),
            ],
            groups: vec![GroupStatus {
                name: "web".into(),
                state: RunState::Online,
                current: Some("n1".into()),
                servers: vec!["n1".into(), "n2".into()],
                resources: vec![ResourceStatus {
                    name: "app".into(),
                    kind: "exec".into(),
                    state: RunState::Online,
                    pid: None,
                    last_error: None,
                }],
            }],
            monitors: vec![MonitorStatus {
                name: "appw".into(),
                kind: "pid".into(),
                state: MonitorState::Normal,
                runs_here: true,
                target: Some("app".into()),
                recovery_target: "resource app".into(),
                reactivations: 0,
                failovers: 0,
                last_error: None,
            }],
            malformed_requests: 0,
            rejected: Default::default(),
            partition: None,
            restart_pending: vec![],
            traps: vec![],
        }
    }

    fn of(s: &ClusterStatus) -> Headline {
        headline(Seen::Running(s), false)
    }

    #[test]
    fn service_states_come_from_the_daemon_not_the_status() {
        assert_eq!(headline(Seen::NoService, false).state, State::NoService);
        assert_eq!(
            headline(Seen::Starting, false).state,
            State::ServiceStarting
        );
        assert_eq!(headline(Seen::Stopped, true).state, State::Stopped);
        assert_eq!(headline(Seen::NoService, false).tone, Tone::Idle);
    }

    #[test]
    fn operating_normally() {
        let h = of(&healthy());
        assert_eq!(h.state, State::Normal);
        assert_eq!((h.title, h.tone), ("All well", Tone::Good));
    }

    #[test]
    fn stopping_wins_over_everything_it_causes() {
        let mut s = healthy();
        s.stopping = true;
        s.groups[0].state = RunState::OfflinePending;
        s.servers[1].state = ServerState::Offline;
        let h = of(&s);
        assert_eq!(h.state, State::ServiceStopping);
        assert!(h.detail.contains("n1"), "{h:?}");
    }

    #[test]
    fn an_unheard_server_is_a_cluster_forming() {
        let mut s = healthy();
        s.servers[1].state = ServerState::Unknown;
        let h = of(&s);
        assert_eq!(h.state, State::Forming);
        assert_eq!(h.detail, "Not heard from yet: n2.");
    }

    #[test]
    fn failures_and_downs_are_trouble_naming_each() {
        type Change = Box<dyn Fn(&mut ClusterStatus)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|s| s.servers[1].state = ServerState::Offline),
                "server n2 is down",
            ),
            (
                Box::new(|s| s.servers[1].paths[0].state = PathState::Down),
                "path 198.51.100.2 of n2 is down",
            ),
            (
                Box::new(|s| s.servers[1].config_mismatch = true),
                "n2 runs another configuration",
            ),
            (
                Box::new(|s| s.groups[0].state = RunState::OnlineFailure),
                "group web is Online Failure",
            ),
            (
                Box::new(|s| s.groups[0].resources[0].state = RunState::OfflineFailure),
                "resource app is Offline Failure",
            ),
            (
                Box::new(|s| s.monitors[0].state = MonitorState::Error),
                "monitor appw finds an error",
            ),
            (
                Box::new(|s| {
                    s.partition = Some(Box::new(PartitionStatus {
                        methods: vec!["Majority".into()],
                        quorate: false,
                        lease_ms_left: None,
                        silent: vec![],
                        witness: None,
                        targets: vec![],
                    }))
                }),
                "n1 has no quorum",
            ),
        ];
        for (change, words) in cases {
            let mut s = healthy();
            change(&mut s);
            let h = of(&s);
            assert_eq!(h.state, State::Trouble, "{words}");
            assert_eq!(h.tone, Tone::Bad);
            assert_eq!(h.detail, format!("{words}."));
        }
        // A monitor that does not run here is nobody's trouble here.
        let mut s = healthy();
        s.monitors[0].state = MonitorState::Error;
        s.monitors[0].runs_here = false;
        assert_eq!(of(&s).state, State::Normal);
    }

    #[test]
    fn an_isolated_server_comes_before_other_trouble() {
        let mut s = healthy();
        s.servers[1].state = ServerState::Isolated;
        s.groups[0].state = RunState::OnlineFailure;
        let h = of(&s);
        assert_eq!(h.state, State::Isolated);
        assert!(h.detail.starts_with("n2 came back"), "{h:?}");
    }

    #[test]
    fn suspended_then_resumed_for_a_while() {
        let mut ind = Indicator::default();
        let mut s = healthy();
        assert_eq!(ind.observe(0, Seen::Running(&s)).state, State::Normal);
        s.suspended = true;
        let h = ind.observe(1_000, Seen::Running(&s));
        assert_eq!((h.state, h.tone), (State::Suspended, Tone::Held));
        assert_eq!(ind.next_change_ms(), None);
        s.suspended = false;
        assert_eq!(ind.observe(2_000, Seen::Running(&s)).state, State::Resumed);
        assert_eq!(ind.next_change_ms(), Some(2_000 + RESUMED_FOR_MS));
        assert_eq!(ind.observe(5_000, Seen::Running(&s)).state, State::Resumed);
        // Trouble is not hidden by the good news.
        let mut down = s.clone();
        down.servers[1].state = ServerState::Offline;
        assert_eq!(
            ind.observe(6_000, Seen::Running(&down)).state,
            State::Trouble
        );
        assert_eq!(
            ind.observe(2_000 + RESUMED_FOR_MS, Seen::Running(&s)).state,
            State::Normal
        );
        assert_eq!(ind.next_change_ms(), None);
    }

    #[test]
    fn trouble_while_suspended_is_trouble() {
        let mut s = healthy();
        s.suspended = true;
        s.monitors[0].state = MonitorState::Error;
        assert_eq!(of(&s).state, State::Trouble);
    }

    #[test]
    fn every_state_has_its_own_words_and_key() {
        let titles: std::collections::BTreeSet<_> = State::ALL.iter().map(|s| s.title()).collect();
        let keys: std::collections::BTreeSet<_> = State::ALL.iter().map(|s| s.key()).collect();
        assert_eq!(titles.len(), State::ALL.len());
        assert_eq!(keys.len(), State::ALL.len());
    }
}
