//! The etcd witness: the vote is the key `<prefix>/vote`, held by the server
//! whose name it carries, attached to that server's etcd lease. etcd
//! deletes the key when the lease expires, and only then can another
//! server create it.
//!
//! Each round (every `ttl_secs / 3`):
//! 1. keep the lease alive: one keepalive request on the lease's keepalive
//!    stream, its response awaited before the next is sent; a new lease
//!    (grant) when there is none or etcd no longer knows it (expired);
//! 2. a transaction on the vote: if the key does not exist
//!    (`create_revision == 0`), put it with our name and lease; else read
//!    it. We hold the vote when it carries our name and our lease.
//!
//! Then a [`WitnessReport`]. Its `until` is the instant (daemon clock) the
//! successful keepalive or grant of this round was *sent* (read before the
//! request leaves), plus the TTL etcd returned: etcd renewed the lease no
//! earlier than that, so it cannot expire the key before `until` (up to the
//! rate difference of the two machines' clocks, parts per million). A
//! failed round never reports a later `until`.
//!
//! Why one stream answered in lockstep, and why a failure drops it: a
//! response is matched to its request by order only. A response arriving
//! after its request timed out would be taken for the next request's,
//! whose send instant is later: `until` would be too late. So any failed
//! or timed-out round drops the stream (and the connection), and a new
//! stream's own opening keepalive is not credited (etcd-client checks its
//! answer but does not return its TTL): the round sends one more.
//!
//! Every round is bounded by the round interval; a failed round is retried
//! 250 ms after it started, doubling, at most one interval (a round that
//! timed out at once); the connection is made anew after a round that got
//! no answer. Runs as one tokio task on the runtime it is spawned on (the
//! daemon's): nothing in it blocks (the TLS files are read with tokio::fs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, Error as EtcdError, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};

use super::WitnessReport;
use crate::heartbeat::since_start;
use crate::model::partition::EtcdWitness as EtcdWitnessConfig;

/// The shortest lease etcd grants with its default timing (it raises a
/// shorter TTL to 1.5 x its election timeout, rounded up).
pub const MIN_TTL_SECS: u32 = 2;
/// The longest lease this driver asks for (as `partition`'s `Etcd(...)`
/// allows).
pub const MAX_TTL_SECS: u32 = 60;
/// The first retry after a failed round; it doubles up to one interval.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// `EtcdWitness`: where the witness is and how long its lease lasts.
/// [`EtcdWitnessSettings::from_config`] makes it from the configuration's
/// `partition.methods[..]: Etcd(...)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "EtcdWitness")]
pub struct EtcdWitnessSettings {
    /// etcd's client URLs: `http://host:2379`, `https://host:2379`, or
    /// `host:2379` (https when the TLS files are given).
    pub endpoints: Vec<String>,
    /// The cluster's folder of keys, e.g. `/understudy/<cluster name>`; the
    /// vote is `<prefix>/vote`.
    pub prefix: String,
    /// The etcd lease's TTL (2-60 s): how long after its last successful
    /// keepalive a server that stopped talking to etcd keeps the vote, and
    /// so about how long the other servers wait for it.
    pub ttl_secs: u32,
    /// The CA that signed etcd's server certificate: TLS.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// This server's client certificate (PEM), with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// The key of `cert_file` (PEM).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl EtcdWitnessSettings {
    /// The driver's settings from the configuration's `Etcd(...)` of cluster
    /// `cluster`: the prefix defaults to `/understudy/<cluster>`; relative
    /// TLS file names are taken from `base_dir` (the configuration file's
    /// folder, as forced-stop scripts are).
    pub fn from_config(config: &EtcdWitnessConfig, cluster: &str, base_dir: &Path) -> Self {
        let file = |f: &Option<String>| f.as_ref().map(|f| base_dir.join(f));
        EtcdWitnessSettings {
            endpoints: config.endpoints.clone(),
            prefix: config
                .prefix
                .clone()
                .unwrap_or_else(|| format!("/understudy/{cluster}")),
            ttl_secs: config.ttl_secs,
            ca_file: file(&config.ca_file),
            cert_file: file(&config.cert_file),
            key_file: file(&config.key_file),
        }
    }

