//! Opening connections: the `Hello` exchange on both sides, then the switch to
//! the codec of the connection's role.
//!
//! Every connection presents the token (if the instance has one). A client
//! then gets its session: a new one, or the one whose ticket it presents. A
//! replica or an operator must also answer the challenge of `peer_auth`, and
//! a replica is then bound to the node id it proved. The accepting side
//! counts nothing itself; it returns why it refused, and the caller logs and
//! counts.
//!
//! With TLS (`tls_config`), the TLS handshake comes first, within the same
//! time limit. A connection claiming to be a replica must then present the
//! certificate of the member it claims (`tls_identity`): its address named
//! in the certificate, and its node id the one the view lists at that
//! address. The HMAC proof still follows: TLS says *which* member, the
//! instance secret says it is a member *of this instance*.

use crate::errors::HandshakeError;
use crate::frame_codec::MsgpackCodec;
use crate::instance_id::{InstanceCell, InstanceId, compatible};
use crate::instance_secret::InstanceSecret;
use crate::net::TcpStream;
use crate::peer_auth::{Exchange, Purpose, Side, nonce};
use crate::stream::Stream;
use crate::tls_config::{ClientTls, ServerTls, server_name};
use crate::tls_identity::check_replica_binding;
use crate::wire::{
    CLIENT_FRAME_BYTES_MAX, ClientFrame, Hello, HelloProof, HelloReply, MAGIC,
    PEER_FRAME_BYTES_MAX, PROTOCOL_VERSION, PeerFrame, ReplicaFrame, Role, SessionTicket,
};
use futures::{SinkExt, StreamExt};
use paxos_core::NodeId;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;
use tokio_util::codec::Framed;

/// Largest handshake frame accepted (it holds a token and an address).
const HELLO_BYTES_MAX: usize = 4096;

/// A replica-to-replica connection.
pub type PeerConnection = Framed<Stream, MsgpackCodec<PeerFrame, PeerFrame>>;
/// A client's connection to a replica.
pub type ClientConnection = Framed<Stream, MsgpackCodec<ReplicaFrame, ClientFrame>>;
/// A replica's end of a client connection.
pub type ServedClient = Framed<Stream, MsgpackCodec<ClientFrame, ReplicaFrame>>;

/// An accepted, authenticated connection.
pub enum Accepted {
    /// Another replica, which proved it holds the instance secret.
    Replica {
        /// The node id it proved.
        node: NodeId,
        /// Its advertised address.
        addr: String,
        /// The instance it said it belongs to (ours, or `None` if it has
        /// not learned it yet).
        instance: Option<InstanceId>,
        /// The connection.
        conn: PeerConnection,
    },
    /// A client, or an operator tool.
    Client {
        /// The session it speaks for (issued or resumed with its ticket).
        session: u64,
        /// When that session was issued (ms since the Unix epoch).
        issued_ms: u64,
        /// Whether it proved it holds the instance secret (an operator).
        operator: bool,
        /// The connection.
        conn: ServedClient,
        /// Its place among the clients served (see
        /// [`Credentials::client_slots`]); hold it while serving the client.
        slot: Option<OwnedSemaphorePermit>,
    },
}

/// What the accepting replica checks connections against.
pub struct Credentials<'a> {
    /// This replica's node id.
    pub me: NodeId,
    /// This replica's instance: a connection of another is refused.
    pub instance: &'a InstanceCell,
    /// The token every connection must present, if any.
    pub token: Option<&'a str>,
    /// The instance secret.
    pub secret: &'a InstanceSecret,
    /// New sessions are issued no earlier than this (ms since the Unix
    /// epoch): after the ended sessions the replicated state forgot.
    pub sessions_not_before_ms: u64,
    /// Places for clients and operators, if their number is limited: a
    /// client that finds none is closed during the handshake without an
    /// answer (a refusal would tell it never to retry), and tries again.
    /// Replicas take no place.
    pub client_slots: Option<&'a Arc<Semaphore>>,
    /// TLS for every connection, if the instance uses it.
    pub tls: Option<&'a ServerTls>,
    /// The members of the views this replica holds, by node id: with TLS, a
    /// connection may claim a listed node only with the certificate of its
    /// address.
    pub members: Option<&'a MemberAddrs>,
}

