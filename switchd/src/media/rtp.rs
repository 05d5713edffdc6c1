//! RFC 3550 RTP packets: a zero-copy parser, a writer, sequence-number extension, and the
//! RFC 5761 test that tells RTCP from RTP when both share one port (symmetric RTP/RTCP mux).
//!
//! Parsing borrows the datagram: the payload and the header extension are slices of it, so the
//! receive path copies nothing. Every length is checked before it is used; any byte string gives
//! either a packet or an [`RtpError`], never a panic.

use std::ops::Range;

/// The fixed header: V, P, X, CC, M, PT, sequence, timestamp, SSRC.
pub const FIXED_HEADER_LEN: usize = 12;
/// RTP version 2, the only one in use since RFC 1889.
pub const VERSION: u8 = 2;
/// At most 15 contributing sources fit the 4-bit CC field.
pub const MAX_CSRC: usize = 15;

/// Why a datagram is not a valid RTP packet, or a header cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer bytes than the header (fixed part, CSRC list or extension) declares.
    #[error("RTP packet truncated: {needed} bytes needed, {len} present")]
    Truncated { needed: usize, len: usize },
    /// The version field is not 2 (STUN, DTLS or garbage on the media port).
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The P bit is set but the count in the last byte is zero or runs into the header.
    #[error("RTP padding of {count} bytes, but only {available} bytes follow the header")]
    BadPadding { count: usize, available: usize },
    /// More than 15 CSRCs asked to be written.
    #[error("{0} CSRCs, at most 15 fit")]
    TooManyCsrc(usize),
    /// Payload types are 7 bits.
    #[error("payload type {0} is above 127")]
    BadPayloadType(u8),
    /// Extension data must be whole 32-bit words and at most 65535 of them.
    #[error("header extension of {0} bytes is not a whole number of 32-bit words below 65536")]
    BadExtension(usize),
}

/// The RFC 3550 §5.3.1 header extension: a profile-defined 16-bit id and whole 32-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension<'a> {
    /// "Defined by profile": 0xBEDE for RFC 8285 one-byte extensions, for example.
    pub profile: u16,
    /// The words after the extension header, without it.
    pub data: &'a [u8],
}

/// The header fields a sender chooses; what [`RtpPacket::write`] takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Contributing sources; empty unless a mixer forwards them.
    pub csrc: Vec<u32>,
    pub extension: Option<Extension<'a>>,
}

/// A parsed RTP packet borrowing its datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader<'a>,
    /// The media bytes, without header and padding.
    pub payload: &'a [u8],
    /// Where `payload` sits in the datagram, for callers that keep the buffer instead.
    pub payload_range: Range<usize>,
    /// Padding bytes removed from the end (including the count byte); 0 without the P bit.
    pub padding: usize,
}

/// Reads a big-endian u16 at `at`; callers have checked the length.
fn be16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]))
}

/// Reads a big-endian u32 at `at`; callers have checked the length.
fn be32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Fails with `Truncated` unless `buf` holds at least `needed` bytes.
fn need(buf: &[u8], needed: usize) -> Result<(), RtpError> {
    if buf.len() < needed {
        return Err(RtpError::Truncated { needed, len: buf.len() });
    }
    Ok(())
}

/// Reads the header extension at `at`, returning it and the offset after it.
fn parse_extension(buf: &[u8], at: usize) -> Result<(Extension<'_>, usize), RtpError> {
    need(buf, at + 4)?;
    let truncated = RtpError::Truncated { needed: at + 4, len: buf.len() };
    let profile = be16(buf, at).ok_or(truncated.clone())?;
    let words = usize::from(be16(buf, at + 2).ok_or(truncated)?);
    let end = at + 4 + words * 4;
    need(buf, end)?;
    Ok((Extension { profile, data: &buf[at + 4..end] }, end))
}

