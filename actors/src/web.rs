//! The daemon's HTTP listener (`metrics.listen`): bound before the actors
//! start, so that a taken port is a startup error naming the field, and
//! served by axum on a thread of its own (an actix Arbiter), so that a
//! scrape never runs on the actors' thread and a blocked actors' thread
//! does not stall a scrape. Its routes come from whoever serves on it
//! (the metrics today; a status page may add its own to the same router).

use std::net::SocketAddr;
use std::sync::Arc;

use actix::Arbiter;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics;

/// Binds the listener; the error names the configuration field.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("metrics.listen: cannot listen on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("metrics.listen: {addr}: {e}"))?;
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

/// Serves `router` on `listener` from a new Arbiter (its thread ends with
/// the actix System). A failure of the server is logged: the cluster
/// service goes on without it.
pub fn serve(listener: std::net::TcpListener, router: Router) -> Arbiter {
    let arbiter = Arbiter::new();
    arbiter.spawn(async move {
        let addr = listener.local_addr().ok();
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("metrics.listen: {addr:?}: {e}; no metrics are served");
                return;
            }
        };
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("metrics.listen: {addr:?}: {e}; no metrics are served");
        }
    });
    arbiter
}
