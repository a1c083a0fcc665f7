//! What a replica counts for Prometheus (`--metrics-addr`), kept apart from
//! how it is served (`metrics_server`) so the driver only touches atomics.
//!
//! The driver owns every number and is the only writer: histograms and
//! counters of events (a commit, a batch, a sync, a snapshot, bytes to and
//! from a peer) are recorded where they happen; gauges of state (role,
//! slots, queues, sessions) are copied at most every [`REFRESH`], because
//! some of them (blocked calls) cost a scan. A scrape reads the atomics and
//! never waits for the driver.
//!
//! Cost, back of the envelope: a turn records a few relaxed atomic adds per
//! committed batch and per peer message (a `HashMap` lookup for the peer's
//! counters, created once per peer); the refresh is ~20 stores per 250 ms.
//! The encoded page is ~10 KB for a 5-member view.

use paxos_core::NodeId;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the driver copies its state gauges.
pub const REFRESH: Duration = Duration::from_millis(250);

/// Log lines dropped since the process started (one process, one logger).
/// The network logger of the command line (`-l`) counts here, so the
/// runtime exports the count without knowing the logger.
static LOG_LINES_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Counts one log line the network logger dropped.
pub fn count_log_line_dropped() {
    LOG_LINES_DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// Log lines the network logger dropped so far.
pub fn log_lines_dropped() -> u64 {
    LOG_LINES_DROPPED.load(Ordering::Relaxed)
}

/// Label set of the per-peer and per-role families: `(name, value)` pairs.
pub type Labels = Vec<(String, String)>;

/// The roles of the `concoord_role` gauge family, one of which is 1.
pub const ROLES: [&str; 4] = ["follower", "pre-candidate", "candidate", "leader"];

/// Every metric a replica exports, registered under the prefix `concoord`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// 1 for the role this replica is in, 0 for the others.
    pub role: Family<Labels, Gauge>,
    /// Round of the highest ballot promised.
    pub ballot_round: Gauge,
    /// Every slot up to here is decided.
    pub decided_slot: Gauge,
    /// Every slot up to here is executed.
    pub executed_slot: Gauge,
    /// Highest commit point heard.
    pub known_commit_slot: Gauge,
    /// Decided entries held in memory.
    pub log_entries: Gauge,
    /// Epoch of the view in force.
    pub view_epoch: Gauge,
    /// Members of the view in force.
    pub view_members: Gauge,
    /// Client connections open now.
    pub clients_connected: Gauge,
    /// Live client sessions.
    pub client_sessions: Gauge,
    /// Calls blocked in the object (waiting for a lock, permit, ...).
    pub blocked_calls: Gauge,
    /// Writes waiting for their slot to execute.
    pub writes_waiting: Gauge,
    /// Reads waiting for their read index.
    pub reads_waiting: Gauge,
    /// Events queued from the network for the driver.
    pub event_queue_depth: Gauge,
    /// Bytes held in the replica's bounded buffers.
    pub budget_bytes_in_use: Gauge,
    /// Client calls executed.
    pub commands_executed: Counter,
    /// Calls answered `Busy` (calls budget full).
    pub calls_refused_busy: Counter,
    /// Seconds from proposing a write (at the leader) to executing it.
    pub commit_latency_seconds: Histogram,
    /// Commands per decided slot.
    pub batch_commands: Histogram,
    /// Syncs of the log.
    pub fsyncs: Counter,
    /// Seconds per sync of the log (one per turn that wrote).
    pub fsync_seconds: Histogram,
    /// Seconds from a turn's records staged to their sync done: the wait
    /// for the sync job before it, then its own (what a vote waits).
    pub sync_wait_seconds: Histogram,
    /// Bytes of log and snapshot on disk.
    pub disk_bytes: Gauge,
    /// Bytes of the last snapshot taken or installed.
    pub snapshot_bytes: Gauge,
    /// Seconds to take a snapshot (serialize the object and compact).
    pub snapshot_seconds: Histogram,
    /// Bytes received from each peer (frames).
    pub peer_bytes_in: Family<Labels, Counter>,
    /// Bytes queued for each peer (messages).
    pub peer_bytes_out: Family<Labels, Counter>,
    /// Peer messages dropped by the guard or refused by the core.
    pub peer_messages_dropped: Counter,
    /// Connections refused at the handshake.
    pub connections_refused: Counter,
    /// Log lines the network logger (`-l`) dropped.
    pub log_lines_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("concoord");
        let m = Metrics {
            role: Family::default(),
            ballot_round: Gauge::default(),
            decided_slot: Gauge::default(),
            executed_slot: Gauge::default(),
            known_commit_slot: Gauge::default(),
            log_entries: Gauge::default(),
            view_epoch: Gauge::default(),
            view_members: Gauge::default(),
            clients_connected: Gauge::default(),
            client_sessions: Gauge::default(),
            blocked_calls: Gauge::default(),
            writes_waiting: Gauge::default(),
            reads_waiting: Gauge::default(),
            event_queue_depth: Gauge::default(),
            budget_bytes_in_use: Gauge::default(),
            commands_executed: Counter::default(),
            calls_refused_busy: Counter::default(),
            // 100 us .. ~6.5 s
            commit_latency_seconds: Histogram::new(exponential_buckets(1e-4, 2.0, 17)),
            // 1 .. 4096 commands
            batch_commands: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            fsyncs: Counter::default(),
            // 10 us .. ~0.6 s
            fsync_seconds: Histogram::new(exponential_buckets(1e-5, 2.0, 17)),
            sync_wait_seconds: Histogram::new(exponential_buckets(1e-5, 2.0, 17)),
            disk_bytes: Gauge::default(),
            snapshot_bytes: Gauge::default(),
            // 100 us .. ~6.5 s
            snapshot_seconds: Histogram::new(exponential_buckets(1e-4, 2.0, 17)),
            peer_bytes_in: Family::default(),
            peer_bytes_out: Family::default(),
            peer_messages_dropped: Counter::default(),
            connections_refused: Counter::default(),
            log_lines_dropped: Counter::default(),
            registry: Registry::default(),
        };
        for role in ROLES {
            m.role.get_or_create(&label("role", role)).set(0);
        }
        let r = &mut registry;
        r.register("role", "1 for this replica's role", m.role.clone());
        r.register(
            "ballot_round",
            "Round of the highest ballot promised",
            m.ballot_round.clone(),
        );
        r.register(
            "decided_slot",
            "Every slot up to here is decided",
            m.decided_slot.clone(),
        );
        r.register(
            "executed_slot",
            "Every slot up to here is executed",
            m.executed_slot.clone(),
        );
        r.register(
            "known_commit_slot",
            "Highest commit point heard",
            m.known_commit_slot.clone(),
        );
        r.register(
            "log_entries",
            "Decided entries held in memory",
            m.log_entries.clone(),
        );
        r.register(
            "view_epoch",
            "Epoch of the view in force",
            m.view_epoch.clone(),
        );
        r.register(
            "view_members",
            "Members of the view in force",
            m.view_members.clone(),
        );
        r.register(
            "clients_connected",
            "Client connections open",
            m.clients_connected.clone(),
        );
        r.register(
            "client_sessions",
            "Live client sessions",
            m.client_sessions.clone(),
        );
        r.register(
            "blocked_calls",
            "Calls blocked in the object",
            m.blocked_calls.clone(),
        );
        r.register(
            "writes_waiting",
            "Writes waiting to execute",
            m.writes_waiting.clone(),
        );
        r.register(
            "reads_waiting",
            "Reads waiting for their index",
            m.reads_waiting.clone(),
        );
        r.register(
            "event_queue_depth",
            "Network events queued for the driver",
            m.event_queue_depth.clone(),
        );
        r.register(
            "budget_bytes_in_use",
            "Bytes held in the bounded buffers (frames, calls, replies)",
            m.budget_bytes_in_use.clone(),
        );
        r.register(
            "commands_executed",
            "Client calls executed",
            m.commands_executed.clone(),
        );
        r.register(
            "calls_refused_busy",
            "Calls answered Busy",
            m.calls_refused_busy.clone(),
        );
        r.register(
            "commit_latency_seconds",
            "From proposing a write at the leader to executing it",
            m.commit_latency_seconds.clone(),
        );
        r.register(
            "batch_commands",
            "Commands per decided slot",
            m.batch_commands.clone(),
        );
        r.register("fsyncs", "Syncs of the log", m.fsyncs.clone());
        r.register(
            "fsync_seconds",
            "Duration of a sync of the log",
            m.fsync_seconds.clone(),
        );
        r.register(
            "sync_wait_seconds",
            "From a turn's records staged to their sync done (queue and sync)",
            m.sync_wait_seconds.clone(),
        );
        r.register(
            "disk_bytes",
            "Bytes of log and snapshot on disk",
            m.disk_bytes.clone(),
        );
        r.register(
            "snapshot_bytes",
            "Bytes of the last snapshot",
            m.snapshot_bytes.clone(),
        );
        r.register(
            "snapshot_seconds",
            "Duration of taking a snapshot",
            m.snapshot_seconds.clone(),
        );
        r.register(
            "peer_bytes_in",
            "Bytes received from a peer",
            m.peer_bytes_in.clone(),
        );
        r.register(
            "peer_bytes_out",
            "Bytes queued for a peer",
            m.peer_bytes_out.clone(),
        );
        r.register(
            "peer_messages_dropped",
            "Peer messages dropped or refused",
            m.peer_messages_dropped.clone(),
        );
        r.register(
            "connections_refused",
            "Connections refused at the handshake",
            m.connections_refused.clone(),
        );
        r.register(
            "log_lines_dropped",
            "Log lines the network logger dropped (daemon slow or gone)",
            m.log_lines_dropped.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The page a scrape gets, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut page = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut page, &self.registry);
        page
    }

    /// Sets the role family: 1 for `now`, 0 for the others.
    pub fn set_role(&self, now: &str) {
        for role in ROLES {
            let value = i64::from(role == now);
            self.role.get_or_create(&label("role", role)).set(value);
        }
    }
}

