//! `UNIX_EPOCH.elapsed()` reads the clock without naming `SystemTime`.
use std::time::UNIX_EPOCH; //~ wall-clock time

#[derive(Default)]
pub struct Obj {
    secs: u64,
}

impl Obj {
    pub fn touch(&mut self) {
        self.secs = UNIX_EPOCH.elapsed().map(|d| d.as_secs()).unwrap_or(0); //~ wall-clock time
    }
}
