//! Formatting deterministic values, in and out of macros.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

#[derive(Debug, Default)]
pub struct Inner {
    tags: BTreeSet<String>,
}

#[derive(Default)]
pub struct Obj {
    n: u64,
    m: BTreeMap<String, u64>,
    inner: Inner,
    out: String,
}

impl Obj {
    pub fn show(&mut self) -> String {
        let list = vec![self.n, self.n + 1];
        let n = self.n;
        self.out = format!("{} {:?} {:?} {list:?} {n:>5}", self.n, self.m, self.inner);
        let _ = write!(self.out, "{:#?}", self.m.keys().collect::<Vec<_>>());
        assert_eq!(self.n, n, "{:?}", self.inner);
        println!("{}", self.out);
        self.out.clone()
    }

    pub fn json(&self) -> String {
        serde_json::to_string(&self.m).unwrap_or_default()
    }
}
