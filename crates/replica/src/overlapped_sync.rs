//! A leader's `Accept`s leave before its own sync of the turn, so its disk
//! write overlaps the round trip to its followers (the Raft thesis, §10.2.1,
//! makes the same argument for a Raft leader's log).
//!
//! Why it is safe. An `Accept` asks followers to vote; it is not the
//! leader's vote. The leader counts its own acceptance only when a
//! follower's `Accepted` completes a quorum, and the driver hands the core
//! an `Accepted` only once the turns that staged the leader's acceptances
//! of its slots are synced (`sync_pipeline`). A leader that dies before the sync never counted its
//! vote, and comes back as a follower whose next ballot is above the
//! durable promise it campaigned with, so it never proposes another value
//! under the ballot its lost `Accept`s carried. Its promise for that ballot
//! was synced in the turn that sent its `Prepare`, which never leaves early.
//!
//! What an early `Accept` must not say. Its `commit` announces a decided
//! floor, and decisions may be held back from the disk until a later sync
//! (see `storage::announced_floor`): an early `Accept` announces at most the
//! decisions already synced. Followers learn the rest from the next message.
//! Everything else — promises, votes, heartbeats, catch-up — leaves after
//! the sync, as before.
//!
//! Decisions are applied before the sync too. A decided slot rests on a
//! quorum of acceptances already on disk: a follower votes only after its
//! sync, and this replica's own acceptance of a slot decided in a later
//! turn was on disk before a vote for it was counted. So the turn's
//! decisions are executed and their callers answered while the disk works,
//! and a reply no longer waits for a sync that writes other, newer
//! commands. The one exception is a slot this replica accepted in this very
//! turn and that its acceptance alone decided (a view of one member): its
//! reply waits.

use crate::storage::{DurableStore, StorageBug, injected};
use paxos_core::message::Accept;
use paxos_core::{Message, Outgoing, Persist, Ready, Slot};

/// Whether `ready`'s decisions may be applied (executed, answered) before
/// its `persist` is written: none of them was accepted by this replica in
/// this turn, and no peer snapshot is installed (applied after the write,
/// as before).
pub fn may_apply_before_sync(ready: &Ready) -> bool {
    if injected(StorageBug::ApplyBeforeOwnVoteSynced) {
        return true;
    }
    if ready.restore.is_some() || (ready.committed.is_empty() && ready.reads.is_empty()) {
        return false;
    }
    if own_vote_decided(ready) {
        return false;
    }
    // `committed` is in slot order (the `Ready` contract): a binary search
    // per slot accepted this turn, and no allocation on the hot path.
    !ready.persist.accepted.iter().any(|a| {
        ready
            .committed
            .binary_search_by_key(&a.slot, |(slot, _)| *slot)
            .is_ok()
    })
}

/// Whether this replica's acceptance in this turn decided a slot (a view
/// of one member), whether or not the slot is applied in this turn: its
/// sync comes first, as a later turn may apply it once a gap below is
/// filled (found by review: a view shrinking to the leader alone).
pub fn own_vote_decided(ready: &Ready) -> bool {
    let p = &ready.persist;
    if p.accepted.is_empty() || p.decided.is_empty() {
        return false;
    }
    let mut decided: Vec<Slot> = p.decided.iter().map(|(slot, _)| *slot).collect();
    decided.sort_unstable();
    p.accepted
        .iter()
        .any(|a| decided.binary_search(&a.slot).is_ok())
}

/// Splits a turn's messages into the leader's `Accept`s, which may leave
/// before `store` writes `persist`, and the rest, which leave after. A turn
/// that writes a snapshot sends nothing early: the snapshot may hold
/// decisions the log never recorded on their own (a compaction folds the
/// turn's new decisions into it), so no floor is known to be on disk.
pub fn split_before_sync(
    messages: Vec<Outgoing>,
    store: &DurableStore,
    persist: &Persist,
) -> (Vec<Outgoing>, Vec<Outgoing>) {
    if persist.snapshot.is_some() {
        return (Vec::new(), messages);
    }
    split_with_cap(messages, store.synced_decided_floor(persist))
}

