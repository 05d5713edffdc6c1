//! Desk audio (design decision 7): Opus frames carried in QUIC datagrams on the desk connection.
//!
//! Two layers, both sans-IO:
//! - [`AudioFrame`]: the datagram's binary layout (call id, sequence number, timestamp, one Opus
//!   packet). The desk client sends and receives it with `DeskClient::send_audio` /
//!   `DeskClient::recv_audio`; switchd with its desk server's audio hook.
//! - [`OpusEncoderVoip`] / [`OpusDecoderVoip`]: libopus set up for telephone speech: mono, VOIP
//!   application, [`FRAME_MS`] frames, in-band FEC. switchd transcodes between these and G.711 at
//!   8 kHz; the desktops run them at their sound card's rate.
//!
//! Ordering, loss and jitter are the receiver's business: datagrams are unreliable and may be
//! reordered, so each receiving side runs a jitter buffer keyed on `seq` and `timestamp`.

use thiserror::Error;

/// Audio per frame and per datagram, in milliseconds.
pub const FRAME_MS: u32 = 20;

/// The timestamp clock of [`AudioFrame::timestamp`]: 48 kHz whatever rate the codec runs at
/// (as for Opus over RTP, RFC 7587), so both ends count alike. One frame advances it by
/// [`TIMESTAMP_TICKS_PER_FRAME`].
pub const TIMESTAMP_CLOCK_HZ: u32 = 48_000;

/// Timestamp advance per [`FRAME_MS`] frame.
pub const TIMESTAMP_TICKS_PER_FRAME: u32 = TIMESTAMP_CLOCK_HZ / 1000 * FRAME_MS;

/// The largest Opus packet (RFC 6716 §3.4, R2): longer payloads are refused.
pub const MAX_OPUS_PACKET: usize = 1275;

/// The first byte of an audio datagram: layout version 1. Other datagram kinds (and later
/// layouts of this one) take other values, so a receiver can tell them apart by this byte.
pub const DATAGRAM_AUDIO_V1: u8 = 0x01;

/// Bytes before the Opus payload.
pub const AUDIO_HEADER_LEN: usize = 15;

/// The QUIC datagram send and receive buffers of a desk connection, in bytes, on both ends. One
/// call is 50 frames/s of roughly 60–100 bytes at 24 kbit/s, so this holds seconds of audio:
/// enough to ride out a scheduling hiccup, small enough that stale audio is dropped (quinn drops
/// the oldest datagram when a buffer is full) instead of queueing latency.
pub const DATAGRAM_BUFFER_BYTES: usize = 64 * 1024;

/// One Opus frame of one call, as carried in one QUIC datagram.
///
/// Layout (all integers big-endian, 15-byte header, no padding):
///
/// | offset | size | field                                   |
/// |--------|------|-----------------------------------------|
/// | 0      | 1    | kind and version: [`DATAGRAM_AUDIO_V1`] |
/// | 1      | 8    | `call`: the call id                     |
/// | 9      | 2    | `seq`: sequence number, wraps at 65535  |
/// | 11     | 4    | `timestamp`: 48 kHz ticks, wraps        |
/// | 15     | 1–1275 | `payload`: exactly one Opus packet    |
///
/// The payload runs to the end of the datagram (QUIC keeps datagram boundaries), so it has no
/// length field. An empty payload is refused: to a decoder it would mean "lost", which the
/// receiver already infers from a missing sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// The call this audio belongs to (switchd's call id).
    pub call: u64,
    /// Incremented by one per frame sent on this call, wrapping; gaps mean loss.
    pub seq: u16,
    /// Capture time of the first sample in [`TIMESTAMP_CLOCK_HZ`] ticks, wrapping; advances by
    /// [`TIMESTAMP_TICKS_PER_FRAME`] per frame, more across silence that was not sent.
    pub timestamp: u32,
    /// One Opus packet (1 to [`MAX_OPUS_PACKET`] bytes).
    pub payload: Vec<u8>,
}

/// Why a datagram is not an [`AudioFrame`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AudioFrameError {
    /// The datagram had no bytes at all.
    #[error("empty datagram")]
    Empty,
    /// The first byte names another datagram kind or a layout version this build does not know.
    #[error("not an audio datagram of a known version (kind byte {0:#04x})")]
    UnknownKind(u8),
    /// Shorter than the header plus a one-byte payload.
    #[error("audio datagram truncated: {len} bytes, at least {} needed", AUDIO_HEADER_LEN + 1)]
    Truncated { len: usize },
    /// The payload is longer than any Opus packet can be.
    #[error("audio payload of {len} bytes exceeds the Opus maximum of {MAX_OPUS_PACKET}")]
    PayloadTooLarge { len: usize },
}

