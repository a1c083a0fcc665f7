//! `{:p}` prints a memory address.
#[derive(Default)]
pub struct Obj {
    n: i64,
    id: String,
}

impl Obj {
    pub fn name(&mut self) {
        self.id = format!("{:p}", &self.n); //~ pointer formatting (`{:p}`)
    }
}
