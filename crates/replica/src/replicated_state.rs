//! The state every replica holds identically: the object plus the exactly-once
//! table. Executes logged calls; a panic inside a method becomes an error reply
//! (the same on every replica) and the replica keeps serving.

use crate::logged_call::LoggedCall;
use crate::sessions::{Admission, SessionTable, StoredReply};
use concoord_object::{CONCOORD_INIT, CallContext, MethodKind, ObjectError, ReplicatedObject};
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

impl<O: ReplicatedObject> ReplicatedState<O> {
    /// Runs a decided call. Returns the reply to give the caller, or `None` if
    /// the caller already acknowledged it.
    pub fn execute(&mut self, call: &LoggedCall) -> Option<StoredReply> {
        match self.sessions.admit(call.client_id, call.seq, call.acked) {
            Admission::Stale => None,
            Admission::Duplicate(reply) => Some(reply),
            Admission::TooManyInFlight => Some(Err(CallError::TooManyInFlight {
                limit: crate::sessions::IN_FLIGHT_PER_CLIENT_MAX,
            })),
            Admission::Fresh => {
                let reply = self.run(call);
                self.sessions
                    .record(call.client_id, call.seq, reply.clone());
                Some(reply)
            }
        }
    }

    fn run(&mut self, call: &LoggedCall) -> StoredReply {
        if call.method == CONCOORD_INIT {
            let fresh = catch_unwind(|| O::init(&call.args))
                .map_err(|p| CallError::Panicked(panic_message(p)))?;
            self.object = fresh.map_err(call_error::<O>)?;
            return concoord_object::reply(&()).map_err(call_error::<O>);
        }
        let mut ctx = CallContext::new(call.client_id, call.seq);
        let object = &mut self.object;
        let outcome = match O::method_kind(&call.method) {
            None => return Err(unknown_method::<O>(&call.method)),
            Some(MethodKind::Write) => catch_unwind(AssertUnwindSafe(|| {
                object.apply(&mut ctx, &call.method, &call.args)
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
        let image = SnapshotImage {
            object: self.object.snapshot()?,
            sessions: self.sessions.clone(),
        };
        rmp_serde::to_vec(&image).map_err(|e| ObjectError::State(e.to_string()))
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
    use concoord_objects::Counter;

    fn call(client: u64, seq: u64, method: &str) -> LoggedCall {
        LoggedCall {
            client_id: client,
            seq,
            acked: seq - 1,
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
        assert!(s.execute(&c).is_some());
        assert!(s.execute(&c).is_some());
        assert_eq!(value(&s), 1);
    }

    #[test]
    fn unknown_methods_list_the_known_ones() {
        let mut s = ReplicatedState::<Counter>::default();
        let reply = s.execute(&call(1, 1, "explode")).expect("answered");
        match reply {
            Err(CallError::UnknownMethod { known, .. }) => {
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
}
