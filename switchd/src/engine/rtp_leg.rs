//! One SIP leg's media: its RTP socket, the negotiated codec, our outgoing stream and what
//! arrives (audio into a jitter buffer for consumers, RFC 4733 events into digits).
//!
//! Symmetric RTP (RFC 4961): we send from the port we receive on, and once a valid packet of
//! the negotiated payload types arrives we send to where it came from, whatever the SDP said —
//! that is what gets audio through NAT on the carrier's or a phone's side.
//!
//! RTCP (RFC 3550): each leg binds the port above its RTP port, as an SDP without `a=rtcp`
//! implies, or shares the RTP port when both sides agreed `a=rtcp-mux` (RFC 5761). A
//! [`RtcpSession`] keeps the statistics; the media tick sends its reports
//! ([`RtpLeg::rtcp_tick`]) and dropping the leg sends a BYE. RTCP is sent with `try_send_to`:
//! a report that finds the socket buffer full is dropped, never waited for.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

use tokio::net::UdpSocket;

use crate::media::dtmf::event::EventReceiver;
use crate::media::dtmf::inband::InbandDetector;
use crate::media::g711;
use crate::media::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::media::rtcp::session::{ntp_of_unix, Quality, RtcpSession};
use crate::media::rtp::{is_rtcp, RtpHeader, RtpPacket};
use crate::sip::sdp::{Answer, Codec};

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// A leg's RTP socket and the RTCP socket on the port above it.
#[derive(Debug)]
pub struct RtpSockets {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl RtpSockets {
    /// The RTP port (what goes into the SDP; RTCP is on the next one).
    pub fn port(&self) -> std::io::Result<u16> {
        Ok(self.rtp.local_addr()?.port())
    }
}

/// Binds a UDP socket on an even port of `[min, max]` on `ip` and one on the odd port above it
/// for RTCP, starting at a random place so that consecutive calls do not reuse a port whose
/// stray packets may still be in flight. Must run inside the tokio runtime.
pub fn bind_rtp(ip: IpAddr, min: u16, max: u16) -> std::io::Result<RtpSockets> {
    let (min, max) = (min.max(1024) & !1, max.max(min));
    // Whole pairs only: the RTCP port of the last slot must be inside the range too.
    let slots = u32::from((max - min).div_ceil(2)).max(1);
    let start = ring::rand::generate::<[u8; 4]>(&ring::rand::SystemRandom::new())
        .map(|r| u32::from_be_bytes(r.expose()))
        .unwrap_or(0)
        % slots;
    for i in 0..slots {
        let port = min + (((start + i) % slots) * 2) as u16;
        let Ok(rtp) = std::net::UdpSocket::bind(SocketAddr::new(ip, port)) else { continue };
        let Ok(rtcp) = std::net::UdpSocket::bind(SocketAddr::new(ip, port + 1)) else { continue };
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        return Ok(RtpSockets { rtp: UdpSocket::from_std(rtp)?, rtcp: UdpSocket::from_std(rtcp)? });
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free RTP/RTCP port pair in {min}-{max}"),
    ))
}

/// Where the peer takes RTCP: its RTP address with RFC 5761 mux, else the port above it.
fn rtcp_address(rtp: SocketAddr, mux: bool) -> SocketAddr {
    if mux {
        rtp
    } else {
        SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1))
    }
}

/// Where the answer says the peer takes RTCP: its `a=rtcp`, else the default.
fn negotiated_rtcp(answer: &Answer) -> SocketAddr {
    match answer.rtcp {
        Some(rtcp) if !answer.rtcp_mux => rtcp,
        _ => rtcp_address(answer.remote, answer.rtcp_mux),
    }
}

/// What to do with received audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Handling {
    /// Send it straight back (the echo test).
    pub echo: bool,
    /// Queue it in the jitter buffer, for whoever consumes it per tick.
    pub queue: bool,
    /// Hand the payload back, for forwarding to another leg undecoded.
    pub forward: bool,
}

