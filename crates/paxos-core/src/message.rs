//! Messages nodes exchange. The caller's transport carries them and tells the
//! receiving node who sent each one (`Node::step(from, msg)`).

use crate::entry::{Entry, Reconfig};
use crate::types::{Ballot, NUMBER_MAX, NodeId, Slot};
use crate::view::ViewHistory;
use serde::{Deserialize, Serialize};

/// A value an acceptor accepted in some slot under some ballot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedEntry {
    /// The slot.
    pub slot: Slot,
    /// The ballot it was accepted under.
    pub ballot: Ballot,
    /// The value.
    pub entry: Entry,
}

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Pre-vote: "would you promise `ballot` if I asked?" Nobody changes state,
    /// so a node cut off from the cluster cannot inflate ballots and depose a
    /// healthy leader when it comes back.
    PreVote {
        /// The ballot the would-be candidate would use.
        ballot: Ballot,
        /// Every slot up to here is decided at the sender.
        decided: Slot,
    },
    /// The answer to `PreVote`.
    PreVoteReply {
        /// Echo of the asked ballot.
        ballot: Ballot,
        /// Whether a `Prepare` with that ballot would be granted now.
        ok: bool,
        /// The ballot the sender is promised to: a refused candidate tries
        /// again above it.
        promised: Ballot,
        /// Every slot up to here is decided at the sender.
        decided: Slot,
    },
    /// Phase 1a: a candidate asks for a promise for every slot not yet decided.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
    },
    /// Phase 1b: the answer to `Prepare`, or one part of it. An acceptor
    /// that accepted more than `max_message_bytes` of values above its
    /// decided prefix reports them in several parts, each covering the slots
    /// `first..=last`; together they cover every slot after `decided`, and
    /// the promise counts only once they all arrived (see `promise_parts`).
    Promise {
        /// The ballot the acceptor is promised to after handling the request.
        ballot: Ballot,
        /// Whether the promise was given (`ballot` is then the requested one).
        ok: bool,
        /// Every slot up to here is decided at the acceptor.
        decided: Slot,
        /// What the acceptor accepted in slots `first..=last`.
        accepted: Vec<AcceptedEntry>,
        /// The first slot this part reports on.
        first: Slot,
        /// The last slot this part reports on ([`NUMBER_MAX`] for the last
        /// part: every slot from `first` on).
        last: Slot,
    },
    /// Phase 2a: the leader asks acceptors to accept values (many slots at once).
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// Slots and their values.
        entries: Vec<(Slot, Entry)>,
        /// Every slot up to here is decided.
        commit: Slot,
    },
    /// Phase 2b: the answer to `Accept`.
    Accepted {
        /// The acceptor's promised ballot after handling the request.
        ballot: Ballot,
        /// Whether the values were accepted.
        ok: bool,
        /// The slots accepted.
        slots: Vec<Slot>,
        /// Every slot up to here is decided at the acceptor.
        decided: Slot,
    },
    /// Leader liveness, commit point, and (when `round > 0`) a read-index
    /// confirmation round.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// Every slot up to here is decided.
        commit: Slot,
        /// Read-confirmation round, 0 if none.
        round: u64,
    },
    /// The answer to `Heartbeat`.
    HeartbeatAck {
        /// The acceptor's promised ballot.
        ballot: Ballot,
        /// Whether the acceptor still follows the heartbeat's ballot.
        ok: bool,
        /// Echo of the heartbeat's round.
        round: u64,
        /// Every slot up to here is decided at the acceptor.
        decided: Slot,
    },
    /// A lagging node asks for decided entries from `from` on.
    CatchupRequest {
        /// First slot wanted.
        from: Slot,
        /// The requester knows no view yet (a new node) and needs the history.
        need_views: bool,
    },
    /// Decided entries, contiguous from the requested slot.
    CatchupReply {
        /// Slots and decided values.
        entries: Vec<(Slot, Entry)>,
        /// The view history as of the slot before the first entry, if asked for.
        views: Option<ViewHistory>,
        /// Every slot up to here is decided at the sender.
        commit: Slot,
    },
    /// The requested entries were compacted away: one chunk of a snapshot
    /// instead. Snapshots travel in bounded chunks, each asked for with
    /// `SnapshotRequest`, so a large state never needs one huge message.
    SnapshotChunk {
        /// Slot of the snapshot.
        slot: Slot,
        /// The view history as of `slot`.
        views: ViewHistory,
        /// Size of the whole snapshot's data.
        total_bytes: u64,
        /// Digest of the whole snapshot's data, checked before installing.
        digest: u64,
        /// Where this chunk starts.
        offset: u64,
        /// Where the stream this chunk belongs to ends: the receiver asks for
        /// more once it has everything up to here.
        stream_end: u64,
        /// The chunk.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// Every slot up to here is decided at the sender.
        commit: Slot,
    },
    /// Asks for the snapshot chunk at `offset` of the snapshot at `slot`.
    SnapshotRequest {
        /// Slot of the snapshot being received.
        slot: Slot,
        /// Bytes received so far.
        offset: u64,
    },
}

