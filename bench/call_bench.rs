//! call-bench: SIPp load against the real release switchd on loopback, printing figures.
//!
//! ```sh
//! cargo run --release -p rexian-bench --bin call-bench
//! # smaller: BENCH_SETUPS=600 BENCH_RATE=100 BENCH_CONCURRENT=100 cargo run --release -p rexian-bench --bin call-bench
//! ```
//!
//! 1. Call setups per second: SIPp places `BENCH_SETUPS` calls at `BENCH_RATE`/s to the echo
//!    test (INVITE, 200, ACK, BYE after 100 ms); how many succeed, at what rate.
//! 2. Concurrent calls with media: `BENCH_CONCURRENT` calls held 35.5 s each, SIPp playing G.711
//!    A-law into every one; first to the echo test (media both ways), then to prompt-then-record
//!    (every call recorded to disk). For each: switchd's CPU seconds per call-minute, memory per
//!    call, and RTP packets lost inside switchd (received but not consumed or sent back).
//!
//! 3. Trunk to trunk: 9198 forwarded through a trunk to SIPp's echoing UAS, media on both
//!    legs, with and without stereo recording.
//! 4. Trunk to desk: `BENCH_DESK_CALLS` calls to agent1's desk, answered by this program over
//!    QUIC, Opus both ways (transcoded from and to G.711 in switchd).
//!
//! SIPp and switchd share the machine's cores; the figures include that contention. "Kernel
//! UDP drops" count the whole machine: SIPp does not read the media sent back to it, so its
//! socket overflows — compare "RTP in" with what SIPp sent (1,180 packets per call) for loss
//! inside switchd.

mod common;

use anyhow::{bail, Context, Result};
use common::{cpu_and_rss, env_u32, metric, stat_count};
use rexian_tests::{sipp_command, tail, Daemon};
use std::time::{Duration, Instant};

/// UDP receive-buffer drops on this machine so far (kernel-wide, /proc/net/snmp).
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else { return 0 };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn setups(daemon: &Daemon, calls: u32, rate: u32) -> Result<()> {
    let (mut cmd, _dir) = sipp_command("../../bench/sipp/setup.xml", daemon.sip_addr, "9196", calls);
    cmd.args(["-r", &rate.to_string(), "-l", &(rate * 2).to_string()]);
    let started = Instant::now();
    let out = cmd.output().context("run sipp (Debian package sip-tester)")?;
    let elapsed = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let failed = stat_count(&text, "Failed call");
    let ok = stat_count(&text, "Successful call");
    println!(
        "call setups: {ok} of {calls} succeeded, {failed} failed, at {rate}/s offered: {:.0} calls/s completed over {elapsed:.1} s",
        f64::from(ok) / elapsed
    );
    if !out.status.success() && ok == 0 {
        bail!("sipp failed:\n{}\n{}", tail(&out.stdout), tail(&out.stderr));
    }
    Ok(())
}

/// How long each call of `bench/sipp/media.xml` talks: the capture (7.1 s) five times.
const HOLD_SECS: f64 = 35.5;

fn held_calls(daemon: &Daemon, label: &str, number: &str, concurrent: u32) -> Result<()> {
    let pid = daemon.pid().context("switchd pid")?;
    let (in0, out0) = (metric(daemon, "rexian_rtp_packets_in_total")?, metric(daemon, "rexian_rtp_packets_out_total")?);
    let drops0 = udp_rcvbuf_errors();
    let (cpu0, rss0) = cpu_and_rss(pid)?;
    let (mut cmd, _dir) = sipp_command("../../bench/sipp/media.xml", daemon.sip_addr, number, concurrent);
    cmd.args(["-r", "100", "-l", &concurrent.to_string()]);
    let started = Instant::now();
    let mut child = cmd.stdout(std::process::Stdio::null()).spawn().context("run sipp")?;
    // Sample memory while every call is up (after ramp-up at 100 calls/s).
    std::thread::sleep(Duration::from_secs(u64::from(concurrent / 100) + 8));
    let active = metric(daemon, "rexian_calls_active")?;
    let (_, rss_peak) = cpu_and_rss(pid)?;
    if number != "9198" {
        match echo_delay(daemon) {
            Ok((p50, p99, max)) => println!("echo path delay under this load: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms"),
            Err(e) => println!("echo path delay under this load: not measured ({e:#})"),
        }
    }
    let status = child.wait()?;
    let elapsed = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let (cpu1, _) = cpu_and_rss(pid)?;
    let (in1, out1) = (metric(daemon, "rexian_rtp_packets_in_total")?, metric(daemon, "rexian_rtp_packets_out_total")?);
    let call_minutes = f64::from(concurrent) * HOLD_SECS / 60.0;
    let received = in1 - in0;
    let sent = out1 - out0;
    println!(
        "{label}: {concurrent} calls × {HOLD_SECS} s ({active} up at once when sampled; sipp {status}) in {elapsed:.0} s: \
         {:.3} CPU s per call-minute, {:.0} KiB per call, RTP in {received} / out {sent}, kernel UDP drops {}",
        (cpu1 - cpu0) / call_minutes,
        (rss_peak.saturating_sub(rss0)) as f64 / 1024.0 / active.max(1.0),
        udp_rcvbuf_errors() - drops0
    );
    Ok(())
}

