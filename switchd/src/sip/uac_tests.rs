//! Outbound call flows of [`UacCall`] driven through the whole sans-IO stack
//! ([`UdpCore`]: parsing, transactions, [`Calls`]) on a virtual clock. The peer's responses
//! are written the way SIPp's UAS scenario and carrier SBCs send them.

use super::*;
use crate::metrics::Metrics;
use crate::sip::ua::{CallCommand, CallEvent, Calls, EndReason, LegId, TrunkPeer};
use crate::sip::udp::{Limits, UdpCore};
use md5::{Digest as _, Md5};
use std::sync::Arc;

/// The carrier's SBC: the INVITE goes here.
const PROXY: &str = "203.0.113.5:5060";
/// The callee's Contact behind it.
const CALLEE: &str = "203.0.113.9:5070";
const OFFER: &str = "v=0\r\no=- 7 7 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
const ANSWER: &str = "v=0\r\no=- 9 9 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn core_with(username: Option<&str>, password: Option<&str>) -> UdpCore {
    let trunk = TrunkPeer {
        name: "carrier".into(),
        addresses: vec!["203.0.113.5".parse().unwrap()],
        proxy: Some(PROXY.parse().unwrap()),
        username: username.map(Into::into),
        password: password.map(Into::into),
        ..Default::default()
    };
    let calls = Calls::new(Timers::default(), "198.51.100.1:5060".parse().unwrap(), vec![trunk], 4);
    UdpCore::new(Timers::default(), Limits::default(), Arc::new(Metrics::default()), calls)
}

fn core() -> UdpCore {
    core_with(None, None)
}

fn sent(c: &mut UdpCore) -> Vec<(SocketAddr, SipMessage)> {
    std::iter::from_fn(|| c.poll_transmit())
        .map(|(to, b)| (to, SipMessage::try_from(b.as_slice()).unwrap()))
        .collect()
}

fn requests(c: &mut UdpCore) -> Vec<(SocketAddr, Request)> {
    sent(c)
        .into_iter()
        .filter_map(|(to, m)| match m {
            SipMessage::Request(r) => Some((to, r)),
            SipMessage::Response(_) => None,
        })
        .collect()
}

fn events(c: &mut UdpCore) -> Vec<CallEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn originate(c: &mut UdpCore, now: Instant, n: u64) -> (LegId, Request) {
    let leg = LegId::engine(n);
    c.handle_command(
        now,
        CallCommand::Originate {
            leg,
            trunk: "carrier".into(),
            to_number: "13800138000".into(),
            from_number: "4008123456".into(),
            sdp: OFFER.as_bytes().to_vec(),
        },
    );
    let mut reqs = requests(c);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let (to, invite) = reqs.remove(0);
    assert_eq!(to, PROXY.parse().unwrap());
    (leg, invite)
}

/// The peer's response to `request`: its Via, From, Call-ID and CSeq, its To with `tag`, our
/// Contact and optional extra headers and SDP body.
fn response(request: &Request, code: u16, reason: &str, tag: Option<&str>, body: &str, extra: &str) -> String {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.to_string().starts_with(&format!("{name}:")))
            .map(|h| format!("{h}\r\n"))
            .unwrap()
    };
    let to = request.to_header().unwrap().value().to_owned();
    let to = match tag {
        Some(t) => format!("To: {to};tag={t}\r\n"),
        None => format!("To: {to}\r\n"),
    };
    let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
    format!(
        "SIP/2.0 {code} {reason}\r\n{}{}{to}{}{}Contact: <sip:13800138000@{CALLEE}>\r\n{extra}{content_type}Content-Length: {}\r\n\r\n{body}",
        header("Via"),
        header("From"),
        header("Call-ID"),
        header("CSeq"),
        body.len()
    )
}

fn deliver(c: &mut UdpCore, now: Instant, text: &str) {
    c.handle_datagram(now, PROXY.parse().unwrap(), text.as_bytes());
}

fn cseq(r: &Request) -> (u32, Method) {
    let c = r.cseq_header().unwrap().typed().unwrap();
    (c.seq, c.method)
}

fn branch(r: &Request) -> String {
    r.via_header().unwrap().typed().unwrap().branch().unwrap().to_string()
}

