//! Generic helpers and generic structs filled with ordered collections.
use std::collections::BTreeMap;

fn render(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join(",")
}

#[derive(Default)]
pub struct Store<M> {
    items: M,
}

pub type Obj = Store<BTreeMap<String, u64>>;

impl<M: IntoIterator + Clone> Store<M> {
    pub fn count(&self) -> usize {
        self.items.clone().into_iter().count()
    }
}

impl Store<BTreeMap<String, u64>> {
    pub fn show(&self) -> String {
        render(self.items.keys().cloned().collect::<Vec<_>>())
    }
}
