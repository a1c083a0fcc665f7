//! The state every replica holds identically: the object plus the exactly-once
//! table. Executes logged calls; a panic inside a method becomes an error reply
//! (the same on every replica) and the replica keeps serving.

use crate::logged_call::LoggedCall;
use crate::sessions::{Admission, CallIdentity, SessionTable, StoredReply};
use concoord_object::{
    CONCOORD_CANCEL, CONCOORD_CLOSE, CONCOORD_EXPIRE, CONCOORD_INIT, CallContext, MethodKind,
    ObjectError, ReplicatedObject, Waiter, args,
};
use concoord_transport::wire::CallError;
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Object + sessions.
pub struct ReplicatedState<O> {
    /// The replicated object.
    pub object: O,
    /// The exactly-once table.
    pub sessions: SessionTable,
}

#[derive(Serialize, Deserialize)]
struct SnapshotImage {
    #[serde(with = "serde_bytes")]
    object: Vec<u8>,
    sessions: SessionTable,
}

impl SnapshotImage {
    fn encode(object: Vec<u8>, sessions: SessionTable) -> Result<Vec<u8>, ObjectError> {
        rmp_serde::to_vec(&SnapshotImage { object, sessions })
            .map_err(|e| ObjectError::State(e.to_string()))
    }
}

impl<O: ReplicatedObject> Default for ReplicatedState<O> {
    fn default() -> Self {
        ReplicatedState {
            object: O::default(),
            sessions: SessionTable::default(),
        }
    }
}

/// Maps an object error to what the client sees.
pub fn call_error<O: ReplicatedObject>(e: ObjectError) -> CallError {
    match e {
        ObjectError::UnknownMethod { method } => unknown_method::<O>(&method),
        ObjectError::BadArguments { method, detail } => CallError::BadArguments { method, detail },
        ObjectError::Application(bytes) => CallError::Application(bytes),
        ObjectError::State(detail) => CallError::Panicked(detail),
    }
}

/// `UnknownMethod` listing the object's methods.
pub fn unknown_method<O: ReplicatedObject>(method: &str) -> CallError {
    let mut known: Vec<String> = O::methods().iter().map(|(m, _)| m.to_string()).collect();
    known.push(CONCOORD_INIT.to_string());
    CallError::UnknownMethod {
        method: method.to_string(),
        known,
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic with a non-string payload".into())
}

/// Client id of the calls ConCoord logs itself (session expiry).
pub const SYSTEM_CLIENT: u64 = 0;

/// What the caller of an executed call is told now.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The reply.
    Reply(StoredReply),
    /// The call is blocked inside the object; its reply comes with a wake-up.
    Blocked,
}

/// Blocked calls completed, with their replies.
pub type Woken = Vec<(Waiter, StoredReply)>;

/// The outcome of executing one logged call.
#[derive(Debug, Default, PartialEq)]
pub struct Executed {
    /// For the caller (`None`: nobody to answer).
    pub answer: Option<Answer>,
    /// Blocked calls this one completed, with their replies.
    pub woken: Woken,
}

impl<O: ReplicatedObject> ReplicatedState<O> {
    /// Runs a decided call: what to tell its caller, and which blocked calls
    /// it woke.
    pub fn execute(&mut self, call: &LoggedCall) -> Executed {
        let mut ctx = CallContext::new(call.client_id, call.seq);
        let mut out = Executed::default();
        if call.client_id == SYSTEM_CLIENT {
            if call.method == CONCOORD_EXPIRE
                && let Ok((clients,)) = args::decode::<(Vec<u64>,)>(CONCOORD_EXPIRE, &call.args)
            {
                for client in clients {
                    self.end_session(&mut ctx, client);
                }
            }
            self.collect_wakeups(&mut ctx, &mut out.woken);
            return out;
        }
        let (admission, abandoned) = self.sessions.admit(&CallIdentity {
            client: call.client_id,
            issued_ms: call.issued_ms,
            seq: call.seq,
            acked: call.acked,
            done: &call.done,
        });
        ctx.set_abandoning(true);
        for waiter in abandoned {
            self.cancel(&mut ctx, waiter, &mut out.woken);
        }
        ctx.set_abandoning(false);
        out.answer = match admission {
            Admission::Stale => None,
            Admission::Duplicate(reply) => Some(Answer::Reply(reply)),
            Admission::StillBlocked => Some(Answer::Blocked),
            Admission::Ended => Some(Answer::Reply(Err(CallError::SessionExpired))),
            Admission::TooManyInFlight => Some(Answer::Reply(Err(CallError::TooManyInFlight {
                limit: crate::sessions::IN_FLIGHT_PER_CLIENT_MAX,
            }))),
            Admission::Fresh if call.method == CONCOORD_CLOSE => {
                self.end_session(&mut ctx, call.client_id);
                Some(Answer::Reply(
                    concoord_object::reply(&()).map_err(call_error::<O>),
                ))
            }
            Admission::Fresh => {
                let reply = if call.method == CONCOORD_CANCEL {
                    self.cancel_call(&mut ctx, call, &mut out.woken)
                } else {
                    self.run(&mut ctx, call, &mut out.woken)
                };
                if ctx.is_blocked() && reply.is_ok() {
                    self.sessions.block(call.client_id, call.seq);
                    Some(Answer::Blocked)
                } else {
                    self.sessions
                        .record(call.client_id, call.seq, reply.clone());
                    Some(Answer::Reply(reply))
                }
            }
        };
        self.collect_wakeups(&mut ctx, &mut out.woken);
        out
    }

