//! The listening socket: accepts connections, runs the handshake, and turns
//! what arrives into events for the driver. One task per connection; a bad
//! frame closes that connection only, with the reason logged. A connection
//! refused at the handshake (wrong token, no proof of the instance secret,
//! a forged session ticket) is logged and counted.
//!
//! Every event carries who the handshake proved the sender to be: a peer's
//! messages come from the node id it proved, never from one a message
//! names; a client's from the session whose ticket it holds.
//!
//! What connections may hold is bounded (see `limits`): at most
//! `HANDSHAKES_MAX` connections in their handshake (more are closed at once)
//! and `--max-connections` clients (more are closed during the handshake,
//! and retry); every frame's bytes are reserved before its body is read and
//! held until the driver has handled it; a client connection's replies are
//! bounded in bytes, and the driver closes a connection whose replies it
//! cannot queue (see `reply_queue`).
//!
//! With TLS, the TLS handshake is part of the handshake (same time limit,
//! same count of handshakes in progress). Whatever fails before a
//! connection is admitted — a certificate from another CA, garbage instead
//! of a TLS record or a `Hello`, a connection that never finishes — closes
//! that connection with a log line saying why; a flood of them is reported
//! once per power of two rather than line by line.

use crate::limits::{
    Budgets, CALLS_PER_EVENT_MAX, FRAME_BODY_TIMEOUT, HANDSHAKES_MAX,
    REPLIES_QUEUED_PER_CONNECTION_BYTES, WRITE_TIMEOUT,
};
use crate::reply_queue::{self, Outbox, Queued, ReplyQueue};
use concoord_transport::CodecError;
use concoord_transport::HandshakeError;
use concoord_transport::byte_budget::Reserved;
use concoord_transport::frame_io::{ConnReader, ConnWriter, split_framed};
use concoord_transport::handshake::{
    Accepted, Credentials, MemberAddrs, PeerConnection, ServedClient, accept,
};
use concoord_transport::net::TcpListener;
use concoord_transport::tls_config::ServerTls;
use concoord_transport::wire::{
    CLIENT_FRAME_BYTES_MAX, ClientFrame, PEER_FRAME_BYTES_MAX, PeerFrame,
};
use concoord_transport::{InstanceCell, InstanceSecret};
use paxos_core::{Message, NodeId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::timeout;
use tracing::{debug, info, warn};

/// Identifies one client connection.
pub type ConnId = u64;

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
        /// Its bytes in the peer inbound budget, until handled.
        bytes: Reserved,
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
        replies: ReplyQueue,
    },
    /// A client is sending a frame the replica has no room to read yet
    /// (its inbound budget is full): the client is alive, though silent.
    ClientSending {
        /// The client's id.
        client_id: u64,
    },
    /// A client request.
    Client {
        /// The connection.
        conn: ConnId,
        /// The client's id.
        client_id: u64,
        /// The request.
        frame: ClientFrame,
        /// Its bytes in the client inbound budget, until handled.
        bytes: Reserved,
        /// Its calls' places among the connection's calls waiting for the
        /// driver (`send_in_parts`), until handled.
        places: Option<OwnedSemaphorePermit>,
    },
    /// A client connection closed.
    ClientGone {
        /// The connection.
        conn: ConnId,
    },
}

impl Event {
    /// The driver's work for this event, as it counts a turn's: a client
    /// frame's [`frame_work`], anything else one.
    pub fn work(&self) -> usize {
        match self {
            Event::Client { frame, .. } => frame_work(frame),
            _ => 1,
        }
    }
}

/// The driver's work for a client frame: a `Batch` counts its calls,
/// anything else one.
fn frame_work(frame: &ClientFrame) -> usize {
    match frame {
        ClientFrame::Batch(calls) => calls.len().max(1),
        _ => 1,
    }
}

/// What the listener counts, shared with the driver's status.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// Connections refused at the handshake.
    pub refused: AtomicU64,
    /// Connections closed at once for the client or handshake limit.
    pub over_limit: AtomicU64,
    /// The largest frame received from a peer, in bytes.
    pub largest_peer_frame: AtomicU64,
    /// Connections closed for not finishing their handshake in time.
    pub handshake_timeouts: AtomicU64,
}

impl ListenerStats {
    fn count_over_limit(&self, peer: SocketAddr, what: &str) {
        let n = self.over_limit.fetch_add(1, Ordering::Relaxed) + 1;
        // Once per power of two: a flood is reported, not echoed line by line.
        if n.is_power_of_two() {
            warn!(%peer, total = n, "closed a connection: {what}");
        }
    }

