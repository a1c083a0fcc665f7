//! `concoord.object.log.Log`: a replicated log of text entries.

use concoord_macros::object;
use serde::{Deserialize, Serialize};

/// An ordered list of entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    entries: Vec<String>,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.log.Log"
)]
impl Log {
    /// Replaces the whole log with this one entry.
    pub fn write(&mut self, entry: String) {
        self.entries = vec![entry];
    }

    /// Adds an entry at the end; returns its position.
    pub fn append(&mut self, entry: String) -> u64 {
        self.entries.push(entry);
        self.entries.len() as u64 - 1
    }

    /// Every entry, oldest first.
    pub fn read(&self) -> Vec<String> {
        self.entries.clone()
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Whether the log has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
