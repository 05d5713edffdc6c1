//! The call flows of [`Calls`] driven through the whole sans-IO stack ([`UdpCore`]: parsing,
//! transactions, dialogs) on a virtual clock.

use super::*;
use crate::metrics::Metrics;
use crate::sip::udp::{Limits, UdpCore};
use rsip::Response;
use std::sync::Arc;
use std::time::Duration;

const TRUNK: &str = "192.0.2.7:5060";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn core() -> UdpCore {
    let trunk = TrunkPeer { name: "carrier".into(), addresses: vec!["192.0.2.7".parse().unwrap()], ..Default::default() };
    let calls = Calls::new(Timers::default(), "198.51.100.1:5060".parse().unwrap(), vec![trunk], 2);
    UdpCore::new(Timers::default(), Limits::default(), Arc::new(Metrics::default()), calls)
}

fn message(method: &str, call: &str, cseq: u32, to_tag: Option<&str>, body: &str, extra: &str) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let body_headers = if body.is_empty() { String::new() } else { "Content-Type: application/sdp\r\n".into() };
    format!(
        "{method} sip:12365@198.51.100.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK{call}{method}{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:13800138000@192.0.2.7>;tag=caller\r\n\
         To: <sip:12365@198.51.100.1>{to_tag}\r\n\
         Call-ID: {call}@192.0.2.7\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:13800138000@192.0.2.7:5060>\r\n\
         {extra}{body_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn replies(c: &mut UdpCore) -> Vec<Response> {
    std::iter::from_fn(|| c.poll_transmit())
        .filter_map(|(_, b)| Response::try_from(b.as_slice()).ok())
        .collect()
}

fn events(c: &mut UdpCore) -> Vec<CallEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn incoming(c: &mut UdpCore, now: Instant, call: &str) -> Incoming {
    c.handle_datagram(now, TRUNK.parse().unwrap(), message("INVITE", call, 1, None, SDP, "").as_bytes());
    match events(c).as_slice() {
        [CallEvent::Incoming(i)] => (**i).clone(),
        other => panic!("expected one Incoming, got {other:?}"),
    }
}

fn to_tag(r: &Response) -> String {
    r.to_header().unwrap().tag().unwrap().unwrap().value().to_owned()
}

#[test]
fn a_trunk_call_is_offered_answered_confirmed_and_ended_by_bye() {
    let mut c = core();
    let t0 = Instant::now();
    let call = incoming(&mut c, t0, "a");
    assert_eq!((call.trunk.as_str(), call.caller.as_str(), call.callee.as_str()), ("carrier", "13800138000", "12365"));
    assert!(String::from_utf8_lossy(&call.sdp).contains("PCMA"));
    c.handle_command(t0, CallCommand::Ringing { leg: call.leg });
    c.handle_command(t0, CallCommand::Answer { leg: call.leg, sdp: b"v=0\r\n".to_vec() });
    let r = replies(&mut c);
    assert_eq!(r.iter().map(|r| r.status_code.code()).collect::<Vec<_>>(), vec![180, 200]);
    let tag = to_tag(&r[1]);
    assert_eq!(r[1].body, b"v=0\r\n");
    // No ACK yet: the 200 is retransmitted (T1 = 500 ms).
    c.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(replies(&mut c).first().map(|r| r.status_code.code()), Some(200));
    let ack = message("ACK", "a", 1, Some(&tag), "", "");
    c.handle_datagram(t0 + Duration::from_millis(600), TRUNK.parse().unwrap(), ack.as_bytes());
    assert_eq!(events(&mut c), vec![CallEvent::Confirmed { leg: call.leg, sdp: None }]);
    // An INFO digit, then BYE.
    let info = message("INFO", "a", 2, Some(&tag), "", "Content-Type: application/dtmf-relay\r\n")
        .replace("Content-Length: 0\r\n\r\n", "Content-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n");
    c.handle_datagram(t0 + Duration::from_secs(1), TRUNK.parse().unwrap(), info.as_bytes());
    assert_eq!(replies(&mut c)[0].status_code.code(), 200);
    assert_eq!(events(&mut c), vec![CallEvent::Dtmf { leg: call.leg, digit: '5' }]);
    let bye = message("BYE", "a", 3, Some(&tag), "", "");
    c.handle_datagram(t0 + Duration::from_secs(2), TRUNK.parse().unwrap(), bye.as_bytes());
    assert_eq!(replies(&mut c)[0].status_code.code(), 200);
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg: call.leg, reason: EndReason::RemoteBye }]);
    assert_eq!(c.calls(), 0);
    // Commands that cross the end are ignored.
    c.handle_command(t0 + Duration::from_secs(2), CallCommand::Hangup { leg: call.leg });
    assert!(replies(&mut c).is_empty());
}

