//! The driver: one task that owns the consensus node, the replicated state and
//! the peer connections, and turns events into progress.
//!
//! ```text
//!  sockets ──events──▶ ┌────────────── driver loop ──────────────┐
//!  ticker (10 ms) ───▶ │ step / tick / propose / read_index      │
//!                      │ take_ready: send → restore → execute →  │──▶ peers
//!                      │            answer reads → compact       │──▶ clients
//!                      └─────────────────────────────────────────┘
//! ```
//!
//! Each turn handles every event already queued (up to a bound) before calling
//! `take_ready`, so every call that arrived during one turn shares a slot and
//! one `Accept` per follower: that is the batching. No lock is ever held across
//! an await; the driver is the only owner of the state.
//!
//! Nothing a peer or client sends may stop the replica: peer messages pass
//! the `PeerGuard` first, and a message the core finds contradicting what
//! this replica decided is dropped and its sender reported instead of taking
//! the process down. Admin requests that change the view or stop a member
//! need an operator connection, and every one is logged.
//!
//! What the driver holds for clients is bounded in bytes (see `limits`): a
//! call is admitted only if the calls budget has room for it (else it is
//! answered `Busy`), and holds its bytes until answered: a write at the
//! leader until executed (a retry of a write already proposed in this
//! leadership waits for that proposal instead of adding a copy), a read
//! until its index is confirmed. A call above `CALL_BYTES_MAX` is refused,
//! and a reply above `REPLY_BYTES_MAX` is replaced by an error. A frame the
//! driver cannot queue for a client closes that client's connection (see
//! `reply_queue`), so no reply, and no wake-up, is ever silently lost.

