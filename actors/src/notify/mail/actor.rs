//! [`MailNotifier`]: turns each [`Notify`] into a spooled report mail and
//! delivers the spool in the background, oldest first.
//!
//! Life of a mail: the handler gives it the next sequence number and adds
//! it to the next spool batch. One batch is written at a time, on the
//! blocking pool (see [`spool`](super::spool)); mails that arrive meanwhile
//! form the next one. Once its batch is on disk, a mail joins the queue.
//!
//! Delivery: a session sends the queue's mails, oldest first, over one
//! SMTP connection. Each mail is one step, a future spawned on the actor's
//! context, so the mailbox stays free however slow the server; between
//! steps the actor takes the outcome and picks the next mail. An accepted
//! mail leaves the queue and joins the next removal batch of the spool;
//! `MailSent` is raised once its file's removal is on disk. Removals wait
//! while the spool is writing, up to [`REMOVAL_WAIT`]: on a disk that
//! flushes slowly they would slow the writes down, and a mail not yet on
//! disk is lost by a crash, where a sent mail not yet removed is only sent
//! again. A failure ends
//! the session and counts for the mail it happened on: `MailFailed` (once
//! per distinct cause of a mail, so a long outage does not flood the alert
//! log), and the same mail is retried after a growing pause while later
//! mails wait their turn. A session ends when no mail is due (its
//! connection is kept a moment, [`IDLE`], while mails are on their way to
//! the spool), after [`SESSION_MAILS`] mails, and when the settings change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::compose::{render, MailRecord};
use super::config::{MailConfig, Secret, SmtpAuth};
use super::password::LoadPassword;
use super::smtp::{self, Delivery, Endpoint, Login, Session};
use super::spool::Spool;
use super::{GetMailQueue, MailQueue, Reconfigure, SendTest};
use crate::model::catalog::Event;
use crate::notify::alert_log::Alerter;
use crate::notify::Notify;

/// Mails sent over one connection at most; the next one opens another.
pub const SESSION_MAILS: usize = 500;
/// How long a session's connection waits for mails still being written to
/// the spool before it is closed.
pub const IDLE: Duration = Duration::from_millis(500);
/// Mails written to the spool in one batch at most: a burst reaches the
/// server while its later mails are still being written.
const WRITE_BATCH: usize = 256;
/// How long the removal of sent mails waits at most while the spool is
/// writing.
pub const REMOVAL_WAIT: Duration = Duration::from_secs(5);

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

/// A mail in the queue (on disk, unless writing it failed).
struct Queued {
    record: MailRecord,
    failures: u32,
    not_before: Instant,
    last_cause: Option<String>,
}

/// A mail a server accepted, whose spool file is still to be removed.
struct Sent {
    seq: u64,
    server: String,
    alert: String,
}

/// A session between mails, waiting for mails on their way to the spool.
struct Idle {
    session: Session,
    /// The settings it was opened under.
    generation: u64,
    timer: SpawnHandle,
}

impl Queued {
    /// A mail due at `now`, never tried.
    fn new(record: MailRecord, now: Instant) -> Queued {
        Queued {
            record,
            failures: 0,
            not_before: now,
            last_cause: None,
        }
    }
}

pub struct MailNotifier {
    config: MailConfig,
    password: Option<Secret>,
    spool: Spool,
    alerter: Alerter,
    retry: RetryPolicy,
    helo: String,
    next_seq: u64,
    /// Mails for the next spool batch.
    to_write: Vec<(u64, MailRecord)>,
    /// Mails not on disk yet: in `to_write` or in the batch being written.
    writing: BTreeSet<u64>,
    /// A spool batch is being written.
    write_running: bool,
    queue: BTreeMap<u64, Queued>,
    /// A mail is being sent.
    in_flight: bool,
    /// The open session when no mail is being sent.
    idle: Option<Idle>,
    wake: Option<SpawnHandle>,
    /// Sent mails for the next removal batch.
    to_remove: Vec<Sent>,
    /// Since when the oldest of them waits.
    to_remove_since: Option<Instant>,
    /// A wake-up at the end of [`REMOVAL_WAIT`] for them.
    removal_wake: Option<SpawnHandle>,
    /// A removal batch is running.
    remove_running: bool,
    /// Counts `Reconfigure`s: an attempt made under older settings that
    /// fails is retried at once, and a session opened under them ends.
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
            .map(|(seq, record)| (seq, Queued::new(record, now)))
            .collect();
        Ok(MailNotifier {
            config,
            password,
            spool,
            alerter,
            retry: RetryPolicy::default(),
            helo: smtp::helo_name(),
            next_seq,
            to_write: Vec::new(),
            writing: BTreeSet::new(),
            write_running: false,
            queue,
            in_flight: false,
            idle: None,
            wake: None,
            to_remove: Vec::new(),
            to_remove_since: None,
            removal_wake: None,
            remove_running: false,
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
            wait: self.wait(),
            helo: self.helo.clone(),
        }
    }

