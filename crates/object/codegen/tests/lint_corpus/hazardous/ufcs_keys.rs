//! `HashMap::keys(&m)`: a method called as a function.
use std::collections::HashMap;

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64>,
}

impl Obj {
    pub fn names(&self) -> Vec<String> {
        HashMap::keys(&self.m).cloned().collect() //~ iterating the HashMap/HashSet `m` (`HashMap::keys`)
    }
}
