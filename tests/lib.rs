//! Spawns the real `switchd` binary on free ports with a fresh data directory, and connects to it
//! through the headless desk client over real QUIC. Used by the end-to-end tests and benchmarks.

use rexian_shared::audio::{AudioFrame, OpusDecoderVoip, OpusEncoderVoip, TIMESTAMP_TICKS_PER_FRAME};
use rexian_shared::client::DeskClient;
use std::sync::{Arc, Mutex};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DEMO_PASSWORD: &str = "rexian-demo";

/// The switchd binary of the same build profile. `SWITCHD_BIN` overrides it (not `REXIAN_*`:
/// switchd reads those as configuration).
pub fn switchd_bin() -> PathBuf {
    match std::env::var("SWITCHD_BIN") {
        Ok(p) => PathBuf::from(p),
        Err(_) => workspace_bin("switchd"),
    }
}

/// A binary of the workspace (the package and the binary share the name), of the same build
/// profile as the running executable: target/<profile>/NAME, beside a bench binary or one level
/// above a test binary in deps/. Built when it is missing.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let exe_dir = exe.parent().expect("target/<profile>");
    let profile_dir = if exe_dir.ends_with("deps") { exe_dir.parent().expect("target/<profile>") } else { exe_dir };
    let bin = profile_dir.join(name);
    if !bin.exists() {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", name, "--bin", name]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building {name} failed");
    }
    bin
}

/// A running switchd; killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub desk_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// UDP, and TCP on the same port.
    pub sip_addr: SocketAddr,
    /// SIP over TLS, when `telephony.sip_tls_addr` is set.
    pub sip_tls_addr: Option<SocketAddr>,
    pub fingerprint: String,
    _tmp: Option<tempfile::TempDir>,
}

impl Daemon {
    /// A new daemon with demo data in a fresh temporary data directory.
    pub fn start_demo() -> Daemon {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut d = Daemon::start_in(tmp.path(), &["--demo"]);
        d._tmp = Some(tmp);
        d
    }

    /// Starts switchd on `data_dir` with a config file of `toml` (written there) and extra
    /// `run` arguments.
    pub fn start_with_config(data_dir: &Path, toml: &str, extra: &[&str]) -> Daemon {
        let _ = std::fs::create_dir_all(data_dir);
        let file = data_dir.join("switchd.toml");
        std::fs::write(&file, toml).expect("write config");
        Self::spawn(data_dir, Some(&file), extra)
    }

