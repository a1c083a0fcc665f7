//! One-shot operator requests (status, join, remove, shutdown) over a client
//! connection. Status is open to any client; view changes and stopping a
//! member need an operator connection, which proves the instance secret.

use crate::errors::{CodecError, HandshakeError};
use crate::handshake::{connect_client_tls, connect_operator};
use crate::instance_secret::InstanceSecret;
use crate::tls_config::ClientTls;
use crate::wire::{AdminReply, AdminRequest, ClientFrame, ReplicaFrame};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use thiserror::Error;
use tokio::time::timeout;

/// Why an operator request got no answer; each message names the replica.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The connection could not be opened (or was refused).
    #[error("{0}")]
    Connect(#[from] HandshakeError),
    /// The request could not be sent in time.
    #[error("{addr} did not accept the request in time")]
    SendTimeout {
        /// The replica.
        addr: String,
    },
    /// The replica did not answer in time.
    #[error("{addr} did not answer in time")]
    AnswerTimeout {
        /// The replica.
        addr: String,
    },
    /// The replica closed the connection before answering.
    #[error("{addr} closed the connection")]
    Closed {
        /// The replica.
        addr: String,
    },
    /// Sending or receiving failed.
    #[error("{addr}: {source}")]
    Frame {
        /// The replica.
        addr: String,
        /// What failed.
        #[source]
        source: CodecError,
    },
}

/// Sends `request` to the replica at `addr` and waits for its answer, as an
/// operator if `operator` holds the instance secret. Errors display as text
/// meant for the user.
pub async fn admin_request(
    addr: &str,
    operator: Option<&InstanceSecret>,
    token: Option<String>,
    request: AdminRequest,
    limit: Duration,
) -> Result<AdminReply, AdminError> {
    admin_request_tls(addr, operator, token, None, request, limit).await
}

/// [`admin_request`], over TLS if `tls` is given.
pub async fn admin_request_tls(
    addr: &str,
    operator: Option<&InstanceSecret>,
    token: Option<String>,
    tls: Option<&ClientTls>,
    request: AdminRequest,
    limit: Duration,
) -> Result<AdminReply, AdminError> {
    let connected = match operator {
        Some(secret) => connect_operator(addr, secret, token, tls, limit).await,
        None => connect_client_tls(addr, None, token, tls, limit)
            .await
            .map(|(node, _, conn)| (node, conn)),
    };
    let (_, mut conn) = connected?;
    let id = 1;
    let addr = || addr.to_string();
    timeout(limit, conn.send(ClientFrame::Admin { id, request }))
        .await
        .map_err(|_| AdminError::SendTimeout { addr: addr() })?
        .map_err(|source| AdminError::Frame {
            addr: addr(),
            source,
        })?;
    loop {
        match timeout(limit, conn.next()).await {
            Err(_) => return Err(AdminError::AnswerTimeout { addr: addr() }),
            Ok(None) => return Err(AdminError::Closed { addr: addr() }),
            Ok(Some(Err(source))) => {
                return Err(AdminError::Frame {
                    addr: addr(),
                    source,
                });
            }
            Ok(Some(Ok(ReplicaFrame::Admin { id: got, reply }))) if got == id => return Ok(reply),
            Ok(Some(Ok(_))) => {}
        }
    }
}