/// The delay switchd adds on the echo test's forwarding path: this program places a call to
/// 9196 over its own SIP socket, sends 250 RTP packets (20 ms apart) with a sequence number
/// in the payload and times each one's echo. Loopback transit is microseconds, so the figure
/// is switchd's (receive, re-stamp, send) plus scheduling. Returns (p50, p99, max) in ms.
fn echo_delay(daemon: &Daemon) -> Result<(f64, f64, f64)> {
    use std::net::UdpSocket;
    let sip = UdpSocket::bind("127.0.0.1:0")?;
    let rtp = UdpSocket::bind("127.0.0.1:0")?;
    sip.set_read_timeout(Some(Duration::from_secs(5)))?;
    rtp.set_read_timeout(Some(Duration::from_millis(200)))?;
    let (local, media, target) = (sip.local_addr()?, rtp.local_addr()?, daemon.sip_addr);
    let sdp = format!(
        "v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n",
        media.port()
    );
    let head = |method: &str, cseq: u32, to_tag: &str, branch: &str| {
        format!(
            "{method} sip:9196@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             From: <sip:bench@{local}>;tag=bench\r\nTo: <sip:9196@{target}>{to_tag}\r\nCall-ID: delay@bench\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:bench@{local}>\r\n"
        )
    };
    let invite = format!("{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", head("INVITE", 1, "", "inv"), sdp.len());
    sip.send_to(invite.as_bytes(), target)?;
    let to_tag = common::await_invite_ok(&sip)?;
    let mut buf = vec![0u8; 65536];
    sip.send_to(format!("{}Content-Length: 0\r\n\r\n", head("ACK", 1, &to_tag, "ack")).as_bytes(), target)?;
    // The echo test beeps for 200 ms first; the RTP port comes from where it sends.
    rtp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let (_, switchd_rtp) = rtp.recv_from(&mut buf).context("waiting for the echo test's first packet")?;
    rtp.set_read_timeout(Some(Duration::from_millis(200)))?;
    std::thread::sleep(Duration::from_millis(300));
    while rtp.recv(&mut buf).is_ok() {}
    rtp.set_read_timeout(Some(Duration::from_millis(5)))?;
    let mut sent: Vec<Instant> = Vec::new();
    let mut delays = Vec::new();
    let start = Instant::now();
    for seq in 0..250u16 {
        let mut packet = vec![0x80, 8];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        packet.extend_from_slice(&0x0bad_cafe_u32.to_be_bytes());
        let mut payload = vec![0xd5u8; 160];
        payload[..2].copy_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&payload);
        sent.push(Instant::now());
        rtp.send_to(&packet, switchd_rtp)?;
        let next = start + Duration::from_millis(20 * (u64::from(seq) + 1));
        while Instant::now() < next {
            if let Ok(n) = rtp.recv(&mut buf) {
                if n >= 14 {
                    let echoed = usize::from(u16::from_be_bytes([buf[12], buf[13]]));
                    if let Some(t) = sent.get(echoed) {
                        delays.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                }
            }
        }
    }
    sip.send_to(format!("{}Content-Length: 0\r\n\r\n", head("BYE", 2, &to_tag, "bye")).as_bytes(), target)?;
    if delays.is_empty() {
        bail!("no echo came back");
    }
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
    Ok((at(0.5), at(0.99), delays[delays.len() - 1]))
}

