//! The configuration schema (one RON file for the whole cluster) and its loader.
//!
//! Loading never stops at the first semantic problem: syntax and type errors
//! are reported as `FILE:line:col: message` (RON cannot be read past them),
//! then every unknown field and every semantic problem is collected with its
//! field path (see [`super::validate`]).

use serde::{Deserialize, Serialize};

use super::problems::{Problem, Problems};
use crate::resource::ResourceKind;

/// Default start/stop script timeout of an exec resource, seconds.
pub const DEFAULT_SCRIPT_TIMEOUT: u32 = 1800;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Cluster")]
pub struct ClusterConfig {
    /// Cluster name, shown in status and alerts.
    pub name: String,
    /// Servers in priority order: the first has the highest priority.
    pub servers: Vec<ServerConfig>,
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    /// Monitor resources.
    #[serde(default)]
    pub monitors: Vec<super::monitoring::MonitorConfig>,
    /// Commands run for the final actions "shut down OS" / "reboot OS".
    #[serde(default)]
    pub os_actions: OsActions,
    /// Who may use the control socket.
    #[serde(default)]
    pub control: ControlConfig,
    /// Heartbeats and requests between servers.
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    /// What the guardian (the daemon's parent process) does when the daemon
    /// dies without stopping the cluster service.
    #[serde(default)]
    pub guardian: GuardianConfig,
    /// Where alerts go besides the alert log.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Network-partition resolution; absent: none (both sides of a cut
    /// run the groups).
    #[serde(default)]
    pub partition: Option<crate::partition::PartitionConfig>,
    /// How a silent server is stopped before its groups are taken over;
    /// absent: it is not.
    #[serde(default)]
    pub forced_stop: Option<crate::forced_stop::ForcedStopConfig>,
    /// Prometheus metrics over HTTP; absent: none. (Left out of the
    /// canonical form when absent, so that configurations without it keep
    /// their digest.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<crate::metrics::MetricsConfig>,
    /// The status page over HTTP; absent: none. (Left out of the
    /// canonical form when absent, like `metrics`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<crate::web::WebConfig>,
}

/// The alert service: notifiers and per-kind routing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Alerts")]
pub struct AlertsConfig {
    /// Mail reports; absent: no mail.
    #[serde(default)]
    pub mail: Option<crate::notify::mail::MailConfig>,
    /// Syslog notifier; absent: no syslog.
    #[serde(default)]
    pub syslog: Option<crate::notify::syslog::SyslogConfig>,
    /// Network warning lamps, one per server.
    #[serde(default)]
    pub lamps: Option<crate::notify::lamp::LampConfig>,
    /// SNMP trap notifier; absent: no traps. (Left out of the canonical
    /// form when absent, so that configurations without it keep their
    /// digest.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmp: Option<crate::notify::snmp::SnmpConfig>,
    /// Overrides of the default destinations, per module and event id.
    #[serde(default)]
    pub routes: Vec<super::routing::AlertRoute>,
}

/// Timing, ports and key of the LAN heartbeats and of the peer link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Heartbeat")]
pub struct HeartbeatConfig {
    /// Milliseconds between two heartbeats on every path (50-60000).
    #[serde(default = "default_hb_interval")]
    pub interval_ms: u32,
    /// A path is down after this many milliseconds of silence; a server is
    /// down when every path to it is (200-3600000, at least twice the interval).
    #[serde(default = "default_hb_timeout")]
    pub timeout_ms: u32,
    /// UDP port of the heartbeats, on every interconnect address.
    #[serde(default = "default_hb_port")]
    pub port: u16,
    /// TCP port of the peer link (requests between servers).
    #[serde(default = "default_peer_port")]
    pub peer_port: u16,
    /// Cluster key file written by `understudy keygen` (mode 0600 or 0400).
    /// Required when the cluster has more than one server.
    #[serde(default)]
    pub key_file: Option<String>,
    /// At start, how long to wait for every other server before groups with
    /// startup attribute Auto start on the servers that are up (0-3600 s).
    #[serde(default = "default_startup_wait")]
    pub startup_wait_secs: u32,
    /// A server that was declared down and comes back: Auto takes it back
    /// at once, Manual keeps it out until `understudy server recover NAME`.
    #[serde(default)]
    pub recovery: ServerRecovery,
    /// Lock the daemon's memory (mlockall) and run the heartbeat thread
    /// with real-time priority (SCHED_RR 10), as corosync does, so that
    /// paging or a busy machine cannot delay the beats. Needs root.
    #[serde(default)]
    pub realtime: bool,
}

