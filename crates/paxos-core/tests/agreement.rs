//! Agreement under adversarial schedules: real `Node`s, driven only through
//! the public API; the harness delivers or holds back each message, like an
//! asynchronous network that may delay any message arbitrarily. Each test is a
//! schedule that once broke agreement (found by reading the code, reproduced
//! here first), kept as a regression test.

mod cluster;
mod held_network;

use cluster::{Cluster, cmd};
use held_network::{Net, ent, within};
use paxos_core::message::{
    Accept, Accepted, CatchupReply, CatchupRequest, Heartbeat, PreVote, PreVoteReply, Prepare,
    Promise,
};
use paxos_core::{Entry, Message, Node, NodeId};

fn leader_ballot(net: &Net, i: u64) -> paxos_core::Ballot {
    net.c.nodes[&NodeId(i)].status().promised
}

// ---------------------------------------------------------------------------
// A leader must not advertise as committed a slot whose decided value differs
// from what it proposed there. Once, a leader adopted decisions learned by
// catch-up and advertised them as its commit point; a follower that accepted a
// different value under the leader's ballot then "decided" that value.
// ---------------------------------------------------------------------------
#[test]
fn a_stale_leader_that_learns_a_higher_ballots_decision_by_catchup_steps_down_and_no_follower_decides_its_value()
 {
    let mut net = Net::new(Cluster::new(5));
    let all = |_: u64, _: u64, _: &Message| true;

    // Phase 1: n3 leads at B0 (everyone promises); slot 1 = "a" is decided
    // with {n3, n4, n5}; n1 and n2 never hear of it.
    while net.c.nodes[&NodeId(3)].role() != paxos_core::Role::PreCandidate {
        net.n(3).tick();
    }
    net.pump(all);
    assert!(net.c.nodes[&NodeId(3)].is_leader());
    net.trace
        .push(format!("== n3 leads at {:?}", leader_ballot(&net, 3)));
    net.n(3).propose(cmd("a")).expect("leader");
    net.pump(within(&[3, 4, 5]));
    for _ in 0..2 {
        net.tick(&[3], within(&[3, 4, 5]));
    }
    assert_eq!(net.c.nodes[&NodeId(4)].decided(), 1);
    assert_eq!(net.c.nodes[&NodeId(1)].decided(), 0);
    net.held.clear();

    // Phase 2: n3 is paused. n1 wins ballot B1 with {n1, n2, n4}; n4 reports
    // decided = 1, so n1 starts at slot 2 and will ask n4 for slot 1.
    // Catch-up requests are delayed.
    let p2 = |f: u64, t: u64, m: &Message| {
        !matches!(m, Message::CatchupRequest(_))
            && ((f == 1 && (t == 2 || t == 4)) || (t == 1 && (f == 2 || f == 4)))
    };
    for _ in 0..100 {
        if net.c.nodes[&NodeId(1)].is_leader() {
            break;
        }
        net.tick(&[1, 2, 4], p2);
    }
    assert!(net.c.nodes[&NodeId(1)].is_leader());
    let b1 = leader_ballot(&net, 1);
    net.trace.push(format!("== n1 leads at {b1:?}"));
    // n1 proposes v: slot 2; its Accept reaches only n2.
    net.n(1).propose(cmd("v")).expect("leader");
    net.pump(|f, t, _| (f == 1 && t == 2) || (f == 2 && t == 1));
    // One tick: n1 (behind: prefix 0 < known commit 1) sends CatchupRequest
    // {from: 1} to n4; the network delays it.
    net.tick(&[1], |f, t, m| {
        !matches!(m, Message::CatchupRequest(_)) && ((f == 1 && t == 2) || (f == 2 && t == 1))
    });
    assert!(net.held.iter().any(|(f, t, m)| f.0 == 1
        && t.0 == 4
        && matches!(m, Message::CatchupRequest(CatchupRequest { from: 1, .. }))));
    let held_request = net
        .held
        .iter()
        .position(|(f, t, m)| f.0 == 1 && t.0 == 4 && matches!(m, Message::CatchupRequest(_)))
        .expect("held");
    let request = net.held.remove(held_request);
    net.held.clear();
    net.held.push(request);

    // Phase 3: n1 and n2 are paused. {n3, n4, n5} elect a leader at B2 > B1,
    // which decides slot 2 = "w"; n4 learns it.
    let mut l2 = 0;
    for _ in 0..300 {
        if let Some(l) = [3u64, 4, 5]
            .into_iter()
            .find(|i| net.c.nodes[&NodeId(*i)].is_leader() && leader_ballot(&net, *i) > b1)
        {
            l2 = l;
            break;
        }
        net.tick(&[3, 4, 5], within(&[3, 4, 5]));
    }
    assert!(l2 != 0, "a new leader among n3..n5");
    net.trace
        .push(format!("== n{l2} leads at {:?}", leader_ballot(&net, l2)));
    net.n(l2).propose(cmd("w")).expect("leader");
    net.pump(within(&[3, 4, 5]));
    for _ in 0..100 {
        if net.c.nodes[&NodeId(4)].decided() >= 2 {
            break;
        }
        net.tick(&[3, 4, 5], within(&[3, 4, 5]));
    }
    assert_eq!(
        net.c.stores[&NodeId(4)].decided().get(&2).map(ent),
        Some("w".into())
    );
    net.held.retain(|(f, _, _)| f.0 == 1);

    // Phase 4: the delayed CatchupRequest reaches n4; its reply (slots 1..2,
    // 2 = "w") reaches n1, which still leads at B1.
    net.release_first(
        |f, t, m| f == 1 && t == 4 && matches!(m, Message::CatchupRequest(_)),
        |f, t, m| f == 4 && t == 1 && matches!(m, Message::CatchupReply(_)),
    );
    // n1 learned that slot 2 holds "w", not the "v" it proposed there: a
    // higher ballot chose in its range, so it gives up leading at B1 before
    // its commit point can cover slot 2.
    assert!(!net.c.nodes[&NodeId(1)].is_leader(), "n1 stepped down");
    assert_eq!(
        net.c.nodes[&NodeId(1)]
            .status()
            .counters
            .superseded_leaderships,
        1
    );
    net.trace.push(format!(
        "== n1 stepped down from {b1:?}, decided prefix {}",
        net.c.nodes[&NodeId(1)].decided()
    ));

    // Phase 5: n1's next heartbeat (ballot B1, commit 2) reaches n2.
    for _ in 0..4 {
        net.tick(&[1], |f, t, _| (f == 1 && t == 2) || (f == 2 && t == 1));
    }
    net.assert_agreement();
}