/// A daemon whose 9198 forwards every call through a trunk to SIPp's built-in UAS, which
/// echoes the media: a trunk-to-trunk call with media on both legs. Returns the daemon (with
/// its data directory) and the SIPp process to stop afterwards.
fn forwarding_daemon(record: bool) -> Result<(Daemon, tempfile::TempDir, std::process::Child)> {
    let port = rexian_tests::free_udp_port();
    let uas = std::process::Command::new("sipp")
        .args(["-sn", "uas", "-rtp_echo", "-nostdin", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
        .args(["-p", &port.to_string(), "-mp", &rexian_tests::free_media_port().to_string()])
        .args(["-cp", &rexian_tests::free_udp_port().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("start the SIPp UAS")?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        "[telephony]\nrecord_calls = {record}\n[[telephony.trunks]]\nname = \"far\"\naddresses = [\"127.0.0.1\"]\n\
         proxy = \"127.0.0.1:{port}\"\n\n[[telephony.routes]]\nnumber = \"9198\"\napp = \"forward\"\nto = \"5555\"\n"
    );
    let daemon = Daemon::start_with_config(dir.path(), &config, &[]);
    Ok((daemon, dir, uas))
}

/// Trunk-to-desk calls with Opus: SIPp places `calls` calls to 8001 (agent1's desk) with
/// A-law audio; this program, logged in as agent1 over QUIC, answers each and talks back with
/// a 48 kHz Opus stream per call, reading what switchd sends. Prints switchd's CPU per
/// call-minute and memory per call, and the frames exchanged.
fn desk_calls(daemon: &Daemon, calls: u32) -> Result<()> {
    use rexian_shared::audio::{AudioFrame, OpusEncoderVoip, TIMESTAMP_TICKS_PER_FRAME};
    use rexian_shared::Event;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let pid = daemon.pid().context("switchd pid")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let desk = Arc::new(runtime.block_on(daemon.login_demo("agent1")));
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    {
        let (desk, received) = (desk.clone(), received.clone());
        runtime.spawn(async move {
            while desk.recv_audio().await.is_ok() {
                received.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    {
        let (desk, sent, answered) = (desk.clone(), sent.clone(), answered.clone());
        runtime.spawn(async move {
            // One frame of a 1 kHz tone, encoded once: the client's own CPU goes to the network,
            // not to encoding hundreds of streams (switchd decodes every frame regardless).
            let Ok(mut encoder) = OpusEncoderVoip::new(48_000) else { return };
            let tone: Vec<i16> = (0..960).map(|i| ((f64::from(i) * std::f64::consts::TAU / 48.0).sin() * 8000.0) as i16).collect();
            let Ok(payload) = encoder.encode(&tone) else { return };
            while let Some(event) = desk.next_event().await {
                let Event::CallOffered { call, .. } = event else { continue };
                let (desk, sent, answered, payload) = (desk.clone(), sent.clone(), answered.clone(), payload.clone());
                tokio::spawn(async move {
                    if desk.answer_call(call).await.is_err() {
                        return;
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                    let mut tick = tokio::time::interval(Duration::from_millis(20));
                    for n in 0u32.. {
                        tick.tick().await;
                        let frame = AudioFrame { call, seq: n as u16, timestamp: n.wrapping_mul(TIMESTAMP_TICKS_PER_FRAME), payload: payload.clone() };
                        if desk.send_audio(&frame).is_err() {
                            return;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
    }
    let (cpu0, rss0) = cpu_and_rss(pid)?;
    let (mut cmd, _dir) = sipp_command("../../bench/sipp/media.xml", daemon.sip_addr, "8001", calls);
    cmd.args(["-r", "50", "-l", &calls.to_string()]);
    let started = Instant::now();
    let mut child = cmd.stdout(std::process::Stdio::null()).spawn().context("run sipp")?;
    std::thread::sleep(Duration::from_secs(u64::from(calls / 50) + 8));
    let active = metric(daemon, "rexian_calls_active")?;
    let (_, rss_peak) = cpu_and_rss(pid)?;
    let status = child.wait()?;
    std::thread::sleep(Duration::from_secs(2));
    let (cpu1, _) = cpu_and_rss(pid)?;
    let call_minutes = f64::from(calls) * HOLD_SECS / 60.0;
    println!(
        "trunk to desk (G.711 <-> Opus): {calls} calls × {HOLD_SECS} s ({} answered, {active} up when sampled; sipp {status}) in {:.0} s: \
         {:.3} CPU s per call-minute, {:.0} KiB per call, Opus frames to the desk {} / from the desk {}",
        answered.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        (cpu1 - cpu0) / call_minutes,
        (rss_peak.saturating_sub(rss0)) as f64 / 1024.0 / active.max(1.0),
        received.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
    );
    runtime.shutdown_background();
    Ok(())
}

fn main() -> Result<()> {
    let setup_calls = env_u32("BENCH_SETUPS", 3000)?;
    let rate = env_u32("BENCH_RATE", 300)?;
    let concurrent = env_u32("BENCH_CONCURRENT", 500)?;
    let daemon = Daemon::start_demo();
    println!("switchd {} on {} (release build)", daemon.pid().unwrap_or(0), daemon.sip_addr);
    let (p50, p99, max) = echo_delay(&daemon)?;
    println!("echo path delay, idle: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms (250 packets)");
    setups(&daemon, setup_calls, rate)?;
    held_calls(&daemon, "echo (media both ways)", "9196", concurrent)?;
    held_calls(&daemon, "prompt then record (recorded)", "9197", concurrent)?;
    desk_calls(&daemon, env_u32("BENCH_DESK_CALLS", 200)?)?;
    drop(daemon);
    // SIPp's echoing UAS handles every call's media on one socket and thread: it saturates
    // long before switchd, so these phases run fewer calls.
    let t2t = env_u32("BENCH_T2T_CALLS", 300)?;
    for record in [false, true] {
        let (daemon, _dir, mut uas) = forwarding_daemon(record)?;
        let label = if record { "trunk to trunk, stereo recorded" } else { "trunk to trunk, not recorded" };
        let result = held_calls(&daemon, label, "9198", t2t);
        let _ = uas.kill();
        let _ = uas.wait();
        result?;
    }
    Ok(())
}