fn header_value(r: &Request, name: &str) -> Option<String> {
    r.headers.iter().map(|h| h.to_string()).find_map(|h| h.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

/// A request from the callee inside the dialog (From = its To with tag, To = our From).
fn peer_request(method: &str, invite: &Request, tag: &str, seq: u32, body_headers: &str, body: &str) -> String {
    let our_from = invite.from_header().unwrap().value().to_owned();
    let their = invite.to_header().unwrap().value().to_owned();
    let call_id = invite.call_id_header().unwrap().value().to_owned();
    format!(
        "{method} sip:switchd@198.51.100.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLEE};branch=z9hG4bKpeer{method}{seq}\r\n\
         Max-Forwards: 70\r\n\
         From: {their};tag={tag}\r\n\
         To: {our_from}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {seq} {method}\r\n\
         Contact: <sip:13800138000@{CALLEE}>\r\n\
         {body_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Originate, 100, 180 (with a To tag), 200 with Record-Route: the call is up.
fn answered(c: &mut UdpCore, t0: Instant, rr: bool) -> (LegId, Request, Request) {
    let (leg, invite) = originate(c, t0, 1);
    deliver(c, t0, &response(&invite, 100, "Trying", None, "", ""));
    deliver(c, t0, &response(&invite, 180, "Ringing", Some("callee1"), "", ""));
    assert_eq!(events(c), vec![CallEvent::Ringing { leg, early_sdp: None }]);
    let extra = if rr { "Record-Route: <sip:203.0.113.5;lr>\r\n" } else { "" };
    deliver(c, t0, &response(&invite, 200, "OK", Some("callee1"), ANSWER, extra));
    assert_eq!(events(c), vec![CallEvent::Answered { leg, sdp: ANSWER.as_bytes().to_vec(), trunk: "carrier".into() }]);
    let mut reqs = requests(c);
    assert_eq!(reqs.len(), 1, "one ACK: {reqs:?}");
    let (to, ack) = reqs.remove(0);
    let want: SocketAddr = if rr { PROXY.parse().unwrap() } else { CALLEE.parse().unwrap() };
    assert_eq!(to, want, "ACK goes to the first route, else to the Contact");
    (leg, invite, ack)
}

#[test]
fn originate_ring_answer_ack_and_our_bye() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 1);
    // The INVITE (§8.1.1).
    assert_eq!(invite.uri.to_string(), "sip:13800138000@203.0.113.5:5060");
    assert_eq!(cseq(&invite), (1, Method::Invite));
    assert!(branch(&invite).starts_with("z9hG4bK"));
    let from = invite.from_header().unwrap();
    assert_eq!(from.uri().unwrap().to_string(), "sip:4008123456@198.51.100.1");
    assert!(from.tag().unwrap().is_some());
    assert!(invite.to_header().unwrap().tag().unwrap().is_none());
    assert_eq!(invite.contact_header().unwrap().uri().unwrap().to_string(), "sip:switchd@198.51.100.1:5060");
    assert_eq!(header_value(&invite, "Max-Forwards").as_deref(), Some("70"));
    assert_eq!(invite.body, OFFER.as_bytes());
    assert_eq!(c.calls(), 1);

    deliver(&mut c, t0, &response(&invite, 100, "Trying", None, "", ""));
    assert!(events(&mut c).is_empty(), "100 is no ringing");
    // 180, then a 183 with early media: two Ringing events; a repeated 180 adds none.
    deliver(&mut c, t0, &response(&invite, 180, "Ringing", Some("callee1"), "", ""));
    deliver(&mut c, t0, &response(&invite, 180, "Ringing", Some("callee1"), "", ""));
    deliver(&mut c, t0, &response(&invite, 183, "Session Progress", Some("callee1"), ANSWER, ""));
    assert_eq!(
        events(&mut c),
        vec![
            CallEvent::Ringing { leg, early_sdp: None },
            CallEvent::Ringing { leg, early_sdp: Some(ANSWER.as_bytes().to_vec()) },
        ]
    );
    deliver(&mut c, t0, &response(&invite, 200, "OK", Some("callee1"), ANSWER, "Record-Route: <sip:203.0.113.5;lr>\r\n"));
    assert_eq!(events(&mut c), vec![CallEvent::Answered { leg, sdp: ANSWER.as_bytes().to_vec(), trunk: "carrier".into() }]);
    let reqs = requests(&mut c);
    let [(to, ack)] = reqs.as_slice() else { panic!("{reqs:?}") };
    // §13.2.2.4: an in-dialog request with the INVITE's CSeq number, a new branch, the route
    // set (Record-Route reversed) and the Contact as Request-URI; sent to the first route.
    assert_eq!(*to, PROXY.parse().unwrap());
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri.to_string(), format!("sip:13800138000@{CALLEE}"));
    assert_eq!(cseq(ack), (1, Method::Ack));
    assert_ne!(branch(ack), branch(&invite));
    assert_eq!(header_value(ack, "Route").as_deref(), Some("<sip:203.0.113.5;lr>"));
    assert_eq!(ack.to_header().unwrap().tag().unwrap().unwrap().value(), "callee1");
    assert_eq!(ack.call_id_header().unwrap(), invite.call_id_header().unwrap());

    c.handle_command(t0 + Duration::from_secs(5), CallCommand::Hangup { leg });
    let reqs = requests(&mut c);
    let [(to, bye)] = reqs.as_slice() else { panic!("{reqs:?}") };
    assert_eq!(*to, PROXY.parse().unwrap());
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(cseq(bye), (2, Method::Bye));
    assert_eq!(bye.uri.to_string(), format!("sip:13800138000@{CALLEE}"));
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg, reason: EndReason::Local }]);
    assert_eq!(c.calls(), 0);
    // The 200 to our BYE is absorbed by its transaction.
    deliver(&mut c, t0 + Duration::from_secs(5), &response(bye, 200, "OK", Some("callee1"), "", ""));
    assert!(sent(&mut c).is_empty() && events(&mut c).is_empty());
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

