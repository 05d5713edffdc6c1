//! Scenario tests through the public API, on a virtual clock.

use std::time::{Duration, Instant};

use super::*;

pub(super) struct Harness {
    pub(super) acd: Acd,
    pub(super) now: Instant,
    pub(super) out: Vec<Output>,
}

pub(super) fn queue(name: &str, strategy: Strategy) -> QueueConfig {
    QueueConfig { offer_timeout_secs: 10, wrap_up_secs: 5, ..QueueConfig::new(name, strategy) }
}

pub(super) fn member(queue: &str, order: u8) -> Membership {
    Membership { queue: QueueId::new(queue), order }
}

impl Harness {
    pub(super) fn new(queues: Vec<QueueConfig>) -> Self {
        let acd = Acd::new(AcdConfig { queues }).unwrap();
        Harness { acd, now: Instant::now(), out: Vec::new() }
    }

    pub(super) fn cmd(&mut self, cmd: Command) -> Result<(), AcdError> {
        let r = self.acd.handle_command(self.now, cmd);
        self.drain();
        r
    }

    pub(super) fn ok(&mut self, cmd: Command) {
        let shown = format!("{cmd:?}");
        if let Err(e) = self.cmd(cmd) {
            panic!("{shown}: {e}");
        }
    }

    pub(super) fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.acd.handle_timeout(self.now);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(o) = self.acd.poll_output() {
            self.out.push(o);
        }
    }

    pub(super) fn login(&mut self, id: i64, queues: &[(&str, u8)], skills: &[(&str, u8)]) {
        let queues = queues.iter().map(|(q, o)| member(q, *o)).collect();
        let skills = skills.iter().map(|(s, l)| (s.to_string(), *l)).collect();
        self.ok(Command::Login { agent: AgentId(id), queues, skills, not_ready: None });
    }

    pub(super) fn enter(&mut self, call: u64, queue: &str, priority: i32) {
        let caller = format!("1380000{call}");
        let (call, queue) = (CallRef(call), QueueId::new(queue));
        self.ok(Command::Enter { call, queue, priority, caller, open: true });
    }

    /// (call, agents) of every offer-like output since the last take, and clears the log.
    pub(super) fn take_offers(&mut self) -> Vec<(u64, Vec<i64>)> {
        let offers = self.out.iter().filter_map(|o| match o {
            Output::Offer { call, agent, .. } | Output::DialCallback { call, agent, .. } => Some((call.0, vec![agent.0])),
            Output::OfferRingAll { call, agents, .. } => Some((call.0, agents.iter().map(|a| a.0).collect())),
            _ => None,
        });
        let offers = offers.collect();
        self.out.clear();
        offers
    }

    pub(super) fn state(&self, id: i64) -> AgentState {
        self.acd.agent_state(AgentId(id)).unwrap()
    }

    pub(super) fn answer(&mut self, call: u64, agent: i64) {
        self.ok(Command::OfferAnswered { call: CallRef(call), agent: AgentId(agent) });
    }

    pub(super) fn end(&mut self, call: u64) {
        self.ok(Command::CallEnded { call: CallRef(call) });
    }
}

fn skills(stages: &[(u32, u8)]) -> Strategy {
    let stages = stages.iter().map(|&(after_secs, min_level)| SkillStage { after_secs, min_level }).collect();
    Strategy::Skills { skill: "quality".into(), stages }
}

#[test]
fn longest_idle_agent_gets_the_call_and_answers_it() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    for id in [3, 1, 2] {
        h.login(id, &[("q", 0)], &[]);
        h.advance(1);
    }
    h.enter(100, "q", 0);
    assert_eq!(h.take_offers(), [(100, vec![3])]);
    assert!(matches!(h.state(3), AgentState::Reserved { call: CallRef(100), .. }));
    h.answer(100, 3);
    assert_eq!(h.state(3), AgentState::OnCall { call: CallRef(100) });
    h.end(100);
    assert!(matches!(h.state(3), AgentState::WrapUp { .. }));
    assert_eq!(h.acd.poll_timeout(), Some(h.now + Duration::from_secs(5)));
    h.advance(5);
    assert_eq!(h.state(3), AgentState::Ready);
    assert_eq!(h.acd.call_count(), 0);
}

