//! The ACD with real desks: a SIPp caller presses 0 in the 12365 IVR and waits in the
//! `hotline` queue; headless desk clients (the desktops' network core) log in to the queues
//! as agents. Checked is what agents and supervisors see: offers in the strategy's order, the
//! automatic not-ready after a missed offer, wrap-up, the call-waiting figure, the seat board.

use std::time::Duration;

use rexian_shared::Event;
use rexian_tests::{sipp_caller, wait_for_log, CallerStep, Daemon};

use rexian_tests::{state_is, wait_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_idle_agent_is_offered_first_a_miss_sets_not_ready_and_the_next_agent_answers() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[telephony]\nrecord_calls = true\n\n[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[[acd.queues]]\nname = \"hotline\"\n\
                  strategy = \"longest_idle\"\noffer_secs = 8\nwrap_up_secs = 2\nmax_missed_offers = 1\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = daemon.login_demo("agent1").await;
    let agent2 = std::sync::Arc::new(daemon.login_demo("agent2").await);
    let supervisor = daemon.login_demo("supervisor").await;

    // Not logged in to the queues yet: not ready is refused; then agent1 goes ready first.
    assert!(agent1.agent_ready().await.is_err(), "ready needs a login to the queues");
    agent1.agent_login(true).await.expect("agent1 login");
    wait_event(&agent1, "agent1 ready", state_is("ready")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent2.agent_login(true).await.expect("agent2 login");
    wait_event(&agent2, "agent2 ready", state_is("ready")).await;
    let refused = agent2.agent_not_ready("sleeping").await.expect_err("unknown reason");
    assert_eq!(refused.code(), Some(rexian_shared::ErrorCode::InvalidField));

    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(22000)];
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false));

    // agent1 has been idle longest: offered first; it declines. The call-waiting figure (sent
    // at most every 250 ms) may come before or after the offer.
    let (mut offered, mut waiting) = (None, false);
    while offered.is_none() || !waiting {
        let want = |e: &Event| matches!(e, Event::CallOffered { .. } | Event::QueueWaiting { waiting: 1, .. });
        match wait_event(&agent1, "the offer and the call-waiting figure", want).await {
            Event::CallOffered { call, caller, .. } => offered = Some((call, caller)),
            Event::QueueWaiting { queue, .. } => waiting = queue == "hotline",
            _ => unreachable!(),
        }
    }
    let Some((call, from)) = offered else { unreachable!() };
    assert_eq!(from, "13800138000");
    agent1.hangup_call(call).await.expect("decline");
    let not_ready = wait_event(&agent1, "not ready", state_is("not_ready")).await;
    assert_eq!(not_ready, Event::AgentStateChanged { state: "not_ready".into(), reason: Some("missed_offers".into()), wrap_up_secs: None });

    // agent2 is offered next and answers.
    let Event::CallOffered { call: offered, .. } = wait_event(&agent2, "an offer", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    assert_eq!(offered, call, "the same caller, kept in the queue");
    agent2.answer_call(call).await.expect("answer");
    // The call connects and the ACD marks agent2 on call, in either order.
    let (mut connected, mut on_call) = (false, false);
    while !(connected && on_call) {
        let event = wait_event(&agent2, "connected and on call", |e| *e == Event::CallConnected { call } || state_is("on_call")(e)).await;
        connected |= event == Event::CallConnected { call };
        on_call |= state_is("on_call")(&event);
    }
    // 自动报工号: the agent hears a short tone while the caller hears the agent's number.
    let (heard, _) = rexian_tests::desk_talk(agent2.clone(), call, 2, None, 0).await;
    let toned = rexian_tests::tone_blocks(&heard, 1000.0);
    assert!(toned >= 1, "the agent hears the announcement tone");

    let board = supervisor.seat_board().await.expect("seat board");
    assert_eq!((board.serving, board.idle, board.not_ready), (1, 0, 1), "{board:#?}");
    let hotline = board.queues.iter().find(|q| q.queue == "hotline").expect("queue");
    assert_eq!((hotline.waiting, hotline.logged_in_agents), (0, 2), "{board:#?}");
    assert!(agent1.seat_board().await.is_err(), "agents do not read the seat board");

    // The caller hangs up: agent2 wraps up, then is ready again.
    caller.await.expect("caller");
    wait_event(&agent2, "wrap-up", state_is("wrap_up")).await;
    wait_event(&agent2, "ready after wrap-up", state_is("ready")).await;

    // The call's recording: right is what the caller heard — the announcement first, while
    // the agent was silent.
    let cdr = &daemon.ended_calls()[0];
    let path = cdr["recordings"].as_array().and_then(|r| r.iter().find(|r| r["kind"] == "call")).and_then(|r| r["path"].as_str()).expect("a call recording");
    let (_, samples) = switchd::media::wav::read_wav(daemon.data_dir.join(path)).expect("wav");
    let right: Vec<i16> = samples.chunks(2).map(|s| s[1]).take(8000 * 2).collect();
    let voiced = right.chunks(160).filter(|f| (f.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / 160.0).sqrt() > 300.0).count();
    assert!(voiced > 25, "the caller heard the agent's number announced ({voiced} voiced frames)");

    // Every state change and the queue's events are stored (ACD-2, RPT-4).
    let out = daemon.cli(&["acd", "states", "--user", "agent1", "--json"]);
    let states: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("states json");
    assert!(
        states.iter().any(|s| s["to_state"] == "not_ready" && s["reason"] == "missed_offers" && s["cause"] == "missed_offers"),
        "{states:#?}"
    );
    let out = daemon.cli(&["acd", "events", "--json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("events json");
    let kinds: Vec<&str> = events.iter().rev().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["entered", "offered", "missed", "answered", "ended", "wrap_up"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let record = cdr["id"].as_i64();
    assert!(events.iter().all(|e| e["call_id"].as_i64() == record), "events name the call record: {events:#?}");

    // The supervisor puts agent1 back to ready (强制示闲), and can set it not ready again.
    let agent1_id = board.agents.iter().find(|a| a.reason.as_deref() == Some("missed_offers")).map(|a| a.user_id).expect("agent1 on the board");
    assert!(agent2.force_agent_state(agent1_id, "ready", None).await.is_err(), "agents may not force states");
    supervisor.force_agent_state(agent1_id, "ready", None).await.expect("force ready");
    wait_event(&agent1, "ready", state_is("ready")).await;
    let bad = supervisor.force_agent_state(agent1_id, "asleep", None).await.expect_err("bad state");
    assert_eq!(bad.code(), Some(rexian_shared::ErrorCode::InvalidField));
    agent2.agent_logout().await.expect("logout");
    let board = supervisor.seat_board().await.expect("seat board");
    assert_eq!((board.idle, board.logged_out), (1, 1), "{board:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_that_drops_while_ringing_loses_the_offer_at_once_and_supervisors_see_the_board_change() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[[acd.queues]]\nname = \"hotline\"\noffer_secs = 15\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = daemon.login_demo("agent1").await;
    let agent2 = daemon.login_demo("agent2").await;
    let supervisor = daemon.login_demo("supervisor").await;
    supervisor.request(rexian_shared::Request::Subscribe).await.expect("subscribe");
    agent1.agent_login(true).await.expect("login");
    wait_event(&agent1, "ready", state_is("ready")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent2.agent_login(true).await.expect("login");
    wait_event(&agent2, "ready", state_is("ready")).await;

    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(15000)];
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false));
    let Event::CallOffered { call, .. } = wait_event(&agent1, "an offer", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    // agent1's desktop vanishes while its phone rings: the offer goes to agent2 at once, not
    // after the 15 s ring.
    let dropped = std::time::Instant::now();
    agent1.close().await;
    let Event::CallOffered { call: again, .. } = wait_event(&agent2, "the offer", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    assert_eq!(again, call);
    assert!(dropped.elapsed() < Duration::from_secs(5), "offered on after {:?}", dropped.elapsed());
    agent2.answer_call(call).await.expect("answer");

    // The supervisor is pushed the board: agent1 logged out, agent2 serving.
    // (A board pushed between the offer and the answer shows agent2 reserved: also serving.)
    let on_call = |b: &rexian_shared::SeatBoard| b.agents.iter().filter(|a| a.state == "on_call").count() == 1;
    let board = wait_event(&supervisor, "the seat board", |e| matches!(e, Event::SeatBoardChanged { board } if on_call(board))).await;
    let Event::SeatBoardChanged { board } = board else { unreachable!() };
    assert_eq!((board.serving, board.idle, board.logged_out), (1, 0, 1), "{board:#?}");
    caller.await.expect("caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_caller_is_told_their_place_and_is_offered_when_an_agent_becomes_ready() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 20\n\n[[acd.queues]]\nname = \"hotline\"\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = daemon.login_demo("agent1").await;
    agent1.agent_login(false).await.expect("logged in, not ready");
    let not_ready = wait_event(&agent1, "not ready", state_is("not_ready")).await;
    assert_eq!(not_ready, Event::AgentStateChanged { state: "not_ready".into(), reason: Some("other".into()), wrap_up_secs: None });

    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(20000)];
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false));
    wait_event(&agent1, "a caller waiting", |e| matches!(e, Event::QueueWaiting { waiting: 1, .. })).await;
    // Five seconds into the wait the caller is told they are next (ACD-3).
    wait_for_log(&daemon, "IVR: telling the caller their place");
    assert!(daemon.log().contains("place=1"), "the only caller is next");
    agent1.agent_ready().await.expect("ready");
    let Event::CallOffered { call, .. } = wait_event(&agent1, "the offer", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    agent1.answer_call(call).await.expect("answer");
    wait_event(&agent1, "connected", |e| *e == Event::CallConnected { call }).await;
    caller.await.expect("caller");
}

/// ACD-4: a caller asks to be called back, confirms their number and hangs up; when an agent
/// is free the agent's desk is offered the callback, switchd dials the caller through the
/// trunk (baresip answers as the caller's phone), and they talk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_asks_for_a_callback_keeps_their_place_and_is_called_back_when_an_agent_is_free() {
    use rexian_tests::{baresip_answerer, dumped_samples, file_ending, free_udp_port, tone_share, tone_wav};
    let dir = tempfile::tempdir().expect("tmp");
    let scratch = tempfile::tempdir().expect("tmp");
    let tone1k = scratch.path().join("1k.wav");
    tone_wav(&tone1k, 1000.0, 60);
    let phone_port = free_udp_port();
    let config = format!(
        "[telephony]\noutbound_caller_id = \"12365\"\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\n\
         proxy = \"127.0.0.1:{phone_port}\"\n\n[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 0\n\n\
         [[acd.queues]]\nname = \"hotline\"\ncallback_secs = 40\nwrap_up_secs = 1\n"
    );
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent = std::sync::Arc::new(daemon.login_demo("agent1").await);
    agent.agent_login(false).await.expect("logged in, not ready");
    wait_event(&agent, "not ready", state_is("not_ready")).await;

    // 0 for an agent; 2 for a callback while waiting; 1 confirms the caller's own number.
    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(3000), CallerStep::Keys("2".into()), CallerStep::Pause(2500), CallerStep::Keys("1".into())];
    tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, true)).await.expect("the caller is hung up after confirming");

    // The caller's phone answers switchd's call with a 1 kHz tone; the agent becomes free.
    let (mut phone, phone_dir) = baresip_answerer("13800138000", phone_port, &tone1k, 40);
    agent.agent_ready().await.expect("ready");
    let offer = wait_event(&agent, "the callback offer", |e| matches!(e, Event::CallOffered { .. })).await;
    let Event::CallOffered { call, caller, callee, record, .. } = offer else { unreachable!() };
    assert_eq!((caller.as_str(), callee.as_str()), ("13800138000", "callback"), "the desk sees whom it calls back");
    assert!(record.is_some(), "the callback names the original call record, for linking tickets");
    agent.answer_call(call).await.expect("the agent takes the callback");
    // The caller answers: the ACD marks the agent on call and the desk is connected, in
    // either order.
    let (mut connected, mut on_call) = (false, false);
    while !(connected && on_call) {
        let event = wait_event(&agent, "connected and on call", |e| *e == Event::CallConnected { call } || state_is("on_call")(e)).await;
        connected |= event == Event::CallConnected { call };
        on_call |= state_is("on_call")(&event);
    }
    let (heard, _) = rexian_tests::desk_talk(agent.clone(), call, 5, Some(440.0), 0).await;
    agent.hangup_call(call).await.expect("hang up");
    let _ = phone.wait();
    let toned = heard.chunks(800).filter(|b| b.len() == 800 && tone_share(b, 1000.0) > 0.3).count();
    assert!(toned >= 15, "the agent hears the caller's phone ({toned} blocks of 100 ms)");
    let at_phone = dumped_samples(&file_ending(phone_dir.path(), "-dec.wav").expect("the phone kept what it heard"));
    let greeted = at_phone.chunks(800).filter(|b| b.len() == 800 && tone_share(b, 440.0) > 0.3).count();
    assert!(greeted >= 15, "the caller hears the agent ({greeted} blocks of 100 ms)");

    let out = daemon.cli(&["acd", "events", "--json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("events json");
    let kinds: Vec<&str> = events.iter().rev().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["entered", "callback_requested", "offered", "answered", "ended"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(events.iter().any(|e| e["kind"] == "answered" && e["detail"].as_str().is_some_and(|d| d.contains("callback true"))), "{events:#?}");
    let calls = daemon.ended_calls();
    assert!(calls.iter().any(|c| c["route"] == "callback" && c["callee"] == "13800138000" && c["answered_at"].is_string()), "{calls:#?}");
}

/// ACD-3: a caller still waiting when the queue's overflow threshold passes goes to the
/// mailbox, and the message becomes a ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_waiting_past_the_overflow_threshold_leaves_a_message_that_becomes_a_ticket() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[[acd.queues]]\nname = \"hotline\"\n\
                  [[acd.queues.overflow]]\nafter_secs = 6\nto = \"mailbox\"\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent = daemon.login_demo("agent1").await;
    agent.agent_login(false).await.expect("logged in, not ready");
    let target = daemon.sip_addr;
    // Wait past the threshold; talk after the message prompt's beep; # to finish.
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(20000), CallerStep::Speak, CallerStep::Pause(9000), CallerStep::Keys("#".into())];
    tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, true)).await.expect("caller");
    let query = rexian_shared::TicketQuery { channel: Some(rexian_shared::Channel::IvrMessage), ..Default::default() };
    let tickets = agent.search_tickets(query).await.expect("search").items;
    assert_eq!(tickets.len(), 1, "the message became a ticket: {tickets:#?}");
    let out = daemon.cli(&["acd", "events", "--json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("events json");
    let overflowed = events.iter().find(|e| e["kind"] == "overflowed").expect("an overflow event");
    assert!(overflowed["wait_ms"].as_i64().is_some_and(|ms| (6000..9000).contains(&ms)), "{overflowed:#}");
}

/// ACD-6: out of the queue's hours its callers go to the night-bell queue, which only the duty
/// agent serves; the seat board counts the answer toward today's service level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_hours_the_night_bell_rings_only_the_duty_agent() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n\
                  [[acd.queues]]\nname = \"hotline\"\nhours = [\"14:00-17:00\"]\nwhen_closed = \"queue:night\"\n\n\
                  [[acd.queues]]\nname = \"night\"\nagents = [\"agent2\"]\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = daemon.login_demo("agent1").await;
    let agent2 = daemon.login_demo("agent2").await;
    let supervisor = daemon.login_demo("supervisor").await;
    // agent1 has been idle longest, but does not serve the night queue.
    agent1.agent_login(true).await.expect("login");
    wait_event(&agent1, "ready", state_is("ready")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent2.agent_login(true).await.expect("login");
    wait_event(&agent2, "ready", state_is("ready")).await;

    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(12000)];
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false));
    let Event::CallOffered { call, .. } = wait_event(&agent2, "the night bell", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    agent2.answer_call(call).await.expect("answer");
    wait_event(&agent2, "connected", |e| *e == Event::CallConnected { call }).await;
    let board = supervisor.seat_board().await.expect("board");
    let night = board.queues.iter().find(|q| q.queue == "night").expect("night queue");
    assert_eq!((night.logged_in_agents, night.answered_today, night.service_level_pct), (1, 1, Some(100)), "{board:#?}");
    let hotline = board.queues.iter().find(|q| q.queue == "hotline").expect("hotline queue");
    assert_eq!((hotline.logged_in_agents, hotline.answered_today), (2, 0), "{board:#?}");
    caller.await.expect("caller");
    let offered_to_agent1 = tokio::time::timeout(Duration::from_millis(200), async {
        while let Some(e) = agent1.next_event().await {
            if matches!(e, Event::CallOffered { .. }) {
                return true;
            }
        }
        false
    });
    assert!(!offered_to_agent1.await.unwrap_or(false), "agent1 is not on night duty");
    let out = daemon.cli(&["acd", "events", "--json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("events json");
    assert!(events.iter().any(|e| e["kind"] == "overflowed" && e["queue"] == "hotline"), "{events:#?}");
}

/// A desk that drops mid-call: the caller goes back to the queue ahead of the others and the
/// next agent takes them; the dropped agent comes back, logs in and is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_that_drops_mid_call_sends_the_caller_back_to_the_queue_and_the_agent_returns_ready() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 0\n\n\
                  [[acd.queues]]\nname = \"hotline\"\nwrap_up_secs = 1\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = std::sync::Arc::new(daemon.login_demo("agent1").await);
    agent1.agent_login(true).await.expect("login");
    wait_event(&agent1, "ready", state_is("ready")).await;
    let agent2 = std::sync::Arc::new(daemon.login_demo("agent2").await);
    agent2.agent_login(false).await.expect("login, not ready");

    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(25000)];
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false));
    let Event::CallOffered { call, .. } = wait_event(&agent1, "the offer", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    agent1.answer_call(call).await.expect("answer");
    wait_event(&agent1, "connected", |e| *e == Event::CallConnected { call }).await;
    rexian_tests::desk_talk(agent1.clone(), call, 1, Some(440.0), 0).await;
    // agent1's desktop vanishes mid-call; agent2 becomes ready.
    // (desk_talk's listener lets go of its handle once its abort lands.)
    let mut agent1 = agent1;
    let agent1 = loop {
        match std::sync::Arc::try_unwrap(agent1) {
            Ok(desk) => break desk,
            Err(shared) => agent1 = shared,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    agent1.close().await;
    agent2.agent_ready().await.expect("ready");
    let Event::CallOffered { call: again, caller: from, .. } = wait_event(&agent2, "the caller again", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    assert_eq!((again, from.as_str()), (call, "13800138000"), "the same caller, back in the queue");
    agent2.answer_call(call).await.expect("answer");
    wait_event(&agent2, "connected", |e| *e == Event::CallConnected { call }).await;
    let (heard, _) = rexian_tests::desk_talk(agent2.clone(), call, 2, None, 0).await;
    assert!(heard.chunks(160).any(|f| f.iter().any(|&s| s.abs() > 500)), "agent2 hears the caller's side");

    // agent1 comes back: logs in and is ready, its earlier call settled.
    let agent1 = daemon.login_demo("agent1").await;
    agent1.agent_login(true).await.expect("login again");
    wait_event(&agent1, "ready again", state_is("ready")).await;
    caller.await.expect("caller");
    let out = daemon.cli(&["acd", "events", "--json"]);
    let events: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("events json");
    let answered = events.iter().filter(|e| e["kind"] == "answered").count();
    assert_eq!(answered, 2, "answered by agent1, then again by agent2: {events:#?}");
}

/// ACD-1 ring-all: every free agent's desk rings at once; the first to answer takes the call,
/// the others are told it was answered elsewhere and stay ready (not counted as a miss).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_all_queue_rings_every_free_desk_and_the_first_answer_wins() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 0\n\n\
                  [[acd.queues]]\nname = \"hotline\"\nstrategy = \"ring_all\"\nmax_missed_offers = 1\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let agent1 = daemon.login_demo("agent1").await;
    let agent2 = daemon.login_demo("agent2").await;
    let supervisor = daemon.login_demo("supervisor").await;
    for agent in [&agent1, &agent2] {
        agent.agent_login(true).await.expect("login");
        wait_event(agent, "ready", state_is("ready")).await;
    }
    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(10000)];
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false));
    let offered = |e: &Event| matches!(e, Event::CallOffered { .. });
    let Event::CallOffered { call, .. } = wait_event(&agent1, "agent1 rung", offered).await else { unreachable!() };
    let Event::CallOffered { call: same, .. } = wait_event(&agent2, "agent2 rung", offered).await else { unreachable!() };
    assert_eq!(call, same, "both desks ring with the one caller");
    agent2.answer_call(call).await.expect("agent2 answers first");
    wait_event(&agent2, "connected", |e| *e == Event::CallConnected { call }).await;
    let ended = wait_event(&agent1, "the ring stops", |e| matches!(e, Event::CallEnded { .. })).await;
    assert_eq!(ended, Event::CallEnded { call, cause: "answered_elsewhere".into() });
    let late = agent1.answer_call(call).await.expect_err("too late");
    assert_eq!(late.code(), Some(rexian_shared::ErrorCode::Conflict), "{late}");
    let board = supervisor.seat_board().await.expect("board");
    let states: Vec<(&str, u32)> = board.agents.iter().map(|a| (a.state.as_str(), a.missed_offers)).collect();
    assert!(states.contains(&("on_call", 0)) && states.contains(&("ready", 0)), "{board:#?}");
    caller.await.expect("caller");
}

