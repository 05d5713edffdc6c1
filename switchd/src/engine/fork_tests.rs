//! The fork's decisions on a virtual clock: who wins, which legs are cancelled, what a late
//! 2xx gets, which response the caller hears when nobody answers.

use super::*;

const RING: Duration = Duration::from_secs(30);

fn leg(n: u64) -> LegId {
    LegId::engine(n)
}

/// A fork over legs 1..=n, started at `t0`.
fn fork_of(n: u64, t0: Instant) -> Fork {
    let mut fork = Fork::new(t0, RING);
    for i in 1..=n {
        fork.add_leg(leg(i));
    }
    fork
}

fn drain(fork: &mut Fork) -> Vec<ForkAction> {
    std::iter::from_fn(|| fork.poll_action()).collect()
}

#[test]
fn the_first_answer_wins_and_the_others_are_cancelled() {
    let t0 = Instant::now();
    let mut fork = fork_of(3, t0);
    fork.handle_leg(leg(2), LegProgress::Ringing);
    fork.handle_leg(leg(1), LegProgress::Ringing);
    assert_eq!(drain(&mut fork), [ForkAction::RingCaller], "ringing is relayed once");
    fork.handle_leg(leg(2), LegProgress::Answered);
    assert_eq!(drain(&mut fork), [ForkAction::Connect(leg(2)), ForkAction::Drop(leg(1)), ForkAction::Drop(leg(3))]);
    assert_eq!(fork.outcome(), Some(ForkOutcome::Answered(leg(2))));
    assert_eq!(fork.poll_timeout(), None, "no ring timeout once answered");
    // The cancelled legs' ends change nothing.
    fork.handle_leg(leg(1), LegProgress::Failed(487));
    fork.handle_leg(leg(3), LegProgress::Ended);
    fork.handle_timeout(t0 + RING);
    assert_eq!(drain(&mut fork), []);
    assert_eq!(fork.outcome(), Some(ForkOutcome::Answered(leg(2))));
}

#[test]
fn a_2xx_after_another_leg_won_is_ended_with_bye() {
    let mut fork = fork_of(2, Instant::now());
    fork.handle_leg(leg(1), LegProgress::Answered);
    assert_eq!(drain(&mut fork), [ForkAction::Connect(leg(1)), ForkAction::Drop(leg(2))]);
    // Leg 2's 200 crossed our CANCEL: the SIP side ACKed it; the fork ends it (BYE).
    fork.handle_leg(leg(2), LegProgress::Answered);
    assert_eq!(drain(&mut fork), [ForkAction::Drop(leg(2))]);
    assert_eq!(fork.outcome(), Some(ForkOutcome::Answered(leg(1))), "the winner stays");
    // The winner's 2xx retransmitted changes nothing.
    fork.handle_leg(leg(1), LegProgress::Answered);
    assert_eq!(drain(&mut fork), []);
}

#[test]
fn ringing_before_any_leg_rings_is_not_sent() {
    let mut fork = fork_of(2, Instant::now());
    fork.handle_leg(leg(1), LegProgress::Failed(404));
    assert_eq!(drain(&mut fork), [], "one leg failed, the other still tries");
    fork.handle_leg(leg(2), LegProgress::Ringing);
    fork.handle_leg(leg(2), LegProgress::Ringing);
    assert_eq!(drain(&mut fork), [ForkAction::RingCaller]);
}

#[test]
fn the_caller_cancelling_drops_every_ringing_leg() {
    let mut fork = fork_of(3, Instant::now());
    fork.handle_leg(leg(1), LegProgress::Ringing);
    fork.handle_leg(leg(3), LegProgress::Failed(486));
    drain(&mut fork);
    fork.caller_gone();
    assert_eq!(drain(&mut fork), [ForkAction::Drop(leg(1)), ForkAction::Drop(leg(2))], "leg 3 is over already");
    assert_eq!(fork.outcome(), Some(ForkOutcome::CallerGone));
    // A leg answering now is too late.
    fork.handle_leg(leg(2), LegProgress::Answered);
    assert_eq!(drain(&mut fork), [ForkAction::Drop(leg(2))]);
}

#[test]
fn all_legs_failing_gives_the_best_response() {
    let mut fork = fork_of(2, Instant::now());
    fork.handle_leg(leg(1), LegProgress::Failed(503));
    fork.handle_leg(leg(2), LegProgress::Failed(486));
    assert_eq!(drain(&mut fork), [ForkAction::Reject(486)], "a 4xx beats a 5xx");
    assert_eq!(fork.outcome(), Some(ForkOutcome::Rejected(486)));
}

