//! Keeps a [`LiveZone`] equal to the instance's view.
//!
//! Two sources of the view:
//!
//! * [`ViewSource::Local`]: the name server runs inside a replica (`-n`). The
//!   replica's driver sends its latest view (members, leader, epoch) on a
//!   `watch` channel after every view change it decides or installs, and the
//!   zone follows at once: a replica's answer is never older than its view.
//! * [`ViewSource::Remote`]: a name server outside the view
//!   (`concoord nameserver -b ADDRS`) asks the replicas for their status, as
//!   a client would, and takes the view of the highest epoch it hears. When
//!   no replica answers it keeps answering from the last view it had.
//!
//! Either way it asks every member for its status every `probe_every`
//! (default 1 s) to learn which members answer DNS for the same zone (the NS
//! records) and who leads. A member that does not answer keeps the role it
//! was last seen with, so a slow replica does not flap the NS set.
//!
//! Every change of the record set is published to the zone (bumping the
//! serial) and handed on the `publications` channel, for Route53.

use crate::live_view::{LiveView, ViewReplica};
use crate::live_zone::LiveZone;
use concoord_transport::admin::admin_request;
use concoord_transport::wire::{AdminReply, AdminRequest, StatusReport};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// How long one replica gets to answer a status probe.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// The view as a replica's driver knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalView {
    /// The view's epoch.
    pub epoch: u64,
    /// Its members' addresses.
    pub members: Vec<String>,
    /// The leader's address, if known.
    pub leader: Option<String>,
}

/// Where the view comes from.
pub enum ViewSource {
    /// Inside a replica serving at `me`, whose driver sends its view.
    Local {
        /// The driver's view.
        view: watch::Receiver<LocalView>,
        /// The replica's own address.
        me: String,
    },
    /// Outside the view: ask these replicas (and then the view's members).
    Remote {
        /// Replicas to ask first.
        bootstrap: Vec<String>,
    },
}

/// One publication of the zone: the view it was made from, and whether this
/// process is the leader (only the leader publishes to Route53).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Publication {
    /// The view.
    pub view: LiveView,
    /// Whether this replica leads.
    pub leading: bool,
}

/// Follows the view and keeps `zone` equal to it.
pub struct Follower {
    source: ViewSource,
    /// This server's own DNS address (`ip:port`).
    dns_addr: String,
    token: Option<String>,
    probe_every: Duration,
    zone: Arc<LiveZone>,
    publications: watch::Sender<Publication>,
    /// The DNS role each replica was last seen with.
    roles: BTreeMap<String, Option<String>>,
    /// The last view heard (remote source).
    heard: Option<LocalView>,
}

impl Follower {
    /// A follower of `source` for `zone`, answering DNS at `dns_addr`.
    pub fn new(
        source: ViewSource,
        dns_addr: String,
        token: Option<String>,
        probe_every: Duration,
        zone: Arc<LiveZone>,
    ) -> (Follower, watch::Receiver<Publication>) {
        let (publications, rx) = watch::channel(Publication::default());
        let follower = Follower {
            source,
            dns_addr,
            token,
            probe_every,
            zone,
            publications,
            roles: BTreeMap::new(),
            heard: None,
        };
        (follower, rx)
    }

    /// Runs until the local view's sender is dropped (the replica stopped);
    /// forever for a remote source.
    pub async fn run(mut self) {
        loop {
            let view = match &mut self.source {
                ViewSource::Local { view, .. } => Some(view.borrow_and_update().clone()),
                ViewSource::Remote { .. } => self.heard.clone(),
            };
            // Answer from the new view at once, with the roles known so far.
            if let Some(v) = &view {
                self.publish(v).await;
            }
            if let Some(v) = self.probe(view).await {
                self.publish(&v).await;
            }
            let pause = tokio::time::sleep(self.probe_every);
            match &mut self.source {
                ViewSource::Local { view, .. } => {
                    tokio::select! {
                        changed = view.changed() => if changed.is_err() { return },
                        _ = pause => {}
                    }
                }
                ViewSource::Remote { .. } => pause.await,
            }
        }
    }

