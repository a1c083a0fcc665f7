//! One seeded run: the hosts, the warm-up, the chaos phase, the calm phase.

use crate::checks::check;
use crate::clients::{Shared, SharedRef, counter_client, lock, lock_client};
use crate::faults::Faults;
use crate::objects::Counters;
use concoord_dsync::Lock;
use concoord_object::ReplicatedObject;
use concoord_replica::bugs::ReplicaBug;
use concoord_replica::storage::Disk;
use concoord_replica::storage::fault_disk::FaultDisk;
use concoord_replica::{PeerSecretSource, ReplicaOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

pub(crate) const REPLICAS: [&str; 3] = ["r1", "r2", "r3"];
pub(crate) const PORT: u16 = 14000;
/// One simulation step.
const STEP: Duration = Duration::from_millis(1);
/// Faults start once every replica has joined.
const WARM_UP: Duration = Duration::from_secs(4);

/// What the clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Increments and reads of `Counters`.
    Counter,
    /// Acquire, hold, release of a dsync `Lock`.
    Lock,
}

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Draws everything.
    pub seed: u64,
    /// What the clients do.
    pub scenario: Scenario,
    /// A bug to switch on (needs the `bug-injection` feature).
    pub bug: Option<ReplicaBug>,
    /// How long faults are injected (simulated time).
    pub chaos: Duration,
    /// How long after the faults stop every call must be answered.
    pub settle: Duration,
    /// Client hosts.
    pub clients: usize,
    /// Replicas (1 to 3): a lone replica has no peer whose vote covers
    /// for its own, so what it acknowledges must be on its disk.
    pub replicas: usize,
}

impl RunConfig {
    /// The default run of `scenario` for `seed`.
    pub fn new(seed: u64, scenario: Scenario) -> RunConfig {
        RunConfig {
            seed,
            scenario,
            bug: None,
            chaos: Duration::from_secs(12),
            settle: Duration::from_secs(30),
            clients: 3,
            replicas: REPLICAS.len(),
        }
    }
}

/// What a run saw.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Every property that failed, named.
    pub violations: Vec<String>,
    /// A hash of everything observable (faults, calls, replies, times): the
    /// same for every run of a seed.
    pub trace_hash: u64,
    /// Calls made.
    pub calls: usize,
    /// Calls answered.
    pub answered: usize,
    /// Replica crashes (each with a power loss).
    pub crashes: u32,
    /// Partitions and held links.
    pub partitions: u32,
    /// Simulated time the run took.
    pub sim_time: Duration,
    /// What happened, one line per fault and call (times in ms).
    pub trace: Vec<String>,
}

fn replica_options(i: usize) -> ReplicaOptions {
    ReplicaOptions {
        addr: REPLICAS[i].to_string(),
        port: PORT,
        bootstrap: if i == 0 {
            Vec::new()
        } else {
            vec![format!("{}:{PORT}", REPLICAS[0])]
        },
        token: None,
        peer_secret: PeerSecretSource::Open,
        tick: Duration::from_millis(10),
        heartbeat_ticks: 5,
        election_ticks: 30,
        data_dir: Some(PathBuf::from("/data")),
        repair: false,
        // Every run founds a fresh instance on purpose.
        new_instance: true,
        snapshot_every: 64,
        // A replica down for a while must come back as a member.
        failure_detection: None,
        session_ttl: Duration::from_secs(3),
        ..ReplicaOptions::default()
    }
}

fn add_replica<O: ReplicatedObject>(sim: &mut turmoil::Sim<'_>, i: usize, disk: FaultDisk) {
    sim.host(REPLICAS[i], move || {
        let disk: Arc<dyn Disk> = Arc::new(disk.clone());
        async move {
            concoord_replica::run_on::<O>(replica_options(i), Some(disk))
                .await
                .map_err(|e| e.into())
        }
    });
}

/// Runs one seed and checks it.
pub fn run(cfg: &RunConfig) -> Report {
    concoord_transport::determinism::seed_thread(Some(cfg.seed));
    #[cfg(feature = "bug-injection")]
    concoord_replica::bugs::inject(cfg.bug);
    let report = run_seeded(cfg);
    #[cfg(feature = "bug-injection")]
    concoord_replica::bugs::inject(None);
    concoord_transport::determinism::seed_thread(None);
    report
}

fn run_seeded(cfg: &RunConfig) -> Report {
    let mut report = Report {
        seed: cfg.seed,
        ..Report::default()
    };
    #[cfg(not(feature = "bug-injection"))]
    if let Some(bug) = cfg.bug {
        report
            .violations
            .push(format!("{bug:?} needs the bug-injection feature"));
        return report;
    }
    let mut seeds = ChaCha8Rng::seed_from_u64(cfg.seed);
    let max_latency = seeds.random_range(2..25);
    let total = WARM_UP + cfg.chaos + cfg.settle;
    let mut sim = turmoil::Builder::new()
        .rng_seed(seeds.random())
        .epoch(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        .tick_duration(STEP)
        .simulation_duration(total + Duration::from_secs(5))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(max_latency))
        .tcp_capacity(1 << 16)
        .build();
    let replicas = cfg.replicas.clamp(1, REPLICAS.len());
    let disks: Vec<FaultDisk> = (0..replicas).map(|_| FaultDisk::new()).collect();
    for (i, disk) in disks.iter().enumerate() {
        match cfg.scenario {
            Scenario::Counter => add_replica::<Counters>(&mut sim, i, disk.clone()),
            Scenario::Lock => add_replica::<Lock>(&mut sim, i, disk.clone()),
        }
    }
    let shared: SharedRef = Arc::new(Mutex::new(Shared {
        finished: vec![false; cfg.clients],
        replicas,
        ..Shared::default()
    }));
    let chaos_end = u64::try_from((WARM_UP + cfg.chaos).as_millis()).unwrap_or(u64::MAX);
    for me in 0..cfg.clients {
        let shared = shared.clone();
        let seed = cfg.seed;
        let scenario = cfg.scenario;
        sim.client(format!("c{me}"), async move {
            // Clients start once the instance has formed.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            match scenario {
                Scenario::Counter => counter_client(me, seed, chaos_end, shared).await,
                Scenario::Lock => lock_client(me, seed, chaos_end, shared).await,
            }
            Ok(())
        });
    }
    let mut faults = Faults::new(cfg.seed, disks);
    let warm_up = u64::try_from(WARM_UP.as_millis()).unwrap_or(0);
    let end = u64::try_from(total.as_millis()).unwrap_or(u64::MAX);
    let mut now;
    loop {
        now = u64::try_from(sim.elapsed().as_millis()).unwrap_or(u64::MAX);
        if now >= end {
            break;
        }
        let chaos = now >= warm_up && now < chaos_end;
        {
            let mut s = lock(&shared);
            faults.step(&mut sim, now, chaos, &mut s.trace);
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                report.violations.push(format!(
                    "replicas keep running: a host stopped at {now} ms: {e}"
                ));
                break;
            }
        }
    }
    report.crashes = faults.crashes;
    report.partitions = faults.partitions;
    report.sim_time = Duration::from_millis(now);
    let s = lock(&shared);
    check(cfg, &s, &mut report);
    let mut hasher = DefaultHasher::new();
    s.trace.hash(&mut hasher);
    format!("{:?}", s.history.ops()).hash(&mut hasher);
    now.hash(&mut hasher);
    report.trace_hash = hasher.finish();
    report.trace = s.trace.clone();
    report
}
