//! Tuning knobs of one node, all bounded, with `validate()`.

use crate::errors::ConfigError;
use crate::types::NodeId;

/// A deliberately broken protocol step, compiled in only with the
/// `bug-injection` feature. The simulation uses these to prove that its
/// checkers catch a broken protocol.
#[cfg(feature = "bug-injection")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedBug {
    /// Phase-1 recovery keeps the value with the *lowest* ballot per slot.
    LowestBallotRecovery,
    /// A slot counts as decided after a single acceptance.
    QuorumOfOne,
    /// Reads are answered at once from the executed state, without confirming
    /// leadership with a quorum.
    ReadWithoutQuorum,
    /// A leader that learns, by catch-up or snapshot, a decision in a slot it
    /// proposed a different value in keeps leading and keeps advertising its
    /// decided prefix as its commit point, so a follower that accepted its
    /// value "learns" a value that was never chosen (`bug-catchup-commit`).
    CatchupCommit,
    /// Promises that reach a leader after its election are merged by first
    /// value instead of highest ballot, and the decided floor they report is
    /// ignored (`bug-late-promise-first-value`).
    LatePromiseFirstValue,
    /// An acceptor acknowledges an `Accept` for a slot it knows decided
    /// without comparing the proposed value with the decided one
    /// (`bug-ack-decided-without-compare`).
    AckDecidedWithoutCompare,
    /// A promise that arrives in parts counts toward the quorum as soon as
    /// its first part arrives, before the values reported in the others are
    /// known (`bug-promise-counted-at-first-part`).
    PromiseCountedAtFirstPart,
}

/// The largest window a node accepts (slots in flight at a leader are bounded by
/// it, and it is added to slot numbers).
const WINDOW_MAX: u64 = 1 << 20;

/// Configuration of one node. Every node of a cluster must use the same
/// `window`; the other knobs may differ per node.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id (one incarnation; never 0).
    pub id: NodeId,
    /// PMMC's α: a view change decided in slot `s` governs slots from
    /// `s + window` on, and no slot beyond `executed + window` is proposed.
    pub window: u64,
    /// Proposed-but-undecided slots a leader keeps in flight (≤ `window`).
    pub max_inflight_slots: u64,
    /// Client commands packed into one slot at most.
    pub max_batch_commands: usize,
    /// Bytes of client commands packed into one slot at most (a single
    /// command larger than this still gets a slot of its own).
    pub max_batch_bytes: usize,
    /// Bytes of log entries (by [`Entry::size_bytes`](crate::Entry::size_bytes))
    /// one `Accept`, `Promise` or `CatchupReply` carries at most: a larger
    /// set of entries (a turn's slots, a retransmission, an acceptor's
    /// report) travels in several messages. A single entry larger than this
    /// travels alone, so whatever carries messages must fit the largest
    /// command the caller proposes plus this much.
    pub max_message_bytes: usize,
    /// Commands a leader queues before `propose` answers `Busy`.
    pub max_queued_commands: usize,
    /// Reads waiting for confirmation before `read_index` answers `Busy`.
    pub max_pending_reads: usize,
    /// Ticks between leader heartbeats (and retransmissions).
    pub heartbeat_ticks: u32,
    /// Base election timeout in ticks; the actual timeout is drawn from
    /// `[election_ticks, 2 * election_ticks)`.
    pub election_ticks: u32,
    /// Decided entries sent in one catch-up reply at most.
    pub catchup_entries_max: usize,
    /// Ticks between two catch-up requests of a lagging node.
    pub catchup_retry_ticks: u32,
    /// Bytes of snapshot data per `SnapshotChunk`.
    pub snapshot_chunk_bytes: usize,
    /// Chunks sent in answer to one `SnapshotRequest` (a bounded stream).
    pub snapshot_chunks_per_request: usize,
    /// Decided entries kept below a snapshot's slot when compacting, so that a
    /// peer which installed a slightly older snapshot catches up by log.
    pub log_retain_after_snapshot: u64,
    /// Decided entries kept in memory beyond the last snapshot before
    /// [`Ready::compaction_wanted`](crate::Ready::compaction_wanted) is raised.
    pub log_entries_soft_max: usize,
    /// Bytes of decided entries kept in memory (by
    /// [`Entry::size_bytes`](crate::Entry::size_bytes)) before
    /// [`Ready::compaction_wanted`](crate::Ready::compaction_wanted) is
    /// raised, however few entries that is.
    pub log_bytes_soft_max: usize,
    /// Seed for election jitter; give each node a different one.
    pub seed: u64,
    /// A protocol bug to inject (simulation only).
    #[cfg(feature = "bug-injection")]
    pub injected_bug: Option<InjectedBug>,
}