/// Length of the padding announced by the last byte, checked against the bytes after the header.
fn padding_len(buf: &[u8], header_end: usize) -> Result<usize, RtpError> {
    let available = buf.len() - header_end;
    let count = buf.last().map_or(0, |&b| usize::from(b));
    if count == 0 || count > available {
        return Err(RtpError::BadPadding { count, available });
    }
    Ok(count)
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram. Call [`is_rtcp`] first when RTCP shares the port (RFC 5761).
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        need(buf, FIXED_HEADER_LEN)?;
        let version = buf[0] >> 6;
        if version != VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let (has_padding, has_ext) = (buf[0] & 0x20 != 0, buf[0] & 0x10 != 0);
        let csrc_count = usize::from(buf[0] & 0x0F);
        let mut at = FIXED_HEADER_LEN + csrc_count * 4;
        need(buf, at)?;
        let csrc = (0..csrc_count).filter_map(|i| be32(buf, FIXED_HEADER_LEN + i * 4)).collect();
        let mut extension = None;
        if has_ext {
            let (ext, end) = parse_extension(buf, at)?;
            extension = Some(ext);
            at = end;
        }
        let padding = if has_padding { padding_len(buf, at)? } else { 0 };
        let payload_range = at..buf.len() - padding;
        let header = RtpHeader {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7F,
            sequence: be16(buf, 2).unwrap_or_default(),
            timestamp: be32(buf, 4).unwrap_or_default(),
            ssrc: be32(buf, 8).unwrap_or_default(),
            csrc,
            extension,
        };
        Ok(RtpPacket { header, payload: &buf[payload_range.clone()], payload_range, padding })
    }

    /// Appends a packet with `header` and `payload` to `out`, without padding.
    pub fn write(header: &RtpHeader<'_>, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RtpError> {
        Self::write_padded(header, payload, 0, out)
    }

    /// Appends a packet with `padding` bytes of padding (0 for none; the last one holds the count),
    /// as SRTP or fixed-size senders need. Nothing is appended on error.
    pub fn write_padded(
        header: &RtpHeader<'_>,
        payload: &[u8],
        padding: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), RtpError> {
        check_writable(header)?;
        let flags = (VERSION << 6)
            | if padding > 0 { 0x20 } else { 0 }
            | if header.extension.is_some() { 0x10 } else { 0 }
            | header.csrc.len() as u8;
        out.push(flags);
        out.push(if header.marker { 0x80 } else { 0 } | header.payload_type);
        out.extend_from_slice(&header.sequence.to_be_bytes());
        out.extend_from_slice(&header.timestamp.to_be_bytes());
        out.extend_from_slice(&header.ssrc.to_be_bytes());
        header.csrc.iter().for_each(|c| out.extend_from_slice(&c.to_be_bytes()));
        if let Some(ext) = &header.extension {
            out.extend_from_slice(&ext.profile.to_be_bytes());
            out.extend_from_slice(&((ext.data.len() / 4) as u16).to_be_bytes());
            out.extend_from_slice(ext.data);
        }
        out.extend_from_slice(payload);
        if padding > 0 {
            out.extend(std::iter::repeat_n(0, usize::from(padding) - 1));
            out.push(padding);
        }
        Ok(())
    }
}

/// Rejects headers the wire format cannot carry, before anything is written.
fn check_writable(header: &RtpHeader<'_>) -> Result<(), RtpError> {
    if header.csrc.len() > MAX_CSRC {
        return Err(RtpError::TooManyCsrc(header.csrc.len()));
    }
    if header.payload_type > 0x7F {
        return Err(RtpError::BadPayloadType(header.payload_type));
    }
    if let Some(ext) = &header.extension {
        let len = ext.data.len();
        if len % 4 != 0 || len / 4 > usize::from(u16::MAX) {
            return Err(RtpError::BadExtension(len));
        }
    }
    Ok(())
}

/// True when a datagram on a muxed RTP/RTCP port is RTCP (RFC 5761 §4).
///
/// RTCP packet types 192–223 (SR 200 … APP 204, RTPFB 205, PSFB 206) sit where RTP's marker bit
/// and payload types 64–95 would; RFC 5761 forbids those payload types (72–76 above all) for RTP
/// on a muxed port, so the second byte alone decides.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && buf[0] >> 6 == VERSION && (192..=223).contains(&buf[1])
}

