//! What ConCoord needs from an object to replicate it.
//!
//! An object is an ordinary Rust value: `Default` (replicas create it without
//! arguments, like the original's `__init__()`), `Serialize`/`Deserialize` (for
//! snapshots and state transfer), with methods that either change it (writes,
//! ordered through Paxos) or only look at it (reads, served through the
//! linearizable read path). [`ReplicatedObject`] is the dispatch table from a
//! method name and msgpack-encoded arguments to a call.
//!
//! ```
//! use concoord_object::{CallContext, MethodKind, ObjectError, ReplicatedObject, args, reply};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct TenCounter { value: i64 }
//!
//! impl ReplicatedObject for TenCounter {
//!     fn type_name() -> &'static str { "tencounter.TenCounter" }
//!     fn methods() -> &'static [(&'static str, MethodKind)] {
//!         &[("increment", MethodKind::Write), ("getvalue", MethodKind::Read)]
//!     }
//!     fn apply(&mut self, _ctx: &mut CallContext, method: &str, a: &[u8]) -> Result<Vec<u8>, ObjectError> {
//!         match method {
//!             "increment" => { args::none(method, a)?; self.value += 10; reply(&()) }
//!             _ => Err(ObjectError::unknown(method)),
//!         }
//!     }
//!     fn query(&self, method: &str, a: &[u8]) -> Result<Vec<u8>, ObjectError> {
//!         match method {
//!             "getvalue" => { args::none(method, a)?; reply(&self.value) }
//!             _ => Err(ObjectError::unknown(method)),
//!         }
//!     }
//! }
//!
//! let mut c = TenCounter::default();
//! let mut ctx = CallContext::new(1, 1);
//! c.apply(&mut ctx, "increment", &args::encode(&()).unwrap()).unwrap();
//! let v: i64 = rmp_serde::from_slice(&c.query("getvalue", &args::encode(&()).unwrap()).unwrap()).unwrap();
//! assert_eq!(v, 10);
//! ```

#![deny(missing_docs)]

pub mod ready_made;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;

/// `#[concoord_object::object]`: the same macro as `concoord::object`. Its
/// generated code refers to `::concoord` unless told otherwise: without the
/// `concoord` crate, write `#[concoord_object::object(crate =
/// "concoord_object", proxy = false)]` (proxies need the client).
pub use concoord_macros::{object, proxy};

/// The reserved method that re-initialises the object on every replica (the
/// original's `__concoordinit__`).
pub const CONCOORD_INIT: &str = "__concoordinit__";

/// The reserved method a client calls to give up waiting on its blocked call
/// `(seq,)`; replies `true` if the call was still blocked.
pub const CONCOORD_CANCEL: &str = "__concoord_cancel__";

/// The reserved method a client calls to end its session at once (releasing
/// what it holds) instead of waiting for the session to expire.
pub const CONCOORD_CLOSE: &str = "__concoord_close__";

/// The reserved method the leader logs to expire silent sessions
/// `(Vec<client_id>,)`; only accepted from ConCoord itself (client id 0).
pub const CONCOORD_EXPIRE: &str = "__concoord_expire__";

/// Whether a method changes the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodKind {
    /// Takes `&self`: served by the read path, no log write.
    Read,
    /// Takes `&mut self`: ordered through the log and run on every replica.
    Write,
}

/// A blocked call, identified by its client session and sequence number.
/// Objects keep these in their wait queues and hand them back to
/// [`CallContext::wake`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Waiter {
    /// The calling client's session id.
    pub client_id: u64,
    /// The blocked call's sequence number.
    pub seq: u64,
}

/// What a blocking method returns: its value now, or `Blocked` after it put
/// [`CallContext::waiter`] in a wait queue. The caller then waits until the
/// object wakes it with [`CallContext::wake`] (the original's
/// `_concoord_command` blocking). A blocking method takes `ctx: &mut
/// CallContext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait<T> {
    /// The call completes now with this value.
    Ready(T),
    /// The call waits for a later wake-up.
    Blocked,
}

/// Who is calling, and the blocking support: a write method may block its
/// caller and wake callers blocked earlier. Wake-ups are part of executing the
/// log, so every replica computes the same ones, and the replica the caller
/// waits on delivers them.
#[derive(Debug, PartialEq)]
pub struct CallContext {
    /// The calling client's session id (0 for calls ConCoord makes itself,
    /// such as session expiry).
    pub client_id: u64,
    /// The call's sequence number in that session.
    pub seq: u64,
    blocked: bool,
    abandoning: bool,
    wakeups: Vec<(Waiter, Result<Vec<u8>, ObjectError>)>,
}

