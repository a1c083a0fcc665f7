//! A blocking twin of [`Client`](crate::Client) for code without an async
//! runtime. It runs its calls on a small runtime of its own and waits for
//! them on the calling thread, so it works from any thread, even one that
//! runs async code (where tokio's `block_on` would panic with "Cannot start
//! a runtime from within a runtime"). Inside async code, prefer the async
//! proxy: waiting here blocks the executor's thread for the whole call.

use crate::client::{Client as AsyncClient, ClientOptions, decode_reply, fallible};
use crate::errors::ClientError;
use concoord_transport::wire::CallError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// A blocking connection to a ConCoord instance.
#[derive(Clone)]
pub struct Client {
    runtime: Arc<OwnRuntime>,
    inner: AsyncClient,
}

/// The client's runtime. Dropped without waiting for its tasks, so the last
/// handle may go away anywhere, inside async code too.
struct OwnRuntime(Option<Runtime>);

impl OwnRuntime {
    fn start() -> Result<OwnRuntime, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("concoord-blocking-client")
            .enable_all()
            .build()
            .map_err(|e| ClientError::Refused(format!("cannot start a runtime: {e}")))?;
        Ok(OwnRuntime(Some(runtime)))
    }

    /// Runs `work` on this runtime and waits for it on the calling thread.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, ClientError>> + Send + 'static,
    ) -> Result<T, ClientError> {
        let Some(runtime) = &self.0 else {
            return Err(ClientError::Closed);
        };
        let (done, result) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = done.send(work.await);
        });
        result.recv().unwrap_or(Err(ClientError::Closed))
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn encode_args<A: Serialize>(method: &str, args: &A) -> Result<Vec<u8>, ClientError> {
    concoord_object::args::encode(args).map_err(|e| ClientError::Decode {
        method: method.to_string(),
        detail: e.to_string(),
    })
}

impl Client {
    /// Connects to the instance given by a bootstrap string.
    pub fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        Client::connect_with(bootstrap, ClientOptions::default())
    }

    /// Connects with explicit options.
    pub fn connect_with(bootstrap: &str, options: ClientOptions) -> Result<Client, ClientError> {
        let runtime = OwnRuntime::start()?;
        let bootstrap = bootstrap.to_string();
        let inner =
            runtime.run(async move { AsyncClient::connect_with(&bootstrap, options).await })?;
        Ok(Client {
            runtime: Arc::new(runtime),
            inner,
        })
    }

    /// Sends one call and waits for its raw reply.
    fn call_bytes(
        &self,
        method: &str,
        args: Vec<u8>,
        wait: Option<Duration>,
    ) -> Result<Vec<u8>, ClientError> {
        let inner = self.inner.clone();
        let method = method.to_string();
        self.runtime
            .run(async move { inner.call_raw_waiting(&method, args, wait).await })
    }

    /// Calls a method; see [`crate::Client::call`].
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, ClientError> {
        let bytes = self.call_bytes(method, encode_args(method, args)?, None)?;
        decode_reply(method, &bytes)
    }

    /// Calls a method returning `Result<T, E>`; see [`crate::Client::call_fallible`].
    pub fn call_fallible<A: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<T, crate::MethodError<E>> {
        fallible(method, self.call(method, args))
    }

    /// Calls a method that may block, giving up after `wait`; see
    /// [`crate::Client::call_waiting`].
    pub fn call_waiting<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        wait: Duration,
    ) -> Result<Option<R>, ClientError> {
        match self.call_bytes(method, encode_args(method, args)?, Some(wait)) {
            Ok(bytes) => decode_reply(method, &bytes).map(Some),
            Err(ClientError::Call(CallError::WaitTimedOut)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Calls a method with raw msgpack arguments.
    pub fn call_raw(&self, method: &str, args: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.call_bytes(method, args, None)
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &AsyncClient {
        &self.inner
    }
}
