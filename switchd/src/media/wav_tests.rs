use super::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Deterministic test audio: sample `i` of the interleaved stream.
fn sample(i: u64) -> i16 {
    (i.wrapping_mul(7919) % 65536) as u16 as i16
}

fn samples(from: u64, n: usize) -> Vec<i16> {
    (from..from + n as u64).map(sample).collect()
}

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn header_matches_reference_bytes() {
    // 8 kHz stereo 16-bit with 2 frames (8 bytes) of data, as sox and every player write it.
    let reference: [u8; 44] = [
        b'R', b'I', b'F', b'F', 44, 0, 0, 0, b'W', b'A', b'V', b'E', // RIFF 36+8
        b'f', b'm', b't', b' ', 16, 0, 0, 0, 1, 0, 2, 0, // fmt, 16 bytes, PCM, 2 ch
        0x40, 0x1f, 0, 0, 0x00, 0x7d, 0, 0, // 8000 Hz, 32000 B/s
        4, 0, 16, 0, b'd', b'a', b't', b'a', 8, 0, 0, 0, // align 4, 16 bit, data 8
    ];
    assert_eq!(header_bytes(WavFormat::STEREO_8K, 8), reference);

    let d = dir();
    let p = d.path().join("ref.wav");
    let mut w = WavWriter::create(&p, WavFormat::STEREO_8K).expect("create");
    let fresh = std::fs::read(&p).expect("read");
    assert_eq!(fresh.len(), 44);
    assert_eq!(
        &fresh[4..8],
        &[0, 0, 0, 0],
        "RIFF size 0 before the first sync"
    );
    assert_eq!(
        &fresh[40..44],
        &[0, 0, 0, 0],
        "data size 0 before the first sync"
    );
    assert_eq!(&fresh[8..40], &reference[8..40]);
    w.write_stereo(&[1, -1], &[256]).expect("write");
    assert_eq!(w.finish().expect("finish"), 2);
    let bytes = std::fs::read(&p).expect("read");
    assert_eq!(&bytes[..44], &reference);
    assert_eq!(&bytes[44..], &[1, 0, 0, 1, 0xff, 0xff, 0, 0]);
}

#[test]
fn finished_file_reads_back_exactly() {
    let d = dir();
    for format in [WavFormat::MONO_8K, WavFormat::STEREO_8K] {
        let p = d.path().join(format!("f{}.wav", format.channels));
        let mut w = WavWriter::create(&p, format).expect("create");
        let mut all = Vec::new();
        for k in 0..50u64 {
            let block = samples(k * 320, 160 * usize::from(format.channels));
            w.write_frames(&block).expect("write");
            all.extend_from_slice(&block);
            if w.should_sync() {
                w.sync().expect("sync");
            }
        }
        assert_eq!(w.frames_synced(), 8000, "synced after one second of audio");
        assert_eq!(w.finish().expect("finish"), 8000);
        let (got_format, got) = read_wav(&p).expect("read");
        assert_eq!(got_format, format);
        assert_eq!(got, all);
        let r = repair(&p).expect("repair");
        assert!(!r.changed, "a complete file is left unchanged");
        assert_eq!(r.frames, 8000);
    }
}

#[test]
fn empty_finished_file_is_valid() {
    let d = dir();
    let p = d.path().join("empty.wav");
    WavWriter::create(&p, WavFormat::STEREO_8K)
        .expect("create")
        .finish()
        .expect("finish");
    assert_eq!(read_wav(&p).expect("read"), (WavFormat::STEREO_8K, vec![]));
}

#[test]
fn write_stereo_pads_the_shorter_leg() {
    let d = dir();
    let p = d.path().join("pad.wav");
    let mut w = WavWriter::create(&p, WavFormat::STEREO_8K).expect("create");
    w.write_stereo(&[1, 2, 3], &[10]).expect("write");
    w.write_stereo(&[], &[20, 30]).expect("write");
    w.finish().expect("finish");
    let (_, got) = read_wav(&p).expect("read");
    assert_eq!(got, vec![1, 10, 2, 0, 3, 0, 0, 20, 0, 30]);
}