impl CallContext {
    /// The context of call `seq` of client `client_id`.
    pub fn new(client_id: u64, seq: u64) -> Self {
        CallContext {
            client_id,
            seq,
            blocked: false,
            abandoning: false,
            wakeups: Vec::new(),
        }
    }

    /// Marks the waits being cancelled as abandoned by their client (it gave
    /// up on the call and will never read its reply), rather than timed out.
    pub fn set_abandoning(&mut self, abandoning: bool) {
        self.abandoning = abandoning;
    }

    /// In [`ReplicatedObject::cancel_wait`]: whether the client abandoned the
    /// call. Nothing may then be granted to it on its behalf (a condition
    /// wait does not retake its lock).
    pub fn is_abandoning(&self) -> bool {
        self.abandoning
    }

    /// The current call as a waiter, to queue before returning `Wait::Blocked`.
    pub fn waiter(&self) -> Waiter {
        Waiter {
            client_id: self.client_id,
            seq: self.seq,
        }
    }

    /// Marks the current call blocked (done by the generated code when a
    /// method returns [`Wait::Blocked`]).
    pub fn block(&mut self) {
        self.blocked = true;
    }

    /// Whether the current call blocked.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Completes blocked call `waiter` with `value` (what its method would
    /// have returned).
    pub fn wake<T: Serialize>(&mut self, waiter: Waiter, value: &T) {
        self.wakeups.push((waiter, reply(value)));
    }

    /// The wake-ups issued so far, in order.
    pub fn take_wakeups(&mut self) -> Vec<(Waiter, Result<Vec<u8>, ObjectError>)> {
        std::mem::take(&mut self.wakeups)
    }
}

/// Why a call failed inside the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// No such method.
    UnknownMethod {
        /// What was asked.
        method: String,
    },
    /// The arguments do not fit.
    BadArguments {
        /// The method.
        method: String,
        /// What is wrong.
        detail: String,
    },
    /// The method returned an error value (msgpack-encoded), for the caller.
    Application(Vec<u8>),
    /// The object's state could not be saved or restored.
    State(String),
}

impl ObjectError {
    /// `UnknownMethod` for `method`.
    pub fn unknown(method: &str) -> Self {
        ObjectError::UnknownMethod {
            method: method.to_string(),
        }
    }

    /// An application error carrying `value` to the caller (structs with
    /// their field names, so a tool can show them as JSON objects).
    pub fn application<E: Serialize>(value: &E) -> Self {
        ObjectError::Application(rmp_serde::to_vec_named(value).unwrap_or_default())
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::UnknownMethod { method } => write!(f, "unknown method `{method}`"),
            ObjectError::BadArguments { method, detail } => {
                write!(f, "bad arguments for `{method}`: {detail}")
            }
            ObjectError::Application(_) => write!(f, "the method returned an error"),
            ObjectError::State(d) => write!(f, "object state error: {d}"),
        }
    }
}

impl std::error::Error for ObjectError {}

/// Encodes a method's return value, structs with their field names (a
/// typed client decodes either form; `concoord call` shows them as JSON
/// objects rather than arrays).
pub fn reply<T: Serialize>(value: &T) -> Result<Vec<u8>, ObjectError> {
    rmp_serde::to_vec_named(value)
        .map_err(|e| ObjectError::State(format!("cannot encode reply: {e}")))
}

/// Argument encoding: every call's arguments travel as one msgpack array.
pub mod args {
    use super::ObjectError;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// msgpack's empty array (a fixarray of length 0): the arguments of a
    /// call that passes none.
    pub const EMPTY_ARRAY: u8 = 0x90;
    /// msgpack's nil: what `()` encodes to, and what a left-out `Option`
    /// argument is padded with.
    const NIL: u8 = 0xc0;
    /// The first and last byte of a fixarray header (length in the low 4
    /// bits, up to 15 elements).
    const FIXARRAY_FIRST: u8 = 0x90;
    const FIXARRAY_LAST: u8 = 0x9f;
    /// An array header with a 16-bit big-endian length.
    const ARRAY16: u8 = 0xdc;
    /// An array header with a 32-bit big-endian length.
    const ARRAY32: u8 = 0xdd;

    /// Encodes arguments given as a tuple (`()`, `(x,)`, `(x, y)`, …) into a
    /// msgpack array.
    pub fn encode<T: Serialize>(args: &T) -> Result<Vec<u8>, ObjectError> {
        // A unit `()` becomes an empty array rather than nil.
        let bytes = rmp_serde::to_vec(args)
            .map_err(|e| ObjectError::State(format!("cannot encode arguments: {e}")))?;
        Ok(if bytes == [NIL] {
            vec![EMPTY_ARRAY]
        } else {
            bytes
        })
    }

