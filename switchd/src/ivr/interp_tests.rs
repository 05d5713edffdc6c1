//! The interpreter on a virtual clock: the shipped 12365 flow walked key by key, as a caller
//! would, with the driver's results scripted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rexian_shared::{ArticleKind, Survey, SurveyQuestion, SurveyScale, TicketKind};

use super::flow::{Delivery, Flow, DEFAULT_FLOW_YAML};
use super::interp::*;
use crate::calendar::{statutory_seed, Calendar};

/// A call through the interpreter: `next` drains commands up to the awaited one, keeping what
/// was said and the side effects; the virtual clock moves a second per awaited step.
struct Sim {
    it: Interpreter,
    now: Instant,
    said: Vec<String>,
    effects: Vec<Command>,
}

fn flows_with(extra: &[&str]) -> (BTreeMap<String, Arc<Flow>>, Arc<Flow>) {
    let main = Arc::new(Flow::from_yaml(DEFAULT_FLOW_YAML).expect("default flow"));
    let mut flows = BTreeMap::from([(main.name.clone(), main.clone())]);
    for yaml in extra {
        let f = Arc::new(Flow::from_yaml(yaml).expect("flow"));
        flows.insert(f.name.clone(), f);
    }
    (flows, main)
}

impl Sim {
    fn at(date: (i32, u32, u32), hour: u32) -> Sim {
        let (flows, main) = flows_with(&[]);
        Sim::with(flows, main, date, hour)
    }

    fn with(flows: BTreeMap<String, Arc<Flow>>, entry: Arc<Flow>, (y, m, d): (i32, u32, u32), hour: u32) -> Sim {
        let mut it = Interpreter::new(flows, entry, Calendar::new(statutory_seed()));
        let now = Instant::now();
        let local_time = NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(hour, 0, 0)).expect("time");
        it.start(now, Start { caller: "13800138000".into(), hotline: "12365".into(), local_time });
        Sim { it, now, said: Vec::new(), effects: Vec::new() }
    }

    /// The next awaited command (plays are answered `Played` on the way).
    fn next(&mut self) -> Command {
        loop {
            let Some(c) = self.it.poll_command() else { panic!("no awaited command; said {:#?}", self.said) };
            match &c {
                Command::Play { says, .. } => {
                    self.said.extend(says.iter().map(|s| s.text.clone().or(s.file.clone()).unwrap_or_default()));
                    self.reply(Input::Played);
                }
                c if !c.awaits() => {
                    self.effects.push(c.clone());
                    if matches!(c, Command::Hangup) {
                        return c.clone();
                    }
                }
                _ => return c,
            }
        }
    }

    fn reply(&mut self, input: Input) {
        self.now += Duration::from_secs(1);
        self.it.handle_input(self.now, input);
    }

    /// Expects a digit collection and keys `digits`.
    fn key(&mut self, digits: &str) {
        let c = self.next();
        assert!(matches!(c, Command::Collect { .. }), "expected Collect, got {c:?}; said {:#?}", self.said);
        self.reply(Input::Digits(digits.into()));
    }

    fn last_said(&self) -> &str {
        self.said.last().map_or("", String::as_str)
    }
}

const MONDAY: (i32, u32, u32) = (2026, 11, 30);

