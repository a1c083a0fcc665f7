//! Packets leaving the network: protocol messages stepped into nodes, client
//! requests turned into proposals and reads, replies handed to clients.

use crate::harness::Sim;
use crate::history::OpKind;
use crate::network::{Endpoint, Packet, Payload, Reply};
use crate::state_machine::IncrementCmd;
use paxos_core::{NodeId, ProposeError};
use rand::Rng;

impl Sim {
    pub(crate) fn client_targets(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.wiped && !n.retired)
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn deliver(&mut self, packet: Packet) {
        if let Endpoint::Node(to) = packet.to
            && let Some(paused_until) = self.nodes.get(&to).map(|n| n.paused_until)
            && paused_until > self.now
        {
            // A resumed process drains its sockets in no particular order.
            let jitter = self.rng.random_range(0..10);
            self.net.hold_until(paused_until + jitter, packet);
            return;
        }
        if self.cfg.trace
            && let (Endpoint::Node(from), Endpoint::Node(to), Payload::Paxos(msg)) =
                (packet.from, packet.to, &packet.payload)
            && self.trace_messages_after.is_some_and(|t| self.now >= t)
        {
            let line = format!("{from:?} -> {to:?} {msg:?}");
            self.log(line.chars().take(300).collect());
        }
        match (packet.from, packet.to) {
            (Endpoint::Node(from), Endpoint::Node(to)) => {
                if let (Payload::Paxos(msg), Some(node)) = (
                    packet.payload,
                    self.nodes.get_mut(&to).and_then(|n| n.node.as_mut()),
                ) {
                    node.step(from, msg);
                }
            }
            (Endpoint::Client(client), Endpoint::Node(to)) => {
                if let Payload::Request { seq, kind } = packet.payload {
                    self.handle_request(to, client, seq, kind);
                }
            }
            (Endpoint::Node(from), Endpoint::Client(client)) => {
                if let Payload::Reply { seq, reply } = packet.payload
                    && let Some(c) = self.clients.iter_mut().find(|c| c.id == client)
                {
                    c.on_reply(self.now, from, seq, reply, &mut self.rng, &mut self.history);
                }
            }
            (Endpoint::Client(_), Endpoint::Client(_)) => {}
        }
    }

    pub(crate) fn reply(&mut self, from: NodeId, client: u64, seq: u64, reply: Reply) {
        let packet = Packet {
            from: Endpoint::Node(from),
            to: Endpoint::Client(client),
            payload: Payload::Reply { seq, reply },
        };
        self.net.send(&mut self.rng, self.now, packet);
    }

    fn handle_request(&mut self, to: NodeId, client: u64, seq: u64, kind: OpKind) {
        let Some(sn) = self.nodes.get_mut(&to) else {
            return;
        };
        let Some(node) = sn.node.as_mut() else {
            return;
        };
        let answer = match kind {
            OpKind::Increment { key } => {
                // Exactly-once: a retry of an executed call gets its first reply.
                match sn.machine.sessions.get(&client) {
                    Some((s, v)) if *s == seq && node.is_leader() => Some(Reply::Value(*v)),
                    _ => {
                        let cmd = IncrementCmd { client, seq, key };
                        match node.propose(cmd.encode()) {
                            Ok(()) => {
                                sn.waiting.insert((client, seq));
                                None
                            }
                            Err(ProposeError::NotLeader { leader }) => {
                                Some(Reply::Redirect(leader))
                            }
                            Err(ProposeError::Busy) => Some(Reply::Busy),
                        }
                    }
                }
            }
            OpKind::Read { key } => {
                sn.next_read += 1;
                let id = sn.next_read;
                match node.read_index(id) {
                    Ok(()) => {
                        sn.reads.insert(id, (client, seq, key));
                        None
                    }
                    Err(ProposeError::NotLeader { leader }) => Some(Reply::Redirect(leader)),
                    Err(ProposeError::Busy) => Some(Reply::Busy),
                }
            }
        };
        if let Some(reply) = answer {
            self.reply(to, client, seq, reply);
        }
    }
}
