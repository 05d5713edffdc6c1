//! The audio the telephony engine plays to callers: administrator prompt files, Mandarin TTS
//! rendered by espeak-ng, and beep tones. Everything comes out as 8 kHz mono 16-bit samples, the
//! rate the G.711 legs run at.
//!
//! Two sources, both cached in memory (a small least-recently-used map per source):
//! - [`Prompts::file`]: a WAV the administrator put in `data_dir/prompts`. Any 16-bit PCM rate and
//!   channel count is accepted and converted (channels averaged, then [`resample`]d), so a file
//!   exported at 44.1 kHz stereo plays without the administrator knowing about telephony rates.
//! - [`Prompts::tts`]: text spoken by espeak-ng, rendered once and kept in `data_dir/cache/tts` as
//!   an 8 kHz mono WAV named by a hash of everything that shapes the audio, so a restart does not
//!   re-render and a changed voice or speed never plays stale audio.
//!
//! Both are blocking (file I/O, a child process): the engine calls them from `spawn_blocking`.

use std::collections::HashMap;
use std::fs;
use std::hash::Hash;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::media::wav::{self, WavFormat, WavWriter};

/// The rate of every sample this module returns.
pub const SAMPLE_RATE: u32 = 8000;

/// Bumped whenever the rendering pipeline changes (spelling rules, resampler, espeak arguments),
/// so cached files rendered the old way are no longer found and get rendered again.
const TTS_FORMAT_VERSION: &str = "rexian-tts-v1";
/// Entries kept in each in-memory cache: the IVR's prompts for a day fit several times over.
const MEMORY_CACHE_ENTRIES: usize = 64;
/// Longest text accepted for TTS, in bytes after digit spelling: about five minutes of speech.
pub const MAX_TTS_TEXT_BYTES: usize = 4096;
/// A render normally takes tens of milliseconds; beyond this espeak-ng is hung and is killed, so a
/// blocking-pool thread is never lost for good.
const TTS_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest administrator WAV read: about six minutes of 48 kHz stereo. Bounds the memory a stray
/// file (say, a whole recording dropped into the prompts folder) can take.
const MAX_PROMPT_FILE_BYTES: u64 = 64 << 20;
/// Longest prompt name (without `.wav`).
const MAX_NAME_LEN: usize = 64;
/// Stderr kept from a failed TTS run for the error message.
const STDERR_EXCERPT_CHARS: usize = 300;
/// Temporary cache files older than this are leftovers of a crash and are removed at start.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// How TTS is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtsConfig {
    /// The espeak-ng binary, looked up in `PATH` when not absolute.
    pub program: PathBuf,
    /// The espeak-ng voice. `cmn-latn-pinyin` reads Chinese characters correctly in espeak-ng
    /// 1.51; plain `cmn` reads pinyin tone digits as English numbers there.
    pub voice: String,
    /// Speaking rate in words per minute (espeak-ng `-s`).
    pub speed_wpm: u32,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            program: PathBuf::from("espeak-ng"),
            voice: "cmn-latn-pinyin".to_owned(),
            speed_wpm: 150,
        }
    }
}

/// Why a prompt cannot be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// The TTS program could not be started (not installed, or the configured path is wrong).
    #[error("TTS program {program} cannot be started (is espeak-ng installed?): {source}")]
    TtsMissing {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The TTS program ran but gave no usable audio.
    #[error("TTS program {program} failed: {reason}; stderr: {stderr:?}")]
    TtsFailed {
        program: PathBuf,
        /// Exit status, timeout, or what is wrong with its output.
        reason: String,
        /// The start of what it wrote to stderr.
        stderr: String,
    },
    /// Nothing to say (empty or only whitespace).
    #[error("TTS text is empty")]
    EmptyText,
    /// Text beyond [`MAX_TTS_TEXT_BYTES`].
    #[error("TTS text is {len} bytes after digit spelling, more than {max}")]
    TextTooLong { len: usize, max: usize },
    /// A prompt file that is not a WAV this module can convert.
    #[error(
        "prompt file {path}: {reason}; expected a 16-bit PCM WAV, ideally 8 kHz mono \
         (other rates and channel counts are converted)"
    )]
    BadWav { path: PathBuf, reason: String },
    /// A prompt name outside `[A-Za-z0-9_-]` (with an optional `.wav`): refused so that no name
    /// can reach outside the prompts folder (`../x`, `/etc/x`).
    #[error(
        "prompt name {name:?} is not allowed: use 1 to {MAX_NAME_LEN} letters, digits, '_' or '-', \
         optionally followed by .wav"
    )]
    NameNotAllowed { name: String },
    /// No such prompt file.
    #[error("prompt {name:?} not found: no file {path}")]
    NotFound { name: String, path: PathBuf },
    /// The file system refused: reading a prompt, writing the TTS cache.
    #[error("prompt file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PromptError + '_ {
    move |source| PromptError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where prompts come from. Cheap to clone: clones share the caches.