    /// The key whose holder has the vote.
    pub fn vote_key(&self) -> String {
        format!("{}/vote", self.prefix.trim_end_matches('/'))
    }

    /// How often the lease is kept alive and the vote checked: a third of
    /// the TTL. Also the bound of every request and of each round.
    pub fn round_interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.ttl_secs) * 1000 / 3)
    }

    fn tls(&self) -> bool {
        self.ca_file.is_some()
    }

    /// What is wrong with these settings: (field, problem). Empty when
    /// [`spawn`] accepts them.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.endpoints.is_empty() {
            problems.push((
                "endpoints",
                "at least one etcd endpoint is needed".to_string(),
            ));
        }
        for e in &self.endpoints {
            if e.trim().is_empty() {
                problems.push(("endpoints", "an endpoint is empty".to_string()));
            } else if self.tls() && e.starts_with("http://") {
                problems.push((
                    "endpoints",
                    format!("{e}: http:// with TLS (ca_file): use https:// or host:port"),
                ));
            } else if !self.tls() && e.starts_with("https://") {
                problems.push((
                    "endpoints",
                    format!("{e}: https:// needs ca_file (the CA of etcd's certificate)"),
                ));
            }
        }
        if self.prefix.trim_end_matches('/').is_empty() {
            problems.push((
                "prefix",
                "the cluster's key prefix is empty (e.g. \"/understudy/<cluster name>\")"
                    .to_string(),
            ));
        }
        if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&self.ttl_secs) {
            problems.push((
                "ttl_secs",
                format!(
                    "{} is out of range {MIN_TTL_SECS}-{MAX_TTL_SECS}",
                    self.ttl_secs
                ),
            ));
        }
        match (&self.ca_file, &self.cert_file, &self.key_file) {
            (_, Some(_), None) => problems.push(("key_file", "cert_file needs key_file".into())),
            (_, None, Some(_)) => problems.push(("cert_file", "key_file needs cert_file".into())),
            (None, Some(_), Some(_)) => problems.push((
                "ca_file",
                "a client certificate needs ca_file (the CA of etcd's certificate)".into(),
            )),
            _ => {}
        }
        problems
    }
}

/// Counters of one driver, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WitnessStats {
    /// Rounds run (succeeded or not).
    pub rounds: u64,
    /// Rounds that failed (unreachable, refused, timed out).
    pub failed_rounds: u64,
    /// Connections made (the first and every one after a failed round).
    pub connects: u64,
    /// Leases granted.
    pub grants: u64,
    /// Leases etcd no longer knew (expired while we could not renew them).
    pub leases_lost: u64,
    /// Times this server got the vote (from not holding it).
    pub votes_won: u64,
}

#[derive(Default)]
struct Counters {
    rounds: AtomicU64,
    failed_rounds: AtomicU64,
    connects: AtomicU64,
    grants: AtomicU64,
    leases_lost: AtomicU64,
    votes_won: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> WitnessStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WitnessStats {
            rounds: get(&self.rounds),
            failed_rounds: get(&self.failed_rounds),
            connects: get(&self.connects),
            grants: get(&self.grants),
            leases_lost: get(&self.leases_lost),
            votes_won: get(&self.votes_won),
        }
    }
}

/// A running etcd witness driver. Dropping it (or [`EtcdWitness::stop`])
/// ends its task at once: no more keepalives, so the lease, and the vote
/// with it, expires at etcd after its TTL. It does not revoke the lease: the
/// vote must outlive every `until` this driver reported.
pub struct EtcdWitness {
    task: JoinHandle<()>,
    counters: Arc<Counters>,
    campaign: Arc<AtomicBool>,
    /// Wakes the driver for a round at once (a change of campaign).
    wake: Arc<Notify>,
    held: watch::Receiver<Held>,
    interval: Duration,
}

/// What the driver's last round found of its vote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    holds: bool,
    /// When a round of this driver last deleted the vote it held.
    given_up: Option<Instant>,
}

impl EtcdWitness {
    pub fn stats(&self) -> WitnessStats {
        self.counters.get()
    }

