//! Before founding, make sure this address is not a member of a running
//! instance.
//!
//! A founder restarted with its original command (no `-b`) but without its
//! state would otherwise found a second, empty instance on an address the
//! first one still counts as its member: clients listing that address would
//! read and write the empty one. Such a founder reads the same instance
//! secret as before (its file outlives the process), so its old peers keep
//! connecting to it as to one of theirs, proving the secret: the first such
//! connection is the evidence. A founder whose secret may be an existing
//! instance's (read from a file it did not create now, or the open
//! instance's) therefore listens for [`GRACE`] before it founds, serving
//! nobody meanwhile, and refuses to found if a replica of an instance
//! connects to it as to a member. `--new-instance` skips the wait.
//!
//! A founder with a new secret needs no wait: replicas of another instance
//! cannot prove its secret, so they never talk to it as peers.

use crate::ReplicaError;
use crate::limits::HANDSHAKES_MAX;
use concoord_transport::handshake::{Accepted, Credentials, accept};
use concoord_transport::net::TcpListener;
use concoord_transport::tls_config::ServerTls;
use concoord_transport::{InstanceCell, InstanceId, InstanceSecret};
use paxos_core::NodeId;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tracing::{info, warn};

/// How long a founder listens first: longer than a replica's longest
/// pause between attempts to reach a member (one second) plus a handshake.
pub const GRACE: Duration = Duration::from_millis(2500);

/// Time one connection has to show who it is.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(2);

/// A replica of a running instance that counts this address as a member.
struct Evidence {
    addr: String,
    node: NodeId,
    instance: Option<InstanceId>,
}

/// What the founder checks connections against.
pub struct Founder<'a> {
    /// Its node id.
    pub me: NodeId,
    /// The address it serves on.
    pub my_addr: &'a str,
    /// The instance's token, if any.
    pub token: Option<&'a str>,
    /// The secret it would found the instance with.
    pub secret: &'a InstanceSecret,
    /// Its TLS, if the instance uses it (its replicas call over TLS).
    pub tls: Option<&'a ServerTls>,
}

/// Listens on `listener` for `grace`: returns an error naming the instance
/// if one of its replicas connects as to a member. Clients and operators
/// that connect meanwhile are closed without an answer, and retry.
pub async fn listen_before_founding(
    listener: &TcpListener,
    founder: &Founder<'_>,
    grace: Duration,
) -> Result<(), ReplicaError> {
    info!(
        addr = founder.my_addr,
        wait_ms = grace.as_millis() as u64,
        "checking that no running instance counts this address as its member before founding \
         a new one (--new-instance skips this)"
    );
    let deadline = tokio::time::Instant::now() + grace;
    let (found_tx, mut found_rx) = mpsc::channel::<Evidence>(1);
    // No client may be served before the instance exists.
    let no_clients = Arc::new(Semaphore::new(0));
    // As many connections in their handshake as the server allows later;
    // more are closed at once, so a flood cannot grow the task count.
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
            Some(evidence) = found_rx.recv() => {
                return Err(member_elsewhere(founder.my_addr, evidence));
            }
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let Ok(slot) = handshakes.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                let creds = OwnedCreds {
                    me: founder.me,
                    token: founder.token.map(str::to_string),
                    secret: founder.secret.clone(),
                    tls: founder.tls.cloned(),
                    slots: no_clients.clone(),
                };
                let found_tx = found_tx.clone();
                concoord_transport::determinism::spawn(async move {
                    let _slot = slot;
                    if let Some(evidence) = identify(stream, &creds).await {
                        warn!(%peer, replica = %evidence.addr, instance = %evidence.instance.map_or("unknown".to_string(), |i| i.to_string()),
                              "a replica of a running instance connected to this address as to its member");
                        let _ = found_tx.try_send(evidence);
                    }
                });
            }
        }
    }
}

/// Credentials a spawned handshake owns.
struct OwnedCreds {
    me: NodeId,
    token: Option<String>,
    secret: InstanceSecret,
    tls: Option<ServerTls>,
    slots: Arc<Semaphore>,
}

/// Runs the handshake; evidence if the other side is an authenticated
/// replica of an instance.
async fn identify(stream: concoord_transport::net::TcpStream, c: &OwnedCreds) -> Option<Evidence> {
    let none_yet = InstanceCell::new(None);
    let creds = Credentials {
        me: c.me,
        instance: &none_yet,
        token: c.token.as_deref(),
        secret: &c.secret,
        sessions_not_before_ms: 0,
        client_slots: Some(&c.slots),
        tls: c.tls.as_ref(),
        // No view yet: any member may call.
        members: None,
    };
    match accept(stream, &creds, HANDSHAKE_LIMIT).await {
        // Any replica that proves the secret and calls this address counts
        // it as a member, whether or not it knows its instance's id yet (a
        // restarted durable joiner, or an instance older than the id).
        Ok(Accepted::Replica {
            node,
            addr,
            instance,
            ..
        }) => Some(Evidence {
            addr,
            node,
            instance,
        }),
        _ => None,
    }
}

fn member_elsewhere(my_addr: &str, e: Evidence) -> ReplicaError {
    let instance = e
        .instance
        .map_or("(id not known to it)".to_string(), |i| i.to_string());
    ReplicaError::MemberElsewhere(format!(
        "{my_addr} is a member of running instance {instance}: its replica {} (node {}) \
         connected to this address as to one of its own. Founding a new instance here would \
         leave two instances on one address. Rejoin the running instance with `-b {}` (and -w \
         to keep state across restarts), or pass --new-instance to found a new one anyway",
        e.addr, e.node, e.addr
    ))
}

#[cfg(test)]
mod tests {
    //! An authenticated replica dialing this address as
    //! a member is the evidence, whether or not it knows its instance id.
    use super::*;
    use concoord_transport::handshake::{PeerIdentity, connect_peer};

    /// Members of an instance whose durable founder predates the instance
    /// line (an upgraded instance: no member ever learns an id), or a
    /// durable joiner just restarted, say `instance: None`; they still
    /// prove the secret and still count this address as a member. The
    /// check ignores them and founds a second instance on the address.
    #[tokio::test]
    async fn a_member_that_does_not_know_its_instance_id_still_stops_the_founder() {
        let secret = InstanceSecret::generate();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let peer_secret = secret.clone();
        let target = addr.clone();
        let member = tokio::spawn(async move {
            let unknown = InstanceCell::new(None);
            let me = PeerIdentity {
                me: NodeId(7),
                my_addr: "127.0.0.1:1",
                token: None,
                secret: &peer_secret,
                instance: &unknown,
                tls: None,
                expect_node: None,
            };
            loop {
                let _ = connect_peer(&target, &me, Duration::from_secs(1)).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let founder = Founder {
            me: NodeId(1),
            my_addr: &addr,
            token: None,
            secret: &secret,
            tls: None,
        };
        let outcome = listen_before_founding(&listener, &founder, Duration::from_millis(800)).await;
        member.abort();
        assert!(
            matches!(outcome, Err(ReplicaError::MemberElsewhere(_))),
            "an authenticated replica of a running instance dialed this address as a member, \
             yet the founder would found: {outcome:?}"
        );
    }
}
