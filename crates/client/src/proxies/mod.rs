//! Typed proxies for the ready-made objects.

mod counter;

pub use counter::{BlockingCounter, Counter};
