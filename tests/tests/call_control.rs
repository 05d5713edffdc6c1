//! Agent call control (AGT-1, AGT-2) and a supervisor's forced hang-up (SUP-2) with real
//! peers: baresip or SIPp callers through the trunk, headless desk clients talking Opus over
//! QUIC. Checked is what each party hears — the music on hold and not the agent, nothing while
//! muted, the agent a call was transferred to — and what the ACD and the call record say.

use std::sync::Arc;
use std::time::Duration;

use rexian_shared::client::{ClientError, DeskClient};
use rexian_shared::{ErrorCode, Event, PhoneNumber};
use rexian_tests::{
    baresip_answerer, baresip_call, desk_talk, dumped_samples, file_ending, free_udp_port, sipp_caller, tone_share, tone_wav,
    wait_for_log, CallerStep, Daemon,
};
use switchd::engine::hold::MELODY_NOTES;

use rexian_tests::{state_is, tone_blocks, wait_event};

fn offered(e: &Event) -> bool {
    matches!(e, Event::CallOffered { .. })
}

/// What a 100 ms block (8 kHz) is: `freq` (the agent's tone), the music on hold, silence, or
/// something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    Tone,
    Music,
    Silence,
    Other,
}

fn classify(samples: &[i16], freq: f64) -> Vec<Heard> {
    samples
        .chunks(800)
        .filter(|b| b.len() == 800)
        .map(|b| {
            let rms = (b.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 800.0).sqrt();
            if rms < 150.0 {
                Heard::Silence
            } else if tone_share(b, freq) > 0.5 {
                Heard::Tone
            } else if MELODY_NOTES.iter().any(|&n| tone_share(b, n) > 0.5) {
                Heard::Music
            } else {
                Heard::Other
            }
        })
        .collect()
}

fn count(blocks: &[Heard], what: Heard) -> usize {
    blocks.iter().filter(|b| **b == what).count()
}

