//! Trunk health, sans-IO: registration with the carrier (RFC 3261 §10) and OPTIONS
//! keep-alives, which decide whether a trunk is up for outbound calls.
//!
//! A [`TrunkMonitor`] knows every configured trunk and, once [`TrunkMonitor::start`]ed,
//!
//! * registers each trunk with a `register` expiry at its proxy (or first address): REGISTER
//!   with To/From `sip:<username>@<proxy host>`, our Contact and `Expires`; answers a 401/407
//!   once per challenge with digest credentials; refreshes at [`REFRESH_PERCENT`] of the
//!   expiry the registrar granted (the Contact's `expires` parameter, else the `Expires`
//!   header); after a failure (a final status other than 2xx, a second challenge, Timer F)
//!   retries after [`RETRY_FIRST`], doubling up to [`RETRY_MAX`]. We do not un-register on
//!   shutdown: the binding simply expires.
//! * pings each trunk that has a destination with OPTIONS every keep-alive interval (the
//!   first ping one interval after start, so a peer that only expects calls — a test's SIPp
//!   scenario — is not surprised at once). A trunk whose last [`DOWN_AFTER`] pings went
//!   unanswered (Timer F) or got a 5xx is marked down; the next other final response (any
//!   status: carriers answer OPTIONS 200, 404 or 405 alike) marks it up again. Each change
//!   is reported once as [`TrunkEvent`].
//!
//! # Contract
//! The owner ([`super::ua::Calls`]) sends each [`TrunkTransmit`] through a new client
//! transaction and remembers its key with the transmit's `trunk` and `probe`; it hands back
//! that transaction's final response with [`TrunkMonitor::handle_response`] and its Timer F
//! or transport error with [`TrunkMonitor::handle_failure`]. After every `handle_*`/`start`
//! it drains [`TrunkMonitor::poll_transmit`] and [`TrunkMonitor::poll_event`], and calls
//! [`TrunkMonitor::handle_timeout`] once the clock reaches [`TrunkMonitor::poll_timeout`]
//! (early calls are harmless). Nothing here reads a clock, owns a socket or logs a password.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response, Uri, Version};

use super::digest::{self, Challenge, Credentials};
use super::stream::Transport;
use super::ua::{new_tag, TrunkPeer};

/// Consecutive failed pings (no answer, or 5xx) that mark a trunk down.
pub const DOWN_AFTER: u32 = 2;
/// Re-register at this share of the granted expiry (RFC 3261 §10.2.4 leaves it to us; well
/// before the end, so that a lost REGISTER can still be retransmitted in time).
pub const REFRESH_PERCENT: u64 = 85;
/// The first retry after a failed registration; each further failure doubles it.
pub const RETRY_FIRST: Duration = Duration::from_secs(30);
/// Registration retries never wait longer than this.
pub const RETRY_MAX: Duration = Duration::from_secs(300);

/// What a trunk's registration looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// The trunk does not register.
    NotConfigured,
    /// A REGISTER is on its way (or due: before the first answer).
    Registering,
    /// The registrar accepted us for this many seconds.
    Registered {
        /// The expiry the registrar granted.
        expires_secs: u32,
    },
    /// The last attempt failed with this status (408 for no answer, 503 for a transport
    /// error); a retry is scheduled.
    Failed {
        /// The SIP status.
        status: u16,
    },
}

/// One trunk's state as [`super::ua::Calls::trunk_status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkStatus {
    /// The trunk's name.
    pub name: String,
    /// Where its REGISTER, OPTIONS and INVITEs go; `None`: nowhere (inbound only).
    pub destination: Option<SocketAddr>,
    /// Its registration.
    pub registration: RegistrationState,
    /// False once [`DOWN_AFTER`] keep-alives failed in a row, until one succeeds. Trunks that
    /// are not pinged count as up.
    pub up: bool,
}

/// Which probe a client transaction carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    /// A REGISTER (with the CSeq it was sent with).
    Register(u32),
    /// An OPTIONS keep-alive.
    Options,
}

