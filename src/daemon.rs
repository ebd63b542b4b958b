//! `understudy run`: checks everything that can be checked before starting,
//! then runs the actix system until the cluster service stops.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use understudy_actors::control::server::{self, Access};
use understudy_actors::coordinator::group::StopFactor;
use understudy_actors::coordinator::{Coordinator, CoordinatorSettings, StopClusterService};
use understudy_actors::metrics::Metrics;
use understudy_actors::notify::alert_log::{AlertLog, AlertLogHandle, DEFAULT_MAX_BYTES};
use understudy_actors::notify::service::AlertService;
use understudy_actors::resource::owned;

use crate::config_check;
use crate::logging::Priority;

/// After the cluster service has stopped, how long in-flight control
/// connections get to receive their answers.
const DRAIN: Duration = Duration::from_secs(5);
/// Longest password `web.password_file` may hold.
pub const WEB_PASSWORD_MAX: usize = 256;

fn fail(message: &str) -> ExitCode {
    crate::logging::line(Priority::Err, &format!("understudy: {message}"));
    ExitCode::FAILURE
}

fn group_id(field: &str, name: &Option<String>) -> Result<Option<(String, u32)>, String> {
    let Some(name) = name else { return Ok(None) };
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(Some((name.clone(), g.gid.as_raw()))),
        Ok(None) => Err(format!(
            "control.{field}: group \"{name}\" does not exist on this machine"
        )),
        Err(e) => Err(format!(
            "control.{field}: cannot look up group \"{name}\": {e}"
        )),
    }
}

