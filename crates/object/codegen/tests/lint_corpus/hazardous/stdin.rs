//! Reading standard input.
use std::io::stdin; //~ reading standard input (`std::io::stdin`)

#[derive(Default)]
pub struct Obj {
    line: String,
}

impl Obj {
    pub fn read(&mut self) {
        let _ = stdin().read_line(&mut self.line); //~ reading standard input (`stdin` is `std::io::stdin`)
        let _ = std::io::stdin().read_line(&mut self.line); //~ reading standard input
    }
}
