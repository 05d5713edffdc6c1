//! The 12365 automatic service from a caller's side: a scripted SIPp caller dials 12365 over
//! the demo's loopback trunk, keys digits (SIP INFO) and talks (Debian's A-law speech
//! capture), and what comes of it is checked where staff see it — tickets with the recording
//! attached (desk client), the callback list, survey results — and in the call's IVR trail
//! (`switchd ivr trail`), which keeps what the caller was told.
//!
//! The shipped flow answers day and night with the same keys (1 mailbox, 2 recording, 3 status,
//! 4 consultation, 5 survey), so these tests hold at any hour; the time conditions themselves
//! are proven on a virtual clock in `switchd::ivr::interp_tests`.

use base64::Engine;
use rexian_shared::*;
use rexian_tests::{sipp_caller, wait_for_log, CallerStep, Daemon};
use switchd::media::wav;

use CallerStep::{Keys, Pause, Speak};

const CALLER: &str = "13800138000";

fn keys(k: &str) -> CallerStep {
    Keys(k.to_owned())
}

/// A demo daemon whose IVR prompts are rendered (so a scripted caller's timing holds).
fn ivr_daemon() -> Daemon {
    let daemon = Daemon::start_demo();
    wait_for_log(&daemon, "IVR: prompts rendered");
    daemon
}

/// Calls 12365 from `caller` with `steps` (on a blocking thread); switchd hangs up at the end
/// when `await_bye`.
async fn call(daemon: &Daemon, caller: &str, steps: Vec<CallerStep>, await_bye: bool) {
    let (target, caller) = (daemon.sip_addr, caller.to_owned());
    tokio::task::spawn_blocking(move || sipp_caller(target, "12365", &caller, &steps, await_bye)).await.expect("sipp thread");
}

