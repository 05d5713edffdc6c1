//! Parallel forking (issue 3): a forward route with several targets rings them all at once and
//! bridges the caller to the first that answers. This is the sans-IO core that decides, from
//! the outbound legs' progress, when the caller hears ringing, which leg wins, which legs are
//! ended, and what the caller is told when nobody answers.
//!
//! Usage contract: the driver ([`super::call::Call::bridge_to_any`]) adds each leg with
//! [`Fork::add_leg`] as it places it, feeds the legs' signals to [`Fork::handle_leg`], the
//! caller's hang-up to [`Fork::caller_gone`], and calls [`Fork::handle_timeout`] once the time
//! [`Fork::poll_timeout`] gave has come; after each of these it drains [`Fork::poll_action`]
//! until `None`. The fork reads no clock and sends nothing itself.
//!
//! Ending a leg is one action, [`ForkAction::Drop`]: the SIP side sends CANCEL while the leg
//! rings, and ACK then BYE for a 2xx that crosses the CANCEL or comes after another leg won
//! (RFC 3261 §13.2.2.4, [`crate::sip::uac`]); a late answer seen here is dropped again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::sip::ua::LegId;

/// What happened on one outbound leg (its [`super::call::LegSignal`] as the fork needs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegProgress {
    /// 180 or 183.
    Ringing,
    /// A 2xx (already ACKed by the SIP side).
    Answered,
    /// A final 3xx–6xx, 408 for timer B, 503 for a transport error or a leg not placed.
    Failed(u16),
    /// The leg ended without a final response we saw.
    Ended,
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkAction {
    /// Tell the caller it rings (180), once per fork.
    RingCaller,
    /// End this leg (CANCEL while it rings, BYE once answered).
    Drop(LegId),
    /// Bridge the caller to this leg: it answered first.
    Connect(LegId),
    /// Nobody answered: refuse the caller with this status.
    Reject(u16),
}

/// How the fork ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkOutcome {
    Answered(LegId),
    Rejected(u16),
    /// The caller hung up (CANCEL) first.
    CallerGone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegState {
    Trying,
    Ringing,
    Won,
    Failed(u16),
    Dropped,
}

impl LegState {
    fn active(self) -> bool {
        matches!(self, LegState::Trying | LegState::Ringing)
    }
}

/// The fork of one call (see the module docs for the usage contract).
#[derive(Debug)]
pub struct Fork {
    legs: Vec<(LegId, LegState)>,
    deadline: Instant,
    rang: bool,
    /// Final failures in the order they came.
    failures: Vec<u16>,
    outcome: Option<ForkOutcome>,
    actions: VecDeque<ForkAction>,
}

impl Fork {
    /// A fork that gives up `ring` after `now` (the caller then gets 480).
    pub fn new(now: Instant, ring: Duration) -> Self {
        Self { legs: Vec::new(), deadline: now + ring, rang: false, failures: Vec::new(), outcome: None, actions: VecDeque::new() }
    }

    /// One more leg, placed (or about to be).
    pub fn add_leg(&mut self, leg: LegId) {
        self.legs.push((leg, LegState::Trying));
    }

    /// A leg's progress.
    pub fn handle_leg(&mut self, leg: LegId, progress: LegProgress) {
        let Some(state) = self.legs.iter().find(|(id, _)| *id == leg).map(|(_, s)| *s) else {
            return;
        };
        match progress {
            LegProgress::Ringing if state.active() => {
                self.set(leg, LegState::Ringing);
                if !self.rang && self.outcome.is_none() {
                    self.rang = true;
                    self.actions.push_back(ForkAction::RingCaller);
                }
            }
            LegProgress::Answered if state.active() && self.outcome.is_none() => self.won(leg),
            // Too late: another leg won, or the fork is over. End it (the SIP side has ACKed).
            LegProgress::Answered if state.active() || state == LegState::Dropped => {
                self.set(leg, LegState::Dropped);
                self.actions.push_back(ForkAction::Drop(leg));
            }
            LegProgress::Failed(status) if state.active() => self.failed(leg, status),
            LegProgress::Ended if state.active() => self.failed(leg, 480),
            _ => {}
        }
    }

    /// The ring time is up (call once [`Fork::poll_timeout`] has passed): every leg still
    /// ringing is dropped and the caller gets 480.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_none() && now >= self.deadline {
            self.drop_active();
            self.reject(480);
        }
    }

    /// The caller hung up before any answer: every leg still ringing is dropped.
    pub fn caller_gone(&mut self) {
        if self.outcome.is_none() {
            self.drop_active();
            self.outcome = Some(ForkOutcome::CallerGone);
        }
    }

    /// When [`Fork::handle_timeout`] is due; `None` once the fork is decided.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.outcome.is_none().then_some(self.deadline)
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<ForkAction> {
        self.actions.pop_front()
    }

    /// How the fork ended, once it has.
    pub fn outcome(&self) -> Option<ForkOutcome> {
        self.outcome
    }

    fn won(&mut self, leg: LegId) {
        self.set(leg, LegState::Won);
        self.outcome = Some(ForkOutcome::Answered(leg));
        self.actions.push_back(ForkAction::Connect(leg));
        self.drop_active();
    }

    fn failed(&mut self, leg: LegId, status: u16) {
        self.set(leg, LegState::Failed(status));
        if self.outcome.is_some() {
            return;
        }
        self.failures.push(status);
        // §16.7: a 6xx ends the search at once; otherwise wait for every leg.
        if (600..700).contains(&status) {
            self.drop_active();
            self.reject(status);
        } else if !self.legs.iter().any(|(_, s)| s.active()) {
            self.reject(best_response(&self.failures));
        }
    }

    fn drop_active(&mut self) {
        for (leg, state) in &mut self.legs {
            if state.active() {
                *state = LegState::Dropped;
                self.actions.push_back(ForkAction::Drop(*leg));
            }
        }
    }

    fn reject(&mut self, status: u16) {
        self.outcome = Some(ForkOutcome::Rejected(status));
        self.actions.push_back(ForkAction::Reject(status));
    }

    fn set(&mut self, leg: LegId, state: LegState) {
        if let Some(entry) = self.legs.iter_mut().find(|(id, _)| *id == leg) {
            entry.1 = state;
        }
    }
}

/// The response the caller gets when every leg failed (RFC 3261 §16.7, kept simple): the
/// lowest class wins — so a 4xx beats a 5xx — and within it the first that came. A 3xx counts
/// as 480 (the B2BUA follows no redirect and passes no Contact on), and a 503 becomes 500 (it
/// would tell the caller's side that switchd itself is unavailable). None at all: 480.
pub fn best_response(failures: &[u16]) -> u16 {
    let mapped = failures.iter().map(|&s| match s {
        300..=399 => 480,
        503 => 500,
        s => s,
    });
    mapped.fold(None, |best: Option<u16>, s| match best {
        Some(b) if b / 100 <= s / 100 => Some(b),
        _ => Some(s),
    })
    .unwrap_or(480)
}

#[cfg(test)]
#[path = "fork_tests.rs"]
mod tests;
