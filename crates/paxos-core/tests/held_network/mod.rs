//! A network that delivers or holds back each message, as a test's filter
//! says: an asynchronous network that may delay any message arbitrarily.
//! Shared by the hand-scheduled tests (`agreement.rs`, `stale_reads.rs`),
//! which build the schedule that once broke a property and replay it here.
//! Everything delivered is traced, and the trace is printed with the
//! decisions when a test asserts agreement.

#![allow(dead_code)]

use crate::cluster::Cluster;
use paxos_core::message::{Accept, CatchupReply, Promise};
use paxos_core::{Entry, Message, Node, NodeId};
use std::collections::BTreeMap;

/// A message on the wire: (from, to, msg).
pub type Msg = (NodeId, NodeId, Message);

/// A cluster whose messages are delivered only as a test lets them.
pub struct Net {
    pub c: Cluster,
    /// Messages sent but not delivered (delayed, possibly forever).
    pub held: Vec<Msg>,
    pub trace: Vec<String>,
    /// For every read granted: (node, read id, commands executed at that
    /// node when the read was granted).
    pub grants: Vec<(NodeId, u64, Vec<String>)>,
}

/// An entry as a short string for traces: `noop`, `a+b`, or the change.
pub fn ent(e: &Entry) -> String {
    match e {
        Entry::Noop => "noop".into(),
        Entry::Commands(cs) => cs
            .iter()
            .map(|c| String::from_utf8_lossy(&c.0).into_owned())
            .collect::<Vec<_>>()
            .join("+"),
        Entry::Reconfig(r) => format!("{r:?}"),
    }
}

fn slots(entries: &[(u64, Entry)]) -> String {
    entries
        .iter()
        .map(|(s, e)| format!("{s}={}", ent(e)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A message as a line of a trace, with its values readable.
pub fn show(m: &Message) -> String {
    match m {
        Message::Accept(Accept {
            ballot,
            entries,
            commit,
        }) => format!("Accept({ballot:?}, [{}], commit {commit})", slots(entries)),
        Message::CatchupReply(CatchupReply {
            entries, commit, ..
        }) => format!("CatchupReply([{}], commit {commit})", slots(entries)),
        Message::Promise(Promise {
            ballot,
            ok,
            decided,
            accepted,
            ..
        }) => format!(
            "Promise({ballot:?}, ok {ok}, decided {decided}, accepted [{}])",
            accepted
                .iter()
                .map(|a| format!("{}={}@{:?}", a.slot, ent(&a.entry), a.ballot))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => format!("{other:?}"),
    }
}

/// A filter that lets through messages between members of `set` only.
pub fn within(set: &'static [u64]) -> impl Fn(u64, u64, &Message) -> bool {
    move |f, t, _| set.contains(&f) && set.contains(&t)
}

impl Net {
    pub fn new(c: Cluster) -> Net {
        Net {
            c,
            held: Vec::new(),
            trace: Vec::new(),
            grants: Vec::new(),
        }
    }

    pub fn n(&mut self, i: u64) -> &mut Node {
        self.c.node(i)
    }

    pub fn executed_strings(&self, id: NodeId) -> Vec<String> {
        self.c
            .executed(id)
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// Drains every node, recording the reads each grants.
    fn drain_all(&mut self) {
        let ids: Vec<NodeId> = self.c.nodes.keys().copied().collect();
        for id in ids {
            let ready = self.c.drain(id);
            if !ready.reads.is_empty() {
                let state = self.executed_strings(id);
                for r in &ready.reads {
                    self.trace
                        .push(format!("== {id:?} GRANTS read {r} with state {state:?}"));
                    self.grants.push((id, *r, state.clone()));
                }
            }
        }
    }

    fn step(&mut self, (from, to, msg): Msg, note: &str) {
        self.trace
            .push(format!("{from:?} -> {to:?}: {}{note}", show(&msg)));
        self.c.nodes.get_mut(&to).expect("node").step(from, msg);
    }

    /// Drains every node and delivers what `pass` allows, until quiet. The
    /// rest is held back.
    pub fn pump(&mut self, pass: impl Fn(u64, u64, &Message) -> bool) {
        for _ in 0..10_000 {
            self.drain_all();
            let wire = std::mem::take(&mut self.c.wire);
            let mut any = false;
            for (from, to, msg) in wire {
                if pass(from.0, to.0, &msg) {
                    self.step((from, to, msg), "");
                    any = true;
                } else {
                    self.held.push((from, to, msg));
                }
            }
            if !any {
                return;
            }
        }
        panic!("never quiet");
    }

    /// Ticks the nodes `ids`, then pumps.
    pub fn tick(&mut self, ids: &[u64], pass: impl Fn(u64, u64, &Message) -> bool) {
        for i in ids {
            self.n(*i).tick();
        }
        self.pump(pass);
    }

    /// Delivers the first held message matching `pick` (and what it causes,
    /// as `pass` allows). Panics if none matches.
    pub fn release_first(
        &mut self,
        pick: impl Fn(u64, u64, &Message) -> bool,
        pass: impl Fn(u64, u64, &Message) -> bool,
    ) {
        let i = self
            .held
            .iter()
            .position(|(f, t, m)| pick(f.0, t.0, m))
            .expect("such a message was held");
        let msg = self.held.remove(i);
        self.step(msg, "   <-- delayed");
        self.pump(pass);
    }

    /// Delivers every held message matching `pick` (in order), then pumps.
    /// Returns how many were delivered.
    pub fn release_every(
        &mut self,
        pick: impl Fn(u64, u64, &Message) -> bool,
        pass: impl Fn(u64, u64, &Message) -> bool,
    ) -> usize {
        let held = std::mem::take(&mut self.held);
        let mut n = 0;
        for (from, to, msg) in held {
            if pick(from.0, to.0, &msg) {
                self.step((from, to, msg), "   <-- delayed");
                n += 1;
            } else {
                self.held.push((from, to, msg));
            }
        }
        self.pump(pass);
        n
    }

    /// Every value any node persisted as decided, per slot.
    pub fn decisions(&self) -> BTreeMap<u64, BTreeMap<String, Vec<NodeId>>> {
        let mut by_slot: BTreeMap<u64, BTreeMap<String, Vec<NodeId>>> = BTreeMap::new();
        for (id, store) in &self.c.stores {
            for (slot, e) in store.decided() {
                by_slot
                    .entry(*slot)
                    .or_default()
                    .entry(ent(e))
                    .or_default()
                    .push(*id);
            }
        }
        by_slot
    }

    /// Prints the trace and the decisions.
    pub fn dump(&self) {
        for line in &self.trace {
            println!("{line}");
        }
        for (slot, values) in self.decisions() {
            println!("slot {slot}: {values:?}");
        }
    }

    pub fn assert_agreement(&self) {
        self.dump();
        for (slot, values) in self.decisions() {
            assert!(
                values.len() <= 1,
                "agreement violated in slot {slot}: {values:?}"
            );
        }
    }
}
