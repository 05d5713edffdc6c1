//! The admin CLI, the config rules and the metrics endpoint, as an administrator uses them.

use rexian_tests::{run_cli, switchd_bin, Daemon};
use std::io::{Read, Write};
use std::process::Command;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_config_keys_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(switchd_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["user", "list"])
        .env("REXIAN_DESK_PORT", "7443")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("desk_port"), "{}", stderr(&out));

    let file = dir.path().join("switchd.toml");
    std::fs::write(&file, "desk_addr = \"127.0.0.1:7443\"\n[deadlines]\nhandeling = 5\n").expect("write");
    let out = Command::new(switchd_bin()).arg("--config").arg(&file).args(["user", "list"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("handeling"), "{}", stderr(&out));
}

#[test]
fn administrators_manage_users_calendar_and_read_tickets() {
    let daemon = Daemon::start_demo();

    let out = run_cli(daemon.data_dir.as_path(), &["user", "add", "agent7", "--name", "新人", "--role", "agent", "--agent-no", "1077", "--password", "secret-enough"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_cli(daemon.data_dir.as_path(), &["user", "list", "--json"]);
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(users.as_array().expect("array").iter().any(|u| u["username"] == "agent7" && u["agent_no"] == "1077"));
    let out = run_cli(daemon.data_dir.as_path(), &["user", "add", "x", "--name", "n", "--role", "agent", "--password", "secret-enough"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("用户名") || stderr(&out).contains("工号"), "{}", stderr(&out));

    // The running daemon sees the new user at once (one SQLite file, WAL).
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async { daemon.login("agent7", "secret-enough").await });

    let out = run_cli(daemon.data_dir.as_path(), &["ticket", "list", "--json", "--state", "closed", "--kind", "complaint"]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let items = page["items"].as_array().expect("items");
    assert!(!items.is_empty() && items.iter().all(|t| t["state"] == "closed" && t["kind"] == "complaint"));
    let no = items[0]["no"].as_str().expect("no").to_owned();
    let out = run_cli(daemon.data_dir.as_path(), &["ticket", "show", &no, "--json"]);
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(t["no"], no.as_str());
    assert!(t["history"].as_array().expect("history").len() >= 4);
    let out = run_cli(daemon.data_dir.as_path(), &["ticket", "show", &no]);
    assert!(stdout(&out).contains("已办结"), "{}", stdout(&out));

    // Calendar import: a bad line is named; a good file replaces its year.
    let cal = daemon.data_dir.join("cal.txt");
    std::fs::write(&cal, "2030-01-01,holiday,元旦\n2030-02-30,holiday,坏日期\n").expect("write");
    let out = run_cli(daemon.data_dir.as_path(), &["calendar", "import", cal.to_str().expect("p")]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    std::fs::write(&cal, "# 2030\n2030-01-01,holiday,元旦\n2030-01-05,班,调休\n").expect("write");
    let out = run_cli(daemon.data_dir.as_path(), &["calendar", "import", cal.to_str().expect("p")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_cli(daemon.data_dir.as_path(), &["calendar", "export", "2030"]);
    assert_eq!(stdout(&out), "2030-01-01,holiday,元旦\n2030-01-05,workday,调休\n");
}

#[test]
fn metrics_are_served_and_sigterm_stops_cleanly() {
    let mut daemon = Daemon::start_demo();
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let agent = daemon.login_demo("agent1").await;
        agent
            .create_ticket(rexian_shared::NewTicket::phone(rexian_shared::TicketKind::Consultation, None, "咨询", "内容"))
            .await
            .expect("create");
    });
    let mut sock = std::net::TcpStream::connect(daemon.metrics_addr).expect("metrics");
    sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut body = String::new();
    sock.read_to_string(&mut body).expect("read");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("rexian_tickets_created_total 1"), "{body}");
    assert!(body.contains("rexian_desk_connections 0") || body.contains("rexian_desk_connections 1"), "{body}");
    assert!(daemon.stop(), "SIGTERM ends switchd with success");
    assert!(!daemon.data_dir.join("switchd.ready").exists(), "ready file removed on a clean stop");
    assert!(daemon.log().contains("stopped"));
}