#[test]
fn cancel_while_ringing_ends_the_call_with_487() {
    let mut c = core();
    let t0 = Instant::now();
    let call = incoming(&mut c, t0, "b");
    c.handle_command(t0, CallCommand::Ringing { leg: call.leg });
    assert_eq!(replies(&mut c)[0].status_code.code(), 180);
    // CANCEL has the INVITE's branch and CSeq number.
    let cancel = message("CANCEL", "b", 1, None, "", "").replace("branch=z9hG4bKbCANCEL1", "branch=z9hG4bKbINVITE1");
    c.handle_datagram(t0 + Duration::from_secs(1), TRUNK.parse().unwrap(), cancel.as_bytes());
    let codes: Vec<u16> = replies(&mut c).iter().map(|r| r.status_code.code()).collect();
    assert_eq!(codes, vec![200, 487], "the CANCEL's 200 first, then the INVITE's 487");
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg: call.leg, reason: EndReason::Cancelled }]);
}

#[test]
fn our_hangup_sends_bye_and_limits_and_routing_refuse_calls() {
    let mut c = core();
    let t0 = Instant::now();
    let first = incoming(&mut c, t0, "c");
    c.handle_command(t0, CallCommand::Answer { leg: first.leg, sdp: b"v=0\r\n".to_vec() });
    let tag = to_tag(&replies(&mut c)[0]);
    let ack = message("ACK", "c", 1, Some(&tag), "", "");
    c.handle_datagram(t0, TRUNK.parse().unwrap(), ack.as_bytes());
    events(&mut c);
    let _second = incoming(&mut c, t0, "d");
    // The limit is 2 calls: a third gets 503.
    c.handle_datagram(t0, TRUNK.parse().unwrap(), message("INVITE", "e", 1, None, SDP, "").as_bytes());
    assert_eq!(replies(&mut c)[0].status_code.code(), 503);
    c.handle_command(t0, CallCommand::Hangup { leg: first.leg });
    let bye = std::iter::from_fn(|| c.poll_transmit()).find_map(|(to, b)| {
        let text = String::from_utf8(b).unwrap();
        text.starts_with("BYE ").then_some((to, text))
    });
    let (to, bye) = bye.expect("a BYE is sent");
    assert_eq!(to, TRUNK.parse().unwrap());
    assert!(bye.starts_with("BYE sip:13800138000@192.0.2.7:5060 SIP/2.0"), "{bye}");
    assert!(bye.contains(&format!(";tag={tag}")) && bye.contains("Call-ID: c@192.0.2.7"), "{bye}");
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg: first.leg, reason: EndReason::Local }]);
    // An unanswered call hung up gets 480.
    let third = incoming(&mut c, t0, "f");
    c.handle_command(t0, CallCommand::Hangup { leg: third.leg });
    assert_eq!(replies(&mut c)[0].status_code.code(), 480);
}

