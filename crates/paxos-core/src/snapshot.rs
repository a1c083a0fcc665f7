//! Snapshots: the state machine at an executed slot, plus the views after it.

use crate::types::Slot;
use crate::view::ViewHistory;
use serde::{Deserialize, Serialize};

/// The caller's state-machine image taken after executing every slot up to
/// `slot`, together with the view history the core needs to go on from there.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Last slot included.
    pub slot: Slot,
    /// Views as of `slot`.
    pub views: ViewHistory,
    /// The caller's opaque state (object + exactly-once table, for ConCoord).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl core::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Snapshot")
            .field("slot", &self.slot)
            .field("views", &self.views)
            .field("data_bytes", &self.data.len())
            .finish()
    }
}
