//! # paxos-core: Multi-Paxos as a pure state machine
//!
//! The consensus engine of ConCoord, usable on its own. It follows "Paxos Made
//! Moderately Complex" (van Renesse & Altinbuken): every node colocates the
//! acceptor, leader and replica (learner) roles. It is made efficient the usual
//! way: a stable leader runs phase 1 once for all open slots, then runs phase 2
//! pipelined, packing many client commands into each slot.
//!
//! The crate does no I/O. It has no threads, sockets, clocks or hidden
//! randomness: you feed it inputs and drain its outputs.
//!
//! | input | meaning |
//! |---|---|
//! | [`Node::tick`] | one unit of logical time passed (e.g. 10 ms) |
//! | [`Node::step`] | a [`Message`] arrived from a peer (one struct per kind, in [`message`]) |
//! | [`Node::propose`] | a client command, at the leader |
//! | [`Node::read_index`] | a linearizable read, at the leader |
//! | [`Node::compact`] | a snapshot of your state machine at an executed slot |
//!
//! Outputs come in a [`Ready`] from [`Node::take_ready`]: state to persist
//! *before* anything else, messages to send, a snapshot to restore, decided
//! entries to execute in order, and reads that may now be answered locally.
//!
//! ## A three-node cluster in a loop
//!
//! ```
//! use paxos_core::{Command, Config, Entry, Member, Node, NodeId};
//! use std::collections::VecDeque;
//!
//! // 1. Three founding members, each created with the same member list.
//! let members: Vec<Member> = (1..=3)
//!     .map(|i| Member { id: NodeId(i), addr: format!("127.0.0.1:{}", 14000 + i) })
//!     .collect();
//! let mut nodes: Vec<Node> = members
//!     .iter()
//!     .map(|m| Node::bootstrap(Config::new(m.id), &members).expect("valid config"))
//!     .collect();
//!
//! // 2. A toy network: a queue of (from, to, message).
//! let mut wire = VecDeque::new();
//! let mut executed: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
//! let mut proposed = false;
//! for _ in 0..1_000 {
//!     for (i, node) in nodes.iter_mut().enumerate() {
//!         node.tick();
//!         // 3. Drain the outputs, in order: persist (nothing to do in memory),
//!         //    send, then execute decided commands.
//!         let ready = node.take_ready();
//!         for out in ready.messages {
//!             wire.push_back((node.id(), out.to, out.msg));
//!         }
//!         for (_slot, entry) in ready.committed {
//!             if let Entry::Commands(cmds) = entry {
//!                 executed[i].extend(cmds.into_iter().map(|c| c.0));
//!             }
//!         }
//!     }
//!     // 4. Deliver every message in flight.
//!     while let Some((from, to, msg)) = wire.pop_front() {
//!         nodes[(to.0 - 1) as usize].step(from, msg);
//!     }
//!     // 5. Once a leader is elected, propose a command there. Followers would
//!     //    answer `Err(ProposeError::NotLeader { leader })` instead.
//!     if !proposed {
//!         if let Some(leader) = nodes.iter_mut().find(|n| n.is_leader()) {
//!             leader.propose(Command(b"increment".to_vec())).expect("leader accepts");
//!             proposed = true;
//!         }
//!     }
//!     if executed.iter().all(|e| e.len() == 1) {
//!         break;
//!     }
//! }
//! // Every node executed the same command.
//! assert!(executed.iter().all(|e| e == &vec![b"increment".to_vec()]));
//! ```
//!
//! ## Contract with the caller
//!
//! * Handle each [`Ready`] fully, in the order its fields are documented, before
//!   feeding the node more input. In particular `persist` must be durable
//!   before `messages` are sent: a promise or acceptance is never acknowledged
//!   before it would survive a crash.
//! * Give the same `window` to every node of a cluster.
//! * **Never restart a node under its old id without its persisted state.**
//!   An acceptor that forgot its promises could vote for two different values in
//!   one slot. A node that lost its state must take a fresh [`NodeId`] (a new
//!   incarnation), start with [`Node::join`], and be added by the leader with
//!   [`Node::propose_reconfig`]`(Reconfig::Add(..))`; its old id is removed with
//!   `Reconfig::Remove` like any failed node.
//!
//! ## Views
//!
//! Membership changes ([`Reconfig`]) are log entries. One decided in slot `s`
//! governs slots from `s + window` on; quorums are majorities of the view
//! governing each slot. An idle leader pads the log with no-ops so a change
//! takes effect without waiting for traffic.
//!
//! ## Bounds
//!
//! Everything is bounded by [`Config`]: the window, slots in flight, commands per
//! batch, the leader's queue (`propose` returns [`ProposeError::Busy`]), pending
//! reads, catch-up chunks, and the in-memory log (the node raises
//! [`Ready::compaction_wanted`] when it outgrows `log_entries_soft_max`).
//!
//! ## Features
//!
//! * `bug-injection` — compiles in `Config::injected_bug`, deliberate protocol
//!   bugs the simulation uses to prove its checkers work. Never enable it in
//!   production.

#![deny(missing_docs)]

mod acceptor;
mod catchup;
mod config;
mod decided_log;
mod election;
mod entry;
mod errors;
mod follower;
mod leader;
mod memory_storage;
pub mod message;
mod message_split;
mod node;
mod promise_parts;
mod read_index;
mod ready;
mod rng;
mod snapshot;
mod types;
mod view;

pub use config::Config;
#[cfg(feature = "bug-injection")]
pub use config::InjectedBug;
pub use entry::{Command, Entry, Member, Reconfig};
pub use errors::{CompactError, ConfigError, PeerFault, ProposeError};
pub use memory_storage::MemoryStorage;
pub use message::{AcceptedEntry, Message, Outgoing};
pub use message_split::split_by_bytes;
pub use node::{Counters, Node, Recovered, Role, Status};
pub use ready::{Persist, Ready};
pub use snapshot::Snapshot;
pub use types::{Ballot, NUMBER_MAX, NodeId, Slot};
pub use view::{View, ViewHistory};
