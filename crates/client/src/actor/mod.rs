//! The background task behind a [`Client`](crate::Client): one per client,
//! it owns the connection to the replica it believes leads, keeps every call
//! in flight on it (pipelined), follows redirects, and after a timeout or a
//! lost connection resends every unanswered call with its original sequence
//! number to the next replica. The replicas' exactly-once table makes the
//! retries safe: a call never runs twice, and a retry of an executed call
//! gets its first reply.
//!
//! Split by job: this file runs the loop and sends calls; `connection.rs`
//! finds, opens and leaves replicas; `replies.rs` handles what they answer.
//! The calls' own bookkeeping is [`crate::in_flight`].

mod connection;
mod replies;

pub(crate) use connection::refuse_mixed_instances;

use crate::client::{CallMode, ClientOptions, Request};
use crate::errors::ClientError;
use crate::in_flight::{Calls, InFlight, Reply, Timer};
use concoord_object::{CONCOORD_CANCEL, CONCOORD_CLOSE, args};
use concoord_transport::InstanceId;
use concoord_transport::handshake::ClientConnection;
use concoord_transport::wire::{
    BATCH_CALLS_MAX, CALL_BYTES_MAX, CallRequest, ClientFrame, SessionTicket,
};
use futures::SinkExt;
use futures::stream::{SplitSink, SplitStream};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::debug;

/// Pause before retrying after `Busy` or when no leader is known.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How long a dropped client waits for its session to close before leaving.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes of calls one frame carries at most: several calls go in one
/// `Batch` frame only up to here (a client frame holds 16 MiB).
const FRAME_CALLS_BYTES_MAX: usize = CALL_BYTES_MAX;

pub(crate) struct Actor {
    addrs: Vec<String>,
    cursor: usize,
    preferred: Option<String>,
    /// The session's id, shared with the `Client` handles.
    id: Arc<AtomicU64>,
    /// The session's ticket (`None` until a replica issued one, and again
    /// once the session ended).
    ticket: Option<SessionTicket>,
    options: ClientOptions,
    /// The replica connected to.
    current: Option<String>,
    /// When the connection last delivered a frame.
    last_frame: Instant,
    /// When to send the next keep-alive.
    keepalive_at: Instant,
    /// Since when the connected replica has answered "no leader known".
    leaderless_since: Option<Instant>,
    sink: Option<SplitSink<ClientConnection, ClientFrame>>,
    stream: Option<SplitStream<ClientConnection>>,
    calls: Calls,
    failures: BTreeMap<String, String>,
    /// The bootstrap domain, if the client was given one, and when it was
    /// last resolved.
    domain: Option<(String, Instant)>,
    /// The instance of the first replica that welcomed us, and that
    /// replica: the client never talks to replicas of another.
    instance: Option<(InstanceId, String)>,
}

impl Actor {
    pub(crate) fn new(
        addrs: Vec<String>,
        domain: Option<String>,
        id: Arc<AtomicU64>,
        options: ClientOptions,
    ) -> Actor {
        Actor {
            addrs,
            cursor: 0,
            preferred: None,
            id,
            ticket: None,
            current: None,
            last_frame: Instant::now(),
            keepalive_at: Instant::now() + options.keepalive,
            leaderless_since: None,
            options,
            sink: None,
            stream: None,
            calls: Calls::new(),
            failures: BTreeMap::new(),
            domain: domain.map(|d| (d, Instant::now())),
            instance: None,
        }
    }

