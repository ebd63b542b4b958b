//! [`MailNotifier`]: turns each [`Notify`] into a spooled report mail and
//! delivers the spool in the background, oldest first.
//!
//! Life of a mail: the handler gives it the next sequence number and starts
//! writing it to the spool (`spawn_blocking`); once on disk it joins the
//! queue. One delivery attempt runs at a time, always for the oldest mail,
//! in a future spawned on the actor's context, so the mailbox stays free
//! however slow the server. Success removes the spool file, then raises
//! `MailSent`; failure raises `MailFailed` (once per distinct cause of a
//! mail, so a long outage does not flood the alert log) and retries the
//! same mail after a growing pause, while later mails wait their turn.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::compose::{render, MailRecord};
use super::config::{MailConfig, Secret, SmtpAuth};
use super::password::LoadPassword;
use super::smtp::{self, Delivery, Endpoint, Login};
use super::spool::Spool;
use super::{GetMailQueue, MailQueue, Reconfigure, SendTest};
use crate::model::catalog::Event;
use crate::notify::alert_log::Alerter;
use crate::notify::Notify;

/// Pauses between attempts on the same mail: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// 10 s doubling to 10 min.
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(10),
            max: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The pause after the `failures`-th failed attempt (1 = the first).
    pub fn pause(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// A mail in the queue (already on disk, unless writing it failed).
struct Queued {
    record: MailRecord,
    /// Has a spool file to remove once sent.
    spooled: bool,
    failures: u32,
    not_before: Instant,
    last_cause: Option<String>,
}

pub struct MailNotifier {
    config: MailConfig,
    password: Option<Secret>,
    spool: Spool,
    alerter: Alerter,
    retry: RetryPolicy,
    helo: String,
    next_seq: u64,
    /// Mails still being written to the spool.
    writing: BTreeSet<u64>,
    queue: BTreeMap<u64, Queued>,
    in_flight: bool,
    wake: Option<SpawnHandle>,
    /// Counts `Reconfigure`s: an attempt made under older settings that
    /// fails is retried at once.
    generation: u64,
    /// Where the spool's depth is published (the daemon's metrics).
    metrics: Option<crate::metrics::Metrics>,
}

impl MailNotifier {
    /// Reads the password (file) and the spool of `state_dir`. Blocking
    /// file I/O: call it before starting the actor (daemon start-up). Mails
    /// found in the spool are delivered first, in their order.
    pub fn new(
        config: MailConfig,
        state_dir: &Path,
        alerter: Alerter,
    ) -> Result<MailNotifier, String> {
        let password = config.load_password()?;
        let spool = Spool::open(state_dir)
            .map_err(|e| format!("mail spool in {}: {e}", state_dir.display()))?;
        let spool_err = |e: std::io::Error| format!("mail spool {}: {e}", spool.dir().display());
        let super::spool::Loaded { mails, problems } = spool.load().map_err(spool_err)?;
        for p in problems {
            tracing::error!("mail spool: {p}");
        }
        let next_seq = spool.next_seq().map_err(spool_err)?;
        if !mails.is_empty() {
            tracing::info!("mail spool: {} mail(s) left to send", mails.len());
        }
        let now = Instant::now();
        let queue = mails
            .into_iter()
            .map(|(seq, record)| {
                (
                    seq,
                    Queued {
                        record,
                        spooled: true,
                        failures: 0,
                        not_before: now,
                        last_cause: None,
                    },
                )
            })
            .collect();
        Ok(MailNotifier {
            config,
            password,
            spool,
            alerter,
            retry: RetryPolicy::default(),
            helo: smtp::helo_name(),
            next_seq,
            writing: BTreeSet::new(),
            queue,
            in_flight: false,
            wake: None,
            generation: 0,
            metrics: None,
        })
    }

    /// Publishes the spool's depth in `metrics` from now on.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> MailNotifier {
        metrics.set_mail_spool(self.waiting());
        self.metrics = Some(metrics);
        self
    }

    /// Mails not delivered yet: spooled, or being written to the spool.
    fn waiting(&self) -> usize {
        self.queue.len() + self.writing.len()
    }

    /// The spool's depth changed.
    fn publish_depth(&self) {
        if let Some(m) = &self.metrics {
            m.set_mail_spool(self.waiting());
        }
    }

    /// Another retry policy (tests use short pauses).
    pub fn with_retry(mut self, retry: RetryPolicy) -> MailNotifier {
        self.retry = retry;
        self
    }

    /// `new` and start, on the current arbiter.
    pub fn start_with(
        config: MailConfig,
        state_dir: &Path,
        alerter: Alerter,
    ) -> Result<Addr<MailNotifier>, String> {
        Ok(MailNotifier::new(config, state_dir, alerter)?.start())
    }

    /// The exchange's parameters under the current settings.
    fn delivery(&self) -> Delivery {
        let c = &self.config;
        let login = match (c.authentication, &c.user, &self.password) {
            (SmtpAuth::None, _, _) => None,
            (mode, Some(user), Some(password)) => Some(Login {
                mode,
                user: user.clone(),
                password: password.clone(),
            }),
            // Validation rejects this; without credentials, try without.
            _ => None,
        };
        Delivery {
            primary: Endpoint {
                host: c.server.clone(),
                port: c.port,
            },
            alternative: c.alternative.as_ref().map(|a| Endpoint {
                host: a.host.clone(),
                port: a.port,
            }),
            login,
            wait: Duration::from_secs(u64::from(c.response_wait_secs.max(1))),
            helo: self.helo.clone(),
        }
    }

    /// Starts the next attempt if none runs and the oldest mail is due.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
        }
        let Some((&seq, queued)) = self.queue.first_key_value() else {
            return;
        };
        // An older mail still being written goes first.
        if self.writing.first().is_some_and(|&w| w < seq) {
            return;
        }
        let now = Instant::now();
        if queued.not_before > now {
            if let Some(h) = self.wake.take() {
                ctx.cancel_future(h);
            }
            let pause = queued.not_before - now;
            self.wake = Some(ctx.run_later(pause, |act, ctx| {
                act.wake = None;
                act.pump(ctx);
            }));
            return;
        }
        if let Some(h) = self.wake.take() {
            ctx.cancel_future(h);
        }
        self.in_flight = true;
        let delivery = self.delivery();
        let mail = render(&queued.record, &self.config);
        let generation = self.generation;
        ctx.spawn(
            async move { smtp::deliver(&delivery, &mail).await }
                .into_actor(self)
                .map(move |result, act, ctx| act.attempt_done(seq, generation, result, ctx)),
        );
    }

    fn attempt_done(
        &mut self,
        seq: u64,
        generation: u64,
        result: Result<String, String>,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok(server) => {
                let Some(done) = self.queue.remove(&seq) else {
                    self.in_flight = false;
                    return self.pump(ctx);
                };
                self.publish_depth();
                let alert = done.record.alert;
                if !done.spooled {
                    self.alerter.raise(Event::MailSent { server, alert });
                    self.in_flight = false;
                    return self.pump(ctx);
                }
                // The file goes before MailSent is raised: whoever sees the
                // event may stop the daemon, and the mail must not come back.
                let spool = self.spool.clone();
                ctx.spawn(
                    async move { tokio::task::spawn_blocking(move || spool.remove(seq)).await }
                        .into_actor(self)
                        .map(move |removed, act, ctx| {
                            match removed {
                                Ok(Ok(())) => {}
                                Ok(Err(e)) => tracing::error!(
                                    "mail spool: cannot remove the sent mail {seq}: {e} (it will be sent again at the next start)"
                                ),
                                Err(e) => tracing::error!("mail spool: {e}"),
                            }
                            act.alerter.raise(Event::MailSent { server, alert });
                            act.in_flight = false;
                            act.pump(ctx);
                        }),
                );
            }
            Err(cause) => {
                self.in_flight = false;
                let Some(q) = self.queue.get_mut(&seq) else {
                    return self.pump(ctx);
                };
                q.failures += 1;
                let pause = if generation == self.generation {
                    self.retry.pause(q.failures)
                } else {
                    Duration::ZERO
                };
                q.not_before = Instant::now() + pause;
                tracing::warn!(
                    "report mail {} not sent (attempt {}): {cause}; next attempt in {}",
                    q.record.message_id,
                    q.failures,
                    humantime::format_duration(pause)
                );
                if q.last_cause.as_deref() != Some(cause.as_str()) {
                    self.alerter.raise(Event::MailFailed {
                        cause: cause.clone(),
                        alert: q.record.alert.clone(),
                    });
                    q.last_cause = Some(cause);
                }
                self.pump(ctx);
            }
        }
    }
}

