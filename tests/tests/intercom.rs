//! Desk-to-desk calls with real parts: the switchd binary, headless desk clients talking Opus
//! over QUIC, SIPp callers through the trunk. A supervisor and an agent call each other
//! (SUP-3), an agent consults another agent while the caller is held and hands the caller over
//! (AGT-2), and a supervisor who listens takes a call over (SUP-2). Checked is what each party
//! hears (tones both ways, the music on hold in the call recording) and what the ACD says.

use std::sync::Arc;
use std::time::Duration;

use rexian_shared::client::DeskClient;
use rexian_shared::{ErrorCode, Event, SeatBoard};
use rexian_tests::{desk_talk, sipp_caller, tone_share, wait_for_log, CallerStep, Daemon};
use switchd::engine::hold::MELODY_NOTES;

/// Queues as the ACD tests use them, calls recorded (what the caller heard is its right
/// channel).
const CONFIG: &str = "[telephony]\nrecord_calls = true\n\n[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 0\n\n\
     [[acd.queues]]\nname = \"hotline\"\noffer_secs = 8\nwrap_up_secs = 30\n";

use rexian_tests::{state_is, tone_blocks, wait_event};

fn offered(e: &Event) -> bool {
    matches!(e, Event::CallOffered { .. })
}

fn ended(e: &Event) -> bool {
    matches!(e, Event::CallEnded { .. })
}

fn music(block: &[i16]) -> bool {
    MELODY_NOTES.iter().any(|&n| tone_share(block, n) > 0.5)
}

/// An event matching `want` and the ACD's state `state`, which come in either order (the
/// engine and the ACD tell the desk separately); returns the first.
async fn event_and_state(desk: &DeskClient, what: &str, want: impl Fn(&Event) -> bool, state: &str) -> Event {
    let (mut found, mut in_state) = (None, false);
    while found.is_none() || !in_state {
        let event = wait_event(desk, what, |e| want(e) || state_is(state)(e)).await;
        in_state |= state_is(state)(&event);
        if want(&event) {
            found = Some(event);
        }
    }
    found.unwrap_or_else(|| unreachable!())
}

/// The offer of a desk-to-desk call and the ACD's `on_call`.
async fn offered_and_on_call(desk: &DeskClient) -> Event {
    event_and_state(desk, "the offer and on call", offered, "on_call").await
}

async fn log_in_ready(desk: &DeskClient) {
    desk.agent_login(true).await.expect("log in to the queues");
    wait_event(desk, "ready", state_is("ready")).await;
}

/// A SIPp caller who presses 0 in the 12365 IVR (into the `hotline` queue) and stays `secs`.
fn queue_caller(daemon: &Daemon, secs: u32) -> tokio::task::JoinHandle<()> {
    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(secs * 1000)];
    tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false))
}

/// Answers a queue call and waits until the desk is connected and the ACD has it on call.
async fn answer(desk: &DeskClient, call: u64) {
    desk.answer_call(call).await.expect("answer");
    let (mut connected, mut on_call) = (false, false);
    while !(connected && on_call) {
        let event = wait_event(desk, "connected and on call", |e| *e == Event::CallConnected { call } || state_is("on_call")(e)).await;
        connected |= event == Event::CallConnected { call };
        on_call |= state_is("on_call")(&event);
    }
}

