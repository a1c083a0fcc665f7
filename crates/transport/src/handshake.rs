//! Opening connections: the `Hello` exchange on both sides, then the switch to
//! the codec of the connection's role.

use crate::errors::HandshakeError;
use crate::frame_codec::MsgpackCodec;
use crate::wire::{
    CLIENT_FRAME_BYTES_MAX, ClientFrame, Hello, HelloReply, MAGIC, PEER_FRAME_BYTES_MAX,
    PROTOCOL_VERSION, PeerFrame, ReplicaFrame, Role,
};
use futures::{SinkExt, StreamExt};
use paxos_core::NodeId;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

/// Largest `Hello` accepted (it holds a token and an address).
const HELLO_BYTES_MAX: usize = 4096;

/// A replica-to-replica connection.
pub type PeerConnection = Framed<TcpStream, MsgpackCodec<PeerFrame, PeerFrame>>;
/// A client's connection to a replica.
pub type ClientConnection = Framed<TcpStream, MsgpackCodec<ReplicaFrame, ClientFrame>>;
/// A replica's end of a client connection.
pub type ServedClient = Framed<TcpStream, MsgpackCodec<ClientFrame, ReplicaFrame>>;

/// An accepted, authenticated connection.
pub enum Accepted {
    /// Another replica.
    Replica {
        /// Its node id.
        node: NodeId,
        /// Its advertised address.
        addr: String,
        /// The connection.
        conn: PeerConnection,
    },
    /// A client.
    Client {
        /// Its id.
        client_id: u64,
        /// The connection.
        conn: ServedClient,
    },
}

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

/// Server side: reads the `Hello`, checks magic, version and token, answers,
/// and returns the connection in its role's codec. Refused peers get a
/// `Rejected` with the reason before the connection closes.
pub async fn accept(
    stream: TcpStream,
    me: NodeId,
    token: Option<&str>,
    limit: Duration,
) -> Result<Accepted, HandshakeError> {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown peer".into());
    let mut framed = Framed::new(
        stream,
        MsgpackCodec::<Hello, HelloReply>::new(HELLO_BYTES_MAX),
    );
    let hello = match timeout(limit, framed.next()).await {
        Err(_) => return Err(HandshakeError::Timeout(peer)),
        Ok(None) => return Err(HandshakeError::Closed(peer)),
        Ok(Some(Err(source))) => {
            return Err(HandshakeError::Codec { addr: peer, source });
        }
        Ok(Some(Ok(hello))) => hello,
    };
    let refusal = if hello.magic != MAGIC {
        Some("not a ConCoord connection (bad magic)".to_string())
    } else if hello.version != PROTOCOL_VERSION {
        Some(format!(
            "protocol version {} is not supported; this replica speaks version {PROTOCOL_VERSION}: use client and replica builds of the same release",
            hello.version
        ))
    } else if !token_matches(token, hello.token.as_deref()) {
        Some(
            "authentication failed: wrong or missing token (pass the instance's token with -t)"
                .to_string(),
        )
    } else {
        None
    };
    if let Some(reason) = refusal {
        let _ = timeout(
            limit,
            framed.send(HelloReply::Rejected {
                reason: reason.clone(),
            }),
        )
        .await;
        return Err(HandshakeError::Refused(format!("{peer}: {reason}")));
    }
    send_within(&mut framed, HelloReply::Welcome { node: me }, limit, &peer).await?;
    Ok(match hello.role {
        Role::Replica { node, addr } => Accepted::Replica {
            node,
            addr,
            conn: framed.map_codec(|_| MsgpackCodec::new(PEER_FRAME_BYTES_MAX)),
        },
        Role::Client { client_id } => Accepted::Client {
            client_id,
            conn: framed.map_codec(|_| MsgpackCodec::new(CLIENT_FRAME_BYTES_MAX)),
        },
    })
}

async fn send_within<T, I>(
    framed: &mut Framed<TcpStream, MsgpackCodec<I, T>>,
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

/// Client side: connects, sends `Hello`, waits for `Welcome`.
async fn connect(
    addr: &str,
    role: Role,
    token: Option<String>,
    limit: Duration,
) -> Result<(NodeId, Framed<TcpStream, MsgpackCodec<HelloReply, Hello>>), HandshakeError> {
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
    let mut framed = Framed::new(
        stream,
        MsgpackCodec::<HelloReply, Hello>::new(HELLO_BYTES_MAX),
    );
    send_within(&mut framed, Hello::new(role, token), limit, addr).await?;
    match timeout(limit, framed.next()).await {
        Err(_) => Err(HandshakeError::Timeout(addr.to_string())),
        Ok(None) => Err(HandshakeError::Closed(addr.to_string())),
        Ok(Some(Err(source))) => Err(HandshakeError::Codec {
            addr: addr.to_string(),
            source,
        }),
        Ok(Some(Ok(HelloReply::Rejected { reason }))) => Err(HandshakeError::Rejected {
            addr: addr.to_string(),
            reason,
        }),
        Ok(Some(Ok(HelloReply::Welcome { node }))) => Ok((node, framed)),
    }
}

/// Opens a replica-to-replica connection.
pub async fn connect_peer(
    addr: &str,
    me: NodeId,
    my_addr: &str,
    token: Option<String>,
    limit: Duration,
) -> Result<(NodeId, PeerConnection), HandshakeError> {
    let role = Role::Replica {
        node: me,
        addr: my_addr.to_string(),
    };
    let (node, framed) = connect(addr, role, token, limit).await?;
    Ok((
        node,
        framed.map_codec(|_| MsgpackCodec::new(PEER_FRAME_BYTES_MAX)),
    ))
}

/// Opens a client connection.
pub async fn connect_client(
    addr: &str,
    client_id: u64,
    token: Option<String>,
    limit: Duration,
) -> Result<(NodeId, ClientConnection), HandshakeError> {
    let (node, framed) = connect(addr, Role::Client { client_id }, token, limit).await?;
    Ok((
        node,
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
