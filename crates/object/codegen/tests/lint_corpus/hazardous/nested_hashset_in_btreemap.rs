//! A `HashSet` inside a `BTreeMap`: the outer order is fixed, the inner is not.
use std::collections::{BTreeMap, HashSet};

#[derive(Default)]
pub struct Obj {
    groups: BTreeMap<String, HashSet<u64>>,
}

impl Obj {
    pub fn flat(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for (_, members) in &self.groups {
            for m in members { //~ iterating the HashMap/HashSet `members`
                out.push(*m);
            }
        }
        out
    }

    pub fn firsts(&self) -> Vec<u64> {
        self.groups.values().filter_map(|s| s.iter().next().copied()).collect() //~ iterating the HashMap/HashSet `s` (`.iter()`)
    }
}
