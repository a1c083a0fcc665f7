//! A blocking twin of [`Client`](crate::Client) for code without an async
//! runtime. It runs its own small runtime; do not use it from inside async code.

use crate::client::{Client as AsyncClient, ClientOptions};
use crate::errors::ClientError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tokio::runtime::Runtime;

/// A blocking connection to a ConCoord instance.
#[derive(Clone)]
pub struct Client {
    runtime: Arc<Runtime>,
    inner: AsyncClient,
}

impl Client {
    /// Connects to the instance given by a bootstrap string.
    pub fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        Client::connect_with(bootstrap, ClientOptions::default())
    }

    /// Connects with explicit options.
    pub fn connect_with(bootstrap: &str, options: ClientOptions) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ClientError::Refused(format!("cannot start a runtime: {e}")))?;
        let inner = runtime.block_on(AsyncClient::connect_with(bootstrap, options))?;
        Ok(Client {
            runtime: Arc::new(runtime),
            inner,
        })
    }

    /// Calls a method; see [`crate::Client::call`].
    pub fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<R, ClientError> {
        self.runtime.block_on(self.inner.call(method, args))
    }

    /// Calls a method returning `Result<T, E>`; see [`crate::Client::call_fallible`].
    pub fn call_fallible<A: Serialize, T: DeserializeOwned, E: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
    ) -> Result<T, crate::MethodError<E>> {
        self.runtime
            .block_on(self.inner.call_fallible(method, args))
    }

    /// Calls a method that may block, giving up after `wait`; see
    /// [`crate::Client::call_waiting`].
    pub fn call_waiting<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        args: &A,
        wait: std::time::Duration,
    ) -> Result<Option<R>, ClientError> {
        self.runtime
            .block_on(self.inner.call_waiting(method, args, wait))
    }

    /// Calls a method with raw msgpack arguments.
    pub fn call_raw(&self, method: &str, args: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.runtime.block_on(self.inner.call_raw(method, args))
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &AsyncClient {
        &self.inner
    }
}