#[test]
fn info_digits_are_read_from_both_content_types() {
    let parse = |ct: &str, body: &str| {
        let text = message("INFO", "x", 2, Some("t"), "", &format!("Content-Type: {ct}\r\n"))
            .replace("Content-Length: 0\r\n\r\n", &format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        info_digit(&Request::try_from(text.as_str()).unwrap())
    };
    assert_eq!(parse("application/dtmf-relay", "Signal=#\r\nDuration=100\r\n"), Some('#'));
    assert_eq!(parse("application/dtmf", "7"), Some('7'));
    assert_eq!(parse("application/dtmf-relay", "Signal=12\r\n"), None);
    assert_eq!(parse("text/plain", "5"), None);
}

#[test]
fn an_invite_retransmitted_after_our_200_is_the_same_call() {
    // Our 200 ends the INVITE server transaction (§17.2.1), so a retransmission of the INVITE
    // (our 200 lost on the way) reaches the UA as a new request. It must get the 200 again,
    // not become a second call with its own leg, CDR and answer (found by the sip_datagram
    // fuzz target).
    let mut c = core();
    let t0 = Instant::now();
    let call = incoming(&mut c, t0, "r");
    c.handle_command(t0, CallCommand::Answer { leg: call.leg, sdp: b"v=0\r\n".to_vec() });
    let ok = replies(&mut c);
    assert_eq!(ok[0].status_code.code(), 200);
    let invite = message("INVITE", "r", 1, None, SDP, "");
    c.handle_datagram(t0 + Duration::from_millis(500), TRUNK.parse().unwrap(), invite.as_bytes());
    assert_eq!(events(&mut c), vec![], "no second call");
    assert_eq!(c.calls(), 1);
    let again = replies(&mut c);
    assert_eq!(again.iter().map(|r| (r.status_code.code(), to_tag(r))).collect::<Vec<_>>(), vec![(200, to_tag(&ok[0]))]);
    // The same INVITE replayed from elsewhere is a stranger's call attempt: 403, no 2xx or SDP.
    c.handle_datagram(t0 + Duration::from_millis(600), "203.0.113.5:5060".parse().unwrap(), invite.as_bytes());
    assert_eq!(replies(&mut c).iter().map(|r| r.status_code.code()).collect::<Vec<_>>(), vec![403]);
    assert_eq!((events(&mut c), c.calls()), (vec![], 1));
    // Nothing is left waiting for an answer: once the call ends, every transaction ends.
    let bye = message("BYE", "r", 2, Some(&to_tag(&ok[0])), "", "");
    c.handle_datagram(t0 + Duration::from_secs(1), TRUNK.parse().unwrap(), bye.as_bytes());
    while let Some(t) = c.poll_timeout() {
        c.handle_timeout(t);
    }
    assert_eq!((c.calls(), c.transactions()), (0, 0));
}

/// Everything the core sends, as (connection, text); panics on a datagram or a close.
fn on_stream(c: &mut UdpCore) -> Vec<(crate::sip::stream::ConnId, String)> {
    std::iter::from_fn(|| c.poll_output())
        .map(|o| match o {
            crate::sip::udp::Output::Stream { conn, bytes } => (conn, String::from_utf8(bytes).unwrap()),
            other => panic!("expected a stream transmit, got {other:?}"),
        })
        .collect()
}

#[test]
fn a_call_over_tcp_is_answered_on_its_connection_without_retransmissions() {
    use crate::sip::stream::{ConnId, FrameError, Transport};
    use crate::sip::udp::Output;
    let mut c = core();
    let t0 = Instant::now();
    // The trunk connects from an ephemeral port; its Via names its listening port.
    let peer: SocketAddr = "192.0.2.7:40123".parse().unwrap();
    let conn = ConnId(7);
    c.handle_stream_opened(conn, peer, Transport::Tcp);
    let tcp = |m: String| m.replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    c.handle_stream_message(t0, conn, tcp(message("INVITE", "t", 1, None, SDP, "")).as_bytes());
    let call = match events(&mut c).as_slice() {
        [CallEvent::Incoming(i)] => (**i).clone(),
        other => panic!("expected one Incoming, got {other:?}"),
    };
    assert_eq!(call.source, peer);
    c.handle_command(t0, CallCommand::Answer { leg: call.leg, sdp: b"v=0\r\n".to_vec() });
    let sent = on_stream(&mut c);
    assert!(sent.iter().all(|(to, _)| *to == conn), "{sent:?}");
    let ok = sent.iter().map(|(_, t)| t).find(|t| t.starts_with("SIP/2.0 200")).expect("a 200");
    // rsip writes the parameter value in capitals; URI parameters compare case-insensitively.
    assert!(ok.to_ascii_lowercase().contains("contact: <sip:switchd@198.51.100.1:5060;transport=tcp>"), "{ok}");
    let tag = to_tag(&Response::try_from(ok.as_str()).unwrap());
    c.handle_stream_message(t0 + Duration::from_millis(50), conn, tcp(message("ACK", "t", 1, Some(&tag), "", "")).as_bytes());
    assert_eq!(events(&mut c), vec![CallEvent::Confirmed { leg: call.leg, sdp: None }]);
    // Reliable: the INVITE server transaction ended with the 2xx, an in-dialog INFO's ends
    // with its 200 (timer J is zero), and no timer is left to run.
    let info = tcp(message("INFO", "t", 2, Some(&tag), "", "Content-Type: application/dtmf\r\n"))
        .replace("Content-Length: 0\r\n\r\n", "Content-Length: 1\r\n\r\n5");
    c.handle_stream_message(t0 + Duration::from_secs(1), conn, info.as_bytes());
    assert_eq!(events(&mut c), vec![CallEvent::Dtmf { leg: call.leg, digit: '5' }]);
    assert!(on_stream(&mut c)[0].1.starts_with("SIP/2.0 200"));
    assert_eq!(c.transactions(), 0);
    assert_eq!(c.poll_timeout(), None);
    // Our BYE goes on the connection, says TCP in its Via, and only timer F runs (no E).
    let t1 = t0 + Duration::from_secs(2);
    c.handle_command(t1, CallCommand::Hangup { leg: call.leg });
    let sent = on_stream(&mut c);
    let (to, bye) = sent.iter().find(|(_, t)| t.starts_with("BYE ")).expect("a BYE");
    assert_eq!(*to, conn);
    assert!(bye.contains("Via: SIP/2.0/TCP 198.51.100.1:5060;"), "{bye}");
    assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(32)), "timer F only");
    // A broken message on the stream: 400 on it, then the connection is closed.
    c.handle_stream_invalid(conn, tcp(message("OPTIONS", "x", 1, None, "", "")).replace("Content-Length: 0\r\n", "").as_bytes(), &FrameError::MissingContentLength);
    match (c.poll_output(), c.poll_output()) {
        (Some(Output::Stream { conn: a, bytes }), Some(Output::Close { conn: b })) => {
            assert_eq!((a, b), (conn, conn));
            assert!(bytes.starts_with(b"SIP/2.0 400 "));
        }
        other => panic!("expected a 400 then a close, got {other:?}"),
    }
    // Once the connection is gone the peer's address is plain UDP again.
    c.handle_stream_closed(conn);
    assert_eq!(c.stream_connections(), 0);
    c.handle_datagram(t1, peer, message("OPTIONS", "u", 1, None, "", "").as_bytes());
    assert!(matches!(c.poll_output(), Some(Output::Datagram { to, .. }) if to == peer));
}