#[test]
fn round_robin_through_the_api_rotates_by_agent_id() {
    let mut h = Harness::new(vec![QueueConfig { wrap_up_secs: 0, ..queue("q", Strategy::RoundRobin) }]);
    for id in [1, 2, 3] {
        h.login(id, &[("q", 0)], &[]);
    }
    let mut got = Vec::new();
    for call in 1..=4 {
        h.enter(call, "q", 0);
        let offers = h.take_offers();
        let agent = offers[0].1[0];
        got.push(agent);
        h.answer(call, agent);
        h.end(call);
    }
    assert_eq!(got, [1, 2, 3, 1]);
}

#[test]
fn higher_priority_callers_go_first_then_arrival_order() {
    let mut h = Harness::new(vec![QueueConfig { wrap_up_secs: 0, ..queue("q", Strategy::LongestIdle) }]);
    h.enter(1, "q", 0);
    h.enter(2, "q", 0);
    h.enter(3, "q", 5);
    assert_eq!(h.acd.position(CallRef(3)), Some(1));
    assert_eq!(h.acd.position(CallRef(2)), Some(3));
    h.login(9, &[("q", 0)], &[]);
    let mut order = Vec::new();
    for _ in 0..3 {
        let (call, _) = h.take_offers()[0].clone();
        order.push(call);
        h.answer(call, 9);
        h.end(call);
    }
    assert_eq!(order, [3, 1, 2]);
}

#[test]
fn missed_offers_make_the_agent_not_ready_and_the_call_moves_on() {
    let q = QueueConfig { max_missed_offers: 2, ..queue("q", Strategy::LongestIdle) };
    let mut h = Harness::new(vec![q]);
    h.login(1, &[("q", 0)], &[]);
    h.advance(1);
    h.login(2, &[("q", 0)], &[]);
    h.enter(10, "q", 0);
    assert_eq!(h.take_offers(), [(10, vec![1])]);
    h.advance(10);
    let cancel = h.out.iter().any(|o| matches!(o, Output::CancelOffer { reason: CancelReason::Timeout, .. }));
    assert!(cancel);
    // Agent 1 missed it once and is ready, but agent 2 is now preferred for this call.
    assert_eq!(h.take_offers(), [(10, vec![2])]);
    h.ok(Command::OfferDeclined { call: CallRef(10), agent: AgentId(2) });
    assert_eq!(h.take_offers(), [(10, vec![1])]);
    h.advance(10);
    assert_eq!(h.state(1), AgentState::NotReady { reason: NotReadyReason::MissedOffers });
    assert_eq!(h.take_offers(), [(10, vec![2])]);
    h.answer(10, 2);
    assert!(matches!(h.state(2), AgentState::OnCall { .. }));
}

#[test]
fn a_callback_keeps_its_place_and_reserves_an_agent_to_dial_the_caller() {
    let mut h = Harness::new(vec![QueueConfig { wrap_up_secs: 0, ..queue("q", Strategy::LongestIdle) }]);
    h.login(1, &[("q", 0)], &[]);
    h.enter(1, "q", 0);
    h.answer(1, 1);
    for call in 2..=4 {
        h.enter(call, "q", 0);
    }
    h.ok(Command::RequestCallback { call: CallRef(3), number: "13900000000".into() });
    h.enter(5, "q", 0);
    h.out.clear();
    h.end(1);
    assert_eq!(h.take_offers(), [(2, vec![1])]);
    h.answer(2, 1);
    h.end(2);
    let dial = h.out.iter().find_map(|o| match o {
        Output::DialCallback { call, agent, number, .. } => Some((call.0, agent.0, number.clone())),
        _ => None,
    });
    assert_eq!(dial, Some((3, 1, "13900000000".to_string())));
    h.answer(3, 1);
    let snap = h.acd.snapshot(h.now);
    assert_eq!(snap.queues[0].counters.callbacks_connected, 1);
    assert_eq!(snap.queues[0].counters.answered, 2);
}

