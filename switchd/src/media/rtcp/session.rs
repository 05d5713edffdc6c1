//! The RTCP side of one RTP leg (RFC 3550 §6 and Appendix A), sans-IO.
//!
//! Usage contract: feed every accepted RTP packet to [`RtcpSession::handle_rtp`], every packet
//! we send to [`RtcpSession::on_sent`], every RTCP datagram to [`RtcpSession::handle_rtcp`];
//! when `now` reaches [`RtcpSession::poll_timeout`], call [`RtcpSession::poll_transmit`] and send
//! what it wrote; when the leg ends, send [`RtcpSession::write_bye`]. No clock is read here:
//! the wall clock enters once, at [`RtcpSession::new`], as the NTP time of an `Instant`.
//!
//! A leg has one peer, so the session tracks one remote source (a new SSRC replaces it, its
//! counts kept for the totals) and, with two members, the RFC's bandwidth-based interval is
//! always below the 5 s minimum: reports go out every 5 s (2.5 s for the first) times a random
//! factor in [0.5, 1.5], as §6.3.1 asks so that peers do not synchronise. The §A.7 division by
//! e − 3/2 is left out: it offsets the bias of timer reconsideration, which a fixed two-party
//! session does not do.

use std::time::{Duration, Instant};

use super::{parse_compound, write_bye, write_report, write_sdes_cname, ReportBlock, RtcpError, RtcpPacket, SenderInfo};

/// §6.2: the minimum interval between reports.
const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// §A.1: a jump ahead by more than this many sequence numbers is a restart or garbage.
const MAX_DROPOUT: u16 = 3000;
/// §A.1: a step back by up to this many is reordering, not a restart.
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// Seconds between 1900 (NTP's epoch) and 1970 (Unix's).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The NTP timestamp (32.32) of a Unix time, for [`RtcpSession::new`].
pub fn ntp_of_unix(since_epoch: Duration) -> u64 {
    let secs = since_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    secs << 32 | frac
}

/// A duration in 1/65536 s, the unit of DLSR (saturating).
fn units_65536(d: Duration) -> u32 {
    u32::try_from(d.as_micros() * 65536 / 1_000_000).unwrap_or(u32::MAX)
}

/// Spreads a seed over all 64 bits (SplitMix64): xorshift from a small seed would start
/// with many near-zero outputs, and every leg's first report would come at the same factor.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// What the CDR keeps of a leg's media quality.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quality {
    /// RTP packets received from the peer, as counted for the report blocks.
    pub packets_received: u64,
    /// Packets expected but not received (negative with duplicates).
    pub packets_lost: i64,
    /// The highest interarrival jitter we measured, in milliseconds.
    pub jitter_max_ms: f64,
    /// The mean round-trip time from the peer's report blocks on our stream, when it sent any
    /// that answered one of our SRs.
    pub rtt_mean_ms: Option<f64>,
    /// RTCP packets (compound datagrams) received from the peer.
    pub rtcp_received: u64,
}

/// Reception statistics of one source (§A.1, §A.3, §A.8).
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    /// Sequence wraps, shifted into the high 16 bits.
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Relative transit time of the last audio packet, in timestamp units.
    transit: Option<i64>,
    /// Jitter × 16, as §A.8 keeps it for integer arithmetic.
    jitter16: u64,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Self {
        Source {
            ssrc,
            max_seq: seq,
            cycles: 0,
            base_seq: u32::from(seq),
            bad_seq: SEQ_MOD + 1,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter16: 0,
        }
    }

    /// §A.1 `update_seq` (without probation: the packet already matched the negotiated payload
    /// type on our port); false for a packet to drop from the counts.
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = seq;
        } else if udelta <= u16::MAX - MAX_MISORDER {
            // A big jump: believe it only when the next packet follows it (the peer restarted).
            if u32::from(seq) == self.bad_seq {
                *self = Source { transit: self.transit, jitter16: self.jitter16, ..Source::new(self.ssrc, seq) };
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return false;
            }
        }
        // Otherwise a duplicate or a reordered packet: counted, as §A.1 does.
        self.received += 1;
        true
    }

    fn extended_max(&self) -> u32 {
        self.cycles | u32::from(self.max_seq)
    }

    fn expected(&self) -> u64 {
        u64::from(self.extended_max().wrapping_sub(self.base_seq)) + 1
    }

    fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// §A.8, `arrival` in timestamp units.
    fn update_jitter(&mut self, arrival: i64, timestamp: u32) {
        // Transit times are compared modulo 2^32, as the timestamps wrap.
        let transit = i64::from(arrival.wrapping_sub(i64::from(timestamp)) as i32);
        if let Some(prev) = self.transit {
            let d = (i64::from(transit.wrapping_sub(prev) as i32)).unsigned_abs();
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// The report block at a report (§A.3), which starts the next interval.
    fn report(&mut self) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
            highest_seq: self.extended_max(),
            jitter: u32::try_from(self.jitter16 >> 4).unwrap_or(u32::MAX),
            lsr: 0,
            dlsr: 0,
        }
    }
}

