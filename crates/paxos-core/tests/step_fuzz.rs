//! Fuzzing `Node::step` with well-typed messages a peer could send.
//!
//! A peer controls every field of what it sends, so `step` must survive any
//! of them: any variant, ballots, slots and ids anywhere in `u64` (0, the
//! edge of [`NUMBER_MAX`], `u64::MAX`), from members, strangers, id 0 and the
//! node itself. Each case puts a node into one role inside a real three-node
//! cluster (a fresh follower, a follower that has decided, a leader, a node
//! mid-election, a node joining) and interleaves fuzzed messages with ticks,
//! proposals and real traffic. After every operation, at every node:
//!
//! * nothing panicked;
//! * a decided value, once handed out (`committed` or `persist.decided`),
//!   never changes, and `committed` runs in slot order without gaps;
//! * the decided prefix and the promised ballot never go back;
//! * every message a node sends passes [`Message::check`]: the receiver's
//!   check and the sender's behaviour hold each other up.
//!
//! Agreement *between* nodes is not checked: a fuzzed message may claim to
//! come from a member, and a lying member can make a quorum of one honest
//! node look like two (that is what the simulation and peer authentication
//! cover). A node's own decisions must stay put whatever it is told.
//!
//! The number of cases is proptest's (256 unless `PROPTEST_CASES` says
//! otherwise); a longer run is documented in docs/paxos-core.md.

mod cluster;

use cluster::{Cluster, cmd, member};
use paxos_core::message::{
    Accept, Accepted, CatchupReply, CatchupRequest, Heartbeat, HeartbeatAck, PreVote, PreVoteReply,
    Prepare, Promise, SnapshotChunk, SnapshotRequest,
};
use paxos_core::{
    AcceptedEntry, Ballot, Command, Entry, Member, Message, NUMBER_MAX, Node, NodeId, Reconfig,
    Role, Slot, View, ViewHistory,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

// ----- what a peer can send -----

/// Numbers that matter: small ones meet the cluster's real slots and rounds;
/// the rest sit on the edges of what `Message::check` allows.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0..=12u64,
        1 => Just(NUMBER_MAX - 1),
        1 => Just(NUMBER_MAX),
        1 => Just(NUMBER_MAX + 1),
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

/// Members 1 to 3, a node that is not yet one (4), strangers, and id 0.
fn node_id() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        6 => (1..=4u64).prop_map(NodeId),
        1 => Just(NodeId(0)),
        1 => Just(NodeId(99)),
        1 => Just(NodeId(u64::MAX)),
    ]
}

fn ballot() -> impl Strategy<Value = Ballot> {
    (number(), node_id()).prop_map(|(round, leader)| Ballot { round, leader })
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        2 => Just(Entry::Noop),
        4 => proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4), 0..3)
            .prop_map(|cmds| Entry::Commands(cmds.into_iter().map(Command).collect())),
        1 => node_id().prop_map(|id| Entry::Reconfig(Reconfig::Add(Member {
            id,
            addr: format!("fuzz:{}", id.0),
        }))),
        1 => node_id().prop_map(|id| Entry::Reconfig(Reconfig::Remove(id))),
    ]
}

fn slot_entries() -> impl Strategy<Value = Vec<(Slot, Entry)>> {
    proptest::collection::vec((number(), entry()), 0..4)
}

/// A view history as a peer could send it: any shape that survives decoding
/// (the same check a transport applies), else the founding view.
fn views() -> impl Strategy<Value = ViewHistory> {
    let view = (
        number(),
        number(),
        proptest::collection::btree_set(node_id(), 1..4),
    )
        .prop_map(|(epoch, first_slot, ids)| View {
            epoch,
            first_slot,
            members: ids
                .into_iter()
                .map(|id| (id, format!("fuzz:{}", id.0)))
                .collect(),
        });
    proptest::collection::vec(view, 1..3).prop_map(|views| {
        #[derive(serde::Serialize)]
        struct Wire {
            views: Vec<View>,
        }
        let bytes = rmp_serde::to_vec(&Wire { views }).expect("views encode");
        rmp_serde::from_slice::<ViewHistory>(&bytes)
            .unwrap_or_else(|_| ViewHistory::genesis(&(1..=3).map(member).collect::<Vec<_>>()))
    })
}

