//! Desk legs: a desktop's softphone as a call leg (AGT-8, switchd side; DESIGN.md decision 7).
//!
//! The engine sits below the desk server, so they meet through channels the daemon wires:
//! - desk → engine: [`IncomingAudio`] (every audio datagram of a logged-in desk) and
//!   [`DeskControl`] (AnswerCall / HangupCall requests, with a reply);
//! - engine → desk: [`DeskOut`] (events for a user's connections, audio for one connection).
//!
//! [`route`] owns the registry of ringing and connected desk legs and checks that the user who
//! answers, hangs up or sends audio is the one the call was offered to. The media itself is
//! transcoded in the SIP call's task ([`DeskMedia`]): G.711 ↔ Opus at 8 kHz, a jitter buffer
//! and Opus packet-loss concealment on what the desk sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rexian_shared::audio::{AudioFrame, OpusDecoderVoip, OpusEncoderVoip, OpusError, TIMESTAMP_CLOCK_HZ, TIMESTAMP_TICKS_PER_FRAME};
use rexian_shared::{ActiveCall, Event, SnoopMode};
use tokio::sync::{mpsc, oneshot};

use crate::media::jitter::{JitterBuffer, JitterConfig, Playout};

/// The `callee` of a desk-to-desk call's offer (and of a consulted desk in supervisors'
/// `ListCalls`): it is internal, not a caller's.
pub const INTERNAL: &str = "internal";

/// One audio frame from a logged-in desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingAudio {
    /// The desk connection it came on (where the answer to it is sent).
    pub conn_id: u64,
    /// The logged-in user of that connection when the frame arrived.
    pub user_id: i64,
    pub frame: AudioFrame,
}

/// Engine → desk server.
#[derive(Debug, Clone, PartialEq)]
pub enum DeskOut {
    /// Push `event` to every connection `user_id` is logged in on.
    Event { user_id: i64, event: Event },
    /// Push `event` to every subscribed supervisor and administrator (the seat board).
    Supervisors { event: Event },
    /// Send one audio frame to one connection.
    Audio { conn_id: u64, frame: AudioFrame },
}

/// Why a desk's call request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeskCallError {
    #[error("通话不存在或已结束 / no such call")]
    NotFound,
    #[error("这不是您的通话 / not your call")]
    NotYours,
    #[error("通话已在其他终端接听 / already answered")]
    AlreadyAnswered,
    #[error("未配置呼出中继 / no outbound trunk is configured")]
    NoTrunk,
    #[error("无可用媒体端口 / no media port free")]
    NoMedia,
    #[error("通话尚未接通 / the call is not connected yet")]
    NotConnected,
    #[error("此通话不是排队来电，不能转座席、队列或班长 / only calls from an ACD queue go to an agent, a queue or a supervisor")]
    NotQueued,
    #[error("请先监听此通话再接管 / listen to the call before taking it over")]
    NotListening,
    #[error("内部通话不支持此操作 / not possible on a desk-to-desk call")]
    DeskToDesk,
}