#[test]
fn a_callback_that_does_not_reach_the_caller_frees_the_agent() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    h.enter(1, "q", 0);
    h.ok(Command::RequestCallback { call: CallRef(1), number: "110".into() });
    h.login(1, &[("q", 0)], &[]);
    assert_eq!(h.take_offers(), [(1, vec![1])]);
    h.advance(45);
    assert_eq!(h.state(1), AgentState::Ready);
    assert_eq!(h.acd.call_count(), 0);
    assert_eq!(h.acd.snapshot(h.now).queues[0].counters.callbacks_failed, 1);
}

#[test]
fn overflow_by_waiting_time_to_a_queue_then_to_the_mailbox() {
    let first = QueueConfig {
        overflow: vec![OverflowRule { after_secs: 30, target: OverflowTarget::Queue(QueueId::new("backup")) }],
        ..queue("first", Strategy::LongestIdle)
    };
    let backup = QueueConfig {
        overflow: vec![OverflowRule { after_secs: 60, target: OverflowTarget::Mailbox("mb".into()) }],
        ..queue("backup", Strategy::LongestIdle)
    };
    let mut h = Harness::new(vec![first, backup]);
    h.enter(7, "first", 0);
    assert_eq!(h.acd.poll_timeout(), Some(h.now + Duration::from_secs(30)));
    h.advance(30);
    let to_backup = OverflowTarget::Queue(QueueId::new("backup"));
    assert!(h.out.iter().any(|o| matches!(o, Output::Overflow { to, .. } if *to == to_backup)));
    h.advance(59);
    assert_eq!(h.acd.call_count(), 1);
    h.advance(1);
    assert!(h.out.iter().any(|o| matches!(o, Output::Overflow { to: OverflowTarget::Mailbox(m), .. } if m == "mb")));
    assert_eq!(h.acd.call_count(), 0);
    let snap = h.acd.snapshot(h.now);
    assert_eq!((snap.queues[0].counters.overflowed, snap.queues[1].counters.entered), (1, 1));
}

#[test]
fn overflow_to_callback_keeps_the_place() {
    let q = QueueConfig {
        overflow: vec![OverflowRule { after_secs: 20, target: OverflowTarget::Callback }],
        ..queue("q", Strategy::LongestIdle)
    };
    let mut h = Harness::new(vec![q]);
    h.enter(1, "q", 0);
    h.enter(2, "q", 0);
    h.advance(20);
    assert_eq!(h.acd.snapshot(h.now).queues[0].callbacks, 2);
    h.login(5, &[("q", 0)], &[]);
    assert!(h.out.iter().any(|o| matches!(o, Output::DialCallback { call: CallRef(1), .. })));
}

#[test]
fn skills_widen_over_waiting_time() {
    let mut h = Harness::new(vec![queue("q", skills(&[(0, 4), (30, 1)]))]);
    h.login(1, &[("q", 0)], &[("quality", 2)]);
    h.enter(1, "q", 0);
    let offers = h.take_offers();
    assert!(offers.is_empty(), "{offers:?}");
    assert_eq!(h.acd.poll_timeout(), Some(h.now + Duration::from_secs(30)));
    h.login(2, &[("q", 0)], &[("quality", 5)]);
    assert_eq!(h.take_offers(), [(1, vec![2])]);
    h.answer(1, 2);
    h.enter(2, "q", 0);
    h.advance(29);
    let offers = h.take_offers();
    assert!(offers.is_empty(), "{offers:?}");
    h.advance(1);
    assert_eq!(h.take_offers(), [(2, vec![1])]);
}

#[test]
fn an_agent_takes_calls_from_its_first_queue_first() {
    let mut h = Harness::new(vec![queue("a", Strategy::LongestIdle), queue("b", Strategy::LongestIdle)]);
    h.enter(1, "b", 0);
    h.enter(2, "a", 0);
    h.login(1, &[("b", 1), ("a", 0)], &[]);
    assert_eq!(h.take_offers(), [(2, vec![1])]);
    h.login(2, &[("b", 0), ("a", 1)], &[]);
    assert_eq!(h.take_offers(), [(1, vec![2])]);
}

