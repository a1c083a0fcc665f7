//! `concoord.object.queue.Queue`: a replicated FIFO queue with an optional
//! capacity, after Python's `queue.Queue(maxsize)`.

use concoord_macros::object;
pub use concoord_object::ready_made::QueueError;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A FIFO queue of text items.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    items: VecDeque<String>,
    /// 0 means unbounded.
    capacity: u64,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.queue.Queue"
)]
impl Queue {
    /// `concoord_init(capacity)`: an empty queue holding at most `capacity`
    /// items (0: unbounded, the default).
    #[concoord(init)]
    pub fn with_capacity(capacity: u64) -> Queue {
        Queue {
            items: VecDeque::new(),
            capacity,
        }
    }

    /// Adds an item at the back.
    pub fn put(&mut self, item: String) -> Result<(), QueueError> {
        if self.capacity > 0 && self.items.len() as u64 >= self.capacity {
            return Err(QueueError::Full {
                capacity: self.capacity,
            });
        }
        self.items.push_back(item);
        Ok(())
    }

    /// Removes and returns the front item.
    pub fn get(&mut self) -> Result<String, QueueError> {
        self.items.pop_front().ok_or(QueueError::Empty)
    }

    /// Number of items.
    pub fn qsize(&self) -> u64 {
        self.items.len() as u64
    }

    /// Whether the queue is empty.
    pub fn empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the queue is at capacity.
    pub fn full(&self) -> bool {
        self.capacity > 0 && self.items.len() as u64 >= self.capacity
    }
}
