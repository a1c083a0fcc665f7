//! Raw pointers from `addr_of!` and `as_ptr`, turned into numbers.
#[derive(Default)]
pub struct Obj {
    n: u64,
    name: String,
    id: usize,
}

impl Obj {
    pub fn tag(&mut self) {
        let p = std::ptr::addr_of!(self.n); //~ raw pointers
        self.id = p as usize; //~ pointer-to-integer cast
        let q = self.name.as_ptr(); //~ raw pointers (`.as_ptr()`)
        self.id ^= q.addr(); //~ a pointer's address (`.addr()`)
    }
}
