//! Catching up: a node whose decided prefix lags the commit point it heard
//! pulls decided entries (or a snapshot, if the peer compacted them away) from
//! a peer known to be ahead, in bounded chunks, one chunk in flight at a time.
//! A snapshot travels in `snapshot_chunk_bytes` pieces; a lost chunk is asked
//! for again from where the transfer stopped, not from the start.

use crate::errors::PeerFault;
use crate::message::{CatchupReply, CatchupRequest, SnapshotChunk, SnapshotRequest};
use crate::node::{Node, RoleState};
use crate::snapshot::Snapshot;
use crate::types::{NodeId, Slot};
use crate::view::ViewHistory;

/// Chunks that arrived ahead of a gap, kept per transfer at most.
const EARLY_CHUNKS_MAX: usize = 64;

/// A snapshot arriving in chunks.
pub(crate) struct IncomingSnapshot {
    slot: Slot,
    views: ViewHistory,
    total: u64,
    digest: u64,
    data: Vec<u8>,
    /// Chunks that arrived before the one they follow, by offset.
    early: std::collections::BTreeMap<u64, Vec<u8>>,
    from: NodeId,
    /// Retries since the last progress.
    stalls: u32,
}

/// Retries without progress before a transfer is abandoned (its source may
/// be dead) and catch-up starts over with another peer.
const TRANSFER_STALLS_MAX: u32 = 3;

impl Node {
    /// Sends a catch-up request if we know we are behind and none was sent recently.
    pub(crate) fn maybe_request_catchup(&mut self) {
        let behind = self.known_commit > self.log.prefix();
        let lost = self.views.is_none() && self.leader_hint.is_some();
        if !(behind || lost) {
            return;
        }
        let retry = u64::from(self.cfg.catchup_retry_ticks);
        if self
            .last_catchup_request
            .is_some_and(|t| self.now < t + retry)
        {
            return;
        }
        if let Some(inc) = self.incoming_snapshot.as_mut() {
            inc.stalls += 1;
            if inc.stalls <= TRANSFER_STALLS_MAX {
                // A chunk got lost: resume the transfer where it stopped.
                let (to, slot, offset) = (inc.from, inc.slot, inc.data.len() as u64);
                self.last_catchup_request = Some(self.now);
                self.send(to, SnapshotRequest { slot, offset });
                return;
            }
            // The source stopped answering: start over with another peer.
            self.incoming_snapshot = None;
        }
        if let Some(target) = self.catchup_target() {
            self.request_catchup(target);
        }
    }

    fn request_catchup(&mut self, target: NodeId) {
        self.last_catchup_request = Some(self.now);
        self.catchup_unanswered = self.catchup_unanswered.saturating_add(1);
        let request = CatchupRequest {
            from: self.log.prefix() + 1,
            need_views: self.views.is_none(),
        };
        self.send(target, request);
    }

    /// A random peer among those known to be ahead of us (so a dead one does
    /// not stall us forever), else the leader. After two requests without an
    /// answer, any member of the views in our window: the peers we know to be
    /// ahead may all be gone for good (wiped, removed), and one that is ahead
    /// but never told us so must still be found.
    fn catchup_target(&mut self) -> Option<NodeId> {
        let prefix = self.log.prefix();
        let me = self.cfg.id;
        let ahead: Vec<NodeId> = if self.catchup_unanswered >= 2 {
            self.window_members()
                .into_iter()
                .filter(|m| *m != me)
                .collect()
        } else {
            self.peer_decided
                .iter()
                .filter(|(_, d)| **d > prefix)
                .map(|(id, _)| *id)
                .collect()
        };
        if ahead.is_empty() {
            return self.leader_hint.filter(|l| *l != me);
        }
        let pick = (self.rng.next_u64() % ahead.len() as u64) as usize;
        ahead.get(pick).copied()
    }

    pub(crate) fn on_catchup_request(&mut self, from: NodeId, request: CatchupRequest) {
        let CatchupRequest {
            from: first,
            need_views,
        } = request;
        let Some(views) = &self.views else {
            return;
        };
        let commit = self.log.prefix();
        if !self.log.holds_from(first) && self.snapshot.is_some() {
            self.send_snapshot_chunks(from, None, 0);
            return;
        }
        let entries = self.log.contiguous_from(
            first,
            self.cfg.catchup_entries_max,
            self.cfg.max_message_bytes,
        );
        let views = need_views.then(|| views.as_of(first.saturating_sub(1), self.cfg.window));
        let reply = CatchupReply {
            entries,
            views,
            commit,
        };
        self.send(from, reply);
    }

    pub(crate) fn on_catchup_reply(&mut self, from: NodeId, reply: CatchupReply) {
        let CatchupReply {
            entries,
            views,
            commit,
        } = reply;
        self.note_peer_decided(from, commit);
        self.known_commit = self.known_commit.max(commit);
        self.catchup_unanswered = 0;
        if self.views.is_none() {
            let Some(views) = views else {
                return;
            };
            self.ready.persist.views = Some(views.clone());
            self.views = Some(views);
        }
        let progressed = !entries.is_empty();
        for (slot, entry) in entries {
            if slot > self.log.prefix() {
                self.before_learning_as_leader(slot, &entry);
                self.decide(slot, entry, from);
            } else if self.log.get(slot).is_some_and(|held| *held != entry) {
                self.report(from, PeerFault::ConflictingDecision { slot });
            }
        }
        self.advance();
        if progressed && self.log.prefix() < self.known_commit {
            // Pipeline the next chunk instead of waiting for the retry timer.
            self.request_catchup(from);
        }
    }