/// A request to send through a new client transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkTransmit {
    /// The trunk's index in the configured list.
    pub trunk: usize,
    /// What it is, to hand the answer back.
    pub probe: Probe,
    /// The request.
    pub request: Request,
    /// Where it goes.
    pub destination: SocketAddr,
}

/// A change the owner should pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkEvent {
    /// The trunk answers keep-alives again.
    Up(String),
    /// The trunk's last [`DOWN_AFTER`] keep-alives failed.
    Down(String),
}

struct Registration {
    /// `sip:<user>@<proxy host>`: To and From.
    aor: String,
    /// `sip:<proxy host:port>`: the Request-URI (and the digest `uri`).
    registrar: String,
    /// Our Contact URI.
    contact: String,
    credentials: Option<Credentials>,
    /// The expiry we ask for.
    expires: u32,
    /// One Call-ID for all REGISTERs of this trunk (§10.2: the registrar orders them by
    /// CSeq within it).
    call_id: String,
    cseq: u32,
    state: RegistrationState,
    /// The CSeq of the REGISTER awaiting its answer.
    in_flight: Option<u32>,
    /// This attempt already answered a challenge: a second one is a failure.
    auth_tried: bool,
    /// Failures in a row, for the back-off.
    failures: u32,
    /// When to send the next REGISTER.
    next: Option<Instant>,
}

struct Keepalive {
    next: Option<Instant>,
    failures: u32,
    up: bool,
}

struct Trunk {
    name: String,
    destination: Option<SocketAddr>,
    /// Our address as this trunk should see it (Via, Contact, From host).
    local: SocketAddr,
    /// How the trunk is reached: the Via of our requests and the Contact we register say it.
    transport: Transport,
    registration: Option<Registration>,
    keepalive: Option<Keepalive>,
}

/// Registration and keep-alives of all trunks (see the module docs).
pub struct TrunkMonitor {
    interval: Option<Duration>,
    started: bool,
    trunks: Vec<Trunk>,
    transmits: VecDeque<TrunkTransmit>,
    events: VecDeque<TrunkEvent>,
}

impl std::fmt::Debug for TrunkMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkMonitor")
            .field("interval", &self.interval)
            .field("started", &self.started)
            .field("status", &self.status())
            .finish()
    }
}

impl TrunkMonitor {
    /// A monitor for `peers` (in configured order), reachable at `local` (a peer's
    /// [`TrunkPeer::local_ip`] replaces an unspecified IP; a TLS trunk is told our TLS port
    /// `tls_port` when there is one), pinging every `keepalive` (`None`: no keep-alives).
    /// Nothing is sent before [`Self::start`].
    pub fn new(local: SocketAddr, tls_port: Option<u16>, peers: &[TrunkPeer], keepalive: Option<Duration>) -> Self {
        let interval = keepalive.filter(|d| !d.is_zero());
        let trunks = peers
            .iter()
            .map(|peer| {
                let destination = peer.outbound_destination();
                let ip = match (local.ip().is_unspecified(), peer.local_ip) {
                    (true, Some(ip)) => ip,
                    _ => local.ip(),
                };
                let port = match peer.transport {
                    Transport::Tls => tls_port.unwrap_or(local.port()),
                    Transport::Udp | Transport::Tcp => local.port(),
                };
                let local = SocketAddr::new(ip, port);
                let registration = match (peer.register, destination) {
                    (Some(expires), Some(destination)) => Some(Registration::new(peer, destination, local, expires)),
                    (Some(_), None) => {
                        tracing::warn!(trunk = %peer.name, "SIP: trunk has no proxy and no address to register with");
                        None
                    }
                    _ => None,
                };
                Trunk {
                    name: peer.name.clone(),
                    destination,
                    local,
                    transport: peer.transport,
                    registration,
                    keepalive: (interval.is_some() && destination.is_some()).then_some(Keepalive {
                        next: None,
                        failures: 0,
                        up: true,
                    }),
                }
            })
            .collect();
        Self {
            interval,
            started: false,
            trunks,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Begin: registrations are sent now, the first pings one interval later. Idempotent.
    pub fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        let interval = self.interval;
        for trunk in &mut self.trunks {
            if let Some(r) = &mut trunk.registration {
                r.next = Some(now);
            }
            if let (Some(k), Some(every)) = (&mut trunk.keepalive, interval) {
                k.next = Some(now + every);
            }
        }
        self.handle_timeout(now);
    }

    /// The state of every trunk, in configured order.
    pub fn status(&self) -> Vec<TrunkStatus> {
        self.trunks
            .iter()
            .map(|t| TrunkStatus {
                name: t.name.clone(),
                destination: t.destination,
                registration: t
                    .registration
                    .as_ref()
                    .map_or(RegistrationState::NotConfigured, |r| r.state),
                up: t.keepalive.as_ref().is_none_or(|k| k.up),
            })
            .collect()
    }

    /// Whether trunk `index` counts as up (see [`TrunkStatus::up`]); false for no such trunk.
    pub fn is_up(&self, index: usize) -> bool {
        self.trunks
            .get(index)
            .is_some_and(|t| t.keepalive.as_ref().is_none_or(|k| k.up))
    }

    /// The next request to send.
    pub fn poll_transmit(&mut self) -> Option<TrunkTransmit> {
        self.transmits.pop_front()
    }

    /// The next up/down change.
    pub fn poll_event(&mut self) -> Option<TrunkEvent> {
        self.events.pop_front()
    }

    /// The next REGISTER or ping due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.trunks
            .iter()
            .flat_map(|t| {
                let register = t.registration.as_ref().and_then(|r| r.next);
                let ping = t.keepalive.as_ref().and_then(|k| k.next);
                [register, ping]
            })
            .flatten()
            .min()
    }

