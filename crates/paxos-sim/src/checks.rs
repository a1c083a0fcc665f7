//! The end-of-run checks: the client history is linearizable, every
//! acknowledged increment is on every member, and nothing was applied that no
//! client asked for. (Agreement and identical execution are checked online,
//! at every decision, in `harness.rs`.)

use crate::client::KEYS;
use crate::harness::Sim;
use crate::history::OpKind;
use crate::linearizability;
use crate::outcome::Violation;
use std::collections::BTreeMap;

impl Sim {
    pub(crate) fn final_checks(&mut self) -> Result<(), Violation> {
        linearizability::check(self.history.ops()).map_err(Violation::NotLinearizable)?;
        let mut invoked: BTreeMap<(u64, u64), u8> = BTreeMap::new();
        for op in self.history.ops() {
            if let OpKind::Increment { key } = op.kind {
                invoked.insert((op.client, op.seq), key);
            }
        }
        for id in self.live_members() {
            let m = &self.nodes[&id].machine;
            for op in self.history.ops() {
                if matches!(op.kind, OpKind::Increment { .. })
                    && op.completed.is_some()
                    && !m.applied.contains(&(op.client, op.seq))
                {
                    return Err(Violation::LostWrite {
                        client: op.client,
                        seq: op.seq,
                        node: id,
                    });
                }
            }
            let mut per_key = [0i64; KEYS as usize];
            for applied in &m.applied {
                let Some(key) = invoked.get(applied) else {
                    return Err(Violation::PhantomWrite {
                        node: id,
                        detail: format!("applied {applied:?}, which no client issued"),
                    });
                };
                per_key[*key as usize] += 1;
            }
            for key in 0..KEYS {
                let value = m.counters.get(&key).copied().unwrap_or(0);
                if value != per_key[key as usize] {
                    return Err(Violation::PhantomWrite {
                        node: id,
                        detail: format!(
                            "counter {key} is {value} but {} increments were applied",
                            per_key[key as usize]
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
