//! Desk-to-desk calls outside the queues (SUP-3's intercom, the desk consulted for an
//! attended transfer, AGT-2) and the change of a queue call's desk party (a completed attended
//! transfer, a supervisor's take-over, SUP-2). The engine runs those calls; the ACD only keeps
//! the agents in them on call, so no queue call is offered to someone already talking.

use std::time::Instant;

use super::agent::{AfterCall, AgentId, AgentState, Cause};
use super::call::{CallRef, Phase};
use super::{Acd, AcdError};

impl Acd {
    pub(super) fn internal_call(&mut self, now: Instant, id: AgentId, call: CallRef) -> Result<(), AcdError> {
        match self.agents.get(&id).map(|a| a.state) {
            None => Err(AcdError::UnknownAgent(id)),
            Some(AgentState::LoggedOut) => Err(AcdError::NotLoggedIn(id)),
            Some(AgentState::Ready) => {
                if let Some(a) = self.agents.get_mut(&id) {
                    a.internal = Some(call);
                }
                self.set_state(now, id, AgentState::OnCall { call }, Cause::Engine);
                Ok(())
            }
            Some(_) => Err(AcdError::AgentBusy(id)),
        }
    }

    pub(super) fn internal_call_ended(&mut self, now: Instant, id: AgentId, call: CallRef) -> Result<(), AcdError> {
        let a = self.agents.get_mut(&id).ok_or(AcdError::UnknownAgent(id))?;
        if a.internal != Some(call) {
            return Ok(());
        }
        a.internal = None;
        if a.state != (AgentState::OnCall { call }) {
            return Ok(());
        }
        let to = match a.after_call.take() {
            Some(AfterCall::Logout(cause)) => {
                self.set_state(now, id, AgentState::LoggedOut, cause);
                return Ok(());
            }
            Some(AfterCall::NotReady(reason)) if a.connected => AgentState::NotReady { reason },
            _ if !a.connected => AgentState::LoggedOut,
            _ => AgentState::Ready,
        };
        let cause = if a.connected { Cause::Engine } else { Cause::Disconnected };
        self.set_state(now, id, to, cause);
        Ok(())
    }

