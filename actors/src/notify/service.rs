//! The alert service as a whole: the notifiers a configuration asks for and
//! the router that feeds them, started together and reconfigured together
//! when a pushed configuration changes the alert settings (a change that is
//! safe to apply online).

use std::path::{Path, PathBuf};

use actix::prelude::*;

use super::alert_log::{AlertLogHandle, Alerter};
use super::lamp::LampNotifier;
use super::router::{AlertRouter, Reconfigure, RouterSettings};
use super::syslog::SyslogNotifier;
use crate::model::config::{AlertsConfig, ClusterConfig};

pub struct AlertService {
    pub router: Addr<AlertRouter>,
    pub lamps: Option<Addr<LampNotifier>>,
    /// Raises the notifiers' own events: to the alert log only, never back
    /// into the notifiers.
    own: Alerter,
    cluster: String,
    state_dir: PathBuf,
}

impl AlertService {
    /// Starts the notifiers of `config.alerts` and the router (inside a
    /// running actix system).
    pub fn start(
        config: &ClusterConfig,
        local: &str,
        state_dir: &Path,
        log: &AlertLogHandle,
    ) -> AlertService {
        let own = Alerter {
            log: log.clone(),
            server: local.to_string(),
            router: None,
        };
        let router = AlertRouter::new(
            RouterSettings {
                cluster: config.name.clone(),
                ..Default::default()
            },
            state_dir,
        )
        .start();
        let mut service = AlertService {
            router,
            lamps: None,
            own,
            cluster: config.name.clone(),
            state_dir: state_dir.to_path_buf(),
        };
        service.apply(&config.alerts);
        service
    }

    /// (Re)creates the notifiers for `alerts` and gives the router its new
    /// rules. A notifier replaced here stops once its queue is empty.
    pub fn apply(&mut self, alerts: &AlertsConfig) {
        let syslog = alerts
            .syslog
            .clone()
            .map(|c| SyslogNotifier::new(c, self.own.clone()).start().recipient());
        self.lamps = match (alerts.lamps.clone().filter(|l| l.enabled), self.lamps.take()) {
            (Some(c), Some(addr)) => {
                addr.do_send(super::lamp::Reconfigure(c));
                Some(addr)
            }
            (Some(c), None) => Some(LampNotifier::new(c, self.own.clone()).start()),
            (None, _) => None,
        };
        let _ = &self.state_dir;
        self.router.do_send(Reconfigure(RouterSettings {
            cluster: self.cluster.clone(),
            routes: alerts.routes.clone(),
            syslog,
            resume_after_hours: 12,
            ..Default::default()
        }));
    }
}
