//! Consultations with the knowledge base (TKT-3, KB-1), caller and enterprise profiles (CRM-1),
//! split and merge (TKT-4) and attachments, through the real daemon over QUIC.

use base64::Engine;
use rexian_shared::client::ClientError;
use rexian_shared::*;
use rexian_tests::Daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_search_finds_terms_inside_longer_words_and_ranks_titles_first() {
    let daemon = Daemon::start_demo();
    let supervisor = daemon.login_demo("supervisor").await;
    let agent = daemon.login_demo("agent1").await;

    let hits = agent.search_articles("特种设备", 10).await.expect("search");
    // Found inside the longer word 特种设备安全监察条例, and every article with the term in its
    // title ranks above those that only mention it in the body.
    assert!(hits.iter().any(|h| h.title == "特种设备安全监察条例（摘要）"), "{hits:?}");
    let title_hits = hits.iter().take_while(|h| h.title.contains("特种设备")).count();
    assert_eq!(title_hits, 2, "{hits:?}");
    assert!(hits.len() > 2 && hits[2..].iter().all(|h| !h.title.contains("特种设备")), "{hits:?}");
    assert!(hits.iter().all(|h| h.snippet.contains("特种设备")));
    // A two-character term inside a longer word, and a single character.
    assert!(agent.search_articles("计量", 10).await.expect("search").iter().any(|h| h.title.contains("计量法")));
    assert!(!agent.search_articles("秤", 10).await.expect("search").is_empty());
    // Characters that are not next to each other do not make a phrase match.
    assert!(agent.search_articles("设备特种", 10).await.expect("search").is_empty());
    // Query syntax is never interpreted.
    agent.search_articles("\"特种 OR NEAR(", 10).await.expect("operators are plain text");

    // Drafts are found only by editors who ask for them.
    let draft = ArticleInput {
        id: None,
        kind: ArticleKind::Faq,
        title: "气瓶充装站检查要点（草稿）".into(),
        body: "检查气瓶充装许可证、充装前后检查记录。".into(),
        published: false,
        for_ivr: false,
    };
    let Response::Article { article } = supervisor.request(Request::SaveArticle { article: draft }).await.expect("save") else {
        panic!("article")
    };
    assert!(agent.search_articles("气瓶充装", 10).await.expect("search").is_empty());
    let Response::ArticleHits { hits } =
        supervisor.request(Request::SearchArticles { query: "气瓶充装".into(), limit: 5, include_drafts: true }).await.expect("search")
    else {
        panic!("hits")
    };
    assert_eq!(hits.first().map(|h| h.id), Some(article.id));
    let err = agent.request(Request::SaveArticle {
        article: ArticleInput { id: Some(article.id), kind: ArticleKind::Faq, title: "t".into(), body: "b".into(), published: true, for_ivr: false },
    });
    assert_eq!(err.await.expect_err("agents do not edit").code(), Some(ErrorCode::Forbidden));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consultation_answered_directly_or_later_and_earlier_answers_found() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let hit = agent.search_articles("生产许可证", 5).await.expect("kb").into_iter().next().expect("guide");
    // Earlier answered consultations serve as reference answers.
    let earlier = agent
        .search_tickets(TicketQuery {
            kinds: vec![TicketKind::Consultation],
            states: vec![TicketState::Closed],
            text: Some("生产许可证".into()),
            ..TicketQuery::default()
        })
        .await
        .expect("reference answers");
    let reference = earlier.items.first().expect("the demo has an answered consultation").no.clone();

    let phone = PhoneNumber::parse("13655556666").expect("phone");
    let c = agent
        .create_ticket(NewTicket::phone(TicketKind::Consultation, Some(phone.clone()), "咨询生产许可证有效期", "许可证多久到期？"))
        .await
        .expect("register");
    let answered = agent
        .act(
            &c.no,
            TicketAction::AnswerDirectly { answer: "有效期五年，详见办事指南。".into(), cited_articles: vec![hit.id], cited_tickets: vec![reference.clone()] },
        )
        .await
        .expect("answer");
    assert_eq!(answered.state, TicketState::Closed);
    assert_eq!(answered.answer.as_deref(), Some("有效期五年，详见办事指南。"));
    assert!(answered.links.iter().any(|l| l.no == reference && l.relation == "cites"));
    assert_eq!(answered.cited_articles, vec![hit.id]);

    // "Cannot answer now" turns it into a later-reply record with contact details and a deadline.
    let later = agent
        .create_ticket(NewTicket::phone(TicketKind::Consultation, Some(phone), "进口压力容器监检要求", "需要哪些材料"))
        .await
        .expect("register");
    let deferred = agent.act(&later.no, TicketAction::DeferAnswer { contact_note: "明天上午回电 13655556666".into() }).await.expect("defer");
    assert_eq!(deferred.state, TicketState::LaterReply);
    assert_eq!(deferred.stage, Some(DeadlineStage::LaterReply));
    assert!(deferred.due_date.is_some());
    let due = agent.request(Request::DueTickets { within_working_days: 10 }).await.expect("due list");
    let Response::Tickets { page } = due else { panic!("tickets") };
    assert!(page.items.iter().any(|s| s.no == later.no), "the later reply is on the due list");

    // A complaint cannot be answered directly.
    let complaint = agent.create_ticket(NewTicket::phone(TicketKind::Complaint, None, "投诉", "x")).await.expect("register");
    let err = agent
        .act(&complaint.no, TicketAction::AnswerDirectly { answer: "x".into(), cited_articles: vec![], cited_tickets: vec![] })
        .await
        .expect_err("complaints need handling");
    assert_eq!(err.code(), Some(ErrorCode::InvalidTransition));
}

