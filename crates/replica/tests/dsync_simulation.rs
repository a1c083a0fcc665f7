//! Deterministic simulation of the synchronization objects on replicated
//! state: seeded random clients acquire, try, release, time out, retry at
//! other replicas, lose replies, crash (their sessions then expire through
//! the log), while replicas are rebuilt from each other's snapshots. Every
//! step checks:
//!
//! * **agreement**: every replica computes the same answer and wake-ups;
//! * **safety**: the clients whose sessions are alive never hold more than
//!   the object allows (one lock holder, at most N permits);
//! * **fencing**: lock grants carry strictly increasing tokens;
//! * **exactly once**: a call is never answered with two different replies,
//!   and a call that timed out is never granted afterwards.
//!
//! A failing seed prints itself; `DSYNC_SIM_SEED=n` replays one seed and
//! `DSYNC_SIM_SEEDS=n` runs seeds 0..n (default 300).

use concoord_dsync::{BoundedSemaphore, Lock, Semaphore};
use concoord_object::{
    CONCOORD_CANCEL, CONCOORD_EXPIRE, CONCOORD_INIT, CallContext, MethodKind, ObjectError,
    ReplicatedObject, Waiter, args,
};
use concoord_replica::logged_call::LoggedCall;
use concoord_replica::replicated_state::{Answer, ReplicatedState, SYSTEM_CLIENT};
use concoord_replica::sessions::StoredReply;
use concoord_transport::wire::CallError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const REPLICAS: usize = 3;
const CLIENTS: u64 = 5;
const STEPS: usize = 400;

#[derive(Default)]
struct SimClient {
    next_seq: u64,
    /// Calls sent and not answered, by seq: method and arguments.
    pending: BTreeMap<u64, (String, Vec<u8>)>,
    /// Permits (or the lock) this client believes it holds.
    holding: u64,
    crashed: bool,
    expired: bool,
    /// Every reply received, by seq (to catch a second, different one).
    answers: BTreeMap<u64, StoredReply>,
}

impl SimClient {
    fn acked(&self) -> u64 {
        self.pending
            .keys()
            .next()
            .map_or(self.next_seq - 1, |s| s - 1)
    }

    fn live(&self) -> bool {
        !self.crashed && !self.expired
    }
}

/// What a reply means for the holder count: granted (with a token for locks).
fn grant(reply: &[u8]) -> Option<Option<u64>> {
    if let Ok(token) = rmp_serde::from_slice::<u64>(reply) {
        return Some(Some(token));
    }
    match rmp_serde::from_slice::<Option<bool>>(reply) {
        Ok(Some(true)) => Some(None),
        _ => None,
    }
}

struct Sim<O: ReplicatedObject> {
    rng: ChaCha8Rng,
    replicas: Vec<ReplicatedState<O>>,
    clients: Vec<SimClient>,
    capacity: u64,
    last_token: u64,
}

