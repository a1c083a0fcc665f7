//! Catching up: a node whose decided prefix lags the commit point it heard
//! pulls decided entries (or a snapshot, if the peer compacted them away) from
//! a peer known to be ahead, in bounded chunks, one chunk in flight at a time.

use crate::entry::Entry;
use crate::message::Message;
use crate::node::{Node, RoleState};
use crate::snapshot::Snapshot;
use crate::types::{NodeId, Slot};
use crate::view::ViewHistory;

/// Bytes of decided entries sent in one catch-up reply at most.
const CATCHUP_BYTES_MAX: usize = 4 << 20;

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
        if let Some(target) = self.catchup_target() {
            self.request_catchup(target);
        }
    }

    fn request_catchup(&mut self, target: NodeId) {
        self.last_catchup_request = Some(self.now);
        let msg = Message::CatchupRequest {
            from: self.log.prefix() + 1,
            need_views: self.views.is_none(),
        };
        self.send(target, msg);
    }

    /// A random peer among those known to be ahead of us (so a dead one does not
    /// stall us forever), else the leader.
    fn catchup_target(&mut self) -> Option<NodeId> {
        let prefix = self.log.prefix();
        let ahead: Vec<NodeId> = self
            .peer_decided
            .iter()
            .filter(|(_, d)| **d > prefix)
            .map(|(id, _)| *id)
            .collect();
        if ahead.is_empty() {
            return self.leader_hint.filter(|l| *l != self.cfg.id);
        }
        let pick = (self.rng.next_u64() % ahead.len() as u64) as usize;
        ahead.get(pick).copied()
    }

    pub(crate) fn on_catchup_request(&mut self, from: NodeId, first: Slot, need_views: bool) {
        let Some(views) = &self.views else {
            return;
        };
        let commit = self.log.prefix();
        if let Some(snapshot) = &self.snapshot
            && first <= snapshot.slot
        {
            let msg = Message::InstallSnapshot {
                snapshot: snapshot.clone(),
                commit,
            };
            self.send(from, msg);
            return;
        }
        let entries =
            self.log
                .contiguous_from(first, self.cfg.catchup_entries_max, CATCHUP_BYTES_MAX);
        let views = need_views.then(|| views.as_of(first.saturating_sub(1), self.cfg.window));
        let msg = Message::CatchupReply {
            entries,
            views,
            commit,
        };
        self.send(from, msg);
    }

    pub(crate) fn on_catchup_reply(
        &mut self,
        from: NodeId,
        entries: Vec<(Slot, Entry)>,
        views: Option<ViewHistory>,
        commit: Slot,
    ) {
        self.note_peer_decided(from, commit);
        self.known_commit = self.known_commit.max(commit);
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
                self.decide(slot, entry);
            }
        }
        self.advance();
        if progressed && self.log.prefix() < self.known_commit {
            // Pipeline the next chunk instead of waiting for the retry timer.
            self.request_catchup(from);
        }
    }

    pub(crate) fn on_install_snapshot(&mut self, from: NodeId, snapshot: Snapshot, commit: Slot) {
        self.note_peer_decided(from, commit);
        self.known_commit = self.known_commit.max(commit).max(snapshot.slot);
        if snapshot.slot <= self.log.prefix() {
            return;
        }
        self.install_snapshot(snapshot);
        if self.log.prefix() < self.known_commit {
            self.request_catchup(from);
        }
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let slot = snapshot.slot;
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
