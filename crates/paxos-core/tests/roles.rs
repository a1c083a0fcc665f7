//! One test per role behaviour and per protocol invariant, each named after the
//! property it checks. The simulation (crates/paxos-sim) checks the same
//! properties under random faults; these pin each one down deterministically.

mod cluster;

use cluster::{Cluster, cmd, config, member};
use paxos_core::message::{Accept, Accepted, Heartbeat, PreVote, PreVoteReply, Prepare, Promise};
use paxos_core::{
    AcceptedEntry, Ballot, Command, Entry, Message, NUMBER_MAX, Node, NodeId, ProposeError,
    Reconfig, Role,
};

fn ballot(round: u64, leader: u64) -> Ballot {
    Ballot {
        round,
        leader: NodeId(leader),
    }
}

fn accepts_sent_by(c: &Cluster, from: NodeId) -> Vec<Vec<(u64, Entry)>> {
    c.sent
        .iter()
        .filter(|(f, _, _)| *f == from)
        .filter_map(|(_, _, m)| match m {
            Message::Accept(Accept { entries, .. }) => Some(entries.clone()),
            _ => None,
        })
        .collect()
}

/// Drives node `id` to the candidate state by hand: lets its election timer
/// fire, then answers its pre-vote from `voters`. Returns its ballot.
fn make_candidate(c: &mut Cluster, id: u64, voters: &[u64]) -> Ballot {
    for _ in 0..100 {
        if c.nodes[&NodeId(id)].role() == Role::PreCandidate {
            break;
        }
        c.node(id).tick();
    }
    let ready = c.drain(NodeId(id));
    let asked = ready
        .messages
        .iter()
        .find_map(|o| match o.msg {
            Message::PreVote(PreVote { ballot, .. }) => Some(ballot),
            _ => None,
        })
        .expect("a pre-vote was sent");
    for v in voters {
        c.node(id).step(
            NodeId(*v),
            Message::PreVoteReply(PreVoteReply {
                ballot: asked,
                ok: true,
                promised: paxos_core::Ballot::ZERO,
                decided: 0,
            }),
        );
    }
    assert_eq!(c.nodes[&NodeId(id)].role(), Role::Candidate);
    c.drain(NodeId(id));
    c.wire.clear();
    c.nodes[&NodeId(id)].status().promised
}

// ----- acceptor -----

#[test]
fn a_promise_is_persisted_in_the_same_ready_that_sends_it() {
    let mut c = Cluster::new(3);
    c.node(2).step(
        NodeId(1),
        Message::Prepare(Prepare {
            ballot: ballot(4, 1),
        }),
    );
    let ready = c.drain(NodeId(2));
    assert_eq!(ready.persist.promised, Some(ballot(4, 1)));
    assert!(ready.messages.iter().any(|o| matches!(
        o.msg,
        Message::Promise(Promise { ok: true, ballot: b, .. }) if b == ballot(4, 1)
    )));
}

#[test]
fn an_acceptance_is_persisted_in_the_same_ready_that_acknowledges_it() {
    let mut c = Cluster::new(3);
    let entry = Entry::Commands(vec![cmd("x")]);
    c.node(2).step(
        NodeId(1),
        Message::Accept(Accept {
            ballot: ballot(1, 1),
            entries: vec![(1, entry.clone())],
            commit: 0,
        }),
    );
    let ready = c.drain(NodeId(2));
    assert_eq!(
        ready.persist.accepted,
        vec![AcceptedEntry {
            slot: 1,
            ballot: ballot(1, 1),
            entry
        }]
    );
    assert!(ready.messages.iter().any(
        |o| matches!(&o.msg, Message::Accepted(Accepted { ok: true, slots, .. }) if slots == &[1])
    ));
}

#[test]
fn an_acceptor_refuses_ballots_below_its_promise() {
    let mut c = Cluster::new(3);
    c.node(2).step(
        NodeId(3),
        Message::Prepare(Prepare {
            ballot: ballot(9, 3),
        }),
    );
    c.drain(NodeId(2));
    c.node(2).step(
        NodeId(1),
        Message::Accept(Accept {
            ballot: ballot(2, 1),
            entries: vec![(1, Entry::Noop)],
            commit: 0,
        }),
    );
    let ready = c.drain(NodeId(2));
    assert!(ready.persist.accepted.is_empty());
    assert!(ready.messages.iter().any(|o| matches!(
        o.msg,
        Message::Accepted(Accepted { ok: false, ballot: b, .. }) if b == ballot(9, 3)
    )));
}

