//! The real `agent-desktop` binary in a real X display (Xvfb) with a user-mode PulseAudio as
//! the headset, driven as an agent drives it during a call: by the keyboard (F-keys, typing,
//! Ctrl+S), through `xdotool`'s synthetic X input. A SIPp caller goes through the 12365 IVR's
//! 0 into the queue. What the window shows is read from its log (every call, screen pop and
//! saved ticket is logged at info) and photographed into `target/screenshots/`.

use rexian_shared::*;
use rexian_tests::{screenshot_dir, sipp_caller, CallerStep, Daemon, VirtualHeadset, Xvfb, DEMO_PASSWORD};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The caller's number; an earlier ticket of theirs must pop up.
const CALLER: &str = "13912345678";

/// The agent-desktop window of one OS user (its own config and home), logged in at start.
struct AgentWindow {
    child: Child,
    display: String,
    log: PathBuf,
    _home: tempfile::TempDir,
}

impl AgentWindow {
    fn start(daemon: &Daemon, x: &Xvfb, user: &str) -> AgentWindow {
        let home = tempfile::tempdir().expect("home");
        let config = home.path().join(".config");
        let settings = agent_desktop::settings::Settings { server: daemon.desk_addr.to_string(), username: user.into(), ..Default::default() };
        settings.save(&config.join("rexian")).expect("settings");
        let log = home.path().join("agent-desktop.log");
        let child = Command::new(rexian_tests::workspace_bin("agent-desktop"))
            .env("DISPLAY", &x.display)
            .env_remove("WAYLAND_DISPLAY")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", &config)
            .env("LANG", "zh_CN.UTF-8")
            .env("REXIAN_PASSWORD", DEMO_PASSWORD)
            .env("RUST_LOG", "agent_desktop=info,warn")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("the agent-desktop binary");
        let w = AgentWindow { child, display: x.display.clone(), log, _home: home };
        w.wait_log("logged in");
        w
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 60 s) for a log line containing every one of `needles`; returns it.
    fn wait_log(&self, needles: &str) -> String {
        let parts: Vec<&str> = needles.split(" && ").collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.log_text().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "the window never logged {needles:?}; its log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("xdotool").args(args).env("DISPLAY", &self.display).output().expect("xdotool (scripts/deps installs it)");
        assert!(out.status.success(), "xdotool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The window's X id (xdotool matches the ASCII part of the title).
    fn window_id(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("xdotool").args(["search", "--name", "Rexian Agent"]).env("DISPLAY", &self.display).output().expect("xdotool");
            if let Some(id) = String::from_utf8_lossy(&out.stdout).lines().last() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no agent-desktop window appeared; its log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Gives the window the keyboard (there is no window manager to do it).
    fn focus(&self) {
        let id = self.window_id();
        self.xdotool(&["windowfocus", "--sync", &id]);
        self.xdotool(&["mousemove", "--window", &id, "640", "12"]);
    }

    /// Presses a key or a combination (`F2`, `ctrl+s`).
    fn key(&self, key: &str) {
        self.focus();
        self.xdotool(&["key", "--clearmodifiers", key]);
    }

    /// Types `text` (Chinese included) as a keyboard would. A keyboard with these characters on
    /// its keys is made first (xmodmap onto spare keycodes): xdotool would otherwise remap a
    /// key for each character and restore it before the window reads the press.
    fn type_text(&self, text: &str) {
        let keymap = Command::new("xmodmap").arg("-pke").env("DISPLAY", &self.display).output().expect("xmodmap (scripts/deps installs it)");
        let spare = String::from_utf8_lossy(&keymap.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("keycode").and_then(|r| r.trim().strip_suffix('=')).map(|n| n.trim().to_owned()))
            .collect::<Vec<_>>();
        let mut chars: Vec<char> = text.chars().filter(|c| !c.is_ascii()).collect();
        chars.sort_unstable();
        chars.dedup();
        assert!(spare.len() >= chars.len(), "{} spare keycodes for {} characters", spare.len(), chars.len());
        let mut xmodmap = Command::new("xmodmap");
        for (c, code) in chars.iter().zip(&spare) {
            xmodmap.arg("-e").arg(format!("keycode {code} = U{:04X}", u32::from(*c)));
        }
        assert!(xmodmap.env("DISPLAY", &self.display).status().expect("xmodmap").success(), "xmodmap");
        std::thread::sleep(Duration::from_millis(500));
        self.focus();
        self.xdotool(&["type", "--delay", "80", text]);
    }

    /// Photographs the window into `target/screenshots/NAME.png`, after letting it redraw.
    fn screenshot(&self, name: &str) -> PathBuf {
        std::thread::sleep(Duration::from_millis(1200));
        let path = screenshot_dir().join(format!("{name}.png"));
        let id = self.window_id();
        let out = Command::new("import")
            .args(["-display", &self.display, "-window", &id])
            .arg(&path)
            .output()
            .expect("import (Debian package imagemagick; scripts/deps installs it)");
        assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
        assert!(std::fs::metadata(&path).map(|m| m.len() > 10_000).unwrap_or(false), "a real picture of the window in {}", path.display());
        path
    }
}

impl Drop for AgentWindow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("agent-desktop's log:\n{}", self.log_text());
        }
    }
}

