//! Calls through the telephony engine from a real carrier peer: SIPp (Debian's `sip-tester`)
//! calls the demo routes over a loopback trunk with G.711 A-law audio and RFC 2833 digits
//! from Debian's captures. What is checked is what an operator sees: the call detail records
//! (`switchd call list --json`) and the recorded WAV files.

use rexian_tests::{tone_wav, sipp, sipp_command, sipp_with, Daemon};
use std::path::Path;
use std::time::{Duration, Instant};
use switchd::media::wav::read_wav;

/// Seconds of 20 ms frames louder than quiet line noise.
fn voiced_seconds(samples: &[i16]) -> f64 {
    let voiced = samples
        .chunks(160)
        .filter(|f| {
            let energy: f64 = f.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / f.len() as f64;
            energy.sqrt() > 200.0
        })
        .count();
    voiced as f64 * 0.02
}

#[test]
fn echo_test_answers_and_reports_the_digits() {
    let daemon = Daemon::start_demo();
    sipp("echo_dtmf.xml", daemon.sip_addr, "9196", 1);
    let cdrs = daemon.ended_calls();
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    let cdr = &cdrs[0];
    assert_eq!(cdr["route"], "echo");
    assert_eq!(cdr["callee"], "9196");
    assert_eq!(cdr["trunk"], "demo-loopback");
    assert_eq!(cdr["digits"], "123", "the three RFC 2833 digits, each once: {cdr:#}");
    assert_eq!(cdr["cause"], "caller_hangup");
    assert!(cdr["answered_at"].is_string() && cdr["ended_at"].is_string(), "{cdr:#}");
    assert!(daemon.log().contains("DTMF"), "digits are logged as events");
}

#[test]
fn echo_test_over_tcp_answers_and_reports_the_digits() {
    // The same scenario over one TCP connection (`-t t1`) to the SIP port: no retransmissions,
    // responses and our messages on that connection, Via and Contact saying TCP.
    let daemon = Daemon::start_demo();
    sipp_with("echo_dtmf.xml", daemon.sip_addr, "9196", 1, &["-t", "t1"]);
    let cdrs = daemon.ended_calls();
    assert_eq!(cdrs.len(), 1, "{cdrs:#?}");
    let cdr = &cdrs[0];
    assert_eq!((cdr["route"].as_str(), cdr["trunk"].as_str()), (Some("echo"), Some("demo-loopback")));
    assert_eq!(cdr["digits"], "123", "the three RFC 2833 digits, each once: {cdr:#}");
    assert_eq!(cdr["cause"], "caller_hangup");
    assert!(cdr["answered_at"].is_string() && cdr["ended_at"].is_string(), "{cdr:#}");
}

#[test]
fn prompt_then_record_keeps_the_callers_message() {
    let daemon = Daemon::start_demo();
    sipp("record_message.xml", daemon.sip_addr, "9197", 1);
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["route"], "prompt_record");
    let recording = &cdr["recordings"][0];
    let path = recording["path"].as_str().expect("a recording path");
    let (format, samples) = read_wav(daemon.data_dir.join(path)).expect("a complete, playable WAV");
    assert_eq!((format.channels, format.sample_rate), (1, 8000));
    let seconds = samples.len() as f64 / 8000.0;
    let noted = recording["seconds"].as_f64().expect("seconds in the CDR");
    assert!((seconds - noted).abs() < 0.05, "CDR says {noted} s, file has {seconds} s");
    // SIPp spoke 7.1 s (the capture: 6.15 s of it voiced, in 30 ms packets) and stayed silent
    // 1.3 s before BYE; the recording starts after the prompt and beep, within its first 6 s.
    assert!((8.4..=14.5).contains(&seconds), "recorded {seconds} s");
    let voiced = voiced_seconds(&samples);
    assert!((5.5..=6.5).contains(&voiced), "{voiced} s of the caller's speech in the file");
}

#[test]
fn a_crash_mid_message_leaves_a_playable_recording() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut daemon = Daemon::start_in(dir.path(), &["--demo"]);
    let (mut cmd, _sipp_dir) = sipp_command("record_long.xml", daemon.sip_addr, "9197", 1);
    let mut sipp = cmd.stdout(std::process::Stdio::null()).spawn().expect("start sipp");
    let recordings = dir.path().join("recordings");
    // Wait until about 4 s of message are on disk (16 kB/s of 8 kHz 16-bit mono).
    let deadline = Instant::now() + Duration::from_secs(45);
    let wav = loop {
        if let Some(f) = find_wav(&recordings).filter(|f| f.metadata().map(|m| m.len()).unwrap_or(0) > 44 + 4 * 16_000) {
            break f;
        }
        if let Ok(Some(status)) = sipp.try_wait() {
            panic!("SIPp ended ({status}) before 4 s were recorded; switchd's log:\n{}", daemon.log());
        }
        assert!(Instant::now() < deadline, "no recording grew to 4 s; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    daemon.kill9();
    let _ = sipp.kill();
    let _ = sipp.wait();
    let len_at_crash = wav.metadata().expect("wav").len();
    // The restarted daemon closes the interrupted call and repairs its recording.
    let daemon = Daemon::start_in(dir.path(), &["--demo"]);
    let (_, samples) = read_wav(&wav).expect("the repaired WAV plays");
    let seconds = samples.len() as f64 / 8000.0;
    assert!(seconds >= 3.9, "only {seconds} s kept of a recording {len_at_crash} bytes long at the crash");
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["cause"], "switch_restart", "{cdr:#}");
    let noted = cdr["recordings"][0]["seconds"].as_f64().expect("repaired length noted");
    assert!((noted - seconds).abs() < 0.05);
}

fn find_wav(dir: &Path) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(f) = find_wav(&path) {
                return Some(f);
            }
        } else if path.extension().is_some_and(|e| e == "wav") {
            return Some(path);
        }
    }
    None
}


#[test]
fn a_phone_on_the_echo_test_hears_itself() {
    let daemon = Daemon::start_demo();
    let scratch = tempfile::tempdir().expect("temp dir");
    let source = scratch.path().join("tone440.wav");
    tone_wav(&source, 440.0, 10);
    let uri = format!("sip:9196@{}", daemon.sip_addr);
    let phone = rexian_tests::baresip_call(&uri, &source, 6);
    let heard = rexian_tests::file_ending(phone.path(), "-dec.wav").unwrap_or_else(|| {
        panic!("baresip kept no received audio; its log:\n{}", std::fs::read_to_string(phone.path().join("baresip.log")).unwrap_or_default())
    });
    let samples = rexian_tests::dumped_samples(&heard);
    // 100 ms blocks that are mostly the phone's own 440 Hz tone coming back.
    let echoed = samples.chunks(800).filter(|b| b.len() == 800 && rexian_tests::tone_share(b, 440.0) > 0.8).count();
    assert!(echoed >= 30, "only {echoed} blocks of 100 ms echoed 440 Hz in {} s heard", samples.len() / 8000);
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["route"], "echo");
    assert_eq!(cdr["cause"], "caller_hangup");
}

