//! `std` under another name.
use std as s;

#[derive(Default)]
pub struct Obj {
    at: u64,
}

impl Obj {
    pub fn touch(&mut self) {
        let t = s::time::SystemTime::now(); //~ wall-clock time (`s::time::SystemTime::now` is `std::time::SystemTime::now`)
        self.at = t.duration_since(s::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0); //~ wall-clock time
    }
}
