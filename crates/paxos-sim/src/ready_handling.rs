//! Handling a node's `Ready` exactly as a real runtime must, one function per
//! step, in the order `paxos_core::Ready` documents:
//!
//! ```text
//! take_ready ─▶ persist ─▶ (crash here?) ─▶ send ─▶ restore ─▶ execute ─▶ answer reads
//!                  │                                                          │
//!                  └─ invariants checked on what is persisted and sent        └─ compact if due
//! ```
//!
//! A node armed to crash mid-`Ready` dies right after persisting: what it
//! wrote survives, nothing it meant to send leaves, nothing is executed or
//! answered. A node armed to stall as it starts proposing in a new view holds
//! its messages back (see `faults.rs`). Messages are handed to the network
//! last, after the snapshot a compaction adds, and replies after them.

use crate::harness::{Sim, Strike};
use crate::network::{Endpoint, Packet, Payload, Reply};
use crate::outcome::Violation;
use crate::state_machine::{CounterMachine, IncrementCmd};
use paxos_core::message::{Accept, Heartbeat};
use paxos_core::{Command, Entry, Message, NodeId, Outgoing, PeerFault, Ready, Slot, Snapshot};
use rand::Rng;

/// A reply owed to a client: (client, seq, reply).
type Owed = (u64, u64, Reply);

impl Sim {
    /// Takes `id`'s `Ready` and carries out each of its steps.
    pub(crate) fn process_ready(&mut self, id: NodeId) {
        let stall_ready = self
            .nodes
            .get(&id)
            .and_then(|n| n.stall)
            .is_some_and(|stall| self.new_view_ready_without(id, &stall));
        let Some(mut ready) = self.take_ready(id) else {
            return;
        };
        self.persist(id, &ready);
        let mut violations = self.check_ready(id, &ready);
        if self.crash_if_armed(id, &ready) {
            for v in violations {
                self.fail(v);
            }
            return;
        }
        let send_at = self.stall_if_armed(id, &mut ready.messages, stall_ready);
        let mut packets = packets_from(id, std::mem::take(&mut ready.messages));
        violations.extend(self.restore(id, ready.restore.as_ref()));
        let mut replies = Vec::new();
        violations.extend(self.execute(id, &ready.committed, &mut replies));
        self.answer_reads(id, &ready.reads, &mut replies);
        self.redirect_dropped(
            id,
            &ready.dropped_commands,
            &ready.dropped_reads,
            &mut replies,
        );
        violations.extend(self.executed_up_to_decided(id));
        packets.extend(self.compact_if_due(id, ready.compaction_wanted));
        self.send_packets(packets, send_at);
        for (client, seq, reply) in replies {
            self.reply(id, client, seq, reply);
        }
        for v in violations {
            self.fail(v);
        }
    }

    /// The node's `Ready`, if it is up; traces a leadership it learned was
    /// superseded.
    fn take_ready(&mut self, id: NodeId) -> Option<Ready> {
        let sn = self.nodes.get_mut(&id)?;
        let node = sn.node.as_mut()?;
        let ready = node.take_ready();
        if self.cfg.trace {
            let superseded = node.status().counters.superseded_leaderships;
            if superseded > sn.superseded_seen {
                sn.superseded_seen = superseded;
                self.log(format!(
                    "{id:?} learned that a higher ballot chose over its proposals"
                ));
            }
        }
        Some(ready)
    }

    /// Step 1: the node's disk takes what it must hold before anything leaves.
    fn persist(&mut self, id: NodeId, ready: &Ready) {
        if let Some(sn) = self.nodes.get_mut(&id) {
            sn.disk.write(&ready.persist);
        }
    }