#[test]
fn a_call_over_tls_names_the_tls_port_in_contact_and_via() {
    use crate::sip::stream::{ConnId, Transport};
    let trunk = TrunkPeer { name: "carrier".into(), addresses: vec!["192.0.2.7".parse().unwrap()], ..Default::default() };
    let calls = Calls::new(Timers::default(), "198.51.100.1:5060".parse().unwrap(), vec![trunk], 2).with_tls_port(Some(5061));
    let mut c = UdpCore::new(Timers::default(), Limits::default(), Arc::new(Metrics::default()), calls);
    let t0 = Instant::now();
    let conn = ConnId(1);
    c.handle_stream_opened(conn, "192.0.2.7:50000".parse().unwrap(), Transport::Tls);
    let invite = message("INVITE", "s", 1, None, SDP, "").replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    c.handle_stream_message(t0, conn, invite.as_bytes());
    let Some(CallEvent::Incoming(call)) = c.poll_event() else { panic!("an incoming call") };
    c.handle_command(t0, CallCommand::Answer { leg: call.leg, sdp: b"v=0\r\n".to_vec() });
    let sent = on_stream(&mut c);
    let ok = sent.iter().map(|(_, t)| t).find(|t| t.starts_with("SIP/2.0 200")).expect("a 200");
    assert!(ok.to_ascii_lowercase().contains("contact: <sip:switchd@198.51.100.1:5061;transport=tls>"), "{ok}");
    let tag = to_tag(&Response::try_from(ok.as_str()).unwrap());
    let ack = message("ACK", "s", 1, Some(&tag), "", "").replace("SIP/2.0/UDP", "SIP/2.0/TLS");
    c.handle_stream_message(t0, conn, ack.as_bytes());
    c.handle_command(t0, CallCommand::Hangup { leg: call.leg });
    let sent = on_stream(&mut c);
    let (_, bye) = sent.iter().find(|(_, t)| t.starts_with("BYE ")).expect("a BYE on the connection");
    assert!(bye.contains("Via: SIP/2.0/TLS 198.51.100.1:5061;"), "{bye}");
}

