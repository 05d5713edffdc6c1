//! The recorder's file layer: 16-bit PCM WAV files written as the call goes, so that a crash or a
//! power cut loses no recorded audio up to it (design decision 5).
//!
//! Layout: always the canonical 44-byte header (`RIFF` size `WAVE`, a 16-byte `fmt ` chunk for
//! PCM, then `data` size) followed by interleaved little-endian samples; recordings are stereo,
//! caller left and agent right.
//!
//! How the rule is kept:
//! - [`WavWriter::create`] writes the header with both sizes 0 and fsyncs the file and its
//!   directory, so the file exists after a power cut.
//! - [`WavWriter::write_frames`] hands every frame to the kernel at once (`write_all` on the file,
//!   no user-space buffer): once it returns, the frames survive a crash or kill of the process.
//! - [`WavWriter::sync`] makes them survive a power cut too: fsync of the data, then the two sizes
//!   rewritten to match, then fsync again. Call it about once a second ([`WavWriter::should_sync`]).
//! - [`repair`] runs at switchd start over recordings marked unfinished: it sets the sizes from the
//!   file length, so everything that reached the file plays.
//!
//! A power cut therefore loses at most the frames written since the last `sync` (about a second);
//! a process crash loses none.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes in the canonical header written here.
pub const HEADER_LEN: u64 = 44;
/// Bits per sample: always 16-bit signed PCM.
pub const BITS_PER_SAMPLE: u16 = 16;
/// The largest `data` chunk: the RIFF size (`36 + data`) must fit in 32 bits. About 37 hours of
/// 8 kHz stereo.
pub const MAX_DATA_LEN: u64 = u32::MAX as u64 - 36;

const WAVE_FORMAT_PCM: u16 = 1;

/// Why a WAV file cannot be written, read or repaired.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// The file system refused: create, write, fsync, read.
    #[error("WAV file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The format asked for is not 16-bit PCM with 1 or 2 channels at a non-zero rate.
    #[error("unsupported WAV format: {channels} channels at {sample_rate} Hz")]
    UnsupportedFormat { channels: u16, sample_rate: u32 },
    /// Samples handed to the writer that are not a whole number of frames.
    #[error("{samples} interleaved samples are not whole frames of {channels} channels")]
    PartialFrame { samples: usize, channels: u16 },
    /// The recording would outgrow the 32-bit RIFF sizes; the caller should start a new file.
    #[error("WAV data would reach {len} bytes, beyond the RIFF limit of {MAX_DATA_LEN}")]
    TooLong { len: u64 },
    /// Shorter than the 44-byte header.
    #[error("WAV file {path} is {len} bytes, shorter than the 44-byte header")]
    Truncated { path: PathBuf, len: u64 },
    /// The header is not the canonical 16-bit PCM header this module writes.
    #[error("WAV file {path} has a bad header: {reason}")]
    BadHeader { path: PathBuf, reason: &'static str },
    /// The sizes in the header do not match the file (an unfinished or damaged recording).
    #[error("WAV file {path} declares RIFF {riff_len} / data {data_len} bytes but is {file_len} bytes long")]
    SizeMismatch {
        path: PathBuf,
        riff_len: u32,
        data_len: u32,
        file_len: u64,
    },
}

/// The sample layout of a file. Samples are always 16-bit signed little-endian PCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    /// 1 (prompts) or 2 (recordings: caller left, agent right).
    pub channels: u16,
    /// Frames per second; 8000 for everything telephone-side.
    pub sample_rate: u32,
}

impl WavFormat {
    /// A call recording: caller left, agent right, 8 kHz.
    pub const STEREO_8K: WavFormat = WavFormat {
        channels: 2,
        sample_rate: 8000,
    };
    /// A prompt or a single leg, 8 kHz.
    pub const MONO_8K: WavFormat = WavFormat {
        channels: 1,
        sample_rate: 8000,
    };

    /// Bytes per frame (one sample per channel).
    pub fn block_align(self) -> u16 {
        self.channels * (BITS_PER_SAMPLE / 8)
    }

    fn validate(self) -> Result<Self, WavError> {
        // byte rate = rate * block_align must fit in u32.
        let ok = matches!(self.channels, 1 | 2)
            && self.sample_rate > 0
            && self
                .sample_rate
                .checked_mul(u32::from(self.block_align()))
                .is_some();
        if ok {
            Ok(self)
        } else {
            Err(WavError::UnsupportedFormat {
                channels: self.channels,
                sample_rate: self.sample_rate,
            })
        }
    }
}

