//! `understudy`: the one binary. `understudy run` is the daemon (started by
//! its guardian, see `guardian.rs`); every other subcommand is a client of
//! the daemon's control socket, or works offline (`config check`).

mod agent;
mod client;
mod compat;
mod config_check;
mod daemon;
mod dist;
mod guardian;
mod local_syslog;
mod logcmd;
mod logging;
mod render;
mod simulate;
mod systemd;
mod watchdog;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use understudy_actors::control::protocol::Command as Ctl;

pub const DEFAULT_SOCKET: &str = "/run/understudy/understudy.sock";
/// Where `run` and `config check` look without a file named: the
/// package's configuration (a conffile).
pub const DEFAULT_CONFIG: &str = "/etc/understudy/understudy.ron";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/understudy";

#[derive(Parser)]
#[command(
    name = "understudy",
    version,
    about = "High-availability cluster supervisor",
    after_help = client::EXIT_STATUS_HELP
)]
struct Cli {
    /// Control socket of the daemon.
    #[arg(long, global = true, env = "UNDERSTUDY_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Seconds to wait for the daemon's answer before giving up (exit
    /// status 6); 0 waits for ever. Default: 30 for commands that only
    /// read, 900 for commands that carry out operations.
    #[arg(long, global = true, env = "UNDERSTUDY_TIMEOUT", value_name = "SECS")]
    timeout: Option<u64>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the supervisor daemon for this server.
    Run {
        /// Cluster configuration (RON).
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// This server's name in the configuration (default: the host name).
        #[arg(long)]
        server: Option<String>,
        /// Where the alert log and script logs are kept.
        #[arg(long, default_value = DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Show the cluster, its servers, groups and resources.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start or stop a failover group.
    Group {
        #[command(subcommand)]
        action: GroupCmd,
    },
    /// Cluster-wide operations.
    Cluster {
        #[command(subcommand)]
        action: ClusterCmd,
    },
    /// Show the newest alerts.
    Alerts {
        /// How many alerts to show.
        #[arg(short = 'n', default_value_t = 20)]
        count: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Operations on this server, or on a named one.
    Server {
        #[command(subcommand)]
        action: ServerCmd,
    },
    /// The alert service: notification suspend / resume.
    Alert {
        #[command(subcommand)]
        action: AlertCmd,
    },
    /// Network warning lamps.
    Lamp {
        #[command(subcommand)]
        action: LampCmd,
    },
    /// Write a new cluster key file (64 hex digits, mode 0600).
    Keygen {
        /// Where to write the key (refused if it exists, unless --force).
        file: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        action: ConfigCmd,
    },
    /// Suspend, resume or clear monitor resources.
    Monitor {
        #[command(subcommand)]
        action: MonitorCmd,
    },
    /// Write a message to this server's alert log and / or this machine's
    /// syslog (also `clplogcmd -m MESSAGE [-l LEVEL] [--alert] [--syslog]`).
    ///
    /// Without --alert or --syslog: both. The alert log takes it only
    /// while the daemon runs (module logcmd, id 1000; otherwise exit
    /// status 5); syslog is written by this command (/dev/log, facility
    /// daemon). Nothing is printed on success.
    Log {
        /// The message: at most 511 bytes; newlines and other control
        /// characters become spaces.
        #[arg(long, short = 'm', allow_hyphen_values = true)]
        message: String,
        /// INFO, WARN or ERR (any case).
        #[arg(long, short = 'l', default_value = "INFO", value_parser = understudy_actors::model::catalog::parse_level)]
        level: understudy_actors::model::catalog::Level,
        /// To this server's alert log (`understudy alerts`), through the
        /// daemon.
        #[arg(long)]
        alert: bool,
        /// To this machine's syslog.
        #[arg(long)]
        syslog: bool,
    },
    /// Send a message to message receive monitors.
    Message {
        #[command(subcommand)]
        action: MessageCmd,
    },
    /// Run the cluster brain through seeded fault schedules in the
    /// deterministic simulator ("what would my configuration do if...").
    /// Exit status 1 when a run breaks an invariant.
    Simulate {
        /// First seed (with `--runs 1`: replay exactly this run).
        #[arg(long)]
        seed: Option<u64>,
        /// How many schedules (seeds from --seed on).
        #[arg(long, default_value_t = 1000)]
        runs: u64,
        /// Servers of the built-in lab cluster (default: 2 or 3 per run).
        #[arg(long)]
        servers: Option<usize>,
        /// Fault kinds to draw from, comma-separated: crash, kill, stop,
        /// flap, loss, delay, partition, oneway, freeze (default: all).
        #[arg(long)]
        faults: Option<String>,
        /// Simulate this configuration instead of the built-in cluster.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Threads running schedules side by side.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Partition resolution of the built-in cluster: none, majority,
        /// witness (a majority with an etcd witness's vote), ping (a ping
        /// target alone), majority-ping (both), or mixed (each run draws
        /// one). Ignored with --config, which says its own.
        #[arg(long, default_value = "mixed")]
        partition: String,
        /// Forced stop of a silent server in the built-in cluster (a script
        /// that fails one time in ten): on, off, or mixed. Ignored with
        /// --config.
        #[arg(long, default_value = "mixed")]
        forced_stop: String,
        /// A watchdog device (guardian.watchdog, timeout 1 s, margin 2 s)
        /// in the built-in cluster with partition resolution, which resets
        /// a box whose whole stack died: on, off, or mixed. Ignored with
        /// --config.
        #[arg(long, default_value = "mixed")]
        watchdog: String,
        /// Replay a decision journal taken from a server
        /// (STATE/journal.jsonl) on --config: every decision with what the
        /// brain knew, and where the replay decides otherwise.
        #[arg(long, requires = "config")]
        replay: Option<PathBuf>,
    },
    /// `clp_httpmon`: check an HTTP daemon until it fails, then exit.
    ///
    /// The Internet Server Agent's command (docs/internet-server-agent.md).
    /// ARGS: ID [-s SERVER] [-n PORT] [-i INTERVAL] [-c RETRIES] [-r WAIT]
    /// [-v 1.0|1.1] [-h URI], or ID --stop [WAIT] | --pause | --resume |
    /// --disp | --del.
    #[command(disable_help_flag = true)]
    Httpmon {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// `clp_smtpmon`: check an SMTP daemon until it fails, then exit.
    ///
    /// The Internet Server Agent's command (docs/internet-server-agent.md).
    /// ARGS: ID [-s SERVER] [-n PORT] [-i INTERVAL]
    /// [-c RETRIES] [-r WAIT], or ID --stop [WAIT] | --pause | --resume |
    /// --disp | --del.
    #[command(disable_help_flag = true)]
    Smtpmon {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Test hooks (the daemon must run with UNDERSTUDY_TEST_HOOKS=1).
    #[command(hide = true)]
    Debug {
        #[command(subcommand)]
        action: DebugCmd,
    },
    /// Write the manual pages (section 1) into a folder, one per command.
    #[command(hide = true)]
    Man {
        /// The folder (created if need be).
        dir: PathBuf,
    },
    /// Print a completion script for a shell.
    #[command(hide = true)]
    Completions {
        /// bash, zsh or fish.
        shell: dist::Shell,
    },
}

#[derive(Subcommand)]
enum MonitorCmd {
    /// Stop checking (the named monitors, or every monitor with --all).
    Suspend {
        /// Monitors to suspend (suspending a suspended one is no error).
        names: Vec<String>,
        /// Every monitor of this server.
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// Start checking again after a suspend.
    Resume {
        /// Monitors to resume.
        names: Vec<String>,
        /// Every monitor of this server.
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// Reset a monitor's reactivation and failover counters.
    Clear {
        /// The monitor.
        name: String,
    },
    /// How many checks ran and how late they started.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Start the figures afresh after printing them.
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Subcommand)]
enum MessageCmd {
    /// Send an error notice (or, with --clear, its clearing).
    Send {
        /// Category of the monitors to notify (as in their settings).
        #[arg(long)]
        category: String,
        /// Keyword of the monitors to notify (empty: the category's
        /// monitors that have no keyword).
        #[arg(long, default_value = "")]
        keyword: String,
        /// Clear the error instead (the monitors turn Normal).
        #[arg(long)]
        clear: bool,
    },
}

#[derive(Subcommand)]
enum DebugCmd {
    /// Block the coordinator for SECONDS.
    Stall { seconds: u64 },
    /// Raise COUNT test alerts routed to mail.
    Burst { count: u32 },
    /// Panic in the coordinator (the daemon dies; its guardian cleans up).
    Panic,
}

#[derive(Subcommand)]
enum GroupCmd {
    /// Start (activate) a group, on this server or on --server.
    Start {
        /// The group.
        name: String,
        /// Server to start it on (default: this server).
        #[arg(long)]
        server: Option<String>,
    },
    /// Stop (deactivate) a group wherever it runs (an offline group stays
    /// so: no error).
    Stop {
        /// The group.
        name: String,
    },
    /// Move a group to another server (default: the next of its order).
    Move {
        /// The group.
        name: String,
        /// Destination server (default: the next eligible server of the
        /// group's order).
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Stop every group and the cluster service on every server.
    Stop,
    /// Stop the cluster service on every server, then shut down every OS.
    /// Asks on the terminal first unless --yes (no terminal and no --yes:
    /// nothing is done, exit status 3).
    Shutdown {
        /// Reboot instead of powering off.
        #[arg(long)]
        reboot: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Keep groups running; no automatic recovery or failover (maintenance).
    Suspend,
    /// End a suspend.
    Resume,
}

#[derive(Subcommand)]
enum ServerCmd {
    /// Stop the cluster service on this server (its groups move to the next
    /// server of their order), then shut down or reboot the OS. Asks on the
    /// terminal first unless --yes (no terminal and no --yes: nothing is
    /// done, exit status 3).
    Shutdown {
        /// Reboot instead of powering off.
        #[arg(long)]
        reboot: bool,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
    /// Take back a server that stays out after it was declared down.
    Recover {
        /// The server.
        name: String,
    },
    /// Say that silent server NAME is off: the others take its groups over
    /// without waiting for its lease or a forced stop. If NAME still runs
    /// (cut off, frozen), its groups then run on two servers at once.
    ///
    /// Check first that NAME is powered off, or that its cluster service and
    /// every resource of its groups are stopped (as for `pcs stonith
    /// confirm`). The server asked refuses when it hears NAME; otherwise it
    /// and every server it hears are told, and one of them that still hears
    /// NAME refuses (the command then fails and names it). Asks on the
    /// terminal unless --yes; with no terminal to ask and no --yes, nothing
    /// is done and the exit status is 3.
    ConfirmDown {
        /// The silent server.
        name: String,
        /// Do not ask: you have checked that NAME is off.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum AlertCmd {
    /// Stop sending alerts to the notifiers (mail, syslog) on every server;
    /// they resume by themselves after the configured hours.
    Suspend,
    /// Send alerts to the notifiers again.
    Resume,
    /// Write the alert settings in force to FILE (RON, mode 0600).
    Export {
        /// The file to write.
        file: PathBuf,
    },
    /// Replace the alert settings on every server with those in FILE.
    Import {
        /// A file as `alert export` writes it.
        file: PathBuf,
    },
    /// Send a test alert through this server's notifiers (all without flags).
    Test {
        /// Through the mail notifier.
        #[arg(long)]
        mail: bool,
        /// Through the syslog notifier.
        #[arg(long)]
        syslog: bool,
        /// Through the warning lamp.
        #[arg(long)]
        lamp: bool,
        /// The SNMP trap notifier.
        #[arg(long)]
        snmp: bool,
    },
}

#[derive(Subcommand)]
enum LampCmd {
    /// Switch a server's warning lamp off.
    Off {
        /// The server whose lamp to switch off.
        #[arg(long)]
        server: String,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Check a configuration file and print every problem in it (exit
    /// status 2 when there is one).
    Check {
        /// The configuration file (RON).
        #[arg(default_value = DEFAULT_CONFIG)]
        file: PathBuf,
        /// Print JSON instead of text: valid, problems (path and message),
        /// warnings, and what a valid file sets up.
        #[arg(long)]
        json: bool,
    },
    /// Check a configuration file and write it on every server.
    Push {
        /// The configuration file (RON).
        file: PathBuf,
    },
}

/// Under an ExpressCluster command name (a symlink to this binary), that
/// command's options as understudy's (`compat.rs`); a bad or unsupported
/// option ends here with a one-line error (exit status 2).
fn product_alias() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let name = compat::invoked_as()?;
    match compat::translate(&name, args.get(1..).unwrap_or_default())? {
        Ok(own) => Some(
            std::iter::once("understudy".to_string())
                .chain(own)
                .collect(),
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(client::exit::BAD_CONFIG.into());
        }
    }
}

fn main() -> ExitCode {
    // `clp_httpmon` / `clp_smtpmon` (symlinks to this binary) have a
    // command line of their own.
    if let Some(kind) = agent::invoked_as() {
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let socket = std::env::var_os("UNDERSTUDY_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        return agent::main(kind, &args, &socket);
    }
    let cli = match product_alias() {
        Some(args) => Cli::parse_from(args),
        None => Cli::parse(),
    };
    client::set_timeout(cli.timeout);
    if !matches!(cli.command, Cmd::Run { .. }) {
        // A command whose output is cut short (`understudy status | head`)
        // ends quietly, as other command-line tools do, instead of
        // panicking on the broken pipe. The daemon and its guardian keep
        // the pipe signal ignored: a peer that hangs up is an error to
        // handle there, never a reason to die.
        // SAFETY: no other thread runs yet; SIG_DFL is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        // The guardian re-runs this same command line with its mark in the
        // environment; that second process is the daemon.
        Cmd::Run {
            config,
            server,
            state_dir,
        } if guardian::is_daemon_process() => match guardian::enter_daemon() {
            Ok(()) => daemon::run(&config, server, &state_dir, &cli.socket),
            Err(e) => {
                eprintln!("understudy: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Run {
            config,
            server,
            state_dir,
        } => guardian::run(&config, server, &state_dir, &cli.socket),
        Cmd::Config {
            action: ConfigCmd::Check { file, json },
        } => config_check::check(&file, json),
        Cmd::Status { json } => client::status(&cli.socket, json),
        Cmd::Alerts { count, json } => client::alerts(&cli.socket, count, json),
        Cmd::Config {
            action: ConfigCmd::Push { file },
        } => config_check::push(&cli.socket, &file),
        Cmd::Simulate {
            config,
            replay: Some(journal),
            ..
        } => simulate::replay(&journal, config.as_deref()),
        Cmd::Simulate {
            seed,
            runs,
            servers,
            faults,
            config,
            threads,
            partition,
            forced_stop,
            watchdog,
            replay: None,
        } => simulate::run(simulate::Args {
            seed,
            runs,
            servers,
            faults: faults.as_deref(),
            config: config.as_deref(),
            threads,
            partition: &partition,
            forced_stop: &forced_stop,
            watchdog: &watchdog,
        }),
        Cmd::Keygen { file, force } => {
            match understudy_actors::wire::key::ClusterKey::generate(&file, force) {
                Ok(()) => {
                    println!(
                        "cluster key written to {} (mode 0600); copy it to every server",
                        file.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("understudy: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Group { action } => client::command(
            &cli.socket,
            match action {
                GroupCmd::Start { name, server } => Ctl::GroupStart {
                    group: name,
                    server,
                },
                GroupCmd::Stop { name } => Ctl::GroupStop { group: name },
                GroupCmd::Move { name, to } => Ctl::GroupMove { group: name, to },
            },
        ),
        Cmd::Cluster {
            action: ClusterCmd::Shutdown { reboot, yes },
        } => client::shutdown(&cli.socket, true, reboot, yes),
        Cmd::Cluster { action } => client::command(
            &cli.socket,
            match action {
                ClusterCmd::Stop => Ctl::ClusterStop,
                ClusterCmd::Shutdown { .. } => unreachable!("handled above"),
                ClusterCmd::Suspend => Ctl::ClusterSuspend,
                ClusterCmd::Resume => Ctl::ClusterResume,
            },
        ),
        Cmd::Alert {
            action: AlertCmd::Export { file },
        } => client::export(&cli.socket, Ctl::AlertExport, &file),
        Cmd::Alert {
            action: AlertCmd::Import { file },
        } => match std::fs::read_to_string(&file) {
            Ok(text) => client::command(&cli.socket, Ctl::AlertImport { text }),
            Err(e) => {
                eprintln!("{}: cannot read: {e}", file.display());
                ExitCode::from(crate::client::exit::BAD_CONFIG)
            }
        },
        Cmd::Alert { action } => client::command(
            &cli.socket,
            match action {
                AlertCmd::Suspend => Ctl::AlertNotification { suspend: true },
                AlertCmd::Resume => Ctl::AlertNotification { suspend: false },
                AlertCmd::Test {
                    mail,
                    syslog,
                    lamp,
                    snmp,
                } => Ctl::AlertTest {
                    mail,
                    syslog,
                    lamp,
                    snmp,
                },
                AlertCmd::Export { .. } | AlertCmd::Import { .. } => unreachable!("handled above"),
            },
        ),
        Cmd::Lamp {
            action: LampCmd::Off { server },
        } => client::command(&cli.socket, Ctl::LampOff { server }),
        Cmd::Server {
            action: ServerCmd::ConfirmDown { name, yes },
        } => client::confirm_down(&cli.socket, name, yes),
        Cmd::Server {
            action: ServerCmd::Shutdown { reboot, yes },
        } => client::shutdown(&cli.socket, false, reboot, yes),
        Cmd::Server { action } => client::command(
            &cli.socket,
            match action {
                ServerCmd::Shutdown { .. } => unreachable!("handled above"),
                ServerCmd::Recover { name } => Ctl::ServerRecover { server: name },
                ServerCmd::ConfirmDown { .. } => unreachable!("handled above"),
            },
        ),
        Cmd::Monitor { action } => match action {
            MonitorCmd::Suspend { names, all } => {
                client::monitors(&cli.socket, names, all, |monitors| Ctl::MonitorSuspend {
                    monitors,
                })
            }
            MonitorCmd::Resume { names, all } => {
                client::monitors(&cli.socket, names, all, |monitors| Ctl::MonitorResume {
                    monitors,
                })
            }
            MonitorCmd::Clear { name } => {
                client::command(&cli.socket, Ctl::MonitorClear { monitor: name })
            }
            MonitorCmd::Stats { json, reset } => client::monitor_stats(&cli.socket, json, reset),
        },
        Cmd::Message {
            action:
                MessageCmd::Send {
                    category,
                    keyword,
                    clear,
                },
        } => client::command(
            &cli.socket,
            Ctl::MessageSend {
                category,
                keyword,
                clear,
            },
        ),
        Cmd::Log {
            message,
            level,
            alert,
            syslog,
        } => logcmd::run(
            if compat::invoked_as().as_deref() == Some("clplogcmd") {
                "clplogcmd"
            } else {
                "understudy"
            },
            &cli.socket,
            logcmd::Args {
                message,
                level,
                alert,
                syslog,
            },
        ),
        Cmd::Httpmon { args } => agent::main(
            understudy_actors::model::agent::AgentKind::Http,
            &args,
            &cli.socket,
        ),
        Cmd::Smtpmon { args } => agent::main(
            understudy_actors::model::agent::AgentKind::Smtp,
            &args,
            &cli.socket,
        ),
        Cmd::Debug {
            action: DebugCmd::Stall { seconds },
        } => client::command(&cli.socket, Ctl::DebugStall { seconds }),
        Cmd::Debug {
            action: DebugCmd::Panic,
        } => client::command(&cli.socket, Ctl::DebugPanic),
        Cmd::Debug {
            action: DebugCmd::Burst { count },
        } => client::command(&cli.socket, Ctl::DebugBurst { count }),
        Cmd::Man { dir } => dist::man(&dir),
        Cmd::Completions { shell } => dist::completions(shell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_and_config_check_read_the_default_file_unless_told_otherwise() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).expect("parses");
        match parse(&["understudy", "run"]).command {
            Cmd::Run { config, .. } => assert_eq!(config, PathBuf::from(DEFAULT_CONFIG)),
            _ => panic!("not run"),
        }
        // As before: a file named is the file read.
        match parse(&["understudy", "run", "--config", "c.ron"]).command {
            Cmd::Run { config, .. } => assert_eq!(config, PathBuf::from("c.ron")),
            _ => panic!("not run"),
        }
        match parse(&["understudy", "config", "check"]).command {
            Cmd::Config {
                action: ConfigCmd::Check { file, json },
            } => {
                assert_eq!(file, PathBuf::from(DEFAULT_CONFIG));
                assert!(!json);
            }
            _ => panic!("not config check"),
        }
        match parse(&["understudy", "config", "check", "c.ron"]).command {
            Cmd::Config {
                action: ConfigCmd::Check { file, .. },
            } => assert_eq!(file, PathBuf::from("c.ron")),
            _ => panic!("not config check"),
        }
        // `config push` still needs its file.
        assert!(Cli::try_parse_from(["understudy", "config", "push"]).is_err());
    }
}
