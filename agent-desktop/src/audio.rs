//! The headset: cpal streams at 48 kHz mono in 20 ms buffers (`BufferSize::Fixed(960)`), the
//! microphone feeding a sample queue and the speaker draining one. cpal streams may not move
//! between threads, so each [`AudioIo`] owns a thread that holds them until it is dropped.
//! The call pipeline in `backend` moves 960-sample frames between these queues and Opus.

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Sample rate of the headset streams (Opus's native rate).
pub const RATE: u32 = 48_000;
/// Samples in one 20 ms frame.
pub const FRAME: usize = 960;
/// Microphone frames kept queued for the sender at most.
const MIC_BACKLOG_FRAMES: usize = 2;

/// Why the headset could not be used, said plainly to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioError {
    NoMicrophone,
    NoSpeaker,
    /// The device is in use by another program or went away.
    Busy(String),
    Other(String),
}

impl AudioError {
    pub fn text(&self, lang: crate::i18n::Lang) -> String {
        use crate::i18n::T;
        match self {
            AudioError::NoMicrophone => T::NoMicrophone.s(lang).to_owned(),
            AudioError::NoSpeaker => T::NoSpeaker.s(lang).to_owned(),
            AudioError::Busy(d) => format!("{}（{d}）", T::DeviceBusy.s(lang)),
            AudioError::Other(d) => format!("{}：{d}", T::AudioFailed.s(lang)),
        }
    }
}

fn from_cpal(e: &cpal::Error) -> AudioError {
    match e.kind() {
        cpal::ErrorKind::DeviceBusy | cpal::ErrorKind::DeviceNotAvailable => AudioError::Busy(e.to_string()),
        _ => AudioError::Other(e.to_string()),
    }
}

/// Queues shared between the audio callbacks and the call pipeline.
#[derive(Debug, Default)]
pub struct Shared {
    /// Captured samples, oldest first.
    pub mic: Mutex<VecDeque<i16>>,
    /// Samples to play, oldest first; silence is played when empty.
    pub speaker: Mutex<VecDeque<i16>>,
    /// Peak of the last captured buffer, 0..=32767.
    pub level: AtomicU32,
    /// The first error a stream reported after it started (a device unplugged, the sound
    /// server gone); the call pipeline reports it to the agent.
    pub failure: Mutex<Option<AudioError>>,
}

impl Shared {
    /// Microphone level 0.0..=1.0 for the meter.
    pub fn level(&self) -> f32 {
        self.level.load(Ordering::Relaxed) as f32 / 32767.0
    }

    /// Takes one frame from the microphone queue, if one is there; keeps at most two frames
    /// queued: capture and sender both run at 20 ms, so a backlog (a stalled tick, the frames
    /// captured before the call connected) would otherwise stand as delay for the whole call.
    pub fn take_mic_frame(&self) -> Option<Vec<i16>> {
        let mut mic = self.mic.lock().ok()?;
        while mic.len() > FRAME * MIC_BACKLOG_FRAMES {
            mic.drain(..FRAME);
        }
        (mic.len() >= FRAME).then(|| mic.drain(..FRAME).collect())
    }

    /// Queues samples to play; keeps at most `max_frames` queued.
    pub fn play(&self, pcm: &[i16], max_frames: usize) {
        if let Ok(mut spk) = self.speaker.lock() {
            spk.extend(pcm.iter().copied());
            let excess = spk.len().saturating_sub(FRAME * max_frames);
            spk.drain(..excess);
        }
    }

    /// Takes the stream failure, if one happened since the last call.
    pub fn take_failure(&self) -> Option<AudioError> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }

    fn fail(&self, e: &cpal::Error) {
        tracing::warn!(error = %e, "headset stream");
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert_with(|| from_cpal(e));
        }
    }

    pub fn queued_to_play(&self) -> usize {
        self.speaker.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn capture(&self, samples: impl Iterator<Item = i16>) {
        let mut peak = 0u32;
        if let Ok(mut mic) = self.mic.lock() {
            for s in samples {
                peak = peak.max(u32::from(s.unsigned_abs()));
                mic.push_back(s);
            }
        }
        self.level.store(peak.min(32767), Ordering::Relaxed);
    }

    fn fill(&self, out: &mut [i16]) {
        if let Ok(mut spk) = self.speaker.lock() {
            for o in out.iter_mut() {
                *o = spk.pop_front().unwrap_or(0);
            }
        }
    }
}

