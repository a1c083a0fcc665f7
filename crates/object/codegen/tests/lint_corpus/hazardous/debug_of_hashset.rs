//! Debug lists a `HashSet` in its random order.
use std::collections::HashSet;

#[derive(Default)]
pub struct Obj {
    members: HashSet<String>,
    shown: String,
}

impl Obj {
    pub fn show(&mut self) {
        self.shown = format!("{:?}", self.members); //~ Debug formatting (`{:?}`) of `members`
        let members = self.members.clone();
        self.shown = format!("{members:#?}"); //~ Debug formatting
        let _ = dbg!(&self.members); //~ Debug formatting
    }
}
