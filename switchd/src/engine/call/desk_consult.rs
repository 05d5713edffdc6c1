//! A second desk in a caller's call: the desk user an agent consults (attended transfer to a
//! desk, AGT-2; a call for help, SUP-3), and a supervisor who takes the call over (接管,
//! SUP-2). The consulted desk knows the call by the caller's call id; the registry tells its
//! answer, hang-up and audio apart ([`DeskSignal::ConsultAnswered`] …). While consulted it is
//! the mixer's third party, as a consulted outside number is: with the caller held, agent and
//! consulted desk hear each other and the caller hears the music; taken off hold, all three
//! talk. Completing the transfer makes it the call's desk party.

use std::time::{Duration, Instant};

use rexian_shared::audio::AudioFrame;
use rexian_shared::Event;

use super::{Call, DeskMedia, DeskOut};
use crate::engine::desk_leg::{DeskSignal, INTERNAL};
use crate::engine::intercom::DESK_TRUNK;
use crate::engine::rtp_leg::FRAME_SAMPLES;
use crate::engine::EngineEvent;

/// The desk being consulted.
pub(super) struct DeskConsult {
    user_id: i64,
    /// Until its answer, and when it stops ringing.
    media: Option<DeskMedia>,
    ring_until: Instant,
    /// What it said this tick.
    pcm: Vec<i16>,
}

impl DeskConsult {
    /// Its 20 ms due at `now`, once it talks.
    pub(super) fn take(&mut self, now: Instant) -> Option<&[i16]> {
        let media = self.media.as_mut()?;
        media.take(now, &mut self.pcm);
        Some(&self.pcm)
    }

    /// Sends it what it hears this tick.
    pub(super) fn send(&mut self, out: &tokio::sync::mpsc::UnboundedSender<DeskOut>, samples: &[i16]) {
        let Some(media) = self.media.as_mut() else { return };
        if let Some(frame) = media.encode(samples) {
            let _ = out.send(DeskOut::Audio { conn_id: media.conn_id, frame });
        }
    }

    /// What it said this tick, if it talks.
    pub(super) fn said(&self) -> Option<&[i16]> {
        self.media.as_ref().map(|_| self.pcm.as_slice())
    }
}

