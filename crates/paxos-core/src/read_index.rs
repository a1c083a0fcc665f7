//! Linearizable reads without a log write.
//!
//! A read asked at the leader is granted once (1) a quorum of every view in
//! the window has acknowledged a heartbeat round that started after the read
//! arrived — so no higher ballot had taken over at that moment — and (2) the
//! caller has executed every slot up to the *read index*, fixed when the round
//! completes: the highest of the slots this leader proposed or recovered, the
//! decided prefix any promiser reported (a leader elected in an old view
//! learns from late promises that a new view decided further), and every
//! decided prefix heard since, including in the round's acknowledgements.
//! Every write that completed before the read is at or below it.
//!
//! The round's quorum speaks only for the views in the window when it
//! completed. If executing up to the index moves the window into a newer
//! view before the read is granted, that view may have completed writes the
//! index does not cover (a quorum of it may share no member with the round's
//! acknowledgers): the read then waits for a new round, with a new index.
//!
//! Rounds are batched: all reads asked between two `take_ready` calls, or while
//! a round is in flight, share one round, so a burst of reads costs one round
//! trip, not one each.

use crate::errors::ProposeError;
use crate::node::{Node, RoleState};
use crate::types::{NodeId, Slot};
use std::collections::BTreeSet;

struct Round {
    id: u64,
    acks: BTreeSet<NodeId>,
    reads: Vec<(u64, Slot)>,
    started: u64,
}

/// A read whose round completed.
struct Confirmed {
    id: u64,
    /// Granted once this slot is executed…
    index: Slot,
    /// …while no view newer than this epoch has entered the window.
    epoch: u64,
}

/// Reads at a leader, from arrival to grant.
#[derive(Default)]
pub(crate) struct ReadRounds {
    last_round: u64,
    waiting: Vec<(u64, Slot)>,
    in_flight: Option<Round>,
    confirmed: Vec<Confirmed>,
}

impl ReadRounds {
    fn pending(&self) -> usize {
        self.waiting.len()
            + self.confirmed.len()
            + self.in_flight.as_ref().map_or(0, |r| r.reads.len())
    }

    /// The id of the round in flight, or 0.
    pub(crate) fn current_round(&self) -> u64 {
        self.in_flight.as_ref().map_or(0, |r| r.id)
    }

    /// Counts an acknowledgement; returns whether it was for the round in flight.
    pub(crate) fn on_ack(&mut self, from: NodeId, round: u64) -> bool {
        match &mut self.in_flight {
            Some(r) if r.id == round && round != 0 => r.acks.insert(from),
            _ => false,
        }
    }

    pub(crate) fn round_started_before(&self, tick: u64) -> bool {
        self.in_flight.as_ref().is_some_and(|r| r.started < tick)
    }

    /// Every read not yet granted (leadership is being given up).
    pub(crate) fn drain_all(self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.waiting.into_iter().map(|(id, _)| id).collect();
        if let Some(r) = self.in_flight {
            ids.extend(r.reads.into_iter().map(|(id, _)| id));
        }
        ids.extend(self.confirmed.into_iter().map(|c| c.id));
        ids
    }
}

