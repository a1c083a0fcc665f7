//! A generic struct whose parameter the crate fills with a `HashMap`.
use std::collections::HashMap;

#[derive(Default)]
pub struct Store<M> {
    items: M,
}

pub type Obj = Store<HashMap<String, u64>>;

impl<M: IntoIterator + Clone> Store<M> {
    pub fn count(&self) -> usize {
        self.items.clone().into_iter().count() //~ which may be a HashMap/HashSet
    }
}