    /// Streams up to `snapshot_chunks_per_request` chunks of the snapshot at
    /// `slot` (our current or previous one; `None`: the current one) from
    /// `offset` on. A snapshot we no longer hold restarts with the current one.
    fn send_snapshot_chunks(&mut self, to: NodeId, slot: Option<Slot>, offset: u64) {
        let held = [self.snapshot.as_ref(), self.previous_snapshot.as_ref()]
            .into_iter()
            .flatten()
            .find(|s| slot.is_none_or(|want| s.slot == want));
        let (snap, mut offset) = match (held, self.snapshot.as_ref()) {
            (Some(s), _) => (s, offset),
            (None, Some(current)) => (current, 0),
            (None, None) => return,
        };
        let total = snap.data.len() as u64;
        let digest = match self.served_digest {
            Some((slot, digest)) if slot == snap.slot => digest,
            _ => crate::snapshot::digest(&snap.data),
        };
        let chunk = self.cfg.snapshot_chunk_bytes as u64;
        let stream_end = offset
            .saturating_add(chunk * self.cfg.snapshot_chunks_per_request as u64)
            .min(total);
        let mut chunks = Vec::new();
        for _ in 0..self.cfg.snapshot_chunks_per_request {
            let start = offset.min(total) as usize;
            let end = (start + self.cfg.snapshot_chunk_bytes).min(total as usize);
            chunks.push(SnapshotChunk {
                slot: snap.slot,
                views: snap.views.clone(),
                total_bytes: total,
                digest,
                offset: start as u64,
                stream_end,
                data: snap.data[start..end].to_vec(),
                commit: self.log.prefix(),
            });
            offset = end as u64;
            if offset >= total {
                break;
            }
        }
        self.served_digest = Some((snap.slot, digest));
        for msg in chunks {
            self.send(to, msg);
        }
    }

    pub(crate) fn on_snapshot_request(&mut self, from: NodeId, request: SnapshotRequest) {
        self.send_snapshot_chunks(from, Some(request.slot), request.offset);
    }

    pub(crate) fn on_snapshot_chunk(&mut self, from: NodeId, chunk: SnapshotChunk) {
        let commit = chunk.commit;
        self.note_peer_decided(from, commit);
        self.catchup_unanswered = 0;
        let slot = chunk.slot;
        self.known_commit = self.known_commit.max(commit).max(slot);
        if slot <= self.log.prefix() {
            if self
                .incoming_snapshot
                .as_ref()
                .is_some_and(|i| i.slot <= slot)
            {
                self.incoming_snapshot = None;
            }
            return;
        }
        // One transfer at a time, from one source: chunks of the same slot
        // from another peer, or of another snapshot (size or digest), are not
        // spliced in. A stalled source is abandoned by the retry timer, and
        // the next transfer may come from anyone.
        let same_transfer = self.incoming_snapshot.as_ref().is_some_and(|i| {
            i.slot == slot
                && i.from == from
                && i.total == chunk.total_bytes
                && i.digest == chunk.digest
        });
        if same_transfer {
            let Some(inc) = self.incoming_snapshot.as_mut() else {
                return;
            };
            let have = inc.data.len() as u64;
            if chunk.offset == have {
                inc.data.extend_from_slice(&chunk.data);
                // Splice in chunks that had arrived early.
                while let Some(next) = inc.early.remove(&(inc.data.len() as u64)) {
                    inc.data.extend_from_slice(&next);
                }
                inc.stalls = 0;
            } else if chunk.offset > have && inc.early.len() < EARLY_CHUNKS_MAX {
                inc.early.insert(chunk.offset, chunk.data);
                return;
            } else {
                return; // a duplicate
            }
        } else if chunk.offset == 0
            && self
                .incoming_snapshot
                .as_ref()
                .is_none_or(|i| i.slot < slot)
        {
            self.incoming_snapshot = Some(IncomingSnapshot {
                slot,
                views: chunk.views,
                total: chunk.total_bytes,
                digest: chunk.digest,
                data: chunk.data,
                early: std::collections::BTreeMap::new(),
                from,
                stalls: 0,
            });
        } else {
            // A chunk of a transfer we are not doing (the retry timer asks
            // for the start of the current snapshot).
            return;
        }
        let Some(inc) = self.incoming_snapshot.as_ref() else {
            return;
        };
        let received = inc.data.len() as u64;
        if received < inc.total {
            if received >= chunk.stream_end {
                self.last_catchup_request = Some(self.now);
                let request = SnapshotRequest {
                    slot,
                    offset: received,
                };
                self.send(from, request);
            }
            return;
        }
        let Some(inc) = self.incoming_snapshot.take() else {
            return;
        };
        if received != inc.total || crate::snapshot::digest(&inc.data) != inc.digest {
            // Chunks that do not add up to the snapshot announced: start over
            // later, from any peer.
            self.report(
                from,
                PeerFault::Malformed("snapshot bytes do not match their digest"),
            );
            return;
        }
        self.install_snapshot(Snapshot {
            slot: inc.slot,
            views: inc.views,
            data: inc.data,
        });
        if self.log.prefix() < self.known_commit {
            self.request_catchup(from);
        }
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let slot = snapshot.slot;
        self.before_installing_as_leader(slot);
        self.counters.snapshots_installed += 1;
        self.log.reset_to(slot);
        self.acceptor.forget_through(slot);
        self.views = Some(snapshot.views.clone());
        self.ready.committed.retain(|(s, _)| *s > slot);
        self.ready.restore = Some(snapshot.clone());
        self.ready.persist.snapshot = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
        if let RoleState::Leader(leader) = &mut self.role {
            leader.inflight.retain(|s, _| *s > slot);
            leader.recovered.retain(|s, _| *s > slot);
            leader.next_slot = leader.next_slot.max(slot + 1);
        }
        self.advance();
    }
}
