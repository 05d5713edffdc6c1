//! switchd's SIP user agent, sans-IO: the transaction user that turns INVITEs from trunks
//! into call legs for the engine and keeps their dialogs, and places the engine's outbound
//! calls through a trunk ([`CallCommand::Originate`], driven by [`UacCall`]).
//!
//! [`Calls`] sits between the [`TransactionLayer`] and the engine (DESIGN.md decision 3: the
//! engine never sees SIP). It
//!
//! * refuses an INVITE from a source that is no configured trunk (`403`), or when the call
//!   limit is reached (`503`), and otherwise creates a [`UasDialog`] and reports
//!   [`CallEvent::Incoming`];
//! * routes in-dialog requests (ACK, BYE, INFO, re-INVITE, UPDATE, PRACK) and CANCEL to their
//!   dialog, and answers requests for no dialog `481`;
//! * negotiates session timers (RFC 4028) on inbound INVITEs (`422` below our minimum),
//!   sends the dialogs' refresh re-INVITEs and ACKs their 2xx, and hangs up a session that
//!   expired ([`EndReason::SessionExpired`]);
//! * carries out the engine's [`CallCommand`]s (ringing, answer with SDP, reject, hang up);
//! * places outbound calls: [`CallCommand::Originate`] sends an INVITE to the trunk, the
//!   responses of its client transactions (and stray 2xx retransmissions, matched by our
//!   Call-ID) are consumed here and become [`CallEvent::Ringing`], [`CallEvent::Answered`],
//!   [`CallEvent::Failed`] or [`CallEvent::Ended`]; when a trunk is down or fails the INVITE
//!   (408/5xx before ringing) the call moves on to the next trunk that is up (failover, see
//!   [`CallCommand::Originate`]);
//! * keeps the trunks' registrations and OPTIONS keep-alives through a
//!   [`TrunkMonitor`] ([`Calls::start`], [`Calls::trunk_status`],
//!   [`CallEvent::TrunkUp`] / [`CallEvent::TrunkDown`]).
//!
//! # Leg ids
//! Inbound legs are numbered by `Calls` from 1 upwards; the engine numbers its outbound legs
//! itself with [`LegId::engine`], which sets [`LegId::ENGINE_BIT`] (the top bit), so the two
//! ranges never meet and the engine needs no round trip to learn an id. `Originate` with an
//! id lacking that bit, or one in use, fails with `Failed { status: 500 }`.
//!
//! # Contract
//! Feed it the layer's [`LayerEvent`]s through [`Calls::handle_layer_event`] and the engine's
//! commands through [`Calls::handle_command`]; after each, the layer holds what to send (drain
//! it as usual) and [`Calls::poll_event`] yields what to tell the engine. Call
//! [`Calls::start`] once (registrations and keep-alives begin). Arm a timer for
//! [`Calls::poll_timeout`] (2xx retransmissions, CANCEL give-up, REGISTER refreshes, pings)
//! and call [`Calls::handle_timeout`]. Every outbound leg ends with exactly one `Failed` or `Ended`.
//! Nothing here reads a clock or owns a socket.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::prelude::*;
use rsip::{Header, Method, Request, SipMessage, StatusCode, Uri};

use super::dialog::{DialogEvent, DialogId, DialogTransmit, UasDialog};
use super::session_timer::{self, SessionConfig, UasChoice};
use super::digest::Credentials;
use super::message::response_for;
use super::transaction::{LayerEvent, TransactionEvent, TransactionKey, TransactionLayer};
use super::trunks::{Probe, TrunkEvent, TrunkMonitor, TrunkStatus};
use super::stream::Transport;
use super::uac::{Outbound, UacCall, UacEvent, UacTransmit};
use super::udp::ALLOW;
use super::Timers;

/// The engine's handle on one SIP call leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

impl LegId {
    /// Set in every id the engine picks for [`CallCommand::Originate`]; never set in the ids
    /// `Calls` gives inbound legs (it counts from 1).
    pub const ENGINE_BIT: u64 = 1 << 63;

    /// The engine's `n`th outbound leg id (sets [`Self::ENGINE_BIT`]).
    pub fn engine(n: u64) -> Self {
        LegId(n | Self::ENGINE_BIT)
    }

    /// True for ids from [`Self::engine`].
    pub fn is_engine(self) -> bool {
        self.0 & Self::ENGINE_BIT != 0
    }
}

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leg-{}", self.0)
    }
}

/// A trunk: a carrier (or PBX) whose calls we accept, identified by source address, and
/// through which we place calls. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TrunkPeer {
    /// The trunk's name, as configured (it appears in CDRs).
    pub name: String,
    /// Source IP addresses its SIP messages come from.
    pub addresses: Vec<IpAddr>,
    /// Where outbound INVITEs go (and the host:port of their Request-URI); `None` means the
    /// first of `addresses`, port 5060.
    pub proxy: Option<SocketAddr>,
    /// Digest user name for the trunk's 401/407 challenges.
    pub username: Option<String>,
    /// Digest password; never logged.
    pub password: Option<String>,
    /// Register with the proxy (or first address), asking for this expiry in seconds;
    /// `None`: no registration.
    pub register: Option<u32>,
    /// Our IP as this trunk should see it in REGISTER and OPTIONS, used when our own SIP
    /// address is unspecified (the driver looks it up; sans-IO code cannot).
    pub local_ip: Option<IpAddr>,
    /// The carrier wants numbers in E.164 (`+8613800138000`) rather than national form.
    pub e164: bool,
    /// A peer from any address that answers our digest challenge with these is this trunk.
    pub inbound: Option<Credentials>,
    /// How we reach the trunk: UDP, or a TCP/TLS connection the driver opens to
    /// [`Self::outbound_destination`] and reuses for REGISTER, OPTIONS and calls.
    pub transport: Transport,
}

impl TrunkPeer {
    /// `number` as this trunk wants it in the Request-URI and From (national or E.164);
    /// anything that is no phone number goes as it is.
    pub fn dial_string(&self, number: &str) -> String {
        match rexian_shared::PhoneNumber::parse(number) {
            Ok(n) if self.e164 => n.e164(),
            Ok(n) => n.as_ref().to_owned(),
            Err(_) => number.to_owned(),
        }
    }

    /// Where outbound calls go: the proxy, else the first address at port 5060.
    pub fn outbound_destination(&self) -> Option<SocketAddr> {
        self.proxy
            .or_else(|| self.addresses.first().map(|ip| SocketAddr::new(*ip, 5060)))
    }

    /// The digest credentials, when both user name and password are set.
    pub fn credentials(&self) -> Option<Credentials> {
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.clone())),
            _ => None,
        }
    }
}