/// The RTCP state of one leg (see the module docs for the usage contract).
#[derive(Debug, Clone)]
pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    clock_rate: u32,
    /// An instant and its NTP time: every other NTP time is derived from them.
    epoch: Instant,
    epoch_ntp: u64,
    next_report: Instant,
    rng: u64,
    sent_packets: u32,
    sent_octets: u32,
    /// Our latest RTP timestamp and when we sent it (the SR's RTP time is extrapolated from it).
    last_sent: Option<(Instant, u32)>,
    sent_since_report: bool,
    source: Option<Source>,
    /// Received and lost of sources that were replaced by a new SSRC.
    retired: (u64, i64),
    jitter_max: u32,
    /// The middle 32 bits of the peer's last SR and when it arrived.
    last_sr: Option<(u32, Instant)>,
    rtt_sum: Duration,
    rtt_count: u32,
    rtcp_received: u64,
}

impl RtcpSession {
    /// A session for our stream `ssrc` on a `clock_rate` Hz codec; `epoch_ntp` is the wall
    /// clock at `now` as NTP, `seed` randomises the report times.
    pub fn new(now: Instant, epoch_ntp: u64, ssrc: u32, clock_rate: u32, seed: u64) -> Self {
        let mut s = RtcpSession {
            ssrc,
            // RFC 7022: a random CNAME per session tells nothing about the host; the SSRC is random.
            cname: format!("switchd-{ssrc:08x}"),
            clock_rate: clock_rate.max(1),
            epoch: now,
            epoch_ntp,
            next_report: now,
            rng: splitmix64(seed),
            sent_packets: 0,
            sent_octets: 0,
            last_sent: None,
            sent_since_report: false,
            source: None,
            retired: (0, 0),
            jitter_max: 0,
            last_sr: None,
            rtt_sum: Duration::ZERO,
            rtt_count: 0,
            rtcp_received: 0,
        };
        // §6.2: the first report after half the minimum interval.
        s.next_report = now + s.randomised(MIN_INTERVAL / 2);
        s
    }

    /// A codec change (re-INVITE) changes the timestamp clock the jitter is measured in.
    pub fn set_clock_rate(&mut self, clock_rate: u32) {
        self.clock_rate = clock_rate.max(1);
    }

    /// `interval` × a random factor in [0.5, 1.5) (xorshift64: no cryptography needed).
    fn randomised(&mut self, interval: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let factor = 0.5 + (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        interval.mul_f64(factor)
    }

    fn ntp(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.epoch);
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        self.epoch_ntp.wrapping_add(d.as_secs() << 32).wrapping_add(frac)
    }

    /// An RTP packet from the peer arrived at `now`; `audio` is false for RFC 4733 events, whose
    /// timestamps mark an event's start and would count as jitter.
    pub fn handle_rtp(&mut self, now: Instant, ssrc: u32, seq: u16, timestamp: u32, audio: bool) {
        let source = match self.source.as_mut() {
            Some(s) if s.ssrc == ssrc => s,
            _ => {
                if let Some(old) = self.source.take() {
                    self.retired = (self.retired.0 + old.received, self.retired.1 + old.lost());
                }
                self.source.insert(Source::new(ssrc, seq))
            }
        };
        if !source.update_seq(seq) || !audio {
            return;
        }
        let elapsed = now.saturating_duration_since(self.epoch);
        let arrival = (elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000) as i64;
        source.update_jitter(arrival, timestamp);
        self.jitter_max = self.jitter_max.max(u32::try_from(source.jitter16 >> 4).unwrap_or(u32::MAX));
    }

