//! A module whose file is missing: the check cannot read its code.
mod gone; //~ module `gone` is declared but neither

#[derive(Default)]
pub struct Obj;

impl Obj {
    pub fn f(&mut self) {}
}
