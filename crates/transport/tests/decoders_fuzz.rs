//! Fuzzing every decoder of the transport on stable Rust (`proptest`):
//! arbitrary bytes, arbitrary bytes inside a well-formed frame, and
//! well-typed messages (which must round-trip) mutated by flips and cuts,
//! into the frame codec (`MsgpackCodec`) and the frame reader
//! (`FrameReader`) for every message type that crosses the wire: client,
//! replica and peer frames, the handshake's `Hello`, `HelloReply` and
//! `HelloProof`, and the admin requests and replies. None may panic, and a
//! length a frame or a msgpack value claims is checked before anything that
//! size is allocated (a frame claiming 4 GiB is refused at its first 4
//! bytes; the process's peak memory is checked too).
//!
//! Each property runs `PROPTEST_CASES` cases (256 by default, well under a
//! second each); a longer run: `PROPTEST_CASES=100000 cargo test --release
//! -p concoord-transport --test decoders_fuzz`.

use bytes::BytesMut;
use concoord_transport::byte_budget::ByteBudget;
use concoord_transport::frame_io::FrameReader;
use concoord_transport::wire::{
    AdminReply, AdminRequest, CLIENT_FRAME_BYTES_MAX, CallRequest, ClientFrame, Hello, HelloProof,
    HelloReply, PEER_FRAME_BYTES_MAX, PeerFrame, ReplicaFrame, Role, SessionTicket,
};
use concoord_transport::{InstanceId, MsgpackCodec};
use paxos_core::{Member, NodeId};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;
use tokio_util::codec::{Decoder, Encoder};

/// The handshake's frame limit (`handshake::HELLO_BYTES_MAX`).
const HELLO_BYTES_MAX: usize = 4096;

fn config() -> ProptestConfig {
    // Cases from PROPTEST_CASES (default 256); no files written on failure:
    // a failing case is printed, and goes into a regression test by hand.
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Decodes frames from `bytes` until the codec wants more or refuses.
fn decode_all<T: DeserializeOwned>(bytes: &[u8], max_frame_bytes: usize) -> Vec<T> {
    let mut codec: MsgpackCodec<T, ()> = MsgpackCodec::new(max_frame_bytes);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Ok(Some(v)) = codec.decode(&mut buf) {
        out.push(v);
    }
    out
}

/// Every message type a connection decodes, with its frame limit.
fn decode_as_everything(bytes: &[u8]) {
    decode_all::<ClientFrame>(bytes, CLIENT_FRAME_BYTES_MAX);
    decode_all::<ReplicaFrame>(bytes, CLIENT_FRAME_BYTES_MAX);
    decode_all::<PeerFrame>(bytes, PEER_FRAME_BYTES_MAX);
    decode_all::<Hello>(bytes, HELLO_BYTES_MAX);
    decode_all::<HelloReply>(bytes, HELLO_BYTES_MAX);
    decode_all::<HelloProof>(bytes, HELLO_BYTES_MAX);
    decode_all::<AdminRequest>(bytes, CLIENT_FRAME_BYTES_MAX);
    decode_all::<AdminReply>(bytes, CLIENT_FRAME_BYTES_MAX);
}

/// `body` behind a length prefix that tells its true length.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn encode<T: Serialize>(value: T, max: usize) -> Vec<u8> {
    let mut codec: MsgpackCodec<(), T> = MsgpackCodec::new(max);
    let mut buf = BytesMut::new();
    codec
        .encode(value, &mut buf)
        .expect("a well-typed value encodes");
    buf.to_vec()
}

