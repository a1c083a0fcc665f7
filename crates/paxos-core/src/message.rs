//! Messages nodes exchange. The caller's transport carries them and tells the
//! receiving node who sent each one (`Node::step(from, msg)`).
//!
//! Each variant of [`Message`] wraps a struct of its own, so a handler takes
//! the message it handles as one value (`on_promise(from, Promise)`), and
//! [`Node::step`](crate::Node::step) only checks and dispatches. On the wire a
//! variant that wraps a struct encodes exactly as the struct variant it
//! replaced (a one-entry map from the variant's name to the fields); a unit
//! test below holds the bytes to that.

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
    /// See [`PreVote`].
    PreVote(PreVote),
    /// See [`PreVoteReply`].
    PreVoteReply(PreVoteReply),
    /// See [`Prepare`].
    Prepare(Prepare),
    /// See [`Promise`].
    Promise(Promise),
    /// See [`Accept`].
    Accept(Accept),
    /// See [`Accepted`].
    Accepted(Accepted),
    /// See [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// See [`HeartbeatAck`].
    HeartbeatAck(HeartbeatAck),
    /// See [`CatchupRequest`].
    CatchupRequest(CatchupRequest),
    /// See [`CatchupReply`].
    CatchupReply(CatchupReply),
    /// See [`SnapshotChunk`].
    SnapshotChunk(SnapshotChunk),
    /// See [`SnapshotRequest`].
    SnapshotRequest(SnapshotRequest),
}

/// Pre-vote: "would you promise `ballot` if I asked?" Nobody changes state,
/// so a node cut off from the cluster cannot inflate ballots and depose a
/// healthy leader when it comes back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVote {
    /// The ballot the would-be candidate would use.
    pub ballot: Ballot,
    /// Every slot up to here is decided at the sender.
    pub decided: Slot,
}

/// The answer to [`PreVote`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreVoteReply {
    /// Echo of the asked ballot.
    pub ballot: Ballot,
    /// Whether a `Prepare` with that ballot would be granted now.
    pub ok: bool,
    /// The ballot the sender is promised to: a refused candidate tries
    /// again above it.
    pub promised: Ballot,
    /// Every slot up to here is decided at the sender.
    pub decided: Slot,
}

/// Phase 1a: a candidate asks for a promise for every slot not yet decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepare {
    /// The candidate's ballot.
    pub ballot: Ballot,
}

/// Phase 1b: the answer to [`Prepare`], or one part of it. An acceptor that
/// accepted more than `max_message_bytes` of values above its decided prefix
/// reports them in several parts, each covering the slots `first..=last`;
/// together they cover every slot after `decided`, and the promise counts
/// only once they all arrived (see `promise_parts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// The ballot the acceptor is promised to after handling the request.
    pub ballot: Ballot,
    /// Whether the promise was given (`ballot` is then the requested one).
    pub ok: bool,
    /// Every slot up to here is decided at the acceptor.
    pub decided: Slot,
    /// What the acceptor accepted in slots `first..=last`.
    pub accepted: Vec<AcceptedEntry>,
    /// The first slot this part reports on.
    pub first: Slot,
    /// The last slot this part reports on ([`NUMBER_MAX`] for the last
    /// part: every slot from `first` on).
    pub last: Slot,
}

/// Phase 2a: the leader asks acceptors to accept values (many slots at once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// The leader's ballot.
    pub ballot: Ballot,
    /// Slots and their values.
    pub entries: Vec<(Slot, Entry)>,
    /// Every slot up to here is decided.
    pub commit: Slot,
}

/// Phase 2b: the answer to [`Accept`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The acceptor's promised ballot after handling the request.
    pub ballot: Ballot,
    /// Whether the values were accepted.
    pub ok: bool,
    /// The slots accepted.
    pub slots: Vec<Slot>,
    /// Every slot up to here is decided at the acceptor.
    pub decided: Slot,
}

