//! The UAC side of an outbound call (RFC 3261 §8.1, §9.1, §12.1.2, §13.2, §15, §22.2),
//! sans-IO.
//!
//! An [`UacCall`] builds our INVITE with an SDP offer, follows the responses its client
//! INVITE transaction reports (provisionals, the final, timer B), answers a 401/407 once with
//! digest credentials, ACKs the 2xx itself (§13.2.2.4: the transaction ends on a 2xx and the
//! ACK is the TU's), cancels (§9.1) or hangs up (§15.1.1) on request, and answers the peer's
//! in-dialog requests (BYE, re-INVITE, UPDATE, INFO) once the call is up.
//!
//! Extensions: the INVITE offers session timers (RFC 4028: `Supported: timer`,
//! `Session-Expires`, retried once with the peer's `Min-SE` after a 422) and follows the
//! refresher the 2xx names — refreshing with a re-INVITE of the same SDP at half the interval,
//! or hanging up ([`UacEvent::SessionExpired`]) when the peer stops refreshing; reliable
//! provisionals (RFC 3262: `Require: 100rel` with `RSeq`) are PRACKed.
//!
//! It lives above the transaction layer like [`super::dialog::UasDialog`] and knows no
//! transport: what it wants sent comes out of [`UacCall::poll_transmit`] with its destination
//! and the way it must go (new client transaction, straight on the wire, or through the
//! server transaction of the peer's request).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rsip::headers::{ContentType, Route, UntypedHeader};
use rsip::prelude::*;
use rsip::{Header, Headers, Method, Request, Response, SipMessage, StatusCode, Uri, Version};

use super::digest::{self, Challenge, Credentials};
use super::message::response_for;
use super::session_timer::{self, Refresher, SessionConfig, SessionTimer, TimerAction};
use super::ua::new_tag;
use super::udp::ALLOW;
use super::stream::Transport;
use super::Timers;

/// Why a call could not be built or a request not handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UacError {
    /// The INVITE needs an SDP offer: a late-offer INVITE would need an answer in the ACK,
    /// which only the engine could give, after the ACK is due.
    #[error("an outbound INVITE needs an SDP offer")]
    NoOffer,
    /// The TU asked for something the call's state does not allow.
    #[error("not allowed in call state {0:?}")]
    InvalidState(UacState),
    /// The message's Call-ID or tags are not this call's; route it elsewhere.
    #[error("message does not belong to this call")]
    NotThisCall,
    /// A header the call needs is absent or unparseable.
    #[error("missing or malformed {0} header")]
    BadHeader(&'static str),
}

/// Where an outbound call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UacState {
    /// The INVITE is sent, no response yet.
    Calling,
    /// A provisional response arrived (an early dialog exists if it had a To tag).
    Proceeding,
    /// We hung up before the final response: the CANCEL is sent (or waits for the first
    /// provisional, §9.1) and we wait for the INVITE's final response.
    Cancelling,
    /// A 2xx arrived and was ACKed: the dialog is up.
    Confirmed,
    /// Over. All input is ignored except 2xx retransmissions, which are ACKed again.
    Terminated,
}

/// What the call tells its TU ([`super::ua::Calls`]). Exactly one of `Failed`, `Cancelled`
/// or `Terminated` is reported, last.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UacEvent {
    /// The callee is alerted (180) or early media flows (183). Reported on the first
    /// provisional beyond 100 and again whenever a provisional brings a new SDP body.
    Ringing {
        /// The provisional's status (180, 183, …).
        status: u16,
        /// Its SDP answer, if it had one.
        early_sdp: Option<Vec<u8>>,
    },
    /// A 2xx arrived and its ACK is queued: the dialog is up.
    Answered {
        /// The SDP answer (empty if the peer broke offer/answer and sent none).
        sdp: Vec<u8>,
    },
    /// The call failed before being answered.
    Failed {
        /// The final status (3xx–6xx); 408 for timer B, 503 for a transport error.
        status: u16,
        /// For a 3xx: the Contact the peer redirected to (not followed).
        contact: Option<String>,
    },
    /// Our hang-up before the answer took effect: a final response arrived after our
    /// CANCEL (a 487, or a 2xx that we ACKed and ended with BYE), or 64·T1 passed (§9.1).
    Cancelled,
    /// The established call ended: by the peer's BYE (already answered 200) or by ours.
    Terminated {
        /// Whether the peer ended it.
        by_remote: bool,
    },
    /// The session timer ran out (no refresh from the peer in time, or ours got 408/481):
    /// our BYE is queued and the call is over.
    SessionExpired,
    /// The peer sent a re-INVITE, or an UPDATE with an SDP offer; answer it with
    /// [`UacCall::accept_reinvite`].
    ReInvite(Request),
    /// The peer sent INFO (e.g. DTMF); answer it 200 through its server transaction.
    Info(Request),
}

/// A message the call wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UacTransmit {
    /// A request (INVITE, CANCEL, BYE) for a new client transaction to `destination`.
    Request {
        /// The request.
        request: Request,
        /// The next hop.
        destination: SocketAddr,
    },
    /// Straight on the transport, no transaction: the ACK for a 2xx (§13.2.2.4) and the
    /// retransmissions of our 2xx to a re-INVITE (§13.3.1.4).
    Outside {
        /// The message.
        message: SipMessage,
        /// The next hop.
        destination: SocketAddr,
    },
    /// The answer to the request last passed to [`UacCall::handle_request`]; send it
    /// through that request's server transaction.
    Answer(Response),
}

