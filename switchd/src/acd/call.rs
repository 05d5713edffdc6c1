//! Calls as the ACD sees them: where each one is (waiting, offered, connected) and what it
//! carries for routing. A call the ACD no longer tracks is gone (answered and ended, abandoned,
//! sent to a mailbox, or a failed callback).

use std::cmp::Reverse;
use std::time::Instant;

use super::agent::AgentId;

/// The engine's call id for the caller's leg (or, for a callback, the id the call had when
/// it entered the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

impl std::fmt::Display for CallRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call {}", self.0)
    }
}

/// Order in a queue: higher caller priority first, then arrival order.
pub(super) type WaitKey = (Reverse<i32>, u64);

/// Where a tracked call is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// In its queue's waiting list (a live caller on hold, or a callback keeping its place).
    Waiting,
    /// Offered to `agents` (all reserved for it) until `until`.
    Offered { agents: Vec<AgentId>, until: Instant },
    /// Connected to `agent` since `since`.
    Connected { agent: AgentId, since: Instant },
}

/// The ACD's record of one call.
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// Index of the queue the call is in now.
    pub(super) queue: usize,
    pub(super) priority: i32,
    /// The caller's number, as the engine gave it.
    pub(super) caller: String,
    /// Arrival order across the ACD; kept through overflows and returned offers.
    pub(super) seq: u64,
    /// When the call first entered any queue.
    pub(super) first_entered: Instant,
    /// When the call entered its current queue (overflow and skill stages count from here).
    pub(super) queue_entered: Instant,
    pub(super) phase: Phase,
    /// Bumped on every phase change; timers carry it to tell they are stale.
    pub(super) gen: u64,
    /// The number to dial back, once the caller asked for a callback (the caller has hung up).
    pub(super) callback: Option<String>,
    /// Agents who missed or declined this call; they go last in every later choice.
    pub(super) tried: Vec<AgentId>,
    /// Index of the next overflow rule of the current queue to apply.
    pub(super) next_rule: usize,
}

impl Call {
    /// The call's place in its queue.
    pub(super) fn key(&self) -> WaitKey {
        (Reverse(self.priority), self.seq)
    }

    /// The call's entry in its queue's waiting list.
    pub(super) fn waiter(&self, id: CallRef) -> super::queue::Waiter {
        super::queue::Waiter { call: id, entered: self.queue_entered, callback: self.callback.is_some() }
    }

    /// The offered agents, if the call is offered.
    pub(super) fn offered_to(&self) -> &[AgentId] {
        match &self.phase {
            Phase::Offered { agents, .. } => agents,
            _ => &[],
        }
    }
}
