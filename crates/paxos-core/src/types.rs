//! Identifiers every role shares: node ids, slots and ballots.

use core::fmt;
use serde::{Deserialize, Serialize};

/// Identity of one incarnation of a node.
///
/// An id names a node *together with its durable state*. A node that lost its
/// persisted state (disk wiped, started without `-w`) must come back under a fresh
/// id and join through a view change: voting under the old id after forgetting its
/// promises could let two different values be chosen in one slot. Id `0` is
/// reserved and never names a node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The same as Display: one format for node ids in every log line.
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Position in the replicated log. Slots start at 1; slot 0 means "nothing yet".
pub type Slot = u64;

/// The largest slot, commit point or ballot round a node accepts from a peer.
///
/// At a million slots a second the log takes 146,000 years to get here, so no
/// honest peer ever sends more; a message that does is refused as malformed.
/// Everything the core adds to a slot or a round (the window, one) stays far
/// below `u64::MAX`, so no arithmetic on peer data can overflow.
pub const NUMBER_MAX: u64 = 1 << 62;

/// A Paxos ballot: a round number made unique by the id of the node that owns it.
///
/// Ordered by round first, then by leader, so two candidates that pick the same
/// round still get distinct, totally ordered ballots.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Ballot {
    /// Monotonic round number.
    pub round: u64,
    /// The node that owns (leads) this ballot.
    pub leader: NodeId,
}

impl Ballot {
    /// The ballot no node owns; every real ballot is greater.
    pub const ZERO: Ballot = Ballot {
        round: 0,
        leader: NodeId(0),
    };

    /// The smallest ballot owned by `leader` that is greater than `self`.
    ///
    /// Rounds never come near the limit (peers' rounds above [`NUMBER_MAX`] are
    /// refused), but the addition saturates rather than wrap to round 0, which
    /// would make every later ballot lose to the ones already promised.
    pub fn next_for(self, leader: NodeId) -> Ballot {
        Ballot {
            round: self.round.saturating_add(1),
            leader,
        }
    }
}

impl fmt::Debug for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{:?}", self.round, self.leader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_order_by_round_then_leader() {
        let a = Ballot {
            round: 1,
            leader: NodeId(9),
        };
        let b = Ballot {
            round: 2,
            leader: NodeId(1),
        };
        let c = Ballot {
            round: 2,
            leader: NodeId(3),
        };
        assert!(Ballot::ZERO < a && a < b && b < c);
    }

    #[test]
    fn next_ballot_is_strictly_greater_for_any_leader() {
        let b = Ballot {
            round: 7,
            leader: NodeId(100),
        };
        assert!(b.next_for(NodeId(1)) > b);
        assert_eq!(b.next_for(NodeId(1)).leader, NodeId(1));
    }

    #[test]
    fn the_next_ballot_after_the_largest_round_does_not_wrap_to_zero() {
        let top = Ballot {
            round: u64::MAX,
            leader: NodeId(1),
        };
        assert_eq!(top.next_for(NodeId(2)).round, u64::MAX);
        assert!(top.next_for(NodeId(2)) > top);
    }
}
