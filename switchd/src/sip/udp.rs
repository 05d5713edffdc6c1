//! The UDP driver: the thin tokio layer over the sans-IO [`TransactionLayer`] (DESIGN.md
//! decision 2), and switchd's first SIP presence.
//!
//! The transaction user is [`Calls`] (calls from trunks, their dialogs, the engine's
//! commands); what it leaves over is answered here: `OPTIONS` → `200 OK` with `Allow` and
//! `Accept` (trunk keep-alives succeed).
//!
//! Hostile or broken input never stops the loop. Empty and oversized datagrams are dropped,
//! CRLF keep-alives ignored, each source IP address is rate limited by a token bucket
//! ([`Limits`]; memory is bounded by evicting the oldest tracked source). Before rsip parses
//! a datagram, the header section is rewritten to the plain form rsip understands (folded
//! lines, compact names, whitespace around `:`/`;`/`=` are all valid SIP), and after it the
//! Content-Length is checked against the body (§18.3). A request that fails is answered
//! `400 Bad Request` (`501` for an unknown method, `505` for another SIP version) when a
//! tolerant line scan still finds the request line and Via, From, To, Call-ID and CSeq —
//! otherwise it is dropped.
//!
//! [`UdpCore`] is itself sans-IO (`(now, source, bytes)` in, datagrams and a deadline out) so
//! it is unit tested on a virtual clock; [`serve`] binds it to a [`tokio::net::UdpSocket`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use rsip::prelude::*;
use rsip::{Header, Method, Request, Response, SipMessage, StatusCode};

use super::message::response_for;
use super::stream::{ConnId, FrameError, Transport};
use super::transaction::{LayerEvent, TransactionError, TransactionKey, TransactionLayer};
use super::ua::{new_tag, CallCommand, CallEvent, Calls};
use super::Timers;
use crate::metrics::Metrics;

/// Datagrams longer than this (64 KiB) are dropped unread.
pub const MAX_DATAGRAM: usize = 64 * 1024;

/// What `OPTIONS` and `405` answers advertise.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK";

/// Per-source rate limiting. Configured trunks (trusted carriers, whose every call and its
/// ACK and BYE come from one or two addresses) get their own, much larger buckets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Sustained messages per second per source IP address.
    pub rate_per_sec: f64,
    /// Bucket size: how many messages a source may send in a burst.
    pub burst: f64,
    /// The same for each trunk address.
    pub trunk_rate_per_sec: f64,
    pub trunk_burst: f64,
    /// How many sources are tracked at most; beyond it the oldest is forgotten.
    pub max_sources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate_per_sec: 50.0,
            burst: 100.0,
            trunk_rate_per_sec: 5_000.0,
            trunk_burst: 10_000.0,
            max_sources: 10_000,
        }
    }
}

/// Token buckets keyed by source IP address (not port: varying the port must not buy a
/// sender a fresh bucket), in bounded memory.
#[derive(Debug)]
struct RateLimiter {
    limits: Limits,
    buckets: HashMap<IpAddr, Bucket>,
    /// Insertion order, for evicting the oldest source. Entries leave `buckets` only through
    /// eviction, so the two stay in step.
    order: VecDeque<IpAddr>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            buckets: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Takes a token for `ip`; false when its bucket is empty.
    fn allow(&mut self, now: Instant, ip: IpAddr) -> bool {
        let limits = self.limits;
        if let Some(b) = self.buckets.get_mut(&ip) {
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * limits.rate_per_sec).min(limits.burst);
            b.last = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                return true;
            }
            return false;
        }
        while self.buckets.len() >= limits.max_sources.max(1) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.buckets.remove(&old);
        }
        self.buckets.insert(
            ip,
            Bucket {
                tokens: limits.burst - 1.0,
                last: now,
            },
        );
        self.order.push_back(ip);
        limits.burst >= 1.0
    }

    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// What the core wants done: bytes to a UDP peer or onto a stream connection, or a stream
/// connection closed (after what was queued for it before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A datagram to `to`.
    Datagram { to: SocketAddr, bytes: Vec<u8> },
    /// Bytes to write on stream connection `conn`.
    Stream { conn: ConnId, bytes: Vec<u8> },
    /// Close `conn` once what was queued for it is written (it cannot be read on).
    Close { conn: ConnId },
    /// Open connection `conn` to `peer` over `transport` (a trunk reached over a stream).
    /// [`Output::Stream`]s for it follow at once: the driver queues them until it is open.
    /// A connection that cannot be opened is reported with
    /// [`UdpCore::handle_connect_failed`], its closing later with
    /// [`UdpCore::handle_stream_closed`].
    Connect { conn: ConnId, peer: SocketAddr, transport: Transport },
}

