//! The alert router: every alert is written to the alert log by the
//! [`Alerter`](super::alert_log::Alerter) itself (on the log's own thread,
//! so nothing is lost while the actors' thread is busy); the router then
//! decides, with [`crate::model::routing`], which notifiers carry it
//! further and hands each of them a [`Notify`]. Notifiers are actors of
//! their own: a slow or broken one never delays the others, the router or
//! the coordinator.
//!
//! Notification can be suspended (`understudy alert suspend`): nothing goes
//! to the notifiers until `alert resume` or the automatic resume after the
//! configured hours. The deadline is kept in the state directory, so a
//! restart neither forgets a suspend nor extends it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;

use super::Notify;
use crate::model::catalog::{Alert, Event};
use crate::model::routing::{self, AlertRoute, OptionalMails};

/// An alert for the router. `mail_allowed`: false when another server
/// reports the same event by mail.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Routed {
    pub alert: Alert,
    pub mail_allowed: bool,
    /// Fixed destinations (a test alert), instead of the routing rules.
    pub force: Option<routing::Destinations>,
    /// Only the mail part of the routing (the alert went to the others when
    /// it was raised here).
    pub only_mail: bool,
}

/// Where the router sends, and by which rules.
#[derive(Clone, Default)]
pub struct RouterSettings {
    pub cluster: String,
    pub routes: Vec<AlertRoute>,
    pub optional: OptionalMails,
    pub mail: Option<Recipient<Notify>>,
    pub syslog: Option<Recipient<Notify>>,
    pub snmp: Option<Recipient<Notify>>,
    /// Automatic resume after a suspend, hours (mail setting, default 12).
    pub resume_after_hours: u32,
}

pub struct AlertRouter {
    settings: RouterSettings,
    state_file: PathBuf,
    suspended_until: Option<SystemTime>,
    /// Alerts routed to each notifier since the start (status, tests).
    pub counts: RouterCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterCounts {
    pub mail: u64,
    pub syslog: u64,
    pub snmp: u64,
    /// Held back while notification was suspended.
    pub held: u64,
}

impl AlertRouter {
    /// `state_dir`: where the suspend deadline is kept.
    pub fn new(settings: RouterSettings, state_dir: &std::path::Path) -> Self {
        let state_file = state_dir.join("alert-suspend");
        let suspended_until = std::fs::read_to_string(&state_file)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
            .filter(|t| *t > SystemTime::now());
        AlertRouter {
            settings,
            state_file,
            suspended_until,
            counts: RouterCounts::default(),
        }
    }

    fn suspended(&mut self) -> bool {
        match self.suspended_until {
            Some(t) if t > SystemTime::now() => true,
            Some(_) => {
                self.suspended_until = None;
                let _ = std::fs::remove_file(&self.state_file);
                false
            }
            None => false,
        }
    }
}

impl Actor for AlertRouter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The automatic resume is checked once a minute; a suspend that
        // ended while the daemon was down is over at once.
        ctx.run_interval(Duration::from_secs(60), |act, _| {
            let _ = act.suspended();
        });
    }
}

impl Handler<Routed> for AlertRouter {
    type Result = ();

    fn handle(&mut self, msg: Routed, _: &mut Context<Self>) {
        let a = &msg.alert;
        // Suspend and resume are themselves reported (optional mails).
        let about_suspend = a.module == "alert" && matches!(a.event_id, 3 | 4);
        if self.suspended() && !about_suspend {
            self.counts.held += 1;
            return;
        }
        let mut d = msg.force.unwrap_or_else(|| {
            routing::route(
                &a.module,
                a.event_id,
                &self.settings.routes,
                self.settings.optional,
                msg.mail_allowed,
            )
        });
        if msg.only_mail {
            d.syslog = false;
        }
        let notify = Notify {
            alert: msg.alert.clone(),
            cluster: self.settings.cluster.clone(),
        };
        if d.mail {
            if let Some(m) = &self.settings.mail {
                self.counts.mail += 1;
                m.do_send(notify.clone());
            }
        }
        if d.snmp {
            if let Some(s) = &self.settings.snmp {
                self.counts.snmp += 1;
                s.do_send(notify.clone());
            }
        }
        if d.syslog {
            if let Some(s) = &self.settings.syslog {
                self.counts.syslog += 1;
                s.do_send(notify);
            }
        }
    }
}

/// `alert suspend` (`hours`: None = the configured automatic resume) or
/// `alert resume` (`suspend: false`). Answers what happened.
#[derive(Message)]
#[rtype(result = "Result<String, String>")]
pub struct SetNotification {
    pub suspend: bool,
}

impl Handler<SetNotification> for AlertRouter {
    type Result = ResponseActFuture<Self, Result<String, String>>;

    fn handle(&mut self, msg: SetNotification, _: &mut Context<Self>) -> Self::Result {
        let file = self.state_file.clone();
        if msg.suspend {
            let hours = self.settings.resume_after_hours.max(1);
            let until = SystemTime::now() + Duration::from_secs(hours as u64 * 3600);
            let secs = until
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            // The fsync'd write runs in the blocking pool, off the actors'
            // thread; the suspend counts once it is on disk.
            let write = tokio::task::spawn_blocking(move || {
                crate::atomic_file::write_atomically(&file, format!("{secs}\n").as_bytes(), 0o644)
            });
            Box::pin(write.into_actor(self).map(move |r, act, _| {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(format!("cannot record the suspend: {e}")),
                    Err(e) => return Err(format!("cannot record the suspend: {e}")),
                }
                act.suspended_until = Some(until);
                Ok(format!(
                    "notification suspended; it resumes by itself in {hours} h"
                ))
            }))
        } else {
            let was = self.suspended();
            self.suspended_until = None;
            let remove = tokio::task::spawn_blocking(move || std::fs::remove_file(&file));
            Box::pin(remove.into_actor(self).map(move |_, _, _| {
                Ok(if was {
                    "notification resumed".into()
                } else {
                    "notification was not suspended".into()
                })
            }))
        }
    }
}