    /// Counts and reports a connection refused before it was admitted: each
    /// of the first `REFUSALS_LOGGED`, then once per power of two.
    fn count_refused(&self, peer: SocketAddr, why: &HandshakeError) {
        let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= REFUSALS_LOGGED || n.is_power_of_two() {
            warn!(%peer, total = n, "connection refused: {why}");
        } else {
            // With -d every refusal is shown.
            debug!(%peer, total = n, "connection refused: {why}");
        }
    }

    fn count_timed_out(&self, peer: SocketAddr) {
        let n = self.handshake_timeouts.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= REFUSALS_LOGGED || n.is_power_of_two() {
            warn!(
                %peer,
                total = n,
                "closed a connection that did not finish its handshake within {}s",
                HANDSHAKE_TIMEOUT.as_secs()
            );
        }
    }
}

/// Refusals logged one by one before only powers of two are.
const REFUSALS_LOGGED: u64 = 16;

/// What the listener checks connections against, and what they may hold.
pub struct Gate {
    /// This replica's node id.
    pub me: NodeId,
    /// The token every connection must present.
    pub token: Option<String>,
    /// The instance secret.
    pub secret: InstanceSecret,
    /// The instance this replica belongs to (learned once by a joiner).
    pub instance: Arc<InstanceCell>,
    /// New sessions are issued no earlier than this (kept by the driver from
    /// the replicated state: after every ended session it forgot).
    pub sessions_not_before_ms: Arc<AtomicU64>,
    /// Places for client connections (`--max-connections`).
    pub client_slots: Arc<Semaphore>,
    /// The byte budgets connections draw from.
    pub budgets: Arc<Budgets>,
    /// Counters shared with the driver's status.
    pub stats: Arc<ListenerStats>,
    /// TLS for every connection, if the instance uses it.
    pub tls: Option<ServerTls>,
    /// The members' addresses by node id (kept by the driver): a peer link
    /// claims a member only with the certificate of its address.
    pub members: Arc<MemberAddrs>,
}

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, gate: Gate, events: mpsc::Sender<Event>) {
    let next_conn = Arc::new(AtomicU64::new(1));
    let gate = Arc::new(gate);
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(handshaking) = handshakes.clone().try_acquire_owned() else {
            gate.stats
                .count_over_limit(peer, "too many connections in their handshake");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let events = events.clone();
        let gate = gate.clone();
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        concoord_transport::determinism::spawn(async move {
            let creds = Credentials {
                me: gate.me,
                instance: &gate.instance,
                token: gate.token.as_deref(),
                secret: &gate.secret,
                sessions_not_before_ms: gate.sessions_not_before_ms.load(Ordering::Relaxed),
                client_slots: Some(&gate.client_slots),
                tls: gate.tls.as_ref(),
                members: Some(&gate.members),
            };
            let accepted = accept(stream, &creds, HANDSHAKE_TIMEOUT).await;
            drop(handshaking);
            match accepted {
                Err(
                    e @ (HandshakeError::Refused(_)
                    | HandshakeError::Tls { .. }
                    | HandshakeError::Codec { .. }
                    | HandshakeError::OtherInstance { .. }),
                ) => gate.stats.count_refused(peer, &e),
                Err(HandshakeError::Timeout(_)) => gate.stats.count_timed_out(peer),
                Err(HandshakeError::TooManyClients(_)) => gate.stats.count_over_limit(
                    peer,
                    "as many clients are connected as --max-connections allows",
                ),
                Err(e) => debug!(%peer, "handshake failed: {e}"),
                Ok(Accepted::Replica {
                    node, addr, conn, ..
                }) => {
                    debug!(%peer, %node, %addr, "peer connected and proved its identity");
                    if events.send(Event::PeerHello { node, addr }).await.is_err() {
                        return;
                    }
                    serve_peer(node, conn, events, &gate).await;
                }
                Ok(Accepted::Client {
                    session,
                    issued_ms,
                    operator,
                    conn: framed,
                    slot,
                }) => {
                    let client = Client {
                        conn,
                        client_id: session,
                        issued_ms,
                        operator,
                        peer,
                    };
                    serve_client(client, framed, events, &gate).await;
                    drop(slot);
                }
            }
        });
    }
}

