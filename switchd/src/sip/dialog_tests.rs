//! Virtual-clock tests of [`UasDialog`] against the captured SIPp vectors.

use std::time::{Duration, Instant};

use rsip::prelude::*;
use rsip::{Header, Method, Request, Response, StatusCode, Uri};

use super::*;

const INVITE: &str = include_str!("vectors/sipp_invite.sip");
const ACK: &str = include_str!("vectors/sipp_ack_2xx.sip");
const BYE: &str = include_str!("vectors/sipp_bye.sip");
const LOCAL_TAG: &str = "30058SIPpTag011";
const SDP: &[u8] = b"v=0\r\no=switchd 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn req(text: &str) -> Request {
    Request::try_from(text).unwrap()
}

fn contact_uri() -> Uri {
    Uri::try_from("sip:switchd@127.0.0.1:5070").unwrap()
}

fn via() -> rsip::headers::Via {
    rsip::headers::Via::new("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbye1")
}

fn dialog(now: Instant) -> UasDialog {
    UasDialog::from_invite(
        now,
        &req(INVITE),
        LOCAL_TAG,
        contact_uri(),
        Timers::default(),
    )
    .unwrap()
}

fn accepted(t0: Instant) -> (UasDialog, Response) {
    let mut d = dialog(t0);
    let ok = d.accept(t0, SDP).unwrap().unwrap();
    (d, ok)
}

fn drain(d: &mut UasDialog) -> (Vec<DialogTransmit>, Vec<DialogEvent>) {
    let t = std::iter::from_fn(|| d.poll_transmit()).collect();
    let e = std::iter::from_fn(|| d.poll_event()).collect();
    (t, e)
}

/// Run the dialog's timers from `from` up to `until`, returning when each 2xx retransmission
/// went out (seconds since `t0`) and the events.
fn run(d: &mut UasDialog, t0: Instant, until: Instant) -> (Vec<f64>, Vec<DialogEvent>) {
    let mut sent = Vec::new();
    let mut events = Vec::new();
    while let Some(t) = d.poll_timeout() {
        if t > until {
            break;
        }
        d.handle_timeout(t);
        let (tx, ev) = drain(d);
        for x in tx {
            assert!(matches!(x, DialogTransmit::Retransmit(_)));
            sent.push((t - t0).as_secs_f64());
        }
        events.extend(ev);
    }
    (sent, events)
}