/// What one received datagram was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Audio of the negotiated codec; the payload when [`Handling::forward`] asked for it.
    Audio(Option<Vec<u8>>),
    /// A new DTMF key press (RFC 4733).
    Digit(char),
    /// RTCP (taken into the leg's statistics), a repeat of an event, or anything not ours.
    Nothing,
}

/// Counters a CDR and the benchmarks read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    pub packets_in: u64,
    pub packets_out: u64,
    pub ignored_in: u64,
}

/// The media of one leg (see the module docs).
#[derive(Debug)]
pub struct RtpLeg {
    socket: UdpSocket,
    remote: SocketAddr,
    latched: bool,
    codec: Codec,
    payload_type: u8,
    dtmf_payload_type: Option<u8>,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    marker_next: bool,
    events: EventReceiver,
    inband: Option<InbandDetector>,
    /// Made at the first audio packet, with that packet's duration as its frame: carriers
    /// send 20 or 30 ms (SIPp's capture is 30 ms) whatever `a=ptime` says.
    jitter: Option<JitterBuffer>,
    /// Decoded audio waiting to be taken 20 ms at a time (packets and ticks need not align).
    decoded: VecDeque<i16>,
    frame_samples: usize,
    stats: LegStats,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Digits to send as RFC 4733 events, and the one being sent.
    dtmf_out: VecDeque<char>,
    dtmf_now: Option<SendingEvent>,
    rtcp_socket: UdpSocket,
    /// Where our reports go: the peer's `a=rtcp`, else its RTP port + 1 (its RTP port with
    /// mux), moved to where its RTCP comes from once some does.
    rtcp_remote: SocketAddr,
    /// The RTCP address is known (an `a=rtcp`, or RTCP received): RTP latching leaves it.
    rtcp_latched: bool,
    rtcp_mux: bool,
    rtcp: RtcpSession,
    rtcp_buf: Vec<u8>,
    rtcp_out: Vec<u8>,
}

/// An RFC 4733 event being sent, one packet per 20 ms tick.
#[derive(Debug, Clone, Copy)]
struct SendingEvent {
    code: u8,
    /// The event's RTP timestamp (its start), kept for every packet of it.
    timestamp: u32,
    ticks: u16,
}

/// Ticks a sent digit lasts (100 ms), then ticks of end packets (3, as RFC 4733 §2.5.1.4
/// advises), then ticks of silence before the next digit.
const EVENT_TICKS: u16 = 5;
const END_TICKS: u16 = 3;
const GAP_TICKS: u16 = 3;

impl RtpLeg {
    /// A leg sending to the negotiated `answer` from `sockets`.
    pub fn new(sockets: RtpSockets, answer: &Answer) -> Self {
        let random = ring::rand::generate::<[u8; 8]>(&ring::rand::SystemRandom::new())
            .map(|r| r.expose())
            .unwrap_or([7; 8]);
        let ssrc = u32::from_be_bytes([random[0], random[1], random[2], random[3]]);
        let wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let rtcp = RtcpSession::new(Instant::now(), ntp_of_unix(wall), ssrc, answer.codec.clock_rate(), u64::from_be_bytes(random));
        Self {
            socket: sockets.rtp,
            remote: answer.remote,
            latched: false,
            codec: answer.codec,
            payload_type: answer.payload_type,
            dtmf_payload_type: answer.dtmf_payload_type,
            ssrc,
            seq: u16::from_be_bytes([random[4], random[5]]),
            timestamp: u32::from(u16::from_be_bytes([random[6], random[7]])) << 8,
            marker_next: true,
            events: EventReceiver::new(),
            // Without RFC 4733 the trunk can only send its digits in the audio.
            inband: answer.dtmf_payload_type.is_none().then(InbandDetector::new),
            jitter: None,
            decoded: VecDeque::with_capacity(4 * FRAME_SAMPLES),
            frame_samples: FRAME_SAMPLES,
            stats: LegStats::default(),
            buf: vec![0; 2048],
            out: Vec::with_capacity(256),
            dtmf_out: VecDeque::new(),
            dtmf_now: None,
            rtcp_socket: sockets.rtcp,
            rtcp_remote: negotiated_rtcp(answer),
            rtcp_latched: answer.rtcp.is_some(),
            rtcp_mux: answer.rtcp_mux,
            rtcp,
            rtcp_buf: vec![0; 1500],
            rtcp_out: Vec::with_capacity(128),
        }
    }