/// Leader liveness, commit point, and (when `round > 0`) a read-index
/// confirmation round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The leader's ballot.
    pub ballot: Ballot,
    /// Every slot up to here is decided.
    pub commit: Slot,
    /// Read-confirmation round, 0 if none.
    pub round: u64,
}

/// The answer to [`Heartbeat`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The acceptor's promised ballot.
    pub ballot: Ballot,
    /// Whether the acceptor still follows the heartbeat's ballot.
    pub ok: bool,
    /// Echo of the heartbeat's round.
    pub round: u64,
    /// Every slot up to here is decided at the acceptor.
    pub decided: Slot,
}

/// A lagging node asks for decided entries from `from` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchupRequest {
    /// First slot wanted.
    pub from: Slot,
    /// The requester knows no view yet (a new node) and needs the history.
    pub need_views: bool,
}

/// Decided entries, contiguous from the requested slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchupReply {
    /// Slots and decided values.
    pub entries: Vec<(Slot, Entry)>,
    /// The view history as of the slot before the first entry, if asked for.
    pub views: Option<ViewHistory>,
    /// Every slot up to here is decided at the sender.
    pub commit: Slot,
}

/// The requested entries were compacted away: one chunk of a snapshot
/// instead. Snapshots travel in bounded chunks, each asked for with
/// [`SnapshotRequest`], so a large state never needs one huge message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// Slot of the snapshot.
    pub slot: Slot,
    /// The view history as of `slot`.
    pub views: ViewHistory,
    /// Size of the whole snapshot's data.
    pub total_bytes: u64,
    /// Digest of the whole snapshot's data, checked before installing.
    pub digest: u64,
    /// Where this chunk starts.
    pub offset: u64,
    /// Where the stream this chunk belongs to ends: the receiver asks for
    /// more once it has everything up to here.
    pub stream_end: u64,
    /// The chunk.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Every slot up to here is decided at the sender.
    pub commit: Slot,
}

/// Asks for the snapshot chunk at `offset` of the snapshot at `slot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    /// Slot of the snapshot being received.
    pub slot: Slot,
    /// Bytes received so far.
    pub offset: u64,
}

/// `From<Struct> for Message` for every variant, so a sender writes
/// `Prepare { ballot }.into()`.
macro_rules! wrap_in_message {
    ($($variant:ident),* $(,)?) => {
        $(
            impl From<$variant> for Message {
                fn from(msg: $variant) -> Message {
                    Message::$variant(msg)
                }
            }
        )*
    };
}

wrap_in_message!(
    PreVote,
    PreVoteReply,
    Prepare,
    Promise,
    Accept,
    Accepted,
    Heartbeat,
    HeartbeatAck,
    CatchupRequest,
    CatchupReply,
    SnapshotChunk,
    SnapshotRequest,
);