/// Device names for the settings screen: (microphones, speakers/headsets).
pub fn list_devices() -> (Vec<String>, Vec<String>) {
    let host = cpal::default_host();
    let names = |devs: Result<_, cpal::Error>| -> Vec<String> {
        match devs {
            Ok(iter) => {
                let iter: Box<dyn Iterator<Item = cpal::Device>> = Box::new(iter);
                iter.map(|d| d.to_string()).collect()
            }
            Err(_) => Vec::new(),
        }
    };
    let inputs = names(host.input_devices().map(|d| Box::new(d) as Box<dyn Iterator<Item = cpal::Device>>));
    let outputs = names(host.output_devices().map(|d| Box::new(d) as Box<dyn Iterator<Item = cpal::Device>>));
    (inputs, outputs)
}

fn pick(host: &cpal::Host, name: Option<&str>, input: bool) -> Option<cpal::Device> {
    if let Some(name) = name {
        let found = if input { host.input_devices().ok().and_then(|mut d| d.find(|d| d.to_string() == name)) } else { host.output_devices().ok().and_then(|mut d| d.find(|d| d.to_string() == name)) };
        if found.is_some() {
            return found;
        }
    }
    if input { host.default_input_device() } else { host.default_output_device() }
}

/// Stream configurations to try, best first: `frames` per buffer, then the host's default.
fn configs(frames: usize) -> [cpal::StreamConfig; 2] {
    let c = |buffer_size| cpal::StreamConfig { channels: 1, sample_rate: RATE, buffer_size };
    [c(cpal::BufferSize::Fixed(frames as u32)), c(cpal::BufferSize::Default)]
}

/// Playback buffers: 60 ms. With 20 ms ones (40 ms double-buffered) the PulseAudio stream
/// underran on a loaded two-core machine and stopped asking for audio.
const OUTPUT_FRAMES: usize = FRAME * 2;

fn build_input(dev: &cpal::Device, shared: &Arc<Shared>) -> Result<cpal::Stream, AudioError> {
    let mut last = AudioError::NoMicrophone;
    for config in configs(FRAME) {
        let s = shared.clone();
        // i16 first; a device that refuses it is tried in f32, whose error is the one reported.
        if let Ok(stream) = dev.build_input_stream::<i16, _, _>(config, move |data: &[i16], _| s.capture(data.iter().copied()), { let s = shared.clone(); move |e| s.fail(&e) }, None) {
            return Ok(stream);
        }
        let s = shared.clone();
        match dev.build_input_stream::<f32, _, _>(config, move |data: &[f32], _| s.capture(data.iter().map(|x| (x.clamp(-1.0, 1.0) * 32767.0) as i16)), { let s = shared.clone(); move |e| s.fail(&e) }, None) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = from_cpal(&e),
        }
    }
    Err(last)
}

fn build_output(dev: &cpal::Device, shared: &Arc<Shared>) -> Result<cpal::Stream, AudioError> {
    let mut last = AudioError::NoSpeaker;
    for config in configs(OUTPUT_FRAMES) {
        let s = shared.clone();
        if let Ok(stream) = dev.build_output_stream::<i16, _, _>(config, move |out: &mut [i16], _| s.fill(out), { let s = shared.clone(); move |e| s.fail(&e) }, None) {
            return Ok(stream);
        }
        let s = shared.clone();
        let mut buf = Vec::new();
        match dev.build_output_stream::<f32, _, _>(
            config,
            move |out: &mut [f32], _| {
                buf.resize(out.len(), 0i16);
                s.fill(&mut buf);
                for (o, &x) in out.iter_mut().zip(&buf) {
                    *o = f32::from(x) / 32768.0;
                }
            },
            { let s = shared.clone(); move |e| s.fail(&e) },
            None,
        ) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = from_cpal(&e),
        }
    }
    Err(last)
}

