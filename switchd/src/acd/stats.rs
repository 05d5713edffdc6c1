//! Live figures (SUP-1, ACD-5, RPT-4): per-queue counters since the last new day, and the
//! seat-board snapshot.
//!
//! Service level, as computed by [`QueueCounters::service_level`]:
//! `answered within T / (answered + abandoned after T)`, with T the queue's
//! `service_level_secs` (15 s by default) and waits counted from entering *this* queue.
//! Callers who hang up within T are left out (short abandons), and callbacks are not counted
//! (they are in `callbacks_*`). Per-period figures are computed from the
//! [`QueueEvent`](super::QueueEvent) log, which carries every wait and talk time.

use std::time::{Duration, Instant};

use super::agent::{AgentId, AgentState, StateKind};
use super::call::{CallRef, Phase};
use super::queue::QueueId;
use super::Acd;

/// A queue's counters since the last [`Command::NewDay`](super::Command::NewDay).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Calls that entered the queue (first arrivals and overflows in), i.e. offered to it.
    pub entered: u32,
    /// Live calls answered by an agent.
    pub answered: u32,
    /// …of which within the service-level threshold.
    pub answered_within_sl: u32,
    /// Live callers who hung up while waiting or being offered.
    pub abandoned: u32,
    /// …of which after the service-level threshold.
    pub abandoned_after_sl: u32,
    /// Calls sent on by an overflow rule.
    pub overflowed: u32,
    /// Callbacks asked for (by the caller or by an overflow rule).
    pub callbacks_requested: u32,
    /// Callbacks that reached the caller.
    pub callbacks_connected: u32,
    /// Callbacks that did not reach the caller, or were cancelled.
    pub callbacks_failed: u32,
    /// Sum of the waits of answered live calls (for ASA).
    pub wait_answered: Duration,
    /// Calls ended after being answered (for AHT).
    pub handled: u32,
    /// Sum of their talk time.
    pub talk: Duration,
    /// Sum of the wrap-up time after them.
    pub wrap_up: Duration,
}

impl QueueCounters {
    /// Answered within T / (answered + abandoned after T); `None` before any such call.
    pub fn service_level(&self) -> Option<f64> {
        let base = self.answered + self.abandoned_after_sl;
        (base > 0).then(|| f64::from(self.answered_within_sl) / f64::from(base))
    }

    /// Average speed of answer.
    pub fn asa(&self) -> Option<Duration> {
        (self.answered > 0).then(|| self.wait_answered / self.answered)
    }

    /// Abandoned / (answered + abandoned).
    pub fn abandon_rate(&self) -> Option<f64> {
        let base = self.answered + self.abandoned;
        (base > 0).then(|| f64::from(self.abandoned) / f64::from(base))
    }

    /// Average handling time: (talk + wrap-up) / handled.
    pub fn aht(&self) -> Option<Duration> {
        (self.handled > 0).then(|| (self.talk + self.wrap_up) / self.handled)
    }
}

/// Seat counts for the board: serving = reserved, on call or in wrap-up; idle = ready;
/// not ready (closed, 闭席); logged out = agents seen since start who are logged out now
/// (the roster of agents who never logged in is the store's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeatCounts {
    pub serving: u32,
    pub idle: u32,
    pub not_ready: u32,
    pub logged_out: u32,
}

/// One agent on the seat board.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    pub agent: AgentId,
    pub state: AgentState,
    /// When the state began, and how long ago that is.
    pub since: Instant,
    pub in_state: Duration,
    pub call: Option<CallRef>,
    /// The current call's caller number.
    pub caller: Option<String>,
    /// The current (or, in wrap-up, the last) call's queue.
    pub queue: Option<QueueId>,
    pub connected: bool,
    pub missed_offers: u32,
    pub answered_today: u32,
    pub talk_today: Duration,
}

/// One queue on the board.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueView {
    pub queue: QueueId,
    /// Live callers on hold, including those being offered.
    pub waiting: u32,
    /// Callbacks keeping their place.
    pub callbacks: u32,
    /// Calls being offered now.
    pub offering: u32,
    /// The longest current wait of a live caller in this queue.
    pub longest_wait: Option<Duration>,
    pub ready_agents: u32,
    pub logged_in_agents: u32,
    pub counters: QueueCounters,
    pub service_level: Option<f64>,
}

/// The seat board at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub at: Instant,
    pub seats: SeatCounts,
    /// By agent id.
    pub agents: Vec<AgentView>,
    /// In configuration order.
    pub queues: Vec<QueueView>,
}

