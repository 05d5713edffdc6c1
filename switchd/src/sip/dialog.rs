//! The UAS side of a SIP dialog (RFC 3261 §12, §13.3, §14.2, §15), sans-IO.
//!
//! A [`UasDialog`] is created from a received INVITE and lives above the transaction layer:
//! it builds our responses to that INVITE, retransmits the 2xx until the ACK (§13.3.1.4 — the
//! INVITE server transaction ends on a 2xx, see `docs/decisions/0005`), checks and answers
//! in-dialog requests from the peer (§12.2.2), and builds our own requests (BYE, INFO,
//! re-INVITE) with the dialog's Call-ID, tags, CSeq and route set (§12.2.1.1).
//!
//! Extensions: reliable provisionals and PRACK (RFC 3262) when the caller requires `100rel`,
//! UPDATE from the peer (RFC 3311), and session timers (RFC 4028) as negotiated by the TU
//! ([`UasDialog::set_session`]): the dialog says when to refresh
//! ([`DialogEvent::RefreshDue`], answered by [`UasDialog::refresh`]) or that the session
//! expired ([`DialogEvent::SessionExpired`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rsip::headers::{ContentType, Route, UntypedHeader};
use rsip::param::Tag;
use rsip::prelude::*;
use rsip::{Header, Headers, Method, Request, Response, StatusCode, Uri, Version};

use super::message::response_for;
use super::session_timer::{self, SessionConfig, SessionTimer, TimerAction, UasChoice};
use super::Timers;

/// The extensions we do (`Supported` of our 1xx/2xx to INVITEs).
pub const SUPPORTED: &str = "100rel, timer";

/// Identifies a dialog (§12): Call-ID and both tags, as seen from our side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID header value.
    pub call_id: String,
    /// Our tag (the To tag of requests the peer sends us).
    pub local_tag: String,
    /// The peer's tag (the From tag of requests the peer sends us).
    pub remote_tag: String,
}

impl DialogId {
    /// The id of the UAS dialog an incoming in-dialog request belongs to (local tag = To tag,
    /// remote tag = From tag), or `None` when the request lacks either tag or the Call-ID.
    /// CANCEL carries no To tag: route it by its INVITE's transaction (§9.2) instead.
    pub fn for_incoming(request: &Request) -> Option<Self> {
        let call_id = request.call_id_header().ok()?.value().to_owned();
        let local_tag = request.to_header().ok()?.tag().ok()??.value().to_owned();
        let remote_tag = request.from_header().ok()?.tag().ok()??.value().to_owned();
        Some(Self {
            call_id,
            local_tag,
            remote_tag,
        })
    }
}

/// Why a dialog could not be created or a request not handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header the dialog needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header is present but could not be parsed.
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    /// The request that should create the dialog is not an INVITE (or its CSeq method is not).
    #[error("method {0} does not create a dialog")]
    NotInvite(String),
    /// The From header has no tag (an RFC 2543 peer); we require one to identify the dialog.
    #[error("From header without a tag")]
    MissingFromTag,
    /// The INVITE already carries a To tag: it belongs to an existing dialog.
    #[error("INVITE already has a To tag")]
    ToTagPresent,
    /// The request's Call-ID or tags are not this dialog's; route it elsewhere.
    #[error("request does not belong to this dialog")]
    NotThisDialog,
    /// The TU asked for something the dialog's state does not allow (e.g. `accept` twice).
    #[error("not allowed in dialog state {0:?}")]
    InvalidState(DialogState),
    /// A status code of the wrong class for the call (e.g. `provisional(200)`).
    #[error("status code {0} not allowed here")]
    BadStatus(u16),
    /// A reliable provisional is not PRACKed yet: RFC 3262 §3 allows no second one (and the
    /// 2xx waits for the PRACK).
    #[error("a reliable provisional response awaits its PRACK")]
    AwaitingPrack,
}

/// Where a dialog is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// The INVITE is received, no final response sent yet (provisionals may have been).
    Early,
    /// We sent a 2xx and retransmit it until the ACK (§13.3.1.4).
    Accepted,
    /// The ACK arrived (or 64·T1 passed without it, see [`DialogEvent::AckTimeout`]).
    Confirmed,
    /// Over: rejected, cancelled or ended by BYE. All input is ignored.
    Terminated,
}

/// What the dialog tells its TU (the engine's call leg).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialogEvent {
    /// The ACK for our 2xx (to the INVITE or to a re-INVITE) arrived.
    Confirmed(Request),
    /// 64·T1 passed without an ACK for our 2xx. The dialog counts as confirmed, but the TU
    /// should end the session with [`UasDialog::bye`] (§13.3.1.4).
    AckTimeout,
    /// The dialog ended. `by_remote` is true for the peer's BYE (already answered 200) or a
    /// CANCEL / BYE before our final response; false for our own [`UasDialog::bye`].
    Terminated {
        /// Whether the peer ended it.
        by_remote: bool,
    },
    /// The peer sent a re-INVITE (hold, resume, codec change), or an UPDATE with an SDP offer
    /// (RFC 3311). Answer it with [`UasDialog::accept_reinvite`] or [`UasDialog::respond`]
    /// through its server transaction.
    ReInvite(Request),
    /// The peer sent INFO (e.g. DTMF as `application/dtmf-relay`); answer it with
    /// [`UasDialog::respond`] (200) through its server transaction.
    Info(Request),
    /// A CANCEL arrived before our final response; the 487 for the INVITE is queued as
    /// [`DialogTransmit::InviteResponse`] and the dialog is terminated.
    Cancelled,
    /// We are the session refresher and half the interval has passed: send
    /// [`UasDialog::refresh`] through a client INVITE transaction and pass its final response
    /// to [`UasDialog::handle_response`].
    RefreshDue,
    /// The session was not refreshed in time (RFC 4028 §10), or our refresh got 408/481 or
    /// no answer: end the call with [`UasDialog::bye`].
    SessionExpired,
    /// A reliable provisional went unacknowledged for 64·T1 (RFC 3262 §3): the INVITE's 500
    /// is queued as [`DialogTransmit::InviteResponse`] and the dialog is terminated.
    PrackTimeout,
}