    /// The online invariants on what the node persisted and is about to send.
    /// Simulated peers are honest, so a peer fault it reports is a protocol bug.
    fn check_ready(&mut self, id: NodeId, ready: &Ready) -> Vec<Violation> {
        let mut violations = Vec::new();
        for accepted in &ready.persist.accepted {
            violations.extend(self.invariants.on_accepted(id, accepted));
        }
        for (slot, entry) in &ready.persist.decided {
            violations.extend(self.invariants.on_decided(id, *slot, entry));
        }
        for out in &ready.messages {
            if let Message::Accept(Accept { ballot, commit, .. })
            | Message::Heartbeat(Heartbeat { ballot, commit, .. }) = &out.msg
                && ballot.leader == id
            {
                violations.extend(self.invariants.on_commit_sent(*ballot, *commit));
            }
        }
        for (peer, fault) in &ready.peer_faults {
            violations.push(match fault {
                PeerFault::ConflictingDecision { slot } => Violation::Agreement {
                    slot: *slot,
                    node: id,
                },
                PeerFault::Malformed(why) => Violation::Crash(format!(
                    "node {id:?} refused a message from {peer:?} as malformed: {why}"
                )),
            });
        }
        violations
    }

    /// Crashes the node between persisting and sending, if it is armed to and
    /// has something to send. Returns whether it crashed.
    fn crash_if_armed(&mut self, id: NodeId, ready: &Ready) -> bool {
        let Some(sn) = self.nodes.get_mut(&id) else {
            return false;
        };
        if !sn.crash_mid_ready || ready.messages.is_empty() {
            return false;
        }
        sn.crash_mid_ready = false;
        self.exercised.mid_ready_crashes += 1;
        self.log(format!(
            "{id:?} crashes after persisting, before sending {} messages",
            ready.messages.len()
        ));
        self.crash(id);
        true
    }

    /// A leader armed to stall as a new view starts pauses here (see
    /// `faults.rs`). Returns the tick its messages leave at.
    fn stall_if_armed(
        &mut self,
        id: NodeId,
        messages: &mut Vec<Outgoing>,
        stall_ready: bool,
    ) -> u64 {
        let now = self.now;
        let Some(sn) = self.nodes.get_mut(&id) else {
            return now;
        };
        let views = sn.node.as_ref().and_then(|n| n.views());
        let Some((ticks, partner)) =
            crate::faults::stall_at_new_view(&mut sn.stall, views, messages, stall_ready, now)
        else {
            return now;
        };
        sn.paused_until = now + ticks;
        let resume = sn.paused_until;
        // Its sockets flush after the cut below is in place, which comes just
        // before it resumes, so what queued up for it meanwhile does not
        // reach it first.
        self.scheduled
            .push((resume - 1, Strike::IsolateWith(id, partner, 600)));
        // The partner stays cut off until then: it must not learn the new
        // view in between.
        self.scheduled.push((now, Strike::CutOff(partner, resume)));
        self.log(format!(
            "{id:?} pauses as it proposes in a new view, for {ticks}"
        ));
        resume + 1
    }

    /// Step 3: a snapshot received from a peer replaces the state machine.
    fn restore(&mut self, id: NodeId, snapshot: Option<&Snapshot>) -> Option<Violation> {
        let snapshot = snapshot?;
        let sn = self.nodes.get_mut(&id)?;
        match CounterMachine::from_bytes(&snapshot.data) {
            Some(machine) if machine.slot == snapshot.slot => {
                let diverged = self
                    .chain_at
                    .get(&machine.slot)
                    .is_some_and(|chain| *chain != machine.chain);
                let slot = machine.slot;
                sn.machine = machine;
                diverged.then_some(Violation::Divergence { slot, node: id })
            }
            _ => Some(Violation::Crash(format!(
                "node {id:?} received an unreadable snapshot"
            ))),
        }
    }

    /// Step 4: executes the decided entries in order, owing a reply for each
    /// increment this node proposed.
    fn execute(
        &mut self,
        id: NodeId,
        committed: &[(Slot, Entry)],
        replies: &mut Vec<Owed>,
    ) -> Vec<Violation> {
        let mut violations = Vec::new();
        let Some(sn) = self.nodes.get_mut(&id) else {
            return violations;
        };
        for (slot, entry) in committed {
            if *slot != sn.machine.slot + 1 {
                violations.push(Violation::Crash(format!(
                    "node {id:?} was handed slot {slot} after executing {}",
                    sn.machine.slot
                )));
                break;
            }
            for (client, seq, value) in sn.machine.execute(*slot, entry) {
                if sn.waiting.remove(&(client, seq)) {
                    replies.push((client, seq, Reply::Value(value)));
                }
            }
            let chain = sn.machine.chain;
            if *self.chain_at.entry(*slot).or_insert(chain) != chain {
                violations.push(Violation::Divergence {
                    slot: *slot,
                    node: id,
                });
            }
        }
        violations
    }