/// Members' addresses by node id, kept up to date by the replica.
pub type MemberAddrs = RwLock<BTreeMap<NodeId, String>>;

/// Whether the presented token matches the expected one, in constant time.
pub fn token_matches(expected: Option<&str>, presented: Option<&str>) -> bool {
    match expected {
        None => true,
        Some(want) => {
            let got = presented.unwrap_or("");
            // Lengths may differ; ct_eq on slices of different length is false
            // without leaking where they differ.
            bool::from(want.as_bytes().ct_eq(got.as_bytes()))
        }
    }
}

type Handshaking<In> = Framed<Stream, MsgpackCodec<In, HelloReply>>;

/// Server side: reads the `Hello`, checks magic, version and token, issues or
/// checks the session of a client, challenges a replica or operator, and
/// returns the connection in its role's codec. Refused peers get a
/// `Rejected` with the reason before the connection closes. With TLS, the
/// TLS handshake comes first (within `limit` too).
pub async fn accept(
    stream: TcpStream,
    creds: &Credentials<'_>,
    limit: Duration,
) -> Result<Accepted, HandshakeError> {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown peer".into());
    let stream = match creds.tls {
        None => Stream::Plain(stream),
        Some(tls) => match timeout(limit, tls.acceptor().accept(stream)).await {
            Err(_) => return Err(HandshakeError::Timeout(peer)),
            Ok(Err(source)) => return Err(HandshakeError::Tls { addr: peer, source }),
            Ok(Ok(s)) => Stream::Tls(Box::new(tokio_rustls::TlsStream::Server(s))),
        },
    };
    let mut framed: Handshaking<Hello> = Framed::new(stream, MsgpackCodec::new(HELLO_BYTES_MAX));
    let hello: Hello = receive(&mut framed, limit, &peer).await?;
    if hello.magic != MAGIC {
        return refuse(
            framed,
            limit,
            &peer,
            "not a ConCoord connection (bad magic)",
        )
        .await;
    }
    if hello.version != PROTOCOL_VERSION {
        let reason = format!(
            "protocol version {} is not supported; this replica speaks version {PROTOCOL_VERSION}: use client and replica builds of the same release",
            hello.version
        );
        return refuse(framed, limit, &peer, &reason).await;
    }
    if !token_matches(creds.token, hello.token.as_deref()) {
        let reason =
            "authentication failed: wrong or missing token (pass the instance's token with -t)";
        return refuse(framed, limit, &peer, reason).await;
    }
    let is_client = matches!(hello.role, Role::Client { .. } | Role::Operator);
    let slot = match creds.client_slots {
        Some(slots) if is_client => match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => return Err(HandshakeError::TooManyClients(peer)),
        },
        _ => None,
    };
    match hello.role {
        Role::Client { session } => {
            let ticket = match session {
                None => creds.secret.issue_session(creds.sessions_not_before_ms),
                Some(t) if creds.secret.session_is_genuine(&t) => t,
                Some(_) => {
                    let reason = "unknown session: its ticket was not issued by this instance \
                                  (a session is resumed only by the client that opened it); \
                                  connect without a ticket to open a new session";
                    return refuse(framed, limit, &peer, reason).await;
                }
            };
            welcome_client(framed, creds, ticket, false, slot, limit, &peer).await
        }
        Role::Replica { node, addr } => {
            if creds.tls.is_some()
                && let Err(reason) = certificate_speaks_for(&framed, creds, node, &addr)
            {
                return refuse(framed, limit, &peer, &reason).await;
            }
            let mut framed = challenge(
                framed,
                creds,
                Purpose::Replica,
                node,
                &hello.nonce,
                limit,
                &peer,
            )
            .await?;
            // Only now, authenticated, may its instance count: it may be
            // what tells a founder it is a member elsewhere. It is adopted
            // only from a member of our view (a replica restarted without
            // its state answers at a member's address under a new node id).
            let is_member = creds
                .members
                .and_then(|m| m.read().ok().map(|m| m.contains_key(&node)))
                .unwrap_or(false);
            let verdict = if is_member {
                creds.instance.check_or_adopt(hello.instance)
            } else {
                creds.instance.check(hello.instance)
            };
            if let Err(ours) = verdict {
                let theirs = hello.instance.unwrap_or(ours);
                let reason = mismatch_reason(Some(ours), Some(theirs));
                let _ = refuse::<_, ()>(framed, limit, &peer, &reason).await;
                return Err(HandshakeError::OtherInstance {
                    addr: format!("{peer} (replica {addr}, node {node})"),
                    theirs,
                    ours,
                });
            }
            let welcome = HelloReply::Welcome {
                node: creds.me,
                session: None,
                instance: creds.instance.get(),
            };
            send_within(&mut framed, welcome, limit, &peer).await?;
            Ok(Accepted::Replica {
                node,
                addr,
                instance: hello.instance,
                conn: framed.map_codec(|_| MsgpackCodec::new(PEER_FRAME_BYTES_MAX)),
            })
        }
        Role::Operator => {
            let framed = challenge(
                framed,
                creds,
                Purpose::Operator,
                NodeId(0),
                &hello.nonce,
                limit,
                &peer,
            )
            .await?;
            let ticket = creds.secret.issue_session(creds.sessions_not_before_ms);
            welcome_client(framed, creds, ticket, true, slot, limit, &peer).await
        }
    }
}