    /// `__concoord_cancel__(seq)`: gives up the caller's blocked call `seq`.
    fn cancel_call(
        &mut self,
        ctx: &mut CallContext,
        call: &LoggedCall,
        woken: &mut Woken,
    ) -> StoredReply {
        let (seq,): (u64,) = args::decode(CONCOORD_CANCEL, &call.args).map_err(call_error::<O>)?;
        let waiter = Waiter {
            client_id: call.client_id,
            seq,
        };
        let was_blocked = self.sessions.is_blocked(waiter);
        if was_blocked {
            self.cancel(ctx, waiter, woken);
        }
        concoord_object::reply(&was_blocked).map_err(call_error::<O>)
    }

    /// Takes a blocked call out of the object; unless the object will wake it
    /// itself, it is answered `WaitTimedOut`.
    fn cancel(&mut self, ctx: &mut CallContext, waiter: Waiter, woken: &mut Woken) {
        let object = &mut self.object;
        let deferred =
            catch_unwind(AssertUnwindSafe(|| object.cancel_wait(ctx, waiter))).unwrap_or(false);
        if !deferred && self.sessions.is_blocked(waiter) {
            let reply = Err(CallError::WaitTimedOut);
            self.sessions
                .record(waiter.client_id, waiter.seq, reply.clone());
            woken.push((waiter, reply));
        }
    }

    /// Ends a session: the object releases what the client held, then the
    /// session's entries are freed.
    fn end_session(&mut self, ctx: &mut CallContext, client: u64) {
        let object = &mut self.object;
        let _ = catch_unwind(AssertUnwindSafe(|| object.session_expired(ctx, client)));
        self.sessions.end(client);
    }

    /// Turns the object's wake-ups into replies for blocked calls (a wake-up
    /// of a call that is not blocked, e.g. one its client gave up, is
    /// dropped).
    fn collect_wakeups(&mut self, ctx: &mut CallContext, woken: &mut Woken) {
        for (waiter, reply) in ctx.take_wakeups() {
            if !self.sessions.is_blocked(waiter) {
                continue;
            }
            let reply = reply.map_err(call_error::<O>);
            self.sessions
                .record(waiter.client_id, waiter.seq, reply.clone());
            woken.push((waiter, reply));
        }
    }

    fn run(&mut self, ctx: &mut CallContext, call: &LoggedCall, woken: &mut Woken) -> StoredReply {
        if call.method == CONCOORD_INIT {
            let mut fresh = catch_unwind(|| O::init(&call.args))
                .map_err(|p| CallError::Panicked(panic_message(p)))?
                .map_err(call_error::<O>)?;
            // What must outlive re-initialisation (a lock's fencing tokens)
            // goes over to the fresh object, which may also refuse.
            let object = &self.object;
            catch_unwind(AssertUnwindSafe(|| object.carry_over(&mut fresh)))
                .map_err(|p| CallError::Panicked(panic_message(p)))?
                .map_err(call_error::<O>)?;
            self.object = fresh;
            // The old object's wait queues are gone: nobody will wake its
            // blocked calls, so they are answered now.
            for waiter in self.sessions.blocked() {
                let reply = Err(CallError::WaitAbandoned {
                    reason: "the object was re-initialised".into(),
                });
                self.sessions
                    .record(waiter.client_id, waiter.seq, reply.clone());
                woken.push((waiter, reply));
            }
            return concoord_object::reply(&()).map_err(call_error::<O>);
        }
        let object = &mut self.object;
        let outcome = match O::method_kind(&call.method) {
            None => return Err(unknown_method::<O>(&call.method)),
            Some(MethodKind::Write) => catch_unwind(AssertUnwindSafe(|| {
                object.apply(ctx, &call.method, &call.args)
            })),
            Some(MethodKind::Read) => {
                catch_unwind(AssertUnwindSafe(|| object.query(&call.method, &call.args)))
            }
        };
        match outcome {
            Ok(result) => result.map_err(call_error::<O>),
            Err(panic) => Err(CallError::Panicked(panic_message(panic))),
        }
    }

