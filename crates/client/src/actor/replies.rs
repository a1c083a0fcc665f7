//! What the replicas answer: replies that complete calls, refusals that send
//! a call elsewhere or later, `Blocked`, keep-alive answers naming the leader,
//! new views, and the end of a session.

use super::{Actor, RETRY_PAUSE};
use crate::errors::ClientError;
use crate::in_flight::{Delivery, Reply};
use concoord_object::CONCOORD_CLOSE;
use concoord_transport::CodecError;
use concoord_transport::wire::{CallError, ReplicaFrame};
use tokio::time::Instant;
use tracing::debug;

impl Actor {
    pub(super) async fn on_frame(&mut self, frame: Option<Result<ReplicaFrame, CodecError>>) {
        let frame = match frame {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                debug!("bad frame from replica: {e}; reconnecting");
                self.disconnect();
                return;
            }
            None => {
                debug!("replica closed the connection; reconnecting");
                self.disconnect();
                return;
            }
        };
        self.last_frame = Instant::now();
        match frame {
            ReplicaFrame::Reply { seq, outcome } => {
                if !matches!(outcome, Err(CallError::NotLeader { leader: None })) {
                    self.leaderless_since = None;
                }
                self.on_reply(seq, outcome.map(|bytes| bytes.into_vec()));
            }
            ReplicaFrame::View { members } => self.follow_view(members),
            ReplicaFrame::Blocked { seq } => {
                if let Some(call) = self.calls.get_mut(seq) {
                    call.block();
                }
            }
            ReplicaFrame::Alive { leader } => {
                // Keep-alives must reach the leader, which decides expiry.
                match leader {
                    Some(leader) if self.current.as_ref() != Some(&leader) => {
                        self.follow_leader(leader);
                    }
                    Some(_) => self.leaderless_since = None,
                    None => {
                        self.no_leader_known();
                    }
                }
            }
            ReplicaFrame::Admin { .. } => {}
        }
    }

    fn on_reply(&mut self, seq: u64, outcome: Result<Vec<u8>, CallError>) {
        match outcome {
            Ok(bytes) => {
                let closed = self
                    .calls
                    .get(seq)
                    .is_some_and(|call| call.method == CONCOORD_CLOSE);
                self.complete(seq, Ok(bytes));
                if closed {
                    self.fail_session_ended("the client closed its session");
                    self.start_new_session();
                }
            }
            Err(CallError::NotLeader { leader }) => {
                if !self.calls.contains(seq) {
                    return;
                }
                match leader {
                    Some(addr) => self.follow_leader(addr),
                    // No leader yet (an election is running): try again soon.
                    None if !self.no_leader_known() => self.retry_soon(seq),
                    None => {}
                }
            }
            // Not a final answer: the replicas did not record the refusal, so
            // a copy of this call still on its way may run. Retry the same
            // call (same seq) until it gets one.
            Err(CallError::Busy | CallError::TooManyInFlight { .. }) => {
                self.retry_when_not_busy(seq)
            }
            Err(CallError::Application(value)) => {
                let method = self
                    .calls
                    .get(seq)
                    .map(|call| call.method.clone())
                    .unwrap_or_default();
                self.complete(seq, Err(ClientError::Application { method, value }));
            }
            Err(CallError::SessionExpired) => {
                // The replicas refused this copy. If it was the only one sent,
                // the call did not run; if an earlier copy went out, that one
                // may have run and its reply was lost (it then fails below
                // with the others as of unknown outcome). The others in
                // flight belonged to the ended session too; those already
                // sent may have run before it ended.
                let sent_once = self.calls.get(seq).is_some_and(|call| call.sends <= 1);
                if sent_once {
                    self.complete(seq, Err(ClientError::Call(CallError::SessionExpired)));
                }
                self.fail_session_ended("the session expired");
                self.start_new_session();
            }
            Err(other) => self.complete(seq, Err(ClientError::Call(other))),
        }
    }

    /// Resends call `seq` after a short pause.
    fn retry_soon(&mut self, seq: u64) {
        if let Some(call) = self.calls.get_mut(seq) {
            call.delivery = Delivery::Backoff(Instant::now() + RETRY_PAUSE);
        }
    }

    /// Resends call `seq` after the replica said it is busy: a pause that
    /// doubles with each `Busy` (50 ms to 1.6 s), so that an overloaded
    /// replica is not flooded with the same calls again.
    fn retry_when_not_busy(&mut self, seq: u64) {
        if let Some(call) = self.calls.get_mut(seq) {
            let pause = RETRY_PAUSE * 2u32.pow(call.busy.min(5));
            call.busy = call.busy.saturating_add(1);
            call.delivery = Delivery::Backoff(Instant::now() + pause);
        }
    }

    fn complete(&mut self, seq: u64, reply: Reply) {
        if let Some(call) = self.calls.answered(seq) {
            let _ = call.reply.send(reply);
        }
    }

    /// Fails every call in flight of a session that ended: a call never sent
    /// did not run; one sent may have run, and its reply is lost.
    fn fail_session_ended(&mut self, why: &str) {
        for call in self.calls.take_all() {
            let err = if call.sends > 0 {
                ClientError::OutcomeUnknown {
                    method: call.method,
                    reason: format!("{why} before its reply arrived"),
                }
            } else {
                ClientError::Call(CallError::SessionExpired)
            };
            let _ = call.reply.send(Err(err));
        }
    }

    /// Fails every call in flight with `err` (a replica refused us).
    pub(super) fn fail_all(&mut self, mut err: impl FnMut() -> ClientError) {
        for call in self.calls.take_all() {
            let _ = call.reply.send(Err(err()));
        }
    }
}