#[test]
fn proxy_challenge_is_answered_once_with_credentials_the_test_verifies() {
    let mut c = core_with(Some("rexian"), Some("s3cret"));
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 2);
    let challenge = "Proxy-Authenticate: Digest realm=\"sip.carrier.example\", nonce=\"5f2a9c1e\", opaque=\"op1\", algorithm=MD5, qop=\"auth\"\r\n";
    deliver(&mut c, t0, &response(&invite, 407, "Proxy Authentication Required", Some("sbc"), "", challenge));
    let reqs = requests(&mut c);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    // The transaction ACKs the 407 (same branch, CSeq 1 ACK) ...
    let (_, ack407) = &reqs[0];
    assert_eq!((ack407.method, cseq(ack407)), (Method::Ack, (1, Method::Ack)));
    assert_eq!(branch(ack407), branch(&invite));
    // ... and we re-send the INVITE: new CSeq and branch, same Call-ID, From tag and To.
    let (to, again) = &reqs[1];
    assert_eq!(*to, PROXY.parse().unwrap());
    assert_eq!(cseq(again), (2, Method::Invite));
    assert_ne!(branch(again), branch(&invite));
    assert_eq!(again.call_id_header().unwrap(), invite.call_id_header().unwrap());
    assert_eq!(again.from_header().unwrap(), invite.from_header().unwrap());
    assert_eq!(again.to_header().unwrap(), invite.to_header().unwrap());
    assert_eq!(again.body, invite.body);
    assert!(header_value(again, "Authorization").is_none());
    let auth = header_value(again, "Proxy-Authorization").expect("Proxy-Authorization");
    let p = digest_params(&auth);
    assert_eq!(p["username"], "rexian");
    assert_eq!(p["realm"], "sip.carrier.example");
    assert_eq!(p["nonce"], "5f2a9c1e");
    assert_eq!(p["uri"], "sip:13800138000@203.0.113.5:5060");
    assert_eq!((p["qop"].as_str(), p["nc"].as_str(), p["opaque"].as_str(), p["algorithm"].as_str()), ("auth", "00000001", "op1", "MD5"));
    // RFC 2617 §3.2.2.1, computed here from the formula.
    let ha1 = md5_hex("rexian:sip.carrier.example:s3cret");
    let ha2 = md5_hex("INVITE:sip:13800138000@203.0.113.5:5060");
    let want = md5_hex(&format!("{ha1}:5f2a9c1e:00000001:{}:auth:{ha2}", p["cnonce"]));
    assert_eq!(p["response"], want);
    assert!(!auth.contains("s3cret"));

    deliver(&mut c, t0, &response(again, 200, "OK", Some("callee1"), ANSWER, ""));
    assert_eq!(events(&mut c), vec![CallEvent::Answered { leg, sdp: ANSWER.as_bytes().to_vec(), trunk: "carrier".into() }]);
    let reqs = requests(&mut c);
    let [(to, ack)] = reqs.as_slice() else { panic!("{reqs:?}") };
    assert_eq!(*to, CALLEE.parse().unwrap(), "no Record-Route: the ACK goes to the Contact");
    assert_eq!(cseq(ack), (2, Method::Ack));
    // §13.2.2.4: the ACK carries the INVITE's credentials.
    assert_eq!(header_value(ack, "Proxy-Authorization"), Some(auth));
}

