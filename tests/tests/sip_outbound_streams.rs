//! switchd opens the connections to trunks configured with `transport = "tcp"` or `"tls"`:
//! SIPp plays a carrier over TCP (`-t t1`, one connection) that checks the INVITE's Via and
//! Contact, challenges it, answers, and hangs up itself with a BYE on that connection; SIPp
//! plays a registrar over TCP. Debian's SIPp has no TLS, so a small tokio-rustls listener
//! with a self-signed certificate plays a TLS carrier: the INVITE arrives over TLS once
//! switchd trusts the certificate (`tls_ca`, `tls_server_name`), and a call to a carrier whose
//! certificate is not for the configured name fails without a byte of SIP sent.

use rexian_shared::{Event, PhoneNumber};
use rexian_tests::{free_udp_port, next_call_event, sipp_uas_command, tail, Daemon};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

fn trunk_config(port: u16, transport: &str, extra: &str) -> String {
    format!(
        "[telephony]\noutbound_caller_id = \"12365\"\nkeepalive_secs = 0\n\n[[telephony.trunks]]\nname = \"carrier\"\n\
         addresses = [\"127.0.0.1\"]\nproxy = \"127.0.0.1:{port}\"\nusername = \"rexian\"\npassword = \"secret\"\n\
         transport = \"{transport}\"\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_dials_out_over_tcp_and_the_carrier_hangs_up_on_the_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let carrier_port = free_udp_port();
    let (mut cmd, _scratch) = sipp_uas_command("carrier_stream.xml", carrier_port);
    let carrier = cmd
        .args(["-t", "t1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sipp");
    // SIPp listens on TCP before switchd dials.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let daemon = Daemon::start_with_config(dir.path(), &trunk_config(carrier_port, "tcp", ""), &["--demo"]);
    let desk = daemon.login_demo("agent1").await;

    let call = desk.dial(&PhoneNumber::parse("13800138000").expect("number")).await.expect("dial");
    let ringing = next_call_event(&desk).await;
    // A call that never rang is a connection or scenario problem: show both sides' accounts.
    if ringing != (Event::CallRinging { call }) {
        let mut carrier = carrier;
        let _ = carrier.kill();
        let out = carrier.wait_with_output().expect("sipp");
        panic!("{ringing:?}\nswitchd:\n{}\nSIPp:\n{}\n{}", daemon.log(), tail(&out.stdout), tail(&out.stderr));
    }
    assert_eq!(next_call_event(&desk).await, Event::CallConnected { call });
    // The carrier's BYE comes on the connection switchd opened; the call ends from its side.
    let Event::CallEnded { call: ended, cause } = next_call_event(&desk).await else { panic!("expected the end") };
    assert_eq!(ended, call);
    assert_ne!(cause, "switch_hangup", "the carrier hung up, not switchd");
    let out = tokio::task::spawn_blocking(move || carrier.wait_with_output()).await.expect("join").expect("sipp");
    assert!(
        out.status.success(),
        "the carrier (SIPp over TCP) saw TCP in Via and Contact, valid credentials, and the 200 to its BYE:\n{}\n{}",
        tail(&out.stdout),
        tail(&out.stderr)
    );
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["trunk"], "carrier");
    assert!(cdr["answered_at"].is_string(), "{cdr:#}");
}

#[test]
fn switchd_registers_over_tcp() {
    let dir = tempfile::tempdir().expect("temp dir");
    let registrar_port = free_udp_port();
    let (mut cmd, _scratch) = sipp_uas_command("registrar_auth.xml", registrar_port);
    let registrar = cmd
        .args(["-t", "t1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sipp");
    std::thread::sleep(Duration::from_millis(300));
    let config = trunk_config(registrar_port, "tcp", "register = true\nregister_expires_secs = 600\n");
    let daemon = Daemon::start_with_config(dir.path(), &config, &[]);
    let out = registrar.wait_with_output().expect("sipp");
    assert!(
        out.status.success(),
        "the registrar (SIPp over TCP) saw a REGISTER with valid credentials:\n{}\n{}",
        tail(&out.stdout),
        tail(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.metrics_page().contains("rexian_trunks_registered 1\n") {
        assert!(Instant::now() < deadline, "no registration in the metrics");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TLS carrier on loopback with a self-signed certificate for `carrier.test`, written to
/// `dir` as the CA file switchd is told to trust.
fn tls_carrier(dir: &std::path::Path) -> (tokio_rustls::TlsAcceptor, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["carrier.test".into()]).expect("certificate");
    let ca = dir.join("carrier-ca.pem");
    std::fs::write(&ca, ck.cert.pem()).expect("write the CA file");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(rexian_shared::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .expect("server config");
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca)
}

/// The response `status` to `request`, its Via, From, Call-ID and CSeq copied, To tagged.
fn response(request: &str, status: &str) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for line in request.lines() {
        if ["Via:", "From:", "Call-ID:", "CSeq:"].iter().any(|h| line.starts_with(h)) {
            out.push_str(line);
            out.push_str("\r\n");
        } else if line.starts_with("To:") {
            out.push_str(&format!("{line};tag=tlscarrier\r\n"));
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_invite_reaches_a_tls_carrier_that_switchd_trusts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (acceptor, ca) = tls_carrier(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let carrier = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("switchd connects");
        let mut tls = acceptor.accept(tcp).await.expect("switchd completes the TLS handshake");
        let mut buf = Vec::new();
        let invite = rexian_tests::read_sip_message(&mut tls, &mut buf).await.expect("an INVITE over TLS");
        // Busy: the ACK for it must come back on the same connection.
        tls.write_all(response(&invite, "486 Busy Here").as_bytes()).await.expect("write");
        let ack = rexian_tests::read_sip_message(&mut tls, &mut buf).await.expect("the ACK on the connection");
        (invite, ack)
    });
    let config = trunk_config(port, "tls", &format!("tls_ca = \"{}\"\ntls_server_name = \"carrier.test\"\n", ca.display()));
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    let desk = daemon.login_demo("agent1").await;
    let call = desk.dial(&PhoneNumber::parse("13800138000").expect("number")).await.expect("dial");
    let Event::CallEnded { call: ended, .. } = next_call_event(&desk).await else { panic!("expected the end") };
    assert_eq!(ended, call);
    let (invite, ack) = tokio::time::timeout(Duration::from_secs(10), carrier).await.expect("in time").expect("carrier");
    assert!(invite.starts_with("INVITE sip:13800138000@127.0.0.1:"), "{invite}");
    assert!(invite.contains("Via: SIP/2.0/TLS "), "{invite}");
    assert!(invite.to_lowercase().contains(";transport=tls>"), "{invite}");
    assert!(ack.starts_with("ACK "), "{ack}");
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["sip_status"].as_u64(), Some(486), "{cdr:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_certificate_for_another_name_fails_the_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (acceptor, ca) = tls_carrier(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let carrier = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("switchd connects");
        // switchd refuses the certificate: the handshake fails, nothing is read.
        acceptor.accept(tcp).await.is_err()
    });
    let config = trunk_config(port, "tls", &format!("tls_ca = \"{}\"\ntls_server_name = \"sbc.other.test\"\n", ca.display()));
    let daemon = Daemon::start_with_config(dir.path(), &config, &["--demo"]);
    let desk = daemon.login_demo("agent1").await;
    let call = desk.dial(&PhoneNumber::parse("13800138000").expect("number")).await.expect("dial");
    let Event::CallEnded { call: ended, .. } = next_call_event(&desk).await else { panic!("expected the end") };
    assert_eq!(ended, call);
    assert!(tokio::time::timeout(Duration::from_secs(10), carrier).await.expect("in time").expect("carrier"), "the handshake failed");
    let cdr = daemon.ended_calls().remove(0);
    assert_eq!(cdr["sip_status"].as_u64(), Some(503), "a transport error counts as 503: {cdr:#}");
    assert!(daemon.log().contains("TLS handshake with the trunk failed"), "the reason is logged");
}