/// The sans-IO heart of the SIP listener, for every transport: a [`TransactionLayer`], the
/// call transaction user ([`Calls`]), the malformed-input handling and the rate limiter.
///
/// UDP datagrams come in through [`Self::handle_datagram`]; stream connections (TCP, TLS)
/// are announced with [`Self::handle_stream_opened`] and then deliver whole messages, cut by
/// [`super::stream::StreamFramer`], through [`Self::handle_stream_message`].
///
/// How a transmit finds its transport: the transaction layer and [`Calls`] address peers by
/// socket address only. While a stream connection is open its peer address maps to it, so a
/// response to a request that came on it goes back on it (§18.2.2) and a request we send to
/// that address (a BYE to the caller) goes on it too; every other address is UDP.
/// [`Self::poll_output`] says which.
///
/// Trunks configured with a stream transport ([`super::ua::TrunkPeer::transport`]) are the
/// exception: their address is a stream peer for good. Bytes for it with no connection open
/// make the core ask for one ([`Output::Connect`]) and queue them on it; when it closes the
/// next bytes open another, and when it cannot be opened the client transactions to the
/// trunk fail with a transport error (503: a call fails over, a registration retries).
pub struct UdpCore {
    layer: TransactionLayer,
    calls: Calls,
    limiter: RateLimiter,
    trunk_limiter: RateLimiter,
    metrics: Arc<Metrics>,
    out: VecDeque<Output>,
    /// Open stream connections: their peer and transport.
    conns: HashMap<ConnId, (SocketAddr, Transport)>,
    /// The connection of each stream peer (a peer address is one TCP connection at a time).
    by_peer: HashMap<SocketAddr, ConnId>,
    /// Trunks we reach over a stream, by destination.
    dialed: HashMap<SocketAddr, Transport>,
    /// The next id for a connection we open ([`ConnId::DIALED_BASE`] upwards).
    next_dialed: u64,
}

impl UdpCore {
    /// A core with the given timers and limits, counting into `metrics`, handing calls to
    /// `calls`.
    pub fn new(timers: Timers, limits: Limits, metrics: Arc<Metrics>, calls: Calls) -> Self {
        let dialed: HashMap<SocketAddr, Transport> = calls.stream_destinations().into_iter().collect();
        let mut layer = TransactionLayer::new(timers);
        // Reliable from the first request on: no retransmissions (§17.1.1.2 Timer A off,
        // §17.1.2.2 Timer E off), while Timers B and F still bound each transaction.
        for (&peer, &transport) in &dialed {
            layer.set_peer_transport(peer, Some(transport));
        }
        Self {
            layer,
            calls,
            limiter: RateLimiter::new(limits),
            trunk_limiter: RateLimiter::new(Limits {
                rate_per_sec: limits.trunk_rate_per_sec,
                burst: limits.trunk_burst,
                ..limits
            }),
            metrics,
            out: VecDeque::new(),
            conns: HashMap::new(),
            by_peer: HashMap::new(),
            dialed,
            next_dialed: ConnId::DIALED_BASE,
        }
    }