    /// The replica addresses known.
    pub(crate) fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// The instance of the first replica that welcomed us, and that replica
    /// (once connected).
    pub(crate) fn instance(&self) -> Option<&(InstanceId, String)> {
        self.instance.as_ref()
    }

    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut open = true;
        while open || !self.calls.is_empty() {
            // Stay connected even when idle: the keep-alives hold the session
            // (and whatever locks it holds).
            if !self.is_connected() {
                // Calls asked while no replica answers get their deadline
                // too (they wait in flight, and are sent on reconnection).
                while open {
                    match requests.try_recv() {
                        Ok(req) => self.submit(vec![req]).await,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                    }
                }
                if let Some(refusal) = self.reconnect().await {
                    self.fail_all(|| clone_refusal(&refusal));
                    if !open {
                        return;
                    }
                }
                self.expire();
                continue;
            }
            let wake = self.next_wake();
            // Biased, so a simulation replays (tokio's random branch order is
            // not seeded): replies and timers, which come at the replica's
            // pace, before new requests.
            tokio::select! {
                biased;
                frame = connection::next_frame(&mut self.stream) => self.on_frame(frame).await,
                _ = sleep_until(wake) => self.on_timer().await,
                _ = sleep_until(self.keepalive_at) => self.keep_alive().await,
                req = requests.recv(), if open => match req {
                    Some(req) => {
                        let batch = self.gather(req, &mut requests).await;
                        self.submit(batch).await;
                    }
                    None => {
                        open = false;
                        self.close_session().await;
                    }
                },
            }
        }
    }

    /// How long a connection with only blocked calls may stay silent before
    /// the replica is taken for dead: it answers every keep-alive.
    fn silence_limit(&self) -> Duration {
        self.options.attempt_timeout.max(self.options.keepalive * 3)
    }

    /// Sends a keep-alive (the reply also tells us who leads).
    async fn keep_alive(&mut self) {
        self.keepalive_at = Instant::now() + self.options.keepalive;
        if let Some(sink) = self.sink.as_mut() {
            let sent = timeout(
                self.options.attempt_timeout,
                sink.send(ClientFrame::KeepAlive),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                self.disconnect();
            }
        }
    }

    /// The last handle was dropped: end the session now, so what it holds is
    /// released at once rather than when it expires.
    async fn close_session(&mut self) {
        let (reply, _) = oneshot::channel();
        self.submit_internal(
            CONCOORD_CLOSE,
            vec![args::EMPTY_ARRAY],
            reply,
            CLOSE_TIMEOUT,
        )
        .await;
    }

    /// Sends a call of the client's own (close, cancel) whose reply nobody awaits.
    async fn submit_internal(
        &mut self,
        method: &str,
        args: Vec<u8>,
        reply: oneshot::Sender<Reply>,
        within: Duration,
    ) {
        let call = InFlight::new(
            method.to_string(),
            args,
            reply,
            Instant::now() + within,
            None,
        );
        let seq = self.calls.add(call);
        self.send_many(&[seq]).await;
    }

    fn next_wake(&self) -> Instant {
        let silence = self
            .calls
            .any_blocked()
            .then(|| self.last_frame + self.silence_limit());
        [self.calls.next_timer(self.options.attempt_timeout), silence]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    /// In batched mode, collects more calls to travel with `first`, until
    /// none comes for `linger` or the batch is full.
    async fn gather(
        &mut self,
        first: Request,
        requests: &mut mpsc::Receiver<Request>,
    ) -> Vec<Request> {
        let mut batch = vec![first];
        let CallMode::Batched { max_calls, linger } = self.options.mode else {
            return batch;
        };
        // The batch closes when no call has come for `linger`: callers whose
        // replies arrived together call again together, within microseconds.
        // Tokio's timers tick in milliseconds, so the gap is timed by yielding
        // to the scheduler (letting those callers run) while watching the clock.
        let mut quiet_since = std::time::Instant::now();
        while batch.len() < max_calls {
            match requests.try_recv() {
                Ok(r) => {
                    batch.push(r);
                    quiet_since = std::time::Instant::now();
                }
                Err(_) if quiet_since.elapsed() >= linger => break,
                Err(_) => tokio::task::yield_now().await,
            }
        }
        batch
    }

    async fn submit(&mut self, batch: Vec<Request>) {
        let mut seqs = Vec::with_capacity(batch.len());
        for req in batch {
            let now = Instant::now();
            let call = InFlight::new(
                req.method,
                req.args,
                req.reply,
                now + self.options.call_timeout,
                req.wait.map(|w| now + w),
            );
            seqs.push(self.calls.add(call));
        }
        self.send_many(&seqs).await;
    }

    /// Sends calls: a `Call` frame, or `Batch` frames for several, each
    /// within [`FRAME_CALLS_BYTES_MAX`] (however many calls are resent at
    /// once after a reconnection).
    async fn send_many(&mut self, seqs: &[u64]) {
        let acked = self.calls.acked();
        let done = self.calls.done_ranges();
        if self.sink.is_none() {
            return;
        }
        let now = Instant::now();
        let mut requests = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(call) = self.calls.get_mut(*seq) {
                call.sent(now);
                requests.push(CallRequest {
                    seq: *seq,
                    acked,
                    method: call.method.clone(),
                    args: call.args.clone(),
                    done: done.clone(),
                });
            }
        }
        for mut frame_calls in frames_of(requests) {
            let frame = match frame_calls.len() {
                1 => ClientFrame::Call(frame_calls.remove(0)),
                _ => ClientFrame::Batch(frame_calls),
            };
            let Some(sink) = self.sink.as_mut() else {
                return;
            };
            let sent = timeout(self.options.attempt_timeout, sink.send(frame)).await;
            if !matches!(sent, Ok(Ok(()))) {
                debug!("connection lost while sending; will retry elsewhere");
                self.disconnect();
                return;
            }
        }
    }

    /// Fails the calls past their deadline: `Unreachable` if none was ever
    /// sent (it did not run), else `Timeout`.
    fn expire(&mut self) {
        let expired = self.calls.due(Timer::Deadline, Instant::now());
        let tried = self.describe_failures();
        for seq in expired {
            if let Some(call) = self.calls.remove(seq) {
                let err = if call.sends == 0 {
                    ClientError::Unreachable {
                        after: self.options.call_timeout,
                        tried: tried.clone(),
                    }
                } else {
                    ClientError::Timeout {
                        method: call.method.clone(),
                        after: self.options.call_timeout,
                    }
                };
                let _ = call.reply.send(Err(err));
            }
        }
    }

    async fn on_timer(&mut self) {
        self.expire();
        let now = Instant::now();
        let silent = self.calls.any_blocked() && self.last_frame + self.silence_limit() <= now;
        if silent
            || self
                .calls
                .attempt_expired(self.options.attempt_timeout, now)
        {
            debug!("replica did not answer in time; trying the next one");
            self.disconnect();
            return;
        }
        let due = self.calls.due(Timer::Backoff, now);
        self.send_many(&due).await;
        self.cancel_due_waits(now).await;
    }

    /// Cancels the blocked calls whose wait is over. The call itself stays
    /// in flight: its reply is `WaitTimedOut`, or the grant if that came
    /// first.
    async fn cancel_due_waits(&mut self, now: Instant) {
        for seq in self.calls.take_due_cancels(now) {
            // The call keeps its deadline: none once it is blocked, since the
            // object answers it (a condition wait first takes its lock back).
            let Ok(args) = concoord_object::args::encode(&(seq,)) else {
                continue;
            };
            let (reply, _) = oneshot::channel();
            self.submit_internal(CONCOORD_CANCEL, args, reply, self.options.call_timeout)
                .await;
        }
    }
}

