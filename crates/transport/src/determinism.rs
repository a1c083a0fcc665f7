//! The randomness, wall clock and hashing the replica and the client use, in
//! one place, so a simulation can make them deterministic.
//!
//! Without the `sim` feature these are `rand::random`, `SystemTime` and
//! `RandomState`. With it, a thread that called [`seed_thread`] draws from a
//! seeded generator and hashes with fixed keys, and inside a `turmoil`
//! simulation the wall clock is the simulation's and tasks are spawned on
//! the host's `LocalSet` (see [`spawn`]). Every other thread (a real
//! replica in a binary built with the feature on) is unaffected.

use rand::distr::{Distribution, StandardUniform};

/// A random value: from the thread's seeded generator in a simulation, from
/// the operating system's otherwise.
pub fn random<T>() -> T
where
    StandardUniform: Distribution<T>,
{
    #[cfg(feature = "sim")]
    if let Some(value) = sim::draw() {
        return value;
    }
    rand::random()
}

/// Milliseconds since the Unix epoch (the simulation's clock in a simulation).
pub fn unix_time_ms() -> u64 {
    #[cfg(feature = "sim")]
    if let Some(since) = turmoil::since_epoch() {
        return u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Spawns a task: `tokio::spawn`, or inside a `turmoil` simulation a task of
/// the host's `LocalSet`, whose tasks are dropped in spawn order when the
/// host crashes (the runtime's own task list is sharded by task id, a
/// process-wide counter, so its drop order differs from run to run).
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[cfg(feature = "sim")]
    if turmoil::in_simulation() {
        return tokio::task::spawn_local(future);
    }
    tokio::spawn(future)
}

/// Runs the blocking `work` (a disk sync) off the calling task: on tokio's
/// blocking pool, or inside a `turmoil` simulation as a task of the host
/// that first waits a seeded 0–2 ms of simulated time, so that a crash can
/// fall while the work is under way (the task is dropped with the host, and
/// what it would have synced is lost as at a power loss).
pub fn spawn_blocking<F, T>(work: F) -> tokio::task::JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    #[cfg(feature = "sim")]
    if turmoil::in_simulation() {
        let delay = std::time::Duration::from_micros(random::<u64>() % 2_000);
        return tokio::task::spawn_local(async move {
            tokio::time::sleep(delay).await;
            work()
        });
    }
    tokio::task::spawn_blocking(work)
}

/// Whether this runs inside a seeded simulation, where blocking work
/// handed to [`spawn_blocking`] runs on this very thread later, so waiting
/// for it here would never end.
pub fn in_simulation() -> bool {
    #[cfg(feature = "sim")]
    if turmoil::in_simulation() {
        return true;
    }
    false
}

/// Whether blocking work that is short and has nobody else waiting may run
/// on the calling thread instead of [`spawn_blocking`]: always outside a
/// simulation; inside one, a seeded coin, so runs see both schedules.
pub fn may_run_inline() -> bool {
    #[cfg(feature = "sim")]
    if turmoil::in_simulation() {
        return random::<bool>();
    }
    true
}

/// Whether the tasks this one spawned run only when it waits: the runtime
/// is single-threaded (`concoord replica --threads 1`). Work done on its
/// thread then delays what it handed to those tasks (a message to send),
/// not just itself. Inside a simulation (one thread, standing for either
/// runtime), a seeded coin, so runs see both.
pub fn tasks_share_this_thread() -> bool {
    #[cfg(feature = "sim")]
    if turmoil::in_simulation() {
        return random::<bool>();
    }
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}

/// A hash map whose iteration order a seeded simulation can replay.
pub type HashMap<K, V> = std::collections::HashMap<K, V, HashState>;

/// How [`HashMap`] hashes: random keys, or fixed keys in a seeded simulation.
#[cfg(not(feature = "sim"))]
pub type HashState = std::collections::hash_map::RandomState;

#[cfg(feature = "sim")]
pub use sim::{HashState, seed_thread};

#[cfg(feature = "sim")]
mod sim {
    use rand::distr::{Distribution, StandardUniform};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::cell::RefCell;
    use std::collections::hash_map::{DefaultHasher, RandomState};
    use std::hash::BuildHasher;

    thread_local! {
        static RNG: RefCell<Option<ChaCha8Rng>> = const { RefCell::new(None) };
    }

    /// Makes this thread deterministic from `seed` (`None`: back to the
    /// operating system's randomness).
    pub fn seed_thread(seed: Option<u64>) {
        RNG.with(|r| *r.borrow_mut() = seed.map(ChaCha8Rng::seed_from_u64));
    }

    pub(super) fn draw<T>() -> Option<T>
    where
        StandardUniform: Distribution<T>,
    {
        RNG.with(|r| r.borrow_mut().as_mut().map(|rng| rng.random()))
    }

    fn seeded() -> bool {
        RNG.with(|r| r.borrow().is_some())
    }

    /// Random keys, or fixed keys on a seeded thread.
    #[derive(Clone, Debug)]
    pub enum HashState {
        /// Keys from the operating system (hash flooding resistant).
        Random(RandomState),
        /// Fixed keys: the same order on every run of a seed.
        Fixed,
    }

    impl Default for HashState {
        fn default() -> Self {
            if seeded() {
                HashState::Fixed
            } else {
                HashState::Random(RandomState::new())
            }
        }
    }

    impl BuildHasher for HashState {
        type Hasher = DefaultHasher;

        fn build_hasher(&self) -> DefaultHasher {
            match self {
                HashState::Random(state) => state.build_hasher(),
                HashState::Fixed => DefaultHasher::new(),
            }
        }
    }
}