/// Everything needed to place one call.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The Request-URI and To URI, e.g. `sip:13800138000@203.0.113.5:5060`.
    pub request_uri: Uri,
    /// Our identity (caller id) for From, e.g. `sip:4008123456@198.51.100.1`.
    pub from: Uri,
    /// Our Contact (where the peer sends in-dialog requests).
    pub local_contact: Uri,
    /// Host and port of our Via.
    pub via_host: String,
    /// Port of our Via.
    pub via_port: u16,
    /// What the call travels on (the Via says it; see [`UacCall`]'s next hop on streams).
    pub transport: Transport,
    /// Where the INVITE goes (the trunk or its outbound proxy); also the fallback next hop for
    /// in-dialog requests whose route or target is not an IP address (we resolve no names).
    pub destination: SocketAddr,
    /// Digest credentials for a 401/407, if the trunk has them.
    pub credentials: Option<Credentials>,
    /// Our SDP offer.
    pub sdp: Vec<u8>,
    /// The session interval to ask for and the least we accept.
    pub session: SessionConfig,
}

/// The peer's side of a dialog, from a 2xx (or a 1xx with a To tag).
#[derive(Debug, Clone)]
struct RemoteDialog {
    tag: String,
    target: Uri,
    /// Record-Route values of the response, reversed (§12.1.2).
    route_set: Vec<String>,
}

/// Our 2xx to a peer's re-INVITE, retransmitted until its ACK (§13.3.1.4).
#[derive(Debug)]
struct Pending2xx {
    response: Response,
    cseq: u32,
    destination: SocketAddr,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// The UAC side of one outbound call.
///
/// # Usage contract
///
/// * Create it with [`UacCall::new`], which queues the INVITE as
///   [`UacTransmit::Request`]; send it through a new client INVITE transaction and remember
///   that transaction's key as the call's current INVITE (a re-sent INVITE with credentials
///   replaces it).
/// * Feed it every response of its client transactions and every stray response with its
///   Call-ID (2xx retransmissions, forked 2xx) with [`handle_response`](Self::handle_response);
///   report timer B or a transport error of the *current* INVITE transaction with
///   [`handle_transaction_failure`](Self::handle_transaction_failure) (408 and 503).
/// * Once [`UacEvent::Answered`], feed it requests whose dialog id is
///   [`dialog_id`](Self::dialog_id) with [`handle_request`](Self::handle_request).
/// * After **every** `handle_*` call and every command ([`hangup`](Self::hangup),
///   [`accept_reinvite`](Self::accept_reinvite)), drain
///   [`poll_transmit`](Self::poll_transmit) until `None`, then
///   [`poll_event`](Self::poll_event) until `None`, then arm a timer for
///   [`poll_timeout`](Self::poll_timeout) and call [`handle_timeout`](Self::handle_timeout)
///   when the clock reaches it (early calls are harmless).
/// * After [`UacEvent::Cancelled`] reported by the 64·T1 give-up, the INVITE client
///   transaction may still sit in Proceeding: the TU should drop it.
/// * Nothing here reads a clock, logs credentials or panics on malformed input.
#[derive(Debug)]
pub struct UacCall {
    timers: Timers,
    state: UacState,
    call_id: String,
    local_tag: String,
    request_uri: Uri,
    /// Our From header value with our tag.
    from: String,
    /// The To header value of the INVITE (no tag).
    to: String,
    local_contact: Uri,
    via_host: String,
    via_port: u16,
    transport: Transport,
    destination: SocketAddr,
    credentials: Option<Credentials>,
    /// The SDP we offered (or last answered a re-INVITE with).
    local_sdp: Vec<u8>,
    /// The INVITE last sent (with credentials after a challenge).
    invite: Request,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    auth_tried: bool,
    cancel_sent: bool,
    cancel_deadline: Option<Instant>,
    /// The call ended by the 64·T1 give-up after CANCEL (the INVITE transaction is stuck).
    gave_up: bool,
    ringing_reported: bool,
    early_sdp: Option<Vec<u8>>,
    early: Option<RemoteDialog>,
    dialog: Option<RemoteDialog>,
    /// The ACK of the 2xx, re-sent for each retransmission of it, and where it went.
    ack: Option<(Request, SocketAddr)>,
    pending: Option<Pending2xx>,
    /// Our last 2xx to a re-INVITE, to answer retransmissions of that re-INVITE.
    last_2xx: Option<(u32, Response)>,
    transmits: VecDeque<UacTransmit>,
    events: VecDeque<UacEvent>,
    /// The `Session-Expires` our INVITE asks for (raised to the peer's `Min-SE` after a 422).
    session_expires: u32,
    /// The INVITE was re-sent after a 422 (only once).
    min_se_retried: bool,
    /// The RSeq of the last reliable provisional we PRACKed (RFC 3262 §4).
    last_rseq: Option<u32>,
    /// The session timer, once a 2xx named one.
    session: Option<SessionTimer>,
    /// The CSeq of our refresh re-INVITE while it awaits its final response.
    refresh_cseq: Option<u32>,
    /// The ACK of the 2xx to our last refresh, re-sent for its retransmissions.
    refresh_ack: Option<(u32, Request, SocketAddr)>,
}

impl UacCall {
    /// Build the call and queue its INVITE (CSeq 1, fresh Call-ID, From tag and branch).
    pub fn new(_now: Instant, outbound: Outbound, timers: Timers) -> Result<Self, UacError> {
        if outbound.sdp.is_empty() {
            return Err(UacError::NoOffer);
        }
        let local_tag = new_tag();
        let call_id = format!("{}@{}", new_tag(), outbound.via_host);
        let mut call = Self {
            timers,
            state: UacState::Calling,
            call_id,
            from: format!("<{}>;tag={local_tag}", outbound.from),
            to: format!("<{}>", outbound.request_uri),
            local_tag,
            request_uri: outbound.request_uri,
            local_contact: outbound.local_contact,
            via_host: outbound.via_host,
            via_port: outbound.via_port,
            transport: outbound.transport,
            destination: outbound.destination,
            credentials: outbound.credentials,
            local_sdp: outbound.sdp,
            invite: Request {
                method: Method::Invite,
                uri: Uri::default(),
                version: Version::V2,
                headers: Headers::default(),
                body: Vec::new(),
            },
            local_cseq: 1,
            remote_cseq: None,
            auth_tried: false,
            cancel_sent: false,
            cancel_deadline: None,
            gave_up: false,
            ringing_reported: false,
            early_sdp: None,
            early: None,
            dialog: None,
            ack: None,
            pending: None,
            last_2xx: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            session_expires: outbound.session.expires.max(outbound.session.min_se),
            min_se_retried: false,
            last_rseq: None,
            session: None,
            refresh_cseq: None,
            refresh_ack: None,
        };
        call.invite = call.build_invite(None);
        call.transmits.push_back(UacTransmit::Request {
            request: call.invite.clone(),
            destination: call.destination,
        });
        Ok(call)
    }

