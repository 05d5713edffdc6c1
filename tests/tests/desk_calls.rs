//! A call from a phone through the trunk to an agent's desk: baresip (a real SIP phone, sending
//! an 8 kHz tone through its `aufile` module) calls 8001, which the demo routes to `agent1`;
//! the headless desk client — the same code the agent desktop uses — gets the call offered,
//! answers it, and talks Opus over QUIC datagrams. Each side checks it hears the other's tone.

use rexian_shared::client::{ClientError, DeskClient};
use rexian_shared::{ErrorCode, Event, SnoopMode};
use rexian_tests::{next_call_event, tone_wav, baresip_call, file_ending, tone_share, Daemon};
use std::sync::Arc;

/// 100 ms blocks of `samples` (8 kHz) that are mostly `freq`.
fn blocks_of(samples: &[i16], freq: f64) -> usize {
    samples.chunks(800).filter(|b| b.len() == 800 && tone_share(b, freq) > 0.6).count()
}

/// Sends a 1 kHz tone as 48 kHz Opus frames for `seconds` while collecting what the desk
/// hears (decoded at 8 kHz); returns the heard samples.
async fn talk(desk: Arc<DeskClient>, call: u64, seconds: u32) -> Vec<i16> {
    rexian_tests::desk_talk(desk, call, seconds, Some(1000.0), 0).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_call_rings_the_agents_desk_and_both_hear_each_other() {
    let daemon = Daemon::start_demo();
    let desk = Arc::new(daemon.login_demo("agent1").await);
    let scratch = tempfile::tempdir().expect("temp dir");
    let source = scratch.path().join("tone440.wav");
    tone_wav(&source, 440.0, 12);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let phone = tokio::task::spawn_blocking(move || baresip_call(&uri, &source, 9));

    let Event::CallOffered { call, callee, trunk, .. } = next_call_event(&desk).await else { panic!("expected the call to be offered") };
    assert_eq!((callee.as_str(), trunk.as_str()), ("8001", "demo-loopback"));
    desk.answer_call(call).await.expect("answer");
    assert_eq!(next_call_event(&desk).await, Event::CallConnected { call });
    let heard = talk(desk.clone(), call, 5).await;
    // baresip hangs up at 9 s: the desk is told.
    let Event::CallEnded { call: ended, cause } = next_call_event(&desk).await else { panic!("expected the end of the call") };
    assert_eq!((ended, cause.as_str()), (call, "caller_hangup"));

    let phone = phone.await.expect("baresip ran");
    let at_desk = blocks_of(&heard, 440.0);
    assert!(at_desk >= 20, "the desk heard the phone's 440 Hz in only {at_desk} blocks of 100 ms ({} s heard)", heard.len() / 8000);
    let dump = file_ending(phone.path(), "-dec.wav").expect("baresip kept what it heard");
    let at_phone = rexian_tests::dumped_samples(&dump);
    let blocks = blocks_of(&at_phone, 1000.0);
    assert!(blocks >= 20, "the phone heard the desk's 1 kHz in only {blocks} blocks of 100 ms");

    let cdrs = daemon.ended_calls();
    let cdr = &cdrs[0];
    assert_eq!((cdr["route"].as_str(), cdr["cause"].as_str()), (Some("desk"), Some("caller_hangup")));
    assert!(cdr["answered_at"].is_string(), "{cdr:#}");
    // The whole call was recorded in stereo: the phone's 440 Hz left, the desk's 1 kHz right.
    let recording = &cdr["recordings"][0];
    assert_eq!(recording["kind"], "call", "{cdr:#}");
    let path = daemon.data_dir.join(recording["path"].as_str().expect("path"));
    let (format, interleaved) = switchd::media::wav::read_wav(&path).expect("a complete stereo WAV");
    assert_eq!((format.channels, format.sample_rate), (2, 8000));
    let left: Vec<i16> = interleaved.iter().step_by(2).copied().collect();
    let right: Vec<i16> = interleaved.iter().skip(1).step_by(2).copied().collect();
    let (l, r) = (blocks_of(&left, 440.0), blocks_of(&right, 1000.0));
    assert!(l >= 20 && r >= 20, "recording: {l} blocks of the caller's tone left, {r} of the agent's right");
    assert!(blocks_of(&left, 1000.0) == 0 && blocks_of(&right, 440.0) == 0, "the channels are not mixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_offered_agent_answers_and_the_desk_can_hang_up() {
    let daemon = Daemon::start_demo();
    let desk = Arc::new(daemon.login_demo("agent1").await);
    let other = daemon.login_demo("agent2").await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let source = scratch.path().join("tone440.wav");
    tone_wav(&source, 440.0, 12);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let phone = tokio::task::spawn_blocking(move || baresip_call(&uri, &source, 8));

    let Event::CallOffered { call, .. } = next_call_event(&desk).await else { panic!("expected the call to be offered") };
    match other.answer_call(call).await {
        Err(ClientError::Desk(e)) => assert_eq!(e.code, ErrorCode::Forbidden, "{e:?}"),
        other => panic!("agent2 must not take agent1's call: {other:?}"),
    }
    desk.answer_call(call).await.expect("answer");
    assert_eq!(next_call_event(&desk).await, Event::CallConnected { call });
    match desk.send_dtmf(call, "12x").await {
        Err(ClientError::Desk(e)) => assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidField, Some("digits"))),
        other => panic!("bad digits must be refused by field: {other:?}"),
    }
    desk.send_dtmf(call, "159#").await.expect("send digits");
    let _ = talk(desk.clone(), call, 2).await;
    desk.hangup_call(call).await.expect("hang up");
    let Event::CallEnded { cause, .. } = next_call_event(&desk).await else { panic!("expected the end of the call") };
    assert_eq!(cause, "switch_hangup");
    let phone = phone.await.expect("baresip ran");
    let log = std::fs::read_to_string(phone.path().join("baresip.log")).unwrap_or_default();
    assert!(log.contains("terminated"), "the phone saw the call end:\n{log}");
    // baresip logs each key press as it starts (end=0) and as it ends (end=1).
    let keys: String = log
        .lines()
        .filter(|l| l.contains("(end=0)"))
        .filter_map(|l| l.split("received event: '").nth(1))
        .filter_map(|r| r.chars().next())
        .collect();
    assert_eq!(keys, "159#", "the phone received the agent's digits once each:\n{log}");
    assert!(matches!(desk.hangup_call(call).await, Err(ClientError::Desk(e)) if e.code == ErrorCode::NotFound));
}

