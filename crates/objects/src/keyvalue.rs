//! `concoord.object.keyvalue.KeyValue`: a replicated map of strings with
//! compare-and-swap, the building block of etcd- or ZooKeeper-style use.

use concoord_macros::object;
pub use concoord_object::ready_made::KvError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Keys and values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    map: BTreeMap<String, String>,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.keyvalue.KeyValue"
)]
impl KeyValue {
    /// The value of `key`, if any.
    pub fn get(&self, key: String) -> Option<String> {
        self.map.get(&key).cloned()
    }

    /// Sets `key`; returns the previous value.
    pub fn put(&mut self, key: String, value: String) -> Option<String> {
        self.map.insert(key, value)
    }

    /// Removes `key`; returns its value.
    pub fn delete(&mut self, key: String) -> Option<String> {
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
        let current = self.map.get(&key).cloned();
        if current != expected {
            return Err(KvError::Mismatch { current });
        }
        match new {
            Some(v) => {
                self.map.insert(key, v);
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
