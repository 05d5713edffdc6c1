//! A call forwarded trunk to trunk (switchd as a B2BUA): a baresip phone calls 9198, which the
//! configuration forwards to 13900139000 through the carrier trunk, where a second baresip
//! answers. Each phone checks it hears the other's tone; the call record and the stereo
//! recording show both sides.

use rexian_tests::{next_call_event, tone_wav, baresip_answerer, baresip_call, dumped_samples, file_ending, free_udp_port, tone_share, Daemon};
use std::path::Path;
use std::time::Duration;


fn blocks_of(samples: &[i16], freq: f64) -> usize {
    samples.chunks(800).filter(|b| b.len() == 800 && tone_share(b, freq) > 0.6).count()
}

/// A baresip caller (440 Hz) dials 9198, which `config(far_port)` forwards to a baresip phone
/// answering (1 kHz) on `far_port`. Returns the daemon, its data directory, and the 100 ms
/// blocks in which the caller heard the far end and the far end heard the caller.
fn forwarded_between_two_phones(config: impl FnOnce(u16) -> String) -> (Daemon, tempfile::TempDir, usize, usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("temp dir");
    let (tone440, tone1k) = (scratch.path().join("440.wav"), scratch.path().join("1k.wav"));
    tone_wav(&tone440, 440.0, 20);
    tone_wav(&tone1k, 1000.0, 20);
    let far_port = free_udp_port();
    let (mut far_end, far_dir) = baresip_answerer("13900139000", far_port, &tone1k, 12);
    let daemon = Daemon::start_with_config(dir.path(), &config(far_port), &[]);
    let caller = baresip_call(&format!("sip:9198@{}", daemon.sip_addr), &tone440, 8);
    let _ = far_end.wait();

    let log = |d: &Path| std::fs::read_to_string(d.join("baresip.log")).unwrap_or_default();
    let at_caller = dumped_samples(&file_ending(caller.path(), "-dec.wav").unwrap_or_else(|| panic!("caller kept nothing:\n{}", log(caller.path()))));
    let at_far = dumped_samples(&file_ending(far_dir.path(), "-dec.wav").unwrap_or_else(|| panic!("far end kept nothing:\n{}\nswitchd:\n{}", log(far_dir.path()), daemon.log())));
    let (heard_far, heard_caller) = (blocks_of(&at_caller, 1000.0), blocks_of(&at_far, 440.0));
    (daemon, dir, heard_far, heard_caller)
}

