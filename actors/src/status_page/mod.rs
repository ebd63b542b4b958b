//! The status page (`web.listen`): servers, heartbeat paths, groups with
//! their resources, monitors with their counters and the newest alerts,
//! under a headline (the brain's [`headline`]) that colours the page and
//! its favicon; live over Server-Sent Events.
//!
//! One feed task (on the HTTP listener's thread) turns what the actors
//! publish — the coordinator's status, the alert log's newest alerts, the
//! service's stop — into one JSON snapshot, republished on change; every
//! viewer's event stream reads that snapshot. A viewer never costs the
//! actors a message.
//!
//! Access: reading needs nothing on a loopback address and the
//! administrator's password (HTTP Basic) beyond it; the administrator's
//! actions (`/admin/...`) always need it, come as POSTs carrying a header
//! no other site's page can send without our consent (no CORS is
//! answered), and go to the coordinator as the same control commands as
//! the CLI's.
//!
//! The page itself (HTML, CSS, JS) is embedded in the binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix::Addr;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use tokio::sync::watch;

use crate::control::protocol::{Command, Response as Answer};
use crate::coordinator::{Control, Coordinator};
use crate::metrics::StatusFeed;
use crate::model::headline::{self, Indicator, Seen};
use crate::model::web::{WebConfig, ADMIN_USER};
use crate::notify::alert_log::RecentAlerts;
use crate::notify::mail::config::Secret;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// The header every action must carry: a page of another site cannot add
/// it to a request here without a CORS answer this server never gives.
pub const ACTION_HEADER: &str = "x-understudy-action";

/// What the page reads; published by the feed task.
pub type PageFeed = watch::Receiver<Arc<String>>;

/// What the feed is made of.
pub struct Sources {
    pub status: StatusFeed,
    pub alerts: watch::Receiver<RecentAlerts>,
    /// Becomes true once the cluster service has stopped here.
    pub stopped: watch::Receiver<bool>,
}

/// Who may read and who may act.
#[derive(Clone)]
pub struct Access {
    /// Every request authenticates (the page listens beyond loopback).
    pub read_needs_password: bool,
    /// The administrator's password; `None`: no actions.
    pub password: Option<Arc<Secret>>,
}

impl Access {
    /// From the settings and the password file's first line (read by the
    /// daemon before it starts: its errors stop the start).
    pub fn new(web: &WebConfig, password: Option<Secret>) -> Access {
        Access {
            read_needs_password: web.beyond_loopback(),
            password: password.map(Arc::new),
        }
    }

    /// Whether the request carries the administrator's credentials.
    fn admin(&self, headers: &HeaderMap) -> bool {
        let Some(password) = &self.password else {
            return false;
        };
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
        else {
            return false;
        };
        let want = format!("{ADMIN_USER}:{}", password.expose());
        same_secret(&given, want.as_bytes())
    }
}

/// Compares without stopping at the first difference (no timing hint of
/// how much of a guess was right).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Starts the feed task on the current runtime (the HTTP listener's
/// thread) and returns what it publishes.
pub fn spawn_feed(mut sources: Sources) -> PageFeed {
    let started = Instant::now();
    let mut indicator = Indicator::default();
    let mut snapshot = move |sources: &mut Sources| {
        let now_ms = started.elapsed().as_millis() as u64;
        let status = sources.status.borrow_and_update().clone();
        let alerts = sources.alerts.borrow_and_update().clone();
        let stopped = *sources.stopped.borrow_and_update();
        let seen = match (&status, stopped) {
            (_, true) => Seen::Stopped,
            (None, false) => Seen::Starting,
            (Some(s), false) => Seen::Running(s),
        };
        let h = indicator.observe(now_ms, seen);
        let json = serde_json::json!({
            "headline": h,
            // What the page shows once its live stream is gone.
            "no_service": headline::headline(Seen::NoService, false),
            "status": status.as_deref(),
            "alerts": alerts.iter().rev().collect::<Vec<_>>(),
        });
        (json.to_string(), indicator.next_change_ms())
    };
    let (first, mut wake) = snapshot(&mut sources);
    let (tx, rx) = watch::channel(Arc::new(first));
    tokio::spawn(async move {
        // A source that has closed is not waited for again.
        let (mut status_open, mut alerts_open, mut stopped_open) = (true, true, true);
        loop {
            let deadline = wake.map(|ms| {
                tokio::time::Instant::from_std(started + std::time::Duration::from_millis(ms))
            });
            tokio::select! {
                r = sources.status.changed(), if status_open => status_open = r.is_ok(),
                r = sources.alerts.changed(), if alerts_open => alerts_open = r.is_ok(),
                r = sources.stopped.changed(), if stopped_open => stopped_open = r.is_ok(),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {}
                else => break,
            }
            let (json, next) = snapshot(&mut sources);
            wake = next;
            tx.send_if_modified(|old| {
                if **old == json {
                    false
                } else {
                    *old = Arc::new(json);
                    true
                }
            });
            if tx.is_closed() && !status_open {
                break;
            }
        }
    });
    rx
}

