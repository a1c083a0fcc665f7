//! The properties a run must keep, each violation named after its property.

use crate::clients::Shared;
use crate::run::{Report, RunConfig, Scenario};
use paxos_sim::history::{OpKind, Operation};

pub(crate) fn check(cfg: &RunConfig, s: &Shared, report: &mut Report) {
    let ops = s.history.ops();
    report.calls = ops.len() + s.grants.len();
    report.answered = ops.iter().filter(|o| o.completed.is_some()).count() + s.grants.len();
    let stuck: Vec<String> = s
        .finished
        .iter()
        .enumerate()
        .filter(|(_, done)| !**done)
        .map(|(i, _)| format!("c{i}"))
        .collect();
    if !stuck.is_empty() && report.violations.is_empty() {
        report.violations.push(format!(
            "nothing stuck: clients {} still had a call neither answered nor cancelled {} s after the faults stopped",
            stuck.join(", "),
            cfg.settle.as_secs()
        ));
    }
    match cfg.scenario {
        Scenario::Counter => check_counters(s, report),
        Scenario::Lock => check_lock(s, report),
    }
}

fn check_counters(s: &Shared, report: &mut Report) {
    if let Err(e) = paxos_sim::linearizability::check(s.history.ops()) {
        report.violations.push(format!(
            "linearizable: counter {} has no legal order ({} ops; {})",
            e.key,
            e.ops.len(),
            witness(&e.ops)
        ));
    }
    for &(key, value, invoked) in &s.final_reads {
        // Increments acknowledged before the read was sent.
        let acked = s
            .history
            .ops()
            .iter()
            .filter(|o| o.kind == OpKind::Increment { key })
            .filter_map(|o| o.completed.filter(|(at, _)| *at < invoked))
            .map(|(_, v)| v)
            .max()
            .unwrap_or(0);
        if value < acked {
            report.violations.push(format!(
                "no acknowledged write lost: counter {key} reads {value} at {invoked} ms, after the faults, but an increment to {acked} was acknowledged before"
            ));
        }
    }
}

/// The simplest evidence in a non-linearizable counter history: a value
/// returned twice by increments, or a read below an increment acknowledged
/// before it was sent; else the last operations.
fn witness(ops: &[Operation]) -> String {
    let mut incs: Vec<&Operation> = ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::Increment { .. }) && o.completed.is_some())
        .collect();
    incs.sort_by_key(|o| o.completed.map(|(_, v)| v));
    if let Some(w) = incs
        .windows(2)
        .find(|w| w[0].completed.map(|(_, v)| v) == w[1].completed.map(|(_, v)| v))
    {
        return format!(
            "two increments returned the same value: {} and {}",
            show(w[0]),
            show(w[1])
        );
    }
    for read in ops.iter().filter(|o| matches!(o.kind, OpKind::Read { .. })) {
        let Some((_, value)) = read.completed else {
            continue;
        };
        if let Some(inc) = incs
            .iter()
            .filter(|i| {
                i.completed
                    .is_some_and(|(at, v)| at < read.invoked && v > value)
            })
            .max_by_key(|i| i.completed.map(|(_, v)| v))
        {
            return format!("a stale read: {} after {}", show(read), show(inc));
        }
    }
    let mut last: Vec<&Operation> = ops.iter().collect();
    last.sort_by_key(|o| o.invoked);
    let tail: Vec<String> = last.iter().rev().take(20).rev().map(|o| show(o)).collect();
    format!("last operations: {}", tail.join("; "))
}

fn show(o: &Operation) -> String {
    match o.completed {
        Some((at, v)) => format!(
            "c{} {:?} [{} ms..{} ms] -> {}",
            o.client, o.kind, o.invoked, at, v
        ),
        None => format!("c{} {:?} [{} ms..] unanswered", o.client, o.kind, o.invoked),
    }
}

fn check_lock(s: &Shared, report: &mut Report) {
    let mut tokens: Vec<u64> = s.grants.iter().map(|g| g.1).collect();
    tokens.sort_unstable();
    if let Some(w) = tokens.windows(2).find(|w| w[0] == w[1]) {
        report
            .violations
            .push(format!("lock fencing: token {} was granted twice", w[0]));
    }
    let mut holds = s.holds.clone();
    holds.sort_by_key(|h| (h.2, h.3));
    for w in holds.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.2 < a.3 {
            report.violations.push(format!(
                "lock exclusion: c{} held token {} over [{}, {}] ms and c{} held token {} from {} ms",
                a.0, a.1, a.2, a.3, b.0, b.1, b.2
            ));
        }
        if b.1 <= a.1 {
            report.violations.push(format!(
                "lock fencing: c{}'s hold from {} ms has token {}, not above token {} of the hold before it",
                b.0, b.2, b.1, a.1
            ));
        }
    }
}
