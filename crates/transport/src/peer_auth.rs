//! Proving membership: the challenge–response that opens every connection
//! claiming to be a replica (or an operator).
//!
//! ```text
//!  initiator (claims node I)                 responder (node R)
//!  Hello { role, nonce_i } ───────────────▶
//!                          ◀─────────────── Challenge { R, nonce_r, proof_r }
//!  checks proof_r
//!  Proof { proof_i } ─────────────────────▶  checks proof_i
//!                          ◀─────────────── Welcome / Rejected
//! ```
//!
//! `proof_r = MAC(responder, purpose, nonce_i, nonce_r, I, R)` and
//! `proof_i = MAC(initiator, purpose, nonce_i, nonce_r, I, R)`, keyed with
//! the instance secret. Both nonces are fresh and random, so a proof is
//! good for one connection only (no replay); the side is part of the MAC, so
//! a responder's proof can never be reflected back as an initiator's; and
//! both node ids are in it, so a proof made as one node does not speak for
//! another. Only the secret's holders can answer, and the node id a
//! connection proved is the only one its messages are taken from.

use crate::instance_secret::{InstanceSecret, macs_match};
use paxos_core::NodeId;

/// Bytes in a challenge nonce.
pub const NONCE_BYTES: usize = 32;

/// What a connection proves it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Speak as the replica with the claimed node id.
    Replica,
    /// Run operator requests (view changes, stopping a member).
    Operator,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Replica => b"replica",
            Purpose::Operator => b"operator",
        }
    }
}

/// Which end of the connection a proof comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The connecting side.
    Initiator,
    /// The accepting side.
    Responder,
}

/// One handshake's parameters, as both ends see them.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    /// What the initiator claims.
    pub purpose: Purpose,
    /// The initiator's nonce.
    pub initiator_nonce: &'a [u8],
    /// The responder's nonce.
    pub responder_nonce: &'a [u8],
    /// The node the initiator claims to be (`NodeId(0)` for an operator).
    pub initiator: NodeId,
    /// The responder's node id.
    pub responder: NodeId,
}

/// A fresh random nonce.
pub fn nonce() -> Vec<u8> {
    crate::determinism::random::<[u8; NONCE_BYTES]>().to_vec()
}

impl Exchange<'_> {
    /// The proof `side` sends.
    pub fn proof(&self, secret: &InstanceSecret, side: Side) -> [u8; 32] {
        let side: &[u8] = match side {
            Side::Initiator => b"initiator",
            Side::Responder => b"responder",
        };
        secret.mac(
            b"concoord/2/handshake",
            &[
                side,
                self.purpose.label(),
                self.initiator_nonce,
                self.responder_nonce,
                &self.initiator.0.to_be_bytes(),
                &self.responder.0.to_be_bytes(),
            ],
        )
    }

    /// Whether `received` is the proof `side` must send, in constant time.
    pub fn verify(&self, secret: &InstanceSecret, side: Side, received: &[u8]) -> bool {
        self.initiator_nonce.len() == NONCE_BYTES
            && self.responder_nonce.len() == NONCE_BYTES
            && macs_match(&self.proof(secret, side), received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange<'a>(ni: &'a [u8], nr: &'a [u8]) -> Exchange<'a> {
        Exchange {
            purpose: Purpose::Replica,
            initiator_nonce: ni,
            responder_nonce: nr,
            initiator: NodeId(7),
            responder: NodeId(9),
        }
    }

    #[test]
    fn only_the_secrets_holder_answers_and_a_proof_fits_one_exchange_only() {
        let secret = InstanceSecret::generate();
        let (ni, nr) = (nonce(), nonce());
        let x = exchange(&ni, &nr);
        let proof = x.proof(&secret, Side::Initiator);
        assert!(x.verify(&secret, Side::Initiator, &proof));
        let stranger = InstanceSecret::generate();
        assert!(!x.verify(
            &secret,
            Side::Initiator,
            &x.proof(&stranger, Side::Initiator)
        ));
        // Reflected: a responder's proof is no initiator's proof.
        assert!(!x.verify(&secret, Side::Initiator, &x.proof(&secret, Side::Responder)));
        // Replayed into another connection (new responder nonce).
        let other = nonce();
        assert!(!exchange(&ni, &other).verify(&secret, Side::Initiator, &proof));
        // Made as one node, claimed for another.
        let as_other = Exchange {
            initiator: NodeId(8),
            ..x
        };
        assert!(!as_other.verify(&secret, Side::Initiator, &proof));
        // An operator's proof does not admit a replica.
        let operator = Exchange {
            purpose: Purpose::Operator,
            ..x
        };
        assert!(!x.verify(
            &secret,
            Side::Initiator,
            &operator.proof(&secret, Side::Initiator)
        ));
    }

    #[test]
    fn short_nonces_never_verify() {
        let secret = InstanceSecret::generate();
        let nr = nonce();
        let x = exchange(&[], &nr);
        assert!(!x.verify(&secret, Side::Initiator, &x.proof(&secret, Side::Initiator)));
    }
}
