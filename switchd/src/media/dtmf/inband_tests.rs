//! Tests of the in-band detector on synthesised tones, noise and G.711-coded audio.

use super::*;
use crate::media::g711;

const ALL: &str = "123A456B789C*0#D";

/// Samples in `ms` milliseconds at 8 kHz.
fn ms(ms: usize) -> usize {
    ms * 8
}

/// Peak amplitude of a sine at `dbm0`.
fn amplitude(dbm0: f32) -> f32 {
    DBM0_AMPLITUDE * 10f32.powf(dbm0 / 20.0)
}

/// Deterministic white noise (xorshift32), uniform, with mean square `level`.
struct Noise {
    state: u32,
    half_width: f32,
}

impl Noise {
    fn new(seed: u32, dbm0: f32) -> Self {
        // A sine of amplitude A has mean square A²/2; uniform noise on ±w has w²/3.
        let mean_square = amplitude(dbm0).powi(2) / 2.0;
        Noise { state: seed.max(1), half_width: (3.0 * mean_square).sqrt() }
    }

    fn next(&mut self) -> f32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        (self.state as f32 / u32::MAX as f32 * 2.0 - 1.0) * self.half_width
    }
}

/// Builds audio piece by piece: tone pairs at given levels, silence, noise.
struct Signal {
    samples: Vec<f32>,
}

impl Signal {
    fn new() -> Self {
        Signal { samples: Vec::new() }
    }

    fn tones(mut self, freqs: &[(f32, f32)], len: usize) -> Self {
        let start = self.samples.len();
        self.samples.extend((0..len).map(|i| {
            let t = (start + i) as f32 / SAMPLE_RATE;
            freqs.iter().map(|&(f, dbm0)| amplitude(dbm0) * (2.0 * PI * f * t).sin()).sum::<f32>()
        }));
        self
    }

    fn digit(self, d: char, dbm0: f32, len: usize) -> Self {
        let (r, c) = position(d);
        self.tones(&[(ROWS[r], dbm0), (COLS[c], dbm0)], len)
    }

    fn silence(mut self, len: usize) -> Self {
        self.samples.extend(std::iter::repeat_n(0.0, len));
        self
    }

    fn noise(mut self, seed: u32, dbm0: f32) -> Self {
        let mut n = Noise::new(seed, dbm0);
        self.samples.iter_mut().for_each(|s| *s += n.next());
        self
    }

    fn pcm(&self) -> Vec<i16> {
        self.samples.iter().map(|&s| s.round().clamp(-32768.0, 32767.0) as i16).collect()
    }

    /// The audio after an A-law encode/decode, as it arrives from a carrier.
    fn through_alaw(&self) -> Vec<i16> {
        let mut bytes = Vec::new();
        g711::encode_alaw(&self.pcm(), &mut bytes);
        let mut out = Vec::new();
        g711::decode_alaw(&bytes, &mut out);
        out
    }
}

fn position(d: char) -> (usize, usize) {
    (0..16).map(|i| (i / 4, i % 4)).find(|&(r, c)| KEYPAD[r][c] == d).expect("a DTMF digit")
}

/// Runs the detector over `pcm` in 20 ms frames, as the engine will.
fn detect(pcm: &[i16]) -> String {
    let mut det = InbandDetector::new();
    pcm.chunks(160).flat_map(|frame| det.push(frame)).collect()
}

/// All 16 digits, 100 ms tone and 100 ms pause each, after a lead-in of `offset` samples.
fn all_digits(dbm0: f32, offset: usize) -> Signal {
    ALL.chars().fold(Signal::new().silence(offset), |s, d| s.digit(d, dbm0, ms(100)).silence(ms(100)))
}

#[test]
fn every_digit_once_at_minus_10_dbm0() {
    assert_eq!(detect(&all_digits(-10.0, 0).pcm()), ALL);
}

#[test]
fn every_digit_once_at_minus_25_dbm0() {
    assert_eq!(detect(&all_digits(-25.0, 37).pcm()), ALL);
}

#[test]
fn every_digit_once_with_noise() {
    for (level, seed) in [(-10.0, 7), (-25.0, 99)] {
        let signal = all_digits(level, 11).noise(seed, level - 20.0);
        assert_eq!(detect(&signal.pcm()), ALL, "tones at {level} dBm0, noise 20 dB below");
    }
}

#[test]
fn every_digit_once_through_alaw() {
    for level in [-10.0, -25.0] {
        assert_eq!(detect(&all_digits(level, 53).through_alaw()), ALL, "clean at {level} dBm0");
        let noisy = all_digits(level, 53).noise(1234, level - 20.0);
        assert_eq!(detect(&noisy.through_alaw()), ALL, "noisy at {level} dBm0");
    }
}

