//! The inbound call side of switchd's SIP user agent, sans-IO: the transaction user that turns
//! INVITEs from trunks into call legs for the engine and keeps their dialogs.
//!
//! [`Calls`] sits between the [`TransactionLayer`] and the engine (DESIGN.md decision 3: the
//! engine never sees SIP). It
//!
//! * refuses an INVITE from a source that is no configured trunk (`403`), or when the call
//!   limit is reached (`503`), and otherwise creates a [`UasDialog`] and reports
//!   [`CallEvent::Incoming`];
//! * routes in-dialog requests (ACK, BYE, INFO, re-INVITE) and CANCEL to their dialog, and
//!   answers requests for no dialog `481`;
//! * carries out the engine's [`CallCommand`]s (ringing, answer with SDP, reject, hang up).
//!
//! # Contract
//! Feed it the layer's [`LayerEvent`]s through [`Calls::handle_layer_event`] and the engine's
//! commands through [`Calls::handle_command`]; after each, the layer holds what to send (drain
//! it as usual) and [`Calls::poll_event`] yields what to tell the engine. Arm a timer for
//! [`Calls::poll_timeout`] (2xx retransmissions) and call [`Calls::handle_timeout`].
//! Nothing here reads a clock or owns a socket.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use rsip::headers::UntypedHeader;
use rsip::prelude::*;
use rsip::{Header, Method, Request, SipMessage, StatusCode, Uri};

use super::dialog::{DialogEvent, DialogId, DialogTransmit, UasDialog};
use super::message::response_for;
use super::transaction::{LayerEvent, TransactionKey, TransactionLayer};
use super::udp::ALLOW;
use super::Timers;

/// The engine's handle on one SIP call leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leg-{}", self.0)
    }
}

/// A trunk: a carrier (or PBX) whose calls we accept, identified by source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkPeer {
    /// The trunk's name, as configured (it appears in CDRs).
    pub name: String,
    /// Source IP addresses its SIP messages come from.
    pub addresses: Vec<IpAddr>,
}

/// What the UA tells the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A new call from a trunk. Answer it with [`CallCommand::Ringing`],
    /// [`CallCommand::Answer`] or [`CallCommand::Reject`].
    Incoming(Box<Incoming>),
    /// The ACK for our 200 arrived (with the SDP answer when the INVITE had no offer).
    Confirmed {
        /// The leg.
        leg: LegId,
        /// The ACK's body, when it carries one (late offer).
        sdp: Option<Vec<u8>>,
    },
    /// A DTMF digit sent by SIP INFO (`application/dtmf-relay` or `application/dtmf`).
    Dtmf {
        /// The leg.
        leg: LegId,
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
    },
    /// The peer sent a re-INVITE (hold, resume, new address); answer it with
    /// [`CallCommand::AcceptReinvite`].
    ReInvite {
        /// The leg.
        leg: LegId,
        /// The new offer (empty for an offerless re-INVITE).
        sdp: Vec<u8>,
    },
    /// The leg is over.
    Ended {
        /// The leg.
        leg: LegId,
        /// Why.
        reason: EndReason,
    },
}

/// Why a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The peer sent BYE.
    RemoteBye,
    /// The peer cancelled before we answered.
    Cancelled,
    /// We hung up (our BYE) or rejected the call.
    Local,
    /// No ACK for our 200 within 64·T1: we sent BYE.
    AckTimeout,
}

/// A new inbound call.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// Its handle.
    pub leg: LegId,
    /// The trunk it came through.
    pub trunk: String,
    /// Where the INVITE came from.
    pub source: SocketAddr,
    /// The SIP Call-ID.
    pub call_id: String,
    /// The caller: the From URI's user part (or the whole URI without one).
    pub caller: String,
    /// The dialled number: the Request-URI's user part.
    pub callee: String,
    /// The SDP offer; empty for a late-offer INVITE (we offer in the 200, the ACK answers).
    pub sdp: Vec<u8>,
}

