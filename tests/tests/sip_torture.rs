//! A torture run against the real daemon while a real phone is in a call: what an operator
//! needs is that hostile or broken SIP on the hotline's port never costs a caller their call.
//!
//! A baresip phone calls the echo test (9196) and sends a 440 Hz tone. While it talks, another
//! socket sends the RFC 4475-style messages of `tests/sip_torture/` (valid but odd, and
//! invalid), then a flood of INVITEs from a second loopback address, then INVITEs and a
//! REGISTER with digest credentials that mean nothing to us. Afterwards the phone must have
//! heard its tone for most of the call, the call's CDR must show a normal end, the flood must
//! show in `rexian_sip_rate_limited_total`, and the daemon must still answer OPTIONS.
//!
//! # The message files
//! The file name says what the daemon must answer: `<statuses>__<what>.sip`, where
//! `<statuses>` is a status code, several allowed ones joined by `-`, or `none` (no answer at
//! all: nothing to answer with, or not a request). Lines end in LF in the file and are sent
//! with CRLF. Placeholders: `$ID` (unique per message; used in the branch and Call-ID so the
//! answer can be matched), `$LOCAL` (the sending socket), `$TARGET` (the daemon's SIP
//! address), `$BODYLEN` (the length of the body as sent), `$NUL` (a NUL byte), `$LONG2K` and
//! `$LONG60K` (2,000 and 60,000 letters).

use rexian_tests::{tone_wav, sipp, Daemon};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the phone's call lasts; the whole torture run happens inside it.
const CALL_SECONDS: u32 = 20;
/// INVITEs in the flood.
const FLOOD: usize = 3000;

/// The CDRs, newest first, as the admin CLI prints them.
fn cdrs(daemon: &Daemon) -> Vec<serde_json::Value> {
    let out = daemon.cli(&["call", "list", "--json"]);
    assert!(out.status.success(), "call list: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("call list JSON")
}

/// One torture message, read from its file.
struct Torture {
    name: String,
    /// Allowed final statuses; empty: no answer at all.
    expect: Vec<u16>,
    template: Vec<u8>,
}

fn torture_messages() -> Vec<Torture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sip_torture");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/sip_torture")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let (statuses, _) = name.split_once("__").unwrap_or_else(|| panic!("{name}: no `<statuses>__` prefix"));
            let expect = statuses
                .split('-')
                .filter(|s| *s != "none")
                .map(|s| s.parse().unwrap_or_else(|_| panic!("{name}: bad status {s}")))
                .collect();
            Torture { name, expect, template: std::fs::read(&path).expect("read torture file") }
        })
        .collect()
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The datagram for `t`: placeholders filled, CRLF line ends, `$BODYLEN` measured.
fn render(t: &Torture, id: &str, local: SocketAddr, target: SocketAddr) -> Vec<u8> {
    let mut bytes = replace(&t.template, b"\n", b"\r\n");
    for (needle, with) in [
        (&b"$ID"[..], id.as_bytes().to_vec()),
        (b"$LOCAL", local.to_string().into_bytes()),
        (b"$TARGET", target.to_string().into_bytes()),
        (b"$NUL", vec![0]),
        (b"$LONG2K", vec![b'a'; 2_000]),
        (b"$LONG60K", vec![b'b'; 60_000]),
    ] {
        bytes = replace(&bytes, needle, &with);
    }
    if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let body_len = bytes.len() - (end + 4);
        bytes = replace(&bytes, b"$BODYLEN", body_len.to_string().as_bytes());
    }
    bytes
}

fn status_of(reply: &[u8]) -> Option<u16> {
    let line = reply.strip_prefix(b"SIP/2.0 ")?;
    std::str::from_utf8(line.get(..3)?).ok()?.parse().ok()
}

/// The datagrams that reach `socket` within `wait` and mention `id` (other answers, e.g. late
/// retransmissions for an earlier message, are not this message's).
fn replies_for(socket: &UdpSocket, id: &str, wait: Duration, stop_at_final: bool) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 70_000];
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        socket.set_read_timeout(Some(left)).expect("timeout");
        let Ok((n, _)) = socket.recv_from(&mut buf) else { break };
        let reply = buf[..n].to_vec();
        if !reply.windows(id.len()).any(|w| w == id.as_bytes()) {
            continue;
        }
        let last = status_of(&reply).is_some_and(|s| s >= 200);
        got.push(reply);
        if last && stop_at_final {
            break;
        }
    }
    got
}

