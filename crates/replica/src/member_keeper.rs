//! Member upkeep, run by the driver after every turn (the replicated object
//! called `Membership` is unrelated):
//!
//! * **failure detection** (leader only): a member not heard from for
//!   `suspect_after` is logged as suspected; after `remove_after` the leader
//!   proposes removing it from the view (through the log, effective `window`
//!   slots later), as the original did;
//! * **joining and rejoining**: a replica that is not (or no longer) in the
//!   view keeps asking any member to add it, following redirects, until the
//!   view includes it. A durable replica removed while it was down resumes
//!   its identity and is added back.

use crate::join::{JoinCredentials, join_instance};
use concoord_transport::determinism::HashMap;
use paxos_core::{Member, Node, NodeId, Reconfig};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

/// How often the leader looks for silent members.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long a removal request stands before it is proposed again.
const REMOVAL_RETRY: Duration = Duration::from_secs(2);

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
    leader_since: Option<Instant>,
    last_check: Instant,
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
            leader_since: None,
            last_check: Instant::now(),
        };
        if joining {
            m.ask_to_join(Vec::new());
        }
        m
    }

    /// A message came from `node`.
    pub fn heard_from(&mut self, node: NodeId) {
        self.last_heard.insert(node, Instant::now());
    }

    fn ask_to_join(&mut self, members: Vec<String>) {
        let mut targets = self.bootstrap.clone();
        for addr in members {
            if addr != self.me.addr && !targets.contains(&addr) {
                targets.push(addr);
            }
        }
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
        if self.last_check.elapsed() >= CHECK_EVERY {
            self.last_check = Instant::now();
            self.detect_failures(node);
        }
    }

    fn track_own_membership(&mut self, node: &Node) {
        let Some(views) = node.views() else {
            return;
        };
        // The latest decided view, pending changes included: once a removal
        // takes effect the leader stops contacting the removed replica, so it
        // would never learn that the view in force excludes it.
        let in_view = views.latest().contains(self.me.id);
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

    fn detect_failures(&mut self, node: &mut Node) {
        let Some((suspect_after, remove_after)) = self.detection else {
            return;
        };
        if !node.is_leader() {
            self.leader_since = None;
            self.suspected.clear();
            return;
        }
        let now = Instant::now();
        let since = *self.leader_since.get_or_insert(now);
        let mut members: BTreeSet<NodeId> = BTreeSet::new();
        if let Some(v) = node.view() {
            members.extend(v.members.keys());
        }
        if let Some(views) = node.views() {
            members.extend(views.latest().members.keys());
        }
        members.remove(&self.me.id);
        for id in members {
            let last = self
                .last_heard
                .get(&id)
                .copied()
                .unwrap_or(since)
                .max(since);
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
