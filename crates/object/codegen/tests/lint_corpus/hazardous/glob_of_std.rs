//! Everything of `std` imported by a glob: `process::id()` is the process id.
use std::*;

#[derive(Default)]
pub struct Obj {
    n: u64,
}

impl Obj {
    pub fn touch(&mut self) {
        self.n = u64::from(process::id()); //~ process access (`process::id` is `std::process::id`)
        self.n += env::args().count() as u64; //~ environment access (`env::args` is `std::env::args`)
    }
}
