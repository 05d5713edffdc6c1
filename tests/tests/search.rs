//! Ticket search and lists with filters and pages (TKT-4 "search and list"), as an agent uses
//! them, and the saved filters (常用筛选) each user keeps.

use rexian_shared::client::ClientError;
use rexian_shared::*;
use rexian_tests::{today_cst, Daemon};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_combine_and_pages_cover_everything() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let all = agent.search_tickets(TicketQuery::default()).await.expect("all");
    assert!(all.total >= 15, "the demo has tickets in every state");
    let states: std::collections::BTreeSet<_> = all.items.iter().map(|t| t.state).collect();
    for s in TicketState::ALL {
        assert!(states.contains(s), "demo has a ticket in state {s}");
    }

    for (i, kind) in [TicketKind::Complaint, TicketKind::Report, TicketKind::Suggestion].into_iter().enumerate() {
        let mut t = NewTicket::phone(kind, None, &format!("锅炉安全隐患{i}"), "锅炉房无人值守");
        t.channel = if i == 0 { Channel::Email } else { Channel::Letter };
        t.category_code = Some("04.02".into());
        agent.create_ticket(t).await.expect("create");
    }
    let q = |f: &dyn Fn(&mut TicketQuery)| {
        let mut q = TicketQuery::default();
        f(&mut q);
        q
    };
    let by_text = agent.search_tickets(q(&|q| q.text = Some("锅炉安全".into()))).await.expect("text");
    assert_eq!(by_text.total, 3);
    let by_category = agent.search_tickets(q(&|q| q.category_code = Some("04".into()))).await.expect("category");
    assert!(by_category.items.iter().all(|t| t.summary.contains("锅炉")) && by_category.total == 3, "04 includes 04.02");
    let letters = agent.search_tickets(q(&|q| {
        q.channel = Some(Channel::Letter);
        q.kinds = vec![TicketKind::Report, TicketKind::Suggestion];
        q.text = Some("锅炉".into());
    }));
    assert_eq!(letters.await.expect("combined").total, 2);
    let today = today_cst();
    let recent = agent.search_tickets(q(&|q| q.created_from = Some(today))).await.expect("dates");
    assert!(recent.items.iter().all(|t| t.created_at.date() >= today));
    let old = agent.search_tickets(q(&|q| q.created_to = Some(today.pred_opt().expect("d")))).await.expect("dates");
    assert_eq!(recent.total + old.total, all.total + 3);
    let overdue = agent.search_tickets(q(&|q| q.overdue_only = true)).await.expect("overdue");
    assert!(overdue.total > 0 && overdue.items.iter().all(|t| t.overdue && t.due_date.is_some_and(|d| d < today)));

    // Pages of 4 cover every ticket once, newest first.
    let total = all.total + 3;
    let mut seen = Vec::new();
    for page in 0..total.div_ceil(4) as u32 {
        let p = agent.search_tickets(q(&|q| {
            q.page = page;
            q.page_size = 4;
        }));
        let p = p.await.expect("page");
        assert_eq!(p.total, total);
        seen.extend(p.items.into_iter().map(|t| (t.created_at, t.no)));
    }
    assert_eq!(seen.len() as u64, total);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    let mut unique = seen.clone();
    unique.dedup_by(|a, b| a.1 == b.1);
    assert_eq!(unique.len(), seen.len());
}

/// Open tickets whose reminder (催办) time has come, and no others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_due_lists_the_tickets_whose_reminder_has_come() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let now = (chrono::Utc::now() + chrono::Duration::hours(8)).naive_utc();
    let mut nos = Vec::new();
    for (summary, at) in [("催办已到", now - chrono::Duration::minutes(1)), ("催办未到", now + chrono::Duration::days(1))] {
        let t = agent.create_ticket(NewTicket::phone(TicketKind::Complaint, None, summary, "")).await.expect("create");
        let remind = Request::SetReminder { no: t.no.clone(), at, note: "请尽快办理".into() };
        agent.request(remind).await.expect("reminder");
        nos.push(t.no);
    }
    let due = agent.search_tickets(TicketQuery { reminder_due_only: true, ..TicketQuery::default() }).await.expect("search");
    assert_eq!(due.items.iter().map(|t| &t.no).collect::<Vec<_>>(), [&nos[0]], "{due:#?}");
}

/// 常用筛选 over the desk protocol: each user sees, replaces and deletes only their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_filters_belong_to_their_user_and_follow_the_login() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let elevators = TicketQuery { category_code: Some("04.01".into()), channel: Some(Channel::Letter), page: 2, page_size: 50, ..TicketQuery::default() };
    let saved = agent.save_filter(" 电梯来信 ", elevators.clone()).await.expect("save");
    assert_eq!(saved.iter().map(|f| (f.name.as_str(), &f.query)).collect::<Vec<_>>(), [("电梯来信", &TicketQuery { page: 0, ..elevators.clone() })]);
    for bad in ["", "   ", &"名".repeat(31)] {
        let e = agent.save_filter(bad, TicketQuery::default()).await.expect_err("bad name");
        let ClientError::Desk(e) = e else { panic!("desk error") };
        assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidField, Some("name")));
        assert!(e.message.contains("1至30个字"), "{}", e.message);
    }

    // Another desk, the same user: the same filters. Another user: none, and none to delete.
    let again = daemon.login_demo("agent1").await;
    assert_eq!(again.saved_filters().await.expect("list"), saved);
    let other = daemon.login_demo("agent2").await;
    assert!(other.saved_filters().await.expect("list").is_empty());
    let e = other.delete_saved_filter("电梯来信").await.expect_err("not theirs");
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    let theirs = other.save_filter("电梯来信", TicketQuery { overdue_only: true, ..TicketQuery::default() }).await.expect("their own");
    assert!(theirs[0].query.overdue_only);
    assert_eq!(again.saved_filters().await.expect("list"), saved, "untouched by agent2's filter of the same name");

    // The same name replaces; department handlers keep filters too.
    let replaced = again.save_filter("电梯来信", TicketQuery { text: Some("困人".into()), ..elevators }).await.expect("replace");
    assert_eq!((replaced.len(), replaced[0].query.text.as_deref()), (1, Some("困人")));
    let handler = daemon.login_demo("quality").await;
    assert_eq!(handler.save_filter("我的待签收", TicketQuery { states: vec![TicketState::Dispatched], ..TicketQuery::default() }).await.expect("handler").len(), 1);

    // At most 50 each; at the limit a new name is refused but an existing one may be replaced.
    for i in 1..50 {
        agent.save_filter(&format!("筛选{i}"), TicketQuery::default()).await.expect("save");
    }
    let e = agent.save_filter("第五十一个", TicketQuery::default()).await.expect_err("too many");
    assert_eq!(e.code(), Some(ErrorCode::TooLarge));
    assert_eq!(agent.save_filter("筛选1", TicketQuery { overdue_only: true, ..TicketQuery::default() }).await.expect("replace at the limit").len(), 50);
    let left = agent.delete_saved_filter("电梯来信").await.expect("delete");
    assert!(left.len() == 49 && left.iter().all(|f| f.name != "电梯来信"));
    assert_eq!(other.saved_filters().await.expect("list").len(), 1, "agent2's own is still there");
}
