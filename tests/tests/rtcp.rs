//! RTCP (RFC 3550) on switchd's RTP legs against real peers: baresip calls the echo number
//! and exchanges reports with switchd (its RTCP on RTP port + 1, `rtcp_mux no`), and a plain
//! UDP phone written here places a call by hand, sends RTP, reads switchd's compound reports
//! on its own RTP port + 1 and answers them, so the round-trip time in the CDR is its own doing;
//! offering `a=rtcp-mux`, it gets them on its RTP port instead (RFC 5761).
//!
//! baresip must be installed (`scripts/deps` does it); without it these tests fail, never skip.

use rexian_tests::Daemon;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use switchd::media::rtcp::{parse_compound, write_report, ReportBlock, RtcpPacket};

#[test]
fn a_baresip_caller_and_switchd_exchange_reports_and_the_cdr_shows_them() {
    let daemon = Daemon::start_demo();
    let scratch = tempfile::tempdir().expect("tmp");
    let source = scratch.path().join("tone440.wav");
    rexian_tests::tone_wav(&source, 440.0, 14);
    let dir = rexian_tests::baresip_call(&format!("sip:9196@{}", daemon.sip_addr), &source, 12);
    let log = std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default();
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["route"], "echo", "{cdr:#}");
    let q = &cdr["quality"];
    // baresip reports every few seconds: a call of ~12 s brings two or more.
    assert!(q["rtcp_received"].as_u64().is_some_and(|n| n >= 1), "no RTCP from baresip: {cdr:#}\n{log}");
    // Its reports answer our SRs (LSR/DLSR): the round trip on loopback is well under 100 ms.
    let rtt = q["rtt_mean_ms"].as_f64().unwrap_or_else(|| panic!("no RTT: {cdr:#}\n{log}"));
    assert!((0.0..100.0).contains(&rtt), "RTT {rtt} ms: {cdr:#}");
    let received = q["packets_received"].as_u64().expect("received");
    assert!(received > 300, "{received} packets in ~12 s: {cdr:#}");
    let lost = q["packets_lost"].as_i64().expect("lost");
    assert!(lost.abs() < 10, "{lost} lost on loopback: {cdr:#}");
    assert!(q["jitter_max_ms"].as_f64().is_some_and(|j| (0.0..200.0).contains(&j)), "{cdr:#}");
}

/// Two sockets on an even port and the one above it: our RTP and RTCP.
fn rtp_pair() -> (UdpSocket, UdpSocket) {
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = rtp.local_addr().expect("addr").port();
        if port % 2 != 0 {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (rtp, rtcp);
        }
    }
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

#[test]
fn switchd_sends_sender_reports_to_rtp_port_plus_one_and_a_bye_at_the_end() {
    udp_phone_call(false);
}

#[test]
fn with_rtcp_mux_offered_switchd_reports_on_the_rtp_port() {
    udp_phone_call(true);
}