#[test]
fn ring_all_rings_every_free_agent_and_the_first_answer_wins() {
    let mut h = Harness::new(vec![queue("q", Strategy::RingAll)]);
    for id in 1..=3 {
        h.login(id, &[("q", 0)], &[]);
    }
    h.enter(1, "q", 0);
    let offers = h.take_offers();
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].1.iter().copied().collect::<std::collections::BTreeSet<_>>(), [1, 2, 3].into());
    h.answer(1, 2);
    let cancelled = h.out.iter().find_map(|o| match o {
        Output::CancelOffer { agents, reason: CancelReason::AnsweredElsewhere, .. } => Some(agents.len()),
        _ => None,
    });
    assert_eq!(cancelled, Some(2));
    assert_eq!((h.state(1), h.state(3)), (AgentState::Ready, AgentState::Ready));
}

#[test]
fn a_lost_desk_returns_its_offer_to_the_queue_head_and_keeps_its_call_until_it_ends() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    h.login(1, &[("q", 0)], &[]);
    h.enter(1, "q", 0);
    h.enter(2, "q", 0);
    h.ok(Command::Disconnected { agent: AgentId(1) });
    assert_eq!(h.state(1), AgentState::LoggedOut);
    assert_eq!(h.acd.position(CallRef(1)), Some(1));
    h.login(2, &[("q", 0)], &[]);
    h.take_offers();
    h.answer(1, 2);
    h.ok(Command::Disconnected { agent: AgentId(2) });
    assert_eq!(h.state(2), AgentState::OnCall { call: CallRef(1) });
    h.end(1);
    assert_eq!(h.state(2), AgentState::LoggedOut);
    // Reconnecting mid-call keeps the call and restores wrap-up afterwards.
    h.login(2, &[("q", 0)], &[]);
    h.take_offers();
    h.answer(2, 2);
    h.ok(Command::Disconnected { agent: AgentId(2) });
    h.login(2, &[("q", 0)], &[]);
    assert_eq!(h.state(2), AgentState::OnCall { call: CallRef(2) });
    h.end(2);
    assert!(matches!(h.state(2), AgentState::WrapUp { .. }));
}

#[test]
fn not_ready_and_logout_asked_on_a_call_apply_when_it_is_over() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    h.login(1, &[("q", 0)], &[]);
    h.enter(1, "q", 0);
    h.answer(1, 1);
    h.ok(Command::SetNotReady { agent: AgentId(1), reason: NotReadyReason::Meal });
    h.end(1);
    assert!(matches!(h.state(1), AgentState::WrapUp { .. }));
    h.ok(Command::WrapUpDone { agent: AgentId(1) });
    assert_eq!(h.state(1), AgentState::NotReady { reason: NotReadyReason::Meal });
    h.ok(Command::SetReady { agent: AgentId(1) });
    h.enter(2, "q", 0);
    h.answer(2, 1);
    h.ok(Command::ForceLogout { agent: AgentId(1), by: AgentId(99) });
    h.end(2);
    assert_eq!(h.state(1), AgentState::LoggedOut);
    let by_supervisor = h.out.iter().any(|o| matches!(o,
        Output::AgentStateChanged { to: AgentState::LoggedOut, cause: Cause::Supervisor { by: AgentId(99) }, .. }));
    assert!(by_supervisor);
}

#[test]
fn closed_queues_refuse_or_redirect() {
    let night = QueueConfig { when_closed: Some(OverflowTarget::Queue(QueueId::new("bell"))), ..queue("day", Strategy::LongestIdle) };
    let mut h = Harness::new(vec![night, queue("plain", Strategy::LongestIdle), queue("bell", Strategy::RingAll)]);
    let enter = |call, queue: &str| Command::Enter { call: CallRef(call), queue: QueueId::new(queue), priority: 0, caller: "1".into(), open: false };
    assert_eq!(h.cmd(enter(1, "plain")), Err(AcdError::QueueClosed(QueueId::new("plain"))));
    h.login(1, &[("bell", 0)], &[]);
    h.ok(enter(2, "day"));
    assert_eq!(h.take_offers(), [(2, vec![1])]);
}