    /// Whether to hold the vote (`true`, the start): when not, a round
    /// deletes the vote if this server holds it (then another server may
    /// take it at once) and takes it no more. The lease is kept. A change
    /// runs a round at once.
    pub fn set_campaign(&self, campaign: bool) {
        if self.campaign.swap(campaign, Ordering::AcqRel) != campaign {
            self.wake.notify_one();
        }
    }

    /// The end of an orderly stop, before the leave notice: while this
    /// driver holds the vote, waits for the round that gives it up (the
    /// brain asks once nothing is active here), at most two round
    /// intervals; then, if it was given up less than one and a half round
    /// intervals ago, waits out that time, in which the server that took
    /// the groups over takes the vote at a round of its own. Without this,
    /// that server counts one vote of three from the leave notice until the
    /// lease runs out, and lets the groups go meanwhile.
    pub fn hand_over(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut held = self.held.clone();
        let interval = self.interval;
        async move {
            if held.borrow().holds {
                let _ = timeout(2 * interval, held.wait_for(|h| !h.holds)).await;
            }
            let given_up = held.borrow().given_up;
            if let Some(at) = given_up {
                sleep_until(at + interval * 3 / 2).await;
            }
        }
    }

    /// Ends the driver (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for EtcdWitness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the etcd witness driver of server `server` on the current tokio
/// runtime (the daemon's actix System runs one): `report` gets a
/// [`WitnessReport`] after every round, from the driver's task; it must
/// not block (an actix `Recipient::do_send` does not). Errors: the
/// settings' problems ([`EtcdWitnessSettings::problems`]), one per line.
///
/// Panics outside a tokio runtime.
pub fn spawn<F>(
    settings: EtcdWitnessSettings,
    server: impl Into<String>,
    report: F,
) -> Result<EtcdWitness, String>
where
    F: FnMut(WitnessReport) + Send + 'static,
{
    let problems = settings.problems();
    if !problems.is_empty() {
        return Err(problems
            .iter()
            .map(|(field, problem)| format!("{field}: {problem}"))
            .collect::<Vec<_>>()
            .join("\n"));
    }
    let server = server.into();
    if server.is_empty() {
        return Err("the server name is empty".into());
    }
    let counters = Arc::new(Counters::default());
    let campaign = Arc::new(AtomicBool::new(true));
    let wake = Arc::new(Notify::new());
    let (held_tx, held) = watch::channel(Held::default());
    let interval = settings.round_interval();
    let task = tokio::spawn(run(
        settings,
        server,
        report,
        counters.clone(),
        Steering {
            campaign: campaign.clone(),
            wake: wake.clone(),
            held: held_tx,
        },
    ));
    Ok(EtcdWitness {
        task,
        counters,
        campaign,
        wake,
        held,
        interval,
    })
}

/// What the driver last knew for sure: the pure part of the reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Verdict {
    holds: bool,
    until: Duration,
}

impl Verdict {
    /// A round succeeded: the vote checked, the lease renewed until
    /// `lease_until`.
    fn succeeded(&mut self, holds: bool, lease_until: Duration) {
        *self = if holds {
            Verdict {
                holds: true,
                until: lease_until,
            }
        } else {
            Verdict::default()
        };
    }

    /// A round failed at `now`: what was sure stays sure until it lapses,
    /// never longer.
    fn failed(&mut self, now: Duration) {
        if now >= self.until {
            *self = Verdict::default();
        }
    }

    /// etcd no longer knows the lease: the vote went with it (whatever
    /// `until` said: only an operator's revoke can end a lease before).
    fn lease_lost(&mut self) {
        *self = Verdict::default();
    }
}

/// The instant up to which a lease renewed by a request sent at `sent`,
/// answered with `ttl_secs`, surely lives; None for a lease etcd no longer
/// knows (TTL 0 or less).
fn lease_until(sent: Duration, ttl_secs: i64) -> Option<Duration> {
    u64::try_from(ttl_secs)
        .ok()
        .filter(|&t| t > 0)
        .map(|t| sent + Duration::from_secs(t))
}

/// The retry delay after `failures` failed rounds in a row (>= 1).
fn retry_delay(failures: u32, interval: Duration) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(interval)
}

