//! The order in which a queue's strategy prefers free agents (ACD-1). Pure functions over
//! candidates, so each strategy's order is tested on its own.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

use super::agent::AgentId;
use super::queue::Strategy;

/// A free agent who may take the call, with the figures strategies compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    pub(super) agent: AgentId,
    /// When the agent became ready.
    pub(super) idle_since: Instant,
    /// Calls answered today.
    pub(super) answered: u32,
    /// Talk time today.
    pub(super) talk: Duration,
    /// Proficiency in the queue's skill (0 when the queue has none).
    pub(super) level: u8,
    /// The agent already missed or declined this call.
    pub(super) tried: bool,
}

/// Compares two candidates: `Less` means `a` is preferred.
pub(super) fn compare(
    strategy: &Strategy,
    rr_last: Option<AgentId>,
    a: &Candidate,
    b: &Candidate,
) -> Ordering {
    let by_strategy = match strategy {
        Strategy::LongestIdle | Strategy::RingAll => Ordering::Equal,
        Strategy::RoundRobin => round_robin_key(rr_last, a).cmp(&round_robin_key(rr_last, b)),
        Strategy::FewestCalls => a.answered.cmp(&b.answered),
        Strategy::LeastTalkTime => a.talk.cmp(&b.talk),
        Strategy::Skills { .. } => b.level.cmp(&a.level),
    };
    a.tried
        .cmp(&b.tried)
        .then(by_strategy)
        .then(a.idle_since.cmp(&b.idle_since))
        .then(a.agent.cmp(&b.agent))
}

/// Round-robin position: ids after the last one first (ascending), then the rest.
fn round_robin_key(rr_last: Option<AgentId>, c: &Candidate) -> (bool, AgentId) {
    let wrapped = rr_last.is_some_and(|last| c.agent <= last);
    (wrapped, c.agent)
}

/// The preferred candidate.
pub(super) fn best(strategy: &Strategy, rr_last: Option<AgentId>, cands: &[Candidate]) -> Option<AgentId> {
    cands.iter().min_by(|a, b| compare(strategy, rr_last, a, b)).map(|c| c.agent)
}

/// All candidates, preferred first.
pub(super) fn rank(strategy: &Strategy, rr_last: Option<AgentId>, cands: &mut [Candidate]) -> Vec<AgentId> {
    cands.sort_by(|a, b| compare(strategy, rr_last, a, b));
    cands.iter().map(|c| c.agent).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::queue::SkillStage;

    fn cand(id: i64, idle_secs_ago: u64, answered: u32, talk_secs: u64, level: u8) -> Candidate {
        thread_local!(static BASE: Instant = Instant::now() + Duration::from_secs(10_000));
        let base = BASE.with(|b| *b);
        Candidate {
            agent: AgentId(id),
            idle_since: base - Duration::from_secs(idle_secs_ago),
            answered,
            talk: Duration::from_secs(talk_secs),
            level,
            tried: false,
        }
    }

    fn order(strategy: &Strategy, rr_last: Option<i64>, mut cands: Vec<Candidate>) -> Vec<i64> {
        let best_one = best(strategy, rr_last.map(AgentId), &cands);
        let ranked = rank(strategy, rr_last.map(AgentId), &mut cands);
        assert_eq!(best_one, ranked.first().copied(), "best agrees with rank");
        ranked.into_iter().map(|a| a.0).collect()
    }

    fn four() -> Vec<Candidate> {
        vec![
            cand(1, 10, 5, 300, 2),
            cand(2, 40, 9, 100, 5),
            cand(3, 20, 1, 900, 3),
            cand(4, 30, 5, 50, 5),
        ]
    }

    #[test]
    fn longest_idle_prefers_the_earliest_ready() {
        assert_eq!(order(&Strategy::LongestIdle, None, four()), [2, 4, 3, 1]);
    }

    #[test]
    fn round_robin_continues_after_the_last_agent_and_wraps() {
        assert_eq!(order(&Strategy::RoundRobin, None, four()), [1, 2, 3, 4]);
        assert_eq!(order(&Strategy::RoundRobin, Some(2), four()), [3, 4, 1, 2]);
        assert_eq!(order(&Strategy::RoundRobin, Some(4), four()), [1, 2, 3, 4]);
        assert_eq!(order(&Strategy::RoundRobin, Some(9), four()), [1, 2, 3, 4]);
    }

    #[test]
    fn ring_all_lists_everyone_longest_idle_first() {
        assert_eq!(order(&Strategy::RingAll, None, four()), [2, 4, 3, 1]);
    }

    #[test]
    fn fewest_calls_breaks_ties_by_idle_time() {
        assert_eq!(order(&Strategy::FewestCalls, None, four()), [3, 4, 1, 2]);
    }

    #[test]
    fn least_talk_time_first() {
        assert_eq!(order(&Strategy::LeastTalkTime, None, four()), [4, 2, 1, 3]);
    }

    #[test]
    fn skills_prefers_the_most_proficient_then_longest_idle() {
        let skills = Strategy::Skills {
            skill: "quality".into(),
            stages: vec![SkillStage { after_secs: 0, min_level: 1 }],
        };
        assert_eq!(order(&skills, None, four()), [2, 4, 3, 1]);
    }

    #[test]
    fn agents_who_missed_the_call_go_last_in_every_strategy() {
        for s in [Strategy::LongestIdle, Strategy::RoundRobin, Strategy::FewestCalls] {
            let mut cands = four();
            cands[1].tried = true; // agent 2
            cands[2].tried = true; // agent 3
            let got = order(&s, None, cands);
            assert_eq!(&got[2..].iter().copied().collect::<std::collections::BTreeSet<_>>(), &[2, 3].into());
        }
    }

    #[test]
    fn equal_figures_fall_back_to_agent_id() {
        let same = vec![cand(7, 5, 0, 0, 1), cand(3, 5, 0, 0, 1)];
        assert_eq!(order(&Strategy::FewestCalls, None, same), [3, 7]);
    }
}
