//! The UAS side of a SIP dialog (RFC 3261 §12, §13.3, §14.2, §15), sans-IO.
//!
//! A [`UasDialog`] is created from a received INVITE and lives above the transaction layer:
//! it builds our responses to that INVITE, retransmits the 2xx until the ACK (§13.3.1.4 — the
//! INVITE server transaction ends on a 2xx, see `docs/decisions/0005`), checks and answers
//! in-dialog requests from the peer (§12.2.2), and builds our own requests (BYE, INFO,
//! re-INVITE) with the dialog's Call-ID, tags, CSeq and route set (§12.2.1.1).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rsip::headers::{ContentType, Route, UntypedHeader};
use rsip::param::Tag;
use rsip::prelude::*;
use rsip::{Header, Headers, Method, Request, Response, StatusCode, Uri, Version};

use super::message::response_for;
use super::Timers;

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
    /// The peer sent a re-INVITE (hold, resume, codec change). Answer it with
    /// [`UasDialog::accept_reinvite`] or [`UasDialog::respond`] through its server transaction.
    ReInvite(Request),
    /// The peer sent INFO (e.g. DTMF as `application/dtmf-relay`); answer it with
    /// [`UasDialog::respond`] (200) through its server transaction.
    Info(Request),
    /// A CANCEL arrived before our final response; the 487 for the INVITE is queued as
    /// [`DialogTransmit::InviteResponse`] and the dialog is terminated.
    Cancelled,
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
        })
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
    pub fn provisional(&self, status: StatusCode) -> Result<Response, DialogError> {
        self.require(DialogState::Early)?;
        let code = status.code();
        if !(101..200).contains(&code) {
            return Err(DialogError::BadStatus(code));
        }
        Ok(self.invite_response(status, true))
    }

    /// The 200 OK to the INVITE with `sdp` as an `application/sdp` body, our Contact and To
    /// tag. Send it through the INVITE's server transaction (which ends on it); from `now`
    /// the dialog retransmits it ([`DialogTransmit::Retransmit`]) until the ACK or 64·T1.
    pub fn accept(&mut self, now: Instant, sdp: &[u8]) -> Result<Response, DialogError> {
        self.require(DialogState::Early)?;
        let mut response = self.invite_response(StatusCode::OK, true);
        set_body(&mut response, "application/sdp", sdp);
        self.start_2xx(now, self.remote_cseq, response.clone());
        self.state = DialogState::Accepted;
        Ok(response)
    }

    /// A 300–699 final response to the INVITE (486 Busy Here, 480, 603…). The dialog ends
    /// (no event: the TU chose this). Send it through the INVITE's server transaction.
    pub fn reject(&mut self, status: StatusCode) -> Result<Response, DialogError> {
        self.require(DialogState::Early)?;
        let code = status.code();
        if !(300..700).contains(&code) {
            return Err(DialogError::BadStatus(code));
        }
        self.state = DialogState::Terminated;
        Ok(self.invite_response(status, false))
    }

    /// A 200 OK with `sdp` for a re-INVITE reported as [`DialogEvent::ReInvite`]; the dialog
    /// retransmits it until its ACK like the first 2xx, and takes the re-INVITE's Contact as
    /// the new remote target (§12.2.2).
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
        set_body(&mut response, "application/sdp", sdp);
        self.start_2xx(now, seq, response.clone());
        Ok(response)
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
                } else {
                    self.events
                        .push_back(DialogEvent::ReInvite(request.clone()));
                }
            }
            Method::Info => self.events.push_back(DialogEvent::Info(request.clone())),
            Method::Options => self.answer(request, StatusCode::OK),
            _ => self.answer(request, StatusCode::NotImplemented),
        }
        Ok(())
    }

    /// Fire the 2xx retransmission timer and the 64·T1 give-up if due.
    pub fn handle_timeout(&mut self, now: Instant) {
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
        self.pending.as_ref().map(|p| p.next.min(p.give_up))
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
                seq: self.local_cseq,
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
