//! Test helpers and simulation tests: two [`TransactionLayer`]s on a virtual clock joined by
//! a lossy, duplicating, reordering in-process network driven by a deterministic seed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rsip::prelude::*;
use rsip::{Method, Request, Response, SipMessage, StatusCode};

use super::*;
use crate::sip::message::{ack_for, response_for};
use crate::sip::Timers;
use crate::test_rng::Rng;

pub fn invite() -> Request {
    Request::try_from(include_str!("../vectors/sipp_invite.sip")).unwrap()
}

pub fn options() -> Request {
    Request::try_from(include_str!("../vectors/baresip_options.sip")).unwrap()
}

pub fn response_to(req: &Request, code: u16) -> Response {
    response_for(req, StatusCode::from(code))
}

pub fn response(code: u16) -> Response {
    response_to(&invite(), code)
}

pub fn drain<T: Transaction + ?Sized>(tx: &mut T) -> (Vec<SipMessage>, Vec<TransactionEvent>) {
    let mut sent = Vec::new();
    while let Some(t) = tx.poll_transmit() {
        sent.push(t.message);
    }
    let mut events = Vec::new();
    while let Some(e) = tx.poll_event() {
        events.push(e);
    }
    (sent, events)
}

/// The lossy network: datagrams in flight ordered by delivery time.
struct Net {
    rng: Rng,
    loss: u64,
    dup: u64,
    seq: u64,
    flight: BTreeMap<(Instant, u64), (SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Net {
    fn send(&mut self, now: Instant, from: SocketAddr, t: LayerTransmit) {
        let copies = if self.rng.below(100) < self.dup { 2 } else { 1 };
        for _ in 0..copies {
            if self.rng.below(100) < self.loss {
                continue;
            }
            let delay = Duration::from_millis(10 + self.rng.next() % 50);
            self.seq += 1;
            let bytes = t.message.to_string().into_bytes();
            self.flight
                .insert((now + delay, self.seq), (from, t.destination, bytes));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    Busy,
    RingingOk,
    Options,
}

/// What the run observed, in offsets from the start.
#[derive(Debug, Default)]
struct Outcome {
    client_final: Option<(u16, Duration)>,
    client_timeout: Option<Duration>,
    client_terminated: Option<Duration>,
    stray_2xx: bool,
    server_first_final: Option<Duration>,
    server_terminated: Option<Duration>,
    server_timeout: bool,
    trying_sent: bool,
}

const A: &str = "127.0.0.1:5071";
const B: &str = "127.0.0.1:5070";

fn run(
    seed: u64,
    loss: u64,
    scenario: Scenario,
    reliable: bool,
    answer_after: Duration,
) -> Outcome {
    let t0 = Instant::now();
    let a: SocketAddr = A.parse().unwrap();
    let b: SocketAddr = B.parse().unwrap();
    let timers = Timers::default();
    let mut net = Net {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        loss,
        dup: if reliable { 0 } else { 5 },
        seq: 0,
        flight: BTreeMap::new(),
    };
    let mut client = TransactionLayer::new(timers);
    let mut server = TransactionLayer::new(timers);
    let mut out = Outcome::default();
    let request = match scenario {
        Scenario::Options => options(),
        _ => invite(),
    };
    let ck = client.send_request(t0, request, b, reliable).unwrap();
    // Server TU: pending answers (time, key, response) and 2xx retransmission state.
    let mut answers: Vec<(Instant, TransactionKey, Response)> = Vec::new();
    let mut ok_retx: Option<(Instant, Duration, Response, Instant)> = None;
    let mut now = t0;
    for _ in 0..100_000 {
        while let Some(t) = client.poll_transmit() {
            net.send(now, a, t);
        }
        while let Some(t) = server.poll_transmit() {
            if let SipMessage::Response(r) = &t.message {
                out.trying_sent |= r.status_code.code() == 100;
            }
            net.send(now, b, t);
        }
        while let Some(e) = client.poll_event() {
            match e {
                LayerEvent::Transaction { key, event } => {
                    assert_eq!(key, ck);
                    match event {
                        TransactionEvent::Final(r) => {
                            assert!(out.client_final.is_none(), "one Final only");
                            out.client_final = Some((r.status_code.code(), now - t0));
                            if r.status_code.code() == 200 {
                                client.send_outside(b, ack_2xx(&r).into());
                            }
                        }
                        TransactionEvent::Timeout => out.client_timeout = Some(now - t0),
                        TransactionEvent::Terminated => out.client_terminated = Some(now - t0),
                        _ => {}
                    }
                }
                LayerEvent::StrayResponse { response, .. } => {
                    // Only the INVITE/2xx flow may stray: 2xx retransmissions by the TU, and
                    // (RFC 3261 without RFC 6026) a late INVITE retransmission that reaches the
                    // server after its transaction ended on 2xx and starts a new one.
                    let code = response.status_code.code();
                    assert!(
                        scenario == Scenario::RingingOk && code < 300,
                        "stray {code}: seed {seed} {out:?}"
                    );
                    if code == 200 {
                        out.stray_2xx = true;
                        client.send_outside(b, ack_2xx(&response).into());
                    }
                }
                other => panic!("client got {other:?}"),
            }
        }
        while let Some(e) = server.poll_event() {
            match e {
                LayerEvent::NewServerTransaction { key, request, .. } => {
                    assert!(out.server_terminated.is_none() || request.method == Method::Invite);
                    let code = match scenario {
                        Scenario::Busy => 486,
                        Scenario::RingingOk => {
                            answers.push((
                                now + answer_after,
                                key.clone(),
                                response_to(&request, 180),
                            ));
                            200
                        }
                        Scenario::Options => 200,
                    };
                    let at = now
                        + answer_after
                        + Duration::from_millis(
                            if code == 200 && scenario == Scenario::RingingOk {
                                300
                            } else {
                                0
                            },
                        );
                    answers.push((at, key, response_to(&request, code)));
                }
                LayerEvent::Transaction { event, .. } => match event {
                    TransactionEvent::Timeout => out.server_timeout = true,
                    TransactionEvent::Terminated => out.server_terminated = Some(now - t0),
                    _ => {}
                },
                LayerEvent::StrayAck { .. } => ok_retx = None,
                other => panic!("server got {other:?}"),
            }
        }
        // Next instant: earliest of network, both layers and the server TU.
        let next = [
            net.flight.keys().next().map(|k| k.0),
            client.poll_timeout(),
            server.poll_timeout(),
            answers.iter().map(|a| a.0).min(),
            ok_retx.as_ref().map(|r| r.0),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        assert!(next >= now, "time never runs backwards");
        now = next;
        while let Some(entry) = net.flight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (from, to, bytes) = entry.remove();
            let layer = if to == a { &mut client } else { &mut server };
            layer.handle_datagram(now, from, reliable, &bytes);
        }
        client.handle_timeout(now);
        server.handle_timeout(now);
        let (due, later): (Vec<_>, Vec<_>) = answers.drain(..).partition(|a| a.0 <= now);
        answers = later;
        for (_, key, resp) in due {
            let code = resp.status_code.code();
            if server.send_response(now, &key, resp.clone()).is_ok() && code >= 200 {
                out.server_first_final.get_or_insert(now - t0);
                if code == 200 && scenario == Scenario::RingingOk && !reliable {
                    ok_retx = Some((now + timers.t1, timers.t1, resp, now + timers.t1_x64()));
                }
            }
        }
        if let Some((at, interval, resp, end)) = ok_retx.take() {
            if at <= now {
                if at < end {
                    server.send_outside(a, resp.clone().into());
                    let interval = (interval * 2).min(timers.t2);
                    ok_retx = Some((at + interval, interval, resp, end));
                }
            } else {
                ok_retx = Some((at, interval, resp, end));
            }
        }
    }
    assert!(
        client.is_empty() && server.is_empty(),
        "all transactions ended: {client:?} {server:?}"
    );
    out
}

/// The TU's ACK for a 2xx: a new transaction branch (§13.2.2.4).
fn ack_2xx(ok: &Response) -> Request {
    let mut ack = ack_for(&invite(), ok).unwrap();
    ack.headers.retain(|h| !matches!(h, rsip::Header::Via(_)));
    ack.headers.push(rsip::Header::Via(
        "SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-30062-1-5".into(),
    ));
    ack
}

const S32: Duration = Duration::from_secs(32);

#[test]
fn invite_180_200_flow_lossless() {
    let o = run(1, 0, Scenario::RingingOk, false, Duration::from_millis(50));
    let (code, at) = o.client_final.unwrap();
    assert_eq!(code, 200);
    assert_eq!(o.client_terminated, Some(at), "2xx terminates at once");
    assert!(!o.trying_sent, "answered within 200 ms: no 100 Trying");
}

#[test]
fn slow_tu_gets_100_trying() {
    let o = run(1, 0, Scenario::RingingOk, false, Duration::from_secs(2));
    assert!(o.trying_sent);
    assert_eq!(o.client_final.map(|f| f.0), Some(200));
}

#[test]
fn busy_lossless_acked_and_d_and_i() {
    let o = run(2, 0, Scenario::Busy, false, Duration::ZERO);
    let (code, at) = o.client_final.unwrap();
    assert_eq!(code, 486);
    assert_eq!(o.client_terminated, Some(at + S32), "timer D");
    let sent = o.server_first_final.unwrap();
    let ended = o.server_terminated.unwrap();
    assert!(!o.server_timeout);
    // ACK arrives within ~one round trip; timer I = T4 after it.
    assert!(
        ended > sent + Duration::from_secs(5) && ended < sent + Duration::from_secs(6),
        "{o:?}"
    );
}

#[test]
fn reliable_variants_end_without_waiting() {
    let o = run(3, 0, Scenario::Busy, true, Duration::ZERO);
    let (_, at) = o.client_final.unwrap();
    assert_eq!(o.client_terminated, Some(at), "D = 0");
    assert!(
        o.server_terminated.unwrap() < Duration::from_millis(200),
        "I = 0"
    );
    let o = run(3, 0, Scenario::Options, true, Duration::ZERO);
    let (_, at) = o.client_final.unwrap();
    assert_eq!(o.client_terminated, Some(at), "K = 0");
    assert_eq!(o.server_terminated, o.server_first_final, "J = 0");
}

#[test]
fn options_lossless_k_and_j() {
    let o = run(4, 0, Scenario::Options, false, Duration::ZERO);
    let (code, at) = o.client_final.unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        o.client_terminated,
        Some(at + Duration::from_secs(5)),
        "K = T4"
    );
    assert_eq!(
        o.server_terminated,
        Some(o.server_first_final.unwrap() + S32),
        "J = 64*T1"
    );
}

#[test]
fn total_loss_times_out_at_32s() {
    for scenario in [Scenario::Busy, Scenario::Options, Scenario::RingingOk] {
        let o = run(5, 100, scenario, false, Duration::ZERO);
        assert_eq!(o.client_timeout, Some(S32), "{scenario:?}");
        assert_eq!(o.client_terminated, Some(S32));
        assert!(o.client_final.is_none());
    }
}

/// ~500 seeded runs with 20% loss and 5% duplication: every transaction completes or times
/// out at the right time, and nothing panics.
#[test]
fn seeded_lossy_runs() {
    let mut finals = 0;
    let mut timeouts = 0;
    for seed in 0..510u64 {
        let scenario =
            [Scenario::Busy, Scenario::RingingOk, Scenario::Options][(seed % 3) as usize];
        let reliable = seed % 10 == 9;
        let loss = if reliable { 0 } else { 20 };
        let answer = Duration::from_millis(seed % 400);
        let o = run(seed, loss, scenario, reliable, answer);
        match (o.client_final, o.client_timeout) {
            (Some((code, at)), None) => {
                finals += 1;
                let want = if scenario == Scenario::Busy { 486 } else { 200 };
                assert_eq!(code, want, "seed {seed}");
                let linger = match (scenario, reliable) {
                    (_, true) | (Scenario::RingingOk, _) => Duration::ZERO,
                    (Scenario::Busy, false) => S32,
                    (Scenario::Options, false) => Duration::from_secs(5),
                };
                assert_eq!(o.client_terminated, Some(at + linger), "seed {seed}");
            }
            (None, Some(at)) => {
                timeouts += 1;
                assert_eq!(at, S32, "seed {seed}: timer B/F");
                assert!(
                    o.stray_2xx
                        || scenario != Scenario::RingingOk
                        || o.client_terminated == Some(S32)
                );
            }
            other => panic!("seed {seed}: client neither completed nor timed out: {other:?} {o:?}"),
        }
        if o.server_timeout {
            // Timer H: 64*T1 after the first final response without an ACK.
            assert_eq!(scenario, Scenario::Busy, "seed {seed}");
            assert_eq!(
                o.server_terminated,
                o.server_first_final.map(|t| t + S32),
                "seed {seed}"
            );
        }
    }
    assert!(finals > 450, "finals {finals} timeouts {timeouts}");
}

/// Random and truncated bytes never panic the layer.
#[test]
fn garbage_never_panics() {
    let mut layer = TransactionLayer::new(Timers::default());
    let src: SocketAddr = A.parse().unwrap();
    let now = Instant::now();
    let mut rng = Rng(42);
    let samples = [
        include_str!("../vectors/sipp_invite.sip"),
        include_str!("../vectors/baresip_options.sip"),
        include_str!("../vectors/sipp_200_invite.sip"),
        include_str!("../vectors/uas_486_busy.sip"),
    ];
    for i in 0..2000 {
        let base = samples[i % samples.len()].as_bytes();
        let mut bytes = base[..(rng.next() as usize % (base.len() + 1))].to_vec();
        for _ in 0..(rng.next() % 4) {
            if !bytes.is_empty() {
                let j = rng.next() as usize % bytes.len();
                bytes[j] = rng.next() as u8;
            }
        }
        layer.handle_datagram(now, src, false, &bytes);
        while layer.poll_event().is_some() {}
        while layer.poll_transmit().is_some() {}
    }
}

#[test]
fn captured_vectors_parse() {
    for text in [
        include_str!("../vectors/sipp_invite.sip"),
        include_str!("../vectors/sipp_ack_2xx.sip"),
        include_str!("../vectors/sipp_bye.sip"),
        include_str!("../vectors/baresip_options.sip"),
    ] {
        let m = SipMessage::try_from(text.as_bytes()).unwrap();
        assert!(TransactionKey::for_message(&m).is_ok());
    }
    for text in [
        include_str!("../vectors/sipp_180_ringing.sip"),
        include_str!("../vectors/sipp_200_invite.sip"),
        include_str!("../vectors/sipp_200_bye.sip"),
        include_str!("../vectors/uas_486_busy.sip"),
    ] {
        let r = Response::try_from(text).unwrap();
        assert!(r.cseq_header().is_ok());
    }
    let inv = invite();
    assert_eq!(inv.body.len(), 129, "Content-Length honoured");
}
