//! Reads across a view change, found by an adversarial review: a
//! hand-scheduled message order (real `Node`s, public API only, honest peers)
//! in which a leader's read round completes before its window reaches a new
//! view, and that view completed a write above the read index. The read must
//! wait for a round that speaks for the new view (read_index.rs).

mod cluster;
mod held_network;

use cluster::{Cluster, cmd, config};
use held_network::Net;

use paxos_core::message::{Accept, Promise};
use paxos_core::{Message, NodeId, Reconfig, Role};

fn is_accept(m: &Message) -> bool {
    matches!(m, Message::Accept(_) | Message::Accepted(_))
}

fn ballot_of(net: &Net, i: u64) -> paxos_core::Ballot {
    net.c.nodes[&NodeId(i)].status().promised
}

// ---------------------------------------------------------------------------
// Linearizable reads across a view change. A read is confirmed by a heartbeat
// round acknowledged by a quorum of the views in the leader's window *when the
// round completes*, and its index is fixed then. If the leader's window later
// moves into views that the round did not cover (here: two removals make a
// view {n1, n4, n5} whose quorum {n4, n5} shares nobody with the round's
// quorum {n1, n2, n3}), a write those views completed before the read arrived
// can lie above the index. The read must not be granted from that state.
//
// V0 = {n1..n5}, window 2. Slot 1 = Remove(n2), slot 2 = Remove(n3):
// V1a = {n1,n3,n4,n5} governs slot 3, V1b = {n1,n4,n5} governs slots >= 4.
// ---------------------------------------------------------------------------
#[test]
fn a_read_confirmed_before_the_window_reaches_a_new_view_is_not_granted_without_a_write_that_view_completed()
 {
    let mut net = Net::new(Cluster::with_config(5, |i| {
        let mut c = config(i);
        c.window = 2;
        // n1 keeps one slot in flight (a legal knob): its slots are decided
        // one at a time.
        c.max_inflight_slots = if i == 1 { 1 } else { 2 };
        c
    }));
    let all = |_: u64, _: u64, _: &Message| true;

    // (a) n5 leads V0 at b0 (everyone promises).
    while net.c.nodes[&NodeId(5)].role() != Role::PreCandidate {
        net.n(5).tick();
    }
    net.pump(all);
    assert!(net.c.nodes[&NodeId(5)].is_leader());
    let b0 = ballot_of(&net, 5);
    net.trace.push(format!("== n5 leads at {b0:?}"));
    net.held.clear();

    // (b) Slots 1, 2 = Remove(n2), Remove(n3), accepted by {n5, n1, n2}.
    // Nobody but n5 learns that they are decided.
    net.n(5)
        .propose_reconfig(Reconfig::Remove(NodeId(2)))
        .expect("leader");
    net.n(5)
        .propose_reconfig(Reconfig::Remove(NodeId(3)))
        .expect("leader");
    net.pump(|f, t, m| {
        (f == 5
            && (t == 1 || t == 2)
            && matches!(m, Message::Accept(Accept { entries, .. }) if entries.iter().all(|(s, _)| *s <= 2)))
            || ((f == 1 || f == 2) && t == 5 && matches!(m, Message::Accepted(_)))
    });
    assert_eq!(net.c.nodes[&NodeId(5)].decided(), 2);
    // n5 now pads slot 3 (V1a) with a no-op; its Accept reaches n3 and n4.
    // Then the client write "W" goes to slot 4 (V1b), accepted by n4.
    let pass_b = |f: u64, t: u64, m: &Message| {
        (f == 5 && (t == 3 || t == 4) && matches!(m, Message::Accept(_)))
            || ((f == 3 || f == 4) && t == 5 && matches!(m, Message::Accepted(_)))
    };
    // (The Accepts of slots 1, 2 to n3 and n4 are lost.)
    net.held.retain(|(_, _, m)| {
        !matches!(m, Message::Accept(Accept { entries, .. }) if entries.iter().any(|(s, _)| *s <= 2))
    });
    net.release_every(|f, t, m| pass_b(f, t, m), pass_b);
    net.n(5).propose(cmd("W")).expect("leader");
    net.pump(pass_b);
    assert_eq!(net.c.nodes[&NodeId(5)].decided(), 4);
    assert!(
        net.executed_strings(NodeId(5)).contains(&"W".to_string()),
        "W is executed at n5: its client got its answer"
    );
    net.trace
        .push("== W decided in slot 4 and executed at n5 (acknowledged)".into());
    for i in 1..=4 {
        assert_eq!(net.c.nodes[&NodeId(i)].decided(), 0, "n{i} learned nothing");
    }
    // n5 is paused from here on: nothing from or to it is delivered.
    net.held.clear();

    // (c) n1 (prefix 0, knows only V0) campaigns and wins b > b0 with
    // {n1, n2, n3}. Its Prepare also reaches n4; n4's promise is delayed.
    let pass_c = |f: u64, t: u64, m: &Message| {
        ([1, 2, 3].contains(&f) && [1, 2, 3].contains(&t) && !is_accept(m))
            || (f == 1 && t == 4 && matches!(m, Message::Prepare(_)))
    };
    for _ in 0..200 {
        if net.c.nodes[&NodeId(1)].is_leader() {
            break;
        }
        net.tick(&[1, 2, 3, 4], pass_c);
    }
    assert!(net.c.nodes[&NodeId(1)].is_leader());
    let b = ballot_of(&net, 1);
    assert!(b > b0);
    assert!(
        net.held.iter().any(|(f, t, m)| f.0 == 4
            && t.0 == 1
            && matches!(m, Message::Promise(Promise { ok: true, ballot, .. }) if *ballot == b)),
        "n4 promised b; its answer is in the network"
    );
    net.trace.push(format!("== n1 leads at {b:?}"));

    // (d) A client reads at n1, after W was acknowledged. n1's round is
    // acknowledged by {n2, n3}: a quorum of V0, the only view in its window.
    net.n(1).read_index(7).expect("leader");
    net.pump(pass_c);
    assert!(
        net.grants.is_empty(),
        "the read waits for slot 3 (its index)"
    );

    // (e) n4's delayed promise arrives (it reports W in slot 4).
    net.release_every(
        |f, t, m| f == 4 && t == 1 && matches!(m, Message::Promise(_)),
        pass_c,
    );

    // (f) n1's Accepts reach n2, n3, n4: slots 1, 2, 3 are decided one by one.
    let pass_f = |f: u64, t: u64, _: &Message| {
        ([1, 2, 3].contains(&f) && [1, 2, 3].contains(&t))
            || (f == 1 && t == 4)
            || (f == 4 && t == 1)
    };
    net.release_every(
        |f, t, _| [1, 2, 3, 4].contains(&f) && [1, 2, 3].contains(&t),
        pass_f,
    );
    for _ in 0..3 {
        if !net.grants.is_empty() {
            break;
        }
        net.pump(pass_f);
    }
    net.dump();
    for (id, read, state) in &net.grants {
        assert!(
            state.contains(&"W".to_string()),
            "stale read: {id:?} granted read {read} from state {state:?}, \
             but W was acknowledged (executed at n5) before the read was asked"
        );
    }
    net.assert_agreement();
}
