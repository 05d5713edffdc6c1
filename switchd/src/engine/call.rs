//! A call as an application sees it: the engine primitives (answer, play, collect, record,
//! echo, hang up) over one SIP leg, on a 20 ms media clock.
//!
//! Each call runs as its own task that owns its [`Call`]; the primitives are `async` and
//! return [`CallError::Ended`] as soon as the caller hangs up, so an application is written as
//! straight-line code (`call.answer()?; call.play_text(..)?; call.record(..)?`) and unwinds
//! with `?` on hang-up — the shape of FreeSWITCH's `switch_ivr_*` and Asterisk's dialplan
//! applications (DESIGN.md decision 3).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::desk_leg::{Control, DeskMedia, DeskOut, DeskSignal, Handover};
use super::hold::Controls;
use super::rtp_leg::{Handling, Received, RtpLeg, FRAME_SAMPLES};
use super::{EngineEvent, Shared};
use crate::media::prompt::PromptError;
use crate::media::wav::{WavError, WavFormat, WavWriter};
use crate::sip::sdp::{self, LocalMedia, SessionDescription};
use crate::sip::ua::{CallCommand, EndReason, LegId};

mod control;
mod desk_consult;
mod forking;

/// Why a primitive stopped early.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call is over (the caller hung up, or we did).
    #[error("the call has ended")]
    Ended,
    /// A prompt could not be rendered or read.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The recording file could not be written.
    #[error(transparent)]
    Recording(#[from] WavError),
    /// A blocking helper task failed.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// What the SIP side tells a running call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegSignal {
    /// The ACK arrived (with the peer's SDP for a late offer).
    Confirmed(Option<Vec<u8>>),
    /// A digit by SIP INFO.
    Dtmf(char),
    /// A re-INVITE with a new offer.
    ReInvite(Vec<u8>),
    /// The leg ended.
    Ended(EndReason),
    /// Outbound: the far end rings.
    Ringing,
    /// Outbound: the far end answered with this SDP.
    Answered(Vec<u8>),
    /// Outbound: the call failed with this SIP status.
    Failed(u16),
}

/// Facts about the call, fixed at its start.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub leg: LegId,
    /// Its call detail record, when the store took it.
    pub cdr: Option<i64>,
    pub trunk: String,
    pub caller: String,
    pub callee: String,
    pub sip_call_id: String,
}

/// How a call ended, for its record.
pub(super) struct Outcome {
    pub info: CallInfo,
    pub ended: Option<EndReason>,
    pub digits: String,
    pub answered: bool,
    pub sip_status: Option<u16>,
    /// A supervisor ended the call (强拆).
    pub forced: bool,
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Relative to the data directory.
    pub path: String,
    pub seconds: f64,
    /// The digit that stopped it, if one did.
    pub stopped_by: Option<char>,
}

/// How an offer to a desk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Taken on this desk connection.
    Answered(u64),
    /// Declined, or not taken in time.
    NotAnswered,
    /// The caller pressed the leave key.
    Left,
    /// One of the several desks a ring-all offer rings declined; the others ring on.
    DeclinedBy(i64),
}

/// Chinese ringback (GB 9004 / YD/T 1014): 450 Hz, one second on, four off.
pub fn ringback_tone() -> Vec<i16> {
    let mut samples = crate::media::prompt::tone(450.0, 1000, 4000);
    samples.resize(5 * 8000, 0);
    samples
}

/// What woke a primitive: the 20 ms media tick, or a digit (already queued in `pending`).
enum Input {
    Tick,
    Digit,
    /// The desk user answered on this connection.
    DeskAnswered(u64),
    /// The desk user hung up or declined.
    DeskHangup,
    /// The desk user asked to hand the caller on.
    DeskTransfer(Handover),
    /// The desk user asked to add this number to the call.
    DeskConference(String),
    /// The desk user holds, mutes or consults.
    DeskControl(Control),
    /// A supervisor ends the call.
    ForceHangup(i64),
    /// The connection the desk talked on is gone.
    DeskLost,
    /// One desk of a ring-all offer declined.
    DeskDeclined(i64),
    /// Outbound: the far end rings.
    Ringing,
    /// Outbound: the far end answered.
    RemoteAnswered,
    /// The bridged leg rings, answered, failed with a status, or ended.
    BridgeRinging,
    BridgeAnswered,
    BridgeFailed(u16),
    BridgeEnded,
    /// A signal of one ringing leg of a fork (`None`: its channel closed).
    Fork(LegId, Option<LegSignal>),
}

/// One call leg under an application's control (see the module docs).
pub struct Call {
    pub info: CallInfo,
    shared: Arc<Shared>,
    rtp: RtpLeg,
    local: LocalMedia,
    /// Our SDP for the 200 OK.
    answer_sdp: Vec<u8>,
    signals: mpsc::UnboundedReceiver<LegSignal>,
    ended: Option<EndReason>,
    answered: bool,
    /// Every digit received, for the CDR.
    digits: String,
    /// Digits not yet consumed by [`Call::collect`].
    pending: VecDeque<char>,
    tick: Interval,
    heard: Vec<i16>,
    echo: bool,
    /// The desk user this call is offered to or connected with, and their signals.
    desk_user: Option<i64>,
    desk_signals: Option<mpsc::UnboundedReceiver<DeskSignal>>,
    /// Set while caller and desk talk: each tick then carries audio both ways.
    desk: Option<DeskMedia>,
    desk_pcm: Vec<i16>,
    /// The final SIP status of a failed outbound call.
    sip_status: Option<u16>,
    /// The whole call being recorded in stereo (caller left, desk right), and its path.
    call_recording: Option<(WavWriter, String)>,
    /// Supervisors listening, whispering or barged in (SUP-2).
    snoops: Vec<Snoop>,
    /// A second SIP leg bridged to this one (B2BUA): its media, its SIP signals (kept apart
    /// so the media loop can wait on both), and the rest.
    bridge_rtp: Option<RtpLeg>,
    bridge_signals: Option<mpsc::UnboundedReceiver<LegSignal>>,
    bridge: Option<BridgeState>,
    /// What the caller hears first once connected to a desk (自动报工号), mixed over the
    /// agent's voice, and the tone the agent hears meanwhile.
    announcement: Option<(VecDeque<i16>, VecDeque<i16>)>,
    /// The desk users a ringing offer rings (several for ring-all).
    offered_to: Vec<i64>,
    /// Hold and mute of the desk conversation.
    controls: Controls,
    /// A supervisor ended the call (强拆).
    forced: bool,
    /// The ACD queue the caller waited in, for transfers to agents and queues.
    acd_queue: Option<String>,
    /// A desk user consulted in the call (AGT-2, SUP-3).
    desk_consult: Option<desk_consult::DeskConsult>,
    /// The outbound legs of a fork while they ring (several targets at once).
    fork_legs: Vec<forking::ForkLeg>,
}