/// A response the dialog wants sent, and the way it must go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialogTransmit {
    /// The answer to the request last passed to [`UasDialog::handle_request`]; send it through
    /// that request's server transaction.
    Answer(Response),
    /// A final response to the dialog-creating INVITE (the 487 after CANCEL or BYE); send it
    /// through the INVITE's server transaction.
    InviteResponse(Response),
    /// A 2xx retransmission (§13.3.1.4): send it straight on the transport to the peer, no
    /// transaction (the INVITE server transaction ended on the first 2xx).
    Retransmit(Response),
    /// The ACK for the 2xx to our refresh re-INVITE (§13.2.2.4): straight on the transport
    /// to the peer, no transaction.
    Ack(Request),
}

/// A 2xx being retransmitted until its ACK.
#[derive(Debug)]
struct Pending2xx {
    response: Response,
    cseq: u32,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// A reliable provisional response retransmitted until its PRACK (RFC 3262 §3).
#[derive(Debug)]
struct PendingRel {
    response: Response,
    rseq: u32,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// The UAS side of one dialog.
///
/// # Usage contract
///
/// * Create it with [`UasDialog::from_invite`] when the transaction layer reports a new
///   INVITE without a To tag. Answer the INVITE with [`provisional`](Self::provisional),
///   [`accept`](Self::accept) or [`reject`](Self::reject) and send the returned response
///   through the INVITE's server transaction.
/// * Feed it every request whose [`DialogId::for_incoming`] equals [`UasDialog::id`] (new
///   server transactions, retransmitted INVITEs after the 2xx, and the layer's stray ACKs),
///   plus a CANCEL matched to the INVITE's transaction, with
///   [`handle_request`](Self::handle_request).
/// * After **every** `handle_*` call and every builder that takes `now` (`accept`, `bye`,
///   `accept_reinvite`), drain [`poll_transmit`](Self::poll_transmit) until `None`, then
///   [`poll_event`](Self::poll_event) until `None`, then arm a timer for
///   [`poll_timeout`](Self::poll_timeout) and call [`handle_timeout`](Self::handle_timeout)
///   when the clock reaches it (early calls are harmless).
/// * A session refresh ([`DialogEvent::RefreshDue`]) is the TU's to send: [`Self::refresh`]
///   through a client INVITE transaction, its final response (and stray 2xx retransmissions)
///   back through [`Self::handle_response`], timer B through [`Self::refresh_failed`].
/// * Nothing here reads a clock or panics on malformed input.
#[derive(Debug)]
pub struct UasDialog {
    id: DialogId,
    timers: Timers,
    state: DialogState,
    invite: Request,
    /// The INVITE's To with our tag: the To of our responses and the From of our requests.
    local_to: rsip::headers::To,
    local_contact: Uri,
    remote_target: Uri,
    /// Record-Route values of the INVITE, in order: our route set (§12.1.1).
    route_set: Vec<String>,
    remote_cseq: u32,
    local_cseq: u32,
    /// The 2xx last sent for the INVITE or a re-INVITE, kept to absorb INVITE retransmissions.
    last_2xx: Option<(u32, Response)>,
    pending: Option<Pending2xx>,
    transmits: VecDeque<DialogTransmit>,
    events: VecDeque<DialogEvent>,
    /// The caller requires `100rel`: our provisionals are reliable.
    reliable_provisionals: bool,
    /// The RSeq of our last reliable provisional.
    rseq: u32,
    /// The reliable provisional awaiting its PRACK.
    pending_rel: Option<PendingRel>,
    /// Our 2xx to the INVITE, held until the PRACK (RFC 3262 §3).
    held_2xx: Option<Response>,
    /// Our session-timer limits, for the peer's refreshes.
    session_config: SessionConfig,
    /// What the INVITE negotiated; the timer starts with our 2xx.
    session_plan: UasChoice,
    session: Option<SessionTimer>,
    /// The CSeq of our refresh re-INVITE while it awaits its final response (our offer is
    /// outstanding: a peer offer then gets 491).
    refresh_cseq: Option<u32>,
    /// The ACK of the 2xx to our last refresh, re-sent for its retransmissions.
    refresh_ack: Option<(u32, Request)>,
    /// The SDP of our last 2xx: a refresh offers it again, unchanged.
    local_sdp: Vec<u8>,
    /// The peer's re-INVITE or UPDATE offer is with the TU, unanswered (another UPDATE
    /// offer then gets 500 with Retry-After, RFC 3311 §5.2).
    offer_pending: bool,
}

fn bad(name: &'static str) -> impl Fn(rsip::Error) -> DialogError {
    move |_| DialogError::BadHeader(name)
}

impl UasDialog {
    /// Validate an incoming INVITE and create the (early) dialog for it. `local_tag` becomes
    /// the To tag of all our responses; `local_contact` our Contact (the peer's remote
    /// target for us). `now` is accepted for symmetry; no timer runs until [`Self::accept`].
    pub fn from_invite(
        _now: Instant,
        invite: &Request,
        local_tag: &str,
        local_contact: Uri,
        timers: Timers,
    ) -> Result<Self, DialogError> {
        if invite.method != Method::Invite {
            return Err(DialogError::NotInvite(invite.method.to_string()));
        }
        invite
            .via_header()
            .map_err(|_| DialogError::MissingHeader("Via"))?;
        let call_id = invite
            .call_id_header()
            .map_err(|_| DialogError::MissingHeader("Call-ID"))?
            .value()
            .trim()
            .to_owned();
        if call_id.is_empty() {
            return Err(DialogError::BadHeader("Call-ID"));
        }
        let cseq = invite
            .cseq_header()
            .map_err(|_| DialogError::MissingHeader("CSeq"))?;
        let seq = cseq.seq().map_err(bad("CSeq"))?;
        let method = cseq.method().map_err(bad("CSeq"))?;
        if method != Method::Invite {
            return Err(DialogError::NotInvite(method.to_string()));
        }
        let from = invite
            .from_header()
            .map_err(|_| DialogError::MissingHeader("From"))?;
        let remote_tag = from
            .tag()
            .map_err(bad("From"))?
            .ok_or(DialogError::MissingFromTag)?
            .value()
            .to_owned();
        if remote_tag.is_empty() {
            return Err(DialogError::MissingFromTag);
        }
        let to = invite
            .to_header()
            .map_err(|_| DialogError::MissingHeader("To"))?;
        if to.tag().map_err(bad("To"))?.is_some() {
            return Err(DialogError::ToTagPresent);
        }
        let local_to = to
            .clone()
            .with_tag(Tag::new(local_tag))
            .map_err(bad("To"))?;
        let remote_target = invite
            .contact_header()
            .map_err(|_| DialogError::MissingHeader("Contact"))?
            .uri()
            .map_err(bad("Contact"))?;
        let route_set = invite
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::RecordRoute(rr) => Some(rr.value().to_owned()),
                _ => None,
            })
            .collect();
        Ok(Self {
            id: DialogId {
                call_id,
                local_tag: local_tag.to_owned(),
                remote_tag,
            },
            timers,
            state: DialogState::Early,
            invite: invite.clone(),
            local_to,
            local_contact,
            remote_target,
            route_set,
            remote_cseq: seq,
            local_cseq: 0,
            last_2xx: None,
            pending: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            reliable_provisionals: session_timer::has_option_tag(&invite.headers, "Require", "100rel"),
            rseq: 0,
            pending_rel: None,
            held_2xx: None,
            session_config: SessionConfig::default(),
            session_plan: UasChoice::None,
            session: None,
            refresh_cseq: None,
            refresh_ack: None,
            local_sdp: Vec::new(),
            offer_pending: false,
        })
    }

