//! Prometheus metrics (`metrics.listen`), rendered with prometheus-client
//! as OpenMetrics text.
//!
//! Two kinds of facts, and no round trip to an actor on a scrape:
//!
//! - states (servers, heartbeat paths, groups, resources, monitors) and the
//!   counters the status already keeps (rejected cluster packets, heartbeats
//!   received and lost, SNMP trap datagrams) are read from the status the
//!   coordinator publishes on change ([`StatusFeed`]), at scrape time, by
//!   [`StatusCollector`];
//! - events are counted where they happen, in [`Metrics`] (atomics behind
//!   an `Arc`, shared by every thread): alerts by module and id (the alert
//!   log's thread), the recovery ladder's steps (the coordinator), the
//!   group ladder's retries and final actions (the group actors), check
//!   lateness (the monitor actors), heartbeat send lateness (the heartbeat
//!   thread), the mail spool's depth (the mail notifier).
//!
//! Alert messages, scripts' output and settings are never exported: only
//! names of the configuration's own objects, states, ids and numbers.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::model::catalog::Alert;
use crate::model::detection::MonitorState;
use crate::model::state::{ClusterStatus, PathState, RunState, ServerState};

/// The status as the coordinator last published it; `None` until it has
/// started.
pub type StatusFeed = watch::Receiver<Option<Arc<ClusterStatus>>>;

/// What the text exposition is sent as.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bounds of the lateness histograms, in seconds: checks and beats start
/// within microseconds on an idle machine, and a blocked thread shows as
/// whole seconds.
const LATENESS_BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

fn lateness_histogram() -> Histogram {
    Histogram::new(LATENESS_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    module: String,
    id: String,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MonitorLabels {
    monitor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceOpLabels {
    group: String,
    resource: String,
    /// `activation` or `deactivation`.
    operation: String,
}

/// The event counters, histograms and gauges of one daemon. Cheap to
/// clone; every update is an atomic add (or a short lock for a histogram
/// or a new label set).
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    alerts: Family<AlertLabels, Counter>,
    reactivations: Family<MonitorLabels, Counter>,
    monitor_failovers: Family<MonitorLabels, Counter>,
    monitor_final_actions: Family<MonitorLabels, Counter>,
    group_failovers: Family<GroupLabels, Counter>,
    resource_retries: Family<ResourceOpLabels, Counter>,
    resource_final_actions: Family<ResourceOpLabels, Counter>,
    check_lateness: Family<MonitorLabels, Histogram, fn() -> Histogram>,
    beat_lateness: Histogram,
    mail_spool: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Arc::new(Inner {
                alerts: Family::default(),
                reactivations: Family::default(),
                monitor_failovers: Family::default(),
                monitor_final_actions: Family::default(),
                group_failovers: Family::default(),
                resource_retries: Family::default(),
                resource_final_actions: Family::default(),
                check_lateness: Family::new_with_constructor(lateness_histogram),
                beat_lateness: lateness_histogram(),
                mail_spool: Gauge::default(),
            }),
        }
    }
}

fn monitor(name: &str) -> MonitorLabels {
    MonitorLabels {
        monitor: name.to_string(),
    }
}

fn resource_op(group: &str, resource: &str, operation: &str) -> ResourceOpLabels {
    ResourceOpLabels {
        group: group.to_string(),
        resource: resource.to_string(),
        operation: operation.to_string(),
    }
}

impl Metrics {
    /// An alert was recorded in this server's alert log.
    pub fn alert(&self, alert: &Alert) {
        self.inner
            .alerts
            .get_or_create(&AlertLabels {
                module: alert.module.clone(),
                id: alert.event_id.to_string(),
                level: alert.level.as_str().to_string(),
            })
            .inc();
    }

    /// The recovery ladder of `name` restarts its target (a reactivation).
    pub fn reactivation(&self, name: &str) {
        self.inner.reactivations.get_or_create(&monitor(name)).inc();
    }

