//! desktop-bench — the agent desktop as an agent's PC runs it (the real release binary on an
//! X display, a user-mode PulseAudio as the headset, the real switchd, SIPp as the carrier):
//!
//! 1. start-up time: from starting the process to its first drawn frame, the login screen
//!    (`BENCH_STARTS` runs, default 5);
//! 2. a call of `BENCH_CALL_SECS` (default 30) dialled from the window by the keyboard to an
//!    outside number, which SIPp answers and echoes: resident memory before and during the
//!    call, the desktop's CPU, and its frame times while the call runs (the window's own log);
//! 3. mouth-to-ear delay: the microphone says a 40 ms beep every 2 s; the time until the
//!    headset plays it back is headset → Opus → QUIC → switchd → G.711 → the SIP peer → back
//!    the same way. Half of it is the one-way delay (the echo itself adds nothing).
//!
//! Run: `cargo run --release -p rexian-bench --bin desktop-bench`. Needs what the tests need
//! (scripts/deps): Xvfb, xdotool, PulseAudio, SIPp.

mod common;

use anyhow::{bail, Context, Result};
use common::{cpu_and_rss, env_u32};
use rexian_tests::{free_media_port, free_udp_port, Daemon, DesktopWindow, VirtualHeadset, Xvfb};
use std::time::{Duration, Instant};

/// The beep: 40 ms of 1 kHz every 2 s, from 1 s on (48 kHz samples).
const PERIOD: u64 = 2 * 48_000;
const BEEP: u64 = 48_000 * 40 / 1000;

fn beep(n: u64) -> i16 {
    let phase = n.saturating_sub(48_000) % PERIOD;
    if n < 48_000 || phase >= BEEP {
        return 0;
    }
    (12_000.0 * (2.0 * std::f64::consts::PI * 1000.0 * phase as f64 / 48_000.0).sin()) as i16
}

fn main() -> Result<()> {
    let starts = env_u32("BENCH_STARTS", 5)?;
    let call_secs = env_u32("BENCH_CALL_SECS", 30)?;
    let carrier_port = free_udp_port();
    let mut carrier = std::process::Command::new("sipp")
        .args(["-sn", "uas", "-rtp_echo", "-nostdin", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
        .args(["-p", &carrier_port.to_string(), "-mp", &free_media_port().to_string(), "-cp", &free_udp_port().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("start SIPp as the carrier (sip-tester)")?;
    let dir = tempfile::tempdir()?;
    let config = format!("[telephony]\n[[telephony.trunks]]\nname = \"carrier\"\naddresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{carrier_port}\"\n");
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    let headset = VirtualHeadset::start_with_mic(beep);
    let x = Xvfb::start();

    println!("desktop-bench: release agent-desktop on Xvfb 1366×768 (Mesa llvmpipe), PulseAudio pipe headset");
    let mut startup = Vec::new();
    for _ in 0..starts {
        let t0 = Instant::now();
        let window = DesktopWindow::spawn(&daemon, &x, "agent1", None);
        window.wait_log("first frame");
        startup.push(t0.elapsed().as_secs_f64() * 1000.0);
        let rss = cpu_and_rss(window.pid())?.1;
        println!("  start-up to the login screen: {:.0} ms (resident {:.1} MiB)", t0.elapsed().as_secs_f64() * 1000.0, mib(rss));
    }
    startup.sort_by(f64::total_cmp);
    if let Some(median) = startup.get(startup.len() / 2) {
        println!("start-up to a usable login screen: median {median:.0} ms of {starts}");
    }

    let window = DesktopWindow::start(&daemon, &x, "agent1");
    std::thread::sleep(Duration::from_secs(3));
    let (cpu_idle0, rss_idle) = cpu_and_rss(window.pid())?;
    std::thread::sleep(Duration::from_secs(5));
    let cpu_idle = (cpu_and_rss(window.pid())?.0 - cpu_idle0) / 5.0;
    window.key("ctrl+d");
    window.type_text("01088886666");
    window.key("Return");
    window.wait_log("call connected");
    let from = headset.heard().len();
    let (cpu0, _) = cpu_and_rss(window.pid())?;
    let began = Instant::now();
    let mut rss_call = 0;
    while began.elapsed() < Duration::from_secs(call_secs.into()) {
        std::thread::sleep(Duration::from_secs(1));
        rss_call = rss_call.max(cpu_and_rss(window.pid())?.1);
    }
    let cpu_call = (cpu_and_rss(window.pid())?.0 - cpu0) / began.elapsed().as_secs_f64();
    window.key("F4");
    window.wait_log("call ended");

    println!("memory: {:.1} MiB resident signed in, {:.1} MiB at most during the call", mib(rss_idle), mib(rss_call));
    println!("CPU: {:.1} % of a core idle, {:.1} % during the call", cpu_idle * 100.0, cpu_call * 100.0);
    frame_times(&window);
    mouth_to_ear(&headset, from)?;
    let _ = carrier.kill();
    let _ = carrier.wait();
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

/// The window's "frame times" lines logged during the call.
fn frame_times(window: &DesktopWindow) {
    let log = window.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("frame times")).collect();
    let field = |l: &str, name: &str| l.split(&format!("{name}=")).nth(1).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse::<f64>().ok());
    let (mut frames, mut p50, mut p99, mut max) = (0.0, Vec::new(), 0.0f64, 0.0f64);
    for l in lines.iter().skip(1) {
        frames += field(l, "frames").unwrap_or(0.0);
        p50.extend(field(l, "p50_ms"));
        p99 = p99.max(field(l, "p99_ms").unwrap_or(0.0));
        max = max.max(field(l, "max_ms").unwrap_or(0.0));
    }
    p50.sort_by(f64::total_cmp);
    match p50.get(p50.len() / 2) {
        Some(m) => println!("frame time (CPU per frame, signed in and during the call): {frames:.0} frames, p50 {m:.1} ms, worst 5-s p99 {p99:.1} ms, max {max:.1} ms"),
        None => println!("frame time: the window logged no frame times"),
    }
}

/// Finds each beep where the headset played it back and times it against when it was said.
fn mouth_to_ear(headset: &VirtualHeadset, from: usize) -> Result<()> {
    let heard = headset.heard();
    let mut delays = Vec::new();
    let mut quiet = 0usize;
    for (i, s) in heard.iter().enumerate().skip(from) {
        if s.unsigned_abs() < 1500 {
            quiet += 1;
            continue;
        }
        // An onset after at least half a second of quiet: the beep said most recently before it.
        if quiet >= 24_000 {
            let played = headset.heard_at(i).context("arrival time")?;
            let said = (0..).map(|k| 48_000 + k * PERIOD).map_while(|n| headset.spoken_at(n).filter(|at| *at <= played)).last();
            if let Some(said) = said {
                delays.push((played - said).as_secs_f64() * 1000.0);
            }
        }
        quiet = 0;
    }
    if delays.is_empty() {
        bail!("no beep came back to the headset");
    }
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
    println!(
        "mouth to ear and back (headset → switchd → SIP peer echo → headset): {} beeps, p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        delays.len(),
        at(0.5),
        at(0.95),
        delays[delays.len() - 1]
    );
    println!("one-way mouth-to-ear (half the round trip): p50 {:.0} ms, p95 {:.0} ms (ITU-T G.114 comfort limit 150 ms)", at(0.5) / 2.0, at(0.95) / 2.0);
    Ok(())
}
