//! Outbound connections to the other replicas, one task per peer, each with a
//! queue bounded in bytes and reconnection with exponential back-off.
//!
//! Sending never blocks the consensus loop: a full queue drops the message.
//! Paxos tolerates lost messages (the leader retransmits), so dropping under
//! overload is safe where blocking would stall every peer behind a slow one.
//! A message too large for a frame is dropped too, and reported at error
//! level, rather than taking the connection down (and, rebuilt by every
//! retransmission, taking it down forever): the consensus core splits what
//! it sends so that this cannot happen (see `paxos_core::Config::max_message_bytes`).

use crate::byte_budget::{ByteBudget, Reserved};
use crate::errors::{CodecError, HandshakeError};
use crate::frame_io::split_framed;
use crate::handshake::{PeerIdentity, connect_peer};
use crate::instance_id::InstanceCell;
use crate::instance_secret::InstanceSecret;
use crate::tls_config::ClientTls;
use crate::wire::{PEER_FRAME_BYTES_MAX, PeerFrame};
use paxos_core::{Message, NodeId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE_MAX: usize = 4096;
/// Bytes of messages queued per peer (by `Message::size_bytes`) before new
/// ones are dropped: a few turns of the largest messages.
const PEER_QUEUE_BYTES_MAX: usize = 64 << 20;
/// First reconnection delay; doubles up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Time allowed to connect and shake hands.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

struct Peer {
    addr: String,
    queue: mpsc::Sender<(Message, Reserved)>,
    bytes: ByteBudget,
    task: JoinHandle<()>,
}

/// Connections to the other replicas.
pub struct PeerPool {
    me: NodeId,
    my_addr: String,
    token: Option<String>,
    secret: InstanceSecret,
    instance: Arc<InstanceCell>,
    tls: Option<ClientTls>,
    peers: BTreeMap<NodeId, Peer>,
    dropped: u64,
    largest_frame: Arc<AtomicU64>,
}

impl PeerPool {
    /// A pool for replica `me` of `instance`, reachable at `my_addr`,
    /// proving `secret` to every peer it connects to (over TLS with `tls`,
    /// presenting its certificate).
    pub fn new(
        me: NodeId,
        my_addr: String,
        token: Option<String>,
        secret: InstanceSecret,
        instance: Arc<InstanceCell>,
        tls: Option<ClientTls>,
    ) -> Self {
        PeerPool {
            me,
            my_addr,
            token,
            secret,
            instance,
            tls,
            peers: BTreeMap::new(),
            dropped: 0,
            largest_frame: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues `msg` for `to`; returns false if it was dropped (unknown peer or
    /// full queue).
    pub fn send(&mut self, to: NodeId, msg: Message) -> bool {
        let Some(peer) = self.peers.get(&to) else {
            self.dropped += 1;
            return false;
        };
        let Some(bytes) = peer.bytes.try_take(msg.size_bytes()) else {
            self.dropped += 1;
            return false;
        };
        if peer.queue.try_send((msg, bytes)).is_err() {
            self.dropped += 1;
            return false;
        }
        true
    }

    /// Makes the pool hold exactly these peers (starting, re-addressing and
    /// stopping connection tasks as needed). `me` is ignored if listed.
    pub fn set_peers(&mut self, wanted: &BTreeMap<NodeId, String>) {
        self.peers.retain(|id, peer| {
            let keep = wanted.get(id).is_some_and(|a| *a == peer.addr);
            if !keep {
                peer.task.abort();
            }
            keep
        });
        for (id, addr) in wanted {
            if *id == self.me || self.peers.contains_key(id) {
                continue;
            }
            let (queue, rx) = mpsc::channel(PEER_QUEUE_MAX);
            let link = Link {
                to: *id,
                addr: addr.clone(),
                me: self.me,
                my_addr: self.my_addr.clone(),
                token: self.token.clone(),
                secret: self.secret.clone(),
                instance: self.instance.clone(),
                tls: self.tls.clone(),
                largest_frame: self.largest_frame.clone(),
            };
            let task = crate::determinism::spawn(peer_task(link, rx));
            self.peers.insert(
                *id,
                Peer {
                    addr: addr.clone(),
                    queue,
                    bytes: ByteBudget::new(PEER_QUEUE_BYTES_MAX),
                    task,
                },
            );
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The largest frame written to any peer so far, in bytes.
    pub fn largest_frame_bytes(&self) -> u64 {
        self.largest_frame.load(Ordering::Relaxed)
    }
}

impl Drop for PeerPool {
    fn drop(&mut self) {
        for peer in self.peers.values() {
            peer.task.abort();
        }
    }
}

/// One outbound link: whom to reach, and as whom.
struct Link {
    to: NodeId,
    addr: String,
    me: NodeId,
    my_addr: String,
    token: Option<String>,
    secret: InstanceSecret,
    instance: Arc<InstanceCell>,
    tls: Option<ClientTls>,
    largest_frame: Arc<AtomicU64>,
}

async fn peer_task(link: Link, mut queue: mpsc::Receiver<(Message, Reserved)>) {
    let Link {
        to,
        addr,
        me,
        my_addr,
        token,
        secret,
        instance,
        tls,
        largest_frame,
    } = link;
    let identity = PeerIdentity {
        me,
        my_addr: &my_addr,
        token,
        secret: &secret,
        instance: &instance,
        tls: tls.as_ref(),
        expect_node: Some(to),
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected = connect_peer(&addr, &identity, CONNECT_TIMEOUT).await;
        let conn = match connected {
            Ok((node, conn)) if node == to => conn,
            Ok((node, _)) => {
                debug!(%addr, expected = %to, found = %node, "a different replica answers at this address");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(
                e @ (HandshakeError::Impostor(_)
                | HandshakeError::Rejected { .. }
                | HandshakeError::OtherInstance { .. }
                | HandshakeError::NotThatReplica { .. }
                | HandshakeError::Tls { .. }),
            ) => {
                // Reachable but refusing, or not of this instance: say so
                // (once per back-off round), it will not fix itself quickly.
                warn!(%addr, error = %e, "cannot connect to peer");
                while queue.try_recv().is_ok() {}
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(e) => {
                debug!(%addr, error = %e, "peer unreachable; retrying");
                // Messages queued meanwhile are stale; drop them rather than
                // replay a burst of outdated heartbeats on reconnect.
                while queue.try_recv().is_ok() {}
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        info!(peer = %to, %addr, "connected to peer");
        backoff = BACKOFF_MIN;
        // Nothing is read on this connection: the peer answers on its own.
        let (_unread, mut writer) = split_framed(conn, 0, PEER_FRAME_BYTES_MAX);
        loop {
            let Some(first) = queue.recv().await else {
                return; // pool dropped
            };
            // Write everything queued, then flush once.
            let mut next = Some(first);
            let mut result = Ok(());
            while let Some((msg, held)) = next.take() {
                let kind = msg.kind();
                match writer.send(&PeerFrame::Paxos(msg)).await {
                    Ok(bytes) => {
                        largest_frame.fetch_max(bytes as u64, Ordering::Relaxed);
                    }
                    Err(CodecError::Oversized { bytes, limit }) => {
                        error!(peer = %to, kind, bytes, limit, "dropped a message too large for a peer frame; this is a bug: messages are split below the limit");
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                drop(held);
                next = queue.try_recv().ok();
            }
            if result.is_ok() {
                result = writer.flush().await;
            }
            if let Err(e) = result {
                debug!(peer = %to, error = %e, "peer connection lost; reconnecting");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! A replica must learn its instance only from a
    //! replica it meant to reach.
    use super::*;
    use crate::handshake::{Credentials, accept};
    use crate::instance_id::InstanceId;
    use crate::net::TcpListener;
    use std::time::Duration;

    /// A replica of another instance `I'` answers at an address this
    /// replica's (stale) view gives to node 5: a founder restarted there
    /// without its state, with the same secret file, so it proves the
    /// secret, but with a new node id. The pool sees the node mismatch and
    /// does not use the link, yet the handshake already made the joiner
    /// (instance unknown, e.g. a durable joiner just restarted) adopt `I'`;
    /// from then on it refuses every peer of its own instance.
    #[tokio::test]
    async fn a_joiner_does_not_adopt_the_instance_of_a_replica_it_did_not_mean_to_reach() {
        let secret = InstanceSecret::generate();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let other = InstanceCell::new(Some(InstanceId(0xbad)));
        let responder_secret = secret.clone();
        let responder = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let creds = Credentials {
                    me: NodeId(99), // not node 5
                    instance: &other,
                    token: None,
                    secret: &responder_secret,
                    sessions_not_before_ms: 0,
                    client_slots: None,
                    tls: None,
                    members: None,
                };
                let _ = accept(stream, &creds, Duration::from_secs(2)).await;
            }
        });
        let mine = Arc::new(InstanceCell::new(None));
        let mut pool = PeerPool::new(
            NodeId(1),
            "127.0.0.1:1".into(),
            None,
            secret,
            mine.clone(),
            None,
        );
        pool.set_peers(&BTreeMap::from([(NodeId(5), addr)]));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let learned = mine.get();
        drop(pool);
        responder.abort();
        assert_eq!(
            learned, None,
            "adopted the instance of node 99 on a link to node 5: its own instance's peers are refused from now on"
        );
    }
}
