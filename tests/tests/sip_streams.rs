//! SIP over TCP and TLS at the socket: framing (split and coalesced messages, keep-alive
//! pings, a missing Content-Length), the connection limits, and a TLS client that checks
//! switchd's certificate by its fingerprint and gets its OPTIONS answered.

use rexian_tests::Daemon;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

fn options(branch: &str, transport: &str, local: SocketAddr) -> String {
    format!(
        "OPTIONS sip:switchd@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@127.0.0.1>;tag=p{branch}\r\n\
         To: <sip:switchd@127.0.0.1>\r\n\
         Call-ID: {branch}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// True when the peer closes the connection (EOF or reset) within a few seconds.
async fn closed<S: AsyncRead + Unpin>(s: &mut S) -> bool {
    let mut chunk = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Pings, a split message, two coalesced ones, then one without Content-Length.
async fn exercise<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, transport: &str, local: SocketAddr) {
    let mut buf = Vec::new();
    s.write_all(b"\r\n\r\n").await.expect("ping");
    let mut pong = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut pong)).await.expect("pong in time").expect("pong");
    assert_eq!(&pong, b"\r\n", "RFC 5626 pong");
    let first = options("split", transport, local);
    let (a, b) = first.split_at(40);
    s.write_all(a.as_bytes()).await.expect("write");
    s.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b.as_bytes()).await.expect("write");
    let reply = rexian_tests::read_sip_message(s, &mut buf).await.expect("a reply to the split OPTIONS");
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    assert!(reply.contains(&format!("Via: SIP/2.0/{transport} {local};branch=z9hG4bKsplit")), "{reply}");
    let two = options("one", transport, local) + &options("two", transport, local);
    s.write_all(two.as_bytes()).await.expect("write");
    for branch in ["one", "two"] {
        let reply = rexian_tests::read_sip_message(s, &mut buf).await.expect("a reply to each coalesced OPTIONS");
        assert!(reply.starts_with("SIP/2.0 200 OK\r\n") && reply.contains(&format!("z9hG4bK{branch}")), "{reply}");
    }
    // §18.3: no Content-Length on a stream is an error; there is no resync: 400, then close.
    let bad = options("nolength", transport, local).replace("Content-Length: 0\r\n", "");
    s.write_all(bad.as_bytes()).await.expect("write");
    let reply = rexian_tests::read_sip_message(s, &mut buf).await.expect("a 400");
    assert!(reply.starts_with("SIP/2.0 400 "), "{reply}");
    assert!(closed(s).await, "the connection is closed after the 400");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_frames_messages_answers_pings_and_refuses_a_missing_content_length() {
    let daemon = Daemon::start_demo();
    let mut s = TcpStream::connect(daemon.sip_addr).await.expect("TCP on the SIP port");
    let local = s.local_addr().expect("local addr");
    exercise(&mut s, "TCP", local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_are_limited_per_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start_with_config(dir.path(), "[telephony]\ntcp_max_connections_per_ip = 2\n", &["--demo"]);
    let mut kept = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(daemon.sip_addr).await.expect("connect");
        let local = s.local_addr().expect("local addr");
        s.write_all(options(&format!("k{}", local.port()), "TCP", local).as_bytes()).await.expect("write");
        let reply = rexian_tests::read_sip_message(&mut s, &mut Vec::new()).await.expect("answered");
        assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
        kept.push(s);
    }
    let mut third = TcpStream::connect(daemon.sip_addr).await.expect("the kernel accepts");
    assert!(closed(&mut third).await, "switchd closes the third connection from one address");
    drop(kept.pop());
    // The slot is released once switchd notices the close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = TcpStream::connect(daemon.sip_addr).await.expect("connect");
    let local = s.local_addr().expect("local addr");
    s.write_all(options("again", "TCP", local).as_bytes()).await.expect("write");
    assert!(rexian_tests::read_sip_message(&mut s, &mut Vec::new()).await.is_some_and(|r| r.starts_with("SIP/2.0 200")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_sip_with_the_switchd_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start_with_config(dir.path(), "[telephony]\nsip_tls_addr = \"127.0.0.1:0\"\n", &["--demo"]);
    let tls_addr = daemon.sip_tls_addr.expect("sip_tls_addr in switchd.ready");
    let verifier = rexian_shared::tls::PinVerifier::new(Some(daemon.fingerprint.clone()));
    let config = rustls::ClientConfig::builder_with_provider(rexian_shared::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(tls_addr).await.expect("TCP to the TLS port");
    let local = tcp.local_addr().expect("local addr");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut s = connector.connect(name, tcp).await.expect("TLS handshake with the pinned certificate");
    exercise(&mut s, "TLS", local).await;
}