#[test]
fn a_restarted_node_keeps_its_promise() {
    let mut c = Cluster::new(3);
    c.node(2).step(
        NodeId(1),
        Message::Prepare(Prepare {
            ballot: ballot(10, 1),
        }),
    );
    c.drain(NodeId(2));
    let recovered = c.stores[&NodeId(2)].recovered();
    let mut restarted = Node::restart(config(2), recovered).expect("restart");
    restarted.step(
        NodeId(3),
        Message::Prepare(Prepare {
            ballot: ballot(5, 3),
        }),
    );
    let ready = restarted.take_ready();
    assert!(ready.messages.iter().any(|o| matches!(
        o.msg,
        Message::Promise(Promise { ok: false, ballot: b, .. }) if b == ballot(10, 1)
    )));
}

// ----- election and phase-1 recovery -----

#[test]
fn a_lone_node_elects_itself_and_decides_alone() {
    let mut c = Cluster::new(1);
    c.tick();
    assert!(c.node(1).is_leader());
    c.node(1).propose(cmd("a")).expect("leader");
    c.drain_all();
    assert_eq!(c.executed(NodeId(1)), &[b"a".to_vec()]);
}

#[test]
fn exactly_one_leader_emerges_from_competing_candidates() {
    for seed in 0..40 {
        let mut c = Cluster::with_config(5, |i| {
            let mut cfg = config(i);
            cfg.seed = seed;
            cfg
        });
        let leader = c.elect();
        // Everyone follows the same leader, and it stays leader.
        c.run_until(50, |c| c.nodes.values().all(|n| n.leader() == Some(leader)));
        for _ in 0..30 {
            c.tick();
        }
        assert_eq!(c.leaders(), vec![leader], "seed {seed}");
    }
}

#[test]
fn phase_one_recovery_reproposes_the_value_with_the_highest_ballot() {
    for low_first in [true, false] {
        let mut c = Cluster::new(5);
        let low = Entry::Commands(vec![cmd("low")]);
        let high = Entry::Commands(vec![cmd("high")]);
        // Node 1 has seen ballot 5 (so its own campaign uses round 6).
        c.node(1).step(
            NodeId(5),
            Message::Prepare(Prepare {
                ballot: ballot(5, 5),
            }),
        );
        c.drain(NodeId(1));
        let mine = make_candidate(&mut c, 1, &[4, 5]);
        let report = |b: Ballot, e: &Entry| {
            Message::Promise(Promise {
                ballot: mine,
                ok: true,
                decided: 0,
                accepted: vec![AcceptedEntry {
                    slot: 1,
                    ballot: b,
                    entry: e.clone(),
                }],
                first: 1,
                last: NUMBER_MAX,
            })
        };
        let (first, second) = if low_first {
            (report(ballot(2, 2), &low), report(ballot(4, 3), &high))
        } else {
            (report(ballot(4, 3), &high), report(ballot(2, 2), &low))
        };
        let (f1, f2) = if low_first { (2, 3) } else { (3, 2) };
        c.node(1).step(NodeId(f1), first);
        assert!(!c.node(1).is_leader(), "two of five promises are no quorum");
        c.node(1).step(NodeId(f2), second);
        assert!(c.node(1).is_leader());
        c.drain(NodeId(1));
        let slot1: Vec<Entry> = accepts_sent_by(&c, NodeId(1))
            .into_iter()
            .flatten()
            .filter(|(s, _)| *s == 1)
            .map(|(_, e)| e)
            .collect();
        assert!(!slot1.is_empty());
        assert!(slot1.iter().all(|e| *e == high), "low_first={low_first}");
    }
}

#[test]
fn a_new_leader_fills_gaps_below_recovered_slots_with_noops() {
    let mut c = Cluster::new(3);
    let mine = make_candidate(&mut c, 1, &[2]);
    c.node(1).step(
        NodeId(2),
        Message::Promise(Promise {
            ballot: mine,
            ok: true,
            decided: 0,
            accepted: vec![AcceptedEntry {
                slot: 3,
                ballot: ballot(0, 2),
                entry: Entry::Commands(vec![cmd("three")]),
            }],
            first: 1,
            last: NUMBER_MAX,
        }),
    );
    assert!(c.node(1).is_leader());
    c.drain(NodeId(1));
    let proposed: Vec<(u64, Entry)> = accepts_sent_by(&c, NodeId(1)).concat();
    let mut slots: Vec<(u64, Entry)> = proposed;
    slots.sort_by_key(|(s, _)| *s);
    slots.dedup_by_key(|(s, _)| *s);
    assert_eq!(slots[0], (1, Entry::Noop));
    assert_eq!(slots[1], (2, Entry::Noop));
    assert_eq!(slots[2], (3, Entry::Commands(vec![cmd("three")])));
}

