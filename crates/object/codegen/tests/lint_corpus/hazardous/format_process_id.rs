//! A hazard hidden in a macro's arguments: the process id differs per replica.
#[derive(Default)]
pub struct Obj {
    last: String,
}

impl Obj {
    pub fn tag(&mut self) {
        self.last = format!("{}", std::process::id()); //~ process access (`std::process::id`)
    }
}