#[derive(Clone)]
pub struct Prompts {
    inner: Arc<Inner>,
}

struct Inner {
    prompts_dir: PathBuf,
    cache_dir: PathBuf,
    tts: TtsConfig,
    /// Keyed by the cache hash (the disk file's stem).
    tts_memory: Mutex<Lru<String, Arc<[i16]>>>,
    /// Keyed by the prompt name; the file's size and mtime are kept to notice a replaced file.
    file_memory: Mutex<Lru<String, FileEntry>>,
}

#[derive(Clone)]
struct FileEntry {
    stamp: FileStamp,
    samples: Arc<[i16]>,
}

/// What tells an administrator's replaced file from the cached one.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl std::fmt::Debug for Prompts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompts")
            .field("prompts_dir", &self.inner.prompts_dir)
            .field("cache_dir", &self.inner.cache_dir)
            .field("tts", &self.inner.tts)
            .finish_non_exhaustive()
    }
}

impl Prompts {
    /// `prompts_dir` holds administrator WAV files (`data_dir/prompts`); `cache_dir` holds
    /// rendered TTS (`data_dir/cache/tts`). Both are created if missing; failing that is logged,
    /// not fatal, and surfaces as [`PromptError::Io`] from the calls that need the folder.
    /// Temporary cache files left by a crash are removed.
    pub fn new(prompts_dir: PathBuf, cache_dir: PathBuf, tts: TtsConfig) -> Self {
        for dir in [&prompts_dir, &cache_dir] {
            if let Err(e) = fs::create_dir_all(dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot create prompt folder");
            }
        }
        remove_stale_temps(&cache_dir);
        Prompts {
            inner: Arc::new(Inner {
                prompts_dir,
                cache_dir,
                tts,
                tts_memory: Mutex::new(Lru::new(MEMORY_CACHE_ENTRIES)),
                file_memory: Mutex::new(Lru::new(MEMORY_CACHE_ENTRIES)),
            }),
        }
    }

    /// Mandarin `text` as 8 kHz samples. Digits are spelled one by one first ([`spell_digits`]),
    /// then espeak-ng renders the text once; the result is kept on disk in `cache_dir` (an 8 kHz
    /// mono WAV named by a SHA-256 of voice, speed, spelled text and a format version, written
    /// atomically) and in memory. A later call, even after a restart, is served from the cache
    /// without running espeak-ng.
    ///
    /// Blocking: may run a child process (killed after 20 s). Call from `spawn_blocking`.
    /// A failure to write the disk cache is logged and the rendered audio still returned: the
    /// caller should hear the prompt even with a full disk.
    pub fn tts(&self, text: &str) -> Result<Arc<[i16]>, PromptError> {
        let spelled = spell_digits(text.trim());
        if spelled.is_empty() {
            return Err(PromptError::EmptyText);
        }
        if spelled.len() > MAX_TTS_TEXT_BYTES {
            return Err(PromptError::TextTooLong {
                len: spelled.len(),
                max: MAX_TTS_TEXT_BYTES,
            });
        }
        let key = tts_cache_key(&self.inner.tts, &spelled);
        if let Some(samples) = lock(&self.inner.tts_memory).get(&key) {
            return Ok(samples);
        }
        let path = self.tts_cache_path(&key);
        let samples: Arc<[i16]> = match read_cached(&path) {
            Some(samples) => samples.into(),
            None => {
                let samples = render(&self.inner.tts, &spelled)?;
                store_cached(&self.inner.cache_dir, &path, &samples);
                samples.into()
            }
        };
        lock(&self.inner.tts_memory).insert(key, samples.clone());
        Ok(samples)
    }

