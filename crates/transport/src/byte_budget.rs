//! Budgets of bytes: how much memory one class of buffers (frames being
//! read, calls waiting for consensus, replies queued for a client) may hold
//! at once, counted in bytes rather than items, since one item may be a few
//! bytes or many MiB.
//!
//! A budget hands out [`Reserved`] bytes, given back when the reservation is
//! dropped. [`ByteBudget::take`] waits for room (back-pressure: a reader
//! stops reading its socket, and TCP slows the sender); [`ByteBudget::try_take`]
//! does not (the caller refuses the work, e.g. with `Busy`).
//!
//! A budget may keep a separate pool for small items, so that small frames
//! (keep-alives, small calls) never queue behind large ones: a flood of
//! large calls cannot starve a client's keep-alives or a small write.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
struct Pool {
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl Pool {
    fn new(capacity: usize) -> Pool {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Pool {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// What to ask this pool for `bytes`: never more than it holds, so a
    /// request can always be granted eventually.
    fn request(&self, bytes: usize) -> u32 {
        bytes.clamp(1, self.capacity).min(u32::MAX as usize) as u32
    }

    fn in_use(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }
}

/// A number of bytes that may be held at once. Cheap to clone; clones share
/// the budget.
#[derive(Clone, Debug)]
pub struct ByteBudget {
    large: Arc<Pool>,
    /// The pool for items of up to `small_item_max` bytes, if any.
    small: Option<(Arc<Pool>, usize)>,
}

/// Bytes taken from a budget, given back on drop.
#[derive(Debug)]
pub struct Reserved {
    _permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Reserved {
    /// A reservation of nothing (for work that needs no budget).
    pub fn nothing() -> Reserved {
        Reserved {
            _permit: None,
            bytes: 0,
        }
    }

    /// The bytes asked for.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl ByteBudget {
    /// A budget of `bytes`, one pool for everything.
    pub fn new(bytes: usize) -> ByteBudget {
        ByteBudget {
            large: Arc::new(Pool::new(bytes)),
            small: None,
        }
    }

    /// A budget of `large_bytes` for items above `small_item_max` bytes and
    /// a separate `small_bytes` for items up to it.
    pub fn with_small_pool(
        large_bytes: usize,
        small_bytes: usize,
        small_item_max: usize,
    ) -> ByteBudget {
        ByteBudget {
            large: Arc::new(Pool::new(large_bytes)),
            small: Some((Arc::new(Pool::new(small_bytes)), small_item_max)),
        }
    }

    fn pool(&self, bytes: usize) -> &Pool {
        match &self.small {
            Some((pool, item_max)) if bytes <= *item_max => pool,
            _ => &self.large,
        }
    }

    /// Takes `bytes` if there is room now.
    pub fn try_take(&self, bytes: usize) -> Option<Reserved> {
        let pool = self.pool(bytes);
        let permit = pool
            .permits
            .clone()
            .try_acquire_many_owned(pool.request(bytes))
            .ok()?;
        Some(Reserved {
            _permit: Some(permit),
            bytes,
        })
    }

    /// Takes `bytes`, waiting for room. A request larger than the whole
    /// budget waits until the budget is entirely free.
    pub async fn take(&self, bytes: usize) -> Reserved {
        let pool = self.pool(bytes);
        // The semaphore is never closed, so acquiring only fails if it were.
        let permit = pool
            .permits
            .clone()
            .acquire_many_owned(pool.request(bytes))
            .await
            .ok();
        Reserved {
            _permit: permit,
            bytes,
        }
    }

    /// Bytes held now, all pools together.
    pub fn in_use(&self) -> usize {
        self.large.in_use() + self.small.as_ref().map_or(0, |(p, _)| p.in_use())
    }

    /// Bytes the budget holds at most, all pools together.
    pub fn capacity(&self) -> usize {
        self.large.capacity + self.small.as_ref().map_or(0, |(p, _)| p.capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bytes_come_back_when_the_reservation_is_dropped() {
        let budget = ByteBudget::new(100);
        let a = budget.try_take(60).expect("room");
        assert!(budget.try_take(50).is_none(), "60 + 50 exceeds 100");
        assert_eq!(budget.in_use(), 60);
        drop(a);
        assert!(budget.try_take(50).is_some());
    }

    #[test]
    fn small_items_have_a_pool_large_ones_cannot_exhaust() {
        let budget = ByteBudget::with_small_pool(100, 10, 4);
        let _large = budget.try_take(100).expect("room");
        assert!(budget.try_take(50).is_none());
        let _small = budget.try_take(4).expect("the small pool is untouched");
        assert_eq!(budget.capacity(), 110);
    }

    #[tokio::test]
    async fn take_waits_for_room_and_a_request_above_the_budget_waits_for_all_of_it() {
        let budget = ByteBudget::new(100);
        let held = budget.try_take(30).expect("room");
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.take(1000).await.bytes() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "waits while anything is held");
        drop(held);
        let got = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("granted once the budget is free")
            .expect("task");
        assert_eq!(got, 1000);
    }
}
