//! The environment read inside `format!` and inside `assert!`'s message.
#[derive(Default)]
pub struct Obj {
    greeting: String,
}

impl Obj {
    pub fn greet(&mut self, n: u64) {
        self.greeting = format!(
            "hello {} {n}",
            std::env::var("USER").unwrap_or_default() //~ environment access (`std::env::var`)
        );
        assert!(n > 0, "{}", std::env::args().count()); //~ environment access (`std::env::args`)
    }
}