    /// The administrator's prompt `name` (`"welcome"` or `"welcome.wav"`) from `prompts_dir`, as
    /// 8 kHz mono samples. Only names of `[A-Za-z0-9_-]` (plus an optional `.wav`) are accepted,
    /// so no name reaches outside the folder.
    ///
    /// The file may be any 16-bit PCM WAV (`WAVE_FORMAT_PCM` or `EXTENSIBLE` with a PCM
    /// subformat), at any rate and channel count: channels are averaged into one and the result
    /// [`resample`]d to 8 kHz. Other encodings (8-bit, 24-bit, float, A-law, MP3 in WAV) are
    /// refused with [`PromptError::BadWav`] saying what is expected.
    ///
    /// Cached in memory; a file replaced since (different size or modification time) is read
    /// again. Blocking file I/O.
    pub fn file(&self, name: &str) -> Result<Arc<[i16]>, PromptError> {
        let stem = prompt_stem(name)?;
        let path = self.inner.prompts_dir.join(format!("{stem}.wav"));
        let stamp = file_stamp(name, &path)?;
        if let Some(entry) = lock(&self.inner.file_memory).get(&stem.to_owned()) {
            if entry.stamp == stamp {
                return Ok(entry.samples);
            }
        }
        let samples: Arc<[i16]> = read_prompt_file(&path)?.into();
        lock(&self.inner.file_memory).insert(
            stem.to_owned(),
            FileEntry {
                stamp,
                samples: samples.clone(),
            },
        );
        Ok(samples)
    }

    /// Whether the administrator's prompt `name` exists (and `name` is an allowed name).
    pub fn has_file(&self, name: &str) -> bool {
        prompt_stem(name).is_ok_and(|stem| self.inner.prompts_dir.join(format!("{stem}.wav")).is_file())
    }

    /// Installs `wav` as the administrator's prompt `name`, replacing one of that name, once it
    /// is known to decode ([`Prompts::file`]'s rules); the file appears whole or not at all.
    /// Blocking file I/O.
    pub fn install_file(&self, name: &str, wav: &[u8]) -> Result<(), PromptError> {
        let stem = prompt_stem(name)?;
        let path = self.inner.prompts_dir.join(format!("{stem}.wav"));
        let temp = self.inner.prompts_dir.join(format!(".{stem}.wav.new"));
        let io = |source| PromptError::Io { path: temp.clone(), source };
        let mut file = fs::File::create(&temp).map_err(io)?;
        std::io::Write::write_all(&mut file, wav).and_then(|()| file.sync_all()).map_err(io)?;
        if let Err(e) = read_prompt_file(&temp) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        fs::rename(&temp, &path).map_err(|source| PromptError::Io { path: path.clone(), source })
    }

    /// The disk cache file for a TTS cache key.
    fn tts_cache_path(&self, key: &str) -> PathBuf {
        self.inner.cache_dir.join(format!("{key}.wav"))
    }
}

/// The caches hold plain values that are never left half-updated, so a panic elsewhere while the
/// lock was held does not make them unusable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Digit spelling, tones
// ---------------------------------------------------------------------------------------------

/// Replaces every ASCII digit with the Chinese digit spoken on its own: 0→零, 1→一 (not 幺),
/// 2→二, 3→三, 4→四, 5→五, 6→六, 7→七, 8→八, 9→九; so `12365` becomes `一二三六五`. Without
/// this espeak-ng reads a run of digits as a quantity (一万两千三百六十五), which is wrong for
/// hotline numbers, case numbers and extensions. Everything else is unchanged.
pub fn spell_digits(text: &str) -> String {
    const DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    text.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) if c.is_ascii_digit() => DIGITS[d as usize],
            _ => c,
        })
        .collect()
}

