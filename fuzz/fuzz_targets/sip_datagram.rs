//! switchd's SIP listener on hostile UDP: arbitrary bytes into `UdpCore::handle_datagram`, the
//! same sans-IO core `switchd run` binds to its SIP socket, with a trunk configured for the
//! sender so calls get past the 403 and into dialogs.
//!
//! The input is split on the separator line `\n%%\n` into up to 16 datagrams (so one input can
//! be a whole call: INVITE, ACK, BYE). In each datagram the text `$TOTAG` is replaced by the
//! To tag of the last response we sent: our tags are random, and without this the fuzzer could
//! never hit an existing dialog. Every datagram is delivered
//!
//! 1. from the trunk's address, then again (a retransmission, 10 ms later) when the input says
//!    so, and from a second source that is no trunk;
//! 2. with virtual time advancing between datagrams (by an amount taken from the input) and
//!    `handle_timeout` fired whenever a deadline has passed, as `serve` does.
//!
//! The target plays the engine: it answers `CallEvent::Incoming` with `Answer` (an SDP
//! answer), `Ringing`, `Reject` or nothing, accepts re-INVITEs and sometimes hangs up
//! confirmed calls — chosen from the input so the fuzzer explores all of them.
//!
//! Must hold: no panic; memory stays bounded (live transactions and calls below fixed limits,
//! calls never above `max_calls`); the UA's bookkeeping agrees with its events (every call it
//! reports alive was announced and not ended); no timer livelock (after `handle_timeout(now)`
//! the next deadline moves past `now` within a few rounds, or `serve` would spin); and once
//! the virtual clock runs far past every timer (and the calls still up are hung up), no
//! transaction and no call is left.

#![no_main]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use switchd::metrics::Metrics;
use switchd::sip::udp::{Limits, UdpCore};
use switchd::sip::ua::{CallCommand, CallEvent, Calls, LegId, TrunkPeer};
use switchd::sip::Timers;

const SEPARATOR: &[u8] = b"\n%%\n";
const MAX_DATAGRAMS: usize = 16;
const MAX_CALLS: usize = 4;
/// Each datagram creates at most one transaction per delivery (three deliveries) plus what
/// the UA starts itself (BYE on ACK timeout, one per call); this is far above that, far below
/// anything that would show a leak.
const MAX_TRANSACTIONS: usize = 3 * MAX_DATAGRAMS + 2 * MAX_CALLS + 8;

const SDP_ANSWER: &[u8] = b"v=0\r\no=switchd 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

struct Harness {
    core: UdpCore,
    now: Instant,
    /// Legs announced by `Incoming` and not yet `Ended`.
    alive: HashSet<LegId>,
    /// Of those, the ones whose ACK arrived (the engine may hang them up).
    confirmed: Vec<LegId>,
    /// The To tag of the last response we sent, for `$TOTAG`.
    last_to_tag: String,
    /// Input bytes that steer the engine's choices.
    choices: Vec<u8>,
    choice: usize,
    debug: bool,
}

impl Harness {
    fn choose(&mut self) -> u8 {
        let c = self.choices.get(self.choice % self.choices.len().max(1)).copied().unwrap_or(0);
        self.choice += 1;
        c
    }

    /// What `serve` does after each input: send everything, hand events to the engine (here:
    /// answer them at once, which may queue more to send), then check the invariants.
    fn drain(&mut self) {
        loop {
            while let Some((to, bytes)) = self.core.poll_transmit() {
                assert!(bytes.len() <= 2 * switchd::sip::udp::MAX_DATAGRAM, "a {} byte datagram to {to}", bytes.len());
                if let Some(tag) = to_tag(&bytes) {
                    self.last_to_tag = tag;
                }
                if self.debug {
                    eprintln!(">> {to}\n{}", String::from_utf8_lossy(&bytes));
                }
            }
            let Some(event) = self.core.poll_event() else { break };
            if self.debug {
                eprintln!("event: {event:?}");
            }
            let command = match event {
                CallEvent::Incoming(incoming) => {
                    assert!(self.alive.insert(incoming.leg), "{} announced twice", incoming.leg);
                    let leg = incoming.leg;
                    match self.choose() % 4 {
                        0 | 1 => Some(CallCommand::Answer { leg, sdp: SDP_ANSWER.to_vec() }),
                        2 => Some(CallCommand::Ringing { leg }),
                        _ => Some(CallCommand::Reject { leg, status: 486 }),
                    }
                }
                CallEvent::Confirmed { leg, .. } => {
                    assert!(self.alive.contains(&leg), "{leg} confirmed but not alive");
                    self.confirmed.push(leg);
                    (self.choose() % 4 == 0).then_some(CallCommand::Hangup { leg })
                }
                CallEvent::ReInvite { leg, .. } => {
                    assert!(self.alive.contains(&leg), "re-INVITE on {leg}, not alive");
                    Some(CallCommand::AcceptReinvite { leg, sdp: SDP_ANSWER.to_vec() })
                }
                CallEvent::Dtmf { leg, digit } => {
                    assert!(self.alive.contains(&leg), "digit {digit} on {leg}, not alive");
                    None
                }
                CallEvent::Ended { leg, .. } => {
                    assert!(self.alive.remove(&leg), "{leg} ended twice or never started");
                    self.confirmed.retain(|l| *l != leg);
                    None
                }
                // This engine never originates: outbound events would be a bug.
                event @ (CallEvent::Ringing { .. } | CallEvent::Answered { .. } | CallEvent::Failed { .. }) => {
                    panic!("outbound event without an outbound call: {event:?}")
                }
                CallEvent::TrunkUp { .. } | CallEvent::TrunkDown { .. } => None,
            };
            if let Some(command) = command {
                self.core.handle_command(self.now, command);
            }
        }
        self.check();
    }

