//! The async client's public face: [`Client`] handles, cheap to clone, hand
//! their calls to one background task per client ([`crate::actor`]), which
//! owns the connection, keeps the calls in flight, follows the leader and
//! retries; each handle just waits for its reply.
//!
//! The session is the replicas' to give: the first connection gets a ticket
//! (id and secret), and every later connection — after a lost connection, at
//! another replica after a failover — presents it to resume the same
//! session. No other connection can speak for it.

use crate::actor::{Actor, refuse_mixed_instances};
use crate::discovery::resolve_bootstrap;
use crate::errors::{ClientError, MethodError};
use crate::in_flight::Reply;
use concoord_object::CONCOORD_CLOSE;
use concoord_transport::tls_config::ClientTls;
use concoord_transport::wire::{CALL_BYTES_MAX, CallError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Calls queued to the background task before `call` waits.
const REQUEST_QUEUE_MAX: usize = 4096;

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

/// A call on its way from a [`Client`] handle to the background task.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) args: Vec<u8>,
    pub(crate) reply: oneshot::Sender<Reply>,
    /// For a call that blocks: how long to wait before cancelling it
    /// (`None`: wait until woken).
    pub(crate) wait: Option<Duration>,
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
        let mut actor = Actor::new(addrs, domain, id.clone(), options.clone());
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
        if let Some((instance, first)) = actor.instance().cloned() {
            refuse_mixed_instances(actor.addrs(), &first, instance, &options).await?;
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