#[test]
fn wrong_password_403_and_a_second_challenge_both_fail() {
    let challenge = "WWW-Authenticate: Digest realm=\"carrier\", nonce=\"abc\"\r\n";
    // The peer refuses the credentials with 403.
    let mut c = core_with(Some("rexian"), Some("wrong"));
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 3);
    deliver(&mut c, t0, &response(&invite, 401, "Unauthorized", Some("sbc"), "", challenge));
    let reqs = requests(&mut c);
    let again = &reqs.iter().find(|(_, r)| r.method == Method::Invite).expect("re-INVITE").1;
    assert!(header_value(again, "Authorization").is_some());
    deliver(&mut c, t0, &response(again, 403, "Forbidden", Some("sbc"), "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::Failed { leg, status: 403 }]);
    let reqs = requests(&mut c);
    assert!(matches!(reqs.as_slice(), [(_, a)] if a.method == Method::Ack), "403 ACKed by the transaction: {reqs:?}");
    assert_eq!(c.calls(), 0);

    // The peer challenges again: no second try.
    let (leg, invite) = originate(&mut c, t0, 4);
    deliver(&mut c, t0, &response(&invite, 401, "Unauthorized", Some("sbc"), "", challenge));
    let again = requests(&mut c).into_iter().find(|(_, r)| r.method == Method::Invite).expect("re-INVITE").1;
    deliver(&mut c, t0, &response(&again, 401, "Unauthorized", Some("sbc"), "", challenge));
    assert_eq!(events(&mut c), vec![CallEvent::Failed { leg, status: 401 }]);
    assert!(requests(&mut c).iter().all(|(_, r)| r.method == Method::Ack));

    // Without credentials a challenge is a failure at once.
    let mut c = core();
    let (leg, invite) = originate(&mut c, t0, 5);
    deliver(&mut c, t0, &response(&invite, 407, "Proxy Authentication Required", Some("sbc"), "", challenge));
    assert_eq!(events(&mut c), vec![CallEvent::Failed { leg, status: 407 }]);
}

#[test]
fn cancel_while_ringing_then_487_ends_the_leg() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 6);
    deliver(&mut c, t0, &response(&invite, 180, "Ringing", Some("callee1"), "", ""));
    events(&mut c);
    c.handle_command(t0 + Duration::from_secs(3), CallCommand::Hangup { leg });
    let reqs = requests(&mut c);
    let [(to, cancel)] = reqs.as_slice() else { panic!("{reqs:?}") };
    // §9.1: same Request-URI, branch, Call-ID, From, To (no tag) and CSeq number.
    assert_eq!(*to, PROXY.parse().unwrap());
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(cancel.uri, invite.uri);
    assert_eq!(branch(cancel), branch(&invite));
    assert_eq!(cseq(cancel), (1, Method::Cancel));
    assert_eq!(cancel.from_header().unwrap(), invite.from_header().unwrap());
    assert_eq!(cancel.to_header().unwrap(), invite.to_header().unwrap());
    assert_eq!(cancel.call_id_header().unwrap(), invite.call_id_header().unwrap());
    assert!(events(&mut c).is_empty(), "the leg ends when the INVITE does");
    deliver(&mut c, t0 + Duration::from_secs(3), &response(cancel, 200, "OK", Some("callee1"), "", ""));
    deliver(&mut c, t0 + Duration::from_secs(3), &response(&invite, 487, "Request Terminated", Some("callee1"), "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg, reason: EndReason::Local }]);
    let reqs = requests(&mut c);
    assert!(matches!(reqs.as_slice(), [(_, a)] if a.method == Method::Ack && cseq(a) == (1, Method::Ack)), "{reqs:?}");
    assert_eq!(c.calls(), 0);
}

#[test]
fn hangup_before_any_response_cancels_after_the_first_provisional() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 7);
    c.handle_command(t0, CallCommand::Hangup { leg });
    assert!(requests(&mut c).is_empty(), "§9.1: no CANCEL before a provisional");
    deliver(&mut c, t0, &response(&invite, 100, "Trying", None, "", ""));
    let reqs = requests(&mut c);
    assert!(matches!(reqs.as_slice(), [(_, r)] if r.method == Method::Cancel), "{reqs:?}");
    assert!(events(&mut c).is_empty(), "no Ringing after our hang-up");
    // The callee answered anyway: ACK that 200 and end it with BYE.
    deliver(&mut c, t0, &response(&invite, 200, "OK", Some("callee1"), ANSWER, ""));
    let reqs = requests(&mut c);
    let methods: Vec<Method> = reqs.iter().map(|(_, r)| r.method).collect();
    assert_eq!(methods, vec![Method::Ack, Method::Bye]);
    assert!(reqs.iter().all(|(to, _)| *to == CALLEE.parse().unwrap()));
    assert_eq!(cseq(&reqs[1].1), (2, Method::Bye));
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg, reason: EndReason::Local }]);
}

#[test]
fn cancel_without_final_response_gives_up_after_64_t1() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 8);
    deliver(&mut c, t0, &response(&invite, 183, "Session Progress", Some("x"), "", ""));
    c.handle_command(t0, CallCommand::Hangup { leg });
    sent(&mut c);
    events(&mut c);
    while let Some(t) = c.poll_timeout() {
        assert!(t <= t0 + Duration::from_secs(40), "runs out");
        c.handle_timeout(t);
        let ev = events(&mut c);
        if !ev.is_empty() {
            assert_eq!(ev, vec![CallEvent::Ended { leg, reason: EndReason::Local }]);
            assert_eq!(t - t0, Duration::from_secs(32));
        }
    }
    assert_eq!(c.calls(), 0);
    assert_eq!(c.transactions(), 0, "the stuck INVITE transaction is dropped");
}

#[test]
fn busy_486_and_redirect_302_fail_with_their_status() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 9);
    deliver(&mut c, t0, &response(&invite, 180, "Ringing", Some("b"), "", ""));
    events(&mut c);
    deliver(&mut c, t0, &response(&invite, 486, "Busy Here", Some("b"), "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::Failed { leg, status: 486 }]);
    let reqs = requests(&mut c);
    assert!(matches!(reqs.as_slice(), [(to, a)] if a.method == Method::Ack && *to == PROXY.parse().unwrap()), "{reqs:?}");
    // A retransmitted 486 is absorbed by the transaction (ACK again, no event).
    deliver(&mut c, t0, &response(&invite, 486, "Busy Here", Some("b"), "", ""));
    assert_eq!(requests(&mut c).len(), 1);
    assert!(events(&mut c).is_empty());

    let (leg, invite) = originate(&mut c, t0, 10);
    deliver(&mut c, t0, &response(&invite, 302, "Moved Temporarily", Some("r"), "", ""));
    assert_eq!(events(&mut c), vec![CallEvent::Failed { leg, status: 302 }]);
    assert_eq!(c.calls(), 0);
}

#[test]
fn timer_b_fails_the_call_with_408() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, _invite) = originate(&mut c, t0, 11);
    let mut retransmits = 0;
    let mut failed_at = None;
    while let Some(t) = c.poll_timeout() {
        c.handle_timeout(t);
        retransmits += requests(&mut c).iter().filter(|(_, r)| r.method == Method::Invite).count();
        let ev = events(&mut c);
        if !ev.is_empty() {
            assert_eq!(ev, vec![CallEvent::Failed { leg, status: 408 }]);
            failed_at = Some(t - t0);
        }
    }
    assert_eq!(failed_at, Some(Duration::from_secs(32)));
    assert_eq!(retransmits, 6, "timer A: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s");
    assert_eq!(c.calls(), 0);
}

