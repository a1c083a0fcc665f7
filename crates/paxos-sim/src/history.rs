//! The client history: every operation with its invocation and completion time.

/// What a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// Add one to counter `key`; returns the new value.
    Increment {
        /// Which counter.
        key: u8,
    },
    /// Read counter `key`.
    Read {
        /// Which counter.
        key: u8,
    },
}

impl OpKind {
    /// The counter the operation touches.
    pub fn key(self) -> u8 {
        match self {
            OpKind::Increment { key } | OpKind::Read { key } => key,
        }
    }
}

/// One operation as a client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Issuing client.
    pub client: u64,
    /// The client's sequence number for it.
    pub seq: u64,
    /// What was asked.
    pub kind: OpKind,
    /// Tick of the first send.
    pub invoked: u64,
    /// Tick and result of the reply, or `None` if it never came: the operation
    /// may or may not have taken effect ("unknown", never "absent").
    pub completed: Option<(u64, i64)>,
}

/// All operations of a run.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// Records an invocation; returns its index.
    pub fn invoke(&mut self, client: u64, seq: u64, kind: OpKind, now: u64) -> usize {
        self.ops.push(Operation {
            client,
            seq,
            kind,
            invoked: now,
            completed: None,
        });
        self.ops.len() - 1
    }

    /// Records the reply to operation `index`.
    pub fn complete(&mut self, index: usize, now: u64, value: i64) {
        if let Some(op) = self.ops.get_mut(index) {
            debug_assert!(op.completed.is_none());
            op.completed = Some((now, value));
        }
    }

    /// All operations.
    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }
}