/// The bridged leg's id and state.
struct BridgeState {
    leg: LegId,
    local: LocalMedia,
    /// Both legs talk; media flows.
    up: bool,
    /// Same codec on both legs: packets are forwarded without decoding.
    same_codec: bool,
    heard: Vec<i16>,
}

/// A supervisor in a desk call.
struct Snoop {
    user_id: i64,
    mode: rexian_shared::SnoopMode,
    media: DeskMedia,
    /// What they said this tick.
    pcm: Vec<i16>,
}

impl Call {
    pub(super) fn new(
        info: CallInfo,
        shared: Arc<Shared>,
        rtp: RtpLeg,
        local: LocalMedia,
        answer_sdp: Vec<u8>,
        signals: mpsc::UnboundedReceiver<LegSignal>,
    ) -> Self {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        // After a stall, catch up with a burst rather than drift: the peer's clock keeps going.
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        Self {
            info,
            rtp,
            local,
            answer_sdp,
            signals,
            ended: None,
            answered: false,
            digits: String::new(),
            pending: VecDeque::new(),
            tick,
            heard: Vec::with_capacity(2 * FRAME_SAMPLES),
            echo: false,
            desk_user: None,
            desk_signals: None,
            desk: None,
            desk_pcm: Vec::with_capacity(FRAME_SAMPLES),
            sip_status: None,
            call_recording: None,
            snoops: Vec::new(),
            bridge_rtp: None,
            bridge_signals: None,
            bridge: None,
            announcement: None,
            offered_to: Vec::new(),
            controls: Controls::new(shared.hold_music.clone()),
            forced: false,
            acd_queue: None,
            desk_consult: None,
            fork_legs: Vec::new(),
            shared,
        }
    }

    /// The configured limit for a recorded message, in seconds.
    pub fn max_message_secs(&self) -> u32 {
        self.shared.config.voicemail_max_secs
    }

    /// A fresh recording path for this call, relative to the data directory:
    /// `recordings/YYYY/MM/DD/<CDR id or leg>-<kind>.wav` by local date.
    pub fn recording_path(&self, kind: &str) -> String {
        let local = chrono::Utc::now() + chrono::Duration::hours(i64::from(self.shared.utc_offset_hours));
        let id = self.info.cdr.map_or_else(|| self.info.leg.to_string(), |id| id.to_string());
        format!("recordings/{}/{id}-{kind}.wav", local.format("%Y/%m/%d"))
    }

    /// Where prompts come from (the TTS cache and the administrator's files).
    pub fn prompts(&self) -> &crate::media::prompt::Prompts {
        &self.shared.prompts
    }

