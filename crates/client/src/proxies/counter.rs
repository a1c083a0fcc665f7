//! Proxy for `concoord.object.counter.Counter`.

use crate::blocking;
use crate::client::Client;
use crate::errors::ClientError;
use concoord_object::CONCOORD_INIT;

/// The replicated Counter, called as if it were local.
///
/// ```no_run
/// # async fn demo() -> Result<(), concoord_client::ClientError> {
/// use concoord_client::proxies::Counter;
/// let c = Counter::connect("127.0.0.1:14000, 127.0.0.1:14001").await?;
/// c.increment().await?;
/// c.increment().await?;
/// assert_eq!(c.getvalue().await?, 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Counter {
    client: Client,
}

impl Counter {
    /// Connects to a Counter instance.
    pub async fn connect(bootstrap: &str) -> Result<Counter, ClientError> {
        Ok(Counter {
            client: Client::connect(bootstrap).await?,
        })
    }

    /// A proxy over an existing client.
    pub fn with_client(client: Client) -> Counter {
        Counter { client }
    }

    /// Adds one.
    pub async fn increment(&self) -> Result<(), ClientError> {
        self.client.call("increment", &()).await
    }

    /// Subtracts one.
    pub async fn decrement(&self) -> Result<(), ClientError> {
        self.client.call("decrement", &()).await
    }

    /// The current value (a linearizable read).
    pub async fn getvalue(&self) -> Result<i64, ClientError> {
        self.client.call("getvalue", &()).await
    }

    /// Re-initialises the counter on every replica (the seed's `__concoordinit__`).
    pub async fn concoord_init(&self) -> Result<(), ClientError> {
        self.client.call(CONCOORD_INIT, &()).await
    }
}

/// The blocking twin of [`Counter`].
#[derive(Clone)]
pub struct BlockingCounter {
    client: blocking::Client,
}

impl BlockingCounter {
    /// Connects to a Counter instance.
    pub fn connect(bootstrap: &str) -> Result<BlockingCounter, ClientError> {
        Ok(BlockingCounter {
            client: blocking::Client::connect(bootstrap)?,
        })
    }

    /// Adds one.
    pub fn increment(&self) -> Result<(), ClientError> {
        self.client.call("increment", &())
    }

    /// Subtracts one.
    pub fn decrement(&self) -> Result<(), ClientError> {
        self.client.call("decrement", &())
    }

    /// The current value.
    pub fn getvalue(&self) -> Result<i64, ClientError> {
        self.client.call("getvalue", &())
    }

    /// Re-initialises the counter on every replica.
    pub fn concoord_init(&self) -> Result<(), ClientError> {
        self.client.call(CONCOORD_INIT, &())
    }
}