/// Why a round failed.
#[derive(Debug)]
enum Fault {
    /// No answer: transport error, timeout, etcd unavailable.
    Unreachable(String),
    /// etcd answered with an error (permissions, no leader, ...).
    Refused(String),
    /// etcd no longer knows our lease: the vote went with it.
    LeaseLost,
}

impl Fault {
    fn from_etcd(what: &str, e: EtcdError) -> Fault {
        use tonic::Code;
        match &e {
            EtcdError::GRpcStatus(s) if s.code() == Code::NotFound => Fault::LeaseLost,
            EtcdError::GRpcStatus(s)
                if matches!(
                    s.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
                ) =>
            {
                Fault::Unreachable(format!("{what}: {}", with_causes(s.message(), s)))
            }
            EtcdError::GRpcStatus(s) => {
                Fault::Refused(format!("{what}: {}", with_causes(s.message(), s)))
            }
            EtcdError::LeaseKeepAliveError(m) if m.contains("not found") => Fault::LeaseLost,
            _ => Fault::Unreachable(format!("{what}: {}", with_causes(&e.to_string(), &e))),
        }
    }

    fn reachable(&self) -> bool {
        !matches!(self, Fault::Unreachable(_))
    }

    fn text(&self) -> String {
        match self {
            Fault::Unreachable(m) | Fault::Refused(m) => m.clone(),
            Fault::LeaseLost => "the lease expired at etcd".into(),
        }
    }
}

/// `text`, then the causes of `e` that say more ("tcp connect error:
/// Connection refused (os error 111)").
fn with_causes(text: &str, e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = text.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !out.contains(&more) {
            out.push_str(": ");
            out.push_str(&more);
        }
        cause = c.source();
    }
    out
}

/// The lease this driver keeps alive, and its keepalive stream once open.
struct Lease {
    id: i64,
    stream: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
}

/// The driver's connection state between rounds.
#[derive(Default)]
struct Session {
    client: Option<Client>,
    lease: Option<Lease>,
    /// etcd said, during the last round, that it no longer knows our lease
    /// (and so deleted the vote if it was ours).
    lease_lost: bool,
}

/// The driver's side of what [`EtcdWitness`] steers and watches.
struct Steering {
    campaign: Arc<AtomicBool>,
    wake: Arc<Notify>,
    held: watch::Sender<Held>,
}

async fn run<F>(
    settings: EtcdWitnessSettings,
    server: String,
    mut report: F,
    counters: Arc<Counters>,
    steering: Steering,
) where
    F: FnMut(WitnessReport),
{
    let interval = settings.round_interval();
    let key = settings.vote_key();
    let mut session = Session::default();
    let mut verdict = Verdict::default();
    let mut failures = 0u32;
    tracing::info!(
        "etcd witness: {server} keeps a {} s lease on {} endpoint(s){}, vote {key}",
        settings.ttl_secs,
        settings.endpoints.len(),
        if settings.tls() { " (TLS)" } else { "" },
    );
    loop {
        let started = Instant::now();
        Counters::add(&counters.rounds);
        let outcome = match timeout(
            interval,
            round(
                &settings,
                &server,
                &key,
                &mut session,
                &counters,
                steering.campaign.load(Ordering::Acquire),
            ),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(Fault::Unreachable(format!(
                "no answer within {} ms",
                interval.as_millis()
            ))),
        };
        let was = verdict;
        if let Err(Fault::LeaseLost) = outcome {
            session.lease = None;
            session.lease_lost = true;
        }
        if std::mem::take(&mut session.lease_lost) {
            Counters::add(&counters.leases_lost);
            tracing::warn!("etcd witness: etcd no longer knows the lease (expired)");
            verdict.lease_lost();
        }
        let mut gave_up = false;
        let next = match outcome {
            Ok((holds, until, deleted)) => {
                verdict.succeeded(holds, until);
                gave_up = deleted;
                if failures > 0 {
                    tracing::info!(
                        "etcd witness: answering again after {failures} failed round(s)"
                    );
                }
                failures = 0;
                report(WitnessReport {
                    holds: verdict.holds,
                    until: verdict.until,
                    reachable: true,
                    error: None,
                });
                started + interval
            }
            Err(fault) => {
                Counters::add(&counters.failed_rounds);
                if let Some(lease) = &mut session.lease {
                    // A late answer on this stream would be credited to the
                    // next request: never use it again.
                    lease.stream = None;
                }
                if !fault.reachable() {
                    session.client = None;
                }
                verdict.failed(since_start());
                failures = failures.saturating_add(1);
                let text = fault.text();
                if failures == 1 {
                    tracing::warn!("etcd witness: round failed: {text}");
                } else {
                    tracing::debug!("etcd witness: round failed ({failures} in a row): {text}");
                }
                report(WitnessReport {
                    holds: verdict.holds,
                    until: verdict.until,
                    reachable: fault.reachable(),
                    error: Some(text),
                });
                // From the failed round's start: a round that timed out
                // is retried at once, so reports keep their cadence.
                started + retry_delay(failures, interval)
            }
        };
        if verdict.holds != was.holds {
            if verdict.holds {
                Counters::add(&counters.votes_won);
                tracing::info!("etcd witness: {server} holds the vote");
            } else {
                tracing::warn!("etcd witness: {server} no longer holds the vote");
            }
        }
        // One update: `hand_over` reads when the vote was given up as soon
        // as it sees it no longer held.
        steering.held.send_modify(|h| {
            h.holds = verdict.holds;
            if gave_up {
                h.given_up = Some(Instant::now());
            }
        });
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = steering.wake.notified() => {}
        }
    }
}