impl Node {
    fn read_without_quorum(&self) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.cfg.bug(crate::config::InjectedBug::ReadWithoutQuorum)
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            false
        }
    }

    /// Asks for a linearizable read identified by `id` (leader only). When
    /// `id` shows up in [`Ready::reads`](crate::Ready::reads), the caller may
    /// answer the read from its local state machine.
    pub fn read_index(&mut self, id: u64) -> Result<(), ProposeError> {
        let skip_quorum = self.read_without_quorum();
        let epoch = self.window_epoch();
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(self.not_leader());
        };
        if leader.reads.pending() >= self.cfg.max_pending_reads {
            return Err(ProposeError::Busy);
        }
        if skip_quorum {
            // The classic mistake: answer from whatever is executed, unconfirmed.
            leader.reads.confirmed.push(Confirmed {
                id,
                index: self.log.prefix(),
                epoch,
            });
            self.release_reads();
            return Ok(());
        }
        // The index is fixed when the confirmation round completes.
        leader.reads.waiting.push((id, 0));
        Ok(())
    }

    /// Starts a confirmation round for the reads queued since the last one,
    /// unless a round is in flight (they then share the next). Called from
    /// `take_ready`, so every read asked between two calls shares one round.
    pub(crate) fn flush_reads(&mut self) {
        if let RoleState::Leader(leader) = &self.role
            && leader.reads.in_flight.is_none()
            && !leader.reads.waiting.is_empty()
            && self.established()
        {
            self.start_read_round();
        }
    }

    /// Whether this leader knows every decision a read could need: it has
    /// learned every slot its promisers reported decided, and the promises
    /// it holds cover a quorum of every view governing its window. A leader
    /// elected in an old view is not established until it has caught up and
    /// completed the new view's quorum with late promises: before that, a new
    /// view may have decided slots it knows nothing of.
    pub(crate) fn established(&self) -> bool {
        let RoleState::Leader(leader) = &self.role else {
            return false;
        };
        self.log.prefix() >= leader.floor && self.window_quorum(&leader.promised_by)
    }

    fn start_read_round(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        leader.reads.last_round += 1;
        let id = leader.reads.last_round;
        let reads = std::mem::take(&mut leader.reads.waiting);
        leader.reads.in_flight = Some(Round {
            id,
            acks: BTreeSet::from([self.cfg.id]),
            reads,
            started: self.now,
        });
        self.send_heartbeats(id);
        self.try_complete_read_round();
    }

    /// Re-sends a round that got no quorum in time (lost messages), under a
    /// new id so stale acknowledgements do not count.
    pub(crate) fn restart_read_round(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(round) = leader.reads.in_flight.as_mut() else {
            return;
        };
        leader.reads.last_round += 1;
        round.id = leader.reads.last_round;
        round.acks = BTreeSet::from([self.cfg.id]);
        round.started = self.now;
        let id = round.id;
        self.send_heartbeats(id);
        self.try_complete_read_round();
    }

    pub(crate) fn try_complete_read_round(&mut self) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let Some(round) = &leader.reads.in_flight else {
            return;
        };
        if !self.window_quorum(&round.acks) {
            return;
        }
        let known_commit = self.known_commit;
        let epoch = self.window_epoch();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let index = (leader.next_slot - 1)
            .max(leader.recover_end)
            .max(leader.floor)
            .max(known_commit);
        if let Some(round) = leader.reads.in_flight.take() {
            let reads = round
                .reads
                .into_iter()
                .map(|(id, _)| Confirmed { id, index, epoch });
            leader.reads.confirmed.extend(reads);
        }
        let more = !leader.reads.waiting.is_empty();
        self.release_reads();
        if more {
            self.start_read_round();
        }
    }

    /// The epoch of the newest view governing a slot of the window.
    fn window_epoch(&self) -> u64 {
        self.views
            .as_ref()
            .map_or(0, |v| v.at(self.log.prefix() + self.cfg.window).epoch)
    }

    /// Grants confirmed reads whose index has been executed, while this
    /// leader is established; if it is not (its window moved into a view its
    /// promises do not cover yet, or a late promise raised its floor), the
    /// reads wait for a new round once it is. A read whose round did not
    /// speak for a view now in the window waits for a new round too.
    pub(crate) fn release_reads(&mut self) {
        let prefix = self.log.prefix();
        let established = self.established();
        let epoch = self.window_epoch();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if !established {
            let confirmed = std::mem::take(&mut leader.reads.confirmed);
            leader
                .reads
                .waiting
                .extend(confirmed.into_iter().map(|c| (c.id, 0)));
            return;
        }
        let ready = &mut self.ready.reads;
        let mut stale = Vec::new();
        leader.reads.confirmed.retain(|c| {
            if c.epoch < epoch {
                stale.push((c.id, 0));
                false
            } else if c.index <= prefix {
                ready.push(c.id);
                false
            } else {
                true
            }
        });
        leader.reads.waiting.extend(stale);
    }
}