    /// One datagram received from `source` at `now`.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        if bytes.is_empty() || bytes.len() > MAX_DATAGRAM {
            tracing::debug!(%source, len = bytes.len(), "SIP: dropping empty or oversized datagram");
            return;
        }
        self.handle_bytes(now, source, Transport::Udp, bytes);
    }

    /// A stream connection `conn` from `peer` over `transport` is open. Until
    /// [`Self::handle_stream_closed`], whatever goes to `peer` goes on it.
    pub fn handle_stream_opened(&mut self, conn: ConnId, peer: SocketAddr, transport: Transport) {
        if let Some(old) = self.by_peer.insert(peer, conn) {
            self.conns.remove(&old);
        }
        self.conns.insert(conn, (peer, transport));
        self.layer.set_peer_transport(peer, Some(transport));
    }

    /// Stream connection `conn` is gone. Transactions and calls with its peer stay (a peer may
    /// reconnect); what is sent to it meanwhile goes by UDP to the same address.
    ///
    /// A trunk we reach over a stream stays a stream peer: the next bytes for it open a new
    /// connection (what was in flight on the old one is left to Timers B and F).
    pub fn handle_stream_closed(&mut self, conn: ConnId) {
        if let Some((peer, _)) = self.conns.remove(&conn) {
            if self.by_peer.get(&peer) == Some(&conn) {
                self.by_peer.remove(&peer);
                if !self.dialed.contains_key(&peer) {
                    self.layer.set_peer_transport(peer, None);
                }
            }
        }
    }

    /// The connection `conn` asked for by [`Output::Connect`] could not be opened: the
    /// client transactions to its peer fail with a transport error (§8.1.3.1: as a 503).
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId) {
        let Some((peer, transport)) = self.conns.get(&conn).copied() else {
            return;
        };
        tracing::info!(%conn, %peer, %transport, "SIP: cannot connect to the trunk");
        self.handle_stream_closed(conn);
        self.layer.handle_transport_error_to(now, peer);
        self.drain(now, None);
    }

    /// One whole message (as [`super::stream::Framed::Message`]) read on `conn` at `now`.
    /// Unknown connections are ignored.
    pub fn handle_stream_message(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(&(source, transport)) = self.conns.get(&conn) else {
            return;
        };
        self.handle_bytes(now, source, transport, bytes);
    }

    /// `conn` delivered something that cannot be framed ([`super::stream::Framed::Invalid`]):
    /// a request with enough headers is answered `400`, then the connection is closed.
    pub fn handle_stream_invalid(&mut self, conn: ConnId, headers: &[u8], error: &FrameError) {
        let Some(&(source, _)) = self.conns.get(&conn) else {
            return;
        };
        let scan = Scan::of(headers);
        self.malformed(source, TransactionError::BadHeader(error.to_string()), Some(&scan));
        self.out.push_back(Output::Close { conn });
    }

    /// A message from `source` over `transport`: rate limited, normalised, checked, handed to
    /// the transaction layer (reliable for streams).
    fn handle_bytes(&mut self, now: Instant, source: SocketAddr, transport: Transport, bytes: &[u8]) {
        let limiter = if self.calls.is_trunk(source.ip()) {
            &mut self.trunk_limiter
        } else {
            &mut self.limiter
        };
        if !limiter.allow(now, source.ip()) {
            Metrics::inc(&self.metrics.sip_rate_limited);
            tracing::trace!(%source, "SIP: rate limited");
            return;
        }
        if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            return; // RFC 5626 CRLF keep-alive (or a lone CRLF)
        }
        Metrics::inc(&self.metrics.sip_messages);
        let normalized = normalize(bytes);
        let scan = Scan::of(normalized.as_deref().unwrap_or(bytes));
        let call_id = scan.call_id.map(String::from_utf8_lossy);
        let span =
            tracing::debug_span!("sip", %source, call_id = call_id.as_deref().unwrap_or("-"));
        let _entered = span.enter();
        let checked = normalized
            .as_deref()
            .map_err(Clone::clone)
            .and_then(|b| SipMessage::try_from(b).map_err(|e| TransactionError::Parse(e.to_string())))
            .and_then(check_content_length)
            .and_then(|msg| match msg {
                SipMessage::Request(r) => check_request(&r).map(|()| SipMessage::Request(r)),
                response => Ok(response),
            });
        match checked {
            Ok(msg) => self
                .layer
                .handle_message(now, source, transport.is_reliable(), msg),
            Err(error) => self.malformed(source, error, Some(&scan)),
        }
        self.drain(now, Some((source, &scan)));
    }

    /// Counts, logs and, when the scan found enough, answers a message that is no valid SIP.
    fn malformed(&mut self, source: SocketAddr, error: TransactionError, scan: Option<&Scan<'_>>) {
        Metrics::inc(&self.metrics.sip_malformed);
        let reply = scan.and_then(Scan::bad_request);
        tracing::debug!(%source, %error, answered = reply.is_some(), "SIP: malformed message");
        if let Some(reply) = reply {
            let out = self.route(source, reply);
            self.out.push_back(out);
        }
    }

    /// Fire the transaction and dialog timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        self.calls.handle_timeout(now, &mut self.layer);
        self.drain(now, None);
    }

    /// Start the trunks' registrations and keep-alives (see [`Calls::start`]).
    pub fn start(&mut self, now: Instant) {
        self.calls.start(now, &mut self.layer);
        self.drain(now, None);
    }

    /// Registration and keep-alive state of every trunk.
    pub fn trunk_status(&self) -> Vec<super::trunks::TrunkStatus> {
        self.calls.trunk_status()
    }

    /// A command from the engine for one of its calls.
    pub fn handle_command(&mut self, now: Instant, command: CallCommand) {
        self.calls.handle_command(now, command, &mut self.layer);
        self.drain(now, None);
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.calls.poll_event()
    }

    /// Calls alive now.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// The next datagram to send and where to, for UDP-only users: a stream transmit is
    /// given with its peer's address, a close is skipped. Drivers use [`Self::poll_output`].
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        loop {
            match self.out.pop_front()? {
                Output::Datagram { to, bytes } => return Some((to, bytes)),
                Output::Stream { conn, bytes } => {
                    if let Some((peer, _)) = self.conns.get(&conn) {
                        return Some((*peer, bytes));
                    }
                }
                Output::Close { .. } | Output::Connect { .. } => {}
            }
        }
    }

    /// The next thing to send (or connection to close), with its transport.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Where bytes for `to` go: its stream connection if one is open, a new connection if it
    /// is a trunk we reach over a stream, else a datagram.
    fn route(&mut self, to: SocketAddr, bytes: Vec<u8>) -> Output {
        if let Some(&conn) = self.by_peer.get(&to) {
            return Output::Stream { conn, bytes };
        }
        let Some(&transport) = self.dialed.get(&to) else {
            return Output::Datagram { to, bytes };
        };
        let conn = ConnId(self.next_dialed);
        self.next_dialed += 1;
        self.conns.insert(conn, (to, transport));
        self.by_peer.insert(to, conn);
        self.out.push_back(Output::Connect { conn, peer: to, transport });
        Output::Stream { conn, bytes }
    }

    /// The trunks reached over a stream (destination and transport).
    pub fn stream_destinations(&self) -> Vec<(SocketAddr, Transport)> {
        self.dialed.iter().map(|(&peer, &t)| (peer, t)).collect()
    }

    /// Stream connections open now.
    pub fn stream_connections(&self) -> usize {
        self.conns.len()
    }

    /// When [`Self::handle_timeout`] is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.layer.poll_timeout(), self.calls.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Live transactions (for tests and diagnostics).
    pub fn transactions(&self) -> usize {
        self.layer.len()
    }

    /// Sources the rate limiter currently tracks.
    pub fn tracked_sources(&self) -> usize {
        self.limiter.len()
    }

    /// Drain the layer: transmits to `out`, events to the stub TU. `datagram` is the one just
    /// handled (its source and scan), to answer a `Malformed` event with 400.
    fn drain(&mut self, now: Instant, datagram: Option<(SocketAddr, &Scan<'_>)>) {
        loop {
            while let Some(t) = self.layer.poll_transmit() {
                let out = self.route(t.destination, t.message.to_string().into_bytes());
                self.out.push_back(out);
            }
            let Some(event) = self.layer.poll_event() else {
                break;
            };
            let Some(event) = self.calls.handle_layer_event(now, event, &mut self.layer) else {
                continue;
            };
            match event {
                LayerEvent::NewServerTransaction {
                    key,
                    request,
                    source,
                } => {
                    self.answer(now, &key, &request, source);
                }
                LayerEvent::Malformed { source, error } => {
                    let scan = datagram.filter(|(s, _)| *s == source).map(|(_, scan)| scan);
                    self.malformed(source, error, scan);
                }
                LayerEvent::StrayResponse { response, source } => {
                    tracing::debug!(%source, status = response.status_code.code(), "SIP: response matching no transaction, dropped");
                }
                LayerEvent::StrayAck { source, .. } => {
                    tracing::debug!(%source, "SIP: ACK matching no transaction, dropped");
                }
                LayerEvent::Transaction { key, event } => {
                    tracing::trace!(?key, ?event, "SIP transaction event");
                }
            }
        }
        self.update_trunk_gauges();
    }

    /// `rexian_trunks_up` and `rexian_trunks_registered` follow the trunks' state (a handful
    /// of trunks: recounting after each input is cheaper than tracking every change).
    fn update_trunk_gauges(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let status = self.calls.trunk_status();
        let up = status.iter().filter(|t| t.destination.is_some() && t.up).count();
        let registered = status
            .iter()
            .filter(|t| matches!(t.registration, super::trunks::RegistrationState::Registered { .. }))
            .count();
        self.metrics.trunks_up.store(i64::try_from(up).unwrap_or(i64::MAX), Relaxed);
        self.metrics.trunks_registered.store(i64::try_from(registered).unwrap_or(i64::MAX), Relaxed);
    }

    /// What [`Calls`] leaves over: OPTIONS outside a dialog gets 200; anything else 481.
    fn answer(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        request: &Request,
        source: SocketAddr,
    ) {
        let (status, extra): (StatusCode, Vec<Header>) = match &request.method {
            Method::Options => (
                StatusCode::OK,
                vec![
                    Header::Allow(rsip::headers::Allow::new(ALLOW)),
                    Header::Supported(rsip::headers::Supported::new(super::dialog::SUPPORTED)),
                    Header::Accept(rsip::headers::Accept::new("application/sdp")),
                ],
            ),
            _ => (StatusCode::CallTransactionDoesNotExist, Vec::new()),
        };
        tracing::debug!(%source, method = %request.method, status = status.code(), "SIP: answering");
        let response = with_to_tag(response_for(request, status), extra);
        if let Err(e) = self.layer.send_response(now, key, response) {
            tracing::debug!(%source, error = %e, "SIP: could not send response");
        }
    }
}