/// One round: the lease renewed (or granted), then the vote checked or
/// taken, or given up. Ok((holds, until of the lease, whether this round
/// deleted the vote)).
async fn round(
    settings: &EtcdWitnessSettings,
    server: &str,
    key: &str,
    session: &mut Session,
    counters: &Counters,
    campaign: bool,
) -> Result<(bool, Duration, bool), Fault> {
    if session.client.is_none() {
        session.client = Some(connect(settings).await?);
        Counters::add(&counters.connects);
    }
    let client = session.client.as_mut().expect("connected above");
    let mut lease_until_ = None;
    if let Some(lease) = &mut session.lease {
        match renew(client, lease).await {
            Ok(until) => lease_until_ = Some(until),
            Err(Fault::LeaseLost) => {
                session.lease = None;
                session.lease_lost = true;
            }
            Err(fault) => return Err(fault),
        }
    }
    let until = match lease_until_ {
        Some(until) => until,
        None => {
            let sent = since_start();
            let granted = client
                .lease_grant(i64::from(settings.ttl_secs), None)
                .await
                .map_err(|e| Fault::from_etcd("lease grant", e))?;
            Counters::add(&counters.grants);
            let until = lease_until(sent, granted.ttl())
                .ok_or_else(|| Fault::Refused("lease grant: TTL 0".into()))?;
            tracing::debug!(
                "etcd witness: lease {:x} granted, TTL {} s",
                granted.id(),
                granted.ttl()
            );
            session.lease = Some(Lease {
                id: granted.id(),
                stream: None,
            });
            until
        }
    };
    let lease = session.lease.as_ref().expect("renewed or granted above").id;
    if campaign {
        let holds = vote(client, key, server, lease).await?;
        Ok((holds, until, false))
    } else {
        let gave_up = give_up(client, key, server, lease).await?;
        Ok((false, until, gave_up))
    }
}

/// One keepalive of `lease`, answered: the instant up to which it lives.
async fn renew(client: &mut Client, lease: &mut Lease) -> Result<Duration, Fault> {
    if lease.stream.is_none() {
        // Opening the stream sends a keepalive whose TTL etcd-client keeps
        // to itself ("lease not found" when there is none): not credited.
        let stream = client
            .lease_keep_alive(lease.id)
            .await
            .map_err(|e| Fault::from_etcd("lease keepalive", e))?;
        lease.stream = Some(stream);
    }
    let (keeper, stream) = lease.stream.as_mut().expect("opened above");
    let sent = since_start();
    keeper
        .keep_alive()
        .await
        .map_err(|e| Fault::from_etcd("lease keepalive", e))?;
    match stream.message().await {
        Ok(Some(answer)) => lease_until(sent, answer.ttl()).ok_or(Fault::LeaseLost),
        Ok(None) => Err(Fault::Unreachable(
            "lease keepalive: the stream ended".into(),
        )),
        Err(e) => Err(Fault::from_etcd("lease keepalive", e)),
    }
}

