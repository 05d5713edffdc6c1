//! Nothing acknowledged is lost: tickets survive `kill -9`, and a backup taken while the daemon
//! runs restores into a working daemon.

use base64::Engine;
use rexian_shared::*;
use rexian_tests::{run_cli, Daemon};
use std::sync::Arc;

fn new_complaint(i: usize) -> NewTicket {
    let phone = PhoneNumber::parse(&format!("139{:08}", i)).expect("phone");
    NewTicket::phone(TicketKind::Complaint, Some(phone), &format!("崩溃测试投诉{i}"), "内容")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tickets_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut daemon = Daemon::start_in(dir.path(), &["--demo"]);
    let agent = Arc::new(daemon.login_demo("agent1").await);

    // Many creations in flight at once; collect every acknowledged number, then kill at once.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let agent = agent.clone();
        tasks.push(tokio::spawn(async move { agent.create_ticket(new_complaint(i)).await.map(|t| t.no) }));
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.push(t.await.expect("task").expect("created"));
    }
    daemon.kill9();

    let daemon = Daemon::start_in(dir.path(), &[]);
    let agent = daemon.login_demo("agent1").await;
    for no in &acknowledged {
        let t = agent.get_ticket(no).await.unwrap_or_else(|e| panic!("ticket {no} lost after kill -9: {e}"));
        assert_eq!(t.state, TicketState::Registered);
        assert_eq!(t.history.len(), 1, "its history survived too");
    }
    // Numbers stay unique after the restart.
    let next = agent.create_ticket(new_complaint(999)).await.expect("create after restart");
    assert!(!acknowledged.contains(&next.no));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_backup_and_restore() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut daemon = Daemon::start_in(&data, &["--demo"]);
    let agent = daemon.login_demo("agent1").await;
    let before = agent.create_ticket(new_complaint(1)).await.expect("create");
    let pdf = b"%PDF-1.4 scanned letter".to_vec();
    let att = agent
        .request(Request::AddAttachment {
            no: before.no.clone(),
            name: "来信扫描件.pdf".into(),
            mime: "application/pdf".into(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(&pdf),
        })
        .await
        .expect("attach");
    let Response::Attachment { attachment } = att else { panic!("attachment reply") };

    // Backup while the daemon runs and keeps writing.
    let backup = dir.path().join("backup");
    let out = daemon.cli(&["backup", backup.to_str().expect("path")]);
    assert!(out.status.success(), "backup failed: {}", String::from_utf8_lossy(&out.stderr));
    let after = agent.create_ticket(new_complaint(2)).await.expect("create after backup");

    // Restore refuses while a daemon holds the directory.
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).expect("mkdir");
    let out = run_cli(&data, &["restore", backup.to_str().expect("path"), "--force"]);
    assert!(!out.status.success(), "restore must refuse while switchd runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop switchd"));
    daemon.stop();

    let out = run_cli(&restored, &["restore", backup.to_str().expect("path")]);
    assert!(out.status.success(), "restore failed: {}", String::from_utf8_lossy(&out.stderr));
    let daemon = Daemon::start_in(&restored, &[]);
    let agent = daemon.login_demo("agent1").await;
    let t = agent.get_ticket(&before.no).await.expect("ticket from before the backup");
    assert_eq!(t.attachments.len(), 1);
    let Response::AttachmentData { data_base64, .. } = agent.request(Request::GetAttachment { id: attachment.id }).await.expect("attachment")
    else {
        panic!("attachment data")
    };
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(data_base64).expect("b64"), pdf);
    let err = agent.get_ticket(&after.no).await.expect_err("created after the backup");
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
}
