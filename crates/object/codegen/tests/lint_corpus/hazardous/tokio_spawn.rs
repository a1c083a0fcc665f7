//! A task spawned from a method runs outside the log's order.
#[derive(Default)]
pub struct Obj {
    n: u64,
}

impl Obj {
    pub fn kick(&mut self) {
        self.n += 1;
        tokio::spawn(async move {}); //~ tasks (`tokio::spawn`)
    }
}