    /// Takes a new answer (re-INVITE): codec and address may change.
    pub fn renegotiate(&mut self, answer: &Answer) {
        self.remote = answer.remote;
        self.latched = false;
        self.codec = answer.codec;
        self.payload_type = answer.payload_type;
        self.dtmf_payload_type = answer.dtmf_payload_type;
        self.rtcp_mux = answer.rtcp_mux;
        self.rtcp_remote = negotiated_rtcp(answer);
        self.rtcp_latched = answer.rtcp.is_some();
        self.rtcp.set_clock_rate(answer.codec.clock_rate());
    }

    /// The local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Counters so far.
    pub fn stats(&self) -> LegStats {
        self.stats
    }

    /// Reception quality so far (loss, jitter, round-trip time) as RTCP reports it.
    pub fn quality(&self) -> Quality {
        self.rtcp.quality()
    }

    /// The negotiated codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Waits for one datagram (RTP, or RTCP on either port) and classifies it; audio is
    /// handled as `handling` says.
    pub async fn receive(&mut self, handling: Handling) -> std::io::Result<Received> {
        let (n, source, on_rtcp_port) = tokio::select! {
            r = self.socket.recv_from(&mut self.buf) => r.map(|(n, s)| (n, s, false))?,
            r = self.rtcp_socket.recv_from(&mut self.rtcp_buf) => r.map(|(n, s)| (n, s, true))?,
        };
        let now = Instant::now();
        if on_rtcp_port {
            match self.rtcp.handle_rtcp(now, &self.rtcp_buf[..n]) {
                // Symmetric RTCP, as for RTP: answer where the reports come from.
                Ok(()) if !self.rtcp_mux => {
                    self.rtcp_remote = source;
                    self.rtcp_latched = true;
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::trace!(%source, error = %e, "RTCP: ignored");
                    self.stats.ignored_in += 1;
                }
            }
            return Ok(Received::Nothing);
        }
        let datagram = &self.buf[..n];
        if is_rtcp(datagram) {
            if let Err(e) = self.rtcp.handle_rtcp(now, datagram) {
                tracing::trace!(%source, error = %e, "RTCP: ignored");
                self.stats.ignored_in += 1;
            }
            return Ok(Received::Nothing);
        }
        let Ok(packet) = RtpPacket::parse(datagram) else {
            self.stats.ignored_in += 1;
            return Ok(Received::Nothing);
        };
        let pt = packet.header.payload_type;
        let is_event = Some(pt) == self.dtmf_payload_type;
        if pt != self.payload_type && !is_event {
            self.stats.ignored_in += 1;
            return Ok(Received::Nothing);
        }
        self.stats.packets_in += 1;
        if !self.latched || source != self.remote {
            if !self.latched {
                tracing::debug!(%source, sdp = %self.remote, "RTP: latched to the sender");
            }
            self.remote = source;
            self.latched = true;
            if !self.rtcp_latched {
                self.rtcp_remote = rtcp_address(source, self.rtcp_mux);
            }
        }
        self.rtcp.handle_rtp(now, packet.header.ssrc, packet.header.sequence, packet.header.timestamp, !is_event);
        if is_event {
            let digit = self.events.handle_packet(packet.header.timestamp, packet.payload);
            return Ok(digit.map_or(Received::Nothing, Received::Digit));
        }
        let (seq, ts, marker) = (packet.header.sequence, packet.header.timestamp, packet.header.marker);
        let payload = packet.payload.to_vec();
        if handling.echo {
            self.send_payload(&payload).await;
        }
        // One copy of the payload, a second only when it is both forwarded and queued.
        let forwarded = match (handling.forward, handling.queue) {
            (true, true) => {
                self.queue(now, seq, ts, marker, payload.clone());
                Some(payload)
            }
            (true, false) => Some(payload),
            (false, true) => {
                self.queue(now, seq, ts, marker, payload);
                None
            }
            (false, false) => None,
        };
        Ok(Received::Audio(forwarded))
    }

