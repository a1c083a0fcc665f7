//! The replicated state machine the simulation runs: counters with an
//! exactly-once table, plus a hash chain over everything executed so nodes can
//! be compared cheaply.

use paxos_core::{Command, Entry, Slot};
use std::collections::{BTreeMap, BTreeSet};

/// A client's increment as carried in a command: 8 + 8 + 1 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncrementCmd {
    /// Issuing client.
    pub client: u64,
    /// Its sequence number.
    pub seq: u64,
    /// Counter to increment.
    pub key: u8,
}

impl IncrementCmd {
    /// Encodes into a paxos command.
    pub fn encode(&self) -> Command {
        let mut b = Vec::with_capacity(17);
        b.extend_from_slice(&self.client.to_le_bytes());
        b.extend_from_slice(&self.seq.to_le_bytes());
        b.push(self.key);
        Command(b)
    }

    /// Decodes a command produced by `encode`.
    pub fn decode(cmd: &Command) -> Option<IncrementCmd> {
        let b = &cmd.0;
        if b.len() != 17 {
            return None;
        }
        let client = u64::from_le_bytes(b[0..8].try_into().ok()?);
        let seq = u64::from_le_bytes(b[8..16].try_into().ok()?);
        Some(IncrementCmd {
            client,
            seq,
            key: b[16],
        })
    }
}

/// Counters + exactly-once table + hash chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterMachine {
    /// Counter values.
    pub counters: BTreeMap<u8, i64>,
    /// Per client: last executed sequence number and its reply.
    pub sessions: BTreeMap<u64, (u64, i64)>,
    /// Every (client, seq) executed, for the "acknowledged writes survive" check.
    pub applied: BTreeSet<(u64, u64)>,
    /// Last slot executed.
    pub slot: Slot,
    /// Hash chain over (slot, entry) of every slot executed.
    pub chain: u64,
}

fn mix(h: u64, x: u64) -> u64 {
    let mut z = h ^ x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable fingerprint of a decided entry.
pub fn entry_hash(entry: &Entry) -> u64 {
    match entry {
        Entry::Noop => 1,
        Entry::Commands(cmds) => cmds.iter().fold(2, |h, c| {
            c.0.iter()
                .fold(mix(h, c.0.len() as u64), |h, b| mix(h, u64::from(*b)))
        }),
        Entry::Reconfig(r) => format!("{r:?}")
            .bytes()
            .fold(3, |h, b| mix(h, u64::from(b))),
    }
}

impl CounterMachine {
    /// Executes one decided slot; returns replies as (client, seq, value) for
    /// commands executed now (duplicates are answered from the table).
    pub fn execute(&mut self, slot: Slot, entry: &Entry) -> Vec<(u64, u64, i64)> {
        assert_eq!(slot, self.slot + 1, "slots must be executed in order");
        self.slot = slot;
        self.chain = mix(mix(self.chain, slot), entry_hash(entry));
        let mut replies = Vec::new();
        if let Entry::Commands(cmds) = entry {
            for cmd in cmds {
                let Some(inc) = IncrementCmd::decode(cmd) else {
                    continue;
                };
                match self.sessions.get(&inc.client) {
                    Some((seq, reply)) if *seq == inc.seq => {
                        replies.push((inc.client, inc.seq, *reply));
                    }
                    Some((seq, _)) if *seq > inc.seq => {}
                    _ => {
                        let value = self.counters.entry(inc.key).or_insert(0);
                        *value += 1;
                        let v = *value;
                        self.sessions.insert(inc.client, (inc.seq, v));
                        self.applied.insert((inc.client, inc.seq));
                        replies.push((inc.client, inc.seq, v));
                    }
                }
            }
        }
        replies
    }

    /// Serialises the machine (a snapshot's opaque data).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        let put = |b: &mut Vec<u8>, x: u64| b.extend_from_slice(&x.to_le_bytes());
        put(&mut b, self.slot);
        put(&mut b, self.chain);
        put(&mut b, self.counters.len() as u64);
        for (k, v) in &self.counters {
            put(&mut b, u64::from(*k));
            put(&mut b, *v as u64);
        }
        put(&mut b, self.sessions.len() as u64);
        for (c, (s, r)) in &self.sessions {
            put(&mut b, *c);
            put(&mut b, *s);
            put(&mut b, *r as u64);
        }
        put(&mut b, self.applied.len() as u64);
        for (c, s) in &self.applied {
            put(&mut b, *c);
            put(&mut b, *s);
        }
        b
    }

    /// Inverse of `to_bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Option<CounterMachine> {
        let mut words = bytes
            .chunks_exact(8)
            .map(|c| c.try_into().ok().map(u64::from_le_bytes));
        let mut next = || words.next().flatten();
        let mut m = CounterMachine {
            slot: next()?,
            chain: next()?,
            ..CounterMachine::default()
        };
        for _ in 0..next()? {
            let k = next()? as u8;
            m.counters.insert(k, next()? as i64);
        }
        for _ in 0..next()? {
            let c = next()?;
            let s = next()?;
            m.sessions.insert(c, (s, next()? as i64));
        }
        for _ in 0..next()? {
            let c = next()?;
            m.applied.insert((c, next()?));
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trips() {
        let c = IncrementCmd {
            client: 7,
            seq: 99,
            key: 3,
        };
        assert_eq!(IncrementCmd::decode(&c.encode()), Some(c));
    }

    #[test]
    fn a_duplicate_command_is_answered_but_not_reapplied() {
        let mut m = CounterMachine::default();
        let c = IncrementCmd {
            client: 1,
            seq: 1,
            key: 0,
        }
        .encode();
        let e = Entry::Commands(vec![c.clone(), c]);
        let replies = m.execute(1, &e);
        assert_eq!(replies, vec![(1, 1, 1), (1, 1, 1)]);
        assert_eq!(m.counters[&0], 1);
    }

    #[test]
    fn machine_round_trips_through_bytes() {
        let mut m = CounterMachine::default();
        let c = IncrementCmd {
            client: 1,
            seq: 1,
            key: 2,
        };
        m.execute(1, &Entry::Commands(vec![c.encode()]));
        assert_eq!(CounterMachine::from_bytes(&m.to_bytes()), Some(m));
    }
}