#[test]
fn a_node_cut_off_from_the_cluster_cannot_depose_a_healthy_leader() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    let ballot_before = c.nodes[&leader].status().promised;
    let outsider = *c.nodes.keys().find(|id| **id != leader).expect("3 nodes");
    c.isolated.insert(outsider);
    for _ in 0..200 {
        c.tick();
    }
    // The outsider only ever asked (pre-vote); it never raised a ballot.
    assert!(c.nodes[&outsider].status().promised <= ballot_before);
    c.isolated.clear();
    for _ in 0..50 {
        c.tick();
    }
    assert_eq!(c.leaders(), vec![leader]);
    assert_eq!(c.nodes[&leader].status().promised, ballot_before);
    assert_eq!(c.nodes[&outsider].leader(), Some(leader));
}

#[test]
fn an_isolated_leader_steps_down_and_the_rest_elect_another() {
    let mut c = Cluster::new(3);
    let old = c.elect();
    c.isolated.insert(old);
    c.run_until(200, |c| {
        !c.nodes[&old].is_leader() && c.leaders().iter().any(|l| *l != old)
    });
}

// ----- leader: batching, window, redirects -----

#[test]
fn commands_proposed_together_share_one_slot() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.deliver();
    let before = accepts_sent_by(&c, leader).len();
    for i in 0..100 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(cmd(&format!("c{i}")))
            .expect("leader accepts");
    }
    c.deliver();
    let new: Vec<Vec<(u64, Entry)>> = accepts_sent_by(&c, leader).split_off(before);
    assert_eq!(new.len(), 2, "one Accept per follower");
    assert_eq!(new[0].len(), 1, "one slot");
    assert_eq!(new[0][0].1.command_count(), 100);
    assert_eq!(c.executed(leader).len(), 100);
}

#[test]
fn the_leader_never_proposes_beyond_executed_plus_window() {
    let mut c = Cluster::with_config(3, |i| {
        let mut cfg = config(i);
        cfg.window = 4;
        cfg.max_inflight_slots = 4;
        cfg.max_batch_commands = 1;
        cfg
    });
    let leader = c.elect();
    c.deliver();
    let decided = c.nodes[&leader].decided();
    for id in c.nodes.keys().copied().collect::<Vec<_>>() {
        if id != leader {
            c.isolated.insert(id);
        }
    }
    for i in 0..20 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(cmd(&format!("c{i}")))
            .expect("queued");
    }
    c.deliver();
    let highest = accepts_sent_by(&c, leader)
        .concat()
        .iter()
        .map(|(s, _)| *s)
        .max()
        .unwrap_or(0);
    assert_eq!(highest, decided + 4);
    assert_eq!(c.nodes[&leader].status().queued_commands, 16);
}

#[test]
fn a_follower_redirects_proposals_to_the_leader_it_knows() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.tick();
    let follower = *c.nodes.keys().find(|id| **id != leader).expect("3 nodes");
    let answer = c.nodes.get_mut(&follower).expect("node").propose(cmd("x"));
    assert_eq!(
        answer,
        Err(ProposeError::NotLeader {
            leader: Some(leader)
        })
    );
}

#[test]
fn proposals_beyond_the_queue_limit_get_busy() {
    let mut c = Cluster::with_config(1, |i| {
        let mut cfg = config(i);
        cfg.max_queued_commands = 3;
        cfg
    });
    c.tick();
    let node = c.node(1);
    for _ in 0..3 {
        node.propose(cmd("x")).expect("room");
    }
    assert_eq!(node.propose(cmd("x")), Err(ProposeError::Busy));
}

// ----- agreement and execution -----

#[test]
fn every_node_executes_the_same_commands_in_the_same_order() {
    let mut c = Cluster::new(5);
    let leader = c.elect();
    for round in 0..10 {
        for i in 0..7 {
            let _ = c
                .nodes
                .get_mut(&leader)
                .expect("leader")
                .propose(Command(format!("{round}-{i}").into_bytes()));
        }
        c.tick();
    }
    c.run_until(100, |c| {
        c.nodes.keys().all(|id| c.executed(*id).len() == 70)
    });
    let first = c.executed(leader).to_vec();
    for id in c.nodes.keys() {
        assert_eq!(c.executed(*id), first.as_slice());
    }
}

