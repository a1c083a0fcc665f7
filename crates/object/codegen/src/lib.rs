//! The generator behind `#[concoord::object]`, `#[concoord::proxy]` and
//! `concoord object`: one model of an object's methods ([`model`]), from which
//! the replica-side dispatch ([`dispatch`]) and the client proxies ([`proxy`])
//! are generated, plus the `-s` safety check ([`safety`]) and the standalone
//! proxy files ([`standalone`]).

#![deny(missing_docs)]

pub mod dispatch;
pub mod model;
pub mod proxy;
pub mod safety;
pub mod standalone;