    /// The session timer the INVITE negotiated ([`session_timer::uas_choice`] with `config`;
    /// the TU answers `TooSmall` with 422 before creating the dialog) and the limits for the
    /// peer's refreshes. The timer starts when our 2xx goes out.
    pub fn set_session(&mut self, plan: UasChoice, config: SessionConfig) {
        self.session_config = config;
        self.session_plan = plan;
    }

    /// The running session timer's interval, and whether we refresh, once answered.
    pub fn session(&self) -> Option<(u32, bool)> {
        self.session.as_ref().map(|s| (s.delta(), s.we_refresh()))
    }

    /// This dialog's id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// The current state.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// The peer's current target URI (its Contact, refreshed by re-INVITE).
    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    /// A 101–199 response to the INVITE (180 Ringing, 183 Session Progress) with our To tag,
    /// Contact and the Record-Route set. Send it through the INVITE's server transaction.
    /// When the caller requires `100rel` it is reliable (RFC 3262 §3: `Require: 100rel`,
    /// `RSeq`): from `now` the dialog retransmits it ([`DialogTransmit::InviteResponse`]) at
    /// T1, 2·T1, 4·T1… until the PRACK, and gives up after 64·T1
    /// ([`DialogEvent::PrackTimeout`]); a second one before the PRACK is refused.
    pub fn provisional(&mut self, now: Instant, status: StatusCode) -> Result<Response, DialogError> {
        self.require(DialogState::Early)?;
        let code = status.code();
        if !(101..200).contains(&code) {
            return Err(DialogError::BadStatus(code));
        }
        let mut response = self.invite_response(status, true);
        if self.reliable_provisionals {
            if self.pending_rel.is_some() || self.held_2xx.is_some() {
                return Err(DialogError::AwaitingPrack);
            }
            self.rseq += 1;
            response.headers.push(Header::Require(rsip::headers::Require::new("100rel")));
            response.headers.push(Header::Other("RSeq".into(), self.rseq.to_string()));
            self.pending_rel = Some(PendingRel {
                response: response.clone(),
                rseq: self.rseq,
                next: now + self.timers.t1,
                interval: self.timers.t1,
                give_up: now + self.timers.t1_x64(),
            });
        }
        Ok(response)
    }