impl Call {
    /// Attended transfer to a desk, first step: the caller is held (music) and desk user
    /// `user_id` rings (`CallOffered` with this call's id, `by` as the caller, `internal` as
    /// the callee) for `desk_ring_secs`. Its answer, hang-up and audio arrive as desk signals
    /// ([`Call::desk_consult_signal`]); unanswered, the caller is taken off hold.
    pub(super) fn start_desk_consult(&mut self, user_id: i64, by: &str) {
        let call = self.info.leg.0;
        if self.bridge_signals.is_some() || self.desk_consult.is_some() || !self.shared.desks.start_consult(call, user_id, by) {
            tracing::info!(leg = %self.info.leg, "a third party is already in the call");
            return;
        }
        tracing::info!(leg = %self.info.leg, user_id, "consulting a desk");
        self.set_held(true);
        let ring = Duration::from_secs(u64::from(self.desk_ring_secs()));
        self.desk_consult = Some(DeskConsult { user_id, media: None, ring_until: Instant::now() + ring, pcm: Vec::with_capacity(FRAME_SAMPLES) });
        let offer = Event::CallOffered { call, caller: by.to_owned(), callee: INTERNAL.to_owned(), trunk: DESK_TRUNK.to_owned(), record: self.info.cdr };
        let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event: offer });
        self.emit(EngineEvent::DeskBusy { user_id, call });
    }

    /// A signal of the consulted desk (see [`DeskSignal`]), or a supervisor taking over.
    pub(super) fn desk_consult_signal(&mut self, signal: DeskSignal) {
        match signal {
            DeskSignal::ConsultAnswered { conn_id } => self.desk_consult_answered(conn_id),
            DeskSignal::ConsultHangup => {
                let talked = self.desk_consult.as_ref().is_some_and(|c| c.media.is_some());
                self.end_desk_consult(if talked { "switch_hangup" } else { "rejected" });
                self.conference_changed(false);
                if !talked {
                    self.set_held(false);
                }
            }
            DeskSignal::ConsultAudio(frame) => self.desk_consult_audio(frame),
            DeskSignal::TakeOver { conn_id } => self.take_over(conn_id),
            _ => {}
        }
    }

    fn desk_consult_answered(&mut self, conn_id: u64) {
        let call = self.info.leg.0;
        let Some(c) = self.desk_consult.as_mut() else { return };
        match DeskMedia::new(call, conn_id) {
            Ok(media) => c.media = Some(media),
            Err(e) => {
                tracing::warn!(leg = %self.info.leg, error = %e, "cannot start the consulted desk's audio");
                return;
            }
        }
        let user_id = c.user_id;
        let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event: Event::CallConnected { call } });
        self.conference_changed(true);
    }

    fn desk_consult_audio(&mut self, frame: AudioFrame) {
        if let Some(media) = self.desk_consult.as_mut().and_then(|c| c.media.as_mut()) {
            media.receive(Instant::now(), frame);
        }
    }

    /// On each tick: a consulted desk that rang out stops ringing; the caller is taken back.
    pub(super) fn desk_consult_due(&mut self, now: Instant) {
        if self.desk_consult.as_ref().is_some_and(|c| c.media.is_none() && now >= c.ring_until) {
            tracing::info!(leg = %self.info.leg, "the consulted desk did not answer");
            self.end_desk_consult("not_answered");
            self.conference_changed(false);
            self.set_held(false);
        }
    }

    /// Whether a consulted desk is talking in the call.
    pub(super) fn desk_consulting(&self) -> bool {
        self.desk_consult.as_ref().is_some_and(|c| c.media.is_some())
    }

    /// The consulted desk leaves the call (told `CallEnded` with `cause`, or `cancelled` while
    /// it still rang), if one is in it.
    pub(super) fn end_desk_consult(&mut self, cause: &str) {
        let Some(c) = self.desk_consult.take() else { return };
        let cause = if c.media.is_none() && cause == "switch_hangup" { "cancelled" } else { cause };
        let call = self.info.leg.0;
        self.shared.desks.end_consult(call);
        let event = Event::CallEnded { call, cause: cause.to_owned() };
        let _ = self.shared.desk_out.send(DeskOut::Event { user_id: c.user_id, event });
        self.emit(EngineEvent::DeskFree { user_id: c.user_id, call });
    }

    /// Attended transfer to a desk, last step: the consulted desk becomes the call's desk
    /// party and the caller comes off hold talking with it; the agent leaves (`CallEnded`,
    /// `transferred`). False (nothing changes) unless a consulted desk is talking.
    pub(super) fn complete_desk_consult(&mut self) -> bool {
        if !self.desk_consulting() {
            return false;
        }
        let Some(DeskConsult { user_id, media: Some(media), .. }) = self.desk_consult.take() else { return false };
        let call = self.info.leg.0;
        self.shared.desks.promote_consult(call);
        self.hand_desk_to(user_id, media, "transferred");
        tracing::info!(leg = %self.info.leg, user_id, "attended transfer to a desk completed");
        true
    }

    /// A supervisor listening on `conn_id` takes the call over (接管): the agent is told
    /// `CallEnded` with cause `taken_over`, the supervisor talks with the caller from now on
    /// (`CallConnected`). The registry has made the supervisor the call's desk party already.
    fn take_over(&mut self, conn_id: u64) {
        let Some(i) = self.snoops.iter().position(|s| s.media.conn_id == conn_id) else {
            tracing::warn!(leg = %self.info.leg, conn_id, "take-over by a desk not in the call");
            return;
        };
        let snoop = self.snoops.remove(i);
        self.end_desk_consult("switch_hangup");
        if self.bridge_signals.is_some() {
            self.conference_changed(false);
        }
        let call = self.info.leg.0;
        self.emit(EngineEvent::DeskBusy { user_id: snoop.user_id, call });
        let _ = self.shared.desk_out.send(DeskOut::Event { user_id: snoop.user_id, event: Event::CallConnected { call } });
        self.hand_desk_to(snoop.user_id, snoop.media, "taken_over");
        tracing::info!(leg = %self.info.leg, by = snoop.user_id, "a supervisor took the call over");
    }

    /// The call's desk party becomes `user_id` talking on `media`; the one before is told the
    /// call ended for it with `cause`. Hold and mute end; the ACD hears of the change.
    fn hand_desk_to(&mut self, user_id: i64, media: DeskMedia, cause: &str) {
        let call = self.info.leg.0;
        if let Some(old) = self.desk_user.replace(user_id) {
            let event = Event::CallEnded { call, cause: cause.to_owned() };
            let _ = self.shared.desk_out.send(DeskOut::Event { user_id: old, event });
        }
        self.desk = Some(media);
        self.controls.reset();
        self.shared.desks.set_held(call, false);
        self.emit(EngineEvent::DeskHandedOver { call, to: user_id });
    }
}
