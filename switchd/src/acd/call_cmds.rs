//! What engine events and call commands do: arrivals, abandons, callbacks (ACD-4), offers'
//! outcomes, call ends, and overflow (ACD-3).

use std::time::{Duration, Instant};

use super::agent::{AfterCall, AgentId, AgentState, Cause};
use super::call::{Call, CallRef, Phase};
use super::output::{CancelReason, Output, QueueEventKind};
use super::queue::{OverflowTarget, QueueId};
use super::timers::Timer;
use super::{Acd, AcdError};

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

impl Acd {
    pub(super) fn enter(
        &mut self,
        now: Instant,
        call: CallRef,
        queue: &QueueId,
        priority: i32,
        caller: String,
        open: bool,
    ) -> Result<(), AcdError> {
        if self.calls.contains_key(&call) {
            return Err(AcdError::CallExists(call));
        }
        let q = self.queue_index(queue)?;
        let closed_target = match (open, &self.queues[q].cfg.when_closed) {
            (true, _) => None,
            (false, Some(target)) => Some(target.clone()),
            (false, None) => return Err(AcdError::QueueClosed(queue.clone())),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = Call {
            queue: q,
            priority,
            caller: caller.clone(),
            seq,
            first_entered: now,
            queue_entered: now,
            phase: Phase::Waiting,
            gen: 0,
            callback: None,
            tried: Vec::new(),
            next_rule: 0,
        };
        self.calls.insert(call, record);
        self.join_queue(now, call, q, QueueEventKind::Entered { priority, caller, overflowed_in: false });
        if let Some(target) = closed_target {
            self.overflow(now, call, target);
        }
        Ok(())
    }

    /// A call an agent handed on enters `queue` again, offered to `agent` first when named.
    pub(super) fn transfer(
        &mut self,
        now: Instant,
        call: CallRef,
        queue: &QueueId,
        priority: i32,
        caller: String,
        agent: Option<AgentId>,
    ) -> Result<(), AcdError> {
        let q = self.queue_index(queue)?;
        if let Some(a) = agent {
            match self.agents.get(&a).map(|x| x.state) {
                None => return Err(AcdError::UnknownAgent(a)),
                Some(AgentState::Ready) => {}
                Some(AgentState::LoggedOut) => return Err(AcdError::NotLoggedIn(a)),
                Some(_) => return Err(AcdError::AgentBusy(a)),
            }
        }
        self.enter(now, call, queue, priority, caller, true)?;
        if let Some(a) = agent {
            // Offered before routing runs, so no other agent is picked for it.
            self.offer(now, q, call, vec![a]);
        }
        Ok(())
    }

    /// Puts a waiting call into queue `q`'s list, counts and logs its entry.
    fn join_queue(&mut self, now: Instant, call: CallRef, q: usize, entered: QueueEventKind) {
        let Some(c) = self.calls.get(&call) else { return };
        let queue = &mut self.queues[q];
        queue.waiting.insert(c.key(), c.waiter(call));
        queue.counters.entered += 1;
        queue.dirty = true;
        self.event(now, q, call, entered);
        self.arm_waiting(now, call);
    }

    /// Sets the deadlines of a call that has just started waiting.
    fn arm_waiting(&mut self, now: Instant, call: CallRef) {
        let Some(c) = self.calls.get(&call) else { return };
        let cfg = &self.queues[c.queue].cfg;
        if c.callback.is_none() {
            if let Some(rule) = cfg.overflow.get(c.next_rule) {
                self.timers.push(c.queue_entered + secs(rule.after_secs), Timer::Overflow(call, c.gen));
            }
        }
        if let super::Strategy::Skills { stages, .. } = &cfg.strategy {
            for stage in stages {
                let at = c.queue_entered + secs(stage.after_secs);
                if at > now {
                    self.timers.push(at, Timer::Widen(call, c.gen));
                }
            }
        }
    }

    /// An offered call goes back to its place in its queue.
    pub(super) fn return_to_queue(&mut self, now: Instant, call: CallRef) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if !matches!(c.phase, Phase::Offered { .. }) {
            return;
        }
        c.phase = Phase::Waiting;
        c.gen += 1;
        let (q, key, waiter) = (c.queue, c.key(), c.waiter(call));
        self.offered.remove(&call);
        let queue = &mut self.queues[q];
        queue.offering = queue.offering.saturating_sub(1);
        queue.waiting.insert(key, waiter);
        queue.dirty = true;
        self.arm_waiting(now, call);
    }