/// Whether the certificate of a connection claiming to be replica `node` at
/// `addr` speaks for it: it names `addr`, and the view (if it lists `node`)
/// has `node` at `addr`.
fn certificate_speaks_for<In>(
    framed: &Handshaking<In>,
    creds: &Credentials<'_>,
    node: NodeId,
    addr: &str,
) -> Result<(), String> {
    check_replica_binding(framed.get_ref().peer_certificate(), addr)
        .map_err(|e| format!("peer certificate refused: {e}"))?;
    let listed = creds
        .members
        .and_then(|m| m.read().ok().and_then(|m| m.get(&node).cloned()));
    match listed {
        Some(member_addr) if member_addr != addr => Err(format!(
            "node {node} is the member at {member_addr}, not at {addr}: a certificate for \
             {addr} cannot speak for it"
        )),
        _ => Ok(()),
    }
}

/// Welcomes a client or operator into the session of `ticket`.
async fn welcome_client<In>(
    mut framed: Handshaking<In>,
    creds: &Credentials<'_>,
    ticket: SessionTicket,
    operator: bool,
    slot: Option<OwnedSemaphorePermit>,
    limit: Duration,
    peer: &str,
) -> Result<Accepted, HandshakeError> {
    let (session, issued_ms) = (ticket.id, ticket.issued_ms);
    let welcome = HelloReply::Welcome {
        node: creds.me,
        session: Some(ticket),
        instance: creds.instance.get(),
    };
    send_within(&mut framed, welcome, limit, peer).await?;
    Ok(Accepted::Client {
        session,
        issued_ms,
        operator,
        conn: framed.map_codec(|_| MsgpackCodec::new(CLIENT_FRAME_BYTES_MAX)),
        slot,
    })
}

/// The responder's half of `peer_auth`: proves itself, then checks the
/// initiator's proof. A wrong proof is refused.
async fn challenge(
    framed: Handshaking<Hello>,
    creds: &Credentials<'_>,
    purpose: Purpose,
    claimed: NodeId,
    their_nonce: &[u8],
    limit: Duration,
    peer: &str,
) -> Result<Handshaking<HelloProof>, HandshakeError> {
    let mut framed: Handshaking<HelloProof> =
        framed.map_codec(|_| MsgpackCodec::new(HELLO_BYTES_MAX));
    let my_nonce = nonce();
    let exchange = Exchange {
        purpose,
        initiator_nonce: their_nonce,
        responder_nonce: &my_nonce,
        initiator: claimed,
        responder: creds.me,
    };
    let challenge = HelloReply::Challenge {
        node: creds.me,
        nonce: my_nonce.clone(),
        proof: exchange.proof(creds.secret, Side::Responder).to_vec(),
    };
    send_within(&mut framed, challenge, limit, peer).await?;
    let answer: HelloProof = receive(&mut framed, limit, peer).await?;
    if exchange.verify(creds.secret, Side::Initiator, &answer.proof) {
        return Ok(framed);
    }
    let reason = match purpose {
        Purpose::Replica => format!(
            "peer authentication failed: no proof of the instance secret for node {claimed} \
             (a replica joins with --peer-secret FILE holding the instance's secret)"
        ),
        Purpose::Operator => "operator authentication failed: wrong instance secret \
                              (pass the instance's secret file with --peer-secret FILE)"
            .to_string(),
    };
    refuse(framed, limit, peer, &reason).await
}