#[test]
fn an_invite_requiring_an_extension_we_lack_gets_420_and_one_requiring_ours_is_offered() {
    let mut c = core();
    let t0 = Instant::now();
    let required = message("INVITE", "r", 1, None, SDP, "Require: 100rel, timer, foo\r\nSession-Expires: 1800\r\n");
    c.handle_datagram(t0, TRUNK.parse().unwrap(), required.as_bytes());
    let r = replies(&mut c);
    assert_eq!(r[0].status_code.code(), 420);
    let text = r[0].to_string();
    assert!(text.contains("Unsupported: foo\r\n"), "{text}");
    assert!(events(&mut c).is_empty(), "no call is offered");
    let ours = message("INVITE", "s", 1, None, SDP, "Require: 100rel, timer\r\nSession-Expires: 1800\r\n");
    c.handle_datagram(t0, TRUNK.parse().unwrap(), ours.as_bytes());
    assert!(matches!(events(&mut c).as_slice(), [CallEvent::Incoming(_)]));
}

/// Everything sent, as text.
fn sent(c: &mut UdpCore) -> Vec<String> {
    std::iter::from_fn(|| c.poll_transmit()).map(|(_, b)| String::from_utf8_lossy(&b).into_owned()).collect()
}

/// A call with `extra` headers on its INVITE, answered and ACKed at `t0`; its To tag.
fn answered(c: &mut UdpCore, t0: Instant, call: &str, extra: &str) -> (Incoming, String, Response) {
    c.handle_datagram(t0, TRUNK.parse().unwrap(), message("INVITE", call, 1, None, SDP, extra).as_bytes());
    let incoming = match events(c).as_slice() {
        [CallEvent::Incoming(i)] => (**i).clone(),
        other => panic!("expected one Incoming, got {other:?}"),
    };
    c.handle_command(t0, CallCommand::Answer { leg: incoming.leg, sdp: b"v=0\r\n".to_vec() });
    let ok = replies(c).pop().expect("the 200");
    let tag = to_tag(&ok);
    c.handle_datagram(t0, TRUNK.parse().unwrap(), message("ACK", call, 1, Some(&tag), "", "").as_bytes());
    assert!(matches!(events(c).as_slice(), [CallEvent::Confirmed { .. }]));
    (incoming, tag, ok)
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

#[test]
fn a_session_interval_below_our_minimum_gets_422_with_min_se() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_datagram(t0, TRUNK.parse().unwrap(), message("INVITE", "m", 1, None, SDP, "Supported: timer\r\nSession-Expires: 60\r\n").as_bytes());
    let r = replies(&mut c);
    assert_eq!(r[0].status_code.code(), 422);
    assert!(r[0].to_string().contains("Min-SE: 90\r\n"), "{}", r[0]);
    assert!(events(&mut c).is_empty());
}

#[test]
fn as_refresher_we_re_invite_with_the_same_sdp_at_half_the_interval() {
    let mut c = core();
    let t0 = Instant::now();
    let (call, tag, ok) = answered(&mut c, t0, "st", "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n");
    let text = ok.to_string();
    assert!(text.contains("Session-Expires: 90;refresher=uas\r\n") && text.contains("Require: timer\r\n"), "{text}");
    assert!(text.contains("Supported: 100rel, timer\r\n"), "{text}");
    c.handle_timeout(secs(t0, 44));
    assert!(sent(&mut c).is_empty(), "nothing before half the interval");
    c.handle_timeout(secs(t0, 45));
    let out = sent(&mut c);
    let reinvite = out.iter().find(|m| m.starts_with("INVITE ")).expect("a refresh re-INVITE");
    assert!(reinvite.contains("CSeq: 1 INVITE\r\n") && reinvite.ends_with("\r\n\r\nv=0\r\n"), "{reinvite}");
    // The refresher is named per transaction: in our re-INVITE we are its UAC.
    assert!(reinvite.contains("Session-Expires: 90;refresher=uac\r\n"), "{reinvite}");
    assert!(reinvite.contains(&format!("From: <sip:12365@198.51.100.1>;tag={tag}")), "{reinvite}");
    // The peer answers 200: we ACK it, and refresh again 45 s later.
    let request = rsip::Request::try_from(reinvite.as_str()).unwrap();
    let mut answer = crate::sip::message::response_for(&request, StatusCode::OK);
    answer.headers.push(Header::Other("Session-Expires".into(), "90;refresher=uac".into()));
    c.handle_datagram(secs(t0, 46), TRUNK.parse().unwrap(), answer.to_string().as_bytes());
    let out = sent(&mut c);
    assert!(out.iter().any(|m| m.starts_with("ACK ") && m.contains("CSeq: 1 ACK\r\n")), "{out:?}");
    assert!(events(&mut c).is_empty(), "the engine hears nothing of refreshes");
    c.handle_timeout(secs(t0, 90));
    assert!(sent(&mut c).is_empty());
    c.handle_timeout(secs(t0, 91));
    assert!(sent(&mut c).iter().any(|m| m.starts_with("INVITE ") && m.contains("CSeq: 2 INVITE")));
    assert_eq!(c.calls(), 1, "{call:?} goes on");
}

