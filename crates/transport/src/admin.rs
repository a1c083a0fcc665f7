//! One-shot operator requests (status, join, remove) over a client connection.

use crate::handshake::connect_client;
use crate::wire::{AdminReply, AdminRequest, ClientFrame, ReplicaFrame};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::time::timeout;

/// Sends `request` to the replica at `addr` and waits for its answer.
/// Errors are returned as text meant for the user.
pub async fn admin_request(
    addr: &str,
    client_id: u64,
    token: Option<String>,
    request: AdminRequest,
    limit: Duration,
) -> Result<AdminReply, String> {
    let (_, mut conn) = connect_client(addr, client_id, token, limit)
        .await
        .map_err(|e| e.to_string())?;
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