#[test]
fn refused_commands_say_why_and_change_nothing() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    assert_eq!(h.cmd(Command::SetReady { agent: AgentId(1) }), Err(AcdError::UnknownAgent(AgentId(1))));
    let login = Command::Login { agent: AgentId(1), queues: vec![member("nope", 0)], skills: vec![], not_ready: None };
    assert_eq!(h.cmd(login), Err(AcdError::UnknownQueue(QueueId::new("nope"))));
    let login = Command::Login { agent: AgentId(1), queues: vec![], skills: vec![("x".into(), 9)], not_ready: None };
    assert!(matches!(h.cmd(login), Err(AcdError::InvalidSkillLevel { .. })));
    h.login(1, &[("q", 0)], &[]);
    h.ok(Command::Logout { agent: AgentId(1) });
    assert_eq!(h.cmd(Command::SetReady { agent: AgentId(1) }), Err(AcdError::NotLoggedIn(AgentId(1))));
    h.enter(1, "q", 0);
    let again = Command::Enter { call: CallRef(1), queue: QueueId::new("q"), priority: 0, caller: String::new(), open: true };
    assert_eq!(h.cmd(again), Err(AcdError::CallExists(CallRef(1))));
    let answer = Command::OfferAnswered { call: CallRef(1), agent: AgentId(1) };
    assert_eq!(h.cmd(answer), Err(AcdError::NoSuchOffer { call: CallRef(1), agent: AgentId(1) }));
    assert_eq!(h.cmd(Command::Abandon { call: CallRef(5) }), Err(AcdError::UnknownCall(CallRef(5))));
    assert_eq!(h.acd.call_count(), 1);
}

#[test]
fn invalid_configurations_are_refused() {
    let bad_stages = AcdConfig { queues: vec![queue("q", skills(&[(10, 4)]))] };
    assert_eq!(Acd::new(bad_stages).err(), Some(ConfigError::BadStages(QueueId::new("q"))));
    let hop = OverflowRule { after_secs: 0, target: OverflowTarget::Queue(QueueId::new("q")) };
    let instant_hop = AcdConfig { queues: vec![QueueConfig { overflow: vec![hop], ..queue("q", Strategy::RingAll) }] };
    assert_eq!(Acd::new(instant_hop).err(), Some(ConfigError::BadOverflow(QueueId::new("q"))));
    let to = OverflowRule { after_secs: 5, target: OverflowTarget::Queue(QueueId::new("zz")) };
    let unknown = AcdConfig { queues: vec![QueueConfig { overflow: vec![to], ..queue("q", Strategy::RingAll) }] };
    assert!(matches!(Acd::new(unknown), Err(ConfigError::UnknownTarget { .. })));
    let dup = AcdConfig { queues: vec![queue("q", Strategy::RingAll), queue("q", Strategy::RoundRobin)] };
    assert!(matches!(Acd::new(dup), Err(ConfigError::DuplicateQueue(_))));
}

#[test]
fn seat_board_counts_and_service_level() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    h.login(1, &[("q", 0)], &[]);
    h.login(2, &[("q", 0)], &[]);
    h.login(3, &[("q", 0)], &[]);
    h.ok(Command::SetNotReady { agent: AgentId(3), reason: NotReadyReason::Training });
    h.login(4, &[("q", 0)], &[]);
    h.ok(Command::Logout { agent: AgentId(4) });
    h.ok(Command::SetNotReady { agent: AgentId(2), reason: NotReadyReason::Break });
    h.enter(1, "q", 0); // answered at once
    h.answer(1, 1);
    h.enter(2, "q", 0); // abandons after 20 s
    h.enter(3, "q", 0); // abandons after 5 s (short abandon, not counted against SL)
    h.advance(5);
    h.ok(Command::Abandon { call: CallRef(3) });
    let snap = h.acd.snapshot(h.now);
    assert_eq!(snap.seats, SeatCounts { serving: 1, idle: 0, not_ready: 2, logged_out: 1 });
    assert_eq!(snap.queues[0].waiting, 1);
    assert_eq!(snap.queues[0].longest_wait, Some(Duration::from_secs(5)));
    let a1 = &snap.agents[0];
    assert_eq!((a1.call, a1.caller.as_deref(), a1.in_state), (Some(CallRef(1)), Some("13800001"), Duration::from_secs(5)));
    h.advance(15);
    h.ok(Command::Abandon { call: CallRef(2) });
    let c = h.acd.snapshot(h.now).queues[0].counters;
    assert_eq!((c.entered, c.answered, c.answered_within_sl, c.abandoned, c.abandoned_after_sl), (3, 1, 1, 2, 1));
    assert_eq!(c.service_level(), Some(0.5));
    assert_eq!(c.abandon_rate(), Some(2.0 / 3.0));
    h.ok(Command::NewDay);
    assert_eq!(h.acd.snapshot(h.now).queues[0].counters, QueueCounters::default());
}

