//! The object the counter scenario serves: a few counters whose increment
//! returns the new value, so a history of increments and reads can be
//! checked for linearizability (`paxos_sim::linearizability`). Its
//! snapshots are serialized off the replica's loop (`detached_snapshot`), so
//! the simulation puts that path under its faults: a snapshot finishes turns
//! after the slot it was taken at, across crashes and installed transfers.

use concoord_macros::object;
use serde::{Deserialize, Serialize};

/// How many counters the object holds.
pub const KEYS: u8 = 3;

/// Counters `0..KEYS`, all starting at 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    values: Vec<i64>,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.sim.Counters",
    detached_snapshot = true
)]
impl Counters {
    /// Adds one to counter `key`; returns its new value.
    pub fn increment(&mut self, key: u8) -> i64 {
        let i = usize::from(key);
        if self.values.len() <= i {
            self.values.resize(i + 1, 0);
        }
        self.values[i] += 1;
        self.values[i]
    }

    /// The value of counter `key` (a read: served through read-index).
    pub fn read(&self, key: u8) -> i64 {
        self.values.get(usize::from(key)).copied().unwrap_or(0)
    }
}
