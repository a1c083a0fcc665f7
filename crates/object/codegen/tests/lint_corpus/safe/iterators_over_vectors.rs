//! Iterating vectors, B-trees and options, with closures, loops and
//! adaptors, touches no hash order.
use std::collections::{BTreeMap, BTreeSet, VecDeque};

#[derive(Default)]
pub struct Obj {
    groups: BTreeMap<String, Vec<u64>>,
    queue: VecDeque<(u64, String)>,
    best: Option<BTreeSet<u64>>,
}

impl Obj {
    pub fn total(&self) -> u64 {
        let mut total = 0;
        for (_, members) in &self.groups {
            for m in members {
                total += m;
            }
        }
        total += self.groups.values().map(|v| v.iter().sum::<u64>()).sum::<u64>();
        total += self.queue.iter().map(|(n, _)| *n).sum::<u64>();
        if let Some(best) = &self.best {
            total += best.iter().copied().sum::<u64>();
        }
        total
    }

    pub fn union(&self, other: BTreeSet<u64>) -> Vec<u64> {
        self.best.clone().unwrap_or_default().union(&other).copied().collect()
    }
}