/// A pcap of RTP packets carrying an A-law sine at `freq` for `seconds` (SIPp's
/// `play_pcap_audio` sends it as the caller's voice).
fn tone_pcap(path: &Path, freq: f64, seconds: u32) {
    let mut pcap: Vec<u8> = Vec::new();
    // Global header: magic, v2.4, UTC, accuracy, snaplen, Ethernet.
    for v in [0xa1b2_c3d4u32] {
        pcap.extend(v.to_le_bytes());
    }
    pcap.extend(2u16.to_le_bytes());
    pcap.extend(4u16.to_le_bytes());
    pcap.extend([0u8; 8]);
    pcap.extend(65_535u32.to_le_bytes());
    pcap.extend(1u32.to_le_bytes());
    let mut n = 0u32;
    for packet in 0..seconds * 50 {
        let samples: Vec<i16> = (0..160)
            .map(|_| {
                n += 1;
                (8000.0 * (2.0 * std::f64::consts::PI * freq * f64::from(n) / 8000.0).sin()) as i16
            })
            .collect();
        let mut payload = Vec::with_capacity(160);
        switchd::media::g711::encode_alaw(&samples, &mut payload);
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

/// 100 ms blocks of 8 kHz `samples` that are mostly `freq`.
fn tone_blocks(samples: &[i16], freq: f64) -> usize {
    samples.chunks(800).filter(|b| b.len() == 800 && rexian_tests::tone_share(b, freq) > 0.5).count()
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

    let headset = VirtualHeadset::start();
    let x = Xvfb::start();
    let window = AgentWindow::start(&daemon, &x, "agent1");
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
    let pop = window.wait_log("screen pop");
    assert!(pop.contains(&earlier.to_string()), "the screen pop lists the caller's earlier ticket {earlier}: {pop}");
    window.key("F2");
    window.wait_log("call connected");
    let answered = headset.heard().len();

    // The cursor is in the summary already: the agent types while the caller talks, then saves.
    window.type_text("电梯再次停运，要求尽快维修");
    window.screenshot("workstation-during-a-call");
    window.key("ctrl+s");
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
    assert!(tone_blocks(&heard, 440.0) >= 20, "the headset played the caller's tone in {} blocks of 100 ms", tone_blocks(&heard, 440.0));

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
    assert!(tone_blocks(&right, 1000.0) >= 20, "the caller heard the agent's microphone in {} blocks of 100 ms", tone_blocks(&right, 1000.0));

    // Ctrl+O opens the ticket just saved.
    window.key("ctrl+o");
    window.wait_log(&format!("ticket shown && {no}"));
    window.screenshot("ticket-detail");
    drop(window);

    // A department handler's window opens on the inbox (待签收).
    let handler = AgentWindow::start(&daemon, &x, "quality");
    handler.wait_log("tickets listed");
    handler.screenshot("department-inbox");
}