/// The ACK for a non-2xx final answer to one of our INVITEs (same branch, the answer's To), so
/// the daemon stops retransmitting it.
fn ack_for(invite: &[u8], reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(invite);
    let reply = String::from_utf8_lossy(reply);
    let header = |msg: &str, name: &str| {
        msg.lines().find(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase()))).unwrap_or("").to_owned()
    };
    let request_line = text.lines().next().unwrap_or("").replacen("INVITE", "ACK", 1);
    let cseq = header(&text, "CSeq").replace("INVITE", "ACK");
    format!(
        "{request_line}\r\n{}\r\n{}\r\n{}\r\n{}\r\n{cseq}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        header(&text, "Via"),
        header(&text, "From"),
        header(&reply, "To"),
        header(&text, "Call-ID"),
    )
    .into_bytes()
}

fn invite(id: &str, local: SocketAddr, target: SocketAddr, extra: &str) -> String {
    format!(
        "INVITE sip:9196@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\n\
         From: <sip:intruder@{local}>;tag=t{id}\r\nTo: <sip:9196@{target}>\r\nCall-ID: {id}@torture\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:intruder@{local}>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}



#[test]
fn torture_and_flood_do_not_hurt_a_call_in_progress() {
    let daemon = Daemon::start_demo();
    let target = daemon.sip_addr;
    let scratch = tempfile::tempdir().expect("temp dir");
    let source = scratch.path().join("tone440.wav");
    tone_wav(&source, 440.0, CALL_SECONDS + 10);
    let uri = format!("sip:9196@{target}");
    let phone = std::thread::spawn(move || rexian_tests::baresip_call(&uri, &source, CALL_SECONDS));

    // The call is up once its CDR says answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cdrs(&daemon).iter().any(|c| c["answered_at"].is_string()) {
        assert!(Instant::now() < deadline, "the phone's call was not answered; log:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let call_up = Instant::now();

    // 1. The torture messages, one by one, from loopback (a trunk address).
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind torture socket");
    let local = socket.local_addr().expect("local addr");
    let mut failures = Vec::new();
    for (i, t) in torture_messages().iter().enumerate() {
        let id = format!("torture{i}x{}", std::process::id());
        let bytes = render(t, &id, local, target);
        socket.send_to(&bytes, target).expect("send torture message");
        let wait = if t.expect.is_empty() { Duration::from_millis(400) } else { Duration::from_secs(2) };
        let replies = replies_for(&socket, &id, wait, !t.expect.is_empty());
        let finals: Vec<u16> = replies.iter().filter_map(|r| status_of(r)).filter(|s| *s >= 200).collect();
        let ok = if t.expect.is_empty() { replies.is_empty() } else { finals.len() == 1 && t.expect.contains(&finals[0]) };
        if !ok {
            let shown: Vec<String> = replies.iter().map(|r| String::from_utf8_lossy(&r[..r.len().min(300)]).into_owned()).collect();
            failures.push(format!("{}: expected {:?}, got {finals:?}: {shown:#?}", t.name, t.expect));
        }
        if bytes.starts_with(b"INVITE ") {
            if let Some(last) = replies.iter().rev().find(|r| status_of(r).is_some_and(|s| s >= 300)) {
                socket.send_to(&ack_for(&bytes, last), target).expect("send ACK");
            }
        }
    }
    assert!(failures.is_empty(), "torture messages answered wrongly:\n{}", failures.join("\n"));

    // 2. Credentials that mean nothing to us buy nothing: an INVITE from an address that is no
    //    trunk is refused 403 with or without Authorization (the REGISTER with a digest was in
    //    the files: 405). From 127.0.0.3: loopback, but not the demo trunk's 127.0.0.1.
    let stranger = UdpSocket::bind("127.0.0.3:0").expect("bind 127.0.0.3 (loopback on Linux)");
    let stranger_addr = stranger.local_addr().expect("local addr");
    for (i, auth) in [
        "Authorization: Digest username=\"admin\", realm=\"rexian\", nonce=\"abc\", uri=\"sip:9196\", response=\"0123456789abcdef0123456789abcdef\"\r\n",
        "Proxy-Authorization: Digest username=\"demo-loopback\", realm=\"x\", nonce=\"y\", uri=\"sip:9196\", response=\"zz\"\r\n",
        "Authorization: Basic YWRtaW46cmV4aWFuLWRlbW8=\r\n",
    ]
    .iter()
    .enumerate()
    {
        let id = format!("digest{i}x{}", std::process::id());
        let request = invite(&id, stranger_addr, target, auth);
        stranger.send_to(request.as_bytes(), target).expect("send");
        let replies = replies_for(&stranger, &id, Duration::from_secs(2), true);
        let last = replies.last().map(|r| String::from_utf8_lossy(r).into_owned()).unwrap_or_default();
        assert_eq!(replies.last().and_then(|r| status_of(r)), Some(403), "INVITE with {auth}: {last}");
        stranger.send_to(&ack_for(request.as_bytes(), replies.last().expect("a reply")), target).expect("send ACK");
    }

    // 3. An INVITE flood from one source, as fast as the socket goes. From 127.0.0.2, not the
    //    phone's 127.0.0.1: the rate limit is per source IP, so a flood from the phone's own
    //    address empties the bucket its in-dialog requests need too: a BYE sent during the
    //    flood is dropped, and only a retransmission after the flood gets through (tried: a
    //    5.5 s flood from 127.0.0.1 over the phone's hang-up ended the call 7 s late in the
    //    CDR; one outlasting the BYE's 32 s transaction would lose it). That is the per-IP
    //    limit working as designed, not what this test is about. Each INVITE within the
    //    allowance is refused 403 (no trunk); the rest is dropped unread.
    let limited_before = daemon.metric("rexian_sip_rate_limited_total");
    let flood = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2 (loopback on Linux)");
    let flood_addr = flood.local_addr().expect("local addr");
    let started = Instant::now();
    for i in 0..FLOOD {
        let id = format!("flood{i}x{}", std::process::id());
        let _ = flood.send_to(invite(&id, flood_addr, target, "").as_bytes(), target);
        // Unpaced, the kernel drops most of the flood at the daemon's full receive buffer and
        // the daemon never sees it; short pauses (still thousands a second, a hundred times
        // the allowed rate) make the daemon's own limit do the work, which is what is tested.
        if i % 25 == 24 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let flood_took = started.elapsed();
    // Distinct INVITEs answered (the 403s are retransmitted until an ACK that never comes).
    let answered = replies_for(&flood, "flood", Duration::from_secs(2), false)
        .iter()
        .filter(|r| status_of(r) == Some(403))
        .filter_map(|r| String::from_utf8_lossy(r).lines().find(|l| l.starts_with("Call-ID:")).map(str::to_owned))
        .collect::<std::collections::HashSet<_>>()
        .len();
    let limited = daemon.metric("rexian_sip_rate_limited_total") - limited_before;
    // Limits::default(): a burst of 100, then 50 a second.
    let allowed = 100 + (50.0 * flood_took.as_secs_f64()).ceil() as usize;
    assert!(answered > 0, "the burst allowance is answered");
    assert!(answered <= allowed, "{answered} flooding INVITEs answered in {flood_took:?}; at most {allowed} are let through");
    // How much of the flood reaches the daemon depends on the machine's load (the kernel drops
    // the rest at the full receive buffer: 645 of 3000 once while baresip tests ran beside it);
    // what matters is that well over the allowance arrived and the excess was refused.
    assert!(limited >= 2 * allowed as u64, "only {limited} of {FLOOD} flooding INVITEs rate limited in {flood_took:?} (allowance {allowed})");
    assert!(call_up.elapsed() < Duration::from_secs(u64::from(CALL_SECONDS) - 3), "the torture outlasted the call");

    // 4. The phone's call: its tone came back for most of it, and it ended normally.
    let phone = phone.join().expect("phone thread");
    let heard = rexian_tests::file_ending(phone.path(), "-dec.wav").unwrap_or_else(|| {
        panic!("baresip kept no received audio; its log:\n{}", std::fs::read_to_string(phone.path().join("baresip.log")).unwrap_or_default())
    });
    let samples = rexian_tests::dumped_samples(&heard);
    let echoed = samples.chunks(800).filter(|b| b.len() == 800 && rexian_tests::tone_share(b, 440.0) > 0.8).count();
    // 100 ms blocks; the echo starts after answer and a jitter buffer's worth of delay.
    let wanted = (CALL_SECONDS as usize * 10) * 3 / 4;
    eprintln!(
        "flood: {FLOOD} INVITEs in {flood_took:?}, {answered} answered 403, {limited} rate limited; \
         phone: {echoed} of {} blocks echoed 440 Hz",
        samples.len() / 800
    );
    assert!(echoed >= wanted, "only {echoed} of {} 100 ms blocks echoed 440 Hz (want {wanted})", samples.len() / 800);
    let cdrs = cdrs(&daemon);
    let echo: Vec<&serde_json::Value> = cdrs.iter().filter(|c| c["callee"] == "9196").collect();
    assert_eq!(echo.len(), 1, "one echo call, none from the intruders: {cdrs:#?}");
    assert_eq!(echo[0]["route"], "echo");
    assert_eq!(echo[0]["cause"], "caller_hangup", "{:#}", echo[0]);
    assert!(echo[0]["ended_at"].is_string(), "{:#}", echo[0]);

    // 5. Still serving: OPTIONS from SIPp (127.0.0.1) get 200.
    sipp("options_200.xml", target, "hotline", 5);
}