/// The IVR trail of the latest call, as `switchd ivr trail --json` prints it.
fn latest_trail(daemon: &Daemon) -> Vec<serde_json::Value> {
    let calls = daemon.ended_calls();
    let id = calls.first().and_then(|c| c["id"].as_i64()).expect("a call record");
    let out = daemon.cli(&["ivr", "trail", &id.to_string(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("trail json")
}

fn visited(trail: &[serde_json::Value], node: &str) -> bool {
    trail.iter().any(|v| v["node"] == node)
}

fn note_at<'a>(trail: &'a [serde_json::Value], node: &str) -> &'a str {
    trail.iter().find(|v| v["node"] == node).and_then(|v| v["note"].as_str()).unwrap_or_default()
}

/// Seconds of 20 ms frames louder than line noise.
fn voiced_seconds(samples: &[i16]) -> f64 {
    let loud = |f: &&[i16]| (f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64).sqrt() > 200.0;
    samples.chunks(160).filter(loud).count() as f64 * 0.02
}

async fn ivr_tickets(staff: &rexian_shared::client::DeskClient) -> Vec<TicketSummary> {
    let query = TicketQuery { channel: Some(Channel::IvrMessage), ..TicketQuery::default() };
    staff.search_tickets(query).await.expect("search").items
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directors_mailbox_message_becomes_a_ticket_with_its_recording_read_back_twice() {
    let daemon = ivr_daemon();
    // 1 at the greeting; talk after the mailbox prompt and beep; # to finish; keep (1), the
    // callback number is mine (1), a reply is wanted (1); then listen until switchd hangs up.
    let steps = vec![
        Pause(1500), keys("1"), Pause(15000), Speak, Pause(9000), keys("#"),
        Pause(2000), keys("1"), Pause(2000), keys("1"), Pause(2000), keys("1"),
    ];
    call(&daemon, CALLER, steps, true).await;

    let agent = daemon.login_demo("agent1").await;
    let tickets = ivr_tickets(&agent).await;
    assert_eq!(tickets.len(), 1, "{tickets:#?}");
    let ticket = agent.get_ticket(&tickets[0].no).await.expect("ticket");
    assert_eq!((ticket.kind, ticket.channel, ticket.state), (TicketKind::DirectorMailbox, Channel::IvrMessage, TicketState::Registered));
    assert_eq!(ticket.caller.phone.as_ref().map(|p| p.as_ref()), Some(CALLER));
    assert!(ticket.content.contains("需要 / yes"), "{}", ticket.content);
    assert!(ticket.due_date.is_some(), "a mailbox ticket's deadline runs from its registration");
    let cdr = daemon.ended_calls()[0]["id"].as_i64().expect("cdr id");
    assert_eq!(ticket.call_ids, vec![cdr.to_string()], "the ticket is linked to its call");

    // The message is attached and holds the caller's speech.
    let attachment = ticket.attachments.first().expect("the recording is attached");
    assert_eq!(attachment.mime, "audio/wav");
    let Response::AttachmentData { data_base64, .. } = agent.request(Request::GetAttachment { id: attachment.id }).await.expect("attachment")
    else {
        panic!("expected the attachment's data")
    };
    let scratch = tempfile::tempdir().expect("tmp");
    let file = scratch.path().join("m.wav");
    std::fs::write(&file, base64::engine::general_purpose::STANDARD.decode(data_base64).expect("base64")).expect("write");
    let (_, samples) = wav::read_wav(&file).expect("a playable WAV");
    assert!(voiced_seconds(&samples) > 3.0, "speech recorded: {} s voiced", voiced_seconds(&samples));

    // The ticket's calls, with the recording to play from its detail (hotline staff only).
    let calls = agent.ticket_calls(&ticket.no).await.expect("linked calls");
    assert_eq!(calls.iter().map(|c| c.id).collect::<Vec<_>>(), vec![cdr]);
    assert!(calls[0].inbound && calls[0].recording_secs.is_some_and(|s| s >= 3), "{calls:?}");
    let wav_base64 = agent.call_recording(&ticket.no, cdr).await.expect("the call's recording");
    let file = scratch.path().join("call.wav");
    std::fs::write(&file, base64::engine::general_purpose::STANDARD.decode(wav_base64).expect("base64")).expect("write");
    let (_, samples) = wav::read_wav(&file).expect("a playable WAV");
    assert!(voiced_seconds(&samples) > 3.0, "the caller's speech in the call's recording");
    assert_eq!(agent.call_recording(&ticket.no, cdr + 1000).await.expect_err("not this ticket's call").code(), Some(ErrorCode::NotFound));
    let handler = daemon.login_demo("quality").await;
    assert_eq!(handler.ticket_calls(&ticket.no).await.expect_err("handlers").code(), Some(ErrorCode::Forbidden));

    // The number and code were read back twice, digit by digit, as the trail keeps it.
    let trail = latest_trail(&daemon);
    let read_back = note_at(&trail, "read_back");
    let code = ticket.verification_code.clone().expect("staff see the code");
    assert_eq!(read_back.matches(ticket.no.as_ref()).count(), 2, "{read_back}");
    assert_eq!(read_back.matches(code.as_str()).count(), 2, "{read_back}");
    assert!(visited(&trail, "goodbye"), "{trail:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_query_tells_a_wrong_code_then_reads_the_state_and_department() {
    let daemon = ivr_daemon();
    let agent = daemon.login_demo("agent1").await;
    let new = NewTicket::phone(TicketKind::Complaint, PhoneNumber::parse("13900139000").ok(), "电梯故障无人维修", "小区电梯停运三天");
    let ticket = agent.create_ticket(new).await.expect("ticket");
    let departments = agent.departments().await.expect("departments");
    let dept = departments.iter().find(|d| d.parent_id.is_some()).expect("a department");
    agent.act(&ticket.no, TicketAction::Accept { note: "受理".into() }).await.expect("accept");
    agent
        .act(&ticket.no, TicketAction::Dispatch { lead_department: dept.id, assisting_departments: vec![], note: "请办理".into() })
        .await
        .expect("dispatch");
    let code = ticket.verification_code.clone().expect("code");
    let no = ticket.no.to_string();

    // From another phone: a wrong code first, then the right one; then silence ends the call.
    let steps = vec![
        Pause(1500), keys("3"), Pause(3000), keys(&format!("{no}#")), Pause(1500), keys("000000#"),
        Pause(8000), keys(&format!("{no}#")), Pause(1500), keys(&format!("{code}#")),
    ];
    call(&daemon, "13700137000", steps, true).await;

    let trail = latest_trail(&daemon);
    assert!(visited(&trail, "status_retry"), "the wrong code was told: {trail:#?}");
    let said = note_at(&trail, "status_say");
    assert!(said.contains("投诉") && said.contains("已转办"), "{said}");
    assert!(said.contains(&dept.name), "the department is named: {said}");
    assert!(!said.contains("13900139000") && !said.contains("电梯"), "no personal data or content: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_agent_logged_in_a_caller_for_an_agent_leaves_a_message_that_becomes_a_ticket() {
    let daemon = ivr_daemon();
    let steps = vec![Pause(1500), keys("0"), Pause(22000), Speak, Pause(9000), keys("#")];
    call(&daemon, CALLER, steps, true).await;
    let trail = latest_trail(&daemon);
    let day = visited(&trail, "agent") && visited(&trail, "busy_message");
    let night = visited(&trail, "night_bell") && visited(&trail, "night_message");
    assert!(day || night, "busy by day, no night bell after hours: {trail:#?}");
    let agent = daemon.login_demo("agent1").await;
    let tickets = ivr_tickets(&agent).await;
    assert_eq!(tickets.len(), 1, "no caller is lost: {tickets:#?}");
    assert_eq!(tickets[0].kind, TicketKind::Complaint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_presses_0_reaches_a_logged_in_agent() {
    let daemon = ivr_daemon();
    // After hours 0 rings the night bell: make agent1 its desk, so this holds at any hour.
    let admin = daemon.login_demo("admin").await;
    let (_, yaml) = admin.get_flow("main", None).await.expect("flow");
    admin.save_flow(&yaml.replace("users: []", "users: [agent1]")).await.expect("night bell set");
    let desk = daemon.login_demo("agent1").await;
    desk.agent_login(true).await.expect("agent1 logs in to the queues, ready");
    let (target, steps) = (daemon.sip_addr, vec![Pause(1500), keys("0"), Pause(12000)]);
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "12365", CALLER, &steps, false));
    let Event::CallOffered { call, caller: from, callee, .. } = rexian_tests::next_call_event(&desk).await else {
        panic!("expected an offer")
    };
    assert_eq!((from.as_str(), callee.as_str()), (CALLER, "12365"));
    desk.answer_call(call).await.expect("answer");
    assert_eq!(rexian_tests::next_call_event(&desk).await, Event::CallConnected { call });
    caller.await.expect("caller");
    let Event::CallEnded { cause, .. } = rexian_tests::next_call_event(&desk).await else { panic!("expected the end") };
    assert_eq!(cause, "caller_hangup");
    let trail = latest_trail(&daemon);
    assert!(visited(&trail, "agent") || visited(&trail, "night_bell"), "{trail:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consultation_reads_an_article_and_takes_a_fax_request_and_a_survey_is_counted() {
    let daemon = ivr_daemon();
    let admin = daemon.login_demo("admin").await;
    // One article for the IVR, so its menu goes straight to the article list.
    let article = ArticleInput {
        id: None,
        kind: ArticleKind::Address,
        title: "办公地址".into(),
        body: "市场监管局位于人民路一号。".into(),
        published: true,
        for_ivr: true,
    };
    let Response::Article { article } = admin.request(Request::SaveArticle { article }).await.expect("article") else { panic!() };
    let supervisor = daemon.login_demo("supervisor").await;
    let q = |t: &str, scale| SurveyQuestion { text: t.into(), scale };
    let survey = Survey {
        id: None,
        title: "热线服务满意度调查".into(),
        active: true,
        questions: vec![q("您对本次服务满意吗", SurveyScale::OneToFive), q("您的问题解决了吗", SurveyScale::YesNo)],
    };
    let survey = supervisor.save_survey(survey).await.expect("survey");

    // 4: the kinds menu lists the kinds that have IVR articles in the knowledge base's order;
    // within a kind, articles go by title (办公地址 before the demo's 来信来访地址…).
    let mut kinds: Vec<ArticleKind> = ArticleKind::ALL.to_vec();
    kinds.retain(|kind| *kind == ArticleKind::Address || switchd::demo::ivr_article_kinds().contains(kind));
    let kind_key = kinds.iter().position(|k| *k == ArticleKind::Address).expect("address kind") + 1;
    let steps = vec![
        Pause(1500), keys("4"), Pause(3000), keys(&kind_key.to_string()), Pause(3000), keys("1"),
        Pause(4000), keys("2"), Pause(3000), keys("01066668888#"), Pause(6000), keys("#"), Pause(3000),
    ];
    call(&daemon, CALLER, steps, true).await;
    let trail = latest_trail(&daemon);
    assert!(trail.iter().any(|v| v["note"] == format!("article {}", article.id)), "{trail:#?}");
    let agent = daemon.login_demo("agent1").await;
    let requests = agent.callback_requests(false).await.expect("callback list");
    let fax = requests.iter().find(|r| r.reason == "fax").expect("the fax request");
    assert_eq!((fax.phone.as_str(), fax.address.as_deref(), fax.article_id), (CALLER, Some("01066668888"), Some(article.id)));
    agent.finish_callback_request(fax.id).await.expect("done");
    assert!(!agent.callback_requests(false).await.expect("list").iter().any(|r| r.id == fax.id));

    call(&daemon, CALLER, vec![Pause(1500), keys("5"), Pause(6000), keys("4"), Pause(6000), keys("1")], true).await;
    let results = supervisor.survey_results(survey.id.expect("id")).await.expect("results");
    assert_eq!(results.respondents, 1);
    assert_eq!(results.counts, vec![vec![0, 0, 0, 1, 0], vec![1, 0]]);
    let refused = agent.save_survey(results.survey.clone()).await.expect_err("agents do not manage surveys");
    assert!(matches!(refused, rexian_shared::client::ClientError::Desk(ref e) if e.code == ErrorCode::Forbidden), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_edits_the_flow_and_the_next_call_follows_it() {
    let daemon = ivr_daemon();
    let admin = daemon.login_demo("admin").await;
    let (version, yaml) = admin.get_flow("main", None).await.expect("the shipped flow");
    assert_eq!(version, 1);

    // A dangling key is refused, naming the node.
    let broken = yaml.replace("\"5\": survey", "\"5\": nowhere");
    let e = admin.save_flow(&broken).await.expect_err("dangling");
    let rexian_shared::client::ClientError::Desk(e) = e else { panic!("{e:?}") };
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidField, Some("yaml")));
    assert!(e.message.contains("greeting") && e.message.contains("nowhere"), "{}", e.message);
    let agent = daemon.login_demo("agent1").await;
    assert!(agent.list_flows().await.is_err(), "agents do not edit flows");

    // A new version whose greeting first says a notice: the next call hears it.
    let edited = yaml.replace("    open: greeting\n", "    open: notice\n").replace(
        "  greeting:\n",
        "  notice:\n    type: play\n    prompt: 今天系统维护，请谅解。\n    next: greeting\n\n  greeting:\n",
    );
    let saved = admin.save_flow(&edited).await.expect("saved");
    assert_eq!((saved.name.as_str(), saved.version), ("main", 2));
    let steps = vec![Pause(1000), keys("5"), Pause(4000)];
    call(&daemon, CALLER, steps, false).await;
    let trail = latest_trail(&daemon);
    let opened = note_at(&trail, "hours") == "open";
    assert_eq!(visited(&trail, "notice"), opened, "the day branch plays the notice: {trail:#?}");

    // The CLI round trip: export, validate, import as version 3.
    let out = daemon.cli(&["ivr", "export", "main"]);
    assert!(out.status.success());
    let file = daemon.data_dir.join("main.yaml");
    std::fs::write(&file, &out.stdout).expect("write");
    let path = file.display().to_string();
    assert!(daemon.cli(&["ivr", "validate", &path]).status.success());
    let imported = daemon.cli(&["ivr", "import", &path]);
    assert!(String::from_utf8_lossy(&imported.stdout).contains("version 3"), "{imported:?}");
    assert_eq!(admin.list_flows().await.expect("flows")[0].version, 3);

    // A recording replaces the greeting; a file that is not a WAV is refused.
    let wav = std::fs::read(daemon.data_dir.join("cache").join("tts").read_dir().expect("cache").flatten().next().expect("a rendered prompt").path()).expect("wav");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    admin.set_prompt_audio("ivr-main-greeting", b64(&wav)).await.expect("installed");
    assert!(daemon.data_dir.join("prompts").join("ivr-main-greeting.wav").is_file());
    let bad = admin.set_prompt_audio("ivr-main-greeting", b64(b"not a wav")).await.expect_err("refused");
    assert!(matches!(bad, rexian_shared::client::ClientError::Desk(ref e) if e.field.as_deref() == Some("wav_base64")), "{bad:?}");
    let bad = admin.set_prompt_audio("../etc/passwd", b64(&wav)).await.expect_err("refused");
    assert!(matches!(bad, rexian_shared::client::ClientError::Desk(ref e) if e.field.as_deref() == Some("name")), "{bad:?}");
}

/// A demo daemon whose IVR judges business hours at `at` (the rehearsal clock).
fn daemon_at(dir: &std::path::Path, at: &str) -> Daemon {
    let daemon = Daemon::start_with_config(dir, &format!("[ivr]\nsimulate_time = \"{at}\"\n"), &["--demo"]);
    wait_for_log(&daemon, "IVR: prompts rendered");
    daemon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_callers_hear_the_night_flow_and_land_on_the_callback_list() {
    // Sunday 6 December 2026, 22:00: closed. Monday 30 November, 10:00: open.
    let night_dir = tempfile::tempdir().expect("tmp");
    let night = daemon_at(night_dir.path(), "2026-12-06T22:00:00");
    call(&night, CALLER, vec![Pause(6000)], false).await;
    let trail = latest_trail(&night);
    assert_eq!(note_at(&trail, "hours"), "closed");
    assert!(visited(&trail, "night"), "{trail:#?}");
    let agent = night.login_demo("agent1").await;
    let requests = agent.callback_requests(false).await.expect("callback list");
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!((requests[0].phone.as_str(), requests[0].reason.as_str()), (CALLER, "after_hours"));

    let day_dir = tempfile::tempdir().expect("tmp");
    let day = daemon_at(day_dir.path(), "2026-11-30T10:00:00");
    call(&day, CALLER, vec![Pause(4000)], false).await;
    assert_eq!(note_at(&latest_trail(&day), "hours"), "open");
    let agent = day.login_demo("agent1").await;
    assert!(agent.callback_requests(true).await.expect("callback list").is_empty(), "day callers are not logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_hands_the_caller_to_the_satisfaction_flow_and_the_rating_is_kept() {
    let daemon = ivr_daemon();
    let desk = daemon.login_demo("agent1").await;
    let target = daemon.sip_addr;
    // The caller waits for the agent, then rates 2 (满意) when asked, and hears the thanks.
    let steps = vec![Pause(9000), keys("2")];
    let caller = tokio::task::spawn_blocking(move || sipp_caller(target, "8001", CALLER, &steps, true));
    let Event::CallOffered { call, record, .. } = rexian_tests::next_call_event(&desk).await else { panic!("expected an offer") };
    let record = record.expect("the offer names the call record");
    desk.answer_call(call).await.expect("answer");
    assert_eq!(rexian_tests::next_call_event(&desk).await, Event::CallConnected { call });
    // The agent registers the caller's matter on this call, then hands the caller over.
    let new = NewTicket {
        call_id: Some(record.to_string()),
        ..NewTicket::phone(TicketKind::Consultation, PhoneNumber::parse(CALLER).ok(), "咨询计量器具检定", "已当场答复")
    };
    let ticket = desk.create_ticket(new).await.expect("ticket");
    let refused = desk.transfer_to_flow(call, "no-such-flow").await.expect_err("unknown flow");
    assert_eq!(refused.code(), Some(ErrorCode::InvalidField));
    desk.transfer_to_flow(call, "satisfaction").await.expect("handed over");
    let Event::CallEnded { cause, .. } = rexian_tests::next_call_event(&desk).await else { panic!("expected the end for the desk") };
    assert_eq!(cause, "transferred");
    caller.await.expect("caller");

    let out = daemon.cli(&["call", "show", &record.to_string(), "--json"]);
    let cdr: serde_json::Value = serde_json::from_slice(&out.stdout).expect("call json");
    assert_eq!(cdr["satisfaction"], "satisfied", "{cdr:#}");
    let ticket = desk.get_ticket(&ticket.no).await.expect("ticket");
    let rating = ticket.history.iter().find(|h| h.action == "caller_rating").expect("the rating is on the ticket");
    assert!(rating.note.contains("满意"), "{}", rating.note);
}
