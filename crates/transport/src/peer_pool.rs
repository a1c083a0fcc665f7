//! Outbound connections to the other replicas, one task per peer, each with a
//! bounded queue and reconnection with exponential back-off.
//!
//! Sending never blocks the consensus loop: a full queue drops the message.
//! Paxos tolerates lost messages (the leader retransmits), so dropping under
//! overload is safe where blocking would stall every peer behind a slow one.

use crate::errors::HandshakeError;
use crate::handshake::connect_peer;
use crate::instance_secret::InstanceSecret;
use crate::wire::PeerFrame;
use futures::SinkExt;
use paxos_core::{Message, NodeId};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE_MAX: usize = 4096;
/// First reconnection delay; doubles up to `BACKOFF_MAX`.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Time allowed to connect and shake hands.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

struct Peer {
    addr: String,
    queue: mpsc::Sender<Message>,
    task: JoinHandle<()>,
}

/// Connections to the other replicas.
pub struct PeerPool {
    me: NodeId,
    my_addr: String,
    token: Option<String>,
    secret: InstanceSecret,
    peers: BTreeMap<NodeId, Peer>,
    dropped: u64,
}

impl PeerPool {
    /// A pool for replica `me`, reachable at `my_addr`, proving `secret`
    /// to every peer it connects to.
    pub fn new(me: NodeId, my_addr: String, token: Option<String>, secret: InstanceSecret) -> Self {
        PeerPool {
            me,
            my_addr,
            token,
            secret,
            peers: BTreeMap::new(),
            dropped: 0,
        }
    }

    /// Queues `msg` for `to`; returns false if it was dropped (unknown peer or
    /// full queue).
    pub fn send(&mut self, to: NodeId, msg: Message) -> bool {
        let Some(peer) = self.peers.get(&to) else {
            self.dropped += 1;
            return false;
        };
        if peer.queue.try_send(msg).is_err() {
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
            let task = crate::determinism::spawn(peer_task(
                *id,
                addr.clone(),
                self.me,
                self.my_addr.clone(),
                self.token.clone(),
                self.secret.clone(),
                rx,
            ));
            self.peers.insert(
                *id,
                Peer {
                    addr: addr.clone(),
                    queue,
                    task,
                },
            );
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for PeerPool {
    fn drop(&mut self) {
        for peer in self.peers.values() {
            peer.task.abort();
        }
    }
}

async fn peer_task(
    to: NodeId,
    addr: String,
    me: NodeId,
    my_addr: String,
    token: Option<String>,
    secret: InstanceSecret,
    mut queue: mpsc::Receiver<Message>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let connected =
            connect_peer(&addr, me, &my_addr, token.clone(), &secret, CONNECT_TIMEOUT).await;
        let mut conn = match connected {
            Ok((node, conn)) if node == to => conn,
            Ok((node, _)) => {
                debug!(%addr, expected = ?to, found = ?node, "a different replica answers at this address");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(e @ (HandshakeError::Impostor(_) | HandshakeError::Rejected { .. })) => {
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
        info!(peer = ?to, %addr, "connected to peer");
        backoff = BACKOFF_MIN;
        loop {
            let Some(first) = queue.recv().await else {
                return; // pool dropped
            };
            // Write everything queued, then flush once.
            let mut result = conn.feed(PeerFrame::Paxos(first)).await;
            while result.is_ok() {
                match queue.try_recv() {
                    Ok(msg) => result = conn.feed(PeerFrame::Paxos(msg)).await,
                    Err(_) => break,
                }
            }
            if result.is_ok() {
                result = conn.flush().await;
            }
            if let Err(e) = result {
                debug!(peer = ?to, error = %e, "peer connection lost; reconnecting");
                break;
            }
        }
    }
}