impl std::fmt::Debug for TrunkPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkPeer")
            .field("name", &self.name)
            .field("addresses", &self.addresses)
            .field("proxy", &self.proxy)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("register", &self.register)
            .field("local_ip", &self.local_ip)
            .field("inbound", &self.inbound)
            .field("transport", &self.transport)
            .finish()
    }
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
    /// The peer sent a re-INVITE or an UPDATE with an SDP offer (hold, resume, new address);
    /// answer it with [`CallCommand::AcceptReinvite`]. Session refreshes without a new offer
    /// are answered by the UA and never reported.
    ReInvite {
        /// The leg.
        leg: LegId,
        /// The new offer (empty for an offerless re-INVITE).
        sdp: Vec<u8>,
    },
    /// An outbound leg is ringing (180) or has early media (183).
    Ringing {
        /// The leg.
        leg: LegId,
        /// The SDP answer of a 183 (or 180) that carried one.
        early_sdp: Option<Vec<u8>>,
    },
    /// An outbound leg was answered (its 2xx is ACKed).
    Answered {
        /// The leg.
        leg: LegId,
        /// The SDP answer.
        sdp: Vec<u8>,
        /// The trunk that answered: the `Originate`'s, or the one failover moved the call to.
        trunk: String,
    },
    /// An outbound leg failed before the answer: the peer's 3xx–6xx, 408 when nobody
    /// answered the INVITE (timer B), 503 for a transport error or the call limit, 500 for an
    /// `Originate` we could not act on (unknown trunk, bad number or id, no SDP). The leg is
    /// gone; no `Ended` follows.
    Failed {
        /// The leg.
        leg: LegId,
        /// The SIP status.
        status: u16,
    },
    /// The leg is over (for an outbound leg hung up before the answer: once the CANCEL took
    /// effect, with [`EndReason::Local`]).
    Ended {
        /// The leg.
        leg: LegId,
        /// Why.
        reason: EndReason,
    },
    /// A trunk answers OPTIONS keep-alives again (see [`super::trunks`]). No leg.
    TrunkUp {
        /// The trunk's name.
        trunk: String,
    },
    /// A trunk stopped answering keep-alives (or answers them 5xx); outbound calls avoid it
    /// while another trunk is up. No leg.
    TrunkDown {
        /// The trunk's name.
        trunk: String,
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
    /// The session timer ran out (RFC 4028 §10: no refresh from the peer in time, or our
    /// refresh failed with 408/481 or no answer): we sent BYE.
    SessionExpired,
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
    /// Send `180 Ringing` (`183 Session Progress` when `early_media`); reliable (RFC 3262)
    /// when the caller requires `100rel`, and then an `Answer` before its PRACK waits for it.
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
    /// End the call: BYE once answered, `480` before (CANCEL before the answer for an
    /// outbound leg).
    Hangup {
        /// The leg.
        leg: LegId,
    },
    /// Place a call through a trunk: `INVITE sip:<to_number>@<trunk proxy>` from
    /// `<from_number>` with `sdp` as the offer. `leg` is the engine's, from
    /// [`LegId::engine`]. Reported back as `Ringing`, `Answered`, `Failed`, then `Ended`.
    /// `AcceptReinvite` with an empty SDP answers a re-INVITE on such a leg with the current
    /// SDP.
    ///
    /// Failover: when the named trunk is marked down by its keep-alives, the call starts on
    /// the first trunk in configured order that has a destination and is up (the named one
    /// still, when none is); when the INVITE fails with 408 (no answer), a 5xx or a transport
    /// error (503) before any ringing (a `100 Trying` does not count: it is hop-by-hop), the
    /// call moves on to the next such trunk, each trunk tried at most once. The engine sees
    /// one leg throughout; only the last failure is reported, and `Answered` names the trunk
    /// that answered.
    Originate {
        /// The new leg's id.
        leg: LegId,
        /// The [`TrunkPeer::name`] to call through.
        trunk: String,
        /// The number to call (user part of the Request-URI).
        to_number: String,
        /// Our caller id (user part of From).
        from_number: String,
        /// Our SDP offer.
        sdp: Vec<u8>,
    },
    /// Place a call straight to a SIP URI, through no trunk: `INVITE <uri>` sent to the
    /// URI's host and port (5060 by default), from `<from_number>`, with `sdp` as the offer.
    /// The host must be an IP address (the SIP core resolves no names) and the call goes by
    /// UDP; no credentials, no failover. Reported like `Originate`; `Answered` names the
    /// URI's `host:port` as its trunk.
    OriginateUri {
        /// The new leg's id, from [`LegId::engine`].
        leg: LegId,
        /// The target, e.g. `sip:bob@192.0.2.10:5070`.
        uri: String,
        /// Our caller id (user part of From).
        from_number: String,
        /// Our SDP offer.
        sdp: Vec<u8>,
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
            | CallCommand::Hangup { leg }
            | CallCommand::Originate { leg, .. }
            | CallCommand::OriginateUri { leg, .. } => *leg,
        }
    }
}

struct Leg {
    dialog: UasDialog,
    invite_key: TransactionKey,
    peer: SocketAddr,
    /// What the INVITE came over: our requests in the dialog (BYE) say so in their Via.
    transport: Transport,
    /// Our host as the peer addressed us (for the Via of our requests).
    local_host: String,
    /// The server transaction of the request last handed to the dialog, for its answer.
    current_key: Option<TransactionKey>,
    /// A re-INVITE waiting for the engine's answer, and its server transaction.
    reinvite: Option<(Request, TransactionKey)>,
}

/// An outbound leg.
struct OutLeg {
    call: UacCall,
    /// The current INVITE's client transaction (timer B and transport errors count only
    /// there; dropped on the CANCEL give-up).
    invite_key: Option<TransactionKey>,
    /// The server transaction of the peer's request last handed to the call.
    current_key: Option<TransactionKey>,
    /// A re-INVITE waiting for the engine's answer: request, server transaction, source.
    reinvite: Option<(Request, TransactionKey, SocketAddr)>,
    /// What failover needs to place the call again elsewhere.
    route: Route,
}

/// The engine's request and where it has been tried, for failover.
struct Route {
    /// The index of the trunk the engine named.
    chosen: usize,
    /// The trunk the current INVITE went to.
    current: usize,
    /// Trunks already tried (each at most once).
    tried: Vec<usize>,
    to_number: String,
    from_number: String,
    sdp: Vec<u8>,
    /// A provisional beyond 100 arrived: the callee was reached, no more failover.
    progressed: bool,
    /// For [`CallCommand::OriginateUri`]: the target and where it is, instead of a trunk.
    direct: Option<(Uri, SocketAddr)>,
}

