//! Lookups and updates in a `HashMap` do not depend on its order.
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, Vec<u64>>,
    seen: HashSet<u64>,
}

impl Obj {
    pub fn add(&mut self, k: String, v: u64) -> usize {
        self.m.entry(k.clone()).or_default().push(v);
        self.seen.insert(v);
        if self.m.contains_key(&k) { self.m.len() } else { 0 }
    }

    pub fn sum(&self, k: String) -> u64 {
        self.m.get(&k).map(|v| v.iter().sum()).unwrap_or(0)
    }

    pub fn first(&self, k: String) -> Option<u64> {
        let values = self.m.get(&k)?;
        values.iter().next().copied()
    }

    pub fn remove(&mut self, k: String) -> Option<Vec<u64>> {
        self.m.remove(&k)
    }

    pub fn subset(&self, other: Vec<u64>) -> bool {
        let other: HashSet<u64> = other.into_iter().collect();
        self.seen.is_subset(&other)
    }

    pub fn merge(&mut self, more: HashSet<u64>) {
        self.seen.extend(more);
    }

    pub fn all(&self) -> HashMap<String, Vec<u64>> {
        self.m.clone()
    }
}
