//! Sessions, locking, protocol versions, certificate pinning and role checks, through the real
//! daemon over QUIC.

use rexian_shared::client::{ClientError, DeskClient};
use rexian_shared::tls::KnownServers;
use rexian_shared::*;
use rexian_tests::{Daemon, DEMO_PASSWORD};

fn code(e: ClientError) -> Option<ErrorCode> {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sessions_and_locking() {
    let daemon = Daemon::start_demo();
    let c = daemon.connect().await;
    // Nothing works before login.
    let err = c.get_ticket(&TicketNo::parse("202601010001").expect("no")).await.expect_err("not logged in");
    assert_eq!(code(err), Some(ErrorCode::NotAuthenticated));
    assert_eq!(code(c.login("agent1", "wrong-password").await.expect_err("bad")), Some(ErrorCode::BadCredentials));
    assert_eq!(code(c.login("nobody", "wrong-password").await.expect_err("bad")), Some(ErrorCode::BadCredentials));

    // Five failures in a row lock the account, even against the right password.
    for _ in 0..4 {
        assert_eq!(code(c.login("agent2", "wrong-password").await.expect_err("bad")), Some(ErrorCode::BadCredentials));
    }
    assert_eq!(code(c.login("agent2", "wrong-password").await.expect_err("fifth")), Some(ErrorCode::AccountLocked));
    let err = c.login("agent2", DEMO_PASSWORD).await.expect_err("locked");
    assert_eq!(code(err), Some(ErrorCode::AccountLocked));
    // An administrator unlocks it.
    let admin = daemon.login_demo("admin").await;
    admin.request(Request::UnlockUser { username: "agent2".into() }).await.expect("unlock");
    let session = c.login("agent2", DEMO_PASSWORD).await.expect("login after unlock");
    assert_eq!(session.user.role, Role::Agent);
    assert_eq!(session.user.agent_no.as_ref().map(ToString::to_string).as_deref(), Some("1027"));

    // A token resumes the session on a new connection, until logout.
    let c2 = daemon.connect().await;
    let resumed = c2.resume(&session.token).await.expect("resume");
    assert_eq!(resumed.user.username, session.user.username);
    c.request(Request::Logout).await.expect("logout");
    let c3 = daemon.connect().await;
    assert_eq!(code(c3.resume(&session.token).await.expect_err("logged out")), Some(ErrorCode::SessionExpired));

    // Password change: the old one stops working, a weak one is refused.
    let err = c2
        .request(Request::ChangePassword { old_password: DEMO_PASSWORD.into(), new_password: "short".into() })
        .await
        .expect_err("weak");
    assert_eq!(code(err), Some(ErrorCode::WeakPassword));
    c2.request(Request::ChangePassword { old_password: DEMO_PASSWORD.into(), new_password: "a-much-better-one".into() })
        .await
        .expect("change");
    let c4 = daemon.connect().await;
    assert_eq!(code(c4.login("agent2", DEMO_PASSWORD).await.expect_err("old password")), Some(ErrorCode::BadCredentials));
    c4.login("agent2", "a-much-better-one").await.expect("new password");

    // Deactivating a user ends their live sessions at once.
    admin.request(Request::SetUserActive { username: "agent2".into(), active: false }).await.expect("deactivate");
    assert_eq!(code(c4.request(Request::WhoAmI).await.expect_err("ended")), Some(ErrorCode::NotAuthenticated));
    let c5 = daemon.connect().await;
    assert_eq!(code(c5.login("agent2", "a-much-better-one").await.expect_err("inactive")), Some(ErrorCode::BadCredentials));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_checks_the_role() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let handler = daemon.login_demo("quality").await;
    let leader = daemon.login_demo("director").await;
    let admin = daemon.login_demo("admin").await;

    let new_user = NewUser {
        username: "agent9".into(),
        display_name: "新话务员".into(),
        role: Role::Agent,
        password: "long-enough-pw".into(),
        agent_no: Some("1099".into()),
        department_id: None,
    };
    let err = agent.request(Request::CreateUser { user: new_user.clone() }).await.expect_err("agent cannot add users");
    assert_eq!(code(err), Some(ErrorCode::Forbidden));
    let Response::User { user } = admin.request(Request::CreateUser { user: new_user.clone() }).await.expect("admin adds") else {
        panic!("user reply")
    };
    assert_eq!(user.role, Role::Agent);
    assert_eq!(code(admin.request(Request::CreateUser { user: new_user }).await.expect_err("dup")), Some(ErrorCode::Conflict));

    // Department handlers cannot register tickets, read caller profiles or edit the calendar.
    let t = NewTicket::phone(TicketKind::Complaint, None, "摘要", "内容");
    assert_eq!(code(handler.create_ticket(t.clone()).await.expect_err("handler")), Some(ErrorCode::Forbidden));
    let phone = PhoneNumber::parse("13800131234").expect("phone");
    assert_eq!(code(handler.caller_profile(&phone).await.expect_err("profile")), Some(ErrorCode::Forbidden));
    let err = handler.request(Request::SetCalendarDays { days: vec![] }).await.expect_err("calendar");
    assert_eq!(code(err), Some(ErrorCode::Forbidden));
    let err = agent
        .request(Request::CreateDepartment { name: "新部门".into(), parent_id: None, phone: None })
        .await
        .expect_err("agent cannot add departments");
    assert_eq!(code(err), Some(ErrorCode::Forbidden));

    // Handlers see only their department's tickets, and nothing of the others in a search.
    let page = handler.search_tickets(TicketQuery::default()).await.expect("search");
    let own = handler.departments().await.expect("depts").into_iter().find(|d| d.name == "产品质量安全监督管理处").expect("dept").id;
    assert!(!page.items.is_empty(), "the demo has tickets for the quality office");
    assert!(page.items.iter().all(|s| s.lead_department == Some(own)), "only own department's tickets");
    assert!(page.items.iter().all(|s| s.caller_phone.as_deref().is_none_or(|p| p.contains("****"))), "phones masked");
    let all = agent.search_tickets(TicketQuery::default()).await.expect("search");
    assert!(all.total > page.total);
    let foreign = all.items.iter().find(|s| s.lead_department.is_some_and(|d| d != own)).expect("a ticket of another department");
    assert_eq!(code(handler.get_ticket(&foreign.no).await.expect_err("foreign")), Some(ErrorCode::NotFound));

    // Leaders read everything and supervise, but do not dispatch.
    let ticket = leader.get_ticket(&foreign.no).await.expect("leader reads");
    let dispatch = TicketAction::Dispatch { lead_department: own, assisting_departments: vec![], note: String::new() };
    assert_eq!(code(leader.act(&ticket.no, dispatch).await.expect_err("leader")), Some(ErrorCode::Forbidden));

    // A bad field gets a Chinese message naming the field.
    let mut bad = NewTicket::phone(TicketKind::Complaint, None, "", "内容");
    bad.caller.email = Some("not-an-address".into());
    let err = agent.create_ticket(bad).await.expect_err("empty summary");
    let ClientError::Desk(e) = err else { panic!("desk error") };
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidField, Some("summary")));
    assert!(e.message.contains("摘要"), "{}", e.message);
    let mut bad = NewTicket::phone(TicketKind::Complaint, None, "摘要", "内容");
    bad.category_code = Some("77.77".into());
    let ClientError::Desk(e) = agent.create_ticket(bad).await.expect_err("unknown category") else { panic!("desk error") };
    assert_eq!(e.field.as_deref(), Some("category_code"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_version_and_certificate_pinning() {
    let daemon = Daemon::start_demo();
    // First use pins the fingerprint; the same server is accepted again.
    let mut known = KnownServers::in_memory();
    let c = DeskClient::connect(daemon.desk_addr, &mut known, "test").await.expect("first use");
    assert_eq!(c.server_fingerprint(), daemon.fingerprint);
    assert_eq!(known.get(&daemon.desk_addr.to_string()), Some(daemon.fingerprint.as_str()));
    DeskClient::connect(daemon.desk_addr, &mut known, "test").await.expect("same certificate");

    // Another server at a pinned address (a changed certificate) is refused with a clear message.
    let impostor = Daemon::start_demo();
    let err = DeskClient::connect_expecting(impostor.desk_addr, Some(daemon.fingerprint.clone()), "test")
        .await
        .err()
        .expect("changed certificate refused");
    assert!(matches!(err, ClientError::CertificateChanged { .. }), "{err}");
    assert!(err.to_string().contains("证书已变更"), "{err}");

    // A client of another protocol version is refused.
    let err = raw_hello(daemon.desk_addr, &daemon.fingerprint, PROTOCOL_VERSION + 1).await;
    assert_eq!(err.code, ErrorCode::IncompatibleVersion);
    assert!(err.message.contains("不兼容"));
}

/// Speaks the handshake by hand with a given version and returns the refusal.
async fn raw_hello(addr: std::net::SocketAddr, fingerprint: &str, version: u32) -> DeskError {
    let verifier = rexian_shared::tls::PinVerifier::new(Some(fingerprint.to_owned()));
    let mut crypto = rustls_client(verifier);
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).expect("quic config");
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("endpoint");
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(quic)));
    let conn = endpoint.connect(addr, "rexian-switchd").expect("connect").await.expect("handshake");
    let (mut send, mut recv) = conn.open_bi().await.expect("stream");
    codec::write(&mut send, &ClientMsg::Hello { version, client: "old".into() }).await.expect("hello");
    match codec::read::<_, ServerMsg>(&mut recv).await.expect("reply") {
        Some(ServerMsg::Refused { error }) => error,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn rustls_client(verifier: std::sync::Arc<rexian_shared::tls::PinVerifier>) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(rexian_shared::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls13")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_certificate_replaces_the_generated_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut daemon = Daemon::start_in(dir.path(), &["--demo"]);
    let old = daemon.fingerprint.clone();
    daemon.stop();
    // The administrator's certificate (here: one another switchd generated, as PEM files).
    let other = Daemon::start_demo();
    let (cert, key) = (other.data_dir.join("tls/cert.pem"), other.data_dir.join("tls/key.pem"));
    let out = daemon.cli(&["cert", "install", cert.to_str().expect("p"), key.to_str().expect("p")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = dir.path().join("not-a-cert.pem");
    std::fs::write(&bad, "garbage").expect("write");
    let out = daemon.cli(&["cert", "install", bad.to_str().expect("p"), key.to_str().expect("p")]);
    assert!(!out.status.success(), "garbage is refused");

    let daemon = Daemon::start_in(dir.path(), &[]);
    assert_eq!(daemon.fingerprint, other.fingerprint);
    let shown = daemon.cli(&["cert", "show"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), other.fingerprint);
    let err = DeskClient::connect_expecting(daemon.desk_addr, Some(old), "test").await.err().expect("changed");
    assert!(matches!(err, ClientError::CertificateChanged { .. }));
    daemon.login_demo("agent1").await;
}
