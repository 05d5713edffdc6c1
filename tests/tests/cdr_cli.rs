//! Call detail records as an administrator reads them: `switchd call list|show`, while the daemon
//! runs. Nothing in the binary places calls yet, so the test writes the records through switchd's
//! store API (the one the telephony engine will call) into the daemon's live database.

use chrono::{TimeZone, Utc};
use rexian_tests::{run_cli, Daemon};
use switchd::cdr::{CallDirection, CallEnd, CallStart, EndCause};
use switchd::store::Store;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_fresh_data_dir_has_no_calls_and_unknown_calls_are_named() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_cli(dir.path(), &["call", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]");
    let out = run_cli(dir.path(), &["call", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("没有通话记录 / no calls"), "{}", stdout(&out));

    let out = run_cli(dir.path(), &["call", "show", "999"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("通话999不存在 / no call 999"), "{}", stderr(&out));
    let out = run_cli(dir.path(), &["call", "show", "999", "--json"]);
    assert!(!out.status.success());
    assert!(stdout(&out).is_empty(), "no JSON for a missing call: {}", stdout(&out));
}

#[test]
fn calls_recorded_by_the_store_api_are_listed_and_shown_while_the_daemon_runs() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = Daemon::start_in(dir.path(), &[]);
    let t = |h, m, s| Utc.with_ymd_and_hms(2026, 11, 29, h, m, s).single().expect("time");
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (answered, ringing) = rt.block_on(async {
        let store = Store::open(&switchd::daemon::db_path(&daemon.data_dir)).expect("open the live database");
        let answered = store
            .call_offered(CallStart {
                sip_call_id: "a84b4c76e66710@192.0.2.4".into(),
                direction: CallDirection::Inbound,
                trunk: Some("carrier-a".into()),
                caller: "13800138000".into(),
                callee: "12345".into(),
                route: "ivr-main".into(),
                offered_at: t(1, 0, 0),
            })
            .await
            .expect("offered");
        store.call_answered(answered, t(1, 0, 4)).await.expect("answered");
        let path = format!("recordings/2026/11/29/{answered}-call.wav");
        store.call_recording_started(answered, path.clone(), "call".into(), t(1, 0, 4)).await.expect("rec");
        store.call_recording_finished(answered, path, 60.0).await.expect("rec done");
        let end = CallEnd { ended_at: t(1, 1, 4), cause: EndCause::CallerHangup, sip_status: None, digits: "1*2#".into(), quality: None };
        store.call_ended(answered, end).await.expect("ended");
        let ringing = store
            .call_offered(CallStart {
                sip_call_id: "ringing@192.0.2.4".into(),
                direction: CallDirection::Outbound,
                trunk: None,
                caller: "12345".into(),
                callee: "13900139000".into(),
                route: "callback".into(),
                offered_at: t(2, 0, 0),
            })
            .await
            .expect("offered");
        (answered, ringing)
    });

    let out = daemon.cli(&["call", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let calls: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let calls = calls.as_array().expect("array");
    assert_eq!(calls.iter().map(|c| c["id"].as_i64().expect("id")).collect::<Vec<_>>(), vec![ringing, answered], "newest first");
    let c = &calls[1];
    assert_eq!((c["direction"].as_str(), c["cause"].as_str(), c["digits"].as_str()), (Some("inbound"), Some("caller_hangup"), Some("1*2#")));
    assert_eq!(c["recordings"][0]["seconds"], 60.0);
    assert!(calls[0]["ended_at"].is_null() && calls[0]["cause"].is_null());
    let out = daemon.cli(&["call", "list", "--json", "--limit", "1"]);
    let one: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(one.as_array().map(Vec::len), Some(1));

    // The table: bilingual headers, the cause's Chinese label, local times (UTC+8 by default).
    let out = daemon.cli(&["call", "list"]);
    let table = stdout(&out);
    for h in ["编号 ID", "主叫 Caller", "被叫 Callee", "路由 Route", "开始 Offered", "应答 Answered", "结束 Ended", "原因 Cause", "按键 Digits", "录音 Recordings"] {
        assert!(table.lines().next().expect("header").contains(h), "{h} missing: {table}");
    }
    assert!(table.contains("对方挂机") && table.contains("通话中"), "{table}");
    assert!(table.contains("2026-11-29 09:00:00") && table.contains("09:01:04"), "{table}");

    let out = daemon.cli(&["call", "show", &answered.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("对方挂机 caller_hangup") && text.contains("carrier-a") && text.contains("60.0s"), "{text}");
    let out = daemon.cli(&["call", "show", &answered.to_string(), "--json"]);
    let one: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(one, calls[1]);
}
