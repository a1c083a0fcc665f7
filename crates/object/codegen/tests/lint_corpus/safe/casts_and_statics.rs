//! Integer casts, enum discriminants and immutable statics are fine.
#[derive(Clone, Copy)]
pub enum Kind {
    A = 1,
    B = 2,
}

static NAMES: &[&str] = &["a", "b"];
const LIMIT: usize = 10;

#[derive(Default)]
pub struct Obj {
    n: i64,
    k: u8,
}

impl Obj {
    pub fn act(&mut self, kind: Option<u8>) -> usize {
        self.k = if kind.is_some() { Kind::A as u8 } else { Kind::B as u8 };
        let x = self.n as usize % LIMIT;
        x + NAMES.len() + (self.k as f64 * 1.5) as usize
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.n.unsigned_abs())
    }
}
