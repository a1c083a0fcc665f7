//! `HashMap`s behind `Rc<RefCell<..>>`, a `Mutex`, an `Option`, and a
//! qualified trait call.
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;

#[derive(Default)]
pub struct Obj {
    shared: Rc<RefCell<HashMap<String, u64>>>,
    guarded: Mutex<HashMap<String, u64>>,
    maybe: Option<HashMap<String, u64>>,
}

impl Obj {
    pub fn a(&self) -> usize {
        self.shared.borrow().iter().count() //~ (`.iter()`)
    }

    pub fn b(&self) -> usize {
        self.guarded.lock().unwrap().keys().count() //~ (`.keys()`)
    }

    pub fn c(&self) -> usize {
        self.maybe.iter().flatten().count() //~ (`.flatten()`)
    }

    pub fn d(&self) -> usize {
        <HashMap<String, u64> as IntoIterator>::into_iter(self.maybe.clone().unwrap_or_default()).count() //~ (`IntoIterator::into_iter`)
    }
}