    /// Trailing arguments a caller may leave out (when they are `Option`s).
    const OMITTED_MAX: usize = 8;

    /// Decodes arguments into a tuple type, with an error naming the method.
    /// Trailing `Option` arguments may be left out, like Python's default
    /// arguments: `f(a)` calls `fn f(a: i64, b: Option<i64>)` with `b = None`.
    pub fn decode<T: DeserializeOwned>(method: &str, args: &[u8]) -> Result<T, ObjectError> {
        let first = match rmp_serde::from_slice(args) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if let Some((len, body)) = split_array(args) {
            for extra in 1..=OMITTED_MAX {
                let mut padded = array_header(len + extra);
                padded.extend_from_slice(body);
                padded.extend(std::iter::repeat_n(NIL, extra));
                if let Ok(v) = rmp_serde::from_slice(&padded) {
                    return Ok(v);
                }
            }
        }
        Err(ObjectError::BadArguments {
            method: method.to_string(),
            detail: format!("{first}"),
        })
    }

    /// The element count and the elements of a msgpack array.
    fn split_array(bytes: &[u8]) -> Option<(usize, &[u8])> {
        match bytes.first()? {
            b @ FIXARRAY_FIRST..=FIXARRAY_LAST => Some(((b & 0x0f) as usize, &bytes[1..])),
            &ARRAY16 => {
                let n = u16::from_be_bytes(bytes.get(1..3)?.try_into().ok()?);
                Some((n as usize, &bytes[3..]))
            }
            &ARRAY32 => {
                let n = u32::from_be_bytes(bytes.get(1..5)?.try_into().ok()?);
                Some((n as usize, &bytes[5..]))
            }
            _ => None,
        }
    }

    fn array_header(len: usize) -> Vec<u8> {
        if len < 16 {
            vec![FIXARRAY_FIRST | len as u8]
        } else if let Ok(n) = u16::try_from(len) {
            let mut h = vec![ARRAY16];
            h.extend_from_slice(&n.to_be_bytes());
            h
        } else {
            let mut h = vec![ARRAY32];
            h.extend_from_slice(&(len as u32).to_be_bytes());
            h
        }
    }

    /// Checks that a method taking no arguments got none.
    pub fn none(method: &str, args: &[u8]) -> Result<(), ObjectError> {
        match args {
            [EMPTY_ARRAY] | [NIL] | [] => Ok(()),
            _ => Err(ObjectError::BadArguments {
                method: method.to_string(),
                detail: "this method takes no arguments".into(),
            }),
        }
    }
}