    pub(super) fn abandon(&mut self, now: Instant, call: CallRef) -> Result<(), AcdError> {
        match self.calls.get(&call).map(|c| &c.phase) {
            None => Err(AcdError::UnknownCall(call)),
            Some(Phase::Connected { .. }) => Err(AcdError::CallNotWaiting(call)),
            Some(_) => {
                self.drop_unanswered(now, call);
                Ok(())
            }
        }
    }

    /// Removes a call that no agent answered: its offer is cancelled and the caller counted
    /// as abandoned (or the callback as failed).
    fn drop_unanswered(&mut self, now: Instant, call: CallRef) {
        self.cancel_offer(now, call, CancelReason::CallerLeft);
        let Some(c) = self.calls.remove(&call) else { return };
        let queue = &mut self.queues[c.queue];
        queue.waiting.remove(&c.key());
        queue.dirty = true;
        let wait = now.saturating_duration_since(c.queue_entered);
        let kind = if c.callback.is_some() {
            queue.counters.callbacks_failed += 1;
            QueueEventKind::CallbackFailed
        } else {
            queue.counters.abandoned += 1;
            if wait > secs(queue.cfg.service_level_secs) {
                queue.counters.abandoned_after_sl += 1;
            }
            QueueEventKind::Abandoned { wait, total_wait: now.saturating_duration_since(c.first_entered) }
        };
        self.event(now, c.queue, call, kind);
    }

