//! Queues: their configuration (ACD-1, ACD-3), its validation, and the runtime list of calls
//! waiting in each.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use super::agent::AgentId;
use super::call::{CallRef, WaitKey};
use super::stats::QueueCounters;

/// A queue's name, as configured (e.g. `"complaints"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub String);

impl QueueId {
    /// A queue id with this name.
    pub fn new(name: impl Into<String>) -> Self {
        QueueId(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// From `after_secs` of waiting in the queue on, agents with at least `min_level` qualify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkillStage {
    pub after_secs: u32,
    /// Proficiency 1..=5.
    pub min_level: u8,
}

/// How a queue chooses among the free agents who serve it. Every strategy puts agents who
/// already missed or declined the call last, and breaks ties by longest idle, then agent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// The agent ready for the longest time.
    LongestIdle,
    /// The next agent id after the one last offered a call from this queue, wrapping around.
    RoundRobin,
    /// Every free agent's desk rings at once; the first to answer takes the call.
    RingAll,
    /// The agent who answered the fewest calls today.
    FewestCalls,
    /// The agent with the least talk time today.
    LeastTalkTime,
    /// Agents with proficiency in `skill` of at least the current stage's level, the most
    /// proficient first. Stages widen the pool as the call waits: the first must start at 0 s,
    /// later ones start later and ask a lower level.
    Skills { skill: String, stages: Vec<SkillStage> },
}

/// Where a call overflows to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverflowTarget {
    /// Another queue (the call keeps its arrival order there; waiting time restarts).
    Queue(QueueId),
    /// The IVR's mailbox with this id; the call leaves the ACD.
    Mailbox(String),
    /// The call becomes a callback that keeps its place (the caller is told and hangs up).
    Callback,
}

/// After `after_secs` waiting in the queue, a live caller who is not being offered is sent to
/// `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverflowRule {
    pub after_secs: u32,
    pub target: OverflowTarget,
}

/// One queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub name: QueueId,
    pub strategy: Strategy,
    /// How long an offer rings before it counts as missed (at least 1 s). Default 20.
    pub offer_timeout_secs: u32,
    /// How long switchd may take to reach a caller for a callback (at least 1 s). Default 45.
    pub callback_timeout_secs: u32,
    /// After-call work time; 0 makes the agent ready at once. Default 10.
    pub wrap_up_secs: u32,
    /// Missed offers in a row that make the agent not ready (`missed_offers`); 0 = never.
    /// Default 3.
    pub max_missed_offers: u32,
    /// Overflow by waiting time, in increasing `after_secs`.
    pub overflow: Vec<OverflowRule>,
    /// Where calls go when the caller says the queue is closed (business hours, night bell);
    /// `None` refuses them with [`AcdError::QueueClosed`](super::AcdError::QueueClosed).
    pub when_closed: Option<OverflowTarget>,
    /// The service-level threshold. Default 15 (GB/T 33358).
    pub service_level_secs: u32,
}

impl QueueConfig {
    /// A queue with the defaults above and no overflow.
    pub fn new(name: impl Into<String>, strategy: Strategy) -> Self {
        QueueConfig {
            name: QueueId::new(name),
            strategy,
            offer_timeout_secs: 20,
            callback_timeout_secs: 45,
            wrap_up_secs: 10,
            max_missed_offers: 3,
            overflow: Vec::new(),
            when_closed: None,
            service_level_secs: 15,
        }
    }

    /// The minimum proficiency a call needs after waiting `waited` (`None`: no skill needed).
    pub(super) fn min_level(&self, waited: Duration) -> Option<u8> {
        let Strategy::Skills { stages, .. } = &self.strategy else {
            return None;
        };
        let secs = waited.as_secs();
        stages.iter().rev().find(|s| u64::from(s.after_secs) <= secs).map(|s| s.min_level)
    }

    /// The skill this queue routes by, if it routes by skill.
    pub(super) fn skill(&self) -> Option<&str> {
        match &self.strategy {
            Strategy::Skills { skill, .. } => Some(skill),
            _ => None,
        }
    }
}

/// The ACD's configuration: its queues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcdConfig {
    pub queues: Vec<QueueConfig>,
}

