//! The values and errors the ready-made objects' methods return
//! (`concoord-objects`, `concoord-dsync`): what crosses the wire between
//! those objects and their proxies in `concoord_client::proxies`. They live
//! here, in the crate both sides share, so a client names them without
//! compiling the objects themselves. The object crates re-export each one
//! where it was (`concoord_objects::BankError`, `concoord_dsync::LockError`).

use serde::{Deserialize, Serialize};

// concoord_objects::bank

/// Why a bank operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankError {
    /// No account with this number.
    NoSuchAccount(String),
    /// An account with this number exists already.
    AccountExists(String),
    /// The debit would overdraw the account.
    InsufficientFunds {
        /// The account.
        account: String,
        /// Its balance.
        balance: i64,
        /// What was asked.
        requested: i64,
    },
    /// Amounts must be positive.
    InvalidAmount(i64),
}

// concoord_objects::jobmanager

/// One job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// What to run (free text for the scheduler that reads it).
    pub spec: String,
    /// Its state (free text: "scheduled", "running", "done", …).
    pub state: String,
}

/// Why a job operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobError {
    /// A job with this id exists already.
    Exists(String),
    /// No job with this id.
    NoSuchJob(String),
}

// concoord_objects::keyvalue

/// Why a compare-and-swap failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvError {
    /// The key did not hold the expected value.
    Mismatch {
        /// What it holds (`None`: absent).
        current: Option<String>,
    },
}

// concoord_objects::nameservercoord

/// Why a registry operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NameserverError {
    /// No such subdomain.
    NoSuchSubdomain(String),
}

// concoord_objects::queue

/// Why a queue operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueError {
    /// Nothing to get.
    Empty,
    /// The queue holds `capacity` items already.
    Full {
        /// The capacity.
        capacity: u64,
    },
}

// concoord_objects::stack

/// Why a stack operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StackError {
    /// Nothing to pop.
    Empty,
}

// concoord_dsync::barrier

/// Why a barrier wait failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum BarrierError {
    /// The barrier is broken: a waiting party's session ended, or it was
    /// aborted (Python's `BrokenBarrierError`).
    #[error(
        "the barrier is broken (a waiting party's session ended, or it was aborted); \
         reset it (concoord_init) before waiting again"
    )]
    Broken,
}

/// What a barrier `wait` returns: the caller's arrival index in its round,
/// or why the round cannot complete.
pub type BarrierResult = Result<u64, BarrierError>;

// concoord_dsync::lock

/// Why a release (or a condition operation) was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum LockError {
    /// Nobody holds the lock.
    #[error("the lock is not held")]
    NotLocked,
    /// Another client holds it. Which one is not said: a session id is
    /// nobody else's business.
    #[error("the lock is held by another client")]
    NotHolder,
    /// The caller held the lock, but the object was re-initialised
    /// (`__concoordinit__`) and its grant revoked: its fencing token is
    /// stale, and every later grant's is larger.
    #[error(
        "your grant of this lock (fencing token {token}) was revoked when the object was \
         re-initialised; acquire it again"
    )]
    Revoked {
        /// The revoked grant's fencing token.
        token: u64,
    },
}

// concoord_dsync::semaphore

/// Why a release was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SemaphoreError {
    /// A bounded semaphore was released while every permit was free.
    #[error("released too many times: the semaphore would exceed its bound of {bound}")]
    OverReleased {
        /// Its initial value.
        bound: u64,
    },
}

// concoord_dsync::condition

/// How a condition `wait` ended, holding the lock again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waited {
    /// `true` if notified, `false` if the wait timed out.
    pub notified: bool,
    /// The fencing token of the lock grant the waiter holds now (larger than
    /// the one it held before waiting).
    pub token: u64,
}

/// What `wait` returns: how it ended, or an error if the caller did not hold
/// the lock.
pub type WaitResult = Result<Waited, LockError>;
