//! Media primitives for the telephony engine: the pure, sans-IO parts (design decisions 2 and 5).
//!
//! Here now:
//! - [`g711`]: A-law (PCMA, what Chinese carriers send) and µ-law (PCMU) companding.
//! - [`rtp`]: RFC 3550 RTP packet parsing and writing, sequence-number extension, and the
//!   RFC 5761 test that tells RTCP from RTP on a shared port.
//! - [`rtcp`]: RFC 3550 RTCP compound packets (SR, RR, SDES, BYE) and the per-leg session that
//!   keeps reception statistics, round-trip times and the randomised report schedule.
//! - [`dtmf`]: RFC 4733 telephone-events (payload codec and a once-per-event receiver) and an
//!   in-band Goertzel detector for callers whose carrier sends DTMF as audio.
//! - [`jitter`]: the adaptive jitter buffer, `(now, packet)` in and one frame per 20 ms tick out.
//! - [`wav`]: the recorder's file layer: 16-bit PCM WAV written as the call goes, synced about once
//!   a second, and repaired at start after a crash (blocking file I/O).
//! - [`prompt`]: what callers hear: administrator WAV prompts converted to 8 kHz mono, Mandarin
//!   TTS rendered by espeak-ng and cached on disk, beep tones, and the resampler behind them
//!   (blocking: file I/O and a child process).
//!
//! Nothing here reads a clock, owns a socket or spawns a task (`wav` and `prompt` aside, which
//! touch files and run espeak-ng): inputs are bytes and samples, outputs are values, so every
//! piece is tested deterministically.
//!
//! The engine (`crate::engine`) puts them to work: `rtp_leg` sends and receives per call,
//! the call task mixes (conference, supervisors), records and plays prompts, and `desk_leg`
//! transcodes to and from the desktops' Opus.

pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod prompt;
pub mod rtcp;
pub mod rtp;
pub mod wav;