#[test]
fn queue_status_is_pushed_when_waiting_figures_change() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    h.out.clear();
    h.enter(1, "q", 0);
    let status = h.out.iter().rev().find_map(|o| match o {
        Output::QueueStatus(s) => Some(s.clone()),
        _ => None,
    });
    let status = status.unwrap();
    assert_eq!((status.waiting, status.oldest_since, status.ready_agents), (1, Some(h.now), 0));
    h.out.clear();
    h.advance(1);
    assert!(h.out.iter().all(|o| !matches!(o, Output::QueueStatus(_))), "unchanged figures are not pushed");
}

#[test]
fn going_not_ready_while_ringing_returns_the_call_without_a_miss() {
    let mut h = Harness::new(vec![QueueConfig { max_missed_offers: 1, ..queue("q", Strategy::LongestIdle) }]);
    h.login(1, &[("q", 0)], &[]);
    h.enter(1, "q", 0);
    h.ok(Command::SetNotReady { agent: AgentId(1), reason: NotReadyReason::Break });
    assert!(h.out.iter().any(|o| matches!(o, Output::CancelOffer { reason: CancelReason::AgentLeft, .. })));
    assert_eq!(h.acd.position(CallRef(1)), Some(1));
    h.out.clear();
    h.ok(Command::ForceReady { agent: AgentId(1), by: AgentId(50) });
    assert_eq!(h.take_offers(), [(1, vec![1])], "offered again: not ready was no miss");
    h.ok(Command::ForceNotReady { agent: AgentId(1), by: AgentId(50), reason: NotReadyReason::Meeting });
    assert_eq!(h.state(1), AgentState::NotReady { reason: NotReadyReason::Meeting });
    assert_eq!(h.acd.snapshot(h.now).agents[0].missed_offers, 0);
}

#[test]
fn the_queue_event_log_tells_the_story_of_a_call() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    h.login(1, &[("q", 0)], &[]);
    h.ok(Command::SetNotReady { agent: AgentId(1), reason: NotReadyReason::Other });
    h.enter(1, "q", 0);
    h.advance(3);
    h.ok(Command::SetReady { agent: AgentId(1) });
    h.advance(2);
    h.answer(1, 1);
    h.advance(60);
    h.end(1);
    h.advance(5);
    let kinds: Vec<String> = h.out.iter().filter_map(|o| match o {
        Output::QueueEvent(e) => Some(format!("{:?}", e.kind).split([' ', '{']).next().unwrap_or("").to_string()),
        _ => None,
    }).collect();
    assert_eq!(kinds, ["Entered", "Offered", "Answered", "Ended", "WrapUp"]);
    let c = h.acd.snapshot(h.now).queues[0].counters;
    assert_eq!(c.asa(), Some(Duration::from_secs(5)));
    assert_eq!(c.aht(), Some(Duration::from_secs(65)));
}

#[test]
fn a_transfer_to_an_agent_rings_that_agent_and_the_transferring_agent_wraps_up() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle)]);
    for id in [1, 2, 3] {
        h.login(id, &[("q", 0)], &[]);
        h.advance(1);
    }
    h.enter(10, "q", 0);
    assert_eq!(h.take_offers(), [(10, vec![1])]);
    h.answer(10, 1);
    // Agent 1 hands the caller to agent 3 (agent 2 has been idle longer).
    h.end(10);
    assert!(matches!(h.state(1), AgentState::WrapUp { .. }));
    let transfer = Command::Transfer { call: CallRef(10), queue: QueueId::new("q"), priority: 10, caller: "138".into(), agent: Some(AgentId(3)) };
    h.ok(transfer);
    assert_eq!(h.take_offers(), [(10, vec![3])]);
    assert!(matches!(h.state(3), AgentState::Reserved { call: CallRef(10), .. }));
    assert_eq!(h.state(2), AgentState::Ready);
    h.answer(10, 3);
    assert_eq!(h.state(3), AgentState::OnCall { call: CallRef(10) });
    assert!(matches!(h.state(1), AgentState::WrapUp { .. }));
}