/// What the engine asks of the UA.
#[derive(Debug, Clone, PartialEq)]
pub enum CallCommand {
    /// Send `180 Ringing` (`183 Session Progress` when `early_media`).
    Ringing {
        /// The leg.
        leg: LegId,
    },
    /// Answer with `200 OK` and this SDP (answer, or our offer for a late-offer INVITE).
    Answer {
        /// The leg.
        leg: LegId,
        /// The body.
        sdp: Vec<u8>,
    },
    /// Refuse the call with a 3xx–6xx status.
    Reject {
        /// The leg.
        leg: LegId,
        /// e.g. 486, 480, 603.
        status: u16,
    },
    /// Answer a re-INVITE with `200 OK` and this SDP.
    AcceptReinvite {
        /// The leg.
        leg: LegId,
        /// The body.
        sdp: Vec<u8>,
    },
    /// End the call: BYE once answered, `480` before.
    Hangup {
        /// The leg.
        leg: LegId,
    },
}

impl CallCommand {
    /// The leg the command is for.
    pub fn leg(&self) -> LegId {
        match self {
            CallCommand::Ringing { leg }
            | CallCommand::Answer { leg, .. }
            | CallCommand::Reject { leg, .. }
            | CallCommand::AcceptReinvite { leg, .. }
            | CallCommand::Hangup { leg } => *leg,
        }
    }
}

struct Leg {
    dialog: UasDialog,
    invite_key: TransactionKey,
    peer: SocketAddr,
    /// Our host as the peer addressed us (for the Via of our requests).
    local_host: String,
    /// The server transaction of the request last handed to the dialog, for its answer.
    current_key: Option<TransactionKey>,
    /// A re-INVITE waiting for the engine's answer, and its server transaction.
    reinvite: Option<(Request, TransactionKey)>,
}

/// The inbound-call transaction user (see the module docs).
pub struct Calls {
    timers: Timers,
    /// Our SIP address as others should reach it (Contact and Via); an unspecified IP is
    /// replaced per call by the address the INVITE was sent to.
    local: SocketAddr,
    trunks: Vec<TrunkPeer>,
    max_calls: usize,
    next_leg: u64,
    legs: HashMap<LegId, Leg>,
    by_dialog: HashMap<DialogId, LegId>,
    events: VecDeque<CallEvent>,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls")
            .field("local", &self.local)
            .field("trunks", &self.trunks)
            .field("legs", &self.legs.len())
            .finish()
    }
}

impl Calls {
    /// A UA reachable at `local`, accepting calls from `trunks`, at most `max_calls` at once.
    pub fn new(timers: Timers, local: SocketAddr, trunks: Vec<TrunkPeer>, max_calls: usize) -> Self {
        Self {
            timers,
            local,
            trunks,
            max_calls,
            next_leg: 1,
            legs: HashMap::new(),
            by_dialog: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Calls alive now.
    pub fn len(&self) -> usize {
        self.legs.len()
    }

    /// True when no call is alive.
    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// The earliest dialog deadline (2xx retransmission, ACK give-up).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.legs.values().filter_map(|l| l.dialog.poll_timeout()).min()
    }

    /// Fire the dialog timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, layer: &mut TransactionLayer) {
        let due: Vec<LegId> = self
            .legs
            .iter()
            .filter(|(_, l)| l.dialog.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(leg) = self.legs.get_mut(&id) {
                leg.dialog.handle_timeout(now);
            }
            self.drain(now, id, layer);
        }
    }

