//! The seed's TenCounter, ConCoordified: a counter that moves by ten.
//!
//! Serve it with the `tencounter-replica` binary (every `concoord replica`
//! flag works) and call it through `TenCounterProxy`, or through the
//! standalone `tencounter_proxy.rs` that `concoord object -o
//! tests/tencounter/src/lib.rs::TenCounter` writes next to this file.

use serde::{Deserialize, Serialize};

/// A counter that moves by ten.
#[derive(Default, Serialize, Deserialize)]
pub struct TenCounter {
    value: i64,
}

#[concoord::object(name = "tencounter.TenCounter")]
impl TenCounter {
    /// `concoord_init(value)`: start again from `value` (default 0), like the
    /// seed's `__init__(self, value=0)`.
    #[concoord(init)]
    pub fn new(value: Option<i64>) -> TenCounter {
        TenCounter {
            value: value.unwrap_or(0),
        }
    }

    /// Subtracts ten.
    pub fn decrement(&mut self) {
        self.value -= 10;
    }

    /// Adds ten.
    pub fn increment(&mut self) {
        self.value += 10;
    }

    /// Divides the value (integer division; dividing by zero panics, which
    /// the replicas turn into an error reply for this call only).
    pub fn divide(&mut self, by: i64) {
        self.value /= by;
    }

    /// The current value.
    pub fn getvalue(&self) -> i64 {
        self.value
    }

    /// The seed's `__str__`.
    pub fn describe(&self) -> String {
        format!("The counter value is {}", self.value)
    }
}
