//! The frames queued for one client connection, bounded in bytes.
//!
//! The driver never waits on a client: it pushes a frame or learns that it
//! cannot. A frame that cannot be queued (the client reads too slowly, or
//! all connections together hold the replies budget) is never dropped
//! silently: the driver closes the connection instead
//! ([`ReplyQueue::close`]). The client then reconnects and resends what is
//! unanswered, and gets each reply from the exactly-once table, a blocked
//! call's wake-up included. (Dropping the frame and counting on a retry
//! lost wake-ups for good: a client with a blocked call does not resend it
//! while keep-alives keep arriving.)

use concoord_transport::byte_budget::{ByteBudget, Reserved};
use concoord_transport::wire::ReplicaFrame;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::{Notify, mpsc};

/// Frames queued per connection at most, whatever their size.
const FRAMES_QUEUED_MAX: usize = 4096;

/// [`QueueFull::why`] when the connection task has already ended (the client
/// went away): the connection is dropped, but nothing was over a bound.
pub const CONNECTION_GONE: &str = "the connection has closed";

/// A frame could not be queued; the connection must be closed.
#[derive(Debug, Error)]
#[error(
    "the connection's reply queue is full ({why}); closing it so that the client reconnects and retries"
)]
pub struct QueueFull {
    /// Which bound was hit.
    pub why: &'static str,
}

/// A frame with the bytes it holds in the budgets.
pub struct Queued {
    /// The frame.
    pub frame: ReplicaFrame,
    _held: [Reserved; 2],
}

/// The driver's end: pushes frames, or closes the connection.
pub struct ReplyQueue {
    frames: mpsc::Sender<Queued>,
    connection: ByteBudget,
    all: ByteBudget,
    closer: Arc<Notify>,
}

/// The connection task's end: the frames to write, and the close signal.
pub struct Outbox {
    /// Frames to write, in order.
    pub frames: mpsc::Receiver<Queued>,
    /// Notified when the driver closes the connection.
    pub closer: Arc<Notify>,
}

/// A queue for one connection holding at most `per_connection` bytes, and
/// bytes from `all` (shared by every connection).
pub fn channel(per_connection: usize, all: &ByteBudget) -> (ReplyQueue, Outbox) {
    let (tx, rx) = mpsc::channel(FRAMES_QUEUED_MAX);
    let closer = Arc::new(Notify::new());
    let queue = ReplyQueue {
        frames: tx,
        connection: ByteBudget::new(per_connection),
        all: all.clone(),
        closer: closer.clone(),
    };
    (queue, Outbox { frames: rx, closer })
}

impl ReplyQueue {
    /// Queues `frame` without waiting.
    pub fn push(&self, frame: ReplicaFrame) -> Result<(), QueueFull> {
        let bytes = frame_bytes(&frame);
        let mine = self.connection.try_take(bytes).ok_or(QueueFull {
            why: "this connection's bytes",
        })?;
        let shared = self.all.try_take(bytes).ok_or(QueueFull {
            why: "the bytes of all connections",
        })?;
        let queued = Queued {
            frame,
            _held: [mine, shared],
        };
        self.frames.try_send(queued).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => QueueFull { why: "frames" },
            // The connection task ended: the client is gone, nothing is full.
            mpsc::error::TrySendError::Closed(_) => QueueFull {
                why: CONNECTION_GONE,
            },
        })
    }

    /// Tells the connection task to close the connection now, dropping what
    /// is still queued.
    pub fn close(&self) {
        self.closer.notify_one();
    }
}

/// Approximate encoded size of a frame, for the budgets.
pub fn frame_bytes(frame: &ReplicaFrame) -> usize {
    const FRAME: usize = 64;
    FRAME
        + match frame {
            ReplicaFrame::Reply { outcome, .. } => match outcome {
                Ok(value) => value.len(),
                Err(e) => e.to_string().len(),
            },
            ReplicaFrame::View { members } => members.iter().map(|m| m.len() + 8).sum(),
            ReplicaFrame::Admin { .. } => 4096,
            ReplicaFrame::Blocked { .. } => 0,
            ReplicaFrame::Alive { leader } => leader.as_ref().map_or(0, String::len),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(bytes: usize) -> ReplicaFrame {
        ReplicaFrame::Reply {
            seq: 1,
            outcome: Ok(serde_bytes::ByteBuf::from(vec![0u8; bytes])),
        }
    }

    #[test]
    fn a_connection_holds_at_most_its_bytes() {
        let all = ByteBudget::new(1 << 20);
        let (queue, mut outbox) = channel(1000, &all);
        queue.push(reply(600)).expect("room");
        assert!(queue.push(reply(600)).is_err(), "1200 bytes exceed 1000");
        drop(outbox.frames.try_recv().expect("queued"));
        queue.push(reply(600)).expect("room again once written");
    }

    #[test]
    fn all_connections_together_hold_at_most_the_shared_bytes() {
        let all = ByteBudget::new(1000);
        let (a, _a) = channel(1000, &all);
        let (b, _b) = channel(1000, &all);
        a.push(reply(600)).expect("room");
        assert!(b.push(reply(600)).is_err());
        assert_eq!(all.in_use(), frame_bytes(&reply(600)));
    }

    #[test]
    fn a_push_after_the_client_left_says_so_and_is_not_a_full_queue() {
        let all = ByteBudget::new(1000);
        let (queue, outbox) = channel(1000, &all);
        drop(outbox);
        let err = queue.push(reply(10)).expect_err("nobody reads");
        assert_eq!(err.why, CONNECTION_GONE);
        assert_eq!(all.in_use(), 0, "the frame's bytes went back");
    }

    #[tokio::test]
    async fn closing_notifies_the_connection_task() {
        let all = ByteBudget::new(1000);
        let (queue, outbox) = channel(1000, &all);
        queue.close();
        tokio::time::timeout(std::time::Duration::from_secs(1), outbox.closer.notified())
            .await
            .expect("notified");
    }
}
