//! Trunks reached over TCP and TLS, driven through the whole sans-IO stack ([`UdpCore`]) on a
//! virtual clock: the core asks for a connection, queues REGISTER, OPTIONS and calls on it
//! without retransmissions, fails them over when it cannot be opened, reopens it after it
//! closed, and hears the carrier's in-dialog requests on it.

use super::*;
use crate::metrics::Metrics;
use crate::sip::stream::{ConnId, Transport};
use crate::sip::ua::{CallCommand, CallEvent, Calls, EndReason, LegId};
use crate::sip::udp::{Limits, Output, UdpCore};
use crate::sip::Timers;
use rsip::prelude::*;
use rsip::SipMessage;
use std::sync::Arc;

const PROXY_A: &str = "203.0.113.5:5060";
const PROXY_B: &str = "203.0.113.6:5060";
const LOCAL: &str = "198.51.100.1:5060";
const OFFER: &str = "v=0\r\no=- 7 7 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
const ANSWER: &str = "v=0\r\no=- 9 9 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn trunk(name: &str, proxy: &str, transport: Transport) -> TrunkPeer {
    let proxy: SocketAddr = proxy.parse().unwrap();
    TrunkPeer { name: name.into(), addresses: vec![proxy.ip()], proxy: Some(proxy), transport, ..Default::default() }
}

fn core(trunks: Vec<TrunkPeer>) -> UdpCore {
    let calls = Calls::new(Timers::default(), LOCAL.parse().unwrap(), trunks, 4).with_tls_port(Some(5061));
    UdpCore::new(Timers::default(), Limits::default(), Arc::new(Metrics::default()), calls)
}

/// What the core wants done, messages parsed.
#[derive(Debug)]
enum Out {
    Connect(ConnId, SocketAddr, Transport),
    Stream(ConnId, SipMessage),
    Datagram(SocketAddr, SipMessage),
}

fn outputs(c: &mut UdpCore) -> Vec<Out> {
    std::iter::from_fn(|| c.poll_output())
        .filter_map(|o| match o {
            Output::Connect { conn, peer, transport } => Some(Out::Connect(conn, peer, transport)),
            Output::Stream { conn, bytes } => Some(Out::Stream(conn, SipMessage::try_from(bytes.as_slice()).unwrap())),
            Output::Datagram { to, bytes } => Some(Out::Datagram(to, SipMessage::try_from(bytes.as_slice()).unwrap())),
            Output::Close { .. } => None,
        })
        .collect()
}

/// Expects a connection asked for and one request queued on it; returns both.
fn connect_and_request(c: &mut UdpCore, peer: &str, transport: Transport) -> (ConnId, Request) {
    match outputs(c).as_slice() {
        [Out::Connect(conn, to, t), Out::Stream(on, SipMessage::Request(r))] => {
            assert_eq!((*to, *t, on), (peer.parse().unwrap(), transport, conn));
            (*conn, r.clone())
        }
        other => panic!("expected a connect and a request, got {other:?}"),
    }
}

/// Expects exactly one request on `conn`.
fn request_on(c: &mut UdpCore, conn: ConnId) -> Request {
    match outputs(c).as_slice() {
        [Out::Stream(on, SipMessage::Request(r))] if *on == conn => r.clone(),
        other => panic!("expected one request on {conn}, got {other:?}"),
    }
}

/// The request as text, URI parameter values folded to lower case (rsip writes
/// `transport=TCP`; RFC 3261 §19.1.4 compares them case-insensitively).
fn text(r: &Request) -> String {
    r.to_string().replace("transport=TCP", "transport=tcp").replace("transport=TLS", "transport=tls")
}

