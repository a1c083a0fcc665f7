//! A wrapper that derefs to a `HashMap` iterates like one.
use std::collections::HashMap;
use std::ops::Deref;

#[derive(Default)]
pub struct Index(HashMap<String, u64>);

impl Deref for Index {
    type Target = HashMap<String, u64>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[derive(Default)]
pub struct Obj {
    index: Index,
}

impl Obj {
    pub fn names(&self) -> Vec<String> {
        self.index.keys().cloned().collect() //~ iterating the HashMap/HashSet `index` (`.keys()`)
    }
}
