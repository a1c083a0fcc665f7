//! Call ConCoord's replicated objects as if they were local.
//!
//! ```no_run
//! # async fn demo() -> Result<(), concoord_client::ClientError> {
//! use concoord_client::Client;
//! // The seed's bootstrap string: any replicas of the instance.
//! let client = Client::connect("127.0.0.1:14000, 127.0.0.1:14001").await?;
//! client.call::<_, ()>("increment", &()).await?;
//! let value: i64 = client.call("getvalue", &()).await?;
//! # Ok(()) }
//! ```
//!
//! The bootstrap string may also be a bare domain served by a ConCoord name
//! server (`Client::connect("counterdomain.com")`): see [`discovery`].
//!
//! The client finds the leader, follows redirects, and retries a call that
//! timed out or lost its connection at the next replica with the same client
//! id and sequence number, so a call never runs twice. It keeps working as long
//! as a majority of the replicas is alive. Calls from one `Client` are
//! pipelined on one connection. [`blocking::Client`] is the blocking twin;
//! [`proxies`] has typed proxies for the ready-made objects.

#![deny(missing_docs)]

mod actor;
pub mod blocking;
pub mod client;
pub mod discovery;
pub mod errors;
mod in_flight;
pub mod proxies;

pub use client::{CallMode, Client, ClientOptions};
/// The wire name of the method proxies call `concoord_init` (the original's
/// `__concoordinit__`), which re-initialises the object on every replica.
pub use concoord_object::CONCOORD_INIT;
pub use concoord_transport::wire::CallError;
pub use errors::{ClientError, MethodError};

#[doc(hidden)]
pub mod __private {
    pub use crate as client;
    pub use concoord_object as object;
}