    /// The data directory recordings are relative to.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.shared.data_dir
    }

    /// The leg's RTP counters so far.
    pub fn media_stats(&self) -> super::rtp_leg::LegStats {
        self.rtp.stats()
    }

    /// The leg's reception quality so far, as its RTCP reports it.
    pub fn media_quality(&self) -> crate::media::rtcp::session::Quality {
        self.rtp.quality()
    }

    /// Sends `180 Ringing` (nothing once answered).
    pub fn ring(&mut self) {
        if !self.answered {
            self.command(CallCommand::Ringing { leg: self.info.leg });
        }
    }

    /// Answers with `200 OK` and our SDP; media flows from now.
    pub async fn answer(&mut self) -> Result<(), CallError> {
        self.check()?;
        if self.answered {
            return Ok(());
        }
        self.command(CallCommand::Answer { leg: self.info.leg, sdp: self.answer_sdp.clone() });
        self.answered = true;
        self.emit(EngineEvent::Answered { leg: self.info.leg });
        if let Some(id) = self.info.cdr {
            if let Err(e) = self.shared.store.call_answered(id, chrono::Utc::now()).await {
                tracing::warn!(leg = %self.info.leg, error = %e, "CDR: cannot record the answer");
            }
        }
        Ok(())
    }

    /// Ends the call from our side (BYE once answered, 480 before), and a bridged leg with
    /// it (BYE, or CANCEL while it rings).
    pub fn hangup(&mut self) {
        if self.ended.is_none() {
            self.command(CallCommand::Hangup { leg: self.info.leg });
            self.ended = Some(EndReason::Local);
        }
        self.drop_bridge();
        self.drop_fork_legs();
    }

    /// Refuses a call not yet answered with `status` (e.g. 486 when the forwarded number is
    /// busy).
    pub fn reject(&mut self, status: u16) {
        if self.ended.is_none() && !self.answered {
            self.command(CallCommand::Reject { leg: self.info.leg, status });
            self.ended = Some(EndReason::Local);
        }
    }

    /// Bridges this call to `number` through the outbound trunk (a B2BUA): the caller hears
    /// ringing until the far end answers, then both talk — packets forwarded undecoded when
    /// the codecs match, transcoded otherwise, recorded in stereo when `record_calls` is on —
    /// until either hangs up. `Ok(None)` when the far end hung up after talking,
    /// `Ok(Some(status))` when it never answered (failed with `status`, or 408 after `ring`),
    /// `Err(Ended)` when the caller hung up.
    pub async fn bridge_to_number(&mut self, number: &str, ring: Duration) -> Result<Option<u16>, CallError> {
        self.ring();
        if let Some(status) = self.connect_number(number, ring).await? {
            return Ok(Some(status));
        }
        self.answer().await?;
        self.record_if_configured().await;
        self.talk_bridged().await.map(|()| None)
    }

    /// Blind transfer of an answered call to `number` through the outbound trunk: the caller
    /// waits (silence) until the far end answers, then they talk until either hangs up.
    /// `Ok(Some(status))` when the far end never answered; the caller is still on the line.
    pub async fn transfer_to_number(&mut self, number: &str, ring: Duration) -> Result<Option<u16>, CallError> {
        if let Some(status) = self.connect_number(number, ring).await? {
            return Ok(Some(status));
        }
        self.talk_bridged().await.map(|()| None)
    }

    /// Places the bridged leg to `number` and waits up to `ring` for its answer: `Ok(None)`
    /// once answered, `Ok(Some(status))` when it failed or rang out (408).
    async fn connect_number(&mut self, number: &str, ring: Duration) -> Result<Option<u16>, CallError> {
        let placed = super::outbound::place(&self.shared, number).map_err(|e| CallError::Task(e.to_string()))?;
        tracing::info!(leg = %self.info.leg, bridged = %placed.leg, number, "bridging to a number");
        self.bridge_rtp = Some(placed.rtp);
        self.bridge_signals = Some(placed.signals);
        self.bridge = Some(BridgeState { leg: placed.leg, local: placed.local, up: false, same_codec: false, heard: Vec::with_capacity(FRAME_SAMPLES) });
        let deadline = Instant::now() + ring;
        loop {
            if Instant::now() >= deadline {
                self.drop_bridge();
                return Ok(Some(408));
            }
            match self.next().await {
                Ok(Input::BridgeAnswered) => return Ok(None),
                Ok(Input::BridgeFailed(status)) => return Ok(Some(status)),
                Ok(Input::BridgeEnded) => return Ok(Some(480)),
                Ok(Input::DeskHangup) => {
                    self.drop_bridge();
                    self.desk_signals = None;
                    return Ok(Some(487));
                }
                Ok(Input::DeskControl(Control::CancelConsult)) => {
                    self.drop_bridge();
                    return Ok(Some(487));
                }
                Ok(Input::DeskControl(Control::Hold(on))) => self.set_held(on),
                Ok(Input::DeskControl(Control::Mute(on))) => self.set_muted(on),
                Ok(Input::ForceHangup(by)) => {
                    self.drop_bridge();
                    return Err(self.forced_off(by).await);
                }
                Ok(_) => {}
                Err(e) => {
                    self.drop_bridge();
                    return Err(e);
                }
            }
        }
    }

    /// After an attended transfer: the caller and the consulted party talk until either hangs
    /// up (`Ok` when the consulted party did).
    pub async fn talk_with_consulted(&mut self) -> Result<(), CallError> {
        self.controls.reset();
        self.talk_bridged().await
    }

    /// Both bridged legs talk until the far end hangs up (`Ok`) or the caller does (`Err`).
    async fn talk_bridged(&mut self) -> Result<(), CallError> {
        loop {
            match self.next().await {
                Ok(Input::BridgeEnded) => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    self.drop_bridge();
                    return Err(e);
                }
            }
        }
    }

    /// Starts the stereo whole-call recording when `record_calls` is on and none runs yet; a
    /// failure to start it is logged and the call goes on.
    pub async fn record_if_configured(&mut self) {
        if self.records_calls() && self.call_recording.is_none() {
            let path = self.recording_path("call");
            if let Err(e) = self.start_call_recording(&path).await {
                tracing::warn!(leg = %self.info.leg, error = %e, "cannot record the call");
            }
        }
    }

    /// Hangs up the bridged leg, if one is still there.
    fn drop_bridge(&mut self) {
        if let (Some(b), Some(_)) = (self.bridge.as_ref(), self.bridge_signals.as_ref()) {
            self.command(CallCommand::Hangup { leg: b.leg });
        }
        self.bridge_signals = None;
        self.bridge_rtp = None;
        if let Some(b) = self.bridge.as_mut() {
            b.up = false;
        }
    }

    /// The far end answered: take its SDP and start the media between the legs.
    fn bridge_answered(&mut self, sdp_bytes: &[u8]) {
        let (Some(b), Some(rtp)) = (self.bridge.as_mut(), self.bridge_rtp.as_mut()) else { return };
        let negotiated = std::str::from_utf8(sdp_bytes)
            .ok()
            .and_then(|t| SessionDescription::parse(t).ok())
            .and_then(|remote| sdp::answer(&remote, &b.local).ok());
        if let Some(a) = negotiated {
            rtp.renegotiate(&a);
        }
        b.up = true;
        b.same_codec = rtp.codec() == self.rtp.codec();
    }

    /// How this leg's audio is handled: forwarded to a bridged leg with the same codec,
    /// queued for the tick when something consumes it.
    fn handling(&self) -> Handling {
        let forward = self.desk.is_none() && self.bridge.as_ref().is_some_and(|b| b.up && b.same_codec);
        let transcode = self.bridge.as_ref().is_some_and(|b| b.up) && !forward;
        Handling { echo: self.echo, forward, queue: !self.echo && (!forward || transcode || self.call_recording.is_some()) }
    }

    /// While bridged: the far end's decoded 20 ms for transcoding and the recording.
    async fn bridge_tick(&mut self, now: std::time::Instant) {
        let (Some(b), Some(rtp)) = (self.bridge.as_mut(), self.bridge_rtp.as_mut()) else { return };
        if !b.up || self.desk.is_some() {
            return; // with a desk in the call, desk_tick mixes all three
        }
        rtp.take_audio(now, &mut b.heard);
        if !b.same_codec {
            rtp.send_samples(&self.heard).await;
            self.rtp.send_samples(&b.heard).await;
        }
        record_stereo(&mut self.call_recording, self.info.leg, &self.heard, &b.heard);
    }

    /// Plays 8 kHz samples. With `barge_in`, a digit stops playback and is returned (it stays
    /// queued for [`Call::collect`]).
    pub async fn play(&mut self, samples: &[i16], barge_in: bool) -> Result<Option<char>, CallError> {
        let mut frames = samples.chunks(FRAME_SAMPLES).peekable();
        loop {
            if barge_in {
                if let Some(&d) = self.pending.front() {
                    return Ok(Some(d));
                }
            }
            // Done before waiting for a tick with nothing to send: that tick belongs to
            // whatever comes next (a prompt, the silence of a menu). Consuming it here left a
            // 40 ms hole in the stream after every prompt.
            if frames.peek().is_none() {
                break;
            }
            if let Input::Tick = self.next().await? {
                let Some(frame) = frames.next() else { break };
                let mut frame = frame.to_vec();
                frame.resize(FRAME_SAMPLES, 0);
                self.rtp.send_samples(&frame).await;
            }
        }
        self.emit(EngineEvent::PlaybackFinished { leg: self.info.leg });
        Ok(None)
    }

    /// Speaks `text` in Mandarin (rendered once, then cached) — see [`Call::play`].
    pub async fn play_text(&mut self, text: &str, barge_in: bool) -> Result<Option<char>, CallError> {
        let prompts = self.shared.prompts.clone();
        let text = text.to_owned();
        let samples = tokio::task::spawn_blocking(move || prompts.tts(&text))
            .await
            .map_err(|e| CallError::Task(e.to_string()))??;
        self.play(&samples, barge_in).await
    }

    /// Sends one 20 ms frame of hold audio on the next media tick (for a caller waiting on
    /// something outside the call, such as the ACD). Digits keep queueing meanwhile.
    pub async fn hold_tick(&mut self, frame: &[i16]) -> Result<(), CallError> {
        loop {
            if let Input::Tick = self.next().await? {
                let mut frame = frame.to_vec();
                frame.resize(FRAME_SAMPLES, 0);
                self.rtp.send_samples(&frame).await;
                return Ok(());
            }
        }
    }

    /// Takes `key` from the digits keyed so far, if it is among them.
    pub fn take_key(&mut self, key: char) -> bool {
        let had = self.pending.contains(&key);
        self.pending.retain(|d| *d != key);
        had
    }

    /// Plays silence for `duration` (keeps the RTP stream alive for NAT and the peer).
    pub async fn pause(&mut self, duration: Duration) -> Result<(), CallError> {
        let silence = vec![0i16; (duration.as_millis() as usize) * 8];
        self.play(&silence, false).await.map(|_| ())
    }

    /// Collects up to `max` digits: the first within `first`, each next within `between`;
    /// `terminator` ends early (and is not returned).
    pub async fn collect(
        &mut self,
        max: usize,
        terminator: Option<char>,
        first: Duration,
        between: Duration,
    ) -> Result<String, CallError> {
        let mut got = String::new();
        let mut deadline = Instant::now() + first;
        loop {
            while let Some(d) = self.pending.pop_front() {
                if Some(d) == terminator {
                    return Ok(got);
                }
                got.push(d);
                if got.chars().count() >= max {
                    self.swallow_terminator(terminator).await?;
                    return Ok(got);
                }
                deadline = Instant::now() + between;
            }
            if Instant::now() >= deadline {
                return Ok(got);
            }
            self.silence_tick().await?;
        }
    }

    /// After a full entry: a terminator keyed right after it (within 1.5 s) belongs to it and
    /// is consumed, so it does not end the next question early; any other key stays queued.
    async fn swallow_terminator(&mut self, terminator: Option<char>) -> Result<(), CallError> {
        let Some(t) = terminator else { return Ok(()) };
        let deadline = Instant::now() + Duration::from_millis(1500);
        while self.pending.is_empty() && Instant::now() < deadline {
            self.silence_tick().await?;
        }
        if self.pending.front() == Some(&t) {
            self.pending.pop_front();
        }
        Ok(())
    }

    /// Records what the caller says (mono, 8 kHz) to `path` (relative to the data directory)
    /// until they hang up, `max` passes, or one of `stop_digits` is pressed. The file is
    /// written as the call goes: a crash keeps everything up to about a second before it.
    pub async fn record(&mut self, path: &str, max: Duration, stop_digits: &str) -> Result<Recorded, CallError> {
        let full: PathBuf = self.shared.data_dir.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|source| WavError::Io { path: dir.to_owned(), source })?;
        }
        let mut writer = WavWriter::create(&full, WavFormat::MONO_8K)?;
        self.pending.clear();
        if let Some(id) = self.info.cdr {
            if let Err(e) = self.shared.store.call_recording_started(id, path.to_owned(), "leg".into(), chrono::Utc::now()).await {
                tracing::warn!(leg = %self.info.leg, error = %e, "CDR: cannot note the recording");
            }
        }
        let frames_max = max.as_millis() as u64 / 20;
        let mut frames = 0u64;
        let mut stopped_by = None;
        let outcome = loop {
            if let Some(d) = self.pending.iter().copied().find(|d| stop_digits.contains(*d)) {
                stopped_by = Some(d);
                self.pending.clear();
                break Ok(());
            }
            match self.next().await {
                Ok(Input::Tick) => {
                    let mut audio = std::mem::take(&mut self.heard);
                    audio.resize(FRAME_SAMPLES, 0);
                    writer.write_frames(&audio)?;
                    self.heard = audio;
                    frames += 1;
                    if writer.should_sync() {
                        writer.sync()?;
                    }
                    if frames >= frames_max {
                        break Ok(());
                    }
                    // Keep the caller's side of the stream alive (comfort silence).
                    self.rtp.send_samples(&[0; FRAME_SAMPLES]).await;
                }
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        let written = writer.finish()?;
        let seconds = written as f64 / 8000.0;
        if let Some(id) = self.info.cdr {
            if let Err(e) = self.shared.store.call_recording_finished(id, path.to_owned(), seconds).await {
                tracing::warn!(leg = %self.info.leg, error = %e, "CDR: cannot note the recording's end");
            }
        }
        self.emit(EngineEvent::RecordingFinished { leg: self.info.leg, path: path.to_owned(), seconds });
        tracing::info!(leg = %self.info.leg, path, seconds, "recording finished");
        outcome.map(|()| Recorded { path: path.to_owned(), seconds, stopped_by })
    }

    /// Sends the caller's audio straight back until they hang up (the echo test).
    pub async fn echo(&mut self) -> Result<(), CallError> {
        self.echo = true;
        loop {
            self.next().await?;
        }
    }

    /// Offers the call to desk user `user_id` (their desktops get `CallOffered` with this
    /// leg's number as call id) and rings the caller until the user answers — returning the
    /// answering connection — declines, or `ring` passes (`None` for both).
    pub async fn offer_to_desk(&mut self, user_id: i64, ring: Duration) -> Result<Option<u64>, CallError> {
        match self.offer_holding(user_id, ring, &[], None).await? {
            Offer::Answered(conn_id) => Ok(Some(conn_id)),
            Offer::NotAnswered | Offer::DeclinedBy(_) | Offer::Left => Ok(None),
        }
    }

    /// [`Call::offer_to_desk`] for a caller already answered (waiting in the IVR's queue): the
    /// caller hears `hold` over and over (Chinese ringback when empty), and pressing
    /// `leave_key` stops the offer ([`Offer::Left`]; the key is consumed). An offer not taken is
    /// withdrawn: the desk hears `CallEnded` with cause `not_answered` and can no longer take it.
    pub async fn offer_holding(&mut self, user_id: i64, ring: Duration, hold: &[i16], leave_key: Option<char>) -> Result<Offer, CallError> {
        self.start_offer(user_id);
        let ringback = if hold.is_empty() { ringback_tone() } else { hold.to_vec() };
        let mut frames = ringback.chunks(FRAME_SAMPLES).cycle();
        let deadline = Instant::now() + ring;
        let outcome = loop {
            if Instant::now() >= deadline {
                break Offer::NotAnswered;
            }
            if leave_key.is_some_and(|k| self.take_key(k)) {
                break Offer::Left;
            }
            match self.offer_tick(frames.next().unwrap_or(&[])).await {
                Ok(Some(Offer::Answered(conn_id))) => return Ok(Offer::Answered(conn_id)),
                Ok(Some(other)) => break other,
                Ok(None) => {}
                Err(e) => {
                    self.withdraw_offer();
                    return Err(e);
                }
            }
        };
        self.withdraw_offer();
        Ok(outcome)
    }

    /// Offers the call to desk user `user_id` (`CallOffered` to their desktops) without
    /// waiting: drive it with [`Call::offer_tick`] and end it with [`Call::withdraw_offer`]
    /// unless it is answered — for a driver that watches something else meanwhile (the ACD).
    pub fn start_offer(&mut self, user_id: i64) {
        self.start_offer_all(&[user_id]);
    }

    /// [`Call::start_offer`] to several desk users at once (ring-all): the first to answer
    /// takes the call; a decline stops only that desk ([`Offer::DeclinedBy`]).
    pub fn start_offer_all(&mut self, users: &[i64]) {
        let Some(&first) = users.first() else { return };
        let call = self.info.leg.0;
        self.desk_signals = Some(self.shared.desks.insert(call, first, None, &self.info.caller, &self.info.callee));
        self.shared.desks.ring_also(call, users);
        self.shared.desks.set_queue(call, self.acd_queue.clone());
        self.desk_user = Some(first);
        self.offered_to = users.to_vec();
        self.ring();
        let event = rexian_shared::Event::CallOffered {
            call,
            caller: self.info.caller.clone(),
            callee: self.info.callee.clone(),
            trunk: self.info.trunk.clone(),
            record: self.info.cdr,
        };
        for &user_id in users {
            let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event: event.clone() });
        }
    }

    /// One desk of a ring-all offer stops ringing (the ACD took it back from that agent); the
    /// offer ends when it was the last.
    pub fn stop_ringing(&mut self, user_id: i64) {
        if !self.offered_to.contains(&user_id) {
            return;
        }
        if self.offered_to.len() == 1 {
            return self.withdraw_offer();
        }
        self.shared.desks.stop_ringing(self.info.leg.0, user_id);
        self.offered_to.retain(|u| *u != user_id);
        self.desk_user = self.shared.desks.user_of(self.info.leg.0).or(self.desk_user);
        self.end_for_desk(user_id, "not_answered");
    }

    fn end_for_desk(&self, user_id: i64, cause: &str) {
        let event = rexian_shared::Event::CallEnded { call: self.info.leg.0, cause: cause.into() };
        let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event });
    }

    /// The desk users a started offer rings now.
    pub fn ringing(&self) -> &[i64] {
        &self.offered_to
    }

    /// Waits for the next media tick or desk signal of a started offer, sending `hold` (one
    /// 20 ms frame) to an answered caller on the tick: `Some(Answered)` when the desk took the
    /// call, `Some(NotAnswered)` when it declined, `None` otherwise.
    pub async fn offer_tick(&mut self, hold: &[i16]) -> Result<Option<Offer>, CallError> {
        match self.next().await? {
            Input::DeskAnswered(conn_id) => {
                let answered_by = self.shared.desks.user_of(self.info.leg.0).or(self.desk_user);
                self.desk_user = answered_by;
                for other in std::mem::take(&mut self.offered_to).into_iter().filter(|u| Some(*u) != answered_by) {
                    self.end_for_desk(other, "answered_elsewhere");
                }
                Ok(Some(Offer::Answered(conn_id)))
            }
            Input::DeskDeclined(user_id) => {
                self.offered_to.retain(|u| *u != user_id);
                self.desk_user = self.shared.desks.user_of(self.info.leg.0).or(self.desk_user);
                self.end_for_desk(user_id, "declined");
                Ok(Some(Offer::DeclinedBy(user_id)))
            }
            Input::DeskHangup => Ok(Some(Offer::NotAnswered)),
            Input::Tick if self.answered => {
                let mut frame = hold.to_vec();
                frame.resize(FRAME_SAMPLES, 0);
                self.rtp.send_samples(&frame).await;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// The desk offered this call no longer has it: it is told `CallEnded` (not answered).
    pub fn withdraw_offer(&mut self) {
        self.desk_signals = None;
        let ringing = std::mem::take(&mut self.offered_to);
        if let Some(user_id) = self.desk_user.take() {
            self.shared.desks.remove(self.info.leg.0);
            for user in ringing.into_iter().chain(std::iter::once(user_id)).collect::<std::collections::BTreeSet<_>>() {
                self.end_for_desk(user, "not_answered");
            }
        }
    }

    /// Plays `to_caller` (e.g. "工号一零二六，为您服务") to the caller at the start of the next
    /// desk conversation, while the agent hears a short tone that says the caller is listening.
    pub fn announce_on_connect(&mut self, to_caller: &[i16]) {
        let tone = crate::media::prompt::tone(1000.0, 250, 4000);
        self.announcement = Some((to_caller.iter().copied().collect(), tone.into_iter().collect()));
    }

    /// Connects the caller with the desk on connection `conn_id` until either hangs up or the
    /// desk transfers the call: `Ok(None)` when the desk hung up (the engine then hangs up the
    /// caller), `Ok(Some(number))` when it asked to transfer the caller there, `Err(Ended)`
    /// when the caller hung up.
    pub async fn talk_with_desk(&mut self, conn_id: u64) -> Result<Option<Handover>, CallError> {
        // A supervisor may have taken the call over before the talk began.
        let conn_id = self.shared.desks.answered_on(self.info.leg.0).unwrap_or(conn_id);
        let media = DeskMedia::new(self.info.leg.0, conn_id).map_err(|e| CallError::Task(e.to_string()))?;
        self.desk = Some(media);
        if let Some(user_id) = self.desk_user {
            let event = rexian_shared::Event::CallConnected { call: self.info.leg.0 };
            let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event });
        }
        let result = loop {
            match self.next().await {
                Ok(Input::DeskHangup) => break Ok(None),
                Ok(Input::DeskTransfer(to)) => break Ok(Some(to)),
                Ok(Input::DeskConference(number)) => {
                    if let Err(e) = self.conference(&number).await {
                        break Err(e);
                    }
                    if self.desk_signals.is_none() {
                        break Ok(None); // the desk hung up while the third party rang
                    }
                }
                Ok(Input::DeskControl(Control::CompleteConsult)) => {
                    if self.complete_desk_consult() {
                        continue;
                    }
                    if self.consulting() {
                        // The consulted party stays bridged to the caller: not dropped below.
                        self.desk = None;
                        self.controls.reset();
                        return Ok(Some(Handover::Consulted));
                    }
                    tracing::info!(leg = %self.info.leg, "no consultation to complete");
                }
                Ok(Input::DeskControl(control)) => {
                    if let Err(e) = self.control(control).await {
                        break Err(e);
                    }
                    if self.desk_signals.is_none() {
                        break Ok(None); // the desk hung up while the consulted party rang
                    }
                }
                Ok(Input::ForceHangup(by)) => break Err(self.forced_off(by).await),
                Ok(Input::DeskLost) => {
                    tracing::warn!(leg = %self.info.leg, user = ?self.desk_user, "the desk's connection was lost mid-call");
                    break Ok(Some(Handover::DeskLost));
                }
                Ok(Input::BridgeEnded) => self.conference_changed(false),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        };
        self.desk = None;
        self.controls.reset();
        self.drop_bridge();
        self.end_desk_consult("switch_hangup");
        result
    }

    /// Adds `number` to this desk call as a third party (three-way conference): it rings
    /// while caller and agent go on talking; once it answers, everyone hears the other two.
    async fn conference(&mut self, number: &str) -> Result<(), CallError> {
        if self.bridge_signals.is_some() {
            tracing::info!(leg = %self.info.leg, "a third party is already in the call");
            return Ok(());
        }
        let ring = Duration::from_secs(u64::from(self.desk_ring_secs()));
        match self.connect_number(number, ring).await? {
            None => self.conference_changed(true),
            Some(status) => tracing::info!(leg = %self.info.leg, number, status, "conference party did not answer"),
        }
        Ok(())
    }

    /// Tells the desk a third party joined or left.
    fn conference_changed(&mut self, joined: bool) {
        if let Some(user_id) = self.desk_user {
            let event = rexian_shared::Event::ConferenceChanged { call: self.info.leg.0, joined };
            let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event });
        }
        if !joined {
            self.drop_bridge();
        }
    }

    /// The desk lets go of the call (after asking to transfer it): it is told the call ended
    /// for it, and hears nothing more of it.
    pub fn leave_desk(&mut self) {
        self.desk = None;
        self.desk_signals = None;
        if let Some(user_id) = self.desk_user.take() {
            self.shared.desks.remove(self.info.leg.0);
            let event = rexian_shared::Event::CallEnded { call: self.info.leg.0, cause: "transferred".into() };
            let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event });
        }
    }

    /// The id of the active user `username`, if there is one.
    pub async fn user_id_of(&mut self, username: &str) -> Option<i64> {
        let name = username.to_owned();
        let now = chrono::Utc::now().naive_utc();
        match self.shared.store.read(move |db| db.user_by_username(&name, now)).await {
            Ok(Some(user)) if user.info.active => Some(user.info.id),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up a desk user");
                None
            }
        }
    }

    /// The hook that runs IVR flows on a call (for a desk's hand-over to a flow).
    pub fn flow_hook(&self) -> super::FlowHook {
        self.shared.flows.clone()
    }

    /// How long a desk offer rings.
    pub fn desk_ring_secs(&self) -> u32 {
        self.shared.config.desk_ring_secs
    }

    /// Gives this call to desk user `user_id`, whose desk placed it: their signals arrive on
    /// `signals`.
    pub fn attach_desk(&mut self, user_id: i64, signals: mpsc::UnboundedReceiver<DeskSignal>) {
        self.desk_user = Some(user_id);
        self.desk_signals = Some(signals);
    }

    /// Outbound: waits until the far end answers (`true`), or the desk gives up or `ring`
    /// passes (`false`); a failure ends the call (`Err(Ended)`). The desk hears of ringing.
    pub async fn await_remote_answer(&mut self, ring: Duration) -> Result<bool, CallError> {
        let deadline = Instant::now() + ring;
        while Instant::now() < deadline {
            match self.next().await? {
                Input::Ringing => {
                    if let Some(user_id) = self.desk_user {
                        let event = rexian_shared::Event::CallRinging { call: self.info.leg.0 };
                        let _ = self.shared.desk_out.send(DeskOut::Event { user_id, event });
                    }
                }
                Input::RemoteAnswered => {
                    self.answered = true;
                    self.emit(EngineEvent::Answered { leg: self.info.leg });
                    if let Some(id) = self.info.cdr {
                        if let Err(e) = self.shared.store.call_answered(id, chrono::Utc::now()).await {
                            tracing::warn!(leg = %self.info.leg, error = %e, "CDR: cannot record the answer");
                        }
                    }
                    return Ok(true);
                }
                Input::DeskHangup => return Ok(false),
                _ => {}
            }
        }
        Ok(false)
    }

    /// Sends `digits` to the caller as RFC 4733 telephone-events (paced, 100 ms each); false
    /// when the caller's side did not negotiate them.
    pub fn send_digits(&mut self, digits: &str) -> bool {
        self.rtp.queue_digits(digits)
    }

    /// Starts recording the whole call as stereo WAV at `path` (relative to the data
    /// directory): the caller left, the other party right, written as the call goes. It ends
    /// with [`Call::stop_call_recording`] or the call.
    pub async fn start_call_recording(&mut self, path: &str) -> Result<(), CallError> {
        let full: PathBuf = self.shared.data_dir.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|source| WavError::Io { path: dir.to_owned(), source })?;
        }
        let writer = WavWriter::create(&full, WavFormat::STEREO_8K)?;
        if let Some(id) = self.info.cdr {
            if let Err(e) = self.shared.store.call_recording_started(id, path.to_owned(), "call".into(), chrono::Utc::now()).await {
                tracing::warn!(leg = %self.info.leg, error = %e, "CDR: cannot note the recording");
            }
        }
        self.call_recording = Some((writer, path.to_owned()));
        Ok(())
    }

    /// Finishes the whole-call recording, if one runs, and notes its length in the CDR.
    pub async fn stop_call_recording(&mut self) {
        let Some((writer, path)) = self.call_recording.take() else { return };
        let seconds = match writer.finish() {
            Ok(frames) => frames as f64 / 8000.0,
            Err(e) => {
                tracing::warn!(leg = %self.info.leg, error = %e, "call recording could not be finished");
                return;
            }
        };
        if let Some(id) = self.info.cdr {
            if let Err(e) = self.shared.store.call_recording_finished(id, path.clone(), seconds).await {
                tracing::warn!(leg = %self.info.leg, error = %e, "CDR: cannot note the recording's end");
            }
        }
        self.emit(EngineEvent::RecordingFinished { leg: self.info.leg, path, seconds });
    }

    /// Whether connected calls (at desks, or bridged) are recorded (configuration).
    pub fn records_calls(&self) -> bool {
        self.shared.config.record_calls
    }

    /// Notes the ACD queue the caller waits in (offers made from now on may be handed to
    /// other agents and queues).
    pub fn set_acd_queue(&mut self, queue: Option<String>) {
        self.acd_queue = queue;
    }

    /// The desk user this call was offered to, if any.
    pub fn desk_user(&self) -> Option<i64> {
        self.desk_user
    }

    /// One media tick that sends silence.
    async fn silence_tick(&mut self) -> Result<(), CallError> {
        loop {
            if let Input::Tick = self.next().await? {
                self.rtp.send_samples(&[0; FRAME_SAMPLES]).await;
                return Ok(());
            }
        }
    }

    /// Waits for the next tick or digit; `Err(Ended)` once the leg is over.
    async fn next(&mut self) -> Result<Input, CallError> {
        loop {
            self.check()?;
            let handling = self.handling();
            let bridge_handling = Handling {
                echo: false,
                forward: handling.forward,
                queue: handling.queue && self.bridge.as_ref().is_some_and(|b| b.up),
            };
            tokio::select! {
                biased;
                signal = self.signals.recv() => match signal {
                    Some(LegSignal::Ended(reason)) => self.ended = Some(reason),
                    None => self.ended = Some(EndReason::Local),
                    Some(LegSignal::Dtmf(d)) => return Ok(self.digit(d)),
                    Some(LegSignal::Confirmed(sdp)) => {
                        if let Some(sdp) = sdp {
                            self.apply_remote_sdp(&sdp);
                        }
                    }
                    Some(LegSignal::ReInvite(sdp)) => self.reinvite(&sdp),
                    Some(LegSignal::Ringing) => return Ok(Input::Ringing),
                    Some(LegSignal::Answered(sdp)) => {
                        self.apply_remote_sdp(&sdp);
                        return Ok(Input::RemoteAnswered);
                    }
                    Some(LegSignal::Failed(status)) => {
                        self.sip_status = Some(status);
                        self.ended = Some(EndReason::Local);
                    }
                },
                received = self.rtp.receive(handling) => match received {
                    Ok(Received::Digit(d)) => return Ok(self.digit(d)),
                    Ok(Received::Audio(Some(payload))) => {
                        if let Some(b) = self.bridge_rtp.as_mut() {
                            b.send_payload(&payload).await;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(leg = %self.info.leg, error = %e, "RTP: receive error");
                    }
                },
                signal = recv_signal(&mut self.bridge_signals) => match signal {
                    Some(LegSignal::Ringing) => return Ok(Input::BridgeRinging),
                    Some(LegSignal::Answered(sdp)) => {
                        self.bridge_answered(&sdp);
                        return Ok(Input::BridgeAnswered);
                    }
                    Some(LegSignal::Failed(status)) => {
                        self.bridge_signals = None;
                        self.bridge_rtp = None;
                        return Ok(Input::BridgeFailed(status));
                    }
                    Some(LegSignal::Ended(_)) | None => {
                        self.bridge_signals = None;
                        self.bridge_rtp = None;
                        return Ok(Input::BridgeEnded);
                    }
                    Some(LegSignal::ReInvite(_)) => {
                        if let Some(b) = self.bridge.as_ref() {
                            // Empty SDP: the SIP side answers with the leg's current SDP.
                            self.command(CallCommand::AcceptReinvite { leg: b.leg, sdp: Vec::new() });
                        }
                    }
                    Some(LegSignal::Dtmf(_) | LegSignal::Confirmed(_)) => {}
                },
                (leg, signal) = forking::recv_fork(&mut self.fork_legs) => return Ok(Input::Fork(leg, signal)),
                received = recv_rtp(&mut self.bridge_rtp, bridge_handling) => {
                    if let Ok(Received::Audio(Some(payload))) = received {
                        self.rtp.send_payload(&payload).await;
                    }
                },
                desk = recv_desk(&mut self.desk_signals) => match desk {
                    Some(DeskSignal::Audio(frame)) => {
                        if let Some(media) = self.desk.as_mut() {
                            media.receive(std::time::Instant::now(), frame);
                        }
                    }
                    Some(DeskSignal::Answered { conn_id }) => return Ok(Input::DeskAnswered(conn_id)),
                    Some(DeskSignal::Transfer { number }) => return Ok(Input::DeskTransfer(Handover::Number(number))),
                    Some(DeskSignal::TransferToFlow { flow }) => return Ok(Input::DeskTransfer(Handover::Flow(flow))),
                    Some(DeskSignal::Conference { number }) => return Ok(Input::DeskConference(number)),
                    Some(DeskSignal::Handover(to)) => return Ok(Input::DeskTransfer(to)),
                    Some(DeskSignal::Control(control)) => return Ok(Input::DeskControl(control)),
                    Some(DeskSignal::ForceHangup { by }) => return Ok(Input::ForceHangup(by)),
                    Some(DeskSignal::Lost) => return Ok(Input::DeskLost),
                    Some(DeskSignal::Declined { user_id }) => return Ok(Input::DeskDeclined(user_id)),
                    Some(signal @ (DeskSignal::ConsultAnswered { .. } | DeskSignal::ConsultHangup | DeskSignal::ConsultAudio(_) | DeskSignal::TakeOver { .. })) => {
                        self.desk_consult_signal(signal);
                    }
                    Some(DeskSignal::Dtmf { digits }) => {
                        if !self.rtp.queue_digits(&digits) {
                            tracing::info!(leg = %self.info.leg, "the far end takes no RFC 4733 digits; not sent");
                        }
                    }
                    Some(DeskSignal::Snoop { conn_id, user_id, mode }) => self.snoop(conn_id, user_id, mode),
                    Some(DeskSignal::SnoopStop { conn_id }) => self.snoops.retain(|s| s.media.conn_id != conn_id),
                    Some(DeskSignal::SnoopAudio { conn_id, frame }) => {
                        if let Some(s) = self.snoops.iter_mut().find(|s| s.media.conn_id == conn_id) {
                            s.media.receive(std::time::Instant::now(), frame);
                        }
                    }
                    Some(DeskSignal::Hangup) | None => {
                        self.desk_signals = None;
                        return Ok(Input::DeskHangup);
                    }
                },
                scheduled = self.tick.tick() => {
                    self.shared.metrics.media_ticks.observe(Instant::now().saturating_duration_since(scheduled));
                    let now = std::time::Instant::now();
                    self.rtp.rtcp_tick(now);
                    if let Some(b) = self.bridge_rtp.as_mut() {
                        b.rtcp_tick(now);
                    }
                    self.rtp.dtmf_tick().await;
                    let inband = self.rtp.take_audio(now, &mut self.heard);
                    for d in inband {
                        self.digit(d);
                    }
                    self.desk_consult_due(now);
                    self.desk_tick(now).await;
                    self.bridge_tick(now).await;
                    return Ok(Input::Tick);
                }
            }
        }
    }

    /// While connected to a desk: the caller's 20 ms to the desk, the desk's 20 ms to the
    /// caller, with supervisors mixed in by mode — everyone in the call goes to each
    /// supervisor; a whisper to the agent only; a barge to both.
    async fn desk_tick(&mut self, now: std::time::Instant) {
        let Some(media) = self.desk.as_mut() else { return };
        media.take(now, &mut self.desk_pcm);
        // A third party conferenced in (or being consulted) speaks too; hold and mute decide
        // who hears whom.
        let third = match (self.bridge.as_mut().filter(|b| b.up), self.bridge_rtp.as_mut()) {
            (Some(b), Some(rtp)) => {
                rtp.take_audio(now, &mut b.heard);
                Some(b.heard.as_slice())
            }
            _ => self.desk_consult.as_mut().and_then(|c| c.take(now)),
        };
        let mixed = self.controls.mix(&self.heard, &self.desk_pcm, third);
        let (mut to_agent, mut to_caller) = (mixed.to_agent, mixed.to_caller);
        if let Some((caller_side, agent_side)) = self.announcement.as_mut().filter(|_| !self.controls.held()) {
            let n = FRAME_SAMPLES.min(caller_side.len());
            let frame: Vec<i16> = caller_side.drain(..n).collect();
            mix_into(&mut to_caller, &frame);
            let n = FRAME_SAMPLES.min(agent_side.len());
            let frame: Vec<i16> = agent_side.drain(..n).collect();
            mix_into(&mut to_agent, &frame);
            if caller_side.is_empty() && agent_side.is_empty() {
                self.announcement = None;
            }
        }
        if let (Some(_), Some(third)) = (self.bridge.as_ref().filter(|b| b.up), self.bridge_rtp.as_mut()) {
            third.send_samples(&mixed.to_third).await;
        } else if let Some(c) = self.desk_consult.as_mut() {
            c.send(&self.shared.desk_out, &mixed.to_third);
        }
        for s in &mut self.snoops {
            s.media.take(now, &mut s.pcm);
            match s.mode {
                rexian_shared::SnoopMode::Listen => {}
                rexian_shared::SnoopMode::Whisper => mix_into(&mut to_agent, &s.pcm),
                rexian_shared::SnoopMode::Barge => {
                    mix_into(&mut to_agent, &s.pcm);
                    mix_into(&mut to_caller, &s.pcm);
                }
            }
        }
        if let Some(frame) = media.encode(&to_agent) {
            let _ = self.shared.desk_out.send(DeskOut::Audio { conn_id: media.conn_id, frame });
        }
        for i in 0..self.snoops.len() {
            // Each supervisor hears the caller, the agent and the other supervisors who speak.
            let mut heard_by = self.heard.clone();
            mix_into(&mut heard_by, &self.desk_pcm);
            if let Some(b) = self.bridge.as_ref().filter(|b| b.up) {
                mix_into(&mut heard_by, &b.heard);
            }
            if let Some(said) = self.desk_consult.as_ref().and_then(|c| c.said()) {
                mix_into(&mut heard_by, said);
            }
            for (j, other) in self.snoops.iter().enumerate() {
                if j != i && other.mode != rexian_shared::SnoopMode::Listen {
                    mix_into(&mut heard_by, &other.pcm);
                }
            }
            let s = &mut self.snoops[i];
            if let Some(frame) = s.media.encode(&heard_by) {
                let _ = self.shared.desk_out.send(DeskOut::Audio { conn_id: s.media.conn_id, frame });
            }
        }
        self.rtp.send_samples(&to_caller).await;
        // Left what the caller said, right what the caller heard (agent and any barge).
        record_stereo(&mut self.call_recording, self.info.leg, &self.heard, &to_caller);
    }

    /// A supervisor joins on `conn_id`, or changes mode.
    fn snoop(&mut self, conn_id: u64, user_id: i64, mode: rexian_shared::SnoopMode) {
        if let Some(s) = self.snoops.iter_mut().find(|s| s.media.conn_id == conn_id) {
            s.mode = mode;
            return;
        }
        match DeskMedia::new(self.info.leg.0, conn_id) {
            Ok(media) => self.snoops.push(Snoop { user_id, mode, media, pcm: Vec::with_capacity(FRAME_SAMPLES) }),
            Err(e) => tracing::warn!(leg = %self.info.leg, error = %e, "cannot start a supervisor's audio"),
        }
    }

    /// The supervisors in the call.
    pub fn snoopers(&self) -> Vec<i64> {
        self.snoops.iter().map(|s| s.user_id).collect()
    }

    /// A digit arrived: noted for the CDR, queued for [`Call::collect`], reported.
    fn digit(&mut self, d: char) -> Input {
        self.digits.push(d);
        self.pending.push_back(d);
        tracing::info!(leg = %self.info.leg, digit = %d, "DTMF");
        self.emit(EngineEvent::Dtmf { leg: self.info.leg, digit: d });
        Input::Digit
    }

    fn check(&self) -> Result<(), CallError> {
        match self.ended {
            Some(_) => Err(CallError::Ended),
            None => Ok(()),
        }
    }

    /// A re-INVITE: answer with our media (same port), follow the new address and codec.
    fn reinvite(&mut self, sdp_bytes: &[u8]) {
        self.local.session_version += 1;
        let answer = std::str::from_utf8(sdp_bytes)
            .ok()
            .and_then(|t| SessionDescription::parse(t).ok())
            .and_then(|offer| sdp::answer(&offer, &self.local).ok());
        let body = match answer {
            Some(a) => {
                self.rtp.renegotiate(&a);
                a.sdp.render().into_bytes()
            }
            // An offerless re-INVITE (or one we cannot use): offer what we have.
            None => sdp::offer(&self.local).render().into_bytes(),
        };
        self.command(CallCommand::AcceptReinvite { leg: self.info.leg, sdp: body });
    }

    /// The peer's SDP in the ACK, answering the offer of a late-offer 200.
    fn apply_remote_sdp(&mut self, sdp_bytes: &[u8]) {
        let negotiated = std::str::from_utf8(sdp_bytes)
            .ok()
            .and_then(|t| SessionDescription::parse(t).ok())
            .and_then(|remote| sdp::answer(&remote, &self.local).ok());
        if let Some(a) = negotiated {
            self.rtp.renegotiate(&a);
        }
    }

    fn command(&self, command: CallCommand) {
        // The SIP task lives as long as the daemon; a failed send means shutdown.
        let _ = self.shared.commands.send(command);
    }

    fn emit(&self, event: EngineEvent) {
        // No subscriber is fine: events are for whoever watches (ACD, supervisors, tests).
        let _ = self.shared.events.send(event);
    }

    /// What the engine writes into the CDR at the end.
    pub(super) fn into_outcome(self) -> Outcome {
        Outcome { info: self.info, ended: self.ended, digits: self.digits, answered: self.answered, sip_status: self.sip_status, forced: self.forced }
    }
}