    /// Withdraws every agent from `call`'s offer back to ready (no miss counted); the call is
    /// left waiting, out of the queue's list, for the caller to place or remove.
    fn cancel_offer(&mut self, now: Instant, call: CallRef, reason: CancelReason) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Phase::Offered { agents, .. } = std::mem::replace(&mut c.phase, Phase::Waiting) else { return };
        c.gen += 1;
        let q = c.queue;
        self.offered.remove(&call);
        let queue = &mut self.queues[q];
        queue.offering = queue.offering.saturating_sub(1);
        queue.dirty = true;
        let cause = if reason == CancelReason::Timeout { Cause::Timeout } else { Cause::Engine };
        for &agent in &agents {
            self.set_state(now, agent, AgentState::Ready, cause);
        }
        self.outputs.push_back(Output::CancelOffer { call, agents, reason });
    }

    pub(super) fn request_callback(&mut self, now: Instant, call: CallRef, number: String) -> Result<(), AcdError> {
        match self.calls.get(&call).map(|c| &c.phase) {
            None => return Err(AcdError::UnknownCall(call)),
            Some(Phase::Connected { .. }) => return Err(AcdError::CallNotWaiting(call)),
            Some(Phase::Offered { .. }) => {
                self.cancel_offer(now, call, CancelReason::CallerLeft);
                self.requeue(call);
            }
            Some(Phase::Waiting) => {}
        }
        self.make_callback(now, call, number);
        Ok(())
    }

    /// Puts a call whose offer was cancelled back into its queue's list.
    fn requeue(&mut self, call: CallRef) {
        if let Some(c) = self.calls.get(&call) {
            self.queues[c.queue].waiting.insert(c.key(), c.waiter(call));
        }
    }

    /// Turns a waiting call into a callback that keeps its place.
    fn make_callback(&mut self, now: Instant, call: CallRef, number: String) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let first = c.callback.is_none();
        c.callback = Some(number.clone());
        c.gen += 1;
        let (q, key) = (c.queue, c.key());
        let queue = &mut self.queues[q];
        queue.dirty = true;
        if let Some(w) = queue.waiting.get_mut(&key) {
            w.callback = true;
        }
        if first {
            queue.counters.callbacks_requested += 1;
        }
        self.event(now, q, call, QueueEventKind::CallbackRequested { number });
        self.arm_waiting(now, call);
    }

    /// Checks that `agent` holds an offer of `call`.
    fn check_offer(&self, call: CallRef, agent: AgentId) -> Result<usize, AcdError> {
        let c = self.calls.get(&call).ok_or(AcdError::UnknownCall(call))?;
        let reserved = matches!(
            self.agents.get(&agent).map(|a| a.state),
            Some(AgentState::Reserved { call: held, .. }) if held == call
        );
        if !(reserved && c.offered_to().contains(&agent)) {
            return Err(AcdError::NoSuchOffer { call, agent });
        }
        Ok(c.queue)
    }

    pub(super) fn answered(&mut self, now: Instant, call: CallRef, agent: AgentId) -> Result<(), AcdError> {
        let q = self.check_offer(call, agent)?;
        let Some(c) = self.calls.get_mut(&call) else { return Ok(()) };
        let old = std::mem::replace(&mut c.phase, Phase::Connected { agent, since: now });
        c.gen += 1;
        let wait = now.saturating_duration_since(c.queue_entered);
        let total_wait = now.saturating_duration_since(c.first_entered);
        let callback = c.callback.is_some();
        self.offered.remove(&call);
        let others: Vec<AgentId> = match old {
            Phase::Offered { agents, .. } => agents.into_iter().filter(|a| *a != agent).collect(),
            _ => Vec::new(),
        };
        for &other in &others {
            self.set_state(now, other, AgentState::Ready, Cause::Engine);
        }
        if !others.is_empty() {
            let reason = CancelReason::AnsweredElsewhere;
            self.outputs.push_back(Output::CancelOffer { call, agents: others, reason });
        }
        if let Some(a) = self.agents.get_mut(&agent) {
            a.missed = 0;
            a.answered += 1;
            a.call_queue = Some(q);
            a.last_call = Some(call);
        }
        self.set_state(now, agent, AgentState::OnCall { call }, Cause::Engine);
        self.count_answer(q, wait, callback);
        self.event(now, q, call, QueueEventKind::Answered { agent, wait, total_wait, callback });
        Ok(())
    }

    fn count_answer(&mut self, q: usize, wait: Duration, callback: bool) {
        let queue = &mut self.queues[q];
        queue.offering = queue.offering.saturating_sub(1);
        queue.dirty = true;
        let c = &mut queue.counters;
        if callback {
            c.callbacks_connected += 1;
            return;
        }
        c.answered += 1;
        c.wait_answered += wait;
        if wait <= secs(queue.cfg.service_level_secs) {
            c.answered_within_sl += 1;
        }
    }

    pub(super) fn declined(&mut self, now: Instant, call: CallRef, agent: AgentId) -> Result<(), AcdError> {
        let q = self.check_offer(call, agent)?;
        let Some(c) = self.calls.get_mut(&call) else { return Ok(()) };
        c.tried.push(agent);
        let empty = match &mut c.phase {
            Phase::Offered { agents, .. } => {
                agents.retain(|a| *a != agent);
                agents.is_empty()
            }
            _ => false,
        };
        self.event(now, q, call, QueueEventKind::Missed { agent });
        self.missed(now, agent, q, Cause::Agent);
        if empty {
            self.return_to_queue(now, call);
        }
        Ok(())
    }

    /// Counts a missed offer: ready again, or not ready once the queue's limit is reached.
    fn missed(&mut self, now: Instant, agent: AgentId, q: usize, cause: Cause) {
        let limit = self.queues[q].cfg.max_missed_offers;
        let Some(a) = self.agents.get_mut(&agent) else { return };
        a.missed += 1;
        if limit > 0 && a.missed >= limit {
            let to = AgentState::NotReady { reason: super::NotReadyReason::MissedOffers };
            self.set_state(now, agent, to, Cause::MissedOffers);
        } else {
            self.set_state(now, agent, AgentState::Ready, cause);
        }
    }

    /// Nobody answered in time: a live call goes back to its place and the agents count a
    /// miss; a callback that did not reach the caller is given up.
    pub(super) fn offer_timed_out(&mut self, now: Instant, call: CallRef) {
        let Some(c) = self.calls.get(&call) else { return };
        let Phase::Offered { agents, .. } = &c.phase else { return };
        let (agents, q) = (agents.clone(), c.queue);
        if c.callback.is_some() {
            self.cancel_offer(now, call, CancelReason::Timeout);
            self.drop_unanswered(now, call);
            return;
        }
        for &agent in &agents {
            self.event(now, q, call, QueueEventKind::Missed { agent });
            self.missed(now, agent, q, Cause::Timeout);
        }
        if let Some(c) = self.calls.get_mut(&call) {
            c.tried.extend(agents.iter().copied());
        }
        self.outputs.push_back(Output::CancelOffer { call, agents, reason: CancelReason::Timeout });
        self.return_to_queue(now, call);
    }

    pub(super) fn call_ended(&mut self, now: Instant, call: CallRef) -> Result<(), AcdError> {
        match self.calls.get(&call).map(|c| c.phase.clone()) {
            None => Err(AcdError::UnknownCall(call)),
            Some(Phase::Connected { agent, since }) => {
                self.finish_call(now, call, agent, since);
                Ok(())
            }
            Some(_) => {
                self.drop_unanswered(now, call);
                Ok(())
            }
        }
    }

    /// An answered call ended: count and log it, and send the agent to wrap-up.
    pub(super) fn finish_call(&mut self, now: Instant, call: CallRef, agent: AgentId, since: Instant) {
        let Some(c) = self.calls.remove(&call) else { return };
        let talk = now.saturating_duration_since(since);
        let queue = &mut self.queues[c.queue];
        queue.counters.handled += 1;
        queue.counters.talk += talk;
        let wrap = secs(queue.cfg.wrap_up_secs);
        self.event(now, c.queue, call, QueueEventKind::Ended { agent, talk });
        let Some(a) = self.agents.get_mut(&agent) else { return };
        if a.state != (AgentState::OnCall { call }) {
            return;
        }
        a.talk += talk;
        let to = match a.after_call {
            Some(AfterCall::Logout(cause)) => {
                a.after_call = None;
                return self.set_state(now, agent, AgentState::LoggedOut, cause);
            }
            _ if !a.connected => AgentState::LoggedOut,
            // A pending not-ready stays pending through the wrap-up.
            _ if !wrap.is_zero() => AgentState::WrapUp { until: now + wrap },
            Some(AfterCall::NotReady(reason)) => AgentState::NotReady { reason },
            None => AgentState::Ready,
        };
        if !matches!(to, AgentState::WrapUp { .. }) {
            a.after_call = None;
        }
        let cause = if a.connected { Cause::Engine } else { Cause::Disconnected };
        self.set_state(now, agent, to, cause);
    }

    /// The call's next overflow rule is due.
    pub(super) fn overflow_due(&mut self, now: Instant, call: CallRef) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.phase != Phase::Waiting || c.callback.is_some() {
            return;
        }
        let Some(rule) = self.queues[c.queue].cfg.overflow.get(c.next_rule) else { return };
        if c.queue_entered + secs(rule.after_secs) > now {
            return;
        }
        let target = rule.target.clone();
        c.next_rule += 1;
        self.overflow(now, call, target);
    }

    /// Sends a waiting call to `target`.
    fn overflow(&mut self, now: Instant, call: CallRef, target: OverflowTarget) {
        let Some(c) = self.calls.get(&call) else { return };
        let (q, key, caller) = (c.queue, c.key(), c.caller.clone());
        let wait = now.saturating_duration_since(c.queue_entered);
        let queue = &mut self.queues[q];
        queue.counters.overflowed += 1;
        queue.dirty = true;
        let from = queue.cfg.name.clone();
        self.event(now, q, call, QueueEventKind::Overflowed { to: target.clone(), wait });
        self.outputs.push_back(Output::Overflow { call, from, to: target.clone() });
        match target {
            OverflowTarget::Queue(name) => {
                let Ok(q2) = self.queue_index(&name) else { return };
                self.queues[q].waiting.remove(&key);
                let Some(c) = self.calls.get_mut(&call) else { return };
                (c.queue, c.queue_entered, c.next_rule) = (q2, now, 0);
                c.gen += 1;
                let entered = QueueEventKind::Entered { priority: c.priority, caller, overflowed_in: true };
                self.join_queue(now, call, q2, entered);
            }
            OverflowTarget::Mailbox(_) => {
                self.queues[q].waiting.remove(&key);
                self.calls.remove(&call);
            }
            OverflowTarget::Callback => self.make_callback(now, call, caller),
        }
    }
}