fn message() -> impl Strategy<Value = Message> {
    let accepted = proptest::collection::vec(
        (number(), ballot(), entry()).prop_map(|(slot, ballot, entry)| AcceptedEntry {
            slot,
            ballot,
            entry,
        }),
        0..4,
    );
    prop_oneof![
        (ballot(), number())
            .prop_map(|(ballot, decided)| Message::PreVote(PreVote { ballot, decided })),
        (ballot(), any::<bool>(), ballot(), number()).prop_map(
            |(ballot, ok, promised, decided)| Message::PreVoteReply(PreVoteReply {
                ballot,
                ok,
                promised,
                decided
            })
        ),
        ballot().prop_map(|ballot| Message::Prepare(Prepare { ballot })),
        (
            ballot(),
            any::<bool>(),
            number(),
            accepted,
            number(),
            number()
        )
            .prop_map(|(ballot, ok, decided, accepted, first, last)| {
                Message::Promise(Promise {
                    ballot,
                    ok,
                    decided,
                    accepted,
                    first,
                    last,
                })
            }),
        (ballot(), slot_entries(), number()).prop_map(|(ballot, entries, commit)| {
            Message::Accept(Accept {
                ballot,
                entries,
                commit,
            })
        }),
        (
            ballot(),
            any::<bool>(),
            proptest::collection::vec(number(), 0..4),
            number()
        )
            .prop_map(|(ballot, ok, slots, decided)| Message::Accepted(Accepted {
                ballot,
                ok,
                slots,
                decided
            })),
        (ballot(), number(), number()).prop_map(|(ballot, commit, round)| Message::Heartbeat(
            Heartbeat {
                ballot,
                commit,
                round
            }
        )),
        (ballot(), any::<bool>(), number(), number()).prop_map(|(ballot, ok, round, decided)| {
            Message::HeartbeatAck(HeartbeatAck {
                ballot,
                ok,
                round,
                decided,
            })
        }),
        (number(), any::<bool>()).prop_map(|(from, need_views)| Message::CatchupRequest(
            CatchupRequest { from, need_views }
        )),
        (slot_entries(), proptest::option::of(views()), number()).prop_map(
            |(entries, views, commit)| Message::CatchupReply(CatchupReply {
                entries,
                views,
                commit
            })
        ),
        (
            (number(), views(), number(), any::<u64>()),
            (
                number(),
                number(),
                proptest::collection::vec(any::<u8>(), 0..16)
            ),
            number()
        )
            .prop_map(
                |((slot, views, total_bytes, digest), (offset, stream_end, data), commit)| {
                    Message::SnapshotChunk(SnapshotChunk {
                        slot,
                        views,
                        total_bytes,
                        digest,
                        offset,
                        stream_end,
                        data,
                        commit,
                    })
                }
            ),
        (number(), number())
            .prop_map(|(slot, offset)| Message::SnapshotRequest(SnapshotRequest { slot, offset })),
    ]
}

// ----- what happens to the node -----

/// The role the fuzzed node is put into before the fuzzed messages arrive.
#[derive(Clone, Copy, Debug)]
enum Setting {
    /// Node 2 of a cluster that never ticked.
    FreshFollower,
    /// A follower of an elected leader, with commands decided.
    SettledFollower,
    /// The elected leader, with commands decided.
    Leader,
    /// Node 1, holding a ballot and waiting for promises.
    MidElection,
    /// Node 4, started with `Node::join`, not yet knowing the views.
    Joining,
}

#[derive(Clone, Debug)]
enum Operation {
    /// The fuzzed node receives `msg` from `from`.
    Step(NodeId, Message),
    /// Every node ticks.
    Tick,
    /// The fuzzed node is asked to propose a command (refused unless leading).
    Propose,
    /// Real traffic between the nodes, a bounded number of rounds.
    Deliver,
}

