//! The agent desktop's screens driven by their labels (egui_kittest, with a CJK font) against
//! the real switchd over QUIC: the same `AgentApp` the window runs, its backend thread and
//! its desk client, with a fresh data directory and the demo users.

use agent_desktop::settings::Settings;
use agent_desktop::AgentApp;
use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use rexian_shared::TicketNo;
use rexian_tests::{sipp_caller, CallerStep, Daemon, DEMO_PASSWORD};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The workstation in a test harness, its settings (the remembered server) in `config`.
fn workstation(config: &Path, daemon: &Daemon) -> Harness<'static, AgentApp> {
    let settings = Settings { server: daemon.desk_addr.to_string(), ..Settings::default() };
    settings.save(config).expect("save settings");
    let app = AgentApp::new(config.to_owned(), Arc::new(|| {}));
    Harness::builder()
        .with_size(egui::vec2(1500.0, 1100.0))
        .with_context_setup(|ctx| {
            agent_desktop::fonts::install_cjk_font(ctx).expect("a CJK font (scripts/deps installs one)");
        })
        .build_ui_state(|ui, app: &mut AgentApp| app.ui(ui), app)
}

/// Steps the UI until `done` holds; the backend answers from its own thread meanwhile.
fn wait_until(h: &mut Harness<'static, AgentApp>, what: &str, done: impl Fn(&Harness<'static, AgentApp>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        h.step();
        if done(h) {
            return;
        }
        assert!(Instant::now() < deadline, "the desktop never showed {what}");
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Waits for a widget labelled exactly `text`.
fn wait_for_label(h: &mut Harness<'static, AgentApp>, text: &str) {
    wait_until(h, text, |h| h.query_by_label(text).is_some());
}

/// Waits for a widget whose label contains `text`.
fn wait_for_text(h: &mut Harness<'static, AgentApp>, text: &str) {
    wait_until(h, text, |h| h.query_all_by_label_contains(text).next().is_some());
}

fn type_into(h: &mut Harness<'static, AgentApp>, field: &str, text: &str) {
    h.get_by_label(field).focus();
    h.step();
    h.get_by_label(field).type_text(text);
    h.step();
}

fn click(h: &mut Harness<'static, AgentApp>, label: &str) {
    h.get_by_label(label).click();
    h.step();
}

/// Logs in as `user` through the login screen.
fn log_in(h: &mut Harness<'static, AgentApp>, user: &str, password: &str) {
    type_into(h, "用户名", user);
    type_into(h, "密码", password);
    click(h, "登录");
}

#[test]
fn login_shows_the_chinese_error_then_reaches_the_workstation_and_pins_the_certificate() {
    let daemon = Daemon::start_demo();
    let config = tempfile::tempdir().expect("config dir");
    let mut h = workstation(config.path(), &daemon);
    wait_for_text(&mut h, "未连接");

    log_in(&mut h, "agent1", "wrong-password");
    wait_for_label(&mut h, "用户名或密码错误");
    assert!(h.state().session.is_none());
    assert!(h.query_by_label("签入").is_none(), "still on the login screen");

    // The user name stays; the password field was cleared.
    type_into(&mut h, "密码", DEMO_PASSWORD);
    click(&mut h, "登录");
    wait_for_label(&mut h, "签入");
    wait_for_text(&mut h, "● 已连接");
    assert!(h.query_by_label_contains("王晓燕（话务员 工号1026）").is_some());
    let pins = std::fs::read_to_string(config.path().join("known_servers.json")).expect("pinned on first login");
    assert!(pins.contains(&daemon.fingerprint), "{pins}");
    let saved = Settings::load(config.path());
    assert_eq!((saved.server, saved.username), (daemon.desk_addr.to_string(), "agent1".to_owned()), "remembered for next time");

    // English on request, and back.
    click(&mut h, "English");
    wait_for_label(&mut h, "Sign in to queues");
    click(&mut h, "中文");
    wait_for_label(&mut h, "签入");
}

#[test]
fn a_changed_server_certificate_is_refused_with_a_warning() {
    let daemon = Daemon::start_demo();
    let config = tempfile::tempdir().expect("config dir");
    let pins = format!("{{\"{}\": \"00:11:22\"}}", daemon.desk_addr);
    std::fs::write(config.path().join("known_servers.json"), pins).expect("a stale pin");
    let mut h = workstation(config.path(), &daemon);
    log_in(&mut h, "agent1", DEMO_PASSWORD);
    wait_for_label(&mut h, "服务器证书已变更！");
    assert!(h.state().session.is_none(), "no session with a changed certificate");
    assert!(h.query_by_label_contains(&daemon.fingerprint).is_some(), "the presented fingerprint is shown");

    // The administrator confirmed the new certificate: trusted, then the login goes through.
    click(&mut h, "管理员已确认，信任新证书");
    wait_until(&mut h, "the old pin forgotten", |_| {
        std::fs::read_to_string(config.path().join("known_servers.json")).is_ok_and(|p| !p.contains("00:11:22"))
    });
    type_into(&mut h, "密码", DEMO_PASSWORD);
    click(&mut h, "登录");
    wait_for_label(&mut h, "签入");
}

#[test]
fn the_agent_signs_in_goes_ready_and_takes_a_break_with_a_reason() {
    let daemon = Daemon::start_demo();
    let config = tempfile::tempdir().expect("config dir");
    let mut h = workstation(config.path(), &daemon);
    log_in(&mut h, "agent1", DEMO_PASSWORD);
    wait_for_label(&mut h, "签入");

    click(&mut h, "签入");
    wait_for_text(&mut h, "状态：临时闭席（其他）");
    click(&mut h, "返回");
    wait_for_text(&mut h, "状态：就绪");
    assert_eq!(h.state().status.state, "ready");

    click(&mut h, "用餐");
    click(&mut h, "临时闭席");
    wait_for_text(&mut h, "状态：临时闭席（用餐）");
    assert_eq!(h.state().status.reason.as_deref(), Some("meal"));

    click(&mut h, "签出");
    wait_for_text(&mut h, "状态：未签入");
}

#[test]
fn intake_shows_a_validation_error_beside_the_field_then_the_ticket_number_to_read_out() {
    let daemon = Daemon::start_demo();
    let config = tempfile::tempdir().expect("config dir");
    let mut h = workstation(config.path(), &daemon);
    log_in(&mut h, "agent1", DEMO_PASSWORD);
    wait_for_label(&mut h, "保存工单");

    // No summary and a malformed number: both said in Chinese beside their fields.
    type_into(&mut h, "联系电话", "138-0013-8000x");
    click(&mut h, "保存工单");
    wait_for_label(&mut h, "请填写摘要（1至200字）");
    assert!(h.query_by_label("电话号码应为3至20位数字").is_some());
    assert!(h.query_by_label("请更正标红的内容").is_some());

    // Corrected, with a category found by searching the tree.
    h.get_by_label("联系电话").focus();
    h.step();
    h.key_press(egui::Key::Backspace);
    h.step();
    type_into(&mut h, "摘要", "小区电梯多次困人，物业不处理");
    type_into(&mut h, "搜索分类", "电梯");
    wait_for_label(&mut h, "04.01 特种设备 › 电梯");
    click(&mut h, "04.01 特种设备 › 电梯");
    click(&mut h, "保存工单");
    wait_for_text(&mut h, "工单编号：");
    let (no, code) = h.state().intake.saved.clone().expect("saved");
    assert!(h.query_by_label(&format!("工单编号：{no}")).is_some());
    assert!(h.query_by_label(&format!("查询验证码：{code}")).is_some());
    assert_eq!(code.len(), 6);

    // What the server stored is what was typed.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ticket = rt.block_on(async {
        let c = daemon.login_demo("agent1").await;
        c.get_ticket(&TicketNo::parse(no.as_ref()).expect("number")).await.expect("the ticket")
    });
    assert_eq!(ticket.summary, "小区电梯多次困人，物业不处理");
    assert_eq!(ticket.caller.phone.map(|p| p.to_string()), Some("13800138000".into()));
    assert_eq!(ticket.category_code.as_deref(), Some("04.01"));
    assert_eq!(ticket.verification_code.as_deref(), Some(code.as_str()));

    // The list finds it, and its detail shows the history and the agent's actions.
    click(&mut h, "工单查询");
    type_into(&mut h, "关键词", "电梯多次困人");
    click(&mut h, "查询");
    wait_for_label(&mut h, no.as_ref());
    click(&mut h, no.as_ref());
    wait_for_label(&mut h, "办理记录");
    click(&mut h, "受理");
    wait_until(&mut h, "the ticket accepted", |h| h.state().tickets.detail.as_ref().is_some_and(|t| t.state == rexian_shared::TicketState::Accepted));
    assert!(h.query_by_label_contains("状态：已受理").is_some());
}

