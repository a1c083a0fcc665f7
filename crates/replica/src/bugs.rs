//! Bugs a simulation can switch on (feature `bug-injection`), to show that
//! the replica simulation (`concoord-replica-sim`) catches each. Without the
//! feature nothing is ever injected and the checks compile to `false`.

/// A bug to inject into this thread's replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaBug {
    /// A restarting replica skips recovery: it keeps its identity and views
    /// but forgets its promises, acceptances and decisions.
    Amnesia,
    /// The log is written but never synced, so a promise or an acceptance
    /// is acknowledged before it is durable.
    MissingFsync,
    /// The driver drops a wake-up reply of a blocked call now and then (one
    /// in eight), as it does when the connection's reply queue is full.
    DroppedWakeUp,
}

#[cfg(feature = "bug-injection")]
thread_local! {
    static INJECTED: std::cell::Cell<Option<ReplicaBug>> = const { std::cell::Cell::new(None) };
}

/// Switches `bug` on (or every bug off) for the replicas this thread runs.
#[cfg(feature = "bug-injection")]
pub fn inject(bug: Option<ReplicaBug>) {
    INJECTED.with(|b| b.set(bug));
}

/// Whether `bug` is switched on.
pub(crate) fn injected(bug: ReplicaBug) -> bool {
    #[cfg(feature = "bug-injection")]
    {
        INJECTED.with(|b| b.get() == Some(bug))
    }
    #[cfg(not(feature = "bug-injection"))]
    {
        let _ = bug;
        false
    }
}

/// Whether `bug`, which strikes one time in eight, strikes now (drawn from
/// `concoord_transport::determinism`, so a simulation replays it).
pub(crate) fn strikes(bug: ReplicaBug) -> bool {
    #[cfg(feature = "bug-injection")]
    {
        injected(bug) && concoord_transport::determinism::random::<u8>().is_multiple_of(8)
    }
    #[cfg(not(feature = "bug-injection"))]
    {
        let _ = bug;
        false
    }
}