/// The call recording's channels (left what the caller said, right what the caller heard).
fn recording(daemon: &Daemon, cdr: &serde_json::Value) -> (Vec<i16>, Vec<i16>) {
    let path = cdr["recordings"].as_array().and_then(|r| r.iter().find(|r| r["kind"] == "call")).and_then(|r| r["path"].as_str());
    let path = path.unwrap_or_else(|| panic!("a call recording: {cdr:#}"));
    let (_, samples) = switchd::media::wav::read_wav(daemon.data_dir.join(path)).expect("a complete stereo WAV");
    (samples.iter().step_by(2).copied().collect(), samples.iter().skip(1).step_by(2).copied().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_hold_the_caller_hears_music_and_not_the_agent_and_muted_nothing_of_the_agent() {
    let daemon = Daemon::start_demo();
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let other = daemon.login_demo("agent2").await;
    let supervisor = daemon.login_demo("supervisor").await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let source = scratch.path().join("tone440.wav");
    tone_wav(&source, 440.0, 30);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let phone = tokio::task::spawn_blocking(move || baresip_call(&uri, &source, 22));

    let Event::CallOffered { call, .. } = wait_event(&agent, "the offer", offered).await else { unreachable!() };
    let early = agent.hold_call(call, true).await.expect_err("not connected yet");
    assert_eq!(early.code(), Some(ErrorCode::InvalidTransition));
    agent.answer_call(call).await.expect("answer");
    wait_event(&agent, "connected", |e| *e == Event::CallConnected { call }).await;

    // Talking, then on hold: the agent keeps sending its 1 kHz tone throughout.
    let (talking, next) = desk_talk(agent.clone(), call, 3, Some(1000.0), 0).await;
    let refused = other.hold_call(call, true).await.expect_err("not agent2's call");
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden));
    agent.hold_call(call, true).await.expect("hold");
    assert_eq!(wait_event(&agent, "held", |e| matches!(e, Event::CallHeld { .. })).await, Event::CallHeld { call, held: true });
    let listed = supervisor.list_calls().await.expect("list calls");
    assert!(listed.iter().any(|c| c.call == call && c.held), "supervisors see the call held: {listed:?}");
    let (on_hold, next) = desk_talk(agent.clone(), call, 4, Some(1000.0), next).await;
    agent.hold_call(call, false).await.expect("resume");
    assert_eq!(wait_event(&agent, "resumed", |e| matches!(e, Event::CallHeld { .. })).await, Event::CallHeld { call, held: false });
    let (resumed, next) = desk_talk(agent.clone(), call, 3, Some(1000.0), next).await;
    // Muted: switchd drops the desk's audio even though the desktop keeps sending it.
    agent.mute_call(call, true).await.expect("mute");
    assert_eq!(wait_event(&agent, "muted", |e| matches!(e, Event::CallMuted { .. })).await, Event::CallMuted { call, muted: true });
    let (muted, next) = desk_talk(agent.clone(), call, 3, Some(1000.0), next).await;
    agent.mute_call(call, false).await.expect("unmute");
    let _ = desk_talk(agent.clone(), call, 2, Some(1000.0), next).await;
    let Event::CallEnded { cause, .. } = wait_event(&agent, "the end", |e| matches!(e, Event::CallEnded { .. })).await else { unreachable!() };
    assert_eq!(cause, "caller_hangup");

    // What the agent heard: the caller, except while the caller was on hold.
    let (before, held, after) = (tone_blocks(&talking, 440.0), tone_blocks(&on_hold, 440.0), tone_blocks(&resumed, 440.0));
    assert!(before >= 20 && after >= 20, "the agent heard the caller in {before} and {after} blocks");
    assert!(held <= 3, "on hold the agent heard the caller in {held} of 40 blocks");
    assert!(tone_blocks(&muted, 440.0) >= 20, "muted, the agent still hears the caller");

    // What the phone heard: the agent, then the music without the agent, the agent again, a
    // silence while muted, the agent again.
    let phone = phone.await.expect("baresip ran");
    let heard = classify(&dumped_samples(&file_ending(phone.path(), "-dec.wav").expect("baresip kept what it heard")), 1000.0);
    let music = count(&heard, Heard::Music);
    assert!(music >= 20, "the caller heard the music in only {music} blocks: {heard:?}");
    let first_music = heard.iter().position(|b| *b == Heard::Music).unwrap_or(0);
    let last_music = heard.iter().rposition(|b| *b == Heard::Music).unwrap_or(0);
    let tone_while_held = count(&heard[first_music..=last_music], Heard::Tone);
    assert!(tone_while_held <= 2, "the agent reached the caller on hold in {tone_while_held} blocks: {heard:?}");
    assert!(count(&heard[..first_music], Heard::Tone) >= 20, "the agent before the hold: {heard:?}");
    let after_hold = &heard[last_music + 1..];
    assert!(count(after_hold, Heard::Tone) >= 30, "the agent after the hold: {heard:?}");
    // The mute: a run of at least 2.5 s without the agent between the agent's tones.
    let first_tone = after_hold.iter().position(|b| *b == Heard::Tone).unwrap_or(0);
    let last_tone = after_hold.iter().rposition(|b| *b == Heard::Tone).unwrap_or(0);
    let mut longest_gap = 0;
    let mut gap = 0;
    for b in &after_hold[first_tone..=last_tone] {
        gap = if *b == Heard::Tone { 0 } else { gap + 1 };
        longest_gap = longest_gap.max(gap);
    }
    assert!(longest_gap >= 25, "muted, the caller still heard the agent (longest gap {longest_gap} blocks): {heard:?}");

    // The recording went on through the hold: the caller's side all along, the music right.
    let cdr = daemon.ended_calls().remove(0);
    let (left, right) = recording(&daemon, &cdr);
    let recorded = classify(&right, 1000.0);
    assert!(count(&recorded, Heard::Music) >= 20, "the music in the recording: {recorded:?}");
    assert!(tone_blocks(&left, 440.0) >= 120, "the caller recorded all along: {} blocks", tone_blocks(&left, 440.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_forces_a_call_to_end_and_caller_agent_and_record_say_so() {
    let daemon = Daemon::start_demo();
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let supervisor = Arc::new(daemon.login_demo("supervisor").await);
    let scratch = tempfile::tempdir().expect("temp dir");
    let source = scratch.path().join("tone440.wav");
    tone_wav(&source, 440.0, 30);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let phone = tokio::task::spawn_blocking(move || baresip_call(&uri, &source, 16));

    let Event::CallOffered { call, .. } = wait_event(&agent, "the offer", offered).await else { unreachable!() };
    let ringing = supervisor.force_hangup(call).await.expect_err("only a connected call");
    assert_eq!(ringing.code(), Some(ErrorCode::InvalidTransition));
    agent.answer_call(call).await.expect("answer");
    wait_event(&agent, "connected", |e| *e == Event::CallConnected { call }).await;
    supervisor.snoop(call, rexian_shared::SnoopMode::Listen).await.expect("listen");
    let _ = desk_talk(agent.clone(), call, 2, Some(1000.0), 0).await;
    match agent.force_hangup(call).await {
        Err(ClientError::Desk(e)) => assert_eq!(e.code, ErrorCode::Forbidden),
        other => panic!("an agent may not force a hang-up: {other:?}"),
    }
    supervisor.force_hangup(call).await.expect("force hang-up");
    let ended = Event::CallEnded { call, cause: "forced_hangup".into() };
    assert_eq!(wait_event(&agent, "the end", |e| matches!(e, Event::CallEnded { .. })).await, ended);
    assert_eq!(wait_event(&supervisor, "the end", |e| matches!(e, Event::CallEnded { .. })).await, ended);
    let missing = supervisor.force_hangup(call).await.expect_err("gone");
    assert_eq!(missing.code(), Some(ErrorCode::NotFound));

    // The caller heard the agent, then was told (speech, not the agent's tone) and hung up.
    let phone = phone.await.expect("baresip ran");
    let log = std::fs::read_to_string(phone.path().join("baresip.log")).unwrap_or_default();
    assert!(log.contains("terminated"), "the phone saw the call end:\n{log}");
    let heard = classify(&dumped_samples(&file_ending(phone.path(), "-dec.wav").expect("baresip kept what it heard")), 1000.0);
    let last_tone = heard.iter().rposition(|b| *b == Heard::Tone).expect("the agent was heard");
    let told = count(&heard[last_tone..], Heard::Other);
    assert!(told >= 10, "the caller was told why in only {told} blocks of speech: {heard:?}");

    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["cause"].as_str(), Some("forced_hangup"), "{cdr:#}");
    assert!(daemon.log().contains("a supervisor ends the call"));
}

const ACD_CONFIG: &str = "[telephony]\nrecord_calls = true\n\n[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 0\n\n\
     [[acd.queues]]\nname = \"hotline\"\noffer_secs = 5\nwrap_up_secs = 30\nmax_missed_offers = 1\n\n[[acd.queues]]\nname = \"experts\"\noffer_secs = 8\nwrap_up_secs = 30\n";

/// A SIPp caller who presses 0 in the 12365 IVR (into the `hotline` queue) and stays `secs`.
fn queue_caller(daemon: &Daemon, secs: u32) -> tokio::task::JoinHandle<()> {
    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(secs * 1000)];
    tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false))
}

