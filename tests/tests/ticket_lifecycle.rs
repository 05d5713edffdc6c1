//! The whole life of a complaint as users live it, over real QUIC against the real daemon:
//! register, accept, dispatch, acknowledge, reply, callback, close — with every statutory
//! deadline checked across a holiday with a make-up Saturday (调休), and another department's
//! handler refused.

use chrono::{Datelike, NaiveDate, Weekday};
use rexian_shared::*;
use rexian_tests::{today_cst, Daemon};
use std::collections::BTreeMap;
use std::time::Duration;

/// An independent reference: walks day by day over the calendar the server holds.
fn add_working_days(overrides: &BTreeMap<NaiveDate, DayKind>, start: NaiveDate, n: u32) -> NaiveDate {
    let mut day = start;
    let mut counted = 0;
    while counted < n {
        day = day.succ_opt().expect("date");
        let working = match overrides.get(&day) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
        };
        if working {
            counted += 1;
        }
    }
    day
}

/// Declares the next three weekdays a holiday and the Saturday after them a make-up workday,
/// so every deadline counted from today crosses both.
fn holiday_ahead(today: NaiveDate) -> Vec<CalendarDay> {
    let mut days = Vec::new();
    let mut d = today;
    while days.len() < 3 {
        d = d.succ_opt().expect("date");
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            days.push(CalendarDay { date: d, kind: DayKind::Holiday, name: "测试假日".into() });
        }
    }
    while d.weekday() != Weekday::Sat {
        d = d.succ_opt().expect("date");
    }
    days.push(CalendarDay { date: d, kind: DayKind::Workday, name: "测试调休".into() });
    days
}

async fn server_calendar(admin: &client::DeskClient, years: &[i32]) -> BTreeMap<NaiveDate, DayKind> {
    let mut map = BTreeMap::new();
    for y in years {
        let Response::Calendar { days } = admin.request(Request::ListCalendar { year: *y }).await.expect("calendar") else {
            panic!("calendar reply")
        };
        map.extend(days.into_iter().map(|d| (d.date, d.kind)));
    }
    map
}

