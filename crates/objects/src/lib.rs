//! ConCoord's ready-made replicated objects, each usable from a replica with
//! `concoord replica -o NAME` (the seed's dotted names, e.g.
//! `concoord.object.counter.Counter`, or short names, e.g. `counter`).

#![deny(missing_docs)]

pub mod counter;

pub use counter::Counter;
