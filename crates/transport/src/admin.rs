//! One-shot operator requests (status, join, remove, shutdown) over a client
//! connection. Status is open to any client; view changes and stopping a
//! member need an operator connection, which proves the instance secret.

use crate::handshake::{connect_client_tls, connect_operator};
use crate::instance_secret::InstanceSecret;
use crate::tls_config::ClientTls;
use crate::wire::{AdminReply, AdminRequest, ClientFrame, ReplicaFrame};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::time::timeout;

/// Sends `request` to the replica at `addr` and waits for its answer, as an
/// operator if `operator` holds the instance secret. Errors are returned as
/// text meant for the user.
pub async fn admin_request(
    addr: &str,
    operator: Option<&InstanceSecret>,
    token: Option<String>,
    request: AdminRequest,
    limit: Duration,
) -> Result<AdminReply, String> {
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
) -> Result<AdminReply, String> {
    let connected = match operator {
        Some(secret) => connect_operator(addr, secret, token, tls, limit).await,
        None => connect_client_tls(addr, None, token, tls, limit)
            .await
            .map(|(node, _, conn)| (node, conn)),
    };
    let (_, mut conn) = connected.map_err(|e| e.to_string())?;
    let id = 1;
    timeout(limit, conn.send(ClientFrame::Admin { id, request }))
        .await
        .map_err(|_| format!("{addr} did not accept the request in time"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    loop {
        match timeout(limit, conn.next()).await {
            Err(_) => return Err(format!("{addr} did not answer in time")),
            Ok(None) => return Err(format!("{addr} closed the connection")),
            Ok(Some(Err(e))) => return Err(format!("{addr}: {e}")),
            Ok(Some(Ok(ReplicaFrame::Admin { id: got, reply }))) if got == id => return Ok(reply),
            Ok(Some(Ok(_))) => {}
        }
    }
}
