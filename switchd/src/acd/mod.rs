//! ACD (automatic call distribution, 自动排队分配): the one owner of queue and agent state
//! (DESIGN decision 4), as a sans-IO state machine. It reads no clock, owns no socket, touches
//! no store and spawns nothing; an actor task feeds it desk commands and engine events and
//! carries out what it asks. See [`Acd`] for the usage contract.
//!
//! Files: `agent` (agent ids, states, reasons), `call` (calls and where they are), `queue`
//! (queue configuration and waiting lists), `strategy` (agent order per strategy), `routing`
//! (matching waiting calls to free agents), `agent_cmds` / `call_cmds` (what each command
//! does), `timers`, `stats` (counters and the seat board), `command` / `output` (the API's
//! enums).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod actor;
mod agent;
mod agent_cmds;
mod call;
mod call_cmds;
mod command;
mod internal;
mod output;
mod queue;
mod routing;
mod stats;
mod strategy;
mod timers;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod sim_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use agent::{AgentId, AgentState, Cause, Membership, NotReadyReason, StateKind};
pub use call::CallRef;
pub use command::{AcdError, Command};
pub use output::{CancelReason, Output, QueueEvent, QueueEventKind, QueueStatus};
pub use queue::{AcdConfig, ConfigError, OverflowRule, OverflowTarget, QueueConfig, QueueId, SkillStage, Strategy};
pub use stats::{AgentView, QueueCounters, QueueView, SeatCounts, Snapshot};

use agent::Agent;
use call::Call;
use queue::Queue;
use timers::{Timer, Timers};

/// Rounds of firing timers and routing within one `handle_*` call; one or two suffice (an
/// overflow to a queue restarts its waiting time, so a rule cannot fire twice in one instant).
const MAX_SETTLE_ROUNDS: usize = 16;

/// The automatic call distributor.
///
/// # Usage contract
///
/// * Time comes only from the `now` arguments. They must not go backwards; an earlier `now`
///   than one seen before is taken as the latest seen.
/// * Feed every desk command, supervisor command and engine event with
///   [`handle_command`](Self::handle_command). A refused command returns an [`AcdError`] and
///   changes nothing; no input makes it panic.
/// * After **every** `handle_*` call, drain [`poll_output`](Self::poll_output) until `None`
///   and carry the outputs out in order, then arm a timer for
///   [`poll_timeout`](Self::poll_timeout) and call [`handle_timeout`](Self::handle_timeout)
///   when the clock reaches it (early or extra calls are harmless). After any `handle_*`,
///   `poll_timeout` is later than its `now`.
/// * Report the fate of every offer: [`Command::OfferAnswered`], [`Command::OfferDeclined`],
///   or nothing (the ACD times it out and says [`Output::CancelOffer`]). Report every call's
///   end with [`Command::Abandon`] or [`Command::CallEnded`], except a caller's hang-up after
///   [`Command::RequestCallback`] or an [`Output::Overflow`] to a callback or mailbox.
/// * Every reserved agent and offered call has a deadline that returns it, so nothing stays
///   reserved if a report is lost.
#[derive(Debug)]
pub struct Acd {
    queues: Vec<Queue>,
    by_name: HashMap<QueueId, usize>,
    agents: HashMap<AgentId, Agent>,
    /// Agents in [`AgentState::Ready`].
    ready: BTreeSet<AgentId>,
    calls: HashMap<CallRef, Call>,
    /// Calls being offered.
    offered: BTreeSet<CallRef>,
    timers: Timers,
    outputs: VecDeque<Output>,
    next_seq: u64,
    now: Option<Instant>,
}

impl Acd {
    /// An ACD with these queues, no agents and no calls.
    pub fn new(config: AcdConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let by_name = config.queues.iter().enumerate().map(|(i, q)| (q.name.clone(), i)).collect();
        Ok(Acd {
            queues: config.queues.into_iter().map(Queue::new).collect(),
            by_name,
            agents: HashMap::new(),
            ready: BTreeSet::new(),
            calls: HashMap::new(),
            offered: BTreeSet::new(),
            timers: Timers::default(),
            outputs: VecDeque::new(),
            next_seq: 0,
            now: None,
        })
    }

    /// Applies one command at `now`, then fires due deadlines and routes.
    pub fn handle_command(&mut self, now: Instant, cmd: Command) -> Result<(), AcdError> {
        let now = self.clock(now);
        let result = self.apply(now, cmd);
        self.settle(now);
        result
    }