#[test]
fn retransmitted_200_is_acked_again_and_a_forked_200_is_ended() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite, ack) = answered(&mut c, t0, false);
    // The INVITE transaction is gone; the retransmission is a stray response for `Calls`.
    let ok = response(&invite, 200, "OK", Some("callee1"), ANSWER, "");
    deliver(&mut c, t0 + Duration::from_millis(500), &ok);
    let reqs = requests(&mut c);
    assert_eq!(reqs, vec![(CALLEE.parse().unwrap(), ack.clone())], "the same ACK again");
    assert!(events(&mut c).is_empty());
    // A 2xx from another fork: ACK it and BYE its dialog; our call stays.
    deliver(&mut c, t0 + Duration::from_millis(600), &response(&invite, 200, "OK", Some("fork2"), ANSWER, ""));
    let reqs = requests(&mut c);
    let methods: Vec<Method> = reqs.iter().map(|(_, r)| r.method).collect();
    assert_eq!(methods, vec![Method::Ack, Method::Bye]);
    assert!(reqs.iter().all(|(_, r)| r.to_header().unwrap().tag().unwrap().unwrap().value() == "fork2"));
    assert!(events(&mut c).is_empty());
    assert_eq!(c.calls(), 1);
    let _ = leg;
}

#[test]
fn peer_info_reinvite_and_bye_in_the_outbound_dialog() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite, _ack) = answered(&mut c, t0, true);
    let callee: SocketAddr = CALLEE.parse().unwrap();
    let info = peer_request("INFO", &invite, "callee1", 1, "Content-Type: application/dtmf-relay\r\n", "Signal=7\r\nDuration=160\r\n");
    c.handle_datagram(t0, callee, info.as_bytes());
    let out = sent(&mut c);
    assert!(matches!(out.as_slice(), [(to, SipMessage::Response(r))] if r.status_code.code() == 200 && *to == callee), "{out:?}");
    assert_eq!(events(&mut c), vec![CallEvent::Dtmf { leg, digit: '7' }]);

    // Hold: the engine answers with an empty SDP, meaning "what we offered".
    let hold = ANSWER.replace("RTP/AVP 8 101\r\n", "RTP/AVP 8 101\r\na=sendonly\r\n");
    let reinvite = peer_request("INVITE", &invite, "callee1", 2, "Content-Type: application/sdp\r\n", &hold);
    c.handle_datagram(t0, callee, reinvite.as_bytes());
    assert_eq!(events(&mut c), vec![CallEvent::ReInvite { leg, sdp: hold.as_bytes().to_vec() }]);
    c.handle_command(t0, CallCommand::AcceptReinvite { leg, sdp: Vec::new() });
    let out = sent(&mut c);
    let ok = out.iter().find_map(|(_, m)| match m {
        SipMessage::Response(r) if r.status_code.code() == 200 => Some(r.clone()),
        _ => None,
    });
    let ok = ok.expect("200 to the re-INVITE");
    assert_eq!(ok.body, OFFER.as_bytes());
    // Retransmitted until the ACK (§13.3.1.4).
    c.handle_timeout(t0 + Duration::from_millis(500));
    assert!(sent(&mut c).iter().any(|(to, m)| matches!(m, SipMessage::Response(r) if r.status_code.code() == 200) && *to == callee));
    let ack = peer_request("ACK", &invite, "callee1", 2, "", "").replace("z9hG4bKpeerACK2", "z9hG4bKpeerACK2b");
    c.handle_datagram(t0 + Duration::from_millis(600), callee, ack.as_bytes());
    assert!(c.poll_timeout().is_none_or(|t| t > t0 + Duration::from_secs(30)), "no more 2xx retransmissions");

    // An out-of-order CSeq is refused 500; then the peer's BYE ends the leg.
    c.handle_datagram(t0 + Duration::from_secs(1), callee, peer_request("INFO", &invite, "callee1", 1, "", "").replace("peerINFO1", "peerINFO1b").as_bytes());
    assert!(matches!(sent(&mut c).as_slice(), [(_, SipMessage::Response(r))] if r.status_code.code() == 500));
    c.handle_datagram(t0 + Duration::from_secs(2), callee, peer_request("BYE", &invite, "callee1", 3, "", "").as_bytes());
    assert!(matches!(sent(&mut c).as_slice(), [(_, SipMessage::Response(r))] if r.status_code.code() == 200));
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg, reason: EndReason::RemoteBye }]);
    assert_eq!(c.calls(), 0);
    // A request in the ended dialog gets 481.
    c.handle_datagram(t0 + Duration::from_secs(3), callee, peer_request("BYE", &invite, "callee1", 4, "", "").as_bytes());
    assert!(matches!(sent(&mut c).as_slice(), [(_, SipMessage::Response(r))] if r.status_code.code() == 481));
}

