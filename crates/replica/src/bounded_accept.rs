//! An accept loop with a cap on connections served at once, for the
//! replica's side listeners (metrics, log daemon): a connection over the cap
//! is closed at accept, so a flood costs a file descriptor for an instant,
//! never a task.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::warn;

/// Serves every connection `listener` accepts with `serve_one`, at most
/// `max` at once; runs until the process ends. `what` names the listener
/// in log lines.
pub async fn accept_bounded<F, Fut>(
    listener: TcpListener,
    max: usize,
    what: &'static str,
    serve_one: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                warn!("{what} cannot accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(%peer, "{what}: closed a connection, {max} already open");
            continue;
        };
        let served = serve_one(stream, peer);
        tokio::spawn(async move {
            served.await;
            drop(slot);
        });
    }
}