async fn department_id(c: &client::DeskClient, name: &str) -> i64 {
    c.departments().await.expect("departments").into_iter().find(|d| d.name == name).expect(name).id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaint_from_registration_to_closure() {
    let daemon = Daemon::start_demo();
    let today = today_cst();

    // The administrator declares a holiday ahead with a 调休 Saturday.
    let admin = daemon.login_demo("admin").await;
    let holiday = holiday_ahead(today);
    let workday = holiday.last().expect("workday").date;
    admin.request(Request::SetCalendarDays { days: holiday }).await.expect("set calendar");
    let cal = server_calendar(&admin, &[today.year(), today.year() + 1]).await;

    // An agent registers a complaint taken on the phone.
    let agent = daemon.login_demo("agent1").await;
    let mut new = NewTicket::phone(
        TicketKind::Complaint,
        Some(PhoneNumber::parse("13812345678").expect("phone")),
        "电梯频繁困人",
        "来电人反映小区3号楼电梯一周内困人两次，物业未处理。",
    );
    new.caller.name = Some("刘女士".into());
    new.caller.id_number = Some("110101199003071234".into());
    new.category_code = Some("04.01".into());
    new.subject = Some(SubjectInfo { name: "某物业管理有限公司".into(), credit_code: None, address: Some("东城区某小区".into()) });
    let t = agent.create_ticket(new).await.expect("register");
    assert_eq!(t.state, TicketState::Registered);
    assert!(t.no.as_ref().starts_with(&today.format("%Y%m%d").to_string()), "number starts with the date: {}", t.no);
    assert_eq!(t.verification_code.as_deref().map(str::len), Some(6));
    assert_eq!(t.stage, Some(DeadlineStage::Acceptance));
    let acceptance = add_working_days(&cal, today, 7);
    assert_eq!(t.due_date, Some(acceptance), "complaint acceptance: 7 working days");
    assert!(acceptance > workday, "the acceptance deadline crosses the holiday and the 调休 Saturday");

    // Accept and dispatch to the special-equipment office.
    let equipment = department_id(&agent, "特种设备安全监察处").await;
    let quality = department_id(&agent, "产品质量安全监督管理处").await;
    let t = agent.act(&t.no, TicketAction::Accept { note: "属于受理范围".into() }).await.expect("accept");
    assert_eq!(t.state, TicketState::Accepted);

    // The handler is logged in and subscribed before the dispatch arrives.
    let handler = daemon.login_demo("equipment").await;
    handler.subscribe().await.expect("subscribe");
    let t = agent
        .act(&t.no, TicketAction::Dispatch { lead_department: equipment, assisting_departments: vec![quality], note: "请5个工作日内办结".into() })
        .await
        .expect("dispatch");
    assert_eq!(t.state, TicketState::Dispatched);
    assert_eq!(t.stage, Some(DeadlineStage::Handling));
    assert_eq!(t.due_date, Some(add_working_days(&cal, today, 5)), "department handling: 5 working days");
    let event = tokio::time::timeout(Duration::from_secs(5), handler.next_event()).await.expect("event in time").expect("event");
    assert_eq!(event, Event::TicketChanged { no: t.no.clone(), state: TicketState::Dispatched, action: "dispatch".into(), actor: "agent1".into() });

    // The handler sees the ticket with personal data masked.
    let seen = handler.get_ticket(&t.no).await.expect("handler reads own department's ticket");
    assert_eq!(seen.caller_phone_display.as_deref(), Some("138****5678"));
    assert_eq!(seen.caller.phone, None);
    assert_eq!(seen.caller.id_number.as_deref(), Some("1101**********1234"));
    assert_eq!(seen.verification_code, None);
    let listed = handler.search_tickets(TicketQuery { text: Some("电梯".into()), ..TicketQuery::default() }).await.expect("search");
    assert!(listed.items.iter().any(|s| s.no == t.no && s.caller_phone.as_deref() == Some("138****5678")));

    // A handler of another department is refused, whatever they try.
    let other = daemon.login_demo("metrology").await;
    let err = other.get_ticket(&t.no).await.expect_err("other department refused");
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    let err = other.act(&t.no, TicketAction::Acknowledge).await.expect_err("other department cannot act");
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    let page = other.search_tickets(TicketQuery::default()).await.expect("search");
    assert!(page.items.iter().all(|s| s.no != t.no), "not even listed");
    // The assisting department may see it but not reply.
    let assisting = daemon.login_demo("quality").await;
    assisting.get_ticket(&t.no).await.expect("assisting department reads");
    let err = assisting.act(&t.no, TicketAction::Reply { text: "x".into() }).await.expect_err("assisting cannot reply");
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));

    // An invalid transition names the state.
    let err = handler.act(&t.no, TicketAction::Reply { text: "先答复".into() }).await.expect_err("reply before acknowledging");
    assert_eq!(err.code(), Some(ErrorCode::InvalidTransition));
    assert!(err.to_string().contains("已转办"), "{err}");

    let t = handler.act(&t.no, TicketAction::Acknowledge).await.expect("acknowledge");
    assert_eq!(t.state, TicketState::Acknowledged);
    let t = handler.act(&t.no, TicketAction::StartHandling).await.expect("start");
    let t = handler
        .act(&t.no, TicketAction::Reply { text: "经现场检查，责令物业立即维修并加强维保，电梯已恢复正常。".into() })
        .await
        .expect("reply");
    assert_eq!(t.state, TicketState::Replied);
    assert_eq!(t.stage, Some(DeadlineStage::Callback));
    assert_eq!(t.due_date, Some(add_working_days(&cal, today, 1)), "callback: 1 working day after the reply");

    // The agent calls the caller back and closes the ticket.
    let t = agent
        .act(&t.no, TicketAction::Callback { satisfaction: Satisfaction::VerySatisfied, note: "来电人表示满意".into() })
        .await
        .expect("callback");
    assert_eq!(t.state, TicketState::CalledBack);
    let t = agent.act(&t.no, TicketAction::Close { note: "办结".into() }).await.expect("close");
    assert_eq!(t.state, TicketState::Closed);
    assert_eq!(t.due_date, None);
    assert_eq!(t.satisfaction, Some(Satisfaction::VerySatisfied));

    // The history is the audit trail of every step, with who did it.
    let steps: Vec<(&str, &str)> = t.history.iter().map(|h| (h.action.as_str(), h.actor.as_str())).collect();
    assert_eq!(
        steps,
        [
            ("register", "agent1"),
            ("accept", "agent1"),
            ("dispatch", "agent1"),
            ("acknowledge", "equipment"),
            ("start_handling", "equipment"),
            ("reply", "equipment"),
            ("callback", "agent1"),
            ("close", "agent1"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_extensions_reopen_and_waiting_for_the_caller() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let supervisor = daemon.login_demo("supervisor").await;
    let handler = daemon.login_demo("metrology").await;
    let metrology = department_id(&agent, "计量处").await;
    let t = agent
        .create_ticket(NewTicket::phone(TicketKind::Complaint, None, "农贸市场电子秤不准", "缺斤短两"))
        .await
        .expect("register");
    let dispatch = TicketAction::Dispatch { lead_department: metrology, assisting_departments: vec![], note: String::new() };
    agent.act(&t.no, dispatch.clone()).await.expect("dispatch");
    handler.act(&t.no, TicketAction::Acknowledge).await.expect("ack");

    // Extension: requested by the handler, bounded, approved by the supervisor.
    let before = handler.get_ticket(&t.no).await.expect("get").due_date.expect("due");
    let err = handler
        .act(&t.no, TicketAction::RequestExtension { working_days: 11, reason: "需送检".into() })
        .await
        .expect_err("too long");
    assert_eq!(err.code(), Some(ErrorCode::InvalidField));
    handler.act(&t.no, TicketAction::RequestExtension { working_days: 3, reason: "需送检".into() }).await.expect("request");
    let err = handler
        .act(&t.no, TicketAction::DecideExtension { approve: true, note: String::new() })
        .await
        .expect_err("handler cannot approve");
    assert_eq!(err.code(), Some(ErrorCode::Forbidden));
    let t2 = supervisor.act(&t.no, TicketAction::DecideExtension { approve: true, note: "同意".into() }).await.expect("approve");
    assert!(t2.due_date.expect("due") > before);
    assert_eq!(t2.extended_days, 3);

    // Waiting for the caller pauses the deadline; it is not overdue while paused.
    let paused = handler.act(&t.no, TicketAction::WaitForCaller { note: "等待补充票据".into() }).await.expect("pause");
    assert!(paused.paused_since.is_some());
    let resumed = handler.act(&t.no, TicketAction::ResumeFromCaller).await.expect("resume");
    assert_eq!(resumed.paused_since, None);

    // Returned to the hotline, dispatched again, replied, caller dissatisfied → reopened.
    let ret = handler.act(&t.no, TicketAction::Return { reason: "应由区分局办理".into() }).await.expect("return");
    assert_eq!(ret.state, TicketState::Returned);
    assert_eq!(ret.lead_department, None);
    assert_eq!(handler.get_ticket(&t.no).await.expect_err("no longer theirs").code(), Some(ErrorCode::NotFound));
    agent.act(&t.no, dispatch).await.expect("dispatch again");
    handler.act(&t.no, TicketAction::Acknowledge).await.expect("ack");
    handler.act(&t.no, TicketAction::Reply { text: "已责令整改".into() }).await.expect("reply");
    agent
        .act(&t.no, TicketAction::Callback { satisfaction: Satisfaction::Dissatisfied, note: "认为处理太轻".into() })
        .await
        .expect("callback");
    let reopened = agent.act(&t.no, TicketAction::Reopen { reason: "来电人不满意".into() }).await.expect("reopen");
    assert_eq!(reopened.state, TicketState::Accepted);
    assert_eq!(reopened.reopen_count, 1);

    // Supervision (督办) and a reminder (催办) that fires as an event to the department and
    // to the supervisor who set it, not to other hotline staff.
    handler.subscribe().await.expect("subscribe");
    supervisor.subscribe().await.expect("subscribe");
    agent.subscribe().await.expect("subscribe");
    let dispatched = agent
        .act(&t.no, TicketAction::Dispatch { lead_department: metrology, assisting_departments: vec![], note: String::new() })
        .await
        .expect("dispatch a third time");
    let sup = supervisor.act(&dispatched.no, TicketAction::Supervise { note: "重点督办".into() }).await.expect("supervise");
    assert!(sup.supervised);
    let at = (chrono::Utc::now() + chrono::Duration::hours(8)).naive_utc();
    supervisor
        .request(Request::SetReminder { no: t.no.clone(), at, note: "请今日内答复".into() })
        .await
        .expect("reminder");
    let reminded = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match handler.next_event().await {
                Some(Event::ReminderDue { no, note, .. }) => break (no, note),
                Some(_) => continue,
                None => panic!("connection closed"),
            }
        }
    })
    .await
    .expect("reminder within 10 s");
    assert_eq!(reminded, (t.no.clone(), "请今日内答复".to_owned()));
    let id = reminder_to(&supervisor).await.expect("the supervisor who set it is reminded");
    assert_eq!(reminder_to(&agent).await, None, "other agents are not");
    let listed = supervisor.reminders().await.expect("list");
    assert!(listed.iter().any(|r| r.id == id && r.fired), "{listed:#?}");
    supervisor.dismiss_reminder(id).await.expect("dismissed");
    assert!(supervisor.reminders().await.expect("list").is_empty());
    assert!(handler.reminders().await.expect("list").iter().any(|r| r.id == id), "the department keeps its own");
}

/// The id of the next reminder pushed to `desk` within two seconds.
async fn reminder_to(desk: &rexian_shared::client::DeskClient) -> Option<i64> {
    let wait = async {
        loop {
            match desk.next_event().await {
                Some(Event::ReminderDue { id, .. }) => break Some(id),
                Some(_) => continue,
                None => break None,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), wait).await.ok().flatten()
}