    /// Fires the deadlines due at `now` and routes.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        self.settle(now);
    }

    /// The next output, oldest first.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// An agent's state, if it ever logged in.
    pub fn agent_state(&self, agent: AgentId) -> Option<AgentState> {
        self.agents.get(&agent).map(|a| a.state)
    }

    /// How many calls the ACD tracks (waiting, offered, connected, callbacks).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    fn clock(&mut self, now: Instant) -> Instant {
        let now = self.now.map_or(now, |seen| seen.max(now));
        self.now = Some(now);
        now
    }

    fn apply(&mut self, now: Instant, cmd: Command) -> Result<(), AcdError> {
        use Command as C;
        match cmd {
            C::Login { agent, queues, skills, not_ready } => self.login(now, agent, &queues, skills, not_ready),
            C::Logout { agent } => self.logout(now, agent, Cause::Agent),
            C::SetReady { agent } => self.set_ready(now, agent, Cause::Agent),
            C::SetNotReady { agent, reason } => self.set_not_ready(now, agent, reason, Cause::Agent),
            C::WrapUpDone { agent } => self.wrap_up_done(now, agent),
            C::Disconnected { agent } => self.disconnected(now, agent),
            C::ForceReady { agent, by } => self.set_ready(now, agent, Cause::Supervisor { by }),
            C::ForceNotReady { agent, by, reason } => {
                self.set_not_ready(now, agent, reason, Cause::Supervisor { by })
            }
            C::ForceLogout { agent, by } => self.logout(now, agent, Cause::Supervisor { by }),
            C::Enter { call, queue, priority, caller, open } => self.enter(now, call, &queue, priority, caller, open),
            C::Transfer { call, queue, priority, caller, agent } => self.transfer(now, call, &queue, priority, caller, agent),
            C::Abandon { call } => self.abandon(now, call),
            C::RequestCallback { call, number } => self.request_callback(now, call, number),
            C::OfferAnswered { call, agent } => self.answered(now, call, agent),
            C::OfferDeclined { call, agent } => self.declined(now, call, agent),
            C::CallEnded { call } => self.call_ended(now, call),
            C::InternalCall { agent, call } => self.internal_call(now, agent, call),
            C::InternalCallEnded { agent, call } => self.internal_call_ended(now, agent, call),
            C::HandOver { call, to } => self.hand_over(now, call, to),
            C::NewDay => {
                self.new_day();
                Ok(())
            }
        }
    }

    /// Fires due timers and routes until nothing is due at `now`, then pushes queue status.
    fn settle(&mut self, now: Instant) {
        for _ in 0..MAX_SETTLE_ROUNDS {
            while let Some((_, timer)) = self.timers.pop_due(now) {
                self.fire(now, timer);
            }
            self.dispatch(now);
            if self.timers.next().is_none_or(|t| t > now) {
                break;
            }
        }
        self.flush_status();
    }

    fn fire(&mut self, now: Instant, timer: Timer) {
        match timer {
            Timer::Offer(call, gen) if self.call_gen(call) == Some(gen) => self.offer_timed_out(now, call),
            Timer::Overflow(call, gen) if self.call_gen(call) == Some(gen) => self.overflow_due(now, call),
            Timer::WrapUp(agent, gen) if self.agents.get(&agent).is_some_and(|a| a.gen == gen) => {
                self.end_wrap_up(now, agent, false, Cause::Timeout);
            }
            // A skill stage only lets more agents qualify: routing runs after every firing.
            _ => {}
        }
    }

    fn call_gen(&self, call: CallRef) -> Option<u64> {
        self.calls.get(&call).map(|c| c.gen)
    }

    fn new_day(&mut self) {
        for q in &mut self.queues {
            q.counters = QueueCounters::default();
        }
        for a in self.agents.values_mut() {
            a.answered = 0;
            a.talk = Duration::ZERO;
        }
    }

    fn queue_index(&self, name: &QueueId) -> Result<usize, AcdError> {
        self.by_name.get(name).copied().ok_or_else(|| AcdError::UnknownQueue(name.clone()))
    }

    /// Moves an agent to `to`, keeping the ready set and wrap-up timer in step, and reports it.
    fn set_state(&mut self, now: Instant, id: AgentId, to: AgentState, cause: Cause) {
        let Some(agent) = self.agents.get_mut(&id) else { return };
        let from = agent.state;
        if from == to {
            return;
        }
        agent.state = to;
        agent.since = now;
        agent.gen += 1;
        if let AgentState::WrapUp { until } = to {
            self.timers.push(until, Timer::WrapUp(id, agent.gen));
        }
        let ready_changed = if to == AgentState::Ready {
            agent.idle_since = now;
            self.ready.insert(id)
        } else {
            self.ready.remove(&id)
        };
        if ready_changed {
            for seat in &agent.queues {
                self.queues[seat.queue].dirty = true;
            }
        }
        self.outputs.push_back(Output::AgentStateChanged { agent: id, from, to, at: now, cause });
    }

    fn event(&mut self, now: Instant, q: usize, call: CallRef, kind: QueueEventKind) {
        let queue = self.queues[q].cfg.name.clone();
        self.outputs.push_back(Output::QueueEvent(QueueEvent { at: now, call, queue, kind }));
    }

    /// Pushes the status of each queue whose figures changed.
    fn flush_status(&mut self) {
        for q in 0..self.queues.len() {
            if !std::mem::take(&mut self.queues[q].dirty) {
                continue;
            }
            let (waiting, callbacks, oldest_since) = self.waiting_figures(q);
            let status = QueueStatus {
                queue: self.queues[q].cfg.name.clone(),
                waiting,
                callbacks,
                oldest_since,
                ready_agents: self.ready_in(q),
            };
            if self.queues[q].last_status.as_ref() != Some(&status) {
                self.queues[q].last_status = Some(status.clone());
                self.outputs.push_back(Output::QueueStatus(status));
            }
        }
    }
}