#[test]
fn originate_refusals_report_failed_without_sending() {
    let mut c = core();
    let t0 = Instant::now();
    let mut try_originate = |leg: LegId, trunk: &str, to: &str, sdp: &str| {
        c.handle_command(
            t0,
            CallCommand::Originate { leg, trunk: trunk.into(), to_number: to.into(), from_number: "1".into(), sdp: sdp.into() },
        );
        assert!(sent(&mut c).is_empty());
        events(&mut c)
    };
    assert_eq!(try_originate(LegId(5), "carrier", "100", OFFER), vec![CallEvent::Failed { leg: LegId(5), status: 500 }], "no engine bit");
    let leg = LegId::engine(20);
    assert_eq!(try_originate(leg, "nope", "100", OFFER), vec![CallEvent::Failed { leg, status: 500 }]);
    assert_eq!(try_originate(leg, "carrier", "100@evil>", OFFER), vec![CallEvent::Failed { leg, status: 500 }]);
    assert_eq!(try_originate(leg, "carrier", "100", ""), vec![CallEvent::Failed { leg, status: 500 }]);
    assert!(LegId::engine(1).is_engine() && !LegId(1).is_engine());
}

#[test]
fn trunk_debug_hides_the_password() {
    let t = TrunkPeer { name: "c".into(), password: Some("hunter2".into()), username: Some("u".into()), ..Default::default() };
    let text = format!("{t:?}");
    assert!(!text.contains("hunter2") && text.contains("<redacted>"), "{text}");
}

/// Direct use of [`UacCall`]: a response from another call is refused without effect, and
/// requests before the answer are refused.
#[test]
fn uac_call_refuses_foreign_messages() {
    let t0 = Instant::now();
    let outbound = Outbound {
        request_uri: Uri::try_from("sip:100@192.0.2.7:5060").unwrap(),
        from: Uri::try_from("sip:200@192.0.2.1").unwrap(),
        local_contact: Uri::try_from("sip:switchd@192.0.2.1:5060").unwrap(),
        via_host: "192.0.2.1".into(),
        via_port: 5060,
        transport: Transport::Udp,
        destination: "192.0.2.7:5060".parse().unwrap(),
        credentials: None,
        sdp: OFFER.into(),
        session: Default::default(),
    };
    assert_eq!(UacCall::new(t0, Outbound { sdp: Vec::new(), ..outbound.clone() }, Timers::default()).err(), Some(UacError::NoOffer));
    let mut call = UacCall::new(t0, outbound, Timers::default()).unwrap();
    let Some(UacTransmit::Request { request: invite, .. }) = call.poll_transmit() else { panic!() };
    let foreign = response(&invite, 200, "OK", Some("t"), "", "").replace(call.call_id(), "other@x");
    assert_eq!(call.handle_response(t0, &Response::try_from(foreign.as_str()).unwrap()), Err(UacError::NotThisCall));
    assert_eq!(call.state(), UacState::Calling);
    let bye = peer_request("BYE", &invite, "t", 1, "", "");
    assert_eq!(call.handle_request(t0, &Request::try_from(bye.as_str()).unwrap()), Err(UacError::InvalidState(UacState::Calling)));
    // A provisional with a To tag makes an early dialog.
    call.handle_response(t0, &Response::try_from(response(&invite, 180, "Ringing", Some("early"), "", "").as_str()).unwrap()).unwrap();
    assert_eq!((call.state(), call.early_tag()), (UacState::Proceeding, Some("early")));
    assert!(call.poll_transmit().is_none());
}

/// Two proxies record-routed in one folded header (as SIPp's `[last_Record-Route:]` echoes
/// them): the route set is the list reversed (§12.1.2) and the ACK goes to its first entry.
#[test]
fn folded_record_route_is_reversed_into_the_route_set() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 30);
    let rr = "Record-Route: <sip:192.0.2.200;lr>, <sip:203.0.113.5:5080;lr>\r\n";
    deliver(&mut c, t0, &response(&invite, 200, "OK", Some("callee1"), ANSWER, rr));
    assert_eq!(events(&mut c), vec![CallEvent::Answered { leg, sdp: ANSWER.as_bytes().to_vec(), trunk: "carrier".into() }]);
    let reqs = requests(&mut c);
    let [(to, ack)] = reqs.as_slice() else { panic!("{reqs:?}") };
    assert_eq!(*to, "203.0.113.5:5080".parse().unwrap());
    let routes: Vec<String> = ack.headers.iter().map(|h| h.to_string()).filter(|h| h.starts_with("Route:")).collect();
    assert_eq!(routes, vec!["Route: <sip:203.0.113.5:5080;lr>", "Route: <sip:192.0.2.200;lr>"]);
}

