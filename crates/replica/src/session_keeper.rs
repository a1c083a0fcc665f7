//! Session liveness, run by the leader: a client session that has sent
//! nothing (no call, no keep-alive) for longer than the TTL is expired through
//! the log, so every replica ends it at the same point of the command
//! sequence and releases what it held identically.
//!
//! Liveness itself is local and clock-based (only the leader's clock is
//! read, and only to decide *whether to propose*): a leader that has just
//! taken over counts every session as heard at that moment, so a failover
//! never expires sessions whose clients were talking to the old leader.

use crate::logged_call::LoggedCall;
use crate::replicated_state::SYSTEM_CLIENT;
use concoord_object::{CONCOORD_EXPIRE, args};
use concoord_transport::determinism::HashMap;
use paxos_core::{Node, Role};
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;

/// How often the leader looks for silent sessions.
const SCAN_EVERY: Duration = Duration::from_millis(100);
/// A proposed expiry not yet executed is proposed again after this long.
const PROPOSE_AGAIN_AFTER: Duration = Duration::from_secs(2);
/// Sessions expired by one log entry at most.
const EXPIRED_PER_ENTRY_MAX: usize = 1024;

/// Tracks when each client was last heard from and expires silent sessions.
pub struct SessionKeeper {
    ttl: Duration,
    last_heard: HashMap<u64, Instant>,
    leading_since: Option<Instant>,
    proposed: HashMap<u64, Instant>,
    last_scan: Instant,
}

impl SessionKeeper {
    /// A keeper expiring sessions silent for longer than `ttl`.
    pub fn new(ttl: Duration) -> Self {
        SessionKeeper {
            ttl,
            last_heard: HashMap::default(),
            leading_since: None,
            proposed: HashMap::default(),
            last_scan: Instant::now(),
        }
    }

    /// Client `client` sent something.
    pub fn heard_from(&mut self, client: u64) {
        self.last_heard.insert(client, Instant::now());
    }

    /// After a driver turn: if leading, proposes expiring the sessions
    /// (among `live`) silent for longer than the TTL.
    pub fn after_turn(&mut self, node: &mut Node, live: impl Iterator<Item = u64>) {
        let now = Instant::now();
        if node.role() != Role::Leader {
            self.leading_since = None;
            return;
        }
        let since = *self.leading_since.get_or_insert(now);
        if now.duration_since(self.last_scan) < SCAN_EVERY {
            return;
        }
        self.last_scan = now;
        let mut silent = Vec::new();
        let mut live_count = 0usize;
        for client in live {
            live_count += 1;
            let heard = self
                .last_heard
                .get(&client)
                .copied()
                .unwrap_or(since)
                .max(since);
            let asked = self
                .proposed
                .get(&client)
                .is_some_and(|t| now.duration_since(*t) < PROPOSE_AGAIN_AFTER);
            if now.duration_since(heard) > self.ttl
                && !asked
                && silent.len() < EXPIRED_PER_ENTRY_MAX
            {
                silent.push(client);
            }
        }
        // Forget clients whose sessions ended (bounded memory).
        if self.last_heard.len() > 2 * live_count + 1024 {
            self.last_heard
                .retain(|_, t| now.duration_since(*t) <= self.ttl * 4);
        }
        self.proposed
            .retain(|_, t| now.duration_since(*t) < PROPOSE_AGAIN_AFTER);
        if silent.is_empty() {
            return;
        }
        let Ok(encoded) = args::encode(&(silent.clone(),)) else {
            return;
        };
        let call = LoggedCall {
            client_id: SYSTEM_CLIENT,
            issued_ms: 0,
            seq: 0,
            acked: 0,
            done: Vec::new(),
            method: CONCOORD_EXPIRE.to_string(),
            args: encoded,
        };
        if node.propose(call.to_command()).is_ok() {
            info!(
                sessions = silent.len(),
                ttl_ms = self.ttl.as_millis() as u64,
                "expiring silent client sessions"
            );
            for c in silent {
                self.proposed.insert(c, now);
            }
        }
    }
}
