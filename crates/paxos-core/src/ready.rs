//! What the caller drains from a node after feeding it inputs.

use crate::entry::{Command, Entry};
use crate::errors::PeerFault;
use crate::message::{AcceptedEntry, Outgoing};
use crate::snapshot::Snapshot;
use crate::types::{Ballot, NodeId, Slot};
use crate::view::ViewHistory;

/// State that must be durable before any message of the same [`Ready`] is sent
/// and before its committed entries are executed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    /// The new promised ballot, if it changed.
    pub promised: Option<Ballot>,
    /// Newly accepted values.
    pub accepted: Vec<AcceptedEntry>,
    /// Newly decided values.
    pub decided: Vec<(Slot, Entry)>,
    /// A new snapshot; everything at or below its slot may be deleted.
    pub snapshot: Option<Snapshot>,
    /// A new base view history (set when a node first learns the views).
    pub views: Option<ViewHistory>,
}

impl Persist {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.promised.is_none()
            && self.accepted.is_empty()
            && self.decided.is_empty()
            && self.snapshot.is_none()
            && self.views.is_none()
    }
}

/// Everything a node produced since the last [`Node::take_ready`](crate::Node::take_ready).
///
/// Handle it in this order:
/// 1. write [`persist`](Self::persist) durably (fsync when durability is on);
/// 2. send [`messages`](Self::messages);
/// 3. if [`restore`](Self::restore) is set, replace the state machine with it;
/// 4. execute [`committed`](Self::committed) in order;
/// 5. answer [`reads`](Self::reads): the state machine now reflects every write
///    that completed before each read was requested.
///
/// Steps 3–5 may come before step 1 when no committed slot is among
/// `persist.accepted` (and nothing is restored): each such decision rests on
/// acceptances already durable — this node's were written in an earlier
/// turn, a peer's before it voted — so executing it and answering its caller
/// need not wait for this turn's write. A slot this node accepted in this
/// very turn (a view of one member decides at once) waits for the write.
///
/// The write may also run off the caller's loop while it goes on stepping
/// the node (ConCoord's replica does), provided each `Ready`'s messages wait
/// for its write and no peer's `Accepted` is stepped before every earlier
/// write is durable: a leader counts its own acceptance of a slot together
/// with its peers' votes for it.
#[derive(Debug, Default)]
pub struct Ready {
    /// State to make durable first.
    pub persist: Persist,
    /// Messages to send.
    pub messages: Vec<Outgoing>,
    /// A snapshot received from a peer, to install before `committed`.
    pub restore: Option<Snapshot>,
    /// Decided entries in slot order, each handed out exactly once.
    pub committed: Vec<(Slot, Entry)>,
    /// Ids of reads (from `read_index`) that may now be served locally.
    pub reads: Vec<u64>,
    /// Queued commands that were never assigned a slot because this node
    /// stopped leading; the caller should redirect their clients.
    pub dropped_commands: Vec<Command>,
    /// Reads that will never be granted here (leadership lost).
    pub dropped_reads: Vec<u64>,
    /// The in-memory log has grown past `log_entries_soft_max`: take a snapshot
    /// and pass it to `compact`.
    pub compaction_wanted: bool,
    /// Peers that sent something a correct peer never sends; what they sent
    /// was dropped. Log them, count them, and consider cutting them off.
    pub peer_faults: Vec<(NodeId, PeerFault)>,
}

impl Ready {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.messages.is_empty()
            && self.restore.is_none()
            && self.committed.is_empty()
            && self.reads.is_empty()
            && self.dropped_commands.is_empty()
            && self.dropped_reads.is_empty()
            && !self.compaction_wanted
            && self.peer_faults.is_empty()
    }
}
