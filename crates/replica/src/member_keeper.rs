//! Member upkeep, run by the driver after every turn (the replicated object
//! called `Membership` is unrelated):
//!
//! * **failure detection** (leader only): a member not heard from for
//!   `suspect_after` is logged as suspected; after `remove_after` the leader
//!   proposes removing it from the view (through the log, effective `window`
//!   slots later), as the original did. Silence counts from the later of the
//!   last message and the moment this leader started watching the member (it
//!   took the lead, or the member joined the view): a replica added to a
//!   long-standing leader's view, or added back after a removal, is not
//!   silent for as long as the leader has led, nor since its removal;
//! * **joining and rejoining**: a replica that is not (or no longer) in the
//!   view keeps asking any member to add it, following redirects, until the
//!   view includes it. A durable replica removed while it was down resumes
//!   its identity and is added back;
//! * **finding out it was removed**: a replica cut off while the leader
//!   removed it may never learn the decision (the members stop sending to
//!   it, and once a snapshot made them forget the views it was in, they drop
//!   what it sends). One that has heard from no leader for `PROBE_AFTER`
//!   (others cut off with it may still talk to it) asks the members for
//!   their view; a newer view without it counts as its removal, and it asks
//!   to be added again.

use crate::join::{JoinCredentials, join_instance, removed_since};
use concoord_transport::determinism::HashMap;
use paxos_core::{Member, Node, NodeId, Reconfig};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

/// How often the leader looks for silent members.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long a removal request stands before it is proposed again.
const REMOVAL_RETRY: Duration = Duration::from_secs(2);
/// Time without a leader after which a member asks the others whether it
/// is still in their view (well above an election's few hundred ms, so a
/// healthy instance never asks).
const PROBE_AFTER: Duration = Duration::from_secs(5);

/// Failure detection and (re)joining for one replica.
pub struct MemberKeeper {
    me: Member,
    bootstrap: Vec<String>,
    creds: JoinCredentials,
    detection: Option<(Duration, Duration)>,
    joined: Arc<AtomicBool>,
    join_task: Option<JoinHandle<()>>,
    was_member: bool,
    last_heard: HashMap<NodeId, Instant>,
    suspected: BTreeSet<NodeId>,
    removal_asked: HashMap<NodeId, Instant>,
    /// While leading: when each member of the view was first seen by this
    /// leadership; its silence counts from here at the earliest.
    watched_since: HashMap<NodeId, Instant>,
    last_check: Instant,
    /// The last `Accept` or `Heartbeat` from a leader (or turn as leader).
    last_leader_contact: Instant,
    /// When the members were last asked whether this replica is in their view.
    last_probe: Instant,
    probe_task: Option<JoinHandle<()>>,
    /// The epoch of a view, seen at a member, that leaves this replica out
    /// (0: none seen). Views up to it that include this replica are stale.
    removed_in_epoch: Arc<AtomicU64>,
}

impl MemberKeeper {
    /// Upkeep for replica `me`; starts asking to join if `joining`.
    pub fn new(
        me: Member,
        bootstrap: Vec<String>,
        creds: JoinCredentials,
        detection: Option<(Duration, Duration)>,
        joining: bool,
    ) -> MemberKeeper {
        let mut m = MemberKeeper {
            me,
            bootstrap,
            creds,
            detection,
            joined: Arc::new(AtomicBool::new(!joining)),
            join_task: None,
            was_member: false,
            last_heard: HashMap::default(),
            suspected: BTreeSet::new(),
            removal_asked: HashMap::default(),
            watched_since: HashMap::default(),
            last_check: Instant::now(),
            last_leader_contact: Instant::now(),
            last_probe: Instant::now(),
            probe_task: None,
            removed_in_epoch: Arc::new(AtomicU64::new(0)),
        };
        if joining {
            m.ask_to_join(Vec::new());
        }
        m
    }

    /// A message came from `node`; `from_a_leader` if it was a leader's
    /// (`Accept`, `Heartbeat`).
    pub fn heard_from(&mut self, node: NodeId, from_a_leader: bool) {
        let now = Instant::now();
        self.heard_from_at(node, now);
        if from_a_leader {
            self.last_leader_contact = now;
        }
    }

    fn heard_from_at(&mut self, node: NodeId, at: Instant) {
        self.last_heard.insert(node, at);
    }