/// Why a configuration was refused by [`Acd::new`](super::Acd::new).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Two queues have the same name.
    #[error("队列重名 / duplicate queue {0}")]
    DuplicateQueue(QueueId),
    /// An overflow rule names a queue that does not exist.
    #[error("队列 {queue} 溢出到不存在的队列 {target} / queue {queue} overflows to unknown queue {target}")]
    UnknownTarget { queue: QueueId, target: QueueId },
    /// A timeout is zero.
    #[error("队列 {0} 的振铃或回呼超时为0 / queue {0} has a zero offer or callback timeout")]
    ZeroTimeout(QueueId),
    /// Skill stages are empty, do not start at 0 s, do not increase, or have a level outside 1..=5.
    #[error("队列 {0} 的技能分级不正确 / queue {0} has invalid skill stages")]
    BadStages(QueueId),
    /// Overflow rules are not in increasing time, or overflow to a queue after 0 s.
    #[error("队列 {0} 的溢出规则不正确 / queue {0} has invalid overflow rules")]
    BadOverflow(QueueId),
}

impl AcdConfig {
    /// Checks the configuration; `Ok` means no command can make the ACD loop or panic.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for q in &self.queues {
            if !names.insert(&q.name) {
                return Err(ConfigError::DuplicateQueue(q.name.clone()));
            }
        }
        for q in &self.queues {
            validate_queue(q, &names)?;
        }
        Ok(())
    }
}

fn validate_queue(q: &QueueConfig, names: &HashSet<&QueueId>) -> Result<(), ConfigError> {
    if q.offer_timeout_secs == 0 || q.callback_timeout_secs == 0 {
        return Err(ConfigError::ZeroTimeout(q.name.clone()));
    }
    if let Strategy::Skills { stages, .. } = &q.strategy {
        let starts = stages.first().is_some_and(|s| s.after_secs == 0);
        let rising = stages.windows(2).all(|w| w[0].after_secs < w[1].after_secs);
        let levels = stages.iter().all(|s| (1..=5).contains(&s.min_level));
        if !(starts && rising && levels) {
            return Err(ConfigError::BadStages(q.name.clone()));
        }
    }
    let rising = q.overflow.windows(2).all(|w| w[0].after_secs < w[1].after_secs);
    // A 0 s overflow to a queue could bounce a call between queues forever within one instant.
    let instant_hop = q
        .overflow
        .iter()
        .any(|r| r.after_secs == 0 && matches!(r.target, OverflowTarget::Queue(_)));
    if !rising || instant_hop {
        return Err(ConfigError::BadOverflow(q.name.clone()));
    }
    let targets = q.overflow.iter().map(|r| &r.target).chain(q.when_closed.as_ref());
    for t in targets {
        if let OverflowTarget::Queue(target) = t {
            if !names.contains(target) {
                let (queue, target) = (q.name.clone(), target.clone());
                return Err(ConfigError::UnknownTarget { queue, target });
            }
        }
    }
    Ok(())
}

/// A call in a queue's waiting list, with what scans of the list need (so they look up no
/// call records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Waiter {
    pub(super) call: CallRef,
    /// When the call entered this queue.
    pub(super) entered: Instant,
    /// The call is a callback (the caller has hung up).
    pub(super) callback: bool,
}

/// A queue at run time.
#[derive(Debug)]
pub(super) struct Queue {
    pub(super) cfg: QueueConfig,
    /// Calls in [`Phase::Waiting`](super::call::Phase::Waiting), in queue order.
    pub(super) waiting: BTreeMap<WaitKey, Waiter>,
    /// How many of this queue's calls are being offered now.
    pub(super) offering: usize,
    /// The agent last offered a call by round-robin.
    pub(super) rr_last: Option<AgentId>,
    pub(super) counters: QueueCounters,
    /// Its status may have changed since the last [`Output::QueueStatus`](super::Output::QueueStatus).
    pub(super) dirty: bool,
    /// The status last pushed, so unchanged figures are not pushed again.
    pub(super) last_status: Option<super::QueueStatus>,
}

impl Queue {
    pub(super) fn new(cfg: QueueConfig) -> Self {
        Queue {
            cfg,
            waiting: BTreeMap::new(),
            offering: 0,
            rr_last: None,
            counters: QueueCounters::default(),
            dirty: true,
            last_status: None,
        }
    }
}
