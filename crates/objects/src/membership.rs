//! `concoord.object.membership.Membership`: a replicated set of members.

use concoord_macros::object;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A set of member names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    members: BTreeSet<String>,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.membership.Membership"
)]
impl Membership {
    /// Adds a member; returns false if it was already one.
    pub fn add(&mut self, member: String) -> bool {
        self.members.insert(member)
    }

    /// Removes a member; returns false if it was not one.
    pub fn remove(&mut self, member: String) -> bool {
        self.members.remove(&member)
    }

    /// Whether `member` is a member.
    pub fn contains(&self, member: String) -> bool {
        self.members.contains(&member)
    }

    /// All members, sorted.
    pub fn members(&self) -> Vec<String> {
        self.members.iter().cloned().collect()
    }
}