/// Why a connection between two instances is refused, for the side that
/// reads it.
fn mismatch_reason(ours: Option<InstanceId>, theirs: Option<InstanceId>) -> String {
    let show = |i: Option<InstanceId>| i.map_or("unknown".to_string(), |i| i.to_string());
    format!(
        "instance mismatch: this replica belongs to instance {}, the connection to instance {}. \
         A replica restarted without its state (and without -b) founds a new instance: stop \
         it and rejoin it with -b ADDR of a running replica; a client's bootstrap list must \
         name replicas of one instance only",
        show(ours),
        show(theirs)
    )
}

/// Sends `Rejected` (best effort) and returns the refusal.
async fn refuse<In, T>(
    mut framed: Handshaking<In>,
    limit: Duration,
    peer: &str,
    reason: &str,
) -> Result<T, HandshakeError> {
    let rejected = HelloReply::Rejected {
        reason: reason.to_string(),
    };
    let _ = timeout(limit, framed.send(rejected)).await;
    Err(HandshakeError::Refused(format!("{peer}: {reason}")))
}

/// Reads one handshake frame within `limit`.
async fn receive<In: DeserializeOwned, Out>(
    framed: &mut Framed<Stream, MsgpackCodec<In, Out>>,
    limit: Duration,
    peer: &str,
) -> Result<In, HandshakeError> {
    match timeout(limit, framed.next()).await {
        Err(_) => Err(HandshakeError::Timeout(peer.to_string())),
        Ok(None) => Err(HandshakeError::Closed(peer.to_string())),
        Ok(Some(Err(source))) => Err(HandshakeError::Codec {
            addr: peer.to_string(),
            source,
        }),
        Ok(Some(Ok(value))) => Ok(value),
    }
}

async fn send_within<T, I>(
    framed: &mut Framed<Stream, MsgpackCodec<I, T>>,
    value: T,
    limit: Duration,
    peer: &str,
) -> Result<(), HandshakeError>
where
    T: serde::Serialize,
{
    match timeout(limit, framed.send(value)).await {
        Err(_) => Err(HandshakeError::Timeout(peer.to_string())),
        Ok(Err(source)) => Err(HandshakeError::Codec {
            addr: peer.to_string(),
            source,
        }),
        Ok(Ok(())) => Ok(()),
    }
}

type Connecting<Out> = Framed<Stream, MsgpackCodec<HelloReply, Out>>;

/// What a connection is opened with.
struct Dial<'a> {
    addr: &'a str,
    tls: Option<&'a ClientTls>,
    /// The other side must show the replica certificate of `addr` (a peer
    /// link; with TLS only).
    expect_replica: bool,
    limit: Duration,
}

