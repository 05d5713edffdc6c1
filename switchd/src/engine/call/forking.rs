//! Forking (issue 3): the caller bridged to whichever of several outbound legs answers first.
//! The decisions are the sans-IO [`Fork`]'s; this drives it with the legs' SIP signals, the
//! caller's hang-up and the media clock, and carries out what it asks.

use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use super::{BridgeState, Call, CallError, Input, LegSignal, FRAME_SAMPLES};
use crate::engine::fork::{Fork, ForkAction, LegProgress};
use crate::engine::outbound::{self, OutboundLeg};
use crate::sip::ua::{CallCommand, LegId};

/// One outbound leg of a fork while it rings.
pub(super) struct ForkLeg {
    target: String,
    placed: OutboundLeg,
    /// The SDP of its 2xx, once it answered.
    answer: Option<Vec<u8>>,
}

/// What the fork decided.
enum Decided {
    /// Bridged to the leg that called this target.
    Connected(String),
    /// Nobody answered: the caller is to be refused with this status.
    Refused(u16),
}

impl Call {
    /// Rings every target at once (numbers through the outbound trunk, `sip:` URIs directly,
    /// each as [`Call::bridge_to_number`] places one) and bridges the caller to the first that
    /// answers: the caller hears ringing (180) once any target rings, the other targets are
    /// cancelled, and both sides talk until either hangs up; the call record then names the
    /// answering target as callee. Early media is not relayed (ringing only). `Ok(None)` when
    /// the far end hung up after talking, `Ok(Some(status))` when nobody answered (the best
    /// final response of all, [`crate::engine::fork::best_response`]; 480 once `ring` passed),
    /// `Err(Ended)` when the caller hung up first (every leg cancelled).
    pub async fn bridge_to_any(&mut self, targets: &[String], ring: Duration) -> Result<Option<u16>, CallError> {
        let mut fork = Fork::new(std::time::Instant::now(), ring);
        for target in targets {
            self.place_fork_leg(&mut fork, target);
        }
        let target = match self.ring_fork(&mut fork).await? {
            Decided::Connected(target) => target,
            Decided::Refused(status) => {
                self.sip_status = Some(status);
                return Ok(Some(status));
            }
        };
        if let Some(id) = self.info.cdr {
            if let Err(e) = self.shared.store.call_answered_by(id, chrono::Utc::now(), target).await {
                tracing::warn!(leg = %self.info.leg, error = %e, "CDR: cannot record who answered");
            }
        }
        self.answer().await?;
        self.record_if_configured().await;
        self.talk_bridged().await.map(|()| None)
    }

    /// Places the leg to one target; a target that cannot be placed (no trunk, no address)
    /// counts as a leg failed with 503.
    fn place_fork_leg(&mut self, fork: &mut Fork, target: &str) {
        let leg = outbound::next_leg(&self.shared);
        fork.add_leg(leg);
        self.shared.metrics.fork_legs.fetch_add(1, Ordering::Relaxed);
        match outbound::place_as(&self.shared, leg, target) {
            Ok(placed) => {
                tracing::info!(leg = %self.info.leg, forked = %leg, target, "forking to a target");
                self.fork_legs.push(ForkLeg { target: target.to_owned(), placed, answer: None });
            }
            Err(e) => {
                tracing::warn!(leg = %self.info.leg, forked = %leg, target, error = %e, "a fork's target cannot be called");
                fork.handle_leg(leg, LegProgress::Failed(503));
            }
        }
    }

    /// Waits for the fork's decision, relaying ringing meanwhile; the caller hanging up
    /// cancels every leg still ringing.
    async fn ring_fork(&mut self, fork: &mut Fork) -> Result<Decided, CallError> {
        loop {
            if let Some(decided) = self.fork_actions(fork) {
                return Ok(decided);
            }
            let input = self.next().await;
            match input {
                Ok(Input::Fork(leg, signal)) => self.fork_signal(fork, leg, signal),
                Ok(_) => {}
                Err(e) => {
                    fork.caller_gone();
                    self.fork_actions(fork);
                    return Err(e);
                }
            }
            let now = std::time::Instant::now();
            if fork.poll_timeout().is_some_and(|due| due <= now) {
                fork.handle_timeout(now);
            }
        }
    }

