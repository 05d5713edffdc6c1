use super::*;

const EPOCH_NTP: u64 = 0xEB00_0000_0000_0000;

fn session(now: Instant, ssrc: u32, seed: u64) -> RtcpSession {
    RtcpSession::new(now, EPOCH_NTP, ssrc, 8000, seed)
}

/// The report the session writes at `now` (which must be due), parsed.
fn report(s: &mut RtcpSession, now: Instant) -> Vec<RtcpPacket> {
    let mut out = Vec::new();
    assert!(s.poll_transmit(now, &mut out), "a report is due");
    parse_compound(&out).expect("our own report parses")
}

fn block(packets: &[RtcpPacket]) -> ReportBlock {
    match &packets[0] {
        RtcpPacket::SenderReport { reports, .. } | RtcpPacket::ReceiverReport { reports, .. } => reports[0],
        other => panic!("not a report: {other:?}"),
    }
}

#[test]
fn reports_come_every_five_seconds_randomised_and_never_in_step() {
    let t0 = Instant::now();
    for seed in 1..200u64 {
        let mut s = session(t0, 1, seed);
        let first = s.poll_timeout() - t0;
        assert!((1250..3750).contains(&first.as_millis()), "first after {first:?}");
        assert!(!s.poll_transmit(t0, &mut Vec::new()), "nothing before it is due");
        let mut at = s.poll_timeout();
        for _ in 0..5 {
            let mut out = Vec::new();
            assert!(s.poll_transmit(at, &mut out));
            let gap = s.poll_timeout() - at;
            assert!((2500..7500).contains(&gap.as_millis()), "interval {gap:?}");
            at = s.poll_timeout();
        }
    }
    let (a, b) = (session(t0, 1, 1), session(t0, 1, 2));
    assert_ne!(a.poll_timeout(), b.poll_timeout(), "different seeds, different times");
}

#[test]
fn an_rr_while_silent_an_sr_after_sending_always_with_the_cname() {
    let t0 = Instant::now();
    let mut s = session(t0, 0xABCD, 7);
    let at = s.poll_timeout();
    let packets = report(&mut s, at);
    assert_eq!(packets[0], RtcpPacket::ReceiverReport { ssrc: 0xABCD, reports: vec![] });
    assert_eq!(packets[1], RtcpPacket::SourceDescription(vec![(0xABCD, "switchd-0000abcd".into())]));
    for i in 0..50u32 {
        s.on_sent(at + Duration::from_millis(20 * u64::from(i)), 1000 + 160 * i, 160);
    }
    // The last packet (timestamp 1000 + 160·49) went 980 ms after the first report.
    let last = at + Duration::from_millis(980);
    let at = s.poll_timeout();
    let packets = report(&mut s, at);
    let RtcpPacket::SenderReport { ssrc, info, .. } = &packets[0] else { panic!("SR expected: {packets:?}") };
    assert_eq!((*ssrc, info.packets, info.octets), (0xABCD, 50, 8000));
    // The SR's RTP time is extrapolated from it to the report's instant.
    let expect = 1000 + 160 * 49 + ((at - last).as_micros() * 8 / 1000) as u32;
    assert_eq!(info.rtp_timestamp, expect);
    assert_eq!(info.ntp, s.ntp(at));
    // Nothing sent since: back to an RR.
    let at = s.poll_timeout();
    assert!(matches!(report(&mut s, at)[0], RtcpPacket::ReceiverReport { .. }));
}

#[test]
fn loss_fraction_cumulative_and_extended_sequence_follow_appendix_a() {
    let t0 = Instant::now();
    let mut s = session(t0, 1, 3);
    // 100 packets across a sequence wrap, every tenth lost.
    let first = 65500u16;
    for i in 0..100u16 {
        if i % 10 != 5 {
            let at = t0 + Duration::from_millis(20 * u64::from(i));
            s.handle_rtp(at, 99, first.wrapping_add(i), 160 * u32::from(i), true);
        }
    }
    let at = s.poll_timeout().max(t0 + Duration::from_secs(2));
    let b = block(&report(&mut s, at));
    assert_eq!(b.ssrc, 99);
    assert_eq!(b.highest_seq, 0x1_0000 + u32::from(first.wrapping_add(99)));
    assert_eq!(b.cumulative_lost, 10);
    assert_eq!(b.fraction_lost, (10 * 256 / 100) as u8);
    // The next interval: 50 more, none lost.
    for i in 100..150u16 {
        s.handle_rtp(at + Duration::from_millis(20 * u64::from(i - 99)), 99, first.wrapping_add(i), 160 * u32::from(i), true);
    }
    let at = s.poll_timeout();
    let b = block(&report(&mut s, at));
    assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 10));
    let q = s.quality();
    assert_eq!((q.packets_received, q.packets_lost), (140, 10));
}

#[test]
fn a_far_jump_is_believed_only_when_the_next_packet_follows_it() {
    let t0 = Instant::now();
    let mut s = session(t0, 1, 4);
    for seq in 0..10u16 {
        s.handle_rtp(t0, 5, seq, 0, true);
    }
    s.handle_rtp(t0, 5, 30_000, 0, true);
    assert_eq!(s.quality().packets_received, 10, "one stray far packet is dropped");
    s.handle_rtp(t0, 5, 30_001, 0, true);
    s.handle_rtp(t0, 5, 30_002, 0, true);
    let q = s.quality();
    assert_eq!((q.packets_received, q.packets_lost), (2, 0), "the restarted stream is counted afresh");
}