fn clone_refusal(e: &ClientError) -> ClientError {
    match e {
        ClientError::Refused(r) => ClientError::Refused(r.clone()),
        other => ClientError::Refused(other.to_string()),
    }
}

/// Groups calls into frames of at most [`FRAME_CALLS_BYTES_MAX`] bytes of
/// method names, arguments and `done` ranges (a call alone may reach the
/// call limit) and at most [`BATCH_CALLS_MAX`] calls (a replica refuses a
/// longer batch).
fn frames_of(calls: Vec<CallRequest>) -> Vec<Vec<CallRequest>> {
    // A `done` range encodes in at most 19 bytes (two u64s in an array).
    let bytes = |c: &CallRequest| c.method.len() + c.args.len() + 32 + 19 * c.done.len();
    let mut frames = Vec::new();
    for frame in paxos_core::split_by_bytes(calls, bytes, FRAME_CALLS_BYTES_MAX) {
        let mut calls = frame.into_iter().peekable();
        while calls.peek().is_some() {
            frames.push(calls.by_ref().take(BATCH_CALLS_MAX).collect());
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(seq: u64, bytes: usize) -> CallRequest {
        CallRequest {
            seq,
            acked: 0,
            method: "put".into(),
            args: vec![0; bytes],
            done: Vec::new(),
        }
    }

    #[test]
    fn many_small_calls_leave_in_frames_of_at_most_the_batch_limit() {
        let calls: Vec<CallRequest> = (1..=10_000).map(|s| call(s, 8)).collect();
        let frames = frames_of(calls);
        let sizes: Vec<usize> = frames.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            vec![
                BATCH_CALLS_MAX,
                BATCH_CALLS_MAX,
                10_000 - 2 * BATCH_CALLS_MAX
            ]
        );
        let seqs: Vec<u64> = frames.concat().iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=10_000).collect::<Vec<_>>(), "in order");
    }

    #[test]
    fn calls_resent_together_leave_in_frames_within_the_limit() {
        let big = 5 << 20;
        let calls: Vec<CallRequest> = (1..=7).map(|s| call(s, big)).collect();
        let frames = frames_of(calls);
        assert_eq!(frames.len(), 4, "two 5 MiB calls per frame at most");
        for frame in &frames {
            let bytes: usize = frame.iter().map(|c| c.args.len()).sum();
            assert!(bytes <= FRAME_CALLS_BYTES_MAX);
        }
        let seqs: Vec<u64> = frames.concat().iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "in order");
    }

    #[test]
    fn small_calls_share_one_frame() {
        let calls: Vec<CallRequest> = (1..=100).map(|s| call(s, 10)).collect();
        assert_eq!(frames_of(calls).len(), 1);
    }
}