impl Actor for MailNotifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.pump(ctx);
    }
}

impl Handler<Notify> for MailNotifier {
    type Result = ();

    fn handle(&mut self, msg: Notify, ctx: &mut Context<Self>) {
        // Never mail about mailing: a failing server would feed itself.
        if msg.alert.module == "alert" && matches!(msg.alert.event_id, 5 | 6) {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = MailRecord::for_alert(
            &msg.alert,
            &msg.cluster,
            &self.alerter.server,
            &self.config.title,
            seq,
        );
        self.writing.insert(seq);
        self.publish_depth();
        let spool = self.spool.clone();
        let to_write = record.clone();
        ctx.spawn(
            async move { tokio::task::spawn_blocking(move || spool.write(seq, &to_write)).await }
                .into_actor(self)
                .map(move |written, act, ctx| {
                    let spooled = match written {
                        Ok(Ok(())) => true,
                        // Still sent from memory; only a crash would lose it.
                        Ok(Err(e)) => {
                            tracing::error!("mail spool: cannot write mail {seq}: {e}");
                            false
                        }
                        Err(e) => {
                            tracing::error!("mail spool: {e}");
                            false
                        }
                    };
                    act.writing.remove(&seq);
                    act.queue.insert(
                        seq,
                        Queued {
                            record,
                            spooled,
                            failures: 0,
                            not_before: Instant::now(),
                            last_cause: None,
                        },
                    );
                    act.pump(ctx);
                }),
        );
    }
}

impl Handler<Reconfigure> for MailNotifier {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, ctx: &mut Context<Self>) {
        self.config = msg.config;
        self.password = msg.password;
        self.generation += 1;
        // The new settings may be the fix: no waiting out the old pause.
        let now = Instant::now();
        for q in self.queue.values_mut() {
            q.not_before = now;
            q.last_cause = None;
        }
        self.pump(ctx);
    }
}