    /// The longest wait for the server at each step.
    fn wait(&self) -> Duration {
        Duration::from_secs(u64::from(self.config.response_wait_secs.max(1)))
    }

    /// Writes the next spool batch, unless one is being written.
    fn write_next(&mut self, ctx: &mut Context<Self>) {
        if self.write_running || self.to_write.is_empty() {
            return;
        }
        self.write_running = true;
        let rest = self
            .to_write
            .split_off(self.to_write.len().min(WRITE_BATCH));
        let batch = Arc::new(std::mem::replace(&mut self.to_write, rest));
        let for_disk = Arc::clone(&batch);
        let spool = self.spool.clone();
        ctx.spawn(
            async move { tokio::task::spawn_blocking(move || spool.write_batch(&for_disk)).await }
                .into_actor(self)
                .map(move |written, act, ctx| {
                    let results = written.unwrap_or_else(|e| {
                        tracing::error!("mail spool: {e}");
                        Vec::new()
                    });
                    let batch = Arc::try_unwrap(batch).unwrap_or_else(|b| (*b).clone());
                    let now = Instant::now();
                    for (i, (seq, record)) in batch.into_iter().enumerate() {
                        // A mail not on disk is still sent, from memory;
                        // only a crash before then would lose it.
                        match results.get(i) {
                            Some(Ok(())) => {}
                            Some(Err(e)) => {
                                tracing::error!("mail spool: cannot write mail {seq}: {e}")
                            }
                            None => tracing::error!("mail spool: mail {seq} not written"),
                        }
                        act.writing.remove(&seq);
                        act.queue.insert(seq, Queued::new(record, now));
                    }
                    act.write_running = false;
                    act.write_next(ctx);
                    act.remove_next(ctx);
                    act.pump(ctx);
                }),
        );
    }

    /// Starts sending, over the idle session if there is one, unless a
    /// mail is being sent.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
        }
        let session = self.idle.take().and_then(|idle| {
            ctx.cancel_future(idle.timer);
            self.current(idle.session, idle.generation, ctx)
        });
        self.step(session, ctx);
    }

    /// `session` if it was opened under the current settings; else it is
    /// closed.
    fn current(
        &mut self,
        session: Session,
        generation: u64,
        ctx: &mut Context<Self>,
    ) -> Option<Session> {
        if generation == self.generation {
            Some(session)
        } else {
            self.close(session, ctx);
            None
        }
    }

    /// The oldest mail, if it is due; if it waits out a pause, a wake-up
    /// at the pause's end.
    fn due(&mut self, ctx: &mut Context<Self>) -> Option<u64> {
        let (&seq, queued) = self.queue.first_key_value()?;
        // An older mail still being written goes first.
        if self.writing.first().is_some_and(|&w| w < seq) {
            return None;
        }
        if let Some(h) = self.wake.take() {
            ctx.cancel_future(h);
        }
        let now = Instant::now();
        if queued.not_before > now {
            let pause = queued.not_before - now;
            self.wake = Some(ctx.run_later(pause, |act, ctx| {
                act.wake = None;
                act.pump(ctx);
            }));
            return None;
        }
        Some(seq)
    }

    /// Sends the oldest mail if it is due, over `session` when one is open
    /// (a new one otherwise); without a due mail the session ends.
    fn step(&mut self, session: Option<Session>, ctx: &mut Context<Self>) {
        let Some(seq) = self.due(ctx) else {
            if let Some(session) = session {
                self.end_session(session, ctx);
            }
            return;
        };
        let session = match session {
            Some(s) if s.mails() >= SESSION_MAILS => {
                self.close(s, ctx);
                None
            }
            other => other,
        };
        self.in_flight = true;
        let mail = render(&self.queue[&seq].record, &self.config);
        let delivery = self.delivery();
        let generation = self.generation;
        ctx.spawn(
            async move { smtp::send(&delivery, session, &mail).await }
                .into_actor(self)
                .map(move |(result, session), act, ctx| {
                    act.in_flight = false;
                    match result {
                        Ok(server) => act.sent(seq, server, ctx),
                        Err(cause) => act.failed(seq, generation, cause),
                    }
                    let session = session.and_then(|s| act.current(s, generation, ctx));
                    act.step(session, ctx);
                }),
        );
    }

    /// No mail is due: the session waits a moment when mails are on their
    /// way to the spool, else it is closed.
    fn end_session(&mut self, session: Session, ctx: &mut Context<Self>) {
        if self.writing.is_empty() {
            return self.close(session, ctx);
        }
        let timer = ctx.run_later(IDLE, |act, ctx| {
            if let Some(idle) = act.idle.take() {
                act.close(idle.session, ctx);
            }
        });
        self.idle = Some(Idle {
            session,
            generation: self.generation,
            timer,
        });
    }

    /// Says goodbye to the server, in the background.
    fn close(&mut self, session: Session, ctx: &mut Context<Self>) {
        let wait = self.wait();
        ctx.spawn(async move { session.close(wait).await }.into_actor(self));
    }

    /// The server accepted mail `seq`: it leaves the queue, and its file
    /// goes in the next removal batch.
    fn sent(&mut self, seq: u64, server: String, ctx: &mut Context<Self>) {
        let Some(done) = self.queue.remove(&seq) else {
            return;
        };
        self.publish_depth();
        if self.to_remove.is_empty() {
            self.to_remove_since = Some(Instant::now());
        }
        self.to_remove.push(Sent {
            seq,
            server,
            alert: done.record.alert,
        });
        self.remove_next(ctx);
    }

    /// Mail `seq` was not sent: counted, reported once per cause, retried
    /// after a pause (at once if the settings changed meanwhile).
    fn failed(&mut self, seq: u64, generation: u64, cause: String) {
        let Some(q) = self.queue.get_mut(&seq) else {
            return;
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
    }

    /// Removes the files of the sent mails, unless a removal batch runs
    /// or (for up to [`REMOVAL_WAIT`]) the spool is writing; then raises
    /// `MailSent` for each.
    fn remove_next(&mut self, ctx: &mut Context<Self>) {
        if self.remove_running || self.to_remove.is_empty() {
            return;
        }
        let writing = self.write_running || !self.to_write.is_empty();
        if let Some(wait) = removal_wait(writing, self.to_remove_since, Instant::now()) {
            if self.removal_wake.is_none() {
                self.removal_wake = Some(ctx.run_later(wait, |act, ctx| {
                    act.removal_wake = None;
                    act.remove_next(ctx);
                }));
            }
            return;
        }
        if let Some(h) = self.removal_wake.take() {
            ctx.cancel_future(h);
        }
        self.to_remove_since = None;
        self.remove_running = true;
        let batch = std::mem::take(&mut self.to_remove);
        let seqs: Vec<u64> = batch.iter().map(|s| s.seq).collect();
        let spool = self.spool.clone();
        ctx.spawn(
            async move { tokio::task::spawn_blocking(move || spool.remove_batch(&seqs)).await }
                .into_actor(self)
                .map(move |removal, act, ctx| {
                    match removal {
                        Ok(removal) => {
                            for (seq, e) in removal.failed {
                                tracing::error!(
                                    "mail spool: cannot remove the sent mail {seq}: {e} (it will be sent again at the next start)"
                                );
                            }
                            if let Some(e) = removal.unsynced {
                                tracing::error!(
                                    "mail spool: the removal of {} sent mail(s) may not be on disk: {e} (after a crash they would be sent again)",
                                    batch.len()
                                );
                            }
                        }
                        Err(e) => tracing::error!("mail spool: {e}"),
                    }
                    // The files go before MailSent is raised: whoever sees
                    // the event may stop the daemon, and the mail must not
                    // come back.
                    for sent in batch {
                        act.alerter.raise(Event::MailSent {
                            server: sent.server,
                            alert: sent.alert,
                        });
                    }
                    act.remove_running = false;
                    act.remove_next(ctx);
                }),
        );
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
        self.to_write.push((seq, record));
        self.publish_depth();
        self.write_next(ctx);
    }
}