impl Acd {
    /// The agents logged in now, without building a snapshot.
    pub fn logged_in_agents(&self) -> impl Iterator<Item = AgentId> + '_ {
        self.agents.iter().filter(|(_, a)| a.state != AgentState::LoggedOut).map(|(id, _)| *id)
    }

    /// The seat board (SUP-1) at `now`. Costs one pass over agents and calls.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut seats = SeatCounts::default();
        let mut agents: Vec<AgentView> = self.agents.iter().map(|(id, a)| {
            match a.state.kind() {
                StateKind::Reserved | StateKind::OnCall | StateKind::WrapUp => seats.serving += 1,
                StateKind::Ready => seats.idle += 1,
                StateKind::NotReady => seats.not_ready += 1,
                StateKind::LoggedOut => seats.logged_out += 1,
            }
            let call = a.state.call();
            AgentView {
                agent: *id,
                state: a.state,
                since: a.since,
                in_state: now.saturating_duration_since(a.since),
                call,
                caller: call.and_then(|c| self.calls.get(&c)).map(|c| c.caller.clone()),
                queue: a.call_queue.filter(|_| call.is_some() || a.state.kind() == StateKind::WrapUp)
                    .map(|q| self.queues[q].cfg.name.clone()),
                connected: a.connected,
                missed_offers: a.missed,
                answered_today: a.answered,
                talk_today: a.talk,
            }
        }).collect();
        agents.sort_by_key(|v| v.agent);
        let queues = (0..self.queues.len()).map(|q| self.queue_view(q, now)).collect();
        Snapshot { at: now, seats, agents, queues }
    }

    fn queue_view(&self, q: usize, now: Instant) -> QueueView {
        let queue = &self.queues[q];
        let (waiting, callbacks, oldest) = self.waiting_figures(q);
        let logged_in = self.agents.values().filter(|a| {
            a.state != AgentState::LoggedOut && a.seat(q).is_some()
        });
        QueueView {
            queue: queue.cfg.name.clone(),
            waiting,
            callbacks,
            offering: queue.offering as u32,
            longest_wait: oldest.map(|t| now.saturating_duration_since(t)),
            ready_agents: self.ready_in(q),
            logged_in_agents: logged_in.count() as u32,
            counters: queue.counters,
            service_level: queue.counters.service_level(),
        }
    }

    /// Live callers waiting (held or offered), callbacks waiting, and the earliest queue entry
    /// of a live caller.
    pub(super) fn waiting_figures(&self, q: usize) -> (u32, u32, Option<Instant>) {
        let (mut live, mut callbacks, mut oldest) = (0u32, 0u32, None::<Instant>);
        let queue = &self.queues[q];
        let held = queue.waiting.values().copied();
        let offered = self.offered.iter().filter_map(|c| self.calls.get(c).map(|call| (c, call)));
        let offered = offered.filter(|(_, c)| c.queue == q).map(|(id, c)| c.waiter(*id));
        for w in held.chain(offered) {
            if w.callback {
                callbacks += 1;
                continue;
            }
            live += 1;
            oldest = Some(oldest.map_or(w.entered, |o: Instant| o.min(w.entered)));
        }
        (live, callbacks, oldest)
    }

    /// Ready agents who serve queue `q`.
    pub(super) fn ready_in(&self, q: usize) -> u32 {
        let serves = |id: &AgentId| self.agents.get(id).is_some_and(|a| a.seat(q).is_some());
        self.ready.iter().filter(|id| serves(id)).count() as u32
    }

    /// The 1-based position of a waiting call in its queue (callbacks included), for position
    /// announcements; `None` unless the call is waiting.
    pub fn position(&self, call: CallRef) -> Option<usize> {
        let c = self.calls.get(&call).filter(|c| c.phase == Phase::Waiting)?;
        let queue = self.queues.get(c.queue)?;
        Some(queue.waiting.range(..c.key()).count() + 1)
    }

    /// A waiting call's place and estimated wait: the calls ahead of it (and itself) shared
    /// among the agents logged in to its queue, each taking today's average handling time
    /// (talk and wrap-up; [`DEFAULT_HANDLE_TIME`] before the first call is handled). A rough
    /// figure for the caller ("about three minutes"), as call centres announce it.
    pub fn estimated_wait(&self, call: CallRef) -> Option<(usize, Duration)> {
        let place = self.position(call)?;
        let q = self.calls.get(&call)?.queue;
        let queue = self.queues.get(q)?;
        let agents = self.agents.values().filter(|a| a.state != AgentState::LoggedOut && a.seat(q).is_some()).count();
        let handle = queue.counters.aht().unwrap_or(DEFAULT_HANDLE_TIME);
        Some((place, handle * place as u32 / agents.max(1) as u32))
    }
}

/// The handling time assumed before a queue has handled a call today.
pub const DEFAULT_HANDLE_TIME: Duration = Duration::from_secs(180);