    /// The 200 OK to the INVITE with `sdp` as an `application/sdp` body, our Contact and To
    /// tag, and the negotiated `Session-Expires`. Send it through the INVITE's server
    /// transaction (which ends on it); from `now` the dialog retransmits it
    /// ([`DialogTransmit::Retransmit`]) until the ACK or 64·T1, and the session timer runs.
    ///
    /// `Ok(None)`: a reliable provisional awaits its PRACK; the 200 is held and comes out of
    /// [`Self::poll_transmit`] as [`DialogTransmit::InviteResponse`] once the PRACK arrives.
    pub fn accept(&mut self, now: Instant, sdp: &[u8]) -> Result<Option<Response>, DialogError> {
        self.require(DialogState::Early)?;
        if self.held_2xx.is_some() {
            return Err(DialogError::AwaitingPrack);
        }
        let mut response = self.invite_response(StatusCode::OK, true);
        if let UasChoice::Timer { delta, refresher, require } = self.session_plan {
            add_session_headers(&mut response, &session_timer::session_expires_header(delta, refresher), require);
        }
        set_body(&mut response, "application/sdp", sdp);
        self.local_sdp = sdp.to_vec();
        if self.pending_rel.is_some() {
            self.held_2xx = Some(response);
            return Ok(None);
        }
        self.sent_2xx(now, response.clone());
        Ok(Some(response))
    }

    /// Our 2xx to the INVITE went out at `now`: retransmit it until the ACK, start the
    /// session timer.
    fn sent_2xx(&mut self, now: Instant, response: Response) {
        self.start_2xx(now, self.invite_seq(), response);
        self.state = DialogState::Accepted;
        if let UasChoice::Timer { delta, refresher, .. } = self.session_plan {
            // We are the UAS of the INVITE.
            self.session = Some(SessionTimer::new(now, delta, refresher.is_us(false)));
        }
    }

    /// A 300–699 final response to the INVITE (486 Busy Here, 480, 603…). The dialog ends
    /// (no event: the TU chose this). Send it through the INVITE's server transaction.
    pub fn reject(&mut self, status: StatusCode) -> Result<Response, DialogError> {
        self.require(DialogState::Early)?;
        let code = status.code();
        if !(300..700).contains(&code) {
            return Err(DialogError::BadStatus(code));
        }
        self.pending_rel = None;
        self.held_2xx = None;
        self.state = DialogState::Terminated;
        Ok(self.invite_response(status, false))
    }

    /// A 200 OK with `sdp` for a re-INVITE (or UPDATE) reported as [`DialogEvent::ReInvite`];
    /// the dialog retransmits a re-INVITE's 2xx until its ACK like the first 2xx (an UPDATE's
    /// goes through its non-INVITE transaction alone), takes the request's Contact as the new
    /// remote target (§12.2.2), and counts the session timer from now (a refresh, RFC 4028).
    pub fn accept_reinvite(
        &mut self,
        now: Instant,
        reinvite: &Request,
        sdp: &[u8],
    ) -> Result<Response, DialogError> {
        if !matches!(self.state, DialogState::Accepted | DialogState::Confirmed) {
            return Err(DialogError::InvalidState(self.state));
        }
        let seq = reinvite
            .cseq_header()
            .map_err(|_| DialogError::MissingHeader("CSeq"))?
            .seq()
            .map_err(bad("CSeq"))?;
        if let Ok(uri) = reinvite.contact_header().and_then(|c| c.uri()) {
            self.remote_target = uri;
        }
        let mut response = self.respond(reinvite, StatusCode::OK);
        response
            .headers
            .push(Header::Contact(contact(&self.local_contact)));
        self.refreshed(now, reinvite, &mut response);
        set_body(&mut response, "application/sdp", sdp);
        // A refresh must offer a real SDP: an empty answer leaves the last one in place.
        if !sdp.is_empty() {
            self.local_sdp = sdp.to_vec();
        }
        self.offer_pending = false;
        if reinvite.method == Method::Invite {
            self.start_2xx(now, seq, response.clone());
        }
        Ok(response)
    }

    /// The peer refreshed the session with `request` (re-INVITE or UPDATE), answered by
    /// `response` now: renegotiate as the request asks (RFC 4028 §9; one that asks nothing
    /// keeps the timer we have) and say so in the response.
    fn refreshed(&mut self, now: Instant, request: &Request, response: &mut Response) {
        match session_timer::uas_choice(&request.headers, self.session_config) {
            // We are the UAS of the peer's refresh.
            UasChoice::Timer { delta, refresher, require } => {
                match self.session.as_mut() {
                    Some(timer) => timer.renegotiate(now, delta, refresher.is_us(false)),
                    None => self.session = Some(SessionTimer::new(now, delta, refresher.is_us(false))),
                }
                add_session_headers(response, &session_timer::session_expires_header(delta, refresher), require);
            }
            // Refused before it got here (handle_request answers 422).
            UasChoice::TooSmall { .. } | UasChoice::None => {
                if let Some(timer) = self.session.as_mut() {
                    timer.restart(now);
                    let require = !timer.we_refresh();
                    add_session_headers(response, &timer.header(false), require);
                }
            }
        }
    }