/// The call transaction user (see the module docs).
pub struct Calls {
    timers: Timers,
    /// Our SIP address as others should reach it (Contact and Via); an unspecified IP is
    /// replaced per call by the address the INVITE was sent to.
    local: SocketAddr,
    /// Our SIP-over-TLS port, for the Contact and Via of calls that came over TLS.
    tls_port: Option<u16>,
    trunks: Vec<TrunkPeer>,
    max_calls: usize,
    next_leg: u64,
    legs: HashMap<LegId, Leg>,
    by_dialog: HashMap<DialogId, LegId>,
    outbound: HashMap<LegId, OutLeg>,
    /// Client transactions of outbound legs (kept until they terminate, even after the leg).
    uac_keys: HashMap<TransactionKey, LegId>,
    /// Outbound legs by our Call-ID, for stray responses.
    by_call_id: HashMap<String, LegId>,
    /// Registration and keep-alives of the trunks.
    monitor: TrunkMonitor,
    /// The monitor's ping interval (kept to rebuild it in [`Self::with_tls_port`]).
    keepalive: Option<Duration>,
    /// Client transactions of the monitor's REGISTERs and OPTIONS.
    probe_keys: HashMap<TransactionKey, (usize, Probe)>,
    events: VecDeque<CallEvent>,
    /// Digest challenges to peers of trunks with inbound credentials, and the clock's origin
    /// for their nonces (the first INVITE seen).
    verifier: super::digest_server::Verifier,
    epoch: Option<Instant>,
    /// Session-timer limits (RFC 4028) for inbound and outbound calls.
    session: SessionConfig,
    /// Client transactions of inbound legs' session refreshes (re-INVITEs).
    refresh_keys: HashMap<TransactionKey, LegId>,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls")
            .field("local", &self.local)
            .field("trunks", &self.trunks)
            .field("legs", &self.legs.len())
            .field("outbound", &self.outbound.len())
            .finish()
    }
}

impl Calls {
    /// A UA reachable at `local`, accepting calls from `trunks`, at most `max_calls` at once.
    /// Trunks are not pinged (see [`Self::with_keepalive`]); those with
    /// [`TrunkPeer::register`] register once [`Self::start`] is called.
    pub fn new(timers: Timers, local: SocketAddr, trunks: Vec<TrunkPeer>, max_calls: usize) -> Self {
        Self {
            monitor: TrunkMonitor::new(local, None, &trunks, None),
            keepalive: None,
            probe_keys: HashMap::new(),
            timers,
            local,
            tls_port: None,
            trunks,
            max_calls,
            next_leg: 1,
            legs: HashMap::new(),
            by_dialog: HashMap::new(),
            outbound: HashMap::new(),
            uac_keys: HashMap::new(),
            by_call_id: HashMap::new(),
            events: VecDeque::new(),
            verifier: super::digest_server::Verifier::new(random_secret()),
            epoch: None,
            session: SessionConfig::default(),
            refresh_keys: HashMap::new(),
        }
    }

    /// Session timers (RFC 4028) with these limits instead of the defaults (1800 s asked
    /// for, 90 s the least accepted).
    pub fn with_session_timers(mut self, config: SessionConfig) -> Self {
        self.session = config;
        self
    }

    /// Ping every trunk that has a destination with OPTIONS every `every` (`None` or zero:
    /// never), marking trunks down and up (see [`super::trunks`]). Call before [`Self::start`].
    pub fn with_keepalive(mut self, every: Option<Duration>) -> Self {
        self.keepalive = every;
        self.monitor = TrunkMonitor::new(self.local, self.tls_port, &self.trunks, every);
        self
    }

    /// Calls over TLS reach us on `port` (the TCP and UDP port is that of the local address).
    pub fn with_tls_port(mut self, port: Option<u16>) -> Self {
        self.tls_port = port;
        // The monitor has sent nothing yet (before `start`): rebuilt, TLS trunks learn the port.
        self.monitor = TrunkMonitor::new(self.local, port, &self.trunks, self.keepalive);
        self
    }

    /// Begin registering trunks (now) and pinging them (one interval from now). Until this is
    /// called no REGISTER or OPTIONS is sent. Calling it again does nothing.
    pub fn start(&mut self, now: Instant, layer: &mut TransactionLayer) {
        self.monitor.start(now);
        self.drain_monitor(now, layer);
    }

    /// Registration and keep-alive state of every trunk, in configured order.
    pub fn trunk_status(&self) -> Vec<TrunkStatus> {
        self.monitor.status()
    }

    /// Calls alive now, inbound and outbound.
    pub fn len(&self) -> usize {
        self.legs.len() + self.outbound.len()
    }

    /// True when no call is alive.
    pub fn is_empty(&self) -> bool {
        self.legs.is_empty() && self.outbound.is_empty()
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline: dialogs (2xx retransmission, ACK give-up, CANCEL give-up) and
    /// the trunks' REGISTER refreshes and pings.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let inbound = self.legs.values().filter_map(|l| l.dialog.poll_timeout());
        let outbound = self.outbound.values().filter_map(|l| l.call.poll_timeout());
        inbound.chain(outbound).chain(self.monitor.poll_timeout()).min()
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
        let due: Vec<LegId> = self
            .outbound
            .iter()
            .filter(|(_, l)| l.call.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(leg) = self.outbound.get_mut(&id) {
                leg.call.handle_timeout(now);
            }
            self.drain_uac(now, id, layer);
        }
        if self.monitor.poll_timeout().is_some_and(|t| t <= now) {
            self.monitor.handle_timeout(now);
            self.drain_monitor(now, layer);
        }
    }

