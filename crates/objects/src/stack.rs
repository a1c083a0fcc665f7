//! `concoord.object.stack.Stack`: a replicated LIFO stack.

use concoord_macros::object;
pub use concoord_object::ready_made::StackError;
use serde::{Deserialize, Serialize};

/// A stack of text items.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    items: Vec<String>,
}

#[object(
    crate = "concoord_object",
    proxy = false,
    name = "concoord.object.stack.Stack"
)]
impl Stack {
    /// Pushes an item on top.
    pub fn push(&mut self, item: String) {
        self.items.push(item);
    }

    /// The seed's name for `push`.
    pub fn append(&mut self, item: String) {
        self.items.push(item);
    }

    /// Removes and returns the top item.
    pub fn pop(&mut self) -> Result<String, StackError> {
        self.items.pop().ok_or(StackError::Empty)
    }

    /// The top item without removing it.
    pub fn peek(&self) -> Result<String, StackError> {
        self.items.last().cloned().ok_or(StackError::Empty)
    }

    /// Number of items.
    pub fn size(&self) -> u64 {
        self.items.len() as u64
    }

    /// Every item, bottom first.
    pub fn contents(&self) -> Vec<String> {
        self.items.clone()
    }
}