#[test]
fn directors_mailbox_records_confirms_and_reads_the_ticket_back_twice() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("1");
    assert_eq!(sim.next(), Command::Record { max: Duration::from_secs(180) });
    assert!(sim.last_said().contains("局长信箱"), "{:?}", sim.said);
    sim.reply(Input::Recorded { path: "recordings/m.wav".into(), seconds: 12.0 });
    sim.key("1"); // keep
    sim.key("1"); // the callback number is the caller's
    assert!(sim.said.iter().any(|s| s.contains("回电号码是13800138000")), "{:?}", sim.said);
    sim.key("1"); // a reply is wanted
    let expected = Command::CreateTicket {
        kind: TicketKind::DirectorMailbox,
        recording: "recordings/m.wav".into(),
        callback: "13800138000".into(),
        reply_wanted: Some(true),
    };
    assert_eq!(sim.next(), expected);
    sim.reply(Input::TicketCreated { no: "202611300001".into(), code: "482915".into() });
    assert_eq!(sim.next(), Command::Hangup);
    let read_back = sim.said.iter().find(|s| s.contains("工单编号")).expect("read back");
    assert_eq!(read_back.matches("202611300001").count(), 2, "{read_back}");
    assert_eq!(read_back.matches("482915").count(), 2, "{read_back}");
    assert!(sim.it.is_finished());
    let nodes: Vec<&str> = sim.it.trail().iter().map(|v| v.node.as_str()).collect();
    assert!(nodes.contains(&"mailbox_ticket") && nodes.contains(&"read_back"), "{nodes:?}");
}

