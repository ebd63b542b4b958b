//! `understudy config check FILE`, and the loading the daemon shares with it.

use std::path::Path;
use std::process::ExitCode;

use understudy_actors::model::config::{self, ClusterConfig};
use understudy_actors::model::plan;
use understudy_actors::model::problems::Problem;

/// Reads and validates a configuration file; on failure, every problem as a
/// printable line. A valid file's [`warnings`] go to the log: only the
/// daemon has a tracing subscriber, so `understudy run` logs them at
/// startup and the other callers (the guardian, `config check`, `simulate`)
/// stay quiet (`config check` prints them itself).
pub fn load(file: &Path) -> Result<ClusterConfig, Vec<Problem>> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![problem(shown.clone(), format!("cannot read: {e}"))])?;
    let c = config::parse(&shown, &text)?;
    for w in warnings(&c) {
        tracing::warn!("{shown}: {w}");
    }
    Ok(c)
}

/// What a valid configuration may want changed (not errors): a cluster
/// without network-partition resolution, or two servers by majority, or
/// metrics served beyond loopback.
pub fn warnings(c: &ClusterConfig) -> Vec<String> {
    let mut w = understudy_actors::model::partition::warnings(c);
    w.extend(understudy_actors::model::watchdog::warnings(c));
    w.extend(understudy_actors::model::traps::warnings(c));
    w.extend(understudy_actors::model::metrics::warnings(c));
    w
}

/// A problem at `path` (a field path, or `FILE:line:col` for syntax and
/// type errors); shown as `path: message`.
fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

pub fn print_problems(file: &Path, problems: &[Problem]) {
    // Errors in the journal when the daemon refuses its file under systemd.
    use crate::logging::{line, Priority};
    for p in problems {
        line(Priority::Err, &p.to_string());
    }
    line(
        Priority::Err,
        &format!(
            "{}: {} problem{} found; nothing was changed",
            file.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        ),
    );
}

/// What this machine must provide for the configuration that the file
/// itself cannot show: the mail password file, the SNMP community file
/// and the status page's password file (present, readable, mode 0600 or 0400). Both `config check` and `run` report these, in the same words.
pub fn local_problems(c: &ClusterConfig) -> Vec<Problem> {
    use understudy_actors::notify::mail::LoadPassword;
    let mut out = Vec::new();
    if let Some(mail) = &c.alerts.mail {
        if let Err(e) = mail.load_password() {
            out.push(problem("alerts.mail.password_file", e.to_string()));
        }
    }
    if let Some(snmp) = &c.alerts.snmp {
        if let Err(e) = understudy_actors::notify::snmp::load_community(snmp) {
            out.push(problem("alerts.snmp.community_file", e.to_string()));
        }
    }
    for (i, s) in c.servers.iter().enumerate() {
        let Some(bmc) = &s.bmc else {
            continue;
        };
        if bmc.password_file.is_some() {
            if let Err(e) = understudy_actors::heartbeat::bmc::load_password(bmc) {
                let name = if s.name.is_empty() {
                    i.to_string()
                } else {
                    s.name.clone()
                };
                out.push(problem(
                    format!("servers[{name}].bmc.password_file"),
                    e.to_string(),
                ));
            }
        }
    }
    if let Some(file) = c.web.as_ref().and_then(|w| w.password_file.as_ref()) {
        if let Err(e) = understudy_actors::notify::mail::password::read_secret_file(
            file,
            "password",
            crate::daemon::WEB_PASSWORD_MAX,
        ) {
            out.push(problem("web.password_file", e.to_string()));
        }
    }
    out
}

/// Every script the configuration runs, with its field path: exec start
/// and stop scripts, custom monitor scripts, monitor recovery scripts, the
/// forced-stop script. Relative paths are under the configuration file's
/// folder, as the daemon runs them.
fn scripts(c: &ClusterConfig) -> Vec<(String, &str)> {
    use understudy_actors::model::monitor::MonitorKind;
    use understudy_actors::model::resource::ResourceKind;
    let label = |name: &str, i: usize| {
        if name.is_empty() {
            i.to_string()
        } else {
            name.to_string()
        }
    };
    let mut out = Vec::new();
    for (i, g) in c.groups.iter().enumerate() {
        for (j, r) in g.resources.iter().enumerate() {
            let path = format!(
                "groups[{}].resources[{}].kind",
                label(&g.name, i),
                label(&r.name, j)
            );
            if let ResourceKind::Exec(e) = &r.kind {
                out.push((format!("{path}.start"), e.start.as_str()));
                if let Some(stop) = &e.stop {
                    out.push((format!("{path}.stop"), stop.as_str()));
                }
            }
        }
    }
    for (i, m) in c.monitors.iter().enumerate() {
        let path = format!("monitors[{}]", label(&m.name, i));
        if let MonitorKind::Custom(k) = &m.kind {
            out.push((format!("{path}.kind.script"), k.script.as_str()));
        }
        if let Some(s) = &m.recovery.script {
            out.push((format!("{path}.recovery.script.path"), s.path.as_str()));
        }
    }
    if let Some(f) = &c.forced_stop {
        if let understudy_actors::model::forced_stop::ForcedStopMethod::Script(s) = &f.method {
            out.push(("forced_stop.method.path".into(), s.path.as_str()));
        }
    }
    out
}

