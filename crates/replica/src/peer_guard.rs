//! Which peer messages reach the consensus core.
//!
//! The handshake binds each peer connection to the node id it proved, so a
//! message's sender is known. The guard then drops, counts and reports:
//!
//! * messages from a node in none of the views this replica holds (a removed
//!   or never-added replica: it has no say). A joining replica, which holds
//!   no view yet, takes messages from any authenticated peer;
//! * leader messages (`PreVote`, `Prepare`, `Accept`, `Heartbeat`) whose
//!   ballot belongs to another node than the sender: nobody speaks with
//!   another node's ballot;
//! * ballots with a round past [`ROUND_MAX`]: real rounds grow by one per
//!   election and never get near it, while a round at `u64::MAX` would wrap
//!   the next ballot to zero and leave the instance leaderless for good;
//! * messages the core refused and reported in `Ready::peer_faults`: values
//!   out of range or malformed, or a decision contradicting one this replica
//!   holds (the core drops them and keeps running).
//!
//! None of this makes a member that holds the secret harmless (Paxos
//! tolerates crashes, not lies); it keeps mistakes and stale replicas from
//! doing damage and makes them visible in `concoord status`.

use concoord_transport::determinism::HashMap;
use paxos_core::message::{
    Accept, Accepted, Heartbeat, HeartbeatAck, PreVote, PreVoteReply, Prepare, Promise,
};
use paxos_core::{Ballot, Message, Node, NodeId};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{error, warn};

/// Highest ballot round taken from a peer (about 2.8e14: a million
/// elections a second for nine years).
pub const ROUND_MAX: u64 = 1 << 48;
/// One log line per peer and reason at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// Why a peer message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The sender is in no view this replica holds.
    NotAMember,
    /// A leader message carrying another node's ballot.
    BallotOfAnotherNode,
    /// A ballot round past `ROUND_MAX`.
    RoundOutOfRange,
    /// The message contradicts a decision (the core refused it).
    Contradiction,
    /// The core found the message malformed (a value out of range, a snapshot
    /// that does not match its digest).
    Malformed,
}

impl Refusal {
    fn describe(self) -> &'static str {
        match self {
            Refusal::NotAMember => {
                "dropped a message from a replica that is not a member of the view"
            }
            Refusal::BallotOfAnotherNode => {
                "dropped a leader message carrying another node's ballot"
            }
            Refusal::RoundOutOfRange => "dropped a message with an out-of-range ballot round",
            Refusal::Contradiction => {
                "dropped a message that contradicts what this replica decided; the peer that sent it is faulty"
            }
            Refusal::Malformed => "dropped a malformed message; the peer that sent it is faulty",
        }
    }
}

/// Checks, counts and reports peer messages.
#[derive(Default)]
pub struct PeerGuard {
    dropped: u64,
    last_report: HashMap<(NodeId, Refusal), Instant>,
}

/// The ballot a message claims as its sender's own, if it is a leader message.
fn own_ballot(msg: &Message) -> Option<Ballot> {
    match msg {
        Message::PreVote(PreVote { ballot, .. })
        | Message::Prepare(Prepare { ballot })
        | Message::Accept(Accept { ballot, .. })
        | Message::Heartbeat(Heartbeat { ballot, .. }) => Some(*ballot),
        _ => None,
    }
}

/// Any ballot a message carries.
fn any_ballot(msg: &Message) -> Option<Ballot> {
    match msg {
        Message::PreVote(PreVote { ballot, .. })
        | Message::PreVoteReply(PreVoteReply { ballot, .. })
        | Message::Prepare(Prepare { ballot })
        | Message::Promise(Promise { ballot, .. })
        | Message::Accept(Accept { ballot, .. })
        | Message::Accepted(Accepted { ballot, .. })
        | Message::Heartbeat(Heartbeat { ballot, .. })
        | Message::HeartbeatAck(HeartbeatAck { ballot, .. }) => Some(*ballot),
        _ => None,
    }
}