#[test]
fn jitter_is_zero_for_a_steady_stream_and_tracks_variation() {
    let t0 = Instant::now();
    let mut s = session(t0, 1, 5);
    for i in 0..100u32 {
        s.handle_rtp(t0 + Duration::from_millis(20 * u64::from(i)), 7, i as u16, 160 * i, true);
    }
    assert_eq!(s.quality().jitter_max_ms, 0.0);
    // Every other packet 10 ms late: |D| = 80 timestamp units each time; J converges to 80.
    let mut s = session(t0, 1, 5);
    for i in 0..400u32 {
        let late = if i % 2 == 1 { 10 } else { 0 };
        s.handle_rtp(t0 + Duration::from_millis(20 * u64::from(i) + late), 7, i as u16, 160 * i, true);
    }
    let at = s.poll_timeout().max(t0 + Duration::from_secs(9));
    let b = block(&report(&mut s, at));
    assert!((75..=80).contains(&b.jitter), "jitter {}", b.jitter);
    let ms = s.quality().jitter_max_ms;
    assert!((9.3..=10.0).contains(&ms), "max jitter {ms} ms");
    // RFC 4733 event packets keep one timestamp for a whole digit: no jitter from them.
    let mut s = session(t0, 1, 5);
    for i in 0..20u32 {
        s.handle_rtp(t0 + Duration::from_millis(20 * u64::from(i)), 7, i as u16, 0, false);
    }
    assert_eq!(s.quality().jitter_max_ms, 0.0);
    assert_eq!(s.quality().packets_received, 20);
}

#[test]
fn round_trip_time_comes_from_the_peers_lsr_and_dlsr() {
    let t0 = Instant::now();
    let mut ours = session(t0, 0x1111, 6);
    // The peer's wall clock is an hour off: only its own NTP times come back to it, so RTT
    // does not depend on the clocks agreeing.
    let mut peer = RtcpSession::new(t0, EPOCH_NTP + (3600 << 32), 0x2222, 8000, 9);
    for i in 0..100u32 {
        let at = t0 + Duration::from_millis(20 * u64::from(i));
        ours.on_sent(at, 160 * i, 160);
        peer.handle_rtp(at + Duration::from_millis(40), 0x1111, i as u16, 160 * i, true);
    }
    // Our SR takes 40 ms to the peer, which holds it 1.5 s; its RR takes 40 ms back.
    let sent = ours.poll_timeout().max(t0 + Duration::from_secs(2));
    let mut sr = Vec::new();
    assert!(ours.poll_transmit(sent, &mut sr));
    peer.handle_rtcp(sent + Duration::from_millis(40), &sr).expect("valid");
    let replied = sent + Duration::from_millis(1540);
    let mut rr = Vec::new();
    peer.write_report(replied, &mut rr);
    let b = block(&parse_compound(&rr).expect("valid"));
    assert_eq!(b.lsr, (ours.ntp(sent) >> 16) as u32);
    assert_eq!(b.dlsr, 65536 * 3 / 2);
    assert_eq!(ours.quality().rtt_mean_ms, None);
    ours.handle_rtcp(replied + Duration::from_millis(40), &rr).expect("valid");
    let q = ours.quality();
    let rtt = q.rtt_mean_ms.expect("an RTT");
    assert!((79.0..81.0).contains(&rtt), "RTT {rtt} ms");
    assert_eq!(q.rtcp_received, 1);
    // A block about someone else's stream, or with no LSR, gives no RTT.
    let mut other = Vec::new();
    write_report(0x2222, None, &[ReportBlock { ssrc: 0x9999, lsr: 5, ..ReportBlock::default() }, ReportBlock { ssrc: 0x1111, ..ReportBlock::default() }], &mut other);
    ours.handle_rtcp(replied, &other).expect("valid");
    assert_eq!(ours.quality().rtt_mean_ms, Some(rtt));
    assert_eq!(ours.quality().rtcp_received, 2);
}

#[test]
fn a_bye_ends_a_compound_and_garbage_is_an_error() {
    let t0 = Instant::now();
    let mut s = session(t0, 42, 8);
    let mut out = Vec::new();
    s.write_bye(t0, &mut out);
    let packets = parse_compound(&out).expect("valid");
    assert_eq!(packets.len(), 3);
    assert_eq!(packets[2], RtcpPacket::Bye { sources: vec![42], reason: None });
    assert!(s.handle_rtcp(t0, &[0x80, 201, 0, 9]).is_err());
    assert_eq!(s.quality().rtcp_received, 0, "only valid datagrams count");
}

#[test]
fn ntp_of_unix_counts_from_1900() {
    assert_eq!(ntp_of_unix(Duration::ZERO), NTP_UNIX_OFFSET << 32);
    assert_eq!(ntp_of_unix(Duration::from_millis(1500)), (NTP_UNIX_OFFSET + 1) << 32 | 1 << 31);
}