/// The split, given the highest decided floor already on disk
/// (`synced_decided`; `None`: every decision is): early `Accept`s announce
/// no more than that.
fn split_with_cap(
    messages: Vec<Outgoing>,
    synced_decided: Option<Slot>,
) -> (Vec<Outgoing>, Vec<Outgoing>) {
    let mut early = Vec::new();
    let mut late = Vec::new();
    for mut out in messages {
        match &mut out.msg {
            Message::Accept(Accept { commit, .. }) => {
                if let Some(cap) = synced_decided
                    && !injected(StorageBug::EarlyAcceptsAnnounceUnsynced)
                {
                    *commit = (*commit).min(cap);
                }
                early.push(out);
            }
            Message::Promise(_) | Message::Accepted(_) if injected(StorageBug::EarlyVotes) => {
                early.push(out);
            }
            _ => late.push(out),
        }
    }
    (early, late)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paxos_core::message::AcceptedEntry;
    use paxos_core::message::{Heartbeat, Prepare};
    use paxos_core::{Ballot, Entry, NodeId};

    fn out(msg: Message) -> Outgoing {
        Outgoing { to: NodeId(2), msg }
    }

    #[test]
    fn decisions_wait_for_the_sync_only_when_this_turn_accepted_one_of_them() {
        let ballot = Ballot {
            round: 1,
            leader: NodeId(1),
        };
        let ready = |accepted: &[Slot], committed: &[Slot]| Ready {
            persist: Persist {
                accepted: accepted
                    .iter()
                    .map(|&slot| AcceptedEntry {
                        slot,
                        ballot,
                        entry: Entry::Noop,
                    })
                    .collect(),
                ..Persist::default()
            },
            committed: committed.iter().map(|&s| (s, Entry::Noop)).collect(),
            ..Ready::default()
        };
        assert!(may_apply_before_sync(&ready(&[], &[5, 6, 7])));
        assert!(may_apply_before_sync(&ready(&[8, 9], &[5, 6, 7])));
        assert!(!may_apply_before_sync(&ready(&[9, 7], &[5, 6, 7])));
        assert!(!may_apply_before_sync(&ready(&[5], &[5, 6, 7])));
        assert!(
            !may_apply_before_sync(&ready(&[8], &[])),
            "nothing to apply early"
        );
        let mut restoring = ready(&[], &[5]);
        restoring.restore = Some(paxos_core::Snapshot {
            slot: 4,
            views: paxos_core::ViewHistory::genesis(&[paxos_core::Member {
                id: NodeId(1),
                addr: "127.0.0.1:1".into(),
            }]),
            data: Vec::new(),
        });
        assert!(
            !may_apply_before_sync(&restoring),
            "a snapshot is installed after the sync"
        );
    }

    #[test]
    fn only_accepts_leave_early_and_they_announce_only_synced_decisions() {
        let ballot = Ballot {
            round: 3,
            leader: NodeId(1),
        };
        let messages = vec![
            out(Message::Accept(Accept {
                ballot,
                entries: vec![(11, Entry::Noop)],
                commit: 10,
            })),
            out(Message::Heartbeat(Heartbeat {
                ballot,
                commit: 10,
                round: 0,
            })),
            out(Message::Prepare(Prepare { ballot })),
        ];
        let (early, late) = split_with_cap(messages, Some(8));
        assert_eq!(early.len(), 1);
        assert!(matches!(
            &early[0].msg,
            Message::Accept(Accept { commit: 8, .. })
        ));
        assert_eq!(late.len(), 2, "votes and heartbeats wait for the sync");
        assert!(matches!(
            &late[0].msg,
            Message::Heartbeat(Heartbeat { commit: 10, .. })
        ));
    }
}
