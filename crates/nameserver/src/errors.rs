//! What can go wrong serving or publishing the zone.

use thiserror::Error;

/// A name-server failure.
#[derive(Debug, Error)]
pub enum NameserverError {
    /// The DNS port is privileged and this process may not bind it.
    #[error(
        "cannot listen for DNS on {addr}: binding a port below 1024 (53 is the DNS port) needs \
         root or CAP_NET_BIND_SERVICE; run with sudo, grant it with \
         `setcap cap_net_bind_service=+ep $(which concoord)`, or pick another port with \
         --dns-port (e.g. --dns-port 5353)"
    )]
    Privileged {
        /// The address.
        addr: String,
    },
    /// The address cannot be bound (taken, or not local).
    #[error("cannot listen for DNS on {addr}: {source}; pick another --dns-addr/--dns-port")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A name in the zone is not a valid DNS name.
    #[error("{name:?} is not a valid DNS name: {detail}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        detail: String,
    },
    /// A lock was poisoned by a panic elsewhere.
    #[error("the zone's state was poisoned by an earlier panic; restart the name server")]
    Poisoned,
    /// Route53 publication cannot start.
    #[error("Route53: {0}")]
    Route53(String),
    /// The stored credentials cannot be read or written.
    #[error("{0}")]
    Credentials(String),
}
