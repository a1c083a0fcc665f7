//! Session tickets: a client session belongs to whoever holds its ticket.
//!
//! A replica opens a session for a client that asks for a new one: it picks a
//! random id, notes the time, and hands back `secret = MAC(instance secret,
//! id, time)`. Resuming the
//! session — after a lost connection, at another replica after a failover —
//! needs the pair; any replica of the instance checks it without replicated
//! state, since they all hold the instance secret. Ids are therefore never
//! chosen by clients, and knowing a session's id (it is not secret) gives no
//! power over it: without its ticket another connection can neither call as
//! that session, nor acknowledge its replies, nor release what it holds, nor
//! close it.

use crate::instance_secret::{InstanceSecret, macs_match};
use crate::wire::SessionTicket;

/// Client id 0 is the replicas' own (logged session expiries); never issued.
const RESERVED_ID: u64 = 0;

impl InstanceSecret {
    fn session_mac(&self, id: u64, issued_ms: u64) -> [u8; 32] {
        self.mac(
            b"concoord/2/session",
            &[&id.to_be_bytes(), &issued_ms.to_be_bytes()],
        )
    }

    /// Opens a new session: a random id, its issue time (now, but never
    /// before `not_before_ms`) and its secret.
    pub fn issue_session(&self, not_before_ms: u64) -> SessionTicket {
        let mut id = crate::determinism::random::<u64>();
        while id == RESERVED_ID {
            id = crate::determinism::random();
        }
        let now_ms = crate::determinism::unix_time_ms();
        let issued_ms = now_ms.max(not_before_ms);
        SessionTicket {
            id,
            issued_ms,
            secret: self.session_mac(id, issued_ms).to_vec(),
        }
    }

    /// Whether `ticket` was issued by a replica of this instance.
    pub fn session_is_genuine(&self, ticket: &SessionTicket) -> bool {
        ticket.id != RESERVED_ID
            && macs_match(
                &self.session_mac(ticket.id, ticket.issued_ms),
                &ticket.secret,
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_good_at_every_replica_of_its_instance_and_nowhere_else() {
        let secret = InstanceSecret::generate();
        let ticket = secret.issue_session(0);
        let other_replica = secret.clone();
        assert!(other_replica.session_is_genuine(&ticket));
        assert!(!InstanceSecret::generate().session_is_genuine(&ticket));
    }

    #[test]
    fn an_id_without_its_secret_is_no_session() {
        let secret = InstanceSecret::generate();
        let ticket = secret.issue_session(0);
        let claimed = SessionTicket {
            id: ticket.id,
            issued_ms: ticket.issued_ms,
            secret: vec![0; 32],
        };
        assert!(!secret.session_is_genuine(&claimed));
        let other = SessionTicket {
            id: ticket.id ^ 1,
            ..ticket.clone()
        };
        assert!(!secret.session_is_genuine(&other));
        let backdated = SessionTicket {
            issued_ms: ticket.issued_ms - 1,
            ..ticket.clone()
        };
        assert!(
            !secret.session_is_genuine(&backdated),
            "the issue time is signed too"
        );
        let truncated = SessionTicket {
            secret: ticket.secret[..16].to_vec(),
            ..ticket.clone()
        };
        assert!(!secret.session_is_genuine(&truncated));
    }
}
