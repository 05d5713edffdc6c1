//! The IVR interpreter, sans-IO (DESIGN.md decision 2): it walks a [`Flow`] for one call and
//! says what to do next as [`Command`]s; whoever drives it (the call task in
//! [`super::runner`], or a test on a virtual clock) carries each out and reports the result as
//! an [`Input`]. It reads no clock, owns no socket and touches no store.
//!
//! # Contract
//! 1. [`Interpreter::start`] once.
//! 2. Drain [`Interpreter::poll_command`] until it returns `None`. Commands are carried out in
//!    order. Exactly one of them — the last one drained — may *await* a result
//!    ([`Command::awaits`]); report it with [`Interpreter::handle_input`], then drain again.
//! 3. Stop when [`Interpreter::is_finished`] (after a hang-up, or once the caller was handed to
//!    a person or a number and that conversation ended). An input the interpreter did not ask
//!    for is ignored.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use rexian_shared::{ArticleKind, Satisfaction, TicketKind};

use super::consult::{Consult, SurveyStep};
use rexian_shared::Survey as SurveyDef;
use super::flow::{override_name, Flow, Node, Prompt};
use crate::calendar::Calendar;

/// Digits wait this long after the first one.
const BETWEEN_DIGITS: Duration = Duration::from_secs(5);
/// Nodes entered without waiting for the caller before the flow is taken to be looping.
const MAX_SILENT_STEPS: u32 = 200;

pub const NO_INPUT: &str = "对不起，没有收到您的按键。";
pub const INVALID_INPUT: &str = "对不起，您的输入有误。";
pub const FLOW_BROKEN: &str = "对不起，系统暂时无法提供服务，请稍后再拨。";

/// Something to say: text for TTS or a prompt file; `replaced_by` names a recording that, when
/// an administrator has uploaded it, is played instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Say {
    pub text: Option<String>,
    pub file: Option<String>,
    pub replaced_by: Option<String>,
}

impl Say {
    pub fn text(text: impl Into<String>) -> Say {
        Say { text: Some(text.into()), file: None, replaced_by: None }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Say these in turn; with `barge_in` a key stops them (and stays queued for `Collect`).
    /// Awaits [`Input::Played`].
    Play { says: Vec<Say>, barge_in: bool },
    /// Collect up to `max` digits (first within `first`, then within `between` each).
    /// Awaits [`Input::Digits`] (empty on timeout).
    Collect { max: usize, terminator: Option<char>, first: Duration, between: Duration },
    /// Beep and record the caller for at most `max`, `#` ends. Awaits [`Input::Recorded`].
    Record { max: Duration },
    /// Make a ticket. Awaits [`Input::TicketCreated`] or [`Input::Failed`].
    CreateTicket { kind: TicketKind, recording: String, callback: String, reply_wanted: Option<bool> },
    /// Find a ticket by number and code (empty code: the caller's own number must match).
    /// Awaits [`Input::TicketStatus`].
    LookupTicket { number: String, code: String },
    /// Load the published IVR articles. Awaits [`Input::Articles`].
    LoadArticles,
    /// Load the active survey. Awaits [`Input::Survey`].
    LoadSurvey,
    /// Ring people for the caller. Awaits [`Input::Queue`].
    Queue { queue: Option<String>, users: Vec<String>, all_agents: bool, ring: Duration, max_wait: Duration, leave_key: Option<char>, callback_key: Option<char>, hold: Option<Say> },
    /// Bridge the caller to a number. Awaits [`Input::Transferred`].
    Transfer { number: String },
    /// Put the caller on the callback list (no result).
    LogCallback { reason: String },
    /// Store a fax-back or e-mail-back request for an article (no result).
    RequestDelivery { channel: super::flow::Delivery, address: String, article: i64 },
    /// Keep the caller's rating of the call (no result).
    SaveSatisfaction(Satisfaction),
    /// Store one survey answer (no result).
    SaveAnswer { survey: i64, question: usize, answer: u8 },
    /// Hang up (no result); the interpreter is finished.
    Hangup,
}

impl Command {
    /// Whether the interpreter waits for an [`Input`] after this command.
    pub fn awaits(&self) -> bool {
        !matches!(
            self,
            Command::LogCallback { .. } | Command::RequestDelivery { .. } | Command::SaveAnswer { .. } | Command::SaveSatisfaction(_) | Command::Hangup
        )
    }
}

/// How a hand-over to people ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueOutcome {
    /// Someone answered and the conversation is over.
    Connected,
    /// The caller pressed the leave key.
    Left,
    /// Nobody answered in time (or nobody could be rung).
    NoAnswer,
    /// The caller will be called back keeping their place, and has been hung up.
    Callback,
}

