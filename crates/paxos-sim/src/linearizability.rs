//! A Wing–Gong linearizability checker with Lowe's memoisation (the algorithm
//! behind porcupine and Knossos), for histories of counters.
//!
//! Operations on different counters are independent (P-compositionality), so
//! each counter's sub-history is checked on its own: far smaller searches.
//!
//! An operation that never completed may have taken effect at any time after
//! its invocation, or not at all; a read that never completed constrains
//! nothing and is dropped.

use crate::history::{OpKind, Operation};
use std::collections::{BTreeMap, HashSet};

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotLinearizable {
    /// The counter whose history has no legal order.
    pub key: u8,
    /// Operations on that counter, for the report.
    pub ops: Vec<Operation>,
}

/// Checks a whole history; returns the first counter without a legal order.
pub fn check(ops: &[Operation]) -> Result<(), NotLinearizable> {
    let mut by_key: BTreeMap<u8, Vec<Operation>> = BTreeMap::new();
    for op in ops {
        let unknown_read = op.completed.is_none() && matches!(op.kind, OpKind::Read { .. });
        if !unknown_read {
            by_key.entry(op.kind.key()).or_default().push(op.clone());
        }
    }
    for (key, ops) in by_key {
        if !check_counter(&ops) {
            return Err(NotLinearizable { key, ops });
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
struct Event {
    op: usize,
    is_call: bool,
    prev: usize,
    next: usize,
}

/// The doubly linked list of call/return events the search lifts entries out of.
struct Events {
    nodes: Vec<Event>, // index 0 is the head sentinel
    return_of: Vec<Option<usize>>,
}

impl Events {
    fn build(ops: &[Operation]) -> Events {
        // (time, order, op, is_call): returns sort before calls at equal times,
        // so an operation that completed at t does not overlap one invoked at t.
        let mut evs: Vec<(u64, u8, usize, bool)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            evs.push((op.invoked, 1, i, true));
            if let Some((t, _)) = op.completed {
                evs.push((t, 0, i, false));
            }
        }
        evs.sort();
        let mut nodes = vec![Event {
            op: usize::MAX,
            is_call: false,
            prev: 0,
            next: 1,
        }];
        let mut return_of = vec![None; ops.len()];
        for (k, (_, _, op, is_call)) in evs.iter().enumerate() {
            let idx = k + 1;
            if !is_call {
                return_of[*op] = Some(idx);
            }
            nodes.push(Event {
                op: *op,
                is_call: *is_call,
                prev: idx - 1,
                next: idx + 1,
            });
        }
        Events { nodes, return_of }
    }

    fn end(&self) -> usize {
        self.nodes.len()
    }

    fn unlink(&mut self, idx: usize) {
        let Event { prev, next, .. } = self.nodes[idx];
        self.nodes[prev].next = next;
        if next < self.nodes.len() {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, idx: usize) {
        let Event { prev, next, .. } = self.nodes[idx];
        self.nodes[prev].next = idx;
        if next < self.nodes.len() {
            self.nodes[next].prev = idx;
        }
    }

    /// Removes an operation's call and return events (it is linearized).
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(ret) = self.return_of[self.nodes[call].op] {
            self.unlink(ret);
        }
    }

    fn unlift(&mut self, call: usize) {
        if let Some(ret) = self.return_of[self.nodes[call].op] {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// Applies `op` to counter value `state`; `None` if its result contradicts it.
fn step(state: i64, op: &Operation) -> Option<i64> {
    match (op.kind, op.completed) {
        (OpKind::Increment { .. }, Some((_, v))) => (v == state + 1).then_some(state + 1),
        (OpKind::Increment { .. }, None) => Some(state + 1),
        (OpKind::Read { .. }, Some((_, v))) => (v == state).then_some(state),
        (OpKind::Read { .. }, None) => Some(state),
    }
}

/// Whether one counter's history (starting at 0) is linearizable.
fn check_counter(ops: &[Operation]) -> bool {
    let completed = ops.iter().filter(|o| o.completed.is_some()).count();
    let mut events = Events::build(ops);
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut done_completed = 0usize;
    let mut cache: HashSet<(Vec<u64>, i64)> = HashSet::new();
    let mut stack: Vec<(usize, i64)> = Vec::new();
    let mut state = 0i64;
    let mut entry = events.nodes[0].next;
    loop {
        if done_completed == completed {
            return true;
        }
        let ev = (entry < events.end()).then(|| events.nodes[entry]);
        if let Some(ev) = ev.filter(|e| e.is_call) {
            let op = ev.op;
            if let Some(next_state) = step(state, &ops[op]) {
                let mut bits = linearized.clone();
                bits[op / 64] |= 1 << (op % 64);
                if cache.insert((bits.clone(), next_state)) {
                    stack.push((entry, state));
                    state = next_state;
                    linearized = bits;
                    if ops[op].completed.is_some() {
                        done_completed += 1;
                    }
                    events.lift(entry);
                    entry = events.nodes[0].next;
                    continue;
                }
            }
            entry = ev.next;
        } else {
            // A return whose operation is not linearized yet (or the end, with a
            // completed operation still unplaced): undo the last choice.
            let Some((call, prev_state)) = stack.pop() else {
                return false;
            };
            state = prev_state;
            let op = events.nodes[call].op;
            linearized[op / 64] &= !(1 << (op % 64));
            if ops[op].completed.is_some() {
                done_completed -= 1;
            }
            events.unlift(call);
            entry = events.nodes[call].next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(client: u64, invoked: u64, done: Option<(u64, i64)>) -> Operation {
        Operation {
            client,
            seq: invoked,
            kind: OpKind::Increment { key: 0 },
            invoked,
            completed: done,
        }
    }

    fn read(client: u64, invoked: u64, done: (u64, i64)) -> Operation {
        Operation {
            client,
            seq: invoked,
            kind: OpKind::Read { key: 0 },
            invoked,
            completed: Some(done),
        }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = vec![
            inc(1, 0, Some((1, 1))),
            inc(1, 2, Some((3, 2))),
            read(1, 4, (5, 2)),
        ];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn concurrent_increments_may_return_in_either_order() {
        let h = vec![inc(1, 0, Some((10, 2))), inc(2, 1, Some((9, 1)))];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let h = vec![inc(1, 0, Some((1, 1))), read(2, 5, (6, 0))];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_lost_acknowledged_increment_is_caught() {
        // Two acknowledged increments, then a read that sees only one.
        let h = vec![
            inc(1, 0, Some((1, 1))),
            inc(2, 2, Some((3, 2))),
            read(3, 10, (11, 1)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_doubly_applied_increment_is_caught() {
        let h = vec![inc(1, 0, Some((1, 2)))];
        assert!(check(&h).is_err());
    }

    #[test]
    fn an_unknown_increment_may_or_may_not_have_happened() {
        let took_effect = vec![inc(1, 0, None), read(2, 5, (6, 1))];
        assert!(check(&took_effect).is_ok());
        let did_not = vec![inc(1, 0, None), read(2, 5, (6, 0))];
        assert!(check(&did_not).is_ok());
        let not_before_invocation = vec![read(2, 0, (1, 1)), inc(1, 5, None)];
        assert!(check(&not_before_invocation).is_err());
    }

    #[test]
    fn reads_must_agree_with_one_order() {
        // Two concurrent increments; two later reads see 1 then 2: fine.
        // But reads going backwards (2 then 1) are not linearizable.
        let ok = vec![
            inc(1, 0, Some((20, 1))),
            inc(2, 0, Some((20, 2))),
            read(3, 1, (2, 1)),
            read(3, 3, (4, 2)),
        ];
        assert!(check(&ok).is_ok());
        let backwards = vec![
            inc(1, 0, Some((20, 1))),
            inc(2, 0, Some((20, 2))),
            read(3, 1, (2, 2)),
            read(3, 3, (4, 1)),
        ];
        assert!(check(&backwards).is_err());
    }

    #[test]
    fn counters_are_checked_independently() {
        let mut other = inc(1, 0, Some((1, 1)));
        other.kind = OpKind::Increment { key: 7 };
        let h = vec![other, read(2, 5, (6, 0))];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn many_concurrent_operations_are_checked_quickly() {
        // 8 clients, 400 overlapping increments and reads: must finish fast.
        let mut h = Vec::new();
        let mut value = 0;
        for i in 0..400u64 {
            let t = i * 3;
            if i % 3 == 0 {
                h.push(read(i % 8, t, (t + 7, value)));
            } else {
                value += 1;
                h.push(inc(i % 8, t, Some((t + 7, value))));
            }
        }
        assert!(check(&h).is_ok());
    }
}
