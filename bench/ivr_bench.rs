//! ivr-bench: how many concurrent callers the 12365 IVR serves without audio underruns.
//!
//! ```sh
//! cargo run --release -p rexian-bench --bin ivr-bench
//! # steps: BENCH_IVR_CALLERS=100,300,500 cargo run --release -p rexian-bench --bin ivr-bench
//! ```
//!
//! For each step of `BENCH_IVR_CALLERS` (default 500) a fresh release switchd with demo data
//! starts; once its log says `IVR: prompts rendered`, SIPp places that many calls to 12365 at
//! `BENCH_IVR_RATE`/s (default 50), each of which:
//!
//! 1. listens to the greeting for 6 s (the menu takes a key while it plays),
//! 2. keys 1 (director's mailbox) by SIP INFO,
//! 3. listens to the mailbox prompt and the beep, then talks (Debian's A-law capture) while
//!    switchd records it to WAV,
//! 4. keys # (the recording stops), hears the start of the "keep it?" question and hangs up
//!    — before any ticket is created: this measures prompts, digits and recording, not the
//!    case system.
//!
//! Alongside, `BENCH_IVR_PROBES` (default 4) callers of this program's own follow the same
//! script on raw UDP sockets, spread over the ramp, and time the arrival of every RTP packet
//! switchd sends them (prompts, the silence while a menu waits, the comfort silence while
//! recording): an **underrun** is a gap of more than 60 ms between two packets, which a phone's
//! jitter buffer of 60 ms cannot hide. switchd itself counts **late ticks**: media ticks
//! (20 ms) that fired 20 ms or more after their scheduled instant
//! (`rexian_media_tick_lateness_seconds`).
//!
//! Printed per step: callers in the IVR at once, calls completed and failed, switchd's CPU
//! seconds per call-minute, late ticks, the probes' gaps and underruns, digits recognised
//! (from the call records) against digits sent, and the recordings written with their lengths.

mod common;

use anyhow::{bail, Context, Result};
use common::{cpu_and_rss, env_u32, metric_in, metrics_text, stat_count};
use rexian_tests::{caller_scenario, free_media_port, free_udp_port, tail, CallerStep, Daemon};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The caller's script, in milliseconds after the answer.
const KEY_MENU_AT_MS: u64 = 6_000;
/// After the menu key: the mailbox prompt (11.0 s as espeak-ng renders it), the 400 ms beep and
/// a margin of about 2 s: a # that arrives before the recording starts is dropped with the
/// other keys pressed ahead of it, and the recording would then run until the caller hangs up.
const MAILBOX_WAIT_MS: u64 = 13_500;
/// Talking: the capture lasts 7.1 s; a little silence after it.
const TALK_MS: u64 = 8_000;
/// After #, before hanging up.
const AFTER_HASH_MS: u64 = 2_000;
/// The pause SIPp takes after each INFO (see `caller_scenario`).
const KEY_PAUSE_MS: u64 = 300;
/// An inter-arrival gap longer than this is an underrun.
const UNDERRUN_MS: f64 = 60.0;

fn key_hash_at_ms() -> u64 {
    KEY_MENU_AT_MS + KEY_PAUSE_MS + MAILBOX_WAIT_MS + TALK_MS
}

fn call_ms() -> u64 {
    key_hash_at_ms() + KEY_PAUSE_MS + AFTER_HASH_MS
}

fn main() -> Result<()> {
    let steps: Vec<u32> = std::env::var("BENCH_IVR_CALLERS")
        .unwrap_or_else(|_| "500".into())
        .split(',')
        .map(|v| v.trim().parse().with_context(|| format!("BENCH_IVR_CALLERS: {v:?} is not a number")))
        .collect::<Result<_>>()?;
    let rate = env_u32("BENCH_IVR_RATE", 50)?;
    let probes = env_u32("BENCH_IVR_PROBES", 4)?;
    for callers in steps {
        step(callers, rate, probes)?;
    }
    Ok(())
}

/// What one step measured.
#[derive(Default)]
struct Probe {
    gaps_ms: Vec<f64>,
    packets: u64,
    /// From our ACK to switchd's first RTP packet.
    first_packet_ms: Option<f64>,
    error: Option<String>,
}