/// A call to the echo from a phone made of UDP sockets: 6 s of RTP, switchd's reports read
/// (on RTP port + 1, or the RTP port itself when `mux` offers `a=rtcp-mux`) and answered with
/// an RR at once, then our BYE and switchd's RTCP BYE; the CDR and metrics checked.
fn udp_phone_call(mux: bool) {
    let daemon = Daemon::start_demo();
    let sip = UdpSocket::bind("127.0.0.1:0").expect("bind SIP");
    let local = sip.local_addr().expect("addr");
    let (rtp, rtcp) = rtp_pair();
    let rtp_port = rtp.local_addr().expect("addr").port();
    let to = daemon.sip_addr;
    let sdp = format!(
        "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n{}",
        if mux { "a=rtcp-mux\r\n" } else { "" }
    );
    let common = |method: &str, branch: &str, cseq: u32, to_header: &str| {
        format!(
            "{method} sip:9196@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             From: <sip:13800138000@{local}>;tag=rtcptest\r\nTo: {to_header}\r\nCall-ID: rtcp@rexian-tests\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:13800138000@{local}>\r\n"
        )
    };
    let invite = format!(
        "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        common("INVITE", "inv1", 1, &format!("<sip:9196@{to}>")),
        sdp.len()
    );
    sip.send_to(invite.as_bytes(), to).expect("send INVITE");
    sip.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut buf = [0u8; 65_536];
    let ok = loop {
        let n = sip.recv(&mut buf).expect("an answer to the INVITE");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.starts_with("SIP/2.0 200") {
            break msg;
        }
        assert!(msg.starts_with("SIP/2.0 1"), "{msg}");
    };
    assert_eq!(ok.contains("a=rtcp-mux"), mux, "the answer agrees to mux exactly when offered: {ok}");
    let to_header = header(&ok, "To").to_owned();
    let ack = format!("{}Content-Length: 0\r\n\r\n", common("ACK", "ack1", 1, &to_header));
    sip.send_to(ack.as_bytes(), to).expect("send ACK");
    let media_port: u16 = ok
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio in {ok}"));
    let switchd_rtp = SocketAddr::from(([127, 0, 0, 1], media_port));
    let switchd_rtcp = if mux { switchd_rtp } else { SocketAddr::from(([127, 0, 0, 1], media_port + 1)) };
    let our_rtcp = if mux { &rtp } else { &rtcp };
    let is_rtcp = |d: &[u8]| d.len() >= 2 && (200..=204).contains(&d[1]);

    // 6 s of A-law silence every 20 ms; switchd's first report comes within 3.75 s.
    let our_ssrc = 0x5EED_0001u32;
    rtp.set_nonblocking(true).expect("nonblocking");
    rtcp.set_nonblocking(true).expect("nonblocking");
    let mut reports: Vec<Vec<RtcpPacket>> = Vec::new();
    let mut echoed_ssrc = None;
    let start = Instant::now();
    let mut sent = 0u16;
    while start.elapsed() < Duration::from_secs(6) {
        let mut packet = vec![0x80, 8];
        packet.extend_from_slice(&sent.to_be_bytes());
        packet.extend_from_slice(&(u32::from(sent) * 160).to_be_bytes());
        packet.extend_from_slice(&our_ssrc.to_be_bytes());
        packet.extend(std::iter::repeat_n(0xD5u8, 160));
        rtp.send_to(&packet, switchd_rtp).expect("send RTP");
        sent += 1;
        std::thread::sleep(Duration::from_millis(20));
        for socket in [&rtp, &rtcp] {
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                if !is_rtcp(&buf[..n]) {
                    assert!(std::ptr::eq(socket, &rtp), "RTP only on the RTP port");
                    echoed_ssrc = Some(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
                    continue;
                }
                assert!(std::ptr::eq(socket, our_rtcp), "RTCP on our RTCP port (mux {mux})");
                assert_eq!(from, switchd_rtcp, "RTCP comes from switchd's RTCP port (mux {mux})");
                let packets = parse_compound(&buf[..n]).expect("switchd's RTCP parses");
                // Answer an SR at once, so the DLSR is ~0 and the RTT is the loopback's.
                if let RtcpPacket::SenderReport { ssrc, info, .. } = &packets[0] {
                    let block = ReportBlock { ssrc: *ssrc, lsr: (info.ntp >> 16) as u32, dlsr: 0, ..ReportBlock::default() };
                    let mut rr = Vec::new();
                    write_report(our_ssrc, None, &[block], &mut rr);
                    our_rtcp.send_to(&rr, switchd_rtcp).expect("send RR");
                }
                reports.push(packets);
            }
        }
    }
    let switchd_ssrc = echoed_ssrc.expect("the echo sent our audio back");
    let first = reports.first().unwrap_or_else(|| panic!("no RTCP from switchd in 6 s; its log:\n{}", daemon.log()));
    let RtcpPacket::SenderReport { ssrc, info, reports: blocks } = &first[0] else {
        panic!("the echo sends, so its report is an SR: {first:?}")
    };
    assert_eq!(*ssrc, switchd_ssrc, "the SR is about the RTP stream switchd sends");
    assert!(info.packets > 0 && info.octets >= 160 * info.packets, "{info:?}");
    let block = blocks.first().expect("a report block on our stream");
    assert_eq!(block.ssrc, our_ssrc);
    assert!(block.highest_seq > 0 && block.highest_seq < u32::from(sent), "{block:?}");
    assert_eq!((block.cumulative_lost, block.fraction_lost), (0, 0), "nothing lost on loopback");
    let cname = first.iter().find_map(|p| match p {
        RtcpPacket::SourceDescription(items) => items.first().cloned(),
        _ => None,
    });
    assert!(cname.is_some_and(|(s, name)| s == switchd_ssrc && !name.is_empty()), "an SDES CNAME follows: {first:?}");

    // We hang up: switchd's leg ends with an RTCP BYE.
    let bye = format!("{}Content-Length: 0\r\n\r\n", common("BYE", "bye1", 2, &to_header));
    sip.send_to(bye.as_bytes(), to).expect("send BYE");
    our_rtcp.set_nonblocking(false).expect("blocking");
    our_rtcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let got_bye = loop {
        let Ok(n) = our_rtcp.recv(&mut buf) else { break false };
        if !is_rtcp(&buf[..n]) {
            continue; // the echo's last packets, with mux
        }
        let packets = parse_compound(&buf[..n]).expect("switchd's RTCP parses");
        if packets.iter().any(|p| matches!(p, RtcpPacket::Bye { sources, .. } if sources == &[switchd_ssrc])) {
            break true;
        }
    };
    assert!(got_bye, "no RTCP BYE after the call; switchd's log:\n{}", daemon.log());

    let cdr = daemon.ended_calls().remove(0);
    let q = &cdr["quality"];
    // The last few may still have been in flight when the BYE ended the leg.
    let received = q["packets_received"].as_u64().expect("received");
    assert!((u64::from(sent) - 3..=u64::from(sent)).contains(&received), "{received} of {sent}: {cdr:#}");
    assert_eq!(q["packets_lost"].as_i64(), Some(0), "{cdr:#}");
    assert!(q["rtcp_received"].as_u64().is_some_and(|n| n >= 1), "{cdr:#}");
    let rtt = q["rtt_mean_ms"].as_f64().unwrap_or_else(|| panic!("our RR gives an RTT: {cdr:#}"));
    assert!((0.0..50.0).contains(&rtt), "RTT {rtt} ms on loopback: {cdr:#}");
    assert!(daemon.metric("rexian_rtcp_packets_in_total") >= 1);
    assert_eq!(daemon.metric("rexian_rtp_packets_lost_total"), 0);
}