/// The vote: taken when nobody holds it; Ok(true) when `server` holds it
/// with `lease`.
async fn vote(client: &mut Client, key: &str, server: &str, lease: i64) -> Result<bool, Fault> {
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            server,
            Some(PutOptions::new().with_lease(lease)),
        )])
        .or_else([TxnOp::get(key, None)]);
    let answer = client
        .txn(txn)
        .await
        .map_err(|e| Fault::from_etcd("vote", e))?;
    if answer.succeeded() {
        return Ok(true);
    }
    Ok(answer.op_responses().iter().any(|op| match op {
        TxnOpResponse::Get(get) => get
            .kvs()
            .iter()
            .any(|kv| kv.value() == server.as_bytes() && kv.lease() == lease),
        _ => false,
    }))
}

/// The vote given up: deleted if `server` holds it with `lease` (true),
/// left alone otherwise.
async fn give_up(client: &mut Client, key: &str, server: &str, lease: i64) -> Result<bool, Fault> {
    let txn = Txn::new()
        .when([
            Compare::value(key, CompareOp::Equal, server),
            Compare::lease(key, CompareOp::Equal, lease),
        ])
        .and_then([TxnOp::delete(key, None)]);
    let answer = client
        .txn(txn)
        .await
        .map_err(|e| Fault::from_etcd("vote given up", e))?;
    if answer.succeeded() {
        tracing::info!("etcd witness: {server} gave the vote up (a peer runs the groups, or this server stops)");
    }
    Ok(answer.succeeded())
}

async fn connect(settings: &EtcdWitnessSettings) -> Result<Client, Fault> {
    let interval = settings.round_interval();
    // No HTTP/2 pings: a round that gets no answer within the interval
    // drops the connection, which finds a dead one as soon.
    let mut options = ConnectOptions::new()
        .with_connect_timeout(interval)
        .with_timeout(interval)
        .with_require_leader(true);
    if let Some(ca) = &settings.ca_file {
        let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(read(ca).await?));
        if let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) {
            tls = tls.identity(Identity::from_pem(read(cert).await?, read(key).await?));
        }
        options = options.with_tls(tls);
    }
    Client::connect(&settings.endpoints, Some(options))
        .await
        .map_err(|e| Fault::from_etcd("connect", e))
}