#[test]
fn frame_size_does_not_matter() {
    let pcm = all_digits(-15.0, 0).pcm();
    for chunk in [1, 7, 105, 160, 1000] {
        let mut det = InbandDetector::new();
        let got: String = pcm.chunks(chunk).flat_map(|f| det.push(f)).collect();
        assert_eq!(got, ALL, "chunks of {chunk}");
    }
}

#[test]
fn a_single_sine_is_not_a_digit() {
    for f in [1000.0, 697.0, 1209.0, 440.0] {
        let s = Signal::new().tones(&[(f, -10.0)], ms(500));
        assert_eq!(detect(&s.pcm()), "", "{f} Hz");
    }
}

#[test]
fn white_noise_is_not_a_digit() {
    for (seed, level) in [(1, -10.0), (2, -20.0), (3, 0.0)] {
        let s = Signal::new().silence(ms(2000)).noise(seed, level);
        assert_eq!(detect(&s.pcm()), "", "noise at {level} dBm0");
    }
}

#[test]
fn twelve_db_twist_is_not_a_digit() {
    let (r, c) = position('5');
    let normal = Signal::new().tones(&[(ROWS[r], -10.0), (COLS[c], -22.0)], ms(200));
    assert_eq!(detect(&normal.pcm()), "", "column 12 dB weaker");
    let reverse = Signal::new().tones(&[(ROWS[r], -22.0), (COLS[c], -10.0)], ms(200));
    assert_eq!(detect(&reverse.pcm()), "", "row 12 dB weaker");
}

#[test]
fn allowed_twist_is_a_digit() {
    let (r, c) = position('5');
    let normal = Signal::new().tones(&[(ROWS[r], -10.0), (COLS[c], -17.0)], ms(200));
    assert_eq!(detect(&normal.pcm()), "5", "normal twist 7 dB");
    let reverse = Signal::new().tones(&[(ROWS[r], -13.0), (COLS[c], -10.0)], ms(200));
    assert_eq!(detect(&reverse.pcm()), "5", "reverse twist 3 dB");
}

#[test]
fn too_quiet_is_not_a_digit() {
    assert_eq!(detect(&Signal::new().digit('7', -40.0, ms(200)).pcm()), "");
}

#[test]
fn a_held_digit_is_reported_once() {
    let s = Signal::new().silence(ms(30)).digit('8', -10.0, ms(200)).silence(ms(100));
    assert_eq!(detect(&s.pcm()), "8");
    let long = Signal::new().digit('#', -20.0, ms(3000)).noise(5, -40.0);
    assert_eq!(detect(&long.pcm()), "#");
}

#[test]
fn two_presses_with_a_50_ms_gap_are_both_reported() {
    for offset in (0..BLOCK_LEN).step_by(13) {
        let s = Signal::new().silence(offset).digit('3', -10.0, ms(60)).silence(ms(50)).digit('3', -10.0, ms(60));
        assert_eq!(detect(&s.pcm()), "33", "offset {offset}");
    }
}

#[test]
fn a_40_ms_tone_is_reported_at_any_offset() {
    for offset in 0..BLOCK_LEN {
        let s = Signal::new().silence(offset).digit('0', -20.0, ms(40)).silence(ms(40));
        assert_eq!(detect(&s.pcm()), "0", "offset {offset}");
    }
}

#[test]
fn a_20_ms_burst_is_not_reported_at_any_offset() {
    for offset in 0..BLOCK_LEN {
        let s = Signal::new().silence(offset).digit('9', -10.0, ms(20)).silence(ms(100));
        assert_eq!(detect(&s.pcm()), "", "offset {offset}");
    }
}

#[test]
fn frequencies_off_by_1_5_percent_are_accepted() {
    for d in ALL.chars() {
        let (r, c) = position(d);
        for (fr, fc) in [(1.015, 1.015), (0.985, 0.985), (1.015, 0.985), (0.985, 1.015)] {
            let s = Signal::new().tones(&[(ROWS[r] * fr, -10.0), (COLS[c] * fc, -10.0)], ms(100));
            assert_eq!(detect(&s.pcm()), d.to_string(), "{d} scaled {fr}/{fc}");
        }
    }
}

#[test]
fn frequencies_off_by_3_5_percent_are_rejected() {
    for d in ALL.chars() {
        let (r, c) = position(d);
        for f in [1.035, 0.965] {
            let s = Signal::new().tones(&[(ROWS[r] * f, -10.0), (COLS[c] * f, -10.0)], ms(100));
            assert_eq!(detect(&s.pcm()), "", "{d} scaled {f}");
        }
    }
}
