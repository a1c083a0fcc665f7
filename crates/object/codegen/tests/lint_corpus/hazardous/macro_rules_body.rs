//! A hazard inside a `macro_rules!` body, which cannot be parsed as code.
use std::collections::HashMap;

macro_rules! first_key {
    ($obj:expr) => {
        $obj.m.keys().next().cloned() //~ iterating the HashMap/HashSet `m`
    };
}

macro_rules! stamp {
    () => {
        std::time::Instant::now() //~ wall-clock time
    };
}

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64>,
}

impl Obj {
    pub fn first(&self) -> Option<String> {
        let _ = stamp!();
        first_key!(self)
    }
}