impl std::fmt::Debug for UdpCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpCore")
            .field("layer", &self.layer)
            .field("sources", &self.limiter.len())
            .field("queued", &self.out.len())
            .finish()
    }
}

/// The headers every request needs (§8.1.1) and the transaction layer does not check: a
/// request without them is answered by the malformed path, never reaches a transaction.
fn check_request(request: &Request) -> Result<(), TransactionError> {
    let cseq = request
        .cseq_header()
        .map_err(|_| TransactionError::MissingHeader("CSeq"))?
        .typed()
        .map_err(|e| TransactionError::BadHeader(format!("CSeq: {e}")))?;
    if cseq.method != request.method {
        return Err(TransactionError::BadHeader(
            "CSeq method differs from the request's".into(),
        ));
    }
    request
        .from_header()
        .map_err(|_| TransactionError::MissingHeader("From"))?
        .typed()
        .map_err(|e| TransactionError::BadHeader(format!("From: {e}")))?;
    request
        .to_header()
        .map_err(|_| TransactionError::MissingHeader("To"))?
        .typed()
        .map_err(|e| TransactionError::BadHeader(format!("To: {e}")))?;
    request
        .call_id_header()
        .map_err(|_| TransactionError::MissingHeader("Call-ID"))?;
    Ok(())
}

/// Compact header names (RFC 3261 §7.3.3, and the common later ones) and their full forms.
const COMPACT: [(u8, &str); 15] = [
    (b'i', "Call-ID"),
    (b'm', "Contact"),
    (b'e', "Content-Encoding"),
    (b'l', "Content-Length"),
    (b'c', "Content-Type"),
    (b'f', "From"),
    (b's', "Subject"),
    (b'k', "Supported"),
    (b't', "To"),
    (b'v', "Via"),
    (b'o', "Event"),
    (b'u', "Allow-Events"),
    (b'r', "Refer-To"),
    (b'b', "Referred-By"),
    (b'x', "Session-Expires"),
];

/// The header section rewritten to the plain `Name: value` lines rsip 0.4 parses: RFC 3261
/// lets peers fold a header onto continuation lines (§7.3.1), put whitespace before the colon,
/// and use compact names (§7.3.3), and rsip accepts none of these, so valid messages from
/// such peers were answered 400. Control characters (NUL and the like) in the start line or
/// headers are refused: no SIP grammar allows them, and they would reach logs and CDRs.
/// A datagram without the empty line that ends the headers is returned unchanged for rsip
/// to judge. The body is kept byte for byte.
fn normalize(bytes: &[u8]) -> Result<Vec<u8>, TransactionError> {
    // Logical lines first (continuations joined with one space), then each header rewritten.
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut start = 0;
    let mut body_at = None;
    while start < bytes.len() {
        let end = bytes[start..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| start + i);
        let line = &bytes[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let next = end + 1;
        if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(TransactionError::BadHeader("control character in the headers".into()));
        }
        match lines.last_mut() {
            _ if start > 0 && line.is_empty() => {
                body_at = Some(next.min(bytes.len()));
                break;
            }
            Some(previous) if line[0] == b' ' || line[0] == b'\t' => {
                previous.push(b' ');
                previous.extend_from_slice(line.trim_ascii());
            }
            _ => lines.push(line.to_vec()),
        }
        start = next;
    }
    let Some(body_at) = body_at else {
        return Ok(bytes.to_vec());
    };
    let mut out = Vec::with_capacity(bytes.len() + 32);
    for (i, line) in lines.iter().enumerate() {
        if i == 0 {
            out.extend_from_slice(line);
            continue;
        }
        out.extend_from_slice(b"\r\n");
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            out.extend_from_slice(line);
            continue;
        };
        let name = line[..colon].trim_ascii();
        let name = match name {
            [c] => COMPACT.iter().find(|(s, _)| s.eq_ignore_ascii_case(c)).map_or(name, |(_, f)| f.as_bytes()),
            _ => name,
        };
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        let value = line[colon + 1..].trim_ascii();
        if PARAM_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h.as_bytes())) {
            squeeze_params(value, &mut out);
        } else {
            out.extend_from_slice(value);
        }
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&bytes[body_at..]);
    Ok(out)
}