    /// Asks the members (or, knowing none, the bootstrap replicas) for their
    /// status; returns the view to serve, if any replica answered.
    async fn probe(&mut self, view: Option<LocalView>) -> Option<LocalView> {
        let me = match &self.source {
            ViewSource::Local { me, .. } => Some(me.clone()),
            ViewSource::Remote { .. } => None,
        };
        let mut targets: Vec<String> = view.as_ref().map(|v| v.members.clone()).unwrap_or_default();
        if let ViewSource::Remote { bootstrap } = &self.source {
            for b in bootstrap {
                if !targets.contains(b) {
                    targets.push(b.clone());
                }
            }
        }
        targets.retain(|t| Some(t) != me.as_ref());
        let token = self.token.clone();
        let reports = futures::future::join_all(targets.iter().map(|addr| {
            let token = token.clone();
            async move { (addr.clone(), status(addr, token).await) }
        }))
        .await;
        let domain = self.zone.spec().domain.clone();
        let mut answered = Vec::new();
        for (addr, report) in reports {
            match report {
                Ok(r) => {
                    let dns = r
                        .dns
                        .as_ref()
                        .filter(|d| d.domain.eq_ignore_ascii_case(&domain))
                        .map(|d| d.addr.clone());
                    self.roles.insert(r.addr.clone(), dns);
                    answered.push(r);
                }
                Err(e) => debug!(%addr, "status probe failed: {e}"),
            }
        }
        match &self.source {
            ViewSource::Local { .. } => view,
            ViewSource::Remote { .. } => {
                let newest = answered.iter().max_by_key(|r| r.view_epoch)?;
                let heard = LocalView {
                    epoch: newest.view_epoch,
                    members: newest.members.iter().map(|m| m.addr.clone()).collect(),
                    leader: newest.leader.as_ref().map(|l| l.addr.clone()),
                };
                if self.heard.as_ref().map(|h| h.epoch) != Some(heard.epoch) {
                    info!(epoch = heard.epoch, members = ?heard.members, "following the view");
                }
                self.heard = Some(heard.clone());
                Some(heard)
            }
        }
    }

    /// Serves the zone for `view` with the roles known now.
    async fn publish(&mut self, view: &LocalView) {
        let (me, other_name_servers) = match &self.source {
            ViewSource::Local { me, .. } => (Some(me.clone()), Vec::new()),
            ViewSource::Remote { .. } => (None, vec![self.dns_addr.clone()]),
        };
        let replicas = view
            .members
            .iter()
            .map(|addr| ViewReplica {
                addr: addr.clone(),
                leader: view.leader.as_ref() == Some(addr),
                dns: if Some(addr) == me.as_ref() {
                    Some(self.dns_addr.clone())
                } else {
                    self.roles.get(addr).cloned().flatten()
                },
            })
            .collect();
        let live = LiveView {
            epoch: view.epoch,
            replicas,
            other_name_servers,
        };
        match self.zone.publish(&live).await {
            Ok(Some(serial)) => {
                info!(serial, epoch = live.epoch, replicas = ?live.addresses(), "zone updated");
            }
            Ok(None) => {}
            Err(e) => warn!("cannot update the zone: {e}"),
        }
        let leading = me.is_some() && view.leader == me;
        self.publications.send_if_modified(|p| {
            let next = Publication {
                view: live,
                leading,
            };
            let changed = *p != next;
            *p = next;
            changed
        });
    }
}

async fn status(addr: &str, token: Option<String>) -> Result<StatusReport, String> {
    match admin_request(addr, None, token, AdminRequest::Status, PROBE_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?
    {
        AdminReply::Status(r) => Ok(*r),
        other => Err(format!("unexpected answer {other:?}")),
    }
}