/// The carrier's answer to `request` (Via, From, To with a tag, Call-ID, CSeq copied).
fn answer(request: &Request, status: &str, extra: &str, body: &str) -> String {
    let copied: String = request
        .headers
        .iter()
        .map(|h| h.to_string())
        .filter(|h| ["Via:", "From:", "Call-ID:", "CSeq:"].iter().any(|n| h.starts_with(n)))
        .map(|h| h + "\r\n")
        .collect();
    let to = request.to_header().unwrap().value().to_owned();
    format!("SIP/2.0 {status}\r\n{copied}To: {to};tag=carrier1\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
}

fn run_until(c: &mut UdpCore, until: Instant) -> Vec<Out> {
    let mut out = Vec::new();
    while let Some(t) = c.poll_timeout().filter(|t| *t <= until) {
        c.handle_timeout(t);
        out.extend(outputs(c));
    }
    out
}

#[test]
fn a_tcp_trunk_registers_on_a_connection_of_its_own_without_retransmissions() {
    let t = TrunkPeer { register: Some(300), ..trunk("carrier", PROXY_A, Transport::Tcp) };
    let mut c = core(vec![t]);
    let t0 = Instant::now();
    c.start(t0);
    let (conn, register) = connect_and_request(&mut c, PROXY_A, Transport::Tcp);
    assert!(conn.0 >= ConnId::DIALED_BASE, "our ids never meet the listeners'");
    let register_text = text(&register);
    assert!(register_text.contains("Via: SIP/2.0/TCP 198.51.100.1:5060;"), "{register_text}");
    assert!(register_text.contains("Contact: <sip:switchd@198.51.100.1:5060;transport=tcp>"), "{register_text}");
    // Reliable: no Timer E. Timer F still runs (the registration fails 408 at 64·T1).
    assert!(run_until(&mut c, t0 + Duration::from_secs(20)).is_empty());
    c.handle_stream_message(t0 + Duration::from_secs(20), conn, answer(&register, "200 OK", "Contact: <sip:switchd@198.51.100.1:5060;transport=tcp>;expires=300\r\n", "").as_bytes());
    assert!(matches!(c.trunk_status()[0].registration, RegistrationState::Registered { expires_secs: 300 }));
    // The refresh goes on the same connection: no new connect.
    let refresh = run_until(&mut c, t0 + Duration::from_secs(300));
    assert!(matches!(refresh.as_slice(), [Out::Stream(on, SipMessage::Request(r))] if *on == conn && r.method == Method::Register), "{refresh:?}");
}

#[test]
fn a_failed_connect_fails_the_registration_503_and_the_retry_connects_again() {
    let t = TrunkPeer { register: Some(300), ..trunk("carrier", PROXY_A, Transport::Tcp) };
    let mut c = core(vec![t]);
    let t0 = Instant::now();
    c.start(t0);
    let (conn, _) = connect_and_request(&mut c, PROXY_A, Transport::Tcp);
    c.handle_connect_failed(t0 + Duration::from_millis(10), conn);
    assert_eq!(c.trunk_status()[0].registration, RegistrationState::Failed { status: 503 });
    let retry = run_until(&mut c, t0 + RETRY_FIRST + Duration::from_secs(1));
    match retry.as_slice() {
        [Out::Connect(again, peer, Transport::Tcp), Out::Stream(on, SipMessage::Request(r))] => {
            assert!(again != &conn && on == again && r.method == Method::Register);
            assert_eq!(*peer, PROXY_A.parse().unwrap());
        }
        other => panic!("expected a new connection for the retry, got {other:?}"),
    }
}

#[test]
fn a_closed_connection_is_reopened_by_the_next_request() {
    let mut c = core(vec![trunk("carrier", PROXY_A, Transport::Tcp)]);
    let t0 = Instant::now();
    let originate = |c: &mut UdpCore, n: u64| {
        let leg = LegId::engine(n);
        c.handle_command(t0, CallCommand::Originate { leg, trunk: "carrier".into(), to_number: "13800138000".into(), from_number: "12365".into(), sdp: OFFER.into() });
    };
    originate(&mut c, 1);
    let (first, _) = connect_and_request(&mut c, PROXY_A, Transport::Tcp);
    c.handle_stream_closed(first);
    originate(&mut c, 2);
    let (second, invite) = connect_and_request(&mut c, PROXY_A, Transport::Tcp);
    assert_ne!(first, second);
    assert!(text(&invite).contains("Via: SIP/2.0/TCP "), "still a stream peer after the close");
}

#[test]
fn an_unreachable_tcp_trunk_fails_the_call_over_to_the_next_trunk() {
    let mut c = core(vec![trunk("a", PROXY_A, Transport::Tcp), trunk("b", PROXY_B, Transport::Udp)]);
    let t0 = Instant::now();
    let leg = LegId::engine(1);
    c.handle_command(t0, CallCommand::Originate { leg, trunk: "a".into(), to_number: "13800138000".into(), from_number: "12365".into(), sdp: OFFER.into() });
    let (conn, invite) = connect_and_request(&mut c, PROXY_A, Transport::Tcp);
    let invite_text = text(&invite);
    assert!(invite_text.contains("Via: SIP/2.0/TCP 198.51.100.1:5060;"), "{invite_text}");
    assert!(invite_text.contains("Contact: <sip:switchd@198.51.100.1:5060;transport=tcp>"), "{invite_text}");
    c.handle_connect_failed(t0 + Duration::from_millis(5), conn);
    match outputs(&mut c).as_slice() {
        [Out::Datagram(to, SipMessage::Request(r))] => {
            assert_eq!(*to, PROXY_B.parse().unwrap());
            assert_eq!(r.method, Method::Invite);
            assert!(text(r).contains("Via: SIP/2.0/UDP "), "{r}");
        }
        other => panic!("expected the INVITE by UDP to trunk b, got {other:?}"),
    }
    assert!(std::iter::from_fn(|| c.poll_event()).next().is_none(), "the engine sees no failure");
}

#[test]
fn a_tls_call_is_answered_acked_and_hung_up_by_the_carrier_on_the_connection() {
    let mut c = core(vec![trunk("carrier", PROXY_A, Transport::Tls)]);
    let t0 = Instant::now();
    let leg = LegId::engine(1);
    c.handle_command(t0, CallCommand::Originate { leg, trunk: "carrier".into(), to_number: "13800138000".into(), from_number: "12365".into(), sdp: OFFER.into() });
    let (conn, invite) = connect_and_request(&mut c, PROXY_A, Transport::Tls);
    let invite_text = text(&invite);
    assert!(invite_text.contains("Via: SIP/2.0/TLS 198.51.100.1:5061;"), "{invite_text}");
    assert!(invite_text.contains("Contact: <sip:switchd@198.51.100.1:5061;transport=tls>"), "{invite_text}");
    // Reliable: no Timer A retransmission of the INVITE while the carrier thinks.
    assert!(run_until(&mut c, t0 + Duration::from_secs(10)).is_empty());
    let t1 = t0 + Duration::from_secs(10);
    // The callee's Contact is elsewhere; the dialog still stays on our connection.
    let ok = answer(&invite, "200 OK", "Contact: <sip:callee@203.0.113.9:5070;transport=tls>\r\nContent-Type: application/sdp\r\n", ANSWER);
    c.handle_stream_message(t1, conn, ok.as_bytes());
    let ack = request_on(&mut c, conn);
    assert_eq!(ack.method, Method::Ack);
    assert!(text(&ack).contains("Via: SIP/2.0/TLS "), "{ack}");
    assert!(matches!(std::iter::from_fn(|| c.poll_event()).collect::<Vec<_>>().as_slice(), [CallEvent::Answered { .. }]));
    let call_id = invite.call_id_header().unwrap().value().to_owned();
    let from = invite.from_header().unwrap().value().to_owned();
    let to = invite.to_header().unwrap().value().to_owned();
    let bye = format!(
        "BYE sip:switchd@198.51.100.1:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 203.0.113.5:5061;branch=z9hG4bKbye1\r\n\
         Max-Forwards: 70\r\nFrom: {to};tag=carrier1\r\nTo: {from}\r\nCall-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_stream_message(t1 + Duration::from_secs(1), conn, bye.as_bytes());
    match outputs(&mut c).as_slice() {
        [Out::Stream(on, SipMessage::Response(r))] => {
            assert_eq!((*on, r.status_code.code()), (conn, 200));
        }
        other => panic!("expected the BYE's 200 on the connection, got {other:?}"),
    }
    assert_eq!(
        std::iter::from_fn(|| c.poll_event()).collect::<Vec<_>>(),
        vec![CallEvent::Ended { leg, reason: EndReason::RemoteBye }]
    );
}

#[test]
fn a_call_to_a_sip_uri_goes_straight_to_its_address_by_udp_without_failover() {
    // The trunk is a TCP one: a URI call must not use it or its connection.
    let mut c = core(vec![trunk("carrier", PROXY_A, Transport::Tcp)]);
    let t0 = Instant::now();
    let leg = LegId::engine(1);
    c.handle_command(t0, CallCommand::OriginateUri { leg, uri: "sip:bob@192.0.2.10:5070".into(), from_number: "12365".into(), sdp: OFFER.into() });
    let invite = match outputs(&mut c).as_slice() {
        [Out::Datagram(to, SipMessage::Request(r))] => {
            assert_eq!(*to, "192.0.2.10:5070".parse().unwrap());
            r.clone()
        }
        other => panic!("expected the INVITE by UDP to the URI, got {other:?}"),
    };
    assert_eq!(invite.uri.to_string(), "sip:bob@192.0.2.10:5070");
    assert!(text(&invite).contains("Via: SIP/2.0/UDP 198.51.100.1:5060;"), "{invite}");
    // A 503 from the URI's host ends the call: there is no other trunk to try.
    let refused = answer(&invite, "503 Service Unavailable", "", "");
    c.handle_datagram(t0, "192.0.2.10:5070".parse().unwrap(), refused.as_bytes());
    let events: Vec<CallEvent> = std::iter::from_fn(|| c.poll_event()).collect();
    assert_eq!(events, vec![CallEvent::Failed { leg, status: 503 }]);
    assert!(outputs(&mut c).iter().all(|o| !matches!(o, Out::Connect(..))), "no connection to the trunk");
}

#[test]
fn only_sip_uris_with_an_ip_address_and_udp_are_called_directly() {
    use crate::sip::ua::direct_target;
    assert_eq!(direct_target("sip:bob@192.0.2.10").map(|(_, a)| a), Some("192.0.2.10:5060".parse().unwrap()));
    assert_eq!(direct_target("sip:bob@192.0.2.10:5070").map(|(_, a)| a), Some("192.0.2.10:5070".parse().unwrap()));
    for refused in ["sip:bob@pbx.example", "sips:bob@192.0.2.10", "sip:192.0.2.10", "sip:bob@192.0.2.10;transport=tcp", "13800138000", "sip:"] {
        assert!(direct_target(refused).is_none(), "{refused}");
    }
}
