//! The simulated clients: real `concoord_client::Client`s (with their
//! retries, keep-alives and blocking calls) driven by a seeded workload, and
//! what they record for the checks.

use crate::objects::KEYS;
use crate::run::{PORT, REPLICAS};
use concoord_client::{Client, ClientOptions, MethodError};
use concoord_dsync::lock::LockError;
use paxos_sim::history::{History, OpKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What clients and faults record, shared by the hosts.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) trace: Vec<String>,
    pub(crate) history: History,
    /// The final reads: (counter, value, invoked at ms).
    pub(crate) final_reads: Vec<(u8, i64, u64)>,
    /// Lock grants: (client, token, received at ms).
    pub(crate) grants: Vec<(usize, u64, u64)>,
    /// Holds a successful release confirmed: (client, token, from ms, to ms).
    pub(crate) holds: Vec<(usize, u64, u64, u64)>,
    pub(crate) finished: Vec<bool>,
    /// Replicas in the run.
    pub(crate) replicas: usize,
}

pub(crate) type SharedRef = Arc<Mutex<Shared>>;

pub(crate) fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn now_ms() -> u64 {
    turmoil::sim_elapsed().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The addresses of the run's `replicas` replicas.
fn bootstrap(replicas: usize) -> String {
    REPLICAS[..replicas]
        .iter()
        .map(|r| format!("{r}:{PORT}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn client_options() -> ClientOptions {
    ClientOptions {
        call_timeout: Duration::from_secs(6),
        attempt_timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(500),
        keepalive: Duration::from_millis(500),
        ..ClientOptions::default()
    }
}

/// Connects, retrying until `until` (ms of simulated time).
async fn connect(until: u64, replicas: usize) -> Option<Client> {
    loop {
        if let Ok(c) = Client::connect_with(&bootstrap(replicas), client_options()).await {
            return Some(c);
        }
        if now_ms() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The counter clients: random increments and reads until the faults stop,
/// then a final read of every counter.
pub(crate) async fn counter_client(me: usize, seed: u64, chaos_end: u64, shared: SharedRef) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0xC11E_0000 + me as u64));
    let replicas = lock(&shared).replicas;
    let Some(client) = connect(chaos_end, replicas).await else {
        lock(&shared).finished[me] = true;
        return;
    };
    let mut seq = 0;
    while now_ms() < chaos_end {
        let key = rng.random_range(0..KEYS);
        let kind = if rng.random_bool(0.6) {
            OpKind::Increment { key }
        } else {
            OpKind::Read { key }
        };
        seq += 1;
        let index = lock(&shared).history.invoke(me as u64, seq, kind, now_ms());
        let result: Result<i64, _> = match kind {
            OpKind::Increment { key } => client.call("increment", &(key,)).await,
            OpKind::Read { key } => client.call("read", &(key,)).await,
        };
        {
            let mut s = lock(&shared);
            let at = now_ms();
            match result {
                Ok(v) => {
                    s.history.complete(index, at, v);
                    s.trace.push(format!("{at} c{me} {kind:?} -> {v}"));
                }
                Err(e) => s.trace.push(format!("{at} c{me} {kind:?} failed: {e}")),
            }
        }
        let pause = rng.random_range(0..40);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    // Faults have stopped: every counter must read back what was acknowledged.
    for key in 0..KEYS {
        loop {
            seq += 1;
            let kind = OpKind::Read { key };
            let invoked = now_ms();
            let index = lock(&shared).history.invoke(me as u64, seq, kind, invoked);
            let result: Result<i64, _> = client.call("read", &(key,)).await;
            if let Ok(v) = result {
                let mut s = lock(&shared);
                let at = now_ms();
                s.history.complete(index, at, v);
                s.final_reads.push((key, v, invoked));
                s.trace.push(format!("{at} c{me} final read {key} -> {v}"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    client.close().await;
    lock(&shared).finished[me] = true;
}

/// Releases the lock, retrying until the answer is definite: `true` if the
/// lock was still ours, `false` if it was not held by us.
async fn release(client: &Client) -> bool {
    loop {
        match client
            .call_fallible::<_, (), LockError>("release", &())
            .await
        {
            Ok(()) => return true,
            Err(MethodError::Returned(_)) => return false,
            Err(MethodError::Failed(_)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Rounds each lock client plays once the faults have stopped: every one of
/// their blocked calls must be woken.
const CALM_ROUNDS: usize = 8;

/// The lock clients: acquire (blocking), hold a while, release, until the
/// faults stop and then [`CALM_ROUNDS`] more times. A hold is confirmed
/// only if the release succeeds (the lock was still ours).
pub(crate) async fn lock_client(me: usize, seed: u64, chaos_end: u64, shared: SharedRef) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x10C4_0000 + me as u64));
    let replicas = lock(&shared).replicas;
    let Some(client) = connect(chaos_end, replicas).await else {
        lock(&shared).finished[me] = true;
        return;
    };
    let mut calm_rounds = 0;
    while calm_rounds < CALM_ROUNDS {
        if now_ms() >= chaos_end {
            calm_rounds += 1;
        }
        let asked = now_ms();
        let granted: Result<u64, _> = client.call("acquire", &()).await;
        let at = now_ms();
        match granted {
            Ok(token) => {
                {
                    let mut s = lock(&shared);
                    s.grants.push((me, token, at));
                    s.trace
                        .push(format!("{at} c{me} acquire (asked {asked}) -> {token}"));
                }
                let hold = rng.random_range(1..60);
                tokio::time::sleep(Duration::from_millis(hold)).await;
                let from = at;
                let to = now_ms();
                let released = release(&client).await;
                let mut s = lock(&shared);
                let done = now_ms();
                s.trace
                    .push(format!("{done} c{me} release {token} -> {released}"));
                if released {
                    s.holds.push((me, token, from, to));
                }
            }
            Err(e) => {
                lock(&shared)
                    .trace
                    .push(format!("{at} c{me} acquire failed: {e}"));
                // It may have been granted: let it go before asking again.
                let released = release(&client).await;
                let done = now_ms();
                lock(&shared)
                    .trace
                    .push(format!("{done} c{me} release after failure -> {released}"));
            }
        }
        let pause = rng.random_range(0..30);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    client.close().await;
    lock(&shared).finished[me] = true;
}