#[test]
fn a_6xx_ends_the_fork_at_once() {
    let mut fork = fork_of(3, Instant::now());
    fork.handle_leg(leg(1), LegProgress::Failed(486));
    fork.handle_leg(leg(2), LegProgress::Ringing);
    drain(&mut fork);
    fork.handle_leg(leg(3), LegProgress::Failed(603));
    assert_eq!(drain(&mut fork), [ForkAction::Drop(leg(2)), ForkAction::Reject(603)]);
    fork.handle_leg(leg(2), LegProgress::Failed(487));
    assert_eq!(drain(&mut fork), []);
}

#[test]
fn the_ring_timeout_drops_all_and_gives_480() {
    let t0 = Instant::now();
    let mut fork = fork_of(2, t0);
    fork.handle_leg(leg(1), LegProgress::Ringing);
    drain(&mut fork);
    assert_eq!(fork.poll_timeout(), Some(t0 + RING));
    fork.handle_timeout(t0 + RING - Duration::from_millis(1));
    assert_eq!(drain(&mut fork), [], "not yet");
    fork.handle_timeout(t0 + RING);
    assert_eq!(drain(&mut fork), [ForkAction::Drop(leg(1)), ForkAction::Drop(leg(2)), ForkAction::Reject(480)]);
    assert_eq!(fork.poll_timeout(), None);
}

#[test]
fn a_leg_ending_without_a_final_counts_as_480() {
    let mut fork = fork_of(2, Instant::now());
    fork.handle_leg(leg(1), LegProgress::Ended);
    fork.handle_leg(leg(2), LegProgress::Failed(500));
    assert_eq!(drain(&mut fork), [ForkAction::Reject(480)]);
}

#[test]
fn best_response_follows_rfc3261_16_7_simplified() {
    assert_eq!(best_response(&[503, 486]), 486);
    assert_eq!(best_response(&[503]), 500, "503 is mapped to 500");
    assert_eq!(best_response(&[502, 503]), 502);
    assert_eq!(best_response(&[404, 486]), 404, "the first of the lowest class");
    assert_eq!(best_response(&[302, 500]), 480, "a redirect is not followed");
    assert_eq!(best_response(&[408, 500]), 408);
    assert_eq!(best_response(&[]), 480);
}

/// Many orders of the same events on seeded random schedules: exactly one outcome, at most
/// one leg connected, every other leg dropped or failed, ringing relayed at most once.
#[test]
fn any_order_of_events_keeps_the_invariants() {
    for seed in 0..2000u64 {
        let mut rng = crate::test_rng::Rng::new(seed);
        let t0 = Instant::now();
        let n = 2 + rng.below(3);
        let mut fork = fork_of(n, t0);
        let mut actions = Vec::new();
        for _ in 0..12 {
            let l = leg(1 + rng.below(n));
            match rng.below(6) {
                0 => fork.handle_leg(l, LegProgress::Ringing),
                1 => fork.handle_leg(l, LegProgress::Answered),
                2 => fork.handle_leg(l, LegProgress::Failed([404, 486, 503, 603][rng.index(4)])),
                3 => fork.handle_leg(l, LegProgress::Ended),
                4 => fork.handle_timeout(t0 + Duration::from_secs(rng.below(40))),
                _ => fork.caller_gone(),
            }
            actions.extend(drain(&mut fork));
        }
        let connects = actions.iter().filter(|a| matches!(a, ForkAction::Connect(_))).count();
        let rejects = actions.iter().filter(|a| matches!(a, ForkAction::Reject(_))).count();
        let rings = actions.iter().filter(|a| **a == ForkAction::RingCaller).count();
        assert!(connects + rejects <= 1 && rings <= 1, "seed {seed}: {actions:?}");
        if let Some(ForkAction::Connect(winner)) = actions.iter().find(|a| matches!(a, ForkAction::Connect(_))) {
            assert!(!actions.contains(&ForkAction::Drop(*winner)), "seed {seed}: the winner dropped: {actions:?}");
        }
        let decided = actions.iter().position(|a| matches!(a, ForkAction::Connect(_) | ForkAction::Reject(_)));
        if let Some(at) = decided {
            assert!(!actions[at..].contains(&ForkAction::RingCaller), "seed {seed}: ringing after the decision");
        }
    }
}