/// The seat board once `ok` holds for it (the ACD hears of hand-overs a moment later).
async fn board_when(supervisor: &DeskClient, ok: impl Fn(&SeatBoard) -> bool) -> SeatBoard {
    for _ in 0..50 {
        let board = supervisor.seat_board().await.expect("seat board");
        if ok(&board) {
            return board;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the seat board never showed it: {:#?}", supervisor.seat_board().await);
}

fn count_in(board: &SeatBoard, state: &str) -> usize {
    board.agents.iter().filter(|a| a.state == state).count()
}

/// The call recording's right channel (what the caller heard).
fn caller_heard(daemon: &Daemon) -> Vec<i16> {
    let cdr = daemon.ended_calls().remove(0);
    let path = cdr["recordings"].as_array().and_then(|r| r.iter().find(|r| r["kind"] == "call")).and_then(|r| r["path"].as_str());
    let path = path.unwrap_or_else(|| panic!("a call recording: {cdr:#}"));
    let (_, samples) = switchd::media::wav::read_wav(daemon.data_dir.join(path)).expect("a complete stereo WAV");
    samples.iter().skip(1).step_by(2).copied().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_and_an_agent_call_each_other_desk_to_desk_and_hear_each_other() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = Daemon::start_with_config(dir.path(), CONFIG, &["--demo"]);
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let other = daemon.login_demo("agent2").await;
    let supervisor = Arc::new(daemon.login_demo("supervisor").await);
    log_in_ready(&agent).await;

    let nobody = supervisor.call_desk("9999").await.expect_err("no such user");
    assert_eq!(nobody.code(), Some(ErrorCode::NotFound));
    let itself = supervisor.call_desk("supervisor").await.expect_err("not oneself");
    assert_eq!(itself.code(), Some(ErrorCode::InvalidField));

    // The supervisor calls agent1 by agent number; agent1's desk rings with an internal call.
    let mine = supervisor.call_desk("1026").await.expect("call agent1");
    assert_eq!(wait_event(&supervisor, "ringing", |e| matches!(e, Event::CallRinging { .. })).await, Event::CallRinging { call: mine });
    // Taken up by it, agent1 is not offered queue calls: on call in the ACD.
    let Event::CallOffered { call: theirs, caller, callee, trunk, .. } = offered_and_on_call(&agent).await else { unreachable!() };
    assert_eq!((caller.as_str(), callee.as_str(), trunk.as_str()), ("supervisor", "internal", "desk"));
    let busy = other.call_desk("agent1").await.expect_err("agent1 is in a call");
    assert_eq!(busy.code(), Some(ErrorCode::Busy));
    let stolen = other.answer_call(theirs).await.expect_err("not agent2's call");
    assert_eq!(stolen.code(), Some(ErrorCode::Forbidden));
    agent.answer_call(theirs).await.expect("answer");
    wait_event(&agent, "connected", |e| *e == Event::CallConnected { call: theirs }).await;
    wait_event(&supervisor, "connected", |e| *e == Event::CallConnected { call: mine }).await;

    let no_hold = supervisor.hold_call(mine, true).await.expect_err("nobody to hold");
    assert_eq!(no_hold.code(), Some(ErrorCode::InvalidTransition));

    // Both talk at once: each hears the other's tone.
    let (by_supervisor, by_agent) = tokio::join!(
        desk_talk(supervisor.clone(), mine, 4, Some(1000.0), 0),
        desk_talk(agent.clone(), theirs, 4, Some(2000.0), 0)
    );
    let (agent_heard, supervisor_heard) = (tone_blocks(&by_agent.0, 1000.0), tone_blocks(&by_supervisor.0, 2000.0));
    assert!(agent_heard >= 25, "the agent heard the supervisor in only {agent_heard} blocks");
    assert!(supervisor_heard >= 25, "the supervisor heard the agent in only {supervisor_heard} blocks");
    assert_eq!(tone_blocks(&by_agent.0, 2000.0), 0, "no echo of one's own voice");

    // The agent hangs up: both hear of it, and the agent is ready again (no wrap-up).
    agent.hangup_call(theirs).await.expect("hang up");
    assert_eq!(wait_event(&supervisor, "the end", ended).await, Event::CallEnded { call: mine, cause: "caller_hangup".into() });
    assert_eq!(event_and_state(&agent, "the end", ended, "ready").await, Event::CallEnded { call: theirs, cause: "switch_hangup".into() });

    // The agent calls for help (呼叫班长): the supervisor's desk rings and declines.
    let help = agent.call_supervisor().await.expect("call the supervisor");
    let Event::CallOffered { call: asked, caller, .. } = wait_event(&supervisor, "the call for help", offered).await else { unreachable!() };
    assert_eq!(caller, "agent1");
    supervisor.hangup_call(asked).await.expect("decline");
    assert_eq!(event_and_state(&agent, "declined", ended, "ready").await, Event::CallEnded { call: help, cause: "rejected".into() });
    let away = other.call_supervisor().await;
    assert!(away.is_ok(), "the supervisor is free again: {away:?}");
}

/// An agent consults another agent (咨询转接 to a desk): the caller hears music and neither
/// agent; the two agents hear each other; after the transfer the caller hears the second
/// agent, the first gets `CallEnded` and is in wrap-up, the ACD has the second on the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_consults_another_agent_then_hands_the_caller_over() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = Daemon::start_with_config(dir.path(), CONFIG, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = Arc::new(daemon.login_demo("agent1").await);
    let agent2 = Arc::new(daemon.login_demo("agent2").await);
    log_in_ready(&agent1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    log_in_ready(&agent2).await;
    let caller = queue_caller(&daemon, 26);

    let Event::CallOffered { call, .. } = wait_event(&agent1, "the offer", offered).await else { unreachable!() };
    answer(&agent1, call).await;
    let (_, next1) = desk_talk(agent1.clone(), call, 4, Some(1000.0), 0).await;
    let not_mine = agent2.consult_agent(call, "agent1").await.expect_err("not agent2's call");
    assert_eq!(not_mine.code(), Some(ErrorCode::Forbidden));
    let itself = agent1.consult_agent(call, "1026").await.expect_err("not oneself");
    assert_eq!(itself.code(), Some(ErrorCode::InvalidField));
    let no_supervisor = agent1.consult_supervisor(call).await.expect_err("no supervisor at a desk");
    assert_eq!(no_supervisor.code(), Some(ErrorCode::Busy));

    agent1.consult_agent(call, "agent2").await.expect("consult agent2");
    wait_event(&agent1, "held", |e| *e == Event::CallHeld { call, held: true }).await;
    let Event::CallOffered { call: rung, caller: asking, callee, .. } = offered_and_on_call(&agent2).await else { unreachable!() };
    assert_eq!((rung, asking.as_str(), callee.as_str()), (call, "agent1", "internal"));
    agent2.answer_call(call).await.expect("agent2 answers");
    wait_event(&agent2, "connected", |e| *e == Event::CallConnected { call }).await;
    wait_event(&agent1, "the consulted desk", |e| *e == Event::ConferenceChanged { call, joined: true }).await;
    let (a1, a2) = tokio::join!(desk_talk(agent1.clone(), call, 4, Some(1000.0), next1), desk_talk(agent2.clone(), call, 4, Some(2000.0), 0));
    let (heard_by_1, heard_by_2) = (tone_blocks(&a1.0, 2000.0), tone_blocks(&a2.0, 1000.0));
    assert!(heard_by_1 >= 25 && heard_by_2 >= 25, "consulting, agent1 heard agent2 in {heard_by_1} blocks, agent2 agent1 in {heard_by_2}");

    agent1.complete_transfer(call).await.expect("complete");
    assert_eq!(event_and_state(&agent1, "the end for agent1", ended, "wrap_up").await, Event::CallEnded { call, cause: "transferred".into() });
    let supervisor = daemon.login_demo("supervisor").await;
    let board = board_when(&supervisor, |b| count_in(b, "wrap_up") == 1 && count_in(b, "on_call") == 1).await;
    let on_call = board.agents.iter().find(|a| a.state == "on_call").expect("on call");
    assert_eq!(on_call.caller.as_deref(), Some("13800138000"), "the ACD has agent2 on the caller's call: {board:#?}");
    let denied = agent1.hold_call(call, true).await.expect_err("no longer agent1's call");
    assert_eq!(denied.code(), Some(ErrorCode::Forbidden));
    let _ = desk_talk(agent2.clone(), call, 4, Some(2000.0), a2.1).await;
    caller.await.expect("the caller hung up");
    assert_eq!(event_and_state(&agent2, "the end", ended, "wrap_up").await, Event::CallEnded { call, cause: "caller_hangup".into() });

    // What the caller heard: agent1, then the music without either agent, then agent2.
    let heard = caller_heard(&daemon);
    let blocks: Vec<&[i16]> = heard.chunks(800).filter(|b| b.len() == 800).collect();
    let first_music = blocks.iter().position(|b| music(b)).unwrap_or_else(|| panic!("the caller heard no music on hold"));
    let last_music = blocks.iter().rposition(|b| music(b)).unwrap_or(first_music);
    let held = &heard[first_music * 800..(last_music + 1) * 800];
    assert!(blocks.iter().filter(|b| music(b)).count() >= 30, "music while the agents talked");
    assert!(tone_blocks(held, 1000.0) + tone_blocks(held, 2000.0) <= 2, "the caller heard an agent while held");
    assert!(tone_blocks(&heard[..first_music * 800], 1000.0) >= 15, "the caller heard agent1 before");
    let after = &heard[(last_music + 1) * 800..];
    assert!(tone_blocks(after, 2000.0) >= 25, "after the transfer the caller heard agent2 in {} blocks", tone_blocks(after, 2000.0));
    assert_eq!(tone_blocks(&heard[..first_music * 800], 2000.0), 0, "agent2 was not heard before");
}

/// A supervisor listening to a call takes it over (接管): the agent's desk gets `CallEnded`
/// (`taken_over`) and the agent wraps up; the caller hears the supervisor from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_supervisor_takes_a_call_over_and_the_agent_wraps_up() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = Daemon::start_with_config(dir.path(), CONFIG, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let supervisor = Arc::new(daemon.login_demo("supervisor").await);
    log_in_ready(&agent).await;
    let caller = queue_caller(&daemon, 16);

    let Event::CallOffered { call, .. } = wait_event(&agent, "the offer", offered).await else { unreachable!() };
    answer(&agent, call).await;
    let (_, next) = desk_talk(agent.clone(), call, 3, Some(1000.0), 0).await;
    let by_agent = agent.take_over(call).await.expect_err("agents may not take over");
    assert_eq!(by_agent.code(), Some(ErrorCode::Forbidden));
    let unheard = supervisor.take_over(call).await.expect_err("listen first");
    assert_eq!(unheard.code(), Some(ErrorCode::InvalidTransition));
    supervisor.snoop(call, rexian_shared::SnoopMode::Listen).await.expect("listen");
    let (listened, _) = tokio::join!(desk_talk(supervisor.clone(), call, 2, Some(2000.0), 0), desk_talk(agent.clone(), call, 2, Some(1000.0), next));
    assert!(tone_blocks(&listened.0, 1000.0) >= 10, "listening, the supervisor hears the agent");

    supervisor.take_over(call).await.expect("take over");
    assert_eq!(event_and_state(&agent, "the end for the agent", ended, "wrap_up").await, Event::CallEnded { call, cause: "taken_over".into() });
    wait_event(&supervisor, "connected", |e| *e == Event::CallConnected { call }).await;
    let gone = agent.hold_call(call, true).await.expect_err("no longer the agent's call");
    assert_eq!(gone.code(), Some(ErrorCode::Forbidden));
    let _ = desk_talk(supervisor.clone(), call, 5, Some(2000.0), listened.1).await;
    caller.await.expect("the caller hung up");
    assert_eq!(wait_event(&supervisor, "the end", ended).await, Event::CallEnded { call, cause: "caller_hangup".into() });

    // The caller heard the agent, and after the take-over the supervisor (who, listening,
    // was not heard).
    let heard = caller_heard(&daemon);
    let first_sup = heard.chunks(800).position(|b| b.len() == 800 && tone_share(b, 2000.0) > 0.5).expect("the supervisor was heard");
    assert!(tone_blocks(&heard[..first_sup * 800], 1000.0) >= 20, "the agent before the take-over");
    assert!(tone_blocks(&heard[first_sup * 800..], 2000.0) >= 30, "the supervisor after the take-over");
    assert_eq!(tone_blocks(&heard[first_sup * 800..], 1000.0), 0, "the agent is out of the call");
}

/// 100 ms blocks in which `freq` is clearly present among others (a mix of tones).
fn blocks_with(samples: &[i16], freq: f64) -> usize {
    samples.chunks(800).filter(|b| b.len() == 800 && tone_share(b, freq) > 0.2).count()
}

/// An agent asks for help during a caller's call (求助): a consultation with the supervisor on
/// duty, the caller held; taken off hold it is a three-way call where everyone hears the
/// others; cancelled, the supervisor leaves and agent and caller talk on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_the_supervisor_for_help_makes_it_three_way_then_lets_the_supervisor_go() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = Daemon::start_with_config(dir.path(), CONFIG, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent = Arc::new(daemon.login_demo("agent1").await);
    let supervisor = Arc::new(daemon.login_demo("supervisor").await);
    log_in_ready(&agent).await;
    let caller = queue_caller(&daemon, 22);

    let Event::CallOffered { call, .. } = wait_event(&agent, "the offer", offered).await else { unreachable!() };
    answer(&agent, call).await;
    let (_, next) = desk_talk(agent.clone(), call, 3, Some(1000.0), 0).await;
    let on_a_call = agent.call_supervisor().await.expect_err("on a call, the way is a consultation");
    assert_eq!(on_a_call.code(), Some(ErrorCode::InvalidTransition));
    agent.consult_supervisor(call).await.expect("ask for help");
    wait_event(&agent, "held", |e| *e == Event::CallHeld { call, held: true }).await;
    let Event::CallOffered { call: rung, caller: asking, .. } = wait_event(&supervisor, "the help call", offered).await else { unreachable!() };
    assert_eq!((rung, asking.as_str()), (call, "agent1"));
    supervisor.answer_call(call).await.expect("the supervisor answers");
    wait_event(&agent, "the supervisor in the call", |e| *e == Event::ConferenceChanged { call, joined: true }).await;
    // Consulting privately first, then the caller is taken off hold: all three talk.
    let (a, s) = tokio::join!(desk_talk(agent.clone(), call, 2, Some(1000.0), next), desk_talk(supervisor.clone(), call, 2, Some(2000.0), 0));
    assert!(tone_blocks(&s.0, 1000.0) >= 10, "the supervisor hears the agent");
    agent.hold_call(call, false).await.expect("three-way");
    wait_event(&agent, "off hold", |e| *e == Event::CallHeld { call, held: false }).await;
    let (a, s) = tokio::join!(desk_talk(agent.clone(), call, 4, Some(1000.0), a.1), desk_talk(supervisor.clone(), call, 4, Some(2000.0), s.1));
    assert!(tone_blocks(&a.0, 2000.0) >= 25, "three-way, the agent hears the supervisor");
    assert!(blocks_with(&s.0, 1000.0) >= 25, "three-way, the supervisor hears the agent");

    agent.cancel_consult(call).await.expect("let the supervisor go");
    assert_eq!(wait_event(&supervisor, "the end", ended).await, Event::CallEnded { call, cause: "switch_hangup".into() });
    wait_event(&agent, "the supervisor left", |e| *e == Event::ConferenceChanged { call, joined: false }).await;
    let _ = desk_talk(agent.clone(), call, 3, Some(1000.0), a.1).await;
    caller.await.expect("the caller hung up");
    assert_eq!(event_and_state(&agent, "the end", ended, "wrap_up").await, Event::CallEnded { call, cause: "caller_hangup".into() });

    // The caller heard music while the two consulted, then both of them, then the agent alone.
    let heard = caller_heard(&daemon);
    let blocks: Vec<&[i16]> = heard.chunks(800).filter(|b| b.len() == 800).collect();
    let first_music = blocks.iter().position(|b| music(b)).unwrap_or_else(|| panic!("the caller heard no music on hold"));
    let last_music = blocks.iter().rposition(|b| music(b)).unwrap_or(first_music);
    let held = &heard[first_music * 800..(last_music + 1) * 800];
    assert!(tone_blocks(held, 2000.0) + tone_blocks(held, 1000.0) <= 2, "the caller heard the desks while held");
    let after = &heard[(last_music + 1) * 800..];
    let (both, supervisor_blocks) = (
        after.chunks(800).filter(|b| b.len() == 800 && tone_share(b, 1000.0) > 0.2 && tone_share(b, 2000.0) > 0.2).count(),
        blocks_with(after, 2000.0),
    );
    assert!(both >= 20, "three-way, the caller heard agent and supervisor together in only {both} blocks");
    assert!(supervisor_blocks <= both + 5, "the supervisor was heard alone: {supervisor_blocks} against {both}");
    let last_sup = after.chunks(800).rposition(|b| b.len() == 800 && tone_share(b, 2000.0) > 0.2).unwrap_or(0);
    assert!(tone_blocks(&after[(last_sup + 1) * 800..], 1000.0) >= 15, "after the supervisor left, the agent alone");
}
