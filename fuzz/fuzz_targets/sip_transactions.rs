//! The RFC 3261 §17 transaction layer (`switchd::sip::transaction::TransactionLayer`) driven
//! directly by a sequence of operations read from the input: requests and responses from the
//! network built from fuzzer-chosen fields (method, branch, sent-by, CSeq, status, transport),
//! our own client requests, the TU's responses to server transactions, transport errors, raw
//! datagrams and virtual time. Unlike `sip_datagram` (bytes through the whole listener), this
//! reaches the state machines with well-formed messages in every order.
//!
//! Input format, read byte by byte from the front (missing bytes read as 0), so seeds are easy
//! to write by hand (see fuzz/README.md): one op byte, then its arguments.
//!
//! | op % 7 | op | arguments |
//! | --- | --- | --- |
//! | 0 | request from the network | method, branch, sent-by, CSeq method, CSeq number, source, flags (bit 0 reliable, bit 1 To tag, bit 2 body, bit 3 TCP Via) |
//! | 1 | response from the network | status (2 bytes), branch, CSeq method, source |
//! | 2 | we send a request (client transaction) | method, branch, destination, reliable |
//! | 3 | the TU answers a server transaction | which (index of those seen), status (2 bytes) |
//! | 4 | time passes | milliseconds (2 bytes, ×4), timers fire in order |
//! | 5 | transport error | which (index of all keys seen) |
//! | 6 | raw datagram | length, then that many bytes |
//!
//! Must hold: no panic; every transaction the layer reports is one it created and is reported
//! `Terminated` exactly once (the layer's size always equals the transactions created and not
//! terminated); no timer livelock; and once the TU has given every server transaction a final
//! answer and the clock runs far past every timer, the layer is empty with no deadline.

#![no_main]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rsip::{Request, SipMessage, StatusCode};
use switchd::sip::message::response_for;
use switchd::sip::transaction::{LayerEvent, TransactionEvent, TransactionKey, TransactionLayer};
use switchd::sip::Timers;

const METHODS: [&str; 10] = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REGISTER", "PRACK", "UPDATE", "FOO"];
/// Shared by network requests, responses and our requests so they collide: the fuzzer should
/// hit existing transactions often. The last two have no magic cookie / are empty.
const BRANCHES: [&str; 6] = ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc", "z9hG4bK-ours-1", "1234", ""];
const SENT_BY: [&str; 4] = ["127.0.0.1:5060", "127.0.0.1", "[::1]:5060", "EXAMPLE.com:5070"];
const STATUS: [u16; 14] = [100, 180, 183, 200, 202, 302, 400, 401, 404, 481, 486, 487, 500, 603];

struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[usize::from(self.byte()) % from.len()]
    }
    /// A status: mostly a common one, but any u16 when the high bit of the first byte is set.
    fn status(&mut self) -> u16 {
        let (a, b) = (self.byte(), self.byte());
        if a & 0x80 == 0 {
            STATUS[usize::from(b) % STATUS.len()]
        } else {
            u16::from_be_bytes([a & 0x7f, b])
        }
    }
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

fn source(i: u8) -> SocketAddr {
    match i % 3 {
        0 => "127.0.0.1:5060".parse().unwrap(),
        1 => "127.0.0.1:5071".parse().unwrap(),
        _ => "[::1]:5060".parse().unwrap(),
    }
}

fn request_text(method: &str, branch: &str, sent_by: &str, cseq: (u8, &str), flags: u8) -> String {
    let transport = if flags & 8 != 0 { "TCP" } else { "UDP" };
    let branch = if branch.is_empty() { String::new() } else { format!(";branch={branch}") };
    let to_tag = if flags & 2 != 0 { ";tag=ours" } else { "" };
    let body = if flags & 4 != 0 { "v=0\r\n" } else { "" };
    format!(
        "{method} sip:svc@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} {sent_by}{branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:peer@127.0.0.1>;tag=theirs\r\nTo: <sip:svc@127.0.0.1>{to_tag}\r\nCall-ID: fuzz-call\r\n\
         CSeq: {} {}\r\nContent-Length: {}\r\n\r\n{body}",
        cseq.0,
        cseq.1,
        body.len()
    )
}

struct Harness {
    layer: TransactionLayer,
    now: Instant,
    /// Created and not yet reported terminated.
    alive: HashSet<TransactionKey>,
    /// Server transactions with the request that opened them, for the TU's answers.
    server: Vec<(TransactionKey, Request)>,
    /// Every key seen, for transport errors.
    keys: Vec<TransactionKey>,
    /// Client INVITE transactions that got a provisional and no final response yet.
    proceeding: HashSet<TransactionKey>,
    debug: bool,
}

