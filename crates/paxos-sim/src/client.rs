//! A simulated client: one operation at a time, retried with the same sequence
//! number after a timeout or a redirect, exactly as ConCoord's client does.

use crate::history::{History, OpKind};
use crate::network::{Endpoint, Network, Packet, Payload, Reply};
use paxos_core::NodeId;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Ticks without a reply before a request is re-sent elsewhere.
const REQUEST_TIMEOUT_TICKS: u64 = 80;
/// Counters the clients operate on.
pub const KEYS: u8 = 3;

struct Pending {
    seq: u64,
    kind: OpKind,
    history: usize,
    target: NodeId,
    /// Whether `target` was chosen on purpose (leader guess or redirect);
    /// otherwise the next send goes to a random node.
    aimed: bool,
    resend_at: u64,
}

/// One client.
pub struct SimClient {
    /// Client id (also its session id in the state machine).
    pub id: u64,
    seq: u64,
    pending: Option<Pending>,
    next_op_at: u64,
    leader_guess: Option<NodeId>,
    /// Fraction of operations that are reads (some clients mostly read).
    read_ratio: f64,
    /// Operations completed.
    pub completed: u64,
}

impl SimClient {
    /// A client with the given id whose operations are reads with
    /// probability `read_ratio`.
    pub fn new(id: u64, read_ratio: f64) -> Self {
        SimClient {
            id,
            seq: 0,
            pending: None,
            next_op_at: 0,
            leader_guess: None,
            read_ratio,
            completed: 0,
        }
    }

    /// Whether an operation is outstanding.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Starts new operations (when `issue_new`) and re-sends timed-out ones.
    pub fn tick(
        &mut self,
        now: u64,
        issue_new: bool,
        nodes: &[NodeId],
        rng: &mut ChaCha8Rng,
        net: &mut Network,
        history: &mut History,
    ) {
        if nodes.is_empty() {
            return;
        }
        if self.pending.is_none() && issue_new && now >= self.next_op_at {
            self.seq += 1;
            let key = rng.random_range(0..KEYS);
            let kind = if rng.random_bool(self.read_ratio) {
                OpKind::Read { key }
            } else {
                OpKind::Increment { key }
            };
            let index = history.invoke(self.id, self.seq, kind, now);
            let target = self
                .leader_guess
                .filter(|g| nodes.contains(g))
                .unwrap_or_else(|| nodes[rng.random_range(0..nodes.len())]);
            self.pending = Some(Pending {
                seq: self.seq,
                kind,
                history: index,
                target,
                aimed: true,
                resend_at: now,
            });
        }
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if now >= p.resend_at {
            if !p.aimed || !nodes.contains(&p.target) {
                p.target = nodes[rng.random_range(0..nodes.len())];
            }
            p.aimed = false;
            p.resend_at = now + REQUEST_TIMEOUT_TICKS;
            let packet = Packet {
                from: Endpoint::Client(self.id),
                to: Endpoint::Node(p.target),
                payload: Payload::Request {
                    seq: p.seq,
                    kind: p.kind,
                },
            };
            net.send(rng, now, packet);
        }
    }

    /// Handles a node's reply.
    pub fn on_reply(
        &mut self,
        now: u64,
        from: NodeId,
        seq: u64,
        reply: Reply,
        rng: &mut ChaCha8Rng,
        history: &mut History,
    ) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if p.seq != seq {
            return; // A late answer to an earlier attempt of a finished operation.
        }
        match reply {
            Reply::Value(v) => {
                history.complete(p.history, now, v);
                self.pending = None;
                self.completed += 1;
                self.leader_guess = Some(from);
                self.next_op_at = now + rng.random_range(0..10);
            }
            Reply::Redirect(Some(leader)) if leader != from => {
                self.leader_guess = Some(leader);
                p.target = leader;
                p.aimed = true;
                p.resend_at = now + 1;
            }
            Reply::Redirect(_) | Reply::Busy => {
                self.leader_guess = None;
                p.aimed = false;
                p.resend_at = now + rng.random_range(2..12);
            }
        }
    }
}
