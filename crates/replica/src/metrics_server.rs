//! Serves `metrics` over HTTP for Prometheus (`--metrics-addr ADDR:PORT`):
//! `GET /metrics` answers the page, anything else 404.
//!
//! hyper's HTTP/1 server parses the requests; this module only bounds what
//! a scraper may hold: at most [`CONNECTIONS_MAX`] connections at once
//! (others are closed at accept), and a connection that has not sent its
//! headers within [`HEADER_TIMEOUT`] is closed. A scrape never touches the
//! driver: it reads the metrics' atomics.

use crate::metrics::Metrics;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{debug, info};

/// Scrape connections served at once.
pub const CONNECTIONS_MAX: usize = 16;
/// Time a connection has to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The content type of the page (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` now, so a taken port stops the replica at start with the
/// reason, and returns the listener to [`serve`].
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, crate::ReplicaError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::ReplicaError::Listen {
            addr: format!("{addr} (--metrics-addr)"),
            source,
        })
}

/// Answers scrapes on `listener` until the process ends.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "serving Prometheus metrics on http://{addr}/metrics");
    }
    crate::bounded_accept::accept_bounded(
        listener,
        CONNECTIONS_MAX,
        "metrics",
        move |stream, peer| {
            let metrics = metrics.clone();
            async move {
                let service = hyper::service::service_fn(move |req| {
                    let metrics = metrics.clone();
                    async move { Ok::<_, Infallible>(answer(&req, &metrics)) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    debug!(%peer, "metrics connection ended: {e}");
                }
            }
        },
    )
    .await;
}

/// The response to one request.
fn answer<B>(req: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let mut response = if req.method() == Method::GET && req.uri().path() == "/metrics" {
        let mut r = Response::new(Full::new(Bytes::from(metrics.encode())));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS),
        );
        r
    } else {
        let mut r = Response::new(Full::new(Bytes::from_static(
            b"not found: metrics are at GET /metrics\n",
        )));
        *r.status_mut() = StatusCode::NOT_FOUND;
        r
    };
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_answers_the_page() {
        let metrics = Metrics::new();
        let get = |method: Method, path: &str| {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .expect("request");
            answer(&req, &metrics).status()
        };
        assert_eq!(get(Method::GET, "/metrics"), StatusCode::OK);
        assert_eq!(get(Method::GET, "/"), StatusCode::NOT_FOUND);
        assert_eq!(get(Method::POST, "/metrics"), StatusCode::NOT_FOUND);
    }
}