    /// Starts switchd on `data_dir` (kept by the caller) with extra `run` arguments.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Daemon {
        Self::spawn(data_dir, None, extra)
    }

    fn spawn(data_dir: &Path, config: Option<&Path>, extra: &[&str]) -> Daemon {
        let _ = std::fs::create_dir_all(data_dir);
        let _ = std::fs::remove_file(data_dir.join("switchd.ready"));
        let log = std::fs::File::options().create(true).append(true).open(data_dir.join("switchd.log")).ok();
        let mut cmd = Command::new(switchd_bin());
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["run", "--desk-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--sip-addr", "127.0.0.1:0"])
            .args(extra)
            .env("REXIAN_REMINDER_INTERVAL_SECS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match log {
            Some(f) => cmd.stderr(f),
            None => cmd.stderr(Stdio::null()),
        };
        let mut child = cmd.spawn().expect("spawn switchd");
        let ready = wait_ready(data_dir, &mut child);
        Daemon {
            child: Some(child),
            data_dir: data_dir.to_owned(),
            desk_addr: ready["desk_addr"].as_str().and_then(|a| a.parse().ok()).expect("desk_addr"),
            metrics_addr: ready["metrics_addr"].as_str().and_then(|a| a.parse().ok()).expect("metrics_addr"),
            sip_addr: ready["sip_addr"].as_str().and_then(|a| a.parse().ok()).expect("sip_addr"),
            sip_tls_addr: ready["sip_tls_addr"].as_str().and_then(|a| a.parse().ok()),
            fingerprint: ready["fingerprint"].as_str().unwrap_or_default().to_owned(),
            _tmp: None,
        }
    }

    /// Connects a desk client that requires this daemon's certificate.
    pub async fn connect(&self) -> DeskClient {
        DeskClient::connect_expecting(self.desk_addr, Some(self.fingerprint.clone()), "rexian-tests")
            .await
            .expect("connect to switchd")
    }

    /// Connects and logs in.
    pub async fn login(&self, user: &str, password: &str) -> DeskClient {
        let c = self.connect().await;
        c.login(user, password).await.unwrap_or_else(|e| panic!("login {user}: {e}"));
        c
    }

    pub async fn login_demo(&self, user: &str) -> DeskClient {
        self.login(user, DEMO_PASSWORD).await
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns whether it exited successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        false
    }

    /// Runs a `switchd` admin command on this daemon's data directory.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        run_cli(&self.data_dir, args)
    }

    /// The call detail records (`switchd call list --json`), newest first, once the newest has
    /// ended: a peer can finish (SIPp exits on the 200 for its BYE) a moment before switchd
    /// closes the record. Panics when none has ended within 10 s.
    pub fn ended_calls(&self) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.cli(&["call", "list", "--json"]);
            assert!(out.status.success(), "call list: {}", String::from_utf8_lossy(&out.stderr));
            let cdrs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("call list JSON");
            if cdrs.first().is_some_and(|c| c["ended_at"].is_string()) {
                return cdrs;
            }
            assert!(Instant::now() < deadline, "no ended call record: {cdrs:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The metrics endpoint's whole HTTP response (`GET /metrics`).
    pub fn metrics_page(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.metrics_addr).expect("connect to metrics");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("request metrics");
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read metrics");
        body
    }

    /// One counter or gauge from the metrics endpoint; panics (with the page) if it is missing.
    pub fn metric(&self, name: &str) -> u64 {
        let body = self.metrics_page();
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("metric {name} missing:\n{body}"))
    }

    /// The log the daemon wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("switchd.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn run_cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(switchd_bin()).arg("--data-dir").arg(data_dir).args(args).output().expect("run switchd cli")
}

fn wait_ready(data_dir: &Path, child: &mut Child) -> serde_json::Value {
    let path = data_dir.join("switchd.ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(data_dir.join("switchd.log")).unwrap_or_default();
            panic!("switchd exited with {status} before it was ready; its log:\n{log}");
        }
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(v) = serde_json::from_slice(&bytes) {
                return v;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(data_dir.join("switchd.log")).unwrap_or_default();
    panic!("switchd did not become ready within 60 s; its log:\n{log}");
}

/// Local date on the daemon's clock (UTC+8).
pub fn today_cst() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// Where the SIPp scenarios of `tests/sipp/` are.
pub fn sipp_scenario(name: &str) -> String {
    format!("{}/sipp/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A free UDP port on loopback (bound then released; fine for SIPp's ports in tests).
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    s.local_addr().expect("local addr").port()
}

/// A free even UDP port on loopback whose next three ports are free too: SIPp's media port
/// (`-mp`) must be even, and SIPp also uses the ports above it.
pub fn free_media_port() -> u16 {
    loop {
        let port = free_udp_port() & !1;
        let free = (0..4).all(|i| std::net::UdpSocket::bind(("127.0.0.1", port + i)).is_ok());
        if port > 1024 && free {
            return port;
        }
    }
}

/// The SIPp command for `scenario` against `target`: calls `calls` at 5/s, dialling
/// `service`, on free loopback ports (SIP, control and media), in a scratch directory.
pub fn sipp_command(scenario: &str, target: SocketAddr, service: &str, calls: u32) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new("sipp");
    cmd.args(["-sf", &sipp_scenario(scenario), "-s", service, "-m", &calls.to_string(), "-r", "5"])
        .args(["-timeout", "60s", "-nostdin", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
        .args(["-p", &free_udp_port().to_string(), "-cp", &free_udp_port().to_string()])
        .args(["-mp", &free_media_port().to_string()])
        .arg(target.to_string())
        .current_dir(dir.path())
        .stdin(Stdio::null());
    (cmd, dir)
}

/// SIPp as a UAS (the carrier's side of outbound calls) on loopback port `port`, one call.
pub fn sipp_uas_command(scenario: &str, port: u16) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new("sipp");
    cmd.args(["-sf", &sipp_scenario(scenario), "-m", "1", "-timeout", "60s", "-nostdin"])
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", &port.to_string()])
        .args(["-cp", &free_udp_port().to_string(), "-mp", &free_media_port().to_string()])
        .current_dir(dir.path())
        .stdin(Stdio::null());
    (cmd, dir)
}

/// Runs a SIPp scenario to its end; panics (with SIPp's output) unless it exits 0.
pub fn sipp(scenario: &str, target: SocketAddr, service: &str, calls: u32) {
    sipp_with(scenario, target, service, calls, &[]);
}

/// [`sipp`] with extra SIPp arguments (e.g. `-t t1`: TCP, one connection).
pub fn sipp_with(scenario: &str, target: SocketAddr, service: &str, calls: u32, extra: &[&str]) {
    let (mut cmd, _dir) = sipp_command(scenario, target, service, calls);
    cmd.args(extra);
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`sipp` not found: install Debian's sip-tester package (scripts/deps does it)")
        }
        Err(e) => panic!("cannot run sipp: {e}"),
    };
    assert!(
        output.status.success(),
        "sipp {scenario} against {target} exited with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        tail(&output.stdout),
        tail(&output.stderr)
    );
}