pub fn run(
    config_path: &Path,
    server: Option<String>,
    state_dir: &Path,
    socket: &Path,
) -> ExitCode {
    // To stderr; in systemd's journal with each line's priority.
    crate::logging::init_tracing();
    // A panic anywhere (an actor's handler, a task, a blocking job) but in a
    // guarded call of third-party parsing ends the daemon at once: actix would otherwise drop just that actor and leave
    // a stale state behind (a dead monitor shown Normal for ever). The
    // guardian then sees a death, releases everything and tells the peers.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        // Third-party parsing of network bytes, whose caller handles the
        // failure (understudy_actors::guarded): that call fails, nothing
        // else does.
        if understudy_actors::guarded::active() {
            tracing::error!(
                "a library failed on bytes from the network: {info}; that call is refused"
            );
            return;
        }
        tracing::error!("the daemon panicked: {info}; it ends, its guardian releases what it held");
        std::process::abort();
    }));

    let config = match config_check::load(config_path) {
        Ok(c) => Arc::new(c),
        Err(problems) => {
            config_check::print_problems(config_path, &problems);
            return ExitCode::from(crate::client::exit::BAD_CONFIG);
        }
    };
    let local = match server {
        Some(s) => s,
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if !config.servers.iter().any(|s| s.name == local) {
        return fail(&format!(
            "server \"{local}\" is not in {} (servers: {}); pass --server NAME",
            config_path.display(),
            config.server_names().join(", ")
        ));
    }
    // What the file cannot show (the mail password file): refused here, in
    // the words of `config check`, before anything is bound or started.
    let local_problems = config_check::local_problems(&config);
    if !local_problems.is_empty() {
        for p in &local_problems {
            crate::logging::line(Priority::Err, &format!("understudy: {p}"));
        }
        return ExitCode::from(crate::client::exit::BAD_CONFIG);
    }
    let access = match (
        group_id("socket_group", &config.control.socket_group),
        group_id("admin_group", &config.control.admin_group),
    ) {
        (Ok(s), Ok(a)) => Access {
            socket_gid: s.map(|(_, g)| g),
            admin: a,
        },
        (Err(e), _) | (_, Err(e)) => return fail(&e),
    };
    if let Err(e) = std::fs::create_dir_all(state_dir) {
        return fail(&format!(
            "cannot create state directory {}: {e}",
            state_dir.display()
        ));
    }
    // A socket that answers belongs to a running daemon; one that does not is
    // left over from a crash and may go.
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return fail(&format!(
                "another understudy daemon is already running on {}",
                socket.display()
            ));
        }
        let _ = std::fs::remove_file(socket);
    }
    let mut alert_log = match AlertLog::open(state_dir, DEFAULT_MAX_BYTES) {
        Ok(log) => log,
        Err(e) => {
            return fail(&format!(
                "cannot open the alert log in {}: {e}",
                state_dir.display()
            ))
        }
    };
    // Every alert of this daemon is counted, those of the cleanup below too.
    let metrics = Metrics::default();
    alert_log.count_in(metrics.clone());
    // ---- guardian: ownership records and startup cleanup (begin) ----
    // Before the coordinator starts: what this daemon adds or starts is
    // recorded from here on, and whatever an earlier run left behind is
    // released first.
    if let Err(e) = owned::init(state_dir.join("owned")) {
        return fail(&e);
    }
    crate::guardian::startup_cleanup(&mut alert_log, &local);
    // ---- guardian (end) ----
    // The cluster key: required with several servers (validation says so),
    // optional with one.
    let key = match &config.heartbeat.key_file {
        // A relative path starts in the configuration file's folder.
        Some(path) => match understudy_actors::wire::key::ClusterKey::load(
            &config_path.parent().unwrap_or(Path::new(".")).join(path),
        ) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => return fail(&e),
        },
        None => None,
    };
    let peer_listeners =
        match understudy_actors::coordinator::commands::bind_peer_listeners(&config, &local) {
            Ok(l) => l,
            Err(e) => return fail(&e),
        };
    // Bound before anything starts: a taken port stops the start, named.
    // One listener when the metrics and the page share an address.
    let metrics_addr = config.metrics.as_ref().and_then(|m| m.address());
    let web_addr = config.web.as_ref().and_then(|w| w.address());
    let shared = metrics_addr.is_some() && metrics_addr == web_addr;
    let bind = |field, addr: Option<std::net::SocketAddr>| match addr {
        Some(addr) => understudy_actors::web::bind(field, addr).map(Some),
        None => Ok(None),
    };
    let (metrics_listener, web_listener) = match (
        bind(
            if shared {
                "metrics.listen and web.listen"
            } else {
                "metrics.listen"
            },
            metrics_addr,
        ),
        bind("web.listen", if shared { None } else { web_addr }),
    ) {
        (Ok(m), Ok(w)) => (m, w),
        (Err(e), _) | (_, Err(e)) => return fail(&e),
    };
    // The administrator's password, read once (local_problems checked it).
    let web_access = config.web.as_ref().map(|w| {
        let password = w.password_file.as_ref().and_then(|f| {
            understudy_actors::notify::mail::password::read_secret_file(
                f,
                "password",
                WEB_PASSWORD_MAX,
            )
            .ok()
        });
        understudy_actors::status_page::Access::new(w, password)
    });
    let recent_alerts = config.web.as_ref().map(|_| alert_log.publish_in());
    let base_dir = crate::config_check::base_dir(config_path);
    for p in crate::config_check::script_problems(&config, &base_dir) {
        tracing::warn!("{}: {p}: what runs it will fail", config_path.display());
    }
    for p in crate::config_check::disk_problems(&config) {
        tracing::warn!(
            "{}: {p}: the disk resource will fail to activate here",
            config_path.display()
        );
    }
    for p in crate::config_check::ocf_problems(&config) {
        tracing::warn!(
            "{}: {p}: the agent is likely to fail here",
            config_path.display()
        );
    }

    // The monitors' slot grid starts here, just before the runtime's timer
    // does: its slots then fall on the timer's millisecond ticks.
    understudy_actors::monitor::actor::start_slot_grid();
    let sys = System::new();
    let started = sys.block_on(async {
        let listener = server::bind(socket, &access)
            .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
        let log_addr = AlertLogHandle::spawn(alert_log)
            .map_err(|e| format!("cannot start the alert log thread: {e}"))?;
        let alert_service = AlertService::start(&config, &local, state_dir, &log_addr, &metrics)?;
        let coordinator = Coordinator::new(CoordinatorSettings {
            alert_service: Some(alert_service),
            test_hooks: std::env::var("UNDERSTUDY_TEST_HOOKS").as_deref() == Ok("1"),
            config: config.clone(),
            local: local.clone(),
            base_dir,
            state_dir: state_dir.to_path_buf(),
            alert_log: log_addr.clone(),
            config_path: config_path.to_path_buf(),
            incarnation: crate::guardian::incarnation(),
            key,
            peer_listeners,
            metrics: metrics.clone(),
        });
        let stopped = coordinator.stopped_signal();
        let stopping = coordinator.stopping_signal();
        let status = coordinator.status_feed();
        let coordinator = coordinator.start();
        let (inflight_tx, inflight_rx) = watch::channel(0usize);
        server::serve(
            listener,
            coordinator.clone(),
            access,
            inflight_tx,
            socket.to_path_buf(),
        );
        // READY=1 (the socket is served), the state line, STOPPING=1: to
        // systemd, through the guardian.
        crate::systemd::report(status.clone(), stopping);
        // Scrapes and the page read what the actors published, on the
        // listeners' own threads.
        let page = match (web_access, recent_alerts) {
            (Some(access), Some(alerts)) => {
                let sources = understudy_actors::status_page::Sources {
                    status: status.clone(),
                    alerts,
                    stopped: stopped.clone(),
                };
                let coordinator = coordinator.clone();
                let cluster = config.name.clone();
                Some(move || {
                    let feed = understudy_actors::status_page::spawn_feed(sources);
                    understudy_actors::status_page::routes(feed, access, coordinator, cluster)
                })
            }
            _ => None,
        };
        let registry = metrics.registry(status);
        match (metrics_listener, web_listener, page) {
            (Some(listener), None, Some(page)) => {
                understudy_actors::web::serve("web.listen", listener, move || {
                    understudy_actors::web::metrics_routes(registry).merge(page())
                });
            }
            (m, w, page) => {
                if let Some(listener) = m {
                    understudy_actors::web::serve("metrics.listen", listener, move || {
                        understudy_actors::web::metrics_routes(registry)
                    });
                }
                if let (Some(listener), Some(page)) = (w, page) {
                    understudy_actors::web::serve("web.listen", listener, page);
                }
            }
        }
        watch_signals(coordinator);
        exit_when_stopped(stopped, inflight_rx, log_addr);
        Ok::<(), String>(())
    });
    if let Err(e) = started {
        // Whatever was started before the failure (the alert router) runs
        // its `started` and stops inside the runtime: dropped unpolled, an
        // actor would start outside of it and panic.
        System::current().stop_with_code(1);
        let _ = sys.run_with_code();
        let _ = std::fs::remove_file(socket);
        return fail(&e);
    }
    let code = sys.run_with_code().unwrap_or(1);
    let _ = std::fs::remove_file(socket);
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// SIGTERM and SIGINT stop the cluster service on this server; SIGHUP is
/// logged and ignored.
fn watch_signals(coordinator: Addr<Coordinator>) {
    actix_rt::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        let reason = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM received",
                _ = int.recv() => break "SIGINT received",
                // A service manager's "reload" must not look like a crash
                // (the guardian would release everything and the others
                // would take over). There is nothing to reload by signal.
                _ = hup.recv() => tracing::warn!(
                    "SIGHUP ignored: the configuration changes with `understudy config push FILE`"
                ),
            }
        };
        coordinator.do_send(StopClusterService {
            reason: reason.into(),
            factor: StopFactor::ServerShutdown,
        });
    });
}

/// Whatever stopped the cluster service (a signal, `cluster stop`, a final
/// action), the daemon exits once it has stopped, after the control
/// connections still being served have had their answers.
fn exit_when_stopped(
    mut stopped: watch::Receiver<bool>,
    mut inflight: watch::Receiver<usize>,
    alert_log: AlertLogHandle,
) {
    actix_rt::spawn(async move {
        let _ = stopped.wait_for(|done| *done).await;
        let _ = tokio::time::timeout(DRAIN, inflight.wait_for(|n| *n == 0)).await;
        // The alert log handles messages in order: once this query is
        // answered, every alert raised before it is on disk.
        let _ = alert_log.newest(0).await;
        System::current().stop_with_code(0);
    });
}
