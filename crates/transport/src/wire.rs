//! Everything that travels between ConCoord processes, in one place.
//!
//! Every connection starts with a [`Hello`] from the connecting side and a
//! [`HelloReply`] from the replica; then replicas exchange [`PeerFrame`]s, and
//! clients send [`ClientFrame`]s and receive [`ReplicaFrame`]s. Each value is
//! one length-prefixed msgpack frame (see `frame_codec`).

pub use crate::instance_id::InstanceId;
use paxos_core::{Ballot, Member, Message, NodeId, Slot};
use serde::{Deserialize, Serialize};
use std::fmt;

/// First bytes of every `Hello`: identifies a ConCoord peer.
pub const MAGIC: [u8; 4] = *b"CCRD";
/// Version of this protocol; a replica refuses any other. Version 2 added
/// peer authentication and session tickets; version 3 promises in parts,
/// the call size limit and the status of the replica's bounds; version 4
/// the instance id in every handshake and status.
pub const PROTOCOL_VERSION: u16 = 4;
/// Largest frame between replicas. Replicas split what they send each other
/// (`paxos_core::Config::max_message_bytes`, 4 MiB of log entries), so a
/// frame holds at most that or one call of [`CALL_BYTES_MAX`], well below.
pub const PEER_FRAME_BYTES_MAX: usize = 64 << 20;
/// Largest frame from or to a client.
pub const CLIENT_FRAME_BYTES_MAX: usize = 16 << 20;
/// Largest call: its method name and arguments together. The client refuses
/// a larger one before sending it (`ClientError::TooLarge`), the replica
/// answers one with [`CallError::TooLarge`].
pub const CALL_BYTES_MAX: usize = 12 << 20;
/// Most calls in one `ClientFrame::Batch`: the client sends larger groups
/// as several frames, a replica refuses a longer batch as soon as it reads
/// its length (`bounded_seq`).
pub const BATCH_CALLS_MAX: usize = 4096;
/// Most `done` ranges one call carries (the client sends the oldest this
/// many; a replica refuses a call with more while decoding it).
pub const DONE_RANGES_PER_CALL: usize = 64;
/// Largest reply value a replica sends; a larger one is answered with
/// [`CallError::ReplyTooLarge`] (it would not fit a client frame).
pub const REPLY_BYTES_MAX: usize = CLIENT_FRAME_BYTES_MAX - (64 << 10);

/// Who is connecting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Another replica, with the address it serves on. It must prove it
    /// holds the instance secret (see `peer_auth`).
    Replica {
        /// Its node id.
        node: NodeId,
        /// Its advertised address.
        addr: String,
    },
    /// A client (also used by admin tools for status).
    Client {
        /// The session to resume; `None` asks for a new one.
        session: Option<SessionTicket>,
    },
    /// An operator tool holding the instance secret: it proves so, and may
    /// then change the view and stop members. Gets a new session too.
    Operator,
}

/// A client session and the secret that proves it is the caller's (see
/// `session_ticket`). Issued by a replica in `Welcome`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTicket {
    /// The session id (the client id of the exactly-once table).
    pub id: u64,
    /// When it was issued (ms since the Unix epoch, as the issuing replica
    /// saw it). Replicas refuse a session they no longer remember if it was
    /// issued before the ended sessions they forgot (see `sessions`).
    pub issued_ms: u64,
    /// Its secret.
    #[serde(with = "serde_bytes")]
    pub secret: Vec<u8>,
}

impl fmt::Debug for SessionTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        write!(f, "SessionTicket({:016x}, ..)", self.id)
    }
}

/// The first frame on every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must be [`MAGIC`].
    pub magic: [u8; 4],
    /// Must be [`PROTOCOL_VERSION`].
    pub version: u16,
    /// Who is connecting.
    pub role: Role,
    /// The instance's security token, if it has one.
    pub token: Option<String>,
    /// The connecting side's challenge nonce (32 random bytes; replicas and
    /// operators only, empty for clients).
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// The instance the connecting side belongs to (a replica) or expects
    /// (a client that met the instance before); `None` if not known yet.
    /// A replica of another instance refuses the connection.
    pub instance: Option<InstanceId>,
}

impl Hello {
    /// A hello for this protocol version, from a side that knows no
    /// instance yet.
    pub fn new(role: Role, token: Option<String>, nonce: Vec<u8>) -> Self {
        Hello {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            role,
            token,
            nonce,
            instance: None,
        }
    }