impl PeerGuard {
    /// Whether `msg` from `from` may be stepped into `node`.
    pub fn check(&self, node: &Node, from: NodeId, msg: &Message) -> Result<(), Refusal> {
        if let Some(views) = node.views()
            && !views.views().iter().any(|v| v.contains(from))
        {
            return Err(Refusal::NotAMember);
        }
        if any_ballot(msg).is_some_and(|b| b.round > ROUND_MAX) {
            return Err(Refusal::RoundOutOfRange);
        }
        if own_ballot(msg).is_some_and(|b| b.leader != from) {
            return Err(Refusal::BallotOfAnotherNode);
        }
        if let Message::Promise(Promise { accepted, .. }) = msg
            && accepted.iter().any(|a| a.ballot.round > ROUND_MAX)
        {
            return Err(Refusal::RoundOutOfRange);
        }
        Ok(())
    }

    /// Counts a dropped message and reports its sender (rate-limited).
    pub fn refused(&mut self, from: NodeId, addr: Option<&str>, kind: &str, why: Refusal) {
        self.dropped += 1;
        let now = Instant::now();
        let due = self
            .last_report
            .get(&(from, why))
            .is_none_or(|t| now.duration_since(*t) >= REPORT_EVERY);
        if due {
            self.last_report.insert((from, why), now);
            if self.last_report.len() > 4096 {
                self.last_report
                    .retain(|_, t| now.duration_since(*t) < REPORT_EVERY);
            }
            let addr = addr.unwrap_or("?");
            if why == Refusal::Contradiction {
                error!(peer = %from, %addr, kind, dropped_total = self.dropped, "{}", why.describe());
            } else {
                warn!(peer = %from, %addr, kind, dropped_total = self.dropped, "{}", why.describe());
            }
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::{Config, Member};

    fn member(id: u64) -> Member {
        Member {
            id: NodeId(id),
            addr: format!("127.0.0.1:{id}"),
        }
    }

    fn node() -> Node {
        Node::bootstrap(Config::new(NodeId(1)), &[member(1), member(2)]).expect("node")
    }

    fn heartbeat(round: u64, leader: u64) -> Message {
        Message::Heartbeat(Heartbeat {
            ballot: Ballot {
                round,
                leader: NodeId(leader),
            },
            commit: 0,
            round: 0,
        })
    }

    #[test]
    fn a_member_with_its_own_ballot_is_heard() {
        assert_eq!(
            PeerGuard::default().check(&node(), NodeId(2), &heartbeat(3, 2)),
            Ok(())
        );
    }

    #[test]
    fn a_node_outside_every_view_is_not_heard() {
        assert_eq!(
            PeerGuard::default().check(&node(), NodeId(9), &heartbeat(3, 9)),
            Err(Refusal::NotAMember)
        );
    }

    #[test]
    fn a_joining_replica_hears_any_authenticated_peer() {
        let joining = Node::join(Config::new(NodeId(5))).expect("node");
        assert_eq!(
            PeerGuard::default().check(&joining, NodeId(9), &heartbeat(3, 9)),
            Ok(())
        );
    }

    #[test]
    fn nobody_speaks_with_another_nodes_ballot() {
        assert_eq!(
            PeerGuard::default().check(&node(), NodeId(2), &heartbeat(3, 1)),
            Err(Refusal::BallotOfAnotherNode)
        );
    }

    #[test]
    fn a_ballot_round_at_the_top_of_the_range_is_refused() {
        assert_eq!(
            PeerGuard::default().check(&node(), NodeId(2), &heartbeat(u64::MAX, 2)),
            Err(Refusal::RoundOutOfRange)
        );
        assert_eq!(
            PeerGuard::default().check(&node(), NodeId(2), &heartbeat(ROUND_MAX, 2)),
            Ok(())
        );
    }

    #[test]
    fn refusals_are_counted() {
        let mut g = PeerGuard::default();
        g.refused(NodeId(2), None, "heartbeat", Refusal::NotAMember);
        g.refused(NodeId(2), None, "heartbeat", Refusal::NotAMember);
        assert_eq!(g.dropped(), 2);
    }
}
