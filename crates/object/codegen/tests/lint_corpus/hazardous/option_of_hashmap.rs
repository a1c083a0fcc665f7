//! A `HashMap` inside an `Option`.
use std::collections::HashMap;

#[derive(Default)]
pub struct Obj {
    cache: Option<HashMap<String, u64>>,
}

impl Obj {
    pub fn total(&self) -> u64 {
        let mut sum = 0;
        if let Some(cache) = &self.cache {
            for (_, v) in cache { //~ iterating the HashMap/HashSet `cache`
                sum += v;
            }
        }
        sum
    }

    pub fn first(&self) -> Option<String> {
        self.cache.as_ref().unwrap().keys().next().cloned() //~ (`.keys()`)
    }

    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }
}