    /// The same hello from a side of instance `instance`.
    pub fn of_instance(self, instance: Option<InstanceId>) -> Self {
        Hello { instance, ..self }
    }
}

/// The replica's answers during the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted; the replica's node id, and for clients and operators the
    /// session they now speak for.
    Welcome {
        /// The replica's node id.
        node: NodeId,
        /// The connection's session (`None` for replicas).
        session: Option<SessionTicket>,
        /// The replica's instance (`None` while a joining replica has not
        /// learned it yet).
        instance: Option<InstanceId>,
    },
    /// To a replica or operator: prove you hold the instance secret. The
    /// replica proves it first.
    Challenge {
        /// The replica's node id.
        node: NodeId,
        /// Its nonce.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
        /// Its proof (see `peer_auth`).
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
    },
    /// Refused; the connection closes after this.
    Rejected {
        /// Why, in words meant for the user.
        reason: String,
    },
}

/// The connecting side's answer to a `Challenge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloProof {
    /// Its proof (see `peer_auth`).
    #[serde(with = "serde_bytes")]
    pub proof: Vec<u8>,
}

/// Replica to replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerFrame {
    /// A consensus message.
    Paxos(Message),
}

/// A method call from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRequest {
    /// The client's sequence number for this call. A retry reuses it.
    pub seq: u64,
    /// The client holds the replies of every call up to here; the replica may
    /// forget them.
    pub acked: u64,
    /// Method name.
    pub method: String,
    /// Arguments, a msgpack array.
    #[serde(with = "serde_bytes")]
    pub args: Vec<u8>,
    /// Calls above `acked` whose replies the client holds, as inclusive
    /// ranges of sequence numbers: the replica may forget those replies too.
    /// A call blocked for long (a lock wait) thus does not pin every later
    /// reply in the replicas' memory. At most [`DONE_RANGES_PER_CALL`].
    #[serde(deserialize_with = "done_ranges")]
    pub done: Vec<(u64, u64)>,
}

fn done_ranges<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(u64, u64)>, D::Error> {
    crate::bounded_seq::deserialize(d, DONE_RANGES_PER_CALL)
}

fn batch_calls<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<CallRequest>, D::Error> {
    crate::bounded_seq::deserialize(d, BATCH_CALLS_MAX)
}

/// Client to replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// Call a method of the replicated object.
    Call(CallRequest),
    /// Several calls at once (client-side batching); each is answered by its
    /// own `Reply`. At most [`BATCH_CALLS_MAX`] calls.
    Batch(#[serde(deserialize_with = "batch_calls")] Vec<CallRequest>),
    /// An operator request.
    Admin {
        /// Correlates the reply.
        id: u64,
        /// What is asked.
        request: AdminRequest,
    },
    /// Keeps the client's session alive (sent every second or so); answered
    /// by `Alive`.
    KeepAlive,
}

/// Operator requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Progress and view of this replica (without the state digest).
    Status,
    /// The same with the state digest, which serializes the whole object on
    /// the replica's loop: a large object stops it for as long (0.4 s for a
    /// million keys), so only tests and `concoord status --digest` ask.
    StatusWithDigest,
    /// Add a replica to the view (sent by a joining replica to any member).
    Join {
        /// The new replica.
        member: Member,
    },
    /// Remove a replica from the view.
    Remove {
        /// The replica to remove.
        node: NodeId,
    },
    /// Stop this replica. Only a replica outside the view stops for anyone;
    /// a member stops only for an operator connection.
    Shutdown,
}