impl<O: ReplicatedObject> Sim<O> {
    fn new(seed: u64, capacity: u64) -> Self {
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            replicas: (0..REPLICAS).map(|_| ReplicatedState::default()).collect(),
            clients: (0..=CLIENTS)
                .map(|_| SimClient {
                    next_seq: 1,
                    ..SimClient::default()
                })
                .collect(),
            capacity,
            last_token: 0,
        };
        if capacity != 1 {
            let init = args::encode(&(capacity,)).expect("encodes");
            sim.send(1, CONCOORD_INIT, init);
        }
        sim
    }

    /// Client `c` sends a new call.
    fn send(&mut self, c: u64, method: &str, a: Vec<u8>) {
        let client = &mut self.clients[c as usize];
        let seq = client.next_seq;
        client.next_seq += 1;
        client.pending.insert(seq, (method.to_string(), a.clone()));
        self.decide(c, seq, method, a);
    }

    /// The call reaches the log (again, for a retry) and every replica runs it.
    fn decide(&mut self, c: u64, seq: u64, method: &str, a: Vec<u8>) {
        let acked = self.clients[c as usize].acked();
        let call = LoggedCall {
            client_id: c,
            issued_ms: 1,
            done: Vec::new(),
            seq,
            acked,
            method: method.to_string(),
            args: a,
        };
        self.execute(call);
    }

    fn execute(&mut self, call: LoggedCall) {
        let outs: Vec<_> = self.replicas.iter_mut().map(|r| r.execute(&call)).collect();
        for o in &outs[1..] {
            assert_eq!(o, &outs[0], "replicas disagree on {call:?}");
        }
        let out = outs.into_iter().next().expect("replicas");
        let lossy = self.rng.random_bool(0.15);
        if let Some(answer) = out.answer
            && call.client_id != SYSTEM_CLIENT
            && !lossy
        {
            match answer {
                Answer::Reply(r) => self.deliver(call.client_id, call.seq, r),
                Answer::Blocked => {}
            }
        }
        for (w, reply) in out.woken {
            // The waiter's connection may be gone: it learns by retrying.
            if !self.rng.random_bool(0.15) {
                self.deliver(w.client_id, w.seq, reply);
            }
        }
    }

    fn deliver(&mut self, c: u64, seq: u64, reply: StoredReply) {
        let last_token = &mut self.last_token;
        let client = &mut self.clients[c as usize];
        if client.crashed {
            return;
        }
        if let Some(earlier) = client.answers.get(&seq) {
            assert_eq!(
                earlier, &reply,
                "client {c} call {seq} answered twice, differently"
            );
            return;
        }
        client.answers.insert(seq, reply.clone());
        let Some((method, _)) = client.pending.remove(&seq) else {
            return;
        };
        match (&reply, method.as_str()) {
            (Err(CallError::SessionExpired), _) => {
                client.expired = true;
                client.pending.clear();
            }
            (Ok(bytes), "acquire" | "try_acquire") => {
                if let Some(token) = grant(bytes) {
                    client.holding += 1;
                    if let Some(t) = token {
                        assert!(t > *last_token, "fencing token {t} after {last_token}");
                        *last_token = t;
                    }
                }
            }
            _ => {}
        }
    }

    fn step(&mut self) {
        let c = self.rng.random_range(1..=CLIENTS);
        let roll = self.rng.random_range(0..100);
        let client = &self.clients[c as usize];
        if !client.live() {
            // The leader notices the silence and expires the session.
            if client.crashed && !client.expired && roll < 30 {
                self.clients[c as usize].expired = true;
                let a = args::encode(&(vec![c],)).expect("encodes");
                self.execute(LoggedCall {
                    client_id: SYSTEM_CLIENT,
                    issued_ms: 1,
                    done: Vec::new(),
                    seq: 0,
                    acked: 0,
                    method: CONCOORD_EXPIRE.into(),
                    args: a,
                });
            }
            return;
        }
        let blocked = client
            .pending
            .iter()
            .find(|(_, (m, _))| m == "acquire")
            .map(|(s, _)| *s);
        let holding = client.holding;
        let retries: Vec<(u64, (String, Vec<u8>))> = client
            .pending
            .iter()
            .map(|(s, call)| (*s, call.clone()))
            .collect();
        match roll {
            0..=2 => self.clients[c as usize].crashed = true,
            3..=7 => self.rebuild_replica(),
            8..=15 if !retries.is_empty() => {
                // Retry every unanswered call (after a reconnection, at
                // whichever replica leads now).
                for (seq, (m, a)) in retries {
                    self.decide(c, seq, &m, a);
                }
            }
            16..=25 if blocked.is_some() => {
                let target = blocked.unwrap_or_default();
                let a = args::encode(&(target,)).expect("encodes");
                self.send(c, CONCOORD_CANCEL, a);
            }
            _ if !retries.is_empty() => {}
            26..=60 if holding > 0 => {
                // Out of its critical section once it asks to release.
                self.clients[c as usize].holding -= 1;
                self.send(c, "release", vec![0x90]);
            }
            26..=85 => self.send(c, "acquire", vec![0x90]),
            _ => self.send(c, "try_acquire", vec![0x90]),
        }
    }

    /// A replica is replaced by a copy of another's snapshot (a restart
    /// with state transfer).
    fn rebuild_replica(&mut self) {
        let from = self.rng.random_range(0..REPLICAS);
        let to = self.rng.random_range(0..REPLICAS);
        let bytes = self.replicas[from].snapshot().expect("snapshot");
        self.replicas[to] = ReplicatedState::restore(&bytes).expect("restore");
    }

    fn check(&self) {
        let held: u64 = self
            .clients
            .iter()
            .filter(|c| c.live())
            .map(|c| c.holding)
            .sum();
        assert!(
            held <= self.capacity,
            "{held} held by live sessions, capacity {}",
            self.capacity
        );
        let digests: Vec<_> = self.replicas.iter().map(|r| r.snapshot().ok()).collect();
        assert!(
            digests.windows(2).all(|w| w[0] == w[1]),
            "replica states diverged"
        );
    }
}