    /// Our session refresh (RFC 4028 §7.4, §9): a re-INVITE offering our last SDP unchanged,
    /// with `Session-Expires` as running and `Supported: timer`. Send it through a client
    /// INVITE transaction and pass its final response (and stray 2xx retransmissions) to
    /// [`Self::handle_response`]; report timer B or a transport error with
    /// [`Self::refresh_failed`]. `None` before the dialog is confirmed, without a session
    /// timer, or while a refresh or another offer is in progress.
    pub fn refresh(&mut self, via: rsip::headers::Via) -> Option<Request> {
        // §14.1: no re-INVITE while another offer/answer is in progress either way (the
        // peer's, answered or not, already counts as a refresh).
        if self.state != DialogState::Confirmed || self.refresh_cseq.is_some() || self.offer_pending || self.pending.is_some() {
            return None;
        }
        let timer = self.session.clone()?;
        let sdp = self.local_sdp.clone();
        let mut request = self.request(Method::Invite, via, Some(("application/sdp", &sdp)));
        request.headers.push(Header::Supported(rsip::headers::Supported::new("timer")));
        request.headers.push(timer.header(true));
        self.refresh_cseq = Some(self.local_cseq);
        Some(request)
    }

    /// A response to our refresh re-INVITE. A 2xx gets its ACK ([`DialogTransmit::Ack`],
    /// `via` is its Via) and restarts the timer as the 2xx says; 408 and 481 end the session
    /// ([`DialogEvent::SessionExpired`], RFC 4028 §10); any other failure (491 glare, 5xx)
    /// still proves the peer alive, and the timer starts over. Responses to anything else are
    /// ignored.
    pub fn handle_response(&mut self, now: Instant, response: &Response, via: rsip::headers::Via) {
        let Some(cseq) = response.cseq_header().ok().and_then(|c| c.typed().ok()) else {
            return;
        };
        let code = response.status_code.code();
        if cseq.method != Method::Invite || code < 200 {
            return;
        }
        if let Some((seq, ack)) = &self.refresh_ack {
            if *seq == cseq.seq && (200..300).contains(&code) && self.refresh_cseq != Some(cseq.seq) {
                // A retransmission of the 2xx: our ACK was lost.
                self.transmits.push_back(DialogTransmit::Ack(ack.clone()));
                return;
            }
        }
        if self.refresh_cseq != Some(cseq.seq) || self.state == DialogState::Terminated {
            return;
        }
        self.refresh_cseq = None;
        match code {
            200..=299 => {
                // §13.2.2.4: the ACK of a 2xx carries the INVITE's CSeq number.
                let ack = self.request_with_seq(Method::Ack, cseq.seq, via, None);
                self.transmits.push_back(DialogTransmit::Ack(ack.clone()));
                self.refresh_ack = Some((cseq.seq, ack));
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
            408 | 481 => self.refresh_failed(),
            _ => {
                if let Some(timer) = self.session.as_mut() {
                    timer.restart(now);
                }
            }
        }
    }

    /// Our refresh re-INVITE got no answer (timer B) or could not be sent: the session is
    /// over ([`DialogEvent::SessionExpired`]).
    pub fn refresh_failed(&mut self) {
        if self.state != DialogState::Terminated && self.session.take().is_some() {
            self.refresh_cseq = None;
            self.events.push_back(DialogEvent::SessionExpired);
        }
    }

    /// A plain response (no body) to an in-dialog request from the peer, e.g. 200 for INFO
    /// or 488 for a re-INVITE we cannot take. To already carries our tag.
    pub fn respond(&self, request: &Request, status: StatusCode) -> Response {
        response_for(request, status)
    }

    /// Our BYE (§15.1.1): request URI = remote target, Route = the route set, From/To = our
    /// and the peer's tags, Call-ID, the next local CSeq. `via` is the transport's top Via
    /// with a fresh branch (the dialog knows no transport). Stops any 2xx retransmission and
    /// terminates the dialog with `Terminated { by_remote: false }`. Send it through a client
    /// transaction. Before a final response, use [`Self::reject`] instead.
    pub fn bye(&mut self, _now: Instant, via: rsip::headers::Via) -> Result<Request, DialogError> {
        if !matches!(self.state, DialogState::Accepted | DialogState::Confirmed) {
            return Err(DialogError::InvalidState(self.state));
        }
        let request = self.request(Method::Bye, via, None);
        self.pending = None;
        self.session = None;
        self.state = DialogState::Terminated;
        self.events
            .push_back(DialogEvent::Terminated { by_remote: false });
        Ok(request)
    }

    /// Our INFO with `body` of `content_type` (e.g. `application/dtmf-relay`), with the next
    /// local CSeq. Send it through a client transaction.
    pub fn info(
        &mut self,
        via: rsip::headers::Via,
        content_type: &str,
        body: &[u8],
    ) -> Result<Request, DialogError> {
        if !matches!(self.state, DialogState::Accepted | DialogState::Confirmed) {
            return Err(DialogError::InvalidState(self.state));
        }
        Ok(self.request(Method::Info, via, Some((content_type, body))))
    }

    /// Our re-INVITE with an SDP offer (hold with `a=sendonly`, resume), with the next local
    /// CSeq and our Contact. Send it through a client INVITE transaction; the ACK for its 2xx
    /// is the TU's to send. Only once the dialog is confirmed (§14.1).
    pub fn reinvite(
        &mut self,
        via: rsip::headers::Via,
        sdp: &[u8],
    ) -> Result<Request, DialogError> {
        self.require(DialogState::Confirmed)?;
        Ok(self.request(Method::Invite, via, Some(("application/sdp", sdp))))
    }

    /// A request from the peer that the caller routed to this dialog by [`DialogId`] (or a
    /// CANCEL matched to our INVITE). Requests with other Call-ID or tags are refused with
    /// [`DialogError::NotThisDialog`]; unparseable ones with the header error. Neither
    /// changes the dialog. Answers are queued as [`DialogTransmit::Answer`].
    pub fn handle_request(&mut self, now: Instant, request: &Request) -> Result<(), DialogError> {
        if self.state == DialogState::Terminated {
            return Ok(());
        }
        let call_id = request
            .call_id_header()
            .map_err(|_| DialogError::MissingHeader("Call-ID"))?;
        let from_tag = request
            .from_header()
            .map_err(|_| DialogError::MissingHeader("From"))?
            .tag()
            .map_err(bad("From"))?;
        let to_tag = request
            .to_header()
            .map_err(|_| DialogError::MissingHeader("To"))?
            .tag()
            .map_err(bad("To"))?;
        let cseq = request
            .cseq_header()
            .map_err(|_| DialogError::MissingHeader("CSeq"))?;
        let seq = cseq.seq().map_err(bad("CSeq"))?;
        if call_id.value().trim() != self.id.call_id
            || from_tag.as_ref().map(|t| t.value()) != Some(self.id.remote_tag.as_str())
        {
            return Err(DialogError::NotThisDialog);
        }
        let to_matches = to_tag.as_ref().map(|t| t.value()) == Some(self.id.local_tag.as_str());

        // CANCEL (§9.2) carries the INVITE's To, without our tag.
        if request.method == Method::Cancel {
            if seq == self.invite_seq() && to_tag.is_none() {
                self.remote_cancel(now);
            }
            return Ok(());
        }
        // The initial INVITE retransmitted: same CSeq, To tag absent (or ours if the UAC
        // already learned it from a provisional).
        if request.method == Method::Invite
            && seq == self.invite_seq()
            && (to_tag.is_none() || to_matches)
        {
            match &self.last_2xx {
                Some((s, ok)) if *s == seq => self.transmits.push_back(DialogTransmit::Answer(ok.clone())),
                // No 2xx of ours for it any more (a re-INVITE's replaced it): too late to
                // repeat, but it came in a server transaction that waits for an answer until
                // it gets one — unanswered, every such INVITE would stay in memory for good.
                _ => self.answer(request, StatusCode::ServerInternalError),
            }
            return Ok(());
        }
        if !to_matches {
            return Err(DialogError::NotThisDialog);
        }
        if request.method == Method::Ack {
            self.handle_ack(seq, request);
            return Ok(());
        }
        // A retransmitted re-INVITE whose 2xx is already sent.
        if request.method == Method::Invite {
            if let Some((s, ok)) = &self.last_2xx {
                if *s == seq && seq == self.remote_cseq {
                    self.transmits.push_back(DialogTransmit::Answer(ok.clone()));
                    return Ok(());
                }
            }
        }
        // §12.2.2: a lower or equal CSeq than the last one is out of order.
        if seq <= self.remote_cseq {
            self.answer(request, StatusCode::ServerInternalError);
            return Ok(());
        }
        self.remote_cseq = seq;
        match request.method {
            Method::Bye => {
                self.answer(request, StatusCode::OK);
                if self.state == DialogState::Early {
                    // A BYE in the early dialog: the INVITE still needs its final response.
                    let terminated = self.invite_response(StatusCode::RequestTerminated, false);
                    self.transmits
                        .push_back(DialogTransmit::InviteResponse(terminated));
                }
                self.pending = None;
                self.pending_rel = None;
                self.held_2xx = None;
                self.session = None;
                self.state = DialogState::Terminated;
                self.events
                    .push_back(DialogEvent::Terminated { by_remote: true });
            }
            Method::Invite => {
                if self.state == DialogState::Early {
                    // §14.2: a second INVITE before our final response to the first.
                    let mut r = self.respond(request, StatusCode::ServerInternalError);
                    r.headers
                        .push(Header::Other("Retry-After".into(), "1".into()));
                    self.transmits.push_back(DialogTransmit::Answer(r));
                } else if self.refresh_cseq.is_some() {
                    // RFC 3261 §14.2: our own re-INVITE is out (glare).
                    self.answer(request, StatusCode::RequestPending);
                } else if !self.session_acceptable(request) {
                    // 422 queued.
                } else {
                    self.offer_pending = true;
                    self.events
                        .push_back(DialogEvent::ReInvite(request.clone()));
                }
            }
            Method::Update => self.handle_update(now, request),
            Method::PRack => self.handle_prack(now, request),
            Method::Info => self.events.push_back(DialogEvent::Info(request.clone())),
            Method::Options => self.answer(request, StatusCode::OK),
            _ => self.answer(request, StatusCode::NotImplemented),
        }
        Ok(())
    }

    /// UPDATE (RFC 3311 §5.2): without a body it only refreshes the session (200); with an
    /// offer it goes to the TU like a re-INVITE, unless our own offer is out (491) or an
    /// offer is still unanswered — the INVITE's before our 2xx, or the peer's last one —
    /// (500 with Retry-After).
    fn handle_update(&mut self, now: Instant, request: &Request) {
        if !self.session_acceptable(request) {
            return;
        }
        if request.body.is_empty() {
            let mut ok = self.respond(request, StatusCode::OK);
            ok.headers.push(Header::Contact(contact(&self.local_contact)));
            if self.state != DialogState::Early {
                self.refreshed(now, request, &mut ok);
            }
            self.transmits.push_back(DialogTransmit::Answer(ok));
            return;
        }
        if self.refresh_cseq.is_some() {
            self.answer(request, StatusCode::RequestPending);
            return;
        }
        if self.state == DialogState::Early || self.offer_pending {
            let mut r = self.respond(request, StatusCode::ServerInternalError);
            r.headers.push(Header::Other("Retry-After".into(), "1".into()));
            self.transmits.push_back(DialogTransmit::Answer(r));
            return;
        }
        self.offer_pending = true;
        self.events.push_back(DialogEvent::ReInvite(request.clone()));
    }

    /// A refresh (re-INVITE or UPDATE) asking for a shorter interval than our minimum gets
    /// 422 with our `Min-SE` (RFC 4028 §9); false when so.
    fn session_acceptable(&mut self, request: &Request) -> bool {
        if let UasChoice::TooSmall { min_se } = session_timer::uas_choice(&request.headers, self.session_config) {
            let mut r = self.respond(request, StatusCode::SessionIntervalTooSmall);
            r.headers.push(session_timer::min_se_header(min_se));
            self.transmits.push_back(DialogTransmit::Answer(r));
            return false;
        }
        true
    }

    /// PRACK (RFC 3262 §3): its `RAck` must name our unacknowledged reliable provisional
    /// (RSeq, the INVITE's CSeq and method), else 481. It is answered 200, retransmission
    /// stops, and a 2xx held for it goes out.
    fn handle_prack(&mut self, now: Instant, request: &Request) {
        let rack = request.headers.iter().find_map(|h| match h {
            Header::Other(name, value) if name.eq_ignore_ascii_case("RAck") => Some(value.clone()),
            _ => None,
        });
        let matches = rack.as_deref().and_then(parse_rack).is_some_and(|(rseq, seq, method)| {
            self.pending_rel.as_ref().is_some_and(|p| p.rseq == rseq)
                && seq == self.invite_seq()
                && method.eq_ignore_ascii_case("INVITE")
        });
        if !matches {
            self.answer(request, StatusCode::CallTransactionDoesNotExist);
            return;
        }
        self.answer(request, StatusCode::OK);
        self.pending_rel = None;
        if let Some(ok) = self.held_2xx.take() {
            self.transmits.push_back(DialogTransmit::InviteResponse(ok.clone()));
            self.sent_2xx(now, ok);
        }
    }

    /// Fire the due timers: 2xx retransmission and its 64·T1 give-up, reliable provisional
    /// retransmission and its give-up, the session timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.rel_timeout(now);
        self.session_timeout(now);
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if now >= p.give_up {
            self.pending = None;
            if self.state == DialogState::Accepted {
                self.state = DialogState::Confirmed;
            }
            self.events.push_back(DialogEvent::AckTimeout);
            return;
        }
        if now >= p.next {
            self.transmits
                .push_back(DialogTransmit::Retransmit(p.response.clone()));
            p.interval = (p.interval * 2).min(self.timers.t2);
            p.next = now + p.interval;
        }
    }