/// TKT-3: what an agent types into a consultation brings up reference answers — articles and
/// earlier answered consultations sharing its words, though not as one phrase; a confidential
/// caller's answered ticket is never offered, and a department handler gets articles only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_a_consultation_suggests_articles_and_earlier_answers() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let (articles, answers) = agent.suggest_answers("来电人想知道生产许可证多久到期").await.expect("suggestions");
    assert!(articles.iter().any(|a| a.title.contains("生产许可证")), "{articles:?}");
    assert!(articles.iter().all(|a| a.published));
    let reference = answers.first().expect("the demo's answered consultation on 生产许可证");
    assert!(reference.summary.contains("生产许可证") && !reference.answer.is_empty(), "{reference:?}");

    // A confidential caller's answered consultation stays out of the suggestions.
    let mut secret = NewTicket::phone(TicketKind::Consultation, None, "咨询锅炉压力容器检验周期", "锅炉多久检验一次");
    secret.confidential = true;
    let secret = agent.create_ticket(secret).await.expect("register");
    agent
        .act(&secret.no, TicketAction::AnswerDirectly { answer: "每年一次。".into(), cited_articles: vec![], cited_tickets: vec![] })
        .await
        .expect("answer");
    let open = agent.create_ticket(NewTicket::phone(TicketKind::Consultation, None, "咨询锅炉检验", "锅炉检验周期是多久")).await.expect("register");
    agent
        .act(&open.no, TicketAction::AnswerDirectly { answer: "一般每年定期检验。".into(), cited_articles: vec![], cited_tickets: vec![] })
        .await
        .expect("answer");
    let (_, answers) = agent.suggest_answers("锅炉检验周期").await.expect("suggestions");
    assert_eq!(answers.iter().map(|a| a.no.clone()).collect::<Vec<_>>(), vec![open.no.clone()], "only the open caller's answer");

    let handler = daemon.login_demo("quality").await;
    let (articles, answers) = handler.suggest_answers("生产许可证多久到期").await.expect("handler suggestions");
    assert!(!articles.is_empty() && answers.is_empty(), "handlers get articles only");
    let err = agent.suggest_answers("  ").await.expect_err("blank");
    assert_eq!(err.code(), Some(ErrorCode::InvalidField));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_history_across_channels_split_and_merge() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let supervisor = daemon.login_demo("supervisor").await;
    let phone = PhoneNumber::parse("+86 186-0001-0002").expect("phone");
    let company = CreditCode::with_check("91110101MA0000001").expect("code");
    let subject = SubjectInfo { name: "某电器销售有限公司".into(), credit_code: Some(company.clone()), address: None };

    let mut by_phone = NewTicket::phone(TicketKind::Complaint, Some(phone.clone()), "电饭煲内胆脱漆", "要求退货");
    by_phone.subject = Some(subject.clone());
    let first = agent.create_ticket(by_phone).await.expect("phone ticket");
    let mut by_web = NewTicket::phone(TicketKind::Report, Some(phone.clone()), "举报销售无3C认证插线板", "网上举报");
    by_web.channel = Channel::Web;
    by_web.subject = Some(subject);
    let second = agent.create_ticket(by_web).await.expect("web ticket");

    let profile = agent.caller_profile(&phone).await.expect("profile");
    assert_eq!(profile.phone.as_ref(), "18600010002");
    assert_eq!(profile.ticket_count, 2);
    assert!(profile.repeat_caller && profile.repeat_complainant);
    let channels: Vec<Channel> = profile.history.iter().map(|t| t.channel).collect();
    assert!(channels.contains(&Channel::Phone) && channels.contains(&Channel::Web));
    supervisor
        .request(Request::SetCallerFlags { phone: phone.clone(), vip: true, blocked: false })
        .await
        .expect("flag");
    assert!(agent.caller_profile(&phone).await.expect("profile").vip);
    let Response::EnterpriseProfile { profile } =
        agent.request(Request::GetEnterpriseProfile { credit_code: company }).await.expect("enterprise")
    else {
        panic!("enterprise")
    };
    assert_eq!(profile.complaints_against, 2);

    // One intake split into a complaint and a report, linked both ways.
    let Response::TicketNos { nos } = agent
        .request(Request::SplitTicket {
            no: first.no.clone(),
            parts: vec![
                SplitPart { kind: TicketKind::Complaint, summary: "退货纠纷".into(), content: "要求退货".into() },
                SplitPart { kind: TicketKind::Report, summary: "涉嫌销售不合格产品".into(), content: "内胆脱漆".into() },
            ],
        })
        .await
        .expect("split")
    else {
        panic!("nos")
    };
    assert_eq!(nos.len(), 2);
    let original = agent.get_ticket(&first.no).await.expect("original");
    assert_eq!(original.links.iter().filter(|l| l.relation == "split_into").count(), 2);
    let part = agent.get_ticket(&nos[1]).await.expect("part");
    assert_eq!(part.kind, TicketKind::Report);
    assert_eq!(part.caller.phone, Some(phone.clone()));
    assert_eq!(part.stage, Some(DeadlineStage::Acceptance));

    // A duplicate merged into the first.
    let merged = agent.act(&second.no, TicketAction::MergeInto { target: first.no.clone() }).await.expect("merge");
    assert_eq!(merged.state, TicketState::Merged);
    assert_eq!(merged.merged_into.as_ref(), Some(&first.no));
    let target = agent.get_ticket(&first.no).await.expect("target");
    assert!(target.links.iter().any(|l| l.no == second.no && l.relation == "merged_from"));
    let err = agent.act(&first.no, TicketAction::MergeInto { target: first.no.clone() }).await.expect_err("not into itself");
    assert_eq!(err.code(), Some(ErrorCode::InvalidField));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_typed_and_size_limited() {
    let daemon = Daemon::start_demo();
    let agent = daemon.login_demo("agent1").await;
    let t = agent.create_ticket(NewTicket::phone(TicketKind::Complaint, None, "来信投诉", "见扫描件")).await.expect("t");
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let attach = |name: &str, mime: &str, data: Vec<u8>| Request::AddAttachment {
        no: t.no.clone(),
        name: name.into(),
        mime: mime.into(),
        data_base64: b64(&data),
    };
    let err = agent.request(attach("x.exe", "application/x-msdownload", b"MZ".to_vec())).await.expect_err("type");
    let ClientError::Desk(e) = err else { panic!("desk error") };
    assert_eq!(e.field.as_deref(), Some("mime"));
    let err = agent.request(attach("fake.pdf", "application/pdf", b"not a pdf".to_vec())).await.expect_err("content");
    assert_eq!(err.code(), Some(ErrorCode::InvalidField));
    let err = agent.request(attach("big.pdf", "application/pdf", [b"%PDF".to_vec(), vec![0; 11 * 1024 * 1024]].concat())).await;
    assert_eq!(err.expect_err("too large").code(), Some(ErrorCode::TooLarge));
    agent.request(attach("../../etc/passwd.txt", "text/plain", "来信正文".as_bytes().to_vec())).await.expect("text attachment");
    let t = agent.get_ticket(&t.no).await.expect("t");
    assert_eq!(t.attachments.len(), 1);
    let files: Vec<_> = walk(&daemon.data_dir.join("attachments"));
    assert!(files.iter().all(|f| f.starts_with(daemon.data_dir.join("attachments"))), "{files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