    fn queue(&mut self, now: Instant, seq: u16, ts: u32, marker: bool, payload: Vec<u8>) {
        let jitter = self.jitter.get_or_insert_with(|| {
            // G.711: one byte per sample at 8 kHz.
            let millis = (payload.len() as u64 / 8).clamp(10, 60);
            JitterBuffer::new(JitterConfig {
                frame_duration: std::time::Duration::from_millis(millis),
                ..JitterConfig::default()
            })
        });
        if !payload.is_empty() {
            self.frame_samples = payload.len();
        }
        jitter.handle_packet_marked(now, seq, ts, marker, payload);
    }

    /// The next 20 ms of received audio due at `now`, decoded (silence and lost frames as
    /// zeros), plus the in-band digits found in it. Call once per 20 ms tick.
    pub fn take_audio(&mut self, now: Instant, samples: &mut Vec<i16>) -> Vec<char> {
        samples.clear();
        if let Some(jitter) = self.jitter.as_mut() {
            let mut pcm = Vec::with_capacity(self.frame_samples);
            while let Some(playout) = jitter.poll_frame(now) {
                pcm.clear();
                match playout {
                    Playout::Frame(bytes) => match self.codec {
                        Codec::Pcma => g711::decode_alaw(&bytes, &mut pcm),
                        _ => g711::decode_ulaw(&bytes, &mut pcm),
                    },
                    Playout::Lost | Playout::Silence => pcm.resize(self.frame_samples, 0),
                }
                self.decoded.extend(pcm.iter().copied());
            }
        }
        // Stay in step with the sender: never hold more than three ticks of decoded audio.
        let excess = self.decoded.len().saturating_sub(3 * FRAME_SAMPLES);
        self.decoded.drain(..excess);
        let take = self.decoded.len().min(FRAME_SAMPLES);
        samples.extend(self.decoded.drain(..take));
        samples.resize(FRAME_SAMPLES, 0);
        match self.inband.as_mut() {
            Some(detector) if !samples.is_empty() => detector.push(samples),
            _ => Vec::new(),
        }
    }

    /// Queues `digits` to send as RFC 4733 telephone-events (others are skipped); false when
    /// the peer did not negotiate events.
    pub fn queue_digits(&mut self, digits: &str) -> bool {
        if self.dtmf_payload_type.is_none() {
            return false;
        }
        self.dtmf_out.extend(digits.chars().filter(|d| crate::media::dtmf::digit_event(*d).is_some()));
        true
    }

    /// One 20 ms tick of outgoing DTMF: sends the next event packet and returns true while a
    /// digit is being sent (audio is suppressed meanwhile, as RFC 4733 §2.5.1.1 expects).
    pub async fn dtmf_tick(&mut self) -> bool {
        let (Some(pt), Some(sending)) = (self.dtmf_payload_type, self.next_event()) else { return false };
        let last_tick = EVENT_TICKS + END_TICKS + GAP_TICKS;
        if sending.ticks > EVENT_TICKS + END_TICKS {
            // The gap after the digit: its timestamps continue the audio clock.
            if sending.ticks == last_tick {
                self.timestamp = sending.timestamp.wrapping_add(u32::from(last_tick) * FRAME_SAMPLES as u32);
                self.dtmf_now = None;
            }
            return true;
        }
        let end = sending.ticks > EVENT_TICKS;
        let duration = FRAME_SAMPLES as u16 * sending.ticks.min(EVENT_TICKS);
        let event = crate::media::dtmf::TelephoneEvent { event: sending.code, end, volume: 10, duration };
        let header = RtpHeader {
            marker: sending.ticks == 1,
            payload_type: pt,
            sequence: self.seq,
            timestamp: sending.timestamp,
            ssrc: self.ssrc,
            csrc: Vec::new(),
            extension: None,
        };
        self.out.clear();
        let payload = event.to_bytes();
        if RtpPacket::write(&header, &payload, &mut self.out).is_ok() {
            self.seq = self.seq.wrapping_add(1);
            if self.socket.send_to(&self.out, self.remote).await.is_ok() {
                self.stats.packets_out += 1;
                self.rtcp.on_sent(Instant::now(), sending.timestamp, payload.len());
            }
        }
        true
    }