    /// The next response to send, if any.
    pub fn poll_transmit(&mut self) -> Option<DialogTransmit> {
        self.transmits.pop_front()
    }

    /// The next event for the TU, if any.
    pub fn poll_event(&mut self) -> Option<DialogEvent> {
        self.events.pop_front()
    }

    /// The next deadline, or `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.as_ref().map(|p| p.next.min(p.give_up));
        let rel = self.pending_rel.as_ref().map(|p| p.next.min(p.give_up));
        let session = self.session.as_ref().map(SessionTimer::poll_timeout);
        [pending, rel, session].into_iter().flatten().min()
    }

    fn rel_timeout(&mut self, now: Instant) {
        let Some(p) = self.pending_rel.as_mut() else {
            return;
        };
        if now >= p.give_up {
            // RFC 3262 §3: "the UAS SHOULD reject the original request with a 5xx".
            self.pending_rel = None;
            self.held_2xx = None;
            let r = self.invite_response(StatusCode::ServerInternalError, false);
            self.transmits.push_back(DialogTransmit::InviteResponse(r));
            self.state = DialogState::Terminated;
            self.events.push_back(DialogEvent::PrackTimeout);
        } else if now >= p.next {
            self.transmits.push_back(DialogTransmit::InviteResponse(p.response.clone()));
            p.interval *= 2;
            p.next = now + p.interval;
        }
    }

    fn session_timeout(&mut self, now: Instant) {
        let Some(timer) = self.session.as_mut() else {
            return;
        };
        match timer.handle_timeout(now) {
            Some(TimerAction::Refresh) => self.events.push_back(DialogEvent::RefreshDue),
            Some(TimerAction::Expired) => {
                self.session = None;
                self.events.push_back(DialogEvent::SessionExpired);
            }
            None => {}
        }
    }

    fn require(&self, state: DialogState) -> Result<(), DialogError> {
        if self.state == state {
            Ok(())
        } else {
            Err(DialogError::InvalidState(self.state))
        }
    }

    fn invite_seq(&self) -> u32 {
        self.invite
            .cseq_header()
            .ok()
            .and_then(|c| c.seq().ok())
            .unwrap_or_default()
    }

    fn start_2xx(&mut self, now: Instant, cseq: u32, response: Response) {
        self.last_2xx = Some((cseq, response.clone()));
        self.pending = Some(Pending2xx {
            response,
            cseq,
            next: now + self.timers.t1,
            interval: self.timers.t1,
            give_up: now + self.timers.t1_x64(),
        });
    }

    fn handle_ack(&mut self, seq: u32, ack: &Request) {
        if self.pending.as_ref().is_some_and(|p| p.cseq == seq) {
            self.pending = None;
            if self.state == DialogState::Accepted {
                self.state = DialogState::Confirmed;
            }
            self.events.push_back(DialogEvent::Confirmed(ack.clone()));
        }
        // Any other ACK (retransmitted, or for a non-2xx) is absorbed.
    }

    fn remote_cancel(&mut self, _now: Instant) {
        if self.state != DialogState::Early {
            return; // §9.2: CANCEL after a final response has no effect.
        }
        let terminated = self.invite_response(StatusCode::RequestTerminated, false);
        self.transmits
            .push_back(DialogTransmit::InviteResponse(terminated));
        self.pending_rel = None;
        self.held_2xx = None;
        self.state = DialogState::Terminated;
        self.events.push_back(DialogEvent::Cancelled);
    }

    fn answer(&mut self, request: &Request, status: StatusCode) {
        let r = self.respond(request, status);
        self.transmits.push_back(DialogTransmit::Answer(r));
    }

    /// A response to the dialog's INVITE with our To tag; `dialog` adds Contact and
    /// Record-Route (1xx and 2xx, §12.1.1).
    fn invite_response(&self, status: StatusCode, dialog: bool) -> Response {
        let mut r = response_for(&self.invite, status);
        for h in r.headers.iter_mut() {
            if let Header::To(to) = h {
                *to = self.local_to.clone();
            }
        }
        if dialog {
            r.headers.retain(|h| !matches!(h, Header::ContentLength(_)));
            for h in self.invite.headers.iter() {
                if let Header::RecordRoute(_) = h {
                    r.headers.push(h.clone());
                }
            }
            r.headers
                .push(Header::Contact(contact(&self.local_contact)));
            // So the peer knows it may send UPDATE and PRACK in this dialog (RFC 3311 §5.1).
            r.headers.push(Header::Allow(rsip::headers::Allow::new(super::udp::ALLOW)));
            r.headers.push(Header::Supported(rsip::headers::Supported::new(SUPPORTED)));
            r.headers.push(Header::ContentLength(0.into()));
        }
        r
    }

    fn request(
        &mut self,
        method: Method,
        via: rsip::headers::Via,
        body: Option<(&str, &[u8])>,
    ) -> Request {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        self.request_with_seq(method, self.local_cseq, via, body)
    }

    fn request_with_seq(
        &self,
        method: Method,
        seq: u32,
        via: rsip::headers::Via,
        body: Option<(&str, &[u8])>,
    ) -> Request {
        let mut headers = Headers::default();
        headers.push(Header::Via(via));
        headers.push(Header::MaxForwards(70.into()));
        for route in &self.route_set {
            headers.push(Header::Route(Route::new(route.clone())));
        }
        // Our From is the INVITE's To with our tag; our To is the INVITE's From.
        headers.push(Header::From(rsip::headers::From::new(
            self.local_to.value().to_owned(),
        )));
        if let Ok(from) = self.invite.from_header() {
            headers.push(Header::To(rsip::headers::To::new(from.value().to_owned())));
        }
        headers.push(Header::CallId(self.id.call_id.clone().into()));
        headers.push(Header::CSeq(
            rsip::typed::CSeq {
                seq,
                method,
            }
            .into(),
        ));
        if method == Method::Invite {
            headers.push(Header::Contact(contact(&self.local_contact)));
        }
        let mut request = Request {
            method,
            uri: self.remote_target.clone(),
            version: Version::V2,
            headers,
            body: Vec::new(),
        };
        match body {
            Some((content_type, body)) => set_body_req(&mut request, content_type, body),
            None => request.headers.push(Header::ContentLength(0.into())),
        }
        request
    }
}

