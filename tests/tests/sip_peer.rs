//! switchd's SIP listener against a real peer: SIPp (Debian's `sip-tester`, binary `sipp`) runs
//! the scenarios in `tests/sipp/`, and a plain UDP socket sends broken and flooding traffic.
//! OPTIONS gets 200; an INVITE for a number with no route gets 404, one from an address that is
//! no trunk 403 (the calls themselves are in `calls.rs`).
//!
//! SIPp must be installed (`scripts/deps` does it); without it these tests fail, never skip.

use rexian_tests::{sipp, Daemon};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn options(branch: &str, local: SocketAddr, to: SocketAddr) -> String {
    format!(
        "OPTIONS sip:hotline@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=p{branch}\r\n\
         To: <sip:hotline@{to}>\r\n\
         Call-ID: {branch}@rexian-tests\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

fn client() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client socket");
    let local = socket.local_addr().expect("local addr");
    (socket, local)
}

#[test]
fn sipp_options_get_200_and_unrouted_invites_get_404() {
    let daemon = Daemon::start_demo();
    sipp("options_200.xml", daemon.sip_addr, "hotline", 5);
    sipp("invite_404.xml", daemon.sip_addr, "4040", 5);
    assert!(
        daemon.metric("rexian_sip_messages_total") >= 15,
        "5 OPTIONS, 5 INVITEs, 5 ACKs"
    );
}

#[test]
fn invites_from_no_trunk_get_403() {
    // Without --demo no trunk is configured: secure by default.
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start_in(dir.path(), &[]);
    sipp("invite_403.xml", daemon.sip_addr, "12365", 2);
}

#[test]
fn malformed_datagrams_get_400_or_nothing_and_serving_goes_on() {
    let daemon = Daemon::start_demo();
    let (socket, local) = client();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let target = daemon.sip_addr;

    let no_cseq = options("nocseq", local, target).replace("CSeq: 1 OPTIONS\r\n", "");
    let junk: Vec<Vec<u8>> = vec![
        b"\x00\x01\xfe\xff binary junk \x80\x81".to_vec(),
        no_cseq.into_bytes(),
        b"INVITE sip:x@127.0.0.1 SIP/2.0\r\n\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia garbage\r\n\r\n".to_vec(),
        b"\r\n\r\n".to_vec(),
        Vec::new(),
        vec![b'x'; 60_000],
    ];
    for d in &junk {
        socket.send_to(d, target).expect("send junk");
    }
    // All five headers a 400 needs are there, but one header line has no colon.
    let half_broken = options("nocolon", local, target).replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nThis line has no colon\r\n",
    );
    socket
        .send_to(half_broken.as_bytes(), target)
        .expect("send half-broken");

    // Datagrams are handled in order: anything answered before the 400 would arrive first.
    let mut buf = [0u8; 65_536];
    let (n, from) = socket
        .recv_from(&mut buf)
        .expect("a 400 for the half-broken request");
    let reply = String::from_utf8_lossy(&buf[..n]);
    assert_eq!(from, target);
    assert!(reply.starts_with("SIP/2.0 400 "), "{reply}");
    assert!(
        reply.contains("Call-ID: nocolon@rexian-tests\r\n"),
        "{reply}"
    );
    assert!(reply.contains("CSeq: 1 OPTIONS\r\n"), "{reply}");
    assert!(reply.contains(";branch=z9hG4bKnocolon"), "{reply}");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    assert!(
        socket.recv_from(&mut buf).is_err(),
        "nothing else is answered"
    );
    assert!(daemon.metric("rexian_sip_malformed_total") >= 5);

    // Still serving SIP, and the desk still works.
    sipp("options_200.xml", target, "hotline", 5);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let desk = daemon.login_demo("agent1").await;
        drop(desk);
    });
}

#[test]
fn a_flood_from_one_source_is_rate_limited() {
    // No trunk configured: loopback is a stranger here (a trunk gets a far larger allowance).
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start_in(dir.path(), &[]);
    let (socket, local) = client();
    let target = daemon.sip_addr;
    for i in 0..500 {
        socket
            .send_to(
                options(&format!("flood{i}"), local, target).as_bytes(),
                target,
            )
            .expect("send");
    }
    let mut ok = 0;
    let mut buf = [0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        socket.set_read_timeout(Some(left)).expect("timeout");
        match socket.recv_from(&mut buf) {
            Ok((n, _)) if buf[..n].starts_with(b"SIP/2.0 200 ") => ok += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(ok > 0, "the burst allowance is answered");
    assert!(
        ok < 500,
        "the rate limit drops part of a 500-message burst (got {ok} answers)"
    );
    assert!(daemon.metric("rexian_sip_rate_limited_total") > 0);

    // The flooding source recovers, and others were never affected.
    sipp("options_200.xml", target, "hotline", 5);
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    socket
        .send_to(options("after", local, target).as_bytes(), target)
        .expect("send");
    let (n, _) = socket.recv_from(&mut buf).expect("answer after the flood");
    assert!(
        buf[..n].starts_with(b"SIP/2.0 200 "),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[test]
fn a_trunk_peer_from_an_unknown_address_is_admitted_by_its_digest() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The trunk's known address is elsewhere; SIPp calls from 127.0.0.1 with its credentials.
    let config = "[telephony]\n[[telephony.trunks]]\nname = \"pbx\"\naddresses = [\"192.0.2.99\"]\n\
                  inbound_username = \"pbx\"\ninbound_password = \"s3cret\"\n";
    let daemon = Daemon::start_with_config(dir.path(), config, &[]);
    rexian_tests::sipp_with("invite_auth.xml", daemon.sip_addr, "9196", 1, &["-au", "pbx", "-ap", "s3cret"]);
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!((cdr["trunk"].as_str(), cdr["route"].as_str()), (Some("pbx"), Some("echo")), "{cdr:#}");
    assert_eq!(cdr["caller"], "13800138000");
    // A wrong password never gets a call.
    let (mut cmd, _scratch) = rexian_tests::sipp_command("invite_auth.xml", daemon.sip_addr, "9196", 1);
    let output = cmd.args(["-au", "pbx", "-ap", "guess"]).output().expect("run sipp");
    assert!(!output.status.success(), "a wrong password must not be answered");
    assert!(daemon.log().contains("SIP: INVITE digest refused, 403"), "{}", daemon.log());
    assert_eq!(daemon.ended_calls().len(), 1, "no second call record");
}
