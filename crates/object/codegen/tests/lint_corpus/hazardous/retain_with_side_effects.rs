//! `retain` visits entries in a random order.
use std::collections::HashMap;

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64>,
}

impl Obj {
    pub fn prune(&mut self) -> Vec<String> {
        let mut dropped = Vec::new();
        self.m.retain(|k, v| { //~ iterating the HashMap/HashSet `m` (`.retain()`)
            if *v == 0 {
                dropped.push(k.clone());
            }
            *v > 0
        });
        dropped
    }
}
