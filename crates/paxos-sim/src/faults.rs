//! The fault injector of the chaos phase. Each strike picks one kind (shares
//! of the strikes without view changes; with them, the last two rows take
//! a fifth of the strikes and the rest shrink accordingly):
//!
//! | share | fault |
//! |---|---|
//! | 10% | a group partition (often the leader with a minority), dropping or holding what crosses it, each link healing at its own time |
//! | 15% | a stale leader: the leader and one follower cut off from the rest, the leader's clock slowed so it keeps leading; half the time it is later reconnected to the others but the new leader, which pauses (see `stale_leader_with_follower`) |
//! | 9% | one-way cuts: all of one node's links out (or in) to some peers |
//! | 6% | clients cut off from some replicas, one way or both |
//! | 16% | a crash of any node (it restarts from its disk later) |
//! | 10% | a crash of the leader |
//! | 6% | a crash between persisting a `Ready` and sending it |
//! | 8% | a pause (GC, SIGSTOP) of the leader or anyone |
//! | 5% | every crashed node restarts |
//! | 4% | every link heals |
//! | 6% | leader churn: each new leader struck soon after its election (killed, cut off alone, or left stale with a follower) |
//! | 5% | the leader cut off alone with a slow clock |
//! | 8% of all, with view changes | a member misses view changes and campaigns with its old view next to a leader stalled as the new view starts (see `stale_view_candidate`) |
//! | 12% of all, with view changes | a membership change |
//!
//! Composite faults schedule later steps ([`Strike`]s) and keep other faults
//! away while they play out.

use crate::harness::{Sim, Strike};
use crate::network::{CutMode, Endpoint};
use paxos_core::NodeId;
use paxos_core::message::Accept;
use paxos_core::{Message, Outgoing, ViewHistory};
use rand::Rng;

impl Sim {
    pub(crate) fn inject_fault(&mut self) {
        if self.now < self.scenario_until {
            // A composite scenario plays out undisturbed.
            return;
        }
        self.faults_injected += 1;
        let roll = if self.cfg.view_changes {
            self.rng.random_range(0..100)
        } else {
            self.rng.random_range(0..80)
        };
        match roll {
            0..8 => self.group_partition(),
            8..20 => self.stale_leader_with_follower(),
            20..27 => self.one_way_cuts(),
            27..32 => self.client_cuts(),
            32..45 => {
                let members = self.live_members();
                if !members.is_empty() {
                    let id = members[self.rng.random_range(0..members.len())];
                    self.crash(id);
                }
            }
            45..53 => {
                if let Some(leader) = self.leader() {
                    self.log(format!("killing leader {leader:?}"));
                    self.crash(leader);
                }
            }
            53..58 => {
                let target = self.leader_or_anyone(0.6);
                if let Some(sn) = target.and_then(|id| self.nodes.get_mut(&id)) {
                    sn.crash_mid_ready = true;
                }
                self.log(format!("{target:?} will crash in the middle of a Ready"));
            }
            58..64 => {
                // Pause the leader (or anyone) long enough for an election.
                if let Some(id) = self.leader_or_anyone(0.7) {
                    let until = self.now + self.rng.random_range(50..400);
                    if let Some(sn) = self.nodes.get_mut(&id) {
                        sn.paused_until = until;
                    }
                    self.log(format!("{id:?} paused until {until}"));
                }
            }
            64..68 => self.restart_all_down(),
            68..71 => {
                self.net.heal();
                self.log("every link healed".into());
            }
            71..76 => {
                self.churn_until = self.now + self.rng.random_range(100..600);
                self.log(format!("leader churn until {}", self.churn_until));
            }
            76..80 => {
                // Cut the leader off and slow its clock: it keeps believing it
                // leads while the others elect a new leader.
                if let Some(leader) = self.leader() {
                    let until = self.now + self.rng.random_range(100..400);
                    let mode = self.isolate(leader, until);
                    if let Some(sn) = self.nodes.get_mut(&leader) {
                        sn.slow_clock = 0.9;
                    }
                    self.log(format!(
                        "isolated slow leader {leader:?} until {until} ({mode:?})"
                    ));
                }
            }
            80..88 => self.stale_view_candidate(),
            _ => self.change_membership(),
        }
    }