/// Why a call failed, as the replica reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallError {
    /// This replica does not lead; retry at `leader` if known.
    NotLeader {
        /// Address of the leader this replica follows, if any.
        leader: Option<String>,
    },
    /// The object has no such method.
    UnknownMethod {
        /// What was asked.
        method: String,
        /// Methods the object has.
        known: Vec<String>,
    },
    /// The arguments do not fit the method.
    BadArguments {
        /// The method.
        method: String,
        /// What is wrong.
        detail: String,
    },
    /// The method returned an error value (msgpack-encoded).
    Application(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The method panicked; the replicas rolled the call into an error reply
    /// and kept serving.
    Panicked(String),
    /// The replica is overloaded; retry later.
    Busy,
    /// Too many calls of this client are unanswered.
    TooManyInFlight {
        /// The limit.
        limit: u64,
    },
    /// A blocked call's wait ended before the object woke it (its timeout
    /// passed and the client cancelled it).
    WaitTimedOut,
    /// The client's session expired (it was silent for longer than the
    /// session TTL): its locks and waits were released. Start a new client.
    SessionExpired,
    /// A blocked call was dropped without a wake-up.
    WaitAbandoned {
        /// Why.
        reason: String,
    },
    /// The call's method name and arguments exceed [`CALL_BYTES_MAX`].
    TooLarge {
        /// Their size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The call ran, but its reply value exceeds [`REPLY_BYTES_MAX`] and was
    /// not sent.
    ReplyTooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NotLeader { leader: Some(l) } => {
                write!(f, "not the leader; the leader is {l}")
            }
            CallError::NotLeader { leader: None } => {
                write!(f, "not the leader, and no leader is known yet")
            }
            CallError::UnknownMethod { method, known } => write!(
                f,
                "unknown method `{method}`; this object has: {}",
                known.join(", ")
            ),
            CallError::BadArguments { method, detail } => {
                write!(f, "bad arguments for `{method}`: {detail}")
            }
            CallError::Application(_) => write!(f, "the method returned an error"),
            CallError::Panicked(msg) => write!(f, "the method panicked: {msg}"),
            CallError::Busy => write!(f, "the replica is overloaded; retry later"),
            CallError::TooManyInFlight { limit } => {
                write!(f, "more than {limit} calls of this client are unanswered")
            }
            CallError::WaitTimedOut => write!(f, "the wait timed out before the call was granted"),
            CallError::SessionExpired => write!(
                f,
                "this client's session expired (silent longer than the session TTL); \
                 its locks were released: connect again"
            ),
            CallError::WaitAbandoned { reason } => write!(f, "the wait was abandoned: {reason}"),
            CallError::TooLarge { bytes, limit } => write!(
                f,
                "the call is too large: {} of method name and arguments, above the limit of {}; \
                 store large values in pieces, or outside ConCoord",
                show_bytes(*bytes),
                show_bytes(*limit)
            ),
            CallError::ReplyTooLarge { bytes, limit } => write!(
                f,
                "the call ran, but its reply is too large to send: {}, above the limit of {}",
                show_bytes(*bytes),
                show_bytes(*limit)
            ),
        }
    }
}

impl std::error::Error for CallError {}

/// `12 MiB`, `1.5 MiB`, `300 bytes`: a size for a person.
pub fn show_bytes(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes < MIB {
        return format!("{bytes} bytes");
    }
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / MIB as f64)
    }
}

/// One member as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Node id.
    pub node: NodeId,
    /// Address.
    pub addr: String,
}

/// What `AdminRequest::Status` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// This replica's node id.
    pub node: NodeId,
    /// The instance it belongs to (`None` while a joiner has not learned it).
    pub instance: Option<InstanceId>,
    /// This replica's address.
    pub addr: String,
    /// The object type it hosts.
    pub object: String,
    /// `follower`, `pre-candidate`, `candidate` or `leader`.
    pub role: String,
    /// The leader it follows, if known.
    pub leader: Option<MemberStatus>,
    /// Highest ballot promised.
    pub ballot: Ballot,
    /// Every slot up to here is decided.
    pub decided: Slot,
    /// Every slot up to here is executed (`state_digest` is of this state).
    pub executed: Slot,
    /// Highest commit point heard.
    pub known_commit: Slot,
    /// Slot of the last snapshot.
    pub snapshot_slot: Slot,
    /// Decided entries held in memory.
    pub log_entries: u64,
    /// View epoch.
    pub view_epoch: u64,
    /// Members of the view in force.
    pub members: Vec<MemberStatus>,
    /// Clients connected now.
    pub clients_connected: u64,
    /// Whether this replica keeps its state on disk (`-w`).
    pub durable: bool,
    /// Bytes of log and snapshot on disk (without the zeros each log
    /// segment keeps reserved after its last write, up to 256 KiB).
    pub disk_bytes: u64,
    /// Syncs so far.
    pub fsyncs: u64,
    /// Duration of the last sync, in microseconds.
    pub last_fsync_us: u64,
    /// Client calls executed since start.
    pub commands_executed: u64,
    /// Live client sessions (holders of locks, permits and exactly-once entries).
    pub client_sessions: u64,
    /// Digest of the replicated state (object and exactly-once table) after
    /// executing slot `executed`: replicas at the same slot must agree. Only
    /// for [`AdminRequest::StatusWithDigest`].
    #[serde(default)]
    pub state_digest: Option<u64>,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Whether peers must prove the instance secret (`false`: an open
    /// instance, started with `--no-peer-secret`).
    pub peers_authenticated: bool,
    /// Connections refused at the handshake (bad magic, version, token,
    /// proof or session ticket).
    pub connections_refused: u64,
    /// Peer messages dropped: from non-members, claiming another node's
    /// ballot, out of range, or contradicting what this replica decided.
    pub peer_messages_dropped: u64,
    /// The largest frame sent to or received from a peer, in bytes.
    pub peer_frame_bytes_max: u64,
    /// Bytes held now in the replica's bounded buffers (frames being read,
    /// calls admitted and unanswered, replies queued).
    pub budget_bytes_in_use: u64,
    /// Calls answered `Busy` because the calls budget was full.
    pub calls_refused_busy: u64,
    /// Connections closed at once because the replica served as many
    /// clients, or ran as many handshakes, as it may.
    pub connections_over_limit: u64,
    /// Client connections closed because a reply could not be queued for
    /// them (the client read too slowly); it reconnects and retries.
    pub connections_closed_full: u64,
    /// With `-n`: the domain this replica answers DNS for and the address
    /// (`ip:port`) it answers on; name servers list it in NS from this.
    #[serde(default)]
    pub dns: Option<DnsService>,
    /// Whether client and peer links are encrypted and authenticated with
    /// TLS (`--tls-ca`); `false`: plain TCP, readable on the network.
    #[serde(default)]
    pub links_encrypted: bool,
}

