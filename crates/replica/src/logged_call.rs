//! A client call as it is written into the Paxos log.

use paxos_core::Command;
use serde::{Deserialize, Serialize};

/// One call, with everything every replica needs to run it identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedCall {
    /// Calling client.
    pub client_id: u64,
    /// When its session was issued (ms since the Unix epoch; see `sessions`).
    pub issued_ms: u64,
    /// Its sequence number.
    pub seq: u64,
    /// The client's acknowledgement point (see `sessions`).
    pub acked: u64,
    /// Replies above `acked` the client holds, as inclusive ranges.
    pub done: Vec<(u64, u64)>,
    /// Method name.
    pub method: String,
    /// Arguments (msgpack array).
    #[serde(with = "serde_bytes")]
    pub args: Vec<u8>,
}

impl LoggedCall {
    /// Encodes into a log command.
    pub fn to_command(&self) -> Command {
        // Encoding a struct of integers, a string and bytes cannot fail.
        Command(rmp_serde::to_vec(self).unwrap_or_default())
    }

    /// Decodes a log command; `None` for anything else.
    pub fn from_command(cmd: &Command) -> Option<LoggedCall> {
        rmp_serde::from_slice(&cmd.0).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_command() {
        let call = LoggedCall {
            client_id: 1,
            issued_ms: 1_700_000_000_000,
            seq: 2,
            acked: 1,
            done: vec![(4, 6)],
            method: "increment".into(),
            args: vec![0x90],
        };
        assert_eq!(LoggedCall::from_command(&call.to_command()), Some(call));
    }
}
