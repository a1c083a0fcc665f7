//! `extract_if` yields entries in a random order.
use std::collections::HashMap;

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64>,
}

impl Obj {
    pub fn take_empty(&mut self) -> Vec<String> {
        self.m.extract_if(|_, v| *v == 0).map(|(k, _)| k).collect() //~ (`.extract_if()`)
    }
}
