//! A thread-local counter: state outside the replicated object.
use std::cell::Cell;

std::thread_local! { //~ static mutable state
    static CALLS: Cell<u64> = const { Cell::new(0) }; //~ static mutable state (a static with interior mutability)
}

#[derive(Default)]
pub struct Obj;

impl Obj {
    pub fn call(&mut self) -> u64 {
        CALLS.with(|c| c.get())
    }
}