impl Message {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PreVote(_) => "pre_vote",
            Message::PreVoteReply(_) => "pre_vote_reply",
            Message::Prepare(_) => "prepare",
            Message::Promise(_) => "promise",
            Message::Accept(_) => "accept",
            Message::Accepted(_) => "accepted",
            Message::Heartbeat(_) => "heartbeat",
            Message::HeartbeatAck(_) => "heartbeat_ack",
            Message::CatchupRequest(_) => "catchup_request",
            Message::CatchupReply(_) => "catchup_reply",
            Message::SnapshotChunk(_) => "snapshot_chunk",
            Message::SnapshotRequest(_) => "snapshot_request",
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
                Message::Accept(m) => entries(&m.entries),
                Message::CatchupReply(m) => entries(&m.entries) + m.views.as_ref().map_or(0, views),
                Message::Promise(m) => m
                    .accepted
                    .iter()
                    .map(|a| a.entry.size_bytes() + PER_ENTRY)
                    .sum(),
                Message::Accepted(m) => m.slots.len() * 9,
                Message::SnapshotChunk(m) => m.data.len() + views(&m.views),
                Message::PreVote(_)
                | Message::PreVoteReply(_)
                | Message::Prepare(_)
                | Message::Heartbeat(_)
                | Message::HeartbeatAck(_)
                | Message::CatchupRequest(_)
                | Message::SnapshotRequest(_) => 0,
            }
    }

    /// Checks what decoding cannot: every slot, commit point and ballot round
    /// within [`NUMBER_MAX`], slots of values from 1 on, snapshot chunks inside
    /// their snapshot. [`Node::step`](crate::Node::step) drops a message that
    /// fails and reports it in [`Ready::peer_faults`](crate::Ready::peer_faults).
    pub fn check(&self) -> Result<(), &'static str> {
        match self {
            Message::PreVote(m) => {
                check_ballot(&m.ballot)?;
                check_commit(m.decided)
            }
            Message::PreVoteReply(m) => {
                check_ballot(&m.ballot)?;
                check_ballot(&m.promised)?;
                check_commit(m.decided)
            }
            Message::Prepare(m) => check_ballot(&m.ballot),
            Message::Promise(m) => {
                check_ballot(&m.ballot)?;
                check_commit(m.decided)?;
                check_slot(m.first)?;
                check_slot(m.last)?;
                if m.first > m.last {
                    return Err("a promise part covers no slots");
                }
                for a in &m.accepted {
                    check_slot(a.slot)?;
                    check_ballot(&a.ballot)?;
                    check_entry(&a.entry)?;
                    if a.slot < m.first || a.slot > m.last {
                        return Err("a promise part reports a slot outside the slots it covers");
                    }
                }
                Ok(())
            }
            Message::Accept(m) => {
                check_ballot(&m.ballot)?;
                check_commit(m.commit)?;
                check_entries(&m.entries)
            }
            Message::Accepted(m) => {
                check_ballot(&m.ballot)?;
                check_commit(m.decided)?;
                m.slots.iter().try_for_each(|s| check_slot(*s))
            }
            Message::Heartbeat(m) => {
                check_ballot(&m.ballot)?;
                check_commit(m.commit)
            }
            Message::HeartbeatAck(m) => {
                check_ballot(&m.ballot)?;
                check_commit(m.decided)
            }
            Message::CatchupRequest(m) => check_slot(m.from),
            Message::CatchupReply(m) => {
                check_commit(m.commit)?;
                check_entries(&m.entries)
            }
            Message::SnapshotChunk(m) => {
                check_slot(m.slot)?;
                check_commit(m.commit)?;
                check_number(m.total_bytes, "a snapshot size is out of range")?;
                let end = m.offset.saturating_add(m.data.len() as u64);
                if end > m.total_bytes || m.stream_end > m.total_bytes || m.offset > m.stream_end {
                    return Err("a snapshot chunk lies outside its snapshot");
                }
                Ok(())
            }
            Message::SnapshotRequest(m) => {
                check_slot(m.slot)?;
                check_number(m.offset, "a snapshot offset is out of range")
            }
        }
    }
}

fn check_number(n: u64, what: &'static str) -> Result<(), &'static str> {
    if n > NUMBER_MAX { Err(what) } else { Ok(()) }
}

fn check_ballot(ballot: &Ballot) -> Result<(), &'static str> {
    check_number(ballot.round, "a ballot round is out of range")
}

fn check_commit(commit: Slot) -> Result<(), &'static str> {
    check_number(commit, "a commit point is out of range")
}

fn check_slot(slot: Slot) -> Result<(), &'static str> {
    if slot == 0 {
        return Err("slot 0 holds no value");
    }
    check_number(slot, "a slot is out of range")
}

fn check_entry(entry: &Entry) -> Result<(), &'static str> {
    match entry {
        Entry::Reconfig(Reconfig::Add(m)) if m.id == NodeId(0) => Err("node id 0 cannot be added"),
        _ => Ok(()),
    }
}

fn check_entries(entries: &[(Slot, Entry)]) -> Result<(), &'static str> {
    for (slot, entry) in entries {
        check_slot(*slot)?;
        check_entry(entry)?;
    }
    Ok(())
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination node.
    pub to: NodeId,
    /// The message.
    pub msg: Message,
}