#[test]
fn a_call_forwarded_through_the_trunk_connects_both_phones() {
    let (daemon, _dir, heard_far, heard_caller) = forwarded_between_two_phones(|far_port| {
        format!(
            "[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{far_port}\"\n\n\
             [[telephony.routes]]\nnumber = \"9198\"\napp = \"forward\"\nto = \"13900139000\"\n"
        )
    });
    assert!(heard_far >= 30, "the caller heard the far end's 1 kHz in only {heard_far} blocks of 100 ms");
    assert!(heard_caller >= 30, "the far end heard the caller's 440 Hz in only {heard_caller} blocks of 100 ms");

    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["route"].as_str(), cdr["cause"].as_str()), (Some("forward"), Some("caller_hangup")), "{cdr:#}");
    let path = daemon.data_dir.join(cdr["recordings"][0]["path"].as_str().expect("a recording"));
    let (format, interleaved) = switchd::media::wav::read_wav(&path).expect("a complete stereo WAV");
    assert_eq!(format.channels, 2);
    let left: Vec<i16> = interleaved.iter().step_by(2).copied().collect();
    let right: Vec<i16> = interleaved.iter().skip(1).step_by(2).copied().collect();
    let (l, r) = (blocks_of(&left, 440.0), blocks_of(&right, 1000.0));
    assert!(l >= 30 && r >= 30, "recording: caller's tone in {l} blocks left, far end's in {r} right");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_transfers_the_caller_to_an_outside_number() {
    use rexian_shared::{Event, PhoneNumber};
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("temp dir");
    let (tone440, tone1k) = (scratch.path().join("440.wav"), scratch.path().join("1k.wav"));
    tone_wav(&tone440, 440.0, 20);
    tone_wav(&tone1k, 1000.0, 20);
    let far_port = free_udp_port();
    let (mut far_end, far_dir) = baresip_answerer("13900139000", far_port, &tone1k, 14);
    let config = format!(
        "[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{far_port}\"\n"
    );
    // --demo adds 8001 -> agent1 (and the demo users) beside the configured trunk.
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    let agent = daemon.login_demo("agent1").await;
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let caller = tokio::task::spawn_blocking(move || baresip_call(&uri, &tone440, 10));
    let Event::CallOffered { call, .. } = next_call_event(&agent).await else { panic!("expected an offer") };
    agent.answer_call(call).await.expect("answer");
    assert_eq!(next_call_event(&agent).await, Event::CallConnected { call });
    tokio::time::sleep(Duration::from_secs(1)).await;
    agent.transfer(call, &PhoneNumber::parse("13900139000").expect("number")).await.expect("transfer");
    assert_eq!(next_call_event(&agent).await, Event::CallEnded { call, cause: "transferred".into() });

    let caller = caller.await.expect("caller ran");
    let _ = far_end.wait();
    let at_caller = dumped_samples(&file_ending(caller.path(), "-dec.wav").expect("caller's dump"));
    let at_far = dumped_samples(&file_ending(far_dir.path(), "-dec.wav").expect("far end's dump"));
    let (heard_far, heard_caller) = (blocks_of(&at_caller, 1000.0), blocks_of(&at_far, 440.0));
    assert!(heard_far >= 30, "after the transfer the caller heard the far end in only {heard_far} blocks");
    assert!(heard_caller >= 30, "the far end heard the caller in only {heard_caller} blocks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_adds_a_third_party_and_all_three_hear_each_other() {
    use rexian_shared::{Event, PhoneNumber};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("temp dir");
    let (tone440, tone2k) = (scratch.path().join("440.wav"), scratch.path().join("2k.wav"));
    tone_wav(&tone440, 440.0, 20);
    tone_wav(&tone2k, 2000.0, 20);
    let far_port = free_udp_port();
    let (mut third, third_dir) = baresip_answerer("13900139000", far_port, &tone2k, 12);
    let config = format!(
        "[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{far_port}\"\n"
    );
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let caller = tokio::task::spawn_blocking(move || baresip_call(&uri, &tone440, 10));
    let Event::CallOffered { call, .. } = next_call_event(&agent).await else { panic!("expected an offer") };
    agent.answer_call(call).await.expect("answer");
    assert_eq!(next_call_event(&agent).await, Event::CallConnected { call });
    agent.conference(call, &PhoneNumber::parse("13900139000").expect("number")).await.expect("conference");
    assert_eq!(next_call_event(&agent).await, Event::ConferenceChanged { call, joined: true });
    let (at_agent, _) = rexian_tests::desk_talk(agent.clone(), call, 4, Some(1000.0), 0).await;
    agent.hangup_call(call).await.expect("hang up");

    let caller = caller.await.expect("caller ran");
    let _ = third.wait();
    let with = |samples: &[i16], freq: f64| samples.chunks(800).filter(|b| b.len() == 800 && tone_share(b, freq) > 0.2).count();
    let at_caller = dumped_samples(&file_ending(caller.path(), "-dec.wav").expect("caller's dump"));
    let at_third = dumped_samples(&file_ending(third_dir.path(), "-dec.wav").expect("third party's dump"));
    let heard = [
        ("agent hears caller", with(&at_agent, 440.0)),
        ("agent hears third party", with(&at_agent, 2000.0)),
        ("caller hears agent", with(&at_caller, 1000.0)),
        ("caller hears third party", with(&at_caller, 2000.0)),
        ("third party hears caller", with(&at_third, 440.0)),
        ("third party hears agent", with(&at_third, 1000.0)),
    ];
    for (what, blocks) in heard {
        assert!(blocks >= 20, "{what}: only {blocks} blocks of 100 ms ({heard:?})");
    }
}

#[test]
fn a_call_forwarded_to_a_sip_uri_goes_straight_there() {
    // The trunk (the caller's) points nowhere: the forward must not go through it.
    let nowhere = free_udp_port();
    let (daemon, _dir, heard_far, heard_caller) = forwarded_between_two_phones(|far_port| {
        format!(
            "[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{nowhere}\"\n\n\
             [[telephony.routes]]\nnumber = \"9198\"\napp = \"forward\"\nto = \"sip:13900139000@127.0.0.1:{far_port}\"\n"
        )
    });
    assert!(heard_far >= 30, "the caller heard the URI's 1 kHz in only {heard_far} blocks of 100 ms");
    assert!(heard_caller >= 30, "the URI heard the caller's 440 Hz in only {heard_caller} blocks of 100 ms");
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["route"].as_str(), Some("forward"), "{cdr:#}");
}