fn default_hb_interval() -> u32 {
    500
}
fn default_hb_timeout() -> u32 {
    5000
}
fn default_hb_port() -> u16 {
    29170
}
fn default_peer_port() -> u16 {
    29171
}
fn default_startup_wait() -> u32 {
    60
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval_ms: default_hb_interval(),
            timeout_ms: default_hb_timeout(),
            port: default_hb_port(),
            peer_port: default_peer_port(),
            key_file: None,
            startup_wait_secs: default_startup_wait(),
            realtime: false,
            recovery: ServerRecovery::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ServerRecovery {
    /// A returning server takes part again as soon as it is heard.
    #[default]
    Auto,
    /// A returning server stays out until an operator recovers it.
    Manual,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename = "Guardian")]
pub struct GuardianConfig {
    #[serde(default)]
    pub action: GuardianAction,
    /// A watchdog device the guardian keeps alive while the daemon holds
    /// groups under a partition lease (see docs/cluster.md, "Network
    /// partitions"). Absent: the guardian alone.
    #[serde(default)]
    pub watchdog: Option<crate::watchdog::WatchdogConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GuardianAction {
    /// Remove the server's floating IPs and stop its resources' process groups.
    #[default]
    ReleaseResources,
    /// Release as above, then run `os_actions.shutdown`.
    ShutdownOs,
    /// Release as above, then run `os_actions.reboot`.
    RebootOs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Server")]
pub struct ServerConfig {
    pub name: String,
    /// Interconnect addresses of this server (dedicated interconnect first,
    /// then public LAN). Used by LAN heartbeats once there are several servers.
    #[serde(default)]
    pub interconnects: Vec<String>,
    /// Its BMC (IPMI over LAN): a heartbeat path of its own, polled by the
    /// other servers, and the target of the forced stop `Bmc`. (Left out
    /// of the canonical form when absent, so that configurations without
    /// it keep their digest.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmc: Option<crate::bmc::BmcConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StartupAttribute {
    /// Started when the cluster starts, on the first available server of its order.
    #[default]
    Auto,
    /// Started only by an operator.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FailbackAttribute {
    /// Stays where it runs until an operator moves it.
    #[default]
    Manual,
    /// Returns to the highest-priority server when that server comes back.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Group")]
pub struct GroupConfig {
    pub name: String,
    /// Servers that may run the group, in failover order. Absent: every
    /// server, in server priority order.
    #[serde(default)]
    pub servers: Option<Vec<String>>,
    #[serde(default)]
    pub startup: StartupAttribute,
    #[serde(default)]
    pub failback: FailbackAttribute,
    #[serde(default)]
    pub resources: Vec<ResourceConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename = "Resource")]
pub struct ResourceConfig {
    pub name: String,
    pub kind: ResourceKind,
    /// Resources (of the same group) that must be active before this one.
    /// Absent: the kind's default dependency (an exec resource depends on the
    /// group's floating IPs and disks). `Some([])`: no dependency at all.
    #[serde(default)]
    pub depends: Option<Vec<String>>,
    #[serde(default)]
    pub activation: ActivationRecovery,
    #[serde(default)]
    pub deactivation: DeactivationRecovery,
}

/// What to do after a group resource failed to activate or deactivate and its
/// retries (and, at activation, failovers) are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinalAction {
    /// No operation; go on with the next resource.
    NoOperationNextResource,
    /// No operation; do not go on with the next resource.
    NoOperation,
    /// Stop the group (activation only).
    StopGroup,
    /// Stop the cluster service on this server.
    StopClusterService,
    /// Stop the cluster service, then shut down the OS.
    StopClusterServiceAndShutdownOs,
    /// Stop the cluster service, then reboot the OS.
    StopClusterServiceAndRebootOs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ActivationRecovery")]
pub struct ActivationRecovery {
    /// Activation attempts after the first failure on the same server (0-99).
    #[serde(default)]
    pub retry: u32,
    /// Failovers of the group this resource's failure may cause (0-99).
    #[serde(default = "default_failover_threshold")]
    pub failover_threshold: u32,
    #[serde(default = "default_activation_final")]
    pub final_action: FinalAction,
}

fn default_failover_threshold() -> u32 {
    1
}
fn default_activation_final() -> FinalAction {
    FinalAction::NoOperation
}

impl Default for ActivationRecovery {
    fn default() -> Self {
        ActivationRecovery {
            retry: 0,
            failover_threshold: default_failover_threshold(),
            final_action: default_activation_final(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "DeactivationRecovery")]
pub struct DeactivationRecovery {
    /// Deactivation attempts after the first failure (0-99).
    #[serde(default)]
    pub retry: u32,
    #[serde(default = "default_deactivation_final")]
    pub final_action: FinalAction,
}

fn default_deactivation_final() -> FinalAction {
    FinalAction::StopClusterServiceAndShutdownOs
}

impl Default for DeactivationRecovery {
    fn default() -> Self {
        DeactivationRecovery {
            retry: 0,
            final_action: default_deactivation_final(),
        }
    }
}

/// Commands (argv) for the OS-level final actions. Tests point them at
/// recorders; production keeps the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "OsActions")]
pub struct OsActions {
    #[serde(default = "default_shutdown")]
    pub shutdown: Vec<String>,
    #[serde(default = "default_reboot")]
    pub reboot: Vec<String>,
    /// The action at NP occurrence `Panic`: crash the kernel at once.
    #[serde(default = "default_panic")]
    pub panic: Vec<String>,
}

fn default_shutdown() -> Vec<String> {
    ["shutdown", "-h", "now"].map(String::from).to_vec()
}
fn default_reboot() -> Vec<String> {
    ["shutdown", "-r", "now"].map(String::from).to_vec()
}
fn default_panic() -> Vec<String> {
    ["sh", "-c", "echo c > /proc/sysrq-trigger"]
        .map(String::from)
        .to_vec()
}

impl Default for OsActions {
    fn default() -> Self {
        OsActions {
            shutdown: default_shutdown(),
            reboot: default_reboot(),
            panic: default_panic(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Control")]
pub struct ControlConfig {
    /// Members of this group may run mutating commands (root always may).
    #[serde(default)]
    pub admin_group: Option<String>,
    /// Group owning the control socket (mode 0660): its members may connect
    /// and read status. Absent: root's group.
    #[serde(default)]
    pub socket_group: Option<String>,
}

/// Parses RON text into a config and validates it, collecting every problem.
/// `file` is used only in messages.
pub fn parse(file: &str, text: &str) -> Result<ClusterConfig, Vec<Problem>> {
    let (config, unknown) = read(file, text).map_err(|p| vec![p])?;
    let mut problems = Problems::default();
    for path in unknown {
        problems.push(path, "unknown field (not part of the configuration schema)");
    }
    super::validate::validate(&config, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems.into_vec())
    }
}

/// Reads RON text without semantic validation. Returns the config and the
/// paths of unknown fields; a syntax or type error is `FILE:line:col`.
pub fn read(file: &str, text: &str) -> Result<(ClusterConfig, Vec<String>), Problem> {
    let options = ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let mut de = ron::Deserializer::from_str_with_options(text, &options)
        .map_err(|e| spanned_problem(file, &e))?;
    let mut unknown = Vec::new();
    // The path of the field being read when a type error strikes (a port
    // of 65536, a string for a number), so that the error names it.
    let mut track = serde_path_to_error::Track::new();
    let result: Result<ClusterConfig, _> = serde_ignored::deserialize(
        serde_path_to_error::Deserializer::new(&mut de, &mut track),
        |path| unknown.push(path.to_string()),
    );
    let config = result.map_err(|code| {
        let mut p = spanned_problem(file, &de.span_error(code));
        let field = track.path().to_string();
        if field != "." && !field.is_empty() {
            p.message = format!("{field}: {}", p.message);
        }
        p
    })?;
    de.end()
        .map_err(|code| spanned_problem(file, &de.span_error(code)))?;
    let unknown = unknown.iter().map(|p| readable_path(&config, p)).collect();
    Ok((config, unknown))
}

/// Writes a configuration (or a part of one) as RON that [`parse`] reads
/// back to the same value (used when `alert import` rewrites the file).
pub fn to_ron<T: Serialize>(value: &T) -> Result<String, String> {
    let pretty = ron::ser::PrettyConfig::new()
        .extensions(
            ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES
                | ron::extensions::Extensions::IMPLICIT_SOME,
        )
        .struct_names(true);
    ron::ser::to_string_pretty(value, pretty).map_err(|e| e.to_string())
}

/// The configuration text `text` with its `alerts` section replaced by
/// `alerts`, everything else (comments, layout, order) kept as the operator
/// wrote it; `None` when the text cannot be edited so (then the caller
/// writes the canonical form), as when `text` does not hold `in_force`.
/// The result is checked: it must read back as `in_force` with the new
/// alerts.
pub fn with_alerts(text: &str, in_force: &ClusterConfig, alerts: &AlertsConfig) -> Option<String> {
    if read("edit", text).ok()?.0 != *in_force {
        return None;
    }
    // The section alone: without the file-level attributes `to_ron` puts
    // first (the file has its own, or reads without them).
    let whole = to_ron(alerts).ok()?;
    let value = whole
        .lines()
        .filter(|l| !l.trim_start().starts_with("#!["))
        .collect::<Vec<_>>()
        .join("\n    ");
    let edited = match top_level_field(text, "alerts") {
        Some((start, end)) => format!("{}{value}{}", &text[..start], &text[end..]),
        None => {
            // No section yet: added as the last field.
            let close = top_level_close(text)?;
            let head = text[..close].trim_end();
            let comma = if head.ends_with(',') || head.ends_with('(') {
                ""
            } else {
                ","
            };
            format!("{head}{comma}\n    alerts: {value},\n{}", &text[close..])
        }
    };
    let mut wanted = in_force.clone();
    wanted.alerts = alerts.clone();
    (read("edit", &edited).ok()?.0 == wanted).then_some(edited)
}

/// Walks RON text outside strings, chars and comments: `visit(index, byte,
/// depth)` for every other byte, depth counting brackets opened before it.
fn walk_ron(text: &str, mut visit: impl FnMut(usize, u8, usize) -> bool) {
    let b = text.as_bytes();
    let (mut i, mut depth) = (0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut nest = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        nest += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        nest -= 1;
                        i += 2;
                        if nest == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'r' if matches!(b.get(i + 1), Some(b'#') | Some(b'"'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                // Raw string r#"..."#: ends at '"' and as many '#'.
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    if !visit(i, b[i], depth) {
                        return;
                    }
                    i += 1;
                    continue;
                }
                j += 1;
                while j < b.len() {
                    if b[j] == b'"'
                        && b[j + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|c| **c == b'#')
                            .count()
                            == hashes
                    {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                continue;
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            c => {
                if matches!(c, b')' | b']' | b'}') {
                    depth = depth.saturating_sub(1);
                }
                if !visit(i, c, depth) {
                    return;
                }
                if matches!(c, b'(' | b'[' | b'{') {
                    depth += 1;
                }
            }
        }
        i += 1;
    }
}

/// The byte range of the value of top-level field `name` (from after its
/// colon and blanks to before the comma or closing parenthesis that ends
/// it, blanks trimmed).
fn top_level_field(text: &str, name: &str) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut found: Option<usize> = None; // index just after the colon
    let mut end: Option<usize> = None;
    let mut pending: Option<usize> = None; // index after the name
    walk_ron(text, |i, c, depth| {
        match found {
            None => {
                if depth == 1 && c == b':' {
                    if pending.is_some() {
                        found = Some(i + 1);
                    }
                } else if depth == 1
                    && text[i..].starts_with(name)
                    && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
                    && !b
                        .get(i + name.len())
                        .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'_')
                {
                    pending = Some(i + name.len());
                } else if depth == 1 && !c.is_ascii_whitespace() && pending.is_some_and(|p| i >= p)
                {
                    pending = None;
                }
                true
            }
            // The value ends at the comma after it, or at the parenthesis
            // that closes the whole struct.
            Some(_) if (depth == 1 && c == b',') || (depth == 0 && c == b')') => {
                end = Some(i);
                false
            }
            Some(_) => true,
        }
    });
    let (start, end) = (found?, end?);
    let value = &text[start..end];
    let lead = value.len() - value.trim_start().len();
    let trail = value.len() - value.trim_end().len();
    (start + lead < end - trail).then_some((start + lead, end - trail))
}

/// Index of the parenthesis that closes the top-level struct.
fn top_level_close(text: &str) -> Option<usize> {
    let mut close = None;
    walk_ron(text, |i, c, depth| {
        if c == b')' && depth == 0 {
            close = Some(i);
            return false;
        }
        true
    });
    close
}

/// Reads an alert-settings file (`understudy alert import`): the `alerts`
/// section alone, as strictly as a whole configuration (syntax errors with
/// line:column, unknown fields, every semantic problem with its path, the
/// lamps' servers checked against `cluster`).
pub fn parse_alerts(
    file: &str,
    text: &str,
    cluster: &ClusterConfig,
) -> Result<AlertsConfig, Vec<Problem>> {
    let options = ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let mut de = ron::Deserializer::from_str_with_options(text, &options)
        .map_err(|e| vec![spanned_problem(file, &e)])?;
    let mut unknown = Vec::new();
    let result: Result<AlertsConfig, _> =
        serde_ignored::deserialize(&mut de, |path| unknown.push(path.to_string()));
    let alerts = result.map_err(|code| vec![spanned_problem(file, &de.span_error(code))])?;
    de.end()
        .map_err(|code| vec![spanned_problem(file, &de.span_error(code))])?;
    let mut problems = Problems::default();
    for path in unknown {
        problems.push(
            format!("alerts.{path}"),
            "unknown field (not part of the alert settings)",
        );
    }
    let mut whole = cluster.clone();
    whole.alerts = alerts.clone();
    let mut all = Problems::default();
    super::validate::validate(&whole, &mut all);
    for p in all.into_vec() {
        if p.path.starts_with("alerts") {
            problems.push(p.path, p.message);
        }
    }
    if problems.is_empty() {
        Ok(alerts)
    } else {
        Err(problems.into_vec())
    }
}

fn spanned_problem(file: &str, e: &ron::error::SpannedError) -> Problem {
    Problem {
        path: format!("{}:{}:{}", file, e.span.start.line, e.span.start.col),
        message: e.code.to_string(),
    }
}

/// Turns serde_ignored's `groups.0.resources.1.foo` into
/// `groups[web].resources[app].foo`, using names where the config has them.
fn readable_path(config: &ClusterConfig, raw: &str) -> String {
    let parts: Vec<&str> = raw.split('.').collect();
    let mut out = String::new();
    let mut i = 0;
    let mut group: Option<&GroupConfig> = None;
    let mut in_monitor = false;
    while i < parts.len() {
        let key = parts[i];
        // serde_ignored's mark of an Option's Some: not a field.
        if key == "?" {
            i += 1;
            continue;
        }
        let index = parts.get(i + 1).and_then(|p| p.parse::<usize>().ok());
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(key);
        if let Some(idx) = index {
            let name = match key {
                "servers" if group.is_none() && !in_monitor => {
                    config.servers.get(idx).map(|s| s.name.clone())
                }
                "groups" => {
                    group = config.groups.get(idx);
                    group.map(|g| g.name.clone())
                }
                "resources" => group
                    .and_then(|g| g.resources.get(idx))
                    .map(|r| r.name.clone()),
                "monitors" => {
                    in_monitor = true;
                    config.monitors.get(idx).map(|m| m.name.clone())
                }
                _ => None,
            };
            out.push_str(&format!("[{}]", name.unwrap_or_else(|| idx.to_string())));
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

impl ClusterConfig {
    pub fn group(&self, name: &str) -> Option<&GroupConfig> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// A resource by its (cluster-wide) name, with its group.
    pub fn resource(&self, name: &str) -> Option<(&GroupConfig, &ResourceConfig)> {
        self.groups
            .iter()
            .find_map(|g| g.resources.iter().find(|r| r.name == name).map(|r| (g, r)))
    }

    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// Heartbeat paths: the most interconnects any server lists (validation
    /// makes every server list the same number when there are several).
    pub fn path_count(&self) -> usize {
        self.servers
            .iter()
            .map(|s| s.interconnects.len())
            .max()
            .unwrap_or(0)
    }

    pub fn server_names(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.name.clone()).collect()
    }

    /// The group's servers in failover order (explicit list, or every server).
    pub fn group_servers(&self, group: &GroupConfig) -> Vec<String> {
        group.servers.clone().unwrap_or_else(|| self.server_names())
    }

    /// A stable digest of the configuration (FNV-1a over its canonical RON),
    /// shown in status; heartbeats will carry it to detect mismatched peers.
    pub fn digest(&self) -> String {
        let canonical = ron::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf29ce484222325;
        for b in canonical.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    }
}

/// What a new configuration changes against the running one: which
/// top-level sections differ, and whether it can be applied without a
/// restart (only monitors and alert settings changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub sections: Vec<&'static str>,
}

impl ConfigChange {
    pub fn between(old: &ClusterConfig, new: &ClusterConfig) -> ConfigChange {
        let mut sections = Vec::new();
        let mut differ = |yes: bool, name: &'static str| {
            if yes {
                sections.push(name);
            }
        };
        differ(old.name != new.name, "name");
        differ(old.servers != new.servers, "servers");
        differ(old.groups != new.groups, "groups");
        differ(old.monitors != new.monitors, "monitors");
        differ(old.alerts != new.alerts, "alerts");
        differ(old.heartbeat != new.heartbeat, "heartbeat");
        differ(
            old.os_actions != new.os_actions
                || old.control != new.control
                || old.guardian != new.guardian,
            "os_actions/control/guardian",
        );
        // The listener is bound at start.
        differ(old.metrics != new.metrics, "metrics");
        differ(old.web != new.web, "web");
        ConfigChange { sections }
    }

    /// Applied at once, without restarting the cluster service.
    pub fn online(&self) -> bool {
        !self.sections.is_empty()
            && self
                .sections
                .iter()
                .all(|c| matches!(*c, "monitors" | "alerts"))
    }
}

#[cfg(test)]
mod change_tests {
    use super::*;

    fn two(extra: &str) -> ClusterConfig {
        parse(
            "c.ron",
            &format!(
                r#"Cluster(name: "c", servers: [Server(name: "a", interconnects: ["198.51.100.1"]), Server(name: "b", interconnects: ["198.51.100.2"])], heartbeat: (key_file: "/k"), {extra})"#
            ),
        )
        .expect("valid")
    }

    #[test]
    fn monitor_and_alert_changes_apply_online_others_need_a_restart() {
        let base = two("");
        assert!(ConfigChange::between(&base, &base).sections.is_empty());
        assert!(!ConfigChange::between(&base, &base).online());
        let mut alerts = base.clone();
        alerts.alerts.mail = Some(crate::notify::mail::MailConfig::new(
            "198.51.100.9",
            &["ops@example.com"],
            "t",
        ));
        let c = ConfigChange::between(&base, &alerts);
        assert_eq!(c.sections, vec!["alerts"]);
        assert!(c.online());
        let mut hb = two("");
        hb.heartbeat.timeout_ms += 1000;
        let c = ConfigChange::between(&base, &hb);
        assert_eq!(c.sections, vec!["heartbeat"]);
        assert!(!c.online());
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;

    #[test]
    fn a_written_configuration_reads_back_the_same() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/demo.ron"
        ))
        .unwrap();
        let config = parse("demo.ron", &text).expect("demo.ron is valid");
        let written = to_ron(&config).unwrap();
        let again = parse("written.ron", &written).unwrap_or_else(|p| panic!("{p:?}\n{written}"));
        assert_eq!(again, config);
        let alerts = to_ron(&config.alerts).unwrap();
        assert_eq!(
            parse_alerts("a.ron", &alerts, &config).unwrap(),
            config.alerts
        );
    }
}

#[cfg(test)]
mod alerts_edit {
    use super::*;

    const TEXT: &str = r##"#![enable(implicit_some)]
// The operator's cluster: comments, layout and order are theirs.
Cluster(
    name: "c", /* the name ) , alerts: no */
    servers: [Server(name: "s1", interconnects: ["198.51.100.1"])],
    heartbeat: (key_file: "/etc/understudy/cluster.key"), // key: alerts: (x)
    alerts: (
        routes: [], // none yet
    ),
    groups: [Group(name: "web", startup: Manual, resources: [
        Resource(name: "app", kind: Exec(start: r#"/bin/true"#)),
    ])],
)
"##;

    fn new_alerts() -> AlertsConfig {
        let mut a = AlertsConfig::default();
        a.routes.push(crate::routing::AlertRoute {
            module: "rc".into(),
            event_id: 10,
            mail: Some(true),
            syslog: None,
            snmp: None,
        });
        a
    }

    #[test]
    fn only_the_alerts_section_changes() {
        let in_force = read("t.ron", TEXT).unwrap().0;
        let edited = with_alerts(TEXT, &in_force, &new_alerts()).expect("editable");
        let config = parse("e.ron", &edited).unwrap_or_else(|p| panic!("{p:?}\n{edited}"));
        assert_eq!(config.alerts, new_alerts());
        for kept in [
            "// The operator's cluster: comments, layout and order are theirs.",
            r#"name: "c", /* the name ) , alerts: no */"#,
            "// key: alerts: (x)",
            r##"Resource(name: "app", kind: Exec(start: r#"/bin/true"#)),"##,
        ] {
            assert!(edited.contains(kept), "{kept} lost:\n{edited}");
        }
        assert!(!edited.contains("// none yet"), "{edited}");
        assert!(edited.find("alerts:").unwrap() < edited.find("groups:").unwrap());
    }

    #[test]
    fn a_file_without_alerts_gets_the_section_at_its_end() {
        let text = TEXT.replace(
            "    alerts: (\n        routes: [], // none yet\n    ),\n",
            "",
        );
        assert_eq!(
            read("t.ron", &text).unwrap().0.alerts,
            AlertsConfig::default()
        );
        let in_force = read("t.ron", &text).unwrap().0;
        let edited = with_alerts(&text, &in_force, &new_alerts()).expect("editable");
        let config = parse("e.ron", &edited).unwrap_or_else(|p| panic!("{p:?}\n{edited}"));
        assert_eq!(config.alerts, new_alerts());
        assert!(edited.contains("// key: alerts: (x)"), "{edited}");
    }

    #[test]
    fn text_that_does_not_read_is_not_edited() {
        let in_force = read("t.ron", TEXT).unwrap().0;
        assert_eq!(
            with_alerts("Cluster(name: ", &in_force, &new_alerts()),
            None
        );
        // A file that no longer holds the configuration in force.
        let other = TEXT.replace(r#"name: "c""#, r#"name: "d""#);
        assert_eq!(with_alerts(&other, &in_force, &new_alerts()), None);
    }
}