async fn serve_peer(node: NodeId, conn: PeerConnection, events: mpsc::Sender<Event>, gate: &Gate) {
    // Nothing is written on this connection (answers go through our own
    // outbound one), but the write half stays open while we read.
    let (mut reader, _writer) = split_framed(conn, PEER_FRAME_BYTES_MAX, 0);
    loop {
        let frame = reader
            .next::<PeerFrame>(&gate.budgets.peer_inbound, FRAME_BODY_TIMEOUT)
            .await;
        match frame {
            Ok(Some((PeerFrame::Paxos(msg), bytes))) => {
                gate.stats
                    .largest_peer_frame
                    .fetch_max(bytes.bytes() as u64, Ordering::Relaxed);
                let ev = Event::Peer {
                    from: node,
                    msg,
                    bytes,
                };
                if events.send(ev).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                warn!(peer = %node, "closing peer connection: {e}");
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
    framed: ServedClient,
    events: mpsc::Sender<Event>,
    gate: &Gate,
) {
    let Client {
        conn,
        client_id,
        issued_ms,
        operator,
        peer,
    } = client;
    let (mut reader, writer) = split_framed(framed, CLIENT_FRAME_BYTES_MAX, CLIENT_FRAME_BYTES_MAX);
    let (replies, outbox) =
        reply_queue::channel(REPLIES_QUEUED_PER_CONNECTION_BYTES, &gate.budgets.replies);
    let Outbox { frames, closer } = outbox;
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
    let mut writer = concoord_transport::determinism::spawn(write_frames(writer, frames));
    let from = (conn, client_id);
    tokio::select! {
        read = read_requests(&mut reader, from, &events, gate) => {
            if let Err(e) = read {
                info!(client = client_id, "closing client connection: {e}");
            }
        }
        _ = closer.notified() => {
            debug!(client = client_id, "the driver closed the connection");
        }
        _ = &mut writer => {}
    }
    writer.abort();
    // The socket closes once both halves are gone: now, not after the
    // driver's backlog lets `ClientGone` in.
    drop(reader);
    let _ = events.send(Event::ClientGone { conn }).await;
}

/// How often a client whose frame waits for room is reported alive.
const SENDING_REPORT_EVERY: Duration = Duration::from_secs(1);

/// Reads a client's frames into events until it closes the connection.
/// Each frame's bytes are reserved before its body is read; while that
/// waits (the replica is overloaded), the client is reported alive, so
/// that its session does not expire for the replica's own backlog.
async fn read_requests(
    reader: &mut ConnReader,
    (conn, client_id): (ConnId, u64),
    events: &mpsc::Sender<Event>,
    gate: &Gate,
) -> Result<(), CodecError> {
    let queued = Arc::new(Semaphore::new(CALLS_QUEUED_PER_CONNECTION));
    while let Some(len) = reader.next_len().await? {
        let reserving = gate.budgets.client_inbound.take(len);
        tokio::pin!(reserving);
        let bytes = loop {
            tokio::select! {
                bytes = &mut reserving => break bytes,
                _ = tokio::time::sleep(SENDING_REPORT_EVERY) => {
                    let _ = events.try_send(Event::ClientSending { client_id });
                }
            }
        };
        let frame = reader.body::<ClientFrame>(len, FRAME_BODY_TIMEOUT).await?;
        if send_in_parts(frame, bytes, (conn, client_id), &queued, events)
            .await
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Calls one connection has waiting for the driver at most (two parts of a
/// large batch), whatever frames carry them (`send_in_parts`).
const CALLS_QUEUED_PER_CONNECTION: usize = 2 * CALLS_PER_EVENT_MAX;

/// Hands a client frame to the driver, a `Batch` of more than
/// [`CALLS_PER_EVENT_MAX`] calls in parts of at most that many, so that no
/// frame makes one driver turn long (a batch may hold `BATCH_CALLS_MAX`
/// calls). Each event first takes places for its calls among the
/// connection's [`CALLS_QUEUED_PER_CONNECTION`], so that other clients'
/// calls wait behind a few thousand of one connection's, not behind all it
/// can pipeline. The frame's bytes stay reserved until its last part is
/// handled. Errs if the driver has stopped.
async fn send_in_parts(
    frame: ClientFrame,
    bytes: Reserved,
    (conn, client_id): (ConnId, u64),
    queued: &Arc<Semaphore>,
    events: &mpsc::Sender<Event>,
) -> Result<(), mpsc::error::SendError<Event>> {
    let event = |frame, bytes, places| Event::Client {
        conn,
        client_id,
        frame,
        bytes,
        places,
    };
    // The semaphore is never closed, and no event asks for more places than
    // it has.
    let places_for = |frame: &ClientFrame| {
        let calls = frame_work(frame).min(CALLS_QUEUED_PER_CONNECTION) as u32;
        queued.clone().acquire_many_owned(calls)
    };
    let calls = match frame {
        ClientFrame::Batch(calls) if calls.len() > CALLS_PER_EVENT_MAX => calls,
        frame => {
            let places = places_for(&frame).await.ok();
            return events.send(event(frame, bytes, places)).await;
        }
    };
    // A rest left unsent when the driver stops is at most 3 072 calls
    // (`BATCH_CALLS_MAX`), cheap to free here.
    let mut calls = calls.into_iter();
    loop {
        let part = ClientFrame::Batch(calls.by_ref().take(CALLS_PER_EVENT_MAX).collect());
        let places = places_for(&part).await.ok();
        if calls.len() == 0 {
            return events.send(event(part, bytes, places)).await;
        }
        events
            .send(event(part, Reserved::nothing(), places))
            .await?;
    }
}

/// Writes queued frames, flushing once per burst; stops (closing the
/// connection) when a write fails or the client does not take a frame
/// within `WRITE_TIMEOUT`.
async fn write_frames(mut writer: ConnWriter, mut frames: mpsc::Receiver<Queued>) {
    while let Some(first) = frames.recv().await {
        let mut next = Some(first);
        while let Some(queued) = next.take() {
            if !matches!(
                timeout(WRITE_TIMEOUT, writer.send(&queued.frame)).await,
                Ok(Ok(_))
            ) {
                return;
            }
            next = frames.try_recv().ok();
        }
        if !matches!(timeout(WRITE_TIMEOUT, writer.flush()).await, Ok(Ok(()))) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concoord_transport::byte_budget::ByteBudget;
    use concoord_transport::wire::CallRequest;

    fn batch(calls: u64) -> ClientFrame {
        let call = |seq| CallRequest {
            seq,
            acked: 0,
            method: "m".into(),
            args: vec![],
            done: vec![],
        };
        ClientFrame::Batch((0..calls).map(call).collect())
    }

    /// A batch of 3 000 calls reaches the driver as parts of 1 024, 1 024
    /// and 952 calls in order, at most two queued at once, and its bytes
    /// stay reserved until the last part is handled.
    #[tokio::test]
    async fn a_large_batch_reaches_the_driver_in_parts_two_at_a_time() {
        let (tx, mut rx) = mpsc::channel(16);
        let budget = ByteBudget::new(100);
        let bytes = budget.try_take(100).expect("room");
        let queued = Arc::new(Semaphore::new(CALLS_QUEUED_PER_CONNECTION));
        let sender =
            tokio::spawn(
                async move { send_in_parts(batch(3000), bytes, (7, 9), &queued, &tx).await },
            );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(rx.len(), 2, "two parts queued");
        let mut seqs = Vec::new();
        let mut sizes = Vec::new();
        while let Some(ev) = rx.recv().await {
            let Event::Client {
                conn: 7,
                client_id: 9,
                frame: ClientFrame::Batch(calls),
                ..
            } = &ev
            else {
                panic!("not a part of the batch");
            };
            sizes.push(calls.len());
            seqs.extend(calls.iter().map(|c| c.seq));
            assert_eq!(budget.in_use(), 100, "reserved until the last part");
            drop(ev);
        }
        assert_eq!(sizes, vec![1024, 1024, 952]);
        assert_eq!(seqs, (0..3000).collect::<Vec<_>>());
        assert_eq!(budget.in_use(), 0);
        assert!(sender.await.expect("sender").is_ok());
    }

    /// A small batch is one event.
    #[tokio::test]
    async fn a_small_batch_is_one_event() {
        let (tx, mut rx) = mpsc::channel(16);
        let queued = Arc::new(Semaphore::new(CALLS_QUEUED_PER_CONNECTION));
        send_in_parts(batch(1024), Reserved::nothing(), (1, 2), &queued, &tx)
            .await
            .expect("sent");
        drop(tx);
        let ev = rx.recv().await.expect("one event");
        assert_eq!(ev.work(), 1024);
        assert_eq!(queued.available_permits(), 1024, "its calls' places held");
        drop(ev);
        assert_eq!(queued.available_permits(), CALLS_QUEUED_PER_CONNECTION);
        assert!(rx.recv().await.is_none());
    }

    /// A connection pipelining frames of one call or of small batches has
    /// at most [`CALLS_QUEUED_PER_CONNECTION`] calls waiting for the
    /// driver, whatever the frames.
    #[tokio::test]
    async fn a_connection_has_at_most_its_calls_queued_whatever_the_frames() {
        let (tx, mut rx) = mpsc::channel(100_000);
        let queued = Arc::new(Semaphore::new(CALLS_QUEUED_PER_CONNECTION));
        let sender = tokio::spawn(async move {
            for i in 0..10_000u64 {
                let frame = match i % 2 {
                    0 => batch(1),
                    _ => batch(700),
                };
                let frame = match frame {
                    ClientFrame::Batch(mut one) if one.len() == 1 => {
                        ClientFrame::Call(one.remove(0))
                    }
                    frame => frame,
                };
                if send_in_parts(frame, Reserved::nothing(), (1, 2), &queued, &tx)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut calls = 0;
        while let Ok(ev) = rx.try_recv() {
            calls += ev.work();
        }
        assert!(calls <= CALLS_QUEUED_PER_CONNECTION, "{calls} calls queued");
        assert!(
            calls > CALLS_QUEUED_PER_CONNECTION - 700,
            "{calls} calls queued"
        );
        drop(rx);
        sender.abort();
    }
}