#[test]
fn a_session_the_caller_stops_refreshing_ends_with_our_bye() {
    let mut c = core();
    let t0 = Instant::now();
    let (call, tag, ok) = answered(&mut c, t0, "se", "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n");
    assert!(ok.to_string().contains("Session-Expires: 90;refresher=uac\r\n"));
    // A refresh by UPDATE without a body at 50 s: answered 200, the session runs from there.
    c.handle_datagram(secs(t0, 50), TRUNK.parse().unwrap(), message("UPDATE", "se", 2, Some(&tag), "", "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n").as_bytes());
    let r = replies(&mut c);
    assert_eq!(r[0].status_code.code(), 200);
    assert!(r[0].to_string().contains("Session-Expires: 90;refresher=uac\r\n"), "{}", r[0]);
    // 90 s less min(32, 90/3) = 60 s after the refresh: BYE.
    c.handle_timeout(secs(t0, 109));
    assert!(sent(&mut c).is_empty());
    c.handle_timeout(secs(t0, 110));
    assert!(sent(&mut c).iter().any(|m| m.starts_with("BYE ")));
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg: call.leg, reason: EndReason::SessionExpired }]);
    assert_eq!(c.calls(), 0);
}

#[test]
fn a_refresh_answered_481_ends_the_call() {
    let mut c = core();
    let t0 = Instant::now();
    let (call, _, _) = answered(&mut c, t0, "rf", "Session-Expires: 120\r\n");
    // The caller does not support timers: we refresh, with no Require.
    c.handle_timeout(secs(t0, 60));
    let out = sent(&mut c);
    let reinvite = out.iter().find(|m| m.starts_with("INVITE ")).expect("a refresh");
    let request = rsip::Request::try_from(reinvite.as_str()).unwrap();
    let gone = crate::sip::message::response_for(&request, StatusCode::CallTransactionDoesNotExist);
    c.handle_datagram(secs(t0, 61), TRUNK.parse().unwrap(), gone.to_string().as_bytes());
    assert!(sent(&mut c).iter().any(|m| m.starts_with("BYE ")));
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg: call.leg, reason: EndReason::SessionExpired }]);
}

#[test]
fn update_with_an_offer_is_answered_like_a_re_invite_and_glare_gets_491() {
    let mut c = core();
    let t0 = Instant::now();
    let (call, tag, _) = answered(&mut c, t0, "up", "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\n");
    let hold = SDP.replace("a=rtpmap:101", "a=sendonly\r\na=rtpmap:101");
    c.handle_datagram(secs(t0, 5), TRUNK.parse().unwrap(), message("UPDATE", "up", 2, Some(&tag), &hold, "").as_bytes());
    match events(&mut c).as_slice() {
        [CallEvent::ReInvite { leg, sdp }] => assert!(*leg == call.leg && String::from_utf8_lossy(sdp).contains("sendonly")),
        other => panic!("expected the offer, got {other:?}"),
    }
    // Another offer while that one is unanswered: 500 with Retry-After.
    c.handle_datagram(secs(t0, 5), TRUNK.parse().unwrap(), message("UPDATE", "up", 3, Some(&tag), SDP, "").as_bytes());
    let r = replies(&mut c);
    assert_eq!(r[0].status_code.code(), 500);
    assert!(r[0].to_string().contains("Retry-After: 1\r\n"));
    c.handle_command(secs(t0, 6), CallCommand::AcceptReinvite { leg: call.leg, sdp: b"v=0\r\na=recvonly\r\n".to_vec() });
    let r = replies(&mut c);
    assert_eq!((r.len(), r[0].status_code.code()), (1, 200));
    assert_eq!(r[0].body, b"v=0\r\na=recvonly\r\n");
    assert!(r[0].to_string().contains("CSeq: 2 UPDATE"));
    // An UPDATE's 200 is not retransmitted like a re-INVITE's.
    c.handle_timeout(secs(t0, 7));
    assert!(replies(&mut c).is_empty());
    // The UPDATE refreshed the session: our refresh comes 45 s after it.
    c.handle_timeout(secs(t0, 50));
    assert!(sent(&mut c).is_empty());
    c.handle_timeout(secs(t0, 51));
    assert!(sent(&mut c).iter().any(|m| m.starts_with("INVITE ")));
    // While our re-INVITE is out, the peer's offer is glare: 491.
    c.handle_datagram(secs(t0, 51), TRUNK.parse().unwrap(), message("UPDATE", "up", 4, Some(&tag), SDP, "").as_bytes());
    assert_eq!(replies(&mut c)[0].status_code.code(), 491);
    c.handle_datagram(secs(t0, 51), TRUNK.parse().unwrap(), message("INVITE", "up", 5, Some(&tag), SDP, "").as_bytes());
    assert!(replies(&mut c).iter().any(|r| r.status_code.code() == 491));
}

