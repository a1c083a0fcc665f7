//! Wrapping each `Message` variant's fields in a struct of its own did not
//! change a byte on the wire: a newtype variant around a struct encodes in
//! msgpack (`rmp_serde::to_vec`, what the transport uses) exactly as the
//! struct variant it replaced, so replicas before and after the change
//! understand each other and `PROTOCOL_VERSION` stays. `WireBefore` is the
//! enum as it was; every variant is encoded both ways and decoded across.

use paxos_core::message::{
    Accept, Accepted, CatchupReply, CatchupRequest, Heartbeat, HeartbeatAck, PreVote, PreVoteReply,
    Prepare, Promise, SnapshotChunk, SnapshotRequest,
};
use paxos_core::{
    AcceptedEntry, Ballot, Command, Entry, Member, Message, NodeId, Slot, ViewHistory,
};
use serde::{Deserialize, Serialize};

/// `paxos_core::Message` before its variants wrapped structs.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum WireBefore {
    PreVote {
        ballot: Ballot,
        decided: Slot,
    },
    PreVoteReply {
        ballot: Ballot,
        ok: bool,
        promised: Ballot,
        decided: Slot,
    },
    Prepare {
        ballot: Ballot,
    },
    Promise {
        ballot: Ballot,
        ok: bool,
        decided: Slot,
        accepted: Vec<AcceptedEntry>,
        first: Slot,
        last: Slot,
    },
    Accept {
        ballot: Ballot,
        entries: Vec<(Slot, Entry)>,
        commit: Slot,
    },
    Accepted {
        ballot: Ballot,
        ok: bool,
        slots: Vec<Slot>,
        decided: Slot,
    },
    Heartbeat {
        ballot: Ballot,
        commit: Slot,
        round: u64,
    },
    HeartbeatAck {
        ballot: Ballot,
        ok: bool,
        round: u64,
        decided: Slot,
    },
    CatchupRequest {
        from: Slot,
        need_views: bool,
    },
    CatchupReply {
        entries: Vec<(Slot, Entry)>,
        views: Option<ViewHistory>,
        commit: Slot,
    },
    SnapshotChunk {
        slot: Slot,
        views: ViewHistory,
        total_bytes: u64,
        digest: u64,
        offset: u64,
        stream_end: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        commit: Slot,
    },
    SnapshotRequest {
        slot: Slot,
        offset: u64,
    },
}

fn ballot() -> Ballot {
    Ballot {
        round: 7,
        leader: NodeId(3),
    }
}

fn entries() -> Vec<(Slot, Entry)> {
    vec![
        (4, Entry::Noop),
        (5, Entry::Commands(vec![Command(b"set x 1".to_vec())])),
    ]
}

fn views() -> ViewHistory {
    ViewHistory::genesis(&[Member {
        id: NodeId(1),
        addr: "127.0.0.1:14001".into(),
    }])
}

/// The same message in both shapes, one per variant.
fn pairs() -> Vec<(Message, WireBefore)> {
    let accepted = vec![AcceptedEntry {
        slot: 9,
        ballot: ballot(),
        entry: Entry::Noop,
    }];
    vec![
        (
            PreVote {
                ballot: ballot(),
                decided: 2,
            }
            .into(),
            WireBefore::PreVote {
                ballot: ballot(),
                decided: 2,
            },
        ),
        (
            PreVoteReply {
                ballot: ballot(),
                ok: true,
                promised: Ballot::ZERO,
                decided: 2,
            }
            .into(),
            WireBefore::PreVoteReply {
                ballot: ballot(),
                ok: true,
                promised: Ballot::ZERO,
                decided: 2,
            },
        ),
        (
            Prepare { ballot: ballot() }.into(),
            WireBefore::Prepare { ballot: ballot() },
        ),
        (
            Promise {
                ballot: ballot(),
                ok: true,
                decided: 8,
                accepted: accepted.clone(),
                first: 9,
                last: 12,
            }
            .into(),
            WireBefore::Promise {
                ballot: ballot(),
                ok: true,
                decided: 8,
                accepted,
                first: 9,
                last: 12,
            },
        ),
        (
            Accept {
                ballot: ballot(),
                entries: entries(),
                commit: 3,
            }
            .into(),
            WireBefore::Accept {
                ballot: ballot(),
                entries: entries(),
                commit: 3,
            },
        ),
        (
            Accepted {
                ballot: ballot(),
                ok: false,
                slots: vec![4, 5],
                decided: 3,
            }
            .into(),
            WireBefore::Accepted {
                ballot: ballot(),
                ok: false,
                slots: vec![4, 5],
                decided: 3,
            },
        ),
        (
            Heartbeat {
                ballot: ballot(),
                commit: 3,
                round: 1,
            }
            .into(),
            WireBefore::Heartbeat {
                ballot: ballot(),
                commit: 3,
                round: 1,
            },
        ),
        (
            HeartbeatAck {
                ballot: ballot(),
                ok: true,
                round: 1,
                decided: 3,
            }
            .into(),
            WireBefore::HeartbeatAck {
                ballot: ballot(),
                ok: true,
                round: 1,
                decided: 3,
            },
        ),
        (
            CatchupRequest {
                from: 4,
                need_views: true,
            }
            .into(),
            WireBefore::CatchupRequest {
                from: 4,
                need_views: true,
            },
        ),
        (
            CatchupReply {
                entries: entries(),
                views: Some(views()),
                commit: 5,
            }
            .into(),
            WireBefore::CatchupReply {
                entries: entries(),
                views: Some(views()),
                commit: 5,
            },
        ),
        (
            SnapshotChunk {
                slot: 5,
                views: views(),
                total_bytes: 10,
                digest: 0xfeed,
                offset: 0,
                stream_end: 10,
                data: b"0123456789".to_vec(),
                commit: 5,
            }
            .into(),
            WireBefore::SnapshotChunk {
                slot: 5,
                views: views(),
                total_bytes: 10,
                digest: 0xfeed,
                offset: 0,
                stream_end: 10,
                data: b"0123456789".to_vec(),
                commit: 5,
            },
        ),
        (
            SnapshotRequest { slot: 5, offset: 4 }.into(),
            WireBefore::SnapshotRequest { slot: 5, offset: 4 },
        ),
    ]
}

#[test]
fn every_variant_encodes_to_the_bytes_it_had_before_its_fields_became_a_struct() {
    for (now, before) in pairs() {
        let now_bytes = rmp_serde::to_vec(&now).expect("encodes");
        let before_bytes = rmp_serde::to_vec(&before).expect("encodes");
        assert_eq!(
            now_bytes,
            before_bytes,
            "{} changed on the wire",
            now.kind()
        );
        let decoded: Message = rmp_serde::from_slice(&before_bytes).expect("decodes");
        assert_eq!(decoded, now);
        let decoded: WireBefore = rmp_serde::from_slice(&now_bytes).expect("decodes");
        assert_eq!(decoded, before);
    }
}