async fn log_in_ready(desk: &DeskClient) {
    desk.agent_login(true).await.expect("log in to the queues");
    wait_event(desk, "ready", state_is("ready")).await;
}

async fn answer(desk: &DeskClient, call: u64) {
    desk.answer_call(call).await.expect("answer");
    let (mut connected, mut on_call) = (false, false);
    while !(connected && on_call) {
        let event = wait_event(desk, "connected and on call", |e| *e == Event::CallConnected { call } || state_is("on_call")(e)).await;
        connected |= event == Event::CallConnected { call };
        on_call |= state_is("on_call")(&event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_an_agent_who_does_not_answer_returns_to_the_queue_then_the_agent_takes_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = Daemon::start_with_config(dir.path(), ACD_CONFIG, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = Arc::new(daemon.login_demo("agent1").await);
    let agent2 = Arc::new(daemon.login_demo("agent2").await);
    let supervisor = daemon.login_demo("supervisor").await;
    log_in_ready(&agent1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    log_in_ready(&agent2).await;
    let caller = queue_caller(&daemon, 34);

    // agent1 (idle longest) takes the caller and hands them to agent2, who lets it ring out.
    let Event::CallOffered { call, .. } = wait_event(&agent1, "the offer", offered).await else { unreachable!() };
    answer(&agent1, call).await;
    // The caller hears agent1's number announced first, then agent1.
    let _ = desk_talk(agent1.clone(), call, 5, Some(1000.0), 0).await;
    let to_self = agent1.transfer_to_agent(call, "agent1").await.expect_err("not to oneself");
    assert_eq!(to_self.code(), Some(ErrorCode::InvalidField));
    let nobody = agent1.transfer_to_agent(call, "9999").await.expect_err("no such agent");
    assert_eq!(nobody.code(), Some(ErrorCode::NotFound));
    let not_mine = agent2.transfer_to_queue(call, "experts").await.expect_err("not agent2's call");
    assert_eq!(not_mine.code(), Some(ErrorCode::Forbidden));
    agent1.transfer_to_agent(call, "1027").await.expect("transfer to agent2 by agent number");
    assert_eq!(
        wait_event(&agent1, "the end for agent1", |e| matches!(e, Event::CallEnded { .. })).await,
        Event::CallEnded { call, cause: "transferred".into() }
    );
    wait_event(&agent1, "wrap-up", state_is("wrap_up")).await;
    let Event::CallOffered { call: rung, .. } = wait_event(&agent2, "the transferred call", offered).await else { unreachable!() };
    assert_eq!(rung, call);
    wait_event(&agent2, "the offer withdrawn", |e| *e == Event::CallEnded { call, cause: "not_answered".into() }).await;
    // One miss sets agent2 not ready (max_missed_offers = 1): the caller waits in the queue.
    wait_event(&agent2, "not ready", state_is("not_ready")).await;

    // Not lost: back in the queue, it goes to agent1 as soon as agent1 is ready.
    agent1.agent_ready().await.expect("ready after wrap-up");
    let Event::CallOffered { call: again, .. } = wait_event(&agent1, "the caller again", offered).await else { unreachable!() };
    assert_eq!(again, call);
    answer(&agent1, call).await;
    let busy = agent1.transfer_to_agent(call, "agent2").await.expect_err("agent2 is not ready");
    assert_eq!(busy.code(), Some(ErrorCode::Busy));
    agent2.agent_ready().await.expect("agent2 ready again");
    wait_event(&agent2, "ready", state_is("ready")).await;
    // This time agent2 answers, and the caller hears agent2.
    agent1.transfer_to_agent(call, "agent2").await.expect("transfer to agent2 by name");
    wait_event(&agent1, "wrap-up", state_is("wrap_up")).await;
    wait_event(&agent2, "the transferred call", offered).await;
    answer(&agent2, call).await;
    let board = supervisor.seat_board().await.expect("seat board");
    let state_of = |name_reason: &str| board.agents.iter().filter(|a| a.state == name_reason).count();
    assert_eq!((state_of("wrap_up"), state_of("on_call")), (1, 1), "{board:#?}");
    let (heard, _) = desk_talk(agent2.clone(), call, 6, Some(2000.0), 0).await;
    assert!(heard.len() > 8000 * 3, "agent2 hears the call");
    caller.await.expect("caller");
    wait_event(&agent2, "wrap-up", state_is("wrap_up")).await;

    let cdr = daemon.ended_calls().remove(0);
    let (_, right) = recording(&daemon, &cdr);
    let (first, second) = (tone_blocks(&right, 1000.0), tone_blocks(&right, 2000.0));
    assert!(first >= 10 && second >= 25, "the caller heard agent1 in {first} blocks and agent2 in {second}");
    let out = daemon.cli(&["acd", "events", "--json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("events json");
    let answered = events.iter().filter(|e| e["kind"] == "answered").count();
    let missed = events.iter().filter(|e| e["kind"] == "missed").count();
    assert_eq!((answered, missed), (3, 1), "{events:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_a_queue_reaches_the_next_agent_who_calls_the_supervisor() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = Daemon::start_with_config(dir.path(), ACD_CONFIG, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = Arc::new(daemon.login_demo("agent1").await);
    let agent2 = Arc::new(daemon.login_demo("agent2").await);
    log_in_ready(&agent1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let caller = queue_caller(&daemon, 30);

    let Event::CallOffered { call, .. } = wait_event(&agent1, "the offer", offered).await else { unreachable!() };
    answer(&agent1, call).await;
    let unknown = agent1.transfer_to_queue(call, "nowhere").await.expect_err("no such queue");
    assert_eq!(unknown.code(), Some(ErrorCode::InvalidField));
    // Nobody in the queues is free, and no supervisor is at a desk yet.
    let nobody = agent1.transfer_to_supervisor(call).await.expect_err("no supervisor");
    assert_eq!(nobody.code(), Some(ErrorCode::Busy));
    log_in_ready(&agent2).await;
    agent1.transfer_to_queue(call, "experts").await.expect("transfer to the experts queue");
    wait_event(&agent1, "transferred", |e| *e == Event::CallEnded { call, cause: "transferred".into() }).await;
    let Event::CallOffered { call: rung, .. } = wait_event(&agent2, "the offer from the queue", offered).await else { unreachable!() };
    assert_eq!(rung, call);
    answer(&agent2, call).await;

    // agent2 calls the supervisor (呼叫班长), who is at a desk but takes no queue calls.
    let supervisor = Arc::new(daemon.login_demo("supervisor").await);
    agent2.transfer_to_supervisor(call).await.expect("to the supervisor");
    wait_event(&agent2, "transferred", |e| *e == Event::CallEnded { call, cause: "transferred".into() }).await;
    let Event::CallOffered { call: rung, .. } = wait_event(&supervisor, "the caller", offered).await else { unreachable!() };
    assert_eq!(rung, call);
    supervisor.answer_call(call).await.expect("the supervisor answers");
    wait_event(&supervisor, "connected", |e| *e == Event::CallConnected { call }).await;
    let _ = desk_talk(supervisor.clone(), call, 3, Some(2000.0), 0).await;
    let board = supervisor.seat_board().await.expect("seat board");
    assert_eq!(board.agents.iter().filter(|a| a.state == "wrap_up").count(), 2, "{board:#?}");
    caller.await.expect("caller");

    let out = daemon.cli(&["acd", "events", "--json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("events json");
    assert!(events.iter().any(|e| e["kind"] == "entered" && e["queue"] == "experts"), "{events:#?}");
    let cdr = daemon.ended_calls().remove(0);
    let (_, right) = recording(&daemon, &cdr);
    assert!(tone_blocks(&right, 2000.0) >= 20, "the caller heard the supervisor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attended_transfer_consults_while_the_caller_hears_music_then_hands_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("temp dir");
    let (tone440, tone2k) = (scratch.path().join("440.wav"), scratch.path().join("2k.wav"));
    tone_wav(&tone440, 440.0, 30);
    tone_wav(&tone2k, 2000.0, 30);
    let far_port = free_udp_port();
    let (mut target, target_dir) = baresip_answerer("13900139000", far_port, &tone2k, 20);
    let config = format!(
        "[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{far_port}\"\n"
    );
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let phone = tokio::task::spawn_blocking(move || baresip_call(&uri, &tone440, 16));
    let Event::CallOffered { call, .. } = wait_event(&agent, "the offer", offered).await else { unreachable!() };
    agent.answer_call(call).await.expect("answer");
    wait_event(&agent, "connected", |e| *e == Event::CallConnected { call }).await;
    let (_, next) = desk_talk(agent.clone(), call, 2, Some(1000.0), 0).await;
    let nothing = agent.complete_transfer(call).await;
    assert!(nothing.is_ok(), "completing without a consultation changes nothing: {nothing:?}");

    agent.consult(call, &PhoneNumber::parse("13900139000").expect("number")).await.expect("consult");
    wait_event(&agent, "held", |e| *e == Event::CallHeld { call, held: true }).await;
    wait_event(&agent, "the consulted party", |e| *e == Event::ConferenceChanged { call, joined: true }).await;
    let (consulting, _) = desk_talk(agent.clone(), call, 4, Some(1000.0), next).await;
    agent.complete_transfer(call).await.expect("complete");
    wait_event(&agent, "transferred", |e| *e == Event::CallEnded { call, cause: "transferred".into() }).await;

    // While consulting the agent heard the consulted party, not the caller.
    let (far, caller_heard) = (tone_blocks(&consulting, 2000.0), tone_blocks(&consulting, 440.0));
    assert!(far >= 20 && caller_heard <= 3, "consulting, the agent heard the target in {far} blocks and the caller in {caller_heard}");
    let phone = phone.await.expect("baresip ran");
    let _ = target.wait();
    let at_phone = classify(&dumped_samples(&file_ending(phone.path(), "-dec.wav").expect("caller's dump")), 1000.0);
    let first_music = at_phone.iter().position(|b| *b == Heard::Music).unwrap_or_else(|| panic!("the caller heard music: {at_phone:?}"));
    let last_music = at_phone.iter().rposition(|b| *b == Heard::Music).unwrap_or(first_music);
    assert!(count(&at_phone, Heard::Music) >= 20, "music while the agent consulted: {at_phone:?}");
    assert!(count(&at_phone[first_music..=last_music], Heard::Tone) <= 2, "the caller heard the agent while held: {at_phone:?}");
    let raw = dumped_samples(&file_ending(phone.path(), "-dec.wav").expect("caller's dump"));
    let after = &raw[(last_music + 1) * 800..];
    let handed = tone_blocks(after, 2000.0);
    assert!(handed >= 20, "after the transfer the caller heard the target in only {handed} blocks");
    assert_eq!(tone_blocks(&raw[..(first_music * 800).min(raw.len())], 2000.0), 0, "the target was not heard before");
    let at_target = dumped_samples(&file_ending(target_dir.path(), "-dec.wav").expect("target's dump"));
    let (agent_heard, caller_reached) = (tone_blocks(&at_target, 1000.0), tone_blocks(&at_target, 440.0));
    assert!(agent_heard >= 20 && caller_reached >= 20, "the target heard the agent in {agent_heard} blocks and the caller in {caller_reached}");
}

/// 100 ms blocks in which `freq` is clearly present among others (a mix of up to three tones).
fn blocks_with(samples: &[i16], freq: f64) -> usize {
    samples.chunks(800).filter(|b| b.len() == 800 && tone_share(b, freq) > 0.2).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consultation_is_cancelled_then_another_becomes_a_three_way_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = tempfile::tempdir().expect("temp dir");
    let (tone440, tone2k) = (scratch.path().join("440.wav"), scratch.path().join("2k.wav"));
    tone_wav(&tone440, 440.0, 40);
    tone_wav(&tone2k, 2000.0, 40);
    let far_port = free_udp_port();
    let (mut target, target_dir) = baresip_answerer("13900139000", far_port, &tone2k, 30);
    let config = format!(
        "[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{far_port}\"\n"
    );
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let phone = tokio::task::spawn_blocking(move || baresip_call(&uri, &tone440, 24));
    let Event::CallOffered { call, .. } = wait_event(&agent, "the offer", offered).await else { unreachable!() };
    agent.answer_call(call).await.expect("answer");
    wait_event(&agent, "connected", |e| *e == Event::CallConnected { call }).await;
    let number = PhoneNumber::parse("13900139000").expect("number");

    // A consultation, cancelled: the consulted party is hung up and the caller taken back.
    agent.consult(call, &number).await.expect("consult");
    wait_event(&agent, "the consulted party", |e| *e == Event::ConferenceChanged { call, joined: true }).await;
    let (consulting, next) = desk_talk(agent.clone(), call, 2, Some(1000.0), 0).await;
    agent.cancel_consult(call).await.expect("cancel");
    wait_event(&agent, "the consulted party gone", |e| *e == Event::ConferenceChanged { call, joined: false }).await;
    wait_event(&agent, "the caller back", |e| *e == Event::CallHeld { call, held: false }).await;
    let (back, next) = desk_talk(agent.clone(), call, 3, Some(1000.0), next).await;
    assert!(tone_blocks(&consulting, 2000.0) >= 10, "consulting, the agent heard the target");
    let (target_after, caller_after) = (blocks_with(&back, 2000.0), tone_blocks(&back, 440.0));
    assert!(target_after <= 2 && caller_after >= 20, "after cancelling: target in {target_after} blocks, caller in {caller_after}");

    // Another, turned into a three-way call by taking the caller off hold.
    agent.consult(call, &number).await.expect("consult again");
    wait_event(&agent, "the consulted party", |e| *e == Event::ConferenceChanged { call, joined: true }).await;
    agent.hold_call(call, false).await.expect("resume: three-way");
    wait_event(&agent, "the caller back", |e| *e == Event::CallHeld { call, held: false }).await;
    let (three_way, _) = desk_talk(agent.clone(), call, 5, Some(1000.0), next).await;
    agent.hangup_call(call).await.expect("hang up");
    let heard = (blocks_with(&three_way, 440.0), blocks_with(&three_way, 2000.0));
    assert!(heard.0 >= 25 && heard.1 >= 25, "in the three-way call the agent heard caller and target in {heard:?} blocks");

    let phone = phone.await.expect("baresip ran");
    let _ = target.wait();
    let at_phone = dumped_samples(&file_ending(phone.path(), "-dec.wav").expect("caller's dump"));
    assert!(blocks_with(&at_phone, 2000.0) >= 25, "the caller heard the target in the three-way call");
    // The target's dumps (one per call): the first consultation heard only the agent; the
    // three-way call the caller too.
    let dumps: Vec<Vec<i16>> = std::fs::read_dir(target_dir.path())
        .expect("target dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .map(|p| dumped_samples(&p))
        .collect();
    assert_eq!(dumps.len(), 2, "the target was called twice");
    let caller_at_target: Vec<usize> = dumps.iter().map(|d| blocks_with(d, 440.0)).collect();
    assert!(caller_at_target.iter().any(|n| *n <= 2) && caller_at_target.iter().any(|n| *n >= 25), "the caller reached the target only in the three-way call: {caller_at_target:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administrators_hold_music_file_is_what_a_held_caller_hears() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("prompts")).expect("prompts folder");
    tone_wav(&dir.path().join("prompts").join("hold-music.wav"), 300.0, 5);
    let daemon = Daemon::start_with_config(dir.path(), "[telephony]\nhold_music = \"hold-music\"\n", &["--demo"]);
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let scratch = tempfile::tempdir().expect("temp dir");
    let source = scratch.path().join("tone440.wav");
    tone_wav(&source, 440.0, 20);
    let uri = format!("sip:8001@{}", daemon.sip_addr);
    let phone = tokio::task::spawn_blocking(move || baresip_call(&uri, &source, 10));
    let Event::CallOffered { call, .. } = wait_event(&agent, "the offer", offered).await else { unreachable!() };
    agent.answer_call(call).await.expect("answer");
    wait_event(&agent, "connected", |e| *e == Event::CallConnected { call }).await;
    agent.hold_call(call, true).await.expect("hold");
    wait_event(&agent, "held", |e| *e == Event::CallHeld { call, held: true }).await;
    let _ = desk_talk(agent.clone(), call, 4, Some(1000.0), 0).await;
    agent.hangup_call(call).await.expect("hang up");

    let phone = phone.await.expect("baresip ran");
    let heard = dumped_samples(&file_ending(phone.path(), "-dec.wav").expect("baresip kept what it heard"));
    let (file, melody) = (tone_blocks(&heard, 300.0), count(&classify(&heard, 1000.0), Heard::Music));
    assert!(file >= 25 && melody == 0, "held, the caller heard the file in {file} blocks and the built-in melody in {melody}");
    assert!(tone_blocks(&heard, 1000.0) <= 2, "and not the agent");
}
