//! The seeded fault schedule: crashes with power loss and restarts,
//! partitions and held links (delayed messages), all healed when the chaos
//! phase ends.

use crate::run::REPLICAS;
use concoord_replica::storage::fault_disk::{FaultDisk, PowerLoss};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The seeded fault schedule over the replicas and clients.
pub(crate) struct Faults {
    rng: ChaCha8Rng,
    disks: Vec<FaultDisk>,
    /// When each crashed replica restarts (ms).
    down_until: Vec<Option<u64>>,
    /// Cut links and when they heal: (a, b, hold instead of drop, until ms).
    cuts: Vec<(String, String, bool, u64)>,
    crash_per_ms: f64,
    cut_per_ms: f64,
    pub(crate) crashes: u32,
    pub(crate) partitions: u32,
}

impl Faults {
    pub(crate) fn new(seed: u64, disks: Vec<FaultDisk>) -> Faults {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xFA17_5EED);
        let crash_per_ms = rng.random_range(1.0..4.0) / 1000.0;
        let cut_per_ms = rng.random_range(0.5..3.0) / 1000.0;
        Faults {
            rng,
            down_until: vec![None; disks.len()],
            disks,
            cuts: Vec::new(),
            crash_per_ms,
            cut_per_ms,
            crashes: 0,
            partitions: 0,
        }
    }

    pub(crate) fn step(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        now: u64,
        chaos: bool,
        trace: &mut Vec<String>,
    ) {
        for (down, host) in self.down_until.iter_mut().zip(REPLICAS) {
            if down.is_some_and(|t| now >= t || !chaos) {
                *down = None;
                sim.bounce(host);
                trace.push(format!("{now} restart {host}"));
            }
        }
        let mut healed = Vec::new();
        self.cuts.retain(|(a, b, held, until)| {
            let heal = now >= *until || !chaos;
            if heal {
                healed.push((a.clone(), b.clone(), *held));
            }
            !heal
        });
        for (a, b, held) in healed {
            if held {
                sim.release(a.as_str(), b.as_str());
            } else {
                sim.repair(a.as_str(), b.as_str());
            }
            trace.push(format!("{now} heal {a}-{b}"));
        }
        if !chaos {
            return;
        }
        let down = self.down_until.iter().filter(|d| d.is_some()).count();
        // Mostly one replica down at a time; now and then a second one (the
        // instance stalls until one is back).
        let rate = if down == 0 {
            self.crash_per_ms
        } else {
            self.crash_per_ms / 4.0
        };
        if down < self.disks.len().min(2) && self.rng.random_bool(rate) {
            let up: Vec<usize> = (0..self.disks.len())
                .filter(|&r| self.down_until[r].is_none())
                .collect();
            let i = up[self.rng.random_range(0..up.len())];
            sim.crash(REPLICAS[i]);
            let mode = if self.rng.random_bool(0.5) {
                PowerLoss::SyncedOnly
            } else {
                PowerLoss::SomeUnsynced
            };
            self.disks[i].power_loss(self.rng.random(), mode);
            let back = now + self.rng.random_range(100..2500);
            self.down_until[i] = Some(back);
            self.crashes += 1;
            trace.push(format!(
                "{now} crash {} ({mode:?}) until {back}",
                REPLICAS[i]
            ));
        }
        if self.cuts.len() < 2 && self.rng.random_bool(self.cut_per_ms) {
            let n = self.disks.len();
            let i = self.rng.random_range(0..n);
            let a = REPLICAS[i].to_string();
            // Another replica, or a client.
            let b = if n > 1 && self.rng.random_bool(0.7) {
                REPLICAS[(i + self.rng.random_range(1..n)) % n].to_string()
            } else {
                format!("c{}", self.rng.random_range(0..3))
            };
            let held = self.rng.random_bool(0.3);
            if !self
                .cuts
                .iter()
                .any(|(x, y, _, _)| (x, y) == (&a, &b) || (x, y) == (&b, &a))
            {
                if held {
                    sim.hold(a.as_str(), b.as_str());
                } else {
                    sim.partition(a.as_str(), b.as_str());
                }
                let until = now + self.rng.random_range(50..3000);
                trace.push(format!("{now} cut {a}-{b} held={held} until {until}"));
                self.cuts.push((a, b, held, until));
                self.partitions += 1;
            }
        }
    }
}