/// The last 40 lines of a process's output.
pub fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A baresip phone run for one call: dials `uri`, sends `source` (an 8 kHz mono WAV, via the
/// `aufile` module) and keeps what it hears (the `sndfile` module's `*-dec.wav`), for
/// `seconds`, then hangs up and exits. Returns the scratch directory with the dumps.
pub fn baresip_call(uri: &str, source: &Path, seconds: u32) -> tempfile::TempDir {
    let (dir, mut cmd) = baresip_command("phone", free_udp_port(), source, seconds);
    cmd.args(["-e", &format!("/dial {uri}")]);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run baresip (Debian package baresip; scripts/deps installs it): {e}"));
    std::fs::write(dir.path().join("baresip.log"), &output.stdout).expect("keep the log");
    dir
}

/// A baresip phone that answers calls to `user` on loopback port `port` automatically, sends
/// `source` and keeps what it hears, for `seconds`. Runs in the background; wait for the child
/// before reading the dumps in the returned directory.
pub fn baresip_answerer(user: &str, port: u16, source: &Path, seconds: u32) -> (Child, tempfile::TempDir) {
    let (dir, mut cmd) = baresip_command(user, port, source, seconds);
    let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log file");
    let child = cmd
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run baresip (Debian package baresip; scripts/deps installs it): {e}"));
    (child, dir)
}

fn baresip_command(user: &str, sip_port: u16, source: &Path, seconds: u32) -> (tempfile::TempDir, Command) {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\ncall_local_timeout 120\ncall_max_calls 4\n\
         audio_player aufile,{d}/unused.wav\naudio_source aufile,{src}\naudio_alert aufile,{d}/unused.wav\n\
         audio_level no\nausrc_srate 8000\nauplay_srate 8000\nausrc_format s16\nauplay_format s16\n\
         auenc_format s16\naudec_format s16\naudio_buffer 20-160\nrtcp_mux no\njitter_buffer_delay 1-10\n\
         module_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aufile.so\nmodule sndfile.so\n\
         snd_path {d}\nmodule_tmp uuid.so\nmodule_tmp account.so\nmodule_app menu.so\n",
        src = source.display()
    );
    std::fs::write(dir.path().join("config"), config).expect("write baresip config");
    std::fs::write(
        dir.path().join("accounts"),
        format!("<sip:{user}@127.0.0.1>;regint=0;answermode=auto;audio_codecs=PCMA,PCMU\n"),
    )
    .expect("write baresip accounts");
    let mut cmd = Command::new("baresip");
    cmd.arg("-f").arg(dir.path()).args(["-t", &seconds.to_string()]).stdin(Stdio::null());
    (dir, cmd)
}

/// `seconds` of a sine at `freq`, 8 kHz, at a level a phone sends speech.
pub fn tone_samples(freq: f64, seconds: u32) -> Vec<i16> {
    (0..8000 * seconds).map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * f64::from(i) / 8000.0).sin()) as i16).collect()
}