    fn check(&self) {
        assert!(self.core.transactions() <= MAX_TRANSACTIONS, "{} transactions alive", self.core.transactions());
        assert!(self.core.calls() <= MAX_CALLS, "{} calls alive, limit {MAX_CALLS}", self.core.calls());
        assert_eq!(self.core.calls(), self.alive.len(), "calls alive vs announced and not ended");
    }

    /// Move the clock to `until`, firing every deadline on the way, in order.
    fn advance(&mut self, until: Instant) {
        let mut rounds = 0u32;
        while let Some(deadline) = self.core.poll_timeout().filter(|d| *d <= until) {
            self.now = self.now.max(deadline);
            self.core.handle_timeout(self.now);
            self.drain();
            // A late call may need a few rounds to catch up (e.g. timer G doubling its way
            // past `now`), but never unboundedly many.
            rounds += 1;
            assert!(rounds < 10_000, "timers keep firing: livelock at {:?}", self.core.poll_timeout());
        }
        self.now = self.now.max(until);
    }

    fn datagram(&mut self, source: SocketAddr, bytes: &[u8]) {
        if self.debug {
            eprintln!("<< {source}\n{}", String::from_utf8_lossy(bytes));
        }
        self.core.handle_datagram(self.now, source, bytes);
        self.drain();
    }
}

/// The To tag of a response we sent (ours: our requests' To tag is the peer's), if any.
fn to_tag(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?.strip_prefix("SIP/2.0 ")?;
    let to = text.lines().find(|l| l.starts_with("To:") || l.starts_with("to:") || l.starts_with("t:"))?;
    let tag = to.split(';').find_map(|p| p.trim().strip_prefix("tag="))?;
    Some(tag.trim().to_owned())
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let trunk: SocketAddr = "127.0.0.1:5071".parse().unwrap();
    let stranger: SocketAddr = "192.0.2.9:5062".parse().unwrap();
    let calls = Calls::new(
        Timers::default(),
        "127.0.0.1:5060".parse().unwrap(),
        // Inbound credentials: INVITEs from the stranger take the digest path (401, and
        // their Authorization headers parsed and checked).
        vec![TrunkPeer {
            name: "fuzz".into(),
            addresses: vec![trunk.ip()],
            inbound: Some(switchd::sip::digest::Credentials::new("fuzz", "fuzz")),
            ..TrunkPeer::default()
        }],
        MAX_CALLS,
    );
    let t0 = Instant::now();
    let mut h = Harness {
        core: UdpCore::new(Timers::default(), Limits::default(), Arc::new(Metrics::default()), calls),
        now: t0,
        alive: HashSet::new(),
        confirmed: Vec::new(),
        last_to_tag: "none".into(),
        // The last 32 bytes steer the engine (they are also part of the last datagram).
        choices: data[data.len().saturating_sub(32)..].to_vec(),
        choice: 0,
        debug: std::env::var_os("REXIAN_FUZZ_DEBUG").is_some(),
    };
    let mut rest = data;
    for _ in 0..MAX_DATAGRAMS {
        let (datagram, next) = match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(i) => (&rest[..i], Some(&rest[i + SEPARATOR.len()..])),
            None => (rest, None),
        };
        let bytes = replace(datagram, b"$TOTAG", h.last_to_tag.clone().as_bytes());
        h.datagram(trunk, &bytes);
        // Steps from 0 to 2.55 s: enough to cross the 100 Trying (200 ms) and T1 retransmit
        // boundaries between messages of one call.
        let step = Duration::from_millis(10 * u64::from(h.choose()));
        let choice = h.choose();
        if choice & 1 == 1 {
            h.advance(h.now + Duration::from_millis(10));
            h.datagram(trunk, &bytes);
        }
        if choice & 2 == 2 {
            h.datagram(stranger, &bytes);
        }
        h.advance(h.now + step);
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    // Whatever is still up, the engine hangs up; then everything must wind down: the longest
    // timers are 64·T1 (32 s) for ACK waits and BYE, plus timer D / T4.
    let legs: Vec<LegId> = h.alive.iter().copied().collect();
    for leg in legs {
        h.core.handle_command(h.now, CallCommand::Hangup { leg });
        h.drain();
    }
    h.advance(h.now + Duration::from_secs(300));
    assert_eq!(h.core.transactions(), 0, "transactions left after every timer ran out");
    assert_eq!(h.core.calls(), 0, "calls left after hang-up and every timer ran out: {:?}", h.alive);
    assert!(h.core.poll_timeout().is_none(), "a deadline with nothing alive");
});