/// Scripts that this machine does not have, or cannot run: `config check`
/// reports them as problems. (`run` only warns: a configuration that ran
/// before keeps running, and a missing script fails just its resource or
/// step, with its alert.)
pub fn script_problems(c: &ClusterConfig, base_dir: &Path) -> Vec<Problem> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for (field, script) in scripts(c) {
        if script.trim().is_empty() {
            continue; // reported by the validation already
        }
        let path = base_dir.join(script);
        let shown = path.display();
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.push(problem(field, format!("{shown} does not exist")))
            }
            Err(e) => out.push(problem(field, format!("{shown}: {e}"))),
            Ok(m) if !m.is_file() => out.push(problem(field, format!("{shown} is not a file"))),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => out.push(problem(
                field,
                format!("{shown} is not executable (chmod +x it)"),
            )),
            Ok(_) => {}
        }
    }
    out
}

/// What the disk resources need of this machine: the device (a block
/// device) and the mount point (a folder). `config check` reports them as
/// problems, `run` as warnings (a server that does not see the shared disk
/// yet only fails the disk resource, with its alert).
pub fn disk_problems(c: &ClusterConfig) -> Vec<Problem> {
    use understudy_actors::model::resource::ResourceKind;
    use understudy_actors::resource::disk::mounts;
    let mut out = Vec::new();
    for g in &c.groups {
        for r in &g.resources {
            let ResourceKind::Disk(d) = &r.kind else {
                continue;
            };
            let path = format!("groups[{}].resources[{}].kind", g.name, r.name);
            if d.device.starts_with('/') {
                if let Err(e) = mounts::block_device(&d.device) {
                    out.push(problem(format!("{path}.device"), e.to_string()));
                }
            }
            if d.mount_point.starts_with('/') {
                match std::fs::metadata(&d.mount_point) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => out.push(problem(
                        format!("{path}.mount_point"),
                        format!(
                            "{} does not exist (create the folder on every server of the group)",
                            d.mount_point
                        ),
                    )),
                    Err(e) => out.push(problem(
                        format!("{path}.mount_point"),
                        format!("{}: {e}", d.mount_point),
                    )),
                    Ok(m) if !m.is_dir() => out.push(problem(
                        format!("{path}.mount_point"),
                        format!("{} is not a folder", d.mount_point),
                    )),
                    Ok(_) => {}
                }
            }
        }
    }
    out
}

/// What the OCF agents of the configuration say of their parameters: an
/// agent not installed, a parameter it does not know, one it requires and
/// does not get (from each agent's meta-data). `config check` reports them
/// as problems, `run` as warnings (an agent missing here fails only its
/// resource or monitor, with its alert).
pub fn ocf_problems(c: &ClusterConfig) -> Vec<Problem> {
    use understudy_actors::model::monitor::MonitorKind;
    use understudy_actors::model::problems::Problems;
    use understudy_actors::model::resource::ResourceKind;
    use understudy_actors::resource::ocf::config::{check_params, DEFAULT_OCF_ROOT};
    use understudy_actors::resource::ocf::driver::meta_data;
    let mut out = Problems::default();
    let mut check = |path: String, agent: &str, params, root: &str| match meta_data(root, agent) {
        Err(e) => out.push(format!("{path}.agent"), e),
        Ok(declared) => check_params(&path, agent, params, &declared, &mut out),
    };
    for g in &c.groups {
        for r in &g.resources {
            if let ResourceKind::Ocf(o) = &r.kind {
                let path = format!("groups[{}].resources[{}].kind", g.name, r.name);
                check(path, &o.agent, &o.params, o.root());
            }
        }
    }
    for m in &c.monitors {
        if let MonitorKind::Ocf(o) = &m.kind {
            if let Some(agent) = &o.agent {
                let root = o.ocf_root.as_deref().unwrap_or(DEFAULT_OCF_ROOT);
                check(format!("monitors[{}].kind", m.name), agent, &o.params, root);
            }
        }
    }
    out.into_vec()
}

/// The folder relative script paths are taken from: the configuration
/// file's (as the daemon resolves it).
pub fn base_dir(file: &Path) -> std::path::PathBuf {
    file.canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| ".".into())
}

/// Every problem of the file, or none with the valid configuration: what
/// the file says, then what this machine lacks for it (password and
/// community files, scripts, disks).
fn problems(file: &Path) -> (Option<ClusterConfig>, Vec<Problem>) {
    match load(file) {
        Err(problems) => (None, problems),
        Ok(c) => {
            let mut problems = local_problems(&c);
            problems.extend(script_problems(&c, &base_dir(file)));
            problems.extend(disk_problems(&c));
            problems.extend(ocf_problems(&c));
            if problems.is_empty() {
                (Some(c), problems)
            } else {
                (None, problems)
            }
        }
    }
}