    /// Send what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let interval = self.interval;
        for (index, trunk) in self.trunks.iter_mut().enumerate() {
            let (Some(destination), local, transport) = (trunk.destination, trunk.local, trunk.transport) else {
                continue;
            };
            if let Some(r) = &mut trunk.registration {
                if r.next.is_some_and(|t| t <= now) && r.in_flight.is_none() {
                    r.next = None;
                    r.auth_tried = false;
                    if !matches!(r.state, RegistrationState::Registered { .. }) {
                        r.state = RegistrationState::Registering;
                    }
                    let request = r.request(local, transport, None);
                    self.transmits.push_back(TrunkTransmit {
                        trunk: index,
                        probe: Probe::Register(r.cseq),
                        request,
                        destination,
                    });
                }
            }
            if let (Some(k), Some(every)) = (&mut trunk.keepalive, interval) {
                if let Some(at) = k.next.filter(|t| *t <= now) {
                    // Keep the cadence, but never queue a burst after a long stall.
                    let mut next = at + every;
                    if next <= now {
                        next = now + every;
                    }
                    k.next = Some(next);
                    self.transmits.push_back(TrunkTransmit {
                        trunk: index,
                        probe: Probe::Options,
                        request: options(local, destination, transport),
                        destination,
                    });
                }
            }
        }
    }

    /// The final response to a probe of trunk `index`.
    pub fn handle_response(&mut self, now: Instant, index: usize, probe: Probe, response: &Response) {
        let code = response.status_code.code();
        if code < 200 {
            return;
        }
        match probe {
            Probe::Options => {
                if (500..600).contains(&code) {
                    self.ping_failed(index, code);
                } else {
                    self.ping_answered(index);
                }
            }
            Probe::Register(cseq) => self.register_answered(now, index, cseq, response),
        }
    }

    /// A probe's transaction ended without a final response: Timer F (`status` 408) or a
    /// transport error (503).
    pub fn handle_failure(&mut self, now: Instant, index: usize, probe: Probe, status: u16) {
        match probe {
            Probe::Options => self.ping_failed(index, status),
            Probe::Register(cseq) => {
                if self.registration(index).is_some_and(|r| r.in_flight == Some(cseq)) {
                    self.register_failed(now, index, status);
                }
            }
        }
    }

    fn registration(&mut self, index: usize) -> Option<&mut Registration> {
        self.trunks.get_mut(index).and_then(|t| t.registration.as_mut())
    }

    fn ping_answered(&mut self, index: usize) {
        let Some(trunk) = self.trunks.get_mut(index) else {
            return;
        };
        let Some(k) = &mut trunk.keepalive else {
            return;
        };
        k.failures = 0;
        if !k.up {
            k.up = true;
            tracing::info!(trunk = %trunk.name, "SIP: trunk is up again (answers OPTIONS)");
            self.events.push_back(TrunkEvent::Up(trunk.name.clone()));
        }
    }

    fn ping_failed(&mut self, index: usize, status: u16) {
        let Some(trunk) = self.trunks.get_mut(index) else {
            return;
        };
        let Some(k) = &mut trunk.keepalive else {
            return;
        };
        k.failures = k.failures.saturating_add(1);
        tracing::debug!(trunk = %trunk.name, status, failures = k.failures, "SIP: keep-alive failed");
        if k.up && k.failures >= DOWN_AFTER {
            k.up = false;
            tracing::warn!(trunk = %trunk.name, status, "SIP: trunk is down ({DOWN_AFTER} keep-alives failed)");
            self.events.push_back(TrunkEvent::Down(trunk.name.clone()));
        }
    }

    fn register_answered(&mut self, now: Instant, index: usize, cseq: u32, response: &Response) {
        let Some(trunk) = self.trunks.get_mut(index) else {
            return;
        };
        let (local, transport, name, destination) = (trunk.local, trunk.transport, &trunk.name, trunk.destination);
        let (Some(r), Some(destination)) = (trunk.registration.as_mut().filter(|r| r.in_flight == Some(cseq)), destination)
        else {
            return; // an answer to a REGISTER we no longer wait for
        };
        let code = response.status_code.code();
        // Either the next REGISTER to send, nothing (registered), or a failure.
        let outcome: Result<Option<Request>, u16> = match code {
            200..=299 => {
                let granted = granted_expires(response, &r.contact).unwrap_or(r.expires);
                r.in_flight = None;
                r.failures = 0;
                let first = !matches!(r.state, RegistrationState::Registered { .. });
                r.state = RegistrationState::Registered { expires_secs: granted };
                let refresh = Duration::from_secs((u64::from(granted) * REFRESH_PERCENT / 100).max(1));
                r.next = Some(now + refresh);
                if first {
                    tracing::info!(trunk = %name, expires = granted, "SIP: trunk registered");
                } else {
                    tracing::debug!(trunk = %name, expires = granted, "SIP: trunk registration refreshed");
                }
                Ok(None)
            }
            401 | 407 if !r.auth_tried => match (&r.credentials, Challenge::from_response(response)) {
                (Some(credentials), Ok(challenge)) => {
                    let header = digest::authorization(
                        &challenge,
                        credentials,
                        "REGISTER",
                        &r.registrar,
                        &digest::new_cnonce(),
                        1,
                    );
                    r.auth_tried = true;
                    Ok(Some(r.request(local, transport, Some(header))))
                }
                (None, _) => {
                    tracing::warn!(trunk = %name, status = code, "SIP: registrar wants credentials; the trunk has none");
                    Err(code)
                }
                (Some(_), Err(e)) => {
                    tracing::warn!(trunk = %name, status = code, error = %e, "SIP: cannot answer the registrar's challenge");
                    Err(code)
                }
            },
            // §10.2.8: the registrar wants a longer expiry; ask again at once with it (bounded:
            // only ever upwards).
            423 => match min_expires(response).filter(|m| *m > r.expires) {
                Some(min) => {
                    r.expires = min;
                    r.auth_tried = false;
                    Ok(Some(r.request(local, transport, None)))
                }
                None => Err(code),
            },
            _ => Err(code),
        };
        match outcome {
            Ok(Some(request)) => {
                let probe = Probe::Register(r.cseq);
                self.transmits.push_back(TrunkTransmit { trunk: index, probe, request, destination });
            }
            Ok(None) => {}
            Err(status) => self.register_failed(now, index, status),
        }
    }

    fn register_failed(&mut self, now: Instant, index: usize, status: u16) {
        let Some(trunk) = self.trunks.get_mut(index) else {
            return;
        };
        let Some(r) = &mut trunk.registration else {
            return;
        };
        r.in_flight = None;
        r.failures = r.failures.saturating_add(1);
        r.state = RegistrationState::Failed { status };
        let retry = RETRY_FIRST
            .saturating_mul(1 << r.failures.saturating_sub(1).min(16))
            .min(RETRY_MAX);
        r.next = Some(now + retry);
        tracing::warn!(trunk = %trunk.name, status, retry_secs = retry.as_secs(), "SIP: trunk registration failed");
    }
}