/// The canonical header for `format` with `data_len` bytes of samples.
pub fn header_bytes(format: WavFormat, data_len: u32) -> [u8; HEADER_LEN as usize] {
    let block_align = format.block_align();
    let byte_rate = format.sample_rate.wrapping_mul(u32::from(block_align));
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff_len(data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&WAVE_FORMAT_PCM.to_le_bytes());
    h[22..24].copy_from_slice(&format.channels.to_le_bytes());
    h[24..28].copy_from_slice(&format.sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&BITS_PER_SAMPLE.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// RIFF size for a data chunk of `data_len` bytes: the rest of the header plus the samples.
fn riff_len(data_len: u32) -> u32 {
    data_len.saturating_add(36)
}

/// The header a new file starts with: both sizes 0, meaning "not yet synced".
fn unsynced_header(format: WavFormat) -> [u8; HEADER_LEN as usize] {
    let mut h = header_bytes(format, 0);
    h[4..8].fill(0);
    h
}

/// A parsed canonical header.
struct Header {
    format: WavFormat,
    riff_len: u32,
    data_len: u32,
}

fn parse_header(path: &Path, h: &[u8; HEADER_LEN as usize]) -> Result<Header, WavError> {
    let bad = |reason| WavError::BadHeader {
        path: path.to_owned(),
        reason,
    };
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if &h[0..4] != b"RIFF" {
        return Err(bad("no RIFF tag"));
    }
    if &h[8..12] != b"WAVE" {
        return Err(bad("not a WAVE file"));
    }
    if &h[12..16] != b"fmt " || u32_at(16) != 16 {
        return Err(bad("no 16-byte fmt chunk at offset 12"));
    }
    if u16_at(20) != WAVE_FORMAT_PCM {
        return Err(bad("not PCM"));
    }
    if u16_at(34) != BITS_PER_SAMPLE {
        return Err(bad("not 16 bits per sample"));
    }
    let format = WavFormat {
        channels: u16_at(22),
        sample_rate: u32_at(24),
    };
    if format.validate().is_err() {
        return Err(bad("not 1 or 2 channels at a non-zero rate"));
    }
    if u16_at(32) != format.block_align()
        || u32_at(28)
            != format
                .sample_rate
                .wrapping_mul(u32::from(format.block_align()))
    {
        return Err(bad("block align or byte rate inconsistent with the format"));
    }
    if &h[36..40] != b"data" {
        return Err(bad("no data chunk at offset 36"));
    }
    Ok(Header {
        format,
        riff_len: u32_at(4),
        data_len: u32_at(40),
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WavError + '_ {
    move |source| WavError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads the header of `file`, which is `file_len` bytes long.
fn read_header(path: &Path, file: &mut File, file_len: u64) -> Result<Header, WavError> {
    if file_len < HEADER_LEN {
        return Err(WavError::Truncated {
            path: path.to_owned(),
            len: file_len,
        });
    }
    let mut h = [0u8; HEADER_LEN as usize];
    file.read_exact(&mut h).map_err(io(path))?;
    parse_header(path, &h)
}

/// Writes one recording as the call goes.
///
/// Usage contract:
/// - [`create`](Self::create), then [`write_frames`](Self::write_frames) /
///   [`write_stereo`](Self::write_stereo) for each 20 ms of audio as it arrives;
/// - after each write, if [`should_sync`](Self::should_sync) says so (one second of audio since the
///   last sync), call [`sync`](Self::sync). The cadence is counted in frames, not read from a
///   clock: audio is written in real time, so a second of frames is a second of call;
/// - [`finish`](Self::finish) at hang-up. Mark the recording finished in the store only after it
///   returns `Ok`; a recording not marked finished goes through [`repair`] at the next start.
///
/// Writes are blocking file I/O: call them from a blocking thread, not the async runtime's.
/// After an error the file is left as a crash would leave it (repairable); drop the writer.
/// Dropping without `finish` rewrites the sizes best-effort, without fsync.
#[derive(Debug)]
pub struct WavWriter {
    path: PathBuf,
    file: Option<File>,
    format: WavFormat,
    data_len: u64,
    synced_data_len: u64,
    buf: Vec<u8>,
}

impl WavWriter {
    /// Creates (or truncates) `path` and writes the header with sizes 0, fsyncing the file and its
    /// directory so the recording exists after a power cut.
    pub fn create(path: impl AsRef<Path>, format: WavFormat) -> Result<Self, WavError> {
        let path = path.as_ref();
        let format = format.validate()?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(io(path))?;
        let mut file = file;
        file.write_all(&unsynced_header(format)).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        sync_parent_dir(path)?;
        Ok(WavWriter {
            path: path.to_owned(),
            file: Some(file),
            format,
            data_len: 0,
            synced_data_len: 0,
            buf: Vec::new(),
        })
    }

    /// The format the file was created with.
    pub fn format(&self) -> WavFormat {
        self.format
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames handed to the file so far (they survive a process crash).
    pub fn frames_written(&self) -> u64 {
        self.data_len / u64::from(self.format.block_align())
    }

    /// Frames made durable and declared in the header by the last [`sync`](Self::sync).
    pub fn frames_synced(&self) -> u64 {
        self.synced_data_len / u64::from(self.format.block_align())
    }

    /// True when one second of audio (`sample_rate` frames) or more has been written since the
    /// last sync: the caller should call [`sync`](Self::sync).
    pub fn should_sync(&self) -> bool {
        self.frames_written() - self.frames_synced() >= u64::from(self.format.sample_rate)
    }

    /// Appends interleaved samples (`L R L R …` for stereo) as little-endian 16-bit PCM.
    /// On return they are in the kernel's page cache: a crash of switchd does not lose them.
    pub fn write_frames(&mut self, interleaved: &[i16]) -> Result<(), WavError> {
        let channels = self.format.channels;
        if !interleaved.len().is_multiple_of(usize::from(channels)) {
            return Err(WavError::PartialFrame {
                samples: interleaved.len(),
                channels,
            });
        }
        self.buf.clear();
        self.buf
            .extend(interleaved.iter().flat_map(|s| s.to_le_bytes()));
        self.append_buf()
    }

    /// Appends a stereo block from the two legs (caller left, agent right); the shorter leg is
    /// padded with silence. For a mono file, an error.
    pub fn write_stereo(&mut self, left: &[i16], right: &[i16]) -> Result<(), WavError> {
        if self.format.channels != 2 {
            return Err(WavError::PartialFrame {
                samples: 2,
                channels: self.format.channels,
            });
        }
        let frames = left.len().max(right.len());
        self.buf.clear();
        self.buf.reserve(frames * 4);
        for i in 0..frames {
            let l = left.get(i).copied().unwrap_or(0);
            let r = right.get(i).copied().unwrap_or(0);
            self.buf.extend_from_slice(&l.to_le_bytes());
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.append_buf()
    }

    fn append_buf(&mut self) -> Result<(), WavError> {
        let len = self.data_len + self.buf.len() as u64;
        if len > MAX_DATA_LEN {
            return Err(WavError::TooLong { len });
        }
        let Some(file) = self.file.as_mut() else {
            return Err(self.stopped());
        };
        if let Err(e) = file.write_all(&self.buf) {
            // Part of the block may be in the file; the length is unknown, so stop writing.
            self.file = None;
            return Err(WavError::Io {
                path: self.path.clone(),
                source: e,
            });
        }
        self.data_len = len;
        Ok(())
    }

    fn stopped(&self) -> WavError {
        WavError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("writer stopped after an earlier write error"),
        }
    }

    /// Makes everything written so far survive a power cut: fsyncs the samples, rewrites the RIFF
    /// and data sizes to match them, and fsyncs again. The data goes down before the header
    /// declares it, so the header never claims bytes that a power cut lost.
    pub fn sync(&mut self) -> Result<(), WavError> {
        if self.data_len == self.synced_data_len && self.data_len > 0 {
            return Ok(());
        }
        let data_len = self.data_len;
        let path = self.path.clone();
        let format = self.format;
        let Some(file) = self.file.as_mut() else {
            return Err(self.stopped());
        };
        file.sync_data().map_err(io(&path))?;
        // data_len <= MAX_DATA_LEN, checked at every append.
        let header = header_bytes(format, u32::try_from(data_len).unwrap_or(u32::MAX));
        file.write_all_at(&header[4..8], 4).map_err(io(&path))?;
        file.write_all_at(&header[40..44], 40).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))?;
        self.synced_data_len = data_len;
        Ok(())
    }

    /// Syncs and closes the file. Returns the number of frames in it.
    pub fn finish(mut self) -> Result<u64, WavError> {
        self.sync()?;
        self.file = None;
        Ok(self.frames_written())
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else { return };
        if self.data_len == self.synced_data_len && self.data_len > 0 {
            return;
        }
        // Best effort, no fsync: a later repair fixes whatever this does not.
        let header = header_bytes(
            self.format,
            u32::try_from(self.data_len).unwrap_or(u32::MAX),
        );
        let res = file
            .write_all_at(&header[4..8], 4)
            .and_then(|()| file.write_all_at(&header[40..44], 40));
        if let Err(e) = res {
            tracing::warn!(path = %self.path.display(), error = %e, "WAV writer dropped unfinished");
        }
    }
}

fn sync_parent_dir(path: &Path) -> Result<(), WavError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// What [`repair`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The file's format.
    pub format: WavFormat,
    /// Whole frames in the file after repair: everything recovered.
    pub frames: u64,
    /// Frames the header declared before repair (0 if the writer never synced).
    pub declared_frames: u64,
    /// Bytes of a trailing partial frame cut off the end (or beyond the RIFF limit).
    pub dropped_bytes: u64,
    /// False when the file was already complete and was left untouched.
    pub changed: bool,
}

/// Fixes a recording left unfinished by a crash or power cut: sets the RIFF and data sizes from
/// the file length, cuts a trailing partial frame, and fsyncs. A complete file is left unchanged.
/// A file that is not a canonical 16-bit PCM WAV (bad RIFF, WAVE or fmt) is an error and is not
/// modified. Run by switchd at start over recordings not marked finished.
pub fn repair(path: impl AsRef<Path>) -> Result<RepairReport, WavError> {
    let path = path.as_ref();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let file_len = file.metadata().map_err(io(path))?.len();
    let header = read_header(path, &mut file, file_len)?;
    let block = u64::from(header.format.block_align());
    let available = (file_len - HEADER_LEN).min(MAX_DATA_LEN);
    let data_len = available - available % block;
    let new_file_len = HEADER_LEN + data_len;
    let report = RepairReport {
        format: header.format,
        frames: data_len / block,
        declared_frames: u64::from(header.data_len) / block,
        dropped_bytes: file_len - new_file_len,
        changed: true,
    };
    let data_len32 = u32::try_from(data_len).unwrap_or(u32::MAX);
    let want = header_bytes(header.format, data_len32);
    let want_riff = u32::from_le_bytes([want[4], want[5], want[6], want[7]]);
    if header.riff_len == want_riff && header.data_len == data_len32 && file_len == new_file_len {
        return Ok(RepairReport {
            changed: false,
            ..report
        });
    }
    if file_len != new_file_len {
        file.set_len(new_file_len).map_err(io(path))?;
    }
    file.write_all_at(&want[4..8], 4).map_err(io(path))?;
    file.write_all_at(&want[40..44], 40).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    tracing::info!(
        path = %path.display(),
        frames = report.frames,
        declared_frames = report.declared_frames,
        dropped_bytes = report.dropped_bytes,
        "repaired unfinished WAV recording"
    );
    Ok(report)
}

/// Reads a whole file, validating it as strictly as a player: the canonical 44-byte header, RIFF
/// and data sizes that match the file length exactly, whole frames. An unfinished recording
/// fails with [`WavError::SizeMismatch`] until [`repair`]ed.
pub fn read_wav(path: impl AsRef<Path>) -> Result<(WavFormat, Vec<i16>), WavError> {
    let path = path.as_ref();
    let mut file = File::open(path).map_err(io(path))?;
    let file_len = file.metadata().map_err(io(path))?.len();
    let header = read_header(path, &mut file, file_len)?;
    let data_len = u64::from(header.data_len);
    if HEADER_LEN + data_len != file_len || header.riff_len != riff_len(header.data_len) {
        return Err(WavError::SizeMismatch {
            path: path.to_owned(),
            riff_len: header.riff_len,
            data_len: header.data_len,
            file_len,
        });
    }
    if data_len % u64::from(header.format.block_align()) != 0 {
        return Err(WavError::BadHeader {
            path: path.to_owned(),
            reason: "data is not whole frames",
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io(path))?;
    if bytes.len() as u64 != data_len {
        return Err(WavError::Truncated {
            path: path.to_owned(),
            len: HEADER_LEN + bytes.len() as u64,
        });
    }
    let samples = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok((header.format, samples))
}

#[cfg(test)]
#[path = "wav_tests.rs"]
mod tests;