/// An object ConCoord can replicate.
///
/// Methods must be deterministic: the same calls in the same order must give
/// the same state and replies on every replica (no clocks, randomness, I/O, or
/// iteration over randomly-seeded hash maps).
pub trait ReplicatedObject: Default + Serialize + DeserializeOwned + Send + 'static {
    /// The name shown by `concoord status` (e.g. `concoord.object.counter.Counter`).
    fn type_name() -> &'static str;

    /// Every method and its kind.
    fn methods() -> &'static [(&'static str, MethodKind)];

    /// Runs a write method.
    fn apply(
        &mut self,
        ctx: &mut CallContext,
        method: &str,
        args: &[u8],
    ) -> Result<Vec<u8>, ObjectError>;

    /// Runs a read method.
    fn query(&self, method: &str, args: &[u8]) -> Result<Vec<u8>, ObjectError>;

    /// A fresh object for [`CONCOORD_INIT`] with these arguments; by default
    /// `Default` (which takes none).
    fn init(args: &[u8]) -> Result<Self, ObjectError> {
        args::none(CONCOORD_INIT, args)?;
        Ok(Self::default())
    }

    /// [`CONCOORD_INIT`] is replacing this object with `fresh` (made by
    /// [`init`](Self::init)): carry into `fresh` what must outlive the
    /// re-initialisation, or refuse it (the call then fails with the error
    /// and nothing changes). The default carries nothing. A lock carries its
    /// fencing-token counter, so a grant after re-initialisation is still
    /// fenced above every earlier one (see `concoord-dsync`). With the
    /// macro: `#[concoord(on_reinit)] fn(&self, fresh: &mut Self)`.
    fn carry_over(&self, fresh: &mut Self) -> Result<(), ObjectError> {
        let _ = fresh;
        Ok(())
    }

    /// The kind of `method`, `None` if there is no such method.
    fn method_kind(method: &str) -> Option<MethodKind> {
        if [
            CONCOORD_INIT,
            CONCOORD_CANCEL,
            CONCOORD_CLOSE,
            CONCOORD_EXPIRE,
        ]
        .contains(&method)
        {
            return Some(MethodKind::Write);
        }
        Self::methods()
            .iter()
            .find(|(name, _)| *name == method)
            .map(|(_, kind)| *kind)
    }

    /// Blocked call `waiter` gave up (its wait timed out, or its client
    /// abandoned it): take it out of every wait queue. Return `true` if the
    /// object will still wake it itself (a condition wait that must first
    /// reacquire its lock); `false` to have it answered now with
    /// `WaitTimedOut`. Objects that never block keep the default.
    fn cancel_wait(&mut self, ctx: &mut CallContext, waiter: Waiter) -> bool {
        let _ = (ctx, waiter);
        false
    }

    /// Client `client_id`'s session expired (decided through the log, so on
    /// every replica at the same point): release what it holds, drop its
    /// waiters, and wake whoever that lets through.
    fn session_expired(&mut self, ctx: &mut CallContext, client_id: u64) {
        let _ = (ctx, client_id);
    }

    /// The object's state as bytes (for snapshots and state transfer).
    fn snapshot(&self) -> Result<Vec<u8>, ObjectError> {
        rmp_serde::to_vec(self).map_err(|e| ObjectError::State(e.to_string()))
    }

    /// The object from `snapshot` bytes.
    fn restore(bytes: &[u8]) -> Result<Self, ObjectError> {
        rmp_serde::from_slice(bytes).map_err(|e| ObjectError::State(e.to_string()))
    }

    /// A copy of the state whose [`snapshot`](Self::snapshot) can be taken on
    /// another thread, if one can be made in much less time than the snapshot
    /// itself takes. The replica then keeps executing calls while the copy is
    /// serialized, instead of stopping for the whole of it (a large object
    /// takes hundreds of milliseconds). `None` (the default): snapshots are
    /// taken on the replica's loop. Worth it for state in persistent
    /// structures whose clone is shared until written (an `imbl` map); with
    /// the macro: `#[object(detached_snapshot = true)]`, which needs `Clone`.
    ///
    /// The copy must be independent of the object: later calls must not
    /// change what it serializes. A `Clone` that shares mutable state (an
    /// `Arc<Mutex<…>>`, a `Cell` behind an `Rc`) breaks this, and a snapshot
    /// labelled with one slot would hold the effects of later ones, which a
    /// replica recovering from it would then apply twice.
    fn detached_snapshot(&self) -> Option<DetachedSnapshot> {
        None
    }
}

/// A snapshot to be finished on another thread: the bytes
/// [`ReplicatedObject::snapshot`] would give at the moment it was made.
pub type DetachedSnapshot = Box<dyn FnOnce() -> Result<Vec<u8>, ObjectError> + Send>;

/// [`ReplicatedObject::detached_snapshot`] from a clone of `object`: for
/// types whose `Clone` shares its structure (costs next to nothing).
pub fn snapshot_of_clone<O: ReplicatedObject + Clone>(object: &O) -> Option<DetachedSnapshot> {
    let copy = object.clone();
    Some(Box::new(move || copy.snapshot()))
}

#[doc(hidden)]
pub mod __private {
    pub use crate as object;
}

/// Decodes a reply produced by [`reply`].
pub fn decode_reply<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ObjectError> {
    rmp_serde::from_slice(bytes).map_err(|e| ObjectError::State(format!("unexpected reply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_arguments_encode_as_an_empty_array() {
        assert_eq!(args::encode(&()).expect("encodes"), vec![0x90]);
        assert!(args::none("m", &[0x90]).is_ok());
        assert!(args::none("m", &args::encode(&(1,)).expect("encodes")).is_err());
    }

    #[test]
    fn tuple_arguments_round_trip() {
        let bytes = args::encode(&(5i64, "x".to_string())).expect("encodes");
        let (n, s): (i64, String) = args::decode("m", &bytes).expect("decodes");
        assert_eq!((n, s.as_str()), (5, "x"));
    }

    #[test]
    fn trailing_optional_arguments_may_be_left_out() {
        let bytes = args::encode(&(5i64,)).expect("encodes");
        let (n, opt): (i64, Option<String>) = args::decode("m", &bytes).expect("decodes");
        assert_eq!((n, opt), (5, None));
        let none: (Option<i64>,) = args::decode("m", &[0x90]).expect("decodes");
        assert_eq!(none, (None,));
        // A missing required argument is still an error.
        assert!(args::decode::<(i64, i64)>("m", &bytes).is_err());
    }

    #[test]
    fn wrong_argument_types_name_the_method() {
        let bytes = args::encode(&("not a number",)).expect("encodes");
        let err = args::decode::<(i64,)>("debit", &bytes).expect_err("a string is not an i64");
        assert!(matches!(err, ObjectError::BadArguments { method, .. } if method == "debit"));
    }
}