impl Handler<Reconfigure> for MailNotifier {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, ctx: &mut Context<Self>) {
        self.config = msg.config;
        self.password = msg.password;
        self.generation += 1;
        if let Some(idle) = self.idle.take() {
            ctx.cancel_future(idle.timer);
            self.close(idle.session, ctx);
        }
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

/// How much longer the files of sent mails should wait before they are
/// removed (`None`: remove them now). They wait only while the spool is
/// writing (so that removals do not slow a burst's writes), and the
/// oldest of them never longer than [`REMOVAL_WAIT`] (`since`: when it was
/// sent).
fn removal_wait(writing: bool, since: Option<Instant>, now: Instant) -> Option<Duration> {
    if !writing {
        return None;
    }
    let due = since.unwrap_or(now) + REMOVAL_WAIT;
    (due > now).then(|| due - now)
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

    /// Sent mails' files wait for the spool's writes, the oldest never
    /// past REMOVAL_WAIT however long the writes go on.
    #[test]
    fn removals_wait_for_writes_at_most_removal_wait() {
        let now = Instant::now() + Duration::from_secs(60);
        let ago = |ms| Some(now - Duration::from_millis(ms));
        assert_eq!(removal_wait(false, ago(0), now), None);
        assert_eq!(removal_wait(false, ago(60_000), now), None);
        assert_eq!(removal_wait(true, ago(0), now), Some(REMOVAL_WAIT));
        assert_eq!(
            removal_wait(true, ago(1_500), now),
            Some(REMOVAL_WAIT - Duration::from_millis(1_500))
        );
        assert_eq!(removal_wait(true, ago(5_000), now), None);
        assert_eq!(removal_wait(true, ago(60_000), now), None);
        // A burst that keeps writing: the wake-up it asks for, followed,
        // lands exactly at the bound and then the removal goes ahead.
        let since = now;
        let mut t = now;
        while let Some(wait) = removal_wait(true, Some(since), t) {
            t += wait.min(Duration::from_millis(700));
        }
        assert_eq!(t - since, REMOVAL_WAIT);
    }
}