    /// Feeds one leg's SIP signal to the fork.
    fn fork_signal(&mut self, fork: &mut Fork, leg: LegId, signal: Option<LegSignal>) {
        let progress = match signal {
            Some(LegSignal::Ringing) => LegProgress::Ringing,
            Some(LegSignal::Answered(sdp)) => {
                if let Some(l) = self.fork_legs.iter_mut().find(|l| l.placed.leg == leg) {
                    l.answer = Some(sdp);
                }
                LegProgress::Answered
            }
            Some(LegSignal::Failed(status)) => {
                self.forget_fork_leg(leg);
                LegProgress::Failed(status)
            }
            Some(LegSignal::Ended(_)) | None => {
                self.forget_fork_leg(leg);
                LegProgress::Ended
            }
            Some(LegSignal::ReInvite(_) | LegSignal::Dtmf(_) | LegSignal::Confirmed(_)) => return,
        };
        tracing::debug!(leg = %self.info.leg, forked = %leg, ?progress, "fork leg progress");
        fork.handle_leg(leg, progress);
    }

    /// Carries out the fork's actions; `Some` once it has decided.
    fn fork_actions(&mut self, fork: &mut Fork) -> Option<Decided> {
        let mut decided = None;
        while let Some(action) = fork.poll_action() {
            match action {
                ForkAction::RingCaller => self.ring(),
                ForkAction::Drop(leg) => {
                    // CANCEL while it rings; ACK and BYE for a 2xx that crosses it (the SIP side).
                    self.command(CallCommand::Hangup { leg });
                    self.forget_fork_leg(leg);
                    self.shared.metrics.fork_legs_dropped.fetch_add(1, Ordering::Relaxed);
                }
                ForkAction::Connect(leg) => {
                    // A winner we no longer hold cannot happen (failed and dropped legs never
                    // win); were it to, the caller is refused rather than left ringing.
                    decided = Some(self.connect_fork_leg(leg).map_or(Decided::Refused(500), Decided::Connected));
                }
                ForkAction::Reject(status) => {
                    tracing::info!(leg = %self.info.leg, status, "no forked target answered");
                    decided = Some(Decided::Refused(status));
                }
            }
        }
        decided
    }

    /// The leg that answered first becomes the bridged leg (media as for one target);
    /// returns its target.
    fn connect_fork_leg(&mut self, leg: LegId) -> Option<String> {
        let i = self.fork_legs.iter().position(|l| l.placed.leg == leg)?;
        let ForkLeg { target, placed, answer } = self.fork_legs.swap_remove(i);
        tracing::info!(leg = %self.info.leg, bridged = %leg, target, "forked call answered");
        self.bridge_rtp = Some(placed.rtp);
        self.bridge_signals = Some(placed.signals);
        self.bridge = Some(BridgeState { leg, local: placed.local, up: false, same_codec: false, heard: Vec::with_capacity(FRAME_SAMPLES) });
        self.bridge_answered(&answer.unwrap_or_default());
        Some(target)
    }

    /// Forgets a leg (its media and signals); the SIP side has ended it or is ending it.
    fn forget_fork_leg(&mut self, leg: LegId) {
        self.fork_legs.retain(|l| l.placed.leg != leg);
    }

    /// Ends every leg of a fork still ringing (the call is being torn down).
    pub(super) fn drop_fork_legs(&mut self) {
        for l in std::mem::take(&mut self.fork_legs) {
            self.command(CallCommand::Hangup { leg: l.placed.leg });
        }
    }
}

/// The next signal of any ringing fork leg (`None`: its channel closed), or never without one.
pub(super) async fn recv_fork(legs: &mut [ForkLeg]) -> (LegId, Option<LegSignal>) {
    if legs.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for l in legs.iter_mut() {
            if let Poll::Ready(signal) = l.placed.signals.poll_recv(cx) {
                return Poll::Ready((l.placed.leg, signal));
            }
        }
        Poll::Pending
    })
    .await
}
