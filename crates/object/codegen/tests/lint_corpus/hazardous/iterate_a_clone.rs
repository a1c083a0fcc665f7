//! Iterating a clone of a `HashMap` is iterating a `HashMap`.
use std::collections::HashMap;

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64>,
    log: Vec<String>,
}

impl Obj {
    pub fn dump(&mut self) {
        for (k, _) in self.m.clone() { //~ iterating the HashMap/HashSet
            self.log.push(k);
        }
    }
}
