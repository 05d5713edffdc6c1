//! In-band DTMF detection (ITU-T Q.23/Q.24) with the Goertzel algorithm on 8 kHz linear audio.
//!
//! Audio is cut into blocks of 105 samples (13.1 ms): short enough that two consecutive full
//! blocks fit in a 40 ms tone and in a 40 ms pause, long enough (76 Hz resolution) to separate
//! the row tones 73 Hz apart. A block holds a digit when all of these hold:
//! - each of the strongest row and column tones is above about −33 dBm0 (energy threshold);
//! - twist: the row tone at most 8 dB above the column tone (normal), at most 4 dB below it
//!   (reverse);
//! - relative peaks: every other DTMF frequency at least 6 dB below the weaker of the pair;
//! - the pair carries at least 80 % of the block's energy, which rejects speech, music and
//!   noise, and also blocks the tone only partly covers.
//!
//! A digit is reported once it holds for two consecutive blocks, and not again until two
//! consecutive blocks lack it; so a 20 ms burst (at best 76 % of each of two blocks) is never
//! reported, and a one-block dropout inside a long press does not double the digit. While a
//! digit is held, a looser test keeps it (its pair with half the energy), so that a tone off
//! frequency by the 1.5 % Q.24 allows, whose level beats from block to block, stays one digit.

use std::f32::consts::PI;

/// Sample rate the detector is tuned for; G.711 audio decoded to 16-bit linear.
pub const SAMPLE_RATE: f32 = 8000.0;
/// Samples per analysis block (13.125 ms).
pub const BLOCK_LEN: usize = 105;
/// Row (low group) frequencies in Hz.
const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high group) frequencies in Hz.
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Keypad layout: `KEYPAD[row][col]`.
const KEYPAD: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];
/// Peak amplitude of a 0 dBm0 sine in 16-bit linear (A-law overload is +3.14 dBm0 at 32768).
const DBM0_AMPLITUDE: f32 = 22_827.0;
/// Minimum level per tone, in dBm0.
const MIN_LEVEL_DBM0: f32 = -33.0;
/// Largest row-over-column level ratio (normal twist), 8 dB as a power ratio.
const NORMAL_TWIST: f32 = 6.31;
/// Largest column-over-row level ratio (reverse twist), 4 dB as a power ratio.
const REVERSE_TWIST: f32 = 2.51;
/// Every other DTMF frequency must be this far (power ratio, 6 dB) below the weaker tone.
const RELATIVE_PEAK: f32 = 3.98;
/// Share of the block's energy that the two tones must carry to start a digit.
const MIN_TONE_SHARE: f32 = 0.8;
/// Share that keeps a reported digit going: lower, so that a tone a little off frequency,
/// whose level beats from block to block, is not cut in two (hysteresis).
const HOLD_TONE_SHARE: f32 = 0.5;
/// Consecutive blocks without the reported digit that end it.
const GAP_BLOCKS: u8 = 2;

/// A key as (row, column) indices into [`KEYPAD`].
type Key = (usize, usize);

/// Offsets, as frequency ratios, of the filters that together measure one DTMF tone: the
/// nominal frequency and 1 % either side, so a tone off by the 1.5 % Q.24 allows still shows
/// nearly its full level.
const BIN_RATIOS: [f32; 3] = [0.99, 1.0, 1.01];

/// One DTMF tone's level: the strongest of three Goertzel filters around its frequency.
#[derive(Debug, Clone, Copy)]
struct Tone {
    bins: [Goertzel; 3],
}

impl Tone {
    fn new(freq: f32) -> Self {
        Tone { bins: BIN_RATIOS.map(|r| Goertzel::new(freq * r)) }
    }

    fn push(&mut self, x: f32) {
        self.bins.iter_mut().for_each(|g| g.push(x));
    }

    fn take_level(&mut self) -> f32 {
        self.bins.iter_mut().map(Goertzel::take_level).fold(0.0, f32::max)
    }
}

/// One Goertzel filter: the DFT power at one frequency, updated sample by sample.
#[derive(Debug, Clone, Copy)]
struct Goertzel {
    coeff: f32,
    s1: f32,
    s2: f32,
}

impl Goertzel {
    fn new(freq: f32) -> Self {
        Goertzel { coeff: 2.0 * (2.0 * PI * freq / SAMPLE_RATE).cos(), s1: 0.0, s2: 0.0 }
    }

    fn push(&mut self, x: f32) {
        let s0 = x + self.coeff * self.s1 - self.s2;
        self.s2 = self.s1;
        self.s1 = s0;
    }