/// The headers whose `;param=value` lists we read (transaction keys, dialogs, targets).
const PARAM_HEADERS: [&str; 6] = ["Via", "From", "To", "Contact", "Route", "Record-Route"];

/// Appends `value` without the whitespace around `;` and `=` outside quoted strings: SEMI and
/// EQUAL may carry whitespace on both sides (§25.1, RFC 4475's "wsinv" has `; tag = x`), and
/// rsip's parameter parser refuses it.
fn squeeze_params(value: &[u8], out: &mut Vec<u8>) {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in value.iter().enumerate() {
        if quoted {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = false;
            }
            continue;
        }
        let blank = |c: &&u8| matches!(c, b' ' | b'\t');
        match b {
            b' ' | b'\t' => {
                let next = value[i + 1..].iter().find(|c| !blank(c));
                if !matches!(next, Some(b';' | b'=')) && !matches!(out.last(), Some(b';' | b'=')) {
                    out.push(b);
                }
            }
            b'"' => {
                quoted = true;
                out.push(b);
            }
            _ => out.push(b),
        }
    }
}

/// RFC 3261 §18.3 on datagrams: a Content-Length larger than the body (or no number at all)
/// makes the message broken — it is refused, never processed with a guessed body; a smaller
/// one is the end of the body and the bytes after it are discarded. rsip takes whatever
/// follows the headers as the body and never checks.
fn check_content_length(mut msg: SipMessage) -> Result<SipMessage, TransactionError> {
    let declared = msg.headers().iter().find_map(|h| match h {
        Header::ContentLength(l) => Some(l.value().to_owned()),
        _ => None,
    });
    if let Some(declared) = declared {
        let length: usize = declared
            .trim()
            .parse()
            .map_err(|_| TransactionError::BadHeader(format!("Content-Length: {declared}")))?;
        let body = msg.body_mut();
        if length > body.len() {
            return Err(TransactionError::BadHeader(format!(
                "Content-Length {length} but a body of {} bytes",
                body.len()
            )));
        }
        body.truncate(length);
    }
    Ok(msg)
}

/// Adds a To tag (final responses need one, §8.2.6.2) and `extra` headers before
/// Content-Length.
fn with_to_tag(mut response: Response, extra: Vec<Header>) -> Response {
    let tag = new_tag();
    for header in response.headers.iter_mut() {
        if let Header::To(to) = header {
            if matches!(to.tag(), Ok(None)) {
                let _ = to.mut_tag(rsip::param::Tag::new(tag.clone()));
            }
        }
    }
    response
        .headers
        .retain(|h| !matches!(h, Header::ContentLength(_)));
    response.headers.extend(extra);
    response.headers.push(Header::ContentLength(0.into()));
    response
}

/// A tolerant line scan of a datagram rsip may not parse: the start line and the headers a
/// `400 Bad Request` must copy (§8.2.6.2), by full or compact name.
#[derive(Debug, Default)]
struct Scan<'a> {
    start_line: &'a [u8],
    vias: Vec<&'a [u8]>,
    from: Option<&'a [u8]>,
    to: Option<&'a [u8]>,
    call_id: Option<&'a [u8]>,
    cseq: Option<&'a [u8]>,
}

