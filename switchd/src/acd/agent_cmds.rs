//! What agent and supervisor commands do (AGT-7, SUP-2's force state/logout).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::agent::{AfterCall, Agent, AgentId, AgentState, Cause, Membership, NotReadyReason, Seat};
use super::call::{CallRef, Phase};
use super::output::{CancelReason, Output, QueueEventKind};
use super::{Acd, AcdError};

impl Acd {
    pub(super) fn login(
        &mut self,
        now: Instant,
        id: AgentId,
        queues: &[Membership],
        skills: Vec<(String, u8)>,
        not_ready: Option<NotReadyReason>,
    ) -> Result<(), AcdError> {
        if let Some((skill, level)) = skills.iter().find(|(_, l)| !(1..=5).contains(l)) {
            return Err(AcdError::InvalidSkillLevel { skill: skill.clone(), level: *level });
        }
        let skills: HashMap<String, u8> = skills.into_iter().collect();
        let mut seats = Vec::with_capacity(queues.len());
        let mut seen = HashSet::new();
        for m in queues {
            let q = self.queue_index(&m.queue)?;
            if seen.insert(q) {
                let level = self.queues[q].cfg.skill().and_then(|s| skills.get(s)).copied().unwrap_or(0);
                seats.push(Seat { queue: q, order: m.order, level });
            }
        }
        seats.sort_by_key(|s| (s.order, s.queue));
        let agent = self.agents.entry(id).or_insert_with(|| Agent::new(now));
        agent.queues = seats;
        agent.connected = true;
        // Logging in again cancels a logout still waiting for the current call to end.
        if matches!(agent.after_call, Some(AfterCall::Logout(_))) {
            agent.after_call = None;
        }
        let logged_out = agent.state == AgentState::LoggedOut;
        if logged_out {
            agent.missed = 0;
            agent.after_call = None;
        }
        self.queues.iter_mut().for_each(|q| q.dirty = true);
        if logged_out {
            let to = not_ready.map_or(AgentState::Ready, |reason| AgentState::NotReady { reason });
            self.set_state(now, id, to, Cause::Agent);
        }
        Ok(())
    }

    /// The agent's state, if it is logged in.
    fn logged_in(&self, id: AgentId) -> Result<AgentState, AcdError> {
        match self.agents.get(&id).map(|a| a.state) {
            None => Err(AcdError::UnknownAgent(id)),
            Some(AgentState::LoggedOut) => Err(AcdError::NotLoggedIn(id)),
            Some(state) => Ok(state),
        }
    }

    fn set_after_call(&mut self, id: AgentId, after: Option<AfterCall>) {
        if let Some(agent) = self.agents.get_mut(&id) {
            agent.after_call = after;
        }
    }

    pub(super) fn logout(&mut self, now: Instant, id: AgentId, cause: Cause) -> Result<(), AcdError> {
        match self.logged_in(id)? {
            AgentState::OnCall { .. } => self.set_after_call(id, Some(AfterCall::Logout(cause))),
            AgentState::Reserved { call, .. } => {
                self.withdraw(now, call, id);
                self.set_state(now, id, AgentState::LoggedOut, cause);
            }
            AgentState::WrapUp { .. } => {
                self.log_wrap_up(now, id);
                self.set_state(now, id, AgentState::LoggedOut, cause);
            }
            _ => self.set_state(now, id, AgentState::LoggedOut, cause),
        }
        Ok(())
    }

    pub(super) fn set_ready(&mut self, now: Instant, id: AgentId, cause: Cause) -> Result<(), AcdError> {
        match self.logged_in(id)? {
            AgentState::OnCall { .. } => {
                let pending = self.agents.get(&id).and_then(|a| a.after_call);
                if matches!(pending, Some(AfterCall::NotReady(_))) {
                    self.set_after_call(id, None);
                }
            }
            AgentState::WrapUp { .. } => self.end_wrap_up(now, id, true, cause),
            AgentState::NotReady { .. } => {
                if let Some(agent) = self.agents.get_mut(&id) {
                    agent.missed = 0;
                }
                self.set_state(now, id, AgentState::Ready, cause);
            }
            AgentState::Ready | AgentState::Reserved { .. } | AgentState::LoggedOut => {}
        }
        Ok(())
    }

    pub(super) fn set_not_ready(
        &mut self,
        now: Instant,
        id: AgentId,
        reason: NotReadyReason,
        cause: Cause,
    ) -> Result<(), AcdError> {
        let to = AgentState::NotReady { reason };
        match self.logged_in(id)? {
            AgentState::OnCall { .. } => {
                let pending = self.agents.get(&id).and_then(|a| a.after_call);
                if !matches!(pending, Some(AfterCall::Logout(_))) {
                    self.set_after_call(id, Some(AfterCall::NotReady(reason)));
                }
            }
            AgentState::Reserved { call, .. } => {
                self.withdraw(now, call, id);
                self.set_state(now, id, to, cause);
            }
            AgentState::WrapUp { .. } => {
                self.log_wrap_up(now, id);
                self.set_state(now, id, to, cause);
            }
            _ => self.set_state(now, id, to, cause),
        }
        Ok(())
    }

    pub(super) fn wrap_up_done(&mut self, now: Instant, id: AgentId) -> Result<(), AcdError> {
        if let AgentState::WrapUp { .. } = self.logged_in(id)? {
            self.end_wrap_up(now, id, false, Cause::Agent);
        }
        Ok(())
    }

    pub(super) fn disconnected(&mut self, now: Instant, id: AgentId) -> Result<(), AcdError> {
        let agent = self.agents.get_mut(&id).ok_or(AcdError::UnknownAgent(id))?;
        agent.connected = false;
        if agent.state == AgentState::LoggedOut {
            return Ok(());
        }
        self.logout(now, id, Cause::Disconnected)
    }

    /// Ends an agent's wrap-up: ready if `ready` or nothing is pending, else the pending
    /// not-ready.
    pub(super) fn end_wrap_up(&mut self, now: Instant, id: AgentId, ready: bool, cause: Cause) {
        let Some(agent) = self.agents.get_mut(&id) else { return };
        if !matches!(agent.state, AgentState::WrapUp { .. }) {
            return;
        }
        let to = match agent.after_call.take() {
            Some(AfterCall::NotReady(reason)) if !ready => AgentState::NotReady { reason },
            _ => AgentState::Ready,
        };
        self.log_wrap_up(now, id);
        self.set_state(now, id, to, cause);
    }

    /// Logs the end of a wrap-up the agent is in now.
    fn log_wrap_up(&mut self, now: Instant, id: AgentId) {
        let Some(agent) = self.agents.get(&id) else { return };
        let (Some(q), Some(call)) = (agent.call_queue, agent.last_call) else { return };
        let duration = now.saturating_duration_since(agent.since);
        self.queues[q].counters.wrap_up += duration;
        self.event(now, q, call, QueueEventKind::WrapUp { agent: id, duration });
    }

    /// Takes `agent` off `call`'s offer (without counting a miss); the caller changes the
    /// agent's state. A call left with no offered agent goes back to its place in the queue.
    pub(super) fn withdraw(&mut self, now: Instant, call: CallRef, agent: AgentId) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Phase::Offered { agents, .. } = &mut c.phase else { return };
        agents.retain(|a| *a != agent);
        let empty = agents.is_empty();
        let reason = CancelReason::AgentLeft;
        self.outputs.push_back(Output::CancelOffer { call, agents: vec![agent], reason });
        if empty {
            self.return_to_queue(now, call);
        }
    }
}