impl Registration {
    fn new(peer: &TrunkPeer, destination: SocketAddr, local: SocketAddr, expires: u32) -> Self {
        let user = peer.username.clone().unwrap_or_else(|| "switchd".into());
        let host = bracket(&destination.ip().to_string());
        Self {
            aor: format!("sip:{user}@{host}"),
            registrar: format!("sip:{}", host_port(destination)),
            // A stream trunk must send its calls back over a stream (§19.1.1's transport
            // parameter; the connection we registered on is what it reuses first).
            contact: format!(
                "sip:{user}@{}{}",
                host_port(local),
                peer.transport.uri_param().map(|t| format!(";transport={t}")).unwrap_or_default()
            ),
            credentials: peer.credentials(),
            expires,
            call_id: format!("{}@{}", new_tag(), bracket(&local.ip().to_string())),
            cseq: 0,
            state: RegistrationState::Registering,
            in_flight: None,
            auth_tried: false,
            failures: 0,
            next: None,
        }
    }

    /// The next REGISTER (CSeq + 1, fresh branch and From tag), and mark it in flight.
    fn request(&mut self, local: SocketAddr, transport: Transport, authorization: Option<Header>) -> Request {
        self.cseq = self.cseq.wrapping_add(1);
        self.in_flight = Some(self.cseq);
        let mut headers = Headers::default();
        headers.push(Header::Via(via(local, transport)));
        headers.push(Header::MaxForwards(70.into()));
        headers.push(Header::From(rsip::headers::From::new(format!("<{}>;tag={}", self.aor, new_tag()))));
        headers.push(Header::To(rsip::headers::To::new(format!("<{}>", self.aor))));
        headers.push(Header::CallId(self.call_id.clone().into()));
        headers.push(Header::CSeq(rsip::typed::CSeq { seq: self.cseq, method: Method::Register }.into()));
        headers.push(Header::Contact(rsip::headers::Contact::new(format!("<{}>", self.contact))));
        headers.push(Header::Expires(rsip::headers::Expires::new(self.expires.to_string())));
        if let Some(h) = authorization {
            headers.push(h);
        }
        headers.push(Header::ContentLength(0.into()));
        Request {
            method: Method::Register,
            uri: Uri::try_from(self.registrar.as_str()).unwrap_or_default(),
            version: Version::V2,
            headers,
            body: Vec::new(),
        }
    }
}

