//! `concoord.object.keyvalue.KeyValue`: a replicated map of strings with
//! compare-and-swap, the building block of etcd- or ZooKeeper-style use.
//!
//! The map is a persistent B-tree (`imbl::OrdMap`): a clone shares every node
//! until one side writes to it, so a snapshot is serialized from a clone on
//! another thread while the replica goes on executing puts, instead of
//! stopping for it (a million keys take about 0.4 s to serialize). A put after
//! a snapshot pays for copying the one leaf it writes: up to 64 keys, and the
//! values' reference counts (values are shared `Arc<str>`, so a leaf of 1 MiB
//! values is not 64 MiB to copy). The map serializes as
//! the `BTreeMap` it replaced did (a msgpack map in key order), so snapshots
//! written before read the same.

use concoord_macros::object;
pub use concoord_object::ready_made::KvError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Keys and values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    map: imbl::OrdMap<String, Arc<str>>,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.keyvalue.KeyValue",
    detached_snapshot = true
)]
impl KeyValue {
    /// The value of `key`, if any.
    pub fn get(&self, key: String) -> Option<Arc<str>> {
        self.map.get(&key).cloned()
    }

    /// Sets `key`; returns the previous value.
    pub fn put(&mut self, key: String, value: String) -> Option<Arc<str>> {
        self.map.insert(key, value.into())
    }

    /// Removes `key`; returns its value.
    pub fn delete(&mut self, key: String) -> Option<Arc<str>> {
        self.map.remove(&key)
    }

    /// Sets `key` to `new` (`None`: delete it) only if it holds `expected`
    /// (`None`: absent).
    pub fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
    ) -> Result<(), KvError> {
        let current = self.map.get(&key);
        if current.map(|v| &**v) != expected.as_deref() {
            return Err(KvError::Mismatch {
                current: current.map(|v| v.to_string()),
            });
        }
        match new {
            Some(v) => {
                self.map.insert(key, v.into());
            }
            None => {
                self.map.remove(&key);
            }
        }
        Ok(())
    }

    /// Keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: String) -> Vec<String> {
        self.map
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concoord_object::ReplicatedObject;
    use std::collections::BTreeMap;

    fn filled(n: usize) -> KeyValue {
        let mut kv = KeyValue::default();
        for i in 0..n {
            kv.put(format!("key-{i:05}"), format!("value-{i}"));
        }
        kv
    }

    #[test]
    fn a_detached_snapshot_holds_the_state_it_was_made_at_whatever_is_written_after() {
        let mut kv = filled(5_000);
        let before = kv.snapshot().expect("snapshot");
        let detached = kv
            .detached_snapshot()
            .expect("KeyValue detaches its snapshots");
        for i in 0..5_000 {
            kv.put(format!("key-{i:05}"), "overwritten".into());
        }
        kv.put("a-new-key".into(), "x".into());
        kv.delete("key-00007".into());
        let bytes = detached().expect("the detached snapshot serializes");
        assert_eq!(bytes, before, "the copy did not see the later writes");
        let restored = KeyValue::restore(&bytes).expect("restore");
        assert_eq!(restored, filled(5_000));
    }

    #[test]
    fn a_snapshot_of_the_btreemap_it_replaced_restores_and_encodes_alike() {
        #[derive(Serialize)]
        struct Before {
            map: BTreeMap<String, String>,
        }
        let old = Before {
            map: (0..100)
                .map(|i| (format!("key-{i:05}"), format!("value-{i}")))
                .collect(),
        };
        let old_bytes = rmp_serde::to_vec(&old).expect("encode");
        let kv = KeyValue::restore(&old_bytes).expect("an old snapshot restores");
        assert_eq!(kv, filled(100));
        assert_eq!(kv.snapshot().expect("snapshot"), old_bytes);
    }
}