    /// A transaction-layer event: new requests, stray ACKs. Returns the event back when it is
    /// not about calls (the caller handles OPTIONS, logging, malformed input).
    pub fn handle_layer_event(
        &mut self,
        now: Instant,
        event: LayerEvent,
        layer: &mut TransactionLayer,
    ) -> Option<LayerEvent> {
        match event {
            LayerEvent::NewServerTransaction {
                key,
                request,
                source,
            } => self.handle_request(now, key, request, source, layer),
            LayerEvent::StrayAck { request, .. } => {
                if let Some(id) = DialogId::for_incoming(&request).and_then(|d| self.by_dialog.get(&d).copied()) {
                    self.route_to_dialog(now, id, &request, None, layer);
                }
                None
            }
            other => Some(other),
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: SocketAddr,
        layer: &mut TransactionLayer,
    ) -> Option<LayerEvent> {
        if request.method == Method::Cancel {
            let leg = key
                .cancelled_invite()
                .and_then(|k| self.legs.iter().find(|(_, l)| l.invite_key == k))
                .map(|(id, _)| *id);
            match leg {
                Some(id) => self.route_to_dialog(now, id, &request, Some(key.clone()), layer),
                None => send(layer, now, &key, response_for(&request, StatusCode::CallTransactionDoesNotExist)),
            }
            // The CANCEL itself is answered 200 by us (§9.2) whatever the dialog did.
            send(layer, now, &key, response_for(&request, StatusCode::OK));
            return None;
        }
        if let Some(dialog_id) = DialogId::for_incoming(&request) {
            match self.by_dialog.get(&dialog_id).copied() {
                Some(id) => self.route_to_dialog(now, id, &request, Some(key), layer),
                None => send(layer, now, &key, response_for(&request, StatusCode::CallTransactionDoesNotExist)),
            }
            return None;
        }
        match request.method {
            Method::Invite => {
                // Our 2xx ended the INVITE's server transaction (§17.2.1), so a retransmission
                // of it (our 2xx lost) arrives here as new. Same branch and sent-by as a call's
                // INVITE, from the same peer: it is that call, and its dialog answers with the
                // 2xx again (§13.3.1.4). Anyone else replaying it is a new caller (403 unless a
                // trunk) and never sees the call's 2xx and SDP.
                let retransmitted = self
                    .legs
                    .iter()
                    .find(|(_, l)| l.invite_key == key && l.peer == source)
                    .map(|(id, _)| *id);
                match retransmitted {
                    Some(id) => self.route_to_dialog(now, id, &request, Some(key), layer),
                    None => self.new_call(now, key, request, source, layer),
                }
                None
            }
            Method::Options => Some(LayerEvent::NewServerTransaction {
                key,
                request,
                source,
            }),
            Method::Register | Method::Subscribe | Method::Publish | Method::Message => {
                let mut r = response_for(&request, StatusCode::MethodNotAllowed);
                r.headers.push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
                send(layer, now, &key, r);
                None
            }
            _ => {
                send(layer, now, &key, response_for(&request, StatusCode::CallTransactionDoesNotExist));
                None
            }
        }
    }

    fn new_call(
        &mut self,
        now: Instant,
        key: TransactionKey,
        invite: Request,
        source: SocketAddr,
        layer: &mut TransactionLayer,
    ) {
        let Some(trunk) = self.trunk_of(source.ip()) else {
            tracing::info!(%source, "SIP: INVITE from no configured trunk, refused 403");
            send(layer, now, &key, response_for(&invite, StatusCode::Forbidden));
            return;
        };
        if self.legs.len() >= self.max_calls {
            tracing::warn!(%source, calls = self.legs.len(), "SIP: call limit reached, refused 503");
            let mut r = response_for(&invite, StatusCode::ServiceUnavailable);
            r.headers.push(Header::Other("Retry-After".into(), "5".into()));
            send(layer, now, &key, r);
            return;
        }
        let contact = self.contact_for(&invite);
        let local_host = contact.host_with_port.host.to_string();
        let dialog = match UasDialog::from_invite(now, &invite, &new_tag(), contact, self.timers) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(%source, error = %e, "SIP: INVITE cannot start a dialog, 400");
                send(layer, now, &key, response_for(&invite, StatusCode::BadRequest));
                return;
            }
        };
        let leg = LegId(self.next_leg);
        self.next_leg += 1;
        let incoming = Incoming {
            leg,
            trunk,
            source,
            call_id: dialog.id().call_id.clone(),
            caller: invite
                .from_header()
                .ok()
                .and_then(|f| f.uri().ok())
                .map(|u| user_or_uri(&u))
                .unwrap_or_default(),
            callee: user_or_uri(&invite.uri),
            sdp: invite.body.clone(),
        };
        self.by_dialog.insert(dialog.id().clone(), leg);
        self.legs.insert(
            leg,
            Leg {
                dialog,
                invite_key: key,
                peer: source,
                local_host,
                current_key: None,
                reinvite: None,
            },
        );
        tracing::info!(%leg, trunk = %incoming.trunk, caller = %incoming.caller, callee = %incoming.callee, "SIP: incoming call");
        self.events.push_back(CallEvent::Incoming(Box::new(incoming)));
    }

    /// Carry out an engine command. Commands for legs that have ended are ignored: the engine
    /// learns of the end from [`CallEvent::Ended`], which may cross its command.
    pub fn handle_command(&mut self, now: Instant, command: CallCommand, layer: &mut TransactionLayer) {
        let id = command.leg();
        let Some(leg) = self.legs.get_mut(&id) else {
            tracing::debug!(%id, "SIP: command for an ended leg ignored");
            return;
        };
        let invite_key = leg.invite_key.clone();
        match command {
            CallCommand::Ringing { .. } => {
                if let Ok(r) = leg.dialog.provisional(StatusCode::Ringing) {
                    send(layer, now, &invite_key, r);
                }
            }
            CallCommand::Answer { sdp, .. } => match leg.dialog.accept(now, &sdp) {
                Ok(r) => send(layer, now, &invite_key, r),
                Err(e) => tracing::debug!(%id, error = %e, "SIP: cannot answer"),
            },
            CallCommand::Reject { status, .. } => {
                if let Ok(r) = leg.dialog.reject(StatusCode::from(status)) {
                    send(layer, now, &invite_key, r);
                    self.remove(id, EndReason::Local);
                }
            }
            CallCommand::AcceptReinvite { sdp, .. } => {
                if let Some((request, key)) = leg.reinvite.take() {
                    match leg.dialog.accept_reinvite(now, &request, &sdp) {
                        Ok(r) => send(layer, now, &key, r),
                        Err(e) => tracing::debug!(%id, error = %e, "SIP: cannot answer re-INVITE"),
                    }
                }
            }
            CallCommand::Hangup { .. } => self.hang_up(now, id, layer),
        }
        self.drain(now, id, layer);
    }

    fn hang_up(&mut self, now: Instant, id: LegId, layer: &mut TransactionLayer) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let invite_key = leg.invite_key.clone();
        if let Ok(r) = leg.dialog.reject(StatusCode::TemporarilyUnavailable) {
            send(layer, now, &invite_key, r);
            self.remove(id, EndReason::Local);
            return;
        }
        let via = via_for(&leg.local_host, self.local.port());
        let peer = leg.peer;
        match leg.dialog.bye(now, via) {
            Ok(bye) => {
                if let Err(e) = layer.send_request(now, bye, peer, false) {
                    tracing::debug!(%id, error = %e, "SIP: cannot send BYE");
                }
            }
            Err(e) => tracing::debug!(%id, error = %e, "SIP: cannot hang up"),
        }
    }

    fn route_to_dialog(
        &mut self,
        now: Instant,
        id: LegId,
        request: &Request,
        key: Option<TransactionKey>,
        layer: &mut TransactionLayer,
    ) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        leg.current_key = key.clone();
        if let Err(e) = leg.dialog.handle_request(now, request) {
            tracing::debug!(%id, error = %e, "SIP: in-dialog request refused");
            if let Some(key) = &key {
                if request.method != Method::Cancel {
                    send(layer, now, key, response_for(request, StatusCode::CallTransactionDoesNotExist));
                }
            }
        }
        self.drain(now, id, layer);
    }

    /// Sends what the dialog queued and turns its events into engine events.
    fn drain(&mut self, now: Instant, id: LegId, layer: &mut TransactionLayer) {
        loop {
            let Some(leg) = self.legs.get_mut(&id) else {
                return;
            };
            while let Some(t) = leg.dialog.poll_transmit() {
                match t {
                    DialogTransmit::Answer(r) => {
                        if let Some(key) = &leg.current_key {
                            send(layer, now, key, r);
                        }
                    }
                    DialogTransmit::InviteResponse(r) => send(layer, now, &leg.invite_key, r),
                    DialogTransmit::Retransmit(r) => layer.send_outside(leg.peer, SipMessage::Response(r)),
                }
            }
            let Some(event) = leg.dialog.poll_event() else {
                return;
            };
            match event {
                DialogEvent::Confirmed(ack) => {
                    let sdp = (!ack.body.is_empty()).then(|| ack.body.clone());
                    self.events.push_back(CallEvent::Confirmed { leg: id, sdp });
                }
                DialogEvent::AckTimeout => {
                    tracing::info!(%id, "SIP: no ACK for our 200, hanging up");
                    self.hang_up(now, id, layer);
                    self.remove(id, EndReason::AckTimeout);
                }
                DialogEvent::Terminated { by_remote } => {
                    let reason = if by_remote { EndReason::RemoteBye } else { EndReason::Local };
                    self.remove(id, reason);
                }
                DialogEvent::Cancelled => self.remove(id, EndReason::Cancelled),
                DialogEvent::ReInvite(request) => {
                    let key = leg.current_key.clone();
                    if let Some(key) = key {
                        leg.reinvite = Some((request.clone(), key));
                        self.events.push_back(CallEvent::ReInvite { leg: id, sdp: request.body.clone() });
                    }
                }
                DialogEvent::Info(request) => {
                    let response = leg.dialog.respond(&request, StatusCode::OK);
                    if let Some(key) = &leg.current_key {
                        send(layer, now, key, response);
                    }
                    if let Some(digit) = info_digit(&request) {
                        self.events.push_back(CallEvent::Dtmf { leg: id, digit });
                    }
                }
            }
        }
    }

    /// Forget a leg and tell the engine, once.
    fn remove(&mut self, id: LegId, reason: EndReason) {
        if let Some(leg) = self.legs.remove(&id) {
            self.by_dialog.remove(leg.dialog.id());
            self.events.push_back(CallEvent::Ended { leg: id, reason });
        }
    }

    fn trunk_of(&self, ip: IpAddr) -> Option<String> {
        let ip = canonical(ip);
        self.trunks
            .iter()
            .find(|t| t.addresses.iter().any(|a| canonical(*a) == ip))
            .map(|t| t.name.clone())
    }

    /// Our Contact for a call: our configured address, or — when we listen on an unspecified
    /// address — the host the INVITE was sent to.
    fn contact_for(&self, invite: &Request) -> Uri {
        let host = if self.local.ip().is_unspecified() {
            invite.uri.host_with_port.host.to_string()
        } else {
            self.local.ip().to_string()
        };
        let text = format!("sip:switchd@{}:{}", bracket(&host), self.local.port());
        Uri::try_from(text.as_str()).unwrap_or_else(|_| invite.uri.clone())
    }

}

