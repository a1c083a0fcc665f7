//! ConCoord: write an ordinary object, get a replicated, fault-tolerant one.
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! pub struct TenCounter {
//!     value: i64,
//! }
//!
//! #[concoord::object]
//! impl TenCounter {
//!     /// A write: ordered through Paxos, run on every replica.
//!     pub fn increment(&mut self) {
//!         self.value += 10
//!     }
//!     /// A read: linearizable, no log write.
//!     pub fn getvalue(&self) -> i64 {
//!         self.value
//!     }
//! }
//!
//! // The replica binary is three lines and takes every `concoord replica` flag:
//! //     fn main() -> std::process::ExitCode {
//! //         concoord::replica::main::<TenCounter>()
//! //     }
//!
//! // Clients call the object through the generated proxy:
//! # async fn client() -> Result<(), concoord::ClientError> {
//! let c = TenCounterProxy::connect("127.0.0.1:14000, 127.0.0.1:14001").await?;
//! c.increment().await?;
//! assert_eq!(c.getvalue().await?, 10);
//! # Ok(()) }
//! ```
//!
//! `#[concoord::object]` generates the replica-side dispatch
//! ([`ReplicatedObject`]) and two proxies: `TenCounterProxy` (async) and
//! `TenCounterBlockingProxy`. `concoord object -o src/lib.rs::TenCounter`
//! writes the same proxy to a standalone file for clients that do not depend on
//! the object's crate. See the `object` macro for the rules.

#![deny(missing_docs)]

pub use concoord_client::{
    CallMode, Client, ClientError, ClientOptions, MethodError, blocking, proxies,
};
pub use concoord_macros::{object, proxy};
pub use concoord_object::{
    CONCOORD_INIT, CallContext, MethodKind, ObjectError, ReplicatedObject, Wait, Waiter,
};

/// Locks, semaphores, barriers and conditions to embed in your objects.
pub use concoord_dsync as dsync;

/// Hosting objects: the replica runtime.
pub mod replica {
    pub use concoord_replica::{ReplicaError, ReplicaOptions, run};
    pub use concoord_replica_cli::{ReplicaArgs, main};
}

#[doc(hidden)]
pub mod __private {
    pub use concoord_client as client;
    pub use concoord_object as object;
    pub use serde;
}
