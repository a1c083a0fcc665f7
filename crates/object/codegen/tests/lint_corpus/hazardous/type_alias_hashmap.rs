//! A `HashMap` behind a type alias.
use std::collections::HashMap;

type Index = HashMap<String, u64>;

#[derive(Default)]
pub struct Obj {
    index: Index,
}

impl Obj {
    pub fn names(&self) -> Vec<String> {
        self.index.keys().cloned().collect() //~ iterating the HashMap/HashSet `index` (`.keys()`)
    }
}
