//! The clock under another name.
use std::time::SystemTime as Clock; //~ wall-clock time

#[derive(Default)]
pub struct Obj {
    ok: bool,
}

impl Obj {
    pub fn touch(&mut self) {
        self.ok = Clock::now().elapsed().is_ok(); //~ wall-clock time
    }
}