#[test]
fn another_callback_number_and_no_reply_and_a_re_recording() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("1");
    sim.next();
    sim.reply(Input::Recorded { path: "a.wav".into(), seconds: 3.0 });
    sim.key("2"); // record again
    sim.next();
    sim.reply(Input::Recorded { path: "b.wav".into(), seconds: 5.0 });
    sim.key(""); // silence: asked again,
    sim.key(""); // and again silence keeps the message
    sim.key("2"); // another number
    sim.key("01088886666");
    sim.key("1"); // confirmed
    sim.key("2"); // no reply wanted
    match sim.next() {
        Command::CreateTicket { recording, callback, reply_wanted, .. } => {
            assert_eq!((recording.as_str(), callback.as_str(), reply_wanted), ("b.wav", "01088886666", Some(false)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn complaint_recording_creates_a_complaint_or_a_report() {
    for (key, kind) in [("1", TicketKind::Complaint), ("2", TicketKind::Report)] {
        let mut sim = Sim::at(MONDAY, 10);
        sim.key("2");
        sim.key(key);
        sim.next();
        sim.reply(Input::Recorded { path: "c.wav".into(), seconds: 30.0 });
        match sim.next() {
            Command::CreateTicket { kind: k, reply_wanted, .. } => assert_eq!((k, reply_wanted), (kind, None)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_empty_recording_makes_no_ticket() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("2");
    sim.key("1");
    sim.next();
    sim.reply(Input::Recorded { path: "c.wav".into(), seconds: 0.2 });
    assert_eq!(sim.next(), Command::Hangup);
    assert!(!sim.effects.iter().any(|c| matches!(c, Command::CreateTicket { .. })));
}

#[test]
fn silence_and_wrong_keys_repeat_the_menu_then_go_to_an_agent_then_the_mailbox() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("");
    sim.key("9");
    assert!(sim.said.iter().any(|s| s == NO_INPUT));
    sim.key("");
    assert!(sim.said.iter().any(|s| s.contains("输入有误")));
    let queue = sim.next();
    assert!(matches!(queue, Command::Queue { queue: Some(ref q), leave_key: Some('1'), callback_key: Some('2'), .. } if q == "hotline"), "{queue:?}");
    sim.reply(Input::Queue(QueueOutcome::NoAnswer));
    assert!(matches!(sim.next(), Command::Record { .. }));
    assert!(sim.said.iter().any(|s| s.contains("坐席正忙")));
}

#[test]
fn a_connected_agent_call_finishes_the_flow() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("0");
    assert!(matches!(sim.next(), Command::Queue { .. }));
    sim.reply(Input::Queue(QueueOutcome::Connected));
    assert_eq!(sim.next(), Command::Hangup);
    assert!(sim.it.is_finished());
}

#[test]
fn after_hours_holidays_and_make_up_days_follow_the_calendar() {
    // 20:00 on a Monday, a National Day holiday (Thursday) and a Saturday: night greeting and
    // the caller's number on the callback list; a make-up workday Saturday (调休) is open.
    for (date, hour) in [(MONDAY, 20), ((2026, 10, 1), 10), ((2026, 11, 28), 10)] {
        let mut sim = Sim::at(date, hour);
        sim.next();
        assert!(sim.said[0].contains("非工作时间"), "{date:?} {hour}: {:?}", sim.said);
        assert_eq!(sim.effects, vec![Command::LogCallback { reason: "after_hours".into() }]);
    }
    let mut sim = Sim::at((2026, 10, 10), 10);
    sim.next();
    assert!(sim.said[0].starts_with("您好，欢迎致电"), "{:?}", sim.said);
    assert!(sim.effects.is_empty());
}

#[test]
fn night_menu_without_a_night_bell_takes_a_message() {
    let mut sim = Sim::at(MONDAY, 23);
    sim.key("0");
    assert!(matches!(sim.next(), Command::Queue { all_agents: false, .. }));
    sim.reply(Input::Queue(QueueOutcome::NoAnswer));
    assert!(matches!(sim.next(), Command::Record { .. }));
}

#[test]
fn status_query_reads_the_status_and_three_wrong_tries_end_politely() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("3");
    sim.key("202611300001");
    sim.key("482915");
    assert_eq!(sim.next(), Command::LookupTicket { number: "202611300001".into(), code: "482915".into() });
    sim.reply(Input::TicketStatus(Some("您查询的工单类别为投诉，当前状态为已转办。".into())));
    sim.key("2"); // another ticket
    for attempt in 1..=3 {
        sim.key("202611300009");
        sim.key("000000");
        assert!(matches!(sim.next(), Command::LookupTicket { .. }));
        sim.reply(Input::TicketStatus(None));
        if attempt < 3 {
            assert!(matches!(sim.it.poll_command(), Some(Command::Play { .. })));
            assert!(sim.it.trail().last().is_some_and(|v| v.node == "status_retry"), "{:?}", sim.it.trail());
            sim.reply(Input::Played);
        }
    }
    assert!(sim.said.iter().any(|s| s.contains("已转办")));
    assert_eq!(sim.next(), Command::Hangup);
    assert!(sim.last_said().contains("多次输入有误"), "{:?}", sim.said);
}

#[test]
fn status_query_from_the_registered_phone_needs_no_code() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("3");
    sim.key("202611300001");
    sim.key("");
    assert_eq!(sim.next(), Command::LookupTicket { number: "202611300001".into(), code: String::new() });
    sim.reply(Input::TicketStatus(None));
    assert!(matches!(sim.next(), Command::Collect { .. }));
    assert!(sim.last_said().contains("工单编号"), "asks again: {:?}", sim.said);
}

fn article(id: i64, kind: ArticleKind, title: &str) -> ArticleBrief {
    ArticleBrief { id, kind, title: title.into(), body: format!("{title}的内容。") }
}

#[test]
fn consultation_menus_read_an_article_and_take_fax_and_email_requests() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("4");
    assert_eq!(sim.next(), Command::LoadArticles);
    sim.reply(Input::Articles(vec![
        article(7, ArticleKind::Regulation, "消费者权益保护法"),
        article(8, ArticleKind::Address, "办公地址"),
        article(9, ArticleKind::Regulation, "产品质量法"),
    ]));
    sim.key("1"); // 政策法规
    assert!(sim.said.iter().any(|s| s.starts_with("政策法规请按1，地址与办公时间请按2")), "{:?}", sim.said);
    sim.key("2"); // 产品质量法
    sim.key("2"); // fax it
    sim.key("01066668888");
    assert!(sim.said.iter().any(|s| s.starts_with("产品质量法。")), "{:?}", sim.said);
    sim.key("3"); // and e-mail
    sim.key("#");
    assert_eq!(sim.next(), Command::Hangup);
    assert_eq!(
        sim.effects[..2],
        [
            Command::RequestDelivery { channel: Delivery::Fax, address: "01066668888".into(), article: 9 },
            Command::RequestDelivery { channel: Delivery::Email, address: "13800138000".into(), article: 9 },
        ]
    );
}

#[test]
fn survey_answers_are_saved_and_bad_keys_skip_after_a_retry() {
    let mut sim = Sim::at(MONDAY, 10);
    sim.key("5");
    assert_eq!(sim.next(), Command::LoadSurvey);
    let q = |t: &str, scale| SurveyQuestion { text: t.into(), scale };
    let survey = Survey {
        id: Some(3),
        title: "服务满意度调查".into(),
        active: true,
        questions: vec![q("您对热线服务满意吗？", SurveyScale::OneToFive), q("问题解决了吗？", SurveyScale::YesNo), q("会推荐吗？", SurveyScale::YesNo)],
    };
    sim.reply(Input::Survey(Some(survey)));
    sim.key("5");
    sim.key("7");
    sim.key("9"); // second bad key: question 2 unanswered
    sim.key("1");
    assert_eq!(sim.next(), Command::Hangup);
    assert_eq!(
        sim.effects[..2],
        [Command::SaveAnswer { survey: 3, question: 0, answer: 5 }, Command::SaveAnswer { survey: 3, question: 2, answer: 1 }]
    );
    assert!(sim.said.iter().any(|s| s.contains("调查结束")));
}

#[test]
fn a_flow_that_loops_without_the_caller_is_stopped() {
    let yaml = "name: loop\nstart: a\nnodes:\n  a: { type: count, var: n, next: b }\n  b: { type: set, var: m, value: x, next: a }\n";
    let (flows, _) = flows_with(&[yaml]);
    let entry = flows["loop"].clone();
    let mut sim = Sim::with(flows, entry, MONDAY, 10);
    assert_eq!(sim.next(), Command::Hangup);
    assert_eq!(sim.said, vec![FLOW_BROKEN.to_owned()]);
}

#[test]
fn goto_continues_in_another_flow_and_set_fills_variables() {
    let yaml = "name: entry\nstart: a\nnodes:\n  a: { type: set, var: who, value: \"来电{caller}\", next: b }\n  b: { type: play, prompt: \"{who}\", next: c }\n  c: { type: goto, flow: main, node: survey }\n";
    let (flows, _) = flows_with(&[yaml]);
    let entry = flows["entry"].clone();
    let mut sim = Sim::with(flows, entry, MONDAY, 10);
    assert_eq!(sim.next(), Command::LoadSurvey);
    assert_eq!(sim.said, vec!["来电13800138000".to_owned()]);
    assert_eq!(sim.it.position(), ("main", "survey"));
}

#[test]
fn static_prompts_can_be_replaced_by_recordings_and_filled_ones_cannot() {
    let mut sim = Sim::at(MONDAY, 10);
    match sim.it.poll_command() {
        Some(Command::Play { says, barge_in: true }) => assert_eq!(says[0].replaced_by.as_deref(), Some("ivr-main-greeting")),
        other => panic!("{other:?}"),
    }
    sim.reply(Input::Played);
    sim.key("1");
    sim.next();
    sim.reply(Input::Recorded { path: "m.wav".into(), seconds: 4.0 });
    sim.key("1");
    match sim.it.poll_command() {
        Some(Command::Play { says, .. }) => assert_eq!(says[0].replaced_by, None, "{says:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_satisfaction_flow_keeps_the_rating() {
    use super::flow::SATISFACTION_FLOW_YAML;
    use rexian_shared::Satisfaction;
    for (key, expected) in [("2", Some(Satisfaction::Satisfied)), ("5", Some(Satisfaction::VeryDissatisfied)), ("", None)] {
        let (flows, _) = flows_with(&[SATISFACTION_FLOW_YAML]);
        let entry = flows["satisfaction"].clone();
        let mut sim = Sim::with(flows, entry, MONDAY, 10);
        sim.key(key);
        if key.is_empty() {
            sim.key(""); // asked once more, then thanked anyway
        }
        assert_eq!(sim.next(), Command::Hangup);
        assert_eq!(sim.effects.first().cloned(), expected.map(Command::SaveSatisfaction).or(Some(Command::Hangup)));
        assert!(sim.last_said().contains("感谢您的评价"));
    }
}
