//! What the ACD is told: desk commands, supervisor commands and engine events, and the errors
//! it answers with.

use super::agent::{AgentId, Membership, NotReadyReason};
use super::call::CallRef;
use super::queue::QueueId;

/// One input to [`Acd::handle_command`](super::Acd::handle_command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The agent logs in to these queues with these skills (name → proficiency 1..=5), ready
    /// or not ready for `not_ready`. Logging in again while logged in replaces queues and
    /// skills, keeps the state and cancels a logout waiting for the current call to end; after
    /// a lost connection it re-attaches the desk (an agent still on a call stays on it).
    Login { agent: AgentId, queues: Vec<Membership>, skills: Vec<(String, u8)>, not_ready: Option<NotReadyReason> },
    /// The agent logs out; while on a call, as soon as the call ends. An offer it holds goes
    /// back to the queue.
    Logout { agent: AgentId },
    /// Ready (示闲); from wrap-up it ends the wrap-up; on a call it cancels a pending not-ready.
    SetReady { agent: AgentId },
    /// Not ready (示忙); on a call it takes effect after the call's wrap-up. An offer the agent
    /// holds goes back to the queue without counting as missed.
    SetNotReady { agent: AgentId, reason: NotReadyReason },
    /// The agent finished after-call work early.
    WrapUpDone { agent: AgentId },
    /// The agent's desk connection was lost: an offer goes back to the queue at its place and
    /// the agent is logged out; an agent on a call stays on it until [`Command::CallEnded`],
    /// then is logged out unless it logged in again meanwhile.
    Disconnected { agent: AgentId },
    /// A supervisor sets an agent ready (强制示闲).
    ForceReady { agent: AgentId, by: AgentId },
    /// A supervisor sets an agent not ready (强制示忙).
    ForceNotReady { agent: AgentId, by: AgentId, reason: NotReadyReason },
    /// A supervisor logs an agent out (强制签出).
    ForceLogout { agent: AgentId, by: AgentId },
    /// A call enters `queue` (e.g. the caller pressed 0 in the IVR). `priority`: higher goes
    /// first, equal in arrival order. `open` is the caller's decision from business hours and
    /// the calendar; closed queues send the call to their `when_closed` target.
    Enter { call: CallRef, queue: QueueId, priority: i32, caller: String, open: bool },
    /// An agent handed its caller on (AGT-3; the call's [`Command::CallEnded`] came first, so
    /// that agent is in wrap-up): the call enters `queue` with `priority` (above new arrivals)
    /// and, with `agent`, is offered to that agent at once — who must be ready. An offer the
    /// agent misses returns the call to its place in `queue`, so the caller is never lost.
    Transfer { call: CallRef, queue: QueueId, priority: i32, caller: String, agent: Option<AgentId> },
    /// The caller hung up while waiting or being offered.
    Abandon { call: CallRef },
    /// The caller asked to be called back on `number` and hangs up; the call keeps its place.
    /// The caller's leg ending afterwards is not reported.
    RequestCallback { call: CallRef, number: String },
    /// The agent's desk answered the offer; for a callback, the caller answered switchd's dial.
    OfferAnswered { call: CallRef, agent: AgentId },
    /// The agent declined the offer, or its desk could not be reached; counts as missed. For a
    /// callback the driver stops its dial; the callback goes back to its place.
    OfferDeclined { call: CallRef, agent: AgentId },
    /// The call ended, whatever its state (for a callback being dialled: the caller was not
    /// reached). A connected agent goes to wrap-up.
    CallEnded { call: CallRef },
    /// A ready agent takes part in a desk-to-desk call outside the queues (SUP-3's intercom, or
    /// being consulted for an attended transfer, AGT-2): on call with `call` and offered no
    /// queue call until [`Command::InternalCallEnded`]. Refused unless the agent is ready.
    InternalCall { agent: AgentId, call: CallRef },
    /// That desk-to-desk call is over for the agent: ready again (or what the agent asked for
    /// meanwhile: not ready, logged out), without wrap-up. Nothing changes when the agent is no
    /// longer on it (e.g. the call was handed to the agent and ended with its wrap-up).
    InternalCallEnded { agent: AgentId, call: CallRef },
    /// The desk party of connected queue call `call` changes to `to` (an attended transfer
    /// completed, or a supervisor took the call over, SUP-2): the agent connected so far ends
    /// its part (counted, wrap-up); `to`, when ready or on `call` internally, is on call with
    /// it from now; otherwise (not logged in to the queues, busy) the call leaves the ACD.
    HandOver { call: CallRef, to: AgentId },
    /// Midnight (or the start of a shift): queue counters and agents' daily figures restart.
    NewDay,
}

/// Why a command was refused. The ACD's state is unchanged by a refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcdError {
    /// No queue has this name.
    #[error("没有此队列 / no such queue: {0}")]
    UnknownQueue(QueueId),
    /// The agent never logged in since the ACD started.
    #[error("没有此座席 / unknown agent: {0}")]
    UnknownAgent(AgentId),
    /// The agent is logged out.
    #[error("座席未签入 / {0} is not logged in")]
    NotLoggedIn(AgentId),
    /// A proficiency is outside 1..=5.
    #[error("技能等级应为1至5 / skill {skill} level {level} is not in 1..=5")]
    InvalidSkillLevel { skill: String, level: u8 },
    /// The call is tracked already.
    #[error("来电已在排队 / {0} is already queued")]
    CallExists(CallRef),
    /// The ACD does not track this call.
    #[error("没有此来电 / unknown {0}")]
    UnknownCall(CallRef),
    /// The call is connected to an agent, so it cannot be abandoned or turned into a callback.
    #[error("来电不在排队中 / {0} is not waiting")]
    CallNotWaiting(CallRef),
    /// The agent is logged in but not ready (on a call, ringing, wrap-up, not ready).
    #[error("座席忙 / {0} is busy")]
    AgentBusy(AgentId),
    /// The agent holds no offer of this call.
    #[error("座席没有此来电的振铃 / {agent} holds no offer of {call}")]
    NoSuchOffer { call: CallRef, agent: AgentId },
    /// The queue is closed and has no `when_closed` target.
    #[error("队列非服务时间 / queue {0} is closed")]
    QueueClosed(QueueId),
    /// The call is tracked but no agent is connected to it.
    #[error("来电未接通 / {0} is not connected")]
    CallNotConnected(CallRef),
    /// The ACD task is gone (switchd is stopping).
    #[error("排队服务已停止 / the ACD has stopped")]
    Stopped,
}