    /// The current state.
    pub fn state(&self) -> UacState {
        self.state
    }

    /// The SIP Call-ID (ours, fresh): stray responses are routed by it.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The INVITE last sent.
    pub fn invite(&self) -> &Request {
        &self.invite
    }

    /// The confirmed dialog's id (Call-ID, our From tag, the peer's To tag), once answered.
    pub fn dialog_id(&self) -> Option<super::dialog::DialogId> {
        self.dialog.as_ref().map(|d| super::dialog::DialogId {
            call_id: self.call_id.clone(),
            local_tag: self.local_tag.clone(),
            remote_tag: d.tag.clone(),
        })
    }

    /// True when the call ended because no final response followed our CANCEL within 64·T1:
    /// the INVITE client transaction is then still in Proceeding and should be dropped.
    pub fn cancel_gave_up(&self) -> bool {
        self.gave_up
    }

    /// The peer's tag from a provisional with a To tag (the early dialog), if any.
    pub fn early_tag(&self) -> Option<&str> {
        self.early.as_ref().map(|d| d.tag.as_str())
    }

    /// A response of one of our client transactions, or a stray one with our Call-ID.
    pub fn handle_response(&mut self, now: Instant, response: &Response) -> Result<(), UacError> {
        let cseq = response
            .cseq_header()
            .map_err(|_| UacError::BadHeader("CSeq"))?
            .typed()
            .map_err(|_| UacError::BadHeader("CSeq"))?;
        let call_id = response
            .call_id_header()
            .map_err(|_| UacError::BadHeader("Call-ID"))?;
        let from_tag = response
            .from_header()
            .map_err(|_| UacError::BadHeader("From"))?
            .tag()
            .map_err(|_| UacError::BadHeader("From"))?;
        if call_id.value().trim() != self.call_id
            || from_tag.as_ref().map(|t| t.value()) != Some(self.local_tag.as_str())
        {
            return Err(UacError::NotThisCall);
        }
        // Responses to CANCEL, BYE and INFO need nothing from us: the INVITE's final
        // response (or nothing, for BYE) is what counts.
        if cseq.method == Method::Invite && cseq.seq == self.local_invite_seq() {
            self.on_invite_response(now, response);
        } else if cseq.method == Method::Invite {
            self.on_refresh_response(now, cseq.seq, response);
        }
        Ok(())
    }

    /// A response to our refresh re-INVITE (or a retransmission of its 2xx): a 2xx is ACKed
    /// and restarts the timer as it says; 408 and 481 end the session (RFC 4028 §10); any
    /// other failure still proves the peer alive, and the timer starts over.
    fn on_refresh_response(&mut self, now: Instant, seq: u32, response: &Response) {
        let code = response.status_code.code();
        if code < 200 || self.state != UacState::Confirmed {
            return;
        }
        if let Some((s, ack, hop)) = &self.refresh_ack {
            if *s == seq && (200..300).contains(&code) && self.refresh_cseq != Some(seq) {
                self.transmits.push_back(UacTransmit::Outside { message: SipMessage::Request(ack.clone()), destination: *hop });
                return;
            }
        }
        if self.refresh_cseq != Some(seq) {
            return;
        }
        self.refresh_cseq = None;
        match code {
            200..=299 => {
                if let Some(dialog) = self.dialog.clone() {
                    let ack = self.dialog_request(&dialog, Method::Ack, seq);
                    let hop = self.next_hop(&dialog);
                    self.transmits.push_back(UacTransmit::Outside { message: SipMessage::Request(ack.clone()), destination: hop });
                    self.refresh_ack = Some((seq, ack, hop));
                }
                if let Some(timer) = self.session.as_mut() {
                    match session_timer::session_expires(&response.headers) {
                        // We are the UAC of our refresh.
                        Some(se) => {
                            let we_refresh = se.refresher.map_or(timer.we_refresh(), |r| r.is_us(true));
                            timer.renegotiate(now, se.delta, we_refresh)
                        }
                        None => timer.restart(now),
                    }
                }
            }
            408 | 481 => self.end_session(),
            _ => {
                if let Some(timer) = self.session.as_mut() {
                    timer.restart(now);
                }
            }
        }
    }

    /// The session is over for want of refreshes: BYE, and [`UacEvent::SessionExpired`].
    fn end_session(&mut self) {
        self.session = None;
        self.refresh_cseq = None;
        if self.state == UacState::Confirmed {
            self.send_bye();
            self.finish(UacEvent::SessionExpired);
        }
    }

