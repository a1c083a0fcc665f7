//! Finding, opening and leaving replicas: the order addresses are tried in,
//! the handshake that resumes the session, redirects to the leader, new
//! views, and the refusal to mix replicas of two instances.

use super::{Actor, RETRY_PAUSE};
use crate::client::ClientOptions;
use crate::discovery::resolve_domain;
use crate::errors::ClientError;
use crate::in_flight::InFlight;
use concoord_transport::handshake::{ClientConnection, ClientWelcome, connect_client_of};
use concoord_transport::wire::ReplicaFrame;
use concoord_transport::{CodecError, HandshakeError, InstanceId};
use futures::StreamExt;
use futures::stream::SplitStream;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, warn};

/// A client that lost every replica resolves its domain again at most this
/// often.
const RESOLVE_AGAIN_AFTER: Duration = Duration::from_secs(1);
/// How long a new client asks the other bootstrap replicas which instance
/// they belong to (those that do not answer by then are not waited for).
const INSTANCE_PROBE_LIMIT: Duration = Duration::from_secs(1);

impl Actor {
    pub(crate) fn is_connected(&self) -> bool {
        self.sink.is_some()
    }

    /// Why each replica tried could not be reached, for an error message.
    pub(crate) fn describe_failures(&self) -> String {
        self.failures
            .iter()
            .map(|(a, e)| format!("{a}: {e}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(super) fn disconnect(&mut self) {
        self.sink = None;
        self.stream = None;
        self.current = None;
        self.leaderless_since = None;
        self.calls.iter_mut().for_each(InFlight::connection_lost);
    }

    /// Tries the preferred address, then the others in turn. Returns an error
    /// only when a replica refused us (wrong token or version): retrying
    /// cannot help then.
    pub(crate) async fn reconnect(&mut self) -> Option<ClientError> {
        let mut order: Vec<String> = Vec::new();
        if let Some(p) = self.preferred.take() {
            order.push(p);
        }
        for i in 0..self.addrs.len() {
            order.push(self.addrs[(self.cursor + i) % self.addrs.len()].clone());
        }
        self.cursor = (self.cursor + 1) % self.addrs.len().max(1);
        for addr in order {
            match connect_client_of(
                &addr,
                self.ticket.clone(),
                self.options.token.clone(),
                self.instance.as_ref().map(|(i, _)| *i),
                self.options.tls.as_ref(),
                self.options.connect_timeout,
            )
            .await
            {
                Ok(welcome) => {
                    self.connected(addr, welcome).await;
                    return None;
                }
                Err(HandshakeError::Rejected { addr, reason }) => {
                    return Some(ClientError::Refused(format!("{addr}: {reason}")));
                }
                Err(HandshakeError::OtherInstance { theirs, .. }) => {
                    // Not ours: skip it, and say why if nothing else answers.
                    let ours = self.instance.as_ref().map_or(String::new(), |(i, a)| {
                        format!(", not to instance {i} of {a}")
                    });
                    let why = format!(
                        "belongs to instance {theirs}{ours} (a replica restarted without its \
                         state founds a new instance; rejoin it with -b)"
                    );
                    warn!(%addr, "skipping a replica of another instance: {why}");
                    self.failures.insert(addr, why);
                }
                Err(e) => {
                    self.failures.insert(addr, e.to_string());
                }
            }
        }
        self.resolve_again().await;
        tokio::time::sleep(RETRY_PAUSE * 2).await;
        None
    }

    /// A replica welcomed us: the session continues on its connection, and
    /// every call in flight is sent there.
    async fn connected(&mut self, addr: String, welcome: ClientWelcome) {
        let ClientWelcome {
            ticket,
            conn,
            instance,
            ..
        } = welcome;
        debug!(%addr, session = ticket.id, "connected");
        if let (None, Some(instance)) = (&self.instance, instance) {
            self.instance = Some((instance, addr.clone()));
        }
        self.id.store(ticket.id, Ordering::Relaxed);
        self.ticket = Some(ticket);
        let (sink, stream) = conn.split();
        self.sink = Some(sink);
        self.stream = Some(stream);
        self.current = Some(addr);
        self.last_frame = Instant::now();
        let pending = self.calls.seqs();
        self.send_many(&pending).await;
    }

    /// Every known replica failed: if the client was given a domain, asks
    /// the name server again (at most every `RESOLVE_AGAIN_AFTER`) and tries
    /// what it answers first.
    async fn resolve_again(&mut self) {
        let Some((domain, last)) = self.domain.as_mut() else {
            return;
        };
        if last.elapsed() < RESOLVE_AGAIN_AFTER {
            return;
        }
        *last = Instant::now();
        let domain = domain.clone();
        match resolve_domain(&domain, self.options.dns_server).await {
            Ok(found) => {
                debug!(%domain, replicas = ?found, "resolved the domain again");
                self.follow_view(found);
            }
            Err(e) => {
                self.failures.insert(domain, e.to_string());
            }
        }
    }

    /// Reconnects to `leader`, named by a redirect or a keep-alive.
    pub(super) fn follow_leader(&mut self, leader: String) {
        debug!(%leader, "following the leader");
        if !self.addrs.contains(&leader) {
            self.addrs.push(leader.clone());
        }
        self.preferred = Some(leader);
        self.disconnect();
    }

    /// The connected replica knows no leader. If that lasts (it is cut off
    /// from the others), tries another replica; returns whether it did.
    pub(super) fn no_leader_known(&mut self) -> bool {
        let since = *self.leaderless_since.get_or_insert_with(Instant::now);
        let stuck = since.elapsed() >= self.options.attempt_timeout;
        if stuck {
            debug!("this replica knows no leader; trying the next one");
            self.disconnect();
        }
        stuck
    }

    /// Later calls go out in a new session, which the next connection asks
    /// for (the old session ended).
    pub(super) fn start_new_session(&mut self) {
        self.ticket = None;
        self.calls.restart_numbering();
        self.disconnect();
    }

    /// Tries the view's replicas first from now on, then the bootstrap
    /// addresses no longer in the view (in case the view was stale).
    pub(super) fn follow_view(&mut self, members: Vec<String>) {
        if members.is_empty() {
            return;
        }
        let mut addrs = members;
        for a in std::mem::take(&mut self.addrs) {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        self.addrs = addrs;
        self.cursor %= self.addrs.len();
    }
}

/// The next frame from the replica, or never while no connection is open.
pub(super) async fn next_frame(
    stream: &mut Option<SplitStream<ClientConnection>>,
) -> Option<Result<ReplicaFrame, CodecError>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// Asks every other bootstrap replica which instance it belongs to: a client
/// whose list names replicas of two instances (one restarted without its
/// state founds a new, empty one) fails now, naming both, rather than read
/// and write whichever it happened to reach first.
pub(crate) async fn refuse_mixed_instances(
    addrs: &[String],
    first: &str,
    instance: InstanceId,
    options: &ClientOptions,
) -> Result<(), ClientError> {
    let limit = options.connect_timeout.min(INSTANCE_PROBE_LIMIT);
    let mut probes: futures::stream::FuturesUnordered<_> = addrs
        .iter()
        .filter(|a| a.as_str() != first)
        .map(|addr| async move {
            let probe = connect_client_of(
                addr,
                None,
                options.token.clone(),
                Some(instance),
                options.tls.as_ref(),
                limit,
            )
            .await;
            (addr, probe)
        })
        .collect();
    let deadline = Instant::now() + limit;
    while let Ok(Some((addr, probe))) = tokio::time::timeout_at(deadline, probes.next()).await {
        if let Err(HandshakeError::OtherInstance { theirs, .. }) = probe {
            return Err(ClientError::MixedInstances {
                first: first.to_string(),
                first_instance: instance,
                other: addr.clone(),
                other_instance: theirs,
            });
        }
    }
    Ok(())
}