/// Client side: connects (with TLS if given) and sends `Hello`; returns the
/// first answer.
async fn open(
    dial: Dial<'_>,
    hello: Hello,
) -> Result<(HelloReply, Connecting<Hello>), HandshakeError> {
    let Dial {
        addr,
        tls,
        expect_replica,
        limit,
    } = dial;
    let stream = match timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => return Err(HandshakeError::Timeout(addr.to_string())),
        Ok(Err(source)) => {
            return Err(HandshakeError::Connect {
                addr: addr.to_string(),
                source,
            });
        }
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let stream = match tls {
        None => Stream::Plain(stream),
        Some(tls) => {
            let tls_failed = |source| HandshakeError::Tls {
                addr: addr.to_string(),
                source,
            };
            let name = server_name(addr).map_err(|e| {
                tls_failed(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
            })?;
            let stream = match timeout(limit, tls.connector().connect(name, stream)).await {
                Err(_) => return Err(HandshakeError::Timeout(addr.to_string())),
                Ok(Err(source)) => return Err(tls_failed(source)),
                Ok(Ok(s)) => Stream::Tls(Box::new(tokio_rustls::TlsStream::Client(s))),
            };
            if expect_replica
                && let Err(reason) = check_replica_binding(stream.peer_certificate(), addr)
            {
                return Err(HandshakeError::NotThatReplica {
                    addr: addr.to_string(),
                    reason,
                });
            }
            stream
        }
    };
    let mut framed: Connecting<Hello> = Framed::new(stream, MsgpackCodec::new(HELLO_BYTES_MAX));
    send_within(&mut framed, hello, limit, addr).await?;
    let reply = receive(&mut framed, limit, addr).await?;
    Ok((reply, framed))
}

fn unexpected(addr: &str, reply: HelloReply) -> HandshakeError {
    match reply {
        HelloReply::Rejected { reason } => HandshakeError::Rejected {
            addr: addr.to_string(),
            reason,
        },
        HelloReply::Welcome { .. } => HandshakeError::Unexpected {
            addr: addr.to_string(),
            got: "a welcome before the challenge",
        },
        HelloReply::Challenge { .. } => HandshakeError::Unexpected {
            addr: addr.to_string(),
            got: "a challenge to a client",
        },
    }
}

/// What a replica's welcome said.
struct Welcomed {
    node: NodeId,
    instance: Option<InstanceId>,
}

/// The initiator's half of `peer_auth`: checks the replica's proof, answers
/// with its own, and waits for the welcome. Returns the replica's node id
/// and instance.
async fn prove(
    dial: Dial<'_>,
    hello: Hello,
    purpose: Purpose,
    me: NodeId,
    secret: &InstanceSecret,
) -> Result<(Welcomed, Connecting<HelloProof>), HandshakeError> {
    let (addr, limit) = (dial.addr, dial.limit);
    let my_nonce = hello.nonce.clone();
    let (reply, framed) = open(dial, hello).await?;
    let HelloReply::Challenge { node, nonce, proof } = reply else {
        return Err(unexpected(addr, reply));
    };
    let exchange = Exchange {
        purpose,
        initiator_nonce: &my_nonce,
        responder_nonce: &nonce,
        initiator: me,
        responder: node,
    };
    if !exchange.verify(secret, Side::Responder, &proof) {
        return Err(HandshakeError::Impostor(addr.to_string()));
    }
    let mut framed: Connecting<HelloProof> =
        framed.map_codec(|_| MsgpackCodec::new(HELLO_BYTES_MAX));
    let answer = HelloProof {
        proof: exchange.proof(secret, Side::Initiator).to_vec(),
    };
    send_within(&mut framed, answer, limit, addr).await?;
    match receive(&mut framed, limit, addr).await? {
        HelloReply::Welcome {
            node: n, instance, ..
        } if n == node => Ok((Welcomed { node, instance }, framed)),
        HelloReply::Welcome { .. } => Err(HandshakeError::Unexpected {
            addr: addr.to_string(),
            got: "a welcome from another node than the challenge",
        }),
        other => Err(unexpected(addr, other)),
    }
}

/// How a replica presents itself on its outbound links.
pub struct PeerIdentity<'a> {
    /// Its node id.
    pub me: NodeId,
    /// The address it serves on.
    pub my_addr: &'a str,
    /// The instance's token, if it has one.
    pub token: Option<String>,
    /// The instance secret it proves.
    pub secret: &'a InstanceSecret,
    /// Its instance (learned here if not known yet, from `expect_node`).
    pub instance: &'a InstanceCell,
    /// The member this link is meant to reach, if known: only its welcome
    /// may teach us our instance.
    pub expect_node: Option<NodeId>,
    /// With TLS: its certificate, and the CA the other side's must be
    /// signed by (the other side must show the replica certificate of the
    /// address dialed).
    pub tls: Option<&'a ClientTls>,
}

/// Opens a replica-to-replica connection as `me.me`, proving it holds the
/// instance secret (and checking the other side does, is of the same
/// instance and, with TLS, shows the replica certificate of `addr`).
pub async fn connect_peer(
    addr: &str,
    me: &PeerIdentity<'_>,
    limit: Duration,
) -> Result<(NodeId, PeerConnection), HandshakeError> {
    let role = Role::Replica {
        node: me.me,
        addr: me.my_addr.to_string(),
    };
    let hello = Hello::new(role, me.token.clone(), nonce()).of_instance(me.instance.get());
    let dial = Dial {
        addr,
        tls: me.tls,
        expect_replica: true,
        limit,
    };
    let (welcomed, framed) = prove(dial, hello, Purpose::Replica, me.me, me.secret).await?;
    // Adopted only from the member the link was meant to reach, never from
    // another replica answering at its address.
    let verdict = if me.expect_node == Some(welcomed.node) {
        me.instance.check_or_adopt(welcomed.instance)
    } else {
        me.instance.check(welcomed.instance)
    };
    if let Err(ours) = verdict {
        return Err(HandshakeError::OtherInstance {
            addr: addr.to_string(),
            theirs: welcomed.instance.unwrap_or(ours),
            ours,
        });
    }
    Ok((
        welcomed.node,
        framed.map_codec(|_| MsgpackCodec::new(PEER_FRAME_BYTES_MAX)),
    ))
}