/// A TLS file's contents (the error names the file, never its contents).
async fn read(path: &Path) -> Result<Vec<u8>, Fault> {
    tokio::fs::read(path)
        .await
        .map_err(|e| Fault::Refused(format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EtcdWitnessSettings {
        EtcdWitnessSettings {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/understudy/lab".into(),
            ttl_secs: 6,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn until_is_the_send_instant_plus_the_ttl_etcd_returned() {
        assert_eq!(lease_until(10 * S, 6), Some(16 * S));
        assert_eq!(
            lease_until(Duration::from_millis(10_250), 2),
            Some(Duration::from_millis(12_250))
        );
        assert_eq!(lease_until(10 * S, 0), None);
        assert_eq!(lease_until(10 * S, -1), None);
    }

    #[test]
    fn a_failed_round_never_moves_until_later() {
        let mut v = Verdict::default();
        v.succeeded(true, 16 * S);
        assert_eq!(
            v,
            Verdict {
                holds: true,
                until: 16 * S
            }
        );
        // Failures before `until`: still sure, not longer.
        v.failed(12 * S);
        assert_eq!(
            v,
            Verdict {
                holds: true,
                until: 16 * S
            }
        );
        v.failed(15 * S);
        assert_eq!(v.until, 16 * S);
        // ... then it lapses.
        v.failed(16 * S);
        assert_eq!(v, Verdict::default());
        // A lost lease takes the vote at once.
        v.succeeded(true, 30 * S);
        v.lease_lost();
        assert_eq!(v, Verdict::default());
        // Not holding: until is zero.
        v.succeeded(false, 40 * S);
        assert_eq!(v, Verdict::default());
    }

    #[test]
    fn retries_start_at_250_ms_and_double_up_to_one_interval() {
        let interval = 2 * S;
        let delays: Vec<u128> = (1..=6)
            .map(|n| retry_delay(n, interval).as_millis())
            .collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(retry_delay(u32::MAX, interval), interval);
    }

    #[test]
    fn settings_vote_key_interval_and_problems() {
        let s = settings();
        assert_eq!(s.vote_key(), "/understudy/lab/vote");
        assert_eq!(
            EtcdWitnessSettings {
                prefix: "/understudy/lab/".into(),
                ..settings()
            }
            .vote_key(),
            "/understudy/lab/vote"
        );
        assert_eq!(s.round_interval(), Duration::from_millis(2000));
        assert!(s.problems().is_empty());
        let fields = |s: EtcdWitnessSettings| -> Vec<&'static str> {
            s.problems().into_iter().map(|(f, _)| f).collect()
        };
        assert_eq!(
            fields(EtcdWitnessSettings {
                endpoints: vec![],
                prefix: "/".into(),
                ttl_secs: 1,
                ..settings()
            }),
            ["endpoints", "prefix", "ttl_secs"]
        );
        assert_eq!(
            fields(EtcdWitnessSettings {
                cert_file: Some("c.pem".into()),
                ..settings()
            }),
            ["key_file"]
        );
        assert_eq!(
            fields(EtcdWitnessSettings {
                cert_file: Some("c.pem".into()),
                key_file: Some("k.pem".into()),
                ..settings()
            }),
            ["ca_file"]
        );
        // TLS: http:// is refused, https:// and host:port are fine.
        let tls = EtcdWitnessSettings {
            endpoints: vec!["https://a:2379".into(), "b:2379".into()],
            ca_file: Some("ca.pem".into()),
            cert_file: Some("c.pem".into()),
            key_file: Some("k.pem".into()),
            ..settings()
        };
        assert!(tls.problems().is_empty());
        assert_eq!(
            fields(EtcdWitnessSettings {
                endpoints: vec!["http://a:2379".into()],
                ..tls
            }),
            ["endpoints"]
        );
        assert!(spawn(
            EtcdWitnessSettings {
                ttl_secs: 0,
                ..settings()
            },
            "n1",
            |_| {}
        )
        .is_err_and(|e| e.starts_with("ttl_secs: ")));
    }

    #[test]
    fn settings_from_the_configuration() {
        // As the configuration loader reads it (config::read).
        let options = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let config: EtcdWitnessConfig = options
            .from_str(
                r#"Etcd(endpoints: ["https://10.0.0.9:2379"], ca_file: "pki/ca.pem",
                        cert_file: "/etc/understudy/n1.pem", key_file: "pki/n1.key")"#,
            )
            .unwrap();
        let s = EtcdWitnessSettings::from_config(&config, "lab", Path::new("/etc/understudy"));
        assert_eq!(
            s,
            EtcdWitnessSettings {
                endpoints: vec!["https://10.0.0.9:2379".into()],
                prefix: "/understudy/lab".into(),
                ttl_secs: 2,
                ca_file: Some("/etc/understudy/pki/ca.pem".into()),
                cert_file: Some("/etc/understudy/n1.pem".into()),
                key_file: Some("/etc/understudy/pki/n1.key".into()),
            }
        );
        assert!(s.problems().is_empty());
        let config = EtcdWitnessConfig {
            prefix: Some("/ha/lab".into()),
            ca_file: None,
            cert_file: None,
            key_file: None,
            ..config
        };
        let s = EtcdWitnessSettings::from_config(&config, "lab", Path::new("/etc/understudy"));
        assert_eq!((s.vote_key().as_str(), s.ca_file), ("/ha/lab/vote", None));
    }

    #[test]
    fn settings_deserialize_with_optional_tls_files() {
        let s: EtcdWitnessSettings = serde_json::from_str(
            r#"{"endpoints": ["http://10.0.0.9:2379"], "prefix": "/understudy/c", "ttl_secs": 6}"#,
        )
        .unwrap();
        assert_eq!(s.ttl_secs, 6);
        assert_eq!(s.ca_file, None);
    }
}
