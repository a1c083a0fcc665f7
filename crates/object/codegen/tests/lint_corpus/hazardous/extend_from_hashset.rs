//! `extend` iterates its argument.
use std::collections::HashSet;

#[derive(Default)]
pub struct Obj {
    seen: HashSet<String>,
    log: Vec<String>,
}

impl Obj {
    pub fn dump(&mut self) {
        self.log.extend(self.seen.clone()); //~ (passed to `.extend()`)
    }
}
