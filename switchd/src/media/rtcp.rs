//! RFC 3550 RTCP packets: a parser for compound packets (SR, RR, SDES, BYE; other types are
//! skipped by their length) and a writer for the compound reports we send.
//!
//! The parser checks every length against the datagram before it reads: any byte string gives
//! packets or an [`RtcpError`], never a panic (fuzz target `rtcp_packet`). [`session`] holds the
//! per-leg state machine that decides what to report and when.

pub mod session;

/// Sender report (RFC 3550 §6.4.1).
pub const PT_SR: u8 = 200;
/// Receiver report (§6.4.2).
pub const PT_RR: u8 = 201;
/// Source description (§6.5).
pub const PT_SDES: u8 = 202;
/// Goodbye (§6.6).
pub const PT_BYE: u8 = 203;
/// SDES item type of the canonical name, the only item we send.
const SDES_CNAME: u8 = 1;
/// A report block is six 32-bit words.
const REPORT_BLOCK_LEN: usize = 24;
/// The 5-bit count field bounds report blocks and BYE sources per packet.
const MAX_COUNT: usize = 31;

/// Why a datagram is not a valid compound RTCP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer bytes than a header or a declared length needs.
    #[error("RTCP packet truncated: {needed} bytes needed, {len} present")]
    Truncated { needed: usize, len: usize },
    /// The version field is not 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// An SR or RR whose count of report blocks does not fit its length.
    #[error("RTCP packet type {packet_type} declares {count} report blocks in {len} bytes")]
    BadCount { packet_type: u8, count: usize, len: usize },
    /// The P bit with a padding count of zero or longer than the packet.
    #[error("RTCP padding of {count} bytes in a packet of {len} bytes")]
    BadPadding { count: usize, len: usize },
    /// A datagram with no packet in it.
    #[error("empty RTCP datagram")]
    Empty,
}

/// One reception report block (§6.4.1): what a receiver saw of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Cumulative lost, a signed 24-bit number on the wire (duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles in the high 16 bits).
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from the source; 0 for none.
    pub lsr: u32,
    /// Delay since that SR in 1/65536 s.
    pub dlsr: u32,
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp, 32.32 fixed point seconds since 1900.
    pub ntp: u64,
    /// The RTP timestamp of the same instant.
    pub rtp_timestamp: u32,
    pub packets: u32,
    pub octets: u32,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport { ssrc: u32, info: SenderInfo, reports: Vec<ReportBlock> },
    ReceiverReport { ssrc: u32, reports: Vec<ReportBlock> },
    /// The CNAME of each chunk that has one (other items are skipped).
    SourceDescription(Vec<(u32, String)>),
    Bye { sources: Vec<u32>, reason: Option<String> },
    /// APP, feedback and anything newer: skipped by its length.
    Other { packet_type: u8 },
}

fn be32(buf: &[u8], at: usize) -> u32 {
    match buf.get(at..at + 4) {
        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

/// Parses a compound datagram into its packets, in order.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    let mut packets = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < 4 {
            return Err(RtcpError::Truncated { needed: at + 4, len: buf.len() });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion(version));
        }
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if rest.len() < len {
            return Err(RtcpError::Truncated { needed: at + len, len: buf.len() });
        }
        let mut packet = &rest[..len];
        if rest[0] & 0x20 != 0 {
            let count = usize::from(packet[len - 1]);
            if count == 0 || count > len - 4 {
                return Err(RtcpError::BadPadding { count, len });
            }
            packet = &packet[..len - count];
        }
        packets.push(parse_one(rest[0] & 0x1F, rest[1], packet)?);
        at += len;
    }
    Ok(packets)
}

/// One packet, `buf` from its header to the end of its body (padding removed).
fn parse_one(count: u8, packet_type: u8, buf: &[u8]) -> Result<RtcpPacket, RtcpError> {
    let count = usize::from(count);
    match packet_type {
        PT_SR | PT_RR => {
            let body = if packet_type == PT_SR { 28 } else { 8 };
            if buf.len() < body + count * REPORT_BLOCK_LEN {
                return Err(RtcpError::BadCount { packet_type, count, len: buf.len() });
            }
            let ssrc = be32(buf, 4);
            let reports = (0..count).map(|i| report_block(&buf[body + i * REPORT_BLOCK_LEN..])).collect();
            if packet_type == PT_RR {
                return Ok(RtcpPacket::ReceiverReport { ssrc, reports });
            }
            let info = SenderInfo {
                ntp: u64::from(be32(buf, 8)) << 32 | u64::from(be32(buf, 12)),
                rtp_timestamp: be32(buf, 16),
                packets: be32(buf, 20),
                octets: be32(buf, 24),
            };
            Ok(RtcpPacket::SenderReport { ssrc, info, reports })
        }
        PT_SDES => Ok(RtcpPacket::SourceDescription(sdes_chunks(count, buf))),
        PT_BYE => {
            let end = 4 + count * 4;
            if buf.len() < end {
                return Err(RtcpError::BadCount { packet_type, count, len: buf.len() });
            }
            let sources = (0..count).map(|i| be32(buf, 4 + i * 4)).collect();
            // The reason is optional; a length running past the packet is ignored, not fatal.
            let reason = buf.get(end).and_then(|&n| buf.get(end + 1..end + 1 + usize::from(n)));
            Ok(RtcpPacket::Bye { sources, reason: reason.map(|r| String::from_utf8_lossy(r).into_owned()) })
        }
        _ => Ok(RtcpPacket::Other { packet_type }),
    }
}