// ----- reads -----

#[test]
fn reads_wait_for_a_quorum_round_and_many_reads_share_one_round() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.deliver();
    let before = c.sent.len();
    let node = c.nodes.get_mut(&leader).expect("leader");
    for id in 1..=3 {
        node.read_index(id).expect("leader");
    }
    // Nothing granted before the followers answer.
    let ready = c.drain(leader);
    assert!(ready.reads.is_empty());
    c.deliver();
    assert_eq!(c.granted_reads[&leader], vec![1, 2, 3]);
    let rounds: std::collections::BTreeSet<u64> = c.sent[before..]
        .iter()
        .filter_map(|(_, _, m)| match m {
            Message::Heartbeat(Heartbeat { round, .. }) if *round > 0 => Some(*round),
            _ => None,
        })
        .collect();
    assert_eq!(rounds.len(), 1, "three reads, one confirmation round");
}

#[test]
fn an_isolated_leader_grants_no_read() {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.deliver();
    c.isolated.insert(leader);
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .read_index(7)
        .expect("still believes it leads");
    for _ in 0..100 {
        c.tick();
    }
    assert!(c.granted_reads[&leader].is_empty());
}

// ----- views -----

#[test]
fn a_view_change_takes_effect_window_slots_after_its_slot_and_the_new_node_catches_up() {
    let window = 4;
    let mut c = Cluster::with_config(3, |i| {
        let mut cfg = config(i);
        cfg.window = window;
        cfg.max_inflight_slots = window;
        cfg
    });
    let leader = c.elect();
    c.add(Node::join(config(4)).expect("valid"));
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .propose_reconfig(Reconfig::Add(member(4)))
        .expect("leader");
    c.run_until(200, |c| {
        c.nodes[&NodeId(4)].decided() >= 1
            && c.nodes[&NodeId(4)].decided() == c.nodes[&leader].decided()
    });
    let store = &c.stores[&leader];
    let slot = *store
        .decided()
        .iter()
        .find(|(_, e)| matches!(e, Entry::Reconfig(_)))
        .expect("reconfig decided")
        .0;
    let views = c.nodes[&leader].views().expect("views");
    assert!(!views.at(slot + window - 1).contains(NodeId(4)));
    assert!(views.at(slot + window).contains(NodeId(4)));
    // The new member now counts in quorums: with two originals cut off,
    // nothing can be decided (2 of 4 is no majority).
    let before = c.nodes[&leader].decided();
    for id in [1u64, 2, 3] {
        if NodeId(id) != leader {
            c.isolated.insert(NodeId(id));
            break;
        }
    }
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .propose(cmd("needs 3 of 4"))
        .expect("leader");
    c.deliver();
    assert!(c.nodes[&leader].decided() > before, "3 of 4 is a quorum");
}

#[test]
fn a_node_without_views_never_campaigns() {
    let mut n = Node::join(config(9)).expect("valid");
    for _ in 0..500 {
        n.tick();
    }
    assert_eq!(n.role(), Role::Follower);
    assert!(n.take_ready().messages.is_empty());
}

// ----- snapshots and catch-up -----

/// Elects a leader, cuts one follower off, decides `commands` commands
/// without it and compacts the other nodes' logs up to them. Returns the leader,
/// the follower left behind, and the snapshot's slot.
fn leave_a_follower_behind_a_snapshot(c: &mut Cluster, commands: usize) -> (NodeId, NodeId, u64) {
    let leader = c.elect();
    let laggard = *c.nodes.keys().find(|id| **id != leader).expect("3 nodes");
    c.isolated.insert(laggard);
    for i in 0..commands {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(cmd(&format!("c{i}")))
            .expect("leader");
        c.tick();
    }
    // Every node that has the log compacts it, so the laggard can only catch
    // up from a snapshot, whomever it asks.
    let upto = c.nodes[&leader].decided();
    c.run_until(50, |c| {
        c.nodes
            .iter()
            .all(|(id, n)| *id == laggard || n.decided() == upto)
    });
    for (id, node) in c.nodes.iter_mut() {
        if *id != laggard {
            node.compact(upto, b"the replicated state".to_vec())
                .expect("executed");
        }
    }
    (leader, laggard, upto)
}

