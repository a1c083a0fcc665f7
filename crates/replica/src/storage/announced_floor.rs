//! The decided floor a turn's messages announce to other replicas.
//!
//! Decisions are written to disk without a sync of their own (see
//! `DurableStore::write`): a power loss may take back the last ones, and the
//! replica learns them again. That is safe only while nobody else has been
//! told about them. Most messages carry the sender's decided prefix
//! (`decided`, or a leader's `commit`), and peers act on it: a new leader
//! treats the slots below a promiser's floor as decided and learns them from
//! that promiser instead of recovering them in phase 1, and catch-up trusts
//! the floor it was offered. So before a message leaves, every decision at or
//! below the floor it announces must be synced.
//!
//! An `Accepted` also stands on decisions above the floor: an acceptor
//! acknowledges an `Accept` for a slot it knows decided (with the decided
//! value) without writing an acceptance, because it holds that value for
//! good. It does only once the decision is on disk, so its acknowledged
//! slots count as announced too.

use paxos_core::message::{
    Accept, Accepted, CatchupReply, Heartbeat, HeartbeatAck, PreVote, PreVoteReply, Promise,
    SnapshotChunk,
};
use paxos_core::{Message, Outgoing, Slot};

/// The highest decided floor any of `messages` announces (0 if none).
pub fn announced_floor(messages: &[Outgoing]) -> Slot {
    messages.iter().map(|o| floor(&o.msg)).max().unwrap_or(0)
}

/// The floor one message announces. Every kind is listed, so a new message
/// kind must say whether it announces one.
fn floor(msg: &Message) -> Slot {
    match msg {
        Message::PreVote(PreVote { decided, .. })
        | Message::PreVoteReply(PreVoteReply { decided, .. })
        | Message::Promise(Promise { decided, .. })
        | Message::HeartbeatAck(HeartbeatAck { decided, .. }) => *decided,
        Message::Accepted(Accepted { decided, slots, .. }) => {
            slots.iter().copied().max().unwrap_or(0).max(*decided)
        }
        Message::Accept(Accept { commit, .. })
        | Message::Heartbeat(Heartbeat { commit, .. })
        | Message::CatchupReply(CatchupReply { commit, .. })
        | Message::SnapshotChunk(SnapshotChunk { commit, .. }) => *commit,
        Message::Prepare(_) | Message::CatchupRequest(_) | Message::SnapshotRequest(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::message::Prepare;
    use paxos_core::{Ballot, NodeId};

    #[test]
    fn the_floor_is_the_highest_decision_any_message_stands_on() {
        let b = Ballot {
            round: 1,
            leader: NodeId(1),
        };
        let out = |msg| Outgoing { to: NodeId(2), msg };
        let messages = vec![
            out(Message::Prepare(Prepare { ballot: b })),
            out(Message::HeartbeatAck(HeartbeatAck {
                ballot: b,
                ok: true,
                round: 0,
                decided: 7,
            })),
            out(Message::Heartbeat(Heartbeat {
                ballot: b,
                commit: 9,
                round: 0,
            })),
        ];
        assert_eq!(announced_floor(&messages), 9);
        let acked = out(Message::Accepted(Accepted {
            ballot: b,
            ok: true,
            slots: vec![12, 11],
            decided: 4,
        }));
        assert_eq!(
            announced_floor(&[acked]),
            12,
            "an acknowledged slot may stand on its decision"
        );
        assert_eq!(announced_floor(&messages[..1]), 0);
        assert_eq!(announced_floor(&[]), 0);
    }
}
