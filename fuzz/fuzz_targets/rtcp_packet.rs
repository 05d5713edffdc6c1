//! switchd's RTCP receive path: `switchd::media::rtcp::parse_compound` on arbitrary bytes (a
//! datagram on a leg's RTCP port, or an RTCP-looking one on a muxed RTP port), then the same
//! bytes into an `RtcpSession` that has received some RTP and sent an SR.
//!
//! * Neither panics, and errors format.
//! * A parsed SR or RR writes again with `write_report` and parses to the same packet (report
//!   blocks, sender info, the sign of a 24-bit cumulative loss).
//! * The session counts a datagram exactly when it parses, keeps writing compound reports that
//!   parse, and its quality figures stay finite (an RTT, when any, is below 2^15 s).
//!
//! Set `REXIAN_FUZZ_DEBUG=1` to print the parsed packets (useful for checking seeds).

#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use switchd::media::rtcp::session::RtcpSession;
use switchd::media::rtcp::{parse_compound, write_report, RtcpPacket};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_compound(data);
    if std::env::var_os("REXIAN_FUZZ_DEBUG").is_some() {
        eprintln!("rtcp_packet: {parsed:?}");
    }
    match &parsed {
        Ok(packets) => {
            for p in packets {
                let (ssrc, info, reports) = match p {
                    RtcpPacket::SenderReport { ssrc, info, reports } => (*ssrc, Some(info), reports),
                    RtcpPacket::ReceiverReport { ssrc, reports } => (*ssrc, None, reports),
                    _ => continue,
                };
                let mut out = Vec::new();
                write_report(ssrc, info, reports, &mut out);
                let again = parse_compound(&out).expect("a written report parses");
                assert_eq!(again.as_slice(), std::slice::from_ref(p), "report round trip");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }

    let t0 = Instant::now();
    let mut session = RtcpSession::new(t0, 0xEB00_0000_0000_0000, 0x1234_5678, 8000, 1);
    for i in 0..10u16 {
        let at = t0 + Duration::from_millis(20 * u64::from(i));
        session.on_sent(at, u32::from(i) * 160, 160);
        session.handle_rtp(at, 0x0BAD_CAFE, i, u32::from(i) * 160, true);
    }
    let mut out = Vec::new();
    let due = session.poll_timeout();
    assert!(session.poll_transmit(due, &mut out));
    let later = due + Duration::from_millis(30);
    let handled = session.handle_rtcp(later, data);
    assert_eq!(handled.is_ok(), parsed.is_ok());
    let q = session.quality();
    assert_eq!(q.rtcp_received, u64::from(parsed.is_ok()));
    assert!(q.jitter_max_ms.is_finite());
    assert!(q.rtt_mean_ms.is_none_or(|ms| ms.is_finite() && (0.0..32_768_000.0).contains(&ms)));
    out.clear();
    session.write_bye(later + Duration::from_secs(1), &mut out);
    assert!(parse_compound(&out).is_ok_and(|p| matches!(p.last(), Some(RtcpPacket::Bye { .. }))));
});
