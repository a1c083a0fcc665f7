//! Pointer-to-integer casts: addresses differ per replica.
#[derive(Default)]
pub struct Obj {
    n: i64,
    bucket: usize,
}

fn helper() -> u8 {
    7
}

impl Obj {
    pub fn spread(&mut self) {
        self.bucket = &self.n as *const i64 as usize % 16; //~ pointer-to-integer cast
        self.bucket += self.id().as_ptr() as usize; //~ pointer-to-integer cast
        self.bucket += helper as usize; //~ pointer-to-integer cast
    }

    fn id(&self) -> String {
        String::new()
    }
}