#[derive(Clone)]
struct PageState {
    feed: PageFeed,
    access: Access,
    coordinator: Addr<Coordinator>,
    cluster: String,
}

/// The page's routes. `coordinator` carries out the administrator's
/// actions; `cluster` is the name a shutdown must be confirmed with.
pub fn routes(
    feed: PageFeed,
    access: Access,
    coordinator: Addr<Coordinator>,
    cluster: String,
) -> Router {
    let state = PageState {
        feed,
        access,
        coordinator,
        cluster,
    };
    let read = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/api/status", get(snapshot))
        .route_layer(middleware::from_fn_with_state(state.clone(), readers));
    let admin = Router::new()
        .route("/admin/", get(page))
        .route("/admin/alert-settings", get(alert_settings))
        .route("/admin/reporting", post(reporting))
        .route("/admin/recover", post(recover))
        .route("/admin/shutdown", post(shutdown))
        .route_layer(middleware::from_fn_with_state(state.clone(), admins));
    // Static and free of the cluster's state: served to anyone (a browser
    // does not always send credentials for them).
    let assets = Router::new()
        .route(
            "/page.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/page.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        );
    read.merge(admin).merge(assets).with_state(state)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn challenge(message: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"understudy\", charset=\"UTF-8\"",
        )],
        message,
    )
        .into_response()
}

async fn readers(State(st): State<PageState>, req: Request, next: Next) -> Response {
    if st.access.read_needs_password && !st.access.admin(req.headers()) {
        return challenge("the status page needs the administrator's password here\n");
    }
    next.run(req).await
}

async fn admins(State(st): State<PageState>, req: Request, next: Next) -> Response {
    if st.access.password.is_none() {
        return (
            StatusCode::FORBIDDEN,
            "no administrator is configured (web.password_file): the page is read-only\n",
        )
            .into_response();
    }
    if !st.access.admin(req.headers()) {
        return challenge("the administrator's password is needed\n");
    }
    if req.method() == Method::POST {
        if let Err(why) = same_site(req.headers()) {
            return (StatusCode::FORBIDDEN, why).into_response();
        }
    }
    next.run(req).await
}

/// An action must carry [`ACTION_HEADER`], and an `Origin`, when sent, of
/// this very host.
fn same_site(headers: &HeaderMap) -> Result<(), &'static str> {
    if !headers.contains_key(ACTION_HEADER) {
        return Err("an action needs the page's own request header\n");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = origin.to_str().ok().and_then(|o| o.strip_prefix("http://"));
        if host.is_none() || origin != host {
            return Err("an action comes from this page only\n");
        }
    }
    Ok(())
}

async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        PAGE,
    )
        .into_response()
}

async fn snapshot(State(st): State<PageState>) -> Response {
    let json = st.feed.borrow().clone();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        json.to_string(),
    )
        .into_response()
}