#[test]
fn a_trunk_that_wants_e164_gets_numbers_in_e164() {
    let trunk = TrunkPeer { name: "carrier".into(), proxy: Some(PROXY.parse().unwrap()), e164: true, ..Default::default() };
    let calls = Calls::new(Timers::default(), "198.51.100.1:5060".parse().unwrap(), vec![trunk], 4);
    let mut c = UdpCore::new(Timers::default(), Limits::default(), Arc::new(Metrics::default()), calls);
    let (_, invite) = originate(&mut c, Instant::now(), 1);
    assert_eq!(invite.uri.to_string(), "sip:+8613800138000@203.0.113.5:5060");
    let from = invite.headers.iter().find_map(|h| match h {
        rsip::Header::From(f) => Some(f.to_string()),
        _ => None,
    });
    assert!(from.is_some_and(|f| f.contains("sip:+864008123456@")), "the caller ID too");
    // The national default leaves them as the engine gave them.
    let (_, invite) = originate(&mut core(), Instant::now(), 2);
    assert_eq!(invite.uri.to_string(), "sip:13800138000@203.0.113.5:5060");
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

/// Originate and answer with a 200 carrying `extra` headers (no 180).
fn answered_with(c: &mut UdpCore, t0: Instant, extra: &str) -> (LegId, Request) {
    let (leg, invite) = originate(c, t0, 1);
    deliver(c, t0, &response(&invite, 200, "OK", Some("callee1"), ANSWER, extra));
    assert!(matches!(events(c).as_slice(), [CallEvent::Answered { .. }]));
    assert!(requests(c).iter().any(|(_, r)| r.method == Method::Ack));
    (leg, invite)
}

#[test]
fn the_invite_offers_session_timers_and_we_refresh_when_the_200_says_uac() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, invite) = originate(&mut c, t0, 1);
    assert_eq!(header_value(&invite, "Session-Expires").as_deref(), Some("1800"));
    assert_eq!(header_value(&invite, "Supported").as_deref(), Some("100rel, timer"));
    c.handle_command(t0, CallCommand::Hangup { leg: LegId::engine(1) });
    let mut c = core();
    let (leg, invite) = answered_with(&mut c, t0, "Session-Expires: 90;refresher=uac\r\nRequire: timer\r\n");
    c.handle_timeout(secs(t0, 44));
    assert!(requests(&mut c).is_empty());
    c.handle_timeout(secs(t0, 45));
    let mut reqs = requests(&mut c);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let (to, refresh) = reqs.remove(0);
    assert_eq!(to, CALLEE.parse().unwrap(), "in the dialog, to the callee's Contact");
    assert_eq!(cseq(&refresh), (2, Method::Invite));
    assert_eq!(refresh.body, OFFER.as_bytes(), "the same SDP");
    assert_eq!(header_value(&refresh, "Session-Expires").as_deref(), Some("90;refresher=uac"));
    assert_eq!(refresh.to_header().unwrap().tag().unwrap().unwrap().value(), "callee1");
    deliver(&mut c, secs(t0, 46), &response(&refresh, 200, "OK", Some("callee1"), ANSWER, "Session-Expires: 90;refresher=uac\r\n"));
    let reqs = requests(&mut c);
    assert!(reqs.iter().any(|(_, r)| r.method == Method::Ack && cseq(r) == (2, Method::Ack)), "{reqs:?}");
    assert!(events(&mut c).is_empty(), "refreshes are no news for the engine");
    // The next refresh counts from the 200.
    c.handle_timeout(secs(t0, 90));
    assert!(requests(&mut c).is_empty());
    c.handle_timeout(secs(t0, 91));
    assert!(requests(&mut c).iter().any(|(_, r)| cseq(r) == (3, Method::Invite)));
    // Our BYE after it takes the next CSeq.
    c.handle_command(secs(t0, 92), CallCommand::Hangup { leg });
    let bye = requests(&mut c).into_iter().find(|(_, r)| r.method == Method::Bye).expect("BYE").1;
    assert_eq!(cseq(&bye), (4, Method::Bye));
    let _ = invite;
}

#[test]
fn a_carrier_that_stops_refreshing_is_hung_up_and_an_update_refreshes() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite) = answered_with(&mut c, t0, "Session-Expires: 90;refresher=uas\r\nRequire: timer\r\n");
    // The carrier refreshes once by a bodiless UPDATE at 30 s.
    // The carrier is the UAC of its UPDATE: refresher=uac is the carrier.
    let update = peer_request("UPDATE", &invite, "callee1", 1, "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n", "");
    c.handle_datagram(secs(t0, 30), CALLEE.parse().unwrap(), update.as_bytes());
    let ok = sent(&mut c).into_iter().find_map(|(_, m)| match m {
        SipMessage::Response(r) => Some(r),
        SipMessage::Request(_) => None,
    });
    let ok = ok.expect("a 200 to the UPDATE");
    assert_eq!(ok.status_code.code(), 200);
    let text = ok.to_string();
    assert!(text.contains("Session-Expires: 90;refresher=uac\r\n") && text.contains("Require: timer\r\n"), "{text}");
    // Then nothing: 60 s after the UPDATE (90 less min(32, 30)) we hang up.
    c.handle_timeout(secs(t0, 89));
    assert!(requests(&mut c).is_empty());
    c.handle_timeout(secs(t0, 90));
    assert!(requests(&mut c).iter().any(|(_, r)| r.method == Method::Bye));
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg, reason: EndReason::SessionExpired }]);
}