/// A report block; `b` holds at least [`REPORT_BLOCK_LEN`] bytes.
fn report_block(b: &[u8]) -> ReportBlock {
    let word = be32(b, 4);
    // Sign-extend the 24-bit cumulative count.
    let cumulative_lost = ((word << 8) as i32) >> 8;
    ReportBlock {
        ssrc: be32(b, 0),
        fraction_lost: (word >> 24) as u8,
        cumulative_lost,
        highest_seq: be32(b, 8),
        jitter: be32(b, 12),
        lsr: be32(b, 16),
        dlsr: be32(b, 20),
    }
}

/// The CNAMEs of up to `count` SDES chunks; a chunk cut short ends the list (what came before
/// is still worth having).
fn sdes_chunks(count: usize, buf: &[u8]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut at = 4;
    for _ in 0..count {
        if buf.len() < at + 4 {
            break;
        }
        let ssrc = be32(buf, at);
        at += 4;
        loop {
            let Some(&kind) = buf.get(at) else { return out };
            if kind == 0 {
                // The end item, then null padding to the next 32-bit boundary.
                at = (at + 4) & !3;
                break;
            }
            let Some(&len) = buf.get(at + 1) else { return out };
            let Some(text) = buf.get(at + 2..at + 2 + usize::from(len)) else { return out };
            if kind == SDES_CNAME {
                out.push((ssrc, String::from_utf8_lossy(text).into_owned()));
            }
            at += 2 + usize::from(len);
        }
    }
    out
}

/// Appends a packet header; the length is patched by [`finish`].
fn header(out: &mut Vec<u8>, count: usize, packet_type: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0x80 | count.min(MAX_COUNT) as u8, packet_type, 0, 0]);
    start
}

/// Pads the packet started at `start` to 32 bits and writes its length in words minus one.
fn finish(out: &mut Vec<u8>, start: usize) {
    while !(out.len() - start).is_multiple_of(4) {
        out.push(0);
    }
    let words = ((out.len() - start) / 4 - 1) as u16;
    out[start + 2..start + 4].copy_from_slice(&words.to_be_bytes());
}