/// A value survives a frame, and every flip or cut of it decodes or is
/// refused without a panic.
fn round_trip_then_mutate<T>(value: T, max: usize, flip: (usize, u8), cut: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug + Clone,
{
    let bytes = encode(value.clone(), max);
    assert_eq!(decode_all::<T>(&bytes, max), vec![value]);
    let mut flipped = bytes.clone();
    let i = flip.0 % flipped.len();
    flipped[i] ^= flip.1.max(1);
    decode_as_everything(&flipped);
    decode_as_everything(&bytes[..cut % bytes.len()]);
}

fn node() -> impl Strategy<Value = NodeId> {
    any::<u64>().prop_map(NodeId)
}

fn ticket() -> impl Strategy<Value = SessionTicket> {
    (
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(id, issued_ms, secret)| SessionTicket {
            id,
            issued_ms,
            secret,
        })
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        (node(), ".{0,40}").prop_map(|(node, addr)| Role::Replica { node, addr }),
        prop::option::of(ticket()).prop_map(|session| Role::Client { session }),
        Just(Role::Operator),
    ]
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        any::<[u8; 4]>(),
        any::<u16>(),
        role(),
        prop::option::of(".{0,40}"),
        prop::collection::vec(any::<u8>(), 0..40),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(magic, version, role, token, nonce, instance)| Hello {
            magic,
            version,
            role,
            token,
            nonce,
            instance: instance.map(InstanceId),
        })
}

fn hello_reply() -> impl Strategy<Value = HelloReply> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        (
            node(),
            prop::option::of(ticket()),
            prop::option::of(any::<u64>())
        )
            .prop_map(|(node, session, instance)| HelloReply::Welcome {
                node,
                session,
                instance: instance.map(InstanceId),
            }),
        (node(), bytes(), bytes()).prop_map(|(node, nonce, proof)| HelloReply::Challenge {
            node,
            nonce,
            proof
        }),
        ".{0,80}".prop_map(|reason| HelloReply::Rejected { reason }),
    ]
}

fn call() -> impl Strategy<Value = CallRequest> {
    (
        any::<u64>(),
        any::<u64>(),
        ".{0,24}",
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec((any::<u64>(), any::<u64>()), 0..4),
    )
        .prop_map(|(seq, acked, method, args, done)| CallRequest {
            seq,
            acked,
            method,
            args,
            done,
        })
}

fn admin_request() -> impl Strategy<Value = AdminRequest> {
    prop_oneof![
        Just(AdminRequest::Status),
        Just(AdminRequest::StatusWithDigest),
        (node(), ".{0,30}").prop_map(|(id, addr)| AdminRequest::Join {
            member: Member { id, addr }
        }),
        node().prop_map(|node| AdminRequest::Remove { node }),
        Just(AdminRequest::Shutdown),
    ]
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        call().prop_map(ClientFrame::Call),
        prop::collection::vec(call(), 0..4).prop_map(ClientFrame::Batch),
        (any::<u64>(), admin_request())
            .prop_map(|(id, request)| ClientFrame::Admin { id, request }),
        Just(ClientFrame::KeepAlive),
    ]
}

fn replica_frame() -> impl Strategy<Value = ReplicaFrame> {
    prop_oneof![
        (any::<u64>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(seq, v)| {
            ReplicaFrame::Reply {
                seq,
                outcome: Ok(serde_bytes::ByteBuf::from(v)),
            }
        }),
        prop::collection::vec(".{0,20}", 0..5).prop_map(|members| ReplicaFrame::View { members }),
        (any::<u64>(), ".{0,40}").prop_map(|(id, e)| ReplicaFrame::Admin {
            id,
            reply: AdminReply::Error(e)
        }),
        any::<u64>().prop_map(|seq| ReplicaFrame::Blocked { seq }),
        prop::option::of(".{0,20}").prop_map(|leader| ReplicaFrame::Alive { leader }),
    ]
}