#[test]
fn a_422_is_retried_once_with_the_peers_min_se() {
    let mut c = core();
    let t0 = Instant::now();
    let (_, invite) = originate(&mut c, t0, 1);
    deliver(&mut c, t0, &response(&invite, 422, "Session Interval Too Small", Some("x"), "", "Min-SE: 3600\r\n"));
    let retry = requests(&mut c).into_iter().find(|(_, r)| r.method == Method::Invite).expect("the INVITE again").1;
    assert_eq!(cseq(&retry), (2, Method::Invite));
    assert_eq!(header_value(&retry, "Session-Expires").as_deref(), Some("3600"));
    assert_ne!(branch(&retry), branch(&invite));
    // A second 422 is the call's failure.
    deliver(&mut c, t0, &response(&retry, 422, "Session Interval Too Small", Some("x"), "", "Min-SE: 7200\r\n"));
    assert!(matches!(events(&mut c).as_slice(), [CallEvent::Failed { status: 422, .. }]));
}

#[test]
fn a_reliable_provisional_is_pracked_once() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite) = originate(&mut c, t0, 1);
    let reliable = response(&invite, 183, "Session Progress", Some("callee1"), ANSWER, "Require: 100rel\r\nRSeq: 7\r\n");
    deliver(&mut c, t0, &reliable);
    assert_eq!(events(&mut c), vec![CallEvent::Ringing { leg, early_sdp: Some(ANSWER.as_bytes().to_vec()) }]);
    let mut reqs = requests(&mut c);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let (to, prack) = reqs.remove(0);
    assert_eq!(to, CALLEE.parse().unwrap(), "in the early dialog");
    assert_eq!(prack.method, Method::PRack);
    assert_eq!(cseq(&prack), (2, Method::PRack));
    assert_eq!(header_value(&prack, "RAck").as_deref(), Some("7 1 INVITE"));
    assert_eq!(prack.to_header().unwrap().tag().unwrap().unwrap().value(), "callee1");
    // Its retransmission gets no second PRACK; an unreliable 180 none at all.
    deliver(&mut c, t0, &reliable);
    deliver(&mut c, t0, &response(&invite, 180, "Ringing", Some("callee1"), "", ""));
    assert!(requests(&mut c).iter().all(|(_, r)| r.method != Method::PRack));
    deliver(&mut c, t0, &response(&prack, 200, "OK", Some("callee1"), "", ""));
    deliver(&mut c, t0, &response(&invite, 200, "OK", Some("callee1"), ANSWER, ""));
    let ack = requests(&mut c).into_iter().find(|(_, r)| r.method == Method::Ack).expect("ACK").1;
    assert_eq!(cseq(&ack), (1, Method::Ack), "the ACK carries the INVITE's CSeq");
    c.handle_command(t0, CallCommand::Hangup { leg });
    let bye = requests(&mut c).into_iter().find(|(_, r)| r.method == Method::Bye).expect("BYE").1;
    assert_eq!(cseq(&bye), (3, Method::Bye));
}

#[test]
fn an_update_offer_on_an_outbound_leg_goes_to_the_engine_and_its_200_is_not_retransmitted() {
    let mut c = core();
    let t0 = Instant::now();
    let (leg, invite, _) = answered(&mut c, t0, false);
    let hold = ANSWER.replace("a=rtpmap:101", "a=sendonly\r\na=rtpmap:101");
    let update = peer_request("UPDATE", &invite, "callee1", 5, "Content-Type: application/sdp\r\n", &hold);
    c.handle_datagram(secs(t0, 1), CALLEE.parse().unwrap(), update.as_bytes());
    match events(&mut c).as_slice() {
        [CallEvent::ReInvite { leg: l, sdp }] => assert!(*l == leg && String::from_utf8_lossy(sdp).contains("sendonly")),
        other => panic!("expected the offer, got {other:?}"),
    }
    c.handle_command(secs(t0, 1), CallCommand::AcceptReinvite { leg, sdp: b"v=0\r\na=recvonly\r\n".to_vec() });
    let answers: Vec<Response> = sent(&mut c).into_iter().filter_map(|(_, m)| match m {
        SipMessage::Response(r) => Some(r),
        SipMessage::Request(_) => None,
    }).collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!((answers[0].status_code.code(), answers[0].body.as_slice()), (200, b"v=0\r\na=recvonly\r\n".as_slice()));
    assert!(answers[0].to_string().contains("CSeq: 5 UPDATE"));
    c.handle_timeout(secs(t0, 2));
    assert!(sent(&mut c).is_empty(), "an UPDATE's 200 is the non-INVITE transaction's to repeat");
    assert_eq!(c.calls(), 1);
}