    /// Our session refresh: a re-INVITE offering our SDP unchanged, as refresher.
    fn send_refresh(&mut self) {
        let (Some(dialog), Some(timer)) = (self.dialog.clone(), self.session.as_ref()) else {
            return;
        };
        if self.refresh_cseq.is_some() || self.pending.is_some() {
            return; // a refresh or the peer's re-INVITE is in progress; the timer runs on
        }
        let header = timer.header(true);
        self.local_cseq = self.local_cseq.max(self.local_invite_seq()).wrapping_add(1);
        let mut request = self.dialog_request(&dialog, Method::Invite, self.local_cseq);
        request.headers.retain(|h| !matches!(h, Header::ContentLength(_)));
        request.headers.push(Header::Contact(contact(&self.local_contact)));
        request.headers.push(Header::Supported(rsip::headers::Supported::new("timer")));
        request.headers.push(header);
        request.headers.push(Header::ContentType(ContentType::new("application/sdp")));
        request.headers.push(Header::ContentLength((self.local_sdp.len() as u32).into()));
        request.body = self.local_sdp.clone();
        self.refresh_cseq = Some(self.local_cseq);
        self.transmits.push_back(UacTransmit::Request { request, destination: self.next_hop(&dialog) });
    }

    /// The current INVITE's client transaction ended without a response: timer B (report
    /// 408) or a transport error (503), as §8.1.3.1 says to treat them.
    pub fn handle_transaction_failure(&mut self, _now: Instant, status: u16) {
        match self.state {
            UacState::Calling | UacState::Proceeding => self.fail(status, None),
            UacState::Cancelling => self.finish(UacEvent::Cancelled),
            UacState::Confirmed | UacState::Terminated => {}
        }
    }

    /// End the call from our side: CANCEL before the final response (deferred until a
    /// provisional arrives, §9.1), BYE after it. A no-op once cancelling or over.
    pub fn hangup(&mut self, now: Instant) {
        match self.state {
            UacState::Calling => self.state = UacState::Cancelling,
            UacState::Proceeding => {
                self.state = UacState::Cancelling;
                self.send_cancel(now);
            }
            UacState::Confirmed => self.bye(),
            UacState::Cancelling | UacState::Terminated => {}
        }
    }

    /// A request from the peer in our confirmed dialog (the caller routed it by
    /// [`Self::dialog_id`]). Answers are queued as [`UacTransmit::Answer`]; requests of other dialogs are refused
    /// with [`UacError::NotThisCall`] without changing anything.
    pub fn handle_request(&mut self, now: Instant, request: &Request) -> Result<(), UacError> {
        let Some(dialog) = &self.dialog else {
            return Err(UacError::InvalidState(self.state));
        };
        if self.state != UacState::Confirmed {
            return Err(UacError::InvalidState(self.state));
        }
        let call_id = request
            .call_id_header()
            .map_err(|_| UacError::BadHeader("Call-ID"))?;
        let from_tag = request
            .from_header()
            .map_err(|_| UacError::BadHeader("From"))?
            .tag()
            .map_err(|_| UacError::BadHeader("From"))?;
        let to_tag = request
            .to_header()
            .map_err(|_| UacError::BadHeader("To"))?
            .tag()
            .map_err(|_| UacError::BadHeader("To"))?;
        let seq = request
            .cseq_header()
            .map_err(|_| UacError::BadHeader("CSeq"))?
            .seq()
            .map_err(|_| UacError::BadHeader("CSeq"))?;
        if call_id.value().trim() != self.call_id
            || from_tag.as_ref().map(|t| t.value()) != Some(dialog.tag.as_str())
            || to_tag.as_ref().map(|t| t.value()) != Some(self.local_tag.as_str())
        {
            return Err(UacError::NotThisCall);
        }
        if request.method == Method::Ack {
            if self.pending.as_ref().is_some_and(|p| p.cseq == seq) {
                self.pending = None;
            }
            return Ok(());
        }
        // A retransmitted re-INVITE whose 2xx we already sent.
        if request.method == Method::Invite {
            if let Some((s, ok)) = &self.last_2xx {
                if *s == seq && Some(seq) == self.remote_cseq {
                    self.transmits.push_back(UacTransmit::Answer(ok.clone()));
                    return Ok(());
                }
            }
        }
        // §12.2.2: the peer's CSeq must grow (any first value is fine).
        if self.remote_cseq.is_some_and(|r| seq <= r) {
            self.answer(request, StatusCode::ServerInternalError);
            return Ok(());
        }
        self.remote_cseq = Some(seq);
        let offer = request.method == Method::Invite || (request.method == Method::Update && !request.body.is_empty());
        if offer && self.refresh_cseq.is_some() {
            // RFC 3261 §14.2, RFC 3311 §5.2: our refresh offer is out (glare).
            self.answer(request, StatusCode::RequestPending);
            return Ok(());
        }
        match request.method {
            Method::Bye => {
                self.answer(request, StatusCode::OK);
                self.pending = None;
                self.session = None;
                self.finish(UacEvent::Terminated { by_remote: true });
            }
            Method::Invite | Method::Update if offer => self.events.push_back(UacEvent::ReInvite(request.clone())),
            Method::Update => {
                // A bodiless UPDATE: the peer refreshes the session.
                let mut ok = response_for(request, StatusCode::OK);
                ok.headers.push(Header::Contact(contact(&self.local_contact)));
                self.refreshed(now, request, &mut ok);
                self.transmits.push_back(UacTransmit::Answer(ok));
            }
            Method::Info => self.events.push_back(UacEvent::Info(request.clone())),
            Method::Options => self.answer(request, StatusCode::OK),
            _ => self.answer(request, StatusCode::NotImplemented),
        }
        Ok(())
    }