/// SUP-4: a supervisor logs in to the queues and takes calls like an agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_logs_in_to_the_queues_and_takes_a_call() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 0\n\n[[acd.queues]]\nname = \"hotline\"\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let supervisor = daemon.login_demo("supervisor").await;
    supervisor.agent_login(true).await.expect("a supervisor may log in to the queues");
    wait_event(&supervisor, "ready", state_is("ready")).await;
    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(8000)];
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &steps, false));
    let Event::CallOffered { call, .. } = wait_event(&supervisor, "the offer", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    supervisor.answer_call(call).await.expect("answer");
    wait_event(&supervisor, "connected", |e| *e == Event::CallConnected { call }).await;
    let board = supervisor.seat_board().await.expect("the board shows the supervisor serving");
    assert_eq!(board.serving, 1, "{board:#?}");
    caller.await.expect("caller");
    // A department handler is no call taker.
    let handler = daemon.login_demo("quality").await;
    let refused = handler.agent_login(true).await.expect_err("handlers take no calls");
    assert_eq!(refused.code(), Some(rexian_shared::ErrorCode::Forbidden), "{refused}");
}

/// Three agents, three callers: offers follow the strategy (longest idle first), each agent
/// answers, and the calls carry audio both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_are_offered_three_callers_longest_idle_first_and_talk_with_them() {
    use rexian_shared::{NewUser, Request, Role};
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 0\n\n\
                  [[acd.queues]]\nname = \"hotline\"\nwrap_up_secs = 60\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let admin = daemon.login_demo("admin").await;
    let agent3 = NewUser {
        username: "agent3".into(),
        display_name: "刘芳".into(),
        role: Role::Agent,
        password: "agent3-pass-2026".into(),
        agent_no: Some("1028".into()),
        department_id: None,
    };
    admin.request(Request::CreateUser { user: agent3 }).await.expect("a third agent");
    let agents = [
        std::sync::Arc::new(daemon.login_demo("agent1").await),
        std::sync::Arc::new(daemon.login_demo("agent2").await),
        std::sync::Arc::new(daemon.login("agent3", "agent3-pass-2026").await),
    ];
    for agent in &agents {
        agent.agent_login(true).await.expect("login");
        wait_event(agent, "ready", state_is("ready")).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let target = daemon.sip_addr;
    let mut callers = Vec::new();
    for (n, agent) in agents.iter().enumerate() {
        let number = format!("1380013800{n}");
        let steps = vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(9000)];
        callers.push(tokio::task::spawn_blocking(move || sipp_caller(target, "12365", &number, &steps, false)));
        // The agent idle longest now is the next in line: it is offered this caller.
        let Event::CallOffered { call, caller, .. } = wait_event(agent, "its offer", |e| matches!(e, Event::CallOffered { .. })).await else {
            unreachable!()
        };
        assert_eq!(caller, format!("1380013800{n}"), "agent {} gets caller {n}", n + 1);
        agent.answer_call(call).await.expect("answer");
        wait_event(agent, "connected", |e| *e == Event::CallConnected { call }).await;
        let (heard, _) = rexian_tests::desk_talk(agent.clone(), call, 1, Some(440.0), 0).await;
        assert!(heard.chunks(160).any(|f| f.iter().any(|&s| s.abs() > 500)), "agent {} hears its caller's side", n + 1);
    }
    for caller in callers {
        caller.await.expect("caller");
    }
    // Each call is recorded whole (REC-1: the default policy records every queue call).
    let calls = daemon.ended_calls();
    let recorded = calls.iter().filter(|c| c["recordings"].as_array().is_some_and(|r| r.iter().any(|r| r["kind"] == "call"))).count();
    assert_eq!(recorded, 3, "{calls:#?}");
}