/// New rules or notifiers (a configuration change applied online).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure(pub RouterSettings);

impl Handler<Reconfigure> for AlertRouter {
    type Result = ();
    fn handle(&mut self, msg: Reconfigure, _: &mut Context<Self>) {
        self.settings = msg.0;
    }
}

/// The router's figures, for status and tests.
#[derive(Message)]
#[rtype(result = "(RouterCounts, Option<SystemTime>)")]
pub struct RouterState;

impl Handler<RouterState> for AlertRouter {
    type Result = MessageResult<RouterState>;
    fn handle(&mut self, _: RouterState, _: &mut Context<Self>) -> Self::Result {
        let s = self.suspended();
        MessageResult((self.counts, if s { self.suspended_until } else { None }))
    }
}

/// The event raised when notification is suspended or resumed.
pub fn suspend_event(suspend: bool, by: &str, hours: u32) -> Event {
    if suspend {
        Event::AlertMonitoringSuspended {
            by: by.to_string(),
            hours,
        }
    } else {
        Event::AlertMonitoringResumed { by: by.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::Level;

    /// Collects what reaches a notifier.
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<Alert>>>);
    impl Actor for Sink {
        type Context = Context<Self>;
    }
    impl Handler<Notify> for Sink {
        type Result = ();
        fn handle(&mut self, msg: Notify, _: &mut Context<Self>) {
            self.0.lock().unwrap().push(msg.alert);
        }
    }
    /// Answered after every earlier Notify (a mailbox is FIFO).
    #[derive(Message)]
    #[rtype(result = "()")]
    struct Flush;
    impl Handler<Flush> for Sink {
        type Result = ();
        fn handle(&mut self, _: Flush, _: &mut Context<Self>) {}
    }

    #[test]
    fn a_suspend_whose_deadline_passed_is_over() {
        let dir = std::env::temp_dir().join(format!("us-router-past-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Suspended until one second after the epoch: long over.
        std::fs::write(dir.join("alert-suspend"), "1\n").unwrap();
        let mut r = AlertRouter::new(RouterSettings::default(), &dir);
        assert!(!r.suspended());
        let future = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        std::fs::write(dir.join("alert-suspend"), format!("{future}\n")).unwrap();
        let mut r = AlertRouter::new(RouterSettings::default(), &dir);
        assert!(r.suspended());
        // The deadline passes: resumed, and the record goes.
        r.suspended_until = Some(SystemTime::now() - Duration::from_secs(1));
        assert!(!r.suspended());
        assert!(!dir.join("alert-suspend").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn alert(module: &str, id: u32) -> Alert {
        Alert {
            time: "2026-11-22T00:00:00.000Z".into(),
            server: "s1".into(),
            module: module.into(),
            event_id: id,
            level: Level::Error,
            message: format!("{module} {id}"),
        }
    }

    #[test]
    fn alerts_reach_the_notifiers_their_kind_routes_to_and_suspend_holds_them() {
        let dir = std::env::temp_dir().join(format!("us-router-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sys = System::new();
        let (mails, logs) = sys.block_on(async {
            let mails = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let mail_sink = Sink(mails.clone()).start();
            let syslog_sink = Sink(logs.clone()).start();
            let mail = mail_sink.clone().recipient();
            let syslog = syslog_sink.clone().recipient();
            let router = AlertRouter::new(
                RouterSettings {
                    cluster: "c".into(),
                    mail: Some(mail),
                    syslog: Some(syslog),
                    resume_after_hours: 12,
                    ..Default::default()
                },
                &dir,
            )
            .start();
            for (m, id, allowed) in [("rm", 9, true), ("rc", 10, true), ("nm", 1310, false)] {
                router.do_send(Routed {
                    alert: alert(m, id),
                    mail_allowed: allowed,
                    force: None,
                    only_mail: false,
                });
            }
            router
                .send(SetNotification { suspend: true })
                .await
                .unwrap()
                .unwrap();
            router.do_send(Routed {
                alert: alert("rm", 9),
                mail_allowed: true,
                force: None,
                only_mail: false,
            });
            let (counts, until) = router.send(RouterState).await.unwrap();
            assert_eq!(counts.held, 1);
            assert!(until.is_some());
            // A new router on the same state directory is still suspended.
            let again = AlertRouter::new(RouterSettings::default(), &dir).start();
            assert!(again.send(RouterState).await.unwrap().1.is_some());
            router
                .send(SetNotification { suspend: false })
                .await
                .unwrap()
                .unwrap();
            assert!(router.send(RouterState).await.unwrap().1.is_none());
            mail_sink.send(Flush).await.unwrap();
            syslog_sink.send(Flush).await.unwrap();
            (mails, logs)
        });
        let mails: Vec<String> = mails
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.message.clone())
            .collect();
        let logs = logs.lock().unwrap().len();
        assert_eq!(mails, vec!["rm 9".to_string()]);
        assert_eq!(logs, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
