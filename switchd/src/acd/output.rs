//! What the ACD asks of its driver: ring, stop ringing, dial back, move calls, store state
//! changes and queue events, push queue status.

use std::time::{Duration, Instant};

use super::agent::{AgentId, AgentState, Cause};
use super::call::CallRef;
use super::queue::{OverflowTarget, QueueId};

/// One output of [`Acd::poll_output`](super::Acd::poll_output), in the order things happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Ring `agent`'s desk with `call` until `until` (the ACD times the offer out itself).
    Offer { call: CallRef, agent: AgentId, queue: QueueId, caller: String, until: Instant },
    /// Ring all of `agents` with `call` (ring-all queues); the first answer wins.
    OfferRingAll { call: CallRef, agents: Vec<AgentId>, queue: QueueId, caller: String, until: Instant },
    /// `agent` is reserved for callback `call`: dial `number`, bridge it to the agent, and
    /// report [`Command::OfferAnswered`](super::Command::OfferAnswered) when the caller answers
    /// or [`Command::CallEnded`](super::Command::CallEnded) if they cannot be reached.
    DialCallback { call: CallRef, agent: AgentId, number: String, queue: QueueId, until: Instant },
    /// Stop ringing `agents` for `call` (or stop dialling the callback).
    CancelOffer { call: CallRef, agents: Vec<AgentId>, reason: CancelReason },
    /// Send the call on. For a queue the ACD has moved it already (tell the caller if wanted);
    /// for a mailbox the call has left the ACD; for a callback the caller should be told, asked
    /// to confirm the number, and hung up — the call keeps its place.
    Overflow { call: CallRef, from: QueueId, to: OverflowTarget },
    /// Store this state change (AGT-7: every change timestamped).
    AgentStateChanged { agent: AgentId, from: AgentState, to: AgentState, at: Instant, cause: Cause },
    /// A queue's waiting figures changed: push them to its agents (ACD-5).
    QueueStatus(QueueStatus),
    /// Store this queue event (RPT-4).
    QueueEvent(QueueEvent),
}

/// Why an offer was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// Nobody answered in time.
    Timeout,
    /// Another agent answered first (ring-all).
    AnsweredElsewhere,
    /// The caller hung up or asked for a callback.
    CallerLeft,
    /// The agent logged out, went not ready or lost its connection.
    AgentLeft,
}

/// A queue's waiting figures, for the call-waiting indication (ACD-5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStatus {
    pub queue: QueueId,
    /// Live callers on hold, including those being offered.
    pub waiting: u32,
    /// Callbacks keeping their place.
    pub callbacks: u32,
    /// When the longest-waiting live caller entered the queue (the longest wait is now minus it).
    pub oldest_since: Option<Instant>,
    pub ready_agents: u32,
}

/// One entry of the queue event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEvent {
    pub at: Instant,
    pub call: CallRef,
    pub queue: QueueId,
    pub kind: QueueEventKind,
}

/// What happened to a call in a queue. Waits count from entering this queue; `total_wait`
/// from entering the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueEventKind {
    /// Entered the queue (also by overflow: `overflowed_in`).
    Entered { priority: i32, caller: String, overflowed_in: bool },
    /// Offered to these agents.
    Offered { agents: Vec<AgentId> },
    /// An agent declined or let the offer time out.
    Missed { agent: AgentId },
    /// Answered (for a callback: the caller was reached).
    Answered { agent: AgentId, wait: Duration, total_wait: Duration, callback: bool },
    /// The caller hung up before an answer.
    Abandoned { wait: Duration, total_wait: Duration },
    /// Sent on by an overflow rule or because the queue was closed.
    Overflowed { to: OverflowTarget, wait: Duration },
    /// The caller asked for (or was given) a callback.
    CallbackRequested { number: String },
    /// A callback did not reach the caller, or was cancelled.
    CallbackFailed,
    /// The answered call ended.
    Ended { agent: AgentId, talk: Duration },
    /// The agent's after-call work for this call ended.
    WrapUp { agent: AgentId, duration: Duration },
}
