//! Serializing a `HashMap` writes its entries in a random order.
use std::collections::HashMap;

#[derive(Default)]
pub struct Obj {
    m: HashMap<String, u64>,
    json: String,
}

impl Obj {
    pub fn export(&mut self) {
        self.json = serde_json::to_string(&self.m).unwrap_or_default(); //~ serializing `m` (`serde_json::to_string`)
    }
}
