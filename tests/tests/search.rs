//! Ticket search and lists with filters and pages (TKT-4 "search and list"), as an agent uses them.

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