fn setting() -> impl Strategy<Value = Setting> {
    prop_oneof![
        Just(Setting::FreshFollower),
        Just(Setting::SettledFollower),
        Just(Setting::Leader),
        Just(Setting::MidElection),
        Just(Setting::Joining),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        8 => (node_id(), message()).prop_map(|(from, msg)| Operation::Step(from, msg)),
        1 => Just(Operation::Tick),
        1 => Just(Operation::Propose),
        2 => Just(Operation::Deliver),
    ]
}

/// What a node has said so far, to hold it to.
#[derive(Default)]
struct Record {
    decided: BTreeMap<Slot, Entry>,
    last_committed: Slot,
    prefix: Slot,
    promised: Ballot,
}

/// A cluster with one node under fuzz and the record of what each node said.
struct Fuzzed {
    cluster: Cluster,
    target: NodeId,
    records: BTreeMap<NodeId, Record>,
}

impl Fuzzed {
    fn new(setting: Setting) -> Fuzzed {
        let mut cluster = Cluster::new(3);
        let target = match setting {
            Setting::FreshFollower => NodeId(2),
            Setting::SettledFollower | Setting::Leader => {
                let leader = cluster.elect();
                for i in 0..3 {
                    cluster
                        .nodes
                        .get_mut(&leader)
                        .expect("leader")
                        .propose(cmd(&format!("c{i}")))
                        .expect("leader accepts");
                    cluster.deliver();
                }
                // Followers learn the commit point from the next heartbeats.
                cluster.run_until(50, |c| c.nodes.values().all(|n| n.decided() >= 3));
                match setting {
                    Setting::Leader => leader,
                    _ => *cluster
                        .nodes
                        .keys()
                        .find(|id| **id != leader)
                        .expect("3 nodes"),
                }
            }
            Setting::MidElection => {
                while cluster.nodes[&NodeId(1)].role() != Role::Candidate {
                    cluster.node(1).tick();
                    // Pre-votes pass; the promises they lead to are lost.
                    deliver_rounds(&mut cluster, 10, |m| !matches!(m, Message::Promise(_)));
                }
                NodeId(1)
            }
            Setting::Joining => {
                cluster.elect();
                cluster.add(Node::join(cluster::config(4)).expect("valid config"));
                NodeId(4)
            }
        };
        // What the nodes decided while the setting was made is the record
        // to hold them to.
        cluster.drain_all();
        let records = cluster
            .nodes
            .iter()
            .map(|(id, node)| {
                let record = Record {
                    decided: cluster.stores[id].decided().clone(),
                    last_committed: node.decided(),
                    prefix: node.decided(),
                    promised: node.status().promised,
                };
                (*id, record)
            })
            .collect();
        Fuzzed {
            cluster,
            target,
            records,
        }
    }

    fn apply(&mut self, op: Operation) {
        match op {
            Operation::Step(from, msg) => {
                self.cluster
                    .nodes
                    .get_mut(&self.target)
                    .expect("target")
                    .step(from, msg);
            }
            Operation::Tick => {
                for node in self.cluster.nodes.values_mut() {
                    node.tick();
                }
            }
            Operation::Propose => {
                let node = self.cluster.nodes.get_mut(&self.target).expect("target");
                let _refused_unless_leading = node.propose(cmd("fuzz"));
            }
            Operation::Deliver => self.deliver(),
        }
        self.check_all();
    }

    /// Real traffic, checked at every round; bounded, so no fuzzed state
    /// can make a case hang. What is still in flight at the end is lost.
    fn deliver(&mut self) {
        for _ in 0..20 {
            self.check_all();
            let wire = std::mem::take(&mut self.cluster.wire);
            if wire.is_empty() {
                return;
            }
            for (from, to, msg) in wire {
                if let Some(node) = self.cluster.nodes.get_mut(&to) {
                    node.step(from, msg);
                }
            }
        }
        self.cluster.wire.clear();
    }