impl Config {
    /// Defaults suited to a LAN with a 10 ms tick: heartbeats every 50 ms,
    /// elections after 500–1000 ms of silence.
    pub fn new(id: NodeId) -> Self {
        Config {
            id,
            window: 64,
            max_inflight_slots: 64,
            max_batch_commands: 512,
            max_batch_bytes: 1 << 20,
            max_message_bytes: 4 << 20,
            max_queued_commands: 65_536,
            max_pending_reads: 65_536,
            heartbeat_ticks: 5,
            election_ticks: 50,
            catchup_entries_max: 256,
            catchup_retry_ticks: 20,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_chunks_per_request: 8,
            log_retain_after_snapshot: 1_000,
            log_entries_soft_max: 10_000,
            log_bytes_soft_max: 64 << 20,
            seed: id.0,
            #[cfg(feature = "bug-injection")]
            injected_bug: None,
        }
    }

    /// Checks that the knobs are consistent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |what: &str| Err(ConfigError(what.to_string()));
        if self.id == NodeId(0) {
            return fail("node id 0 is reserved; pick a non-zero id");
        }
        if self.window == 0 || self.window > WINDOW_MAX {
            return fail("window must be between 1 and 2^20");
        }
        if self.max_inflight_slots == 0 || self.max_inflight_slots > self.window {
            return fail("max_inflight_slots must be between 1 and window");
        }
        if self.max_batch_commands == 0 || self.max_batch_bytes == 0 {
            return fail("batch limits must be at least 1");
        }
        if self.max_batch_bytes > self.max_message_bytes
            || self.snapshot_chunk_bytes > self.max_message_bytes
        {
            return fail(
                "max_batch_bytes and snapshot_chunk_bytes must not exceed max_message_bytes",
            );
        }
        if self.log_bytes_soft_max <= self.max_message_bytes {
            // Compaction keeps up to one message of entries below a snapshot.
            return fail("log_bytes_soft_max must exceed max_message_bytes");
        }
        if self.max_queued_commands == 0 || self.max_pending_reads == 0 {
            return fail("queue limits must be at least 1");
        }
        if self.heartbeat_ticks == 0 {
            return fail("heartbeat_ticks must be at least 1");
        }
        if self.election_ticks <= 2 * self.heartbeat_ticks {
            return fail("election_ticks must exceed twice heartbeat_ticks");
        }
        if self.catchup_entries_max == 0
            || self.catchup_retry_ticks == 0
            || self.snapshot_chunk_bytes == 0
            || self.snapshot_chunks_per_request == 0
        {
            return fail("catch-up limits must be at least 1");
        }
        Ok(())
    }

    #[cfg(feature = "bug-injection")]
    pub(crate) fn bug(&self, bug: InjectedBug) -> bool {
        self.injected_bug == Some(bug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::new(NodeId(1)).validate().is_ok());
    }

    #[test]
    fn node_id_zero_is_rejected() {
        assert!(Config::new(NodeId(0)).validate().is_err());
    }

    #[test]
    fn election_timeout_must_exceed_heartbeats() {
        let mut c = Config::new(NodeId(1));
        c.election_ticks = c.heartbeat_ticks;
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_batch_or_snapshot_chunk_larger_than_a_message_is_rejected() {
        let mut c = Config::new(NodeId(1));
        c.max_batch_bytes = c.max_message_bytes + 1;
        assert!(c.validate().is_err());
        let mut c = Config::new(NodeId(1));
        c.snapshot_chunk_bytes = c.max_message_bytes + 1;
        assert!(c.validate().is_err());
    }

    #[test]
    fn inflight_cannot_exceed_window() {
        let mut c = Config::new(NodeId(1));
        c.max_inflight_slots = c.window + 1;
        assert!(c.validate().is_err());
    }
}
