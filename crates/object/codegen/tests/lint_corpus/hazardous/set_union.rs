//! Set algebra on `HashSet`s yields elements in a random order.
use std::collections::HashSet;

#[derive(Default)]
pub struct Obj {
    a: HashSet<u64>,
    b: HashSet<u64>,
}

impl Obj {
    pub fn both(&self) -> Vec<u64> {
        self.a.union(&self.b).copied().collect() //~ iterating the HashMap/HashSet `a` (`.union()`)
    }

    pub fn only_a(&self) -> Vec<u64> {
        self.a.difference(&self.b).copied().collect() //~ (`.difference()`)
    }
}
