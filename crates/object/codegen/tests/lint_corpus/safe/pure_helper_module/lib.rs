//! The object calls a pure helper in another module file.
mod score;

#[derive(Default)]
pub struct Obj {
    total: u64,
}

impl Obj {
    pub fn add(&mut self, word: String) {
        self.total += score::of(&word);
    }
}
