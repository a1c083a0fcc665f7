//! `concoord.object.nameservercoord.NameserverCoord`: the registry behind
//! OpenReplica's shared name server. Each subdomain maps node types
//! (`replica`, `nameserver`, …) to node addresses.

use concoord_macros::object;
pub use concoord_object::ready_made::NameserverError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Subdomain → node type → addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameserverCoord {
    subdomains: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.nameservercoord.NameserverCoord"
)]
impl NameserverCoord {
    /// Adds a node of `nodetype` to a subdomain (creating it); returns false
    /// if it was there already.
    pub fn add_node(&mut self, subdomain: String, nodetype: String, addr: String) -> bool {
        self.subdomains
            .entry(subdomain)
            .or_default()
            .entry(nodetype)
            .or_default()
            .insert(addr)
    }

    /// Removes a node from a subdomain.
    pub fn remove_node(
        &mut self,
        subdomain: String,
        nodetype: String,
        addr: String,
    ) -> Result<bool, NameserverError> {
        let types = self
            .subdomains
            .get_mut(&subdomain)
            .ok_or(NameserverError::NoSuchSubdomain(subdomain))?;
        let removed = types.get_mut(&nodetype).is_some_and(|s| s.remove(&addr));
        types.retain(|_, nodes| !nodes.is_empty());
        Ok(removed)
    }

    /// Replaces the nodes of one type in a subdomain.
    pub fn set_nodes(&mut self, subdomain: String, nodetype: String, addrs: Vec<String>) {
        self.subdomains
            .entry(subdomain)
            .or_default()
            .insert(nodetype, addrs.into_iter().collect());
    }

    /// The nodes of a subdomain by type.
    pub fn get_nodes(
        &self,
        subdomain: String,
    ) -> Result<BTreeMap<String, Vec<String>>, NameserverError> {
        let types = self
            .subdomains
            .get(&subdomain)
            .ok_or(NameserverError::NoSuchSubdomain(subdomain))?;
        Ok(types
            .iter()
            .map(|(t, nodes)| (t.clone(), nodes.iter().cloned().collect()))
            .collect())
    }

    /// Removes a subdomain.
    pub fn remove_subdomain(&mut self, subdomain: String) -> Result<(), NameserverError> {
        self.subdomains
            .remove(&subdomain)
            .map(|_| ())
            .ok_or(NameserverError::NoSuchSubdomain(subdomain))
    }

    /// Every subdomain, sorted.
    pub fn subdomains(&self) -> Vec<String> {
        self.subdomains.keys().cloned().collect()
    }
}
