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
pub fn load(file: &Path) -> Result<ClusterConfig, Vec<String>> {
    let shown = file.display().to_string();
    let text =
        std::fs::read_to_string(file).map_err(|e| vec![format!("{shown}: cannot read: {e}")])?;
    let c = config::parse(&shown, &text)
        .map_err(|problems| problems.iter().map(line).collect::<Vec<_>>())?;
    for w in warnings(&c) {
        tracing::warn!("{shown}: {w}");
    }
    Ok(c)
}

/// What a valid configuration may want changed (not errors): a cluster
/// without network-partition resolution, or two servers by majority.
pub fn warnings(c: &ClusterConfig) -> Vec<String> {
    let mut w = understudy_actors::model::partition::warnings(c);
    w.extend(understudy_actors::model::watchdog::warnings(c));
    w
}

/// `FILE:line:col: message` already names the file; field paths get it prefixed.
fn line(p: &Problem) -> String {
    p.to_string()
}

pub fn print_problems(file: &Path, problems: &[String]) {
    for p in problems {
        eprintln!("{p}");
    }
    eprintln!(
        "{}: {} problem{} found; nothing was changed",
        file.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
}

/// What this machine must provide for the configuration that the file
/// itself cannot show: the mail password file (present, readable, mode 0600
/// or 0400). Both `config check` and `run` report these, in the same words.
pub fn local_problems(c: &ClusterConfig) -> Vec<String> {
    use understudy_actors::notify::mail::LoadPassword;
    let mut out = Vec::new();
    if let Some(mail) = &c.alerts.mail {
        if let Err(e) = mail.load_password() {
            out.push(format!("alerts.mail.password_file: {e}"));
        }
    }
    out
}

pub fn check(file: &Path) -> ExitCode {
    let problems = match load(file) {
        Err(problems) => problems,
        Ok(c) => {
            let problems = local_problems(&c);
            if problems.is_empty() {
                print!("{}", summary(&c, &warnings(&c)));
                return ExitCode::SUCCESS;
            }
            problems
        }
    };
    print_problems(file, &problems);
    ExitCode::from(crate::client::exit::BAD_CONFIG)
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
            "  {} [{}, every {} s, timeout {} s, retry {}] recovery: {}, reactivation {}, failover {}, then {}\n",
            m.name,
            m.kind.type_name(),
            m.interval,
            m.timeout,
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
        let lines: Vec<String> = problems.iter().map(line).collect();
        print_problems(file, &lines);
        return ExitCode::from(crate::client::exit::BAD_CONFIG);
    }
    crate::client::command(
        socket,
        understudy_actors::control::protocol::Command::ConfigPush { text },
    )
}