fn run<O: ReplicatedObject>(seed: u64, capacity: u64) -> Result<(), String> {
    let outcome = std::panic::catch_unwind(|| {
        let mut sim = Sim::<O>::new(seed, capacity);
        for _ in 0..STEPS {
            sim.step();
            sim.check();
        }
    });
    outcome.map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn seeds() -> Vec<u64> {
    match std::env::var("DSYNC_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![seed],
        None => {
            let n = std::env::var("DSYNC_SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(300);
            (0..n).collect()
        }
    }
}

#[test]
fn a_lock_never_has_two_live_holders_and_its_tokens_only_grow() {
    for seed in seeds() {
        if let Err(e) = run::<Lock>(seed, 1) {
            panic!("seed {seed}: {e} (replay with DSYNC_SIM_SEED={seed})");
        }
    }
}

#[test]
fn a_semaphore_never_grants_more_permits_than_it_has() {
    for seed in seeds() {
        if let Err(e) = run::<Semaphore>(seed, 3) {
            panic!("seed {seed}: {e} (replay with DSYNC_SIM_SEED={seed})");
        }
    }
}

/// A bounded semaphore's permits are held: those of crashed clients come
/// back when their sessions expire, so the pool keeps being used.
#[test]
fn a_bounded_semaphore_never_grants_more_permits_than_it_has() {
    for seed in seeds() {
        if let Err(e) = run::<BoundedSemaphore>(seed, 3) {
            panic!("seed {seed}: {e} (replay with DSYNC_SIM_SEED={seed})");
        }
    }
}

/// A lock with a classic bug: an expired holder's lock is freed, but the
/// next waiter is not granted it, and a later acquire gets it while the
/// waiter stays queued; then a release wakes that waiter too. The
/// simulation must catch it.
#[derive(Default, Serialize, Deserialize)]
struct BrokenLock {
    holder: Option<u64>,
    queue: Vec<Waiter>,
    token: u64,
}

impl ReplicatedObject for BrokenLock {
    fn type_name() -> &'static str {
        "test.BrokenLock"
    }
    fn methods() -> &'static [(&'static str, MethodKind)] {
        &[
            ("acquire", MethodKind::Write),
            ("try_acquire", MethodKind::Write),
            ("release", MethodKind::Write),
        ]
    }
    fn apply(
        &mut self,
        ctx: &mut CallContext,
        method: &str,
        _: &[u8],
    ) -> Result<Vec<u8>, ObjectError> {
        match method {
            "acquire" | "try_acquire" if self.holder.is_none() => {
                self.holder = Some(ctx.client_id);
                self.token += 1;
                concoord_object::reply(&self.token)
            }
            "acquire" => {
                self.queue.push(ctx.waiter());
                ctx.block();
                Ok(Vec::new())
            }
            "try_acquire" => concoord_object::reply(&Option::<u64>::None),
            "release" if self.holder == Some(ctx.client_id) => {
                // Bug: wakes the first waiter without making it the holder.
                self.holder = None;
                if !self.queue.is_empty() {
                    let w = self.queue.remove(0);
                    self.token += 1;
                    ctx.wake(w, &self.token);
                }
                concoord_object::reply(&())
            }
            "release" => Err(ObjectError::application(&"not holder")),
            _ => Err(ObjectError::unknown(method)),
        }
    }
    fn query(&self, method: &str, _: &[u8]) -> Result<Vec<u8>, ObjectError> {
        Err(ObjectError::unknown(method))
    }
}

#[test]
fn the_simulation_catches_a_lock_that_lets_two_clients_in() {
    let caught = (0..50).find(|seed| run::<BrokenLock>(*seed, 1).is_err());
    assert!(caught.is_some(), "the broken lock passed 50 seeds");
}
