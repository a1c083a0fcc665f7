//! Schedules and inputs an adversarial review of the exactly-once / session
//! layer built against its invariants (at most once, replies kept until the
//! client has them, bounded per session whatever a client sends, sessions
//! that do not end one another, honest outcomes); each failed before its fix.

use concoord_object::{CONCOORD_CLOSE, CONCOORD_EXPIRE, args};
use concoord_objects::Counter;
use concoord_replica::logged_call::LoggedCall;
use concoord_replica::replicated_state::{Answer, ReplicatedState, SYSTEM_CLIENT};
use concoord_replica::sessions::{
    Admission, CallIdentity, ENDED_SESSIONS_REMEMBERED, IN_FLIGHT_PER_CLIENT_MAX, SessionTable,
};
use concoord_transport::wire::{CLIENT_FRAME_BYTES_MAX, CallError, CallRequest, ClientFrame};
use std::time::Instant;

const ISSUED: u64 = 1_000;

fn logged(client: u64, seq: u64, acked: u64, done: Vec<(u64, u64)>, method: &str) -> LoggedCall {
    LoggedCall {
        client_id: client,
        issued_ms: ISSUED,
        seq,
        acked,
        done,
        method: method.into(),
        args: vec![0x90],
    }
}

fn value(state: &ReplicatedState<Counter>) -> i64 {
    let bytes = state.query("getvalue", &[0x90]).expect("read works");
    rmp_serde::from_slice(&bytes).expect("an integer")
}

fn expire(client: u64) -> LoggedCall {
    LoggedCall {
        client_id: SYSTEM_CLIENT,
        issued_ms: 0,
        seq: 0,
        acked: 0,
        done: Vec::new(),
        method: CONCOORD_EXPIRE.into(),
        args: args::encode(&(vec![client],)).expect("encodes"),
    }
}

/// Invariant 5 (replica side of the client finding): copy A of call (1, 1)
/// runs and its reply is lost with the leader; the session expires while the
/// client is cut off; the client's retry (copy B, same seq) is answered
/// `SessionExpired`, which the client reports as "did not run". The call did
/// run. This test documents the replica's answer (it passes: the replica
/// cannot know better); the failing half is the client's test
/// `crates/client/tests/session_review.rs`.
#[test]
fn a_retry_of_a_call_that_ran_before_its_session_expired_is_answered_session_expired() {
    let mut s = ReplicatedState::<Counter>::default();
    let call = logged(1, 1, 0, Vec::new(), "increment");
    assert!(matches!(
        s.execute(&call).answer,
        Some(Answer::Reply(Ok(_)))
    ));
    s.execute(&expire(1));
    let retry = s.execute(&call).answer;
    assert_eq!(retry, Some(Answer::Reply(Err(CallError::SessionExpired))));
    assert_eq!(value(&s), 1, "yet the call ran");
}

/// Invariant 5 (table side): `TooManyInFlight` is not recorded, so it is not
/// a final answer: copy A of call 4097 is refused, the client's next
/// pipelined call acknowledges its replies, and copy B of the same call
/// (a retry after an attempt timeout, proposed again) then runs. The client
/// therefore retries the same call rather than report "did not run"
/// (`crates/client/tests/session_review.rs`).
#[test]
fn a_call_refused_too_many_in_flight_is_not_final_and_may_run_from_a_later_copy() {
    let mut s = ReplicatedState::<Counter>::default();
    for seq in 1..=IN_FLIGHT_PER_CLIENT_MAX {
        s.execute(&logged(1, seq, 0, Vec::new(), "increment"));
    }
    let n = IN_FLIGHT_PER_CLIENT_MAX + 1;
    let copy = logged(1, n, 0, Vec::new(), "increment");
    let first = s.execute(&copy).answer;
    assert!(
        matches!(
            first,
            Some(Answer::Reply(Err(CallError::TooManyInFlight { .. })))
        ),
        "{first:?}"
    );
    s.execute(&logged(1, n + 1, n - 1, Vec::new(), "increment"));
    let after_other = value(&s);
    let second = s.execute(&copy).answer;
    assert!(matches!(second, Some(Answer::Reply(Ok(_)))), "{second:?}");
    assert_eq!(value(&s), after_other + 1, "the later copy ran, once");
    let again = s.execute(&copy).answer;
    assert!(matches!(again, Some(Answer::Reply(Ok(_)))), "{again:?}");
    assert_eq!(value(&s), after_other + 1, "and never twice");
}