/// Writes an 8 kHz mono 16-bit WAV of a sine at `freq` for `seconds` (a phone's audio source).
pub fn tone_wav(path: &Path, freq: f64, seconds: u32) {
    let samples: Vec<u8> = tone_samples(freq, seconds).into_iter().flat_map(i16::to_le_bytes).collect();
    let len = samples.len() as u32;
    let mut wav = Vec::with_capacity(44 + samples.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for field in [16u32.to_le_bytes().to_vec(), 1u16.to_le_bytes().to_vec(), 1u16.to_le_bytes().to_vec()] {
        wav.extend_from_slice(&field);
    }
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&len.to_le_bytes());
    wav.extend_from_slice(&samples);
    std::fs::write(path, wav).expect("write tone WAV");
}

/// The samples of a WAV baresip's `sndfile` dumped (its sizes may be unfinished).
pub fn dumped_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).expect("read dump");
    let data = bytes.windows(4).position(|w| w == b"data").map_or(44, |p| p + 8);
    bytes[data.min(bytes.len())..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect()
}

/// The file in `dir` whose name ends with `suffix` (e.g. baresip's `-dec.wav`).
pub fn file_ending(dir: &Path, suffix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(suffix))
}

/// Power of `freq` in `samples` at 8 kHz relative to the block's total power (0..1), by the
/// Goertzel algorithm: how much of a block is that one tone.
pub fn tone_share(samples: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut total = 0.0f64;
    for &x in samples {
        let x = f64::from(x);
        total += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    if total == 0.0 {
        return 0.0;
    }
    (2.0 * power / samples.len() as f64) / total
}

/// 100 ms blocks of 8 kHz `samples` in which `freq` dominates (over half the energy).
pub fn tone_blocks(samples: &[i16], freq: f64) -> usize {
    samples.chunks(800).filter(|b| b.len() == 800 && tone_share(b, freq) > 0.5).count()
}

/// The next call event a desk gets (offered, ringing, connected, conference, ended), skipping
/// the others; panics after 20 s without one.
pub async fn next_call_event(desk: &DeskClient) -> rexian_shared::Event {
    use rexian_shared::Event;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), desk.next_event())
            .await
            .expect("a call event within 20 s")
            .expect("the desk connection stays open");
        if matches!(
            event,
            Event::CallOffered { .. }
                | Event::CallRinging { .. }
                | Event::CallConnected { .. }
                | Event::ConferenceChanged { .. }
                | Event::CallEnded { .. }
        ) {
            return event;
        }
    }
}

/// Talks on a desk call as a desktop does: sends a tone of `freq` (or silence) as 48 kHz
/// Opus frames for `seconds`, numbering frames from `first` as a continuing stream does, and
/// collects what the desk hears (decoded at 8 kHz); returns what was heard and the next frame number.
pub async fn desk_talk(desk: Arc<DeskClient>, call: u64, seconds: u32, freq: Option<f64>, first: u32) -> (Vec<i16>, u32) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let listener = {
        let (desk, heard) = (desk.clone(), heard.clone());
        tokio::spawn(async move {
            let mut decoder = OpusDecoderVoip::new(8000).expect("Opus decoder");
            while let Ok(frame) = desk.recv_audio().await {
                if frame.call == call {
                    let pcm = decoder.decode(&frame.payload).expect("decode");
                    heard.lock().expect("lock").extend(pcm);
                }
            }
        })
    };
    let mut encoder = OpusEncoderVoip::new(48_000).expect("encoder");
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let frames = first..first + seconds * 50;
    for n in frames.clone() {
        tick.tick().await;
        let pcm: Vec<i16> = (0..960u32)
            .map(|i| {
                let t = f64::from(n * 960 + i) / 48_000.0;
                freq.map_or(0, |f| (8000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16)
            })
            .collect();
        let frame = AudioFrame { call, seq: n as u16, timestamp: n.wrapping_mul(TIMESTAMP_TICKS_PER_FRAME), payload: encoder.encode(&pcm).expect("encode") };
        if desk.send_audio(&frame).is_err() {
            break;
        }
    }
    listener.abort();
    let samples = heard.lock().expect("lock").clone();
    (samples, frames.end)
}


