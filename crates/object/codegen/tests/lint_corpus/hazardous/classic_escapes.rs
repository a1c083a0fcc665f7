//! The escapes the first version of the check already knew.
#[derive(Default)]
pub struct Obj {
    n: i64,
}

static mut CALLS: u64 = 0; //~ static mutable state (`static mut`)
static LOCK: std::sync::Mutex<u64> = std::sync::Mutex::new(0); //~ static mutable state (a static with interior mutability)

impl Obj {
    pub fn act(&mut self) {
        let _ = std::fs::read("x"); //~ file access
        let _ = std::net::TcpStream::connect("1.2.3.4:80"); //~ network access
        let _ = std::process::Command::new("ls"); //~ process access
        let _: u64 = rand::random(); //~ randomness
        unsafe { CALLS += 1 } //~ unsafe code
        let _ = std::thread::spawn(|| {}); //~ threads
        self.n += 1;
    }
}