/// `understudy config check [--json] FILE`: exit status 0 when valid, 2
/// (bad configuration) otherwise, in both forms.
pub fn check(file: &Path, json: bool) -> ExitCode {
    let (config, problems) = problems(file);
    if json {
        let report = json_report(file, config.as_ref(), &problems);
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else if let Some(c) = &config {
        print!("{}", summary(c, &warnings(c)));
    } else {
        print_problems(file, &problems);
    }
    if config.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::client::exit::BAD_CONFIG)
    }
}

/// `config check --json`: the same facts as the text, for scripts:
/// `valid`, `problems` (each with the field path, or `FILE:line:col`, and
/// the message), `warnings`, and for a valid file what it sets up.
fn json_report(
    file: &Path,
    config: Option<&ClusterConfig>,
    problems: &[Problem],
) -> serde_json::Value {
    use serde_json::json;
    let mut report = json!({
        "file": file.display().to_string(),
        "valid": config.is_some(),
        "problems": problems,
        "warnings": config.map(warnings).unwrap_or_default(),
    });
    if let Some(c) = config {
        let groups: Vec<_> = c
            .groups
            .iter()
            .map(|g| {
                json!({
                    "name": g.name,
                    "startup": format!("{:?}", g.startup),
                    "failback": format!("{:?}", g.failback),
                    "servers": c.group_servers(g),
                    "start_order": plan::activation_order(g).unwrap_or_default(),
                })
            })
            .collect();
        let monitors: Vec<_> = c
            .monitors
            .iter()
            .map(|m| {
                let r = &m.recovery;
                json!({
                    "name": m.name,
                    "type": m.kind.type_name(),
                    "interval": m.interval,
                    "timeout": m.timeout,
                    "interval_ms": m.interval_duration().as_millis() as u64,
                    "timeout_ms": m.timeout_duration().as_millis() as u64,
                    "retry": m.retry,
                    "recovery": understudy_actors::coordinator::monitors::describe_target(
                        m.recovery_target().as_ref()
                    ),
                    "reactivation_threshold": r.reactivation_threshold,
                    "failover_threshold": r.failover_threshold,
                    "final_action": r.final_action.describe(),
                })
            })
            .collect();
        report["cluster"] = json!({
            "name": c.name,
            "digest": c.digest(),
            "servers": c.server_names(),
            "groups": groups,
            "monitors": monitors,
            "admin_group": c.control.admin_group,
        });
    }
    report
}

/// One screen describing what the configuration sets up: the OK line,
/// each warning (`warning: ...`), then the servers, groups and monitors.
fn summary(c: &ClusterConfig, warnings: &[String]) -> String {
    let mut out = format!(
        "cluster {}: configuration is valid (digest {})\n",
        c.name,
        c.digest()
    );
    for w in warnings {
        out += &format!("warning: {w}\n");
    }
    out += &format!(
        "servers ({}, by priority): {}\n",
        c.servers.len(),
        c.servers
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    out += &format!("groups ({}):\n", c.groups.len());
    for g in &c.groups {
        let order = plan::activation_order(g).unwrap_or_default();
        out += &format!(
            "  {} [startup {:?}, failback {:?}] on {}\n    start order: {}\n",
            g.name,
            g.startup,
            g.failback,
            c.group_servers(g).join(" > "),
            if order.is_empty() {
                "(no resources)".to_string()
            } else {
                order.join(" -> ")
            }
        );
    }
    if !c.monitors.is_empty() {
        out += &format!("monitors ({}):\n", c.monitors.len());
    }
    for m in &c.monitors {
        let r = &m.recovery;
        out += &format!(
            "  {} [{}, every {}, timeout {}, retry {}] recovery: {}, reactivation {}, failover {}, then {}\n",
            m.name,
            m.kind.type_name(),
            understudy_actors::model::monitoring::seconds_or_ms(m.interval_duration()),
            understudy_actors::model::monitoring::seconds_or_ms(m.timeout_duration()),
            m.retry,
            understudy_actors::coordinator::monitors::describe_target(m.recovery_target().as_ref()),
            r.reactivation_threshold,
            r.failover_threshold,
            r.final_action.describe()
        );
    }
    if let Some(g) = &c.control.admin_group {
        out += &format!("admin group: {g}\n");
    }
    if let Some(m) = &c.metrics {
        out += &format!("metrics: http://{}/metrics on every server\n", m.listen);
    }
    if let Some(w) = &c.web {
        out += &format!(
            "status page: http://{}/ on every server ({})\n",
            w.listen,
            if w.password_file.is_some() {
                "administrator's actions at /admin/"
            } else {
                "read-only"
            }
        );
    }
    out
}

/// `understudy config push FILE`: checked here first (a bad file is never
/// sent), then the daemon validates it again and writes it on every server.
pub fn push(socket: &Path, file: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: cannot read: {e}", file.display());
            return ExitCode::from(crate::client::exit::BAD_CONFIG);
        }
    };
    if let Err(problems) = config::parse(&file.display().to_string(), &text) {
        print_problems(file, &problems);
        return ExitCode::from(crate::client::exit::BAD_CONFIG);
    }
    crate::client::command(
        socket,
        understudy_actors::control::protocol::Command::ConfigPush { text },
    )
}
