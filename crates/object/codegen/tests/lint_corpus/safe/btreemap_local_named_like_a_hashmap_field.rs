//! A `BTreeMap` local that shares a `HashMap` field's name is a `BTreeMap`.
use std::collections::{BTreeMap, HashMap};

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64>,
}

impl Obj {
    pub fn sorted(&self, names: Vec<String>) -> Vec<String> {
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        for n in names {
            m.insert(n, 1);
        }
        m.keys().cloned().collect()
    }

    pub fn untyped(&self) -> u64 {
        let mut m = BTreeMap::new();
        m.insert(1u64, 2u64);
        for (k, v) in &m {
            let _ = (k, v);
        }
        m.values().sum()
    }

    pub fn shadowed(&self) -> usize {
        let m = vec![1, 2, 3];
        m.iter().count() + self.m.len()
    }
}
