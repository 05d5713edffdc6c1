//! Trunk registration, keep-alives and outbound failover driven through the whole sans-IO
//! stack ([`UdpCore`]: parsing, transactions, [`Calls`]) on a virtual clock. The registrar's
//! and carriers' answers are written the way SIPp and carrier SBCs send them.

use super::*;
use crate::metrics::Metrics;
use crate::sip::ua::{CallCommand, CallEvent, Calls, LegId};
use crate::sip::udp::{Limits, UdpCore};
use crate::sip::Timers;
use md5::{Digest as _, Md5};
use rsip::prelude::*;
use rsip::SipMessage;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const PROXY_A: &str = "203.0.113.5:5060";
const PROXY_B: &str = "203.0.113.6:5060";
const LOCAL: &str = "198.51.100.1:5060";
const OFFER: &str = "v=0\r\no=- 7 7 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
const ANSWER: &str = "v=0\r\no=- 9 9 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn trunk(name: &str, proxy: &str) -> TrunkPeer {
    let proxy: SocketAddr = proxy.parse().unwrap();
    TrunkPeer { name: name.into(), addresses: vec![proxy.ip()], proxy: Some(proxy), ..Default::default() }
}

fn core(trunks: Vec<TrunkPeer>, keepalive: Option<Duration>) -> (UdpCore, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::default());
    let calls = Calls::new(Timers::default(), LOCAL.parse().unwrap(), trunks, 4).with_keepalive(keepalive);
    (UdpCore::new(Timers::default(), Limits::default(), metrics.clone(), calls), metrics)
}

fn registering_core() -> UdpCore {
    let t = TrunkPeer {
        username: Some("rexian".into()),
        password: Some("s3cret".into()),
        register: Some(300),
        ..trunk("carrier", PROXY_A)
    };
    core(vec![t], None).0
}

fn requests(c: &mut UdpCore) -> Vec<(SocketAddr, Request)> {
    std::iter::from_fn(|| c.poll_transmit())
        .filter_map(|(to, b)| match SipMessage::try_from(b.as_slice()).unwrap() {
            SipMessage::Request(r) => Some((to, r)),
            SipMessage::Response(_) => None,
        })
        .collect()
}

fn events(c: &mut UdpCore) -> Vec<CallEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Runs the timers up to `until`; every request sent on the way, with when.
fn run_until(c: &mut UdpCore, until: Instant) -> Vec<(Instant, SocketAddr, Request)> {
    let mut out = Vec::new();
    while let Some(t) = c.poll_timeout().filter(|t| *t <= until) {
        c.handle_timeout(t);
        out.extend(requests(c).into_iter().map(|(to, r)| (t, to, r)));
    }
    out
}

/// Runs the timers until the first request of `method` whose branch is not `old` goes out
/// (and no further), by `until`.
fn next_new(c: &mut UdpCore, method: Method, old: &str, until: Instant) -> Option<(Instant, Request)> {
    while let Some(t) = c.poll_timeout().filter(|t| *t <= until) {
        c.handle_timeout(t);
        if let Some((_, r)) = requests(c).into_iter().find(|(_, r)| r.method == method && branch(r) != old) {
            return Some((t, r));
        }
    }
    None
}

/// The first new request of `method` (retransmissions share a branch), with when it went.
fn first_new(sent: &[(Instant, SocketAddr, Request)], method: Method, after_branch: Option<&str>) -> Option<(Instant, SocketAddr, Request)> {
    sent.iter().find(|(_, _, r)| r.method == method && Some(branch(r).as_str()) != after_branch).cloned()
}

fn header_value(r: &Request, name: &str) -> Option<String> {
    r.headers.iter().map(|h| h.to_string()).find_map(|h| h.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

fn cseq(r: &Request) -> (u32, Method) {
    let c = r.cseq_header().unwrap().typed().unwrap();
    (c.seq, c.method)
}

fn branch(r: &Request) -> String {
    r.via_header().unwrap().typed().unwrap().branch().unwrap().to_string()
}

/// The peer's response to `request`, with a To tag and extra headers (and an SDP body).
fn response(request: &Request, code: u16, reason: &str, extra: &str, body: &str) -> String {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.to_string().starts_with(&format!("{name}:")))
            .map(|h| format!("{h}\r\n"))
            .unwrap()
    };
    let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
    format!(
        "SIP/2.0 {code} {reason}\r\n{}{}To: {};tag=peer\r\n{}{}{extra}{content_type}Content-Length: {}\r\n\r\n{body}",
        header("Via"),
        header("From"),
        request.to_header().unwrap().value(),
        header("Call-ID"),
        header("CSeq"),
        body.len()
    )
}

