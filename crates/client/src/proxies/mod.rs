//! Typed proxies for the ready-made objects of `concoord-objects`, generated
//! by `#[concoord::proxy]` from their method signatures. Each object has an
//! async proxy and a blocking one (`BlockingX`). The values and errors the
//! methods return are `concoord_object::ready_made`'s, re-exported here, so
//! a client compiles none of the objects; a test (with the object crates as
//! dev-dependencies) keeps each proxy's method list equal to its object's.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use concoord_client::proxies::Bank;
//! use concoord_client::MethodError;
//! use concoord_client::proxies::BankError;
//!
//! let bank = Bank::connect("127.0.0.1:14000").await?;
//! bank.open("alice".into()).await?;
//! bank.deposit("alice".into(), 10).await?;
//! match bank.debit("alice".into(), 50).await {
//!     Err(MethodError::Returned(BankError::InsufficientFunds { balance, .. })) => {
//!         assert_eq!(balance, 10)
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # Ok(()) }
//! ```

#![allow(missing_docs)] // the signatures below are documented on the objects

mod dsync;

pub use dsync::{
    Barrier, BlockingBarrier, BlockingBoundedSemaphore, BlockingCondition, BlockingLock,
    BlockingRLock, BlockingSemaphore, BoundedSemaphore, Condition, Lock, RLock, Semaphore,
};

pub use concoord_object::ready_made::{
    BankError, BarrierError, BarrierResult, Job, JobError, KvError, LockError, NameserverError,
    QueueError, SemaphoreError, StackError, WaitResult, Waited,
};

use concoord_macros::proxy;
use std::collections::BTreeMap;

/// `concoord.object.counter.Counter`.
#[proxy(
    crate = "crate",
    async_name = "Counter",
    blocking_name = "BlockingCounter"
)]
pub trait CounterObject {
    #[concoord(init)]
    fn starting_at(value: Option<i64>) -> Self;
    fn increment(&mut self);
    fn decrement(&mut self);
    fn getvalue(&self) -> i64;
}

/// `concoord.object.bank.Bank`.
#[proxy(crate = "crate", async_name = "Bank", blocking_name = "BlockingBank")]
pub trait BankObject {
    fn open(&mut self, account: String) -> Result<(), BankError>;
    fn close(&mut self, account: String) -> Result<i64, BankError>;
    fn deposit(&mut self, account: String, amount: i64) -> Result<i64, BankError>;
    fn debit(&mut self, account: String, amount: i64) -> Result<i64, BankError>;
    fn balance(&self, account: String) -> Result<i64, BankError>;
}

/// `concoord.object.log.Log`.
#[proxy(crate = "crate", async_name = "Log", blocking_name = "BlockingLog")]
pub trait LogObject {
    fn write(&mut self, entry: String);
    fn append(&mut self, entry: String) -> u64;
    fn read(&self) -> Vec<String>;
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool;
}

/// `concoord.object.membership.Membership`.
#[proxy(
    crate = "crate",
    async_name = "Membership",
    blocking_name = "BlockingMembership"
)]
pub trait MembershipObject {
    fn add(&mut self, member: String) -> bool;
    fn remove(&mut self, member: String) -> bool;
    fn contains(&self, member: String) -> bool;
    fn members(&self) -> Vec<String>;
}

/// `concoord.object.stack.Stack`.
#[proxy(crate = "crate", async_name = "Stack", blocking_name = "BlockingStack")]
pub trait StackObject {
    fn push(&mut self, item: String);
    fn append(&mut self, item: String);
    fn pop(&mut self) -> Result<String, StackError>;
    fn peek(&self) -> Result<String, StackError>;
    fn size(&self) -> u64;
    fn contents(&self) -> Vec<String>;
}

/// `concoord.object.queue.Queue`.
#[proxy(crate = "crate", async_name = "Queue", blocking_name = "BlockingQueue")]
pub trait QueueObject {
    #[concoord(init)]
    fn with_capacity(capacity: u64) -> Self;
    fn put(&mut self, item: String) -> Result<(), QueueError>;
    fn get(&mut self) -> Result<String, QueueError>;
    fn qsize(&self) -> u64;
    fn empty(&self) -> bool;
    fn full(&self) -> bool;
}

