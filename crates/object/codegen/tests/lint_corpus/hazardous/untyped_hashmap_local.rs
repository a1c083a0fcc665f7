//! A `HashMap` local without a written type, then iterated.
use std::collections::HashMap;

#[derive(Default)]
pub struct Obj {
    order: Vec<String>,
}

impl Obj {
    pub fn rebuild(&mut self, names: Vec<String>) {
        let mut counts = HashMap::new();
        for n in names {
            *counts.entry(n).or_insert(0u64) += 1;
        }
        for (name, _) in &counts { //~ iterating the HashMap/HashSet `counts`
            self.order.push(name.clone());
        }
    }
}
