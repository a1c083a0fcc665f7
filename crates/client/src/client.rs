//! The async client: one background task per `Client` owns the connection to
//! the replica it believes leads, keeps every call in flight on it (pipelined),
//! follows redirects, and after a timeout or a lost connection resends every
//! unanswered call with its original sequence number to the next replica. The
//! replicas' exactly-once table makes the retries safe: a call never runs
//! twice, and a retry of an executed call gets its first reply.
//!
//! The session is the replicas' to give: the first connection gets a ticket
//! (id and secret), and every later connection — after a lost connection, at
//! another replica after a failover — presents it to resume the same
//! session. No other connection can speak for it.

use crate::discovery::{resolve_bootstrap, resolve_domain};
use crate::errors::{ClientError, MethodError};
use concoord_object::{CONCOORD_CANCEL, CONCOORD_CLOSE, args};
use concoord_transport::InstanceId;
use concoord_transport::handshake::{ClientConnection, ClientWelcome, connect_client_of};
use concoord_transport::tls_config::ClientTls;
use concoord_transport::wire::{
    CALL_BYTES_MAX, CallError, CallRequest, ClientFrame, ReplicaFrame, SessionTicket,
};
use concoord_transport::{CodecError, HandshakeError};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, warn};

/// Calls queued to the background task before `call` waits.
const REQUEST_QUEUE_MAX: usize = 4096;
/// Pause before retrying after `Busy` or when no leader is known.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Ranges of answered calls reported with each call at most (they are
/// reported again with the next ones).
const DONE_RANGES_SENT_MAX: usize = 64;
/// A client that lost every replica resolves its domain again at most this
/// often.
const RESOLVE_AGAIN_AFTER: Duration = Duration::from_secs(1);
/// How long a dropped client waits for its session to close before leaving.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes of calls one frame carries at most: several calls go in one
/// `Batch` frame only up to here (a client frame holds 16 MiB).
const FRAME_CALLS_BYTES_MAX: usize = CALL_BYTES_MAX;

/// How a client sends calls (the original's proxy types 0, 2 and 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallMode {
    /// One call at a time per client: concurrent callers wait their turn.
    Serial,
    /// Calls from concurrent callers are in flight together on one connection;
    /// the leader batches them into log slots (server-side batching).
    Pipelined,
    /// Calls from concurrent callers queue locally and leave as one batch
    /// frame of up to `max_calls` (client-side batching): a batch closes when
    /// no new call has come for `linger`. Each caller gets its own reply.
    Batched {
        /// Calls in one batch at most.
        max_calls: usize,
        /// The longest quiet gap a batch waits for another call.
        linger: Duration,
    },
}

impl CallMode {
    /// Client-side batching with defaults: up to 256 calls, 50 µs gaps.
    pub fn batched() -> CallMode {
        CallMode::Batched {
            max_calls: 256,
            linger: Duration::from_micros(50),
        }
    }
}

/// How a client behaves. Its `Debug` leaves the token out.
#[derive(Clone)]
pub struct ClientOptions {
    /// The instance's security token, if it has one.
    pub token: Option<String>,
    /// TLS towards the replicas (`TlsFiles::client`), if the instance uses
    /// it; `None`: plain TCP.
    pub tls: Option<ClientTls>,
    /// Time a call may take in total before it fails with `Timeout`.
    pub call_timeout: Duration,
    /// Time one replica gets to answer before the call moves to the next.
    pub attempt_timeout: Duration,
    /// Time to connect to one replica.
    pub connect_timeout: Duration,
    /// How calls are sent.
    pub mode: CallMode,
    /// Interval between keep-alives, which keep the session (and the locks
    /// it holds) alive while the client is idle or blocked. Keep it well
    /// below the replicas' `--session-ttl` (default 5 s).
    pub keepalive: Duration,
    /// The DNS server to resolve a bootstrap domain with (`None`: the
    /// system's resolver).
    pub dns_server: Option<SocketAddr>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("call_timeout", &self.call_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("mode", &self.mode)
            .field("keepalive", &self.keepalive)
            .field("dns_server", &self.dns_server)
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: None,
            tls: None,
            call_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            mode: CallMode::Pipelined,
            keepalive: Duration::from_secs(1),
            dns_server: None,
        }
    }
}

