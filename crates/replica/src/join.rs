//! Joining a running instance: ask any bootstrap replica to add us (following
//! redirects to the leader) until the view includes us. The request goes
//! over an operator connection, proving the instance secret: a replica that
//! cannot prove it has no business in the view.

use concoord_transport::InstanceSecret;
use concoord_transport::admin::admin_request_tls;
use concoord_transport::tls_config::ClientTls;
use concoord_transport::wire::{AdminReply, AdminRequest};
use paxos_core::Member;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::{info, warn};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What a replica proves when it asks to be added, and how it connects.
#[derive(Clone, Debug)]
pub struct JoinCredentials {
    /// The instance's token, if any.
    pub token: Option<String>,
    /// The instance secret (proves it may join).
    pub secret: InstanceSecret,
    /// TLS, with the replica's own certificate, if the instance uses it.
    pub tls: Option<ClientTls>,
}

/// Keeps asking to be added until `joined` is set by the driver.
pub async fn join_instance(
    bootstrap: Vec<String>,
    member: Member,
    creds: JoinCredentials,
    joined: Arc<AtomicBool>,
) {
    let JoinCredentials { token, secret, tls } = creds;
    let mut round = 0usize;
    let mut redirect: Option<String> = None;
    while !joined.load(Ordering::Relaxed) {
        let addr = redirect.take().unwrap_or_else(|| {
            round += 1;
            bootstrap[(round - 1) % bootstrap.len()].clone()
        });
        let request = AdminRequest::Join {
            member: member.clone(),
        };
        match admin_request_tls(
            &addr,
            Some(&secret),
            token.clone(),
            tls.as_ref(),
            request,
            REQUEST_TIMEOUT,
        )
        .await
        {
            Ok(AdminReply::Accepted) => {
                info!(via = %addr, "join proposed; waiting for the view change to take effect");
                tokio::time::sleep(RETRY_PAUSE * 4).await;
            }
            Ok(AdminReply::NotLeader {
                leader: Some(leader),
            }) => redirect = Some(leader),
            Ok(AdminReply::NotLeader { leader: None }) => tokio::time::sleep(RETRY_PAUSE).await,
            Ok(other) => {
                warn!(via = %addr, "join refused: {other:?}; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(e) => {
                warn!(via = %addr, "cannot ask to be added: {e}; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// Asks the replicas at `targets` for their status; returns the newest
/// epoch, above `epoch` (the latest this replica knows), of a view that
/// leaves `member` out. Every replica derives the same views from the same
/// log, so any such view proves the removal; a replica as stale as this one
/// (cut off with it) shows an older view, or one that still includes it. A
/// replica removed while it was cut off never hears of it from the members
/// (they stop talking to it, and once they forget the views it was in they
/// drop what it sends), so it asks.
pub async fn removed_since(
    targets: Vec<String>,
    member: Member,
    creds: JoinCredentials,
    epoch: u64,
) -> Option<u64> {
    let JoinCredentials { token, secret, tls } = creds;
    let mut removed_in = None;
    for addr in targets {
        let reply = admin_request_tls(
            &addr,
            Some(&secret),
            token.clone(),
            tls.as_ref(),
            AdminRequest::Status,
            REQUEST_TIMEOUT,
        )
        .await;
        if let Ok(AdminReply::Status(report)) = reply
            && report.view_epoch > epoch
            && !report.members.iter().any(|m| m.node == member.id)
        {
            removed_in = removed_in.max(Some(report.view_epoch));
        }
    }
    removed_in
}