impl Harness {
    fn drain(&mut self) {
        while let Some(t) = self.layer.poll_transmit() {
            // Everything we send must be serialisable and parse back as SIP.
            let text = t.message.to_string();
            if let Err(e) = SipMessage::try_from(text.as_str()) {
                panic!("we sent unparsable SIP ({e}):\n{text}");
            }
            if self.debug {
                eprintln!(">> {}\n{text}", t.destination);
            }
        }
        while let Some(event) = self.layer.poll_event() {
            if self.debug {
                eprintln!("event: {event:?}");
            }
            match event {
                LayerEvent::NewServerTransaction { key, request, .. } => {
                    assert!(self.alive.insert(key.clone()), "{key:?} created while alive");
                    self.keys.push(key.clone());
                    self.server.push((key, request));
                }
                LayerEvent::Transaction { key, event } => {
                    assert!(self.alive.contains(&key), "event {event:?} for {key:?}, which is not alive");
                    match event {
                        TransactionEvent::Provisional(_) if key.method == "INVITE" => {
                            self.proceeding.insert(key);
                        }
                        TransactionEvent::Terminated => {
                            self.proceeding.remove(&key);
                            self.alive.remove(&key);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        assert_eq!(self.layer.len(), self.alive.len(), "layer size vs created and not terminated");
        // 1 KiB of input cannot make more than this many transactions; more means a leak.
        assert!(self.layer.len() <= 1024, "{} transactions", self.layer.len());
    }

    fn advance(&mut self, until: Instant) {
        let mut rounds = 0u32;
        while let Some(deadline) = self.layer.poll_timeout().filter(|d| *d <= until) {
            self.now = self.now.max(deadline);
            self.layer.handle_timeout(self.now);
            self.drain();
            rounds += 1;
            assert!(rounds < 100_000, "timers keep firing: livelock at {:?}", self.layer.poll_timeout());
        }
        self.now = self.now.max(until);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data, at: 0 };
    let mut h = Harness {
        layer: TransactionLayer::new(Timers::default()),
        now: Instant::now(),
        alive: HashSet::new(),
        server: Vec::new(),
        keys: Vec::new(),
        proceeding: HashSet::new(),
        debug: std::env::var_os("REXIAN_FUZZ_DEBUG").is_some(),
    };
    let mut ops = 0;
    while !input.done() && ops < 256 {
        ops += 1;
        match input.byte() % 7 {
            0 => {
                let method = input.pick(&METHODS);
                let branch = input.pick(&BRANCHES);
                let sent_by = input.pick(&SENT_BY);
                let cseq_method = match input.byte() {
                    0..=191 => method,
                    b => METHODS[usize::from(b) % METHODS.len()],
                };
                let cseq = input.byte();
                let from = source(input.byte());
                let flags = input.byte();
                let text = request_text(method, branch, sent_by, (cseq, cseq_method), flags);
                if h.debug {
                    eprintln!("<< {from}\n{text}");
                }
                h.layer.handle_datagram(h.now, from, flags & 1 != 0, text.as_bytes());
            }
            1 => {
                let status = input.status();
                let branch = input.pick(&BRANCHES);
                let method = input.pick(&METHODS);
                let from = source(input.byte());
                let text = format!(
                    "SIP/2.0 {status} Whatever\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
                     From: <sip:svc@127.0.0.1>;tag=ours\r\nTo: <sip:peer@127.0.0.1>;tag=theirs\r\n\
                     Call-ID: fuzz-call\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
                );
                if h.debug {
                    eprintln!("<< {from}\n{text}");
                }
                h.layer.handle_datagram(h.now, from, false, text.as_bytes());
            }
            2 => {
                let method = input.pick(&METHODS);
                let branch = input.pick(&BRANCHES);
                let to = source(input.byte());
                let reliable = input.byte() & 1 != 0;
                let text = request_text(method, branch, "127.0.0.1:5060", (1, method), 0);
                if let Ok(request) = Request::try_from(text.as_str()) {
                    if let Ok(key) = h.layer.send_request(h.now, request, to, reliable) {
                        assert!(h.alive.insert(key.clone()), "{key:?} created while alive");
                        h.keys.push(key);
                    }
                }
            }
            3 => {
                let which = usize::from(input.byte());
                let status = input.status();
                if let Some((key, request)) = h.server.get(which % h.server.len().max(1)).cloned() {
                    let _ = h.layer.send_response(h.now, &key, response_for(&request, StatusCode::from(status)));
                }
            }
            4 => {
                let ms = u64::from(u16::from_be_bytes([input.byte(), input.byte()])) * 4;
                h.advance(h.now + Duration::from_millis(ms));
            }
            5 => {
                let which = usize::from(input.byte());
                if let Some(key) = h.keys.get(which % h.keys.len().max(1)).cloned() {
                    h.layer.handle_transport_error(h.now, &key);
                }
            }
            _ => {
                let len = usize::from(input.byte());
                let start = input.at.min(data.len());
                let bytes = &data[start..(start + len).min(data.len())];
                input.at += len;
                h.layer.handle_datagram(h.now, source(0), false, bytes);
            }
        }
        h.drain();
    }
    // The TU answers everything still waiting, then every timer runs out (64·T1 = 32 s is the
    // longest; give it ten minutes).
    let pending: Vec<(TransactionKey, Request)> =
        h.server.iter().filter(|(k, _)| h.alive.contains(k)).cloned().collect();
    for (key, request) in pending {
        let _ = h.layer.send_response(h.now, &key, response_for(&request, StatusCode::ServerInternalError));
        h.drain();
    }
    // A client INVITE that got a provisional waits for its final response without a timer
    // (§17.1.1.2: giving up is the TU's, e.g. a proxy's timer C); the TU abandons it here.
    let proceeding: Vec<TransactionKey> = h.proceeding.iter().cloned().collect();
    for key in proceeding {
        h.layer.handle_transport_error(h.now, &key);
        h.drain();
    }
    h.advance(h.now + Duration::from_secs(600));
    assert!(h.layer.is_empty(), "{} transactions left: {:?}", h.layer.len(), h.alive);
    assert!(h.layer.poll_timeout().is_none(), "a deadline with no transaction");
});