    /// A view change naming `change`'s node was decided: whatever was
    /// heard from or asked about it before concerns its previous stint in
    /// the view (a removal and an addition can both fall between two
    /// checks), so a leader watches it afresh.
    pub fn membership_changed(&mut self, change: &Reconfig) {
        let id = match change {
            Reconfig::Add(m) => m.id,
            Reconfig::Remove(id) => *id,
        };
        self.watched_since.remove(&id);
        self.last_heard.remove(&id);
        self.removal_asked.remove(&id);
        self.suspected.remove(&id);
    }

    /// The bootstrap replicas, then `members`, without this replica.
    fn peers_to_ask(&self, members: Vec<String>) -> Vec<String> {
        let mut targets: Vec<String> = Vec::new();
        for addr in self.bootstrap.iter().cloned().chain(members) {
            if addr != self.me.addr && !targets.contains(&addr) {
                targets.push(addr);
            }
        }
        targets
    }

    fn ask_to_join(&mut self, members: Vec<String>) {
        let targets = self.peers_to_ask(members);
        if targets.is_empty() {
            warn!("not in the view and no replica to ask; restart with -b");
            return;
        }
        self.joined.store(false, Ordering::Relaxed);
        self.join_task = Some(concoord_transport::determinism::spawn(join_instance(
            targets,
            self.me.clone(),
            self.creds.clone(),
            self.joined.clone(),
        )));
    }

    /// Runs after every driver turn.
    pub fn after_turn(&mut self, node: &mut Node) {
        self.track_own_membership(node);
        let now = Instant::now();
        if node.is_leader() {
            self.last_leader_contact = now;
        } else {
            // A leadership that ends and starts again between two checks
            // is a new one: it watches every member afresh.
            self.watched_since.clear();
        }
        self.maybe_probe(node, now);
        if now.duration_since(self.last_check) >= CHECK_EVERY {
            self.last_check = now;
            self.detect_failures(node, now);
        }
    }

    fn track_own_membership(&mut self, node: &Node) {
        let Some(views) = node.views() else {
            return;
        };
        // The latest decided view, pending changes included: once a removal
        // takes effect the leader stops contacting the removed replica, so it
        // would never learn that the view in force excludes it. A view no
        // newer than one a member showed without us is stale.
        let in_view = self.in_view(node);
        if in_view {
            if !self.joined.swap(true, Ordering::Relaxed) {
                info!("this replica is a member of the view");
            }
            self.was_member = true;
            return;
        }
        // Not in the view, neither in force nor pending: removed while it was
        // away (or before its restart). Ask to be added again.
        let joining = self.join_task.as_ref().is_some_and(|t| !t.is_finished());
        if !joining {
            if self.was_member {
                warn!("this replica was removed from the view; asking to be added again");
            } else {
                warn!("this replica is not in the view; asking to be added");
            }
            self.was_member = false;
            let members = views.latest().members.values().cloned().collect();
            self.ask_to_join(members);
        }
    }

    /// Whether the latest view this node holds includes this replica and is
    /// newer than any view a member showed without it.
    fn in_view(&self, node: &Node) -> bool {
        let Some(views) = node.views() else {
            return false;
        };
        let latest = views.latest();
        let removed_in = self.removed_in_epoch.load(Ordering::Relaxed);
        latest.contains(self.me.id) && (removed_in == 0 || latest.epoch > removed_in)
    }

    /// A member that has heard from no leader for `PROBE_AFTER` asks the
    /// others whether they have a newer view without it.
    fn maybe_probe(&mut self, node: &Node, now: Instant) {
        let quiet = now.duration_since(self.last_leader_contact) >= PROBE_AFTER
            && now.duration_since(self.last_probe) >= PROBE_AFTER;
        let probing = self.probe_task.as_ref().is_some_and(|t| !t.is_finished());
        if !quiet || probing || !self.in_view(node) {
            return;
        }
        let Some(latest) = node.views().map(|v| v.latest()) else {
            return;
        };
        let targets = self.peers_to_ask(latest.members.values().cloned().collect());
        if targets.is_empty() {
            return;
        }
        self.last_probe = now;
        let (me, creds, epoch) = (self.me.clone(), self.creds.clone(), latest.epoch);
        let removed_in = self.removed_in_epoch.clone();
        self.probe_task = Some(concoord_transport::determinism::spawn(async move {
            if let Some(epoch) = removed_since(targets, me, creds, epoch).await {
                removed_in.fetch_max(epoch, Ordering::Relaxed);
            }
        }));
    }

