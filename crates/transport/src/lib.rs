//! ConCoord's wire protocol.
//!
//! * [`wire`]: every message type, with the protocol constants;
//! * [`frame_codec`]: length-prefixed msgpack frames with a maximum size;
//!   [`frame_io`]: the same on established connections, each frame's bytes
//!   reserved from a [`byte_budget`] before its body is read;
//! * [`handshake`]: the versioned, authenticated `Hello` exchange that opens
//!   every connection;
//! * [`instance_secret`], [`peer_auth`], [`session_ticket`]: who may speak
//!   as a replica, as an operator, and as a client session; [`instance_id`]:
//!   which instance a replica belongs to;
//! * [`peer_pool`]: outbound replica connections with reconnection;
//! * [`admin`]: one-shot operator requests; [`addresses`]: bootstrap strings;
//! * [`stream`], [`tls_config`], [`tls_identity`]: plain TCP or TLS under
//!   every connection, the TLS settings, and the certificate convention that
//!   binds a replica's address to its certificate (`throwaway_ca`, with
//!   feature `throwaway-ca`, issues such certificates for local use);
//! * [`net`], [`determinism`]: sockets, randomness and clocks, which a
//!   simulation (feature `sim`) replaces with deterministic ones;
//! * `cli` (feature `cli`): the TLS flags and `block_on`, shared by every
//!   command-line program, client tools and replicas alike.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use concoord_transport::handshake::connect_client;
//! use concoord_transport::wire::{ClientFrame, CallRequest};
//! use futures::SinkExt;
//! use std::time::Duration;
//!
//! // A new session; the ticket resumes it on a later connection.
//! let (_replica, _ticket, mut conn) =
//!     connect_client("127.0.0.1:14000", None, None, Duration::from_secs(2)).await?;
//! let call = CallRequest { seq: 1, acked: 0, method: "getvalue".into(), args: vec![0x90], done: vec![] };
//! conn.send(ClientFrame::Call(call)).await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod addresses;
pub mod admin;
pub mod bounded_seq;
pub mod byte_budget;
#[cfg(feature = "cli")]
pub mod cli;
pub mod determinism;
pub mod errors;
pub mod frame_codec;
pub mod frame_io;
pub mod handshake;
pub mod instance_id;
pub mod instance_secret;
pub mod net;
pub mod peer_auth;
pub mod peer_pool;
pub mod session_ticket;
pub mod stream;
#[cfg(feature = "throwaway-ca")]
pub mod throwaway_ca;
pub mod tls_config;
pub mod tls_identity;
pub mod wire;

pub use errors::{CodecError, HandshakeError, SecretError, TlsError};
pub use frame_codec::MsgpackCodec;
pub use instance_id::{InstanceCell, InstanceId};
pub use instance_secret::InstanceSecret;