    /// A 200 OK with `sdp` for a re-INVITE or UPDATE reported as [`UacEvent::ReInvite`] (an
    /// empty `sdp` answers with our current SDP, e.g. for a hold). The peer's Contact becomes
    /// the remote target (§12.2.2); a re-INVITE's 2xx is retransmitted to `source` until its
    /// ACK; the session timer counts from now. Send the returned response through the
    /// request's server transaction.
    pub fn accept_reinvite(
        &mut self,
        now: Instant,
        reinvite: &Request,
        sdp: &[u8],
        source: SocketAddr,
    ) -> Result<Response, UacError> {
        if self.state != UacState::Confirmed {
            return Err(UacError::InvalidState(self.state));
        }
        let seq = reinvite
            .cseq_header()
            .map_err(|_| UacError::BadHeader("CSeq"))?
            .seq()
            .map_err(|_| UacError::BadHeader("CSeq"))?;
        if let (Some(d), Ok(uri)) = (
            self.dialog.as_mut(),
            reinvite.contact_header().and_then(|c| c.uri()),
        ) {
            d.target = uri;
        }
        if !sdp.is_empty() {
            self.local_sdp = sdp.to_vec();
        }
        let mut response = response_for(reinvite, StatusCode::OK);
        response
            .headers
            .retain(|h| !matches!(h, Header::ContentLength(_)));
        response.headers.push(Header::Contact(contact(&self.local_contact)));
        response
            .headers
            .push(Header::ContentType(ContentType::new("application/sdp")));
        response
            .headers
            .push(Header::ContentLength((self.local_sdp.len() as u32).into()));
        response.body = self.local_sdp.clone();
        self.refreshed(now, reinvite, &mut response);
        if reinvite.method != Method::Invite {
            return Ok(response);
        }
        self.last_2xx = Some((seq, response.clone()));
        self.pending = Some(Pending2xx {
            response: response.clone(),
            cseq: seq,
            destination: source,
            next: now + self.timers.t1,
            interval: self.timers.t1,
            give_up: now + self.timers.t1_x64(),
        });
        Ok(response)
    }

    /// The peer refreshed the session with `request`, answered by `response` now: restart
    /// the timer with what the request asks (we are the UAS of this transaction, so
    /// `refresher=uac` is the peer), and say so in the response (`Require: timer` when the
    /// peer refreshes, RFC 4028 §9).
    fn refreshed(&mut self, now: Instant, request: &Request, response: &mut Response) {
        let Some(timer) = self.session.as_mut() else {
            return;
        };
        match session_timer::session_expires(&request.headers) {
            Some(se) => {
                let we_refresh = se.refresher.map_or(timer.we_refresh(), |r| r.is_us(false));
                timer.renegotiate(now, se.delta, we_refresh)
            }
            None => timer.restart(now),
        }
        response.headers.push(timer.header(false));
        if !timer.we_refresh() {
            response.headers.push(Header::Require(rsip::headers::Require::new("timer")));
        }
    }

    /// Fire the CANCEL give-up (64·T1, §9.1), our 2xx retransmission timers and the
    /// session timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == UacState::Cancelling && self.cancel_deadline.is_some_and(|d| d <= now) {
            self.cancel_deadline = None;
            self.gave_up = true;
            self.finish(UacEvent::Cancelled);
            return;
        }
        if self.state == UacState::Confirmed {
            match self.session.as_mut().and_then(|t| t.handle_timeout(now)) {
                Some(TimerAction::Refresh) => self.send_refresh(),
                Some(TimerAction::Expired) => self.end_session(),
                None => {}
            }
        }
        let t2 = self.timers.t2;
        if let Some(p) = self.pending.as_mut() {
            if now >= p.give_up {
                // No ACK for our 2xx: the dialog stays; the peer's problem (§13.3.1.4 lets
                // us end the session, but for a re-INVITE keeping the call is kinder).
                self.pending = None;
            } else if now >= p.next {
                self.transmits.push_back(UacTransmit::Outside {
                    message: SipMessage::Response(p.response.clone()),
                    destination: p.destination,
                });
                p.interval = (p.interval * 2).min(t2);
                p.next = now + p.interval;
            }
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<UacTransmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU, if any.
    pub fn poll_event(&mut self) -> Option<UacEvent> {
        self.events.pop_front()
    }

    /// The next deadline, or `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let cancel = self
            .cancel_deadline
            .filter(|_| self.state == UacState::Cancelling);
        let pending = self.pending.as_ref().map(|p| p.next.min(p.give_up));
        let session = self.session.as_ref().filter(|_| self.state == UacState::Confirmed).map(SessionTimer::poll_timeout);
        [cancel, pending, session].into_iter().flatten().min()
    }

    fn local_invite_seq(&self) -> u32 {
        self.invite
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .unwrap_or_default()
    }

    fn on_invite_response(&mut self, now: Instant, response: &Response) {
        let code = response.status_code.code();
        match (self.state, code) {
            (_, 0..=99 | 700..) => {}
            (UacState::Terminated | UacState::Confirmed, 200..=299) => self.stray_2xx(response),
            (UacState::Terminated | UacState::Confirmed, _) => {}
            (_, 100..=199) => self.on_provisional(now, response, code),
            (UacState::Cancelling, 200..=299) => {
                // Our CANCEL lost the race with the answer: confirm and end it (§9.1, §15).
                self.ack_and_bye(response);
                self.finish(UacEvent::Cancelled);
            }
            (UacState::Cancelling, _) => self.finish(UacEvent::Cancelled),
            (_, 200..=299) => self.on_2xx(now, response),
            (_, 401 | 407) if !self.auth_tried && self.credentials.is_some() => {
                self.retry_with_credentials(response, code)
            }
            (_, 422) if !self.min_se_retried => self.retry_with_min_se(response),
            (_, 300..=399) => {
                let contact = response.contact_header().ok().map(|c| c.value().to_owned());
                self.fail(code, contact);
            }
            (_, _) => self.fail(code, None),
        }
    }

