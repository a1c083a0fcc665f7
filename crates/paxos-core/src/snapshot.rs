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

/// A 64-bit FNV-1a digest of a snapshot's bytes, sent with every chunk so the
/// receiver can tell that the chunks it spliced together are the snapshot the
/// sender meant (one transfer, nothing lost or mixed in) before installing it.
/// It guards against accidents, not forgers: peers are authenticated by the
/// caller's transport.
pub(crate) fn digest(data: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    data.iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::digest;

    #[test]
    fn the_digest_tells_spliced_bytes_apart() {
        assert_eq!(digest(b"abcdef"), digest(b"abcdef"));
        assert_ne!(digest(b"abcdef"), digest(b"abcxyz"));
        assert_ne!(digest(b""), digest(b"\0"));
    }
}
