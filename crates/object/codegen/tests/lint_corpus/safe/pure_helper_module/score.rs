//! A deterministic helper.
use std::collections::BTreeMap;

pub fn of(word: &str) -> u64 {
    let mut counts: BTreeMap<char, u64> = BTreeMap::new();
    for c in word.chars() {
        *counts.entry(c).or_default() += 1;
    }
    counts.values().map(|n| n * n).sum()
}
