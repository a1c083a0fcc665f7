//! Test-only code never runs in a replica.
#[derive(Default)]
pub struct Obj {
    n: u64,
}

impl Obj {
    pub fn bump(&mut self) {
        self.n += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    #[test]
    fn bump_is_fast() {
        let t = Instant::now();
        let mut o = super::Obj::default();
        o.bump();
        assert!(t.elapsed().as_secs() < 1);
    }
}