#[test]
fn an_update_before_the_answer_refreshes_nothing_and_an_offer_then_gets_500() {
    let mut c = core();
    let t0 = Instant::now();
    let call = incoming(&mut c, t0, "eu");
    c.handle_command(t0, CallCommand::Ringing { leg: call.leg });
    let tag = to_tag(&replies(&mut c)[0]);
    c.handle_datagram(t0, TRUNK.parse().unwrap(), message("UPDATE", "eu", 2, Some(&tag), "", "").as_bytes());
    assert_eq!(replies(&mut c)[0].status_code.code(), 200);
    c.handle_datagram(t0, TRUNK.parse().unwrap(), message("UPDATE", "eu", 3, Some(&tag), SDP, "").as_bytes());
    assert_eq!(replies(&mut c)[0].status_code.code(), 500);
    assert!(events(&mut c).is_empty());
}

#[test]
fn with_100rel_required_ringing_is_reliable_and_the_200_waits_for_the_prack() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_datagram(t0, TRUNK.parse().unwrap(), message("INVITE", "pr", 1, None, SDP, "Require: 100rel\r\n").as_bytes());
    let CallEvent::Incoming(call) = events(&mut c).remove(0) else { panic!("no call") };
    c.handle_command(t0, CallCommand::Ringing { leg: call.leg });
    let r = replies(&mut c);
    let ringing = r.iter().find(|r| r.status_code.code() == 180).expect("180");
    let text = ringing.to_string();
    assert!(text.contains("Require: 100rel\r\n") && text.contains("RSeq: 1\r\n"), "{text}");
    let tag = to_tag(ringing);
    // Retransmitted at T1, then 2·T1 later.
    c.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(replies(&mut c).iter().map(|r| r.status_code.code()).collect::<Vec<_>>(), vec![180]);
    c.handle_timeout(t0 + Duration::from_millis(1000));
    assert!(replies(&mut c).is_empty());
    c.handle_timeout(t0 + Duration::from_millis(1500));
    assert_eq!(replies(&mut c).len(), 1);
    // The engine answers before the PRACK: the 200 is held.
    c.handle_command(t0 + Duration::from_secs(2), CallCommand::Answer { leg: call.leg, sdp: b"v=0\r\n".to_vec() });
    assert!(replies(&mut c).is_empty(), "no 200 before the PRACK");
    // A PRACK for another RSeq: 481.
    let prack = |cseq: u32, rseq: u32| message("PRACK", "pr", cseq, Some(&tag), "", &format!("RAck: {rseq} 1 INVITE\r\n"));
    c.handle_datagram(t0 + Duration::from_secs(2), TRUNK.parse().unwrap(), prack(2, 7).as_bytes());
    assert_eq!(replies(&mut c)[0].status_code.code(), 481);
    c.handle_datagram(t0 + Duration::from_secs(2), TRUNK.parse().unwrap(), prack(3, 1).as_bytes());
    let r = replies(&mut c);
    let codes: Vec<(u16, String)> = r.iter().map(|r| (r.status_code.code(), r.cseq_header().unwrap().to_string())).collect();
    assert_eq!(codes, vec![(200, "CSeq: 3 PRACK".into()), (200, "CSeq: 1 INVITE".into())]);
    // No more 180s; the 200 is retransmitted until the ACK.
    c.handle_timeout(t0 + Duration::from_millis(2500));
    assert_eq!(replies(&mut c).iter().map(|r| r.status_code.code()).collect::<Vec<_>>(), vec![200]);
    c.handle_datagram(t0 + Duration::from_secs(3), TRUNK.parse().unwrap(), message("ACK", "pr", 1, Some(&tag), "", "").as_bytes());
    assert!(matches!(events(&mut c).as_slice(), [CallEvent::Confirmed { .. }]));
}

