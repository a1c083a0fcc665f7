//! Which instance a process belongs to.
//!
//! Every instance gets a random [`InstanceId`] when its first replica founds
//! it. Replicas learn it from the founder (a joiner adopts it from the first
//! replica of its instance that proves the instance secret to it), durable
//! ones keep it in their data directory, and every handshake carries it both
//! ways: a connection from another instance is refused by name, and a client
//! never mixes replicas of two instances.
//!
//! Why it is needed besides the instance secret: a founder restarted without
//! `-b` and without its state reads the same secret file and would otherwise
//! found a second, empty instance its old peers talk to as if it were theirs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// An instance's identity: 64 random bits, never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceId(pub u64);

impl InstanceId {
    /// A new random id, for a new instance.
    pub fn generate() -> InstanceId {
        InstanceId(crate::determinism::random::<u64>().max(1))
    }

    /// Reads the form [`Display`](fmt::Display) prints (16 hex digits).
    pub fn parse(text: &str) -> Option<InstanceId> {
        u64::from_str_radix(text.trim(), 16)
            .ok()
            .filter(|v| *v != 0)
            .map(InstanceId)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({self})")
    }
}

/// A replica's instance id, shared by its listener and its outbound links:
/// known from the start for a founder or a durable replica, learned once
/// for a joiner.
#[derive(Debug, Default)]
pub struct InstanceCell(AtomicU64);

impl InstanceCell {
    /// A cell that knows `id` (or nothing yet).
    pub fn new(id: Option<InstanceId>) -> InstanceCell {
        InstanceCell(AtomicU64::new(id.map_or(0, |i| i.0)))
    }

    /// The id, once known.
    pub fn get(&self) -> Option<InstanceId> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            v => Some(InstanceId(v)),
        }
    }

    /// Checks a peer's instance against ours without adopting it. Returns
    /// ours when the two differ.
    pub fn check(&self, theirs: Option<InstanceId>) -> Result<(), InstanceId> {
        match self.get() {
            Some(mine) if !compatible(Some(mine), theirs) => Err(mine),
            _ => Ok(()),
        }
    }

    /// Checks an authenticated peer's instance against ours, adopting it if
    /// we know none yet (only from a peer known to be of our instance: a
    /// member of our view, or the member a link was meant to reach). Returns
    /// ours when the two differ.
    pub fn check_or_adopt(&self, theirs: Option<InstanceId>) -> Result<(), InstanceId> {
        let Some(theirs) = theirs else {
            return Ok(());
        };
        match self
            .0
            .compare_exchange(0, theirs.0, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            Err(mine) if mine == theirs.0 => Ok(()),
            Err(mine) => Err(InstanceId(mine)),
        }
    }
}

/// Whether a connection expecting `expected` may go on with a replica of
/// `found`: unknown on either side never conflicts.
pub fn compatible(expected: Option<InstanceId>, found: Option<InstanceId>) -> bool {
    match (expected, found) {
        (Some(e), Some(f)) => e == f,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_adopts_the_first_instance_and_refuses_others() {
        let cell = InstanceCell::new(None);
        assert_eq!(cell.get(), None);
        assert_eq!(cell.check_or_adopt(None), Ok(()));
        assert_eq!(cell.check_or_adopt(Some(InstanceId(7))), Ok(()));
        assert_eq!(cell.get(), Some(InstanceId(7)));
        assert_eq!(cell.check_or_adopt(Some(InstanceId(7))), Ok(()));
        assert_eq!(cell.check_or_adopt(Some(InstanceId(8))), Err(InstanceId(7)));
        assert_eq!(cell.get(), Some(InstanceId(7)));
    }

    #[test]
    fn ids_print_and_parse_back() {
        let id = InstanceId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!(InstanceId::parse(&id.to_string()), Some(id));
        assert_eq!(InstanceId::parse("0"), None);
        assert_eq!(InstanceId::parse("xyz"), None);
        assert_ne!(InstanceId::generate().0, 0);
    }
}