    fn detect_failures(&mut self, node: &mut Node, now: Instant) {
        let Some((suspect_after, remove_after)) = self.detection else {
            return;
        };
        if !node.is_leader() {
            self.watched_since.clear();
            self.suspected.clear();
            return;
        }
        let mut members: BTreeSet<NodeId> = BTreeSet::new();
        if let Some(v) = node.view() {
            members.extend(v.members.keys());
        }
        if let Some(views) = node.views() {
            members.extend(views.latest().members.keys());
        }
        members.remove(&self.me.id);
        // A replica that left the view is watched afresh if it comes back:
        // what was heard from it before says nothing about it now.
        self.watched_since.retain(|id, _| members.contains(id));
        self.last_heard.retain(|id, _| members.contains(id));
        self.suspected.retain(|id| members.contains(id));
        for id in members {
            let since = *self.watched_since.entry(id).or_insert(now);
            let last = self.last_heard.get(&id).map_or(since, |t| (*t).max(since));
            let silent = now.duration_since(last);
            if silent < suspect_after {
                if self.suspected.remove(&id) {
                    info!(node = %id, "suspected replica is answering again");
                }
                continue;
            }
            if self.suspected.insert(id) {
                warn!(node = %id, silent_ms = silent.as_millis() as u64, "replica suspected: no message from it");
            }
            let asked_recently = self
                .removal_asked
                .get(&id)
                .is_some_and(|t| now.duration_since(*t) < REMOVAL_RETRY);
            if silent >= remove_after && !asked_recently {
                warn!(node = %id, silent_ms = silent.as_millis() as u64, "removing a silent replica from the view");
                self.removal_asked.insert(id, now);
                let _ = node.propose_reconfig(Reconfig::Remove(id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concoord_transport::InstanceSecret;
    use paxos_core::Config;

    const SUSPECT: Duration = Duration::from_secs(1);
    const REMOVE: Duration = Duration::from_secs(2);

    fn member(id: u64) -> Member {
        Member {
            id: NodeId(id),
            addr: format!("127.0.0.1:{}", 20_000 + id),
        }
    }

    /// A lone founder, leading.
    fn leader() -> Node {
        let mut node = Node::bootstrap(Config::new(NodeId(1)), &[member(1)]).expect("node");
        settle(&mut node);
        assert!(node.is_leader());
        node
    }

    /// Ticks a lone node until its proposals are decided.
    fn settle(node: &mut Node) {
        for _ in 0..20 {
            node.tick();
            let _ = node.take_ready();
        }
    }

    fn reconfigure(node: &mut Node, change: Reconfig) {
        node.propose_reconfig(change).expect("leading");
        settle(node);
    }

    fn in_latest_view(node: &Node, id: u64) -> bool {
        node.views()
            .is_some_and(|v| v.latest().contains(NodeId(id)))
    }

    fn keeper() -> MemberKeeper {
        let creds = JoinCredentials {
            token: None,
            secret: InstanceSecret::generate(),
            tls: None,
        };
        MemberKeeper::new(member(1), Vec::new(), creds, Some((SUSPECT, REMOVE)), false)
    }

    /// Property: a replica added to the view of a leader that has led for
    /// longer than `remove_after` is not removed as silent before it had
    /// `remove_after` to answer (its silence counts from its addition, not
    /// from the start of the leadership). It still is once it stays silent.
    #[test]
    fn a_member_added_to_a_long_standing_leaders_view_gets_the_full_grace() {
        let mut node = leader();
        let mut keeper = keeper();
        let t0 = Instant::now();
        keeper.detect_failures(&mut node, t0);
        reconfigure(&mut node, Reconfig::Add(member(2)));
        assert!(in_latest_view(&node, 2));

        keeper.detect_failures(&mut node, t0 + Duration::from_secs(60));
        assert!(
            !keeper.suspected.contains(&NodeId(2)),
            "suspected on arrival"
        );
        assert!(!keeper.removal_asked.contains_key(&NodeId(2)));

        keeper.detect_failures(&mut node, t0 + Duration::from_secs(63));
        assert!(keeper.suspected.contains(&NodeId(2)), "silent for 3 s");
        assert!(keeper.removal_asked.contains_key(&NodeId(2)));
    }

    /// Node 1 leading, node 2 a joiner answering it: ticks both and
    /// delivers every message until the proposals are decided.
    fn settle_pair(leader: &mut Node, joiner: &mut Node) {
        for _ in 0..200 {
            deliver(leader, joiner);
            deliver(joiner, leader);
        }
    }

    fn deliver(from: &mut Node, to: &mut Node) {
        from.tick();
        for out in from.take_ready().messages {
            if out.to == to.id() {
                to.step(from.id(), out.msg);
            }
        }
    }

    /// Node 1 leading with node 2 added and heard from 500 ms after `t0`;
    /// the keeper checked at `t0` and `t0` + 1 s.
    fn leader_with_a_member_heard_at(t0: Instant) -> (Node, Node, MemberKeeper) {
        let mut node = leader();
        let mut joiner = Node::join(Config::new(NodeId(2))).expect("joiner");
        let mut keeper = keeper();
        node.propose_reconfig(Reconfig::Add(member(2)))
            .expect("leading");
        settle_pair(&mut node, &mut joiner);
        keeper.detect_failures(&mut node, t0);
        keeper.heard_from_at(NodeId(2), t0 + Duration::from_millis(500));
        keeper.detect_failures(&mut node, t0 + Duration::from_secs(1));
        (node, joiner, keeper)
    }

    /// Property: a replica removed and added back is watched afresh: the
    /// last message heard from it before its removal does not make it
    /// silent the moment it is back.
    #[test]
    fn a_member_added_back_is_not_judged_by_what_was_heard_before_its_removal() {
        let t0 = Instant::now();
        let (mut node, mut joiner, mut keeper) = leader_with_a_member_heard_at(t0);
        assert!(!keeper.suspected.contains(&NodeId(2)));

        node.propose_reconfig(Reconfig::Remove(NodeId(2)))
            .expect("leading");
        settle_pair(&mut node, &mut joiner);
        assert!(!in_latest_view(&node, 2));
        keeper.detect_failures(&mut node, t0 + Duration::from_secs(20));
        node.propose_reconfig(Reconfig::Add(member(2)))
            .expect("leading");
        settle(&mut node);
        assert!(in_latest_view(&node, 2));

        keeper.detect_failures(&mut node, t0 + Duration::from_secs(40));
        assert!(!keeper.suspected.contains(&NodeId(2)), "judged by old news");
        keeper.detect_failures(&mut node, t0 + Duration::from_secs(43));
        assert!(keeper.removal_asked.contains_key(&NodeId(2)));
    }

    /// Property: a member removed and added back between two checks (they
    /// are 500 ms apart) is watched afresh from its re-addition, not judged
    /// by its silence before the removal.
    #[test]
    fn a_member_removed_and_added_back_between_two_checks_gets_the_full_grace() {
        let t0 = Instant::now();
        let (mut node, mut joiner, mut keeper) = leader_with_a_member_heard_at(t0);

        for change in [Reconfig::Remove(NodeId(2)), Reconfig::Add(member(2))] {
            node.propose_reconfig(change.clone()).expect("leading");
            settle_pair(&mut node, &mut joiner);
            keeper.membership_changed(&change);
        }
        assert!(in_latest_view(&node, 2));
        keeper.detect_failures(&mut node, t0 + Duration::from_secs(20));
        assert!(
            !keeper.removal_asked.contains_key(&NodeId(2)),
            "removal proposed as soon as the member was added back"
        );
        keeper.detect_failures(&mut node, t0 + Duration::from_secs(23));
        assert!(keeper.removal_asked.contains_key(&NodeId(2)));
    }

    /// Property: replicas cut off together (and removed) still find out:
    /// what they send each other (pre-votes) is no leader's, so each asks
    /// the members whether it is still in their view once `PROBE_AFTER`
    /// passes without a leader.
    #[tokio::test]
    async fn replicas_cut_off_together_ask_whether_they_are_still_members() {
        let all: Vec<Member> = (1..=5).map(member).collect();
        let mut n4 = Node::bootstrap(Config::new(NodeId(4)), &all).expect("node 4");
        let mut n5 = Node::bootstrap(Config::new(NodeId(5)), &all).expect("node 5");
        let mut k4 = MemberKeeper::new(
            member(4),
            Vec::new(),
            keeper().creds,
            Some((SUSPECT, REMOVE)),
            false,
        );
        let t0 = Instant::now();
        let tick = Duration::from_millis(10);
        let mut heard = 0;
        // 6 s of ticks; 4 and 5 reach only each other.
        for i in 1..=600u32 {
            let now = t0 + tick * i;
            deliver(&mut n4, &mut n5);
            n5.tick();
            for out in n5.take_ready().messages {
                if out.to == NodeId(4) {
                    k4.heard_from_at(NodeId(5), now);
                    heard += 1;
                    n4.step(NodeId(5), out.msg);
                }
            }
            k4.maybe_probe(&n4, now);
            if i < 490 {
                assert!(k4.probe_task.is_none(), "asked before {PROBE_AFTER:?}");
            }
        }
        assert!(heard > 0, "the two campaigned at each other");
        assert!(
            k4.probe_task.is_some(),
            "never asked ({heard} messages from node 5)"
        );
    }
}