/// ACD-1 caller priority: a VIP on the caller list is offered before a caller who waited
/// longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vip_caller_is_offered_before_a_caller_who_waited_longer() {
    use rexian_shared::{PhoneNumber, Request};
    let dir = tempfile::tempdir().expect("tmp");
    let config = "[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[acd]\nposition_every_secs = 0\n\n[[acd.queues]]\nname = \"hotline\"\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    let supervisor = daemon.login_demo("supervisor").await;
    let vip = Request::SetCallerFlags { phone: PhoneNumber::parse("13900139000").expect("phone"), vip: true, blocked: false };
    supervisor.request(vip).await.expect("mark a VIP");
    let agent = daemon.login_demo("agent1").await;
    agent.agent_login(false).await.expect("logged in, not ready");
    let target = daemon.sip_addr;
    let steps = || vec![CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::Pause(12000)];
    let (first, vip_steps) = (steps(), steps());
    let regular = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13800138000", &first, false));
    wait_event(&agent, "one caller waiting", |e| matches!(e, Event::QueueWaiting { waiting: 1, .. })).await;
    let vip = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", "13900139000", &vip_steps, false));
    wait_event(&agent, "two callers waiting", |e| matches!(e, Event::QueueWaiting { waiting: 2, .. })).await;
    agent.agent_ready().await.expect("ready");
    let Event::CallOffered { caller, .. } = wait_event(&agent, "the first offer", |e| matches!(e, Event::CallOffered { .. })).await else {
        unreachable!()
    };
    assert_eq!(caller, "13900139000", "the VIP goes first");
    regular.await.expect("caller");
    vip.await.expect("caller");
}