#[test]
fn a_node_behind_a_compacted_log_catches_up_from_a_snapshot() {
    let mut c = Cluster::with_config(3, |i| {
        let mut cfg = config(i);
        cfg.log_retain_after_snapshot = 0;
        cfg.snapshot_chunk_bytes = 2; // many chunks
        cfg
    });
    let (leader, laggard, upto) = leave_a_follower_behind_a_snapshot(&mut c, 30);
    c.drain(leader);
    assert!(c.stores[&leader].snapshot().is_some());
    c.isolated.clear();
    c.run_until(200, |c| c.nodes[&laggard].decided() >= upto);
    assert_eq!(c.executed(laggard)[0], b"<snapshot>".to_vec());
    assert_eq!(c.nodes[&laggard].status().snapshot_slot, upto);
}

#[test]
fn compaction_bounds_the_log_kept_in_memory() {
    let mut c = Cluster::with_config(1, |i| {
        let mut cfg = config(i);
        cfg.log_entries_soft_max = 10;
        cfg.log_retain_after_snapshot = 0;
        cfg
    });
    c.tick();
    let mut wanted = false;
    for i in 0..50 {
        c.node(1).propose(cmd(&format!("{i}"))).expect("leader");
        let ready = c.drain(NodeId(1));
        if ready.compaction_wanted {
            wanted = true;
            let node = c.node(1);
            let upto = node.decided();
            node.compact(upto, Vec::new()).expect("executed");
        }
        assert!(c.nodes[&NodeId(1)].status().log_entries <= 11);
    }
    assert!(wanted);
}

/// Delivers like `Cluster::deliver`, dropping what `drop` picks.
fn deliver_dropping(c: &mut Cluster, drop: impl Fn(NodeId, NodeId, &Message) -> bool) {
    for _ in 0..1_000 {
        c.drain_all();
        if c.wire.is_empty() {
            return;
        }
        for (from, to, msg) in std::mem::take(&mut c.wire) {
            if drop(from, to, &msg) {
                continue;
            }
            if let Some(node) = c.nodes.get_mut(&to) {
                node.step(from, msg);
            }
        }
    }
    panic!("messages never quiesced");
}

#[test]
fn a_node_with_a_gap_is_not_asked_for_a_snapshot_it_cannot_take() {
    // Decided entries held above a gap cannot be compacted: a snapshot is
    // taken at the decided prefix. Counting them made a lagging replica
    // (a joiner catching up) ask for a snapshot every turn, each refused as
    // already held, while its driver serialized the whole object each time.
    let mut c = Cluster::with_config(3, |i| {
        let mut cfg = config(i);
        cfg.log_entries_soft_max = 10;
        cfg.log_retain_after_snapshot = 0;
        cfg
    });
    let leader = c.elect();
    let laggard = c
        .nodes
        .keys()
        .copied()
        .find(|id| *id != leader)
        .expect("a follower");
    let catching_up = |from: NodeId, m: &Message| {
        from == laggard && matches!(m, Message::CatchupRequest(_) | Message::SnapshotRequest(_))
    };
    // The laggard misses one slot and is kept from fetching it...
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .propose(cmd("missed"))
        .expect("leader");
    deliver_dropping(&mut c, |from, to, m| {
        (to == laggard && matches!(m, Message::Accept(_))) || catching_up(from, m)
    });
    // ...while it learns the decisions of 30 later slots.
    for i in 0..30 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(cmd(&format!("{i}")))
            .expect("leader");
        deliver_dropping(&mut c, |from, _, m| catching_up(from, m));
    }
    assert!(
        c.nodes[&laggard].status().log_entries > 10,
        "held above the gap"
    );
    // Every compaction asked for can be taken, and once taken is not asked
    // for again until the prefix moves.
    for _ in 0..2 {
        if c.drain(laggard).compaction_wanted {
            let prefix = c.nodes[&laggard].decided();
            c.node(laggard.0)
                .compact(prefix, Vec::new())
                .expect("a compaction asked for can be taken");
        }
    }
    assert!(!c.drain(laggard).compaction_wanted);
}

#[test]
fn a_node_just_behind_a_snapshot_catches_up_from_the_retained_log() {
    let mut c = Cluster::with_config(3, |i| {
        let mut cfg = config(i);
        cfg.log_retain_after_snapshot = 100;
        cfg
    });
    let (leader, laggard, upto) = leave_a_follower_behind_a_snapshot(&mut c, 10);
    c.drain(leader);
    c.isolated.clear();
    c.run_until(200, |c| c.nodes[&laggard].decided() >= upto);
    let snapshot_sent = c
        .sent
        .iter()
        .any(|(_, to, m)| *to == laggard && matches!(m, Message::SnapshotChunk(_)));
    assert!(!snapshot_sent, "the retained entries sufficed");
}