#[test]
fn rejects_bad_formats_and_partial_frames() {
    let d = dir();
    let p = d.path().join("x.wav");
    for f in [
        WavFormat {
            channels: 0,
            sample_rate: 8000,
        },
        WavFormat {
            channels: 3,
            sample_rate: 8000,
        },
        WavFormat {
            channels: 1,
            sample_rate: 0,
        },
    ] {
        assert!(matches!(
            WavWriter::create(&p, f),
            Err(WavError::UnsupportedFormat { .. })
        ));
    }
    let mut w = WavWriter::create(&p, WavFormat::STEREO_8K).expect("create");
    assert!(matches!(
        w.write_frames(&[1, 2, 3]),
        Err(WavError::PartialFrame { .. })
    ));
    let mut m = WavWriter::create(d.path().join("m.wav"), WavFormat::MONO_8K).expect("create");
    assert!(matches!(
        m.write_stereo(&[1], &[2]),
        Err(WavError::PartialFrame { .. })
    ));
}

#[test]
fn forgotten_writer_is_repaired_to_every_frame() {
    let d = dir();
    let p = d.path().join("crash.wav");
    let mut w = WavWriter::create(&p, WavFormat::STEREO_8K).expect("create");
    let all = samples(0, 2 * 12_345);
    w.write_frames(&all[..2 * 9000]).expect("write");
    w.sync().expect("sync");
    w.write_frames(&all[2 * 9000..]).expect("write");
    std::mem::forget(w); // a crash: no finish, no drop
    assert!(
        matches!(read_wav(&p), Err(WavError::SizeMismatch { .. })),
        "a player rejects it"
    );
    let r = repair(&p).expect("repair");
    assert_eq!(
        (r.frames, r.declared_frames, r.dropped_bytes, r.changed),
        (12_345, 9000, 0, true)
    );
    assert_eq!(read_wav(&p).expect("read").1, all);
    assert!(!repair(&p).expect("again").changed, "repair is idempotent");
}

#[test]
fn never_synced_copy_with_partial_frame_is_repaired() {
    // A copy taken mid-way: header sizes 0, and the last frame cut in the middle.
    let d = dir();
    let p = d.path().join("w.wav");
    let mut w = WavWriter::create(&p, WavFormat::STEREO_8K).expect("create");
    let all = samples(0, 2 * 500);
    w.write_frames(&all).expect("write");
    let mut bytes = std::fs::read(&p).expect("read");
    bytes.truncate(44 + 4 * 321 + 3);
    let copy = d.path().join("copy.wav");
    std::fs::write(&copy, &bytes).expect("write copy");
    let r = repair(&copy).expect("repair");
    assert_eq!((r.frames, r.declared_frames, r.dropped_bytes), (321, 0, 3));
    assert_eq!(read_wav(&copy).expect("read").1, all[..2 * 321]);
}

#[test]
fn dropped_writer_leaves_a_playable_file() {
    let d = dir();
    let p = d.path().join("drop.wav");
    let mut w = WavWriter::create(&p, WavFormat::MONO_8K).expect("create");
    w.write_frames(&samples(0, 100)).expect("write");
    drop(w);
    assert_eq!(read_wav(&p).expect("read").1, samples(0, 100));
}

#[test]
fn header_declaring_more_than_the_file_is_repaired_down() {
    let d = dir();
    let p = d.path().join("short.wav");
    let mut w = WavWriter::create(&p, WavFormat::STEREO_8K).expect("create");
    w.write_frames(&samples(0, 200)).expect("write");
    w.finish().expect("finish");
    let f = OpenOptions::new().write(true).open(&p).expect("open");
    f.set_len(44 + 4 * 60).expect("truncate");
    drop(f);
    assert!(read_wav(&p).is_err());
    let r = repair(&p).expect("repair");
    assert_eq!((r.frames, r.declared_frames), (60, 100));
    assert_eq!(read_wav(&p).expect("read").1, samples(0, 120));
}