/// A Via for a request of ours from `host:port`, with a fresh branch.
fn via_for(host: &str, port: u16) -> rsip::headers::Via {
    rsip::headers::Via::new(format!(
        "SIP/2.0/UDP {}:{port};branch=z9hG4bK{};rport",
        bracket(host),
        new_tag()
    ))
}

fn send(layer: &mut TransactionLayer, now: Instant, key: &TransactionKey, response: rsip::Response) {
    if let Err(e) = layer.send_response(now, key, response) {
        tracing::debug!(error = %e, "SIP: could not send response");
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4 (a dual-stack socket reports them so).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn user_or_uri(uri: &Uri) -> String {
    uri.auth
        .as_ref()
        .map(|a| a.user.clone())
        .unwrap_or_else(|| uri.host_with_port.to_string())
}

/// The digit of an INFO carrying `application/dtmf-relay` (`Signal=5`) or `application/dtmf`
/// (`5`).
pub fn info_digit(request: &Request) -> Option<char> {
    let content_type = request
        .headers
        .iter()
        .find_map(|h| match h {
            Header::ContentType(c) => Some(c.value().to_ascii_lowercase()),
            _ => None,
        })?;
    let body = std::str::from_utf8(&request.body).ok()?;
    let value = if content_type.starts_with("application/dtmf-relay") {
        body.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if content_type.starts_with("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let mut chars = value.chars();
    let digit = chars.next()?.to_ascii_uppercase();
    (chars.next().is_none() && matches!(digit, '0'..='9' | '*' | '#' | 'A'..='D')).then_some(digit)
}

/// A fresh random tag (falls back to a counter if the system RNG fails).
pub fn new_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    match ring::rand::generate::<[u8; 8]>(&ring::rand::SystemRandom::new()) {
        Ok(r) => hex::encode(r.expose()),
        Err(_) => format!("rx{:x}", COUNTER.fetch_add(1, Ordering::Relaxed)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "ua_tests.rs"]
mod tests;
