//! The listening socket: accepts connections, runs the handshake, and turns
//! what arrives into events for the driver. One task per connection; a bad
//! frame closes that connection only, with the reason logged. A connection
//! refused at the handshake (wrong token, no proof of the instance secret,
//! a forged session ticket) is logged and counted.
//!
//! Every event carries who the handshake proved the sender to be: a peer's
//! messages come from the node id it proved, never from one a message
//! names; a client's from the session whose ticket it holds.

use concoord_transport::HandshakeError;
use concoord_transport::InstanceSecret;
use concoord_transport::handshake::{Accepted, Credentials, accept};
use concoord_transport::net::TcpListener;
use concoord_transport::wire::{ClientFrame, PeerFrame, ReplicaFrame};
use futures::{SinkExt, StreamExt};
use paxos_core::{Message, NodeId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
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
    /// A replica connected to us, proved its node id, and told us where it
    /// listens.
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
        /// The client's session id (issued, or resumed with its ticket).
        client_id: u64,
        /// When the session was issued (ms since the Unix epoch).
        issued_ms: u64,
        /// Whether it proved the instance secret (an operator tool).
        operator: bool,
        /// Its address, for the log.
        peer: SocketAddr,
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

/// What the listener checks connections against.
pub struct Gate {
    /// This replica's node id.
    pub me: NodeId,
    /// The token every connection must present.
    pub token: Option<String>,
    /// The instance secret.
    pub secret: InstanceSecret,
    /// Connections refused at the handshake (shared with the driver's status).
    pub refused: Arc<AtomicU64>,
    /// New sessions are issued no earlier than this (kept by the driver from
    /// the replicated state: after every ended session it forgot).
    pub sessions_not_before_ms: Arc<AtomicU64>,
}

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, gate: Gate, events: mpsc::Sender<Event>) {
    let next_conn = Arc::new(AtomicU64::new(1));
    let gate = Arc::new(gate);
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
        let gate = gate.clone();
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        concoord_transport::determinism::spawn(async move {
            let creds = Credentials {
                me: gate.me,
                token: gate.token.as_deref(),
                secret: &gate.secret,
                sessions_not_before_ms: gate.sessions_not_before_ms.load(Ordering::Relaxed),
            };
            match accept(stream, &creds, HANDSHAKE_TIMEOUT).await {
                Err(e @ HandshakeError::Refused(_)) => {
                    gate.refused.fetch_add(1, Ordering::Relaxed);
                    warn!(%peer, "connection refused: {e}");
                }
                Err(e) => debug!(%peer, "handshake failed: {e}"),
                Ok(Accepted::Replica { node, addr, conn }) => {
                    debug!(%peer, %node, %addr, "peer connected and proved its identity");
                    if events.send(Event::PeerHello { node, addr }).await.is_err() {
                        return;
                    }
                    serve_peer(node, conn, events).await;
                }
                Ok(Accepted::Client {
                    session,
                    issued_ms,
                    operator,
                    conn: framed,
                }) => {
                    let client = Client {
                        conn,
                        client_id: session,
                        issued_ms,
                        operator,
                        peer,
                    };
                    serve_client(client, framed, events).await;
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

/// An accepted client connection.
struct Client {
    conn: ConnId,
    client_id: u64,
    issued_ms: u64,
    operator: bool,
    peer: SocketAddr,
}

async fn serve_client(
    client: Client,
    framed: concoord_transport::handshake::ServedClient,
    events: mpsc::Sender<Event>,
) {
    let Client {
        conn,
        client_id,
        issued_ms,
        operator,
        peer,
    } = client;
    let (mut sink, mut stream) = framed.split();
    let (replies, mut outbox) = mpsc::channel::<ReplicaFrame>(REPLIES_QUEUED_MAX);
    let connected = Event::ClientConnected {
        conn,
        client_id,
        issued_ms,
        operator,
        peer,
        replies,
    };
    if events.send(connected).await.is_err() {
        return;
    }
    let writer = concoord_transport::determinism::spawn(async move {
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