fn step(callers: u32, rate: u32, probes: u32) -> Result<()> {
    let daemon = Daemon::start_demo();
    let pid = daemon.pid().context("switchd pid")?;
    wait_for_log(&daemon, "IVR: prompts rendered", Duration::from_secs(120))?;
    println!("--- {callers} IVR callers at {rate}/s (switchd {pid}, release build, prompts rendered)");
    let (cpu0, _) = cpu_and_rss(pid)?;
    let machine0 = machine_cpu();

    let dir = tempfile::tempdir()?;
    let scenario = dir.path().join("ivr-caller.xml");
    let steps = [
        CallerStep::Pause(KEY_MENU_AT_MS as u32),
        CallerStep::Keys("1".into()),
        CallerStep::Pause(MAILBOX_WAIT_MS as u32),
        CallerStep::Speak,
        CallerStep::Pause(TALK_MS as u32),
        CallerStep::Keys("#".into()),
        CallerStep::Pause(AFTER_HASH_MS as u32),
    ];
    std::fs::write(&scenario, caller_scenario("13800138000", &steps, false))?;
    let mut sipp = Command::new("sipp")
        .args(["-sf", &scenario.display().to_string(), "-s", "12365", "-m", &callers.to_string()])
        .args(["-r", &rate.to_string(), "-l", &callers.to_string(), "-timeout", "300s", "-nostdin"])
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-cp", &free_udp_port().to_string(), "-mp", &free_media_port().to_string()])
        .arg(daemon.sip_addr.to_string())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("sipp.err"))?)
        .spawn()
        .context("run sipp (Debian package sip-tester)")?;
    let started = Instant::now();
    let mut sipp_out = sipp.stdout.take().context("sipp stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut sipp_out, &mut text);
        text
    });

    // The probes start spread over the ramp, so that they run while the IVR is full.
    let ramp = Duration::from_secs_f64(f64::from(callers) / f64::from(rate.max(1)));
    let probe_threads: Vec<_> = (0..probes)
        .map(|i| {
            let delay = ramp.mul_f64((f64::from(i) + 0.5) / f64::from(probes.max(1)));
            let target = daemon.sip_addr;
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                probe_call(target, i).unwrap_or_else(|e| Probe { error: Some(format!("{e:#}")), ..Probe::default() })
            })
        })
        .collect();

    // The most calls up at once, sampled twice a second while SIPp runs.
    let mut peak = 0.0f64;
    let mut sipp_cpu = 0.0;
    let status = loop {
        if let Some(status) = sipp.try_wait()? {
            break status;
        }
        if let Ok((cpu, _)) = cpu_and_rss(sipp.id()) {
            sipp_cpu = cpu;
        }
        if let Ok(text) = metrics_text(&daemon) {
            peak = peak.max(metric_in(&text, "rexian_calls_active").unwrap_or(0.0));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let elapsed = started.elapsed().as_secs_f64();
    let screen = reader.join().unwrap_or_default();
    let results: Vec<Probe> = probe_threads.into_iter().map(|t| t.join().unwrap_or_default()).collect();
    // Let the last calls' records close.
    std::thread::sleep(Duration::from_secs(3));
    let (cpu1, _) = cpu_and_rss(pid)?;
    let machine1 = machine_cpu();
    let metrics = metrics_text(&daemon)?;

    let ok = stat_count(&screen, "Successful call");
    let failed = stat_count(&screen, "Failed call");
    println!("callers in the IVR at once: {peak} (calls active, sampled every 0.5 s; includes the probes)");
    println!("SIPp calls: {ok} completed, {failed} failed of {callers} in {elapsed:.0} s (sipp {status})");
    if ok == 0 {
        let err = std::fs::read_to_string(dir.path().join("sipp.err")).unwrap_or_default();
        bail!("no SIPp call completed:\n{}\n{}", tail(screen.as_bytes()), tail(err.as_bytes()));
    }
    let call_minutes = f64::from(ok + probes) * call_ms() as f64 / 60_000.0;
    println!(
        "switchd CPU: {:.1} s over the run, {:.3} CPU s per call-minute ({:.0} s calls)",
        cpu1 - cpu0,
        (cpu1 - cpu0) / call_minutes,
        call_ms() as f64 / 1000.0
    );
    let (busy, steal) = machine1.share_since(&machine0);
    let measured = started.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let all = busy * cores * measured;
    println!(
        "machine: {cores} cores {:.0} % busy over {measured:.0} s (steal {:.1} %): {all:.1} CPU s, of which switchd {:.1}, SIPp {sipp_cpu:.1}, \
         everything else (this program, the kernel's softirqs, other work on the machine) {:.1}",
        busy * 100.0,
        steal * 100.0,
        cpu1 - cpu0,
        all - (cpu1 - cpu0) - sipp_cpu
    );
    report_ticks(&metrics);
    report_probes(&results);
    report_digits(&daemon, callers + probes, ok + failed + probes)?;
    report_recordings(&daemon.data_dir, ok)?;
    Ok(())
}

/// The machine's CPU time so far, from the `cpu` line of /proc/stat (clock ticks).
#[derive(Default)]
struct MachineCpu {
    total: u64,
    idle: u64,
    steal: u64,
}

fn machine_cpu() -> MachineCpu {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    MachineCpu { total: (0..8).map(at).sum(), idle: at(3) + at(4), steal: at(7) }
}

impl MachineCpu {
    /// (busy share, steal share) of all cores between `earlier` and now.
    fn share_since(&self, earlier: &MachineCpu) -> (f64, f64) {
        let total = self.total.saturating_sub(earlier.total).max(1) as f64;
        let idle = self.idle.saturating_sub(earlier.idle) as f64;
        (1.0 - idle / total, self.steal.saturating_sub(earlier.steal) as f64 / total)
    }
}

fn report_ticks(metrics: &str) {
    let name = "rexian_media_tick_lateness_seconds";
    let bucket = |le: &str| metric_in(metrics, &format!("{name}_bucket{{le=\"{le}\"}}")).unwrap_or(0.0);
    let count = metric_in(metrics, &format!("{name}_count")).unwrap_or(0.0);
    let late = count - bucket("0.02");
    let max = metric_in(metrics, "rexian_media_tick_lateness_max_seconds").unwrap_or(0.0);
    println!(
        "media ticks: {count} in all, {late} late by 20 ms or more ({:.4} %), over 60 ms {}, over 200 ms {}, over 1 s {}; max lateness {:.0} ms; mean {:.2} ms",
        100.0 * late / count.max(1.0),
        count - bucket("0.06"),
        count - bucket("0.2"),
        count - bucket("1"),
        max * 1000.0,
        metric_in(metrics, &format!("{name}_sum")).unwrap_or(0.0) * 1000.0 / count.max(1.0),
    );
}

fn report_probes(results: &[Probe]) {
    let mut gaps: Vec<f64> = results.iter().flat_map(|p| p.gaps_ms.iter().copied()).collect();
    for (i, p) in results.iter().enumerate() {
        match &p.error {
            Some(e) => println!("probe {i}: failed: {e}"),
            None => {
                let mut own = p.gaps_ms.clone();
                own.sort_by(f64::total_cmp);
                println!(
                    "probe {i}: {} RTP packets, first {:.0} ms after the ACK, max gap {:.0} ms, underruns (gaps > {UNDERRUN_MS} ms) {}",
                    p.packets,
                    p.first_packet_ms.unwrap_or(f64::NAN),
                    own.last().copied().unwrap_or(0.0),
                    own.iter().filter(|g| **g > UNDERRUN_MS).count()
                );
            }
        }
    }
    if gaps.is_empty() {
        println!("probes: no RTP received");
        return;
    }
    gaps.sort_by(f64::total_cmp);
    let at = |q: f64| gaps[((gaps.len() - 1) as f64 * q) as usize];
    let underruns: Vec<f64> = gaps.iter().copied().filter(|g| *g > UNDERRUN_MS).collect();
    println!(
        "probes' RTP inter-arrival gaps: {} gaps, p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.0} ms; underruns {} ({:.0} ms of silence in all)",
        gaps.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        gaps[gaps.len() - 1],
        underruns.len(),
        underruns.iter().map(|g| g - 20.0).sum::<f64>().max(0.0)
    );
}

/// Digits in the call records of the 12365 calls against what was keyed (two per call).
fn report_digits(daemon: &Daemon, calls: u32, placed: u32) -> Result<()> {
    let out = daemon.cli(&["call", "list", "--limit", &(calls + 100).to_string(), "--json"]);
    if !out.status.success() {
        bail!("call list: {}", String::from_utf8_lossy(&out.stderr));
    }
    let cdrs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).context("call list JSON")?;
    let ivr: Vec<&serde_json::Value> = cdrs.iter().filter(|c| c["callee"] == "12365").collect();
    let digits: usize = ivr.iter().map(|c| c["digits"].as_str().map_or(0, str::len)).sum();
    let exact = ivr.iter().filter(|c| c["digits"] == "1#").count();
    let answered = ivr.iter().filter(|c| c["answered_at"].is_string()).count();
    println!(
        "DTMF: {digits} digits in {} call records ({answered} answered) against {} keyed; {exact} calls with exactly \"1#\"",
        ivr.len(),
        2 * placed
    );
    Ok(())
}