impl<'a> Scan<'a> {
    fn of(bytes: &'a [u8]) -> Self {
        let mut scan = Scan::default();
        let mut lines = bytes
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        scan.start_line = lines.next().unwrap_or_default();
        for line in lines {
            if line.is_empty() {
                break; // end of headers
            }
            if line[0] == b' ' || line[0] == b'\t' {
                continue; // folded continuation: not worth reassembling here
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = line[..colon].trim_ascii();
            let value = line[colon + 1..].trim_ascii();
            if value.is_empty() {
                continue;
            }
            let is = |full: &str, short: &str| {
                name.eq_ignore_ascii_case(full.as_bytes())
                    || name.eq_ignore_ascii_case(short.as_bytes())
            };
            if is("Via", "v") {
                scan.vias.push(value);
            } else if is("From", "f") {
                scan.from.get_or_insert(value);
            } else if is("To", "t") {
                scan.to.get_or_insert(value);
            } else if is("Call-ID", "i") {
                scan.call_id.get_or_insert(value);
            } else if is("CSeq", "CSeq") {
                scan.cseq.get_or_insert(value);
            }
        }
        scan
    }

    /// The request's method and version when the start line looks like
    /// `METHOD SP URI SP SIP/x.y`.
    fn request_line(&self) -> Option<(&'a [u8], &'a [u8])> {
        let mut parts = self
            .start_line
            .split(|&b| b == b' ')
            .filter(|p| !p.is_empty());
        let (method, _uri, version) = (parts.next()?, parts.next()?, parts.next()?);
        let token = |b: &u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b);
        let number = |n: &[u8]| !n.is_empty() && n.iter().all(u8::is_ascii_digit);
        let (major, minor) = version
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case(b"SIP/"))
            .and_then(|_| version[4..].split_at_checked(version[4..].iter().position(|&b| b == b'.')?))?;
        (parts.next().is_none()
            && number(major)
            && number(&minor[1..])
            && !method.is_empty()
            && method.iter().all(token))
        .then_some((method, version))
    }

    /// The answer to a request we cannot process, when it is a request (not an ACK) with
    /// everything to answer: `505` for another SIP version (§21.5.6; RFC 4475's "badvers"), `501`
    /// for a method we do not know (§8.2.1, §21.5.2; its CSeq names the same method), else
    /// `400 Bad Request`.
    fn bad_request(&self) -> Option<Vec<u8>> {
        let (method, version) = self.request_line()?;
        if method.eq_ignore_ascii_case(b"ACK") || self.vias.is_empty() {
            return None;
        }
        let (from, to, call_id, cseq) = (self.from?, self.to?, self.call_id?, self.cseq?);
        let cseq_method = cseq.split(|&b| b == b' ' || b == b'\t').rfind(|p| !p.is_empty());
        let unknown_method = std::str::from_utf8(method).map_or(true, |m| m.parse::<Method>().is_err());
        let status: &[u8] = if !version.eq_ignore_ascii_case(b"SIP/2.0") {
            b"505 Version Not Supported"
        } else if unknown_method && cseq_method == Some(method) {
            b"501 Not Implemented"
        } else {
            b"400 Bad Request"
        };
        let mut out = b"SIP/2.0 ".to_vec();
        out.extend_from_slice(status);
        out.extend_from_slice(b"\r\n");
        for via in &self.vias {
            push_header(&mut out, "Via", via);
        }
        push_header(&mut out, "From", from);
        push_header(&mut out, "To", to);
        if !to.to_ascii_lowercase().windows(5).any(|w| w == b";tag=") {
            out.truncate(out.len() - 2);
            out.extend_from_slice(format!(";tag={}\r\n", new_tag()).as_bytes());
        }
        push_header(&mut out, "Call-ID", call_id);
        push_header(&mut out, "CSeq", cseq);
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        Some(out)
    }
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Serves SIP over `socket` with `core` until the task is dropped: call events go to
/// `events`, the engine's commands come from `commands`. Never returns on bad input.
pub async fn serve(
    socket: tokio::net::UdpSocket,
    core: UdpCore,
    events: tokio::sync::mpsc::UnboundedSender<CallEvent>,
    commands: tokio::sync::mpsc::UnboundedReceiver<CallCommand>,
) {
    serve_all(socket, None, core, events, commands).await;
}