    /// A member misses view changes and later campaigns with its old view,
    /// next to a leader that stopped in the middle of them: a member is cut
    /// off while two members are added; the leader is armed to stall as the
    /// new view starts (see [`stall_at_new_view`]); then it and the member
    /// that missed the changes are cut off together from the rest. The two form a quorum of
    /// the old view while the others, a quorum of the new view, decide — and
    /// when the links come back, the old-view leader must complete the new
    /// view's quorum with late promises without overwriting what the new
    /// view chose.
    fn stale_view_candidate(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        // With three members, two of them are a quorum of the old view while
        // the third and the two added ones are a quorum of the new one.
        if !self.pending_reconfigs.is_empty()
            || self
                .most_advanced_view()
                .is_none_or(|v| v.members.len() != 3)
        {
            return;
        }
        let members = self.shuffled_members();
        let Some(missed) = members.iter().find(|id| **id != leader).copied() else {
            return;
        };
        // The view after both additions: the one in which the third old
        // member and the two new ones are a quorum.
        let Some(epoch) = self.most_advanced_view().map(|v| v.epoch + 2) else {
            return;
        };
        let cut = self.rng.random_range(100..400);
        let others = self.node_endpoints_except(&[missed]);
        self.net.partition(
            &mut self.rng,
            &[Endpoint::Node(missed)],
            &others,
            self.now + cut,
            0,
            CutMode::Drop,
        );
        self.exercised.partitions += 1;
        for _ in 0..2 {
            let id = self.add_node();
            self.log(format!("adding {id:?}"));
        }
        let pause = self.rng.random_range(150..500);
        let until = self.now + cut;
        self.scenario_until = until + pause + 700;
        self.churn_until = self.now;
        if let Some(sn) = self.nodes.get_mut(&leader) {
            sn.stall = Some(NewViewStall {
                epoch,
                pause,
                partner: missed,
                until,
            });
        }
        self.log(format!(
            "{missed:?} cut off for {cut} while members are added; {leader:?} pauses as it enters epoch {epoch}"
        ));
    }