/// Reads frames with `FrameReader` until the end, an error or `limit`.
fn read_all_frames<T: DeserializeOwned + Send + 'static>(bytes: &[u8], max_frame_bytes: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // The budget holds any frame the limit admits, so it never waits.
        let budget = ByteBudget::new(max_frame_bytes.max(1) * 2);
        let mut reader = FrameReader::new(BytesMut::new(), bytes, max_frame_bytes);
        for _ in 0..=bytes.len() {
            match reader.next::<T>(&budget, Duration::from_secs(1)).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    });
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        decode_as_everything(&bytes);
    }

    #[test]
    fn arbitrary_bytes_in_a_well_formed_frame_never_panic_a_decoder(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..256), 1..4),
    ) {
        let bytes: Vec<u8> = bodies.iter().flat_map(|b| framed(b)).collect();
        decode_as_everything(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_frame_reader(
        bytes in prop::collection::vec(any::<u8>(), 0..1024),
        framed_body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        read_all_frames::<ClientFrame>(&bytes, CLIENT_FRAME_BYTES_MAX);
        read_all_frames::<PeerFrame>(&framed(&framed_body), PEER_FRAME_BYTES_MAX);
        read_all_frames::<Hello>(&framed(&framed_body), HELLO_BYTES_MAX);
    }

    #[test]
    fn handshake_messages_round_trip_and_survive_mutation(
        h in hello(), r in hello_reply(), proof in prop::collection::vec(any::<u8>(), 0..40),
        flip in (any::<usize>(), any::<u8>()), cut in any::<usize>(),
    ) {
        round_trip_then_mutate(h, HELLO_BYTES_MAX, flip, cut);
        round_trip_then_mutate(r, HELLO_BYTES_MAX, flip, cut);
        round_trip_then_mutate(HelloProof { proof }, HELLO_BYTES_MAX, flip, cut);
    }

    #[test]
    fn client_and_admin_frames_round_trip_and_survive_mutation(
        c in client_frame(), r in replica_frame(),
        flip in (any::<usize>(), any::<u8>()), cut in any::<usize>(),
    ) {
        round_trip_then_mutate(c, CLIENT_FRAME_BYTES_MAX, flip, cut);
        round_trip_then_mutate(r, CLIENT_FRAME_BYTES_MAX, flip, cut);
    }

    #[test]
    fn a_claimed_frame_length_above_the_limit_is_refused_at_once(
        claimed in (HELLO_BYTES_MAX as u32 + 1)..=u32::MAX, tail in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = claimed.to_be_bytes().to_vec();
        bytes.extend_from_slice(&tail);
        let mut codec: MsgpackCodec<Hello, ()> = MsgpackCodec::new(HELLO_BYTES_MAX);
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert!(codec.decode(&mut buf).is_err());
    }
}

/// Peak resident memory of this process, in bytes (Linux), if known.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// msgpack headers claiming the most elements or bytes their kind allows
/// (array32, map32, str32, bin32), with almost nothing behind them.
const CLAIMS: [&[u8]; 4] = [
    &[0xdd, 0xff, 0xff, 0xff, 0xff, 0x01],
    &[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02],
    &[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'],
    &[0xc6, 0xff, 0xff, 0xff, 0xff, 0x00],
];

#[test]
fn claimed_lengths_are_checked_before_anything_that_size_is_allocated() {
    let before = peak_rss_bytes();
    // Frames claiming up to 4 GiB, refused at their first 4 bytes.
    for limit in [
        HELLO_BYTES_MAX,
        CLIENT_FRAME_BYTES_MAX,
        PEER_FRAME_BYTES_MAX,
    ] {
        let mut codec: MsgpackCodec<ClientFrame, ()> = MsgpackCodec::new(limit);
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(
            codec.decode(&mut buf).is_err(),
            "a 4 GiB frame under a {limit} limit"
        );
        read_all_frames::<ClientFrame>(&u32::MAX.to_be_bytes(), limit);
    }
    // Values claiming 4 G elements or bytes, in small frames, at every
    // place of every message type.
    for claim in CLAIMS {
        for prefix in [
            &[][..],
            &[0x91][..],
            &[0x92, 0x00][..],
            &[0x81, 0x00][..],
            &[0x93, 0xa1, b'x'][..],
        ] {
            let mut body = prefix.to_vec();
            body.extend_from_slice(claim);
            decode_as_everything(&framed(&body));
            read_all_frames::<ReplicaFrame>(&framed(&body), CLIENT_FRAME_BYTES_MAX);
        }
    }
    if let (Some(before), Some(after)) = (before, peak_rss_bytes()) {
        // Any allocation of a claimed length would be gigabytes.
        assert!(
            after.saturating_sub(before) < 64 << 20,
            "peak memory grew by {} bytes decoding small hostile frames",
            after - before
        );
    }
}