/// One step of a scripted SIPp caller ([`sipp_caller`]).
#[derive(Debug, Clone)]
pub enum CallerStep {
    /// Wait this many milliseconds.
    Pause(u32),
    /// Key these digits by SIP INFO (`application/dtmf-relay`), 300 ms apart.
    Keys(String),
    /// Talk: Debian's G.711 A-law speech capture (about eight seconds).
    Speak,
    /// Start sending this pcap's RTP (in the background: the next step follows at once).
    PlayPcap(String),
}

/// A SIPp caller from `caller` (a phone number) that dials the service, answers with A-law
/// and RFC 2833, follows `steps`, and then hangs up — or, with `await_bye`, waits for switchd
/// to hang up. Digits go by INFO so that repeated digits stay distinct however the RTP is
/// timed. Returns the scenario XML.
pub fn caller_scenario(caller: &str, steps: &[CallerStep], await_bye: bool) -> String {
    let header = |method: &str, cseq: u32| {
        format!(
            "      {method} [next_url] SIP/2.0\n      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n      \
             Max-Forwards: 70\n      From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n      \
             To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]\n      Call-ID: [call_id]\n      CSeq: {cseq} {method}\n      \
             Contact: <sip:{caller}@[local_ip]:[local_port]>\n"
        )
    };
    let mut xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="scripted caller">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send><![CDATA[
{ack}      Content-Length: 0
  ]]></send>
"#,
        ack = header("ACK", 1)
    );
    let mut cseq = 2;
    for step in steps {
        match step {
            CallerStep::Pause(ms) => xml.push_str(&format!("  <pause milliseconds=\"{ms}\"/>\n")),
            CallerStep::PlayPcap(path) => {
                xml.push_str(&format!("  <nop><action><exec play_pcap_audio=\"{path}\"/></action></nop>\n"))
            }
            CallerStep::Speak => xml.push_str(
                "  <nop><action><exec play_pcap_audio=\"/usr/share/sip-tester/g711a.pcap\"/></action></nop>\n",
            ),
            CallerStep::Keys(keys) => {
                for key in keys.chars() {
                    xml.push_str(&format!(
                        "  <send retrans=\"500\"><![CDATA[\n{}      Content-Type: application/dtmf-relay\n      Content-Length: [len]\n\n      Signal={key}\n      Duration=160\n  ]]></send>\n  <recv response=\"200\"/>\n  <pause milliseconds=\"300\"/>\n",
                        header("INFO", cseq),
                    ));
                    cseq += 1;
                }
            }
        }
    }
    if await_bye {
        xml.push_str(
            "  <recv request=\"BYE\" timeout=\"90000\"/>\n  <send><![CDATA[\n      SIP/2.0 200 OK\n      [last_Via:]\n      [last_From:]\n      [last_To:]\n      [last_Call-ID:]\n      [last_CSeq:]\n      Content-Length: 0\n  ]]></send>\n",
        );
    } else {
        xml.push_str(&format!(
            "  <send retrans=\"500\"><![CDATA[\n{}      Content-Length: 0\n  ]]></send>\n  <recv response=\"200\"/>\n",
            header("BYE", cseq)
        ));
    }
    xml.push_str("</scenario>\n");
    xml
}