    /// Step 5: granted reads are answered from the state machine as it is now.
    fn answer_reads(&mut self, id: NodeId, reads: &[u64], replies: &mut Vec<Owed>) {
        let Some(sn) = self.nodes.get_mut(&id) else {
            return;
        };
        let mut trace = Vec::new();
        for read in reads {
            if let Some((client, seq, key)) = sn.reads.remove(read) {
                let value = sn.machine.counters.get(&key).copied().unwrap_or(0);
                replies.push((client, seq, Reply::Value(value)));
                trace.push(format!(
                    "{id:?} reads counter {key} = {value} for client {client} seq {seq} at slot {}",
                    sn.machine.slot
                ));
            }
        }
        for line in trace {
            self.log(line);
        }
    }

    /// Commands and reads the node gave up on (it stopped leading): their
    /// clients are redirected.
    fn redirect_dropped(
        &mut self,
        id: NodeId,
        commands: &[Command],
        reads: &[u64],
        replies: &mut Vec<Owed>,
    ) {
        let Some(sn) = self.nodes.get_mut(&id) else {
            return;
        };
        for cmd in commands {
            if let Some(inc) = IncrementCmd::decode(cmd)
                && sn.waiting.remove(&(inc.client, inc.seq))
            {
                replies.push((inc.client, inc.seq, Reply::Redirect(None)));
            }
        }
        for read in reads {
            if let Some((client, seq, _)) = sn.reads.remove(read) {
                replies.push((client, seq, Reply::Redirect(None)));
            }
        }
    }

    /// After a `Ready`, the state machine has executed exactly what the node
    /// decided: the same property seen from the caller's side.
    fn executed_up_to_decided(&self, id: NodeId) -> Option<Violation> {
        let sn = self.nodes.get(&id)?;
        let node = sn.node.as_ref()?;
        (sn.machine.slot != node.decided()).then(|| {
            Violation::Crash(format!(
                "node {id:?} executed up to {} but decided up to {}",
                sn.machine.slot,
                node.decided()
            ))
        })
    }

    /// Snapshots the state machine when the node asks for it (and now and then
    /// unasked), and persists the snapshot at once. Returns what the node has
    /// to send after compacting.
    fn compact_if_due(&mut self, id: NodeId, wanted: bool) -> Vec<Packet> {
        let Some(sn) = self.nodes.get_mut(&id) else {
            return Vec::new();
        };
        let Some(node) = sn.node.as_mut() else {
            return Vec::new();
        };
        let snapshot_now = wanted || self.rng.random_bool(0.001);
        if !snapshot_now || sn.machine.slot <= node.status().snapshot_slot {
            return Vec::new();
        }
        let _ = node.compact(sn.machine.slot, sn.machine.to_bytes());
        // The next take_ready carries the snapshot to persist.
        let more = node.take_ready();
        sn.disk.write(&more.persist);
        debug_assert!(more.messages.is_empty() && more.committed.is_empty());
        packets_from(id, more.messages)
    }

    /// Step 2, carried out last: hands the messages to the network, or holds
    /// them until `send_at` (a stalled node's sockets flush when it resumes).
    fn send_packets(&mut self, packets: Vec<Packet>, send_at: u64) {
        for packet in packets {
            if send_at > self.now {
                self.net.hold_until(send_at, packet);
            } else {
                self.net.send(&mut self.rng, self.now, packet);
            }
        }
    }
}

fn packets_from(id: NodeId, messages: Vec<Outgoing>) -> Vec<Packet> {
    messages
        .into_iter()
        .map(|out| Packet {
            from: Endpoint::Node(id),
            to: Endpoint::Node(out.to),
            payload: Payload::Paxos(out.msg),
        })
        .collect()
}