/// Opens a client connection: a new session (`session: None`) or the one of
/// `session`'s ticket. Returns the replica's node id and the session's ticket.
pub async fn connect_client(
    addr: &str,
    session: Option<SessionTicket>,
    token: Option<String>,
    limit: Duration,
) -> Result<(NodeId, SessionTicket, ClientConnection), HandshakeError> {
    connect_client_tls(addr, session, token, None, limit).await
}

/// [`connect_client`], over TLS if `tls` is given.
pub async fn connect_client_tls(
    addr: &str,
    session: Option<SessionTicket>,
    token: Option<String>,
    tls: Option<&ClientTls>,
    limit: Duration,
) -> Result<(NodeId, SessionTicket, ClientConnection), HandshakeError> {
    let w = connect_client_of(addr, session, token, None, tls, limit).await?;
    Ok((w.node, w.ticket, w.conn))
}

/// A client connection and what the replica's welcome said.
pub struct ClientWelcome {
    /// The replica's node id.
    pub node: NodeId,
    /// The session's ticket.
    pub ticket: SessionTicket,
    /// The replica's instance (`None` if it has not learned it yet).
    pub instance: Option<InstanceId>,
    /// The connection.
    pub conn: ClientConnection,
}

/// Like [`connect_client_tls`], for a client that met instance `expected`
/// before: a replica of another instance is an error (`OtherInstance`).
pub async fn connect_client_of(
    addr: &str,
    session: Option<SessionTicket>,
    token: Option<String>,
    expected: Option<InstanceId>,
    tls: Option<&ClientTls>,
    limit: Duration,
) -> Result<ClientWelcome, HandshakeError> {
    let hello = Hello::new(Role::Client { session }, token, Vec::new()).of_instance(expected);
    let dial = Dial {
        addr,
        tls,
        expect_replica: false,
        limit,
    };
    let (reply, framed) = open(dial, hello).await?;
    match reply {
        HelloReply::Welcome {
            node,
            session: Some(ticket),
            instance,
        } if compatible(expected, instance) => Ok(ClientWelcome {
            node,
            ticket,
            instance,
            conn: framed.map_codec(|_| MsgpackCodec::new(CLIENT_FRAME_BYTES_MAX)),
        }),
        HelloReply::Welcome {
            instance: Some(theirs),
            session: Some(_),
            ..
        } => Err(HandshakeError::OtherInstance {
            addr: addr.to_string(),
            theirs,
            ours: expected.unwrap_or(theirs),
        }),
        HelloReply::Welcome { session: None, .. } => Err(HandshakeError::Unexpected {
            addr: addr.to_string(),
            got: "a welcome without a session",
        }),
        other => Err(unexpected(addr, other)),
    }
}

/// Opens an operator connection, proving it holds the instance secret: its
/// admin requests may change the view and stop members.
pub async fn connect_operator(
    addr: &str,
    secret: &InstanceSecret,
    token: Option<String>,
    tls: Option<&ClientTls>,
    limit: Duration,
) -> Result<(NodeId, ClientConnection), HandshakeError> {
    let hello = Hello::new(Role::Operator, token, nonce());
    let dial = Dial {
        addr,
        tls,
        expect_replica: false,
        limit,
    };
    let (welcomed, framed) = prove(dial, hello, Purpose::Operator, NodeId(0), secret).await?;
    Ok((
        welcomed.node,
        framed.map_codec(|_| MsgpackCodec::new(CLIENT_FRAME_BYTES_MAX)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(None, None));
        assert!(token_matches(None, Some("anything")));
        assert!(token_matches(Some("s3cret"), Some("s3cret")));
        assert!(!token_matches(Some("s3cret"), Some("s3cre")));
        assert!(!token_matches(Some("s3cret"), Some("s3cret!")));
        assert!(!token_matches(Some("s3cret"), None));
    }
}
