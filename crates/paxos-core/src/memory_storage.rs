//! A reference storage that keeps in memory exactly what `Ready::persist` asks
//! to make durable. Tests and simulations use it; a real runtime writes the
//! same records to disk with fsync, and reads them back into [`Recovered`].

use crate::entry::Entry;
use crate::message::AcceptedEntry;
use crate::node::Recovered;
use crate::ready::Persist;
use crate::snapshot::Snapshot;
use crate::types::{Ballot, Slot};
use crate::view::ViewHistory;
use std::collections::BTreeMap;

/// Durable state of one node, as [`Persist`] records describe it.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    promised: Ballot,
    accepted: BTreeMap<Slot, AcceptedEntry>,
    decided: BTreeMap<Slot, Entry>,
    snapshot: Option<Snapshot>,
    views: Option<ViewHistory>,
}

impl MemoryStorage {
    /// Applies one `Persist`, as if written and synced atomically. A snapshot
    /// drops every record at or below its slot.
    pub fn write(&mut self, p: &Persist) {
        if let Some(b) = p.promised {
            self.promised = self.promised.max(b);
        }
        for a in &p.accepted {
            self.accepted.insert(a.slot, a.clone());
        }
        for (slot, entry) in &p.decided {
            self.decided.insert(*slot, entry.clone());
        }
        if let Some(v) = &p.views {
            self.views = Some(v.clone());
        }
        if let Some(s) = &p.snapshot {
            let keep_from = s.slot + 1;
            self.accepted = self.accepted.split_off(&keep_from);
            self.decided = self.decided.split_off(&keep_from);
            self.snapshot = Some(s.clone());
        }
    }

    /// What a node restarting from this storage reads back.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            promised: self.promised,
            accepted: self.accepted.values().cloned().collect(),
            decided: self.decided.iter().map(|(s, e)| (*s, e.clone())).collect(),
            snapshot: self.snapshot.clone(),
            views: self.views.clone(),
        }
    }

    /// Decided entries held, by slot.
    pub fn decided(&self) -> &BTreeMap<Slot, Entry> {
        &self.decided
    }

    /// The last snapshot written, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
}
