//! `rand` renamed on import.
extern crate rand as dice; //~ randomness (`rand`)

#[derive(Default)]
pub struct Obj {
    n: u64,
}

impl Obj {
    pub fn roll(&mut self) {
        self.n = dice::random::<u64>(); //~ randomness (`dice::random` is `rand::random`)
    }
}