#[test]
fn a_transfer_nobody_answers_waits_in_the_queue_ahead_of_earlier_callers() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle), queue("other", Strategy::LongestIdle)]);
    // Agent 1 serves another queue only; a transfer may still name it.
    h.login(1, &[("other", 0)], &[]);
    h.login(2, &[("q", 0)], &[]);
    h.enter(20, "q", 0);
    assert_eq!(h.take_offers(), [(20, vec![2])]);
    h.answer(20, 2);
    h.enter(22, "q", 0);
    // A busy agent is refused, and nothing changes.
    let to_busy = Command::Transfer { call: CallRef(21), queue: QueueId::new("q"), priority: 10, caller: "139".into(), agent: Some(AgentId(2)) };
    assert_eq!(h.cmd(to_busy), Err(AcdError::AgentBusy(AgentId(2))));
    assert_eq!(h.acd.call_count(), 2);
    // Agent 2 hands call 20 to agent 1 and takes a break after it.
    h.end(20);
    h.ok(Command::SetNotReady { agent: AgentId(2), reason: NotReadyReason::Break });
    let transfer = Command::Transfer { call: CallRef(20), queue: QueueId::new("q"), priority: 10, caller: "138".into(), agent: Some(AgentId(1)) };
    h.ok(transfer);
    assert_eq!(h.take_offers(), [(20, vec![1])]);
    // Agent 1 does not answer: the caller waits in the queue, ahead of call 22 that came first.
    h.advance(10);
    assert_eq!(h.state(1), AgentState::Ready);
    assert_eq!((h.acd.position(CallRef(20)), h.acd.position(CallRef(22))), (Some(1), Some(2)));
    h.ok(Command::SetReady { agent: AgentId(2) });
    assert_eq!(h.take_offers().first().map(|o| o.0), Some(20));
}

#[test]
fn a_transfer_to_a_queue_goes_ahead_of_new_arrivals() {
    let mut h = Harness::new(vec![queue("q", Strategy::LongestIdle), queue("experts", Strategy::LongestIdle)]);
    h.enter(30, "experts", 0);
    h.enter(31, "experts", 0);
    let transfer = Command::Transfer { call: CallRef(32), queue: QueueId::new("experts"), priority: 10, caller: "138".into(), agent: None };
    h.ok(transfer);
    assert_eq!(h.acd.position(CallRef(32)), Some(1));
    h.login(5, &[("experts", 0)], &[]);
    assert_eq!(h.take_offers(), [(32, vec![5])]);
}

#[test]
fn estimated_wait_shares_the_calls_ahead_among_the_queues_agents() {
    let mut h = Harness::new(vec![QueueConfig { wrap_up_secs: 0, ..queue("q", Strategy::LongestIdle) }]);
    h.login(1, &[("q", 0)], &[]);
    h.login(2, &[("q", 0)], &[]);
    // Both agents busy with a call each, so later callers wait.
    for call in [1, 2] {
        h.enter(call, "q", 0);
        let (call, agents) = h.take_offers()[0].clone();
        h.answer(call, agents[0]);
    }
    for call in [3, 4, 5] {
        h.enter(call, "q", 0);
    }
    // Nothing handled yet today: three minutes a call, two agents.
    assert_eq!(h.acd.estimated_wait(CallRef(3)), Some((1, Duration::from_secs(90))));
    assert_eq!(h.acd.estimated_wait(CallRef(5)), Some((3, Duration::from_secs(270))));
    // One call handled in 60 s of talk: the figure follows today's handling time.
    h.advance(60);
    h.end(1);
    let (call, agents) = h.take_offers()[0].clone();
    assert_eq!(call, 3);
    h.answer(call, agents[0]);
    assert_eq!(h.acd.estimated_wait(CallRef(4)), Some((1, Duration::from_secs(30))));
    assert_eq!(h.acd.estimated_wait(CallRef(3)), None, "a connected call has no wait");
}