/// A replica's DNS service (`-n DOMAIN`), as its status reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsService {
    /// The zone it answers for.
    pub domain: String,
    /// Where it answers (`ip:port`, UDP and TCP).
    pub addr: String,
}

/// Answers to operator requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminReply {
    /// The status.
    Status(Box<StatusReport>),
    /// The change was proposed; it takes effect once decided.
    Accepted,
    /// Not the leader; ask `leader`.
    NotLeader {
        /// The leader's address, if known.
        leader: Option<String>,
    },
    /// Refused, with the reason.
    Error(String),
    /// The connection may not do this (it is no operator connection).
    Unauthorized(String),
}

/// Replica to client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaFrame {
    /// The outcome of call `seq`.
    Reply {
        /// The call's sequence number.
        seq: u64,
        /// The msgpack-encoded return value, or why it failed.
        outcome: Result<serde_bytes::ByteBuf, CallError>,
    },
    /// The replicas of the current view, sent when a client connects and
    /// after every view change, so clients follow replicas that joined.
    View {
        /// Their addresses.
        members: Vec<String>,
    },
    /// The answer to an admin request.
    Admin {
        /// The request's id.
        id: u64,
        /// The answer.
        reply: AdminReply,
    },
    /// Call `seq` is blocked inside the object (waiting for a lock, a
    /// permit, a barrier…): its reply comes when the object wakes it. Sent
    /// again after every retry of the call.
    Blocked {
        /// The call's sequence number.
        seq: u64,
    },
    /// The answer to `KeepAlive`.
    Alive {
        /// The leader's address, if this replica knows one.
        leader: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(done: usize) -> CallRequest {
        CallRequest {
            seq: 1,
            acked: 0,
            method: "m".into(),
            args: vec![0x90],
            done: vec![(5, 5); done],
        }
    }

    fn round_trip(frame: &ClientFrame) -> Result<ClientFrame, rmp_serde::decode::Error> {
        rmp_serde::from_slice(&rmp_serde::to_vec(frame).expect("encode"))
    }

    #[test]
    fn a_batch_of_at_most_the_limit_decodes_and_a_longer_one_is_refused() {
        let full = ClientFrame::Batch(vec![call(0); BATCH_CALLS_MAX]);
        assert_eq!(round_trip(&full).expect("at the limit"), full);
        let over = ClientFrame::Batch(vec![call(0); BATCH_CALLS_MAX + 1]);
        let e = round_trip(&over).expect_err("over the limit");
        assert!(e.to_string().contains("at most 4096"), "{e}");
    }

    #[test]
    fn a_call_with_more_done_ranges_than_the_limit_is_refused() {
        let full = ClientFrame::Call(call(DONE_RANGES_PER_CALL));
        assert_eq!(round_trip(&full).expect("at the limit"), full);
        let over = ClientFrame::Call(call(DONE_RANGES_PER_CALL + 1));
        let e = round_trip(&over).expect_err("over the limit");
        assert!(e.to_string().contains("at most 64"), "{e}");
    }
}