/// [`serve`], and the stream connections of `streams` (TCP, TLS) feeding the same core.
pub async fn serve_all(
    socket: tokio::net::UdpSocket,
    mut streams: Option<super::tcp::StreamHub>,
    mut core: UdpCore,
    events: tokio::sync::mpsc::UnboundedSender<CallEvent>,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<CallCommand>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut engine_gone = false;
    core.start(Instant::now());
    loop {
        while let Some(output) = core.poll_output() {
            match (output, streams.as_mut()) {
                (Output::Datagram { to, bytes }, _) => {
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        tracing::debug!(destination = %to, error = %e, "SIP: send failed");
                    }
                }
                (Output::Stream { conn, bytes }, Some(hub)) => hub.send(&mut core, conn, bytes),
                (Output::Close { conn }, Some(hub)) => hub.close(conn),
                (Output::Connect { conn, peer, transport }, Some(hub)) => {
                    hub.connect(&mut core, Instant::now(), conn, peer, transport);
                }
                // No hub (the daemon makes one when a trunk needs it): nothing can connect.
                (Output::Connect { conn, .. }, None) => core.handle_connect_failed(Instant::now(), conn),
                // No streams: the core never heard of a connection.
                (Output::Stream { .. } | Output::Close { .. }, None) => {}
            }
        }
        while let Some(event) = core.poll_event() {
            // Without an engine the calls simply end by timeout or BYE; nothing to do here.
            let _ = events.send(event);
        }
        let deadline = core.poll_timeout();
        let timer = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, source)) => core.handle_datagram(Instant::now(), source, &buf[..n]),
                Err(e) => {
                    // E.g. ICMP errors surfacing on the socket: never fatal, but do not spin.
                    tracing::debug!(error = %e, "SIP: receive failed");
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            },
            input = async {
                match streams.as_mut() {
                    Some(hub) => hub.recv().await,
                    None => std::future::pending().await,
                }
            } => match (input, streams.as_mut()) {
                (Some(input), Some(hub)) => hub.apply(&mut core, Instant::now(), input),
                // Every listener gone (cannot happen while they loop): stop polling them.
                _ => streams = None,
            },
            command = commands.recv(), if !engine_gone => match command {
                Some(c) => core.handle_command(Instant::now(), c),
                None => engine_gone = true,
            },
            () = timer => core.handle_timeout(Instant::now()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PEER: &str = "192.0.2.7:5060";

    fn calls() -> Calls {
        let trunk = crate::sip::ua::TrunkPeer {
            name: "carrier".into(),
            addresses: vec!["192.0.2.7".parse().unwrap()],
            ..Default::default()
        };
        Calls::new(Timers::default(), "198.51.100.1:5060".parse().unwrap(), vec![trunk], 10)
    }

    fn core() -> UdpCore {
        UdpCore::new(
            Timers::default(),
            Limits::default(),
            Arc::new(Metrics::default()),
            calls(),
        )
    }

    fn request(method: &str, branch: &str) -> String {
        format!(
            "{method} sip:hotline@198.51.100.1 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:trunk@192.0.2.7>;tag=abc\r\n\
             To: <sip:hotline@198.51.100.1>\r\n\
             Call-ID: {branch}@192.0.2.7\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    fn replies(core: &mut UdpCore) -> Vec<String> {
        std::iter::from_fn(|| core.poll_transmit())
            .map(|(_, b)| String::from_utf8(b).unwrap())
            .collect()
    }

    fn status(reply: &str) -> u16 {
        Response::try_from(reply).unwrap().status_code.code()
    }

    #[test]
    fn options_gets_200_with_allow_accept_and_to_tag() {
        let mut c = core();
        c.handle_datagram(
            Instant::now(),
            PEER.parse().unwrap(),
            request("OPTIONS", "o1").as_bytes(),
        );
        let r = replies(&mut c);
        assert_eq!(r.len(), 1, "{r:?}");
        let resp = Response::try_from(r[0].as_str()).unwrap();
        assert_eq!(resp.status_code.code(), 200);
        assert!(r[0].contains(&format!("Allow: {ALLOW}")), "{}", r[0]);
        assert!(r[0].contains("Accept: application/sdp"));
        assert!(resp.to_header().unwrap().tag().unwrap().is_some());
    }

    #[test]
    fn methods_get_their_stub_answers() {
        let mut c = core();
        let now = Instant::now();
        for (method, code) in [
            ("REGISTER", 405),
            ("BYE", 481),
            ("CANCEL", 481),
            ("INFO", 481),
        ] {
            c.handle_datagram(
                now,
                PEER.parse().unwrap(),
                request(method, method).as_bytes(),
            );
            let r = replies(&mut c);
            assert_eq!(r.len(), 1, "{method}: {r:?}");
            assert_eq!(status(&r[0]), code, "{method}");
        }
    }

    #[test]
    fn invite_from_no_trunk_gets_403_retransmitted_until_the_ack() {
        let mut c = core();
        let t0 = Instant::now();
        let peer: SocketAddr = "192.0.2.99:5060".parse().unwrap();
        let invite = request("INVITE", "inv");
        c.handle_datagram(t0, peer, invite.as_bytes());
        assert_eq!(status(&replies(&mut c)[0]), 403);
        // A retransmitted INVITE gets the 403 again, not a new transaction.
        c.handle_datagram(t0 + Duration::from_millis(100), peer, invite.as_bytes());
        assert_eq!(status(&replies(&mut c)[0]), 403);
        assert_eq!(c.transactions(), 1);
        // Timer G retransmits.
        let g = c.poll_timeout().unwrap();
        c.handle_timeout(g);
        assert_eq!(status(&replies(&mut c)[0]), 403);
        // The ACK (same branch) is absorbed: no reply, no more retransmissions.
        let ack = request("ACK", "inv");
        c.handle_datagram(g + Duration::from_millis(10), peer, ack.as_bytes());
        assert!(replies(&mut c).is_empty());
        let mut t = g;
        while let Some(d) = c.poll_timeout() {
            t = d;
            c.handle_timeout(d);
            assert!(replies(&mut c).is_empty());
        }
        assert!(t < g + Duration::from_secs(10), "timer I ends it");
        assert_eq!(c.transactions(), 0);
    }

    #[test]
    fn broken_requests_get_400_when_answerable_else_nothing() {
        let mut c = core();
        let now = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        // A Via without the magic cookie: the layer cannot key it; all five headers present.
        let no_cookie = request("OPTIONS", "x").replace("branch=z9hG4bKx", "branch=1234");
        c.handle_datagram(now, peer, no_cookie.as_bytes());
        let r = replies(&mut c);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].starts_with("SIP/2.0 400 Bad Request\r\n"), "{}", r[0]);
        let resp = Response::try_from(r[0].as_str()).unwrap();
        assert_eq!(resp.call_id_header().unwrap().value(), "x@192.0.2.7");
        assert!(resp.to_header().unwrap().tag().unwrap().is_some());
        // Missing CSeq: nothing to answer with.
        let no_cseq = request("OPTIONS", "y").replace("CSeq: 1 OPTIONS\r\n", "");
        c.handle_datagram(now, peer, no_cseq.as_bytes());
        assert!(replies(&mut c).is_empty());
        // Junk, a broken response, a broken ACK: dropped.
        for junk in [
            &b"\x00\xff\xfe garbage"[..],
            b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n",
            b"hello\r\n\r\n",
        ] {
            c.handle_datagram(now, peer, junk);
            assert!(replies(&mut c).is_empty());
        }
        let ack = request("ACK", "z").replace("branch=z9hG4bKz", "branch=1");
        c.handle_datagram(now, peer, ack.as_bytes());
        assert!(replies(&mut c).is_empty());
        assert_eq!(
            c.metrics
                .sip_malformed
                .load(std::sync::atomic::Ordering::Relaxed),
            6
        );
    }

    #[test]
    fn keepalives_empty_and_oversized_are_ignored() {
        let mut c = core();
        let now = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        for d in [&b"\r\n\r\n"[..], b"\r\n", b""] {
            c.handle_datagram(now, peer, d);
        }
        c.handle_datagram(now, peer, &vec![b'A'; MAX_DATAGRAM + 1]);
        assert!(replies(&mut c).is_empty());
        assert_eq!(
            c.metrics
                .sip_messages
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }

    #[test]
    fn rate_limit_per_source_refills_and_is_bounded() {
        let limits = Limits {
            rate_per_sec: 10.0,
            burst: 20.0,
            max_sources: 3,
            ..Limits::default()
        };
        let mut c = UdpCore::new(Timers::default(), limits, Arc::new(Metrics::default()), calls());
        let t0 = Instant::now();
        let peer: SocketAddr = "192.0.2.9:5060".parse().unwrap(); // no trunk
        for i in 0..50 {
            c.handle_datagram(t0, peer, request("OPTIONS", &format!("f{i}")).as_bytes());
        }
        assert_eq!(replies(&mut c).len(), 20, "the burst");
        // Another source is not affected.
        c.handle_datagram(
            t0,
            "192.0.2.8:5060".parse().unwrap(),
            request("OPTIONS", "other").as_bytes(),
        );
        assert_eq!(replies(&mut c).len(), 1);
        // One second later ten more tokens.
        for i in 0..50 {
            c.handle_datagram(
                t0 + Duration::from_secs(1),
                peer,
                request("OPTIONS", &format!("g{i}")).as_bytes(),
            );
        }
        assert_eq!(replies(&mut c).len(), 10);
        assert_eq!(
            c.metrics
                .sip_rate_limited
                .load(std::sync::atomic::Ordering::Relaxed),
            70
        );
        // A trunk address has its own, larger bucket: a busy carrier is not a flood.
        for i in 0..30 {
            c.handle_datagram(t0, PEER.parse().unwrap(), request("OPTIONS", &format!("t{i}")).as_bytes());
        }
        assert_eq!(replies(&mut c).len(), 30);
        for i in 0..100u8 {
            let src = SocketAddr::from(([10, 0, 0, i], 5060));
            c.handle_datagram(t0, src, b"\r\n\r\n");
            assert!(c.tracked_sources() <= 3);
        }
    }

    #[test]
    fn folded_compact_and_spaced_headers_are_valid_sip() {
        // RFC 4475 "wsinv"-style: folding, whitespace before colons and around `;` and `=`,
        // compact names. All valid RFC 3261, all refused by rsip as received.
        let mut c = core();
        let message = "OPTIONS sip:hotline@198.51.100.1 SIP/2.0\r\n\
             v  :  SIP/2.0/UDP 192.0.2.7:5060 ;\r\n branch = z9hG4bKfold\r\n\
             f: \"J Rosenberg \\\\\\\"\"  <sip:trunk@192.0.2.7>\r\n  ;\r\n  tag = abc\r\n\
             t: <sip:hotline@198.51.100.1>\r\n\
             i: fold@192.0.2.7\r\n\
             CSeq: 1\r\n\tOPTIONS\r\n\
             l: 0\r\n\r\n";
        c.handle_datagram(Instant::now(), PEER.parse().unwrap(), message.as_bytes());
        let r = replies(&mut c);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(status(&r[0]), 200, "{}", r[0]);
        assert!(r[0].contains("Call-ID: fold@192.0.2.7\r\n"), "{}", r[0]);
    }

    #[test]
    fn content_length_is_checked_against_the_body() {
        let mut c = core();
        let now = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        let with_body = |branch: &str, length: &str| {
            request("OPTIONS", branch).replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {length}\r\n\r\n0123456789"))
        };
        for (length, code) in [("11", 400), ("-1", 400), ("99999999999999999999999", 400), ("ten", 400), ("10", 200), ("4", 200)] {
            c.handle_datagram(now, peer, with_body(&format!("cl{code}{length}"), length).as_bytes());
            let r = replies(&mut c);
            assert_eq!(r.len(), 1, "Content-Length {length}: {r:?}");
            assert_eq!(status(&r[0]), code, "Content-Length {length}: {}", r[0]);
        }
        // A shorter Content-Length ends the body (§18.3): the SDP offer is cut there.
        let invite = request("INVITE", "short").replace("Content-Length: 0\r\n\r\n", "Contact: <sip:trunk@192.0.2.7>\r\nContent-Length: 5\r\n\r\nv=0\r\ntrailing junk");
        c.handle_datagram(now, peer, invite.as_bytes());
        match c.poll_event() {
            Some(CallEvent::Incoming(incoming)) => assert_eq!(incoming.sdp, b"v=0\r\n"),
            other => panic!("expected an incoming call, got {other:?}"),
        }
    }

    #[test]
    fn nul_bytes_unknown_methods_and_versions_get_their_4xx_5xx() {
        let mut c = core();
        let now = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        let nul = request("OPTIONS", "nul").replace("Max-Forwards: 70", "Max-Forwards: 7\u{0}0");
        let unknown = request("NEWMETHOD", "new");
        let mismatch = request("NEWMETHOD", "mm").replace("CSeq: 1 NEWMETHOD", "CSeq: 1 INVITE");
        let version = request("OPTIONS", "v7").replace(" SIP/2.0\r\nVia", " SIP/7.0\r\nVia");
        for (message, code) in [(nul, 400), (unknown, 501), (mismatch, 400), (version, 505)] {
            c.handle_datagram(now, peer, message.as_bytes());
            let r = replies(&mut c);
            assert_eq!(r.len(), 1, "{message}: {r:?}");
            assert_eq!(status(&r[0]), code, "{message}: {}", r[0]);
        }
    }

    #[test]
    fn scan_finds_compact_headers() {
        let s = Scan::of(b"OPTIONS sip:a SIP/2.0\nv: SIP/2.0/UDP h;branch=1\nf: <sip:b>\nt: <sip:a>;tag=q\ni: cid\nCSeq: 1 OPTIONS\nbroken line\n\nbody");
        let reply = String::from_utf8(s.bad_request().unwrap()).unwrap();
        assert!(
            reply.contains("To: <sip:a>;tag=q\r\nCall-ID: cid\r\n"),
            "{reply}"
        );
    }
}
