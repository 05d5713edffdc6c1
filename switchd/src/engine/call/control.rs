//! What an agent does to a connected desk call besides talking — hold, mute, the consultation
//! of an attended transfer (AGT-1, AGT-2) — and a supervisor's forced hang-up (SUP-2). Who
//! hears whom is decided by [`Controls`](crate::engine::hold::Controls); this is the call
//! task's side: the desk's requests, its events, the consulted leg.

use std::time::Duration;

use rexian_shared::Event;

use super::{Call, CallError, Control, DeskOut};

/// What the caller hears before a supervisor's forced hang-up.
pub const FORCED_HANGUP: &str = "您的通话已由班长结束。感谢您的来电，再见。";

impl Call {
    /// Carries out a hold, mute or consultation step the desk asked for while talking.
    pub(super) async fn control(&mut self, control: Control) -> Result<(), CallError> {
        match control {
            Control::Hold(on) => self.set_held(on),
            Control::Mute(on) => self.set_muted(on),
            Control::Consult(number) => self.consult(&number).await?,
            Control::ConsultDesk { user_id, by } => self.start_desk_consult(user_id, &by),
            Control::CancelConsult => {
                if self.desk_consult.is_some() {
                    self.end_desk_consult("switch_hangup");
                    self.conference_changed(false);
                }
                if self.bridge_signals.is_some() {
                    self.conference_changed(false);
                }
                self.set_held(false);
            }
            // Completing is the caller of this method's business (it ends the desk's part).
            Control::CompleteConsult => {}
        }
        Ok(())
    }

    /// Puts the caller on hold (music) or takes them back; the desk is told of a change.
    pub(super) fn set_held(&mut self, held: bool) {
        if self.controls.set_held(held) {
            tracing::info!(leg = %self.info.leg, held, "hold");
            self.shared.desks.set_held(self.info.leg.0, held);
            self.tell_desk(Event::CallHeld { call: self.info.leg.0, held });
        }
    }

    /// Mutes the agent towards the caller or unmutes; the desk is told of a change.
    pub(super) fn set_muted(&mut self, muted: bool) {
        if self.controls.set_muted(muted) {
            tracing::info!(leg = %self.info.leg, muted, "mute");
            self.tell_desk(Event::CallMuted { call: self.info.leg.0, muted });
        }
    }

    /// Whether a consulted (or conferenced) party is connected.
    pub(super) fn consulting(&self) -> bool {
        self.bridge.as_ref().is_some_and(|b| b.up) && self.bridge_signals.is_some()
    }

    /// Attended transfer, first step: the caller is held (music) and `number` is called; once
    /// it answers the agent and that party talk (`ConferenceChanged { joined: true }`). If it
    /// does not answer the caller is taken back off hold.
    async fn consult(&mut self, number: &str) -> Result<(), CallError> {
        if self.bridge_signals.is_some() {
            tracing::info!(leg = %self.info.leg, "a third party is already in the call");
            return Ok(());
        }
        self.set_held(true);
        let ring = Duration::from_secs(u64::from(self.desk_ring_secs()));
        let failed = match self.connect_number(number, ring).await {
            Ok(None) => {
                self.conference_changed(true);
                return Ok(());
            }
            Ok(Some(status)) => status.to_string(),
            Err(CallError::Ended) => return Err(CallError::Ended),
            // No trunk or no media port: the consultation fails, the call goes on.
            Err(e) => e.to_string(),
        };
        tracing::info!(leg = %self.info.leg, number, failed, "the consulted party did not answer");
        self.tell_desk(Event::ConferenceChanged { call: self.info.leg.0, joined: false });
        self.set_held(false);
        Ok(())
    }

    /// A supervisor ends the call (强拆): the agent and the supervisors in the call are told at
    /// once (`CallEnded`, cause `forced_hangup`), the caller hears why, then is hung up. The
    /// error ends the application as a hang-up does.
    pub(super) async fn forced_off(&mut self, by: i64) -> CallError {
        tracing::info!(leg = %self.info.leg, by, "a supervisor ends the call");
        self.forced = true;
        self.drop_bridge();
        self.end_desk_consult(crate::cdr::EndCause::ForcedHangup.code());
        self.desk = None;
        self.desk_signals = None;
        self.controls.reset();
        let call = self.info.leg.0;
        let cause = crate::cdr::EndCause::ForcedHangup.code().to_owned();
        for user_id in self.desk_user.take().into_iter().chain(self.snoops.drain(..).map(|s| s.user_id)) {
            let event = Event::CallEnded { call, cause: cause.clone() };
            let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event });
        }
        self.shared.desks.remove(call);
        if self.play_text(FORCED_HANGUP, false).await.is_ok() {
            let _ = self.pause(Duration::from_millis(300)).await;
        }
        self.hangup();
        CallError::Ended
    }

    /// Pushes `event` to the desk user of the call, if there is one.
    fn tell_desk(&self, event: Event) {
        if let Some(user_id) = self.desk_user {
            let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event });
        }
    }
}
