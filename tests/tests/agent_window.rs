//! The real `agent-desktop` binary in a real X display (Xvfb) with a user-mode PulseAudio as
//! the headset, driven as an agent drives it during a call: by the keyboard (F-keys, typing,
//! Ctrl+S), through `xdotool`'s synthetic X input. A SIPp caller goes through the 12365 IVR's
//! 0 into the queue. What the window shows is read from its log (every call, screen pop and
//! saved ticket is logged at info) and photographed into `target/screenshots/`.

use rexian_shared::*;
use rexian_tests::{sipp_caller, CallerStep, Daemon, DesktopWindow, VirtualHeadset, Xvfb};
use std::path::Path;
use std::time::Duration;

/// The caller's number; an earlier ticket of theirs must pop up.
const CALLER: &str = "13912345678";

/// A pcap of RTP packets carrying an A-law sine at `freq` for `seconds` (SIPp's
/// `play_pcap_audio` sends it as the caller's voice).
fn tone_pcap(path: &Path, freq: f64, seconds: u32) {
    let mut pcap: Vec<u8> = Vec::new();
    // Global header: magic, v2.4, UTC, accuracy, snaplen, Ethernet.
    pcap.extend(0xa1b2_c3d4u32.to_le_bytes());
    pcap.extend(2u16.to_le_bytes());
    pcap.extend(4u16.to_le_bytes());
    pcap.extend([0u8; 8]);
    pcap.extend(65_535u32.to_le_bytes());
    pcap.extend(1u32.to_le_bytes());
    let tone = rexian_tests::tone_samples(freq, seconds);
    for (packet, samples) in (0u32..).zip(tone.chunks(160)) {
        let mut payload = Vec::with_capacity(160);
        switchd::media::g711::encode_alaw(samples, &mut payload);
        let mut rtp = vec![0x80, 8];
        rtp.extend((packet as u16).to_be_bytes());
        rtp.extend((packet * 160).to_be_bytes());
        rtp.extend(0x1234_5678u32.to_be_bytes());
        rtp.extend(payload);
        let udp_len = 8 + rtp.len() as u16;
        let ip_len = 20 + udp_len;
        let mut frame = vec![0u8; 12];
        frame.extend([0x08, 0x00]);
        frame.extend([0x45, 0, (ip_len >> 8) as u8, ip_len as u8, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend(6000u16.to_be_bytes());
        frame.extend(6002u16.to_be_bytes());
        frame.extend(udp_len.to_be_bytes());
        frame.extend([0, 0]);
        frame.extend(rtp);
        let at_us = packet * 20_000;
        pcap.extend((at_us / 1_000_000).to_le_bytes());
        pcap.extend((at_us % 1_000_000).to_le_bytes());
        pcap.extend((frame.len() as u32).to_le_bytes());
        pcap.extend((frame.len() as u32).to_le_bytes());
        pcap.extend(frame);
    }
    std::fs::write(path, pcap).expect("write pcap");
}

#[test]
fn a_queued_caller_is_answered_from_the_real_window_with_the_headset_and_the_ticket_taken_is_linked() {
    // By day (the IVR's night menu has no 0), every call recorded.
    let data = tempfile::tempdir().expect("data dir");
    let config = "[telephony]\nrecord_calls = true\n\n[ivr]\nsimulate_time = \"2026-11-30T10:00:00\"\n\n[[acd.queues]]\nname = \"hotline\"\n";
    let daemon = Daemon::start_with_config(data.path(), config, &["--demo"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The caller rang before: that ticket must pop up when they call again.
    let earlier = rt.block_on(async {
        let desk = daemon.login_demo("agent2").await;
        let t = NewTicket {
            kind: TicketKind::Complaint,
            channel: Channel::Phone,
            caller: CallerInfo { name: Some("刘女士".into()), phone: Some(PhoneNumber::parse(CALLER).expect("phone")), ..CallerInfo::default() },
            subject: None,
            category_code: None,
            summary: "小区电梯多次停运".into(),
            content: "来电人反映所住小区电梯一周内停运三次。".into(),
            anonymous: false,
            confidential: false,
            consent_to_contact: true,
            call_id: None,
        };
        desk.create_ticket(t).await.expect("the earlier ticket").no
    });

    // …and called once before, hanging up in the greeting.
    sipp_caller(daemon.sip_addr, "12365", CALLER, &[CallerStep::Pause(1000)], false);

    let headset = VirtualHeadset::start();
    let x = Xvfb::start();
    let window = DesktopWindow::start(&daemon, &x, "agent1");
    window.screenshot("workstation-idle");
    // F3: sign in to the queues, ready.
    window.key("F3");
    window.wait_log("agent state && state=ready");

    // The caller keys 0 in the IVR, waits in the queue, then talks (440 Hz) until the agent hangs up.
    let scratch = tempfile::tempdir().expect("tmp");
    let pcap = scratch.path().join("tone440.pcap");
    tone_pcap(&pcap, 440.0, 60);
    let steps = [CallerStep::Pause(1500), CallerStep::Keys("0".into()), CallerStep::PlayPcap(pcap.display().to_string())];
    let target = daemon.sip_addr;
    let caller = std::thread::spawn(move || sipp_caller(target, "12365", CALLER, &steps, true));

    window.wait_log(&format!("call offered && {CALLER}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !window.wants_attention() {
        assert!(std::time::Instant::now() < deadline, "the ringing window asks for attention (urgency hint)");
        std::thread::sleep(Duration::from_millis(200));
    }
    let pop = window.wait_log("screen pop");
    assert!(pop.contains(&earlier.to_string()), "the screen pop lists the caller's earlier ticket {earlier}: {pop}");
    let calls: Vec<serde_json::Value> = serde_json::from_slice(&daemon.cli(&["call", "list", "--json"]).stdout).expect("call list");
    let first_call = calls.iter().find(|c| c["caller"] == CALLER && c["ended_at"].is_string()).map(|c| c["id"].to_string()).expect("the first call's record");
    assert!(pop.contains(&format!("earlier_calls=[{first_call}]")), "the screen pop lists the caller's earlier call {first_call} (not this one): {pop}");
    window.key("F2");
    window.wait_log("call connected");
    let answered = headset.heard().len();

    // The cursor is in the summary already: the agent types while the caller talks, then saves.
    window.type_text("电梯再次停运，要求尽快维修");
    window.screenshot("workstation-during-a-call");
    window.key("ctrl+s");
    // Once in a few runs on a loaded machine the window missed the first Ctrl+S (no shortcut
    // logged at all); an agent presses it again, and so does the test, once.
    if window.logged_within("keyboard shortcut && Save", Duration::from_secs(10)).is_none() {
        window.key("ctrl+s");
    }
    let saved = window.wait_log("ticket saved");
    window.screenshot("intake-saved");
    std::thread::sleep(Duration::from_secs(4));
    window.key("F4");
    window.wait_log("call ended");
    caller.join().expect("the caller heard the agent hang up");
    window.wait_log("agent state && state=wrap_up");
    window.screenshot("workstation-wrap-up");

    // The caller's 440 Hz reached the headset (48 kHz, decimated to 8 kHz).
    let heard: Vec<i16> = headset.heard()[answered..].iter().step_by(6).copied().collect();
    assert!(rexian_tests::tone_blocks(&heard, 440.0) >= 20, "the headset played the caller's tone in {} blocks of 100 ms", rexian_tests::tone_blocks(&heard, 440.0));

    // The ticket: what was typed, linked to the call, whose recording has the headset's
    // microphone (1 kHz) on its right channel — what the caller heard.
    let no = saved.split("ticket=").nth(1).and_then(|s| s.split_whitespace().next()).expect("the ticket number in the log");
    let no = TicketNo::parse(no).expect("a ticket number");
    let ticket = rt.block_on(async { daemon.login_demo("supervisor").await.get_ticket(&no).await.expect("the ticket") });
    assert_eq!(ticket.summary, "电梯再次停运，要求尽快维修", "typed through the keyboard");
    assert_eq!(ticket.caller.phone.as_ref().map(ToString::to_string).as_deref(), Some(CALLER));
    let calls = daemon.ended_calls();
    let cdr = calls.iter().find(|c| c["caller"] == CALLER && c["recordings"].as_array().is_some_and(|r| !r.is_empty())).expect("the call's record");
    assert_eq!(ticket.call_ids, vec![cdr["id"].to_string()], "the ticket is linked to the call");
    let path = cdr["recordings"].as_array().and_then(|r| r.iter().find(|r| r["kind"] == "call")).and_then(|r| r["path"].as_str()).expect("a call recording");
    let (_, samples) = switchd::media::wav::read_wav(daemon.data_dir.join(path)).expect("wav");
    let right: Vec<i16> = samples.chunks(2).map(|s| s[1]).collect();
    assert!(rexian_tests::tone_blocks(&right, 1000.0) >= 20, "the caller heard the agent's microphone in {} blocks of 100 ms", rexian_tests::tone_blocks(&right, 1000.0));

    // Ctrl+O opens the ticket just saved.
    window.key("ctrl+o");
    window.wait_log(&format!("ticket shown && {no}"));
    window.screenshot("ticket-detail");
    drop(window);

    // A department handler's window opens on the inbox (待签收).
    let handler = DesktopWindow::start(&daemon, &x, "quality");
    handler.wait_log("tickets listed");
    handler.screenshot("department-inbox");
}