/// The mailbox recordings written, and whether their lengths fit the script: the caller keys
/// # about `MAILBOX_WAIT_MS` − prompt − beep + `TALK_MS` after the recording starts.
fn report_recordings(data_dir: &Path, calls: u32) -> Result<()> {
    let mut seconds = Vec::new();
    let mut stack = vec![data_dir.join("recordings")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with("-ivr1.wav") {
                let bytes = entry.metadata()?.len();
                seconds.push(bytes.saturating_sub(44) as f64 / 16_000.0);
            }
        }
    }
    if seconds.is_empty() {
        println!("recordings: none written");
        return Ok(());
    }
    seconds.sort_by(f64::total_cmp);
    let at = |q: f64| seconds[((seconds.len() - 1) as f64 * q) as usize];
    let plausible = seconds.iter().filter(|s| (8.0..=14.0).contains(*s)).count();
    println!(
        "recordings: {} written for {calls} completed SIPp calls (+ probes); length min {:.1} s, p50 {:.1} s, max {:.1} s; {plausible} between 8 and 14 s",
        seconds.len(),
        seconds[0],
        at(0.5),
        seconds[seconds.len() - 1]
    );
    Ok(())
}

fn wait_for_log(daemon: &Daemon, needle: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while !daemon.log().contains(needle) {
        if Instant::now() > deadline {
            bail!("switchd's log never said {needle:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// One caller of our own on raw UDP: dials 12365, keys 1 and # by SIP INFO at the script's
/// times, sends nothing on RTP (switchd records silence), and times every RTP packet it gets.
fn probe_call(target: SocketAddr, n: u32) -> Result<Probe> {
    let sip = UdpSocket::bind("127.0.0.1:0")?;
    let rtp = UdpSocket::bind("127.0.0.1:0")?;
    let (local, media) = (sip.local_addr()?, rtp.local_addr()?);
    let call_id = format!("probe{n}-{}@bench", std::process::id());
    let caller = format!("1390000{n:04}");
    let sdp = format!(
        "v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8 101\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n",
        media.port()
    );
    let head = |method: &str, cseq: u32, to_tag: &str| {
        format!(
            "{method} sip:12365@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{method}{cseq}{n}\r\nMax-Forwards: 70\r\n\
             From: <sip:{caller}@{local}>;tag=probe{n}\r\nTo: <sip:12365@{target}>{to_tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:{caller}@{local}>\r\n"
        )
    };
    let invite = format!("{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", head("INVITE", 1, ""), sdp.len());
    sip.send_to(invite.as_bytes(), target)?;
    sip.set_read_timeout(Some(Duration::from_secs(30)))?;
    let to_tag = common::await_invite_ok(&sip)?;
    let mut buf = vec![0u8; 65536];
    sip.send_to(format!("{}Content-Length: 0\r\n\r\n", head("ACK", 1, &to_tag)).as_bytes(), target)?;
    let answered = Instant::now();
    sip.set_nonblocking(true)?;
    rtp.set_read_timeout(Some(Duration::from_millis(5)))?;
    let keys = [(KEY_MENU_AT_MS, '1'), (key_hash_at_ms(), '#')];
    let mut next_key = 0;
    let mut cseq = 2;
    let mut probe = Probe::default();
    let mut last: Option<Instant> = None;
    let end = answered + Duration::from_millis(call_ms());
    let mut hung_up_by_switchd = false;
    while Instant::now() < end {
        if let Some((at, key)) = keys.get(next_key) {
            if answered.elapsed() >= Duration::from_millis(*at) {
                let body = format!("Signal={key}\r\nDuration=160\r\n");
                let info = format!("{}Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}", head("INFO", cseq, &to_tag), body.len());
                sip.send_to(info.as_bytes(), target)?;
                cseq += 1;
                next_key += 1;
            }
        }
        if let Ok(n) = rtp.recv(&mut buf) {
            let now = Instant::now();
            if n >= 12 {
                probe.packets += 1;
                match last {
                    Some(prev) => probe.gaps_ms.push(now.duration_since(prev).as_secs_f64() * 1000.0),
                    None => probe.first_packet_ms = Some(now.duration_since(answered).as_secs_f64() * 1000.0),
                }
                last = Some(now);
            }
        }
        // switchd's requests (a BYE) and answers to our INFOs.
        while let Ok(n) = sip.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("BYE") {
                let ok = reply_200(&text);
                sip.send_to(ok.as_bytes(), target)?;
                hung_up_by_switchd = true;
            }
        }
        if hung_up_by_switchd {
            bail!("switchd hung up after {:.1} s", answered.elapsed().as_secs_f64());
        }
    }
    sip.send_to(format!("{}Content-Length: 0\r\n\r\n", head("BYE", cseq, &to_tag)).as_bytes(), target)?;
    Ok(probe)
}

/// A 200 OK to a request, echoing its dialog headers.
fn reply_200(request: &str) -> String {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in request.lines() {
        let lower = line.to_ascii_lowercase();
        if ["via:", "from:", "to:", "call-id:", "cseq:"].iter().any(|h| lower.starts_with(h)) {
            out.push_str(line.trim_end());
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}
