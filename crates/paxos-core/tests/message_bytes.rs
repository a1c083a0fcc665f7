//! Messages that carry log entries stay within `max_message_bytes`, whatever
//! the load: a turn's `Accept`, a retransmission, an acceptor's `Promise`
//! and a catch-up reply are split by bytes, and a promise split in parts
//! counts only once every part arrived.

mod cluster;

use cluster::{Cluster, config, member};
use paxos_core::message::{Accept, CatchupReply, PreVote, PreVoteReply, Prepare, Promise};
use paxos_core::{Ballot, Command, Config, Entry, Message, Node, NodeId, Role};

/// Bytes of entries one message may carry in these tests.
const MESSAGE_BYTES: usize = 1000;

fn small_messages(i: u64) -> Config {
    let mut c = config(i);
    c.max_message_bytes = MESSAGE_BYTES;
    c.max_batch_bytes = 300;
    c.snapshot_chunk_bytes = 300;
    c.log_bytes_soft_max = 100_000;
    c
}

/// A command of `bytes` bytes, tagged with `tag`.
fn command(tag: u8, bytes: usize) -> Command {
    let mut body = vec![tag; bytes];
    body[0] = b'#';
    Command(body)
}

/// Bytes of entries a message carries, and how many entries.
fn carried(msg: &Message) -> Option<(usize, usize)> {
    match msg {
        Message::Accept(Accept { entries, .. })
        | Message::CatchupReply(CatchupReply { entries, .. }) => Some((
            entries.iter().map(|(_, e)| e.size_bytes()).sum(),
            entries.len(),
        )),
        Message::Promise(Promise { accepted, .. }) => Some((
            accepted.iter().map(|a| a.entry.size_bytes()).sum(),
            accepted.len(),
        )),
        _ => None,
    }
}

fn assert_within_bound(c: &Cluster, kind: &str) -> usize {
    let mut seen = 0;
    for (_, _, msg) in &c.sent {
        if msg.kind() != kind {
            continue;
        }
        if let Some((bytes, entries)) = carried(msg) {
            seen += 1;
            assert!(
                bytes <= MESSAGE_BYTES || entries == 1,
                "a {kind} carries {bytes} bytes in {entries} entries"
            );
        }
    }
    seen
}

#[test]
fn no_accept_carries_more_than_the_message_bound_and_every_command_is_decided() {
    let mut c = Cluster::with_config(3, small_messages);
    let leader = c.elect();
    c.sent.clear();
    // 40 commands of 250 bytes in one turn: one slot each (the batch bound is
    // 300 bytes), ~10 KB for each follower.
    for i in 0..40 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(command(i, 250))
            .expect("leader accepts");
    }
    c.deliver();
    let accepts = assert_within_bound(&c, "accept");
    assert!(accepts >= 2 * 10, "the turn's slots left in many Accepts");
    c.run_until(50, |c| c.nodes.keys().all(|id| c.executed(*id).len() == 40));
}

#[test]
fn a_command_larger_than_the_bound_travels_alone() {
    let mut c = Cluster::with_config(3, small_messages);
    let leader = c.elect();
    c.sent.clear();
    let node = c.nodes.get_mut(&leader).expect("leader");
    node.propose(command(1, 5000)).expect("accepted");
    node.propose(command(2, 10)).expect("accepted");
    c.deliver();
    assert_within_bound(&c, "accept");
    c.run_until(50, |c| c.nodes.keys().all(|id| c.executed(*id).len() == 2));
}

#[test]
fn a_retransmission_of_many_slots_is_split_too() {
    let mut c = Cluster::with_config(3, small_messages);
    let leader = c.elect();
    let follower = *c
        .nodes
        .keys()
        .find(|id| **id != leader)
        .expect("a follower");
    let other = *c
        .nodes
        .keys()
        .find(|id| **id != leader && **id != follower)
        .expect("another follower");
    // Both followers miss the first round: nothing is decided.
    c.isolated.insert(follower);
    c.isolated.insert(other);
    for i in 0..30 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(command(i, 250))
            .expect("leader accepts");
    }
    c.deliver();
    c.isolated.clear();
    c.sent.clear();
    // The leader retransmits every unacknowledged slot.
    c.run_until(30, |c| c.nodes.keys().all(|id| c.executed(*id).len() == 30));
    let accepts = assert_within_bound(&c, "accept");
    assert!(accepts >= 2 * 8, "the retransmission left in many Accepts");
}

