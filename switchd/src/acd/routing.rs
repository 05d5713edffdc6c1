//! Matching waiting calls to free agents (ACD-1).
//!
//! Each round looks at the queues in the order of their first caller (priority, then arrival),
//! and in each queue at its callers in order; the first caller some free agent may take is
//! offered to the agent the strategy prefers (to all of them for ring-all). A free agent takes
//! part in a queue only if none of its queues of a lower order has a caller it may take, so an
//! agent serves its queues in its own order. Rounds repeat until no offer is made; each costs
//! one pass over the free agents and over the waiting callers of queues with free agents.

use std::time::Instant;

use super::agent::AgentId;
use super::call::{CallRef, Phase};
use super::output::{Output, QueueEventKind};
use super::queue::{Strategy, Waiter};
use super::strategy::{self, Candidate};
use super::timers::Timer;
use super::{Acd, AgentState, Cause};

impl Acd {
    /// Offers waiting calls to free agents until no more can be matched.
    pub(super) fn dispatch(&mut self, now: Instant) {
        while !self.ready.is_empty() && self.route_one(now) {}
    }

    /// Makes one offer if any call can be matched.
    fn route_one(&mut self, now: Instant) -> bool {
        let mut order: Vec<_> = (0..self.queues.len())
            .filter_map(|q| self.queues[q].waiting.keys().next().map(|k| (*k, q)))
            .collect();
        order.sort_unstable();
        let mut needs = vec![None; self.queues.len()];
        for (_, q) in order {
            if let Some((call, agents)) = self.find_match(q, now, &mut needs) {
                self.offer(now, q, call, agents);
                return true;
            }
        }
        false
    }

    /// The lowest proficiency any waiting call of queue `q` needs now (0 for queues without
    /// skills; `None` when nobody waits), computed once per round into `cache`.
    fn need(&self, q: usize, now: Instant, cache: &mut [Option<Option<u8>>]) -> Option<u8> {
        *cache[q].get_or_insert_with(|| {
            let queue = &self.queues[q];
            let waited = |w: &Waiter| now.saturating_duration_since(w.entered);
            queue.waiting.values().map(|w| queue.cfg.min_level(waited(w)).unwrap_or(0)).min()
        })
    }

    /// Free agents who take part in queue `q` now: those with no waiting call they may take in
    /// a queue they put before `q`.
    fn candidates(&self, q: usize, now: Instant, cache: &mut [Option<Option<u8>>]) -> Vec<Candidate> {
        let mut out = Vec::new();
        for id in &self.ready {
            let Some(agent) = self.agents.get(id) else { continue };
            let Some(seat) = agent.seat(q) else { continue };
            let mut earlier = agent.queues.iter().filter(|s| s.order < seat.order);
            let busy_elsewhere =
                earlier.any(|other| self.need(other.queue, now, cache).is_some_and(|need| other.level >= need));
            if busy_elsewhere {
                continue;
            }
            out.push(Candidate {
                agent: *id,
                idle_since: agent.idle_since,
                answered: agent.answered,
                talk: agent.talk,
                level: seat.level,
                tried: false,
            });
        }
        out
    }

    /// The first caller of queue `q` that a free agent may take, and whom to offer it to.
    fn find_match(
        &self,
        q: usize,
        now: Instant,
        cache: &mut [Option<Option<u8>>],
    ) -> Option<(CallRef, Vec<AgentId>)> {
        let cands = self.candidates(q, now, cache);
        let top = cands.iter().map(|c| c.level).max()?;
        let queue = &self.queues[q];
        for w in queue.waiting.values() {
            let need = queue.cfg.min_level(now.saturating_duration_since(w.entered)).unwrap_or(0);
            if need > top {
                continue;
            }
            let Some(c) = self.calls.get(&w.call) else { continue };
            let mut eligible: Vec<Candidate> = cands
                .iter()
                .filter(|cand| cand.level >= need)
                .map(|cand| Candidate { tried: c.tried.contains(&cand.agent), ..*cand })
                .collect();
            let strat = &queue.cfg.strategy;
            let agents = if *strat == Strategy::RingAll && !w.callback {
                strategy::rank(strat, queue.rr_last, &mut eligible)
            } else {
                strategy::best(strat, queue.rr_last, &eligible).into_iter().collect()
            };
            return Some((w.call, agents));
        }
        None
    }

    /// Offers `call` to `agents`, reserving them until the offer's deadline.
    pub(super) fn offer(&mut self, now: Instant, q: usize, call: CallRef, agents: Vec<AgentId>) {
        let Some(c) = self.calls.get_mut(&call).filter(|_| !agents.is_empty()) else { return };
        let queue = &mut self.queues[q];
        let timeout = if c.callback.is_some() { queue.cfg.callback_timeout_secs } else { queue.cfg.offer_timeout_secs };
        let until = now + std::time::Duration::from_secs(u64::from(timeout));
        queue.waiting.remove(&c.key());
        queue.offering += 1;
        queue.dirty = true;
        if queue.cfg.strategy == Strategy::RoundRobin {
            queue.rr_last = agents.first().copied();
        }
        c.phase = Phase::Offered { agents: agents.clone(), until };
        c.gen += 1;
        self.timers.push(until, Timer::Offer(call, c.gen));
        self.offered.insert(call);
        let (callback, caller) = (c.callback.clone(), c.caller.clone());
        for &agent in &agents {
            self.set_state(now, agent, AgentState::Reserved { call, until }, Cause::Routing);
        }
        self.event(now, q, call, QueueEventKind::Offered { agents: agents.clone() });
        let queue = self.queues[q].cfg.name.clone();
        let out = match (callback, agents.as_slice()) {
            (Some(number), [agent, ..]) => Output::DialCallback { call, agent: *agent, number, queue, until },
            _ if self.queues[q].cfg.strategy == Strategy::RingAll => {
                Output::OfferRingAll { call, agents, queue, caller, until }
            }
            (_, [agent, ..]) => Output::Offer { call, agent: *agent, queue, caller, until },
            (_, []) => return,
        };
        self.outputs.push_back(out);
    }
}