    /// We sent an RTP packet with `payload_len` bytes and `timestamp` at `now`.
    pub fn on_sent(&mut self, now: Instant, timestamp: u32, payload_len: usize) {
        self.sent_packets = self.sent_packets.wrapping_add(1);
        self.sent_octets = self.sent_octets.wrapping_add(payload_len as u32);
        self.last_sent = Some((now, timestamp));
        self.sent_since_report = true;
    }

    /// An RTCP datagram from the peer arrived at `now`: its SR times are kept for our LSR/DLSR,
    /// its report blocks on our stream give the round-trip time (§6.4.1).
    pub fn handle_rtcp(&mut self, now: Instant, datagram: &[u8]) -> Result<(), RtcpError> {
        let packets = parse_compound(datagram)?;
        self.rtcp_received += 1;
        let arrival = (self.ntp(now) >> 16) as u32;
        for packet in &packets {
            let reports = match packet {
                RtcpPacket::SenderReport { ssrc, info, reports } => {
                    if self.source.as_ref().is_none_or(|s| s.ssrc == *ssrc) {
                        self.last_sr = Some(((info.ntp >> 16) as u32, now));
                    }
                    reports
                }
                RtcpPacket::ReceiverReport { reports, .. } => reports,
                _ => continue,
            };
            for r in reports.iter().filter(|r| r.ssrc == self.ssrc && r.lsr != 0) {
                let rtt = arrival.wrapping_sub(r.lsr).wrapping_sub(r.dlsr);
                // Above 2^31 the subtraction went negative: clocks or fields are off; skip it.
                if rtt < 1 << 31 {
                    self.rtt_sum += Duration::from_micros(u64::from(rtt) * 1_000_000 / 65536);
                    self.rtt_count += 1;
                }
            }
        }
        Ok(())
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// At or after [`RtcpSession::poll_timeout`]: appends the compound report (SR when we sent
    /// RTP since the last one, else RR; then SDES CNAME) to `out`, schedules the next and
    /// returns true. Before it: false, nothing written.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<u8>) -> bool {
        if now < self.next_report {
            return false;
        }
        self.write_report(now, out);
        self.next_report = now + self.randomised(MIN_INTERVAL);
        true
    }

    /// Appends the final report and a BYE (§6.6: a BYE goes in a compound packet too).
    pub fn write_bye(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.write_report(now, out);
        write_bye(self.ssrc, out);
    }

    fn write_report(&mut self, now: Instant, out: &mut Vec<u8>) {
        let info = match self.last_sent {
            Some((at, ts)) if self.sent_since_report => {
                let since = now.saturating_duration_since(at);
                let ticks = since.as_micros() * u128::from(self.clock_rate) / 1_000_000;
                Some(SenderInfo {
                    ntp: self.ntp(now),
                    rtp_timestamp: ts.wrapping_add(ticks as u32),
                    packets: self.sent_packets,
                    octets: self.sent_octets,
                })
            }
            _ => None,
        };
        self.sent_since_report = false;
        let block = self.source.as_mut().map(|s| {
            let mut b = s.report();
            if let Some((lsr, at)) = self.last_sr {
                b.lsr = lsr;
                b.dlsr = units_65536(now.saturating_duration_since(at));
            }
            b
        });
        write_report(self.ssrc, info.as_ref(), block.as_slice(), out);
        write_sdes_cname(self.ssrc, &self.cname, out);
    }

    /// The quality figures so far.
    pub fn quality(&self) -> Quality {
        let (received, lost) = self.source.as_ref().map_or((0, 0), |s| (s.received, s.lost()));
        Quality {
            packets_received: self.retired.0 + received,
            packets_lost: self.retired.1 + lost,
            jitter_max_ms: f64::from(self.jitter_max) * 1000.0 / f64::from(self.clock_rate),
            rtt_mean_ms: (self.rtt_count > 0).then(|| self.rtt_sum.as_secs_f64() * 1000.0 / f64::from(self.rtt_count)),
            rtcp_received: self.rtcp_received,
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