fn disjoint_ranges(from: u64, count: u64) -> Vec<(u64, u64)> {
    (0..count).map(|i| (from + 2 * i, from + 2 * i)).collect()
}

/// Invariant 4 (memory): the `done` ranges a session keeps are bounded
/// whatever its calls carry (they used to be merged without a bound, by
/// every call, admitted or not, and copied into every snapshot).
#[test]
fn the_done_ranges_a_session_keeps_are_bounded() {
    let mut t = SessionTable::default();
    let empty = rmp_serde::to_vec(&t).expect("encodes").len();
    // 40 calls, each with 20 000 new disjoint ranges: far more than a
    // session may keep, however they arrive.
    for (seq, round) in (1..).zip(0..40u64) {
        let done = disjoint_ranges(1_000 + round * 1_000_000, 20_000);
        let call = CallIdentity {
            client: 1,
            issued_ms: ISSUED,
            seq,
            acked: 0,
            done: &done,
        };
        let (adm, _) = t.admit(&call);
        if adm == Admission::Fresh {
            t.record(1, seq, Ok(vec![]));
        }
    }
    let bytes = rmp_serde::to_vec(&t).expect("encodes").len() - empty;
    // 1 024 ranges of two u64 cost at most ~19 KiB encoded; allow 64 KiB.
    assert!(
        bytes <= 64 * 1024,
        "the table holds {bytes} bytes of done ranges for one session"
    );
}

/// Invariant 4 (CPU, every replica at once): absorbing `n` ascending
/// disjoint ranges scans every range already held for each new one, so one
/// logged call costs O(n²) on every replica in the same slot. A 16 MiB client
/// frame holds over a million ranges (printed): hours of stall for the whole
/// instance. 20 000 ranges should take milliseconds.
#[test]
fn absorbing_many_done_ranges_is_not_quadratic() {
    let big = CallRequest {
        seq: 1,
        acked: 0,
        method: "increment".into(),
        args: vec![0x90],
        done: disjoint_ranges(1, 1_000_000),
    };
    let size = rmp_serde::to_vec(&ClientFrame::Call(big))
        .expect("encodes")
        .len();
    eprintln!(
        "a Call frame with 1 000 000 done ranges is {size} bytes (client frames may be {CLIENT_FRAME_BYTES_MAX})"
    );
    let mut s = ReplicatedState::<Counter>::default();
    let call = logged(1, 1, 0, disjoint_ranges(10, 20_000), "increment");
    let start = Instant::now();
    s.execute(&call);
    let took = start.elapsed();
    eprintln!("executing one call with 20 000 done ranges took {took:?}");
    assert!(
        took.as_millis() < 300,
        "one call with 20 000 done ranges took {took:?} on every replica"
    );
}

/// Invariant 4 (one session affects another): session B (issued at t=2 000)
/// connected and has not called yet. 65 536 sessions issued after B end,
/// then one issued before B. The table must forget one: it forgets the one
/// issued earliest, so its floor stays below B and B's first call runs.
/// (Had it forgotten the oldest to end, the floor would have passed B.)
#[test]
fn other_sessions_closing_do_not_end_a_session_issued_before_them() {
    let mut s = ReplicatedState::<Counter>::default();
    let b_issued = 2_000;
    for c in 0..(ENDED_SESSIONS_REMEMBERED as u64) {
        let mut close = logged(10 + c, 1, 0, Vec::new(), CONCOORD_CLOSE);
        close.issued_ms = b_issued + 1;
        s.execute(&close);
    }
    let mut old = logged(5, 1, 0, Vec::new(), CONCOORD_CLOSE);
    old.issued_ms = b_issued - 500;
    s.execute(&old);
    assert_eq!(s.sessions.sessions_not_before_ms(), b_issued - 500 + 1);
    let mut first = logged(7, 1, 0, Vec::new(), "increment");
    first.issued_ms = b_issued;
    let answer = s.execute(&first).answer;
    assert!(
        matches!(answer, Some(Answer::Reply(Ok(_)))),
        "session 7's first call was refused because of other sessions: {answer:?}"
    );
    // The forgotten session itself is still refused.
    let mut late = logged(5, 2, 0, Vec::new(), "increment");
    late.issued_ms = b_issued - 500;
    let answer = s.execute(&late).answer;
    assert_eq!(answer, Some(Answer::Reply(Err(CallError::SessionExpired))));
}
