//! The object calls a helper in another module file, which reads the clock.
mod clock;

#[derive(Default)]
pub struct Obj {
    at: u64,
}

impl Obj {
    pub fn touch(&mut self) {
        self.at = clock::now_ms();
    }
}