    /// The recovery ladder of `name` moves its target's group away.
    pub fn monitor_failover(&self, name: &str) {
        self.inner
            .monitor_failovers
            .get_or_create(&monitor(name))
            .inc();
    }

    /// The recovery ladder of `name` takes its final action.
    pub fn monitor_final_action(&self, name: &str) {
        self.inner
            .monitor_final_actions
            .get_or_create(&monitor(name))
            .inc();
    }

    /// `group` starts here because of a failover (whatever caused it: a
    /// monitor, the group ladder, a dead or departing server).
    pub fn group_failover(&self, group: &str) {
        self.inner
            .group_failovers
            .get_or_create(&GroupLabels {
                group: group.to_string(),
            })
            .inc();
    }

    /// The group ladder tries a resource again (`operation`: `activation`
    /// or `deactivation`).
    pub fn resource_retry(&self, group: &str, resource: &str, operation: &str) {
        self.inner
            .resource_retries
            .get_or_create(&resource_op(group, resource, operation))
            .inc();
    }

    /// The group ladder takes a resource's final action.
    pub fn resource_final_action(&self, group: &str, resource: &str, operation: &str) {
        self.inner
            .resource_final_actions
            .get_or_create(&resource_op(group, resource, operation))
            .inc();
    }

    /// A check of `name` started `late` after it was due.
    pub fn check_late(&self, name: &str, late: Duration) {
        self.check_lateness_of(name).observe(late.as_secs_f64());
    }

    /// The lateness histogram of one monitor: a handle to the same series,
    /// for a monitor actor to keep instead of looking it up at each check.
    pub fn check_lateness_of(&self, name: &str) -> Histogram {
        self.inner
            .check_lateness
            .get_or_create(&monitor(name))
            .clone()
    }

    /// A heartbeat left `late` after it was due.
    pub fn beat_late(&self, late: Duration) {
        self.inner.beat_lateness.observe(late.as_secs_f64());
    }

    /// Mails not delivered yet (spooled, or being written to the spool).
    pub fn set_mail_spool(&self, mails: usize) {
        self.inner.mail_spool.set(mails as i64);
    }

    /// Every metric: these counters and the published status, read at each
    /// encoding.
    pub fn registry(&self, status: StatusFeed) -> Registry {
        let i = &self.inner;
        let mut r = Registry::default();
        r.register(
            "understudy_alerts",
            "Alerts recorded in this server's alert log, by module and event id",
            i.alerts.clone(),
        );
        r.register(
            "understudy_monitor_reactivations",
            "Reactivations of its recovery target started by a monitor's recovery ladder on this server",
            i.reactivations.clone(),
        );
        r.register(
            "understudy_monitor_failovers",
            "Failovers of its recovery target's group started by a monitor's recovery ladder on this server",
            i.monitor_failovers.clone(),
        );
        r.register(
            "understudy_monitor_final_actions",
            "Final actions taken by a monitor's recovery ladder on this server",
            i.monitor_final_actions.clone(),
        );
        r.register(
            "understudy_group_failovers",
            "Starts of a group on this server because of a failover",
            i.group_failovers.clone(),
        );
        r.register(
            "understudy_resource_retries",
            "Retries of a group resource's activation or deactivation by the group's failure ladder",
            i.resource_retries.clone(),
        );
        r.register(
            "understudy_resource_final_actions",
            "Final actions taken by the group's failure ladder for a resource",
            i.resource_final_actions.clone(),
        );
        r.register_with_unit(
            "understudy_monitor_check_lateness",
            "How late monitor checks started (actual minus scheduled start)",
            prometheus_client::registry::Unit::Seconds,
            i.check_lateness.clone(),
        );
        r.register_with_unit(
            "understudy_heartbeat_send_lateness",
            "How late heartbeats left (the heartbeat thread's send jitter)",
            prometheus_client::registry::Unit::Seconds,
            i.beat_lateness.clone(),
        );
        r.register(
            "understudy_mail_spool_mails",
            "Report mails not delivered yet (in the mail spool)",
            i.mail_spool.clone(),
        );
        r.register_collector(Box::new(StatusCollector { status }));
        r
    }
}