    /// The mean-square level of the tone over the block (A²/2 for a sine of amplitude A),
    /// so it compares directly with the block's mean-square energy; resets the filter.
    fn take_level(&mut self) -> f32 {
        let power = self.s1 * self.s1 + self.s2 * self.s2 - self.coeff * self.s1 * self.s2;
        self.s1 = 0.0;
        self.s2 = 0.0;
        let n = BLOCK_LEN as f32;
        2.0 * power / (n * n)
    }
}

/// Finds in-band DTMF digits in a stream of 8 kHz 16-bit samples.
///
/// Feed the audio of one direction of one call, in order and without gaps, to
/// [`InbandDetector::push`] in chunks of any size (a 20 ms frame is typical); each digit comes
/// back once, in the call that completes its second block. The detector keeps only the filter
/// state of the unfinished block, so a new call needs a new detector.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    rows: [Tone; 4],
    cols: [Tone; 4],
    /// Sum of squares of the current block's samples.
    energy: f32,
    /// Samples in the current block so far.
    filled: usize,
    /// What the previous block held.
    last_block: Option<Key>,
    /// The key last reported, until [`GAP_BLOCKS`] blocks without it end it.
    reported: Option<Key>,
    /// Consecutive blocks in which the reported key did not hold.
    misses: u8,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl InbandDetector {
    pub fn new() -> Self {
        InbandDetector {
            rows: ROWS.map(Tone::new),
            cols: COLS.map(Tone::new),
            energy: 0.0,
            filled: 0,
            last_block: None,
            reported: None,
            misses: 0,
        }
    }

    /// Analyses `samples`; returns the digits that became certain in them, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<char> {
        let mut digits = Vec::new();
        for &s in samples {
            let x = f32::from(s);
            self.rows.iter_mut().chain(self.cols.iter_mut()).for_each(|g| g.push(x));
            self.energy += x * x;
            self.filled += 1;
            if self.filled == BLOCK_LEN {
                digits.extend(self.end_block());
            }
        }
        digits
    }

    /// Classifies the finished block and applies the two-block debounce.
    fn end_block(&mut self) -> Option<char> {
        let rows = self.rows.each_mut().map(Tone::take_level);
        let cols = self.cols.each_mut().map(Tone::take_level);
        let energy = self.energy / BLOCK_LEN as f32;
        self.energy = 0.0;
        self.filled = 0;
        if let Some(key) = self.reported {
            self.track_hold(holds(key, &rows, &cols, energy));
        }
        let block = classify(&rows, &cols, energy);
        let previous = std::mem::replace(&mut self.last_block, block);
        match block {
            Some(key) if previous == Some(key) && self.reported != Some(key) => {
                self.reported = Some(key);
                self.misses = 0;
                Some(KEYPAD[key.0][key.1])
            }
            _ => None,
        }
    }

    /// Counts blocks without the reported key; enough of them in a row end the press.
    fn track_hold(&mut self, held: bool) {
        self.misses = if held { 0 } else { self.misses.saturating_add(1) };
        if self.misses >= GAP_BLOCKS {
            self.reported = None;
        }
    }
}

/// Index and level of the strongest of four tones.
fn strongest(levels: &[f32; 4]) -> (usize, f32) {
    levels.iter().copied().enumerate().fold((0, f32::MIN), |best, (i, l)| if l > best.1 { (i, l) } else { best })
}

/// The minimum mean-square level of each tone.
fn min_level() -> f32 {
    let min_amplitude = DBM0_AMPLITUDE * 10f32.powf(MIN_LEVEL_DBM0 / 20.0);
    min_amplitude * min_amplitude / 2.0
}

/// Whether an already reported key is still sounding: both its tones loud enough and carrying
/// [`HOLD_TONE_SHARE`] of the energy.
fn holds(key: Key, rows: &[f32; 4], cols: &[f32; 4], energy: f32) -> bool {
    let (row, col) = (rows[key.0], cols[key.1]);
    row >= min_level() && col >= min_level() && row + col >= HOLD_TONE_SHARE * energy
}

/// The key one block holds, if it passes every check; levels and energy are mean squares.
fn classify(rows: &[f32; 4], cols: &[f32; 4], energy: f32) -> Option<Key> {
    let (r, row) = strongest(rows);
    let (c, col) = strongest(cols);
    if row < min_level() || col < min_level() {
        return None;
    }
    if row > col * NORMAL_TWIST || col > row * REVERSE_TWIST {
        return None;
    }
    let weaker = row.min(col);
    let others = rows.iter().enumerate().filter(|&(i, _)| i != r).chain(cols.iter().enumerate().filter(|&(i, _)| i != c));
    if others.map(|(_, &l)| l).any(|l| l * RELATIVE_PEAK > weaker) {
        return None;
    }
    if row + col < MIN_TONE_SHARE * energy {
        return None;
    }
    Some((r, c))
}

#[cfg(test)]
#[path = "inband_tests.rs"]
mod tests;