/// A desk user's call control, from the desk server.
#[derive(Debug)]
pub enum DeskControl {
    Answer { call: u64, user_id: i64, conn_id: u64, reply: oneshot::Sender<Result<(), DeskCallError>> },
    Hangup { call: u64, user_id: i64, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// Call an external number; the reply is the new call's id.
    Dial { number: String, user_id: i64, conn_id: u64, reply: oneshot::Sender<Result<u64, DeskCallError>> },
    /// A supervisor joins (or changes how they are in) a connected desk call. The role is
    /// checked by the desk server.
    Snoop { call: u64, user_id: i64, conn_id: u64, mode: SnoopMode, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// The desk calls now, for supervisors.
    List { reply: oneshot::Sender<Vec<ActiveCall>> },
    /// The agent keys digits towards the other party of a connected call.
    Dtmf { call: u64, user_id: i64, digits: String, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// The agent hands the caller on to `number` (blind transfer), or adds `number` to the
    /// call (three-way conference) when `keep` is set.
    Transfer { call: u64, user_id: i64, number: String, keep: bool, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// The agent hands the caller to IVR flow `flow` (人工转自动).
    TransferToFlow { call: u64, user_id: i64, flow: String, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// The agent hands the caller of a queue call to another desk user or queue.
    Handover { call: u64, user_id: i64, to: Handover, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// The agent holds or mutes a connected call, or steers a consultation.
    Control { call: u64, user_id: i64, control: Control, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// A supervisor ends a desk call (强拆). The role is checked by the desk server.
    ForceHangup { call: u64, by: i64, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// Desk connection `conn_id` is gone (network loss, a crashed desktop): the calls it
    /// talked on lose their desk, and a supervisor listening on it leaves.
    ConnectionLost { conn_id: u64 },
    /// A supervisor listening to a desk call takes it over (接管). The role is checked by the
    /// desk server; that they listen, here.
    TakeOver { call: u64, by: i64, reply: oneshot::Sender<Result<(), DeskCallError>> },
    /// Desk user `from` (on `conn_id`) calls desk user `to` (SUP-3, intercom); the reply is
    /// the caller's call id. Who may call whom is checked by the desk server.
    Intercom { from: i64, from_name: String, conn_id: u64, to: i64, to_name: String, reply: oneshot::Sender<Result<u64, DeskCallError>> },
}

/// What an agent does to a connected call besides talking (AGT-1, AGT-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Hold(bool),
    Mute(bool),
    /// Hold the caller and call this number (attended transfer).
    Consult(String),
    /// The consulted party takes the caller over.
    CompleteConsult,
    /// The consulted party is dropped; back to the caller.
    CancelConsult,
    /// Hold the caller and ring desk user `user_id` (attended transfer to a desk, or a call
    /// for help); `by` names the asking user on the consulted desk.
    ConsultDesk { user_id: i64, by: String },
}

/// Where a desk hands its caller on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// An outside number, through the outbound trunk.
    Number(String),
    /// An IVR flow.
    Flow(String),
    /// Another desk user (by user id): rung; unanswered, the caller goes back to the queue.
    Agent(i64),
    /// An ACD queue, ahead of the callers waiting there.
    Queue(String),
    /// The party the desk consulted (attended transfer) takes the caller over; the two are
    /// bridged already.
    Consulted,
    /// Not asked for: the desk's connection was lost mid-call. A queue call goes back to its
    /// queue ahead of the others; any other call is told and ended.
    DeskLost,
}

/// What the desk side tells a call task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeskSignal {
    /// The user answered on connection `conn_id`.
    Answered { conn_id: u64 },
    /// The user hung up or declined.
    Hangup,
    /// The user transfers the caller to `number`.
    Transfer { number: String },
    /// The user hands the caller to IVR flow `flow`.
    TransferToFlow { flow: String },
    /// The user adds `number` to the call.
    Conference { number: String },
    /// The user keys digits towards the other party.
    Dtmf { digits: String },
    /// Audio from the answering connection.
    Audio(AudioFrame),
    /// A supervisor joined on `conn_id` (or changed mode).
    Snoop { conn_id: u64, user_id: i64, mode: SnoopMode },
    /// The supervisor on `conn_id` left.
    SnoopStop { conn_id: u64 },
    /// Audio from a supervisor's connection.
    SnoopAudio { conn_id: u64, frame: AudioFrame },
    /// The user hands the caller of a queue call on.
    Handover(Handover),
    /// Hold, mute or consultation.
    Control(Control),
    /// A supervisor ends the call.
    ForceHangup { by: i64 },
    /// The connection the call was answered on is gone.
    Lost,
    /// One of several desks a ring-all offer rings declined; the others ring on.
    Declined { user_id: i64 },
    /// The consulted desk answered on `conn_id`.
    ConsultAnswered { conn_id: u64 },
    /// The consulted desk hung up or declined.
    ConsultHangup,
    /// Audio from the consulted desk.
    ConsultAudio(AudioFrame),
    /// The supervisor listening on `conn_id` takes the call over.
    TakeOver { conn_id: u64 },
}

struct Entry {
    user_id: i64,
    answered_on: Option<u64>,
    caller: String,
    callee: String,
    /// Supervisors in the call: (user, connection).
    snoopers: Vec<(i64, u64)>,
    /// The ACD queue the call came from (transfers to agents and queues need one).
    queue: Option<String>,
    held: bool,
    /// Other users a ring-all offer rings besides `user_id`; whoever answers first becomes
    /// `user_id`.
    also: Vec<i64>,
    /// A desk user being consulted on this call (attended transfer to a desk, AGT-2).
    consult: Option<Consulted>,
    /// One side of a desk-to-desk call (SUP-3): answered and hung up, nothing more.
    desk_to_desk: bool,
    tx: mpsc::UnboundedSender<DeskSignal>,
}

/// The desk consulted on a call: who, on which connection once answered, and the asking user.
struct Consulted {
    user_id: i64,
    answered_on: Option<u64>,
    by: String,
}

/// Ringing and connected desk legs by call id.
#[derive(Default)]
pub struct DeskRegistry {
    legs: Mutex<HashMap<u64, Entry>>,
}

impl DeskRegistry {
    /// Registers a desk leg for `user_id` (ringing, or connected on `answered_on` when the
    /// desk placed the call); its signals arrive on the returned receiver.
    pub fn insert(&self, call: u64, user_id: i64, answered_on: Option<u64>, caller: &str, callee: &str) -> mpsc::UnboundedReceiver<DeskSignal> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut legs) = self.legs.lock() {
            let entry = Entry { user_id, answered_on, caller: caller.to_owned(), callee: callee.to_owned(), snoopers: Vec::new(), queue: None, held: false, also: Vec::new(), consult: None, desk_to_desk: false, tx };
            legs.insert(call, entry);
        }
        rx
    }

    /// A ringing offer rings these users too (ring-all).
    pub fn ring_also(&self, call: u64, users: &[i64]) {
        if let Ok(mut legs) = self.legs.lock() {
            if let Some(e) = legs.get_mut(&call).filter(|e| e.answered_on.is_none()) {
                e.also = users.iter().copied().filter(|u| *u != e.user_id).collect();
            }
        }
    }

    /// One user of a ring-all offer stops ringing (the others ring on).
    pub fn stop_ringing(&self, call: u64, user_id: i64) {
        if let Ok(mut legs) = self.legs.lock() {
            if let Some(e) = legs.get_mut(&call).filter(|e| e.answered_on.is_none()) {
                e.also.retain(|u| *u != user_id);
            }
        }
    }

    /// The user a desk leg belongs to (after a ring-all answer: who answered).
    pub fn user_of(&self, call: u64) -> Option<i64> {
        self.legs.lock().ok()?.get(&call).map(|e| e.user_id)
    }

    /// Notes the ACD queue a desk leg's call came from.
    pub fn set_queue(&self, call: u64, queue: Option<String>) {
        if let Ok(mut legs) = self.legs.lock() {
            if let Some(e) = legs.get_mut(&call) {
                e.queue = queue;
            }
        }
    }

    /// Notes whether a desk call's caller is on hold (for supervisors' `ListCalls`).
    pub fn set_held(&self, call: u64, held: bool) {
        if let Ok(mut legs) = self.legs.lock() {
            if let Some(e) = legs.get_mut(&call) {
                e.held = held;
            }
        }
    }

    /// Starts ringing desk user `user_id` as the one consulted on `call` (their desk knows the
    /// call by the same id); false without such a call or with a consultation going on.
    pub fn start_consult(&self, call: u64, user_id: i64, by: &str) -> bool {
        let Ok(mut legs) = self.legs.lock() else { return false };
        match legs.get_mut(&call) {
            Some(e) if e.consult.is_none() && e.user_id != user_id => {
                e.consult = Some(Consulted { user_id, answered_on: None, by: by.to_owned() });
                true
            }
            _ => false,
        }
    }

    /// Marks `call` as one side of a desk-to-desk call: no hold, transfer, consultation,
    /// listening or take-over on it.
    pub fn mark_desk_to_desk(&self, call: u64) {
        if let Ok(mut legs) = self.legs.lock() {
            if let Some(e) = legs.get_mut(&call) {
                e.desk_to_desk = true;
            }
        }
    }

    /// The consulted desk is no longer part of `call`.
    pub fn end_consult(&self, call: u64) {
        if let Ok(mut legs) = self.legs.lock() {
            if let Some(e) = legs.get_mut(&call) {
                e.consult = None;
            }
        }
    }

    /// The consulted desk becomes the call's desk party (the transfer is complete): it answers,
    /// hangs up and sends audio for the call from now.
    pub fn promote_consult(&self, call: u64) {
        if let Ok(mut legs) = self.legs.lock() {
            if let Some(e) = legs.get_mut(&call) {
                if let Some(c) = e.consult.take() {
                    e.user_id = c.user_id;
                    e.answered_on = c.answered_on;
                    e.held = false;
                }
            }
        }
    }

    /// The connection the call's desk party answered on, if any.
    pub fn answered_on(&self, call: u64) -> Option<u64> {
        self.legs.lock().ok()?.get(&call)?.answered_on
    }

    pub fn remove(&self, call: u64) {
        if let Ok(mut legs) = self.legs.lock() {
            legs.remove(&call);
        }
    }

    fn control(&self, control: DeskControl) {
        let Ok(mut legs) = self.legs.lock() else { return };
        match control {
            DeskControl::ConnectionLost { conn_id } => {
                for e in legs.values_mut() {
                    if e.answered_on == Some(conn_id) {
                        let _ = e.tx.send(DeskSignal::Lost);
                    }
                    if e.snoopers.iter().any(|(_, c)| *c == conn_id) {
                        e.snoopers.retain(|(_, c)| *c != conn_id);
                        let _ = e.tx.send(DeskSignal::SnoopStop { conn_id });
                    }
                }
            }
            DeskControl::Answer { call, user_id, conn_id, reply } => {
                let result = match legs.get_mut(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.user_id != user_id && e.consult.as_ref().is_some_and(|c| c.user_id == user_id) => match e.consult.as_mut() {
                        Some(c) if c.answered_on.is_none() => {
                            c.answered_on = Some(conn_id);
                            e.tx.send(DeskSignal::ConsultAnswered { conn_id }).map_err(|_| DeskCallError::NotFound)
                        }
                        _ => Err(DeskCallError::AlreadyAnswered),
                    },
                    Some(e) if e.answered_on.is_some() && (e.user_id == user_id || e.also.contains(&user_id)) => Err(DeskCallError::AlreadyAnswered),
                    Some(e) if e.user_id != user_id && !e.also.contains(&user_id) => Err(DeskCallError::NotYours),
                    Some(e) => {
                        // Ring-all: the first to answer takes the call (the others, kept in
                        // `also`, are told it was answered if they try).
                        if e.user_id != user_id {
                            e.also.retain(|u| *u != user_id);
                            e.also.push(e.user_id);
                            e.user_id = user_id;
                        }
                        e.answered_on = Some(conn_id);
                        e.tx.send(DeskSignal::Answered { conn_id }).map_err(|_| DeskCallError::NotFound)
                    }
                };
                let _ = reply.send(result);
            }
            DeskControl::Hangup { call, user_id, reply } => {
                let result = match legs.get_mut(&call) {
                    None => Err(DeskCallError::NotFound),
                    // A supervisor hanging up leaves the call; the others talk on.
                    Some(e) if e.snoopers.iter().any(|(u, _)| *u == user_id) => {
                        let (gone, stay): (Vec<_>, Vec<_>) = e.snoopers.iter().partition(|(u, _)| *u == user_id);
                        e.snoopers = stay;
                        for (_, conn_id) in gone {
                            let _ = e.tx.send(DeskSignal::SnoopStop { conn_id });
                        }
                        Ok(())
                    }
                    // One of several ringing desks declines: the others ring on.
                    Some(e) if e.answered_on.is_none() && !e.also.is_empty() && (e.user_id == user_id || e.also.contains(&user_id)) => {
                        if e.user_id == user_id {
                            e.user_id = e.also.remove(0);
                        } else {
                            e.also.retain(|u| *u != user_id);
                        }
                        e.tx.send(DeskSignal::Declined { user_id }).map_err(|_| DeskCallError::NotFound)
                    }
                    Some(e) if e.user_id != user_id && e.consult.as_ref().is_some_and(|c| c.user_id == user_id) => {
                        e.tx.send(DeskSignal::ConsultHangup).map_err(|_| DeskCallError::NotFound)
                    }
                    Some(e) if e.user_id != user_id => Err(DeskCallError::NotYours),
                    Some(e) => e.tx.send(DeskSignal::Hangup).map_err(|_| DeskCallError::NotFound),
                };
                let _ = reply.send(result);
            }
            DeskControl::Snoop { call, user_id, conn_id, mode, reply } => {
                let result = match legs.get_mut(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.desk_to_desk => Err(DeskCallError::DeskToDesk),
                    Some(e) if e.answered_on.is_none() => Err(DeskCallError::NotConnected),
                    Some(e) => {
                        e.snoopers.retain(|(_, c)| *c != conn_id);
                        e.snoopers.push((user_id, conn_id));
                        e.tx.send(DeskSignal::Snoop { conn_id, user_id, mode }).map_err(|_| DeskCallError::NotFound)
                    }
                };
                let _ = reply.send(result);
            }
            DeskControl::Transfer { call, user_id, number, keep, reply } => {
                let result = match legs.get(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.user_id != user_id => Err(DeskCallError::NotYours),
                    Some(e) if e.desk_to_desk => Err(DeskCallError::DeskToDesk),
                    Some(e) if e.answered_on.is_none() => Err(DeskCallError::NotConnected),
                    Some(e) => {
                        let signal = if keep { DeskSignal::Conference { number } } else { DeskSignal::Transfer { number } };
                        e.tx.send(signal).map_err(|_| DeskCallError::NotFound)
                    }
                };
                let _ = reply.send(result);
            }
            DeskControl::TransferToFlow { call, user_id, flow, reply } => {
                let result = match legs.get(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.user_id != user_id => Err(DeskCallError::NotYours),
                    Some(e) if e.desk_to_desk => Err(DeskCallError::DeskToDesk),
                    Some(e) if e.answered_on.is_none() => Err(DeskCallError::NotConnected),
                    Some(e) => e.tx.send(DeskSignal::TransferToFlow { flow }).map_err(|_| DeskCallError::NotFound),
                };
                let _ = reply.send(result);
            }
            DeskControl::Handover { call, user_id, to, reply } => {
                let result = match legs.get(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.user_id != user_id => Err(DeskCallError::NotYours),
                    Some(e) if e.desk_to_desk => Err(DeskCallError::DeskToDesk),
                    Some(e) if e.answered_on.is_none() => Err(DeskCallError::NotConnected),
                    Some(e) if e.queue.is_none() => Err(DeskCallError::NotQueued),
                    Some(e) => e.tx.send(DeskSignal::Handover(to)).map_err(|_| DeskCallError::NotFound),
                };
                let _ = reply.send(result);
            }
            DeskControl::Control { call, user_id, control, reply } => {
                let result = match legs.get(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.user_id != user_id => Err(DeskCallError::NotYours),
                    Some(e) if e.desk_to_desk => Err(DeskCallError::DeskToDesk),
                    Some(e) if e.answered_on.is_none() => Err(DeskCallError::NotConnected),
                    Some(e) => e.tx.send(DeskSignal::Control(control)).map_err(|_| DeskCallError::NotFound),
                };
                let _ = reply.send(result);
            }
            DeskControl::ForceHangup { call, by, reply } => {
                let result = match legs.get(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.desk_to_desk => Err(DeskCallError::DeskToDesk),
                    Some(e) if e.answered_on.is_none() => Err(DeskCallError::NotConnected),
                    Some(e) => e.tx.send(DeskSignal::ForceHangup { by }).map_err(|_| DeskCallError::NotFound),
                };
                let _ = reply.send(result);
            }
            DeskControl::TakeOver { call, by, reply } => {
                let result = match legs.get_mut(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.desk_to_desk => Err(DeskCallError::DeskToDesk),
                    Some(e) if e.answered_on.is_none() => Err(DeskCallError::NotConnected),
                    Some(e) => match e.snoopers.iter().position(|(u, _)| *u == by) {
                        None => Err(DeskCallError::NotListening),
                        Some(i) => {
                            let (_, conn_id) = e.snoopers.remove(i);
                            e.user_id = by;
                            e.answered_on = Some(conn_id);
                            e.held = false;
                            e.tx.send(DeskSignal::TakeOver { conn_id }).map_err(|_| DeskCallError::NotFound)
                        }
                    },
                };
                let _ = reply.send(result);
            }
            DeskControl::Dtmf { call, user_id, digits, reply } => {
                let result = match legs.get(&call) {
                    None => Err(DeskCallError::NotFound),
                    Some(e) if e.user_id != user_id => Err(DeskCallError::NotYours),
                    Some(e) if e.desk_to_desk => Err(DeskCallError::DeskToDesk),
                    Some(e) if e.answered_on.is_none() => Err(DeskCallError::NotConnected),
                    Some(e) => e.tx.send(DeskSignal::Dtmf { digits }).map_err(|_| DeskCallError::NotFound),
                };
                let _ = reply.send(result);
            }
            DeskControl::List { reply } => {
                let mut calls: Vec<ActiveCall> = legs
                    .iter()
                    .map(|(call, e)| ActiveCall {
                        call: *call,
                        user_id: e.user_id,
                        caller: e.caller.clone(),
                        callee: e.callee.clone(),
                        connected: e.answered_on.is_some(),
                        held: e.held,
                    })
                    .collect();
                // A consulted desk is busy with the call too.
                calls.extend(legs.iter().filter_map(|(call, e)| {
                    let c = e.consult.as_ref()?;
                    Some(ActiveCall { call: *call, user_id: c.user_id, caller: c.by.clone(), callee: INTERNAL.to_owned(), connected: c.answered_on.is_some(), held: false })
                }));
                calls.sort_by_key(|c| c.call);
                let _ = reply.send(calls);
            }
            DeskControl::Dial { reply, .. } => {
                let _ = reply.send(Err(DeskCallError::NoTrunk));
            }
            DeskControl::Intercom { reply, .. } => {
                let _ = reply.send(Err(DeskCallError::NoMedia));
            }
        }
    }

    /// Audio goes to the call only from the connection that answered it, or a supervisor's
    /// connection that joined it.
    fn audio(&self, audio: IncomingAudio) {
        let Ok(legs) = self.legs.lock() else { return };
        let Some(e) = legs.get(&audio.frame.call) else { return };
        if e.user_id == audio.user_id && e.answered_on == Some(audio.conn_id) {
            let _ = e.tx.send(DeskSignal::Audio(audio.frame));
        } else if e.consult.as_ref().is_some_and(|c| c.user_id == audio.user_id && c.answered_on == Some(audio.conn_id)) {
            let _ = e.tx.send(DeskSignal::ConsultAudio(audio.frame));
        } else if e.snoopers.contains(&(audio.user_id, audio.conn_id)) {
            let _ = e.tx.send(DeskSignal::SnoopAudio { conn_id: audio.conn_id, frame: audio.frame });
        }
    }
}

/// Routes desk control and audio to the call tasks until both channels close; a `Dial`
/// places a new outbound call.
pub async fn route(
    shared: Arc<super::Shared>,
    mut audio: mpsc::Receiver<IncomingAudio>,
    mut control: mpsc::UnboundedReceiver<DeskControl>,
) {
    loop {
        tokio::select! {
            a = audio.recv() => match a {
                Some(a) => shared.desks.audio(a),
                None => break,
            },
            c = control.recv() => match c {
                Some(DeskControl::Dial { number, user_id, conn_id, reply }) => {
                    let _ = reply.send(super::outbound::dial_from_desk(&shared, user_id, conn_id, &number).await);
                }
                Some(DeskControl::Intercom { from, from_name, conn_id, to, to_name, reply }) => {
                    let _ = reply.send(Ok(super::intercom::start(&shared, from, &from_name, conn_id, to, &to_name)));
                }
                Some(c) => shared.desks.control(c),
                None => break,
            },
        }
    }
}

/// The media of a connected desk leg, inside the SIP call's task: what the caller says goes to
/// the desk as Opus, what the desk says comes out of a jitter buffer into the caller's RTP.
pub struct DeskMedia {
    pub call: u64,
    pub conn_id: u64,
    encoder: OpusEncoderVoip,
    decoder: OpusDecoderVoip,
    jitter: JitterBuffer,
    seq: u16,
    timestamp: u32,
    /// The sequence number of the last frame from the desk, to notice a restarted stream.
    last_in: Option<u16>,
}

/// A frame this far from the last one (either way) starts a new stream: the desktop restarted
/// its audio (a reconnect, a device change) and numbers from scratch.
const RESTART_GAP: u16 = 500;

fn desk_jitter() -> JitterBuffer {
    JitterBuffer::new(JitterConfig {
        clock_rate: TIMESTAMP_CLOCK_HZ,
        frame_duration: Duration::from_millis(20),
        ..JitterConfig::default()
    })
}

impl DeskMedia {
    /// Codecs at 8 kHz: switchd's side is G.711, whatever rate the desk encodes at.
    pub fn new(call: u64, conn_id: u64) -> Result<Self, OpusError> {
        Ok(Self {
            call,
            conn_id,
            encoder: OpusEncoderVoip::new(8000)?,
            decoder: OpusDecoderVoip::new(8000)?,
            jitter: desk_jitter(),
            seq: 0,
            timestamp: 0,
            last_in: None,
        })
    }

    /// A frame from the desk arrived at `now`. A stream that starts again from other numbers
    /// gets a fresh jitter buffer, instead of its frames being dropped as old.
    pub fn receive(&mut self, now: Instant, frame: AudioFrame) {
        if let Some(last) = self.last_in {
            let gap = frame.seq.wrapping_sub(last).min(last.wrapping_sub(frame.seq));
            if gap > RESTART_GAP {
                tracing::debug!(call = self.call, last, seq = frame.seq, "desk audio stream restarted");
                self.jitter = desk_jitter();
            }
        }
        self.last_in = Some(frame.seq);
        self.jitter.handle_packet(now, frame.seq, frame.timestamp, frame.payload);
    }

    /// 20 ms of what the caller said, as a frame for the desk.
    pub fn encode(&mut self, samples: &[i16]) -> Option<AudioFrame> {
        let payload = self
            .encoder
            .encode(samples)
            .map_err(|e| tracing::debug!(error = %e, "Opus encode failed"))
            .ok()?;
        let frame = AudioFrame { call: self.call, seq: self.seq, timestamp: self.timestamp, payload };
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(TIMESTAMP_TICKS_PER_FRAME);
        Some(frame)
    }

    /// The desk's audio due at `now` as 8 kHz samples (lost frames concealed, silence as zeros).
    pub fn take(&mut self, now: Instant, out: &mut Vec<i16>) {
        out.clear();
        if let Some(playout) = self.jitter.poll_frame(now) {
            match playout {
                Playout::Frame(packet) => match self.decoder.decode(&packet) {
                    Ok(pcm) => out.extend(pcm),
                    Err(_) => out.extend(self.decoder.conceal()),
                },
                Playout::Lost => out.extend(self.decoder.conceal()),
                Playout::Silence => {}
            }
        }
        out.resize(super::rtp_leg::FRAME_SAMPLES, 0);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(seq: u16, pcm: &[i16], enc: &mut OpusEncoderVoip) -> AudioFrame {
        AudioFrame { call: 1, seq, timestamp: u32::from(seq) * TIMESTAMP_TICKS_PER_FRAME, payload: enc.encode(pcm).unwrap() }
    }

    /// Runs one control on `registry` and returns its verdict.
    fn verdict(registry: &DeskRegistry, make: impl FnOnce(oneshot::Sender<Result<(), DeskCallError>>) -> DeskControl) -> Result<(), DeskCallError> {
        let (reply, mut rx) = oneshot::channel();
        registry.control(make(reply));
        rx.try_recv().unwrap()
    }

    #[test]
    fn a_ring_all_offer_is_taken_by_the_first_answer_and_a_decline_stops_one_desk() {
        let registry = DeskRegistry::default();
        let mut signals = registry.insert(7, 1, None, "13800138000", "12365");
        registry.ring_also(7, &[1, 2, 3]);
        let hangup = |user_id| move |reply| DeskControl::Hangup { call: 7, user_id, reply };
        let answer = |user_id, conn_id| move |reply| DeskControl::Answer { call: 7, user_id, conn_id, reply };
        // Desk 1 declines: the others ring on.
        verdict(&registry, hangup(1)).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::Declined { user_id: 1 });
        assert_eq!(verdict(&registry, answer(1, 9)), Err(DeskCallError::NotYours), "a declined desk is out");
        // Desk 3 answers first and owns the call; desk 2 is too late.
        verdict(&registry, answer(3, 30)).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::Answered { conn_id: 30 });
        assert_eq!(registry.user_of(7), Some(3));
        assert_eq!(verdict(&registry, answer(2, 20)), Err(DeskCallError::AlreadyAnswered));
        assert_eq!(verdict(&registry, hangup(2)), Err(DeskCallError::NotYours), "only the answering desk ends it");
        verdict(&registry, hangup(3)).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::Hangup);
    }

    #[test]
    fn call_control_is_for_the_users_own_connected_calls_and_hand_overs_for_queue_calls() {
        let registry = DeskRegistry::default();
        let mut signals = registry.insert(7, 1, None, "13800138000", "12365");
        let hold = |user_id| move |reply| DeskControl::Control { call: 7, user_id, control: Control::Hold(true), reply };
        assert_eq!(verdict(&registry, hold(1)), Err(DeskCallError::NotConnected), "ringing");
        assert_eq!(verdict(&registry, |reply| DeskControl::ForceHangup { call: 7, by: 9, reply }), Err(DeskCallError::NotConnected));
        verdict(&registry, |reply| DeskControl::Answer { call: 7, user_id: 1, conn_id: 3, reply }).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::Answered { conn_id: 3 });
        assert_eq!(verdict(&registry, hold(2)), Err(DeskCallError::NotYours));
        verdict(&registry, hold(1)).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::Control(Control::Hold(true)));