    /// Drains every node and holds it to what it said before.
    fn check_all(&mut self) {
        let ids: Vec<NodeId> = self.cluster.nodes.keys().copied().collect();
        for id in ids {
            let ready = self.cluster.drain(id);
            let node = &self.cluster.nodes[&id];
            let record = self.records.entry(id).or_default();
            if let Some(snapshot) = &ready.restore {
                record.last_committed = snapshot.slot;
            }
            for (slot, entry) in ready.persist.decided.iter().chain(&ready.committed) {
                let held = record.decided.entry(*slot).or_insert_with(|| entry.clone());
                assert_eq!(
                    held, entry,
                    "{id:?} changed its decided value in slot {slot}"
                );
            }
            for (slot, _) in &ready.committed {
                assert_eq!(
                    *slot,
                    record.last_committed + 1,
                    "{id:?} handed out slot {slot} out of order"
                );
                record.last_committed = *slot;
            }
            assert!(
                node.decided() >= record.prefix,
                "{id:?}'s decided prefix went back"
            );
            record.prefix = node.decided();
            let promised = node.status().promised;
            assert!(promised >= record.promised, "{id:?}'s promise went back");
            record.promised = promised;
            for out in &ready.messages {
                assert_eq!(
                    out.msg.check(),
                    Ok(()),
                    "{id:?} sent a malformed message to {:?}: {:?}",
                    out.to,
                    out.msg
                );
            }
        }
    }
}

/// Delivers what `pass` lets through, for at most `rounds` rounds; drops the
/// rest.
fn deliver_rounds(cluster: &mut Cluster, rounds: usize, pass: impl Fn(&Message) -> bool) {
    for _ in 0..rounds {
        cluster.drain_all();
        let wire = std::mem::take(&mut cluster.wire);
        if wire.is_empty() {
            return;
        }
        for (from, to, msg) in wire {
            if pass(&msg)
                && let Some(node) = cluster.nodes.get_mut(&to)
            {
                node.step(from, msg);
            }
        }
    }
    cluster.wire.clear();
}

proptest! {
    // Cases (`PROPTEST_CASES`, default 256) as proptest reads them; a failure
    // is shrunk and printed, then kept as a named test below, not in a file.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_node_in_any_role_survives_any_message_and_never_changes_a_decided_value(
        setting in setting(),
        operations in proptest::collection::vec(operation(), 1..40),
    ) {
        let mut fuzzed = Fuzzed::new(setting);
        for op in operations {
            fuzzed.apply(op);
        }
    }
}

#[test]
fn each_setting_puts_the_node_in_the_role_it_names() {
    let role = |s: Setting| {
        let f = Fuzzed::new(s);
        (
            f.cluster.nodes[&f.target].role(),
            f.cluster.nodes[&f.target].view().is_some(),
        )
    };
    assert_eq!(role(Setting::FreshFollower), (Role::Follower, true));
    assert_eq!(role(Setting::SettledFollower), (Role::Follower, true));
    assert_eq!(role(Setting::Leader), (Role::Leader, true));
    assert_eq!(role(Setting::MidElection), (Role::Candidate, true));
    assert_eq!(role(Setting::Joining), (Role::Follower, false));
    let settled = Fuzzed::new(Setting::SettledFollower);
    assert!(settled.cluster.nodes[&settled.target].decided() >= 3);
}

// ----- cases the fuzz found, kept -----

/// Found by the fuzz: a forged heartbeat at the top round the check allows
/// ([`NUMBER_MAX`]) made every node's next ballot `NUMBER_MAX + 1`, and nodes
/// campaigned with it, sending `PreVote`s and `Prepare`s every peer refused
/// as malformed. A node now stays a follower instead (and counts it).
#[test]
fn a_node_never_campaigns_with_a_ballot_its_peers_refuse() {
    let mut fuzzed = Fuzzed::new(Setting::FreshFollower);
    let forged = Message::Heartbeat(Heartbeat {
        ballot: Ballot {
            round: NUMBER_MAX,
            leader: NodeId(3),
        },
        commit: 0,
        round: 0,
    });
    for _ in 0..5 {
        fuzzed.apply(Operation::Tick);
    }
    fuzzed.apply(Operation::Step(NodeId(1), forged));
    for _ in 0..100 {
        fuzzed.apply(Operation::Tick);
        fuzzed.apply(Operation::Deliver);
    }
    let exhausted: u64 = fuzzed
        .cluster
        .nodes
        .values()
        .map(|n| n.status().counters.ballots_exhausted)
        .sum();
    assert!(
        exhausted > 0,
        "the nodes tried to campaign and counted why they did not"
    );
}