    /// Runs a read method against the current state.
    pub fn query(&self, method: &str, args: &[u8]) -> StoredReply {
        let object = &self.object;
        match catch_unwind(AssertUnwindSafe(|| object.query(method, args))) {
            Ok(result) => result.map_err(call_error::<O>),
            Err(panic) => Err(CallError::Panicked(panic_message(panic))),
        }
    }

    /// A digest of the state, equal on replicas that executed the same slots.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.snapshot().unwrap_or_default().hash(&mut h);
        h.finish()
    }

    /// The state as snapshot bytes.
    pub fn snapshot(&self) -> Result<Vec<u8>, ObjectError> {
        SnapshotImage::encode(self.object.snapshot()?, self.sessions.clone())
    }

    /// A copy of the state to snapshot on another thread, if the object can
    /// detach one ([`ReplicatedObject::detached_snapshot`]); the session
    /// table (small: one entry per client) is copied here. The bytes are
    /// those [`snapshot`](Self::snapshot) gives now.
    pub fn detached_snapshot(
        &self,
    ) -> Option<impl FnOnce() -> Result<Vec<u8>, ObjectError> + Send + 'static> {
        let object = self.object.detached_snapshot()?;
        let sessions = self.sessions.clone();
        Some(move || SnapshotImage::encode(object()?, sessions))
    }

    /// The state from snapshot bytes.
    pub fn restore(bytes: &[u8]) -> Result<Self, ObjectError> {
        let image: SnapshotImage =
            rmp_serde::from_slice(bytes).map_err(|e| ObjectError::State(e.to_string()))?;
        Ok(ReplicatedState {
            object: O::restore(&image.object)?,
            sessions: image.sessions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concoord_dsync::Lock;
    use concoord_objects::Counter;

    fn call(client: u64, seq: u64, method: &str) -> LoggedCall {
        LoggedCall {
            client_id: client,
            seq,
            acked: seq - 1,
            issued_ms: 1,
            done: Vec::new(),
            method: method.into(),
            args: vec![0x90],
        }
    }

    fn value(state: &ReplicatedState<Counter>) -> i64 {
        let bytes = state.query("getvalue", &[0x90]).expect("read works");
        rmp_serde::from_slice(&bytes).expect("an integer")
    }

    #[test]
    fn a_call_decided_twice_runs_once() {
        let mut s = ReplicatedState::<Counter>::default();
        let c = call(1, 1, "increment");
        assert!(s.execute(&c).answer.is_some());
        assert!(s.execute(&c).answer.is_some());
        assert_eq!(value(&s), 1);
    }

    #[test]
    fn unknown_methods_list_the_known_ones() {
        let mut s = ReplicatedState::<Counter>::default();
        let reply = s.execute(&call(1, 1, "explode")).answer;
        match reply {
            Some(Answer::Reply(Err(CallError::UnknownMethod { known, .. }))) => {
                assert!(known.contains(&"increment".to_string()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn concoord_init_resets_the_object() {
        let mut s = ReplicatedState::<Counter>::default();
        s.execute(&call(1, 1, "increment"));
        s.execute(&call(1, 2, CONCOORD_INIT));
        assert_eq!(value(&s), 0);
    }

    #[test]
    fn state_round_trips_through_a_snapshot() {
        let mut s = ReplicatedState::<Counter>::default();
        s.execute(&call(1, 1, "increment"));
        let restored =
            ReplicatedState::<Counter>::restore(&s.snapshot().expect("snapshot")).expect("restore");
        assert_eq!(value(&restored), 1);
        assert_eq!(restored.sessions, s.sessions);
    }

    fn lock_call(client: u64, seq: u64, acked: u64, method: &str) -> LoggedCall {
        LoggedCall {
            client_id: client,
            issued_ms: 1,
            seq,
            acked,
            done: Vec::new(),
            method: method.into(),
            args: vec![0x90],
        }
    }

    fn token(reply: &StoredReply) -> u64 {
        rmp_serde::from_slice(reply.as_ref().expect("a grant")).expect("a token")
    }

    #[test]
    fn a_blocked_call_is_woken_once_and_its_retry_gets_the_wake_up_reply() {
        let mut s = ReplicatedState::<Lock>::default();
        s.execute(&lock_call(1, 1, 0, "acquire"));
        let blocked = s.execute(&lock_call(2, 1, 0, "acquire"));
        assert_eq!(blocked.answer, Some(Answer::Blocked));
        let retried = s.execute(&lock_call(2, 1, 0, "acquire"));
        assert_eq!(
            retried.answer,
            Some(Answer::Blocked),
            "a retry is not blocked again, it waits"
        );
        assert!(retried.woken.is_empty());
        let released = s.execute(&lock_call(1, 2, 1, "release"));
        assert_eq!(released.woken.len(), 1);
        assert_eq!(token(&released.woken[0].1), 2);
        let after = s.execute(&lock_call(2, 1, 0, "acquire"));
        match after.answer {
            Some(Answer::Reply(r)) => assert_eq!(token(&r), 2),
            other => panic!("expected the wake-up reply, got {other:?}"),
        }
    }

    #[test]
    fn a_locks_fencing_tokens_keep_growing_across_concoord_init() {
        let mut s = ReplicatedState::<Lock>::default();
        let first = s.execute(&lock_call(1, 1, 0, "acquire"));
        assert!(matches!(first.answer, Some(Answer::Reply(ref r)) if token(r) == 1));
        let queued = s.execute(&lock_call(2, 1, 0, "acquire"));
        assert_eq!(queued.answer, Some(Answer::Blocked));
        let init = s.execute(&lock_call(3, 1, 0, CONCOORD_INIT));
        assert!(
            matches!(init.woken.as_slice(), [(w, Err(CallError::WaitAbandoned { .. }))] if w.client_id == 2),
            "the queued acquire is answered: {:?}",
            init.woken
        );
        assert!(!s.object.locked(), "re-initialised");
        match s.execute(&lock_call(4, 1, 0, "acquire")).answer {
            Some(Answer::Reply(r)) => assert!(token(&r) > 1, "fenced above every earlier grant"),
            other => panic!("expected a grant, got {other:?}"),
        }
        match s.execute(&lock_call(1, 2, 1, "release")).answer {
            Some(Answer::Reply(Err(CallError::Application(bytes)))) => {
                let e: concoord_dsync::LockError =
                    rmp_serde::from_slice(&bytes).expect("a lock error");
                assert_eq!(
                    e,
                    concoord_dsync::LockError::Revoked { token: 1 },
                    "the holder is told"
                );
            }
            other => panic!("expected the revocation, got {other:?}"),
        }
    }

    #[test]
    fn a_cancelled_wait_times_out_and_never_holds_the_lock() {
        let mut s = ReplicatedState::<Lock>::default();
        s.execute(&lock_call(1, 1, 0, "acquire"));
        s.execute(&lock_call(2, 1, 0, "acquire"));
        let cancel = LoggedCall {
            client_id: 2,
            seq: 2,
            acked: 0,
            issued_ms: 1,
            done: Vec::new(),
            method: CONCOORD_CANCEL.into(),
            args: args::encode(&(1u64,)).expect("encodes"),
        };
        let out = s.execute(&cancel);
        assert_eq!(
            out.woken,
            vec![(
                Waiter {
                    client_id: 2,
                    seq: 1
                },
                Err(CallError::WaitTimedOut)
            )]
        );
        let released = s.execute(&lock_call(1, 2, 1, "release"));
        assert!(
            released.woken.is_empty(),
            "the cancelled waiter is not granted"
        );
        assert!(!s.object.locked());
    }

    #[test]
    fn an_expired_session_releases_its_lock_and_refuses_its_calls() {
        let mut s = ReplicatedState::<Lock>::default();
        s.execute(&lock_call(1, 1, 0, "acquire"));
        s.execute(&lock_call(2, 1, 0, "acquire"));
        let expire = LoggedCall {
            client_id: SYSTEM_CLIENT,
            seq: 0,
            acked: 0,
            issued_ms: 1,
            done: Vec::new(),
            method: CONCOORD_EXPIRE.into(),
            args: args::encode(&(vec![1u64],)).expect("encodes"),
        };
        let out = s.execute(&expire);
        assert_eq!(out.woken.len(), 1);
        assert_eq!(
            token(&out.woken[0].1),
            2,
            "the next waiter gets a higher token"
        );
        let late = s.execute(&lock_call(1, 2, 1, "release"));
        assert_eq!(
            late.answer,
            Some(Answer::Reply(Err(CallError::SessionExpired)))
        );
    }
}
