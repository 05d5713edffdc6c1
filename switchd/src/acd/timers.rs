//! Deadlines of offers, wrap-ups, overflows and skill stages, in one min-heap.
//!
//! Entries are never removed when plans change: each carries the generation of the call or
//! agent it was set for, and is dropped when it fires if that generation has moved on. A stale
//! entry can make [`poll_timeout`](super::Acd::poll_timeout) early, which the contract allows.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use super::agent::AgentId;
use super::call::CallRef;

/// What a deadline is for, with the generation it was set in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// The call's offer times out.
    Offer(CallRef, u64),
    /// The call's next overflow rule applies.
    Overflow(CallRef, u64),
    /// The call reaches its next skill stage (more agents qualify).
    Widen(CallRef, u64),
    /// The agent's wrap-up ends.
    WrapUp(AgentId, u64),
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub(super) fn push(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    /// The earliest deadline, stale or not.
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}