impl AudioFrame {
    /// Appends the datagram bytes to `out`. Does not check the payload: a frame built with an
    /// empty or oversized payload encodes, and the receiver refuses it (as [`AudioFrame::parse`]
    /// would here).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(AUDIO_HEADER_LEN + self.payload.len());
        out.push(DATAGRAM_AUDIO_V1);
        out.extend_from_slice(&self.call.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.payload);
    }

    /// The datagram bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(AUDIO_HEADER_LEN + self.payload.len());
        self.encode(&mut out);
        out
    }

    /// Reads one datagram. Checks the kind byte first, so a datagram of another kind is reported
    /// as [`AudioFrameError::UnknownKind`] whatever its length.
    pub fn parse(datagram: &[u8]) -> Result<AudioFrame, AudioFrameError> {
        let (&kind, rest) = datagram.split_first().ok_or(AudioFrameError::Empty)?;
        if kind != DATAGRAM_AUDIO_V1 {
            return Err(AudioFrameError::UnknownKind(kind));
        }
        let truncated = || AudioFrameError::Truncated { len: datagram.len() };
        let (call, rest) = rest.split_first_chunk::<8>().ok_or_else(truncated)?;
        let (seq, rest) = rest.split_first_chunk::<2>().ok_or_else(truncated)?;
        let (timestamp, payload) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
        if payload.is_empty() {
            return Err(truncated());
        }
        if payload.len() > MAX_OPUS_PACKET {
            return Err(AudioFrameError::PayloadTooLarge { len: payload.len() });
        }
        Ok(AudioFrame {
            call: u64::from_be_bytes(*call),
            seq: u16::from_be_bytes(*seq),
            timestamp: u32::from_be_bytes(*timestamp),
            payload: payload.to_vec(),
        })
    }
}

/// Opus encoding and decoding failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpusError {
    /// Opus runs at 8, 12, 16, 24 or 48 kHz only.
    #[error("Opus does not run at {0} Hz (8000, 12000, 16000, 24000 or 48000)")]
    UnsupportedSampleRate(u32),
    /// The encoder takes exactly one [`FRAME_MS`] frame per call.
    #[error("expected one 20 ms frame of {expected} samples, got {got}")]
    FrameLength { expected: usize, got: usize },
    /// An empty packet is not audio; use [`OpusDecoderVoip::conceal`] for a lost one.
    #[error("empty Opus packet")]
    EmptyPacket,
    /// libopus refused (a corrupt packet, or a setting it does not take).
    #[error("libopus {op}: {source}")]
    Codec {
        op: &'static str,
        #[source]
        source: opus::Error,
    },
}

fn codec(op: &'static str) -> impl FnOnce(opus::Error) -> OpusError {
    move |source| OpusError::Codec { op, source }
}

/// Samples in one [`FRAME_MS`] frame at `sample_rate`, after checking that Opus runs at it.
fn frame_samples(sample_rate: u32) -> Result<usize, OpusError> {
    match sample_rate {
        8000 | 12000 | 16000 | 24000 | 48000 => Ok((sample_rate / 1000 * FRAME_MS) as usize),
        other => Err(OpusError::UnsupportedSampleRate(other)),
    }
}

/// The bitrate aimed at: wideband speech with room for the FEC copy.
pub const OPUS_BITRATE: i32 = 24_000;

/// The packet loss the encoder plans its FEC for, in percent.
pub const OPUS_EXPECTED_LOSS_PERCENT: i32 = 5;

/// A mono Opus encoder for speech: VOIP application, [`OPUS_BITRATE`], in-band FEC for
/// [`OPUS_EXPECTED_LOSS_PERCENT`] loss, one [`FRAME_MS`] frame per packet.
pub struct OpusEncoderVoip {
    inner: opus::Encoder,
    frame_samples: usize,
}