    fn on_provisional(&mut self, now: Instant, response: &Response, code: u16) {
        if self.state == UacState::Calling {
            self.state = UacState::Proceeding;
        }
        if self.state == UacState::Cancelling {
            // §9.1: the CANCEL could not go before the first provisional; now it can.
            if !self.cancel_sent {
                self.send_cancel(now);
            }
            return;
        }
        if let Some(early) = remote_dialog(response, &self.request_uri) {
            self.early = Some(early);
        }
        if code == 100 {
            return;
        }
        if let Some(rseq) = reliable_rseq(response) {
            if self.last_rseq.is_some_and(|last| rseq <= last) {
                return; // RFC 3262 §4: a retransmission (our PRACK retransmits on its own)
            }
            self.last_rseq = Some(rseq);
            self.send_prack(rseq);
        }
        let sdp = (!response.body.is_empty()).then(|| response.body.clone());
        if !self.ringing_reported || (sdp.is_some() && sdp != self.early_sdp) {
            self.ringing_reported = true;
            if sdp.is_some() {
                self.early_sdp = sdp.clone();
            }
            self.events.push_back(UacEvent::Ringing {
                status: code,
                early_sdp: sdp,
            });
        }
    }

    /// PRACK for a reliable provisional (RFC 3262 §7.2): in the early dialog, with the next
    /// CSeq and `RAck: <RSeq> <INVITE CSeq> INVITE`.
    fn send_prack(&mut self, rseq: u32) {
        let Some(early) = self.early.clone() else {
            return;
        };
        self.local_cseq = self.local_cseq.max(self.local_invite_seq()).wrapping_add(1);
        let mut prack = self.dialog_request(&early, Method::PRack, self.local_cseq);
        prack.headers.retain(|h| !matches!(h, Header::ContentLength(_)));
        prack.headers.push(Header::Other("RAck".into(), format!("{rseq} {} INVITE", self.local_invite_seq())));
        prack.headers.push(Header::ContentLength(0.into()));
        self.transmits.push_back(UacTransmit::Request { request: prack, destination: self.next_hop(&early) });
    }

    fn on_2xx(&mut self, now: Instant, response: &Response) {
        // A 2xx without a To tag breaks §8.2.6.2; take it with an empty tag rather than
        // leave the callee talking to nobody.
        let dialog = remote_dialog(response, &self.request_uri).unwrap_or(RemoteDialog {
            tag: String::new(),
            target: self.request_uri.clone(),
            route_set: Vec::new(),
        });
        let ack = self.ack_for(&dialog);
        let hop = self.next_hop(&dialog);
        self.transmits.push_back(UacTransmit::Outside {
            message: SipMessage::Request(ack.clone()),
            destination: hop,
        });
        self.ack = Some((ack, hop));
        self.dialog = Some(dialog);
        self.state = UacState::Confirmed;
        // RFC 4028 §7.2: the 2xx's Session-Expires names the refresher (we are the UAC of
        // the INVITE; a 2xx naming none leaves it to us); without one the peer does not do
        // timers and neither do we.
        self.session = session_timer::session_expires(&response.headers)
            .map(|se| SessionTimer::new(now, se.delta, se.refresher.unwrap_or(Refresher::Uac).is_us(true)));
        self.events.push_back(UacEvent::Answered {
            sdp: response.body.clone(),
        });
    }

    /// A 2xx after the first one: a retransmission (same To tag) gets the same ACK again; a
    /// 2xx from another fork (another tag) is ACKed and ended with BYE (§13.2.2.4).
    fn stray_2xx(&mut self, response: &Response) {
        let tag = to_tag(response);
        if let (Some((ack, hop)), Some(d)) = (&self.ack, &self.dialog) {
            if tag.as_deref() == Some(d.tag.as_str()) {
                self.transmits.push_back(UacTransmit::Outside {
                    message: SipMessage::Request(ack.clone()),
                    destination: *hop,
                });
                return;
            }
        }
        self.ack_and_bye(response);
    }

    /// ACK a 2xx we do not want and end its dialog with BYE.
    fn ack_and_bye(&mut self, response: &Response) {
        let Some(dialog) = remote_dialog(response, &self.request_uri) else {
            return;
        };
        let hop = self.next_hop(&dialog);
        let ack = self.ack_for(&dialog);
        self.transmits.push_back(UacTransmit::Outside {
            message: SipMessage::Request(ack.clone()),
            destination: hop,
        });
        // Remember the ACK so that retransmissions of this 2xx are ACKed again too.
        if self.dialog.is_none() {
            self.ack = Some((ack, hop));
            self.dialog = Some(dialog.clone());
        }
        let seq = self.local_cseq.max(self.local_invite_seq()).wrapping_add(1);
        let bye = self.dialog_request(&dialog, Method::Bye, seq);
        self.transmits.push_back(UacTransmit::Request {
            request: bye,
            destination: hop,
        });
    }