/// A sine tone at 8 kHz: `millis` long, peak `amplitude`, faded in and out over 5 ms (or a
/// quarter of the tone if shorter) so it starts and stops without a click. Used for the beep
/// before recording.
pub fn tone(freq_hz: f32, millis: u32, amplitude: i16) -> Vec<i16> {
    let len = (u64::from(SAMPLE_RATE) * u64::from(millis) / 1000) as usize;
    let fade = (SAMPLE_RATE as usize * 5 / 1000).min(len / 4).max(1);
    let step = std::f64::consts::TAU * f64::from(freq_hz) / f64::from(SAMPLE_RATE);
    (0..len)
        .map(|n| {
            let edge = n.min(len - 1 - n);
            let gain = if edge < fade {
                edge as f64 / fade as f64
            } else {
                1.0
            };
            let v = f64::from(amplitude) * gain * (step * n as f64).sin();
            v.round() as i16
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Resampling
// ---------------------------------------------------------------------------------------------

/// The low-pass passes up to this fraction of the lower of the two rates (3.3 kHz at 8 kHz: the
/// telephone band is 300–3400 Hz) and stops from `STOP_EDGE` (3.9 kHz at 8 kHz), so nothing
/// above the output's Nyquist frequency folds back into the speech band.
const PASS_EDGE: f64 = 0.4125;
const STOP_EDGE: f64 = 0.4875;
/// Stopband attenuation the Kaiser window is designed for.
const STOPBAND_DB: f64 = 60.0;
/// Above this many filter phases the fractional position is rounded to one of this many: the
/// timing error (under 1/2000 of a sample) is inaudible, and odd rate pairs such as 8001→8000 do
/// not build a table of thousands of phases.
const MAX_PHASES: u64 = 1024;

/// Resamples mono `input` from `from_hz` to `to_hz` through a windowed-sinc (Kaiser) low-pass:
/// flat to 0.41 × the lower rate, at least 60 dB down from 0.49 × the lower rate, so 22050 →
/// 8000 keeps speech up to 3.3 kHz and lets nothing alias. The output has
/// `ceil(len × to / from)` samples and no delay; samples before and after the input are taken
/// as silence. Equal rates, an empty input or a zero rate return the input unchanged.
pub fn resample(input: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    if from_hz == to_hz || from_hz == 0 || to_hz == 0 || input.is_empty() {
        return input.to_vec();
    }
    let g = gcd(u64::from(from_hz), u64::from(to_hz));
    // Output sample n sits at input position n × down / up.
    let (up, down) = (u64::from(to_hz) / g, u64::from(from_hz) / g);
    let bank = FilterBank::new(from_hz, to_hz, up.min(MAX_PHASES));
    let out_len = (input.len() as u64 * up).div_ceil(down);
    (0..out_len)
        .map(|n| {
            let pos = n * down;
            let (mut base, mut phase) = (pos / up, pos % up);
            if up > MAX_PHASES {
                phase = (phase * MAX_PHASES + up / 2) / up;
                if phase == MAX_PHASES {
                    base += 1;
                    phase = 0;
                }
            }
            bank.apply(input, base as usize, phase as usize)
        })
        .collect()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The low-pass sampled at `phases` fractional offsets, one row of taps per offset.
struct FilterBank {
    /// Taps cover input samples `base - half + 1 ..= base + half`.
    half: usize,
    taps: Vec<Vec<f64>>,
}

impl FilterBank {
    fn new(from_hz: u32, to_hz: u32, phases: u64) -> Self {
        let low = f64::from(from_hz.min(to_hz));
        let fs = f64::from(from_hz);
        // Cutoff and transition width in cycles per input sample.
        let cutoff = (PASS_EDGE + STOP_EDGE) / 2.0 * low / fs;
        let transition = (STOP_EDGE - PASS_EDGE) * low / fs;
        // Kaiser's estimates of the length and shape for the wanted attenuation.
        let order = (STOPBAND_DB - 8.0) / (2.285 * std::f64::consts::TAU * transition);
        let half = (order / 2.0).ceil().max(1.0) as usize;
        let beta = 0.1102 * (STOPBAND_DB - 8.7);
        let taps = (0..phases)
            .map(|p| phase_taps(p as f64 / phases as f64, half, cutoff, beta))
            .collect();
        FilterBank { half, taps }
    }

    fn apply(&self, input: &[i16], base: usize, phase: usize) -> i16 {
        let Some(taps) = self.taps.get(phase) else {
            return 0;
        };
        let first = base as isize - self.half as isize + 1;
        let inside = usize::try_from(first)
            .ok()
            .and_then(|f| input.get(f..f + taps.len()));
        let acc: f64 = match inside {
            // The common case, kept to a plain zip so it stays fast in debug builds too.
            Some(window) => taps
                .iter()
                .zip(window)
                .map(|(h, &s)| h * f64::from(s))
                .sum(),
            // Near the ends: samples outside the input are silence.
            None => taps
                .iter()
                .enumerate()
                .filter_map(|(j, h)| {
                    let i = usize::try_from(first + j as isize).ok()?;
                    input.get(i).map(|&s| h * f64::from(s))
                })
                .sum(),
        };
        acc.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
    }
}

/// The taps for output samples `frac` (0 ≤ frac < 1) past an input sample, normalised to unit DC
/// gain so that no phase is louder than another.
fn phase_taps(frac: f64, half: usize, cutoff: f64, beta: f64) -> Vec<f64> {
    let i0_beta = bessel_i0(beta);
    let mut taps: Vec<f64> = (0..2 * half)
        .map(|j| {
            let t = (j as f64 - half as f64 + 1.0) - frac;
            let x = t / half as f64;
            let window = if x.abs() >= 1.0 {
                0.0
            } else {
                bessel_i0(beta * (1.0 - x * x).sqrt()) / i0_beta
            };
            2.0 * cutoff * sinc(2.0 * cutoff * t) * window
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    if sum.abs() > f64::EPSILON {
        taps.iter_mut().for_each(|h| *h /= sum);
    }
    taps
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// The modified Bessel function of the first kind, order 0 (for the Kaiser window), by its power
/// series; converges quickly for the small arguments used here.
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
    }
    sum
}

// ---------------------------------------------------------------------------------------------
// WAV input: tolerant parsing and conversion to 8 kHz mono
// ---------------------------------------------------------------------------------------------

const FORMAT_PCM: u16 = 1;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// A parsed 16-bit PCM WAV, still in its own layout.
#[derive(Debug, PartialEq, Eq)]
struct PcmWav {
    channels: u16,
    sample_rate: u32,
    /// Interleaved.
    samples: Vec<i16>,
}

/// Parses a WAV more tolerantly than [`wav::read_wav`], which checks recordings strictly: chunks
/// in any order (`LIST`, `fact` … skipped), `EXTENSIBLE` headers, any channel count, and a `data`
/// size of 0 or beyond the end of the bytes (espeak-ng writing to a pipe cannot seek back to fill
/// it in) taken as "the rest". A trailing partial frame is dropped.
fn parse_wav(bytes: &[u8]) -> Result<PcmWav, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".to_owned());
    }
    let mut format: Option<(u16, u32)> = None;
    let mut rest = &bytes[12..];
    while rest.len() >= 8 {
        let id = &rest[0..4];
        let declared = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let body = &rest[8..];
        if id == b"data" {
            let (channels, sample_rate) = format.ok_or("data chunk before the fmt chunk")?;
            let len = if declared == 0 || declared > body.len() {
                body.len()
            } else {
                declared
            };
            return Ok(PcmWav {
                channels,
                sample_rate,
                samples: pcm_samples(&body[..len], channels),
            });
        }
        let len = declared.min(body.len());
        if id == b"fmt " {
            format = Some(parse_fmt(&body[..len])?);
        }
        // Chunks are padded to an even length.
        rest = body.get(len + (len & 1)..).unwrap_or(&[]);
    }
    Err("no data chunk".to_owned())
}

/// Checks a `fmt ` chunk body; returns (channels, rate).
fn parse_fmt(fmt: &[u8]) -> Result<(u16, u32), String> {
    if fmt.len() < 16 {
        return Err(format!("fmt chunk of {} bytes, shorter than 16", fmt.len()));
    }
    let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
    let tag = u16_at(0);
    let channels = u16_at(2);
    let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
    let bits = u16_at(14);
    // EXTENSIBLE carries the real format as the first two bytes of a GUID at offset 24.
    let pcm = tag == FORMAT_PCM || (tag == FORMAT_EXTENSIBLE && fmt.len() >= 26 && u16_at(24) == 1);
    if !pcm {
        return Err(format!("encoding {tag:#06x} is not PCM"));
    }
    if bits != 16 {
        return Err(format!("{bits}-bit samples"));
    }
    if channels == 0 || rate == 0 {
        return Err(format!("{channels} channels at {rate} Hz"));
    }
    Ok((channels, rate))
}

fn pcm_samples(data: &[u8], channels: u16) -> Vec<i16> {
    let frame_bytes = 2 * usize::from(channels);
    let whole = data.len() - data.len() % frame_bytes;
    data[..whole]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Averages the channels of each frame into one sample.
fn downmix(samples: &[i16], channels: u16) -> Vec<i16> {
    if channels <= 1 {
        return samples.to_vec();
    }
    samples
        .chunks_exact(usize::from(channels))
        .map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            // The mean of i16 values is within i16.
            (sum / i32::from(channels)) as i16
        })
        .collect()
}

/// A parsed WAV as 8 kHz mono.
fn to_mono_8k(wav: &PcmWav) -> Vec<i16> {
    let mono = downmix(&wav.samples, wav.channels);
    resample(&mono, wav.sample_rate, SAMPLE_RATE)
}

/// A prompt name's file stem, or an error if the name could reach outside the folder.
fn prompt_stem(name: &str) -> Result<&str, PromptError> {
    let stem = name.strip_suffix(".wav").unwrap_or(name);
    let ok = !stem.is_empty()
        && stem.len() <= MAX_NAME_LEN
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(stem)
    } else {
        Err(PromptError::NameNotAllowed {
            name: name.to_owned(),
        })
    }
}

fn file_stamp(name: &str, path: &Path) -> Result<FileStamp, PromptError> {
    match fs::metadata(path) {
        Ok(m) => Ok(FileStamp {
            len: m.len(),
            modified: m.modified().ok(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PromptError::NotFound {
            name: name.to_owned(),
            path: path.to_owned(),
        }),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn read_prompt_file(path: &Path) -> Result<Vec<i16>, PromptError> {
    let bad = |reason: String| PromptError::BadWav {
        path: path.to_owned(),
        reason,
    };
    let file = fs::File::open(path).map_err(io_err(path))?;
    let mut bytes = Vec::new();
    file.take(MAX_PROMPT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    if bytes.len() as u64 > MAX_PROMPT_FILE_BYTES {
        return Err(bad(format!(
            "larger than {} MiB",
            MAX_PROMPT_FILE_BYTES >> 20
        )));
    }
    let wav = parse_wav(&bytes).map_err(bad)?;
    Ok(to_mono_8k(&wav))
}

// ---------------------------------------------------------------------------------------------
// TTS: rendering and the disk cache
// ---------------------------------------------------------------------------------------------

/// The disk cache key: SHA-256 over everything that shapes the audio, each field length-prefixed
/// so that no two different tuples hash the same bytes. The program path is left out on purpose:
/// moving espeak-ng does not change its output.
fn tts_cache_key(cfg: &TtsConfig, spelled: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let speed = cfg.speed_wpm.to_string();
    for field in [TTS_FORMAT_VERSION, cfg.voice.as_str(), &speed, spelled] {
        ctx.update(&(field.len() as u64).to_le_bytes());
        ctx.update(field.as_bytes());
    }
    hex::encode(ctx.finish().as_ref())
}

/// The cached audio at `path`, or `None` if absent or unusable (then it is rendered again and the
/// file replaced). Only files this module wrote live here, so anything but 8 kHz mono is damage.
fn read_cached(path: &Path) -> Option<Vec<i16>> {
    match wav::read_wav(path) {
        Ok((WavFormat::MONO_8K, samples)) => Some(samples),
        Ok((format, _)) => {
            tracing::warn!(path = %path.display(), ?format, "TTS cache file not 8 kHz mono; rendering again");
            None
        }
        Err(wav::WavError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "TTS cache file unreadable; rendering again");
            None
        }
    }
}

/// Writes the cache file atomically; a failure only costs a re-render later, so it is logged.
fn store_cached(dir: &Path, path: &Path, samples: &[i16]) {
    if let Err(e) = write_atomically(dir, path, samples) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write TTS cache file");
    }
}

/// Writes `samples` to a temporary name in the same folder, fsyncs it, renames it over `path` and
/// fsyncs the folder: a crash leaves either no file or the whole file under `path`, never half.
fn write_atomically(dir: &Path, path: &Path, samples: &[i16]) -> Result<(), PromptError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("tts");
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{stem}.{}.{n}.tmp", std::process::id()));
    let result = write_wav(&tmp, samples)
        .and_then(|()| fs::rename(&tmp, path).map_err(io_err(path)))
        .and_then(|()| {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(dir))
        });
    if result.is_err() {
        // Best effort: a leftover is removed at the next start anyway.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A complete, fsynced 8 kHz mono WAV (the writer fsyncs data and header in `finish`).
fn write_wav(path: &Path, samples: &[i16]) -> Result<(), PromptError> {
    let to_err = |e: wav::WavError| PromptError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    };
    let mut writer = WavWriter::create(path, WavFormat::MONO_8K).map_err(to_err)?;
    writer.write_frames(samples).map_err(to_err)?;
    writer.finish().map_err(to_err)?;
    Ok(())
}

/// Removes `*.tmp` files in the cache folder old enough to be a crash's leftovers rather than a
/// write in progress.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_temp = path.extension().is_some_and(|e| e == "tmp");
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if is_temp && age.is_some_and(|a| a > STALE_TEMP_AGE) {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove stale TTS temp file");
            }
        }
    }
}

