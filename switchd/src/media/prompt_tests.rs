use super::*;
use std::time::Instant;

const PHRASE: &str = "您好，欢迎致电12365";

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = tempfile::tempdir().expect("tempdir");
    let prompts = root.path().join("prompts");
    let cache = root.path().join("cache").join("tts");
    (root, prompts, cache)
}

fn prompts_with(tts: TtsConfig) -> (tempfile::TempDir, Prompts) {
    let (root, prompts, cache) = dirs();
    (root, Prompts::new(prompts, cache, tts))
}

fn sine(freq: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
    let step = std::f64::consts::TAU * freq / f64::from(rate);
    (0..len)
        .map(|n| (amplitude * (step * n as f64).sin()).round() as i16)
        .collect()
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// Amplitude of the `freq` component (Goertzel), normalised so a full-scale sine of amplitude A
/// gives about A.
fn goertzel(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len() as f64
}

fn zero_crossings(samples: &[i16]) -> usize {
    samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count()
}

fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// The middle of a signal, clear of the resampler's edge transients.
fn middle(samples: &[i16]) -> &[i16] {
    let q = samples.len() / 8;
    &samples[q..samples.len() - q]
}

/// A canonical 16-bit PCM WAV image.
fn wav_bytes(channels: u16, rate: u32, interleaved: &[i16]) -> Vec<u8> {
    let data_len = (interleaved.len() * 2) as u32;
    let mut out = wav::header_bytes(
        WavFormat {
            channels,
            sample_rate: rate,
        },
        data_len,
    )
    .to_vec();
    out.extend(interleaved.iter().flat_map(|s| s.to_le_bytes()));
    out
}

// --- spell_digits -------------------------------------------------------------------------------

#[test]
fn spell_digits_spells_each_digit_and_leaves_other_text() {
    assert_eq!(spell_digits("12365"), "一二三六五");
    assert_eq!(spell_digits("0123456789"), "零一二三四五六七八九");
    assert_eq!(spell_digits(PHRASE), "您好，欢迎致电一二三六五");
    assert_eq!(
        spell_digits("工单2024-0815号，请按1"),
        "工单二零二四-零八一五号，请按一"
    );
    assert_eq!(spell_digits("没有数字"), "没有数字");
    assert_eq!(spell_digits(""), "");
    // Full-width digits are left to espeak-ng; only ASCII digits are spelled.
    assert_eq!(spell_digits("１2"), "１二");
}

// --- tone ---------------------------------------------------------------------------------------

#[test]
fn tone_has_the_frequency_length_and_fades() {
    let beep = tone(1000.0, 500, 8000);
    assert_eq!(beep.len(), 4000);
    // 1 kHz for 0.5 s crosses zero about 1000 times.
    let crossings = zero_crossings(&beep);
    assert!(
        (995..=1002).contains(&crossings),
        "{crossings} zero crossings"
    );
    let at_1k = goertzel(&beep, SAMPLE_RATE, 1000.0);
    let at_1200 = goertzel(&beep, SAMPLE_RATE, 1200.0);
    assert!(at_1k > 7500.0, "1 kHz amplitude {at_1k}");
    assert!(db(at_1200 / at_1k) < -30.0, "1.2 kHz leak {at_1200}");
    // Starts and ends near silence, full level in the middle.
    assert!(
        beep[0].abs() < 100 && beep[3999].abs() < 400,
        "{} {}",
        beep[0],
        beep[3999]
    );
    let peak = middle(&beep).iter().map(|s| s.abs()).max().unwrap_or(0);
    assert!((7900..=8000).contains(&peak), "peak {peak}");
    // The 5 ms (40-sample) fade-in: the first 5 ms is quieter than the next.
    assert!(rms(&beep[..40]) < rms(&beep[40..80]) * 0.7);
}

#[test]
fn tone_handles_tiny_lengths() {
    assert!(tone(1000.0, 0, 1000).is_empty());
    assert_eq!(tone(1000.0, 1, 1000).len(), 8);
}

// --- resample -----------------------------------------------------------------------------------

#[test]
fn resample_22050_to_8000_keeps_a_1khz_tone() {
    let input = sine(1000.0, 22050, 22050, 10000.0);
    let out = resample(&input, 22050, 8000);
    assert_eq!(out.len(), 8000);
    let mid = middle(&out);
    let crossings = zero_crossings(mid);
    let expected = 2.0 * 1000.0 * mid.len() as f64 / 8000.0;
    assert!(
        (crossings as f64 - expected).abs() <= 2.0,
        "{crossings} crossings, expected {expected}"
    );
    let level = goertzel(mid, 8000, 1000.0);
    assert!((db(level / 10000.0)).abs() < 0.1, "1 kHz level {level}");
}

#[test]
fn resample_22050_to_8000_attenuates_3900hz_by_more_than_30db() {
    let pass = resample(&sine(1000.0, 22050, 22050, 10000.0), 22050, 8000);
    let stop = resample(&sine(3900.0, 22050, 22050, 10000.0), 22050, 8000);
    let attenuation = db(rms(middle(&stop)) / rms(middle(&pass)));
    eprintln!("3.9 kHz after 22050->8000: {attenuation:.1} dB relative to 1 kHz");
    assert!(attenuation < -30.0, "3.9 kHz only {attenuation:.1} dB down");
}

#[test]
fn resample_22050_to_8000_does_not_alias_above_nyquist_into_speech() {
    // 5 kHz would fold to 3 kHz, 7 kHz to 1 kHz; both must be gone.
    let pass = rms(middle(&resample(
        &sine(1000.0, 22050, 22050, 10000.0),
        22050,
        8000,
    )));
    for f in [4500.0, 5000.0, 7000.0, 10000.0] {
        let out = resample(&sine(f, 22050, 22050, 10000.0), 22050, 8000);
        let level = db(rms(middle(&out)) / pass);
        eprintln!("{f} Hz after 22050->8000: {level:.1} dB relative to 1 kHz");
        assert!(level < -50.0, "{f} Hz aliases at {level:.1} dB");
    }
}

#[test]
fn resample_passes_the_telephone_band_flat() {
    for f in [300.0, 2000.0, 3200.0] {
        let out = resample(&sine(f, 16000, 16000, 10000.0), 16000, 8000);
        let level = db(goertzel(middle(&out), 8000, f) / 10000.0);
        assert!(level.abs() < 0.5, "{f} Hz at {level:.2} dB");
    }
}

#[test]
fn resample_handles_other_rates_and_edge_cases() {
    let tone_at = |rate: u32| sine(1000.0, rate, rate as usize, 10000.0);
    // Up, down and an awkward ratio that takes the rounded-phase path (8001/8000).
    for (from, to) in [
        (8000, 16000),
        (44100, 8000),
        (48000, 8000),
        (8001, 8000),
        (11025, 8000),
    ] {
        let out = resample(&tone_at(from), from, to);
        let want = (u64::from(from) * u64::from(to)).div_ceil(u64::from(from));
        assert_eq!(out.len() as u64, want, "{from}->{to}");
        let level = db(goertzel(middle(&out), to, 1000.0) / 10000.0);
        assert!(level.abs() < 0.2, "{from}->{to}: 1 kHz at {level:.2} dB");
    }
    assert_eq!(resample(&[1, 2, 3], 8000, 8000), vec![1, 2, 3]);
    assert!(resample(&[], 22050, 8000).is_empty());
    assert_eq!(resample(&[5], 0, 8000), vec![5]);
    // Full-scale square-ish input overshoots in the filter; it must clamp, not wrap.
    let loud: Vec<i16> = (0..2000)
        .map(|n| if n / 20 % 2 == 0 { i16::MAX } else { i16::MIN })
        .collect();
    let out = resample(&loud, 22050, 8000);
    assert!(out.iter().any(|&s| s > 20000) && out.iter().any(|&s| s < -20000));
}

// --- WAV parsing --------------------------------------------------------------------------------

#[test]
fn parse_wav_tolerates_pipe_sizes_and_extra_chunks() {
    let samples = [1i16, -2, 3, -4];
    // espeak-ng writing to a pipe: sizes it could not fill in.
    for size in [0u32, 0xFFFF_FFFF, 0x7FFF_F000] {
        let mut bytes = wav_bytes(1, 22050, &samples);
        bytes[4..8].copy_from_slice(&size.to_le_bytes());
        bytes[40..44].copy_from_slice(&size.to_le_bytes());
        let wav = parse_wav(&bytes).expect("stream WAV");
        assert_eq!((wav.channels, wav.sample_rate), (1, 22050));
        assert_eq!(wav.samples, samples);
    }
    // A LIST chunk of odd length (padded) between fmt and data, and a trailing odd byte.
    let mut bytes = wav_bytes(2, 16000, &samples);
    let data = bytes.split_off(36);
    bytes.extend_from_slice(b"LIST\x03\x00\x00\x00abc\x00");
    bytes.extend_from_slice(&data);
    bytes.push(0x7F);
    let wav = parse_wav(&bytes).expect("WAV with LIST");
    assert_eq!((wav.channels, wav.sample_rate), (2, 16000));
    assert_eq!(wav.samples, samples);
}

#[test]
fn parse_wav_accepts_extensible_pcm_and_refuses_other_encodings() {
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&FORMAT_EXTENSIBLE.to_le_bytes());
    fmt.extend_from_slice(&2u16.to_le_bytes());
    fmt.extend_from_slice(&48000u32.to_le_bytes());
    fmt.extend_from_slice(&192000u32.to_le_bytes());
    fmt.extend_from_slice(&4u16.to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    fmt.extend_from_slice(&22u16.to_le_bytes()); // cbSize
    fmt.extend_from_slice(&16u16.to_le_bytes()); // valid bits
    fmt.extend_from_slice(&3u32.to_le_bytes()); // channel mask
    fmt.extend_from_slice(&[
        1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71,
    ]);
    assert_eq!(parse_fmt(&fmt), Ok((2, 48000)));

    let mut float = wav_bytes(1, 8000, &[0, 0]);
    float[20..22].copy_from_slice(&3u16.to_le_bytes());
    assert!(parse_wav(&float).expect_err("float").contains("not PCM"));
    let mut eight_bit = wav_bytes(1, 8000, &[0, 0]);
    eight_bit[34..36].copy_from_slice(&8u16.to_le_bytes());
    assert!(parse_wav(&eight_bit).expect_err("8-bit").contains("8-bit"));
    assert!(parse_wav(b"OggS not a wav at all").is_err());
    assert!(parse_wav(&wav_bytes(1, 8000, &[])[..36])
        .expect_err("no data")
        .contains("no data"));
}

// --- file() -------------------------------------------------------------------------------------

#[test]
fn file_refuses_names_that_could_leave_the_folder() {
    let (_root, prompts) = prompts_with(TtsConfig::default());
    for name in [
        "../x",
        "..",
        "/etc/passwd",
        "a/b",
        "x.wav.wav",
        "",
        ".wav",
        "a b",
        "欢迎",
        "a\0b",
    ] {
        match prompts.file(name) {
            Err(PromptError::NameNotAllowed { name: n }) => assert_eq!(n, name),
            other => panic!("{name:?}: {:?}", other.map(|a| a.len())),
        }
    }
    assert!(matches!(
        prompts.file(&"a".repeat(65)),
        Err(PromptError::NameNotAllowed { .. })
    ));
}

#[test]
fn file_converts_a_16khz_stereo_wav_to_8khz_mono() {
    let (_root, dir, cache) = dirs();
    let prompts = Prompts::new(dir.clone(), cache, TtsConfig::default());
    // Left 1 kHz, right silent: the mono mix is 1 kHz at half level.
    let left = sine(1000.0, 16000, 16000, 12000.0);
    let interleaved: Vec<i16> = left.iter().flat_map(|&l| [l, 0]).collect();
    fs::write(dir.join("welcome.wav"), wav_bytes(2, 16000, &interleaved)).expect("write");

    let out = prompts.file("welcome").expect("welcome");
    assert_eq!(out.len(), 8000);
    let level = goertzel(middle(&out), 8000, 1000.0);
    assert!((level - 6000.0).abs() < 60.0, "1 kHz level {level}");
    // With or without the extension, the same cached samples.
    let again = prompts.file("welcome.wav").expect("welcome.wav");
    assert!(Arc::ptr_eq(&out, &again));
}

#[test]
fn file_is_read_again_after_the_administrator_replaces_it() {
    let (_root, dir, cache) = dirs();
    let prompts = Prompts::new(dir.clone(), cache, TtsConfig::default());
    let path = dir.join("menu.wav");
    fs::write(&path, wav_bytes(1, 8000, &[1, 2, 3])).expect("write");
    assert_eq!(&*prompts.file("menu").expect("menu"), &[1, 2, 3]);
    fs::write(&path, wav_bytes(1, 8000, &[4, 5, 6, 7])).expect("rewrite");
    assert_eq!(&*prompts.file("menu").expect("menu"), &[4, 5, 6, 7]);
}

#[test]
fn file_errors_are_typed_and_name_the_file() {
    let (_root, dir, cache) = dirs();
    let prompts = Prompts::new(dir.clone(), cache, TtsConfig::default());
    match prompts.file("absent") {
        Err(PromptError::NotFound { name, path }) => {
            assert_eq!(name, "absent");
            assert_eq!(path, dir.join("absent.wav"));
        }
        other => panic!("{:?}", other.map(|a| a.len())),
    }
    let mut float = wav_bytes(1, 44100, &[0, 0]);
    float[20..22].copy_from_slice(&3u16.to_le_bytes());
    fs::write(dir.join("float.wav"), float).expect("write");
    let err = prompts.file("float").expect_err("float WAV");
    assert!(matches!(err, PromptError::BadWav { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("float.wav") && msg.contains("16-bit PCM") && msg.contains("8 kHz mono"),
        "{msg}"
    );
}

// --- tts() --------------------------------------------------------------------------------------

#[test]
fn tts_renders_a_real_phrase_through_espeak_ng() {
    let (root, prompts) = prompts_with(TtsConfig::default());
    let started = Instant::now();
    let audio = prompts.tts(PHRASE).expect("espeak-ng renders");
    let took = started.elapsed();
    let seconds = audio.len() as f64 / f64::from(SAMPLE_RATE);
    assert!((1.0..=8.0).contains(&seconds), "{seconds} s of audio");
    assert!(rms(&audio) > 500.0, "rms {}", rms(&audio));
    // Speech, not a tone: energy in several 100 ms windows.
    let voiced = audio.chunks(800).filter(|c| rms(c) > 300.0).count();
    assert!(voiced >= 10, "{voiced} voiced windows");
    eprintln!("rendered {PHRASE:?}: {seconds:.2} s of audio in {took:?} (debug build)");

    // One cache file, named by the hash, 8 kHz mono, same samples; no temp file left over.
    let cache = root.path().join("cache").join("tts");
    let files: Vec<_> = fs::read_dir(&cache)
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let key = tts_cache_key(&TtsConfig::default(), &spell_digits(PHRASE));
    assert_eq!(files[0], cache.join(format!("{key}.wav")));
    let (format, on_disk) = wav::read_wav(&files[0]).expect("cache WAV");
    assert_eq!(format, WavFormat::MONO_8K);
    assert_eq!(&on_disk[..], &audio[..]);

    // The second call comes from memory: the very same allocation.
    let again = prompts.tts(PHRASE).expect("cached");
    assert!(Arc::ptr_eq(&audio, &again));
}

#[test]
fn tts_is_served_from_the_disk_cache_after_a_restart_without_espeak() {
    let (_root, dir, cache) = dirs();
    let first = Prompts::new(dir.clone(), cache.clone(), TtsConfig::default())
        .tts(PHRASE)
        .expect("rendered");
    let broken = TtsConfig {
        program: PathBuf::from("/nonexistent/espeak-ng"),
        ..TtsConfig::default()
    };
    let restarted = Prompts::new(dir, cache, broken);
    let second = restarted.tts(PHRASE).expect("from the disk cache");
    assert_eq!(&first[..], &second[..]);
    // Leading/trailing space does not change the key; other text needs the (missing) program.
    assert!(restarted.tts(&format!(" {PHRASE} ")).is_ok());
    assert!(matches!(
        restarted.tts("另一句话"),
        Err(PromptError::TtsMissing { .. })
    ));
}

#[test]
fn tts_with_a_missing_program_is_a_typed_error() {
    let (_root, prompts) = prompts_with(TtsConfig {
        program: PathBuf::from("/nonexistent/espeak-ng"),
        ..TtsConfig::default()
    });
    let err = prompts.tts(PHRASE).expect_err("no program");
    match &err {
        PromptError::TtsMissing { program, source } => {
            assert_eq!(program, Path::new("/nonexistent/espeak-ng"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("/nonexistent/espeak-ng"));
}

#[test]
fn tts_failure_reports_exit_status_and_stderr() {
    let (_root, prompts) = prompts_with(TtsConfig {
        // Not "no-such-voice": espeak-ng 1.51 reads that as Norwegian ("no") and exits 0.
        voice: "nonexistent".to_owned(),
        ..TtsConfig::default()
    });
    match prompts.tts(PHRASE) {
        Err(PromptError::TtsFailed { reason, stderr, .. }) => {
            assert!(reason.contains("exit"), "{reason}");
            assert!(stderr.contains("voice"), "{stderr}");
        }
        other => panic!("{:?}", other.map(|a| a.len())),
    }
}

#[test]
fn tts_refuses_empty_and_overlong_text_without_running_anything() {
    let (_root, prompts) = prompts_with(TtsConfig {
        program: PathBuf::from("/nonexistent/espeak-ng"),
        ..TtsConfig::default()
    });
    assert!(matches!(prompts.tts("  \n"), Err(PromptError::EmptyText)));
    let long = "话".repeat(MAX_TTS_TEXT_BYTES / 3 + 1);
    assert!(matches!(
        prompts.tts(&long),
        Err(PromptError::TextTooLong { .. })
    ));
}

#[test]
fn tts_text_starting_with_a_dash_is_spoken_not_taken_as_an_option() {
    let (_root, prompts) = prompts_with(TtsConfig::default());
    let audio = prompts.tts("-h 您好").expect("rendered");
    assert!(rms(&audio) > 500.0);
}

#[test]
fn tts_cache_key_depends_on_voice_speed_and_spelled_text_only() {
    let base = TtsConfig::default();
    let key = tts_cache_key(&base, "您好");
    assert_eq!(key.len(), 64);
    let moved = TtsConfig {
        program: PathBuf::from("/opt/espeak-ng"),
        ..base.clone()
    };
    assert_eq!(tts_cache_key(&moved, "您好"), key);
    let slower = TtsConfig {
        speed_wpm: 120,
        ..base.clone()
    };
    let other_voice = TtsConfig {
        voice: "cmn".to_owned(),
        ..base.clone()
    };
    assert_ne!(tts_cache_key(&slower, "您好"), key);
    assert_ne!(tts_cache_key(&other_voice, "您好"), key);
    assert_ne!(tts_cache_key(&base, "您好。"), key);
}

#[test]
fn a_damaged_cache_file_is_rendered_again() {
    let (_root, dir, cache) = dirs();
    let prompts = Prompts::new(dir, cache.clone(), TtsConfig::default());
    let key = tts_cache_key(&TtsConfig::default(), "您好");
    fs::write(cache.join(format!("{key}.wav")), b"RIFF half a file").expect("write");
    let audio = prompts.tts("您好").expect("re-rendered");
    assert!(!audio.is_empty());
    let (_, on_disk) = wav::read_wav(cache.join(format!("{key}.wav"))).expect("replaced");
    assert_eq!(&on_disk[..], &audio[..]);
}

#[test]
fn stale_temp_files_are_removed_at_start_and_fresh_ones_kept() {
    let (_root, dir, cache) = dirs();
    fs::create_dir_all(&cache).expect("mkdir");
    let stale = cache.join(".old.1.0.tmp");
    let fresh = cache.join(".new.1.1.tmp");
    fs::write(&stale, b"x").expect("write");
    fs::write(&fresh, b"x").expect("write");
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(old))
        .expect("age the file");
    let _prompts = Prompts::new(dir, cache, TtsConfig::default());
    assert!(!stale.exists());
    assert!(fresh.exists());
}

// --- helpers ------------------------------------------------------------------------------------

#[test]
fn lru_forgets_the_least_recently_used_entry() {
    let mut lru = Lru::new(2);
    lru.insert("a", 1);
    lru.insert("b", 2);
    assert_eq!(lru.get(&"a"), Some(1));
    lru.insert("c", 3);
    assert_eq!(lru.get(&"b"), None);
    assert_eq!(lru.get(&"a"), Some(1));
    assert_eq!(lru.get(&"c"), Some(3));
    lru.insert("c", 4);
    assert_eq!(lru.get(&"c"), Some(4));
    assert_eq!(lru.entries.len(), 2);
}

#[test]
fn prompts_is_cheap_to_clone_and_shares_its_caches() {
    let (_root, dir, cache) = dirs();
    let prompts = Prompts::new(dir.clone(), cache, TtsConfig::default());
    fs::write(dir.join("x.wav"), wav_bytes(1, 8000, &[9, 9])).expect("write");
    let a = prompts.file("x").expect("x");
    let b = prompts.clone().file("x").expect("x");
    assert!(Arc::ptr_eq(&a, &b));
}