    /// Sends the monitor's REGISTERs and OPTIONS and passes its up/down changes on.
    fn drain_monitor(&mut self, now: Instant, layer: &mut TransactionLayer) {
        while let Some(t) = self.monitor.poll_transmit() {
            match layer.send_request(now, t.request, t.destination, false) {
                Ok(key) => {
                    self.probe_keys.insert(key, (t.trunk, t.probe));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "SIP: cannot send a trunk probe");
                    self.monitor.handle_failure(now, t.trunk, t.probe, 503);
                }
            }
        }
        while let Some(event) = self.monitor.poll_event() {
            self.events.push_back(match event {
                TrunkEvent::Up(trunk) => CallEvent::TrunkUp { trunk },
                TrunkEvent::Down(trunk) => CallEvent::TrunkDown { trunk },
            });
        }
    }

    /// An event of a REGISTER or OPTIONS client transaction.
    fn probe_event(&mut self, now: Instant, key: TransactionKey, event: TransactionEvent, layer: &mut TransactionLayer) {
        let Some((trunk, probe)) = self.probe_keys.get(&key).copied() else {
            return;
        };
        match event {
            TransactionEvent::Final(response) => self.monitor.handle_response(now, trunk, probe, &response),
            // §8.1.3.1: Timer F counts as 408, a transport error as 503.
            TransactionEvent::Timeout => self.monitor.handle_failure(now, trunk, probe, 408),
            TransactionEvent::TransportError => self.monitor.handle_failure(now, trunk, probe, 503),
            TransactionEvent::Terminated => {
                self.probe_keys.remove(&key);
            }
            _ => {}
        }
        self.drain_monitor(now, layer);
    }

    /// A transaction-layer event: new requests, stray ACKs, and the responses (transaction
    /// events and stray 2xx retransmissions) of outbound legs. Returns the event back when it
    /// is not about calls (the caller handles OPTIONS, logging, malformed input).
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
            LayerEvent::StrayAck { request, source } => {
                if let Some(id) = DialogId::for_incoming(&request).and_then(|d| self.by_dialog.get(&d).copied()) {
                    if self.outbound.contains_key(&id) {
                        self.route_to_uac(now, id, &request, None, source, layer);
                    } else {
                        self.route_to_dialog(now, id, &request, None, layer);
                    }
                }
                None
            }
            LayerEvent::Transaction { key, event } => match self.uac_keys.get(&key).copied() {
                Some(id) => {
                    self.uac_transaction_event(now, id, key, event, layer);
                    None
                }
                None if self.refresh_keys.contains_key(&key) => {
                    self.refresh_event(now, key, event, layer);
                    None
                }
                None if self.probe_keys.contains_key(&key) => {
                    self.probe_event(now, key, event, layer);
                    None
                }
                None => Some(LayerEvent::Transaction { key, event }),
            },
            LayerEvent::StrayResponse { response, source } => {
                let id = response
                    .call_id_header()
                    .ok()
                    .and_then(|c| self.by_call_id.get(c.value().trim()).copied());
                match id {
                    Some(id) => {
                        if let Some(leg) = self.outbound.get_mut(&id) {
                            if let Err(e) = leg.call.handle_response(now, &response) {
                                tracing::debug!(%id, error = %e, "SIP: stray response ignored");
                            }
                        }
                        self.drain_uac(now, id, layer);
                        None
                    }
                    None => match self.inbound_leg_of(&response) {
                        // A retransmitted 2xx to our refresh re-INVITE: the dialog ACKs it again.
                        Some(id) => {
                            self.refresh_response(now, id, &response, layer);
                            None
                        }
                        None => Some(LayerEvent::StrayResponse { response, source }),
                    },
                }
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
                Some(id) => {
                    // The CANCEL itself is answered 200 by us (§9.2) whatever the dialog does,
                    // and first: then the dialog's 487 ends the INVITE, the order callers
                    // (SIPp's scenarios among them) expect.
                    send(layer, now, &key, response_for(&request, StatusCode::OK));
                    self.route_to_dialog(now, id, &request, Some(key.clone()), layer);
                }
                None => send(layer, now, &key, response_for(&request, StatusCode::CallTransactionDoesNotExist)),
            }
            return None;
        }
        if let Some(dialog_id) = DialogId::for_incoming(&request) {
            match self.by_dialog.get(&dialog_id).copied() {
                Some(id) if self.outbound.contains_key(&id) => {
                    self.route_to_uac(now, id, &request, Some(key), source, layer)
                }
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
        let trunk = match self.trunk_of(source.ip()) {
            Some(trunk) => trunk,
            None => match self.authenticate(now, &invite, source) {
                Ok(trunk) => trunk,
                Err(refusal) => return send(layer, now, &key, refusal),
            },
        };
        let unsupported = unsupported_requirements(&invite);
        if !unsupported.is_empty() {
            // §8.2.2.3: an extension the caller requires and we do not do (100rel, timer…).
            tracing::info!(%source, unsupported = %unsupported.join(","), "SIP: INVITE requires extensions we lack, 420");
            let mut r = response_for(&invite, StatusCode::BadExtension);
            r.headers.push(Header::Other("Unsupported".into(), unsupported.join(", ")));
            send(layer, now, &key, r);
            return;
        }
        let session_plan = session_timer::uas_choice(&invite.headers, self.session);
        if let UasChoice::TooSmall { min_se } = session_plan {
            // RFC 4028 §9: the caller may retry with our minimum.
            tracing::info!(%source, min_se, "SIP: INVITE's session interval below our minimum, 422");
            let mut r = response_for(&invite, StatusCode::SessionIntervalTooSmall);
            r.headers.push(session_timer::min_se_header(min_se));
            send(layer, now, &key, r);
            return;
        }
        if self.legs.len() >= self.max_calls {
            tracing::warn!(%source, calls = self.legs.len(), "SIP: call limit reached, refused 503");
            let mut r = response_for(&invite, StatusCode::ServiceUnavailable);
            r.headers.push(Header::Other("Retry-After".into(), "5".into()));
            send(layer, now, &key, r);
            return;
        }
        let transport = layer.transport_to(source);
        let contact = self.contact_for(&invite, transport);
        let local_host = contact.host_with_port.host.to_string();
        let mut dialog = match UasDialog::from_invite(now, &invite, &new_tag(), contact, self.timers) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(%source, error = %e, "SIP: INVITE cannot start a dialog, 400");
                send(layer, now, &key, response_for(&invite, StatusCode::BadRequest));
                return;
            }
        };
        dialog.set_session(session_plan, self.session);
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
                transport,
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
        if let CallCommand::Originate { leg, trunk, to_number, from_number, sdp } = command {
            self.originate(now, leg, &trunk, &to_number, &from_number, sdp, layer);
            return;
        }
        if let CallCommand::OriginateUri { leg, uri, from_number, sdp } = command {
            self.originate_uri(now, leg, &uri, &from_number, sdp, layer);
            return;
        }
        if self.outbound.contains_key(&id) {
            self.outbound_command(now, command, layer);
            return;
        }
        let Some(leg) = self.legs.get_mut(&id) else {
            tracing::debug!(%id, "SIP: command for an ended leg ignored");
            return;
        };
        let invite_key = leg.invite_key.clone();
        match command {
            CallCommand::Ringing { .. } => match leg.dialog.provisional(now, StatusCode::Ringing) {
                Ok(r) => send(layer, now, &invite_key, r),
                Err(e) => tracing::debug!(%id, error = %e, "SIP: no ringing sent"),
            },
            CallCommand::Answer { sdp, .. } => match leg.dialog.accept(now, &sdp) {
                Ok(Some(r)) => send(layer, now, &invite_key, r),
                Ok(None) => tracing::debug!(%id, "SIP: the 200 waits for the PRACK of our reliable provisional"),
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
            CallCommand::Originate { .. } | CallCommand::OriginateUri { .. } => {} // handled above
        }
        self.drain(now, id, layer);
    }

    /// `Originate`: check the request, pick the trunk (failover, see
    /// [`CallCommand::Originate`]) and send the INVITE.
    #[allow(clippy::too_many_arguments)]
    fn originate(
        &mut self,
        now: Instant,
        id: LegId,
        trunk: &str,
        to_number: &str,
        from_number: &str,
        sdp: Vec<u8>,
        layer: &mut TransactionLayer,
    ) {
        let refuse = |calls: &mut Self, status: u16, why: &str| {
            tracing::warn!(%id, trunk, status, "SIP: cannot place the call: {why}");
            calls.events.push_back(CallEvent::Failed { leg: id, status });
        };
        if !id.is_engine() || self.legs.contains_key(&id) || self.outbound.contains_key(&id) {
            return refuse(self, 500, "leg id without the engine bit, or in use");
        }
        if self.len() >= self.max_calls {
            return refuse(self, 503, "call limit reached");
        }
        let Some(chosen) = self.trunks.iter().position(|t| t.name == trunk) else {
            return refuse(self, 500, "no such trunk");
        };
        if self.local.ip().is_unspecified() {
            // Our Contact must be reachable, and without a received INVITE we cannot learn
            // which of our addresses the peer sees.
            return refuse(self, 500, "our SIP address is unspecified: set advertise_ip");
        }
        if !valid_user(to_number) || !valid_user(from_number) {
            return refuse(self, 500, "number has characters a SIP user part cannot carry");
        }
        // A trunk marked down is skipped while another is up; when none is, the named trunk
        // is tried anyway (the keep-alive may be wrong, and failing at once helps nobody).
        let first = self.next_trunk(chosen, &[]).unwrap_or(chosen);
        if first != chosen {
            tracing::info!(%id, trunk, via = %self.trunks[first].name, "SIP: trunk is down, the call goes through another");
        }
        let route = Route {
            chosen,
            current: first,
            tried: Vec::new(),
            to_number: to_number.to_owned(),
            from_number: from_number.to_owned(),
            sdp,
            progressed: false,
            direct: None,
        };
        if let Err((status, why)) = self.place(now, id, route, layer) {
            refuse(self, status, why);
        }
    }

    /// `OriginateUri`: check the request and the URI, and send the INVITE to its address.
    fn originate_uri(&mut self, now: Instant, id: LegId, uri: &str, from_number: &str, sdp: Vec<u8>, layer: &mut TransactionLayer) {
        let refuse = |calls: &mut Self, status: u16, why: &str| {
            tracing::warn!(%id, uri, status, "SIP: cannot place the call: {why}");
            calls.events.push_back(CallEvent::Failed { leg: id, status });
        };
        if !id.is_engine() || self.legs.contains_key(&id) || self.outbound.contains_key(&id) {
            return refuse(self, 500, "leg id without the engine bit, or in use");
        }
        if self.len() >= self.max_calls {
            return refuse(self, 503, "call limit reached");
        }
        if self.local.ip().is_unspecified() {
            return refuse(self, 500, "our SIP address is unspecified: set advertise_ip");
        }
        if !valid_user(from_number) {
            return refuse(self, 500, "number has characters a SIP user part cannot carry");
        }
        let Some((target, destination)) = direct_target(uri) else {
            return refuse(self, 500, "not a sip: URI with an IP address");
        };
        // No trunk: the trunk indices are never read while `direct` is set (no failover).
        let route = Route {
            chosen: 0,
            current: 0,
            tried: Vec::new(),
            to_number: user_or_uri(&target),
            from_number: from_number.to_owned(),
            sdp,
            progressed: false,
            direct: Some((target, destination)),
        };
        if let Err((status, why)) = self.place(now, id, route, layer) {
            refuse(self, status, why);
        }
    }

    /// The trunk a call should try next: the engine's `chosen`, else the first in configured
    /// order, that has a destination, is up and is not in `tried`.
    fn next_trunk(&self, chosen: usize, tried: &[usize]) -> Option<usize> {
        let usable = |i: usize| {
            !tried.contains(&i)
                && self.monitor.is_up(i)
                && self.trunks.get(i).is_some_and(|t| t.outbound_destination().is_some())
        };
        std::iter::once(chosen).chain(0..self.trunks.len()).find(|&i| usable(i))
    }

    /// Build the [`UacCall`] for `route.current` and send its INVITE, filed under `id`
    /// (replacing an earlier attempt's leg). `Err` says why it could not be placed.
    fn place(
        &mut self,
        now: Instant,
        id: LegId,
        mut route: Route,
        layer: &mut TransactionLayer,
    ) -> Result<(), (u16, &'static str)> {
        // Through a trunk (its proxy, credentials, transport and number format), or straight
        // to a URI's address by UDP.
        let (request_uri, destination, credentials, trunk, transport, from_number) = match &route.direct {
            Some((target, destination)) => {
                (Ok(target.clone()), *destination, None, sip_host_port(*destination), Transport::Udp, route.from_number.clone())
            }
            None => {
                let peer = self.trunks.get(route.current).ok_or((500, "no such trunk"))?;
                let destination = peer.outbound_destination().ok_or((500, "trunk has no proxy and no address"))?;
                let to_number = peer.dial_string(&route.to_number);
                let request_uri = Uri::try_from(format!("sip:{to_number}@{}", sip_host_port(destination)).as_str());
                (request_uri, destination, peer.credentials(), peer.name.clone(), peer.transport, peer.dial_string(&route.from_number))
            }
        };
        let host = bracket(&self.local.ip().to_string());
        let port = port_for(self.local, self.tls_port, transport);
        // The carrier sends its in-dialog requests (BYE, re-INVITE) to our Contact: over the
        // trunk's transport, so that they come on a stream when the call went on one.
        let contact_param = transport.uri_param().map(|t| format!(";transport={t}")).unwrap_or_default();
        let uris = (
            request_uri,
            Uri::try_from(format!("sip:{from_number}@{host}").as_str()),
            Uri::try_from(format!("sip:switchd@{host}:{port}{contact_param}").as_str()),
        );
        let (Ok(request_uri), Ok(from), Ok(local_contact)) = uris else {
            return Err((500, "cannot build the URIs"));
        };
        let outbound = Outbound {
            request_uri,
            from,
            local_contact,
            via_host: self.local.ip().to_string(),
            via_port: port,
            transport,
            destination,
            credentials,
            sdp: route.sdp.clone(),
            session: self.session,
        };
        let call = UacCall::new(now, outbound, self.timers).map_err(|_| (500, "cannot build the INVITE"))?;
        tracing::info!(%id, trunk = %trunk, callee = %route.to_number, caller = %route.from_number, %destination, "SIP: outbound call");
        route.tried.push(route.current);
        if let Some(old) = self.outbound.remove(&id) {
            self.by_call_id.remove(old.call.call_id());
        }
        self.by_call_id.insert(call.call_id().to_owned(), id);
        self.outbound.insert(id, OutLeg { call, invite_key: None, current_key: None, reinvite: None, route });
        self.drain_uac(now, id, layer);
        Ok(())
    }

    /// After the current attempt failed with `status` before ringing: place the call on the
    /// next usable trunk. False when there is none (or failover does not apply), and the
    /// failure stands.
    fn fail_over(&mut self, now: Instant, id: LegId, status: u16, layer: &mut TransactionLayer) -> bool {
        // 408: nobody answered; 5xx (503 also for a transport error): the trunk or what is
        // behind it is unwell. Anything else (busy, not found, forbidden…) is the callee's
        // or the account's answer and would be the same on another trunk.
        let retryable = status == 408 || (500..600).contains(&status);
        let Some(leg) = self.outbound.get(&id) else {
            return false;
        };
        // A URI is one destination: there is nowhere else to try.
        if !retryable || leg.route.progressed || leg.route.direct.is_some() {
            return false;
        }
        let Some(next) = self.next_trunk(leg.route.chosen, &leg.route.tried) else {
            return false;
        };
        let Some(old) = self.outbound.remove(&id) else {
            return false;
        };
        self.by_call_id.remove(old.call.call_id());
        let mut route = old.route;
        tracing::info!(
            %id, status,
            failed = %self.trunks.get(route.current).map_or("?", |t| t.name.as_str()),
            next = %self.trunks.get(next).map_or("?", |t| t.name.as_str()),
            "SIP: outbound call failed on a trunk, trying the next"
        );
        route.current = next;
        match self.place(now, id, route, layer) {
            Ok(()) => true,
            Err((_, why)) => {
                tracing::warn!(%id, "SIP: failover impossible: {why}");
                false
            }
        }
    }

    /// An engine command for an outbound leg.
    fn outbound_command(&mut self, now: Instant, command: CallCommand, layer: &mut TransactionLayer) {
        let id = command.leg();
        let Some(leg) = self.outbound.get_mut(&id) else {
            return;
        };
        match command {
            CallCommand::Hangup { .. } => leg.call.hangup(now),
            CallCommand::AcceptReinvite { sdp, .. } => {
                if let Some((request, key, source)) = leg.reinvite.take() {
                    match leg.call.accept_reinvite(now, &request, &sdp, source) {
                        Ok(r) => send(layer, now, &key, r),
                        Err(e) => tracing::debug!(%id, error = %e, "SIP: cannot answer re-INVITE"),
                    }
                }
            }
            other => tracing::debug!(%id, command = ?other, "SIP: inbound-only command for an outbound leg, ignored"),
        }
        self.drain_uac(now, id, layer);
    }

    /// An event of one of an outbound leg's client transactions.
    fn uac_transaction_event(
        &mut self,
        now: Instant,
        id: LegId,
        key: TransactionKey,
        event: TransactionEvent,
        layer: &mut TransactionLayer,
    ) {
        if event == TransactionEvent::Terminated {
            self.uac_keys.remove(&key);
        }
        let Some(leg) = self.outbound.get_mut(&id) else {
            return; // the leg ended; its BYE or CANCEL transaction runs out on its own
        };
        let current_invite = leg.invite_key.as_ref() == Some(&key);
        match event {
            TransactionEvent::Provisional(r) | TransactionEvent::Final(r) => {
                if let Err(e) = leg.call.handle_response(now, &r) {
                    tracing::debug!(%id, error = %e, "SIP: response ignored");
                }
            }
            // §8.1.3.1: treat timer B as a 408 and a transport error as a 503.
            TransactionEvent::Timeout if current_invite => leg.call.handle_transaction_failure(now, 408),
            TransactionEvent::TransportError if current_invite => leg.call.handle_transaction_failure(now, 503),
            TransactionEvent::Terminated if current_invite => leg.invite_key = None,
            _ => {}
        }
        self.drain_uac(now, id, layer);
    }

    fn route_to_uac(
        &mut self,
        now: Instant,
        id: LegId,
        request: &Request,
        key: Option<TransactionKey>,
        source: SocketAddr,
        layer: &mut TransactionLayer,
    ) {
        let Some(leg) = self.outbound.get_mut(&id) else {
            return;
        };
        leg.current_key = key.clone();
        match leg.call.handle_request(now, request) {
            Ok(()) => {
                // A re-INVITE, or an UPDATE with an offer, waits for the engine's answer.
                let offer = request.method == Method::Invite || (request.method == Method::Update && !request.body.is_empty());
                if offer {
                    if let Some(key) = key {
                        leg.reinvite = Some((request.clone(), key, source));
                    }
                }
            }
            Err(e) => {
                tracing::debug!(%id, error = %e, "SIP: in-dialog request refused");
                if let (Some(key), false) = (&key, request.method == Method::Ack) {
                    send(layer, now, key, response_for(request, StatusCode::CallTransactionDoesNotExist));
                }
            }
        }
        self.drain_uac(now, id, layer);
    }

    /// Sends what an outbound call queued and turns its events into engine events.
    fn drain_uac(&mut self, now: Instant, id: LegId, layer: &mut TransactionLayer) {
        let Some(leg) = self.outbound.get_mut(&id) else {
            return;
        };
        while let Some(t) = leg.call.poll_transmit() {
            match t {
                UacTransmit::Request { request, destination } => {
                    // A refresh re-INVITE is no attempt of the call: timer B and transport
                    // errors count only for the INVITE that places it.
                    let invite = request.method == Method::Invite && leg.call.state() != super::uac::UacState::Confirmed;
                    match layer.send_request(now, request, destination, false) {
                        Ok(key) => {
                            self.uac_keys.insert(key.clone(), id);
                            if invite {
                                leg.invite_key = Some(key);
                            }
                        }
                        Err(e) => tracing::debug!(%id, error = %e, "SIP: cannot send request"),
                    }
                }
                UacTransmit::Outside { message, destination } => layer.send_outside(destination, message),
                UacTransmit::Answer(r) => {
                    if let Some(key) = &leg.current_key {
                        send(layer, now, key, r);
                    }
                }
            }
        }
        let events: Vec<UacEvent> = std::iter::from_fn(|| leg.call.poll_event()).collect();
        for event in events {
            match event {
                UacEvent::Ringing { early_sdp, .. } => {
                    if let Some(leg) = self.outbound.get_mut(&id) {
                        leg.route.progressed = true;
                    }
                    self.events.push_back(CallEvent::Ringing { leg: id, early_sdp })
                }
                UacEvent::Answered { sdp } => {
                    let Some(leg) = self.outbound.get(&id) else {
                        continue;
                    };
                    if let Some(dialog) = leg.call.dialog_id() {
                        self.by_dialog.insert(dialog, id);
                    }
                    let trunk = match &leg.route.direct {
                        Some((_, destination)) => sip_host_port(*destination),
                        None => self.trunks.get(leg.route.current).map(|t| t.name.clone()).unwrap_or_default(),
                    };
                    tracing::info!(%id, %trunk, "SIP: outbound call answered");
                    self.events.push_back(CallEvent::Answered { leg: id, sdp, trunk });
                }
                UacEvent::Failed { status, contact } => {
                    tracing::info!(%id, status, redirect = contact.as_deref().unwrap_or("-"), "SIP: outbound call failed");
                    if self.fail_over(now, id, status, layer) {
                        // The leg now belongs to the new attempt; this call's other events
                        // (none follow a failure) are moot.
                        return;
                    }
                    self.remove_outbound(id, CallEvent::Failed { leg: id, status }, layer);
                }
                UacEvent::Cancelled => self.remove_outbound(id, CallEvent::Ended { leg: id, reason: EndReason::Local }, layer),
                UacEvent::Terminated { by_remote } => {
                    let reason = if by_remote { EndReason::RemoteBye } else { EndReason::Local };
                    self.remove_outbound(id, CallEvent::Ended { leg: id, reason }, layer);
                }
                UacEvent::SessionExpired => {
                    tracing::info!(%id, "SIP: session timer expired on an outbound call, hung up");
                    self.remove_outbound(id, CallEvent::Ended { leg: id, reason: EndReason::SessionExpired }, layer);
                }
                UacEvent::ReInvite(request) => self.events.push_back(CallEvent::ReInvite { leg: id, sdp: request.body }),
                UacEvent::Info(request) => {
                    if let Some(key) = self.outbound.get(&id).and_then(|l| l.current_key.clone()) {
                        send(layer, now, &key, response_for(&request, StatusCode::OK));
                    }
                    if let Some(digit) = info_digit(&request) {
                        self.events.push_back(CallEvent::Dtmf { leg: id, digit });
                    }
                }
            }
        }
    }

    /// Forget an outbound leg and tell the engine `last`, once. Its INVITE transaction, if
    /// still alive (only after the CANCEL give-up: it sits in Proceeding with no timer), is
    /// dropped from the layer.
    fn remove_outbound(&mut self, id: LegId, last: CallEvent, layer: &mut TransactionLayer) {
        if let Some(leg) = self.outbound.remove(&id) {
            self.by_call_id.remove(leg.call.call_id());
            if let Some(dialog) = leg.call.dialog_id() {
                self.by_dialog.remove(&dialog);
            }
            if let (Some(key), true) = (&leg.invite_key, leg.call.cancel_gave_up()) {
                layer.abandon(key);
                self.uac_keys.remove(key);
            }
            self.events.push_back(last);
        }
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
        let transport = leg.transport;
        let port = port_for(self.local, self.tls_port, transport);
        let via = via_for(&leg.local_host, port, transport);
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
                    DialogTransmit::Ack(r) => layer.send_outside(leg.peer, SipMessage::Request(r)),
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
                DialogEvent::RefreshDue => self.send_refresh(now, id, layer),
                DialogEvent::SessionExpired => {
                    tracing::info!(%id, "SIP: session timer expired, hanging up");
                    self.hang_up(now, id, layer);
                    self.remove(id, EndReason::SessionExpired);
                }
                DialogEvent::PrackTimeout => {
                    tracing::info!(%id, "SIP: no PRACK for our reliable provisional, call refused 500");
                    self.remove(id, EndReason::Local);
                }
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

    /// Our session refresh for an inbound leg: a re-INVITE through a client transaction whose
    /// outcome [`Self::refresh_event`] passes back to the dialog.
    fn send_refresh(&mut self, now: Instant, id: LegId, layer: &mut TransactionLayer) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let via = via_for(&leg.local_host, port_for(self.local, self.tls_port, leg.transport), leg.transport);
        let Some(request) = leg.dialog.refresh(via) else {
            return;
        };
        tracing::debug!(%id, "SIP: refreshing the session");
        match layer.send_request(now, request, leg.peer, false) {
            Ok(key) => {
                self.refresh_keys.insert(key, id);
            }
            Err(e) => {
                tracing::debug!(%id, error = %e, "SIP: cannot send the session refresh");
                leg.dialog.refresh_failed();
            }
        }
    }

    /// An event of a refresh re-INVITE's client transaction.
    fn refresh_event(&mut self, now: Instant, key: TransactionKey, event: TransactionEvent, layer: &mut TransactionLayer) {
        let Some(id) = self.refresh_keys.get(&key).copied() else {
            return;
        };
        match event {
            TransactionEvent::Final(response) => self.refresh_response(now, id, &response, layer),
            // RFC 4028 §10: no answer to the refresh ends the session like a 408.
            TransactionEvent::Timeout | TransactionEvent::TransportError => {
                if let Some(leg) = self.legs.get_mut(&id) {
                    leg.dialog.refresh_failed();
                }
                self.drain(now, id, layer);
            }
            TransactionEvent::Terminated => {
                self.refresh_keys.remove(&key);
            }
            _ => {}
        }
    }

    fn refresh_response(&mut self, now: Instant, id: LegId, response: &rsip::Response, layer: &mut TransactionLayer) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let via = via_for(&leg.local_host, port_for(self.local, self.tls_port, leg.transport), leg.transport);
        leg.dialog.handle_response(now, response, via);
        self.drain(now, id, layer);
    }

    /// The inbound leg whose dialog a response (to our refresh) belongs to: its Call-ID and
    /// our tag as the From tag.
    fn inbound_leg_of(&self, response: &rsip::Response) -> Option<LegId> {
        let call_id = response.call_id_header().ok()?.value().trim().to_owned();
        let from_tag = response.from_header().ok()?.tag().ok()??.value().to_owned();
        self.legs
            .iter()
            .find(|(_, l)| l.dialog.id().call_id == call_id && l.dialog.id().local_tag == from_tag)
            .map(|(id, _)| *id)
    }

    /// Forget a leg and tell the engine, once.
    fn remove(&mut self, id: LegId, reason: EndReason) {
        if let Some(leg) = self.legs.remove(&id) {
            self.by_dialog.remove(leg.dialog.id());
            tracing::debug!(%id, ?reason, "SIP: leg ended");
            self.events.push_back(CallEvent::Ended { leg: id, reason });
        }
    }

    /// The trunks reached over a stream: where the driver opens (and reopens) a connection
    /// to, with its transport.
    pub fn stream_destinations(&self) -> Vec<(SocketAddr, Transport)> {
        self.trunks
            .iter()
            .filter(|t| t.transport.is_reliable())
            .filter_map(|t| Some((t.outbound_destination()?, t.transport)))
            .collect()
    }

    /// Whether `ip` is one of a configured trunk's addresses.
    pub fn is_trunk(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trunks.iter().any(|t| t.addresses.iter().any(|a| canonical(*a) == ip))
    }

    /// A peer from no trunk's address: the trunk whose inbound credentials it proves, or the
    /// response refusing it — 401 with a challenge (none or a stale answer), 403 otherwise.
    fn authenticate(&mut self, now: Instant, invite: &Request, source: SocketAddr) -> Result<String, rsip::Response> {
        use super::digest_server::AuthError;
        if self.trunks.iter().all(|t| t.inbound.is_none()) {
            tracing::info!(%source, "SIP: INVITE from no configured trunk, refused 403");
            return Err(response_for(invite, StatusCode::Forbidden));
        }
        let now_secs = now.saturating_duration_since(*self.epoch.get_or_insert(now)).as_secs();
        let challenge = |stale: bool| {
            let mut r = response_for(invite, StatusCode::Unauthorized);
            r.headers.push(Header::WwwAuthenticate(rsip::headers::WwwAuthenticate::new(self.verifier.challenge(now_secs, stale))));
            r
        };
        let answer = invite.headers.iter().find_map(|h| match h {
            Header::Authorization(a) => Some(a.value().to_owned()),
            _ => None,
        });
        let Some(answer) = answer else { return Err(challenge(false)) };
        let credentials_of = |user: &str| self.trunks.iter().find_map(|t| t.inbound.clone().filter(|c| c.username == user));
        match self.verifier.verify(&answer, "INVITE", now_secs, credentials_of) {
            Ok(user) => {
                let trunk = self.trunks.iter().find(|t| t.inbound.as_ref().is_some_and(|c| c.username == user)).map(|t| t.name.clone());
                tracing::info!(%source, user, ?trunk, "SIP: INVITE authenticated by digest");
                trunk.ok_or_else(|| response_for(invite, StatusCode::Forbidden))
            }
            Err(AuthError::Stale) => Err(challenge(true)),
            Err(AuthError::ForeignNonce) => Err(challenge(false)),
            Err(e) => {
                tracing::warn!(%source, error = %e, "SIP: INVITE digest refused, 403");
                Err(response_for(invite, StatusCode::Forbidden))
            }
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
    /// address — the host the INVITE was sent to; with `;transport=tcp`/`tls` when the INVITE
    /// came over a stream, so the peer's requests in the dialog come back the same way.
    fn contact_for(&self, invite: &Request, transport: Transport) -> Uri {
        let host = if self.local.ip().is_unspecified() {
            invite.uri.host_with_port.host.to_string()
        } else {
            self.local.ip().to_string()
        };
        let mut text = format!("sip:switchd@{}:{}", bracket(&host), port_for(self.local, self.tls_port, transport));
        if let Some(param) = transport.uri_param() {
            text.push_str(";transport=");
            text.push_str(param);
        }
        Uri::try_from(text.as_str()).unwrap_or_else(|_| invite.uri.clone())
    }

}

/// A Via for a request of ours from `host:port` over `transport`, with a fresh branch.
fn via_for(host: &str, port: u16, transport: Transport) -> rsip::headers::Via {
    rsip::headers::Via::new(format!(
        "SIP/2.0/{transport} {}:{port};branch=z9hG4bK{};rport",
        bracket(host),
        new_tag()
    ))
}

/// Our port for `transport`: UDP and TCP share `local`'s, TLS has its own.
fn port_for(local: SocketAddr, tls_port: Option<u16>, transport: Transport) -> u16 {
    match transport {
        Transport::Tls => tls_port.unwrap_or(local.port()),
        Transport::Udp | Transport::Tcp => local.port(),
    }
}

fn send(layer: &mut TransactionLayer, now: Instant, key: &TransactionKey, response: rsip::Response) {
    if let Err(e) = layer.send_response(now, key, response) {
        tracing::debug!(error = %e, "SIP: could not send response");
    }
}

/// `host:port` for a URI, IPv6 in brackets.
fn sip_host_port(addr: SocketAddr) -> String {
    format!("{}:{}", bracket(&addr.ip().to_string()), addr.port())
}

/// A number we can put in a SIP user part as is: digits, letters and `+ * . - _` (RFC 3261
/// §25.1 unreserved and user-unreserved characters that dial strings use).
/// A `sip:` URI whose host is an IP address, and the address it names (port 5060 unless
/// given). Anything else — `sips:`, a domain name (we resolve none), a `transport` other than
/// UDP (we open streams to trunks only) — is `None`.
pub fn direct_target(uri: &str) -> Option<(Uri, SocketAddr)> {
    let parsed = Uri::try_from(uri.trim()).ok()?;
    if parsed.scheme != Some(rsip::Scheme::Sip) || parsed.auth.is_none() {
        return None;
    }
    let streams = parsed.params.iter().any(|p| matches!(p, rsip::Param::Transport(t) if *t != rsip::Transport::Udp));
    if streams {
        return None;
    }
    let ip = match &parsed.host_with_port.host {
        rsip::Host::IpAddr(ip) => *ip,
        rsip::Host::Domain(_) => return None,
    };
    let port = parsed.host_with_port.port.map_or(5060, |p| *p.value());
    Some((parsed, SocketAddr::new(ip, port)))
}

fn valid_user(number: &str) -> bool {
    !number.is_empty()
        && number.len() <= 64
        && number.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '.' | '-' | '_'))
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

/// The option tags of the request's `Require` headers that we do not support (all but
/// `100rel` and `timer`).
fn unsupported_requirements(request: &Request) -> Vec<String> {
    request
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Require(r) => Some(r.value().to_owned()),
            Header::Other(name, value) if name.eq_ignore_ascii_case("require") => Some(value.clone()),
            _ => None,
        })
        .flat_map(|v| v.split(',').map(|t| t.trim().to_owned()).collect::<Vec<_>>())
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("100rel") && !t.eq_ignore_ascii_case("timer"))
        .collect()
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
/// A secret for the nonces of our digest challenges.
fn random_secret() -> [u8; 16] {
    match ring::rand::generate::<[u8; 16]>(&ring::rand::SystemRandom::new()) {
        Ok(r) => r.expose(),
        // Without an entropy source the nonces are still bound to this process's start.
        Err(_) => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            t.to_le_bytes()
        }
    }
}

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