/// `concoord.object.jobmanager.JobManager`.
#[proxy(
    crate = "crate",
    async_name = "JobManager",
    blocking_name = "BlockingJobManager"
)]
pub trait JobManagerObject {
    fn schedule(&mut self, id: String, spec: String) -> Result<(), JobError>;
    fn deschedule(&mut self, id: String) -> Result<Job, JobError>;
    fn update(&mut self, id: String, state: String) -> Result<(), JobError>;
    fn get_job(&self, id: String) -> Result<Job, JobError>;
    fn list_jobs(&self) -> Vec<Job>;
}

/// `concoord.object.keyvalue.KeyValue`.
#[proxy(
    crate = "crate",
    async_name = "KeyValue",
    blocking_name = "BlockingKeyValue"
)]
pub trait KeyValueObject {
    fn get(&self, key: String) -> Option<String>;
    fn put(&mut self, key: String, value: String) -> Option<String>;
    fn delete(&mut self, key: String) -> Option<String>;
    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
    ) -> Result<(), KvError>;
    fn keys(&self, prefix: String) -> Vec<String>;
}

/// `concoord.object.nameservercoord.NameserverCoord`.
#[proxy(
    crate = "crate",
    async_name = "NameserverCoord",
    blocking_name = "BlockingNameserverCoord"
)]
pub trait NameserverCoordObject {
    fn add_node(&mut self, subdomain: String, nodetype: String, addr: String) -> bool;
    fn remove_node(
        &mut self,
        subdomain: String,
        nodetype: String,
        addr: String,
    ) -> Result<bool, NameserverError>;
    fn set_nodes(&mut self, subdomain: String, nodetype: String, addrs: Vec<String>);
    fn get_nodes(
        &self,
        subdomain: String,
    ) -> Result<BTreeMap<String, Vec<String>>, NameserverError>;
    fn remove_subdomain(&mut self, subdomain: String) -> Result<(), NameserverError>;
    fn subdomains(&self) -> Vec<String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use concoord_object::ReplicatedObject;

    type MethodTable = &'static [(&'static str, concoord_object::MethodKind)];

    #[test]
    fn every_proxy_lists_exactly_its_objects_methods() {
        let pairs: Vec<(&str, MethodTable, MethodTable)> = vec![
            (
                "Counter",
                Counter::METHODS,
                concoord_objects::Counter::methods(),
            ),
            ("Bank", Bank::METHODS, concoord_objects::Bank::methods()),
            ("Log", Log::METHODS, concoord_objects::Log::methods()),
            (
                "Membership",
                Membership::METHODS,
                concoord_objects::Membership::methods(),
            ),
            ("Stack", Stack::METHODS, concoord_objects::Stack::methods()),
            ("Queue", Queue::METHODS, concoord_objects::Queue::methods()),
            (
                "JobManager",
                JobManager::METHODS,
                concoord_objects::JobManager::methods(),
            ),
            (
                "KeyValue",
                KeyValue::METHODS,
                concoord_objects::KeyValue::methods(),
            ),
            (
                "NameserverCoord",
                NameserverCoord::METHODS,
                concoord_objects::NameserverCoord::methods(),
            ),
            ("Lock", Lock::METHODS, concoord_dsync::Lock::methods()),
            ("RLock", RLock::METHODS, concoord_dsync::RLock::methods()),
            (
                "Semaphore",
                Semaphore::METHODS,
                concoord_dsync::Semaphore::methods(),
            ),
            (
                "BoundedSemaphore",
                BoundedSemaphore::METHODS,
                concoord_dsync::BoundedSemaphore::methods(),
            ),
            (
                "Barrier",
                Barrier::METHODS,
                concoord_dsync::Barrier::methods(),
            ),
            (
                "Condition",
                Condition::METHODS,
                concoord_dsync::Condition::methods(),
            ),
        ];
        for (name, proxy, object) in pairs {
            assert_eq!(proxy, object, "{name}");
        }
        assert_eq!(BlockingBank::METHODS, Bank::METHODS);
    }
}
