//! tracing's `?value` formats with Debug.
use std::collections::HashSet;

#[derive(Default)]
pub struct Obj {
    members: HashSet<u64>,
}

impl Obj {
    pub fn log(&self) {
        tracing::info!(members = ?self.members, "state"); //~ Debug formatting
    }
}