impl Handler<GetMailQueue> for MailNotifier {
    type Result = MessageResult<GetMailQueue>;

    fn handle(&mut self, _: GetMailQueue, _: &mut Context<Self>) -> Self::Result {
        let oldest = self.queue.values().next();
        MessageResult(MailQueue {
            waiting: self.waiting(),
            failures: oldest.map_or(0, |q| q.failures),
            last_cause: oldest.and_then(|q| q.last_cause.clone()),
        })
    }
}

impl Handler<SendTest> for MailNotifier {
    type Result = ResponseActFuture<Self, Result<String, String>>;

    /// Sent at once, outside the spool and its order, without retries: the
    /// answer is for an operator waiting at the command line.
    fn handle(&mut self, msg: SendTest, _ctx: &mut Context<Self>) -> Self::Result {
        let record = MailRecord::test_mail(
            &msg.cluster,
            &self.alerter.server,
            &self.config.title,
            &msg.by,
        );
        let alert = record.alert.clone();
        let delivery = self.delivery();
        let mail = render(&record, &self.config);
        Box::pin(
            async move { smtp::deliver(&delivery, &mail).await }
                .into_actor(self)
                .map(move |result, act, _| {
                    match &result {
                        Ok(server) => act.alerter.raise(Event::MailSent {
                            server: server.clone(),
                            alert,
                        }),
                        Err(cause) => act.alerter.raise(Event::MailFailed {
                            cause: cause.clone(),
                            alert,
                        }),
                    }
                    result
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_double_up_to_the_maximum() {
        let r = RetryPolicy::default();
        let secs: Vec<u64> = (1..=9).map(|n| r.pause(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(r.pause(u32::MAX), Duration::from_secs(600));
        let fast = RetryPolicy {
            first: Duration::from_millis(100),
            max: Duration::from_millis(400),
        };
        assert_eq!(fast.pause(4), Duration::from_millis(400));
    }
}