/// Runs [`caller_scenario`] once against `target` dialling `service`; panics with SIPp's
/// output unless it completes.
pub fn sipp_caller(target: SocketAddr, service: &str, caller: &str, steps: &[CallerStep], await_bye: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("caller.xml");
    std::fs::write(&file, caller_scenario(caller, steps, await_bye)).expect("write scenario");
    let mut child = Command::new("sipp")
        .args(["-sf", &file.display().to_string(), "-s", service, "-m", "1", "-timeout", "180s", "-nostdin"])
        .args(["-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args(["-cp", &free_udp_port().to_string(), "-mp", &free_media_port().to_string()])
        .arg(target.to_string())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sipp (Debian package sip-tester; scripts/deps installs it)");
    // SIPp's own -timeout does not always end it when the peer vanished: never outlive 4 min.
    let deadline = Instant::now() + Duration::from_secs(240);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("sipp output");
    assert!(
        output.status.success(),
        "scripted caller exited with {}\nstdout:\n{}\nstderr:\n{}\nscenario:\n{}",
        output.status,
        tail(&output.stdout),
        tail(&output.stderr),
        std::fs::read_to_string(&file).unwrap_or_default()
    );
}

/// Waits (up to 60 s) until the daemon's log contains `needle`.
pub fn wait_for_log(daemon: &Daemon, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !daemon.log().contains(needle) {
        assert!(std::time::Instant::now() < deadline, "the log never said {needle:?}:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next event on `desk` matching `want`, skipping others; panics after 30 s.
pub async fn wait_event(desk: &DeskClient, what: &str, want: impl Fn(&rexian_shared::Event) -> bool) -> rexian_shared::Event {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), desk.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 30 s"))
            .expect("the desk connection stays open");
        if want(&event) {
            return event;
        }
    }
}

/// Matches the ACD telling the desk it is in `state`.
pub fn state_is(state: &str) -> impl Fn(&rexian_shared::Event) -> bool + '_ {
    move |e| matches!(e, rexian_shared::Event::AgentStateChanged { state: s, .. } if s == state)
}

/// A user-mode PulseAudio with a pipe microphone and a pipe headset (the notes' recipe): a
/// thread feeds the microphone a 1 kHz tone in real time, another keeps what the headset plays.
pub struct VirtualHeadset {
    daemon: std::process::Child,
    heard: Arc<std::sync::Mutex<Vec<i16>>>,
    /// (samples heard so far, when they had arrived): when each read from the headset ended.
    arrivals: Arc<std::sync::Mutex<Vec<(usize, Instant)>>>,
    /// When the microphone's first frame was written (later frames follow every 20 ms).
    mic_started: Arc<std::sync::Mutex<Option<Instant>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    dir: tempfile::TempDir,
}

impl VirtualHeadset {
    /// A headset whose microphone hears a steady 1 kHz tone.
    pub fn start() -> VirtualHeadset {
        Self::start_with_mic(|n| (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 48_000.0).sin()) as i16)
    }

    /// A headset whose microphone hears `mic(n)` as its n-th sample (48 kHz), in real time.
    pub fn start_with_mic(signal: impl Fn(u64) -> i16 + Send + 'static) -> VirtualHeadset {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        for sub in ["home", "run"] {
            std::fs::create_dir_all(d.join(sub)).expect("dirs");
        }
        let script = format!(
            "load-module module-native-protocol-unix auth-anonymous=1 socket={d}/run/native\n\
             load-module module-pipe-source source_name=mic file={d}/mic.fifo format=s16le rate=48000 channels=1\n\
             load-module module-pipe-sink sink_name=spk file={d}/spk.fifo format=s16le rate=48000 channels=1 use_system_clock_for_timing=yes\n\
             set-default-source mic\nset-default-sink spk\n",
            d = d.display()
        );
        std::fs::write(d.join("test.pa"), script).expect("script");
        // PulseAudio makes the fifos itself (it refuses existing ones).
        let daemon = std::process::Command::new("pulseaudio")
            .args(["-n", "-F"])
            .arg(d.join("test.pa"))
            .args(["--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes", "--log-level=info"])
            .arg(format!("--log-target=file:{}/pa.log", d.display()))
            .env("HOME", d.join("home"))
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("pulseaudio (scripts/deps installs it)");
        let (socket, mic_path, spk_path) = (d.join("run/native"), d.join("mic.fifo"), d.join("spk.fifo"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(socket.exists() && mic_path.exists() && spk_path.exists()) {
            assert!(Instant::now() < deadline, "PulseAudio did not start: {}", std::fs::read_to_string(d.join("pa.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let mic_started = Arc::new(std::sync::Mutex::new(None));
        let started = mic_started.clone();
        std::thread::spawn(move || {
            let Ok(mut mic) = std::fs::OpenOptions::new().write(true).open(&mic_path) else { return };
            let mut n = 0u64;
            let start = Instant::now();
            *started.lock().expect("lock") = Some(start);
            while !s.load(Ordering::Relaxed) {
                let frame: Vec<u8> = (0..960u64).flat_map(|i| signal(n * 960 + i).to_le_bytes()).collect();
                if mic.write_all(&frame).is_err() {
                    return;
                }
                n += 1;
                let due = start + Duration::from_millis(20 * n);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        });
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let arrivals = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (h, a) = (heard.clone(), arrivals.clone());
        std::thread::spawn(move || {
            let Ok(mut spk) = std::fs::File::open(&spk_path) else { return };
            // 5 ms reads: when a sound arrived is known to about that.
            let mut buf = [0u8; 480];
            while let Ok(n) = spk.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let mut heard = h.lock().expect("lock");
                heard.extend(buf[..n].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])));
                a.lock().expect("lock").push((heard.len(), Instant::now()));
            }
        });
        // The desktop (this process, or a child started after this) finds the server through
        // PULSE_SERVER, as cpal's PulseAudio host reads it. Each test runs in its own process
        // under nextest.
        std::env::set_var("PULSE_SERVER", format!("unix:{}", socket.display()));
        VirtualHeadset { daemon, heard, arrivals, mic_started, stop, dir }
    }

    /// When the headset played its `sample`-th sample (48 kHz), to about 5 ms.
    pub fn heard_at(&self, sample: usize) -> Option<Instant> {
        let arrivals = self.arrivals.lock().expect("lock");
        let i = arrivals.partition_point(|(n, _)| *n <= sample);
        arrivals.get(i).map(|(n, at)| *at - Duration::from_secs_f64((n - sample) as f64 / 48_000.0))
    }

    /// When the microphone's `sample`-th sample (48 kHz) was spoken.
    pub fn spoken_at(&self, sample: u64) -> Option<Instant> {
        self.mic_started.lock().expect("lock").map(|t| t + Duration::from_secs_f64(sample as f64 / 48_000.0))
    }

    /// What the headset played so far, at 48 kHz.
    pub fn heard(&self) -> Vec<i16> {
        self.heard.lock().expect("lock").clone()
    }
}

impl Drop for VirtualHeadset {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if std::thread::panicking() {
            eprintln!("PulseAudio's log:\n{}", std::fs::read_to_string(self.dir.path().join("pa.log")).unwrap_or_default());
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A virtual X display (Xvfb) for the real desktop windows; ended when dropped.
pub struct Xvfb {
    child: Child,
    /// `:N`, for `DISPLAY`.
    pub display: String,
}

impl Xvfb {
    /// A 1366×768 screen (the smallest an agent's PC has) on a display number Xvfb picks.
    pub fn start() -> Xvfb {
        use std::io::BufRead;
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1366x768x24", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb; scripts/deps installs it)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("Xvfb names its display");
        let n: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb printed {line:?} instead of a display number"));
        Xvfb { child, display: format!(":{n}") }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where test runs leave screenshots of the desktops: `target/screenshots/` (the README
/// points to it; `docs/screenshots/` holds a copy of a run's).
pub fn screenshot_dir() -> PathBuf {
    let bin = workspace_bin("switchd");
    let dir = bin.parent().and_then(Path::parent).expect("target/").join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// The real agent-desktop window of one OS user (its own home and config) on an X display,
/// driven by the keyboard through xdotool; what it shows is read from its info log.
pub struct DesktopWindow {
    child: Child,
    display: String,
    log: PathBuf,
    _home: tempfile::TempDir,
}

impl DesktopWindow {
    /// Starts the window for `user` with the server remembered, logging in at start, and waits
    /// until it has.
    pub fn start(daemon: &Daemon, x: &Xvfb, user: &str) -> DesktopWindow {
        let w = Self::spawn(daemon, x, user, Some(DEMO_PASSWORD));
        w.wait_log("logged in");
        w
    }

    /// Starts the window for `user` (remembered with the server); with `password` it logs in at
    /// start (`REXIAN_PASSWORD`), without it it stays on the login screen.
    pub fn spawn(daemon: &Daemon, x: &Xvfb, user: &str, password: Option<&str>) -> DesktopWindow {
        let home = tempfile::tempdir().expect("home");
        let config = home.path().join(".config");
        std::fs::create_dir_all(config.join("rexian")).expect("config dir");
        let settings = serde_json::json!({ "server": daemon.desk_addr.to_string(), "username": user });
        std::fs::write(config.join("rexian/agent-desktop.json"), settings.to_string()).expect("settings");
        let log = home.path().join("agent-desktop.log");
        let mut cmd = Command::new(workspace_bin("agent-desktop"));
        cmd.env("DISPLAY", &x.display)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("REXIAN_PASSWORD")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_DATA_HOME", home.path().join(".local/share"))
            .env("LANG", "zh_CN.UTF-8")
            .env("RUST_LOG", "agent_desktop=info,warn")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"));
        if let Some(p) = password {
            cmd.env("REXIAN_PASSWORD", p);
        }
        let child = cmd.spawn().expect("the agent-desktop binary");
        DesktopWindow { child, display: x.display.clone(), log, _home: home }
    }

    /// The window's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to 60 s) for a log line containing every one of `needles`; returns it.
    pub fn wait_log(&self, needles: &str) -> String {
        match self.logged_within(needles, Duration::from_secs(60)) {
            Some(line) => line,
            None => panic!("the window never logged {needles:?}; its log:\n{}", self.log_text()),
        }
    }

    /// The first log line containing every one of `needles` (split by ` && `), waiting up to `wait`.
    pub fn logged_within(&self, needles: &str, wait: Duration) -> Option<String> {
        let parts: Vec<&str> = needles.split(" && ").collect();
        let deadline = Instant::now() + wait;
        loop {
            if let Some(line) = self.log_text().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return Some(line.to_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn xdotool(&self, args: &[&str]) -> String {
        let out = Command::new("xdotool").args(args).env("DISPLAY", &self.display).output().expect("xdotool (scripts/deps installs it)");
        assert!(out.status.success(), "xdotool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The window's X id (xdotool matches the ASCII part of the title).
    /// Whether the window asks for the user's attention (the ICCCM urgency hint a taskbar flashes).
    pub fn wants_attention(&self) -> bool {
        let out = Command::new("xprop").args(["-id", &self.window_id(), "WM_HINTS"]).env("DISPLAY", &self.display).output().expect("xprop (Debian package x11-utils; scripts/deps installs it)");
        String::from_utf8_lossy(&out.stdout).to_lowercase().contains("urgen")
    }

    pub fn window_id(&self) -> String {
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
    pub fn focus(&self) {
        let id = self.window_id();
        self.xdotool(&["windowfocus", "--sync", &id]);
        self.xdotool(&["mousemove", "--window", &id, "640", "12"]);
    }

    /// Presses a key or a combination (`F2`, `ctrl+s`).
    pub fn key(&self, key: &str) {
        self.focus();
        self.xdotool(&["key", "--clearmodifiers", key]);
    }

    /// Types `text` (Chinese included) as a keyboard would. A keyboard with these characters on
    /// its keys is made first (xmodmap onto spare keycodes): xdotool would otherwise remap a
    /// key for each character and restore it before the window reads the press.
    pub fn type_text(&self, text: &str) {
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
        let out = xmodmap.env("DISPLAY", &self.display).output().expect("xmodmap");
        assert!(out.status.success(), "xmodmap: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(500));
        self.focus();
        self.xdotool(&["type", "--delay", "80", text]);
    }

    /// Photographs the window into `target/screenshots/NAME.png`, after letting it redraw.
    pub fn screenshot(&self, name: &str) -> PathBuf {
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

impl Drop for DesktopWindow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("agent-desktop's log:\n{}", self.log_text());
        }
    }
}

/// Reads exactly one SIP message (headers and Content-Length bytes of body) from `buf` + `s`,
/// keeping what follows it in `buf`; `None` when the stream ends. Panics after 5 s of silence.
pub async fn read_sip_message<S: tokio::io::AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + length {
                let message = String::from_utf8_lossy(&buf[..end + length]).to_string();
                buf.drain(..end + length);
                return Some(message);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await.expect("a reply in time").ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