/// Extends 16-bit sequence numbers to a monotonic 64-bit count across wraps (RFC 3550 A.1).
///
/// Each number is placed at the extended value nearest the highest seen so far, so reordering by
/// less than half the sequence space (32768 packets, 11 minutes at 50 packets/s) is handled.
/// Feed numbers in arrival order; [`SequenceExtender::highest`] is the "extended highest
/// sequence number received" of RTCP receiver reports. A source restart (new SSRC) needs a new
/// extender.
#[derive(Debug, Clone, Default)]
pub struct SequenceExtender {
    highest: Option<u64>,
}

impl SequenceExtender {
    pub fn new() -> Self {
        Self::default()
    }

    /// The extended value of `seq`, or `None` for a late packet from before the first one's
    /// cycle (it would be negative; the caller drops it as too old).
    pub fn extend(&mut self, seq: u16) -> Option<u64> {
        let Some(highest) = self.highest else {
            self.highest = Some(u64::from(seq));
            return Some(u64::from(seq));
        };
        let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
        let ext = u64::try_from(highest as i64 + delta).ok()?;
        if ext > highest {
            self.highest = Some(ext);
        }
        Some(ext)
    }

    /// The highest extended sequence number so far; its high bits count wraps (RFC 3550 cycles).
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCMA packet as a carrier sends it: marker on the first packet of a talkspurt, 160 bytes.
    fn pcma_packet() -> Vec<u8> {
        let mut p = vec![0x80, 0x88, 0x1f, 0x40, 0x00, 0x01, 0xf4, 0x00, 0xde, 0xad, 0xbe, 0xef];
        p.extend(std::iter::repeat_n(0xD5, 160));
        p
    }

    #[test]
    fn parses_a_real_looking_pcma_packet() {
        let buf = pcma_packet();
        let p = RtpPacket::parse(&buf).expect("valid");
        assert!(p.header.marker);
        assert_eq!(p.header.payload_type, 8);
        assert_eq!(p.header.sequence, 8000);
        assert_eq!(p.header.timestamp, 128_000);
        assert_eq!(p.header.ssrc, 0xdead_beef);
        assert!(p.header.csrc.is_empty() && p.header.extension.is_none());
        assert_eq!(p.payload.len(), 160);
        assert_eq!(p.payload_range, 12..172);
        assert_eq!(p.padding, 0);
    }

    #[test]
    fn parses_csrc_extension_and_padding_together() {
        let ext_data = [1, 2, 3, 4, 5, 6, 7, 8];
        let header = RtpHeader {
            marker: false,
            payload_type: 0,
            sequence: 65535,
            timestamp: u32::MAX,
            ssrc: 7,
            csrc: vec![1, 2, 3],
            extension: Some(Extension { profile: 0xBEDE, data: &ext_data }),
        };
        let mut buf = Vec::new();
        RtpPacket::write_padded(&header, b"hello", 3, &mut buf).expect("writable");
        assert_eq!(buf.len(), 12 + 12 + 4 + 8 + 5 + 3);
        let p = RtpPacket::parse(&buf).expect("valid");
        assert_eq!(p.header, header);
        assert_eq!(p.payload, b"hello");
        assert_eq!(p.padding, 3);
    }

    #[test]
    fn truncation_at_every_length_is_an_error_not_a_panic() {
        let ext_data = [9u8; 12];
        let header = RtpHeader {
            csrc: vec![5, 6],
            extension: Some(Extension { profile: 1, data: &ext_data }),
            ..RtpHeader::default()
        };
        let mut buf = Vec::new();
        RtpPacket::write_padded(&header, &[], 4, &mut buf).expect("writable");
        assert!(RtpPacket::parse(&buf).is_ok());
        for len in 0..buf.len() {
            assert!(RtpPacket::parse(&buf[..len]).is_err(), "length {len} accepted");
        }
    }