/// An OPTIONS keep-alive from `local` to `destination` (new Call-ID each time: each ping is
/// its own request, §11.1).
fn options(local: SocketAddr, destination: SocketAddr, transport: Transport) -> Request {
    let target = format!("sip:{}", host_port(destination));
    let mut headers = Headers::default();
    headers.push(Header::Via(via(local, transport)));
    headers.push(Header::MaxForwards(70.into()));
    headers.push(Header::From(rsip::headers::From::new(format!(
        "<sip:switchd@{}>;tag={}",
        host_port(local),
        new_tag()
    ))));
    headers.push(Header::To(rsip::headers::To::new(format!("<{target}>"))));
    headers.push(Header::CallId(format!("{}@{}", new_tag(), bracket(&local.ip().to_string())).into()));
    headers.push(Header::CSeq(rsip::typed::CSeq { seq: 1, method: Method::Options }.into()));
    headers.push(Header::Accept(rsip::headers::Accept::new("application/sdp")));
    headers.push(Header::ContentLength(0.into()));
    Request {
        method: Method::Options,
        uri: Uri::try_from(target.as_str()).unwrap_or_default(),
        version: Version::V2,
        headers,
        body: Vec::new(),
    }
}

fn via(local: SocketAddr, transport: Transport) -> rsip::headers::Via {
    rsip::headers::Via::new(format!("SIP/2.0/{transport} {};branch=z9hG4bK{};rport", host_port(local), new_tag()))
}