/// Node 2 accepted 12 values of 400 bytes (slots 1..=12) from node 1's
/// ballot and decided none, and has not heard from node 1 for long.
fn acceptor_holding_a_large_report(c: &mut Cluster) {
    let old = Ballot {
        round: 1,
        leader: NodeId(1),
    };
    let entries: Vec<(u64, Entry)> = (1..=12)
        .map(|s| (s, Entry::Commands(vec![command(s as u8, 392)])))
        .collect();
    c.node(2).step(
        NodeId(1),
        Message::Accept(Accept {
            ballot: old,
            entries,
            commit: 0,
        }),
    );
    // Long silence from node 1: node 2 no longer defers to it.
    for _ in 0..30 {
        c.node(2).tick();
    }
    c.drain(NodeId(2));
}

/// Lets node `id`'s pre-vote pass with node 2's vote; returns its ballot.
fn candidate(c: &mut Cluster, id: u64) -> Ballot {
    for _ in 0..100 {
        if c.nodes[&NodeId(id)].role() == Role::PreCandidate {
            break;
        }
        c.node(id).tick();
    }
    let asked = c
        .drain(NodeId(id))
        .messages
        .iter()
        .find_map(|o| match o.msg {
            Message::PreVote(PreVote { ballot, .. }) => Some(ballot),
            _ => None,
        })
        .expect("a pre-vote");
    c.node(id).step(
        NodeId(2),
        Message::PreVoteReply(PreVoteReply {
            ballot: asked,
            ok: true,
            promised: Ballot::ZERO,
            decided: 0,
        }),
    );
    assert_eq!(c.nodes[&NodeId(id)].role(), Role::Candidate);
    c.drain(NodeId(id));
    asked
}

#[test]
fn a_large_promise_arrives_in_parts_and_counts_only_once_all_arrived() {
    let members: Vec<_> = (1..=3).map(member).collect();
    let mut c = Cluster::new(0);
    for m in &members {
        let node = Node::bootstrap(small_messages(m.id.0), &members).expect("node");
        c.add(node);
    }
    acceptor_holding_a_large_report(&mut c);
    let ballot = candidate(&mut c, 3);
    c.node(2)
        .step(NodeId(3), Message::Prepare(Prepare { ballot }));
    let parts: Vec<Message> = c
        .drain(NodeId(2))
        .messages
        .into_iter()
        .filter(|o| o.to == NodeId(3))
        .map(|o| o.msg)
        .collect();
    assert!(parts.len() >= 5, "12 values of 400 bytes in parts of 1000");
    for p in &parts {
        let (bytes, _) = carried(p).expect("a promise");
        assert!(bytes <= MESSAGE_BYTES);
    }
    // Every part but one, in reverse order: node 3 has node 2's report
    // except one part, and must not lead on it.
    let (last, rest) = parts.split_first().expect("parts");
    for p in rest.iter().rev() {
        c.node(3).step(NodeId(2), p.clone());
        assert!(
            !c.nodes[&NodeId(3)].is_leader(),
            "a partial promise counted"
        );
    }
    c.node(3).step(NodeId(2), last.clone());
    assert!(c.nodes[&NodeId(3)].is_leader(), "the whole promise counts");
    // The new leader re-proposes all twelve reported values.
    c.sent.clear();
    c.drain(NodeId(3));
    let mut proposed: Vec<u64> = c
        .sent
        .iter()
        .filter(|(_, to, _)| *to == NodeId(2))
        .filter_map(|(_, _, m)| match m {
            Message::Accept(Accept { entries, .. }) => Some(
                entries
                    .iter()
                    .filter(|(_, e)| matches!(e, Entry::Commands(_)))
                    .map(|(s, _)| *s)
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    proposed.sort_unstable();
    assert_eq!(proposed, (1..=12).collect::<Vec<_>>());
    assert_within_bound(&c, "accept");
}

#[test]
fn catch_up_replies_are_bounded_by_the_message_bound() {
    let mut c = Cluster::with_config(3, small_messages);
    let leader = c.elect();
    let lagging = *c.nodes.keys().find(|id| **id != leader).expect("follower");
    c.isolated.insert(lagging);
    for i in 0..30 {
        c.nodes
            .get_mut(&leader)
            .expect("leader")
            .propose(command(i, 250))
            .expect("leader accepts");
        c.deliver();
    }
    c.run_until(50, |c| c.executed(leader).len() == 30);
    c.isolated.clear();
    c.sent.clear();
    c.run_until(200, |c| c.executed(lagging).len() == 30);
    let replies = assert_within_bound(&c, "catchup_reply");
    assert!(replies > 0, "the lagging node caught up by log");
}