/// Appends an SR (with `info`) or an RR (without) from `ssrc`, with up to 31 `reports`.
pub fn write_report(ssrc: u32, info: Option<&SenderInfo>, reports: &[ReportBlock], out: &mut Vec<u8>) {
    let reports = &reports[..reports.len().min(MAX_COUNT)];
    let start = header(out, reports.len(), if info.is_some() { PT_SR } else { PT_RR });
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(i) = info {
        out.extend_from_slice(&i.ntp.to_be_bytes());
        out.extend_from_slice(&i.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&i.packets.to_be_bytes());
        out.extend_from_slice(&i.octets.to_be_bytes());
    }
    for r in reports {
        out.extend_from_slice(&r.ssrc.to_be_bytes());
        let lost = (r.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
        out.extend_from_slice(&(u32::from(r.fraction_lost) << 24 | lost).to_be_bytes());
        out.extend_from_slice(&r.highest_seq.to_be_bytes());
        out.extend_from_slice(&r.jitter.to_be_bytes());
        out.extend_from_slice(&r.lsr.to_be_bytes());
        out.extend_from_slice(&r.dlsr.to_be_bytes());
    }
    finish(out, start);
}

/// Appends an SDES with one chunk: `ssrc` and its CNAME (cut to the 255 bytes an item holds).
pub fn write_sdes_cname(ssrc: u32, cname: &str, out: &mut Vec<u8>) {
    let start = header(out, 1, PT_SDES);
    out.extend_from_slice(&ssrc.to_be_bytes());
    let text = &cname.as_bytes()[..cname.len().min(255)];
    out.extend_from_slice(&[SDES_CNAME, text.len() as u8]);
    out.extend_from_slice(text);
    // The end item; `finish` pads with more nulls (at least one null must end the chunk).
    out.push(0);
    finish(out, start);
}

/// Appends a BYE for `ssrc` without a reason.
pub fn write_bye(ssrc: u32, out: &mut Vec<u8>) {
    let start = header(out, 1, PT_BYE);
    out.extend_from_slice(&ssrc.to_be_bytes());
    finish(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32) -> ReportBlock {
        ReportBlock { ssrc, fraction_lost: 25, cumulative_lost: -3, highest_seq: 0x0001_0005, jitter: 77, lsr: 0xABCD_1234, dlsr: 65536 }
    }

    #[test]
    fn a_compound_sr_sdes_bye_round_trips() {
        let info = SenderInfo { ntp: 0xE000_0000_8000_0000, rtp_timestamp: 160, packets: 250, octets: 40_000 };
        let mut out = Vec::new();
        write_report(0x1122_3344, Some(&info), &[block(9), block(10)], &mut out);
        write_sdes_cname(0x1122_3344, "switchd-11223344", &mut out);
        write_bye(0x1122_3344, &mut out);
        assert_eq!(out.len() % 4, 0);
        let packets = parse_compound(&out).expect("valid");
        assert_eq!(
            packets,
            vec![
                RtcpPacket::SenderReport { ssrc: 0x1122_3344, info, reports: vec![block(9), block(10)] },
                RtcpPacket::SourceDescription(vec![(0x1122_3344, "switchd-11223344".into())]),
                RtcpPacket::Bye { sources: vec![0x1122_3344], reason: None },
            ]
        );
    }

    #[test]
    fn an_rr_and_a_cname_of_every_length_round_trip() {
        for n in 0..12 {
            let cname = "x".repeat(n);
            let mut out = Vec::new();
            write_report(5, None, &[block(6)], &mut out);
            write_sdes_cname(5, &cname, &mut out);
            let packets = parse_compound(&out).expect("valid");
            assert_eq!(packets[0], RtcpPacket::ReceiverReport { ssrc: 5, reports: vec![block(6)] });
            assert_eq!(packets[1], RtcpPacket::SourceDescription(vec![(5, cname)]));
        }
    }

    #[test]
    fn baresip_style_compound_with_padding_bye_reason_and_app_parses() {
        // RR with no blocks, SDES with CNAME and a NAME item, an APP packet, BYE with a reason,
        // the last packet padded (P bit, 4 padding bytes).
        let mut out = Vec::new();
        write_report(7, None, &[], &mut out);
        out.extend_from_slice(&[0x81, PT_SDES, 0, 4, 0, 0, 0, 7, 1, 3, b'a', b'@', b'b', 2, 2, b'h', b'i', 0, 0, 0]);
        out.extend_from_slice(&[0x80, 204, 0, 2, 0, 0, 0, 7, b'n', b'a', b'm', b'e']);
        out.extend_from_slice(&[0xA1, PT_BYE, 0, 3, 0, 0, 0, 7, 3, b'b', b'y', b'e', 0, 0, 0, 4]);
        let packets = parse_compound(&out).expect("valid");
        assert_eq!(packets.len(), 4);
        assert_eq!(packets[1], RtcpPacket::SourceDescription(vec![(7, "a@b".into())]));
        assert_eq!(packets[2], RtcpPacket::Other { packet_type: 204 });
        assert_eq!(packets[3], RtcpPacket::Bye { sources: vec![7], reason: Some("bye".into()) });
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let mut good = Vec::new();
        write_report(1, Some(&SenderInfo::default()), &[block(2)], &mut good);
        write_sdes_cname(1, "c", &mut good);
        for len in 1..good.len() {
            // Any cut inside a packet is an error; a cut between packets is a shorter compound.
            let _ = parse_compound(&good[..len]);
        }
        assert!(matches!(parse_compound(&good[..3]), Err(RtcpError::Truncated { .. })));
        assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
        assert_eq!(parse_compound(&[0x40, 200, 0, 0]), Err(RtcpError::BadVersion(1)));
        // An RR claiming two blocks in a body with room for none.
        assert!(matches!(parse_compound(&[0x82, PT_RR, 0, 1, 0, 0, 0, 1]), Err(RtcpError::BadCount { count: 2, .. })));
        // Padding longer than the packet.
        assert!(matches!(parse_compound(&[0xA0, PT_RR, 0, 1, 0, 0, 0, 9]), Err(RtcpError::BadPadding { count: 9, .. })));
        let mut x = 0x9E37_79B9u32;
        for len in 0..160 {
            for _ in 0..64 {
                let mut buf: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        (x >> 24) as u8
                    })
                    .collect();
                if let Some(b) = buf.first_mut() {
                    *b = 0x80 | (*b & 0x3F);
                }
                let _ = parse_compound(&buf);
            }
        }
    }
}