    fn retry_with_credentials(&mut self, response: &Response, code: u16) {
        self.auth_tried = true;
        let (Some(credentials), Ok(challenge)) =
            (&self.credentials, Challenge::from_response(response))
        else {
            self.fail(code, None);
            return;
        };
        let header = digest::authorization(
            &challenge,
            credentials,
            "INVITE",
            &self.request_uri.to_string(),
            &digest::new_cnonce(),
            1,
        );
        // §22.2: same Call-ID, From tag and To; a new CSeq and branch (a new transaction).
        self.local_cseq = self.local_cseq.wrapping_add(1);
        self.invite = self.build_invite(Some(header));
        self.state = UacState::Calling;
        self.transmits.push_back(UacTransmit::Request {
            request: self.invite.clone(),
            destination: self.destination,
        });
    }

    /// RFC 4028 §7.3: after a 422 the INVITE goes again (new CSeq and branch, same
    /// credentials) asking for at least the peer's `Min-SE`.
    fn retry_with_min_se(&mut self, response: &Response) {
        self.min_se_retried = true;
        let Some(min_se) = session_timer::min_se(&response.headers) else {
            self.fail(422, None);
            return;
        };
        self.session_expires = self.session_expires.max(min_se);
        let authorization = self
            .invite
            .headers
            .iter()
            .find(|h| matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)))
            .cloned();
        self.local_cseq = self.local_cseq.max(self.local_invite_seq()).wrapping_add(1);
        self.invite = self.build_invite(authorization);
        self.state = UacState::Calling;
        self.transmits.push_back(UacTransmit::Request { request: self.invite.clone(), destination: self.destination });
    }

    fn fail(&mut self, status: u16, contact: Option<String>) {
        self.finish(UacEvent::Failed { status, contact });
    }

    /// Enter Terminated with the call's last event.
    fn finish(&mut self, event: UacEvent) {
        if self.state != UacState::Terminated {
            self.state = UacState::Terminated;
            self.cancel_deadline = None;
            self.events.push_back(event);
        }
    }

    /// §9.1: the CANCEL copies the INVITE's Request-URI, top Via (same branch), Route,
    /// From, To, Call-ID and CSeq number; it goes where the INVITE went.
    fn send_cancel(&mut self, now: Instant) {
        let mut headers = Headers::default();
        if let Ok(via) = self.invite.via_header() {
            headers.push(Header::Via(via.clone()));
        }
        for h in self.invite.headers.iter() {
            if let Header::Route(_) = h {
                headers.push(h.clone());
            }
        }
        headers.push(Header::MaxForwards(70.into()));
        headers.push(Header::From(rsip::headers::From::new(self.from.clone())));
        headers.push(Header::To(rsip::headers::To::new(self.to.clone())));
        headers.push(Header::CallId(self.call_id.clone().into()));
        headers.push(Header::CSeq(
            rsip::typed::CSeq {
                seq: self.local_invite_seq(),
                method: Method::Cancel,
            }
            .into(),
        ));
        headers.push(Header::ContentLength(0.into()));
        self.transmits.push_back(UacTransmit::Request {
            request: Request {
                method: Method::Cancel,
                uri: self.invite.uri.clone(),
                version: Version::V2,
                headers,
                body: Vec::new(),
            },
            destination: self.destination,
        });
        self.cancel_sent = true;
        self.cancel_deadline = Some(now + self.timers.t1_x64());
    }

    /// Our BYE in the confirmed dialog (§15.1.1).
    fn bye(&mut self) {
        self.send_bye();
        self.finish(UacEvent::Terminated { by_remote: false });
    }

    fn send_bye(&mut self) {
        let Some(dialog) = self.dialog.clone() else {
            return;
        };
        self.local_cseq = self.local_cseq.max(self.local_invite_seq()).wrapping_add(1);
        let bye = self.dialog_request(&dialog, Method::Bye, self.local_cseq);
        self.transmits.push_back(UacTransmit::Request {
            request: bye,
            destination: self.next_hop(&dialog),
        });
        self.pending = None;
        self.session = None;
    }

    fn answer(&mut self, request: &Request, status: StatusCode) {
        self.transmits
            .push_back(UacTransmit::Answer(response_for(request, status)));
    }

    fn via(&self) -> rsip::headers::Via {
        rsip::headers::Via::new(format!(
            "SIP/2.0/{} {}:{};branch=z9hG4bK{};rport",
            self.transport,
            bracket(&self.via_host),
            self.via_port,
            new_tag()
        ))
    }

    /// The INVITE with the current CSeq, a fresh branch and optional credentials.
    fn build_invite(&self, authorization: Option<Header>) -> Request {
        let mut headers = Headers::default();
        headers.push(Header::Via(self.via()));
        headers.push(Header::MaxForwards(70.into()));
        headers.push(Header::From(rsip::headers::From::new(self.from.clone())));
        headers.push(Header::To(rsip::headers::To::new(self.to.clone())));
        headers.push(Header::CallId(self.call_id.clone().into()));
        headers.push(Header::CSeq(
            rsip::typed::CSeq {
                seq: self.local_cseq,
                method: Method::Invite,
            }
            .into(),
        ));
        headers.push(Header::Contact(contact(&self.local_contact)));
        headers.push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
        headers.push(Header::Supported(rsip::headers::Supported::new(super::dialog::SUPPORTED)));
        headers.push(session_timer::session_expires_header_bare(self.session_expires));
        if let Some(h) = authorization {
            headers.push(h);
        }
        headers.push(Header::ContentType(ContentType::new("application/sdp")));
        headers.push(Header::ContentLength((self.local_sdp.len() as u32).into()));
        Request {
            method: Method::Invite,
            uri: self.request_uri.clone(),
            version: Version::V2,
            headers,
            body: self.local_sdp.clone(),
        }
    }

    /// §13.2.2.4: the ACK of a 2xx is an in-dialog request with the INVITE's CSeq number and
    /// the INVITE's credentials.
    fn ack_for(&self, dialog: &RemoteDialog) -> Request {
        let mut ack = self.dialog_request(dialog, Method::Ack, self.local_invite_seq());
        let credentials: Vec<Header> = self
            .invite
            .headers
            .iter()
            .filter(|h| matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)))
            .cloned()
            .collect();
        if !credentials.is_empty() {
            ack.headers
                .retain(|h| !matches!(h, Header::ContentLength(_)));
            ack.headers.extend(credentials);
            ack.headers.push(Header::ContentLength(0.into()));
        }
        ack
    }

    /// A request in `dialog` (§12.2.1.1): Request-URI = remote target, Route = route set,
    /// our From with our tag, To with the peer's tag.
    fn dialog_request(&self, dialog: &RemoteDialog, method: Method, seq: u32) -> Request {
        let mut headers = Headers::default();
        headers.push(Header::Via(self.via()));
        headers.push(Header::MaxForwards(70.into()));
        for route in &dialog.route_set {
            headers.push(Header::Route(Route::new(route.clone())));
        }
        headers.push(Header::From(rsip::headers::From::new(self.from.clone())));
        let to = if dialog.tag.is_empty() {
            self.to.clone()
        } else {
            format!("{};tag={}", self.to, dialog.tag)
        };
        headers.push(Header::To(rsip::headers::To::new(to)));
        headers.push(Header::CallId(self.call_id.clone().into()));
        headers.push(Header::CSeq(rsip::typed::CSeq { seq, method }.into()));
        headers.push(Header::ContentLength(0.into()));
        Request {
            method,
            uri: dialog.target.clone(),
            version: Version::V2,
            headers,
            body: Vec::new(),
        }
    }

    /// Where an in-dialog request goes: the first route, else the remote target — each only
    /// when its host is an IP address (sans-IO: no DNS here); else the INVITE's destination.
    /// On a stream, always the INVITE's destination: the connection we opened to the
    /// trunk is reused for the whole dialog (as RFC 5923 has it), because carriers (an SBC
    /// in front of their network) expect it there, and a Contact we would have to open a new
    /// connection to may not even accept one.
    fn next_hop(&self, dialog: &RemoteDialog) -> SocketAddr {
        if self.transport.is_reliable() {
            return self.destination;
        }
        let first = match dialog.route_set.first() {
            Some(route) => uri_in(route),
            None => Some(dialog.target.clone()),
        };
        first
            .as_ref()
            .and_then(socket_addr_of)
            .unwrap_or(self.destination)
    }
}

