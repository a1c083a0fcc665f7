//! ConCoord's ready-made replicated objects, each usable from a replica with
//! `concoord replica -o NAME` (the seed's dotted names, e.g.
//! `concoord.object.counter.Counter`, or short names, e.g. `counter`), and
//! callable through the proxies in `concoord_client::proxies`. Every method is
//! documented in docs/objects.md.

#![deny(missing_docs)]

pub mod bank;
pub mod counter;
pub mod jobmanager;
pub mod keyvalue;
pub mod log;
pub mod membership;
pub mod nameservercoord;
pub mod queue;
pub mod stack;

pub use bank::{Bank, BankError};
pub use counter::Counter;
pub use jobmanager::{Job, JobError, JobManager};
pub use keyvalue::{KeyValue, KvError};
pub use log::Log;
pub use membership::Membership;
pub use nameservercoord::{NameserverCoord, NameserverError};
pub use queue::{Queue, QueueError};
pub use stack::{Stack, StackError};