/// `RAck: 1 314159 INVITE` → (RSeq, CSeq number, method).
fn parse_rack(value: &str) -> Option<(u32, u32, &str)> {
    let mut parts = value.split_whitespace();
    let rseq = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some((rseq, seq, parts.next()?))
}

/// `Session-Expires` (and `Require: timer` when the peer supports timers) on a 2xx.
fn add_session_headers(response: &mut Response, session_expires: &Header, require: bool) {
    response.headers.push(session_expires.clone());
    if require {
        response.headers.push(Header::Require(rsip::headers::Require::new("timer")));
    }
}

fn contact(uri: &Uri) -> rsip::headers::Contact {
    rsip::headers::Contact::new(format!("<{uri}>"))
}

fn set_body(response: &mut Response, content_type: &str, body: &[u8]) {
    response
        .headers
        .retain(|h| !matches!(h, Header::ContentLength(_) | Header::ContentType(_)));
    response
        .headers
        .push(Header::ContentType(ContentType::new(content_type)));
    response
        .headers
        .push(Header::ContentLength((body.len() as u32).into()));
    response.body = body.to_vec();
}

fn set_body_req(request: &mut Request, content_type: &str, body: &[u8]) {
    request
        .headers
        .push(Header::ContentType(ContentType::new(content_type)));
    request
        .headers
        .push(Header::ContentLength((body.len() as u32).into()));
    request.body = body.to_vec();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "dialog_tests.rs"]
mod tests;