impl OpusEncoderVoip {
    /// An encoder for 16-bit mono PCM at `sample_rate` (8000, 16000 or 48000 in practice; any
    /// rate Opus takes is accepted).
    pub fn new(sample_rate: u32) -> Result<Self, OpusError> {
        let frame_samples = frame_samples(sample_rate)?;
        let mut inner = opus::Encoder::new(sample_rate, opus::Channels::Mono, opus::Application::Voip)
            .map_err(codec("encoder create"))?;
        inner.set_bitrate(opus::Bitrate::Bits(OPUS_BITRATE)).map_err(codec("set bitrate"))?;
        // FEC lets the receiver rebuild a lost frame from the next packet; libopus only adds it
        // when told to expect loss.
        inner.set_inband_fec(true).map_err(codec("set inband FEC"))?;
        inner.set_packet_loss_perc(OPUS_EXPECTED_LOSS_PERCENT).map_err(codec("set packet loss"))?;
        inner.set_signal(opus::Signal::Voice).map_err(codec("set signal"))?;
        Ok(Self { inner, frame_samples })
    }

    /// Samples per frame at this encoder's rate.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Encodes exactly one [`FRAME_MS`] frame (`frame_samples()` samples) into one Opus packet
    /// of at most [`MAX_OPUS_PACKET`] bytes.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, OpusError> {
        if pcm.len() != self.frame_samples {
            return Err(OpusError::FrameLength { expected: self.frame_samples, got: pcm.len() });
        }
        self.inner.encode_vec(pcm, MAX_OPUS_PACKET).map_err(codec("encode"))
    }
}

/// The longest audio one Opus packet can hold (120 ms), which bounds a decode's output.
const MAX_PACKET_MS: u32 = 120;

/// A mono Opus decoder with packet loss concealment and FEC recovery. It accepts any Opus
/// packet (other frame sizes, bandwidths, or stereo, which it downmixes), not only ours.
pub struct OpusDecoderVoip {
    inner: opus::Decoder,
    frame_samples: usize,
    sample_rate: u32,
}

impl OpusDecoderVoip {
    /// A decoder producing 16-bit mono PCM at `sample_rate` (8000, 16000 or 48000 in practice;
    /// any rate Opus takes is accepted), whatever rate the sender encoded at.
    pub fn new(sample_rate: u32) -> Result<Self, OpusError> {
        let frame_samples = frame_samples(sample_rate)?;
        let inner = opus::Decoder::new(sample_rate, opus::Channels::Mono).map_err(codec("decoder create"))?;
        Ok(Self { inner, frame_samples, sample_rate })
    }

    /// Samples per [`FRAME_MS`] frame at this decoder's rate.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Decodes one packet into the samples it holds (one frame for packets from
    /// [`OpusEncoderVoip`]). A corrupt packet is an error and leaves the decoder usable.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, OpusError> {
        if packet.is_empty() {
            return Err(OpusError::EmptyPacket);
        }
        let mut pcm = vec![0i16; (self.sample_rate / 1000 * MAX_PACKET_MS) as usize];
        let n = self.inner.decode(packet, &mut pcm, false).map_err(codec("decode"))?;
        pcm.truncate(n);
        Ok(pcm)
    }

    /// One [`FRAME_MS`] frame standing in for a lost packet (libopus's packet loss
    /// concealment: it extrapolates the last audio and fades out over repeated losses). Always a
    /// full frame: should libopus fail, the frame is silence.
    pub fn conceal(&mut self) -> Vec<i16> {
        let mut pcm = vec![0i16; self.frame_samples];
        if let Err(e) = self.inner.decode(&[], &mut pcm, false) {
            tracing::debug!(error = %e, "Opus concealment failed; playing silence");
            pcm.fill(0);
        }
        pcm
    }

    /// Rebuilds the lost frame just before `next_packet` from the FEC data in `next_packet`
    /// (one [`FRAME_MS`] frame); where `next_packet` has none, libopus conceals instead. Then
    /// decode `next_packet` itself as usual with [`OpusDecoderVoip::decode`].
    pub fn decode_fec(&mut self, next_packet: &[u8]) -> Result<Vec<i16>, OpusError> {
        if next_packet.is_empty() {
            return Err(OpusError::EmptyPacket);
        }
        // With FEC the output length must be exactly the lost duration.
        let mut pcm = vec![0i16; self.frame_samples];
        let n = self.inner.decode(next_packet, &mut pcm, true).map_err(codec("decode FEC"))?;
        pcm.truncate(n);
        Ok(pcm)
    }
}

#[cfg(test)]
#[path = "audio_tests.rs"]
mod tests;
