//! Agents (座席): identity, states (ACD-2, AGT-7), not-ready reasons and the per-agent record
//! the ACD keeps. State changes themselves are made by [`Acd`](super::Acd), which reports each
//! one as [`Output::AgentStateChanged`](super::Output::AgentStateChanged).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::call::CallRef;

/// A desk user's id (the store's user id); one ACD agent per desk login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgentId(pub i64);

impl std::fmt::Display for AgentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "agent {}", self.0)
    }
}

rexian_shared::labelled_enum!(
    /// Why an agent is not ready (临时闭席 reason codes).
    NotReadyReason {
        /// A short break.
        Break => "break", "休息", "break";
        /// In a meeting.
        Meeting => "meeting", "会议", "meeting";
        /// In training.
        Training => "training", "培训", "training";
        /// At a meal.
        Meal => "meal", "用餐", "meal";
        /// Any other reason (also the state right after a login that asked not to be ready).
        Other => "other", "其他", "other";
        /// Set by the ACD after the queue's allowed number of missed offers in a row.
        MissedOffers => "missed_offers", "未接自动置忙", "missed offers";
    }
);

rexian_shared::labelled_enum!(
    /// The kind of an [`AgentState`], without its data (for counts and labels).
    StateKind {
        /// Not logged in to the ACD.
        LoggedOut => "logged_out", "签出", "logged out";
        /// Free to take a call.
        Ready => "ready", "空闲", "ready";
        /// Offered a call (ringing), or reserved for a callback being dialled.
        Reserved => "reserved", "振铃", "ringing";
        /// On a call.
        OnCall => "on_call", "通话", "on call";
        /// After-call work.
        WrapUp => "wrap_up", "话后处理", "wrap-up";
        /// Not ready, with a reason (示忙 / 临时闭席).
        NotReady => "not_ready", "示忙", "not ready";
    }
);

/// An agent's ACD state. An agent is reserved for at most one call, by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    /// Not logged in.
    LoggedOut,
    /// Waiting for a call.
    Ready,
    /// Offered `call` (its desk rings, or switchd dials a callback for it) until `until`.
    Reserved { call: CallRef, until: Instant },
    /// Connected to `call`.
    OnCall { call: CallRef },
    /// After-call work until `until` (or until the agent says it is done).
    WrapUp { until: Instant },
    /// Not ready for `reason`.
    NotReady { reason: NotReadyReason },
}

impl AgentState {
    /// The state's kind.
    pub fn kind(&self) -> StateKind {
        match self {
            AgentState::LoggedOut => StateKind::LoggedOut,
            AgentState::Ready => StateKind::Ready,
            AgentState::Reserved { .. } => StateKind::Reserved,
            AgentState::OnCall { .. } => StateKind::OnCall,
            AgentState::WrapUp { .. } => StateKind::WrapUp,
            AgentState::NotReady { .. } => StateKind::NotReady,
        }
    }

    /// The call the agent is reserved for or connected to.
    pub fn call(&self) -> Option<CallRef> {
        match self {
            AgentState::Reserved { call, .. } | AgentState::OnCall { call } => Some(*call),
            _ => None,
        }
    }
}

/// Who or what caused a state change (stored with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The agent's own desk command.
    Agent,
    /// A supervisor's command (强制置闲/置忙/签出).
    Supervisor { by: AgentId },
    /// The ACD offered the agent a call.
    Routing,
    /// The engine: the call was answered, ended, or the caller left.
    Engine,
    /// An offer or wrap-up time ran out.
    Timeout,
    /// The queue's allowed number of missed offers was reached.
    MissedOffers,
    /// The agent's desk connection was lost.
    Disconnected,
}

/// One queue an agent serves and its place in the agent's order (lower first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The queue's name.
    pub queue: super::QueueId,
    /// The agent's order for this queue: when calls wait in several of its queues, the agent
    /// takes one from the queue with the lowest order first.
    pub order: u8,
}

/// What the agent asked for while on a call, applied when the call is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterCall {
    /// Not ready (after the wrap-up) instead of ready.
    NotReady(NotReadyReason),
    /// Log out as soon as the call ends, for this cause.
    Logout(Cause),
}

/// One queue an agent serves, resolved at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seat {
    /// Queue index.
    pub(super) queue: usize,
    /// The agent's order for it (lower first).
    pub(super) order: u8,
    /// Proficiency in the queue's skill (0 when the queue routes without skills or the agent
    /// lacks the skill).
    pub(super) level: u8,
}

/// The ACD's record of one agent.
#[derive(Debug, Clone)]
pub(super) struct Agent {
    pub(super) state: AgentState,
    /// When the current state began.
    pub(super) since: Instant,
    /// Bumped on every state change; timers carry it to tell they are stale.
    pub(super) gen: u64,
    /// Whether the desk is connected (false after [`Command::Disconnected`](super::Command)).
    pub(super) connected: bool,
    /// Queues served, sorted by order then queue index.
    pub(super) queues: Vec<Seat>,
    /// When the agent last became ready (for longest-idle).
    pub(super) idle_since: Instant,
    /// Offers missed in a row (reset by an answer or by the agent choosing ready).
    pub(super) missed: u32,
    /// Calls answered since the last new day.
    pub(super) answered: u32,
    /// Talk time since the last new day.
    pub(super) talk: Duration,
    /// Queue of the current or last call.
    pub(super) call_queue: Option<usize>,
    /// The current or last call.
    pub(super) last_call: Option<CallRef>,
    pub(super) after_call: Option<AfterCall>,
    /// A desk-to-desk call outside the queues the agent is on (an intercom, or being consulted
    /// for an attended transfer): `OnCall` with it, and never offered a queue call meanwhile.
    pub(super) internal: Option<CallRef>,
}

impl Agent {
    pub(super) fn new(now: Instant) -> Self {
        Agent {
            state: AgentState::LoggedOut,
            since: now,
            gen: 0,
            connected: false,
            queues: Vec::new(),
            idle_since: now,
            missed: 0,
            answered: 0,
            talk: Duration::ZERO,
            call_queue: None,
            last_call: None,
            after_call: None,
            internal: None,
        }
    }

    /// The agent's seat in queue `q`, if it serves it.
    pub(super) fn seat(&self, q: usize) -> Option<&Seat> {
        self.queues.iter().find(|s| s.queue == q)
    }
}