/// 100 ms blocks in which `freq` is clearly present among others (a mix of up to three tones).
fn blocks_with(samples: &[i16], freq: f64) -> usize {
    samples.chunks(800).filter(|b| b.len() == 800 && tone_share(b, freq) > 0.2).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_listens_whispers_and_barges_in() {
    let daemon = Daemon::start_demo();
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let supervisor = Arc::new(daemon.login_demo("supervisor").await);
    let other_agent = daemon.login_demo("agent2").await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let source = scratch.path().join("tone440.wav");
    tone_wav(&source, 440.0, 20);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let phone = tokio::task::spawn_blocking(move || baresip_call(&uri, &source, 15));

    let Event::CallOffered { call, .. } = next_call_event(&agent).await else { panic!("expected the call to be offered") };
    agent.answer_call(call).await.expect("answer");
    assert_eq!(next_call_event(&agent).await, Event::CallConnected { call });
    let agent_talk = tokio::spawn(talk(agent.clone(), call, 11));

    let calls = supervisor.list_calls().await.expect("list calls");
    assert!(calls.iter().any(|c| c.call == call && c.connected && c.callee == "8001"), "{calls:?}");
    match other_agent.snoop(call, SnoopMode::Listen).await {
        Err(ClientError::Desk(e)) => assert_eq!(e.code, ErrorCode::Forbidden),
        other => panic!("an agent must not listen in: {other:?}"),
    }
    supervisor.snoop(call, SnoopMode::Listen).await.expect("listen");
    let (listened, next) = rexian_tests::desk_talk(supervisor.clone(), call, 2, None, 0).await;
    supervisor.snoop(call, SnoopMode::Whisper).await.expect("whisper");
    let (_, next) = rexian_tests::desk_talk(supervisor.clone(), call, 3, Some(2000.0), next).await;
    supervisor.snoop(call, SnoopMode::Barge).await.expect("barge");
    let _ = rexian_tests::desk_talk(supervisor.clone(), call, 3, Some(2000.0), next).await;
    supervisor.hangup_call(call).await.expect("leave the call");

    let at_agent = agent_talk.await.expect("agent");
    let phone = phone.await.expect("baresip ran");
    // Listening, the supervisor heard both parties.
    let (caller_part, agent_part) = (blocks_with(&listened, 440.0), blocks_with(&listened, 1000.0));
    assert!(caller_part >= 10 && agent_part >= 10, "supervisor heard caller in {caller_part}, agent in {agent_part} of 20 blocks");
    // Whisper and barge reached the agent (about 6 s); only the barge reached the caller (3 s).
    let whispered = blocks_with(&at_agent, 2000.0);
    assert!(whispered >= 40, "the agent heard the supervisor in only {whispered} blocks");
    let dump = file_ending(phone.path(), "-dec.wav").expect("baresip kept what it heard");
    let at_phone = rexian_tests::dumped_samples(&dump);
    let barged = blocks_with(&at_phone, 2000.0);
    assert!((15..=40).contains(&barged), "the caller heard the supervisor in {barged} blocks: the barge (~30), never the whisper");
}