    /// Carries out the later steps of composite faults that are due.
    pub(crate) fn scheduled_strikes(&mut self) {
        let now = self.now;
        let due: Vec<Strike> = self
            .scheduled
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, s)| *s)
            .collect();
        self.scheduled.retain(|(at, _)| *at > now);
        for strike in due {
            match strike {
                Strike::ReconnectStaleLeader(stale, follower, pause) => {
                    let Some(new) = self.leader().filter(|l| *l != stale) else {
                        continue;
                    };
                    let others: Vec<NodeId> = self
                        .nodes
                        .keys()
                        .copied()
                        .filter(|id| ![stale, follower, new].contains(id))
                        .collect();
                    for x in &others {
                        self.net.restore(Endpoint::Node(*x), Endpoint::Node(stale));
                        self.net.restore(Endpoint::Node(stale), Endpoint::Node(*x));
                    }
                    if let Some(sn) = self.nodes.get_mut(&new) {
                        sn.paused_until = now + pause;
                    }
                    self.log(format!(
                        "stale leader {stale:?} reconnected to {others:?}; new leader {new:?} paused for {pause}"
                    ));
                }
                Strike::CutOff(node, until) => {
                    let others = self.node_endpoints_except(&[node]);
                    self.net.partition(
                        &mut self.rng,
                        &[Endpoint::Node(node)],
                        &others,
                        until,
                        0,
                        CutMode::Drop,
                    );
                }
                Strike::IsolateWith(x, y, ticks) => {
                    // The one that missed the view changes catches up only
                    // after an election: it may campaign with its old view.
                    self.net.slow_catchup(Endpoint::Node(y), now + ticks);
                    let side = [x, y];
                    let a: Vec<Endpoint> = side.iter().map(|id| Endpoint::Node(*id)).collect();
                    let b = self.node_endpoints_except(&side);
                    let until = now + self.rng.random_range(ticks / 2..=ticks);
                    let stagger = [0, 100][self.rng.random_range(0..2)];
                    let mode = self.cut_mode();
                    self.net
                        .partition(&mut self.rng, &a, &b, until, stagger, mode);
                    self.exercised.partitions += 1;
                    self.log(format!(
                        "{side:?} cut off together until {until} (+{stagger}, {mode:?})"
                    ));
                }
            }
        }
    }

    /// Cuts `node` off from every other node until `until`, dropping or
    /// holding what crosses; returns which.
    fn isolate(&mut self, node: NodeId, until: u64) -> CutMode {
        let mode = self.cut_mode();
        let others = self.node_endpoints_except(&[node]);
        self.net.partition(
            &mut self.rng,
            &[Endpoint::Node(node)],
            &others,
            until,
            0,
            mode,
        );
        self.exercised.partitions += 1;
        mode
    }

    fn cut_mode(&mut self) -> CutMode {
        if self.rng.random_bool(0.5) {
            CutMode::Hold
        } else {
            CutMode::Drop
        }
    }

    fn leader_or_anyone(&mut self, leader_share: f64) -> Option<NodeId> {
        let members = self.live_members();
        if self.rng.random_bool(leader_share)
            && let Some(l) = self.leader()
        {
            return Some(l);
        }
        members
            .get(self.rng.random_range(0..members.len().max(1)))
            .copied()
    }

    /// Every node (up or down, member or not) but `except`, as endpoints.
    fn node_endpoints_except(&self, except: &[NodeId]) -> Vec<Endpoint> {
        self.nodes
            .keys()
            .filter(|id| !except.contains(id))
            .map(|id| Endpoint::Node(*id))
            .collect()
    }

    fn shuffled_members(&mut self) -> Vec<NodeId> {
        let mut members = self.live_members();
        for i in (1..members.len()).rev() {
            let j = self.rng.random_range(0..=i);
            members.swap(i, j);
        }
        members
    }

    /// Splits the nodes in two; half the time the leader is on the small side.
    fn group_partition(&mut self) {
        let mut members = self.shuffled_members();
        if members.len() < 2 {
            return;
        }
        if let Some(leader) = self.leader()
            && self.rng.random_bool(0.5)
            && let Some(pos) = members.iter().position(|id| *id == leader)
        {
            members.swap(0, pos);
        }
        let isolated = self.rng.random_range(1..=members.len() / 2 + 1);
        let side: Vec<NodeId> = members[..isolated].to_vec();
        let until = self.now + self.rng.random_range(50..400);
        let stagger = [0, 0, 50, 200][self.rng.random_range(0..4)];
        let mode = self.cut_mode();
        let a: Vec<Endpoint> = side.iter().map(|id| Endpoint::Node(*id)).collect();
        let b = self.node_endpoints_except(&side);
        self.net
            .partition(&mut self.rng, &a, &b, until, stagger, mode);
        self.exercised.partitions += 1;
        self.log(format!(
            "partition {side:?} | rest until {until} (+{stagger}, {mode:?})"
        ));
    }

    /// The leader and one follower lose the rest; the leader's clock slows
    /// so it notices late. The rest elect a new leader and decide, while the
    /// old one still has a follower accepting its proposals — the setting in
    /// which a stale leader's commit point or a stale acceptor's vote could
    /// break agreement.
    fn stale_leader_with_follower(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let members = self.shuffled_members();
        let Some(follower) = members.iter().find(|id| **id != leader).copied() else {
            return;
        };
        let side = [leader, follower];
        let until = self.now + self.rng.random_range(100..500);
        let stagger = [0, 100, 300][self.rng.random_range(0..3)];
        let mode = self.cut_mode();
        let a: Vec<Endpoint> = side.iter().map(|id| Endpoint::Node(*id)).collect();
        let b = self.node_endpoints_except(&side);
        self.net
            .partition(&mut self.rng, &a, &b, until, stagger, mode);
        self.exercised.partitions += 1;
        if let Some(sn) = self.nodes.get_mut(&leader) {
            sn.slow_clock = 0.9;
        }
        self.log(format!(
            "stale leader {leader:?} with {follower:?} cut off until {until} (+{stagger}, {mode:?})"
        ));
        if self.rng.random_bool(0.5) {
            // Later, the stale leader hears the others again, but not the one
            // that replaced it, which stalls: their elections and catch-up
            // reach the stale leader before any message of the new ballot.
            let at = self.now
                + self
                    .rng
                    .random_range(2 * u64::from(self.core().election)..400);
            let pause = self.rng.random_range(50..200);
            self.scheduled
                .push((at, Strike::ReconnectStaleLeader(leader, follower, pause)));
        }
    }

    /// All of one node's links out to some peers (or in from them) are cut:
    /// it hears them but cannot answer, or speaks but hears nothing.
    fn one_way_cuts(&mut self) {
        let members = self.shuffled_members();
        let Some(node) = (if self.rng.random_bool(0.5) {
            self.leader()
        } else {
            members.first().copied()
        }) else {
            return;
        };
        let outbound = self.rng.random_bool(0.5);
        let until = self.now + self.rng.random_range(50..400);
        let mode = self.cut_mode();
        let mut peers = Vec::new();
        for peer in self.nodes.keys().copied().collect::<Vec<_>>() {
            if peer != node && self.rng.random_bool(0.6) {
                peers.push(peer);
                let (from, to) = if outbound { (node, peer) } else { (peer, node) };
                self.net
                    .cut(Endpoint::Node(from), Endpoint::Node(to), until, mode);
            }
        }
        self.exercised.one_way_cuts += 1;
        let way = if outbound { "out to" } else { "in from" };
        self.log(format!(
            "one-way: {node:?} cut {way} {peers:?} until {until} ({mode:?})"
        ));
    }

    /// Some clients lose some replicas (the leader, often), one way or both.
    fn client_cuts(&mut self) {
        let members = self.shuffled_members();
        let until = self.now + self.rng.random_range(50..400);
        let mode = self.cut_mode();
        let both = self.rng.random_bool(0.5);
        let leader = self.leader();
        let clients: Vec<u64> = self.clients.iter().map(|c| c.id).collect();
        for client in clients {
            if !self.rng.random_bool(0.5) {
                continue;
            }
            for node in &members {
                if Some(*node) != leader && !self.rng.random_bool(0.5) {
                    continue;
                }
                let (c, n) = (Endpoint::Client(client), Endpoint::Node(*node));
                if both || self.rng.random_bool(0.5) {
                    self.net.cut(c, n, until, mode);
                }
                if both || self.rng.random_bool(0.5) {
                    self.net.cut(n, c, until, mode);
                }
            }
        }
        self.exercised.client_cuts += 1;
        self.log(format!(
            "clients cut from replicas until {until} ({mode:?})"
        ));
    }

    /// During a churn period, strikes every new leader soon after its
    /// election, while it still has slots in flight and may still be catching
    /// up: kills it, cuts it off alone, or leaves it stale with one follower.
    pub(crate) fn churn_leaders(&mut self) {
        let Some((leader, since)) = self.current_leader else {
            return;
        };
        if self.now >= self.churn_until || self.now < since + 3 || !self.rng.random_bool(0.08) {
            return;
        }
        match self.rng.random_range(0..3) {
            0 => {
                self.log(format!("churn: killing leader {leader:?}"));
                self.crash(leader);
            }
            1 => {
                let until = self.now + self.rng.random_range(20..150);
                self.isolate(leader, until);
                self.log(format!("churn: isolating leader {leader:?} until {until}"));
            }
            _ => self.stale_leader_with_follower(),
        }
        self.current_leader = None;
    }
}

