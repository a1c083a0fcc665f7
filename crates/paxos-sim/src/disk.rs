//! A node's simulated durable storage: what `Ready::persist` wrote, nothing
//! more. A crash loses everything else.

use paxos_core::{AcceptedEntry, Ballot, Entry, Persist, Recovered, Slot, Snapshot, ViewHistory};
use std::collections::BTreeMap;

/// Durable state of one node.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    promised: Ballot,
    accepted: BTreeMap<Slot, AcceptedEntry>,
    decided: BTreeMap<Slot, Entry>,
    snapshot: Option<Snapshot>,
    views: Option<ViewHistory>,
}

impl Disk {
    /// Applies one `Persist` (atomically, as if fsynced).
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

    /// What a restarting node reads back.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            promised: self.promised,
            accepted: self.accepted.values().cloned().collect(),
            decided: self.decided.iter().map(|(s, e)| (*s, e.clone())).collect(),
            snapshot: self.snapshot.clone(),
            views: self.views.clone(),
        }
    }

    /// Decided entries held (bounded by snapshots).
    pub fn decided_len(&self) -> usize {
        self.decided.len()
    }
}