/// The snapshot now, then each new one.
async fn events(State(st): State<PageState>) -> impl IntoResponse {
    let stream = futures_util::stream::unfold((st.feed, true), |(mut feed, first)| async move {
        if !first && feed.changed().await.is_err() {
            return None;
        }
        let json = feed.borrow_and_update().clone();
        let event = Event::default().event("snapshot").data(json.as_str());
        Some((Ok::<_, std::convert::Infallible>(event), (feed, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Carries out `command` as the CLI would, on behalf of `peer`.
async fn act(st: &PageState, peer: SocketAddr, command: Command) -> Response {
    let by = format!("the status page's administrator from {peer}");
    let answer = st
        .coordinator
        .send(Control { command, by })
        .await
        .unwrap_or_else(|e| Answer::Error {
            message: format!("coordinator unavailable: {e}"),
        });
    match answer {
        Answer::Done { message } => (StatusCode::OK, message).into_response(),
        Answer::Error { message } => (StatusCode::CONFLICT, message).into_response(),
        Answer::Denied { message } => (StatusCode::FORBIDDEN, message).into_response(),
        other => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected answer: {other:?}"),
        )
            .into_response(),
    }
}

fn body<T: for<'a> Deserialize<'a>>(bytes: &Bytes) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(bytes).map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")))
}

/// The alert settings in force (`alert export`).
async fn alert_settings(
    State(st): State<PageState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    act(&st, peer, Command::AlertExport).await
}

#[derive(Deserialize)]
struct Reporting {
    suspend: bool,
}

/// `alert suspend` / `alert resume`.
async fn reporting(
    State(st): State<PageState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    bytes: Bytes,
) -> Response {
    match body::<Reporting>(&bytes) {
        Ok(r) => act(&st, peer, Command::AlertNotification { suspend: r.suspend }).await,
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct Recover {
    server: String,
}

/// `server recover NAME`.
async fn recover(
    State(st): State<PageState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    bytes: Bytes,
) -> Response {
    match body::<Recover>(&bytes) {
        Ok(r) => act(&st, peer, Command::ServerRecover { server: r.server }).await,
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct Shutdown {
    /// The cluster's name, typed by the administrator.
    confirm: String,
}

/// `cluster shutdown`, once the administrator typed the cluster's name.
async fn shutdown(
    State(st): State<PageState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    bytes: Bytes,
) -> Response {
    match body::<Shutdown>(&bytes) {
        Ok(s) if s.confirm == st.cluster => {
            act(&st, peer, Command::ClusterShutdown { reboot: false }).await
        }
        Ok(_) => (
            StatusCode::BAD_REQUEST,
            "confirm with the cluster's name: nothing was shut down\n",
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn only_the_administrators_password_is_an_administrator() {
        let access = Access {
            read_needs_password: true,
            password: Some(Arc::new(Secret::new("s3cret"))),
        };
        assert!(access.admin(&headers(&[("authorization", &basic("admin:s3cret"))])));
        for wrong in ["admin:s3cre", "admin:s3cret2", "root:s3cret", "s3cret"] {
            assert!(
                !access.admin(&headers(&[("authorization", &basic(wrong))])),
                "{wrong}"
            );
        }
        assert!(!access.admin(&headers(&[])));
        let none = Access {
            read_needs_password: false,
            password: None,
        };
        assert!(!none.admin(&headers(&[("authorization", &basic("admin:"))])));
    }

    #[test]
    fn actions_come_from_this_page_only() {
        assert!(same_site(&headers(&[])).is_err());
        assert!(same_site(&headers(&[(ACTION_HEADER, "1")])).is_ok());
        assert!(same_site(&headers(&[
            (ACTION_HEADER, "1"),
            ("host", "127.0.0.1:9665"),
            ("origin", "http://127.0.0.1:9665")
        ]))
        .is_ok());
        assert!(same_site(&headers(&[
            (ACTION_HEADER, "1"),
            ("host", "127.0.0.1:9665"),
            ("origin", "http://evil.example")
        ]))
        .is_err());
    }
}