/// The next desk signal, or never when the call has no desk leg.
async fn recv_desk(rx: &mut Option<mpsc::UnboundedReceiver<DeskSignal>>) -> Option<DeskSignal> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Adds `other` into `into`, sample by sample, saturating (a simple mixer: speech rarely peaks
/// on both sides at once).
fn mix_into(into: &mut [i16], other: &[i16]) {
    for (a, b) in into.iter_mut().zip(other) {
        *a = a.saturating_add(*b);
    }
}

/// The next signal of a bridged leg, or never without one.
async fn recv_signal(rx: &mut Option<mpsc::UnboundedReceiver<LegSignal>>) -> Option<LegSignal> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next datagram of a bridged leg's RTP, or never without one.
async fn recv_rtp(rtp: &mut Option<RtpLeg>, handling: Handling) -> std::io::Result<Received> {
    match rtp {
        Some(rtp) => rtp.receive(handling).await,
        None => std::future::pending().await,
    }
}

/// Appends 20 ms to a whole-call recording, synced about once a second. A write error (a full
/// disk) stops the recording, never the call.
fn record_stereo(recording: &mut Option<(WavWriter, String)>, leg: LegId, left: &[i16], right: &[i16]) {
    let Some((writer, path)) = recording.as_mut() else { return };
    let written = writer.write_stereo(left, right).and_then(|()| if writer.should_sync() { writer.sync() } else { Ok(()) });
    if let Err(e) = written {
        tracing::warn!(%leg, path, error = %e, "call recording stopped");
        *recording = None;
    }
}