/// Runs espeak-ng on `text` and returns 8 kHz mono samples.
fn render(cfg: &TtsConfig, text: &str) -> Result<Vec<i16>, PromptError> {
    let started = Instant::now();
    let output = run_tts(cfg, text)?;
    let failed = |reason: String| PromptError::TtsFailed {
        program: cfg.program.clone(),
        reason,
        stderr: output.stderr.clone(),
    };
    if !output.status.success() {
        return Err(failed(format!("exited with {}", output.status)));
    }
    let wav = parse_wav(&output.stdout).map_err(|r| failed(format!("output is not a WAV: {r}")))?;
    if wav.samples.is_empty() {
        return Err(failed("no audio in its output".to_owned()));
    }
    if !output.stderr.is_empty() {
        // espeak-ng can complain and still exit 0 with audio (an unknown voice such as
        // "no-such-voice" falls back to Norwegian): worth an administrator's look, not a failure.
        tracing::warn!(program = %cfg.program.display(), stderr = %output.stderr, "TTS program wrote to stderr");
    }
    let samples = to_mono_8k(&wav);
    tracing::debug!(
        millis = started.elapsed().as_millis() as u64,
        audio_millis = samples.len() as u64 * 1000 / u64::from(SAMPLE_RATE),
        "rendered TTS"
    );
    Ok(samples)
}