/// An article the consultation menus offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleBrief {
    pub id: i64,
    pub kind: ArticleKind,
    pub title: String,
    pub body: String,
}

/// A result of the last awaited command.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Played,
    Digits(String),
    Recorded { path: String, seconds: f64 },
    TicketCreated { no: String, code: String },
    /// The awaited store action failed.
    Failed,
    /// What may be said about the ticket, or `None` when the number or code is wrong.
    TicketStatus(Option<String>),
    Articles(Vec<ArticleBrief>),
    Survey(Option<SurveyDef>),
    Queue(QueueOutcome),
    /// Whether the far end answered (and the conversation is over).
    Transferred(bool),
}

/// Facts the call starts with.
#[derive(Debug, Clone)]
pub struct Start {
    pub caller: String,
    pub hotline: String,
    /// Beijing time when the call started (for business hours).
    pub local_time: NaiveDateTime,
}

/// One step of the call's path through the flows, for the call's IVR trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub after_ms: u64,
    pub flow: String,
    pub node: String,
    /// What was said or keyed there.
    pub note: String,
}

/// What the interpreter waits for.
#[derive(Debug)]
pub(super) enum Wait {
    Nothing,
    /// A play; then do this.
    Played(Then),
    /// Digits for this question.
    Digits(Ask),
    Recorded,
    Ticket,
    Lookup,
    Queue,
    Transfer,
    Consult(Consult),
    Survey(SurveyStep),
    Finished,
}

/// After a play.
#[derive(Debug)]
pub(super) enum Then {
    Goto(String),
    Collect(Ask),
    Record,
    Hangup,
    Consult(Consult),
    Survey(SurveyStep),
}

/// A question put to the caller: which keys, how often to ask again.
#[derive(Debug, Clone)]
pub(super) struct Ask {
    pub prompt: Vec<Say>,
    pub invalid: Say,
    pub min: usize,
    pub max: usize,
    pub terminator: Option<char>,
    pub timeout: Duration,
    pub attempt: u32,
    pub retries: u32,
    /// For one-key questions: the keys that count (a valid answer with `min == max == 1`).
    pub keys: Option<String>,
    pub purpose: Purpose,
}

/// Who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The current node (menu, collect, confirm).
    Node,
    ConsultKinds,
    ConsultArticles(ArticleKind),
    ConsultAfter(i64),
    FaxNumber(i64),
    SurveyQuestion(usize),
}

impl Ask {
    /// A one-key question.
    pub fn key(prompt: Vec<Say>, keys: &str, timeout: Duration, retries: u32, purpose: Purpose) -> Ask {
        Ask { prompt, invalid: Say::text(INVALID_INPUT), min: 1, max: 1, terminator: None, timeout, attempt: 0, retries, keys: Some(keys.into()), purpose }
    }

    fn accepts(&self, digits: &str) -> bool {
        let n = digits.chars().count();
        match &self.keys {
            Some(keys) => n == 1 && keys.contains(digits),
            None => n >= self.min && n <= self.max && (n > 0 || self.min == 0),
        }
    }
}

/// The interpreter for one call (see the module docs for the contract).
pub struct Interpreter {
    flows: BTreeMap<String, Arc<Flow>>,
    calendar: Calendar,
    flow: Arc<Flow>,
    node: String,
    pub(super) vars: BTreeMap<String, String>,
    pub(super) wait: Wait,
    commands: VecDeque<Command>,
    started: Option<(Instant, NaiveDateTime)>,
    now: Option<Instant>,
    silent_steps: u32,
    trail: Vec<Visit>,
    /// What the consultation menus offer, once loaded.
    pub(super) articles: Vec<ArticleBrief>,
    /// The survey being answered, once loaded.
    pub(super) survey: Option<SurveyDef>,
    /// The node to enter once the current step is done (a trampoline: a chain of nodes that
    /// do not wait for the caller is walked in a loop, not by recursion).
    next_node: Option<String>,
}