        // Not from a queue: no hand-over to an agent or queue; from one, it reaches the call.
        let to_agent = |reply| DeskControl::Handover { call: 7, user_id: 1, to: Handover::Agent(2), reply };
        assert_eq!(verdict(&registry, to_agent), Err(DeskCallError::NotQueued));
        registry.set_queue(7, Some("hotline".into()));
        let to_queue = |reply| DeskControl::Handover { call: 7, user_id: 1, to: Handover::Queue("experts".into()), reply };
        verdict(&registry, to_queue).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::Handover(Handover::Queue("experts".into())));

        // Supervisors see the hold; any supervisor may force the end.
        registry.set_held(7, true);
        let (reply, mut calls) = oneshot::channel();
        registry.control(DeskControl::List { reply });
        assert!(calls.try_recv().unwrap().iter().any(|c| c.call == 7 && c.held));
        verdict(&registry, |reply| DeskControl::ForceHangup { call: 7, by: 9, reply }).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::ForceHangup { by: 9 });
        assert_eq!(verdict(&registry, |reply| DeskControl::ForceHangup { call: 8, by: 9, reply }), Err(DeskCallError::NotFound));
    }

    /// A consulted desk answers, talks and hangs up under the caller's call id without taking
    /// the call; completing makes it the call's desk party. A take-over needs a listening
    /// supervisor and makes them the desk party.
    #[test]
    fn a_consulted_desk_and_a_taking_over_supervisor_act_under_the_call_id() {
        let registry = DeskRegistry::default();
        let mut signals = registry.insert(7, 1, Some(3), "13800138000", "12365");
        assert!(registry.start_consult(7, 2, "agent1"));
        assert!(!registry.start_consult(7, 4, "agent1"), "one consultation at a time");
        assert!(!registry.start_consult(8, 2, "agent1"), "no such call");
        let (reply, mut calls) = oneshot::channel();
        registry.control(DeskControl::List { reply });
        assert!(calls.try_recv().unwrap().iter().any(|c| c.call == 7 && c.user_id == 2 && c.callee == INTERNAL), "the consulted desk is busy");
        assert_eq!(verdict(&registry, |reply| DeskControl::Answer { call: 7, user_id: 4, conn_id: 9, reply }), Err(DeskCallError::NotYours));
        verdict(&registry, |reply| DeskControl::Answer { call: 7, user_id: 2, conn_id: 5, reply }).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::ConsultAnswered { conn_id: 5 });
        assert_eq!(verdict(&registry, |reply| DeskControl::Answer { call: 7, user_id: 2, conn_id: 6, reply }), Err(DeskCallError::AlreadyAnswered));
        // Its audio is the consulted desk's; it may not steer the caller's call.
        let frame = AudioFrame { call: 7, seq: 1, timestamp: 0, payload: vec![1] };
        registry.audio(IncomingAudio { conn_id: 5, user_id: 2, frame: frame.clone() });
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::ConsultAudio(frame.clone()));
        let hold = |user_id| move |reply| DeskControl::Control { call: 7, user_id, control: Control::Hold(true), reply };
        assert_eq!(verdict(&registry, hold(2)), Err(DeskCallError::NotYours));
        registry.promote_consult(7);
        registry.audio(IncomingAudio { conn_id: 5, user_id: 2, frame: frame.clone() });
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::Audio(frame));
        verdict(&registry, hold(2)).unwrap();
        assert_eq!(verdict(&registry, hold(1)), Err(DeskCallError::NotYours), "the first agent has left");
        let _ = signals.try_recv();

        // A take-over: only by a supervisor who listens.
        assert_eq!(verdict(&registry, |reply| DeskControl::TakeOver { call: 7, by: 9, reply }), Err(DeskCallError::NotListening));
        verdict(&registry, |reply| DeskControl::Snoop { call: 7, user_id: 9, conn_id: 11, mode: SnoopMode::Listen, reply }).unwrap();
        let _ = signals.try_recv();
        verdict(&registry, |reply| DeskControl::TakeOver { call: 7, by: 9, reply }).unwrap();
        assert_eq!(signals.try_recv().unwrap(), DeskSignal::TakeOver { conn_id: 11 });
        assert_eq!(registry.answered_on(7), Some(11));
        verdict(&registry, hold(9)).unwrap();
        assert_eq!(verdict(&registry, hold(2)), Err(DeskCallError::NotYours));
        assert_eq!(verdict(&registry, |reply| DeskControl::TakeOver { call: 8, by: 9, reply }), Err(DeskCallError::NotFound));

        // A desk-to-desk call is answered and hung up, nothing more.
        let _intercom = registry.insert(20, 1, Some(3), "supervisor", "agent1");
        registry.mark_desk_to_desk(20);
        let hold = |reply| DeskControl::Control { call: 20, user_id: 1, control: Control::Hold(true), reply };
        assert_eq!(verdict(&registry, hold), Err(DeskCallError::DeskToDesk));
        let listen = |reply| DeskControl::Snoop { call: 20, user_id: 9, conn_id: 11, mode: SnoopMode::Listen, reply };
        assert_eq!(verdict(&registry, listen), Err(DeskCallError::DeskToDesk));
        verdict(&registry, |reply| DeskControl::Hangup { call: 20, user_id: 1, reply }).unwrap();
    }

    /// A desktop that restarts its stream (numbers from 0 again) is heard at once, not after
    /// its new numbers have caught up with the old ones.
    #[test]
    fn a_restarted_desk_stream_is_played_not_dropped_as_old() {
        let mut media = DeskMedia::new(1, 1).unwrap();
        let mut enc = OpusEncoderVoip::new(8000).unwrap();
        let tone: Vec<i16> = (0..160).map(|i| ((i as f64 * 0.785).sin() * 8000.0) as i16).collect();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut loud = |media: &mut DeskMedia, at: Instant| {
            media.take(at, &mut out);
            out.iter().map(|&s| i64::from(s).abs()).sum::<i64>() > 160 * 500
        };
        for n in 0..100u16 {
            media.receive(t0 + Duration::from_millis(20 * u64::from(n)), frame(5000 + n, &tone, &mut enc));
        }
        let t1 = t0 + Duration::from_secs(2);
        for n in 0..100u32 {
            loud(&mut media, t0 + Duration::from_millis(20 * u64::from(n)));
        }
        // The stream starts again from 0.
        let mut heard = 0;
        for n in 0..50u16 {
            let at = t1 + Duration::from_millis(20 * u64::from(n));
            media.receive(at, frame(n, &tone, &mut enc));
            if loud(&mut media, at + Duration::from_millis(60)) {
                heard += 1;
            }
        }
        assert!(heard >= 40, "only {heard} of 50 frames of the restarted stream were played");
    }
}