    pub(super) fn hand_over(&mut self, now: Instant, call: CallRef, to: AgentId) -> Result<(), AcdError> {
        let c = self.calls.get(&call).ok_or(AcdError::UnknownCall(call))?;
        let Phase::Connected { agent: from, since } = c.phase else { return Err(AcdError::CallNotConnected(call)) };
        if from == to {
            return Ok(());
        }
        let mut record = c.clone();
        self.finish_call(now, call, from, since);
        let takes = match self.agents.get(&to) {
            Some(a) => a.state == AgentState::Ready || (a.internal == Some(call) && a.state == (AgentState::OnCall { call })),
            None => false,
        };
        if !takes {
            return Ok(()); // the call leaves the ACD, as after `CallEnded`
        }
        record.phase = Phase::Connected { agent: to, since: now };
        record.gen += 1;
        let q = record.queue;
        self.calls.insert(call, record);
        if let Some(a) = self.agents.get_mut(&to) {
            a.internal = None;
            a.missed = 0;
            a.answered += 1;
            a.call_queue = Some(q);
            a.last_call = Some(call);
        }
        self.set_state(now, to, AgentState::OnCall { call }, Cause::Engine);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{queue, Harness};
    use super::super::*;

    fn state(h: &Harness, id: i64) -> AgentState {
        h.acd.agent_state(AgentId(id)).unwrap()
    }

    #[test]
    fn an_agent_on_an_intercom_call_is_not_offered_queue_calls_until_it_ends() {
        let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
        h.login(1, &[("q", 0)], &[]);
        let intercom = CallRef(900);
        h.ok(Command::InternalCall { agent: AgentId(1), call: intercom });
        assert_eq!(state(&h, 1), AgentState::OnCall { call: intercom });
        assert_eq!(h.cmd(Command::InternalCall { agent: AgentId(1), call: CallRef(901) }), Err(AcdError::AgentBusy(AgentId(1))));
        h.enter(1, "q", 0);
        assert!(!h.out.iter().any(|o| matches!(o, Output::Offer { .. })), "no offer while on the intercom");
        // Ending another call changes nothing; ending this one makes the agent ready at once
        // (no wrap-up), and the waiting caller is offered.
        h.ok(Command::InternalCallEnded { agent: AgentId(1), call: CallRef(901) });
        assert_eq!(state(&h, 1), AgentState::OnCall { call: intercom });
        h.ok(Command::InternalCallEnded { agent: AgentId(1), call: intercom });
        assert!(matches!(state(&h, 1), AgentState::Reserved { call: CallRef(1), .. }), "{:?}", state(&h, 1));
        assert_eq!(h.cmd(Command::InternalCall { agent: AgentId(7), call: intercom }), Err(AcdError::UnknownAgent(AgentId(7))));
    }

    #[test]
    fn a_not_ready_asked_for_during_an_intercom_call_applies_after_it() {
        let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
        h.login(1, &[("q", 0)], &[]);
        h.ok(Command::InternalCall { agent: AgentId(1), call: CallRef(900) });
        h.ok(Command::SetNotReady { agent: AgentId(1), reason: NotReadyReason::Meal });
        assert_eq!(state(&h, 1), AgentState::OnCall { call: CallRef(900) });
        h.ok(Command::InternalCallEnded { agent: AgentId(1), call: CallRef(900) });
        assert_eq!(state(&h, 1), AgentState::NotReady { reason: NotReadyReason::Meal });
        h.ok(Command::SetReady { agent: AgentId(1) });
        h.ok(Command::InternalCall { agent: AgentId(1), call: CallRef(901) });
        h.ok(Command::Logout { agent: AgentId(1) });
        h.ok(Command::InternalCallEnded { agent: AgentId(1), call: CallRef(901) });
        assert_eq!(state(&h, 1), AgentState::LoggedOut);
    }

    /// An attended transfer to a desk: the consulted agent is held on the call while consulted,
    /// then takes it over; the first agent wraps up; the call's end wraps up the second.
    #[test]
    fn a_consulted_agent_is_reserved_then_takes_the_call_and_the_first_wraps_up() {
        let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
        h.login(1, &[("q", 0)], &[]);
        h.login(2, &[("q", 0)], &[]);
        h.enter(1, "q", 0);
        let first = match state(&h, 1) {
            AgentState::Reserved { .. } => 1,
            _ => 2,
        };
        let second = 3 - first;
        h.ok(Command::OfferAnswered { call: CallRef(1), agent: AgentId(first) });
        h.ok(Command::InternalCall { agent: AgentId(second), call: CallRef(1) });
        h.enter(2, "q", 0);
        assert_eq!(state(&h, second), AgentState::OnCall { call: CallRef(1) }, "consulted, not offered the next caller");
        h.ok(Command::HandOver { call: CallRef(1), to: AgentId(second) });
        assert!(matches!(state(&h, first), AgentState::WrapUp { .. }), "{:?}", state(&h, first));
        assert_eq!(state(&h, second), AgentState::OnCall { call: CallRef(1) });
        // The consultation's end (the engine reports it too) leaves the new agent on the call.
        h.ok(Command::InternalCallEnded { agent: AgentId(second), call: CallRef(1) });
        assert_eq!(state(&h, second), AgentState::OnCall { call: CallRef(1) });
        let board = h.acd.snapshot(h.now);
        assert_eq!(board.seats.serving, 2);
        h.ok(Command::CallEnded { call: CallRef(1) });
        assert!(matches!(state(&h, second), AgentState::WrapUp { .. }), "{:?}", state(&h, second));
        assert_eq!(h.cmd(Command::HandOver { call: CallRef(1), to: AgentId(first) }), Err(AcdError::UnknownCall(CallRef(1))));
        assert_eq!(h.cmd(Command::HandOver { call: CallRef(2), to: AgentId(first) }), Err(AcdError::CallNotConnected(CallRef(2))));
    }

    /// A supervisor outside the queues takes a call over: the agent wraps up, and the call
    /// leaves the ACD (its later end is unknown to it).
    #[test]
    fn a_take_over_by_someone_outside_the_queues_ends_the_call_for_the_acd() {
        let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
        h.login(1, &[("q", 0)], &[]);
        h.enter(1, "q", 0);
        h.ok(Command::OfferAnswered { call: CallRef(1), agent: AgentId(1) });
        h.ok(Command::HandOver { call: CallRef(1), to: AgentId(50) });
        assert!(matches!(state(&h, 1), AgentState::WrapUp { .. }));
        assert_eq!(h.acd.call_count(), 0);
        assert_eq!(h.cmd(Command::CallEnded { call: CallRef(1) }), Err(AcdError::UnknownCall(CallRef(1))));
    }
}