#[test]
fn an_offered_call_pops_the_caller_and_is_answered_from_the_softphone() {
    let daemon = Daemon::start_demo();
    let config = tempfile::tempdir().expect("config dir");
    let mut h = workstation(config.path(), &daemon);
    log_in(&mut h, "agent1", DEMO_PASSWORD);
    wait_for_label(&mut h, "签入");

    // A caller dials 8001, which the demo routes to agent1's desk.
    let target = daemon.sip_addr;
    let steps = vec![CallerStep::Pause(6000)];
    let caller = std::thread::spawn(move || sipp_caller(target, "8001", "13800138000", &steps, false));
    wait_for_text(&mut h, "来电：13800138000");
    // Screen pop: the profile beside a form prefilled with the number and the call record.
    wait_for_label(&mut h, "来电人档案");
    assert_eq!(h.state().intake.phone, "13800138000");
    assert!(h.state().intake.call_record.is_some(), "the offer's call record is linked");
    click(&mut h, "接听");
    wait_for_text(&mut h, "通话中：13800138000");
    assert!(h.query_by_label("挂断").is_some());
    assert!(h.query_by_label("转满意度评价").is_some());
    // The caller hangs up after its pause.
    wait_for_text(&mut h, "通话已结束（caller_hangup）");
    caller.join().expect("the caller completed");
}
