//! A static whose interior mutability hides behind a type alias.
type Counter = std::sync::atomic::AtomicU64;

static CALLS: Counter = Counter::new(0); //~ static mutable state (a static with interior mutability)

#[derive(Default)]
pub struct Obj;

impl Obj {
    pub fn call(&mut self) -> u64 {
        CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}
