//! `concoord.object.counter.Counter`: the seed's first example.

use concoord_macros::object;
use serde::{Deserialize, Serialize};

/// A replicated integer counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    value: i64,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.counter.Counter"
)]
impl Counter {
    /// `concoord_init()` or `concoord_init(value)`: restart from `value`,
    /// default 0 (the seed's `__init__(self, value=0)`).
    #[concoord(init)]
    pub fn starting_at(value: Option<i64>) -> Counter {
        Counter {
            value: value.unwrap_or(0),
        }
    }

    /// Adds one.
    pub fn increment(&mut self) {
        self.value += 1;
    }

    /// Subtracts one.
    pub fn decrement(&mut self) {
        self.value -= 1;
    }

    /// The current value.
    pub fn getvalue(&self) -> i64 {
        self.value
    }
}