/// `text` with the header line starting `name:` replaced by `line`.
fn with_header(text: &str, name: &str, line: &str) -> String {
    text.split("\r\n")
        .map(|l| {
            if l.starts_with(name) {
                line.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn status(r: &Response) -> u16 {
    r.status_code.code()
}

#[test]
fn invite_is_validated() {
    let t0 = Instant::now();
    let d = dialog(t0);
    assert_eq!(
        d.id(),
        &DialogId {
            call_id: "1-30062@127.0.0.1".into(),
            local_tag: LOCAL_TAG.into(),
            remote_tag: "30062SIPpTag001".into(),
        }
    );
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(d.poll_timeout(), None);

    let make = |text: String| {
        UasDialog::from_invite(t0, &req(&text), LOCAL_TAG, contact_uri(), Timers::default())
            .unwrap_err()
    };
    let no_tag = with_header(INVITE, "From:", "From: sipp <sip:sipp@127.0.0.1:5071>");
    assert_eq!(make(no_tag), DialogError::MissingFromTag);
    let no_contact = INVITE.replace("Contact: sip:sipp@127.0.0.1:5071\r\n", "");
    assert_eq!(make(no_contact), DialogError::MissingHeader("Contact"));
    let bad_cseq = with_header(INVITE, "CSeq:", "CSeq: one INVITE");
    assert_eq!(make(bad_cseq), DialogError::BadHeader("CSeq"));
    let wrong_method = with_header(INVITE, "CSeq:", "CSeq: 1 OPTIONS");
    assert_eq!(make(wrong_method), DialogError::NotInvite("OPTIONS".into()));
    let tagged = with_header(INVITE, "To:", "To: <sip:service@127.0.0.1:5070>;tag=x");
    assert_eq!(make(tagged), DialogError::ToTagPresent);
    let bye = req(BYE);
    assert!(matches!(
        UasDialog::from_invite(t0, &bye, LOCAL_TAG, contact_uri(), Timers::default()),
        Err(DialogError::NotInvite(_))
    ));
}

#[test]
fn responses_carry_tag_contact_and_sdp() {
    let t0 = Instant::now();
    let mut d = dialog(t0);
    let ringing = d.provisional(t0, StatusCode::Ringing).unwrap();
    assert_eq!(status(&ringing), 180);
    assert_eq!(
        ringing.to_header().unwrap().tag().unwrap().unwrap().value(),
        LOCAL_TAG
    );
    assert!(ringing.contact_header().is_ok());
    assert_eq!(
        status(&d.provisional(t0, StatusCode::SessionProgress).unwrap()),
        183
    );
    assert_eq!(
        d.provisional(t0, StatusCode::OK).unwrap_err(),
        DialogError::BadStatus(200)
    );

    let ok = d.accept(t0, SDP).unwrap().unwrap();
    assert_eq!(status(&ok), 200);
    assert_eq!(
        ok.to_header().unwrap().tag().unwrap().unwrap().value(),
        LOCAL_TAG
    );
    assert_eq!(ok.contact_header().unwrap().uri().unwrap(), contact_uri());
    assert!(ok
        .headers
        .iter()
        .any(|h| matches!(h, Header::ContentType(c) if c.value() == "application/sdp")));
    assert_eq!(ok.body, SDP);
    // It survives the wire, with a correct Content-Length.
    let back = Response::try_from(ok.to_string()).unwrap();
    assert_eq!(back.body, SDP);
    assert_eq!(
        back.cseq_header().unwrap(),
        req(INVITE).cseq_header().unwrap()
    );
    // The ACK vector (SIPp's shape) matches this 200.
    assert_eq!(back.to_header().unwrap(), req(ACK).to_header().unwrap());

    assert_eq!(
        d.accept(t0, SDP).unwrap_err(),
        DialogError::InvalidState(DialogState::Accepted)
    );
    assert!(d.reject(StatusCode::BusyHere).is_err());
}

#[test]
fn reject_ends_the_dialog() {
    let t0 = Instant::now();
    let mut d = dialog(t0);
    assert!(d.reject(StatusCode::Ringing).is_err());
    let busy = d.reject(StatusCode::BusyHere).unwrap();
    assert_eq!(status(&busy), 486);
    assert_eq!(
        busy.to_header().unwrap().tag().unwrap().unwrap().value(),
        LOCAL_TAG
    );
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(drain(&mut d), (vec![], vec![]));
}

#[test]
fn ok_is_retransmitted_until_ack() {
    let t0 = Instant::now();
    let (mut d, ok) = accepted(t0);
    let (sent, events) = run(&mut d, t0, t0 + Duration::from_millis(7_600));
    assert_eq!(sent, vec![0.5, 1.5, 3.5, 7.5]);
    assert!(events.is_empty());
    // Each retransmission is the same 200.
    d.handle_timeout(t0 + Duration::from_millis(11_500));
    assert_eq!(
        d.poll_transmit(),
        Some(DialogTransmit::Retransmit(ok.clone()))
    );

    // A retransmitted INVITE (same CSeq, no To tag) is answered with the 200 again.
    d.handle_request(t0 + Duration::from_secs(12), &req(INVITE))
        .unwrap();
    assert_eq!(drain(&mut d).0, vec![DialogTransmit::Answer(ok)]);
    assert_eq!(d.state(), DialogState::Accepted);

    let ack = req(ACK);
    d.handle_request(t0 + Duration::from_secs(12), &ack)
        .unwrap();
    let (tx, ev) = drain(&mut d);
    assert!(tx.is_empty());
    assert_eq!(ev, vec![DialogEvent::Confirmed(ack.clone())]);
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.poll_timeout(), None);
    // A retransmitted ACK is absorbed.
    d.handle_request(t0 + Duration::from_secs(13), &ack)
        .unwrap();
    assert_eq!(drain(&mut d), (vec![], vec![]));
}

#[test]
fn ack_with_other_cseq_does_not_stop_retransmission() {
    let t0 = Instant::now();
    let (mut d, _) = accepted(t0);
    let ack = req(&with_header(ACK, "CSeq:", "CSeq: 7 ACK"));
    d.handle_request(t0, &ack).unwrap();
    assert_eq!(drain(&mut d), (vec![], vec![]));
    assert_eq!(d.state(), DialogState::Accepted);
    assert!(d.poll_timeout().is_some());
}

#[test]
fn no_ack_times_out_at_64_t1() {
    let t0 = Instant::now();
    let (mut d, _) = accepted(t0);
    let (sent, events) = run(&mut d, t0, t0 + Duration::from_secs(60));
    assert_eq!(
        sent,
        vec![0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert_eq!(events, vec![DialogEvent::AckTimeout]);
    assert_eq!(d.poll_timeout(), None);
    assert_eq!(d.state(), DialogState::Confirmed);
    // The TU then hangs up.
    let bye = d.bye(t0 + Duration::from_secs(32), via()).unwrap();
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(
        drain(&mut d).1,
        vec![DialogEvent::Terminated { by_remote: false }]
    );
}

#[test]
fn ack_timeout_fires_at_exactly_32_s() {
    let t0 = Instant::now();
    let (mut d, _) = accepted(t0);
    d.handle_timeout(t0 + Duration::from_millis(31_999));
    assert!(drain(&mut d).1.is_empty());
    d.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(drain(&mut d).1, vec![DialogEvent::AckTimeout]);
}

fn confirmed(t0: Instant) -> UasDialog {
    let (mut d, _) = accepted(t0);
    d.handle_request(t0, &req(ACK)).unwrap();
    drain(&mut d);
    d
}

#[test]
fn remote_bye_is_answered_and_terminates() {
    let t0 = Instant::now();
    let mut d = confirmed(t0);
    let bye = req(BYE);
    d.handle_request(t0, &bye).unwrap();
    let (tx, ev) = drain(&mut d);
    let [DialogTransmit::Answer(ok)] = tx.as_slice() else {
        panic!("{tx:?}")
    };
    assert_eq!(status(ok), 200);
    // The SIPp vector of our 200 to its BYE has the same transaction headers.
    let expected = Response::try_from(include_str!("vectors/sipp_200_bye.sip")).unwrap();
    assert_eq!(ok.cseq_header().unwrap(), expected.cseq_header().unwrap());
    assert_eq!(ok.to_header().unwrap(), expected.to_header().unwrap());
    assert_eq!(ev, vec![DialogEvent::Terminated { by_remote: true }]);
    assert_eq!(d.state(), DialogState::Terminated);
    // Afterwards everything is ignored.
    d.handle_request(t0, &bye).unwrap();
    assert_eq!(drain(&mut d), (vec![], vec![]));
}

#[test]
fn bye_while_awaiting_ack_stops_retransmission() {
    let t0 = Instant::now();
    let (mut d, _) = accepted(t0);
    d.handle_request(t0, &req(BYE)).unwrap();
    assert_eq!(d.poll_timeout(), None);
    assert_eq!(d.state(), DialogState::Terminated);
}

#[test]
fn stale_cseq_gets_500() {
    let t0 = Instant::now();
    let mut d = confirmed(t0);
    // Equal to the INVITE's CSeq (1), and lower.
    for seq in ["1", "0"] {
        let info = with_header(BYE, "CSeq:", &format!("CSeq: {seq} INFO"))
            .replace("BYE sip:", "INFO sip:");
        d.handle_request(t0, &req(&info)).unwrap();
        let (tx, ev) = drain(&mut d);
        assert!(ev.is_empty());
        assert!(
            matches!(tx.as_slice(), [DialogTransmit::Answer(r)] if status(r) == 500),
            "{tx:?}"
        );
    }
    // A BYE with CSeq 2 is then still taken, a second one with 2 is stale.
    d.handle_request(t0, &req(BYE)).unwrap();
    assert_eq!(
        drain(&mut d).1,
        vec![DialogEvent::Terminated { by_remote: true }]
    );
}

fn reinvite(seq: u32, sdp: &str) -> Request {
    let text = INVITE
        .replace(
            "To: service <sip:service@127.0.0.1:5070>",
            &format!("To: service <sip:service@127.0.0.1:5070>;tag={LOCAL_TAG}"),
        )
        .replace("CSeq: 1 INVITE", &format!("CSeq: {seq} INVITE"))
        .replace(
            "Contact: sip:sipp@127.0.0.1:5071",
            "Contact: sip:sipp@127.0.0.1:5099",
        );
    let head = text.split("\r\n\r\n").next().unwrap();
    let head = with_header(
        head,
        "Content-Length:",
        &format!("Content-Length: {}", sdp.len()),
    );
    req(&format!("{head}\r\n\r\n{sdp}"))
}

#[test]
fn reinvite_with_sendonly_surfaces_and_its_2xx_is_retransmitted() {
    let t0 = Instant::now();
    let mut d = confirmed(t0);
    let sdp = "v=0\r\no=user1 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6004 RTP/AVP 0\r\na=sendonly\r\n";
    let hold = reinvite(2, sdp);
    d.handle_request(t0, &hold).unwrap();
    let (tx, ev) = drain(&mut d);
    assert!(tx.is_empty());
    let [DialogEvent::ReInvite(r)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert!(String::from_utf8_lossy(&r.body).contains("a=sendonly"));

    let ok = d.accept_reinvite(t0, r, SDP).unwrap();
    assert_eq!(status(&ok), 200);
    assert_eq!(d.remote_target().to_string(), "sip:sipp@127.0.0.1:5099");
    d.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(
        d.poll_transmit(),
        Some(DialogTransmit::Retransmit(ok.clone()))
    );
    // A retransmission of the re-INVITE gets the same 200, not a 500.
    d.handle_request(t0, &hold).unwrap();
    assert_eq!(d.poll_transmit(), Some(DialogTransmit::Answer(ok)));
    let ack = req(&with_header(ACK, "CSeq:", "CSeq: 2 ACK"));
    d.handle_request(t0, &ack).unwrap();
    assert_eq!(drain(&mut d).1, vec![DialogEvent::Confirmed(ack)]);
    assert_eq!(d.poll_timeout(), None);
    // The initial INVITE once more (its CSeq, in a transaction of its own, found by the
    // sip_datagram fuzz target): its 2xx has been replaced, but it still gets an answer, so
    // its server transaction ends.
    d.handle_request(t0, &req(INVITE)).unwrap();
    let (tx, _) = drain(&mut d);
    let [DialogTransmit::Answer(late)] = tx.as_slice() else {
        panic!("{tx:?}")
    };
    assert_eq!(status(late), 500);
    // Our BYE now goes to the new target.
    assert_eq!(
        d.bye(t0, via()).unwrap().uri.to_string(),
        "sip:sipp@127.0.0.1:5099"
    );
}

#[test]
fn info_surfaces_for_the_tu() {
    let t0 = Instant::now();
    let mut d = confirmed(t0);
    let info = BYE
        .replace("BYE sip:", "INFO sip:")
        .replace("CSeq: 2 BYE", "CSeq: 2 INFO");
    let info = req(&info);
    d.handle_request(t0, &info).unwrap();
    let (tx, ev) = drain(&mut d);
    assert!(tx.is_empty());
    assert_eq!(ev, vec![DialogEvent::Info(info.clone())]);
    assert_eq!(status(&d.respond(&info, StatusCode::OK)), 200);
    assert_eq!(d.state(), DialogState::Confirmed);
}

#[test]
fn cancel_before_final_gives_487() {
    let t0 = Instant::now();
    let mut d = dialog(t0);
    d.provisional(t0, StatusCode::Ringing).unwrap();
    let cancel = INVITE
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let cancel = req(&cancel);
    d.handle_request(t0, &cancel).unwrap();
    let (tx, ev) = drain(&mut d);
    let [DialogTransmit::InviteResponse(r)] = tx.as_slice() else {
        panic!("{tx:?}")
    };
    assert_eq!(status(r), 487);
    assert_eq!(r.cseq_header().unwrap().method().unwrap(), Method::Invite);
    assert_eq!(
        r.to_header().unwrap().tag().unwrap().unwrap().value(),
        LOCAL_TAG
    );
    assert_eq!(ev, vec![DialogEvent::Cancelled]);
    assert_eq!(d.state(), DialogState::Terminated);
    assert!(d.accept(t0, SDP).is_err());
}

#[test]
fn cancel_after_2xx_has_no_effect() {
    let t0 = Instant::now();
    let (mut d, _) = accepted(t0);
    let cancel = INVITE
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    d.handle_request(t0, &req(&cancel)).unwrap();
    assert_eq!(drain(&mut d), (vec![], vec![]));
    assert_eq!(d.state(), DialogState::Accepted);
}

#[test]
fn our_bye_has_dialog_headers_and_route_set() {
    let t0 = Instant::now();
    let invite = INVITE.replacen(
        "Call-ID:",
        "Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\nRecord-Route: <sip:p3.example.com;lr>\r\nCall-ID:",
        1,
    );
    let invite = req(&invite);
    let mut d =
        UasDialog::from_invite(t0, &invite, LOCAL_TAG, contact_uri(), Timers::default()).unwrap();
    let ok = d.accept(t0, SDP).unwrap().unwrap();
    // §12.1.1: the 2xx copies Record-Route.
    assert_eq!(
        ok.headers
            .iter()
            .filter(|h| matches!(h, Header::RecordRoute(_)))
            .count(),
        2
    );
    d.handle_request(t0, &req(ACK)).unwrap();
    drain(&mut d);

    let bye = d.bye(t0, via()).unwrap();
    let bye = Request::try_from(bye.to_string()).unwrap();
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(bye.uri.to_string(), "sip:sipp@127.0.0.1:5071");
    assert_eq!(bye.call_id_header().unwrap().value(), "1-30062@127.0.0.1");
    assert_eq!(
        bye.from_header().unwrap().tag().unwrap().unwrap().value(),
        LOCAL_TAG
    );
    assert_eq!(
        bye.to_header().unwrap().tag().unwrap().unwrap().value(),
        "30062SIPpTag001"
    );
    assert_eq!(
        bye.from_header().unwrap().uri().unwrap(),
        invite.to_header().unwrap().uri().unwrap()
    );
    let cseq = bye.cseq_header().unwrap().typed().unwrap();
    assert_eq!((cseq.seq, cseq.method), (1, Method::Bye));
    let routes: Vec<String> = bye
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Route(r) => Some(r.value().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
            "<sip:p3.example.com;lr>"
        ]
    );
    assert_eq!(bye.via_header().unwrap(), &via());
    assert_eq!(d.state(), DialogState::Terminated);
    assert!(d.bye(t0, via()).is_err());
}

#[test]
fn local_cseq_increments_across_requests() {
    let t0 = Instant::now();
    let mut d = confirmed(t0);
    let info = d
        .info(
            via(),
            "application/dtmf-relay",
            b"Signal=5\r\nDuration=160\r\n",
        )
        .unwrap();
    assert_eq!(info.cseq_header().unwrap().seq().unwrap(), 1);
    let re = d.reinvite(via(), SDP).unwrap();
    assert_eq!(re.cseq_header().unwrap().typed().unwrap().seq, 2);
    assert!(re.contact_header().is_ok());
    let bye = d.bye(t0, via()).unwrap();
    assert_eq!(bye.cseq_header().unwrap().seq().unwrap(), 3);
}

#[test]
fn foreign_tags_are_not_this_dialog() {
    let t0 = Instant::now();
    let mut d = confirmed(t0);
    let other_to = BYE.replace(LOCAL_TAG, "someoneelse");
    assert_eq!(
        d.handle_request(t0, &req(&other_to)),
        Err(DialogError::NotThisDialog)
    );
    let other_from = BYE.replace("30062SIPpTag001", "x");
    assert_eq!(
        d.handle_request(t0, &req(&other_from)),
        Err(DialogError::NotThisDialog)
    );
    let other_call = BYE.replace("Call-ID: 1-30062", "Call-ID: 9-30062");
    assert_eq!(
        d.handle_request(t0, &req(&other_call)),
        Err(DialogError::NotThisDialog)
    );
    assert_eq!(drain(&mut d), (vec![], vec![]));
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(DialogId::for_incoming(&req(BYE)).as_ref(), Some(d.id()));
    assert_eq!(DialogId::for_incoming(&req(INVITE)), None);
}

#[test]
fn early_second_invite_gets_500_retry_after() {
    let t0 = Instant::now();
    let mut d = dialog(t0);
    d.handle_request(t0, &reinvite(2, "")).unwrap();
    let (tx, ev) = drain(&mut d);
    assert!(ev.is_empty());
    assert!(
        matches!(tx.as_slice(), [DialogTransmit::Answer(r)] if status(r) == 500 && r.to_string().contains("Retry-After"))
    );
}

/// Every truncation and a set of byte corruptions of every vector, fed to every entry point
/// in every state: nothing panics.
#[test]
fn malformed_inputs_never_panic() {
    let t0 = Instant::now();
    let vectors = [INVITE, ACK, BYE];
    let mut inputs: Vec<String> = Vec::new();
    for v in vectors {
        for cut in 0..v.len() {
            if v.is_char_boundary(cut) {
                inputs.push(v[..cut].to_owned());
            }
        }
        let bytes = v.as_bytes();
        for i in (0..bytes.len()).step_by(3) {
            for b in [b'\0', b':', b';', b'<', b' ', b'9', 0xff] {
                let mut c = bytes.to_vec();
                c[i] = b;
                inputs.push(String::from_utf8_lossy(&c).into_owned());
            }
        }
    }
    let mut parsed = 0;
    for text in &inputs {
        let Ok(r) = Request::try_from(text.as_str()) else {
            continue;
        };
        parsed += 1;
        // As a dialog-creating INVITE.
        if let Ok(mut d) =
            UasDialog::from_invite(t0, &r, LOCAL_TAG, contact_uri(), Timers::default())
        {
            let _ = d.provisional(t0, StatusCode::Ringing);
            let _ = d.accept(t0, SDP);
            let _ = d.handle_request(t0, &r);
            d.handle_timeout(t0 + Duration::from_secs(40));
            let _ = d.bye(t0, via());
            drain(&mut d);
        }
        // As an in-dialog request in each state.
        let mut early = dialog(t0);
        let _ = early.handle_request(t0, &r);
        let (mut acc, _) = accepted(t0);
        let _ = acc.handle_request(t0, &r);
        let mut conf = confirmed(t0);
        let _ = conf.handle_request(t0, &r);
        let _ = conf.accept_reinvite(t0, &r, SDP);
        let _ = conf.respond(&r, StatusCode::OK);
        let _ = DialogId::for_incoming(&r);
        for d in [&mut early, &mut acc, &mut conf] {
            drain(d);
        }
    }
    assert!(parsed > 100, "only {parsed} corrupted inputs parsed");
}

/// A confirmed dialog whose INVITE asked for `Session-Expires: 90;refresher=uas`.
fn refreshing(t0: Instant) -> UasDialog {
    let mut d = dialog(t0);
    let invite = req(&INVITE.replace("CSeq: 1 INVITE\r\n", "CSeq: 1 INVITE\r\nSupported: timer\r\nSession-Expires: 90;refresher=uas\r\n"));
    let plan = crate::sip::session_timer::uas_choice(&invite.headers, SessionConfig::default());
    d.set_session(plan, SessionConfig::default());
    d.accept(t0, SDP).unwrap().unwrap();
    d.handle_request(t0, &req(ACK)).unwrap();
    drain(&mut d);
    d
}

fn answer_to(request: &Request, status: StatusCode) -> Response {
    response_for(request, status)
}

fn header_line(r: &Request, name: &str) -> Option<String> {
    r.headers.iter().map(|h| h.to_string()).find(|h| h.starts_with(&format!("{name}:")))
}

#[test]
fn our_refresh_is_an_in_dialog_reinvite_and_its_2xx_is_acked_again_when_repeated() {
    let t0 = Instant::now();
    let mut d = refreshing(t0);
    assert_eq!(d.session(), Some((90, true)), "we refresh");
    let (_, events) = run(&mut d, t0, t0 + Duration::from_secs(45));
    assert_eq!(events, vec![DialogEvent::RefreshDue]);
    let refresh = d.refresh(via()).unwrap();
    assert_eq!(refresh.method, Method::Invite);
    assert_eq!(refresh.body, SDP, "the SDP of our 200, unchanged");
    assert_eq!(refresh.cseq_header().unwrap().seq().unwrap(), 1);
    // We are the UAC of our re-INVITE, and the refresher (RFC 4028: roles per transaction).
    assert_eq!(header_line(&refresh, "Session-Expires").as_deref(), Some("Session-Expires: 90;refresher=uac"));
    assert_eq!(refresh.from_header().unwrap().tag().unwrap().unwrap().value(), LOCAL_TAG);
    assert!(d.refresh(via()).is_none(), "one refresh at a time");
    // Glare (491) still shows the peer alive: the timer starts over.
    d.handle_response(t0 + Duration::from_secs(46), &answer_to(&refresh, StatusCode::RequestPending), via());
    assert!(drain(&mut d).1.is_empty());
    assert_eq!(d.poll_timeout(), Some(t0 + Duration::from_secs(91)));
    let refresh = d.refresh(via()).unwrap();
    let ok = answer_to(&refresh, StatusCode::OK);
    d.handle_response(t0 + Duration::from_secs(92), &ok, via());
    let (tx, _) = drain(&mut d);
    let [DialogTransmit::Ack(ack)] = tx.as_slice() else { panic!("expected the ACK, got {tx:?}") };
    assert_eq!(ack.cseq_header().unwrap().typed().unwrap(), rsip::typed::CSeq { seq: 2, method: Method::Ack });
    // The 2xx again (our ACK lost): the same ACK again.
    d.handle_response(t0 + Duration::from_secs(93), &ok, via());
    assert!(matches!(drain(&mut d).0.as_slice(), [DialogTransmit::Ack(a)] if a == ack));
    // A refresh answered 481: the session is over.
    let refresh = d.refresh(via()).unwrap();
    d.handle_response(t0 + Duration::from_secs(94), &answer_to(&refresh, StatusCode::CallTransactionDoesNotExist), via());
    assert_eq!(drain(&mut d).1, vec![DialogEvent::SessionExpired]);
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn a_refresh_asking_for_too_short_an_interval_gets_422_and_a_bad_rack_481() {
    let t0 = Instant::now();
    let mut d = refreshing(t0);
    let short = reinvite(2, std::str::from_utf8(SDP).unwrap());
    let short = req(&short.to_string().replace("CSeq: 2 INVITE\r\n", "CSeq: 2 INVITE\r\nSession-Expires: 30\r\n"));
    d.handle_request(t0, &short).unwrap();
    let (tx, events) = drain(&mut d);
    let [DialogTransmit::Answer(r)] = tx.as_slice() else { panic!("{tx:?}") };
    assert_eq!(status(r), 422);
    assert!(r.to_string().contains("Min-SE: 90\r\n"));
    assert!(events.is_empty());

    let reliable = req(&INVITE.replace("CSeq: 1 INVITE\r\n", "CSeq: 1 INVITE\r\nRequire: 100rel\r\n"));
    let mut d = UasDialog::from_invite(t0, &reliable, LOCAL_TAG, contact_uri(), Timers::default()).unwrap();
    let ringing = d.provisional(t0, StatusCode::Ringing).unwrap();
    assert!(ringing.to_string().contains("RSeq: 1\r\n"));
    assert_eq!(d.provisional(t0, StatusCode::SessionProgress).unwrap_err(), DialogError::AwaitingPrack);
    let prack = reinvite(2, "")
        .to_string()
        .replace("INVITE sip:", "PRACK sip:")
        .replace("CSeq: 2 INVITE\r\n", "CSeq: 2 PRACK\r\nRAck: garbage\r\n");
    d.handle_request(t0, &req(&prack)).unwrap();
    assert!(matches!(drain(&mut d).0.as_slice(), [DialogTransmit::Answer(r)] if status(r) == 481));
}
