//! The daemon's HTTP listeners (`metrics.listen`, `web.listen`; one when
//! both name the same address): bound before the actors start, so that a
//! taken port is a startup error naming the field, and served by axum on a
//! thread of their own (an actix Arbiter), so that a scrape or a page
//! never runs on the actors' thread and a blocked actors' thread does not
//! stall them. Their routes come from whoever serves on them (the
//! metrics, the status page).

use std::net::SocketAddr;
use std::sync::Arc;

use actix::Arbiter;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics;

/// Binds the listener; the error names the configuration `field`.
pub fn bind(field: &str, addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("{field}: cannot listen on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("{field}: {addr}: {e}"))?;
    Ok(listener)
}

/// `GET /metrics`: the registry as OpenMetrics text, made on this thread
/// from what the actors published.
pub fn metrics_routes(registry: prometheus_client::registry::Registry) -> Router {
    async fn scrape(
        State(registry): State<Arc<prometheus_client::registry::Registry>>,
    ) -> impl IntoResponse {
        (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&registry),
        )
    }
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(Arc::new(registry))
}

/// Serves the router that `routes` makes (on the new thread, so that it
/// may start tasks there) on `listener` from a new Arbiter (its thread
/// ends with the actix System). A failure of the server is logged: the
/// cluster service goes on without it.
pub fn serve(
    field: &'static str,
    listener: std::net::TcpListener,
    routes: impl FnOnce() -> Router + Send + 'static,
) -> Arbiter {
    let arbiter = Arbiter::new();
    arbiter.spawn(async move {
        let router = routes();
        let addr = listener.local_addr().ok();
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{field}: {addr:?}: {e}; nothing is served there");
                return;
            }
        };
        // The peer's address: the status page names who acted.
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!("{field}: {addr:?}: {e}; nothing is served there");
        }
    });
    arbiter
}