#[test]
fn garbage_and_truncated_files_are_errors_not_panics() {
    let d = dir();
    let good = header_bytes(WavFormat::STEREO_8K, 4);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short", good[..43].to_vec()),
        (
            "text",
            b"this is not a wav file at all, just some text to fill".to_vec(),
        ),
    ];
    let mut patch = |name: &'static str, at: usize, bytes: &[u8]| {
        let mut h = good.to_vec();
        h[at..at + bytes.len()].copy_from_slice(bytes);
        h.extend_from_slice(&[0; 4]);
        cases.push((name, h));
    };
    patch("riff", 0, b"RIFX");
    patch("wave", 8, b"AVI ");
    patch("fmt", 12, b"junk");
    patch("fmt size", 16, &[18, 0, 0, 0]);
    patch("float", 20, &[3, 0]);
    patch("channels", 22, &[6, 0]);
    patch("rate", 24, &[0, 0, 0, 0]);
    patch("byte rate", 28, &[1, 0, 0, 0]);
    patch("align", 32, &[2, 0]);
    patch("bits", 34, &[8, 0]);
    patch("data", 36, b"LIST");
    for (name, bytes) in cases {
        let p = d.path().join("bad.wav");
        std::fs::write(&p, &bytes).expect("write");
        assert!(read_wav(&p).is_err(), "{name}: read");
        assert!(repair(&p).is_err(), "{name}: repair");
        assert_eq!(
            std::fs::read(&p).expect("read"),
            bytes,
            "{name}: left untouched"
        );
    }
    assert!(matches!(
        repair(d.path().join("missing.wav")),
        Err(WavError::Io { .. })
    ));
    // Every truncation and a sweep of single-byte corruptions of a real file: never a panic.
    let p = d.path().join("real.wav");
    let mut w = WavWriter::create(&p, WavFormat::STEREO_8K).expect("create");
    w.write_frames(&samples(0, 20)).expect("write");
    w.finish().expect("finish");
    let real = std::fs::read(&p).expect("read");
    let q = d.path().join("fuzz.wav");
    for len in 0..real.len() {
        std::fs::write(&q, &real[..len]).expect("write");
        let _ = read_wav(&q);
        let _ = repair(&q);
    }
    for at in 0..44 {
        for v in [0u8, 1, 0x7f, 0xff] {
            let mut b = real.clone();
            b[at] = v;
            std::fs::write(&q, &b).expect("write");
            let _ = read_wav(&q);
            let _ = repair(&q);
        }
    }
}

const CHILD_ENV: &str = "REXIAN_WAV_CRASH_CHILD";
const CHILD_FRAMES_PER_WRITE: usize = 160;

/// Runs only as the child of `killed_process_loses_no_written_frame`: writes 20 ms blocks, syncs
/// every second of audio, and after each write prints how many frames were written and synced.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut w = WavWriter::create(&path, WavFormat::STEREO_8K).expect("create");
    let mut out = std::io::stdout().lock();
    for k in 0..20_000u64 {
        let block = samples(
            k * 2 * CHILD_FRAMES_PER_WRITE as u64,
            2 * CHILD_FRAMES_PER_WRITE,
        );
        w.write_frames(&block).expect("write");
        if w.should_sync() {
            w.sync().expect("sync");
        }
        writeln!(
            out,
            "written {} synced {}",
            w.frames_written(),
            w.frames_synced()
        )
        .expect("print");
        out.flush().expect("flush");
        std::thread::sleep(Duration::from_micros(200));
    }
    // Wait to be killed; never finish.
    std::thread::sleep(Duration::from_secs(60));
    std::mem::forget(w);
}

#[test]
fn killed_process_loses_no_written_frame() {
    let d = dir();
    let p = d.path().join("killed.wav");
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "media::wav::tests::crash_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &p)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let parse = |line: &str| -> Option<(u64, u64)> {
        let mut it = line.strip_prefix("written ")?.split(" synced ");
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut written, mut synced) = (0, 0);
    // Kill it mid-second: two syncs done and some frames written since the last one.
    while !(synced >= 16_000 && written > synced + 1000) {
        assert!(Instant::now() < deadline, "child too slow");
        let line = lines.next().expect("child ended early").expect("read line");
        if let Some((w, s)) = parse(&line) {
            (written, synced) = (w, s);
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    // Lines the child printed before it died: each was printed after its frames were written.
    for line in lines.map_while(Result::ok) {
        if let Some((w, s)) = parse(&line) {
            (written, synced) = (w, s);
        }
    }
    let header = std::fs::read(&p).expect("read");
    let declared = u32::from_le_bytes([header[40], header[41], header[42], header[43]]);
    assert!(
        u64::from(declared) / 4 >= synced,
        "header covers the last reported sync"
    );
    let r = repair(&p).expect("repair");
    assert!(
        r.frames >= written,
        "recovered {} frames, child reported {written}",
        r.frames
    );
    let (format, got) = read_wav(&p).expect("read repaired");
    assert_eq!(format, WavFormat::STEREO_8K);
    assert_eq!(
        got,
        samples(0, got.len()),
        "every recovered frame is the audio written"
    );
}