// ---------------------------------------------------------------------------
// Phase-1 recovery keeps the highest-ballot value per slot also for promises
// that arrive after the election. Once, a late promise reporting a
// higher-ballot value for a slot not yet proposed did not replace the
// lower-ballot value recovered first.
// ---------------------------------------------------------------------------
#[test]
fn a_late_promise_with_a_higher_ballot_value_replaces_the_value_recovered_first() {
    use cluster::config;
    use paxos_core::{AcceptedEntry, Ballot, NUMBER_MAX, Role};
    let b = |round, leader| Ballot {
        round,
        leader: NodeId(leader),
    };
    let mut c = Cluster::with_config(5, |i| {
        let mut cfg = config(i);
        cfg.window = 2; // slot 3 cannot be filled before slots 1..2 are decided
        cfg.max_inflight_slots = 2;
        cfg
    });
    // n1 has seen ballot 5 (so it campaigns with round 6).
    c.node(1)
        .step(NodeId(5), Message::Prepare(Prepare { ballot: b(5, 5) }));
    c.drain(NodeId(1));
    while c.nodes[&NodeId(1)].role() != Role::PreCandidate {
        c.node(1).tick();
    }
    let ready = c.drain(NodeId(1));
    let asked = ready
        .messages
        .iter()
        .find_map(|o| match o.msg {
            Message::PreVote(PreVote { ballot, .. }) => Some(ballot),
            _ => None,
        })
        .expect("pre-vote");
    for v in [2, 3] {
        c.node(1).step(
            NodeId(v),
            Message::PreVoteReply(PreVoteReply {
                ballot: asked,
                ok: true,
                promised: paxos_core::Ballot::ZERO,
                decided: 0,
            }),
        );
    }
    let mine = c.nodes[&NodeId(1)].status().promised;
    c.drain(NodeId(1));
    c.wire.clear();
    let low = Entry::Commands(vec![cmd("low")]);
    let high = Entry::Commands(vec![cmd("high")]);
    let promise = |accepted: Vec<AcceptedEntry>| {
        Message::Promise(Promise {
            ballot: mine,
            ok: true,
            decided: 0,
            accepted,
            first: 1,
            last: NUMBER_MAX,
        })
    };
    // Adoption quorum {n1, n2, n3}: n2 reports slot 3 = low @ b2.n2.
    c.node(1).step(
        NodeId(2),
        promise(vec![AcceptedEntry {
            slot: 3,
            ballot: b(2, 2),
            entry: low.clone(),
        }]),
    );
    c.node(1).step(NodeId(3), promise(vec![]));
    assert!(c.nodes[&NodeId(1)].is_leader());
    c.drain(NodeId(1)); // slots 1, 2 proposed; slot 3 waits for the window
    // A late promise from n4: slot 3 = high @ b4.n4 (a higher ballot).
    c.node(1).step(
        NodeId(4),
        promise(vec![AcceptedEntry {
            slot: 3,
            ballot: b(4, 4),
            entry: high.clone(),
        }]),
    );
    c.deliver(); // slots 1, 2 get decided; slot 3 is proposed
    let slot3: Vec<Entry> = c
        .sent
        .iter()
        .filter(|(f, _, _)| f.0 == 1)
        .filter_map(|(_, _, m)| match m {
            Message::Accept(Accept { entries, .. }) => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .filter(|(s, _)| *s == 3)
        .map(|(_, e)| e)
        .collect();
    println!(
        "slot 3 proposed by n1 at {mine:?}: {:?}",
        slot3.iter().map(ent).collect::<Vec<_>>()
    );
    assert!(!slot3.is_empty());
    assert!(
        slot3.iter().all(|e| *e == high),
        "pmax: the value with the highest ballot (b4.n4) must win"
    );
}

// ---------------------------------------------------------------------------
// A leader elected by a quorum of an old view that completes a new view's
// quorum with late promises never overwrites a value chosen in the new view.
// Once, the late promise reported the value chosen at a higher ballot, but the
// lower-ballot value from the adoption quorum was kept and re-proposed.
// ---------------------------------------------------------------------------
#[test]
fn a_leader_elected_in_an_old_view_completes_the_new_views_quorum_without_overwriting_a_chosen_value()
 {
    use cluster::{config, member};
    use paxos_core::{Reconfig, Role};
    let cfg = |i: u64| {
        let mut c = config(i);
        c.window = 2;
        c.max_inflight_slots = 2;
        c
    };
    let mut net = Net::new(Cluster::with_config(3, cfg));

    // (a) n2 leads V0 = {n1,n2,n3} at b1.n2 with {n2,n3}; n1 hears nothing.
    while net.c.nodes[&NodeId(2)].role() != Role::PreCandidate {
        net.n(2).tick();
    }
    net.pump(within(&[2, 3]));
    assert!(net.c.nodes[&NodeId(2)].is_leader());
    net.trace
        .push(format!("== n2 leads at {:?}", leader_ballot(&net, 2)));
    // Two view changes: slot 1 = Add(n4), slot 2 = Add(n5); window 2, so
    // V2 = {n1..n5} governs slots >= 4. Slot 3 is padded with a no-op.
    net.c.add(Node::join(cfg(4)).expect("valid"));
    net.c.add(Node::join(cfg(5)).expect("valid"));
    net.n(2)
        .propose_reconfig(Reconfig::Add(member(4)))
        .expect("leader");
    net.n(2)
        .propose_reconfig(Reconfig::Add(member(5)))
        .expect("leader");
    net.pump(within(&[2, 3, 4, 5]));
    for _ in 0..100 {
        if (2..=5).all(|i| net.c.nodes[&NodeId(i)].decided() >= 3) {
            break;
        }
        net.tick(&[2, 3, 4, 5], within(&[2, 3, 4, 5]));
    }
    assert!((2..=5).all(|i| net.c.nodes[&NodeId(i)].decided() == 3));
    assert_eq!(net.c.nodes[&NodeId(1)].decided(), 0);
    // n2 proposes "low" in slot 4; its Accept reaches nobody.
    net.n(2).propose(cmd("low")).expect("leader");
    net.pump(|_, _, _| false);
    net.held.clear();

    // (b) n2 is paused. {n3,n4,n5} (a quorum of V2) elect a leader L0 at a
    // higher ballot; its Prepare also reaches n1 (n1's answer is lost).
    let pass_b = |f: u64, t: u64, m: &Message| {
        ([3, 4, 5].contains(&f) && [3, 4, 5].contains(&t))
            || (t == 1 && matches!(m, Message::Prepare(_)))
    };
    let mut l0 = 0;
    for _ in 0..300 {
        if let Some(l) = [3u64, 4, 5]
            .into_iter()
            .find(|i| net.c.nodes[&NodeId(*i)].is_leader())
        {
            l0 = l;
            break;
        }
        net.tick(&[3, 4, 5], pass_b);
    }
    assert!(l0 != 0);
    let b_high = leader_ballot(&net, l0);
    net.trace.push(format!("== n{l0} leads at {b_high:?}"));
    net.n(l0).propose(cmd("high")).expect("leader");
    net.pump(within(&[3, 4, 5]));
    assert_eq!(
        net.c.stores[&NodeId(l0)].decided().get(&4).map(ent),
        Some("high".into())
    );
    net.held.clear();
    let x = [3u64, 4, 5]
        .into_iter()
        .find(|i| *i != l0)
        .expect("another");

    // (c) L0's group is paused. n1 (prefix 0, knows only V0) wins b3.n1 with
    // {n1, n2}: a quorum of V0, the only view in its window. n2 reports
    // decided 3 and slot 4 = low @ b1.n2. n1 catches up slots 1..3 from n2,
    // learns V2, and sends Prepare to n3, n4, n5 (held).
    let pass_c = |f: u64, t: u64, _: &Message| (f == 1 && t == 2) || (f == 2 && t == 1);
    for _ in 0..100 {
        if net.c.nodes[&NodeId(1)].is_leader() {
            break;
        }
        net.tick(&[1, 2], pass_c);
    }
    assert!(net.c.nodes[&NodeId(1)].is_leader());
    let b1 = leader_ballot(&net, 1);
    net.trace.push(format!("== n1 leads at {b1:?}"));
    for _ in 0..5 {
        if net.c.nodes[&NodeId(1)].decided() >= 3 {
            break;
        }
        net.tick(&[1], pass_c);
    }
    assert_eq!(net.c.nodes[&NodeId(1)].decided(), 3);
    assert!(net.c.nodes[&NodeId(1)].is_leader());
    net.trace.push("== n1 caught up to 3 and knows V2".into());

    // (d) X (a member of L0's quorum that accepted "high") has not heard
    // from L0 for a while; n1's held Prepare reaches it.
    for _ in 0..25 {
        net.n(x).tick();
    }
    net.c.drain(NodeId(x));
    net.c.wire.clear();
    net.release_first(
        move |f, t, m| f == 1 && t == x && matches!(m, Message::Prepare(_)),
        move |f, t, m| {
            (f == 1 && (t == 2 || t == x) && !matches!(m, Message::CatchupRequest(_)))
                || ((f == 2 || f == x) && t == 1)
        },
    );
    net.assert_agreement();
}

// ---------------------------------------------------------------------------
// A malformed message from a peer is refused when decoded, never a panic.
// Once, a `CatchupReply` with `views: []` decoded fine (nothing validated a
// `ViewHistory`) and the node indexed the empty list.
// ---------------------------------------------------------------------------
#[test]
fn a_view_history_without_views_is_refused_when_decoded() {
    use paxos_core::{View, ViewHistory};
    use serde::Serialize;
    /// A `ViewHistory` as a forger writes it: the same shape, no checks.
    #[derive(Serialize)]
    struct ForgedHistory {
        views: Vec<View>,
    }
    // A peer's frame carries a message encoded like this (the transport's
    // `rmp_serde::to_vec`); the forged history replaces the real one inside.
    let reply = |views: Vec<View>| {
        let real = Message::CatchupReply(CatchupReply {
            entries: vec![],
            views: Some(ViewHistory::genesis(&[cluster::member(1)])),
            commit: 0,
        });
        let real_bytes = rmp_serde::to_vec(&real).expect("encodes");
        let genesis =
            rmp_serde::to_vec(&ViewHistory::genesis(&[cluster::member(1)])).expect("encodes");
        let forged = rmp_serde::to_vec(&ForgedHistory { views }).expect("encodes");
        let at = real_bytes
            .windows(genesis.len())
            .position(|w| w == genesis.as_slice())
            .expect("the history is inside the message");
        [
            &real_bytes[..at],
            &forged[..],
            &real_bytes[at + genesis.len()..],
        ]
        .concat()
    };
    let one_view = ViewHistory::genesis(&[cluster::member(1)]).views().to_vec();
    // The splice itself is faithful: with one view the message decodes.
    assert!(rmp_serde::from_slice::<Message>(&reply(one_view)).is_ok());
    // With none, decoding fails, naming the problem; no node ever sees it.
    let err = rmp_serde::from_slice::<Message>(&reply(vec![])).expect_err("refused");
    assert!(err.to_string().contains("at least one view"), "{err}");
}

/// Three nodes that all decided slot 1 = "w": (leader, a follower, the other).
fn three_nodes_that_decided_w() -> (Cluster, NodeId, NodeId, NodeId) {
    let mut c = Cluster::new(3);
    let leader = c.elect();
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .propose(cmd("w"))
        .expect("leader");
    c.run_until(50, |c| c.nodes.values().all(|n| n.decided() >= 1));
    let mut others = c.nodes.keys().copied().filter(|id| *id != leader);
    let follower = others.next().expect("3 nodes");
    let other = others.next().expect("3 nodes");
    (c, leader, follower, other)
}

// ---------------------------------------------------------------------------
// An acceptor acknowledges an `Accept` for a slot it knows decided only if the
// proposed value is the decided one: its vote must never help a stale leader
// count a second value into a decided slot. (Once, it acknowledged any value.
// With honest peers and the rules above intact no leader proposes another
// value in a decided slot and gets a quorum, so this is defence in depth; the
// simulation cannot reach it, see docs/paxos-core.md.)
// ---------------------------------------------------------------------------
#[test]
fn an_acceptor_acknowledges_an_accept_for_a_decided_slot_only_with_the_decided_value() {
    use paxos_core::Ballot;
    let (mut c, _, follower, other) = three_nodes_that_decided_w();
    let higher = Ballot {
        round: c.nodes[&follower].status().promised.round + 1,
        leader: other,
    };
    let acked = |c: &mut Cluster, value: &str| -> Vec<u64> {
        let to = follower;
        c.node(to.0).step(
            other,
            Message::Accept(Accept {
                ballot: higher,
                entries: vec![(1, Entry::Commands(vec![cmd(value)]))],
                commit: 0,
            }),
        );
        let ready = c.drain(to);
        c.wire.clear();
        ready
            .messages
            .into_iter()
            .find_map(|o| match o.msg {
                Message::Accepted(Accepted {
                    ok: true, slots, ..
                }) => Some(slots),
                _ => None,
            })
            .expect("an answer")
    };
    assert!(
        acked(&mut c, "v").is_empty(),
        "a different value in a decided slot is not acknowledged"
    );
    assert_eq!(acked(&mut c, "w"), vec![1], "the decided value is");
}

// ---------------------------------------------------------------------------
// Values from the network are checked before they touch any state: a ballot at
// the top of the range (whose successor once wrapped to round 0 and ended
// availability for good) is refused and reported, and the cluster goes on.
// ---------------------------------------------------------------------------
#[test]
fn a_ballot_at_the_top_of_the_range_is_refused_and_the_cluster_still_elects_and_decides() {
    use paxos_core::{Ballot, PeerFault};
    let mut c = Cluster::new(3);
    let forged = Message::Heartbeat(Heartbeat {
        ballot: Ballot {
            round: u64::MAX,
            leader: NodeId(9),
        },
        commit: 1_000_000_000_000,
        round: 0,
    });
    for i in 1..=3 {
        c.node(i).step(NodeId(9), forged.clone());
        let ready = c.drain(NodeId(i));
        assert!(
            matches!(
                ready.peer_faults.as_slice(),
                [(NodeId(9), PeerFault::Malformed(_))]
            ),
            "{:?}",
            ready.peer_faults
        );
        assert!(c.nodes[&NodeId(i)].status().promised.round < 1_000);
        assert_eq!(c.nodes[&NodeId(i)].status().known_commit, 0);
    }
    let leader = c.elect();
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .propose(cmd("after"))
        .expect("leader");
    c.run_until(50, |c| c.nodes.values().all(|n| n.decided() >= 1));
}

// ---------------------------------------------------------------------------
// A peer that claims a decision contradicting one already held is reported
// and ignored; the node keeps running and keeps its value (it once panicked,
// which let one forged catch-up reply take a replica down).
// ---------------------------------------------------------------------------
#[test]
fn a_decision_contradicting_a_held_one_is_reported_and_ignored_not_a_panic() {
    use paxos_core::PeerFault;
    let (mut c, leader, follower, liar) = three_nodes_that_decided_w();
    c.node(follower.0).step(
        liar,
        Message::CatchupReply(CatchupReply {
            entries: vec![(1, Entry::Commands(vec![cmd("v")]))],
            views: None,
            commit: 1,
        }),
    );
    let ready = c.drain(follower);
    assert_eq!(
        ready.peer_faults,
        vec![(liar, PeerFault::ConflictingDecision { slot: 1 })]
    );
    assert_eq!(
        c.stores[&follower].decided().get(&1).map(ent),
        Some("w".into())
    );
    c.nodes
        .get_mut(&leader)
        .expect("leader")
        .propose(cmd("next"))
        .expect("leader");
    c.run_until(50, |c| c.nodes.values().all(|n| n.decided() >= 2));
}
