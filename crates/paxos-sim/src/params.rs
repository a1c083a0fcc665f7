//! Everything a run draws from its seed before it starts: network fault rates
//! (including which message kinds take the heavy tail), core tuning, and how
//! often faults strike. One seed, one run, bit for bit.

use crate::SimConfig;
use crate::network::LinkFaults;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Core tuning (the same `window` for the whole cluster).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CoreParams {
    pub(crate) window: u64,
    pub(crate) inflight: u64,
    pub(crate) batch: usize,
    pub(crate) soft_max: usize,
    pub(crate) catchup: usize,
    pub(crate) election: u32,
    pub(crate) snapshot_chunk: usize,
    pub(crate) retain: u64,
    /// `max_message_bytes`: small in some runs, so that accepts, promises
    /// and catch-up replies travel in parts (one sim command's entry is 25
    /// bytes, a batch of four 88).
    pub(crate) message_bytes: usize,
}

/// Message kinds that may be singled out for the heavy tail: the ones whose
/// late arrival, after leadership moved, a protocol must survive (names as
/// `Message::kind` gives them).
const TAIL_KINDS: [&str; 8] = [
    "catchup_request",
    "catchup_reply",
    "prepare",
    "promise",
    "accept",
    "accepted",
    "heartbeat",
    "snapshot_chunk",
];

/// What the seed decided.
#[derive(Clone, Debug)]
pub(crate) struct RunParams {
    pub(crate) faults: LinkFaults,
    pub(crate) core: CoreParams,
    /// Probability per tick that a fault strikes.
    pub(crate) fault_rate: f64,
    /// Per client: the fraction of its operations that are reads.
    pub(crate) read_ratios: Vec<f64>,
}

impl RunParams {
    pub(crate) fn draw(rng: &mut ChaCha8Rng, cfg: &SimConfig) -> RunParams {
        let mut tail_by_kind = BTreeMap::new();
        for _ in 0..rng.random_range(0..=2) {
            let kind = TAIL_KINDS[rng.random_range(0..TAIL_KINDS.len())];
            tail_by_kind.insert(kind, rng.random_range(0.05..0.4));
        }
        let faults = LinkFaults {
            loss: rng.random_range(0.0..0.15),
            duplicate: rng.random_range(0.0..0.05),
            delay_min: 1,
            delay_max: rng.random_range(1..=12),
            tail: [0.0, 0.001, 0.005, 0.02][rng.random_range(0..4)],
            tail_by_kind,
            tail_max: rng.random_range(100..=1_500),
            tail_release_ticks: [20, 100, 400][rng.random_range(0..3)],
        };
        // Drawn from a stream of its own, so that adding it left every
        // other draw of a seed (and the seeds that catch each injected bug)
        // as it was.
        let mut message_rng = rng.clone();
        message_rng.set_stream(1);
        let window = [2u64, 4, 8, 16, 64][rng.random_range(0..5)];
        let core = CoreParams {
            window,
            inflight: rng.random_range(1..=window),
            batch: [1usize, 4, 64][rng.random_range(0..3)],
            soft_max: [20usize, 100, 1_000][rng.random_range(0..3)],
            catchup: [1usize, 8, 64][rng.random_range(0..3)],
            election: rng.random_range(30..=80),
            snapshot_chunk: [16usize, 128, 1 << 20][rng.random_range(0..3)],
            retain: [0u64, 5, 50][rng.random_range(0..3)],
            message_bytes: [40usize, 200, 4 << 20][message_rng.random_range(0..3)],
        };
        let fault_rate = if cfg.aggressive {
            1.0 / rng.random_range(20.0..80.0)
        } else {
            1.0 / rng.random_range(80.0..300.0)
        };
        let read_ratios = (0..cfg.clients)
            .map(|_| [0.2, 0.4, 0.95][rng.random_range(0..3)])
            .collect();
        RunParams {
            faults,
            core,
            fault_rate,
            read_ratios,
        }
    }
}
