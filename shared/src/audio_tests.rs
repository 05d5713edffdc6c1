use super::*;

fn frame(payload: Vec<u8>) -> AudioFrame {
    AudioFrame { call: 0x0102_0304_0506_0708, seq: 0xfffe, timestamp: 0xdead_beef, payload }
}

#[test]
fn audio_frame_round_trips_with_the_documented_layout() {
    let f = frame(vec![0xaa, 0xbb, 0xcc]);
    let bytes = f.to_bytes();
    assert_eq!(
        bytes,
        [
            DATAGRAM_AUDIO_V1,
            1, 2, 3, 4, 5, 6, 7, 8, // call
            0xff, 0xfe, // seq
            0xde, 0xad, 0xbe, 0xef, // timestamp
            0xaa, 0xbb, 0xcc,
        ]
    );
    assert_eq!(AudioFrame::parse(&bytes), Ok(f.clone()));
    let mut appended = vec![9u8];
    f.encode(&mut appended);
    assert_eq!(&appended[1..], &bytes[..], "encode appends");
    let max = frame(vec![7; MAX_OPUS_PACKET]);
    assert_eq!(AudioFrame::parse(&max.to_bytes()), Ok(max));
}

#[test]
fn audio_frame_rejects_other_kinds_short_and_oversized_datagrams() {
    assert_eq!(AudioFrame::parse(&[]), Err(AudioFrameError::Empty));
    let mut other = frame(vec![1]).to_bytes();
    other[0] = 0x02;
    assert_eq!(AudioFrame::parse(&other), Err(AudioFrameError::UnknownKind(0x02)));
    assert_eq!(AudioFrame::parse(&[0x00]), Err(AudioFrameError::UnknownKind(0x00)));
    let full = frame(vec![1]).to_bytes();
    for len in 1..full.len() {
        assert_eq!(AudioFrame::parse(&full[..len]), Err(AudioFrameError::Truncated { len }), "{len} bytes");
    }
    let big = frame(vec![0; MAX_OPUS_PACKET + 1]).to_bytes();
    assert_eq!(AudioFrame::parse(&big), Err(AudioFrameError::PayloadTooLarge { len: MAX_OPUS_PACKET + 1 }));
}

fn tone(sample_rate: u32, hz: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(sample_rate);
            (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// Share of the signal's energy at `hz` (Goertzel); 1.0 for a pure tone on a bin centre.
fn tone_share(pcm: &[i16], sample_rate: u32, hz: f64) -> f64 {
    let n = pcm.len() as f64;
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in pcm {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let energy: f64 = pcm.iter().map(|&x| f64::from(x).powi(2)).sum();
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * power / (n * energy)
}

fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt()
}

/// One second of tone through the codec; returns the decoded audio after the first 200 ms
/// (codec delay and the encoder's start-up), trimmed to whole 10 Hz Goertzel windows.
fn through_opus(sample_rate: u32, hz: f64) -> Vec<i16> {
    let mut enc = OpusEncoderVoip::new(sample_rate).expect("encoder");
    let mut dec = OpusDecoderVoip::new(sample_rate).expect("decoder");
    let n = enc.frame_samples();
    assert_eq!(n, (sample_rate / 50) as usize);
    let input = tone(sample_rate, hz, n * 50);
    let mut out = Vec::new();
    for chunk in input.chunks(n) {
        let packet = enc.encode(chunk).expect("encode");
        assert!(!packet.is_empty() && packet.len() <= MAX_OPUS_PACKET);
        // 24 kbit/s is 60 bytes per 20 ms; allow VBR swings but catch a runaway bitrate.
        assert!(packet.len() < 200, "packet of {} bytes", packet.len());
        let pcm = dec.decode(&packet).expect("decode");
        assert_eq!(pcm.len(), n, "one frame out per frame in");
        out.extend(pcm);
    }
    let window = (sample_rate / 10) as usize;
    let start = n * 10;
    let whole = (out.len() - start) / window * window;
    out[start..start + whole].to_vec()
}

#[test]
fn opus_keeps_a_440_hz_and_a_1_khz_tone_at_8_and_48_khz() {
    for sample_rate in [8000, 48000] {
        for hz in [440.0, 1000.0] {
            let out = through_opus(sample_rate, hz);
            let share = tone_share(&out, sample_rate, hz);
            assert!(share > 0.8, "{hz} Hz at {sample_rate} Hz: only {share:.2} of the energy at the tone");
            let off = tone_share(&out, sample_rate, hz * 1.5);
            assert!(off < 0.05, "{hz} Hz at {sample_rate} Hz: {off:.2} of the energy at {} Hz", hz * 1.5);
            let level = rms(&out) / (8000.0 / 2f64.sqrt());
            assert!((0.5..1.5).contains(&level), "{hz} Hz at {sample_rate} Hz: level {level:.2} of the input");
        }
    }
}

#[test]
fn concealment_and_fec_return_a_full_frame() {
    let mut enc = OpusEncoderVoip::new(8000).expect("encoder");
    let mut dec = OpusDecoderVoip::new(8000).expect("decoder");
    assert_eq!(dec.conceal().len(), 160, "even before any packet");
    let input = tone(8000, 440.0, 160 * 20);
    let packets: Vec<Vec<u8>> = input.chunks(160).map(|c| enc.encode(c).expect("encode")).collect();
    for p in &packets[..10] {
        dec.decode(p).expect("decode");
    }
    let concealed = dec.conceal();
    assert_eq!(concealed.len(), 160);
    assert!(rms(&concealed) > 100.0, "concealment continues the tone instead of going silent");
    // Packet 11 is lost; packet 12's FEC rebuilds it.
    let rebuilt = dec.decode_fec(&packets[12]).expect("fec");
    assert_eq!(rebuilt.len(), 160);
    assert!(rms(&rebuilt) > 100.0);
    assert_eq!(dec.decode(&packets[12]).expect("decode").len(), 160);
}

#[test]
fn codec_refuses_bad_rates_frame_lengths_and_packets() {
    assert!(matches!(OpusEncoderVoip::new(44100), Err(OpusError::UnsupportedSampleRate(44100))));
    assert!(matches!(OpusDecoderVoip::new(11025), Err(OpusError::UnsupportedSampleRate(11025))));
    let mut enc = OpusEncoderVoip::new(16000).expect("encoder");
    assert!(matches!(enc.encode(&[0; 160]), Err(OpusError::FrameLength { expected: 320, got: 160 })));
    let mut dec = OpusDecoderVoip::new(16000).expect("decoder");
    assert!(matches!(dec.decode(&[]), Err(OpusError::EmptyPacket)));
    assert!(matches!(dec.decode_fec(&[]), Err(OpusError::EmptyPacket)));
    // TOC byte for a code-3 packet (several frames) whose frame count byte is missing.
    assert!(matches!(dec.decode(&[0x03]), Err(OpusError::Codec { .. })));
    assert_eq!(dec.conceal().len(), 320, "still usable after a refused packet");
}
