//! A hash map with a fixed hasher iterates the same way on every replica.
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::collections::hash_map::DefaultHasher;

type Fixed = BuildHasherDefault<DefaultHasher>;

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64, Fixed>,
}

impl Obj {
    pub fn names(&self) -> Vec<String> {
        self.m.keys().cloned().collect()
    }
}