/// A leader armed to stall as a new view starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewViewStall {
    /// The first epoch of the new view.
    pub(crate) epoch: u64,
    /// Ticks the pause lasts.
    pause: u64,
    /// The node to cut off together with this one when it resumes.
    pub(crate) partner: NodeId,
    /// Disarmed after this tick.
    until: u64,
}

impl Sim {
    /// Whether every other member of the view of `epoch` (but `partner`)
    /// knows that view and has decided every slot before it: the new view
    /// alone then governs what is still undecided, and its members can elect
    /// a leader without the stalled one.
    pub(crate) fn new_view_ready_without(&self, leader: NodeId, stall: &NewViewStall) -> bool {
        let Some(view) = self.nodes[&leader]
            .node
            .as_ref()
            .and_then(|n| n.views())
            .and_then(|v| v.views().iter().find(|v| v.epoch >= stall.epoch).cloned())
        else {
            return false;
        };
        view.members
            .keys()
            .filter(|id| **id != leader && **id != stall.partner)
            .all(|id| {
                self.nodes
                    .get(id)
                    .and_then(|n| n.node.as_ref())
                    .is_some_and(|n| n.views().is_some() && n.decided() + 1 >= view.first_slot)
            })
    }
}

/// The stall of `stale_view_candidate`, applied to one `Ready` of an armed
/// leader: its proposals in the new view are lost (the network ate them; the
/// leader retransmits) until the other members are ready to go on without it
/// (`others_ready`, see [`Sim::new_view_ready_without`]); then the next
/// `Ready` proposing in the new view pauses the leader (a GC, a SIGSTOP), its
/// messages leaving only when it resumes. Returns the pause and the partner
/// to cut off with it, when it strikes.
pub(crate) fn stall_at_new_view(
    stall: &mut Option<NewViewStall>,
    views: Option<&ViewHistory>,
    messages: &mut Vec<Outgoing>,
    others_ready: bool,
    now: u64,
) -> Option<(u64, NodeId)> {
    if stall.is_some_and(|armed| now > armed.until) {
        *stall = None;
    }
    let (Some(armed), Some(views)) = (stall.as_mut(), views) else {
        return None;
    };
    let first = views.views().iter().find(|v| v.epoch >= armed.epoch)?;
    let in_new_view = |out: &Outgoing| match &out.msg {
        Message::Accept(Accept { entries, .. }) => {
            entries.iter().any(|(slot, _)| *slot >= first.first_slot)
        }
        _ => false,
    };
    if messages.iter().any(in_new_view) {
        if others_ready {
            let strike = (armed.pause, armed.partner);
            *stall = None;
            return Some(strike);
        }
        messages.retain(|out| !in_new_view(out));
    }
    None
}
