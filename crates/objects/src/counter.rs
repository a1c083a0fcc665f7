//! `concoord.object.counter.Counter`: the seed's first example.

use concoord_object::{CallContext, MethodKind, ObjectError, ReplicatedObject, args, reply};
use serde::{Deserialize, Serialize};

/// A replicated integer counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    value: i64,
}

impl Counter {
    /// Adds one.
    pub fn increment(&mut self) {
        self.value += 1;
    }

    /// Subtracts one.
    pub fn decrement(&mut self) {
        self.value -= 1;
    }

    /// The current value.
    pub fn getvalue(&self) -> i64 {
        self.value
    }
}

impl ReplicatedObject for Counter {
    fn type_name() -> &'static str {
        "concoord.object.counter.Counter"
    }

    fn methods() -> &'static [(&'static str, MethodKind)] {
        &[
            ("increment", MethodKind::Write),
            ("decrement", MethodKind::Write),
            ("getvalue", MethodKind::Read),
        ]
    }

    fn apply(
        &mut self,
        _ctx: &mut CallContext,
        method: &str,
        a: &[u8],
    ) -> Result<Vec<u8>, ObjectError> {
        match method {
            "increment" => {
                args::none(method, a)?;
                self.increment();
                reply(&())
            }
            "decrement" => {
                args::none(method, a)?;
                self.decrement();
                reply(&())
            }
            _ => Err(ObjectError::unknown(method)),
        }
    }

    fn query(&self, method: &str, a: &[u8]) -> Result<Vec<u8>, ObjectError> {
        match method {
            "getvalue" => {
                args::none(method, a)?;
                reply(&self.getvalue())
            }
            _ => Err(ObjectError::unknown(method)),
        }
    }

    /// `__concoordinit__()` or `__concoordinit__(value)`, like the seed's
    /// `__init__(self, value=0)`.
    fn init(a: &[u8]) -> Result<Self, ObjectError> {
        if args::none(concoord_object::CONCOORD_INIT, a).is_ok() {
            return Ok(Counter::default());
        }
        let (value,): (i64,) = args::decode(concoord_object::CONCOORD_INIT, a)?;
        Ok(Counter { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(c: &mut Counter, m: &str) {
        let mut ctx = CallContext::new(1, 1);
        c.apply(&mut ctx, m, &[0x90]).expect("call succeeds");
    }

    #[test]
    fn increments_and_decrements() {
        let mut c = Counter::default();
        call(&mut c, "increment");
        call(&mut c, "increment");
        call(&mut c, "decrement");
        let v: i64 =
            rmp_serde::from_slice(&c.query("getvalue", &[0x90]).expect("read")).expect("i64");
        assert_eq!(v, 1);
    }

    #[test]
    fn init_takes_an_optional_start_value() {
        assert_eq!(Counter::init(&[0x90]).expect("ok").getvalue(), 0);
        let a = concoord_object::args::encode(&(7i64,)).expect("encodes");
        assert_eq!(Counter::init(&a).expect("ok").getvalue(), 7);
    }

    #[test]
    fn unknown_methods_and_extra_arguments_are_errors() {
        let mut c = Counter::default();
        let mut ctx = CallContext::new(1, 1);
        assert!(matches!(
            c.apply(&mut ctx, "explode", &[0x90]),
            Err(ObjectError::UnknownMethod { .. })
        ));
        let a = concoord_object::args::encode(&(1,)).expect("encodes");
        assert!(matches!(
            c.apply(&mut ctx, "increment", &a),
            Err(ObjectError::BadArguments { .. })
        ));
    }
}