impl Interpreter {
    /// `flows` are the saved flows (a snapshot: a flow saved during the call applies from the
    /// next one); the call starts at `entry`'s start node.
    pub fn new(flows: BTreeMap<String, Arc<Flow>>, entry: Arc<Flow>, calendar: Calendar) -> Self {
        let node = entry.start.clone();
        Self {
            flows,
            calendar,
            flow: entry,
            node,
            vars: BTreeMap::new(),
            wait: Wait::Nothing,
            commands: VecDeque::new(),
            started: None,
            now: None,
            silent_steps: 0,
            trail: Vec::new(),
            articles: Vec::new(),
            survey: None,
            next_node: None,
        }
    }

    pub fn start(&mut self, now: Instant, start: Start) {
        self.started = Some((now, start.local_time));
        self.now = Some(now);
        self.vars.insert("caller".into(), start.caller.clone());
        self.vars.insert("callback".into(), start.caller);
        self.vars.insert("hotline".into(), start.hotline);
        let first = self.node.clone();
        self.goto(&first);
        self.settle();
    }

    /// Enters the nodes the last step went to, until one waits for something.
    fn settle(&mut self) {
        while let Some(node) = self.next_node.take() {
            self.enter(&node);
        }
    }

    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.wait, Wait::Finished)
    }

    /// The path so far.
    pub fn trail(&self) -> &[Visit] {
        &self.trail
    }

    /// A variable's value (`ticket_no`, `callback`, …).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.now = Some(now);
        self.silent_steps = 0;
        match (std::mem::replace(&mut self.wait, Wait::Nothing), input) {
            (Wait::Played(then), Input::Played) => self.then(then),
            (Wait::Digits(ask), Input::Digits(d)) => self.digits(ask, d),
            (Wait::Recorded, Input::Recorded { path, seconds }) => self.recorded(path, seconds),
            (Wait::Ticket, input) => self.ticket_done(input),
            (Wait::Lookup, Input::TicketStatus(status)) => self.looked_up(status),
            (Wait::Queue, Input::Queue(outcome)) => self.queued(outcome),
            (Wait::Transfer, Input::Transferred(answered)) => self.transferred(answered),
            (Wait::Consult(state), input) => self.consult_input(state, input),
            (Wait::Survey(state), input) => self.survey_input(state, input),
            (wait, input) => {
                tracing::debug!(?wait, ?input, "IVR: input not asked for");
                self.wait = wait;
            }
        }
        self.settle();
    }

    // ------------------------------------------------------------------ helpers for sub-menus

    pub(super) fn push(&mut self, command: Command) {
        self.commands.push_back(command);
    }

    /// Plays `says` and then does `then`.
    pub(super) fn play_then(&mut self, says: Vec<Say>, barge_in: bool, then: Then) {
        self.push(Command::Play { says, barge_in });
        self.wait = Wait::Played(then);
    }

    /// Puts a question (its prompt with barge-in, then the digits).
    pub(super) fn ask(&mut self, ask: Ask) {
        self.play_then(ask.prompt.clone(), true, Then::Collect(ask));
    }

    pub(super) fn note(&mut self, note: impl Into<String>) {
        let after_ms = match (self.started, self.now) {
            (Some((t0, _)), Some(now)) => now.saturating_duration_since(t0).as_millis() as u64,
            _ => 0,
        };
        self.trail.push(Visit { after_ms, flow: self.flow.name.clone(), node: self.node.clone(), note: note.into() });
    }

    /// `{var}` replaced by the call's variables (unknown ones by nothing).
    pub(super) fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            match rest[open..].find('}') {
                Some(close) => {
                    let name = &rest[open + 1..open + close];
                    out.push_str(self.vars.get(name).map_or("", String::as_str));
                    rest = &rest[open + close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The current node's prompt as something to say.
    fn say(&self, prompt: &Prompt) -> Say {
        match prompt {
            Prompt::Text(t) if !t.contains('{') => {
                Say { text: Some(t.clone()), file: None, replaced_by: Some(override_name(&self.flow.name, &self.node)) }
            }
            Prompt::Text(t) => Say::text(self.fill(t)),
            Prompt::File { file } => Say { text: None, file: Some(file.clone()), replaced_by: None },
        }
    }

    fn say_opt(&self, prompt: Option<&Prompt>, default: &str) -> Say {
        prompt.map_or_else(|| Say::text(default), |p| Say { replaced_by: None, ..self.say(p) })
    }

    pub(super) fn finish(&mut self) {
        self.push(Command::Hangup);
        self.wait = Wait::Finished;
    }

    /// Goes to `node` of the current flow, once the current step is done.
    pub(super) fn goto(&mut self, node: &str) {
        self.next_node = Some(node.to_owned());
    }

    // ------------------------------------------------------------------ nodes

    fn enter(&mut self, name: &str) {
        self.silent_steps += 1;
        if self.silent_steps > MAX_SILENT_STEPS {
            tracing::warn!(flow = %self.flow.name, node = name, "IVR: the flow loops without waiting for the caller");
            return self.broken();
        }
        let Some(node) = self.flow.nodes.get(name).cloned() else {
            tracing::warn!(flow = %self.flow.name, node = name, "IVR: no such node");
            return self.broken();
        };
        self.node = name.to_owned();
        self.run_node(node);
    }

    fn broken(&mut self) {
        self.play_then(vec![Say::text(FLOW_BROKEN)], false, Then::Hangup);
    }

    fn run_node(&mut self, node: Node) {
        match node {
            Node::Play { prompt, next } => {
                let say = self.say(&prompt);
                self.note(say.text.clone().unwrap_or_default());
                self.play_then(vec![say], false, Then::Goto(next));
            }
            Node::Menu { prompt, choices, timeout_secs, retries, invalid_prompt, .. } => {
                let keys: String = choices.keys().map(String::as_str).collect();
                let say = self.say(&prompt);
                if prompt.text().is_some_and(|t| t.contains('{')) {
                    self.note(say.text.clone().unwrap_or_default());
                }
                let mut ask = Ask::key(vec![say], &keys, secs(timeout_secs), retries, Purpose::Node);
                ask.invalid = self.say_opt(invalid_prompt.as_ref(), INVALID_INPUT);
                self.ask(ask);
            }
            Node::Collect { prompt, min_digits, max_digits, terminator, timeout_secs, retries, invalid_prompt, .. } => {
                let invalid = self.say_opt(invalid_prompt.as_ref(), INVALID_INPUT);
                let prompt = vec![self.say(&prompt)];
                let (min, max, timeout) = (min_digits, max_digits, secs(timeout_secs));
                self.ask(Ask { prompt, invalid, min, max, terminator, timeout, attempt: 0, retries, keys: None, purpose: Purpose::Node });
            }
            Node::Confirm { prompt, .. } => {
                let ask = Ask::key(vec![self.say(&prompt)], "12", secs(6), 1, Purpose::Node);
                self.ask(ask);
            }
            Node::Satisfaction { prompt, .. } => {
                let ask = Ask::key(vec![self.say(&prompt)], "12345", secs(8), 1, Purpose::Node);
                self.ask(ask);
            }
            Node::Record { prompt, .. } => {
                let say = self.say(&prompt);
                self.play_then(vec![say], false, Then::Record);
            }
            Node::TimeCondition { hours, open, closed } => {
                let is_open = self.is_open(&hours);
                self.note(if is_open { "open" } else { "closed" });
                self.goto(if is_open { &open } else { &closed });
            }
            Node::Set { var, value, next } => {
                let value = self.fill(&value);
                self.vars.insert(var, value);
                self.goto(&next);
            }
            Node::Count { var, next } => {
                let n = self.vars.get(&var).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
                self.vars.insert(var, (n + 1).to_string());
                self.goto(&next);
            }
            Node::Branch { var, cases, default } => {
                let value = self.vars.get(&var).cloned().unwrap_or_default();
                let target = cases.get(&value).unwrap_or(&default).clone();
                self.goto(&target);
            }
            Node::Goto { flow, node } => self.goto_flow(&flow, node.as_deref()),
            Node::Queue { queue, users, all_agents, ring_secs, max_wait_secs, leave_key, callback_key, hold_prompt, .. } => {
                let hold = hold_prompt.as_ref().map(|p| self.say(p));
                let whom = match (&queue, all_agents) {
                    (Some(q), _) => format!("ACD queue {q}"),
                    (None, true) => "all agents".to_owned(),
                    (None, false) => users.join(","),
                };
                self.note(format!("queue {whom}"));
                let (ring, max_wait) = (secs(ring_secs), secs(max_wait_secs));
                self.push(Command::Queue { queue, users, all_agents, ring, max_wait, leave_key, callback_key, hold });
                self.wait = Wait::Queue;
            }
            Node::Transfer { number, .. } => {
                let number = self.fill(&number);
                self.note(format!("transfer {number}"));
                self.push(Command::Transfer { number });
                self.wait = Wait::Transfer;
            }
            Node::CreateTicket { kind, recording, callback, reply, on_error, .. } => {
                self.create_ticket(&kind, &recording, callback.as_deref(), reply.as_deref(), &on_error)
            }
            Node::LookupTicket { number, code, not_found, .. } => {
                let number = self.vars.get(&number).cloned().unwrap_or_default();
                let code = self.vars.get(&code).cloned().unwrap_or_default();
                if rexian_shared::TicketNo::parse(&number).is_err() {
                    return self.goto(&not_found);
                }
                self.push(Command::LookupTicket { number, code });
                self.wait = Wait::Lookup;
            }
            Node::Consultation { .. } => self.start_consultation(),
            Node::Survey { .. } => self.start_survey(),
            Node::LogCallback { reason, next } => {
                self.note(format!("callback list: {reason}"));
                self.push(Command::LogCallback { reason });
                self.goto(&next);
            }
            Node::Hangup { prompt } => {
                self.note("hangup");
                self.hangup_node(prompt);
            }
        }
    }

    fn hangup_node(&mut self, prompt: Option<Prompt>) {
        match prompt {
                Some(p) => {
                    let say = self.say(&p);
                    self.play_then(vec![say], false, Then::Hangup);
                }
                None => self.finish(),
        }
    }

    fn goto_flow(&mut self, flow: &str, node: Option<&str>) {
        let Some(target) = self.flows.get(flow).cloned() else {
            tracing::warn!(flow, "IVR: goto a flow that does not exist");
            return self.broken();
        };
        let start = node.unwrap_or(&target.start).to_owned();
        self.flow = target;
        self.goto(&start);
    }

    fn is_open(&self, hours: &[String]) -> bool {
        let Some((t0, local0)) = self.started else { return false };
        let elapsed = self.now.map_or(Duration::ZERO, |n| n.saturating_duration_since(t0));
        let local = local0 + chrono::Duration::from_std(elapsed).unwrap_or_default();
        self.calendar.is_open(local, hours)
    }

    fn create_ticket(&mut self, kind: &str, recording: &str, callback: Option<&str>, reply: Option<&str>, on_error: &str) {
        let kind = self.fill(kind);
        let Some(kind) = TicketKind::from_code(&kind) else {
            tracing::warn!(kind, "IVR: create_ticket with an unknown kind");
            return self.goto(on_error);
        };
        let Some(path) = self.vars.get(recording).cloned() else {
            return self.goto(on_error);
        };
        let callback = callback.and_then(|v| self.vars.get(v)).or_else(|| self.vars.get("caller")).cloned().unwrap_or_default();
        let reply_wanted = reply.and_then(|v| self.vars.get(v)).map(|v| v == "yes");
        self.push(Command::CreateTicket { kind, recording: path, callback, reply_wanted });
        self.wait = Wait::Ticket;
    }

    // ------------------------------------------------------------------ results

    fn then(&mut self, then: Then) {
        match then {
            Then::Goto(node) => self.goto(&node),
            Then::Collect(ask) => {
                let (max, terminator) = (ask.max, ask.terminator);
                self.push(Command::Collect { max, terminator, first: ask.timeout, between: BETWEEN_DIGITS });
                self.wait = Wait::Digits(ask);
            }
            Then::Record => {
                let max = match self.flow.nodes.get(&self.node) {
                    Some(Node::Record { max_secs, .. }) => secs(*max_secs),
                    _ => secs(180),
                };
                self.push(Command::Record { max });
                self.wait = Wait::Recorded;
            }
            Then::Hangup => self.finish(),
            Then::Consult(state) => self.consult_step(state),
            Then::Survey(state) => self.survey_step(state),
        }
    }

    fn digits(&mut self, mut ask: Ask, digits: String) {
        self.note(format!("keyed {digits:?}"));
        if ask.accepts(&digits) {
            return self.answered(ask.purpose, Some(digits));
        }
        if ask.attempt >= ask.retries {
            return self.answered(ask.purpose, None);
        }
        ask.attempt += 1;
        let first = if digits.is_empty() { Say::text(NO_INPUT) } else { ask.invalid.clone() };
        let mut says = vec![first];
        says.extend(ask.prompt.iter().cloned());
        self.play_then(says, true, Then::Collect(ask));
    }

    /// A question was answered (`None`: not validly, after every retry).
    fn answered(&mut self, purpose: Purpose, answer: Option<String>) {
        match purpose {
            Purpose::Node => self.node_answered(answer),
            other => self.sub_answered(other, answer),
        }
    }

    fn node_answered(&mut self, answer: Option<String>) {
        let Some(node) = self.flow.nodes.get(&self.node).cloned() else { return self.broken() };
        match (node, answer) {
            (Node::Menu { choices, .. }, Some(key)) => match choices.get(&key) {
                Some(target) => self.goto(target),
                None => self.broken(),
            },
            (Node::Menu { on_fail, .. }, None) | (Node::Collect { on_fail, .. }, None) => self.goto(&on_fail),
            (Node::Collect { var, next, .. }, Some(digits)) => {
                self.vars.insert(var, digits);
                self.goto(&next);
            }
            (Node::Satisfaction { next, .. }, rating) => {
                let index = rating.and_then(|k| k.parse::<usize>().ok()).and_then(|k| k.checked_sub(1));
                if let Some(&satisfaction) = index.and_then(|i| Satisfaction::ALL.get(i)) {
                    self.note(format!("rated {}", satisfaction.code()));
                    self.push(Command::SaveSatisfaction(satisfaction));
                }
                self.goto(&next);
            }
            (Node::Confirm { no, .. }, Some(k)) if k == "2" => self.goto(&no),
            (Node::Confirm { yes, .. }, _) => self.goto(&yes),
            _ => self.broken(),
        }
    }

    fn recorded(&mut self, path: String, seconds: f64) {
        let Some(Node::Record { var, next, on_empty, .. }) = self.flow.nodes.get(&self.node).cloned() else {
            return self.broken();
        };
        self.note(format!("recorded {seconds:.1} s"));
        match on_empty {
            Some(empty) if seconds < 1.0 => self.goto(&empty),
            _ => {
                self.vars.insert(format!("{var}_seconds"), format!("{seconds:.0}"));
                self.vars.insert(var, path);
                self.goto(&next);
            }
        }
    }

    fn ticket_done(&mut self, input: Input) {
        let Some(Node::CreateTicket { next, on_error, .. }) = self.flow.nodes.get(&self.node).cloned() else {
            return self.broken();
        };
        match input {
            Input::TicketCreated { no, code } => {
                self.note(format!("ticket {no}"));
                self.vars.insert("ticket_no".into(), no);
                self.vars.insert("ticket_code".into(), code);
                self.goto(&next);
            }
            _ => self.goto(&on_error),
        }
    }

    fn looked_up(&mut self, status: Option<String>) {
        let Some(Node::LookupTicket { found, not_found, .. }) = self.flow.nodes.get(&self.node).cloned() else {
            return self.broken();
        };
        match status {
            Some(text) => {
                self.vars.insert("status".into(), text);
                self.goto(&found);
            }
            None => self.goto(&not_found),
        }
    }

    fn queued(&mut self, outcome: QueueOutcome) {
        let Some(Node::Queue { on_fail, on_leave, .. }) = self.flow.nodes.get(&self.node).cloned() else {
            return self.broken();
        };
        self.note(format!("{outcome:?}"));
        match outcome {
            QueueOutcome::Connected | QueueOutcome::Callback => self.finish(),
            QueueOutcome::Left => self.goto(on_leave.as_ref().unwrap_or(&on_fail)),
            QueueOutcome::NoAnswer => self.goto(&on_fail),
        }
    }

    fn transferred(&mut self, answered: bool) {
        let Some(Node::Transfer { on_fail, .. }) = self.flow.nodes.get(&self.node).cloned() else {
            return self.broken();
        };
        if answered {
            self.finish();
        } else {
            self.goto(&on_fail);
        }
    }

    /// The node the call is at (flow, node).
    pub fn position(&self) -> (&str, &str) {
        (&self.flow.name, &self.node)
    }

    /// Where the current node goes when a sub-menu is done (`next` of consultation/survey).
    pub(super) fn node_next(&mut self) {
        match self.flow.nodes.get(&self.node).cloned() {
            Some(Node::Consultation { next }) | Some(Node::Survey { next }) => self.goto(&next),
            _ => self.broken(),
        }
    }
}

pub(super) fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}
