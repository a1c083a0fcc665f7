//! A `HashMap` returned by a method, or taken out of a field, is still one.
use std::collections::HashMap;

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64>,
}

impl Obj {
    fn snapshot(&self) -> HashMap<String, u64> {
        self.m.clone()
    }

    pub fn names(&mut self) -> Vec<String> {
        let mut out: Vec<String> = self.snapshot().into_keys().collect(); //~ (`.into_keys()`)
        let taken = std::mem::take(&mut self.m);
        out.extend(taken.into_keys()); //~ iterating the HashMap/HashSet `taken` (`.into_keys()`)
        out
    }
}
