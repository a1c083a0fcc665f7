//! The clock read inside `vec![]`.
#[derive(Default)]
pub struct Obj {
    stamps: Vec<std::time::Duration>,
}

impl Obj {
    pub fn stamp(&mut self) {
        let now = vec![std::time::SystemTime::now()]; //~ wall-clock time (`std::time::SystemTime::now`)
        self.stamps.push(std::time::Duration::from_secs(now.len() as u64));
    }
}
