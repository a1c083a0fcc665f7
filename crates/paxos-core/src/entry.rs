//! What a log slot holds: a batch of client commands, a view change, or nothing.

use crate::types::NodeId;
use serde::{Deserialize, Serialize};

/// An opaque client command. The core never looks inside: the caller encodes
/// whatever it needs (client id, sequence number, method, arguments).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Command(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl core::fmt::Debug for Command {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Command({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Command {
    fn from(bytes: Vec<u8>) -> Self {
        Command(bytes)
    }
}

impl From<&[u8]> for Command {
    fn from(bytes: &[u8]) -> Self {
        Command(bytes.to_vec())
    }
}

/// A member of a view: a node id and the address peers and clients reach it at.
/// The core treats the address as an opaque label for the caller's transport.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The node's id (one incarnation).
    pub id: NodeId,
    /// Where to reach it, e.g. `127.0.0.1:14000`.
    pub addr: String,
}

/// A change of membership, decided in the log like any command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reconfig {
    /// Add a node (a no-op if it is already a member).
    Add(Member),
    /// Remove a node (a no-op if it is not a member or is the last member).
    Remove(NodeId),
}

/// The value decided in one slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Entry {
    /// Fills a slot that a new leader found empty, or pads the log so a view
    /// change takes effect on an idle cluster.
    Noop,
    /// A batch of client commands, executed in order.
    Commands(Vec<Command>),
    /// A view change; it governs slots from `slot + window` on.
    Reconfig(Reconfig),
}

impl Entry {
    /// Approximate encoded size, used to bound batches and catch-up chunks.
    pub fn size_bytes(&self) -> usize {
        match self {
            Entry::Noop => 1,
            Entry::Commands(cmds) => 4 + cmds.iter().map(|c| c.0.len() + 4).sum::<usize>(),
            Entry::Reconfig(Reconfig::Add(m)) => 16 + m.addr.len(),
            Entry::Reconfig(Reconfig::Remove(_)) => 16,
        }
    }

    /// Number of client commands carried.
    pub fn command_count(&self) -> usize {
        match self {
            Entry::Commands(cmds) => cmds.len(),
            _ => 0,
        }
    }
}