/// What a TTS run left.
struct TtsOutput {
    status: ExitStatus,
    stdout: Vec<u8>,
    /// An excerpt.
    stderr: String,
}

/// Runs the TTS program with `text` on stdin (never through a shell, and never as an argument,
/// where text starting with `-` would be read as an option). Stdin, stdout and stderr are served
/// by their own threads so that no pipe fills up and blocks the child.
fn run_tts(cfg: &TtsConfig, text: &str) -> Result<TtsOutput, PromptError> {
    let mut child = Command::new(&cfg.program)
        .arg("-v")
        .arg(&cfg.voice)
        .arg("-s")
        .arg(cfg.speed_wpm.to_string())
        .args(["--stdout", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| PromptError::TtsMissing {
            program: cfg.program.clone(),
            source,
        })?;
    let mut stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::scope(|s| {
        // A write error means espeak-ng exited early; its status and stderr tell why.
        s.spawn(move || stdin.as_mut().map(|w| w.write_all(text.as_bytes())));
        let out = s.spawn(move || read_all(stdout));
        let err = s.spawn(move || read_all(stderr));
        let waited = wait_with_timeout(&mut child, TTS_TIMEOUT);
        let stdout = out.join().unwrap_or_default();
        let stderr = excerpt(&err.join().unwrap_or_default());
        let failed = |reason: String| PromptError::TtsFailed {
            program: cfg.program.clone(),
            reason,
            stderr: stderr.clone(),
        };
        match waited {
            Ok(Some(status)) => Ok(TtsOutput {
                status,
                stdout,
                stderr: stderr.clone(),
            }),
            Ok(None) => Err(failed(format!("no result within {TTS_TIMEOUT:?}; killed"))),
            Err(e) => Err(failed(format!("waiting for it: {e}"))),
        }
    })
}

fn read_all(pipe: Option<impl Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut p) = pipe {
        // A read error leaves what was read; an empty or short WAV is reported by the caller.
        let _ = p.read_to_end(&mut buf);
    }
    buf
}

/// Waits for `child` up to `timeout`; on timeout (or a failed wait) kills and reaps it so the
/// reader threads see their pipes close, and returns `Ok(None)`.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                return other;
            }
        }
    }
}

/// The start of a child's stderr, as text, for an error message.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim();
    let mut out: String = trimmed.chars().take(STDERR_EXCERPT_CHARS).collect();
    if trimmed.chars().count() > STDERR_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// A small map that forgets its least recently used entry when full. Linear eviction is fine for
/// the few dozen entries kept here.
struct Lru<K, V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<K, (u64, V)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Lru {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(used, v)| {
            *used = tick;
            v.clone()
        })
    }

    fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
        self.entries.insert(key, (self.tick, value));
    }
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