    #[test]
    fn padding_larger_than_the_payload_is_rejected() {
        let mut buf = pcma_packet();
        buf[0] |= 0x20;
        *buf.last_mut().expect("non-empty") = 161;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadPadding { count: 161, available: 160 }));
        *buf.last_mut().expect("non-empty") = 0;
        assert!(matches!(RtpPacket::parse(&buf), Err(RtpError::BadPadding { count: 0, .. })));
        *buf.last_mut().expect("non-empty") = 160;
        assert_eq!(RtpPacket::parse(&buf).expect("all padding").payload, b"");
        // P bit with nothing after the header.
        assert!(matches!(RtpPacket::parse(&buf[..12]), Err(RtpError::BadPadding { .. })));
    }

    #[test]
    fn wrong_version_is_rejected() {
        let mut buf = pcma_packet();
        buf[0] = 0x40;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadVersion(1)));
        // A STUN binding request starts with 0x00 0x01.
        buf[0] = 0x00;
        assert_eq!(RtpPacket::parse(&buf), Err(RtpError::BadVersion(0)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x1234_5678u32;
        for len in 0..200 {
            for _ in 0..50 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        (x >> 24) as u8
                    })
                    .collect();
                let _ = RtpPacket::parse(&buf);
                let _ = is_rtcp(&buf);
            }
        }
    }

    #[test]
    fn unwritable_headers_are_refused_without_output() {
        let mut out = Vec::new();
        let many = RtpHeader { csrc: vec![0; 16], ..RtpHeader::default() };
        assert_eq!(RtpPacket::write(&many, &[], &mut out), Err(RtpError::TooManyCsrc(16)));
        let pt = RtpHeader { payload_type: 128, ..RtpHeader::default() };
        assert_eq!(RtpPacket::write(&pt, &[], &mut out), Err(RtpError::BadPayloadType(128)));
        let odd = RtpHeader { extension: Some(Extension { profile: 0, data: &[1, 2, 3] }), ..RtpHeader::default() };
        assert_eq!(RtpPacket::write(&odd, &[], &mut out), Err(RtpError::BadExtension(3)));
        assert!(out.is_empty());
    }

    #[test]
    fn rtcp_is_told_from_rtp() {
        // RTCP receiver report (PT 201) and sender report (PT 200).
        assert!(is_rtcp(&[0x81, 201, 0x00, 0x07]));
        assert!(is_rtcp(&[0x80, 200, 0x00, 0x06]));
        assert!(is_rtcp(&[0x81, 205, 0x00, 0x02]));
        assert!(!is_rtcp(&pcma_packet()));
        assert!(!is_rtcp(&[0x80, 101]), "telephone-event");
        assert!(!is_rtcp(&[0x80, 0x80 | 101]), "telephone-event with marker");
        assert!(!is_rtcp(&[0x00, 200]), "not version 2");
        assert!(!is_rtcp(&[0x80]));
    }

    #[test]
    fn sequence_numbers_extend_across_wraps() {
        let mut ext = SequenceExtender::new();
        assert_eq!(ext.extend(65534), Some(65534));
        assert_eq!(ext.extend(65535), Some(65535));
        assert_eq!(ext.extend(0), Some(65536));
        assert_eq!(ext.extend(65535), Some(65535), "late packet from before the wrap");
        assert_eq!(ext.extend(1), Some(65537));
        assert_eq!(ext.highest(), Some(65537));
        for i in 2..=200_000u64 {
            assert_eq!(ext.extend((i % 65536) as u16), Some(65536 + i));
        }
        assert_eq!(ext.highest().map(|h| h >> 16), Some(4), "cycles");
    }

    #[test]
    fn a_packet_from_before_the_first_cycle_is_none() {
        let mut ext = SequenceExtender::new();
        assert_eq!(ext.extend(5), Some(5));
        assert_eq!(ext.extend(65530), None);
        assert_eq!(ext.extend(3), Some(3));
        assert_eq!(ext.highest(), Some(5));
    }
}