/// The registry as OpenMetrics text.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The published status as state gauges (one series per state, 1 for the
/// state it is in: Prometheus's way with enumerations) and the counters it
/// keeps.
#[derive(Debug)]
pub struct StatusCollector {
    status: StatusFeed,
}

type Labels = Vec<(&'static str, String)>;

/// One metric family of the collector: its samples, then written at once.
struct FamilyOut {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<(Labels, u64)>,
}

impl FamilyOut {
    fn new(name: &'static str, help: &'static str, kind: MetricType) -> Self {
        FamilyOut {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Labels, value: u64) {
        self.samples.push((labels, value));
    }

    /// One series per state of `all`, 1 for `current`.
    fn states<S: Copy + PartialEq>(
        &mut self,
        labels: Labels,
        all: &[S],
        current: S,
        spell: fn(S) -> &'static str,
    ) {
        for s in all {
            let mut l = labels.clone();
            l.push(("state", spell(*s).to_string()));
            self.add(l, u64::from(*s == current));
        }
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Ended with a full stop, as the registry does with its own.
        let help = format!("{}.", self.help);
        let mut metric = encoder.encode_descriptor(self.name, &help, None, self.kind)?;
        // One sample without labels: `name 0`, not `name{} 0`.
        if let [(labels, value)] = self.samples.as_slice() {
            if labels.is_empty() && !matches!(self.kind, MetricType::Info) {
                return self.encode_value(metric, *value);
            }
        }
        for (labels, value) in &self.samples {
            if let MetricType::Info = self.kind {
                metric.encode_info(labels)?;
                continue;
            }
            let family = metric.encode_family(labels)?;
            self.encode_value(family, *value)?;
        }
        Ok(())
    }

    fn encode_value(&self, metric: MetricEncoder, value: u64) -> Result<(), std::fmt::Error> {
        match self.kind {
            MetricType::Counter => ConstCounter::new(value).encode(metric),
            _ => ConstGauge::new(value as i64).encode(metric),
        }
    }
}

const SERVER_STATES: [ServerState; 4] = [
    ServerState::Online,
    ServerState::Offline,
    ServerState::Unknown,
    ServerState::Isolated,
];
const PATH_STATES: [PathState; 3] = [PathState::Up, PathState::Down, PathState::Unknown];
const RUN_STATES: [RunState; 6] = [
    RunState::Offline,
    RunState::OnlinePending,
    RunState::Online,
    RunState::OfflinePending,
    RunState::OnlineFailure,
    RunState::OfflineFailure,
];
const MONITOR_STATES: [MonitorState; 6] = [
    MonitorState::Pending,
    MonitorState::Normal,
    MonitorState::Warning,
    MonitorState::Error,
    MonitorState::Suspended,
    MonitorState::Offline,
];

fn path_state(s: PathState) -> &'static str {
    match s {
        PathState::Up => "Up",
        PathState::Down => "Down",
        PathState::Unknown => "Unknown",
    }
}

/// The families of one status.
fn families(s: &ClusterStatus) -> Vec<FamilyOut> {
    use MetricType::{Counter as C, Gauge as G};
    // An info metric: the sample is `understudy_cluster_info`.
    let mut info = FamilyOut::new(
        "understudy_cluster",
        "The cluster, this server, the version and the configuration in force",
        MetricType::Info,
    );
    info.add(
        vec![
            ("cluster", s.cluster.clone()),
            ("server", s.server.clone()),
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("config_digest", s.config_digest.clone()),
        ],
        1,
    );
    let mut suspended = FamilyOut::new(
        "understudy_cluster_suspended",
        "1 while automatic recovery and failover are suspended (cluster suspend)",
        G,
    );
    suspended.add(vec![], u64::from(s.suspended));
    let mut stopping = FamilyOut::new(
        "understudy_cluster_stopping",
        "1 once the cluster service has begun to stop on this server",
        G,
    );
    stopping.add(vec![], u64::from(s.stopping));

    let mut servers = FamilyOut::new(
        "understudy_server_state",
        "State of each server as this one sees it: 1 for its state",
        G,
    );
    let mut mismatch = FamilyOut::new(
        "understudy_server_config_mismatch",
        "1 when a server's heartbeats carry another configuration digest (it gets no groups)",
        G,
    );
    let mut paths = FamilyOut::new(
        "understudy_heartbeat_path_state",
        "State of each heartbeat path (for this server: its own interface's link): 1 for its state",
        G,
    );
    let mut received = FamilyOut::new(
        "understudy_heartbeats_received",
        "Heartbeats accepted from a server on a path",
        C,
    );
    let mut lost = FamilyOut::new(
        "understudy_heartbeats_lost",
        "Heartbeats from a server that never arrived on a path (gaps in the sequence)",
        C,
    );
    for v in &s.servers {
        let server = || vec![("server", v.name.clone())];
        servers.states(server(), &SERVER_STATES, v.state, ServerState::as_str);
        mismatch.add(server(), u64::from(v.config_mismatch));
        for p in &v.paths {
            let mut l = server();
            l.push(("address", p.address.clone()));
            paths.states(l.clone(), &PATH_STATES, p.state, path_state);
            if !v.local {
                received.add(l.clone(), p.received);
                lost.add(l, p.lost);
            }
        }
    }

    let mut groups = FamilyOut::new(
        "understudy_group_state",
        "State of each failover group: 1 for its state",
        G,
    );
    let mut group_server = FamilyOut::new(
        "understudy_group_active_server",
        "1 for the server a group is active on (or starting, or stopping), 0 for the other servers of its order",
        G,
    );
    let mut resources = FamilyOut::new(
        "understudy_resource_state",
        "State of each group resource (of a group active elsewhere: the group's state): 1 for its state",
        G,
    );
    for g in &s.groups {
        let group = || vec![("group", g.name.clone())];
        groups.states(group(), &RUN_STATES, g.state, RunState::as_str);
        let on = g.current.as_deref().filter(|_| g.state.may_be_active());
        let mut order = g.servers.clone();
        if let Some(c) = on {
            if !order.iter().any(|s| s == c) {
                order.push(c.to_string());
            }
        }
        for server in order {
            let value = u64::from(on == Some(server.as_str()));
            let mut l = group();
            l.push(("server", server));
            group_server.add(l, value);
        }
        for r in &g.resources {
            let mut l = group();
            l.push(("resource", r.name.clone()));
            l.push(("kind", r.kind.clone()));
            resources.states(l, &RUN_STATES, r.state, RunState::as_str);
        }
    }

    let mut monitors = FamilyOut::new(
        "understudy_monitor_state",
        "State of each monitor resource on this server: 1 for its state",
        G,
    );
    for m in &s.monitors {
        let l = vec![("monitor", m.name.clone()), ("kind", m.kind.clone())];
        monitors.states(l, &MONITOR_STATES, m.state, MonitorState::as_str);
    }

    let mut rejected = FamilyOut::new(
        "understudy_rejected_packets",
        "Heartbeat packets and peer requests dropped, by reason",
        C,
    );
    for (reason, n) in [
        ("garbled", s.rejected.garbled),
        ("forged", s.rejected.forged),
        ("replayed", s.rejected.replayed),
        ("unknown_version", s.rejected.unknown_version),
    ] {
        rejected.add(vec![("reason", reason.to_string())], n);
    }
    let mut malformed = FamilyOut::new(
        "understudy_control_malformed_requests",
        "Garbled or oversized requests dropped by the control socket",
        C,
    );
    malformed.add(vec![], s.malformed_requests);

    let mut traps = FamilyOut::new(
        "understudy_snmp_trap_datagrams",
        "Datagrams received by the SNMP trap receivers of BMCNOTICE monitors, by outcome",
        C,
    );
    for t in &s.traps {
        for (outcome, n) in [
            ("delivered", t.traps),
            ("wrong_community", t.wrong_community),
            ("garbled", t.garbled),
            ("oversized", t.oversized),
            ("other", t.other),
        ] {
            traps.add(
                vec![
                    ("address", t.address.clone()),
                    ("outcome", outcome.to_string()),
                ],
                n,
            );
        }
    }

    let mut out = vec![
        info,
        suspended,
        stopping,
        servers,
        mismatch,
        paths,
        received,
        lost,
        groups,
        group_server,
        resources,
        monitors,
        rejected,
        malformed,
        traps,
    ];
    if let Some(p) = &s.partition {
        let mut quorate = FamilyOut::new(
            "understudy_partition_quorate",
            "1 while this server has quorum (network-partition resolution)",
            G,
        );
        quorate.add(vec![], u64::from(p.quorate));
        out.push(quorate);
    }
    out
}

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A clone of the Arc: the coordinator is never held up by a scrape.
        let Some(status) = self.status.borrow().clone() else {
            return Ok(());
        };
        for f in families(&status) {
            f.encode(&mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::Level;
    use crate::model::state::{GroupStatus, ResourceStatus};

    fn status() -> ClusterStatus {
        ClusterStatus {
            cluster: "c".into(),
            server: "a".into(),
            pid: 1,
            config_digest: "d".into(),
            stopping: false,
            suspended: false,
            servers: vec![],
            groups: vec![GroupStatus {
                name: "web".into(),
                state: RunState::Online,
                current: Some("a".into()),
                servers: vec!["a".into(), "b".into()],
                resources: vec![ResourceStatus {
                    name: "app".into(),
                    kind: "exec".into(),
                    state: RunState::Online,
                    pid: None,
                    last_error: Some("secret".into()),
                }],
            }],
            monitors: vec![],
            malformed_requests: 0,
            rejected: Default::default(),
            partition: None,
            restart_pending: vec![],
            traps: vec![],
        }
    }

    #[test]
    fn states_counters_and_alerts_render_as_openmetrics() {
        let (tx, rx) = watch::channel(None);
        let m = Metrics::default();
        let registry = m.registry(rx);
        // Before the coordinator publishes: the counters alone.
        assert!(!render(&registry).contains("understudy_group_state"));
        tx.send_replace(Some(Arc::new(status())));
        m.alert(&Alert {
            time: "t".into(),
            server: "a".into(),
            module: "rm".into(),
            event_id: 9,
            level: Level::Error,
            message: "a message that stays in the alert log".into(),
        });
        m.reactivation("httpdw");
        m.check_late("httpdw", Duration::from_micros(300));
        let text = render(&registry);
        for line in [
            "understudy_group_state{group=\"web\",state=\"Online\"} 1",
            "understudy_group_state{group=\"web\",state=\"Offline\"} 0",
            "understudy_group_active_server{group=\"web\",server=\"a\"} 1",
            "understudy_group_active_server{group=\"web\",server=\"b\"} 0",
            "understudy_resource_state{group=\"web\",resource=\"app\",kind=\"exec\",state=\"Online\"} 1",
            "understudy_alerts_total{module=\"rm\",id=\"9\",level=\"ERROR\"} 1",
            "understudy_monitor_reactivations_total{monitor=\"httpdw\"} 1",
            "understudy_monitor_check_lateness_seconds_bucket{le=\"0.0005\",monitor=\"httpdw\"} 1",
            "understudy_rejected_packets_total{reason=\"forged\"} 0",
            "# TYPE understudy_mail_spool_mails gauge",
            "\nunderstudy_cluster_suspended 0\n",
            "# HELP understudy_group_state State of each failover group: 1 for its state.\n",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(
            !text.contains("secret") && !text.contains("message"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