use crate::background_snapshot::{BackgroundSnapshot, MadeSnapshot};
use crate::bugs;
use crate::limits::{Budgets, CALLS_PER_EVENT_MAX, call_bytes};
use crate::logged_call::LoggedCall;
use crate::member_keeper::MemberKeeper;
use crate::metrics::{Metrics, PeerCounters, advance, gauge_value};
use crate::overlapped_sync::{may_apply_before_sync, own_vote_decided, split_before_sync};
use crate::peer_guard::{PeerGuard, Refusal};
use crate::replicated_state::{Answer, ReplicatedState, SYSTEM_CLIENT, unknown_method};
use crate::reply_queue::ReplyQueue;
use crate::server::{ConnId, Event, ListenerStats};
use crate::session_keeper::SessionKeeper;
use crate::sessions::CallState;
use crate::sessions::StoredReply;
use crate::storage::{DurableStore, StorageError, SyncDone, announced_floor};
use crate::sync_pipeline::{Released, SyncPipeline};
use concoord_nameserver::LocalView;
use concoord_object::{MethodKind, ReplicatedObject};
use concoord_transport::byte_budget::Reserved;
use concoord_transport::determinism::HashMap;
use concoord_transport::handshake::MemberAddrs;
use concoord_transport::peer_pool::PeerPool;
use concoord_transport::tls_config::ClientTls;
use concoord_transport::wire::{
    AdminReply, AdminRequest, CALL_BYTES_MAX, CallError, CallRequest, ClientFrame, DnsService,
    MemberStatus, REPLY_BYTES_MAX, ReplicaFrame, StatusReport,
};
use concoord_transport::{InstanceCell, InstanceSecret};
use paxos_core::{
    Command, CompactError, Entry, Node, NodeId, Outgoing, PeerFault, ProposeError, Ready, Reconfig,
    Role, Slot, Snapshot,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio::time::MissedTickBehavior;
use tracing::{debug, error, info, warn};

/// Work one turn takes on at most, so ticks are never starved: an event
/// counts one, a client `Batch` one per call (at most
/// [`CALLS_PER_EVENT_MAX`] each).
const TURN_WORK_MAX: usize = 4 * CALLS_PER_EVENT_MAX;

struct ClientConn {
    replies: ReplyQueue,
    client_id: u64,
    issued_ms: u64,
    operator: bool,
    peer: SocketAddr,
}

/// How the network side is secured and bounded, for status.
pub struct Security {
    /// The token connections present, if any.
    pub token: Option<String>,
    /// The instance secret (the peer pool proves it to every peer).
    pub secret: InstanceSecret,
    /// The instance this replica belongs to (shared with the listener).
    pub instance: Arc<InstanceCell>,
    /// What the listener counts (refused connections among them).
    pub stats: Arc<ListenerStats>,
    /// The byte budgets shared with the connections.
    pub budgets: Arc<Budgets>,
    /// The listener's floor for new sessions' issue time, kept here from the
    /// replicated state (see `sessions`).
    pub sessions_not_before_ms: Arc<AtomicU64>,
    /// TLS for the peer links this replica opens, if the instance uses it.
    pub tls: Option<ClientTls>,
    /// The members' addresses the listener checks peer certificates
    /// against, kept up to date with the views.
    pub members: Arc<MemberAddrs>,
}

/// The replica's name server (`-n`): what status reports about it, and where
/// the driver sends its view on every change.
pub struct DnsLink {
    /// The zone and the address it answers on.
    pub service: DnsService,
    /// The view, for the name server.
    pub view: tokio::sync::watch::Sender<LocalView>,
}

struct PendingRead {
    conn: ConnId,
    seq: u64,
    method: String,
    args: Vec<u8>,
    /// Its bytes in the calls budget.
    _bytes: Reserved,
}

/// Why a replica must stop: its state could not be kept.
#[derive(Debug, Error)]
pub enum StopError {
    /// The log could not be written.
    #[error("cannot write the log, so the replica must stop: {0}")]
    LogWrite(#[source] crate::storage::StorageError),
    /// A peer's snapshot could not be installed.
    #[error("cannot install the snapshot at slot {slot} received from a peer: {source}")]
    Snapshot {
        /// The slot the snapshot ends at.
        slot: Slot,
        /// Why it could not be read.
        #[source]
        source: concoord_object::ObjectError,
    },
}

/// The state the driver owns.
pub struct Driver<O> {
    node: Node,
    state: ReplicatedState<O>,
    pool: PeerPool,
    my_addr: String,
    conns: HashMap<ConnId, ClientConn>,
    waiting_writes: HashMap<(u64, u64), ConnId>,
    /// Writes this leader proposed and has not executed yet, with their
    /// bytes in the calls budget and when they were proposed; emptied when
    /// it stops leading.
    proposed: HashMap<(u64, u64), (Reserved, Instant)>,
    waiting_reads: HashMap<u64, PendingRead>,
    next_read: u64,
    started: Instant,
    member_keeper: MemberKeeper,
    storage: Option<DurableStore>,
    commands_executed: u64,
    stopping: bool,
    peers_known: BTreeMap<NodeId, String>,
    /// Last slot executed against `state` (status may be asked between a
    /// decision and its execution).
    executed: u64,
    /// Replicas that connected to us, with their addresses: a joining replica
    /// knows no view yet and answers the leader through these.
    peers_seen: BTreeMap<NodeId, String>,
    session_keeper: SessionKeeper,
    guard: PeerGuard,
    peers_authenticated: bool,
    /// The instance this replica belongs to.
    instance: Arc<InstanceCell>,
    /// Whether it led at the end of the last turn (for the log).
    was_leader: bool,
    links_encrypted: bool,
    members: Arc<MemberAddrs>,
    sessions_not_before_ms: Arc<AtomicU64>,
    stats: Arc<ListenerStats>,
    budgets: Arc<Budgets>,
    calls_refused_busy: u64,
    connections_closed_full: u64,
    dns: Option<DnsLink>,
    /// The view changed since it was last sent to the name server.
    view_changed: bool,
    metrics: Arc<Metrics>,
    peer_counters: PeerCounters,
    metrics_refreshed: Instant,
    /// The log's sync off the loop, and what waits for it.
    sync: SyncPipeline,
    /// A snapshot being serialized off the loop.
    snapshots: BackgroundSnapshot,
    /// Votes a finished sync let go were handed to the core this turn.
    votes_released: bool,
}

impl<O: ReplicatedObject> Driver<O> {
    /// A driver for `node`, reachable at `my_addr`, durable if `storage` is given.
    pub fn new(
        node: Node,
        storage: Option<DurableStore>,
        my_addr: String,
        security: Security,
        member_keeper: MemberKeeper,
        session_keeper: SessionKeeper,
        dns: Option<DnsLink>,
    ) -> Self {
        let peers_authenticated = !security.secret.is_open();
        let instance = security.instance.clone();
        let links_encrypted = security.tls.is_some();
        let pool = PeerPool::new(
            node.id(),
            my_addr.clone(),
            security.token,
            security.secret,
            security.instance,
            security.tls,
        );
        let mut driver = Driver {
            node,
            state: ReplicatedState::default(),
            pool,
            my_addr,
            conns: HashMap::default(),
            waiting_writes: HashMap::default(),
            proposed: HashMap::default(),
            waiting_reads: HashMap::default(),
            next_read: 0,
            started: Instant::now(),
            member_keeper,
            storage,
            commands_executed: 0,
            stopping: false,
            peers_known: BTreeMap::new(),
            executed: 0,
            peers_seen: BTreeMap::new(),
            session_keeper,
            guard: PeerGuard::default(),
            peers_authenticated,
            instance,
            was_leader: false,
            links_encrypted,
            members: security.members,
            sessions_not_before_ms: security.sessions_not_before_ms,
            stats: security.stats,
            budgets: security.budgets,
            calls_refused_busy: 0,
            connections_closed_full: 0,
            dns,
            view_changed: true,
            metrics: Arc::new(Metrics::new()),
            peer_counters: PeerCounters::default(),
            metrics_refreshed: Instant::now(),
            sync: SyncPipeline::default(),
            snapshots: BackgroundSnapshot::default(),
            votes_released: false,
        };
        driver.refresh_peers();
        driver
    }

    /// The metrics this driver keeps, to serve (`metrics_server`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until the event channel closes or the state is unrecoverable.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        tick: Duration,
    ) -> Result<(), StopError> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            // The log's sync job, if one is out, is waited for beside the
            // events (`sync_pipeline`).
            let mut job = self.sync.take_job();
            let mut synced = None;
            let mut snapshot_task = self.snapshots.take_task();
            let mut made = None;
            let mut more_events = 0;
            // Biased, so a simulation replays (tokio's random branch order is
            // not seeded); the ticker first, as it is ready once per tick,
            // then a finished sync, whose messages have waited longest.
            tokio::select! {
                biased;
                _ = ticker.tick() => self.node.tick(),
                done = SyncPipeline::wait(&mut job), if job.is_some() => synced = Some(done),
                snapshot = BackgroundSnapshot::wait(&mut snapshot_task), if snapshot_task.is_some() => {
                    made = Some(snapshot);
                }
                ev = events.recv() => {
                    let Some(ev) = ev else { return Ok(()) };
                    let mut work = ev.work();
                    self.handle(ev);
                    while work < TURN_WORK_MAX {
                        match events.try_recv() {
                            Ok(ev) => {
                                work += ev.work();
                                self.handle(ev);
                                more_events += 1;
                            }
                            Err(_) => break,
                        }
                    }
                }
            }
            self.sync.set_idle(more_events == 0 && events.is_empty());
            match synced {
                Some(done) => self.on_synced(done)?,
                None => self.sync.put_back(job),
            }
            match made {
                Some(snapshot) => self.on_snapshot_made(snapshot),
                None => self.snapshots.put_back(snapshot_task),
            }
            self.process_ready().await?;
            while std::mem::take(&mut self.votes_released) {
                // Votes a sync let go were handed to the core: their decisions
                // are carried out now, not at the next event.
                self.process_ready().await?;
            }
            self.log_leadership_change();
            if !self.node.is_leader() {
                // What it proposed is no longer held for it (step-down drops
                // the queue and the slots in flight). A leadership cannot
                // end and another begin within one turn (a campaign starts
                // on a tick, a turn of its own, and adoption needs answers
                // to the `Prepare`s sent after it), so this sees every end.
                self.proposed.clear();
            }
            self.member_keeper.after_turn(&mut self.node);
            self.session_keeper
                .after_turn(&mut self.node, self.state.sessions.client_ids());
            self.send_view_to_name_server();
            if self.metrics_refreshed.elapsed() >= crate::metrics::REFRESH {
                self.metrics_refreshed = Instant::now();
                self.refresh_metrics(events.len());
            }
            if self.stopping {
                info!("stopping as asked");
                // What waits for the sync out leaves with it.
                self.finish_sync_job().await?;
                // Let the reply to the shutdown request leave.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(());
            }
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::PeerHello { node, addr } => {
                if self.peers_seen.get(&node) != Some(&addr) {
                    self.peers_seen.insert(node, addr);
                    self.refresh_peers();
                }
            }
            Event::Peer { from, msg, bytes } => {
                let addr = self.peer_addr(from);
                let (bytes_in, _) = self.peer_counters.get(&self.metrics, from, addr.as_deref());
                bytes_in.inc_by(bytes.bytes() as u64);
                self.on_peer_message(from, msg);
                drop(bytes);
            }
            Event::ClientConnected {
                conn,
                client_id,
                issued_ms,
                operator,
                peer,
                replies,
            } => {
                if operator {
                    info!(%peer, session = %format!("{client_id:016x}"), "operator connected (proved the instance secret)");
                }
                let c = ClientConn {
                    replies,
                    client_id,
                    issued_ms,
                    operator,
                    peer,
                };
                self.conns.insert(conn, c);
                let view = self.view_frame();
                self.send(conn, view);
            }
            Event::ClientSending { client_id } => self.session_keeper.heard_from(client_id),
            Event::ClientGone { conn } => {
                self.conns.remove(&conn);
                self.forget_conn(conn);
            }
            Event::Client {
                conn,
                client_id,
                frame,
                bytes,
                places,
            } => {
                self.session_keeper.heard_from(client_id);
                self.on_client_frame(conn, client_id, frame);
                drop((bytes, places));
            }
        }
    }

    fn on_client_frame(&mut self, conn: ConnId, client_id: u64, frame: ClientFrame) {
        if !self.conns.contains_key(&conn) {
            // The connection was closed (a reply could not be queued) or is
            // gone, perhaps midway through a batch whose rest was skipped:
            // a later call must not run before it. The client resends what
            // is unanswered, in order, on its next connection.
            return;
        }
        match frame {
            ClientFrame::Call(req) => self.on_call(conn, client_id, req),
            ClientFrame::Batch(calls) => {
                for req in calls {
                    if !self.conns.contains_key(&conn) {
                        // Closed by a reply that could not be queued (above).
                        break;
                    }
                    self.on_call(conn, client_id, req);
                }
            }
            ClientFrame::Admin { id, request } => {
                let reply = self.on_admin(conn, request);
                self.send(conn, ReplicaFrame::Admin { id, reply });
            }
            ClientFrame::KeepAlive => {
                let leader = self.node.leader().and_then(|l| self.addr_of(l));
                self.send(conn, ReplicaFrame::Alive { leader });
            }
        }
    }

    /// Takes a call's bytes from the calls budget, or answers it `Busy`.
    fn admit(&mut self, conn: ConnId, req: &CallRequest) -> Option<Reserved> {
        let bytes = call_bytes(&req.method, &req.args);
        let admitted = self.budgets.calls.try_take(bytes);
        if admitted.is_none() {
            self.calls_refused_busy += 1;
            self.reply(conn, req.seq, Err(CallError::Busy));
        }
        admitted
    }

    fn on_call(&mut self, conn: ConnId, client_id: u64, req: CallRequest) {
        let bytes = req.method.len() + req.args.len();
        if bytes > CALL_BYTES_MAX {
            let err = CallError::TooLarge {
                bytes: bytes as u64,
                limit: CALL_BYTES_MAX as u64,
            };
            self.reply(conn, req.seq, Err(err));
            return;
        }
        match O::method_kind(&req.method) {
            None => {
                let err = unknown_method::<O>(&req.method);
                self.reply(conn, req.seq, Err(err));
            }
            Some(MethodKind::Read) => {
                let Some(admitted) = self.admit(conn, &req) else {
                    return;
                };
                self.next_read += 1;
                let id = self.next_read;
                match self.node.read_index(id) {
                    Ok(()) => {
                        let pending = PendingRead {
                            conn,
                            seq: req.seq,
                            method: req.method,
                            args: req.args,
                            _bytes: admitted,
                        };
                        self.waiting_reads.insert(id, pending);
                    }
                    Err(e) => {
                        let err = self.propose_error(e);
                        self.reply(conn, req.seq, Err(err));
                    }
                }
            }
            Some(MethodKind::Write) => {
                if client_id == SYSTEM_CLIENT {
                    let err = CallError::BadArguments {
                        method: req.method,
                        detail: "client id 0 is reserved for the replicas".into(),
                    };
                    self.reply(conn, req.seq, Err(err));
                    return;
                }
                // A retry of a call already executed: answer from the table,
                // or, if it is blocked, wait here for its wake-up.
                match self.state.sessions.lookup(client_id, req.seq) {
                    Some(CallState::Done(reply)) => {
                        let reply = reply.clone();
                        self.reply(conn, req.seq, reply);
                        return;
                    }
                    Some(CallState::Blocked) if self.node.is_leader() => {
                        self.waiting_writes.insert((client_id, req.seq), conn);
                        self.send(conn, ReplicaFrame::Blocked { seq: req.seq });
                        return;
                    }
                    _ => {}
                }
                let issued_ms = self.conns.get(&conn).map_or(0, |c| c.issued_ms);
                let key = (client_id, req.seq);
                if self.node.is_leader() && self.proposed.contains_key(&key) {
                    // Proposed already in this leadership, and not executed
                    // yet: it will be; wait for it rather than add a copy.
                    self.waiting_writes.insert(key, conn);
                    return;
                }
                let Some(admitted) = self.admit(conn, &req) else {
                    return;
                };
                let call = LoggedCall {
                    client_id,
                    issued_ms,
                    seq: req.seq,
                    acked: req.acked,
                    done: req.done,
                    method: req.method,
                    args: req.args,
                };
                match self.node.propose(call.to_command()) {
                    Ok(()) => {
                        self.waiting_writes.insert(key, conn);
                        self.proposed.insert(key, (admitted, Instant::now()));
                    }
                    Err(e) => {
                        let err = self.propose_error(e);
                        self.reply(conn, call.seq, Err(err));
                    }
                }
            }
        }
    }

    /// A peer message: checked, then stepped. A panic in the core while
    /// stepping it can only be the core refusing a contradiction (a slot
    /// decided twice with different values): the message is dropped and its
    /// sender reported, and the replica keeps serving.
    fn on_peer_message(&mut self, from: NodeId, msg: paxos_core::Message) {
        let kind = msg.kind();
        if let Err(why) = self.guard.check(&self.node, from, &msg) {
            let addr = self.peer_addr(from);
            self.guard.refused(from, addr.as_deref(), kind, why);
            return;
        }
        let from_a_leader = matches!(
            msg,
            paxos_core::Message::Accept(_) | paxos_core::Message::Heartbeat(_)
        );
        self.member_keeper.heard_from(from, from_a_leader);
        // A vote for this leader's proposals waits until its own acceptances
        // of them are on disk (`sync_pipeline`).
        let msg = match &self.storage {
            Some(storage) => match self.sync.waits.admit(storage, from, msg) {
                Some(msg) => msg,
                None => return,
            },
            None => msg,
        };
        // A message the core refuses (malformed, or contradicting a decision)
        // comes back in `Ready::peer_faults`; the core never panics on input.
        self.node.step(from, msg);
    }

    fn peer_addr(&self, node: NodeId) -> Option<String> {
        self.addr_of(node)
            .or_else(|| self.peers_seen.get(&node).cloned())
    }

    /// Whether this replica is outside the view (none known, or removed).
    fn outside_the_view(&self) -> bool {
        self.node
            .views()
            .is_none_or(|v| !v.latest().contains(self.node.id()))
    }

    /// Answers an admin request. Status is open to any connection; view
    /// changes need an operator; stopping needs an operator unless this
    /// replica is outside the view. Every request but status is logged with
    /// who asked and what was answered.
    fn on_admin(&mut self, conn: ConnId, request: AdminRequest) -> AdminReply {
        let Some(c) = self.conns.get(&conn) else {
            return AdminReply::Error("connection closed".into());
        };
        let (operator, peer, session) = (c.operator, c.peer, c.client_id);
        if let AdminRequest::Status | AdminRequest::StatusWithDigest = request {
            let digest = request == AdminRequest::StatusWithDigest;
            return AdminReply::Status(Box::new(self.status(digest)));
        }
        let reply = self.authorized_admin(operator, request.clone());
        let session = format!("{session:016x}");
        match &reply {
            AdminReply::Accepted => {
                info!(%peer, %session, operator, ?request, "admin request accepted")
            }
            other => {
                warn!(%peer, %session, operator, ?request, answer = ?other, "admin request not carried out")
            }
        }
        reply
    }

    fn authorized_admin(&mut self, operator: bool, request: AdminRequest) -> AdminReply {
        let change = match request {
            AdminRequest::Status | AdminRequest::StatusWithDigest => {
                let digest = request == AdminRequest::StatusWithDigest;
                return AdminReply::Status(Box::new(self.status(digest)));
            }
            AdminRequest::Join { .. } | AdminRequest::Remove { .. } if !operator => {
                return AdminReply::Unauthorized(
                    "changing the view needs the instance secret: connect as an operator \
                     (concoord add/remove --peer-secret FILE)"
                        .into(),
                );
            }
            AdminRequest::Join { member } => Reconfig::Add(member),
            AdminRequest::Remove { node } => Reconfig::Remove(node),
            AdminRequest::Shutdown if operator || self.outside_the_view() => {
                self.stopping = true;
                return AdminReply::Accepted;
            }
            AdminRequest::Shutdown => {
                return AdminReply::Unauthorized(
                    "this replica is a member of the view: remove it first (concoord remove), \
                     or stop it as an operator (--peer-secret FILE)"
                        .into(),
                );
            }
        };
        match self.node.propose_reconfig(change) {
            Ok(()) => AdminReply::Accepted,
            Err(ProposeError::NotLeader { leader }) => AdminReply::NotLeader {
                leader: leader.and_then(|l| self.addr_of(l)),
            },
            Err(ProposeError::Busy) => {
                AdminReply::Error("too many view changes pending; retry shortly".into())
            }
        }
    }

    /// Hands messages to the peer links, counting the bytes per peer.
    fn send_to_peers(&mut self, messages: Vec<Outgoing>) {
        for out in messages {
            let bytes = out.msg.size_bytes() as u64;
            let to = out.to;
            if self.pool.send(to, out.msg) {
                let addr = self.peer_addr(to);
                let (_, bytes_out) = self.peer_counters.get(&self.metrics, to, addr.as_deref());
                bytes_out.inc_by(bytes);
            }
        }
    }

    /// Carries out one `Ready`, in the order its contract asks. In memory:
    /// send, then apply. Durable: the leader's early `Accept`s; the turn's
    /// records staged and their sync started (unless one is out), its other
    /// messages sent or held until their sync (`sync_pipeline`); decisions
    /// that rest on durable votes applied while the disk works; a turn that
    /// writes or installs a snapshot, or whose own vote decided a slot,
    /// waits for its sync; then a piece of a snapshot being written, and the
    /// next sync started.
    async fn process_ready(&mut self) -> Result<(), StopError> {
        let mut ready = self.node.take_ready();
        if self.storage.is_none() {
            self.report_peer_faults(&ready.peer_faults);
            self.send_to_peers(std::mem::take(&mut ready.messages));
            self.apply_decisions(&ready)?;
            if ready.compaction_wanted {
                self.compact();
            }
            return Ok(());
        }
        let snapshot_turn = ready.persist.snapshot.is_some() || ready.restore.is_some();
        if snapshot_turn {
            self.finish_sync_job().await?;
        }
        self.send_before_sync(&mut ready);
        let floor = announced_floor(&ready.messages);
        if snapshot_turn {
            self.on_storage(|storage| storage.write(&ready.persist, floor))?;
        } else {
            self.on_storage(|storage| storage.stage(&ready.persist, floor).map(drop))?;
        }
        let writing_snapshot = self.storage.as_ref().is_some_and(|storage| {
            self.sync.note_staged(storage);
            storage.snapshot_in_progress()
        });
        if !writing_snapshot {
            // The disk starts on this turn's records (if no sync is out)
            // before its decisions are executed.
            self.start_sync_job()?;
        }
        // Decisions a quorum already holds on disk are executed, and their
        // callers answered, while this turn's sync runs (`overlapped_sync`);
        // before the turn's other messages leave, as a view they change
        // tells the pool of a new member first.
        let applied_early = may_apply_before_sync(&ready);
        if applied_early {
            self.apply_decisions(&ready)?;
        }
        self.report_peer_faults(&ready.peer_faults);
        let late = std::mem::take(&mut ready.messages);
        if let Some(storage) = &self.storage {
            let released = self.sync.waits.hold(storage, late);
            self.release(released);
        }
        if !applied_early {
            if !ready.committed.is_empty() || own_vote_decided(&ready) {
                // This replica's own acceptance in this turn decided a slot
                // (applied now or once a gap below fills): its sync comes
                // first (the job out may cover earlier turns only: finish it,
                // then sync what it did not cover).
                self.finish_sync_job().await?;
                self.start_sync_job()?;
                self.finish_sync_job().await?;
            }
            self.apply_decisions(&ready)?;
        }
        if ready.compaction_wanted {
            self.compact();
        }
        // A snapshot being written, a piece per turn, once the turn's
        // messages and replies have left (nothing they say depends on it);
        // its last piece syncs the log, so no job may be out.
        if self
            .storage
            .as_ref()
            .is_some_and(DurableStore::snapshot_in_progress)
        {
            self.finish_sync_job().await?;
        }
        self.on_storage(DurableStore::write_snapshot_piece)?;
        self.start_sync_job()
    }

    /// Starts the log's sync if a staged turn waits for one and none is
    /// out, and lets go what waited for turns already durable.
    fn start_sync_job(&mut self) -> Result<(), StopError> {
        let Some(storage) = self.storage.as_mut() else {
            return Ok(());
        };
        let fsyncs_before = storage.stats().fsyncs;
        self.sync.start(storage).map_err(StopError::LogWrite)?;
        let released = self.sync.waits.release_durable(storage);
        // A sync run on the driver's thread is done already.
        self.count_fsyncs(fsyncs_before);
        self.release(released);
        Ok(())
    }

    /// Waits for the sync out, if any, and lets go what waited for it.
    async fn finish_sync_job(&mut self) -> Result<(), StopError> {
        let Some(storage) = self.storage.as_mut() else {
            return Ok(());
        };
        if !self.sync.job_out() {
            return Ok(());
        }
        let fsyncs_before = storage.stats().fsyncs;
        let released = self
            .sync
            .finish(storage)
            .await
            .map_err(StopError::LogWrite)?;
        self.count_fsyncs(fsyncs_before);
        self.release(released);
        Ok(())
    }

    /// A sync job finished (in the loop's `select!`).
    fn on_synced(&mut self, done: Result<SyncDone, StorageError>) -> Result<(), StopError> {
        let done = done.map_err(StopError::LogWrite)?;
        let Some(storage) = self.storage.as_mut() else {
            return Ok(());
        };
        let fsyncs_before = storage.stats().fsyncs;
        let released = self.sync.waits.finished(storage, done);
        self.count_fsyncs(fsyncs_before);
        self.release(released);
        self.start_sync_job()
    }

    /// Sends the messages a sync let go and hands its votes to the core,
    /// and records how long the turns it made durable waited.
    fn release(&mut self, released: Released) {
        if let Some(storage) = &self.storage {
            let histogram = &self.metrics.sync_wait_seconds;
            self.sync
                .observe_waits(storage, |waited| histogram.observe(waited.as_secs_f64()));
        }
        self.send_to_peers(released.messages);
        if !released.votes.is_empty() {
            self.votes_released = true;
        }
        for (from, msg) in released.votes {
            self.node.step(from, msg);
        }
    }

    /// Installs a peer's snapshot, executes the turn's decisions, answers
    /// the reads they allow and the calls the core dropped.
    fn apply_decisions(&mut self, ready: &Ready) -> Result<(), StopError> {
        if let Some(snapshot) = &ready.restore {
            self.install_snapshot(snapshot)?;
        }
        let views_changed = self.execute_committed(&ready.committed) || ready.restore.is_some();
        self.answer_reads(&ready.reads);
        if !ready.committed.is_empty() || ready.restore.is_some() {
            // New sessions are issued after every ended session the state forgot.
            let floor = self.state.sessions.sessions_not_before_ms();
            self.sessions_not_before_ms
                .fetch_max(floor, Ordering::Relaxed);
        }
        self.redirect_dropped(&ready.dropped_commands, &ready.dropped_reads);
        if views_changed {
            self.announce_view();
        }
        Ok(())
    }

    /// A leader's `Accept`s leave before its sync, announcing only synced
    /// decisions (`overlapped_sync`); the rest of the turn's messages wait
    /// for it.
    fn send_before_sync(&mut self, ready: &mut Ready) {
        if let Some(storage) = &self.storage {
            let (early, late) =
                split_before_sync(std::mem::take(&mut ready.messages), storage, &ready.persist);
            ready.messages = late;
            if !early.is_empty() && concoord_transport::determinism::tasks_share_this_thread() {
                // On one thread, the `Accept`s would leave only after a
                // sync run inline: the followers' syncs would follow the
                // leader's instead of overlapping it.
                self.sync.set_idle(false);
            }
            self.send_to_peers(early);
        }
    }

    /// Runs `step` on the durable store, if any, counting the syncs it made.
    fn on_storage(
        &mut self,
        step: impl FnOnce(&mut DurableStore) -> Result<(), StorageError>,
    ) -> Result<(), StopError> {
        let Some(storage) = self.storage.as_mut() else {
            return Ok(());
        };
        let fsyncs_before = storage.stats().fsyncs;
        step(storage).map_err(StopError::LogWrite)?;
        self.count_fsyncs(fsyncs_before);
        Ok(())
    }

    /// Counts the syncs the store made since it had made `fsyncs_before`.
    fn count_fsyncs(&mut self, fsyncs_before: u64) {
        let Some(storage) = self.storage.as_ref() else {
            return;
        };
        let stats = storage.stats();
        if stats.fsyncs > fsyncs_before {
            self.metrics.fsyncs.inc_by(stats.fsyncs - fsyncs_before);
            self.metrics
                .fsync_seconds
                .observe(stats.last_fsync.as_secs_f64());
        }
    }

    /// The core dropped what these peers sent and keeps running; says who.
    fn report_peer_faults(&mut self, faults: &[(NodeId, PeerFault)]) {
        for (peer, fault) in faults {
            let why = match fault {
                PeerFault::ConflictingDecision { .. } => Refusal::Contradiction,
                PeerFault::Malformed(_) => Refusal::Malformed,
            };
            let addr = self.peer_addr(*peer);
            self.guard
                .refused(*peer, addr.as_deref(), &fault.to_string(), why);
        }
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StopError> {
        self.state =
            ReplicatedState::restore(&snapshot.data).map_err(|source| StopError::Snapshot {
                slot: snapshot.slot,
                source,
            })?;
        self.executed = snapshot.slot;
        self.metrics
            .snapshot_bytes
            .set(gauge_value(snapshot.data.len() as u64));
        info!(slot = snapshot.slot, "installed snapshot");
        Ok(())
    }

    /// Executes the committed entries in slot order; true if one of them
    /// changed the view.
    fn execute_committed(&mut self, committed: &[(Slot, Entry)]) -> bool {
        let mut views_changed = false;
        for (slot, entry) in committed {
            self.executed = *slot;
            match entry {
                Entry::Commands(cmds) => {
                    self.metrics.batch_commands.observe(cmds.len() as f64);
                    for cmd in cmds {
                        self.execute_command(cmd);
                    }
                }
                Entry::Reconfig(change) => {
                    info!(?change, "view change decided");
                    self.member_keeper.membership_changed(change);
                    views_changed = true;
                }
                Entry::Noop => {}
            }
        }
        views_changed
    }

    /// Executes one decided command and answers the callers it concerns:
    /// its own (if connected here) and those it woke.
    fn execute_command(&mut self, cmd: &Command) {
        let Some(call) = LoggedCall::from_command(cmd) else {
            warn!("skipping an undecodable command in the log");
            return;
        };
        let executed = self.state.execute(&call);
        self.commands_executed += 1;
        self.metrics.commands_executed.inc();
        let key = (call.client_id, call.seq);
        if let Some((_, proposed_at)) = self.proposed.remove(&key) {
            self.metrics
                .commit_latency_seconds
                .observe(proposed_at.elapsed().as_secs_f64());
        }
        match executed.answer {
            Some(Answer::Blocked) => {
                if let Some(conn) = self.waiting_writes.get(&key).copied() {
                    self.send(conn, ReplicaFrame::Blocked { seq: call.seq });
                }
            }
            Some(Answer::Reply(reply)) => {
                if let Some(conn) = self.waiting_writes.remove(&key) {
                    self.reply(conn, call.seq, reply);
                }
            }
            None => {
                self.waiting_writes.remove(&key);
            }
        }
        for (waiter, reply) in executed.woken {
            let key = (waiter.client_id, waiter.seq);
            if bugs::strikes(bugs::ReplicaBug::DroppedWakeUp) {
                self.waiting_writes.remove(&key);
                continue;
            }
            if let Some(conn) = self.waiting_writes.remove(&key) {
                self.reply_woken(conn, waiter.seq, reply);
            }
        }
    }

    fn answer_reads(&mut self, reads: &[u64]) {
        for id in reads {
            if let Some(read) = self.waiting_reads.remove(id) {
                let reply = self.state.query(&read.method, &read.args);
                self.reply(read.conn, read.seq, reply);
            }
        }
    }

    /// Commands and reads the core dropped (it stepped down) are answered
    /// with the leader to retry at.
    fn redirect_dropped(&mut self, commands: &[Command], reads: &[u64]) {
        let redirect = CallError::NotLeader {
            leader: self.node.leader().and_then(|l| self.addr_of(l)),
        };
        for cmd in commands {
            let Some(call) = LoggedCall::from_command(cmd) else {
                continue;
            };
            let key = (call.client_id, call.seq);
            self.proposed.remove(&key);
            if let Some(conn) = self.waiting_writes.remove(&key) {
                self.reply(conn, call.seq, Err(redirect.clone()));
            }
        }
        for id in reads {
            if let Some(read) = self.waiting_reads.remove(id) {
                self.reply(read.conn, read.seq, Err(redirect.clone()));
            }
        }
    }

    /// Tells every connection the new view.
    fn announce_view(&mut self) {
        self.view_changed = true;
        self.refresh_peers();
        let view = self.view_frame();
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.send(conn, view.clone());
        }
    }

    /// Snapshots the state at the last executed slot: off the loop if the
    /// object can detach a copy (`background_snapshot`), else here.
    fn compact(&mut self) {
        if self.snapshots.busy() || self.snapshots.start(&self.state, self.executed) {
            return;
        }
        let started = Instant::now();
        let bytes = self.state.snapshot();
        self.on_snapshot_made(MadeSnapshot {
            slot: self.executed,
            started,
            bytes,
        });
    }

    /// Hands a snapshot to the core, which drops the log up to its slot. One
    /// made off the loop may find a newer snapshot installed meanwhile (from
    /// a peer): it is dropped.
    fn on_snapshot_made(&mut self, made: MadeSnapshot) {
        let bytes = match made.bytes {
            Ok(bytes) => bytes,
            Err(e) => {
                error!("cannot snapshot the object: {e}");
                return;
            }
        };
        let size = bytes.len() as u64;
        match self.node.compact(made.slot, bytes) {
            Ok(()) => {
                self.metrics.snapshot_bytes.set(gauge_value(size));
                self.metrics
                    .snapshot_seconds
                    .observe(made.started.elapsed().as_secs_f64());
            }
            Err(CompactError::Stale { .. }) => {
                debug!(slot = made.slot, "snapshot dropped: a newer one is held");
            }
            Err(e) => warn!("snapshot skipped: {e}"),
        }
    }

    /// Connects to every member of every view the node holds; a node without
    /// views (joining) connects back to the replicas that contacted it.
    fn refresh_peers(&mut self) {
        let mut peers = BTreeMap::new();
        match self.node.views() {
            Some(views) => {
                for view in views.views() {
                    for (id, addr) in &view.members {
                        peers.insert(*id, addr.clone());
                    }
                }
                if let Ok(mut members) = self.members.write()
                    && *members != peers
                {
                    members.clone_from(&peers);
                }
            }
            None => peers.clone_from(&self.peers_seen),
        }
        peers.remove(&self.node.id());
        if peers != self.peers_known {
            self.pool.set_peers(&peers);
            self.peers_known = peers;
        }
    }

    /// One INFO line when this replica becomes the leader or stops being it.
    fn log_leadership_change(&mut self) {
        let leading = self.node.is_leader();
        if leading == self.was_leader {
            return;
        }
        self.was_leader = leading;
        let ballot = self.node.status().promised;
        if leading {
            info!(round = ballot.round, "this replica is the leader now");
        } else {
            let leader = self.node.leader().and_then(|l| self.addr_of(l));
            info!(
                round = ballot.round,
                new_leader = leader.as_deref().unwrap_or("unknown yet"),
                "this replica is no longer the leader"
            );
        }
    }

    /// Hands the name server the latest view when it or the leader changed
    /// (a cheap comparison otherwise: this runs every turn).
    fn send_view_to_name_server(&mut self) {
        let Some(dns) = &self.dns else {
            return;
        };
        let leader = self.node.leader().and_then(|l| self.addr_of(l));
        let leader_moved = dns.view.borrow().leader != leader;
        if !self.view_changed && !leader_moved {
            return;
        }
        self.view_changed = false;
        let (epoch, members) = self
            .node
            .views()
            .map(|v| {
                let latest = v.latest();
                (latest.epoch, latest.members.values().cloned().collect())
            })
            .unwrap_or_default();
        dns.view.send_replace(LocalView {
            epoch,
            members,
            leader,
        });
    }

    /// The members of the latest view, for clients.
    fn view_frame(&self) -> ReplicaFrame {
        let members = self
            .node
            .views()
            .map(|v| v.latest().members.values().cloned().collect())
            .unwrap_or_default();
        ReplicaFrame::View { members }
    }

    fn addr_of(&self, node: NodeId) -> Option<String> {
        if node == self.node.id() {
            return Some(self.my_addr.clone());
        }
        self.node.views().and_then(|views| {
            views
                .views()
                .iter()
                .rev()
                .find_map(|v| v.members.get(&node).cloned())
        })
    }

    fn propose_error(&self, e: ProposeError) -> CallError {
        match e {
            ProposeError::NotLeader { leader } => CallError::NotLeader {
                leader: leader.and_then(|l| self.addr_of(l)),
            },
            ProposeError::Busy => CallError::Busy,
        }
    }

    fn reply(&mut self, conn: ConnId, seq: u64, outcome: StoredReply) {
        let outcome = match outcome {
            Ok(value) if value.len() > REPLY_BYTES_MAX => Err(CallError::ReplyTooLarge {
                bytes: value.len() as u64,
                limit: REPLY_BYTES_MAX as u64,
            }),
            other => other,
        };
        let outcome = outcome.map(serde_bytes::ByteBuf::from);
        self.send(conn, ReplicaFrame::Reply { seq, outcome });
    }

    /// Delivers a blocked call's wake-up.
    fn reply_woken(&mut self, conn: ConnId, seq: u64, outcome: StoredReply) {
        #[cfg(feature = "test-hooks")]
        if crate::test_hooks::refuse_wakeup() {
            // As if the connection's reply queue were full.
            self.close_full(conn, "a test hook refused the wake-up");
            return;
        }
        self.reply(conn, seq, outcome);
    }

    /// Queues `frame` for a client; a frame that cannot be queued closes
    /// the connection (the client reconnects and retries, and gets its
    /// replies from the exactly-once table), never vanishes.
    fn send(&mut self, conn: ConnId, frame: ReplicaFrame) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if let Err(full) = c.replies.push(frame) {
            if full.why == crate::reply_queue::CONNECTION_GONE {
                // The client left; its task is gone, so is the connection.
                self.conns.remove(&conn);
            } else {
                self.close_full(conn, full.why);
            }
        }
    }

    fn close_full(&mut self, conn: ConnId, why: &str) {
        if let Some(c) = self.conns.remove(&conn) {
            c.replies.close();
            self.connections_closed_full += 1;
            warn!(peer = %c.peer, session = %format!("{:016x}", c.client_id), why,
                "a reply could not be queued for this client; closing its connection so that it reconnects and retries");
        }
        self.forget_conn(conn);
    }

    fn forget_conn(&mut self, conn: ConnId) {
        self.waiting_writes.retain(|_, c| *c != conn);
        self.waiting_reads.retain(|_, r| r.conn != conn);
    }

    /// Copies the state gauges and running totals into the metrics.
    fn refresh_metrics(&mut self, events_queued: usize) {
        // Not `status()`: that digests the whole state.
        let s = self.node.status();
        let m = &self.metrics;
        m.set_role(role_name(s.role));
        m.ballot_round.set(gauge_value(s.promised.round));
        m.decided_slot.set(gauge_value(s.decided));
        m.executed_slot.set(gauge_value(self.executed));
        m.known_commit_slot.set(gauge_value(s.known_commit));
        m.log_entries.set(gauge_value(s.log_entries as u64));
        m.view_epoch
            .set(gauge_value(s.view.as_ref().map_or(0, |v| v.epoch)));
        m.view_members.set(gauge_value(
            s.view.as_ref().map_or(0, |v| v.members.len()) as u64
        ));
        m.clients_connected
            .set(gauge_value(self.conns.len() as u64));
        m.client_sessions
            .set(gauge_value(self.state.sessions.len() as u64));
        m.blocked_calls
            .set(gauge_value(self.state.sessions.blocked().len() as u64));
        m.writes_waiting
            .set(gauge_value(self.waiting_writes.len() as u64));
        m.reads_waiting
            .set(gauge_value(self.waiting_reads.len() as u64));
        m.event_queue_depth.set(gauge_value(events_queued as u64));
        m.budget_bytes_in_use
            .set(gauge_value(self.budgets.in_use() as u64));
        let disk_bytes = self.storage.as_ref().map_or(0, |s| s.stats().bytes_on_disk);
        m.disk_bytes.set(gauge_value(disk_bytes));
        advance(&m.calls_refused_busy, self.calls_refused_busy);
        advance(&m.peer_messages_dropped, self.guard.dropped());
        advance(
            &m.connections_refused,
            self.stats.refused.load(Ordering::Relaxed),
        );
        advance(&m.log_lines_dropped, crate::metrics::log_lines_dropped());
    }

    /// This replica's status; with the state digest only if `digest` (it
    /// serializes the whole object here, on the loop).
    fn status(&self, digest: bool) -> StatusReport {
        let s = self.node.status();
        let role = role_name(s.role);
        let members = s
            .view
            .as_ref()
            .map(|v| {
                v.members
                    .iter()
                    .map(|(node, addr)| MemberStatus {
                        node: *node,
                        addr: addr.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        StatusReport {
            node: s.id,
            instance: self.instance.get(),
            addr: self.my_addr.clone(),
            object: O::type_name().to_string(),
            role: role.to_string(),
            leader: s.leader.map(|node| MemberStatus {
                node,
                addr: self.addr_of(node).unwrap_or_default(),
            }),
            ballot: s.promised,
            decided: s.decided,
            executed: self.executed,
            known_commit: s.known_commit,
            snapshot_slot: s.snapshot_slot,
            log_entries: s.log_entries as u64,
            view_epoch: s.view.as_ref().map_or(0, |v| v.epoch),
            members,
            clients_connected: self.conns.len() as u64,
            durable: self.storage.is_some(),
            disk_bytes: self.storage.as_ref().map_or(0, |s| s.stats().bytes_on_disk),
            fsyncs: self.storage.as_ref().map_or(0, |s| s.stats().fsyncs),
            last_fsync_us: self
                .storage
                .as_ref()
                .map_or(0, |s| s.stats().last_fsync.as_micros() as u64),
            commands_executed: self.commands_executed,
            client_sessions: self.state.sessions.len() as u64,
            state_digest: digest.then(|| self.state.digest()),
            uptime_secs: self.started.elapsed().as_secs(),
            peers_authenticated: self.peers_authenticated,
            links_encrypted: self.links_encrypted,
            connections_refused: self.stats.refused.load(Ordering::Relaxed),
            peer_messages_dropped: self.guard.dropped(),
            peer_frame_bytes_max: self
                .pool
                .largest_frame_bytes()
                .max(self.stats.largest_peer_frame.load(Ordering::Relaxed)),
            budget_bytes_in_use: self.budgets.in_use() as u64,
            calls_refused_busy: self.calls_refused_busy,
            connections_over_limit: self.stats.over_limit.load(Ordering::Relaxed),
            connections_closed_full: self.connections_closed_full,
            dns: self.dns.as_ref().map(|d| d.service.clone()),
        }
    }
}

/// A role as status and metrics name it.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}
