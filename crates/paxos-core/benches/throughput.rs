//! Decided commands per second through three in-memory nodes, no I/O: the
//! core's own ceiling, with batching on (up to 512 commands a slot) and off
//! (one command a slot). `cargo bench -p paxos-core --bench throughput`.
//!
//! Each iteration proposes 10 000 commands of 16 bytes, `arrivals` at a time
//! between two `take_ready` calls (as a runtime sees requests arrive between
//! two loop turns), and routes every message until the leader has decided
//! them all. Time per command = CPU cost of the core per command across the
//! whole cluster (one thread runs all three nodes).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use paxos_core::{Command, Config, Entry, Member, Node, NodeId};
use std::hint::black_box;

const COMMANDS: usize = 10_000;

struct Bench {
    nodes: Vec<Node>,
    wire: Vec<(NodeId, NodeId, paxos_core::Message)>,
    decided_at_leader: usize,
}

impl Bench {
    fn new(batch: usize) -> Bench {
        let members: Vec<Member> = (1..=3)
            .map(|i| Member {
                id: NodeId(i),
                addr: format!("n{i}"),
            })
            .collect();
        let nodes = members
            .iter()
            .map(|m| {
                let mut c = Config::new(m.id);
                c.max_batch_commands = batch;
                c.log_entries_soft_max = usize::MAX;
                Node::bootstrap(c, &members).expect("valid")
            })
            .collect();
        let mut b = Bench {
            nodes,
            wire: Vec::new(),
            decided_at_leader: 0,
        };
        while !b.nodes[0].is_leader() {
            b.nodes[0].tick();
            b.route();
            if b.nodes.iter().any(|n| n.is_leader() && n.id() != NodeId(1)) {
                break;
            }
        }
        b
    }

    fn leader(&self) -> usize {
        self.nodes
            .iter()
            .position(|n| n.is_leader())
            .expect("a leader was elected in Bench::new")
    }

    fn drain(&mut self) {
        for node in self.nodes.iter_mut() {
            let leading = node.is_leader();
            let ready = node.take_ready();
            if leading {
                for (_, e) in &ready.committed {
                    if let Entry::Commands(c) = e {
                        self.decided_at_leader += c.len();
                    }
                }
            }
            black_box(&ready.committed);
            for out in ready.messages {
                self.wire.push((node.id(), out.to, out.msg));
            }
        }
    }

    fn route(&mut self) {
        loop {
            self.drain();
            if self.wire.is_empty() {
                return;
            }
            for (from, to, msg) in std::mem::take(&mut self.wire) {
                self.nodes[(to.0 - 1) as usize].step(from, msg);
            }
        }
    }

    /// Proposes `COMMANDS` commands, `arrivals` per turn, until all decided.
    fn run(&mut self, arrivals: usize) {
        let start = self.decided_at_leader;
        let leader = self.leader();
        let mut proposed = 0;
        while self.decided_at_leader - start < COMMANDS {
            let n = arrivals.min(COMMANDS - proposed);
            for i in 0..n {
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&((proposed + i) as u64).to_le_bytes());
                let _ = self.nodes[leader].propose(Command(bytes.to_vec()));
            }
            proposed += n;
            // One turn: leader packs and sends, followers accept, leader decides.
            self.drain();
            let wire = std::mem::take(&mut self.wire);
            for (from, to, msg) in wire {
                self.nodes[(to.0 - 1) as usize].step(from, msg);
            }
            if proposed == COMMANDS {
                self.route();
            }
        }
    }
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide_3_nodes");
    group.throughput(Throughput::Elements(COMMANDS as u64));
    group.sample_size(10);
    for (label, batch, arrivals) in [
        ("batching_off", 1usize, 64usize),
        ("batching_on", 512, 64),
        ("batching_on", 512, 512),
    ] {
        let id = BenchmarkId::new(label, format!("{arrivals}_per_turn"));
        group.bench_function(id, |b| {
            let mut bench = Bench::new(batch);
            b.iter(|| bench.run(arrivals));
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