/// The peer's dialog state from a response with a To tag: tag, Contact (else the
/// Request-URI) and the reversed Record-Route set (§12.1.2).
fn remote_dialog(response: &Response, request_uri: &Uri) -> Option<RemoteDialog> {
    let tag = to_tag(response)?;
    let target = response
        .contact_header()
        .ok()
        .and_then(|c| c.uri().ok())
        .unwrap_or_else(|| request_uri.clone());
    let mut route_set: Vec<String> = response
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::RecordRoute(rr) => Some(split_list(rr.value())),
            _ => None,
        })
        .flatten()
        .collect();
    route_set.reverse();
    Some(RemoteDialog {
        tag,
        target,
        route_set,
    })
}

/// The RSeq of a reliable provisional (`Require: 100rel` and `RSeq`, RFC 3262 §7.1).
fn reliable_rseq(response: &Response) -> Option<u32> {
    if !session_timer::has_option_tag(&response.headers, "Require", "100rel") {
        return None;
    }
    response.headers.iter().find_map(|h| match h {
        Header::Other(name, value) if name.eq_ignore_ascii_case("RSeq") => value.trim().parse().ok(),
        _ => None,
    })
}

fn to_tag(response: &Response) -> Option<String> {
    Some(response.to_header().ok()?.tag().ok()??.value().to_owned())
}

/// Split a header value holding a comma-separated list of name-addrs (Record-Route may fold
/// several into one header); commas inside `<…>` or quotes do not split.
fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let (mut in_angle, mut in_quote) = (false, false);
    for c in value.chars() {
        match c {
            '"' if !in_angle => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_angle && !in_quote => {
                let item = current.trim();
                if !item.is_empty() {
                    out.push(item.to_owned());
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    let item = current.trim();
    if !item.is_empty() {
        out.push(item.to_owned());
    }
    out
}

/// The URI inside a name-addr (`"x" <sip:a;lr>;p=1` → `sip:a;lr`) or a bare URI.
fn uri_in(name_addr: &str) -> Option<Uri> {
    let inner = match (name_addr.find('<'), name_addr.find('>')) {
        (Some(a), Some(b)) if a < b => &name_addr[a + 1..b],
        _ => name_addr.trim(),
    };
    Uri::try_from(inner).ok()
}

/// The socket address of a URI whose host is an IP address (port 5060 when absent).
fn socket_addr_of(uri: &Uri) -> Option<SocketAddr> {
    let ip = match &uri.host_with_port.host {
        rsip::Host::IpAddr(ip) => *ip,
        rsip::Host::Domain(d) => d
            .to_string()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()?,
    };
    let port = uri.host_with_port.port.map(|p| *p.value()).unwrap_or(5060);
    Some(SocketAddr::new(ip, port))
}

fn contact(uri: &Uri) -> rsip::headers::Contact {
    rsip::headers::Contact::new(format!("<{uri}>"))
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "uac_tests.rs"]
mod tests;