/// The expiry a 2xx to REGISTER grants us (§10.2.4): the `expires` parameter of the Contact
/// that is ours, else the `Expires` header, else the first Contact's `expires`.
fn granted_expires(response: &Response, ours: &str) -> Option<u32> {
    let contacts: Vec<(String, Option<u32>)> = response
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Contact(c) => Some(contact_entries(c.value())),
            _ => None,
        })
        .flatten()
        .collect();
    let mine = contacts
        .iter()
        .find(|(uri, _)| uri.eq_ignore_ascii_case(ours))
        .and_then(|(_, e)| *e);
    let header = response.headers.iter().find_map(|h| match h {
        Header::Expires(e) => e.value().trim().parse::<u32>().ok(),
        _ => None,
    });
    mine.or(header).or_else(|| contacts.first().and_then(|(_, e)| *e))
}

/// `Min-Expires` of a 423.
fn min_expires(response: &Response) -> Option<u32> {
    response.headers.iter().find_map(|h| match h {
        Header::MinExpires(m) => m.value().trim().parse().ok(),
        Header::Other(name, value) if name.eq_ignore_ascii_case("Min-Expires") => value.trim().parse().ok(),
        _ => None,
    })
}

/// The URIs and `expires` parameters of a Contact value that may list several
/// (`<sip:a@h>;expires=60, <sip:b@h>;expires=30`); commas inside `<…>` do not split.
fn contact_entries(value: &str) -> Vec<(String, Option<u32>)> {
    let mut entries = Vec::new();
    let mut depth = false;
    let mut start = 0;
    let bytes = value.as_bytes();
    for i in 0..=bytes.len() {
        let c = bytes.get(i).copied();
        match c {
            Some(b'<') => depth = true,
            Some(b'>') => depth = false,
            Some(b',') if !depth => {}
            None => {}
            _ => continue,
        }
        if matches!(c, Some(b',') | None) {
            if let Some(entry) = contact_entry(&value[start..i]) {
                entries.push(entry);
            }
            start = i + 1;
        }
    }
    entries
}

fn contact_entry(item: &str) -> Option<(String, Option<u32>)> {
    let item = item.trim();
    let (uri, params) = match (item.find('<'), item.find('>')) {
        (Some(a), Some(b)) if a < b => (&item[a + 1..b], &item[b + 1..]),
        _ => match item.split_once(';') {
            Some((uri, params)) => (uri, params),
            None => (item, ""),
        },
    };
    if uri.is_empty() {
        return None;
    }
    let expires = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("expires").then(|| v.trim().parse().ok())?
    });
    Some((uri.trim().to_owned(), expires))
}

fn host_port(addr: SocketAddr) -> String {
    format!("{}:{}", bracket(&addr.ip().to_string()), addr.port())
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Our IP as a peer at `peer` sees it, when we listen on `bound` (unspecified: asks the
/// kernel's routing table with a connected UDP socket — no packet is sent). For the driver,
/// not the sans-IO code.
pub fn local_ip_towards(peer: SocketAddr, bound: IpAddr) -> Option<IpAddr> {
    if !bound.is_unspecified() {
        return Some(bound);
    }
    let any = if peer.is_ipv4() { IpAddr::from([0, 0, 0, 0]) } else { IpAddr::from([0u16; 8]) };
    let socket = std::net::UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    socket.connect(peer).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "trunks_tests.rs"]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "trunk_streams_tests.rs"]
mod stream_tests;
