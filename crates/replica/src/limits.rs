//! How much a replica holds at most, in bytes and in connections, and why.
//!
//! Every queue a client or peer can fill is bounded in bytes, not items (one
//! item may be a few bytes or 12 MiB):
//!
//! | what | bound | when full |
//! |---|---|---|
//! | client frames being read or waiting for the driver | 64 MiB (+ 8 MiB for frames ≤ 64 KiB) | the connection stops reading (TCP back-pressure) |
//! | calls waiting for the driver, one connection | 2 048 (`server`) | the same |
//! | peer frames being read or waiting for the driver | 128 MiB | the same |
//! | calls admitted and unanswered (queued or in flight at the leader, reads waiting for their index) | 32 MiB (+ 16 MiB for calls ≤ 64 KiB) | the call is answered `Busy`; the client retries |
//! | replies queued, all connections | 128 MiB | the connection is closed; the client reconnects and retries |
//! | replies queued, one connection | 32 MiB | the same |
//! | messages queued for one peer | 64 MiB (`peer_pool`) | the message is dropped; Paxos retransmits |
//! | decided log in memory | 64 MiB, then a snapshot (`paxos-core`) | — |
//! | client connections | 1 024 (`--max-connections`) | refused during the handshake |
//! | connections in the handshake | 128 | closed at once |
//!
//! Small items have pools of their own, so a flood of large calls cannot
//! starve keep-alives or small calls.
//!
//! Back of the envelope for a leader under a flood of 12 MiB calls: each
//! admitted call is held about six times while in flight (the queued command,
//! the slot in flight, its own acceptor's copy, one `Accept` per follower,
//! the decided entry), so 32 MiB of admitted calls is ~200 MiB; add the
//! frames being read and decoded (~130 MiB: a batch holds at most 4 096
//! calls of at most 64 `done` ranges, refused while decoding if longer, so a
//! decoded frame is its bytes and at most ~5 MB more), the log (64 MiB)
//! and the queues to peers and clients, and a leader stays well under 1 GiB
//! however many clients flood it. Followers hold less. The replicated state
//! itself (and its two snapshots) comes on top: it is the user's data.

use concoord_transport::byte_budget::ByteBudget;
use concoord_transport::wire::{CALL_BYTES_MAX, CLIENT_FRAME_BYTES_MAX, PEER_FRAME_BYTES_MAX};
use std::time::Duration;

/// Items up to this size draw from the small pools.
pub const SMALL_ITEM_BYTES: usize = 64 << 10;

/// Client frames being read or waiting for the driver.
pub const CLIENT_INBOUND_BYTES: usize = 64 << 20;
/// The same, for frames up to [`SMALL_ITEM_BYTES`].
pub const CLIENT_INBOUND_SMALL_BYTES: usize = 8 << 20;
/// Peer frames being read or waiting for the driver.
pub const PEER_INBOUND_BYTES: usize = 128 << 20;

/// Calls admitted and not yet answered.
pub const CALLS_PENDING_BYTES: usize = 32 << 20;
/// The same, for calls up to [`SMALL_ITEM_BYTES`].
pub const CALLS_PENDING_SMALL_BYTES: usize = 16 << 20;

/// Replies queued for all client connections together.
pub const REPLIES_QUEUED_BYTES: usize = 128 << 20;
/// Replies queued for one client connection (two of the largest frames).
pub const REPLIES_QUEUED_PER_CONNECTION_BYTES: usize = 32 << 20;

/// A client `Batch` frame reaches the driver in parts of at most this many
/// calls (`server`), and a driver turn takes events until it holds about
/// four such parts (`driver`): a turn's work is bounded in calls, however
/// the client packs them, so ticks and heartbeats are never held up long.
pub const CALLS_PER_EVENT_MAX: usize = 1024;

/// Client connections (and operator tools) served at once, by default.
pub const CLIENT_CONNECTIONS_MAX: usize = 1024;
/// Connections in their handshake at once.
pub const HANDSHAKES_MAX: usize = 128;

/// Time a frame's body has, once its length arrived.
pub const FRAME_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a connection has to take one frame written to it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes an admitted call is counted for: its method name and arguments,
/// and what the replica adds around them.
pub fn call_bytes(method: &str, args: &[u8]) -> usize {
    method.len() + args.len() + 64
}

/// The budgets one replica's connections and driver share.
pub struct Budgets {
    /// Client frames being read or waiting for the driver.
    pub client_inbound: ByteBudget,
    /// Peer frames being read or waiting for the driver.
    pub peer_inbound: ByteBudget,
    /// Calls admitted and not yet answered.
    pub calls: ByteBudget,
    /// Replies queued for all client connections.
    pub replies: ByteBudget,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            client_inbound: ByteBudget::with_small_pool(
                CLIENT_INBOUND_BYTES,
                CLIENT_INBOUND_SMALL_BYTES,
                SMALL_ITEM_BYTES,
            ),
            peer_inbound: ByteBudget::new(PEER_INBOUND_BYTES),
            calls: ByteBudget::with_small_pool(
                CALLS_PENDING_BYTES,
                CALLS_PENDING_SMALL_BYTES,
                SMALL_ITEM_BYTES,
            ),
            replies: ByteBudget::new(REPLIES_QUEUED_BYTES),
        }
    }
}

impl Budgets {
    /// Bytes held now in all of them.
    pub fn in_use(&self) -> usize {
        self.client_inbound.in_use()
            + self.peer_inbound.in_use()
            + self.calls.in_use()
            + self.replies.in_use()
    }
}

// A peer frame holds at most one call or `max_message_bytes` of entries;
// both must fit well inside it, and any frame inside its inbound budget.
const _: () = assert!(CALL_BYTES_MAX + (4 << 20) < PEER_FRAME_BYTES_MAX / 2);
const _: () = assert!(PEER_FRAME_BYTES_MAX <= PEER_INBOUND_BYTES);
const _: () = assert!(CLIENT_FRAME_BYTES_MAX <= CLIENT_INBOUND_BYTES);
const _: () = assert!(2 * CLIENT_FRAME_BYTES_MAX <= REPLIES_QUEUED_PER_CONNECTION_BYTES);