/// Open headset streams; closed when dropped.
pub struct AudioIo {
    pub shared: Arc<Shared>,
    _stop: std::sync::mpsc::Sender<()>,
}

impl AudioIo {
    /// Opens the chosen (or default) microphone and/or speaker.
    pub fn open(input: Option<&str>, output: Option<&str>, want_input: bool, want_output: bool) -> Result<AudioIo, AudioError> {
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (input, output) = (input.map(str::to_owned), output.map(str::to_owned));
        let s = shared.clone();
        std::thread::Builder::new()
            .name("headset".into())
            .spawn(move || {
                let host = cpal::default_host();
                let mut streams = Vec::new();
                let mut result = Ok(());
                if want_input {
                    match pick(&host, input.as_deref(), true).ok_or(AudioError::NoMicrophone).and_then(|d| build_input(&d, &s)) {
                        Ok(st) => streams.push(st),
                        Err(e) => result = Err(e),
                    }
                }
                if want_output && result.is_ok() {
                    match pick(&host, output.as_deref(), false).ok_or(AudioError::NoSpeaker).and_then(|d| build_output(&d, &s)) {
                        Ok(st) => streams.push(st),
                        Err(e) => result = Err(e),
                    }
                }
                if result.is_ok() {
                    for st in &streams {
                        if let Err(e) = st.play() {
                            result = Err(from_cpal(&e));
                        }
                    }
                }
                let failed = result.is_err();
                let _ = ready_tx.send(result);
                if !failed {
                    // Hold the streams until the AudioIo is dropped.
                    let _ = stop_rx.recv();
                }
                drop(streams);
            })
            .map_err(|e| AudioError::Other(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(AudioIo { shared, _stop: stop_tx }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(AudioError::Other("audio thread ended".into())),
        }
    }
}

/// The Chinese ringing tone (450 Hz, one second on, four off) for 20 ms frame `n` of the ring.
pub fn ring_frame(n: u32) -> Vec<i16> {
    let on = n % 250 < 50;
    (0..FRAME as u32)
        .map(|i| {
            if !on {
                return 0;
            }
            let t = f64::from(n * FRAME as u32 + i) / f64::from(RATE);
            (6000.0 * (2.0 * std::f64::consts::PI * 450.0 * t).sin()) as i16
        })
        .collect()
}

/// The speaker test: a 1 kHz tone for a second, a pause, a 500 Hz tone — the agent hears
/// whether the chosen headset plays, and on which side.
pub fn speaker_test_clip() -> Vec<i16> {
    let tone = |hz: f64, secs: f64| (0..(secs * f64::from(RATE)) as u32).map(move |i| (8000.0 * (2.0 * std::f64::consts::PI * hz * f64::from(i) / f64::from(RATE)).sin()) as i16);
    tone(1000.0, 1.0).chain(std::iter::repeat_n(0, RATE as usize / 2)).chain(tone(500.0, 1.0)).collect()
}

/// A 16-bit PCM WAV (a call recording: mono, or stereo with the caller left) as mono samples
/// at the headset's rate: both channels mixed, upsampled by linear interpolation.
pub fn wav_for_headset(bytes: &[u8]) -> Result<Vec<i16>, String> {
    let (channels, rate, data) = pcm16_wav(bytes)?;
    let mono: Vec<i16> = data.chunks_exact(usize::from(channels)).map(|c| (c.iter().map(|&x| i32::from(x)).sum::<i32>() / i32::from(channels)) as i16).collect();
    Ok(resample(&mono, rate, RATE))
}

/// (channels, sample rate, interleaved samples) of a 16-bit PCM WAV.
fn pcm16_wav(bytes: &[u8]) -> Result<(u16, u32, Vec<i16>), String> {
    let u16_at = |i: usize| bytes.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |i: usize| bytes.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err("not a WAV file".into());
    }
    let (mut at, mut format) = (12, None);
    while let (Some(id), Some(len)) = (bytes.get(at..at + 4), u32_at(at + 4)) {
        let body = at + 8;
        // A recording cut short by a crash has its data length still 0 or too long: take what is there.
        let end = (body + len as usize).min(bytes.len());
        match id {
            b"fmt " => format = Some((u16_at(body), u16_at(body + 2), u32_at(body + 4), u16_at(body + 14))),
            b"data" => {
                let Some((Some(1), Some(channels @ 1..=2), Some(rate @ 8000..=48000), Some(16))) = format else {
                    return Err("only 16-bit PCM WAV, mono or stereo".into());
                };
                let end = if len == 0 { bytes.len() } else { end };
                let samples = bytes[body..end].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                return Ok((channels, rate, samples));
            }
            _ => {}
        }
        at = body + len as usize + (len as usize & 1);
    }
    Err("the WAV file has no audio".into())
}

fn resample(pcm: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || pcm.is_empty() {
        return pcm.to_vec();
    }
    let n = (pcm.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * f64::from(from) / f64::from(to);
            let (k, frac) = (pos as usize, pos.fract());
            let (a, b) = (f64::from(pcm[k]), f64::from(pcm[(k + 1).min(pcm.len() - 1)]));
            (a + (b - a) * frac) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, rate: u32, samples: &[i16]) -> Vec<u8> {
        let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut w = b"RIFF".to_vec();
        w.extend((36 + data.len() as u32).to_le_bytes());
        w.extend(b"WAVEfmt ");
        w.extend(16u32.to_le_bytes());
        w.extend(1u16.to_le_bytes());
        w.extend(channels.to_le_bytes());
        w.extend(rate.to_le_bytes());
        w.extend((rate * u32::from(channels) * 2).to_le_bytes());
        w.extend((channels * 2).to_le_bytes());
        w.extend(16u16.to_le_bytes());
        w.extend(b"data");
        w.extend((data.len() as u32).to_le_bytes());
        w.extend(data);
        w
    }

    #[test]
    fn a_stereo_8k_recording_is_mixed_and_upsampled_for_the_headset() {
        // One second: the caller (left) at 1000, the agent (right) at 3000.
        let stereo: Vec<i16> = (0..8000).flat_map(|_| [1000, 3000]).collect();
        let pcm = wav_for_headset(&wav(2, 8000, &stereo)).expect("plays");
        assert_eq!(pcm.len(), 48000, "one second at 48 kHz");
        assert!(pcm.iter().all(|&s| s == 2000), "both sides heard");
        let mono = wav_for_headset(&wav(1, 8000, &[0, 600])).expect("plays");
        assert_eq!(&mono[..6], &[0, 100, 200, 300, 400, 500], "interpolated");
    }

    #[test]
    fn a_file_cut_by_a_crash_plays_and_other_files_are_refused() {
        let mut cut = wav(1, 8000, &[7; 100]);
        cut[40..44].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(wav_for_headset(&cut).map(|p| p.len()), Ok(600), "data length 0: what is there");
        assert!(wav_for_headset(b"not a wav").is_err());
        let mut float = wav(1, 8000, &[1; 4]);
        float[20] = 3;
        assert!(wav_for_headset(&float).is_err(), "only PCM");
    }

    #[test]
    fn queues_bound_delay_and_meter_peaks() {
        let s = Shared::default();
        s.capture((0..FRAME * 8).map(|i| if i == 3 { -20000 } else { 5 }));
        assert_eq!(s.level.load(Ordering::Relaxed), 20000);
        assert!(s.take_mic_frame().is_some());
        assert_eq!(s.mic.lock().map(|m| m.len()).unwrap_or(0), FRAME, "backlog trimmed to two frames, one taken");
        s.play(&vec![1; FRAME * 20], 10);
        assert_eq!(s.queued_to_play(), FRAME * 10);
        let mut out = vec![9i16; FRAME * 11];
        s.fill(&mut out);
        assert_eq!(out[FRAME * 10], 0, "silence once the queue is empty");
    }

    #[test]
    fn the_ring_is_one_second_on_four_off() {
        assert!(ring_frame(10).iter().any(|&x| x.abs() > 1000));
        assert!(ring_frame(60).iter().all(|&x| x == 0));
        assert!(ring_frame(251).iter().any(|&x| x.abs() > 1000));
    }
}