    /// Advances the event being sent by a tick, starting the next queued digit if none is.
    fn next_event(&mut self) -> Option<SendingEvent> {
        if self.dtmf_now.is_none() {
            let digit = self.dtmf_out.pop_front()?;
            let code = crate::media::dtmf::digit_event(digit)?;
            self.dtmf_now = Some(SendingEvent { code, timestamp: self.timestamp, ticks: 0 });
        }
        let sending = self.dtmf_now.as_mut()?;
        sending.ticks += 1;
        Some(*sending)
    }

    /// Encodes and sends one frame of 8 kHz samples (any length; 160 for 20 ms).
    pub async fn send_samples(&mut self, samples: &[i16]) {
        let mut payload = Vec::with_capacity(samples.len());
        match self.codec {
            Codec::Pcma => g711::encode_alaw(samples, &mut payload),
            _ => g711::encode_ulaw(samples, &mut payload),
        }
        self.send_payload(&payload).await;
    }

    /// Sends an encoded payload of our codec as the next packet of our stream (forwarding
    /// another leg's audio without decoding it).
    pub async fn send_payload(&mut self, payload: &[u8]) {
        if self.remote.ip().is_unspecified() || self.remote.port() == 0 {
            return; // held (c=0.0.0.0) or no address yet
        }
        if self.dtmf_now.is_some() {
            return; // a digit is being sent in place of the audio
        }
        self.out.clear();
        let header = RtpHeader {
            marker: std::mem::take(&mut self.marker_next),
            payload_type: self.payload_type,
            sequence: self.seq,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            csrc: Vec::new(),
            extension: None,
        };
        if RtpPacket::write(&header, payload, &mut self.out).is_err() {
            return;
        }
        self.seq = self.seq.wrapping_add(1);
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(payload.len() as u32);
        match self.socket.send_to(&self.out, self.remote).await {
            Ok(_) => {
                self.stats.packets_out += 1;
                self.rtcp.on_sent(Instant::now(), timestamp, payload.len());
            }
            Err(e) => tracing::trace!(remote = %self.remote, error = %e, "RTP: send failed"),
        }
    }

    /// Sends the RTCP report when one is due at `now`: a comparison per 20 ms tick, a packet
    /// every ~5 s. Nothing goes out while the peer's address is unknown or on hold.
    pub fn rtcp_tick(&mut self, now: Instant) {
        if now < self.rtcp.poll_timeout() {
            return;
        }
        self.rtcp_out.clear();
        if self.rtcp.poll_transmit(now, &mut self.rtcp_out) {
            self.send_rtcp();
        }
    }

    /// Sends `rtcp_out` from the RTCP socket (or the RTP one with mux), if the peer has an address.
    fn send_rtcp(&self) {
        if self.rtcp_remote.ip().is_unspecified() || self.rtcp_remote.port() == 0 {
            return;
        }
        let socket = if self.rtcp_mux { &self.socket } else { &self.rtcp_socket };
        if let Err(e) = socket.try_send_to(&self.rtcp_out, self.rtcp_remote) {
            tracing::trace!(remote = %self.rtcp_remote, error = %e, "RTCP: send failed");
        }
    }
}

/// The leg ends with it: tell the peer by an RTCP BYE (§6.6), so its statistics for our
/// stream close now rather than after its timeout.
impl Drop for RtpLeg {
    fn drop(&mut self) {
        if self.stats.packets_in == 0 && self.stats.packets_out == 0 {
            return; // no media ever flowed (a refused or unanswered call): nothing to close
        }
        self.rtcp_out.clear();
        self.rtcp.write_bye(Instant::now(), &mut self.rtcp_out);
        self.send_rtcp();
    }
}