#[test]
fn a_reliable_provisional_never_pracked_fails_the_call_with_500() {
    let mut c = core();
    let t0 = Instant::now();
    c.handle_datagram(t0, TRUNK.parse().unwrap(), message("INVITE", "np", 1, None, SDP, "Require: 100rel\r\n").as_bytes());
    let CallEvent::Incoming(call) = events(&mut c).remove(0) else { panic!("no call") };
    c.handle_command(t0, CallCommand::Ringing { leg: call.leg });
    replies(&mut c);
    let mut retransmits = 0;
    let mut now = t0;
    while now < t0 + Duration::from_secs(31) {
        now = c.poll_timeout().unwrap();
        c.handle_timeout(now);
        retransmits += replies(&mut c).iter().filter(|r| r.status_code.code() == 180).count();
    }
    // T1 doubling: at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s.
    assert_eq!(retransmits, 6);
    c.handle_timeout(t0 + Duration::from_secs(32));
    let r = replies(&mut c);
    assert!(r.iter().any(|r| r.status_code.code() == 500), "{r:?}");
    assert_eq!(events(&mut c), vec![CallEvent::Ended { leg: call.leg, reason: EndReason::Local }]);
}

#[test]
fn a_peer_from_another_address_is_challenged_and_admitted_by_its_digest() {
    use crate::sip::digest::{authorization_value, Challenge, Credentials};
    let trunk = TrunkPeer {
        name: "pbx".into(),
        addresses: vec!["192.0.2.99".parse().unwrap()],
        inbound: Some(Credentials::new("pbx", "s3cret")),
        ..Default::default()
    };
    let calls = Calls::new(Timers::default(), "198.51.100.1:5060".parse().unwrap(), vec![trunk], 2);
    let mut c = UdpCore::new(Timers::default(), Limits::default(), Arc::new(Metrics::default()), calls);
    let now = Instant::now();
    // 192.0.2.7 is no trunk's address: challenged, not refused.
    c.handle_datagram(now, TRUNK.parse().unwrap(), message("INVITE", "a", 1, None, SDP, "").as_bytes());
    let reply = replies(&mut c).pop().expect("a reply");
    assert_eq!(reply.status_code, StatusCode::Unauthorized);
    let value = reply.headers.iter().find_map(|h| match h {
        Header::WwwAuthenticate(w) => Some(w.value().to_owned()),
        _ => None,
    });
    let challenge = Challenge::parse(&value.expect("a challenge"), false).expect("parses");
    assert!(events(&mut c).is_empty(), "no call before authentication");

    let answer = |password: &str| {
        let auth = authorization_value(&challenge, &Credentials::new("pbx", password), "INVITE", "sip:12365@198.51.100.1", "c0ffee", 1);
        format!("Authorization: {auth}\r\n")
    };
    // A wrong password is refused outright.
    c.handle_datagram(now, TRUNK.parse().unwrap(), message("INVITE", "b", 2, None, SDP, &answer("guess")).as_bytes());
    assert_eq!(replies(&mut c).pop().map(|r| r.status_code), Some(StatusCode::Forbidden));
    // The right one makes the call the trunk's.
    c.handle_datagram(now + Duration::from_secs(2), TRUNK.parse().unwrap(), message("INVITE", "c", 3, None, SDP, &answer("s3cret")).as_bytes());
    match events(&mut c).as_slice() {
        [CallEvent::Incoming(i)] => assert_eq!(i.trunk, "pbx"),
        other => panic!("expected the call, got {other:?}"),
    }
    // Long after, the same answer is stale: challenged again, stale=true.
    let later = now + Duration::from_secs(crate::sip::digest_server::NONCE_LIFETIME + 10);
    c.handle_datagram(later, TRUNK.parse().unwrap(), message("INVITE", "d", 4, None, SDP, &answer("s3cret")).as_bytes());
    let reply = replies(&mut c).into_iter().find(|r| r.status_code == StatusCode::Unauthorized).expect("a fresh challenge");
    assert!(reply.to_string().contains("stale=true"));
}
