//! Media primitives for the telephony engine: the pure, sans-IO parts (design decisions 2 and 5).
//!
//! Here now:
//! - [`g711`]: A-law (PCMA, what Chinese carriers send) and µ-law (PCMU) companding.
//! - [`rtp`]: RFC 3550 RTP packet parsing and writing, sequence-number extension, and the
//!   RFC 5761 test that tells RTCP from RTP on a shared port.
//! - [`dtmf`]: RFC 4733 telephone-events (payload codec and a once-per-event receiver) and an
//!   in-band Goertzel detector for callers whose carrier sends DTMF as audio.
//! - [`jitter`]: the adaptive jitter buffer, `(now, packet)` in and one frame per 20 ms tick out.
//! - [`wav`]: the recorder's file layer: 16-bit PCM WAV written as the call goes, synced about once
//!   a second, and repaired at start after a crash (blocking file I/O, the one part here that is).
//!
//! Nothing here reads a clock, owns a socket or spawns a task (`wav` aside, which writes files):
//! inputs are bytes and samples, outputs are values, so every piece is tested deterministically.
//!
//! Comes later, with the engine: the conference mixer, the recording policy that drives `wav`
//! (and repairs unfinished recordings at start), prompt playback, the espeak-ng TTS cache, and
//! Opus transcoding to the desktops.

pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod rtp;
pub mod wav;
