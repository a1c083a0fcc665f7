//! The listening socket: accepts connections, runs the handshake, and turns
//! what arrives into events for the driver. One task per connection; a bad
//! frame closes that connection only, with the reason logged.

use concoord_transport::handshake::{Accepted, accept};
use concoord_transport::wire::{ClientFrame, PeerFrame, ReplicaFrame};
use futures::{SinkExt, StreamExt};
use paxos_core::{Message, NodeId};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Identifies one client connection.
pub type ConnId = u64;

/// Replies queued per client connection before new ones are dropped (the
/// client then retries and gets the reply from the exactly-once table).
const REPLIES_QUEUED_MAX: usize = 4096;
/// Time a new connection has to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the network hands the driver.
pub enum Event {
    /// A replica connected to us and told us where it listens.
    PeerHello {
        /// Its node id.
        node: NodeId,
        /// Its advertised address.
        addr: String,
    },
    /// A consensus message from a peer.
    Peer {
        /// The sending replica.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// A client connected; replies go to `replies`.
    ClientConnected {
        /// The connection.
        conn: ConnId,
        /// The client's id.
        client_id: u64,
        /// Where to send its replies.
        replies: mpsc::Sender<ReplicaFrame>,
    },
    /// A client request.
    Client {
        /// The connection.
        conn: ConnId,
        /// The client's id.
        client_id: u64,
        /// The request.
        frame: ClientFrame,
    },
    /// A client connection closed.
    ClientGone {
        /// The connection.
        conn: ConnId,
    },
}

/// Accepts connections forever.
pub async fn serve(
    listener: TcpListener,
    me: NodeId,
    token: Option<String>,
    events: mpsc::Sender<Event>,
) {
    let next_conn = Arc::new(AtomicU64::new(1));
    let token: Arc<Option<String>> = Arc::new(token);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let events = events.clone();
        let token = token.clone();
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            match accept(stream, me, token.as_deref(), HANDSHAKE_TIMEOUT).await {
                Err(e) => warn!(%peer, "connection refused: {e}"),
                Ok(Accepted::Replica { node, addr, conn }) => {
                    debug!(%peer, ?node, %addr, "peer connected");
                    if events.send(Event::PeerHello { node, addr }).await.is_err() {
                        return;
                    }
                    serve_peer(node, conn, events).await;
                }
                Ok(Accepted::Client {
                    client_id,
                    conn: framed,
                }) => {
                    serve_client(conn, client_id, framed, events).await;
                }
            }
        });
    }
}

async fn serve_peer(
    node: NodeId,
    mut conn: concoord_transport::handshake::PeerConnection,
    events: mpsc::Sender<Event>,
) {
    while let Some(frame) = conn.next().await {
        match frame {
            Ok(PeerFrame::Paxos(msg)) => {
                if events.send(Event::Peer { from: node, msg }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!(peer = ?node, "closing peer connection: {e}");
                return;
            }
        }
    }
}

async fn serve_client(
    conn: ConnId,
    client_id: u64,
    framed: concoord_transport::handshake::ServedClient,
    events: mpsc::Sender<Event>,
) {
    let (mut sink, mut stream) = framed.split();
    let (replies, mut outbox) = mpsc::channel::<ReplicaFrame>(REPLIES_QUEUED_MAX);
    let connected = Event::ClientConnected {
        conn,
        client_id,
        replies,
    };
    if events.send(connected).await.is_err() {
        return;
    }
    let writer = tokio::spawn(async move {
        while let Some(frame) = outbox.recv().await {
            let mut result = sink.feed(frame).await;
            while result.is_ok() {
                match outbox.try_recv() {
                    Ok(frame) => result = sink.feed(frame).await,
                    Err(_) => break,
                }
            }
            if result.is_ok() {
                result = sink.flush().await;
            }
            if result.is_err() {
                return;
            }
        }
    });
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(frame) => {
                let ev = Event::Client {
                    conn,
                    client_id,
                    frame,
                };
                if events.send(ev).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                info!(client = client_id, "closing client connection: {e}");
                break;
            }
        }
    }
    writer.abort();
    let _ = events.send(Event::ClientGone { conn }).await;
}