impl Message {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PreVote { .. } => "pre_vote",
            Message::PreVoteReply { .. } => "pre_vote_reply",
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatAck { .. } => "heartbeat_ack",
            Message::CatchupRequest { .. } => "catchup_request",
            Message::CatchupReply { .. } => "catchup_reply",
            Message::SnapshotChunk { .. } => "snapshot_chunk",
            Message::SnapshotRequest { .. } => "snapshot_request",
        }
    }

    /// Approximate encoded size in bytes: what a transport budgets for it.
    /// Log entries count by [`Entry::size_bytes`], plus a fixed overhead per
    /// entry and per message.
    pub fn size_bytes(&self) -> usize {
        const MESSAGE: usize = 64;
        const PER_ENTRY: usize = 32;
        let entries = |entries: &[(Slot, Entry)]| -> usize {
            entries
                .iter()
                .map(|(_, e)| e.size_bytes() + PER_ENTRY)
                .sum()
        };
        let views = |views: &ViewHistory| -> usize {
            views
                .views()
                .iter()
                .flat_map(|v| v.members.values())
                .map(|addr| addr.len() + PER_ENTRY)
                .sum()
        };
        MESSAGE
            + match self {
                Message::Accept { entries: e, .. } => entries(e),
                Message::CatchupReply {
                    entries: e,
                    views: v,
                    ..
                } => entries(e) + v.as_ref().map_or(0, views),
                Message::Promise { accepted, .. } => accepted
                    .iter()
                    .map(|a| a.entry.size_bytes() + PER_ENTRY)
                    .sum(),
                Message::Accepted { slots, .. } => slots.len() * 9,
                Message::SnapshotChunk { data, views: v, .. } => data.len() + views(v),
                Message::PreVote { .. }
                | Message::PreVoteReply { .. }
                | Message::Prepare { .. }
                | Message::Heartbeat { .. }
                | Message::HeartbeatAck { .. }
                | Message::CatchupRequest { .. }
                | Message::SnapshotRequest { .. } => 0,
            }
    }

    /// Checks what decoding cannot: every slot, commit point and ballot round
    /// within [`NUMBER_MAX`], slots of values from 1 on, snapshot chunks inside
    /// their snapshot. [`Node::step`](crate::Node::step) drops a message that
    /// fails and reports it in [`Ready::peer_faults`](crate::Ready::peer_faults).
    pub fn check(&self) -> Result<(), &'static str> {
        let number = |n: u64, what: &'static str| if n > NUMBER_MAX { Err(what) } else { Ok(()) };
        let ballot = |b: &Ballot| number(b.round, "a ballot round is out of range");
        let slot = |s: Slot| {
            if s == 0 {
                Err("slot 0 holds no value")
            } else {
                number(s, "a slot is out of range")
            }
        };
        let entry = |e: &Entry| match e {
            Entry::Reconfig(Reconfig::Add(m)) if m.id == NodeId(0) => {
                Err("node id 0 cannot be added")
            }
            _ => Ok(()),
        };
        let commit = |c: Slot| number(c, "a commit point is out of range");
        match self {
            Message::PreVote { ballot: b, decided } => {
                ballot(b)?;
                commit(*decided)
            }
            Message::PreVoteReply {
                ballot: b,
                promised,
                decided,
                ..
            } => {
                ballot(b)?;
                ballot(promised)?;
                commit(*decided)
            }
            Message::Prepare { ballot: b } => ballot(b),
            Message::Promise {
                ballot: b,
                decided,
                accepted,
                first,
                last,
                ..
            } => {
                ballot(b)?;
                commit(*decided)?;
                slot(*first)?;
                slot(*last)?;
                if first > last {
                    return Err("a promise part covers no slots");
                }
                for a in accepted {
                    slot(a.slot)?;
                    ballot(&a.ballot)?;
                    entry(&a.entry)?;
                    if a.slot < *first || a.slot > *last {
                        return Err("a promise part reports a slot outside the slots it covers");
                    }
                }
                Ok(())
            }
            Message::Accept {
                ballot: b,
                entries,
                commit: c,
            } => {
                ballot(b)?;
                commit(*c)?;
                for (s, e) in entries {
                    slot(*s)?;
                    entry(e)?;
                }
                Ok(())
            }
            Message::Accepted {
                ballot: b,
                slots,
                decided,
                ..
            } => {
                ballot(b)?;
                commit(*decided)?;
                slots.iter().try_for_each(|s| slot(*s))
            }
            Message::Heartbeat {
                ballot: b,
                commit: c,
                ..
            } => {
                ballot(b)?;
                commit(*c)
            }
            Message::HeartbeatAck {
                ballot: b, decided, ..
            } => {
                ballot(b)?;
                commit(*decided)
            }
            Message::CatchupRequest { from, .. } => slot(*from),
            Message::CatchupReply {
                entries, commit: c, ..
            } => {
                commit(*c)?;
                for (s, e) in entries {
                    slot(*s)?;
                    entry(e)?;
                }
                Ok(())
            }
            Message::SnapshotChunk {
                slot: s,
                total_bytes,
                offset,
                stream_end,
                data,
                commit: c,
                ..
            } => {
                slot(*s)?;
                commit(*c)?;
                number(*total_bytes, "a snapshot size is out of range")?;
                let end = offset.saturating_add(data.len() as u64);
                if end > *total_bytes || *stream_end > *total_bytes || *offset > *stream_end {
                    return Err("a snapshot chunk lies outside its snapshot");
                }
                Ok(())
            }
            Message::SnapshotRequest { slot: s, offset } => {
                slot(*s)?;
                number(*offset, "a snapshot offset is out of range")
            }
        }
    }
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination node.
    pub to: NodeId,
    /// The message.
    pub msg: Message,
}
