use super::*;
use crate::test_rng::Rng;

const SIPP_INVITE: &str = include_str!("vectors/sipp_invite.sip");
/// `sipp -sd uac` body with its `[...]` keywords filled in.
const SIPP_UAC: &str = include_str!("vectors/sdp_sipp_uac.sdp");
/// `sipp -sd uac_pcap` body (PCMA + telephone-event with `0-11,16`), keywords filled in.
const SIPP_UAC_PCAP: &str = include_str!("vectors/sdp_sipp_uac_pcap.sdp");
/// Hand-written in the shape baresip sends (opus first, then PCMU, PCMA, telephone-event).
const BARESIP: &str = include_str!("vectors/sdp_baresip.sdp");
const G729_ONLY: &str = include_str!("vectors/sdp_g729_only.sdp");
const VIDEO_AUDIO: &str = include_str!("vectors/sdp_video_audio.sdp");
const HOLD_SENDONLY: &str = include_str!("vectors/sdp_hold_sendonly.sdp");
const HOLD_C0: &str = include_str!("vectors/sdp_hold_c0.sdp");
const RESUME: &str = include_str!("vectors/sdp_resume.sdp");
const IPV6: &str = include_str!("vectors/sdp_ipv6.sdp");

const ALL: &[&str] = &[
    SIPP_UAC,
    SIPP_UAC_PCAP,
    BARESIP,
    G729_ONLY,
    VIDEO_AUDIO,
    HOLD_SENDONLY,
    HOLD_C0,
    RESUME,
    IPV6,
];

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn local() -> LocalMedia {
    LocalMedia::new("192.0.2.1".parse().expect("ip"), 20000, 4242)
}

fn parse(s: &str) -> SessionDescription {
    SessionDescription::parse(s).expect("vector parses")
}

fn sipp_body() -> &'static str {
    let (_, body) = SIPP_INVITE
        .split_once("\r\n\r\n")
        .or_else(|| SIPP_INVITE.split_once("\n\n"))
        .expect("INVITE has a body");
    body
}

#[test]
fn sipp_invite_body_parses_and_answers_pcmu() {
    let sdp = parse(sipp_body());
    assert_eq!(sdp, parse(SIPP_UAC));
    assert_eq!(sdp.origin.session_version, 2353687637);
    assert_eq!(sdp.connection, Some("127.0.0.1".parse().expect("ip")));
    let a = answer(&sdp, &local()).expect("answer");
    assert_eq!((a.codec, a.payload_type), (Codec::Pcmu, 0));
    assert_eq!(a.remote, "127.0.0.1:6004".parse().expect("sa"));
    assert_eq!(a.dtmf_payload_type, None);
    assert_eq!(a.direction, Direction::SendRecv);
    assert!(!a.hold);
    let body = a.sdp.render();
    assert!(body.contains("m=audio 20000 RTP/AVP 0\r\n"), "{body}");
    assert!(body.contains("a=rtpmap:0 PCMU/8000\r\n"));
    assert!(body.contains("a=ptime:20\r\n"));
    assert!(body.contains("c=IN IP4 192.0.2.1\r\n"));
    assert!(!body.contains("telephone-event"));
}

#[test]
fn static_payload_types_need_no_rtpmap() {
    let s = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\n";
    let a = answer(&parse(s), &local()).expect("answer");
    assert_eq!((a.codec, a.payload_type), (Codec::Pcma, 8));
}

#[test]
fn sipp_pcap_offer_keeps_its_telephone_event_number() {
    let a = answer(&parse(SIPP_UAC_PCAP), &local()).expect("answer");
    assert_eq!(
        (a.codec, a.payload_type, a.dtmf_payload_type),
        (Codec::Pcma, 8, Some(101))
    );
    let m = &a.sdp.media[0];
    assert_eq!(m.formats, ["8", "101"]);
    assert_eq!(m.fmtp(101), Some("0-15"));
}