fn deliver(c: &mut UdpCore, now: Instant, from: &str, text: &str) {
    c.handle_datagram(now, from.parse().unwrap(), text.as_bytes());
}

/// Parses `Digest a="b", c=d` into pairs (test-side, independent of `digest`).
fn digest_params(value: &str) -> std::collections::HashMap<String, String> {
    value
        .trim_start_matches("Digest ")
        .split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn registration(c: &UdpCore) -> RegistrationState {
    c.trunk_status()[0].registration
}

#[test]
fn register_answers_the_401_with_digest_and_refreshes_before_the_granted_expiry() {
    let mut c = registering_core();
    let t0 = Instant::now();
    assert_eq!(registration(&c), RegistrationState::Registering);
    assert!(requests(&mut c).is_empty(), "nothing before start");
    c.start(t0);
    let reqs = requests(&mut c);
    let [(to, register)] = reqs.as_slice() else { panic!("{reqs:?}") };
    assert_eq!(*to, PROXY_A.parse().unwrap());
    assert_eq!(register.method, Method::Register);
    assert_eq!(register.uri.to_string(), "sip:203.0.113.5:5060");
    assert_eq!(register.to_header().unwrap().uri().unwrap().to_string(), "sip:rexian@203.0.113.5");
    assert_eq!(register.from_header().unwrap().uri().unwrap().to_string(), "sip:rexian@203.0.113.5");
    assert!(register.from_header().unwrap().tag().unwrap().is_some());
    assert_eq!(header_value(register, "Contact").as_deref(), Some("<sip:rexian@198.51.100.1:5060>"));
    assert_eq!(header_value(register, "Expires").as_deref(), Some("300"));
    assert_eq!(cseq(register), (1, Method::Register));
    assert!(header_value(register, "Authorization").is_none());

    let challenge = "WWW-Authenticate: Digest realm=\"registrar.example\", nonce=\"a1b2c3\", opaque=\"o9\", algorithm=MD5, qop=\"auth\"\r\n";
    deliver(&mut c, t0, PROXY_A, &response(register, 401, "Unauthorized", challenge, ""));
    let reqs = requests(&mut c);
    let [(to, again)] = reqs.as_slice() else { panic!("{reqs:?}") };
    assert_eq!(*to, PROXY_A.parse().unwrap());
    // §10.2: same Call-ID, next CSeq, new branch; the credentials answer the challenge.
    assert_eq!(cseq(again), (2, Method::Register));
    assert_eq!(again.call_id_header().unwrap(), register.call_id_header().unwrap());
    assert_ne!(branch(again), branch(register));
    let auth = header_value(again, "Authorization").expect("Authorization");
    let p = digest_params(&auth);
    assert_eq!((p["username"].as_str(), p["realm"].as_str(), p["nonce"].as_str()), ("rexian", "registrar.example", "a1b2c3"));
    assert_eq!(p["uri"], "sip:203.0.113.5:5060");
    assert_eq!((p["qop"].as_str(), p["nc"].as_str(), p["opaque"].as_str()), ("auth", "00000001", "o9"));
    // RFC 2617 §3.2.2.1, computed here from the formula.
    let ha1 = md5_hex("rexian:registrar.example:s3cret");
    let ha2 = md5_hex("REGISTER:sip:203.0.113.5:5060");
    assert_eq!(p["response"], md5_hex(&format!("{ha1}:a1b2c3:00000001:{}:auth:{ha2}", p["cnonce"])));
    assert!(!auth.contains("s3cret"));
    assert_eq!(registration(&c), RegistrationState::Registering);

    // The registrar grants 120 s on our Contact (and lists another binding of the AOR).
    let contact = "Contact: <sip:rexian@192.0.2.50:5060>;expires=3600, <sip:rexian@198.51.100.1:5060>;expires=120\r\nExpires: 3600\r\n";
    deliver(&mut c, t0, PROXY_A, &response(again, 200, "OK", contact, ""));
    assert_eq!(registration(&c), RegistrationState::Registered { expires_secs: 120 });
    assert!(events(&mut c).is_empty(), "registration is no call event");

    // The refresh comes at 85 % of 120 s: after 96 s (80 %) and well before 120 s.
    let sent = run_until(&mut c, t0 + Duration::from_secs(120));
    let (at, to, refresh) = first_new(&sent, Method::Register, None).expect("a refresh before the expiry");
    assert_eq!(at - t0, Duration::from_secs(102));
    assert_eq!(to, PROXY_A.parse().unwrap());
    assert_eq!(cseq(&refresh), (3, Method::Register));
    assert_eq!(refresh.call_id_header().unwrap(), register.call_id_header().unwrap());
    assert_eq!(registration(&c), RegistrationState::Registered { expires_secs: 120 }, "still registered while refreshing");
    // No Contact expires this time: the Expires header counts.
    deliver(&mut c, at, PROXY_A, &response(&refresh, 200, "OK", "Expires: 60\r\n", ""));
    assert_eq!(registration(&c), RegistrationState::Registered { expires_secs: 60 });
    let sent = run_until(&mut c, at + Duration::from_secs(60));
    let (next, _, _) = first_new(&sent, Method::Register, None).expect("another refresh");
    assert_eq!(next - at, Duration::from_secs(51));
}

#[test]
fn failed_registrations_retry_with_back_off_and_a_second_challenge_is_a_failure() {
    let mut c = registering_core();
    let t0 = Instant::now();
    c.start(t0);
    let first = requests(&mut c).remove(0).1;
    // Nobody answers: Timer F (32 s) fails it as 408; the retry comes 30 s later.
    let sent = run_until(&mut c, t0 + Duration::from_secs(40));
    assert!(sent.iter().all(|(_, _, r)| branch(r) == branch(&first)), "only retransmissions");
    assert_eq!(registration(&c), RegistrationState::Failed { status: 408 });
    let sent = run_until(&mut c, t0 + Duration::from_secs(62));
    let (at, _, retry) = first_new(&sent, Method::Register, Some(&branch(&first))).expect("a retry");
    assert_eq!(at - t0, Duration::from_secs(62));
    assert_eq!(cseq(&retry), (2, Method::Register));

    // Challenged, answered, challenged again: the credentials are wrong; a failure, and the
    // next retry waits twice as long (60 s).
    let challenge = "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\"\r\n";
    deliver(&mut c, at, PROXY_A, &response(&retry, 401, "Unauthorized", challenge, ""));
    let authed = requests(&mut c).remove(0).1;
    assert!(header_value(&authed, "Authorization").is_some());
    deliver(&mut c, at, PROXY_A, &response(&authed, 401, "Unauthorized", challenge, ""));
    assert!(requests(&mut c).is_empty(), "no second answer to a challenge");
    assert_eq!(registration(&c), RegistrationState::Failed { status: 401 });
    let sent = run_until(&mut c, at + Duration::from_secs(60));
    let (at2, _, retry) = first_new(&sent, Method::Register, Some(&branch(&authed))).expect("a retry");
    assert_eq!(at2 - at, Duration::from_secs(60));

    // A 403 doubles again (120 s); a 200 then resets the back-off.
    deliver(&mut c, at2, PROXY_A, &response(&retry, 403, "Forbidden", "", ""));
    assert_eq!(registration(&c), RegistrationState::Failed { status: 403 });
    let sent = run_until(&mut c, at2 + Duration::from_secs(120));
    let (at3, _, retry) = first_new(&sent, Method::Register, Some(&branch(&retry))).expect("a retry");
    assert_eq!(at3 - at2, Duration::from_secs(120));
    deliver(&mut c, at3, PROXY_A, &response(&retry, 200, "OK", "Contact: <sip:rexian@198.51.100.1:5060>;expires=300\r\n", ""));
    assert_eq!(registration(&c), RegistrationState::Registered { expires_secs: 300 });
}

#[test]
fn a_423_raises_the_expiry_and_the_back_off_is_capped() {
    let mut c = registering_core();
    let t0 = Instant::now();
    c.start(t0);
    let first = requests(&mut c).remove(0).1;
    deliver(&mut c, t0, PROXY_A, &response(&first, 423, "Interval Too Brief", "Min-Expires: 600\r\n", ""));
    let again = requests(&mut c).remove(0).1;
    assert_eq!(header_value(&again, "Expires").as_deref(), Some("600"));
    // Refusals in a row: 30, 60, 120, 240, then 300 s at most.
    let mut last = (t0, again);
    let mut waits = Vec::new();
    for _ in 0..6 {
        let (at, request) = last;
        deliver(&mut c, at, PROXY_A, &response(&request, 503, "Service Unavailable", "", ""));
        let (next, retry) = next_new(&mut c, Method::Register, &branch(&request), at + Duration::from_secs(400)).expect("a retry");
        waits.push((next - at).as_secs());
        last = (next, retry);
    }
    assert_eq!(waits, vec![30, 60, 120, 240, 300, 300]);
}

#[test]
fn options_every_30_s_two_timeouts_mark_the_trunk_down_and_an_answer_up_again() {
    let (mut c, metrics) = core(vec![trunk("carrier", PROXY_A), TrunkPeer { name: "inbound-only".into(), ..Default::default() }], Some(Duration::from_secs(30)));
    let t0 = Instant::now();
    c.start(t0);
    assert!(requests(&mut c).is_empty(), "the first ping waits one interval");
    assert_eq!(c.trunk_status()[1].registration, RegistrationState::NotConfigured);
    // Pings at 30 s and 60 s, unanswered. The first one's Timer F fires at 62 s: one failure
    // is not yet down.
    let sent = run_until(&mut c, t0 + Duration::from_secs(91));
    let pings: Vec<_> = sent.iter().filter(|(_, _, r)| r.method == Method::Options).map(|(t, to, r)| (*t, *to, branch(r))).collect();
    let mut firsts: Vec<(Duration, SocketAddr)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (t, to, b) in &pings {
        if seen.insert(b.clone()) {
            firsts.push((*t - t0, *to));
        }
    }
    let a: SocketAddr = PROXY_A.parse().unwrap();
    assert_eq!(firsts, vec![(Duration::from_secs(30), a), (Duration::from_secs(60), a), (Duration::from_secs(90), a)], "one trunk pinged, every 30 s");
    let ping = &sent.iter().find(|(_, _, r)| r.method == Method::Options).unwrap().2;
    assert_eq!(ping.uri.to_string(), "sip:203.0.113.5:5060");
    assert_eq!(cseq(ping), (1, Method::Options));
    assert!(events(&mut c).is_empty(), "one failure is not down");
    assert!(c.trunk_status()[0].up);
    assert_eq!(metrics.trunks_up.load(Ordering::Relaxed), 1);
    // The second ping's Timer F at 92 s: down.
    run_until(&mut c, t0 + Duration::from_secs(92));
    assert_eq!(events(&mut c), vec![CallEvent::TrunkDown { trunk: "carrier".into() }]);
    assert!(!c.trunk_status()[0].up);
    assert_eq!(metrics.trunks_up.load(Ordering::Relaxed), 0);
    // The ping of 90 s is still running; the carrier answers it 405: alive, up again.
    let third = sent.iter().rev().find(|(_, _, r)| r.method == Method::Options).unwrap().2.clone();
    deliver(&mut c, t0 + Duration::from_secs(93), PROXY_A, &response(&third, 405, "Method Not Allowed", "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::TrunkUp { trunk: "carrier".into() }]);
    assert_eq!(metrics.trunks_up.load(Ordering::Relaxed), 1);
    assert!(metrics.render().contains("rexian_trunks_up 1\n"));

    // Two 503s in a row: down again; a 200: up.
    let mut t = t0 + Duration::from_secs(93);
    let mut answer = |c: &mut UdpCore, code: u16| {
        let sent = run_until(c, t + Duration::from_secs(30));
        let (at, _, ping) = first_new(&sent, Method::Options, None).expect("a ping");
        deliver(c, at, PROXY_A, &response(&ping, code, "X", "", ""));
        t = at;
        events(c)
    };
    assert!(answer(&mut c, 503).is_empty());
    assert_eq!(answer(&mut c, 503), vec![CallEvent::TrunkDown { trunk: "carrier".into() }]);
    assert_eq!(answer(&mut c, 200), vec![CallEvent::TrunkUp { trunk: "carrier".into() }]);
    assert!(answer(&mut c, 404).is_empty(), "404 is alive too");
}

#[test]
fn keepalive_zero_or_none_sends_nothing() {
    for keepalive in [None, Some(Duration::ZERO)] {
        let (mut c, _) = core(vec![trunk("carrier", PROXY_A)], keepalive);
        let t0 = Instant::now();
        c.start(t0);
        assert!(run_until(&mut c, t0 + Duration::from_secs(3600)).is_empty());
        assert_eq!(c.poll_timeout(), None);
    }
}

fn originate(c: &mut UdpCore, now: Instant, n: u64, trunk: &str) -> LegId {
    let leg = LegId::engine(n);
    c.handle_command(
        now,
        CallCommand::Originate {
            leg,
            trunk: trunk.into(),
            to_number: "13800138000".into(),
            from_number: "12365".into(),
            sdp: OFFER.as_bytes().to_vec(),
        },
    );
    leg
}

fn invites(c: &mut UdpCore) -> Vec<(SocketAddr, Request)> {
    requests(c).into_iter().filter(|(_, r)| r.method == Method::Invite).collect()
}

#[test]
fn an_invite_answered_503_fails_over_to_the_next_trunk_which_answers() {
    let (mut c, _) = core(vec![trunk("a", PROXY_A), trunk("b", PROXY_B)], None);
    let t0 = Instant::now();
    let leg = originate(&mut c, t0, 1, "a");
    let [(to, invite_a)] = invites(&mut c).try_into().unwrap();
    assert_eq!(to, PROXY_A.parse().unwrap());
    deliver(&mut c, t0, PROXY_A, &response(&invite_a, 100, "Trying", "", ""));
    deliver(&mut c, t0, PROXY_A, &response(&invite_a, 503, "Service Unavailable", "", ""));
    assert!(events(&mut c).is_empty(), "the engine does not hear of the first trunk's failure");
    let sent = requests(&mut c);
    assert!(sent.iter().any(|(to, r)| r.method == Method::Ack && *to == PROXY_A.parse().unwrap()), "the 503 is ACKed: {sent:?}");
    let [(to, invite_b)]: [(SocketAddr, Request); 1] = sent.into_iter().filter(|(_, r)| r.method == Method::Invite).collect::<Vec<_>>().try_into().unwrap();
    assert_eq!(to, PROXY_B.parse().unwrap());
    assert_eq!(invite_b.uri.to_string(), "sip:13800138000@203.0.113.6:5060");
    assert_ne!(invite_b.call_id_header().unwrap(), invite_a.call_id_header().unwrap(), "a new call");
    assert_eq!(invite_b.body, OFFER.as_bytes());
    assert_eq!(c.calls(), 1);
    deliver(&mut c, t0, PROXY_B, &response(&invite_b, 180, "Ringing", "", ""));
    deliver(&mut c, t0, PROXY_B, &response(&invite_b, 200, "OK", "Contact: <sip:callee@203.0.113.6:5060>\r\n", ANSWER));
    assert_eq!(
        events(&mut c),
        vec![
            CallEvent::Ringing { leg, early_sdp: None },
            CallEvent::Answered { leg, sdp: ANSWER.as_bytes().to_vec(), trunk: "b".into() },
        ]
    );
    // The call is the engine's leg as usual: its hang-up sends BYE to the second carrier.
    c.handle_command(t0 + Duration::from_secs(1), CallCommand::Hangup { leg });
    let reqs = requests(&mut c);
    assert!(reqs.iter().any(|(to, r)| r.method == Method::Bye && *to == PROXY_B.parse().unwrap()), "{reqs:?}");
}

#[test]
fn failover_is_bounded_and_only_for_trunk_failures_before_ringing() {
    let (mut c, _) = core(vec![trunk("a", PROXY_A), trunk("b", PROXY_B)], None);
    let t0 = Instant::now();
    // Busy is the callee's answer: no failover.
    let leg = originate(&mut c, t0, 1, "a");
    let invite = invites(&mut c).remove(0).1;
    deliver(&mut c, t0, PROXY_A, &response(&invite, 486, "Busy Here", "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::Failed { leg, status: 486 }]);
    assert!(invites(&mut c).is_empty());
    // After ringing, a 503 stands.
    let leg = originate(&mut c, t0, 2, "a");
    let invite = invites(&mut c).remove(0).1;
    deliver(&mut c, t0, PROXY_A, &response(&invite, 180, "Ringing", "", ""));
    deliver(&mut c, t0, PROXY_A, &response(&invite, 503, "Service Unavailable", "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::Ringing { leg, early_sdp: None }, CallEvent::Failed { leg, status: 503 }]);
    assert!(invites(&mut c).is_empty());
    // Each trunk once: b (the engine's choice) 500, a 503, then the last failure is reported.
    let leg = originate(&mut c, t0, 3, "b");
    let (to, invite) = invites(&mut c).remove(0);
    assert_eq!(to, PROXY_B.parse().unwrap());
    deliver(&mut c, t0, PROXY_B, &response(&invite, 500, "Server Internal Error", "", ""));
    let (to, invite) = invites(&mut c).remove(0);
    assert_eq!(to, PROXY_A.parse().unwrap());
    deliver(&mut c, t0, PROXY_A, &response(&invite, 503, "Service Unavailable", "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::Failed { leg, status: 503 }]);
    assert!(invites(&mut c).is_empty());
    assert_eq!(c.calls(), 0);
    // No answer at all (timer B, 32 s) on a: 408, then b.
    let leg = originate(&mut c, t0, 4, "a");
    let sent = run_until(&mut c, t0 + Duration::from_secs(32));
    let first_b = sent.iter().find(|(_, to, r)| r.method == Method::Invite && *to == PROXY_B.parse().unwrap());
    let (at, _, invite_b) = first_b.expect("failover after timer B").clone();
    assert_eq!(at - t0, Duration::from_secs(32));
    assert!(events(&mut c).is_empty());
    deliver(&mut c, at, PROXY_B, &response(&invite_b, 200, "OK", "Contact: <sip:callee@203.0.113.6:5060>\r\n", ANSWER));
    assert_eq!(events(&mut c), vec![CallEvent::Answered { leg, sdp: ANSWER.as_bytes().to_vec(), trunk: "b".into() }]);
}

#[test]
fn a_call_for_a_trunk_marked_down_goes_to_the_next_one_that_is_up() {
    let (mut c, _) = core(vec![trunk("a", PROXY_A), trunk("b", PROXY_B)], Some(Duration::from_secs(30)));
    let t0 = Instant::now();
    c.start(t0);
    // a never answers its pings; b answers every one.
    let mut t = t0;
    let until = t0 + Duration::from_secs(92);
    while let Some(next) = c.poll_timeout().filter(|n| *n <= until) {
        c.handle_timeout(next);
        t = next;
        for (to, r) in requests(&mut c) {
            if to == PROXY_B.parse().unwrap() && r.method == Method::Options {
                deliver(&mut c, t, PROXY_B, &response(&r, 200, "OK", "", ""));
            }
        }
    }
    assert_eq!(events(&mut c), vec![CallEvent::TrunkDown { trunk: "a".into() }]);
    let status = c.trunk_status();
    assert_eq!((status[0].up, status[1].up), (false, true));

    let leg = originate(&mut c, t, 1, "a");
    let [(to, invite)] = invites(&mut c).try_into().unwrap();
    assert_eq!(to, PROXY_B.parse().unwrap(), "a is down: b takes the call");
    deliver(&mut c, t, PROXY_B, &response(&invite, 200, "OK", "Contact: <sip:callee@203.0.113.6:5060>\r\n", ANSWER));
    assert_eq!(events(&mut c), vec![CallEvent::Answered { leg, sdp: ANSWER.as_bytes().to_vec(), trunk: "b".into() }]);
}

#[test]
fn with_every_trunk_down_the_named_one_is_still_tried() {
    let (mut c, _) = core(vec![trunk("a", PROXY_A), trunk("b", PROXY_B)], Some(Duration::from_secs(30)));
    let t0 = Instant::now();
    c.start(t0);
    run_until(&mut c, t0 + Duration::from_secs(92));
    assert_eq!(events(&mut c).len(), 2, "both down");
    let leg = originate(&mut c, t0 + Duration::from_secs(92), 1, "b");
    let (to, invite) = invites(&mut c).remove(0);
    assert_eq!(to, PROXY_B.parse().unwrap());
    // And its failure is final: a is down, so no failover to it.
    deliver(&mut c, t0 + Duration::from_secs(92), PROXY_B, &response(&invite, 503, "Service Unavailable", "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::Failed { leg, status: 503 }]);
}

#[test]
fn contact_lists_are_split_outside_angle_brackets() {
    assert_eq!(
        contact_entries("<sip:a@h;x=1,2>;expires=60 , sip:b@h;expires=30,<sip:c@h>"),
        vec![("sip:a@h;x=1,2".into(), Some(60)), ("sip:b@h".into(), Some(30)), ("sip:c@h".into(), None)]
    );
}

#[test]
fn debug_of_the_monitor_shows_no_password() {
    let c = registering_core();
    let text = format!("{c:?} {:?}", c.trunk_status());
    assert!(!text.contains("s3cret"), "{text}");
}