type Reply = Result<Vec<u8>, ClientError>;

struct Request {
    method: String,
    args: Vec<u8>,
    reply: oneshot::Sender<Reply>,
    /// For a call that blocks: how long to wait before cancelling it
    /// (`None`: wait until woken).
    wait: Option<Duration>,
}

/// A connection to a ConCoord instance. Cheap to clone; clones share the
/// connection, the session and the sequence numbers.
#[derive(Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
    id: Arc<AtomicU64>,
    options: Arc<ClientOptions>,
    /// Held for the whole call in `CallMode::Serial`.
    serial: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl Client {
    /// Connects to the instance given by a bootstrap string
    /// (`"127.0.0.1:14000, 127.0.0.1:14001"`, or a domain served by a
    /// ConCoord name server: `"counterdomain.com"`).
    pub async fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        Client::connect_with(bootstrap, ClientOptions::default()).await
    }

    /// Connects with explicit options. Fails with `Unreachable` if no replica
    /// accepts a connection within `call_timeout`.
    pub async fn connect_with(
        bootstrap: &str,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let (addrs, domain) = resolve_bootstrap(bootstrap, options.dns_server).await?;
        let id = Arc::new(AtomicU64::new(0));
        let mut actor = Actor::new(addrs, id.clone(), options.clone());
        actor.domain = domain.map(|d| (d, Instant::now()));
        let give_up = Instant::now() + options.call_timeout;
        while !actor.is_connected() {
            if let Some(refusal) = actor.reconnect().await {
                return Err(refusal);
            }
            if Instant::now() >= give_up && !actor.is_connected() {
                return Err(ClientError::Unreachable {
                    after: options.call_timeout,
                    tried: actor.describe_failures(),
                });
            }
        }
        if let Some((instance, first)) = actor.instance.clone() {
            refuse_mixed_instances(&actor.addrs, &first, instance, &options).await?;
        }
        let (requests, rx) = mpsc::channel(REQUEST_QUEUE_MAX);
        concoord_transport::determinism::spawn(actor.run(rx));
        let serial =
            (options.mode == CallMode::Serial).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Client {
            requests,
            id,
            options: Arc::new(options),
            serial,
        })
    }

    /// Ends this client's session now: the replicas release every lock and
    /// permit it holds and drop its waits (instead of when the session
    /// expires). Calls made afterwards start a new session.
    pub async fn close(&self) {
        let _ = self.call::<_, ()>(CONCOORD_CLOSE, &()).await;
    }

    /// This client's session id, issued by the replica it first connected
    /// to (a new one after the session ended).
    pub fn id(&self) -> u64 {
        self.id.load(Ordering::Relaxed)
    }

    /// The options in use.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Calls `method` with msgpack-encoded `args`; returns the msgpack reply.
    /// A call that blocks inside the object (a lock acquire, a barrier wait)
    /// waits until the object wakes it.
    pub async fn call_raw(&self, method: &str, args: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.call_raw_waiting(method, args, None).await
    }

    /// Like [`Client::call_raw`], but a call that blocks is cancelled after
    /// `wait`: it then fails with `CallError::WaitTimedOut`, unless it was
    /// granted first (the object decides, through the log, which came first).
    ///
    /// A call whose method name and arguments exceed
    /// [`CALL_BYTES_MAX`](concoord_transport::wire::CALL_BYTES_MAX) fails at
    /// once with [`ClientError::TooLarge`], without being sent.
    pub async fn call_raw_waiting(
        &self,
        method: &str,
        args: Vec<u8>,
        wait: Option<Duration>,
    ) -> Result<Vec<u8>, ClientError> {
        let bytes = method.len() + args.len();
        if bytes > CALL_BYTES_MAX {
            return Err(ClientError::TooLarge {
                method: method.to_string(),
                bytes: bytes as u64,
                limit: CALL_BYTES_MAX as u64,
            });
        }
        let _turn = match &self.serial {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let (reply, rx) = oneshot::channel();
        let request = Request {
            method: method.to_string(),
            args,
            reply,
            wait,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Calls `method` with arguments given as a tuple (`()`, `(x,)`, …) and
    /// decodes the reply.
    pub async fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, ClientError> {
        let args = concoord_object::args::encode(args).map_err(|e| ClientError::Decode {
            method: method.to_string(),
            detail: e.to_string(),
        })?;
        let bytes = self.call_raw(method, args).await?;
        decode_reply(method, &bytes)
    }

    /// Calls a method that may block, giving up after `wait`: `Ok(None)` if
    /// the wait timed out.
    pub async fn call_waiting<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        wait: Duration,
    ) -> Result<Option<R>, ClientError> {
        let args = concoord_object::args::encode(args).map_err(|e| ClientError::Decode {
            method: method.to_string(),
            detail: e.to_string(),
        })?;
        match self.call_raw_waiting(method, args, Some(wait)).await {
            Ok(bytes) => decode_reply(method, &bytes).map(Some),
            Err(ClientError::Call(CallError::WaitTimedOut)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Calls a method that returns `Result<T, E>`: its error comes back typed
    /// as `MethodError::Returned(E)`.
    pub async fn call_fallible<A: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<T, MethodError<E>> {
        fallible(method, self.call(method, args).await)
    }
}

/// Decodes a reply, naming the method on failure.
pub(crate) fn decode_reply<R: DeserializeOwned>(
    method: &str,
    bytes: &[u8],
) -> Result<R, ClientError> {
    rmp_serde::from_slice(bytes).map_err(|e| ClientError::Decode {
        method: method.to_string(),
        detail: e.to_string(),
    })
}

/// Turns an application error into the method's typed error.
pub(crate) fn fallible<T, E: DeserializeOwned>(
    method: &str,
    result: Result<T, ClientError>,
) -> Result<T, MethodError<E>> {
    match result {
        Ok(v) => Ok(v),
        Err(ClientError::Application { value, .. }) => match rmp_serde::from_slice(&value) {
            Ok(e) => Err(MethodError::Returned(e)),
            Err(e) => Err(MethodError::Failed(ClientError::Decode {
                method: method.to_string(),
                detail: format!("cannot decode the error value: {e}"),
            })),
        },
        Err(e) => Err(MethodError::Failed(e)),
    }
}

struct InFlight {
    method: String,
    args: Vec<u8>,
    reply: oneshot::Sender<Reply>,
    /// The call fails with `Timeout` if unanswered by then (`None` once a
    /// replica said it is blocked: it waits for its wake-up).
    deadline: Option<Instant>,
    /// A replica said the call is blocked inside the object.
    blocked: bool,
    /// Cancel the blocked call at this time (its wait timed out).
    cancel_at: Option<Instant>,
    /// When it was last sent on the current connection (`None`: not sent yet).
    sent_at: Option<Instant>,
    /// Resend at this time (after `Busy`).
    retry_at: Option<Instant>,
    /// `Busy` answers so far: each doubles the pause before the next try.
    busy: u32,
    /// Copies sent so far, on any connection (one sent may have run).
    sends: u32,
}

struct Actor {
    addrs: Vec<String>,
    cursor: usize,
    preferred: Option<String>,
    /// The session's id, shared with the `Client` handles.
    id: Arc<AtomicU64>,
    /// The session's ticket (`None` until a replica issued one, and again
    /// once the session ended).
    ticket: Option<SessionTicket>,
    options: ClientOptions,
    /// The replica connected to.
    current: Option<String>,
    /// When the connection last delivered a frame.
    last_frame: Instant,
    /// When to send the next keep-alive.
    keepalive_at: Instant,
    /// Since when the connected replica has answered "no leader known".
    leaderless_since: Option<Instant>,
    sink: Option<SplitSink<ClientConnection, ClientFrame>>,
    stream: Option<SplitStream<ClientConnection>>,
    next_seq: u64,
    inflight: BTreeMap<u64, InFlight>,
    /// Calls above `acked()` whose replies arrived: start → end, inclusive.
    /// Sent with every call so the replicas forget those replies although an
    /// older call (a lock wait) is still unanswered.
    done: BTreeMap<u64, u64>,
    failures: BTreeMap<String, String>,
    /// The bootstrap domain, if the client was given one, and when it was
    /// last resolved.
    domain: Option<(String, Instant)>,
    /// The instance of the first replica that welcomed us, and that
    /// replica: the client never talks to replicas of another.
    instance: Option<(InstanceId, String)>,
}

impl Actor {
    fn new(addrs: Vec<String>, id: Arc<AtomicU64>, options: ClientOptions) -> Actor {
        Actor {
            addrs,
            cursor: 0,
            preferred: None,
            id,
            ticket: None,
            current: None,
            last_frame: Instant::now(),
            keepalive_at: Instant::now() + options.keepalive,
            leaderless_since: None,
            options,
            sink: None,
            stream: None,
            next_seq: 1,
            inflight: BTreeMap::new(),
            done: BTreeMap::new(),
            failures: BTreeMap::new(),
            domain: None,
            instance: None,
        }
    }

    fn is_connected(&self) -> bool {
        self.sink.is_some()
    }

    fn describe_failures(&self) -> String {
        self.failures
            .iter()
            .map(|(a, e)| format!("{a}: {e}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut open = true;
        while open || !self.inflight.is_empty() {
            // Stay connected even when idle: the keep-alives hold the session
            // (and whatever locks it holds).
            if !self.is_connected() {
                // Calls asked while no replica answers get their deadline
                // too (they wait in flight, and are sent on reconnection).
                while open {
                    match requests.try_recv() {
                        Ok(req) => self.submit(vec![req]).await,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                    }
                }
                if let Some(refusal) = self.reconnect().await {
                    self.fail_all(|| clone_refusal(&refusal));
                    if !open {
                        return;
                    }
                }
                self.expire();
                continue;
            }
            let wake = self.next_wake();
            // Biased, so a simulation replays (tokio's random branch order is
            // not seeded): replies and timers, which come at the replica's
            // pace, before new requests.
            tokio::select! {
                biased;
                frame = next_frame(&mut self.stream) => self.on_frame(frame).await,
                _ = sleep_until(wake) => self.on_timer().await,
                _ = sleep_until(self.keepalive_at) => self.keep_alive().await,
                req = requests.recv(), if open => match req {
                    Some(req) => {
                        let batch = self.gather(req, &mut requests).await;
                        self.submit(batch).await;
                    }
                    None => {
                        open = false;
                        self.close_session().await;
                    }
                },
            }
        }
    }

    /// How long a connection with only blocked calls may stay silent before
    /// the replica is taken for dead: it answers every keep-alive.
    fn silence_limit(&self) -> Duration {
        self.options.attempt_timeout.max(self.options.keepalive * 3)
    }

    /// Sends a keep-alive (the reply also tells us who leads).
    async fn keep_alive(&mut self) {
        self.keepalive_at = Instant::now() + self.options.keepalive;
        if let Some(sink) = self.sink.as_mut() {
            let sent = timeout(
                self.options.attempt_timeout,
                sink.send(ClientFrame::KeepAlive),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                self.disconnect();
            }
        }
    }

    /// The last handle was dropped: end the session now, so what it holds is
    /// released at once rather than when it expires.
    async fn close_session(&mut self) {
        let (reply, _) = oneshot::channel();
        self.submit_internal(
            CONCOORD_CLOSE,
            vec![args::EMPTY_ARRAY],
            reply,
            CLOSE_TIMEOUT,
        )
        .await;
    }

    /// Sends a call of the client's own (close, cancel) whose reply nobody awaits.
    async fn submit_internal(
        &mut self,
        method: &str,
        args: Vec<u8>,
        reply: oneshot::Sender<Reply>,
        within: Duration,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.inflight.insert(
            seq,
            InFlight {
                method: method.to_string(),
                args,
                reply,
                deadline: Some(Instant::now() + within),
                blocked: false,
                cancel_at: None,
                sent_at: None,
                retry_at: None,
                busy: 0,
                sends: 0,
            },
        );
        self.send_many(&[seq]).await;
    }

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let silence = self
            .inflight
            .values()
            .any(|f| f.blocked)
            .then(|| self.last_frame + self.silence_limit());
        self.inflight
            .values()
            .flat_map(|f| {
                [
                    f.deadline,
                    f.sent_at
                        .filter(|_| !f.blocked)
                        .map(|t| t + self.options.attempt_timeout),
                    f.retry_at,
                    f.cancel_at,
                ]
            })
            .chain([silence])
            .flatten()
            .min()
            .unwrap_or(far)
    }

    /// The highest sequence number up to which every reply was received.
    fn acked(&self) -> u64 {
        self.inflight
            .keys()
            .next()
            .map_or(self.next_seq - 1, |s| s - 1)
    }

    /// Notes that call `seq` is answered (it leaves the in-flight set).
    fn note_done(&mut self, seq: u64) {
        let (mut lo, mut hi) = (seq, seq);
        if let Some((&s, &e)) = self.done.range(..=seq).next_back()
            && e.saturating_add(1) >= seq
        {
            self.done.remove(&s);
            lo = s;
            hi = hi.max(e);
        }
        if let Some(&e) = self.done.get(&seq.saturating_add(1)) {
            self.done.remove(&seq.saturating_add(1));
            hi = hi.max(e);
        }
        self.done.insert(lo, hi);
        let acked = self.acked();
        self.done.retain(|_, end| *end > acked);
    }

    /// The answered calls above `acked()` to report, lowest first.
    fn done_ranges(&self) -> Vec<(u64, u64)> {
        let acked = self.acked();
        self.done
            .iter()
            .map(|(s, e)| ((*s).max(acked + 1), *e))
            .take(DONE_RANGES_SENT_MAX)
            .collect()
    }

    /// In batched mode, collects more calls to travel with `first`, until
    /// none comes for `linger` or the batch is full.
    async fn gather(
        &mut self,
        first: Request,
        requests: &mut mpsc::Receiver<Request>,
    ) -> Vec<Request> {
        let mut batch = vec![first];
        let CallMode::Batched { max_calls, linger } = self.options.mode else {
            return batch;
        };
        // The batch closes when no call has come for `linger`: callers whose
        // replies arrived together call again together, within microseconds.
        // Tokio's timers tick in milliseconds, so the gap is timed by yielding
        // to the scheduler (letting those callers run) while watching the clock.
        let mut quiet_since = std::time::Instant::now();
        while batch.len() < max_calls {
            match requests.try_recv() {
                Ok(r) => {
                    batch.push(r);
                    quiet_since = std::time::Instant::now();
                }
                Err(_) if quiet_since.elapsed() >= linger => break,
                Err(_) => tokio::task::yield_now().await,
            }
        }
        batch
    }

    async fn submit(&mut self, batch: Vec<Request>) {
        let mut seqs = Vec::with_capacity(batch.len());
        for req in batch {
            let seq = self.next_seq;
            self.next_seq += 1;
            let now = Instant::now();
            self.inflight.insert(
                seq,
                InFlight {
                    method: req.method,
                    args: req.args,
                    reply: req.reply,
                    deadline: Some(now + self.options.call_timeout),
                    blocked: false,
                    cancel_at: req.wait.map(|w| now + w),
                    sent_at: None,
                    retry_at: None,
                    busy: 0,
                    sends: 0,
                },
            );
            seqs.push(seq);
        }
        self.send_many(&seqs).await;
    }

    /// Sends calls: a `Call` frame, or `Batch` frames for several, each
    /// within [`FRAME_CALLS_BYTES_MAX`] (however many calls are resent at
    /// once after a reconnection).
    async fn send_many(&mut self, seqs: &[u64]) {
        let acked = self.acked();
        let done = self.done_ranges();
        if self.sink.is_none() {
            return;
        }
        let now = Instant::now();
        let mut calls = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(flight) = self.inflight.get_mut(seq) {
                flight.sent_at = Some(now);
                flight.retry_at = None;
                flight.sends = flight.sends.saturating_add(1);
                calls.push(CallRequest {
                    seq: *seq,
                    acked,
                    method: flight.method.clone(),
                    args: flight.args.clone(),
                    done: done.clone(),
                });
            }
        }
        for mut frame_calls in frames_of(calls) {
            let frame = match frame_calls.len() {
                1 => ClientFrame::Call(frame_calls.remove(0)),
                _ => ClientFrame::Batch(frame_calls),
            };
            let Some(sink) = self.sink.as_mut() else {
                return;
            };
            let sent = timeout(self.options.attempt_timeout, sink.send(frame)).await;
            if !matches!(sent, Ok(Ok(()))) {
                debug!("connection lost while sending; will retry elsewhere");
                self.disconnect();
                return;
            }
        }
    }

    fn disconnect(&mut self) {
        self.sink = None;
        self.stream = None;
        self.current = None;
        self.leaderless_since = None;
        for f in self.inflight.values_mut() {
            f.sent_at = None;
        }
    }

    /// Tries the preferred address, then the others in turn. Returns an error
    /// only when a replica refused us (wrong token or version): retrying
    /// cannot help then.
    async fn reconnect(&mut self) -> Option<ClientError> {
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
                Ok(ClientWelcome {
                    ticket,
                    conn,
                    instance,
                    ..
                }) => {
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
                    let pending: Vec<u64> = self.inflight.keys().copied().collect();
                    self.send_many(&pending).await;
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

    async fn on_frame(&mut self, frame: Option<Result<ReplicaFrame, CodecError>>) {
        let frame = match frame {
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                debug!("bad frame from replica: {e}; reconnecting");
                self.disconnect();
                return;
            }
            None => {
                debug!("replica closed the connection; reconnecting");
                self.disconnect();
                return;
            }
        };
        self.last_frame = Instant::now();
        let (seq, outcome) = match frame {
            ReplicaFrame::Reply { seq, outcome } => {
                if !matches!(outcome, Err(CallError::NotLeader { leader: None })) {
                    self.leaderless_since = None;
                }
                (seq, outcome)
            }
            ReplicaFrame::View { members } => {
                self.follow_view(members);
                return;
            }
            ReplicaFrame::Blocked { seq } => {
                if let Some(f) = self.inflight.get_mut(&seq) {
                    f.blocked = true;
                    f.deadline = None;
                }
                return;
            }
            ReplicaFrame::Alive { leader } => {
                // Keep-alives must reach the leader, which decides expiry.
                match leader {
                    Some(leader) if self.current.as_ref() != Some(&leader) => {
                        self.follow_leader(leader);
                    }
                    Some(_) => self.leaderless_since = None,
                    None => {
                        self.no_leader_known();
                    }
                }
                return;
            }
            ReplicaFrame::Admin { .. } => return,
        };
        match outcome {
            Ok(bytes) => {
                let closed = self
                    .inflight
                    .get(&seq)
                    .is_some_and(|f| f.method == CONCOORD_CLOSE);
                self.complete(seq, Ok(bytes.into_vec()));
                if closed {
                    self.fail_session_ended("the client closed its session");
                    self.start_new_session();
                }
            }
            Err(CallError::NotLeader { leader }) => {
                if !self.inflight.contains_key(&seq) {
                    return;
                }
                match leader {
                    Some(addr) => self.follow_leader(addr),
                    // No leader yet (an election is running): try again soon.
                    None if !self.no_leader_known() => self.retry_soon(seq),
                    None => {}
                }
            }
            // Not a final answer: the replicas did not record the refusal, so
            // a copy of this call still on its way may run. Retry the same
            // call (same seq) until it gets one.
            Err(CallError::Busy | CallError::TooManyInFlight { .. }) => {
                self.retry_when_not_busy(seq)
            }
            Err(CallError::Application(value)) => {
                let method = self
                    .inflight
                    .get(&seq)
                    .map(|f| f.method.clone())
                    .unwrap_or_default();
                self.complete(seq, Err(ClientError::Application { method, value }));
            }
            Err(CallError::SessionExpired) => {
                // The replicas refused this copy. If it was the only one sent,
                // the call did not run; if an earlier copy went out, that one
                // may have run and its reply was lost (it then fails below
                // with the others as of unknown outcome). The others in
                // flight belonged to the ended session too; those already
                // sent may have run before it ended.
                let sent_once = self.inflight.get(&seq).is_some_and(|f| f.sends <= 1);
                if sent_once {
                    self.complete(seq, Err(ClientError::Call(CallError::SessionExpired)));
                }
                self.fail_session_ended("the session expired");
                self.start_new_session();
            }
            Err(other) => self.complete(seq, Err(ClientError::Call(other))),
        }
    }

    /// Reconnects to `leader`, named by a redirect or a keep-alive.
    fn follow_leader(&mut self, leader: String) {
        debug!(%leader, "following the leader");
        if !self.addrs.contains(&leader) {
            self.addrs.push(leader.clone());
        }
        self.preferred = Some(leader);
        self.disconnect();
    }

    /// The connected replica knows no leader. If that lasts (it is cut off
    /// from the others), tries another replica; returns whether it did.
    fn no_leader_known(&mut self) -> bool {
        let since = *self.leaderless_since.get_or_insert_with(Instant::now);
        let stuck = since.elapsed() >= self.options.attempt_timeout;
        if stuck {
            debug!("this replica knows no leader; trying the next one");
            self.disconnect();
        }
        stuck
    }

    /// Resends call `seq` after a short pause.
    fn retry_soon(&mut self, seq: u64) {
        if let Some(f) = self.inflight.get_mut(&seq) {
            f.retry_at = Some(Instant::now() + RETRY_PAUSE);
            f.sent_at = None;
        }
    }

    /// Resends call `seq` after the replica said it is busy: a pause that
    /// doubles with each `Busy` (50 ms to 1.6 s), so that an overloaded
    /// replica is not flooded with the same calls again.
    fn retry_when_not_busy(&mut self, seq: u64) {
        if let Some(f) = self.inflight.get_mut(&seq) {
            let pause = RETRY_PAUSE * 2u32.pow(f.busy.min(5));
            f.busy = f.busy.saturating_add(1);
            f.retry_at = Some(Instant::now() + pause);
            f.sent_at = None;
        }
    }

    /// Later calls go out in a new session, which the next connection asks
    /// for (the old session ended).
    fn start_new_session(&mut self) {
        self.ticket = None;
        self.next_seq = 1;
        self.done.clear();
        self.disconnect();
    }

    /// Tries the view's replicas first from now on, then the bootstrap
    /// addresses no longer in the view (in case the view was stale).
    fn follow_view(&mut self, members: Vec<String>) {
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

    fn complete(&mut self, seq: u64, reply: Reply) {
        if let Some(f) = self.inflight.remove(&seq) {
            self.note_done(seq);
            let _ = f.reply.send(reply);
        }
    }

    /// Fails every call in flight of a session that ended: a call never sent
    /// did not run; one sent may have run, and its reply is lost.
    fn fail_session_ended(&mut self, why: &str) {
        for (_, f) in std::mem::take(&mut self.inflight) {
            let err = if f.sends > 0 {
                ClientError::OutcomeUnknown {
                    method: f.method,
                    reason: format!("{why} before its reply arrived"),
                }
            } else {
                ClientError::Call(CallError::SessionExpired)
            };
            let _ = f.reply.send(Err(err));
        }
    }

    fn fail_all(&mut self, mut err: impl FnMut() -> ClientError) {
        for (_, f) in std::mem::take(&mut self.inflight) {
            let _ = f.reply.send(Err(err()));
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.deadline.is_some_and(|d| d <= now))
            .map(|(s, _)| *s)
            .collect();
        let tried = self.describe_failures();
        for seq in expired {
            if let Some(f) = self.inflight.remove(&seq) {
                // Never sent: no replica was reachable, and it did not run.
                let err = if f.sends == 0 {
                    ClientError::Unreachable {
                        after: self.options.call_timeout,
                        tried: tried.clone(),
                    }
                } else {
                    ClientError::Timeout {
                        method: f.method.clone(),
                        after: self.options.call_timeout,
                    }
                };
                let _ = f.reply.send(Err(err));
            }
        }
    }

    async fn on_timer(&mut self) {
        self.expire();
        let now = Instant::now();
        let attempt = self.options.attempt_timeout;
        let stalled = self.inflight.values().any(|f| {
            if f.blocked {
                self.last_frame + self.silence_limit() <= now
            } else {
                f.sent_at.is_some_and(|t| t + attempt <= now)
            }
        });
        if stalled {
            debug!("replica did not answer in time; trying the next one");
            self.disconnect();
            return;
        }
        let due: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.retry_at.is_some_and(|t| t <= now))
            .map(|(s, _)| *s)
            .collect();
        self.send_many(&due).await;
        self.cancel_due_waits(now).await;
    }

    /// Cancels the blocked calls whose wait is over. The call itself stays
    /// in flight: its reply is `WaitTimedOut`, or the grant if that came
    /// first.
    async fn cancel_due_waits(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, f)| f.cancel_at.is_some_and(|t| t <= now))
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            // The call keeps its deadline: none once it is blocked, since the
            // object answers it (a condition wait first takes its lock back).
            if let Some(f) = self.inflight.get_mut(&seq) {
                f.cancel_at = None;
            }
            let Ok(args) = concoord_object::args::encode(&(seq,)) else {
                continue;
            };
            let (reply, _) = oneshot::channel();
            self.submit_internal(CONCOORD_CANCEL, args, reply, self.options.call_timeout)
                .await;
        }
    }
}

/// Groups calls into frames of at most [`FRAME_CALLS_BYTES_MAX`] bytes of
/// method names and arguments (a call alone may reach the call limit).
fn frames_of(calls: Vec<CallRequest>) -> Vec<Vec<CallRequest>> {
    let bytes = |c: &CallRequest| c.method.len() + c.args.len() + 32;
    paxos_core::split_by_bytes(calls, bytes, FRAME_CALLS_BYTES_MAX)
}

/// How long a new client asks the other bootstrap replicas which instance
/// they belong to (those that do not answer by then are not waited for).
const INSTANCE_PROBE_LIMIT: Duration = Duration::from_secs(1);

/// Asks every other bootstrap replica which instance it belongs to: a client
/// whose list names replicas of two instances (one restarted without its
/// state founds a new, empty one) fails now, naming both, rather than read
/// and write whichever it happened to reach first.
async fn refuse_mixed_instances(
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

fn clone_refusal(e: &ClientError) -> ClientError {
    match e {
        ClientError::Refused(r) => ClientError::Refused(r.clone()),
        other => ClientError::Refused(other.to_string()),
    }
}

async fn next_frame(
    stream: &mut Option<SplitStream<ClientConnection>>,
) -> Option<Result<ReplicaFrame, CodecError>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(seq: u64, bytes: usize) -> CallRequest {
        CallRequest {
            seq,
            acked: 0,
            method: "put".into(),
            args: vec![0; bytes],
            done: Vec::new(),
        }
    }

    #[test]
    fn calls_resent_together_leave_in_frames_within_the_limit() {
        let big = 5 << 20;
        let calls: Vec<CallRequest> = (1..=7).map(|s| call(s, big)).collect();
        let frames = frames_of(calls);
        assert_eq!(frames.len(), 4, "two 5 MiB calls per frame at most");
        for frame in &frames {
            let bytes: usize = frame.iter().map(|c| c.args.len()).sum();
            assert!(bytes <= FRAME_CALLS_BYTES_MAX);
        }
        let seqs: Vec<u64> = frames.concat().iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "in order");
    }

    #[test]
    fn small_calls_share_one_frame() {
        let calls: Vec<CallRequest> = (1..=100).map(|s| call(s, 10)).collect();
        assert_eq!(frames_of(calls).len(), 1);
    }
}