#[test]
fn baresip_offer_prefers_our_pcma_over_their_order() {
    let sdp = parse(BARESIP);
    let m = &sdp.media[0];
    assert_eq!(m.rtpmap(96), Some(("opus", 48000)));
    assert_eq!(m.codec_of(96), None);
    assert!(m.rtcp_mux());
    assert_eq!(m.ptime(), Some(20));
    assert!(sdp
        .attributes
        .contains(&Attribute::Other("tool:baresip 3.10.1".into())));
    assert!(m.extra.contains(&('b', "AS:64".into())));

    let a = answer(&sdp, &local()).expect("answer");
    assert_eq!(
        (a.codec, a.payload_type, a.dtmf_payload_type),
        (Codec::Pcma, 8, Some(101))
    );
    assert_eq!(a.remote, "192.168.1.23:10368".parse().expect("sa"));
    assert!(a.rtcp_mux);
    let body = a.sdp.render();
    assert!(body.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{body}");
    assert!(body.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"));
    assert!(body.contains("a=sendrecv\r\n") && body.contains("a=rtcp-mux\r\n"));
    assert!(!body.contains("opus"));

    // Our preference decides, not theirs.
    let mut pcmu_first = local();
    pcmu_first.codecs = vec![Codec::Pcmu, Codec::Pcma];
    let a = answer(&sdp, &pcmu_first).expect("answer");
    assert_eq!((a.codec, a.payload_type), (Codec::Pcmu, 0));

    // No DTMF on our side: no telephone-event in the answer.
    let mut no_dtmf = local();
    no_dtmf.dtmf = false;
    let a = answer(&sdp, &no_dtmf).expect("answer");
    assert_eq!(a.dtmf_payload_type, None);
    assert!(!a.sdp.render().contains("telephone-event"));
}

#[test]
fn dynamic_payload_number_for_pcma_is_kept() {
    let s = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 100 98\na=rtpmap:100 pcma/8000\na=rtpmap:98 TELEPHONE-EVENT/8000\n";
    let a = answer(&parse(s), &local()).expect("answer");
    assert_eq!(
        (a.codec, a.payload_type, a.dtmf_payload_type),
        (Codec::Pcma, 100, Some(98))
    );
    // A static number remapped by rtpmap is not that static codec.
    let s = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 8\na=rtpmap:8 G722/8000\n";
    assert_eq!(answer(&parse(s), &local()), Err(SdpError::NoCommonCodec));
}

#[test]
fn g729_only_is_no_common_codec() {
    assert_eq!(
        answer(&parse(G729_ONLY), &local()),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn no_audio_stream_is_refused() {
    let s = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=video 4000 RTP/AVP 96\na=rtpmap:96 H264/90000\n";
    assert_eq!(answer(&parse(s), &local()), Err(SdpError::NoAudioStream));
    let s =
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/SAVP 8\n";
    assert_eq!(answer(&parse(s), &local()), Err(SdpError::NoAudioStream));
    let s = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 0 RTP/AVP 8\n";
    assert_eq!(answer(&parse(s), &local()), Err(SdpError::NoAudioStream));
}

#[test]
fn video_is_rejected_with_port_zero() {
    let sdp = parse(VIDEO_AUDIO);
    let a = answer(&sdp, &local()).expect("answer");
    assert_eq!(a.media_index, 1);
    assert_eq!(a.sdp.media.len(), 2);
    let v = &a.sdp.media[0];
    assert_eq!(
        (v.media.as_str(), v.port, v.formats.clone()),
        ("video", 0, vec!["96".into(), "97".into()])
    );
    assert_eq!(a.sdp.media[1].port, 20000);
    assert_eq!(
        (a.codec, a.payload_type, a.dtmf_payload_type),
        (Codec::Pcma, 8, Some(97))
    );
    assert_eq!(
        sdp.media[1].attributes.last(),
        Some(&Attribute::Rtcp {
            port: 49171,
            addr: None
        })
    );
    let body = a.sdp.render();
    assert!(body.contains("m=video 0 RTP/AVP 96 97\r\n"), "{body}");
    // The answer itself parses.
    assert_eq!(parse(&body), a.sdp);
}

#[test]
fn second_audio_stream_is_rejected() {
    let s = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 18\nm=audio 4002 RTP/AVP 8\nm=audio 4004 RTP/AVP 0\n";
    let a = answer(&parse(s), &local()).expect("answer");
    assert_eq!(a.media_index, 1);
    let ports: Vec<u16> = a.sdp.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, 20000, 0]);
    assert_eq!(a.remote.port(), 4002);
}

#[test]
fn hold_and_resume_reoffers() {
    let initial = answer(&parse(SIPP_UAC_PCAP), &local()).expect("answer");
    assert!(!initial.hold);

    let hold = answer(&parse(HOLD_SENDONLY), &local()).expect("answer");
    assert!(hold.hold);
    assert_eq!(hold.direction, Direction::RecvOnly);
    assert!(!hold.direction.sends());
    assert!(hold.sdp.render().contains("a=recvonly\r\n"));

    let c0 = answer(&parse(HOLD_C0), &local()).expect("answer");
    assert!(c0.hold);
    assert_eq!(c0.remote.ip(), IpAddr::V4(Ipv4Addr::UNSPECIFIED));

    let inactive = HOLD_SENDONLY.replace("a=sendonly", "a=inactive");
    let a = answer(&parse(&inactive), &local()).expect("answer");
    assert!(a.hold);
    assert_eq!(a.direction, Direction::Inactive);

    let recvonly = HOLD_SENDONLY.replace("a=sendonly", "a=recvonly");
    let a = answer(&parse(&recvonly), &local()).expect("answer");
    assert!(!a.hold);
    assert_eq!(a.direction, Direction::SendOnly);

    let resume = answer(&parse(RESUME), &local()).expect("answer");
    assert!(!resume.hold);
    assert_eq!(resume.direction, Direction::SendRecv);
    assert_eq!(resume.remote, "198.51.100.9:6004".parse().expect("sa"));
    assert!(parse(RESUME).origin.session_version > parse(HOLD_SENDONLY).origin.session_version);
}

#[test]
fn session_level_direction_applies_unless_media_overrides() {
    let s = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\na=sendonly\nm=audio 4000 RTP/AVP 8\n";
    let a = answer(&parse(s), &local()).expect("answer");
    assert!(a.hold);
    assert_eq!(a.direction, Direction::RecvOnly);
    let s = s.replace("RTP/AVP 8\n", "RTP/AVP 8\na=sendrecv\n");
    let a = answer(&parse(&s), &local()).expect("answer");
    assert!(!a.hold);
}

#[test]
fn ipv6_connection_at_media_level() {
    let sdp = parse(IPV6);
    assert_eq!(sdp.connection, None);
    assert_eq!(sdp.direction(), Some(Direction::Inactive));
    let a = answer(&sdp, &local()).expect("answer");
    assert_eq!(a.remote, "[2001:db8::abcd]:40000".parse().expect("sa"));
    assert_eq!(a.direction, Direction::Inactive);
    assert!(a.hold);

    let v6 = LocalMedia::new("2001:db8::1".parse().expect("ip"), 30000, 7);
    let body = answer(&sdp, &v6).expect("answer").sdp.render();
    assert!(
        body.contains("o=rexian 7 7 IN IP6 2001:db8::1\r\n"),
        "{body}"
    );
    assert!(body.contains("c=IN IP6 2001:db8::1\r\n"));
}

#[test]
fn lf_and_crlf_parse_the_same() {
    for v in ALL {
        let lf = v.replace("\r\n", "\n");
        assert!(!lf.contains('\r'));
        assert_eq!(parse(&lf), parse(&crlf(v)));
    }
}

#[test]
fn render_uses_crlf_and_round_trips() {
    for v in ALL {
        let sdp = parse(v);
        let out = sdp.render();
        assert!(out.ends_with("\r\n"));
        assert!(!out.replace("\r\n", "").contains('\n'), "{out}");
        assert_eq!(parse(&out), sdp);
        assert_eq!(parse(&out).render(), out);
    }
    // The vectors are already in canonical order: rendering gives them back byte for byte.
    for v in [
        SIPP_UAC,
        SIPP_UAC_PCAP,
        BARESIP,
        G729_ONLY,
        VIDEO_AUDIO,
        RESUME,
    ] {
        assert_eq!(parse(v).render(), crlf(v));
    }
}

#[test]
fn our_offer() {
    let o = offer(&local());
    let body = o.render();
    assert_eq!(
        body,
        "v=0\r\no=rexian 4242 4242 IN IP4 192.0.2.1\r\ns=rexian\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
         m=audio 20000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    assert_eq!(parse(&body), o);
    // Answering our own offer picks PCMA and telephone-event 101.
    let a = answer(
        &o,
        &LocalMedia::new("192.0.2.2".parse().expect("ip"), 30000, 1),
    )
    .expect("answer");
    assert_eq!(
        (a.codec, a.payload_type, a.dtmf_payload_type),
        (Codec::Pcma, 8, Some(101))
    );
}

#[test]
fn missing_required_lines_are_named() {
    assert_eq!(SessionDescription::parse(""), Err(SdpError::Empty));
    assert_eq!(SessionDescription::parse("\r\n\r\n"), Err(SdpError::Empty));
    let no_v = SIPP_UAC.replacen("v=0\n", "", 1);
    assert!(matches!(
        SessionDescription::parse(&no_v),
        Err(SdpError::MissingVersion { line: 1, .. })
    ));
    let no_o = SIPP_UAC
        .lines()
        .filter(|l| !l.starts_with("o="))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        SessionDescription::parse(&no_o),
        Err(SdpError::MissingOrigin)
    );
    let no_m = SIPP_UAC
        .lines()
        .filter(|l| !l.starts_with("m="))
        .collect::<Vec<_>>()
        .join("\n");
    // Without m=, the a=rtpmap is session-level; still no media.
    assert_eq!(
        SessionDescription::parse(&no_m),
        Err(SdpError::MissingMedia)
    );
    let no_c = SIPP_UAC
        .lines()
        .filter(|l| !l.starts_with("c="))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        SessionDescription::parse(&no_c),
        Err(SdpError::MissingConnection { line: 5 })
    );
    let v1 = SIPP_UAC.replacen("v=0", "v=1", 1);
    let e = SessionDescription::parse(&v1).expect_err("v=1");
    assert!(e.to_string().contains("line 1"), "{e}");
    let bad_port = SIPP_UAC.replace("6004", "70000");
    let e = SessionDescription::parse(&bad_port).expect_err("port");
    assert!(matches!(e, SdpError::Malformed { line: 6, .. }), "{e:?}");
    assert!(e.to_string().contains("m=audio 70000"), "{e}");
    let bad_c = SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 example.com");
    assert!(matches!(
        SessionDescription::parse(&bad_c),
        Err(SdpError::Malformed { line: 4, .. })
    ));
    let too_big = "a".repeat(MAX_SDP_LEN + 1);
    assert_eq!(
        SessionDescription::parse(&too_big),
        Err(SdpError::TooLarge(MAX_SDP_LEN + 1))
    );
}

#[test]
fn tolerant_of_missing_s_and_t_and_unknown_lines() {
    let s = "v=0\no=- 1 1 IN IP4 10.0.0.1\nc=IN IP4 10.0.0.1\ny=whatever\nm=audio 4000 RTP/AVP 8\na=foo\na=bar:baz\n\n";
    let sdp = parse(s);
    assert_eq!(sdp.session_name, "-");
    assert_eq!(sdp.timing, [(0, 0)]);
    assert_eq!(sdp.extra, [('y', "whatever".to_owned())]);
    assert_eq!(
        sdp.media[0].attributes,
        [
            Attribute::Other("foo".into()),
            Attribute::Other("bar:baz".into())
        ]
    );
    assert_eq!(parse(&sdp.render()), sdp);
}

#[test]
fn every_truncation_is_an_error_or_a_valid_prefix_never_a_panic() {
    for v in ALL
        .iter()
        .map(|v| crlf(v))
        .chain(ALL.iter().map(|v| v.to_string()))
    {
        for cut in 0..v.len() {
            let Some(prefix) = v.get(..cut) else { continue };
            match SessionDescription::parse(prefix) {
                // A prefix that ends after a complete m= line is itself a valid SDP.
                Ok(sdp) => {
                    assert!(prefix.contains("\nm="), "{prefix:?}");
                    assert_eq!(parse(&sdp.render()), sdp);
                    let _ = answer(&sdp, &local());
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
    // Truncations that stop before the first m= line are errors, every one.
    for v in ALL {
        let m = v.find("\nm=").expect("has m=");
        for cut in 0..=m + 2 {
            assert!(
                SessionDescription::parse(&v[..cut]).is_err(),
                "{:?}",
                &v[..cut]
            );
        }
    }
}

const INTERESTING: &[&str] = &[
    "\r",
    "\n",
    "\r\n",
    "=",
    ":",
    "/",
    " ",
    "\t",
    "0",
    "65536",
    "-1",
    "999999999999999999999",
    "m=audio 0 RTP/AVP",
    "c=IN IP6 ::",
    "c=IN IP4 0.0.0.0",
    "a=rtpmap:",
    "a=fmtp:",
    "a=rtcp:",
    "a=sendonly",
    "a=inactive",
    "a=rtcp-mux",
    "v=0",
    "o=",
    "é",
    "\u{0}",
    "\u{2003}",
    "t=",
];

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut b = input.as_bytes().to_vec();
    for _ in 0..=rng.index(4) {
        let at = rng.index(b.len() + 1);
        match rng.index(7) {
            0 if at < b.len() => b[at] = rng.next() as u8,
            1 if at < b.len() => {
                b.remove(at);
            }
            2 => b.insert(at, rng.next() as u8),
            3 => {
                let s = INTERESTING[rng.index(INTERESTING.len())];
                b.splice(at..at, s.bytes());
            }
            4 => {
                let end = (at + rng.index(40)).min(b.len());
                b.drain(at..end);
            }
            5 => {
                // Duplicate a random slice elsewhere (lines, fields).
                let start = rng.index(b.len());
                let end = (start + rng.index(60)).min(b.len());
                let chunk: Vec<u8> = b[start..end].to_vec();
                let to = rng.index(b.len() + 1);
                b.splice(to..to, chunk);
            }
            _ => {
                // Swap two lines.
                let s = String::from_utf8_lossy(&b).into_owned();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let (i, j) = (rng.index(lines.len()), rng.index(lines.len()));
                lines.swap(i, j);
                b = lines.join("\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn random_mutations_never_panic_and_round_trip() {
    let mut rng = Rng(0x0005_EED1_2365_u64);
    let mut ok = 0;
    let mut answered = 0;
    for i in 0..10_000 {
        let base = ALL[i % ALL.len()];
        let base = if i % 2 == 0 {
            crlf(base)
        } else {
            base.to_string()
        };
        let input = mutate(&mut rng, &base);
        let Ok(sdp) = SessionDescription::parse(&input) else {
            continue;
        };
        ok += 1;
        let out = sdp.render();
        assert_eq!(
            SessionDescription::parse(&out).as_ref(),
            Ok(&sdp),
            "input {input:?}\nrendered {out:?}"
        );
        if let Ok(a) = answer(&sdp, &local()) {
            answered += 1;
            let body = a.sdp.render();
            assert_eq!(
                SessionDescription::parse(&body).as_ref(),
                Ok(&a.sdp),
                "answer {body:?}"
            );
        }
    }
    // The mutations are small: a good share still parse, so render and answer get exercised.
    eprintln!("mutations: {ok} parsed, {answered} answered");
    assert!(ok > 1_000 && answered > 500, "ok {ok}, answered {answered}");
}

#[test]
fn an_rtcp_attribute_says_where_the_peer_takes_rtcp() {
    // baresip with `rtcp_mux no` binds RTCP on its own port and says so (RFC 3605).
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio 10368 RTP/AVP 8\r\na=rtcp:10371\r\na=sendrecv\r\n";
    let a = answer(&parse(offer), &local()).expect("answer");
    assert_eq!(a.rtcp, Some("127.0.0.1:10371".parse().expect("sa")));
    assert!(!a.rtcp_mux);
    let with_addr = offer.replace("a=rtcp:10371", "a=rtcp:10371 IN IP4 192.0.2.7");
    let a = answer(&parse(&with_addr), &local()).expect("answer");
    assert_eq!(a.rtcp, Some("192.0.2.7:10371".parse().expect("sa")));
    let a = answer(&parse(BARESIP), &local()).expect("answer");
    assert_eq!(a.rtcp, None, "no a=rtcp: the default (here mux)");
}