/// Raises `counter` to `total` (a running total kept elsewhere).
pub fn advance(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

/// A gauge value from an unsigned figure (saturating).
pub fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// One label.
pub fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_string(), value.to_string())]
}

/// Each peer's byte counters, looked up in the families once per peer.
#[derive(Default)]
pub struct PeerCounters {
    counters: HashMap<NodeId, (Counter, Counter)>,
}

impl PeerCounters {
    /// The (in, out) counters of `peer`, labelled with `addr` (its node id
    /// while its address is unknown; such counters are not cached).
    pub fn get(
        &mut self,
        metrics: &Metrics,
        peer: NodeId,
        addr: Option<&str>,
    ) -> (Counter, Counter) {
        if let Some(c) = self.counters.get(&peer) {
            return c.clone();
        }
        let name = addr.map_or_else(|| peer.to_string(), str::to_string);
        let labels = label("peer", &name);
        let c = (
            metrics.peer_bytes_in.get_or_create_owned(&labels),
            metrics.peer_bytes_out.get_or_create_owned(&labels),
        );
        if addr.is_some() {
            self.counters.insert(peer, c.clone());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_lists_every_metric_with_the_prefix() {
        let m = Metrics::new();
        m.set_role("leader");
        m.commands_executed.inc_by(3);
        m.commit_latency_seconds.observe(0.002);
        let page = m.encode();
        assert!(page.contains("concoord_role{role=\"leader\"} 1"), "{page}");
        assert!(
            page.contains("concoord_role{role=\"follower\"} 0"),
            "{page}"
        );
        assert!(
            page.contains("concoord_commands_executed_total 3"),
            "{page}"
        );
        assert!(
            page.contains("concoord_commit_latency_seconds_count 1"),
            "{page}"
        );
        assert!(page.ends_with("# EOF\n"), "{page}");
    }

    #[test]
    fn advance_only_raises_a_counter() {
        let c = Counter::default();
        advance(&c, 5);
        advance(&c, 3);
        assert_eq!(c.get(), 5);
    }
}
